//! Notifications for the endings that are not failures (deployed,
//! superseded), and the parts of the SNS Publish request every notification
//! is sent with (failures' come from [`crate::runbook::notification`]).
//!
//! SNS, "Publish" (API reference): with `MessageStructure` `json` the
//! message is a JSON object whose `default` string goes to every protocol
//! without its own key; we give `email` the human text and every other
//! protocol (SQS, Lambda, HTTP/S, email-json) the JSON body, which repeats
//! the text under `text`. Message attributes `outcome`, `application` and
//! `deploymentGroup` (String) let subscription filter policies select
//! (SNS developer guide, "Amazon SNS message filtering"); SNS refuses an
//! attribute with an empty value, so an empty one is left out.

use crate::bake::BakeVerdict;
use crate::metrics::{phase_name, DeploymentOutcome};
use crate::model::{PhaseTiming, PipelineInput};
use crate::options::BakeSkip;
use crate::runbook::{ascii_subject, Notification};
use serde_json::json;

/// The message attribute names.
pub const ATTR_OUTCOME: &str = "outcome";
pub const ATTR_APPLICATION: &str = "application";
pub const ATTR_GROUP: &str = "deploymentGroup";

fn revision_line(input: &PipelineInput) -> String {
    let r = &input.revision;
    let version = r
        .version
        .as_ref()
        .map(|v| format!(" version {v}"))
        .unwrap_or_default();
    format!(
        "Revision: {} (s3://{}/{}{version})",
        r.label, r.bucket, r.key
    )
}

/// One ledger row in words: `Installing: 42 s (predicted 40 s)`.
pub fn phase_line(row: &PhaseTiming) -> String {
    let actual = match row.ended_at_ms {
        Some(end) => format!(
            "{} s",
            (end.saturating_sub(row.started_at_ms)).max(0) / 1000
        ),
        None => "not ended".to_string(),
    };
    let predicted = row
        .predicted_seconds
        .map(|p| format!(" (predicted {p} s)"))
        .unwrap_or_default();
    format!("{}: {actual}{predicted}", phase_name(row.phase))
}

/// The deployed notification's line about the emergency bake override, when
/// one was asked: skipped (the group bakes; `$.bake.verdict` is `skipped`) or
/// asked with nothing to skip (the group has no bake).
fn bake_skip_line(input: &PipelineInput, bake: Option<BakeVerdict>) -> Option<(String, bool)> {
    let skip = input.bake_skip.as_ref()?;
    let requester = skip.requester(input);
    Some(if bake == Some(BakeVerdict::Skipped) {
        (
            format!("Bake: SKIPPED by override ({requester}): green was not watched after the reroute; blue was kept for the whole termination wait."),
            true,
        )
    } else {
        (
            format!("Bake: a skip was asked by override ({requester}), but the group has no bake configured: nothing was skipped."),
            false,
        )
    })
}

/// The notification for a deployed upload: names the deployment, the
/// revision and each phase's actual vs predicted seconds, and says when the
/// bake was skipped by override (`bake`: the last `$.bake.verdict`).
pub fn deployed(
    input: &PipelineInput,
    execution_name: &str,
    deployment_id: &str,
    ledger: &[PhaseTiming],
    bake: Option<BakeVerdict>,
) -> Notification {
    let subject = ascii_subject(&format!(
        "greenlight deployed: {}/{} {deployment_id}",
        input.application, input.deployment_group
    ));
    let mut lines = vec![
        format!(
            "greenlight: revision {} is deployed to {}/{} (deployment {deployment_id}); the load balancer's own settings are back.",
            input.revision.label, input.application, input.deployment_group
        ),
        String::new(),
        format!(
            "Application / group: {} / {}",
            input.application, input.deployment_group
        ),
        format!("Deployment: {deployment_id}"),
        format!("Started by: greenlight execution {execution_name}"),
        revision_line(input),
    ];
    let skip_line = bake_skip_line(input, bake);
    if let Some((line, _)) = &skip_line {
        lines.push(line.clone());
    }
    let phases: Vec<&PhaseTiming> = ledger
        .iter()
        .filter(|r| r.phase != crate::model::Phase::Done)
        .collect();
    if !phases.is_empty() {
        lines.push("Phases (actual, predicted):".to_string());
        lines.extend(phases.iter().map(|r| format!("  {}", phase_line(r))));
    }
    let message = lines.join("\n") + "\n";
    let mut body = json!({
        "outcome": DeploymentOutcome::Deployed.name(),
        "application": input.application,
        "deploymentGroup": input.deployment_group,
        "deploymentId": deployment_id,
        "executionName": execution_name,
        "revision": input.revision,
        "phases": phases.iter().map(|r| json!({
            "phase": phase_name(r.phase),
            "startedAtMs": r.started_at_ms,
            "endedAtMs": r.ended_at_ms,
            "predictedSeconds": r.predicted_seconds,
        })).collect::<Vec<_>>(),
        "subject": subject,
        "text": message,
    });
    if let (Some(skip), Some((_, skipped))) = (input.bake_skip.as_ref(), &skip_line) {
        body["bakeSkip"] = json!({
            "requestedBy": skip.requested_by,
            "requester": skip.requester(input),
            "skipped": skipped,
        });
    }
    Notification {
        subject,
        message,
        outcome: DeploymentOutcome::Deployed,
        application: input.application.clone(),
        deployment_group: input.deployment_group.clone(),
        body,
    }
}

