//! Transitions and cost per deployment as the deployment's length grows
//! (issue 12, item 3): the same good deployment of one instance, with a
//! blue termination wait that makes it last about 2 minutes, 25 minutes or
//! 2 hours, run under three variants of the same state machine side by side
//! (each its own local cloud):
//!
//! - fixed 10 s polling: the status loop polls every 10 s (the state machine
//!   with its event wait replaced by the plain Wait, `polling_only`, and the
//!   watcher's waits all 10 s): a hand-written polling loop;
//! - adaptive polling: greenlight before CodeDeploy's events woke the loop
//!   (polling only, template.yaml's waits: 5..60 s from the predictions);
//! - greenlight: the loop waits in `AwaitDeploymentEvent` for CodeDeploy's
//!   state-change events, with the predicted time to the next event (at most
//!   `MAX_EVENT_WAIT_SECONDS`) as the fallback look.
//!
//! The local Step Functions runs its waits on the simulated clock here
//! (`StepFunctionsWaits::Simulated`: a Wait's seconds and a callback wait's
//! timeout times the time scale), so each variant makes the transitions it
//! would make on AWS. Transitions are read from the execution history: one
//! per state entered plus one per retry (Step Functions pricing: "each time
//! a step of your workflow is executed", retries included). Lambda: every
//! invocation the local Lambda host ran for the deployment (the wakes from
//! EventBridge included), its real duration at template.yaml's MemorySize.
//!
//!     target/debug/transitions [TIME_SCALE]     (default 0.02)

use greenlight_aws::approval::execution_history;
use local_cloud::cloud::{LocalCloud, Options, StepFunctionsWaits, WatcherWaits};
use local_cloud::revisions::RevisionKind;
use local_cloud::scenarios;
use std::path::PathBuf;

/// Step Functions Standard workflows, us-east-1: $0.025 per 1,000 state
/// transitions (AWS Step Functions pricing page).
const USD_PER_TRANSITION: f64 = 0.025 / 1000.0;
/// Lambda arm64 (what greenlight ships), us-east-1: $0.0000133334 per
/// GB-second and $0.20 per million requests (AWS Lambda pricing page).
const USD_PER_GB_SECOND: f64 = 0.000_013_333_4;
const USD_PER_REQUEST: f64 = 0.20 / 1_000_000.0;
/// template.yaml's `Globals.Function.MemorySize`.
const MEMORY_GB: f64 = 128.0 / 1024.0;
/// The goal: transitions per deployment at any length.
const GOAL_TRANSITIONS: usize = 30;

#[derive(Clone, Copy)]
struct Variant {
    name: &'static str,
    polling_only: bool,
    waits: WatcherWaits,
}

const FIXED_10S: Variant = Variant {
    name: "fixed 10 s polling",
    polling_only: true,
    waits: WatcherWaits {
        min_seconds: 10,
        max_seconds: 10,
        max_event_seconds: 10,
    },
};
const ADAPTIVE: Variant = Variant {
    name: "adaptive polling (before events)",
    polling_only: true,
    waits: WatcherWaits::TEMPLATE,
};
const GREENLIGHT: Variant = Variant {
    name: "greenlight (events + fallback)",
    polling_only: false,
    waits: WatcherWaits::TEMPLATE,
};

struct Measured {
    status: String,
    /// Deployment create → complete, AWS seconds.
    length_seconds: f64,
    transitions: usize,
    /// Event waits that a CodeDeploy event (or the await task) ended, and
    /// that timed out (the fallback look).
    woken: usize,
    timed_out: usize,
    invocations: usize,
    gb_seconds: f64,
}

impl Measured {
    fn step_functions_usd(&self) -> f64 {
        self.transitions as f64 * USD_PER_TRANSITION
    }
    fn lambda_usd(&self) -> f64 {
        self.gb_seconds * USD_PER_GB_SECOND + self.invocations as f64 * USD_PER_REQUEST
    }
}

