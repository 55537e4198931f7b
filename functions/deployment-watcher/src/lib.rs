//! deployment-watcher: admit an upload, create its CodeDeploy deployment,
//! and watch it to the end.
//!
//! One Lambda, three state-machine actions, each `{"action": ...,
//! "executionName": ..., "pipeline": <PipelineState>}`:
//!
//! - `admit` → [`Admission`] at `$.admission`: one deployment per
//!   deployment group at a time (the rule is `greenlight_core::watch::admit`).
//!   A group with an active deployment answers the error `GroupBusy`, which the
//!   state machine retries with backoff: that is how an upload waits its turn.
//! - `create` → [`CreatedDeployment`] at `$.deployment`: `CreateDeployment`
//!   with the S3 revision; the description names the execution, so a retried
//!   `create` finds the deployment it already made instead of making a second.
//! - `status` → [`StatusReport`] at `$.status`: the deployment, its targets
//!   and their lifecycle events → status, phase, per-phase ledger, next step
//!   and the seconds to wait before the next look. Past the deadline it calls
//!   `StopDeployment(autoRollbackEnabled = true)` and answers `next: failed`.
//! - `hold` → `ScalingHold` at `$.scaling`: suspends the Auto Scaling
//!   processes that would mix versions (`greenlight_core::scaling`) on the
//!   blue group (state `HoldScaling`, before `Create`) and on the green copy
//!   (state `HoldGreenScaling`, at Ready before the gate), recording first
//!   what it suspends in the group's `greenlight:scaling-hold` tag.
//! - `release` → `ScalingRelease` at `$.scalingReleased` (state
//!   `ReleaseScaling`, success path): resumes exactly what `hold` suspended
//!   and reports a scale event that arrived while held. Every failure path
//!   releases in the failure handler.
//!
//! Every decision is a pure function in `greenlight_core::watch`; this crate
//! reads AWS, calls them and acts.

use greenlight_aws::autoscaling::{hold_groups, release_groups};
use greenlight_aws::config::{parsed_or, required, ConfigError};
use greenlight_aws::deployment::{read_deployment, ReadError};
use greenlight_aws::deployment_control::{
    create_deployment, stop_with_rollback, CreateError, NewDeployment, StopOutcome,
};
use greenlight_aws::deployment_group::{read_deployment_group, GroupReadError};
use greenlight_aws::deployment_list::{active_deployment, recent_deployments};
use greenlight_aws::executions::{
    describe_execution, is_missing_execution, list_running_executions,
};
use greenlight_aws::{now_ms, AwsError};
use greenlight_core::model::{
    Admission, CreatedDeployment, EpochMillis, NextStep, PipelineInput, PipelineState,
    StatusReport, TaskRequest,
};
use greenlight_core::runbook::green_asg_name;
use greenlight_core::scaling::{groups_to_hold, ScalingHold, ScalingRelease};
use greenlight_core::trigger::ExecutionStatus;
use greenlight_core::wake::{DeploymentStateChange, WakeReport};
use greenlight_core::watch::{
    self, created_deployment, deployment_description, own_deployment, AdmissionDecision, Candidate,
    LookContext, Predictions, WaitBounds, WatchAction,
};
use greenlight_core::{errors, metrics};
use lambda_runtime::{Diagnostic, LambdaEvent};

mod wake;
use serde::{Deserialize, Serialize};

/// `MAX_EVENT_WAIT_SECONDS`'s default: an hour, the latest look when a
/// CodeDeploy event is lost (the wait is usually the predicted time to the
/// next event, shorter).
pub const DEFAULT_MAX_EVENT_WAIT_SECONDS: u32 = 3600;

/// How far back `create` looks for a deployment this execution already made.
pub const REUSE_LOOKBACK_MS: EpochMillis = 24 * 60 * 60 * 1000;
pub use greenlight_aws::deployment_list::{
    BATCH_GET_DEPLOYMENTS_MAX, MAX_RECENT_PAGES as MAX_LIST_PAGES,
};

