//! Issue 10's per-upload requests through the real entry points: an S3
//! upload tagged `greenlight-bake=skip` (the emergency bake override) or
//! `greenlight-approval=required` (PutObject with `Tagging` through the local
//! cloud's S3, read back by deploy-trigger with GetObjectTagging), and a
//! CodePipeline job whose UserParameters ask `{"approval":"required"}`.
//!
//! Notifications: the skip and the approval request are extra notifications
//! (outcome attributes `bakeSkipped` / `approvalRequested`), each checked to
//! be exactly one; the standard checks then count the ending's notifications
//! without them (exactly one, `deployed` or `failed`).

use std::time::Duration;

use super::approval::{ask_checks, await_pending, ASK_SUBJECT, DEADLINE_SECONDS};
use super::{green_deployed_checks, Checks};
use greenlight_core::approval::ApprovalAnswer;
use greenlight_e2e::{print_progress, start_with, TIME_SCALE};
use local_cloud::cloud::{LocalCloud, Options};
use local_cloud::codepipeline::JobStatus;
use local_cloud::revisions::RevisionKind;
use local_cloud::scenarios::{self, DeploymentReport, Notification};

/// The group's approval setting: not required by default (only the upload's
/// request asks), the approval deadline of tests/faults/approval.rs.
fn approval_on_request(o: &mut Options) {
    o.approval = vec![greenlight_core::options::GroupApproval {
        application: o.names.application.clone(),
        deployment_group: o.names.deployment_group.clone(),
        required: false,
        deadline_seconds: DEADLINE_SECONDS,
    }];
}

/// The group's deadline as the execution input carries it: the local cloud
/// scales the approval configuration to its time scale.
fn deadline_real() -> u32 {
    (f64::from(DEADLINE_SECONDS) * TIME_SCALE).ceil() as u32
}

