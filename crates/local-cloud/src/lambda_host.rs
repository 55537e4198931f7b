//! The Lambda service, in-process: the five greenlight handlers (the same
//! library code as the Lambda binaries) behind AWS Lambda's invoke semantics.
//!
//! A function is addressed as on AWS by name, `name:qualifier`, full ARN
//! (`arn:aws:lambda:<region>:<account>:function:<name>[:qualifier]`) or partial
//! ARN (`<account>:function:<name>`). An invocation deserializes the payload
//! into the handler's `Request` exactly as `lambda_runtime` does (a mismatch is
//! the runtime's own `lambda_runtime::deserializer::DeserializeError` function
//! error), runs the handler with a fresh [`Context`] (request id, function ARN,
//! deadline), and serializes its `Response`. A handler error becomes the
//! handler's `Diagnostic`, which the front server answers as
//! `X-Amz-Function-Error: Unhandled` + `{"errorType","errorMessage"}`.
//!
//! Limits and faults ([`LambdaHost::configure`]): each function runs with the
//! `Timeout` template.yaml gives it (Globals and per function, read by
//! [`crate::statemachine::function_timeouts`]), mapped to real time by [`real_timeout`]; past
//! it the invocation fails as AWS Lambda's does: function error
//! `Sandbox.Timedout`, message `RequestId: <id> Error: Task timed out after
//! N.NN seconds` (N in AWS seconds), which Step Functions sees as a task
//! failure it can Retry/Catch (Step Functions developer guide, "Handling
//! errors": `Sandbox.Timedout`). The handler's future is dropped at the
//! deadline (a real Lambda sandbox is frozen then: work not done by then is
//! lost). Faults ([`crate::faults`]): `crash_once` runs the handler, then
//! the runtime exits before answering (side effects done, result lost: the
//! harsher reading; AWS Lambda developer guide, "Understanding retry behavior
//! in Lambda" (docs.aws.amazon.com/lambda/latest/dg/invocation-retries): after
//! a function error "your function's code might have run completely,
//! partially, or not at all"), answered as Lambda reports a runtime that exits:
//! `Runtime.ExitError`, `RequestId: <id> Error: Runtime exited with error:
//! exit status 101` (the status of a Rust panic); `timeout_once` runs the
//! handler, holds the answer until the deadline and fails with
//! `Sandbox.Timedout`; `unknown_once` runs the handler and fails with
//! `Lambda.Unknown` ([`unhandled_unknown`]); `oversize_once` runs the handler and pads its result
//! (a JSON object gets a `greenlightPadding` field) past Step Functions'
//! 256 KB task-result limit, which the front server then enforces for the
//! state machine's calls ([`crate::front::data_limit`]).
//!
//! Tests (and the CLI) may [`LambdaHost::register`] extra functions.

pub mod async_invoke;
mod greenlight;
pub use greenlight::FunctionConfigs;

use crate::clock::TimeScale;
use crate::faults::{Faults, FunctionFault};
use lambda_runtime::{Context, Diagnostic};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// A boxed, sendable future (object-safe async).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The account moto uses by default; every local ARN carries it.
pub const DEFAULT_ACCOUNT_ID: &str = "123456789012";

/// The hosted functions' names (as in template.yaml: the five functions and the
/// pipeline trigger on the deploy trigger's code).
pub const DEPLOY_TRIGGER: &str = "greenlight-deploy-trigger";
/// template.yaml's `PipelineTriggerFunction`: deploy-trigger's code for
/// CodePipeline jobs (no on-failure destination, no retries).
pub const PIPELINE_TRIGGER: &str = "greenlight-pipeline-trigger";
pub const HEALTH_CHECK_TUNER: &str = "greenlight-health-check-tuner";
pub const TRAFFIC_VALIDATOR: &str = "greenlight-traffic-validator";
pub const DEPLOYMENT_WATCHER: &str = "greenlight-deployment-watcher";
pub const FAILURE_HANDLER: &str = "greenlight-failure-handler";

/// Lambda's maximum timeout: the deadline every hosted invocation gets.
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(900);

/// Something that can be invoked like a Lambda function.
pub trait HostedFunction: Send + Sync {
    fn invoke(&self, payload: Value, context: Context) -> BoxFuture<'_, Result<Value, Diagnostic>>;
}

