//! Handler tests: aws-smithy-mocks on the real SDK clients. A client built
//! with no rule for an operation panics when the handler calls it, so
//! "nothing else was called" is checked by construction.

use super::*;
use aws_sdk_autoscaling::operation::delete_auto_scaling_group::{
    DeleteAutoScalingGroupError, DeleteAutoScalingGroupOutput,
};
use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
use aws_sdk_autoscaling::types::error::ResourceInUseFault;
use aws_sdk_codedeploy::operation::batch_get_deployment_targets::BatchGetDeploymentTargetsOutput;
use aws_sdk_codedeploy::operation::get_deployment::{GetDeploymentError, GetDeploymentOutput};
use aws_sdk_codedeploy::operation::get_deployment_group::{
    GetDeploymentGroupError, GetDeploymentGroupOutput,
};
use aws_sdk_codedeploy::operation::list_deployment_targets::ListDeploymentTargetsOutput;
use aws_sdk_codedeploy::operation::stop_deployment::{StopDeploymentError, StopDeploymentOutput};
use aws_sdk_codedeploy::operation::update_deployment_group::UpdateDeploymentGroupOutput;
use aws_sdk_codedeploy::types::error::{
    DeploymentAlreadyCompletedException, DeploymentDoesNotExistException,
};
use aws_sdk_codedeploy::types::{
    AutoScalingGroup, DeploymentGroupInfo, DeploymentInfo, DeploymentStatus as SdkStatus,
    DeploymentTarget, DeploymentTargetType, Diagnostics, ErrorCode, ErrorInformation,
    InstanceTarget, LifecycleErrorCode, LifecycleEvent, LifecycleEventStatus as Ev,
    LoadBalancerInfo, RollbackInfo, StopStatus, TargetGroupInfo, TargetInstances, TargetLabel,
    TargetStatus,
};
use aws_sdk_codepipeline::operation::put_job_failure_result::{
    PutJobFailureResultError, PutJobFailureResultOutput,
};
use aws_sdk_codepipeline::types::error::{InvalidJobStateException, JobNotFoundException};
use aws_sdk_elasticloadbalancingv2::operation::describe_tags::{
    DescribeTagsError, DescribeTagsOutput,
};
use aws_sdk_elasticloadbalancingv2::operation::describe_target_group_attributes::DescribeTargetGroupAttributesOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::{
    DescribeTargetGroupsError, DescribeTargetGroupsOutput,
};
use aws_sdk_elasticloadbalancingv2::operation::modify_target_group::ModifyTargetGroupOutput;
use aws_sdk_elasticloadbalancingv2::operation::modify_target_group_attributes::ModifyTargetGroupAttributesOutput;
use aws_sdk_elasticloadbalancingv2::operation::remove_tags::RemoveTagsOutput;
use aws_sdk_elasticloadbalancingv2::types::{
    Tag, TagDescription, TargetGroup, TargetGroupAttribute,
};
use aws_sdk_s3::error::ErrorMetadata;
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use aws_sdk_s3::operation::put_object::{PutObjectError, PutObjectOutput};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::error::NoSuchKey;
use aws_sdk_sns::operation::publish::{PublishError, PublishOutput};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use greenlight_core::model::{
    HealthCheckSettings, PipelineState, Source, TargetGroupSnapshot, TaskError,
};
use greenlight_core::runbook::{FailureKind, RestoreState, LIFECYCLE_ORDER};
use greenlight_core::tuning::{encode_snapshot_tag, SNAPSHOT_TAG_KEY};
use greenlight_core::watch::deployment_description;
use std::sync::{Arc, Mutex};

const TASK_FAILURE: &str = include_str!("../../../events/task-handle-failure.json");
const EVENT_FAILURE: &str = include_str!("../../../events/codedeploy-state-change-failure.json");
const EVENT_SUCCESS: &str = include_str!("../../../events/codedeploy-state-change-success.json");

const NOW: EpochMillis = 1_714_565_200_000;
const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:greenlight-failures";
const BUCKET: &str = "greenlight-reports-111122223333";
const EXEC: &str = "shop-3f9c2a7d1e8b4c60a2d5e7f1b9c3d4e5";
const DEP: &str = "d-7Q2KJ3X1A";
const OUTSIDE_DEP: &str = "d-4HN8TBZ2C";
const APP: &str = "shop";
const GROUP: &str = "shop-bluegreen";
const BLUE_ASG: &str = "shop-blue-asg";
const GREEN_ASG: &str = "CodeDeploy_shop-bluegreen_d-7Q2KJ3X1A";
const OUTSIDE_GREEN_ASG: &str = "CodeDeploy_shop-bluegreen_d-4HN8TBZ2C";
const TG_ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/shop-tg/73e2d6bc24d8a067";
const BAD_GREEN: &str = "i-0c1d2e3f4a5b6c7d8";
const GOOD_GREEN: &str = "i-0a1b2c3d4e5f60718";
const BLUE_1: &str = "i-0b1b2b3b4b5b6b7b8";
const STATE_MACHINE: &str =
    "arn:aws:states:us-east-1:111122223333:stateMachine:greenlight-pipeline";
/// The fixture deployment's `createdAtMs` (events/task-handle-failure.json).
const DEPLOYMENT_CREATED_MS: EpochMillis = 1_714_564_810_000;
const EXECUTION_END: &str = include_str!("../../../events/sfn-execution-status-change.json");

type Log<T> = Arc<Mutex<Vec<T>>>;

fn log<T>() -> Log<T> {
    Arc::new(Mutex::new(Vec::new()))
}

fn entries<T: Clone>(l: &Log<T>) -> Vec<T> {
    l.lock().unwrap().clone()
}

/// One rule list per client; `deps()` builds the mocked clients.
#[derive(Default)]
struct Mocks {
    codedeploy: Vec<Rule>,
    autoscaling: Vec<Rule>,
    elbv2: Vec<Rule>,
    sns: Vec<Rule>,
    s3: Vec<Rule>,
    codepipeline: Vec<Rule>,
    sfn: Vec<Rule>,
}

impl Mocks {
    fn new() -> Self {
        Self::default()
    }

    /// DescribeAutoScalingGroups answers the asked group, created after the
    /// deployment (CodeDeploy's copy). Tests that need another answer push
    /// their own rule (rules are tried in order; this one comes last).
    fn describe_asg_default() -> [Rule; 3] {
        [
            describe_asg_rule(GREEN_ASG, DEPLOYMENT_CREATED_MS + 60_000),
            describe_asg_rule(OUTSIDE_GREEN_ASG, DEPLOYMENT_CREATED_MS + 60_000),
            // No Auto Scaling group carries a scaling hold unless a test says so.
            mock!(aws_sdk_autoscaling::Client::describe_tags).then_output(|| {
                aws_sdk_autoscaling::operation::describe_tags::DescribeTagsOutput::builder().build()
            }),
        ]
    }

    fn deps(&self) -> Deps {
        let defaults = Self::describe_asg_default();
        Deps {
            codedeploy: mock_client!(
                aws_sdk_codedeploy,
                RuleMode::MatchAny,
                self.codedeploy.iter()
            ),
            autoscaling: mock_client!(
                aws_sdk_autoscaling,
                RuleMode::MatchAny,
                self.autoscaling.iter().chain(defaults.iter())
            ),
            elbv2: mock_client!(
                aws_sdk_elasticloadbalancingv2,
                RuleMode::MatchAny,
                self.elbv2.iter()
            ),
            sns: mock_client!(aws_sdk_sns, RuleMode::MatchAny, self.sns.iter()),
            s3: mock_client!(aws_sdk_s3, RuleMode::MatchAny, self.s3.iter()),
            codepipeline: mock_client!(
                aws_sdk_codepipeline,
                RuleMode::MatchAny,
                self.codepipeline.iter()
            ),
            sfn: mock_client!(aws_sdk_sfn, RuleMode::MatchAny, self.sfn.iter()),
            config: Config {
                topic_arn: TOPIC.to_string(),
                report_bucket: BUCKET.to_string(),
                report_prefix: DEFAULT_REPORT_PREFIX.to_string(),
                state_machine_arn: Some(STATE_MACHINE.to_string()),
                rollback_wait_seconds: 0,
            },
        }
    }
}

// ---- requests ------------------------------------------------------------------

fn task_request() -> TaskRequest<Action> {
    match serde_json::from_str::<Request>(TASK_FAILURE).unwrap() {
        Request::Task(t) => *t,
        other => panic!("task-handle-failure.json parsed as {other:?}"),
    }
}

fn event_request(json: &str) -> CodeDeployEvent {
    match serde_json::from_str::<Request>(json).unwrap() {
        Request::CodeDeploy(e) => *e,
        other => panic!("event parsed as {other:?}"),
    }
}

/// The fixture's execution, but CodeDeploy failed it at Install (no validation).
fn install_failed_task() -> TaskRequest<Action> {
    let mut t = task_request();
    t.pipeline.validation = None;
    let status = t.pipeline.status.as_mut().unwrap();
    status.status = greenlight_core::model::DeploymentStatus::Failed;
    status.phase = greenlight_core::model::Phase::Installing;
    status.next = greenlight_core::model::NextStep::Failed;
    status.error = Some(greenlight_core::model::DeploymentErrorInfo {
        code: "HEALTH_CONSTRAINTS".into(),
        message:
            "The overall deployment failed because too many individual instances failed deployment"
                .into(),
    });
    t
}

/// The fixture's upload, stuck behind another deployment: no tuning, no deployment.
fn group_busy_task() -> TaskRequest<Action> {
    let mut t = task_request();
    let p: &mut PipelineState = &mut t.pipeline;
    // Admit's GroupBusy retries ran out: no admission, no tuning, no deployment.
    p.admission = None;
    p.tuning = None;
    p.deployment = None;
    p.status = None;
    p.validation = None;
    p.error = Some(TaskError {
        error: "GroupBusy".into(),
        cause: "{\"errorType\":\"GroupBusy\",\"errorMessage\":\"deployment group shop/shop-bluegreen has active deployment d-OTHER1\"}".into(),
    });
    t
}

async fn run(request: Request, deps: &Deps) -> Result<Response, Error> {
    handle(request, "req-1", NOW, None, deps).await
}

fn handled(r: Response) -> FailureReport {
    match r {
        Response::Handled(report) => report,
        other => panic!("expected Handled, got {other:?}"),
    }
}

fn action(report: &FailureReport, step: Step) -> ActionRecord {
    report
        .actions
        .iter()
        .find(|a| a.step == step)
        .cloned()
        .unwrap_or_else(|| panic!("no {step:?} in {:#?}", report.actions))
}

fn has_action(report: &FailureReport, step: Step) -> bool {
    report.actions.iter().any(|a| a.step == step)
}

// ---- CodeDeploy ------------------------------------------------------------------

fn info(
    id: &str,
    status: SdkStatus,
    description: &str,
    error: Option<(ErrorCode, &str)>,
) -> DeploymentInfo {
    let mut b = DeploymentInfo::builder()
        .deployment_id(id)
        .application_name(APP)
        .deployment_group_name(GROUP)
        .status(status)
        .description(description)
        .target_instances(
            TargetInstances::builder()
                .auto_scaling_groups(BLUE_ASG)
                .build(),
        )
        .instance_termination_wait_time_started(false)
        .create_time(aws_sdk_codedeploy::primitives::DateTime::from_millis(
            DEPLOYMENT_CREATED_MS,
        ))
        .rollback_info(
            RollbackInfo::builder()
                .rollback_deployment_id("d-RB0000001")
                .build(),
        );
    if let Some((code, message)) = error {
        b = b.error_information(
            ErrorInformation::builder()
                .code(code)
                .message(message)
                .build(),
        );
    }
    b.build()
}

fn ev(name: &str, status: Ev) -> LifecycleEvent {
    LifecycleEvent::builder()
        .lifecycle_event_name(name)
        .status(status)
        .build()
}

fn failed_ev(name: &str) -> LifecycleEvent {
    LifecycleEvent::builder()
        .lifecycle_event_name(name)
        .status(Ev::Failed)
        .diagnostics(
            Diagnostics::builder()
                .error_code(LifecycleErrorCode::ScriptFailed)
                .script_name("scripts/install.sh")
                .message("Script at specified location: scripts/install.sh run as user root failed with exit code 1")
                .log_tail("[stderr]cp: cannot stat 'build/app.jar': No such file or directory")
                .build(),
        )
        .build()
}

