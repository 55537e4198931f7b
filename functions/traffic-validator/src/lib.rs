//! traffic-validator: the green gate before traffic moves.
//!
//! Two entry points, one binary:
//!
//! 1. **State-machine task** (EC2 blue/green, the main one): `{"action":
//!    "validate", "executionName": ..., "pipeline": <state>}`. The deployment
//!    waits in `Ready` (deployment group `deploymentReadyOption.actionOnTimeout
//!    = STOP_DEPLOYMENT`). The validator reads the deployment's own targets,
//!    takes its GREEN instances, resolves their private addresses with EC2
//!    DescribeInstances, probes each over HTTP as `greenlight_core::probe`
//!    decides, then calls `ContinueDeployment(READY_WAIT)` when all pass or
//!    `StopDeployment(autoRollbackEnabled = true)` when any fails, and answers
//!    a [`ValidationReport`] with per-instance evidence.
//! 2. **CodeDeploy lifecycle hook**: `{"DeploymentId": ...,
//!    "LifecycleEventHookExecutionId": ...}`. What is probed follows the
//!    deployment's `computePlatform` (`greenlight_core::hook`): `Server` →
//!    the green EC2 instances as above; `ECS` → the targets registered in
//!    the green task set's target group (ELBv2 DescribeTargetGroups +
//!    DescribeTargetHealth); `Lambda` (nothing to probe) or anything else →
//!    `Failed` with the reason. Same checks, then always
//!    `PutLifecycleEventHookExecutionStatus` (`Failed` on any internal error,
//!    so a deployment never hangs on the hook).
//!
//! 3. **Bake** (`{"action": "bake", ...}`, module [`bake`]): during the blue
//!    termination wait, one look at the green fleet (alarms, target-group
//!    metrics, the same probes) per call; pass →
//!    `ContinueDeployment(TERMINATION_WAIT)`, fail → fast rollback with
//!    `StopDeployment(autoRollbackEnabled)`.
//!
//! Addresses come only from AWS for the deployment's own green targets (EC2
//! private IPs, or the ids of the targets registered in the green target
//! group), never from the event.

pub mod bake;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::codedeploy::CodeDeployLifecycleEvent;
use greenlight_aws::config::{optional, parsed_or, ConfigError};
use greenlight_aws::deployment::{
    read_deployment, read_hook_deployment, read_hook_view, read_task_sets, ReadError,
};
use greenlight_aws::deployment_control::{
    continue_deployment, put_hook_status, stop_with_rollback, StopOutcome,
};
use greenlight_aws::instances::private_ips;
use greenlight_aws::load_balancer::{
    registered_targets, target_group_arns, target_group_by_name, target_group_port, LbError,
};
use greenlight_aws::{now_ms, AwsError};
use greenlight_core::approval::{after_approval, AfterApproval};
use greenlight_core::bake::{BakeReport, GroupBake};
use greenlight_core::hook::{self, HookPlan, NotProbed, TargetHost};
use greenlight_core::model::{
    DeploymentStatus, DeploymentView, FleetLabel, InstanceEvidence, TaskRequest, ValidationAction,
    ValidationReport,
};
use greenlight_core::options::{gate_action, GateAction};
use greenlight_core::probe::{
    self, deadline_within_invocation, decide, socket_address, validate_entry, Decision,
    GateFailure, GreenFleet, HttpOutcome, InstanceTracker, ProbeAnswer, ProbeConfig, ValidateEntry,
    MAX_BODY_BYTES,
};
use greenlight_core::{errors, metrics};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};

/// Settings, from the environment (see README).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub probe: ProbeConfig,
    /// `BAKE_CONFIG`: the groups that bake after the reroute (empty = none).
    pub bake: Vec<GroupBake>,
}

