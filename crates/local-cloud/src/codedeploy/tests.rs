//! API-level tests: wire shapes, validation and errors. The runner is held in
//! `Created` (a long queue time) so no AWS call is made; the end-to-end tests
//! in `tests/` run deployments for real.

use super::*;
use serde_json::{json, Value};
use std::time::Duration;

/// A stand-in S3 for HeadObject: 404 for keys containing "missing", else 200
/// with ETag "abc". Any other AWS call the runner would make also gets a 200
/// with an empty body, but the runner is held in `Created` here.
async fn s3_stub() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let line = head.lines().next().unwrap_or_default().to_string();
                let answer = if line.contains("missing") {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                } else {
                    "HTTP/1.1 200 OK\r\nETag: \"abc\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                };
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

async fn codedeploy() -> Arc<CodeDeploy> {
    let scale = TimeScale::new(1.0);
    let sdk = aws_config::SdkConfig::builder()
        .endpoint_url(s3_stub().await)
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
            aws_sdk_s3::config::Credentials::new("AKIDLOCAL", "local-secret", None, None, "test"),
        ))
        .region(aws_config::Region::new("us-east-1"))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let work = std::env::temp_dir().join(format!("gl-cd-test-{}", std::process::id()));
    let fleet = Fleet::new(18080, scale, work);
    let elbv2 = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let lb = LoadBalancer::new(fleet.clone(), scale, elbv2);
    let timings = LifecycleTimings {
        queue: Duration::from_secs(3600),
        ..LifecycleTimings::default()
    };
    CodeDeploy::with_timings(
        CodeDeployDeps {
            fleet,
            lb,
            scale,
            sdk,
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            faults: Arc::new(crate::faults::Faults::default()),
        },
        timings,
    )
}

async fn call(cd: &Arc<CodeDeploy>, op: &str, body: Value) -> (u16, Value) {
    let (status, bytes) = cd.handle(op, body.to_string().as_bytes()).await;
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn group_request() -> Value {
    json!({
        "applicationName": "app",
        "deploymentGroupName": "group",
        "serviceRoleArn": "arn:aws:iam::123456789012:role/CodeDeployServiceRole",
        "autoScalingGroups": ["blue-asg"],
        "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        "blueGreenDeploymentConfiguration": {
            "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60},
            "greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"},
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 5}
        },
        "loadBalancerInfo": {"targetGroupInfoList": [{"name": "tg"}]},
        "autoRollbackConfiguration": {"enabled": true, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_REQUEST"]}
    })
}

fn deployment_request() -> Value {
    json!({
        "applicationName": "app",
        "deploymentGroupName": "group",
        "revision": {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "app/1.zip", "bundleType": "zip"}},
        "description": "greenlight execution gl-app-1"
    })
}

async fn with_group() -> Arc<CodeDeploy> {
    let cd = codedeploy().await;
    assert_eq!(
        call(&cd, "CreateApplication", json!({"applicationName": "app"}))
            .await
            .0,
        200
    );
    assert_eq!(
        call(&cd, "CreateDeploymentGroup", group_request()).await.0,
        200
    );
    cd
}

#[tokio::test]
async fn deployment_group_round_trips_with_asg_objects() {
    let cd = with_group().await;
    let (status, body) = call(
        &cd,
        "GetDeploymentGroup",
        json!({"applicationName": "app", "deploymentGroupName": "group"}),
    )
    .await;
    assert_eq!(status, 200);
    let info = &body["deploymentGroupInfo"];
    assert_eq!(info["deploymentGroupName"], "group");
    assert_eq!(info["autoScalingGroups"][0]["name"], "blue-asg");
    assert_eq!(info["deploymentStyle"]["deploymentType"], "BLUE_GREEN");
    assert_eq!(
        info["blueGreenDeploymentConfiguration"]["deploymentReadyOption"]["actionOnTimeout"],
        "STOP_DEPLOYMENT"
    );
    assert_eq!(info["deploymentConfigName"], "CodeDeployDefault.OneAtATime");
}

