//! CodeDeploy deployment writes, the one place greenlight makes them:
//! CreateDeployment (deployment-watcher `create`), ContinueDeployment and
//! PutLifecycleEventHookExecutionStatus (traffic-validator), StopDeployment
//! with rollback (the watcher's deadline, the validator's failed gate, the
//! failure runbook). Reading deployments is `crate::deployment` (one) and
//! `crate::deployment_list` (a group's).

use crate::AwsError;
use aws_sdk_codedeploy::types::{
    BundleType, DeploymentWaitType, LifecycleEventStatus, RevisionLocation, RevisionLocationType,
    S3Location,
};
use greenlight_core::model::Revision;

/// What StopDeployment answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopOutcome {
    /// Accepted; CodeDeploy's status (`Pending`, `Succeeded`) and message.
    Stopping { status: String, message: String },
    /// `DeploymentAlreadyCompletedException`.
    AlreadyCompleted,
}

/// StopDeployment with `autoRollbackEnabled`.
pub async fn stop_with_rollback(
    client: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
) -> Result<StopOutcome, AwsError> {
    match client
        .stop_deployment()
        .deployment_id(deployment_id)
        .auto_rollback_enabled(true)
        .send()
        .await
    {
        Ok(out) => Ok(StopOutcome::Stopping {
            status: out
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            message: out.status_message().unwrap_or_default().to_string(),
        }),
        Err(e) => {
            let err = AwsError::from_sdk("StopDeployment", deployment_id, &e);
            if err.has_code(&["DeploymentAlreadyCompletedException"])
                || e.as_service_error()
                    .is_some_and(|s| s.is_deployment_already_completed_exception())
            {
                Ok(StopOutcome::AlreadyCompleted)
            } else {
                Err(err)
            }
        }
    }
}

/// ContinueDeployment(`READY_WAIT`): a blue/green deployment waiting in
/// Ready moves on to rerouting traffic.
pub async fn continue_deployment(
    client: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
) -> Result<(), AwsError> {
    client
        .continue_deployment()
        .deployment_id(deployment_id)
        .deployment_wait_type(DeploymentWaitType::ReadyWait)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("ContinueDeployment", deployment_id, &e))?;
    Ok(())
}

/// PutLifecycleEventHookExecutionStatus: `succeeded` → `Succeeded`, else
/// `Failed`.
pub async fn put_hook_status(
    client: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
    hook_execution_id: &str,
    succeeded: bool,
) -> Result<(), AwsError> {
    let status = if succeeded {
        LifecycleEventStatus::Succeeded
    } else {
        LifecycleEventStatus::Failed
    };
    client
        .put_lifecycle_event_hook_execution_status()
        .deployment_id(deployment_id)
        .lifecycle_event_hook_execution_id(hook_execution_id)
        .status(status)
        .send()
        .await
        .map_err(|e| {
            AwsError::from_sdk("PutLifecycleEventHookExecutionStatus", deployment_id, &e)
        })?;
    Ok(())
}

/// A CreateDeployment request: an S3 zip revision to a deployment group.
#[derive(Debug, Clone, Copy)]
pub struct NewDeployment<'a> {
    pub application: &'a str,
    pub deployment_group: &'a str,
    pub revision: &'a Revision,
    pub deployment_config_name: &'a str,
    /// Names the execution, so a retried `create` finds the deployment.
    pub description: &'a str,
    pub ignore_application_stop_failures: bool,
}

/// Why CreateDeployment made no deployment. Each carries the AWS error
/// (operation, `application/group`, code, transient).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// `DeploymentLimitExceededException`: the group already has a deployment.
    #[error(transparent)]
    GroupBusy(AwsError),
    /// `ApplicationDoesNotExistException` / `DeploymentGroupDoesNotExistException`.
    #[error(transparent)]
    GroupNotFound(AwsError),
    /// `InvalidRevisionException` / `RevisionDoesNotExistException` /
    /// `RevisionRequiredException`.
    #[error(transparent)]
    RevisionRejected(AwsError),
    /// Any other refusal of the request (config, role, Auto Scaling group, ...).
    #[error(transparent)]
    Rejected(AwsError),
    /// Transient (throttling, 5xx, timeout), or an answer without an id.
    #[error(transparent)]
    Aws(AwsError),
}