/// Transitions as Step Functions bills them: each state entered, and each
/// retry of a task (a further scheduling within the same state entry).
fn billed_transitions(kinds: &[String]) -> usize {
    let mut transitions = 0;
    let mut scheduled_in_state = 0;
    for kind in kinds {
        if kind.ends_with("StateEntered") {
            transitions += 1;
            scheduled_in_state = 0;
        } else if kind == "TaskScheduled" || kind == "LambdaFunctionScheduled" {
            if scheduled_in_state > 0 {
                transitions += 1;
            }
            scheduled_in_state += 1;
        }
    }
    transitions
}

async fn run(variant: Variant, termination_wait_minutes: i32, scale: f64) -> Measured {
    let name = format!(
        "{}-{termination_wait_minutes}",
        variant.name.split_whitespace().next().unwrap_or("variant")
    );
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = root
        .join("target")
        .join("bench")
        .join(format!("transitions-{name}-{}", std::process::id()));
    let mut options = Options::new(&root, &work, scale);
    options.settings.instances = 1;
    options.settings.termination_wait_minutes = termination_wait_minutes;
    options.step_functions_waits = StepFunctionsWaits::Simulated;
    options.watcher_waits = variant.waits;
    options.polling_only = variant.polling_only;
    options.record_invocations = true;
    let cloud = LocalCloud::start(options)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let invocations_before = cloud.lambda.invocations().len();
    let label = scenarios::new_label(&name);
    let report =
        scenarios::upload_and_follow(&cloud, RevisionKind::Good, &label, false, &mut |_| {})
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    // The last wake (the SUCCESS event) may still be on its way: let the
    // relay deliver it so its invocation is counted.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let sfn = aws_sdk_sfn::Client::new(&cloud.sdk);
    let history = execution_history(&sfn, &report.followed.execution_arn)
        .await
        .unwrap_or_else(|e| panic!("{name}: history: {e}"));
    let invocations: Vec<_> = cloud
        .lambda
        .invocations()
        .into_iter()
        .skip(invocations_before)
        .collect();
    cloud.shutdown().await;
    let kinds: Vec<String> = history.iter().map(|e| e.kind.clone()).collect();
    // The event wait's ends: TaskSucceeded right after a task scheduled in
    // AwaitDeploymentEvent (woken), TaskTimedOut (the fallback look).
    let mut in_event_wait = false;
    let (mut woken, mut timed_out) = (0, 0);
    for e in &history {
        if e.kind.ends_with("StateEntered") {
            in_event_wait =
                e.state_name.as_deref() == Some(greenlight_core::wake::AWAIT_EVENT_STATE);
        } else if in_event_wait && e.kind == "TaskSucceeded" {
            woken += 1;
        } else if in_event_wait && e.kind == "TaskTimedOut" {
            timed_out += 1;
        }
    }
    let view = report.followed.deployment.as_ref();
    let length_seconds = match view.and_then(|v| Some((v.created_at_ms?, v.completed_at_ms?))) {
        Some((a, b)) => (b - a) as f64 / 1000.0 / scale,
        None => f64::NAN,
    };
    Measured {
        status: report.followed.status.clone(),
        length_seconds,
        transitions: billed_transitions(&kinds),
        woken,
        timed_out,
        invocations: invocations.len(),
        gb_seconds: invocations
            .iter()
            .map(|i| i.duration.as_secs_f64().max(0.001) * MEMORY_GB)
            .sum(),
    }
}

fn minutes(seconds: f64) -> String {
    if seconds.is_finite() {
        format!("{:.1} min", seconds / 60.0)
    } else {
        "?".to_string()
    }
}

