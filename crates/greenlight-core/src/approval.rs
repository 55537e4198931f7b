//! Approval at the gate (issue 10): finding the pending approval of an
//! execution in its history, and the answers.
//!
//! The state machine waits in the state [`AWAIT_APPROVAL_STATE`] with a task
//! token (`arn:aws:states:::lambda:invoke.waitForTaskToken`, the token passed
//! to the function as `$$.Task.Token`; Step Functions developer guide, "Wait
//! for a Callback with the Task Token"). The token is in the `TaskScheduled`
//! event's `parameters` of that state; the wait is over once the state was
//! exited (or the task succeeded, failed or timed out). Answering is
//! SendTaskSuccess with [`ApprovalAnswer::output`] or SendTaskFailure with
//! [`REJECTED_ERROR`].

use serde::{Deserialize, Serialize};

/// The state that waits for a human.
pub const AWAIT_APPROVAL_STATE: &str = "AwaitApproval";

/// SendTaskFailure's error for a rejection (the state machine's failure path
/// matches it).
pub const REJECTED_ERROR: &str = "greenlight.ApprovalRejected";

/// One execution history event, as much as the decision needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEvent {
    pub id: i64,
    /// `type`, e.g. `TaskStateEntered`, `TaskScheduled`, `TaskSucceeded`.
    pub kind: String,
    /// `stateEnteredEventDetails.name` / `stateExitedEventDetails.name`.
    pub state_name: Option<String>,
    /// `taskScheduledEventDetails.parameters` (JSON text).
    pub parameters: Option<String>,
}

/// An approval waiting for an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingApproval {
    pub task_token: String,
    /// The `TaskScheduled` event's id.
    pub scheduled_event_id: i64,
}

/// Why an execution has no pending approval to answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoPendingApproval {
    #[error(
        "the execution never waited for approval (no {AWAIT_APPROVAL_STATE} state in its history)"
    )]
    NeverAsked,
    #[error("the execution's approval was already answered or timed out")]
    AlreadyAnswered,
    #[error("the execution waits in {AWAIT_APPROVAL_STATE}, but its TaskScheduled event carries no task token (the state's Parameters must pass \"taskToken.$\": \"$$.Task.Token\")")]
    NoToken,
}

/// Event types that end a task (Step Functions `HistoryEventType`).
const TASK_ENDS: [&str; 5] = [
    "TaskSucceeded",
    "TaskFailed",
    "TaskTimedOut",
    "TaskSubmitFailed",
    "TaskStartFailed",
];

/// The task token of the latest `AwaitApproval` wait that has not ended.
/// `events` in history order (oldest first).
pub fn pending_approval(events: &[HistoryEvent]) -> Result<PendingApproval, NoPendingApproval> {
    let entered = events.iter().rposition(|e| {
        e.kind.ends_with("StateEntered") && e.state_name.as_deref() == Some(AWAIT_APPROVAL_STATE)
    });
    let Some(entered) = entered else {
        return Err(NoPendingApproval::NeverAsked);
    };
    let after = &events[entered + 1..];
    let ended = after.iter().any(|e| {
        TASK_ENDS.contains(&e.kind.as_str())
            || (e.kind.ends_with("StateExited")
                && e.state_name.as_deref() == Some(AWAIT_APPROVAL_STATE))
            || e.kind.starts_with("Execution") && e.kind != "ExecutionStarted"
    });
    if ended {
        return Err(NoPendingApproval::AlreadyAnswered);
    }
    let scheduled = after
        .iter()
        .rev()
        .find(|e| e.kind == "TaskScheduled")
        .ok_or(NoPendingApproval::NoToken)?;
    let token = scheduled
        .parameters
        .as_deref()
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .and_then(|p| find_token(&p))
        .ok_or(NoPendingApproval::NoToken)?;
    Ok(PendingApproval {
        task_token: token,
        scheduled_event_id: scheduled.id,
    })
}

