//! The whole local cloud wired together: moto, the front server, the hosted
//! Lambdas, the CodeDeploy/CodePipeline/ALB emulation, the EventBridge relay,
//! the demo's resources, the blue fleet serving its first revision, and the
//! listener that reaches the app through the load balancer.

use crate::clock::TimeScale;
use crate::codedeploy::{CodeDeploy, CodeDeployDeps};
use crate::codepipeline::CodePipelineJobs;
use crate::execution_events::ExecutionEvents;
use crate::faults::rate::RateMode;
use crate::faults::Faults;
use crate::fleet::Fleet;
use crate::front::{Front, Services};
use crate::lambda_host::{self, FunctionConfigs, LambdaHost};
use crate::load_balancer::{LoadBalancer, TargetState};
use crate::moto::{free_loopback_port, MotoServer};
use crate::provision::{self, DemoNames, DemoResources, DemoSettings, ACCOUNT_ID, REGION};
use crate::relay::{Relay, RelayConfig, RelayRoute};
use crate::revisions::{build_revision, RevisionKind};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How to start a local cloud.
#[derive(Debug, Clone)]
pub struct Options {
    /// The project's root (template.yaml, statemachine/, .venv/).
    pub project_root: PathBuf,
    /// Where logs, unpacked bundles and state go.
    pub work_dir: PathBuf,
    /// Real seconds per simulated second (0.05 = 20× faster than AWS).
    pub time_scale: f64,
    pub names: DemoNames,
    pub settings: DemoSettings,
    /// The profile the health-check tuner applies (greenlight's default; the
    /// benchmark's baseline passes the target group's own settings instead).
    pub tuner_profile: greenlight_core::tuning::FastProfile,
    /// AWS-like API rate limits (default on: [`RateMode::Aws`]).
    pub rate_limits: RateMode,
    /// The traffic validator's `BAKE_CONFIG` (default: no group bakes).
    pub bake: Vec<greenlight_core::bake::GroupBake>,
    /// deploy-trigger's `APPROVAL_CONFIG` (default: no group asks for an
    /// approval). Deadlines are simulated seconds like every other wait: the
    /// functions get them scaled by the time scale (the local Step Functions,
    /// moto, counts `TimeoutSeconds` in real seconds).
    pub approval: Vec<greenlight_core::options::GroupApproval>,
    /// The deployment-watcher's deadlines, template.yaml's
    /// `DeploymentTimeoutSeconds` / `PostRerouteTimeoutSeconds` (their
    /// defaults, 3600 / 10800). The watcher reads the real clock, so these are
    /// real seconds here (not scaled): a test sets them short to reach a
    /// deadline within its run.
    pub deployment_timeout_seconds: u32,
    pub post_reroute_timeout_seconds: u32,
    /// Deployment groups in all (default 1: the demo's alone). More add
    /// groups 1..N-1 beside the demo's ([`crate::scale`]), each with its own
    /// Auto Scaling group, load balancer, listener, target group and
    /// instances, deployed by uploads under its own key prefix.
    pub groups: usize,
    /// How the local Step Functions counts a Wait state's seconds and a
    /// callback wait's timeout (default [`StepFunctionsWaits::Real`]).
    pub step_functions_waits: StepFunctionsWaits,
    /// The deployment-watcher's waits (`MIN_WAIT_SECONDS`,
    /// `MAX_WAIT_SECONDS`, `MAX_EVENT_WAIT_SECONDS`): seconds of the state
    /// machine's clock. Default [`WatcherWaits::LOCAL`].
    pub watcher_waits: WatcherWaits,
    /// The state machine's status loop polls only: every
    /// `AwaitDeploymentEvent` is replaced by the plain Wait
    /// `WaitBeforeNextLook` (the transitions benchmark's baselines, and
    /// greenlight before CodeDeploy's events woke the loop).
    pub polling_only: bool,
    /// Keep a record of every function invocation
    /// ([`LambdaHost::invocations`](crate::lambda_host::LambdaHost::invocations)):
    /// off by default, so a long-running local cloud does not grow with
    /// every invocation; the transitions benchmark turns it on for its GB-s.
    pub record_invocations: bool,
}

