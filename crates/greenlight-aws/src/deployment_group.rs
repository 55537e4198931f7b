//! Reading one CodeDeploy deployment group (GetDeploymentGroup) into the
//! core's [`GroupFacts`]: deployment style, the Ready gate and its wait, the
//! blue termination wait, the ALB target groups and the Auto Scaling groups.
//!
//! Used by deployment-watcher (`create` records the blue Auto Scaling groups
//! and the termination wait) and [`crate::load_balancer::target_group_arns`]
//! (the target group names).

use aws_sdk_codedeploy::types::DeploymentGroupInfo;
use greenlight_core::errors;
use greenlight_core::trigger::GroupFacts;

use crate::error::AwsError;

/// Why a deployment group could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupReadError {
    /// `ApplicationDoesNotExistException` / `DeploymentGroupDoesNotExistException`
    /// (or an invalid name).
    #[error("CodeDeploy deployment group {group:?} of application {application:?} does not exist ({detail}); check the application and deployment group names")]
    NotFound {
        application: String,
        group: String,
        detail: String,
    },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl GroupReadError {
    /// The Lambda `errorType`: [`errors::DEPLOYMENT_GROUP_NOT_FOUND`], or the
    /// AWS error's ([`errors::AWS_TRANSIENT`] / [`errors::AWS_ERROR`]).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => errors::DEPLOYMENT_GROUP_NOT_FOUND,
            Self::Aws(e) => e.error_type(),
        }
    }
}

/// GetDeploymentGroup `application`/`group` as [`GroupFacts`].
pub async fn read_deployment_group(
    client: &aws_sdk_codedeploy::Client,
    application: &str,
    group: &str,
) -> Result<GroupFacts, GroupReadError> {
    let resource = format!("{application}/{group}");
    let out = client
        .get_deployment_group()
        .application_name(application)
        .deployment_group_name(group)
        .send()
        .await
        .map_err(|err| {
            let not_found = err.as_service_error().is_some_and(|e| {
                e.is_deployment_group_does_not_exist_exception()
                    || e.is_application_does_not_exist_exception()
                    || e.is_invalid_application_name_exception()
                    || e.is_invalid_deployment_group_name_exception()
            });
            let aws = AwsError::from_sdk("GetDeploymentGroup", &resource, &err);
            if not_found {
                GroupReadError::NotFound {
                    application: application.to_string(),
                    group: group.to_string(),
                    detail: aws.message,
                }
            } else {
                GroupReadError::Aws(aws)
            }
        })?;
    let info = out.deployment_group_info().ok_or_else(|| {
        AwsError::unexpected(
            "GetDeploymentGroup",
            &resource,
            "the answer has no deploymentGroupInfo",
        )
    })?;
    Ok(group_facts(info))
}

/// Maps GetDeploymentGroup's `deploymentGroupInfo` to the core's facts.
pub fn group_facts(info: &DeploymentGroupInfo) -> GroupFacts {
    let style = info.deployment_style();
    let bg = info.blue_green_deployment_configuration();
    let ready = bg.and_then(|b| b.deployment_ready_option());
    let terminate = bg.and_then(|b| b.terminate_blue_instances_on_deployment_success());
    let mut target_groups: Vec<String> = Vec::new();
    if let Some(lb) = info.load_balancer_info() {
        for name in lb.target_group_info_list().iter().filter_map(|t| t.name()) {
            if !name.is_empty() && !target_groups.iter().any(|n| n == name) {
                target_groups.push(name.to_string());
            }
        }
    }
    GroupFacts {
        deployment_type: style
            .and_then(|s| s.deployment_type())
            .map(|t| t.as_str().to_string()),
        deployment_option: style
            .and_then(|s| s.deployment_option())
            .map(|o| o.as_str().to_string()),
        ready_action_on_timeout: ready
            .and_then(|r| r.action_on_timeout())
            .map(|a| a.as_str().to_string()),
        target_groups,
        ready_wait_minutes: ready.map(|r| r.wait_time_in_minutes()),
        termination_action: terminate
            .and_then(|t| t.action())
            .map(|a| a.as_str().to_string()),
        termination_wait_minutes: terminate.map(|t| t.termination_wait_time_in_minutes()),
        auto_scaling_groups: info
            .auto_scaling_groups()
            .iter()
            .filter_map(|a| a.name())
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect(),
    }
}

