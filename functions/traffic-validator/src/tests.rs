//! Handler tests: real SDK clients on aws-smithy-mocks, and real tiny HTTP
//! servers on loopback addresses standing in for the green instances.
//!
//! All instances of one deployment share one port (the target group's), like
//! real instances; distinct instances therefore live on distinct loopback
//! addresses 127.0.0.1, 127.0.0.2, 127.0.0.3 (all in 127.0.0.0/8). The mocked
//! EC2 DescribeInstances is the only source of these addresses.

use super::*;
use std::net::{Ipv4Addr, SocketAddr};

use aws_sdk_codedeploy::error::ErrorMetadata;
use aws_sdk_codedeploy::operation::batch_get_deployment_targets::BatchGetDeploymentTargetsOutput;
use aws_sdk_codedeploy::operation::continue_deployment::{
    ContinueDeploymentError, ContinueDeploymentOutput,
};
use aws_sdk_codedeploy::operation::get_deployment::{GetDeploymentError, GetDeploymentOutput};
use aws_sdk_codedeploy::operation::get_deployment_group::GetDeploymentGroupOutput;
use aws_sdk_codedeploy::operation::list_deployment_targets::ListDeploymentTargetsOutput;
use aws_sdk_codedeploy::operation::put_lifecycle_event_hook_execution_status::{
    PutLifecycleEventHookExecutionStatusError, PutLifecycleEventHookExecutionStatusOutput,
};
use aws_sdk_codedeploy::operation::stop_deployment::StopDeploymentOutput;
use aws_sdk_codedeploy::types::error::DeploymentDoesNotExistException;
use aws_sdk_codedeploy::types::{
    ComputePlatform as CdPlatform, DeploymentGroupInfo, DeploymentInfo,
    DeploymentStatus as CdStatus, DeploymentTarget, DeploymentTargetType, DeploymentWaitType,
    EcsTarget, EcsTaskSet, InstanceTarget, LifecycleEventStatus, LoadBalancerInfo,
    RevisionLocation, RevisionLocationType, S3Location, StopStatus, TargetGroupInfo, TargetLabel,
    TargetStatus,
};
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::types::{Instance, Reservation};
use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::DescribeTargetGroupsOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput;
use aws_sdk_elasticloadbalancingv2::types::{
    TargetDescription, TargetGroup, TargetHealth, TargetHealthDescription, TargetHealthStateEnum,
    TargetTypeEnum,
};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TASK_EVENT: &str = include_str!("../../../events/task-validate.json");
const HOOK_EVENT: &str = include_str!("../../../events/codedeploy-lifecycle-hook.json");
const DEPLOYMENT_ID: &str = "d-7Q2KJ3X1A";
const LABEL: &str = "20240501120000-42";
const REVISION_KEY: &str = "artifacts/shop/20240501120000-42.zip";
const TG_ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/shop-tg/73e2d6bc24d8a067";
const GREEN_TG_ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/shop-tg-green/0f7e1c2a9b3d4e5f";
/// ECS deployments keep their AppSpec in S3; its file name is the label.
const ECS_APPSPEC_KEY: &str = "appspecs/shop/20240501120000-42.yaml";
const ECS_TARGET_ID: &str = "shop-cluster:shop-service";

// ---------------------------------------------------------------- instances

/// What an instance's HTTP server answers: (status, body) for a path, or
/// `None` to accept the connection and never answer.
type Route = Arc<dyn Fn(&str) -> Option<(u16, String)> + Send + Sync>;

fn healthy(version: &'static str) -> Route {
    Arc::new(move |path| match path {
        "/health" => Some((200, "ok".to_string())),
        "/version" => Some((200, format!("{{\"version\":\"{version}\"}}\n"))),
        _ => Some((404, "not found".to_string())),
    })
}

fn failing(status: u16, body: &'static str) -> Route {
    Arc::new(move |_| Some((status, body.to_string())))
}

fn hanging() -> Route {
    Arc::new(|_| None)
}

/// The behaviour of one green instance.
enum Behaviour {
    Serves(Route),
    /// Nothing listens at its address: connection refused.
    Refuses,
}

async fn serve(listener: TcpListener, route: Route) {
    while let Ok((mut socket, _)) = listener.accept().await {
        let route = Arc::clone(&route);
        tokio::spawn(async move {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
            match route(&path) {
                Some((status, body)) => {
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                    let _ = socket.shutdown().await;
                }
                None => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            }
        });
    }
}

/// Starts the fleet: instance `n` (0-based) on 127.0.0.(n+1), all on one
/// port, which is returned with the instances' IPs.
async fn start_fleet(behaviours: Vec<Behaviour>) -> (u16, Vec<String>) {
    assert!(matches!(behaviours.first(), Some(Behaviour::Serves(_))));
    let ip = |n: usize| Ipv4Addr::new(127, 0, 0, n as u8 + 1);
    'attempt: for _ in 0..50 {
        let first = TcpListener::bind(SocketAddr::from((ip(0), 0)))
            .await
            .expect("bind 127.0.0.1");
        let port = first.local_addr().unwrap().port();
        let mut listeners = vec![Some(first)];
        for (n, b) in behaviours.iter().enumerate().skip(1) {
            match b {
                Behaviour::Serves(_) => {
                    match TcpListener::bind(SocketAddr::from((ip(n), port))).await {
                        Ok(l) => listeners.push(Some(l)),
                        Err(_) => continue 'attempt,
                    }
                }
                Behaviour::Refuses => listeners.push(None),
            }
        }
        for (listener, b) in listeners.into_iter().zip(&behaviours) {
            if let (Some(l), Behaviour::Serves(route)) = (listener, b) {
                tokio::spawn(serve(l, Arc::clone(route)));
            }
        }
        let ips = (0..behaviours.len()).map(|n| ip(n).to_string()).collect();
        return (port, ips);
    }
    panic!("could not bind one port on every loopback address");
}

// ---------------------------------------------------------------- AWS mocks

fn deployment_info(status: CdStatus, platform: CdPlatform, key: &str) -> DeploymentInfo {
    DeploymentInfo::builder()
        .deployment_id(DEPLOYMENT_ID)
        .application_name("shop")
        .deployment_group_name("shop-bluegreen")
        .status(status)
        .compute_platform(platform)
        .revision(
            RevisionLocation::builder()
                .revision_type(RevisionLocationType::S3)
                .s3_location(
                    S3Location::builder()
                        .bucket("greenlight-artifacts-111122223333")
                        .key(key)
                        .build(),
                )
                .build(),
        )
        .build()
}

fn instance_target(id: &str, label: TargetLabel) -> DeploymentTarget {
    DeploymentTarget::builder()
        .deployment_target_type(DeploymentTargetType::InstanceTarget)
        .instance_target(
            InstanceTarget::builder()
                .deployment_id(DEPLOYMENT_ID)
                .target_id(id)
                .target_arn(format!("arn:aws:ec2:us-east-1:111122223333:instance/{id}"))
                .instance_label(label)
                .status(TargetStatus::Ready)
                .build(),
        )
        .build()
}

