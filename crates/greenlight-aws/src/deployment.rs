//! Reading one CodeDeploy deployment into the core's [`DeploymentView`].
//!
//! `GetDeployment` gives the deployment itself; `ListDeploymentTargets`
//! (paginated with `nextToken`) gives its target ids; and
//! `BatchGetDeploymentTargets` (at most [`BATCH_GET_TARGETS_MAX`] ids per call)
//! gives each EC2 instance target with its fleet label (`Blue` / `Green`) and
//! lifecycle events (start/end time, status, diagnostics).
//!
//! Used by deployment-watcher (status), traffic-validator (green instance
//! ids; in ECS hook mode the green task set, [`ecs_task_sets`]) and
//! failure-handler (diagnosis).

use aws_sdk_codedeploy::config::http::HttpResponse;
use aws_sdk_codedeploy::error::SdkError;
use aws_sdk_codedeploy::types::{
    DeploymentInfo, DeploymentTarget, InstanceTarget, LifecycleEvent, LifecycleEventStatus,
    TargetLabel, TargetStatus,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::DateTime;
use greenlight_core::errors;
use greenlight_core::hook::TaskSetView;
use greenlight_core::model::{
    DeploymentErrorInfo, DeploymentView, EpochMillis, FleetLabel, InstanceTargetView,
    LifecycleDiagnostics, LifecycleEventView, LifecycleStatus,
};
use greenlight_core::watch::parse_deployment_status;

use crate::error::AwsError;

/// `BatchGetDeploymentTargets` accepts at most 25 target ids per call.
pub const BATCH_GET_TARGETS_MAX: usize = 25;

/// Why a deployment could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// `DeploymentDoesNotExistException` / `InvalidDeploymentIdException`.
    #[error("CodeDeploy deployment {deployment_id} does not exist in this account and region ({detail}); check the deployment id")]
    NotFound {
        deployment_id: String,
        detail: String,
    },
    /// Any other service or transport error, or an answer greenlight cannot
    /// interpret (a permanent [`AwsError`]).
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl ReadError {
    /// True when the deployment does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::NotFound { .. })
    }

    /// True when the read may succeed if tried again later (throttling, 5xx,
    /// timeout): greenlight could not read the deployment, which says
    /// nothing about the deployment itself.
    pub fn is_transient(&self) -> bool {
        matches!(self, ReadError::Aws(e) if e.transient)
    }

    /// The Lambda `errorType`: [`errors::DEPLOYMENT_NOT_FOUND`], or the AWS
    /// error's ([`errors::AWS_TRANSIENT`] / [`errors::AWS_ERROR`]).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => errors::DEPLOYMENT_NOT_FOUND,
            Self::Aws(e) => e.error_type(),
        }
    }

    /// As a plain [`AwsError`] (a missing deployment is a permanent error of
    /// `operation` on it).
    pub fn into_aws(self, operation: &'static str) -> AwsError {
        match self {
            Self::NotFound {
                deployment_id,
                detail,
            } => AwsError::unexpected(
                operation,
                deployment_id,
                format!("the deployment does not exist ({detail})"),
            ),
            Self::Aws(e) => e,
        }
    }
}

fn classify<E>(
    operation: &'static str,
    deployment_id: &str,
    err: &SdkError<E, HttpResponse>,
    not_found: bool,
) -> ReadError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let aws = AwsError::from_sdk(operation, deployment_id, err);
    if not_found {
        ReadError::NotFound {
            deployment_id: deployment_id.to_string(),
            detail: aws.message,
        }
    } else {
        ReadError::Aws(aws)
    }
}

fn unexpected(deployment_id: &str, problem: impl Into<String>) -> ReadError {
    ReadError::Aws(AwsError::unexpected(
        "GetDeployment",
        deployment_id,
        format!(
            "CodeDeploy answered something greenlight cannot interpret: {}",
            problem.into()
        ),
    ))
}

/// Reads deployment `deployment_id` and all its instance targets.
///
/// A deployment that has not started yet (`Created`/`Queued`, CodeDeploy
/// answers `DeploymentNotStartedException` to ListDeploymentTargets) has no
/// targets: the view's `targets` is empty.
pub async fn read_deployment(
    client: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
) -> Result<DeploymentView, ReadError> {
    let info = get_deployment_info(client, deployment_id).await?;
    let targets = read_targets(client, deployment_id).await?;
    deployment_view(deployment_id, &info, &targets)
}

