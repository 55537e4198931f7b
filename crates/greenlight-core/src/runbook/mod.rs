//! Failure handling: every decision the failure-handler makes, as pure functions.
//!
//! The failure-handler is reached two ways: the state machine's failure path
//! (a [`PipelineState`] that ended badly) and EventBridge's "CodeDeploy
//! Deployment State-change Notification" with state `FAILURE` or `STOP`
//! (deployments started outside the pipeline too). For both it
//!
//! 1. classifies the failure ([`classify_pipeline`], [`classify_event`]);
//! 2. diagnoses the deployment ([`diagnose`]): which instances and which
//!    lifecycle event failed, error code and message, script and log tail,
//!    rollback deployment;
//! 3. decides the runbook of seed 001 ([`plan_runbook`]): a failure before
//!    traffic moved removes the green ASG CodeDeploy created and points the
//!    group at the blue ASG; a failure after traffic moved is explained with
//!    the next step (point the group at the green ASG and redeploy);
//! 4. decides where the load-balancer settings come back from
//!    ([`pipeline_restore_source`], [`event_restore_source`]);
//! 5. dedupes deliveries through a report marker ([`marker_decision`]);
//! 6. writes the report ([`compose_report`]) and the one SNS notification
//!    ([`notification`]).
//!
//! "Traffic moved" means the blue fleet began leaving the load balancer
//! (`BeforeBlockTraffic` or a later event started on a blue instance, or
//! CodeDeploy started the wait before terminating blue). Until then blue is
//! still registered and serving, so removing green is safe: a failure at
//! `DownloadBundle`..`ValidateService`, at the Ready gate, at
//! `BeforeAllowTraffic`/`AllowTraffic` or at `AfterAllowTraffic` removes green.

use serde::{Deserialize, Serialize};

use crate::bake::BakeVerdict;
use crate::model::{
    DeploymentErrorInfo, DeploymentStatus, DeploymentView, EpochMillis, FleetLabel,
    InstanceEvidence, LifecycleStatus, NextStep, PipelineState, Revision, Source,
    TargetGroupSnapshot,
};
use crate::watch::execution_of_description;

/// The short error name of a failure: the state machine's `Fail` state uses
/// it as `Error` (`ErrorPath: $.report.error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailureKind {
    /// The traffic validator found the green fleet unhealthy and stopped the deployment.
    ValidationFailed,
    /// The bake after the reroute saw the green fleet misbehave (an alarm,
    /// a target-group metric over its threshold, a failed probe) and
    /// stopped the deployment with rollback while blue still existed.
    BakeFailed,
    /// CodeDeploy ended the deployment `Failed` or `Stopped`.
    DeploymentFailed,
    /// The deployment ran past the pipeline's deadline and was stopped.
    DeadlineExceeded,
    /// The deployment group stayed busy with another deployment past the retry budget.
    GroupBusyTimeout,
    /// The approval at the gate was rejected by a human
    /// (`greenlight.ApprovalRejected`) or by its deadline (`States.Timeout`
    /// at `AwaitApproval`): the deployment is stopped while blue serves.
    ApprovalRejected,
    /// A pipeline task failed (caught error).
    TaskFailed,
    /// greenlight could not read or write AWS for a while (transient error
    /// names, [`crate::errors::is_transient`]): the deployment itself may be
    /// fine, so it is left running and the operator is told to watch it.
    LostSight,
    /// The execution ended ABORTED, TIMED_OUT or FAILED outside the failure
    /// path (no HandleFailure ran): seen through the Step Functions
    /// execution status-change event.
    ExecutionEnded,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidationFailed => "ValidationFailed",
            Self::BakeFailed => "BakeFailed",
            Self::DeploymentFailed => "DeploymentFailed",
            Self::DeadlineExceeded => "DeadlineExceeded",
            Self::GroupBusyTimeout => "GroupBusyTimeout",
            Self::ApprovalRejected => "ApprovalRejected",
            Self::TaskFailed => "TaskFailed",
            Self::LostSight => "LostSight",
            Self::ExecutionEnded => "ExecutionEnded",
        }
    }
}

