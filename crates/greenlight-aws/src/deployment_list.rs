//! A deployment group's deployments: ListDeployments (the one call site that
//! builds the request, [`list_page`]) and the deployments' descriptions and
//! create times, mapped to core types. Used by deployment-watcher (`admit`:
//! the group's active deployment; `create`: the deployment a previous try of
//! this execution made) and the failure runbook (the deployment a dead
//! `Create` task left behind).

use aws_sdk_codedeploy::types::{DeploymentStatus as SdkDeploymentStatus, TimeRange};
use aws_smithy_types::DateTime;
use greenlight_core::model::EpochMillis;
use greenlight_core::runbook::DeploymentSummary;
use greenlight_core::watch::{self, RecentDeployment, ACTIVE_STATUSES};

use crate::deployment::get_deployment_info;
use crate::deployment_group::GroupReadError;
use crate::AwsError;

/// `BatchGetDeployments` accepts at most 25 ids per call.
pub const BATCH_GET_DEPLOYMENTS_MAX: usize = 25;
/// Pages [`recent_deployments`] reads at most (100 ids a page).
pub const MAX_RECENT_PAGES: usize = 20;
/// Pages [`list_group_deployments`] reads at most.
pub const MAX_LIST_PAGES: usize = 5;
/// Deployments [`list_group_deployments`] reads with GetDeployment at most.
pub const MAX_CANDIDATES: usize = 25;

/// Which of the group's deployments to list.
#[derive(Debug, Clone, Default)]
struct Filter {
    statuses: Option<Vec<SdkDeploymentStatus>>,
    range: Option<TimeRange>,
}

impl Filter {
    /// Deployments created from `from_ms` (to `to_ms`, when given).
    fn created(from_ms: EpochMillis, to_ms: Option<EpochMillis>) -> Self {
        Self {
            statuses: None,
            range: Some(
                TimeRange::builder()
                    .start(DateTime::from_millis(from_ms))
                    .set_end(to_ms.map(DateTime::from_millis))
                    .build(),
            ),
        }
    }
}

/// One ListDeployments page: the ids and the next token (`None` at the
/// end). A missing application or group is [`GroupReadError::NotFound`].
async fn list_page(
    client: &aws_sdk_codedeploy::Client,
    application: &str,
    group: &str,
    filter: &Filter,
    next_token: Option<String>,
) -> Result<(Vec<String>, Option<String>), GroupReadError> {
    let page = client
        .list_deployments()
        .application_name(application)
        .deployment_group_name(group)
        .set_include_only_statuses(filter.statuses.clone())
        .set_create_time_range(filter.range.clone())
        .set_next_token(next_token)
        .send()
        .await
        .map_err(|e| {
            let missing = e.as_service_error().is_some_and(|s| {
                s.is_application_does_not_exist_exception()
                    || s.is_deployment_group_does_not_exist_exception()
            });
            let aws = AwsError::from_sdk("ListDeployments", format!("{application}/{group}"), &e);
            if missing {
                GroupReadError::not_found(application, group, aws)
            } else {
                GroupReadError::Aws(aws)
            }
        })?;
    let token = page
        .next_token()
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    Ok((page.deployments().to_vec(), token))
}

/// Up to `max_pages` pages of ids (stopping once `max_ids` are read).
async fn list_ids(
    client: &aws_sdk_codedeploy::Client,
    application: &str,
    group: &str,
    filter: &Filter,
    max_pages: usize,
    max_ids: usize,
) -> Result<Vec<String>, GroupReadError> {
    let mut ids = Vec::new();
    let mut token = None;
    for _ in 0..max_pages {
        let (page, next) = list_page(client, application, group, filter, token).await?;
        ids.extend(page);
        token = next;
        if token.is_none() || ids.len() >= max_ids {
            break;
        }
    }
    ids.truncate(max_ids);
    Ok(ids)
}

/// The first active (Created, Queued, InProgress, Baking, Ready) deployment
/// of the group, if any (the first page answers it).
pub async fn active_deployment(
    client: &aws_sdk_codedeploy::Client,
    application: &str,
    group: &str,
) -> Result<Option<String>, GroupReadError> {
    let filter = Filter {
        statuses: Some(
            ACTIVE_STATUSES
                .iter()
                .map(|s| SdkDeploymentStatus::from(watch::status_name(*s)))
                .collect(),
        ),
        range: None,
    };
    let (ids, _) = list_page(client, application, group, &filter, None).await?;
    Ok(ids.into_iter().next())
}

