//! CloudWatch metrics as embedded metric format (EMF) documents: per-phase
//! actual and predicted seconds, gate results and deployment outcomes.
//!
//! The functions print each document as one JSON line on stdout; CloudWatch
//! Logs extracts the metrics from it (CloudWatch user guide, "Specification:
//! Embedded metric format": a root `_aws` object with `Timestamp` in epoch
//! milliseconds and `CloudWatchMetrics`, a list of directives each naming a
//! `Namespace`, `Dimensions` (a list of dimension sets, each a list of at
//! most 30 member names) and `Metrics` (at most 100, each with `Name` and
//! optional `Unit`); every dimension and metric name refers to a root member
//! of the same document, dimension values being strings and metric values
//! numbers). EMF documents have no `level` key, so Lambda's log-level filter
//! counts them as INFO (Lambda developer guide, "Log-level filtering"): with
//! ApplicationLogLevel WARN or above they are dropped with the other INFO
//! lines.
//!
//! Everything here is pure; template.yaml's dashboard reads these names.

use crate::model::{EpochMillis, Phase, PhaseTiming};
use serde_json::{json, Map, Value};

/// The CloudWatch namespace of greenlight's own metrics.
pub const NAMESPACE: &str = "Greenlight";
/// Dimension names (and the root members that carry their values).
pub const DIM_APPLICATION: &str = "Application";
pub const DIM_GROUP: &str = "DeploymentGroup";
pub const DIM_PHASE: &str = "Phase";
pub const DIM_GATE: &str = "Gate";
pub const DIM_OUTCOME: &str = "Outcome";
/// Metric names.
pub const PHASE_SECONDS: &str = "PhaseSeconds";
pub const PHASE_PREDICTED_SECONDS: &str = "PhasePredictedSeconds";
pub const GATE_PASSED: &str = "GatePassed";
pub const GATE_FAILED: &str = "GateFailed";
pub const DEPLOYMENTS: &str = "Deployments";

/// CloudWatch's limit on a dimension value's length (PutMetricData
/// `Dimension.Value`: 1-1024 characters); EMF values obey the same rule.
const MAX_DIMENSION_VALUE: usize = 1024;

/// The deployment a document is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject<'a> {
    pub application: &'a str,
    pub deployment_group: &'a str,
    /// Logged with the metrics (not a dimension: one series per deployment
    /// would make every series a single point).
    pub deployment_id: Option<&'a str>,
}

/// Which gate produced a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// The traffic validator's probe of the green fleet at Ready.
    Validation,
    /// The bake after the reroute.
    Bake,
}

impl Gate {
    pub fn name(self) -> &'static str {
        match self {
            Gate::Validation => "validation",
            Gate::Bake => "bake",
        }
    }
}

/// How one upload's deployment ended (the `Outcome` dimension, and the SNS
/// message attribute `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeploymentOutcome {
    Deployed,
    Superseded,
    Failed,
    /// Not an ending: the deployment waits at the gate for a human
    /// (`AwaitApproval`); its notification carries this outcome attribute.
    ApprovalRequested,
    /// Not an ending: the emergency override skipped the bake (issue 10);
    /// its notification carries this outcome attribute.
    BakeSkipped,
}

impl DeploymentOutcome {
    pub fn name(self) -> &'static str {
        match self {
            DeploymentOutcome::Deployed => "deployed",
            DeploymentOutcome::Superseded => "superseded",
            DeploymentOutcome::Failed => "failed",
            DeploymentOutcome::ApprovalRequested => "approvalRequested",
            DeploymentOutcome::BakeSkipped => "bakeSkipped",
        }
    }
}

/// The name a phase has in the `Phase` dimension.
pub fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Queued => "Queued",
        Phase::Provisioning => "Provisioning",
        Phase::Installing => "Installing",
        Phase::ReadyWait => "ReadyWait",
        Phase::Rerouting => "Rerouting",
        Phase::Terminating => "Terminating",
        Phase::Done => "Done",
    }
}