/// Every kind: the names the state machine's `Failed` state can end with
/// (so an execution that failed with one of them went through HandleFailure).
pub const ALL_FAILURE_KINDS: [FailureKind; 9] = [
    FailureKind::ValidationFailed,
    FailureKind::BakeFailed,
    FailureKind::DeploymentFailed,
    FailureKind::DeadlineExceeded,
    FailureKind::GroupBusyTimeout,
    FailureKind::ApprovalRejected,
    FailureKind::TaskFailed,
    FailureKind::LostSight,
    FailureKind::ExecutionEnded,
];

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The pipeline step that was running when the execution failed (the state
/// names of `statemachine/pipeline.asl.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PipelineStage {
    Admit,
    Tune,
    Create,
    Status,
    Validate,
    AwaitApproval,
    Bake,
    Restore,
}

impl PipelineStage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admit => "Admit",
            Self::Tune => "Tune",
            Self::Create => "Create",
            Self::Status => "Status",
            Self::Validate => "Validate",
            Self::AwaitApproval => "AwaitApproval",
            Self::Bake => "Bake",
            Self::Restore => "Restore",
        }
    }
}

/// Which step a failed execution was in, read from which results its state
/// carries (each task adds its own field when it succeeds).
pub fn failed_stage(state: &PipelineState) -> PipelineStage {
    if state.admission.is_none() {
        return PipelineStage::Admit;
    }
    if state.tuning.is_none() {
        return PipelineStage::Tune;
    }
    if state.deployment.is_none() {
        return PipelineStage::Create;
    }
    if state.approval_error.is_some() {
        return PipelineStage::AwaitApproval;
    }
    if let Some(b) = state.bake.as_ref() {
        if matches!(b.verdict, BakeVerdict::Watching | BakeVerdict::Failed) {
            return PipelineStage::Bake;
        }
    }
    match state.status.as_ref().map(|s| s.next) {
        Some(NextStep::Validate) => PipelineStage::Validate,
        Some(NextStep::Succeeded) => PipelineStage::Restore,
        _ => PipelineStage::Status,
    }
}

/// What failed, in short (`kind`) and in words (`cause`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Classification {
    pub kind: FailureKind,
    /// The pipeline step that failed (pipeline path only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<PipelineStage>,
    /// One clause naming what failed, without a final period.
    pub cause: String,
}

/// Longest caught-error cause quoted in a report.
pub const MAX_CAUSE_CHARS: usize = 600;

