use super::*;
use crate::model::{
    Admission, AllowTrafficPrediction, CreatedDeployment, HealthCheckSettings, InstanceTargetView,
    LifecycleDiagnostics, LifecycleEventView, Phase, PipelineInput, StatusReport, TaskError,
    TuningResult, ValidationAction, ValidationReport,
};
use crate::watch::deployment_description;

const NOW: EpochMillis = 1_700_000_000_000;

/// The blue group recorded at create time (`blueAutoScalingGroups`).
fn recorded_blue() -> Vec<String> {
    vec!["shop-blue-asg".into()]
}

fn input() -> PipelineInput {
    PipelineInput {
        application: "shop".into(),
        deployment_group: "shop-prod".into(),
        revision: Revision {
            bucket: "artifacts-bucket".into(),
            key: "artifacts/shop/20240101120000-42.zip".into(),
            version: Some("v1".into()),
            etag: None,
            label: "20240101120000-42".into(),
        },
        uploaded_at: "2024-01-01T12:00:00Z".into(),
        uploaded_at_ms: NOW - 60_000,
        source: Source::S3 { event_id: None },
        approval: None,
        bake_skip: None,
    }
}

fn bare_state() -> PipelineState {
    PipelineState {
        input: input(),
        admission: None,
        tuning: None,
        deployment: None,
        status: None,
        validation: None,
        bake: None,
        scaling: None,
        scaling_released: None,
        approval_answer: None,
        approval_error: None,
        error: None,
    }
}

fn snapshot(arn: &str) -> TargetGroupSnapshot {
    TargetGroupSnapshot {
        target_group_arn: arn.into(),
        health_check: HealthCheckSettings {
            interval_seconds: 30,
            timeout_seconds: 5,
            healthy_threshold: 10,
            unhealthy_threshold: 2,
        },
        deregistration_delay_seconds: 300,
    }
}

fn tuned_state() -> PipelineState {
    let mut s = bare_state();
    s.admission = Some(Admission::Proceed);
    s.tuning = Some(TuningResult {
        snapshots: vec![snapshot("arn:tg/1")],
        predicted_allow_traffic: AllowTrafficPrediction {
            before_seconds: 330,
            after_seconds: 15,
        },
        predicted_block_traffic: None,
    });
    s
}

fn created_state() -> PipelineState {
    let mut s = tuned_state();
    s.deployment = Some(CreatedDeployment {
        deployment_id: "d-ABC123".into(),
        created_at_ms: NOW - 600_000,
        deadline_ms: NOW + 3_000_000,
        reused: false,
        blue_termination_wait_seconds: None,
        deployment_config_name: None,
        blue_auto_scaling_groups: Vec::new(),
    });
    s
}

fn status(status: DeploymentStatus, phase: Phase, next: NextStep) -> StatusReport {
    StatusReport {
        deployment_id: "d-ABC123".into(),
        status,
        phase,
        ledger: vec![],
        wait_seconds: 5,
        event_wait_seconds: 5,
        next,
        error: None,
        rollback_deployment_id: None,
        deadline_exceeded: false,
    }
}

fn evidence(id: &str, passed: bool) -> InstanceEvidence {
    InstanceEvidence {
        instance_id: id.into(),
        address: "127.0.0.2:8080".into(),
        probes: 4,
        consecutive_successes: if passed { 3 } else { 0 },
        last_status: Some(if passed { 200 } else { 500 }),
        last_body: Some(if passed { "ok" } else { "unhealthy: db down" }.into()),
        last_error: None,
        passed,
    }
}

fn validation_failed_state() -> PipelineState {
    let mut s = created_state();
    s.status = Some(status(
        DeploymentStatus::Ready,
        Phase::ReadyWait,
        NextStep::Validate,
    ));
    s.validation = Some(ValidationReport {
        deployment_id: "d-ABC123".into(),
        passed: false,
        summary: "i-0bad at 127.0.0.2:8080 answered HTTP 500 \"unhealthy: db down\".".into(),
        instances: vec![evidence("i-0good", true), evidence("i-0bad", false)],
        action: ValidationAction::Stopped,
    });
    s
}

fn ev(name: &str, status: LifecycleStatus) -> LifecycleEventView {
    LifecycleEventView {
        name: name.into(),
        status,
        started_at_ms: None,
        ended_at_ms: None,
        diagnostics: None,
    }
}

fn failed_ev(
    name: &str,
    code: &str,
    script: Option<&str>,
    tail: Option<&str>,
) -> LifecycleEventView {
    LifecycleEventView {
        name: name.into(),
        status: LifecycleStatus::Failed,
        started_at_ms: Some(NOW - 5000),
        ended_at_ms: Some(NOW - 4000),
        diagnostics: Some(LifecycleDiagnostics {
            error_code: code.into(),
            script_name: script.map(str::to_string),
            message: format!(
                "Script at specified location: {} failed",
                script.unwrap_or("-")
            ),
            log_tail: tail.map(str::to_string),
        }),
    }
}

/// Green events up to (not including) `upto` succeeded, then the rest.
fn green(id: &str, events: Vec<LifecycleEventView>, status: LifecycleStatus) -> InstanceTargetView {
    InstanceTargetView {
        instance_id: id.into(),
        label: Some(FleetLabel::Green),
        status,
        lifecycle_events: events,
    }
}

fn blue(id: &str, events: Vec<LifecycleEventView>, status: LifecycleStatus) -> InstanceTargetView {
    InstanceTargetView {
        instance_id: id.into(),
        label: Some(FleetLabel::Blue),
        status,
        lifecycle_events: events,
    }
}

fn green_events_failing_at(fail: &str) -> Vec<LifecycleEventView> {
    let mut out = Vec::new();
    let mut failed = false;
    for name in &LIFECYCLE_ORDER[..10] {
        if failed {
            out.push(ev(name, LifecycleStatus::Skipped));
        } else if *name == fail {
            out.push(failed_ev(
                name,
                "ScriptFailed",
                Some("scripts/install.sh"),
                Some("line1\nexit 1"),
            ));
            failed = true;
        } else {
            out.push(ev(name, LifecycleStatus::Succeeded));
        }
    }
    out
}

fn blue_events(statuses: [LifecycleStatus; 3]) -> Vec<LifecycleEventView> {
    BLOCK_TRAFFIC_EVENTS
        .iter()
        .zip(statuses)
        .map(|(n, s)| ev(n, s))
        .collect()
}

fn view(status: DeploymentStatus, targets: Vec<InstanceTargetView>) -> DeploymentView {
    DeploymentView {
        deployment_id: "d-ABC123".into(),
        application: "shop".into(),
        deployment_group: "shop-prod".into(),
        status,
        description: Some(deployment_description("exec-1")),
        created_at_ms: Some(NOW - 600_000),
        completed_at_ms: Some(NOW - 1000),
        error: Some(DeploymentErrorInfo {
            code: "HEALTH_CONSTRAINTS".into(),
            message: "The overall deployment failed because too many individual instances failed deployment".into(),
        }),
        rollback_deployment_id: Some("d-ROLLBACK1".into()),
        creator: Some("user".into()),
        rollback_triggering_deployment_id: None,
        original_auto_scaling_groups: vec!["shop-blue-asg".into()],
        termination_wait_started: Some(false),
        targets,
    }
}

use LifecycleStatus::{Failed as F, InProgress as IP, Pending as P, Skipped as S, Succeeded as OK};

// ---- failure kind names -------------------------------------------------

#[test]
fn failure_kind_names_are_stable() {
    for (k, s) in [
        (FailureKind::ValidationFailed, "ValidationFailed"),
        (FailureKind::DeploymentFailed, "DeploymentFailed"),
        (FailureKind::DeadlineExceeded, "DeadlineExceeded"),
        (FailureKind::GroupBusyTimeout, "GroupBusyTimeout"),
        (FailureKind::TaskFailed, "TaskFailed"),
    ] {
        assert_eq!(k.as_str(), s);
        assert_eq!(k.to_string(), s);
        assert_eq!(serde_json::to_value(k).unwrap(), serde_json::json!(s));
    }
}

// ---- stage --------------------------------------------------------------

#[test]
fn stage_follows_the_results_the_state_carries() {
    let mut s = bare_state();
    assert_eq!(failed_stage(&s), PipelineStage::Admit);
    s.admission = Some(Admission::Proceed);
    assert_eq!(failed_stage(&s), PipelineStage::Tune);
    let mut s = tuned_state();
    assert_eq!(failed_stage(&s), PipelineStage::Create);
    s = created_state();
    assert_eq!(failed_stage(&s), PipelineStage::Status);
    s.status = Some(status(
        DeploymentStatus::InProgress,
        Phase::Installing,
        NextStep::Wait,
    ));
    assert_eq!(failed_stage(&s), PipelineStage::Status);
    s.status = Some(status(
        DeploymentStatus::Ready,
        Phase::ReadyWait,
        NextStep::Validate,
    ));
    assert_eq!(failed_stage(&s), PipelineStage::Validate);
    s.status = Some(status(
        DeploymentStatus::Succeeded,
        Phase::Done,
        NextStep::Succeeded,
    ));
    assert_eq!(failed_stage(&s), PipelineStage::Restore);
    s.status = Some(status(
        DeploymentStatus::Failed,
        Phase::Installing,
        NextStep::Failed,
    ));
    assert_eq!(failed_stage(&s), PipelineStage::Status);
}

// ---- classification: pipeline ------------------------------------------

#[test]
fn validation_not_passed_is_validation_failed() {
    let c = classify_pipeline(&validation_failed_state());
    assert_eq!(c.kind, FailureKind::ValidationFailed);
    assert_eq!(c.stage, Some(PipelineStage::Validate));
    assert!(c.cause.contains("Ready gate"), "{}", c.cause);
    assert!(c.cause.contains("i-0bad"), "{}", c.cause);
    assert!(!c.cause.ends_with('.'));
}

#[test]
fn validation_without_summary_still_names_the_deployment() {
    let mut s = validation_failed_state();
    s.validation.as_mut().unwrap().summary = "  ".into();
    let c = classify_pipeline(&s);
    assert!(c.cause.contains("d-ABC123"));
    assert!(c.cause.ends_with("at the Ready gate"));
}

#[test]
fn passed_validation_does_not_classify_as_validation_failed() {
    let mut s = validation_failed_state();
    s.validation.as_mut().unwrap().passed = true;
    s.status = Some(status(
        DeploymentStatus::Failed,
        Phase::Rerouting,
        NextStep::Failed,
    ));
    assert_eq!(classify_pipeline(&s).kind, FailureKind::DeploymentFailed);
}

#[test]
fn failed_and_stopped_deployments_are_deployment_failed() {
    for st in [DeploymentStatus::Failed, DeploymentStatus::Stopped] {
        let mut s = created_state();
        let mut r = status(st, Phase::Installing, NextStep::Failed);
        r.error = Some(DeploymentErrorInfo {
            code: "SCRIPT_FAILED".into(),
            message: "Script failed\non line 2".into(),
        });
        s.status = Some(r);
        let c = classify_pipeline(&s);
        assert_eq!(c.kind, FailureKind::DeploymentFailed);
        assert!(
            c.cause.contains("SCRIPT_FAILED: Script failed on line 2"),
            "{}",
            c.cause
        );
        assert!(c.cause.contains(status_word(st)));
        assert!(c.cause.contains("Installing"));
    }
}

#[test]
fn deadline_beats_stopped() {
    let mut s = created_state();
    let mut r = status(
        DeploymentStatus::Stopped,
        Phase::Installing,
        NextStep::Failed,
    );
    r.deadline_exceeded = true;
    s.status = Some(r);
    let c = classify_pipeline(&s);
    assert_eq!(c.kind, FailureKind::DeadlineExceeded);
    assert!(c.cause.contains("deadline of 3600 s"), "{}", c.cause);
    // Without a created deployment the budget is just left out.
    s.deployment = None;
    let c = classify_pipeline(&s);
    assert_eq!(c.kind, FailureKind::DeadlineExceeded);
    assert!(c.cause.contains("deadline in phase"), "{}", c.cause);
}

