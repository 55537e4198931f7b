//! Creates one extra deployment group's resources through the AWS APIs of
//! the local cloud, as a second team's IaC would beside the demo's: its blue
//! Auto Scaling group (from the demo's launch template), its application
//! load balancer with a port-80 listener forwarding to its target group (the
//! seed's health check, as the demo's), and its deployment group in the
//! demo's CodeDeploy application, configured as the demo's.

use super::GroupNames;
use crate::provision::{
    create_deployment_group, create_target_group, fail, missing, network, DemoNames, DemoSettings,
    ProvisionError,
};

/// What provisioning one extra group created.
#[derive(Debug, Clone)]
pub struct GroupResources {
    pub names: GroupNames,
    pub target_group_arn: String,
    pub load_balancer_arn: String,
    pub listener_arn: String,
    pub blue_instances: Vec<String>,
}

/// Creates group `names` (after the demo's [`crate::provision::provision`]:
/// its launch template and application exist). `settings` gives the fleet
/// size and the health check to create the target group with.
pub async fn provision_group(
    sdk: &aws_config::SdkConfig,
    demo: &DemoNames,
    names: &GroupNames,
    settings: &DemoSettings,
    app_port: u16,
) -> Result<GroupResources, ProvisionError> {
    use aws_sdk_elasticloadbalancingv2::types as elb_types;
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let asg = aws_sdk_autoscaling::Client::new(sdk);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
    let codedeploy = aws_sdk_codedeploy::Client::new(sdk);
    let (vpc_id, subnet_ids) = network(&ec2).await?;

    asg.create_auto_scaling_group()
        .auto_scaling_group_name(&names.blue_asg)
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name(&demo.launch_template)
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
        .auto_scaling_group_names(&names.blue_asg)
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
        .name(&names.load_balancer)
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
        &names.target_group,
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

    create_deployment_group(
        &codedeploy,
        &demo.application,
        &names.deployment_group,
        &names.blue_asg,
        &names.target_group,
        settings,
    )
    .await?;
    Ok(GroupResources {
        names: names.clone(),
        target_group_arn,
        load_balancer_arn,
        listener_arn,
        blue_instances,
    })
}
