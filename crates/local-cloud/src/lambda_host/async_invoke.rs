//! Lambda's asynchronous invocation, as the function's `EventInvokeConfig`
//! in template.yaml sets it: retries, then the on-failure destination.
//!
//! AWS (Lambda developer guide, "Invoking a Lambda function asynchronously"
//! and "Configuring error handling for asynchronous invocation"): when the
//! function returns an error (a crash or timeout included), Lambda runs it
//! up to `MaximumRetryAttempts` (default 2) more times, waiting one minute
//! before the first retry and two minutes between the first and the second;
//! when every attempt failed it sends an invocation record to the
//! `OnFailure` destination, if any: [`crate::relay::invocation_record`],
//! whose `requestPayload` is the whole event as it was invoked.
//!
//! Used for the invocations the local cloud makes asynchronously on behalf
//! of a service: CodePipeline's Lambda invoke action (Lambda developer
//! guide, "Using AWS Lambda with AWS CodePipeline": CodePipeline invokes the
//! function asynchronously). Not emulated: `MaximumEventAgeInSeconds`
//! (greenlight's events are never that old here), throttling retries.

use super::*;
use crate::clock::TimeScale;

/// What a function's `EventInvokeConfig` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncInvokeConfig {
    /// `MaximumRetryAttempts` (0..=2; Lambda's default is 2).
    pub max_retry_attempts: u32,
    /// The on-failure destination's SQS queue URL, if any.
    pub on_failure_queue_url: Option<String>,
}

impl Default for AsyncInvokeConfig {
    fn default() -> Self {
        Self {
            max_retry_attempts: DEFAULT_MAX_RETRY_ATTEMPTS,
            on_failure_queue_url: None,
        }
    }
}

/// Lambda's default `MaximumRetryAttempts` for asynchronous invocation.
pub const DEFAULT_MAX_RETRY_ATTEMPTS: u32 = 2;

/// The wait before retry `n` (1-based): one minute, then two (AWS time).
pub fn retry_delay(n: u32) -> Duration {
    Duration::from_secs(if n <= 1 { 60 } else { 120 })
}

/// Invokes hosted functions asynchronously with their `EventInvokeConfig`.
pub struct AsyncInvoker {
    lambda: Arc<LambdaHost>,
    sqs: aws_sdk_sqs::Client,
    scale: TimeScale,
    configs: BTreeMap<String, AsyncInvokeConfig>,
}

impl AsyncInvoker {
    /// `configs` keyed by function name; a function without one gets
    /// Lambda's defaults (2 retries, no destination).
    pub fn new(
        lambda: Arc<LambdaHost>,
        sqs: aws_sdk_sqs::Client,
        scale: TimeScale,
        configs: BTreeMap<String, AsyncInvokeConfig>,
    ) -> Self {
        Self {
            lambda,
            sqs,
            scale,
            configs,
        }
    }

    pub fn config_of(&self, function: &str) -> AsyncInvokeConfig {
        self.configs.get(function).cloned().unwrap_or_default()
    }

    /// Runs the invocation with its retries; on the last failure sends the
    /// record to the destination (if any). Returns the last outcome (the
    /// caller of an asynchronous invocation never sees it on AWS; the local
    /// cloud logs it).
    pub async fn invoke(&self, function: &str, payload: Value) -> Result<Value, Diagnostic> {
        let config = self.config_of(function);
        let request_id = new_request_id();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.lambda.invoke(function, payload.clone()).await {
                Ok(v) => return Ok(v),
                Err(error) if attempt <= config.max_retry_attempts => {
                    tracing::info!(function, attempt, error_type = %error.error_type, "asynchronous invocation failed; Lambda retries it");
                    self.scale.sleep(retry_delay(attempt)).await;
                }
                Err(error) => {
                    if let Some(queue_url) = &config.on_failure_queue_url {
                        let record = crate::relay::invocation_record(
                            function,
                            payload.clone(),
                            &error.error_type,
                            &error.error_message,
                            attempt,
                            &request_id,
                        );
                        if let Err(e) = self
                            .sqs
                            .send_message()
                            .queue_url(queue_url)
                            .message_body(record.to_string())
                            .send()
                            .await
                        {
                            tracing::warn!(function, error = %greenlight_aws::describe_error(&e), "could not send the invocation record to the on-failure destination");
                        }
                    }
                    return Err(error);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_one_then_two_minutes() {
        assert_eq!(retry_delay(1), Duration::from_secs(60));
        assert_eq!(retry_delay(2), Duration::from_secs(120));
        assert_eq!(AsyncInvokeConfig::default().max_retry_attempts, 2);
    }
}