/// One test's world.
struct World {
    status: CdStatus,
    /// Green instance ids with the address EC2 answers (None = unknown to EC2).
    green: Vec<(String, Option<String>)>,
    blue: Vec<String>,
    tg_port: u16,
    probe_port: Option<u16>,
    load_balancer: bool,
    get_deployment_fails: bool,
    continue_fails: bool,
    put_fails: bool,
    config: ProbeConfig,
    /// GetDeployment's computePlatform (`Server` unless a test says otherwise).
    platform: CdPlatform,
    /// The S3 revision key GetDeployment answers.
    revision_key: String,
    /// ECS: the task sets of the deployment's one ECS target
    /// (identifier, label, target group name).
    task_sets: Vec<(String, TargetLabel, Option<String>)>,
    /// ECS: the green target group's target type and registered targets (id, port).
    green_tg_type: TargetTypeEnum,
    green_tg_targets: Vec<(String, u16)>,
}

impl World {
    fn new(port: u16, ips: &[String]) -> Self {
        Self {
            status: CdStatus::Ready,
            green: ips
                .iter()
                .enumerate()
                .map(|(n, ip)| (format!("i-0green{n}"), Some(ip.clone())))
                .collect(),
            blue: vec!["i-0blue0".into()],
            tg_port: port,
            probe_port: None,
            load_balancer: true,
            get_deployment_fails: false,
            continue_fails: false,
            put_fails: false,
            platform: CdPlatform::Server,
            revision_key: REVISION_KEY.to_string(),
            task_sets: Vec::new(),
            green_tg_type: TargetTypeEnum::Ip,
            green_tg_targets: Vec::new(),
            config: ProbeConfig {
                path: "/health".into(),
                version_path: Some("/version".into()),
                port: None,
                expected_status: 200,
                required_successes: 3,
                probe_timeout_ms: 300,
                interval_ms: 20,
                deadline_ms: 500,
            },
        }
    }

    /// An ECS deployment: its green task set on `shop-tg-green` with these
    /// targets registered (ip type), its blue task set on `shop-tg-blue`.
    fn ecs(mut self, targets: Vec<(String, u16)>) -> Self {
        self.platform = CdPlatform::Ecs;
        self.revision_key = ECS_APPSPEC_KEY.to_string();
        self.green.clear();
        self.blue.clear();
        self.task_sets = vec![
            (
                "ecs-svc/1111111111111111111".into(),
                TargetLabel::Blue,
                Some("shop-tg-blue".into()),
            ),
            (
                "ecs-svc/2222222222222222222".into(),
                TargetLabel::Green,
                Some("shop-tg-green".into()),
            ),
        ];
        self.green_tg_targets = targets;
        self
    }

    fn build(self) -> Harness {
        let status = self.status.clone();
        let (platform, revision_key) = (self.platform.clone(), self.revision_key.clone());
        let get = if self.get_deployment_fails {
            mock!(aws_sdk_codedeploy::Client::get_deployment).then_error(|| {
                GetDeploymentError::generic(
                    ErrorMetadata::builder()
                        .code("ThrottlingException")
                        .message("Rate exceeded")
                        .build(),
                )
            })
        } else {
            mock!(aws_sdk_codedeploy::Client::get_deployment)
                .match_requests(|r| r.deployment_id() == Some(DEPLOYMENT_ID))
                .then_output(move || {
                    GetDeploymentOutput::builder()
                        .deployment_info(deployment_info(
                            status.clone(),
                            platform.clone(),
                            &revision_key,
                        ))
                        .build()
                })
        };
        let mut targets: Vec<DeploymentTarget> = self
            .blue
            .iter()
            .map(|id| instance_target(id, TargetLabel::Blue))
            .collect();
        targets.extend(
            self.green
                .iter()
                .map(|(id, _)| instance_target(id, TargetLabel::Green)),
        );
        let mut ids: Vec<String> = self
            .blue
            .iter()
            .cloned()
            .chain(self.green.iter().map(|(id, _)| id.clone()))
            .collect();
        if !self.task_sets.is_empty() {
            let mut ecs = EcsTarget::builder()
                .deployment_id(DEPLOYMENT_ID)
                .target_id(ECS_TARGET_ID)
                .status(TargetStatus::InProgress);
            for (id, label, tg) in &self.task_sets {
                let mut set = EcsTaskSet::builder()
                    .identifer(id)
                    .task_set_label(label.clone())
                    .status(if *label == TargetLabel::Green {
                        "ACTIVE"
                    } else {
                        "PRIMARY"
                    });
                if let Some(tg) = tg {
                    set = set.target_group(TargetGroupInfo::builder().name(tg).build());
                }
                ecs = ecs.task_sets_info(set.build());
            }
            targets.push(
                DeploymentTarget::builder()
                    .deployment_target_type(DeploymentTargetType::EcsTarget)
                    .ecs_target(ecs.build())
                    .build(),
            );
            ids.push(ECS_TARGET_ID.to_string());
        }
        let list = mock!(aws_sdk_codedeploy::Client::list_deployment_targets)
            .match_requests(|r| r.deployment_id() == Some(DEPLOYMENT_ID))
            .then_output(move || {
                ListDeploymentTargetsOutput::builder()
                    .set_target_ids(Some(ids.clone()))
                    .build()
            });
        let batch = mock!(aws_sdk_codedeploy::Client::batch_get_deployment_targets)
            .then_compute_output(move |r| {
                let asked = r.target_ids();
                BatchGetDeploymentTargetsOutput::builder()
                    .set_deployment_targets(Some(
                        targets
                            .iter()
                            .filter(|t| {
                                let id = t
                                    .instance_target()
                                    .and_then(|i| i.target_id())
                                    .or_else(|| t.ecs_target().and_then(|e| e.target_id()));
                                asked.iter().any(|a| Some(a.as_str()) == id)
                            })
                            .cloned()
                            .collect(),
                    ))
                    .build()
            });
        let load_balancer = self.load_balancer;
        let group = mock!(aws_sdk_codedeploy::Client::get_deployment_group)
            .match_requests(|r| {
                r.application_name() == Some("shop")
                    && r.deployment_group_name() == Some("shop-bluegreen")
            })
            .then_output(move || {
                let mut info = DeploymentGroupInfo::builder()
                    .application_name("shop")
                    .deployment_group_name("shop-bluegreen");
                if load_balancer {
                    info = info.load_balancer_info(
                        LoadBalancerInfo::builder()
                            .target_group_info_list(
                                TargetGroupInfo::builder().name("shop-tg").build(),
                            )
                            .build(),
                    );
                }
                GetDeploymentGroupOutput::builder()
                    .deployment_group_info(info.build())
                    .build()
            });
        let continue_ok = mock!(aws_sdk_codedeploy::Client::continue_deployment)
            .match_requests(|r| {
                r.deployment_id() == Some(DEPLOYMENT_ID)
                    && r.deployment_wait_type() == Some(&DeploymentWaitType::ReadyWait)
            })
            .then_output(|| ContinueDeploymentOutput::builder().build());
        let continue_err = mock!(aws_sdk_codedeploy::Client::continue_deployment)
            .match_requests(|r| {
                r.deployment_id() == Some(DEPLOYMENT_ID)
                    && r.deployment_wait_type() == Some(&DeploymentWaitType::ReadyWait)
            })
            .then_error(|| {
                ContinueDeploymentError::generic(
                    ErrorMetadata::builder()
                        .code("DeploymentIsNotInReadyStateException")
                        .message("The deployment is not in the Ready state")
                        .build(),
                )
            });
        let continue_rule = if self.continue_fails {
            continue_err
        } else {
            continue_ok
        };
        let stop = mock!(aws_sdk_codedeploy::Client::stop_deployment)
            .match_requests(|r| {
                r.deployment_id() == Some(DEPLOYMENT_ID) && r.auto_rollback_enabled() == Some(true)
            })
            .then_output(|| {
                StopDeploymentOutput::builder()
                    .status(StopStatus::Pending)
                    .status_message("Stopping the deployment")
                    .build()
            });
        let hook_id: String = serde_json::from_str::<serde_json::Value>(HOOK_EVENT).unwrap()
            ["LifecycleEventHookExecutionId"]
            .as_str()
            .unwrap()
            .to_string();
        let put_rule = |status: LifecycleEventStatus| {
            let hook_id = hook_id.clone();
            let put = mock!(aws_sdk_codedeploy::Client::put_lifecycle_event_hook_execution_status)
                .match_requests(move |r| {
                    r.deployment_id() == Some(DEPLOYMENT_ID)
                        && r.lifecycle_event_hook_execution_id() == Some(hook_id.as_str())
                        && r.status() == Some(&status)
                });
            put.then_output(|| PutLifecycleEventHookExecutionStatusOutput::builder().build())
        };
        let (put_succeeded, put_failed) = if self.put_fails {
            let err = || {
                mock!(aws_sdk_codedeploy::Client::put_lifecycle_event_hook_execution_status)
                    .then_error(|| {
                        PutLifecycleEventHookExecutionStatusError::generic(
                            ErrorMetadata::builder()
                                .code("ThrottlingException")
                                .message("Rate exceeded")
                                .build(),
                        )
                    })
            };
            (err(), err())
        } else {
            (
                put_rule(LifecycleEventStatus::Succeeded),
                put_rule(LifecycleEventStatus::Failed),
            )
        };

        let green_ids: Vec<String> = self.green.iter().map(|(id, _)| id.clone()).collect();
        let known: Vec<(String, String)> = self
            .green
            .iter()
            .filter_map(|(id, ip)| ip.clone().map(|ip| (id.clone(), ip)))
            .collect();
        let describe = mock!(aws_sdk_ec2::Client::describe_instances)
            .match_requests(move |r| {
                // Only the deployment's green instances are ever looked up.
                let asked = r.instance_ids();
                !asked.is_empty() && asked.iter().all(|id| green_ids.contains(id))
            })
            .then_output(move || {
                let instances = known
                    .iter()
                    .map(|(id, ip)| {
                        Instance::builder()
                            .instance_id(id)
                            .private_ip_address(ip)
                            .build()
                    })
                    .collect();
                DescribeInstancesOutput::builder()
                    .reservations(
                        Reservation::builder()
                            .set_instances(Some(instances))
                            .build(),
                    )
                    .build()
            });
        let tg_port = self.tg_port;
        let tgs = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_groups)
            .then_output(move || {
                DescribeTargetGroupsOutput::builder()
                    .target_groups(
                        TargetGroup::builder()
                            .target_group_arn(TG_ARN)
                            .target_group_name("shop-tg")
                            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
                            .port(i32::from(tg_port))
                            .build(),
                    )
                    .build()
            });

