//! Shared domain types: the JSON the state machine carries between tasks.
//!
//! Every execution's state is a [`PipelineState`]: the trigger writes the
//! [`PipelineInput`] part, each task adds its result under its own field
//! (`ResultPath` in `statemachine/pipeline.asl.json`). Every task receives the
//! whole state as `{"action": ..., "executionName": ..., "pipeline": <state>}`
//! ([`TaskRequest`]), so no `Parameters` path can point at a missing field.
//!
//! All JSON is camelCase. Times inside the core are Unix epoch milliseconds
//! ([`EpochMillis`]); the shells convert at the edges.

use serde::{Deserialize, Serialize};

/// Unix epoch milliseconds. Every decision takes `now` as one of these.
pub type EpochMillis = i64;

/// The S3 object that a deployment installs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub bucket: String,
    /// The object key exactly as stored in S3 (already decoded).
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Human label of the revision: the key's file name without `.zip`.
    /// The validator expects this string in the green fleet's version answer.
    pub label: String,
}

/// Where an upload came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Source {
    /// An S3 Object Created event (EventBridge or classic notification).
    #[serde(rename_all = "camelCase")]
    S3 {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_id: Option<String>,
    },
    /// A CodePipeline Lambda invoke action job.
    #[serde(rename_all = "camelCase")]
    CodePipeline { job_id: String },
}

/// What the trigger passes to StartExecution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineInput {
    pub application: String,
    pub deployment_group: String,
    pub revision: Revision,
    /// When the object was uploaded (event time), RFC 3339 UTC. Orders
    /// competing uploads for one deployment group (ties broken by key).
    pub uploaded_at: String,
    /// `uploaded_at` as epoch milliseconds, so decisions need no date parsing.
    pub uploaded_at_ms: EpochMillis,
    pub source: Source,
    /// A human approval after the automated gate (issue 10): asked by the
    /// upload's S3 tag, the pipeline's UserParameters or the group default.
    /// Absent in older inputs = no approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<crate::options::ApprovalRequest>,
    /// The emergency override that skips the bake (only ever explicit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_skip: Option<crate::options::BakeSkip>,
}

/// The whole state of one execution, as the state machine carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineState {
    #[serde(flatten)]
    pub input: PipelineInput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<Admission>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<TuningResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<CreatedDeployment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationReport>,
    /// traffic-validator `bake` (the last look), during the termination wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake: Option<crate::bake::BakeReport>,
    /// deployment-watcher `hold`: the Auto Scaling groups held still.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<crate::scaling::ScalingHold>,
    /// deployment-watcher `release` on the success path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_released: Option<crate::scaling::ScalingRelease>,
    /// `AwaitApproval`'s result: the SendTaskSuccess output as sent (read
    /// by [`crate::approval::granted_by`], leniently).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_answer: Option<serde_json::Value>,
    /// The approval ended the deployment: `greenlight.ApprovalRejected`
    /// (SendTaskFailure) or `States.Timeout` (the deadline), caught at
    /// `AwaitApproval` / `ContinueAfterApproval` (`ResultPath: "$.approvalError"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_error: Option<TaskError>,
    /// Set by a `Catch` (`ResultPath: "$.error"`): Step Functions' own shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TaskError>,
}

/// The payload every state-machine task receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRequest<A> {
    pub action: A,
    /// `$$.Execution.Name`: names the deployment and makes retries idempotent.
    pub execution_name: String,
    /// `$$.State.RetryCount` where the state passes it (Validate): 0 on the
    /// first attempt, so a retry knows an earlier attempt may have written.
    #[serde(default, skip_serializing_if = "is_first_attempt")]
    pub retry_count: u32,
    /// `$$.Task.Token` of a callback wait (`AwaitDeploymentEvent`): the
    /// `await` action answers it itself when the deployment already moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_token: Option<String>,
    pub pipeline: PipelineState,
}

