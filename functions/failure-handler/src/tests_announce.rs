//! `announce`: one notification for an upload that was deployed or
//! superseded, with its outcome as a message attribute.

use super::*;

const TASK_ANNOUNCE_DEPLOYED: &str = include_str!("../../../events/task-announce-deployed.json");
const TASK_ANNOUNCE_SUPERSEDED: &str =
    include_str!("../../../events/task-announce-superseded.json");

/// Every Publish: (subject, outcome attribute, the structured message).
fn announce_rule(seen: Log<(String, String, serde_json::Value)>) -> Rule {
    mock!(aws_sdk_sns::Client::publish)
        .match_requests(move |r| {
            assert_eq!(r.topic_arn(), Some(TOPIC));
            assert_eq!(r.message_structure(), Some("json"));
            let outcome = r
                .message_attributes()
                .and_then(|a| a.get("outcome"))
                .and_then(|v| v.string_value())
                .unwrap_or_default()
                .to_string();
            let message = serde_json::from_str(r.message().unwrap_or_default()).unwrap();
            seen.lock().unwrap().push((
                r.subject().unwrap_or_default().to_string(),
                outcome,
                message,
            ));
            true
        })
        .then_output(|| PublishOutput::builder().message_id("m-ok").build())
}

fn task(fixture: &str) -> Request {
    let task: TaskRequest<Action> = serde_json::from_str(fixture).unwrap();
    assert_eq!(task.action, Action::Announce);
    Request::Task(Box::new(task))
}

#[tokio::test]
async fn a_deployed_upload_is_announced_once_with_its_phases() {
    let published = log();
    let mut m = Mocks::new();
    m.sns.push(announce_rule(published.clone()));
    let response = run(task(TASK_ANNOUNCE_DEPLOYED), &m.deps()).await.unwrap();
    assert_eq!(
        response,
        Response::Announced {
            announced: greenlight_core::metrics::DeploymentOutcome::Deployed,
            subject: "greenlight deployed: shop/shop-bluegreen d-7Q2KJ3X1A".to_string(),
            message_id: Some("m-ok".to_string()),
        }
    );
    let published = entries(&published);
    assert_eq!(published.len(), 1);
    let (subject, outcome, message) = &published[0];
    assert_eq!(
        subject,
        "greenlight deployed: shop/shop-bluegreen d-7Q2KJ3X1A"
    );
    assert_eq!(outcome, "deployed");
    let text = message["email"].as_str().unwrap();
    assert!(
        text.contains("Provisioning: 178 s (predicted 180 s)"),
        "{text}"
    );
    let body: serde_json::Value =
        serde_json::from_str(message["default"].as_str().unwrap()).unwrap();
    assert_eq!(body["deploymentId"], "d-7Q2KJ3X1A");
    assert_eq!(body["application"], "shop");
    assert_eq!(body["deploymentGroup"], "shop-bluegreen");
    // The response is what the state machine stores: no report, no failure.
    assert!(response.report().is_none());
}

#[tokio::test]
async fn a_superseded_upload_is_announced_naming_the_newer_one() {
    let published = log();
    let mut m = Mocks::new();
    m.sns.push(announce_rule(published.clone()));
    run(task(TASK_ANNOUNCE_SUPERSEDED), &m.deps())
        .await
        .unwrap();
    let published = entries(&published);
    assert_eq!(published.len(), 1);
    let (_, outcome, message) = &published[0];
    assert_eq!(outcome, "superseded");
    assert!(message["email"]
        .as_str()
        .unwrap()
        .contains("artifacts/shop/20240501121500-43.zip"));
}

#[tokio::test]
async fn announce_refuses_an_upload_that_neither_succeeded_nor_was_superseded() {
    let published = log();
    let mut m = Mocks::new();
    m.sns.push(announce_rule(published.clone()));
    let mut request: TaskRequest<Action> = serde_json::from_str(TASK_ANNOUNCE_DEPLOYED).unwrap();
    request.pipeline.status = None;
    let err = run(Request::Task(Box::new(request)), &m.deps())
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), errors::INVALID_INPUT);
    assert!(entries(&published).is_empty());
}

#[tokio::test]
async fn a_throttled_publish_is_a_transient_error_the_state_machine_retries() {
    let mut m = Mocks::new();
    m.sns
        .push(mock!(aws_sdk_sns::Client::publish).then_error(|| {
            // SNS answers a throttled Publish with the query-protocol code `Throttling`.
            aws_sdk_sns::operation::publish::PublishError::generic(
                aws_sdk_sns::error::ErrorMetadata::builder()
                    .code("Throttling")
                    .message("Rate exceeded")
                    .build(),
            )
        }));
    let err = run(task(TASK_ANNOUNCE_SUPERSEDED), &m.deps())
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), errors::AWS_TRANSIENT);
}

const TASK_ANNOUNCE_BAKE_SKIPPED: &str =
    include_str!("../../../events/task-announce-bake-skipped.json");

#[tokio::test]
async fn a_bake_skipped_by_override_is_announced_once_with_its_own_outcome() {
    let published = log();
    let mut m = Mocks::new();
    m.sns.push(announce_rule(published.clone()));
    let request: TaskRequest<Action> = serde_json::from_str(TASK_ANNOUNCE_BAKE_SKIPPED).unwrap();
    assert_eq!(request.action, Action::AnnounceBakeSkipped);
    let response = run(Request::Task(Box::new(request)), &m.deps())
        .await
        .unwrap();
    assert_eq!(
        response,
        Response::Announced {
            announced: greenlight_core::metrics::DeploymentOutcome::BakeSkipped,
            subject: "greenlight: bake SKIPPED for shop/shop-bluegreen d-7Q2KJ3X1A".to_string(),
            message_id: Some("m-ok".to_string()),
        }
    );
    let published = entries(&published);
    assert_eq!(published.len(), 1);
    let (_, outcome, message) = &published[0];
    assert_eq!(outcome, "bakeSkipped");
    let text = message["email"].as_str().unwrap();
    assert!(
        text.starts_with("greenlight: bake SKIPPED for shop/shop-bluegreen deployment d-7Q2KJ3X1A by override (S3 tag greenlight-bake=skip on s3://greenlight-artifacts-111122223333/artifacts/shop/20240501120000-42.zip@IYV3p45BT0ac8hjHg1houSdS1a.Mro8e)"),
        "{text}"
    );
    assert!(text.contains("whole termination wait (300 s)"), "{text}");
}

#[tokio::test]
async fn announce_bake_skipped_refuses_a_bake_that_was_not_skipped() {
    let published = log();
    let mut m = Mocks::new();
    m.sns.push(announce_rule(published.clone()));
    let mut request: TaskRequest<Action> =
        serde_json::from_str(TASK_ANNOUNCE_BAKE_SKIPPED).unwrap();
    request.pipeline.input.bake_skip = None;
    let err = run(Request::Task(Box::new(request.clone())), &m.deps())
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), errors::INVALID_INPUT);
    let mut watched: TaskRequest<Action> =
        serde_json::from_str(TASK_ANNOUNCE_BAKE_SKIPPED).unwrap();
    if let Some(b) = watched.pipeline.bake.as_mut() {
        b.verdict = greenlight_core::bake::BakeVerdict::Passed;
    }
    let err = run(Request::Task(Box::new(watched)), &m.deps())
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), errors::INVALID_INPUT);
    assert!(entries(&published).is_empty());
}
