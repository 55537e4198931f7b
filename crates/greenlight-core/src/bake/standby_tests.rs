use super::*;
use crate::model::{
    DeploymentStatus, DeploymentView, FleetLabel, InstanceTargetView, LifecycleStatus,
};

const MAIN: &str = "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/shop/aaa";
const STANDBY: &str = "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/shop-standby/bbb";
const OTHER: &str = "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/other/ccc";
const LISTENER: &str = "arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/shop/x/y";
const RULE: &str = "arn:aws:elasticloadbalancing:eu-west-1:1:listener-rule/app/shop/x/y/z";

fn forward(arn: &str) -> RouteAction {
    RouteAction {
        action_type: "forward".into(),
        order: None,
        target_group_arn: Some(arn.into()),
        forward_to: Vec::new(),
        stickiness: None,
    }
}

fn listener(actions: Vec<RouteAction>) -> Route {
    Route {
        kind: RouteKind::Listener,
        arn: LISTENER.into(),
        actions,
    }
}

fn blue() -> Vec<StandbyTarget> {
    vec![
        StandbyTarget {
            instance_id: "i-blue1".into(),
            port: 8080,
        },
        StandbyTarget {
            instance_id: "i-blue2".into(),
            port: 8080,
        },
    ]
}

fn state(weights: Weights) -> StandbyState {
    StandbyState {
        deployment_id: "d-TEST".into(),
        main_target_group_arn: MAIN.into(),
        standby_target_group_arn: STANDBY.into(),
        blue_targets: blue(),
        routes: vec![listener(vec![forward(MAIN)])],
        weights,
        restored: false,
        settle_seconds: 3,
        switched_at_ms: None,
    }
}

fn health(entries: &[(&str, &str)]) -> Vec<(String, u16, Option<String>)> {
    entries
        .iter()
        .map(|(id, s)| (id.to_string(), 8080, Some(s.to_string())))
        .collect()
}

#[test]
fn arming_a_plain_forward_weights_main_1_standby_0_and_keeps_the_snapshot() {
    let route = listener(vec![forward(MAIN)]);
    let plan = plan_arm(std::slice::from_ref(&route), MAIN, STANDBY, &blue());
    let ArmPlan::Arm {
        blue_targets,
        changes,
    } = plan
    else {
        panic!("expected Arm");
    };
    assert_eq!(blue_targets, blue());
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].0, route, "the snapshot is the route as found");
    let armed = &changes[0].1;
    assert_eq!(armed.len(), 1);
    assert_eq!(armed[0].action_type, "forward");
    assert_eq!(armed[0].target_group_arn, None);
    assert_eq!(
        armed[0].forward_to,
        vec![
            WeightedTargetGroup {
                target_group_arn: MAIN.into(),
                weight: Some(1)
            },
            WeightedTargetGroup {
                target_group_arn: STANDBY.into(),
                weight: Some(0)
            },
        ]
    );
}

#[test]
fn a_weighted_forward_to_main_alone_is_armed_and_keeps_its_order() {
    let mut action = forward(MAIN);
    action.target_group_arn = None;
    action.order = Some(3);
    action.forward_to = vec![WeightedTargetGroup {
        target_group_arn: MAIN.into(),
        weight: None,
    }];
    action.stickiness = Some(GroupStickiness {
        enabled: false,
        duration_seconds: Some(3600),
    });
    let route = Route {
        kind: RouteKind::Rule,
        arn: RULE.into(),
        actions: vec![action],
    };
    let ArmPlan::Arm { changes, .. } = plan_arm(&[route], MAIN, STANDBY, &blue()) else {
        panic!("expected Arm");
    };
    assert_eq!(changes[0].1[0].order, Some(3));
    assert_eq!(
        changes[0].1[0].stickiness,
        Some(GroupStickiness {
            enabled: false,
            duration_seconds: Some(3600)
        })
    );
}

