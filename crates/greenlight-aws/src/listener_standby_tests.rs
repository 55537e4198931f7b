//! The standby's moves against mocked ELBv2 (real client): the record on
//! the main target group is written before the listener changes, marked
//! switched before a switch, and removed once put back; the settle is the
//! core's (`settle_plan`).

use std::sync::{Arc, Mutex};

use super::*;
use aws_sdk_elasticloadbalancingv2::operation::add_tags::{AddTagsError, AddTagsOutput};
use aws_sdk_elasticloadbalancingv2::operation::deregister_targets::DeregisterTargetsOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_listeners::DescribeListenersOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_rules::DescribeRulesOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_tags::DescribeTagsOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::DescribeTargetGroupsOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput;
use aws_sdk_elasticloadbalancingv2::operation::modify_listener::ModifyListenerOutput;
use aws_sdk_elasticloadbalancingv2::operation::register_targets::RegisterTargetsOutput;
use aws_sdk_elasticloadbalancingv2::operation::remove_tags::RemoveTagsOutput;
use aws_sdk_elasticloadbalancingv2::types::{
    Listener, TagDescription, TargetGroup, TargetHealth, TargetHealthDescription,
    TargetHealthStateEnum,
};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use greenlight_core::bake::standby_record::RECORD_TAG_KEY;

const MAIN: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/1";
const STANDBY: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-standby/2";
const LB: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/9";
const L80: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/9/80";

type Calls = Arc<Mutex<Vec<String>>>;

fn calls() -> Calls {
    Arc::new(Mutex::new(Vec::new()))
}

fn seen(c: &Calls) -> Vec<String> {
    c.lock().unwrap().clone()
}

fn blue() -> Vec<StandbyTarget> {
    vec![
        StandbyTarget {
            instance_id: "i-1".into(),
            port: 8080,
        },
        StandbyTarget {
            instance_id: "i-2".into(),
            port: 8080,
        },
    ]
}

fn forward_main() -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(MAIN)
        .build()
}

fn armed_state(weights: Weights) -> StandbyState {
    StandbyState {
        deployment_id: "d-1".into(),
        main_target_group_arn: MAIN.into(),
        standby_target_group_arn: STANDBY.into(),
        blue_targets: blue(),
        routes: vec![Route {
            kind: RouteKind::Listener,
            arn: L80.into(),
            actions: vec![route_action(&forward_main())],
        }],
        weights,
        restored: false,
        settle_seconds: 30,
        switched_at_ms: None,
    }
}

/// The routes in front of MAIN: one listener forwarding to it.
fn routes_rules() -> Vec<Rule> {
    vec![
        mock!(Elbv2Client::describe_target_groups)
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
            }),
        mock!(Elbv2Client::describe_listeners).then_output(|| {
            DescribeListenersOutput::builder()
                .listeners(
                    Listener::builder()
                        .listener_arn(L80)
                        .default_actions(forward_main())
                        .build(),
                )
                .build()
        }),
        mock!(Elbv2Client::describe_rules).then_output(|| DescribeRulesOutput::builder().build()),
    ]
}

/// Every call of the moves, in order: "register", "deregister",
/// "tags:<decoded weights>", "listener:<weights of main,standby>", "untag:<n keys>".
fn effect_rules(log: &Calls, record_on_main: Option<StandbyState>) -> Vec<Rule> {
    let (l1, l2, l3, l4, l5) = (
        log.clone(),
        log.clone(),
        log.clone(),
        log.clone(),
        log.clone(),
    );
    vec![
        mock!(Elbv2Client::register_targets)
            .match_requests(move |r| {
                l1.lock().unwrap().push(format!(
                    "register:{}",
                    r.target_group_arn().unwrap_or_default()
                ));
                true
            })
            .then_output(|| RegisterTargetsOutput::builder().build()),
        mock!(Elbv2Client::deregister_targets)
            .match_requests(move |r| {
                l2.lock().unwrap().push(format!(
                    "deregister:{}",
                    r.target_group_arn().unwrap_or_default()
                ));
                true
            })
            .then_output(|| DeregisterTargetsOutput::builder().build()),
        mock!(Elbv2Client::add_tags)
            .match_requests(move |r| {
                let tags: Vec<(String, String)> = r
                    .tags()
                    .iter()
                    .map(|t| {
                        (
                            t.key().unwrap_or_default().to_string(),
                            t.value().unwrap_or_default().to_string(),
                        )
                    })
                    .collect();
                let entry = match decode_record(&tags) {
                    RecordRead::Found(s) => format!("tags:{:?}:{}", s.weights, s.deployment_id),
                    other => format!("tags:undecodable {other:?}"),
                };
                assert_eq!(r.resource_arns(), [MAIN], "the record is on the main group");
                l3.lock().unwrap().push(entry);
                true
            })
            .then_output(|| AddTagsOutput::builder().build()),
        mock!(Elbv2Client::modify_listener)
            .match_requests(move |r| {
                let weights: Vec<String> = r
                    .default_actions()
                    .iter()
                    .map(|a| match a.forward_config() {
                        Some(f) => f
                            .target_groups()
                            .iter()
                            .map(|g| g.weight().unwrap_or(1).to_string())
                            .collect::<Vec<_>>()
                            .join(","),
                        None => "plain".to_string(),
                    })
                    .collect();
                l4.lock()
                    .unwrap()
                    .push(format!("listener:{}", weights.join(";")));
                true
            })
            .then_output(|| ModifyListenerOutput::builder().build()),
        mock!(Elbv2Client::remove_tags)
            .match_requests(move |r| {
                l5.lock()
                    .unwrap()
                    .push(format!("untag:{}", r.tag_keys().len()));
                true
            })
            .then_output(|| RemoveTagsOutput::builder().build()),
        mock!(Elbv2Client::describe_tags).then_output(move || {
            let mut d = TagDescription::builder()
                .resource_arn(MAIN)
                .tags(Tag::builder().key("team").value("web").build());
            if let Some(s) = &record_on_main {
                for (k, v) in encode_record(s).unwrap() {
                    d = d.tags(Tag::builder().key(k).value(v).build());
                }
            }
            DescribeTagsOutput::builder()
                .tag_descriptions(d.build())
                .build()
        }),
    ]
}

