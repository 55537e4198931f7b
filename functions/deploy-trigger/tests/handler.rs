//! Handler tests: real SDK clients with aws-smithy-mocks, every events/ file
//! used by this function parsed by the handler.

use aws_sdk_codedeploy::operation::get_deployment_group::{
    GetDeploymentGroupError, GetDeploymentGroupOutput,
};
use aws_sdk_codedeploy::types::error::{
    ApplicationDoesNotExistException, DeploymentGroupDoesNotExistException,
};
use aws_sdk_codedeploy::types::{
    BlueGreenDeploymentConfiguration, DeploymentGroupInfo, DeploymentOption, DeploymentReadyAction,
    DeploymentReadyOption, DeploymentStyle, DeploymentType, LoadBalancerInfo, TargetGroupInfo,
};
use aws_sdk_codepipeline::operation::put_job_failure_result::PutJobFailureResultError;
use aws_sdk_codepipeline::operation::put_job_failure_result::{
    PutJobFailureResultInput, PutJobFailureResultOutput,
};
use aws_sdk_codepipeline::operation::put_job_success_result::{
    PutJobSuccessResultError, PutJobSuccessResultInput, PutJobSuccessResultOutput,
};
use aws_sdk_codepipeline::types::error::InvalidJobStateException;
use aws_sdk_sfn::operation::describe_execution::{DescribeExecutionError, DescribeExecutionOutput};
use aws_sdk_sfn::operation::start_execution::{
    StartExecutionError, StartExecutionInput, StartExecutionOutput,
};
use aws_sdk_sfn::types::error::{
    ExecutionAlreadyExists, ExecutionDoesNotExist, StateMachineDoesNotExist,
};
use aws_sdk_sfn::types::ExecutionStatus;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use deploy_trigger::{handler, Config, Deps, Error, Response};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

const EB_CREATED: &str = include_str!("../../../events/s3-eventbridge-object-created.json");
const EB_DELETED: &str = include_str!("../../../events/s3-eventbridge-object-deleted.json");
const NOTIFICATION_PUT: &str = include_str!("../../../events/s3-notification-put.json");
const PIPELINE_JOB: &str = include_str!("../../../events/codepipeline-job.json");
const PIPELINE_CONTINUATION: &str =
    include_str!("../../../events/codepipeline-job-continuation.json");

const SM_ARN: &str = "arn:aws:states:us-east-1:111122223333:stateMachine:greenlight-pipeline";
const BUCKET: &str = "greenlight-artifacts-111122223333";
/// The pipeline artifact store of the CodePipeline fixtures.
const PIPELINE_BUCKET: &str = "codepipeline-us-east-1-111122223333";
/// The key of the S3 fixtures, exactly as stored.
const STORED_KEY: &str = "artifacts/shop/2024-05-01T12:00:00 build+42 café.zip";
const JOB_ID: &str = "11111111-abcd-1111-abcd-111111abcdef";
const CONTINUATION_JOB_ID: &str = "22222222-abcd-2222-abcd-222222abcdef";

fn event(json: &str) -> Value {
    serde_json::from_str(json).expect("fixture is JSON")
}

fn lambda_event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

fn config(key_mapping: Option<&str>) -> Config {
    Config::new(
        SM_ARN,
        BUCKET,
        Some(PIPELINE_BUCKET),
        "artifacts/",
        "shop-prod",
        key_mapping,
    )
    .expect("config")
}

struct Mocks {
    sfn: Vec<Rule>,
    codedeploy: Vec<Rule>,
    codepipeline: Vec<Rule>,
    /// GetObjectTagging; empty = the upload has no tags.
    s3: Vec<Rule>,
    key_mapping: Option<&'static str>,
    approval_config: Option<&'static str>,
}

/// GetObjectTagging answering `tags` for every object.
fn tagging(tags: &[(&str, &str)]) -> Rule {
    let set: Vec<aws_sdk_s3::types::Tag> = tags
        .iter()
        .map(|(k, v)| {
            aws_sdk_s3::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build()
                .expect("tag")
        })
        .collect();
    mock!(aws_sdk_s3::Client::get_object_tagging).then_output(move || {
        aws_sdk_s3::operation::get_object_tagging::GetObjectTaggingOutput::builder()
            .set_tag_set(Some(set.clone()))
            .build()
            .expect("tagging output")
    })
}

impl Mocks {
    fn new() -> Self {
        Self {
            sfn: vec![],
            codedeploy: vec![],
            codepipeline: vec![],
            s3: vec![],
            key_mapping: None,
            approval_config: None,
        }
    }

    fn deps(&self) -> Deps {
        let sfn: Vec<&Rule> = self.sfn.iter().collect();
        let cd: Vec<&Rule> = self.codedeploy.iter().collect();
        let cp: Vec<&Rule> = self.codepipeline.iter().collect();
        let untagged = tagging(&[]);
        let mut s3: Vec<&Rule> = self.s3.iter().collect();
        if s3.is_empty() {
            s3.push(&untagged);
        }
        let mut config = config(self.key_mapping);
        if let Some(raw) = self.approval_config {
            config.approval =
                greenlight_core::options::parse_approval_config(raw).expect("approval config");
        }
        Deps {
            sfn: mock_client!(aws_sdk_sfn, RuleMode::MatchAny, sfn),
            s3: mock_client!(aws_sdk_s3, RuleMode::MatchAny, s3),
            codedeploy: mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, cd),
            codepipeline: mock_client!(aws_sdk_codepipeline, RuleMode::MatchAny, cp),
            config,
        }
    }
}

fn gated_group(app: &str, group: &str) -> GetDeploymentGroupOutput {
    group_output(
        app,
        group,
        DeploymentType::BlueGreen,
        DeploymentOption::WithTrafficControl,
        DeploymentReadyAction::StopDeployment,
        Some("shop-tg"),
    )
}

fn group_output(
    app: &str,
    group: &str,
    deployment_type: DeploymentType,
    option: DeploymentOption,
    ready: DeploymentReadyAction,
    target_group: Option<&str>,
) -> GetDeploymentGroupOutput {
    let mut lb = LoadBalancerInfo::builder();
    if let Some(tg) = target_group {
        lb = lb.target_group_info_list(TargetGroupInfo::builder().name(tg).build());
    }
    GetDeploymentGroupOutput::builder()
        .deployment_group_info(
            DeploymentGroupInfo::builder()
                .application_name(app)
                .deployment_group_name(group)
                .deployment_style(
                    DeploymentStyle::builder()
                        .deployment_type(deployment_type)
                        .deployment_option(option)
                        .build(),
                )
                .blue_green_deployment_configuration(
                    BlueGreenDeploymentConfiguration::builder()
                        .deployment_ready_option(
                            DeploymentReadyOption::builder()
                                .action_on_timeout(ready)
                                .wait_time_in_minutes(60)
                                .build(),
                        )
                        .build(),
                )
                .load_balancer_info(lb.build())
                .build(),
        )
        .build()
}

/// GetDeploymentGroup for `app`/`group` answering a gated group.
fn gated_rule(app: &'static str, group: &'static str) -> Rule {
    mock!(aws_sdk_codedeploy::Client::get_deployment_group)
        .match_requests(move |r| {
            r.application_name() == Some(app) && r.deployment_group_name() == Some(group)
        })
        .then_output(move || gated_group(app, group))
}

type Captured<T> = Arc<Mutex<Vec<T>>>;

