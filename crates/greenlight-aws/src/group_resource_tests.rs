use super::*;
use aws_sdk_codedeploy::operation::create_application::CreateApplicationOutput;
use aws_sdk_codedeploy::operation::create_deployment_group::CreateDeploymentGroupOutput;
use aws_sdk_codedeploy::operation::delete_deployment_group::DeleteDeploymentGroupOutput;
use aws_sdk_codedeploy::operation::get_application::GetApplicationOutput;
use aws_sdk_codedeploy::operation::get_deployment_group::{
    GetDeploymentGroupError, GetDeploymentGroupOutput,
};
use aws_sdk_codedeploy::operation::list_deployment_groups::ListDeploymentGroupsOutput;
use aws_sdk_codedeploy::operation::list_tags_for_resource::ListTagsForResourceOutput;
use aws_sdk_codedeploy::operation::update_deployment_group::UpdateDeploymentGroupOutput;
use aws_sdk_codedeploy::types::error::{
    ApplicationDoesNotExistException, DeploymentGroupDoesNotExistException,
};
use aws_sdk_codedeploy::types::{ApplicationInfo, AutoScalingGroup, DeploymentGroupInfo};
use aws_sdk_elasticloadbalancingv2::operation::add_tags::AddTagsOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_tags::DescribeTagsOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::DescribeTargetGroupsOutput;
use aws_sdk_elasticloadbalancingv2::types::{TagDescription, TargetGroup};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use greenlight_core::group_resource::{
    parse_spec, CustomResourceRequest, ResponseStatus, OWNER_RESOURCE_TAG_KEY, OWNER_STACK_TAG_KEY,
};

const CREATE: &str = include_str!("../../../events/cfn-custom-resource-create.json");
const STACK: &str =
    "arn:aws:cloudformation:us-east-1:123456789012:stack/shop/5b1c2d40-8f3a-11ef-9a1b-0a1b2c3d4e5f";
const TG_ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-tg/50dc6c495c0c9188";

fn request() -> CustomResourceRequest {
    serde_json::from_str(CREATE).expect("fixture")
}

fn owner() -> Owner {
    Owner::of(&request())
}

fn describe_tg() -> aws_smithy_mocks::Rule {
    mock!(Elbv2Client::describe_target_groups)
        .match_requests(|r| r.names() == ["shop-tg"])
        .then_output(|| {
            DescribeTargetGroupsOutput::builder()
                .target_groups(
                    TargetGroup::builder()
                        .target_group_arn(TG_ARN)
                        .target_group_name("shop-tg")
                        .port(8080)
                        .build(),
                )
                .build()
        })
}

fn tg_tags(app: Option<&'static str>) -> aws_smithy_mocks::Rule {
    mock!(Elbv2Client::describe_tags).then_output(move || {
        let mut d = TagDescription::builder().resource_arn(TG_ARN);
        if let Some(app) = app {
            d = d.tags(
                aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                    .key(APPLICATION_TAG_KEY)
                    .value(app)
                    .build(),
            );
        }
        DescribeTagsOutput::builder()
            .tag_descriptions(d.build())
            .build()
    })
}

#[tokio::test]
async fn observe_an_empty_account() {
    let no_app = mock!(CodeDeployClient::get_application).then_error(|| {
        GetApplicationError::ApplicationDoesNotExistException(
            ApplicationDoesNotExistException::builder()
                .message("no such application")
                .build(),
        )
    });
    let cd = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&no_app]);
    let (tgs, tags) = (describe_tg(), tg_tags(None));
    let elb = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::MatchAny,
        [&tgs, &tags]
    );
    let o = observe(&cd, &elb, STACK, "shop", "shop-bluegreen", &["shop-tg"])
        .await
        .expect("observed");
    assert_eq!(o.observed.application, None);
    assert_eq!(o.observed.group, None);
    assert_eq!(o.observed.target_group_tags["shop-tg"], None);
    assert_eq!(o.target_group_arns["shop-tg"], TG_ARN);
}

