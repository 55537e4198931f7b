//! Step Functions' 256 KB payload limit on task results, which moto's Step
//! Functions does not enforce.
//!
//! AWS ("Step Functions service quotas": maximum input or output size for a
//! task, state, or execution is 262,144 bytes of UTF-8; "Error names":
//! `States.DataLimitExceeded` is not matched by `States.ALL`): a task whose
//! result is larger fails with `States.DataLimitExceeded`, and since no
//! `Catch` can catch it, the execution fails.
//!
//! Emulation: when moto's Step Functions (it signs with access key
//! [`MOTO_SFN_ACCESS_KEY`]) invokes a hosted function whose result is larger
//! than [`SFN_PAYLOAD_LIMIT`], the front server first finds the running
//! execution that scheduled this invocation (a running execution whose newest
//! history events (read in full, newest first) are the scheduling of a Lambda task for this function with
//! this payload, and no result yet) and stops it with `StopExecution` (error
//! `States.DataLimitExceeded` and AWS's cause), then answers the invocation
//! with a function error of that name.
//!
//! What moto 5.2 does with that, measured (front/tests.rs,
//! `step_functions_sees_lambda_timeouts_and_fails_on_results_over_256_kb`):
//! its StopExecution only flags the worker, which is blocked on this very
//! invocation; when the answer arrives the worker refuses a custom error name
//! starting with `States.` and fails the execution, uncatchably, with
//! `States.Runtime` (the ValueError naming `States.DataLimitExceeded` as its
//! cause). So the execution FAILS without any Catch (States.ALL included)
//! running, as on AWS, but under the error name `States.Runtime` instead of
//! `States.DataLimitExceeded`: tests must not rely on the error name.

use serde_json::Value;

/// The access key moto's Step Functions signs its Lambda calls with (moto
/// 5.2: `moto/stepfunctions/parser/asl/utils/boto_client.py`).
pub const MOTO_SFN_ACCESS_KEY: &str = "ak";
/// 256 KB: Step Functions' task result limit, bytes of UTF-8.
pub const SFN_PAYLOAD_LIMIT: usize = 262_144;

/// AWS's cause text for a task result over the limit.
pub fn cause(function: &str, size: usize) -> String {
    format!(
        "The state/task '{function}' returned a result with a size exceeding the maximum number of bytes service limit. ({size} bytes > {SFN_PAYLOAD_LIMIT} bytes)"
    )
}

/// Whether a `TaskScheduled` event's parameters are this invocation: the same
/// function (by name or ARN) and the same payload (pure).
pub fn scheduled_this(parameters: &str, function: &str, payload: &Value) -> bool {
    let Ok(params) = serde_json::from_str::<Value>(parameters) else {
        return false;
    };
    let name_matches = params
        .get("FunctionName")
        .and_then(Value::as_str)
        .and_then(crate::lambda_host::parse_function_name)
        == Some(function);
    let scheduled_payload = match params.get("Payload") {
        // The payload may be scheduled as a JSON string.
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
        Some(v) => v.clone(),
        None => Value::Object(Default::default()),
    };
    name_matches && &scheduled_payload == payload
}

/// Stops the one running execution that scheduled this invocation (see the
/// module docs). Returns its ARN when one was stopped.
pub async fn stop_scheduling_execution(
    moto_endpoint: &str,
    function: &str,
    payload: &Value,
    cause: &str,
) -> Option<String> {
    let sdk = super::sdk_config(moto_endpoint).await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let machines = sfn.list_state_machines().send().await.ok()?;
    let mut candidates = Vec::new();
    for machine in machines.state_machines() {
        let running = sfn
            .list_executions()
            .state_machine_arn(machine.state_machine_arn())
            .status_filter(aws_sdk_sfn::types::ExecutionStatus::Running)
            .send()
            .await
            .ok()?;
        for execution in running.executions() {
            let history = sfn
                .get_execution_history()
                .execution_arn(execution.execution_arn())
                .max_results(1000)
                .send()
                .await
                .ok()?;
            // Newest first (moto 5.2 ignores reverseOrder: reverse here).
            for event in history.events().iter().rev() {
                use aws_sdk_sfn::types::HistoryEventType as T;
                match event.r#type() {
                    T::TaskSucceeded
                    | T::TaskFailed
                    | T::TaskTimedOut
                    | T::LambdaFunctionSucceeded
                    | T::LambdaFunctionFailed
                    | T::LambdaFunctionTimedOut => break,
                    // A Task whose Resource is the function's ARN (no integration).
                    T::LambdaFunctionScheduled => {
                        let this = event
                            .lambda_function_scheduled_event_details()
                            .map(|d| {
                                let input = d
                                    .input()
                                    .and_then(|i| serde_json::from_str::<Value>(i).ok())
                                    .unwrap_or(Value::Object(Default::default()));
                                crate::lambda_host::parse_function_name(d.resource())
                                    == Some(function)
                                    && &input == payload
                            })
                            .unwrap_or(false);
                        if this {
                            candidates.push(execution.execution_arn().to_string());
                        }
                        break;
                    }
                    T::TaskScheduled => {
                        let this = event
                            .task_scheduled_event_details()
                            .map(|d| scheduled_this(d.parameters(), function, payload))
                            .unwrap_or(false);
                        if this {
                            candidates.push(execution.execution_arn().to_string());
                        }
                        break;
                    }
                    _ => continue,
                }
            }
        }
    }
    let [arn] = candidates.as_slice() else {
        tracing::warn!(
            function,
            candidates = candidates.len(),
            "States.DataLimitExceeded: no single execution to fail"
        );
        return None;
    };
    sfn.stop_execution()
        .execution_arn(arn)
        .error("States.DataLimitExceeded")
        .cause(cause)
        .send()
        .await
        .ok()?;
    Some(arn.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_the_scheduled_function_and_payload() {
        let payload = json!({"deploymentId": "d-1"});
        let params = json!({
            "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:greenlight-deployment-watcher",
            "Payload": {"deploymentId": "d-1"}
        })
        .to_string();
        assert!(scheduled_this(
            &params,
            "greenlight-deployment-watcher",
            &payload
        ));
        assert!(!scheduled_this(
            &params,
            "greenlight-failure-handler",
            &payload
        ));
        assert!(!scheduled_this(
            &params,
            "greenlight-deployment-watcher",
            &json!({"deploymentId": "d-2"})
        ));
        let as_string = json!({"FunctionName": "greenlight-deployment-watcher", "Payload": "{\"deploymentId\":\"d-1\"}"}).to_string();
        assert!(scheduled_this(
            &as_string,
            "greenlight-deployment-watcher",
            &payload
        ));
        assert!(!scheduled_this(
            "not json",
            "greenlight-deployment-watcher",
            &payload
        ));
        assert!(cause("f", 300_000).contains("300000 bytes > 262144 bytes"));
    }
}
