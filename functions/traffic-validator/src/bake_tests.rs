//! `bake` task tests: real SDK clients on aws-smithy-mocks (CodeDeploy,
//! ELBv2, EC2, CloudWatch) and tiny loopback HTTP servers for the green
//! instances' probes.

use super::*;
use crate::{handler, Config, Deps, Request, Response};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
use aws_sdk_cloudwatch::operation::get_metric_data::{GetMetricDataError, GetMetricDataOutput};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{MetricAlarm, MetricDataResult, StateValue};
use aws_sdk_codedeploy::error::ErrorMetadata;
use aws_sdk_codedeploy::operation::batch_get_deployment_targets::BatchGetDeploymentTargetsOutput;
use aws_sdk_codedeploy::operation::continue_deployment::{
    ContinueDeploymentError, ContinueDeploymentOutput,
};
use aws_sdk_codedeploy::operation::get_deployment::GetDeploymentOutput;
use aws_sdk_codedeploy::operation::get_deployment_group::GetDeploymentGroupOutput;
use aws_sdk_codedeploy::operation::list_deployment_targets::ListDeploymentTargetsOutput;
use aws_sdk_codedeploy::operation::stop_deployment::StopDeploymentOutput;
use aws_sdk_codedeploy::types::{
    DeploymentGroupInfo, DeploymentInfo, DeploymentStatus as CdStatus, DeploymentTarget,
    DeploymentTargetType, InstanceTarget, StopStatus, TargetLabel, TargetStatus,
};
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::types::{Instance, Reservation};
use aws_sdk_elasticloadbalancingv2::operation::add_tags::AddTagsOutput;
use aws_sdk_elasticloadbalancingv2::operation::deregister_targets::DeregisterTargetsOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_listeners::DescribeListenersOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_rules::DescribeRulesOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_tags::DescribeTagsOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_group_attributes::DescribeTargetGroupAttributesOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::DescribeTargetGroupsOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput;
use aws_sdk_elasticloadbalancingv2::operation::modify_listener::ModifyListenerOutput;
use aws_sdk_elasticloadbalancingv2::operation::modify_target_group::ModifyTargetGroupOutput;
use aws_sdk_elasticloadbalancingv2::operation::modify_target_group_attributes::ModifyTargetGroupAttributesOutput;
use aws_sdk_elasticloadbalancingv2::operation::register_targets::RegisterTargetsOutput;
use aws_sdk_elasticloadbalancingv2::operation::remove_tags::RemoveTagsOutput;
use aws_sdk_elasticloadbalancingv2::types::{
    Action as ElbAction, ActionTypeEnum, Listener, Tag, TagDescription, TargetDescription,
    TargetGroup, TargetGroupAttribute, TargetHealth, TargetHealthDescription,
    TargetHealthStateEnum,
};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use greenlight_core::bake::standby::{Route, RouteAction, RouteKind, StandbyTarget, Weights};
use greenlight_core::bake::standby_record::{decode_record, encode_record};
use greenlight_core::bake::{BakeThresholds, BakeVerdict, GroupBake};
use greenlight_core::probe::ProbeConfig;
use lambda_runtime::LambdaEvent;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TASK_EVENT: &str = include_str!("../../../events/task-bake.json");
const DEPLOYMENT_ID: &str = "d-7Q2KJ3X1A";
const LABEL: &str = "20240501120000-42";
const TG_ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/shop-tg/73e2d6bc24d8a067";
const STANDBY_ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/shop-standby/0f0e0d0c0b0a0908";
const LISTENER_ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:111122223333:listener/app/shop-alb/50dc6c495c0c9188/f2f7dc8efc522ab2";
const LB_ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/app/shop-alb/50dc6c495c0c9188";

/// One green instance on 127.0.0.1 answering `/health` 200 and `/version` LABEL.
async fn green_server() -> u16 {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let body = if String::from_utf8_lossy(&head).contains("/version") {
                    LABEL.to_string()
                } else {
                    "ok".to_string()
                };
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    port
}

fn group_bake(bake_seconds: u32) -> GroupBake {
    GroupBake {
        application: "shop".into(),
        deployment_group: "shop-bluegreen".into(),
        bake_seconds,
        alarms: vec!["shop-5xx".into()],
        thresholds: BakeThresholds {
            max_5xx_count: Some(0),
            max_5xx_rate_percent: Some(1.0),
            max_response_time_ms: Some(1_000),
            max_unhealthy_hosts: Some(0),
        },
        period_seconds: 60,
        metric_delay_seconds: 0,
        min_look_seconds: 5,
        max_look_seconds: 30,
        standby_target_group: None,
        standby_settle_seconds: 30,
    }
}

/// Calls the test observed, in order.
type Calls = Arc<Mutex<Vec<String>>>;