#[tokio::test]
async fn observe_reads_ownership_tags_the_current_asg_and_other_groups() {
    let app = mock!(CodeDeployClient::get_application).then_output(|| {
        GetApplicationOutput::builder()
            .application(ApplicationInfo::builder().application_name("shop").build())
            .build()
    });
    let tags = mock!(CodeDeployClient::list_tags_for_resource)
        .match_requests(|r| {
            r.resource_arn().is_some_and(|a| {
                a == "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:shop/shop-bluegreen"
                    || a == "arn:aws:codedeploy:us-east-1:123456789012:application:shop"
            })
        })
        .then_output(|| {
            ListTagsForResourceOutput::builder()
                .tags(Tag::builder().key(OWNER_STACK_TAG_KEY).value(STACK).build())
                .tags(
                    Tag::builder()
                        .key(OWNER_RESOURCE_TAG_KEY)
                        .value("DeploymentGroup")
                        .build(),
                )
                .build()
        });
    let group = mock!(CodeDeployClient::get_deployment_group).then_output(|| {
        GetDeploymentGroupOutput::builder()
            .deployment_group_info(
                DeploymentGroupInfo::builder()
                    .auto_scaling_groups(
                        AutoScalingGroup::builder()
                            .name("CodeDeploy_shop-bluegreen_d-ABCDEFGHI")
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let list = mock!(CodeDeployClient::list_deployment_groups).then_output(|| {
        ListDeploymentGroupsOutput::builder()
            .deployment_groups("shop-bluegreen")
            .deployment_groups("shop-canary")
            .build()
    });
    let cd = mock_client!(
        aws_sdk_codedeploy,
        RuleMode::MatchAny,
        [&app, &tags, &group, &list]
    );
    let (tgs, tg_tag) = (describe_tg(), tg_tags(Some("shop")));
    let elb = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::MatchAny,
        [&tgs, &tg_tag]
    );
    let o = observe(&cd, &elb, STACK, "shop", "shop-bluegreen", &["shop-tg"])
        .await
        .expect("observed");
    assert!(owner().owns(o.observed.application.as_deref().expect("app")));
    let g = o.observed.group.expect("group");
    assert!(owner().owns(&g.tags));
    assert_eq!(
        g.auto_scaling_groups,
        vec!["CodeDeploy_shop-bluegreen_d-ABCDEFGHI"]
    );
    assert_eq!(o.observed.other_groups, vec!["shop-canary"]);
    assert_eq!(
        o.observed.target_group_tags["shop-tg"].as_deref(),
        Some("shop")
    );
}

#[tokio::test]
async fn observe_tells_a_missing_group_from_a_failed_read() {
    let app = mock!(CodeDeployClient::get_application)
        .then_output(|| GetApplicationOutput::builder().build());
    let tags = mock!(CodeDeployClient::list_tags_for_resource)
        .then_output(|| ListTagsForResourceOutput::builder().build());
    let group = mock!(CodeDeployClient::get_deployment_group).then_error(|| {
        GetDeploymentGroupError::DeploymentGroupDoesNotExistException(
            DeploymentGroupDoesNotExistException::builder().build(),
        )
    });
    let list = mock!(CodeDeployClient::list_deployment_groups)
        .then_output(|| ListDeploymentGroupsOutput::builder().build());
    let cd = mock_client!(
        aws_sdk_codedeploy,
        RuleMode::MatchAny,
        [&app, &tags, &group, &list]
    );
    let missing_tg = mock!(Elbv2Client::describe_target_groups)
        .then_output(|| DescribeTargetGroupsOutput::builder().build());
    let elb = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::MatchAny,
        [&missing_tg]
    );
    let o = observe(&cd, &elb, STACK, "shop", "shop-bluegreen", &["shop-tg"])
        .await
        .expect("observed");
    assert_eq!(o.observed.application, Some(vec![]));
    assert_eq!(o.observed.group, None);
    assert!(o.observed.target_group_tags.is_empty());

    let throttled = mock!(CodeDeployClient::get_application)
        .then_http_response(|| crate::test_support::json_error(400, "ThrottlingException"));
    let cd = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&throttled]);
    let e = observe(&cd, &elb, STACK, "shop", "shop-bluegreen", &[])
        .await
        .expect_err("throttled");
    assert!(e.transient, "{e}");
    assert_eq!(e.operation, "GetApplication");
}

