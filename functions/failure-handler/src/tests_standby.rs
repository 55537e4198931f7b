//! The standby put back by the paths that have no `$.bake.standby`: an
//! execution that died after its bake armed (or switched) the standby is
//! put back from the record on the deployment group's target group
//! (`greenlight:standby` tags), only for its own deployment.

use super::*;
use aws_sdk_elasticloadbalancingv2::operation::deregister_targets::DeregisterTargetsOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput;
use aws_sdk_elasticloadbalancingv2::operation::modify_listener::ModifyListenerOutput;
use aws_sdk_elasticloadbalancingv2::types::{
    TargetDescription, TargetHealth, TargetHealthDescription, TargetHealthStateEnum,
};
use greenlight_core::bake::standby::{
    Route, RouteAction, RouteKind, StandbyState, StandbyTarget, Weights,
};
use greenlight_core::bake::standby_record::encode_record;

const STANDBY_TG: &str =
    "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/shop-standby/0f0e0d0c0b0a0908";
const LISTENER: &str =
    "arn:aws:elasticloadbalancing:us-east-1:111122223333:listener/app/shop-alb/50dc6c495c0c9188/f2f7dc8efc522ab2";

fn record(deployment_id: &str, weights: Weights) -> StandbyState {
    StandbyState {
        deployment_id: deployment_id.into(),
        main_target_group_arn: TG_ARN.into(),
        standby_target_group_arn: STANDBY_TG.into(),
        blue_targets: vec![StandbyTarget {
            instance_id: BLUE_1.into(),
            port: 8080,
        }],
        routes: vec![Route {
            kind: RouteKind::Listener,
            arn: LISTENER.into(),
            actions: vec![RouteAction {
                action_type: "forward".into(),
                order: None,
                target_group_arn: Some(TG_ARN.into()),
                forward_to: Vec::new(),
                stickiness: None,
            }],
        }],
        weights,
        restored: false,
        settle_seconds: 300,
        switched_at_ms: None,
    }
}

/// ELBv2 with the tuner's snapshot tag and the standby record on the main
/// target group; `changes` logs every listener change, deregistration and
/// record removal.
fn elb_with_record(
    rec: StandbyState,
    main_health: &'static [(&'static str, TargetHealthStateEnum)],
    changes: Log<String>,
) -> Vec<Rule> {
    elb_with_record_tags(encode_record(&rec).unwrap(), main_health, changes)
}

/// [`elb_with_record`] with the record's tags as given (e.g. corrupted).
fn elb_with_record_tags(
    record_tags: Vec<(String, String)>,
    main_health: &'static [(&'static str, TargetHealthStateEnum)],
    changes: Log<String>,
) -> Vec<Rule> {
    let mut tags = vec![(
        SNAPSHOT_TAG_KEY.to_string(),
        encode_snapshot_tag(&original()),
    )];
    tags.extend(record_tags);
    let (c1, c2, c3) = (changes.clone(), changes.clone(), changes);
    let mut rules = vec![
        mock!(aws_sdk_elasticloadbalancingv2::Client::describe_tags).then_output(move || {
            let mut d = TagDescription::builder().resource_arn(TG_ARN);
            for (k, v) in &tags {
                d = d.tags(Tag::builder().key(k).value(v).build());
            }
            DescribeTagsOutput::builder()
                .tag_descriptions(d.build())
                .build()
        }),
        mock!(aws_sdk_elasticloadbalancingv2::Client::modify_listener)
            .match_requests(move |r| {
                let a = &r.default_actions()[0];
                c1.lock().unwrap().push(format!(
                    "listener {} -> {}",
                    r.listener_arn().unwrap_or_default(),
                    a.target_group_arn().unwrap_or("weighted")
                ));
                true
            })
            .then_output(|| ModifyListenerOutput::builder().build()),
        mock!(aws_sdk_elasticloadbalancingv2::Client::deregister_targets)
            .match_requests(move |r| {
                c2.lock().unwrap().push(format!(
                    "deregister {}",
                    r.target_group_arn().unwrap_or_default()
                ));
                true
            })
            .then_output(|| DeregisterTargetsOutput::builder().build()),
        mock!(aws_sdk_elasticloadbalancingv2::Client::remove_tags)
            .match_requests(move |r| {
                let standby = r
                    .tag_keys()
                    .iter()
                    .all(|k| k.starts_with("greenlight:standby"));
                if standby {
                    c3.lock()
                        .unwrap()
                        .push(format!("untag {} keys", r.tag_keys().len()));
                }
                standby
            })
            .then_output(|| RemoveTagsOutput::builder().build()),
        mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_health)
            .match_requests(|r| r.target_group_arn() == Some(TG_ARN))
            .then_output(move || {
                let mut out = DescribeTargetHealthOutput::builder();
                for (id, state) in main_health {
                    out = out.target_health_descriptions(
                        TargetHealthDescription::builder()
                            .target(TargetDescription::builder().id(*id).port(8080).build())
                            .target_health(TargetHealth::builder().state(state.clone()).build())
                            .build(),
                    );
                }
                out.build()
            }),
    ];
    rules.extend(elb_tuned_rules(log()));
    rules
}

