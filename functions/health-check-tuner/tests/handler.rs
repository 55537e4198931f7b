//! Handler tests on the real SDK clients with aws-smithy-mocks. A request no
//! rule matches panics (the mock interceptor's default), so a test that has no
//! rule for a write also proves the write did not happen.

use aws_sdk_codedeploy::operation::get_deployment_group::{
    GetDeploymentGroupError, GetDeploymentGroupOutput,
};
use aws_sdk_codedeploy::types::{DeploymentGroupInfo, LoadBalancerInfo, TargetGroupInfo};
use aws_sdk_codedeploy::Client as CodeDeployClient;
use aws_sdk_elasticloadbalancingv2::config::http::HttpResponse;
use aws_sdk_elasticloadbalancingv2::operation::add_tags::AddTagsOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_tags::DescribeTagsOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_group_attributes::DescribeTargetGroupAttributesOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::{
    DescribeTargetGroupsError, DescribeTargetGroupsOutput,
};
use aws_sdk_elasticloadbalancingv2::operation::modify_target_group::{
    ModifyTargetGroupError, ModifyTargetGroupOutput,
};
use aws_sdk_elasticloadbalancingv2::operation::modify_target_group_attributes::ModifyTargetGroupAttributesOutput;
use aws_sdk_elasticloadbalancingv2::operation::remove_tags::RemoveTagsOutput;
use aws_sdk_elasticloadbalancingv2::types::error::{
    InvalidConfigurationRequestException, TargetGroupNotFoundException,
};
use aws_sdk_elasticloadbalancingv2::types::{
    Tag, TagDescription, TargetGroup, TargetGroupAttribute,
};
use aws_sdk_elasticloadbalancingv2::Client as Elbv2Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::body::SdkBody;
use greenlight_core::model::{
    AllowTrafficPrediction, BlockTrafficPrediction, HealthCheckSettings, TargetGroupSnapshot,
    TuningResult,
};
use greenlight_core::tuning::{
    FastProfile, RestoreReport, RestoreSource, SkipReason, SkippedTargetGroup,
};
use health_check_tuner::{handler, Action, Config, Deps, Error, Request, Response};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use std::sync::{Arc, Mutex};

const TUNE_EVENT: &str = include_str!("../../../events/task-tune.json");
const RESTORE_EVENT: &str = include_str!("../../../events/task-restore.json");

const ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/shop-tg/73e2d6bc24d8a067";
const ARN_2: &str =
    "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/shop-api-tg/0c4e1f2a9b8d7e65";
const SEED_TAG: &str = "v1 interval=30 timeout=5 healthy=10 unhealthy=2 deregistration=300";

type Log = Arc<Mutex<Vec<&'static str>>>;

// ---- fixtures ----------------------------------------------------------------

fn tune_request() -> Request {
    serde_json::from_str(TUNE_EVENT).expect("events/task-tune.json parses as a Request")
}

fn restore_request() -> Request {
    serde_json::from_str(RESTORE_EVENT).expect("events/task-restore.json parses as a Request")
}

/// The restore request as the failure path would see it without `$.tuning`.
fn restore_request_without_state() -> Request {
    let mut r = restore_request();
    r.pipeline.tuning = None;
    r
}

fn seed_snapshot(arn: &str) -> TargetGroupSnapshot {
    TargetGroupSnapshot {
        target_group_arn: arn.to_string(),
        health_check: HealthCheckSettings {
            interval_seconds: 30,
            timeout_seconds: 5,
            healthy_threshold: 10,
            unhealthy_threshold: 2,
        },
        deregistration_delay_seconds: 300,
    }
}

fn deps(cd: &[&Rule], elb: &[&Rule], config: Config) -> Deps {
    Deps {
        // One attempt per call: a throttled or 5xx answer reaches the shell
        // at once (the SDK's own retries are not under test here).
        codedeploy: mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, cd, |c| c
            .retry_config(
                aws_sdk_codedeploy::config::retry::RetryConfig::standard().with_max_attempts(1)
            )),
        elbv2: mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::MatchAny,
            elb,
            |c| c.retry_config(
                aws_sdk_elasticloadbalancingv2::config::retry::RetryConfig::standard()
                    .with_max_attempts(1)
            )
        ),
        config,
    }
}