/// Green lifecycle: succeeded until `fail_at` (failed, rest skipped) or until
/// `wait_at` (that one and the rest pending).
fn green_events(fail_at: Option<&str>, wait_at: Option<&str>) -> Vec<LifecycleEvent> {
    let mut out = Vec::new();
    let mut after = None;
    for name in &LIFECYCLE_ORDER[..10] {
        if let Some(s) = &after {
            out.push(ev(name, Ev::from(s as &str)));
        } else if Some(*name) == fail_at {
            out.push(failed_ev(name));
            after = Some("Skipped".to_string());
        } else if Some(*name) == wait_at {
            out.push(ev(name, Ev::Pending));
            after = Some("Pending".to_string());
        } else {
            out.push(ev(name, Ev::Succeeded));
        }
    }
    out
}

fn blue_events(statuses: [Ev; 3]) -> Vec<LifecycleEvent> {
    ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
        .iter()
        .zip(statuses)
        .map(|(n, s)| {
            if s == Ev::Failed {
                failed_ev(n)
            } else {
                ev(n, s)
            }
        })
        .collect()
}

fn target(
    id: &str,
    label: TargetLabel,
    status: TargetStatus,
    events: Vec<LifecycleEvent>,
) -> DeploymentTarget {
    DeploymentTarget::builder()
        .deployment_target_type(DeploymentTargetType::InstanceTarget)
        .instance_target(
            InstanceTarget::builder()
                .target_id(id)
                .target_arn(format!("arn:aws:ec2:us-east-1:111122223333:instance/{id}"))
                .instance_label(label)
                .status(status)
                .set_lifecycle_events(Some(events))
                .build(),
        )
        .build()
}

/// GetDeployment + ListDeploymentTargets + BatchGetDeploymentTargets for one deployment.
fn deployment_rules(info: DeploymentInfo, targets: Vec<DeploymentTarget>) -> Vec<Rule> {
    let ids: Vec<String> = targets
        .iter()
        .filter_map(|t| t.instance_target().and_then(|i| i.target_id()))
        .map(str::to_string)
        .collect();
    let id = info.deployment_id().unwrap_or_default().to_string();
    let id2 = id.clone();
    let id3 = id.clone();
    vec![
        mock!(aws_sdk_codedeploy::Client::get_deployment)
            .match_requests(move |r| r.deployment_id() == Some(id.as_str()))
            .then_output(move || {
                GetDeploymentOutput::builder()
                    .deployment_info(info.clone())
                    .build()
            }),
        mock!(aws_sdk_codedeploy::Client::list_deployment_targets)
            .match_requests(move |r| r.deployment_id() == Some(id2.as_str()))
            .then_output(move || {
                ListDeploymentTargetsOutput::builder()
                    .set_target_ids(Some(ids.clone()))
                    .build()
            }),
        mock!(aws_sdk_codedeploy::Client::batch_get_deployment_targets)
            .match_requests(move |r| r.deployment_id() == Some(id3.as_str()))
            .then_output(move || {
                BatchGetDeploymentTargetsOutput::builder()
                    .set_deployment_targets(Some(targets.clone()))
                    .build()
            }),
        // CodeDeploy's rollback deployment (every `info` names d-RB0000001): ended.
        mock!(aws_sdk_codedeploy::Client::get_deployment)
            .match_requests(|r| r.deployment_id() == Some("d-RB0000001"))
            .then_output(|| {
                GetDeploymentOutput::builder()
                    .deployment_info(
                        DeploymentInfo::builder()
                            .deployment_id("d-RB0000001")
                            .status(SdkStatus::Succeeded)
                            .build(),
                    )
                    .build()
            }),
    ]
}

/// GetDeploymentGroup answering `asgs` and the shop-tg target group.
fn deployment_group_rule(asgs: &[&str]) -> Rule {
    let asgs: Vec<AutoScalingGroup> = asgs
        .iter()
        .map(|n| {
            AutoScalingGroup::builder()
                .name(*n)
                .hook("CodeDeploy-managed-automatic-launch-deployment-hook")
                .build()
        })
        .collect();
    mock!(aws_sdk_codedeploy::Client::get_deployment_group)
        .match_requests(|r| {
            r.application_name() == Some(APP) && r.deployment_group_name() == Some(GROUP)
        })
        .then_output(move || {
            GetDeploymentGroupOutput::builder()
                .deployment_group_info(
                    DeploymentGroupInfo::builder()
                        .application_name(APP)
                        .deployment_group_name(GROUP)
                        .set_auto_scaling_groups(Some(asgs.clone()))
                        .load_balancer_info(
                            LoadBalancerInfo::builder()
                                .target_group_info_list(
                                    TargetGroupInfo::builder().name("shop-tg").build(),
                                )
                                .build(),
                        )
                        .build(),
                )
                .build()
        })
}

fn update_group_rule(seen: Log<Vec<String>>) -> Rule {
    mock!(aws_sdk_codedeploy::Client::update_deployment_group)
        .match_requests(move |r| {
            assert_eq!(r.application_name(), Some(APP));
            assert_eq!(r.current_deployment_group_name(), Some(GROUP));
            seen.lock().unwrap().push(r.auto_scaling_groups().to_vec());
            true
        })
        .then_output(|| UpdateDeploymentGroupOutput::builder().build())
}

// ---- Auto Scaling ------------------------------------------------------------------

fn delete_asg_rule(seen: Log<(String, bool)>) -> Rule {
    mock!(aws_sdk_autoscaling::Client::delete_auto_scaling_group)
        .match_requests(move |r| {
            seen.lock().unwrap().push((
                r.auto_scaling_group_name().unwrap_or_default().to_string(),
                r.force_delete() == Some(true),
            ));
            true
        })
        .then_output(|| DeleteAutoScalingGroupOutput::builder().build())
}

/// DescribeAutoScalingGroups answering group `name`, created at `created_ms`.
fn describe_asg_rule(name: &'static str, created_ms: EpochMillis) -> Rule {
    mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups)
        .match_requests(move |r| r.auto_scaling_group_names() == [name.to_string()])
        .then_output(move || {
            DescribeAutoScalingGroupsOutput::builder()
                .auto_scaling_groups(
                    aws_sdk_autoscaling::types::AutoScalingGroup::builder()
                        .auto_scaling_group_name(name)
                        .created_time(aws_sdk_autoscaling::primitives::DateTime::from_millis(
                            created_ms,
                        ))
                        .build(),
                )
                .build()
        })
}

fn delete_asg_not_found_rule() -> Rule {
    mock!(aws_sdk_autoscaling::Client::delete_auto_scaling_group).then_error(|| {
        DeleteAutoScalingGroupError::generic(
            ErrorMetadata::builder()
                .code("ValidationError")
                .message("AutoScalingGroup name not found - AutoScalingGroup 'CodeDeploy_shop-bluegreen_d-4HN8TBZ2C' not found")
                .build(),
        )
    })
}

// ---- ELBv2 (the tuner's restore) -------------------------------------------------------

fn original() -> TargetGroupSnapshot {
    TargetGroupSnapshot {
        target_group_arn: TG_ARN.to_string(),
        health_check: HealthCheckSettings {
            interval_seconds: 30,
            timeout_seconds: 5,
            healthy_threshold: 10,
            unhealthy_threshold: 2,
        },
        deregistration_delay_seconds: 300,
    }
}

/// The target group as the tuner left it (fast profile + snapshot tag);
/// `restored` collects the health-check intervals written back.
fn elb_tuned_rules(restored: Log<i32>) -> Vec<Rule> {
    let tag = encode_snapshot_tag(&original());
    vec![
        mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_groups).then_output(|| {
            DescribeTargetGroupsOutput::builder()
                .target_groups(
                    TargetGroup::builder()
                        .target_group_arn(TG_ARN)
                        .target_group_name("shop-tg")
                        .port(8080)
                        .health_check_interval_seconds(5)
                        .health_check_timeout_seconds(2)
                        .healthy_threshold_count(2)
                        .unhealthy_threshold_count(2)
                        .build(),
                )
                .build()
        }),
        mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_group_attributes)
            .then_output(|| {
                DescribeTargetGroupAttributesOutput::builder()
                    .attributes(
                        TargetGroupAttribute::builder()
                            .key("deregistration_delay.timeout_seconds")
                            .value("30")
                            .build(),
                    )
                    .build()
            }),
        mock!(aws_sdk_elasticloadbalancingv2::Client::describe_tags).then_output(move || {
            DescribeTagsOutput::builder()
                .tag_descriptions(
                    TagDescription::builder()
                        .resource_arn(TG_ARN)
                        .tags(
                            Tag::builder()
                                .key(SNAPSHOT_TAG_KEY)
                                .value(tag.clone())
                                .build(),
                        )
                        .build(),
                )
                .build()
        }),
        mock!(aws_sdk_elasticloadbalancingv2::Client::modify_target_group)
            .match_requests(move |r| {
                assert_eq!(r.target_group_arn(), Some(TG_ARN));
                assert_eq!(r.health_check_timeout_seconds(), Some(5));
                assert_eq!(r.healthy_threshold_count(), Some(10));
                restored
                    .lock()
                    .unwrap()
                    .push(r.health_check_interval_seconds().unwrap_or_default());
                true
            })
            .then_output(|| ModifyTargetGroupOutput::builder().build()),
        mock!(aws_sdk_elasticloadbalancingv2::Client::modify_target_group_attributes)
            .match_requests(|r| {
                r.attributes().iter().any(|a| {
                    a.key() == Some("deregistration_delay.timeout_seconds")
                        && a.value() == Some("300")
                })
            })
            .then_output(|| ModifyTargetGroupAttributesOutput::builder().build()),
        mock!(aws_sdk_elasticloadbalancingv2::Client::remove_tags)
            .match_requests(|r| r.tag_keys() == [SNAPSHOT_TAG_KEY.to_string()])
            .then_output(|| RemoveTagsOutput::builder().build()),
    ]
}

// ---- SNS, S3, CodePipeline ------------------------------------------------------------------

fn publish_rule(seen: Log<(String, String)>) -> Rule {
    publish_rule_for("failed", seen)
}

/// A publish with the given `outcome` attribute (and the same in the body).
fn publish_rule_for(expected_outcome: &'static str, seen: Log<(String, String)>) -> Rule {
    mock!(aws_sdk_sns::Client::publish)
        .match_requests(move |r| {
            assert_eq!(r.topic_arn(), Some(TOPIC));
            // MessageStructure json: the human text is the `email` member,
            // the JSON body (`default`) repeats it under `text`.
            assert_eq!(r.message_structure(), Some("json"));
            let structured: serde_json::Value =
                serde_json::from_str(r.message().unwrap_or_default()).unwrap();
            let text = structured["email"].as_str().unwrap_or_default().to_string();
            let body: serde_json::Value =
                serde_json::from_str(structured["default"].as_str().unwrap_or_default()).unwrap();
            assert_eq!(body["text"].as_str(), Some(text.as_str()));
            assert_eq!(body["outcome"], expected_outcome);
            let outcome = r
                .message_attributes()
                .and_then(|a| a.get("outcome"))
                .and_then(|v| v.string_value());
            assert_eq!(outcome, Some(expected_outcome));
            seen.lock()
                .unwrap()
                .push((r.subject().unwrap_or_default().to_string(), text));
            true
        })
        .then_output(|| {
            PublishOutput::builder()
                .message_id("5a1b9c8d-0e7f-4a6b-9c3d-2e1f0a9b8c7d")
                .build()
        })
}

#[derive(Debug, Clone, PartialEq)]
enum Cond {
    None,
    IfNoneMatch(String),
    IfMatch(String),
}

#[derive(Debug, Clone)]
struct Put {
    key: String,
    cond: Cond,
    body: serde_json::Value,
}

fn put_of(r: &aws_sdk_s3::operation::put_object::PutObjectInput) -> Put {
    assert_eq!(r.bucket(), Some(BUCKET));
    let cond = match (r.if_none_match(), r.if_match()) {
        (Some(v), _) => Cond::IfNoneMatch(v.to_string()),
        (None, Some(v)) => Cond::IfMatch(v.to_string()),
        (None, None) => Cond::None,
    };
    let body = r
        .body()
        .bytes()
        .map(|b| serde_json::from_slice(b).unwrap())
        .unwrap_or(serde_json::Value::Null);
    Put {
        key: r.key().unwrap_or_default().to_string(),
        cond,
        body,
    }
}

/// Every PutObject succeeds (first delivery).
fn s3_fresh_rules(puts: Log<Put>) -> Vec<Rule> {
    vec![mock!(aws_sdk_s3::Client::put_object)
        .match_requests(move |r| {
            puts.lock().unwrap().push(put_of(r));
            true
        })
        .then_output(|| {
            PutObjectOutput::builder()
                .e_tag("\"9b2cf535f27731c974343645a3985328\"")
                .build()
        })]
}