/// Classifies a failed execution from its state.
///
/// Precedence: the approval's end (`$.approvalError`: rejected by a human or
/// by the deadline; its `States.Timeout` is the human's deadline, never a
/// lost sight of AWS) first, then a caught transient error ([`crate::errors::is_transient`]:
/// greenlight lost sight of AWS, [`FailureKind::LostSight`]; the caught error
/// is the latest thing that happened, older results do not outrank it), then
/// a validation that did not pass, then a deadline stop, then a
/// `Failed`/`Stopped` deployment, then a caught error (`GroupBusy` →
/// [`FailureKind::GroupBusyTimeout`], anything else → [`FailureKind::TaskFailed`]).
pub fn classify_pipeline(state: &PipelineState) -> Classification {
    let stage = Some(failed_stage(state));
    let app_group = format!(
        "{}/{}",
        state.input.application, state.input.deployment_group
    );
    if let Some(e) = state.approval_error.as_ref() {
        let deployment = state
            .deployment
            .as_ref()
            .map(|d| format!("deployment {} ", d.deployment_id))
            .unwrap_or_default();
        return Classification {
            kind: FailureKind::ApprovalRejected,
            stage,
            cause: format!(
                "{deployment}({app_group}) passed the automated gate but was not deployed: {}; it was stopped at the Ready gate while blue still served all traffic",
                crate::approval::rejection_cause(e, state.input.approval.map(|a| a.deadline_seconds))
            ),
        };
    }
    if let Some(e) = state
        .error
        .as_ref()
        .filter(|e| crate::errors::is_transient(&e.error))
    {
        let cause = one_line(&e.cause);
        let cause = if cause.is_empty() {
            String::new()
        } else {
            format!(" ({})", truncate_chars(&cause, MAX_CAUSE_CHARS))
        };
        return Classification {
            kind: FailureKind::LostSight,
            stage,
            cause: format!(
                "greenlight lost sight of the deployment for {app_group}: the {} step could not reach AWS ({}{cause}); this says nothing about the deployment itself",
                stage_name(stage),
                e.error
            ),
        };
    }
    if let Some(v) = state.validation.as_ref().filter(|v| !v.passed) {
        let summary = truncate_chars(&trim_sentence(&v.summary), MAX_CAUSE_CHARS);
        return Classification {
            kind: FailureKind::ValidationFailed,
            stage,
            cause: if summary.is_empty() {
                format!(
                    "the green fleet of deployment {} ({app_group}) failed validation at the Ready gate",
                    v.deployment_id
                )
            } else {
                format!(
                    "the green fleet of deployment {} ({app_group}) failed validation at the Ready gate: {summary}",
                    v.deployment_id
                )
            },
        };
    }
    if let Some(b) = state
        .bake
        .as_ref()
        .filter(|b| b.verdict == BakeVerdict::Failed)
    {
        let summary = truncate_chars(&trim_sentence(&b.summary), MAX_CAUSE_CHARS);
        return Classification {
            kind: FailureKind::BakeFailed,
            stage,
            cause: format!(
                "the green fleet of deployment {} ({app_group}) failed its bake {} s after the reroute and was rolled back to blue: {summary}",
                b.deployment_id,
                (b.looked_at_ms - b.started_at_ms.unwrap_or(b.looked_at_ms)).max(0) / 1000
            ),
        };
    }
    if let Some(s) = state.status.as_ref() {
        if s.deadline_exceeded {
            let budget = state
                .deployment
                .as_ref()
                .map(|d| (d.deadline_ms - d.created_at_ms).max(0) / 1000);
            let budget = match budget {
                Some(secs) => format!(" of {secs} s"),
                None => String::new(),
            };
            return Classification {
                kind: FailureKind::DeadlineExceeded,
                stage,
                cause: format!(
                    "deployment {} ({app_group}) ran past the pipeline's deadline{budget} in phase {:?} and was stopped with rollback",
                    s.deployment_id, s.phase
                ),
            };
        }
        if matches!(
            s.status,
            DeploymentStatus::Failed | DeploymentStatus::Stopped
        ) {
            let ended = status_word(s.status);
            let error = s
                .error
                .as_ref()
                .map(|e| format!(": {}", trim_sentence(&error_text(e))))
                .unwrap_or_default();
            return Classification {
                kind: FailureKind::DeploymentFailed,
                stage,
                cause: format!(
                    "CodeDeploy deployment {} ({app_group}) ended {ended} in phase {:?}{error}",
                    s.deployment_id, s.phase
                ),
            };
        }
    }
    match state.error.as_ref() {
        Some(e) if e.error == "GroupBusy" => Classification {
            kind: FailureKind::GroupBusyTimeout,
            stage,
            cause: format!(
                "deployment group {app_group} stayed busy with another deployment until the {} step's retries ran out ({})",
                stage_name(stage),
                truncate_chars(&one_line(&e.cause), MAX_CAUSE_CHARS)
            ),
        },
        Some(e) => {
            let cause = one_line(&e.cause);
            let cause = if cause.is_empty() {
                String::new()
            } else {
                format!(": {}", truncate_chars(&cause, MAX_CAUSE_CHARS))
            };
            Classification {
                kind: FailureKind::TaskFailed,
                stage,
                cause: format!(
                    "the {} step of the pipeline for {app_group} failed with {}{cause}",
                    stage_name(stage),
                    e.error
                ),
            }
        }
        None => Classification {
            kind: FailureKind::TaskFailed,
            stage,
            cause: format!(
                "the pipeline for {app_group} reached its failure path at the {} step without a recorded cause",
                stage_name(stage)
            ),
        },
    }
}

