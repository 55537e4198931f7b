//! `Custom::GreenlightDeploymentGroup` against the local cloud: Create,
//! Update (after CodeDeploy swapped the group's ASG, as every copy-ASG
//! deployment does) and Delete, with the function's real handler on SDK
//! clients pointed at the local cloud, and a loopback HTTP server standing in
//! for CloudFormation's pre-signed ResponseURL. The local cloud runs no
//! CloudFormation: the test sends the requests CloudFormation would
//! (events/cfn-custom-resource-*.json).

use aws_sdk_codedeploy::Client as CodeDeployClient;
use aws_sdk_elasticloadbalancingv2::Client as Elbv2Client;
use deployment_group_resource::{handler, Config, Deps, Request};
use greenlight_core::group_resource::{CustomResourceResponse, ResponseStatus};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CREATE: &str = include_str!("../events/cfn-custom-resource-create.json");
const UPDATE: &str = include_str!("../events/cfn-custom-resource-update.json");
const DELETE: &str = include_str!("../events/cfn-custom-resource-delete.json");

/// One PUT to a loopback "pre-signed URL"; yields its body.
async fn response_url() -> (String, tokio::task::JoinHandle<CustomResourceResponse>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/cfn?X-Amz-Signature=0",
        listener.local_addr().expect("addr")
    );
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        let body = loop {
            let n = socket.read(&mut buf).await.expect("read");
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .and_then(|v| v.trim().parse::<usize>().ok())
                    })
                    .unwrap_or(0);
                if got.len() >= end + 4 + length {
                    break text[end + 4..].to_string();
                }
            }
            assert!(n > 0, "connection closed before the body: {text}");
        };
        socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        serde_json::from_str(&body).expect("answer json")
    });
    (url, task)
}

async fn send(
    deps: &Deps,
    fixture: &str,
    edit: impl FnOnce(&mut Request),
) -> CustomResourceResponse {
    let (url, answer) = response_url().await;
    let mut request: Request = serde_json::from_str(fixture).expect("fixture");
    request.response_url = url;
    edit(&mut request);
    handler(LambdaEvent::new(request, Context::default()), deps)
        .await
        .expect("answered");
    answer.await.expect("answer")
}

