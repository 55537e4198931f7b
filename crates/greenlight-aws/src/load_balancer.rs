//! The deployment group's ALB target groups: find them, read their
//! health-check settings and deregistration delay, tune them, and put them
//! back from the snapshot the tuner recorded (pipeline state or the
//! `greenlight:snapshot` tag). Decisions live in `greenlight_core::tuning`;
//! this module only reads and writes ELBv2 / CodeDeploy.
//!
//! Used by health-check-tuner (tune / restore), failure-handler (restore
//! without the pipeline state, from the tag) and traffic-validator (port; in
//! ECS hook mode the green target group's registered targets).

use aws_sdk_codedeploy::Client as CodeDeployClient;
use aws_sdk_elasticloadbalancingv2::config::http::HttpResponse;
use aws_sdk_elasticloadbalancingv2::error::SdkError;
use aws_sdk_elasticloadbalancingv2::types::{Tag, TargetGroup, TargetGroupAttribute};
use aws_sdk_elasticloadbalancingv2::Client as Elbv2Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use greenlight_core::errors;
use greenlight_core::hook::{RegisteredTarget, TargetGroupFacts};
use greenlight_core::model::{HealthCheckSettings, TargetGroupSnapshot};
use greenlight_core::tuning::{
    decode_snapshot_tag, plan_restore, plan_tune, Changes, FastProfile, TagError,
};

pub use greenlight_core::tuning::SNAPSHOT_TAG_KEY;

use crate::deployment_group::{read_deployment_group, GroupReadError};
use crate::error::AwsError;

/// The target-group attribute holding the deregistration delay.
pub const DEREGISTRATION_DELAY_ATTRIBUTE: &str = "deregistration_delay.timeout_seconds";

/// Everything that can go wrong reading or changing the load balancer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LbError {
    #[error("CodeDeploy deployment group {group:?} of application {application:?} does not exist ({detail}); check the application and deployment group names")]
    DeploymentGroupNotFound {
        application: String,
        group: String,
        detail: String,
    },
    #[error("CodeDeploy deployment group {group:?} of application {application:?} has no target group in loadBalancerInfo.targetGroupInfoList; greenlight tunes ALB target groups: add the ALB target group to the deployment group (classic ELBs in elbInfoList are not supported)")]
    NoLoadBalancer { application: String, group: String },
    #[error("target group {target_group} does not exist ({detail}); check the deployment group's load balancer settings")]
    TargetGroupNotFound {
        target_group: String,
        detail: String,
    },
    #[error("target group {target_group_arn}: {source}")]
    CorruptSnapshotTag {
        target_group_arn: String,
        #[source]
        source: TagError,
    },
    /// Any other AWS error (transient or not), or an answer greenlight cannot
    /// interpret.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl LbError {
    /// Stable name for Lambda's `errorType` (the state machine matches it),
    /// from [`greenlight_core::errors`].
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::DeploymentGroupNotFound { .. } => errors::DEPLOYMENT_GROUP_NOT_FOUND,
            Self::NoLoadBalancer { .. } => errors::NO_LOAD_BALANCER,
            Self::TargetGroupNotFound { .. } => errors::TARGET_GROUP_NOT_FOUND,
            Self::CorruptSnapshotTag { .. } => errors::CORRUPT_SNAPSHOT_TAG,
            Self::Aws(e) => e.error_type(),
        }
    }

    /// True for a transient AWS error (throttling, 5xx, timeout).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Aws(e) if e.transient)
    }

    fn unexpected(operation: &'static str, target: &str, message: impl Into<String>) -> Self {
        Self::Aws(AwsError::unexpected(operation, target, message))
    }
}

impl From<GroupReadError> for LbError {
    fn from(e: GroupReadError) -> Self {
        match e {
            GroupReadError::NotFound {
                application,
                group,
                detail,
            } => Self::DeploymentGroupNotFound {
                application,
                group,
                detail,
            },
            GroupReadError::Aws(e) => Self::Aws(e),
        }
    }
}

/// What [`restore_target_group`] / [`restore_recorded`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreOutcome {
    /// Settings were put back and/or the snapshot tag was removed.
    Restored,
    /// Settings already equal the snapshot and no tag was left: nothing done.
    AlreadyRestored,
    /// No snapshot tag on the target group: it was not tuned (or is restored).
    NotTuned,
}

/// Maps an ELBv2 error: TargetGroupNotFoundException → `TargetGroupNotFound`,
/// anything else → [`AwsError`] (transient or not).
pub(crate) fn elb_error<E>(
    operation: &'static str,
    target: &str,
    err: SdkError<E, HttpResponse>,
    is_not_found: impl Fn(&E) -> bool,
) -> LbError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let aws = AwsError::from_sdk(operation, target, &err);
    if err.as_service_error().is_some_and(is_not_found) {
        LbError::TargetGroupNotFound {
            target_group: target.to_string(),
            detail: aws.message,
        }
    } else {
        LbError::Aws(aws)
    }
}

