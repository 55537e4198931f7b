//! Handler tests: the real SDK clients (CodeDeploy, Step Functions) answered
//! by aws-smithy-mocks rules; the task inputs come from `events/`.

use aws_sdk_codedeploy::config::http::HttpResponse;
use aws_sdk_codedeploy::operation::batch_get_deployment_targets::BatchGetDeploymentTargetsOutput;
use aws_sdk_codedeploy::operation::batch_get_deployments::BatchGetDeploymentsOutput;
use aws_sdk_codedeploy::operation::create_deployment::{
    CreateDeploymentError, CreateDeploymentOutput,
};
use aws_sdk_codedeploy::operation::get_deployment::{GetDeploymentError, GetDeploymentOutput};
use aws_sdk_codedeploy::operation::get_deployment_group::{
    GetDeploymentGroupError, GetDeploymentGroupOutput,
};
use aws_sdk_codedeploy::operation::list_deployment_targets::ListDeploymentTargetsOutput;
use aws_sdk_codedeploy::operation::list_deployments::{
    ListDeploymentsError, ListDeploymentsOutput,
};
use aws_sdk_codedeploy::operation::stop_deployment::{StopDeploymentError, StopDeploymentOutput};
use aws_sdk_codedeploy::types::error::{
    DeploymentAlreadyCompletedException, DeploymentDoesNotExistException,
    DeploymentGroupDoesNotExistException, DeploymentLimitExceededException,
    InvalidRevisionException, InvalidRoleException, RevisionDoesNotExistException,
};
use aws_sdk_codedeploy::types::AutoScalingGroup;
use aws_sdk_codedeploy::types::{
    BlueGreenDeploymentConfiguration, BlueInstanceTerminationOption, BundleType,
    DeploymentGroupInfo, DeploymentInfo, DeploymentTarget, ErrorCode, ErrorInformation,
    InstanceAction, InstanceTarget, LifecycleEvent, LifecycleEventStatus, RevisionLocationType,
    RollbackInfo, StopStatus, TargetInstances, TargetLabel, TargetStatus,
};
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::operation::list_executions::ListExecutionsOutput;
use aws_sdk_sfn::types::{ExecutionListItem, ExecutionStatus};
use aws_smithy_mocks::{mock, Rule};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::DateTime;
use deployment_watcher::{handler, Action, Deps, Error, Request, Response};
use greenlight_aws::AwsError;
use greenlight_core::model::{
    Admission, CreatedDeployment, DeploymentStatus, NextStep, Phase, PipelineInput, StatusReport,
    ValidationAction, ValidationReport,
};
use greenlight_core::watch::{deployment_description, execution_of_description};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};

mod common;
use common::{config, deps, deps_with, DEPLOYMENT_ID, SM_ARN};

const ADMIT: &str = include_str!("../../../events/task-admit.json");
const CREATE: &str = include_str!("../../../events/task-create.json");
const STATUS: &str = include_str!("../../../events/task-status.json");

const ME: &str = "shop-3f9c2a7d1e8b4c60a2d5e7f1b9c3d4e5";

fn request(fixture: &str) -> Request {
    serde_json::from_str(fixture).expect("fixture parses as TaskRequest<Action>")
}

async fn run(req: Request, deps: &Deps) -> Result<Response, Error> {
    handler(LambdaEvent::new(req, Context::default()), deps).await
}

fn now_ms() -> i64 {
    greenlight_aws::now_ms()
}

fn at_ms(ms: i64) -> DateTime {
    DateTime::from_millis(ms)
}

// ---------------------------------------------------------------------------
// fixtures
// ---------------------------------------------------------------------------

#[test]
fn every_fixture_parses_as_a_request() {
    let admit = request(ADMIT);
    assert_eq!(admit.action, Action::Admit);
    assert_eq!(admit.execution_name, ME);
    assert!(admit.pipeline.admission.is_none());
    let create = request(CREATE);
    assert_eq!(create.action, Action::Create);
    assert_eq!(create.pipeline.admission, Some(Admission::Proceed));
    assert_eq!(
        create
            .pipeline
            .tuning
            .as_ref()
            .unwrap()
            .predicted_allow_traffic
            .after_seconds,
        15
    );
    let status = request(STATUS);
    assert_eq!(status.action, Action::Status);
    assert_eq!(
        status.pipeline.deployment.as_ref().unwrap().deployment_id,
        DEPLOYMENT_ID
    );
    // The fixtures round-trip through the contract types unchanged.
    for fixture in [ADMIT, CREATE, STATUS] {
        let parsed: serde_json::Value = serde_json::from_str(fixture).unwrap();
        let again = serde_json::to_value(request(fixture)).unwrap();
        assert_eq!(parsed, again);
    }
}

// ---------------------------------------------------------------------------
// admit
// ---------------------------------------------------------------------------

fn exec_arn(name: &str) -> String {
    format!("arn:aws:states:us-east-1:111122223333:execution:greenlight-pipeline:{name}")
}

fn upload(key: &str, uploaded_at_ms: i64, group: &str) -> PipelineInput {
    let mut input = request(ADMIT).pipeline.input;
    input.revision.key = key.to_string();
    input.revision.label = key
        .rsplit('/')
        .next()
        .unwrap()
        .trim_end_matches(".zip")
        .to_string();
    input.uploaded_at_ms = uploaded_at_ms;
    input.deployment_group = group.to_string();
    input
}

/// ListExecutions answers `running` (name, input JSON); DescribeExecution answers each.
fn sfn_rules(running: Vec<(String, String)>) -> (Rule, Rule) {
    let listed = running.clone();
    let list = mock!(aws_sdk_sfn::Client::list_executions)
        .match_requests(|r| {
            r.state_machine_arn() == Some(SM_ARN)
                && r.status_filter() == Some(&ExecutionStatus::Running)
        })
        .then_output(move || {
            let mut out = ListExecutionsOutput::builder();
            for (name, _) in &listed {
                out = out.executions(
                    ExecutionListItem::builder()
                        .execution_arn(exec_arn(name))
                        .state_machine_arn(SM_ARN)
                        .name(name)
                        .status(ExecutionStatus::Running)
                        .start_date(at_ms(1_714_564_806_000))
                        .build()
                        .unwrap(),
                );
            }
            out.build().unwrap()
        });
    let describe = mock!(aws_sdk_sfn::Client::describe_execution).then_compute_output(move |r| {
        let arn = r.execution_arn().unwrap_or_default();
        let (name, input) = running
            .iter()
            .find(|(n, _)| exec_arn(n) == arn)
            .expect("describes only listed executions");
        DescribeExecutionOutput::builder()
            .execution_arn(arn)
            .state_machine_arn(SM_ARN)
            .name(name)
            .status(ExecutionStatus::Running)
            .start_date(at_ms(1_714_564_806_000))
            .input(input)
            .build()
            .unwrap()
    });
    (list, describe)
}

fn active_deployments(ids: &'static [&'static str]) -> Rule {
    mock!(aws_sdk_codedeploy::Client::list_deployments)
        .match_requests(|r| {
            r.application_name() == Some("shop")
                && r.deployment_group_name() == Some("shop-bluegreen")
                && r.include_only_statuses().len() == 5
                && r.create_time_range().is_none()
        })
        .then_output(move || {
            ListDeploymentsOutput::builder()
                .set_deployments(Some(ids.iter().map(|s| s.to_string()).collect()))
                .build()
        })
}

