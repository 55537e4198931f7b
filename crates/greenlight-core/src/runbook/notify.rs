//! The one SNS notification ([`notification`]) and the text helpers.

use super::*;

/// SNS limits a subject to 100 printable ASCII characters.
pub const MAX_SUBJECT_CHARS: usize = 100;

/// An SNS notification: human text (`subject`, `message`), a JSON body for
/// programs, and what subscribers filter on (`outcome`, `application`,
/// `deployment_group`: SNS message attributes). [`crate::announce`] turns
/// it into the Publish request's parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub subject: String,
    pub message: String,
    pub outcome: crate::metrics::DeploymentOutcome,
    pub application: String,
    pub deployment_group: String,
    pub body: serde_json::Value,
}

/// The one notification for a report: subject ≤ 100 printable ASCII
/// characters; the message names the deployment, application/group,
/// revision, error, failing instances and what they answered, the runbook
/// action, and whether the load balancer was restored.
pub fn notification(report: &FailureReport) -> Notification {
    let target = match &report.deployment_id {
        Some(id) => format!(" {id}"),
        None => String::new(),
    };
    let rollback_failed = if report.rollback.as_ref().is_some_and(|r| r.failed) {
        " and rollback FAILED"
    } else {
        ""
    };
    let subject = ascii_subject(&format!(
        "greenlight {}{rollback_failed}: {}/{}{}",
        report.error, report.application, report.deployment_group, target
    ));

    let mut m = String::new();
    let mut line = |s: String| {
        m.push_str(&s);
        m.push('\n');
    };
    if report.error == FailureKind::LostSight {
        line("greenlight LOST SIGHT of this deployment: it could not read or write AWS, so it stopped supervising. The deployment was NOT stopped; watch it yourself (next step below).".to_string());
    } else {
        line(format!("greenlight: deployment failure ({})", report.error));
    }
    line(String::new());
    line(report.summary.clone());
    line(String::new());
    line(format!(
        "Application / group: {} / {}",
        report.application, report.deployment_group
    ));
    line(format!(
        "Deployment: {}",
        report.deployment_id.as_deref().unwrap_or("(none created)")
    ));
    match &report.source {
        ReportSource::Pipeline {
            execution_name,
            codepipeline_job_id,
        } => {
            let job = codepipeline_job_id
                .as_ref()
                .map(|j| format!(" (CodePipeline job {j})"))
                .unwrap_or_default();
            line(format!(
                "Started by: greenlight execution {execution_name}{job}"
            ));
        }
        ReportSource::Event { state, .. } => line(format!(
            "Started by: outside the greenlight pipeline (CodeDeploy event {state})"
        )),
        ReportSource::Execution {
            execution_name,
            status,
        } => line(format!(
            "Started by: greenlight execution {execution_name}, which ended {status} without running its failure path"
        )),
    }
    if let Some(r) = &report.revision {
        let version = r
            .version
            .as_ref()
            .map(|v| format!(" version {v}"))
            .or_else(|| r.etag.as_ref().map(|e| format!(" etag {e}")))
            .unwrap_or_default();
        line(format!(
            "Revision: {} (s3://{}/{}{version})",
            r.label, r.bucket, r.key
        ));
    }
    line(format!(
        "Error: {} - {}",
        report.error, report.classification.cause
    ));
    if let Some(d) = &report.diagnosis {
        if let Some(e) = &d.error {
            line(format!("CodeDeploy error: {}", error_text(e)));
        }
        if let Some(event) = &d.failed_event {
            line(format!("Failed lifecycle event: {event}"));
        }
        for f in &d.failed_instances {
            let fleet = f.fleet.map(|l| format!(" ({l:?})")).unwrap_or_default();
            let event = f.lifecycle_event.as_deref().unwrap_or("(no failed event)");
            let code = f.error_code.as_deref().unwrap_or("");
            let msg = f.message.as_deref().unwrap_or("");
            let script = f
                .script_name
                .as_ref()
                .map(|s| format!(" [script {s}]"))
                .unwrap_or_default();
            line(format!(
                "Failed instance {}{fleet}: {event} {code}{script} {msg}",
                f.instance_id
            ));
            if let Some(tail) = &f.log_tail {
                line(format!("  log tail: {}", one_line(tail)));
            }
        }
        if d.omitted_failed_instances > 0 {
            line(format!(
                "... and {} more failed instance(s) (see the CodeDeploy console)",
                d.omitted_failed_instances
            ));
        }
        if let Some(rb) = &d.rollback_deployment_id {
            line(format!("Rollback deployment: {rb}"));
        }
    }
    if let Some(r) = &report.rollback {
        line(format!("Rollback: {}", r.detail));
    }
    for e in &report.validation_evidence {
        line(format!("Failing instance {}", evidence_text(e)));
    }
    line(format!(
        "Runbook: {}",
        runbook_clause(&report.runbook, &report.actions)
    ));
    line(format!(
        "Load balancer: {}",
        match report.load_balancer.state {
            RestoreState::Restored => format!("restored - {}", report.load_balancer.detail),
            RestoreState::NothingToRestore => report.load_balancer.detail.clone(),
            RestoreState::Failed => report.load_balancer.detail.clone(),
        }
    ));
    for a in report
        .actions
        .iter()
        .filter(|a| a.step == Step::ResumeScaling && a.outcome != Outcome::Failed)
    {
        line(format!("Scaling ({}): {}", a.target, a.detail));
    }
    for a in report
        .actions
        .iter()
        .filter(|a| a.step == Step::RestoreListener && a.outcome != Outcome::Failed)
    {
        line(format!("Listener ({}): {}", a.target, a.detail));
    }
    line(format!("Next step: {}", report.next_step));
    let failed: Vec<&ActionRecord> = report
        .actions
        .iter()
        .filter(|a| a.outcome == Outcome::Failed)
        .collect();
    if !failed.is_empty() {
        line("Steps that failed:".to_string());
        for a in failed {
            line(format!("  {:?} {}: {}", a.step, a.target, a.detail));
        }
    }
    let body = serde_json::json!({
        "outcome": crate::metrics::DeploymentOutcome::Failed.name(),
        "application": report.application,
        "deploymentGroup": report.deployment_group,
        "deploymentId": report.deployment_id,
        "error": report.error.to_string(),
        "summary": report.summary,
        "revision": report.revision,
        "loadBalancerRestored": report.load_balancer.state == RestoreState::Restored,
        "nextStep": report.next_step,
        "subject": subject,
        "text": m,
    });
    Notification {
        subject,
        message: m,
        outcome: crate::metrics::DeploymentOutcome::Failed,
        application: report.application.clone(),
        deployment_group: report.deployment_group.clone(),
        body,
    }
}

