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
//! - [`arm`], [`switch`], [`put_back`]: the standby's three moves, each
//!   decided by the core first.
//! - [`read_record`], [`write_record`], [`remove_record`]: the standby's
//!   record on the deployment's own target group
//!   (`greenlight_core::bake::standby_record`), written before the first
//!   listener change and before a switch, removed once put back, so the
//!   failure handler's execution-end and CodeDeploy-event paths can put the
//!   listener back too.

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, Tag, TargetDescription,
    TargetGroupStickinessConfig, TargetGroupTuple,
};
use aws_sdk_elasticloadbalancingv2::Client as Elbv2Client;
use greenlight_core::bake::standby::{
    decide_restore, decide_switch, plan_arm, restore_commands, weighted_actions, ArmPlan,
    GroupStickiness, RestoreDecision, Route, RouteAction, RouteKind, StandbyState, StandbyTarget,
    SwitchDecision, WeightedTargetGroup, Weights,
};
use greenlight_core::bake::standby_record::{
    decode_record, encode_record, record_keys, settle_plan, RecordRead, Settle,
};

use crate::error::AwsError;
use crate::load_balancer::{elb_error, target_group_load_balancers, target_group_tags, LbError};

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
                let defaults: Vec<RouteAction> = listener
                    .default_actions()
                    .iter()
                    .map(route_action)
                    .collect();
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

/// What [`put_back`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutBack {
    /// The routes equal their snapshots and blue left standby (or it was so already).
    Done { detail: String },
    /// Blue keeps serving through standby ([`RestoreDecision::KeepStandby`]):
    /// the reason and the commands that put it back by hand.
    Kept {
        reason: String,
        commands: Vec<String>,
    },
    /// An ELBv2 call failed midway; the commands put it back by hand.
    Failed {
        error: String,
        commands: Vec<String>,
    },
}

/// Puts the routes back to their snapshots, then takes blue out of standby
/// after the settle the core decides ([`settle_plan`]: at once when the
/// routes gave standby weight 0; after `settle_seconds` when they were
/// switched and that fits `remaining_ms`, the invocation's time left; else
/// blue is left registered in a standby nothing forwards to, and the detail
/// gives the command), when the core allows ([`decide_restore`]): never onto
/// a main target group without a healthy blue fleet. Then removes the
/// standby's record from the main target group and marks `state.restored`.
pub async fn put_back(
    elbv2: &Elbv2Client,
    state: &mut StandbyState,
    remaining_ms: Option<i64>,
) -> PutBack {
    let main_health = if state.weights == Weights::Switched && !state.restored {
        let port = state.blue_targets.first().map_or(0, |t| t.port);
        match target_states(elbv2, &state.main_target_group_arn, port).await {
            Ok(h) => h,
            Err(e) => {
                return PutBack::Failed {
                    error: format!("reading the main target group's health: {e}"),
                    commands: restore_commands(state),
                }
            }
        }
    } else {
        Vec::new()
    };
    match decide_restore(state, &main_health) {
        RestoreDecision::Nothing => PutBack::Done {
            detail: "listener and standby were already put back".to_string(),
        },
        RestoreDecision::KeepStandby { reason, commands } => PutBack::Kept { reason, commands },
        RestoreDecision::Restore => {
            for route in &state.routes {
                if let Err(e) =
                    set_route_actions(elbv2, route.kind, &route.arn, &route.actions).await
                {
                    return PutBack::Failed {
                        error: e.to_string(),
                        commands: restore_commands(state),
                    };
                }
            }
            let settle = settle_plan(state.weights, state.settle_seconds, remaining_ms);
            let blue = match &settle {
                Settle::Leave { reason } => format!(
                    "blue ({} target(s)) left registered in standby {}, which no listener forwards to any more (it serves nothing): {reason}; deregister it later: {}",
                    state.blue_targets.len(),
                    state.standby_target_group_arn,
                    restore_commands(state).last().cloned().unwrap_or_default()
                ),
                Settle::Now | Settle::Wait { .. } => {
                    let waited = match &settle {
                        &Settle::Wait { seconds } => {
                            tokio::time::sleep(std::time::Duration::from_secs(u64::from(
                                seconds,
                            )))
                            .await;
                            format!("after a {seconds} s settle")
                        }
                        _ => "at once (the standby had weight 0: no request was routed to it)"
                            .to_string(),
                    };
                    if let Err(e) = deregister_targets(
                        elbv2,
                        &state.standby_target_group_arn,
                        &state.blue_targets,
                    )
                    .await
                    {
                        return PutBack::Failed {
                            error: format!("routes put back, but blue is still in standby: {e}"),
                            commands: restore_commands(state),
                        };
                    }
                    format!(
                        "blue ({} target(s)) deregistered from standby {} {waited}",
                        state.blue_targets.len(),
                        state.standby_target_group_arn
                    )
                }
            };
            state.restored = true;
            let record = match remove_record(elbv2, &state.main_target_group_arn).await {
                Ok(_) => String::new(),
                Err(e) => format!(
                    "; the standby record tags on {} could not be removed ({e}): aws elbv2 remove-tags --resource-arns {} --tag-keys greenlight:standby greenlight:standby:0 ...",
                    state.main_target_group_arn, state.main_target_group_arn
                ),
            };
            PutBack::Done {
                detail: format!(
                    "{} route(s) put back to their snapshot; {blue}{record}",
                    state.routes.len(),
                ),
            }
        }
    }
}

