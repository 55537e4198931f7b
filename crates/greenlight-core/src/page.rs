//! The deployment timeline page: one self-contained HTML/JS template
//! (`page.html`: no external resource, no network but its own state) used
//! by the local cloud's live page (`/_greenlight/`, which fetches
//! `/_greenlight/state.json` every second) and by `greenlight history
//! --html` (the state embedded in the file). Both feed it the same JSON:
//!
//! ```json
//! {"title": "...", "live": true, "generatedAtMs": 0,
//!  "deployments": [{"deploymentId", "application", "deploymentGroup", "revision",
//!     "deploymentStatus", "outcome", "error",
//!     "phases": [{"phase", "done", "actualSeconds", "predictedSeconds"}],
//!     "instances": [{"instanceId", "fleet", "status", "event", "eventStatus",
//!                    "events": [{"name", "status"}], "targetHealth"}]}],
//!  "traffic": [{"version", "requests"}],
//!  "targets": [{"instanceId", "address", "health"}],
//!  "notifications": [{"subject", "outcome", "message"}]}
//! ```
//!
//! (a deployment is the `greenlight` CLI's status report, whose fields it
//! shares, with each instance's whole event list where known).

use crate::model::{DeploymentView, EpochMillis};
use crate::watch::{ledger, Predictions};
use serde_json::{json, Value};

const TEMPLATE: &str = include_str!("page.html");
/// The placeholder the embedded state replaces (inside a
/// `<script type="application/json">`); left as is, the page fetches
/// `state.json` instead.
const STATE_PLACEHOLDER: &str = "/*GREENLIGHT_STATE*/";

/// The live page: renders `state.json` (relative to the page) every second.
pub fn live_html() -> String {
    TEMPLATE.to_string()
}

/// A self-contained page with `state` embedded.
pub fn static_html(state: &Value) -> String {
    TEMPLATE.replace(STATE_PLACEHOLDER, &script_safe_json(state))
}

/// `value` as JSON that cannot end the `<script>` element it is embedded in
/// nor open a comment there: every `<`, `>` and `&` is written as its
/// `\u00XX` escape, which JSON.parse reads back unchanged (HTML spec,
/// "Restrictions for contents of script elements").
pub fn script_safe_json(value: &Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn seconds(from: EpochMillis, to: EpochMillis) -> f64 {
    ((to - from).max(0) as f64 / 100.0).round() / 10.0
}

/// One deployment as the page shows it: phases (actual seconds to `now`
/// while running, scaled by `time_scale` real seconds per AWS second so
/// they compare with the predictions; 1 on AWS) and each instance's whole
/// lifecycle event list. `target_health` gives an instance's health in its
/// target group, when known.
pub fn deployment_json(
    view: &DeploymentView,
    predictions: &Predictions,
    now: EpochMillis,
    time_scale: f64,
    target_health: &dyn Fn(&str) -> Option<String>,
) -> Value {
    let scale = if time_scale > 0.0 { time_scale } else { 1.0 };
    let phases: Vec<Value> = ledger(view, predictions)
        .into_iter()
        .map(|row| {
            let actual = seconds(row.started_at_ms, row.ended_at_ms.unwrap_or(now)) / scale;
            json!({
                "phase": row.phase,
                "done": row.ended_at_ms.is_some(),
                "actualSeconds": (actual * 10.0).round() / 10.0,
                "predictedSeconds": row.predicted_seconds,
            })
        })
        .collect();
    let instances: Vec<Value> = view
        .targets
        .iter()
        .map(|t| {
            json!({
                "instanceId": t.instance_id,
                "fleet": t.label,
                "status": t.status,
                "events": t.lifecycle_events.iter().map(|e| json!({
                    "name": e.name,
                    "status": e.status,
                })).collect::<Vec<_>>(),
                "targetHealth": target_health(&t.instance_id),
            })
        })
        .collect();
    json!({
        "deploymentId": view.deployment_id,
        "application": view.application,
        "deploymentGroup": view.deployment_group,
        "deploymentStatus": crate::watch::status_name(view.status),
        "error": view.error.as_ref().map(|e| format!("{}: {}", e.code, e.message)),
        "phases": phases,
        "instances": instances,
    })
}

#[cfg(test)]
#[path = "page_tests.rs"]
mod tests;
