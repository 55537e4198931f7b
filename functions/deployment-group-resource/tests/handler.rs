//! The handler on the real SDK clients (aws-smithy-mocks) with a loopback
//! HTTP server standing in for CloudFormation's pre-signed ResponseURL.

use aws_sdk_codedeploy::operation::create_application::CreateApplicationOutput;
use aws_sdk_codedeploy::operation::create_deployment_group::CreateDeploymentGroupOutput;
use aws_sdk_codedeploy::operation::get_application::{GetApplicationError, GetApplicationOutput};
use aws_sdk_codedeploy::operation::get_deployment_group::GetDeploymentGroupOutput;
use aws_sdk_codedeploy::operation::list_deployment_groups::ListDeploymentGroupsOutput;
use aws_sdk_codedeploy::operation::list_tags_for_resource::ListTagsForResourceOutput;
use aws_sdk_codedeploy::operation::update_deployment_group::UpdateDeploymentGroupOutput;
use aws_sdk_codedeploy::types::error::ApplicationDoesNotExistException;
use aws_sdk_codedeploy::types::{AutoScalingGroup, DeploymentGroupInfo, Tag};
use aws_sdk_codedeploy::Client as CodeDeployClient;
use aws_sdk_elasticloadbalancingv2::operation::add_tags::AddTagsOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_tags::DescribeTagsOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::DescribeTargetGroupsOutput;
use aws_sdk_elasticloadbalancingv2::types::{TagDescription, TargetGroup};
use aws_sdk_elasticloadbalancingv2::Client as Elbv2Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use deployment_group_resource::{handler, Config, Deps, Request};
use greenlight_core::errors;
use greenlight_core::group_resource::{
    CustomResourceResponse, ResponseStatus, OWNER_RESOURCE_TAG_KEY, OWNER_STACK_TAG_KEY,
};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CREATE: &str = include_str!("../../../events/cfn-custom-resource-create.json");
const UPDATE: &str = include_str!("../../../events/cfn-custom-resource-update.json");
const DELETE: &str = include_str!("../../../events/cfn-custom-resource-delete.json");
const STACK: &str =
    "arn:aws:cloudformation:us-east-1:123456789012:stack/shop/5b1c2d40-8f3a-11ef-9a1b-0a1b2c3d4e5f";
const TG_ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-tg/50dc6c495c0c9188";

/// A loopback ResponseURL answering `status` to each of `requests` PUTs;
/// yields the bodies it got.
async fn response_url(
    status: u16,
    requests: usize,
) -> (String, tokio::task::JoinHandle<Vec<String>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/response?X-Amz-Signature=0",
        listener.local_addr().expect("addr")
    );
    let task = tokio::spawn(async move {
        let mut bodies = Vec::new();
        for _ in 0..requests {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut got = Vec::new();
            let mut buf = [0u8; 8192];
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
                                .and_then(|v| v.trim().parse::<usize>().ok())
                        })
                        .unwrap_or(0);
                    if got.len() >= end + 4 + length {
                        bodies.push(text[end + 4..].to_string());
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let reply =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            socket.write_all(reply.as_bytes()).await.expect("write");
        }
        bodies
    });
    (url, task)
}

fn request(text: &str, url: &str) -> Request {
    let mut r: Request = serde_json::from_str(text).expect("fixture");
    r.response_url = url.to_string();
    r
}

fn deps(cd: CodeDeployClient, elb: Elbv2Client) -> Deps {
    Deps {
        codedeploy: cd,
        elbv2: elb,
        http: greenlight_aws::group_resource::response_client().expect("client"),
        config: Config {
            response_attempts: 2,
            response_backoff: Duration::from_millis(10),
        },
    }
}

fn event(r: Request) -> LambdaEvent<Request> {
    LambdaEvent::new(r, Context::default())
}

fn parse(body: &str) -> CustomResourceResponse {
    serde_json::from_str(body).expect("answer json")
}

fn owner_tags() -> Vec<Tag> {
    vec![
        Tag::builder().key(OWNER_STACK_TAG_KEY).value(STACK).build(),
        Tag::builder()
            .key(OWNER_RESOURCE_TAG_KEY)
            .value("DeploymentGroup")
            .build(),
    ]
}

