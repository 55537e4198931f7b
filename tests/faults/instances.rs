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

use super::{common_checks, green_deployed_checks_but_failures, spec, Checks};
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
    failed_before_reroute_checks_with(checks, cloud, report, deployments, None);
}

/// [`failed_before_reroute_checks`], where `dead_registered` (a dead green
/// instance whose AllowTraffic began) may still be registered: CodeDeploy's
/// rollback deregisters it only after its silent agent's hour.
fn failed_before_reroute_checks_with(
    checks: &mut Checks,
    cloud: &LocalCloud,
    report: &DeploymentReport,
    deployments: &[GroupDeployment],
    dead_registered: Option<&str>,
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
    // Greenlight's deployment ended (Failed or Stopped), or its stop is
    // still waiting on a dead instance; the green ASG is gone, or kept only
    // while CodeDeploy still runs the deployment or its rollback (the
    // runbook never races them) and the notification says it was left in
    // place.
    let green_asg = report.green_asg().unwrap_or_default();
    let green_kept = report.existing_asgs.contains(&green_asg);
    let codedeploy_running = deployments.iter().any(|d| !d.ended);
    checks.check(
        "greenlight's deployment ended (Failed or Stopped), or still runs on a dead instance",
        deployments
            .iter()
            .filter(|d| d.creator == "user")
            .all(|d| matches!(d.status.as_str(), "Failed" | "Stopped") || green_kept),
        deployments,
    );
    checks.check(
        "the green ASG is gone, or kept while CodeDeploy still runs and the notification says so",
        !green_kept
            || (codedeploy_running
                && report.notifications.first().is_some_and(|n| {
                    n.message
                        .contains(&format!("green ASG {green_asg} left in place"))
                })),
        (&report.existing_asgs, deployments, &report.notifications),
    );
    let mut blue = cloud.resources.blue_instances.clone();
    blue.sort();
    let mut blue_and_dead = blue.clone();
    blue_and_dead.extend(dead_registered.map(str::to_string));
    blue_and_dead.sort();
    checks.check(
        "only blue is registered (and a dead target the rollback has not reached)",
        report.registered == blue || report.registered == blue_and_dead,
        &report.registered,
    );
    common_checks(checks, report, scenarios::initial_version());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_green_instance_killed_during_installing() {
    // A user who wants a dead instance to cost minutes, not CodeDeploy's
    // hour, sets DeploymentTimeoutSeconds (here its minimum, 300 s): the
    // watcher stops the deployment with rollback at that deadline
    // (DeadlineExceeded). CodeDeploy's stop itself waits for the dead
    // agent's hour (the local cloud's harsher reading: AWS does not document
    // whether StopDeployment waits for a lifecycle event in flight), so the
    // deployment is still InProgress when the execution ends, and the
    // runbook keeps the green group and says so.
    let cloud = start_with("fault-kill-installing", |o| {
        // 300 simulated seconds at the tests' time scale (the watcher reads
        // the real clock).
        o.deployment_timeout_seconds = (300.0 * greenlight_e2e::TIME_SCALE) as u32;
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

/// A green instance killed while its target registration is in progress
/// (AllowTraffic, after the gate passed: past the point of no return, so
/// greenlight never stops the deployment). Its target never passes a health
/// check, so the ALB never routes to it; CodeDeploy's AllowTraffic waits for
/// it up to the lifecycle event limit (one hour, CodeDeploy user guide,
/// "Quotas"; 6 minutes at the tests' time scale), then fails that instance.
/// Minimum healthy hosts decides: with CodeDeployDefault.OneAtATime only a
/// failure on the last instance is tolerated ("if the deployment to the
/// last instance fails, the overall deployment is still successful"), and
/// this is the first green instance rerouted, so the deployment fails
/// (HEALTH_CONSTRAINTS) and CodeDeploy rolls back. The rollback's
/// BlockTraffic on the dead instance waits on its silent agent for another
/// hour, so the dead target stays registered (unhealthy, never routed to)
/// and the green ASG is kept while that rollback runs; the runbook says so.
/// Blue serves throughout. This scenario takes CodeDeploy's hour: about 7
/// minutes real, over the suite's 3-minute budget (see the README).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_green_instance_killed_during_allow_traffic() {
    let cloud = start("fault-kill-allowtraffic").await;
    let blue = cloud.resources.blue_instances.clone();
    // The first green target registered (its AllowTraffic has begun).
    let ready = || {
        let cloud = &cloud;
        let blue = blue.clone();
        async move {
            let registered = scenarios::registered_targets(cloud).await.ok()?;
            registered.into_iter().find(|i| !blue.contains(i))
        }
    };
    let (armed, report, deployments) = run_with(
        &cloud,
        RevisionKind::Good,
        "813",
        KILLED_SETTLE,
        ready,
        FaultKind::KillInstance,
    )
    .await;
    let faults = cloud.faults.list();
    let killed = armed
        .as_ref()
        .and_then(|f| f.spec.resource.clone())
        .unwrap_or_default();
    let mut checks = Checks::new();
    checks.check("a green instance was killed", armed.is_some(), &armed);
    checks.check(
        "the execution failed with DeploymentFailed (HEALTH_CONSTRAINTS, AllowTraffic)",
        report.followed.error.as_deref() == Some("DeploymentFailed")
            && report
                .followed
                .cause
                .as_deref()
                .is_some_and(|c| c.contains("HEALTH_CONSTRAINTS")),
        (&report.followed.error, &report.followed.cause),
    );
    checks.check(
        "the notification names the dead instance's failed AllowTraffic",
        report.notifications.first().is_some_and(|n| {
            n.message
                .contains(&format!("Failed instance {killed} (Green): AllowTraffic"))
        }),
        &report.notifications,
    );
    let health = target_health(&cloud, &killed).await;
    checks.check(
        "the dead target is unhealthy: the ALB never routed to it",
        health
            .as_ref()
            .is_some_and(|(state, _)| state == "unhealthy"),
        &health,
    );
    failed_before_reroute_checks_with(&mut checks, &cloud, &report, &deployments, Some(&killed));
    checks.finish(
        "green instance killed during AllowTraffic",
        &faults,
        &report,
    );
    cloud.shutdown().await;
}

/// The state and reason DescribeTargetHealth gives `instance` in the demo target group.
async fn target_health(cloud: &LocalCloud, instance: &str) -> Option<(String, String)> {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&cloud.sdk);
    let out = elb
        .describe_target_health()
        .target_group_arn(&cloud.resources.target_group_arn)
        .send()
        .await
        .ok()?;
    out.target_health_descriptions()
        .iter()
        .find(|d| d.target().and_then(|t| t.id()) == Some(instance))
        .and_then(|d| d.target_health())
        .map(|h| {
            (
                h.state()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                h.reason()
                    .map(|r| r.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
}

/// Past the point of no return greenlight never stops or rolls back a
/// deployment (statemachine/README.md), and CodeDeploy has nothing left to
/// run on the green instance: the deployment succeeds. The dead target
/// stays registered; the ALB keeps routing to it until it has failed
/// `UnhealthyThresholdCount` consecutive health checks (ELB user guide,
/// "Health checks for Application Load Balancer target groups"), and a
/// request sent to it in that window gets a 502 (ELB user guide,
/// "Troubleshoot your Application Load Balancers", HTTP 502: "The load
/// balancer received a TCP RST from the target when attempting to establish
/// a connection"). Those requests fail on AWS too: counted apart, bounded by
/// the detection window, noted in the figures row; any other failure fails
/// the scenario. Replacing the dead instance is the green ASG's health
/// check's job; greenlight sends no notification (the deployment succeeded).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_green_instance_killed_during_termination_wait() {
    let cloud = start("fault-kill-termwait").await;
    let blue = cloud.resources.blue_instances.clone();
    // After the reroute, before the deployment ends: no blue target
    // registered any more (BlockTraffic done), green serving, blue's
    // termination wait running.
    let ready = || {
        let cloud = &cloud;
        let blue = blue.clone();
        async move {
            let registered = scenarios::registered_targets(cloud).await.ok()?;
            if registered.is_empty() || registered.iter().any(|i| blue.contains(i)) {
                return None;
            }
            let deployments = scenarios::group_deployments(cloud).await.ok()?;
            if deployments.iter().all(|d| d.ended) {
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
    let killed = armed
        .as_ref()
        .and_then(|f| f.spec.resource.clone())
        .unwrap_or_default();
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
    let health = target_health(&cloud, &killed).await;
    checks.check(
        "the dead target is unhealthy (Target.FailedHealthChecks), the ALB routes around it",
        health
            == Some((
                "unhealthy".to_string(),
                "Target.FailedHealthChecks".to_string(),
            )),
        &health,
    );
    green_deployed_checks_but_failures(&mut checks, &report);
    // The dying target's window: until it failed UnhealthyThresholdCount
    // checks of the tuned profile (interval 5 s, timeout 2 s, threshold 2),
    // in real seconds; about half the load goes to it meanwhile. Twice the
    // whole load over that window bounds it.
    let load = report.load.clone().unwrap_or_default();
    let profile = greenlight_core::tuning::FastProfile::default().health_check;
    let window =
        f64::from(profile.unhealthy_threshold * profile.interval_seconds + profile.timeout_seconds)
            * greenlight_e2e::TIME_SCALE;
    let bound = (2.0 * f64::from(scenarios::LOAD_RPS) * window).ceil() as u64;
    let only_502 = load.by_status.keys().all(|k| k == "200" || k == "502");
    checks.check(
        "failed requests are only the dying target's 502s, within its detection window",
        only_502 && load.failed <= bound && load.ok + load.failed == load.sent,
        (&load, bound),
    );
    checks.note(format!(
        "{} of the failed requests are 502s the ALB answers for the dead target before it fails its health checks (AWS fails them too)",
        load.failed
    ));
    checks.finish(
        "green instance killed during the termination wait",
        &faults,
        &report,
    );
    cloud.shutdown().await;
}
