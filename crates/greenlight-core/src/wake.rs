//! Waking the status loop on CodeDeploy's own events (issue 12, item 3).
//!
//! Between two looks the execution waits in [`AWAIT_EVENT_STATE`], a
//! `lambda:invoke.waitForTaskToken` task (Step Functions developer guide,
//! "Wait for a Callback with the Task Token") whose `TimeoutSecondsPath` is
//! the status report's `eventWaitSeconds`: the look the execution takes
//! anyway when no event comes, because EventBridge delivers CodeDeploy's
//! events best effort (EventBridge events reference, "AWS CodeDeploy events":
//! "Delivery type: Best effort"). A "CodeDeploy Deployment State-change
//! Notification" whose state changes what the loop does next
//! ([`WAKING_STATES`]) answers the wait's token: the deployment's description
//! names the execution ([`crate::watch::execution_of_description`]), and the
//! execution's history holds the token ([`crate::approval::pending_task`]).
//!
//! So a deployment costs a fixed number of transitions however long it runs:
//! the wait lasts until the next event the loop acts on (Ready, the end),
//! bounded by the predicted time to that event ([`event_wait_seconds`]) so a
//! lost event costs one late look, never a stuck deployment.

use crate::model::{DeploymentStatus, EpochMillis, Phase, PhaseTiming};
use crate::watch::{phase_remaining_seconds, Predictions};
use serde::{Deserialize, Serialize};

/// The state that waits for a CodeDeploy event (or its timeout) between looks.
pub const AWAIT_EVENT_STATE: &str = "AwaitDeploymentEvent";

/// The deployment states whose event wakes the loop: Ready (the gate runs),
/// and the ends. `START` is not one: the loop looks right after it created
/// the deployment anyway.
pub const WAKING_STATES: [&str; 4] = ["READY", "SUCCESS", "FAILURE", "STOP"];

/// True when a deployment state-change event in `state` should wake the loop.
pub fn wakes(state: &str) -> bool {
    WAKING_STATES.contains(&state)
}

/// A "CodeDeploy Deployment State-change Notification" event's `detail`, as
/// much as the wake needs (EventBridge events reference; shape as in
/// `events/codedeploy-state-change-ready.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStateChange {
    pub deployment_id: String,
    pub state: String,
    #[serde(default)]
    pub application: String,
    #[serde(default)]
    pub deployment_group: String,
}

/// What one wake did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WakeOutcome {
    /// The execution's wait was answered: it looks now.
    Woke,
    /// The `await` task found nothing new since the last look: the wait lasts
    /// until a wake or its timeout.
    Waiting,
    /// The event's state does not change what the loop does (e.g. `START`).
    NotAWakingState,
    /// The deployment was not created by a greenlight execution (another
    /// tool's, or a CodeDeploy rollback deployment).
    NotGreenlights,
    /// The execution is not waiting (it is looking, or has ended): nothing to
    /// wake; its next look sees the change.
    NotWaiting,
    /// The wait ended between the history read and the answer (its timeout,
    /// or another wake): nothing lost.
    AlreadyAnswered,
}

/// The wake's answer (logged; EventBridge ignores it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WakeReport {
    pub deployment_id: String,
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_name: Option<String>,
    pub outcome: WakeOutcome,
}

/// The `await` task's decision: answer its own token at once when the
/// deployment moved to a state the loop acts on between the look that saw
/// `seen` and the moment the wait's token existed (its event may have come
/// before the token could be found, and would be lost).
pub fn changed_since_look(seen: DeploymentStatus, now: DeploymentStatus) -> bool {
    now != seen && (now.is_terminal() || now == DeploymentStatus::Ready)
}

/// SendTaskSuccess's output: why the wait ended (kept out of the state's
/// data by `ResultPath: null`; visible in the history).
pub fn wake_output(deployment_id: &str, cause: &str) -> String {
    serde_json::json!({"deploymentId": deployment_id, "wokenBy": cause}).to_string()
}

/// Bounds of the event wait: at least `min_seconds` (`MIN_WAIT_SECONDS`), at
/// most `max_seconds` (`MAX_EVENT_WAIT_SECONDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventWaitBounds {
    pub min_seconds: u32,
    pub max_seconds: u32,
}

/// The phases up to the next deployment-level event the loop acts on: before
/// Ready, the phases up to `ReadyWait` (the READY event ends them); from the
/// reroute on, up to `Terminating` (SUCCESS ends them).
fn phases_until_next_event(phase: Phase) -> &'static [Phase] {
    match phase {
        Phase::Queued => &[Phase::Provisioning, Phase::Installing, Phase::ReadyWait],
        Phase::Provisioning => &[Phase::Installing, Phase::ReadyWait],
        Phase::Installing => &[Phase::ReadyWait],
        Phase::Rerouting => &[Phase::Terminating],
        Phase::ReadyWait | Phase::Terminating | Phase::Done => &[],
    }
}

/// Seconds the loop waits for a CodeDeploy event before it looks anyway.
///
/// The predicted time until the next event the loop acts on: what is left of
/// the current phase ([`phase_remaining_seconds`], `elapsed / 4` once it
/// overran) plus the full prediction of each phase before that event. A lost
/// event therefore costs one look at about the time the event was due, then
/// looks that grow with the overrun, as the polling loop's do. Bounded to
/// `[min, max]`, and never past `bound_ms` (the deadline, or past the point
/// of no return the post-reroute bound) by more than `min`.
pub fn event_wait_seconds(
    phase: Phase,
    ledger: &[PhaseTiming],
    predictions: &Predictions,
    green_instances: usize,
    bound_ms: EpochMillis,
    now: EpochMillis,
    bounds: EventWaitBounds,
) -> u32 {
    let min = i64::from(bounds.min_seconds.max(1));
    let max = i64::from(bounds.max_seconds).max(min);
    let current = phase_remaining_seconds(
        phase,
        ledger,
        predictions.phase_seconds(phase, green_instances),
        now,
    )
    .unwrap_or(min);
    let later: i64 = phases_until_next_event(phase)
        .iter()
        .filter_map(|p| predictions.phase_seconds(*p, green_instances))
        .map(i64::from)
        .sum();
    let until_bound = (bound_ms - now).max(0) / 1000;
    let wait = current
        .saturating_add(later)
        .clamp(min, max)
        .min(until_bound.max(min));
    u32::try_from(wait).unwrap_or(bounds.max_seconds)
}

#[cfg(test)]
#[path = "wake_tests.rs"]
mod tests;
