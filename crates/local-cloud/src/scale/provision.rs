//! Creates one extra deployment group's resources through the AWS APIs of
//! the local cloud, as a second team's IaC would beside the demo's: its blue
//! Auto Scaling group (from the demo's launch template), its application
//! load balancer with a port-80 listener forwarding to its target group (the
//! seed's health check, as the demo's), and its deployment group in the
//! demo's CodeDeploy application, configured as the demo's.

use super::GroupNames;
use crate::provision::{
    create_deployment_group, provision_blue_fleet_behind_alb, BlueFleetNames, DemoNames,
    DemoSettings, ProvisionError,
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
    let codedeploy = aws_sdk_codedeploy::Client::new(sdk);
    let fleet = provision_blue_fleet_behind_alb(
        sdk,
        BlueFleetNames {
            launch_template: &demo.launch_template,
            blue_asg: &names.blue_asg,
            load_balancer: &names.load_balancer,
            target_group: &names.target_group,
        },
        settings,
        app_port,
    )
    .await?;
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
        target_group_arn: fleet.target_group_arn,
        load_balancer_arn: fleet.load_balancer_arn,
        listener_arn: fleet.listener_arn,
        blue_instances: fleet.blue_instances,
    })
}
