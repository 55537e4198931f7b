//! `greenlight-local`: the local cloud from the command line.
//!
//! The commands, options and exit codes are `local_cloud::cli` (clap;
//! `greenlight-local --help`); this file runs them.

use clap::Parser;
use local_cloud::cli::{
    names_line, outcome_exit, settings_line, versions_line, Cli, Command, EXIT_ERROR,
    EXIT_INTERRUPTED, EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE,
};
use local_cloud::cloud::{LocalCloud, Options};
use local_cloud::faults::rate::RateMode;
use local_cloud::follow::{timeline_table, Progress};
use local_cloud::revisions::{write_revision, RevisionKind};
use local_cloud::scenarios;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

fn project_root() -> PathBuf {
    // The binary runs from the project (README commands); fall back to the
    // crate's location for `cargo run` from elsewhere.
    let cwd = std::env::current_dir().unwrap_or_default();
    if cwd.join("template.yaml").exists() {
        cwd
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
    }
}

/// Prints progress: on a terminal, each phase change as a line plus a live
/// status line (current phase, elapsed real and AWS seconds) redrawn in place;
/// otherwise plain lines only.
struct Printer {
    tty: bool,
    started: Instant,
    scale: f64,
    current: String,
}

impl Printer {
    fn event(&mut self, p: Progress) {
        let real = self.started.elapsed().as_secs_f64();
        let sim = real / self.scale;
        let text = match p {
            Progress::Tick => {
                if self.tty {
                    print!(
                        "\r\x1b[2K  … {} [{real:6.1}s real | {sim:7.1}s AWS]",
                        self.current
                    );
                    let _ = std::io::stdout().flush();
                }
                return;
            }
            Progress::ExecutionStarted { name } => format!("execution {name} started"),
            Progress::DeploymentCreated { deployment_id } => {
                format!("CodeDeploy deployment {deployment_id} created")
            }
            Progress::Phase { phase, status } => format!("phase {phase:?} (deployment {status})"),
            Progress::Finished { status } => format!("execution {status}"),
        };
        if self.tty {
            // Replace the live line with the event, then the live line comes back on the next tick.
            print!("\r\x1b[2K");
        }
        println!("[{real:6.1}s real | {sim:7.1}s AWS] {text}");
        self.current = text;
        let _ = std::io::stdout().flush();
    }
}

async fn start_cloud(
    time_scale: f64,
    rate_limits: RateMode,
    name: &str,
    configure: impl FnOnce(&mut Options),
) -> Result<LocalCloud, String> {
    let root = project_root();
    let work = root
        .join(".local-cloud")
        .join(format!("{name}-{}", std::process::id()));
    println!("starting the local cloud (moto + greenlight's emulation) on loopback, time scale {time_scale} ...");
    let mut options = Options::new(&root, &work, time_scale);
    options.rate_limits = rate_limits;
    configure(&mut options);
    let cloud = LocalCloud::start(options)
        .await
        .map_err(|e| e.to_string())?;
    println!("  AWS endpoint   {}", cloud.endpoint());
    println!("  load balancer  {}", cloud.listener_url());
    println!(
        "  artifact bucket s3://{}/{}",
        cloud.resources.names.bucket, cloud.resources.names.artifact_prefix
    );
    println!("  logs           {}", work.display());
    Ok(cloud)
}

/// `demo`'s options.
struct DemoArgs {
    revision: RevisionKind,
    bake: Option<u32>,
    time_scale: f64,
    label: Option<String>,
    rate_limits: RateMode,
}

