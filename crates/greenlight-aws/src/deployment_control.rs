//! CodeDeploy writes and group reads of the failure runbook: stop a
//! deployment with rollback, read and set the group's Auto Scaling groups,
//! list the group's deployments (to find one a dead task left behind).
//! (Reading one deployment is `crate::deployment`.)

use crate::AwsError;
use aws_sdk_codedeploy::types::TimeRange;
use aws_smithy_types::DateTime;
use greenlight_core::model::EpochMillis;
use greenlight_core::runbook::DeploymentSummary;

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

/// GetDeploymentGroup `autoScalingGroups` (names).
pub async fn group_auto_scaling_groups(
    client: &aws_sdk_codedeploy::Client,
    application: &str,
    group: &str,
) -> Result<Vec<String>, AwsError> {
    let resource = format!("{application}/{group}");
    let out = client
        .get_deployment_group()
        .application_name(application)
        .deployment_group_name(group)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("GetDeploymentGroup", &resource, &e))?;
    Ok(out
        .deployment_group_info()
        .map(|info| {
            info.auto_scaling_groups()
                .iter()
                .filter_map(|a| a.name())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default())
}

/// UpdateDeploymentGroup `autoScalingGroups = asgs`.
pub async fn set_group_auto_scaling_groups(
    client: &aws_sdk_codedeploy::Client,
    application: &str,
    group: &str,
    asgs: &[String],
) -> Result<(), AwsError> {
    let resource = format!("{application}/{group}");
    client
        .update_deployment_group()
        .application_name(application)
        .current_deployment_group_name(group)
        .set_auto_scaling_groups(Some(asgs.to_vec()))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("UpdateDeploymentGroup", &resource, &e))?;
    Ok(())
}

/// At most this many ListDeployments pages are read.
pub const MAX_LIST_PAGES: usize = 5;
/// At most this many deployments are read with GetDeployment.
pub const MAX_CANDIDATES: usize = 25;

/// The group's deployments created at or after `created_after_ms`
/// (ListDeployments with `createTimeRange.start`, then GetDeployment for each
/// id for its description and create time), newest pages first as CodeDeploy
/// lists them, at most [`MAX_CANDIDATES`].
pub async fn list_group_deployments(
    client: &aws_sdk_codedeploy::Client,
    application: &str,
    group: &str,
    created_after_ms: EpochMillis,
) -> Result<Vec<DeploymentSummary>, AwsError> {
    let resource = format!("{application}/{group}");
    let range = TimeRange::builder()
        .start(DateTime::from_millis(created_after_ms))
        .build();
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_LIST_PAGES {
        let out = client
            .list_deployments()
            .application_name(application)
            .deployment_group_name(group)
            .create_time_range(range.clone())
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ListDeployments", &resource, &e))?;
        ids.extend(out.deployments().iter().cloned());
        token = out.next_token().map(str::to_string);
        if token.is_none() || ids.len() >= MAX_CANDIDATES {
            break;
        }
    }
    ids.truncate(MAX_CANDIDATES);
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let out = client
            .get_deployment()
            .deployment_id(&id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetDeployment", &id, &e))?;
        let info = out.deployment_info();
        found.push(DeploymentSummary {
            description: info.and_then(|i| i.description()).map(str::to_string),
            created_at_ms: info
                .and_then(|i| i.create_time())
                .and_then(|t| t.to_millis().ok()),
            deployment_id: id,
        });
    }
    Ok(found)
}
