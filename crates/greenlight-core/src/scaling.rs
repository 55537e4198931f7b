//! Scaling held still while a deployment runs (issue 10).
//!
//! While greenlight deploys, the blue Auto Scaling group and the green copy
//! CodeDeploy made must not launch or terminate instances on their own: a
//! scale-out on blue launches the OLD revision next to the new one, a scale-in
//! or a health replacement on green removes instances the gate just judged.
//! CodeDeploy suspends processes only for in-place deployments ("CodeDeploy
//! doesn't suspend processes for blue/green deployments", CodeDeploy user
//! guide, "Suspending Amazon EC2 Auto Scaling processes during deployments"),
//! so greenlight does it itself.
//!
//! Which processes ([`HELD_PROCESSES`]), from the EC2 Auto Scaling user guide
//! ("Suspend and resume Amazon EC2 Auto Scaling processes", "How suspended
//! processes affect other processes", "Considerations for suspending
//! processes"):
//!
//! - `Launch` and `Terminate`: the two processes that add or remove
//!   instances; every other source of change (scaling policies, scheduled
//!   actions, rebalancing, health replacement, SetDesiredCapacity) goes
//!   through them. With `Launch` suspended a scale-out changes the desired
//!   capacity but launches nothing until `Launch` is resumed. A
//!   DeleteAutoScalingGroup with ForceDelete still terminates instances while
//!   `Terminate` is suspended (Considerations page), so CodeDeploy's removal
//!   of the blue group after the termination wait, and the failure runbook's
//!   removal of the green group, are not blocked.
//! - `AZRebalance`: launches before it terminates; with `Terminate` suspended
//!   it "can launch new instances without terminating the old ones" and grow
//!   the group past its maximum.
//! - `ReplaceUnhealthy`: with `Launch` suspended it "continues to terminate
//!   unhealthy instances, but does not launch replacements": a green instance
//!   failing the ELB health check during the gate would vanish instead of
//!   being judged by the gate and the rollback.
//! - `AlarmNotification`: suspended so that scaling policies do not move the
//!   desired capacity during the deployment; their alarms keep their state,
//!   so target tracking acts again as soon as it is resumed (nothing lost).
//! - `InstanceRefresh`: replaces instances (with the launch template's
//!   revision, which may be neither blue's nor green's).
//!
//! Not held: `ScheduledActions` (the CodeDeploy guide says scheduled actions
//! whose start time falls in a suspension "are skipped and do not run after
//! the process resumes": a skipped morning scale-up would be lost; with
//! `Launch`/`Terminate` suspended a scheduled action only changes the desired
//! capacity, which is applied at resume), `HealthCheck` (health keeps being
//! marked; nothing is replaced while `ReplaceUnhealthy` is held),
//! `AddToLoadBalancer` (CodeDeploy registers the green instances itself) and
//! `RemoveFromLoadBalancerLowPriority`.
//!
//! The prior state is recorded on the group itself, BEFORE suspending, in the
//! tag [`HOLD_TAG_KEY`]: the processes greenlight suspends (only those that
//! were not already suspended: a process the user suspended stays suspended
//! after the deployment), the desired capacity and the instance count at the
//! hold, and the execution. Any ending (success, failure handler, dead
//! execution clean-up) resumes exactly the recorded processes and compares
//! the capacity: a scale event that arrived anyway is reported.

use serde::{Deserialize, Serialize};

/// The tag that records greenlight's hold on an Auto Scaling group.
pub const HOLD_TAG_KEY: &str = "greenlight:scaling-hold";

/// The processes greenlight suspends while a deployment runs (see the module
/// documentation for why each, and why not the others).
pub const HELD_PROCESSES: [&str; 6] = [
    "Launch",
    "Terminate",
    "AZRebalance",
    "ReplaceUnhealthy",
    "AlarmNotification",
    "InstanceRefresh",
];

/// One Auto Scaling group as DescribeAutoScalingGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupScaling {
    pub name: String,
    /// `SuspendedProcesses[].ProcessName`.
    pub suspended: Vec<String>,
    pub desired_capacity: i32,
    /// Instances in the group (any lifecycle state).
    pub instance_count: u32,
    /// The value of the [`HOLD_TAG_KEY`] tag, if the group has it.
    pub hold_tag: Option<String>,
    /// `Status` says the group is being deleted (CodeDeploy's removal of
    /// blue, the runbook's of green): nothing to resume on it.
    pub deleting: bool,
}

