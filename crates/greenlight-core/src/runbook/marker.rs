//! The report marker: dedupe of deliveries ([`marker_decision`]).

use super::*;

/// A recent in-progress claim younger than this is respected; an older one
/// is taken over (its invocation is presumed dead: Lambda's maximum timeout
/// is 15 minutes, the handler needs seconds).
pub const TAKEOVER_AFTER_MS: EpochMillis = 5 * 60 * 1000;

/// The dedupe marker kept at `REPORT_PREFIX<deploymentId or executionName>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum ReportMarker {
    /// An invocation claimed this failure and is handling it.
    #[serde(rename_all = "camelCase")]
    InProgress {
        claimed_at_ms: EpochMillis,
        claimed_by: String,
        /// The execution whose failure path (its `HandleFailure` task) made
        /// the claim; absent for the event-driven paths. Lets a later attempt
        /// of that failure path, or the execution's own end, know the
        /// claimant is gone ([`marker_decision_after`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        execution: Option<String>,
    },
    /// Handled; the report of what was done.
    #[serde(rename_all = "camelCase")]
    Completed {
        claimed_at_ms: EpochMillis,
        completed_at_ms: EpochMillis,
        report: Box<FailureReport>,
    },
}

/// What the handler found where it tried to claim.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ExistingMarker<'a> {
    /// Claimed by someone, but gone when read back.
    Absent,
    /// Present but not a marker this code can read.
    Unreadable,
    Found(&'a ReportMarker),
}

/// What to do about an existing claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "camelCase")]
pub enum MarkerDecision {
    /// Nobody holds it: go on.
    Proceed,
    /// A stale or unreadable claim: overwrite it (conditionally) and go on.
    TakeOver { reason: String },
    /// Handled or being handled: do nothing twice.
    Skip {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        report: Option<Box<FailureReport>>,
    },
}

/// How far in the future a claim may lie and still count (clocks of two
/// Lambda hosts differ by far less; anything beyond is a forged or broken
/// marker, which would otherwise block handling forever).
pub const MAX_CLOCK_SKEW_MS: EpochMillis = 60 * 1000;

/// Dedupe: none → proceed; completed → skip (with its report); in progress
/// and older than `takeover_after_ms` → take over; claimed more than
/// [`MAX_CLOCK_SKEW_MS`] in the future → take over (stale: no live invocation
/// writes that); in progress recently → skip.
pub fn marker_decision(
    existing: ExistingMarker<'_>,
    now: EpochMillis,
    takeover_after_ms: EpochMillis,
) -> MarkerDecision {
    marker_decision_after(existing, now, takeover_after_ms, None)
}

/// [`marker_decision`], knowing that every attempt of execution
/// `ended_failure_path`'s failure path that could have claimed the marker has
/// ended: an in-progress claim made by that failure path is then taken over
/// at once, however fresh (its invocation crashed or timed out mid-runbook;
/// waiting for [`TAKEOVER_AFTER_MS`] would leave the load balancer tuned and
/// nobody notified, and a Step Functions Retry would never see it go).
///
/// Who knows that: a later attempt of the same `HandleFailure` task (Step
/// Functions runs one attempt of a task at a time and retries only after the
/// previous attempt failed: Step Functions developer guide, "Handling errors
/// in Step Functions workflows", Retry), and the execution's end event when
/// the execution failed with `FailureHandlerFailed` (its Catch ran, so the
/// handler's last attempt had ended: [`failure_path_ended`]).
pub fn marker_decision_after(
    existing: ExistingMarker<'_>,
    now: EpochMillis,
    takeover_after_ms: EpochMillis,
    ended_failure_path: Option<&str>,
) -> MarkerDecision {
    if let (
        ExistingMarker::Found(ReportMarker::InProgress {
            claimed_by,
            execution: Some(execution),
            ..
        }),
        Some(ended),
    ) = (existing, ended_failure_path)
    {
        if execution == ended {
            return MarkerDecision::TakeOver {
                reason: format!(
                    "the claim by {claimed_by} was made by execution {execution}'s failure path, whose attempt ended without completing the report"
                ),
            };
        }
    }
    match existing {
        ExistingMarker::Absent => MarkerDecision::Proceed,
        ExistingMarker::Unreadable => MarkerDecision::TakeOver {
            reason: "the existing report marker is unreadable".to_string(),
        },
        ExistingMarker::Found(ReportMarker::Completed {
            completed_at_ms,
            report,
            ..
        }) => MarkerDecision::Skip {
            reason: format!("already handled (report completed at {completed_at_ms} ms)"),
            report: Some(report.clone()),
        },
        ExistingMarker::Found(ReportMarker::InProgress {
            claimed_at_ms,
            claimed_by,
            ..
        }) => {
            let age = now.saturating_sub(*claimed_at_ms);
            if *claimed_at_ms > now.saturating_add(MAX_CLOCK_SKEW_MS) {
                MarkerDecision::TakeOver {
                    reason: format!(
                        "the claim by {claimed_by} is dated {} s in the future (more than the {} s clock-skew allowance), so no live invocation wrote it",
                        (claimed_at_ms - now) / 1000,
                        MAX_CLOCK_SKEW_MS / 1000
                    ),
                }
            } else if age >= takeover_after_ms {
                MarkerDecision::TakeOver {
                    reason: format!(
                        "the claim by {claimed_by} is {} s old and never completed",
                        age / 1000
                    ),
                }
            } else {
                MarkerDecision::Skip {
                    reason: format!(
                        "being handled by {claimed_by} since {} s ago",
                        age.max(0) / 1000
                    ),
                    report: None,
                }
            }
        }
    }
}

/// The marker's object key: `<prefix><deploymentId>.json`, or
/// `<prefix><executionName>.json` when no deployment was created.
pub fn marker_key(prefix: &str, deployment_id: Option<&str>, execution_name: &str) -> String {
    let id = deployment_id.unwrap_or(execution_name);
    format!("{prefix}{id}.json")
}