struct World {
    status: CdStatus,
    termination_wait_started: bool,
    alarm: StateValue,
    target_5xx: Option<f64>,
    metrics_throttled: bool,
    continue_completed: bool,
    /// What the target group shows live: (interval, timeout, healthy, unhealthy, delay).
    live: (i32, i32, i32, i32, &'static str),
    /// The group has a standby target group; the listener in front of the
    /// target group is this route (a plain forward, or one the core refuses).
    standby: Option<ListenerShape>,
    /// The standby's record already on the target group (a retried look).
    record_on_main: Option<StandbyState>,
    calls: Calls,
}

#[derive(Clone, Copy)]
enum ListenerShape {
    PlainForward,
    RedirectAndForward,
}

impl World {
    fn new() -> Self {
        Self {
            status: CdStatus::InProgress,
            termination_wait_started: true,
            alarm: StateValue::Ok,
            target_5xx: None,
            metrics_throttled: false,
            continue_completed: false,
            live: (5, 2, 2, 2, "30"),
            standby: None,
            record_on_main: None,
            calls: Arc::default(),
        }
    }

    fn deps(&self, port: u16, groups: Vec<GroupBake>) -> Deps {
        let calls = self.calls.clone();
        let status = self.status.clone();
        let waiting = self.termination_wait_started;
        let get = mock!(aws_sdk_codedeploy::Client::get_deployment).then_output(move || {
            GetDeploymentOutput::builder()
                .deployment_info(
                    DeploymentInfo::builder()
                        .deployment_id(DEPLOYMENT_ID)
                        .application_name("shop")
                        .deployment_group_name("shop-bluegreen")
                        .status(status.clone())
                        .instance_termination_wait_time_started(waiting)
                        .build(),
                )
                .build()
        });
        let with_blue = self.standby.is_some();
        let list =
            mock!(aws_sdk_codedeploy::Client::list_deployment_targets).then_output(move || {
                let out = ListDeploymentTargetsOutput::builder().target_ids("i-0green0");
                if with_blue {
                    out.target_ids("i-0blue0").build()
                } else {
                    out.build()
                }
            });
        let batch = mock!(aws_sdk_codedeploy::Client::batch_get_deployment_targets).then_output(
            move || {
                let target = |id: &str, label: TargetLabel| {
                    DeploymentTarget::builder()
                        .deployment_target_type(DeploymentTargetType::InstanceTarget)
                        .instance_target(
                            InstanceTarget::builder()
                                .deployment_id(DEPLOYMENT_ID)
                                .target_id(id)
                                .instance_label(label)
                                .status(TargetStatus::Succeeded)
                                .build(),
                        )
                        .build()
                };
                let out = BatchGetDeploymentTargetsOutput::builder()
                    .deployment_targets(target("i-0green0", TargetLabel::Green));
                if with_blue {
                    out.deployment_targets(target("i-0blue0", TargetLabel::Blue))
                        .build()
                } else {
                    out.build()
                }
            },
        );
        let group = mock!(aws_sdk_codedeploy::Client::get_deployment_group).then_output(|| {
            GetDeploymentGroupOutput::builder()
                .deployment_group_info(
                    DeploymentGroupInfo::builder()
                        .load_balancer_info(
                            aws_sdk_codedeploy::types::LoadBalancerInfo::builder()
                                .target_group_info_list(
                                    aws_sdk_codedeploy::types::TargetGroupInfo::builder()
                                        .name("shop-tg")
                                        .build(),
                                )
                                .build(),
                        )
                        .alarm_configuration(
                            aws_sdk_codedeploy::types::AlarmConfiguration::builder()
                                .enabled(true)
                                .alarms(
                                    aws_sdk_codedeploy::types::Alarm::builder()
                                        .name("group-latency")
                                        .build(),
                                )
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
        let c = calls.clone();
        let completed = self.continue_completed;
        let cont = mock!(aws_sdk_codedeploy::Client::continue_deployment)
            .match_requests(|r| {
                r.deployment_id() == Some(DEPLOYMENT_ID)
                    && r.deployment_wait_type() == Some(&DeploymentWaitType::TerminationWait)
            })
            .then_compute_response(move |_| {
                c.lock()
                    .unwrap()
                    .push("ContinueDeployment(TERMINATION_WAIT)".into());
                if completed {
                    aws_smithy_mocks::MockResponse::Error(ContinueDeploymentError::generic(
                        ErrorMetadata::builder()
                            .code("DeploymentAlreadyCompletedException")
                            .message("already completed")
                            .build(),
                    ))
                } else {
                    aws_smithy_mocks::MockResponse::Output(
                        ContinueDeploymentOutput::builder().build(),
                    )
                }
            });
        let c = calls.clone();
        let stop = mock!(aws_sdk_codedeploy::Client::stop_deployment)
            .match_requests(|r| r.auto_rollback_enabled() == Some(true))
            .then_compute_output(move |_| {
                c.lock().unwrap().push("StopDeployment(rollback)".into());
                StopDeploymentOutput::builder()
                    .status(StopStatus::Pending)
                    .build()
            });
        let codedeploy = mock_client!(
            aws_sdk_codedeploy,
            RuleMode::MatchAny,
            [&get, &list, &batch, &group, &cont, &stop]
        );

        let (interval, timeout, healthy, unhealthy, delay) = self.live;
        let describe_tg = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_groups)
            .then_output(move || {
                DescribeTargetGroupsOutput::builder()
                    .target_groups(
                        TargetGroup::builder()
                            .target_group_arn(TG_ARN)
                            .target_group_name("shop-tg")
                            .port(8080)
                            .load_balancer_arns(LB_ARN)
                            .health_check_interval_seconds(interval)
                            .health_check_timeout_seconds(timeout)
                            .healthy_threshold_count(healthy)
                            .unhealthy_threshold_count(unhealthy)
                            .build(),
                    )
                    .build()
            });
        let attrs = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_group_attributes)
            .then_output(move || {
                DescribeTargetGroupAttributesOutput::builder()
                    .attributes(
                        TargetGroupAttribute::builder()
                            .key("deregistration_delay.timeout_seconds")
                            .value(delay)
                            .build(),
                    )
                    .build()
            });
        let c = calls.clone();
        let modify = mock!(aws_sdk_elasticloadbalancingv2::Client::modify_target_group)
            .then_compute_output(move |r| {
                c.lock().unwrap().push(format!(
                    "ModifyTargetGroup({:?}/{:?}/{:?}/{:?})",
                    r.health_check_interval_seconds(),
                    r.health_check_timeout_seconds(),
                    r.healthy_threshold_count(),
                    r.unhealthy_threshold_count()
                ));
                ModifyTargetGroupOutput::builder().build()
            });
        let c = calls.clone();
        let modify_attrs =
            mock!(aws_sdk_elasticloadbalancingv2::Client::modify_target_group_attributes)
                .then_compute_output(move |r| {
                    c.lock().unwrap().push(format!(
                        "ModifyTargetGroupAttributes({:?})",
                        r.attributes().first().and_then(|a| a.value())
                    ));
                    ModifyTargetGroupAttributesOutput::builder().build()
                });
        let mut elb_rules = self.standby_rules();
        elb_rules.extend([describe_tg, attrs, modify, modify_attrs]);
        let elbv2 = mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::MatchAny,
            &elb_rules
        );

        let c = calls.clone();
        let instances =
            mock!(aws_sdk_ec2::Client::describe_instances).then_compute_output(move |_| {
                c.lock().unwrap().push("DescribeInstances".into());
                DescribeInstancesOutput::builder()
                    .reservations(
                        Reservation::builder()
                            .instances(
                                Instance::builder()
                                    .instance_id("i-0green0")
                                    .private_ip_address("127.0.0.1")
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            });
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&instances]);

        let cloudwatch = mock_client!(
            aws_sdk_cloudwatch,
            RuleMode::MatchAny,
            &self.cloudwatch_rules()
        );
        let probe = ProbeConfig {
            path: "/health".into(),
            version_path: Some("/version".into()),
            port: Some(port),
            expected_status: 200,
            required_successes: 2,
            probe_timeout_ms: 300,
            interval_ms: 20,
            deadline_ms: 2_000,
        };
        let config = Config::new(probe)
            .expect("valid probe config")
            .with_bake(groups);
        Deps::from_clients(codedeploy, ec2, elbv2, config).with_cloudwatch(cloudwatch)
    }

    fn cloudwatch_rules(&self) -> Vec<Rule> {
        let alarm = self.alarm.clone();
        let alarms = mock!(aws_sdk_cloudwatch::Client::describe_alarms)
            .match_requests(|r| r.alarm_names() == ["shop-5xx", "group-latency"])
            .then_output(move || {
                DescribeAlarmsOutput::builder()
                    .metric_alarms(
                        MetricAlarm::builder()
                            .alarm_name("shop-5xx")
                            .state_value(alarm.clone())
                            .state_reason("Threshold Crossed: 1 datapoint [12.0] > 0.0")
                            .build(),
                    )
                    .metric_alarms(
                        MetricAlarm::builder()
                            .alarm_name("group-latency")
                            .state_value(StateValue::Ok)
                            .build(),
                    )
                    .build()
            });
        let target_5xx = self.target_5xx;
        let metrics = if self.metrics_throttled {
            mock!(aws_sdk_cloudwatch::Client::get_metric_data).then_error(|| {
                GetMetricDataError::generic(
                    aws_sdk_cloudwatch::error::ErrorMetadata::builder()
                        .code("Throttling")
                        .message("Rate exceeded")
                        .build(),
                )
            })
        } else {
            mock!(aws_sdk_cloudwatch::Client::get_metric_data).then_compute_output(move |r| {
                // one datapoint in the minute the window ends in
                let at = r.end_time().and_then(|t| t.to_millis().ok()).unwrap_or(0) - 60_000;
                let mut out = GetMetricDataOutput::builder().metric_data_results(
                    MetricDataResult::builder()
                        .id("requests_0")
                        .timestamps(DateTime::from_millis(at))
                        .values(100.0)
                        .build(),
                );
                if let Some(errors) = target_5xx {
                    out = out.metric_data_results(
                        MetricDataResult::builder()
                            .id("target5xx_0")
                            .timestamps(DateTime::from_millis(at))
                            .values(errors)
                            .build(),
                    );
                }
                out.build()
            })
        };
        vec![alarms, metrics]
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    /// ELBv2 in front of the target group for a group with a standby:
    /// every change is logged in `calls`.
    fn standby_rules(&self) -> Vec<Rule> {
        let Some(shape) = self.standby else {
            return Vec::new();
        };
        let log = |c: &Calls, entry: String| c.lock().unwrap().push(entry);
        let c = self.calls.clone();
        let by_name = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_groups)
            .match_requests(|r| r.names() == ["shop-standby"])
            .then_output(|| {
                DescribeTargetGroupsOutput::builder()
                    .target_groups(
                        TargetGroup::builder()
                            .target_group_arn(STANDBY_ARN)
                            .target_group_name("shop-standby")
                            .port(8080)
                            .build(),
                    )
                    .build()
            });
        let forward = |arn: &str| {
            ElbAction::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(arn)
                .build()
        };
        let listener_actions = match shape {
            ListenerShape::PlainForward => vec![forward(TG_ARN)],
            ListenerShape::RedirectAndForward => vec![
                ElbAction::builder()
                    .r#type(ActionTypeEnum::AuthenticateOidc)
                    .order(1)
                    .build(),
                ElbAction::builder()
                    .r#type(ActionTypeEnum::Forward)
                    .order(2)
                    .target_group_arn(TG_ARN)
                    .build(),
            ],
        };
        let listeners = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_listeners)
            .then_output(move || {
                DescribeListenersOutput::builder()
                    .listeners(
                        Listener::builder()
                            .listener_arn(LISTENER_ARN)
                            .set_default_actions(Some(listener_actions.clone()))
                            .build(),
                    )
                    .build()
            });
        let rules = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_rules)
            .then_output(|| DescribeRulesOutput::builder().build());
        let c1 = c.clone();
        let register = mock!(aws_sdk_elasticloadbalancingv2::Client::register_targets)
            .then_compute_output(move |r| {
                log(
                    &c1,
                    format!(
                        "RegisterTargets({})",
                        r.target_group_arn().unwrap_or_default()
                    ),
                );
                RegisterTargetsOutput::builder().build()
            });
        let c2 = c.clone();
        let deregister = mock!(aws_sdk_elasticloadbalancingv2::Client::deregister_targets)
            .then_compute_output(move |r| {
                log(
                    &c2,
                    format!(
                        "DeregisterTargets({})",
                        r.target_group_arn().unwrap_or_default()
                    ),
                );
                DeregisterTargetsOutput::builder().build()
            });
        let c3 = c.clone();
        let add_tags =
            mock!(aws_sdk_elasticloadbalancingv2::Client::add_tags).then_compute_output(move |r| {
                let tags: Vec<(String, String)> = r
                    .tags()
                    .iter()
                    .map(|t| {
                        (
                            t.key().unwrap_or_default().into(),
                            t.value().unwrap_or_default().into(),
                        )
                    })
                    .collect();
                let what = match decode_record(&tags) {
                    RecordRead::Found(s) => format!("{:?}", s.weights),
                    other => format!("{other:?}"),
                };
                log(
                    &c3,
                    format!("AddTags({} record {what})", r.resource_arns().join(",")),
                );
                AddTagsOutput::builder().build()
            });
        let c4 = c.clone();
        let remove_tags = mock!(aws_sdk_elasticloadbalancingv2::Client::remove_tags)
            .then_compute_output(move |r| {
                log(&c4, format!("RemoveTags({})", r.resource_arns().join(",")));
                RemoveTagsOutput::builder().build()
            });
        let c5 = c.clone();
        let modify_listener = mock!(aws_sdk_elasticloadbalancingv2::Client::modify_listener)
            .then_compute_output(move |r| {
                let a = &r.default_actions()[0];
                let shape = match a.forward_config() {
                    Some(f) => f
                        .target_groups()
                        .iter()
                        .map(|g| g.weight().unwrap_or(1).to_string())
                        .collect::<Vec<_>>()
                        .join("/"),
                    None => format!("plain {}", a.target_group_arn().unwrap_or_default()),
                };
                log(&c5, format!("ModifyListener({shape})"));
                ModifyListenerOutput::builder().build()
            });
        let record = self.record_on_main.clone();
        let describe_tags = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_tags)
            .then_output(move || {
                let mut d = TagDescription::builder().resource_arn(TG_ARN);
                if let Some(s) = &record {
                    for (k, v) in encode_record(s).unwrap() {
                        d = d.tags(Tag::builder().key(k).value(v).build());
                    }
                }
                DescribeTagsOutput::builder()
                    .tag_descriptions(d.build())
                    .build()
            });
        let health = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_health)
            .then_output(|| {
                DescribeTargetHealthOutput::builder()
                    .target_health_descriptions(
                        TargetHealthDescription::builder()
                            .target(
                                TargetDescription::builder()
                                    .id("i-0blue0")
                                    .port(8080)
                                    .build(),
                            )
                            .target_health(
                                TargetHealth::builder()
                                    .state(TargetHealthStateEnum::Healthy)
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            });
        vec![
            by_name,
            listeners,
            rules,
            register,
            deregister,
            add_tags,
            remove_tags,
            modify_listener,
            describe_tags,
            health,
        ]
    }
}