fn stage_name(stage: Option<PipelineStage>) -> &'static str {
    stage.map(PipelineStage::as_str).unwrap_or("unknown")
}

/// `detail-type` of the events the failure-handler acts on.
pub const DEPLOYMENT_STATE_CHANGE: &str = "CodeDeploy Deployment State-change Notification";

/// Should an EventBridge CodeDeploy event be handled?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "disposition", rename_all = "camelCase")]
pub enum EventDisposition {
    Handle,
    Ignore { reason: String },
}

/// Only deployment state changes to `FAILURE` or `STOP` are handled; every
/// other event (instance state changes, `START`, `SUCCESS`, `READY`, ...) is
/// ignored with the reason.
pub fn event_disposition(detail_type: Option<&str>, state: &str) -> EventDisposition {
    match detail_type {
        Some(DEPLOYMENT_STATE_CHANGE) => {}
        other => {
            return EventDisposition::Ignore {
                reason: format!(
                    "event detail-type {:?} is not {DEPLOYMENT_STATE_CHANGE:?}",
                    other.unwrap_or("")
                ),
            }
        }
    }
    match state {
        "FAILURE" | "STOP" => EventDisposition::Handle,
        other => EventDisposition::Ignore {
            reason: format!(
                "deployment state {other:?} is not a failure (only FAILURE and STOP are handled)"
            ),
        },
    }
}

/// Classifies a deployment that EventBridge reported as `FAILURE` or `STOP`.
pub fn classify_event(state: &str, view: &DeploymentView) -> Classification {
    let error = view
        .error
        .as_ref()
        .map(|e| format!(": {}", trim_sentence(&error_text(e))))
        .unwrap_or_default();
    Classification {
        kind: FailureKind::DeploymentFailed,
        stage: None,
        cause: format!(
            "CodeDeploy deployment {} ({}/{}) ended {} (event {state}){error}",
            view.deployment_id,
            view.application,
            view.deployment_group,
            status_word(view.status)
        ),
    }
}

/// Who handles a failed deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "owner", rename_all = "camelCase")]
pub enum Ownership {
    /// Created by a greenlight execution: its own failure path handles it.
    #[serde(rename_all = "camelCase")]
    Pipeline { execution_name: String },
    /// Started outside the pipeline: the EventBridge path handles it.
    Outside,
}

/// A deployment whose description names a greenlight execution belongs to
/// that execution's failure path; the EventBridge path skips it.
pub fn ownership(view: &DeploymentView) -> Ownership {
    match view
        .description
        .as_deref()
        .and_then(execution_of_description)
    {
        Some(name) => Ownership::Pipeline {
            execution_name: name.to_string(),
        },
        None => Ownership::Outside,
    }
}

/// CodeDeploy's EC2 lifecycle events in the order a blue/green deployment
/// runs them: green fleet first, then the blue fleet.
pub const LIFECYCLE_ORDER: [&str; 14] = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
    "BeforeBlockTraffic",
    "BlockTraffic",
    "AfterBlockTraffic",
    "End",
];

/// The events that take the blue fleet out of the load balancer: once one of
/// them started, traffic has moved.
pub use crate::watch::BLOCK_TRAFFIC_EVENTS;

fn lifecycle_rank(name: &str) -> usize {
    LIFECYCLE_ORDER
        .iter()
        .position(|n| *n == name)
        .unwrap_or(LIFECYCLE_ORDER.len())
}