/// The notification for an upload a newer one superseded: nothing of it
/// was deployed, and it names the upload that goes instead.
pub fn superseded(
    input: &PipelineInput,
    execution_name: &str,
    by_execution: &str,
    by_key: &str,
) -> Notification {
    let subject = ascii_subject(&format!(
        "greenlight superseded: {}/{} {}",
        input.application, input.deployment_group, input.revision.label
    ));
    let message = [
        format!(
            "greenlight: revision {} was NOT deployed to {}/{}: a newer upload ({by_key}, execution {by_execution}) supersedes it.",
            input.revision.label, input.application, input.deployment_group
        ),
        String::new(),
        format!(
            "Application / group: {} / {}",
            input.application, input.deployment_group
        ),
        format!("Started by: greenlight execution {execution_name}"),
        revision_line(input),
        format!("Superseded by: s3 key {by_key} (greenlight execution {by_execution})"),
    ]
    .join("\n")
        + "\n";
    let body = json!({
        "outcome": DeploymentOutcome::Superseded.name(),
        "application": input.application,
        "deploymentGroup": input.deployment_group,
        "executionName": execution_name,
        "revision": input.revision,
        "supersededBy": {"executionName": by_execution, "key": by_key},
        "subject": subject,
        "text": message,
    });
    Notification {
        subject,
        message,
        outcome: DeploymentOutcome::Superseded,
        application: input.application.clone(),
        deployment_group: input.deployment_group.clone(),
        body,
    }
}

/// The notification sent the moment the emergency override skips a group's
/// bake (not an ending: outcome attribute `bakeSkipped`, like the approval
/// request's). Names who asked and what it means: green is not watched, the
/// termination wait runs out as configured, blue is kept until then.
pub fn bake_skipped(
    input: &PipelineInput,
    execution_name: &str,
    deployment_id: &str,
    skip: &BakeSkip,
    termination_wait_seconds: Option<u32>,
) -> Notification {
    let requester = skip.requester(input);
    let subject = ascii_subject(&format!(
        "greenlight: bake SKIPPED for {}/{} {deployment_id}",
        input.application, input.deployment_group
    ));
    let wait = termination_wait_seconds
        .map(|s| format!(" ({s} s)"))
        .unwrap_or_default();
    let message = [
        format!(
            "greenlight: bake SKIPPED for {}/{} deployment {deployment_id} by override ({requester})",
            input.application, input.deployment_group
        ),
        String::new(),
        format!(
            "Traffic is on revision {}; green is NOT watched after the reroute (no alarms, metrics or probes), so nothing rolls it back automatically.",
            input.revision.label
        ),
        format!("Blue is kept for CodeDeploy's whole termination wait{wait}; nothing ends it early. The target groups' own settings are back."),
        format!(
            "To roll back by hand while blue exists: aws deploy stop-deployment --deployment-id {deployment_id} --auto-rollback-enabled"
        ),
        String::new(),
        format!(
            "Application / group: {} / {}",
            input.application, input.deployment_group
        ),
        format!("Deployment: {deployment_id}"),
        format!("Started by: greenlight execution {execution_name}"),
        revision_line(input),
    ]
    .join("\n")
        + "\n";
    let outcome = DeploymentOutcome::BakeSkipped;
    let body = json!({
        "outcome": outcome.name(),
        "application": input.application,
        "deploymentGroup": input.deployment_group,
        "deploymentId": deployment_id,
        "executionName": execution_name,
        "revision": input.revision,
        "bakeSkip": {"requestedBy": skip.requested_by, "requester": requester},
        "terminationWaitSeconds": termination_wait_seconds,
        "subject": subject,
        "text": message,
    });
    Notification {
        subject,
        message,
        outcome,
        application: input.application.clone(),
        deployment_group: input.deployment_group.clone(),
        body,
    }
}

/// The Publish `Message` for `MessageStructure=json`: `default` (every
/// protocol without its own key) is the JSON body, `email` the text.
pub fn sns_message(n: &Notification) -> String {
    json!({
        "default": n.body.to_string(),
        "email": n.message,
    })
    .to_string()
}

/// The Publish message attributes (name, String value), empty values left out.
pub fn sns_attributes(n: &Notification) -> Vec<(&'static str, String)> {
    [
        (ATTR_OUTCOME, n.outcome.name().to_string()),
        (ATTR_APPLICATION, n.application.clone()),
        (ATTR_GROUP, n.deployment_group.clone()),
    ]
    .into_iter()
    .filter(|(_, v)| !v.trim().is_empty())
    .collect()
}

#[cfg(test)]
#[path = "announce_tests.rs"]
mod tests;