/// The mocks of `an_execution_that_died_outside_the_failure_path_is_cleaned_up`
/// (an aborted execution) with `elbv2` in front.
fn died_execution(elbv2: Vec<Rule>) -> Mocks {
    died_execution_mocks(aws_sdk_sfn::types::ExecutionStatus::Aborted, log(), elbv2)
}

static BLUE_BACK: [(&str, TargetHealthStateEnum); 1] = [(BLUE_1, TargetHealthStateEnum::Healthy)];
static GREEN_STILL_IN: [(&str, TargetHealthStateEnum); 2] = [
    (BLUE_1, TargetHealthStateEnum::Healthy),
    (GOOD_GREEN, TargetHealthStateEnum::Healthy),
];

#[tokio::test]
async fn a_dead_executions_armed_standby_is_put_back_from_the_record() {
    let changes = log();
    let m = died_execution(elb_with_record(
        record(DEP, Weights::Armed),
        &BLUE_BACK,
        changes.clone(),
    ));
    let report = handled(run(execution_event(None), &m.deps()).await.unwrap());
    let a = action(&report, Step::RestoreListener);
    assert_eq!(a.outcome, Outcome::Done, "{}", a.detail);
    assert!(a.detail.contains("at once"), "{}", a.detail);
    let parts = encode_record(&record(DEP, Weights::Armed)).unwrap().len();
    assert_eq!(
        entries(&changes),
        vec![
            format!("listener {LISTENER} -> {TG_ARN}"),
            format!("deregister {STANDBY_TG}"),
            format!("untag {parts} keys"),
        ]
    );
}