impl Config {
    /// `PROBE_PATH=/health`, `VERSION_PATH=/version` (set but empty = no
    /// version check), `PROBE_PORT` (unset = the target group's port),
    /// `EXPECTED_STATUS=200`, `REQUIRED_SUCCESSES=3`, `PROBE_TIMEOUT_MS=2000`,
    /// `PROBE_INTERVAL_MS=1000`, `VALIDATION_DEADLINE_SECONDS=120`.
    pub fn from_env() -> Result<Self, ConfigError> {
        let version_path = match std::env::var("VERSION_PATH") {
            Err(_) => Some("/version".to_string()),
            Ok(v) if v.trim().is_empty() => None,
            Ok(v) => Some(v.trim().to_string()),
        };
        let deadline_seconds: u64 = parsed_or("VALIDATION_DEADLINE_SECONDS", 120)?;
        let probe = ProbeConfig {
            path: optional("PROBE_PATH")
                .map(|p| p.trim().to_string())
                .unwrap_or_else(|| "/health".to_string()),
            version_path,
            port: match optional("PROBE_PORT") {
                None => None,
                Some(_) => Some(parsed_or("PROBE_PORT", 0u16)?),
            },
            expected_status: parsed_or("EXPECTED_STATUS", 200)?,
            required_successes: parsed_or("REQUIRED_SUCCESSES", 3)?,
            probe_timeout_ms: parsed_or("PROBE_TIMEOUT_MS", 2_000)?,
            interval_ms: parsed_or("PROBE_INTERVAL_MS", 1_000)?,
            deadline_ms: deadline_seconds.saturating_mul(1_000),
        };
        let bake =
            greenlight_core::bake::parse_bake_config(&optional("BAKE_CONFIG").unwrap_or_default())
                .map_err(|e| ConfigError::Invalid {
                    name: "BAKE_CONFIG",
                    value: String::new(),
                    problem: e.to_string(),
                })?;
        Self::new(probe).map(|c| c.with_bake(bake))
    }

    /// The same config with `groups` baking.
    pub fn with_bake(mut self, groups: Vec<GroupBake>) -> Self {
        self.bake = groups;
        self
    }

    /// A config from explicit settings, checked like [`Config::from_env`].
    pub fn new(probe: ProbeConfig) -> Result<Self, ConfigError> {
        probe.validate().map_err(|e| {
            let (name, value) = match e.field {
                "path" => ("PROBE_PATH", probe.path.clone()),
                "version_path" => (
                    "VERSION_PATH",
                    probe.version_path.clone().unwrap_or_default(),
                ),
                "port" => (
                    "PROBE_PORT",
                    probe.port.map(|p| p.to_string()).unwrap_or_default(),
                ),
                "expected_status" => ("EXPECTED_STATUS", probe.expected_status.to_string()),
                "required_successes" => {
                    ("REQUIRED_SUCCESSES", probe.required_successes.to_string())
                }
                _ => ("PROBE_TIMEOUT_MS", probe.probe_timeout_ms.to_string()),
            };
            ConfigError::Invalid {
                name,
                value,
                problem: e.problem,
            }
        })?;
        Ok(Self {
            probe,
            bake: Vec::new(),
        })
    }
}

/// Clients (created once, at start-up) and settings.
pub struct Deps {
    pub codedeploy: aws_sdk_codedeploy::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    /// Plain-HTTP client for the probes: no proxy, no redirects followed
    /// (a 3xx is an answer, as for the ALB health check).
    pub http: reqwest::Client,
    /// CloudWatch, for the bake (none: `bake` answers `InvalidInput` for a
    /// group that bakes).
    pub cloudwatch: Option<aws_sdk_cloudwatch::Client>,
    pub config: Config,
}

