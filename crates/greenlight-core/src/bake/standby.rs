//! Keeping blue warm during the bake, so a failed bake puts traffic back on
//! blue with one listener change instead of a wait.
//!
//! Why: CodeDeploy's rollback re-registers blue in the deployment's target
//! group and only then starts its health checks (registration latency, first
//! check one interval later, healthy threshold); until blue is healthy the
//! failing green keeps answering. A group whose bake names a **standby target
//! group** (`standbyTargetGroup`, same VPC/port/protocol/health check as the
//! deployment's target group, created by the user's IaC) gets blue's original
//! instances registered there at the bake's first look. ALB health-checks a
//! target group only when a listener or rule forwards to it (a group nothing
//! forwards to shows its targets `unused`, `Target.NotInUse`), so each
//! listener default action / rule that forwards to the main target group is
//! changed to a weighted forward `{main: 1, standby: 0}`: identical routing,
//! and the standby group is now health-checked. When the bake fails and blue
//! is healthy there, the weights become `{main: 0, standby: 1}` (traffic on
//! blue in one change), then the deployment is stopped with rollback as
//! before. Afterwards each listener/rule is put back to exactly its snapshot
//! and blue is deregistered from standby, but never while that would point
//! traffic at a main target group without a healthy blue fleet.
//!
//! Everything here is pure: the shells read listeners, rules and target
//! health and act on these answers.

use serde::{Deserialize, Serialize};

/// Which API changes a route: a listener's default actions
/// (`ModifyListener`) or a non-default rule's actions (`ModifyRule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RouteKind {
    Listener,
    Rule,
}

/// One target group of a forward action, with its weight
/// (`ForwardConfig.TargetGroups[]`; `None` when `Weight` was absent, which
/// AWS reads as 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightedTargetGroup {
    pub target_group_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

/// `ForwardConfig.TargetGroupStickinessConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupStickiness {
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i32>,
}

/// One action of a listener or rule, as much of it as greenlight may change
/// and must put back. An action of any other type than `forward` is kept
/// only by type: such routes are never changed ([`plan_arm`] refuses them),
/// because their configuration (e.g. an OIDC client secret) cannot be read
/// back and re-sent faithfully.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteAction {
    /// `Type`: `forward`, `redirect`, `fixed-response`, `authenticate-oidc`, ...
    pub action_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<i32>,
    /// `TargetGroupArn` (the single-group form of `forward`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_arn: Option<String>,
    /// `ForwardConfig.TargetGroups` (the weighted form); empty when absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forward_to: Vec<WeightedTargetGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness: Option<GroupStickiness>,
}

impl RouteAction {
    /// The target groups this action sends traffic to (weight 0 excluded).
    fn receiving(&self) -> Vec<&str> {
        let mut groups: Vec<&str> = self.target_group_arn.iter().map(String::as_str).collect();
        for g in &self.forward_to {
            if g.weight != Some(0) && !groups.contains(&g.target_group_arn.as_str()) {
                groups.push(&g.target_group_arn);
            }
        }
        groups
    }

    fn names(&self, arn: &str) -> bool {
        self.target_group_arn.as_deref() == Some(arn)
            || self.forward_to.iter().any(|g| g.target_group_arn == arn)
    }
}

/// One listener default action set or rule that forwards to the
/// deployment's target group, as it was found (the snapshot to put back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub kind: RouteKind,
    /// `ListenerArn` for [`RouteKind::Listener`], `RuleArn` for [`RouteKind::Rule`].
    pub arn: String,
    pub actions: Vec<RouteAction>,
}

/// The weights of a changed route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Weights {
    /// `{main: 1, standby: 0}`: routing unchanged, standby health-checked.
    Armed,
    /// `{main: 0, standby: 1}`: all traffic on blue through standby.
    Switched,
}