/// Settings, from the environment (see README).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `STATE_MACHINE_ARN` (required): the pipeline, for the supersede check.
    pub state_machine_arn: String,
    /// `DEPLOYMENT_CONFIG_NAME` (default `CodeDeployDefault.OneAtATime`).
    pub deployment_config_name: String,
    /// `DEPLOYMENT_TIMEOUT_SECONDS` (default 3600): deadline after creation.
    pub deployment_timeout_seconds: u32,
    /// `POST_REROUTE_TIMEOUT_SECONDS` (default 10800): past the point of no
    /// return (ContinueDeployment answered, reroute or termination wait
    /// begun) the deadline no longer applies; the watcher keeps watching until
    /// `deadline + this`, then reports the deployment overdue (never stops it).
    pub post_reroute_timeout_seconds: u32,
    /// `MIN_WAIT_SECONDS` (default 5).
    pub min_wait_seconds: u32,
    /// `MAX_WAIT_SECONDS` (default 60): the polling wait's bound.
    pub max_wait_seconds: u32,
    /// `MAX_EVENT_WAIT_SECONDS` (default 3600): the bound of the wait for a
    /// CodeDeploy event, i.e. the latest look when an event is lost.
    pub max_event_wait_seconds: u32,
    /// `IGNORE_APPLICATION_STOP_FAILURES` (default false).
    pub ignore_application_stop_failures: bool,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let config = Self {
            state_machine_arn: required("STATE_MACHINE_ARN")?.trim().to_string(),
            deployment_config_name: parsed_or(
                "DEPLOYMENT_CONFIG_NAME",
                "CodeDeployDefault.OneAtATime".to_string(),
            )?,
            deployment_timeout_seconds: parsed_or("DEPLOYMENT_TIMEOUT_SECONDS", 3600)?,
            post_reroute_timeout_seconds: parsed_or(
                "POST_REROUTE_TIMEOUT_SECONDS",
                watch::DEFAULT_POST_REROUTE_TIMEOUT_SECONDS,
            )?,
            min_wait_seconds: parsed_or("MIN_WAIT_SECONDS", 5)?,
            max_wait_seconds: parsed_or("MAX_WAIT_SECONDS", 60)?,
            max_event_wait_seconds: parsed_or(
                "MAX_EVENT_WAIT_SECONDS",
                DEFAULT_MAX_EVENT_WAIT_SECONDS,
            )?,
            ignore_application_stop_failures: parsed_or("IGNORE_APPLICATION_STOP_FAILURES", false)?,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the numbers: timeout > 0, 1 ≤ min wait ≤ max wait.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |name: &'static str, value: u32, problem: &str| ConfigError::Invalid {
            name,
            value: value.to_string(),
            problem: problem.to_string(),
        };
        if self.deployment_timeout_seconds == 0 {
            return Err(invalid(
                "DEPLOYMENT_TIMEOUT_SECONDS",
                0,
                "must be at least 1 (seconds after creation before the deployment is stopped)",
            ));
        }
        if self.min_wait_seconds == 0 {
            return Err(invalid(
                "MIN_WAIT_SECONDS",
                0,
                "must be at least 1 so the status loop cannot spin",
            ));
        }
        if self.max_wait_seconds < self.min_wait_seconds {
            return Err(invalid(
                "MAX_WAIT_SECONDS",
                self.max_wait_seconds,
                &format!("must be ≥ MIN_WAIT_SECONDS ({})", self.min_wait_seconds),
            ));
        }
        if self.max_event_wait_seconds < self.max_wait_seconds {
            return Err(invalid(
                "MAX_EVENT_WAIT_SECONDS",
                self.max_event_wait_seconds,
                &format!(
                    "must be ≥ MAX_WAIT_SECONDS ({}): an event only shortens the wait",
                    self.max_wait_seconds
                ),
            ));
        }
        Ok(())
    }

    fn bounds(&self) -> WaitBounds {
        WaitBounds {
            min_seconds: self.min_wait_seconds,
            max_seconds: self.max_wait_seconds,
            event_max_seconds: self.max_event_wait_seconds,
        }
    }
}