fn target_group(tag: Option<&'static str>) -> (Rule, Rule) {
    let describe = mock!(Elbv2Client::describe_target_groups).then_output(|| {
        DescribeTargetGroupsOutput::builder()
            .target_groups(
                TargetGroup::builder()
                    .target_group_arn(TG_ARN)
                    .target_group_name("shop-tg")
                    .port(80)
                    .build(),
            )
            .build()
    });
    let tags = mock!(Elbv2Client::describe_tags).then_output(move || {
        let mut d = TagDescription::builder().resource_arn(TG_ARN);
        if let Some(app) = tag {
            d = d.tags(
                aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                    .key("greenlight:application")
                    .value(app)
                    .build(),
            );
        }
        DescribeTagsOutput::builder()
            .tag_descriptions(d.build())
            .build()
    });
    (describe, tags)
}

#[tokio::test]
async fn create_makes_everything_and_answers_success() {
    let no_app = mock!(CodeDeployClient::get_application).then_error(|| {
        GetApplicationError::ApplicationDoesNotExistException(
            ApplicationDoesNotExistException::builder().build(),
        )
    });
    let create_app = mock!(CodeDeployClient::create_application)
        .then_output(|| CreateApplicationOutput::builder().build());
    let create_group = mock!(CodeDeployClient::create_deployment_group)
        .match_requests(|r| r.auto_scaling_groups() == ["shop-asg"])
        .then_output(|| {
            CreateDeploymentGroupOutput::builder()
                .deployment_group_id("g-1")
                .build()
        });
    let cd = mock_client!(
        aws_sdk_codedeploy,
        RuleMode::MatchAny,
        [&no_app, &create_app, &create_group]
    );
    let (describe, tags) = target_group(None);
    let add = mock!(Elbv2Client::add_tags).then_output(|| AddTagsOutput::builder().build());
    let elb = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::MatchAny,
        [&describe, &tags, &add]
    );
    let (url, server) = response_url(200, 1).await;
    let out = handler(event(request(CREATE, &url)), &deps(cd, elb))
        .await
        .expect("answered");
    assert_eq!(out.status, ResponseStatus::Success);
    let answer = parse(&server.await.expect("server")[0]);
    assert_eq!(answer.status, ResponseStatus::Success);
    assert_eq!(answer.physical_resource_id, "shop/shop-bluegreen");
    assert_eq!(answer.request_id, "7f0e5a2c-1d4b-4e8f-9c3a-2b6d8e0f1a3c");
    assert_eq!(answer.data["AutoScalingGroupName"], "shop-asg");
    assert_eq!(
        (
            create_app.num_calls(),
            create_group.num_calls(),
            add.num_calls()
        ),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn a_bad_property_is_answered_failed_without_touching_aws() {
    let cd = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, []);
    let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, []);
    let (url, server) = response_url(200, 1).await;
    let mut r = request(CREATE, &url);
    r.resource_properties["ReadyWaitMinutes"] = serde_json::json!("0");
    let out = handler(event(r), &deps(cd, elb)).await.expect("answered");
    assert_eq!(out.status, ResponseStatus::Failed);
    let answer = parse(&server.await.expect("server")[0]);
    assert_eq!(answer.status, ResponseStatus::Failed);
    let reason = answer.reason.expect("reason");
    assert!(reason.contains("ReadyWaitMinutes"), "{reason}");
    assert!(reason.contains("from 1 to 2880"), "{reason}");
}

#[tokio::test]
async fn a_failed_aws_call_is_answered_failed_with_its_reason() {
    let denied = mock!(CodeDeployClient::get_application).then_http_response(|| {
        aws_sdk_codedeploy::config::http::HttpResponse::new(
            400.try_into().expect("status"),
            aws_smithy_types::body::SdkBody::from(
                r#"{"__type":"AccessDeniedException","message":"not allowed"}"#,
            ),
        )
    });
    let cd = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&denied]);
    let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, []);
    let (url, server) = response_url(200, 1).await;
    handler(event(request(CREATE, &url)), &deps(cd, elb))
        .await
        .expect("answered");
    let answer = parse(&server.await.expect("server")[0]);
    assert_eq!(answer.status, ResponseStatus::Failed);
    let reason = answer.reason.expect("reason");
    assert!(reason.contains("GetApplication"), "{reason}");
    assert!(reason.contains("AccessDeniedException"), "{reason}");
}

