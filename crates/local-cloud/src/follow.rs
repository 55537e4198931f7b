//! Following one upload through the pipeline, through the AWS APIs only:
//! its Step Functions execution (found by the object key in its input), the
//! CodeDeploy deployment it created (found by the description naming the
//! execution), the phase of that deployment, and the final timeline.

use crate::cloud::LocalCloud;
use greenlight_core::watch::{self, Predictions};
use greenlight_core::{CreatedDeployment, DeploymentView, Phase, PhaseTiming, TuningResult};
use serde_json::Value;
use std::time::Duration;

/// What an execution ended with, read back from Step Functions and CodeDeploy.
#[derive(Debug, Clone)]
pub struct Followed {
    pub execution_arn: String,
    pub execution_name: String,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED.
    pub status: String,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub deployment: Option<DeploymentView>,
    pub timeline: Vec<PhaseTiming>,
}

impl Followed {
    /// The admission decision from the execution output (`proceed`/`superseded`).
    pub fn admission(&self) -> Option<&str> {
        self.output
            .as_ref()
            .and_then(|o| o.pointer("/admission/decision"))
            .and_then(Value::as_str)
    }
}

/// A progress event while following.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    ExecutionStarted {
        name: String,
    },
    DeploymentCreated {
        deployment_id: String,
    },
    Phase {
        phase: Phase,
        status: String,
    },
    Finished {
        status: String,
    },
    /// Still following (about every 250 ms): lets a terminal show a live line.
    Tick,
}

/// Finds the execution whose input names `key`, waiting up to `timeout`.
pub async fn find_execution(
    cloud: &LocalCloud,
    key: &str,
    timeout: Duration,
) -> Option<(String, String)> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(found) = executions_with_key(cloud, key).await.into_iter().next() {
            return Some(found);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// All executions of the pipeline whose input names `key`: (ARN, name).
pub async fn executions_with_key(cloud: &LocalCloud, key: &str) -> Vec<(String, String)> {
    let sfn = aws_sdk_sfn::Client::new(&cloud.sdk);
    let mut out = Vec::new();
    let Ok(list) = sfn
        .list_executions()
        .state_machine_arn(&cloud.resources.state_machine_arn)
        .send()
        .await
    else {
        return out;
    };
    for e in list.executions() {
        if let Ok(d) = sfn
            .describe_execution()
            .execution_arn(e.execution_arn())
            .send()
            .await
        {
            let input: Value = d
                .input()
                .and_then(|i| serde_json::from_str(i).ok())
                .unwrap_or(Value::Null);
            if input.pointer("/revision/key").and_then(Value::as_str) == Some(key) {
                out.push((e.execution_arn().to_string(), e.name().to_string()));
            }
        }
    }
    out
}

/// The deployment a greenlight execution created, if any.
pub async fn deployment_of(cloud: &LocalCloud, execution_name: &str) -> Option<DeploymentView> {
    let cd = aws_sdk_codedeploy::Client::new(&cloud.sdk);
    let names = &cloud.resources.names;
    let list = cd
        .list_deployments()
        .application_name(&names.application)
        .deployment_group_name(&names.deployment_group)
        .send()
        .await
        .ok()?;
    let ids = list.deployments().to_vec();
    if ids.is_empty() {
        return None;
    }
    let infos = cd
        .batch_get_deployments()
        .set_deployment_ids(Some(ids))
        .send()
        .await
        .ok()?;
    let id = infos.deployments_info().iter().find_map(|d| {
        let desc = d.description()?;
        (watch::execution_of_description(desc) == Some(execution_name))
            .then(|| d.deployment_id().map(str::to_string))
            .flatten()
    })?;
    greenlight_aws::deployment::read_deployment(&cd, &id)
        .await
        .ok()
}

/// Follows an execution to its end (or `timeout`), reporting progress.
pub async fn follow(
    cloud: &LocalCloud,
    execution_arn: &str,
    execution_name: &str,
    timeout: Duration,
    progress: &mut dyn FnMut(Progress),
) -> Followed {
    let sfn = aws_sdk_sfn::Client::new(&cloud.sdk);
    let deadline = tokio::time::Instant::now() + timeout;
    progress(Progress::ExecutionStarted {
        name: execution_name.to_string(),
    });
    let mut seen_deployment = false;
    let mut last_phase: Option<(Phase, String)> = None;
    loop {
        let view = deployment_of(cloud, execution_name).await;
        if let Some(v) = &view {
            if !seen_deployment {
                seen_deployment = true;
                progress(Progress::DeploymentCreated {
                    deployment_id: v.deployment_id.clone(),
                });
            }
            let now = (watch::phase_of(v), watch::status_name(v.status).to_string());
            if last_phase.as_ref() != Some(&now) {
                progress(Progress::Phase {
                    phase: now.0,
                    status: now.1.clone(),
                });
                last_phase = Some(now);
            }
        }
        let described = sfn
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await;
        let (status, output, error, cause) = match &described {
            Ok(d) => (
                d.status().as_str().to_string(),
                d.output().and_then(|o| serde_json::from_str(o).ok()),
                d.error().map(str::to_string),
                d.cause().map(str::to_string),
            ),
            Err(e) => (
                "UNKNOWN".into(),
                None,
                Some(greenlight_aws::describe_error(e)),
                None,
            ),
        };
        let finished = status != "RUNNING" && status != "UNKNOWN";
        if finished || tokio::time::Instant::now() >= deadline {
            // One last look so the timeline has the deployment's end.
            let deployment = deployment_of(cloud, execution_name).await;
            // The execution's output (a succeeded one) holds what the watcher
            // predicted from: `$.tuning` and `$.deployment`.
            let state_field =
                |name: &str| output.as_ref().and_then(|o: &Value| o.get(name)).cloned();
            let tuning: Option<TuningResult> =
                state_field("tuning").and_then(|t| serde_json::from_value(t).ok());
            let created: Option<CreatedDeployment> =
                state_field("deployment").and_then(|d| serde_json::from_value(d).ok());
            let predictions = Predictions::for_pipeline(tuning.as_ref(), created.as_ref());
            let timeline = deployment
                .as_ref()
                .map(|d| watch::ledger(d, &predictions))
                .unwrap_or_default();
            progress(Progress::Finished {
                status: status.clone(),
            });
            return Followed {
                execution_arn: execution_arn.to_string(),
                execution_name: execution_name.to_string(),
                status,
                output,
                error,
                cause,
                deployment,
                timeline,
            };
        }
        progress(Progress::Tick);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The timeline as a table, durations converted back to simulated ("AWS") seconds.
pub fn timeline_table(
    timeline: &[PhaseTiming],
    origin_ms: i64,
    scale: crate::clock::TimeScale,
) -> String {
    let sim = |ms: i64| {
        scale
            .simulated(Duration::from_millis(ms.max(0) as u64))
            .as_secs_f64()
    };
    let mut out = format!(
        "{:<14} {:>10} {:>12} {:>12}\n",
        "phase", "start", "duration", "predicted"
    );
    for row in timeline {
        let start = sim(row.started_at_ms - origin_ms);
        let duration = row
            .ended_at_ms
            .map(|end| format!("{:.1}s", sim(end - row.started_at_ms)))
            .unwrap_or_else(|| "…".into());
        let predicted = row
            .predicted_seconds
            .map(|p| format!("{p}s"))
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:<14} {:>9.1}s {:>12} {:>12}\n",
            format!("{:?}", row.phase),
            start,
            duration,
            predicted
        ));
    }
    out
}