/// Clients (created once, at start-up) and settings.
pub struct Deps {
    pub codedeploy: aws_sdk_codedeploy::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub config: Config,
}

impl Deps {
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        Self::from_clients(
            aws_sdk_codedeploy::Client::new(sdk),
            aws_sdk_sfn::Client::new(sdk),
            aws_sdk_autoscaling::Client::new(sdk),
            config,
        )
    }

    /// Deps from ready-made clients (tests, the local cloud).
    pub fn from_clients(
        codedeploy: aws_sdk_codedeploy::Client,
        sfn: aws_sdk_sfn::Client,
        autoscaling: aws_sdk_autoscaling::Client,
        config: Config,
    ) -> Self {
        Self {
            codedeploy,
            sfn,
            autoscaling,
            config,
        }
    }
}

/// The task's `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Admit,
    Create,
    Status,
    /// Hold the deployment's Auto Scaling groups still (`$.scaling`).
    Hold,
    /// Resume what `hold` suspended (`$.scalingReleased`), success path.
    Release,
    /// Start the wait for a CodeDeploy event (`AwaitDeploymentEvent`, with
    /// `taskToken`): answers its own token when the deployment already moved.
    Await,
}

pub type Request = TaskRequest<Action>;

/// One of the three model types, serialized as itself (no wrapper), so the
/// state machine's `ResultPath` gets exactly the contract shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Response {
    Admission(Admission),
    Status(StatusReport),
    Created(CreatedDeployment),
    Hold(ScalingHold),
    Release(ScalingRelease),
    /// `await`, and a CodeDeploy event's wake.
    Wake(WakeReport),
}

/// Errors, by stable `errorType` (the state machine matches `GroupBusy`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The group has an active deployment (admit), or CodeDeploy refused a
    /// second one (`DeploymentLimitExceededException` on create). Retried.
    #[error("{0}")]
    GroupBusy(String),
    /// The application or deployment group does not exist.
    #[error("{0}")]
    DeploymentGroupNotFound(String),
    /// The deployment to watch does not exist.
    #[error("{0}")]
    DeploymentNotFound(String),
    /// CodeDeploy rejected the revision (missing object, bad bundle, ...).
    #[error("{0}")]
    InvalidRevision(String),
    /// CodeDeploy rejected CreateDeployment for another reason (config, role, ASG, ...).
    #[error("{0}")]
    DeploymentCreateRejected(String),
    /// The task input is not what this action needs.
    #[error("{0}")]
    InvalidInput(String),
    /// Any other AWS error (after the SDK's own retries): `AwsTransient`
    /// (throttling, 5xx, timeout; the state machine retries it) or `AwsError`.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl Error {
    /// The stable `errorType` name.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::GroupBusy(_) => errors::GROUP_BUSY,
            Self::DeploymentGroupNotFound(_) => errors::DEPLOYMENT_GROUP_NOT_FOUND,
            Self::DeploymentNotFound(_) => errors::DEPLOYMENT_NOT_FOUND,
            Self::InvalidRevision(_) => errors::INVALID_REVISION,
            Self::DeploymentCreateRejected(_) => errors::DEPLOYMENT_CREATE_REJECTED,
            Self::InvalidInput(_) => errors::INVALID_INPUT,
            Self::Aws(e) => e.error_type(),
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

impl From<ReadError> for Error {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::NotFound { .. } => Self::DeploymentNotFound(e.to_string()),
            ReadError::Aws(aws) => Self::Aws(aws),
        }
    }
}

impl From<GroupReadError> for Error {
    fn from(e: GroupReadError) -> Self {
        match e {
            GroupReadError::NotFound { .. } => Self::DeploymentGroupNotFound(format!(
                "{e}; create it (see README, EC2 blue/green deployment group) or fix the key mapping"
            )),
            GroupReadError::Aws(aws) => Self::Aws(aws),
        }
    }
}

