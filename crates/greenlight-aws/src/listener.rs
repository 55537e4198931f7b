//! The listeners and rules in front of the deployment's target group, and
//! the standby target group that keeps blue warm during the bake
//! (`greenlight_core::bake::standby` decides; this module reads and writes
//! ELBv2).
//!
//! - [`forward_routes`]: every listener default action set and rule of the
//!   target group's load balancers that names it (DescribeTargetGroups →
//!   DescribeListeners → DescribeRules), in the core's [`Route`] shape: the
//!   snapshot that is put back.
//! - [`set_route_actions`]: ModifyListener (default actions) or ModifyRule.
//! - [`register_targets`] / [`deregister_targets`]: blue in and out of standby.
//! - [`target_states`]: DescribeTargetHealth as (id, port, state).

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, TargetDescription, TargetGroupStickinessConfig,
    TargetGroupTuple,
};
use aws_sdk_elasticloadbalancingv2::Client as Elbv2Client;
use greenlight_core::bake::standby::{
    GroupStickiness, Route, RouteAction, RouteKind, StandbyTarget, WeightedTargetGroup,
};

use crate::error::AwsError;
use crate::load_balancer::{target_group_load_balancers, LbError};

/// The core's shape of one ELBv2 action.
pub fn route_action(a: &Action) -> RouteAction {
    let forward = a.forward_config();
    RouteAction {
        action_type: a
            .r#type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        order: a.order(),
        target_group_arn: a.target_group_arn().map(str::to_string),
        forward_to: forward
            .map(|f| {
                f.target_groups()
                    .iter()
                    .filter_map(|g| {
                        Some(WeightedTargetGroup {
                            target_group_arn: g.target_group_arn()?.to_string(),
                            weight: g.weight(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
        stickiness: forward
            .and_then(|f| f.target_group_stickiness_config())
            .map(|s| GroupStickiness {
                enabled: s.enabled().unwrap_or(false),
                duration_seconds: s.duration_seconds(),
            }),
    }
}

/// The ELBv2 action for the core's shape (forward actions only carry their
/// target groups, weights and stickiness; the core never asks to write any
/// other type).
pub fn sdk_action(a: &RouteAction) -> Action {
    let forward = (!a.forward_to.is_empty()).then(|| {
        ForwardActionConfig::builder()
            .set_target_groups(Some(
                a.forward_to
                    .iter()
                    .map(|g| {
                        TargetGroupTuple::builder()
                            .target_group_arn(&g.target_group_arn)
                            .set_weight(g.weight)
                            .build()
                    })
                    .collect(),
            ))
            .set_target_group_stickiness_config(a.stickiness.map(|s| {
                TargetGroupStickinessConfig::builder()
                    .enabled(s.enabled)
                    .set_duration_seconds(s.duration_seconds)
                    .build()
            }))
            .build()
    });
    Action::builder()
        .r#type(ActionTypeEnum::from(a.action_type.as_str()))
        .set_order(a.order)
        .set_target_group_arn(a.target_group_arn.clone())
        .set_forward_config(forward)
        .build()
}

fn names(actions: &[RouteAction], target_group_arn: &str) -> bool {
    actions.iter().any(|a| {
        a.target_group_arn.as_deref() == Some(target_group_arn)
            || a.forward_to
                .iter()
                .any(|g| g.target_group_arn == target_group_arn)
    })
}

/// Every listener (default actions) and non-default rule of the target
/// group's load balancers whose actions name it.
pub async fn forward_routes(
    elbv2: &Elbv2Client,
    target_group_arn: &str,
) -> Result<Vec<Route>, LbError> {
    let mut routes = Vec::new();
    for lb in target_group_load_balancers(elbv2, target_group_arn).await? {
        let mut marker: Option<String> = None;
        loop {
            let page = elbv2
                .describe_listeners()
                .load_balancer_arn(&lb)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| LbError::Aws(AwsError::from_sdk("DescribeListeners", &lb, &e)))?;
            for listener in page.listeners() {
                let Some(listener_arn) = listener.listener_arn() else {
                    continue;
                };
                let defaults: Vec<RouteAction> =
                    listener.default_actions().iter().map(route_action).collect();
                if names(&defaults, target_group_arn) {
                    routes.push(Route {
                        kind: RouteKind::Listener,
                        arn: listener_arn.to_string(),
                        actions: defaults,
                    });
                }
                routes.extend(rule_routes(elbv2, listener_arn, target_group_arn).await?);
            }
            match page.next_marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                _ => break,
            }
        }
    }
    Ok(routes)
}

/// The listener's non-default rules naming the target group (the default
/// rule is the listener's default actions, changed with ModifyListener).
async fn rule_routes(
    elbv2: &Elbv2Client,
    listener_arn: &str,
    target_group_arn: &str,
) -> Result<Vec<Route>, LbError> {
    let mut routes = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = elbv2
            .describe_rules()
            .listener_arn(listener_arn)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| LbError::Aws(AwsError::from_sdk("DescribeRules", listener_arn, &e)))?;
        for rule in page.rules() {
            let (Some(rule_arn), false) = (rule.rule_arn(), rule.is_default().unwrap_or(false))
            else {
                continue;
            };
            let actions: Vec<RouteAction> = rule.actions().iter().map(route_action).collect();
            if names(&actions, target_group_arn) {
                routes.push(Route {
                    kind: RouteKind::Rule,
                    arn: rule_arn.to_string(),
                    actions,
                });
            }
        }
        match page.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    Ok(routes)
}

/// Sets a route's actions: ModifyListener `DefaultActions` or ModifyRule `Actions`.
pub async fn set_route_actions(
    elbv2: &Elbv2Client,
    kind: RouteKind,
    arn: &str,
    actions: &[RouteAction],
) -> Result<(), LbError> {
    let sdk: Vec<Action> = actions.iter().map(sdk_action).collect();
    match kind {
        RouteKind::Listener => elbv2
            .modify_listener()
            .listener_arn(arn)
            .set_default_actions(Some(sdk))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| LbError::Aws(AwsError::from_sdk("ModifyListener", arn, &e))),
        RouteKind::Rule => elbv2
            .modify_rule()
            .rule_arn(arn)
            .set_actions(Some(sdk))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| LbError::Aws(AwsError::from_sdk("ModifyRule", arn, &e))),
    }
}

fn descriptions(targets: &[StandbyTarget]) -> Vec<TargetDescription> {
    targets
        .iter()
        .map(|t| {
            TargetDescription::builder()
                .id(&t.instance_id)
                .port(i32::from(t.port))
                .build()
        })
        .collect()
}

/// RegisterTargets (idempotent on AWS: registering a registered target is a no-op).
pub async fn register_targets(
    elbv2: &Elbv2Client,
    target_group_arn: &str,
    targets: &[StandbyTarget],
) -> Result<(), LbError> {
    if targets.is_empty() {
        return Ok(());
    }
    elbv2
        .register_targets()
        .target_group_arn(target_group_arn)
        .set_targets(Some(descriptions(targets)))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| LbError::Aws(AwsError::from_sdk("RegisterTargets", target_group_arn, &e)))
}

/// DeregisterTargets; a target that is not registered is not an error
/// (`InvalidTargetException` is answered only for ids that are not valid
/// instances, which is reported).
pub async fn deregister_targets(
    elbv2: &Elbv2Client,
    target_group_arn: &str,
    targets: &[StandbyTarget],
) -> Result<(), LbError> {
    if targets.is_empty() {
        return Ok(());
    }
    elbv2
        .deregister_targets()
        .target_group_arn(target_group_arn)
        .set_targets(Some(descriptions(targets)))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            LbError::Aws(AwsError::from_sdk(
                "DeregisterTargets",
                target_group_arn,
                &e,
            ))
        })
}

/// Each registered target's (id, port, state); a target without a port is
/// reported on `default_port`.
pub async fn target_states(
    elbv2: &Elbv2Client,
    target_group_arn: &str,
    default_port: u16,
) -> Result<Vec<(String, u16, Option<String>)>, LbError> {
    Ok(
        crate::load_balancer::registered_targets(elbv2, target_group_arn)
            .await?
            .into_iter()
            .map(|t| (t.id, t.port.unwrap_or(default_port), t.state))
            .collect(),
    )
}

#[cfg(test)]
#[path = "listener_tests.rs"]
mod tests;