/// Longest log tail kept in a diagnosis (the end of the agent's tail).
pub const MAX_LOG_TAIL_CHARS: usize = 1000;

/// Longest CodeDeploy message (per instance, or the deployment's error) kept
/// in a diagnosis.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// Failed instances (and failing validation evidence) listed in a report;
/// the rest are counted. With [`MAX_LOG_TAIL_CHARS`] and [`MAX_MESSAGE_CHARS`]
/// this keeps the handler's task result (`$.report`, carried in the execution
/// state) a few tens of KB at most, far under Step Functions' 256 KB limit
/// (`States.DataLimitExceeded` cannot be caught).
pub const MAX_LISTED_INSTANCES: usize = 10;

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One instance that failed, at its first failed lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedInstance {
    pub instance_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetLabel>,
    /// The first lifecycle event that failed on it (none when CodeDeploy
    /// marked the instance failed without a failed event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
}

/// What went wrong in one deployment, read from its [`DeploymentView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnosis {
    pub deployment_id: String,
    pub status: DeploymentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<DeploymentErrorInfo>,
    /// The earliest failed lifecycle event (in [`LIFECYCLE_ORDER`]) over all
    /// instances; none when no lifecycle event failed (stopped at the Ready
    /// gate, stopped by request, or a deployment-level error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_event: Option<String>,
    pub failed_instances: Vec<FailedInstance>,
    /// Failed instances beyond [`MAX_LISTED_INSTANCES`], not listed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted_failed_instances: usize,
    /// Blue began leaving the load balancer (see the module docs).
    pub traffic_moved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_deployment_id: Option<String>,
}

/// True once the blue fleet began leaving the load balancer.
pub fn traffic_moved(view: &DeploymentView) -> bool {
    if view.termination_wait_started == Some(true) {
        return true;
    }
    view.targets.iter().any(|t| {
        t.label == Some(FleetLabel::Blue)
            && t.lifecycle_events.iter().any(|e| {
                BLOCK_TRAFFIC_EVENTS.contains(&e.name.as_str())
                    && matches!(
                        e.status,
                        LifecycleStatus::InProgress
                            | LifecycleStatus::Succeeded
                            | LifecycleStatus::Failed
                    )
            })
    })
}

/// Diagnoses a deployment: every instance with a failed lifecycle event (its
/// first one, in the order CodeDeploy listed them) or a failed status.
pub fn diagnose(view: &DeploymentView) -> Diagnosis {
    let mut failed_instances = Vec::new();
    for t in &view.targets {
        let first_failed = t
            .lifecycle_events
            .iter()
            .find(|e| e.status == LifecycleStatus::Failed);
        if first_failed.is_none() && t.status != LifecycleStatus::Failed {
            continue;
        }
        let diag = first_failed.and_then(|e| e.diagnostics.as_ref());
        failed_instances.push(FailedInstance {
            instance_id: t.instance_id.clone(),
            fleet: t.label,
            lifecycle_event: first_failed.map(|e| e.name.clone()),
            error_code: diag.map(|d| d.error_code.clone()),
            message: diag
                .map(|d| truncate_chars(&d.message, MAX_MESSAGE_CHARS))
                .filter(|m| !m.is_empty()),
            script_name: diag
                .and_then(|d| d.script_name.as_deref().map(|n| truncate_chars(n, 200))),
            log_tail: diag
                .and_then(|d| d.log_tail.as_deref())
                .map(|tail| keep_tail(tail, MAX_LOG_TAIL_CHARS)),
        });
    }
    let failed_event = failed_instances
        .iter()
        .filter_map(|f| f.lifecycle_event.as_deref())
        .min_by_key(|name| lifecycle_rank(name))
        .map(str::to_string);
    let omitted_failed_instances = failed_instances.len().saturating_sub(MAX_LISTED_INSTANCES);
    failed_instances.truncate(MAX_LISTED_INSTANCES);
    Diagnosis {
        deployment_id: view.deployment_id.clone(),
        status: view.status,
        error: view.error.as_ref().map(|e| DeploymentErrorInfo {
            code: truncate_chars(&e.code, 200),
            message: truncate_chars(&e.message, MAX_MESSAGE_CHARS),
        }),
        failed_event,
        failed_instances,
        omitted_failed_instances,
        traffic_moved: traffic_moved(view),
        rollback_deployment_id: view.rollback_deployment_id.clone(),
    }
}

