//! Executions that end outside the failure path: EventBridge's "Step
//! Functions Execution Status Change" event (status `ABORTED`, `TIMED_OUT`,
//! `FAILED`) brings the failure handler to clean up what no HandleFailure
//! state did (issue 9, defect 6).
//!
//! Event shape: Step Functions developer guide, "Automating Step Functions
//! event delivery with EventBridge" (detail: `executionArn`,
//! `stateMachineArn`, `name`, `status`, `startDate`, `stopDate`, `input`,
//! `error`, `cause`).

use super::*;

/// `detail-type` of the Step Functions execution status-change event.
pub const EXECUTION_STATUS_CHANGE: &str = "Step Functions Execution Status Change";

/// The statuses that mean "the execution ended without succeeding".
pub const ENDED_BADLY: [&str; 3] = ["ABORTED", "TIMED_OUT", "FAILED"];

/// The event's `detail`, as far as the handler needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionEnd {
    #[serde(default)]
    pub execution_arn: String,
    #[serde(default)]
    pub state_machine_arn: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// Handle the event or ignore it (with the reason).
///
/// Ignored: another detail-type; a status other than ABORTED/TIMED_OUT/FAILED;
/// an execution of another state machine (`expected_state_machine`, when
/// configured); and a FAILED execution whose error is one of the failure
/// report's names ([`ALL_FAILURE_KINDS`]): it ended in the `Failed` state, so
/// HandleFailure already ran and wrote its report. `FailureHandlerFailed`,
/// `States.DataLimitExceeded`, `States.Runtime`, ... are handled.
pub fn execution_end_disposition(
    detail_type: Option<&str>,
    end: &ExecutionEnd,
    expected_state_machine: Option<&str>,
) -> EventDisposition {
    if detail_type != Some(EXECUTION_STATUS_CHANGE) {
        return EventDisposition::Ignore {
            reason: format!(
                "event detail-type {:?} is not {EXECUTION_STATUS_CHANGE:?}",
                detail_type.unwrap_or("")
            ),
        };
    }
    if let Some(expected) = expected_state_machine.filter(|e| !e.is_empty()) {
        if end.state_machine_arn != expected {
            return EventDisposition::Ignore {
                reason: format!(
                    "execution {} belongs to state machine {:?}, not greenlight's {expected}",
                    end.name, end.state_machine_arn
                ),
            };
        }
    }
    if !ENDED_BADLY.contains(&end.status.as_str()) {
        return EventDisposition::Ignore {
            reason: format!(
                "execution {} is {:?}: only ABORTED, TIMED_OUT and FAILED executions are cleaned up",
                end.name, end.status
            ),
        };
    }
    if end.status == "FAILED" {
        if let Some(error) = end.error.as_deref() {
            if ALL_FAILURE_KINDS.iter().any(|k| k.as_str() == error) {
                return EventDisposition::Ignore {
                    reason: format!(
                        "execution {} failed with {error} at the end of its failure path: HandleFailure already handled it",
                        end.name
                    ),
                };
            }
        }
    }
    EventDisposition::Handle
}

/// The execution whose failure path is known to have ended, for
/// [`marker_decision_after`]: an execution that FAILED with
/// `FailureHandlerFailed` reached that state through HandleFailure's Catch,
/// so the handler's last attempt had ended (crashed, timed out or failed)
/// before the execution did. None for any other end: an execution aborted or
/// timed out while HandleFailure ran may still have its invocation running
/// (Lambda finishes an invocation whose caller went away), so its claim ages
/// out instead.
pub fn failure_path_ended(end: &ExecutionEnd) -> Option<&str> {
    (end.status == "FAILED"
        && end.error.as_deref().map(str::trim) == Some(crate::errors::FAILURE_HANDLER_FAILED))
    .then_some(end.name.as_str())
    .filter(|name| !name.trim().is_empty())
}

/// Classifies an execution that ended outside the failure path. A transient
/// error name ([`crate::errors::is_transient`], e.g. `States.Timeout`) is
/// [`FailureKind::LostSight`]: the deployment is left running.
pub fn classify_execution_end(
    end: &ExecutionEnd,
    application: &str,
    group: &str,
) -> Classification {
    let error = end.error.as_deref().unwrap_or("").trim();
    let cause = one_line(end.cause.as_deref().unwrap_or(""));
    let detail = match (error.is_empty(), cause.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!(" with {error}"),
        (true, false) => format!(": {}", truncate_chars(&cause, MAX_CAUSE_CHARS)),
        (false, false) => format!(" with {error}: {}", truncate_chars(&cause, MAX_CAUSE_CHARS)),
    };
    let kind = if crate::errors::is_transient(error) {
        FailureKind::LostSight
    } else {
        FailureKind::ExecutionEnded
    };
    Classification {
        kind,
        stage: None,
        cause: format!(
            "execution {} of the pipeline for {application}/{group} ended {}{detail} without running its failure path",
            end.name, end.status
        ),
    }
}

/// Restore source for an execution that ended outside the failure path: its
/// state is lost (only its input is known), so the `greenlight:snapshot`
/// tags on the group's target groups; none while its deployment may still be
/// running under [`FailureKind::LostSight`].
pub fn execution_end_restore_source(
    kind: FailureKind,
    view: Option<&DeploymentView>,
) -> RestoreSource {
    match (kind, view) {
        (FailureKind::LostSight, Some(v)) if !v.status.is_terminal() => RestoreSource::Nothing {
            reason: "the deployment is still running, so its tuned settings stay until it ends (restore them from the greenlight:snapshot tag then)".to_string(),
        },
        _ => RestoreSource::RecordedTags,
    }
}
