use super::*;
use crate::lambda_host::{BoxFuture, FnFunction, DEFAULT_ACCOUNT_ID};
use lambda_runtime::{Context, Diagnostic};
use std::sync::OnceLock;

/// A deploy-trigger stand-in: records each event and answers the job through
/// the service's API according to `script(call index, event)`.
type Script = fn(usize, &Value) -> Result<(String, Value), Diagnostic>;

struct Harness {
    jobs: Arc<CodePipelineJobs>,
    events: Arc<Mutex<Vec<Value>>>,
}

fn harness(script: Script) -> Harness {
    let lambda = LambdaHost::empty(DEFAULT_ACCOUNT_ID, "us-east-1");
    let events: Arc<Mutex<Vec<Value>>> = Arc::default();
    let cell: Arc<OnceLock<Arc<CodePipelineJobs>>> = Arc::default();
    let (ev, c) = (events.clone(), cell.clone());
    lambda.register(
        "trigger",
        Arc::new(FnFunction(move |payload: Value, _ctx: Context| {
            let (ev, c) = (ev.clone(), c.clone());
            Box::pin(async move {
                let n = {
                    let mut e = ev.lock().unwrap();
                    e.push(payload.clone());
                    e.len() - 1
                };
                let (op, body) = script(n, &payload)?;
                let jobs = c.get().expect("jobs set").clone();
                let (status, out) = jobs.handle(&op, body.to_string().as_bytes()).await;
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
                Ok(json!({"answered": op}))
            }) as BoxFuture<'static, _>
        })),
    );
    let jobs = CodePipelineJobs::with_continuation_delay(
        lambda,
        TimeScale::new(0.001),
        Duration::from_secs(10),
    );
    let _ = cell.set(jobs.clone());
    Harness { jobs, events }
}

fn start(h: &Harness) -> String {
    h.jobs.start_job(StartJob {
        bucket: "artifacts-bucket".into(),
        key: "MyApp/abc123.zip".into(),
        user_parameters: Some("{\"application\":\"MyApp\"}".into()),
        function_name: Some("trigger".into()),
        revision: None,
        pipeline_name: None,
    })
}

