//! The fault injector and the per-API rate limits of the local cloud.
//!
//! One registry ([`Faults`]) shared by the front server, the hosted Lambda
//! service, the fleet and the CodeDeploy emulator. Faults are added, listed
//! and cleared through the front server's `/_greenlight/faults` endpoints (see
//! the README's local-cloud section) or `greenlight-local fault ...`.
//!
//! A fault ([`FaultSpec`]) is one of:
//! - `throttle`, `error5xx`, `hang`: an API fault, for a service (SigV4
//!   signing name: `codedeploy`, `elasticloadbalancing`, `states`, `lambda`,
//!   `s3`, `ec2`, `autoscaling`, `sns`, `sqs`, `codepipeline`, `events`, ...),
//!   optionally one operation (`GetDeployment`, `DescribeTargetHealth`,
//!   `Invoke`, `PutObject`, ...) and optionally a resource (a deployment id,
//!   target group ARN, function name...: the fault matches a request when the
//!   resource appears in its path, query, form parameters or JSON body). It
//!   fires on the next `count` matching calls, or on `percent` % of them
//!   (drawn from a seeded RNG, so a run is reproducible). The answer is the
//!   service's own error in its own wire shape ([`wire`]); `hang` holds the
//!   request for `hangSeconds` and then drops the connection.
//! - `crash_once`, `timeout_once`: the next `count` (default 1) invocations
//!   of the hosted function named by `resource` crash (`Runtime.ExitError`) or
//!   time out (`Sandbox.Timedout`), see [`crate::lambda_host`];
//!   `unknown_once`: the handler runs, then the invocation fails with
//!   `Lambda.Unknown`, the name Step Functions gives "unhandled errors in
//!   Lambda ... out-of-memory errors and function timeouts" (Step Functions
//!   developer guide, "Handle Lambda service exceptions"); with
//!   `operation`, only invocations whose payload's `action` is that one
//!   (`create`, `status`, `validate`...: the state machine task being run),
//!   so a scenario can crash the watcher's `create` and not its `admit`;
//!   `oversize_once`: the next `count` (default 1) results of that function
//!   are padded past Step Functions' 256 KB task-result limit (a function
//!   answering with a result too large for the state machine), see
//!   [`crate::front::data_limit`].
//! - `kill_instance`, `hang_health`: the instance named by `resource` dies
//!   (its server refuses connections, its CodeDeploy agent stops reporting)
//!   or its health endpoint hangs, see [`crate::fleet::Fleet::kill`].
//! - `fail_rollback`: the next `count` (default 1) rollback deployments of
//!   the deployment group `resource` (`application/group`, or any group when
//!   absent) fail: [`Faults::take_rollback_failure`].
//! - `lose_event`: the next `count` (default 1; or `percent`) "CodeDeploy
//!   Deployment State-change Notification" events of the deployment group
//!   `resource` (`application/group`, or any group when absent) are never
//!   delivered, as EventBridge's best-effort delivery allows:
//!   [`Faults::take_lost_event`].
//!
//! Who is subject to faults and rate limits: every caller except the local
//! cloud's own machinery, which signs with [`INTERNAL_ACCESS_KEY`] (the
//! emulated services calling each other, as AWS's services do not spend your
//! account's tokens, and the test harness reading state back). greenlight's
//! hosted functions sign with [`FUNCTION_ACCESS_KEY`], moto's Step Functions
//! with `ak`, a user's CLI with whatever key it has.

pub mod rate;
pub mod wire;

use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::Duration;

/// The access key of the local cloud's own clients: exempt from faults and rate limits.
pub const INTERNAL_ACCESS_KEY: &str = "local";
/// The access key the hosted greenlight functions sign with (their "execution role").
pub const FUNCTION_ACCESS_KEY: &str = "greenlight-function";

