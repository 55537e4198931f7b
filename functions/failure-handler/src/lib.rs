//! failure-handler: diagnose a failed deployment, run the seed-001 runbook,
//! restore the load balancer, notify once, fail the CodePipeline job.
//!
//! Three entry points, one binary ([`paths`]):
//! 1. the state machine's failure path: a [`TaskRequest`] with action
//!    `handle` (`HandleFailure` state, result at `$.report`);
//! 2. EventBridge "CodeDeploy Deployment State-change Notification" with
//!    state `FAILURE` or `STOP`, for deployments started outside the pipeline
//!    (a deployment whose description names a greenlight execution is left to
//!    that execution's own failure path; a rollback deployment CodeDeploy
//!    created is folded into the incident of the deployment it rolls back,
//!    `runbook::rollback_event_fold`);
//! 3. EventBridge "Step Functions Execution Status Change" (`ABORTED`,
//!    `TIMED_OUT`, `FAILED`): executions that ended without running their
//!    failure path.
//!
//! Steps, each idempotent, each recorded in the report (a failed step does
//! not stop the others): claim the report marker in S3 (`PutObject
//! If-None-Match: *`, [`marker`]), find a deployment a dead Create task left
//! behind, read the deployment, stop it if still active and read it again,
//! delete the green ASG only when the core's guard allows it and point the
//! group at the recorded blue ASG (failure before traffic moved), restore the
//! load balancer, publish one SNS notification, fail the CodePipeline job,
//! overwrite the marker with the completed report ([`steps`]). When
//! greenlight lost sight of AWS (transient errors) nothing is stopped or
//! deleted. Every decision is in [`greenlight_core::runbook`]; every AWS call
//! in `greenlight_aws`.

use aws_lambda_events::event::codedeploy::CodeDeployEvent;
use greenlight_aws::autoscaling::{
    describe_group, force_delete_group, release_held_by, DeleteOutcome,
};
use greenlight_aws::codepipeline::{put_job_failure, JobAnswer};
use greenlight_aws::config::{optional, parsed_or, required, ConfigError};
use greenlight_aws::deployment::read_deployment;
use greenlight_aws::deployment_control::{stop_with_rollback, StopOutcome};
use greenlight_aws::deployment_group::{group_auto_scaling_groups, set_group_auto_scaling_groups};
use greenlight_aws::deployment_list::list_group_deployments;
use greenlight_aws::executions::describe_execution;
use greenlight_aws::load_balancer::{
    restore_recorded, restore_target_group, target_group_arns, LbError, RestoreOutcome,
};
use greenlight_aws::notify::publish;
use greenlight_aws::reports::{get_marker, put_marker, Condition, LOST_RACE_CODES};
use greenlight_aws::AwsError;
use greenlight_core::errors;
use greenlight_core::model::{
    Admission, DeploymentStatus, DeploymentView, EpochMillis, NextStep, PipelineInput, Source,
    TaskRequest,
};
use greenlight_core::runbook::{
    classify_event, classify_execution_end, classify_pipeline, codepipeline_job_id, compose_report,
    diagnose, event_disposition, event_restore_source, execution_end_disposition,
    execution_end_restore_source, failing_evidence, failure_path_ended, green_deletion,
    in_progress_report, lost_sight_restore_source, marker_decision_after, marker_key, notification,
    orphan_deployment, orphan_search_since, ownership, pipeline_deployment_id,
    pipeline_restore_source, plan_runbook, point_at_blue, rollback_event_fold, rollback_outcome,
    rollback_trigger, should_search_orphan, ActionRecord, EventDisposition, ExecutionEnd,
    ExistingMarker, FailureKind, FailureReport, GreenDeletion, MarkerDecision, Outcome, Ownership,
    Repoint, ReportInput, ReportMarker, ReportSource, RestoreSource, RollbackFold, RollbackOutcome,
    RunbookDecision, RunbookPlan, Step, EXECUTION_STATUS_CHANGE, TAKEOVER_AFTER_MS,
};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};

/// Default `REPORT_PREFIX`.
pub const DEFAULT_REPORT_PREFIX: &str = "greenlight-reports/";

/// CodePipeline accepts at most 5000 characters of failure message.
pub use greenlight_aws::codepipeline::MAX_JOB_MESSAGE_CHARS;