/// The standby as the pipeline state carries it (`$.bake.standby`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StandbyState {
    /// The deployment that armed the standby (its record on the target
    /// group is acted on only for this deployment; empty in a state written
    /// before the record existed).
    #[serde(default)]
    pub deployment_id: String,
    pub main_target_group_arn: String,
    pub standby_target_group_arn: String,
    /// Blue's original instances registered in standby (instance id, port).
    pub blue_targets: Vec<StandbyTarget>,
    /// Every route as found, before any change: what is put back.
    pub routes: Vec<Route>,
    /// What the routes forward with now.
    pub weights: Weights,
    /// Put back: routes equal their snapshot and blue left standby.
    #[serde(default)]
    pub restored: bool,
    /// The group's `standbySettleSeconds`: the wait between putting the
    /// routes back and taking blue out of standby.
    #[serde(default)]
    pub settle_seconds: u32,
    /// When the routes were switched to standby (epoch ms), for the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switched_at_ms: Option<crate::model::EpochMillis>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StandbyTarget {
    pub instance_id: String,
    pub port: u16,
}

/// What to do at the bake's first look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArmPlan {
    /// Register `blue_targets` in standby, then change each route to its
    /// weighted actions (`changes`: route snapshot, armed actions).
    Arm {
        blue_targets: Vec<StandbyTarget>,
        changes: Vec<(Route, Vec<RouteAction>)>,
    },
    /// Keep today's path (rollback through CodeDeploy only); why.
    Refuse { reason: String },
}

/// The actions of `route` with its forward to `main` weighted between main
/// and standby. Everything else of the action (order, stickiness) is kept,
/// except that target-group stickiness is off: with stickiness on, a client
/// bound to main would stay on the failing green after the switch.
pub fn weighted_actions(
    route: &Route,
    main: &str,
    standby: &str,
    weights: Weights,
) -> Vec<RouteAction> {
    let (main_weight, standby_weight) = match weights {
        Weights::Armed => (1, 0),
        Weights::Switched => (0, 1),
    };
    route
        .actions
        .iter()
        .map(|a| {
            if a.action_type == "forward" && a.names(main) {
                RouteAction {
                    action_type: "forward".to_string(),
                    order: a.order,
                    target_group_arn: None,
                    forward_to: vec![
                        WeightedTargetGroup {
                            target_group_arn: main.to_string(),
                            weight: Some(main_weight),
                        },
                        WeightedTargetGroup {
                            target_group_arn: standby.to_string(),
                            weight: Some(standby_weight),
                        },
                    ],
                    stickiness: a.stickiness.map(|s| GroupStickiness {
                        enabled: false,
                        duration_seconds: if s.enabled { None } else { s.duration_seconds },
                    }),
                }
            } else {
                a.clone()
            }
        })
        .collect()
}

/// Decides whether the standby can be armed and how.
///
/// `routes` = every listener default action set and rule of the target
/// group's load balancers that names `main`; `blue` = this deployment's
/// original (blue) instances with the target group's port. Refused (today's
/// path) when the standby is the main group, no blue instance is known, no route forwards to main, or any route is not exactly
/// one `forward` action whose only receiving group is main (a route with
/// authentication, a redirect, a fixed response or weights across other
/// groups is never changed), or a route already names the standby (left
/// over from an earlier deployment that was not put back). All or nothing: a
/// route left unchanged would keep sending traffic to green after the switch.
pub fn plan_arm(routes: &[Route], main: &str, standby: &str, blue: &[StandbyTarget]) -> ArmPlan {
    let refuse = |reason: String| ArmPlan::Refuse { reason };
    if main == standby {
        return refuse(format!(
            "the standby target group is the deployment's own target group ({main})"
        ));
    }
    if blue.is_empty() {
        return refuse("the deployment names no original (blue) instance".to_string());
    }
    if routes.is_empty() {
        return refuse(format!(
            "no listener or rule forwards to {main}, so the standby could not be health-checked"
        ));
    }
    let mut changes = Vec::with_capacity(routes.len());
    for route in routes {
        let what = match route.kind {
            RouteKind::Listener => "listener",
            RouteKind::Rule => "rule",
        };
        if route.actions.iter().any(|a| a.names(standby)) {
            return refuse(format!(
                "{what} {} already forwards to the standby {standby} (an earlier switch was not put back?)",
                route.arn
            ));
        }
        let [action] = route.actions.as_slice() else {
            return refuse(format!(
                "{what} {} has {} actions; only a single forward action is changed",
                route.arn,
                route.actions.len()
            ));
        };
        if action.action_type != "forward" || action.receiving() != vec![main] {
            return refuse(format!(
                "{what} {} does not forward to {main} alone ({} to {:?})",
                route.arn,
                action.action_type,
                action.receiving()
            ));
        }
        changes.push((
            route.clone(),
            weighted_actions(route, main, standby, Weights::Armed),
        ));
    }
    ArmPlan::Arm {
        blue_targets: blue.to_vec(),
        changes,
    }
}