/// The ARNs of the deployment group's target groups, in the order of
/// `loadBalancerInfo.targetGroupInfoList` (GetDeploymentGroup, then
/// DescribeTargetGroups by name).
pub async fn target_group_arns(
    codedeploy: &CodeDeployClient,
    elbv2: &Elbv2Client,
    application: &str,
    group: &str,
) -> Result<Vec<String>, LbError> {
    let names = read_deployment_group(codedeploy, application, group)
        .await?
        .target_groups;
    if names.is_empty() {
        return Err(LbError::NoLoadBalancer {
            application: application.to_string(),
            group: group.to_string(),
        });
    }
    let joined = names.join(", ");
    let described = elbv2
        .describe_target_groups()
        .set_names(Some(names.clone()))
        .send()
        .await
        .map_err(|err| {
            elb_error("DescribeTargetGroups", &joined, err, |e| {
                e.is_target_group_not_found_exception()
            })
        })?;
    names
        .iter()
        .map(|name| {
            described
                .target_groups()
                .iter()
                .find(|tg| tg.target_group_name() == Some(name.as_str()))
                .and_then(|tg| tg.target_group_arn())
                .map(str::to_string)
                .ok_or_else(|| LbError::TargetGroupNotFound {
                    target_group: name.clone(),
                    detail: "DescribeTargetGroups did not return it".to_string(),
                })
        })
        .collect()
}

/// The load balancers in front of a target group (DescribeTargetGroups
/// `LoadBalancerArns`): the `LoadBalancer` dimension of its ELB metrics.
pub async fn target_group_load_balancers(
    elbv2: &Elbv2Client,
    arn: &str,
) -> Result<Vec<String>, LbError> {
    let tg = describe_target_group(elbv2, TargetGroupKey::Arn(arn)).await?;
    Ok(tg.load_balancer_arns().to_vec())
}

/// How DescribeTargetGroups is asked for one target group.
#[derive(Debug, Clone, Copy)]
enum TargetGroupKey<'a> {
    Arn(&'a str),
    Name(&'a str),
}

async fn describe_target_group(
    elbv2: &Elbv2Client,
    key: TargetGroupKey<'_>,
) -> Result<TargetGroup, LbError> {
    let (request, wanted) = match key {
        TargetGroupKey::Arn(arn) => (elbv2.describe_target_groups().target_group_arns(arn), arn),
        TargetGroupKey::Name(name) => (elbv2.describe_target_groups().names(name), name),
    };
    let out = request.send().await.map_err(|err| {
        elb_error("DescribeTargetGroups", wanted, err, |e| {
            e.is_target_group_not_found_exception()
        })
    })?;
    out.target_groups()
        .iter()
        .find(|tg| match key {
            TargetGroupKey::Arn(arn) => tg.target_group_arn() == Some(arn),
            TargetGroupKey::Name(name) => tg.target_group_name() == Some(name),
        })
        .cloned()
        .ok_or_else(|| LbError::TargetGroupNotFound {
            target_group: wanted.to_string(),
            detail: "DescribeTargetGroups did not return it".to_string(),
        })
}

/// An ELBv2 port as a TCP port; `problem` words the error for a value that is not one.
fn tcp_port(
    port: Option<i32>,
    operation: &'static str,
    resource: &str,
    problem: impl FnOnce(i32) -> String,
) -> Result<Option<u16>, LbError> {
    port.map(|p| u16::try_from(p).map_err(|_| LbError::unexpected(operation, resource, problem(p))))
        .transpose()
}

fn seconds(field: &'static str, value: Option<i32>, arn: &str) -> Result<u32, LbError> {
    let value = value.ok_or_else(|| {
        LbError::unexpected(
            "DescribeTargetGroups",
            arn,
            format!("no {field} in the answer (is this an instance/ip target group with health checks?)"),
        )
    })?;
    u32::try_from(value).map_err(|_| {
        LbError::unexpected(
            "DescribeTargetGroups",
            arn,
            format!("{field} is negative ({value})"),
        )
    })
}

/// The target group's current health-check settings and deregistration delay
/// (DescribeTargetGroups + DescribeTargetGroupAttributes).
pub async fn snapshot(elbv2: &Elbv2Client, arn: &str) -> Result<TargetGroupSnapshot, LbError> {
    let tg = describe_target_group(elbv2, TargetGroupKey::Arn(arn)).await?;
    let health_check = HealthCheckSettings {
        interval_seconds: seconds(
            "HealthCheckIntervalSeconds",
            tg.health_check_interval_seconds(),
            arn,
        )?,
        timeout_seconds: seconds(
            "HealthCheckTimeoutSeconds",
            tg.health_check_timeout_seconds(),
            arn,
        )?,
        healthy_threshold: seconds("HealthyThresholdCount", tg.healthy_threshold_count(), arn)?,
        unhealthy_threshold: seconds(
            "UnhealthyThresholdCount",
            tg.unhealthy_threshold_count(),
            arn,
        )?,
    };
    let attrs = elbv2
        .describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|err| {
            elb_error("DescribeTargetGroupAttributes", arn, err, |e| {
                e.is_target_group_not_found_exception()
            })
        })?;
    let raw = attrs
        .attributes()
        .iter()
        .find(|a| a.key() == Some(DEREGISTRATION_DELAY_ATTRIBUTE))
        .and_then(|a| a.value())
        .ok_or_else(|| {
            LbError::unexpected(
                "DescribeTargetGroupAttributes",
                arn,
                format!("no {DEREGISTRATION_DELAY_ATTRIBUTE} attribute in the answer"),
            )
        })?;
    let deregistration_delay_seconds = raw.trim().parse::<u32>().map_err(|_| {
        LbError::unexpected(
            "DescribeTargetGroupAttributes",
            arn,
            format!("{DEREGISTRATION_DELAY_ATTRIBUTE}={raw:?} is not a number of seconds"),
        )
    })?;
    Ok(TargetGroupSnapshot {
        target_group_arn: arn.to_string(),
        health_check,
        deregistration_delay_seconds,
    })
}

