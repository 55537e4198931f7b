//! The trigger's deployment-group read: GetDeploymentGroup as the plain
//! [`GroupFacts`] the core's gate (`trigger::check_gated`) decides on, with
//! "no such application / group" told apart from other failures.

use aws_sdk_codedeploy::operation::get_deployment_group::GetDeploymentGroupError;
use greenlight_core::trigger::{GroupFacts, Target};

use crate::AwsError;

/// What GetDeploymentGroup answered about a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupLookup {
    Found(GroupFacts),
    /// ApplicationDoesNotExist / InvalidApplicationName / ApplicationNameRequired.
    NoApplication {
        detail: String,
    },
    /// DeploymentGroupDoesNotExist / InvalidDeploymentGroupName /
    /// DeploymentGroupNameRequired, or an answer without deploymentGroupInfo.
    NoGroup {
        detail: String,
    },
}

/// GetDeploymentGroup for `target`.
pub async fn read_group_facts(
    client: &aws_sdk_codedeploy::Client,
    target: &Target,
) -> Result<GroupLookup, AwsError> {
    let out = client
        .get_deployment_group()
        .application_name(&target.application)
        .deployment_group_name(&target.deployment_group)
        .send()
        .await;
    let out = match out {
        Ok(out) => out,
        Err(err) => {
            let resource = format!("{}/{}", target.application, target.deployment_group);
            let error = AwsError::from_sdk("GetDeploymentGroup", resource, &err);
            let detail = match &error.code {
                Some(code) => format!("{code}: {}", error.message),
                None => error.message.clone(),
            };
            return match err.as_service_error() {
                Some(
                    GetDeploymentGroupError::ApplicationDoesNotExistException(_)
                    | GetDeploymentGroupError::InvalidApplicationNameException(_)
                    | GetDeploymentGroupError::ApplicationNameRequiredException(_),
                ) => Ok(GroupLookup::NoApplication { detail }),
                Some(
                    GetDeploymentGroupError::DeploymentGroupDoesNotExistException(_)
                    | GetDeploymentGroupError::InvalidDeploymentGroupNameException(_)
                    | GetDeploymentGroupError::DeploymentGroupNameRequiredException(_),
                ) => Ok(GroupLookup::NoGroup { detail }),
                _ => Err(error),
            };
        }
    };
    let Some(info) = out.deployment_group_info() else {
        return Ok(GroupLookup::NoGroup {
            detail: "GetDeploymentGroup returned no deploymentGroupInfo".into(),
        });
    };
    Ok(GroupLookup::Found(crate::deployment_group::group_facts(
        info,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codedeploy::operation::get_deployment_group::GetDeploymentGroupOutput;
    use aws_sdk_codedeploy::types::error::{
        ApplicationDoesNotExistException, DeploymentGroupDoesNotExistException,
    };
    use aws_sdk_codedeploy::types::{DeploymentGroupInfo, DeploymentStyle, DeploymentType};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn target() -> Target {
        Target {
            application: "shop".into(),
            deployment_group: "shop-prod".into(),
        }
    }

    #[tokio::test]
    async fn missing_application_and_group_are_told_apart() {
        let app = mock!(aws_sdk_codedeploy::Client::get_deployment_group).then_error(|| {
            GetDeploymentGroupError::ApplicationDoesNotExistException(
                ApplicationDoesNotExistException::builder()
                    .message("no app")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&app]);
        assert!(matches!(
            read_group_facts(&client, &target()).await,
            Ok(GroupLookup::NoApplication { detail }) if detail.contains("no app")
        ));
        let group = mock!(aws_sdk_codedeploy::Client::get_deployment_group).then_error(|| {
            GetDeploymentGroupError::DeploymentGroupDoesNotExistException(
                DeploymentGroupDoesNotExistException::builder().build(),
            )
        });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&group]);
        assert!(matches!(
            read_group_facts(&client, &target()).await,
            Ok(GroupLookup::NoGroup { .. })
        ));
    }

    #[tokio::test]
    async fn facts_are_read_as_strings() {
        let rule = mock!(aws_sdk_codedeploy::Client::get_deployment_group).then_output(|| {
            GetDeploymentGroupOutput::builder()
                .deployment_group_info(
                    DeploymentGroupInfo::builder()
                        .deployment_style(
                            DeploymentStyle::builder()
                                .deployment_type(DeploymentType::InPlace)
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&rule]);
        let Ok(GroupLookup::Found(facts)) = read_group_facts(&client, &target()).await else {
            panic!("expected facts");
        };
        assert_eq!(facts.deployment_type.as_deref(), Some("IN_PLACE"));
        assert_eq!(facts.ready_action_on_timeout, None);
        assert!(facts.target_groups.is_empty());
    }
}