/// GetDeployment alone: the deployment without its targets (`targets` is
/// empty), for listings that need status, creator, description and times.
pub async fn read_deployment_summary(
    client: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
) -> Result<DeploymentView, ReadError> {
    let info = get_deployment_info(client, deployment_id).await?;
    deployment_view(deployment_id, &info, &[])
}

/// GetDeployment: just the deployment's status (the failure handler waits on
/// CodeDeploy's rollback deployment with it).
pub async fn read_status(
    client: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
) -> Result<greenlight_core::model::DeploymentStatus, ReadError> {
    let info = get_deployment_info(client, deployment_id).await?;
    let status = info.status().map(|s| s.as_str()).unwrap_or_default();
    parse_deployment_status(status).map_err(|e| {
        ReadError::Aws(AwsError::unexpected(
            "GetDeployment",
            deployment_id,
            e.to_string(),
        ))
    })
}

/// A deployment as the traffic validator's hook mode first reads it
/// (GetDeployment): what decides what to probe.
#[derive(Debug, Clone)]
pub struct HookDeployment {
    pub deployment_id: String,
    /// `computePlatform` (`Server`, `ECS`, `Lambda`), when CodeDeploy says.
    pub compute_platform: Option<String>,
    /// The S3 revision's key, when the revision is in S3.
    pub s3_key: Option<String>,
    info: DeploymentInfo,
}

/// GetDeployment for the hook mode: platform and S3 key.
pub async fn read_hook_deployment(
    client: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
) -> Result<HookDeployment, ReadError> {
    let info = get_deployment_info(client, deployment_id).await?;
    Ok(HookDeployment {
        deployment_id: deployment_id.to_string(),
        compute_platform: info.compute_platform().map(|p| p.as_str().to_string()),
        s3_key: info
            .revision()
            .and_then(|r| r.s3_location())
            .and_then(|s3| s3.key())
            .map(str::to_string),
        info,
    })
}

/// The hook deployment's view with its instance targets (read now).
pub async fn read_hook_view(
    client: &aws_sdk_codedeploy::Client,
    deployment: &HookDeployment,
) -> Result<DeploymentView, ReadError> {
    let targets = read_targets(client, &deployment.deployment_id).await?;
    deployment_view(&deployment.deployment_id, &deployment.info, &targets)
}

/// The ECS task sets of deployment `deployment_id`'s targets ([`ecs_task_sets`]).
pub async fn read_task_sets(
    client: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
) -> Result<Vec<TaskSetView>, ReadError> {
    Ok(ecs_task_sets(&read_targets(client, deployment_id).await?))
}

/// GetDeployment's `deploymentInfo` (a missing deployment is `NotFound`).
pub async fn get_deployment_info(
    client: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
) -> Result<DeploymentInfo, ReadError> {
    let got = client
        .get_deployment()
        .deployment_id(deployment_id)
        .customize()
        .config_override(crate::codedeploy_read_override(client))
        .send()
        .await
        .map_err(|e| {
            let missing = e.as_service_error().is_some_and(|s| {
                s.is_deployment_does_not_exist_exception() || s.is_invalid_deployment_id_exception()
            });
            classify("GetDeployment", deployment_id, &e, missing)
        })?;
    got.deployment_info()
        .cloned()
        .ok_or_else(|| unexpected(deployment_id, "no deploymentInfo in the answer"))
}

/// Every target of the deployment, of any kind (ListDeploymentTargets, then
/// BatchGetDeploymentTargets). Empty when the deployment has not started.
pub async fn read_targets(
    client: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
) -> Result<Vec<DeploymentTarget>, ReadError> {
    let target_ids = list_target_ids(client, deployment_id).await?;
    batch_get_targets(client, deployment_id, &target_ids).await
}

/// The ECS task sets of the deployment's ECS targets
/// (`ecsTarget.taskSetsInfo[]`), for the traffic validator's hook mode.
/// Other kinds of targets have none.
pub fn ecs_task_sets(targets: &[DeploymentTarget]) -> Vec<TaskSetView> {
    targets
        .iter()
        .filter_map(|t| t.ecs_target())
        .flat_map(|ecs| ecs.task_sets_info())
        .map(|set| TaskSetView {
            identifier: set
                .identifer()
                .filter(|i| !i.is_empty())
                .map(str::to_string),
            label: set.task_set_label().and_then(fleet_label),
            target_group: set
                .target_group()
                .and_then(|g| g.name())
                .filter(|n| !n.is_empty())
                .map(str::to_string),
        })
        .collect()
}

