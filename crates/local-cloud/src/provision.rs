//! Provisions the demo: everything a team would have on AWS before its first
//! greenlight deployment, created through the AWS APIs of the local cloud:
//! a VPC's subnets, a launch template and the blue Auto Scaling group, an ALB
//! with the seed's slow health-check settings, the artifact bucket with
//! EventBridge notifications, the EventBridge rules (to SQS, relayed to the
//! handlers), the SNS topic, the CodeDeploy application and EC2 blue/green
//! deployment group with the Ready wait, and the state machine.

use crate::statemachine;
use std::collections::BTreeMap;
use std::path::Path;

/// Names of the demo's resources.
#[derive(Debug, Clone)]
pub struct DemoNames {
    pub application: String,
    pub deployment_group: String,
    pub bucket: String,
    pub artifact_prefix: String,
    /// Failure reports: a bucket of their own, as in template.yaml's
    /// `ReportBucket` (uploaders cannot forge a report).
    pub report_bucket: String,
    pub report_prefix: String,
    pub target_group: String,
    /// The bake's standby target group (`standbyTargetGroup`): blue is kept
    /// warm there during the bake (`greenlight_core::bake::standby`).
    pub standby_target_group: String,
    pub load_balancer: String,
    pub blue_asg: String,
    pub launch_template: String,
    pub topic: String,
    pub state_machine: String,
    pub trigger_queue: String,
    pub codedeploy_queue: String,
    /// Step Functions execution status-change events for the failure handler.
    pub execution_queue: String,
    /// CodeDeploy deployment state-change events that wake the status loop
    /// (the deployment-watcher's `DeploymentStateChanged` rule).
    pub deployment_events_queue: String,
    pub notifications_queue: String,
    pub rejected_queue: String,
}

impl Default for DemoNames {
    fn default() -> Self {
        Self {
            application: "greenlight-demo".into(),
            deployment_group: "greenlight-demo-group".into(),
            bucket: "greenlight-demo-artifacts".into(),
            artifact_prefix: "artifacts/".into(),
            report_bucket: "greenlight-demo-reports".into(),
            report_prefix: "greenlight-reports/".into(),
            target_group: "greenlight-demo-tg".into(),
            standby_target_group: "greenlight-demo-standby".into(),
            load_balancer: "greenlight-demo-alb".into(),
            blue_asg: "greenlight-demo-blue".into(),
            launch_template: "greenlight-demo-lt".into(),
            topic: "greenlight-notifications".into(),
            state_machine: "greenlight-pipeline".into(),
            trigger_queue: "greenlight-s3-events".into(),
            codedeploy_queue: "greenlight-codedeploy-events".into(),
            execution_queue: "greenlight-execution-events".into(),
            deployment_events_queue: "greenlight-deployment-events".into(),
            notifications_queue: "greenlight-notifications-inbox".into(),
            rejected_queue: "greenlight-rejected-uploads".into(),
        }
    }
}

/// The demo's settings: the seed's slow health check, the Ready wait, the fleet size.
#[derive(Debug, Clone)]
pub struct DemoSettings {
    pub instances: i32,
    /// The target group's health check before greenlight tunes it (the seed's:
    /// interval 30 s, timeout 5 s, healthy 10, unhealthy 2).
    pub interval_seconds: i32,
    pub timeout_seconds: i32,
    pub healthy_threshold: i32,
    pub unhealthy_threshold: i32,
    pub deregistration_delay_seconds: u32,
    pub ready_wait_minutes: i32,
    pub termination_wait_minutes: i32,
    pub deployment_config: String,
}

impl Default for DemoSettings {
    fn default() -> Self {
        Self {
            instances: 2,
            interval_seconds: 30,
            timeout_seconds: 5,
            healthy_threshold: 10,
            unhealthy_threshold: 2,
            deregistration_delay_seconds: 300,
            ready_wait_minutes: 60,
            termination_wait_minutes: 5,
            deployment_config: "CodeDeployDefault.OneAtATime".into(),
        }
    }
}

