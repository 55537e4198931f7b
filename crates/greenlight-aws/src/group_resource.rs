//! The deployment-group custom resource's AWS reads and writes: what exists
//! (application, group, their ownership tags, the application's other groups,
//! the target group's `greenlight:application` tag) as the core's
//! [`Observed`], each [`Action`] carried out, and the answer PUT to
//! CloudFormation's pre-signed `ResponseURL`.
//!
//! The decisions are `greenlight_core::group_resource`'s.

use aws_sdk_codedeploy::operation::get_application::GetApplicationError;
use aws_sdk_codedeploy::operation::list_deployment_groups::ListDeploymentGroupsError;
use aws_sdk_codedeploy::types::{
    AutoRollbackConfiguration, AutoRollbackEvent, BlueGreenDeploymentConfiguration,
    BlueInstanceTerminationOption, DeploymentOption, DeploymentReadyAction, DeploymentReadyOption,
    DeploymentStyle, DeploymentType, GreenFleetProvisioningAction, GreenFleetProvisioningOption,
    InstanceAction, LoadBalancerInfo, Tag, TargetGroupInfo,
};
use aws_sdk_codedeploy::Client as CodeDeployClient;
use aws_sdk_elasticloadbalancingv2::Client as Elbv2Client;
use greenlight_core::group_resource::{
    codedeploy_arns, Action, CustomResourceResponse, GroupSpec, Observed, ObservedGroup, Owner,
    APPLICATION_TAG_KEY,
};
use std::collections::BTreeMap;

use crate::deployment_group::{read_deployment_group, GroupReadError};
use crate::error::AwsError;
use crate::load_balancer::{tag_value, target_group_by_name, LbError};

/// What [`observe`] read, and the target groups' ARNs (for the tag writes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observation {
    pub observed: Observed,
    pub target_group_arns: BTreeMap<String, String>,
}

fn from_lb(error: LbError, target_group: &str) -> AwsError {
    match error {
        LbError::Aws(e) => e,
        other => AwsError::unexpected("DescribeTargetGroups", target_group, other.to_string()),
    }
}

/// Reads the application (and its tags), the group (its tags and current
/// ASGs), the application's other groups, and each named target group's
/// `greenlight:application` tag. Missing things are absences, not errors.
pub async fn observe(
    codedeploy: &CodeDeployClient,
    elbv2: &Elbv2Client,
    stack_id: &str,
    application: &str,
    group: &str,
    target_groups: &[&str],
) -> Result<Observation, AwsError> {
    let (app_arn, group_arn) = codedeploy_arns(stack_id, application, group).ok_or_else(|| {
        AwsError::unexpected(
            "ListTagsForResource",
            stack_id,
            "the request's StackId is not an ARN, so the resources' ARNs cannot be built",
        )
    })?;
    let mut observation = Observation::default();
    if application_exists(codedeploy, application).await? {
        observation.observed.application = Some(list_tags(codedeploy, &app_arn).await?);
        match read_deployment_group(codedeploy, application, group).await {
            Ok(facts) => {
                observation.observed.group = Some(ObservedGroup {
                    tags: list_tags(codedeploy, &group_arn).await?,
                    auto_scaling_groups: facts.auto_scaling_groups,
                });
            }
            Err(GroupReadError::NotFound { .. }) => {}
            Err(GroupReadError::Aws(e)) => return Err(e),
        }
        observation.observed.other_groups = list_groups(codedeploy, application)
            .await?
            .into_iter()
            .filter(|g| g != group)
            .collect();
    }
    for name in target_groups {
        match target_group_by_name(elbv2, name).await {
            Ok(facts) => {
                let tag = tag_value(elbv2, &facts.arn, APPLICATION_TAG_KEY)
                    .await
                    .map_err(|e| from_lb(e, name))?;
                observation
                    .observed
                    .target_group_tags
                    .insert(name.to_string(), tag);
                observation
                    .target_group_arns
                    .insert(name.to_string(), facts.arn);
            }
            Err(LbError::TargetGroupNotFound { .. }) => {}
            Err(e) => return Err(from_lb(e, name)),
        }
    }
    Ok(observation)
}

/// GetApplication: does `application` exist?
pub async fn application_exists(
    codedeploy: &CodeDeployClient,
    application: &str,
) -> Result<bool, AwsError> {
    match codedeploy
        .get_application()
        .application_name(application)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(err) => match err.as_service_error() {
            Some(GetApplicationError::ApplicationDoesNotExistException(_)) => Ok(false),
            _ => Err(AwsError::from_sdk("GetApplication", application, &err)),
        },
    }
}