impl Deps {
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        Self::from_clients(
            aws_sdk_codedeploy::Client::new(sdk),
            aws_sdk_ec2::Client::new(sdk),
            aws_sdk_elasticloadbalancingv2::Client::new(sdk),
            config,
        )
        .with_cloudwatch(aws_sdk_cloudwatch::Client::new(sdk))
    }

    /// The same deps with a CloudWatch client (the bake's reads).
    pub fn with_cloudwatch(mut self, client: aws_sdk_cloudwatch::Client) -> Self {
        self.cloudwatch = Some(client);
        self
    }

    /// Deps from ready-made clients (tests, the local cloud).
    pub fn from_clients(
        codedeploy: aws_sdk_codedeploy::Client,
        ec2: aws_sdk_ec2::Client,
        elbv2: aws_sdk_elasticloadbalancingv2::Client,
        config: Config,
    ) -> Self {
        let timeout = Duration::from_millis(config.probe.probe_timeout_ms.max(1));
        // Start-up: a plain HTTP client without TLS always builds.
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .timeout(timeout)
            .pool_max_idle_per_host(0)
            .user_agent("greenlight-traffic-validator")
            .build()
            .expect("building the probe HTTP client");
        Self {
            codedeploy,
            ec2,
            elbv2,
            http,
            cloudwatch: None,
            config,
        }
    }
}

/// The state-machine task's action. Only `validate` exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Validate,
    /// One look of the bake during the termination wait ([`bake`]).
    Bake,
    /// After a human approved at `AwaitApproval`: ContinueDeployment(READY_WAIT).
    Continue,
    /// Any other action name: answered with `InvalidInput`.
    #[serde(other)]
    Unsupported,
}

/// Either entry point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Request {
    /// State-machine task (EC2 mode).
    Task(Box<TaskRequest<Action>>),
    /// CodeDeploy lifecycle hook invocation (EC2 / ECS; Lambda is answered Failed).
    Hook(CodeDeployLifecycleEvent),
}

/// What the hook mode reported to CodeDeploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HookStatus {
    Succeeded,
    Failed,
}

/// Hook mode answer (CodeDeploy ignores it; it is for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookReport {
    pub deployment_id: String,
    pub lifecycle_event_hook_execution_id: String,
    /// The status sent with PutLifecycleEventHookExecutionStatus.
    pub hook_status: HookStatus,
    pub passed: bool,
    pub summary: String,
    pub instances: Vec<InstanceEvidence>,
    /// The error type when an internal error made the hook fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
}

/// Either entry point's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Response {
    /// EC2 mode: stored by the state machine at `$.validation`.
    Validation(ValidationReport),
    Hook(HookReport),
    /// `bake`: stored by the state machine at `$.bake`.
    Bake(BakeReport),
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request cannot be acted on (unknown action, no deployment id).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("{0}")]
    DeploymentNotFound(String),
    /// The deployment is not waiting in Ready, so it can be neither continued nor gated.
    #[error("deployment {deployment_id} is {status:?}, not Ready: the traffic validator gates a deployment waiting in Ready (deployment group deploymentReadyOption.actionOnTimeout = STOP_DEPLOYMENT); check the deployment group's blue/green settings and the deployment's history")]
    DeploymentNotReady {
        deployment_id: String,
        status: DeploymentStatus,
    },
    /// The approval's answer did not say `"approved": true`.
    #[error("not approved: {0}")]
    NotApproved(String),
    /// Neither PROBE_PORT nor a target group port is known.
    #[error("no port to probe for deployment group {application}/{group}: {detail}; set PROBE_PORT or attach the ALB target group to the deployment group")]
    NoProbePort {
        application: String,
        group: String,
        detail: String,
    },
    /// An AWS call failed: the call, the resource, AWS's code and whether it
    /// is transient (`AwsTransient`) or not (`AwsError`).
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A load-balancer lookup failed (target group gone, no such group, ...).
    #[error(transparent)]
    LoadBalancer(LbError),
    /// The deployment group could not be read (the bake's group alarms).
    #[error(transparent)]
    Group(greenlight_aws::deployment_group::GroupReadError),
}