/// A function made of a closure (tests, demo helpers).
pub struct FnFunction<F>(pub F);

impl<F> HostedFunction for FnFunction<F>
where
    F: Fn(Value, Context) -> BoxFuture<'static, Result<Value, Diagnostic>> + Send + Sync,
{
    fn invoke(&self, payload: Value, context: Context) -> BoxFuture<'_, Result<Value, Diagnostic>> {
        (self.0)(payload, context)
    }
}

/// Deserializes a payload as `lambda_runtime` does before calling a handler.
pub fn decode_payload<T: DeserializeOwned>(payload: Value) -> Result<T, Diagnostic> {
    serde_json::from_value(payload).map_err(|e| Diagnostic {
        // The type name lambda_runtime reports for the same failure.
        error_type: "lambda_runtime::deserializer::DeserializeError".to_string(),
        error_message: format!(
            "failed to deserialize the incoming data into the function's payload type: {e}"
        ),
    })
}

/// Serializes a handler's response (lambda_runtime's serialization step).
pub fn encode_response<T: Serialize>(response: T) -> Result<Value, Diagnostic> {
    serde_json::to_value(response).map_err(|e| Diagnostic {
        error_type: "Runtime.SerializationError".to_string(),
        error_message: format!("failed to serialize the function's response: {e}"),
    })
}

/// The in-process Lambda service.
pub struct LambdaHost {
    account_id: String,
    region: String,
    functions: RwLock<BTreeMap<String, Hosted>>,
    limits: RwLock<FunctionLimits>,
    invocations: Mutex<Vec<Invocation>>,
}

/// One finished invocation, as Lambda would bill it (the real time the
/// handler ran, whatever the time scale: a function's own work does not
/// speed up).
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub function: String,
    /// The payload's `action`, when it has one.
    pub action: Option<String>,
    pub duration: Duration,
}

/// Timeouts, time scale and faults of the hosted functions.
#[derive(Clone)]
pub struct FunctionLimits {
    /// Each function's `Timeout` in AWS seconds; [`FUNCTION_TIMEOUT`] when absent.
    pub timeouts: BTreeMap<String, Duration>,
    pub scale: TimeScale,
    /// Real time an invocation gets for its own work on top of its scaled
    /// timeout ([`real_timeout`]); [`WORK_ALLOWANCE`] unless a test of the
    /// mechanism sets it.
    pub work_allowance: Duration,
    pub faults: Option<Arc<Faults>>,
    /// Record every invocation for [`LambdaHost::invocations`] (off unless
    /// asked: the records grow with every invocation).
    pub record_invocations: bool,
}

impl Default for FunctionLimits {
    fn default() -> Self {
        Self {
            timeouts: BTreeMap::new(),
            scale: TimeScale::new(1.0),
            work_allowance: WORK_ALLOWANCE,
            faults: None,
            record_invocations: false,
        }
    }
}

/// The real time a hosted function's own work (API round trips, compute)
/// may take within one invocation, whatever the time scale: the failure
/// handler's reserve for its report (30 s), the most greenlight plans for.
pub const WORK_ALLOWANCE: Duration =
    Duration::from_millis(greenlight_core::bake::standby_record::SETTLE_RESERVE_MS as u64);

/// The real duration an invocation may run before `Sandbox.Timedout`.
///
/// On AWS a function's `Timeout` covers two kinds of time: waits on the
/// cloud (a rollback to end, a listener change to settle, targets to turn
/// healthy), which the local cloud compresses by its time scale (and the
/// functions' local configuration scales alike, e.g. `ROLLBACK_WAIT_SECONDS`),
/// and the function's own work, which runs in real time here as on AWS.
/// Scaling the whole timeout would fail work AWS finishes in time (at 0.1 a
/// 30 s function would get 3 s for its API calls: ten times harsher than
/// AWS, and a false failure under load, not a harsher AWS). So: the scaled
/// timeout plus [`WORK_ALLOWANCE`] of real time, never more than the
/// unscaled `Timeout`. AWS has no time scale, so this mapping is ours (an
/// undocumented detail, see the emulation table's "Lambda timeouts under a
/// time scale" row): it is gentler than AWS only for a function whose waits
/// on the cloud alone would outlast its Timeout, which `scripts/check-static.py`
/// checks from the template instead (the failure handler's rollback wait and
/// report reserve must fit its Timeout).
pub fn real_timeout(timeout: Duration, scale: TimeScale, work_allowance: Duration) -> Duration {
    let scaled = scale.real(timeout).min(timeout);
    scaled + timeout.saturating_sub(scaled).min(work_allowance)
}