#[tokio::test]
async fn unknown_application_and_group_are_aws_errors() {
    let cd = with_group().await;
    let (status, body) = call(
        &cd,
        "GetDeploymentGroup",
        json!({"applicationName": "nope", "deploymentGroupName": "group"}),
    )
    .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("ApplicationDoesNotExistException"))
    );
    let (status, body) = call(
        &cd,
        "GetDeploymentGroup",
        json!({"applicationName": "app", "deploymentGroupName": "nope"}),
    )
    .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("DeploymentGroupDoesNotExistException"))
    );
}

#[tokio::test]
async fn second_deployment_in_a_busy_group_is_limit_exceeded() {
    let cd = with_group().await;
    let (status, body) = call(&cd, "CreateDeployment", deployment_request()).await;
    assert_eq!(status, 200);
    let id = body["deploymentId"].as_str().unwrap().to_string();
    assert!(id.starts_with("d-") && id.len() == 11, "{id}");
    let (status, body) = call(&cd, "CreateDeployment", deployment_request()).await;
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "DeploymentLimitExceededException");
    assert!(body["message"].as_str().unwrap().contains(&id));
}

#[tokio::test]
async fn get_deployment_has_aws_shape() {
    let cd = with_group().await;
    let (_, body) = call(&cd, "CreateDeployment", deployment_request()).await;
    let id = body["deploymentId"].as_str().unwrap();
    let (status, body) = call(&cd, "GetDeployment", json!({"deploymentId": id})).await;
    assert_eq!(status, 200);
    let info = &body["deploymentInfo"];
    assert_eq!(info["status"], "Created");
    assert_eq!(info["description"], "greenlight execution gl-app-1");
    assert_eq!(info["revision"]["s3Location"]["key"], "app/1.zip");
    assert_eq!(info["targetInstances"]["autoScalingGroups"][0], "blue-asg");
    assert!(info["createTime"].as_f64().unwrap() > 1.6e9);
    assert_eq!(info["deploymentOverview"]["Pending"], 0);
}

#[tokio::test]
async fn list_deployments_filters_by_status() {
    let cd = with_group().await;
    call(&cd, "CreateDeployment", deployment_request()).await;
    let (_, body) = call(&cd, "ListDeployments", json!({"applicationName": "app", "deploymentGroupName": "group", "includeOnlyStatuses": ["Created"]})).await;
    assert_eq!(body["deployments"].as_array().unwrap().len(), 1);
    let (_, body) = call(&cd, "ListDeployments", json!({"applicationName": "app", "deploymentGroupName": "group", "includeOnlyStatuses": ["Succeeded"]})).await;
    assert!(body["deployments"].as_array().unwrap().is_empty());
    let (status, body) = call(
        &cd,
        "ListDeployments",
        json!({"includeOnlyStatuses": ["Bogus"]}),
    )
    .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("InvalidDeploymentStatusException"))
    );
}

#[tokio::test]
async fn invalid_and_unknown_deployment_ids() {
    let cd = with_group().await;
    let (status, body) = call(&cd, "GetDeployment", json!({"deploymentId": "nope"})).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("InvalidDeploymentIdException"))
    );
    let (status, body) = call(&cd, "GetDeployment", json!({"deploymentId": "d-AAAAAAAAA"})).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("DeploymentDoesNotExistException"))
    );
}

#[tokio::test]
async fn continue_requires_ready_and_stop_is_pending() {
    let cd = with_group().await;
    let (_, body) = call(&cd, "CreateDeployment", deployment_request()).await;
    let id = body["deploymentId"].as_str().unwrap().to_string();
    let (status, body) = call(
        &cd,
        "ContinueDeployment",
        json!({"deploymentId": id, "deploymentWaitType": "READY_WAIT"}),
    )
    .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("DeploymentIsNotInReadyStateException"))
    );
    let (status, body) = call(
        &cd,
        "StopDeployment",
        json!({"deploymentId": id, "autoRollbackEnabled": true}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "Pending");
}

#[tokio::test]
async fn revision_and_style_validation() {
    let cd = with_group().await;
    let mut bad = deployment_request();
    bad["revision"]["s3Location"]["bundleType"] = json!("rar");
    let (status, body) = call(&cd, "CreateDeployment", bad).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("InvalidRevisionException"))
    );
    let mut no_lb = group_request();
    no_lb["deploymentGroupName"] = json!("other");
    no_lb.as_object_mut().unwrap().remove("loadBalancerInfo");
    let (status, body) = call(&cd, "CreateDeploymentGroup", no_lb).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("InvalidLoadBalancerInfoException"))
    );
}

