//! Issue 10's approval at the gate, end to end: the demo group asks for a
//! human approval by default (`ApprovalConfig` `required: true`), the
//! automated gate passes, the state machine waits in `AwaitApproval` on a
//! task token (moto's Step Functions runs `lambda:invoke.waitForTaskToken`),
//! the failure handler publishes the one approval request, and the answer
//! comes through `greenlight_aws::approval` (the code `greenlight promote` /
//! `abort` run): granted → deployed; rejected → blue kept; nobody answers →
//! rejected by deadline, blue kept.
//!
//! Notifications: the approval request is its own notification (subject
//! "greenlight: approval needed ..."), checked to be exactly one; the
//! standard checks then count the outcome notifications without it (exactly
//! one, `deployed` for a success, `failed` naming the deployment otherwise).

use std::time::Duration;

use super::{blue_kept_checks, green_deployed_checks, Checks};
use greenlight_core::approval::ApprovalAnswer;
use greenlight_e2e::{print_progress, start_with};
use local_cloud::cloud::LocalCloud;
use local_cloud::revisions::RevisionKind;
use local_cloud::scenarios::{self, DeploymentReport, ScenarioError};

/// The group's approval deadline, simulated seconds (20 s real at the tests'
/// time scale): long enough to find and answer the wait, short enough for
/// the timed-out scenario.
pub(super) const DEADLINE_SECONDS: u32 = 200;

pub(super) const ASK_SUBJECT: &str = "greenlight: approval needed";

async fn start_approving(name: &str) -> LocalCloud {
    start_with(name, |o| {
        o.approval = vec![greenlight_core::options::GroupApproval {
            application: o.names.application.clone(),
            deployment_group: o.names.deployment_group.clone(),
            required: true,
            deadline_seconds: DEADLINE_SECONDS,
        }];
    })
    .await
}

/// Waits until the execution waits for an approval (its history has the
/// `AwaitApproval` task token), bounded.
pub(super) async fn await_pending(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
) -> Result<(), ScenarioError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        match greenlight_aws::approval::find_pending_approval(sfn, arn).await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(ScenarioError::Fault(format!(
                    "the execution never waited for an approval: {e}"
                )))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// Runs the upload; `answer` (if any) answers the pending approval once it
/// is pending. Returns the report with the approval request split off.
async fn run(
    cloud: &LocalCloud,
    build: &str,
    answer: Option<ApprovalAnswer>,
) -> (DeploymentReport, Vec<scenarios::Notification>) {
    let label = scenarios::new_label(build);
    let sfn = aws_sdk_sfn::Client::new(&cloud.sdk);
    let (mut report, ()) = scenarios::upload_and_intervene(
        cloud,
        RevisionKind::Good,
        &label,
        scenarios::SETTLE,
        |arn| {
            let sfn = sfn.clone();
            async move {
                await_pending(&sfn, &arn).await?;
                if let Some(answer) = answer {
                    greenlight_aws::approval::answer_approval(&sfn, &arn, &answer)
                        .await
                        .map_err(|e| ScenarioError::Fault(format!("answer: {e}")))?;
                }
                Ok(())
            }
        },
        &mut print_progress,
    )
    .await
    .unwrap_or_else(|e| panic!("scenario did not run: {e}"));
    // Late notifications (none expected) are counted too.
    tokio::time::sleep(Duration::from_secs(3)).await;
    report.notifications.extend(
        scenarios::notifications(cloud)
            .await
            .unwrap_or_else(|e| panic!("notifications: {e}")),
    );
    let (asks, outcome): (Vec<_>, Vec<_>) = report.notifications.drain(..).partition(|n| {
        n.subject
            .as_deref()
            .is_some_and(|s| s.starts_with(ASK_SUBJECT))
    });
    report.notifications = outcome;
    (report, asks)
}