fn task(previous: Option<BakeReport>) -> Request {
    let mut value: serde_json::Value = serde_json::from_str(TASK_EVENT).expect("fixture is JSON");
    if let Some(p) = previous {
        value["pipeline"]["bake"] = serde_json::to_value(p).expect("serializes");
    }
    serde_json::from_value(value).expect("a bake task")
}

async fn run(deps: &Deps, previous: Option<BakeReport>) -> Result<BakeReport, Error> {
    let event = LambdaEvent::new(task(previous), Context::default());
    match handler(event, deps).await? {
        Response::Bake(r) => Ok(r),
        other => panic!("expected a bake report, got {other:?}"),
    }
}

fn watching_since(started_at_ms: i64) -> BakeReport {
    BakeReport {
        deployment_id: DEPLOYMENT_ID.into(),
        verdict: BakeVerdict::Watching,
        started_at_ms: Some(started_at_ms),
        looked_at_ms: started_at_ms,
        looks: 1,
        bake_seconds: Some(60),
        wait_seconds: 5,
        evidence: Vec::new(),
        summary: String::new(),
        saved_seconds: None,
        tuned: vec![TargetGroupSnapshot {
            target_group_arn: TG_ARN.into(),
            health_check: greenlight_core::model::HealthCheckSettings {
                interval_seconds: 5,
                timeout_seconds: 2,
                healthy_threshold: 2,
                unhealthy_threshold: 2,
            },
            deregistration_delay_seconds: 30,
        }],
        standby: None,
        standby_note: None,
    }
}

