//! Lost CodeDeploy events: EventBridge delivers CodeDeploy's state-change
//! events best effort (EventBridge events reference, "AWS CodeDeploy
//! events"). Every event of the deployment is lost (`lose_event`): the status
//! loop, which waits for them in `AwaitDeploymentEvent`, must still finish the
//! deployment through its fallback look (the wait's timeout), never stall.

use super::{green_deployed_checks, spec, succeeded_without_rollback_checks, Checks};
use greenlight_e2e::{print_progress, start};
use local_cloud::faults::{FaultKind, FaultSpec};
use local_cloud::revisions::RevisionKind;
use local_cloud::scenarios;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_lost_codedeploy_events_fall_back_to_the_look_and_deploy() {
    let cloud = start("fault-lost-events").await;
    let label = scenarios::new_label("811");
    let names = &cloud.resources.names;
    let lose_every_event = FaultSpec {
        resource: Some(format!("{}/{}", names.application, names.deployment_group)),
        count: Some(20),
        ..spec(FaultKind::LoseEvent)
    };
    let report = scenarios::upload_with_faults(
        &cloud,
        RevisionKind::Good,
        &label,
        vec![lose_every_event],
        &mut print_progress,
    )
    .await
    .unwrap_or_else(|e| panic!("scenario did not run: {e}"));
    let faults = cloud.faults.list();
    let sfn = aws_sdk_sfn::Client::new(&cloud.sdk);
    let history = sfn
        .get_execution_history()
        .execution_arn(&report.followed.execution_arn)
        .max_results(1000)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetExecutionHistory: {e}"));
    // How each event wait ended: timed out (the fallback look), or answered
    // (by a CodeDeploy event's wake, `wokenBy` its state, or by the await
    // task's own read, `wokenBy` "await: ...").
    let mut in_event_wait = false;
    let (mut timed_out, mut answered) = (0, Vec::new());
    for event in history.events() {
        let kind = event.r#type().as_str();
        if let Some(entered) = event.state_entered_event_details() {
            in_event_wait = entered.name() == greenlight_core::wake::AWAIT_EVENT_STATE;
        } else if in_event_wait && kind == "TaskTimedOut" {
            timed_out += 1;
        } else if in_event_wait && kind == "TaskSucceeded" {
            answered.push(
                event
                    .task_succeeded_event_details()
                    .and_then(|d| d.output())
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }

    let mut checks = Checks::new();
    checks.check(
        "the deployment's state-change events were lost (START, READY, SUCCESS)",
        faults.len() == 1 && faults[0].fired >= 3,
        &faults,
    );
    succeeded_without_rollback_checks(&mut checks, &report);
    checks.check(
        "the loop waited for events and looked anyway when none came (a timed-out event wait)",
        timed_out >= 1,
        (timed_out, &answered),
    );
    checks.check(
        "no lost event woke the loop (only the await task's own reads answered a wait)",
        answered.iter().all(|o| o.contains("await:")),
        &answered,
    );
    green_deployed_checks(&mut checks, &report);
    checks.finish("CodeDeploy state-change events lost", &faults, &report);
    cloud.shutdown().await;
}
