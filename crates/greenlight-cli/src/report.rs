//! Pure: what `status`, `wait`, `watch` and `deploy` print, built from the
//! execution, the deployment and the predictions, and rendered for humans
//! (plain lines, or progress bars on a terminal) or as JSON.

use greenlight_core::trigger::ExecutionStatus;
use greenlight_core::watch::{ledger, phase_of, Predictions};
use greenlight_core::{
    DeploymentView, EpochMillis, FleetLabel, LifecycleEventView, LifecycleStatus, Phase,
};
use serde::Serialize;

use crate::outcome::{outcome_of, superseded_by, Outcome};

/// The execution part of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionInfo {
    pub name: String,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
}

/// Step Functions' name for a status, with its error and cause.
pub fn execution_info(name: &str, status: &ExecutionStatus) -> ExecutionInfo {
    let (status_name, error, cause, output) = match status {
        ExecutionStatus::Running => ("RUNNING".to_string(), None, None, None),
        ExecutionStatus::PendingRedrive => ("PENDING_REDRIVE".to_string(), None, None, None),
        ExecutionStatus::Succeeded { output } => {
            ("SUCCEEDED".to_string(), None, None, output.as_deref())
        }
        ExecutionStatus::Failed { error, cause } => {
            ("FAILED".to_string(), error.clone(), cause.clone(), None)
        }
        ExecutionStatus::TimedOut { error, cause } => {
            ("TIMED_OUT".to_string(), error.clone(), cause.clone(), None)
        }
        ExecutionStatus::Aborted { error, cause } => {
            ("ABORTED".to_string(), error.clone(), cause.clone(), None)
        }
        ExecutionStatus::Unknown(s) => (s.clone(), None, None, None),
    };
    ExecutionInfo {
        name: name.to_string(),
        status: status_name,
        error,
        cause,
        superseded_by: superseded_by(output),
    }
}

/// One phase of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseRow {
    pub phase: Phase,
    /// Ended (`true`) or still running.
    pub done: bool,
    /// Seconds so far (to `now` while running), one decimal.
    pub actual_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted_seconds: Option<u32>,
}

/// One instance and the lifecycle event it is at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceRow {
    pub instance_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetLabel>,
    pub status: LifecycleStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_status: Option<LifecycleStatus>,
    /// The failed event's diagnostics: script, error code, message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostic: Option<String>,
}

/// Everything `status` says about one deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub outcome: Outcome,
    pub exit_code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    pub phases: Vec<PhaseRow>,
    pub instances: Vec<InstanceRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_deployment_id: Option<String>,
    /// The gate's verdict and per-instance probe evidence, once the traffic
    /// validator has answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<greenlight_core::ValidationReport>,
}

/// What one look found.
#[derive(Debug, Clone, Default)]
pub struct Look {
    /// The execution's name and status.
    pub execution: Option<(String, ExecutionStatus)>,
    pub application: Option<String>,
    pub deployment_group: Option<String>,
    /// The revision label (from the execution input).
    pub revision: Option<String>,
    pub deployment: Option<DeploymentView>,
    /// The traffic validator's report, from the execution's state.
    pub validation: Option<greenlight_core::ValidationReport>,
}

/// The event an instance is at: the one in progress, else the first failed,
/// else the last that ran, else the first pending.
pub fn current_event(events: &[LifecycleEventView]) -> Option<&LifecycleEventView> {
    events
        .iter()
        .find(|e| e.status == LifecycleStatus::InProgress)
        .or_else(|| events.iter().find(|e| e.status == LifecycleStatus::Failed))
        .or_else(|| {
            events.iter().rev().find(|e| {
                e.status == LifecycleStatus::Succeeded
                    || (e.status == LifecycleStatus::Skipped && e.started_at_ms.is_some())
            })
        })
        .or_else(|| events.first())
}

fn seconds(from: EpochMillis, to: EpochMillis) -> f64 {
    ((to - from).max(0) as f64 / 100.0).round() / 10.0
}

fn status_name(s: greenlight_core::DeploymentStatus) -> String {
    greenlight_core::watch::status_name(s).to_string()
}