#[test]
fn deadline_flag_wins_even_while_still_in_progress() {
    let mut s = created_state();
    let mut r = status(
        DeploymentStatus::InProgress,
        Phase::Rerouting,
        NextStep::Failed,
    );
    r.deadline_exceeded = true;
    s.status = Some(r);
    assert_eq!(classify_pipeline(&s).kind, FailureKind::DeadlineExceeded);
}

#[test]
fn group_busy_error_is_group_busy_timeout() {
    let mut s = tuned_state();
    s.error = Some(TaskError {
        error: "GroupBusy".into(),
        cause: "{\"errorMessage\":\"group shop-prod has active deployment d-OTHER\"}".into(),
    });
    let c = classify_pipeline(&s);
    assert_eq!(c.kind, FailureKind::GroupBusyTimeout);
    assert_eq!(c.stage, Some(PipelineStage::Create));
    assert!(c.cause.contains("d-OTHER"));
    assert!(c.cause.contains("Create step"));
}

#[test]
fn any_other_caught_error_is_task_failed() {
    let mut s = tuned_state();
    s.admission = Some(Admission::Proceed);
    s.error = Some(TaskError {
        error: "States.TaskFailed".into(),
        cause: "x".repeat(2000),
    });
    let c = classify_pipeline(&s);
    assert_eq!(c.kind, FailureKind::TaskFailed);
    assert!(c.cause.contains("Create step"));
    assert!(c.cause.contains("States.TaskFailed"));
    assert!(c.cause.chars().count() < MAX_CAUSE_CHARS + 200);
    assert!(c.cause.ends_with("..."));

    s.error = Some(TaskError {
        error: "Lambda.Unknown".into(),
        cause: String::new(),
    });
    let c = classify_pipeline(&s);
    assert!(
        c.cause.ends_with("failed with Lambda.Unknown"),
        "{}",
        c.cause
    );
}

#[test]
fn caught_error_with_stale_in_progress_status_is_task_failed() {
    let mut s = created_state();
    s.status = Some(status(
        DeploymentStatus::InProgress,
        Phase::Installing,
        NextStep::Wait,
    ));
    s.error = Some(TaskError {
        error: "AwsError".into(),
        cause: "GetDeployment throttled".into(),
    });
    let c = classify_pipeline(&s);
    assert_eq!(c.kind, FailureKind::TaskFailed);
    assert_eq!(c.stage, Some(PipelineStage::Status));
}

#[test]
fn no_cause_at_all_is_task_failed_and_says_so() {
    let c = classify_pipeline(&created_state());
    assert_eq!(c.kind, FailureKind::TaskFailed);
    assert!(c.cause.contains("without a recorded cause"));
}

// ---- classification: events ---------------------------------------------