async fn demo(args: &DemoArgs) -> Result<u8, String> {
    // The bake after the reroute (issue 10): the functions read the real
    // clock, so the bake is in real seconds while CodeDeploy's termination
    // wait is scaled (5 AWS minutes = 30 s real at 0.1). A pass comes 15 s
    // after the bake time (the metric delay of `Options::demo_bake`), so a
    // bake must fit in the wait with that and a look's margin. The degrading
    // revision needs a bake long enough for a closed minute of ALB metrics,
    // hence a longer termination wait around it.
    let degrading = args.revision == RevisionKind::Degrading;
    let bake_seconds = args.bake.unwrap_or(if degrading { 150 } else { 5 });
    let default_wait = local_cloud::provision::DemoSettings::default().termination_wait_minutes;
    let wait_minutes = if bake_seconds > 0
        && (degrading
            || f64::from(bake_seconds) + 20.0 > f64::from(default_wait) * 60.0 * args.time_scale)
    {
        30
    } else {
        default_wait
    };
    let cloud = start_cloud(args.time_scale, args.rate_limits, "demo", |o| {
        o.settings.termination_wait_minutes = wait_minutes;
        if bake_seconds > 0 {
            o.bake = vec![o.demo_bake(bake_seconds)];
        }
    })
    .await?;
    if bake_seconds > 0 {
        println!("bake after the reroute: {bake_seconds} s real (termination wait {wait_minutes} AWS minutes)");
    } else {
        println!("no bake: CodeDeploy's termination wait ({wait_minutes} AWS minutes) runs out");
    }
    let label = args
        .label
        .clone()
        .unwrap_or_else(|| scenarios::new_label("1"));
    println!(
        "uploading {} revision {label} to s3://{}/{} ...",
        args.revision.name(),
        cloud.resources.names.bucket,
        cloud.revision_key(&label)
    );
    let mut printer = Printer {
        tty: std::io::stdout().is_terminal(),
        started: Instant::now(),
        scale: args.time_scale,
        current: String::new(),
    };
    let mut progress = |p| printer.event(p);
    let outcome = tokio::select! {
        r = scenarios::upload_and_follow(&cloud, args.revision, &label, true, &mut progress) => r,
        _ = tokio::signal::ctrl_c() => {
            println!("\ninterrupted: cleaning up");
            cloud.shutdown().await;
            return Ok(EXIT_INTERRUPTED);
        }
    };
    let ok = match outcome {
        Ok(report) => {
            let f = &report.followed;
            let origin = f.timeline.first().map(|r| r.started_at_ms).unwrap_or(0);
            println!("\ntimeline (AWS seconds; time scale {}):", args.time_scale);
            print!("{}", timeline_table(&f.timeline, origin, cloud.scale));
            if let Some(bake) = f.output.as_ref().and_then(|o| o.get("bake")) {
                // The validator's summary counts real seconds (on AWS they
                // are AWS seconds); say so, the next line gives AWS seconds.
                println!(
                    "\nbake (the validator's words, in real seconds on the local cloud): {} {}",
                    bake["verdict"].as_str().unwrap_or("?"),
                    bake["summary"].as_str().unwrap_or("")
                );
                // The functions count real seconds; the timeline's are AWS
                // seconds: the saving in the timeline's terms.
                let terminating = f
                    .timeline
                    .iter()
                    .find(|t| t.phase == greenlight_core::model::Phase::Terminating);
                if let Some(ended) =
                    terminating.and_then(|t| t.ended_at_ms.map(|e| e - t.started_at_ms))
                {
                    let took = cloud
                        .scale
                        .simulated(std::time::Duration::from_millis(ended.max(0) as u64))
                        .as_secs();
                    let wait = u64::from(wait_minutes.unsigned_abs()) * 60;
                    println!(
                        "termination wait: blue released after {took} AWS s of the group's {wait} s ({} s saved)",
                        wait.saturating_sub(took)
                    );
                }
            }
            if let Some(load) = &report.load {
                println!(
                    "\nrequests through the load balancer during the deployment: {} sent, {} ok, {} failed",
                    load.sent, load.ok, load.failed
                );
            }
            println!("served now: {}", versions_line(&report.served_versions));
            println!(
                "target group after: {}",
                settings_line(&report.settings_after)
            );
            for n in &report.notifications {
                println!(
                    "notification: {}",
                    n.subject.as_deref().unwrap_or("(no subject)")
                );
            }
            match f.status.as_str() {
                "SUCCEEDED" => println!("\nresult: deployment of {label} succeeded"),
                other => println!(
                    "\nresult: execution {other}: {} {}",
                    f.error.as_deref().unwrap_or(""),
                    f.cause.as_deref().unwrap_or("")
                ),
            }
            outcome_exit(args.revision, &f.status)
        }
        Err(e) => {
            println!("\nthe demo failed: {e}");
            EXIT_ERROR
        }
    };
    cloud.shutdown().await;
    Ok(ok)
}