#[test]
fn the_fixture_parses_as_a_bake_task() {
    match task(None) {
        Request::Task(t) => {
            assert_eq!(t.action, Action::Bake);
            assert!(t.pipeline.bake.is_none());
            assert_eq!(
                t.pipeline.deployment.map(|d| d.deployment_id).as_deref(),
                Some(DEPLOYMENT_ID)
            );
        }
        other => panic!("not a task: {other:?}"),
    }
}

#[tokio::test]
async fn a_group_without_a_bake_is_not_configured_and_nothing_is_called() {
    let w = World::new();
    let deps = w.deps(1, vec![]);
    let r = run(&deps, None).await.expect("answered");
    assert_eq!(r.verdict, BakeVerdict::NotConfigured);
    assert!(r
        .summary
        .contains("no bake is configured for shop/shop-bluegreen"));
    assert!(w.calls().is_empty(), "{:?}", w.calls());
    let other = GroupBake {
        deployment_group: "other".into(),
        ..group_bake(60)
    };
    let deps = w.deps(1, vec![other]);
    assert_eq!(
        run(&deps, None).await.expect("answered").verdict,
        BakeVerdict::NotConfigured
    );
}

#[tokio::test]
async fn the_first_clean_look_puts_the_snapshot_back_records_the_profile_and_keeps_watching() {
    let port = green_server().await;
    let w = World::new();
    let deps = w.deps(port, vec![group_bake(60)]);
    let before = greenlight_aws::now_ms();
    let r = run(&deps, None).await.expect("answered");
    assert_eq!(r.verdict, BakeVerdict::Watching, "{r:?}");
    assert!(r.started_at_ms.is_some_and(|s| s >= before));
    assert_eq!(r.looks, 1);
    assert!((5..=30).contains(&r.wait_seconds), "{r:?}");
    assert_eq!(r.tuned, watching_since(0).tuned);
    let calls = w.calls();
    // the seed's settings from $.tuning go back on the target group
    assert!(
        calls.contains(&"ModifyTargetGroup(Some(30)/Some(5)/Some(10)/Some(2))".to_string()),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"ModifyTargetGroupAttributes(Some(\"300\"))".to_string()),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"DescribeInstances".to_string()),
        "probed: {calls:?}"
    );
    assert!(!calls
        .iter()
        .any(|c| c.starts_with("ContinueDeployment") || c.starts_with("StopDeployment")));
}