/// What the hold tag records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldRecord {
    /// The execution that holds the group.
    pub execution: String,
    /// The processes greenlight suspended (and will resume).
    pub processes: Vec<String>,
    /// Desired capacity when the hold began.
    pub desired: i32,
    /// Instance count when the hold began.
    pub instances: u32,
}

impl HoldRecord {
    /// The tag value: `desired=N;instances=N;suspended=A,B;execution=NAME`
    /// (the execution last: Step Functions execution names cannot contain
    /// `;`, but nothing else is assumed about them). At most 256 characters
    /// (an Auto Scaling tag value's limit): 80 for the execution name, the
    /// process names fit in the rest.
    pub fn tag_value(&self) -> String {
        format!(
            "desired={};instances={};suspended={};execution={}",
            self.desired,
            self.instances,
            self.processes.join(","),
            self.execution
        )
    }

    /// Parses [`Self::tag_value`]; `None` for anything else.
    pub fn parse(value: &str) -> Option<Self> {
        let rest = value.strip_prefix("desired=")?;
        let (desired, rest) = rest.split_once(";instances=")?;
        let (instances, rest) = rest.split_once(";suspended=")?;
        let (processes, execution) = rest.split_once(";execution=")?;
        if execution.is_empty() {
            return None;
        }
        Some(Self {
            execution: execution.to_string(),
            processes: processes
                .split(',')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect(),
            desired: desired.parse().ok()?,
            instances: instances.parse().ok()?,
        })
    }
}

/// What to do to hold one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldPlan {
    pub group: String,
    /// Write this tag value (before suspending) when `Some`; the group
    /// already carries this execution's record when `None`.
    pub write_tag: Option<String>,
    /// SuspendProcesses with these (idempotent: re-asserted on a retry).
    pub suspend: Vec<String>,
    pub record: HoldRecord,
    /// A scale request that arrived since this execution's hold began (seen
    /// when the hold is re-asserted at Ready): reported then, because on
    /// success CodeDeploy deletes the blue group before the release runs.
    pub event: Option<ScaleEvent>,
    /// Something worth saying (a stale hold taken over, an unreadable tag).
    pub note: Option<String>,
}

/// Decides how `execution` holds `group`. Never suspends a process on the
/// user's behalf that it would not resume, never records a user-suspended
/// process as its own.
pub fn plan_hold(group: &GroupScaling, execution: &str) -> HoldPlan {
    let parsed = group.hold_tag.as_deref().map(HoldRecord::parse);
    let not_yet_suspended: Vec<String> = HELD_PROCESSES
        .iter()
        .filter(|p| !group.suspended.iter().any(|s| s == *p))
        .map(|p| p.to_string())
        .collect();
    let fresh = |note: Option<String>| {
        let record = HoldRecord {
            execution: execution.to_string(),
            processes: not_yet_suspended.clone(),
            desired: group.desired_capacity,
            instances: group.instance_count,
        };
        HoldPlan {
            group: group.name.clone(),
            write_tag: Some(record.tag_value()),
            suspend: record.processes.clone(),
            record,
            event: None,
            note,
        }
    };
    match parsed {
        None => fresh(None),
        Some(None) => fresh(Some(format!(
            "Auto Scaling group {} carried an unreadable {HOLD_TAG_KEY} tag ({:?}); it was replaced and the processes already suspended are treated as the user's (left suspended afterwards)",
            group.name,
            group.hold_tag.as_deref().unwrap_or_default()
        ))),
        Some(Some(mine)) if mine.execution == execution => HoldPlan {
            group: group.name.clone(),
            write_tag: None,
            suspend: mine.processes.clone(),
            event: scale_event(group, &mine),
            record: mine,
            note: None,
        },
        Some(Some(stale)) => {
            // One deployment per group at a time (admission), so another
            // execution's record is a hold its ending did not release: what
            // it suspended is greenlight's, not the user's; take it over.
            let mut processes = stale.processes.clone();
            for p in not_yet_suspended {
                if !processes.contains(&p) {
                    processes.push(p);
                }
            }
            let record = HoldRecord {
                execution: execution.to_string(),
                processes,
                desired: stale.desired,
                instances: stale.instances,
            };
            HoldPlan {
                group: group.name.clone(),
                write_tag: Some(record.tag_value()),
                suspend: record.processes.clone(),
                event: None,
                note: Some(format!(
                    "Auto Scaling group {} was still held by execution {} (its ending did not release it); this execution took the hold over and will resume {} when it ends",
                    group.name,
                    stale.execution,
                    record.processes.join(", ")
                )),
                record,
            }
        }
    }
}

