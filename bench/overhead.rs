//! Orchestration overhead: what greenlight itself adds around CodeDeploy,
//! over N good deployments (default 20) of one group, one after another, on
//! one local cloud:
//!
//! - upload → CreateDeployment: the S3 event, the trigger, StartExecution,
//!   Admit, Tune and Create (the object's upload finished → the deployment's
//!   `createTime`);
//! - Ready → ContinueDeployment: the watcher noticing Ready (one Wait state)
//!   and the traffic validator's gate (the last green install event ended →
//!   the first green AllowTraffic-phase event started);
//! - Succeeded → execution end: the watcher noticing the end (one Wait
//!   state) and Restore (`completeTime` → the execution's `stopDate`).
//!
//! All three run in real time on the local cloud (the Lambdas, the state
//! machine, moto); only CodeDeploy's own steps are shortened by the time
//! scale. Prints a Markdown section for BENCHMARKS.md (`bench/run`).
//!
//!     target/debug/overhead [COUNT] [TIME_SCALE]

use greenlight_core::{DeploymentView, FleetLabel};
use local_cloud::cloud::{LocalCloud, Options};
use local_cloud::revisions::RevisionKind;
use local_cloud::scenarios;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// One deployment's three overheads, in milliseconds.
struct Overheads {
    upload_to_create: Option<i64>,
    ready_to_continue: Option<i64>,
    succeeded_to_end: Option<i64>,
}

const INSTALL_EVENTS: [&str; 5] = [
    "ApplicationStop",
    "BeforeInstall",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
];
const TRAFFIC_EVENTS: [&str; 3] = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"];

fn green_events<'a>(
    view: &'a DeploymentView,
    names: &'a [&'a str],
) -> impl Iterator<Item = &'a greenlight_core::LifecycleEventView> + 'a {
    view.targets
        .iter()
        .filter(|t| t.label == Some(FleetLabel::Green))
        .flat_map(|t| t.lifecycle_events.iter())
        .filter(move |e| names.contains(&e.name.as_str()))
}

fn ready_to_continue(view: &DeploymentView) -> Option<i64> {
    let ready = green_events(view, &INSTALL_EVENTS)
        .filter_map(|e| e.ended_at_ms)
        .max()?;
    let continued = green_events(view, &TRAFFIC_EVENTS)
        .filter_map(|e| e.started_at_ms)
        .min()?;
    Some(continued - ready)
}

fn percentile(values: &[i64], p: f64) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn seconds(ms: Option<i64>) -> String {
    ms.map(|v| format!("{:.2}", v as f64 / 1000.0))
        .unwrap_or_else(|| "n/a".to_string())
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let scale: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0.05);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = root
        .join("target")
        .join("bench")
        .join(format!("overhead-{}", std::process::id()));
    let mut options = Options::new(&root, &work, scale);
    options.settings.termination_wait_minutes = 0;
    let cloud = LocalCloud::start(options)
        .await
        .unwrap_or_else(|e| panic!("overhead: {e}"));
    let sfn = aws_sdk_sfn::Client::new(&cloud.sdk);
    let mut runs = Vec::with_capacity(count);
    let mut failed = Vec::new();
    for n in 0..count {
        let label = scenarios::new_label(&format!("9{n:02}"));
        let uploaded_at = now_ms();
        let report =
            scenarios::upload_and_follow(&cloud, RevisionKind::Good, &label, false, &mut |_| {})
                .await
                .unwrap_or_else(|e| panic!("deployment {n}: {e}"));
        if report.followed.status != "SUCCEEDED" {
            failed.push(format!("{n}: {}", report.followed.status));
            continue;
        }
        let Some(view) = report.followed.deployment.as_ref() else {
            failed.push(format!("{n}: no deployment"));
            continue;
        };
        let stopped_at = sfn
            .describe_execution()
            .execution_arn(&report.followed.execution_arn)
            .send()
            .await
            .ok()
            .and_then(|d| d.stop_date().map(|t| t.to_millis().unwrap_or_default()));
        runs.push(Overheads {
            upload_to_create: view.created_at_ms.map(|c| c - uploaded_at),
            ready_to_continue: ready_to_continue(view),
            succeeded_to_end: match (view.completed_at_ms, stopped_at) {
                (Some(c), Some(s)) => Some(s - c),
                _ => None,
            },
        });
        eprintln!("overhead: deployment {}/{count} done", n + 1);
    }
    cloud.shutdown().await;

    println!("## Orchestration overhead\n");
    println!("Command: `bench/run` (runs `target/debug/overhead {count} {scale}`).\n");
    println!("{count} good deployments of one group, one after another, on one local cloud (time scale {scale} for CodeDeploy's own steps; greenlight's functions, the state machine and moto run in real time). {} succeeded{}.\n", runs.len(), if failed.is_empty() { String::new() } else { format!(", not counted: {}", failed.join("; ")) });
    println!("| overhead (real seconds) | p50 | p95 | goal |");
    println!("|---|---:|---:|---|");
    type Pick = fn(&Overheads) -> Option<i64>;
    let rows: [(&str, Pick); 3] = [
        ("S3 upload → CreateDeployment", |o| o.upload_to_create),
        ("Ready → ContinueDeployment (Wait + gate)", |o| {
            o.ready_to_continue
        }),
        ("Succeeded → execution end (Wait + Restore)", |o| {
            o.succeeded_to_end
        }),
    ];
    for (name, pick) in rows {
        let values: Vec<i64> = runs.iter().filter_map(pick).collect();
        let p50 = percentile(&values, 50.0);
        let verdict = match p50 {
            Some(v) if v < 1000 => "p50 < 1 s: met".to_string(),
            Some(v) => format!("p50 < 1 s: missed by {:.2} s", (v - 1000) as f64 / 1000.0),
            None => "not measured".to_string(),
        };
        println!(
            "| {name} | {} | {} | {verdict} |",
            seconds(p50),
            seconds(percentile(&values, 95.0))
        );
    }
    println!("\nWhat bounds each: the status loop waits in `AwaitDeploymentEvent` until CodeDeploy's READY or SUCCESS event wakes it (EventBridge → the local relay's queue poll → the watcher's SendTaskSuccess), so Ready → Continue and Succeeded → end each contain one event delivery instead of a polling Wait (the local watcher's fallback look comes at most 10 s later when an event is lost; `WatcherWaits::LOCAL`). Ready → Continue also contains the gate itself: 3 consecutive passing probes of every green instance, 200 ms apart on the local cloud (1 s on AWS by default: `PROBE_INTERVAL_MS`), which is the point of the gate, not overhead to remove.");
}