/// How the local Step Functions (moto) counts waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepFunctionsWaits {
    /// Real seconds, as moto does: a state machine's 5 s Wait takes 5 real
    /// seconds whatever the time scale, so the local watcher is configured
    /// with waits of a second or two ([`WatcherWaits::LOCAL`]).
    Real,
    /// On the simulated clock, like CodeDeploy's: a Wait's seconds and a
    /// callback wait's timeout are multiplied by the time scale
    /// (`moto::MOTO_WAIT_PATCH`), so the watcher runs with template.yaml's
    /// waits ([`WatcherWaits::TEMPLATE`]) and the state machine makes the
    /// transitions it would on AWS. Retry intervals stay real.
    Simulated,
}

/// The deployment-watcher's waits, in seconds of the state machine's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatcherWaits {
    pub min_seconds: u32,
    pub max_seconds: u32,
    pub max_event_seconds: u32,
}

impl WatcherWaits {
    /// With real-second Step Functions waits: look often. A CodeDeploy event
    /// wakes the loop at once; a lost one costs at most 10 real seconds.
    pub const LOCAL: Self = Self {
        min_seconds: 1,
        max_seconds: 2,
        max_event_seconds: 10,
    };
    /// template.yaml's: `MIN_WAIT_SECONDS` 5, `MAX_WAIT_SECONDS` 60,
    /// `MAX_EVENT_WAIT_SECONDS` 3600.
    pub const TEMPLATE: Self = Self {
        min_seconds: 5,
        max_seconds: 60,
        max_event_seconds: deployment_watcher::DEFAULT_MAX_EVENT_WAIT_SECONDS,
    };
}

impl Options {
    pub fn new(project_root: &Path, work_dir: &Path, time_scale: f64) -> Self {
        Self {
            project_root: project_root.to_path_buf(),
            work_dir: work_dir.to_path_buf(),
            time_scale,
            names: DemoNames::default(),
            settings: DemoSettings::default(),
            tuner_profile: greenlight_core::tuning::FastProfile::default(),
            rate_limits: RateMode::Aws,
            bake: Vec::new(),
            approval: Vec::new(),
            deployment_timeout_seconds: 3600,
            post_reroute_timeout_seconds: 3 * 3600,
            groups: 1,
            step_functions_waits: StepFunctionsWaits::Real,
            watcher_waits: WatcherWaits::LOCAL,
            polling_only: false,
            record_invocations: false,
        }
    }

    /// A bake of `bake_seconds` (real seconds: the functions read the real
    /// clock) for the demo group, with the built-in target-group checks
    /// strict (no target 5xx, at most 1 % 5xx, 2 s average response time,
    /// no unhealthy host), per-minute ALB metrics, a pass waiting 15 s past
    /// the bake for the last minute (the local ALB publishes a minute 10 s
    /// after it closed), a look every 2..5 s, and blue kept warm in the
    /// demo's standby target group.
    pub fn demo_bake(&self, bake_seconds: u32) -> greenlight_core::bake::GroupBake {
        greenlight_core::bake::GroupBake {
            application: self.names.application.clone(),
            deployment_group: self.names.deployment_group.clone(),
            bake_seconds,
            alarms: Vec::new(),
            thresholds: greenlight_core::bake::BakeThresholds {
                max_5xx_count: Some(0),
                max_5xx_rate_percent: Some(1.0),
                max_response_time_ms: Some(2_000),
                max_unhealthy_hosts: Some(0),
            },
            period_seconds: 60,
            metric_delay_seconds: 15,
            min_look_seconds: 2,
            max_look_seconds: 5,
            standby_target_group: Some(self.names.standby_target_group.clone()),
            // A listener change reaches the local ALB after 10 s simulated
            // (1 s real at the default time scale): 3 s real is past it.
            standby_settle_seconds: 3,
        }
    }
}

/// The first revision the blue fleet serves before any greenlight deployment.
pub const INITIAL_VERSION: &str = "initial";

pub struct LocalCloud {
    pub scale: TimeScale,
    pub sdk: aws_config::SdkConfig,
    pub resources: DemoResources,
    pub fleet: Arc<Fleet>,
    pub lb: Arc<LoadBalancer>,
    pub codedeploy: Arc<CodeDeploy>,
    pub pipeline: Arc<CodePipelineJobs>,
    pub lambda: Arc<LambdaHost>,
    pub relay: Arc<Relay>,
    pub execution_events: ExecutionEvents,
    /// The fault injector and rate limits (also at `/_greenlight/faults`).
    pub faults: Arc<Faults>,
    pub listener: SocketAddr,
    /// The extra deployment groups ([`Options::groups`]), each with its
    /// listener's address; empty by default.
    pub groups: Vec<ScaleGroup>,
    front: Front,
    moto: Option<MotoServer>,
}

