//! CodeDeploy's rollback deployments: part of the incident of the deployment
//! they roll back, never an incident of their own.
//!
//! A blue/green rollback is a new deployment, created by `codeDeployRollback`,
//! whose `rollbackInfo.rollbackTriggeringDeploymentId` names the deployment it
//! rolls back (CodeDeploy API reference, `DeploymentInfo.creator` and
//! `RollbackInfo`; CodeDeploy user guide, "Redeploy and roll back a deployment
//! with CodeDeploy": "rolled back ... as a new deployment, with a new
//! deployment ID"). It reroutes traffic to the original instances and blocks
//! the replacement ones, and it can fail. When it fails, CodeDeploy emits a
//! `FAILURE` state-change event for the rollback's own id. Handled as an
//! incident of its own, that event produced a second notification and a
//! runbook aimed at a "green" Auto Scaling group named after the rollback's
//! id. Instead:
//!
//! * the rollback's event is folded into the original deployment's incident
//!   ([`rollback_event_fold`]): ignored when a greenlight execution owns the
//!   original (its failure path waits for the rollback and reports its end),
//!   otherwise deduped through the original's report marker;
//! * the one report of the original says how its rollback ended and, when it
//!   failed, what to check by hand ([`rollback_outcome`]).
//!
//! What a failed blue/green rollback leaves on the load balancer is not
//! documented by AWS. The rollback's first step re-registers and re-validates
//! the original instances (AllowTraffic on blue); it only then blocks traffic
//! on the replacement instances. So a rollback that fails cannot have taken
//! blue out of service, but it may have left green registered next to blue
//! when green's AllowTraffic had started: the harsher reading, which is what
//! the report tells the operator to check.

use super::*;

/// CodeDeploy's `creator` of a rollback deployment it created itself.
pub const ROLLBACK_CREATOR: &str = "codeDeployRollback";

/// The deployment a rollback deployment rolls back: `Some(Some(id))` for a
/// rollback that names it, `Some(None)` for a rollback (`creator`
/// `codeDeployRollback`) that does not, `None` for a deployment that is not
/// a rollback.
pub fn rollback_trigger(view: &DeploymentView) -> Option<Option<String>> {
    let triggering = view
        .rollback_triggering_deployment_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty() && *id != view.deployment_id)
        .map(str::to_string);
    let is_rollback = triggering.is_some() || view.creator.as_deref() == Some(ROLLBACK_CREATOR);
    is_rollback.then_some(triggering)
}

/// What the EventBridge path does with a deployment's `FAILURE`/`STOP` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fold", rename_all = "camelCase")]
pub enum RollbackFold {
    /// Not a rollback (or a rollback whose origin is unknown): the deployment
    /// is its own incident.
    Own,
    /// A rollback of `deployment_id`, started outside greenlight: handle that
    /// deployment's incident (deduped through its marker), not the rollback's.
    #[serde(rename_all = "camelCase")]
    Original { deployment_id: String },
    /// A rollback whose original deployment is handled elsewhere; the reason
    /// says where.
    Ignore { reason: String },
}

/// Folds a rollback deployment's event into the original's incident.
///
/// `view` is the deployment the event is about; `original` the deployment it
/// rolls back, when it could be read (`None`: not read or unreadable).
/// * not a rollback → [`RollbackFold::Own`];
/// * a rollback naming no original → [`RollbackFold::Own`] (harsher: it is
///   reported rather than dropped; its "green group" is never found, since a
///   rollback creates none);
/// * the original belongs to a greenlight execution → [`RollbackFold::Ignore`]:
///   that execution's failure path stopped it (or saw it fail), waits for the
///   rollback and reports how it ended in its one notification;
/// * otherwise (the original was started outside greenlight, or could not be
///   read) → [`RollbackFold::Original`]: the original's incident, whose marker
///   dedupes it against the original's own event.
pub fn rollback_event_fold(
    view: &DeploymentView,
    original: Option<&DeploymentView>,
) -> RollbackFold {
    let Some(Some(original_id)) = rollback_trigger(view) else {
        return RollbackFold::Own;
    };
    if let Some(Ownership::Pipeline { execution_name }) = original.map(ownership) {
        return RollbackFold::Ignore {
            reason: format!(
                "deployment {} is CodeDeploy's rollback of deployment {original_id}, which greenlight execution {execution_name} owns: that execution's failure path waits for the rollback and reports how it ended in its one notification",
                view.deployment_id
            ),
        };
    }
    RollbackFold::Original {
        deployment_id: original_id,
    }
}