/// All target ids of a deployment (ListDeploymentTargets, every page).
/// Empty when the deployment has not started yet.
pub async fn list_target_ids(
    client: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
) -> Result<Vec<String>, ReadError> {
    let mut ids = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let answer = client
            .list_deployment_targets()
            .deployment_id(deployment_id)
            .set_next_token(next_token.take())
            .customize()
            .config_override(crate::codedeploy_read_override(client))
            .send()
            .await;
        let page = match answer {
            Ok(page) => page,
            Err(e) => {
                let service = e.as_service_error();
                if service.is_some_and(|s| s.is_deployment_not_started_exception()) {
                    return Ok(Vec::new());
                }
                let missing = service.is_some_and(|s| {
                    s.is_deployment_does_not_exist_exception()
                        || s.is_invalid_deployment_id_exception()
                });
                return Err(classify(
                    "ListDeploymentTargets",
                    deployment_id,
                    &e,
                    missing,
                ));
            }
        };
        ids.extend(page.target_ids().iter().cloned());
        match page.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
            _ => break,
        }
    }
    Ok(ids)
}

/// The deployment targets with these ids (BatchGetDeploymentTargets, in
/// chunks of [`BATCH_GET_TARGETS_MAX`]).
pub async fn batch_get_targets(
    client: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
    target_ids: &[String],
) -> Result<Vec<DeploymentTarget>, ReadError> {
    let mut targets = Vec::with_capacity(target_ids.len());
    for chunk in target_ids.chunks(BATCH_GET_TARGETS_MAX) {
        let answer = client
            .batch_get_deployment_targets()
            .deployment_id(deployment_id)
            .set_target_ids(Some(chunk.to_vec()))
            .customize()
            .config_override(crate::codedeploy_read_override(client))
            .send()
            .await;
        match answer {
            Ok(out) => targets.extend(out.deployment_targets().iter().cloned()),
            Err(e) => {
                let service = e.as_service_error();
                if service.is_some_and(|s| s.is_deployment_not_started_exception()) {
                    continue;
                }
                let missing = service.is_some_and(|s| {
                    s.is_deployment_does_not_exist_exception()
                        || s.is_invalid_deployment_id_exception()
                });
                return Err(classify(
                    "BatchGetDeploymentTargets",
                    deployment_id,
                    &e,
                    missing,
                ));
            }
        }
    }
    Ok(targets)
}

/// Maps a GetDeployment `deploymentInfo` and its targets to the core view.
/// Non-instance targets (Lambda, ECS, CloudFormation) are ignored.
pub fn deployment_view(
    deployment_id: &str,
    info: &DeploymentInfo,
    targets: &[DeploymentTarget],
) -> Result<DeploymentView, ReadError> {
    let status_text = info
        .status()
        .map(|s| s.as_str())
        .ok_or_else(|| unexpected(deployment_id, "deploymentInfo has no status"))?;
    let status = parse_deployment_status(status_text)
        .map_err(|e| unexpected(deployment_id, e.to_string()))?;
    let error = info.error_information().and_then(|e| {
        let code = e.code().map(|c| c.as_str().to_string());
        let message = e.message().map(str::to_string);
        if code.is_none() && message.is_none() {
            None
        } else {
            Some(DeploymentErrorInfo {
                code: code.unwrap_or_default(),
                message: message.unwrap_or_default(),
            })
        }
    });
    Ok(DeploymentView {
        deployment_id: info.deployment_id().unwrap_or(deployment_id).to_string(),
        application: info.application_name().unwrap_or_default().to_string(),
        deployment_group: info.deployment_group_name().unwrap_or_default().to_string(),
        status,
        description: info.description().map(str::to_string),
        created_at_ms: millis(info.create_time()),
        completed_at_ms: millis(info.complete_time()),
        error,
        rollback_deployment_id: info
            .rollback_info()
            .and_then(|r| r.rollback_deployment_id())
            .filter(|id| !id.is_empty())
            .map(str::to_string),
        creator: info.creator().map(|c| c.as_str().to_string()),
        rollback_triggering_deployment_id: info
            .rollback_info()
            .and_then(|r| r.rollback_triggering_deployment_id())
            .filter(|id| !id.is_empty())
            .map(str::to_string),
        original_auto_scaling_groups: info
            .target_instances()
            .map(|t| t.auto_scaling_groups().to_vec())
            .unwrap_or_default(),
        termination_wait_started: Some(info.instance_termination_wait_time_started()),
        targets: targets
            .iter()
            .filter_map(|t| t.instance_target())
            .map(instance_view)
            .collect(),
    })
}