        let codedeploy = mock_client!(
            aws_sdk_codedeploy,
            RuleMode::MatchAny,
            [
                &get,
                &list,
                &batch,
                &group,
                &continue_rule,
                &stop,
                &put_succeeded,
                &put_failed
            ],
            // One attempt: a throttled answer reaches the shell at once.
            |c| c.retry_config(
                aws_sdk_codedeploy::config::retry::RetryConfig::standard().with_max_attempts(1)
            )
        );
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&describe]);
        // ECS: the green target group by name, and the targets registered
        // in each group. The blue group's target (loopback, nothing listens)
        // must never be read, let alone probed.
        let (green_tg_type, green_port) = (self.green_tg_type.clone(), self.tg_port);
        let green_tg = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_groups)
            .match_requests(|r| r.names() == ["shop-tg-green"])
            .then_output(move || {
                DescribeTargetGroupsOutput::builder()
                    .target_groups(
                        TargetGroup::builder()
                            .target_group_arn(GREEN_TG_ARN)
                            .target_group_name("shop-tg-green")
                            .target_type(green_tg_type.clone())
                            .port(i32::from(green_port))
                            .build(),
                    )
                    .build()
            });
        let health = |targets: Vec<(String, u16)>| {
            move || {
                DescribeTargetHealthOutput::builder()
                    .set_target_health_descriptions(Some(
                        targets
                            .iter()
                            .map(|(id, port)| {
                                TargetHealthDescription::builder()
                                    .target(
                                        TargetDescription::builder()
                                            .id(id)
                                            .port(i32::from(*port))
                                            .build(),
                                    )
                                    .target_health(
                                        TargetHealth::builder()
                                            .state(TargetHealthStateEnum::Initial)
                                            .build(),
                                    )
                                    .build()
                            })
                            .collect(),
                    ))
                    .build()
            }
        };
        let green_health = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_health)
            .match_requests(|r| r.target_group_arn() == Some(GREEN_TG_ARN))
            .then_output(health(self.green_tg_targets.clone()));
        let blue_health = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_health)
            .then_output(health(vec![("127.0.0.9".to_string(), 9)]));
        let elbv2 = mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::MatchAny,
            [&green_tg, &tgs, &green_health, &blue_health]
        );
        let mut probe = self.config.clone();
        probe.port = self.probe_port;
        let config = Config::new(probe).expect("test config");
        Harness {
            deps: Deps::from_clients(codedeploy, ec2, elbv2, config),
            continue_rule,
            stop,
            put_succeeded,
            put_failed,
            describe,
            group,
            list,
            green_tg,
            green_health,
            blue_health,
        }
    }
}

struct Harness {
    deps: Deps,
    continue_rule: Rule,
    stop: Rule,
    put_succeeded: Rule,
    put_failed: Rule,
    describe: Rule,
    group: Rule,
    list: Rule,
    green_tg: Rule,
    green_health: Rule,
    blue_health: Rule,
}

impl Harness {
    async fn task(&self) -> Result<ValidationReport, Error> {
        self.task_at_retry(0).await
    }

    /// The Validate task as the state machine sends it on its
    /// `retry_count`-th retry (`$$.State.RetryCount`).
    async fn task_at_retry(&self, retry_count: u32) -> Result<ValidationReport, Error> {
        let mut event: serde_json::Value = serde_json::from_str(TASK_EVENT).unwrap();
        event["retryCount"] = retry_count.into();
        let request: Request = serde_json::from_value(event).unwrap();
        assert!(matches!(request, Request::Task(_)));
        match handler(LambdaEvent::new(request, Context::default()), &self.deps).await? {
            Response::Validation(r) => Ok(r),
            other => panic!("task answered {other:?}"),
        }
    }

    async fn hook(&self) -> Result<HookReport, Error> {
        let request: Request = serde_json::from_str(HOOK_EVENT).unwrap();
        assert!(matches!(request, Request::Hook(_)));
        match handler(LambdaEvent::new(request, Context::default()), &self.deps).await? {
            Response::Hook(r) => Ok(r),
            other => panic!("hook answered {other:?}"),
        }
    }
}

fn print_json(what: &str, value: &impl Serialize) {
    println!(
        "--- {what} ---\n{}",
        serde_json::to_string_pretty(value).unwrap()
    );
}

// ---------------------------------------------------------------- requests