/// The Lambda entry point: a state-machine task, or an EventBridge
/// "CodeDeploy Deployment State-change Notification" (source `aws.codedeploy`)
/// that wakes the execution watching the deployment.
pub async fn entry(event: LambdaEvent<serde_json::Value>, deps: &Deps) -> Result<Response, Error> {
    let (payload, context) = event.into_parts();
    if payload.get("source").and_then(serde_json::Value::as_str) == Some("aws.codedeploy") {
        let change: DeploymentStateChange = serde_json::from_value(
            payload.get("detail").cloned().unwrap_or_default(),
        )
        .map_err(|e| {
            Error::InvalidInput(format!(
                "a CodeDeploy event without a deployment state-change detail ({e}); the EventBridge rule must select detail-type \"CodeDeploy Deployment State-change Notification\""
            ))
        })?;
        return wake::wake(&change, deps).await.map(Response::Wake);
    }
    let request: Request = serde_json::from_value(payload).map_err(|e| {
        Error::InvalidInput(format!(
            "not a deployment-watcher task ({e}); a task is {{\"action\": admit|create|status|hold|release|await, \"executionName\": ..., \"pipeline\": ...}} as the state machine passes it"
        ))
    })?;
    handler(LambdaEvent::new(request, context), deps).await
}

/// A state-machine task.
pub async fn handler(event: LambdaEvent<Request>, deps: &Deps) -> Result<Response, Error> {
    let request = event.payload;
    let result = match request.action {
        Action::Admit => admit(&request, deps).await.map(Response::Admission),
        Action::Create => create(&request, deps).await.map(Response::Created),
        Action::Status => status(&request, deps).await.map(Response::Status),
        Action::Hold => hold(&request, deps).await.map(Response::Hold),
        Action::Release => release(&request, deps).await.map(Response::Release),
        Action::Await => wake::await_event(&request, deps).await.map(Response::Wake),
    };
    if let Err(e) = &result {
        tracing::warn!(
            execution = %request.execution_name,
            action = ?request.action,
            error_type = e.error_type(),
            error = %e,
            "task failed"
        );
    }
    result
}

// ---------------------------------------------------------------------------
// admit
// ---------------------------------------------------------------------------

async fn admit(request: &Request, deps: &Deps) -> Result<Admission, Error> {
    let input = &request.pipeline.input;
    let active = active_deployment(
        &deps.codedeploy,
        &input.application,
        &input.deployment_group,
    )
    .await?;
    let others = running_uploads(
        deps,
        &request.execution_name,
        &input.application,
        &input.deployment_group,
    )
    .await?;
    let candidates: Vec<Candidate<'_>> = others
        .iter()
        .map(|(name, input)| Candidate {
            execution_name: name,
            input,
        })
        .collect();
    let me = Candidate {
        execution_name: &request.execution_name,
        input,
    };
    let decision = watch::admit(me, &candidates, active.is_some());
    tracing::info!(
        execution = %request.execution_name,
        application = %input.application,
        deployment_group = %input.deployment_group,
        active_deployment = ?active,
        competitors = candidates.len(),
        decision = ?decision,
        "admission"
    );
    match decision {
        AdmissionDecision::Proceed => Ok(Admission::Proceed),
        AdmissionDecision::Superseded {
            by_execution,
            by_key,
        } => {
            let subject = metrics::Subject {
                application: &input.application,
                deployment_group: &input.deployment_group,
                deployment_id: None,
            };
            greenlight_aws::emit_metrics(metrics::outcome_document(
                now_ms(),
                &subject,
                metrics::DeploymentOutcome::Superseded,
            ));
            Ok(Admission::Superseded {
                by_execution,
                by_key,
            })
        }
        AdmissionDecision::Busy => Err(Error::GroupBusy(format!(
            "deployment group {}/{} has an active deployment {}; upload {} waits its turn (the state machine retries GroupBusy)",
            input.application,
            input.deployment_group,
            active.as_deref().unwrap_or("(unknown id)"),
            input.revision.key
        ))),
    }
}