/// How long a `hang` holds a request by default (real seconds): longer than
/// any timeout greenlight's SDK clients have. greenlight configures none, so
/// they run with the SDK defaults of `BehaviorVersion::latest()`: a 3.1 s
/// connect timeout and no read, attempt or operation timeout
/// (aws-smithy-runtime 1.16, `client/defaults.rs`, `default_timeout_config_plugin`);
/// a hung call is only ended by the Lambda timeout, at most 900 s.
pub const DEFAULT_HANG_SECONDS: f64 = 900.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Throttle,
    #[serde(rename = "error5xx")]
    Error5xx,
    Hang,
    CrashOnce,
    TimeoutOnce,
    UnknownOnce,
    OversizeOnce,
    KillInstance,
    HangHealth,
    FailRollback,
    LoseEvent,
}

impl FaultKind {
    /// Faults applied to API requests in the front server.
    pub fn is_api(self) -> bool {
        matches!(self, Self::Throttle | Self::Error5xx | Self::Hang)
    }
}

/// What `POST /_greenlight/faults` takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    pub kind: FaultKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Fire on the next `count` matching calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Or fire on this percentage (0, 100] of matching calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// Seed of the percentage draw (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// `error5xx`: 500 (default) or 503.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `hang`: how long to hold the request, real seconds (default [`DEFAULT_HANG_SECONDS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hang_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    #[error("a {kind} fault needs \"{field}\": {hint}")]
    Missing {
        kind: &'static str,
        field: &'static str,
        hint: &'static str,
    },
    #[error("invalid fault: {0}")]
    Invalid(String),
    #[error("no fault {0}; list them with GET /_greenlight/faults")]
    Unknown(String),
}

fn kind_name(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::Throttle => "throttle",
        FaultKind::Error5xx => "error5xx",
        FaultKind::Hang => "hang",
        FaultKind::CrashOnce => "crash_once",
        FaultKind::TimeoutOnce => "timeout_once",
        FaultKind::UnknownOnce => "unknown_once",
        FaultKind::OversizeOnce => "oversize_once",
        FaultKind::KillInstance => "kill_instance",
        FaultKind::HangHealth => "hang_health",
        FaultKind::FailRollback => "fail_rollback",
        FaultKind::LoseEvent => "lose_event",
    }
}

impl FaultSpec {
    /// Checks the spec and fills in defaults (pure).
    pub fn validated(mut self) -> Result<Self, FaultError> {
        let kind = kind_name(self.kind);
        if let Some(p) = self.percent {
            if !(p > 0.0 && p <= 100.0) {
                return Err(FaultError::Invalid(format!(
                    "percent {p}: give a number in (0, 100]"
                )));
            }
            if self.count.is_some() {
                return Err(FaultError::Invalid(
                    "give either \"count\" (the next N calls) or \"percent\" (a share of calls), not both".into(),
                ));
            }
        }
        if self.count == Some(0) {
            return Err(FaultError::Invalid("count 0 would never fire".into()));
        }
        match self.kind {
            FaultKind::Throttle | FaultKind::Error5xx | FaultKind::Hang => {
                let service = self
                    .service
                    .as_deref()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                if service.is_empty() {
                    return Err(FaultError::Missing {
                        kind,
                        field: "service",
                        hint: "the SigV4 signing name, e.g. codedeploy, elasticloadbalancing, states, lambda, s3",
                    });
                }
                self.service = Some(service);
                if self.count.is_none() && self.percent.is_none() {
                    return Err(FaultError::Missing {
                        kind,
                        field: "count",
                        hint:
                            "\"count\": N for the next N calls, or \"percent\": P for P% of calls",
                    });
                }
                if self.kind == FaultKind::Error5xx {
                    match self.status.unwrap_or(500) {
                        s @ (500 | 503) => self.status = Some(s),
                        other => {
                            return Err(FaultError::Invalid(format!(
                                "status {other}: error5xx answers 500 (InternalFailure) or 503 (ServiceUnavailable)"
                            )))
                        }
                    }
                }
                if self.kind == FaultKind::Hang {
                    let s = self.hang_seconds.unwrap_or(DEFAULT_HANG_SECONDS);
                    if !(s.is_finite() && s > 0.0 && s <= 3600.0) {
                        return Err(FaultError::Invalid(format!(
                            "hangSeconds {s}: give a number of seconds in (0, 3600]"
                        )));
                    }
                    self.hang_seconds = Some(s);
                }
            }
            FaultKind::CrashOnce
            | FaultKind::TimeoutOnce
            | FaultKind::UnknownOnce
            | FaultKind::OversizeOnce
            | FaultKind::KillInstance
            | FaultKind::HangHealth => {
                if self.resource.as_deref().unwrap_or("").trim().is_empty() {
                    return Err(FaultError::Missing {
                        kind,
                        field: "resource",
                        hint: match self.kind {
                            FaultKind::CrashOnce
                            | FaultKind::TimeoutOnce
                            | FaultKind::UnknownOnce
                            | FaultKind::OversizeOnce => {
                                "the hosted function's name, e.g. greenlight-deployment-watcher"
                            }
                            _ => "the instance id, e.g. i-0123456789abcdef0",
                        },
                    });
                }
                if matches!(
                    self.kind,
                    FaultKind::CrashOnce
                        | FaultKind::TimeoutOnce
                        | FaultKind::UnknownOnce
                        | FaultKind::OversizeOnce
                ) && self.percent.is_none()
                    && self.count.is_none()
                {
                    self.count = Some(1);
                }
            }
            FaultKind::FailRollback | FaultKind::LoseEvent => {
                if self.percent.is_none() && self.count.is_none() {
                    self.count = Some(1);
                }
            }
        }
        Ok(self)
    }
}