impl Error {
    /// Stable name for Lambda's `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => errors::INVALID_INPUT,
            Self::DeploymentNotFound(_) => errors::DEPLOYMENT_NOT_FOUND,
            Self::DeploymentNotReady { .. } => errors::DEPLOYMENT_NOT_READY,
            Self::NotApproved(_) => errors::APPROVAL_REJECTED,
            Self::NoProbePort { .. } => errors::NO_PROBE_PORT,
            Self::Aws(e) => e.error_type(),
            Self::LoadBalancer(e) => e.error_type(),
            Self::Group(e) => e.error_type(),
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

/// `continue`: a human approved at `AwaitApproval`; the decision is
/// [`after_approval`] (only an explicit `"approved": true` continues).
/// Retried safely: a retry (`retryCount` > 0) that finds the deployment past
/// Ready knows an earlier attempt's ContinueDeployment took effect.
async fn continue_after_approval(
    task: TaskRequest<Action>,
    deps: &Deps,
) -> Result<ValidationReport, Error> {
    let gate = task.pipeline.validation.clone().ok_or_else(|| {
        Error::InvalidInput(
            "pipeline.validation is missing: ContinueAfterApproval runs after Validate passed"
                .to_string(),
        )
    })?;
    let deployment_id = gate.deployment_id.clone();
    let view = read_deployment(&deps.codedeploy, &deployment_id).await?;
    let decision = after_approval(
        task.pipeline.approval_answer.as_ref(),
        view.status,
        task.retry_count,
    );
    let (by, action) = match decision {
        AfterApproval::NotApproved { reason } => {
            return Err(Error::NotApproved(reason));
        }
        AfterApproval::NotReady { by } => {
            tracing::warn!(deployment_id, approved_by = %by, status = ?view.status, "approved, but the deployment no longer waits in Ready");
            return Err(Error::DeploymentNotReady {
                deployment_id,
                status: view.status,
            });
        }
        AfterApproval::ContinuedEarlier { by } => (by, ValidationAction::ContinuedEarlier),
        AfterApproval::Continue { by } => {
            continue_deployment(&deps.codedeploy, &deployment_id).await?;
            (by, ValidationAction::Continued)
        }
    };
    tracing::info!(deployment_id, approved_by = %by, "approved; deployment continued");
    Ok(ValidationReport {
        summary: format!("approved by {by}; {}", gate.summary),
        action,
        ..gate
    })
}

/// The one entry point for both modes.
pub async fn handler(event: LambdaEvent<Request>, deps: &Deps) -> Result<Response, Error> {
    let (payload, context) = event.into_parts();
    match payload {
        Request::Task(task) if task.action == Action::Bake => {
            bake::bake_task(*task, &context, deps)
                .await
                .map(Response::Bake)
        }
        Request::Task(task) if task.action == Action::Continue => {
            continue_after_approval(*task, deps)
                .await
                .map(Response::Validation)
        }
        Request::Task(task) => validate_task(*task, &context, deps)
            .await
            .map(Response::Validation),
        Request::Hook(hook) => answer_hook(hook, &context, deps).await.map(Response::Hook),
    }
}

/// The outcome of probing a deployment's green fleet.
struct GateRun {
    passed: bool,
    summary: String,
    instances: Vec<InstanceEvidence>,
}

impl GateRun {
    fn passed(&self) -> bool {
        self.passed
    }

