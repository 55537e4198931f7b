//! A failed rollback: a revision that fails the Ready gate is stopped with
//! rollback, and CodeDeploy's rollback deployment fails (`fail_rollback`).
//! The operator gets exactly one notification that says the deployment
//! failed AND its rollback failed; the rollback deployment is never reported
//! as an incident of its own.

use super::{blue_kept_checks, spec, upload_and_settle, Checks, Settled};
use greenlight_e2e::start;
use local_cloud::faults::{FaultKind, FaultSpec};
use local_cloud::revisions::RevisionKind;
use local_cloud::scenarios;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_failed_rollback_is_one_incident() {
    let cloud = start("fault-failed-rollback").await;
    let label = scenarios::new_label("803");
    let names = &cloud.resources.names;
    let fail_rollback = FaultSpec {
        resource: Some(format!("{}/{}", names.application, names.deployment_group)),
        ..spec(FaultKind::FailRollback)
    };
    let Settled {
        report,
        faults,
        deployments,
        executions,
    } = upload_and_settle(
        &cloud,
        RevisionKind::FailingHealth,
        &label,
        vec![fail_rollback],
    )
    .await;

    let mut checks = Checks::new();
    checks.check(
        "the rollback failure fired once",
        faults.len() == 1 && faults[0].fired == 1,
        &faults,
    );
    checks.check(
        "the upload is accounted for: one execution, failed at the gate",
        executions.len() == 1
            && report.followed.status == "FAILED"
            && report.followed.error.as_deref() == Some("ValidationFailed"),
        (&executions, &report.followed.status, &report.followed.error),
    );
    let original = report.followed.deployment.clone();
    let rollback_id = original
        .as_ref()
        .and_then(|d| d.rollback_deployment_id.clone())
        .unwrap_or_default();
    checks.check(
        "the deployment was stopped with a rollback",
        original
            .as_ref()
            .is_some_and(|d| d.status == greenlight_core::DeploymentStatus::Stopped)
            && !rollback_id.is_empty(),
        &original,
    );
    checks.check(
        "the rollback deployment failed",
        deployments.iter().any(|d| {
            d.id == rollback_id && d.creator == "codeDeployRollback" && d.status == "Failed"
        }),
        &deployments,
    );
    checks.check(
        "every deployment of the group has ended",
        deployments.iter().all(|d| d.ended),
        &deployments,
    );
    let text = report
        .notifications
        .first()
        .map(|n| format!("{:?}\n{}", n.subject, n.message))
        .unwrap_or_default();
    checks.check(
        "the one notification says the rollback failed and what to check by hand",
        report.notifications.len() == 1
            && text.contains(&rollback_id)
            && text.contains("rollback")
            && text.contains("FAILED")
            && text.contains(&cloud.resources.names.blue_asg),
        &text,
    );
    checks.check(
        "no notification reports the rollback deployment as its own incident",
        report.notifications.iter().all(|n| {
            !n.subject
                .as_deref()
                .unwrap_or_default()
                .contains(&rollback_id)
        }),
        report
            .notifications
            .iter()
            .map(|n| n.subject.clone())
            .collect::<Vec<_>>(),
    );
    blue_kept_checks(&mut checks, &report, &cloud);
    checks.finish("failed rollback (after a failed gate)", &faults, &report);
    cloud.shutdown().await;
}