/// Builds the report of `look` at `now_ms` with `predictions`.
pub fn build_report(look: &Look, predictions: &Predictions, now_ms: EpochMillis) -> Report {
    let outcome = outcome_of(
        look.execution.as_ref().map(|(_, s)| s),
        look.deployment.as_ref(),
    );
    let dep = look.deployment.as_ref();
    let phases = dep
        .map(|d| {
            ledger(d, predictions)
                .into_iter()
                .map(|row| PhaseRow {
                    phase: row.phase,
                    done: row.ended_at_ms.is_some(),
                    actual_seconds: seconds(row.started_at_ms, row.ended_at_ms.unwrap_or(now_ms)),
                    predicted_seconds: row.predicted_seconds,
                })
                .collect()
        })
        .unwrap_or_default();
    let instances = dep
        .map(|d| {
            d.targets
                .iter()
                .map(|t| {
                    let ev = current_event(&t.lifecycle_events);
                    InstanceRow {
                        instance_id: t.instance_id.clone(),
                        fleet: t.label,
                        status: t.status,
                        event: ev.map(|e| e.name.clone()),
                        event_status: ev.map(|e| e.status),
                        diagnostic: ev
                            .filter(|e| e.status == LifecycleStatus::Failed)
                            .and_then(|e| e.diagnostics.as_ref())
                            .map(|x| {
                                let script = x
                                    .script_name
                                    .as_deref()
                                    .map(|s| format!("{s}: "))
                                    .unwrap_or_default();
                                format!("{script}{} {}", x.error_code, x.message)
                            }),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Report {
        outcome,
        exit_code: outcome.exit_code(),
        execution: look
            .execution
            .as_ref()
            .map(|(name, status)| execution_info(name, status)),
        deployment_id: dep.map(|d| d.deployment_id.clone()),
        application: look
            .application
            .clone()
            .or_else(|| dep.map(|d| d.application.clone())),
        deployment_group: look
            .deployment_group
            .clone()
            .or_else(|| dep.map(|d| d.deployment_group.clone())),
        revision: look.revision.clone(),
        deployment_status: dep.map(|d| status_name(d.status)),
        phase: dep.map(phase_of),
        phases,
        instances,
        error: dep
            .and_then(|d| d.error.as_ref())
            .map(|e| format!("{}: {}", e.code, e.message)),
        rollback_deployment_id: dep.and_then(|d| d.rollback_deployment_id.clone()),
        validation: look.validation.clone(),
    }
}

/// Reads the phases' actual seconds in the endpoint's own seconds: the local
/// cloud runs `time_scale` real seconds per AWS second (README, "Time
/// scale"), so its durations are divided by it to compare with predictions
/// made in AWS seconds. A scale of 1 (AWS) or anything not positive changes nothing.
pub fn scale_report(mut report: Report, time_scale: f64) -> Report {
    if time_scale > 0.0 && (time_scale - 1.0).abs() > f64::EPSILON {
        for row in &mut report.phases {
            row.actual_seconds = (row.actual_seconds / time_scale * 10.0).round() / 10.0;
        }
    }
    report
}

/// A progress bar of `width` cells: `actual` against `predicted`; past the
/// prediction the bar is full and marked `!`.
pub fn bar(actual: f64, predicted: Option<u32>, width: usize) -> String {
    let Some(p) = predicted.filter(|p| *p > 0) else {
        return format!("[{}]", "?".repeat(width));
    };
    let ratio = actual / f64::from(p);
    let filled = ((ratio.min(1.0)) * width as f64).round() as usize;
    let over = if ratio > 1.0 { "!" } else { "" };
    format!(
        "[{}{}]{over}",
        "#".repeat(filled),
        "-".repeat(width - filled.min(width))
    )
}

fn lifecycle_name(s: LifecycleStatus) -> &'static str {
    match s {
        LifecycleStatus::Pending => "Pending",
        LifecycleStatus::InProgress => "InProgress",
        LifecycleStatus::Succeeded => "Succeeded",
        LifecycleStatus::Failed => "Failed",
        LifecycleStatus::Skipped => "Skipped",
        LifecycleStatus::Unknown => "Unknown",
    }
}

fn fleet_name(f: Option<FleetLabel>) -> &'static str {
    match f {
        Some(FleetLabel::Blue) => "blue",
        Some(FleetLabel::Green) => "green",
        None => "-",
    }
}

/// The human report: header, the phase table (with bars when `bars`), the
/// instances, the error and the outcome.
pub fn render(report: &Report, bars: bool) -> String {
    let mut out = String::new();
    let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".to_string());
    out.push_str(&format!(
        "deployment {}  {}/{}  revision {}\n",
        dash(&report.deployment_id),
        dash(&report.application),
        dash(&report.deployment_group),
        dash(&report.revision)
    ));
    if let Some(e) = &report.execution {
        out.push_str(&format!("execution  {}  {}", e.name, e.status));
        if let Some(err) = &e.error {
            out.push_str(&format!("  error {err}"));
        }
        out.push('\n');
        if let Some(by) = &e.superseded_by {
            out.push_str(&format!("superseded by {by}\n"));
        }
        if let Some(cause) = e.cause.as_deref().filter(|c| !c.is_empty()) {
            out.push_str(&format!("cause      {cause}\n"));
        }
    }
    if let (Some(s), Some(p)) = (&report.deployment_status, report.phase) {
        out.push_str(&format!("status     {s}  phase {p:?}\n"));
    }
    if !report.phases.is_empty() {
        out.push_str(&format!(
            "{:<14}{:>10}{:>11}\n",
            "phase", "actual", "predicted"
        ));
        for row in &report.phases {
            let predicted = row
                .predicted_seconds
                .map(|p| format!("{p}s"))
                .unwrap_or_else(|| "-".into());
            let state = if row.done { "done" } else { "running" };
            let line = format!(
                "{:<14}{:>9.1}s{:>11}  {state:<7}",
                format!("{:?}", row.phase),
                row.actual_seconds,
                predicted
            );
            if bars {
                out.push_str(&format!(
                    "{line} {}\n",
                    bar(row.actual_seconds, row.predicted_seconds, 20)
                ));
            } else {
                out.push_str(&format!("{}\n", line.trim_end()));
            }
        }
    }
    if !report.instances.is_empty() {
        out.push_str("instances\n");
        for i in &report.instances {
            out.push_str(&format!(
                "  {:<22}{:<6} {}",
                i.instance_id,
                fleet_name(i.fleet),
                i.event.as_deref().unwrap_or("-")
            ));
            if let Some(s) = i.event_status {
                out.push_str(&format!(" ({})", lifecycle_name(s)));
            }
            if let Some(d) = &i.diagnostic {
                out.push_str(&format!("  {d}"));
            }
            out.push('\n');
        }
    }
    if let Some(v) = &report.validation {
        out.push_str(&format!(
            "gate       {}: {}\n",
            if v.passed { "passed" } else { "failed" },
            v.summary
        ));
        for i in &v.instances {
            out.push_str(&format!("  {}\n", probe_line(i)));
        }
    }
    if let Some(e) = &report.error {
        out.push_str(&format!("error      {e}\n"));
    }
    if let Some(rb) = &report.rollback_deployment_id {
        out.push_str(&format!("rollback   {rb}\n"));
    }
    out.push_str(&format!(
        "outcome    {} (exit {})\n",
        report.outcome.describe(),
        report.exit_code
    ));
    out
}

/// One instance's probe evidence on one line.
pub fn probe_line(i: &greenlight_core::InstanceEvidence) -> String {
    let last = match (&i.last_error, i.last_status) {
        (Some(e), _) => e.clone(),
        (None, Some(s)) => format!(
            "HTTP {s}{}",
            i.last_body
                .as_deref()
                .filter(|b| !b.is_empty() && !i.passed)
                .map(|b| format!(" {b:?}"))
                .unwrap_or_default()
        ),
        (None, None) => "no answer".to_string(),
    };
    format!(
        "probe {:<22}{} {}: {} probes, {} consecutive successes, last {last}",
        i.instance_id,
        i.address,
        if i.passed { "passed" } else { "FAILED" },
        i.probes,
        i.consecutive_successes
    )
}

/// One plain progress line (`watch` when stdout is not a terminal): the
/// phase with its time against the prediction, and each instance's event.
pub fn progress_line(report: &Report) -> String {
    let mut parts = Vec::new();
    if let Some(e) = &report.execution {
        parts.push(format!("execution {}", e.status));
    }
    if let Some(s) = &report.deployment_status {
        parts.push(format!("deployment {s}"));
    }
    if let Some(row) = report.phases.last() {
        let predicted = row
            .predicted_seconds
            .map(|p| format!("{p}s"))
            .unwrap_or_else(|| "?".into());
        parts.push(format!(
            "{:?} {:.1}s/{predicted}",
            row.phase, row.actual_seconds
        ));
    }
    let events: Vec<String> = report
        .instances
        .iter()
        .map(|i| {
            format!(
                "{} {} {}",
                i.instance_id,
                i.event.as_deref().unwrap_or("-"),
                i.event_status.map(lifecycle_name).unwrap_or("-")
            )
        })
        .collect();
    if !events.is_empty() {
        parts.push(events.join(", "));
    }
    if let Some(v) = &report.validation {
        parts.push(format!(
            "gate {}",
            if v.passed { "passed" } else { "failed" }
        ));
    }
    parts.join(" | ")
}

/// What changed enough between two looks to print a new plain line: the
/// execution or deployment status, the phase, or any instance's event.
pub fn progress_key(report: &Report) -> String {
    format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}",
        report.validation.as_ref().map(|v| v.passed),
        report.execution.as_ref().map(|e| &e.status),
        report.deployment_status,
        report.phase,
        report
            .instances
            .iter()
            .map(|i| (&i.instance_id, &i.event, i.event_status))
            .collect::<Vec<_>>()
    )
}

/// `history --html`: the same deployments on greenlight's timeline page
/// (`greenlight_core::page`, the local cloud's live page template), with
/// their reports embedded, so the file needs no network.
pub fn history_html(app: &str, group: &str, reports: &[Report], now_ms: EpochMillis) -> String {
    let deployments: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| serde_json::to_value(r).unwrap_or(serde_json::Value::Null))
        .collect();
    greenlight_core::page::static_html(&serde_json::json!({
        "title": format!("greenlight history: {app}/{group}"),
        "live": false,
        "generatedAtMs": now_ms,
        "deployments": deployments,
    }))
}