#[test]
fn only_deployment_failure_and_stop_are_handled() {
    assert_eq!(
        event_disposition(Some(DEPLOYMENT_STATE_CHANGE), "FAILURE"),
        EventDisposition::Handle
    );
    assert_eq!(
        event_disposition(Some(DEPLOYMENT_STATE_CHANGE), "STOP"),
        EventDisposition::Handle
    );
    for state in ["SUCCESS", "START", "READY", "RESUME", "failure", ""] {
        match event_disposition(Some(DEPLOYMENT_STATE_CHANGE), state) {
            EventDisposition::Ignore { reason } => assert!(reason.contains("not a failure")),
            other => panic!("{state}: {other:?}"),
        }
    }
    for dt in [Some("CodeDeploy Instance State-change Notification"), None] {
        match event_disposition(dt, "FAILURE") {
            EventDisposition::Ignore { reason } => assert!(reason.contains("detail-type")),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn event_classification_is_deployment_failed_with_the_error() {
    let v = view(DeploymentStatus::Failed, vec![]);
    let c = classify_event("FAILURE", &v);
    assert_eq!(c.kind, FailureKind::DeploymentFailed);
    assert_eq!(c.stage, None);
    assert!(c
        .cause
        .contains("d-ABC123 (shop/shop-prod) ended Failed (event FAILURE): HEALTH_CONSTRAINTS"));
    let mut v = view(DeploymentStatus::Stopped, vec![]);
    v.error = None;
    let c = classify_event("STOP", &v);
    assert!(
        c.cause.ends_with("ended Stopped (event STOP)"),
        "{}",
        c.cause
    );
}

#[test]
fn codedeploy_messages_lose_their_final_period_inside_the_summary() {
    let mut v = view(DeploymentStatus::Failed, vec![]);
    v.error.as_mut().unwrap().message = "Instances are experiencing problems.".into();
    let c = classify_event("FAILURE", &v);
    assert!(c.cause.ends_with("experiencing problems"), "{}", c.cause);
    let mut s = created_state();
    let mut r = status(
        DeploymentStatus::Failed,
        Phase::Installing,
        NextStep::Failed,
    );
    r.error = v.error.clone();
    s.status = Some(r);
    assert!(classify_pipeline(&s)
        .cause
        .ends_with("experiencing problems"));
}

// ---- ownership ----------------------------------------------------------

#[test]
fn ownership_reads_the_description() {
    let v = view(DeploymentStatus::Failed, vec![]);
    assert_eq!(
        ownership(&v),
        Ownership::Pipeline {
            execution_name: "exec-1".into()
        }
    );
    let mut v = v;
    v.description = Some("hotfix by hand".into());
    assert_eq!(ownership(&v), Ownership::Outside);
    v.description = None;
    assert_eq!(ownership(&v), Ownership::Outside);
}

// ---- diagnosis ----------------------------------------------------------

#[test]
fn diagnosis_names_instances_and_their_first_failed_event() {
    let mut two_failures = green_events_failing_at("AfterInstall");
    // A later failure on the same instance is not its first.
    two_failures[9] = failed_ev("AfterAllowTraffic", "Other", None, None);
    let v = view(
        DeploymentStatus::Failed,
        vec![
            green("i-1", green_events_failing_at("ApplicationStart"), F),
            green("i-2", two_failures, F),
            green("i-3", green_events_failing_at("nothing"), OK),
            blue("i-b", blue_events([P, P, P]), P),
        ],
    );
    let d = diagnose(&v);
    assert_eq!(d.failed_instances.len(), 2);
    assert_eq!(d.failed_instances[0].instance_id, "i-1");
    assert_eq!(
        d.failed_instances[0].lifecycle_event.as_deref(),
        Some("ApplicationStart")
    );
    assert_eq!(d.failed_instances[0].fleet, Some(FleetLabel::Green));
    assert_eq!(
        d.failed_instances[0].error_code.as_deref(),
        Some("ScriptFailed")
    );
    assert_eq!(
        d.failed_instances[0].script_name.as_deref(),
        Some("scripts/install.sh")
    );
    assert_eq!(
        d.failed_instances[0].log_tail.as_deref(),
        Some("line1\nexit 1")
    );
    assert!(d.failed_instances[0]
        .message
        .as_deref()
        .unwrap()
        .contains("scripts/install.sh"));
    assert_eq!(
        d.failed_instances[1].lifecycle_event.as_deref(),
        Some("AfterInstall")
    );
    // Earliest in lifecycle order across instances.
    assert_eq!(d.failed_event.as_deref(), Some("AfterInstall"));
    assert!(!d.traffic_moved);
    assert_eq!(d.rollback_deployment_id.as_deref(), Some("d-ROLLBACK1"));
    assert_eq!(d.error.as_ref().unwrap().code, "HEALTH_CONSTRAINTS");
    assert_eq!(d.status, DeploymentStatus::Failed);
}

#[test]
fn failed_instance_without_failed_event_is_listed() {
    let v = view(
        DeploymentStatus::Failed,
        vec![green("i-9", vec![ev("DownloadBundle", P)], F)],
    );
    let d = diagnose(&v);
    assert_eq!(d.failed_instances.len(), 1);
    assert_eq!(d.failed_instances[0].lifecycle_event, None);
    assert_eq!(d.failed_instances[0].error_code, None);
    assert_eq!(d.failed_event, None);
}

#[test]
fn unknown_event_names_rank_after_known_ones_and_long_tails_are_cut() {
    let long_tail = format!("{}END", "x".repeat(5000));
    let v = view(
        DeploymentStatus::Failed,
        vec![
            green(
                "i-1",
                vec![failed_ev("CustomHook", "X", None, Some(&long_tail))],
                F,
            ),
            green("i-2", vec![failed_ev("Install", "Y", None, None)], F),
        ],
    );
    let d = diagnose(&v);
    assert_eq!(d.failed_event.as_deref(), Some("Install"));
    let tail = d.failed_instances[0].log_tail.as_deref().unwrap();
    assert_eq!(tail.chars().count(), MAX_LOG_TAIL_CHARS);
    assert!(tail.starts_with("...") && tail.ends_with("END"));
}

#[test]
fn empty_deployment_has_empty_diagnosis() {
    let d = diagnose(&view(DeploymentStatus::Stopped, vec![]));
    assert!(d.failed_instances.is_empty());
    assert_eq!(d.failed_event, None);
    assert!(!d.traffic_moved);
}

#[test]
fn empty_diagnostic_message_is_none() {
    let mut e = failed_ev("Install", "ScriptFailed", None, Some(""));
    e.diagnostics.as_mut().unwrap().message = String::new();
    e.diagnostics.as_mut().unwrap().log_tail = None;
    let d = diagnose(&view(
        DeploymentStatus::Failed,
        vec![green("i-1", vec![e], F)],
    ));
    assert_eq!(d.failed_instances[0].message, None);
    assert_eq!(d.failed_instances[0].log_tail, None);
}

// ---- traffic moved ------------------------------------------------------

#[test]
fn traffic_moves_when_blue_begins_leaving() {
    let green_done = green("i-g", green_events_failing_at("none"), OK);
    for (statuses, moved) in [
        ([P, P, P], false),
        ([S, S, S], false),
        ([LifecycleStatus::Unknown, P, P], false),
        ([IP, P, P], true),
        ([F, S, S], true),
        ([OK, IP, P], true),
        ([OK, OK, F], true),
    ] {
        let v = view(
            DeploymentStatus::Failed,
            vec![green_done.clone(), blue("i-b", blue_events(statuses), IP)],
        );
        assert_eq!(traffic_moved(&v), moved, "{statuses:?}");
    }
}

#[test]
fn block_events_on_green_or_unlabelled_targets_do_not_count() {
    let mut g = green("i-g", blue_events([OK, OK, OK]), OK);
    assert!(!traffic_moved(&view(
        DeploymentStatus::Failed,
        vec![g.clone()]
    )));
    g.label = None;
    assert!(!traffic_moved(&view(DeploymentStatus::Failed, vec![g])));
}

#[test]
fn termination_wait_means_traffic_moved() {
    let mut v = view(DeploymentStatus::Stopped, vec![]);
    v.termination_wait_started = Some(true);
    assert!(traffic_moved(&v));
    v.termination_wait_started = None;
    assert!(!traffic_moved(&v));
}

// ---- runbook ------------------------------------------------------------

#[test]
fn green_asg_name_follows_codedeploy() {
    assert_eq!(
        green_asg_name("shop-prod", "d-ABC123"),
        "CodeDeploy_shop-prod_d-ABC123"
    );
}

#[test]
fn no_deployment_means_nothing_to_undo() {
    let p = plan_runbook(
        FailureKind::DeploymentFailed,
        "shop-prod",
        None,
        None,
        &recorded_blue(),
    );
    assert!(!p.stop_deployment);
    assert!(matches!(p.decision, RunbookDecision::NothingToUndo { .. }));
}

#[test]
fn unreadable_deployment_is_undetermined_and_changes_nothing() {
    let p = plan_runbook(
        FailureKind::DeploymentFailed,
        "shop-prod",
        Some("d-ABC123"),
        None,
        &recorded_blue(),
    );
    assert!(!p.stop_deployment);
    match p.decision {
        RunbookDecision::Undetermined {
            green_asg,
            reason,
            next_step,
        } => {
            assert_eq!(green_asg, "CodeDeploy_shop-prod_d-ABC123");
            assert!(reason.contains("nothing was changed"));
            assert!(next_step.contains("BlockTraffic"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_failure_before_traffic_removes_green() {
    for fail in &LIFECYCLE_ORDER[..10] {
        let v = view(
            DeploymentStatus::Failed,
            vec![
                green("i-1", green_events_failing_at(fail), F),
                blue("i-b", blue_events([P, P, P]), P),
            ],
        );
        let p = plan_runbook(
            FailureKind::DeploymentFailed,
            "shop-prod",
            Some("d-ABC123"),
            Some(&v),
            &recorded_blue(),
        );
        assert!(!p.stop_deployment);
        match p.decision {
            RunbookDecision::RemoveGreenAndPointAtBlue {
                green_asg,
                blue_asgs,
                reason,
            } => {
                assert_eq!(green_asg, "CodeDeploy_shop-prod_d-ABC123");
                assert_eq!(blue_asgs, vec!["shop-blue-asg".to_string()]);
                assert!(reason.contains(&format!("at {fail}")), "{reason}");
                assert!(reason.contains("before traffic moved"));
            }
            other => panic!("{fail}: {other:?}"),
        }
    }
}

#[test]
fn stopped_at_ready_gate_removes_green() {
    let v = view(
        DeploymentStatus::Stopped,
        vec![
            green("i-1", green_events_failing_at("none"), IP),
            blue("i-b", blue_events([P, P, P]), P),
        ],
    );
    let p = plan_runbook(
        FailureKind::DeploymentFailed,
        "shop-prod",
        Some("d-ABC123"),
        Some(&v),
        &recorded_blue(),
    );
    match p.decision {
        RunbookDecision::RemoveGreenAndPointAtBlue { reason, .. } => {
            assert!(
                reason.contains("no failed lifecycle event (status Stopped)"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_failure_after_traffic_is_explained() {
    for (i, statuses) in [[F, S, S], [OK, F, S], [OK, OK, F]].into_iter().enumerate() {
        let v = view(
            DeploymentStatus::Failed,
            vec![
                green("i-1", green_events_failing_at("none"), OK),
                blue("i-b", blue_events(statuses), F),
            ],
        );
        let p = plan_runbook(
            FailureKind::DeploymentFailed,
            "shop-prod",
            Some("d-ABC123"),
            Some(&v),
            &recorded_blue(),
        );
        match p.decision {
            RunbookDecision::ExplainAfterTraffic {
                green_asg,
                blue_asgs,
                reason,
                next_step,
            } => {
                assert_eq!(green_asg, "CodeDeploy_shop-prod_d-ABC123");
                assert_eq!(blue_asgs, vec!["shop-blue-asg".to_string()]);
                assert!(reason.contains(BLOCK_TRAFFIC_EVENTS[i]), "{reason}");
                assert!(next_step.contains("point deployment group shop-prod at the green ASG CodeDeploy_shop-prod_d-ABC123"));
                assert!(next_step.contains("instead of shop-blue-asg"));
                assert!(next_step.contains("deploy again"));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn explain_without_known_blue_asg_says_original() {
    let v = view(
        DeploymentStatus::Failed,
        vec![blue("i-b", blue_events([F, S, S]), F)],
    );
    match plan_runbook(
        FailureKind::DeploymentFailed,
        "shop-prod",
        Some("d-ABC123"),
        Some(&v),
        &[],
    )
    .decision
    {
        RunbookDecision::ExplainAfterTraffic { next_step, .. } => {
            assert!(next_step.contains("instead of the original ASG"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn succeeded_deployment_is_never_undone() {
    let v = view(DeploymentStatus::Succeeded, vec![]);
    let p = plan_runbook(
        FailureKind::DeploymentFailed,
        "shop-prod",
        Some("d-ABC123"),
        Some(&v),
        &recorded_blue(),
    );
    assert!(!p.stop_deployment);
    match p.decision {
        RunbookDecision::NothingToUndo { reason } => assert!(reason.contains("production")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn active_deployment_is_stopped_first() {
    for st in [
        DeploymentStatus::Created,
        DeploymentStatus::Queued,
        DeploymentStatus::InProgress,
        DeploymentStatus::Baking,
        DeploymentStatus::Ready,
    ] {
        let v = view(st, vec![green("i-1", green_events_failing_at("none"), IP)]);
        let p = plan_runbook(
            FailureKind::DeploymentFailed,
            "shop-prod",
            Some("d-ABC123"),
            Some(&v),
            &recorded_blue(),
        );
        assert!(p.stop_deployment, "{st:?}");
        assert!(matches!(
            p.decision,
            RunbookDecision::RemoveGreenAndPointAtBlue { .. }
        ));
    }
    for st in [DeploymentStatus::Failed, DeploymentStatus::Stopped] {
        let v = view(st, vec![]);
        assert!(
            !plan_runbook(
                FailureKind::DeploymentFailed,
                "shop-prod",
                Some("d-ABC123"),
                Some(&v),
                &recorded_blue()
            )
            .stop_deployment
        );
    }
}

// ---- restore source -----------------------------------------------------

#[test]
fn pipeline_restores_its_own_snapshots() {
    match pipeline_restore_source(&created_state()) {
        RestoreSource::Snapshots { snapshots } => {
            assert_eq!(snapshots, vec![snapshot("arn:tg/1")])
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pipeline_that_never_tuned_restores_nothing() {
    // Failed at Admit (e.g. GroupBusy): never tuned, tags are someone else's.
    let mut s = bare_state();
    s.error = Some(TaskError {
        error: "GroupBusy".into(),
        cause: String::new(),
    });
    match pipeline_restore_source(&s) {
        RestoreSource::Nothing { reason } => assert!(reason.contains("never tuned")),
        other => panic!("{other:?}"),
    }
    // Tuned with nothing to snapshot.
    let mut s = tuned_state();
    s.tuning.as_mut().unwrap().snapshots.clear();
    match pipeline_restore_source(&s) {
        RestoreSource::Nothing { reason } => assert!(reason.contains("no target group")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn pipeline_whose_tune_step_failed_restores_from_tags() {
    let mut s = bare_state();
    s.admission = Some(Admission::Proceed);
    s.error = Some(TaskError {
        error: "AwsError".into(),
        cause: "ModifyTargetGroup throttled".into(),
    });
    assert_eq!(pipeline_restore_source(&s), RestoreSource::RecordedTags);
}

#[test]
fn event_path_restores_from_tags() {
    assert_eq!(event_restore_source(), RestoreSource::RecordedTags);
}

// ---- dedupe -------------------------------------------------------------

fn sample_report() -> FailureReport {
    let s = validation_failed_state();
    compose_report(ReportInput {
        rollback: None,
        source: ReportSource::Pipeline {
            execution_name: "exec-1".into(),
            codepipeline_job_id: None,
        },
        application: "shop".into(),
        deployment_group: "shop-prod".into(),
        deployment_id: Some("d-ABC123".into()),
        revision: Some(s.input.revision.clone()),
        classification: classify_pipeline(&s),
        diagnosis: None,
        validation_evidence: failing_evidence(&s),
        runbook: plan_runbook(
            FailureKind::DeploymentFailed,
            "shop-prod",
            Some("d-ABC123"),
            None,
            &recorded_blue(),
        ),
        restore_source: pipeline_restore_source(&s),
        actions: vec![],
        now: NOW,
    })
}

#[test]
fn no_marker_proceeds() {
    assert_eq!(
        marker_decision(ExistingMarker::Absent, NOW, TAKEOVER_AFTER_MS),
        MarkerDecision::Proceed
    );
}

#[test]
fn completed_marker_skips_with_its_report() {
    let m = ReportMarker::Completed {
        claimed_at_ms: NOW - 10_000,
        completed_at_ms: NOW - 5_000,
        report: Box::new(sample_report()),
    };
    match marker_decision(
        ExistingMarker::Found(&m),
        NOW + 86_400_000,
        TAKEOVER_AFTER_MS,
    ) {
        MarkerDecision::Skip { reason, report } => {
            assert!(reason.contains("already handled"));
            assert_eq!(report.unwrap().error, FailureKind::ValidationFailed);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn in_progress_marker_skips_while_young_and_is_taken_over_when_old() {
    let m = ReportMarker::InProgress {
        claimed_at_ms: NOW,
        claimed_by: "req-1".into(),
        execution: None,
    };
    for age in [0, 1000, TAKEOVER_AFTER_MS - 1] {
        match marker_decision(ExistingMarker::Found(&m), NOW + age, TAKEOVER_AFTER_MS) {
            MarkerDecision::Skip { reason, report } => {
                assert!(reason.contains("req-1"));
                assert!(report.is_none());
            }
            other => panic!("{age}: {other:?}"),
        }
    }
    for age in [TAKEOVER_AFTER_MS, TAKEOVER_AFTER_MS * 10] {
        match marker_decision(ExistingMarker::Found(&m), NOW + age, TAKEOVER_AFTER_MS) {
            MarkerDecision::TakeOver { reason } => assert!(reason.contains("never completed")),
            other => panic!("{age}: {other:?}"),
        }
    }
    // A clock behind the claim is not "old".
    assert!(matches!(
        marker_decision(ExistingMarker::Found(&m), NOW - 60_000, TAKEOVER_AFTER_MS),
        MarkerDecision::Skip { .. }
    ));
}

#[test]
fn unreadable_marker_is_taken_over() {
    assert!(matches!(
        marker_decision(ExistingMarker::Unreadable, NOW, TAKEOVER_AFTER_MS),
        MarkerDecision::TakeOver { .. }
    ));
}

#[test]
fn marker_json_round_trips() {
    let m = ReportMarker::InProgress {
        claimed_at_ms: NOW,
        claimed_by: "req-1".into(),
        execution: None,
    };
    let j = serde_json::to_value(&m).unwrap();
    assert_eq!(
        j,
        serde_json::json!({"state": "inProgress", "claimedAtMs": NOW, "claimedBy": "req-1"})
    );
    assert_eq!(serde_json::from_value::<ReportMarker>(j).unwrap(), m);
    let c = ReportMarker::Completed {
        claimed_at_ms: NOW,
        completed_at_ms: NOW + 1,
        report: Box::new(sample_report()),
    };
    let j = serde_json::to_string(&c).unwrap();
    assert!(j.contains("\"state\":\"completed\""));
    assert_eq!(serde_json::from_str::<ReportMarker>(&j).unwrap(), c);
}

#[test]
fn marker_key_prefers_the_deployment_id() {
    assert_eq!(
        marker_key("greenlight-reports/", Some("d-1"), "exec-1"),
        "greenlight-reports/d-1.json"
    );
    assert_eq!(
        marker_key("greenlight-reports/", None, "exec-1"),
        "greenlight-reports/exec-1.json"
    );
    assert_eq!(marker_key("", None, "e"), "e.json");
}

// ---- pipeline helpers ---------------------------------------------------

#[test]
fn deployment_id_and_job_id_from_state() {
    assert_eq!(pipeline_deployment_id(&bare_state()), None);
    assert_eq!(
        pipeline_deployment_id(&created_state()).as_deref(),
        Some("d-ABC123")
    );
    let mut s = tuned_state();
    s.status = Some(status(
        DeploymentStatus::Failed,
        Phase::Installing,
        NextStep::Failed,
    ));
    assert_eq!(pipeline_deployment_id(&s).as_deref(), Some("d-ABC123"));
    s.status.as_mut().unwrap().deployment_id.clear();
    assert_eq!(pipeline_deployment_id(&s), None);

    assert_eq!(codepipeline_job_id(&bare_state()), None);
    let mut s = bare_state();
    s.input.source = Source::CodePipeline {
        job_id: "job-1".into(),
    };
    assert_eq!(codepipeline_job_id(&s).as_deref(), Some("job-1"));
}

#[test]
fn failing_evidence_keeps_only_failing_instances() {
    let e = failing_evidence(&validation_failed_state());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].instance_id, "i-0bad");
    assert!(failing_evidence(&created_state()).is_empty());
    let mut s = validation_failed_state();
    s.validation.as_mut().unwrap().passed = true;
    assert!(failing_evidence(&s).is_empty());
}

// ---- restore summary ----------------------------------------------------

fn restore(target: &str, outcome: Outcome, detail: &str) -> ActionRecord {
    ActionRecord::new(Step::RestoreLoadBalancer, target, outcome, detail)
}

#[test]
fn restore_summary_states() {
    let src = RestoreSource::RecordedTags;
    let r = summarize_restore(
        &src,
        &[
            restore("tg1", Outcome::Done, ""),
            restore("tg2", Outcome::AlreadyDone, "no tag"),
        ],
    );
    assert_eq!(r.state, RestoreState::Restored);
    assert!(r.detail.contains("1 target group"));

    let r = summarize_restore(
        &src,
        &[
            restore("tg1", Outcome::Done, ""),
            restore("tg2", Outcome::Failed, "AccessDenied"),
        ],
    );
    assert_eq!(r.state, RestoreState::Failed);
    assert!(r.detail.contains("NOT restored on 1 of 2"));
    assert!(r.detail.contains("tg2 (AccessDenied)"));

    let r = summarize_restore(&src, &[restore("tg1", Outcome::AlreadyDone, "no tag")]);
    assert_eq!(r.state, RestoreState::NothingToRestore);
    assert!(r.detail.contains("no target group carries"));

    let r = summarize_restore(
        &RestoreSource::Nothing {
            reason: "never tuned".into(),
        },
        &[],
    );
    assert_eq!(r.state, RestoreState::NothingToRestore);
    assert!(r.detail.contains("never tuned"));

    let r = summarize_restore(&RestoreSource::Snapshots { snapshots: vec![] }, &[]);
    assert!(r.detail.contains("already in place"));

    // Other steps' failures do not count.
    let r = summarize_restore(
        &src,
        &[
            ActionRecord::new(Step::Notify, "topic", Outcome::Failed, "x"),
            restore("tg1", Outcome::Done, ""),
        ],
    );
    assert_eq!(r.state, RestoreState::Restored);
}

// ---- report, summary, notification --------------------------------------

fn install_failure_report(actions: Vec<ActionRecord>) -> FailureReport {
    let mut s = created_state();
    let mut st = status(
        DeploymentStatus::Failed,
        Phase::Installing,
        NextStep::Failed,
    );
    st.error = Some(DeploymentErrorInfo {
        code: "HEALTH_CONSTRAINTS".into(),
        message: "too many individual instances failed".into(),
    });
    s.status = Some(st);
    let v = view(
        DeploymentStatus::Failed,
        vec![
            green("i-0green", green_events_failing_at("Install"), F),
            blue("i-0blue", blue_events([P, P, P]), P),
        ],
    );
    compose_report(ReportInput {
        rollback: None,
        source: ReportSource::Pipeline {
            execution_name: "exec-1".into(),
            codepipeline_job_id: Some("job-9".into()),
        },
        application: "shop".into(),
        deployment_group: "shop-prod".into(),
        deployment_id: Some("d-ABC123".into()),
        revision: Some(s.input.revision.clone()),
        classification: classify_pipeline(&s),
        diagnosis: Some(diagnose(&v)),
        validation_evidence: failing_evidence(&s),
        runbook: plan_runbook(
            FailureKind::DeploymentFailed,
            "shop-prod",
            Some("d-ABC123"),
            Some(&v),
            &recorded_blue(),
        ),
        restore_source: pipeline_restore_source(&s),
        actions,
        now: NOW,
    })
}

fn all_good_actions() -> Vec<ActionRecord> {
    vec![
        ActionRecord::new(Step::ClaimReport, "bucket/key", Outcome::Done, "claimed"),
        ActionRecord::new(
            Step::DeleteGreenAsg,
            "CodeDeploy_shop-prod_d-ABC123",
            Outcome::Done,
            "deleted",
        ),
        ActionRecord::new(
            Step::PointGroupAtBlue,
            "shop/shop-prod",
            Outcome::AlreadyDone,
            "already",
        ),
        restore("arn:tg/1", Outcome::Done, "restored"),
    ]
}

#[test]
fn summary_is_one_sentence_with_what_where_done_and_next() {
    let r = install_failure_report(all_good_actions());
    assert_eq!(r.error, FailureKind::DeploymentFailed);
    let s = &r.summary;
    assert!(
        s.starts_with(
            "DeploymentFailed: CodeDeploy deployment d-ABC123 (shop/shop-prod) ended Failed"
        ),
        "{s}"
    );
    assert!(
        s.contains("green ASG CodeDeploy_shop-prod_d-ABC123 deleted"),
        "{s}"
    );
    assert!(
        s.contains("group already points at blue ASG shop-blue-asg"),
        "{s}"
    );
    assert!(s.contains("load balancer settings restored"), "{s}");
    assert!(s.contains("next: fix the failing lifecycle event"), "{s}");
    assert!(s.ends_with('.'));
    assert!(!s.contains('\n'));
    assert_eq!(r.load_balancer.state, RestoreState::Restored);
    assert_eq!(
        r.diagnosis.as_ref().unwrap().failed_event.as_deref(),
        Some("Install")
    );
}

#[test]
fn failed_steps_show_in_summary_next_step_and_notification() {
    let mut actions = all_good_actions();
    actions[1].outcome = Outcome::Failed;
    actions[1].detail = "ResourceInUse: busy".into();
    actions[2].outcome = Outcome::Failed;
    actions[2].detail = "AccessDenied".into();
    actions[3].outcome = Outcome::Failed;
    actions[3].detail = "throttled".into();
    let r = install_failure_report(actions);
    assert!(r
        .summary
        .contains("deleting green ASG CodeDeploy_shop-prod_d-ABC123 FAILED (ResourceInUse: busy)"));
    assert!(r
        .summary
        .contains("pointing the group at blue ASG shop-blue-asg FAILED (AccessDenied)"));
    assert!(r
        .summary
        .contains("load balancer settings NOT restored on 1 of 1"));
    assert!(r.next_step.starts_with("first finish by hand what failed here (DeleteGreenAsg on CodeDeploy_shop-prod_d-ABC123, PointGroupAtBlue on shop/shop-prod, RestoreLoadBalancer on arn:tg/1)"), "{}", r.next_step);
    let n = notification(&r);
    assert!(n.message.contains("Steps that failed:"));
    assert!(n
        .message
        .contains("DeleteGreenAsg CodeDeploy_shop-prod_d-ABC123: ResourceInUse: busy"));
}

#[test]
fn the_failure_notification_carries_its_outcome_and_a_json_body() {
    let r = install_failure_report(all_good_actions());
    let n = notification(&r);
    assert_eq!(n.outcome, crate::metrics::DeploymentOutcome::Failed);
    assert_eq!(n.application, "shop");
    assert_eq!(n.deployment_group, "shop-prod");
    assert_eq!(n.body["outcome"], "failed");
    assert_eq!(n.body["deploymentId"], "d-ABC123");
    assert_eq!(n.body["error"], r.error.to_string());
    assert_eq!(n.body["summary"], r.summary.as_str());
    assert_eq!(n.body["subject"], n.subject.as_str());
    assert_eq!(n.body["text"], n.message.as_str());
    assert_eq!(
        crate::announce::sns_attributes(&n),
        vec![
            ("outcome", "failed".to_string()),
            ("application", "shop".to_string()),
            ("deploymentGroup", "shop-prod".to_string()),
        ]
    );
}

#[test]
fn a_failed_claim_is_not_a_step_to_finish_by_hand() {
    let mut actions = all_good_actions();
    actions[0].outcome = Outcome::Failed;
    let r = install_failure_report(actions);
    assert!(!r.next_step.starts_with("first finish"));
}

#[test]
fn runbook_clause_covers_every_outcome() {
    let plan = plan_runbook(
        FailureKind::DeploymentFailed,
        "g",
        Some("d-1"),
        Some(&view(DeploymentStatus::Ready, vec![])),
        &recorded_blue(),
    );
    assert!(plan.stop_deployment);
    let clause = |actions: &[ActionRecord]| runbook_clause(&plan, actions);
    let none = clause(&[]);
    assert!(none.contains("green ASG CodeDeploy_g_d-1 not touched"));
    assert!(none.contains("group not checked"));
    let c = clause(&[
        ActionRecord::new(Step::StopDeployment, "d-1", Outcome::Done, ""),
        ActionRecord::new(Step::DeleteGreenAsg, "x", Outcome::AlreadyDone, ""),
        ActionRecord::new(Step::PointGroupAtBlue, "x", Outcome::Done, ""),
    ]);
    assert!(c.starts_with("the still-active deployment was stopped with rollback"));
    assert!(c.contains("already gone"));
    assert!(c.contains("group pointed back at blue ASG shop-blue-asg"));
    let c = clause(&[
        ActionRecord::new(Step::StopDeployment, "d-1", Outcome::Failed, "nope"),
        ActionRecord::new(Step::DeleteGreenAsg, "x", Outcome::Skipped, "why"),
        ActionRecord::new(
            Step::PointGroupAtBlue,
            "x",
            Outcome::Skipped,
            "no blue ASG known",
        ),
    ]);
    assert!(c.contains("stopping the deployment FAILED (nope)"));
    assert!(c.contains("left in place (why)"));
    assert!(c.contains("group left as it is (no blue ASG known)"));

    let explain = plan_runbook(
        FailureKind::DeploymentFailed,
        "g",
        Some("d-1"),
        Some(&view(
            DeploymentStatus::Failed,
            vec![blue("b", blue_events([F, S, S]), F)],
        )),
        &recorded_blue(),
    );
    assert!(runbook_clause(&explain, &[]).contains("green ASG CodeDeploy_g_d-1 was kept"));
    let nothing = plan_runbook(
        FailureKind::DeploymentFailed,
        "g",
        None,
        None,
        &recorded_blue(),
    );
    assert!(runbook_clause(&nothing, &[]).starts_with("nothing to undo"));
    let und = plan_runbook(
        FailureKind::DeploymentFailed,
        "g",
        Some("d-1"),
        None,
        &recorded_blue(),
    );
    assert!(runbook_clause(&und, &[]).contains("could not be read"));
}

#[test]
fn next_step_per_kind() {
    let nothing = RunbookDecision::NothingToUndo {
        reason: String::new(),
    };
    for (kind, words) in [
        (FailureKind::ValidationFailed, "failing instance answered"),
        (FailureKind::DeploymentFailed, "failing lifecycle event"),
        (FailureKind::DeadlineExceeded, "DEPLOYMENT_TIMEOUT_SECONDS"),
        (
            FailureKind::GroupBusyTimeout,
            "wait for the running deployment",
        ),
        (FailureKind::TaskFailed, "function's logs"),
    ] {
        assert!(next_step(kind, &nothing, &[]).contains(words), "{kind}");
    }
    let explain = RunbookDecision::ExplainAfterTraffic {
        green_asg: "g".into(),
        blue_asgs: vec![],
        reason: String::new(),
        next_step: "point it at green".into(),
    };
    assert_eq!(
        next_step(FailureKind::DeploymentFailed, &explain, &[]),
        "point it at green"
    );
}

#[test]
fn validation_notification_names_instance_and_answer() {
    let r = sample_report();
    let n = notification(&r);
    assert!(n
        .subject
        .starts_with("greenlight ValidationFailed: shop/shop-prod d-ABC123"));
    assert!(n.message.contains("Failing instance i-0bad at 127.0.0.2:8080 answered HTTP 500, body \"unhealthy: db down\" (4 probes, 0 consecutive successes)"), "{}", n.message);
    assert!(!n.message.contains("i-0good"));
    assert!(n.message.contains("Application / group: shop / shop-prod"));
    assert!(n.message.contains("Deployment: d-ABC123"));
    assert!(n.message.contains("Revision: 20240101120000-42 (s3://artifacts-bucket/artifacts/shop/20240101120000-42.zip version v1)"));
    assert!(n
        .message
        .contains("Started by: greenlight execution exec-1"));
    assert!(n.message.contains("Error: ValidationFailed"));
    assert!(n.message.contains("Runbook: "));
    assert!(n.message.contains("Load balancer: "));
    assert!(n.message.contains("Next step: "));
}

#[test]
fn install_failure_notification_has_diagnosis() {
    let r = install_failure_report(all_good_actions());
    let n = notification(&r);
    assert!(n
        .message
        .contains("Started by: greenlight execution exec-1 (CodePipeline job job-9)"));
    assert!(n
        .message
        .contains("CodeDeploy error: HEALTH_CONSTRAINTS: The overall deployment failed"));
    assert!(n.message.contains("Failed lifecycle event: Install"));
    assert!(n.message.contains(
        "Failed instance i-0green (Green): Install ScriptFailed [script scripts/install.sh]"
    ));
    assert!(n.message.contains("  log tail: line1 exit 1"));
    assert!(n.message.contains("Rollback deployment: d-ROLLBACK1"));
    assert!(n
        .message
        .contains("Runbook: green ASG CodeDeploy_shop-prod_d-ABC123 deleted"));
    assert!(n
        .message
        .contains("Load balancer: restored - health-check settings"));
    assert!(!n.message.contains("Steps that failed"));
}

#[test]
fn event_report_and_notification() {
    let mut v = view(
        DeploymentStatus::Failed,
        vec![green("i-x", green_events_failing_at("ApplicationStart"), F)],
    );
    v.description = Some("manual".into());
    let r = compose_report(ReportInput {
        rollback: None,
        source: ReportSource::Event {
            event_id: Some("ev-1".into()),
            state: "FAILURE".into(),
        },
        application: "shop".into(),
        deployment_group: "shop-prod".into(),
        deployment_id: Some("d-ABC123".into()),
        revision: None,
        classification: classify_event("FAILURE", &v),
        diagnosis: Some(diagnose(&v)),
        validation_evidence: vec![],
        runbook: plan_runbook(
            FailureKind::DeploymentFailed,
            "shop-prod",
            Some("d-ABC123"),
            Some(&v),
            &recorded_blue(),
        ),
        restore_source: event_restore_source(),
        actions: vec![],
        now: NOW,
    });
    let n = notification(&r);
    assert!(n
        .message
        .contains("outside the greenlight pipeline (CodeDeploy event FAILURE)"));
    assert!(!n.message.contains("Revision:"));
    assert!(n
        .message
        .contains("Load balancer: nothing to restore: no target group carries"));
    assert!(r.summary.contains("untouched (nothing to restore)"));
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["error"], "DeploymentFailed");
    assert_eq!(j["source"]["kind"], "event");
    assert_eq!(
        j["runbook"]["decision"]["action"],
        "removeGreenAndPointAtBlue"
    );
    assert!(j.get("revision").is_none());
}

#[test]
fn notification_without_deployment() {
    let mut s = bare_state();
    s.error = Some(TaskError {
        error: "GroupBusy".into(),
        cause: "busy".into(),
    });
    s.input.revision.version = None;
    s.input.revision.etag = Some("\"abc\"".into());
    let r = compose_report(ReportInput {
        rollback: None,
        source: ReportSource::Pipeline {
            execution_name: "exec-2".into(),
            codepipeline_job_id: None,
        },
        application: "shop".into(),
        deployment_group: "shop-prod".into(),
        deployment_id: None,
        revision: Some(s.input.revision.clone()),
        classification: classify_pipeline(&s),
        diagnosis: None,
        validation_evidence: vec![],
        runbook: plan_runbook(
            FailureKind::DeploymentFailed,
            "shop-prod",
            None,
            None,
            &recorded_blue(),
        ),
        restore_source: pipeline_restore_source(&s),
        actions: vec![],
        now: NOW,
    });
    assert_eq!(r.error, FailureKind::GroupBusyTimeout);
    let n = notification(&r);
    assert_eq!(n.subject, "greenlight GroupBusyTimeout: shop/shop-prod");
    assert!(n.message.contains("Deployment: (none created)"));
    assert!(n.message.contains("etag \"abc\""));
    assert!(r.summary.contains("nothing to undo"));
    assert!(r.summary.contains("next: wait for the running deployment"));
}

#[test]
fn in_progress_report_keeps_error_and_summary() {
    let s = validation_failed_state();
    let r = in_progress_report(
        ReportSource::Pipeline {
            execution_name: "exec-1".into(),
            codepipeline_job_id: None,
        },
        &s,
        classify_pipeline(&s),
        "being handled by req-1 since 3 s ago",
        NOW,
    );
    assert_eq!(r.error, FailureKind::ValidationFailed);
    assert!(r.summary.starts_with("ValidationFailed: "));
    assert!(r
        .summary
        .contains("another invocation is running the runbook: being handled by req-1"));
    assert!(r.actions.is_empty());
    assert_eq!(r.deployment_id.as_deref(), Some("d-ABC123"));
    assert_eq!(r.validation_evidence.len(), 1);
}

#[test]
fn evidence_text_variants() {
    let mut e = evidence("i-1", false);
    e.last_status = None;
    e.last_body = None;
    e.last_error = Some("connection refused\n(os error 111)".into());
    assert!(evidence_text(&e).contains("answered error \"connection refused (os error 111)\""));
    e.last_error = None;
    assert!(evidence_text(&e).contains("answered no answer"));
}

// ---- text helpers -------------------------------------------------------

#[test]
fn subject_is_ascii_and_at_most_100() {
    let s = ascii_subject("greenlight ValidationFailed: café/grüppe\nd-1\t");
    assert_eq!(s, "greenlight ValidationFailed: caf?/gr?ppe d-1");
    let long = ascii_subject(&format!("greenlight {}", "é".repeat(300)));
    assert_eq!(long.chars().count(), MAX_SUBJECT_CHARS);
    assert!(long.is_ascii() && long.ends_with("..."));
    assert_eq!(ascii_subject(" \n "), "greenlight deployment failure");
    let exact = "a".repeat(100);
    assert_eq!(ascii_subject(&exact), exact);
}

#[test]
fn subject_from_long_names_is_capped() {
    let mut r = sample_report();
    r.application = "a".repeat(100);
    let n = notification(&r);
    assert!(n.subject.len() <= MAX_SUBJECT_CHARS && n.subject.is_ascii());
}

#[test]
fn text_helpers() {
    assert_eq!(truncate_chars("abc", 3), "abc");
    assert_eq!(truncate_chars("abcdef", 5), "ab...");
    assert_eq!(truncate_chars("ééééé", 4), "é...");
    assert_eq!(keep_tail("abc", 3), "abc");
    assert_eq!(keep_tail("abcdefgh", 6), "...fgh");
    assert_eq!(one_line(" a \n b\t c "), "a b c");
    assert_eq!(trim_sentence(" Done. "), "Done");
    for (e, want) in [
        (("C", "m\nx"), "C: m x"),
        (("C", ""), "C"),
        (("", "m"), "m"),
        (("", ""), "no error information"),
    ] {
        let info = DeploymentErrorInfo {
            code: e.0.into(),
            message: e.1.into(),
        };
        assert_eq!(error_text(&info), want);
    }
}

#[test]
fn report_json_has_the_contract_fields() {
    let r = install_failure_report(all_good_actions());
    let j = serde_json::to_value(&r).unwrap();
    for field in [
        "error",
        "summary",
        "source",
        "application",
        "deploymentGroup",
        "deploymentId",
        "revision",
        "classification",
        "diagnosis",
        "runbook",
        "actions",
        "loadBalancer",
        "nextStep",
        "handledAtMs",
    ] {
        assert!(j.get(field).is_some(), "{field} missing in {j}");
    }
    assert_eq!(j["actions"][1]["step"], "deleteGreenAsg");
    assert_eq!(j["actions"][1]["outcome"], "done");
    assert_eq!(j["loadBalancer"]["state"], "restored");
    assert_eq!(j["source"]["codepipelineJobId"], "job-9");
    let back: FailureReport = serde_json::from_value(j).unwrap();
    assert_eq!(back, r);
}

// ---- issue 9: failure-path defects ------------------------------------------

#[test]
fn blue_comes_from_the_create_time_record_never_from_target_instances() {
    // targetInstances (original_auto_scaling_groups) names the REPLACEMENT
    // environment per AWS's model: the runbook must not point the group there.
    let mut v = view(
        DeploymentStatus::Failed,
        vec![green("i-1", green_events_failing_at("Install"), F)],
    );
    v.original_auto_scaling_groups = vec!["CodeDeploy_shop-prod_d-ABC123".into()];
    let recorded = vec!["shop-blue-recorded".to_string()];
    match plan_runbook(
        FailureKind::DeploymentFailed,
        "shop-prod",
        Some("d-ABC123"),
        Some(&v),
        &recorded,
    )
    .decision
    {
        RunbookDecision::RemoveGreenAndPointAtBlue { blue_asgs, .. } => {
            assert_eq!(blue_asgs, recorded)
        }
        other => panic!("{other:?}"),
    }
    match plan_runbook(
        FailureKind::DeploymentFailed,
        "shop-prod",
        Some("d-ABC123"),
        Some(&v),
        &[],
    )
    .decision
    {
        RunbookDecision::RemoveGreenAndPointAtBlue { blue_asgs, .. } => {
            assert!(blue_asgs.is_empty())
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn point_at_blue_uses_the_record_and_never_guesses() {
    let g = "CodeDeploy_shop-prod_d-ABC123";
    let rec = vec!["shop-blue".to_string()];
    assert_eq!(
        point_at_blue(&rec, &[g.to_string()], g),
        Repoint::Update {
            from: vec![g.to_string()],
            to: rec.clone()
        }
    );
    assert!(matches!(
        point_at_blue(&rec, &rec, g),
        Repoint::AlreadyThere { .. }
    ));
    // A record naming g itself is refused.
    assert!(matches!(
        point_at_blue(&[g.to_string()], &rec, g),
        Repoint::Skip { .. }
    ));
    // No record: the group pointing at g is skipped with what to do...
    match point_at_blue(&[], &[g.to_string()], g) {
        Repoint::Skip { reason } => assert!(reason.contains("by hand"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // ...a group pointing elsewhere is left as it is, and no group is skipped.
    assert!(matches!(
        point_at_blue(&[], &rec, g),
        Repoint::AlreadyThere { .. }
    ));
    assert!(matches!(point_at_blue(&[], &[], g), Repoint::Skip { .. }));
}

fn asg(name: &str, created: Option<EpochMillis>) -> AsgFacts {
    AsgFacts {
        name: name.into(),
        created_at_ms: created,
        status: None,
    }
}

/// CodeDeploy's rollback deployment has ended (the other rules decide).
const ENDED: Option<DeploymentStatus> = Some(DeploymentStatus::Succeeded);

#[test]
fn green_deletion_is_scoped_to_this_deployments_copy() {
    let g = "CodeDeploy_shop-prod_d-ABC123";
    let v = view(
        DeploymentStatus::Failed,
        vec![green("i-1", green_events_failing_at("Install"), F)],
    );
    let created = v.created_at_ms.unwrap();
    assert_eq!(
        green_deletion(g, Some(&v), Some(&asg(g, Some(created + 5_000))), ENDED),
        GreenDeletion::Delete { asg: g.into() }
    );
    assert_eq!(
        green_deletion(g, Some(&v), None, ENDED),
        GreenDeletion::Absent { asg: g.into() }
    );
    // Another application's fleet (another name), an older group with this
    // name, unknown times, an unreadable deployment: kept.
    let other = "CodeDeploy_other-app_d-OTHER";
    for (name, found, vv) in [
        (other, Some(asg(other, Some(created + 5_000))), Some(&v)),
        (g, Some(asg(g, Some(created - 1))), Some(&v)),
        (g, Some(asg(g, None)), Some(&v)),
        (g, Some(asg(g, Some(created + 5_000))), None),
    ] {
        assert!(
            matches!(
                green_deletion(name, vv, found.as_ref(), ENDED),
                GreenDeletion::Keep { .. }
            ),
            "{name} {found:?}"
        );
    }
}

#[test]
fn green_deletion_waits_for_a_terminal_deployment_and_spares_a_fleet_that_served() {
    let g = "CodeDeploy_shop-prod_d-ABC123";
    let created = NOW - 600_000;
    let found = asg(g, Some(created + 1));
    let active = view(
        DeploymentStatus::InProgress,
        vec![green("i-1", green_events_failing_at("none"), IP)],
    );
    match green_deletion(g, Some(&active), Some(&found), ENDED) {
        GreenDeletion::Keep { reason, .. } => {
            assert!(reason.contains("still InProgress"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // AllowTraffic started on g (it failed there): never force-deleted.
    let served = view(
        DeploymentStatus::Failed,
        vec![green("i-1", green_events_failing_at("AllowTraffic"), F)],
    );
    assert!(green_allow_traffic_started(&served));
    match green_deletion(g, Some(&served), Some(&found), ENDED) {
        GreenDeletion::Keep { reason, .. } => assert!(reason.contains("AllowTraffic"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let before = view(
        DeploymentStatus::Failed,
        vec![green(
            "i-1",
            green_events_failing_at("BeforeAllowTraffic"),
            F,
        )],
    );
    assert!(!green_allow_traffic_started(&before));
}

#[test]
fn orphaned_deployment_is_found_by_its_description() {
    let cands = vec![
        DeploymentSummary {
            deployment_id: "d-OTHER".into(),
            description: Some(deployment_description("exec-2")),
            created_at_ms: Some(NOW),
        },
        DeploymentSummary {
            deployment_id: "d-HAND".into(),
            description: Some("deployed by hand".into()),
            created_at_ms: Some(NOW),
        },
        DeploymentSummary {
            deployment_id: "d-MINE".into(),
            description: Some(deployment_description("exec-1")),
            created_at_ms: Some(NOW - 10),
        },
    ];
    assert_eq!(orphan_deployment("exec-1", &cands), Some("d-MINE".into()));
    assert_eq!(orphan_deployment("exec-3", &cands), None);
    // "exec-1" must not match "exec-10".
    assert_eq!(orphan_deployment("exec", &cands), None);
    let mut s = tuned_state();
    assert!(should_search_orphan(&s));
    s.deployment = created_state().deployment;
    assert!(!should_search_orphan(&s));
    assert!(!should_search_orphan(&bare_state()));
}

fn transient_state(name: &str) -> PipelineState {
    let mut s = created_state();
    s.error = Some(TaskError {
        error: name.into(),
        cause: "GetDeployment on d-ABC123 failed (ThrottlingException): Rate exceeded".into(),
    });
    s
}

#[test]
fn transient_errors_are_lost_sight_not_failure() {
    for name in [
        "AwsTransient",
        "Lambda.TooManyRequestsException",
        "Sandbox.Timedout",
        "States.Timeout",
    ] {
        let c = classify_pipeline(&transient_state(name));
        assert_eq!(c.kind, FailureKind::LostSight, "{name}");
        assert!(c.cause.contains("lost sight"), "{}", c.cause);
    }
    assert_eq!(
        classify_pipeline(&transient_state("AwsError")).kind,
        FailureKind::TaskFailed
    );
}

#[test]
fn lost_sight_never_stops_or_deletes() {
    for st in [
        DeploymentStatus::InProgress,
        DeploymentStatus::Ready,
        DeploymentStatus::Failed,
        DeploymentStatus::Succeeded,
    ] {
        let v = view(st, vec![green("i-1", green_events_failing_at("none"), IP)]);
        let p = plan_runbook(
            FailureKind::LostSight,
            "shop-prod",
            Some("d-ABC123"),
            Some(&v),
            &recorded_blue(),
        );
        assert!(!p.stop_deployment, "{st:?}");
        match p.decision {
            RunbookDecision::LeftRunning { status, reason, .. } => {
                assert_eq!(status, Some(st));
                assert!(reason.contains(status_word(st)), "{reason}");
            }
            other => panic!("{st:?}: {other:?}"),
        }
    }
    let p = plan_runbook(
        FailureKind::LostSight,
        "shop-prod",
        Some("d-ABC123"),
        None,
        &recorded_blue(),
    );
    assert!(!p.stop_deployment);
    assert!(matches!(
        p.decision,
        RunbookDecision::LeftRunning { status: None, .. }
    ));
    // The load balancer is restored only once the deployment has ended.
    let s = transient_state("AwsTransient");
    let running = view(DeploymentStatus::InProgress, vec![]);
    let ended = view(DeploymentStatus::Failed, vec![]);
    assert!(matches!(
        lost_sight_restore_source(&s, Some(&running)),
        RestoreSource::Nothing { .. }
    ));
    assert!(matches!(
        lost_sight_restore_source(&s, None),
        RestoreSource::Nothing { .. }
    ));
    assert!(matches!(
        lost_sight_restore_source(&s, Some(&ended)),
        RestoreSource::Snapshots { .. }
    ));
}

#[test]
fn lost_sight_notification_says_greenlight_lost_sight() {
    let v = view(DeploymentStatus::InProgress, vec![]);
    let s = transient_state("AwsTransient");
    let r = compose_report(ReportInput {
        rollback: None,
        source: ReportSource::Pipeline {
            execution_name: "exec-1".into(),
            codepipeline_job_id: None,
        },
        application: "shop".into(),
        deployment_group: "shop-prod".into(),
        deployment_id: Some("d-ABC123".into()),
        revision: None,
        classification: classify_pipeline(&s),
        diagnosis: Some(diagnose(&v)),
        validation_evidence: vec![],
        runbook: plan_runbook(
            FailureKind::LostSight,
            "shop-prod",
            Some("d-ABC123"),
            Some(&v),
            &recorded_blue(),
        ),
        restore_source: lost_sight_restore_source(&s, Some(&v)),
        actions: vec![],
        now: NOW,
    });
    assert_eq!(r.error, FailureKind::LostSight);
    let n = notification(&r);
    assert!(n.message.contains("LOST SIGHT"), "{}", n.message);
    assert!(n.message.contains("NOT stopped"));
    assert!(
        r.next_step.contains("watch deployment d-ABC123"),
        "{}",
        r.next_step
    );
}

#[test]
fn a_marker_claimed_in_the_future_is_stale() {
    let m = ReportMarker::InProgress {
        claimed_at_ms: NOW + 365 * 24 * 3600 * 1000,
        claimed_by: "forger".into(),
        execution: None,
    };
    match marker_decision(ExistingMarker::Found(&m), NOW, TAKEOVER_AFTER_MS) {
        MarkerDecision::TakeOver { reason } => assert!(reason.contains("future"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // Within the clock-skew allowance it is still respected.
    let m = ReportMarker::InProgress {
        claimed_at_ms: NOW + MAX_CLOCK_SKEW_MS / 2,
        claimed_by: "peer".into(),
        execution: None,
    };
    assert!(matches!(
        marker_decision(ExistingMarker::Found(&m), NOW, TAKEOVER_AFTER_MS),
        MarkerDecision::Skip { .. }
    ));
}

#[test]
fn report_stays_small_with_huge_log_tails_and_many_instances() {
    let huge = "x".repeat(200_000);
    let targets: Vec<InstanceTargetView> = (0..500)
        .map(|i| InstanceTargetView {
            instance_id: format!("i-{i:017}"),
            label: Some(FleetLabel::Green),
            status: F,
            lifecycle_events: vec![LifecycleEventView {
                name: "Install".into(),
                status: F,
                started_at_ms: None,
                ended_at_ms: None,
                diagnostics: Some(LifecycleDiagnostics {
                    error_code: "ScriptFailed".into(),
                    script_name: Some(huge.clone()),
                    message: huge.clone(),
                    log_tail: Some(huge.clone()),
                }),
            }],
        })
        .collect();
    let mut v = view(DeploymentStatus::Failed, targets);
    v.error = Some(DeploymentErrorInfo {
        code: "HEALTH_CONSTRAINTS".into(),
        message: huge.clone(),
    });
    let mut s = created_state();
    s.validation = Some(ValidationReport {
        deployment_id: "d-ABC123".into(),
        passed: false,
        summary: huge.clone(),
        action: ValidationAction::Stopped,
        instances: (0..500)
            .map(|i| InstanceEvidence {
                instance_id: format!("i-{i}"),
                address: "127.0.0.2:8080".into(),
                probes: 3,
                consecutive_successes: 0,
                last_status: Some(500),
                last_body: Some(huge.clone()),
                last_error: Some(huge.clone()),
                passed: false,
            })
            .collect(),
    });
    let actions = vec![ActionRecord::new(
        Step::DeleteGreenAsg,
        huge.clone(),
        Outcome::Failed,
        huge.clone(),
    )];
    let r = compose_report(ReportInput {
        rollback: None,
        source: ReportSource::Pipeline {
            execution_name: "exec-1".into(),
            codepipeline_job_id: None,
        },
        application: "shop".into(),
        deployment_group: "shop-prod".into(),
        deployment_id: Some("d-ABC123".into()),
        revision: None,
        classification: classify_pipeline(&s),
        diagnosis: Some(diagnose(&v)),
        validation_evidence: failing_evidence(&s),
        runbook: plan_runbook(
            FailureKind::DeploymentFailed,
            "shop-prod",
            Some("d-ABC123"),
            Some(&v),
            &recorded_blue(),
        ),
        restore_source: pipeline_restore_source(&s),
        actions,
        now: NOW,
    });
    let json = serde_json::to_string(&r).expect("serializes");
    assert!(json.len() < 32 * 1024, "report is {} bytes", json.len());
    let d = r.diagnosis.as_ref().expect("diagnosis");
    assert_eq!(d.failed_instances.len(), MAX_LISTED_INSTANCES);
    assert_eq!(d.omitted_failed_instances, 500 - MAX_LISTED_INSTANCES);
    assert!(notification(&r)
        .message
        .contains("490 more failed instance"));
    // The completed marker (report inside) stays small too.
    let marker = serde_json::to_string(&ReportMarker::Completed {
        claimed_at_ms: NOW,
        completed_at_ms: NOW,
        report: Box::new(r),
    })
    .expect("serializes");
    assert!(marker.len() < 32 * 1024);
}

fn end(status: &str, error: Option<&str>) -> ExecutionEnd {
    ExecutionEnd {
        execution_arn: "arn:aws:states:us-east-1:123456789012:execution:greenlight:exec-1".into(),
        state_machine_arn: "arn:aws:states:us-east-1:123456789012:stateMachine:greenlight".into(),
        name: "exec-1".into(),
        status: status.into(),
        error: error.map(str::to_string),
        cause: Some("boom".into()),
    }
}

#[test]
fn execution_end_disposition_handles_only_executions_that_skipped_the_failure_path() {
    let sm = Some("arn:aws:states:us-east-1:123456789012:stateMachine:greenlight");
    let dt = Some(EXECUTION_STATUS_CHANGE);
    for (status, error) in [
        ("ABORTED", None),
        ("TIMED_OUT", Some("States.Timeout")),
        ("FAILED", Some("States.DataLimitExceeded")),
        ("FAILED", Some("States.Runtime")),
        ("FAILED", Some("FailureHandlerFailed")),
    ] {
        assert_eq!(
            execution_end_disposition(dt, &end(status, error), sm),
            EventDisposition::Handle,
            "{status} {error:?}"
        );
    }
    for (status, error) in [
        ("SUCCEEDED", None),
        ("RUNNING", None),
        ("FAILED", Some("DeploymentFailed")),
        ("FAILED", Some("ValidationFailed")),
        ("FAILED", Some("LostSight")),
    ] {
        assert!(
            matches!(
                execution_end_disposition(dt, &end(status, error), sm),
                EventDisposition::Ignore { .. }
            ),
            "{status} {error:?}"
        );
    }
    assert!(matches!(
        execution_end_disposition(Some("Other"), &end("ABORTED", None), sm),
        EventDisposition::Ignore { .. }
    ));
    assert!(matches!(
        execution_end_disposition(dt, &end("ABORTED", None), Some("arn:other")),
        EventDisposition::Ignore { .. }
    ));
    assert_eq!(
        classify_execution_end(&end("ABORTED", None), "shop", "shop-prod").kind,
        FailureKind::ExecutionEnded
    );
    assert_eq!(
        classify_execution_end(
            &end("TIMED_OUT", Some("States.Timeout")),
            "shop",
            "shop-prod"
        )
        .kind,
        FailureKind::LostSight
    );
}

#[test]
fn green_deletion_never_races_codedeploys_rollback() {
    let g = "CodeDeploy_shop-prod_d-ABC123";
    let mut v = view(
        DeploymentStatus::Failed,
        vec![green("i-1", green_events_failing_at("Install"), F)],
    );
    v.rollback_deployment_id = Some("d-ROLLBACK1".into());
    let created = v.created_at_ms.unwrap();
    let found = asg(g, Some(created + 5_000));
    for running in [DeploymentStatus::Created, DeploymentStatus::InProgress] {
        match green_deletion(g, Some(&v), Some(&found), Some(running)) {
            GreenDeletion::Keep { reason, .. } => {
                assert!(reason.contains("d-ROLLBACK1"), "{reason}");
                assert!(reason.contains("still"), "{reason}");
            }
            other => panic!("deleted under a running rollback: {other:?}"),
        }
    }
    match green_deletion(g, Some(&v), Some(&found), None) {
        GreenDeletion::Keep { reason, .. } => {
            assert!(reason.contains("could not be read"), "{reason}")
        }
        other => panic!("deleted with an unknown rollback: {other:?}"),
    }
    for ended in [
        DeploymentStatus::Succeeded,
        DeploymentStatus::Failed,
        DeploymentStatus::Stopped,
    ] {
        assert_eq!(
            green_deletion(g, Some(&v), Some(&found), Some(ended)),
            GreenDeletion::Delete { asg: g.into() },
            "{ended:?}"
        );
    }
}

// ---- bake (issue 10) ----------------------------------------------------

fn bake_report(verdict: crate::bake::BakeVerdict) -> crate::bake::BakeReport {
    crate::bake::BakeReport {
        deployment_id: "d-ABC123".into(),
        verdict,
        started_at_ms: Some(NOW - 95_000),
        looked_at_ms: NOW - 5_000,
        looks: 7,
        bake_seconds: Some(300),
        wait_seconds: 0,
        evidence: Vec::new(),
        summary: "target 5xx answers 40 > limit 0 in the minute starting at 1699999920000 ms"
            .into(),
        saved_seconds: None,
        tuned: Vec::new(),
        standby: None,
        standby_note: None,
    }
}

fn bake_failed_state() -> PipelineState {
    let mut s = created_state();
    s.status = Some(status(
        DeploymentStatus::InProgress,
        Phase::Terminating,
        NextStep::Wait,
    ));
    s.bake = Some(bake_report(crate::bake::BakeVerdict::Failed));
    s
}

#[test]
fn a_failed_bake_is_bake_failed_with_its_evidence_at_the_bake_stage() {
    let c = classify_pipeline(&bake_failed_state());
    assert_eq!(c.kind, FailureKind::BakeFailed);
    assert_eq!(c.kind.as_str(), "BakeFailed");
    assert!(ALL_FAILURE_KINDS.contains(&FailureKind::BakeFailed));
    assert_eq!(c.stage, Some(PipelineStage::Bake));
    assert_eq!(
        c.cause,
        "the green fleet of deployment d-ABC123 (shop/shop-prod) failed its bake 90 s after the reroute and was rolled back to blue: target 5xx answers 40 > limit 0 in the minute starting at 1699999920000 ms"
    );
}

#[test]
fn a_bake_that_passed_or_was_not_configured_does_not_classify_as_bake_failed() {
    for verdict in [
        crate::bake::BakeVerdict::Passed,
        crate::bake::BakeVerdict::NotConfigured,
        crate::bake::BakeVerdict::Ended,
    ] {
        let mut s = bake_failed_state();
        s.bake = Some(bake_report(verdict));
        s.error = Some(TaskError {
            error: "AwsError".into(),
            cause: "x".into(),
        });
        let c = classify_pipeline(&s);
        assert_eq!(c.kind, FailureKind::TaskFailed, "{verdict:?}");
        assert_eq!(c.stage, Some(PipelineStage::Status), "{verdict:?}");
    }
    // a bake still watching when a task failed: the failing step is the bake
    let mut s = bake_failed_state();
    s.bake = Some(bake_report(crate::bake::BakeVerdict::Watching));
    s.error = Some(TaskError {
        error: "AwsError".into(),
        cause: "x".into(),
    });
    assert_eq!(failed_stage(&s), PipelineStage::Bake);
}

#[test]
fn a_transient_error_outranks_a_failed_bake() {
    let mut s = bake_failed_state();
    s.error = Some(TaskError {
        error: "AwsTransient".into(),
        cause: "GetMetricData throttled".into(),
    });
    assert_eq!(classify_pipeline(&s).kind, FailureKind::LostSight);
}

#[test]
fn a_bake_rollback_is_left_to_codedeploy_the_runbook_does_not_race_it() {
    let mut stopped = view(
        DeploymentStatus::Stopped,
        vec![
            green("i-g1", green_events_failing_at("none"), OK),
            blue("i-b1", blue_events([OK, OK, OK]), OK),
        ],
    );
    stopped.termination_wait_started = Some(true);
    let plan = plan_runbook(
        FailureKind::BakeFailed,
        "shop-prod",
        Some("d-ABC123"),
        Some(&stopped),
        &recorded_blue(),
    );
    assert!(!plan.stop_deployment);
    match &plan.decision {
        RunbookDecision::NothingToUndo { reason } => {
            assert!(
                reason.contains("rollback deployment d-ROLLBACK1"),
                "{reason}"
            );
            assert!(reason.contains("CodeDeploy_shop-prod_d-ABC123"), "{reason}");
        }
        other => panic!("expected NothingToUndo, got {other:?}"),
    }
    // still stopping: stop again (harmless) rather than leave it running
    let mut running = stopped.clone();
    running.status = DeploymentStatus::InProgress;
    running.rollback_deployment_id = None;
    let plan = plan_runbook(
        FailureKind::BakeFailed,
        "shop-prod",
        Some("d-ABC123"),
        Some(&running),
        &recorded_blue(),
    );
    assert!(plan.stop_deployment);
    // a deployment that succeeded anyway is production: nothing to undo, as always
    let mut done = stopped;
    done.status = DeploymentStatus::Succeeded;
    let plan = plan_runbook(
        FailureKind::BakeFailed,
        "shop-prod",
        Some("d-ABC123"),
        Some(&done),
        &recorded_blue(),
    );
    assert!(
        matches!(plan.decision, RunbookDecision::NothingToUndo { ref reason } if reason.contains("succeeded"))
    );
}

// ---- rollback deployments: one incident with the deployment they roll back ----

/// CodeDeploy's rollback of `view(...)` (d-ABC123), as GetDeployment shows it.
fn rollback_view(status: DeploymentStatus) -> DeploymentView {
    let mut r = view(status, vec![]);
    r.deployment_id = "d-ROLLBACK1".into();
    r.description = Some("Rollback of deployment d-ABC123".into());
    r.creator = Some(ROLLBACK_CREATOR.into());
    r.rollback_triggering_deployment_id = Some("d-ABC123".into());
    r.rollback_deployment_id = None;
    r.error = Some(DeploymentErrorInfo {
        code: "INTERNAL_ERROR".into(),
        message: "The rollback deployment failed.".into(),
    });
    r
}

#[test]
fn rollback_trigger_reads_the_creator_and_the_triggering_deployment() {
    let original = view(DeploymentStatus::Stopped, vec![]);
    assert_eq!(rollback_trigger(&original), None);
    let r = rollback_view(DeploymentStatus::Failed);
    assert_eq!(rollback_trigger(&r), Some(Some("d-ABC123".to_string())));
    // Either field alone marks a rollback.
    let mut only_creator = r.clone();
    only_creator.rollback_triggering_deployment_id = None;
    assert_eq!(rollback_trigger(&only_creator), Some(None));
    let mut only_info = r.clone();
    only_info.creator = None;
    assert_eq!(
        rollback_trigger(&only_info),
        Some(Some("d-ABC123".to_string()))
    );
    // A blank or self-referencing triggering id names no original.
    let mut blank = r.clone();
    blank.rollback_triggering_deployment_id = Some("  ".into());
    assert_eq!(rollback_trigger(&blank), Some(None));
    let mut own = original.clone();
    own.rollback_triggering_deployment_id = Some(own.deployment_id.clone());
    assert_eq!(rollback_trigger(&own), None);
}

#[test]
fn failed_rollback_of_a_pipeline_deployment_is_not_an_incident_of_its_own() {
    // Before the fold, the rollback's FAILURE event was handled as a
    // deployment started outside the pipeline: a second notification and a
    // runbook on a "green" group named after the rollback's id.
    let rollback = rollback_view(DeploymentStatus::Failed);
    assert_eq!(ownership(&rollback), Ownership::Outside);
    let original = view(DeploymentStatus::Stopped, vec![]);
    match rollback_event_fold(&rollback, Some(&original)) {
        RollbackFold::Ignore { reason } => {
            assert!(reason.contains("d-ROLLBACK1"), "{reason}");
            assert!(reason.contains("d-ABC123"), "{reason}");
            assert!(reason.contains("exec-1"), "{reason}");
        }
        other => panic!("expected Ignore, got {other:?}"),
    }
}

#[test]
fn failed_rollback_of_an_outside_deployment_folds_into_the_original() {
    let rollback = rollback_view(DeploymentStatus::Failed);
    let mut original = view(DeploymentStatus::Failed, vec![]);
    original.description = Some("manual deployment by an operator".into());
    let expected = RollbackFold::Original {
        deployment_id: "d-ABC123".into(),
    };
    assert_eq!(rollback_event_fold(&rollback, Some(&original)), expected);
    // The original could not be read: still the original's incident (its
    // marker dedupes), never the rollback's.
    assert_eq!(rollback_event_fold(&rollback, None), expected);
}

#[test]
fn deployments_that_are_not_rollbacks_are_their_own_incident() {
    let mut v = view(DeploymentStatus::Failed, vec![]);
    v.description = Some("manual".into());
    assert_eq!(rollback_event_fold(&v, None), RollbackFold::Own);
    // A rollback naming no original is reported rather than dropped.
    let mut orphan = rollback_view(DeploymentStatus::Failed);
    orphan.rollback_triggering_deployment_id = None;
    assert_eq!(rollback_event_fold(&orphan, None), RollbackFold::Own);
}

#[test]
fn failed_rollback_before_traffic_moved_says_blue_serves_and_what_to_check() {
    // Green AllowTraffic started (and failed): green may have been registered.
    let original = view(
        DeploymentStatus::Stopped,
        vec![green("i-g1", green_events_failing_at("AllowTraffic"), F)],
    );
    // Stopped at the Ready gate: green AllowTraffic never started.
    let gate = view(
        DeploymentStatus::Stopped,
        vec![green(
            "i-g1",
            LIFECYCLE_ORDER[..7]
                .iter()
                .map(|n| ev(n, OK))
                .chain(LIFECYCLE_ORDER[7..10].iter().map(|n| ev(n, S)))
                .collect(),
            S,
        )],
    );
    let rollback = rollback_view(DeploymentStatus::Failed);
    let out = rollback_outcome(&gate, Some(&rollback), &recorded_blue(), None).unwrap();
    assert!(out.failed);
    assert_eq!(out.deployment_id, "d-ROLLBACK1");
    assert_eq!(out.status, Some(DeploymentStatus::Failed));
    assert!(out.detail.contains("d-ROLLBACK1 FAILED"), "{}", out.detail);
    assert!(out.detail.contains("INTERNAL_ERROR"), "{}", out.detail);
    assert!(out.detail.contains("never registered"), "{}", out.detail);
    assert!(out.detail.contains("shop-blue-asg"), "{}", out.detail);
    assert!(out.next_step.contains("CodeDeploy_shop-prod_d-ABC123"));
    assert!(out.next_step.contains("shop-blue-asg"));

    // Green AllowTraffic had started: both fleets may be registered.
    let out = rollback_outcome(&original, Some(&rollback), &recorded_blue(), None).unwrap();
    assert!(out.failed);
    assert!(out.detail.contains("BOTH versions"), "{}", out.detail);
    assert!(out
        .next_step
        .contains("deregister the instances of CodeDeploy_shop-prod_d-ABC123"));
    // Without a record of blue, the report does not guess its name.
    let out = rollback_outcome(&gate, Some(&rollback), &[], None).unwrap();
    assert!(out.detail.contains("the original Auto Scaling group"));

    // The bake switched the listener to its standby and it was not put
    // back: blue serves alone there, so the report says so, not BOTH.
    let standby = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-standby/1";
    let out =
        rollback_outcome(&original, Some(&rollback), &recorded_blue(), Some(standby)).unwrap();
    assert!(out.failed);
    assert!(!out.detail.contains("BOTH"), "{}", out.detail);
    assert!(
        out.detail.contains(&format!(
            "standby target group {standby}, where the blue fleet (ASG shop-blue-asg) serves alone"
        )),
        "{}",
        out.detail
    );
    assert!(
        out.next_step
            .contains("put the listener back (the LISTENER NOT PUT BACK commands)"),
        "{}",
        out.next_step
    );
    assert!(
        out.next_step
            .contains("deregister the instances of CodeDeploy_shop-prod_d-ABC123"),
        "{}",
        out.next_step
    );
}

#[test]
fn rollback_outcome_when_it_succeeded_runs_or_cannot_be_read() {
    let original = view(DeploymentStatus::Stopped, vec![]);
    let ok = rollback_outcome(
        &original,
        Some(&rollback_view(DeploymentStatus::Succeeded)),
        &recorded_blue(),
        None,
    )
    .unwrap();
    assert!(!ok.failed);
    assert!(ok.next_step.is_empty());
    assert!(ok.detail.contains("succeeded"));
    let running = rollback_outcome(
        &original,
        Some(&rollback_view(DeploymentStatus::InProgress)),
        &recorded_blue(),
        None,
    )
    .unwrap();
    assert!(!running.failed);
    assert!(running.detail.contains("still InProgress"));
    assert!(running
        .next_step
        .starts_with("watch rollback deployment d-ROLLBACK1"));
    let unread = rollback_outcome(&original, None, &recorded_blue(), None).unwrap();
    assert!(!unread.failed);
    assert_eq!(unread.status, None);
    assert!(unread.detail.contains("could not be read"));
    let mut none = original.clone();
    none.rollback_deployment_id = None;
    assert_eq!(rollback_outcome(&none, None, &recorded_blue(), None), None);
}

#[test]
fn one_report_says_the_deployment_failed_and_its_rollback_failed() {
    let s = validation_failed_state();
    let v = view(DeploymentStatus::Stopped, vec![]);
    let rollback = rollback_outcome(
        &v,
        Some(&rollback_view(DeploymentStatus::Failed)),
        &recorded_blue(),
        None,
    );
    let r = compose_report(ReportInput {
        rollback,
        source: ReportSource::Pipeline {
            execution_name: "exec-1".into(),
            codepipeline_job_id: None,
        },
        application: "shop".into(),
        deployment_group: "shop-prod".into(),
        deployment_id: Some("d-ABC123".into()),
        revision: Some(s.input.revision.clone()),
        classification: classify_pipeline(&s),
        diagnosis: Some(diagnose(&v)),
        validation_evidence: failing_evidence(&s),
        runbook: plan_runbook(
            FailureKind::ValidationFailed,
            "shop-prod",
            Some("d-ABC123"),
            Some(&v),
            &recorded_blue(),
        ),
        restore_source: pipeline_restore_source(&s),
        actions: vec![],
        now: NOW,
    });
    assert_eq!(r.error, FailureKind::ValidationFailed);
    assert!(
        r.summary.contains("rollback deployment d-ROLLBACK1 FAILED"),
        "{}",
        r.summary
    );
    assert!(r.next_step.starts_with("the rollback failed, so by hand"));
    let n = notification(&r);
    assert!(n.subject.contains("rollback FAILED"), "{}", n.subject);
    assert!(n.subject.contains("d-ABC123"));
    assert!(n.subject.len() <= MAX_SUBJECT_CHARS);
    assert!(n
        .message
        .contains("Rollback: CodeDeploy's rollback deployment d-ROLLBACK1 FAILED"));
    assert!(n.message.contains("shop-blue-asg"));
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["rollback"]["failed"], true);
    // Old reports (no rollback field) still parse.
    let mut old = j.clone();
    old.as_object_mut().unwrap().remove("rollback");
    let back: FailureReport = serde_json::from_value(old).unwrap();
    assert_eq!(back.rollback, None);
}

#[test]
fn resumed_scaling_and_its_scale_event_show_in_the_notification() {
    let mut actions = all_good_actions();
    actions.push(ActionRecord::new(
        Step::ResumeScaling,
        "shop-blue-asg",
        Outcome::Done,
        "resumed Launch, Terminate; Auto Scaling group shop-blue-asg was asked to scale while the deployment held it: desired capacity 2 -> 3, instances 2 -> 2",
    ));
    actions.push(ActionRecord::new(
        Step::ResumeScaling,
        "exec-1",
        Outcome::Failed,
        "AccessDenied",
    ));
    let r = install_failure_report(actions);
    let n = notification(&r);
    assert!(n.message.contains("Scaling (shop-blue-asg): resumed Launch, Terminate; Auto Scaling group shop-blue-asg was asked to scale"), "{}", n.message);
    // A failed resume is a step that failed, not a "Scaling" line.
    assert!(!n.message.contains("Scaling (exec-1)"), "{}", n.message);
    assert!(
        n.message.contains("ResumeScaling exec-1: AccessDenied"),
        "{}",
        n.message
    );
    assert!(
        r.next_step.contains("ResumeScaling on exec-1"),
        "{}",
        r.next_step
    );
}

fn awaiting_approval_state(error: &str, cause: &str) -> PipelineState {
    let mut s = created_state();
    s.input.approval = Some(crate::options::ApprovalRequest {
        requested_by: crate::options::RequestedBy::GroupDefault,
        deadline_seconds: 600,
    });
    s.status = Some(status(
        DeploymentStatus::Ready,
        Phase::ReadyWait,
        NextStep::Validate,
    ));
    s.validation = Some(ValidationReport {
        deployment_id: "d-ABC123".into(),
        passed: true,
        summary: "all green instances passed".into(),
        instances: vec![evidence("i-0good", true)],
        action: ValidationAction::AwaitingApproval,
    });
    s.approval_error = Some(TaskError {
        error: error.into(),
        cause: cause.into(),
    });
    s
}

#[test]
fn a_rejected_approval_is_approval_rejected_naming_who_rejected() {
    let s = awaiting_approval_state(
        crate::approval::REJECTED_ERROR,
        "rejected by bob: not during the sale",
    );
    let c = classify_pipeline(&s);
    assert_eq!(c.kind, FailureKind::ApprovalRejected);
    assert_eq!(c.stage, Some(PipelineStage::AwaitApproval));
    assert!(
        c.cause.contains("rejected by bob: not during the sale"),
        "{}",
        c.cause
    );
    assert!(c.cause.contains("d-ABC123"), "{}", c.cause);
    assert!(ALL_FAILURE_KINDS.contains(&FailureKind::ApprovalRejected));
    assert_eq!(FailureKind::ApprovalRejected.as_str(), "ApprovalRejected");
}

#[test]
fn an_approval_deadline_is_a_rejection_not_a_lost_sight_of_aws() {
    // States.Timeout is transient for every other task; at AwaitApproval it
    // is the human's deadline, and the deployment must be stopped.
    let s = awaiting_approval_state(crate::approval::DEADLINE_ERROR, "");
    let c = classify_pipeline(&s);
    assert_eq!(c.kind, FailureKind::ApprovalRejected);
    assert!(
        c.cause
            .contains("nobody approved it within the 600 s approval deadline"),
        "{}",
        c.cause
    );
    // The runbook then stops the deployment waiting in Ready (blue serves).
    let ready = view(
        DeploymentStatus::Ready,
        vec![
            green("i-g1", green_events_failing_at("none"), OK),
            blue("i-b1", Vec::new(), OK),
        ],
    );
    let plan = plan_runbook(
        c.kind,
        "shop-prod",
        Some("d-ABC123"),
        Some(&ready),
        &recorded_blue(),
    );
    assert!(plan.stop_deployment, "{plan:?}");
}

// ---- listener not put back: every command whole --------------------------

#[test]
fn listener_not_put_back_keeps_every_command_whole_and_cuts_only_the_reason() {
    let commands = vec![
        format!(
            "aws elbv2 modify-listener --listener-arn arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/0123456789abcdef/fedcba9876543210 --default-actions '[{{\"Type\":\"forward\",\"TargetGroupArn\":\"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-tg/0123456789abcdef\"}}]'"
        ),
        format!(
            "aws elbv2 deregister-targets --target-group-arn arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-standby/0123456789abcdef --targets {}",
            (0..10)
                .map(|i| format!("Id=i-0000000000000000{i},Port=8080"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    ];
    let reason = "blue keeps serving through the standby target group: ".to_string()
        + &"blue i-0123456789abcdef0:8080 is not registered in the main target group; ".repeat(10);
    let a = listener_not_put_back("arn:listener", &reason, &commands);
    assert_eq!(a.step, Step::RestoreListener);
    assert_eq!(a.outcome, Outcome::Failed);
    assert!(
        a.detail
            .starts_with("LISTENER NOT PUT BACK: blue keeps serving"),
        "{}",
        a.detail
    );
    assert!(
        a.detail.ends_with(&format!(
            ". Once blue is healthy in the target group and green is out, run: {}",
            commands.join(" && ")
        )),
        "{}",
        a.detail
    );
    // The reason was cut (with "..."), to its floor here: the commands alone
    // are longer than the detail limit.
    let head = a.detail.split(". Once blue").next().unwrap_or_default();
    assert_eq!(head.chars().count(), MIN_LISTENER_REASON_CHARS, "{head}");
    assert!(head.ends_with("..."));
    assert!(a.detail.chars().count() > MAX_ACTION_DETAIL_CHARS);
    // A short one is whole and within the limit.
    let short = listener_not_put_back("t", "blue is unhealthy", &["aws elbv2 x".to_string()]);
    assert_eq!(
        short.detail,
        "LISTENER NOT PUT BACK: blue is unhealthy. Once blue is healthy in the target group and green is out, run: aws elbv2 x"
    );
    // A reason that fits with room to spare is not cut.
    let fits = listener_not_put_back("t", &"r".repeat(300), &["aws elbv2 x".to_string()]);
    assert!(fits.detail.contains(&"r".repeat(300)));
}