fn json(input: &PipelineInput) -> String {
    serde_json::to_string(input).unwrap()
}

#[tokio::test]
async fn admit_proceeds_when_idle_and_newest() {
    let req = request(ADMIT);
    let mine = req.pipeline.input.clone();
    let older = upload(
        "artifacts/shop/20240501115000-41.zip",
        mine.uploaded_at_ms - 600_000,
        "shop-bluegreen",
    );
    let newer_elsewhere = upload(
        "artifacts/shop/20240501121000-43.zip",
        mine.uploaded_at_ms + 600_000,
        "shop-canary",
    );
    let (list, describe) = sfn_rules(vec![
        (ME.to_string(), json(&mine)),
        ("shop-older".to_string(), json(&older)),
        ("shop-canary-newer".to_string(), json(&newer_elsewhere)),
    ]);
    let active = active_deployments(&[]);
    let deps = deps(&[&active], &[&list, &describe]);
    let out = run(req.clone(), &deps).await.unwrap();
    println!(
        "admit request:\n{}",
        serde_json::to_string_pretty(&req).unwrap()
    );
    println!(
        "admit response:\n{}",
        serde_json::to_string_pretty(&out).unwrap()
    );
    assert_eq!(out, Response::Admission(Admission::Proceed));
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        serde_json::json!({"decision": "proceed"})
    );
    // My own execution is not described.
    assert_eq!(describe.num_calls(), 2);
    assert_eq!(active.num_calls(), 1);
}

#[tokio::test]
async fn admit_never_reads_another_applications_or_groups_executions() {
    let req = request(ADMIT);
    let mine = req.pipeline.input.clone();
    let older = upload(
        "artifacts/shop/20240501115000-41.zip",
        mine.uploaded_at_ms - 600_000,
        "shop-bluegreen",
    );
    let mut billing = older.clone();
    billing.application = "billing".into();
    let mut api = older.clone();
    api.deployment_group = "shop-api".into();
    let name = greenlight_core::trigger::execution_name;
    let shop_name = name("shop", "shop-bluegreen", "bkt", "older.zip", "version:v1");
    let billing_name = name("billing", "shop-bluegreen", "bkt", "b.zip", "version:v1");
    let api_name = name("shop", "shop-api", "bkt", "api.zip", "version:v1");
    let (list, describe) = sfn_rules(vec![
        (ME.to_string(), json(&mine)),
        (shop_name, json(&older)),
        (billing_name, json(&billing)),
        (api_name, json(&api)),
    ]);
    let active = active_deployments(&[]);
    let deps = deps(&[&active], &[&list, &describe]);
    let out = run(req, &deps).await.unwrap();
    assert_eq!(out, Response::Admission(Admission::Proceed));
    // Only the other execution of this group is described: not mine, not
    // billing's, not the other group's.
    assert_eq!(describe.num_calls(), 1);
}

#[tokio::test]
async fn admit_is_superseded_by_a_newer_upload_for_the_group() {
    let req = request(ADMIT);
    let mine = req.pipeline.input.clone();
    let newer = upload(
        "artifacts/shop/20240501121000-43.zip",
        mine.uploaded_at_ms + 600_000,
        "shop-bluegreen",
    );
    let newest = upload(
        "artifacts/shop/20240501122000-44.zip",
        mine.uploaded_at_ms + 1_200_000,
        "shop-bluegreen",
    );
    let (list, describe) = sfn_rules(vec![
        ("shop-newer".to_string(), json(&newer)),
        ("shop-newest".to_string(), json(&newest)),
    ]);
    // Superseded wins over busy: this upload will never deploy.
    let active = active_deployments(&["d-RUNNING1"]);
    let deps = deps(&[&active], &[&list, &describe]);
    let out = run(req, &deps).await.unwrap();
    assert_eq!(
        out,
        Response::Admission(Admission::Superseded {
            by_execution: "shop-newest".into(),
            by_key: "artifacts/shop/20240501122000-44.zip".into(),
        })
    );
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        serde_json::json!({"decision": "superseded", "byExecution": "shop-newest", "byKey": "artifacts/shop/20240501122000-44.zip"})
    );
}