async fn application_tag(elb: &Elbv2Client, arn: &str) -> Option<String> {
    elb.describe_tags()
        .resource_arns(arn)
        .send()
        .await
        .expect("DescribeTags")
        .tag_descriptions()
        .iter()
        .flat_map(|d| d.tags())
        .find(|t| t.key() == Some("greenlight:application"))
        .and_then(|t| t.value().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread")]
async fn group_resource_creates_updates_and_deletes_on_the_local_cloud() {
    let cloud = greenlight_e2e::start("group-resource").await;
    let cd = CodeDeployClient::new(&cloud.sdk);
    let elb = Elbv2Client::new(&cloud.sdk);
    let deps = Deps {
        codedeploy: cd.clone(),
        elbv2: elb.clone(),
        http: greenlight_aws::group_resource::response_client().expect("client"),
        config: Config::default(),
    };
    // The application's own target group, in the demo's VPC.
    let vpc = elb
        .describe_target_groups()
        .target_group_arns(&cloud.resources.target_group_arn)
        .send()
        .await
        .expect("demo target group")
        .target_groups()[0]
        .vpc_id()
        .expect("vpc")
        .to_string();
    let tg_arn = elb
        .create_target_group()
        .name("shop-tg")
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(8080)
        .vpc_id(vpc)
        .send()
        .await
        .expect("CreateTargetGroup")
        .target_groups()[0]
        .target_group_arn()
        .expect("arn")
        .to_string();
    let blue_asg = cloud.resources.names.blue_asg.clone();
    let props = |r: &mut Request| {
        r.resource_properties["AutoScalingGroupName"] = json!(blue_asg);
    };

    // Create: application, blue/green group, target-group tag.
    let created = send(&deps, CREATE, props).await;
    assert_eq!(
        created.status,
        ResponseStatus::Success,
        "{:?}",
        created.reason
    );
    assert_eq!(created.physical_resource_id, "shop/shop-bluegreen");
    let info = cd
        .get_deployment_group()
        .application_name("shop")
        .deployment_group_name("shop-bluegreen")
        .send()
        .await
        .expect("group created")
        .deployment_group_info
        .expect("info");
    let facts = greenlight_aws::deployment_group::group_facts(&info);
    let setup = greenlight_aws::deployment_group::group_setup(&info);
    assert_eq!(facts.deployment_type.as_deref(), Some("BLUE_GREEN"));
    assert_eq!(
        facts.deployment_option.as_deref(),
        Some("WITH_TRAFFIC_CONTROL")
    );
    assert_eq!(
        facts.ready_action_on_timeout.as_deref(),
        Some("STOP_DEPLOYMENT")
    );
    assert_eq!(facts.ready_wait_minutes, Some(30));
    assert_eq!(facts.termination_wait_minutes, Some(5));
    assert_eq!(facts.target_groups, vec!["shop-tg"]);
    assert_eq!(facts.auto_scaling_groups, vec![blue_asg.clone()]);
    assert_eq!(
        setup.green_fleet_action.as_deref(),
        Some("COPY_AUTO_SCALING_GROUP")
    );
    assert!(setup.auto_rollback_enabled);
    assert_eq!(
        setup.auto_rollback_events,
        vec!["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_REQUEST"]
    );
    assert_eq!(
        application_tag(&elb, &tg_arn).await.as_deref(),
        Some("shop")
    );

    // A copy-ASG deployment leaves the group on CodeDeploy's copy.
    let copy = "CodeDeploy_shop-bluegreen_d-ABCDEFGHI";
    cd.update_deployment_group()
        .application_name("shop")
        .current_deployment_group_name("shop-bluegreen")
        .auto_scaling_groups(copy)
        .send()
        .await
        .expect("CodeDeploy's swap");

    // Update (new waits, same template ASG name): the copy stays.
    let updated = send(&deps, UPDATE, |r| {
        props(r);
        if let Some(old) = r.old_resource_properties.as_mut() {
            old["AutoScalingGroupName"] = json!(blue_asg);
        }
    })
    .await;
    assert_eq!(
        updated.status,
        ResponseStatus::Success,
        "{:?}",
        updated.reason
    );
    assert_eq!(updated.data["AutoScalingGroupName"], copy);
    let facts =
        greenlight_aws::deployment_group::read_deployment_group(&cd, "shop", "shop-bluegreen")
            .await
            .expect("group");
    assert_eq!(facts.auto_scaling_groups, vec![copy]);
    assert_eq!(facts.ready_wait_minutes, Some(45));
    assert_eq!(facts.termination_wait_minutes, Some(10));

    // Delete of a group this resource did not create (the demo's, under a
    // forged physical id): nothing is touched.
    let demo = cloud.resources.names.clone();
    let demo_tag = application_tag(&elb, &cloud.resources.target_group_arn).await;
    let foreign = send(&deps, DELETE, |r| {
        r.physical_resource_id = Some(format!("{}/{}", demo.application, demo.deployment_group));
        r.resource_properties["ApplicationName"] = json!(demo.application);
        r.resource_properties["TargetGroupName"] = json!(demo.target_group);
    })
    .await;
    assert_eq!(
        foreign.status,
        ResponseStatus::Success,
        "{:?}",
        foreign.reason
    );
    greenlight_aws::deployment_group::read_deployment_group(
        &cd,
        &demo.application,
        &demo.deployment_group,
    )
    .await
    .expect("the demo's group is still there");
    assert_eq!(
        application_tag(&elb, &cloud.resources.target_group_arn).await,
        demo_tag
    );

    // Delete: group, tag and application go; a second Delete is a no-op.
    let deleted = send(&deps, DELETE, props).await;
    assert_eq!(
        deleted.status,
        ResponseStatus::Success,
        "{:?}",
        deleted.reason
    );
    let gone = cd.get_application().application_name("shop").send().await;
    assert!(gone.is_err(), "application still there");
    assert_eq!(application_tag(&elb, &tg_arn).await, None);
    let again = send(&deps, DELETE, props).await;
    assert_eq!(again.status, ResponseStatus::Success, "{:?}", again.reason);

    // A create that cannot work is answered FAILED, naming the fix.
    let failed = send(&deps, CREATE, |r| {
        props(r);
        r.resource_properties["TargetGroupName"] = json!("no-such-tg");
    })
    .await;
    assert_eq!(failed.status, ResponseStatus::Failed);
    assert!(
        failed
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("no-such-tg does not exist"),
        "{:?}",
        failed.reason
    );
    cloud.shutdown().await;
}