fn job_id_of(event: &Value) -> String {
    event["CodePipeline.job"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn the_event_has_aws_shape_and_a_success_ends_the_action() {
    let h = harness(|_, ev| {
        Ok((
            "PutJobSuccessResult".into(),
            json!({"jobId": job_id_of(ev)}),
        ))
    });
    let id = start(&h);
    assert!(is_job_id(&id));
    let view = h
        .jobs
        .wait_for_outcome(&id, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(view.action.status, JobStatus::Succeeded);
    assert_eq!(view.action.job_ids, vec![id.clone()]);
    let event = h.events.lock().unwrap()[0].clone();
    let job = &event["CodePipeline.job"];
    assert_eq!(job["id"], id.as_str());
    assert_eq!(job["accountId"], DEFAULT_ACCOUNT_ID);
    assert_eq!(
        job["data"]["actionConfiguration"]["configuration"]["FunctionName"],
        "trigger"
    );
    assert_eq!(
        job["data"]["actionConfiguration"]["configuration"]["UserParameters"],
        "{\"application\":\"MyApp\"}"
    );
    let location = &job["data"]["inputArtifacts"][0]["location"];
    assert_eq!(location["type"], "S3");
    assert_eq!(location["s3Location"]["bucketName"], "artifacts-bucket");
    assert_eq!(location["s3Location"]["objectKey"], "MyApp/abc123.zip");
    assert!(job["data"]["artifactCredentials"]["accessKeyId"].is_string());
    assert!(job["data"].get("continuationToken").is_none());
    // The shape the Rust runtime's event type reads.
    let parsed: aws_lambda_events::event::codepipeline_job::CodePipelineJobEvent =
        serde_json::from_value(event.clone()).unwrap();
    assert_eq!(parsed.code_pipeline_job.id.as_deref(), Some(id.as_str()));
    assert_eq!(
        parsed.code_pipeline_job.data.input_artifacts[0]
            .location
            .s3_location
            .object_key
            .as_deref(),
        Some("MyApp/abc123.zip")
    );
}

#[tokio::test]
async fn a_continuation_token_brings_a_new_job_carrying_it() {
    let h = harness(|n, ev| {
        let id = job_id_of(ev);
        match n {
            0 => Ok((
                "PutJobSuccessResult".into(),
                json!({"jobId": id, "continuationToken": "exec-1"}),
            )),
            1 => {
                assert_eq!(
                    ev["CodePipeline.job"]["data"]["continuationToken"],
                    "exec-1"
                );
                Ok((
                    "PutJobSuccessResult".into(),
                    json!({"jobId": id, "continuationToken": "exec-1"}),
                ))
            }
            _ => Ok((
                "PutJobFailureResult".into(),
                json!({"jobId": id, "failureDetails": {"type": "JobFailed", "message": "validation failed on i-1"}}),
            )),
        }
    });
    let first = start(&h);
    let view = h
        .jobs
        .wait_for_outcome(&first, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(view.action.status, JobStatus::Failed);
    assert_eq!(view.action.job_ids.len(), 3);
    assert_eq!(view.action.job_ids[0], first);
    let ids: std::collections::HashSet<_> = view.action.job_ids.iter().collect();
    assert_eq!(ids.len(), 3, "every continuation is a new job");
    assert_eq!(
        view.status,
        JobStatus::Succeeded,
        "the first job itself succeeded"
    );
    assert_eq!(view.continuation_token.as_deref(), Some("exec-1"));
    assert_eq!(
        view.action.failure_details.as_ref().unwrap().message,
        "validation failed on i-1"
    );
    // Any job of the chain tells the same outcome.
    let last = h.jobs.job_view(&view.action.final_job_id).unwrap();
    assert_eq!(last.action, view.action);
    assert_eq!(last.input_continuation_token.as_deref(), Some("exec-1"));
}

#[tokio::test]
async fn api_errors_have_aws_names() {
    let h = harness(|_, ev| {
        Ok((
            "PutJobSuccessResult".into(),
            json!({"jobId": job_id_of(ev)}),
        ))
    });
    let id = start(&h);
    h.jobs
        .wait_for_outcome(&id, Duration::from_secs(5))
        .await
        .unwrap();
    let call = |op: &'static str, body: Value| {
        let jobs = h.jobs.clone();
        async move {
            let (status, out) = jobs.handle(op, body.to_string().as_bytes()).await;
            (status, serde_json::from_slice::<Value>(&out).unwrap())
        }
    };
    let (status, out) = call("PutJobSuccessResult", json!({"jobId": id})).await;
    assert_eq!(
        (status, out["__type"].as_str()),
        (400, Some("InvalidJobStateException"))
    );
    let (_, out) = call(
        "PutJobFailureResult",
        json!({"jobId": id, "failureDetails": {"type": "JobFailed", "message": "late"}}),
    )
    .await;
    assert_eq!(out["__type"], "InvalidJobStateException");
    let unknown = "00000000-0000-0000-0000-000000000000";
    let (_, out) = call("PutJobSuccessResult", json!({"jobId": unknown})).await;
    assert_eq!(out["__type"], "JobNotFoundException");
    let (_, out) = call("GetJobDetails", json!({"jobId": "not-a-job"})).await;
    assert_eq!(out["__type"], "ValidationException");
    let (_, out) = call(
        "PutJobFailureResult",
        json!({"jobId": id, "failureDetails": {"type": "Oops", "message": "m"}}),
    )
    .await;
    assert_eq!(out["__type"], "ValidationException");
    let (status, out) = call("GetJobDetails", json!({"jobId": id})).await;
    assert_eq!(status, 200);
    assert_eq!(out["jobDetails"]["id"], id.as_str());
    assert_eq!(
        out["jobDetails"]["data"]["actionTypeId"]["provider"],
        "Lambda"
    );
    let (status, out) = call("AcknowledgeJob", json!({"jobId": id, "nonce": "1"})).await;
    assert_eq!((status, out["status"].as_str()), (200, Some("Succeeded")));
}

#[tokio::test]
async fn a_function_that_errors_or_never_answers_fails_the_action() {
    let h = harness(|_, _| {
        Err(Diagnostic {
            error_type: "InvalidEvent".into(),
            error_message: "no artifact".into(),
        })
    });
    let id = start(&h);
    let view = h
        .jobs
        .wait_for_outcome(&id, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(view.action.status, JobStatus::Failed);
    let message = &view.action.failure_details.unwrap().message;
    assert!(message.contains("InvalidEvent: no artifact"), "{message}");

    let lambda = LambdaHost::empty(DEFAULT_ACCOUNT_ID, "us-east-1");
    lambda.register(
        "silent",
        Arc::new(FnFunction(|_: Value, _: Context| {
            Box::pin(async { Ok(json!(null)) }) as BoxFuture<'static, _>
        })),
    );
    let jobs = CodePipelineJobs::new(lambda, TimeScale::new(0.001));
    let id = jobs.start_job(StartJob {
        bucket: "b".into(),
        key: "k".into(),
        function_name: Some("silent".into()),
        ..Default::default()
    });
    let view = jobs
        .wait_for_outcome(&id, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(view.action.status, JobStatus::Failed);
    assert!(view
        .action
        .failure_details
        .unwrap()
        .message
        .contains("failed to return a result"));
}

#[tokio::test]
async fn an_unanswered_job_stays_in_progress_until_its_20_minute_timer() {
    // 20 min → 1.2 s real at this scale: the errored job must still be in
    // progress right after the invocation, as CodePipeline cannot see it.
    let h = harness(|_, _| {
        Err(Diagnostic {
            error_type: "Crashed".into(),
            error_message: "boom".into(),
        })
    });
    let id = start(&h);
    while h.events.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        h.jobs.job_view(&id).map(|v| v.action.status),
        Some(JobStatus::InProgress)
    );
    let view = h
        .jobs
        .wait_for_outcome(&id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(view.action.status, JobStatus::Failed);
    let message = view.action.failure_details.unwrap().message;
    assert!(
        message.contains("not answered within 20 minutes") && message.contains("Crashed: boom"),
        "{message}"
    );
}

#[tokio::test]
async fn an_action_that_keeps_continuing_fails_after_24_hours() {
    let lambda = LambdaHost::empty(DEFAULT_ACCOUNT_ID, "us-east-1");
    let cell: Arc<OnceLock<Arc<CodePipelineJobs>>> = Arc::default();
    let c = cell.clone();
    lambda.register(
        "forever",
        Arc::new(FnFunction(move |payload: Value, _: Context| {
            let c = c.clone();
            Box::pin(async move {
                let jobs = c.get().expect("jobs set").clone();
                let id = job_id_of(&payload);
                let body = json!({"jobId": id, "continuationToken": "again"});
                let (status, _) = jobs
                    .handle("PutJobSuccessResult", body.to_string().as_bytes())
                    .await;
                assert_eq!(status, 200);
                Ok(json!(null))
            }) as BoxFuture<'static, _>
        })),
    );
    // 24 h → 0.86 s real; a continuation every 2 simulated hours.
    let jobs = CodePipelineJobs::with_continuation_delay(
        lambda,
        TimeScale::new(0.00001),
        Duration::from_secs(2 * 3600),
    );
    let _ = cell.set(jobs.clone());
    let id = jobs.start_job(StartJob {
        bucket: "b".into(),
        key: "k".into(),
        function_name: Some("forever".into()),
        ..Default::default()
    });
    let view = jobs
        .wait_for_outcome(&id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(view.action.status, JobStatus::Failed);
    assert!(view.action.job_ids.len() > 3, "{:?}", view.action.job_ids);
    let message = view.action.failure_details.unwrap().message;
    assert!(message.contains("within 24 hours"), "{message}");
}