/// The other RUNNING executions of the pipeline that may carry an upload for
/// `application` / `deployment_group`, with their (parsable) input. Other
/// applications' and other groups' executions are told apart by name and
/// never read (`greenlight_core::trigger::may_belong_to_group`): admission
/// costs one DescribeExecution per competing upload of the same group, not
/// one per running execution of the state machine.
async fn running_uploads(
    deps: &Deps,
    my_name: &str,
    application: &str,
    deployment_group: &str,
) -> Result<Vec<(String, PipelineInput)>, Error> {
    let running = list_running_executions(&deps.sfn, &deps.config.state_machine_arn).await?;
    let mut uploads = Vec::new();
    for item in running.iter().filter(|item| {
        item.name != my_name
            && greenlight_core::trigger::may_belong_to_group(
                &item.name,
                application,
                deployment_group,
            )
    }) {
        let described = match describe_execution(&deps.sfn, &item.execution_arn).await {
            Ok(d) => d,
            Err(e) if is_missing_execution(&e) => continue,
            Err(e) => return Err(Error::Aws(e)),
        };
        if described.status != ExecutionStatus::Running {
            continue;
        }
        match described
            .input
            .as_deref()
            .map(serde_json::from_str::<PipelineInput>)
        {
            Some(Ok(input)) => uploads.push((item.name.clone(), input)),
            Some(Err(e)) => tracing::warn!(
                execution = %item.name,
                error = %e,
                "skipping a running execution whose input is not a PipelineInput"
            ),
            None => tracing::warn!(
                execution = %item.name,
                "skipping a running execution without input"
            ),
        }
    }
    Ok(uploads)
}

// ---------------------------------------------------------------------------
// hold / release (greenlight_core::scaling)
// ---------------------------------------------------------------------------

/// The Auto Scaling groups of this deployment: blue (recorded by `create`,
/// else by an earlier `hold`, else read from the deployment group) and the
/// green copy once the deployment exists.
async fn deployment_groups(request: &Request, deps: &Deps) -> Result<Vec<String>, Error> {
    let pipeline = &request.pipeline;
    let input = &pipeline.input;
    let mut blue: Vec<String> = pipeline
        .deployment
        .as_ref()
        .map(|d| d.blue_auto_scaling_groups.clone())
        .unwrap_or_default();
    if blue.is_empty() {
        blue = pipeline
            .scaling
            .as_ref()
            .map(|s| s.groups.iter().map(|g| g.name.clone()).collect())
            .unwrap_or_default();
    }
    if blue.is_empty() {
        blue = read_deployment_group(
            &deps.codedeploy,
            &input.application,
            &input.deployment_group,
        )
        .await?
        .auto_scaling_groups;
    }
    let green = pipeline
        .deployment
        .as_ref()
        .map(|d| green_asg_name(&input.deployment_group, &d.deployment_id));
    Ok(groups_to_hold(&blue, green.as_deref()))
}

/// Suspends the processes that would mix versions on the blue group (before
/// CreateDeployment) and on the green copy (at Ready, before the gate).
async fn hold(request: &Request, deps: &Deps) -> Result<ScalingHold, Error> {
    let names = deployment_groups(request, deps).await?;
    let hold = hold_groups(&deps.autoscaling, &names, &request.execution_name).await?;
    tracing::info!(execution = %request.execution_name, groups = ?names, hold = ?hold, "scaling held");
    Ok(hold)
}

/// Resumes what this execution suspended; reports scale events that arrived
/// while held.
async fn release(request: &Request, deps: &Deps) -> Result<ScalingRelease, Error> {
    let names = deployment_groups(request, deps).await?;
    let release = release_groups(&deps.autoscaling, &names, &request.execution_name).await?;
    tracing::info!(execution = %request.execution_name, groups = ?names, release = ?release, "scaling released");
    Ok(release)
}

// ---------------------------------------------------------------------------
// create
// ---------------------------------------------------------------------------