async fn run(request: Request, deps: &Deps) -> Result<Response, Error> {
    handler(LambdaEvent::new(request, Context::default()), deps).await
}

fn error_type(e: Error) -> String {
    Diagnostic::from(e).error_type
}

fn print_json(label: &str, value: &impl serde::Serialize) {
    println!(
        "{label}:\n{}",
        serde_json::to_string_pretty(value).expect("serializes")
    );
}

// ---- CodeDeploy rules --------------------------------------------------------

fn deployment_group(names: &'static [&'static str]) -> Rule {
    mock!(CodeDeployClient::get_deployment_group)
        .match_requests(|r| {
            r.application_name() == Some("shop")
                && r.deployment_group_name() == Some("shop-bluegreen")
        })
        .then_output(move || {
            let mut lb = LoadBalancerInfo::builder();
            for name in names {
                lb = lb.target_group_info_list(TargetGroupInfo::builder().name(*name).build());
            }
            GetDeploymentGroupOutput::builder()
                .deployment_group_info(
                    DeploymentGroupInfo::builder()
                        .application_name("shop")
                        .deployment_group_name("shop-bluegreen")
                        .load_balancer_info(lb.build())
                        .build(),
                )
                .build()
        })
}

// ---- ELBv2 rules ---------------------------------------------------------------

fn tg_by_name() -> Rule {
    mock!(Elbv2Client::describe_target_groups)
        .match_requests(|r| r.names() == ["shop-tg"])
        .then_output(|| {
            DescribeTargetGroupsOutput::builder()
                .target_groups(
                    TargetGroup::builder()
                        .target_group_name("shop-tg")
                        .target_group_arn(ARN)
                        .build(),
                )
                .build()
        })
}

fn tg_by_arn(arn: &'static str, hc: (i32, i32, i32, i32)) -> Rule {
    mock!(Elbv2Client::describe_target_groups)
        .match_requests(move |r| r.target_group_arns() == [arn])
        .then_output(move || {
            DescribeTargetGroupsOutput::builder()
                .target_groups(
                    TargetGroup::builder()
                        .target_group_name("shop-tg")
                        .target_group_arn(arn)
                        .port(8080)
                        .health_check_path("/health")
                        .health_check_interval_seconds(hc.0)
                        .health_check_timeout_seconds(hc.1)
                        .healthy_threshold_count(hc.2)
                        .unhealthy_threshold_count(hc.3)
                        .build(),
                )
                .build()
        })
}

fn dereg(arn: &'static str, value: &'static str) -> Rule {
    mock!(Elbv2Client::describe_target_group_attributes)
        .match_requests(move |r| r.target_group_arn() == Some(arn))
        .then_output(move || {
            DescribeTargetGroupAttributesOutput::builder()
                .attributes(
                    TargetGroupAttribute::builder()
                        .key("deregistration_delay.timeout_seconds")
                        .value(value)
                        .build(),
                )
                .attributes(
                    TargetGroupAttribute::builder()
                        .key("stickiness.enabled")
                        .value("false")
                        .build(),
                )
                .build()
        })
}

fn tags(arn: &'static str, snapshot_tag: Option<&'static str>) -> Rule {
    mock!(Elbv2Client::describe_tags)
        .match_requests(move |r| r.resource_arns() == [arn])
        .then_output(move || {
            let mut d = TagDescription::builder()
                .resource_arn(arn)
                .tags(Tag::builder().key("team").value("shop").build());
            if let Some(v) = snapshot_tag {
                d = d.tags(Tag::builder().key("greenlight:snapshot").value(v).build());
            }
            DescribeTagsOutput::builder()
                .tag_descriptions(d.build())
                .build()
        })
}

fn log_call<T>(log: &Log, name: &'static str, out: T) -> T {
    log.lock().expect("log lock").push(name);
    out
}

/// AddTags with exactly the snapshot tag `value` on `arn`.
fn add_tag(arn: &'static str, value: &'static str, log: &Log) -> Rule {
    let log = log.clone();
    mock!(Elbv2Client::add_tags)
        .match_requests(move |r| {
            r.resource_arns() == [arn]
                && r.tags().len() == 1
                && r.tags()[0].key() == Some("greenlight:snapshot")
                && r.tags()[0].value() == Some(value)
        })
        .then_compute_output(move |_| log_call(&log, "AddTags", AddTagsOutput::builder().build()))
}