#[tokio::test]
async fn admit_answers_group_busy_while_a_deployment_is_active() {
    let req = request(ADMIT);
    let mine = req.pipeline.input.clone();
    let older = upload(
        "artifacts/shop/20240501115000-41.zip",
        mine.uploaded_at_ms - 600_000,
        "shop-bluegreen",
    );
    let (list, describe) = sfn_rules(vec![("shop-older".to_string(), json(&older))]);
    let active = active_deployments(&["d-RUNNING1"]);
    let deps = deps(&[&active], &[&list, &describe]);
    let err = run(req, &deps).await.unwrap_err();
    assert!(matches!(err, Error::GroupBusy(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("shop/shop-bluegreen") && message.contains("d-RUNNING1"),
        "{message}"
    );
    let diagnostic = Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "GroupBusy");
}

#[tokio::test]
async fn admit_skips_executions_whose_input_is_not_a_pipeline_input() {
    let req = request(ADMIT);
    let (list, describe) = sfn_rules(vec![
        (
            "someone-else".to_string(),
            "{\"hello\": \"world\"}".to_string(),
        ),
        ("garbage".to_string(), "not json".to_string()),
    ]);
    let active = active_deployments(&[]);
    let deps = deps(&[&active], &[&list, &describe]);
    assert_eq!(
        run(req, &deps).await.unwrap(),
        Response::Admission(Admission::Proceed)
    );
    assert_eq!(describe.num_calls(), 2);
}

#[tokio::test]
async fn admit_for_a_missing_group_names_it() {
    let req = request(ADMIT);
    let (list, describe) = sfn_rules(vec![]);
    let missing = mock!(aws_sdk_codedeploy::Client::list_deployments).then_error(|| {
        ListDeploymentsError::DeploymentGroupDoesNotExistException(
            DeploymentGroupDoesNotExistException::builder()
                .message("No Deployment Group found for name: shop-bluegreen")
                .build(),
        )
    });
    let deps = deps(&[&missing], &[&list, &describe]);
    let err = run(req, &deps).await.unwrap_err();
    assert_eq!(err.error_type(), "DeploymentGroupNotFound");
    assert!(err.to_string().contains("shop-bluegreen"), "{err}");
}

// ---------------------------------------------------------------------------
// create
// ---------------------------------------------------------------------------

fn recent_deployments(ids: Vec<&'static str>) -> Rule {
    mock!(aws_sdk_codedeploy::Client::list_deployments)
        .match_requests(|r| {
            r.application_name() == Some("shop")
                && r.deployment_group_name() == Some("shop-bluegreen")
                && r.create_time_range().is_some_and(|t| t.start().is_some())
                && r.include_only_statuses().is_empty()
        })
        .then_output(move || {
            ListDeploymentsOutput::builder()
                .set_deployments(Some(ids.iter().map(|s| s.to_string()).collect()))
                .build()
        })
}

fn batch_get(known: Vec<(&'static str, String, i64)>) -> Rule {
    mock!(aws_sdk_codedeploy::Client::batch_get_deployments).then_compute_output(move |r| {
        assert!(r.deployment_ids().len() <= 25);
        let mut out = BatchGetDeploymentsOutput::builder();
        for id in r.deployment_ids() {
            if let Some((_, desc, created)) = known.iter().find(|(k, _, _)| k == id) {
                out = out.deployments_info(
                    DeploymentInfo::builder()
                        .deployment_id(id)
                        .description(desc)
                        .create_time(at_ms(*created))
                        .build(),
                );
            }
        }
        out.build()
    })
}

fn create_ok() -> Rule {
    mock!(aws_sdk_codedeploy::Client::create_deployment)
        .match_requests(|r| {
            let s3 = r.revision().and_then(|rev| rev.s3_location());
            r.application_name() == Some("shop")
                && r.deployment_group_name() == Some("shop-bluegreen")
                && r.deployment_config_name() == Some("CodeDeployDefault.OneAtATime")
                && r.ignore_application_stop_failures() == Some(false)
                && r.description().and_then(execution_of_description) == Some(ME)
                && r.revision().and_then(|rev| rev.revision_type())
                    == Some(&RevisionLocationType::S3)
                && s3.and_then(|s| s.bucket()) == Some("greenlight-artifacts-111122223333")
                && s3.and_then(|s| s.key()) == Some("artifacts/shop/20240501120000-42.zip")
                && s3.and_then(|s| s.bundle_type()) == Some(&BundleType::Zip)
                && s3.and_then(|s| s.version()) == Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e")
                && s3.and_then(|s| s.e_tag()) == Some("b1946ac92492d2347c6235b4d2611184")
        })
        .then_output(|| {
            CreateDeploymentOutput::builder()
                .deployment_id("d-NEW12345")
                .build()
        })
}

/// GetDeploymentGroup for shop/shop-bluegreen: blue terminated after `minutes`.
fn group_with_termination_wait(minutes: i32) -> Rule {
    mock!(aws_sdk_codedeploy::Client::get_deployment_group)
        .match_requests(|r| {
            r.application_name() == Some("shop")
                && r.deployment_group_name() == Some("shop-bluegreen")
        })
        .then_output(move || {
            let terminate = BlueInstanceTerminationOption::builder()
                .action(InstanceAction::Terminate)
                .termination_wait_time_in_minutes(minutes)
                .build();
            GetDeploymentGroupOutput::builder()
                .deployment_group_info(
                    DeploymentGroupInfo::builder()
                        .application_name("shop")
                        .deployment_group_name("shop-bluegreen")
                        .auto_scaling_groups(
                            AutoScalingGroup::builder().name("shop-asg-blue").build(),
                        )
                        .blue_green_deployment_configuration(
                            BlueGreenDeploymentConfiguration::builder()
                                .terminate_blue_instances_on_deployment_success(terminate)
                                .build(),
                        )
                        .build(),
                )
                .build()
        })
}

#[tokio::test]
async fn create_makes_a_new_deployment_with_the_s3_revision() {
    let req = request(CREATE);
    let list = recent_deployments(vec!["d-OTHER001", "d-MANUAL01"]);
    let batch = batch_get(vec![
        (
            "d-OTHER001",
            deployment_description("shop-older-execution"),
            now_ms() - 3_600_000,
        ),
        (
            "d-MANUAL01",
            "hotfix by hand".to_string(),
            now_ms() - 7_200_000,
        ),
    ]);
    let create = create_ok();
    let group = group_with_termination_wait(5);
    let deps = deps(&[&list, &batch, &create, &group], &[]);
    let before = now_ms();
    let out = run(req.clone(), &deps).await.unwrap();
    println!(
        "create response:\n{}",
        serde_json::to_string_pretty(&out).unwrap()
    );
    let Response::Created(created) = out else {
        panic!("expected CreatedDeployment, got {out:?}")
    };
    assert_eq!(create.num_calls(), 1);
    assert_eq!(created.deployment_id, "d-NEW12345");
    assert!(!created.reused);
    assert!(created.created_at_ms >= before && created.created_at_ms <= now_ms());
    assert_eq!(created.deadline_ms, created.created_at_ms + 3_600_000);
    // The group's 5-minute termination wait, for the Terminating prediction.
    assert_eq!(group.num_calls(), 1);
    assert_eq!(created.blue_termination_wait_seconds, Some(300));
    assert_eq!(
        created.deployment_config_name.as_deref(),
        Some("CodeDeployDefault.OneAtATime")
    );
    // Defect 4 (issue 9): the blue fleet, read from the group before create.
    assert_eq!(created.blue_auto_scaling_groups, vec!["shop-asg-blue"]);
}

/// A GetDeploymentGroup answer made of an HTTP status and an awsJson error body.
fn group_http_error(status: u16, code: &'static str) -> Rule {
    mock!(aws_sdk_codedeploy::Client::get_deployment_group).then_http_response(move || {
        HttpResponse::new(
            status.try_into().expect("status"),
            SdkBody::from(format!(
                r#"{{"__type":"{code}","message":"{code} from the test"}}"#
            )),
        )
    })
}

/// Defect 4 (issue 9): the blue Auto Scaling groups are required, so a group
/// that cannot be read fails `create` with a named error and creates nothing.
#[tokio::test]
async fn create_fails_named_when_the_group_cannot_be_read() {
    let list = recent_deployments(vec![]);
    let batch = batch_get(vec![]);
    let create = create_ok();
    let denied = mock!(aws_sdk_codedeploy::Client::get_deployment_group).then_error(|| {
        GetDeploymentGroupError::generic(
            aws_sdk_codedeploy::error::ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("not authorized to perform codedeploy:GetDeploymentGroup")
                .build(),
        )
    });
    let d = deps(&[&list, &batch, &create, &denied], &[]);
    let err = run(request(CREATE), &d).await.unwrap_err();
    assert_eq!(Diagnostic::from(err).error_type, "AwsError");
    assert_eq!(
        create.num_calls(),
        0,
        "no deployment without the blue record"
    );

    // Throttled past the SDK's retries: transient, retried by the state machine.
    let throttled = group_http_error(400, "ThrottlingException");
    let d = deps(&[&list, &batch, &create, &throttled], &[]);
    let err = run(request(CREATE), &d).await.unwrap_err();
    let m = err.to_string();
    assert_eq!(Diagnostic::from(err).error_type, "AwsTransient", "{m}");
    assert!(
        m.contains("GetDeploymentGroup on shop/shop-bluegreen"),
        "{m}"
    );
    assert_eq!(create.num_calls(), 0);

    let missing = mock!(aws_sdk_codedeploy::Client::get_deployment_group).then_error(|| {
        GetDeploymentGroupError::DeploymentGroupDoesNotExistException(
            DeploymentGroupDoesNotExistException::builder()
                .message("No Deployment Group found for name: shop-bluegreen")
                .build(),
        )
    });
    let d = deps(&[&list, &batch, &create, &missing], &[]);
    let err = run(request(CREATE), &d).await.unwrap_err();
    assert_eq!(err.error_type(), "DeploymentGroupNotFound");
    assert!(err.to_string().contains("shop-bluegreen"), "{err}");
}

#[tokio::test]
async fn create_throttled_or_5xx_is_transient() {
    for (status, code) in [(400, "ThrottlingException"), (503, "ServiceUnavailable")] {
        let list = recent_deployments(vec![]);
        let batch = batch_get(vec![]);
        let group = group_with_termination_wait(5);
        let create =
            mock!(aws_sdk_codedeploy::Client::create_deployment).then_http_response(move || {
                HttpResponse::new(
                    status.try_into().expect("status"),
                    SdkBody::from(format!(r#"{{"__type":"{code}","message":"m"}}"#)),
                )
            });
        let deps = deps(&[&list, &batch, &group, &create], &[]);
        let err = run(request(CREATE), &deps).await.unwrap_err();
        assert_eq!(err.error_type(), "AwsTransient", "{code}: {err}");
    }
}

#[tokio::test]
async fn a_retried_create_reuses_the_deployment_it_made() {
    let req = request(CREATE);
    let made_at = now_ms() - 20_000;
    let list = recent_deployments(vec!["d-OTHER001", "d-MINE0001"]);
    let batch = batch_get(vec![
        (
            "d-OTHER001",
            deployment_description("shop-older-execution"),
            now_ms() - 3_600_000,
        ),
        ("d-MINE0001", deployment_description(ME), made_at),
    ]);
    let create = create_ok();
    let group = group_with_termination_wait(0);
    let deps = deps(&[&list, &batch, &create, &group], &[]);
    let out = run(req, &deps).await.unwrap();
    assert_eq!(
        out,
        Response::Created(CreatedDeployment {
            deployment_id: "d-MINE0001".into(),
            created_at_ms: made_at,
            deadline_ms: made_at + 3_600_000,
            reused: true,
            blue_termination_wait_seconds: Some(0),
            deployment_config_name: Some("CodeDeployDefault.OneAtATime".into()),
            blue_auto_scaling_groups: vec!["shop-asg-blue".into()],
        })
    );
    assert_eq!(create.num_calls(), 0, "no second deployment");
}

#[tokio::test]
async fn create_reads_every_page_and_batches_of_25() {
    let req = request(CREATE);
    let list = mock!(aws_sdk_codedeploy::Client::list_deployments).then_compute_output(|r| {
        let (range, next) = match r.next_token() {
            None => (0..20, Some("page-2")),
            Some(_) => (20..40, None),
        };
        ListDeploymentsOutput::builder()
            .set_deployments(Some(range.map(|i| format!("d-OLD{i:05}")).collect()))
            .set_next_token(next.map(str::to_string))
            .build()
    });
    let mine_at = now_ms() - 5_000;
    let batch =
        mock!(aws_sdk_codedeploy::Client::batch_get_deployments).then_compute_output(move |r| {
            assert!(
                r.deployment_ids().len() <= 25,
                "batch of {}",
                r.deployment_ids().len()
            );
            let mut out = BatchGetDeploymentsOutput::builder();
            for id in r.deployment_ids() {
                let description = if id == "d-OLD00037" {
                    deployment_description(ME)
                } else {
                    format!("greenlight execution other-{id} (x)")
                };
                out = out.deployments_info(
                    DeploymentInfo::builder()
                        .deployment_id(id)
                        .description(description)
                        .create_time(at_ms(mine_at))
                        .build(),
                );
            }
            out.build()
        });
    let create = create_ok();
    let group = group_with_termination_wait(5);
    let deps = deps(&[&list, &batch, &create, &group], &[]);
    let Response::Created(created) = run(req, &deps).await.unwrap() else {
        panic!("expected CreatedDeployment")
    };
    assert_eq!(created.deployment_id, "d-OLD00037");
    assert!(created.reused);
    assert_eq!(list.num_calls(), 2);
    assert_eq!(batch.num_calls(), 2);
    assert_eq!(create.num_calls(), 0);
}

async fn create_failing_with(error: fn() -> CreateDeploymentError) -> Error {
    let req = request(CREATE);
    let list = recent_deployments(vec![]);
    let batch = batch_get(vec![]);
    let create = mock!(aws_sdk_codedeploy::Client::create_deployment).then_error(error);
    let group = group_with_termination_wait(5);
    let deps = deps(&[&list, &batch, &create, &group], &[]);
    run(req, &deps).await.unwrap_err()
}

#[tokio::test]
async fn create_when_codedeploy_has_an_active_deployment_is_group_busy() {
    let err = create_failing_with(|| {
        CreateDeploymentError::DeploymentLimitExceededException(
            DeploymentLimitExceededException::builder()
                .message("The Deployment Group 'shop-bluegreen' already has an active Deployment 'd-OUTSIDE1'")
                .build(),
        )
    })
    .await;
    assert_eq!(Diagnostic::from(err).error_type, "GroupBusy");
}

#[tokio::test]
async fn create_with_a_bad_revision_is_invalid_revision() {
    for error in [
        (|| {
            CreateDeploymentError::InvalidRevisionException(
                InvalidRevisionException::builder()
                    .message("bundle is not a zip")
                    .build(),
            )
        }) as fn() -> CreateDeploymentError,
        || {
            CreateDeploymentError::RevisionDoesNotExistException(
                RevisionDoesNotExistException::builder()
                    .message("no such object")
                    .build(),
            )
        },
    ] {
        let err = create_failing_with(error).await;
        assert_eq!(err.error_type(), "InvalidRevision");
        let m = err.to_string();
        assert!(
            m.contains(
                "s3://greenlight-artifacts-111122223333/artifacts/shop/20240501120000-42.zip"
            ),
            "{m}"
        );
    }
}

#[tokio::test]
async fn create_for_a_missing_group_is_deployment_group_not_found() {
    let err = create_failing_with(|| {
        CreateDeploymentError::DeploymentGroupDoesNotExistException(
            DeploymentGroupDoesNotExistException::builder()
                .message("no such group")
                .build(),
        )
    })
    .await;
    assert_eq!(err.error_type(), "DeploymentGroupNotFound");
}

#[tokio::test]
async fn create_rejected_for_other_reasons_says_why() {
    let err = create_failing_with(|| {
        CreateDeploymentError::InvalidRoleException(
            InvalidRoleException::builder()
                .message("The service role cannot be assumed")
                .build(),
        )
    })
    .await;
    assert_eq!(err.error_type(), "DeploymentCreateRejected");
    assert!(err.to_string().contains("service role"), "{err}");
}

// ---------------------------------------------------------------------------
// status
// ---------------------------------------------------------------------------

const INSTALL: [&str; 7] = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
];
const ALLOW: [&str; 3] = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"];
const BLOCK: [&str; 3] = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"];

/// (name, status, start ms, end ms)
type Ev = (&'static str, LifecycleEventStatus, Option<i64>, Option<i64>);

fn event((name, status, start, end): Ev) -> LifecycleEvent {
    LifecycleEvent::builder()
        .lifecycle_event_name(name)
        .status(status)
        .set_start_time(start.map(at_ms))
        .set_end_time(end.map(at_ms))
        .build()
}

fn target(id: &str, label: TargetLabel, events: Vec<Ev>) -> DeploymentTarget {
    DeploymentTarget::builder()
        .instance_target(
            InstanceTarget::builder()
                .deployment_id(DEPLOYMENT_ID)
                .target_id(id)
                .target_arn(format!("arn:aws:ec2:us-east-1:111122223333:instance/{id}"))
                .status(TargetStatus::InProgress)
                .instance_label(label)
                .set_lifecycle_events(Some(events.into_iter().map(event).collect()))
                .build(),
        )
        .build()
}

fn pending(names: &[&'static str]) -> Vec<Ev> {
    names
        .iter()
        .map(|n| (*n, LifecycleEventStatus::Pending, None, None))
        .collect()
}

/// Events `names`, each 5 s long, back to back from `from`.
fn succeeded(names: &[&'static str], from: i64) -> Vec<Ev> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let start = from + i as i64 * 5_000;
            (
                *n,
                LifecycleEventStatus::Succeeded,
                Some(start),
                Some(start + 5_000),
            )
        })
        .collect()
}

#[derive(Clone)]
struct Scenario {
    status: aws_sdk_codedeploy::types::DeploymentStatus,
    created: i64,
    green: Vec<Ev>,
    blue: Vec<Ev>,
    termination_wait_started: bool,
    error: Option<ErrorInformation>,
    completed: Option<i64>,
}

fn info(s: &Scenario) -> DeploymentInfo {
    let mut info = DeploymentInfo::builder()
        .deployment_id(DEPLOYMENT_ID)
        .application_name("shop")
        .deployment_group_name("shop-bluegreen")
        .status(s.status.clone())
        .description(deployment_description(ME))
        .create_time(at_ms(s.created))
        .set_complete_time(s.completed.map(at_ms))
        .instance_termination_wait_time_started(s.termination_wait_started)
        .target_instances(
            TargetInstances::builder()
                .auto_scaling_groups("shop-asg-blue")
                .build(),
        );
    if let Some(e) = &s.error {
        info = info.error_information(e.clone()).rollback_info(
            RollbackInfo::builder()
                .rollback_deployment_id("d-ROLLBACK1")
                .build(),
        );
    }
    info.build()
}

/// GetDeployment + ListDeploymentTargets + BatchGetDeploymentTargets for a scenario.
fn codedeploy_rules(s: Scenario) -> Vec<Rule> {
    let deployment = info(&s);
    let targets = vec![
        target("i-0green0000000001", TargetLabel::Green, s.green),
        target("i-0blue00000000001", TargetLabel::Blue, s.blue),
    ];
    vec![
        mock!(aws_sdk_codedeploy::Client::get_deployment)
            .match_requests(|r| r.deployment_id() == Some(DEPLOYMENT_ID))
            .then_output(move || {
                GetDeploymentOutput::builder()
                    .deployment_info(deployment.clone())
                    .build()
            }),
        mock!(aws_sdk_codedeploy::Client::list_deployment_targets).then_output(|| {
            ListDeploymentTargetsOutput::builder()
                .target_ids("i-0green0000000001")
                .target_ids("i-0blue00000000001")
                .build()
        }),
        mock!(aws_sdk_codedeploy::Client::batch_get_deployment_targets).then_output(move || {
            BatchGetDeploymentTargetsOutput::builder()
                .set_deployment_targets(Some(targets.clone()))
                .build()
        }),
    ]
}

/// The status fixture with a deadline an hour from now (or `deadline`).
fn status_request(deadline: Option<i64>) -> Request {
    let mut req = request(STATUS);
    let d = req.pipeline.deployment.as_mut().unwrap();
    d.created_at_ms = now_ms() - 600_000;
    d.deadline_ms = deadline.unwrap_or(now_ms() + 3_600_000);
    req
}

async fn look(req: Request, rules: &[Rule], extra: &[&Rule]) -> Result<StatusReport, Error> {
    let mut all: Vec<&Rule> = rules.iter().collect();
    all.extend_from_slice(extra);
    let deps = deps(&all, &[]);
    match run(req, &deps).await? {
        Response::Status(r) => Ok(r),
        other => panic!("expected a StatusReport, got {other:?}"),
    }
}

fn scenario(status: aws_sdk_codedeploy::types::DeploymentStatus, created: i64) -> Scenario {
    Scenario {
        status,
        created,
        green: pending(&INSTALL)
            .into_iter()
            .chain(pending(&ALLOW))
            .collect(),
        blue: pending(&BLOCK),
        termination_wait_started: false,
        error: None,
        completed: None,
    }
}

fn assert_between(value: u32, low: u32, high: u32) {
    assert!(
        (low..=high).contains(&value),
        "{value} not in {low}..={high}"
    );
}

use aws_sdk_codedeploy::types::DeploymentStatus as Sdk;

#[tokio::test]
async fn status_queued() {
    let now = now_ms();
    let mut s = scenario(Sdk::Queued, now - 3_000);
    s.green = vec![];
    s.blue = vec![];
    let r = look(status_request(None), &codedeploy_rules(s), &[])
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.phase, r.next),
        (DeploymentStatus::Queued, Phase::Queued, NextStep::Wait)
    );
    // 10 s predicted, 3 s elapsed → 7 (bounded below by 5).
    assert_between(r.wait_seconds, 5, 7);
}

#[tokio::test]
async fn status_provisioning_waits_the_max() {
    let now = now_ms();
    let r = look(
        status_request(None),
        &codedeploy_rules(scenario(Sdk::InProgress, now - 60_000)),
        &[],
    )
    .await
    .unwrap();
    assert_eq!((r.phase, r.next), (Phase::Provisioning, NextStep::Wait));
    // 240 s predicted, 60 elapsed → 180 → bounded to 60.
    assert_eq!(r.wait_seconds, 60);
    assert_eq!(r.ledger.len(), 1);
    assert_eq!(r.ledger[0].predicted_seconds, Some(240));
}

#[tokio::test]
async fn status_installing_waits_the_remaining_prediction() {
    let now = now_ms();
    let mut s = scenario(Sdk::InProgress, now - 200_000);
    // Install began 70 s ago; 3 events done, the 4th running.
    let begun = now - 70_000;
    s.green = succeeded(&INSTALL[..3], begun)
        .into_iter()
        .chain([(
            INSTALL[3],
            LifecycleEventStatus::InProgress,
            Some(begun + 15_000),
            None,
        )])
        .chain(pending(&INSTALL[4..]))
        .chain(pending(&ALLOW))
        .collect();
    let req = status_request(None);
    let r = look(req.clone(), &codedeploy_rules(s), &[]).await.unwrap();
    println!(
        "status request:\n{}",
        serde_json::to_string_pretty(&req).unwrap()
    );
    println!(
        "status response:\n{}",
        serde_json::to_string_pretty(&r).unwrap()
    );
    assert_eq!((r.phase, r.next), (Phase::Installing, NextStep::Wait));
    // 90 s predicted for one green instance, 70 elapsed → 20.
    assert_between(r.wait_seconds, 19, 20);
    assert_eq!(r.ledger[1].phase, Phase::Installing);
    assert_eq!(r.ledger[1].started_at_ms, begun);
    assert_eq!(r.ledger[0].ended_at_ms, Some(begun));
}

#[tokio::test]
async fn status_ready_means_validate() {
    let now = now_ms();
    let mut s = scenario(Sdk::Ready, now - 300_000);
    s.green = succeeded(&INSTALL, now - 100_000)
        .into_iter()
        .chain(pending(&ALLOW))
        .collect();
    let r = look(status_request(None), &codedeploy_rules(s), &[])
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.phase, r.next, r.wait_seconds),
        (
            DeploymentStatus::Ready,
            Phase::ReadyWait,
            NextStep::Validate,
            0
        )
    );
}