/// CreateDeployment of `request`; answers the new deployment's id.
pub async fn create_deployment(
    client: &aws_sdk_codedeploy::Client,
    request: &NewDeployment<'_>,
) -> Result<String, CreateError> {
    let non_empty = |v: &Option<String>| {
        v.as_deref()
            .map(|s| s.trim().trim_matches('"'))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let revision = request.revision;
    let s3 = S3Location::builder()
        .bucket(&revision.bucket)
        .key(&revision.key)
        .bundle_type(BundleType::Zip)
        .set_version(non_empty(&revision.version))
        .set_e_tag(non_empty(&revision.etag))
        .build();
    let location = RevisionLocation::builder()
        .revision_type(RevisionLocationType::S3)
        .s3_location(s3)
        .build();
    let resource = format!("{}/{}", request.application, request.deployment_group);
    let out = client
        .create_deployment()
        .application_name(request.application)
        .deployment_group_name(request.deployment_group)
        .revision(location)
        .deployment_config_name(request.deployment_config_name)
        .description(request.description)
        .ignore_application_stop_failures(request.ignore_application_stop_failures)
        .send()
        .await
        .map_err(|e| {
            let aws = AwsError::from_sdk("CreateDeployment", &resource, &e);
            let Some(s) = e.as_service_error() else {
                return CreateError::Aws(aws);
            };
            if s.is_deployment_limit_exceeded_exception() {
                CreateError::GroupBusy(aws)
            } else if s.is_application_does_not_exist_exception()
                || s.is_deployment_group_does_not_exist_exception()
            {
                CreateError::GroupNotFound(aws)
            } else if s.is_invalid_revision_exception()
                || s.is_revision_does_not_exist_exception()
                || s.is_revision_required_exception()
            {
                CreateError::RevisionRejected(aws)
            } else if aws.transient || s.is_throttling_exception() {
                // Throttling or a 5xx: says nothing about the deployment group.
                CreateError::Aws(AwsError {
                    transient: true,
                    ..aws
                })
            } else {
                CreateError::Rejected(aws)
            }
        })?;
    out.deployment_id()
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            CreateError::Aws(AwsError::unexpected(
                "CreateDeployment",
                resource,
                "the answer has no deploymentId",
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codedeploy::config::retry::RetryConfig;
    use aws_sdk_codedeploy::operation::continue_deployment::ContinueDeploymentOutput;
    use aws_sdk_codedeploy::operation::create_deployment::{
        CreateDeploymentError, CreateDeploymentOutput,
    };
    use aws_sdk_codedeploy::operation::put_lifecycle_event_hook_execution_status::PutLifecycleEventHookExecutionStatusOutput;
    use aws_sdk_codedeploy::operation::stop_deployment::{
        StopDeploymentError, StopDeploymentOutput,
    };
    use aws_sdk_codedeploy::types::error::{
        DeploymentAlreadyCompletedException, DeploymentLimitExceededException,
        InvalidRevisionException,
    };
    use aws_sdk_codedeploy::types::StopStatus;
    use aws_sdk_codedeploy::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use crate::test_support::json_error as http;

    fn revision() -> Revision {
        Revision {
            bucket: "artifacts".into(),
            key: "shop/app-1.2.3.zip".into(),
            version: Some("\"v1\"".into()),
            etag: Some(" ".into()),
            label: "1.2.3".into(),
        }
    }

    fn request(revision: &Revision) -> NewDeployment<'_> {
        NewDeployment {
            application: "shop",
            deployment_group: "prod",
            revision,
            deployment_config_name: "CodeDeployDefault.OneAtATime",
            description: "greenlight execution gl-1",
            ignore_application_stop_failures: false,
        }
    }

    #[tokio::test]
    async fn create_sends_the_s3_revision_and_answers_the_id() {
        let rule = mock!(Client::create_deployment)
            .match_requests(|r| {
                let s3 = r.revision().and_then(|l| l.s3_location());
                r.application_name() == Some("shop")
                    && r.deployment_group_name() == Some("prod")
                    && r.description() == Some("greenlight execution gl-1")
                    && s3.and_then(|s| s.key()) == Some("shop/app-1.2.3.zip")
                    && s3.and_then(|s| s.version()) == Some("v1")
                    && s3.and_then(|s| s.e_tag()).is_none()
                    && s3.and_then(|s| s.bundle_type()) == Some(&BundleType::Zip)
            })
            .then_output(|| {
                CreateDeploymentOutput::builder()
                    .deployment_id("d-1")
                    .build()
            });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&rule]);
        let r = revision();
        assert_eq!(
            create_deployment(&client, &request(&r)).await,
            Ok("d-1".to_string())
        );
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn create_refusals_are_told_apart() {
        let r = revision();
        let busy = mock!(Client::create_deployment).then_error(|| {
            CreateDeploymentError::DeploymentLimitExceededException(
                DeploymentLimitExceededException::builder()
                    .message("busy")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&busy]);
        assert!(matches!(
            create_deployment(&client, &request(&r)).await,
            Err(CreateError::GroupBusy(e)) if e.resource == "shop/prod" && !e.transient
        ));
        let bad = mock!(Client::create_deployment).then_error(|| {
            CreateDeploymentError::InvalidRevisionException(
                InvalidRevisionException::builder()
                    .message("no zip")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&bad]);
        assert!(matches!(
            create_deployment(&client, &request(&r)).await,
            Err(CreateError::RevisionRejected(e)) if e.message.contains("no zip")
        ));
        let denied = mock!(Client::create_deployment)
            .then_http_response(|| http(400, "InvalidRoleException"));
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&denied]);
        let Err(CreateError::Rejected(e)) = create_deployment(&client, &request(&r)).await else {
            panic!("a permanent refusal is Rejected");
        };
        assert_eq!(
            (
                e.operation,
                e.resource.as_str(),
                e.code.as_deref(),
                e.transient
            ),
            (
                "CreateDeployment",
                "shop/prod",
                Some("InvalidRoleException"),
                false
            )
        );
        let throttled = mock!(Client::create_deployment)
            .then_http_response(|| http(400, "ThrottlingException"));
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&throttled], |c| c
            .retry_config(RetryConfig::standard().with_max_attempts(1)));
        let Err(CreateError::Aws(e)) = create_deployment(&client, &request(&r)).await else {
            panic!("throttling is a plain transient AWS error");
        };
        assert!(e.transient);
        assert_eq!(e.error_type(), greenlight_core::errors::AWS_TRANSIENT);
        let empty = mock!(Client::create_deployment)
            .then_output(|| CreateDeploymentOutput::builder().build());
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&empty]);
        assert!(matches!(
            create_deployment(&client, &request(&r)).await,
            Err(CreateError::Aws(e)) if !e.transient && e.message.contains("no deploymentId")
        ));
    }

    #[tokio::test]
    async fn stop_asks_for_rollback_and_takes_a_completed_deployment() {
        let ok = mock!(Client::stop_deployment)
            .match_requests(|r| {
                r.deployment_id() == Some("d-1") && r.auto_rollback_enabled() == Some(true)
            })
            .then_output(|| {
                StopDeploymentOutput::builder()
                    .status(StopStatus::Pending)
                    .status_message("stopping")
                    .build()
            });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&ok]);
        assert_eq!(
            stop_with_rollback(&client, "d-1").await,
            Ok(StopOutcome::Stopping {
                status: "Pending".into(),
                message: "stopping".into()
            })
        );
        let done = mock!(Client::stop_deployment).then_error(|| {
            StopDeploymentError::DeploymentAlreadyCompletedException(
                DeploymentAlreadyCompletedException::builder().build(),
            )
        });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&done]);
        assert_eq!(
            stop_with_rollback(&client, "d-1").await,
            Ok(StopOutcome::AlreadyCompleted)
        );
        let throttled =
            mock!(Client::stop_deployment).then_http_response(|| http(400, "ThrottlingException"));
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&throttled], |c| c
            .retry_config(RetryConfig::standard().with_max_attempts(1)));
        let e = stop_with_rollback(&client, "d-1").await.unwrap_err();
        assert!(e.transient, "{e}");
        assert_eq!(
            (e.operation, e.resource.as_str()),
            ("StopDeployment", "d-1")
        );
    }

    #[tokio::test]
    async fn continue_and_hook_status() {
        let cont = mock!(Client::continue_deployment)
            .match_requests(|r| {
                r.deployment_id() == Some("d-1")
                    && r.deployment_wait_type() == Some(&DeploymentWaitType::ReadyWait)
            })
            .then_output(|| ContinueDeploymentOutput::builder().build());
        let hook = mock!(Client::put_lifecycle_event_hook_execution_status)
            .match_requests(|r| {
                r.lifecycle_event_hook_execution_id() == Some("h-1")
                    && r.status() == Some(&LifecycleEventStatus::Failed)
            })
            .then_output(|| PutLifecycleEventHookExecutionStatusOutput::builder().build());
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&cont, &hook]);
        continue_deployment(&client, "d-1")
            .await
            .expect("continued");
        put_hook_status(&client, "d-1", "h-1", false)
            .await
            .expect("answered");
        assert_eq!((cont.num_calls(), hook.num_calls()), (1, 1));

        let throttled = mock!(Client::continue_deployment)
            .then_http_response(|| http(503, "ServiceUnavailable"));
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&throttled], |c| c
            .retry_config(RetryConfig::standard().with_max_attempts(1)));
        let e = continue_deployment(&client, "d-1").await.unwrap_err();
        assert!(e.transient, "{e}");
        let gone = mock!(Client::put_lifecycle_event_hook_execution_status)
            .then_http_response(|| http(400, "LifecycleEventAlreadyCompletedException"));
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&gone]);
        let e = put_hook_status(&client, "d-1", "h-1", true)
            .await
            .unwrap_err();
        assert_eq!(
            (
                e.operation,
                e.resource.as_str(),
                e.code.as_deref(),
                e.transient
            ),
            (
                "PutLifecycleEventHookExecutionStatus",
                "d-1",
                Some("LifecycleEventAlreadyCompletedException"),
                false
            )
        );
    }
}