/// The CloudWatch alarms configured on the deployment group itself
/// (`alarmConfiguration.alarms[].name`), when `alarmConfiguration.enabled`;
/// empty when it is off or absent. The bake watches these besides the names
/// in its own configuration.
pub fn group_alarm_names(info: &DeploymentGroupInfo) -> Vec<String> {
    let Some(config) = info.alarm_configuration() else {
        return Vec::new();
    };
    if !config.enabled() {
        return Vec::new();
    }
    let mut names: Vec<String> = Vec::new();
    for name in config.alarms().iter().filter_map(|a| a.name()) {
        if !name.is_empty() && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

/// GetDeploymentGroup `application`/`group`: [`group_alarm_names`].
pub async fn read_group_alarm_names(
    client: &aws_sdk_codedeploy::Client,
    application: &str,
    group: &str,
) -> Result<Vec<String>, GroupReadError> {
    let resource = format!("{application}/{group}");
    let out = client
        .get_deployment_group()
        .application_name(application)
        .deployment_group_name(group)
        .send()
        .await
        .map_err(|err| {
            let not_found = err.as_service_error().is_some_and(|e| {
                e.is_deployment_group_does_not_exist_exception()
                    || e.is_application_does_not_exist_exception()
            });
            let aws = AwsError::from_sdk("GetDeploymentGroup", &resource, &err);
            if not_found {
                GroupReadError::NotFound {
                    application: application.to_string(),
                    group: group.to_string(),
                    detail: aws.message,
                }
            } else {
                GroupReadError::Aws(aws)
            }
        })?;
    Ok(out
        .deployment_group_info()
        .map(group_alarm_names)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codedeploy::config::http::HttpResponse;
    use aws_sdk_codedeploy::operation::get_deployment_group::{
        GetDeploymentGroupError, GetDeploymentGroupOutput,
    };
    use aws_sdk_codedeploy::types::{
        AutoScalingGroup, BlueGreenDeploymentConfiguration, BlueInstanceTerminationOption,
        DeploymentOption, DeploymentReadyAction, DeploymentReadyOption, DeploymentStyle,
        DeploymentType, InstanceAction, LoadBalancerInfo, TargetGroupInfo,
    };
    use aws_sdk_codedeploy::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_types::body::SdkBody;

    fn info() -> DeploymentGroupInfo {
        DeploymentGroupInfo::builder()
            .deployment_style(
                DeploymentStyle::builder()
                    .deployment_type(DeploymentType::BlueGreen)
                    .deployment_option(DeploymentOption::WithTrafficControl)
                    .build(),
            )
            .blue_green_deployment_configuration(
                BlueGreenDeploymentConfiguration::builder()
                    .deployment_ready_option(
                        DeploymentReadyOption::builder()
                            .action_on_timeout(DeploymentReadyAction::StopDeployment)
                            .wait_time_in_minutes(30)
                            .build(),
                    )
                    .terminate_blue_instances_on_deployment_success(
                        BlueInstanceTerminationOption::builder()
                            .action(InstanceAction::Terminate)
                            .termination_wait_time_in_minutes(5)
                            .build(),
                    )
                    .build(),
            )
            .load_balancer_info(
                LoadBalancerInfo::builder()
                    .target_group_info_list(TargetGroupInfo::builder().name("tg").build())
                    .target_group_info_list(TargetGroupInfo::builder().name("tg").build())
                    .build(),
            )
            .auto_scaling_groups(AutoScalingGroup::builder().name("shop-blue").build())
            .auto_scaling_groups(AutoScalingGroup::builder().name("").build())
            .build()
    }

    #[tokio::test]
    async fn reads_every_fact() {
        let rule = mock!(Client::get_deployment_group)
            .match_requests(|r| {
                r.application_name() == Some("shop") && r.deployment_group_name() == Some("prod")
            })
            .then_output(|| {
                GetDeploymentGroupOutput::builder()
                    .deployment_group_info(info())
                    .build()
            });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&rule]);
        let facts = read_deployment_group(&client, "shop", "prod")
            .await
            .unwrap();
        assert_eq!(
            facts,
            GroupFacts {
                deployment_type: Some("BLUE_GREEN".into()),
                deployment_option: Some("WITH_TRAFFIC_CONTROL".into()),
                ready_action_on_timeout: Some("STOP_DEPLOYMENT".into()),
                target_groups: vec!["tg".into()],
                ready_wait_minutes: Some(30),
                termination_action: Some("TERMINATE".into()),
                termination_wait_minutes: Some(5),
                auto_scaling_groups: vec!["shop-blue".into()],
            }
        );
    }

    #[tokio::test]
    async fn missing_group_is_not_found_and_throttling_is_transient() {
        let rule = mock!(Client::get_deployment_group).then_error(|| {
            GetDeploymentGroupError::DeploymentGroupDoesNotExistException(
                aws_sdk_codedeploy::types::error::DeploymentGroupDoesNotExistException::builder()
                    .message("No Deployment Group found for name: prod")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&rule]);
        let err = read_deployment_group(&client, "shop", "prod")
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), errors::DEPLOYMENT_GROUP_NOT_FOUND);
        assert!(
            err.to_string().contains("No Deployment Group found"),
            "{err}"
        );

        let rule = mock!(Client::get_deployment_group).then_http_response(|| {
            HttpResponse::new(
                400.try_into().unwrap(),
                SdkBody::from(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#),
            )
        });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&rule], |c| c
            .retry_config(
                aws_sdk_codedeploy::config::retry::RetryConfig::standard().with_max_attempts(1)
            ));
        let err = read_deployment_group(&client, "shop", "prod")
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), errors::AWS_TRANSIENT, "{err}");
        assert!(
            err.to_string().contains("GetDeploymentGroup on shop/prod"),
            "{err}"
        );
    }

    #[test]
    fn group_alarms_only_when_enabled_without_duplicates() {
        use aws_sdk_codedeploy::types::{Alarm, AlarmConfiguration};
        let info = |enabled: bool| {
            DeploymentGroupInfo::builder()
                .alarm_configuration(
                    AlarmConfiguration::builder()
                        .enabled(enabled)
                        .alarms(Alarm::builder().name("shop-5xx").build())
                        .alarms(Alarm::builder().name("").build())
                        .alarms(Alarm::builder().name("shop-5xx").build())
                        .alarms(Alarm::builder().name("shop-cpu").build())
                        .build(),
                )
                .build()
        };
        assert_eq!(group_alarm_names(&info(true)), ["shop-5xx", "shop-cpu"]);
        assert!(group_alarm_names(&info(false)).is_empty());
        assert!(group_alarm_names(&DeploymentGroupInfo::builder().build()).is_empty());
    }

    #[tokio::test]
    async fn read_group_alarm_names_reads_the_group() {
        use aws_sdk_codedeploy::types::{Alarm, AlarmConfiguration};
        let rule = mock!(Client::get_deployment_group)
            .match_requests(|r| {
                r.application_name() == Some("shop") && r.deployment_group_name() == Some("shop-bg")
            })
            .then_output(|| {
                GetDeploymentGroupOutput::builder()
                    .deployment_group_info(
                        DeploymentGroupInfo::builder()
                            .alarm_configuration(
                                AlarmConfiguration::builder()
                                    .enabled(true)
                                    .alarms(Alarm::builder().name("shop-5xx").build())
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&rule]);
        assert_eq!(
            read_group_alarm_names(&client, "shop", "shop-bg")
                .await
                .expect("read"),
            ["shop-5xx"]
        );
    }
}