/// ModifyTargetGroup with exactly these health-check values and nothing else.
fn modify_hc(arn: &'static str, hc: (i32, i32, i32, i32), log: &Log) -> Rule {
    let log = log.clone();
    mock!(Elbv2Client::modify_target_group)
        .match_requests(move |r| {
            r.target_group_arn() == Some(arn)
                && r.health_check_interval_seconds() == Some(hc.0)
                && r.health_check_timeout_seconds() == Some(hc.1)
                && r.healthy_threshold_count() == Some(hc.2)
                && r.unhealthy_threshold_count() == Some(hc.3)
                && r.health_check_path().is_none()
                && r.health_check_port().is_none()
                && r.health_check_protocol().is_none()
                && r.health_check_enabled().is_none()
                && r.matcher().is_none()
        })
        .then_compute_output(move |_| {
            log_call(
                &log,
                "ModifyTargetGroup",
                ModifyTargetGroupOutput::builder().build(),
            )
        })
}

/// ModifyTargetGroupAttributes setting only the deregistration delay.
fn modify_dereg(arn: &'static str, value: &'static str, log: &Log) -> Rule {
    let log = log.clone();
    mock!(Elbv2Client::modify_target_group_attributes)
        .match_requests(move |r| {
            r.target_group_arn() == Some(arn)
                && r.attributes().len() == 1
                && r.attributes()[0].key() == Some("deregistration_delay.timeout_seconds")
                && r.attributes()[0].value() == Some(value)
        })
        .then_compute_output(move |_| {
            log_call(
                &log,
                "ModifyTargetGroupAttributes",
                ModifyTargetGroupAttributesOutput::builder().build(),
            )
        })
}

fn remove_tag(arn: &'static str, log: &Log) -> Rule {
    let log = log.clone();
    mock!(Elbv2Client::remove_tags)
        .match_requests(move |r| {
            r.resource_arns() == [arn] && r.tag_keys() == ["greenlight:snapshot"]
        })
        .then_compute_output(move |_| {
            log_call(&log, "RemoveTags", RemoveTagsOutput::builder().build())
        })
}

fn calls(log: &Log) -> Vec<&'static str> {
    log.lock().expect("log lock").clone()
}

const SEED_HC: (i32, i32, i32, i32) = (30, 5, 10, 2);
const FAST_HC: (i32, i32, i32, i32) = (5, 2, 2, 2);

// ---- events -----------------------------------------------------------------

#[test]
fn event_files_parse_as_requests() {
    let tune = tune_request();
    assert_eq!(tune.action, Action::Tune);
    assert_eq!(tune.execution_name, "shop-3f9c2a7d1e8b4c60a2d5e7f1b9c3d4e5");
    assert_eq!(tune.pipeline.input.application, "shop");
    assert_eq!(tune.pipeline.input.deployment_group, "shop-bluegreen");
    assert!(tune.pipeline.tuning.is_none());

    let restore = restore_request();
    assert_eq!(restore.action, Action::Restore);
    let tuning = restore
        .pipeline
        .tuning
        .expect("restore event carries $.tuning");
    assert_eq!(tuning.snapshots, vec![seed_snapshot(ARN)]);
    assert_eq!(tuning.predicted_allow_traffic.before_seconds, 330);
}

#[test]
fn unknown_action_is_rejected_by_deserialization() {
    let bad = TUNE_EVENT.replace("\"tune\"", "\"retune\"");
    assert!(serde_json::from_str::<Request>(&bad).is_err());
}

// ---- config -----------------------------------------------------------------