/// Default `ROLLBACK_WAIT_SECONDS`: well inside the function's 300 s timeout.
pub const DEFAULT_ROLLBACK_WAIT_SECONDS: u32 = 120;

pub struct Config {
    /// `TOPIC_ARN` (required): the SNS topic that gets the one notification.
    pub topic_arn: String,
    /// `REPORT_BUCKET` (required): where the report markers live (the
    /// template's `ReportBucket`: only this function writes there).
    pub report_bucket: String,
    /// `REPORT_PREFIX` (default `greenlight-reports/`).
    pub report_prefix: String,
    /// `STATE_MACHINE_ARN` (optional): execution status-change events of any
    /// other state machine are ignored.
    pub state_machine_arn: Option<String>,
    /// `ROLLBACK_WAIT_SECONDS` (default 120): how long the runbook waits for
    /// CodeDeploy's rollback deployment to end before it decides on the green
    /// group (kept, with the reason, if the rollback is still running).
    pub rollback_wait_seconds: u32,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            topic_arn: required("TOPIC_ARN")?,
            report_bucket: required("REPORT_BUCKET")?,
            report_prefix: optional("REPORT_PREFIX")
                .unwrap_or_else(|| DEFAULT_REPORT_PREFIX.to_string()),
            state_machine_arn: optional("STATE_MACHINE_ARN"),
            rollback_wait_seconds: parsed_or(
                "ROLLBACK_WAIT_SECONDS",
                DEFAULT_ROLLBACK_WAIT_SECONDS,
            )?,
        })
    }
}

pub struct Deps {
    pub codedeploy: aws_sdk_codedeploy::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub sns: aws_sdk_sns::Client,
    pub s3: aws_sdk_s3::Client,
    pub codepipeline: aws_sdk_codepipeline::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub config: Config,
}

impl Deps {
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        Self {
            codedeploy: aws_sdk_codedeploy::Client::new(sdk),
            autoscaling: aws_sdk_autoscaling::Client::new(sdk),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            s3: aws_sdk_s3::Client::new(sdk),
            codepipeline: aws_sdk_codepipeline::Client::new(sdk),
            sfn: aws_sdk_sfn::Client::new(sdk),
            config,
        }
    }
}

/// The state machine's action for this function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Handle,
    /// The end of an upload that did not fail (Deployed, Superseded): one
    /// notification saying so ([`announce`]).
    Announce,
    /// The emergency override skipped the bake: one notification saying so
    /// at that moment ([`announce_bake_skipped`]); not an ending.
    AnnounceBakeSkipped,
}

/// EventBridge "Step Functions Execution Status Change" (the fields the
/// handler needs; `executionArn` and `status` are required so no other
/// event shape parses as this one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionEvent {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    #[serde(default)]
    pub id: Option<String>,
    pub detail: ExecutionEventDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionEventDetail {
    pub execution_arn: String,
    pub status: String,
    #[serde(default)]
    pub state_machine_arn: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
}

/// Any entry point. Anything else is kept as JSON so the handler can say
/// precisely what is wrong with it ([`Error::InvalidInput`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Request {
    /// The state machine's `AwaitApproval` (waitForTaskToken): notify once.
    Ask(Box<ApprovalAsk>),
    /// The state machine's failure path.
    Task(Box<TaskRequest<Action>>),
    /// EventBridge CodeDeploy state-change event.
    CodeDeploy(Box<CodeDeployEvent>),
    /// EventBridge Step Functions execution status-change event.
    Execution(Box<ExecutionEvent>),
    Unrecognized(serde_json::Value),
}

/// The failure report (flattened), or why nothing was done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum Response {
    /// This invocation ran the runbook; the report says what it did.
    Handled(FailureReport),
    /// An earlier delivery handled this failure (its report), or another
    /// invocation is handling it right now (pipeline path).
    Duplicate(FailureReport),
    /// `askApproval`: the approval request was published (the state machine
    /// ignores this answer and waits for the task token's answer).
    #[serde(rename_all = "camelCase")]
    ApprovalAsked {
        deployment_id: String,
        subject: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
        deadline_seconds: u32,
    },
    /// Not a failure this path handles (a non-failure event, a deployment
    /// owned by a pipeline execution, or one being handled right now).
    #[serde(rename_all = "camelCase")]
    Ignored {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deployment_id: Option<String>,
    },
    /// `announce`: the notification of a deployed or superseded upload.
    #[serde(rename_all = "camelCase")]
    Announced {
        announced: greenlight_core::metrics::DeploymentOutcome,
        subject: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
    },
}