/// The Auto Scaling group CodeDeploy creates for the green fleet when the
/// deployment group copies its ASG (`COPY_AUTO_SCALING_GROUP`):
/// `CodeDeploy_<deployment group name>_<deployment id>`.
pub fn green_asg_name(deployment_group: &str, deployment_id: &str) -> String {
    format!("CodeDeploy_{deployment_group}_{deployment_id}")
}

/// The runbook of seed 001.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum RunbookDecision {
    /// Failed before traffic moved: delete the green ASG CodeDeploy created
    /// and make sure the deployment group points at the blue ASG(s).
    #[serde(rename_all = "camelCase")]
    RemoveGreenAndPointAtBlue {
        green_asg: String,
        /// The ASG(s) the deployment started from; empty when unknown (then
        /// the group is left as it is).
        blue_asgs: Vec<String>,
        reason: String,
    },
    /// Failed after traffic moved: nothing is deleted; the report explains
    /// the next step.
    #[serde(rename_all = "camelCase")]
    ExplainAfterTraffic {
        green_asg: String,
        blue_asgs: Vec<String>,
        reason: String,
        next_step: String,
    },
    /// greenlight lost sight of the deployment (transient AWS errors): it is
    /// left running, nothing is stopped or deleted; `status` is what a
    /// re-read showed (none when it could not be read).
    #[serde(rename_all = "camelCase")]
    LeftRunning {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<DeploymentStatus>,
        reason: String,
        next_step: String,
    },
    /// No deployment to undo (it was never created, or it succeeded).
    #[serde(rename_all = "camelCase")]
    NothingToUndo { reason: String },
    /// The deployment could not be read: nothing was changed, the report
    /// says how to apply the runbook by hand.
    #[serde(rename_all = "camelCase")]
    Undetermined {
        green_asg: String,
        reason: String,
        next_step: String,
    },
}

/// The runbook plus whether the deployment must be stopped first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunbookPlan {
    /// The deployment is still active (a pipeline task failed while it ran):
    /// stop it with rollback before anything else, so it cannot move traffic
    /// unsupervised.
    pub stop_deployment: bool,
    pub decision: RunbookDecision,
}

