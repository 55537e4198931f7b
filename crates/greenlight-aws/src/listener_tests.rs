use super::*;
use aws_sdk_elasticloadbalancingv2::operation::deregister_targets::DeregisterTargetsOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_listeners::DescribeListenersOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_rules::DescribeRulesOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::DescribeTargetGroupsOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput;
use aws_sdk_elasticloadbalancingv2::operation::modify_listener::{
    ModifyListenerError, ModifyListenerOutput,
};
use aws_sdk_elasticloadbalancingv2::operation::modify_rule::ModifyRuleOutput;
use aws_sdk_elasticloadbalancingv2::operation::register_targets::RegisterTargetsOutput;
use aws_sdk_elasticloadbalancingv2::types::{
    Listener, Rule as ElbRule, TargetGroup, TargetHealth, TargetHealthDescription,
    TargetHealthStateEnum,
};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use greenlight_core::bake::standby::{weighted_actions, Weights};

const MAIN: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/1";
const STANDBY: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-standby/2";
const OTHER: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/other/3";
const LB: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/9";
const L80: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/9/80";
const L81: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/9/81";
const RULE: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/9/81/5";

fn plain_forward(arn: &str) -> Action {
    // AWS answers a plain forward with both forms filled in.
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(arn)
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(
                    TargetGroupTuple::builder()
                        .target_group_arn(arn)
                        .weight(1)
                        .build(),
                )
                .target_group_stickiness_config(
                    TargetGroupStickinessConfig::builder()
                        .enabled(false)
                        .build(),
                )
                .build(),
        )
        .build()
}

#[tokio::test]
async fn forward_routes_finds_listener_defaults_and_rules_naming_the_group() {
    let tgs = mock!(Elbv2Client::describe_target_groups)
        .match_requests(|r| r.target_group_arns() == [MAIN])
        .then_output(|| {
            DescribeTargetGroupsOutput::builder()
                .target_groups(
                    TargetGroup::builder()
                        .target_group_arn(MAIN)
                        .load_balancer_arns(LB)
                        .build(),
                )
                .build()
        });
    let listeners = mock!(Elbv2Client::describe_listeners)
        .match_requests(|r| r.load_balancer_arn() == Some(LB))
        .then_output(|| {
            DescribeListenersOutput::builder()
                .listeners(
                    Listener::builder()
                        .listener_arn(L80)
                        .default_actions(plain_forward(MAIN))
                        .build(),
                )
                .listeners(
                    Listener::builder()
                        .listener_arn(L81)
                        .default_actions(plain_forward(OTHER))
                        .build(),
                )
                .build()
        });
    let rules_80 = mock!(Elbv2Client::describe_rules)
        .match_requests(|r| r.listener_arn() == Some(L80))
        .then_output(|| {
            DescribeRulesOutput::builder()
                .rules(
                    ElbRule::builder()
                        .rule_arn("default-80")
                        .is_default(true)
                        .actions(plain_forward(MAIN))
                        .build(),
                )
                .build()
        });
    let rules_81 = mock!(Elbv2Client::describe_rules)
        .match_requests(|r| r.listener_arn() == Some(L81))
        .then_output(|| {
            DescribeRulesOutput::builder()
                .rules(
                    ElbRule::builder()
                        .rule_arn(RULE)
                        .is_default(false)
                        .actions(plain_forward(MAIN))
                        .build(),
                )
                .rules(
                    ElbRule::builder()
                        .rule_arn("unrelated")
                        .is_default(false)
                        .actions(plain_forward(OTHER))
                        .build(),
                )
                .build()
        });
    let elb = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::MatchAny,
        [&tgs, &listeners, &rules_80, &rules_81]
    );
    let routes = forward_routes(&elb, MAIN).await.expect("routes");
    assert_eq!(
        routes
            .iter()
            .map(|r| (r.kind, r.arn.as_str()))
            .collect::<Vec<_>>(),
        vec![(RouteKind::Listener, L80), (RouteKind::Rule, RULE)],
        "the default rule is the listener itself; other groups' routes are left out"
    );
    let action = &routes[0].actions[0];
    assert_eq!(action.action_type, "forward");
    assert_eq!(action.target_group_arn.as_deref(), Some(MAIN));
    assert_eq!(
        action.forward_to,
        vec![WeightedTargetGroup {
            target_group_arn: MAIN.into(),
            weight: Some(1)
        }]
    );
    assert_eq!(
        action.stickiness,
        Some(GroupStickiness {
            enabled: false,
            duration_seconds: None
        })
    );
}

