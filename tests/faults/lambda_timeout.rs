//! The deployment-watcher's Lambda timing out (`timeout_once`: the handler
//! runs, its answer is held past the function's Timeout, the invocation
//! fails with `Sandbox.Timedout`). The state machine retries
//! `Sandbox.Timedout` on Create and Status only (statemachine/README.md,
//! "Retries"): a status look only reads, and a create finds the deployment it
//! already made by its description. So both runs continue to a deployed
//! green fleet, with one deployment in the group.
//!
//! The traffic validator's answer lost after its ContinueDeployment took
//! effect (`unknown_once`: the invocation fails with `Lambda.Unknown`, the
//! name Step Functions gives unhandled Lambda errors such as out-of-memory
//! kills): Validate is retried with `retryCount` 1, finds the deployment
//! past Ready and reports `continuedEarlier` without writing.

use super::{green_deployed_checks, seed_settings, spec, Checks};
use greenlight_e2e::{print_progress, start};
use local_cloud::faults::{FaultKind, FaultSpec};
use local_cloud::revisions::RevisionKind;
use local_cloud::scenarios;
use std::time::Duration;

fn watcher_timeout() -> FaultSpec {
    FaultSpec {
        resource: Some(local_cloud::lambda_host::DEPLOYMENT_WATCHER.into()),
        count: Some(1),
        ..spec(FaultKind::TimeoutOnce)
    }
}

fn validator_answer_lost() -> FaultSpec {
    FaultSpec {
        resource: Some(local_cloud::lambda_host::TRAFFIC_VALIDATOR.into()),
        operation: Some("validate".into()),
        count: Some(1),
        ..spec(FaultKind::UnknownOnce)
    }
}

/// Runs a good upload with a watcher timeout injected when `moment` says so,
/// and checks the run continued to a deployed green fleet.
async fn timeout_at(
    name: &str,
    scenario: &str,
    build: &str,
    moment: impl Fn(&local_cloud::cloud::LocalCloud) -> MomentFuture<'_>,
) {
    lost_answer_at(name, scenario, build, moment, watcher_timeout).await;
}

/// Runs a good upload with the `fault` injected when `moment` says so, and
/// checks the run continued to a deployed green fleet.
async fn lost_answer_at(
    name: &str,
    scenario: &str,
    build: &str,
    moment: impl Fn(&local_cloud::cloud::LocalCloud) -> MomentFuture<'_>,
    fault: fn() -> FaultSpec,
) {
    let cloud = start(name).await;
    let label = scenarios::new_label(build);
    let mut progress = print_progress;
    let inject = scenarios::inject_when(
        &cloud,
        Duration::from_secs(120),
        || moment(&cloud),
        |_| fault(),
    );
    let run = scenarios::upload_and_follow_settled(
        &cloud,
        RevisionKind::Good,
        &label,
        scenarios::SETTLE,
        &mut progress,
    );
    let (injected, report) = tokio::join!(inject, run);
    let injected = injected.unwrap_or_else(|e| panic!("fault not injected: {e}"));
    let report = report.unwrap_or_else(|e| panic!("scenario did not run: {e}"));
    let faults = cloud.faults.list();
    let deployments = scenarios::group_deployments(&cloud)
        .await
        .unwrap_or_else(|e| panic!("ListDeployments: {e}"));

    let mut checks = Checks::new();
    checks.check(
        "the injected fault fired once",
        injected.is_some() && faults.len() == 1 && faults[0].fired == 1,
        &faults,
    );
    checks.check(
        "the execution continued and succeeded",
        report.followed.status == "SUCCEEDED",
        (&report.followed.status, &report.followed.error),
    );
    checks.check(
        "one deployment in the group (no duplicate, no rollback)",
        deployments.len() == 1 && deployments[0].status == "Succeeded",
        &deployments,
    );
    if fault().resource.as_deref() == Some(local_cloud::lambda_host::TRAFFIC_VALIDATOR) {
        let action = report
            .followed
            .output
            .as_ref()
            .and_then(|o| o.pointer("/validation/action"))
            .cloned();
        checks.check(
            "the retried Validate found the deployment continued by its lost attempt",
            action.as_ref().and_then(|a| a.as_str()) == Some("continuedEarlier"),
            &action,
        );
    }
    green_deployed_checks(&mut checks, &report);
    checks.finish(scenario, &faults, &report);
    cloud.shutdown().await;
}

type MomentFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Option<()>> + 'a>>;

/// The deployment exists: the watcher's next invocation is a Status look.
fn deployment_exists(cloud: &local_cloud::cloud::LocalCloud) -> MomentFuture<'_> {
    Box::pin(async move {
        let deployments = scenarios::group_deployments(cloud).await.ok()?;
        (!deployments.is_empty()).then_some(())
    })
}

/// The tuner has changed the target group: the watcher's next invocation is Create.
fn tuned(cloud: &local_cloud::cloud::LocalCloud) -> MomentFuture<'_> {
    Box::pin(async move {
        let settings = scenarios::target_group_settings(cloud).await.ok()?;
        (settings != seed_settings()).then_some(())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_watcher_status_timeout_is_retried_and_deploys() {
    timeout_at(
        "fault-status-timeout",
        "watcher Lambda timeout on Status",
        "811",
        deployment_exists,
    )
    .await;
}

/// At once: the fault fires only on the validator's `validate` action.
fn at_once(_: &local_cloud::cloud::LocalCloud) -> MomentFuture<'_> {
    Box::pin(async { Some(()) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_validator_answer_lost_after_continue_is_retried_and_deploys() {
    lost_answer_at(
        "fault-validate-unknown",
        "validator answer lost (Lambda.Unknown) after ContinueDeployment",
        "813",
        at_once,
        validator_answer_lost,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_watcher_create_timeout_reuses_its_deployment() {
    timeout_at(
        "fault-create-timeout",
        "watcher Lambda timeout on Create",
        "812",
        tuned,
    )
    .await;
}
