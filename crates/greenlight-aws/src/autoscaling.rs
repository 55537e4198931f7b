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