#[tokio::test]
async fn a_later_look_does_not_restore_again() {
    let port = green_server().await;
    let mut w = World::new();
    w.live = (30, 5, 10, 2, "300");
    let deps = w.deps(port, vec![group_bake(60)]);
    let previous = watching_since(greenlight_aws::now_ms() - 10_000);
    let r = run(&deps, Some(previous.clone())).await.expect("answered");
    assert_eq!(r.verdict, BakeVerdict::Watching);
    assert_eq!(r.started_at_ms, previous.started_at_ms);
    assert_eq!(r.looks, 2);
    assert_eq!(r.tuned, previous.tuned);
    assert!(
        !w.calls().iter().any(|c| c.starts_with("Modify")),
        "{:?}",
        w.calls()
    );
}

#[tokio::test]
async fn a_clean_bake_past_its_time_continues_the_termination_wait() {
    let port = green_server().await;
    let mut w = World::new();
    w.live = (30, 5, 10, 2, "300");
    let deps = w.deps(port, vec![group_bake(60)]);
    let previous = watching_since(greenlight_aws::now_ms() - 70_000);
    let r = run(&deps, Some(previous)).await.expect("answered");
    assert_eq!(r.verdict, BakeVerdict::Passed, "{r:?}");
    // the fixture's group waits 300 s before terminating blue; the bake took ~70 s
    assert!(
        r.saved_seconds.is_some_and(|s| (225..=230).contains(&s)),
        "{r:?}"
    );
    assert!(r.summary.contains("blue released now"), "{}", r.summary);
    assert!(w
        .calls()
        .contains(&"ContinueDeployment(TERMINATION_WAIT)".to_string()));
    assert!(!w.calls().iter().any(|c| c.starts_with("StopDeployment")));
}