#[tokio::main]
async fn main() {
    let scale: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0.02);
    // Termination waits that make a one-instance deployment last about 2
    // minutes, 25 minutes and 2 hours.
    let lengths: [(&str, i32); 3] = [("2 min", 0), ("25 min", 22), ("2 h", 117)];
    let variants = [FIXED_10S, ADAPTIVE, GREENLIGHT];
    let mut rows = Vec::new();
    for (label, wait) in lengths {
        // The three variants side by side, each on its own local cloud.
        let (fixed, adaptive, events) = tokio::join!(
            run(FIXED_10S, wait, scale),
            run(ADAPTIVE, wait, scale),
            run(GREENLIGHT, wait, scale)
        );
        rows.push((label, wait, [fixed, adaptive, events]));
    }

    println!("## Transitions and cost per deployment\n");
    println!("Command: `bench/run` (runs `target/debug/transitions {scale}`).\n");
    println!("One instance, `CodeDeployDefault.OneAtATime`, greenlight's tuned health checks, a blue termination wait of 0, 22 or 117 minutes so the deployment lasts about 2 minutes, 25 minutes or 2 hours (its measured length below), time scale {scale}. Three variants of the same state machine side by side, each on its own local cloud: **{}** (the status loop's event wait replaced by the plain Wait, every wait 10 s: a hand-written polling loop), **{}** (the same polling-only machine with template.yaml's waits, 5..60 s from the predicted phase durations: greenlight before this change) and **{}** (the loop waits in `AwaitDeploymentEvent` until CodeDeploy's state-change event for Ready or the end wakes it, with the predicted time to that event, at most `MAX_EVENT_WAIT_SECONDS` 3600, as the fallback look). The local Step Functions runs Wait states and callback timeouts on the simulated clock for this run (`StepFunctionsWaits::Simulated`), so each variant makes the transitions it would make on AWS. Transitions from each execution's history: one per state entered plus one per task retry, as Step Functions bills them; cost at Standard-workflow prices (us-east-1, $0.025 per 1,000 transitions); Lambda: every invocation for the deployment (the EventBridge wakes included), its real duration at 128 MB, arm64 prices ($0.0000133334 per GB-s, $0.20 per million requests).\n", variants[0].name, variants[1].name, variants[2].name);
    println!("| deployment | measured length | variant | execution | transitions | Step Functions $ | Lambda invocations | Lambda GB-s | Lambda $ | event waits woken / timed out |");
    println!("|---|---:|---|---|---:|---:|---:|---:|---:|---|");
    for (label, wait, measured) in &rows {
        for (variant, m) in variants.iter().zip(measured.iter()) {
            let waits = if variant.polling_only {
                "-".to_string()
            } else {
                format!("{} / {}", m.woken, m.timed_out)
            };
            println!(
                "| {label} (termination wait {wait} min) | {} | {} | {} | {} | {:.5} | {} | {:.2} | {:.6} | {waits} |",
                minutes(m.length_seconds),
                variant.name,
                m.status,
                m.transitions,
                m.step_functions_usd(),
                m.invocations,
                m.gb_seconds,
                m.lambda_usd(),
            );
        }
    }
    println!("\nRatios (transitions of the baseline ÷ greenlight's) and the goal (≤ {GOAL_TRANSITIONS} transitions per deployment at any length):\n");
    println!("| deployment | fixed 10 s ÷ greenlight | adaptive polling ÷ greenlight | greenlight transitions | goal |");
    println!("|---|---:|---:|---:|---|");
    let mut worst = 0;
    for (label, _, [fixed, adaptive, events]) in &rows {
        let ratio = |b: &Measured| {
            if events.transitions > 0 {
                format!("{:.1}×", b.transitions as f64 / events.transitions as f64)
            } else {
                "?".to_string()
            }
        };
        worst = worst.max(events.transitions);
        let goal = if events.transitions <= GOAL_TRANSITIONS {
            "met".to_string()
        } else {
            format!("missed by {}", events.transitions - GOAL_TRANSITIONS)
        };
        println!(
            "| {label} | {} | {} | {} | {goal} |",
            ratio(fixed),
            ratio(adaptive),
            events.transitions
        );
    }
    println!("\nAt most {worst} transitions per deployment for greenlight at any of these lengths (goal ≤ {GOAL_TRANSITIONS}: {}).", if worst <= GOAL_TRANSITIONS { "met" } else { "missed" });
    println!("\nLimits: the functions, moto and the local Lambda host run in real time while CodeDeploy's steps and the waits run at the time scale, so each Lambda call of a look takes 1 / {scale} times longer in simulated seconds than on AWS: the polling variants look a little less often than their waits say (their transitions here are a lower bound, so the ratios are too); the watcher reads elapsed phase time on the real clock, so its predictions of the time left run long under the time scale (the adaptive variant then waits its 60 s cap more often; greenlight's fallback look comes later, which only matters when an event is lost). Lambda durations are this machine's (x86_64, debug build), not Lambda's arm64: the GB-s column compares variants, it does not price a real account.");
}