/// The standby record on the main target group `arn`.
pub async fn read_record(elbv2: &Elbv2Client, arn: &str) -> Result<RecordRead, LbError> {
    Ok(decode_record(&target_group_tags(elbv2, arn).await?))
}

/// Writes the record `tags` ([`encode_record`]) on the main target group in
/// one AddTags call (a key already there is overwritten).
pub async fn write_record(
    elbv2: &Elbv2Client,
    arn: &str,
    tags: &[(String, String)],
) -> Result<(), LbError> {
    elbv2
        .add_tags()
        .resource_arns(arn)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .send()
        .await
        .map(|_| ())
        .map_err(|err| {
            elb_error("AddTags", arn, err, |e| {
                e.is_target_group_not_found_exception()
            })
        })
}

/// Removes every record tag from the main target group (stale parts
/// included); false when there was none.
pub async fn remove_record(elbv2: &Elbv2Client, arn: &str) -> Result<bool, LbError> {
    let keys = record_keys(&target_group_tags(elbv2, arn).await?);
    if keys.is_empty() {
        return Ok(false);
    }
    elbv2
        .remove_tags()
        .resource_arns(arn)
        .set_tag_keys(Some(keys))
        .send()
        .await
        .map(|_| true)
        .map_err(|err| {
            elb_error("RemoveTags", arn, err, |e| {
                e.is_target_group_not_found_exception()
            })
        })
}