#[tokio::test]
async fn create_sends_the_whole_blue_green_shape_with_owner_tags() {
    let spec = parse_spec(&request().resource_properties).expect("spec");
    let create_app = mock!(CodeDeployClient::create_application)
        .match_requests(|r| {
            r.application_name() == Some("shop")
                && r.compute_platform().map(|p| p.as_str()) == Some("Server")
                && r.tags().len() == 2
        })
        .then_output(|| CreateApplicationOutput::builder().build());
    let create_group = mock!(CodeDeployClient::create_deployment_group)
        .match_requests(|r| {
            let bg = r.blue_green_deployment_configuration().expect("bg");
            let ready = bg.deployment_ready_option().expect("ready");
            let term = bg
                .terminate_blue_instances_on_deployment_success()
                .expect("term");
            let rollback = r.auto_rollback_configuration().expect("rollback");
            r.deployment_group_name() == Some("shop-bluegreen")
                && r.auto_scaling_groups() == ["shop-asg"]
                && r.service_role_arn()
                    == Some("arn:aws:iam::123456789012:role/CodeDeployServiceRole")
                && r.deployment_style().and_then(|s| s.deployment_type())
                    == Some(&DeploymentType::BlueGreen)
                && r.deployment_style().and_then(|s| s.deployment_option())
                    == Some(&DeploymentOption::WithTrafficControl)
                && ready.action_on_timeout() == Some(&DeploymentReadyAction::StopDeployment)
                && ready.wait_time_in_minutes() == 30
                && bg
                    .green_fleet_provisioning_option()
                    .and_then(|g| g.action())
                    == Some(&GreenFleetProvisioningAction::CopyAutoScalingGroup)
                && term.action() == Some(&InstanceAction::Terminate)
                && term.termination_wait_time_in_minutes() == 5
                && rollback.enabled()
                && rollback.events()
                    == [
                        AutoRollbackEvent::DeploymentFailure,
                        AutoRollbackEvent::DeploymentStopOnRequest,
                    ]
                && r.load_balancer_info()
                    .map(|l| l.target_group_info_list())
                    .is_some_and(|l| l.len() == 1 && l[0].name() == Some("shop-tg"))
                && r.tags()
                    .iter()
                    .any(|t| t.key() == Some(OWNER_STACK_TAG_KEY) && t.value() == Some(STACK))
        })
        .then_output(|| CreateDeploymentGroupOutput::builder().build());
    let cd = mock_client!(
        aws_sdk_codedeploy,
        RuleMode::MatchAny,
        [&create_app, &create_group]
    );
    let add = mock!(Elbv2Client::add_tags)
        .match_requests(|r| {
            r.resource_arns() == [TG_ARN]
                && r.tags().len() == 1
                && r.tags()[0].key() == Some(APPLICATION_TAG_KEY)
                && r.tags()[0].value() == Some("shop")
        })
        .then_output(|| AddTagsOutput::builder().build());
    let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&add]);
    let arns = BTreeMap::from([("shop-tg".to_string(), TG_ARN.to_string())]);
    for action in [
        Action::CreateApplication {
            application: "shop".into(),
        },
        Action::CreateGroup {
            spec: spec.clone(),
            auto_scaling_group: "shop-asg".into(),
        },
        Action::TagTargetGroup {
            target_group: "shop-tg".into(),
            application: "shop".into(),
        },
    ] {
        apply_action(&cd, &elb, &owner(), &arns, &action)
            .await
            .expect("applied");
    }
    assert_eq!(create_app.num_calls(), 1);
    assert_eq!(create_group.num_calls(), 1);
    assert_eq!(add.num_calls(), 1);
}

