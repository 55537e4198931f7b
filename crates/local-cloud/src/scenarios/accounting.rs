//! Every upload is accounted for (issue 8): for one uploaded object key, read
//! back through the AWS APIs what became of it. An upload ends in exactly one
//! of three accounted fates, or it is unaccounted (lost, or still running):
//!
//! - **deployed**: an execution whose input names the key SUCCEEDED and the
//!   CodeDeploy deployment it created (found by the description naming the
//!   execution) is `Succeeded`;
//! - **superseded**: an execution for the key SUCCEEDED with
//!   `admission.decision = superseded` (its output names the newer upload);
//! - **rejected**, with the reason: an execution for the key FAILED with a
//!   named error (the failure handler's `Fail` state), or, when no execution
//!   started, a record in the RejectedUploads queue (the trigger's on-failure
//!   destination) or an SNS notification that names the key.
//!
//! Anything else (no trace at all, an execution still RUNNING, one that
//! SUCCEEDED without a succeeded deployment, one that ended without a named
//! error) is [`UploadFate::Unaccounted`], with what was seen.

use super::{aws, Notification, ScenarioError};
use crate::cloud::LocalCloud;
use crate::follow;
use serde_json::Value;

/// What became of one upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadFate {
    Deployed {
        execution: String,
        deployment_id: String,
    },
    Superseded {
        execution: String,
        /// The newer upload's key, when the execution's output names it.
        by_key: Option<String>,
    },
    Rejected {
        /// Where the reason was read: `execution <name>`, `RejectedUploads queue`, `notification`.
        source: String,
        /// The error name (or notification subject) and its message.
        reason: String,
    },
    Unaccounted {
        seen: String,
    },
}

impl UploadFate {
    pub fn is_accounted(&self) -> bool {
        !matches!(self, Self::Unaccounted { .. })
    }
    pub fn is_deployed(&self) -> bool {
        matches!(self, Self::Deployed { .. })
    }
    pub fn is_superseded(&self) -> bool {
        matches!(self, Self::Superseded { .. })
    }
    pub fn is_rejected(&self) -> bool {
        matches!(self, Self::Rejected { .. })
    }
}

/// One execution of the key, as DescribeExecution and CodeDeploy show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionFacts {
    pub name: String,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED.
    pub status: String,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// The status (`Succeeded`, `Failed`, ...) of the deployment the execution created.
    pub deployment: Option<(String, String)>,
}

/// Decides an upload's fate from what was read back (pure, so it is unit
/// tested on every combination). `executions` are every execution whose input
/// names the key; `rejected_records` the RejectedUploads queue's bodies;
/// `notifications` those the scenario received.
pub fn decide_fate(
    key: &str,
    executions: &[ExecutionFacts],
    rejected_records: &[String],
    notifications: &[Notification],
) -> UploadFate {
    // An execution that has not ended, or ended without a named outcome,
    // leaves the upload unaccounted whatever the others say: a second
    // execution for one key is a duplicate and must be accounted for too.
    let mut fates = Vec::new();
    for e in executions {
        let fate =
            ended_outside_failure_path(e, notifications).unwrap_or_else(|| execution_fate(e));
        if !fate.is_accounted() {
            return fate;
        }
        fates.push(fate);
    }
    if let Some(best) = fates
        .iter()
        .find(|f| f.is_deployed())
        .or_else(|| fates.iter().find(|f| f.is_superseded()))
        .or_else(|| fates.first())
    {
        return best.clone();
    }
    if let Some(record) = rejected_records.iter().find(|r| names_key(r, key)) {
        return UploadFate::Rejected {
            source: "RejectedUploads queue".into(),
            reason: rejection_reason(record),
        };
    }
    // A deployed or superseded upload's notification names its key too, but
    // says it was not rejected: only a failure (or an unlabelled) one does.
    if let Some(n) = notifications
        .iter()
        .find(|n| n.message.contains(key) && n.outcome.as_deref().is_none_or(|o| o == "failed"))
    {
        return UploadFate::Rejected {
            source: "notification".into(),
            reason: n.subject.clone().unwrap_or_else(|| n.message.clone()),
        };
    }
    UploadFate::Unaccounted {
        seen: format!(
            "no execution for {key}, no RejectedUploads record and no notification naming it"
        ),
    }
}

/// An execution that was aborted or timed out never ran its failure path:
/// the upload is accounted for only once the failure handler, brought by the
/// execution's status-change event, sent the notification naming it.
fn ended_outside_failure_path(
    e: &ExecutionFacts,
    notifications: &[Notification],
) -> Option<UploadFate> {
    if !matches!(e.status.as_str(), "ABORTED" | "TIMED_OUT") {
        return None;
    }
    Some(
        match notifications.iter().find(|n| n.message.contains(&e.name)) {
            Some(n) => UploadFate::Rejected {
                source: "notification".into(),
                reason: format!(
                    "execution {} ended {}: {}",
                    e.name,
                    e.status,
                    n.subject.clone().unwrap_or_default()
                ),
            },
            None => UploadFate::Unaccounted {
                seen: format!(
                    "execution {} ended {} and no notification names it",
                    e.name, e.status
                ),
            },
        },
    )
}