#[tokio::test]
async fn a_deployment_that_completed_meanwhile_ends_the_bake() {
    let port = green_server().await;
    let mut w = World::new();
    w.continue_completed = true;
    let deps = w.deps(port, vec![group_bake(60)]);
    let r = run(
        &deps,
        Some(watching_since(greenlight_aws::now_ms() - 70_000)),
    )
    .await
    .expect("answered");
    assert_eq!(r.verdict, BakeVerdict::Ended, "{r:?}");
}

#[tokio::test]
async fn an_alarm_fails_the_bake_reapplies_the_profile_and_stops_with_rollback_without_probing() {
    let mut w = World::new();
    w.alarm = StateValue::Alarm;
    w.live = (30, 5, 10, 2, "300");
    let deps = w.deps(1, vec![group_bake(600)]);
    let r = run(
        &deps,
        Some(watching_since(greenlight_aws::now_ms() - 10_000)),
    )
    .await
    .expect("answered");
    assert_eq!(r.verdict, BakeVerdict::Failed, "{r:?}");
    assert!(
        r.summary
            .starts_with("alarm shop-5xx is in ALARM (Threshold Crossed"),
        "{}",
        r.summary
    );
    let calls = w.calls();
    let reapplied = calls
        .iter()
        .position(|c| c == "ModifyTargetGroup(Some(5)/Some(2)/Some(2)/Some(2))");
    let stopped = calls.iter().position(|c| c == "StopDeployment(rollback)");
    assert!(
        matches!((reapplied, stopped), (Some(a), Some(b)) if a < b),
        "the fast profile goes back before the stop: {calls:?}"
    );
    assert!(
        !calls.contains(&"DescribeInstances".to_string()),
        "{calls:?}"
    );
}

#[tokio::test]
async fn target_5xx_in_the_bake_fails_it_with_the_metric_evidence() {
    let mut w = World::new();
    w.target_5xx = Some(12.0);
    let deps = w.deps(1, vec![group_bake(600)]);
    let r = run(
        &deps,
        Some(watching_since(greenlight_aws::now_ms() - 10_000)),
    )
    .await
    .expect("answered");
    assert_eq!(r.verdict, BakeVerdict::Failed, "{r:?}");
    assert!(
        r.summary.contains("target 5xx answers 12 > limit 0"),
        "{}",
        r.summary
    );
    assert!(
        r.summary.contains("target 5xx rate (%) 12 > limit 1"),
        "{}",
        r.summary
    );
    assert_eq!(r.evidence.len(), 2);
    assert!(w.calls().contains(&"StopDeployment(rollback)".to_string()));
}

#[tokio::test]
async fn before_the_termination_wait_begins_it_waits_without_touching_anything() {
    let mut w = World::new();
    w.termination_wait_started = false;
    let deps = w.deps(1, vec![group_bake(60)]);
    let r = run(&deps, None).await.expect("answered");
    assert_eq!(r.verdict, BakeVerdict::Watching);
    assert_eq!(r.started_at_ms, None);
    assert_eq!(r.wait_seconds, 5);
    assert!(w.calls().is_empty(), "{:?}", w.calls());
}

#[tokio::test]
async fn an_ended_deployment_ends_the_bake() {
    let mut w = World::new();
    w.status = CdStatus::Succeeded;
    let deps = w.deps(1, vec![group_bake(60)]);
    let r = run(&deps, None).await.expect("answered");
    assert_eq!(r.verdict, BakeVerdict::Ended);
    assert!(w.calls().is_empty());
}