/// One extra deployment group of the local cloud and its listener.
#[derive(Debug, Clone)]
pub struct ScaleGroup {
    pub resources: crate::scale::provision::GroupResources,
    pub listener: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("could not start the local cloud: {0}")]
    Start(String),
    #[error(transparent)]
    Provision(#[from] provision::ProvisionError),
    #[error("{0}")]
    Aws(String),
}

impl LocalCloud {
    pub async fn start(options: Options) -> Result<Self, CloudError> {
        let scale = TimeScale::new(options.time_scale);
        std::fs::create_dir_all(&options.work_dir)
            .map_err(|e| CloudError::Start(format!("{}: {e}", options.work_dir.display())))?;
        let port = |what: &str| {
            free_loopback_port()
                .map_err(|e| CloudError::Start(format!("no free port for {what}: {e}")))
        };
        let mut front = Front::bind(SocketAddr::from((
            [127, 0, 0, 1],
            port("the front server")?,
        )))
        .await
        .map_err(|e| CloudError::Start(format!("front server: {e}")))?;
        let moto = MotoServer::start_logging_to(
            &options.project_root.join(".venv"),
            front.port(),
            &options.work_dir.join("moto.log"),
            match options.step_functions_waits {
                StepFunctionsWaits::Real => 1.0,
                StepFunctionsWaits::Simulated => options.time_scale,
            },
        )
        .await
        .map_err(CloudError::Start)?;
        let sdk = crate::front::sdk_config(&front.endpoint()).await;
        let moto_sdk = crate::front::sdk_config(&moto.endpoint()).await;

        let faults = Arc::new(Faults::new(options.rate_limits));
        // The instances' port stays reserved while the cloud lives, so a
        // cloud started beside this one cannot be handed it.
        let fleet = Fleet::on_reserved_port(scale, options.work_dir.join("instances"))
            .map_err(|e| CloudError::Start(format!("no free port for the instances: {e}")))?;
        let app_port = fleet.app_port();
        let lb = LoadBalancer::new(
            fleet.clone(),
            scale,
            aws_sdk_elasticloadbalancingv2::Client::new(&moto_sdk),
        );
        let codedeploy = CodeDeploy::new(CodeDeployDeps {
            fleet: fleet.clone(),
            lb: lb.clone(),
            scale,
            sdk: sdk.clone(),
            account_id: ACCOUNT_ID.into(),
            region: REGION.into(),
            faults: faults.clone(),
        });
        let state_machine_arn = format!(
            "arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{}",
            options.names.state_machine
        );
        // The hosted functions sign as greenlight's own execution role, so
        // faults and rate limits apply to them (the local cloud's own calls
        // sign as `faults::INTERNAL_ACCESS_KEY` and are exempt).
        let function_sdk =
            crate::front::sdk_config_as(&front.endpoint(), crate::faults::FUNCTION_ACCESS_KEY)
                .await;
        let lambda = LambdaHost::new(
            &function_sdk,
            function_configs(&options, &state_machine_arn)?,
        );
        let template = std::fs::read_to_string(options.project_root.join("template.yaml"))
            .map_err(|e| CloudError::Start(format!("template.yaml: {e}")))?;
        lambda.configure(lambda_host::FunctionLimits {
            timeouts: crate::statemachine::function_timeouts(&template)
                .map_err(|e| CloudError::Start(e.to_string()))?,
            scale,
            work_allowance: lambda_host::WORK_ALLOWANCE,
            faults: Some(faults.clone()),
            record_invocations: options.record_invocations,
        });
        let pipeline = CodePipelineJobs::new(lambda.clone(), scale);
        // The front server records CopyObject writes; the relay's S3 events read them.
        let s3_events = Arc::new(crate::relay::S3EventState::default());
        let page = crate::front::page::PageSources::new(
            sdk.clone(),
            &options.names.application,
            &options.names.deployment_group,
        );
        front.start(Arc::new(Services {
            page: Some(Arc::new(page)),
            held_capacity: Default::default(),
            s3_events: s3_events.clone(),
            moto_endpoint: moto.endpoint(),
            lambda: lambda.clone(),
            codedeploy: codedeploy.clone(),
            lb: lb.clone(),
            fleet: fleet.clone(),
            pipeline: pipeline.clone(),
            faults: faults.clone(),
        }));

        // Local state-machine parameters: the GroupBusy retry waits in real seconds.
        let parameters: BTreeMap<String, String> = [
            ("BusyRetryIntervalSeconds", "1"),
            ("BusyRetryMaxAttempts", "60"),
            ("BusyRetryMaxDelaySeconds", "2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        // Provision with a fast health check so the blue fleet (which on AWS
        // would have been healthy for weeks) is healthy before the demo
        // starts, then put the seed's slow settings in place.
        let mut fast = options.settings.clone();
        fast.interval_seconds = 5;
        fast.timeout_seconds = 2;
        fast.healthy_threshold = 2;
        let resources = provision::provision(
            &sdk,
            &options.project_root,
            &options.names,
            &fast,
            app_port,
            parameters,
            options.polling_only,
        )
        .await?;
        // The extra groups, created the same way (none by default).
        let mut extra = Vec::new();
        for names in crate::scale::extra_groups(options.groups, &options.names.artifact_prefix)
            .map_err(CloudError::Start)?
        {
            extra.push(
                crate::scale::provision::provision_group(
                    &sdk,
                    &options.names,
                    &names,
                    &fast,
                    app_port,
                )
                .await?,
            );
        }
        let fleets: Vec<(&String, &Vec<String>)> =
            std::iter::once((&resources.target_group_arn, &resources.blue_instances))
                .chain(
                    extra
                        .iter()
                        .map(|g| (&g.target_group_arn, &g.blue_instances)),
                )
                .collect();
        for (_, instances) in &fleets {
            for instance in instances.iter() {
                fleet
                    .launch_with_bundle(
                        instance,
                        build_revision(RevisionKind::Good, INITIAL_VERSION),
                    )
                    .await
                    .map_err(CloudError::Start)?;
            }
        }
        lb.refresh_all().await.map_err(CloudError::Start)?;
        let elbv2 = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
        for (target_group_arn, instances) in &fleets {
            wait_all_healthy(&lb, target_group_arn, instances, scale).await?;
        }
        for (target_group_arn, _) in &fleets {
            elbv2
                .modify_target_group()
                .target_group_arn(target_group_arn.as_str())
                .health_check_interval_seconds(options.settings.interval_seconds)
                .health_check_timeout_seconds(options.settings.timeout_seconds)
                .healthy_threshold_count(options.settings.healthy_threshold)
                .unhealthy_threshold_count(options.settings.unhealthy_threshold)
                .send()
                .await
                .map_err(|e| CloudError::Aws(greenlight_aws::describe_error(&e)))?;
        }

        // The listener follows moto's listener: its default action, and
        // ModifyListener's weighted forwards once they propagated.
        let listener = lb
            .serve_moto_listener(
                resources.listener_arn.clone(),
                SocketAddr::from(([127, 0, 0, 1], 0)),
            )
            .await
            .map_err(|e| CloudError::Start(format!("listener: {e}")))?;
        let mut groups = Vec::with_capacity(extra.len());
        for g in extra {
            let listener = lb
                .serve_moto_listener(
                    g.listener_arn.clone(),
                    SocketAddr::from(([127, 0, 0, 1], 0)),
                )
                .await
                .map_err(|e| {
                    CloudError::Start(format!("listener of {}: {e}", g.names.deployment_group))
                })?;
            groups.push(ScaleGroup {
                resources: g,
                listener,
            });
        }
        // The target group's CloudWatch metrics, from the traffic the listener serves.
        lb.start_metrics(
            aws_sdk_cloudwatch::Client::new(&sdk),
            resources.load_balancer_arn.clone(),
        );
        // CodePipeline's asynchronous invocations with each function's
        // EventInvokeConfig (retries, on-failure destination) from template.yaml.
        let async_configs = crate::statemachine::event_invoke_configs(&template)
            .map_err(|e| CloudError::Start(e.to_string()))?
            .into_iter()
            .map(|(name, c)| {
                let on_failure_queue_url = c.on_failure.as_deref().and_then(|logical| {
                    match logical {
                        "RejectedUploads" => Some(resources.rejected_queue_url.clone()),
                        other => {
                            tracing::warn!(function = %name, destination = other, "on-failure destination not provisioned locally; records are dropped");
                            None
                        }
                    }
                });
                (
                    name,
                    lambda_host::async_invoke::AsyncInvokeConfig {
                        max_retry_attempts: c.max_retry_attempts,
                        on_failure_queue_url,
                    },
                )
            })
            .collect();
        pipeline.set_async_invoker(Arc::new(lambda_host::async_invoke::AsyncInvoker::new(
            lambda.clone(),
            aws_sdk_sqs::Client::new(&sdk),
            scale,
            async_configs,
        )));
        let relay = Relay::start(
            aws_sdk_sqs::Client::new(&sdk),
            lambda.clone(),
            vec![
                // template.yaml: the trigger's OnFailure destination is RejectedUploads.
                RelayRoute {
                    queue_url: resources.trigger_queue_url.clone(),
                    function_name: lambda_host::DEPLOY_TRIGGER.into(),
                    on_failure_queue: Some(resources.rejected_queue_url.clone()),
                },
                RelayRoute {
                    queue_url: resources.codedeploy_queue_url.clone(),
                    function_name: lambda_host::FAILURE_HANDLER.into(),
                    on_failure_queue: None,
                },
                RelayRoute {
                    queue_url: resources.execution_queue_url.clone(),
                    function_name: lambda_host::FAILURE_HANDLER.into(),
                    on_failure_queue: None,
                },
                // template.yaml: the watcher's DeploymentStateChanged rule wakes the status loop.
                RelayRoute {
                    queue_url: resources.deployment_events_queue_url.clone(),
                    function_name: lambda_host::DEPLOYMENT_WATCHER.into(),
                    on_failure_queue: None,
                },
            ],
            RelayConfig {
                dead_letter_log: Some(options.work_dir.join("dead-letters.jsonl")),
                s3_events,
                ..RelayConfig::default()
            },
        );
        // moto emits no Step Functions status-change events: emit them (see
        // execution_events) so executions that end outside their failure path
        // reach the failure handler as on AWS.
        let execution_events = ExecutionEvents::start(
            aws_sdk_sfn::Client::new(&sdk),
            aws_sdk_eventbridge::Client::new(&sdk),
            resources.state_machine_arn.clone(),
            Duration::from_secs(1),
        );
        Ok(Self {
            scale,
            sdk,
            execution_events,
            resources,
            fleet,
            lb,
            codedeploy,
            pipeline,
            lambda,
            relay,
            faults,
            listener,
            groups,
            front,
            moto: Some(moto),
        })
    }

    pub fn endpoint(&self) -> String {
        self.front.endpoint()
    }

    pub fn listener_url(&self) -> String {
        format!("http://{}", self.listener)
    }

    /// moto's process id, while it runs.
    pub fn moto_pid(&self) -> Option<u32> {
        self.moto.as_ref().and_then(|m| m.pid())
    }

    /// moto's own endpoint behind the front server, while it runs.
    pub fn moto_endpoint(&self) -> Option<String> {
        self.moto.as_ref().map(|m| m.endpoint())
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.sdk)
                .force_path_style(true)
                .build(),
        )
    }