#[test]
fn events_parse_into_their_entry_points() {
    match serde_json::from_str::<Request>(TASK_EVENT).unwrap() {
        Request::Task(t) => {
            assert_eq!(t.action, Action::Validate);
            assert_eq!(
                t.pipeline
                    .deployment
                    .as_ref()
                    .map(|d| d.deployment_id.as_str()),
                Some(DEPLOYMENT_ID)
            );
            assert_eq!(t.pipeline.input.revision.label, LABEL);
        }
        other => panic!("{other:?}"),
    }
    match serde_json::from_str::<Request>(HOOK_EVENT).unwrap() {
        Request::Hook(h) => {
            assert_eq!(h.deployment_id, DEPLOYMENT_ID);
            assert!(h.lifecycle_event_hook_execution_id.starts_with("eyJ"));
        }
        other => panic!("{other:?}"),
    }
    let mut other: serde_json::Value = serde_json::from_str(TASK_EVENT).unwrap();
    other["action"] = "tune".into();
    match serde_json::from_value::<Request>(other).unwrap() {
        Request::Task(t) => assert_eq!(t.action, Action::Unsupported),
        other => panic!("{other:?}"),
    }
}

#[test]
fn error_types_are_stable() {
    let cases = [
        (Error::InvalidInput("x".into()), "InvalidInput"),
        (Error::DeploymentNotFound("x".into()), "DeploymentNotFound"),
        (
            Error::DeploymentNotReady {
                deployment_id: "d".into(),
                status: DeploymentStatus::InProgress,
            },
            "DeploymentNotReady",
        ),
        (
            Error::NoProbePort {
                application: "a".into(),
                group: "g".into(),
                detail: "x".into(),
            },
            "NoProbePort",
        ),
        (
            Error::Aws(AwsError::unexpected("StopDeployment", "d", "x")),
            "AwsError",
        ),
        (
            Error::Aws(AwsError {
                transient: true,
                ..AwsError::unexpected("StopDeployment", "d", "x")
            }),
            "AwsTransient",
        ),
        (
            Error::LoadBalancer(LbError::NoLoadBalancer {
                application: "a".into(),
                group: "g".into(),
            }),
            "NoLoadBalancer",
        ),
    ];
    for (error, name) in cases {
        let message = error.to_string();
        let d = Diagnostic::from(error);
        assert_eq!(d.error_type, name);
        assert_eq!(d.error_message, message);
    }
}

#[test]
fn config_reads_the_environment_and_rejects_bad_values() {
    // The only test that touches these variables.
    let vars = [
        "PROBE_PATH",
        "VERSION_PATH",
        "PROBE_PORT",
        "EXPECTED_STATUS",
        "REQUIRED_SUCCESSES",
        "PROBE_TIMEOUT_MS",
        "PROBE_INTERVAL_MS",
        "VALIDATION_DEADLINE_SECONDS",
    ];
    for v in vars {
        std::env::remove_var(v);
    }
    let c = Config::from_env().unwrap();
    assert_eq!(c.probe, ProbeConfig::default());

    std::env::set_var("PROBE_PATH", "/ready");
    std::env::set_var("VERSION_PATH", "");
    std::env::set_var("PROBE_PORT", "8080");
    std::env::set_var("EXPECTED_STATUS", "204");
    std::env::set_var("REQUIRED_SUCCESSES", "5");
    std::env::set_var("PROBE_TIMEOUT_MS", "500");
    std::env::set_var("PROBE_INTERVAL_MS", "250");
    std::env::set_var("VALIDATION_DEADLINE_SECONDS", "30");
    let c = Config::from_env().unwrap();
    assert_eq!(
        c.probe,
        ProbeConfig {
            path: "/ready".into(),
            version_path: None,
            port: Some(8080),
            expected_status: 204,
            required_successes: 5,
            probe_timeout_ms: 500,
            interval_ms: 250,
            deadline_ms: 30_000,
        }
    );

    std::env::set_var("PROBE_PORT", "http");
    assert!(matches!(
        Config::from_env(),
        Err(ConfigError::Invalid {
            name: "PROBE_PORT",
            ..
        })
    ));
    std::env::set_var("PROBE_PORT", "0");
    assert!(matches!(
        Config::from_env(),
        Err(ConfigError::Invalid {
            name: "PROBE_PORT",
            ..
        })
    ));
    std::env::remove_var("PROBE_PORT");
    std::env::set_var("REQUIRED_SUCCESSES", "0");
    let e = Config::from_env().unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::Invalid {
                name: "REQUIRED_SUCCESSES",
                ..
            }
        ),
        "{e}"
    );
    std::env::set_var("REQUIRED_SUCCESSES", "3");
    std::env::set_var("PROBE_PATH", "health");
    let e = Config::from_env().unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::Invalid {
                name: "PROBE_PATH",
                ..
            }
        ),
        "{e}"
    );
    std::env::set_var("PROBE_PATH", "/health");
    std::env::set_var("VERSION_PATH", "version");
    let e = Config::from_env().unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::Invalid {
                name: "VERSION_PATH",
                ..
            }
        ),
        "{e}"
    );
    std::env::remove_var("VERSION_PATH");
    std::env::set_var("EXPECTED_STATUS", "42");
    let e = Config::from_env().unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::Invalid {
                name: "EXPECTED_STATUS",
                ..
            }
        ),
        "{e}"
    );
    for v in vars {
        std::env::remove_var(v);
    }
}

// ---------------------------------------------------------------- EC2 mode

#[tokio::test]
async fn all_green_instances_pass_and_the_deployment_continues() {
    let (port, ips) = start_fleet(vec![
        Behaviour::Serves(healthy(LABEL)),
        Behaviour::Serves(healthy(LABEL)),
    ])
    .await;
    let h = World::new(port, &ips).build();
    let report = h.task().await.unwrap();
    print_json("EC2 mode, all green instances pass", &report);

    assert!(report.passed);
    assert_eq!(report.action, ValidationAction::Continued);
    assert_eq!(report.deployment_id, DEPLOYMENT_ID);
    assert_eq!(h.continue_rule.num_calls(), 1);
    assert_eq!(h.stop.num_calls(), 0);
    // The port came from the deployment group's target group.
    assert_eq!(h.group.num_calls(), 1);
    assert_eq!(h.describe.num_calls(), 1);
    assert_eq!(report.instances.len(), 2, "the blue instance is not probed");
    for (n, e) in report.instances.iter().enumerate() {
        assert_eq!(e.instance_id, format!("i-0green{n}"));
        assert_eq!(e.address, format!("127.0.0.{}:{port}", n + 1));
        assert!(e.passed);
        assert_eq!(e.probes, 3);
        assert_eq!(e.consecutive_successes, 3);
        assert_eq!(e.last_status, Some(200));
        assert_eq!(
            e.last_body.as_deref(),
            Some(format!("{{\"version\":\"{LABEL}\"}}").as_str())
        );
    }
    assert!(report
        .summary
        .starts_with("All 2 green instances of deployment d-7Q2KJ3X1A passed"));
    // The report is the state machine's $.validation.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["passed"], true);
    assert_eq!(json["action"], "continued");
    assert_eq!(json["instances"][0]["consecutiveSuccesses"], 3);
}

