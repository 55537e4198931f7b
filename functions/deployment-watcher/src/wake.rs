//! The status loop's wait for CodeDeploy's own events
//! ([`greenlight_core::wake`]): the `await` task that starts the wait, and
//! the wake that answers it when an EventBridge rule delivers a
//! "CodeDeploy Deployment State-change Notification".

use crate::{Deps, Error, Request};
use greenlight_aws::deployment::{read_deployment_summary, read_status, ReadError};
use greenlight_aws::wake::{answer_wait, pending_event_wait, Answer};
use greenlight_core::approval::NoPendingApproval;
use greenlight_core::trigger::execution_arn;
use greenlight_core::wake::{
    changed_since_look, wake_output, wakes, DeploymentStateChange, WakeOutcome, WakeReport,
};
use greenlight_core::watch::execution_of_description;

/// `await` (state `AwaitDeploymentEvent`, `lambda:invoke.waitForTaskToken`):
/// the wait's token exists from now on, so an event arriving later finds it.
/// One that arrived between the last look and now could not: when the
/// deployment already moved to a state the loop acts on, answer the token at
/// once. Otherwise return; the state waits for a wake or its timeout.
pub(crate) async fn await_event(request: &Request, deps: &Deps) -> Result<WakeReport, Error> {
    let missing = |what: &str| {
        Error::InvalidInput(format!(
            "await for execution {} needs {what}; the state must pass \"taskToken.$\": \"$$.Task.Token\" and run after a status look",
            request.execution_name
        ))
    };
    let token = request
        .task_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| missing("taskToken"))?;
    let seen = request
        .pipeline
        .status
        .as_ref()
        .ok_or_else(|| missing("$.status (the last look)"))?;
    let now = read_status(&deps.codedeploy, &seen.deployment_id).await?;
    let mut report = WakeReport {
        deployment_id: seen.deployment_id.clone(),
        state: greenlight_core::watch::status_name(now).to_string(),
        execution_name: Some(request.execution_name.clone()),
        outcome: WakeOutcome::Waiting,
    };
    if changed_since_look(seen.status, now) {
        let output = wake_output(&seen.deployment_id, "await: changed since the last look");
        report.outcome = answer(deps, token, &output, &request.execution_name).await?;
    }
    tracing::info!(
        execution = %request.execution_name,
        deployment_id = %seen.deployment_id,
        seen = ?seen.status,
        now = ?now,
        outcome = ?report.outcome,
        event_wait_seconds = seen.event_wait_seconds,
        "waiting for a CodeDeploy event"
    );
    Ok(report)
}

/// An EventBridge "CodeDeploy Deployment State-change Notification": wake the
/// execution that watches the deployment, if it waits. Never fails for a
/// deployment that is not greenlight's or an execution that does not wait:
/// those are normal (the rule sees every deployment of the application).
pub(crate) async fn wake(change: &DeploymentStateChange, deps: &Deps) -> Result<WakeReport, Error> {
    let mut report = WakeReport {
        deployment_id: change.deployment_id.clone(),
        state: change.state.clone(),
        execution_name: None,
        outcome: WakeOutcome::NotAWakingState,
    };
    if wakes(&change.state) {
        report.outcome = wake_execution(change, deps, &mut report.execution_name).await?;
    }
    tracing::info!(
        deployment_id = %report.deployment_id,
        state = %report.state,
        execution = ?report.execution_name,
        outcome = ?report.outcome,
        "CodeDeploy event"
    );
    Ok(report)
}

async fn wake_execution(
    change: &DeploymentStateChange,
    deps: &Deps,
    execution_name: &mut Option<String>,
) -> Result<WakeOutcome, Error> {
    let view = match read_deployment_summary(&deps.codedeploy, &change.deployment_id).await {
        Ok(view) => view,
        // Deleted or never ours to read: nothing waits on it.
        Err(ReadError::NotFound { .. }) => return Ok(WakeOutcome::NotGreenlights),
        Err(e) => return Err(e.into()),
    };
    let Some(name) = view
        .description
        .as_deref()
        .and_then(execution_of_description)
    else {
        return Ok(WakeOutcome::NotGreenlights);
    };
    *execution_name = Some(name.to_string());
    let Some(arn) = execution_arn(&deps.config.state_machine_arn, name) else {
        return Err(Error::InvalidInput(format!(
            "STATE_MACHINE_ARN {} is not a state machine ARN; set it as template.yaml does",
            deps.config.state_machine_arn
        )));
    };
    let pending = match pending_event_wait(&deps.sfn, &arn).await {
        Ok(Ok(pending)) => pending,
        Ok(Err(NoPendingApproval::AlreadyAnswered | NoPendingApproval::NeverAsked)) => {
            return Ok(WakeOutcome::NotWaiting)
        }
        // Entered, token not scheduled yet: the await task itself reads the
        // deployment after its token exists and answers it.
        Ok(Err(NoPendingApproval::NoToken)) => return Ok(WakeOutcome::NotWaiting),
        Err(aws) if aws.has_code(&["ExecutionDoesNotExist"]) => return Ok(WakeOutcome::NotWaiting),
        Err(aws) => return Err(Error::Aws(aws)),
    };
    let output = wake_output(&change.deployment_id, &change.state);
    answer(deps, &pending.task_token, &output, &arn).await
}

/// SendTaskSuccess on the wait's token, told as the wake's outcome.
async fn answer(
    deps: &Deps,
    token: &str,
    output: &str,
    execution: &str,
) -> Result<WakeOutcome, Error> {
    Ok(
        match answer_wait(&deps.sfn, token, output, execution).await? {
            Answer::Woke => WakeOutcome::Woke,
            Answer::AlreadyEnded => WakeOutcome::AlreadyAnswered,
        },
    )
}
