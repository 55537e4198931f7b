//! A deployment that does not reach a terminal status by the watcher's
//! deadline. The watcher's deadline (template.yaml `DeploymentTimeoutSeconds`,
//! set here to 3 s through the local cloud's options, as the parameter would
//! be) passes while CodeDeploy is still provisioning the replacement fleet,
//! before the point of no return: the watcher stops the deployment with
//! rollback, and the failure path restores the target group and notifies
//! once (DeadlineExceeded); CodeDeploy's rollback deployment puts blue back
//! and deletes the replacement ASG. The dead-agent variant (an instance
//! killed during install, whose lifecycle event hangs for CodeDeploy's
//! 3600-second limit) leaves the rollback's BlockTraffic hanging on the same
//! dead instance for as long, far past a scenario's few minutes: it is the
//! instance lane's killed-instance scenario, not this one.

use super::{common_checks, Checks};
use greenlight_e2e::{print_progress, start_with};
use local_cloud::revisions::RevisionKind;
use local_cloud::scenarios;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_deployment_not_terminal_by_its_deadline_is_stopped_with_rollback() {
    let cloud = start_with("fault-stuck", |o| o.deployment_timeout_seconds = 3).await;
    let blue_asg = cloud.resources.names.blue_asg.clone();
    let blue = scenarios::registered_targets(&cloud)
        .await
        .unwrap_or_else(|e| panic!("DescribeTargetHealth: {e}"));
    let label = scenarios::new_label("821");
    let report = scenarios::upload_and_follow_settled(
        &cloud,
        RevisionKind::Good,
        &label,
        scenarios::SETTLE,
        &mut print_progress,
    )
    .await
    .unwrap_or_else(|e| panic!("scenario did not run: {e}"));
    let deployments = scenarios::group_deployments(&cloud)
        .await
        .unwrap_or_else(|e| panic!("ListDeployments: {e}"));

    let mut checks = Checks::new();
    checks.check(
        "the execution failed on its deadline",
        report.followed.status == "FAILED"
            && report.followed.error.as_deref() == Some("DeadlineExceeded"),
        (&report.followed.status, &report.followed.error),
    );
    let deployment = report.followed.deployment.clone();
    checks.check(
        "the deployment was stopped with a rollback",
        deployment.as_ref().is_some_and(|d| {
            d.status == greenlight_core::DeploymentStatus::Stopped
                && d.rollback_deployment_id.is_some()
        }),
        &deployment,
    );
    checks.check(
        "every deployment of the group ended",
        deployments.iter().all(|d| d.ended),
        &deployments,
    );
    checks.check(
        "exactly one notification",
        report.notifications.len() == 1,
        &report.notifications,
    );
    checks.check(
        "the upload is rejected with the deadline as its reason",
        matches!(&report.upload, scenarios::UploadFate::Rejected { reason, .. } if reason.starts_with("DeadlineExceeded")),
        &report.upload,
    );
    checks.check(
        "only blue is registered",
        !blue.is_empty() && report.registered == blue,
        (&blue, &report.registered),
    );
    checks.check(
        "the group points at the blue ASG",
        report.group_asgs == vec![blue_asg.clone()],
        &report.group_asgs,
    );
    checks.check(
        "only the blue ASG exists",
        report.existing_asgs == vec![blue_asg],
        &report.existing_asgs,
    );
    common_checks(&mut checks, &report, scenarios::initial_version());
    checks.finish(
        "deployment not terminal by its deadline (3 s)",
        &[],
        &report,
    );
    cloud.shutdown().await;
}