/// StartExecution that records its input and succeeds.
fn start_ok() -> (Rule, Captured<StartExecutionInput>) {
    let seen: Captured<StartExecutionInput> = Arc::default();
    let s = seen.clone();
    let rule = mock!(aws_sdk_sfn::Client::start_execution)
        .match_requests(move |r| {
            s.lock().unwrap().push(r.clone());
            true
        })
        .then_compute_output(|r| {
            StartExecutionOutput::builder()
                .execution_arn(format!(
                    "arn:aws:states:us-east-1:111122223333:execution:greenlight-pipeline:{}",
                    r.name().unwrap_or_default()
                ))
                .start_date(aws_smithy_types::DateTime::from_secs(1_714_564_806))
                .build()
                .unwrap()
        });
    (rule, seen)
}

fn start_never() -> Rule {
    mock!(aws_sdk_sfn::Client::start_execution).then_error(|| {
        StartExecutionError::StateMachineDoesNotExist(StateMachineDoesNotExist::builder().build())
    })
}

fn success_rule() -> (Rule, Captured<PutJobSuccessResultInput>) {
    let seen: Captured<PutJobSuccessResultInput> = Arc::default();
    let s = seen.clone();
    let rule = mock!(aws_sdk_codepipeline::Client::put_job_success_result)
        .match_requests(move |r| {
            s.lock().unwrap().push(r.clone());
            true
        })
        .then_output(|| PutJobSuccessResultOutput::builder().build());
    (rule, seen)
}

fn failure_rule() -> (Rule, Captured<PutJobFailureResultInput>) {
    let seen: Captured<PutJobFailureResultInput> = Arc::default();
    let s = seen.clone();
    let rule = mock!(aws_sdk_codepipeline::Client::put_job_failure_result)
        .match_requests(move |r| {
            s.lock().unwrap().push(r.clone());
            true
        })
        .then_output(|| PutJobFailureResultOutput::builder().build());
    (rule, seen)
}

fn input_json(seen: &Captured<StartExecutionInput>, i: usize) -> Value {
    let inputs = seen.lock().unwrap();
    serde_json::from_str(inputs[i].input().expect("input")).expect("input is JSON")
}

fn failure_message(seen: &Captured<PutJobFailureResultInput>) -> String {
    let calls = seen.lock().unwrap();
    assert_eq!(calls.len(), 1, "exactly one PutJobFailureResult");
    let details = calls[0].failure_details().expect("failure details");
    assert_eq!(details.r#type().as_str(), "JobFailed");
    assert!(details.message().chars().count() <= 5000);
    details.message().to_string()
}

fn show(label: &str, v: &impl serde::Serialize) {
    println!("{label}:\n{}", serde_json::to_string_pretty(v).unwrap());
}

fn rejection(result: Result<Response, Error>) -> (String, String) {
    let err = result.expect_err("a rejection");
    let d: Diagnostic = err.into();
    (d.error_type, d.error_message)
}

// ---------------------------------------------------------------------------
// S3 via EventBridge
// ---------------------------------------------------------------------------

#[tokio::test]
async fn eventbridge_object_created_starts_one_execution_with_the_key_as_stored() {
    let (start, seen) = start_ok();
    let group = gated_rule("shop", "shop-prod");
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(group);
    let deps = m.deps();

    let payload = event(EB_CREATED);
    let response = handler(lambda_event(payload.clone()), &deps).await.unwrap();
    show(
        "input (events/s3-eventbridge-object-created.json)",
        &payload,
    );
    show("response", &response);

    let Response::Started {
        execution_name,
        execution_arn,
        application,
        deployment_group,
        key,
        job_id,
        ..
    } = &response
    else {
        panic!("{response:?}")
    };
    assert_eq!(
        (application.as_str(), deployment_group.as_str()),
        ("shop", "shop-prod")
    );
    assert_eq!(key, STORED_KEY);
    // gl2-<tag of the group>-<application>-<hash>
    assert!(
        execution_name.starts_with("gl2-")
            && execution_name[12..].starts_with("-shop-")
            && execution_name.len() <= 80,
        "{execution_name}"
    );
    assert!(greenlight_core::trigger::may_belong_to_group(
        execution_name,
        "shop",
        "shop-prod"
    ));
    assert!(execution_arn.ends_with(execution_name));
    assert_eq!(*job_id, None);

    let calls = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].state_machine_arn(), Some(SM_ARN));
    assert_eq!(calls[0].name(), Some(execution_name.as_str()));
    let input = input_json(&seen, 0);
    show("StartExecution input", &input);
    assert_eq!(input["revision"]["key"], STORED_KEY);
    assert_eq!(input["revision"]["bucket"], BUCKET);
    assert_eq!(
        input["revision"]["label"],
        "2024-05-01T12:00:00 build+42 café"
    );
    assert_eq!(
        input["revision"]["version"],
        "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    );
    assert_eq!(
        input["revision"]["etag"],
        "b1946ac92492d2347c6235b4d2611184"
    );
    assert_eq!(input["uploadedAt"], "2024-05-01T12:00:05Z");
    assert_eq!(input["uploadedAtMs"], 1_714_564_805_000_i64);
    assert_eq!(input["source"]["kind"], "s3");
    assert_eq!(
        input["source"]["eventId"],
        "17793124-05d4-b198-2fde-7ededc63b103"
    );
    // the input is exactly the shared contract type
    let typed: greenlight_core::PipelineInput = serde_json::from_value(input).unwrap();
    assert_eq!(typed.application, "shop");
}

#[tokio::test]
async fn eventbridge_object_deleted_is_rejected_without_side_effects() {
    let (start, seen) = start_ok();
    let group = gated_rule("shop", "shop-prod");
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(group);
    let deps = m.deps();

    let result = handler(lambda_event(event(EB_DELETED)), &deps).await;
    let (error_type, message) = rejection(result);
    show(
        "error (events/s3-eventbridge-object-deleted.json)",
        &json!({"errorType": error_type, "errorMessage": message}),
    );
    assert_eq!(error_type, "DeleteEvent");
    assert!(
        message.contains("Object Deleted (DeleteObject, Delete Marker Created)"),
        "{message}"
    );
    assert!(message.contains(STORED_KEY), "{message}");
    assert!(seen.lock().unwrap().is_empty());
    assert_eq!(m.codedeploy[0].num_calls(), 0);
}

#[tokio::test]
async fn duplicate_event_is_a_no_op_success() {
    let start = mock!(aws_sdk_sfn::Client::start_execution).then_error(|| {
        StartExecutionError::ExecutionAlreadyExists(
            ExecutionAlreadyExists::builder()
                .message("Execution Already Exists")
                .build(),
        )
    });
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(gated_rule("shop", "shop-prod"));
    let deps = m.deps();

    let response = handler(lambda_event(event(EB_CREATED)), &deps)
        .await
        .unwrap();
    show("duplicate response", &response);
    let Response::Duplicate {
        execution_name,
        execution_arn,
        ..
    } = &response
    else {
        panic!("{response:?}")
    };
    assert_eq!(
        execution_arn,
        &format!(
            "arn:aws:states:us-east-1:111122223333:execution:greenlight-pipeline:{execution_name}"
        )
    );
    assert_eq!(
        serde_json::to_value(&response).unwrap()["outcome"],
        "duplicate"
    );
}

#[tokio::test]
async fn the_same_event_twice_gives_the_same_execution_name() {
    let (start, seen) = start_ok();
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(gated_rule("shop", "shop-prod"));
    let deps = m.deps();
    handler(lambda_event(event(EB_CREATED)), &deps)
        .await
        .unwrap();
    handler(lambda_event(event(EB_CREATED)), &deps)
        .await
        .unwrap();
    let mut other = event(EB_CREATED);
    other["detail"]["object"]["version-id"] = json!("a-newer-version");
    handler(lambda_event(other), &deps).await.unwrap();
    let calls = seen.lock().unwrap();
    assert_eq!(calls[0].name(), calls[1].name());
    assert_ne!(calls[0].name(), calls[2].name());
}