#[tokio::test]
async fn set_route_actions_sends_the_weighted_forward_to_the_right_api() {
    let route = Route {
        kind: RouteKind::Listener,
        arn: L80.into(),
        actions: vec![route_action(&plain_forward(MAIN))],
    };
    let switched = weighted_actions(&route, MAIN, STANDBY, Weights::Switched);
    let listener = mock!(Elbv2Client::modify_listener)
        .match_requests(|r| {
            let [a] = r.default_actions() else {
                return false;
            };
            let groups: Vec<(Option<&str>, Option<i32>)> = a
                .forward_config()
                .map(|f| {
                    f.target_groups()
                        .iter()
                        .map(|g| (g.target_group_arn(), g.weight()))
                        .collect()
                })
                .unwrap_or_default();
            r.listener_arn() == Some(L80)
                && a.r#type() == Some(&ActionTypeEnum::Forward)
                && a.target_group_arn().is_none()
                && groups == vec![(Some(MAIN), Some(0)), (Some(STANDBY), Some(1))]
        })
        .then_output(|| ModifyListenerOutput::builder().build());
    let rule = mock!(Elbv2Client::modify_rule)
        .match_requests(|r| {
            r.rule_arn() == Some(RULE)
                && r.actions().len() == 1
                && r.actions()[0].target_group_arn() == Some(MAIN)
        })
        .then_output(|| ModifyRuleOutput::builder().build());
    let elb = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::MatchAny,
        [&listener, &rule]
    );
    set_route_actions(&elb, RouteKind::Listener, L80, &switched)
        .await
        .expect("modify listener");
    set_route_actions(&elb, RouteKind::Rule, RULE, &route.actions)
        .await
        .expect("modify rule");
    assert_eq!(listener.num_calls(), 1);
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn a_refused_listener_change_is_an_aws_error_naming_the_listener() {
    let listener = mock!(Elbv2Client::modify_listener).then_error(|| {
        ModifyListenerError::ListenerNotFoundException(
            aws_sdk_elasticloadbalancingv2::types::error::ListenerNotFoundException::builder()
                .message("One or more listeners not found")
                .build(),
        )
    });
    let elb = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::MatchAny,
        [&listener]
    );
    let err = set_route_actions(&elb, RouteKind::Listener, L80, &[])
        .await
        .expect_err("not found");
    let text = err.to_string();
    assert!(
        text.contains("ModifyListener") && text.contains(L80),
        "{text}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn standby_registration_and_health() {
    let blue = vec![
        StandbyTarget {
            instance_id: "i-1".into(),
            port: 8080,
        },
        StandbyTarget {
            instance_id: "i-2".into(),
            port: 8080,
        },
    ];
    let register = mock!(Elbv2Client::register_targets)
        .match_requests(|r| {
            r.target_group_arn() == Some(STANDBY)
                && r.targets()
                    .iter()
                    .map(|t| (t.id(), t.port()))
                    .collect::<Vec<_>>()
                    == vec![(Some("i-1"), Some(8080)), (Some("i-2"), Some(8080))]
        })
        .then_output(|| RegisterTargetsOutput::builder().build());
    let deregister = mock!(Elbv2Client::deregister_targets)
        .match_requests(|r| r.target_group_arn() == Some(STANDBY) && r.targets().len() == 2)
        .then_output(|| DeregisterTargetsOutput::builder().build());
    let health = mock!(Elbv2Client::describe_target_health)
        .match_requests(|r| r.target_group_arn() == Some(STANDBY))
        .then_output(|| {
            DescribeTargetHealthOutput::builder()
                .target_health_descriptions(
                    TargetHealthDescription::builder()
                        .target(TargetDescription::builder().id("i-1").port(8080).build())
                        .target_health(
                            TargetHealth::builder()
                                .state(TargetHealthStateEnum::Healthy)
                                .build(),
                        )
                        .build(),
                )
                .target_health_descriptions(
                    TargetHealthDescription::builder()
                        .target(TargetDescription::builder().id("i-2").build())
                        .target_health(
                            TargetHealth::builder()
                                .state(TargetHealthStateEnum::Initial)
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    let elb = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::MatchAny,
        [&register, &deregister, &health]
    );
    register_targets(&elb, STANDBY, &blue)
        .await
        .expect("register");
    deregister_targets(&elb, STANDBY, &blue)
        .await
        .expect("deregister");
    // Nothing to do: no call.
    register_targets(&elb, STANDBY, &[]).await.expect("empty");
    assert_eq!((register.num_calls(), deregister.num_calls()), (1, 1));
    let states = target_states(&elb, STANDBY, 8080).await.expect("health");
    assert_eq!(
        states,
        vec![
            ("i-1".to_string(), 8080, Some("healthy".to_string())),
            ("i-2".to_string(), 8080, Some("initial".to_string())),
        ]
    );
}

#[test]
fn an_action_round_trips_through_the_core_shape() {
    let original = plain_forward(MAIN);
    let back = sdk_action(&route_action(&original));
    assert_eq!(back, original);
}