#[test]
fn config_from_env_defaults_overrides_and_validation() {
    // The only test that touches these variables.
    let vars = [
        "HEALTH_CHECK_INTERVAL_SECONDS",
        "HEALTH_CHECK_TIMEOUT_SECONDS",
        "HEALTHY_THRESHOLD",
        "UNHEALTHY_THRESHOLD",
        "DEREGISTRATION_DELAY_SECONDS",
    ];
    for v in vars {
        std::env::remove_var(v);
    }
    assert_eq!(Config::from_env().unwrap().profile, FastProfile::default());

    std::env::set_var("HEALTH_CHECK_INTERVAL_SECONDS", "10");
    std::env::set_var("DEREGISTRATION_DELAY_SECONDS", "0");
    let p = Config::from_env().unwrap().profile;
    assert_eq!(p.health_check.interval_seconds, 10);
    assert_eq!(p.health_check.timeout_seconds, 2);
    assert_eq!(p.deregistration_delay_seconds, 0);

    std::env::set_var("HEALTH_CHECK_TIMEOUT_SECONDS", "10");
    let err = Config::from_env().unwrap_err().to_string();
    assert!(err.contains("HEALTH_CHECK_TIMEOUT_SECONDS"), "{err}");
    assert!(err.contains("less than the interval"), "{err}");

    std::env::set_var("HEALTH_CHECK_TIMEOUT_SECONDS", "2");
    std::env::set_var("HEALTHY_THRESHOLD", "1");
    let err = Config::from_env().unwrap_err().to_string();
    assert!(err.contains("HEALTHY_THRESHOLD"), "{err}");

    std::env::set_var("HEALTHY_THRESHOLD", "two");
    let err = Config::from_env().unwrap_err().to_string();
    assert!(
        err.contains("HEALTHY_THRESHOLD") && err.contains("two"),
        "{err}"
    );

    for v in vars {
        std::env::remove_var(v);
    }
}

// ---- tune -------------------------------------------------------------------

#[tokio::test]
async fn tune_snapshots_tags_first_then_applies_the_fast_profile() {
    let log: Log = Default::default();
    let rules = [
        tg_by_name(),
        tg_by_arn(ARN, SEED_HC),
        dereg(ARN, "300"),
        tags(ARN, None),
        add_tag(ARN, SEED_TAG, &log),
        modify_hc(ARN, FAST_HC, &log),
        modify_dereg(ARN, "30", &log),
    ];
    let dg = deployment_group(&["shop-tg"]);
    let deps = deps(&[&dg], &rules.iter().collect::<Vec<_>>(), Config::default());

    let response = run(tune_request(), &deps).await.expect("tune succeeds");
    print_json("tune response", &response);

    assert_eq!(
        response,
        Response::Tuned(TuningResult {
            snapshots: vec![seed_snapshot(ARN)],
            predicted_allow_traffic: AllowTrafficPrediction {
                before_seconds: 330,
                after_seconds: 15,
            },
            predicted_block_traffic: Some(BlockTrafficPrediction {
                before_seconds: 300,
                after_seconds: 30,
            }),
        })
    );
    assert_eq!(
        calls(&log),
        [
            "AddTags",
            "ModifyTargetGroup",
            "ModifyTargetGroupAttributes"
        ]
    );
    // The JSON is exactly the TuningResult the state machine stores at $.tuning.
    let json = serde_json::to_value(&response).unwrap();
    assert_eq!(json["predictedAllowTraffic"]["beforeSeconds"], 330);
    assert_eq!(json["snapshots"][0]["healthCheck"]["healthyThreshold"], 10);
}

#[tokio::test]
async fn tune_applies_a_configured_profile_exactly() {
    let log: Log = Default::default();
    let profile = FastProfile::new(10, 4, 3, 2, 0).unwrap();
    let alb_default_tag = "v1 interval=30 timeout=5 healthy=5 unhealthy=2 deregistration=300";
    let rules = [
        tg_by_name(),
        tg_by_arn(ARN, (30, 5, 5, 2)),
        dereg(ARN, "300"),
        tags(ARN, None),
        add_tag(ARN, alb_default_tag, &log),
        modify_hc(ARN, (10, 4, 3, 2), &log),
        modify_dereg(ARN, "0", &log),
    ];
    let dg = deployment_group(&["shop-tg"]);
    let deps = deps(
        &[&dg],
        &rules.iter().collect::<Vec<_>>(),
        Config { profile },
    );
    let Response::Tuned(result) = run(tune_request(), &deps).await.unwrap() else {
        panic!("tune answers a TuningResult");
    };
    // ALB default (30 s, healthy 5) = 180 s; (10 s, healthy 3) = 40 s.
    assert_eq!(result.predicted_allow_traffic.before_seconds, 180);
    assert_eq!(result.predicted_allow_traffic.after_seconds, 40);
    assert_eq!(
        calls(&log),
        [
            "AddTags",
            "ModifyTargetGroup",
            "ModifyTargetGroupAttributes"
        ]
    );
}