/// What provisioning created, for the rest of the local cloud and the tests.
#[derive(Debug, Clone)]
pub struct DemoResources {
    pub names: DemoNames,
    pub target_group_arn: String,
    /// The standby target group: nothing forwards to it until a bake arms it.
    pub standby_target_group_arn: String,
    /// The load balancer's one listener (port 80), whose default action
    /// forwards to the target group; the local listener follows it.
    pub listener_arn: String,
    pub load_balancer_arn: String,
    pub blue_instances: Vec<String>,
    pub topic_arn: String,
    pub state_machine_arn: String,
    pub trigger_queue_url: String,
    pub codedeploy_queue_url: String,
    pub execution_queue_url: String,
    pub deployment_events_queue_url: String,
    pub notifications_queue_url: String,
    pub rejected_queue_url: String,
}

#[derive(Debug, thiserror::Error)]
#[error("provisioning the demo failed at {step}: {message}")]
pub struct ProvisionError {
    pub step: &'static str,
    pub message: String,
}

pub(crate) fn fail<
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::fmt::Display,
>(
    step: &'static str,
) -> impl FnOnce(E) -> ProvisionError {
    move |e| ProvisionError {
        step,
        message: greenlight_aws::describe_error(&e),
    }
}

pub(crate) fn missing(step: &'static str, what: &str) -> ProvisionError {
    ProvisionError {
        step,
        message: format!("the answer had no {what}"),
    }
}

/// An HTTP instance target group on `/health` (matcher 200) with the health
/// check `[interval, timeout, healthy, unhealthy]` and the deregistration
/// delay; returns its ARN.
pub(crate) async fn create_target_group(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    name: &str,
    vpc_id: &str,
    app_port: u16,
    [interval, timeout, healthy, unhealthy]: [i32; 4],
    deregistration_delay_seconds: u32,
) -> Result<String, ProvisionError> {
    use aws_sdk_elasticloadbalancingv2::types::{
        Matcher, ProtocolEnum, TargetGroupAttribute, TargetTypeEnum,
    };
    let created = elb
        .create_target_group()
        .name(name)
        .protocol(ProtocolEnum::Http)
        .port(i32::from(app_port))
        .vpc_id(vpc_id)
        .target_type(TargetTypeEnum::Instance)
        .health_check_protocol(ProtocolEnum::Http)
        .health_check_path("/health")
        .health_check_interval_seconds(interval)
        .health_check_timeout_seconds(timeout)
        .healthy_threshold_count(healthy)
        .unhealthy_threshold_count(unhealthy)
        .matcher(Matcher::builder().http_code("200").build())
        .send()
        .await
        .map_err(fail("CreateTargetGroup"))?;
    let arn = created
        .target_groups()
        .first()
        .and_then(|t| t.target_group_arn())
        .ok_or_else(|| missing("CreateTargetGroup", "target group ARN"))?
        .to_string();
    elb.modify_target_group_attributes()
        .target_group_arn(&arn)
        .attributes(
            TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value(deregistration_delay_seconds.to_string())
                .build(),
        )
        .send()
        .await
        .map_err(fail("ModifyTargetGroupAttributes"))?;
    Ok(arn)
}

/// The default VPC (moto creates it) and one subnet in each of its first two
/// Availability Zones: `(vpc_id, subnet_ids)`.
pub(crate) async fn network(
    ec2: &aws_sdk_ec2::Client,
) -> Result<(String, Vec<String>), ProvisionError> {
    let subnets = ec2
        .describe_subnets()
        .send()
        .await
        .map_err(fail("DescribeSubnets"))?;
    let mut by_az: BTreeMap<String, (String, String)> = BTreeMap::new();
    for s in subnets.subnets() {
        if let (Some(az), Some(id), Some(vpc)) = (s.availability_zone(), s.subnet_id(), s.vpc_id())
        {
            by_az
                .entry(az.to_string())
                .or_insert((id.to_string(), vpc.to_string()));
        }
    }
    let picked: Vec<(String, String, String)> = by_az
        .into_iter()
        .take(2)
        .map(|(az, (id, vpc))| (az, id, vpc))
        .collect();
    let vpc_id = picked
        .first()
        .map(|p| p.2.clone())
        .ok_or_else(|| missing("DescribeSubnets", "subnet"))?;
    Ok((vpc_id, picked.iter().map(|p| p.1.clone()).collect()))
}