/// Decides the runbook.
///
/// * no deployment id → [`RunbookDecision::NothingToUndo`] (failed before create);
/// * [`FailureKind::LostSight`] → [`RunbookDecision::LeftRunning`]: never
///   stopped, nothing deleted (greenlight could not read AWS; that is no
///   verdict on the deployment);
/// * deployment unreadable (`view` none) → [`RunbookDecision::Undetermined`];
/// * deployment `Succeeded` → nothing to undo: green is production now;
/// * traffic moved → [`RunbookDecision::ExplainAfterTraffic`];
/// * otherwise → [`RunbookDecision::RemoveGreenAndPointAtBlue`] with the blue
///   groups `recorded` at create time (`pipeline.deployment.blueAutoScalingGroups`;
///   empty when there is no record: see [`point_at_blue`]).
pub fn plan_runbook(
    kind: FailureKind,
    deployment_group: &str,
    deployment_id: Option<&str>,
    view: Option<&DeploymentView>,
    recorded_blue: &[String],
) -> RunbookPlan {
    let Some(deployment_id) = deployment_id else {
        return RunbookPlan {
            stop_deployment: false,
            decision: RunbookDecision::NothingToUndo {
                reason: "no CodeDeploy deployment was created, so there is nothing to undo"
                    .to_string(),
            },
        };
    };
    let green_asg = green_asg_name(deployment_group, deployment_id);
    if kind == FailureKind::LostSight {
        return RunbookPlan {
            stop_deployment: false,
            decision: left_running(deployment_id, view),
        };
    }
    let Some(view) = view else {
        return RunbookPlan {
            stop_deployment: false,
            decision: RunbookDecision::Undetermined {
                next_step: format!(
                    "read deployment {deployment_id}; if BlockTraffic had not started on the blue fleet, delete ASG {green_asg} and make sure group {deployment_group} points at the blue ASG; otherwise point the group at {green_asg} and deploy again"
                ),
                green_asg,
                reason: format!(
                    "deployment {deployment_id} could not be read, so it is unknown whether traffic had moved; nothing was changed"
                ),
            },
        };
    };
    if kind == FailureKind::BakeFailed && view.status != DeploymentStatus::Succeeded {
        // The bake stopped the deployment with rollback while blue still
        // existed: CodeDeploy's rollback deployment re-registers blue and
        // blocks green; the runbook must not race it (AWS behaviours, DESIGN.md).
        return RunbookPlan {
            stop_deployment: !view.status.is_terminal(),
            decision: RunbookDecision::NothingToUndo {
                reason: format!(
                    "the bake failed after the reroute; deployment {deployment_id} was stopped with rollback while the blue fleet still existed, so CodeDeploy's rollback{} is to put traffic back on blue and remove the green fleet ({green_asg}); how it ended is reported below",
                    view.rollback_deployment_id
                        .as_deref()
                        .map(|r| format!(" deployment {r}"))
                        .unwrap_or_default()
                ),
            },
        };
    }
    if view.status == DeploymentStatus::Succeeded {
        return RunbookPlan {
            stop_deployment: false,
            decision: RunbookDecision::NothingToUndo {
                reason: format!(
                    "deployment {deployment_id} succeeded: the green fleet ({green_asg}) is production now and is left alone"
                ),
            },
        };
    }
    let stop_deployment = !view.status.is_terminal();
    let diagnosis = diagnose(view);
    let blue_asgs = recorded_blue.to_vec();
    let at = match diagnosis.failed_event.as_deref() {
        Some(event) => format!("at {event}"),
        None => format!("with no failed lifecycle event (status {:?})", view.status),
    };
    let decision = if diagnosis.traffic_moved {
        let blue = if blue_asgs.is_empty() {
            "the original ASG".to_string()
        } else {
            blue_asgs.join(", ")
        };
        RunbookDecision::ExplainAfterTraffic {
            reason: format!(
                "deployment {deployment_id} failed {at} after traffic moved to the green fleet (blue had begun leaving the load balancer), so the green ASG is kept"
            ),
            next_step: format!(
                "point deployment group {deployment_group} at the green ASG {green_asg} (UpdateDeploymentGroup autoScalingGroups=[{green_asg}]) instead of {blue}, then deploy again; such failures usually hit single instances, so deploy at a time without scaling events"
            ),
            green_asg,
            blue_asgs,
        }
    } else {
        RunbookDecision::RemoveGreenAndPointAtBlue {
            reason: format!(
                "deployment {deployment_id} failed {at} before traffic moved: the blue fleet still serves"
            ),
            green_asg,
            blue_asgs,
        }
    };
    RunbookPlan {
        stop_deployment,
        decision,
    }
}

