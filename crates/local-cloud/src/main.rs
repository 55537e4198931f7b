//! `greenlight-local`: the local cloud from the command line.
//!
//! ```text
//! greenlight-local demo [--revision good|failing-health|failing-install|slow|degrading] [--bake SECONDS] [--time-scale F]
//! greenlight-local scenario <good|failing-health|failing-install|pipeline|concurrent|outside> [--time-scale F]
//! greenlight-local revisions [--out DIR] [--label LABEL]
//! greenlight-local up [--time-scale F] [--rate-limits off|aws] | status [--json] | down
//! greenlight-local fault list | add <kind> [...] | clear [ID] | rate-limits off|aws
//! ```

use local_cloud::cloud::{LocalCloud, Options};
use local_cloud::faults::rate::RateMode;
use local_cloud::follow::{timeline_table, Progress};
use local_cloud::revisions::{write_revision, RevisionKind};
use local_cloud::scenarios;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage:
  greenlight-local demo [--revision good|failing-health|failing-install|slow|degrading] [--bake SECONDS] [--time-scale F]
                                         --bake: real seconds the green fleet bakes after the reroute
                                         (default 5; 150 for degrading; a bake that does not fit the 5-minute
                                         termination wait gets a 30-minute one; 0: no bake)
  greenlight-local scenario <good|failing-health|failing-install|pipeline|concurrent|outside> [--time-scale F]
  greenlight-local revisions [--out DIR] [--label LABEL]
  greenlight-local up [--time-scale F] [--rate-limits off|aws]
                                         start the local cloud as a background service (idempotent)
  greenlight-local status [--json]       endpoint, region, credentials, listener, demo resources (exit 1: not running)
  greenlight-local down                  stop it: no process left, nothing listening
  greenlight-local fault list | add <kind> [options] | clear [ID] | rate-limits off|aws
                                         the running service's fault injector (`greenlight-local fault help`)

The service keeps its state and log in .local-cloud/service/ (git-ignored).
The local cloud runs on loopback only; --time-scale is real seconds per AWS second (default 0.1);
--rate-limits aws (default) answers throttling beyond AWS-like API rates, off disables them.";

struct Args {
    command: String,
    positional: Vec<String>,
    revision: RevisionKind,
    time_scale: f64,
    out: PathBuf,
    label: Option<String>,
    json: bool,
    rate_limits: RateMode,
    /// `--bake SECONDS` (demo): None = the demo's default.
    bake: Option<u32>,
}

fn parse_args() -> Result<Args, String> {
    let mut raw = std::env::args().skip(1);
    let command = raw.next().ok_or_else(|| USAGE.to_string())?;
    let mut args = Args {
        command,
        positional: Vec::new(),
        revision: RevisionKind::Good,
        time_scale: 0.1,
        out: PathBuf::from("target/revisions"),
        label: None,
        json: false,
        rate_limits: RateMode::Aws,
        bake: None,
    };
    while let Some(a) = raw.next() {
        let mut value = |name: &str| {
            raw.next()
                .ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        match a.as_str() {
            "--revision" => args.revision = value("--revision")?.parse()?,
            "--time-scale" => {
                let v = value("--time-scale")?;
                args.time_scale = v
                    .parse()
                    .ok()
                    .filter(|f: &f64| *f > 0.0 && *f <= 1.0)
                    .ok_or_else(|| {
                        format!("--time-scale {v}: give a number in (0, 1], e.g. 0.1")
                    })?;
            }
            "--out" => args.out = PathBuf::from(value("--out")?),
            "--rate-limits" => args.rate_limits = value("--rate-limits")?.parse()?,
            "--label" => args.label = Some(value("--label")?),
            "--bake" => {
                let v = value("--bake")?;
                args.bake = Some(v.parse().map_err(|_| {
                    format!("--bake {v}: give whole seconds, e.g. 10 (0: no bake)")
                })?);
            }
            "--json" => args.json = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other if other.starts_with("--") => {
                return Err(format!("unknown option {other}\n\n{USAGE}"))
            }
            other => args.positional.push(other.to_string()),
        }
    }
    Ok(args)
}

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

async fn demo(args: &Args) -> Result<bool, String> {
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
            return Ok(false);
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
            println!("served now: {:?}", report.served_versions);
            println!("target group after: {:?}", report.settings_after);
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
            let expected_success = matches!(args.revision, RevisionKind::Good | RevisionKind::Slow);
            (f.status == "SUCCEEDED") == expected_success
        }
        Err(e) => {
            println!("\nthe demo failed: {e}");
            false
        }
    };
    cloud.shutdown().await;
    Ok(ok)
}

