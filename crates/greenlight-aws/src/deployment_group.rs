//! CodeDeploy deployment groups, the one reader and writer of them:
//! GetDeploymentGroup into the core's [`GroupFacts`] (deployment style, the
//! Ready gate and its wait, the blue termination wait, the ALB target groups
//! and the Auto Scaling groups), and UpdateDeploymentGroup of its Auto
//! Scaling groups.
//!
//! One call site builds the GetDeploymentGroup request and tells its
//! service errors apart ([`answer`]); its answers are read by the trigger's
//! gate ([`read_group_facts`]: unknown application told apart from unknown
//! group) and, through [`read_info`] (either one is `NotFound`), by the facts
//! reader ([`read_deployment_group`]: deployment-watcher `create`, and
//! [`crate::load_balancer::target_group_arns`]), the failure runbook's
//! [`group_auto_scaling_groups`], `greenlight plan` ([`read_group_setup`])
//! and the bake's [`read_group_alarm_names`].

use aws_sdk_codedeploy::operation::get_deployment_group::GetDeploymentGroupError;
use aws_sdk_codedeploy::types::DeploymentGroupInfo;
use greenlight_core::errors;
use greenlight_core::plan::GroupSetup;
use greenlight_core::trigger::{GroupFacts, Target};

use crate::error::AwsError;

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

/// Why a deployment group could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupReadError {
    /// The application or the deployment group does not exist (or its name
    /// is invalid).
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

    /// A `NotFound` for `application`/`group` from the service's error.
    pub(crate) fn not_found(application: &str, group: &str, error: AwsError) -> Self {
        Self::NotFound {
            application: application.to_string(),
            group: group.to_string(),
            detail: match &error.code {
                Some(code) => format!("{code}: {}", error.message),
                None => error.message,
            },
        }
    }
}

/// What GetDeploymentGroup answered, before any reading of the group.
enum Answer {
    Info(Box<DeploymentGroupInfo>),
    NoApplication { detail: String },
    NoGroup { detail: String },
}

/// GetDeploymentGroup `application`/`group`: the one place the request is
/// built and its service errors are told apart.
async fn answer(
    client: &aws_sdk_codedeploy::Client,
    application: &str,
    group: &str,
) -> Result<Answer, AwsError> {
    let answer = client
        .get_deployment_group()
        .application_name(application)
        .deployment_group_name(group)
        .customize()
        .config_override(crate::codedeploy_read_override(client))
        .send()
        .await;
    let out = match answer {
        Ok(out) => out,
        Err(err) => {
            let error =
                AwsError::from_sdk("GetDeploymentGroup", format!("{application}/{group}"), &err);
            let detail = match &error.code {
                Some(code) => format!("{code}: {}", error.message),
                None => error.message.clone(),
            };
            return match err.as_service_error() {
                Some(
                    GetDeploymentGroupError::ApplicationDoesNotExistException(_)
                    | GetDeploymentGroupError::InvalidApplicationNameException(_)
                    | GetDeploymentGroupError::ApplicationNameRequiredException(_),
                ) => Ok(Answer::NoApplication { detail }),
                Some(
                    GetDeploymentGroupError::DeploymentGroupDoesNotExistException(_)
                    | GetDeploymentGroupError::InvalidDeploymentGroupNameException(_)
                    | GetDeploymentGroupError::DeploymentGroupNameRequiredException(_),
                ) => Ok(Answer::NoGroup { detail }),
                _ => Err(error),
            };
        }
    };
    Ok(match out.deployment_group_info {
        Some(info) => Answer::Info(Box::new(info)),
        None => Answer::NoGroup {
            detail: "GetDeploymentGroup returned no deploymentGroupInfo".into(),
        },
    })
}