#[tokio::test]
async fn throttled_metrics_are_transient_and_act_on_nothing() {
    let mut w = World::new();
    w.metrics_throttled = true;
    let deps = w.deps(1, vec![group_bake(60)]);
    let err = run(
        &deps,
        Some(watching_since(greenlight_aws::now_ms() - 10_000)),
    )
    .await
    .expect_err("throttled");
    assert_eq!(err.error_type(), greenlight_core::errors::AWS_TRANSIENT);
    assert!(!w
        .calls()
        .iter()
        .any(|c| c.starts_with("Stop") || c.starts_with("Continue")));
}

#[tokio::test]
async fn a_baking_group_without_a_cloudwatch_client_is_invalid_input() {
    let w = World::new();
    let deps = w.deps(1, vec![group_bake(60)]);
    let deps = Deps {
        cloudwatch: None,
        ..deps
    };
    let err = run(&deps, None).await.expect_err("no client");
    assert_eq!(err.error_type(), greenlight_core::errors::INVALID_INPUT);
}

/// The fixture's task with the emergency override asked by the upload's tag.
async fn run_skipped(deps: &Deps) -> Result<BakeReport, Error> {
    let mut value: serde_json::Value = serde_json::from_str(TASK_EVENT).expect("fixture is JSON");
    value["pipeline"]["bakeSkip"] = serde_json::json!({"requestedBy": "objectTag"});
    let request: Request = serde_json::from_value(value).expect("a bake task");
    match handler(LambdaEvent::new(request, Context::default()), deps).await? {
        Response::Bake(r) => Ok(r),
        other => panic!("expected a bake report, got {other:?}"),
    }
}

#[tokio::test]
async fn the_override_puts_the_snapshot_back_and_watches_nothing() {
    let w = World::new();
    // No CloudWatch client: a skipped bake must not need one (it reads no
    // alarm and no metric).
    let deps = Deps {
        cloudwatch: None,
        ..w.deps(1, vec![group_bake(60)])
    };
    let r = run_skipped(&deps).await.expect("answered");
    assert_eq!(r.verdict, BakeVerdict::Skipped, "{r:?}");
    assert!(
        r.summary
            .starts_with("bake SKIPPED by override (S3 tag greenlight-bake=skip on s3://"),
        "{}",
        r.summary
    );
    assert!(r.tuned.is_empty());
    assert_eq!(serde_json::to_value(&r).unwrap()["verdict"], "skipped");
    let calls = w.calls();
    assert!(
        calls.contains(&"ModifyTargetGroup(Some(30)/Some(5)/Some(10)/Some(2))".to_string()),
        "the group's own settings go back: {calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c == "DescribeInstances"
            || c.starts_with("ContinueDeployment")
            || c.starts_with("StopDeployment")),
        "no probe, no early end, no rollback: {calls:?}"
    );
}

#[tokio::test]
async fn the_override_waits_for_the_termination_wait_like_a_first_look() {
    let mut w = World::new();
    w.termination_wait_started = false;
    let deps = w.deps(1, vec![group_bake(60)]);
    let r = run_skipped(&deps).await.expect("answered");
    assert_eq!(r.verdict, BakeVerdict::Watching);
    assert!(!w.calls().iter().any(|c| c.starts_with("Modify")));
}

#[tokio::test]
async fn the_override_for_a_group_without_a_bake_has_nothing_to_skip() {
    let w = World::new();
    let deps = w.deps(1, vec![]);
    let r = run_skipped(&deps).await.expect("answered");
    assert_eq!(r.verdict, BakeVerdict::NotConfigured);
    assert!(
        r.summary.contains("a skip was asked by override") && r.summary.contains("nothing to skip"),
        "{}",
        r.summary
    );
    assert!(w.calls().is_empty(), "{:?}", w.calls());
}

// ---- standby (blue kept warm) ---------------------------------------------------

fn standby_bake(bake_seconds: u32) -> GroupBake {
    GroupBake {
        standby_target_group: Some("shop-standby".into()),
        ..group_bake(bake_seconds)
    }
}

/// The standby as the first look armed it.
fn armed() -> StandbyState {
    StandbyState {
        deployment_id: DEPLOYMENT_ID.into(),
        main_target_group_arn: TG_ARN.into(),
        standby_target_group_arn: STANDBY_ARN.into(),
        blue_targets: vec![StandbyTarget {
            instance_id: "i-0blue0".into(),
            port: 8080,
        }],
        routes: vec![Route {
            kind: RouteKind::Listener,
            arn: LISTENER_ARN.into(),
            actions: vec![RouteAction {
                action_type: "forward".into(),
                order: None,
                target_group_arn: Some(TG_ARN.into()),
                forward_to: Vec::new(),
                stickiness: None,
            }],
        }],
        weights: Weights::Armed,
        restored: false,
        settle_seconds: 30,
        switched_at_ms: None,
    }
}

fn position(calls: &[String], call: &str) -> usize {
    calls
        .iter()
        .position(|c| c == call)
        .unwrap_or_else(|| panic!("{call} not called: {calls:?}"))
}