async fn scenario(name: &str, time_scale: f64, rate_limits: RateMode) -> Result<u8, String> {
    let cloud = start_cloud(time_scale, rate_limits, name, |_| {}).await?;
    let mut printer = Printer {
        tty: std::io::stdout().is_terminal(),
        started: Instant::now(),
        scale: time_scale,
        current: String::new(),
    };
    let mut progress = |p| printer.event(p);
    let label = scenarios::new_label("1");
    let run = async {
        match name {
            "good" | "failing-health" | "failing-install" | "slow" => {
                let kind: RevisionKind = name.parse()?;
                let r = scenarios::upload_and_follow(&cloud, kind, &label, true, &mut progress)
                    .await
                    .map_err(|e| e.to_string())?;
                let f = &r.followed;
                println!("execution: {}", f.status);
                if let Some(error) = &f.error {
                    println!("error: {error}");
                }
                println!("served now: {}", versions_line(&r.served_versions));
                println!("Auto Scaling groups: {}", names_line(&r.existing_asgs));
                println!("deployment group's ASG: {}", names_line(&r.group_asgs));
                println!("target group after: {}", settings_line(&r.settings_after));
                for n in &r.notifications {
                    println!(
                        "notification: {}",
                        n.subject.as_deref().unwrap_or("(no subject)")
                    );
                }
                if let Some(load) = &r.load {
                    println!(
                        "requests through the load balancer: {} sent, {} ok, {} failed",
                        load.sent, load.ok, load.failed
                    );
                }
                let code = outcome_exit(kind, &f.status);
                let verdict = if code == EXIT_OK {
                    "as expected"
                } else {
                    "NOT as expected"
                };
                println!(
                    "result: {} revision ended {} ({verdict})",
                    kind.name(),
                    f.status
                );
                Ok(code)
            }
            "pipeline" => {
                let r = scenarios::pipeline_job(&cloud, RevisionKind::Good, &label, &mut progress)
                    .await
                    .map_err(|e| e.to_string())?;
                let status = r.followed.as_ref().map(|f| f.status.clone());
                println!("pipeline job: {}", r.job_id);
                use local_cloud::codepipeline::JobStatus;
                let job = match r.view.as_ref().map(|v| v.status) {
                    Some(JobStatus::Succeeded) => "Succeeded",
                    Some(JobStatus::Failed) => "Failed",
                    Some(JobStatus::InProgress) => "InProgress",
                    None => "unknown",
                };
                println!("job status: {job}");
                println!("execution: {}", status.as_deref().unwrap_or("none"));
                Ok(if job == "Succeeded" {
                    EXIT_OK
                } else {
                    EXIT_UNEXPECTED
                })
            }
            "concurrent" => {
                let r = scenarios::concurrent_uploads(&cloud, &mut progress)
                    .await
                    .map_err(|e| e.to_string())?;
                println!(
                    "first upload: {}; second upload: {}",
                    r.first.admission().unwrap_or("no admission"),
                    r.second.admission().unwrap_or("no admission")
                );
                println!(
                    "deployments: {}; duplicate executions: {}; duplicate deployments: {}",
                    r.deployments.len(),
                    r.duplicate_executions,
                    r.duplicate_deployments
                );
                Ok(
                    if r.duplicate_executions == 0 && r.duplicate_deployments == 0 {
                        EXIT_OK
                    } else {
                        EXIT_UNEXPECTED
                    },
                )
            }
            "outside" => {
                let r = scenarios::outside_failure(&cloud)
                    .await
                    .map_err(|e| e.to_string())?;
                println!("deployment {}: {}", r.deployment_id, r.status);
                for n in &r.notifications {
                    println!(
                        "notification: {}",
                        n.subject.as_deref().unwrap_or("(no subject)")
                    );
                }
                println!(
                    "failure report: {}",
                    if r.report.is_some() {
                        "written"
                    } else {
                        "none"
                    }
                );
                Ok(if r.notifications.len() == 1 {
                    EXIT_OK
                } else {
                    EXIT_UNEXPECTED
                })
            }
            other => Err(format!("unknown scenario {other}")),
        }
    };
    let result: Result<u8, String> = tokio::select! {
        r = run => r,
        _ = tokio::signal::ctrl_c() => {
            println!("\ninterrupted: cleaning up");
            Ok(EXIT_INTERRUPTED)
        }
    };
    cloud.shutdown().await;
    result
}

fn revisions(out: &Path, label: Option<String>) -> Result<bool, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let label = label.unwrap_or_else(|| scenarios::new_label("1"));
    for kind in RevisionKind::ALL {
        let file_label = format!("{label}-{}", kind.name());
        let path = out.join(format!("{file_label}.zip"));
        write_revision(&path, kind, &file_label).map_err(|e| format!("{}: {e}", path.display()))?;
        println!(
            "{}  ({} revision, version {file_label})",
            path.display(),
            kind.name()
        );
    }
    Ok(true)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print and exit 0; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    let as_code = |r: Result<bool, String>| match r {
        Ok(true) => Ok(EXIT_OK),
        Ok(false) => Ok(EXIT_ERROR),
        Err(e) => Err(e),
    };
    let result: Result<u8, String> = match cli.command {
        Command::Demo {
            revision,
            bake,
            time_scale,
            label,
            rate_limits,
        } => {
            demo(&DemoArgs {
                revision,
                bake,
                time_scale,
                label,
                rate_limits,
            })
            .await
        }
        Command::Scenario {
            name,
            time_scale,
            rate_limits,
        } => scenario(&name, time_scale, rate_limits).await,
        Command::Revisions { out, label } => as_code(revisions(&out, label)),
        Command::Up {
            time_scale,
            rate_limits,
        } => as_code(local_cloud::service::up(
            &project_root(),
            time_scale,
            rate_limits,
        )),
        Command::Status { json } => as_code(local_cloud::service::status(&project_root(), json)),
        Command::Down => as_code(local_cloud::service::down(&project_root())),
        // `fault` has its own options (see fault_cli::USAGE).
        Command::Fault { args } => {
            if args.is_empty() || matches!(args[0].as_str(), "help" | "-h" | "--help") {
                println!("{}", local_cloud::fault_cli::USAGE);
                Ok(if args.is_empty() { EXIT_USAGE } else { EXIT_OK })
            } else {
                as_code(local_cloud::fault_cli::run(&project_root(), &args))
            }
        }
        Command::Serve {
            time_scale,
            rate_limits,
        } => as_code(local_cloud::service::serve(&project_root(), time_scale, rate_limits).await),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