/// The EC2 blue/green deployment group with traffic control, the Ready wait
/// (StopDeployment on timeout), a copy of `blue_asg` as the green fleet,
/// blue terminated after the termination wait, `target_group` behind it and
/// automatic rollback on failure and on a stop (README, "Create the
/// deployment group").
pub(crate) async fn create_deployment_group(
    codedeploy: &aws_sdk_codedeploy::Client,
    application: &str,
    deployment_group: &str,
    blue_asg: &str,
    target_group: &str,
    settings: &DemoSettings,
) -> Result<(), ProvisionError> {
    use aws_sdk_codedeploy::types as cd;
    codedeploy
        .create_deployment_group()
        .application_name(application)
        .deployment_group_name(deployment_group)
        .service_role_arn(format!(
            "arn:aws:iam::{ACCOUNT_ID}:role/CodeDeployServiceRole"
        ))
        .deployment_config_name(&settings.deployment_config)
        .auto_scaling_groups(blue_asg)
        .deployment_style(
            cd::DeploymentStyle::builder()
                .deployment_type(cd::DeploymentType::BlueGreen)
                .deployment_option(cd::DeploymentOption::WithTrafficControl)
                .build(),
        )
        .blue_green_deployment_configuration(
            cd::BlueGreenDeploymentConfiguration::builder()
                .deployment_ready_option(
                    cd::DeploymentReadyOption::builder()
                        .action_on_timeout(cd::DeploymentReadyAction::StopDeployment)
                        .wait_time_in_minutes(settings.ready_wait_minutes)
                        .build(),
                )
                .green_fleet_provisioning_option(
                    cd::GreenFleetProvisioningOption::builder()
                        .action(cd::GreenFleetProvisioningAction::CopyAutoScalingGroup)
                        .build(),
                )
                .terminate_blue_instances_on_deployment_success(
                    cd::BlueInstanceTerminationOption::builder()
                        .action(cd::InstanceAction::Terminate)
                        .termination_wait_time_in_minutes(settings.termination_wait_minutes)
                        .build(),
                )
                .build(),
        )
        .load_balancer_info(
            cd::LoadBalancerInfo::builder()
                .target_group_info_list(cd::TargetGroupInfo::builder().name(target_group).build())
                .build(),
        )
        .auto_rollback_configuration(
            cd::AutoRollbackConfiguration::builder()
                .enabled(true)
                .events(cd::AutoRollbackEvent::DeploymentFailure)
                .events(cd::AutoRollbackEvent::DeploymentStopOnRequest)
                .build(),
        )
        .send()
        .await
        .map_err(fail("CreateDeploymentGroup"))?;
    Ok(())
}

/// The names of one blue fleet behind its own load balancer.
pub(crate) struct BlueFleetNames<'a> {
    /// An existing launch template the blue ASG launches from.
    pub launch_template: &'a str,
    pub blue_asg: &'a str,
    pub load_balancer: &'a str,
    pub target_group: &'a str,
}

/// What [`provision_blue_fleet_behind_alb`] created.
pub(crate) struct BlueFleet {
    pub vpc_id: String,
    pub target_group_arn: String,
    pub load_balancer_arn: String,
    pub listener_arn: String,
    pub blue_instances: Vec<String>,
}