#[tokio::test]
async fn one_bad_instance_stops_the_deployment_with_rollback_and_is_named() {
    let (port, ips) = start_fleet(vec![
        Behaviour::Serves(healthy(LABEL)),
        Behaviour::Serves(failing(503, "Service Unavailable: db\r\npool exhausted")),
    ])
    .await;
    let h = World::new(port, &ips).build();
    let report = h.task().await.unwrap();
    print_json("EC2 mode, one instance answers 503", &report);

    assert!(!report.passed);
    assert_eq!(report.action, ValidationAction::Stopped);
    assert_eq!(h.stop.num_calls(), 1);
    assert_eq!(h.continue_rule.num_calls(), 0);
    assert_eq!(
        report.summary,
        format!(
            "Green instance i-0green1 (127.0.0.2:{port}) of deployment d-7Q2KJ3X1A failed validation: GET /health answered 503 (expected 200) \"Service Unavailable: db pool exhausted\"; 0 of 3 consecutive successes after {} probes.",
            report.instances[1].probes
        )
    );
    let bad = &report.instances[1];
    assert!(!bad.passed);
    assert_eq!(bad.last_status, Some(503));
    assert_eq!(
        bad.last_body.as_deref(),
        Some("Service Unavailable: db pool exhausted")
    );
    assert!(
        bad.probes >= 10,
        "probed until the streak could no longer fit"
    );
    assert!(report.instances[0].passed);
}

#[tokio::test]
async fn wrong_version_stops_the_deployment() {
    let (port, ips) = start_fleet(vec![Behaviour::Serves(healthy("20240430090000-41"))]).await;
    let h = World::new(port, &ips).build();
    let report = h.task().await.unwrap();
    print_json("EC2 mode, the old version answers", &report);

    assert!(!report.passed);
    assert_eq!(h.stop.num_calls(), 1);
    assert_eq!(h.continue_rule.num_calls(), 0);
    assert!(
        report.summary.contains(
            "GET /version answered 200 \"{\"version\":\"20240430090000-41\"}\", which does not contain revision \"20240501120000-42\""
        ),
        "{}",
        report.summary
    );
    assert_eq!(report.instances[0].last_status, Some(200));
}

#[tokio::test]
async fn connection_refused_stops_the_deployment() {
    let (port, ips) = start_fleet(vec![
        Behaviour::Serves(healthy(LABEL)),
        Behaviour::Serves(healthy(LABEL)),
        Behaviour::Refuses,
    ])
    .await;
    let h = World::new(port, &ips).build();
    let report = h.task().await.unwrap();
    print_json("EC2 mode, one instance refuses connections", &report);

    assert!(!report.passed);
    assert_eq!(report.action, ValidationAction::Stopped);
    assert_eq!(h.stop.num_calls(), 1);
    let down = &report.instances[2];
    assert_eq!(down.address, format!("127.0.0.3:{port}"));
    assert_eq!(down.last_status, None);
    let error = down.last_error.as_deref().unwrap();
    assert!(error.starts_with("connection failed"), "{error}");
    assert!(error.to_lowercase().contains("refused"), "{error}");
    assert!(
        report.summary.starts_with(&format!(
            "Green instance i-0green2 (127.0.0.3:{port}) of deployment d-7Q2KJ3X1A failed validation: GET /health got no answer: connection failed"
        )),
        "{}",
        report.summary
    );
}

#[tokio::test]
async fn an_instance_that_never_answers_times_out() {
    let (port, ips) = start_fleet(vec![Behaviour::Serves(hanging())]).await;
    let mut w = World::new(port, &ips);
    w.config.probe_timeout_ms = 50;
    w.config.deadline_ms = 200;
    let h = w.build();
    let report = h.task().await.unwrap();
    assert!(!report.passed);
    assert_eq!(h.stop.num_calls(), 1);
    let error = report.instances[0].last_error.as_deref().unwrap();
    // Whichever of the request's and the whole probe's timeouts fires first
    // (both are the probe timeout), the operator reads a timeout.
    assert!(error.contains("timed out after 50 ms"), "{error}");
}

#[tokio::test]
async fn no_green_targets_is_a_failed_verdict_that_stops_the_deployment() {
    let mut w = World::new(1, &[]);
    w.green.clear();
    let h = w.build();
    let report = h.task().await.unwrap();
    print_json("EC2 mode, no green targets", &report);

    assert!(!report.passed);
    assert_eq!(report.action, ValidationAction::Stopped);
    assert!(report.instances.is_empty());
    assert!(
        report.summary.contains("no green targets"),
        "{}",
        report.summary
    );
    assert_eq!(h.stop.num_calls(), 1);
    assert_eq!(h.describe.num_calls(), 0);
    assert_eq!(h.group.num_calls(), 0);
}

#[tokio::test]
async fn an_instance_unknown_to_ec2_fails_the_gate() {
    let (port, ips) = start_fleet(vec![Behaviour::Serves(healthy(LABEL))]).await;
    let mut w = World::new(port, &ips);
    w.green.push(("i-0gone".into(), None));
    let h = w.build();
    let report = h.task().await.unwrap();
    assert!(!report.passed);
    assert_eq!(h.stop.num_calls(), 1);
    assert!(
        report
            .summary
            .starts_with("Green instance i-0gone (no address) of deployment d-7Q2KJ3X1A failed validation: EC2 knows no private IP address"),
        "{}",
        report.summary
    );
    assert_eq!(report.instances[1].address, "");
}

#[tokio::test]
async fn probe_port_skips_the_target_group_lookup() {
    let (port, ips) = start_fleet(vec![Behaviour::Serves(healthy(LABEL))]).await;
    let mut w = World::new(9, &ips);
    w.probe_port = Some(port);
    w.load_balancer = false;
    let h = w.build();
    let report = h.task().await.unwrap();
    assert!(report.passed);
    assert_eq!(report.instances[0].address, format!("127.0.0.1:{port}"));
    assert_eq!(h.group.num_calls(), 0);
    assert_eq!(h.continue_rule.num_calls(), 1);
}

#[tokio::test]
async fn no_version_path_checks_health_only() {
    let (port, ips) = start_fleet(vec![Behaviour::Serves(healthy("something-else"))]).await;
    let mut w = World::new(port, &ips);
    w.config.version_path = None;
    let h = w.build();
    let report = h.task().await.unwrap();
    assert!(report.passed);
    assert_eq!(report.instances[0].last_body.as_deref(), Some("ok"));
}

#[tokio::test]
async fn a_group_without_target_group_and_no_probe_port_is_no_probe_port() {
    let mut w = World::new(1, &["127.0.0.1".to_string()]);
    w.load_balancer = false;
    let h = w.build();
    let e = h.task().await.unwrap_err();
    assert_eq!(e.error_type(), "NoProbePort", "{e}");
    assert!(e.to_string().contains("set PROBE_PORT"), "{e}");
    assert_eq!(h.continue_rule.num_calls() + h.stop.num_calls(), 0);
}

#[tokio::test]
async fn a_missing_deployment_is_deployment_not_found() {
    let codedeploy = mock_client!(
        aws_sdk_codedeploy,
        RuleMode::MatchAny,
        [
            &mock!(aws_sdk_codedeploy::Client::get_deployment).then_error(|| {
                GetDeploymentError::DeploymentDoesNotExistException(
                    DeploymentDoesNotExistException::builder()
                        .message("The deployment d-7Q2KJ3X1A could not be found")
                        .build(),
                )
            })
        ]
    );
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, Vec::<&Rule>::new());
    let elbv2 = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::MatchAny,
        Vec::<&Rule>::new()
    );
    let deps = Deps::from_clients(
        codedeploy,
        ec2,
        elbv2,
        Config::new(ProbeConfig::default()).unwrap(),
    );
    let request: Request = serde_json::from_str(TASK_EVENT).unwrap();
    let e = handler(LambdaEvent::new(request, Context::default()), &deps)
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "DeploymentNotFound", "{e}");
    assert!(e.to_string().contains("d-7Q2KJ3X1A"), "{e}");
}