    /// Hook mode found nothing it may probe: a failed verdict with the reason.
    fn refused(deployment_id: &str, reason: &NotProbed) -> Self {
        let summary = reason.summary(deployment_id);
        tracing::warn!(deployment_id, ?reason, summary = %summary, "nothing to probe; the hook fails");
        Self {
            passed: false,
            summary,
            instances: Vec::new(),
        }
    }
}

async fn validate_task(
    task: TaskRequest<Action>,
    context: &Context,
    deps: &Deps,
) -> Result<ValidationReport, Error> {
    if task.action != Action::Validate {
        return Err(Error::InvalidInput(
            "unsupported action; traffic-validator knows \"validate\", \"continue\" and \"bake\""
                .to_string(),
        ));
    }
    let deployment_id = task
        .pipeline
        .deployment
        .as_ref()
        .map(|d| d.deployment_id.trim().to_string())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            Error::InvalidInput(
                "pipeline.deployment.deploymentId is missing: the Validate state runs only after Create stored $.deployment".to_string(),
            )
        })?;
    let view = read_deployment(&deps.codedeploy, &deployment_id).await?;
    match validate_entry(view.status, task.retry_count) {
        ValidateEntry::Gate => {}
        ValidateEntry::ContinuedEarlier => {
            tracing::info!(deployment_id, status = ?view.status, retry = task.retry_count, "an earlier attempt's ContinueDeployment took effect; not gating again");
            return Ok(ValidationReport {
                summary: format!(
                    "deployment {deployment_id} was continued by an earlier attempt of this validation (its answer was lost to a transient AWS error); the deployment is now {:?}",
                    view.status
                ),
                deployment_id,
                passed: true,
                instances: Vec::new(),
                action: ValidationAction::ContinuedEarlier,
            });
        }
        ValidateEntry::NotReady => {
            return Err(Error::DeploymentNotReady {
                deployment_id,
                status: view.status,
            });
        }
    }
    let label = task.pipeline.input.revision.label.clone();
    let run = gate(deps, &view, Some(&label), context).await?;
    let action = match gate_action(run.passed(), task.pipeline.input.approval.as_ref()) {
        GateAction::Continue => {
            continue_deployment(&deps.codedeploy, &deployment_id).await?;
            tracing::info!(deployment_id, summary = %run.summary, "green fleet passed; deployment continued");
            ValidationAction::Continued
        }
        GateAction::AwaitApproval => {
            // The deployment stays in Ready: the state machine asks a human
            // (AwaitApproval) and continues only on an approval.
            tracing::info!(deployment_id, summary = %run.summary, "green fleet passed; waiting for a human approval");
            ValidationAction::AwaitingApproval
        }
        GateAction::Stop => {
            if stop_with_rollback(&deps.codedeploy, &deployment_id).await?
                == StopOutcome::AlreadyCompleted
            {
                // Not stopped by greenlight: it ended first (how, the failure
                // path reads). A permanent error, as CodeDeploy answered it.
                return Err(Error::Aws(AwsError {
                    operation: "StopDeployment",
                    resource: deployment_id,
                    code: Some("DeploymentAlreadyCompletedException".to_string()),
                    message: format!(
                        "the deployment completed before the failed validation could stop it ({})",
                        run.summary
                    ),
                    transient: false,
                }));
            }
            tracing::warn!(deployment_id, summary = %run.summary, "green fleet failed; deployment stopped with rollback");
            ValidationAction::Stopped
        }
    };
    let input = &task.pipeline.input;
    greenlight_aws::emit_metrics(metrics::gate_document(
        now_ms(),
        &metrics::Subject {
            application: &input.application,
            deployment_group: &input.deployment_group,
            deployment_id: Some(&deployment_id),
        },
        metrics::Gate::Validation,
        run.passed(),
    ));
    Ok(ValidationReport {
        deployment_id,
        passed: run.passed(),
        summary: run.summary,
        instances: run.instances,
        action,
    })
}

async fn answer_hook(
    hook: CodeDeployLifecycleEvent,
    context: &Context,
    deps: &Deps,
) -> Result<HookReport, Error> {
    let deployment_id = hook.deployment_id.trim().to_string();
    let hook_id = hook.lifecycle_event_hook_execution_id.trim().to_string();
    if deployment_id.is_empty() || hook_id.is_empty() {
        return Err(Error::InvalidInput(
            "a CodeDeploy hook invocation needs DeploymentId and LifecycleEventHookExecutionId"
                .to_string(),
        ));
    }
    let checked = hook_checks(deps, &deployment_id, context).await;
    let (hook_status, passed, summary, instances, error_type) = match checked {
        Ok(run) if run.passed() => (
            HookStatus::Succeeded,
            true,
            run.summary,
            run.instances,
            None,
        ),
        Ok(run) => (HookStatus::Failed, false, run.summary, run.instances, None),
        Err(e) => {
            tracing::error!(deployment_id, error_type = e.error_type(), error = %e, "hook checks could not run; reporting Failed");
            let summary = format!(
                "Deployment {deployment_id} could not be validated ({}: {e}); the lifecycle hook was reported Failed.",
                e.error_type()
            );
            (
                HookStatus::Failed,
                false,
                summary,
                Vec::new(),
                Some(e.error_type().to_string()),
            )
        }
    };
    put_hook_status(
        &deps.codedeploy,
        &deployment_id,
        &hook_id,
        hook_status == HookStatus::Succeeded,
    )
    .await?;
    tracing::info!(deployment_id, ?hook_status, summary = %summary, "lifecycle hook answered");
    Ok(HookReport {
        deployment_id,
        lifecycle_event_hook_execution_id: hook_id,
        hook_status,
        passed,
        summary,
        instances,
        error_type,
    })
}