/// A change of capacity while the group was held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleEvent {
    pub group: String,
    pub desired_before: i32,
    pub desired_after: i32,
    pub instances_before: u32,
    pub instances_after: u32,
    /// One sentence for the report and the notification.
    pub summary: String,
}

/// What to do to release one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleasePlan {
    pub group: String,
    /// ResumeProcesses with these (empty: nothing to resume).
    pub resume: Vec<String>,
    /// DeleteTags for [`HOLD_TAG_KEY`].
    pub delete_tag: bool,
    pub event: Option<ScaleEvent>,
    pub note: Option<String>,
}

/// Decides how `execution` releases `group`: resume exactly what its record
/// says it suspended (a process the user suspended before stays suspended),
/// remove the record, and report any capacity change during the hold.
pub fn plan_release(group: &GroupScaling, execution: &str) -> ReleasePlan {
    let nothing = |note: Option<String>| ReleasePlan {
        group: group.name.clone(),
        resume: Vec::new(),
        delete_tag: false,
        event: None,
        note,
    };
    let Some(value) = group.hold_tag.as_deref().filter(|_| !group.deleting) else {
        return nothing(None);
    };
    let Some(record) = HoldRecord::parse(value) else {
        return nothing(Some(format!(
            "Auto Scaling group {} carries an unreadable {HOLD_TAG_KEY} tag ({value:?}); nothing was resumed: check its suspended processes ({}) by hand",
            group.name,
            if group.suspended.is_empty() { "none".to_string() } else { group.suspended.join(", ") }
        )));
    };
    if record.execution != execution {
        return nothing(Some(format!(
            "Auto Scaling group {} is held by execution {}, not this one; left as is",
            group.name, record.execution
        )));
    }
    let event = scale_event(group, &record);
    ReleasePlan {
        group: group.name.clone(),
        resume: record.processes,
        delete_tag: true,
        event,
        note: None,
    }
}

/// The capacity change since `record` was taken, if any.
fn scale_event(group: &GroupScaling, record: &HoldRecord) -> Option<ScaleEvent> {
    (group.desired_capacity != record.desired || group.instance_count != record.instances).then(
        || ScaleEvent {
            group: group.name.clone(),
            desired_before: record.desired,
            desired_after: group.desired_capacity,
            instances_before: record.instances,
            instances_after: group.instance_count,
            summary: scale_summary(&group.name, record, group),
        },
    )
}

fn scale_summary(name: &str, record: &HoldRecord, now: &GroupScaling) -> String {
    let mut text = format!(
        "Auto Scaling group {name} was asked to scale while the deployment held it: desired capacity {} -> {}, instances {} -> {}",
        record.desired, now.desired_capacity, record.instances, now.instance_count
    );
    let launch_held = record.processes.iter().any(|p| p == "Launch");
    let terminate_held = record.processes.iter().any(|p| p == "Terminate");
    if now.desired_capacity > now.instance_count as i32 && launch_held {
        text.push_str("; Auto Scaling launches the missing instances now that Launch is resumed");
    } else if now.desired_capacity < now.instance_count as i32 && terminate_held {
        text.push_str(
            "; Auto Scaling terminates the extra instances now that Terminate is resumed",
        );
    }
    text
}

/// The hold of one execution, as the state machine keeps it (`$.scaling`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalingHold {
    /// The groups held, with what was suspended on each.
    #[serde(default)]
    pub groups: Vec<HeldGroup>,
    /// Scale requests seen when the hold was re-asserted (at Ready).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<ScaleEvent>,
    /// Notes (stale holds taken over, groups gone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One held group in [`ScalingHold`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldGroup {
    pub name: String,
    pub suspended: Vec<String>,
    pub desired: i32,
}

/// What releasing the groups did (`$.scalingReleased`, and the failure
/// handler's report).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalingRelease {
    /// Groups whose processes were resumed, with the processes.
    #[serde(default)]
    pub resumed: Vec<HeldGroup>,
    /// Scale events that arrived while held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<ScaleEvent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl ScalingRelease {
    /// One sentence on the scale events, for a notification; `None` without.
    pub fn events_sentence(&self) -> Option<String> {
        (!self.events.is_empty()).then(|| {
            self.events
                .iter()
                .map(|e| e.summary.as_str())
                .collect::<Vec<_>>()
                .join(". ")
        })
    }
}

/// The groups a deployment holds: the blue groups, then the green copy when
/// it is known, without duplicates.
pub fn groups_to_hold(blue: &[String], green: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in blue.iter().map(String::as_str).chain(green) {
        if !name.is_empty() && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

#[cfg(test)]
#[path = "scaling_tests.rs"]
mod tests;