#[tokio::test]
async fn a_deployment_not_waiting_in_ready_is_not_probed() {
    for status in [CdStatus::InProgress, CdStatus::Stopped, CdStatus::Succeeded] {
        let mut w = World::new(1, &["127.0.0.1".to_string()]);
        w.status = status.clone();
        let h = w.build();
        let e = h.task().await.unwrap_err();
        assert_eq!(e.error_type(), "DeploymentNotReady", "{status:?}: {e}");
        assert_eq!(h.describe.num_calls(), 0);
        assert_eq!(h.continue_rule.num_calls() + h.stop.num_calls(), 0);
    }
}

#[tokio::test]
async fn continue_deployment_failing_is_an_aws_error() {
    let (port, ips) = start_fleet(vec![Behaviour::Serves(healthy(LABEL))]).await;
    let mut w = World::new(port, &ips);
    w.continue_fails = true;
    let h = w.build();
    let e = h.task().await.unwrap_err();
    assert_eq!(e.error_type(), "AwsError");
    assert!(
        e.to_string().contains(
            "ContinueDeployment on d-7Q2KJ3X1A failed (DeploymentIsNotInReadyStateException)"
        ),
        "{e}"
    );
}

/// Defect 2 (issue 9): a throttled read that outlasts the SDK's retries is
/// `AwsTransient`, and nothing was continued or stopped.
#[tokio::test]
async fn a_throttled_read_is_transient_and_acts_on_nothing() {
    let mut w = World::new(1, &[]);
    w.get_deployment_fails = true;
    let h = w.build();
    let e = h.task().await.unwrap_err();
    assert_eq!(Diagnostic::from(e).error_type, "AwsTransient");
    assert_eq!(h.continue_rule.num_calls() + h.stop.num_calls(), 0);
}

/// Defect 2 (issue 9), Validate: the state machine retries Validate on
/// `AwsTransient` (a throttled read used to end the execution with the
/// healthy deployment left in Ready, rolled back when the Ready wait ran
/// out). A retry after a ContinueDeployment that took effect finds the
/// deployment past Ready and reports it continued, touching nothing.
#[tokio::test]
async fn a_retry_after_a_continue_that_took_effect_reports_it_and_writes_nothing() {
    for status in [CdStatus::InProgress, CdStatus::Succeeded] {
        let mut w = World::new(1, &["127.0.0.1".to_string()]);
        w.status = status.clone();
        let h = w.build();
        let report = h.task_at_retry(1).await.unwrap();
        assert!(report.passed, "{status:?}: {report:?}");
        assert_eq!(report.action, ValidationAction::ContinuedEarlier);
        assert!(
            report.summary.contains("earlier attempt"),
            "{}",
            report.summary
        );
        assert_eq!(h.continue_rule.num_calls() + h.stop.num_calls(), 0);
        assert_eq!(h.describe.num_calls(), 0, "nothing probed again");
    }
}

/// A retry that finds the deployment still in Ready (the earlier attempt
/// failed before any write took effect) gates it again as a first run does.
#[tokio::test]
async fn a_retry_finding_the_deployment_still_ready_gates_it_again() {
    let (port, ips) = start_fleet(vec![Behaviour::Serves(healthy(LABEL))]).await;
    let h = World::new(port, &ips).build();
    let report = h.task_at_retry(2).await.unwrap();
    assert!(report.passed, "{report:?}");
    assert_eq!(report.action, ValidationAction::Continued);
    assert_eq!(h.continue_rule.num_calls(), 1);
}

/// A retry never claims a stopped deployment was continued.
#[tokio::test]
async fn a_retry_finding_the_deployment_stopped_is_not_ready() {
    let mut w = World::new(1, &["127.0.0.1".to_string()]);
    w.status = CdStatus::Stopped;
    let h = w.build();
    let e = h.task_at_retry(1).await.unwrap_err();
    assert_eq!(e.error_type(), "DeploymentNotReady", "{e}");
    assert_eq!(h.continue_rule.num_calls() + h.stop.num_calls(), 0);
}

#[tokio::test]
async fn invalid_task_input_is_invalid_input() {
    let h = World::new(1, &[]).build();
    let mut unknown: serde_json::Value = serde_json::from_str(TASK_EVENT).unwrap();
    unknown["action"] = "restore".into();
    let mut no_deployment: serde_json::Value = serde_json::from_str(TASK_EVENT).unwrap();
    no_deployment["pipeline"]
        .as_object_mut()
        .unwrap()
        .remove("deployment");
    for payload in [unknown, no_deployment] {
        let request: Request = serde_json::from_value(payload).unwrap();
        let e = handler(LambdaEvent::new(request, Context::default()), &h.deps)
            .await
            .unwrap_err();
        assert_eq!(e.error_type(), "InvalidInput", "{e}");
    }
}

// ---------------------------------------------------------------- hook mode

#[tokio::test]
async fn hook_mode_success_reports_succeeded() {
    let (port, ips) = start_fleet(vec![
        Behaviour::Serves(healthy(LABEL)),
        Behaviour::Serves(healthy(LABEL)),
    ])
    .await;
    let mut w = World::new(port, &ips);
    // Hook mode runs while the deployment is in progress.
    w.status = CdStatus::InProgress;
    let h = w.build();
    let report = h.hook().await.unwrap();
    print_json("hook mode, all green instances pass", &report);

    assert_eq!(report.hook_status, HookStatus::Succeeded);
    assert!(report.passed);
    assert_eq!(h.put_succeeded.num_calls(), 1);
    assert_eq!(h.put_failed.num_calls(), 0);
    assert_eq!(h.continue_rule.num_calls() + h.stop.num_calls(), 0);
    assert_eq!(report.instances.len(), 2);
    assert_eq!(report.error_type, None);
}

#[tokio::test]
async fn hook_mode_failing_instance_reports_failed() {
    let (port, ips) = start_fleet(vec![
        Behaviour::Serves(healthy(LABEL)),
        Behaviour::Serves(healthy("20240430090000-41")),
    ])
    .await;
    let h = World::new(port, &ips).build();
    let report = h.hook().await.unwrap();
    assert_eq!(report.hook_status, HookStatus::Failed);
    assert!(!report.passed);
    assert!(report.summary.contains("i-0green1"), "{}", report.summary);
    assert_eq!(h.put_failed.num_calls(), 1);
    assert_eq!(h.put_succeeded.num_calls(), 0);
    assert_eq!(
        h.stop.num_calls(),
        0,
        "hook mode leaves stopping to CodeDeploy"
    );
}

#[tokio::test]
async fn hook_mode_internal_error_still_reports_failed() {
    let mut w = World::new(1, &[]);
    w.get_deployment_fails = true;
    let h = w.build();
    let report = h.hook().await.unwrap();
    print_json("hook mode, CodeDeploy read fails", &report);

    assert_eq!(report.hook_status, HookStatus::Failed);
    assert_eq!(report.error_type.as_deref(), Some("AwsTransient"));
    assert!(
        report.summary
            == "Deployment d-7Q2KJ3X1A could not be validated (AwsTransient: GetDeployment on d-7Q2KJ3X1A failed (ThrottlingException): Rate exceeded [transient: retrying later may succeed]); the lifecycle hook was reported Failed.",
        "{}",
        report.summary
    );
    assert_eq!(h.put_failed.num_calls(), 1);
    assert_eq!(h.put_succeeded.num_calls(), 0);
}