#[test]
fn group_stickiness_is_turned_off_so_the_switch_moves_every_client() {
    let mut action = forward(MAIN);
    action.stickiness = Some(GroupStickiness {
        enabled: true,
        duration_seconds: Some(600),
    });
    let route = listener(vec![action]);
    let switched = weighted_actions(&route, MAIN, STANDBY, Weights::Switched);
    assert_eq!(
        switched[0].stickiness,
        Some(GroupStickiness {
            enabled: false,
            duration_seconds: None
        })
    );
    assert_eq!(switched[0].forward_to[0].weight, Some(0));
    assert_eq!(switched[0].forward_to[1].weight, Some(1));
}

#[test]
fn every_route_is_armed_or_none_is() {
    let good = listener(vec![forward(MAIN)]);
    let bad = Route {
        kind: RouteKind::Rule,
        arn: RULE.into(),
        actions: vec![
            RouteAction {
                action_type: "authenticate-oidc".into(),
                order: Some(1),
                target_group_arn: None,
                forward_to: Vec::new(),
                stickiness: None,
            },
            RouteAction {
                order: Some(2),
                ..forward(MAIN)
            },
        ],
    };
    match plan_arm(&[good, bad], MAIN, STANDBY, &blue()) {
        ArmPlan::Refuse { reason } => {
            assert!(
                reason.contains(RULE) && reason.contains("2 actions"),
                "{reason}"
            )
        }
        other => panic!("expected Refuse, got {other:?}"),
    }
}

#[test]
fn refused_routes_and_inputs() {
    let weighted_with_other = {
        let mut a = forward(MAIN);
        a.target_group_arn = None;
        a.forward_to = vec![
            WeightedTargetGroup {
                target_group_arn: MAIN.into(),
                weight: Some(9),
            },
            WeightedTargetGroup {
                target_group_arn: OTHER.into(),
                weight: Some(1),
            },
        ];
        listener(vec![a])
    };
    let already_standby = {
        let mut a = forward(MAIN);
        a.target_group_arn = None;
        a.forward_to = vec![
            WeightedTargetGroup {
                target_group_arn: MAIN.into(),
                weight: Some(1),
            },
            WeightedTargetGroup {
                target_group_arn: STANDBY.into(),
                weight: Some(0),
            },
        ];
        listener(vec![a])
    };
    let redirect = listener(vec![RouteAction {
        action_type: "redirect".into(),
        ..forward(MAIN)
    }]);
    let cases: Vec<(Vec<Route>, &str, Vec<StandbyTarget>, &str)> = vec![
        (vec![weighted_with_other], STANDBY, blue(), "alone"),
        (vec![already_standby], STANDBY, blue(), "already forwards"),
        (vec![redirect], STANDBY, blue(), "alone"),
        (Vec::new(), STANDBY, blue(), "no listener or rule"),
        (
            vec![listener(vec![forward(MAIN)])],
            MAIN,
            blue(),
            "own target group",
        ),
        (
            vec![listener(vec![forward(MAIN)])],
            STANDBY,
            Vec::new(),
            "no original",
        ),
    ];
    for (routes, standby, blue, expected) in cases {
        match plan_arm(&routes, MAIN, standby, &blue) {
            ArmPlan::Refuse { reason } => assert!(reason.contains(expected), "{reason}"),
            other => panic!("expected Refuse containing {expected:?}, got {other:?}"),
        }
    }
}

#[test]
fn a_forward_with_weight_zero_to_another_group_still_counts_as_main_alone() {
    let mut a = forward(MAIN);
    a.target_group_arn = None;
    a.forward_to = vec![
        WeightedTargetGroup {
            target_group_arn: MAIN.into(),
            weight: Some(1),
        },
        WeightedTargetGroup {
            target_group_arn: OTHER.into(),
            weight: Some(0),
        },
    ];
    // OTHER receives nothing, but the armed route would drop it from the
    // forward: the snapshot (with OTHER) is what is put back.
    let route = listener(vec![a]);
    assert!(matches!(
        plan_arm(std::slice::from_ref(&route), MAIN, STANDBY, &blue()),
        ArmPlan::Arm { .. }
    ));
}

