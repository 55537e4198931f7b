//! The status loop's event wait: the `await` task and the wake from a
//! CodeDeploy state-change event, on the real SDK clients answered by
//! aws-smithy-mocks rules; inputs from `events/`.

use aws_sdk_codedeploy::operation::get_deployment::{GetDeploymentError, GetDeploymentOutput};
use aws_sdk_codedeploy::types::error::DeploymentDoesNotExistException;
use aws_sdk_codedeploy::types::{DeploymentInfo, DeploymentStatus as Sdk};
use aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryOutput;
use aws_sdk_sfn::operation::send_task_success::{SendTaskSuccessError, SendTaskSuccessOutput};
use aws_sdk_sfn::types::error::TaskTimedOut;
use aws_sdk_sfn::types::{
    HistoryEvent, HistoryEventType, StateEnteredEventDetails, TaskScheduledEventDetails,
};
use aws_smithy_mocks::{mock, Rule};
use aws_smithy_types::DateTime;
use deployment_watcher::{entry, Deps, Error, Response};
use greenlight_core::wake::{WakeOutcome, WakeReport, AWAIT_EVENT_STATE};
use greenlight_core::watch::deployment_description;
use lambda_runtime::{Context, LambdaEvent};

mod common;
use common::{deps, DEPLOYMENT_ID};

const AWAIT: &str = include_str!("../../../events/task-await.json");
const READY_EVENT: &str = include_str!("../../../events/codedeploy-state-change-ready.json");

const EXECUTION: &str = "shop-3f9c2a7d1e8b4c60a2d5e7f1b9c3d4e5";
const EXECUTION_ARN: &str = "arn:aws:states:us-east-1:111122223333:execution:greenlight-pipeline:shop-3f9c2a7d1e8b4c60a2d5e7f1b9c3d4e5";
const LOOP_TOKEN: &str = "tok-loop-7";

async fn run(payload: &str, deps: &Deps) -> Result<WakeReport, Error> {
    let value: serde_json::Value = serde_json::from_str(payload).expect("fixture is JSON");
    match entry(LambdaEvent::new(value, Context::default()), deps).await? {
        Response::Wake(report) => Ok(report),
        other => panic!("expected a WakeReport, got {other:?}"),
    }
}

fn deployment(status: Sdk, description: Option<String>) -> Rule {
    mock!(aws_sdk_codedeploy::Client::get_deployment)
        .match_requests(|r| r.deployment_id() == Some(DEPLOYMENT_ID))
        .then_output(move || {
            GetDeploymentOutput::builder()
                .deployment_info(
                    DeploymentInfo::builder()
                        .deployment_id(DEPLOYMENT_ID)
                        .status(status.clone())
                        .set_description(description.clone())
                        .create_time(DateTime::from_secs(1_714_564_810))
                        .build(),
                )
                .build()
        })
}

fn sends(token: &'static str) -> Rule {
    mock!(aws_sdk_sfn::Client::send_task_success)
        .match_requests(move |r| r.task_token() == Some(token))
        .then_output(|| SendTaskSuccessOutput::builder().build())
}

fn event(id: i64, kind: HistoryEventType) -> aws_sdk_sfn::types::builders::HistoryEventBuilder {
    HistoryEvent::builder()
        .id(id)
        .timestamp(DateTime::from_secs(0))
        .r#type(kind)
}

/// The execution's history: waiting in AwaitDeploymentEvent with `LOOP_TOKEN`,
/// or (`ended`) the wait already over.
fn history(ended: bool) -> Rule {
    mock!(aws_sdk_sfn::Client::get_execution_history)
        .match_requests(|r| r.execution_arn() == Some(EXECUTION_ARN))
        .then_output(move || {
            let entered = event(7, HistoryEventType::TaskStateEntered)
                .state_entered_event_details(
                    StateEnteredEventDetails::builder()
                        .name(AWAIT_EVENT_STATE)
                        .build()
                        .expect("details"),
                )
                .build()
                .expect("event");
            let parameters = format!(
                r#"{{"FunctionName":"w","Payload":{{"action":"await","taskToken":"{LOOP_TOKEN}"}}}}"#
            );
            let scheduled = event(8, HistoryEventType::TaskScheduled)
                .task_scheduled_event_details(
                    TaskScheduledEventDetails::builder()
                        .resource_type("lambda")
                        .resource("invoke.waitForTaskToken")
                        .region("us-east-1")
                        .parameters(parameters)
                        .build()
                        .expect("details"),
                )
                .build()
                .expect("event");
            let mut out = GetExecutionHistoryOutput::builder()
                .events(entered)
                .events(scheduled);
            if ended {
                out = out.events(
                    event(9, HistoryEventType::TaskTimedOut)
                        .build()
                        .expect("event"),
                );
            }
            out.build().expect("history")
        })
}

#[test]
fn the_fixtures_are_an_await_task_and_a_ready_event() {
    let task: deployment_watcher::Request = serde_json::from_str(AWAIT).expect("task");
    assert_eq!(task.action, deployment_watcher::Action::Await);
    assert!(task.task_token.is_some());
    assert_eq!(
        task.pipeline.status.as_ref().map(|s| s.event_wait_seconds),
        Some(40)
    );
    let event: serde_json::Value = serde_json::from_str(READY_EVENT).expect("event");
    assert_eq!(event["detail"]["state"], "READY");
    assert_eq!(event["detail"]["deploymentId"], DEPLOYMENT_ID);
}

