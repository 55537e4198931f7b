//! Auto Scaling for the failure runbook: describe the green group by its
//! exact name, force-delete it. Both map to core types and [`AwsError`].

use crate::AwsError;
use greenlight_core::runbook::AsgFacts;

/// DescribeAutoScalingGroups for exactly `name`: `None` when no group has it.
pub async fn describe_group(
    client: &aws_sdk_autoscaling::Client,
    name: &str,
) -> Result<Option<AsgFacts>, AwsError> {
    let out = client
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("DescribeAutoScalingGroups", name, &e))?;
    Ok(out
        .auto_scaling_groups()
        .iter()
        .find(|g| g.auto_scaling_group_name() == Some(name))
        .map(|g| AsgFacts {
            name: name.to_string(),
            created_at_ms: g.created_time().and_then(|t| t.to_millis().ok()),
            status: g.status().map(str::to_string),
        }))
}

/// What DeleteAutoScalingGroup(ForceDelete) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Accepted: the group and its instances are being deleted.
    Deleted,
    /// No such group.
    AlreadyGone,
    /// A deletion is already under way.
    AlreadyDeleting,
}

/// DeleteAutoScalingGroup with ForceDelete (terminates the instances too).
/// Call it only after [`greenlight_core::runbook::green_deletion`] said so.
pub async fn force_delete_group(
    client: &aws_sdk_autoscaling::Client,
    name: &str,
) -> Result<DeleteOutcome, AwsError> {
    match client
        .delete_auto_scaling_group()
        .auto_scaling_group_name(name)
        .force_delete(true)
        .send()
        .await
    {
        Ok(_) => Ok(DeleteOutcome::Deleted),
        Err(e) => {
            let err = AwsError::from_sdk("DeleteAutoScalingGroup", name, &e);
            let message = err.message.to_ascii_lowercase();
            if err.has_code(&["ValidationError"]) && message.contains("not found") {
                Ok(DeleteOutcome::AlreadyGone)
            } else if message.contains("pending delete") || message.contains("being deleted") {
                Ok(DeleteOutcome::AlreadyDeleting)
            } else {
                Err(err)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Scaling held still while a deployment runs (greenlight_core::scaling).
// ---------------------------------------------------------------------------

use greenlight_core::scaling::{
    plan_hold, plan_release, GroupScaling, HeldGroup, ScalingHold, ScalingRelease, HOLD_TAG_KEY,
};

/// DescribeAutoScalingGroups for `names`: their suspended processes,
/// capacity and hold tag. A group that does not exist is simply absent.
pub async fn describe_scaling(
    client: &aws_sdk_autoscaling::Client,
    names: &[String],
) -> Result<Vec<GroupScaling>, AwsError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let out = client
        .describe_auto_scaling_groups()
        .set_auto_scaling_group_names(Some(names.to_vec()))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("DescribeAutoScalingGroups", names.join(","), &e))?;
    Ok(out
        .auto_scaling_groups()
        .iter()
        .filter_map(|g| {
            let name = g.auto_scaling_group_name()?;
            names.iter().any(|n| n == name).then(|| GroupScaling {
                name: name.to_string(),
                suspended: g
                    .suspended_processes()
                    .iter()
                    .filter_map(|p| p.process_name().map(str::to_string))
                    .collect(),
                desired_capacity: g.desired_capacity().unwrap_or_default(),
                instance_count: u32::try_from(g.instances().len()).unwrap_or(u32::MAX),
                hold_tag: g
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some(HOLD_TAG_KEY))
                    .and_then(|t| t.value().map(str::to_string)),
                deleting: g
                    .status()
                    .is_some_and(|s| s.to_ascii_lowercase().contains("delete")),
            })
        })
        .collect())
}

fn hold_tag(group: &str, value: Option<&str>) -> aws_sdk_autoscaling::types::Tag {
    aws_sdk_autoscaling::types::Tag::builder()
        .resource_id(group)
        .resource_type("auto-scaling-group")
        .key(HOLD_TAG_KEY)
        .set_value(value.map(str::to_string))
        .propagate_at_launch(false)
        .build()
}

/// Holds `names` still for `execution`: for each existing group, records the
/// hold (tag, written BEFORE suspending, so a crash in between leaves a
/// record the release can read) and suspends the processes the core chose.
/// Idempotent: a retry finds its own record and re-asserts it.
pub async fn hold_groups(
    client: &aws_sdk_autoscaling::Client,
    names: &[String],
    execution: &str,
) -> Result<ScalingHold, AwsError> {
    let groups = describe_scaling(client, names).await?;
    let mut hold = ScalingHold::default();
    for name in names {
        let Some(group) = groups.iter().find(|g| &g.name == name) else {
            hold.notes.push(format!(
                "Auto Scaling group {name} does not exist; nothing to hold"
            ));
            continue;
        };
        let plan = plan_hold(group, execution);
        if let Some(value) = &plan.write_tag {
            client
                .create_or_update_tags()
                .tags(hold_tag(name, Some(value)))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("CreateOrUpdateTags", name.as_str(), &e))?;
        }
        if !plan.suspend.is_empty() {
            client
                .suspend_processes()
                .auto_scaling_group_name(name)
                .set_scaling_processes(Some(plan.suspend.clone()))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("SuspendProcesses", name.as_str(), &e))?;
        }
        hold.notes.extend(plan.note);
        hold.events.extend(plan.event);
        hold.groups.push(HeldGroup {
            name: name.clone(),
            suspended: plan.suspend,
            desired: plan.record.desired,
        });
    }
    Ok(hold)
}

