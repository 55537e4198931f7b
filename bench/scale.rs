//! Scale: N deployment groups deploying at once in one local cloud, with
//! the AWS-like API rate limits on (issue 12 item 5). For each count, a
//! fresh local cloud with that many groups (the demo's and N-1 more, each
//! with its own Auto Scaling group, load balancer, listener, target group
//! and instances on their own loopback addresses), one good revision
//! uploaded to every group at once, every execution followed to its end
//! (bounded), then read back (`local_cloud::scale::run`): how many
//! succeeded, the throttling answers greenlight's calls got against the
//! deployments that failed, whether any API call or any execution state
//! named another group's resources, whether each group ended as its own
//! deployment should leave it, and the overhead per deployment as ratios
//! to the first (1-group) run. Prints a Markdown section for BENCHMARKS.md.
//!
//!     target/debug/scale [TIME_SCALE] [COUNT...]     (default 0.2 1 10)
//!
//! Time scale 0.2, not the other benchmarks' 0.05: at 50 groups one moto
//! process serves every group's calls and is the bottleneck (180 s of CPU in
//! 247 s of wall at 0.2), and a faster clock only shortens CodeDeploy's emulated
//! waits, not moto's work. (Before the local cloud gave each function real
//! time for its own work, `local_cloud::lambda_host::real_timeout`, 0.05
//! also failed ten groups' Tune steps on `Sandbox.Timedout`.)

use local_cloud::cloud::{LocalCloud, Options};
use local_cloud::scale::run::{run, RunReport};
use local_cloud::scale::{percentile, ratio};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Each run's bound: every execution ends well within it at 50 groups
/// unless something is wrong (a deployment takes ~20 s real alone).
const BOUND: Duration = Duration::from_secs(600);

fn proc_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// utime + stime of a process, in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may contain spaces).
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

struct Measured {
    count: usize,
    startup_s: f64,
    report: Result<RunReport, String>,
    peak_self_mib: f64,
    peak_moto_mib: f64,
    cpu_self_s: f64,
    cpu_moto_s: f64,
    load_before: String,
    load_after: String,
}