    /// The object key the trigger maps to the demo's application.
    pub fn revision_key(&self, label: &str) -> String {
        format!(
            "{}{}/{label}.zip",
            self.resources.names.artifact_prefix, self.resources.names.application
        )
    }

    /// The object key the trigger maps to extra group `group` (its key prefix).
    pub fn group_revision_key(group: &crate::scale::GroupNames, label: &str) -> String {
        format!("{}{label}.zip", group.key_prefix)
    }

    /// Uploads a demo revision under `key` (any group's), as CI would.
    pub async fn upload_revision_at(
        &self,
        kind: RevisionKind,
        label: &str,
        key: &str,
    ) -> Result<(), CloudError> {
        self.s3()
            .put_object()
            .bucket(&self.resources.names.bucket)
            .key(key)
            .body(build_revision(kind, label).into())
            .send()
            .await
            .map_err(|e| CloudError::Aws(greenlight_aws::describe_error(&e)))?;
        Ok(())
    }

    /// Uploads a demo revision to the artifact bucket, as CI would.
    pub async fn upload_revision(
        &self,
        kind: RevisionKind,
        label: &str,
    ) -> Result<String, CloudError> {
        self.upload_revision_tagged(kind, label, None).await
    }

    /// [`Self::upload_revision`] with the object's tags in the same PutObject
    /// (`Tagging`, URL query form `key1=value1&key2=value2`, as
    /// `aws s3 cp --tagging` sends it; S3 API reference, PutObject).
    pub async fn upload_revision_tagged(
        &self,
        kind: RevisionKind,
        label: &str,
        tagging: Option<&str>,
    ) -> Result<String, CloudError> {
        let key = self.revision_key(label);
        self.s3()
            .put_object()
            .bucket(&self.resources.names.bucket)
            .key(&key)
            .body(build_revision(kind, label).into())
            .set_tagging(tagging.map(str::to_string))
            .send()
            .await
            .map_err(|e| CloudError::Aws(greenlight_aws::describe_error(&e)))?;
        Ok(key)
    }