#[tokio::test]
async fn status_ready_after_a_passed_validation_waits() {
    let now = now_ms();
    let mut s = scenario(Sdk::Ready, now - 300_000);
    s.green = succeeded(&INSTALL, now - 100_000)
        .into_iter()
        .chain(pending(&ALLOW))
        .collect();
    let mut req = status_request(None);
    req.pipeline.validation = Some(ValidationReport {
        deployment_id: DEPLOYMENT_ID.into(),
        passed: true,
        summary: "all 1 green instance answered 200 three times".into(),
        instances: vec![],
        action: ValidationAction::Continued,
    });
    let r = look(req, &codedeploy_rules(s), &[]).await.unwrap();
    assert_eq!((r.next, r.wait_seconds), (NextStep::Wait, 5));
}

#[tokio::test]
async fn status_rerouting_uses_the_tuned_allow_traffic_prediction() {
    let now = now_ms();
    let mut s = scenario(Sdk::InProgress, now - 400_000);
    let reroute = now - 20_000;
    s.green = succeeded(&INSTALL, now - 200_000)
        .into_iter()
        .chain(succeeded(&ALLOW[..1], reroute))
        .chain([(
            ALLOW[1],
            LifecycleEventStatus::InProgress,
            Some(reroute + 5_000),
            None,
        )])
        .chain(pending(&ALLOW[2..]))
        .collect();
    let r = look(status_request(None), &codedeploy_rules(s), &[])
        .await
        .unwrap();
    assert_eq!((r.phase, r.next), (Phase::Rerouting, NextStep::Wait));
    // Fixture tuning: AllowTraffic 15 s after tuning + 30 s tuned BlockTraffic = 45; 20 elapsed → 25.
    let rerouting = r
        .ledger
        .iter()
        .find(|t| t.phase == Phase::Rerouting)
        .unwrap();
    assert_eq!(rerouting.predicted_seconds, Some(45));
    assert_between(r.wait_seconds, 24, 25);
}

