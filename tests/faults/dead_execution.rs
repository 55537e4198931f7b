//! Executions that die outside their failure path (issue 9 defect 6, end to
//! end): the execution ends ABORTED / FAILED without its `HandleFailure`
//! state running, while its deployment waits at Ready with the target group
//! tuned. Step Functions' "Execution Status Change" event (emitted by
//! local_cloud::execution_events, as EventBridge delivers it on AWS) brings
//! the failure handler, which must stop the deployment with rollback,
//! restore the target group from its snapshot tag and notify once.

use super::{blue_kept_checks, common_checks, seed_settings, spec, Checks};
use greenlight_core::DeploymentStatus;
use greenlight_e2e::{print_progress, start};
use local_cloud::cloud::LocalCloud;
use local_cloud::faults::{FaultKind, FaultSpec};
use local_cloud::revisions::RevisionKind;
use local_cloud::scenarios::{self, DeploymentReport, ScenarioError};
use std::time::Duration;

/// Waits (bounded) until the execution's deployment waits at Ready and the
/// tuner's fast profile is on the target group: the moment an execution
/// must not die at. Returns the deployment id.
async fn await_ready_and_tuned(
    cloud: &LocalCloud,
    execution_arn: &str,
) -> Result<String, ScenarioError> {
    let name = execution_arn.rsplit(':').next().unwrap_or_default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let view = local_cloud::follow::deployment_of(cloud, name).await;
        let tuned = scenarios::target_group_settings(cloud).await? != seed_settings();
        if let Some(view) = view {
            if view.status == DeploymentStatus::Ready && tuned {
                return Ok(view.deployment_id);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ScenarioError::Fault(format!(
                "execution {name} never had its deployment waiting at Ready with the target group tuned"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The defined end of a dead execution: CodeDeploy stopped the deployment
/// with a rollback, blue serves whole (the group points at it, only blue is
/// registered, green's ASG is gone), the target group is back at its
/// snapshot, and one notification names the deployment and the execution's
/// end.
fn dead_execution_checks(
    checks: &mut Checks,
    cloud: &LocalCloud,
    report: &DeploymentReport,
    deployment_id: &str,
    status: &str,
) {
    checks.check(
        &format!("the execution ended {status}"),
        report.followed.status == status,
        (&report.followed.status, &report.followed.error),
    );
    let deployment = report.followed.deployment.clone();
    checks.check(
        "the deployment was stopped with a rollback",
        deployment.as_ref().is_some_and(|d| {
            d.deployment_id == deployment_id
                && d.status == DeploymentStatus::Stopped
                && d.rollback_deployment_id.is_some()
        }),
        &deployment,
    );
    // Blue whole, green gone, one notification naming the deployment, the
    // common checks: the failure path's end, as for every blue-kept scenario.
    blue_kept_checks(checks, report, cloud);
    checks.check(
        "the notification names the execution's end",
        report
            .notifications
            .first()
            .is_some_and(|n| n.message.contains(deployment_id) && n.message.contains(status)),
        &report.notifications,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_execution_aborted_at_ready_is_cleaned_up() {
    let cloud = start("fault-dead-aborted").await;
    let label = scenarios::new_label("901");
    let sfn = aws_sdk_sfn::Client::new(&cloud.sdk);
    let (report, deployment_id) = scenarios::upload_and_intervene(
        &cloud,
        RevisionKind::Good,
        &label,
        scenarios::SETTLE,
        |arn| {
            let cloud = &cloud;
            let sfn = sfn.clone();
            async move {
                let deployment_id = await_ready_and_tuned(cloud, &arn).await?;
                // As an operator would: StopExecution through the API.
                sfn.stop_execution()
                    .execution_arn(&arn)
                    .error("OperatorStopped")
                    .cause("stopped by an operator while the deployment waited at Ready")
                    .send()
                    .await
                    .map_err(|e| {
                        ScenarioError::Fault(format!(
                            "StopExecution: {}",
                            aws_sdk_sfn::error::DisplayErrorContext(&e)
                        ))
                    })?;
                Ok(deployment_id)
            }
        },
        &mut print_progress,
    )
    .await
    .unwrap_or_else(|e| panic!("scenario did not run: {e}"));

    let mut checks = Checks::new();
    dead_execution_checks(&mut checks, &cloud, &report, &deployment_id, "ABORTED");
    checks.finish(
        "dead execution: aborted (StopExecution) at Ready",
        &cloud.faults.list(),
        &report,
    );
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_execution_failing_on_a_result_over_256_kb_is_cleaned_up() {
    // The validator finds green unhealthy at Ready, stops the deployment
    // with rollback, and answers with a result over Step Functions' 256 KB
    // limit (as evidence that was not capped would): the execution fails
    // uncatchably (States.DataLimitExceeded on AWS, States.Runtime under moto,
    // see local_cloud::front::data_limit) and HandleFailure never runs. The
    // execution's end must still restore the target group and notify.
    let cloud = start("fault-dead-data-limit").await;
    let label = scenarios::new_label("902");
    let (report, deployment_id) = scenarios::upload_and_intervene(
        &cloud,
        RevisionKind::FailingHealth,
        &label,
        scenarios::SETTLE,
        |arn| {
            let cloud = &cloud;
            async move {
                // Armed before Ready so it catches the validator's one call.
                let name = arn.rsplit(':').next().unwrap_or_default().to_string();
                scenarios::inject(
                    cloud,
                    FaultSpec {
                        resource: Some(local_cloud::lambda_host::TRAFFIC_VALIDATOR.into()),
                        ..spec(FaultKind::OversizeOnce)
                    },
                )
                .await?;
                let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
                loop {
                    if let Some(view) = local_cloud::follow::deployment_of(cloud, &name).await {
                        return Ok(view.deployment_id);
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(ScenarioError::Fault(format!(
                            "execution {name} created no deployment"
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        },
        &mut print_progress,
    )
    .await
    .unwrap_or_else(|e| panic!("scenario did not run: {e}"));

    let faults = cloud.faults.list();
    let mut checks = Checks::new();
    checks.check(
        "the oversized result fired once",
        faults.len() == 1 && faults[0].fired == 1,
        &faults,
    );
    checks.check(
        "the execution did not run its failure path",
        report.followed.error.as_deref() != Some("ValidationFailed"),
        (&report.followed.error, &report.followed.cause),
    );
    dead_execution_checks(&mut checks, &cloud, &report, &deployment_id, "FAILED");
    checks.finish(
        "dead execution: task result over 256 KB at Ready",
        &faults,
        &report,
    );
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_failure_handler_timing_out_mid_runbook_is_rerun_to_completion() {
    // Validation fails at Ready; HandleFailure claims the report, stops and
    // restores, then its SNS Publish hangs until the Lambda times out
    // (Sandbox.Timedout), before the notification and the completed report.
    // The state machine's Retry runs it again: it must take over the dead
    // attempt's claim and finish the runbook once: settings = snapshot, one
    // notification, blue serving whole, the execution failed with the
    // handler's own error.
    let cloud = start("fault-handler-rerun").await;
    let label = scenarios::new_label("903");
    let hang = FaultSpec {
        service: Some("sns".into()),
        operation: Some("Publish".into()),
        count: Some(1),
        hang_seconds: Some(120.0),
        ..spec(FaultKind::Hang)
    };
    let report = scenarios::upload_with_faults(
        &cloud,
        RevisionKind::FailingHealth,
        &label,
        vec![hang],
        &mut print_progress,
    )
    .await
    .unwrap_or_else(|e| panic!("scenario did not run: {e}"));
    let faults = cloud.faults.list();
    let mut checks = Checks::new();
    checks.check(
        "the Publish hang fired once",
        faults.len() == 1 && faults[0].fired == 1,
        &faults,
    );
    checks.check(
        "the execution failed with the handler's report (ValidationFailed), not FailureHandlerFailed",
        report.followed.status == "FAILED"
            && report.followed.error.as_deref() == Some("ValidationFailed"),
        (&report.followed.error, &report.followed.cause),
    );
    let deployment_id = report
        .followed
        .deployment
        .as_ref()
        .map(|d| d.deployment_id.clone())
        .unwrap_or_default();
    checks.check(
        "exactly one notification, naming the deployment",
        report.notifications.len() == 1
            && !deployment_id.is_empty()
            && report.notifications[0].message.contains(&deployment_id),
        &report.notifications,
    );
    let deployment = report.followed.deployment.clone();
    checks.check(
        "the deployment was stopped with a rollback",
        deployment.as_ref().is_some_and(|d| {
            d.status == DeploymentStatus::Stopped && d.rollback_deployment_id.is_some()
        }),
        &deployment,
    );
    let mut blue = cloud.resources.blue_instances.clone();
    blue.sort();
    checks.check(
        "only blue is registered",
        report.registered == blue,
        &report.registered,
    );
    checks.check(
        "the group points at the blue ASG",
        report.group_asgs == vec![cloud.resources.names.blue_asg.clone()],
        &report.group_asgs,
    );
    common_checks(&mut checks, &report, scenarios::initial_version());
    checks.finish(
        "failure handler timing out mid-runbook (SNS Publish hangs), re-run by Retry",
        &faults,
        &report,
    );
    cloud.shutdown().await;
}
