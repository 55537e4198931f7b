//! Issue 4's scenarios, end to end: S3 (moto) → EventBridge rule → SQS →
//! relay → deploy-trigger → Step Functions (moto, executing
//! statemachine/pipeline.asl.json rendered with template.yaml's
//! substitutions) → the five handlers → CodeDeploy/ALB emulation → real
//! local instances. Every assertion is on state read back through the AWS
//! APIs (Step Functions, CodeDeploy, ELBv2, Auto Scaling, SQS/SNS, S3) or on
//! what the load balancer's listener answered.

use greenlight_e2e::{green_instances, print_progress, start, upload_scenario};
use local_cloud::codepipeline::JobStatus;
use local_cloud::revisions::RevisionKind;
use local_cloud::scenarios::{self, DeploymentReport, TargetGroupSettings};

/// The seed's slow settings the demo target group starts with.
fn seed_settings() -> TargetGroupSettings {
    TargetGroupSettings {
        interval_seconds: 30,
        timeout_seconds: 5,
        healthy_threshold: 10,
        unhealthy_threshold: 2,
        deregistration_delay_seconds: "300".into(),
    }
}

fn assert_zero_downtime(report: &DeploymentReport) {
    let load = report.load.as_ref().expect("the scenario ran under load");
    println!(
        "load through the listener: {} sent, {} ok, {} failed, by version {:?}",
        load.sent, load.ok, load.failed, load.by_version
    );
    assert!(
        load.sent >= 20,
        "the load generator sent too little: {load:?}"
    );
    assert_eq!(
        load.failed, 0,
        "requests failed during the deployment: {load:?}"
    );
    assert_eq!(load.ok, load.sent, "{load:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn good_revision_is_deployed_with_zero_downtime() {
    let (cloud, report) = upload_scenario("good", RevisionKind::Good, "1").await;
    println!(
        "{}",
        local_cloud::follow::timeline_table(
            &report.followed.timeline,
            report
                .followed
                .timeline
                .first()
                .map(|r| r.started_at_ms)
                .unwrap_or(0),
            cloud.scale
        )
    );

    assert_eq!(
        report.followed.status, "SUCCEEDED",
        "execution: {:?} {:?}\nnotifications: {:?}",
        report.followed.error, report.followed.cause, report.notifications
    );
    let deployment = report
        .followed
        .deployment
        .as_ref()
        .expect("a deployment was created");
    assert_eq!(
        deployment.status,
        greenlight_core::DeploymentStatus::Succeeded
    );
    // Green serves the new version through the load balancer.
    assert_eq!(
        report.served_versions.len(),
        1,
        "{:?}",
        report.served_versions
    );
    assert_eq!(
        report.served_versions.get(&report.label),
        Some(&10),
        "{:?}",
        report.served_versions
    );
    // Blue terminated: its ASG is gone, the group points at the green ASG, only green is registered.
    let green_asg = report.green_asg().expect("green ASG name");
    assert_eq!(report.existing_asgs, vec![green_asg.clone()]);
    assert_eq!(report.group_asgs, vec![green_asg]);
    let green_sorted = green_instances(deployment);
    assert_eq!(report.registered, green_sorted);
    // The load balancer's settings are back to the snapshot.
    assert_eq!(report.settings_before, seed_settings());
    assert_eq!(report.settings_after, report.settings_before);
    // One notification: deployed, naming the deployment (issue 11).
    assert_eq!(report.notifications.len(), 1, "{:?}", report.notifications);
    assert_eq!(report.notifications[0].outcome.as_deref(), Some("deployed"));
    assert!(report.notifications[0]
        .message
        .contains(&deployment.deployment_id));
    assert_zero_downtime(&report);
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_health_is_stopped_before_traffic_moves() {
    let (cloud, report) = upload_scenario("failing-health", RevisionKind::FailingHealth, "2").await;

    assert_eq!(report.followed.status, "FAILED");
    assert_eq!(
        report.followed.error.as_deref(),
        Some("ValidationFailed"),
        "{:?}",
        report.followed.cause
    );
    let deployment = report
        .followed
        .deployment
        .as_ref()
        .expect("a deployment was created");
    assert_eq!(
        deployment.status,
        greenlight_core::DeploymentStatus::Stopped
    );
    assert!(
        deployment.rollback_deployment_id.is_some(),
        "StopDeployment asked for a rollback"
    );
    // Blue still serves the initial version, and only blue is registered.
    assert_eq!(
        report.served_versions.get(scenarios::initial_version()),
        Some(&10),
        "{:?}",
        report.served_versions
    );
    let mut blue = cloud.resources.blue_instances.clone();
    blue.sort();
    assert_eq!(report.registered, blue);
    assert_eq!(report.settings_after, report.settings_before);
    // One notification naming a green instance and what it answered.
    assert_eq!(report.notifications.len(), 1, "{:?}", report.notifications);
    let text = &report.notifications[0].message;
    let green = green_instances(deployment);
    assert!(
        green.iter().any(|i| text.contains(i)),
        "notification names no green instance: {text}"
    );
    assert!(
        text.contains("500"),
        "notification does not say what it answered: {text}"
    );
    assert_zero_downtime(&report);
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_install_runs_the_runbook() {
    let (cloud, report) =
        upload_scenario("failing-install", RevisionKind::FailingInstall, "3").await;

    assert_eq!(report.followed.status, "FAILED");
    assert_eq!(
        report.followed.error.as_deref(),
        Some("DeploymentFailed"),
        "{:?}",
        report.followed.cause
    );
    let deployment = report
        .followed
        .deployment
        .as_ref()
        .expect("a deployment was created");
    assert_eq!(deployment.status, greenlight_core::DeploymentStatus::Failed);
    // Runbook: the green ASG is gone and the group points at the blue ASG.
    assert_eq!(
        report.existing_asgs,
        vec![cloud.resources.names.blue_asg.clone()]
    );
    assert_eq!(
        report.group_asgs,
        vec![cloud.resources.names.blue_asg.clone()]
    );
    assert_eq!(
        report.served_versions.get(scenarios::initial_version()),
        Some(&10),
        "{:?}",
        report.served_versions
    );
    assert_eq!(report.settings_after, report.settings_before);
    assert_eq!(report.notifications.len(), 1, "{:?}", report.notifications);
    assert!(report.notifications[0]
        .message
        .contains(&deployment.deployment_id));
    assert_zero_downtime(&report);
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn codepipeline_job_ends_with_success_and_with_failure() {
    let cloud = start("pipeline").await;
    let good = scenarios::pipeline_job(
        &cloud,
        RevisionKind::Good,
        &scenarios::new_label("4"),
        &mut print_progress,
    )
    .await
    .expect("scenario ran");
    let view = good.view.expect("job known");
    assert_eq!(view.action.status, JobStatus::Succeeded, "{view:?}");
    assert!(
        view.action.job_ids.len() >= 2,
        "the job went through a continuation token: {view:?}"
    );
    assert_eq!(
        good.followed.map(|f| f.status).as_deref(),
        Some("SUCCEEDED")
    );

    let bad = scenarios::pipeline_job(
        &cloud,
        RevisionKind::FailingInstall,
        &scenarios::new_label("5"),
        &mut print_progress,
    )
    .await
    .expect("scenario ran");
    let view = bad.view.expect("job known");
    assert_eq!(view.action.status, JobStatus::Failed, "{view:?}");
    let message = view
        .action
        .failure_details
        .as_ref()
        .map(|f| f.message.clone())
        .unwrap_or_default();
    assert!(
        !message.is_empty(),
        "the failure names its reason: {view:?}"
    );
    assert!(
        message.contains("DeploymentFailed") || message.to_lowercase().contains("fail"),
        "{message}"
    );
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn competing_uploads_deploy_one_at_a_time_and_duplicates_are_no_ops() {
    let cloud = start("concurrent").await;
    let report = scenarios::concurrent_uploads(&cloud, &mut print_progress)
        .await
        .expect("scenario ran");
    // Both uploads are accounted for: deployed, or superseded by the newer one.
    for f in [&report.first, &report.second] {
        assert_eq!(f.status, "SUCCEEDED", "{:?} {:?}", f.error, f.cause);
        assert!(
            matches!(f.admission(), Some("proceed") | Some("superseded")),
            "{:?}",
            f.output
        );
    }
    assert_eq!(
        report.second.admission(),
        Some("proceed"),
        "the newest upload is deployed"
    );
    if report.first.admission() == Some("superseded") {
        assert!(report.first.deployment.is_none());
        let by = report
            .first
            .output
            .as_ref()
            .and_then(|o| o.pointer("/admission/byExecution"))
            .and_then(|v| v.as_str());
        assert_eq!(by, Some(report.second.execution_name.as_str()));
    }
    // Never two deployments of the group at once.
    for pair in report.deployments.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let a_end = a.2.expect("finished");
        assert!(b.1.unwrap_or(0) >= a_end, "deployments overlap: {pair:?}");
    }
    // The same S3 event twice: one execution, one deployment.
    assert_eq!(report.duplicate_executions, 1);
    assert_eq!(report.duplicate_deployments, 1);
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outside_deployment_failure_is_diagnosed_and_notified() {
    let cloud = start("outside").await;
    let report = scenarios::outside_failure(&cloud)
        .await
        .expect("scenario ran");
    assert_eq!(report.status, "Failed");
    assert_eq!(report.notifications.len(), 1, "{:?}", report.notifications);
    let text = &report.notifications[0].message;
    assert!(text.contains(&report.deployment_id), "{text}");
    assert!(
        text.contains("AfterInstall"),
        "the diagnosis names the failed lifecycle event: {text}"
    );
    assert!(
        report.report.is_some(),
        "the failure handler recorded its report"
    );
    cloud.shutdown().await;
}
