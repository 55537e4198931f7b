//! Rerouting benchmark: the same two-instance blue/green deployment of the
//! same revision, run on the local cloud twice, side by side in one process:
//!
//! - baseline: the health-check tuner applies the target group's own settings
//!   (the seed's interval 30 s, timeout 5 s, healthy 10, unhealthy 2,
//!   deregistration delay 300 s), i.e. plain CodeDeploy with the team's ALB;
//! - greenlight: the default fast profile (5 s, 2 s, 2, 2, 30 s).
//!
//! It measures, from CodeDeploy's own lifecycle events (read back through the
//! API), the AllowTraffic and BlockTraffic durations and the whole deployment,
//! in AWS seconds (measured real time divided by the time scale), and prints
//! the ratios as a Markdown table for BENCHMARKS.md.
//!
//!     cargo run -p greenlight-bench --bin rerouting -- [TIME_SCALE]

use greenlight_core::tuning::FastProfile;
use greenlight_core::{DeploymentView, FleetLabel, HealthCheckSettings};
use local_cloud::cloud::{LocalCloud, Options};
use local_cloud::revisions::RevisionKind;
use local_cloud::scenarios;
use std::path::PathBuf;

struct Measured {
    allow_traffic: f64,
    block_traffic: f64,
    total: f64,
    status: String,
}

fn event_seconds(view: &DeploymentView, label: FleetLabel, event: &str, scale: f64) -> f64 {
    view.targets
        .iter()
        .filter(|t| t.label == Some(label))
        .flat_map(|t| t.lifecycle_events.iter())
        .filter(|e| e.name == event)
        .filter_map(|e| Some((e.ended_at_ms? - e.started_at_ms?) as f64 / 1000.0))
        .sum::<f64>()
        / scale
}

async fn run(name: &str, profile: FastProfile, scale: f64) -> Measured {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = root
        .join("target")
        .join("bench")
        .join(format!("{name}-{}", std::process::id()));
    let mut options = Options::new(&root, &work, scale);
    options.settings.termination_wait_minutes = 0;
    options.tuner_profile = profile;
    let cloud = LocalCloud::start(options)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let label = scenarios::new_label(name);
    let report =
        scenarios::upload_and_follow(&cloud, RevisionKind::Good, &label, false, &mut |_| {})
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    cloud.shutdown().await;
    let view = report
        .followed
        .deployment
        .unwrap_or_else(|| panic!("{name}: no deployment"));
    let total = match (view.created_at_ms, view.completed_at_ms) {
        (Some(a), Some(b)) => (b - a) as f64 / 1000.0 / scale,
        _ => f64::NAN,
    };
    Measured {
        allow_traffic: event_seconds(&view, FleetLabel::Green, "AllowTraffic", scale),
        block_traffic: event_seconds(&view, FleetLabel::Blue, "BlockTraffic", scale),
        total,
        status: report.followed.status,
    }
}

#[tokio::main]
async fn main() {
    let scale: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0.05);
    let baseline_profile = FastProfile {
        health_check: HealthCheckSettings {
            interval_seconds: 30,
            timeout_seconds: 5,
            healthy_threshold: 10,
            unhealthy_threshold: 2,
        },
        deregistration_delay_seconds: 300,
    };
    // Side by side: both deployments run at the same time on their own local clouds.
    let (baseline, tuned) = tokio::join!(
        run("baseline", baseline_profile, scale),
        run("greenlight", FastProfile::default(), scale)
    );
    println!("time scale {scale}; two instances, CodeDeployDefault.OneAtATime, termination wait 0");
    println!(
        "baseline execution {}, greenlight execution {}\n",
        baseline.status, tuned.status
    );
    println!("| measure (AWS seconds, summed over instances) | baseline (seed settings) | greenlight (tuned) | ratio |");
    println!("|---|---:|---:|---:|");
    for (name, b, g) in [
        ("AllowTraffic", baseline.allow_traffic, tuned.allow_traffic),
        ("BlockTraffic", baseline.block_traffic, tuned.block_traffic),
        ("whole deployment", baseline.total, tuned.total),
    ] {
        println!("| {name} | {b:.1} | {g:.1} | {:.1}× faster |", b / g);
    }
}