async fn scenario(args: &Args) -> Result<bool, String> {
    let name = args
        .positional
        .first()
        .cloned()
        .ok_or_else(|| USAGE.to_string())?;
    let cloud = start_cloud(args.time_scale, args.rate_limits, &name, |_| {}).await?;
    let mut printer = Printer {
        tty: std::io::stdout().is_terminal(),
        started: Instant::now(),
        scale: args.time_scale,
        current: String::new(),
    };
    let mut progress = |p| printer.event(p);
    let label = scenarios::new_label("1");
    let result: Result<String, String> = match name.as_str() {
        "good" | "failing-health" | "failing-install" | "slow" => {
            let kind: RevisionKind = name.parse()?;
            scenarios::upload_and_follow(&cloud, kind, &label, true, &mut progress)
                .await
                .map(|r| {
                    format!(
                        "{:#?}",
                        (
                            r.followed.status,
                            r.followed.error,
                            r.served_versions,
                            r.existing_asgs,
                            r.group_asgs,
                            r.settings_after,
                            r.notifications,
                            r.load
                        )
                    )
                })
                .map_err(|e| e.to_string())
        }
        "pipeline" => scenarios::pipeline_job(&cloud, RevisionKind::Good, &label, &mut progress)
            .await
            .map(|r| format!("{:#?}", r.view))
            .map_err(|e| e.to_string()),
        "concurrent" => scenarios::concurrent_uploads(&cloud, &mut progress)
            .await
            .map(|r| {
                format!(
                    "{:#?}",
                    (
                        r.first.admission().map(str::to_string),
                        r.second.admission().map(str::to_string),
                        r.deployments,
                        r.duplicate_executions,
                        r.duplicate_deployments
                    )
                )
            })
            .map_err(|e| e.to_string()),
        "outside" => scenarios::outside_failure(&cloud)
            .await
            .map(|r| format!("{:#?}", (r.status, r.notifications, r.report)))
            .map_err(|e| e.to_string()),
        other => Err(format!("unknown scenario {other}\n\n{USAGE}")),
    };
    cloud.shutdown().await;
    match result {
        Ok(text) => {
            println!("{text}");
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

fn revisions(args: &Args) -> Result<bool, String> {
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let label = args
        .label
        .clone()
        .unwrap_or_else(|| scenarios::new_label("1"));
    for kind in RevisionKind::ALL {
        let file_label = format!("{label}-{}", kind.name());
        let path = args.out.join(format!("{file_label}.zip"));
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
    // `fault` has its own options (see fault_cli::USAGE).
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some("fault") {
        if matches!(
            raw.get(1).map(String::as_str),
            Some("help" | "-h" | "--help")
        ) {
            println!("{}", local_cloud::fault_cli::USAGE);
            return ExitCode::SUCCESS;
        }
        return match local_cloud::fault_cli::run(&project_root(), &raw[1..]) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let result = match args.command.as_str() {
        "demo" => demo(&args).await,
        "scenario" => scenario(&args).await,
        "revisions" => revisions(&args),
        "up" => local_cloud::service::up(&project_root(), args.time_scale, args.rate_limits),
        "status" => local_cloud::service::status(&project_root(), args.json),
        "down" => local_cloud::service::down(&project_root()),
        // Hidden: what `up` runs in the background.
        "serve" => {
            local_cloud::service::serve(&project_root(), args.time_scale, args.rate_limits).await
        }
        other => Err(format!("unknown command {other}\n\n{USAGE}")),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