/// Hook mode: what to probe depends on the deployment's compute platform
/// (`greenlight_core::hook`): EC2 instances as in EC2 mode, the targets of
/// an ECS deployment's green task set, or nothing (Lambda, unknown: Failed).
async fn hook_checks(
    deps: &Deps,
    deployment_id: &str,
    context: &Context,
) -> Result<GateRun, Error> {
    let deployment = read_hook_deployment(&deps.codedeploy, deployment_id).await?;
    let plan = hook::hook_plan(deployment.compute_platform.as_deref());
    // Hook mode has no pipeline state: the label comes from the S3 revision.
    let label = hook::revision_label(&plan, deployment.s3_key.as_deref());
    tracing::info!(deployment_id, ?plan, ?label, "hook mode");
    match plan {
        HookPlan::ProbeInstances => {
            let view = read_hook_view(&deps.codedeploy, &deployment).await?;
            gate(deps, &view, label.as_deref(), context).await
        }
        HookPlan::ProbeGreenTaskSet => {
            ecs_gate(deps, deployment_id, label.as_deref(), context).await
        }
        HookPlan::Refuse(reason) => Ok(GateRun::refused(deployment_id, &reason)),
    }
}

/// ECS hook mode: the deployment's green task set → its target group
/// (DescribeTargetGroups by name) → the targets registered in it
/// (DescribeTargetHealth) → probed as `greenlight_core::hook::plan_targets`
/// says (`ip` targets at their id, `instance` targets at the instance's
/// private IP from EC2).
async fn ecs_gate(
    deps: &Deps,
    deployment_id: &str,
    label: Option<&str>,
    context: &Context,
) -> Result<GateRun, Error> {
    let started_at = now_ms();
    let task_sets = read_task_sets(&deps.codedeploy, deployment_id).await?;
    let green = match hook::green_task_set(&task_sets) {
        Ok(green) => green,
        Err(reason) => return Ok(GateRun::refused(deployment_id, &reason)),
    };
    let group = target_group_by_name(&deps.elbv2, &green.target_group)
        .await
        .map_err(lb_error)?;
    let registered = registered_targets(&deps.elbv2, &group.arn)
        .await
        .map_err(lb_error)?;
    let planned = match hook::plan_targets(&group, &registered, deps.config.probe.port) {
        Ok(planned) => planned,
        Err(reason) => return Ok(GateRun::refused(deployment_id, &reason)),
    };
    let mut instance_ids: Vec<String> = Vec::new();
    for p in &planned {
        if let TargetHost::Instance(id) = &p.host {
            if !instance_ids.contains(id) {
                instance_ids.push(id.clone());
            }
        }
    }
    let ips = if instance_ids.is_empty() {
        HashMap::new()
    } else {
        private_ips(&deps.ec2, &instance_ids).await?
    };
    let trackers = planned
        .iter()
        .map(|p| {
            let address = match &p.host {
                TargetHost::Ip(ip) => Some(socket_address(ip, p.port)),
                TargetHost::Instance(id) => ips.get(id).map(|ip| socket_address(ip, p.port)),
            };
            InstanceTracker::new(p.name.clone(), address)
        })
        .collect();
    let fleet = GreenFleet::TaskSetTargets {
        task_set: &green.task_set,
        target_group: &green.target_group,
    };
    run_probes(
        deps,
        deployment_id,
        trackers,
        label,
        fleet,
        started_at,
        context,
    )
    .await
}