#[tokio::test]
async fn a_dead_executions_switched_standby_goes_back_only_onto_healthy_blue() {
    // Green still routable in the main group: the listener stays on the
    // standby, and the report says LISTENER NOT PUT BACK with the commands.
    let changes = log();
    let m = died_execution(elb_with_record(
        record(DEP, Weights::Switched),
        &GREEN_STILL_IN,
        changes.clone(),
    ));
    let report = handled(run(execution_event(None), &m.deps()).await.unwrap());
    let a = action(&report, Step::RestoreListener);
    assert_eq!(a.outcome, Outcome::Failed);
    assert!(
        a.detail.starts_with("LISTENER NOT PUT BACK"),
        "{}",
        a.detail
    );
    assert!(
        a.detail.contains("aws elbv2 modify-listener"),
        "{}",
        a.detail
    );
    assert!(entries(&changes).is_empty(), "{:?}", entries(&changes));

    // Blue healthy and alone: put back; the 300 s settle does not fit the
    // 60 s left, so blue is left registered in the unused standby.
    let changes = log();
    let m = died_execution(elb_with_record(
        record(DEP, Weights::Switched),
        &BLUE_BACK,
        changes.clone(),
    ));
    let report = handled(
        handle(
            execution_event(None),
            "req-1",
            NOW,
            Some(greenlight_aws::now_ms() + 60_000),
            &m.deps(),
        )
        .await
        .unwrap(),
    );
    let a = action(&report, Step::RestoreListener);
    assert_eq!(a.outcome, Outcome::Done, "{}", a.detail);
    assert!(a.detail.contains("left registered"), "{}", a.detail);
    let seen = entries(&changes);
    assert_eq!(seen[0], format!("listener {LISTENER} -> {TG_ARN}"));
    assert!(
        !seen.iter().any(|c| c.starts_with("deregister")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn another_deployments_record_is_left_alone_and_reported() {
    let changes = log();
    let m = died_execution(elb_with_record(
        record("d-SOMEONEELSE", Weights::Switched),
        &BLUE_BACK,
        changes.clone(),
    ));
    let report = handled(run(execution_event(None), &m.deps()).await.unwrap());
    let a = action(&report, Step::RestoreListener);
    assert_eq!(a.outcome, Outcome::Skipped);
    assert!(a.detail.contains("d-SOMEONEELSE"), "{}", a.detail);
    assert!(entries(&changes).is_empty(), "{:?}", entries(&changes));
}

/// The CodeDeploy-event path (no execution state, no bake report) finds the
/// record through the deployment group's target groups and puts the
/// listener back from it.
#[tokio::test]
async fn the_codedeploy_event_path_puts_an_armed_standby_back_from_the_record() {
    let changes = log();
    let mut m = Mocks::new();
    m.codedeploy = install_failed_deployment(OUTSIDE_DEP, "hotfix deployed by hand");
    m.codedeploy.push(deployment_group_rule(&[BLUE_ASG]));
    m.autoscaling.push(delete_asg_not_found_rule());
    m.elbv2 = elb_with_record(
        record(OUTSIDE_DEP, Weights::Armed),
        &BLUE_BACK,
        changes.clone(),
    );
    m.sns.push(publish_rule(log()));
    m.s3 = s3_fresh_rules(log());
    let report = handled(
        run(
            Request::CodeDeploy(Box::new(event_request(EVENT_FAILURE))),
            &m.deps(),
        )
        .await
        .unwrap(),
    );
    assert_eq!(report.deployment_id.as_deref(), Some(OUTSIDE_DEP));
    let a = action(&report, Step::RestoreListener);
    assert_eq!(a.outcome, Outcome::Done, "{}", a.detail);
    let parts = encode_record(&record(OUTSIDE_DEP, Weights::Armed))
        .unwrap()
        .len();
    assert_eq!(
        entries(&changes),
        vec![
            format!("listener {LISTENER} -> {TG_ARN}"),
            format!("deregister {STANDBY_TG}"),
            format!("untag {parts} keys"),
        ]
    );
}

/// A record that does not decode changes nothing: the report says LISTENER
/// NOT PUT BACK, names the target group and what to check by hand.
#[tokio::test]
async fn a_corrupt_record_changes_nothing_and_is_reported() {
    let changes = log();
    let mut tags = encode_record(&record(DEP, Weights::Switched)).unwrap();
    let part = tags
        .iter_mut()
        .find(|(k, _)| k.starts_with(greenlight_core::bake::standby_record::RECORD_PART_PREFIX))
        .expect("a record has at least one part");
    part.1 = "not base64 at all!".into();
    let m = died_execution(elb_with_record_tags(tags, &BLUE_BACK, changes.clone()));
    let report = handled(run(execution_event(None), &m.deps()).await.unwrap());
    let a = action(&report, Step::RestoreListener);
    assert_eq!(a.outcome, Outcome::Failed, "{}", a.detail);
    assert!(
        a.detail.starts_with(&format!(
            "LISTENER NOT PUT BACK: the standby record on {TG_ARN} does not decode"
        )),
        "{}",
        a.detail
    );
    assert!(
        a.detail.contains("remove its greenlight:standby tags"),
        "{}",
        a.detail
    );
    assert!(entries(&changes).is_empty(), "{:?}", entries(&changes));
}