#[tokio::test]
async fn tune_when_tag_exists_keeps_the_original_and_writes_nothing() {
    // A retried or repeated tune: the group is already tuned and tagged.
    // No AddTags / Modify* rule: any write would panic the mock.
    let rules = [
        tg_by_name(),
        tg_by_arn(ARN, FAST_HC),
        dereg(ARN, "30"),
        tags(ARN, Some(SEED_TAG)),
    ];
    let dg = deployment_group(&["shop-tg"]);
    let deps = deps(&[&dg], &rules.iter().collect::<Vec<_>>(), Config::default());
    let Response::Tuned(result) = run(tune_request(), &deps).await.unwrap() else {
        panic!("tune answers a TuningResult");
    };
    assert_eq!(result.snapshots, vec![seed_snapshot(ARN)]);
    assert_eq!(result.predicted_allow_traffic.before_seconds, 330);
    assert_eq!(result.predicted_allow_traffic.after_seconds, 15);
}

#[tokio::test]
async fn tune_when_tag_exists_but_settings_drifted_reapplies_without_retagging() {
    let log: Log = Default::default();
    let rules = [
        tg_by_name(),
        tg_by_arn(ARN, (10, 2, 2, 2)),
        dereg(ARN, "30"),
        tags(ARN, Some(SEED_TAG)),
        modify_hc(ARN, FAST_HC, &log),
    ];
    let dg = deployment_group(&["shop-tg"]);
    let deps = deps(&[&dg], &rules.iter().collect::<Vec<_>>(), Config::default());
    let Response::Tuned(result) = run(tune_request(), &deps).await.unwrap() else {
        panic!("tune answers a TuningResult");
    };
    assert_eq!(result.snapshots, vec![seed_snapshot(ARN)]);
    // The tuned values never reach a tag: no AddTags, only the drifted health check.
    assert_eq!(calls(&log), ["ModifyTargetGroup"]);
}

#[tokio::test]
async fn tune_invalid_profile_fails_before_any_aws_call() {
    let profile = FastProfile {
        health_check: HealthCheckSettings {
            interval_seconds: 5,
            timeout_seconds: 5,
            healthy_threshold: 2,
            unhealthy_threshold: 2,
        },
        deregistration_delay_seconds: 30,
    };
    let deps = deps(&[], &[], Config { profile });
    let err = run(tune_request(), &deps).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("less than the interval"), "{msg}");
    assert_eq!(error_type(err), "InvalidProfile");
}

#[tokio::test]
async fn tune_deployment_group_not_found() {
    let dg = mock!(CodeDeployClient::get_deployment_group).then_error(|| {
        GetDeploymentGroupError::DeploymentGroupDoesNotExistException(
            aws_sdk_codedeploy::types::error::DeploymentGroupDoesNotExistException::builder()
                .message("No Deployment Group found for name: shop-bluegreen")
                .build(),
        )
    });
    let deps = deps(&[&dg], &[], Config::default());
    let err = run(tune_request(), &deps).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("shop-bluegreen") && msg.contains("shop"),
        "{msg}"
    );
    assert_eq!(error_type(err), "DeploymentGroupNotFound");
}

#[tokio::test]
async fn tune_application_not_found_is_deployment_group_not_found() {
    let dg = mock!(CodeDeployClient::get_deployment_group).then_error(|| {
        GetDeploymentGroupError::ApplicationDoesNotExistException(
            aws_sdk_codedeploy::types::error::ApplicationDoesNotExistException::builder()
                .message("No application found for name: shop")
                .build(),
        )
    });
    let deps = deps(&[&dg], &[], Config::default());
    let err = run(tune_request(), &deps).await.unwrap_err();
    assert_eq!(error_type(err), "DeploymentGroupNotFound");
}

#[tokio::test]
async fn tune_without_target_group_is_no_load_balancer() {
    let dg = deployment_group(&[]);
    let deps = deps(&[&dg], &[], Config::default());
    let err = run(tune_request(), &deps).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("targetGroupInfoList"), "{msg}");
    assert_eq!(error_type(err), "NoLoadBalancer");
}