/// One deployment group's blue side, as a team's IaC creates it: the blue
/// Auto Scaling group (`settings.instances`), an application load balancer
/// with a port-80 listener forwarding to the target group (`settings`'
/// health check and deregistration delay), the blue instances registered.
/// Used by the demo's group and by every extra group of [`crate::scale`].
pub(crate) async fn provision_blue_fleet_behind_alb(
    sdk: &aws_config::SdkConfig,
    names: BlueFleetNames<'_>,
    settings: &DemoSettings,
    app_port: u16,
) -> Result<BlueFleet, ProvisionError> {
    use aws_sdk_elasticloadbalancingv2::types as elb_types;
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let asg = aws_sdk_autoscaling::Client::new(sdk);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
    let (vpc_id, subnet_ids) = network(&ec2).await?;
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(names.blue_asg)
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name(names.launch_template)
                .version("$Latest")
                .build(),
        )
        .min_size(settings.instances)
        .max_size(settings.instances)
        .desired_capacity(settings.instances)
        .vpc_zone_identifier(subnet_ids.join(","))
        .send()
        .await
        .map_err(fail("CreateAutoScalingGroup"))?;
    let described = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(names.blue_asg)
        .send()
        .await
        .map_err(fail("DescribeAutoScalingGroups"))?;
    let blue_instances: Vec<String> = described
        .auto_scaling_groups()
        .iter()
        .flat_map(|g| g.instances())
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();

    let lb = elb
        .create_load_balancer()
        .name(names.load_balancer)
        .set_subnets(Some(subnet_ids))
        .r#type(elb_types::LoadBalancerTypeEnum::Application)
        .send()
        .await
        .map_err(fail("CreateLoadBalancer"))?;
    let load_balancer_arn = lb
        .load_balancers()
        .first()
        .and_then(|l| l.load_balancer_arn())
        .ok_or_else(|| missing("CreateLoadBalancer", "load balancer ARN"))?
        .to_string();
    let target_group_arn = create_target_group(
        &elb,
        names.target_group,
        &vpc_id,
        app_port,
        [
            settings.interval_seconds,
            settings.timeout_seconds,
            settings.healthy_threshold,
            settings.unhealthy_threshold,
        ],
        settings.deregistration_delay_seconds,
    )
    .await?;
    let listener = elb
        .create_listener()
        .load_balancer_arn(&load_balancer_arn)
        .protocol(elb_types::ProtocolEnum::Http)
        .port(80)
        .default_actions(
            elb_types::Action::builder()
                .r#type(elb_types::ActionTypeEnum::Forward)
                .target_group_arn(&target_group_arn)
                .build(),
        )
        .send()
        .await
        .map_err(fail("CreateListener"))?;
    let listener_arn = listener
        .listeners()
        .first()
        .and_then(|l| l.listener_arn())
        .ok_or_else(|| missing("CreateListener", "listener ARN"))?
        .to_string();
    let targets: Vec<_> = blue_instances
        .iter()
        .map(|i| {
            elb_types::TargetDescription::builder()
                .id(i)
                .port(i32::from(app_port))
                .build()
        })
        .collect();
    elb.register_targets()
        .target_group_arn(&target_group_arn)
        .set_targets(Some(targets))
        .send()
        .await
        .map_err(fail("RegisterTargets"))?;
    Ok(BlueFleet {
        vpc_id,
        target_group_arn,
        load_balancer_arn,
        listener_arn,
        blue_instances,
    })
}