/// Lambda's answer for an invocation that ran past its timeout.
pub fn timed_out(request_id: &str, timeout: Duration) -> Diagnostic {
    Diagnostic {
        error_type: "Sandbox.Timedout".to_string(),
        error_message: format!(
            "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
            timeout.as_secs_f64()
        ),
    }
}

/// Lambda's answer for an invocation whose runtime exited (a Rust panic: status 101).
pub fn runtime_exited(request_id: &str) -> Diagnostic {
    Diagnostic {
        error_type: "Runtime.ExitError".to_string(),
        error_message: format!(
            "RequestId: {request_id} Error: Runtime exited with error: exit status 101"
        ),
    }
}

/// An invocation Step Functions reports as `Lambda.Unknown`: AWS documents
/// that "unhandled errors in Lambda are reported as Lambda.Unknown ... These
/// include out-of-memory errors and function timeouts" (Step Functions
/// developer guide, "Handle Lambda service exceptions"), without saying
/// which timeouts get that name instead of `Sandbox.Timedout`: the harsher
/// reading is that either can reach the state machine. Here the function's
/// own error payload carries the name (which is where Step Functions reads
/// a function error's name from); a direct `Invoke` caller on AWS would see
/// the runtime's error instead (e.g. `Runtime.OutOfMemory`).
pub fn unhandled_unknown(request_id: &str) -> Diagnostic {
    Diagnostic {
        error_type: "Lambda.Unknown".to_string(),
        error_message: format!(
            "RequestId: {request_id} Error: Runtime exited with error: signal: killed"
        ),
    }
}

/// A registered function and when it was registered (its `LastModified`).
struct Hosted {
    function: Arc<dyn HostedFunction>,
    registered_ms: i64,
}

impl LambdaHost {
    /// A host with no function (register them one by one).
    pub fn empty(account_id: &str, region: &str) -> Arc<Self> {
        Arc::new(Self {
            account_id: account_id.to_string(),
            region: region.to_string(),
            functions: RwLock::new(BTreeMap::new()),
            limits: RwLock::new(FunctionLimits::default()),
            invocations: Mutex::new(Vec::new()),
        })
    }

    /// Every invocation so far, in the order they ended, when
    /// [`FunctionLimits::record_invocations`] is on (empty otherwise).
    pub fn invocations(&self) -> Vec<Invocation> {
        self.invocations
            .lock()
            .map(|i| i.clone())
            .unwrap_or_default()
    }

    /// Sets the functions' timeouts, the time scale and the fault registry.
    pub fn configure(&self, limits: FunctionLimits) {
        if let Ok(mut l) = self.limits.write() {
            *l = limits;
        }
    }

    fn limits(&self) -> FunctionLimits {
        self.limits.read().map(|l| l.clone()).unwrap_or_default()
    }

    /// A function's timeout in AWS seconds.
    pub fn timeout_of(&self, name: &str) -> Duration {
        self.limits()
            .timeouts
            .get(name)
            .copied()
            .unwrap_or(FUNCTION_TIMEOUT)
    }