#[tokio::test]
async fn update_deployment_group_repoints_asgs() {
    let cd = with_group().await;
    let (status, _) = call(&cd, "UpdateDeploymentGroup", json!({"applicationName": "app", "currentDeploymentGroupName": "group", "autoScalingGroups": ["green-asg"]})).await;
    assert_eq!(status, 200);
    let (_, body) = call(
        &cd,
        "GetDeploymentGroup",
        json!({"applicationName": "app", "deploymentGroupName": "group"}),
    )
    .await;
    assert_eq!(
        body["deploymentGroupInfo"]["autoScalingGroups"][0]["name"],
        "green-asg"
    );
}

#[tokio::test]
async fn create_deployment_validations_greenlight_can_hit() {
    let cd = with_group().await;
    // The revision must exist in S3.
    let mut missing = deployment_request();
    missing["revision"]["s3Location"]["key"] = json!("app/missing.zip");
    let (status, body) = call(&cd, "CreateDeployment", missing).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("RevisionDoesNotExistException")),
        "{body}"
    );
    // ...with the eTag the revision names.
    let mut wrong_etag = deployment_request();
    wrong_etag["revision"]["s3Location"]["eTag"] = json!("def");
    let (_, body) = call(&cd, "CreateDeployment", wrong_etag).await;
    assert_eq!(body["__type"], "RevisionDoesNotExistException");
    // A description of at most 100 characters.
    let mut long = deployment_request();
    long["description"] = json!("x".repeat(101));
    let (status, body) = call(&cd, "CreateDeployment", long).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("DescriptionTooLongException"))
    );
    let mut exactly = deployment_request();
    exactly["description"] = json!("x".repeat(100));
    let (status, body) = call(&cd, "CreateDeployment", exactly).await;
    assert_eq!(status, 200, "{body}");
    let id = body["deploymentId"].as_str().unwrap().to_string();
    // No targets before the deployment started.
    let (status, body) = call(&cd, "ListDeploymentTargets", json!({"deploymentId": id})).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("DeploymentNotStartedException"))
    );
}

#[tokio::test]
async fn copying_more_than_one_auto_scaling_group_is_refused() {
    let cd = codedeploy().await;
    call(&cd, "CreateApplication", json!({"applicationName": "app"})).await;
    let mut two = group_request();
    two["autoScalingGroups"] = json!(["blue-a", "blue-b"]);
    assert_eq!(call(&cd, "CreateDeploymentGroup", two).await.0, 200);
    let (status, body) = call(&cd, "CreateDeployment", deployment_request()).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("InvalidAutoScalingGroupException"))
    );
    assert!(body["message"].as_str().unwrap().contains("blue-a, blue-b"));
}

