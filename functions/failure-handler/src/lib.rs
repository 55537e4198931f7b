//! failure-handler: diagnose a failed deployment, run the seed-001 runbook,
//! restore the load balancer, notify once, fail the CodePipeline job.
//!
//! Two entry points, one binary:
//! 1. the state machine's failure path: a [`TaskRequest`] with action
//!    `handle` (`HandleFailure` state, result at `$.report`);
//! 2. EventBridge "CodeDeploy Deployment State-change Notification" with
//!    state `FAILURE` or `STOP`, for deployments started outside the pipeline
//!    (a deployment whose description names a greenlight execution is left to
//!    that execution's own failure path).
//!
//! Steps, each idempotent, each recorded in the report (a failed step does
//! not stop the others): claim the report marker in S3 (`PutObject
//! If-None-Match: *`), read the deployment, stop it if still active, delete
//! the green ASG and point the group at blue (failure before traffic moved),
//! restore the load balancer, publish one SNS notification, fail the
//! CodePipeline job, overwrite the marker with the completed report. Every
//! decision is in [`greenlight_core::runbook`].

use aws_lambda_events::event::codedeploy::CodeDeployEvent;
use aws_sdk_codepipeline::types::{FailureDetails, FailureType};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use greenlight_aws::config::{optional, required, ConfigError};
use greenlight_aws::deployment::read_deployment;
use greenlight_aws::load_balancer::{
    restore_recorded, restore_target_group, target_group_arns, LbError, RestoreOutcome,
};
use greenlight_core::errors;
use greenlight_core::model::{DeploymentView, EpochMillis, TaskRequest};
use greenlight_core::runbook::{
    classify_event, classify_pipeline, codepipeline_job_id, compose_report, diagnose,
    event_disposition, event_restore_source, failing_evidence, in_progress_report, marker_decision,
    marker_key, notification, ownership, pipeline_deployment_id, pipeline_restore_source,
    plan_runbook, truncate_chars, ActionRecord, EventDisposition, ExistingMarker, FailureReport,
    MarkerDecision, Outcome, Ownership, ReportInput, ReportMarker, ReportSource, RestoreSource,
    RunbookDecision, RunbookPlan, Step, TAKEOVER_AFTER_MS,
};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};

/// Default `REPORT_PREFIX`.
pub const DEFAULT_REPORT_PREFIX: &str = "greenlight-reports/";

/// CodePipeline accepts at most 5000 characters of failure message.
pub const MAX_JOB_MESSAGE_CHARS: usize = 5000;

pub struct Config {
    /// `TOPIC_ARN` (required): the SNS topic that gets the one notification.
    pub topic_arn: String,
    /// `REPORT_BUCKET` (required): where the report markers live.
    pub report_bucket: String,
    /// `REPORT_PREFIX` (default `greenlight-reports/`).
    pub report_prefix: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            topic_arn: required("TOPIC_ARN")?,
            report_bucket: required("REPORT_BUCKET")?,
            report_prefix: optional("REPORT_PREFIX")
                .unwrap_or_else(|| DEFAULT_REPORT_PREFIX.to_string()),
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
            config,
        }
    }
}

/// The state machine's action for this function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Handle,
}

/// Either entry point. Anything else is kept as JSON so the handler can say
/// precisely what is wrong with it ([`Error::InvalidInput`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Request {
    /// The state machine's failure path.
    Task(Box<TaskRequest<Action>>),
    /// EventBridge CodeDeploy state-change event.
    CodeDeploy(Box<CodeDeployEvent>),
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
    /// Not a failure this path handles (a non-failure event, a deployment
    /// owned by a pipeline execution, or one being handled right now).
    #[serde(rename_all = "camelCase")]
    Ignored {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deployment_id: Option<String>,
    },
}

