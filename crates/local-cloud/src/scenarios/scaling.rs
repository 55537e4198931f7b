//! Scale requests during a deployment (issue 10, scaling held still): what a
//! user, a scaling policy or a schedule would do to an Auto Scaling group,
//! and the group read back.

use super::{aws, ScenarioError};
use crate::cloud::LocalCloud;

/// One Auto Scaling group, read back with DescribeAutoScalingGroups.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupScaling {
    pub name: String,
    pub desired: i32,
    pub max: i32,
    pub instances: Vec<String>,
    /// `SuspendedProcesses[].ProcessName`, sorted.
    pub suspended: Vec<String>,
    /// `Key=Value` of every tag, sorted.
    pub tags: Vec<String>,
}

/// `name` read back; `None` when the group does not exist.
pub async fn group_scaling(
    cloud: &LocalCloud,
    name: &str,
) -> Result<Option<GroupScaling>, ScenarioError> {
    let asg = aws_sdk_autoscaling::Client::new(&cloud.sdk);
    let out = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .map_err(aws("DescribeAutoScalingGroups"))?;
    Ok(out
        .auto_scaling_groups()
        .iter()
        .find(|g| g.auto_scaling_group_name() == Some(name))
        .map(|g| {
            let mut instances: Vec<String> = g
                .instances()
                .iter()
                .filter_map(|i| i.instance_id().map(str::to_string))
                .collect();
            instances.sort();
            let mut suspended: Vec<String> = g
                .suspended_processes()
                .iter()
                .filter_map(|p| p.process_name().map(str::to_string))
                .collect();
            suspended.sort();
            let mut tags: Vec<String> = g
                .tags()
                .iter()
                .map(|t| {
                    format!(
                        "{}={}",
                        t.key().unwrap_or_default(),
                        t.value().unwrap_or_default()
                    )
                })
                .collect();
            tags.sort();
            GroupScaling {
                name: name.to_string(),
                desired: g.desired_capacity().unwrap_or_default(),
                max: g.max_size().unwrap_or_default(),
                instances,
                suspended,
                tags,
            }
        }))
}

/// A scale-out of `by` instances, as an operator or a policy asks for it:
/// UpdateAutoScalingGroup raises MaxSize when needed, then SetDesiredCapacity.
/// Returns the group as it was before.
pub async fn attempt_scale_out(
    cloud: &LocalCloud,
    name: &str,
    by: i32,
) -> Result<GroupScaling, ScenarioError> {
    let before = group_scaling(cloud, name)
        .await?
        .ok_or_else(|| ScenarioError::Aws {
            what: "DescribeAutoScalingGroups",
            message: format!("no Auto Scaling group {name}"),
        })?;
    let asg = aws_sdk_autoscaling::Client::new(&cloud.sdk);
    let desired = before.desired + by;
    if before.max < desired {
        asg.update_auto_scaling_group()
            .auto_scaling_group_name(name)
            .max_size(desired)
            .send()
            .await
            .map_err(aws("UpdateAutoScalingGroup"))?;
    }
    asg.set_desired_capacity()
        .auto_scaling_group_name(name)
        .desired_capacity(desired)
        .send()
        .await
        .map_err(aws("SetDesiredCapacity"))?;
    Ok(before)
}
