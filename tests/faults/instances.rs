//! Instances dying and probes hanging (issue 8): a green instance killed
//! (`kill_instance`: its server refuses connections, its CodeDeploy agent
//! goes silent) during Installing, at Ready and during the termination wait,
//! and a green instance's `/health` hanging during the gate (`hang_health`).
//!
//! What AWS does with a dead instance (and so the local cloud): its agent
//! never reports the lifecycle event it was given, and CodeDeploy only gives
//! up on it after an hour ("CodeDeploy has a one-hour timeout for the
//! CodeDeploy agent to respond to pending deployments", CodeDeploy user
//! guide, "Troubleshoot Amazon EC2 Auto Scaling issues"; "the other
//! deployments that were running can take an hour to time out", user guide,
//! "Integrating CodeDeploy with Amazon EC2 Auto Scaling"). An AppSpec hook
//! `timeout` does not shorten it: the agent enforces that timeout, and the
//! agent is gone. So before the point of no return the defined end is
//! greenlight's, not CodeDeploy's: the gate or the deadline stops the
//! deployment with rollback, the failure handler restores the load balancer,
//! keeps the green group while CodeDeploy's rollback still runs (it waits on
//! the dead instance's BeforeBlockTraffic for that hour) and says so in the
//! one notification; blue never stopped serving.

use super::{common_checks, green_deployed_checks, spec, Checks};
use greenlight_e2e::{print_progress, start, start_with};
use local_cloud::cloud::LocalCloud;
use local_cloud::faults::{FaultKind, FaultSpec, FaultView};
use local_cloud::revisions::RevisionKind;
use local_cloud::scenarios::{self, DeploymentReport, GroupDeployment};
use std::time::Duration;

/// How long (real) a scenario waits for CodeDeploy's rollback to end before
/// reading back: a rollback blocked on a dead instance does not end within
/// any scenario, a rollback of live instances ends in seconds.
const KILLED_SETTLE: Duration = Duration::from_secs(20);

/// The green instances of the run (the fleet's instances that are not blue).
fn green(cloud: &LocalCloud) -> Vec<String> {
    scenarios::new_instances(cloud, &cloud.resources.blue_instances)
}

/// The first green instance, once the deployment is `status`.
async fn green_when(cloud: &LocalCloud, status: &str) -> Option<String> {
    let deployments = scenarios::group_deployments(cloud).await.ok()?;
    if deployments
        .iter()
        .any(|d| d.creator == "user" && d.status == status)
    {
        green(cloud).into_iter().next()
    } else {
        None
    }
}

fn instance_fault(kind: FaultKind, instance: String) -> FaultSpec {
    FaultSpec {
        resource: Some(instance),
        ..spec(kind)
    }
}

/// Runs `kind` under load with `fault` armed concurrently, settled for `settle`.
async fn run_with<R, F>(
    cloud: &LocalCloud,
    kind: RevisionKind,
    build: &str,
    settle: Duration,
    ready: R,
    fault: FaultKind,
) -> (Option<FaultView>, DeploymentReport, Vec<GroupDeployment>)
where
    R: FnMut() -> F,
    F: std::future::Future<Output = Option<String>>,
{
    let label = scenarios::new_label(build);
    let armed = scenarios::inject_when(cloud, Duration::from_secs(150), ready, |instance| {
        instance_fault(fault, instance)
    });
    let mut progress = print_progress;
    let run = scenarios::upload_and_follow_settled(cloud, kind, &label, settle, &mut progress);
    let (armed, report) = tokio::join!(armed, run);
    let armed = armed.unwrap_or_else(|e| panic!("fault: {e}"));
    let report = report.unwrap_or_else(|e| panic!("scenario did not run: {e}"));
    let deployments = scenarios::group_deployments(cloud)
        .await
        .unwrap_or_else(|e| panic!("ListDeployments: {e}"));
    (armed, report, deployments)
}