#[tokio::test]
async fn unversioned_upload_is_named_by_etag() {
    let (start, seen) = start_ok();
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(gated_rule("shop", "shop-prod"));
    let deps = m.deps();
    let mut a = event(EB_CREATED);
    a["detail"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("version-id");
    let mut b = a.clone();
    b["detail"]["object"]["etag"] = json!("0123456789abcdef0123456789abcdef");
    handler(lambda_event(a), &deps).await.unwrap();
    handler(lambda_event(b), &deps).await.unwrap();
    let calls = seen.lock().unwrap();
    assert_ne!(calls[0].name(), calls[1].name());
    let input: Value = serde_json::from_str(calls[0].input().unwrap()).unwrap();
    assert!(input["revision"].get("version").is_none());
}

async fn expect_s3_rejection(payload: Value, expected: &str) -> String {
    let (start, seen) = start_ok();
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(gated_rule("shop", "shop-prod"));
    let deps = m.deps();
    let (error_type, message) = rejection(handler(lambda_event(payload), &deps).await);
    assert_eq!(error_type, expected, "{message}");
    assert!(seen.lock().unwrap().is_empty(), "nothing started");
    message
}

#[tokio::test]
async fn not_a_zip_is_rejected() {
    let mut payload = event(EB_CREATED);
    payload["detail"]["object"]["key"] = json!("artifacts/shop/build 42.tar.gz");
    let message = expect_s3_rejection(payload, "NotAZip").await;
    assert!(message.contains("build 42.tar.gz"), "{message}");
}

#[tokio::test]
async fn empty_object_is_rejected() {
    let mut payload = event(EB_CREATED);
    payload["detail"]["object"]["size"] = json!(0);
    expect_s3_rejection(payload, "EmptyObject").await;
}

#[tokio::test]
async fn unmapped_key_is_rejected() {
    let mut payload = event(EB_CREATED);
    payload["detail"]["object"]["key"] = json!("uploads/shop.zip");
    let message = expect_s3_rejection(payload, "UnmappedKey").await;
    assert!(
        message.contains("ARTIFACT_PREFIX \"artifacts/\""),
        "{message}"
    );
}

#[tokio::test]
async fn other_s3_event_types_and_sources_are_unsupported() {
    let mut payload = event(EB_CREATED);
    payload["detail-type"] = json!("Object Restore Completed");
    expect_s3_rejection(payload, "UnsupportedEvent").await;
    let ec2 = json!({"version":"0","id":"x","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","detail":{}});
    expect_s3_rejection(ec2, "UnsupportedEvent").await;
    expect_s3_rejection(json!({"hello":"world"}), "UnsupportedEvent").await;
    let mut via_sqs = event(NOTIFICATION_PUT);
    via_sqs["Records"][0]["eventSource"] = json!("aws:sqs");
    expect_s3_rejection(via_sqs, "UnsupportedEvent").await;
}

#[tokio::test]
async fn malformed_s3_events_are_invalid() {
    let mut payload = event(EB_CREATED);
    payload["detail"].as_object_mut().unwrap().remove("object");
    expect_s3_rejection(payload, "InvalidEvent").await;
    expect_s3_rejection(json!({"Records": []}), "InvalidEvent").await;
    let mut no_identity = event(EB_CREATED);
    let obj = no_identity["detail"]["object"].as_object_mut().unwrap();
    obj.remove("version-id");
    obj.remove("etag");
    obj.remove("sequencer");
    expect_s3_rejection(no_identity, "InvalidEvent").await;
}

#[tokio::test]
async fn s3_test_event_is_ignored() {
    let deps = Mocks::new().deps();
    let payload = json!({"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-05-01T12:00:00.000Z","Bucket":BUCKET,"RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"});
    let response = handler(lambda_event(payload), &deps).await.unwrap();
    assert!(matches!(response, Response::Ignored { .. }), "{response:?}");
}

async fn expect_group_rejection(rule: Rule, expected: &str) -> String {
    let (start, seen) = start_ok();
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(rule);
    let deps = m.deps();
    let (error_type, message) = rejection(handler(lambda_event(event(EB_CREATED)), &deps).await);
    assert_eq!(error_type, expected, "{message}");
    assert!(seen.lock().unwrap().is_empty(), "nothing started");
    message
}

#[tokio::test]
async fn unknown_application_is_rejected() {
    let rule = mock!(aws_sdk_codedeploy::Client::get_deployment_group).then_error(|| {
        GetDeploymentGroupError::ApplicationDoesNotExistException(
            ApplicationDoesNotExistException::builder()
                .message("No application found for name: shop")
                .build(),
        )
    });
    let message = expect_group_rejection(rule, "UnknownApplication").await;
    assert!(message.contains("\"shop\""), "{message}");
    assert!(message.contains("No application found"), "{message}");
}

#[tokio::test]
async fn unknown_deployment_group_is_rejected() {
    let rule = mock!(aws_sdk_codedeploy::Client::get_deployment_group).then_error(|| {
        GetDeploymentGroupError::DeploymentGroupDoesNotExistException(
            DeploymentGroupDoesNotExistException::builder()
                .message("No Deployment Group found for name: shop-prod")
                .build(),
        )
    });
    let message = expect_group_rejection(rule, "UnknownDeploymentGroup").await;
    assert!(message.contains("Create the deployment group"), "{message}");
}

#[tokio::test]
async fn group_that_is_not_gated_is_rejected_with_the_fix() {
    let rule = mock!(aws_sdk_codedeploy::Client::get_deployment_group).then_output(|| {
        group_output(
            "shop",
            "shop-prod",
            DeploymentType::BlueGreen,
            DeploymentOption::WithTrafficControl,
            DeploymentReadyAction::ContinueDeployment,
            Some("shop-tg"),
        )
    });
    let message = expect_group_rejection(rule, "GroupNotGated").await;
    show("GroupNotGated errorMessage", &message);
    assert!(
        message.contains("actionOnTimeout is CONTINUE_DEPLOYMENT"),
        "{message}"
    );
    assert!(message.contains("Create the deployment group"), "{message}");

    let in_place = mock!(aws_sdk_codedeploy::Client::get_deployment_group).then_output(|| {
        group_output(
            "shop",
            "shop-prod",
            DeploymentType::InPlace,
            DeploymentOption::WithoutTrafficControl,
            DeploymentReadyAction::StopDeployment,
            None,
        )
    });
    let message = expect_group_rejection(in_place, "GroupNotGated").await;
    assert!(
        message.contains("IN_PLACE") && message.contains("no target group"),
        "{message}"
    );
}

#[tokio::test]
async fn codedeploy_failure_is_an_error_not_a_rejection() {
    let rule = mock!(aws_sdk_codedeploy::Client::get_deployment_group).then_error(|| {
        GetDeploymentGroupError::generic(
            aws_sdk_codedeploy::error::ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("not authorized to perform codedeploy:GetDeploymentGroup")
                .build(),
        )
    });
    let message = expect_group_rejection(rule, "AwsError").await;
    assert!(
        message.contains("AccessDeniedException")
            && message.contains("GetDeploymentGroup on shop/shop-prod failed")
            && message.contains("codedeploy:GetDeploymentGroup permission"),
        "{message}"
    );
}

#[tokio::test]
async fn a_throttled_group_read_says_retry_not_permissions() {
    let rule = mock!(aws_sdk_codedeploy::Client::get_deployment_group).then_error(|| {
        GetDeploymentGroupError::generic(
            aws_sdk_codedeploy::error::ErrorMetadata::builder()
                .code("ThrottlingException")
                .message("Rate exceeded")
                .build(),
        )
    });
    let message = expect_group_rejection(rule, "AwsTransient").await;
    assert!(
        message.contains("GetDeploymentGroup on shop/shop-prod failed")
            && message.contains("RejectedUploads")
            && message.contains("upload the revision again"),
        "{message}"
    );
    assert!(!message.contains("permission on"), "{message}");
    assert!(
        !message.contains("codedeploy:GetDeploymentGroup permission"),
        "{message}"
    );
}

#[tokio::test]
async fn start_execution_failure_is_an_error() {
    let mut m = Mocks::new();
    m.sfn.push(start_never());
    m.codedeploy.push(gated_rule("shop", "shop-prod"));
    let deps = m.deps();
    let (error_type, message) = rejection(handler(lambda_event(event(EB_CREATED)), &deps).await);
    assert_eq!(error_type, "AwsError");
    assert!(message.contains("STATE_MACHINE_ARN"), "{message}");
    assert!(message.contains("StateMachineDoesNotExist"), "{message}");
}

#[tokio::test]
async fn key_mapping_overrides_the_convention() {
    let (start, seen) = start_ok();
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy
        .push(gated_rule("storefront", "storefront-blue"));
    m.key_mapping = Some(
        r#"[{"prefix":"artifacts/","application":"generic","deploymentGroup":"g"},
            {"prefix":"artifacts/shop/","application":"storefront","deploymentGroup":"storefront-blue"}]"#,
    );
    let deps = m.deps();
    let response = handler(lambda_event(event(EB_CREATED)), &deps)
        .await
        .unwrap();
    assert!(matches!(response, Response::Started { .. }), "{response:?}");
    let input = input_json(&seen, 0);
    assert_eq!(input["application"], "storefront");
    assert_eq!(input["deploymentGroup"], "storefront-blue");
    assert!(greenlight_core::trigger::may_belong_to_group(
        seen.lock().unwrap()[0].name().unwrap(),
        "storefront",
        "storefront-blue"
    ));
}