#[tokio::test]
async fn update_leaves_the_asgs_out_unless_told() {
    let spec = parse_spec(&request().resource_properties).expect("spec");
    let keep = mock!(CodeDeployClient::update_deployment_group)
        .match_requests(|r| {
            r.auto_scaling_groups().is_empty()
                && r.current_deployment_group_name() == Some("shop-bluegreen")
        })
        .then_output(|| UpdateDeploymentGroupOutput::builder().build());
    let cd = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&keep]);
    let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, []);
    let action = Action::UpdateGroup {
        spec,
        auto_scaling_groups: None,
    };
    apply_action(&cd, &elb, &owner(), &BTreeMap::new(), &action)
        .await
        .expect("applied");
    assert_eq!(keep.num_calls(), 1);
}

#[tokio::test]
async fn delete_errors_are_typed() {
    let denied = mock!(CodeDeployClient::delete_deployment_group)
        .then_http_response(|| crate::test_support::json_error(400, "AccessDeniedException"));
    let cd = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&denied]);
    let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, []);
    let action = Action::DeleteGroup {
        application: "shop".into(),
        group: "shop-bluegreen".into(),
    };
    let e = apply_action(&cd, &elb, &owner(), &BTreeMap::new(), &action)
        .await
        .expect_err("denied");
    assert_eq!(e.operation, "DeleteDeploymentGroup");
    assert_eq!(e.code.as_deref(), Some("AccessDeniedException"));
    assert!(!e.transient);

    let ok = mock!(CodeDeployClient::delete_deployment_group)
        .then_output(|| DeleteDeploymentGroupOutput::builder().build());
    let cd = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&ok]);
    apply_action(&cd, &elb, &owner(), &BTreeMap::new(), &action)
        .await
        .expect("deleted");
}

/// A loopback HTTP server standing in for the pre-signed S3 URL: answers
/// `status` once and hands back the request it got.
async fn response_url(status: u16) -> (String, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/cfn-response?X-Amz-Signature=abc",
        listener.local_addr().expect("addr")
    );
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).await.expect("read");
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if got.len() >= end + 4 + length {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        let reply =
            format!("HTTP/1.1 {status} X\r\ncontent-length: 5\r\nconnection: close\r\n\r\nnope!");
        socket.write_all(reply.as_bytes()).await.expect("write");
        String::from_utf8_lossy(&got).to_string()
    });
    (url, task)
}

#[tokio::test]
async fn the_answer_is_a_put_of_the_json_body() {
    let (url, server) = response_url(200).await;
    let client = response_client().expect("client");
    let answer = greenlight_core::group_resource::success(
        &request(),
        "shop/shop-bluegreen",
        BTreeMap::from([("ApplicationName".to_string(), "shop".to_string())]),
    );
    send_response(&client, &url, &answer).await.expect("sent");
    let got = server.await.expect("server");
    assert!(
        got.starts_with("PUT /cfn-response?X-Amz-Signature=abc HTTP/1.1"),
        "{got}"
    );
    let body: CustomResourceResponse =
        serde_json::from_str(&got[got.find("\r\n\r\n").expect("body") + 4..]).expect("json");
    assert_eq!(body.status, ResponseStatus::Success);
    assert_eq!(body.physical_resource_id, "shop/shop-bluegreen");
    assert_eq!(body.data["ApplicationName"], "shop");
}

#[tokio::test]
async fn a_refused_answer_is_an_error() {
    let (url, _server) = response_url(403).await;
    let client = response_client().expect("client");
    let answer = greenlight_core::group_resource::failure(&request(), "boom");
    let e = send_response(&client, &url, &answer)
        .await
        .expect_err("refused");
    assert!(
        matches!(e, ResponseError::Status { status: 403, .. }),
        "{e}"
    );
    let e = send_response(&client, "not a url", &answer)
        .await
        .expect_err("bad url");
    assert!(
        matches!(e, ResponseError::BadUrl(_) | ResponseError::Send(_)),
        "{e}"
    );
}
