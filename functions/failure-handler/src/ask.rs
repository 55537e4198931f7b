//! `askApproval`: the `AwaitApproval` state's one notification (issue 10).
//! The state machine invokes this function with
//! `arn:aws:states:::lambda:invoke.waitForTaskToken` and the wait's task
//! token; the function publishes what passed and exactly how to approve or
//! reject, and returns. The state then waits for SendTaskSuccess /
//! SendTaskFailure (`greenlight promote` / `abort`) or its deadline. The token
//! is never logged (it answers the wait); it is in the notification, as the
//! AWS CLI command that answers it needs it.

use super::*;
use greenlight_core::approval::{ask_request_notification, AskContext};

/// The action name of the approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AskAction {
    AskApproval,
}

/// `{"action":"askApproval","executionName":...,"taskToken":...,"pipeline":...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalAsk {
    pub action: AskAction,
    pub execution_name: String,
    pub task_token: String,
    pub pipeline: greenlight_core::model::PipelineState,
}

pub(crate) async fn ask_approval(ask: ApprovalAsk, deps: &Deps) -> Result<Response, Error> {
    let state = &ask.pipeline;
    let request = state.input.approval.as_ref().ok_or_else(|| {
        Error::InvalidInput(
            "askApproval for an execution that asked for no approval (pipeline.approval is missing)"
                .to_string(),
        )
    })?;
    if ask.task_token.trim().is_empty() {
        return Err(Error::InvalidInput(
            "taskToken is empty; the AwaitApproval state passes \"taskToken.$\": \"$$.Task.Token\""
                .to_string(),
        ));
    }
    let deployment_id = state
        .deployment
        .as_ref()
        .map(|d| d.deployment_id.as_str())
        .ok_or_else(|| {
            Error::InvalidInput("pipeline.deployment is missing: approval is asked at Ready".into())
        })?;
    let gate_summary = state
        .validation
        .as_ref()
        .map(|v| v.summary.as_str())
        .unwrap_or("(no validation report)");
    let execution_arn = deps
        .config
        .state_machine_arn
        .as_deref()
        .and_then(|sm| greenlight_core::trigger::execution_arn(sm, &ask.execution_name));
    let notification = ask_request_notification(&AskContext {
        execution_name: &ask.execution_name,
        execution_arn: execution_arn.as_deref(),
        application: &state.input.application,
        deployment_group: &state.input.deployment_group,
        deployment_id,
        label: &state.input.revision.label,
        gate_summary,
        request,
        bake_skip: state.input.bake_skip.as_ref(),
        task_token: &ask.task_token,
    });
    let topic = deps.config.topic_arn.as_str();
    let message_id = publish(&deps.sns, topic, &notification).await?;
    tracing::info!(
        execution = ask.execution_name,
        deployment_id,
        deadline_seconds = request.deadline_seconds,
        "approval asked"
    );
    Ok(Response::ApprovalAsked {
        deployment_id: deployment_id.to_string(),
        subject: notification.subject,
        message_id,
        deadline_seconds: request.deadline_seconds,
    })
}