/// The raw value of the target group's snapshot tag, if any (DescribeTags).
pub async fn snapshot_tag_value(elbv2: &Elbv2Client, arn: &str) -> Result<Option<String>, LbError> {
    tag_value(elbv2, arn, SNAPSHOT_TAG_KEY).await
}

/// The value of the target group's tag `key`, if any (DescribeTags).
pub async fn tag_value(
    elbv2: &Elbv2Client,
    arn: &str,
    key: &str,
) -> Result<Option<String>, LbError> {
    Ok(target_group_tags(elbv2, arn)
        .await?
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v))
}

/// Every tag of a target group (DescribeTags), as (key, value).
pub async fn target_group_tags(
    elbv2: &Elbv2Client,
    arn: &str,
) -> Result<Vec<(String, String)>, LbError> {
    let out = elbv2
        .describe_tags()
        .resource_arns(arn)
        .send()
        .await
        .map_err(|err| {
            elb_error("DescribeTags", arn, err, |e| {
                e.is_target_group_not_found_exception()
            })
        })?;
    Ok(out
        .tag_descriptions()
        .iter()
        .filter(|d| d.resource_arn().is_none_or(|r| r == arn))
        .flat_map(|d| d.tags())
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect())
}

/// The snapshot the tuner recorded on the target group (its
/// `greenlight:snapshot` tag); `None` when there is no tag. A tag that does not
/// decode is `CorruptSnapshotTag`, never ignored.
pub async fn recorded_snapshot(
    elbv2: &Elbv2Client,
    arn: &str,
) -> Result<Option<TargetGroupSnapshot>, LbError> {
    match snapshot_tag_value(elbv2, arn).await? {
        None => Ok(None),
        Some(value) => decode_snapshot_tag(arn, &value)
            .map(Some)
            .map_err(|source| LbError::CorruptSnapshotTag {
                target_group_arn: arn.to_string(),
                source,
            }),
    }
}

/// The target group's traffic port (`None` for Lambda target groups).
pub async fn target_group_port(elbv2: &Elbv2Client, arn: &str) -> Result<Option<u16>, LbError> {
    let tg = describe_target_group(elbv2, TargetGroupKey::Arn(arn)).await?;
    tcp_port(tg.port(), "DescribeTargetGroups", arn, |port| {
        format!("port {port} is not a TCP port")
    })
}

/// The target group named `name` (DescribeTargetGroups by name): its ARN,
/// target type and port, for the traffic validator's ECS hook mode.
pub async fn target_group_by_name(
    elbv2: &Elbv2Client,
    name: &str,
) -> Result<TargetGroupFacts, LbError> {
    let tg = describe_target_group(elbv2, TargetGroupKey::Name(name)).await?;
    let arn = tg
        .target_group_arn()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| LbError::unexpected("DescribeTargetGroups", name, "no TargetGroupArn"))?;
    let port = tcp_port(tg.port(), "DescribeTargetGroups", name, |port| {
        format!("port {port} is not a TCP port")
    })?;
    Ok(TargetGroupFacts {
        name: name.to_string(),
        arn: arn.to_string(),
        target_type: tg.target_type().map(|t| t.as_str().to_string()),
        port,
    })
}

/// What `greenlight plan` compares of a target group (the bake's standby
/// against the deployment's, [`greenlight_core::standby_plan`]): protocol,
/// port, VPC, target type, the load balancers forwarding to it, its health
/// check (DescribeTargetGroups by name).
pub async fn target_group_shape(
    elbv2: &Elbv2Client,
    name: &str,
) -> Result<greenlight_core::standby_plan::TargetGroupShape, LbError> {
    use greenlight_core::standby_plan::{HealthCheckShape, TargetGroupShape};
    let tg = describe_target_group(elbv2, TargetGroupKey::Name(name)).await?;
    let arn = tg
        .target_group_arn()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| LbError::unexpected("DescribeTargetGroups", name, "no TargetGroupArn"))?
        .to_string();
    Ok(TargetGroupShape {
        name: name.to_string(),
        protocol: tg.protocol().map(|p| p.as_str().to_string()),
        port: tg.port(),
        vpc_id: tg.vpc_id().map(str::to_string),
        target_type: tg.target_type().map(|t| t.as_str().to_string()),
        load_balancer_arns: tg.load_balancer_arns().to_vec(),
        health_check: HealthCheckShape {
            enabled: tg.health_check_enabled(),
            protocol: tg.health_check_protocol().map(|p| p.as_str().to_string()),
            port: tg.health_check_port().map(str::to_string),
            path: tg.health_check_path().map(str::to_string),
            matcher: tg.matcher().and_then(|m| m.http_code()).map(str::to_string),
            interval_seconds: tg.health_check_interval_seconds(),
            timeout_seconds: tg.health_check_timeout_seconds(),
            healthy_threshold: tg.healthy_threshold_count(),
            unhealthy_threshold: tg.unhealthy_threshold_count(),
        },
        arn,
    })
}