#[tokio::test]
async fn moto_shaped_eventbridge_event_is_understood() {
    // moto (the local cloud) sends epoch seconds as `time` and `eTag`.
    let (start, seen) = start_ok();
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(gated_rule("shop", "shop-prod"));
    let deps = m.deps();
    let mut payload = event(EB_CREATED);
    payload["time"] = json!(1_714_564_805.25);
    let obj = payload["detail"]["object"].as_object_mut().unwrap();
    let etag = obj.remove("etag").unwrap();
    obj.insert("eTag".into(), etag);
    obj.insert("version-id".into(), Value::Null);
    handler(lambda_event(payload), &deps).await.unwrap();
    let input = input_json(&seen, 0);
    assert_eq!(input["uploadedAtMs"], 1_714_564_805_250_i64);
    assert_eq!(input["uploadedAt"], "2024-05-01T12:00:05.25Z");
    assert_eq!(
        input["revision"]["etag"],
        "b1946ac92492d2347c6235b4d2611184"
    );
}

// ---------------------------------------------------------------------------
// Classic S3 notifications
// ---------------------------------------------------------------------------

#[tokio::test]
async fn notification_put_decodes_the_key_to_the_stored_key() {
    let (start, seen) = start_ok();
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(gated_rule("shop", "shop-prod"));
    let deps = m.deps();

    let payload = event(NOTIFICATION_PUT);
    let response = handler(lambda_event(payload.clone()), &deps).await.unwrap();
    show("input (events/s3-notification-put.json)", &payload);
    show("response", &response);
    let Response::Started { key, .. } = &response else {
        panic!("{response:?}")
    };
    assert_eq!(key, STORED_KEY);
    let input = input_json(&seen, 0);
    assert_eq!(input["revision"]["key"], STORED_KEY);
    assert_eq!(input["uploadedAt"], "2024-05-01T12:00:05.123Z");
    assert_eq!(input["uploadedAtMs"], 1_714_564_805_123_i64);
    assert_eq!(input["source"]["eventId"], "D82B88E5F771F645");

    // The same upload seen through EventBridge names the same execution:
    // whichever route delivers first starts it, the other is a duplicate.
    handler(lambda_event(event(EB_CREATED)), &deps)
        .await
        .unwrap();
    let calls = seen.lock().unwrap();
    assert_eq!(calls[0].name(), calls[1].name());
}

#[tokio::test]
async fn notification_delete_is_rejected() {
    let mut payload = event(NOTIFICATION_PUT);
    payload["Records"][0]["eventName"] = json!("ObjectRemoved:Delete");
    let message = expect_s3_rejection(payload, "DeleteEvent").await;
    assert!(message.contains("ObjectRemoved:Delete"), "{message}");
}

#[tokio::test]
async fn notification_with_undecodable_key_is_rejected() {
    let mut payload = event(NOTIFICATION_PUT);
    payload["Records"][0]["s3"]["object"]["key"] = json!("artifacts/shop/bad%FF.zip");
    expect_s3_rejection(payload, "InvalidKey").await;
}

#[tokio::test]
async fn a_batch_with_one_rejected_record_starts_nothing() {
    let mut payload = event(NOTIFICATION_PUT);
    let mut bad = payload["Records"][0].clone();
    bad["s3"]["object"]["key"] = json!("artifacts/shop/readme.txt");
    payload["Records"].as_array_mut().unwrap().push(bad);
    expect_s3_rejection(payload, "NotAZip").await;
}

#[tokio::test]
async fn a_batch_of_valid_records_starts_each() {
    let (start, seen) = start_ok();
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(gated_rule("shop", "shop-prod"));
    let deps = m.deps();
    let mut payload = event(NOTIFICATION_PUT);
    let mut second = payload["Records"][0].clone();
    second["s3"]["object"]["key"] = json!("artifacts/shop/second.zip");
    payload["Records"].as_array_mut().unwrap().push(second);
    let response = handler(lambda_event(payload), &deps).await.unwrap();
    let Response::Batch { outcomes } = response else {
        panic!("batch expected")
    };
    assert_eq!(outcomes.len(), 2);
    assert_eq!(seen.lock().unwrap().len(), 2);
}

// ---------------------------------------------------------------------------
// CodePipeline
// ---------------------------------------------------------------------------

fn continuation_token_of_fixture() -> String {
    event(PIPELINE_CONTINUATION)["CodePipeline.job"]["data"]["continuationToken"]
        .as_str()
        .unwrap()
        .to_string()
}

fn execution_arn_of_fixture() -> String {
    continuation_token_of_fixture()
        .strip_prefix("greenlight/v1/")
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn pipeline_first_invocation_starts_and_answers_with_a_continuation_token() {
    let (start, seen) = start_ok();
    let (success, answered) = success_rule();
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(gated_rule("shop", "shop-prod"));
    m.codepipeline.push(success);
    let deps = m.deps();

    let payload = event(PIPELINE_JOB);
    let response = handler(lambda_event(payload), &deps).await.unwrap();
    show("response (events/codepipeline-job.json)", &response);
    let Response::Started {
        job_id,
        execution_arn,
        key,
        ..
    } = &response
    else {
        panic!("{response:?}")
    };
    assert_eq!(job_id.as_deref(), Some(JOB_ID));
    assert_eq!(key, "shop-pipeline/BuildOutpu/Fa7Kx9Q");

    let calls = answered.lock().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].job_id(), Some(JOB_ID));
    let token = calls[0].continuation_token().expect("a continuation token");
    show("PutJobSuccessResult continuationToken", &token);
    assert!(token.len() <= 2048);
    assert_eq!(token, format!("greenlight/v1/{execution_arn}"));
    // events/codepipeline-job-continuation.json is the re-invocation of this job.
    assert_eq!(token, continuation_token_of_fixture());
    assert_eq!(
        calls[0]
            .execution_details()
            .and_then(|d| d.external_execution_id()),
        Some(execution_arn.as_str())
    );

    let input = input_json(&seen, 0);
    show("StartExecution input", &input);
    assert_eq!(input["source"]["kind"], "codePipeline");
    assert_eq!(input["source"]["jobId"], JOB_ID);
    assert_eq!(
        input["revision"]["bucket"],
        "codepipeline-us-east-1-111122223333"
    );
    assert_eq!(input["revision"]["label"], "Fa7Kx9Q");
    assert!(input["uploadedAtMs"].as_i64().unwrap() > 1_700_000_000_000);
}