/// A fault as `GET /_greenlight/faults` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultView {
    pub id: String,
    #[serde(flatten)]
    pub spec: FaultSpec,
    /// How many times it fired.
    pub fired: u64,
    /// How many calls it was offered (matching ones, fired or not).
    pub matched: u64,
    /// False once a count-limited fault is spent.
    pub active: bool,
}

/// One API request, as the fault matching sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCall {
    /// SigV4 signing name, lower case.
    pub service: String,
    pub operation: String,
    /// Path, decoded query and form parameters and body, where a resource is looked for.
    pub text: String,
    pub access_key: Option<String>,
}

impl ApiCall {
    /// The local cloud's own calls are exempt from faults and rate limits.
    pub fn is_internal(&self) -> bool {
        self.access_key.as_deref() == Some(INTERNAL_ACCESS_KEY)
    }
}

/// What the front server does with an API call.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pass,
    /// The service's throttling error; `fault` is None when a rate limit answered.
    Throttle {
        fault: Option<String>,
    },
    Error5xx {
        status: u16,
    },
    Hang {
        duration: Duration,
    },
}

/// What a hosted function's next invocation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionFault {
    Crash,
    Timeout,
    /// The handler ran; the invocation fails as Step Functions reports an
    /// unhandled Lambda error it has no name for (`Lambda.Unknown`).
    Unknown,
    /// The result is padded past Step Functions' 256 KB limit.
    Oversize,
}

/// splitmix64: a tiny deterministic RNG for percentage faults.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 100).
    fn percent(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 100.0
    }
}

#[derive(Debug, Clone)]
struct Fault {
    id: String,
    spec: FaultSpec,
    fired: u64,
    matched: u64,
    rng: SplitMix64,
}

impl Fault {
    fn active(&self) -> bool {
        match self.spec.count {
            Some(n) => self.fired < n,
            None => true,
        }
    }

    /// Offers one matching occasion; true when the fault fires.
    fn offer(&mut self) -> bool {
        if !self.active() {
            return false;
        }
        self.matched += 1;
        let fire = match self.spec.percent {
            Some(p) => self.rng.percent() < p,
            None => true,
        };
        if fire {
            self.fired += 1;
        }
        fire
    }

    fn view(&self) -> FaultView {
        FaultView {
            id: self.id.clone(),
            spec: self.spec.clone(),
            fired: self.fired,
            matched: self.matched,
            active: self.active(),
        }
    }

    fn matches_api(&self, call: &ApiCall) -> bool {
        self.spec.kind.is_api()
            && self.spec.service.as_deref() == Some(call.service.as_str())
            && self
                .spec
                .operation
                .as_deref()
                .is_none_or(|op| op.eq_ignore_ascii_case(&call.operation))
            && self
                .spec
                .resource
                .as_deref()
                .is_none_or(|r| call.text.contains(r))
    }
}

