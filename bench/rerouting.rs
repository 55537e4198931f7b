//! Rerouting benchmark: the same two-instance blue/green deployment of the
//! same revision, run on the local cloud three times, side by side in one
//! process (each its own local cloud, started together):
//!
//! - ALB defaults: the settings a new target group gets (interval 30 s,
//!   timeout 5 s, healthy 5, unhealthy 2, deregistration delay 300 s);
//! - team: the original team's settings (30 / 5 / 10 / 2 / 300), i.e. plain
//!   CodeDeploy with the team's ALB;
//! - greenlight: the default fast profile (5 s, 2 s, 2, 2, 30 s).
//!
//! It measures, from CodeDeploy's own lifecycle events (read back through the
//! API), the AllowTraffic and BlockTraffic durations and the whole deployment,
//! the blue termination (Terminating, termination wait 0), in AWS seconds
//! (measured real time divided by the time scale), with the ALB's
//! registration latency as the local cloud emulates it, and prints a
//! Markdown section for BENCHMARKS.md: durations, ratios against greenlight,
//! and the distance of greenlight's AllowTraffic to its floor. `bench/run`
//! runs it.
//!
//!     target/debug/rerouting [TIME_SCALE]

use greenlight_core::tuning::FastProfile;
use greenlight_core::{DeploymentView, FleetLabel, HealthCheckSettings};
use local_cloud::cloud::{LocalCloud, Options};
use local_cloud::load_balancer::Propagation;
use local_cloud::revisions::RevisionKind;
use local_cloud::scenarios;
use std::path::PathBuf;

struct Measured {
    allow_traffic: f64,
    block_traffic: f64,
    terminating: f64,
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

/// From the end of blue's last BlockTraffic step to the deployment's end:
/// the "Terminating original instances" step (CodeDeploy records no
/// lifecycle event for it), with a termination wait of 0.
fn terminating_seconds(view: &DeploymentView, scale: f64) -> f64 {
    let blocked = view
        .targets
        .iter()
        .filter(|t| t.label == Some(FleetLabel::Blue))
        .flat_map(|t| t.lifecycle_events.iter())
        .filter_map(|e| e.ended_at_ms)
        .max();
    match (blocked, view.completed_at_ms) {
        (Some(a), Some(b)) => (b - a) as f64 / 1000.0 / scale,
        _ => f64::NAN,
    }
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
        terminating: terminating_seconds(&view, scale),
        total,
        status: report.followed.status,
    }
}

/// Settings as the ALB API takes them: interval, timeout, healthy and
/// unhealthy thresholds, deregistration delay.
fn profile(interval: u32, timeout: u32, healthy: u32, unhealthy: u32, dereg: u32) -> FastProfile {
    FastProfile {
        health_check: HealthCheckSettings {
            interval_seconds: interval,
            timeout_seconds: timeout,
            healthy_threshold: healthy,
            unhealthy_threshold: unhealthy,
        },
        deregistration_delay_seconds: dereg,
    }
}

#[tokio::main]
async fn main() {
    let scale: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0.05);
    let greenlight = FastProfile::default();
    // Side by side: the three deployments run at the same time, each on its own local cloud.
    let (defaults, team, tuned) = tokio::join!(
        run("alb-defaults", profile(30, 5, 5, 2, 300), scale),
        run("team", profile(30, 5, 10, 2, 300), scale),
        run("greenlight", greenlight, scale)
    );
    let registration = Propagation::default().registration.as_secs_f64();
    let hc = &greenlight.health_check;
    // The floor the issue and the tuner use: the registration latency, then
    // (healthy x interval) + interval to turn healthy (the first check up to
    // one interval after registration: `tuning::allow_traffic_seconds`).
    let floor_per_instance =
        registration + f64::from(greenlight_core::tuning::allow_traffic_seconds(hc));
    let instances = 2.0;
    let floor = floor_per_instance * instances;

    println!("## Phase durations by load-balancer settings\n");
    println!("Command: `bench/run` (runs `target/debug/rerouting {scale}`).\n");
    println!("Two instances, `CodeDeployDefault.OneAtATime`, termination wait 0, time scale {scale}; three local clouds side by side in one process; the emulated ALB's registration latency is {registration:.0} s (README emulation table). Durations in AWS seconds, summed over the instances, from CodeDeploy's lifecycle events read back through the API. Executions: ALB defaults {}, team {}, greenlight {}.\n", defaults.status, team.status, tuned.status);
    println!("| phase | ALB defaults (30/5/5/2/300) | team (30/5/10/2/300) | greenlight (5/2/2/2/30) | defaults ÷ greenlight | team ÷ greenlight |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, d, t, g) in [
        (
            "AllowTraffic",
            defaults.allow_traffic,
            team.allow_traffic,
            tuned.allow_traffic,
        ),
        (
            "BlockTraffic",
            defaults.block_traffic,
            team.block_traffic,
            tuned.block_traffic,
        ),
        (
            "Terminating",
            defaults.terminating,
            team.terminating,
            tuned.terminating,
        ),
        ("whole deployment", defaults.total, team.total, tuned.total),
    ] {
        println!(
            "| {name} | {d:.1} | {t:.1} | {g:.1} | {} | {} |",
            ratio(d, g),
            ratio(t, g)
        );
    }
    let distance = (tuned.allow_traffic - floor) / floor * 100.0;
    // The emulated ALB's own minimum: the registration latency, then the
    // first check one interval after it (the harsher reading, see
    // local_cloud::load_balancer's health checker) and one more interval per
    // further check: registration + healthy x interval. The floor
    // allows one interval more (the first check "up to one interval" after
    // registration, then healthy x interval).
    let minimum_per_instance =
        registration + f64::from(hc.healthy_threshold) * f64::from(hc.interval_seconds);
    let minimum = minimum_per_instance * instances;
    let over_minimum = (tuned.allow_traffic - minimum) / minimum * 100.0;
    let verdict = if distance.abs() <= 10.0 {
        "goal (within 10 % of the floor) met".to_string()
    } else if distance < 0.0 {
        format!(
            "faster than the floor by {:.1} points more than the goal's 10 %, because the floor counts one interval more than the emulated ALB needs: its minimum is the registration latency plus {} checks one interval apart, the first one interval after the registration = {minimum_per_instance:.0} s per instance, {minimum:.0} s for two, and the measured AllowTraffic is {over_minimum:+.1} % from that minimum (the rest: the emulated CodeDeploy looks at the targets' health every 50 ms real, and every real millisecond of scheduling on the shared machine counts 1 / time scale simulated milliseconds)",
            -distance - 10.0,
            hc.healthy_threshold
        )
    } else {
        format!(
            "goal (within 10 % of the floor) missed by {:.1} points",
            distance - 10.0
        )
    };
    println!("\nFloor of greenlight's AllowTraffic: ({} × {} s) + {} s per instance plus the {registration:.0} s registration latency = {floor_per_instance:.0} s per instance, {floor:.0} s for two. Measured {:.1} s: {distance:+.1} % from the floor; {verdict}.", hc.healthy_threshold, hc.interval_seconds, hc.interval_seconds, tuned.allow_traffic);
    println!("\nLimits: the local cloud's provisioning and install times are constants, not measurements of EC2; what the settings change is AllowTraffic (health checks after registration) and BlockTraffic (the deregistration delay), and the ratios for those are the result. The whole deployment also contains the fixed provisioning and install steps.");
}

fn ratio(baseline: f64, greenlight: f64) -> String {
    if greenlight > 0.0 && baseline.is_finite() {
        format!("{:.1}×", baseline / greenlight)
    } else {
        "n/a".to_string()
    }
}
