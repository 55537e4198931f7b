//! Scaling held still (issue 10): a scale-out attempted while a deployment
//! runs is held (the desired capacity changes, no instance of either version
//! joins), the deployment still ends in its defined state, every process
//! greenlight suspended is resumed afterwards (read back with
//! DescribeAutoScalingGroups `SuspendedProcesses`), the hold record is gone,
//! and the scale event is reported: in the execution output on success, in
//! the one notification on the failure path.
//!
//! The local cloud holds the scale-out as AWS does (EC2 Auto Scaling user
//! guide, "How suspended processes affect other processes"; see
//! local_cloud::front::autoscaling): moto alone would launch at once.

use super::{blue_kept_checks, green_deployed_checks, Checks};
use greenlight_e2e::{print_progress, start};
use local_cloud::cloud::LocalCloud;
use local_cloud::revisions::RevisionKind;
use local_cloud::scenarios::scaling::{attempt_scale_out, group_scaling, GroupScaling};
use local_cloud::scenarios::{self, ScenarioError};
use std::time::Duration;

const HOLD_TAG: &str = "greenlight:scaling-hold";

/// Waits (bounded) until the execution left state `name`.
async fn await_state_exited(
    cloud: &LocalCloud,
    execution_arn: &str,
    name: &str,
) -> Result<(), ScenarioError> {
    let sfn = aws_sdk_sfn::Client::new(&cloud.sdk);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let history = sfn
            .get_execution_history()
            .execution_arn(execution_arn)
            .max_results(1000)
            .send()
            .await
            .map_err(|e| {
                ScenarioError::Fault(format!(
                    "GetExecutionHistory: {}",
                    aws_sdk_sfn::error::DisplayErrorContext(&e)
                ))
            })?;
        if history.events().iter().any(|e| {
            e.state_exited_event_details()
                .is_some_and(|d| d.name() == name)
        }) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ScenarioError::Fault(format!(
                "execution {execution_arn} never left state {name}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A group as read right before and right after a scale-out attempt (moto
/// launches synchronously inside the request, so "right after" is final).
#[derive(Debug)]
struct Attempt {
    before: GroupScaling,
    after: GroupScaling,
}

async fn scale_out_now(cloud: &LocalCloud, asg: &str) -> Result<Attempt, ScenarioError> {
    let before = attempt_scale_out(cloud, asg, 1).await?;
    let after = group_scaling(cloud, asg)
        .await?
        .ok_or_else(|| ScenarioError::Fault(format!("{asg} vanished")))?;
    Ok(Attempt { before, after })
}

fn held(attempt: &Attempt) -> bool {
    attempt.before.suspended.iter().any(|p| p == "Launch")
        && attempt.before.tags.iter().any(|t| t.starts_with(HOLD_TAG))
        && attempt.after.desired == attempt.before.desired + 1
        && attempt.after.instances == attempt.before.instances
}

/// Read back after the run: nothing suspended, no hold record.
fn resumed(group: &Option<GroupScaling>) -> bool {
    group
        .as_ref()
        .is_some_and(|g| g.suspended.is_empty() && !g.tags.iter().any(|t| t.starts_with(HOLD_TAG)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_scale_out_during_deployment_is_held_and_resumed_after() {
    let cloud = start("fault-scale-out").await;
    let label = scenarios::new_label("1001");
    let blue_asg = cloud.resources.names.blue_asg.clone();
    let (report, (blue, green)) = scenarios::upload_and_intervene(
        &cloud,
        RevisionKind::Good,
        &label,
        scenarios::SETTLE,
        |arn| {
            let cloud = &cloud;
            let blue_asg = blue_asg.clone();
            async move {
                // Both groups are held once the gate is reached.
                await_state_exited(cloud, &arn, "HoldGreenScaling").await?;
                let name = arn.rsplit(':').next().unwrap_or_default().to_string();
                let deployment = local_cloud::follow::deployment_of(cloud, &name)
                    .await
                    .ok_or_else(|| ScenarioError::Fault("no deployment at Ready".into()))?;
                let green_asg = format!(
                    "CodeDeploy_{}_{}",
                    deployment.deployment_group, deployment.deployment_id
                );
                let blue = scale_out_now(cloud, &blue_asg).await?;
                let green = scale_out_now(cloud, &green_asg).await?;
                Ok((blue, green))
            }
        },
        &mut print_progress,
    )
    .await
    .unwrap_or_else(|e| panic!("scenario did not run: {e}"));

    let mut checks = Checks::new();
    checks.check(
        "the blue scale-out was held (desired +1, no new instance)",
        held(&blue),
        &blue,
    );
    checks.check(
        "the green scale-out was held (desired +1, no new instance)",
        held(&green),
        &green,
    );
    checks.check(
        "the deployment succeeded",
        report.followed.status == "SUCCEEDED",
        (&report.followed.status, &report.followed.error),
    );
    green_deployed_checks(&mut checks, &report);
    let green_asg = report.green_asg().unwrap_or_default();
    let green_after = group_scaling(&cloud, &green_asg)
        .await
        .unwrap_or_else(|e| panic!("DescribeAutoScalingGroups: {e}"));
    checks.check(
        "green's processes are resumed and its hold record removed",
        resumed(&green_after),
        &green_after,
    );
    checks.check(
        "once resumed, Auto Scaling acts on the held scale-out",
        green_after.as_ref().is_some_and(|g| {
            g.desired == green.after.desired && g.instances.len() == green.after.desired as usize
        }),
        &green_after,
    );
    let events = report
        .followed
        .output
        .as_ref()
        .and_then(|o| o.pointer("/scalingReleased/events"))
        .cloned()
        .unwrap_or_default();
    let reported = events.as_array().is_some_and(|events| {
        events.iter().any(|e| {
            e["group"] == green_asg.as_str()
                && e["desiredBefore"] == green.before.desired
                && e["desiredAfter"] == green.after.desired
        })
    });
    checks.check(
        "the scale event is reported in the execution's outcome",
        reported,
        &events,
    );
    checks.finish(
        "scaling: scale-out during a deployment held, resumed after",
        &cloud.faults.list(),
        &report,
    );
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_scale_out_during_deployment_then_gate_failure_resumes_blue() {
    let cloud = start("fault-scale-out-gate").await;
    let label = scenarios::new_label("1002");
    let blue_asg = cloud.resources.names.blue_asg.clone();
    let (report, blue) = scenarios::upload_and_intervene(
        &cloud,
        RevisionKind::FailingHealth,
        &label,
        scenarios::SETTLE,
        |arn| {
            let cloud = &cloud;
            let blue_asg = blue_asg.clone();
            async move {
                await_state_exited(cloud, &arn, "HoldGreenScaling").await?;
                scale_out_now(cloud, &blue_asg).await
            }
        },
        &mut print_progress,
    )
    .await
    .unwrap_or_else(|e| panic!("scenario did not run: {e}"));

    let mut checks = Checks::new();
    checks.check(
        "the blue scale-out was held (desired +1, no new instance)",
        held(&blue),
        &blue,
    );
    checks.check(
        "the execution failed at the gate",
        report.followed.status == "FAILED"
            && report.followed.error.as_deref() == Some("ValidationFailed"),
        (&report.followed.status, &report.followed.error),
    );
    blue_kept_checks(&mut checks, &report, &cloud);
    let blue_after = group_scaling(&cloud, &blue_asg)
        .await
        .unwrap_or_else(|e| panic!("DescribeAutoScalingGroups: {e}"));
    checks.check(
        "blue's processes are resumed and its hold record removed",
        resumed(&blue_after),
        &blue_after,
    );
    let text = report
        .notifications
        .first()
        .map(|n| n.message.clone())
        .unwrap_or_default();
    checks.check(
        "the one notification reports the held scale-out",
        text.contains(&format!("Scaling ({blue_asg}): resumed"))
            && text.contains(&format!(
                "desired capacity {} -> {}",
                blue.before.desired, blue.after.desired
            )),
        &text,
    );
    checks.finish(
        "scaling: scale-out held, gate failure resumes blue",
        &cloud.faults.list(),
        &report,
    );
    cloud.shutdown().await;
}