    /// Adds (or replaces) a function under `name`.
    pub fn register(&self, name: &str, function: Arc<dyn HostedFunction>) {
        if let Ok(mut functions) = self.functions.write() {
            functions.insert(
                name.to_string(),
                Hosted {
                    function,
                    registered_ms: greenlight_aws::now_ms(),
                },
            );
        }
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The hosted functions' names.
    pub fn function_names(&self) -> Vec<String> {
        self.functions
            .read()
            .map(|f| f.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// When a hosted function was registered (Unix ms): its `LastModified`.
    pub fn registered_at_ms(&self, name: &str) -> Option<i64> {
        self.functions
            .read()
            .ok()
            .and_then(|f| f.get(name).map(|h| h.registered_ms))
    }

    /// `arn:aws:lambda:<region>:<account>:function:<name>`.
    pub fn function_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{name}",
            self.region, self.account_id
        )
    }

    /// The hosted function's name for a name, partial ARN or ARN (with or
    /// without a qualifier), if it is hosted here.
    pub fn resolve(&self, function_name_or_arn: &str) -> Option<String> {
        let name = parse_function_name(function_name_or_arn)?;
        let functions = self.functions.read().ok()?;
        functions.contains_key(name).then(|| name.to_string())
    }

    /// Invokes a function synchronously (RequestResponse). Unknown function:
    /// a `ResourceNotFoundException` diagnostic (the front server checks
    /// [`LambdaHost::resolve`] first and answers AWS's 404 instead).
    pub async fn invoke(
        &self,
        function_name_or_arn: &str,
        payload: Value,
    ) -> Result<Value, Diagnostic> {
        let Some(name) = self.resolve(function_name_or_arn) else {
            return Err(Diagnostic {
                error_type: "ResourceNotFoundException".to_string(),
                error_message: format!(
                    "Function not found: {}",
                    self.function_arn(
                        parse_function_name(function_name_or_arn).unwrap_or(function_name_or_arn)
                    )
                ),
            });
        };
        let function = self
            .functions
            .read()
            .ok()
            .and_then(|f| f.get(&name).map(|h| h.function.clone()));
        let Some(function) = function else {
            return Err(Diagnostic {
                error_type: "ResourceNotFoundException".to_string(),
                error_message: format!("Function not found: {}", self.function_arn(&name)),
            });
        };
        let limits = self.limits();
        let timeout = limits
            .timeouts
            .get(&name)
            .copied()
            .unwrap_or(FUNCTION_TIMEOUT);
        let real_timeout = real_timeout(timeout, limits.scale, limits.work_allowance);
        let context = self.context_for(&name, real_timeout);
        let request_id = context.request_id.clone();
        let action = payload
            .get("action")
            .and_then(Value::as_str)
            .map(str::to_string);
        let fault = limits
            .faults
            .as_ref()
            .and_then(|f| f.take_function_fault(&name, action.as_deref()));
        tracing::debug!(function = %name, request_id = %request_id, ?fault, "invoke");
        let started = tokio::time::Instant::now();
        let deadline = started + real_timeout;
        let outcome = tokio::time::timeout_at(deadline, function.invoke(payload, context)).await;
        if let (true, Ok(mut invocations)) = (limits.record_invocations, self.invocations.lock()) {
            invocations.push(Invocation {
                function: name.clone(),
                action: action.clone(),
                duration: started.elapsed(),
            });
        }
        match (fault, outcome) {
            (_, Err(_elapsed)) => {
                tracing::warn!(function = %name, %request_id, ?timeout, "invocation timed out");
                Err(timed_out(&request_id, timeout))
            }
            (Some(FunctionFault::Timeout), Ok(_discarded)) => {
                tokio::time::sleep_until(deadline).await;
                Err(timed_out(&request_id, timeout))
            }
            (Some(FunctionFault::Crash), Ok(_discarded)) => Err(runtime_exited(&request_id)),
            (Some(FunctionFault::Unknown), Ok(_discarded)) => Err(unhandled_unknown(&request_id)),
            (Some(FunctionFault::Oversize), Ok(result)) => result.map(oversized),
            (None, Ok(result)) => result,
        }
    }

    fn context_for(&self, name: &str, timeout: Duration) -> Context {
        let mut context = Context::default();
        context.request_id = new_request_id();
        context.invoked_function_arn = self.function_arn(name);
        context.deadline =
            (greenlight_aws::now_ms().max(0) as u64).saturating_add(timeout.as_millis() as u64);
        context
    }
}

/// `result` grown past Step Functions' task-result limit: an object gets a
/// `greenlightPadding` string field, anything else is wrapped as
/// `{"result": .., "greenlightPadding": ..}` (pure).
pub fn oversized(result: Value) -> Value {
    let padding = Value::String("x".repeat(crate::front::data_limit::SFN_PAYLOAD_LIMIT + 1));
    match result {
        Value::Object(mut map) => {
            map.insert("greenlightPadding".to_string(), padding);
            Value::Object(map)
        }
        other => serde_json::json!({"result": other, "greenlightPadding": padding}),
    }
}

/// The function name inside a Lambda `FunctionName` parameter: `name`,
/// `name:qualifier`, `account:function:name[:qualifier]` or
/// `arn:<partition>:lambda:<region>:<account>:function:name[:qualifier]`.
pub fn parse_function_name(function_name_or_arn: &str) -> Option<&str> {
    let parts: Vec<&str> = function_name_or_arn.split(':').collect();
    let name = match parts.as_slice() {
        [name] | [name, _] => *name,
        [_, "function", name] | [_, "function", name, _] => *name,
        ["arn", _, "lambda", _, _, "function", name]
        | ["arn", _, "lambda", _, _, "function", name, _] => *name,
        _ => return None,
    };
    let valid = !name.is_empty()
        && name.len() <= 140
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    valid.then_some(name)
}

/// A UUID-shaped request id (random v4).
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Ping {
        n: u32,
    }