#[tokio::test]
async fn update_keeps_the_asg_codedeploy_swapped_in() {
    let app = mock!(CodeDeployClient::get_application)
        .then_output(|| GetApplicationOutput::builder().build());
    let tags = mock!(CodeDeployClient::list_tags_for_resource).then_output(|| {
        ListTagsForResourceOutput::builder()
            .set_tags(Some(owner_tags()))
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
            .build()
    });
    let update = mock!(CodeDeployClient::update_deployment_group)
        .match_requests(|r| {
            r.auto_scaling_groups().is_empty()
                && r.blue_green_deployment_configuration()
                    .and_then(|b| b.deployment_ready_option())
                    .is_some_and(|o| o.wait_time_in_minutes() == 45)
        })
        .then_output(|| UpdateDeploymentGroupOutput::builder().build());
    let cd = mock_client!(
        aws_sdk_codedeploy,
        RuleMode::MatchAny,
        [&app, &tags, &group, &list, &update]
    );
    let (describe, tg_tags) = target_group(Some("shop"));
    let elb = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::MatchAny,
        [&describe, &tg_tags]
    );
    let (url, server) = response_url(200, 1).await;
    handler(event(request(UPDATE, &url)), &deps(cd, elb))
        .await
        .expect("answered");
    let answer = parse(&server.await.expect("server")[0]);
    assert_eq!(
        answer.status,
        ResponseStatus::Success,
        "{:?}",
        answer.reason
    );
    assert_eq!(answer.physical_resource_id, "shop/shop-bluegreen");
    assert_eq!(
        answer.data["AutoScalingGroupName"],
        "CodeDeploy_shop-bluegreen_d-ABCDEFGHI"
    );
    assert_eq!(update.num_calls(), 1);
}

#[tokio::test]
async fn delete_of_a_group_that_is_not_ours_changes_nothing() {
    let app = mock!(CodeDeployClient::get_application)
        .then_output(|| GetApplicationOutput::builder().build());
    let no_tags = mock!(CodeDeployClient::list_tags_for_resource)
        .then_output(|| ListTagsForResourceOutput::builder().build());
    let group = mock!(CodeDeployClient::get_deployment_group).then_output(|| {
        GetDeploymentGroupOutput::builder()
            .deployment_group_info(DeploymentGroupInfo::builder().build())
            .build()
    });
    let list = mock!(CodeDeployClient::list_deployment_groups).then_output(|| {
        ListDeploymentGroupsOutput::builder()
            .deployment_groups("shop-bluegreen")
            .build()
    });
    // No delete rule: a DeleteDeploymentGroup/DeleteApplication call would fail the test.
    let cd = mock_client!(
        aws_sdk_codedeploy,
        RuleMode::MatchAny,
        [&app, &no_tags, &group, &list]
    );
    let (describe, tg_tags) = target_group(Some("shop"));
    let elb = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::MatchAny,
        [&describe, &tg_tags]
    );
    let (url, server) = response_url(200, 1).await;
    let out = handler(event(request(DELETE, &url)), &deps(cd, elb))
        .await
        .expect("answered");
    let answer = parse(&server.await.expect("server")[0]);
    assert_eq!(
        answer.status,
        ResponseStatus::Success,
        "{:?}",
        answer.reason
    );
    assert!(
        out.notes.iter().any(|n| n.contains("left alone")),
        "{:?}",
        out.notes
    );
}

#[tokio::test]
async fn delete_after_a_failed_create_is_a_no_op() {
    let cd = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, []);
    let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, []);
    let (url, server) = response_url(200, 1).await;
    let mut r = request(DELETE, &url);
    r.physical_resource_id = Some("failed-7f0e5a2c".into());
    handler(event(r), &deps(cd, elb)).await.expect("answered");
    let answer = parse(&server.await.expect("server")[0]);
    assert_eq!(answer.status, ResponseStatus::Success);
    assert_eq!(answer.physical_resource_id, "failed-7f0e5a2c");
}

#[tokio::test]
async fn an_undeliverable_answer_fails_the_invocation_after_retrying() {
    let cd = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, []);
    let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, []);
    let (url, server) = response_url(403, 2).await;
    let mut r = request(DELETE, &url);
    r.physical_resource_id = Some("failed-x".into());
    let e = handler(event(r), &deps(cd, elb))
        .await
        .expect_err("refused");
    assert_eq!(server.await.expect("server").len(), 2);
    let d = Diagnostic::from(e);
    assert_eq!(d.error_type, errors::CUSTOM_RESOURCE_RESPONSE_FAILED);
    assert!(d.error_message.contains("HTTP 403"), "{}", d.error_message);
}
