//! Guards on the runbook's two writes: which Auto Scaling group may be
//! deleted ([`green_deletion`]) and what the deployment group is pointed back
//! at ([`point_at_blue`]); and finding a deployment a dead `Create` task left
//! behind ([`orphan_deployment`]).

use super::*;

/// What the handler read about the Auto Scaling group it is about to delete
/// (DescribeAutoScalingGroups by exact name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AsgFacts {
    pub name: String,
    /// `CreatedTime`; `None` when Auto Scaling did not answer one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at_ms: Option<EpochMillis>,
    /// `Status` (`Delete in progress` while being deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// Whether the green group may be force-deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "camelCase")]
pub enum GreenDeletion {
    /// Delete it (ForceDelete): it is this deployment's copy and never served.
    Delete { asg: String },
    /// No group by that name (never created or already deleted).
    Absent { asg: String },
    /// Keep it; the reason goes into the report.
    Keep { asg: String, reason: String },
}

/// True once CodeDeploy started `AllowTraffic` on a green instance: from then
/// on the green fleet is registered with the load balancer and may have served
/// requests, so it is never force-deleted (issue 9, defect 3).
pub fn green_allow_traffic_started(view: &DeploymentView) -> bool {
    view.targets.iter().any(|t| {
        t.label == Some(FleetLabel::Green)
            && t.lifecycle_events.iter().any(|e| {
                e.name == "AllowTraffic"
                    && matches!(
                        e.status,
                        LifecycleStatus::InProgress
                            | LifecycleStatus::Succeeded
                            | LifecycleStatus::Failed
                    )
            })
    })
}

/// Decides whether `green_asg` may be deleted, from the deployment as re-read
/// AFTER StopDeployment (`view`) and the group as Auto Scaling describes it
/// (`found`, `None` when no group has that name).
///
/// Deletion needs all of:
/// * the name is exactly `CodeDeploy_<group>_<deployment id>` of this
///   deployment ([`green_asg_name`]);
/// * the deployment is terminal (a rollback or a still-running deployment
///   owns its fleets: deleting under it would race CodeDeploy);
/// * green `AllowTraffic` never started ([`green_allow_traffic_started`]);
/// * the group was created at or after the deployment was created. CodeDeploy
///   does not document any tag it puts on the Auto Scaling group it copies
///   (CodeDeploy API reference, `TargetInstances`, `GreenFleetProvisioningOption`
///   `COPY_AUTO_SCALING_GROUP`: "create instances in a new Auto Scaling group",
///   nothing about tags), so ownership is checked by creation time; when
///   either time is unknown the harsher reading applies and the group is kept.
///
/// `rollback_status` is the status of CodeDeploy's rollback deployment
/// (`view.rollback_deployment_id`), re-read by the shell: while that rollback
/// runs it owns the replacement fleet (it blocks traffic on the green
/// instances and, as it ends, removes or keeps them), so deleting the group
/// under it would fail the rollback (seen in the local cloud: BeforeBlockTraffic
/// on a terminated instance) and leave production half switched. The group is
/// kept until the rollback has ended; an unknown rollback status keeps it too.
pub fn green_deletion(
    green_asg: &str,
    view: Option<&DeploymentView>,
    found: Option<&AsgFacts>,
    rollback_status: Option<DeploymentStatus>,
) -> GreenDeletion {
    let keep = |reason: String| GreenDeletion::Keep {
        asg: green_asg.to_string(),
        reason,
    };
    let Some(view) = view else {
        return keep(
            "the deployment could not be re-read after StopDeployment, so it is unknown whether the group is safe to delete".to_string(),
        );
    };
    let expected = green_asg_name(&view.deployment_group, &view.deployment_id);
    if green_asg != expected {
        return keep(format!(
            "{green_asg} is not the green group of deployment {} (that is {expected})",
            view.deployment_id
        ));
    }
    if !view.status.is_terminal() {
        return keep(format!(
            "deployment {} is still {} after StopDeployment (its rollback owns the fleets); delete {green_asg} by hand once it has ended",
            view.deployment_id,
            status_word(view.status)
        ));
    }
    if let Some(rollback) = view.rollback_deployment_id.as_deref() {
        match rollback_status {
            Some(s) if s.is_terminal() => {}
            Some(s) => {
                return keep(format!(
                    "CodeDeploy's rollback deployment {rollback} is still {} and owns the replacement fleet; greenlight does not delete {green_asg} under it (check it once the rollback has ended)",
                    status_word(s)
                ))
            }
            None => {
                return keep(format!(
                    "the status of CodeDeploy's rollback deployment {rollback} could not be read, so {green_asg} is kept rather than deleted under a running rollback"
                ))
            }
        }
    }
    if green_allow_traffic_started(view) {
        return keep(format!(
            "green AllowTraffic had started on deployment {}, so {green_asg} may have served requests and is not force-deleted; check it and delete it by hand if it is not serving",
            view.deployment_id
        ));
    }
    let Some(found) = found else {
        return GreenDeletion::Absent {
            asg: green_asg.to_string(),
        };
    };
    if found.name != green_asg {
        return keep(format!(
            "Auto Scaling answered group {} for {green_asg}",
            found.name
        ));
    }
    match (found.created_at_ms, view.created_at_ms) {
        (Some(asg_created), Some(deployment_created)) if asg_created >= deployment_created => {
            GreenDeletion::Delete {
                asg: green_asg.to_string(),
            }
        }
        (Some(asg_created), Some(deployment_created)) => keep(format!(
            "{green_asg} was created at {asg_created} ms, before deployment {} ({deployment_created} ms): it is not this deployment's copy",
            view.deployment_id
        )),
        _ => keep(format!(
            "the creation time of {green_asg} or of deployment {} is unknown, so it cannot be shown to belong to this deployment",
            view.deployment_id
        )),
    }
}

