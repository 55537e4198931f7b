//! Step Functions "Execution Status Change" events, which moto does not emit.
//!
//! On AWS, Step Functions sends an event to EventBridge for every execution
//! status change (Step Functions developer guide, "Automating Step Functions
//! event delivery with EventBridge": `source` `aws.states`, `detail-type`
//! `Step Functions Execution Status Change`, detail `executionArn`,
//! `stateMachineArn`, `name`, `status`, `startDate`, `stopDate`, `input`,
//! `output`, `error`, `cause`). moto 5.2.5 runs executions but emits nothing,
//! so this poller watches the pipeline's executions (ListExecutions, then
//! DescribeExecution for the ones that ended) and puts the event for each
//! execution that ended ABORTED, TIMED_OUT or FAILED, once, into moto's
//! EventBridge. The rule template.yaml declares routes it to a queue the
//! relay delivers to the failure handler, as the CodeDeploy failure rule does.
//!
//! Not faithful: only the end states greenlight's rule selects are emitted
//! (RUNNING/SUCCEEDED events have no consumer here), and an event comes up to
//! one poll interval after the execution ended. AWS does not document the
//! delay of its own delivery ("best effort"), so a late event is the harsher
//! reading.

use serde_json::json;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const DETAIL_TYPE: &str = "Step Functions Execution Status Change";
/// The end states the failure handler's rule selects.
pub const ENDED_BADLY: [&str; 3] = ["ABORTED", "TIMED_OUT", "FAILED"];

/// The running poller; stops on [`ExecutionEvents::stop`] or when dropped.
pub struct ExecutionEvents {
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl ExecutionEvents {
    pub fn start(
        sfn: aws_sdk_sfn::Client,
        events: aws_sdk_eventbridge::Client,
        state_machine_arn: String,
        interval: Duration,
    ) -> Self {
        let (stop, mut stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut seen = HashSet::new();
            loop {
                poll_once(&sfn, &events, &state_machine_arn, &mut seen).await;
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stop_rx.changed() => break,
                }
            }
        });
        Self {
            stop,
            task: Mutex::new(Some(task)),
        }
    }

    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for ExecutionEvents {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.lock().ok().and_then(|mut t| t.take()) {
            task.abort();
        }
    }
}

/// One look: every execution that ended badly and was not reported yet gets
/// its event.
async fn poll_once(
    sfn: &aws_sdk_sfn::Client,
    events: &aws_sdk_eventbridge::Client,
    state_machine_arn: &str,
    seen: &mut HashSet<String>,
) {
    let listed = match sfn
        .list_executions()
        .state_machine_arn(state_machine_arn)
        .max_results(1000)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            tracing::warn!(error = %greenlight_aws::describe_error(&e), "ListExecutions failed; execution events delayed");
            return;
        }
    };
    for execution in listed.executions() {
        let arn = execution.execution_arn().to_string();
        if seen.contains(&arn) || !ENDED_BADLY.contains(&execution.status().as_str()) {
            continue;
        }
        let described = match sfn.describe_execution().execution_arn(&arn).send().await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(execution = arn.as_str(), error = %greenlight_aws::describe_error(&e), "DescribeExecution failed; retried next poll");
                continue;
            }
        };
        let millis =
            |t: Option<&aws_sdk_sfn::primitives::DateTime>| t.and_then(|t| t.to_millis().ok());
        let detail = json!({
            "executionArn": arn,
            "stateMachineArn": state_machine_arn,
            "name": execution.name(),
            "status": execution.status().as_str(),
            "startDate": millis(Some(execution.start_date())),
            "stopDate": millis(execution.stop_date()),
            "input": described.input(),
            "inputDetails": {"included": described.input().is_some()},
            "output": described.output(),
            "outputDetails": described.output().map(|_| json!({"included": true})),
            "error": described.error(),
            "cause": described.cause(),
        });
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source("aws.states")
            .detail_type(DETAIL_TYPE)
            .detail(detail.to_string())
            .resources(arn.clone())
            .build();
        match events.put_events().entries(entry).send().await {
            Ok(_) => {
                seen.insert(arn);
            }
            Err(e) => {
                tracing::warn!(execution = arn.as_str(), error = %greenlight_aws::describe_error(&e), "could not emit the execution status-change event; retried next poll");
            }
        }
    }
}
