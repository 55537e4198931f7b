//! health-check-tuner: make CodeDeploy's AllowTraffic fast during a
//! deployment, and put the load balancer back afterwards.
//!
//! One state-machine task, two actions (`TaskRequest<Action>`):
//!
//! * `tune` (state `Tune`, result at `$.tuning`): finds the deployment
//!   group's ALB target groups (CodeDeploy GetDeploymentGroup
//!   `loadBalancerInfo.targetGroupInfoList` → ELBv2 DescribeTargetGroups by
//!   name), snapshots each one's health check and deregistration delay,
//!   records the snapshot as the `greenlight:snapshot` tag FIRST (AddTags),
//!   then applies the fast profile (ModifyTargetGroup,
//!   ModifyTargetGroupAttributes). A target group that already carries the
//!   tag keeps it: the original settings are never overwritten by tuned ones.
//!   Answers a [`TuningResult`]: the original snapshots plus the predicted
//!   AllowTraffic time before and after, (healthy × interval) + interval.
//! * `restore` (state `Restore`, result at `$.restored`): puts back exactly
//!   the snapshots from `pipeline.tuning`, or, when the state has none, the
//!   ones recorded in the target groups' tags; removes the tag. Idempotent and
//!   safe when nothing was tuned. Answers a [`RestoreReport`].
//!
//! Every decision is in [`greenlight_core::tuning`]; the AWS reads and writes
//! are in [`greenlight_aws::load_balancer`] (shared with the failure handler).

use aws_sdk_codedeploy::Client as CodeDeployClient;
use aws_sdk_elasticloadbalancingv2::Client as Elbv2Client;
use greenlight_aws::config::{parsed_or, ConfigError};
use greenlight_aws::load_balancer::{self as lb, LbError, RestoreOutcome};
use greenlight_core::errors;
use greenlight_core::model::{TargetGroupSnapshot, TaskRequest, TuningResult};
use greenlight_core::tuning::{
    restore_source, tuning_result, FastProfile, ProfileError, RestoreReport, RestoreSource,
    SkipReason, SkippedTargetGroup, DEFAULT_DEREGISTRATION_DELAY_SECONDS,
    DEFAULT_HEALTHY_THRESHOLD, DEFAULT_INTERVAL_SECONDS, DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_UNHEALTHY_THRESHOLD,
};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// Config and dependencies
// ---------------------------------------------------------------------------

pub const ENV_INTERVAL: &str = "HEALTH_CHECK_INTERVAL_SECONDS";
pub const ENV_TIMEOUT: &str = "HEALTH_CHECK_TIMEOUT_SECONDS";
pub const ENV_HEALTHY: &str = "HEALTHY_THRESHOLD";
pub const ENV_UNHEALTHY: &str = "UNHEALTHY_THRESHOLD";
pub const ENV_DEREGISTRATION: &str = "DEREGISTRATION_DELAY_SECONDS";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// The fast profile applied by `tune`.
    pub profile: FastProfile,
}

impl Config {
    /// Reads `HEALTH_CHECK_INTERVAL_SECONDS` (5), `HEALTH_CHECK_TIMEOUT_SECONDS`
    /// (2), `HEALTHY_THRESHOLD` (2), `UNHEALTHY_THRESHOLD` (2) and
    /// `DEREGISTRATION_DELAY_SECONDS` (30) and checks them against ALB's limits,
    /// so a bad value fails the cold start, naming the variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let interval = parsed_or(ENV_INTERVAL, DEFAULT_INTERVAL_SECONDS)?;
        let timeout = parsed_or(ENV_TIMEOUT, DEFAULT_TIMEOUT_SECONDS)?;
        let healthy = parsed_or(ENV_HEALTHY, DEFAULT_HEALTHY_THRESHOLD)?;
        let unhealthy = parsed_or(ENV_UNHEALTHY, DEFAULT_UNHEALTHY_THRESHOLD)?;
        let deregistration = parsed_or(ENV_DEREGISTRATION, DEFAULT_DEREGISTRATION_DELAY_SECONDS)?;
        let profile = FastProfile::new(interval, timeout, healthy, unhealthy, deregistration)
            .map_err(|e| {
                let (name, value) = match e {
                    ProfileError::Interval { value } => (ENV_INTERVAL, value),
                    ProfileError::Timeout { value } => (ENV_TIMEOUT, value),
                    ProfileError::TimeoutNotBelowInterval { timeout, .. } => (ENV_TIMEOUT, timeout),
                    ProfileError::HealthyThreshold { value } => (ENV_HEALTHY, value),
                    ProfileError::UnhealthyThreshold { value } => (ENV_UNHEALTHY, value),
                    ProfileError::DeregistrationDelay { value } => (ENV_DEREGISTRATION, value),
                };
                ConfigError::Invalid {
                    name,
                    value: value.to_string(),
                    problem: e.to_string(),
                }
            })?;
        Ok(Self { profile })
    }
}

pub struct Deps {
    pub codedeploy: CodeDeployClient,
    pub elbv2: Elbv2Client,
    pub config: Config,
}

impl Deps {
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        Self {
            codedeploy: CodeDeployClient::new(sdk),
            elbv2: Elbv2Client::new(sdk),
            config,
        }
    }
}