fn precondition_failed() -> PutObjectError {
    PutObjectError::generic(
        ErrorMetadata::builder()
            .code("PreconditionFailed")
            .message("At least one of the pre-conditions you specified did not hold")
            .build(),
    )
}

/// The marker already exists with `existing` (ETag "e1"); later puts are
/// answered by `then` (conditional on If-Match "e1" = ok).
fn s3_existing_rules(existing: serde_json::Value, puts: Log<Put>) -> Vec<Rule> {
    let body = serde_json::to_vec(&existing).unwrap();
    vec![
        mock!(aws_sdk_s3::Client::put_object)
            .match_requests(move |r| {
                puts.lock().unwrap().push(put_of(r));
                true
            })
            .then_compute_response(|r| {
                if r.if_none_match() == Some("*") {
                    aws_smithy_mocks::MockResponse::Error(precondition_failed())
                } else {
                    aws_smithy_mocks::MockResponse::Output(
                        PutObjectOutput::builder().e_tag("\"e2\"").build(),
                    )
                }
            }),
        mock!(aws_sdk_s3::Client::get_object)
            .match_requests(|r| r.bucket() == Some(BUCKET))
            .then_output(move || {
                GetObjectOutput::builder()
                    .e_tag("\"e1\"")
                    .body(ByteStream::from(body.clone()))
                    .build()
            }),
    ]
}

fn job_rule(seen: Log<(String, String, String)>) -> Rule {
    mock!(aws_sdk_codepipeline::Client::put_job_failure_result)
        .match_requests(move |r| {
            let d = r.failure_details().unwrap();
            seen.lock().unwrap().push((
                r.job_id().unwrap_or_default().to_string(),
                d.r#type().as_str().to_string(),
                d.message().to_string(),
            ));
            true
        })
        .then_output(|| PutJobFailureResultOutput::builder().build())
}

// ---- the deployments of the scenarios -----------------------------------------------------

/// Scenario 2: the validator stopped the deployment at the Ready gate.
fn validation_stopped_deployment() -> Vec<Rule> {
    deployment_rules(
        info(
            DEP,
            SdkStatus::Stopped,
            &deployment_description(EXEC),
            Some((
                ErrorCode::ManualStop,
                "The deployment was stopped by the user (greenlight traffic-validator)",
            )),
        ),
        vec![
            target(
                GOOD_GREEN,
                TargetLabel::Green,
                TargetStatus::Ready,
                green_events(None, Some("BeforeAllowTraffic")),
            ),
            target(
                BAD_GREEN,
                TargetLabel::Green,
                TargetStatus::Ready,
                green_events(None, Some("BeforeAllowTraffic")),
            ),
            target(
                BLUE_1,
                TargetLabel::Blue,
                TargetStatus::Pending,
                blue_events([Ev::Pending, Ev::Pending, Ev::Pending]),
            ),
        ],
    )
}

/// Scenario 3: Install failed on a green instance.
fn install_failed_deployment(id: &str, description: &str) -> Vec<Rule> {
    deployment_rules(
        info(
            id,
            SdkStatus::Failed,
            description,
            Some((ErrorCode::HealthConstraints, "The overall deployment failed because too many individual instances failed deployment, too few healthy instances are available for deployment, or some instances in your deployment group are experiencing problems.")),
        ),
        vec![
            target(BAD_GREEN, TargetLabel::Green, TargetStatus::Failed, green_events(Some("Install"), None)),
            target(BLUE_1, TargetLabel::Blue, TargetStatus::Skipped, blue_events([Ev::Skipped, Ev::Skipped, Ev::Skipped])),
        ],
    )
}

/// BlockTraffic failed on blue: traffic had moved to green.
fn block_traffic_failed_deployment() -> Vec<Rule> {
    deployment_rules(
        info(
            DEP,
            SdkStatus::Failed,
            &deployment_description(EXEC),
            Some((
                ErrorCode::HealthConstraints,
                "too many individual instances failed",
            )),
        ),
        vec![
            target(
                GOOD_GREEN,
                TargetLabel::Green,
                TargetStatus::Succeeded,
                green_events(None, None),
            ),
            target(
                BLUE_1,
                TargetLabel::Blue,
                TargetStatus::Failed,
                blue_events([Ev::Succeeded, Ev::Failed, Ev::Skipped]),
            ),
        ],
    )
}

// =========================================================================================
// Pipeline path
// =========================================================================================

#[tokio::test]
async fn validation_failure_removes_green_restores_and_names_the_instance() {
    let deleted = log();
    let restored = log();
    let published = log();
    let puts = log();
    let mut m = Mocks::new();
    m.codedeploy = validation_stopped_deployment();
    m.codedeploy.push(deployment_group_rule(&[BLUE_ASG]));
    m.autoscaling.push(delete_asg_rule(deleted.clone()));
    m.elbv2 = elb_tuned_rules(restored.clone());
    m.sns.push(publish_rule(published.clone()));
    m.s3 = s3_fresh_rules(puts.clone());
    let deps = m.deps();

    let response = run(Request::Task(Box::new(task_request())), &deps)
        .await
        .unwrap();
    println!("{}", serde_json::to_string_pretty(&response).unwrap());
    let report = handled(response);

    assert_eq!(report.error, FailureKind::ValidationFailed);
    assert_eq!(report.deployment_id.as_deref(), Some(DEP));
    // Runbook: green ASG deleted (ForceDelete), group already on blue.
    assert_eq!(entries(&deleted), vec![(GREEN_ASG.to_string(), true)]);
    assert_eq!(action(&report, Step::DeleteGreenAsg).outcome, Outcome::Done);
    assert_eq!(
        action(&report, Step::PointGroupAtBlue).outcome,
        Outcome::AlreadyDone
    );
    // Load balancer: restored from the state's snapshot.
    assert_eq!(entries(&restored), vec![30]);
    assert_eq!(report.load_balancer.state, RestoreState::Restored);
    // One notification naming the instance and what it answered.
    let published = entries(&published);
    assert_eq!(published.len(), 1);
    let (subject, message) = &published[0];
    println!("SNS subject: {subject}\n{message}");
    assert_eq!(
        subject,
        "greenlight ValidationFailed: shop/shop-bluegreen d-7Q2KJ3X1A"
    );
    assert!(message.contains(&format!("Failing instance {BAD_GREEN} at 10.0.1.17:8080 answered HTTP 503, body \"db connection refused\"")), "{message}");
    assert!(!message.contains(GOOD_GREEN), "{message}");
    assert!(message.contains("Runbook: green ASG CodeDeploy_shop-bluegreen_d-7Q2KJ3X1A deleted, group already points at blue ASG shop-blue-asg"), "{message}");
    assert!(message.contains("Load balancer: restored"), "{message}");
    assert!(message.contains("Revision: 20240501120000-42"));
    // Summary: one sentence, what/where/done/next.
    assert!(report.summary.starts_with("ValidationFailed: the green fleet of deployment d-7Q2KJ3X1A (shop/shop-bluegreen) failed validation at the Ready gate: i-0c1d2e3f4a5b6c7d8"), "{}", report.summary);
    assert!(report.summary.contains("load balancer settings restored"));
    assert!(report
        .summary
        .contains("next: fix what the failing instance answered"));
    // Marker: claimed with If-None-Match, then the completed report.
    let puts = entries(&puts);
    assert_eq!(puts.len(), 2);
    assert_eq!(puts[0].key, "greenlight-reports/d-7Q2KJ3X1A.json");
    assert_eq!(puts[0].cond, Cond::IfNoneMatch("*".into()));
    assert_eq!(puts[0].body["state"], "inProgress");
    assert_eq!(puts[0].body["claimedBy"], "req-1");
    assert_eq!(puts[1].key, puts[0].key);
    assert_eq!(puts[1].cond, Cond::None);
    assert_eq!(puts[1].body["state"], "completed");
    assert_eq!(puts[1].body["report"]["error"], "ValidationFailed");
    let stored: FailureReport = serde_json::from_value(puts[1].body["report"].clone()).unwrap();
    assert_eq!(stored, report);
    // No CodePipeline job for an S3 upload.
    assert!(!has_action(&report, Step::FailCodePipelineJob));
    let steps: Vec<Step> = report.actions.iter().map(|a| a.step).collect();
    assert_eq!(
        steps,
        vec![
            Step::ClaimReport,
            Step::DeleteGreenAsg,
            Step::PointGroupAtBlue,
            Step::RestoreLoadBalancer,
            Step::Notify,
            Step::WriteReport
        ]
    );
}

#[tokio::test]
async fn install_failure_before_traffic_deletes_green_and_points_group_at_blue() {
    let deleted = log();
    let updated = log();
    let restored = log();
    let published = log();
    let puts = log();
    let mut m = Mocks::new();
    m.codedeploy = install_failed_deployment(DEP, &deployment_description(EXEC));
    // The group was left pointing at the green copy: point it back.
    m.codedeploy.push(deployment_group_rule(&[GREEN_ASG]));
    m.codedeploy.push(update_group_rule(updated.clone()));
    m.autoscaling.push(delete_asg_rule(deleted.clone()));
    m.elbv2 = elb_tuned_rules(restored.clone());
    m.sns.push(publish_rule(published.clone()));
    m.s3 = s3_fresh_rules(puts.clone());
    let deps = m.deps();

    let report = handled(
        run(Request::Task(Box::new(install_failed_task())), &deps)
            .await
            .unwrap(),
    );
    println!("{}", serde_json::to_string_pretty(&report).unwrap());

    assert_eq!(report.error, FailureKind::DeploymentFailed);
    assert_eq!(entries(&deleted), vec![(GREEN_ASG.to_string(), true)]);
    assert_eq!(entries(&updated), vec![vec![BLUE_ASG.to_string()]]);
    let point = action(&report, Step::PointGroupAtBlue);
    assert_eq!(point.outcome, Outcome::Done);
    assert!(point
        .detail
        .contains("from [CodeDeploy_shop-bluegreen_d-7Q2KJ3X1A] to [shop-blue-asg]"));
    let diagnosis = report.diagnosis.as_ref().unwrap();
    assert_eq!(diagnosis.failed_event.as_deref(), Some("Install"));
    assert_eq!(diagnosis.failed_instances.len(), 1);
    assert_eq!(diagnosis.failed_instances[0].instance_id, BAD_GREEN);
    assert_eq!(
        diagnosis.failed_instances[0].script_name.as_deref(),
        Some("scripts/install.sh")
    );
    assert_eq!(
        diagnosis.rollback_deployment_id.as_deref(),
        Some("d-RB0000001")
    );
    assert!(!diagnosis.traffic_moved);
    assert_eq!(entries(&restored), vec![30]);
    let (_, message) = entries(&published).remove(0);
    assert!(message.contains("Failed lifecycle event: Install"));
    assert!(message.contains(&format!(
        "Failed instance {BAD_GREEN} (Green): Install ScriptFailed [script scripts/install.sh]"
    )));
    assert!(message.contains("log tail: [stderr]cp: cannot stat 'build/app.jar'"));
    assert!(message.contains("Rollback deployment: d-RB0000001"));
    assert!(message.contains("group pointed back at blue ASG shop-blue-asg"));
    assert!(report.summary.contains("green ASG CodeDeploy_shop-bluegreen_d-7Q2KJ3X1A deleted, group pointed back at blue ASG shop-blue-asg"));
}

#[tokio::test]
async fn failure_after_traffic_moved_is_explained_and_nothing_deleted() {
    let restored = log();
    let published = log();
    let mut m = Mocks::new();
    m.codedeploy = block_traffic_failed_deployment();
    // No Auto Scaling rule and no UpdateDeploymentGroup rule: calling them panics.
    m.elbv2 = elb_tuned_rules(restored.clone());
    m.sns.push(publish_rule(published.clone()));
    m.s3 = s3_fresh_rules(log());
    let deps = m.deps();

    let mut task = install_failed_task();
    task.pipeline.status.as_mut().unwrap().phase = greenlight_core::model::Phase::Rerouting;
    let report = handled(run(Request::Task(Box::new(task)), &deps).await.unwrap());

    assert_eq!(report.error, FailureKind::DeploymentFailed);
    match &report.runbook.decision {
        RunbookDecision::ExplainAfterTraffic {
            green_asg,
            next_step,
            reason,
            ..
        } => {
            assert_eq!(green_asg, GREEN_ASG);
            assert!(
                reason.contains("at BlockTraffic after traffic moved"),
                "{reason}"
            );
            assert!(next_step.contains("point deployment group shop-bluegreen at the green ASG CodeDeploy_shop-bluegreen_d-7Q2KJ3X1A"));
            assert!(next_step.contains("deploy again"));
        }
        other => panic!("{other:?}"),
    }
    assert!(!has_action(&report, Step::DeleteGreenAsg));
    assert!(!has_action(&report, Step::PointGroupAtBlue));
    assert!(report.diagnosis.as_ref().unwrap().traffic_moved);
    assert!(report.summary.contains(
        "traffic had already moved, so green ASG CodeDeploy_shop-bluegreen_d-7Q2KJ3X1A was kept"
    ));
    assert!(report
        .summary
        .contains("next: point deployment group shop-bluegreen at the green ASG"));
    assert_eq!(entries(&restored), vec![30]);
    let (_, message) = entries(&published).remove(0);
    assert!(message.contains("Failed instance i-0b1b2b3b4b5b6b7b8 (Blue): BlockTraffic"));
    assert!(message.contains("Next step: point deployment group shop-bluegreen at the green ASG"));
}