/// What to do with the deployment group's Auto Scaling groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "camelCase")]
pub enum Repoint {
    /// The group already points at the right groups.
    AlreadyThere { asgs: Vec<String>, reason: String },
    /// UpdateDeploymentGroup `autoScalingGroups = to`.
    Update { from: Vec<String>, to: Vec<String> },
    /// Left as it is; the reason says what to do by hand.
    Skip { reason: String },
}

fn same_set(a: &[String], b: &[String]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    a.dedup();
    b.sort();
    b.dedup();
    a == b
}

/// Points the group back at blue.
///
/// `recorded` is `pipeline.deployment.blueAutoScalingGroups` (the group's
/// ASGs read just before CreateDeployment); `current` the group's ASGs now
/// (GetDeploymentGroup). `targetInstances.autoScalingGroups` is never used:
/// AWS documents it as the replacement environment.
///
/// Without a record (event path, executions from before the record) nothing
/// is guessed: a group that does not point at this deployment's green ASG is
/// left as it is (it already points at a fleet that is not the one being
/// removed); a group that does is skipped with what to do by hand.
pub fn point_at_blue(recorded: &[String], current: &[String], green_asg: &str) -> Repoint {
    let recorded: Vec<String> = recorded
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if recorded.iter().any(|a| a == green_asg) {
        return Repoint::Skip {
            reason: format!(
                "the recorded blue groups name the green group {green_asg}; set the group's Auto Scaling group by hand"
            ),
        };
    }
    if !recorded.is_empty() {
        if same_set(&recorded, current) {
            return Repoint::AlreadyThere {
                asgs: recorded,
                reason: "the group already points at the recorded blue group".to_string(),
            };
        }
        return Repoint::Update {
            from: current.to_vec(),
            to: recorded,
        };
    }
    if current.is_empty() {
        return Repoint::Skip {
            reason: "no record of the blue Auto Scaling group and the group names none; set it by hand (UpdateDeploymentGroup autoScalingGroups=[<blue ASG>])".to_string(),
        };
    }
    if current.iter().any(|a| a == green_asg) {
        return Repoint::Skip {
            reason: format!(
                "no record of the blue Auto Scaling group and the group points at the green group {green_asg}; point it at the blue group by hand (UpdateDeploymentGroup autoScalingGroups=[<blue ASG>])"
            ),
        };
    }
    Repoint::AlreadyThere {
        asgs: current.to_vec(),
        reason: format!(
            "no record of the blue Auto Scaling group; the group points at {}, not at the green group, so it is left as it is",
            current.join(", ")
        ),
    }
}

/// A deployment of the group as ListDeployments + GetDeployment show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSummary {
    pub deployment_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at_ms: Option<EpochMillis>,
}

/// Should the failure path look for a deployment this execution created but
/// never recorded? Only when the `Create` step was the one running: the state
/// has admission and tuning but no deployment (a Create task whose Lambda
/// died after CreateDeployment, issue 9 defect 5).
pub fn should_search_orphan(state: &PipelineState) -> bool {
    pipeline_deployment_id(state).is_none() && failed_stage(state) == PipelineStage::Create
}

/// The deployment whose description names `execution_name` (the watcher's
/// create writes [`crate::watch::deployment_description`]); the newest when
/// several do (a retried create reuses the one it made, so there is one).
pub fn orphan_deployment(execution_name: &str, candidates: &[DeploymentSummary]) -> Option<String> {
    candidates
        .iter()
        .filter(|c| {
            c.description
                .as_deref()
                .and_then(execution_of_description)
                .is_some_and(|name| name == execution_name)
        })
        .max_by_key(|c| c.created_at_ms.unwrap_or(i64::MIN))
        .map(|c| c.deployment_id.clone())
}

/// Where ListDeployments starts looking for a deployment an execution made:
/// the upload's time, less the clock-skew allowance (the execution, and so
/// its deployment, started after the upload).
pub fn orphan_search_since(uploaded_at_ms: EpochMillis) -> EpochMillis {
    uploaded_at_ms.saturating_sub(MAX_CLOCK_SKEW_MS)
}