impl Response {
    /// The report, unless the event was ignored.
    pub fn report(&self) -> Option<&FailureReport> {
        match self {
            Response::Handled(r) | Response::Duplicate(r) => Some(r),
            Response::Ignored { .. }
            | Response::Announced { .. }
            | Response::ApprovalAsked { .. } => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The payload is not one of the three entry points, or lacks what the
    /// handler needs.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Reading the deployment failed (EventBridge path); Lambda's retry of
    /// the event runs it again.
    #[error("{operation} failed: {detail}")]
    AwsError {
        operation: &'static str,
        detail: String,
    },
    /// An effect-layer call failed (says whether it is transient).
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl Error {
    /// Stable `errorType` names ([`greenlight_core::errors`]).
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::InvalidInput(_) => errors::INVALID_INPUT,
            Error::AwsError { .. } => errors::AWS_ERROR,
            Error::Aws(e) => e.error_type(),
        }
    }
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.to_string(),
        }
    }
}

pub async fn handler(event: LambdaEvent<Request>, deps: &Deps) -> Result<Response, Error> {
    let request_id = event.context.request_id.clone();
    let deadline = i64::try_from(event.context.deadline)
        .ok()
        .filter(|d| *d > 0);
    handle(
        event.payload,
        &request_id,
        greenlight_aws::now_ms(),
        deadline,
        deps,
    )
    .await
}

/// [`handler`] with the clock, the invocation id and its deadline (epoch
/// ms; `None` without a Lambda context: nothing bounds the standby's
/// settle then) as arguments.
pub async fn handle(
    request: Request,
    request_id: &str,
    now: EpochMillis,
    deadline_ms: Option<EpochMillis>,
    deps: &Deps,
) -> Result<Response, Error> {
    let claimed_by = if request_id.is_empty() {
        "unknown-invocation"
    } else {
        request_id
    };
    match request {
        Request::Ask(ask) => ask_approval(*ask, deps).await,
        Request::Task(task) if task.action == Action::Announce => announce(&task, deps).await,
        Request::Task(task) if task.action == Action::AnnounceBakeSkipped => {
            announce_bake_skipped(&task, deps).await
        }
        Request::Task(task) => handle_pipeline(*task, claimed_by, now, deadline_ms, deps).await,
        Request::CodeDeploy(event) => {
            handle_event(*event, claimed_by, now, deadline_ms, deps).await
        }
        Request::Execution(event) => {
            handle_execution_end(*event, claimed_by, now, deadline_ms, deps).await
        }
        Request::Unrecognized(value) => Err(unrecognized(&value)),
    }
}

/// The most precise complaint about a payload that matched no entry point.
fn unrecognized(value: &serde_json::Value) -> Error {
    if value.get("action").and_then(|a| a.as_str()) == Some("askApproval") {
        if let Err(e) = serde_json::from_value::<ApprovalAsk>(value.clone()) {
            return Error::InvalidInput(format!(
                "approval request does not parse ({e}); expected {{\"action\": \"askApproval\", \"executionName\": ..., \"taskToken\": ..., \"pipeline\": <PipelineState>}}"
            ));
        }
    }
    if value.get("action").is_some() || value.get("pipeline").is_some() {
        if let Err(e) = serde_json::from_value::<TaskRequest<Action>>(value.clone()) {
            return Error::InvalidInput(format!(
                "state-machine task request does not parse ({e}); expected {{\"action\": \"handle\", \"executionName\": ..., \"pipeline\": <PipelineState>}}"
            ));
        }
    }
    if value.get("detail-type").and_then(|d| d.as_str()) == Some(EXECUTION_STATUS_CHANGE) {
        if let Err(e) = serde_json::from_value::<ExecutionEvent>(value.clone()) {
            return Error::InvalidInput(format!(
                "EventBridge event does not parse as a Step Functions execution status-change event ({e})"
            ));
        }
    }
    if value.get("detail-type").is_some() || value.get("detail").is_some() {
        if let Err(e) = serde_json::from_value::<CodeDeployEvent>(value.clone()) {
            return Error::InvalidInput(format!(
                "EventBridge event does not parse as a CodeDeploy state-change event ({e})"
            ));
        }
    }
    Error::InvalidInput(
        "expected a state-machine task request (action \"handle\"), an EventBridge \"CodeDeploy Deployment State-change Notification\" or a \"Step Functions Execution Status Change\" event".to_string(),
    )
}