fn execution_fate(e: &ExecutionFacts) -> UploadFate {
    let decision = e
        .output
        .as_ref()
        .and_then(|o| o.pointer("/admission/decision"))
        .and_then(Value::as_str);
    match e.status.as_str() {
        "SUCCEEDED" if decision == Some("superseded") => UploadFate::Superseded {
            execution: e.name.clone(),
            by_key: e
                .output
                .as_ref()
                .and_then(|o| o.pointer("/admission/byKey"))
                .and_then(Value::as_str)
                .map(str::to_string),
        },
        "SUCCEEDED" => match &e.deployment {
            Some((id, status)) if status == "Succeeded" => UploadFate::Deployed {
                execution: e.name.clone(),
                deployment_id: id.clone(),
            },
            other => UploadFate::Unaccounted {
                seen: format!(
                    "execution {} SUCCEEDED but its deployment is {other:?}",
                    e.name
                ),
            },
        },
        "FAILED" => match e.error.as_deref().filter(|n| !n.is_empty()) {
            Some(error) => UploadFate::Rejected {
                source: format!("execution {}", e.name),
                reason: format!("{error}: {}", e.cause.as_deref().unwrap_or_default()),
            },
            None => UploadFate::Unaccounted {
                seen: format!("execution {} FAILED without an error name", e.name),
            },
        },
        other => UploadFate::Unaccounted {
            seen: format!("execution {} is {other}", e.name),
        },
    }
}

/// Whether a RejectedUploads record (Lambda's asynchronous invocation record,
/// the event under `requestPayload`) names the key.
fn names_key(record: &str, key: &str) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(record) else {
        return record.contains(key);
    };
    let payload = v.get("requestPayload").unwrap_or(&v);
    payload
        .pointer("/detail/object/key")
        .and_then(Value::as_str)
        == Some(key)
        || payload
            .get("Records")
            .and_then(Value::as_array)
            .is_some_and(|records| {
                records
                    .iter()
                    .any(|r| r.pointer("/s3/object/key").and_then(Value::as_str) == Some(key))
            })
}

fn rejection_reason(record: &str) -> String {
    let v: Value = serde_json::from_str(record).unwrap_or(Value::Null);
    let field = |name: &str| {
        v.pointer(&format!("/responsePayload/{name}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    format!("{}: {}", field("errorType"), field("errorMessage"))
}

/// What became of the upload of `key` (see the module docs). Reads every
/// execution whose input names the key, the deployment each created, the
/// RejectedUploads queue (peeked: messages stay for other readers), and
/// matches `notifications` (the scenario already drained the inbox).
pub async fn account_for_upload(
    cloud: &LocalCloud,
    key: &str,
    notifications: &[Notification],
) -> Result<UploadFate, ScenarioError> {
    let sfn = aws_sdk_sfn::Client::new(&cloud.sdk);
    let mut executions = Vec::new();
    for (arn, name) in follow::executions_with_key(cloud, key).await {
        let d = sfn
            .describe_execution()
            .execution_arn(&arn)
            .send()
            .await
            .map_err(aws("DescribeExecution"))?;
        let deployment = follow::deployment_of(cloud, &name).await.map(|v| {
            (
                v.deployment_id.clone(),
                greenlight_core::watch::status_name(v.status).to_string(),
            )
        });
        executions.push(ExecutionFacts {
            name,
            status: d.status().as_str().to_string(),
            output: d.output().and_then(|o| serde_json::from_str(o).ok()),
            error: d.error().map(str::to_string),
            cause: d.cause().map(str::to_string),
            deployment,
        });
    }
    let rejected = if executions.is_empty() {
        rejected_records(cloud).await?
    } else {
        Vec::new()
    };
    Ok(decide_fate(key, &executions, &rejected, notifications))
}

/// The RejectedUploads queue's message bodies, peeked (visibility timeout 0,
/// so they stay visible for the next reader).
pub async fn rejected_records(cloud: &LocalCloud) -> Result<Vec<String>, ScenarioError> {
    let sqs = aws_sdk_sqs::Client::new(&cloud.sdk);
    let got = sqs
        .receive_message()
        .queue_url(&cloud.resources.rejected_queue_url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .wait_time_seconds(0)
        .send()
        .await
        .map_err(aws("ReceiveMessage"))?;
    Ok(got
        .messages()
        .iter()
        .filter_map(|m| m.body().map(str::to_string))
        .collect())
}

#[cfg(test)]
mod tests;