/// `taskToken` anywhere in the task's parameters (a Lambda invoke nests it
/// under `Payload`).
fn find_token(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Object(map) => map
            .get("taskToken")
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .or_else(|| map.values().find_map(find_token)),
        serde_json::Value::Array(items) => items.iter().find_map(find_token),
        _ => None,
    }
}

/// A human's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalAnswer {
    pub approved: bool,
    /// Who answered (an IAM identity, a name).
    pub by: String,
    /// Why (a rejection's reason; optional for an approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ApprovalAnswer {
    /// SendTaskSuccess output: `{"approved":true,"by":"<who>"}`.
    pub fn output(&self) -> String {
        serde_json::json!({"approved": true, "by": self.by}).to_string()
    }

    /// SendTaskFailure cause: who rejected and why.
    pub fn cause(&self) -> String {
        match &self.reason {
            Some(reason) if !reason.trim().is_empty() => {
                format!("rejected by {}: {}", self.by, reason.trim())
            }
            _ => format!("rejected by {}", self.by),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: i64, kind: &str, state: Option<&str>, parameters: Option<&str>) -> HistoryEvent {
        HistoryEvent {
            id,
            kind: kind.into(),
            state_name: state.map(str::to_string),
            parameters: parameters.map(str::to_string),
        }
    }

    const PARAMS: &str = r#"{"FunctionName":"arn:aws:lambda:us-east-1:1:function:greenlight-failure-handler","Payload":{"action":"askApproval","taskToken":"AAAA-token"}}"#;

    fn waiting() -> Vec<HistoryEvent> {
        vec![
            ev(1, "ExecutionStarted", None, None),
            ev(10, "TaskStateEntered", Some("Validate"), None),
            ev(14, "TaskStateExited", Some("Validate"), None),
            ev(15, "TaskStateEntered", Some(AWAIT_APPROVAL_STATE), None),
            ev(16, "TaskScheduled", None, Some(PARAMS)),
            ev(17, "TaskStarted", None, None),
            ev(18, "TaskSubmitted", None, None),
        ]
    }

    #[test]
    fn the_waiting_states_token_is_found() {
        assert_eq!(
            pending_approval(&waiting()),
            Ok(PendingApproval {
                task_token: "AAAA-token".into(),
                scheduled_event_id: 16
            })
        );
    }

    #[test]
    fn an_answered_or_timed_out_wait_is_not_pending() {
        for end in ["TaskSucceeded", "TaskFailed", "TaskTimedOut"] {
            let mut events = waiting();
            events.push(ev(19, end, None, None));
            assert_eq!(
                pending_approval(&events),
                Err(NoPendingApproval::AlreadyAnswered),
                "{end}"
            );
        }
        let mut events = waiting();
        events.push(ev(19, "ExecutionAborted", None, None));
        assert_eq!(
            pending_approval(&events),
            Err(NoPendingApproval::AlreadyAnswered)
        );
    }

    #[test]
    fn no_wait_no_token() {
        assert_eq!(
            pending_approval(&waiting()[..3]),
            Err(NoPendingApproval::NeverAsked)
        );
        let mut events = waiting();
        events[4].parameters = Some(r#"{"Payload":{"action":"askApproval"}}"#.into());
        assert_eq!(pending_approval(&events), Err(NoPendingApproval::NoToken));
        assert_eq!(
            pending_approval(&waiting()[..4]),
            Err(NoPendingApproval::NoToken)
        );
    }

    #[test]
    fn answers_have_the_contract_shapes() {
        let yes = ApprovalAnswer {
            approved: true,
            by: "alice".into(),
            reason: None,
        };
        assert_eq!(yes.output(), r#"{"approved":true,"by":"alice"}"#);
        let no = ApprovalAnswer {
            approved: false,
            by: "bob".into(),
            reason: Some(" bad timing ".into()),
        };
        assert_eq!(no.cause(), "rejected by bob: bad timing");
        assert_eq!(REJECTED_ERROR, "greenlight.ApprovalRejected");
    }
}
