//! Throttling storms: AWS answering too-many-requests on the control plane.

use super::{green_deployed_checks, succeeded_without_rollback_checks, throttle_percent, Checks};
use greenlight_e2e::{print_progress, start};
use local_cloud::revisions::RevisionKind;
use local_cloud::scenarios;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_throttling_storm_still_deploys_without_rollback() {
    let cloud = start("fault-throttle").await;
    let label = scenarios::new_label("801");
    let report = scenarios::upload_with_faults(
        &cloud,
        RevisionKind::Good,
        &label,
        vec![
            throttle_percent("codedeploy", 40.0, 8),
            throttle_percent("elasticloadbalancing", 40.0, 9),
        ],
        &mut print_progress,
    )
    .await
    .unwrap_or_else(|e| panic!("scenario did not run: {e}"));
    let faults = cloud.faults.list();
    let deployments = scenarios::group_deployments(&cloud)
        .await
        .unwrap_or_else(|e| panic!("ListDeployments: {e}"));

    let mut checks = Checks::new();
    checks.check(
        "the storm fired on both services",
        faults.len() == 2 && faults.iter().all(|f| f.fired > 0),
        &faults,
    );
    succeeded_without_rollback_checks(&mut checks, &report);
    checks.check(
        "one deployment in the group (no rollback deployment, no duplicate)",
        deployments.len() == 1,
        &deployments,
    );
    green_deployed_checks(&mut checks, &report);
    checks.finish(
        "throttling storm (CodeDeploy + ELBv2, 40 %)",
        &faults,
        &report,
    );
    cloud.shutdown().await;
}