/// The registry of faults: pure bookkeeping, no I/O.
#[derive(Debug, Default)]
pub struct Registry {
    next: u64,
    faults: Vec<Fault>,
}

impl Registry {
    pub fn add(&mut self, spec: FaultSpec) -> Result<FaultView, FaultError> {
        let spec = spec.validated()?;
        self.next += 1;
        let fault = Fault {
            id: format!("f-{}", self.next),
            rng: SplitMix64(spec.seed.unwrap_or(0)),
            spec,
            fired: 0,
            matched: 0,
        };
        let view = fault.view();
        self.faults.push(fault);
        Ok(view)
    }

    pub fn list(&self) -> Vec<FaultView> {
        self.faults.iter().map(Fault::view).collect()
    }

    pub fn clear(&mut self) -> usize {
        let n = self.faults.len();
        self.faults.clear();
        n
    }

    pub fn remove(&mut self, id: &str) -> Result<FaultView, FaultError> {
        let i = self
            .faults
            .iter()
            .position(|f| f.id == id)
            .ok_or_else(|| FaultError::Unknown(id.to_string()))?;
        Ok(self.faults.remove(i).view())
    }

    /// The first active API fault matching the call that fires.
    pub fn decide(&mut self, call: &ApiCall) -> Verdict {
        if call.is_internal() {
            return Verdict::Pass;
        }
        for fault in self.faults.iter_mut().filter(|f| f.matches_api(call)) {
            if fault.offer() {
                return match fault.spec.kind {
                    FaultKind::Throttle => Verdict::Throttle {
                        fault: Some(fault.id.clone()),
                    },
                    FaultKind::Error5xx => Verdict::Error5xx {
                        status: fault.spec.status.unwrap_or(500),
                    },
                    _ => Verdict::Hang {
                        duration: Duration::from_secs_f64(
                            fault.spec.hang_seconds.unwrap_or(DEFAULT_HANG_SECONDS),
                        ),
                    },
                };
            }
        }
        Verdict::Pass
    }

    /// Whether the function's next invocation crashes or times out.
    /// `action` is the invocation payload's `action` (the state machine task),
    /// matched against the fault's `operation` when it names one.
    pub fn take_function_fault(
        &mut self,
        function: &str,
        action: Option<&str>,
    ) -> Option<FunctionFault> {
        for fault in self.faults.iter_mut() {
            let kind = match fault.spec.kind {
                FaultKind::CrashOnce => FunctionFault::Crash,
                FaultKind::TimeoutOnce => FunctionFault::Timeout,
                FaultKind::UnknownOnce => FunctionFault::Unknown,
                FaultKind::OversizeOnce => FunctionFault::Oversize,
                _ => continue,
            };
            let action_matches = fault
                .spec
                .operation
                .as_deref()
                .is_none_or(|op| action.is_some_and(|a| a.eq_ignore_ascii_case(op)));
            if fault.spec.resource.as_deref() == Some(function) && action_matches && fault.offer() {
                return Some(kind);
            }
        }
        None
    }

    /// Whether the next rollback of `application/group` fails.
    pub fn take_rollback_failure(&mut self, application: &str, group: &str) -> bool {
        let target = format!("{application}/{group}");
        self.faults.iter_mut().any(|f| {
            f.spec.kind == FaultKind::FailRollback
                && f.spec.resource.as_deref().is_none_or(|r| r == target)
                && f.offer()
        })
    }

    /// Whether the next CodeDeploy state-change event of `application/group` is lost.
    pub fn take_lost_event(&mut self, application: &str, group: &str) -> bool {
        let target = format!("{application}/{group}");
        self.faults.iter_mut().any(|f| {
            f.spec.kind == FaultKind::LoseEvent
                && f.spec.resource.as_deref().is_none_or(|r| r == target)
                && f.offer()
        })
    }

    /// Records that an instance fault (kill_instance, hang_health) was applied.
    fn record_applied(&mut self, id: &str) {
        if let Some(f) = self.faults.iter_mut().find(|f| f.id == id) {
            f.matched += 1;
            f.fired += 1;
        }
    }
}