/// The group's deployments created in `[from_ms, to_ms]` (at most
/// [`MAX_RECENT_PAGES`] pages), with description and create time
/// (BatchGetDeployments, [`BATCH_GET_DEPLOYMENTS_MAX`] ids a call).
pub async fn recent_deployments(
    client: &aws_sdk_codedeploy::Client,
    application: &str,
    group: &str,
    from_ms: EpochMillis,
    to_ms: EpochMillis,
) -> Result<Vec<RecentDeployment>, GroupReadError> {
    let filter = Filter::created(from_ms, Some(to_ms));
    let ids = list_ids(
        client,
        application,
        group,
        &filter,
        MAX_RECENT_PAGES,
        usize::MAX,
    )
    .await?;
    let mut recent = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(BATCH_GET_DEPLOYMENTS_MAX) {
        let out = client
            .batch_get_deployments()
            .set_deployment_ids(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("BatchGetDeployments", format!("{application}/{group}"), &e)
            })?;
        recent.extend(out.deployments_info().iter().map(|d| RecentDeployment {
            deployment_id: d.deployment_id().unwrap_or_default().to_string(),
            description: d.description().map(str::to_string),
            created_at_ms: d.create_time().and_then(|t| t.to_millis().ok()),
        }));
    }
    Ok(recent)
}