fn is_first_attempt(retry_count: &u32) -> bool {
    *retry_count == 0
}

/// A caught error, exactly as Step Functions writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskError {
    #[serde(rename = "Error")]
    pub error: String,
    /// Absent or `null` when the failure carried no cause (a SendTaskFailure
    /// without `cause`: Step Functions API reference, the field is optional;
    /// moto writes `null`): read as empty.
    #[serde(rename = "Cause", default, deserialize_with = "null_as_empty")]
    pub cause: String,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// deployment-watcher `admit`: may this upload go on, or is it superseded?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "camelCase")]
pub enum Admission {
    Proceed,
    /// A newer upload for the same deployment group is waiting; this one ends
    /// without deploying and says which execution superseded it.
    #[serde(rename_all = "camelCase")]
    Superseded {
        by_execution: String,
        by_key: String,
    },
}

/// Target-group health-check settings that the tuner changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckSettings {
    pub interval_seconds: u32,
    pub timeout_seconds: u32,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

/// Everything the tuner changed on one target group, as it was before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupSnapshot {
    pub target_group_arn: String,
    pub health_check: HealthCheckSettings,
    pub deregistration_delay_seconds: u32,
}

/// Predicted time for a target to become healthy: (healthy × interval) + interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllowTrafficPrediction {
    pub before_seconds: u32,
    pub after_seconds: u32,
}

/// Predicted BlockTraffic time (blue draining): the deregistration delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockTrafficPrediction {
    pub before_seconds: u32,
    pub after_seconds: u32,
}

/// health-check-tuner `tune` output, stored at `$.tuning`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TuningResult {
    pub snapshots: Vec<TargetGroupSnapshot>,
    pub predicted_allow_traffic: AllowTrafficPrediction,
    /// Absent in state written before the tuner reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_block_traffic: Option<BlockTrafficPrediction>,
}

/// deployment-watcher `create` output, stored at `$.deployment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedDeployment {
    pub deployment_id: String,
    pub created_at_ms: EpochMillis,
    /// Past this the watcher stops the deployment with rollback.
    pub deadline_ms: EpochMillis,
    /// True when a retried `create` found the deployment it made before.
    pub reused: bool,
    /// The group's `terminationWaitTimeInMinutes` in seconds (blue stays up
    /// this long after the reroute); `None` when it could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_termination_wait_seconds: Option<u32>,
    /// The deployment config `create` asked for (it paces install and reroute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_config_name: Option<String>,
    /// The group's Auto Scaling groups (GetDeploymentGroup `autoScalingGroups`)
    /// read just before CreateDeployment: the blue fleet this deployment
    /// replaces. AWS documents `deploymentInfo.targetInstances` as the
    /// replacement environment, so the runbook uses this record, not that.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blue_auto_scaling_groups: Vec<String>,
}

/// CodeDeploy's deployment status, normalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeploymentStatus {
    Created,
    Queued,
    InProgress,
    Baking,
    Ready,
    Succeeded,
    Failed,
    Stopped,
}

impl DeploymentStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Stopped)
    }
}

/// Blue/green phases as the CodeDeploy console shows them, plus the Ready gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Phase {
    Queued,
    Provisioning,
    Installing,
    ReadyWait,
    Rerouting,
    Terminating,
    Done,
}

/// One row of the timeline: when a phase started and ended, and what was predicted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseTiming {
    pub phase: Phase,
    pub started_at_ms: EpochMillis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at_ms: Option<EpochMillis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_seconds: Option<u32>,
}

/// What the state machine does after a status look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NextStep {
    /// Wait `waitSeconds`, then look again.
    Wait,
    /// The deployment waits in Ready: run the traffic validator now.
    Validate,
    Succeeded,
    /// Failed or Stopped (including a deadline stop): go to the failure path.
    Failed,
}

/// CodeDeploy's errorInformation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentErrorInfo {
    pub code: String,
    pub message: String,
}

