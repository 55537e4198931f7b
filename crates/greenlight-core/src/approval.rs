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
pub const REJECTED_ERROR: &str = crate::errors::APPROVAL_REJECTED;

/// The error Step Functions gives a task that ran past its `TimeoutSeconds`:
/// at `AwaitApproval`, nobody answered before the deadline.
pub const DEADLINE_ERROR: &str = "States.Timeout";

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
    pending_task(events, AWAIT_APPROVAL_STATE)
}

/// The task token of the latest callback wait in `state` that has not ended
/// (the approval's, or the status loop's wait for a CodeDeploy event:
/// [`crate::wake`]). `events` in history order (oldest first).
pub fn pending_task(
    events: &[HistoryEvent],
    state: &str,
) -> Result<PendingApproval, NoPendingApproval> {
    let entered = events
        .iter()
        .rposition(|e| e.kind.ends_with("StateEntered") && e.state_name.as_deref() == Some(state));
    let Some(entered) = entered else {
        return Err(NoPendingApproval::NeverAsked);
    };
    let after = &events[entered + 1..];
    let ended = after.iter().any(|e| {
        TASK_ENDS.contains(&e.kind.as_str())
            || (e.kind.ends_with("StateExited") && e.state_name.as_deref() == Some(state))
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

/// The answer as it reaches the state (`$.approvalAnswer`, SendTaskSuccess's
/// output): whatever JSON the human sent. Read leniently so a malformed
/// answer is refused with a clear reason instead of breaking the state.
pub fn granted_by(answer: Option<&serde_json::Value>) -> Result<String, String> {
    let Some(answer) = answer else {
        return Err("the approval wait ended without an answer".to_string());
    };
    if answer.get("approved").and_then(serde_json::Value::as_bool) != Some(true) {
        return Err(format!(
            "SendTaskSuccess answered {} without \"approved\": true; an approval must say so explicitly (send-task-failure rejects)",
            crate::trigger::truncate_chars(&answer.to_string(), 200)
        ));
    }
    Ok(answer
        .get("by")
        .and_then(serde_json::Value::as_str)
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .unwrap_or("an unnamed approver")
        .to_string())
}

/// What continuing after the approval should do, given the answer and the
/// deployment's status now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterApproval {
    /// Approved and still waiting in Ready: ContinueDeployment(READY_WAIT).
    Continue { by: String },
    /// Approved, and an earlier attempt's ContinueDeployment took effect
    /// (the deployment is past Ready): nothing to write.
    ContinuedEarlier { by: String },
    /// Not approved (a malformed answer): the failure path stops the deployment.
    NotApproved { reason: String },
    /// Approved, but the deployment no longer waits in Ready (CodeDeploy's
    /// Ready wait ran out, or someone stopped it): the failure path explains.
    NotReady { by: String },
}

pub fn after_approval(
    answer: Option<&serde_json::Value>,
    status: crate::model::DeploymentStatus,
    retry_count: u32,
) -> AfterApproval {
    use crate::model::DeploymentStatus as S;
    let by = match granted_by(answer) {
        Ok(by) => by,
        Err(reason) => return AfterApproval::NotApproved { reason },
    };
    match status {
        S::Ready => AfterApproval::Continue { by },
        S::InProgress | S::Succeeded if retry_count > 0 => AfterApproval::ContinuedEarlier { by },
        _ => AfterApproval::NotReady { by },
    }
}

/// The failure's cause when the approval ended the deployment
/// (`$.approvalError`, written by the `AwaitApproval` / `ContinueAfterApproval`
/// Catch): who rejected, or that the deadline passed.
pub fn rejection_cause(error: &crate::model::TaskError, deadline_seconds: Option<u32>) -> String {
    let cause = crate::runbook::one_line(&error.cause);
    match error.error.as_str() {
        DEADLINE_ERROR => match deadline_seconds {
            Some(s) => format!("nobody approved it within the {s} s approval deadline, so it was rejected by deadline"),
            None => "nobody approved it before the approval deadline, so it was rejected by deadline".to_string(),
        },
        REJECTED_ERROR if cause.is_empty() => "its approval was rejected (no reason given)".to_string(),
        REJECTED_ERROR => format!("its approval was {}", crate::trigger::truncate_chars(&cause, 400)),
        other => format!(
            "its approval wait failed with {other}{}",
            if cause.is_empty() { String::new() } else { format!(": {}", crate::trigger::truncate_chars(&cause, 400)) }
        ),
    }
}

/// Everything the approval notification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AskContext<'a> {
    pub execution_name: &'a str,
    /// The execution's ARN when the state machine's ARN is known.
    pub execution_arn: Option<&'a str>,
    pub application: &'a str,
    pub deployment_group: &'a str,
    pub deployment_id: &'a str,
    pub label: &'a str,
    /// What the automated gate saw (the validator's summary).
    pub gate_summary: &'a str,
    pub request: &'a crate::options::ApprovalRequest,
    pub bake_skip: Option<&'a crate::options::BakeSkip>,
    pub task_token: &'a str,
}

/// [`ask_notification`] as the SNS notification: outcome attribute
/// `approvalRequested`, the application and group to filter on, and a JSON
/// body with the same text.
pub fn ask_request_notification(ctx: &AskContext<'_>) -> crate::runbook::Notification {
    let (subject, message) = ask_notification(ctx);
    let outcome = crate::metrics::DeploymentOutcome::ApprovalRequested;
    let body = serde_json::json!({
        "outcome": outcome.name(),
        "application": ctx.application,
        "deploymentGroup": ctx.deployment_group,
        "deploymentId": ctx.deployment_id,
        "executionName": ctx.execution_name,
        "revision": ctx.label,
        "deadlineSeconds": ctx.request.deadline_seconds,
        "subject": subject,
        "text": message,
    });
    crate::runbook::Notification {
        subject,
        message,
        outcome,
        application: ctx.application.to_string(),
        deployment_group: ctx.deployment_group.to_string(),
        body,
    }
}

/// The one notification that asks for the approval: what passed, who asked,
/// the deadline, and exactly how to approve or reject (the CLI and the raw
/// AWS CLI equivalent with this wait's task token).
pub fn ask_notification(ctx: &AskContext<'_>) -> (String, String) {
    let subject = crate::trigger::truncate_chars(
        &format!(
            "greenlight: approval needed for {} on {}/{}",
            ctx.label, ctx.application, ctx.deployment_group
        ),
        100,
    );
    let execution = ctx.execution_arn.unwrap_or(ctx.execution_name);
    let token = serde_json::Value::String(ctx.task_token.to_string()).to_string();
    let skip = ctx
        .bake_skip
        .map(|s| {
            format!(
                "\nThe bake after the reroute will be SKIPPED (emergency override, asked by {}).\n",
                s.describe()
            )
        })
        .unwrap_or_default();
    let message = format!(
        "Deployment {id} of {label} to {app}/{group} passed the automated gate and waits for a human approval (asked by {asked}).\n\
         Gate: {gate}\n{skip}\n\
         Blue still serves all traffic. Without an answer within {deadline} s the deployment is rejected by deadline and rolled back.\n\n\
         Approve:\n  greenlight promote {name}\n  aws stepfunctions send-task-success --task-token {token} --task-output '{{\"approved\":true,\"by\":\"<your name>\"}}'\n\n\
         Reject:\n  greenlight abort {name}\n  aws stepfunctions send-task-failure --task-token {token} --error {rejected} --cause 'rejected by <your name>: <reason>'\n\n\
         Execution: {execution}\n",
        id = ctx.deployment_id,
        label = ctx.label,
        app = ctx.application,
        group = ctx.deployment_group,
        asked = ctx.request.describe(),
        gate = ctx.gate_summary.trim(),
        deadline = ctx.request.deadline_seconds,
        name = ctx.execution_name,
        rejected = REJECTED_ERROR,
    );
    (subject, message)
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

    fn answer(v: serde_json::Value) -> Option<serde_json::Value> {
        Some(v)
    }

    #[test]
    fn only_an_explicit_approval_continues() {
        use crate::model::DeploymentStatus as S;
        let yes = answer(serde_json::json!({"approved": true, "by": "alice"}));
        assert_eq!(
            after_approval(yes.as_ref(), S::Ready, 0),
            AfterApproval::Continue { by: "alice".into() }
        );
        assert_eq!(
            after_approval(yes.as_ref(), S::InProgress, 1),
            AfterApproval::ContinuedEarlier { by: "alice".into() }
        );
        // A first attempt that finds the deployment past Ready did not move it.
        assert_eq!(
            after_approval(yes.as_ref(), S::InProgress, 0),
            AfterApproval::NotReady { by: "alice".into() }
        );
        assert_eq!(
            after_approval(yes.as_ref(), S::Stopped, 0),
            AfterApproval::NotReady { by: "alice".into() }
        );
        let anonymous = answer(serde_json::json!({"approved": true}));
        assert_eq!(
            after_approval(anonymous.as_ref(), S::Ready, 0),
            AfterApproval::Continue {
                by: "an unnamed approver".into()
            }
        );
        for bad in [
            serde_json::json!({"approved": false, "by": "x"}),
            serde_json::json!({"approved": "true"}),
            serde_json::json!("yes"),
            serde_json::json!({}),
        ] {
            assert!(
                matches!(
                    after_approval(Some(&bad), S::Ready, 0),
                    AfterApproval::NotApproved { .. }
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            after_approval(None, S::Ready, 0),
            AfterApproval::NotApproved { .. }
        ));
    }

    #[test]
    fn the_rejection_names_who_or_the_deadline() {
        use crate::model::TaskError;
        let by_human = TaskError {
            error: REJECTED_ERROR.into(),
            cause: "rejected by bob: bad timing".into(),
        };
        assert_eq!(
            rejection_cause(&by_human, Some(60)),
            "its approval was rejected by bob: bad timing"
        );
        let by_deadline = TaskError {
            error: DEADLINE_ERROR.into(),
            cause: String::new(),
        };
        assert_eq!(
            rejection_cause(&by_deadline, Some(60)),
            "nobody approved it within the 60 s approval deadline, so it was rejected by deadline"
        );
        assert!(rejection_cause(&by_deadline, None).contains("rejected by deadline"));
        let other = TaskError {
            error: "AwsError".into(),
            cause: "SNS said no".into(),
        };
        assert_eq!(
            rejection_cause(&other, None),
            "its approval wait failed with AwsError: SNS said no"
        );
    }

    #[test]
    fn the_ask_says_what_passed_and_how_to_answer() {
        let request = crate::options::ApprovalRequest {
            requested_by: crate::options::RequestedBy::ObjectTag,
            deadline_seconds: 900,
        };
        let ctx = AskContext {
            execution_name: "gl-shop-abc",
            execution_arn: Some("arn:aws:states:us-east-1:1:execution:sm:gl-shop-abc"),
            application: "shop",
            deployment_group: "shop-bg",
            deployment_id: "d-123",
            label: "20240101-1",
            gate_summary: "all 2 green instances answered 200 with version 20240101-1",
            request: &request,
            bake_skip: None,
            task_token: "TOKEN\"1",
        };
        let (subject, message) = ask_notification(&ctx);
        assert_eq!(
            subject,
            "greenlight: approval needed for 20240101-1 on shop/shop-bg"
        );
        for expected in [
            "d-123",
            "all 2 green instances answered 200",
            "greenlight-approval=required",
            "within 900 s",
            "greenlight promote gl-shop-abc",
            "greenlight abort gl-shop-abc",
            "aws stepfunctions send-task-success --task-token \"TOKEN\\\"1\"",
            "{\"approved\":true,\"by\":\"<your name>\"}",
            "send-task-failure --task-token \"TOKEN\\\"1\" --error greenlight.ApprovalRejected",
            "arn:aws:states:us-east-1:1:execution:sm:gl-shop-abc",
            "Blue still serves",
        ] {
            assert!(
                message.contains(expected),
                "{expected} missing in:\n{message}"
            );
        }
        assert!(!message.contains("SKIPPED"));
        let skip = crate::options::BakeSkip {
            requested_by: crate::options::RequestedBy::PipelineParameter,
        };
        let (_, with_skip) = ask_notification(&AskContext {
            bake_skip: Some(&skip),
            ..ctx
        });
        assert!(with_skip.contains("bake after the reroute will be SKIPPED"));
    }
}