async fn create(request: &Request, deps: &Deps) -> Result<CreatedDeployment, Error> {
    let input = &request.pipeline.input;
    // Read just before CreateDeployment: the group's Auto Scaling groups are
    // the blue fleet this deployment replaces (AWS documents
    // deploymentInfo.targetInstances as the replacement environment, so the
    // failure path needs this record). Required: no deployment is created
    // (or reused) without it.
    let group = read_deployment_group(
        &deps.codedeploy,
        &input.application,
        &input.deployment_group,
    )
    .await?;
    let mut created = create_or_reuse(request, deps).await?;
    created.blue_auto_scaling_groups = group.auto_scaling_groups.clone();
    // What paces the phases, recorded for the status loop's predictions.
    created.deployment_config_name = Some(deps.config.deployment_config_name.clone());
    created.blue_termination_wait_seconds = group
        .termination_wait_minutes
        .and_then(|m| watch::blue_termination_wait_seconds(group.termination_action.as_deref(), m));
    Ok(created)
}

/// `CreateDeployment`, or the deployment a previous try of this execution made.
async fn create_or_reuse(request: &Request, deps: &Deps) -> Result<CreatedDeployment, Error> {
    let input = &request.pipeline.input;
    let timeout = deps.config.deployment_timeout_seconds;
    let now = now_ms();
    if let Some(existing) = existing_deployment(deps, request, now).await? {
        tracing::info!(
            execution = %request.execution_name,
            deployment_id = %existing.deployment_id,
            "create retried: reusing the deployment this execution already created"
        );
        return Ok(created_deployment(
            &existing.deployment_id,
            existing.created_at_ms.unwrap_or(now),
            timeout,
            true,
        ));
    }
    let revision = &input.revision;
    let description = deployment_description(&request.execution_name);
    let new = NewDeployment {
        application: &input.application,
        deployment_group: &input.deployment_group,
        revision,
        deployment_config_name: &deps.config.deployment_config_name,
        description: &description,
        ignore_application_stop_failures: deps.config.ignore_application_stop_failures,
    };
    let id = create_deployment(&deps.codedeploy, &new)
        .await
        .map_err(|e| create_error(e, &input.application, &input.deployment_group, revision))?;
    let id = id.as_str();
    tracing::info!(
        execution = %request.execution_name,
        deployment_id = %id,
        application = %input.application,
        deployment_group = %input.deployment_group,
        key = %revision.key,
        "deployment created"
    );
    Ok(created_deployment(id, now, timeout, false))
}

fn create_error(
    e: CreateError,
    application: &str,
    group: &str,
    revision: &greenlight_core::model::Revision,
) -> Error {
    let object = format!("s3://{}/{}", revision.bucket, revision.key);
    match e {
        CreateError::GroupBusy(aws) => Error::GroupBusy(format!(
            "CodeDeploy refused a second deployment in {application}/{group} ({aws}); this upload waits its turn (the state machine retries GroupBusy)"
        )),
        CreateError::GroupNotFound(aws) => Error::DeploymentGroupNotFound(format!(
            "CodeDeploy application {application} / deployment group {group} does not exist ({aws}); create it or fix the key mapping"
        )),
        CreateError::RevisionRejected(aws) => Error::InvalidRevision(format!(
            "CodeDeploy rejected revision {object} for {application}/{group} ({aws}); check that the object exists with that version/ETag and is a zip with appspec.yml at its root"
        )),
        CreateError::Rejected(aws) => Error::DeploymentCreateRejected(format!(
            "CodeDeploy rejected CreateDeployment of {object} to {application}/{group}: {aws}; fix the deployment group (config, role, Auto Scaling group, load balancer) and upload again"
        )),
        CreateError::Aws(aws) => Error::Aws(aws),
    }
}

/// A deployment of the group created in the last day by this execution.
async fn existing_deployment(
    deps: &Deps,
    request: &Request,
    now: EpochMillis,
) -> Result<Option<watch::RecentDeployment>, Error> {
    let input = &request.pipeline.input;
    let recent = recent_deployments(
        &deps.codedeploy,
        &input.application,
        &input.deployment_group,
        now - REUSE_LOOKBACK_MS,
        now + 60_000,
    )
    .await?;
    Ok(own_deployment(&request.execution_name, &recent).cloned())
}