fn health(tg: &'static str, states: &'static [(&'static str, TargetHealthStateEnum)]) -> Rule {
    mock!(Elbv2Client::describe_target_health)
        .match_requests(move |r| r.target_group_arn() == Some(tg))
        .then_output(move || {
            let mut out = DescribeTargetHealthOutput::builder();
            for (id, state) in states {
                out = out.target_health_descriptions(
                    TargetHealthDescription::builder()
                        .target(TargetDescription::builder().id(*id).port(8080).build())
                        .target_health(TargetHealth::builder().state(state.clone()).build())
                        .build(),
                );
            }
            out.build()
        })
}

fn client(rules: &[Rule]) -> Elbv2Client {
    mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, rules)
}

#[tokio::test]
async fn arming_records_the_state_on_the_main_group_before_the_listener_changes() {
    let log = calls();
    let mut rules = routes_rules();
    rules.extend(effect_rules(&log, None));
    let elb = client(&rules);
    let state = arm(&elb, "d-1", MAIN, STANDBY, &blue(), 30)
        .await
        .expect("armed");
    assert_eq!(state.deployment_id, "d-1");
    assert_eq!(state.weights, Weights::Armed);
    assert_eq!(
        seen(&log),
        vec![
            format!("register:{STANDBY}"),
            "tags:Armed:d-1".to_string(),
            "listener:1,0".to_string(),
        ]
    );
}

#[tokio::test]
async fn a_record_that_cannot_be_written_arms_nothing_and_takes_blue_out() {
    let log = calls();
    let too_many = mock!(Elbv2Client::add_tags).then_error(|| {
        AddTagsError::TooManyTagsException(
            aws_sdk_elasticloadbalancingv2::types::error::TooManyTagsException::builder()
                .message("You've reached the limit on the number of tags for this resource")
                .build(),
        )
    });
    let mut rules = vec![too_many];
    rules.extend(routes_rules());
    rules.extend(effect_rules(&log, None));
    let elb = client(&rules);
    let err = arm(&elb, "d-1", MAIN, STANDBY, &blue(), 30)
        .await
        .expect_err("not armed");
    assert!(err.contains("no listener is changed"), "{err}");
    assert!(
        err.contains("blue is taken out of the standby again"),
        "{err}"
    );
    assert_eq!(
        seen(&log),
        vec![
            format!("register:{STANDBY}"),
            format!("deregister:{STANDBY}")
        ],
        "no listener change"
    );
}

#[tokio::test]
async fn switching_marks_the_record_switched_before_the_listener() {
    static HEALTHY: [(&str, TargetHealthStateEnum); 2] = [
        ("i-1", TargetHealthStateEnum::Healthy),
        ("i-2", TargetHealthStateEnum::Healthy),
    ];
    let log = calls();
    let mut rules = vec![health(STANDBY, &HEALTHY)];
    rules.extend(effect_rules(&log, None));
    let elb = client(&rules);
    let mut state = armed_state(Weights::Armed);
    switch(&elb, &mut state, 5).await.expect("switched");
    assert_eq!(state.weights, Weights::Switched);
    assert_eq!(
        seen(&log),
        vec!["tags:Switched:d-1".to_string(), "listener:0,1".to_string()]
    );
}

#[tokio::test]
async fn a_switch_whose_record_cannot_be_marked_is_not_made() {
    static HEALTHY: [(&str, TargetHealthStateEnum); 2] = [
        ("i-1", TargetHealthStateEnum::Healthy),
        ("i-2", TargetHealthStateEnum::Healthy),
    ];
    let log = calls();
    let failing = mock!(Elbv2Client::add_tags).then_error(|| {
        AddTagsError::TargetGroupNotFoundException(
            aws_sdk_elasticloadbalancingv2::types::error::TargetGroupNotFoundException::builder()
                .build(),
        )
    });
    let mut rules = vec![failing, health(STANDBY, &HEALTHY)];
    rules.extend(effect_rules(&log, None));
    let elb = client(&rules);
    let mut state = armed_state(Weights::Armed);
    let err = switch(&elb, &mut state, 5).await.expect_err("no switch");
    assert!(err.contains("could not be marked switched"), "{err}");
    assert_eq!(state.weights, Weights::Armed);
    assert!(seen(&log).is_empty(), "{:?}", seen(&log));
}

#[tokio::test]
async fn putting_back_armed_routes_deregisters_at_once_and_removes_the_record() {
    let log = calls();
    let state = armed_state(Weights::Armed);
    let rules = effect_rules(&log, Some(state.clone()));
    let elb = client(&rules);
    let mut state = state;
    // No time left at all: an armed standby never needs a settle.
    let PutBack::Done { detail } = put_back(&elb, &mut state, Some(0)).await else {
        panic!("expected Done");
    };
    assert!(state.restored);
    assert!(detail.contains("at once"), "{detail}");
    let parts = encode_record(&armed_state(Weights::Armed)).unwrap().len();
    assert_eq!(
        seen(&log),
        vec![
            "listener:plain".to_string(),
            format!("deregister:{STANDBY}"),
            format!("untag:{parts}"),
        ]
    );
    assert!(parts >= 2 && RECORD_TAG_KEY == "greenlight:standby");
}

#[tokio::test]
async fn putting_back_switched_routes_without_time_for_the_settle_leaves_blue_registered() {
    static MAIN_HEALTHY: [(&str, TargetHealthStateEnum); 2] = [
        ("i-1", TargetHealthStateEnum::Healthy),
        ("i-2", TargetHealthStateEnum::Healthy),
    ];
    let log = calls();
    let state = armed_state(Weights::Switched);
    let mut rules = vec![health(MAIN, &MAIN_HEALTHY)];
    rules.extend(effect_rules(&log, Some(state.clone())));
    let elb = client(&rules);
    let mut state = state;
    let PutBack::Done { detail } = put_back(&elb, &mut state, Some(40_000)).await else {
        panic!("expected Done");
    };
    assert!(detail.contains("left registered"), "{detail}");
    assert!(detail.contains("aws elbv2 deregister-targets"), "{detail}");
    let log = seen(&log);
    assert_eq!(log[0], "listener:plain");
    assert!(
        !log.iter().any(|c| c.starts_with("deregister")),
        "no deregistration without the settle: {log:?}"
    );
    assert!(log[1].starts_with("untag:"), "{log:?}");
}

#[tokio::test]
async fn switched_routes_are_not_put_back_onto_an_unhealthy_main_group() {
    static MAIN_DRAINING: [(&str, TargetHealthStateEnum); 2] = [
        ("i-1", TargetHealthStateEnum::Initial),
        ("i-green", TargetHealthStateEnum::Healthy),
    ];
    let log = calls();
    let state = armed_state(Weights::Switched);
    let mut rules = vec![health(MAIN, &MAIN_DRAINING)];
    rules.extend(effect_rules(&log, Some(state.clone())));
    let elb = client(&rules);
    let mut state = state;
    let PutBack::Kept { reason, commands } = put_back(&elb, &mut state, None).await else {
        panic!("expected Kept");
    };
    assert!(reason.contains("i-green"), "{reason}");
    assert!(commands[0].contains("modify-listener"), "{commands:?}");
    assert!(!state.restored);
    assert!(
        seen(&log).is_empty(),
        "nothing changed, record kept: {:?}",
        seen(&log)
    );
}

#[tokio::test]
async fn the_record_reads_back_from_the_main_groups_tags() {
    let log = calls();
    let state = armed_state(Weights::Switched);
    let elb = client(&effect_rules(&log, Some(state.clone())));
    assert_eq!(
        read_record(&elb, MAIN).await.expect("read"),
        RecordRead::Found(Box::new(state))
    );
    let empty = client(&effect_rules(&log, None));
    assert_eq!(
        read_record(&empty, MAIN).await.expect("read"),
        RecordRead::Absent
    );
    assert!(!remove_record(&empty, MAIN)
        .await
        .expect("nothing to remove"));
}