#[tokio::test]
async fn the_first_look_records_the_standby_then_weights_the_listener() {
    let port = green_server().await;
    let mut w = World::new();
    w.standby = Some(ListenerShape::PlainForward);
    let deps = w.deps(port, vec![standby_bake(60)]);
    let r = run(&deps, None).await.expect("answered");
    assert_eq!(r.verdict, BakeVerdict::Watching, "{r:?}");
    assert_eq!(r.standby_note, None);
    let standby = r.standby.expect("armed");
    assert_eq!(standby, armed());
    let calls = w.calls();
    let registered = position(&calls, &format!("RegisterTargets({STANDBY_ARN})"));
    let recorded = position(&calls, &format!("AddTags({TG_ARN} record Armed)"));
    let weighted = position(&calls, "ModifyListener(1/0)");
    assert!(registered < recorded && recorded < weighted, "{calls:?}");
}

#[tokio::test]
async fn a_retried_first_look_takes_its_own_record_over_instead_of_arming_twice() {
    let port = green_server().await;
    let mut w = World::new();
    w.standby = Some(ListenerShape::PlainForward);
    w.record_on_main = Some(armed());
    let deps = w.deps(port, vec![standby_bake(60)]);
    let r = run(&deps, None).await.expect("answered");
    assert_eq!(r.standby, Some(armed()));
    assert!(
        !w.calls().iter().any(|c| c.starts_with("RegisterTargets")
            || c.starts_with("ModifyListener")
            || c.starts_with("AddTags")),
        "{:?}",
        w.calls()
    );
}

#[tokio::test]
async fn a_listener_the_core_cannot_put_back_is_never_changed() {
    let port = green_server().await;
    let mut w = World::new();
    w.standby = Some(ListenerShape::RedirectAndForward);
    let deps = w.deps(port, vec![standby_bake(60)]);
    let r = run(&deps, None).await.expect("answered");
    assert_eq!(r.verdict, BakeVerdict::Watching, "{r:?}");
    assert_eq!(r.standby, None);
    let note = r.standby_note.expect("why not");
    assert!(note.contains("2 actions"), "{note}");
    assert!(
        !w.calls().iter().any(|c| c.starts_with("RegisterTargets")
            || c.starts_with("ModifyListener")
            || c.starts_with("AddTags")),
        "{:?}",
        w.calls()
    );
}

#[tokio::test]
async fn a_failed_bake_marks_the_record_switched_and_switches_before_the_stop() {
    let mut w = World::new();
    w.standby = Some(ListenerShape::PlainForward);
    w.alarm = StateValue::Alarm;
    w.live = (30, 5, 10, 2, "300");
    let deps = w.deps(1, vec![standby_bake(600)]);
    let mut previous = watching_since(greenlight_aws::now_ms() - 10_000);
    previous.standby = Some(armed());
    let r = run(&deps, Some(previous)).await.expect("answered");
    assert_eq!(r.verdict, BakeVerdict::Failed, "{r:?}");
    let standby = r.standby.expect("carried");
    assert_eq!(standby.weights, Weights::Switched);
    assert!(standby.switched_at_ms.is_some());
    let calls = w.calls();
    let recorded = position(&calls, &format!("AddTags({TG_ARN} record Switched)"));
    let switched = position(&calls, "ModifyListener(0/1)");
    let stopped = position(&calls, "StopDeployment(rollback)");
    assert!(recorded < switched && switched < stopped, "{calls:?}");
    assert!(
        r.summary.contains("traffic switched to blue"),
        "{}",
        r.summary
    );
}

#[tokio::test]
async fn a_passed_bake_puts_the_listener_back_and_removes_the_record_before_releasing_blue() {
    let port = green_server().await;
    let mut w = World::new();
    w.standby = Some(ListenerShape::PlainForward);
    w.live = (30, 5, 10, 2, "300");
    w.record_on_main = Some(armed());
    let deps = w.deps(port, vec![standby_bake(60)]);
    let mut previous = watching_since(greenlight_aws::now_ms() - 70_000);
    previous.standby = Some(armed());
    let started = std::time::Instant::now();
    let r = run(&deps, Some(previous)).await.expect("answered");
    assert_eq!(r.verdict, BakeVerdict::Passed, "{r:?}");
    assert!(r.standby.as_ref().is_some_and(|s| s.restored), "{r:?}");
    // Armed only: no settle is waited (the standby never had traffic).
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let calls = w.calls();
    let back = position(&calls, &format!("ModifyListener(plain {TG_ARN})"));
    let out = position(&calls, &format!("DeregisterTargets({STANDBY_ARN})"));
    let untagged = position(&calls, &format!("RemoveTags({TG_ARN})"));
    let released = position(&calls, "ContinueDeployment(TERMINATION_WAIT)");
    assert!(
        back < out && out < untagged && untagged < released,
        "{calls:?}"
    );
}