fn millis(t: Option<&DateTime>) -> Option<EpochMillis> {
    t.and_then(|t| t.to_millis().ok())
}

fn instance_view(t: &InstanceTarget) -> InstanceTargetView {
    let instance_id = t
        .target_id()
        .map(str::to_string)
        .or_else(|| {
            t.target_arn()
                .and_then(|arn| arn.rsplit('/').next())
                .map(str::to_string)
        })
        .unwrap_or_default();
    InstanceTargetView {
        instance_id,
        label: t.instance_label().and_then(fleet_label),
        status: t
            .status()
            .map(target_status)
            .unwrap_or(LifecycleStatus::Unknown),
        lifecycle_events: t.lifecycle_events().iter().map(event_view).collect(),
    }
}

/// `Blue` / `Green` (the API's TargetLabel values; upper case accepted too).
fn fleet_label(label: &TargetLabel) -> Option<FleetLabel> {
    match label.as_str().to_ascii_lowercase().as_str() {
        "blue" => Some(FleetLabel::Blue),
        "green" => Some(FleetLabel::Green),
        _ => None,
    }
}

/// A target's status. `Ready` (green installed, waiting for traffic) is not
/// finished, so it reads as `InProgress`.
fn target_status(s: &TargetStatus) -> LifecycleStatus {
    match s.as_str() {
        "Pending" => LifecycleStatus::Pending,
        "InProgress" | "Ready" => LifecycleStatus::InProgress,
        "Succeeded" => LifecycleStatus::Succeeded,
        "Failed" => LifecycleStatus::Failed,
        "Skipped" => LifecycleStatus::Skipped,
        _ => LifecycleStatus::Unknown,
    }
}

fn event_status(s: &LifecycleEventStatus) -> LifecycleStatus {
    match s.as_str() {
        "Pending" => LifecycleStatus::Pending,
        "InProgress" => LifecycleStatus::InProgress,
        "Succeeded" => LifecycleStatus::Succeeded,
        "Failed" => LifecycleStatus::Failed,
        "Skipped" => LifecycleStatus::Skipped,
        _ => LifecycleStatus::Unknown,
    }
}