// ---------------------------------------------------------------------------
// Request, response, errors
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Tune,
    Restore,
}

pub type Request = TaskRequest<Action>;

/// `tune` answers the [`TuningResult`] itself (stored at `$.tuning`),
/// `restore` a [`RestoreReport`] (stored at `$.restored`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Response {
    Tuned(TuningResult),
    Restored(RestoreReport),
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid fast profile: {0}")]
    InvalidProfile(#[from] ProfileError),
    #[error(transparent)]
    LoadBalancer(#[from] LbError),
}

impl Error {
    /// Stable names, all from `greenlight_core::errors`: InvalidProfile,
    /// DeploymentGroupNotFound, NoLoadBalancer, TargetGroupNotFound,
    /// CorruptSnapshotTag, AwsTransient (throttling, 5xx, timeout: the state
    /// machine retries it), AwsError.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidProfile(_) => errors::INVALID_PROFILE,
            Self::LoadBalancer(e) => e.error_type(),
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

// ---------------------------------------------------------------------------
// Handler
// ---------------------------------------------------------------------------

pub async fn handler(event: LambdaEvent<Request>, deps: &Deps) -> Result<Response, Error> {
    let request = event.payload;
    let result = match request.action {
        Action::Tune => tune(&request, deps).await.map(Response::Tuned),
        Action::Restore => restore(&request, deps).await.map(Response::Restored),
    };
    if let Err(e) = &result {
        tracing::error!(
            execution = %request.execution_name,
            action = ?request.action,
            error_type = e.error_type(),
            error = %e,
            "health-check-tuner failed"
        );
    }
    result
}

async fn tune(request: &Request, deps: &Deps) -> Result<TuningResult, Error> {
    let profile = deps.config.profile;
    profile.validate()?;
    let pipeline = &request.pipeline;
    let arns = lb::target_group_arns(
        &deps.codedeploy,
        &deps.elbv2,
        &pipeline.input.application,
        &pipeline.input.deployment_group,
    )
    .await?;
    let mut snapshots: Vec<TargetGroupSnapshot> = Vec::with_capacity(arns.len());
    for arn in &arns {
        snapshots.push(lb::tune(&deps.elbv2, arn, &profile).await?);
    }
    let result = tuning_result(snapshots, &profile);
    tracing::info!(
        execution = %request.execution_name,
        target_groups = result.snapshots.len(),
        allow_traffic_before_seconds = result.predicted_allow_traffic.before_seconds,
        allow_traffic_after_seconds = result.predicted_allow_traffic.after_seconds,
        block_traffic_after_seconds = ?result.predicted_block_traffic.map(|b| b.after_seconds),
        "tuned"
    );
    Ok(result)
}

async fn restore(request: &Request, deps: &Deps) -> Result<RestoreReport, Error> {
    let pipeline = &request.pipeline;
    let source = restore_source(pipeline.tuning.as_ref());
    let mut report = RestoreReport {
        source,
        restored: Vec::new(),
        skipped: Vec::new(),
    };
    let mut first_error: Option<LbError> = None;
    match (source, &pipeline.tuning) {
        (RestoreSource::State, Some(tuning)) => {
            for snapshot in &tuning.snapshots {
                let arn = &snapshot.target_group_arn;
                let outcome = lb::restore_target_group(&deps.elbv2, snapshot).await;
                record(&mut report, &mut first_error, arn, outcome);
            }
        }
        _ => {
            let arns = match lb::target_group_arns(
                &deps.codedeploy,
                &deps.elbv2,
                &pipeline.input.application,
                &pipeline.input.deployment_group,
            )
            .await
            {
                Ok(arns) => arns,
                // No target group: nothing can have been tuned.
                Err(LbError::NoLoadBalancer { .. }) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            for arn in &arns {
                let outcome = lb::restore_recorded(&deps.elbv2, arn).await;
                record(&mut report, &mut first_error, arn, outcome);
            }
        }
    }
    if let Some(e) = first_error {
        // Every target group was attempted; the failure is reported so the
        // failure path (which restores from the tags) takes over.
        return Err(e.into());
    }
    tracing::info!(
        execution = %request.execution_name,
        source = ?report.source,
        restored = report.restored.len(),
        skipped = report.skipped.len(),
        "restored"
    );
    Ok(report)
}

fn record(
    report: &mut RestoreReport,
    first_error: &mut Option<LbError>,
    arn: &str,
    outcome: Result<RestoreOutcome, LbError>,
) {
    let skip = |reason| SkippedTargetGroup {
        target_group_arn: arn.to_string(),
        reason,
    };
    match outcome {
        Ok(RestoreOutcome::Restored) => report.restored.push(arn.to_string()),
        Ok(RestoreOutcome::AlreadyRestored) => {
            report.skipped.push(skip(SkipReason::AlreadyRestored))
        }
        Ok(RestoreOutcome::NotTuned) => report.skipped.push(skip(SkipReason::NotTuned)),
        Err(LbError::TargetGroupNotFound { .. }) => {
            report.skipped.push(skip(SkipReason::TargetGroupGone))
        }
        Err(e) => {
            tracing::error!(target_group = arn, error = %e, "restore failed");
            if first_error.is_none() {
                *first_error = Some(e);
            }
        }
    }
}