/// The defined end of a deployment that failed before the point of no
/// return: the execution failed, greenlight's one deployment ended (others
/// are only CodeDeploy's rollbacks of it), one notification names it, the
/// group points at blue, only blue is registered and serves, settings equal
/// the snapshot, no request failed.
fn failed_before_reroute_checks(
    checks: &mut Checks,
    cloud: &LocalCloud,
    report: &DeploymentReport,
    deployments: &[GroupDeployment],
) {
    checks.check(
        "the execution failed",
        report.followed.status == "FAILED",
        (&report.followed.status, &report.followed.error),
    );
    checks.check(
        "no Lambda timed out (Sandbox.Timedout)",
        !report
            .followed
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("Sandbox.Timedout")
            && !report
                .followed
                .cause
                .as_deref()
                .unwrap_or_default()
                .contains("Sandbox.Timedout"),
        (&report.followed.error, &report.followed.cause),
    );
    checks.check(
        "exactly one deployment created by greenlight, the others its rollbacks",
        deployments.iter().filter(|d| d.creator == "user").count() == 1
            && deployments
                .iter()
                .all(|d| d.creator == "user" || d.creator == "codeDeployRollback"),
        deployments,
    );
    checks.check(
        "greenlight's deployment ended (Failed or Stopped)",
        deployments
            .iter()
            .filter(|d| d.creator == "user")
            .all(|d| matches!(d.status.as_str(), "Failed" | "Stopped")),
        deployments,
    );
    let id = report
        .followed
        .deployment
        .as_ref()
        .map(|d| d.deployment_id.clone())
        .unwrap_or_default();
    checks.check(
        "exactly one notification, naming the deployment",
        !id.is_empty()
            && report.notifications.len() == 1
            && report.notifications[0].message.contains(&id),
        &report.notifications,
    );
    let blue_asg = cloud.resources.names.blue_asg.clone();
    checks.check(
        "the blue ASG exists",
        report.existing_asgs.contains(&blue_asg),
        &report.existing_asgs,
    );
    checks.check(
        "the group points at the blue ASG",
        report.group_asgs == vec![blue_asg],
        &report.group_asgs,
    );
    // The green ASG is gone, or kept only while CodeDeploy's rollback still
    // runs (the runbook never races it) and the notification says so.
    let green_kept = report
        .green_asg()
        .is_some_and(|g| report.existing_asgs.contains(&g));
    let rollback_running = deployments
        .iter()
        .any(|d| d.creator == "codeDeployRollback" && !d.ended);
    checks.check(
        "the green ASG is gone, or kept while the rollback runs",
        !green_kept || rollback_running,
        (&report.existing_asgs, deployments),
    );
    let mut blue = cloud.resources.blue_instances.clone();
    blue.sort();
    checks.check(
        "only blue is registered",
        report.registered == blue,
        &report.registered,
    );
    common_checks(checks, report, scenarios::initial_version());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_green_instance_killed_during_installing() {
    // A user who wants a dead instance to cost minutes, not CodeDeploy's
    // hour, sets DeploymentTimeoutSeconds (here its minimum, 300 s) and a
    // Ready wait that fits in it (5 minutes): the watcher stops the
    // deployment with rollback at that deadline.
    let cloud = start_with("fault-kill-installing", |o| {
        o.deployment_timeout_seconds = 300;
        o.settings.ready_wait_minutes = 5;
    })
    .await;
    let (armed, report, deployments) = run_with(
        &cloud,
        RevisionKind::Good,
        "811",
        KILLED_SETTLE,
        || {
            let first = green(&cloud).into_iter().next();
            async move { first }
        },
        FaultKind::KillInstance,
    )
    .await;
    let faults = cloud.faults.list();
    let mut checks = Checks::new();
    checks.check("a green instance was killed", armed.is_some(), &armed);
    failed_before_reroute_checks(&mut checks, &cloud, &report, &deployments);
    checks.finish("green instance killed during Installing", &faults, &report);
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_green_instance_killed_at_ready() {
    let cloud = start("fault-kill-ready").await;
    let (armed, report, deployments) = run_with(
        &cloud,
        RevisionKind::Good,
        "812",
        KILLED_SETTLE,
        || green_when(&cloud, "Ready"),
        FaultKind::KillInstance,
    )
    .await;
    let faults = cloud.faults.list();
    let mut checks = Checks::new();
    checks.check("a green instance was killed", armed.is_some(), &armed);
    let killed = armed
        .as_ref()
        .and_then(|f| f.spec.resource.clone())
        .unwrap_or_default();
    checks.check(
        "the execution failed at the gate",
        report.followed.error.as_deref() == Some("ValidationFailed"),
        (&report.followed.error, &report.followed.cause),
    );
    checks.check(
        "the notification names the dead instance",
        !killed.is_empty()
            && report
                .notifications
                .first()
                .is_some_and(|n| n.message.contains(&killed)),
        &report.notifications,
    );
    failed_before_reroute_checks(&mut checks, &cloud, &report, &deployments);
    checks.finish("green instance killed at Ready", &faults, &report);
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_green_health_probe_hangs_at_the_gate() {
    let cloud = start("fault-hang-probe").await;
    let (armed, report, deployments) = run_with(
        &cloud,
        RevisionKind::Good,
        "815",
        scenarios::SETTLE,
        || green_when(&cloud, "Ready"),
        FaultKind::HangHealth,
    )
    .await;
    let faults = cloud.faults.list();
    let mut checks = Checks::new();
    checks.check("a green health endpoint hangs", armed.is_some(), &armed);
    let hung = armed
        .as_ref()
        .and_then(|f| f.spec.resource.clone())
        .unwrap_or_default();
    checks.check(
        "the execution failed at the gate",
        report.followed.error.as_deref() == Some("ValidationFailed"),
        (&report.followed.error, &report.followed.cause),
    );
    checks.check(
        "the notification names the hanging target and its timeout",
        !hung.is_empty()
            && report.notifications.first().is_some_and(|n| {
                n.message.contains(&hung) && n.message.to_ascii_lowercase().contains("time")
            }),
        &report.notifications,
    );
    checks.check(
        "CodeDeploy's rollback ended (the instance is alive)",
        deployments.iter().all(|d| d.ended),
        &deployments,
    );
    checks.check(
        "the green ASG is gone",
        report.existing_asgs == vec![cloud.resources.names.blue_asg.clone()],
        &report.existing_asgs,
    );
    failed_before_reroute_checks(&mut checks, &cloud, &report, &deployments);
    checks.finish("green /health hangs at the gate", &faults, &report);
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_green_instance_killed_during_termination_wait() {
    let cloud = start("fault-kill-termwait").await;
    let blue = cloud.resources.blue_instances.clone();
    // After the reroute: no blue target registered any more, green serving.
    let ready = || {
        let cloud = &cloud;
        let blue = blue.clone();
        async move {
            let registered = scenarios::registered_targets(cloud).await.ok()?;
            if registered.is_empty() || registered.iter().any(|i| blue.contains(i)) {
                return None;
            }
            registered.into_iter().next()
        }
    };
    let (armed, report, deployments) = run_with(
        &cloud,
        RevisionKind::Good,
        "814",
        scenarios::SETTLE,
        ready,
        FaultKind::KillInstance,
    )
    .await;
    let faults = cloud.faults.list();
    let mut checks = Checks::new();
    checks.check("a green instance was killed", armed.is_some(), &armed);
    checks.check(
        "the execution succeeded (past the point of no return)",
        report.followed.status == "SUCCEEDED",
        (&report.followed.status, &report.followed.error),
    );
    checks.check(
        "one deployment, Succeeded, no rollback",
        deployments.len() == 1 && deployments[0].status == "Succeeded",
        &deployments,
    );
    green_deployed_checks(&mut checks, &report);
    checks.finish(
        "green instance killed during the termination wait",
        &faults,
        &report,
    );
    cloud.shutdown().await;
}