/// The group's deployments created at or after `created_after_ms`
/// (ListDeployments with `createTimeRange.start`, then GetDeployment for each
/// id for its description and create time), newest pages first as CodeDeploy
/// lists them, at most [`MAX_CANDIDATES`].
pub async fn list_group_deployments(
    client: &aws_sdk_codedeploy::Client,
    application: &str,
    group: &str,
    created_after_ms: EpochMillis,
) -> Result<Vec<DeploymentSummary>, GroupReadError> {
    let filter = Filter::created(created_after_ms, None);
    let ids = list_ids(
        client,
        application,
        group,
        &filter,
        MAX_LIST_PAGES,
        MAX_CANDIDATES,
    )
    .await?;
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let info = get_deployment_info(client, &id)
            .await
            .map_err(|e| GroupReadError::Aws(e.into_aws("GetDeployment")))?;
        found.push(DeploymentSummary {
            description: info.description().map(str::to_string),
            created_at_ms: info.create_time().and_then(|t| t.to_millis().ok()),
            deployment_id: id,
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codedeploy::config::retry::RetryConfig;
    use aws_sdk_codedeploy::operation::batch_get_deployments::BatchGetDeploymentsOutput;
    use aws_sdk_codedeploy::operation::get_deployment::GetDeploymentOutput;
    use aws_sdk_codedeploy::operation::list_deployments::{
        ListDeploymentsError, ListDeploymentsOutput,
    };
    use aws_sdk_codedeploy::types::error::DeploymentGroupDoesNotExistException;
    use aws_sdk_codedeploy::types::DeploymentInfo;
    use aws_sdk_codedeploy::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use greenlight_core::errors;

    use crate::test_support::json_error as http;

    fn info(id: &str, description: &str) -> DeploymentInfo {
        DeploymentInfo::builder()
            .deployment_id(id)
            .description(description)
            .create_time(DateTime::from_millis(1_000))
            .build()
    }

    #[tokio::test]
    async fn active_asks_for_the_active_statuses_only() {
        let rule = mock!(Client::list_deployments)
            .match_requests(|r| {
                r.include_only_statuses().len() == ACTIVE_STATUSES.len()
                    && r.create_time_range().is_none()
            })
            .then_output(|| {
                ListDeploymentsOutput::builder()
                    .deployments("d-9")
                    .deployments("d-8")
                    .build()
            });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&rule]);
        assert_eq!(
            active_deployment(&client, "shop", "prod").await,
            Ok(Some("d-9".to_string()))
        );
        let gone = mock!(Client::list_deployments).then_error(|| {
            ListDeploymentsError::DeploymentGroupDoesNotExistException(
                DeploymentGroupDoesNotExistException::builder()
                    .message("no group")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&gone]);
        let e = active_deployment(&client, "shop", "prod")
            .await
            .unwrap_err();
        assert_eq!(e.error_type(), errors::DEPLOYMENT_GROUP_NOT_FOUND);
        assert!(e.to_string().contains("no group"), "{e}");
    }

    #[tokio::test]
    async fn recent_pages_then_batch_reads() {
        let first = mock!(Client::list_deployments)
            .match_requests(|r| r.next_token().is_none() && r.create_time_range().is_some())
            .then_output(|| {
                ListDeploymentsOutput::builder()
                    .deployments("d-1")
                    .next_token("t")
                    .build()
            });
        let second = mock!(Client::list_deployments)
            .match_requests(|r| r.next_token() == Some("t"))
            .then_output(|| ListDeploymentsOutput::builder().deployments("d-2").build());
        let batch = mock!(Client::batch_get_deployments)
            .match_requests(|r| r.deployment_ids() == ["d-1".to_string(), "d-2".to_string()])
            .then_output(|| {
                BatchGetDeploymentsOutput::builder()
                    .deployments_info(info("d-1", "greenlight execution gl-1"))
                    .deployments_info(info("d-2", "other"))
                    .build()
            });
        let client = mock_client!(
            aws_sdk_codedeploy,
            RuleMode::MatchAny,
            [&first, &second, &batch]
        );
        let recent = recent_deployments(&client, "shop", "prod", 0, 2_000)
            .await
            .expect("read");
        assert_eq!(
            recent,
            vec![
                RecentDeployment {
                    deployment_id: "d-1".into(),
                    description: Some("greenlight execution gl-1".into()),
                    created_at_ms: Some(1_000),
                },
                RecentDeployment {
                    deployment_id: "d-2".into(),
                    description: Some("other".into()),
                    created_at_ms: Some(1_000),
                },
            ]
        );
        let throttled = mock!(Client::batch_get_deployments)
            .then_http_response(|| http(400, "ThrottlingException"));
        let list = mock!(Client::list_deployments)
            .then_output(|| ListDeploymentsOutput::builder().deployments("d-1").build());
        let client = mock_client!(
            aws_sdk_codedeploy,
            RuleMode::MatchAny,
            [&list, &throttled],
            |c| c.retry_config(RetryConfig::standard().with_max_attempts(1))
        );
        let e = recent_deployments(&client, "shop", "prod", 0, 2_000)
            .await
            .unwrap_err();
        assert_eq!(e.error_type(), errors::AWS_TRANSIENT, "{e}");
        assert!(
            e.to_string().contains("BatchGetDeployments on shop/prod"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn group_deployments_since_read_each_one() {
        let list = mock!(Client::list_deployments)
            .match_requests(|r| {
                r.create_time_range()
                    .is_some_and(|t| t.start().is_some() && t.end().is_none())
            })
            .then_output(|| ListDeploymentsOutput::builder().deployments("d-1").build());
        let get = mock!(Client::get_deployment)
            .match_requests(|r| r.deployment_id() == Some("d-1"))
            .then_output(|| {
                GetDeploymentOutput::builder()
                    .deployment_info(info("d-1", "greenlight execution gl-1"))
                    .build()
            });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&list, &get]);
        assert_eq!(
            list_group_deployments(&client, "shop", "prod", 500).await,
            Ok(vec![DeploymentSummary {
                deployment_id: "d-1".into(),
                description: Some("greenlight execution gl-1".into()),
                created_at_ms: Some(1_000),
            }])
        );
        let denied = mock!(Client::list_deployments)
            .then_http_response(|| http(400, "AccessDeniedException"));
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&denied]);
        let Err(GroupReadError::Aws(e)) =
            list_group_deployments(&client, "shop", "prod", 500).await
        else {
            panic!("access denied is a plain AWS error");
        };
        assert_eq!(
            (
                e.operation,
                e.resource.as_str(),
                e.code.as_deref(),
                e.transient
            ),
            (
                "ListDeployments",
                "shop/prod",
                Some("AccessDeniedException"),
                false
            )
        );
    }
}