fn event_view(e: &LifecycleEvent) -> LifecycleEventView {
    LifecycleEventView {
        name: e.lifecycle_event_name().unwrap_or_default().to_string(),
        status: e
            .status()
            .map(event_status)
            .unwrap_or(LifecycleStatus::Unknown),
        started_at_ms: millis(e.start_time()),
        ended_at_ms: millis(e.end_time()),
        diagnostics: e.diagnostics().map(|d| LifecycleDiagnostics {
            error_code: d
                .error_code()
                .map(|c| c.as_str().to_string())
                .unwrap_or_else(|| "UnknownError".to_string()),
            script_name: d
                .script_name()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            message: d.message().unwrap_or_default().to_string(),
            log_tail: d.log_tail().filter(|s| !s.is_empty()).map(str::to_string),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codedeploy::operation::batch_get_deployment_targets::BatchGetDeploymentTargetsOutput;
    use aws_sdk_codedeploy::operation::get_deployment::{GetDeploymentError, GetDeploymentOutput};
    use aws_sdk_codedeploy::operation::list_deployment_targets::{
        ListDeploymentTargetsError, ListDeploymentTargetsOutput,
    };
    use aws_sdk_codedeploy::types::error::{
        DeploymentDoesNotExistException, DeploymentNotStartedException,
    };
    use aws_sdk_codedeploy::types::{
        DeploymentStatus as SdkStatus, Diagnostics, ErrorCode, ErrorInformation,
        LifecycleErrorCode, RollbackInfo, TargetInstances,
    };
    use aws_sdk_codedeploy::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use greenlight_core::model::DeploymentStatus;

    fn t(secs: i64) -> DateTime {
        DateTime::from_secs(secs)
    }

    fn info(status: SdkStatus) -> DeploymentInfo {
        DeploymentInfo::builder()
            .deployment_id("d-ABC123")
            .application_name("shop")
            .deployment_group_name("shop-prod")
            .status(status)
            .description("greenlight execution ex-1 (x)")
            .create_time(t(1_700_000_000))
            .target_instances(
                TargetInstances::builder()
                    .auto_scaling_groups("shop-asg-blue")
                    .build(),
            )
            .build()
    }

    fn instance(id: &str, label: TargetLabel, events: Vec<LifecycleEvent>) -> DeploymentTarget {
        let mut b = InstanceTarget::builder()
            .deployment_id("d-ABC123")
            .target_id(id)
            .target_arn(format!("arn:aws:ec2:us-east-1:123456789012:instance/{id}"))
            .status(TargetStatus::InProgress)
            .instance_label(label);
        for e in events {
            b = b.lifecycle_events(e);
        }
        DeploymentTarget::builder()
            .instance_target(b.build())
            .build()
    }

    fn event(
        name: &str,
        status: LifecycleEventStatus,
        start: Option<i64>,
        end: Option<i64>,
    ) -> LifecycleEvent {
        let mut b = LifecycleEvent::builder()
            .lifecycle_event_name(name)
            .status(status);
        if let Some(s) = start {
            b = b.start_time(t(s));
        }
        if let Some(e) = end {
            b = b.end_time(t(e));
        }
        b.build()
    }

    #[test]
    fn maps_the_creator_and_the_triggering_deployment_of_a_rollback() {
        let mut i = info(SdkStatus::Failed);
        i.creator = Some(aws_sdk_codedeploy::types::DeploymentCreator::CodeDeployRollback);
        i.rollback_info = Some(
            RollbackInfo::builder()
                .rollback_triggering_deployment_id("d-ORIGINAL")
                .build(),
        );
        let v = deployment_view("d-ROLLBACK", &i, &[]).unwrap();
        assert_eq!(v.creator.as_deref(), Some("codeDeployRollback"));
        assert_eq!(
            v.rollback_triggering_deployment_id.as_deref(),
            Some("d-ORIGINAL")
        );
        assert_eq!(v.rollback_deployment_id, None);
    }

    #[test]
    fn maps_info_targets_and_events() {
        let mut i = info(SdkStatus::Failed);
        i.error_information = Some(
            ErrorInformation::builder()
                .code(ErrorCode::HealthConstraints)
                .message("Script at specified location: scripts/start.sh run as user root failed with exit code 1")
                .build(),
        );
        i.rollback_info = Some(
            RollbackInfo::builder()
                .rollback_deployment_id("d-ROLLBACK")
                .build(),
        );
        i.instance_termination_wait_time_started = false;
        let failed = LifecycleEvent::builder()
            .lifecycle_event_name("ApplicationStart")
            .status(LifecycleEventStatus::Failed)
            .start_time(t(1_700_000_100))
            .end_time(t(1_700_000_110))
            .diagnostics(
                Diagnostics::builder()
                    .error_code(LifecycleErrorCode::ScriptFailed)
                    .script_name("scripts/start.sh")
                    .message(
                        "Script at specified location: scripts/start.sh failed with exit code 1",
                    )
                    .log_tail("[stderr] boom")
                    .build(),
            )
            .build();
        let targets = vec![
            instance(
                "i-green1",
                TargetLabel::Green,
                vec![
                    event(
                        "ApplicationStop",
                        LifecycleEventStatus::Succeeded,
                        Some(1_700_000_050),
                        Some(1_700_000_051),
                    ),
                    failed,
                    event("ValidateService", LifecycleEventStatus::Pending, None, None),
                ],
            ),
            instance("i-blue1", TargetLabel::Blue, vec![]),
        ];
        let v = deployment_view("d-ABC123", &i, &targets).unwrap();
        assert_eq!(v.deployment_id, "d-ABC123");
        assert_eq!(v.application, "shop");
        assert_eq!(v.deployment_group, "shop-prod");
        assert_eq!(v.status, DeploymentStatus::Failed);
        assert_eq!(v.created_at_ms, Some(1_700_000_000_000));
        assert_eq!(v.completed_at_ms, None);
        assert_eq!(
            v.description.as_deref(),
            Some("greenlight execution ex-1 (x)")
        );
        let err = v.error.unwrap();
        assert_eq!(err.code, "HEALTH_CONSTRAINTS");
        assert!(err.message.contains("exit code 1"));
        assert_eq!(v.rollback_deployment_id.as_deref(), Some("d-ROLLBACK"));
        assert_eq!(v.rollback_triggering_deployment_id, None);
        assert_eq!(
            v.original_auto_scaling_groups,
            vec!["shop-asg-blue".to_string()]
        );
        assert_eq!(v.termination_wait_started, Some(false));
        assert_eq!(v.targets.len(), 2);
        let g = &v.targets[0];
        assert_eq!(g.instance_id, "i-green1");
        assert_eq!(g.label, Some(FleetLabel::Green));
        assert_eq!(g.status, LifecycleStatus::InProgress);
        assert_eq!(g.lifecycle_events.len(), 3);
        assert_eq!(g.lifecycle_events[0].started_at_ms, Some(1_700_000_050_000));
        assert_eq!(g.lifecycle_events[0].ended_at_ms, Some(1_700_000_051_000));
        let d = g.lifecycle_events[1].diagnostics.as_ref().unwrap();
        assert_eq!(d.error_code, "ScriptFailed");
        assert_eq!(d.script_name.as_deref(), Some("scripts/start.sh"));
        assert_eq!(d.log_tail.as_deref(), Some("[stderr] boom"));
        assert_eq!(g.lifecycle_events[1].status, LifecycleStatus::Failed);
        assert_eq!(g.lifecycle_events[2].status, LifecycleStatus::Pending);
        assert_eq!(g.lifecycle_events[2].started_at_ms, None);
        assert_eq!(v.targets[1].label, Some(FleetLabel::Blue));
    }

    #[test]
    fn labels_and_statuses_map() {
        assert_eq!(
            fleet_label(&TargetLabel::from("BLUE")),
            Some(FleetLabel::Blue)
        );
        assert_eq!(
            fleet_label(&TargetLabel::from("Green")),
            Some(FleetLabel::Green)
        );
        assert_eq!(fleet_label(&TargetLabel::from("Purple")), None);
        assert_eq!(
            target_status(&TargetStatus::Ready),
            LifecycleStatus::InProgress
        );
        assert_eq!(
            target_status(&TargetStatus::Skipped),
            LifecycleStatus::Skipped
        );
        assert_eq!(
            target_status(&TargetStatus::from("Unknown")),
            LifecycleStatus::Unknown
        );
        assert_eq!(
            event_status(&LifecycleEventStatus::Succeeded),
            LifecycleStatus::Succeeded
        );
        assert_eq!(
            event_status(&LifecycleEventStatus::from("Weird")),
            LifecycleStatus::Unknown
        );
    }

    #[test]
    fn missing_or_unknown_status_is_unexpected() {
        let mut i = info(SdkStatus::Ready);
        i.status = None;
        let e = deployment_view("d-1", &i, &[]).unwrap_err();
        assert_eq!(e.error_type(), errors::AWS_ERROR);
        assert!(e.to_string().contains("no status"), "{e}");
        i.status = Some(SdkStatus::from("Exploded"));
        let e = deployment_view("d-1", &i, &[]).unwrap_err();
        assert!(e.to_string().contains("Exploded"), "{e}");
    }

    #[tokio::test]
    async fn summary_reads_get_deployment_only() {
        let get = mock!(Client::get_deployment)
            .match_requests(|r| r.deployment_id() == Some("d-ABC123"))
            .then_output(|| {
                GetDeploymentOutput::builder()
                    .deployment_info(info(SdkStatus::Succeeded))
                    .build()
            });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&get]);
        let v = read_deployment_summary(&client, "d-ABC123")
            .await
            .expect("summary");
        assert_eq!(v.status, DeploymentStatus::Succeeded);
        assert_eq!(
            v.description.as_deref(),
            Some("greenlight execution ex-1 (x)")
        );
        assert!(v.targets.is_empty());
        assert_eq!(get.num_calls(), 1);
    }

    #[tokio::test]
    async fn reads_all_pages_and_chunks_of_25() {
        let get = mock!(Client::get_deployment)
            .match_requests(|r| r.deployment_id() == Some("d-ABC123"))
            .then_output(|| {
                GetDeploymentOutput::builder()
                    .deployment_info(info(SdkStatus::InProgress))
                    .build()
            });
        // 30 ids over two pages.
        let list = mock!(Client::list_deployment_targets).then_compute_output(|r| {
            if r.next_token().is_none() {
                ListDeploymentTargetsOutput::builder()
                    .set_target_ids(Some((0..20).map(|i| format!("i-{i:02}")).collect()))
                    .next_token("page2")
                    .build()
            } else {
                ListDeploymentTargetsOutput::builder()
                    .set_target_ids(Some((20..30).map(|i| format!("i-{i:02}")).collect()))
                    .build()
            }
        });
        let batch = mock!(Client::batch_get_deployment_targets).then_compute_output(|r| {
            let ids = r.target_ids();
            assert!(ids.len() <= BATCH_GET_TARGETS_MAX, "batch of {}", ids.len());
            let mut out = BatchGetDeploymentTargetsOutput::builder();
            for id in ids {
                out = out.deployment_targets(instance(id, TargetLabel::Green, vec![]));
            }
            out.build()
        });
        let client = mock_client!(
            aws_sdk_codedeploy,
            RuleMode::MatchAny,
            [&get, &list, &batch]
        );
        let v = read_deployment(&client, "d-ABC123").await.unwrap();
        assert_eq!(v.targets.len(), 30);
        assert_eq!(v.targets[29].instance_id, "i-29");
        assert_eq!(list.num_calls(), 2);
        assert_eq!(batch.num_calls(), 2);
    }

    #[test]
    fn ecs_task_sets_are_read_from_ecs_targets_only() {
        use aws_sdk_codedeploy::types::{EcsTarget, EcsTaskSet, TargetGroupInfo};
        let set = |id: &str, label: TargetLabel, tg: Option<&str>| {
            let mut b = EcsTaskSet::builder().identifer(id).task_set_label(label);
            if let Some(tg) = tg {
                b = b.target_group(TargetGroupInfo::builder().name(tg).build());
            }
            b.build()
        };
        let ecs = DeploymentTarget::builder()
            .ecs_target(
                EcsTarget::builder()
                    .target_id("cluster:service")
                    .task_sets_info(set("ecs-svc/1", TargetLabel::Blue, Some("tg-blue")))
                    .task_sets_info(set("ecs-svc/2", TargetLabel::Green, Some("tg-green")))
                    .task_sets_info(set("ecs-svc/3", TargetLabel::from("Purple"), None))
                    .build(),
            )
            .build();
        let targets = vec![instance("i-1", TargetLabel::Green, vec![]), ecs];
        assert_eq!(
            ecs_task_sets(&targets),
            vec![
                TaskSetView {
                    identifier: Some("ecs-svc/1".into()),
                    label: Some(FleetLabel::Blue),
                    target_group: Some("tg-blue".into()),
                },
                TaskSetView {
                    identifier: Some("ecs-svc/2".into()),
                    label: Some(FleetLabel::Green),
                    target_group: Some("tg-green".into()),
                },
                TaskSetView {
                    identifier: Some("ecs-svc/3".into()),
                    label: None,
                    target_group: None,
                },
            ]
        );
        assert!(ecs_task_sets(&targets[..1]).is_empty());
    }

    #[tokio::test]
    async fn not_started_has_no_targets() {
        let get = mock!(Client::get_deployment).then_output(|| {
            GetDeploymentOutput::builder()
                .deployment_info(info(SdkStatus::Queued))
                .build()
        });
        let list = mock!(Client::list_deployment_targets).then_error(|| {
            ListDeploymentTargetsError::DeploymentNotStartedException(
                DeploymentNotStartedException::builder()
                    .message("not started")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&get, &list]);
        let v = read_deployment(&client, "d-ABC123").await.unwrap();
        assert_eq!(v.status, DeploymentStatus::Queued);
        assert!(v.targets.is_empty());
    }

    /// A client like the functions' (standard retries, [`crate::MAX_ATTEMPTS`]
    /// attempts), with millisecond backoff so the test runs fast.
    fn retrying_client(rules: &[&aws_smithy_mocks::Rule]) -> Client {
        use aws_sdk_codedeploy::config::retry::RetryConfig;
        use std::time::Duration;
        mock_client!(aws_sdk_codedeploy, RuleMode::Sequential, rules, |c| c
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(crate::MAX_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(1))
                    .with_max_backoff(Duration::from_millis(2))
            ))
    }

    fn throttled() -> aws_sdk_codedeploy::config::http::HttpResponse {
        aws_sdk_codedeploy::config::http::HttpResponse::new(
            400.try_into().unwrap(),
            aws_smithy_types::body::SdkBody::from(
                r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
            ),
        )
    }

    #[tokio::test]
    async fn a_throttled_read_is_retried_past_the_clients_attempts() {
        // Throttled on more attempts than the client's own MAX_ATTEMPTS: the
        // read still succeeds (READ_MAX_ATTEMPTS), where any other call of
        // the same client would have given up.
        let throttled_times = crate::READ_MAX_ATTEMPTS as usize - 1;
        assert!(throttled_times as u32 > crate::MAX_ATTEMPTS);
        let get = mock!(Client::get_deployment)
            .sequence()
            .http_response(throttled)
            .times(throttled_times)
            .output(|| {
                GetDeploymentOutput::builder()
                    .deployment_info(info(SdkStatus::Ready))
                    .build()
            })
            .build();
        let client = retrying_client(&[&get]);
        let view = read_deployment_summary(&client, "d-ABC123").await.unwrap();
        assert_eq!(view.status, DeploymentStatus::Ready);
        assert_eq!(get.num_calls(), throttled_times + 1);
    }

    #[tokio::test]
    async fn a_read_throttled_on_every_attempt_is_transient() {
        let get = mock!(Client::get_deployment)
            .sequence()
            .http_response(throttled)
            .times(crate::READ_MAX_ATTEMPTS as usize + 5)
            .build();
        let client = retrying_client(&[&get]);
        let e = read_deployment_summary(&client, "d-ABC123")
            .await
            .unwrap_err();
        assert_eq!(
            e.error_type(),
            greenlight_core::errors::AWS_TRANSIENT,
            "{e}"
        );
        assert_eq!(get.num_calls(), crate::READ_MAX_ATTEMPTS as usize);
    }

    #[tokio::test]
    async fn the_target_listings_are_patient_reads_too() {
        let get = mock!(Client::get_deployment)
            .sequence()
            .output(|| {
                GetDeploymentOutput::builder()
                    .deployment_info(info(SdkStatus::InProgress))
                    .build()
            })
            .build();
        let list = mock!(Client::list_deployment_targets)
            .sequence()
            .http_response(throttled)
            .times(crate::MAX_ATTEMPTS as usize + 1)
            .output(|| {
                ListDeploymentTargetsOutput::builder()
                    .target_ids("i-green1")
                    .build()
            })
            .build();
        let batch = mock!(Client::batch_get_deployment_targets)
            .sequence()
            .http_response(throttled)
            .times(crate::MAX_ATTEMPTS as usize + 1)
            .output(|| BatchGetDeploymentTargetsOutput::builder().build())
            .build();
        let client = retrying_client(&[&get, &list, &batch]);
        read_deployment(&client, "d-ABC123").await.unwrap();
        assert_eq!(list.num_calls(), crate::MAX_ATTEMPTS as usize + 2);
        assert_eq!(batch.num_calls(), crate::MAX_ATTEMPTS as usize + 2);
    }

    #[test]
    fn reads_get_more_attempts_unless_the_client_makes_one() {
        assert_eq!(crate::read_attempts(1), 1);
        assert_eq!(crate::read_attempts(0), 0);
        assert_eq!(
            crate::read_attempts(crate::MAX_ATTEMPTS),
            crate::READ_MAX_ATTEMPTS
        );
        assert_eq!(crate::read_attempts(2), crate::READ_MAX_ATTEMPTS);
        assert_eq!(crate::read_attempts(25), 25);
    }

    #[tokio::test]
    async fn missing_deployment_is_not_found() {
        let get = mock!(Client::get_deployment).then_error(|| {
            GetDeploymentError::DeploymentDoesNotExistException(
                DeploymentDoesNotExistException::builder()
                    .message("no such deployment")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&get]);
        let e = read_deployment(&client, "d-NOPE").await.unwrap_err();
        assert!(e.is_not_found());
        assert!(e.to_string().contains("d-NOPE"), "{e}");
        assert!(e.to_string().contains("no such deployment"), "{e}");
    }
}