#[tokio::test]
async fn status_terminating_after_reroute() {
    let now = now_ms();
    let mut s = scenario(Sdk::InProgress, now - 600_000);
    s.green = succeeded(&INSTALL, now - 300_000)
        .into_iter()
        .chain(succeeded(&ALLOW, now - 100_000))
        .collect();
    s.blue = succeeded(&BLOCK, now - 85_000);
    s.termination_wait_started = true;
    let req = status_request(None);
    assert_eq!(
        req.pipeline
            .deployment
            .as_ref()
            .unwrap()
            .blue_termination_wait_seconds,
        Some(300),
        "the fixture's group waits 5 minutes before terminating blue"
    );
    let r = look(req.clone(), &codedeploy_rules(s.clone()), &[])
        .await
        .unwrap();
    assert_eq!((r.phase, r.next), (Phase::Terminating, NextStep::Wait));
    // Reroute ended 70 s ago; 300 s wait + 60 s predicted → 290 s remain → the 60 s maximum.
    assert_eq!(r.wait_seconds, 60);
    // Termination wait unknown: 60 s predicted → overdue → 70 / 4 = 17.
    let mut unknown = req;
    unknown
        .pipeline
        .deployment
        .as_mut()
        .unwrap()
        .blue_termination_wait_seconds = None;
    let r = look(unknown, &codedeploy_rules(s), &[]).await.unwrap();
    assert_eq!((r.phase, r.next), (Phase::Terminating, NextStep::Wait));
    assert_between(r.wait_seconds, 17, 18);
    assert_eq!(
        r.ledger.iter().map(|t| t.phase).collect::<Vec<_>>(),
        vec![
            Phase::Provisioning,
            Phase::Installing,
            Phase::ReadyWait,
            Phase::Rerouting,
            Phase::Terminating
        ]
    );
}