#[test]
fn switch_only_when_all_of_blue_is_healthy_in_standby() {
    let s = state(Weights::Armed);
    assert_eq!(
        decide_switch(
            &s,
            &health(&[("i-blue1", "healthy"), ("i-blue2", "healthy")])
        ),
        SwitchDecision::Switch
    );
    match decide_switch(
        &s,
        &health(&[("i-blue1", "healthy"), ("i-blue2", "initial")]),
    ) {
        SwitchDecision::Fallback { reason } => {
            assert!(reason.contains("i-blue2:8080 is initial"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    match decide_switch(&s, &health(&[("i-blue1", "healthy")])) {
        SwitchDecision::Fallback { reason } => {
            assert!(
                reason.contains("i-blue2:8080 is not registered"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    // Same id on another port is not the registered target.
    let wrong_port = vec![
        ("i-blue1".to_string(), 8080, Some("healthy".to_string())),
        ("i-blue2".to_string(), 9090, Some("healthy".to_string())),
    ];
    assert!(matches!(
        decide_switch(&s, &wrong_port),
        SwitchDecision::Fallback { .. }
    ));
}

#[test]
fn an_armed_route_is_always_restored_and_a_restored_one_is_left_alone() {
    assert_eq!(
        decide_restore(&state(Weights::Armed), &[]),
        RestoreDecision::Restore
    );
    let mut done = state(Weights::Switched);
    done.restored = true;
    assert_eq!(decide_restore(&done, &[]), RestoreDecision::Nothing);
}

#[test]
fn a_switched_route_is_restored_only_onto_healthy_blue_with_green_blocked() {
    let s = state(Weights::Switched);
    assert_eq!(
        decide_restore(
            &s,
            &health(&[
                ("i-blue1", "healthy"),
                ("i-blue2", "healthy"),
                ("i-green1", "draining")
            ])
        ),
        RestoreDecision::Restore
    );
    // Rollback failed: blue never came back into main.
    match decide_restore(&s, &health(&[("i-green1", "healthy")])) {
        RestoreDecision::KeepStandby { reason, commands } => {
            assert!(
                reason.contains("i-blue1:8080 is not registered"),
                "{reason}"
            );
            assert!(
                reason.contains("i-green1:8080 (not blue) is still healthy"),
                "{reason}"
            );
            assert_eq!(commands.len(), 2);
            assert!(commands[0].starts_with(&format!(
                "aws elbv2 modify-listener --listener-arn {LISTENER} --default-actions '"
            )));
            assert!(commands[0].contains(&format!("\"TargetGroupArn\":\"{MAIN}\"")));
            assert_eq!(
                commands[1],
                format!("aws elbv2 deregister-targets --target-group-arn {STANDBY} --targets Id=i-blue1,Port=8080 Id=i-blue2,Port=8080")
            );
        }
        other => panic!("{other:?}"),
    }
    // Blue healthy but green not yet blocked.
    assert!(matches!(
        decide_restore(
            &s,
            &health(&[
                ("i-blue1", "healthy"),
                ("i-blue2", "healthy"),
                ("i-green1", "healthy")
            ])
        ),
        RestoreDecision::KeepStandby { .. }
    ));
    // Blue still initial in main.
    assert!(matches!(
        decide_restore(
            &s,
            &health(&[("i-blue1", "healthy"), ("i-blue2", "initial")])
        ),
        RestoreDecision::KeepStandby { .. }
    ));
}

#[test]
fn restore_commands_render_the_snapshot_in_the_wire_shape() {
    let mut s = state(Weights::Switched);
    let mut a = forward(MAIN);
    a.target_group_arn = None;
    a.order = Some(1);
    a.forward_to = vec![WeightedTargetGroup {
        target_group_arn: MAIN.into(),
        weight: Some(5),
    }];
    a.stickiness = Some(GroupStickiness {
        enabled: true,
        duration_seconds: Some(60),
    });
    s.routes = vec![Route {
        kind: RouteKind::Rule,
        arn: RULE.into(),
        actions: vec![a],
    }];
    let commands = restore_commands(&s);
    let json = commands[0]
        .split_once('\'')
        .map(|(_, rest)| rest.trim_end_matches('\''))
        .unwrap_or_default();
    let value: serde_json::Value = serde_json::from_str(json).expect("json");
    assert_eq!(
        value,
        serde_json::json!([{"Type": "forward", "Order": 1, "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": MAIN, "Weight": 5}],
            "TargetGroupStickinessConfig": {"Enabled": true, "DurationSeconds": 60}}}])
    );
    assert!(commands[0].starts_with(&format!(
        "aws elbv2 modify-rule --rule-arn {RULE} --actions"
    )));
}

#[test]
fn the_state_round_trips_through_json() {
    let s = state(Weights::Switched);
    let text = serde_json::to_string(&s).expect("json");
    assert!(text.contains("\"weights\":\"switched\""), "{text}");
    assert!(text.contains("\"kind\":\"listener\""), "{text}");
    let back: StandbyState = serde_json::from_str(&text).expect("back");
    assert_eq!(back, s);
}

#[test]
fn blue_targets_are_the_deployments_blue_instances_only() {
    let target = |id: &str, label| InstanceTargetView {
        instance_id: id.into(),
        label,
        status: LifecycleStatus::Succeeded,
        lifecycle_events: Vec::new(),
    };
    let view = DeploymentView {
        deployment_id: "d-1".into(),
        application: "shop".into(),
        deployment_group: "shop-bg".into(),
        status: DeploymentStatus::InProgress,
        description: None,
        created_at_ms: None,
        completed_at_ms: None,
        error: None,
        rollback_deployment_id: None,
        creator: None,
        rollback_triggering_deployment_id: None,
        original_auto_scaling_groups: Vec::new(),
        termination_wait_started: Some(true),
        targets: vec![
            target("i-blue2", Some(FleetLabel::Blue)),
            target("i-green1", Some(FleetLabel::Green)),
            target("i-blue1", Some(FleetLabel::Blue)),
            target("i-unknown", None),
        ],
    };
    assert_eq!(blue_targets(&view, 8080), blue());
}

#[test]
fn bake_config_takes_a_standby_target_group_name_and_checks_it() {
    use crate::bake::parse_bake_config;
    let ok = parse_bake_config(
        r#"[{"application":"shop","deploymentGroup":"shop-bg","bakeSeconds":60,"standbyTargetGroup":"shop-standby"}]"#,
    )
    .expect("valid");
    assert_eq!(ok[0].standby_target_group.as_deref(), Some("shop-standby"));
    assert_eq!(ok[0].standby_settle_seconds, 30, "default settle");
    let none = parse_bake_config(
        r#"[{"application":"shop","deploymentGroup":"shop-bg","bakeSeconds":60}]"#,
    )
    .expect("valid");
    assert_eq!(none[0].standby_target_group, None);
    for bad in [
        r#"[{"application":"shop","deploymentGroup":"shop-bg","bakeSeconds":60,"standbyTargetGroup":"-bad"}]"#,
        r#"[{"application":"shop","deploymentGroup":"shop-bg","bakeSeconds":60,"standbyTargetGroup":"a_b"}]"#,
        r#"[{"application":"shop","deploymentGroup":"shop-bg","bakeSeconds":60,"standbyTargetGroup":"abcdefghijabcdefghijabcdefghijabc"}]"#,
        r#"[{"application":"shop","deploymentGroup":"shop-bg","bakeSeconds":60,"standbySettleSeconds":301}]"#,
    ] {
        assert!(parse_bake_config(bad).is_err(), "{bad}");
    }
}