#[tokio::test]
async fn pipeline_duplicate_invocation_answers_with_the_existing_execution() {
    let start = mock!(aws_sdk_sfn::Client::start_execution).then_error(|| {
        StartExecutionError::ExecutionAlreadyExists(ExecutionAlreadyExists::builder().build())
    });
    let (success, answered) = success_rule();
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(gated_rule("shop", "shop-prod"));
    m.codepipeline.push(success);
    let deps = m.deps();
    let response = handler(lambda_event(event(PIPELINE_JOB)), &deps)
        .await
        .unwrap();
    assert!(
        matches!(response, Response::Duplicate { .. }),
        "{response:?}"
    );
    assert_eq!(
        answered.lock().unwrap()[0].continuation_token(),
        Some(continuation_token_of_fixture().as_str())
    );
}

#[tokio::test]
async fn pipeline_without_user_parameters_uses_the_key_mapping() {
    let (start, seen) = start_ok();
    let (success, _) = success_rule();
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(gated_rule("shop", "shop-pipeline-group"));
    m.codepipeline.push(success);
    m.key_mapping = Some(
        r#"[{"prefix":"shop-pipeline/","application":"shop","deploymentGroup":"shop-pipeline-group"}]"#,
    );
    let deps = m.deps();
    let mut payload = event(PIPELINE_JOB);
    payload["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]
        .as_object_mut()
        .unwrap()
        .remove("UserParameters");
    payload["CodePipeline.job"]["data"]["inputArtifacts"][0]["revision"] = json!("3f1c2d9");
    let response = handler(lambda_event(payload), &deps).await.unwrap();
    assert!(matches!(response, Response::Started { .. }), "{response:?}");
    let input = input_json(&seen, 0);
    assert_eq!(input["deploymentGroup"], "shop-pipeline-group");
    assert_eq!(input["revision"]["label"], "3f1c2d9");
}

async fn pipeline_rejection(payload: Value, group: Rule, expected: &str) -> String {
    let (start, seen) = start_ok();
    let (failure, failed) = failure_rule();
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(group);
    m.codepipeline.push(failure);
    let deps = m.deps();
    let response = handler(lambda_event(payload), &deps).await.unwrap();
    let Response::Rejected {
        job_id,
        error_type,
        message,
    } = &response
    else {
        panic!("{response:?}")
    };
    assert_eq!(job_id, JOB_ID);
    assert_eq!(error_type, expected);
    assert!(seen.lock().unwrap().is_empty(), "nothing started");
    assert_eq!(&failure_message(&failed), message);
    message.clone()
}

#[tokio::test]
async fn pipeline_rejection_fails_the_job() {
    let not_gated = mock!(aws_sdk_codedeploy::Client::get_deployment_group).then_output(|| {
        group_output(
            "shop",
            "shop-prod",
            DeploymentType::BlueGreen,
            DeploymentOption::WithTrafficControl,
            DeploymentReadyAction::ContinueDeployment,
            Some("tg"),
        )
    });
    let message = pipeline_rejection(event(PIPELINE_JOB), not_gated, "GroupNotGated").await;
    assert!(message.contains("Create the deployment group"), "{message}");
}

#[tokio::test]
async fn pipeline_invalid_user_parameters_fail_the_job() {
    let mut payload = event(PIPELINE_JOB);
    payload["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"] =
        json!("shop/shop-prod");
    let message = pipeline_rejection(
        payload,
        gated_rule("shop", "shop-prod"),
        "InvalidUserParameters",
    )
    .await;
    assert!(message.contains("{\"application\""), "{message}");
}

#[tokio::test]
async fn pipeline_without_input_artifact_fails_the_job() {
    let mut payload = event(PIPELINE_JOB);
    payload["CodePipeline.job"]["data"]["inputArtifacts"] = json!([]);
    pipeline_rejection(payload, gated_rule("shop", "shop-prod"), "InvalidEvent").await;
}

#[tokio::test]
async fn pipeline_error_still_answers_the_job() {
    let (failure, failed) = failure_rule();
    let mut m = Mocks::new();
    m.sfn.push(start_never());
    m.codedeploy.push(gated_rule("shop", "shop-prod"));
    m.codepipeline.push(failure);
    let deps = m.deps();
    let response = handler(lambda_event(event(PIPELINE_JOB)), &deps)
        .await
        .unwrap();
    show("response when StartExecution fails", &response);
    let Response::Failed {
        error_type,
        message,
        ..
    } = &response
    else {
        panic!("{response:?}")
    };
    assert_eq!(error_type, "AwsError");
    assert!(message.contains("StateMachineDoesNotExist"), "{message}");
    assert_eq!(&failure_message(&failed), message);
}

fn describe_rule(
    status: ExecutionStatus,
    output: Option<&'static str>,
    error: Option<&'static str>,
    cause: Option<&'static str>,
) -> Rule {
    let arn = execution_arn_of_fixture();
    let expected = arn.clone();
    mock!(aws_sdk_sfn::Client::describe_execution)
        .match_requests(move |r| r.execution_arn() == Some(expected.as_str()))
        .then_output(move || {
            let mut b = DescribeExecutionOutput::builder()
                .execution_arn(arn.clone())
                .state_machine_arn(SM_ARN)
                .name(arn.rsplit(':').next().unwrap())
                .status(status.clone())
                .start_date(aws_smithy_types::DateTime::from_secs(1_714_564_806));
            if let Some(o) = output {
                b = b.output(o);
            }
            if let Some(e) = error {
                b = b.error(e);
            }
            if let Some(c) = cause {
                b = b.cause(c);
            }
            b.build().unwrap()
        })
}

#[tokio::test]
async fn pipeline_continuation_while_running_continues_with_the_same_token() {
    let (success, answered) = success_rule();
    let mut m = Mocks::new();
    m.sfn
        .push(describe_rule(ExecutionStatus::Running, None, None, None));
    m.codepipeline.push(success);
    let deps = m.deps();
    let response = handler(lambda_event(event(PIPELINE_CONTINUATION)), &deps)
        .await
        .unwrap();
    show(
        "response (events/codepipeline-job-continuation.json, RUNNING)",
        &response,
    );
    let Response::Continued { job_id, .. } = &response else {
        panic!("{response:?}")
    };
    assert_eq!(job_id, CONTINUATION_JOB_ID);
    let calls = answered.lock().unwrap();
    assert_eq!(calls[0].job_id(), Some(CONTINUATION_JOB_ID));
    assert_eq!(
        calls[0].continuation_token(),
        Some(continuation_token_of_fixture().as_str())
    );
}

#[tokio::test]
async fn pipeline_continuation_succeeded_succeeds_the_job() {
    let (success, answered) = success_rule();
    let mut m = Mocks::new();
    m.sfn.push(describe_rule(
        ExecutionStatus::Succeeded,
        Some(r#"{"application":"shop","admission":{"decision":"proceed"}}"#),
        None,
        None,
    ));
    m.codepipeline.push(success);
    let deps = m.deps();
    let response = handler(lambda_event(event(PIPELINE_CONTINUATION)), &deps)
        .await
        .unwrap();
    show("response (SUCCEEDED)", &response);
    assert!(
        matches!(response, Response::Succeeded { .. }),
        "{response:?}"
    );
    let calls = answered.lock().unwrap();
    assert_eq!(calls[0].continuation_token(), None);
    assert!(calls[0]
        .execution_details()
        .and_then(|d| d.summary())
        .unwrap()
        .contains("deployed"));
}

#[tokio::test]
async fn pipeline_continuation_superseded_fails_the_job() {
    let (failure, failed) = failure_rule();
    let mut m = Mocks::new();
    m.sfn.push(describe_rule(
        ExecutionStatus::Succeeded,
        Some(r#"{"admission":{"decision":"superseded","byExecution":"gl-shop-0123456789abcdef0123456789abcdef","byKey":"artifacts/shop/2024-05-01T12:05:00-43.zip"}}"#),
        None,
        None,
    ));
    m.codepipeline.push(failure);
    let deps = m.deps();
    let response = handler(lambda_event(event(PIPELINE_CONTINUATION)), &deps)
        .await
        .unwrap();
    show("response (SUCCEEDED but superseded)", &response);
    let Response::Failed {
        error_type,
        message,
        ..
    } = &response
    else {
        panic!("{response:?}")
    };
    assert_eq!(error_type, "Superseded");
    assert!(message.starts_with("superseded by gl-shop-0123456789abcdef0123456789abcdef"));
    assert_eq!(&failure_message(&failed), message);
}

#[tokio::test]
async fn pipeline_continuation_failed_fails_the_job_with_the_reason() {
    let (failure, failed) = failure_rule();
    let mut m = Mocks::new();
    m.sfn.push(describe_rule(
        ExecutionStatus::Failed,
        None,
        Some("ValidationFailed"),
        Some("green instance i-0abc answered 503 on /health; the deployment was stopped and rolled back"),
    ));
    m.codepipeline.push(failure);
    let deps = m.deps();
    let response = handler(lambda_event(event(PIPELINE_CONTINUATION)), &deps)
        .await
        .unwrap();
    show("response (FAILED)", &response);
    let Response::Failed {
        error_type,
        execution_arn,
        ..
    } = &response
    else {
        panic!("{response:?}")
    };
    assert_eq!(error_type, "ExecutionFailed");
    assert_eq!(
        execution_arn.as_deref(),
        Some(execution_arn_of_fixture().as_str())
    );
    let message = failure_message(&failed);
    assert!(
        message.contains("ValidationFailed: green instance i-0abc answered 503"),
        "{message}"
    );
    assert_eq!(
        failed.lock().unwrap()[0]
            .failure_details()
            .and_then(|d| d.external_execution_id()),
        Some(execution_arn_of_fixture().as_str())
    );
}

#[tokio::test]
async fn pipeline_continuation_timed_out_and_aborted_fail_the_job() {
    for (status, expected) in [
        (ExecutionStatus::TimedOut, "ExecutionTimedOut"),
        (ExecutionStatus::Aborted, "ExecutionAborted"),
    ] {
        let (failure, failed) = failure_rule();
        let mut m = Mocks::new();
        m.sfn.push(describe_rule(status, None, None, None));
        m.codepipeline.push(failure);
        let deps = m.deps();
        let response = handler(lambda_event(event(PIPELINE_CONTINUATION)), &deps)
            .await
            .unwrap();
        assert!(
            matches!(&response, Response::Failed { error_type, .. } if error_type == expected),
            "{response:?}"
        );
        failure_message(&failed);
    }
}

#[tokio::test]
async fn pipeline_describe_error_still_answers_the_job() {
    let (failure, failed) = failure_rule();
    let mut m = Mocks::new();
    m.sfn.push(
        mock!(aws_sdk_sfn::Client::describe_execution).then_error(|| {
            DescribeExecutionError::ExecutionDoesNotExist(
                ExecutionDoesNotExist::builder()
                    .message("Execution Does Not Exist")
                    .build(),
            )
        }),
    );
    m.codepipeline.push(failure);
    let deps = m.deps();
    let response = handler(lambda_event(event(PIPELINE_CONTINUATION)), &deps)
        .await
        .unwrap();
    assert!(
        matches!(&response, Response::Failed { error_type, .. } if error_type == "AwsError"),
        "{response:?}"
    );
    assert!(failure_message(&failed).contains("ExecutionDoesNotExist"));
}

#[tokio::test]
async fn pipeline_foreign_continuation_token_fails_the_job() {
    let (failure, failed) = failure_rule();
    let mut m = Mocks::new();
    m.codepipeline.push(failure);
    let deps = m.deps();
    let mut payload = event(PIPELINE_CONTINUATION);
    payload["CodePipeline.job"]["data"]["continuationToken"] = json!("someone-else's-token");
    let response = handler(lambda_event(payload), &deps).await.unwrap();
    assert!(
        matches!(&response, Response::Failed { error_type, .. } if error_type == "InvalidContinuationToken"),
        "{response:?}"
    );
    assert!(failure_message(&failed).contains("invalid continuation token"));
}

#[tokio::test]
async fn pipeline_success_report_failure_falls_back_to_failure_report() {
    let success = mock!(aws_sdk_codepipeline::Client::put_job_success_result).then_error(|| {
        PutJobSuccessResultError::InvalidJobStateException(
            InvalidJobStateException::builder()
                .message("job is not in progress")
                .build(),
        )
    });
    let (failure, failed) = failure_rule();
    let mut m = Mocks::new();
    m.sfn
        .push(describe_rule(ExecutionStatus::Running, None, None, None));
    m.codepipeline.push(success);
    m.codepipeline.push(failure);
    let deps = m.deps();
    let response = handler(lambda_event(event(PIPELINE_CONTINUATION)), &deps)
        .await
        .unwrap();
    assert!(
        matches!(&response, Response::Failed { error_type, .. } if error_type == "JobResultFailed"),
        "{response:?}"
    );
    assert!(failure_message(&failed).contains("PutJobSuccessResult failed"));
}

/// Defect 7: a job that cannot be answered still returns success (outcome
/// `unanswered`), so Lambda puts no failed-invocation record, with the job's
/// credentials, in the on-failure queue. Before the fix this was an `Err`.
#[tokio::test]
async fn pipeline_job_that_cannot_be_answered_is_not_a_failed_invocation() {
    let failure = mock!(aws_sdk_codepipeline::Client::put_job_failure_result).then_error(|| {
        PutJobFailureResultError::InvalidJobStateException(
            InvalidJobStateException::builder()
                .message("job is not in progress")
                .build(),
        )
    });
    let mut m = Mocks::new();
    m.sfn.push(describe_rule(
        ExecutionStatus::Failed,
        None,
        Some("E"),
        Some("C"),
    ));
    m.codepipeline.push(failure);
    let deps = m.deps();
    let response = handler(lambda_event(event(PIPELINE_CONTINUATION)), &deps)
        .await
        .expect("a job never fails the invocation");
    let Response::Unanswered {
        job_id,
        error_type,
        message,
    } = &response
    else {
        panic!("{response:?}")
    };
    assert_eq!(job_id.as_deref(), Some(CONTINUATION_JOB_ID));
    assert_eq!(error_type, "AwsError");
    assert!(
        message.contains(CONTINUATION_JOB_ID) && message.contains("PutJobFailureResult"),
        "{message}"
    );
}

#[tokio::test]
async fn pipeline_job_without_id_is_invalid() {
    let deps = Mocks::new().deps();
    let mut payload = event(PIPELINE_JOB);
    payload["CodePipeline.job"]
        .as_object_mut()
        .unwrap()
        .remove("id");
    let response = handler(lambda_event(payload), &deps)
        .await
        .expect("a job never fails the invocation");
    assert!(
        matches!(&response, Response::Unanswered { job_id: None, error_type, message }
            if error_type == "InvalidEvent" && message.contains("CodePipeline.job.id is missing")),
        "{response:?}"
    );
}

// ---------------------------------------------------------------------------
// Defect 9: events for another bucket
// ---------------------------------------------------------------------------

#[tokio::test]
async fn s3_event_for_another_bucket_is_rejected_without_side_effects() {
    let (start, seen) = start_ok();
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(gated_rule("shop", "shop-prod"));
    let deps = m.deps();
    for mut payload in [event(EB_CREATED), event(NOTIFICATION_PUT)] {
        if payload.get("Records").is_some() {
            payload["Records"][0]["s3"]["bucket"]["name"] = json!("someone-elses-bucket");
        } else {
            payload["detail"]["bucket"]["name"] = json!("someone-elses-bucket");
        }
        let (error_type, message) = rejection(handler(lambda_event(payload), &deps).await);
        assert_eq!(error_type, "ForeignBucket");
        assert!(
            message.contains("s3://someone-elses-bucket/") && message.contains(BUCKET),
            "{message}"
        );
    }
    assert!(seen.lock().unwrap().is_empty(), "nothing started");
    assert_eq!(m.codedeploy[0].num_calls(), 0, "not even a group read");
}

#[tokio::test]
async fn pipeline_job_for_another_bucket_fails_the_job() {
    let mut payload = event(PIPELINE_JOB);
    payload["CodePipeline.job"]["data"]["inputArtifacts"][0]["location"]["s3Location"]
        ["bucketName"] = json!("someone-elses-bucket");
    let message =
        pipeline_rejection(payload, gated_rule("shop", "shop-prod"), "ForeignBucket").await;
    assert!(message.contains("PIPELINE_ARTIFACT_BUCKETS"), "{message}");
}

// ---------------------------------------------------------------------------
// Defect 7: no credential in any log, answer or queue record
// ---------------------------------------------------------------------------

/// The secret values of events/codepipeline-job.json's artifactCredentials.
fn fixture_secrets() -> Vec<String> {
    let v = event(PIPELINE_JOB);
    let creds = &v["CodePipeline.job"]["data"]["artifactCredentials"];
    let secrets: Vec<String> = ["secretAccessKey", "sessionToken", "accessKeyId"]
        .iter()
        .map(|k| creds[*k].as_str().expect("fixture credential").to_string())
        .collect();
    assert!(secrets.iter().all(|s| s.len() > 8));
    secrets
}

/// Runs `payload` through the handler under greenlight's own subscriber
/// with `RUST_LOG=trace` (every directive form that could reach the runtime's
/// payload logging), emitting the runtime's raw-event TRACE line with its
/// real target as lambda_runtime 1.5 does (layers/api_response.rs), and
/// returns (captured log text, the answer as the runtime would send it).
async fn run_logged(payload: Value, deps: &Deps) -> (String, String) {
    let capture = greenlight_aws::log_capture::LogCapture::default();
    let filter = tracing_subscriber::EnvFilter::new(
        "trace,lambda_runtime=trace,lambda_runtime::layers::api_response=trace,lambda_runtime_api_client=trace",
    );
    let subscriber = greenlight_aws::subscriber(filter, capture.clone());
    let guard = tracing::subscriber::set_default(subscriber);
    // Other tests run in parallel without a subscriber: make every callsite
    // ask this one again.
    tracing::callsite::rebuild_interest_cache();
    let body = payload.to_string();
    tracing::trace!(target: "lambda_runtime::layers::api_response", body = body.as_str(), "raw JSON event received from Lambda");
    tracing::trace!(target: "lambda_runtime_api_client", body = body.as_str(), "request body");
    tracing::trace!(target: "deploy_trigger", "canary: TRACE from our own code is captured");
    let result = handler(lambda_event(payload), deps).await;
    drop(guard);
    let answer = match result {
        Ok(r) => serde_json::to_string(&r).unwrap(),
        Err(e) => {
            let d: Diagnostic = e.into();
            format!("{} {}", d.error_type, d.error_message)
        }
    };
    let text = capture.text();
    (text, answer)
}

#[tokio::test]
async fn no_credential_reaches_any_log_or_answer_even_at_trace() {
    let secrets = fixture_secrets();
    let mut cases: Vec<(&str, Value, Mocks)> = Vec::new();
    // Answered: started.
    let (start, _) = start_ok();
    let (success, _) = success_rule();
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(gated_rule("shop", "shop-prod"));
    m.codepipeline.push(success);
    cases.push(("started", event(PIPELINE_JOB), m));
    // Rejected and answered with a failure.
    let (failure, _) = failure_rule();
    let mut m = Mocks::new();
    m.codepipeline.push(failure);
    let mut bad = event(PIPELINE_JOB);
    bad["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"] =
        json!("{not json");
    cases.push(("rejected", bad, m));
    // Unanswerable: CodePipeline refuses the failure result.
    let refuse = mock!(aws_sdk_codepipeline::Client::put_job_failure_result).then_error(|| {
        PutJobFailureResultError::InvalidJobStateException(
            InvalidJobStateException::builder().message("no").build(),
        )
    });
    let mut m = Mocks::new();
    m.codepipeline.push(refuse);
    let mut bad = event(PIPELINE_JOB);
    bad["CodePipeline.job"]["data"]["inputArtifacts"] = json!([]);
    cases.push(("unanswered", bad, m));
    // Malformed: credentials where a parse error could quote them.
    let mut malformed = event(PIPELINE_JOB);
    malformed["CodePipeline.job"]["data"]["inputArtifacts"] = json!(secrets[0].clone());
    malformed["CodePipeline.job"]["data"]["outputArtifacts"] = json!(secrets[1].clone());
    cases.push(("malformed", malformed, Mocks::new()));
    let mut wrong_type = event(PIPELINE_JOB);
    wrong_type["CodePipeline.job"]["data"]["artifactCredentials"] = json!(secrets[2].clone());
    wrong_type["CodePipeline.job"]["data"]["actionConfiguration"] = json!(secrets[2].clone());
    cases.push(("credentials of the wrong type", wrong_type, Mocks::new()));
    let mut no_id = event(PIPELINE_JOB);
    no_id["CodePipeline.job"]["id"] = json!(null);
    cases.push(("no id", no_id, Mocks::new()));

    for (label, payload, mocks) in cases {
        let deps = mocks.deps();
        let (logs, answer) = run_logged(payload, &deps).await;
        assert!(
            logs.contains("canary"),
            "{label}: the capture saw TRACE lines"
        );
        // Not asserted: that the handler's own lines were captured. Run with
        // other tests in parallel, tracing's per-callsite interest cache can
        // hide them from this thread-scoped subscriber; run alone they are
        // captured (the canary above proves TRACE reaches the capture).
        assert!(
            !answer.is_empty() && !answer.starts_with("InvalidEvent "),
            "{label}: {answer}"
        );
        for secret in &secrets {
            assert!(
                !logs.contains(secret.as_str()),
                "{label}: a credential is in the logs:\n{logs}"
            );
            assert!(
                !answer.contains(secret.as_str()),
                "{label}: a credential is in the answer: {answer}"
            );
        }
    }
}

/// Every CodePipeline job, however broken, returns success: Lambda never
/// records a failed asynchronous invocation (whose record carries the whole
/// payload, credentials included) for a job.
#[tokio::test]
async fn no_codepipeline_job_fails_the_invocation() {
    let mut broken: Vec<Value> = Vec::new();
    let base = event(PIPELINE_JOB);
    broken.push(json!({"CodePipeline.job": null}));
    broken.push(json!({"CodePipeline.job": "x"}));
    broken.push(json!({"CodePipeline.job": {"id": "j"}}));
    let mut v = base.clone();
    v["CodePipeline.job"]["data"] = json!(7);
    broken.push(v);
    let mut v = base.clone();
    v["CodePipeline.job"]["data"]["continuationToken"] = json!("x".repeat(5000));
    broken.push(v);
    for payload in broken {
        let refuse = mock!(aws_sdk_codepipeline::Client::put_job_failure_result).then_error(|| {
            PutJobFailureResultError::InvalidJobStateException(
                InvalidJobStateException::builder().message("no").build(),
            )
        });
        let mut m = Mocks::new();
        m.codepipeline.push(refuse);
        let deps = m.deps();
        let shown = truncate(&payload.to_string());
        let response = handler(lambda_event(payload), &deps).await;
        assert!(
            matches!(
                &response,
                Ok(Response::Unanswered { .. }) | Ok(Response::Rejected { .. })
            ),
            "{shown}: {response:?}"
        );
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(120).collect()
}

// ---------------------------------------------------------------------------
// Approval and bake requests (issue 10)
// ---------------------------------------------------------------------------

/// GetObjectTagging of exactly the uploaded version, answering `tags`.
fn tagging_of_fixture_version(tags: &[(&str, &str)]) -> Rule {
    let set: Vec<aws_sdk_s3::types::Tag> = tags
        .iter()
        .map(|(k, v)| {
            aws_sdk_s3::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build()
                .expect("tag")
        })
        .collect();
    mock!(aws_sdk_s3::Client::get_object_tagging)
        .match_requests(|r| {
            r.bucket() == Some(BUCKET)
                && r.key() == Some(STORED_KEY)
                && r.version_id() == Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e")
        })
        .then_output(move || {
            aws_sdk_s3::operation::get_object_tagging::GetObjectTaggingOutput::builder()
                .set_tag_set(Some(set.clone()))
                .build()
                .expect("tagging output")
        })
}

#[tokio::test]
async fn an_upload_tagged_for_approval_carries_it_in_the_input() {
    let (start, seen) = start_ok();
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(gated_rule("shop", "shop-prod"));
    m.s3.push(tagging_of_fixture_version(&[
        ("team", "shop"),
        ("greenlight-approval", "required"),
    ]));
    m.approval_config =
        Some(r#"[{"application":"shop","deploymentGroup":"shop-prod","deadlineSeconds":900}]"#);
    let deps = m.deps();
    let response = handler(lambda_event(event(EB_CREATED)), &deps)
        .await
        .unwrap();
    assert!(matches!(response, Response::Started { .. }), "{response:?}");
    let input = input_json(&seen, 0);
    assert_eq!(
        input["approval"],
        json!({"requestedBy": "objectTag", "deadlineSeconds": 900})
    );
    assert!(input.get("bakeSkip").is_none(), "{input}");
}

#[tokio::test]
async fn the_bake_override_tag_is_carried_in_the_input_and_never_defaulted() {
    let (start, seen) = start_ok();
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(gated_rule("shop", "shop-prod"));
    m.s3.push(tagging_of_fixture_version(&[("greenlight-bake", "skip")]));
    let deps = m.deps();
    let response = handler(lambda_event(event(EB_CREATED)), &deps)
        .await
        .unwrap();
    assert!(matches!(response, Response::Started { .. }), "{response:?}");
    let input = input_json(&seen, 0);
    assert_eq!(input["bakeSkip"], json!({"requestedBy": "objectTag"}));
    assert!(input.get("approval").is_none(), "{input}");
}

#[tokio::test]
async fn a_misspelt_bake_override_is_rejected_and_starts_nothing() {
    let (start, seen) = start_ok();
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(gated_rule("shop", "shop-prod"));
    m.s3.push(tagging_of_fixture_version(&[("greenlight-bake", "skipp")]));
    let deps = m.deps();
    let (error_type, message) = rejection(handler(lambda_event(event(EB_CREATED)), &deps).await);
    assert_eq!(error_type, "InvalidDeploymentOption");
    assert!(message.contains("greenlight-bake=\"skipp\""), "{message}");
    assert!(seen.lock().unwrap().is_empty(), "nothing started");
}

#[tokio::test]
async fn an_untagged_upload_to_a_group_that_requires_approval_asks_by_default() {
    let (start, seen) = start_ok();
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(gated_rule("shop", "shop-prod"));
    m.approval_config = Some(
        r#"[{"application":"shop","deploymentGroup":"shop-prod","required":true,"deadlineSeconds":120}]"#,
    );
    let deps = m.deps();
    handler(lambda_event(event(EB_CREATED)), &deps)
        .await
        .unwrap();
    let input = input_json(&seen, 0);
    assert_eq!(
        input["approval"],
        json!({"requestedBy": "groupDefault", "deadlineSeconds": 120})
    );
    assert!(input.get("bakeSkip").is_none(), "{input}");
}

#[tokio::test]
async fn a_misspelt_tag_is_rejected_and_starts_nothing() {
    let (start, seen) = start_ok();
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(gated_rule("shop", "shop-prod"));
    m.s3.push(tagging_of_fixture_version(&[(
        "greenlight-approval",
        "yes",
    )]));
    let deps = m.deps();
    let (error_type, message) = rejection(handler(lambda_event(event(EB_CREATED)), &deps).await);
    assert_eq!(error_type, "InvalidDeploymentOption");
    assert!(message.contains("greenlight-approval=\"yes\""), "{message}");
    assert!(seen.lock().unwrap().is_empty(), "nothing started");
}

#[tokio::test]
async fn an_approval_the_ready_wait_cannot_hold_is_refused_with_the_numbers() {
    // The group waits 60 min in Ready; a 3500 s deadline + 300 s for the gate does not fit.
    let (start, seen) = start_ok();
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codedeploy.push(gated_rule("shop", "shop-prod"));
    m.approval_config = Some(
        r#"[{"application":"shop","deploymentGroup":"shop-prod","required":true,"deadlineSeconds":3500}]"#,
    );
    let deps = m.deps();
    let (error_type, message) = rejection(handler(lambda_event(event(EB_CREATED)), &deps).await);
    assert_eq!(error_type, "GroupNotGated");
    assert!(
        message.contains("Ready wait 60 min (3600 s) < approval deadline 3500 s + 300 s"),
        "{message}"
    );
    assert!(seen.lock().unwrap().is_empty(), "nothing started");
}

#[tokio::test]
async fn a_pipeline_asks_for_approval_in_its_user_parameters() {
    let (start, seen) = start_ok();
    let (success, _) = success_rule();
    let mut m = Mocks::new();
    m.sfn.push(start);
    m.codepipeline.push(success);
    m.codedeploy.push(gated_rule("shop", "shop-prod"));
    let deps = m.deps();
    let mut payload = event(PIPELINE_JOB);
    payload["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"] =
        json!(r#"{"application":"shop","deploymentGroup":"shop-prod","approval":"required"}"#);
    let response = handler(lambda_event(payload), &deps).await.unwrap();
    assert!(matches!(response, Response::Started { .. }), "{response:?}");
    let input = input_json(&seen, 0);
    assert_eq!(
        input["approval"],
        json!({"requestedBy": "pipelineParameter", "deadlineSeconds": 1800})
    );
    assert!(input.get("bakeSkip").is_none(), "{input}");
}