pub(super) fn ask_checks(
    checks: &mut Checks,
    asks: &[scenarios::Notification],
    report: &DeploymentReport,
) {
    let id = report
        .followed
        .deployment
        .as_ref()
        .map(|d| d.deployment_id.clone())
        .unwrap_or_default();
    checks.check(
        "exactly one approval request, naming the deployment and how to answer",
        asks.len() == 1
            && !id.is_empty()
            && asks[0].message.contains(&id)
            && asks[0].message.contains(&format!(
                "greenlight promote {}",
                report.followed.execution_name
            ))
            && asks[0]
                .message
                .contains("aws stepfunctions send-task-success")
            && asks[0]
                .message
                .contains("aws stepfunctions send-task-failure"),
        asks.iter().map(|a| a.message.clone()).collect::<Vec<_>>(),
    );
}

fn output_str(report: &DeploymentReport, pointer: &str) -> Option<String> {
    report
        .followed
        .output
        .as_ref()?
        .pointer(pointer)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_approval_granted_deploys() {
    let cloud = start_approving("fault-approval-granted").await;
    let answer = ApprovalAnswer {
        approved: true,
        by: "alice (e2e)".into(),
        reason: None,
    };
    let (report, asks) = run(&cloud, "1101", Some(answer)).await;
    let mut checks = Checks::new();
    checks.check(
        "the execution succeeded",
        report.followed.status == "SUCCEEDED",
        (
            &report.followed.status,
            &report.followed.error,
            &report.followed.cause,
        ),
    );
    let summary = output_str(&report, "/validation/summary");
    checks.check(
        "the gate's report says who approved",
        summary
            .as_deref()
            .is_some_and(|s| s.starts_with("approved by alice (e2e);")),
        &summary,
    );
    ask_checks(&mut checks, &asks, &report);
    green_deployed_checks(&mut checks, &report);
    checks.finish("approval: granted -> deployed", &[], &report);
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_approval_rejected_keeps_blue() {
    let cloud = start_approving("fault-approval-rejected").await;
    let answer = ApprovalAnswer {
        approved: false,
        by: "bob (e2e)".into(),
        reason: Some("not during the sale".into()),
    };
    let (report, asks) = run(&cloud, "1102", Some(answer)).await;
    let mut checks = Checks::new();
    checks.check(
        "the execution failed with ApprovalRejected",
        report.followed.status == "FAILED"
            && report.followed.error.as_deref() == Some("ApprovalRejected"),
        (
            &report.followed.status,
            &report.followed.error,
            &report.followed.cause,
        ),
    );
    checks.check(
        "the notification names who rejected and why",
        report.notifications.first().is_some_and(|n| {
            n.message
                .contains("rejected by bob (e2e): not during the sale")
        }),
        &report.notifications,
    );
    ask_checks(&mut checks, &asks, &report);
    blue_kept_checks(&mut checks, &report, &cloud);
    checks.finish("approval: rejected -> blue kept", &[], &report);
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_approval_timed_out_keeps_blue() {
    let cloud = start_approving("fault-approval-timeout").await;
    let (report, asks) = run(&cloud, "1103", None).await;
    let mut checks = Checks::new();
    checks.check(
        "the execution failed with ApprovalRejected",
        report.followed.status == "FAILED"
            && report.followed.error.as_deref() == Some("ApprovalRejected"),
        (
            &report.followed.status,
            &report.followed.error,
            &report.followed.cause,
        ),
    );
    let deadline_real = (f64::from(DEADLINE_SECONDS) * greenlight_e2e::TIME_SCALE).ceil() as u32;
    checks.check(
        "the notification says the deadline passed",
        report.notifications.first().is_some_and(|n| {
            n.message.contains(&format!(
                "nobody approved it within the {deadline_real} s approval deadline"
            ))
        }),
        &report.notifications,
    );
    ask_checks(&mut checks, &asks, &report);
    blue_kept_checks(&mut checks, &report, &cloud);
    checks.finish(
        "approval: nobody answered -> rejected by deadline",
        &[],
        &report,
    );
    cloud.shutdown().await;
}