pub const ACCOUNT_ID: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// Creates the demo's AWS resources through `sdk` (the front server).
pub async fn provision(
    sdk: &aws_config::SdkConfig,
    project_root: &Path,
    names: &DemoNames,
    settings: &DemoSettings,
    app_port: u16,
    statemachine_parameters: BTreeMap<String, String>,
    polling_only: bool,
) -> Result<DemoResources, ProvisionError> {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let sns = aws_sdk_sns::Client::new(sdk);
    let codedeploy = aws_sdk_codedeploy::Client::new(sdk);
    let sfn = aws_sdk_sfn::Client::new(sdk);

    // Launch template and the blue Auto Scaling group.
    let images = ec2
        .describe_images()
        .owners("amazon")
        .send()
        .await
        .map_err(fail("DescribeImages"))?;
    let image_id = images
        .images()
        .iter()
        .find_map(|i| i.image_id())
        .ok_or_else(|| missing("DescribeImages", "image"))?
        .to_string();
    ec2.create_launch_template()
        .launch_template_name(&names.launch_template)
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id(&image_id)
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await
        .map_err(fail("CreateLaunchTemplate"))?;
    let fleet = provision_blue_fleet_behind_alb(
        sdk,
        BlueFleetNames {
            launch_template: &names.launch_template,
            blue_asg: &names.blue_asg,
            load_balancer: &names.load_balancer,
            target_group: &names.target_group,
        },
        settings,
        app_port,
    )
    .await?;
    // The standby: same VPC, port, protocol, path and matcher as the target
    // group, as a user's IaC would create it; its health check is fast from
    // the start (it serves nothing until a switch, and a standby must turn
    // healthy within the bake), the tuner's fast profile, with its 30 s
    // deregistration delay.
    let standby_target_group_arn = create_target_group(
        &elb,
        &names.standby_target_group,
        &fleet.vpc_id,
        app_port,
        [5, 2, 2, 2],
        30,
    )
    .await?;
    let BlueFleet {
        target_group_arn,
        load_balancer_arn,
        listener_arn,
        blue_instances,
        ..
    } = fleet;

    // Report bucket (template.yaml `ReportBucket`): only the failure handler writes there.
    s3.create_bucket()
        .bucket(&names.report_bucket)
        .send()
        .await
        .map_err(fail("CreateBucket"))?;
    // Artifact bucket: versioned, EventBridge notifications on.
    s3.create_bucket()
        .bucket(&names.bucket)
        .send()
        .await
        .map_err(fail("CreateBucket"))?;
    s3.put_bucket_versioning()
        .bucket(&names.bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map_err(fail("PutBucketVersioning"))?;
    s3.put_bucket_notification_configuration()
        .bucket(&names.bucket)
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder()
                .event_bridge_configuration(
                    aws_sdk_s3::types::EventBridgeConfiguration::builder().build(),
                )
                .build(),
        )
        .send()
        .await
        .map_err(fail("PutBucketNotificationConfiguration"))?;

    // Queues: EventBridge rule targets (relayed to handlers), SNS inbox, rejections.
    let mut queue_urls = Vec::new();
    for q in [
        &names.trigger_queue,
        &names.codedeploy_queue,
        &names.notifications_queue,
        &names.rejected_queue,
        &names.execution_queue,
        &names.deployment_events_queue,
    ] {
        let created = sqs
            .create_queue()
            .queue_name(q)
            .send()
            .await
            .map_err(fail("CreateQueue"))?;
        queue_urls.push(
            created
                .queue_url()
                .ok_or_else(|| missing("CreateQueue", "queue URL"))?
                .to_string(),
        );
    }
    let queue_arn = |name: &str| format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}");

    // EventBridge rules, as template.yaml declares them.
    let s3_pattern = serde_json::json!({
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [names.bucket]},
            "object": {"key": [{"prefix": names.artifact_prefix}]}
        }
    });
    let codedeploy_pattern = serde_json::json!({
        "source": ["aws.codedeploy"],
        "detail-type": ["CodeDeploy Deployment State-change Notification"],
        "detail": {"state": ["FAILURE", "STOP"], "application": [names.application]}
    });
    let deployment_changed_pattern = serde_json::json!({
        "source": ["aws.codedeploy"],
        "detail-type": ["CodeDeploy Deployment State-change Notification"],
        "detail": {
            "state": greenlight_core::wake::WAKING_STATES,
            "application": [names.application]
        }
    });
    let execution_pattern = serde_json::json!({
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {
            "status": ["ABORTED", "TIMED_OUT", "FAILED"],
            "stateMachineArn": [format!("arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{}", names.state_machine)]
        }
    });
    for (rule, pattern, queue) in [
        (
            "greenlight-artifact-uploaded",
            s3_pattern,
            &names.trigger_queue,
        ),
        (
            "greenlight-deployment-failed",
            codedeploy_pattern,
            &names.codedeploy_queue,
        ),
        (
            "greenlight-execution-ended",
            execution_pattern,
            &names.execution_queue,
        ),
        (
            "greenlight-deployment-changed",
            deployment_changed_pattern,
            &names.deployment_events_queue,
        ),
    ] {
        events
            .put_rule()
            .name(rule)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .map_err(fail("PutRule"))?;
        events
            .put_targets()
            .rule(rule)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("relay")
                    .arn(queue_arn(queue))
                    .build()
                    .map_err(|e| ProvisionError {
                        step: "PutTargets",
                        message: e.to_string(),
                    })?,
            )
            .send()
            .await
            .map_err(fail("PutTargets"))?;
    }

    // SNS topic, with the inbox queue subscribed so notifications can be read back.
    let topic = sns
        .create_topic()
        .name(&names.topic)
        .send()
        .await
        .map_err(fail("CreateTopic"))?;
    let topic_arn = topic
        .topic_arn()
        .ok_or_else(|| missing("CreateTopic", "topic ARN"))?
        .to_string();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn(&names.notifications_queue))
        .send()
        .await
        .map_err(fail("Subscribe"))?;

    // CodeDeploy: the application and its EC2 blue/green deployment group
    // with the Ready wait the validator gates on (README, "Create the deployment group").
    codedeploy
        .create_application()
        .application_name(&names.application)
        .compute_platform(aws_sdk_codedeploy::types::ComputePlatform::Server)
        .send()
        .await
        .map_err(fail("CreateApplication"))?;
    create_deployment_group(
        &codedeploy,
        &names.application,
        &names.deployment_group,
        &names.blue_asg,
        &names.target_group,
        settings,
    )
    .await?;

    // The state machine, from the same file and substitutions as template.yaml.
    let template = std::fs::read_to_string(project_root.join("template.yaml")).map_err(|e| {
        ProvisionError {
            step: "read template.yaml",
            message: e.to_string(),
        }
    })?;
    let asl = std::fs::read_to_string(project_root.join("statemachine/pipeline.asl.json"))
        .map_err(|e| ProvisionError {
            step: "read statemachine/pipeline.asl.json",
            message: e.to_string(),
        })?;
    let local = statemachine::LocalValues {
        region: REGION,
        account_id: ACCOUNT_ID,
        parameters: statemachine_parameters,
    };
    let definition = statemachine::substitutions(&template, &local)
        .and_then(|subs| statemachine::render(&asl, &subs))
        .and_then(|definition| {
            if polling_only {
                statemachine::polling_only(&definition)
            } else {
                Ok(definition)
            }
        })
        .map_err(|e| ProvisionError {
            step: "render the state machine",
            message: e.to_string(),
        })?;
    let machine = sfn
        .create_state_machine()
        .name(&names.state_machine)
        .definition(definition)
        .role_arn(format!(
            "arn:aws:iam::{ACCOUNT_ID}:role/greenlight-state-machine"
        ))
        .r#type(aws_sdk_sfn::types::StateMachineType::Standard)
        .send()
        .await
        .map_err(fail("CreateStateMachine"))?;

    let mut urls = queue_urls.into_iter();
    let mut next_url = || urls.next().unwrap_or_default();
    Ok(DemoResources {
        names: names.clone(),
        target_group_arn,
        standby_target_group_arn,
        listener_arn,
        load_balancer_arn,
        blue_instances,
        topic_arn,
        state_machine_arn: machine.state_machine_arn().to_string(),
        trigger_queue_url: next_url(),
        codedeploy_queue_url: next_url(),
        notifications_queue_url: next_url(),
        rejected_queue_url: next_url(),
        execution_queue_url: next_url(),
        deployment_events_queue_url: next_url(),
    })
}