#[tokio::test]
async fn tune_target_group_not_found() {
    let dg = deployment_group(&["shop-tg"]);
    let d = mock!(Elbv2Client::describe_target_groups).then_error(|| {
        DescribeTargetGroupsError::TargetGroupNotFoundException(
            TargetGroupNotFoundException::builder()
                .message("One or more target groups not found")
                .build(),
        )
    });
    let deps = deps(&[&dg], &[&d], Config::default());
    let err = run(tune_request(), &deps).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("shop-tg"), "{msg}");
    assert_eq!(error_type(err), "TargetGroupNotFound");
}

#[tokio::test]
async fn tune_corrupt_tag_fails_without_writing() {
    let rules = [
        tg_by_name(),
        tg_by_arn(ARN, FAST_HC),
        dereg(ARN, "30"),
        tags(ARN, Some("v1 interval=30 timeout=5")),
    ];
    let dg = deployment_group(&["shop-tg"]);
    let deps = deps(&[&dg], &rules.iter().collect::<Vec<_>>(), Config::default());
    let err = run(tune_request(), &deps).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("greenlight:snapshot") && msg.contains(ARN),
        "{msg}"
    );
    assert_eq!(error_type(err), "CorruptSnapshotTag");
}

#[tokio::test]
async fn tune_modify_refused_is_aws_error_after_the_tag_was_written() {
    let log: Log = Default::default();
    let refuse = mock!(Elbv2Client::modify_target_group).then_error(|| {
        ModifyTargetGroupError::InvalidConfigurationRequestException(
            InvalidConfigurationRequestException::builder()
                .message("Health check interval must be greater than the timeout.")
                .build(),
        )
    });
    let rules = [
        tg_by_name(),
        tg_by_arn(ARN, SEED_HC),
        dereg(ARN, "300"),
        tags(ARN, None),
        add_tag(ARN, SEED_TAG, &log),
        refuse,
    ];
    let dg = deployment_group(&["shop-tg"]);
    let deps = deps(&[&dg], &rules.iter().collect::<Vec<_>>(), Config::default());
    let err = run(tune_request(), &deps).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("ModifyTargetGroup") && msg.contains("InvalidConfigurationRequest"),
        "{msg}"
    );
    assert_eq!(error_type(err), "AwsError");
    // The original is recorded, so the failure path can restore from the tag.
    assert_eq!(calls(&log), ["AddTags"]);
}

// ---- restore ----------------------------------------------------------------

#[tokio::test]
async fn restore_from_state_puts_back_exactly_the_snapshot_and_removes_the_tag() {
    let log: Log = Default::default();
    let rules = [
        tg_by_arn(ARN, FAST_HC),
        dereg(ARN, "30"),
        tags(ARN, Some(SEED_TAG)),
        modify_hc(ARN, SEED_HC, &log),
        modify_dereg(ARN, "300", &log),
        remove_tag(ARN, &log),
    ];
    // No CodeDeploy rule: the state is enough.
    let deps = deps(&[], &rules.iter().collect::<Vec<_>>(), Config::default());

    let response = run(restore_request(), &deps)
        .await
        .expect("restore succeeds");
    print_json("restore response", &response);
    assert_eq!(
        response,
        Response::Restored(RestoreReport {
            source: RestoreSource::State,
            restored: vec![ARN.to_string()],
            skipped: vec![],
        })
    );
    assert_eq!(
        calls(&log),
        [
            "ModifyTargetGroup",
            "ModifyTargetGroupAttributes",
            "RemoveTags"
        ]
    );
}

#[tokio::test]
async fn restore_from_state_twice_is_a_noop() {
    // Already restored: settings equal the snapshot, no tag. No write rule.
    let rules = [tg_by_arn(ARN, SEED_HC), dereg(ARN, "300"), tags(ARN, None)];
    let deps = deps(&[], &rules.iter().collect::<Vec<_>>(), Config::default());
    let response = run(restore_request(), &deps).await.unwrap();
    assert_eq!(
        response,
        Response::Restored(RestoreReport {
            source: RestoreSource::State,
            restored: vec![],
            skipped: vec![SkippedTargetGroup {
                target_group_arn: ARN.to_string(),
                reason: SkipReason::AlreadyRestored,
            }],
        })
    );
}