    /// Stops everything: relay, instances, listener, front server, moto.
    pub async fn shutdown(mut self) {
        self.execution_events.stop().await;
        self.relay.stop().await;
        self.fleet.terminate_all().await;
        drop(self.front);
        if let Some(moto) = self.moto.take() {
            moto.shutdown().await;
        }
    }
}

async fn wait_all_healthy(
    lb: &LoadBalancer,
    target_group_arn: &str,
    instances: &[String],
    scale: TimeScale,
) -> Result<(), CloudError> {
    // Two healthy checks at 5 s plus slack, in simulated time.
    let deadline = tokio::time::Instant::now() + scale.real(Duration::from_secs(60));
    loop {
        let health = lb.target_health(target_group_arn);
        let healthy = instances.iter().all(|i| {
            health
                .iter()
                .any(|t| &t.instance_id == i && matches!(t.state, TargetState::Healthy))
        });
        if healthy {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CloudError::Start(format!(
                "the blue fleet did not become healthy behind the load balancer: {:?}",
                health
                    .iter()
                    .map(|t| (t.instance_id.clone(), t.state.as_str()))
                    .collect::<Vec<_>>()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What template.yaml's environment sets on AWS, with local values.
fn function_configs(
    options: &Options,
    state_machine_arn: &str,
) -> Result<FunctionConfigs, CloudError> {
    let names = &options.names;
    // The extra groups' key prefixes (none by default: no KEY_MAPPING).
    let extra = crate::scale::extra_groups(options.groups, &names.artifact_prefix)
        .map_err(CloudError::Start)?;
    let mapping = greenlight_core::trigger::KeyMapping::new(
        &names.artifact_prefix,
        &names.deployment_group,
        crate::scale::key_mapping_json(&names.application, &extra).as_deref(),
    )
    .map_err(|e| CloudError::Start(e.to_string()))?;
    Ok(FunctionConfigs {
        deploy_trigger: deploy_trigger::Config {
            state_machine_arn: state_machine_arn.to_string(),
            buckets: greenlight_core::trigger::ArtifactBuckets::new(&names.bucket, None)
                .map_err(CloudError::Start)?,
            mapping,
            deadlines: deploy_trigger::DEFAULT_DEADLINES,
            // The group deadlines on the local cloud's clock (like the rollback wait below).
            approval: options
                .approval
                .iter()
                .map(|g| greenlight_core::options::GroupApproval {
                    deadline_seconds: ((f64::from(g.deadline_seconds) * options.time_scale).ceil()
                        as u32)
                        .max(1),
                    ..g.clone()
                })
                .collect(),
        },
        health_check_tuner: health_check_tuner::Config {
            profile: options.tuner_profile,
        },
        traffic_validator: traffic_validator::Config {
            probe: greenlight_core::probe::ProbeConfig {
                // Probe a few times quickly; a failing instance is judged
                // within the (real-time) deadline.
                interval_ms: 200,
                deadline_ms: 20_000,
                ..greenlight_core::probe::ProbeConfig::default()
            },
            bake: options.bake.clone(),
        },
        deployment_watcher: deployment_watcher::Config {
            state_machine_arn: state_machine_arn.to_string(),
            deployment_config_name: options.settings.deployment_config.clone(),
            deployment_timeout_seconds: options.deployment_timeout_seconds,
            post_reroute_timeout_seconds: options.post_reroute_timeout_seconds,
            min_wait_seconds: options.watcher_waits.min_seconds,
            max_wait_seconds: options.watcher_waits.max_seconds,
            max_event_wait_seconds: options.watcher_waits.max_event_seconds,
            ignore_application_stop_failures: false,
        },
        failure_handler: failure_handler::Config {
            topic_arn: format!("arn:aws:sns:{REGION}:{ACCOUNT_ID}:{}", names.topic),
            report_bucket: names.report_bucket.clone(),
            report_prefix: names.report_prefix.clone(),
            state_machine_arn: Some(state_machine_arn.to_string()),
            // The template's 120 s, on the local cloud's clock.
            rollback_wait_seconds: ((120.0 * options.time_scale).ceil() as u32).max(1),
        },
    })
}
