//! The failure handler failing mid-runbook and being run again (issue 8):
//! the claim a dead attempt left in the report marker must not block the
//! re-run that Step Functions' Retry (or the execution's end event) brings.

use super::*;

/// The marker a HandleFailure attempt of `execution` left when its Lambda
/// timed out 20 s ago, after StopDeployment, before the notification.
fn fresh_claim_of(execution: &str) -> serde_json::Value {
    serde_json::json!({
        "state": "inProgress",
        "claimedAtMs": NOW - 20_000,
        "claimedBy": "req-timed-out",
        "execution": execution,
    })
}

#[tokio::test]
async fn the_pipeline_path_records_its_execution_in_the_claim() {
    let puts = log();
    let mut m = Mocks::new();
    m.sns.push(publish_rule(log()));
    m.s3 = s3_fresh_rules(puts.clone());
    let task = group_busy_task();
    handled(
        run(Request::Task(Box::new(task.clone())), &m.deps())
            .await
            .unwrap(),
    );
    let puts = entries(&puts);
    assert_eq!(puts[0].body["state"], "inProgress");
    assert_eq!(puts[0].body["execution"], task.execution_name.as_str());
}

#[tokio::test]
async fn a_retry_takes_over_the_claim_its_own_dead_attempt_left_and_finishes() {
    let task = group_busy_task();
    let puts = log();
    let published = log();
    let mut m = Mocks::new();
    m.sns.push(publish_rule(published.clone()));
    m.s3 = s3_existing_rules(fresh_claim_of(&task.execution_name), puts.clone());
    let report = handled(run(Request::Task(Box::new(task)), &m.deps()).await.unwrap());
    let claim = action(&report, Step::ClaimReport);
    assert_eq!(claim.outcome, Outcome::Done);
    assert!(
        claim.detail.contains("taken over by req-1")
            && claim.detail.contains("failure path, whose attempt ended"),
        "{}",
        claim.detail
    );
    let conds: Vec<Cond> = entries(&puts).iter().map(|p| p.cond.clone()).collect();
    assert_eq!(
        conds,
        vec![
            Cond::IfNoneMatch("*".into()),
            Cond::IfMatch("\"e1\"".into()),
            Cond::None
        ],
        "claim, conditional take-over, completed report"
    );
    assert_eq!(entries(&published).len(), 1, "the one notification is sent");
}

#[tokio::test]
async fn a_fresh_claim_of_another_execution_is_still_respected() {
    let mut m = Mocks::new();
    m.s3 = s3_existing_rules(fresh_claim_of("some-other-execution"), log());
    match run(Request::Task(Box::new(group_busy_task())), &m.deps())
        .await
        .unwrap()
    {
        Response::Duplicate(report) => {
            assert!(
                report.summary.contains("being handled by req-timed-out"),
                "{}",
                report.summary
            );
            assert!(report.actions.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

fn execution_end_mocks(marker: serde_json::Value, published: Log<(String, String)>) -> Mocks {
    let mut m = Mocks::new();
    m.sfn.push(describe_execution_rule(
        aws_sdk_sfn::types::ExecutionStatus::Failed,
    ));
    m.codedeploy = deployment_rules_changing(
        2,
        info(DEP, SdkStatus::Stopped, &deployment_description(EXEC), None),
        info(DEP, SdkStatus::Stopped, &deployment_description(EXEC), None),
        ready_green(),
    );
    m.codedeploy.push(list_deployments_rule(&[DEP]));
    m.codedeploy.push(stop_rule(log()));
    m.codedeploy.push(deployment_group_rule(&[BLUE_ASG]));
    m.autoscaling.push(delete_asg_rule(log()));
    m.elbv2 = elb_tuned_rules(log());
    m.sns.push(publish_rule(published));
    m.s3 = s3_existing_rules(marker, log());
    m
}

#[tokio::test]
async fn failure_handler_failed_end_takes_over_the_dead_attempts_claim_and_notifies() {
    let published = log();
    let deps = execution_end_mocks(fresh_claim_of(EXEC), published.clone()).deps();
    let report = handled(
        run(execution_event(Some("FailureHandlerFailed")), &deps)
            .await
            .unwrap(),
    );
    assert!(
        action(&report, Step::ClaimReport)
            .detail
            .contains("taken over by req-1"),
        "{:#?}",
        report.actions
    );
    assert_eq!(entries(&published).len(), 1);
}

#[tokio::test]
async fn an_aborted_end_leaves_a_fresh_claim_to_its_possibly_running_invocation() {
    // Aborted while HandleFailure ran: Lambda finishes that invocation, so
    // the claim is respected until it ages out.
    let published = log();
    let deps = execution_end_mocks(fresh_claim_of(EXEC), published.clone()).deps();
    let mut request: serde_json::Value = serde_json::from_str(EXECUTION_END).unwrap();
    request["detail"]["status"] = "ABORTED".into();
    request["detail"]["error"] = serde_json::Value::Null;
    let request: Request = serde_json::from_value(request).unwrap();
    match run(request, &deps).await.unwrap() {
        Response::Ignored { reason, .. } => {
            assert!(
                reason.contains("being handled by req-timed-out"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(entries(&published).is_empty());
}