#[tokio::test]
async fn restore_from_tags_when_the_state_has_no_tuning() {
    let log: Log = Default::default();
    let rules = [
        tg_by_name(),
        tg_by_arn(ARN, FAST_HC),
        dereg(ARN, "30"),
        tags(ARN, Some(SEED_TAG)),
        modify_hc(ARN, SEED_HC, &log),
        modify_dereg(ARN, "300", &log),
        remove_tag(ARN, &log),
    ];
    let dg = deployment_group(&["shop-tg"]);
    let deps = deps(&[&dg], &rules.iter().collect::<Vec<_>>(), Config::default());
    let response = run(restore_request_without_state(), &deps).await.unwrap();
    print_json("restore-from-tags response", &response);
    assert_eq!(
        response,
        Response::Restored(RestoreReport {
            source: RestoreSource::Tags,
            restored: vec![ARN.to_string()],
            skipped: vec![],
        })
    );
    assert_eq!(
        calls(&log),
        [
            "ModifyTargetGroup",
            "ModifyTargetGroupAttributes",
            "RemoveTags"
        ]
    );
}

#[tokio::test]
async fn restore_with_nothing_tuned_changes_nothing() {
    // No tag on the target group and no state: no write rule at all.
    let rules = [tg_by_name(), tags(ARN, None)];
    let dg = deployment_group(&["shop-tg"]);
    let deps = deps(&[&dg], &rules.iter().collect::<Vec<_>>(), Config::default());
    let response = run(restore_request_without_state(), &deps).await.unwrap();
    print_json("restore-nothing-tuned response", &response);
    assert_eq!(
        response,
        Response::Restored(RestoreReport {
            source: RestoreSource::Tags,
            restored: vec![],
            skipped: vec![SkippedTargetGroup {
                target_group_arn: ARN.to_string(),
                reason: SkipReason::NotTuned,
            }],
        })
    );
}

#[tokio::test]
async fn restore_without_target_groups_is_safe() {
    let dg = deployment_group(&[]);
    let deps = deps(&[&dg], &[], Config::default());
    let response = run(restore_request_without_state(), &deps).await.unwrap();
    assert_eq!(
        response,
        Response::Restored(RestoreReport {
            source: RestoreSource::Tags,
            restored: vec![],
            skipped: vec![],
        })
    );
}

#[tokio::test]
async fn restore_skips_a_target_group_that_no_longer_exists() {
    let gone = mock!(Elbv2Client::describe_target_groups).then_error(|| {
        DescribeTargetGroupsError::TargetGroupNotFoundException(
            TargetGroupNotFoundException::builder()
                .message("One or more target groups not found")
                .build(),
        )
    });
    let deps = deps(&[], &[&gone], Config::default());
    let response = run(restore_request(), &deps).await.unwrap();
    assert_eq!(
        response,
        Response::Restored(RestoreReport {
            source: RestoreSource::State,
            restored: vec![],
            skipped: vec![SkippedTargetGroup {
                target_group_arn: ARN.to_string(),
                reason: SkipReason::TargetGroupGone,
            }],
        })
    );
}

#[tokio::test]
async fn restore_from_tags_deployment_group_not_found_is_an_error() {
    let dg = mock!(CodeDeployClient::get_deployment_group).then_error(|| {
        GetDeploymentGroupError::DeploymentGroupDoesNotExistException(
            aws_sdk_codedeploy::types::error::DeploymentGroupDoesNotExistException::builder()
                .build(),
        )
    });
    let deps = deps(&[&dg], &[], Config::default());
    let err = run(restore_request_without_state(), &deps)
        .await
        .unwrap_err();
    assert_eq!(error_type(err), "DeploymentGroupNotFound");
}

#[tokio::test]
async fn restore_from_tags_corrupt_tag_is_an_error_and_nothing_is_written() {
    let rules = [tg_by_name(), tags(ARN, Some("v1 interval=030"))];
    let dg = deployment_group(&["shop-tg"]);
    let deps = deps(&[&dg], &rules.iter().collect::<Vec<_>>(), Config::default());
    let err = run(restore_request_without_state(), &deps)
        .await
        .unwrap_err();
    assert_eq!(error_type(err), "CorruptSnapshotTag");
}