#[tokio::test]
async fn status_succeeded() {
    let now = now_ms();
    let mut s = scenario(Sdk::Succeeded, now - 900_000);
    s.green = succeeded(&INSTALL, now - 800_000)
        .into_iter()
        .chain(succeeded(&ALLOW, now - 600_000))
        .collect();
    s.blue = succeeded(&BLOCK, now - 585_000);
    s.completed = Some(now - 10_000);
    let r = look(status_request(None), &codedeploy_rules(s), &[])
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.phase, r.next, r.wait_seconds),
        (
            DeploymentStatus::Succeeded,
            Phase::Done,
            NextStep::Succeeded,
            0
        )
    );
    assert_eq!(r.ledger.last().unwrap().ended_at_ms, Some(now - 10_000));
    assert!(r.error.is_none() && !r.deadline_exceeded);
}

#[tokio::test]
async fn status_failed_reports_codedeploy_error_and_rollback() {
    let now = now_ms();
    let mut s = scenario(Sdk::Failed, now - 900_000);
    s.green = succeeded(&INSTALL[..5], now - 800_000)
        .into_iter()
        .chain([(
            INSTALL[5],
            LifecycleEventStatus::Failed,
            Some(now - 775_000),
            Some(now - 770_000),
        )])
        .chain(
            INSTALL[6..]
                .iter()
                .map(|n| (*n, LifecycleEventStatus::Skipped, None, None)),
        )
        .chain(
            ALLOW
                .iter()
                .map(|n| (*n, LifecycleEventStatus::Skipped, None, None)),
        )
        .collect();
    s.error = Some(
        ErrorInformation::builder()
            .code(ErrorCode::HealthConstraints)
            .message("The overall deployment failed because too many individual instances failed deployment, too few healthy instances are available for deployment, or some instances in your deployment group are experiencing problems.")
            .build(),
    );
    s.completed = Some(now - 760_000);
    let stop = mock!(aws_sdk_codedeploy::Client::stop_deployment).then_output(|| {
        StopDeploymentOutput::builder()
            .status(StopStatus::Succeeded)
            .build()
    });
    let r = look(status_request(None), &codedeploy_rules(s), &[&stop])
        .await
        .unwrap();
    println!(
        "failed status response:\n{}",
        serde_json::to_string_pretty(&r).unwrap()
    );
    assert_eq!(
        (r.status, r.phase, r.next),
        (DeploymentStatus::Failed, Phase::Done, NextStep::Failed)
    );
    let e = r.error.unwrap();
    assert_eq!(e.code, "HEALTH_CONSTRAINTS");
    assert!(e.message.contains("too many individual instances failed"));
    assert_eq!(r.rollback_deployment_id.as_deref(), Some("d-ROLLBACK1"));
    assert!(!r.deadline_exceeded);
    assert_eq!(stop.num_calls(), 0);
    assert_eq!(r.ledger.last().unwrap().phase, Phase::Installing);
    assert_eq!(r.ledger.last().unwrap().ended_at_ms, Some(now - 760_000));
}