#[tokio::test]
async fn hook_mode_without_green_instances_reports_failed() {
    let mut w = World::new(1, &[]);
    w.green.clear();
    let h = w.build();
    let report = h.hook().await.unwrap();
    assert_eq!(report.hook_status, HookStatus::Failed);
    assert!(report.summary.contains("no green targets"));
    assert_eq!(h.put_failed.num_calls(), 1);
}

#[tokio::test]
async fn hook_mode_put_failure_is_an_aws_error() {
    let mut w = World::new(1, &[]);
    w.green.clear();
    w.put_fails = true;
    let h = w.build();
    let e = h.hook().await.unwrap_err();
    assert_eq!(e.error_type(), "AwsTransient");
    assert!(
        e.to_string().starts_with(
            "PutLifecycleEventHookExecutionStatus on d-7Q2KJ3X1A failed (ThrottlingException)"
        ),
        "{e}"
    );
}

#[tokio::test]
async fn hook_mode_without_ids_is_invalid_input() {
    let h = World::new(1, &[]).build();
    let request: Request =
        serde_json::from_str(r#"{"DeploymentId": "", "LifecycleEventHookExecutionId": "x"}"#)
            .unwrap();
    let e = handler(LambdaEvent::new(request, Context::default()), &h.deps)
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "InvalidInput");
    assert_eq!(h.put_failed.num_calls() + h.put_succeeded.num_calls(), 0);
}

// ---------------------------------------------------------------- hook mode, ECS and Lambda

/// The green task set's targets, ip type: the fleet's loopback addresses.
fn ip_targets(port: u16, ips: &[String]) -> Vec<(String, u16)> {
    ips.iter().map(|ip| (ip.clone(), port)).collect()
}

#[tokio::test]
async fn ecs_hook_probes_the_green_task_sets_targets_and_reports_succeeded() {
    let (port, ips) = start_fleet(vec![
        Behaviour::Serves(healthy(LABEL)),
        Behaviour::Serves(healthy(LABEL)),
    ])
    .await;
    let mut w = World::new(port, &ips).ecs(ip_targets(port, &ips));
    w.status = CdStatus::InProgress;
    // The group's own port is not the targets' one: each target's port counts.
    w.tg_port = 80;
    let h = w.build();
    let report = h.hook().await.unwrap();
    print_json("ECS hook mode, all green targets pass", &report);

    assert_eq!(report.hook_status, HookStatus::Succeeded);
    assert!(report.passed);
    assert_eq!(report.error_type, None);
    assert_eq!(h.put_succeeded.num_calls(), 1);
    assert_eq!(h.put_failed.num_calls(), 0);
    assert_eq!(
        report.summary,
        format!("All 2 green targets of deployment d-7Q2KJ3X1A (task set ecs-svc/2222222222222222222, target group shop-tg-green) passed: 3 consecutive good answers each from /health (200) and /version naming revision \"{LABEL}\".")
    );
    assert_eq!(report.instances.len(), 2);
    for (n, e) in report.instances.iter().enumerate() {
        assert_eq!(e.instance_id, format!("127.0.0.{}", n + 1));
        assert_eq!(e.address, format!("127.0.0.{}:{port}", n + 1));
        assert!(e.passed);
        assert_eq!(e.consecutive_successes, 3);
    }
    // Green target group only; no EC2, no deployment group, no Continue/Stop.
    assert_eq!(h.list.num_calls(), 1);
    assert_eq!(h.green_tg.num_calls(), 1);
    assert_eq!(h.green_health.num_calls(), 1);
    assert_eq!(h.blue_health.num_calls(), 0);
    assert_eq!(h.describe.num_calls(), 0);
    assert_eq!(h.group.num_calls(), 0);
    assert_eq!(h.continue_rule.num_calls() + h.stop.num_calls(), 0);
}

#[tokio::test]
async fn ecs_hook_with_a_green_target_answering_500_reports_failed_with_evidence() {
    let (port, ips) = start_fleet(vec![
        Behaviour::Serves(healthy(LABEL)),
        Behaviour::Serves(failing(500, "Internal Server Error: migration pending")),
    ])
    .await;
    let h = World::new(port, &ips).ecs(ip_targets(port, &ips)).build();
    let report = h.hook().await.unwrap();
    print_json("ECS hook mode, one green target answers 500", &report);

    assert_eq!(report.hook_status, HookStatus::Failed);
    assert!(!report.passed);
    assert_eq!(report.error_type, None, "a verdict, not an error");
    assert_eq!(h.put_failed.num_calls(), 1);
    assert_eq!(h.put_succeeded.num_calls(), 0);
    let bad = &report.instances[1];
    assert!(!bad.passed);
    assert_eq!(bad.address, format!("127.0.0.2:{port}"));
    assert_eq!(bad.last_status, Some(500));
    assert_eq!(
        bad.last_body.as_deref(),
        Some("Internal Server Error: migration pending")
    );
    assert_eq!(
        report.summary,
        format!(
            "Green target 127.0.0.2 (127.0.0.2:{port}) of deployment d-7Q2KJ3X1A (task set ecs-svc/2222222222222222222, target group shop-tg-green) failed validation: GET /health answered 500 (expected 200) \"Internal Server Error: migration pending\"; 0 of 3 consecutive successes after {} probes.",
            bad.probes
        )
    );
    assert!(report.instances[0].passed);
    assert_eq!(
        h.stop.num_calls(),
        0,
        "hook mode leaves stopping to CodeDeploy"
    );
}

#[tokio::test]
async fn ecs_hook_with_instance_targets_probes_the_instances_private_ips() {
    let (port, ips) = start_fleet(vec![Behaviour::Serves(healthy(LABEL))]).await;
    let mut w = World::new(port, &ips).ecs(vec![("i-0green0".into(), port)]);
    // EC2 launch type, bridge networking: the target is the container instance.
    w.green_tg_type = TargetTypeEnum::Instance;
    w.green = vec![("i-0green0".into(), Some(ips[0].clone()))];
    let h = w.build();
    let report = h.hook().await.unwrap();
    assert_eq!(
        report.hook_status,
        HookStatus::Succeeded,
        "{}",
        report.summary
    );
    assert_eq!(report.instances[0].instance_id, "i-0green0");
    assert_eq!(report.instances[0].address, format!("127.0.0.1:{port}"));
    assert_eq!(h.describe.num_calls(), 1);
    assert_eq!(h.put_succeeded.num_calls(), 1);
}

#[tokio::test]
async fn ecs_hook_without_a_green_task_set_reports_failed_with_the_reason() {
    let mut w = World::new(1, &[]).ecs(Vec::new());
    w.task_sets
        .retain(|(_, label, _)| *label != TargetLabel::Green);
    let h = w.build();
    let report = h.hook().await.unwrap();
    print_json("ECS hook mode, no green task set", &report);

    assert_eq!(report.hook_status, HookStatus::Failed);
    assert!(!report.passed);
    assert_eq!(
        report.summary,
        "ECS deployment d-7Q2KJ3X1A has no task set labelled Green (of 1 task sets listed by BatchGetDeploymentTargets), so there is no green fleet to validate (no green targets) and the lifecycle hook was reported Failed."
    );
    assert!(report.instances.is_empty());
    assert_eq!(h.put_failed.num_calls(), 1);
    assert_eq!(h.put_succeeded.num_calls(), 0);
    assert_eq!(h.green_tg.num_calls() + h.green_health.num_calls(), 0);
    assert_eq!(h.blue_health.num_calls(), 0);
}