/// deployment-watcher `status` output, stored at `$.status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub deployment_id: String,
    pub status: DeploymentStatus,
    pub phase: Phase,
    pub ledger: Vec<PhaseTiming>,
    /// The polling wait (`WaitBeforeNextLook`), bounded by `MAX_WAIT_SECONDS`.
    pub wait_seconds: u32,
    /// The longest the loop waits for a CodeDeploy event before it looks
    /// anyway (`AwaitDeploymentEvent`'s timeout, [`crate::wake::event_wait_seconds`]).
    /// Absent in a report written before events woke the loop: read as 0,
    /// and the state machine then polls.
    #[serde(default)]
    pub event_wait_seconds: u32,
    pub next: NextStep,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<DeploymentErrorInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_deployment_id: Option<String>,
    /// True when this look found the deadline passed and stopped the deployment.
    #[serde(default)]
    pub deadline_exceeded: bool,
}

/// Which fleet a deployment target belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FleetLabel {
    Blue,
    Green,
}

/// Status of one lifecycle event on one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LifecycleStatus {
    Pending,
    InProgress,
    Succeeded,
    Failed,
    Skipped,
    Unknown,
}

/// CodeDeploy's per-event diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleDiagnostics {
    pub error_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_name: Option<String>,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleEventView {
    /// e.g. `BeforeInstall`, `AllowTraffic`, `BlockTraffic`.
    pub name: String,
    pub status: LifecycleStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<EpochMillis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at_ms: Option<EpochMillis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<LifecycleDiagnostics>,
}

/// One instance target of a deployment with its lifecycle events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceTargetView {
    pub instance_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<FleetLabel>,
    pub status: LifecycleStatus,
    pub lifecycle_events: Vec<LifecycleEventView>,
}

/// Everything the core needs to know about one deployment, read from
/// GetDeployment + ListDeploymentTargets + BatchGetDeploymentTargets
/// (see `greenlight_aws::deployment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentView {
    pub deployment_id: String,
    pub application: String,
    pub deployment_group: String,
    pub status: DeploymentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at_ms: Option<EpochMillis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at_ms: Option<EpochMillis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<DeploymentErrorInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_deployment_id: Option<String>,
    /// `creator`: `user`, `autoscaling`, `codeDeployRollback` (a rollback
    /// deployment CodeDeploy created), ... (CodeDeploy API reference,
    /// `DeploymentInfo.creator`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    /// `rollbackInfo.rollbackTriggeringDeploymentId`: on a rollback
    /// deployment, the deployment whose failure or stop it rolls back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_triggering_deployment_id: Option<String>,
    /// The ASG(s) the deployment started from (`targetInstances.autoScalingGroups`): blue.
    #[serde(default)]
    pub original_auto_scaling_groups: Vec<String>,
    /// When CodeDeploy started waiting before terminating blue (reroute done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_wait_started: Option<bool>,
    pub targets: Vec<InstanceTargetView>,
}

/// One instance's probe evidence from the traffic validator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceEvidence {
    pub instance_id: String,
    pub address: String,
    pub probes: u32,
    pub consecutive_successes: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    /// At most a few hundred characters of what the instance answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub passed: bool,
}

/// traffic-validator output, stored at `$.validation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationReport {
    pub deployment_id: String,
    pub passed: bool,
    /// One sentence naming the failing instance and what it answered.
    pub summary: String,
    pub instances: Vec<InstanceEvidence>,
    /// `continued` (ContinueDeployment READY_WAIT), `stopped` (StopDeployment
    /// with rollback) or `continuedEarlier` (a retried run found that an
    /// earlier attempt's ContinueDeployment had taken effect).
    pub action: ValidationAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ValidationAction {
    Continued,
    Stopped,
    ContinuedEarlier,
    /// Passed, but the upload or group asked for a human approval: the
    /// deployment waits in Ready and the state machine in `AwaitApproval`.
    AwaitingApproval,
}