/// ListTagsForResource of a CodeDeploy application or group ARN.
pub async fn list_tags(
    codedeploy: &CodeDeployClient,
    arn: &str,
) -> Result<Vec<(String, String)>, AwsError> {
    let mut tags = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let out = codedeploy
            .list_tags_for_resource()
            .resource_arn(arn)
            .set_next_token(next.clone())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ListTagsForResource", arn, &e))?;
        tags.extend(out.tags().iter().map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        }));
        next = out
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if next.is_none() {
            return Ok(tags);
        }
    }
}

/// ListDeploymentGroups of `application` (empty when it does not exist).
pub async fn list_groups(
    codedeploy: &CodeDeployClient,
    application: &str,
) -> Result<Vec<String>, AwsError> {
    let mut groups = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let answer = codedeploy
            .list_deployment_groups()
            .application_name(application)
            .set_next_token(next.clone())
            .send()
            .await;
        let out = match answer {
            Ok(out) => out,
            Err(err) => {
                return match err.as_service_error() {
                    Some(ListDeploymentGroupsError::ApplicationDoesNotExistException(_)) => {
                        Ok(Vec::new())
                    }
                    _ => Err(AwsError::from_sdk(
                        "ListDeploymentGroups",
                        application,
                        &err,
                    )),
                }
            }
        };
        groups.extend(out.deployment_groups().iter().cloned());
        next = out
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if next.is_none() {
            return Ok(groups);
        }
    }
}

fn codedeploy_tags(owner: &Owner) -> Vec<Tag> {
    owner
        .tags()
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The deployment group's blue/green settings greenlight needs: BLUE_GREEN
/// with traffic control, copy-ASG green fleet, the Ready wait with
/// STOP_DEPLOYMENT, blue termination after its wait, the target group.
struct Settings {
    style: DeploymentStyle,
    blue_green: BlueGreenDeploymentConfiguration,
    load_balancer: LoadBalancerInfo,
    rollback: AutoRollbackConfiguration,
}

fn settings(spec: &GroupSpec) -> Settings {
    Settings {
        style: DeploymentStyle::builder()
            .deployment_type(DeploymentType::BlueGreen)
            .deployment_option(DeploymentOption::WithTrafficControl)
            .build(),
        blue_green: BlueGreenDeploymentConfiguration::builder()
            .deployment_ready_option(
                DeploymentReadyOption::builder()
                    .action_on_timeout(DeploymentReadyAction::StopDeployment)
                    .wait_time_in_minutes(spec.ready_wait_minutes as i32)
                    .build(),
            )
            .green_fleet_provisioning_option(
                GreenFleetProvisioningOption::builder()
                    .action(GreenFleetProvisioningAction::CopyAutoScalingGroup)
                    .build(),
            )
            .terminate_blue_instances_on_deployment_success(
                BlueInstanceTerminationOption::builder()
                    .action(InstanceAction::Terminate)
                    .termination_wait_time_in_minutes(spec.termination_wait_minutes as i32)
                    .build(),
            )
            .build(),
        load_balancer: LoadBalancerInfo::builder()
            .target_group_info_list(TargetGroupInfo::builder().name(&spec.target_group).build())
            .build(),
        rollback: AutoRollbackConfiguration::builder()
            .enabled(true)
            .events(AutoRollbackEvent::DeploymentFailure)
            .events(AutoRollbackEvent::DeploymentStopOnRequest)
            .build(),
    }
}

/// Carries out one [`Action`]. `target_group_arns` maps names to ARNs (from
/// [`observe`]).
pub async fn apply_action(
    codedeploy: &CodeDeployClient,
    elbv2: &Elbv2Client,
    owner: &Owner,
    target_group_arns: &BTreeMap<String, String>,
    action: &Action,
) -> Result<(), AwsError> {
    match action {
        Action::CreateApplication { application } => {
            codedeploy
                .create_application()
                .application_name(application)
                .compute_platform(aws_sdk_codedeploy::types::ComputePlatform::Server)
                .set_tags(Some(codedeploy_tags(owner)))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("CreateApplication", application, &e))?;
        }
        Action::CreateGroup {
            spec,
            auto_scaling_group,
        } => {
            let s = settings(spec);
            codedeploy
                .create_deployment_group()
                .application_name(&spec.application)
                .deployment_group_name(&spec.group)
                .service_role_arn(&spec.service_role_arn)
                .deployment_config_name(&spec.deployment_config)
                .auto_scaling_groups(auto_scaling_group)
                .deployment_style(s.style)
                .blue_green_deployment_configuration(s.blue_green)
                .load_balancer_info(s.load_balancer)
                .auto_rollback_configuration(s.rollback)
                .set_tags(Some(codedeploy_tags(owner)))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("CreateDeploymentGroup", spec.physical_id(), &e))?;
        }
        Action::UpdateGroup {
            spec,
            auto_scaling_groups,
        } => {
            let s = settings(spec);
            codedeploy
                .update_deployment_group()
                .application_name(&spec.application)
                .current_deployment_group_name(&spec.group)
                .service_role_arn(&spec.service_role_arn)
                .deployment_config_name(&spec.deployment_config)
                .set_auto_scaling_groups(auto_scaling_groups.clone())
                .deployment_style(s.style)
                .blue_green_deployment_configuration(s.blue_green)
                .load_balancer_info(s.load_balancer)
                .auto_rollback_configuration(s.rollback)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("UpdateDeploymentGroup", spec.physical_id(), &e))?;
        }
        Action::TagTargetGroup {
            target_group,
            application,
        } => {
            let arn = tg_arn(target_group_arns, target_group)?;
            elbv2
                .add_tags()
                .resource_arns(arn)
                .tags(
                    aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                        .key(APPLICATION_TAG_KEY)
                        .value(application)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("AddTags", arn, &e))?;
        }
        Action::UntagTargetGroup { target_group } => {
            let arn = tg_arn(target_group_arns, target_group)?;
            elbv2
                .remove_tags()
                .resource_arns(arn)
                .tag_keys(APPLICATION_TAG_KEY)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("RemoveTags", arn, &e))?;
        }
        // Neither delete has a "does not exist" error (CodeDeploy API
        // reference DeleteDeploymentGroup, DeleteApplication): a missing one
        // is a success, as Delete must be.
        Action::DeleteGroup { application, group } => {
            codedeploy
                .delete_deployment_group()
                .application_name(application)
                .deployment_group_name(group)
                .send()
                .await
                .map_err(|e| {
                    AwsError::from_sdk(
                        "DeleteDeploymentGroup",
                        format!("{application}/{group}"),
                        &e,
                    )
                })?;
        }
        Action::DeleteApplication { application } => {
            codedeploy
                .delete_application()
                .application_name(application)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("DeleteApplication", application, &e))?;
        }
    }
    Ok(())
}