/// What to do when the bake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchDecision {
    /// Set every route to `{main: 0, standby: 1}`, then stop with rollback.
    Switch,
    /// Blue is not ready in standby: stop with rollback only (today's path),
    /// and say why in the evidence.
    Fallback { reason: String },
}

/// Switch only when every blue target is `healthy` in the standby group
/// (harsher than "at least one": a part of blue taking all of the traffic
/// could fall over; CodeDeploy's own rollback also waits for all of blue).
/// `standby_health` = (instance id, port, state) as DescribeTargetHealth
/// answered for the standby group.
pub fn decide_switch(
    state: &StandbyState,
    standby_health: &[(String, u16, Option<String>)],
) -> SwitchDecision {
    let mut not_ready = Vec::new();
    for t in &state.blue_targets {
        let health = standby_health
            .iter()
            .find(|(id, port, _)| *id == t.instance_id && *port == t.port)
            .and_then(|(_, _, s)| s.clone());
        if health.as_deref() != Some("healthy") {
            not_ready.push(format!(
                "{}:{} is {}",
                t.instance_id,
                t.port,
                health.as_deref().unwrap_or("not registered")
            ));
        }
    }
    if not_ready.is_empty() {
        SwitchDecision::Switch
    } else {
        SwitchDecision::Fallback {
            reason: format!(
                "blue was not healthy in the standby target group ({}): traffic returns through CodeDeploy's rollback only",
                not_ready.join(", ")
            ),
        }
    }
}

/// What to do to put the listener and the standby back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreDecision {
    /// Put each route back to its snapshot, then deregister blue from
    /// standby (in that order: standby keeps serving until no route sends
    /// traffic to it).
    Restore,
    /// Nothing to do (already put back).
    Nothing,
    /// Keep blue serving through standby: the main target group has no
    /// healthy blue fleet (the rollback failed or has not ended). `commands`
    /// put it back by hand once blue is healthy in main.
    KeepStandby {
        reason: String,
        commands: Vec<String>,
    },
}

/// Decides whether the routes may be put back. Armed routes (`{main: 1,
/// standby: 0}`) route exactly as the snapshot: always restored. Switched
/// routes are restored only when every blue target is `healthy` in main and
/// nothing else in main is routable (green blocked): otherwise restoring
/// would put traffic on a group with no healthy target, or on green.
/// `main_health` = (instance id, port, state) for the main group.
pub fn decide_restore(
    state: &StandbyState,
    main_health: &[(String, u16, Option<String>)],
) -> RestoreDecision {
    if state.restored {
        return RestoreDecision::Nothing;
    }
    if state.weights == Weights::Armed {
        return RestoreDecision::Restore;
    }
    let is_blue = |id: &str, port: u16| {
        state
            .blue_targets
            .iter()
            .any(|t| t.instance_id == id && t.port == port)
    };
    let mut problems = Vec::new();
    for t in &state.blue_targets {
        let health = main_health
            .iter()
            .find(|(id, port, _)| *id == t.instance_id && *port == t.port)
            .and_then(|(_, _, s)| s.as_deref());
        if health != Some("healthy") {
            problems.push(format!(
                "blue {}:{} is {} in the main target group",
                t.instance_id,
                t.port,
                health.unwrap_or("not registered")
            ));
        }
    }
    for (id, port, s) in main_health {
        if !is_blue(id, *port) && matches!(s.as_deref(), Some("healthy" | "initial")) {
            problems.push(format!(
                "{id}:{port} (not blue) is still {} in the main target group",
                s.as_deref().unwrap_or("registered")
            ));
        }
    }
    if problems.is_empty() {
        RestoreDecision::Restore
    } else {
        RestoreDecision::KeepStandby {
            reason: format!(
                "blue keeps serving through the standby target group {}: {}",
                state.standby_target_group_arn,
                problems.join("; ")
            ),
            commands: restore_commands(state),
        }
    }
}