#[tokio::test]
async fn status_past_the_deadline_stops_with_rollback() {
    let now = now_ms();
    let mut s = scenario(Sdk::InProgress, now - 3_700_000);
    s.green = succeeded(&INSTALL[..2], now - 3_000_000)
        .into_iter()
        .chain([(
            INSTALL[2],
            LifecycleEventStatus::InProgress,
            Some(now - 2_990_000),
            None,
        )])
        .chain(pending(&INSTALL[3..]))
        .chain(pending(&ALLOW))
        .collect();
    let stop = mock!(aws_sdk_codedeploy::Client::stop_deployment)
        .match_requests(|r| {
            r.deployment_id() == Some(DEPLOYMENT_ID) && r.auto_rollback_enabled() == Some(true)
        })
        .then_output(|| {
            StopDeploymentOutput::builder()
                .status(StopStatus::Pending)
                .status_message("Stopping Pending. Stopping to deploy to instances.")
                .build()
        });
    // The fixture's own deadline (2024) is long past.
    let req = request(STATUS);
    let r = look(req, &codedeploy_rules(s), &[&stop]).await.unwrap();
    println!(
        "deadline status response:\n{}",
        serde_json::to_string_pretty(&r).unwrap()
    );
    assert_eq!(stop.num_calls(), 1);
    assert!(r.deadline_exceeded);
    assert_eq!((r.next, r.wait_seconds), (NextStep::Failed, 0));
    assert_eq!(r.error.as_ref().unwrap().code, "DEADLINE_EXCEEDED");
    let message = r.error.unwrap().message;
    assert!(
        message.contains(DEPLOYMENT_ID) && message.contains("(3600 s after creation)"),
        "{message}"
    );
}

#[tokio::test]
async fn status_deadline_race_with_completion_reports_the_end() {
    let now = now_ms();
    // Still installing (before the point of no return) at the first look;
    // CodeDeploy ended it (Failed) before the stop landed.
    let mut running = scenario(Sdk::InProgress, now - 3_700_000);
    running.green = succeeded(&INSTALL[..3], now - 3_000_000)
        .into_iter()
        .chain(pending(&INSTALL[3..]))
        .chain(pending(&ALLOW))
        .collect();
    let mut done = scenario(Sdk::Failed, now - 3_700_000);
    done.green = running.green.clone();
    done.blue = running.blue.clone();
    done.completed = Some(now - 1_000);
    let (first, second) = (info(&running), info(&done));
    let get = mock!(aws_sdk_codedeploy::Client::get_deployment)
        .sequence()
        .output(move || {
            GetDeploymentOutput::builder()
                .deployment_info(first.clone())
                .build()
        })
        .output(move || {
            GetDeploymentOutput::builder()
                .deployment_info(second.clone())
                .build()
        })
        .build();
    let mut rules = codedeploy_rules(running);
    rules.remove(0);
    let stop = mock!(aws_sdk_codedeploy::Client::stop_deployment).then_error(|| {
        StopDeploymentError::DeploymentAlreadyCompletedException(
            DeploymentAlreadyCompletedException::builder()
                .message("The deployment d-7Q2KJ3X1A has already completed.")
                .build(),
        )
    });
    let r = look(status_request(Some(now - 1)), &rules, &[&get, &stop])
        .await
        .unwrap();
    assert_eq!(stop.num_calls(), 1);
    assert_eq!(get.num_calls(), 2);
    assert_eq!(
        (r.status, r.next),
        (DeploymentStatus::Failed, NextStep::Failed)
    );
    assert!(!r.deadline_exceeded);
}

/// Defect 1 (issue 9): a deployment that passed validation and moved traffic
/// (blue termination wait) is never stopped by the deadline.
#[tokio::test]
async fn status_past_the_deadline_in_the_termination_wait_never_stops() {
    let now = now_ms();
    let mut s = scenario(Sdk::InProgress, now - 3_700_000);
    s.green = succeeded(&INSTALL, now - 3_000_000)
        .into_iter()
        .chain(succeeded(&ALLOW, now - 2_000_000))
        .collect();
    s.blue = succeeded(&BLOCK, now - 1_990_000);
    s.termination_wait_started = true;
    let stop = mock!(aws_sdk_codedeploy::Client::stop_deployment)
        .then_output(|| StopDeploymentOutput::builder().build());
    for (name, deadline) in [
        ("deadline just passed", now - 1),
        // Past the post-reroute bound too: overdue, still never stopped.
        ("post-reroute bound passed", now - 3 * 3_600_000 - 1),
    ] {
        let r = look(
            status_request(Some(deadline)),
            &codedeploy_rules(s.clone()),
            &[&stop],
        )
        .await
        .unwrap();
        assert_eq!(
            (r.phase, r.next),
            (Phase::Terminating, NextStep::Wait),
            "{name}"
        );
        assert!(!r.deadline_exceeded, "{name}");
        assert!(r.wait_seconds >= 5, "{name}");
        if name == "post-reroute bound passed" {
            assert_eq!(r.error.as_ref().unwrap().code, "POST_REROUTE_OVERDUE");
        } else {
            assert!(r.error.is_none(), "{name}");
        }
    }
    assert_eq!(
        stop.num_calls(),
        0,
        "never StopDeployment past the point of no return"
    );
}

/// Defect 2 (issue 9): throttling or a 5xx that outlasts the SDK's retries is
/// `AwsTransient` (retried by the state machine), a permanent error `AwsError`.
#[tokio::test]
async fn status_transient_and_permanent_aws_errors() {
    for (status, code, expected) in [
        (400, "ThrottlingException", "AwsTransient"),
        (503, "ServiceUnavailable", "AwsTransient"),
        (500, "InternalFailure", "AwsTransient"),
        (400, "AccessDeniedException", "AwsError"),
    ] {
        let get = mock!(aws_sdk_codedeploy::Client::get_deployment).then_http_response(move || {
            HttpResponse::new(
                status.try_into().expect("status"),
                SdkBody::from(format!(r#"{{"__type":"{code}","message":"m"}}"#)),
            )
        });
        let err = look(status_request(None), &[], &[&get]).await.unwrap_err();
        let m = err.to_string();
        assert_eq!(Diagnostic::from(err).error_type, expected, "{code}: {m}");
        assert!(m.contains("GetDeployment on d-7Q2KJ3X1A"), "{m}");
    }
}

#[tokio::test]
async fn status_of_a_missing_deployment_is_deployment_not_found() {
    let get = mock!(aws_sdk_codedeploy::Client::get_deployment).then_error(|| {
        GetDeploymentError::DeploymentDoesNotExistException(
            DeploymentDoesNotExistException::builder()
                .message("The deployment d-7Q2KJ3X1A could not be found.")
                .build(),
        )
    });
    let err = look(status_request(None), &[], &[&get]).await.unwrap_err();
    assert_eq!(Diagnostic::from(err).error_type, "DeploymentNotFound");
}

#[tokio::test]
async fn status_without_a_created_deployment_is_invalid_input() {
    let mut req = request(STATUS);
    req.pipeline.deployment = None;
    let err = look(req, &[], &[]).await.unwrap_err();
    assert_eq!(err.error_type(), "InvalidInput");
    assert!(err.to_string().contains("$.deployment"), "{err}");
}

// ---------------------------------------------------------------------------
// configuration
// ---------------------------------------------------------------------------

#[test]
fn config_rejects_bad_wait_bounds() {
    let mut c = config();
    assert!(c.validate().is_ok());
    c.min_wait_seconds = 0;
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("MIN_WAIT_SECONDS"));
    c.min_wait_seconds = 90;
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("MAX_WAIT_SECONDS"));
    let mut c = config();
    c.deployment_timeout_seconds = 0;
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("DEPLOYMENT_TIMEOUT_SECONDS"));
}