#[tokio::test]
async fn custom_deployment_configs_round_trip_and_decide_deployments() {
    let cd = with_group().await;
    let (_, body) = call(
        &cd,
        "GetDeploymentConfig",
        json!({"deploymentConfigName": "CodeDeployDefault.OneAtATime"}),
    )
    .await;
    assert_eq!(
        body["deploymentConfigInfo"]["minimumHealthyHosts"],
        json!({"type": "MOST_CONCURRENCY", "value": 1})
    );
    let create = json!({"deploymentConfigName": "TwoHealthy", "minimumHealthyHosts": {"type": "HOST_COUNT", "value": 2}});
    let (status, body) = call(&cd, "CreateDeploymentConfig", create.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["deploymentConfigId"].is_string());
    let (status, body) = call(&cd, "CreateDeploymentConfig", create).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("DeploymentConfigAlreadyExistsException"))
    );
    let (_, body) = call(
        &cd,
        "GetDeploymentConfig",
        json!({"deploymentConfigName": "TwoHealthy"}),
    )
    .await;
    assert_eq!(
        body["deploymentConfigInfo"]["minimumHealthyHosts"],
        json!({"type": "HOST_COUNT", "value": 2})
    );
    for bad in [
        json!({"type": "FLEET_PERCENT", "value": 100}),
        json!({"type": "HOST_COUNT", "value": -1}),
        json!({"type": "MOST_CONCURRENCY", "value": 1}),
    ] {
        let (status, body) = call(
            &cd,
            "CreateDeploymentConfig",
            json!({"deploymentConfigName": "Bad", "minimumHealthyHosts": bad}),
        )
        .await;
        assert_eq!(
            (status, body["__type"].as_str()),
            (400, Some("InvalidMinimumHealthyHostValueException")),
            "{bad}"
        );
    }
    // A deployment takes the custom config; while it runs the config is in use.
    let mut request = deployment_request();
    request["deploymentConfigName"] = json!("TwoHealthy");
    let (status, body) = call(&cd, "CreateDeployment", request).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &cd,
        "DeleteDeploymentConfig",
        json!({"deploymentConfigName": "TwoHealthy"}),
    )
    .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("DeploymentConfigInUseException"))
    );
    let (status, body) = call(
        &cd,
        "DeleteDeploymentConfig",
        json!({"deploymentConfigName": "CodeDeployDefault.AllAtOnce"}),
    )
    .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("InvalidOperationException"))
    );
    let (_, body) = call(&cd, "ListDeploymentConfigs", json!({})).await;
    assert_eq!(body["deploymentConfigsList"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn tags_on_create_are_listed_and_go_with_their_resource() {
    let cd = codedeploy().await;
    let owner = json!([{"Key": "greenlight:stack-id", "Value": "arn:stack"}]);
    let (status, _) = call(
        &cd,
        "CreateApplication",
        json!({"applicationName": "app", "tags": owner}),
    )
    .await;
    assert_eq!(status, 200);
    let mut group = group_request();
    group["tags"] = owner.clone();
    assert_eq!(call(&cd, "CreateDeploymentGroup", group).await.0, 200);
    let app_arn = "arn:aws:codedeploy:us-east-1:123456789012:application:app";
    let group_arn = "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:app/group";
    for arn in [app_arn, group_arn] {
        let (status, body) = call(&cd, "ListTagsForResource", json!({"ResourceArn": arn})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["Tags"], owner, "{arn}");
    }
    // Tags are not part of the group's settings.
    let (_, info) = call(
        &cd,
        "GetDeploymentGroup",
        json!({"applicationName": "app", "deploymentGroupName": "group"}),
    )
    .await;
    assert!(info["deploymentGroupInfo"].get("tags").is_none());
    // TagResource adds and replaces by key.
    let (status, _) = call(
        &cd,
        "TagResource",
        json!({"ResourceArn": group_arn, "Tags": [{"Key": "greenlight:stack-id", "Value": "other"}, {"Key": "team", "Value": "web"}]}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, body) = call(
        &cd,
        "ListTagsForResource",
        json!({"ResourceArn": group_arn}),
    )
    .await;
    assert_eq!(body["Tags"].as_array().map(Vec::len), Some(2));
    // Deleting a group that does not exist is no error; deleting the group
    // removes its tags, deleting the application removes everything.
    let (status, _) = call(
        &cd,
        "DeleteDeploymentGroup",
        json!({"applicationName": "app", "deploymentGroupName": "nope"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &cd,
        "DeleteDeploymentGroup",
        json!({"applicationName": "app"}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = call(
        &cd,
        "DeleteDeploymentGroup",
        json!({"applicationName": "app", "deploymentGroupName": "group"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(
        &cd,
        "ListTagsForResource",
        json!({"ResourceArn": group_arn}),
    )
    .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("DeploymentGroupDoesNotExistException"))
    );
    assert_eq!(
        call(&cd, "DeleteApplication", json!({"applicationName": "app"}))
            .await
            .0,
        200
    );
    let (status, body) = call(&cd, "ListTagsForResource", json!({"ResourceArn": app_arn})).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("ApplicationDoesNotExistException"))
    );
    let (status, body) = call(
        &cd,
        "ListTagsForResource",
        json!({"ResourceArn": "arn:aws:codedeploy:us-east-1:123456789012:deploymentconfig:x"}),
    )
    .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("ArnNotSupportedException"))
    );
}