/// `history`: one block per deployment, newest first: id, revision,
/// result, then each phase's actual against its predicted seconds.
pub fn render_history(reports: &[Report]) -> String {
    let mut out = String::new();
    for r in reports {
        let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".to_string());
        out.push_str(&format!(
            "{}  revision {}  {}  {}\n",
            dash(&r.deployment_id),
            dash(&r.revision),
            dash(&r.deployment_status),
            r.outcome.describe()
        ));
        let phases: Vec<String> = r
            .phases
            .iter()
            .map(|p| {
                let predicted = p
                    .predicted_seconds
                    .map(|s| format!("{s}s"))
                    .unwrap_or_else(|| "?".into());
                format!("{:?} {:.1}s/{predicted}", p.phase, p.actual_seconds)
            })
            .collect();
        if !phases.is_empty() {
            out.push_str(&format!("  {}\n", phases.join(", ")));
        }
        if let Some(e) = &r.error {
            out.push_str(&format!("  error {e}\n"));
        }
    }
    out
}

/// `logs`: the failure report as text (summary, diagnosis, what was done,
/// next step), or that the failure is still being handled.
pub fn render_marker(marker: &greenlight_core::runbook::ReportMarker) -> String {
    use greenlight_core::runbook::ReportMarker;
    match marker {
        ReportMarker::InProgress { claimed_by, .. } => {
            format!("the failure is being handled ({claimed_by}); look again in a minute\n")
        }
        ReportMarker::Completed { report, .. } => {
            let json = |v: &dyn erased::Ser| v.text();
            let mut out = format!("{}\n", report.summary);
            if let Some(d) = &report.deployment_id {
                out.push_str(&format!(
                    "deployment {d}  {}/{}\n",
                    report.application, report.deployment_group
                ));
            }
            for e in &report.validation_evidence {
                out.push_str(&format!(
                    "  probe {} {}: {}\n",
                    e.instance_id,
                    e.address,
                    if e.passed {
                        "passed".to_string()
                    } else {
                        e.last_error
                            .clone()
                            .or_else(|| {
                                e.last_status.map(|s| {
                                    format!("HTTP {s} {}", e.last_body.clone().unwrap_or_default())
                                })
                            })
                            .unwrap_or_else(|| "failed".into())
                    }
                ));
            }
            out.push_str("actions\n");
            for a in &report.actions {
                out.push_str(&format!(
                    "  {} {} {}: {}\n",
                    json(&a.step),
                    json(&a.outcome),
                    a.target,
                    a.detail
                ));
            }
            out.push_str(&format!("next step: {}\n", report.next_step));
            out
        }
    }
}