/// One instance's probe evidence in words: which instance, at which address,
/// what it answered.
pub fn evidence_text(e: &InstanceEvidence) -> String {
    let mut answer = Vec::new();
    if let Some(status) = e.last_status {
        answer.push(format!("HTTP {status}"));
    }
    if let Some(body) = e.last_body.as_deref().filter(|b| !b.is_empty()) {
        answer.push(format!("body {:?}", truncate_chars(&one_line(body), 200)));
    }
    if let Some(err) = e.last_error.as_deref().filter(|b| !b.is_empty()) {
        answer.push(format!("error {:?}", truncate_chars(&one_line(err), 200)));
    }
    let answered = if answer.is_empty() {
        "no answer".to_string()
    } else {
        answer.join(", ")
    };
    format!(
        "{} at {} answered {answered} ({} probes, {} consecutive successes)",
        e.instance_id, e.address, e.probes, e.consecutive_successes
    )
}

/// An SNS-safe subject: printable ASCII only (others become `?`, line breaks
/// and tabs become spaces), at most [`MAX_SUBJECT_CHARS`], never empty.
pub fn ascii_subject(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| match c {
            ' '..='~' => c,
            '\n' | '\r' | '\t' => ' ',
            _ => '?',
        })
        .collect();
    let cleaned = cleaned.trim();
    let out = if cleaned.chars().count() > MAX_SUBJECT_CHARS {
        let mut s: String = cleaned.chars().take(MAX_SUBJECT_CHARS - 3).collect();
        s.push_str("...");
        s
    } else {
        cleaned.to_string()
    };
    if out.is_empty() {
        "greenlight deployment failure".to_string()
    } else {
        out
    }
}

/// `code: message` of a CodeDeploy error.
pub fn error_text(e: &DeploymentErrorInfo) -> String {
    match (e.code.is_empty(), e.message.is_empty()) {
        (false, false) => format!("{}: {}", e.code, one_line(&e.message)),
        (false, true) => e.code.clone(),
        (true, false) => one_line(&e.message),
        (true, true) => "no error information".to_string(),
    }
}

pub(crate) fn status_word(status: DeploymentStatus) -> &'static str {
    match status {
        DeploymentStatus::Created => "Created",
        DeploymentStatus::Queued => "Queued",
        DeploymentStatus::InProgress => "InProgress",
        DeploymentStatus::Baking => "Baking",
        DeploymentStatus::Ready => "Ready",
        DeploymentStatus::Succeeded => "Succeeded",
        DeploymentStatus::Failed => "Failed",
        DeploymentStatus::Stopped => "Stopped",
    }
}

/// At most `max` characters (a char boundary), with `...` when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(3);
    let mut s: String = text.chars().take(keep).collect();
    s.push_str("...");
    s
}

/// The last `max` characters, with `...` in front when cut.
pub fn keep_tail(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    let skip = count - max.saturating_sub(3);
    let mut s = String::from("...");
    s.extend(text.chars().skip(skip));
    s
}

/// Whitespace runs (line breaks included) collapsed to single spaces.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A sentence without its final period and surrounding whitespace.
pub(crate) fn trim_sentence(text: &str) -> String {
    one_line(text).trim_end_matches('.').to_string()
}