/// One non-internal API call as the front server decided it, for the
/// request log ([`Faults::start_call_log`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedCall {
    pub service: String,
    pub operation: String,
    /// [`ApiCall::text`]: path, query/form parameters and body.
    pub text: String,
    /// Answered with the service's throttling error (a rate limit or a fault).
    pub throttled: bool,
}

/// The shared, thread-safe fault registry and rate limiter.
#[derive(Debug)]
pub struct Faults {
    registry: Mutex<Registry>,
    limits: Mutex<rate::RateLimiter>,
    started: std::time::Instant,
    /// The request log, while one is kept (off by default: it grows with every call).
    calls: Mutex<Option<Vec<LoggedCall>>>,
}

impl Default for Faults {
    fn default() -> Self {
        Self::new(rate::RateMode::Aws)
    }
}

impl Faults {
    pub fn new(mode: rate::RateMode) -> Self {
        Self {
            registry: Mutex::new(Registry::default()),
            limits: Mutex::new(rate::RateLimiter::new(mode)),
            started: std::time::Instant::now(),
            calls: Mutex::new(None),
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn limits(&self) -> std::sync::MutexGuard<'_, rate::RateLimiter> {
        self.limits.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add(&self, spec: FaultSpec) -> Result<FaultView, FaultError> {
        self.registry().add(spec)
    }

    pub fn list(&self) -> Vec<FaultView> {
        self.registry().list()
    }

    pub fn clear(&self) -> usize {
        self.registry().clear()
    }

    pub fn remove(&self, id: &str) -> Result<FaultView, FaultError> {
        self.registry().remove(id)
    }

    pub fn record_applied(&self, id: &str) {
        self.registry().record_applied(id)
    }

    /// Faults first, then the rate limit of the call's API. Non-internal
    /// calls go to the request log while one is kept.
    pub fn decide(&self, call: &ApiCall) -> Verdict {
        if call.is_internal() {
            return Verdict::Pass;
        }
        let verdict = self.decide_external(call);
        if let Some(log) = self
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            log.push(LoggedCall {
                service: call.service.clone(),
                operation: call.operation.clone(),
                text: call.text.clone(),
                throttled: matches!(verdict, Verdict::Throttle { .. }),
            });
        }
        verdict
    }

    fn decide_external(&self, call: &ApiCall) -> Verdict {
        match self.registry().decide(call) {
            Verdict::Pass => {}
            other => return other,
        }
        let now = self.started.elapsed().as_secs_f64();
        if self.limits().admit(&call.service, &call.operation, now) {
            Verdict::Pass
        } else {
            Verdict::Throttle { fault: None }
        }
    }

    /// Starts keeping a request log of every non-internal call (empties one
    /// already kept).
    pub fn start_call_log(&self) {
        *self.calls.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
    }

    /// The request log so far, emptied (it stays on); empty when none is kept.
    pub fn take_call_log(&self) -> Vec<LoggedCall> {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    pub fn take_function_fault(
        &self,
        function: &str,
        action: Option<&str>,
    ) -> Option<FunctionFault> {
        self.registry().take_function_fault(function, action)
    }

    /// Whether the next rollback deployment of `application`/`group` must
    /// fail (a `fail_rollback` fault): consulted once per rollback deployment
    /// by the CodeDeploy emulator; true consumes one firing.
    pub fn take_rollback_failure(&self, application: &str, group: &str) -> bool {
        self.registry().take_rollback_failure(application, group)
    }

    /// Whether the next "CodeDeploy Deployment State-change Notification" of
    /// `application`/`group` is lost (a `lose_event` fault): consulted once
    /// per event by the CodeDeploy emulator; true consumes one firing.
    pub fn take_lost_event(&self, application: &str, group: &str) -> bool {
        self.registry().take_lost_event(application, group)
    }

    pub fn rate_mode(&self) -> rate::RateMode {
        self.limits().mode()
    }

    pub fn set_rate_mode(&self, mode: rate::RateMode) {
        self.limits().set_mode(mode)
    }

    /// How many calls each rate limit throttled, `service:Operation` → count.
    pub fn throttled_counts(&self) -> std::collections::BTreeMap<String, u64> {
        self.limits().throttled()
    }
}

#[cfg(test)]
mod tests;
