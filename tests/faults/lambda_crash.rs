//! A Lambda that dies after its AWS writes: the deployment-watcher's `create`
//! task crashes right after CreateDeployment went through (the local cloud's
//! `crash_once` runs the handler, then the runtime exits and the answer is
//! lost; AWS Lambda developer guide, "Understanding retry behavior in
//! Lambda": after a function error "your function's code might have run
//! completely, partially, or not at all"). Issue 8: no orphaned deployment or
//! green ASG; issue 9, defect 5: the failure path finds the deployment by its
//! description.

use super::{blue_kept_checks, green_deployed_checks, spec, upload_and_settle, Checks, Settled};
use greenlight_e2e::start;
use local_cloud::faults::{FaultKind, FaultSpec};
use local_cloud::lambda_host::DEPLOYMENT_WATCHER;
use local_cloud::revisions::RevisionKind;
use local_cloud::scenarios;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_lambda_crash_after_create_deployment_leaves_no_orphan() {
    let cloud = start("fault-crash-create").await;
    let label = scenarios::new_label("802");
    let crash = FaultSpec {
        resource: Some(DEPLOYMENT_WATCHER.into()),
        operation: Some("create".into()),
        ..spec(FaultKind::CrashOnce)
    };
    let Settled {
        report,
        faults,
        deployments,
        executions,
    } = upload_and_settle(&cloud, RevisionKind::Good, &label, vec![crash]).await;

    let mut checks = Checks::new();
    checks.check(
        "the watcher's create crashed once",
        faults.len() == 1 && faults[0].fired == 1,
        &faults,
    );
    let created: Vec<_> = deployments
        .iter()
        .filter(|d| d.creator != "codeDeployRollback")
        .collect();
    checks.check(
        "the crashed create did create one deployment, and no second one was created",
        created.len() == 1
            && report
                .followed
                .deployment
                .as_ref()
                .is_some_and(|d| d.deployment_id == created[0].id),
        &deployments,
    );
    checks.check(
        "every deployment of the group has ended (none orphaned running)",
        deployments.iter().all(|d| d.ended),
        &deployments,
    );
    checks.check(
        "the upload is accounted for: one execution",
        executions.len() == 1,
        &executions,
    );
    match report.followed.status.as_str() {
        "SUCCEEDED" => {
            checks.check("the execution ended in a defined state", true, "SUCCEEDED");
            green_deployed_checks(&mut checks, &report);
        }
        "FAILED" => {
            checks.check("the execution ended in a defined state", true, "FAILED");
            let deployment = report.followed.deployment.clone();
            checks.check(
                "the found deployment was stopped with rollback",
                deployment.as_ref().is_some_and(|d| {
                    d.status == greenlight_core::DeploymentStatus::Stopped
                        && d.rollback_deployment_id.is_some()
                }),
                &deployment,
            );
            blue_kept_checks(&mut checks, &report, &cloud);
        }
        other => checks.check(
            "the execution ended in a defined state",
            false,
            (other, &report.followed.error),
        ),
    }
    checks.finish(
        "Lambda crash after CreateDeployment (watcher create)",
        &faults,
        &report,
    );
    cloud.shutdown().await;
}