#[tokio::test]
async fn await_answers_its_own_token_when_the_deployment_reached_ready_since_the_look() {
    let get = deployment(Sdk::Ready, None);
    let send = mock!(aws_sdk_sfn::Client::send_task_success)
        .match_requests(|r| {
            r.task_token().is_some_and(|t| t.ends_with("EXAMPLE+token"))
                && r.output().is_some_and(|o| o.contains(DEPLOYMENT_ID))
        })
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let deps = deps(&[&get], &[&send]);
    let report = run(AWAIT, &deps).await.expect("await");
    assert_eq!(report.outcome, WakeOutcome::Woke);
    assert_eq!(send.num_calls(), 1);
}

#[tokio::test]
async fn await_leaves_the_wait_to_events_when_nothing_changed() {
    let get = deployment(Sdk::InProgress, None);
    let send = sends("never");
    let deps = deps(&[&get], &[&send]);
    let report = run(AWAIT, &deps).await.expect("await");
    assert_eq!(report.outcome, WakeOutcome::Waiting);
    assert_eq!(send.num_calls(), 0);
}

#[tokio::test]
async fn await_without_a_token_is_invalid_input_naming_the_parameter() {
    let mut task: serde_json::Value = serde_json::from_str(AWAIT).expect("json");
    task.as_object_mut().expect("object").remove("taskToken");
    let get = deployment(Sdk::Ready, None);
    let deps = deps(&[&get], &[]);
    let err = run(&task.to_string(), &deps).await.expect_err("invalid");
    assert_eq!(err.error_type(), "InvalidInput");
    assert!(err.to_string().contains("$$.Task.Token"), "{err}");
    assert_eq!(get.num_calls(), 0);
}

#[tokio::test]
async fn a_ready_event_wakes_the_execution_named_by_the_deployment() {
    let get = deployment(Sdk::Ready, Some(deployment_description(EXECUTION)));
    let history = history(false);
    let send = sends(LOOP_TOKEN);
    let deps = deps(&[&get], &[&history, &send]);
    let report = run(READY_EVENT, &deps).await.expect("wake");
    assert_eq!(report.outcome, WakeOutcome::Woke);
    assert_eq!(report.execution_name.as_deref(), Some(EXECUTION));
    assert_eq!((history.num_calls(), send.num_calls()), (1, 1));
}

#[tokio::test]
async fn an_event_for_a_wait_that_already_ended_wakes_nothing() {
    let get = deployment(Sdk::Ready, Some(deployment_description(EXECUTION)));
    let history = history(true);
    let send = sends(LOOP_TOKEN);
    let deps = deps(&[&get], &[&history, &send]);
    let report = run(READY_EVENT, &deps).await.expect("wake");
    assert_eq!(report.outcome, WakeOutcome::NotWaiting);
    assert_eq!(send.num_calls(), 0);

    // The token timed out between the history read and the answer.
    let history = self::history(false);
    let late = mock!(aws_sdk_sfn::Client::send_task_success).then_error(|| {
        SendTaskSuccessError::TaskTimedOut(
            TaskTimedOut::builder()
                .meta(
                    aws_smithy_types::error::ErrorMetadata::builder()
                        .code("TaskTimedOut")
                        .message("expired")
                        .build(),
                )
                .build(),
        )
    });
    let deps = self::deps(&[&get], &[&history, &late]);
    let report = run(READY_EVENT, &deps).await.expect("wake");
    assert_eq!(report.outcome, WakeOutcome::AlreadyAnswered);
}

#[tokio::test]
async fn another_tools_deployment_is_never_read_further() {
    let get = deployment(Sdk::Succeeded, Some("hotfix by hand".to_string()));
    let history = history(false);
    let deps = deps(&[&get], &[&history]);
    let mut event: serde_json::Value = serde_json::from_str(READY_EVENT).expect("json");
    event["detail"]["state"] = "SUCCESS".into();
    let report = run(&event.to_string(), &deps).await.expect("wake");
    assert_eq!(report.outcome, WakeOutcome::NotGreenlights);
    assert_eq!(history.num_calls(), 0);

    // A deployment CodeDeploy no longer knows.
    let gone = mock!(aws_sdk_codedeploy::Client::get_deployment).then_error(|| {
        GetDeploymentError::DeploymentDoesNotExistException(
            DeploymentDoesNotExistException::builder()
                .message("no such deployment")
                .build(),
        )
    });
    let deps = self::deps(&[&gone], &[&history]);
    let report = run(READY_EVENT, &deps).await.expect("wake");
    assert_eq!(report.outcome, WakeOutcome::NotGreenlights);
}

#[tokio::test]
async fn a_start_event_reads_nothing() {
    let get = deployment(Sdk::InProgress, Some(deployment_description(EXECUTION)));
    let deps = deps(&[&get], &[]);
    let mut event: serde_json::Value = serde_json::from_str(READY_EVENT).expect("json");
    event["detail"]["state"] = "START".into();
    let report = run(&event.to_string(), &deps).await.expect("wake");
    assert_eq!(report.outcome, WakeOutcome::NotAWakingState);
    assert_eq!(get.num_calls(), 0);
}

#[tokio::test]
async fn an_unknown_payload_is_invalid_input_that_says_what_a_task_is() {
    let deps = deps(&[], &[]);
    let value = serde_json::json!({"hello": "world"});
    let err = entry(LambdaEvent::new(value, Context::default()), &deps)
        .await
        .expect_err("invalid");
    assert_eq!(err.error_type(), "InvalidInput");
    assert!(err.to_string().contains("executionName"), "{err}");
}