// ---------------------------------------------------------------------------
// status
// ---------------------------------------------------------------------------

fn validated(pipeline: &PipelineState, deployment_id: &str) -> bool {
    pipeline
        .validation
        .as_ref()
        .is_some_and(|v| v.passed && v.deployment_id == deployment_id)
}

async fn status(request: &Request, deps: &Deps) -> Result<StatusReport, Error> {
    let created = request.pipeline.deployment.as_ref().ok_or_else(|| {
        Error::InvalidInput(format!(
            "status for execution {} needs $.deployment (the create step's CreatedDeployment); the state machine must run create before status",
            request.execution_name
        ))
    })?;
    let id = &created.deployment_id;
    let ctx = LookContext {
        deadline_ms: created.deadline_ms,
        post_reroute_deadline_ms: watch::deadline_ms(
            created.deadline_ms,
            deps.config.post_reroute_timeout_seconds,
        ),
        created_at_ms: created.created_at_ms,
        validated: validated(&request.pipeline, id),
        predictions: Predictions::for_pipeline(
            request.pipeline.tuning.as_ref(),
            request.pipeline.deployment.as_ref(),
        ),
        bounds: deps.config.bounds(),
        now: now_ms(),
    };
    let view = read_deployment(&deps.codedeploy, id).await?;
    let assessment = watch::assess(&view, &ctx);
    let mut report = assessment.report;
    if report.error.as_ref().map(|e| e.code.as_str()) == Some(watch::POST_REROUTE_OVERDUE) {
        tracing::error!(
            execution = %request.execution_name,
            deployment_id = %id,
            status = ?report.status,
            phase = ?report.phase,
            "deployment past its point of no return is overdue; greenlight keeps watching and never stops it"
        );
    }
    if assessment.action == WatchAction::StopWithRollback {
        match stop_with_rollback(&deps.codedeploy, id).await {
            Ok(StopOutcome::Stopping { status, .. }) => tracing::warn!(
                execution = %request.execution_name,
                deployment_id = %id,
                stop_status = %status,
                "deadline passed: stopped the deployment with rollback"
            ),
            Ok(StopOutcome::AlreadyCompleted) => {
                // It finished between our read and the stop: report how it ended.
                let view = read_deployment(&deps.codedeploy, id).await?;
                if view.status.is_terminal() {
                    report = watch::assess(&view, &ctx).report;
                }
            }
            Err(aws) => {
                tracing::error!(
                    execution = %request.execution_name,
                    deployment_id = %id,
                    error = %aws,
                    "deployment passed its deadline but StopDeployment failed; the next try stops it (or stop it by hand: aws deploy stop-deployment --deployment-id <id> --auto-rollback-enabled)"
                );
                return Err(Error::Aws(aws));
            }
        }
    }
    tracing::info!(
        execution = %request.execution_name,
        deployment_id = %id,
        status = ?report.status,
        phase = ?report.phase,
        next = ?report.next,
        wait_seconds = report.wait_seconds,
        deadline_exceeded = report.deadline_exceeded,
        "status"
    );
    emit_status_metrics(&request.pipeline.input, &report);
    Ok(report)
}

/// A deployment that ended: its phases' actual and predicted seconds, and
/// `deployed` when it succeeded (a failure's outcome is the failure
/// handler's to count: it runs for every failed upload).
fn emit_status_metrics(input: &PipelineInput, report: &StatusReport) {
    if !report.status.is_terminal() {
        return;
    }
    let subject = metrics::Subject {
        application: &input.application,
        deployment_group: &input.deployment_group,
        deployment_id: Some(&report.deployment_id),
    };
    let now = now_ms();
    let mut documents = metrics::phase_documents(now, &subject, &report.ledger);
    if report.next == NextStep::Succeeded {
        documents.extend(metrics::outcome_document(
            now,
            &subject,
            metrics::DeploymentOutcome::Deployed,
        ));
    }
    greenlight_aws::emit_metrics(documents);
}