/// Uploads a good revision with `tagging`, runs `intervene` once the
/// execution is found, follows it, and reads back late notifications too.
async fn upload_tagged<F, Fut>(
    cloud: &LocalCloud,
    build: &str,
    tagging: &str,
    intervene: F,
) -> DeploymentReport
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), scenarios::ScenarioError>>,
{
    let label = scenarios::new_label(build);
    let (mut report, ()) = scenarios::upload_tagged_and_intervene(
        cloud,
        RevisionKind::Good,
        &label,
        Some(tagging),
        scenarios::SETTLE,
        intervene,
        &mut print_progress,
    )
    .await
    .unwrap_or_else(|e| panic!("scenario did not run: {e}"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    report.notifications.extend(
        scenarios::notifications(cloud)
            .await
            .unwrap_or_else(|e| panic!("notifications: {e}")),
    );
    report
}

/// Splits off the notifications whose outcome attribute is `outcome`.
fn take_outcome(notifications: &mut Vec<Notification>, outcome: &str) -> Vec<Notification> {
    let (taken, rest): (Vec<_>, Vec<_>) = notifications
        .drain(..)
        .partition(|n| n.outcome.as_deref() == Some(outcome));
    *notifications = rest;
    taken
}

fn output_at(report: &DeploymentReport, pointer: &str) -> Option<serde_json::Value> {
    report.followed.output.as_ref()?.pointer(pointer).cloned()
}

fn deployment_id(report: &DeploymentReport) -> String {
    report
        .followed
        .deployment
        .as_ref()
        .map(|d| d.deployment_id.clone())
        .unwrap_or_default()
}

/// What a skipped bake must show, whoever asked for the skip.
struct SkipExpected<'a> {
    /// `bakeSkip.requestedBy` in the execution's input.
    requested_by: &'a str,
    /// Who asked, in the check's name ("tag", "pipeline's UserParameters").
    asked_by: &'a str,
    /// How the summary names the requester, in the check's name.
    who: &'a str,
    /// The requester as the summary and notifications name it.
    requester: &'a str,
    id: &'a str,
    names: &'a local_cloud::provision::DemoNames,
    skips: &'a [Notification],
}

/// The checks every skipped bake passes: the execution succeeded, its input
/// carries the override, the bake's one look skipped, blue was kept for the
/// whole termination wait, one skip notification naming the requester, and
/// the deployed notification says SKIPPED. Returns the checks so far, the
/// Terminating phase's real seconds and the termination wait's real seconds.
fn skipped_bake_checks(
    report: &DeploymentReport,
    expected: &SkipExpected<'_>,
) -> (Checks, Option<f64>, f64) {
    let SkipExpected {
        requested_by,
        asked_by,
        who,
        requester,
        id,
        names,
        skips,
    } = *expected;
    let wait_real = f64::from(SKIP_TERMINATION_WAIT_MINUTES) * 60.0 * TIME_SCALE;
    let terminating = report
        .followed
        .timeline
        .iter()
        .find(|r| r.phase == greenlight_core::model::Phase::Terminating)
        .and_then(|r| {
            r.ended_at_ms
                .map(|end| (end - r.started_at_ms) as f64 / 1000.0)
        });
    println!(
        "bake skip ({asked_by}): execution {}; termination wait {wait_real:.0} s real, Terminating took {terminating:?} s; bake {:?}; timeline {:?}; notifications {:?}",
        report.followed.status,
        output_at(report, "/bake"),
        report.followed.timeline,
        report.notifications
    );
    let mut checks = Checks::new();
    checks.check(
        "the execution succeeded",
        report.followed.status == "SUCCEEDED",
        (&report.followed.status, &report.followed.error),
    );
    checks.check(
        &format!("the input carries the override asked by the {asked_by}"),
        output_at(report, "/bakeSkip/requestedBy") == Some(requested_by.into()),
        output_at(report, "/bakeSkip"),
    );
    let bake = output_at(report, "/bake");
    checks.check(
        &format!("the bake's one look skipped (verdict skipped, {who}) and watched nothing"),
        bake.as_ref().is_some_and(|b| {
            b["verdict"] == "skipped"
                && b["looks"] == 1
                && b.get("startedAtMs").is_none()
                && b["summary"]
                    .as_str()
                    .is_some_and(|s| s.contains(&format!("bake SKIPPED by override ({requester}")))
        }),
        &bake,
    );
    checks.check(
        "blue was kept for the whole termination wait (nothing ended it early)",
        terminating.is_some_and(|t| t >= wait_real - 1.0),
        (terminating, wait_real),
    );
    checks.check(
        &format!("exactly one skip notification, at the skip, {who}"),
        skips.len() == 1
            && !id.is_empty()
            && skips[0].message.starts_with(&format!(
                "greenlight: bake SKIPPED for {}/{} deployment {id} by override ({requester}",
                names.application, names.deployment_group
            )),
        skips.iter().map(|n| n.message.clone()).collect::<Vec<_>>(),
    );
    checks.check(
        "the deployed notification says the bake was SKIPPED by override",
        report.notifications.first().is_some_and(|n| {
            n.message
                .contains(&format!("Bake: SKIPPED by override ({requester}"))
        }),
        &report.notifications,
    );
    (checks, terminating, wait_real)
}

/// The blue termination wait of the skip scenario, simulated minutes (18 s
/// real at the tests' time scale): the skip must wait all of it.
const SKIP_TERMINATION_WAIT_MINUTES: i32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_bake_skip_by_tag_keeps_blue_through_the_termination_wait() {
    let cloud = start_with("fault-bake-skip", |o| {
        o.settings.termination_wait_minutes = SKIP_TERMINATION_WAIT_MINUTES;
        let bake = o.demo_bake(20);
        o.bake = vec![bake];
    })
    .await;
    let mut report =
        upload_tagged(&cloud, "1201", "greenlight-bake=skip", |_| async { Ok(()) }).await;
    let skips = take_outcome(&mut report.notifications, "bakeSkipped");
    let id = deployment_id(&report);
    let names = &cloud.resources.names;
    let requester = format!(
        "S3 tag greenlight-bake=skip on s3://{}/{}",
        names.bucket, report.key
    );
    let (mut checks, terminating, wait_real) = skipped_bake_checks(
        &report,
        &SkipExpected {
            requested_by: "objectTag",
            asked_by: "tag",
            who: "names who asked",
            requester: &requester,
            id: &id,
            names,
            skips: &skips,
        },
    );
    if let Some(t) = terminating {
        checks.note(format!(
            "bake skipped by tag: Terminating {t:.1} s real of a {wait_real:.0} s wait"
        ));
    }
    green_deployed_checks(&mut checks, &report);
    checks.finish("bake skipped by override (S3 tag)", &[], &report);
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_approval_asked_by_tag_is_promoted() {
    let cloud = start_with("fault-approval-tag", approval_on_request).await;
    let sfn = aws_sdk_sfn::Client::new(&cloud.sdk);
    let mut report = upload_tagged(&cloud, "1202", "greenlight-approval=required", |arn| {
        let sfn = sfn.clone();
        async move {
            await_pending(&sfn, &arn).await?;
            // What `greenlight promote <execution>` sends.
            let answer = ApprovalAnswer {
                approved: true,
                by: "dana (e2e)".into(),
                reason: None,
            };
            greenlight_aws::approval::answer_approval(&sfn, &arn, &answer)
                .await
                .map_err(|e| scenarios::ScenarioError::Fault(format!("promote: {e}")))
                .map(|_| ())
        }
    })
    .await;
    let (asks, rest): (Vec<_>, Vec<_>) = report.notifications.drain(..).partition(|n| {
        n.subject
            .as_deref()
            .is_some_and(|s| s.starts_with(ASK_SUBJECT))
    });
    report.notifications = rest;
    let mut checks = Checks::new();
    checks.check(
        "the execution succeeded",
        report.followed.status == "SUCCEEDED",
        (&report.followed.status, &report.followed.error),
    );
    checks.check(
        "the approval was asked by the object's tag, with the group's deadline",
        output_at(&report, "/approval")
            == Some(
                serde_json::json!({"requestedBy": "objectTag", "deadlineSeconds": deadline_real()}),
            ),
        output_at(&report, "/approval"),
    );
    checks.check(
        "the request says the tag asked",
        asks.first().is_some_and(|a| {
            a.message
                .contains("asked by the uploaded object's S3 tag greenlight-approval=required")
        }),
        asks.iter().map(|a| a.message.clone()).collect::<Vec<_>>(),
    );
    let summary = output_at(&report, "/validation/summary");
    checks.check(
        "the gate's report says who approved",
        summary
            .as_ref()
            .and_then(|s| s.as_str())
            .is_some_and(|s| s.starts_with("approved by dana (e2e);")),
        &summary,
    );
    ask_checks(&mut checks, &asks, &report);
    green_deployed_checks(&mut checks, &report);
    checks.finish("approval asked by S3 tag -> promoted", &[], &report);
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_approval_asked_by_pipeline_is_aborted_and_fails_the_job() {
    let cloud = start_with("fault-approval-pipeline", approval_on_request).await;
    let sfn = aws_sdk_sfn::Client::new(&cloud.sdk);
    let mut asks_parameter = serde_json::Map::new();
    asks_parameter.insert("approval".into(), "required".into());
    let label = scenarios::new_label("1203");
    let report = scenarios::pipeline_job_asking(
        &cloud,
        RevisionKind::Good,
        &label,
        asks_parameter,
        |arn| {
            let sfn = sfn.clone();
            async move {
                await_pending(&sfn, &arn).await?;
                // What `greenlight abort <execution>` sends.
                let answer = ApprovalAnswer {
                    approved: false,
                    by: "erin (e2e)".into(),
                    reason: Some("not during the sale".into()),
                };
                greenlight_aws::approval::answer_approval(&sfn, &arn, &answer)
                    .await
                    .map_err(|e| scenarios::ScenarioError::Fault(format!("abort: {e}")))
                    .map(|_| ())
            }
        },
        &mut print_progress,
    )
    .await
    .unwrap_or_else(|e| panic!("scenario did not run: {e}"));
    scenarios::await_group_idle(&cloud, scenarios::SETTLE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let notifications = scenarios::notifications(&cloud)
        .await
        .unwrap_or_else(|e| panic!("notifications: {e}"));
    let registered = scenarios::registered_targets(&cloud)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let followed = report.followed.clone();
    let view = report.view.clone();
    println!("pipeline approval aborted: job {view:?}; execution {followed:?}; notifications {notifications:?}");

    let mut checks = Checks::new();
    checks.check(
        "the execution failed with ApprovalRejected",
        followed.as_ref().is_some_and(|f| {
            f.status == "FAILED" && f.error.as_deref() == Some("ApprovalRejected")
        }),
        followed.as_ref().map(|f| (&f.status, &f.error, &f.cause)),
    );
    // A failed execution has no output: its input says what was asked.
    let input = match followed.as_ref() {
        Some(f) => sfn
            .describe_execution()
            .execution_arn(&f.execution_arn)
            .send()
            .await
            .ok()
            .and_then(|d| d.input().map(str::to_string))
            .and_then(|i| serde_json::from_str::<serde_json::Value>(&i).ok()),
        None => None,
    };
    let asked = input.as_ref().and_then(|i| i.get("approval").cloned());
    checks.check(
        "the approval was asked by the pipeline's UserParameters",
        asked
            == Some(serde_json::json!({"requestedBy": "pipelineParameter", "deadlineSeconds": deadline_real()})),
        &asked,
    );
    let failure = view
        .as_ref()
        .and_then(|v| v.action.failure_details.as_ref())
        .map(|f| f.message.clone())
        .unwrap_or_default();
    checks.check(
        "the CodePipeline job failed with the rejection's reason",
        view.as_ref()
            .is_some_and(|v| v.action.status == JobStatus::Failed)
            && failure.contains("rejected by erin (e2e): not during the sale"),
        (&view.as_ref().map(|v| &v.action.status), &failure),
    );
    let (asks, endings): (Vec<_>, Vec<_>) = notifications
        .iter()
        .partition(|n| n.outcome.as_deref() == Some("approvalRequested"));
    checks.check(
        "exactly one approval request, saying the pipeline asked",
        asks.len() == 1
            && asks[0]
                .message
                .contains("the CodePipeline action's UserParameters {\"approval\":\"required\"}"),
        asks.iter().map(|a| a.message.clone()).collect::<Vec<_>>(),
    );
    checks.check(
        "exactly one failure notification",
        endings.len() == 1 && endings[0].outcome.as_deref() == Some("failed"),
        endings
            .iter()
            .map(|n| (n.subject.clone(), n.outcome.clone()))
            .collect::<Vec<_>>(),
    );
    let mut blue = cloud.resources.blue_instances.clone();
    blue.sort();
    checks.check(
        "blue still serves: only blue is registered",
        registered == blue,
        &registered,
    );
    let figures = DeploymentReport {
        key: label.clone(),
        label,
        followed: followed.unwrap_or_else(|| panic!("no execution followed")),
        served_versions: Default::default(),
        existing_asgs: Vec::new(),
        group_asgs: Vec::new(),
        settings_before: super::seed_settings(),
        settings_after: super::seed_settings(),
        notifications,
        load: None,
        registered,
        upload: scenarios::UploadFate::Unaccounted {
            seen: "a CodePipeline job, not an upload: not checked here".into(),
        },
    };
    checks.finish(
        "approval asked by CodePipeline UserParameters -> aborted, job failed",
        &[],
        &figures,
    );
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_bake_skip_by_pipeline_parameter_is_announced_and_the_job_succeeds() {
    let cloud = start_with("fault-bake-skip-pipeline", |o| {
        o.settings.termination_wait_minutes = SKIP_TERMINATION_WAIT_MINUTES;
        let bake = o.demo_bake(20);
        o.bake = vec![bake];
    })
    .await;
    let mut asks_parameter = serde_json::Map::new();
    asks_parameter.insert("bake".into(), "skip".into());
    let label = scenarios::new_label("1204");
    let key = format!("pipeline-artifacts/BuildArtif/{label}");
    let load = local_cloud::loadgen::start_load(
        &format!("{}/version", cloud.listener_url()),
        scenarios::LOAD_RPS,
        Duration::from_secs(600),
    );
    let settings_before = scenarios::target_group_settings(&cloud)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let job = scenarios::pipeline_job_asking(
        &cloud,
        RevisionKind::Good,
        &label,
        asks_parameter,
        |_| async { Ok(()) },
        &mut print_progress,
    )
    .await
    .unwrap_or_else(|e| panic!("scenario did not run: {e}"));
    scenarios::await_group_idle(&cloud, scenarios::SETTLE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let load = load.stop().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut notifications = scenarios::notifications(&cloud)
        .await
        .unwrap_or_else(|e| panic!("notifications: {e}"));
    let skips = take_outcome(&mut notifications, "bakeSkipped");
    let followed = job
        .followed
        .clone()
        .unwrap_or_else(|| panic!("no execution started for the job {}", job.job_id));
    let names = &cloud.resources.names;
    let upload = scenarios::account_for_upload(&cloud, &key, &notifications)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let green = followed
        .deployment
        .as_ref()
        .map(greenlight_e2e::green_instances)
        .unwrap_or_default();
    let mut asg_names = vec![names.blue_asg.clone()];
    if let Some(d) = &followed.deployment {
        asg_names.push(format!(
            "CodeDeploy_{}_{}",
            d.deployment_group, d.deployment_id
        ));
    }
    let report = DeploymentReport {
        key: key.clone(),
        label: label.clone(),
        served_versions: scenarios::served_versions(&cloud, 10).await,
        existing_asgs: scenarios::existing_asgs(&cloud, &asg_names)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        group_asgs: scenarios::group_asgs(&cloud)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        settings_before,
        settings_after: scenarios::target_group_settings(&cloud)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        notifications,
        load: Some(load),
        registered: scenarios::registered_targets(&cloud)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        followed,
        upload,
    };
    let id = deployment_id(&report);
    // The skip names the job that started the execution (the first of the
    // action's chain of jobs).
    let requester = format!(
        "CodePipeline job {} (UserParameters {{\"bake\":\"skip\"}})",
        job.job_id
    );
    let view = job.view.clone();
    println!("bake skip by pipeline: job {view:?}; skips {skips:?}");
    let (mut checks, terminating, wait_real) = skipped_bake_checks(
        &report,
        &SkipExpected {
            requested_by: "pipelineParameter",
            asked_by: "pipeline's UserParameters",
            who: "names the job",
            requester: &requester,
            id: &id,
            names,
            skips: &skips,
        },
    );
    checks.check(
        "the CodePipeline job was answered success",
        view.as_ref().is_some_and(|v| {
            v.action.status == JobStatus::Succeeded
                && v.action.failure_details.is_none()
                && v.action.job_ids.first() == Some(&job.job_id)
        }),
        &view,
    );
    checks.check(
        "only the green instances are registered",
        !green.is_empty() && report.registered == green,
        &report.registered,
    );
    if let Some(t) = terminating {
        checks.note(format!(
            "bake skipped by the pipeline: Terminating {t:.1} s real of a {wait_real:.0} s wait; job answered success"
        ));
    }
    green_deployed_checks(&mut checks, &report);
    checks.finish(
        "bake skipped by override (CodePipeline UserParameters), job succeeded",
        &[],
        &report,
    );
    cloud.shutdown().await;
}