/// `plan`: each check (PASS / FAIL / ?, with its fix), then each phase's
/// prediction with the current settings and with greenlight's profile.
pub fn render_plan(
    application: &str,
    group: &str,
    config: &str,
    instances: u32,
    checks: &[greenlight_core::plan::Check],
    phases: &[greenlight_core::plan::PhasePlan],
) -> String {
    use greenlight_core::plan::CheckStatus;
    let mut out = format!("plan for {application}/{group} ({config}, {instances} instances)\n");
    for c in checks {
        let mark = match c.status {
            CheckStatus::Pass => "PASS",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Unknown => "  ? ",
        };
        out.push_str(&format!("{mark}  {}: {}\n", c.name, c.detail));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("      fix: {fix}\n"));
        }
    }
    out.push_str(&format!(
        "{:<14}{:>10}{:>12}\n",
        "phase", "current", "greenlight"
    ));
    let (mut now, mut tuned) = (0u32, 0u32);
    for p in phases {
        now = now.saturating_add(p.current_seconds);
        tuned = tuned.saturating_add(p.profile_seconds);
        out.push_str(&format!(
            "{:<14}{:>9}s{:>11}s\n",
            format!("{:?}", p.phase),
            p.current_seconds,
            p.profile_seconds
        ));
    }
    out.push_str(&format!("{:<14}{:>9}s{:>11}s\n", "total", now, tuned));
    out
}