/// How the original deployment's rollback ended, as the report tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackOutcome {
    pub deployment_id: String,
    /// Its status when last read; none when it could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DeploymentStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<DeploymentErrorInfo>,
    /// True when it ended Failed or Stopped: production is as the failed
    /// rollback left it.
    pub failed: bool,
    /// One clause: how it ended (and, when it failed, which fleet serves).
    pub detail: String,
    /// What to do by hand; empty when nothing is needed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub next_step: String,
}

/// How the rollback of `original` ended, from its last read (`rollback`,
/// `None` when it could not be read). `blue_asgs` is the create-time record
/// of the blue group (empty without one). `standby_serving` names the bake's
/// standby target group when the listener still forwards to it (switched,
/// not put back): blue serves alone there, whatever the deployment's own
/// target group holds. `None` when `original` has no rollback deployment.
pub fn rollback_outcome(
    original: &DeploymentView,
    rollback: Option<&DeploymentView>,
    blue_asgs: &[String],
    standby_serving: Option<&str>,
) -> Option<RollbackOutcome> {
    let id = original.rollback_deployment_id.clone()?;
    let green_asg = green_asg_name(&original.deployment_group, &original.deployment_id);
    let blue = if blue_asgs.is_empty() {
        "the original Auto Scaling group".to_string()
    } else {
        format!("ASG {}", blue_asgs.join(", "))
    };
    let status = rollback.map(|r| r.status);
    let error = rollback.and_then(|r| r.error.clone());
    let (failed, detail, next_step) = match status {
        None => (
            false,
            format!("the status of CodeDeploy's rollback deployment {id} could not be read"),
            format!(
                "read rollback deployment {id} (aws deploy get-deployment --deployment-id {id}); if it failed, make sure the blue fleet ({blue}) is registered and healthy in the target group and that no instance of {green_asg} is, then delete {green_asg}"
            ),
        ),
        Some(DeploymentStatus::Succeeded) => (
            false,
            format!("CodeDeploy's rollback deployment {id} succeeded: traffic is back on the blue fleet ({blue})"),
            String::new(),
        ),
        Some(s) if !s.is_terminal() => (
            false,
            format!(
                "CodeDeploy's rollback deployment {id} was still {} when this report was written",
                status_word(s)
            ),
            format!(
                "watch rollback deployment {id} to its end; if it fails, make sure the blue fleet ({blue}) is registered and healthy in the target group and that no instance of {green_asg} is, then delete {green_asg}"
            ),
        ),
        Some(s) => {
            let why = error
                .as_ref()
                .map(|e| format!(" ({})", trim_sentence(&error_text(e))))
                .unwrap_or_default();
            let (serves, by_hand) = if let Some(standby) = standby_serving {
                (
                    format!(
                        "the listener still forwards to the bake's standby target group {standby}, where the blue fleet ({blue}) serves alone: no listener routes to the deployment's own target group, whatever instances of {green_asg} it still holds"
                    ),
                    format!(
                        "deregister the instances of {green_asg} from the deployment's target group and make sure the blue fleet ({blue}) is registered and healthy there, then put the listener back (the LISTENER NOT PUT BACK commands), then delete {green_asg}"
                    ),
                )
            } else if green_allow_traffic_started(original) {
                (
                    format!(
                        "green AllowTraffic had started, so instances of {green_asg} may still be registered next to the blue fleet ({blue}): production may serve BOTH versions"
                    ),
                    format!(
                        "deregister the instances of {green_asg} from the target group, make sure the blue fleet ({blue}) is registered and healthy, then delete {green_asg}"
                    ),
                )
            } else {
                (
                    format!(
                        "green was never registered with the load balancer, so the blue fleet ({blue}) still serves"
                    ),
                    format!(
                        "check that the blue fleet ({blue}) is registered and healthy in the target group and that {green_asg} is gone (delete it if not)"
                    ),
                )
            };
            (
                true,
                format!(
                    "CodeDeploy's rollback deployment {id} FAILED, ended {}{why}; {serves}",
                    status_word(s)
                ),
                format!("the rollback failed, so by hand: {by_hand}"),
            )
        }
    };
    Some(RollbackOutcome {
        deployment_id: id,
        status,
        error,
        failed,
        detail,
        next_step,
    })
}