fn tg_arn<'a>(arns: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, AwsError> {
    arns.get(name).map(String::as_str).ok_or_else(|| {
        AwsError::unexpected(
            "AddTags",
            name,
            "the target group's ARN was not read before tagging it",
        )
    })
}

/// Why the answer could not be delivered to CloudFormation.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    #[error("the answer to CloudFormation could not be serialized: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("the answer to CloudFormation is {0} bytes, over the 4096-byte limit of custom resource responses")]
    TooLarge(usize),
    #[error("the ResponseURL {0:?} is not a URL")]
    BadUrl(String),
    #[error("PUT of the answer to the ResponseURL failed: {0}; CloudFormation waits for it until the resource times out")]
    Send(String),
    #[error("PUT of the answer to the ResponseURL answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
}

/// The HTTPS client that answers CloudFormation: hyper over rustls with the
/// system's root certificates and aws-lc-rs (the same TLS stack the AWS SDK
/// uses here); plain `http://` is allowed for the local cloud's stand-in.
pub type ResponseClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

/// Builds the [`ResponseClient`] (once, at start-up).
pub fn response_client() -> std::io::Result<ResponseClient> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(https),
    )
}

/// How long one PUT of the answer may take.
pub const RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// PUTs `response` to CloudFormation's pre-signed `url` (S3): JSON body,
/// an empty Content-Type (the URL is signed without one), at most 4096 bytes
/// (CloudFormation user guide, "Custom resource response objects").
pub async fn send_response(
    http: &ResponseClient,
    url: &str,
    response: &CustomResourceResponse,
) -> Result<(), ResponseError> {
    let body = serde_json::to_vec(response)?;
    if body.len() > greenlight_core::group_resource::MAX_RESPONSE_BYTES {
        return Err(ResponseError::TooLarge(body.len()));
    }
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| ResponseError::BadUrl(url.chars().take(100).collect()))?;
    let request = hyper::Request::put(uri)
        .header("content-type", "")
        .header("content-length", body.len())
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .map_err(|e| ResponseError::Send(e.to_string()))?;
    let answer = tokio::time::timeout(RESPONSE_TIMEOUT, http.request(request))
        .await
        .map_err(|_| ResponseError::Send(format!("no answer within {RESPONSE_TIMEOUT:?}")))?
        .map_err(|e| ResponseError::Send(e.to_string()))?;
    let status = answer.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    use http_body_util::BodyExt;
    let body = match tokio::time::timeout(RESPONSE_TIMEOUT, answer.into_body().collect()).await {
        Ok(Ok(collected)) => String::from_utf8_lossy(&collected.to_bytes())
            .chars()
            .take(300)
            .collect(),
        _ => String::new(),
    };
    Err(ResponseError::Status { status, body })
}

#[cfg(test)]
#[path = "group_resource_tests.rs"]
mod tests;