/// [`answer`] for every other reader: a missing application or group is
/// [`GroupReadError::NotFound`].
async fn read_info(
    client: &aws_sdk_codedeploy::Client,
    application: &str,
    group: &str,
) -> Result<Box<DeploymentGroupInfo>, GroupReadError> {
    match answer(client, application, group).await? {
        Answer::Info(info) => Ok(info),
        Answer::NoApplication { detail } | Answer::NoGroup { detail } => {
            Err(GroupReadError::NotFound {
                application: application.to_string(),
                group: group.to_string(),
                detail,
            })
        }
    }
}

/// GetDeploymentGroup for `target`, as the trigger's gate reads it (unknown
/// application told apart from unknown group).
pub async fn read_group_facts(
    client: &aws_sdk_codedeploy::Client,
    target: &Target,
) -> Result<GroupLookup, AwsError> {
    Ok(
        match answer(client, &target.application, &target.deployment_group).await? {
            Answer::Info(info) => GroupLookup::Found(group_facts(&info)),
            Answer::NoApplication { detail } => GroupLookup::NoApplication { detail },
            Answer::NoGroup { detail } => GroupLookup::NoGroup { detail },
        },
    )
}

/// GetDeploymentGroup `application`/`group` as [`GroupFacts`]; a missing
/// application or group is [`GroupReadError::NotFound`].
pub async fn read_deployment_group(
    client: &aws_sdk_codedeploy::Client,
    application: &str,
    group: &str,
) -> Result<GroupFacts, GroupReadError> {
    let info = read_info(client, application, group).await?;
    Ok(group_facts(&info))
}

/// GetDeploymentGroup `autoScalingGroups` (names).
pub async fn group_auto_scaling_groups(
    client: &aws_sdk_codedeploy::Client,
    application: &str,
    group: &str,
) -> Result<Vec<String>, GroupReadError> {
    Ok(read_deployment_group(client, application, group)
        .await?
        .auto_scaling_groups)
}

/// UpdateDeploymentGroup `autoScalingGroups = asgs`.
pub async fn set_group_auto_scaling_groups(
    client: &aws_sdk_codedeploy::Client,
    application: &str,
    group: &str,
    asgs: &[String],
) -> Result<(), AwsError> {
    client
        .update_deployment_group()
        .application_name(application)
        .current_deployment_group_name(group)
        .set_auto_scaling_groups(Some(asgs.to_vec()))
        .send()
        .await
        .map_err(|e| {
            AwsError::from_sdk(
                "UpdateDeploymentGroup",
                format!("{application}/{group}"),
                &e,
            )
        })?;
    Ok(())
}

/// GetDeploymentGroup `application`/`group` as [`GroupFacts`] and the rest
/// `greenlight plan` checks ([`GroupSetup`]); a missing application or group
/// is [`GroupReadError::NotFound`].
pub async fn read_group_setup(
    client: &aws_sdk_codedeploy::Client,
    application: &str,
    group: &str,
) -> Result<(GroupFacts, GroupSetup), GroupReadError> {
    let info = read_info(client, application, group).await?;
    Ok((group_facts(&info), group_setup(&info)))
}