#[tokio::test]
async fn restore_attempts_every_target_group_then_reports_the_failure() {
    // Two tuned target groups; the first refuses ModifyTargetGroup, the second
    // is restored anyway, then the error is returned (failure path takes over).
    let log: Log = Default::default();
    let mut request = restore_request();
    let tuning = request.pipeline.tuning.as_mut().unwrap();
    tuning.snapshots.push(seed_snapshot(ARN_2));

    let refuse = mock!(Elbv2Client::modify_target_group)
        .match_requests(|r| r.target_group_arn() == Some(ARN))
        .then_error(|| {
            ModifyTargetGroupError::generic(
                aws_sdk_elasticloadbalancingv2::error::ErrorMetadata::builder()
                    .code("Throttling")
                    .message("Rate exceeded")
                    .build(),
            )
        });
    let rules = [
        tg_by_arn(ARN, FAST_HC),
        dereg(ARN, "30"),
        tags(ARN, Some(SEED_TAG)),
        refuse,
        tg_by_arn(ARN_2, FAST_HC),
        dereg(ARN_2, "30"),
        tags(ARN_2, Some(SEED_TAG)),
        modify_hc(ARN_2, SEED_HC, &log),
        modify_dereg(ARN_2, "300", &log),
        remove_tag(ARN_2, &log),
    ];
    let deps = deps(&[], &rules.iter().collect::<Vec<_>>(), Config::default());
    let err = run(request, &deps).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("Throttling") && msg.contains(ARN), "{msg}");
    // Throttling that outlasted the SDK's retries: transient (issue 9, defect 2).
    assert_eq!(error_type(err), "AwsTransient");
    assert_eq!(
        calls(&log),
        [
            "ModifyTargetGroup",
            "ModifyTargetGroupAttributes",
            "RemoveTags"
        ]
    );
}

// ---- transient errors (issue 9, defect 2) ---------------------------------------

/// An ELBv2 (awsQuery) error answer with this HTTP status and code.
fn elb_http_error(status: u16, code: &'static str) -> HttpResponse {
    HttpResponse::new(
        status.try_into().expect("status"),
        SdkBody::from(format!(
            "<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code><Message>{code} from the test</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
        )),
    )
}

#[tokio::test]
async fn tune_throttled_or_5xx_is_transient_and_writes_nothing() {
    for (status, code) in [(400, "Throttling"), (503, "ServiceUnavailable")] {
        let describe = mock!(Elbv2Client::describe_target_groups)
            .then_http_response(move || elb_http_error(status, code));
        let dg = deployment_group(&["shop-tg"]);
        let deps = deps(&[&dg], &[&describe], Config::default());
        let err = run(tune_request(), &deps).await.unwrap_err();
        let msg = err.to_string();
        assert_eq!(error_type(err), "AwsTransient", "{code}: {msg}");
        assert!(msg.contains("DescribeTargetGroups on shop-tg"), "{msg}");
    }
    // CodeDeploy throttling GetDeploymentGroup: transient too.
    let dg = mock!(CodeDeployClient::get_deployment_group).then_http_response(|| {
        aws_sdk_codedeploy::config::http::HttpResponse::new(
            400.try_into().expect("status"),
            SdkBody::from(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#),
        )
    });
    let deps = deps(&[&dg], &[], Config::default());
    let err = run(tune_request(), &deps).await.unwrap_err();
    assert_eq!(error_type(err), "AwsTransient");
}

#[tokio::test]
async fn restore_5xx_is_transient_and_a_permanent_error_is_aws_error() {
    for (status, code, expected) in [
        (503, "ServiceUnavailable", "AwsTransient"),
        (500, "InternalFailure", "AwsTransient"),
        (403, "AccessDenied", "AwsError"),
    ] {
        let refuse = mock!(Elbv2Client::modify_target_group)
            .then_http_response(move || elb_http_error(status, code));
        let rules = [
            tg_by_arn(ARN, FAST_HC),
            dereg(ARN, "30"),
            tags(ARN, Some(SEED_TAG)),
            refuse,
        ];
        let deps = deps(&[], &rules.iter().collect::<Vec<_>>(), Config::default());
        let err = run(restore_request(), &deps).await.unwrap_err();
        let msg = err.to_string();
        assert_eq!(error_type(err), expected, "{code}: {msg}");
        assert!(
            msg.contains(&format!("ModifyTargetGroup on {ARN}")),
            "{msg}"
        );
    }
}