/// Probes the deployment's green instance targets until the core decides.
/// `label` = `None`: no version check (the revision has no S3 key).
async fn gate(
    deps: &Deps,
    view: &DeploymentView,
    label: Option<&str>,
    context: &Context,
) -> Result<GateRun, Error> {
    let started_at = now_ms();
    let green = green_instances(view);
    let mut trackers = Vec::with_capacity(green.len());
    if !green.is_empty() {
        let port = probe_port(deps, view).await?;
        let ips = private_ips(&deps.ec2, &green).await?;
        for id in &green {
            let address = ips.get(id).map(|ip| socket_address(ip, port));
            trackers.push(InstanceTracker::new(id.clone(), address));
        }
    }
    run_probes(
        deps,
        &view.deployment_id,
        trackers,
        label,
        GreenFleet::Instances,
        started_at,
        context,
    )
    .await
}

/// Probes `trackers` (the green fleet, addresses resolved) until the core
/// decides. The deadline counts from `started_at`, shortened to fit the
/// invocation.
async fn run_probes(
    deps: &Deps,
    deployment_id: &str,
    mut trackers: Vec<InstanceTracker>,
    label: Option<&str>,
    fleet: GreenFleet<'_>,
    started_at: i64,
    context: &Context,
) -> Result<GateRun, Error> {
    let mut config = deps.config.probe.clone();
    if label.is_none() {
        config.version_path = None;
    }
    let invocation_deadline = i64::try_from(context.deadline).ok().filter(|d| *d > 0);
    config.deadline_ms =
        deadline_within_invocation(config.deadline_ms, started_at, invocation_deadline);
    let label = label.unwrap_or_default().to_string();
    tracing::info!(
        deployment_id,
        green = ?trackers.iter().map(|t| (&t.instance_id, &t.address)).collect::<Vec<_>>(),
        "probing the green fleet"
    );

    let config = Arc::new(config);
    let decision = loop {
        let now = now_ms();
        match decide(&config, started_at, &trackers, now) {
            Decision::ProbeAgain { at, instances } => {
                if at > now {
                    tokio::time::sleep(Duration::from_millis((at - now) as u64)).await;
                }
                let issued_at = now_ms();
                let answers = probe_all(deps, &config, &trackers, &instances).await;
                for (index, answer) in answers {
                    if let Some(t) = trackers.get_mut(index) {
                        t.record(&config, &label, issued_at, &answer);
                    }
                }
            }
            done => break done,
        }
    };
    if let Decision::Failed(GateFailure::Instance { instance_id, .. }) = &decision {
        tracing::warn!(deployment_id, instance_id, "green target failed validation");
    }
    let summary = probe::summary_of(fleet, deployment_id, &config, &label, &trackers, &decision);
    Ok(GateRun {
        passed: matches!(decision, Decision::Passed),
        summary,
        instances: trackers.iter().map(|t| t.evidence(&config)).collect(),
    })
}

/// The deployment's GREEN instance targets, in order, without duplicates.
fn green_instances(view: &DeploymentView) -> Vec<String> {
    let mut seen = HashSet::new();
    view.targets
        .iter()
        .filter(|t| t.label == Some(FleetLabel::Green))
        .map(|t| t.instance_id.trim().to_string())
        .filter(|id| !id.is_empty() && seen.insert(id.clone()))
        .collect()
}

/// `PROBE_PORT`, else the port of the deployment group's first target group that has one.
async fn probe_port(deps: &Deps, view: &DeploymentView) -> Result<u16, Error> {
    if let Some(port) = deps.config.probe.port {
        return Ok(port);
    }
    let (application, group) = (&view.application, &view.deployment_group);
    let no_port = |detail: String| Error::NoProbePort {
        application: application.clone(),
        group: group.clone(),
        detail,
    };
    let arns = target_group_arns(&deps.codedeploy, &deps.elbv2, application, group)
        .await
        .map_err(|e| match e {
            LbError::NoLoadBalancer { .. } => no_port(e.to_string()),
            other => lb_error(other),
        })?;
    for arn in &arns {
        if let Some(port) = target_group_port(&deps.elbv2, arn)
            .await
            .map_err(lb_error)?
        {
            return Ok(port);
        }
    }
    Err(no_port(format!(
        "its target groups ({}) have no port",
        arns.join(", ")
    )))
}