#[tokio::test]
async fn active_deployment_is_stopped_before_the_runbook() {
    let stopped = log();
    let deleted = log();
    let mut m = Mocks::new();
    // The validator crashed while the deployment waited in Ready.
    m.codedeploy = deployment_rules(
        info(DEP, SdkStatus::Ready, &deployment_description(EXEC), None),
        vec![target(
            BAD_GREEN,
            TargetLabel::Green,
            TargetStatus::Ready,
            green_events(None, Some("BeforeAllowTraffic")),
        )],
    );
    let s = stopped.clone();
    m.codedeploy.push(
        mock!(aws_sdk_codedeploy::Client::stop_deployment)
            .match_requests(move |r| {
                s.lock().unwrap().push((r.deployment_id().unwrap_or_default().to_string(), r.auto_rollback_enabled()));
                true
            })
            .then_output(|| {
                StopDeploymentOutput::builder()
                    .status(StopStatus::Pending)
                    .status_message("Stopping Pending. Stopping to schedule commands in the deployment instances")
                    .build()
            }),
    );
    m.codedeploy.push(deployment_group_rule(&[BLUE_ASG]));
    m.autoscaling.push(delete_asg_rule(deleted.clone()));
    m.elbv2 = elb_tuned_rules(log());
    m.sns.push(publish_rule(log()));
    m.s3 = s3_fresh_rules(log());
    let deps = m.deps();

    let mut task = task_request();
    task.pipeline.validation = None;
    task.pipeline.error = Some(TaskError {
        error: "Lambda.Unknown".into(),
        cause: "The cause could not be determined because Lambda did not return an error type."
            .into(),
    });
    let report = handled(run(Request::Task(Box::new(task)), &deps).await.unwrap());

    assert_eq!(report.error, FailureKind::TaskFailed);
    assert!(
        report.summary.contains("the Validate step"),
        "{}",
        report.summary
    );
    assert_eq!(entries(&stopped), vec![(DEP.to_string(), Some(true))]);
    assert_eq!(action(&report, Step::StopDeployment).outcome, Outcome::Done);
    // Re-read after the stop: still Ready (the stop and its rollback are
    // under way), so the green group is not deleted under CodeDeploy.
    assert!(entries(&deleted).is_empty());
    let kept = action(&report, Step::DeleteGreenAsg);
    assert_eq!(kept.outcome, Outcome::Skipped);
    assert!(
        kept.detail.contains("still Ready after StopDeployment"),
        "{}",
        kept.detail
    );
    let steps: Vec<Step> = report.actions.iter().map(|a| a.step).collect();
    assert_eq!(
        &steps[..3],
        &[
            Step::ClaimReport,
            Step::StopDeployment,
            Step::DeleteGreenAsg
        ]
    );
    assert!(report
        .summary
        .contains("the still-active deployment was stopped with rollback"));
}

#[tokio::test]
async fn stop_of_an_already_completed_deployment_is_fine() {
    let mut m = Mocks::new();
    m.codedeploy.push(
        mock!(aws_sdk_codedeploy::Client::stop_deployment).then_error(|| {
            StopDeploymentError::DeploymentAlreadyCompletedException(
                DeploymentAlreadyCompletedException::builder()
                    .message("already completed")
                    .build(),
            )
        }),
    );
    let deps = m.deps();
    let record = stop_deployment(&deps, DEP).await;
    assert_eq!(record.outcome, Outcome::AlreadyDone);
}

#[tokio::test]
async fn group_busy_without_deployment_notifies_and_undoes_nothing() {
    let published = log();
    let puts = log();
    let mut m = Mocks::new();
    // No CodeDeploy, Auto Scaling or ELB rule: nothing to read, undo or restore.
    m.sns.push(publish_rule(published.clone()));
    m.s3 = s3_fresh_rules(puts.clone());
    let deps = m.deps();

    let report = handled(
        run(Request::Task(Box::new(group_busy_task())), &deps)
            .await
            .unwrap(),
    );
    println!("{}", serde_json::to_string_pretty(&report).unwrap());

    assert_eq!(report.error, FailureKind::GroupBusyTimeout);
    assert_eq!(report.deployment_id, None);
    assert!(matches!(
        report.runbook.decision,
        RunbookDecision::NothingToUndo { .. }
    ));
    assert_eq!(report.load_balancer.state, RestoreState::NothingToRestore);
    assert!(report.load_balancer.detail.contains("never tuned"));
    assert!(report.summary.contains("d-OTHER1"));
    assert!(report
        .summary
        .contains("next: wait for the running deployment"));
    let puts = entries(&puts);
    assert_eq!(puts[0].key, format!("greenlight-reports/{EXEC}.json"));
    let (subject, message) = entries(&published).remove(0);
    assert_eq!(subject, "greenlight GroupBusyTimeout: shop/shop-bluegreen");
    assert!(message.contains("Deployment: (none created)"));
    assert!(message.contains("Load balancer: nothing to restore: this execution never tuned"));
}