/// The notification of an upload that ended without failing: superseded
/// (`$.admission` names the newer upload) or deployed (`$.status` succeeded,
/// its ledger gives the phases). Anything else is not this action's to
/// announce. A publish that fails is an error (`AwsTransient` when SNS
/// throttled or did not answer, which the state machine retries); nothing
/// else is written, so a retry is safe unless an earlier attempt's publish
/// succeeded and only its answer was lost (then subscribers get it twice).
pub async fn announce(task: &TaskRequest<Action>, deps: &Deps) -> Result<Response, Error> {
    let pipeline = &task.pipeline;
    let notification = match (&pipeline.admission, &pipeline.status) {
        (Some(Admission::Superseded { by_execution, by_key }), _) => greenlight_core::announce::superseded(
            &pipeline.input,
            &task.execution_name,
            by_execution,
            by_key,
        ),
        (_, Some(status)) if status.next == NextStep::Succeeded => {
            greenlight_core::announce::deployed(
                &pipeline.input,
                &task.execution_name,
                &status.deployment_id,
                &status.ledger,
                pipeline.bake.as_ref().map(|b| b.verdict),
            )
        }
        _ => {
            return Err(Error::InvalidInput(format!(
                "announce for execution {} needs a superseded $.admission or a succeeded $.status; the state machine runs it only before Superseded and Deployed",
                task.execution_name
            )))
        }
    };
    let message_id = publish(&deps.sns, &deps.config.topic_arn, &notification).await?;
    tracing::info!(
        execution = %task.execution_name,
        outcome = notification.outcome.name(),
        subject = %notification.subject,
        message_id = ?message_id,
        "announced"
    );
    Ok(Response::Announced {
        announced: notification.outcome,
        subject: notification.subject,
        message_id,
    })
}

/// The notification of a bake the emergency override skipped, sent by the
/// `AnnounceBakeSkipped` state right after the `Bake` look that answered
/// `skipped` (the override took effect then). Refuses a state in which the
/// bake was not skipped (the state machine runs it only after that verdict).
/// A publish that fails is an error (`AwsTransient` is retried by the state);
/// the state machine takes the failure path then: a skip must not go on
/// unannounced.
pub async fn announce_bake_skipped(
    task: &TaskRequest<Action>,
    deps: &Deps,
) -> Result<Response, Error> {
    let pipeline = &task.pipeline;
    let skipped = pipeline
        .bake
        .as_ref()
        .filter(|b| b.verdict == greenlight_core::bake::BakeVerdict::Skipped);
    let (Some(skip), Some(bake)) = (pipeline.input.bake_skip.as_ref(), skipped) else {
        return Err(Error::InvalidInput(format!(
            "announceBakeSkipped for execution {} needs $.bakeSkip and $.bake.verdict skipped; the state machine runs it only after the Bake look that skipped",
            task.execution_name
        )));
    };
    let notification = greenlight_core::announce::bake_skipped(
        &pipeline.input,
        &task.execution_name,
        &bake.deployment_id,
        skip,
        pipeline
            .deployment
            .as_ref()
            .and_then(|d| d.blue_termination_wait_seconds),
    );
    let message_id = publish(&deps.sns, &deps.config.topic_arn, &notification).await?;
    tracing::warn!(
        execution = %task.execution_name,
        deployment_id = %bake.deployment_id,
        subject = %notification.subject,
        message_id = ?message_id,
        "bake skipped by override; announced"
    );
    Ok(Response::Announced {
        announced: notification.outcome,
        subject: notification.subject,
        message_id,
    })
}

mod ask;
mod marker;
mod paths;
mod steps;

use ask::*;
pub use ask::{ApprovalAsk, AskAction};
use marker::*;
use paths::*;
use steps::*;

#[cfg(test)]
mod tests;