impl Response {
    /// The report, unless the event was ignored.
    pub fn report(&self) -> Option<&FailureReport> {
        match self {
            Response::Handled(r) | Response::Duplicate(r) => Some(r),
            Response::Ignored { .. } => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The payload is neither a `handle` task request nor a CodeDeploy
    /// state-change event, or lacks what the handler needs.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// An AWS call the handler cannot do without failed (EventBridge path:
    /// reading the deployment); Lambda's retry of the event runs it again.
    #[error("{operation} failed: {detail}")]
    AwsError {
        operation: &'static str,
        detail: String,
    },
}

impl Error {
    /// Stable `errorType` names.
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::InvalidInput(_) => errors::INVALID_INPUT,
            Error::AwsError { .. } => errors::AWS_ERROR,
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
    handle(event.payload, &request_id, greenlight_aws::now_ms(), deps).await
}

/// [`handler`] with the clock and the invocation id as arguments.
pub async fn handle(
    request: Request,
    request_id: &str,
    now: EpochMillis,
    deps: &Deps,
) -> Result<Response, Error> {
    let claimed_by = if request_id.is_empty() {
        "unknown-invocation"
    } else {
        request_id
    };
    match request {
        Request::Task(task) => handle_pipeline(*task, claimed_by, now, deps).await,
        Request::CodeDeploy(event) => handle_event(*event, claimed_by, now, deps).await,
        Request::Unrecognized(value) => Err(unrecognized(&value)),
    }
}

/// The most precise complaint about a payload that matched neither entry point.
fn unrecognized(value: &serde_json::Value) -> Error {
    if value.get("action").is_some() || value.get("pipeline").is_some() {
        if let Err(e) = serde_json::from_value::<TaskRequest<Action>>(value.clone()) {
            return Error::InvalidInput(format!(
                "state-machine task request does not parse ({e}); expected {{\"action\": \"handle\", \"executionName\": ..., \"pipeline\": <PipelineState>}}"
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
        "expected a state-machine task request (action \"handle\") or an EventBridge \"CodeDeploy Deployment State-change Notification\" event".to_string(),
    )
}

async fn handle_pipeline(
    task: TaskRequest<Action>,
    claimed_by: &str,
    now: EpochMillis,
    deps: &Deps,
) -> Result<Response, Error> {
    let state = &task.pipeline;
    let execution_name = task.execution_name.trim();
    if execution_name.is_empty() {
        return Err(Error::InvalidInput(
            "executionName is empty; the state machine passes $$.Execution.Name".to_string(),
        ));
    }
    let application = state.input.application.as_str();
    let group = state.input.deployment_group.as_str();
    if application.is_empty() || group.is_empty() {
        return Err(Error::InvalidInput(
            "pipeline.application and pipeline.deploymentGroup must be set".to_string(),
        ));
    }
    let classification = classify_pipeline(state);
    let deployment_id = pipeline_deployment_id(state);
    let job_id = codepipeline_job_id(state);
    let source = ReportSource::Pipeline {
        execution_name: execution_name.to_string(),
        codepipeline_job_id: job_id.clone(),
    };
    tracing::info!(
        execution = execution_name,
        error = classification.kind.as_str(),
        deployment_id = deployment_id.as_deref().unwrap_or(""),
        "handling pipeline failure"
    );

    let key = marker_key(
        &deps.config.report_prefix,
        deployment_id.as_deref(),
        execution_name,
    );
    let mut actions = Vec::new();
    match claim(deps, &key, claimed_by, now).await {
        Claim::Claimed(record) | Claim::Unavailable(record) => actions.push(record),
        Claim::Skip {
            report: Some(report),
            ..
        } => return Ok(Response::Duplicate(*report)),
        Claim::Skip {
            reason,
            report: None,
        } => {
            return Ok(Response::Duplicate(in_progress_report(
                source,
                state,
                classification,
                &reason,
                now,
            )))
        }
    }

    let view = match deployment_id.as_deref() {
        None => None,
        Some(id) => match read_deployment(&deps.codedeploy, id).await {
            Ok(view) => Some(view),
            Err(e) => {
                tracing::warn!(deployment_id = id, error = %e, "could not read the deployment");
                actions.push(ActionRecord::new(
                    Step::ReadDeployment,
                    id,
                    Outcome::Failed,
                    e.to_string(),
                ));
                None
            }
        },
    };
    let plan = plan_runbook(group, deployment_id.as_deref(), view.as_ref());
    run_runbook(
        deps,
        application,
        group,
        deployment_id.as_deref(),
        view.as_ref(),
        &plan,
        &mut actions,
    )
    .await;
    let restore_source = pipeline_restore_source(state);
    restore_load_balancer(deps, application, group, &restore_source, &mut actions).await;

    let report = compose_report(ReportInput {
        source,
        application: application.to_string(),
        deployment_group: group.to_string(),
        deployment_id,
        revision: Some(state.input.revision.clone()),
        classification,
        diagnosis: view.as_ref().map(diagnose),
        validation_evidence: failing_evidence(state),
        runbook: plan,
        restore_source,
        actions,
        now,
    });
    let report = finish(deps, &key, now, report, job_id.as_deref()).await;
    Ok(Response::Handled(report))
}

async fn handle_event(
    event: CodeDeployEvent,
    claimed_by: &str,
    now: EpochMillis,
    deps: &Deps,
) -> Result<Response, Error> {
    let detail = &event.detail;
    let deployment_id = detail
        .deployment_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_string);
    if let EventDisposition::Ignore { reason } =
        event_disposition(event.detail_type.as_deref(), &detail.state)
    {
        tracing::info!(reason = reason.as_str(), "event ignored");
        return Ok(Response::Ignored {
            reason,
            deployment_id,
        });
    }
    let Some(deployment_id) = deployment_id else {
        return Err(Error::InvalidInput(
            "the CodeDeploy state-change event has no detail.deploymentId".to_string(),
        ));
    };
    let view = read_deployment(&deps.codedeploy, &deployment_id)
        .await
        .map_err(|e| {
            if e.is_not_found() {
                Error::InvalidInput(e.to_string())
            } else {
                Error::AwsError {
                    operation: "reading the deployment",
                    detail: e.to_string(),
                }
            }
        })?;
    if let Ownership::Pipeline { execution_name } = ownership(&view) {
        let reason = format!(
            "owned by execution {execution_name}: deployment {deployment_id} was created by the greenlight pipeline, whose own failure path handles it"
        );
        tracing::info!(reason = reason.as_str(), "event skipped");
        return Ok(Response::Ignored {
            reason,
            deployment_id: Some(deployment_id),
        });
    }
    let application = non_empty_or(&view.application, detail.application.as_deref());
    let group = non_empty_or(&view.deployment_group, detail.deployment_group.as_deref());
    if application.is_empty() || group.is_empty() {
        return Err(Error::InvalidInput(format!(
            "neither deployment {deployment_id} nor the event names its application and deployment group"
        )));
    }
    let classification = classify_event(&detail.state, &view);
    let source = ReportSource::Event {
        event_id: event.id.clone(),
        state: detail.state.clone(),
    };
    tracing::info!(
        deployment_id = deployment_id.as_str(),
        state = detail.state.as_str(),
        "handling a deployment that failed outside the pipeline"
    );

    let key = marker_key(
        &deps.config.report_prefix,
        Some(&deployment_id),
        &deployment_id,
    );
    let mut actions = Vec::new();
    match claim(deps, &key, claimed_by, now).await {
        Claim::Claimed(record) | Claim::Unavailable(record) => actions.push(record),
        Claim::Skip {
            report: Some(report),
            ..
        } => return Ok(Response::Duplicate(*report)),
        Claim::Skip {
            reason,
            report: None,
        } => {
            return Ok(Response::Ignored {
                reason,
                deployment_id: Some(deployment_id),
            })
        }
    }

    let plan = plan_runbook(&group, Some(&deployment_id), Some(&view));
    run_runbook(
        deps,
        &application,
        &group,
        Some(&deployment_id),
        Some(&view),
        &plan,
        &mut actions,
    )
    .await;
    let restore_source = event_restore_source();
    restore_load_balancer(deps, &application, &group, &restore_source, &mut actions).await;

    let report = compose_report(ReportInput {
        source,
        application,
        deployment_group: group,
        deployment_id: Some(deployment_id),
        revision: None,
        classification,
        diagnosis: Some(diagnose(&view)),
        validation_evidence: Vec::new(),
        runbook: plan,
        restore_source,
        actions,
        now,
    });
    let report = finish(deps, &key, now, report, None).await;
    Ok(Response::Handled(report))
}

fn non_empty_or(primary: &str, fallback: Option<&str>) -> String {
    if primary.trim().is_empty() {
        fallback.unwrap_or_default().trim().to_string()
    } else {
        primary.to_string()
    }
}

// ---- dedupe marker ----------------------------------------------------------

enum Claim {
    /// This invocation holds the marker.
    Claimed(ActionRecord),
    /// Handled or being handled: do nothing twice.
    Skip {
        reason: String,
        report: Option<Box<FailureReport>>,
    },
    /// The marker could not be written (S3 failing): go on without it.
    Unavailable(ActionRecord),
}

/// `code: message` of an SDK error, or its whole error chain when the
/// service gave no code.
fn describe<E>(err: &E) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => aws_sdk_s3::error::DisplayErrorContext(err).to_string(),
    }
}

fn is_code<E: ProvideErrorMetadata>(err: &E, codes: &[&str]) -> bool {
    err.code().is_some_and(|c| codes.contains(&c))
}

async fn put_marker(
    deps: &Deps,
    key: &str,
    marker: &ReportMarker,
    condition: Condition<'_>,
) -> Result<(), aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::put_object::PutObjectError>> {
    let body = serde_json::to_vec_pretty(marker).unwrap_or_default();
    let request = deps
        .s3
        .put_object()
        .bucket(&deps.config.report_bucket)
        .key(key)
        .content_type("application/json")
        .body(ByteStream::from(body));
    let request = match condition {
        Condition::None => request,
        Condition::Absent => request.if_none_match("*"),
        Condition::Matches(etag) => request.if_match(etag),
    };
    request.send().await.map(|_| ())
}

enum Condition<'a> {
    None,
    /// `If-None-Match: *`: only when no object exists.
    Absent,
    /// `If-Match: <etag>`: only over exactly that object.
    Matches(&'a str),
}

/// Claims `key` for this invocation: `PutObject If-None-Match: *` with an
/// in-progress marker. When it exists, reads it and lets the core decide.
async fn claim(deps: &Deps, key: &str, claimed_by: &str, now: EpochMillis) -> Claim {
    let location = format!("s3://{}/{key}", deps.config.report_bucket);
    let mine = ReportMarker::InProgress {
        claimed_at_ms: now,
        claimed_by: claimed_by.to_string(),
    };
    match put_marker(deps, key, &mine, Condition::Absent).await {
        Ok(()) => {
            return Claim::Claimed(ActionRecord::new(
                Step::ClaimReport,
                location,
                Outcome::Done,
                format!("claimed by {claimed_by}"),
            ))
        }
        Err(e) if is_code(&e, &["ConditionalRequestConflict"]) => {
            return Claim::Skip {
                reason: format!(
                "another invocation is claiming {location} right now (ConditionalRequestConflict)"
            ),
                report: None,
            }
        }
        Err(e) if is_code(&e, &["PreconditionFailed"]) => {}
        Err(e) => {
            let detail = describe(&e);
            tracing::warn!(
                marker = location.as_str(),
                error = detail.as_str(),
                "could not claim the report marker; going on without dedupe"
            );
            return Claim::Unavailable(ActionRecord::new(
                Step::ClaimReport,
                location,
                Outcome::Failed,
                format!("could not write the marker, handled without dedupe: {detail}"),
            ));
        }
    }

    // Someone claimed it before: read what they left.
    let read = deps
        .s3
        .get_object()
        .bucket(&deps.config.report_bucket)
        .key(key)
        .send()
        .await;
    let (etag, body) = match read {
        Ok(out) => {
            let etag = out.e_tag().map(str::to_string);
            match out.body.collect().await {
                Ok(bytes) => (etag, Some(bytes.into_bytes().to_vec())),
                Err(e) => {
                    return Claim::Skip {
                        reason: format!("{location} exists but could not be read ({e})"),
                        report: None,
                    }
                }
            }
        }
        Err(e)
            if is_code(&e, &["NoSuchKey", "NotFound"])
                || e.as_service_error().is_some_and(|s| s.is_no_such_key()) =>
        {
            (None, None)
        }
        Err(e) => {
            return Claim::Skip {
                reason: format!("{location} exists but could not be read ({})", describe(&e)),
                report: None,
            }
        }
    };
    let parsed = body.as_deref().map(serde_json::from_slice::<ReportMarker>);
    let existing = match &parsed {
        None => ExistingMarker::Absent,
        Some(Ok(marker)) => ExistingMarker::Found(marker),
        Some(Err(_)) => ExistingMarker::Unreadable,
    };
    match marker_decision(existing, now, TAKEOVER_AFTER_MS) {
        MarkerDecision::Skip { reason, report } => {
            tracing::info!(
                marker = location.as_str(),
                reason = reason.as_str(),
                "duplicate delivery"
            );
            Claim::Skip { reason, report }
        }
        MarkerDecision::Proceed => match put_marker(deps, key, &mine, Condition::Absent).await {
            Ok(()) => Claim::Claimed(ActionRecord::new(
                Step::ClaimReport,
                location,
                Outcome::Done,
                format!("claimed by {claimed_by} (the earlier marker had vanished)"),
            )),
            Err(e) => Claim::Skip {
                reason: format!(
                    "{location} was claimed again by another invocation ({})",
                    describe(&e)
                ),
                report: None,
            },
        },
        MarkerDecision::TakeOver { reason } => {
            let condition = match etag.as_deref() {
                Some(etag) => Condition::Matches(etag),
                None => Condition::None,
            };
            match put_marker(deps, key, &mine, condition).await {
                Ok(()) => Claim::Claimed(ActionRecord::new(
                    Step::ClaimReport,
                    location,
                    Outcome::Done,
                    format!("taken over by {claimed_by}: {reason}"),
                )),
                Err(e) if is_code(&e, &["PreconditionFailed", "ConditionalRequestConflict"]) => {
                    Claim::Skip {
                        reason: format!("another invocation took over {location} first"),
                        report: None,
                    }
                }
                Err(e) => Claim::Unavailable(ActionRecord::new(
                    Step::ClaimReport,
                    location,
                    Outcome::Failed,
                    format!(
                        "could not take over the stale marker ({reason}), handled without dedupe: {}",
                        describe(&e)
                    ),
                )),
            }
        }
    }
}

// ---- runbook -----------------------------------------------------------------

async fn run_runbook(
    deps: &Deps,
    application: &str,
    group: &str,
    deployment_id: Option<&str>,
    view: Option<&DeploymentView>,
    plan: &RunbookPlan,
    actions: &mut Vec<ActionRecord>,
) {
    if plan.stop_deployment {
        if let Some(id) = deployment_id {
            actions.push(stop_deployment(deps, id).await);
        }
    }
    if let RunbookDecision::RemoveGreenAndPointAtBlue {
        green_asg,
        blue_asgs,
        ..
    } = &plan.decision
    {
        actions.push(delete_green_asg(deps, green_asg).await);
        actions.push(point_group_at_blue(deps, application, group, blue_asgs).await);
    }
    if let Some(view) = view {
        tracing::info!(
            deployment_id = view.deployment_id.as_str(),
            decision = ?plan.decision,
            "runbook applied"
        );
    }
}

/// StopDeployment with rollback; an already finished deployment is fine.
async fn stop_deployment(deps: &Deps, deployment_id: &str) -> ActionRecord {
    let answer = deps
        .codedeploy
        .stop_deployment()
        .deployment_id(deployment_id)
        .auto_rollback_enabled(true)
        .send()
        .await;
    match answer {
        Ok(out) => ActionRecord::new(
            Step::StopDeployment,
            deployment_id,
            Outcome::Done,
            format!(
                "StopDeployment(autoRollbackEnabled) answered {}{}",
                out.status().map(|s| s.as_str()).unwrap_or("no status"),
                out.status_message()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
        ),
        Err(e)
            if is_code(&e, &["DeploymentAlreadyCompletedException"])
                || e.as_service_error()
                    .is_some_and(|s| s.is_deployment_already_completed_exception()) =>
        {
            ActionRecord::new(
                Step::StopDeployment,
                deployment_id,
                Outcome::AlreadyDone,
                "the deployment had already completed",
            )
        }
        Err(e) => ActionRecord::new(
            Step::StopDeployment,
            deployment_id,
            Outcome::Failed,
            describe(&e),
        ),
    }
}

/// DeleteAutoScalingGroup with ForceDelete (terminates its instances too);
/// a group that does not exist (or is already being deleted) is done.
async fn delete_green_asg(deps: &Deps, name: &str) -> ActionRecord {
    let answer = deps
        .autoscaling
        .delete_auto_scaling_group()
        .auto_scaling_group_name(name)
        .force_delete(true)
        .send()
        .await;
    match answer {
        Ok(_) => ActionRecord::new(
            Step::DeleteGreenAsg,
            name,
            Outcome::Done,
            "DeleteAutoScalingGroup(ForceDelete) accepted: the green instances are terminated with it",
        ),
        Err(e) => {
            let message = e.message().unwrap_or_default().to_ascii_lowercase();
            if is_code(&e, &["ValidationError"]) && message.contains("not found") {
                ActionRecord::new(
                    Step::DeleteGreenAsg,
                    name,
                    Outcome::AlreadyDone,
                    "no such Auto Scaling group (already deleted, or CodeDeploy never created it)",
                )
            } else if message.contains("pending delete") || message.contains("being deleted") {
                ActionRecord::new(
                    Step::DeleteGreenAsg,
                    name,
                    Outcome::AlreadyDone,
                    "the Auto Scaling group is already being deleted",
                )
            } else {
                ActionRecord::new(
                    Step::DeleteGreenAsg,
                    name,
                    Outcome::Failed,
                    describe(&e),
                )
            }
        }
    }
}

/// Makes the deployment group point at the blue ASG(s), unless it already does.
async fn point_group_at_blue(
    deps: &Deps,
    application: &str,
    group: &str,
    blue_asgs: &[String],
) -> ActionRecord {
    let target = format!("{application}/{group}");
    if blue_asgs.is_empty() {
        return ActionRecord::new(
            Step::PointGroupAtBlue,
            target,
            Outcome::Skipped,
            "the deployment recorded no original Auto Scaling group",
        );
    }
    let current = match deps
        .codedeploy
        .get_deployment_group()
        .application_name(application)
        .deployment_group_name(group)
        .send()
        .await
    {
        Ok(out) => out
            .deployment_group_info()
            .map(|info| {
                info.auto_scaling_groups()
                    .iter()
                    .filter_map(|a| a.name())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default(),
        Err(e) => {
            return ActionRecord::new(
                Step::PointGroupAtBlue,
                target,
                Outcome::Failed,
                format!("GetDeploymentGroup: {}", describe(&e)),
            )
        }
    };
    let mut have = current.clone();
    have.sort();
    let mut want = blue_asgs.to_vec();
    want.sort();
    if have == want {
        return ActionRecord::new(
            Step::PointGroupAtBlue,
            target,
            Outcome::AlreadyDone,
            format!("the group already points at {}", blue_asgs.join(", ")),
        );
    }
    match deps
        .codedeploy
        .update_deployment_group()
        .application_name(application)
        .current_deployment_group_name(group)
        .set_auto_scaling_groups(Some(blue_asgs.to_vec()))
        .send()
        .await
    {
        Ok(_) => ActionRecord::new(
            Step::PointGroupAtBlue,
            target,
            Outcome::Done,
            format!(
                "autoScalingGroups changed from [{}] to [{}]",
                current.join(", "),
                blue_asgs.join(", ")
            ),
        ),
        Err(e) => ActionRecord::new(
            Step::PointGroupAtBlue,
            target,
            Outcome::Failed,
            format!("UpdateDeploymentGroup: {}", describe(&e)),
        ),
    }
}

// ---- load balancer -------------------------------------------------------------

fn restore_record(target: &str, result: Result<RestoreOutcome, LbError>) -> ActionRecord {
    match result {
        Ok(RestoreOutcome::Restored) => ActionRecord::new(
            Step::RestoreLoadBalancer,
            target,
            Outcome::Done,
            "health check and deregistration delay put back to the snapshot; snapshot tag removed",
        ),
        Ok(RestoreOutcome::AlreadyRestored) => ActionRecord::new(
            Step::RestoreLoadBalancer,
            target,
            Outcome::AlreadyDone,
            "settings already equal the snapshot",
        ),
        Ok(RestoreOutcome::NotTuned) => ActionRecord::new(
            Step::RestoreLoadBalancer,
            target,
            Outcome::AlreadyDone,
            "no recorded snapshot tag: not tuned or already restored",
        ),
        Err(e) => ActionRecord::new(
            Step::RestoreLoadBalancer,
            target,
            Outcome::Failed,
            format!("{}: {e}", e.error_type()),
        ),
    }
}

async fn restore_load_balancer(
    deps: &Deps,
    application: &str,
    group: &str,
    source: &RestoreSource,
    actions: &mut Vec<ActionRecord>,
) {
    match source {
        RestoreSource::Nothing { .. } => {}
        RestoreSource::Snapshots { snapshots } => {
            for snapshot in snapshots {
                let result = restore_target_group(&deps.elbv2, snapshot).await;
                actions.push(restore_record(&snapshot.target_group_arn, result));
            }
        }
        RestoreSource::RecordedTags => {
            match target_group_arns(&deps.codedeploy, &deps.elbv2, application, group).await {
                Ok(arns) => {
                    for arn in arns {
                        let result = restore_recorded(&deps.elbv2, &arn).await;
                        actions.push(restore_record(&arn, result));
                    }
                }
                Err(LbError::NoLoadBalancer { .. }) => actions.push(ActionRecord::new(
                    Step::RestoreLoadBalancer,
                    format!("{application}/{group}"),
                    Outcome::Skipped,
                    "the deployment group has no ALB target group",
                )),
                Err(e) => actions.push(ActionRecord::new(
                    Step::RestoreLoadBalancer,
                    format!("{application}/{group}"),
                    Outcome::Failed,
                    format!("finding the target groups: {}: {e}", e.error_type()),
                )),
            }
        }
    }
}

// ---- notify, job, report -------------------------------------------------------

/// Publishes the one notification, fails the CodePipeline job, and writes the
/// completed report over the marker.
async fn finish(
    deps: &Deps,
    key: &str,
    claimed_at_ms: EpochMillis,
    mut report: FailureReport,
    job_id: Option<&str>,
) -> FailureReport {
    let message = notification(&report);
    let published = deps
        .sns
        .publish()
        .topic_arn(&deps.config.topic_arn)
        .subject(&message.subject)
        .message(&message.message)
        .send()
        .await;
    report.actions.push(match published {
        Ok(out) => ActionRecord::new(
            Step::Notify,
            &deps.config.topic_arn,
            Outcome::Done,
            format!(
                "published \"{}\" (message id {})",
                message.subject,
                out.message_id().unwrap_or("unknown")
            ),
        ),
        Err(e) => ActionRecord::new(
            Step::Notify,
            &deps.config.topic_arn,
            Outcome::Failed,
            describe(&e),
        ),
    });

    if let Some(job_id) = job_id {
        report
            .actions
            .push(fail_job(deps, job_id, &report.summary).await);
    }

    let location = format!("s3://{}/{key}", deps.config.report_bucket);
    report.actions.push(ActionRecord::new(
        Step::WriteReport,
        &location,
        Outcome::Done,
        "completed report written over the marker",
    ));
    let marker = ReportMarker::Completed {
        claimed_at_ms,
        completed_at_ms: greenlight_aws::now_ms().max(claimed_at_ms),
        report: Box::new(report.clone()),
    };
    if let Err(e) = put_marker(deps, key, &marker, Condition::None).await {
        let detail = describe(&e);
        tracing::warn!(
            marker = location.as_str(),
            error = detail.as_str(),
            "could not write the completed report"
        );
        if let Some(last) = report.actions.last_mut() {
            last.outcome = Outcome::Failed;
            last.detail = format!("could not write the completed report: {detail}");
        }
    }
    tracing::info!(
        error = report.error.as_str(),
        summary = report.summary.as_str(),
        "failure handled"
    );
    report
}

/// PutJobFailureResult(JobFailed, summary); a job already answered (or gone)
/// is fine.
async fn fail_job(deps: &Deps, job_id: &str, summary: &str) -> ActionRecord {
    let details = FailureDetails::builder()
        .r#type(FailureType::JobFailed)
        .message(truncate_chars(summary, MAX_JOB_MESSAGE_CHARS))
        .build();
    let details = match details {
        Ok(d) => d,
        Err(e) => {
            return ActionRecord::new(
                Step::FailCodePipelineJob,
                job_id,
                Outcome::Failed,
                format!("building the failure details: {e}"),
            )
        }
    };
    match deps
        .codepipeline
        .put_job_failure_result()
        .job_id(job_id)
        .failure_details(details)
        .send()
        .await
    {
        Ok(_) => ActionRecord::new(
            Step::FailCodePipelineJob,
            job_id,
            Outcome::Done,
            "PutJobFailureResult(JobFailed) with the summary",
        ),
        Err(e)
            if is_code(&e, &["InvalidJobStateException", "JobNotFoundException"])
                || e.as_service_error().is_some_and(|s| {
                    s.is_invalid_job_state_exception() || s.is_job_not_found_exception()
                }) =>
        {
            ActionRecord::new(
                Step::FailCodePipelineJob,
                job_id,
                Outcome::AlreadyDone,
                format!("the job was already answered ({})", describe(&e)),
            )
        }
        Err(e) => ActionRecord::new(
            Step::FailCodePipelineJob,
            job_id,
            Outcome::Failed,
            describe(&e),
        ),
    }
}

#[cfg(test)]
mod tests;