#[tokio::test]
async fn codepipeline_job_is_failed_with_the_summary() {
    let jobs = log();
    let mut m = Mocks::new();
    m.sns.push(publish_rule(log()));
    m.s3 = s3_fresh_rules(log());
    m.codepipeline.push(job_rule(jobs.clone()));
    let deps = m.deps();

    let mut task = group_busy_task();
    task.pipeline.input.source = Source::CodePipeline {
        job_id: "11111111-abcd-1111-abcd-111111abcdef".into(),
    };
    let report = handled(run(Request::Task(Box::new(task)), &deps).await.unwrap());

    let jobs = entries(&jobs);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].0, "11111111-abcd-1111-abcd-111111abcdef");
    assert_eq!(jobs[0].1, "JobFailed");
    assert_eq!(jobs[0].2, report.summary);
    assert_eq!(
        action(&report, Step::FailCodePipelineJob).outcome,
        Outcome::Done
    );
    match &report.source {
        ReportSource::Pipeline {
            codepipeline_job_id,
            ..
        } => {
            assert_eq!(
                codepipeline_job_id.as_deref(),
                Some("11111111-abcd-1111-abcd-111111abcdef")
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn codepipeline_job_already_answered_is_fine_other_errors_are_recorded() {
    let cases: Vec<(PutJobFailureResultError, Outcome)> = vec![
        (
            PutJobFailureResultError::InvalidJobStateException(
                InvalidJobStateException::builder()
                    .message("Job is in state Succeeded")
                    .build(),
            ),
            Outcome::AlreadyDone,
        ),
        (
            PutJobFailureResultError::JobNotFoundException(
                JobNotFoundException::builder().message("gone").build(),
            ),
            Outcome::AlreadyDone,
        ),
        (
            PutJobFailureResultError::generic(
                ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            ),
            Outcome::Failed,
        ),
    ];
    for (error, want) in cases {
        let mut m = Mocks::new();
        m.codepipeline.push(
            mock!(aws_sdk_codepipeline::Client::put_job_failure_result).then_error(move || {
                match &error {
                    PutJobFailureResultError::InvalidJobStateException(e) => {
                        PutJobFailureResultError::InvalidJobStateException(e.clone())
                    }
                    PutJobFailureResultError::JobNotFoundException(e) => {
                        PutJobFailureResultError::JobNotFoundException(e.clone())
                    }
                    _ => PutJobFailureResultError::generic(
                        ErrorMetadata::builder()
                            .code("ThrottlingException")
                            .message("Rate exceeded")
                            .build(),
                    ),
                }
            }),
        );
        let deps = m.deps();
        let record = fail_job(&deps, "job-1", "summary").await;
        assert_eq!(record.outcome, want, "{record:?}");
        assert_eq!(record.step, Step::FailCodePipelineJob);
    }
}

#[tokio::test]
async fn a_failing_step_is_recorded_and_the_others_still_run() {
    let puts = log();
    let mut m = Mocks::new();
    m.codedeploy = install_failed_deployment(DEP, &deployment_description(EXEC));
    m.codedeploy.push(
        mock!(aws_sdk_codedeploy::Client::get_deployment_group).then_error(|| {
            GetDeploymentGroupError::generic(
                ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("not authorized to perform: codedeploy:GetDeploymentGroup")
                    .build(),
            )
        }),
    );
    m.autoscaling.push(mock!(aws_sdk_autoscaling::Client::delete_auto_scaling_group).then_error(|| {
        DeleteAutoScalingGroupError::ResourceInUseFault(
            ResourceInUseFault::builder()
                .message("You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.")
                .build(),
        )
    }));
    m.elbv2.push(
        mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_groups).then_error(|| {
            DescribeTargetGroupsError::generic(
                ErrorMetadata::builder()
                    .code("Throttling")
                    .message("Rate exceeded")
                    .build(),
            )
        }),
    );
    // The tuned target group carries no standby record (no bake armed one).
    m.elbv2.push(
        mock!(aws_sdk_elasticloadbalancingv2::Client::describe_tags)
            .then_output(|| DescribeTagsOutput::builder().build()),
    );
    m.sns
        .push(mock!(aws_sdk_sns::Client::publish).then_error(|| {
            PublishError::generic(
                ErrorMetadata::builder()
                    .code("AuthorizationError")
                    .message("not allowed")
                    .build(),
            )
        }));
    m.s3 = s3_fresh_rules(puts.clone());
    let deps = m.deps();

    let report = handled(
        run(Request::Task(Box::new(install_failed_task())), &deps)
            .await
            .unwrap(),
    );

    for step in [
        Step::DeleteGreenAsg,
        Step::PointGroupAtBlue,
        Step::RestoreLoadBalancer,
        Step::Notify,
    ] {
        assert_eq!(action(&report, step).outcome, Outcome::Failed, "{step:?}");
    }
    assert!(action(&report, Step::DeleteGreenAsg)
        .detail
        .contains("ResourceInUse"));
    assert!(action(&report, Step::PointGroupAtBlue)
        .detail
        .contains("AccessDeniedException"));
    assert_eq!(report.load_balancer.state, RestoreState::Failed);
    assert!(report
        .summary
        .contains("deleting green ASG CodeDeploy_shop-bluegreen_d-7Q2KJ3X1A FAILED"));
    assert!(report
        .summary
        .contains("load balancer settings NOT restored"));
    assert!(report
        .next_step
        .starts_with("first finish by hand what failed here"));
    // The report is still written.
    assert_eq!(action(&report, Step::WriteReport).outcome, Outcome::Done);
    assert_eq!(entries(&puts).len(), 2);
}

#[tokio::test]
async fn unreadable_deployment_changes_nothing_but_still_restores_and_notifies() {
    let restored = log();
    let mut m = Mocks::new();
    m.codedeploy.push(
        mock!(aws_sdk_codedeploy::Client::get_deployment).then_error(|| {
            GetDeploymentError::generic(
                ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        }),
    );
    m.elbv2 = elb_tuned_rules(restored.clone());
    m.sns.push(publish_rule(log()));
    m.s3 = s3_fresh_rules(log());
    let deps = m.deps();

    let report = handled(
        run(Request::Task(Box::new(install_failed_task())), &deps)
            .await
            .unwrap(),
    );
    assert_eq!(
        action(&report, Step::ReadDeployment).outcome,
        Outcome::Failed
    );
    assert!(matches!(
        report.runbook.decision,
        RunbookDecision::Undetermined { .. }
    ));
    assert!(!has_action(&report, Step::DeleteGreenAsg));
    assert_eq!(entries(&restored), vec![30]);
    assert!(report.summary.contains("nothing was changed"));
}

#[tokio::test]
async fn without_s3_the_failure_is_still_handled_and_says_so() {
    let published = log();
    let mut m = Mocks::new();
    m.sns.push(publish_rule(published.clone()));
    m.s3.push(mock!(aws_sdk_s3::Client::put_object).then_error(|| {
        PutObjectError::generic(
            ErrorMetadata::builder()
                .code("AccessDenied")
                .message("Access Denied")
                .build(),
        )
    }));
    let deps = m.deps();

    let report = handled(
        run(Request::Task(Box::new(group_busy_task())), &deps)
            .await
            .unwrap(),
    );
    let claim = action(&report, Step::ClaimReport);
    assert_eq!(claim.outcome, Outcome::Failed);
    assert!(claim.detail.contains("handled without dedupe"));
    assert!(claim.detail.contains("AccessDenied"), "{}", claim.detail);
    let write = action(&report, Step::WriteReport);
    assert_eq!(write.outcome, Outcome::Failed);
    assert!(write.detail.contains("AccessDenied"));
    assert_eq!(entries(&published).len(), 1);
    // A failed claim is not one of the steps to finish by hand.
    assert!(!report.next_step.starts_with("first finish"));
}

// ---- dedupe ---------------------------------------------------------------------------------

#[tokio::test]
async fn duplicate_delivery_does_nothing_twice() {
    // First delivery: the full run.
    let puts = log();
    let published = log();
    let deleted = log();
    let mut first = Mocks::new();
    first.codedeploy = validation_stopped_deployment();
    first.codedeploy.push(deployment_group_rule(&[BLUE_ASG]));
    first.autoscaling.push(delete_asg_rule(deleted.clone()));
    first.elbv2 = elb_tuned_rules(log());
    first.sns.push(publish_rule(published.clone()));
    first.s3 = s3_fresh_rules(puts.clone());
    let report = handled(
        run(Request::Task(Box::new(task_request())), &first.deps())
            .await
            .unwrap(),
    );
    let completed = entries(&puts).last().unwrap().body.clone();

    // Second delivery: the marker exists and is completed. No CodeDeploy,
    // Auto Scaling, ELB, SNS or CodePipeline rule: any call would panic.
    let second_puts = log();
    let mut second = Mocks::new();
    second.s3 = s3_existing_rules(completed, second_puts.clone());
    let again = run(Request::Task(Box::new(task_request())), &second.deps())
        .await
        .unwrap();
    match again {
        Response::Duplicate(r) => assert_eq!(r, report),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        entries(&second_puts).len(),
        1,
        "only the failed If-None-Match claim"
    );
    assert_eq!(entries(&published).len(), 1);
    assert_eq!(entries(&deleted).len(), 1);
}

#[tokio::test]
async fn a_failure_being_handled_right_now_is_not_handled_again() {
    let marker = serde_json::json!({"state": "inProgress", "claimedAtMs": NOW - 20_000, "claimedBy": "req-0"});

    // Pipeline path: the state machine still gets error and summary.
    let mut m = Mocks::new();
    m.s3 = s3_existing_rules(marker.clone(), log());
    let r = run(Request::Task(Box::new(task_request())), &m.deps())
        .await
        .unwrap();
    match r {
        Response::Duplicate(report) => {
            assert_eq!(report.error, FailureKind::ValidationFailed);
            assert!(report.summary.contains("another invocation is running the runbook: being handled by req-0 since 20 s ago"), "{}", report.summary);
            assert!(report.actions.is_empty());
        }
        other => panic!("{other:?}"),
    }

    // EventBridge path: ignored.
    let mut m = Mocks::new();
    m.codedeploy = install_failed_deployment(OUTSIDE_DEP, "hotfix deployed by hand");
    m.s3 = s3_existing_rules(marker, log());
    let r = run(
        Request::CodeDeploy(Box::new(event_request(EVENT_FAILURE))),
        &m.deps(),
    )
    .await
    .unwrap();
    match r {
        Response::Ignored {
            reason,
            deployment_id,
        } => {
            assert!(reason.contains("being handled by req-0"));
            assert_eq!(deployment_id.as_deref(), Some(OUTSIDE_DEP));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_stale_claim_is_taken_over_with_if_match() {
    let puts = log();
    let published = log();
    let marker = serde_json::json!({"state": "inProgress", "claimedAtMs": NOW - 10 * 60 * 1000, "claimedBy": "req-crashed"});
    let mut m = Mocks::new();
    m.sns.push(publish_rule(published.clone()));
    m.s3 = s3_existing_rules(marker, puts.clone());
    let report = handled(
        run(Request::Task(Box::new(group_busy_task())), &m.deps())
            .await
            .unwrap(),
    );

    let puts = entries(&puts);
    let conds: Vec<Cond> = puts.iter().map(|p| p.cond.clone()).collect();
    assert_eq!(
        conds,
        vec![
            Cond::IfNoneMatch("*".into()),
            Cond::IfMatch("\"e1\"".into()),
            Cond::None
        ]
    );
    let claim = action(&report, Step::ClaimReport);
    assert_eq!(claim.outcome, Outcome::Done);
    assert!(claim
        .detail
        .contains("taken over by req-1: the claim by req-crashed is 600 s old"));
    assert_eq!(entries(&published).len(), 1);
}

#[tokio::test]
async fn an_unreadable_marker_is_taken_over_and_a_lost_race_skips() {
    // Unreadable marker → take over (If-Match), but someone else won: skip.
    let mut m = Mocks::new();
    m.s3.push(mock!(aws_sdk_s3::Client::put_object).then_error(precondition_failed));
    m.s3.push(mock!(aws_sdk_s3::Client::get_object).then_output(|| {
        GetObjectOutput::builder()
            .e_tag("\"e1\"")
            .body(ByteStream::from_static(b"not json"))
            .build()
    }));
    let r = run(Request::Task(Box::new(group_busy_task())), &m.deps())
        .await
        .unwrap();
    match r {
        Response::Duplicate(report) => {
            assert!(
                report.summary.contains("another invocation took over"),
                "{}",
                report.summary
            )
        }
        other => panic!("{other:?}"),
    }

    // The marker vanished between the claim and the read → claim again.
    let puts = log();
    let mut m = Mocks::new();
    let p = puts.clone();
    m.s3.push(
        mock!(aws_sdk_s3::Client::put_object)
            .match_requests(move |r| {
                p.lock().unwrap().push(put_of(r));
                true
            })
            .sequence()
            .error(precondition_failed)
            .output(|| PutObjectOutput::builder().build())
            .repeatedly()
            .build(),
    );
    m.s3.push(mock!(aws_sdk_s3::Client::get_object).then_error(|| {
        GetObjectError::NoSuchKey(
            NoSuchKey::builder()
                .message("The specified key does not exist.")
                .build(),
        )
    }));
    m.sns.push(publish_rule(log()));
    let report = handled(
        run(Request::Task(Box::new(group_busy_task())), &m.deps())
            .await
            .unwrap(),
    );
    assert!(action(&report, Step::ClaimReport)
        .detail
        .contains("the earlier marker had vanished"));
    assert_eq!(entries(&puts).len(), 3);
}

// =========================================================================================
// EventBridge path
// =========================================================================================

#[tokio::test]
async fn outside_deployment_failure_is_diagnosed_cleaned_up_and_notified() {
    let restored = log();
    let published = log();
    let puts = log();
    let mut m = Mocks::new();
    m.codedeploy = install_failed_deployment(OUTSIDE_DEP, "hotfix deployed by hand");
    m.codedeploy.push(deployment_group_rule(&[BLUE_ASG]));
    m.autoscaling.push(delete_asg_not_found_rule());
    m.elbv2 = elb_tuned_rules(restored.clone());
    m.sns.push(publish_rule(published.clone()));
    m.s3 = s3_fresh_rules(puts.clone());
    let deps = m.deps();

    let response = run(
        Request::CodeDeploy(Box::new(event_request(EVENT_FAILURE))),
        &deps,
    )
    .await
    .unwrap();
    println!("{}", serde_json::to_string_pretty(&response).unwrap());
    let report = handled(response);

    assert_eq!(report.error, FailureKind::DeploymentFailed);
    assert_eq!(report.deployment_id.as_deref(), Some(OUTSIDE_DEP));
    match &report.source {
        ReportSource::Event { event_id, state } => {
            assert_eq!(
                event_id.as_deref(),
                Some("5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9")
            );
            assert_eq!(state, "FAILURE");
        }
        other => panic!("{other:?}"),
    }
    let delete = action(&report, Step::DeleteGreenAsg);
    assert_eq!(delete.target, OUTSIDE_GREEN_ASG);
    assert_eq!(delete.outcome, Outcome::AlreadyDone);
    assert_eq!(
        action(&report, Step::PointGroupAtBlue).outcome,
        Outcome::AlreadyDone
    );
    // Restored from the recorded tag (no state on this path).
    assert_eq!(entries(&restored), vec![30]);
    let restore = action(&report, Step::RestoreLoadBalancer);
    assert_eq!(restore.target, TG_ARN);
    assert_eq!(restore.outcome, Outcome::Done);
    let (subject, message) = entries(&published).remove(0);
    assert_eq!(
        subject,
        "greenlight DeploymentFailed: shop/shop-bluegreen d-4HN8TBZ2C"
    );
    assert!(
        message.contains("Started by: outside the greenlight pipeline (CodeDeploy event FAILURE)")
    );
    assert!(message.contains("CodeDeploy error: HEALTH_CONSTRAINTS"));
    assert!(message.contains(&format!("Failed instance {BAD_GREEN} (Green): Install")));
    assert_eq!(entries(&puts)[0].key, "greenlight-reports/d-4HN8TBZ2C.json");
}

#[tokio::test]
async fn stop_event_is_handled_too() {
    let mut m = Mocks::new();
    m.codedeploy = install_failed_deployment(OUTSIDE_DEP, "hotfix deployed by hand");
    m.codedeploy.push(deployment_group_rule(&[BLUE_ASG]));
    m.autoscaling.push(delete_asg_not_found_rule());
    m.elbv2 = elb_tuned_rules(log());
    m.sns.push(publish_rule(log()));
    m.s3 = s3_fresh_rules(log());
    let mut event = event_request(EVENT_FAILURE);
    event.detail.state = "STOP".into();
    let report = handled(
        run(Request::CodeDeploy(Box::new(event)), &m.deps())
            .await
            .unwrap(),
    );
    assert!(report.classification.cause.contains("(event STOP)"));
}

#[tokio::test]
async fn pipeline_owned_deployment_is_left_to_its_execution() {
    let mut m = Mocks::new();
    // Only the deployment read: no marker, no runbook, no notification.
    m.codedeploy = install_failed_deployment(OUTSIDE_DEP, &deployment_description("shop-0a1b2c3d"));
    let r = run(
        Request::CodeDeploy(Box::new(event_request(EVENT_FAILURE))),
        &m.deps(),
    )
    .await
    .unwrap();
    match r {
        Response::Ignored {
            reason,
            deployment_id,
        } => {
            assert!(
                reason.starts_with("owned by execution shop-0a1b2c3d"),
                "{reason}"
            );
            assert_eq!(deployment_id.as_deref(), Some(OUTSIDE_DEP));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn success_event_is_ignored_without_any_call() {
    let m = Mocks::new();
    let r = run(
        Request::CodeDeploy(Box::new(event_request(EVENT_SUCCESS))),
        &m.deps(),
    )
    .await
    .unwrap();
    println!("{}", serde_json::to_string_pretty(&r).unwrap());
    match r {
        Response::Ignored {
            reason,
            deployment_id,
        } => {
            assert!(reason.contains("\"SUCCESS\" is not a failure"), "{reason}");
            assert_eq!(deployment_id.as_deref(), Some(DEP));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn instance_state_change_events_are_ignored() {
    let m = Mocks::new();
    let mut event = event_request(EVENT_FAILURE);
    event.detail_type = Some("CodeDeploy Instance State-change Notification".into());
    let r = run(Request::CodeDeploy(Box::new(event)), &m.deps())
        .await
        .unwrap();
    assert!(matches!(r, Response::Ignored { .. }));
}

#[tokio::test]
async fn event_errors_are_specific() {
    // No deployment id.
    let m = Mocks::new();
    let mut event = event_request(EVENT_FAILURE);
    event.detail.deployment_id = None;
    let e = run(Request::CodeDeploy(Box::new(event)), &m.deps())
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "InvalidInput");
    assert!(e.to_string().contains("no detail.deploymentId"));

    // A deployment that does not exist: retrying will not help.
    let mut m = Mocks::new();
    m.codedeploy.push(
        mock!(aws_sdk_codedeploy::Client::get_deployment).then_error(|| {
            GetDeploymentError::DeploymentDoesNotExistException(
                DeploymentDoesNotExistException::builder()
                    .message("no such deployment")
                    .build(),
            )
        }),
    );
    let e = run(
        Request::CodeDeploy(Box::new(event_request(EVENT_FAILURE))),
        &m.deps(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "InvalidInput");
    assert!(e.to_string().contains("d-4HN8TBZ2C does not exist"));

    // CodeDeploy unavailable: AwsError, so the event is retried.
    let mut m = Mocks::new();
    m.codedeploy.push(
        mock!(aws_sdk_codedeploy::Client::get_deployment).then_error(|| {
            GetDeploymentError::generic(
                ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        }),
    );
    let e = run(
        Request::CodeDeploy(Box::new(event_request(EVENT_FAILURE))),
        &m.deps(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "AwsError");
    let d: Diagnostic = e.into();
    assert_eq!(d.error_type, "AwsError");
    assert!(d.error_message.contains("ThrottlingException"));
}

#[tokio::test]
async fn outside_event_duplicate_returns_the_stored_report() {
    let puts = log();
    let mut first = Mocks::new();
    first.codedeploy = install_failed_deployment(OUTSIDE_DEP, "hotfix deployed by hand");
    first.codedeploy.push(deployment_group_rule(&[BLUE_ASG]));
    first.autoscaling.push(delete_asg_not_found_rule());
    first.elbv2 = elb_tuned_rules(log());
    first.sns.push(publish_rule(log()));
    first.s3 = s3_fresh_rules(puts.clone());
    let report = handled(
        run(
            Request::CodeDeploy(Box::new(event_request(EVENT_FAILURE))),
            &first.deps(),
        )
        .await
        .unwrap(),
    );

    let mut second = Mocks::new();
    second.codedeploy = install_failed_deployment(OUTSIDE_DEP, "hotfix deployed by hand");
    second.s3 = s3_existing_rules(entries(&puts).last().unwrap().body.clone(), log());
    match run(
        Request::CodeDeploy(Box::new(event_request(EVENT_FAILURE))),
        &second.deps(),
    )
    .await
    .unwrap()
    {
        Response::Duplicate(r) => assert_eq!(r, report),
        other => panic!("{other:?}"),
    }
}

// =========================================================================================
// Input, output, configuration
// =========================================================================================

#[test]
fn every_events_file_parses_into_its_entry_point() {
    let t = task_request();
    assert_eq!(t.action, Action::Handle);
    assert_eq!(t.execution_name, EXEC);
    assert!(!t.pipeline.validation.as_ref().unwrap().passed);
    let f = event_request(EVENT_FAILURE);
    assert_eq!(f.source.as_deref(), Some("aws.codedeploy"));
    assert_eq!(
        f.detail_type.as_deref(),
        Some("CodeDeploy Deployment State-change Notification")
    );
    assert_eq!(f.detail.state, "FAILURE");
    assert_eq!(f.detail.deployment_id.as_deref(), Some(OUTSIDE_DEP));
    assert_eq!(f.detail.application.as_deref(), Some(APP));
    assert_eq!(f.detail.deployment_group.as_deref(), Some(GROUP));
    assert!(f.detail.instance_group_id.is_some());
    assert_eq!(f.detail.region.as_deref(), Some("us-east-1"));
    let s = event_request(EVENT_SUCCESS);
    assert_eq!(s.detail.state, "SUCCESS");
}

#[tokio::test]
async fn unrecognized_payloads_are_invalid_input_with_the_reason() {
    let m = Mocks::new();
    let deps = m.deps();
    for (json, words) in [
        (
            serde_json::json!({"hello": "world"}),
            "expected a state-machine task request",
        ),
        (
            serde_json::json!({"action": "explode", "executionName": "x", "pipeline": {}}),
            "state-machine task request does not parse",
        ),
        (
            serde_json::json!({"detail-type": "CodeDeploy Deployment State-change Notification", "detail": {}}),
            "does not parse as a CodeDeploy state-change event",
        ),
    ] {
        let request: Request = serde_json::from_value(json).unwrap();
        assert!(matches!(request, Request::Unrecognized(_)));
        let e = run(request, &deps).await.unwrap_err();
        assert_eq!(e.error_type(), "InvalidInput");
        assert!(e.to_string().contains(words), "{e}");
    }
    let mut t = task_request();
    t.execution_name = " ".into();
    let e = run(Request::Task(Box::new(t)), &deps).await.unwrap_err();
    assert!(e.to_string().contains("executionName is empty"));
    let mut t = task_request();
    t.pipeline.input.deployment_group.clear();
    let e = run(Request::Task(Box::new(t)), &deps).await.unwrap_err();
    assert!(e.to_string().contains("deploymentGroup must be set"));
}

#[test]
fn error_types_are_stable() {
    let d: Diagnostic = Error::InvalidInput("x".into()).into();
    assert_eq!(d.error_type, "InvalidInput");
    assert_eq!(d.error_message, "invalid input: x");
    let d: Diagnostic = Error::AwsError {
        operation: "reading the deployment",
        detail: "boom".into(),
    }
    .into();
    assert_eq!(d.error_type, "AwsError");
    assert_eq!(d.error_message, "reading the deployment failed: boom");
}

#[tokio::test]
async fn response_json_carries_outcome_error_and_summary() {
    let mut m = Mocks::new();
    m.sns.push(publish_rule(log()));
    m.s3 = s3_fresh_rules(log());
    let r = run(Request::Task(Box::new(group_busy_task())), &m.deps())
        .await
        .unwrap();
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["outcome"], "handled");
    assert_eq!(j["error"], "GroupBusyTimeout");
    assert!(j["summary"]
        .as_str()
        .unwrap()
        .starts_with("GroupBusyTimeout: "));
    for field in [
        "source",
        "application",
        "deploymentGroup",
        "classification",
        "runbook",
        "actions",
        "loadBalancer",
        "nextStep",
        "handledAtMs",
    ] {
        assert!(j.get(field).is_some(), "{field}");
    }
    let back: Response = serde_json::from_value(j).unwrap();
    assert_eq!(back, r);
    assert!(back.report().is_some());
    let ignored = Response::Ignored {
        reason: "r".into(),
        deployment_id: None,
    };
    assert_eq!(
        serde_json::to_value(&ignored).unwrap(),
        serde_json::json!({"outcome": "ignored", "reason": "r"})
    );
    assert!(ignored.report().is_none());
}

#[test]
fn config_from_env() {
    // The only test that touches these variables.
    std::env::remove_var("TOPIC_ARN");
    std::env::remove_var("REPORT_BUCKET");
    std::env::remove_var("REPORT_PREFIX");
    assert_eq!(
        Config::from_env().err(),
        Some(ConfigError::Missing { name: "TOPIC_ARN" })
    );
    std::env::set_var("TOPIC_ARN", TOPIC);
    assert_eq!(
        Config::from_env().err(),
        Some(ConfigError::Missing {
            name: "REPORT_BUCKET"
        })
    );
    std::env::set_var("REPORT_BUCKET", BUCKET);
    let c = Config::from_env().unwrap();
    assert_eq!(c.topic_arn, TOPIC);
    assert_eq!(c.report_bucket, BUCKET);
    assert_eq!(c.report_prefix, "greenlight-reports/");
    std::env::set_var("REPORT_PREFIX", "reports/");
    assert_eq!(Config::from_env().unwrap().report_prefix, "reports/");
}

#[tokio::test]
async fn describe_tags_failure_on_event_path_is_recorded() {
    let mut m = Mocks::new();
    m.codedeploy = install_failed_deployment(OUTSIDE_DEP, "by hand");
    m.codedeploy.push(deployment_group_rule(&[BLUE_ASG]));
    m.autoscaling.push(delete_asg_not_found_rule());
    m.elbv2.push(
        mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_groups).then_output(|| {
            DescribeTargetGroupsOutput::builder()
                .target_groups(
                    TargetGroup::builder()
                        .target_group_arn(TG_ARN)
                        .target_group_name("shop-tg")
                        .build(),
                )
                .build()
        }),
    );
    m.elbv2.push(
        mock!(aws_sdk_elasticloadbalancingv2::Client::describe_tags).then_error(|| {
            DescribeTagsError::generic(
                ErrorMetadata::builder()
                    .code("AccessDenied")
                    .message("no")
                    .build(),
            )
        }),
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
    let restore = action(&report, Step::RestoreLoadBalancer);
    assert_eq!(restore.outcome, Outcome::Failed);
    assert!(
        restore.detail.starts_with("AwsError: DescribeTags on "),
        "{}",
        restore.detail
    );
    assert_eq!(report.load_balancer.state, RestoreState::Failed);
}

// ---- issue 9: failure-path defects ---------------------------------------------

/// GetDeployment answering `first` for the first `reads` calls, then `then`
/// (the re-read after the stop).
fn deployment_rules_changing(
    reads: usize,
    first: DeploymentInfo,
    then: DeploymentInfo,
    targets: Vec<DeploymentTarget>,
) -> Vec<Rule> {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut rules = deployment_rules(first.clone(), targets);
    rules[0] = mock!(aws_sdk_codedeploy::Client::get_deployment).then_output(move || {
        let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let info = if n < reads {
            first.clone()
        } else {
            then.clone()
        };
        GetDeploymentOutput::builder().deployment_info(info).build()
    });
    rules
}

fn stop_rule(seen: Log<String>) -> Rule {
    mock!(aws_sdk_codedeploy::Client::stop_deployment)
        .match_requests(move |r| {
            seen.lock()
                .unwrap()
                .push(r.deployment_id().unwrap_or_default().to_string());
            true
        })
        .then_output(|| {
            StopDeploymentOutput::builder()
                .status(StopStatus::Succeeded)
                .build()
        })
}

fn ready_green() -> Vec<DeploymentTarget> {
    vec![target(
        BAD_GREEN,
        TargetLabel::Green,
        TargetStatus::Ready,
        green_events(None, Some("BeforeAllowTraffic")),
    )]
}

fn lambda_died_task() -> TaskRequest<Action> {
    let mut task = task_request();
    task.pipeline.validation = None;
    task.pipeline.error = Some(TaskError {
        error: "Lambda.Unknown".into(),
        cause: "The cause could not be determined because Lambda did not return an error type."
            .into(),
    });
    task
}

#[tokio::test]
async fn green_is_deleted_only_after_the_re_read_shows_the_stopped_deployment() {
    let stopped = log();
    let deleted = log();
    let mut m = Mocks::new();
    m.codedeploy = deployment_rules_changing(
        1,
        info(DEP, SdkStatus::Ready, &deployment_description(EXEC), None),
        info(DEP, SdkStatus::Stopped, &deployment_description(EXEC), None),
        ready_green(),
    );
    m.codedeploy.push(stop_rule(stopped.clone()));
    m.codedeploy.push(deployment_group_rule(&[GREEN_ASG]));
    m.codedeploy.push(update_group_rule(log()));
    m.autoscaling.push(delete_asg_rule(deleted.clone()));
    m.elbv2 = elb_tuned_rules(log());
    m.sns.push(publish_rule(log()));
    m.s3 = s3_fresh_rules(log());
    let deps = m.deps();
    let report = handled(
        run(Request::Task(Box::new(lambda_died_task())), &deps)
            .await
            .unwrap(),
    );
    assert_eq!(entries(&stopped), vec![DEP.to_string()]);
    assert_eq!(entries(&deleted), vec![(GREEN_ASG.to_string(), true)]);
    let steps: Vec<Step> = report.actions.iter().map(|a| a.step).collect();
    assert_eq!(
        &steps[..3],
        &[
            Step::ClaimReport,
            Step::StopDeployment,
            Step::DeleteGreenAsg
        ]
    );
}

#[tokio::test]
async fn a_group_older_than_the_deployment_is_never_deleted() {
    // Same name, but created before this deployment: not its copy. No delete
    // rule: the mock client panics if DeleteAutoScalingGroup is called.
    let mut m = Mocks::new();
    m.codedeploy = validation_stopped_deployment();
    m.codedeploy.push(deployment_group_rule(&[GREEN_ASG]));
    m.codedeploy.push(update_group_rule(log()));
    m.autoscaling.push(describe_asg_rule(
        GREEN_ASG,
        DEPLOYMENT_CREATED_MS - 86_400_000,
    ));
    m.elbv2 = elb_tuned_rules(log());
    m.sns.push(publish_rule(log()));
    m.s3 = s3_fresh_rules(log());
    let deps = m.deps();
    let report = handled(
        run(Request::Task(Box::new(task_request())), &deps)
            .await
            .unwrap(),
    );
    let kept = action(&report, Step::DeleteGreenAsg);
    assert_eq!(kept.outcome, Outcome::Skipped);
    assert!(
        kept.detail.contains("not this deployment's copy"),
        "{}",
        kept.detail
    );
}

#[tokio::test]
async fn a_green_fleet_that_received_traffic_is_never_force_deleted() {
    let mut m = Mocks::new();
    m.codedeploy = deployment_rules(
        info(
            DEP,
            SdkStatus::Failed,
            &deployment_description(EXEC),
            Some((ErrorCode::HealthConstraints, "failed")),
        ),
        vec![target(
            BAD_GREEN,
            TargetLabel::Green,
            TargetStatus::Failed,
            green_events(Some("AllowTraffic"), None),
        )],
    );
    m.codedeploy.push(deployment_group_rule(&[GREEN_ASG]));
    m.codedeploy.push(update_group_rule(log()));
    m.elbv2 = elb_tuned_rules(log());
    m.sns.push(publish_rule(log()));
    m.s3 = s3_fresh_rules(log());
    let deps = m.deps();
    let report = handled(
        run(Request::Task(Box::new(install_failed_task())), &deps)
            .await
            .unwrap(),
    );
    let kept = action(&report, Step::DeleteGreenAsg);
    assert_eq!(kept.outcome, Outcome::Skipped);
    assert!(
        kept.detail.contains("AllowTraffic had started"),
        "{}",
        kept.detail
    );
}

#[tokio::test]
async fn the_group_goes_back_to_the_recorded_blue_not_to_target_instances() {
    // targetInstances names the replacement (green) group, as AWS documents
    // it; the create-time record names blue.
    let updated = log();
    let mut m = Mocks::new();
    let mut i = info(
        DEP,
        SdkStatus::Failed,
        &deployment_description(EXEC),
        Some((ErrorCode::HealthConstraints, "failed")),
    );
    i.target_instances = Some(
        TargetInstances::builder()
            .auto_scaling_groups(GREEN_ASG)
            .build(),
    );
    m.codedeploy = deployment_rules(
        i,
        vec![target(
            BAD_GREEN,
            TargetLabel::Green,
            TargetStatus::Failed,
            green_events(Some("Install"), None),
        )],
    );
    m.codedeploy.push(deployment_group_rule(&[GREEN_ASG]));
    m.codedeploy.push(update_group_rule(updated.clone()));
    m.autoscaling.push(delete_asg_rule(log()));
    m.elbv2 = elb_tuned_rules(log());
    m.sns.push(publish_rule(log()));
    m.s3 = s3_fresh_rules(log());
    let deps = m.deps();
    handled(
        run(Request::Task(Box::new(install_failed_task())), &deps)
            .await
            .unwrap(),
    );
    assert_eq!(entries(&updated), vec![vec![BLUE_ASG.to_string()]]);
}

#[tokio::test]
async fn without_a_blue_record_a_group_on_green_is_left_for_the_operator() {
    // No UpdateDeploymentGroup rule: it must not be called.
    let mut m = Mocks::new();
    m.codedeploy = install_failed_deployment(DEP, &deployment_description(EXEC));
    m.codedeploy.push(deployment_group_rule(&[GREEN_ASG]));
    m.autoscaling.push(delete_asg_rule(log()));
    m.elbv2 = elb_tuned_rules(log());
    m.sns.push(publish_rule(log()));
    m.s3 = s3_fresh_rules(log());
    let deps = m.deps();
    let mut task = install_failed_task();
    task.pipeline
        .deployment
        .as_mut()
        .unwrap()
        .blue_auto_scaling_groups
        .clear();
    let report = handled(run(Request::Task(Box::new(task)), &deps).await.unwrap());
    let point = action(&report, Step::PointGroupAtBlue);
    assert_eq!(point.outcome, Outcome::Skipped);
    assert!(point.detail.contains("by hand"), "{}", point.detail);
}

fn list_deployments_rule(ids: &'static [&'static str]) -> Rule {
    mock!(aws_sdk_codedeploy::Client::list_deployments)
        .match_requests(|r| {
            r.application_name() == Some(APP)
                && r.deployment_group_name() == Some(GROUP)
                && r.create_time_range().and_then(|t| t.start()).is_some()
        })
        .then_output(move || {
            aws_sdk_codedeploy::operation::list_deployments::ListDeploymentsOutput::builder()
                .set_deployments(Some(ids.iter().map(|s| s.to_string()).collect()))
                .build()
        })
}

#[tokio::test]
async fn a_deployment_left_by_a_dead_create_task_is_found_and_stopped() {
    let stopped = log();
    let mut m = Mocks::new();
    // d-4HN8TBZ2C was started by hand; DEP names this execution.
    m.codedeploy = deployment_rules_changing(
        2,
        info(
            DEP,
            SdkStatus::InProgress,
            &deployment_description(EXEC),
            None,
        ),
        info(DEP, SdkStatus::Stopped, &deployment_description(EXEC), None),
        ready_green(),
    );
    m.codedeploy.insert(
        0,
        mock!(aws_sdk_codedeploy::Client::get_deployment)
            .match_requests(|r| r.deployment_id() == Some(OUTSIDE_DEP))
            .then_output(|| {
                GetDeploymentOutput::builder()
                    .deployment_info(info(OUTSIDE_DEP, SdkStatus::InProgress, "by hand", None))
                    .build()
            }),
    );
    m.codedeploy
        .push(list_deployments_rule(&[OUTSIDE_DEP, DEP]));
    m.codedeploy.push(stop_rule(stopped.clone()));
    m.codedeploy.push(deployment_group_rule(&[GREEN_ASG]));
    m.codedeploy.push(update_group_rule(log()));
    m.autoscaling.push(delete_asg_rule(log()));
    m.elbv2 = elb_tuned_rules(log());
    m.sns.push(publish_rule(log()));
    m.s3 = s3_fresh_rules(log());
    let deps = m.deps();
    let mut task = lambda_died_task();
    task.pipeline.deployment = None;
    task.pipeline.status = None;
    let report = handled(run(Request::Task(Box::new(task)), &deps).await.unwrap());
    assert_eq!(report.deployment_id.as_deref(), Some(DEP));
    assert_eq!(action(&report, Step::FindDeployment).outcome, Outcome::Done);
    assert_eq!(entries(&stopped), vec![DEP.to_string()]);
    assert!(report.runbook.stop_deployment);
}

#[tokio::test]
async fn transient_errors_never_stop_the_deployment() {
    // No StopDeployment, DeleteAutoScalingGroup, UpdateDeploymentGroup or
    // ELBv2 change rule: calling any of them panics. DescribeTags answers
    // no standby record (the path looks for one on the tuned target group).
    let published = log();
    let mut m = Mocks::new();
    m.elbv2.push(
        mock!(aws_sdk_elasticloadbalancingv2::Client::describe_tags)
            .then_output(|| DescribeTagsOutput::builder().build()),
    );
    m.codedeploy = deployment_rules(
        info(
            DEP,
            SdkStatus::InProgress,
            &deployment_description(EXEC),
            None,
        ),
        ready_green(),
    );
    m.sns.push(publish_rule(published.clone()));
    m.s3 = s3_fresh_rules(log());
    let deps = m.deps();
    let mut task = lambda_died_task();
    task.pipeline.error = Some(TaskError {
        error: greenlight_core::errors::AWS_TRANSIENT.into(),
        cause: "GetDeployment on d-7Q2KJ3X1A failed (ThrottlingException): Rate exceeded".into(),
    });
    let report = handled(run(Request::Task(Box::new(task)), &deps).await.unwrap());
    assert_eq!(report.error, FailureKind::LostSight);
    assert!(!report.runbook.stop_deployment);
    assert!(!has_action(&report, Step::StopDeployment));
    assert!(!has_action(&report, Step::DeleteGreenAsg));
    assert_eq!(report.load_balancer.state, RestoreState::NothingToRestore);
    let (_, message) = entries(&published).pop().unwrap();
    assert!(message.contains("LOST SIGHT"), "{message}");
    assert!(message.contains("still InProgress"), "{message}");
}

fn execution_event(error: Option<&str>) -> Request {
    let mut v: serde_json::Value = serde_json::from_str(EXECUTION_END).unwrap();
    v["detail"]["error"] = error.map(Into::into).unwrap_or(serde_json::Value::Null);
    serde_json::from_value(v).unwrap()
}

/// DescribeExecution of the fixture execution, ended `status`: its input is the pipeline's.
fn describe_execution_rule(status: aws_sdk_sfn::types::ExecutionStatus) -> Rule {
    let input = serde_json::to_string(&task_request().pipeline.input).unwrap();
    mock!(aws_sdk_sfn::Client::describe_execution)
        .match_requests(|r| r.execution_arn().is_some_and(|a| a.ends_with(EXEC)))
        .then_output(move || {
            aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput::builder()
                .execution_arn(format!(
                    "arn:aws:states:us-east-1:111122223333:execution:greenlight-pipeline:{EXEC}"
                ))
                .state_machine_arn(STATE_MACHINE)
                .status(status.clone())
                .start_date(aws_sdk_sfn::primitives::DateTime::from_millis(NOW))
                .input(input.clone())
                .build()
                .unwrap()
        })
}

/// An execution that ended `status` outside the failure path, its deployment
/// still Ready (Stopped once `stopped` saw the StopDeployment), with `elbv2`.
fn died_execution_mocks(
    status: aws_sdk_sfn::types::ExecutionStatus,
    stopped: Log<String>,
    elbv2: Vec<Rule>,
) -> Mocks {
    let mut m = Mocks::new();
    m.sfn.push(describe_execution_rule(status));
    m.codedeploy = deployment_rules_changing(
        2,
        info(DEP, SdkStatus::Ready, &deployment_description(EXEC), None),
        info(DEP, SdkStatus::Stopped, &deployment_description(EXEC), None),
        ready_green(),
    );
    m.codedeploy.push(list_deployments_rule(&[DEP]));
    m.codedeploy.push(stop_rule(stopped));
    m.codedeploy.push(deployment_group_rule(&[BLUE_ASG]));
    m.autoscaling.push(delete_asg_rule(log()));
    m.elbv2 = elbv2;
    m.sns.push(publish_rule(log()));
    m.s3 = s3_fresh_rules(log());
    m
}

#[tokio::test]
async fn an_execution_that_died_outside_the_failure_path_is_cleaned_up() {
    let stopped = log();
    let m = died_execution_mocks(
        aws_sdk_sfn::types::ExecutionStatus::Failed,
        stopped.clone(),
        elb_tuned_rules(log()),
    );
    let deps = m.deps();
    let report = handled(
        run(execution_event(Some("States.DataLimitExceeded")), &deps)
            .await
            .unwrap(),
    );
    assert_eq!(report.error, FailureKind::ExecutionEnded);
    assert!(
        report.summary.contains("States.DataLimitExceeded"),
        "{}",
        report.summary
    );
    assert_eq!(entries(&stopped), vec![DEP.to_string()]);
    assert!(matches!(report.source, ReportSource::Execution { .. }));
}

#[tokio::test]
async fn an_execution_that_went_through_handle_failure_is_ignored_without_any_call() {
    let deps = Mocks::new().deps();
    match run(execution_event(Some("DeploymentFailed")), &deps)
        .await
        .unwrap()
    {
        Response::Ignored { reason, .. } => assert!(reason.contains("HandleFailure"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

// ---- bake (issue 10) -----------------------------------------------------------

/// The fixture's execution, but the validator passed and the bake after the
/// reroute failed and stopped the deployment with rollback.
fn bake_failed_task() -> TaskRequest<Action> {
    let mut t = task_request();
    t.pipeline.validation = None;
    t.pipeline.error = None;
    t.pipeline.bake = Some(greenlight_core::bake::BakeReport {
        deployment_id: DEP.into(),
        verdict: greenlight_core::bake::BakeVerdict::Failed,
        started_at_ms: Some(NOW - 75_000),
        looked_at_ms: NOW - 15_000,
        looks: 9,
        bake_seconds: Some(300),
        wait_seconds: 0,
        evidence: vec![greenlight_core::bake::BakeEvidence::Metric {
            check: greenlight_core::bake::MetricCheck::Target5xxCount,
            period_start_ms: NOW - 60_000,
            value: 41.0,
            limit: 0.0,
        }],
        summary: "target 5xx answers 41 > limit 0 in the minute starting at 1714565140000 ms"
            .into(),
        saved_seconds: None,
        tuned: Vec::new(),
        standby: None,
        standby_note: None,
    });
    t
}

#[tokio::test]
async fn a_failed_bake_leaves_the_fleet_to_the_rollback_restores_and_notifies_the_evidence() {
    let restored = log();
    let published = log();
    let puts = log();
    let mut m = Mocks::new();
    let mut stopped = info(
        DEP,
        SdkStatus::Stopped,
        &deployment_description(EXEC),
        Some((
            ErrorCode::ManualStop,
            "The deployment was stopped by the user",
        )),
    );
    stopped.instance_termination_wait_time_started = true;
    m.codedeploy = deployment_rules(
        stopped,
        vec![
            target(
                GOOD_GREEN,
                TargetLabel::Green,
                TargetStatus::Succeeded,
                green_events(None, None),
            ),
            target(
                BLUE_1,
                TargetLabel::Blue,
                TargetStatus::Succeeded,
                blue_events([Ev::Succeeded, Ev::Succeeded, Ev::Succeeded]),
            ),
        ],
    );
    m.codedeploy.push(deployment_group_rule(&[GREEN_ASG]));
    m.elbv2 = elb_tuned_rules(restored.clone());
    m.sns.push(publish_rule(published.clone()));
    m.s3 = s3_fresh_rules(puts.clone());
    let deps = m.deps();

    let report = handled(
        run(Request::Task(Box::new(bake_failed_task())), &deps)
            .await
            .unwrap(),
    );
    assert_eq!(report.error, FailureKind::BakeFailed);
    assert!(
        report.summary.starts_with("BakeFailed: the green fleet of deployment d-7Q2KJ3X1A (shop/shop-bluegreen) failed its bake 60 s after the reroute and was rolled back to blue: target 5xx answers 41 > limit 0"),
        "{}",
        report.summary
    );
    // CodeDeploy's rollback owns the fleet: nothing deleted, the group not repointed.
    assert!(!has_action(&report, Step::DeleteGreenAsg));
    assert!(!has_action(&report, Step::PointGroupAtBlue));
    assert!(!has_action(&report, Step::StopDeployment));
    assert_eq!(entries(&restored), vec![30]);
    let published = entries(&published);
    assert_eq!(published.len(), 1);
    assert_eq!(
        published[0].0,
        "greenlight BakeFailed: shop/shop-bluegreen d-7Q2KJ3X1A"
    );
    assert!(
        published[0].1.contains("target 5xx answers 41 > limit 0"),
        "{}",
        published[0].1
    );
}

#[path = "tests_rerun.rs"]
mod rerun;

#[path = "tests_announce.rs"]
mod announce_path;

#[path = "tests_standby.rs"]
mod standby_path;

// ---- scaling held still ------------------------------------------------------------

/// The blue group held by this execution (a scale-out arrived: desired 2 ->
/// 3) and the user's own suspension of ScheduledActions.
fn held_blue_rules(resumed: Log<String>) -> Vec<Rule> {
    use aws_sdk_autoscaling::operation::delete_tags::DeleteTagsOutput;
    use aws_sdk_autoscaling::operation::describe_tags::DescribeTagsOutput;
    use aws_sdk_autoscaling::operation::resume_processes::ResumeProcessesOutput;
    use aws_sdk_autoscaling::types as t;
    use greenlight_core::scaling::{HoldRecord, HOLD_TAG_KEY};
    let record = HoldRecord {
        execution: EXEC.into(),
        processes: vec!["Launch".into(), "Terminate".into()],
        desired: 2,
        instances: 2,
    }
    .tag_value();
    let value = record.clone();
    let (r1, r2) = (resumed.clone(), resumed);
    vec![
        mock!(aws_sdk_autoscaling::Client::describe_tags).then_output(move || {
            DescribeTagsOutput::builder()
                .tags(
                    t::TagDescription::builder()
                        .resource_id(BLUE_ASG)
                        .key(HOLD_TAG_KEY)
                        .value(value.clone())
                        .build(),
                )
                .build()
        }),
        mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups)
            .match_requests(|r| r.auto_scaling_group_names() == [BLUE_ASG.to_string()])
            .then_output(move || {
                let mut g = t::AutoScalingGroup::builder()
                    .auto_scaling_group_name(BLUE_ASG)
                    .desired_capacity(3)
                    .tags(
                        t::TagDescription::builder()
                            .key(HOLD_TAG_KEY)
                            .value(record.clone())
                            .build(),
                    );
                for p in ["Launch", "Terminate", "ScheduledActions"] {
                    g = g.suspended_processes(
                        t::SuspendedProcess::builder().process_name(p).build(),
                    );
                }
                for i in ["i-1", "i-2"] {
                    g = g.instances(t::Instance::builder().instance_id(i).build());
                }
                DescribeAutoScalingGroupsOutput::builder()
                    .auto_scaling_groups(g.build())
                    .build()
            }),
        mock!(aws_sdk_autoscaling::Client::resume_processes)
            .match_requests(move |r| {
                r1.lock().unwrap().push(format!(
                    "resume {} {}",
                    r.auto_scaling_group_name().unwrap_or_default(),
                    r.scaling_processes().join(",")
                ));
                true
            })
            .then_output(|| ResumeProcessesOutput::builder().build()),
        mock!(aws_sdk_autoscaling::Client::delete_tags)
            .match_requests(move |r| {
                r2.lock().unwrap().push(format!(
                    "untag {}",
                    r.tags()[0].resource_id().unwrap_or_default()
                ));
                true
            })
            .then_output(|| DeleteTagsOutput::builder().build()),
    ]
}

#[tokio::test]
async fn a_failure_resumes_what_the_execution_held_and_reports_the_scale_event() {
    let deleted = log();
    let resumed = log();
    let published = log();
    let mut m = Mocks::new();
    m.codedeploy = validation_stopped_deployment();
    m.codedeploy.push(deployment_group_rule(&[BLUE_ASG]));
    m.autoscaling.push(delete_asg_rule(deleted.clone()));
    m.autoscaling.extend(held_blue_rules(resumed.clone()));
    m.elbv2 = elb_tuned_rules(log());
    m.sns.push(publish_rule(published.clone()));
    m.s3 = s3_fresh_rules(log());
    let deps = m.deps();

    let report = handled(
        run(Request::Task(Box::new(task_request())), &deps)
            .await
            .unwrap(),
    );
    // Exactly what was recorded is resumed (ScheduledActions, the user's, stays).
    assert_eq!(
        entries(&resumed),
        vec![
            format!("resume {BLUE_ASG} Launch,Terminate"),
            format!("untag {BLUE_ASG}")
        ]
    );
    let resume = action(&report, Step::ResumeScaling);
    assert_eq!(resume.outcome, Outcome::Done);
    assert_eq!(resume.target, BLUE_ASG);
    assert!(
        resume.detail.contains("desired capacity 2 -> 3"),
        "{}",
        resume.detail
    );
    // The one notification reports it.
    let published = entries(&published);
    assert_eq!(published.len(), 1);
    assert!(
        published[0].1.contains(&format!("Scaling ({BLUE_ASG}): resumed Launch, Terminate; Auto Scaling group {BLUE_ASG} was asked to scale")),
        "{}",
        published[0].1
    );
}

#[tokio::test]
async fn a_release_that_fails_is_recorded_and_the_rest_still_runs() {
    let published = log();
    let mut m = Mocks::new();
    m.codedeploy = validation_stopped_deployment();
    m.codedeploy.push(deployment_group_rule(&[BLUE_ASG]));
    m.autoscaling.push(delete_asg_rule(log()));
    m.autoscaling.push(
        mock!(aws_sdk_autoscaling::Client::describe_tags).then_error(|| {
            aws_sdk_autoscaling::operation::describe_tags::DescribeTagsError::generic(
                ErrorMetadata::builder()
                    .code("AccessDenied")
                    .message("not allowed")
                    .build(),
            )
        }),
    );
    m.elbv2 = elb_tuned_rules(log());
    m.sns.push(publish_rule(published.clone()));
    m.s3 = s3_fresh_rules(log());
    let deps = m.deps();
    let report = handled(
        run(Request::Task(Box::new(task_request())), &deps)
            .await
            .unwrap(),
    );
    let resume = action(&report, Step::ResumeScaling);
    assert_eq!(resume.outcome, Outcome::Failed);
    assert!(
        resume.detail.contains("resume-processes"),
        "{}",
        resume.detail
    );
    assert_eq!(report.load_balancer.state, RestoreState::Restored);
    assert_eq!(entries(&published).len(), 1);
    assert!(
        report.next_step.contains("ResumeScaling"),
        "{}",
        report.next_step
    );
}

/// A dead execution's clean-up (execution status-change event, no pipeline
/// state) finds the groups it held by their tag and resumes them.
#[tokio::test]
async fn a_dead_executions_held_groups_are_resumed_by_its_clean_up() {
    let resumed = log();
    let mut m = died_execution_mocks(
        aws_sdk_sfn::types::ExecutionStatus::Failed,
        log(),
        elb_tuned_rules(log()),
    );
    m.autoscaling.extend(held_blue_rules(resumed.clone()));
    let deps = m.deps();
    let report = handled(
        run(execution_event(Some("States.DataLimitExceeded")), &deps)
            .await
            .unwrap(),
    );
    assert_eq!(report.error, FailureKind::ExecutionEnded);
    assert_eq!(
        entries(&resumed),
        vec![
            format!("resume {BLUE_ASG} Launch,Terminate"),
            format!("untag {BLUE_ASG}")
        ]
    );
    assert_eq!(action(&report, Step::ResumeScaling).outcome, Outcome::Done);
}

// ---- askApproval (issue 10) ------------------------------------------------------

const TASK_ASK_APPROVAL: &str = include_str!("../../../events/task-ask-approval.json");

#[tokio::test]
async fn ask_approval_publishes_one_request_with_how_to_answer_and_touches_nothing_else() {
    let request: Request = serde_json::from_str(TASK_ASK_APPROVAL).unwrap();
    assert!(matches!(request, Request::Ask(_)), "{request:?}");
    let published = log();
    let mut m = Mocks::new();
    m.sns
        .push(publish_rule_for("approvalRequested", published.clone()));
    let deps = m.deps();
    let response = run(request, &deps).await.unwrap();
    let Response::ApprovalAsked {
        deployment_id,
        deadline_seconds,
        message_id,
        ..
    } = &response
    else {
        panic!("{response:?}")
    };
    assert_eq!(deployment_id, DEP);
    assert_eq!(*deadline_seconds, 1800);
    assert!(message_id.is_some());
    let sent = entries(&published);
    assert_eq!(sent.len(), 1, "exactly one notification");
    let (subject, message) = &sent[0];
    assert!(
        subject.starts_with("greenlight: approval needed for 20240501120000-42"),
        "{subject}"
    );
    assert!(subject.len() <= 100);
    for expected in [
        DEP,
        "all 2 green instances answered HTTP 200",
        "greenlight-approval=required",
        "within 1800 s",
        &format!("greenlight promote {EXEC}"),
        &format!("greenlight abort {EXEC}"),
        "aws stepfunctions send-task-success --task-token \"AQCEAAAAKgAAAAMAAAAAAAAAAR6Jz2bXl5z4n+example-task-token==\"",
        "--error greenlight.ApprovalRejected",
        &format!("{}:{EXEC}", STATE_MACHINE.replace(":stateMachine:", ":execution:")),
    ] {
        assert!(message.contains(expected), "{expected} missing in\n{message}");
    }
}

#[tokio::test]
async fn ask_approval_without_a_request_or_token_is_invalid_input() {
    let mut v: serde_json::Value = serde_json::from_str(TASK_ASK_APPROVAL).unwrap();
    v["pipeline"].as_object_mut().unwrap().remove("approval");
    let deps = Mocks::new().deps();
    let request: Request = serde_json::from_value(v.clone()).unwrap();
    let err = run(request, &deps).await.unwrap_err();
    assert_eq!(err.error_type(), "InvalidInput");
    v["taskToken"] = serde_json::json!(" ");
    v["pipeline"]["approval"] =
        serde_json::json!({"requestedBy": "groupDefault", "deadlineSeconds": 60});
    let request: Request = serde_json::from_value(v).unwrap();
    let err = run(request, &deps).await.unwrap_err();
    assert!(err.to_string().contains("taskToken is empty"), "{err}");
}

#[tokio::test]
async fn a_failed_publish_is_an_aws_error_the_state_machine_can_retry() {
    let request: Request = serde_json::from_str(TASK_ASK_APPROVAL).unwrap();
    let mut m = Mocks::new();
    m.sns
        .push(mock!(aws_sdk_sns::Client::publish).then_error(|| {
            aws_sdk_sns::operation::publish::PublishError::generic(
                ErrorMetadata::builder()
                    .code("Throttling")
                    .message("Rate exceeded")
                    .build(),
            )
        }));
    let deps = m.deps();
    let err = run(request, &deps).await.unwrap_err();
    assert_eq!(err.error_type(), "AwsTransient", "{err}");
}