fn lb_error(e: LbError) -> Error {
    match e {
        LbError::Aws(aws) => Error::Aws(aws),
        other => Error::LoadBalancer(other),
    }
}

/// Probes the listed instances concurrently; answers by tracker index.
async fn probe_all(
    deps: &Deps,
    config: &Arc<ProbeConfig>,
    trackers: &[InstanceTracker],
    due: &[String],
) -> Vec<(usize, ProbeAnswer)> {
    let mut set = tokio::task::JoinSet::new();
    let mut tasks = HashMap::new();
    for (index, t) in trackers.iter().enumerate() {
        if !due.contains(&t.instance_id) {
            continue;
        }
        let Some(address) = t.address.clone() else {
            continue;
        };
        let (http, config) = (deps.http.clone(), Arc::clone(config));
        let handle = set.spawn(async move { probe_instance(&http, &config, &address).await });
        tasks.insert(handle.id(), index);
    }
    let mut answers = Vec::with_capacity(tasks.len());
    while let Some(joined) = set.join_next_with_id().await {
        match joined {
            Ok((id, answer)) => {
                if let Some(index) = tasks.get(&id) {
                    answers.push((*index, answer));
                }
            }
            Err(e) => {
                if let Some(index) = tasks.get(&e.id()) {
                    answers.push((
                        *index,
                        ProbeAnswer::no_answer(format!("probe task failed: {e}")),
                    ));
                }
            }
        }
    }
    answers
}

/// One probe: `GET <path>`, then `GET <version path>` when the core asks
/// for it, both within the per-probe timeout.
async fn probe_instance(
    http: &reqwest::Client,
    config: &ProbeConfig,
    address: &str,
) -> ProbeAnswer {
    let timeout_ms = config.probe_timeout_ms.max(1);
    let probe = async {
        let health = get(http, &probe::probe_url(address, &config.path), timeout_ms).await;
        let version = match probe::version_request(config, &health) {
            Some(path) => Some(get(http, &probe::probe_url(address, path), timeout_ms).await),
            None => None,
        };
        ProbeAnswer { health, version }
    };
    // The whole probe and each request share one timeout, so either can fire
    // first; both must read as the same timeout to the operator.
    match tokio::time::timeout(Duration::from_millis(timeout_ms), probe).await {
        Ok(answer) => answer,
        Err(_) => ProbeAnswer::no_answer(format!(
            "timed out after {timeout_ms} ms (no complete answer)"
        )),
    }
}

async fn get(http: &reqwest::Client, url: &str, timeout_ms: u64) -> HttpOutcome {
    let mut response = match http.get(url).send().await {
        Ok(r) => r,
        Err(e) => {
            return HttpOutcome::NoAnswer {
                error: request_error(&e, timeout_ms),
            }
        }
    };
    let status = response.status().as_u16();
    let mut body: Vec<u8> = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_BODY_BYTES.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= MAX_BODY_BYTES {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                return HttpOutcome::NoAnswer {
                    error: format!(
                        "answered {status} but the body broke off: {}",
                        request_error(&e, timeout_ms)
                    ),
                }
            }
        }
    }
    HttpOutcome::Answered {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// What went wrong with a request, most specific cause last, without the
/// URL (the evidence names the address already).
fn request_error(e: &reqwest::Error, timeout_ms: u64) -> String {
    if e.is_timeout() {
        return format!("timed out after {timeout_ms} ms");
    }
    let mut causes: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !causes.iter().any(|c| c.contains(&text)) {
            causes.push(text);
        }
        source = s.source();
    }
    let kind = if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "broken answer"
    } else {
        "request failed"
    };
    match causes.last() {
        Some(cause) => format!("{kind}: {cause}"),
        None => format!("{kind}: {e}"),
    }
}

#[cfg(test)]
mod tests;