    fn host() -> Arc<LambdaHost> {
        let host = LambdaHost::empty(DEFAULT_ACCOUNT_ID, "us-east-1");
        host.register(
            "echo",
            Arc::new(FnFunction(|payload: Value, ctx: Context| {
                Box::pin(async move {
                    let ping: Ping = decode_payload(payload)?;
                    if ping.n == 0 {
                        return Err(Diagnostic {
                            error_type: "GroupBusy".into(),
                            error_message: "busy".into(),
                        });
                    }
                    Ok(serde_json::json!({"n": ping.n + 1, "arn": ctx.invoked_function_arn, "rid": ctx.request_id}))
                }) as BoxFuture<'static, _>
            })),
        );
        host
    }

    #[test]
    fn parses_every_function_name_form() {
        assert_eq!(parse_function_name("f"), Some("f"));
        assert_eq!(parse_function_name("f:$LATEST"), Some("f"));
        assert_eq!(parse_function_name("123456789012:function:f"), Some("f"));
        assert_eq!(
            parse_function_name("arn:aws:lambda:us-east-1:123456789012:function:my-fn"),
            Some("my-fn")
        );
        assert_eq!(
            parse_function_name("arn:aws:lambda:us-east-1:123456789012:function:my_fn:live"),
            Some("my_fn")
        );
        assert_eq!(parse_function_name("arn:aws:s3:::bucket"), None);
        assert_eq!(parse_function_name(""), None);
        assert_eq!(parse_function_name("a/b"), None);
    }

    #[tokio::test]
    async fn invokes_by_name_and_arn_with_a_context() {
        let host = host();
        let out = host
            .invoke("echo", serde_json::json!({"n": 1}))
            .await
            .unwrap();
        assert_eq!(out["n"], 2);
        assert_eq!(
            out["arn"],
            "arn:aws:lambda:us-east-1:123456789012:function:echo"
        );
        assert_eq!(out["rid"].as_str().unwrap().len(), 36);
        let out = host
            .invoke(
                "arn:aws:lambda:us-east-1:123456789012:function:echo",
                serde_json::json!({"n": 5}),
            )
            .await
            .unwrap();
        assert_eq!(out["n"], 6);
    }

    #[tokio::test]
    async fn handler_errors_and_bad_payloads_are_diagnostics() {
        let host = host();
        let err = host
            .invoke("echo", serde_json::json!({"n": 0}))
            .await
            .unwrap_err();
        assert_eq!(err.error_type, "GroupBusy");
        let err = host
            .invoke("echo", serde_json::json!({"wrong": true}))
            .await
            .unwrap_err();
        assert_eq!(
            err.error_type,
            "lambda_runtime::deserializer::DeserializeError"
        );
        assert!(err.error_message.contains("missing field `n`"));
        let err = host
            .invoke("nope", serde_json::json!({}))
            .await
            .unwrap_err();
        assert_eq!(err.error_type, "ResourceNotFoundException");
        assert!(host.resolve("nope").is_none());
    }

