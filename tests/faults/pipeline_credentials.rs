//! Issue 9 defect 7, end to end: a CodePipeline job's payload carries the
//! pipeline's temporary `artifactCredentials`, and CodePipeline invokes its
//! function asynchronously (Lambda developer guide, "Using AWS Lambda with
//! AWS CodePipeline"), so a crashed invocation is retried and then sent,
//! payload and all, to the function's on-failure destination (Lambda
//! developer guide, "Invoking a Lambda function asynchronously"). Jobs go to
//! `PipelineTriggerFunction`, which has no destination: the crash must leave
//! nothing in the rejected-uploads queue, and the job still ends (answered
//! before the crash, then by its continuation jobs).

use super::Checks;
use greenlight_e2e::{print_progress, start};
use local_cloud::codepipeline::{JobStatus, StartJob};
use local_cloud::faults::{FaultKind, FaultSpec};
use local_cloud::lambda_host::{DEPLOY_TRIGGER, PIPELINE_TRIGGER};
use local_cloud::revisions::RevisionKind;
use local_cloud::scenarios;
use std::time::Duration;

fn crash(function: &str, count: u64) -> FaultSpec {
    FaultSpec {
        resource: Some(function.into()),
        count: Some(count),
        ..super::spec(FaultKind::CrashOnce)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_codepipeline_trigger_crash_queues_no_credentials() {
    let cloud = start("fault-pipeline-credentials").await;

    // The control: the S3 path's function (RejectedUploads destination, 2
    // retries) crashing on a job on every attempt queues the job's payload,
    // credentials included: the leak the separate function exists to avoid.
    scenarios::inject(&cloud, crash(DEPLOY_TRIGGER, 3))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let names = &cloud.resources.names;
    let control = cloud.pipeline.start_job(StartJob {
        bucket: names.bucket.clone(),
        key: "pipeline-artifacts/BuildArtif/control".into(),
        user_parameters: Some("not json".into()),
        function_name: Some(DEPLOY_TRIGGER.into()),
        ..Default::default()
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut control_queued = Vec::new();
    while control_queued.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        control_queued = scenarios::rejected_records(&cloud)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    // The fix: a job through PipelineTriggerFunction whose invocation
    // crashes after it answered (crash_once: the handler ran, the runtime
    // exited before returning).
    scenarios::inject(&cloud, crash(PIPELINE_TRIGGER, 1))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let label = scenarios::new_label("904");
    let report = scenarios::pipeline_job(&cloud, RevisionKind::Good, &label, &mut print_progress)
        .await
        .unwrap_or_else(|e| panic!("scenario did not run: {e}"));
    // Give a (wrong) retry or destination delivery time to land: Lambda's
    // first retry comes one minute (6 s here) after a failure.
    tokio::time::sleep(Duration::from_secs(8)).await;
    // Everything in the queue but the control's record (read without
    // consuming: the control's record is still there).
    let queued: Vec<String> = scenarios::rejected_records(&cloud)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .filter(|m| !m.contains(&control))
        .collect();
    let faults = cloud.faults.list();

    let mut checks = Checks::new();
    checks.check(
        "control: the S3-path function's crashed job reached the queue with its credentials",
        control_queued.len() == 1
            && control_queued[0].contains(&control)
            && control_queued[0].contains("local-cloud-secret-access-key"),
        &control_queued,
    );
    checks.check(
        "both crashes fired (3 attempts on the S3-path function, 1 on the pipeline function)",
        faults.iter().map(|f| f.fired).collect::<Vec<_>>() == vec![3, 1],
        &faults,
    );
    checks.check(
        "nothing from the pipeline function reached the rejected-uploads queue",
        queued.is_empty(),
        &queued,
    );
    checks.check(
        "no credential in any queued message",
        !queued
            .iter()
            .any(|m| m.contains("secret-access-key") || m.contains("session-token")),
        &queued,
    );
    let action = report.view.as_ref().map(|v| v.action.clone());
    checks.check(
        "the job's action ended succeeded (answered before the crash, then by its continuation)",
        action
            .as_ref()
            .is_some_and(|a| a.status == JobStatus::Succeeded),
        &action,
    );
    let followed = report.followed.clone();
    checks.check(
        "the deployment it started succeeded",
        followed.as_ref().is_some_and(|f| f.status == "SUCCEEDED"),
        followed.as_ref().map(|f| (&f.status, &f.error)),
    );
    let figures = scenarios::DeploymentReport {
        key: label.clone(),
        label,
        followed: followed.unwrap_or_else(|| panic!("no execution followed")),
        served_versions: Default::default(),
        existing_asgs: Vec::new(),
        group_asgs: Vec::new(),
        settings_before: super::seed_settings(),
        settings_after: super::seed_settings(),
        notifications: Vec::new(),
        load: None,
        registered: Vec::new(),
        upload: local_cloud::scenarios::UploadFate::Unaccounted {
            seen: "a CodePipeline job, not an upload: not checked here".into(),
        },
    };
    checks.finish(
        "CodePipeline trigger crash: no credential in any queue",
        &faults,
        &figures,
    );
    cloud.shutdown().await;
}