/// The targets registered in the target group (DescribeTargetHealth): id,
/// port and health state of each.
pub async fn registered_targets(
    elbv2: &Elbv2Client,
    arn: &str,
) -> Result<Vec<RegisteredTarget>, LbError> {
    let out = elbv2
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|err| {
            elb_error("DescribeTargetHealth", arn, err, |e| {
                e.is_target_group_not_found_exception()
            })
        })?;
    let mut targets = Vec::new();
    for d in out.target_health_descriptions() {
        let Some(target) = d.target() else { continue };
        let id = target.id().unwrap_or_default().to_string();
        let port = tcp_port(target.port(), "DescribeTargetHealth", arn, |port| {
            format!("target {id} has port {port}, which is not a TCP port")
        })?;
        targets.push(RegisteredTarget {
            id,
            port,
            state: d
                .target_health()
                .and_then(|h| h.state())
                .map(|s| s.as_str().to_string()),
        });
    }
    Ok(targets)
}

/// Applies `changes` to the target group: ModifyTargetGroup (health check),
/// then ModifyTargetGroupAttributes (deregistration delay). Empty = no call.
pub async fn apply(elbv2: &Elbv2Client, arn: &str, changes: &Changes) -> Result<(), LbError> {
    if let Some(hc) = changes.health_check {
        elbv2
            .modify_target_group()
            .target_group_arn(arn)
            .health_check_interval_seconds(to_i32(hc.interval_seconds))
            .health_check_timeout_seconds(to_i32(hc.timeout_seconds))
            .healthy_threshold_count(to_i32(hc.healthy_threshold))
            .unhealthy_threshold_count(to_i32(hc.unhealthy_threshold))
            .send()
            .await
            .map_err(|err| {
                elb_error("ModifyTargetGroup", arn, err, |e| {
                    e.is_target_group_not_found_exception()
                })
            })?;
    }
    if let Some(delay) = changes.deregistration_delay_seconds {
        elbv2
            .modify_target_group_attributes()
            .target_group_arn(arn)
            .attributes(
                TargetGroupAttribute::builder()
                    .key(DEREGISTRATION_DELAY_ATTRIBUTE)
                    .value(delay.to_string())
                    .build(),
            )
            .send()
            .await
            .map_err(|err| {
                elb_error("ModifyTargetGroupAttributes", arn, err, |e| {
                    e.is_target_group_not_found_exception()
                })
            })?;
    }
    Ok(())
}

/// Values come from validated profiles or ELBv2 itself, all far below i32::MAX.
fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Tunes one target group to `profile` and returns the ORIGINAL settings:
/// reads the current settings and the recorded tag; writes the tag first
/// (AddTags) when none is recorded, then applies the profile. A repeated tune
/// keeps the recorded original.
pub async fn tune(
    elbv2: &Elbv2Client,
    arn: &str,
    profile: &FastProfile,
) -> Result<TargetGroupSnapshot, LbError> {
    let current = snapshot(elbv2, arn).await?;
    let recorded = recorded_snapshot(elbv2, arn).await?;
    let plan = plan_tune(&current, recorded.as_ref(), profile);
    if let Some(value) = &plan.tag_value {
        elbv2
            .add_tags()
            .resource_arns(arn)
            .tags(Tag::builder().key(SNAPSHOT_TAG_KEY).value(value).build())
            .send()
            .await
            .map_err(|err| {
                elb_error("AddTags", arn, err, |e| {
                    e.is_target_group_not_found_exception()
                })
            })?;
    }
    apply(elbv2, arn, &plan.changes).await?;
    tracing::info!(
        target_group = arn,
        recorded_before = recorded.is_some(),
        changed = !plan.changes.is_empty(),
        "tuned target group"
    );
    Ok(plan.keep)
}

/// Puts back exactly `snapshot` on its target group, then removes the
/// snapshot tag (last, so a failed restore can be retried from the tag).
/// Idempotent: a restored group needs no call beyond the reads.
pub async fn restore_target_group(
    elbv2: &Elbv2Client,
    snapshot_to_restore: &TargetGroupSnapshot,
) -> Result<RestoreOutcome, LbError> {
    let arn = snapshot_to_restore.target_group_arn.as_str();
    let current = snapshot(elbv2, arn).await?;
    let tag_present = snapshot_tag_value(elbv2, arn).await?.is_some();
    let plan = plan_restore(&current, snapshot_to_restore, tag_present);
    if plan.is_noop() {
        return Ok(RestoreOutcome::AlreadyRestored);
    }
    apply(elbv2, arn, &plan.changes).await?;
    if plan.remove_tag {
        elbv2
            .remove_tags()
            .resource_arns(arn)
            .tag_keys(SNAPSHOT_TAG_KEY)
            .send()
            .await
            .map_err(|err| {
                elb_error("RemoveTags", arn, err, |e| {
                    e.is_target_group_not_found_exception()
                })
            })?;
    }
    tracing::info!(target_group = arn, "restored target group");
    Ok(RestoreOutcome::Restored)
}