#[tokio::test]
async fn ecs_hook_with_an_empty_green_target_group_reports_failed() {
    let h = World::new(1, &[]).ecs(Vec::new()).build();
    let report = h.hook().await.unwrap();
    assert_eq!(report.hook_status, HookStatus::Failed);
    assert_eq!(
        report.summary,
        "Deployment d-7Q2KJ3X1A has no targets registered in target group shop-tg-green of its green task set ecs-svc/2222222222222222222 (no green targets), so traffic must not move to it."
    );
    assert_eq!(h.green_health.num_calls(), 1);
    assert_eq!(h.put_failed.num_calls(), 1);
}

#[tokio::test]
async fn lambda_hook_reports_failed_with_the_plain_reason() {
    let mut w = World::new(1, &[]);
    w.platform = CdPlatform::Lambda;
    w.green.clear();
    w.blue.clear();
    let h = w.build();
    let report = h.hook().await.unwrap();
    print_json("hook mode, Lambda deployment", &report);

    assert_eq!(report.hook_status, HookStatus::Failed);
    assert!(!report.passed);
    assert_eq!(report.error_type, None);
    assert_eq!(
        report.summary,
        "Deployment d-7Q2KJ3X1A is a Lambda deployment: greenlight's gate probes EC2 instances and ECS tasks behind a target group over HTTP, and a Lambda deployment has nothing it can probe, so the lifecycle hook was reported Failed. A Lambda deployment should not route this hook to greenlight's traffic validator: remove it from the AppSpec Hooks."
    );
    assert_eq!(
        h.put_failed.num_calls(),
        1,
        "CodeDeploy still gets its answer"
    );
    assert_eq!(h.put_succeeded.num_calls(), 0);
    assert_eq!(h.list.num_calls(), 0);
    assert_eq!(h.describe.num_calls() + h.green_tg.num_calls(), 0);
}

#[tokio::test]
async fn an_unknown_compute_platform_reports_failed() {
    let mut w = World::new(1, &[]);
    w.platform = CdPlatform::from("Kubernetes");
    let h = w.build();
    let report = h.hook().await.unwrap();
    assert_eq!(report.hook_status, HookStatus::Failed);
    assert!(
        report.summary.contains("compute platform \"Kubernetes\""),
        "{}",
        report.summary
    );
    assert_eq!(h.put_failed.num_calls(), 1);
    assert_eq!(h.list.num_calls(), 0);
}

// ---------------------------------------------------------------- approval (issue 10)

impl Harness {
    async fn run_event(&self, event: serde_json::Value) -> Result<ValidationReport, Error> {
        let request: Request = serde_json::from_value(event).unwrap();
        match handler(LambdaEvent::new(request, Context::default()), &self.deps).await? {
            Response::Validation(r) => Ok(r),
            other => panic!("task answered {other:?}"),
        }
    }
}

fn approval_asked(event: &mut serde_json::Value) {
    event["pipeline"]["approval"] =
        serde_json::json!({"requestedBy": "objectTag", "deadlineSeconds": 600});
}

fn continue_event(answer: serde_json::Value) -> serde_json::Value {
    let mut event: serde_json::Value = serde_json::from_str(TASK_EVENT).unwrap();
    approval_asked(&mut event);
    event["action"] = "continue".into();
    event["pipeline"]["validation"] = serde_json::json!({
        "deploymentId": DEPLOYMENT_ID,
        "passed": true,
        "summary": "All 2 green instances passed.",
        "instances": [],
        "action": "awaitingApproval"
    });
    event["pipeline"]["approvalAnswer"] = answer;
    event
}

#[tokio::test]
async fn a_passed_gate_that_asked_for_approval_leaves_the_deployment_in_ready() {
    let (port, ips) = start_fleet(vec![Behaviour::Serves(healthy(LABEL))]).await;
    let h = World::new(port, &ips).build();
    let mut event: serde_json::Value = serde_json::from_str(TASK_EVENT).unwrap();
    approval_asked(&mut event);
    let report = h.run_event(event).await.unwrap();
    assert!(report.passed, "{report:?}");
    assert_eq!(report.action, ValidationAction::AwaitingApproval);
    assert_eq!(
        serde_json::to_value(&report).unwrap()["action"],
        "awaitingApproval"
    );
    assert_eq!(
        h.continue_rule.num_calls(),
        0,
        "not continued without a human"
    );
    assert_eq!(h.stop.num_calls(), 0);
}

#[tokio::test]
async fn a_failed_gate_stops_even_when_approval_was_asked() {
    let (port, ips) = start_fleet(vec![Behaviour::Serves(failing(500, "down"))]).await;
    let h = World::new(port, &ips).build();
    let mut event: serde_json::Value = serde_json::from_str(TASK_EVENT).unwrap();
    approval_asked(&mut event);
    let report = h.run_event(event).await.unwrap();
    assert!(!report.passed);
    assert_eq!(report.action, ValidationAction::Stopped);
    assert_eq!(h.stop.num_calls(), 1);
    assert_eq!(h.continue_rule.num_calls(), 0);
}

#[tokio::test]
async fn an_explicit_approval_continues_the_deployment_once_and_says_who() {
    let h = World::new(1, &["127.0.0.1".to_string()]).build();
    let report = h
        .run_event(continue_event(
            serde_json::json!({"approved": true, "by": "alice"}),
        ))
        .await
        .unwrap();
    assert!(report.passed);
    assert_eq!(report.action, ValidationAction::Continued);
    assert_eq!(
        report.summary,
        "approved by alice; All 2 green instances passed."
    );
    assert_eq!(h.continue_rule.num_calls(), 1);
    assert_eq!(h.stop.num_calls(), 0);
    assert_eq!(h.describe.num_calls(), 0, "nothing probed again");
}

#[tokio::test]
async fn a_retried_continue_that_took_effect_writes_nothing() {
    let mut w = World::new(1, &["127.0.0.1".to_string()]);
    w.status = CdStatus::InProgress;
    let h = w.build();
    let mut event = continue_event(serde_json::json!({"approved": true, "by": "alice"}));
    event["retryCount"] = 1.into();
    let report = h.run_event(event).await.unwrap();
    assert_eq!(report.action, ValidationAction::ContinuedEarlier);
    assert_eq!(h.continue_rule.num_calls(), 0);
}

#[tokio::test]
async fn an_answer_without_approved_true_is_a_rejection_and_writes_nothing() {
    let h = World::new(1, &["127.0.0.1".to_string()]).build();
    for answer in [
        serde_json::json!({"approved": false, "by": "x"}),
        serde_json::json!({"by": "x"}),
        serde_json::json!("ok"),
    ] {
        let e = h
            .run_event(continue_event(answer.clone()))
            .await
            .unwrap_err();
        assert_eq!(
            e.error_type(),
            "greenlight.ApprovalRejected",
            "{answer}: {e}"
        );
    }
    assert_eq!(h.continue_rule.num_calls() + h.stop.num_calls(), 0);
}

#[tokio::test]
async fn an_approval_after_the_ready_wait_ran_out_is_not_ready() {
    let mut w = World::new(1, &["127.0.0.1".to_string()]);
    w.status = CdStatus::Stopped;
    let h = w.build();
    let e = h
        .run_event(continue_event(
            serde_json::json!({"approved": true, "by": "a"}),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "DeploymentNotReady", "{e}");
    assert_eq!(h.continue_rule.num_calls(), 0);
}