async fn measure(root: &std::path::Path, scale: f64, count: usize) -> Measured {
    let work = root
        .join("target")
        .join("bench")
        .join(format!("scale-{}-{count}", std::process::id()));
    let mut options = Options::new(root, &work, scale);
    options.settings.termination_wait_minutes = 0;
    options.groups = count;
    let s = &options.settings;
    let settings_before = [
        s.interval_seconds,
        s.timeout_seconds,
        s.healthy_threshold,
        s.unhealthy_threshold,
    ];
    let load_before = loadavg();
    let t0 = Instant::now();
    let cloud = match LocalCloud::start(options).await {
        Ok(c) => c,
        Err(e) => {
            return Measured {
                count,
                startup_s: t0.elapsed().as_secs_f64(),
                report: Err(format!("the local cloud did not start: {e}")),
                peak_self_mib: proc_kib("self", "VmHWM:") as f64 / 1024.0,
                peak_moto_mib: 0.0,
                cpu_self_s: 0.0,
                cpu_moto_s: 0.0,
                load_before,
                load_after: loadavg(),
            }
        }
    };
    let startup_s = t0.elapsed().as_secs_f64();
    eprintln!("scale: {count} groups provisioned in {startup_s:.1} s; deploying");
    let moto_pid = cloud.moto_pid().map(|p| p.to_string()).unwrap_or_default();
    // Peak memory while deploying, sampled every 500 ms (VmRSS: the
    // process-wide VmHWM would carry an earlier run's peak).
    let peaks = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let sampler = {
        let (peaks, moto_pid) = (peaks.clone(), moto_pid.clone());
        tokio::spawn(async move {
            loop {
                peaks
                    .0
                    .fetch_max(proc_kib("self", "VmRSS:"), Ordering::Relaxed);
                peaks
                    .1
                    .fetch_max(proc_kib(&moto_pid, "VmRSS:"), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let (self0, moto0) = (cpu_ticks("self"), cpu_ticks(&moto_pid));
    let label = local_cloud::scenarios::new_label(&format!("s{count}"));
    let report = run(&cloud, &label, settings_before, BOUND).await;
    let (self1, moto1) = (cpu_ticks("self"), cpu_ticks(&moto_pid));
    sampler.abort();
    let load_after = loadavg();
    cloud.shutdown().await;
    Measured {
        count,
        startup_s,
        report,
        peak_self_mib: peaks.0.load(Ordering::Relaxed) as f64 / 1024.0,
        peak_moto_mib: peaks.1.load(Ordering::Relaxed) as f64 / 1024.0,
        cpu_self_s: self1.saturating_sub(self0) as f64 / 100.0,
        cpu_moto_s: moto1.saturating_sub(moto0) as f64 / 100.0,
        load_before,
        load_after,
    }
}

fn secs(ms: Option<i64>) -> String {
    ms.map(|v| format!("{:.1}", v as f64 / 1000.0))
        .unwrap_or_else(|| "n/a".into())
}

type Pick = fn(&local_cloud::scale::run::GroupOutcome) -> Option<i64>;

fn values(r: &RunReport, pick: Pick) -> Vec<i64> {
    r.groups.iter().filter_map(pick).collect()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let scale: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0.2);
    let mut counts: Vec<usize> = args.filter_map(|a| a.parse().ok()).collect();
    if counts.is_empty() {
        counts = vec![1, 10];
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut runs = Vec::new();
    for &count in &counts {
        let m = measure(&root, scale, count).await;
        match &m.report {
            Ok(r) => eprintln!(
                "scale: {count} groups: {} of {} succeeded in {:.1} s",
                r.groups.iter().filter(|g| g.status == "SUCCEEDED").count(),
                r.groups.len(),
                r.wall_ms as f64 / 1000.0
            ),
            Err(e) => eprintln!("scale: {count} groups: {e}"),
        }
        runs.push(m);
    }

    let list = counts
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    println!("## Scale: many deployment groups at once\n");
    println!("Command: `bench/run` (runs `target/debug/scale {scale} {list}`; `GREENLIGHT_BENCH_SCALE_COUNTS` sets the counts).\n");
    println!("For each count, one local cloud with that many deployment groups in the demo's CodeDeploy application (the demo's and N-1 more, each with its own blue Auto Scaling group, load balancer, port-80 listener, target group and two instances on their own loopback addresses; `OneAtATime`, termination wait 0, the seed's slow health check, time scale {scale}), the AWS-like API rate limits on (`RateMode::Aws`, README emulation table: e.g. CodeDeploy and Auto Scaling 10 burst / 5 per second per operation, ELBv2 writes 20 / 5, shared by every group as one account's), one good revision uploaded to every group at once and every execution followed to its end (bound {} s). Read back afterwards with the local cloud's own (unthrottled) credentials: the execution and deployment statuses; the request log of every call greenlight's functions and Step Functions made (its throttling answers, and which groups' resources each call named: names, instance ids, deployment ids, execution names); every execution's history (each step's input and output) against the other groups' resources; and each group's end state against its own deployment (listener → its own target group only, the target group holding exactly its deployment's green instances with the seed's health check restored, its blue Auto Scaling group deleted and only `CodeDeploy_<group>_<deployment>` left with the green instances).\n", BOUND.as_secs());
    println!("| groups | executions succeeded | deployments succeeded | API calls | throttling answers | deployments failed | calls naming 2+ groups | execution states naming another group | groups ending as their own deployment leaves them |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for m in &runs {
        match &m.report {
            Ok(r) => {
                let n = r.groups.len();
                let ok = r.groups.iter().filter(|g| g.status == "SUCCEEDED").count();
                let dep_ok = r
                    .groups
                    .iter()
                    .filter(|g| g.deployment_status.as_deref() == Some("Succeeded"))
                    .count();
                let clean = r
                    .groups
                    .iter()
                    .filter(|g| g.end_state_problems.is_empty())
                    .count();
                println!(
                    "| {} | {ok} of {n} | {dep_ok} of {n} | {} | {} | {} | {} | {} | {clean} of {n} |",
                    m.count,
                    r.calls,
                    r.throttled,
                    n - dep_ok,
                    r.calls_check.crossings.len(),
                    r.history_check.crossings.len(),
                );
            }
            Err(e) => println!("| {} | not measured: {e} | | | | | | | |", m.count),
        }
    }
    println!();
    let base = runs.first().and_then(|m| m.report.as_ref().ok());
    let rows: [(&str, Pick); 3] = [
        ("S3 upload → CreateDeployment", |g| g.upload_to_create_ms),
        ("Succeeded → execution end", |g| g.succeeded_to_end_ms),
        ("whole deployment (upload → execution end)", |g| {
            g.upload_to_end_ms
        }),
    ];
    let first = counts.first().copied().unwrap_or(1);
    println!("Overhead per deployment (real seconds, p50 / p95 over the groups of one run) and its ratio to the {first}-group run:\n");
    print!("| measure |");
    for m in &runs {
        print!(" {} groups |", m.count);
    }
    for m in runs.iter().skip(1) {
        print!(" {} ÷ {first} (p50 / p95) |", m.count);
    }
    println!();
    print!("|---|");
    for _ in 0..(runs.len() * 2).saturating_sub(1) {
        print!("---:|");
    }
    println!();
    for (name, pick) in rows {
        print!("| {name} |");
        for m in &runs {
            match &m.report {
                Ok(r) => {
                    let v = values(r, pick);
                    print!(
                        " {} / {} |",
                        secs(percentile(&v, 50.0)),
                        secs(percentile(&v, 95.0))
                    );
                }
                Err(_) => print!(" n/a |"),
            }
        }
        for m in runs.iter().skip(1) {
            match (&m.report, base) {
                (Ok(r), Some(b)) => {
                    let (v, bv) = (values(r, pick), values(b, pick));
                    print!(
                        " {} / {} |",
                        ratio(percentile(&v, 50.0), percentile(&bv, 50.0)),
                        ratio(percentile(&v, 95.0), percentile(&bv, 95.0))
                    );
                }
                _ => print!(" n/a |"),
            }
        }
        println!();
    }
    println!();
    println!("The machine during each run (the local cloud runs in this process, moto in its own; CPU seconds are user+sys while deploying, from /proc; load average before provisioning → after deploying):\n");
    println!("| groups | start-up (provisioning, blue fleets healthy) | batch wall (first upload → last execution end) | peak RSS: local cloud / moto | CPU s: local cloud / moto | load average |");
    println!("|---:|---:|---:|---:|---:|---|");
    for m in &runs {
        let wall = m
            .report
            .as_ref()
            .map(|r| format!("{:.1} s", r.wall_ms as f64 / 1000.0))
            .unwrap_or_else(|_| "n/a".into());
        println!(
            "| {} | {:.1} s | {wall} | {:.0} MiB / {:.0} MiB | {:.1} / {:.1} | {} → {} |",
            m.count,
            m.startup_s,
            m.peak_self_mib,
            m.peak_moto_mib,
            m.cpu_self_s,
            m.cpu_moto_s,
            m.load_before,
            m.load_after
        );
    }
    println!();
    for m in &runs {
        let Ok(r) = &m.report else { continue };
        let throttled: Vec<String> = r
            .throttled_by_api
            .iter()
            .map(|(api, n)| format!("{api} {n}"))
            .collect();
        println!(
            "- {} groups: throttling answers by API: {}.",
            m.count,
            if throttled.is_empty() {
                "none".to_string()
            } else {
                throttled.join(", ")
            }
        );
        let failed: Vec<String> = r
            .groups
            .iter()
            .filter(|g| g.status != "SUCCEEDED" || !g.end_state_problems.is_empty())
            .take(5)
            .map(|g| {
                format!(
                    "{} {} (deployment {}{}): {}",
                    g.group,
                    g.status,
                    g.deployment_status.as_deref().unwrap_or("none"),
                    g.error
                        .as_deref()
                        .map(|e| format!(
                            "; execution error {}",
                            e.chars().take(300).collect::<String>()
                        ))
                        .unwrap_or_default(),
                    g.end_state_problems.join("; ")
                )
            })
            .collect();
        if !failed.is_empty() {
            println!("  Not as expected (first 5): {}.", failed.join(" | "));
        }
        for (what, check) in [("calls", &r.calls_check), ("states", &r.history_check)] {
            if !check.crossings.is_empty() {
                let shown: Vec<String> = check
                    .crossings
                    .iter()
                    .zip(&check.evidence)
                    .take(5)
                    .map(|((w, g), e)| format!("{w} named {} (`{e}`)", g.join(" and ")))
                    .collect();
                println!("  Crossing {what} (first 5): {}.", shown.join("; "));
            }
            println!(
                "  {what}: {} looked at, {} named one group, {} named none.",
                check.looked_at,
                check.by_group.values().sum::<usize>(),
                check.unattributed
            );
        }
    }
}