    #[test]
    fn a_timeout_is_scaled_plus_a_real_allowance_for_the_functions_own_work() {
        let s = Duration::from_secs;
        let at = |scale| TimeScale::new(scale);
        // AWS's own clock: the template's Timeout exactly.
        assert_eq!(real_timeout(s(30), at(1.0), WORK_ALLOWANCE), s(30));
        assert_eq!(real_timeout(s(300), at(1.0), WORK_ALLOWANCE), s(300));
        // The tests' 0.1: short functions keep their whole Timeout for work...
        assert_eq!(real_timeout(s(30), at(0.1), WORK_ALLOWANCE), s(30));
        assert_eq!(real_timeout(s(3), at(0.1), WORK_ALLOWANCE), s(3));
        // ...long ones get their scaled waits plus 30 s of work.
        assert_eq!(real_timeout(s(60), at(0.1), WORK_ALLOWANCE), s(36));
        assert_eq!(real_timeout(s(300), at(0.1), WORK_ALLOWANCE), s(60));
        assert_eq!(real_timeout(s(720), at(0.1), WORK_ALLOWANCE), s(102));
        // No allowance: the scaled Timeout alone.
        assert_eq!(real_timeout(s(300), at(0.1), Duration::ZERO), s(30));
        // Never past the unscaled Timeout, whatever the allowance.
        assert_eq!(real_timeout(s(10), at(0.5), s(3600)), s(10));
    }

    #[tokio::test]
    async fn template_timeouts_and_function_faults_fail_as_lambda_does() {
        let host = host();
        let faults = Arc::new(Faults::default());
        host.configure(FunctionLimits {
            timeouts: [("echo".to_string(), Duration::from_secs(3))]
                .into_iter()
                .collect(),
            scale: TimeScale::new(0.001),
            work_allowance: Duration::ZERO,
            faults: Some(faults.clone()),
            record_invocations: true,
        });
        assert_eq!(host.timeout_of("echo"), Duration::from_secs(3));
        let spec = |kind| crate::faults::FaultSpec {
            kind,
            service: None,
            operation: None,
            resource: Some("echo".into()),
            count: None,
            percent: None,
            seed: None,
            status: None,
            hang_seconds: None,
        };
        faults
            .add(spec(crate::faults::FaultKind::CrashOnce))
            .unwrap();
        let err = host
            .invoke("echo", serde_json::json!({"n": 1}))
            .await
            .unwrap_err();
        assert_eq!(err.error_type, "Runtime.ExitError");
        assert!(err
            .error_message
            .ends_with("Error: Runtime exited with error: exit status 101"));
        faults
            .add(spec(crate::faults::FaultKind::TimeoutOnce))
            .unwrap();
        let err = host
            .invoke("echo", serde_json::json!({"n": 1}))
            .await
            .unwrap_err();
        assert_eq!(err.error_type, "Sandbox.Timedout");
        assert!(
            err.error_message
                .ends_with("Error: Task timed out after 3.00 seconds"),
            "{}",
            err.error_message
        );
        faults
            .add(spec(crate::faults::FaultKind::UnknownOnce))
            .unwrap();
        let err = host
            .invoke("echo", serde_json::json!({"n": 1}))
            .await
            .unwrap_err();
        assert_eq!(err.error_type, "Lambda.Unknown");
        faults
            .add(spec(crate::faults::FaultKind::OversizeOnce))
            .unwrap();
        let big = host
            .invoke("echo", serde_json::json!({"n": 1}))
            .await
            .unwrap();
        assert_eq!(big["n"], 2, "the handler's own answer is kept");
        assert!(
            big.to_string().len() > crate::front::data_limit::SFN_PAYLOAD_LIMIT,
            "padded past 256 KB"
        );
        // Spent: the next invocation answers.
        assert_eq!(
            host.invoke("echo", serde_json::json!({"n": 1}))
                .await
                .unwrap()["n"],
            2
        );
        // Recorded (asked for above): every invocation, failed ones included.
        let recorded = host.invocations();
        assert_eq!(recorded.len(), 5, "{recorded:?}");
        assert!(recorded.iter().all(|i| i.function == "echo"));
        // Not recorded unless asked: a long-running local cloud does not grow.
        host.configure(FunctionLimits {
            record_invocations: false,
            ..host.limits()
        });
        host.invoke("echo", serde_json::json!({"n": 1}))
            .await
            .unwrap();
        assert_eq!(host.invocations().len(), 5);
        // A handler slower than its (scaled) timeout: 3 ms real here (no work allowance).
        host.register(
            "echo",
            Arc::new(FnFunction(|_: Value, _: Context| {
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok(serde_json::json!({}))
                }) as BoxFuture<'static, _>
            })),
        );
        let err = host
            .invoke("echo", serde_json::json!({}))
            .await
            .unwrap_err();
        assert_eq!(err.error_type, "Sandbox.Timedout");
    }
}