/// Serde values as their bare JSON text (enum names without quotes).
mod erased {
    pub trait Ser {
        fn text(&self) -> String;
    }
    impl<T: serde::Serialize> Ser for T {
        fn text(&self) -> String {
            serde_json::to_string(self)
                .unwrap_or_default()
                .trim_matches('"')
                .to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_report_reads_local_seconds_as_aws_seconds() {
        let mut r = build_report(&Look::default(), &Predictions::default(), 0);
        r.phases.push(PhaseRow {
            phase: Phase::Installing,
            done: true,
            actual_seconds: 1.5,
            predicted_seconds: Some(90),
        });
        assert_eq!(scale_report(r.clone(), 0.1).phases[0].actual_seconds, 15.0);
        assert_eq!(scale_report(r.clone(), 1.0).phases[0].actual_seconds, 1.5);
        assert_eq!(scale_report(r, 0.0).phases[0].actual_seconds, 1.5);
    }

    #[test]
    fn bar_fills_against_the_prediction() {
        assert_eq!(bar(0.0, Some(10), 10), "[----------]");
        assert_eq!(bar(5.0, Some(10), 10), "[#####-----]");
        assert_eq!(bar(10.0, Some(10), 10), "[##########]");
        assert_eq!(bar(30.0, Some(10), 10), "[##########]!");
        assert_eq!(bar(3.0, None, 4), "[????]");
        assert_eq!(bar(3.0, Some(0), 4), "[????]");
    }

    fn ev(name: &str, status: LifecycleStatus, started: Option<i64>) -> LifecycleEventView {
        LifecycleEventView {
            name: name.into(),
            status,
            started_at_ms: started,
            ended_at_ms: None,
            diagnostics: None,
        }
    }

    #[test]
    fn current_event_prefers_in_progress_then_failed_then_last_ran() {
        use LifecycleStatus::*;
        let running = [
            ev("A", Succeeded, Some(1)),
            ev("B", InProgress, Some(2)),
            ev("C", Pending, None),
        ];
        assert_eq!(current_event(&running).map(|e| e.name.as_str()), Some("B"));
        let failed = [ev("A", Succeeded, Some(1)), ev("B", Failed, Some(2))];
        assert_eq!(current_event(&failed).map(|e| e.name.as_str()), Some("B"));
        let done = [
            ev("A", Succeeded, Some(1)),
            ev("B", Succeeded, Some(2)),
            ev("C", Skipped, None),
        ];
        assert_eq!(current_event(&done).map(|e| e.name.as_str()), Some("B"));
        let pending = [ev("A", Pending, None), ev("B", Pending, None)];
        assert_eq!(current_event(&pending).map(|e| e.name.as_str()), Some("A"));
        assert_eq!(current_event(&[]), None);
    }

    #[test]
    fn execution_info_names_status_error_and_supersede() {
        let i = execution_info(
            "gl-a",
            &ExecutionStatus::Failed {
                error: Some("ValidationFailed".into()),
                cause: Some("c".into()),
            },
        );
        assert_eq!(i.status, "FAILED");
        assert_eq!(i.error.as_deref(), Some("ValidationFailed"));
        let s = execution_info(
            "gl-a",
            &ExecutionStatus::Succeeded {
                output: Some(
                    r#"{"admission":{"decision":"superseded","byExecution":"gl-b"}}"#.into(),
                ),
            },
        );
        assert_eq!(s.superseded_by.as_deref(), Some("gl-b"));
    }

    #[test]
    fn empty_look_is_in_progress_with_no_rows() {
        let r = build_report(&Look::default(), &Predictions::default(), 0);
        assert_eq!(r.outcome, Outcome::InProgress);
        assert!(r.phases.is_empty() && r.instances.is_empty());
        assert!(render(&r, false).contains("outcome    in progress (exit 8)"));
        assert_eq!(progress_line(&r), "");
    }
}