/// The decision for [`FailureKind::LostSight`]: report what a re-read shows,
/// change nothing.
pub fn left_running(deployment_id: &str, view: Option<&DeploymentView>) -> RunbookDecision {
    match view {
        None => RunbookDecision::LeftRunning {
            status: None,
            reason: format!(
                "deployment {deployment_id} was left running: greenlight could not read it, and not being able to read it is no reason to stop it"
            ),
            next_step: format!(
                "watch deployment {deployment_id} in the CodeDeploy console (aws deploy get-deployment --deployment-id {deployment_id}); when it has ended, restore the target groups from their greenlight:snapshot tag if they still carry it, and upload again if it failed"
            ),
        },
        Some(v) if !v.status.is_terminal() => RunbookDecision::LeftRunning {
            status: Some(v.status),
            reason: format!(
                "deployment {deployment_id} is still {} and was left running (greenlight lost sight of it, which says nothing about the deployment)",
                status_word(v.status)
            ),
            next_step: format!(
                "watch deployment {deployment_id} to its end (it continues without greenlight's supervision: no validation gate, no deadline); if it waits in Ready, continue or stop it yourself; then restore the target groups from their greenlight:snapshot tag"
            ),
        },
        Some(v) => RunbookDecision::LeftRunning {
            status: Some(v.status),
            reason: format!(
                "deployment {deployment_id} had already ended {} on its own; nothing was stopped or deleted",
                status_word(v.status)
            ),
            next_step: if v.status == DeploymentStatus::Succeeded {
                format!("nothing to do: deployment {deployment_id} succeeded")
            } else {
                format!(
                    "see why deployment {deployment_id} ended {} (CodeDeploy console) and upload again",
                    status_word(v.status)
                )
            },
        },
    }
}

/// Restore source when greenlight lost sight of the deployment: the
/// execution's own source ([`pipeline_restore_source`]) only once the
/// deployment is known to have ended; while it may still run, the tuned
/// settings stay (restoring under a running deployment slows its
/// AllowTraffic back to the seed's minutes).
pub fn lost_sight_restore_source(
    state: &PipelineState,
    view: Option<&DeploymentView>,
) -> RestoreSource {
    match view {
        Some(v) if v.status.is_terminal() => pipeline_restore_source(state),
        _ if pipeline_deployment_id(state).is_none() => pipeline_restore_source(state),
        _ => RestoreSource::Nothing {
            reason: "the deployment may still be running, so its tuned settings stay until it ends (restore them from the greenlight:snapshot tag then)".to_string(),
        },
    }
}

/// Where the load-balancer settings are put back from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "camelCase")]
pub enum RestoreSource {
    /// The snapshots this execution's `tune` returned.
    Snapshots { snapshots: Vec<TargetGroupSnapshot> },
    /// The `greenlight:snapshot` tags recorded on the group's target groups.
    RecordedTags,
    /// Nothing to restore.
    Nothing { reason: String },
}

/// Pipeline path: the state's tuning snapshots, only if this execution tuned.
/// An execution that never tuned never restores from tags (another
/// deployment may own them), except when its own `Tune` step failed part-way:
/// then the tags on its group are the ones it just wrote (admission gave it
/// the group), so they are restored.
pub fn pipeline_restore_source(state: &PipelineState) -> RestoreSource {
    match state.tuning.as_ref() {
        Some(t) if !t.snapshots.is_empty() => RestoreSource::Snapshots {
            snapshots: t.snapshots.clone(),
        },
        Some(_) => RestoreSource::Nothing {
            reason: "this execution's tuning recorded no target group".to_string(),
        },
        None if state.admission.is_some() && failed_stage(state) == PipelineStage::Tune => {
            RestoreSource::RecordedTags
        }
        None => RestoreSource::Nothing {
            reason: "this execution never tuned the load balancer (any snapshot tag belongs to another deployment)".to_string(),
        },
    }
}

/// EventBridge path: no state, so the tags the tuner recorded.
pub fn event_restore_source() -> RestoreSource {
    RestoreSource::RecordedTags
}

mod execution_end;
mod guard;
mod marker;
mod notify;
mod report;
mod rollback;

pub use execution_end::*;
pub use guard::*;
pub use marker::*;
pub use notify::*;
pub use report::*;
pub use rollback::*;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod rerun_tests;