fn valid_dimension_value(value: &str) -> bool {
    !value.trim().is_empty() && value.chars().count() <= MAX_DIMENSION_VALUE
}

/// One EMF document: `dimensions` (name, value) form the one dimension set,
/// `metrics` (name, unit, value) the metrics. None when a dimension value is
/// empty or too long (CloudWatch would refuse the metric) or there is no
/// metric.
fn document(
    now: EpochMillis,
    subject: &Subject<'_>,
    extra_dimensions: &[(&str, &str)],
    metrics: &[(&str, &str, f64)],
) -> Option<Value> {
    let mut dimensions = vec![
        (DIM_APPLICATION, subject.application),
        (DIM_GROUP, subject.deployment_group),
    ];
    dimensions.extend_from_slice(extra_dimensions);
    if metrics.is_empty()
        || dimensions
            .iter()
            .any(|(_, value)| !valid_dimension_value(value))
        || metrics.iter().any(|(_, _, v)| !v.is_finite())
    {
        return None;
    }
    let mut root = Map::new();
    root.insert(
        "_aws".to_string(),
        json!({
            "Timestamp": now,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions.iter().map(|(name, _)| *name).collect::<Vec<_>>()],
                "Metrics": metrics
                    .iter()
                    .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    for (name, value) in &dimensions {
        root.insert((*name).to_string(), Value::from(*value));
    }
    for (name, _, value) in metrics {
        root.insert((*name).to_string(), json!(value));
    }
    if let Some(id) = subject.deployment_id {
        root.insert("deploymentId".to_string(), Value::from(id));
    }
    Some(Value::Object(root))
}

/// One document per phase of `ledger` with an actual duration (the phase
/// ended) or a prediction: `PhaseSeconds` and `PhasePredictedSeconds`,
/// dimensions Application, DeploymentGroup, Phase. `Done` (a point, not a
/// span) has none.
pub fn phase_documents(
    now: EpochMillis,
    subject: &Subject<'_>,
    ledger: &[PhaseTiming],
) -> Vec<Value> {
    ledger
        .iter()
        .filter(|row| row.phase != Phase::Done)
        .filter_map(|row| {
            let mut metrics = Vec::new();
            if let Some(ended) = row.ended_at_ms {
                let millis = ended.saturating_sub(row.started_at_ms).max(0);
                metrics.push((PHASE_SECONDS, "Seconds", millis as f64 / 1000.0));
            }
            if let Some(predicted) = row.predicted_seconds {
                metrics.push((PHASE_PREDICTED_SECONDS, "Seconds", f64::from(predicted)));
            }
            document(
                now,
                subject,
                &[(DIM_PHASE, phase_name(row.phase))],
                &metrics,
            )
        })
        .collect()
}

/// A gate's result: `GatePassed` 1 and `GateFailed` 0, or the reverse
/// (both, so a Sum of either is a count and an Average a rate), dimensions
/// Application, DeploymentGroup, Gate.
pub fn gate_document(
    now: EpochMillis,
    subject: &Subject<'_>,
    gate: Gate,
    passed: bool,
) -> Option<Value> {
    let (pass, fail) = if passed { (1.0, 0.0) } else { (0.0, 1.0) };
    document(
        now,
        subject,
        &[(DIM_GATE, gate.name())],
        &[(GATE_PASSED, "Count", pass), (GATE_FAILED, "Count", fail)],
    )
}

/// One deployment's end: `Deployments` 1, dimensions Application,
/// DeploymentGroup, Outcome.
pub fn outcome_document(
    now: EpochMillis,
    subject: &Subject<'_>,
    outcome: DeploymentOutcome,
) -> Option<Value> {
    document(
        now,
        subject,
        &[(DIM_OUTCOME, outcome.name())],
        &[(DEPLOYMENTS, "Count", 1.0)],
    )
}

/// The line a function prints for a document (compact JSON, one line).
pub fn emf_line(document: &Value) -> String {
    document.to_string()
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