/// [`restore_target_group`] for callers that only need success.
pub async fn restore(
    elbv2: &Elbv2Client,
    snapshot_to_restore: &TargetGroupSnapshot,
) -> Result<(), LbError> {
    restore_target_group(elbv2, snapshot_to_restore)
        .await
        .map(|_| ())
}

/// Restores the target group from its own recorded tag (no pipeline state
/// needed): `NotTuned` when there is no tag.
pub async fn restore_recorded(elbv2: &Elbv2Client, arn: &str) -> Result<RestoreOutcome, LbError> {
    match recorded_snapshot(elbv2, arn).await? {
        None => Ok(RestoreOutcome::NotTuned),
        Some(s) => restore_target_group(elbv2, &s).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codedeploy::operation::get_deployment_group::{
        GetDeploymentGroupError, GetDeploymentGroupOutput,
    };
    use aws_sdk_codedeploy::types::{DeploymentGroupInfo, LoadBalancerInfo, TargetGroupInfo};
    use aws_sdk_elasticloadbalancingv2::operation::add_tags::AddTagsOutput;
    use aws_sdk_elasticloadbalancingv2::operation::describe_tags::{
        DescribeTagsError, DescribeTagsOutput,
    };
    use aws_sdk_elasticloadbalancingv2::operation::describe_target_group_attributes::DescribeTargetGroupAttributesOutput;
    use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::{
        DescribeTargetGroupsError, DescribeTargetGroupsOutput,
    };
    use aws_sdk_elasticloadbalancingv2::operation::modify_target_group::ModifyTargetGroupOutput;
    use aws_sdk_elasticloadbalancingv2::operation::modify_target_group_attributes::ModifyTargetGroupAttributesOutput;
    use aws_sdk_elasticloadbalancingv2::operation::remove_tags::RemoveTagsOutput;
    use aws_sdk_elasticloadbalancingv2::types::TagDescription;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use std::sync::{Arc, Mutex};

    const ARN: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-tg/50dc6c495c0c9188";
    const SEED_TAG: &str = "v1 interval=30 timeout=5 healthy=10 unhealthy=2 deregistration=300";

    fn tg(interval: i32, timeout: i32, healthy: i32, unhealthy: i32) -> TargetGroup {
        TargetGroup::builder()
            .target_group_arn(ARN)
            .target_group_name("web-tg")
            .port(8080)
            .health_check_interval_seconds(interval)
            .health_check_timeout_seconds(timeout)
            .healthy_threshold_count(healthy)
            .unhealthy_threshold_count(unhealthy)
            .build()
    }

    fn describe_tg(t: TargetGroup) -> Rule {
        mock!(Elbv2Client::describe_target_groups)
            .match_requests(|r| r.target_group_arns() == [ARN])
            .then_output(move || {
                DescribeTargetGroupsOutput::builder()
                    .target_groups(t.clone())
                    .build()
            })
    }

    fn dereg(value: &'static str) -> Rule {
        mock!(Elbv2Client::describe_target_group_attributes)
            .match_requests(|r| r.target_group_arn() == Some(ARN))
            .then_output(move || {
                DescribeTargetGroupAttributesOutput::builder()
                    .attributes(
                        TargetGroupAttribute::builder()
                            .key("stickiness.enabled")
                            .value("false")
                            .build(),
                    )
                    .attributes(
                        TargetGroupAttribute::builder()
                            .key(DEREGISTRATION_DELAY_ATTRIBUTE)
                            .value(value)
                            .build(),
                    )
                    .build()
            })
    }

    fn tags(value: Option<&'static str>) -> Rule {
        mock!(Elbv2Client::describe_tags).then_output(move || {
            let mut d = TagDescription::builder()
                .resource_arn(ARN)
                .tags(Tag::builder().key("team").value("web").build());
            if let Some(v) = value {
                d = d.tags(Tag::builder().key(SNAPSHOT_TAG_KEY).value(v).build());
            }
            DescribeTagsOutput::builder()
                .tag_descriptions(d.build())
                .build()
        })
    }

    #[tokio::test]
    async fn target_group_shape_reads_what_plan_compares() {
        use aws_sdk_elasticloadbalancingv2::types::{Matcher, ProtocolEnum, TargetTypeEnum};
        let found = mock!(Elbv2Client::describe_target_groups)
            .match_requests(|r| r.names() == ["web-standby"] && r.target_group_arns().is_empty())
            .then_output(|| {
                DescribeTargetGroupsOutput::builder()
                    .target_groups(
                        TargetGroup::builder()
                            .target_group_arn(ARN)
                            .target_group_name("web-standby")
                            .protocol(ProtocolEnum::Http)
                            .port(8080)
                            .vpc_id("vpc-1")
                            .target_type(TargetTypeEnum::Instance)
                            .load_balancer_arns("arn:lb/app/web/1")
                            .health_check_enabled(true)
                            .health_check_protocol(ProtocolEnum::Http)
                            .health_check_port("traffic-port")
                            .health_check_path("/health")
                            .matcher(Matcher::builder().http_code("200").build())
                            .health_check_interval_seconds(30)
                            .health_check_timeout_seconds(5)
                            .healthy_threshold_count(5)
                            .unhealthy_threshold_count(2)
                            .build(),
                    )
                    .build()
            });
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&found]);
        let shape = target_group_shape(&client, "web-standby").await.unwrap();
        assert_eq!(
            shape,
            greenlight_core::standby_plan::TargetGroupShape {
                name: "web-standby".into(),
                arn: ARN.into(),
                protocol: Some("HTTP".into()),
                port: Some(8080),
                vpc_id: Some("vpc-1".into()),
                target_type: Some("instance".into()),
                load_balancer_arns: vec!["arn:lb/app/web/1".into()],
                health_check: greenlight_core::standby_plan::HealthCheckShape {
                    enabled: Some(true),
                    protocol: Some("HTTP".into()),
                    port: Some("traffic-port".into()),
                    path: Some("/health".into()),
                    matcher: Some("200".into()),
                    interval_seconds: Some(30),
                    timeout_seconds: Some(5),
                    healthy_threshold: Some(5),
                    unhealthy_threshold: Some(2),
                },
            }
        );
        assert_eq!(found.num_calls(), 1);
    }

    #[tokio::test]
    async fn target_group_shape_of_a_missing_group_is_not_found() {
        let missing = mock!(Elbv2Client::describe_target_groups).then_error(|| {
            DescribeTargetGroupsError::TargetGroupNotFoundException(
                aws_sdk_elasticloadbalancingv2::types::error::TargetGroupNotFoundException::builder()
                    .message("One or more target groups not found")
                    .build(),
            )
        });
        let client = mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::MatchAny,
            [&missing]
        );
        let err = target_group_shape(&client, "web-standby")
            .await
            .unwrap_err();
        assert!(
            matches!(err, LbError::TargetGroupNotFound { .. }),
            "{err:?}"
        );
    }

    fn logged<T>(log: &Arc<Mutex<Vec<&'static str>>>, name: &'static str, out: T) -> T {
        log.lock().unwrap().push(name);
        out
    }

    #[tokio::test]
    async fn snapshot_reads_settings_and_delay() {
        let (a, b) = (describe_tg(tg(30, 5, 10, 2)), dereg("300"));
        let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&a, &b]);
        let s = snapshot(&elb, ARN).await.unwrap();
        assert_eq!(
            s,
            TargetGroupSnapshot {
                target_group_arn: ARN.into(),
                health_check: HealthCheckSettings {
                    interval_seconds: 30,
                    timeout_seconds: 5,
                    healthy_threshold: 10,
                    unhealthy_threshold: 2
                },
                deregistration_delay_seconds: 300
            }
        );
    }

    #[tokio::test]
    async fn snapshot_rejects_missing_attribute() {
        let a = describe_tg(tg(30, 5, 10, 2));
        let b = mock!(Elbv2Client::describe_target_group_attributes)
            .then_output(|| DescribeTargetGroupAttributesOutput::builder().build());
        let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&a, &b]);
        let err = snapshot(&elb, ARN).await.unwrap_err();
        assert_eq!(err.error_type(), "AwsError");
        assert!(
            err.to_string().contains(DEREGISTRATION_DELAY_ATTRIBUTE),
            "{err}"
        );
    }

    #[tokio::test]
    async fn snapshot_of_missing_target_group() {
        let a = mock!(Elbv2Client::describe_target_groups).then_error(|| {
            DescribeTargetGroupsError::TargetGroupNotFoundException(
                aws_sdk_elasticloadbalancingv2::types::error::TargetGroupNotFoundException::builder()
                    .message("One or more target groups not found")
                    .build(),
            )
        });
        let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&a]);
        let err = snapshot(&elb, ARN).await.unwrap_err();
        assert_eq!(err.error_type(), "TargetGroupNotFound");
        assert!(err.to_string().contains(ARN), "{err}");
    }

    #[tokio::test]
    async fn recorded_snapshot_decodes_tag_or_none() {
        let t = tags(Some(SEED_TAG));
        let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&t]);
        let s = recorded_snapshot(&elb, ARN).await.unwrap().unwrap();
        assert_eq!(s.health_check.healthy_threshold, 10);
        assert_eq!(s.target_group_arn, ARN);

        let t = tags(None);
        let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&t]);
        assert_eq!(recorded_snapshot(&elb, ARN).await.unwrap(), None);
    }

    #[tokio::test]
    async fn recorded_snapshot_rejects_corrupt_tag() {
        let t = tags(Some("v1 interval=thirty"));
        let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&t]);
        let err = recorded_snapshot(&elb, ARN).await.unwrap_err();
        assert_eq!(err.error_type(), "CorruptSnapshotTag");
        let msg = err.to_string();
        assert!(
            msg.contains("greenlight:snapshot") && msg.contains(ARN),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn describe_tags_not_found() {
        let t = mock!(Elbv2Client::describe_tags).then_error(|| {
            DescribeTagsError::TargetGroupNotFoundException(
                aws_sdk_elasticloadbalancingv2::types::error::TargetGroupNotFoundException::builder()
                    .build(),
            )
        });
        let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&t]);
        let err = recorded_snapshot(&elb, ARN).await.unwrap_err();
        assert_eq!(err.error_type(), "TargetGroupNotFound");
    }

    #[tokio::test]
    async fn port_of_target_group() {
        let a = describe_tg(tg(30, 5, 10, 2));
        let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&a]);
        assert_eq!(target_group_port(&elb, ARN).await.unwrap(), Some(8080));
        let lambda_tg = TargetGroup::builder().target_group_arn(ARN).build();
        let a = describe_tg(lambda_tg);
        let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&a]);
        assert_eq!(target_group_port(&elb, ARN).await.unwrap(), None);
    }

    #[tokio::test]
    async fn tune_tags_first_then_applies_profile() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
        let a = describe_tg(tg(30, 5, 10, 2));
        let b = dereg("300");
        let c = tags(None);
        let add = mock!(Elbv2Client::add_tags)
            .match_requests(|r| {
                r.resource_arns() == [ARN]
                    && r.tags().len() == 1
                    && r.tags()[0].key() == Some(SNAPSHOT_TAG_KEY)
                    && r.tags()[0].value() == Some(SEED_TAG)
            })
            .then_compute_output(move |_| logged(&l1, "AddTags", AddTagsOutput::builder().build()));
        let modify = mock!(Elbv2Client::modify_target_group)
            .match_requests(|r| {
                r.target_group_arn() == Some(ARN)
                    && r.health_check_interval_seconds() == Some(5)
                    && r.health_check_timeout_seconds() == Some(2)
                    && r.healthy_threshold_count() == Some(2)
                    && r.unhealthy_threshold_count() == Some(2)
                    && r.health_check_path().is_none()
                    && r.health_check_port().is_none()
            })
            .then_compute_output(move |_| {
                logged(
                    &l2,
                    "ModifyTargetGroup",
                    ModifyTargetGroupOutput::builder().build(),
                )
            });
        let attrs = mock!(Elbv2Client::modify_target_group_attributes)
            .match_requests(|r| {
                r.target_group_arn() == Some(ARN)
                    && r.attributes().len() == 1
                    && r.attributes()[0].key() == Some(DEREGISTRATION_DELAY_ATTRIBUTE)
                    && r.attributes()[0].value() == Some("30")
            })
            .then_compute_output(move |_| {
                logged(
                    &l3,
                    "ModifyTargetGroupAttributes",
                    ModifyTargetGroupAttributesOutput::builder().build(),
                )
            });
        let elb = mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::MatchAny,
            [&a, &b, &c, &add, &modify, &attrs]
        );
        let kept = tune(&elb, ARN, &FastProfile::default()).await.unwrap();
        assert_eq!(kept.health_check.interval_seconds, 30);
        assert_eq!(kept.deregistration_delay_seconds, 300);
        assert_eq!(
            *log.lock().unwrap(),
            vec![
                "AddTags",
                "ModifyTargetGroup",
                "ModifyTargetGroupAttributes"
            ]
        );
    }

    #[tokio::test]
    async fn restore_puts_back_and_removes_tag_then_is_idempotent() {
        let a = describe_tg(tg(5, 2, 2, 2));
        let b = dereg("30");
        let c = tags(Some(SEED_TAG));
        let modify = mock!(Elbv2Client::modify_target_group)
            .match_requests(|r| {
                r.health_check_interval_seconds() == Some(30)
                    && r.health_check_timeout_seconds() == Some(5)
                    && r.healthy_threshold_count() == Some(10)
                    && r.unhealthy_threshold_count() == Some(2)
            })
            .then_output(|| ModifyTargetGroupOutput::builder().build());
        let attrs = mock!(Elbv2Client::modify_target_group_attributes)
            .match_requests(|r| r.attributes()[0].value() == Some("300"))
            .then_output(|| ModifyTargetGroupAttributesOutput::builder().build());
        let remove = mock!(Elbv2Client::remove_tags)
            .match_requests(|r| r.resource_arns() == [ARN] && r.tag_keys() == [SNAPSHOT_TAG_KEY])
            .then_output(|| RemoveTagsOutput::builder().build());
        let elb = mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::MatchAny,
            [&a, &b, &c, &modify, &attrs, &remove]
        );
        assert_eq!(
            restore_recorded(&elb, ARN).await.unwrap(),
            RestoreOutcome::Restored
        );
        assert_eq!(
            (modify.num_calls(), attrs.num_calls(), remove.num_calls()),
            (1, 1, 1)
        );

        // Second time: settings equal, no tag → no write at all.
        let a = describe_tg(tg(30, 5, 10, 2));
        let b = dereg("300");
        let c = tags(None);
        let elb = mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::MatchAny,
            [&a, &b, &c]
        );
        let s = decode_snapshot_tag(ARN, SEED_TAG).unwrap();
        assert_eq!(
            restore_target_group(&elb, &s).await.unwrap(),
            RestoreOutcome::AlreadyRestored
        );
        restore(&elb, &s).await.unwrap();
        assert_eq!(
            restore_recorded(&elb, ARN).await.unwrap(),
            RestoreOutcome::NotTuned
        );
    }

    #[tokio::test]
    async fn target_group_arns_resolves_names_in_order() {
        let dg = mock!(CodeDeployClient::get_deployment_group)
            .match_requests(|r| {
                r.application_name() == Some("web") && r.deployment_group_name() == Some("web-bg")
            })
            .then_output(|| {
                GetDeploymentGroupOutput::builder()
                    .deployment_group_info(
                        DeploymentGroupInfo::builder()
                            .load_balancer_info(
                                LoadBalancerInfo::builder()
                                    .target_group_info_list(
                                        TargetGroupInfo::builder().name("b-tg").build(),
                                    )
                                    .target_group_info_list(
                                        TargetGroupInfo::builder().name("a-tg").build(),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            });
        let d = mock!(Elbv2Client::describe_target_groups)
            .match_requests(|r| r.names() == ["b-tg", "a-tg"])
            .then_output(|| {
                DescribeTargetGroupsOutput::builder()
                    .target_groups(
                        TargetGroup::builder()
                            .target_group_name("a-tg")
                            .target_group_arn("arn:a")
                            .build(),
                    )
                    .target_groups(
                        TargetGroup::builder()
                            .target_group_name("b-tg")
                            .target_group_arn("arn:b")
                            .build(),
                    )
                    .build()
            });
        let cd = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&dg]);
        let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&d]);
        assert_eq!(
            target_group_arns(&cd, &elb, "web", "web-bg").await.unwrap(),
            vec!["arn:b".to_string(), "arn:a".to_string()]
        );
    }

    #[tokio::test]
    async fn target_group_arns_errors() {
        let dg = mock!(CodeDeployClient::get_deployment_group).then_error(|| {
            GetDeploymentGroupError::DeploymentGroupDoesNotExistException(
                aws_sdk_codedeploy::types::error::DeploymentGroupDoesNotExistException::builder()
                    .message("No Deployment Group found for name: web-bg")
                    .build(),
            )
        });
        let cd = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&dg]);
        let elb = mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::MatchAny,
            [] as [&Rule; 0]
        );
        let err = target_group_arns(&cd, &elb, "web", "web-bg")
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "DeploymentGroupNotFound");
        assert!(err.to_string().contains("web-bg"), "{err}");

        let dg = mock!(CodeDeployClient::get_deployment_group).then_output(|| {
            GetDeploymentGroupOutput::builder()
                .deployment_group_info(DeploymentGroupInfo::builder().build())
                .build()
        });
        let cd = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&dg]);
        let err = target_group_arns(&cd, &elb, "web", "web-bg")
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "NoLoadBalancer");
    }

    #[tokio::test]
    async fn target_group_by_name_and_its_registered_targets() {
        use aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput;
        use aws_sdk_elasticloadbalancingv2::types::{
            TargetDescription, TargetHealth, TargetHealthDescription, TargetHealthStateEnum,
            TargetTypeEnum,
        };
        let d = mock!(Elbv2Client::describe_target_groups)
            .match_requests(|r| r.names() == ["web-tg-green"])
            .then_output(|| {
                DescribeTargetGroupsOutput::builder()
                    .target_groups(
                        TargetGroup::builder()
                            .target_group_arn(ARN)
                            .target_group_name("web-tg-green")
                            .target_type(TargetTypeEnum::Ip)
                            .port(80)
                            .build(),
                    )
                    .build()
            });
        let h = mock!(Elbv2Client::describe_target_health)
            .match_requests(|r| r.target_group_arn() == Some(ARN))
            .then_output(|| {
                let row = |id: &str, port: Option<i32>, state: TargetHealthStateEnum| {
                    TargetHealthDescription::builder()
                        .target(TargetDescription::builder().id(id).set_port(port).build())
                        .target_health(TargetHealth::builder().state(state).build())
                        .build()
                };
                DescribeTargetHealthOutput::builder()
                    .target_health_descriptions(row(
                        "127.0.0.1",
                        Some(8080),
                        TargetHealthStateEnum::Healthy,
                    ))
                    .target_health_descriptions(row(
                        "127.0.0.2",
                        None,
                        TargetHealthStateEnum::Draining,
                    ))
                    .build()
            });
        let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&d, &h]);
        let facts = target_group_by_name(&elb, "web-tg-green").await.unwrap();
        assert_eq!(
            facts,
            TargetGroupFacts {
                name: "web-tg-green".into(),
                arn: ARN.into(),
                target_type: Some("ip".into()),
                port: Some(80),
            }
        );
        let targets = registered_targets(&elb, ARN).await.unwrap();
        assert_eq!(
            targets,
            vec![
                RegisteredTarget {
                    id: "127.0.0.1".into(),
                    port: Some(8080),
                    state: Some("healthy".into()),
                },
                RegisteredTarget {
                    id: "127.0.0.2".into(),
                    port: None,
                    state: Some("draining".into()),
                },
            ]
        );
    }

    #[tokio::test]
    async fn target_group_by_name_not_found() {
        let d = mock!(Elbv2Client::describe_target_groups).then_error(|| {
            DescribeTargetGroupsError::TargetGroupNotFoundException(
                aws_sdk_elasticloadbalancingv2::types::error::TargetGroupNotFoundException::builder()
                    .message("One or more target groups not found")
                    .build(),
            )
        });
        let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&d]);
        let err = target_group_by_name(&elb, "gone-tg").await.unwrap_err();
        assert_eq!(err.error_type(), "TargetGroupNotFound");
        assert!(err.to_string().contains("gone-tg"), "{err}");
    }

    #[tokio::test]
    async fn the_load_balancers_of_a_target_group() {
        let lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/1";
        let mut t = tg(5, 2, 2, 2);
        t.load_balancer_arns = Some(vec![lb.to_string()]);
        let rule = describe_tg(t);
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&rule]);
        assert_eq!(
            target_group_load_balancers(&client, ARN)
                .await
                .expect("read"),
            [lb]
        );
    }
}