#[test]
fn every_error_type_is_stable() {
    let names: Vec<&str> = [
        Error::GroupBusy(String::new()),
        Error::DeploymentGroupNotFound(String::new()),
        Error::DeploymentNotFound(String::new()),
        Error::InvalidRevision(String::new()),
        Error::DeploymentCreateRejected(String::new()),
        Error::InvalidInput(String::new()),
        Error::Aws(AwsError::unexpected("Op", "r", "m")),
        Error::Aws(AwsError {
            transient: true,
            ..AwsError::unexpected("Op", "r", "m")
        }),
    ]
    .iter()
    .map(Error::error_type)
    .collect();
    assert_eq!(
        names,
        [
            "GroupBusy",
            "DeploymentGroupNotFound",
            "DeploymentNotFound",
            "InvalidRevision",
            "DeploymentCreateRejected",
            "InvalidInput",
            "AwsError",
            "AwsTransient"
        ]
    );
}

// ---------------------------------------------------------------------------
// hold / release (scaling held still)
// ---------------------------------------------------------------------------

type AsgLog = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// DescribeAutoScalingGroups answering `groups` (name, suspended, desired,
/// hold tag); SuspendProcesses / ResumeProcesses / tag writes recorded.
fn asg_rules(
    groups: Vec<(String, Vec<&'static str>, i32, Option<String>)>,
    log: AsgLog,
) -> Vec<Rule> {
    use aws_sdk_autoscaling::operation::create_or_update_tags::CreateOrUpdateTagsOutput;
    use aws_sdk_autoscaling::operation::delete_tags::DeleteTagsOutput;
    use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
    use aws_sdk_autoscaling::operation::resume_processes::ResumeProcessesOutput;
    use aws_sdk_autoscaling::operation::suspend_processes::SuspendProcessesOutput;
    use aws_sdk_autoscaling::types as t;
    let described: Vec<t::AutoScalingGroup> = groups
        .into_iter()
        .map(|(name, suspended, desired, tag)| {
            let mut b = t::AutoScalingGroup::builder()
                .auto_scaling_group_name(name)
                .desired_capacity(desired);
            for p in suspended {
                b = b.suspended_processes(t::SuspendedProcess::builder().process_name(p).build());
            }
            if let Some(v) = tag {
                b = b.tags(
                    t::TagDescription::builder()
                        .key("greenlight:scaling-hold")
                        .value(v)
                        .build(),
                );
            }
            b.build()
        })
        .collect();
    let (l1, l2, l3, l4) = (log.clone(), log.clone(), log.clone(), log);
    vec![
        mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups).then_output(move || {
            DescribeAutoScalingGroupsOutput::builder()
                .set_auto_scaling_groups(Some(described.clone()))
                .build()
        }),
        mock!(aws_sdk_autoscaling::Client::create_or_update_tags)
            .match_requests(move |r| {
                l1.lock().unwrap().push(format!(
                    "tag {}",
                    r.tags()[0].resource_id().unwrap_or_default()
                ));
                true
            })
            .then_output(|| CreateOrUpdateTagsOutput::builder().build()),
        mock!(aws_sdk_autoscaling::Client::suspend_processes)
            .match_requests(move |r| {
                l2.lock().unwrap().push(format!(
                    "suspend {}",
                    r.auto_scaling_group_name().unwrap_or_default()
                ));
                true
            })
            .then_output(|| SuspendProcessesOutput::builder().build()),
        mock!(aws_sdk_autoscaling::Client::resume_processes)
            .match_requests(move |r| {
                l3.lock().unwrap().push(format!(
                    "resume {} {}",
                    r.auto_scaling_group_name().unwrap_or_default(),
                    r.scaling_processes().join(",")
                ));
                true
            })
            .then_output(|| ResumeProcessesOutput::builder().build()),
        mock!(aws_sdk_autoscaling::Client::delete_tags)
            .match_requests(move |r| {
                l4.lock().unwrap().push(format!(
                    "untag {}",
                    r.tags()[0].resource_id().unwrap_or_default()
                ));
                true
            })
            .then_output(|| DeleteTagsOutput::builder().build()),
    ]
}

#[tokio::test]
async fn hold_before_create_holds_the_blue_group_of_the_deployment_group() {
    let log: AsgLog = Default::default();
    let asg = asg_rules(vec![("shop-asg-blue".into(), vec![], 2, None)], log.clone());
    let group = group_with_termination_wait(60);
    let deps = deps_with(&[&group], &[], &asg.iter().collect::<Vec<_>>());
    let mut req = request(CREATE);
    req.action = Action::Hold;
    let Ok(Response::Hold(hold)) = run(req, &deps).await else {
        panic!("hold answers a ScalingHold");
    };
    assert_eq!(hold.groups.len(), 1);
    assert_eq!(hold.groups[0].name, "shop-asg-blue");
    assert!(hold.groups[0].suspended.contains(&"Launch".to_string()));
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            "tag shop-asg-blue".to_string(),
            "suspend shop-asg-blue".to_string()
        ]
    );
}

#[tokio::test]
async fn hold_at_ready_also_holds_the_green_copy() {
    let log: AsgLog = Default::default();
    let green = format!("CodeDeploy_shop-bluegreen_{DEPLOYMENT_ID}");
    let asg = asg_rules(
        vec![
            ("shop-blue".into(), vec![], 2, None),
            (green.clone(), vec![], 2, None),
        ],
        log.clone(),
    );
    let deps = deps_with(&[], &[], &asg.iter().collect::<Vec<_>>());
    let mut req = request(STATUS);
    req.action = Action::Hold;
    if let Some(d) = req.pipeline.deployment.as_mut() {
        d.blue_auto_scaling_groups = vec!["shop-blue".into()];
    }
    let Ok(Response::Hold(hold)) = run(req, &deps).await else {
        panic!("hold answers a ScalingHold");
    };
    let names: Vec<&str> = hold.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, vec!["shop-blue", green.as_str()]);
    assert_eq!(log.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn release_resumes_only_what_this_execution_held_and_reports_the_scale_out() {
    let log: AsgLog = Default::default();
    let mine = greenlight_core::scaling::HoldRecord {
        execution: ME.into(),
        processes: vec!["Launch".into(), "Terminate".into()],
        desired: 2,
        instances: 0,
    };
    let asg = asg_rules(
        vec![(
            "shop-blue".into(),
            vec!["Launch", "Terminate", "ScheduledActions"],
            3,
            Some(mine.tag_value()),
        )],
        log.clone(),
    );
    let deps = deps_with(&[], &[], &asg.iter().collect::<Vec<_>>());
    let mut req = request(STATUS);
    req.action = Action::Release;
    if let Some(d) = req.pipeline.deployment.as_mut() {
        d.blue_auto_scaling_groups = vec!["shop-blue".into()];
    }
    let Ok(Response::Release(release)) = run(req, &deps).await else {
        panic!("release answers a ScalingRelease");
    };
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            "resume shop-blue Launch,Terminate".to_string(),
            "untag shop-blue".to_string()
        ]
    );
    assert_eq!(release.events.len(), 1);
    assert!(release.events[0]
        .summary
        .contains("desired capacity 2 -> 3"));
}