/// Releases `names` held by `execution`: resumes exactly the processes its
/// record names, then removes the record; reports capacity changes during the
/// hold. Groups that are gone, never held, or held by another execution are
/// left alone (the last two with a note). Idempotent.
pub async fn release_groups(
    client: &aws_sdk_autoscaling::Client,
    names: &[String],
    execution: &str,
) -> Result<ScalingRelease, AwsError> {
    let groups = describe_scaling(client, names).await?;
    let mut release = ScalingRelease::default();
    for group in &groups {
        let plan = plan_release(group, execution);
        if !plan.resume.is_empty() {
            client
                .resume_processes()
                .auto_scaling_group_name(&group.name)
                .set_scaling_processes(Some(plan.resume.clone()))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ResumeProcesses", group.name.as_str(), &e))?;
        }
        if plan.delete_tag {
            client
                .delete_tags()
                .tags(hold_tag(&group.name, None))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("DeleteTags", group.name.as_str(), &e))?;
            release.resumed.push(HeldGroup {
                name: group.name.clone(),
                suspended: plan.resume,
                desired: group.desired_capacity,
            });
        }
        release.events.extend(plan.event);
        release.notes.extend(plan.note);
    }
    Ok(release)
}

/// The Auto Scaling groups whose hold tag names `execution` (DescribeTags
/// filtered on the tag key, paginated): how an ending that does not know the
/// groups (a dead execution's clean-up, a failure before `create` recorded
/// them) finds what to release.
pub async fn groups_held_by(
    client: &aws_sdk_autoscaling::Client,
    execution: &str,
) -> Result<Vec<String>, AwsError> {
    let filter = aws_sdk_autoscaling::types::Filter::builder()
        .name("key")
        .values(HOLD_TAG_KEY)
        .build();
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = client
            .describe_tags()
            .filters(filter.clone())
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeTags", HOLD_TAG_KEY, &e))?;
        for tag in out.tags() {
            let held_by_me = tag.key() == Some(HOLD_TAG_KEY)
                && tag
                    .value()
                    .and_then(greenlight_core::scaling::HoldRecord::parse)
                    .is_some_and(|r| r.execution == execution);
            if let Some(name) = tag.resource_id().filter(|_| held_by_me) {
                if !names.iter().any(|n: &String| n == name) {
                    names.push(name.to_string());
                }
            }
        }
        token = out
            .next_token()
            .map(str::to_string)
            .filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    Ok(names)
}

/// Releases every group `execution` holds, wherever its record is
/// ([`groups_held_by`] then [`release_groups`]).
pub async fn release_held_by(
    client: &aws_sdk_autoscaling::Client,
    execution: &str,
) -> Result<ScalingRelease, AwsError> {
    let names = groups_held_by(client, execution).await?;
    release_groups(client, &names, execution).await
}

#[cfg(test)]
#[path = "autoscaling_tests.rs"]
mod tests;