/// Arms the standby ([`plan_arm`]): registers blue in standby, then weights
/// every route `{main: 1, standby: 0}`, recording the state on the main
/// target group first ([`write_record`]; a state too big to record is not
/// armed). On a failure midway, puts back what it changed (best effort) and
/// answers why, with the commands when even that failed. Ok = the state to
/// carry; Err = why the standby is not used.
pub async fn arm(
    elbv2: &Elbv2Client,
    deployment_id: &str,
    main: &str,
    standby: &str,
    blue: &[StandbyTarget],
    settle_seconds: u32,
) -> Result<StandbyState, String> {
    let routes = forward_routes(elbv2, main)
        .await
        .map_err(|e| format!("the listeners in front of {main} could not be read: {e}"))?;
    let (blue_targets, changes) = match plan_arm(&routes, main, standby, blue) {
        ArmPlan::Arm {
            blue_targets,
            changes,
        } => (blue_targets, changes),
        ArmPlan::Refuse { reason } => return Err(reason),
    };
    let mut state = StandbyState {
        deployment_id: deployment_id.to_string(),
        main_target_group_arn: main.to_string(),
        standby_target_group_arn: standby.to_string(),
        blue_targets,
        routes: changes.iter().map(|(r, _)| r.clone()).collect(),
        weights: Weights::Armed,
        restored: false,
        settle_seconds,
        switched_at_ms: None,
    };
    let record = encode_record(&state)?;
    if let Err(e) = register_targets(elbv2, standby, &state.blue_targets).await {
        return Err(format!("blue could not be registered in the standby: {e}"));
    }
    if let Err(e) = write_record(elbv2, main, &record).await {
        let undo = match deregister_targets(elbv2, standby, &state.blue_targets).await {
            Ok(()) => "blue is taken out of the standby again".to_string(),
            Err(u) => format!(
                "taking blue out of the standby failed too ({u}); run: {}",
                restore_commands(&state).last().cloned().unwrap_or_default()
            ),
        };
        return Err(format!(
            "the standby's record could not be written on {main} ({e}), so no listener is changed; {undo}"
        ));
    }
    for (done, (route, armed)) in changes.iter().enumerate() {
        if let Err(e) = set_route_actions(elbv2, route.kind, &route.arn, armed).await {
            // Put back the routes changed so far, and take blue out.
            state.routes.truncate(done);
            let undo = put_back(elbv2, &mut state, None).await;
            return Err(format!(
                "{} {} could not be weighted ({e}); {}",
                match route.kind {
                    RouteKind::Listener => "listener",
                    RouteKind::Rule => "rule",
                },
                route.arn,
                match undo {
                    PutBack::Done { .. } => "what was changed is put back".to_string(),
                    PutBack::Kept { reason, commands }
                    | PutBack::Failed {
                        error: reason,
                        commands,
                    } => format!(
                        "putting back what was changed failed ({reason}); run: {}",
                        commands.join(" && ")
                    ),
                }
            ));
        }
    }
    Ok(state)
}

/// Switches every route to `{main: 0, standby: 1}` when the core says blue
/// is ready ([`decide_switch`]). Ok(()) = traffic is on blue (once the
/// change propagates); Err = why not (the caller falls back to CodeDeploy's
/// rollback alone). The record on the main target group says Switched
/// before the first route changes (a record that cannot be rewritten means
/// no switch). A failure midway leaves `weights` Switched, so the put back
/// is the careful one.
pub async fn switch(
    elbv2: &Elbv2Client,
    state: &mut StandbyState,
    now_ms: greenlight_core::model::EpochMillis,
) -> Result<(), String> {
    let port = state.blue_targets.first().map_or(0, |t| t.port);
    let health = target_states(elbv2, &state.standby_target_group_arn, port)
        .await
        .map_err(|e| format!("the standby's health could not be read ({e}): traffic returns through CodeDeploy's rollback only"))?;
    if let SwitchDecision::Fallback { reason } = decide_switch(state, &health) {
        return Err(reason);
    }
    let main = state.main_target_group_arn.clone();
    let standby = state.standby_target_group_arn.clone();
    let mut switched_record = state.clone();
    switched_record.weights = Weights::Switched;
    let recorded = match encode_record(&switched_record) {
        Ok(tags) => write_record(elbv2, &main, &tags)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    if let Err(e) = recorded {
        return Err(format!(
            "the standby's record could not be marked switched on {main} ({e}), so the listener is not switched: traffic returns through CodeDeploy's rollback only"
        ));
    }
    for (i, route) in state.routes.clone().iter().enumerate() {
        let switched = weighted_actions(route, &main, &standby, Weights::Switched);
        if let Err(e) = set_route_actions(elbv2, route.kind, &route.arn, &switched).await {
            if i > 0 {
                state.weights = Weights::Switched;
            }
            return Err(format!(
                "switching {} to the standby failed ({e}): traffic returns through CodeDeploy's rollback",
                route.arn
            ));
        }
        state.weights = Weights::Switched;
    }
    state.switched_at_ms = Some(now_ms);
    Ok(())
}

#[cfg(test)]
#[path = "listener_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "listener_standby_tests.rs"]
mod standby_tests;