/// Maps GetDeploymentGroup's `deploymentGroupInfo` to what `plan` checks
/// beyond [`GroupFacts`].
pub fn group_setup(info: &DeploymentGroupInfo) -> GroupSetup {
    let bg = info.blue_green_deployment_configuration();
    let rollback = info.auto_rollback_configuration();
    GroupSetup {
        green_fleet_action: bg
            .and_then(|b| b.green_fleet_provisioning_option())
            .and_then(|g| g.action())
            .map(|a| a.as_str().to_string()),
        auto_rollback_enabled: rollback.is_some_and(|r| r.enabled()),
        auto_rollback_events: rollback
            .map(|r| r.events().iter().map(|e| e.as_str().to_string()).collect())
            .unwrap_or_default(),
        service_role_arn: info
            .service_role_arn()
            .filter(|a| !a.is_empty())
            .map(str::to_string),
        deployment_config_name: info
            .deployment_config_name()
            .filter(|n| !n.is_empty())
            .map(str::to_string),
    }
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
    let info = read_info(client, application, group).await?;
    Ok(group_alarm_names(&info))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codedeploy::config::http::HttpResponse;
    use aws_sdk_codedeploy::operation::get_deployment_group::GetDeploymentGroupOutput;
    use aws_sdk_codedeploy::types::error::{
        ApplicationDoesNotExistException, DeploymentGroupDoesNotExistException,
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
    async fn reads_the_setup_plan_checks() {
        let rule = mock!(Client::get_deployment_group).then_output(|| {
            let mut full = info();
            full.blue_green_deployment_configuration = Some(
                BlueGreenDeploymentConfiguration::builder()
                    .green_fleet_provisioning_option(
                        aws_sdk_codedeploy::types::GreenFleetProvisioningOption::builder()
                            .action(aws_sdk_codedeploy::types::GreenFleetProvisioningAction::CopyAutoScalingGroup)
                            .build(),
                    )
                    .build(),
            );
            full.auto_rollback_configuration = Some(
                aws_sdk_codedeploy::types::AutoRollbackConfiguration::builder()
                    .enabled(true)
                    .events(aws_sdk_codedeploy::types::AutoRollbackEvent::DeploymentFailure)
                    .build(),
            );
            full.service_role_arn = Some("arn:aws:iam::1:role/cd".into());
            GetDeploymentGroupOutput::builder()
                .deployment_group_info(full)
                .build()
        });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&rule]);
        let (facts, setup) = read_group_setup(&client, "shop", "prod").await.unwrap();
        assert_eq!(facts.target_groups, vec!["tg".to_string()]);
        assert_eq!(
            setup,
            GroupSetup {
                green_fleet_action: Some("COPY_AUTO_SCALING_GROUP".into()),
                auto_rollback_enabled: true,
                auto_rollback_events: vec!["DEPLOYMENT_FAILURE".into()],
                service_role_arn: Some("arn:aws:iam::1:role/cd".into()),
                deployment_config_name: None,
            }
        );
        let missing = mock!(Client::get_deployment_group).then_error(|| {
            GetDeploymentGroupError::DeploymentGroupDoesNotExistException(
                DeploymentGroupDoesNotExistException::builder()
                    .message("no")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&missing]);
        assert!(matches!(
            read_group_setup(&client, "shop", "prod").await,
            Err(GroupReadError::NotFound { .. })
        ));
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

    #[tokio::test]
    async fn group_writes_and_the_asg_reader() {
        let read = mock!(Client::get_deployment_group).then_output(|| {
            GetDeploymentGroupOutput::builder()
                .deployment_group_info(info())
                .build()
        });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&read]);
        assert_eq!(
            group_auto_scaling_groups(&client, "shop", "prod").await,
            Ok(vec!["shop-blue".to_string()])
        );
        let write = mock!(Client::update_deployment_group)
            .match_requests(|r| {
                r.current_deployment_group_name() == Some("prod")
                    && r.auto_scaling_groups() == ["shop-blue".to_string()]
            })
            .then_output(|| {
                aws_sdk_codedeploy::operation::update_deployment_group::UpdateDeploymentGroupOutput::builder().build()
            });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&write]);
        set_group_auto_scaling_groups(&client, "shop", "prod", &["shop-blue".to_string()])
            .await
            .expect("updated");
        assert_eq!(write.num_calls(), 1);
        let denied = mock!(Client::update_deployment_group).then_http_response(|| {
            HttpResponse::new(
                400.try_into().unwrap(),
                SdkBody::from(r#"{"__type":"AccessDeniedException","message":"no"}"#),
            )
        });
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&denied]);
        let e = set_group_auto_scaling_groups(&client, "shop", "prod", &[])
            .await
            .unwrap_err();
        assert!(!e.transient);
        assert_eq!(e.operation, "UpdateDeploymentGroup");
        assert_eq!(e.resource, "shop/prod");
        assert_eq!(e.code.as_deref(), Some("AccessDeniedException"));
    }
}