/// The AWS CLI commands that put the routes back to their snapshots and
/// take blue out of standby (for a human, once blue is healthy in main).
pub fn restore_commands(state: &StandbyState) -> Vec<String> {
    let mut commands: Vec<String> = state
        .routes
        .iter()
        .map(|r| {
            let actions = serde_json::to_string(&cli_actions(&r.actions)).unwrap_or_default();
            match r.kind {
                RouteKind::Listener => format!(
                    "aws elbv2 modify-listener --listener-arn {} --default-actions '{actions}'",
                    r.arn
                ),
                RouteKind::Rule => format!(
                    "aws elbv2 modify-rule --rule-arn {} --actions '{actions}'",
                    r.arn
                ),
            }
        })
        .collect();
    if !state.blue_targets.is_empty() {
        let targets: Vec<String> = state
            .blue_targets
            .iter()
            .map(|t| format!("Id={},Port={}", t.instance_id, t.port))
            .collect();
        commands.push(format!(
            "aws elbv2 deregister-targets --target-group-arn {} --targets {}",
            state.standby_target_group_arn,
            targets.join(" ")
        ));
    }
    commands
}

/// The ELBv2 wire shape of actions (as `--default-actions` takes them).
fn cli_actions(actions: &[RouteAction]) -> serde_json::Value {
    serde_json::Value::Array(
        actions
            .iter()
            .map(|a| {
                let mut o = serde_json::Map::new();
                o.insert("Type".into(), a.action_type.clone().into());
                if let Some(order) = a.order {
                    o.insert("Order".into(), order.into());
                }
                if let Some(arn) = &a.target_group_arn {
                    o.insert("TargetGroupArn".into(), arn.clone().into());
                }
                if !a.forward_to.is_empty() {
                    let groups: Vec<serde_json::Value> = a
                        .forward_to
                        .iter()
                        .map(|g| {
                            let mut m = serde_json::Map::new();
                            m.insert("TargetGroupArn".into(), g.target_group_arn.clone().into());
                            if let Some(w) = g.weight {
                                m.insert("Weight".into(), w.into());
                            }
                            serde_json::Value::Object(m)
                        })
                        .collect();
                    let mut fc = serde_json::Map::new();
                    fc.insert("TargetGroups".into(), groups.into());
                    if let Some(s) = a.stickiness {
                        let mut sm = serde_json::Map::new();
                        sm.insert("Enabled".into(), s.enabled.into());
                        if let Some(d) = s.duration_seconds {
                            sm.insert("DurationSeconds".into(), d.into());
                        }
                        fc.insert("TargetGroupStickinessConfig".into(), sm.into());
                    }
                    o.insert("ForwardConfig".into(), fc.into());
                }
                serde_json::Value::Object(o)
            })
            .collect(),
    )
}

/// Blue's original instances as standby targets: the deployment's targets
/// labelled Blue, on the main group's port (never another group's).
pub fn blue_targets(view: &crate::model::DeploymentView, port: u16) -> Vec<StandbyTarget> {
    let mut found: Vec<StandbyTarget> = view
        .targets
        .iter()
        .filter(|t| t.label == Some(crate::model::FleetLabel::Blue))
        .map(|t| StandbyTarget {
            instance_id: t.instance_id.clone(),
            port,
        })
        .collect();
    found.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    found.dedup();
    found
}

#[cfg(test)]
#[path = "standby_tests.rs"]
mod tests;
