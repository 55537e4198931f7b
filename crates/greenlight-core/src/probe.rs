//! The green gate: judging HTTP probes of the green fleet, sans-IO.
//!
//! The traffic validator probes every green instance of a deployment before
//! traffic moves to it. This module holds every decision of that loop and
//! performs none of the I/O (the style of `quinn-proto`): the shell asks
//! [`decide`] what to do, sends the requests it is told to, feeds each
//! answer back with [`InstanceTracker::record`], and asks again.
//!
//! Rules:
//! - One probe of an instance is `GET <path>` and, when a version path is
//!   configured and the health answer was good, `GET <version path>`. It
//!   succeeds when the health answer has the expected status and the version
//!   answer (2xx) contains the revision label ([`judge`]).
//! - An instance passes after `required_successes` consecutive successful
//!   probes; a failure resets its streak. A passed instance is not probed again.
//! - An instance fails as soon as it can no longer reach the required streak
//!   with probes issued at or before the overall deadline (so a steadily
//!   failing instance is probed until `deadline - (required - 1) × interval`,
//!   the last moment a full streak would still fit), or at once when it has no
//!   address. Its evidence is its most recent failing answer.
//! - Any failed instance fails the gate; no green instance at all fails it
//!   too ("no green targets"); all instances passed passes it.

use crate::model::{DeploymentStatus, EpochMillis, InstanceEvidence};

/// At most this many characters of an answer body or error are kept as evidence.
pub const EXCERPT_CHARS: usize = 200;

/// How many bytes of an answer body the shell should read at most: enough
/// for any health or version page, bounded so a huge answer cannot exhaust
/// the function's memory.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How the green fleet is probed (environment variables of the traffic validator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeConfig {
    /// Health path, e.g. `/health` (`PROBE_PATH`).
    pub path: String,
    /// Version path whose answer must contain the revision label, e.g.
    /// `/version`; `None` = no version check (`VERSION_PATH`, empty = none).
    pub version_path: Option<String>,
    /// Port to probe; `None` = the deployment group's target group port (`PROBE_PORT`).
    pub port: Option<u16>,
    /// Status the health path must answer (`EXPECTED_STATUS`).
    pub expected_status: u16,
    /// Consecutive successful probes an instance needs (`REQUIRED_SUCCESSES`, ≥ 1).
    pub required_successes: u32,
    /// Time limit of one probe, both requests included (`PROBE_TIMEOUT_MS`).
    pub probe_timeout_ms: u64,
    /// Time between the starts of two probes of one instance (`PROBE_INTERVAL_MS`).
    pub interval_ms: u64,
    /// Overall time limit of the validation, from its start (`VALIDATION_DEADLINE_SECONDS` × 1000).
    pub deadline_ms: u64,
}

impl Default for ProbeConfig {
    /// The documented defaults: `/health`, `/version`, target group port,
    /// 200, 3 successes, 2 s timeout, 1 s interval, 120 s deadline.
    fn default() -> Self {
        Self {
            path: "/health".to_string(),
            version_path: Some("/version".to_string()),
            port: None,
            expected_status: 200,
            required_successes: 3,
            probe_timeout_ms: 2_000,
            interval_ms: 1_000,
            deadline_ms: 120_000,
        }
    }
}

/// A setting of [`ProbeConfig`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} is invalid: {problem}")]
pub struct InvalidProbeConfig {
    /// The [`ProbeConfig`] field.
    pub field: &'static str,
    pub problem: String,
}

impl ProbeConfig {
    /// Checks the settings that would make the gate meaningless or impossible.
    pub fn validate(&self) -> Result<(), InvalidProbeConfig> {
        let invalid = |field, problem: &str| {
            Err(InvalidProbeConfig {
                field,
                problem: problem.to_string(),
            })
        };
        if !self.path.starts_with('/') {
            return invalid("path", "must start with '/', e.g. /health");
        }
        if let Some(v) = &self.version_path {
            if !v.starts_with('/') {
                return invalid(
                    "version_path",
                    "must start with '/', e.g. /version (or be empty for no version check)",
                );
            }
        }
        if self
            .path
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
            || self
                .version_path
                .as_deref()
                .is_some_and(|v| v.chars().any(|c| c.is_control() || c.is_whitespace()))
        {
            return invalid("path", "must not contain spaces or control characters");
        }
        if self.port == Some(0) {
            return invalid(
                "port",
                "must be 1-65535 (or unset for the target group port)",
            );
        }
        if !(100..=599).contains(&self.expected_status) {
            return invalid("expected_status", "must be an HTTP status 100-599");
        }
        if self.required_successes == 0 {
            return invalid("required_successes", "must be at least 1");
        }
        if self.probe_timeout_ms == 0 {
            return invalid("probe_timeout_ms", "must be at least 1 ms");
        }
        Ok(())
    }

    /// The streak an instance needs (never 0, whatever the config says).
    pub fn required(&self) -> u32 {
        self.required_successes.max(1)
    }

    /// Absolute deadline of a validation that started at `started_at`.
    pub fn deadline_at(&self, started_at: EpochMillis) -> EpochMillis {
        started_at.saturating_add(ms(self.deadline_ms))
    }
}

/// Time a validation keeps, before its invocation's own deadline, to call
/// ContinueDeployment / StopDeployment and answer.
pub const INVOCATION_MARGIN_MS: i64 = 10_000;

/// The overall deadline (ms from `started_at`) a validation can really use:
/// the configured `deadline_ms`, shortened when the invocation must end
/// (`invocation_deadline_at`, the Lambda context's deadline) sooner than
/// `deadline + INVOCATION_MARGIN_MS`, so the gate always decides and acts
/// instead of being cut off by the function timeout.
pub fn deadline_within_invocation(
    deadline_ms: u64,
    started_at: EpochMillis,
    invocation_deadline_at: Option<EpochMillis>,
) -> u64 {
    match invocation_deadline_at {
        None => deadline_ms,
        Some(end) => {
            let usable = end
                .saturating_sub(INVOCATION_MARGIN_MS)
                .saturating_sub(started_at)
                .max(0);
            deadline_ms.min(u64::try_from(usable).unwrap_or(0))
        }
    }
}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `ip:port` as probed and reported (`[ip]:port` for an IPv6 address).
pub fn socket_address(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// The URL of one request: `http://<address><path>` (plain HTTP, as the
/// load balancer's health check talks to its targets).
pub fn probe_url(address: &str, path: &str) -> String {
    if path.starts_with('/') {
        format!("http://{address}{path}")
    } else {
        format!("http://{address}/{path}")
    }
}

/// Text fit for evidence: control characters removed (line breaks and tabs
/// become spaces), runs of spaces collapsed, trimmed, and at most
/// [`EXCERPT_CHARS`] characters (`…` marks a cut).
pub fn excerpt(text: &str) -> String {
    let mut cleaned = String::with_capacity(text.len().min(EXCERPT_CHARS * 4));
    let mut count = 0usize;
    let mut truncated = false;
    let mut pending_space = false;
    for c in text.chars() {
        let c = if c.is_whitespace() {
            ' '
        } else if c.is_control() || is_invisible_format(c) {
            continue;
        } else {
            c
        };
        if c == ' ' {
            pending_space = true;
            continue;
        }
        let needed = if pending_space && count > 0 { 2 } else { 1 };
        if count + needed > EXCERPT_CHARS {
            truncated = true;
            break;
        }
        if pending_space && count > 0 {
            cleaned.push(' ');
            count += 1;
        }
        pending_space = false;
        cleaned.push(c);
        count += 1;
    }
    if truncated {
        cleaned.push('…');
    }
    cleaned
}

/// Bidi overrides and zero-width characters that would disguise evidence.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// What one HTTP request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpOutcome {
    /// The instance answered (body possibly cut at [`MAX_BODY_BYTES`]).
    Answered { status: u16, body: String },
    /// No answer: connection refused, reset, timed out, ...
    NoAnswer { error: String },
}

/// Everything one probe of one instance got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeAnswer {
    /// The answer of `GET <path>`.
    pub health: HttpOutcome,
    /// The answer of `GET <version path>`, when it was asked
    /// (see [`version_request`]).
    pub version: Option<HttpOutcome>,
}

impl ProbeAnswer {
    /// A probe that got no answer at all (e.g. the probe timed out as a whole).
    pub fn no_answer(error: impl Into<String>) -> Self {
        Self {
            health: HttpOutcome::NoAnswer {
                error: error.into(),
            },
            version: None,
        }
    }
}

/// The version path to ask after the health answer `health`, if any: only
/// when a version path is configured and the health answer was good.
pub fn version_request<'a>(config: &'a ProbeConfig, health: &HttpOutcome) -> Option<&'a str> {
    match health {
        HttpOutcome::Answered { status, .. } if *status == config.expected_status => {
            config.version_path.as_deref()
        }
        _ => None,
    }
}

/// The verdict on one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Success,
    Failure { reason: String },
}

/// Judges one probe: the health answer has the expected status and, when a
/// version path is configured, the version answer is 2xx and contains the
/// revision `label`.
pub fn judge(config: &ProbeConfig, label: &str, answer: &ProbeAnswer) -> Verdict {
    let fail = |reason: String| Verdict::Failure { reason };
    let path = &config.path;
    match &answer.health {
        HttpOutcome::NoAnswer { error } => {
            return fail(format!("GET {path} got no answer: {}", excerpt(error)))
        }
        HttpOutcome::Answered { status, body } if *status != config.expected_status => {
            return fail(format!(
                "GET {path} answered {status} (expected {}){}",
                config.expected_status,
                quoted_body(body)
            ));
        }
        HttpOutcome::Answered { .. } => {}
    }
    let Some(version_path) = config.version_path.as_deref() else {
        return Verdict::Success;
    };
    match &answer.version {
        None => fail(format!("GET {version_path} was not asked")),
        Some(HttpOutcome::NoAnswer { error }) => fail(format!(
            "GET {version_path} got no answer: {}",
            excerpt(error)
        )),
        Some(HttpOutcome::Answered { status, body }) if !(200..300).contains(status) => {
            fail(format!(
                "GET {version_path} answered {status} (expected 2xx naming revision \"{label}\"){}",
                quoted_body(body)
            ))
        }
        Some(HttpOutcome::Answered { status, body }) if !body.contains(label) => fail(format!(
            "GET {version_path} answered {status} \"{}\", which does not contain revision \"{label}\"",
            excerpt(body)
        )),
        Some(HttpOutcome::Answered { .. }) => Verdict::Success,
    }
}

fn quoted_body(body: &str) -> String {
    let e = excerpt(body);
    if e.is_empty() {
        " with an empty body".to_string()
    } else {
        format!(" \"{e}\"")
    }
}

/// The answer a verdict rests on: the health answer, unless that was good
/// and the version answer was asked.
fn deciding(config: &ProbeConfig, answer: &ProbeAnswer) -> HttpOutcome {
    let chosen = match (&answer.health, &answer.version) {
        (HttpOutcome::Answered { status, .. }, Some(v))
            if *status == config.expected_status && config.version_path.is_some() =>
        {
            v
        }
        (h, _) => h,
    };
    match chosen {
        HttpOutcome::Answered { status, body } => HttpOutcome::Answered {
            status: *status,
            body: excerpt(body),
        },
        HttpOutcome::NoAnswer { error } => HttpOutcome::NoAnswer {
            error: excerpt(error),
        },
    }
}

/// One judged probe, as kept for evidence (texts already excerpted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRecord {
    /// When the probe was issued.
    pub at: EpochMillis,
    /// The answer the verdict rests on.
    pub outcome: HttpOutcome,
    pub verdict: Verdict,
}

/// The probe history of one green instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceTracker {
    pub instance_id: String,
    /// `ip:port` ([`socket_address`]); `None` when EC2 knows no private
    /// address for the instance (it then fails at once).
    pub address: Option<String>,
    pub probes: u32,
    pub consecutive_successes: u32,
    pub last_probe_at: Option<EpochMillis>,
    pub last: Option<ProbeRecord>,
    pub last_failure: Option<ProbeRecord>,
}

impl InstanceTracker {
    pub fn new(instance_id: impl Into<String>, address: Option<String>) -> Self {
        Self {
            instance_id: instance_id.into(),
            address,
            probes: 0,
            consecutive_successes: 0,
            last_probe_at: None,
            last: None,
            last_failure: None,
        }
    }

    /// Records the probe issued at `at` and returns its verdict. A failure
    /// resets the streak.
    pub fn record(
        &mut self,
        config: &ProbeConfig,
        label: &str,
        at: EpochMillis,
        answer: &ProbeAnswer,
    ) -> Verdict {
        let verdict = judge(config, label, answer);
        self.probes = self.probes.saturating_add(1);
        self.last_probe_at = Some(at);
        let record = ProbeRecord {
            at,
            outcome: deciding(config, answer),
            verdict: verdict.clone(),
        };
        match verdict {
            Verdict::Success => {
                self.consecutive_successes = self.consecutive_successes.saturating_add(1)
            }
            Verdict::Failure { .. } => {
                self.consecutive_successes = 0;
                self.last_failure = Some(record.clone());
            }
        }
        self.last = Some(record);
        verdict
    }

    /// Reached the required streak.
    pub fn passed(&self, config: &ProbeConfig) -> bool {
        self.address.is_some() && self.consecutive_successes >= config.required()
    }

    /// The record that explains this instance best: the last failing answer
    /// of an instance that has not passed, else the last answer.
    fn telling(&self, config: &ProbeConfig) -> Option<&ProbeRecord> {
        if self.passed(config) {
            self.last.as_ref()
        } else {
            self.last_failure.as_ref().or(self.last.as_ref())
        }
    }

    /// The report row of this instance.
    pub fn evidence(&self, config: &ProbeConfig) -> InstanceEvidence {
        let (last_status, last_body, last_error) = match self.telling(config).map(|r| &r.outcome) {
            Some(HttpOutcome::Answered { status, body }) => {
                (Some(*status), Some(body.clone()), None)
            }
            Some(HttpOutcome::NoAnswer { error }) => (None, None, Some(error.clone())),
            None if self.address.is_none() => (
                None,
                None,
                Some("no private IP address known to EC2".to_string()),
            ),
            None => (None, None, None),
        };
        InstanceEvidence {
            instance_id: self.instance_id.clone(),
            address: self.address.clone().unwrap_or_default(),
            probes: self.probes,
            consecutive_successes: self.consecutive_successes,
            last_status,
            last_body,
            last_error,
            passed: self.passed(config),
        }
    }

    /// Why this instance failed (for the summary).
    fn failure_reason(&self, config: &ProbeConfig) -> String {
        if self.address.is_none() {
            return "EC2 knows no private IP address for it (terminated or not found)".to_string();
        }
        match (&self.last_failure, &self.last) {
            (_, None) => "it was never probed before the deadline".to_string(),
            (Some(f), _) => match &f.verdict {
                Verdict::Failure { reason } => reason.clone(),
                Verdict::Success => String::new(),
            },
            (None, Some(_)) => format!(
                "it answered well but reached only {} of {} consecutive successes before the deadline",
                self.consecutive_successes,
                config.required()
            ),
        }
    }

    /// When this instance's next probe is due.
    fn next_due(&self, config: &ProbeConfig, started_at: EpochMillis) -> EpochMillis {
        match self.last_probe_at {
            Some(t) => t.saturating_add(ms(config.interval_ms)),
            None => started_at,
        }
    }

    /// Can no longer reach the streak with probes issued at or before the deadline.
    fn hopeless(&self, config: &ProbeConfig, started_at: EpochMillis, now: EpochMillis) -> bool {
        if self.address.is_none() {
            return true;
        }
        let needed = config.required().saturating_sub(self.consecutive_successes);
        if needed == 0 {
            return false;
        }
        let earliest = self.next_due(config, started_at).max(now);
        let last_needed =
            earliest.saturating_add(ms(config.interval_ms).saturating_mul(i64::from(needed - 1)));
        last_needed > config.deadline_at(started_at)
    }
}

/// Why the gate failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateFailure {
    /// The deployment has no green instance target at all.
    NoGreenTargets,
    /// This instance cannot pass.
    Instance {
        instance_id: String,
        reason: String,
        evidence: InstanceEvidence,
    },
}

/// What the shell does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Probe `instances` (ids) at `at` (at once when `at` is past), record
    /// their answers with that issue time, and ask again.
    ProbeAgain {
        at: EpochMillis,
        instances: Vec<String>,
    },
    /// Every green instance passed: let traffic move.
    Passed,
    /// Stop the deployment.
    Failed(GateFailure),
}

/// The gate's decision, given every green instance's history, when the
/// validation started, and `now`.
pub fn decide(
    config: &ProbeConfig,
    started_at: EpochMillis,
    trackers: &[InstanceTracker],
    now: EpochMillis,
) -> Decision {
    if trackers.is_empty() {
        return Decision::Failed(GateFailure::NoGreenTargets);
    }
    let pending: Vec<&InstanceTracker> = trackers.iter().filter(|t| !t.passed(config)).collect();
    let hopeless = pending
        .iter()
        .find(|t| t.hopeless(config, started_at, now) && t.last_failure.is_some())
        .or_else(|| pending.iter().find(|t| t.hopeless(config, started_at, now)));
    if let Some(t) = hopeless {
        return Decision::Failed(GateFailure::Instance {
            instance_id: t.instance_id.clone(),
            reason: t.failure_reason(config),
            evidence: t.evidence(config),
        });
    }
    let Some(at) = pending.iter().map(|t| t.next_due(config, started_at)).min() else {
        return Decision::Passed;
    };
    let due_by = at.max(now);
    let instances = pending
        .iter()
        .filter(|t| t.next_due(config, started_at) <= due_by)
        .map(|t| t.instance_id.clone())
        .collect();
    Decision::ProbeAgain { at, instances }
}

/// What a Validate run does with the deployment it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidateEntry {
    /// Waiting in Ready: probe the green fleet, then continue or stop.
    Gate,
    /// A retried run finds the deployment past Ready: an earlier attempt's
    /// ContinueDeployment took effect and its answer was lost (a transient
    /// error). Report it continued; never gate or stop it again.
    ContinuedEarlier,
    /// Anything else: not the validator's to gate.
    NotReady,
}

/// The Validate task runs only after the watcher saw the deployment in
/// Ready, and the state machine retries it after a transient AWS error
/// (`retry_count` is `$$.State.RetryCount`). A retry must be safe whatever
/// the earlier attempt did before its error: before any write, the retry
/// gates again; after a ContinueDeployment that took effect, the deployment
/// has left Ready for `InProgress` (traffic moving) or `Succeeded`, which
/// only a continue can do, so the retry reports it continued. A deployment
/// an earlier attempt stopped is `Stopped` and goes to the failure path as
/// not Ready, as on a first run.
pub fn validate_entry(status: DeploymentStatus, retry_count: u32) -> ValidateEntry {
    match status {
        DeploymentStatus::Ready => ValidateEntry::Gate,
        DeploymentStatus::InProgress | DeploymentStatus::Succeeded if retry_count > 0 => {
            ValidateEntry::ContinuedEarlier
        }
        _ => ValidateEntry::NotReady,
    }
}

/// What the probed green fleet is, for the summary sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GreenFleet<'a> {
    /// EC2: the deployment's green instance targets.
    Instances,
    /// ECS: the targets registered in the green task set's target group.
    TaskSetTargets {
        task_set: &'a str,
        target_group: &'a str,
    },
}

/// One sentence for the report: on failure it names the failing instance,
/// its address and what it answered (EC2 wording, see [`summary_of`]).
pub fn summary(
    deployment_id: &str,
    config: &ProbeConfig,
    label: &str,
    trackers: &[InstanceTracker],
    decision: &Decision,
) -> String {
    summary_of(
        GreenFleet::Instances,
        deployment_id,
        config,
        label,
        trackers,
        decision,
    )
}

/// [`summary`] for either kind of green fleet: EC2 instances, or the
/// targets of an ECS green task set's target group (named "targets", with
/// the task set and target group in the sentence).
pub fn summary_of(
    fleet: GreenFleet<'_>,
    deployment_id: &str,
    config: &ProbeConfig,
    label: &str,
    trackers: &[InstanceTracker],
    decision: &Decision,
) -> String {
    let n = config.required();
    let (noun, nouns, context) = match fleet {
        GreenFleet::Instances => ("instance", "instances", String::new()),
        GreenFleet::TaskSetTargets {
            task_set,
            target_group,
        } => (
            "target",
            "targets",
            format!(" (task set {task_set}, target group {target_group})"),
        ),
    };
    match decision {
        Decision::Passed => {
            let count = trackers.len();
            let noun = if count == 1 { noun } else { nouns };
            let version = match &config.version_path {
                Some(v) => format!(" and {v} naming revision \"{label}\""),
                None => String::new(),
            };
            format!(
                "All {count} green {noun} of deployment {deployment_id}{context} passed: {n} consecutive good answers each from {} ({}){version}.",
                config.path, config.expected_status
            )
        }
        Decision::Failed(GateFailure::NoGreenTargets) => match fleet {
            GreenFleet::Instances => format!(
                "Deployment {deployment_id} has no green instance targets to validate (no green targets), so traffic must not move to it."
            ),
            GreenFleet::TaskSetTargets {
                task_set,
                target_group,
            } => format!(
                "Deployment {deployment_id} has no targets registered in target group {target_group} of its green task set {task_set} (no green targets), so traffic must not move to it."
            ),
        },
        Decision::Failed(GateFailure::Instance {
            instance_id,
            reason,
            evidence,
        }) => {
            let address = if evidence.address.is_empty() {
                "no address".to_string()
            } else {
                evidence.address.clone()
            };
            let noun = match fleet {
                GreenFleet::Instances => "Green instance",
                GreenFleet::TaskSetTargets { .. } => "Green target",
            };
            format!(
                "{noun} {instance_id} ({address}) of deployment {deployment_id}{context} failed validation: {reason}; {} of {n} consecutive successes after {} probes.",
                evidence.consecutive_successes, evidence.probes
            )
        }
        Decision::ProbeAgain { instances, .. } => format!(
            "Validation of deployment {deployment_id} is still probing {} green {noun}(s).",
            instances.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_entry_gates_only_a_ready_deployment_and_trusts_past_ready_only_on_a_retry() {
        use DeploymentStatus::*;
        let all = [
            Created, Queued, InProgress, Baking, Ready, Succeeded, Failed, Stopped,
        ];
        for status in all {
            for retry_count in [0, 1, 5] {
                let expected = match (status, retry_count) {
                    (Ready, _) => ValidateEntry::Gate,
                    (InProgress | Succeeded, 1..) => ValidateEntry::ContinuedEarlier,
                    _ => ValidateEntry::NotReady,
                };
                assert_eq!(
                    validate_entry(status, retry_count),
                    expected,
                    "{status:?} at retry {retry_count}"
                );
            }
        }
        // A first run never claims a continue it did not make (someone else
        // continued it between the watcher's look and the validator's).
        assert_eq!(validate_entry(InProgress, 0), ValidateEntry::NotReady);
        // A stopped deployment is never reported continued, retry or not.
        assert_eq!(validate_entry(Stopped, 3), ValidateEntry::NotReady);
    }

    const LABEL: &str = "20240501120000-42";

    fn cfg() -> ProbeConfig {
        ProbeConfig {
            path: "/health".into(),
            version_path: Some("/version".into()),
            port: None,
            expected_status: 200,
            required_successes: 3,
            probe_timeout_ms: 100,
            interval_ms: 1_000,
            deadline_ms: 10_000,
        }
    }

    fn ok(body: &str) -> HttpOutcome {
        HttpOutcome::Answered {
            status: 200,
            body: body.into(),
        }
    }

    fn good() -> ProbeAnswer {
        ProbeAnswer {
            health: ok("ok"),
            version: Some(ok(&format!("{{\"version\":\"{LABEL}\"}}"))),
        }
    }

    fn status(code: u16, body: &str) -> ProbeAnswer {
        ProbeAnswer {
            health: HttpOutcome::Answered {
                status: code,
                body: body.into(),
            },
            version: None,
        }
    }

    fn refused() -> ProbeAnswer {
        ProbeAnswer::no_answer("connection refused")
    }

    fn reason(v: Verdict) -> String {
        match v {
            Verdict::Failure { reason } => reason,
            Verdict::Success => panic!("expected a failure"),
        }
    }

    fn tracker(id: &str, port: u16) -> InstanceTracker {
        InstanceTracker::new(id, Some(socket_address("127.0.0.1", port)))
    }

    // ---- config ----

    #[test]
    fn default_config_matches_documented_defaults_and_is_valid() {
        let c = ProbeConfig::default();
        assert_eq!(c.path, "/health");
        assert_eq!(c.version_path.as_deref(), Some("/version"));
        assert_eq!(c.port, None);
        assert_eq!(c.expected_status, 200);
        assert_eq!(c.required_successes, 3);
        assert_eq!(c.probe_timeout_ms, 2_000);
        assert_eq!(c.interval_ms, 1_000);
        assert_eq!(c.deadline_ms, 120_000);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn validate_rejects_each_unworkable_setting() {
        type Change = Box<dyn Fn(&mut ProbeConfig)>;
        let cases: Vec<(&str, Change)> = vec![
            ("path", Box::new(|c| c.path = "health".into())),
            ("path", Box::new(|c| c.path = "/he alth".into())),
            (
                "path",
                Box::new(|c| c.version_path = Some("/ver\nsion".into())),
            ),
            (
                "version_path",
                Box::new(|c| c.version_path = Some("version".into())),
            ),
            ("port", Box::new(|c| c.port = Some(0))),
            ("expected_status", Box::new(|c| c.expected_status = 99)),
            ("expected_status", Box::new(|c| c.expected_status = 600)),
            ("required_successes", Box::new(|c| c.required_successes = 0)),
            ("probe_timeout_ms", Box::new(|c| c.probe_timeout_ms = 0)),
        ];
        for (field, change) in cases {
            let mut c = cfg();
            change(&mut c);
            let err = c.validate().expect_err(field);
            assert_eq!(err.field, field, "{c:?}");
            assert!(err.to_string().contains(field));
        }
        let mut c = cfg();
        c.version_path = None;
        c.port = Some(8080);
        c.interval_ms = 0;
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn required_is_never_zero_and_deadline_saturates() {
        let mut c = cfg();
        c.required_successes = 0;
        assert_eq!(c.required(), 1);
        assert_eq!(c.deadline_at(1_000), 11_000);
        c.deadline_ms = u64::MAX;
        assert_eq!(c.deadline_at(1_000), i64::MAX);
    }

    #[test]
    fn deadline_is_shortened_to_fit_the_invocation() {
        assert_eq!(deadline_within_invocation(120_000, 1_000, None), 120_000);
        // Plenty of time: unchanged.
        assert_eq!(
            deadline_within_invocation(120_000, 1_000, Some(1_000 + 900_000)),
            120_000
        );
        // A 60 s function timeout leaves 50 s of probing.
        assert_eq!(
            deadline_within_invocation(120_000, 1_000, Some(61_000)),
            50_000
        );
        // Already too late: one round at most.
        assert_eq!(deadline_within_invocation(120_000, 1_000, Some(5_000)), 0);
        assert_eq!(deadline_within_invocation(120_000, 1_000, Some(0)), 0);
    }

    // ---- addresses ----

    #[test]
    fn addresses_and_urls() {
        assert_eq!(socket_address("10.0.1.5", 8080), "10.0.1.5:8080");
        assert_eq!(socket_address("fd00::5", 80), "[fd00::5]:80");
        assert_eq!(
            probe_url("127.0.0.1:80", "/health"),
            "http://127.0.0.1:80/health"
        );
        assert_eq!(
            probe_url("127.0.0.1:80", "health"),
            "http://127.0.0.1:80/health"
        );
        assert_eq!(
            probe_url("127.0.0.1:80", "/v?x=1"),
            "http://127.0.0.1:80/v?x=1"
        );
    }

    // ---- excerpts ----

    #[test]
    fn excerpt_strips_controls_and_collapses_whitespace() {
        assert_eq!(
            excerpt("  ok\r\n\tfine \u{1b}[31mred\u{7} "),
            "ok fine [31mred"
        );
        assert_eq!(excerpt("a\u{202E}b\u{200B}c\u{FEFF}"), "abc");
        assert_eq!(excerpt(""), "");
        assert_eq!(excerpt("\n\n\t "), "");
        assert_eq!(excerpt("a\0b"), "ab");
    }

    #[test]
    fn excerpt_truncates_on_char_boundaries() {
        let long = "é".repeat(500);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
        let exact = "x".repeat(EXCERPT_CHARS);
        assert_eq!(excerpt(&exact), exact);
        let over = "x".repeat(EXCERPT_CHARS + 1);
        assert_eq!(excerpt(&over), format!("{}…", "x".repeat(EXCERPT_CHARS)));
        // A space that would be the 201st character is dropped, then the cut.
        let spaced = format!("{} y", "x".repeat(EXCERPT_CHARS - 1));
        assert_eq!(
            excerpt(&spaced),
            format!("{}…", "x".repeat(EXCERPT_CHARS - 1))
        );
        // Trailing whitespace never counts.
        let trailing = format!("{}   \n", "x".repeat(EXCERPT_CHARS));
        assert_eq!(excerpt(&trailing), "x".repeat(EXCERPT_CHARS));
    }

    // ---- judging one probe ----

    #[test]
    fn judge_success_with_version() {
        assert_eq!(judge(&cfg(), LABEL, &good()), Verdict::Success);
    }

    #[test]
    fn judge_success_without_version_check_ignores_version_answer() {
        let mut c = cfg();
        c.version_path = None;
        assert_eq!(judge(&c, LABEL, &status(200, "")), Verdict::Success);
        let mut a = good();
        a.version = Some(ok("something else"));
        assert_eq!(judge(&c, LABEL, &a), Verdict::Success);
    }

    #[test]
    fn judge_other_expected_status() {
        let mut c = cfg();
        c.expected_status = 204;
        c.version_path = None;
        assert_eq!(judge(&c, LABEL, &status(204, "")), Verdict::Success);
        let r = reason(judge(&c, LABEL, &status(200, "ok")));
        assert_eq!(r, "GET /health answered 200 (expected 204) \"ok\"");
    }

    #[test]
    fn judge_wrong_status_names_status_and_body() {
        let r = reason(judge(&cfg(), LABEL, &status(503, "down\nfor maintenance")));
        assert_eq!(
            r,
            "GET /health answered 503 (expected 200) \"down for maintenance\""
        );
        let r = reason(judge(&cfg(), LABEL, &status(500, "")));
        assert_eq!(
            r,
            "GET /health answered 500 (expected 200) with an empty body"
        );
    }

    #[test]
    fn judge_no_answer() {
        let r = reason(judge(&cfg(), LABEL, &refused()));
        assert_eq!(r, "GET /health got no answer: connection refused");
    }

    #[test]
    fn judge_version_not_asked_is_a_failure() {
        let r = reason(judge(&cfg(), LABEL, &status(200, "ok")));
        assert_eq!(r, "GET /version was not asked");
    }

    #[test]
    fn judge_version_no_answer() {
        let a = ProbeAnswer {
            health: ok("ok"),
            version: Some(HttpOutcome::NoAnswer {
                error: "timed out after 100 ms".into(),
            }),
        };
        assert_eq!(
            reason(judge(&cfg(), LABEL, &a)),
            "GET /version got no answer: timed out after 100 ms"
        );
    }

    #[test]
    fn judge_version_bad_status() {
        let a = ProbeAnswer {
            health: ok("ok"),
            version: Some(HttpOutcome::Answered {
                status: 404,
                body: "not found".into(),
            }),
        };
        assert_eq!(
            reason(judge(&cfg(), LABEL, &a)),
            format!("GET /version answered 404 (expected 2xx naming revision \"{LABEL}\") \"not found\"")
        );
        // Any 2xx will do for the version answer.
        let a = ProbeAnswer {
            health: ok("ok"),
            version: Some(HttpOutcome::Answered {
                status: 203,
                body: LABEL.into(),
            }),
        };
        assert_eq!(judge(&cfg(), LABEL, &a), Verdict::Success);
    }

    #[test]
    fn judge_wrong_version() {
        let a = ProbeAnswer {
            health: ok("ok"),
            version: Some(ok("{\"version\":\"20240430-41\"}")),
        };
        assert_eq!(
            reason(judge(&cfg(), LABEL, &a)),
            format!(
                "GET /version answered 200 \"{{\"version\":\"20240430-41\"}}\", which does not contain revision \"{LABEL}\""
            )
        );
    }

    #[test]
    fn judge_checks_label_on_the_whole_body_not_the_excerpt() {
        let body = format!("{}{LABEL}", "x".repeat(5_000));
        let a = ProbeAnswer {
            health: ok("ok"),
            version: Some(ok(&body)),
        };
        assert_eq!(judge(&cfg(), LABEL, &a), Verdict::Success);
    }

    #[test]
    fn judge_strips_controls_from_reasons() {
        let r = reason(judge(
            &cfg(),
            LABEL,
            &ProbeAnswer::no_answer("refused\r\n\u{1b}[2Jboom"),
        ));
        assert_eq!(r, "GET /health got no answer: refused [2Jboom");
    }

    #[test]
    fn version_request_only_after_good_health() {
        let c = cfg();
        assert_eq!(version_request(&c, &ok("")), Some("/version"));
        assert_eq!(
            version_request(
                &c,
                &HttpOutcome::Answered {
                    status: 503,
                    body: String::new()
                }
            ),
            None
        );
        assert_eq!(
            version_request(&c, &HttpOutcome::NoAnswer { error: "x".into() }),
            None
        );
        let mut c = cfg();
        c.version_path = None;
        assert_eq!(version_request(&c, &ok("")), None);
    }

    // ---- tracker ----

    #[test]
    fn tracker_counts_streaks_and_resets_on_failure() {
        let c = cfg();
        let mut t = tracker("i-1", 80);
        assert_eq!(t.record(&c, LABEL, 0, &good()), Verdict::Success);
        assert_eq!(t.record(&c, LABEL, 1_000, &good()), Verdict::Success);
        assert_eq!(t.consecutive_successes, 2);
        assert!(!t.passed(&c));
        assert!(matches!(
            t.record(&c, LABEL, 2_000, &status(502, "bad gateway")),
            Verdict::Failure { .. }
        ));
        assert_eq!(t.consecutive_successes, 0);
        assert_eq!(t.probes, 3);
        assert_eq!(t.last_probe_at, Some(2_000));
        for at in [3_000, 4_000, 5_000] {
            t.record(&c, LABEL, at, &good());
        }
        assert!(t.passed(&c));
        assert_eq!(t.probes, 6);
        // The last failure is kept as history.
        assert_eq!(t.last_failure.as_ref().map(|r| r.at), Some(2_000));
        assert_eq!(t.last.as_ref().map(|r| r.at), Some(5_000));
    }

    #[test]
    fn tracker_records_excerpts_of_the_deciding_answer() {
        let c = cfg();
        let mut t = tracker("i-1", 80);
        let long = "y".repeat(1_000);
        t.record(&c, LABEL, 0, &status(500, &long));
        let rec = t.last.clone().unwrap();
        assert_eq!(
            rec.outcome,
            HttpOutcome::Answered {
                status: 500,
                body: excerpt(&long)
            }
        );
        // Good health, bad version: the version answer decides.
        let a = ProbeAnswer {
            health: ok("ok"),
            version: Some(ok("old")),
        };
        t.record(&c, LABEL, 1_000, &a);
        assert_eq!(t.last.clone().unwrap().outcome, ok("old"));
        // No version check: the health answer decides.
        let mut c2 = cfg();
        c2.version_path = None;
        t.record(&c2, LABEL, 2_000, &good());
        assert_eq!(t.last.clone().unwrap().outcome, ok("ok"));
        t.record(&c, LABEL, 3_000, &ProbeAnswer::no_answer("reset\n"));
        assert_eq!(
            t.last.clone().unwrap().outcome,
            HttpOutcome::NoAnswer {
                error: "reset".into()
            }
        );
    }

    #[test]
    fn evidence_of_passed_failed_unprobed_and_unaddressed_instances() {
        let c = cfg();
        let mut t = tracker("i-good", 8080);
        for at in [0, 1_000, 2_000] {
            t.record(&c, LABEL, at, &good());
        }
        let e = t.evidence(&c);
        assert_eq!(
            e,
            InstanceEvidence {
                instance_id: "i-good".into(),
                address: "127.0.0.1:8080".into(),
                probes: 3,
                consecutive_successes: 3,
                last_status: Some(200),
                last_body: Some(format!("{{\"version\":\"{LABEL}\"}}")),
                last_error: None,
                passed: true,
            }
        );

        // A flapping instance shows its last failing answer, not its last good one.
        let mut t = tracker("i-flap", 8080);
        t.record(&c, LABEL, 0, &status(503, "warming up"));
        t.record(&c, LABEL, 1_000, &good());
        let e = t.evidence(&c);
        assert!(!e.passed);
        assert_eq!(e.last_status, Some(503));
        assert_eq!(e.last_body.as_deref(), Some("warming up"));
        assert_eq!(e.consecutive_successes, 1);

        let mut t = tracker("i-down", 8080);
        t.record(&c, LABEL, 0, &refused());
        let e = t.evidence(&c);
        assert_eq!(e.last_status, None);
        assert_eq!(e.last_body, None);
        assert_eq!(e.last_error.as_deref(), Some("connection refused"));

        let e = tracker("i-new", 8080).evidence(&c);
        assert_eq!((e.probes, e.last_status, e.last_error), (0, None, None));
        assert!(!e.passed);

        let e = InstanceTracker::new("i-gone", None).evidence(&c);
        assert_eq!(e.address, "");
        assert_eq!(
            e.last_error.as_deref(),
            Some("no private IP address known to EC2")
        );
        assert!(!e.passed);
    }

    #[test]
    fn instance_without_address_never_passes() {
        let c = cfg();
        let mut t = InstanceTracker::new("i-gone", None);
        t.consecutive_successes = 5;
        assert!(!t.passed(&c));
    }

    // ---- the gate ----

    #[test]
    fn no_green_targets_fails() {
        assert_eq!(
            decide(&cfg(), 0, &[], 0),
            Decision::Failed(GateFailure::NoGreenTargets)
        );
    }

    #[test]
    fn first_decision_probes_everyone_now() {
        let ts = vec![tracker("i-1", 80), tracker("i-2", 80)];
        assert_eq!(
            decide(&cfg(), 5_000, &ts, 5_000),
            Decision::ProbeAgain {
                at: 5_000,
                instances: vec!["i-1".into(), "i-2".into()]
            }
        );
    }

    /// Runs the gate as the shell does, answering each probe with
    /// `answer(instance, probe index)`, every probe taking `latency` ms.
    fn run(
        c: &ProbeConfig,
        ids: &[&str],
        latency: i64,
        answer: impl Fn(&str, u32) -> ProbeAnswer,
    ) -> (Decision, Vec<InstanceTracker>, Vec<EpochMillis>) {
        let started = 1_000_000;
        let mut now = started;
        let mut ts: Vec<InstanceTracker> = ids.iter().map(|id| tracker(id, 80)).collect();
        let mut issued = Vec::new();
        for _ in 0..10_000 {
            match decide(c, started, &ts, now) {
                Decision::ProbeAgain { at, instances } => {
                    assert!(!instances.is_empty());
                    let at = at.max(now);
                    issued.push(at - started);
                    for id in instances {
                        let t = ts.iter_mut().find(|t| t.instance_id == id).unwrap();
                        let a = answer(&id, t.probes);
                        t.record(c, LABEL, at, &a);
                    }
                    now = at + latency;
                }
                d => return (d, ts, issued),
            }
        }
        panic!("the gate never decided");
    }

    #[test]
    fn all_good_passes_after_required_streak() {
        let (d, ts, issued) = run(&cfg(), &["i-1", "i-2"], 10, |_, _| good());
        assert_eq!(d, Decision::Passed);
        assert_eq!(issued, vec![0, 1_000, 2_000]);
        assert!(ts.iter().all(|t| t.probes == 3 && t.passed(&cfg())));
    }

    #[test]
    fn required_one_passes_on_first_good_probe() {
        let mut c = cfg();
        c.required_successes = 1;
        let (d, _, issued) = run(&c, &["i-1"], 10, |_, _| good());
        assert_eq!(d, Decision::Passed);
        assert_eq!(issued, vec![0]);
    }

    #[test]
    fn passed_instances_are_not_probed_again() {
        // i-2 fails twice then recovers: i-1 passes first and stops being probed.
        let (d, ts, _) = run(&cfg(), &["i-1", "i-2"], 10, |id, n| {
            if id == "i-2" && n < 2 {
                status(503, "starting")
            } else {
                good()
            }
        });
        assert_eq!(d, Decision::Passed);
        assert_eq!(ts[0].probes, 3);
        assert_eq!(ts[1].probes, 5);
    }

    #[test]
    fn recovering_instance_passes_if_the_streak_fits_before_the_deadline() {
        // Deadline 10 s, interval 1 s, 3 needed: probes at 0..=10 s; failures
        // at 0..=7 s leave 8, 9, 10 s for the streak.
        let (d, ts, issued) = run(
            &cfg(),
            &["i-1"],
            10,
            |_, n| {
                if n < 8 {
                    refused()
                } else {
                    good()
                }
            },
        );
        assert_eq!(d, Decision::Passed);
        assert_eq!(ts[0].probes, 11);
        assert_eq!(issued.last(), Some(&10_000));
    }

    #[test]
    fn one_more_failure_and_the_streak_no_longer_fits() {
        let (d, ts, issued) = run(
            &cfg(),
            &["i-1"],
            10,
            |_, n| {
                if n < 9 {
                    refused()
                } else {
                    good()
                }
            },
        );
        // After the 9th failure (at 8 s) the earliest streak would end at 11 s.
        assert_eq!(issued.last(), Some(&8_000));
        assert_eq!(ts[0].probes, 9);
        match d {
            Decision::Failed(GateFailure::Instance {
                instance_id,
                reason,
                evidence,
            }) => {
                assert_eq!(instance_id, "i-1");
                assert_eq!(reason, "GET /health got no answer: connection refused");
                assert_eq!(evidence.last_error.as_deref(), Some("connection refused"));
                assert_eq!(evidence.probes, 9);
                assert!(!evidence.passed);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_bad_instance_fails_the_gate_and_is_named() {
        let (d, ts, _) = run(&cfg(), &["i-good", "i-bad"], 10, |id, _| {
            if id == "i-bad" {
                status(503, "down")
            } else {
                good()
            }
        });
        let Decision::Failed(GateFailure::Instance {
            instance_id,
            reason,
            evidence,
        }) = &d
        else {
            panic!("{d:?}")
        };
        assert_eq!(instance_id, "i-bad");
        assert_eq!(reason, "GET /health answered 503 (expected 200) \"down\"");
        assert_eq!(evidence.last_status, Some(503));
        assert!(ts[0].passed(&cfg()));
        assert_eq!(
            summary("d-ABC", &cfg(), LABEL, &ts, &d),
            "Green instance i-bad (127.0.0.1:80) of deployment d-ABC failed validation: GET /health answered 503 (expected 200) \"down\"; 0 of 3 consecutive successes after 9 probes."
        );
    }

    #[test]
    fn wrong_version_fails_the_gate() {
        let (d, _, _) = run(&cfg(), &["i-1"], 10, |_, _| ProbeAnswer {
            health: ok("ok"),
            version: Some(ok("20240430-41")),
        });
        let Decision::Failed(GateFailure::Instance {
            reason, evidence, ..
        }) = d
        else {
            panic!()
        };
        assert!(reason.contains("does not contain revision"), "{reason}");
        assert_eq!(evidence.last_status, Some(200));
        assert_eq!(evidence.last_body.as_deref(), Some("20240430-41"));
    }

    #[test]
    fn flapping_instance_fails_with_its_last_failing_answer() {
        // good, good, bad, good, good, bad, ...: never three in a row.
        let (d, _, _) = run(&cfg(), &["i-1"], 10, |_, n| {
            if n % 3 == 2 {
                status(500, "oops")
            } else {
                good()
            }
        });
        let Decision::Failed(GateFailure::Instance {
            reason, evidence, ..
        }) = d
        else {
            panic!()
        };
        assert_eq!(reason, "GET /health answered 500 (expected 200) \"oops\"");
        assert_eq!(evidence.last_status, Some(500));
    }

    #[test]
    fn slow_probes_push_the_schedule_and_can_miss_the_deadline() {
        // Each probe takes 6 s with a 1 s interval: probes at 0 and 6 s; the
        // third would start at 12 s, past the 10 s deadline.
        let (d, ts, issued) = run(&cfg(), &["i-1"], 6_000, |_, _| good());
        assert_eq!(issued, vec![0, 6_000]);
        let Decision::Failed(GateFailure::Instance { reason, .. }) = d else {
            panic!()
        };
        assert_eq!(ts[0].consecutive_successes, 2);
        assert_eq!(
            reason,
            "it answered well but reached only 2 of 3 consecutive successes before the deadline"
        );
    }

    #[test]
    fn zero_deadline_allows_exactly_one_probe_round() {
        let mut c = cfg();
        c.deadline_ms = 0;
        c.required_successes = 1;
        let (d, _, issued) = run(&c, &["i-1"], 10, |_, _| good());
        assert_eq!(d, Decision::Passed);
        assert_eq!(issued, vec![0]);
        c.required_successes = 2;
        let (d, _, issued) = run(&c, &["i-1"], 10, |_, _| good());
        assert!(matches!(d, Decision::Failed(_)));
        assert!(issued.is_empty());
    }

    #[test]
    fn never_probed_instance_past_the_deadline() {
        let c = cfg();
        let ts = vec![tracker("i-1", 80)];
        let d = decide(&c, 0, &ts, 20_000);
        let Decision::Failed(GateFailure::Instance {
            reason, evidence, ..
        }) = &d
        else {
            panic!("{d:?}")
        };
        assert_eq!(reason, "it was never probed before the deadline");
        assert_eq!(evidence.probes, 0);
    }

    #[test]
    fn instance_without_address_fails_at_once() {
        let c = cfg();
        let ts = vec![tracker("i-1", 80), InstanceTracker::new("i-gone", None)];
        let d = decide(&c, 0, &ts, 0);
        let Decision::Failed(GateFailure::Instance {
            instance_id,
            reason,
            ..
        }) = &d
        else {
            panic!("{d:?}")
        };
        assert_eq!(instance_id, "i-gone");
        assert_eq!(
            reason,
            "EC2 knows no private IP address for it (terminated or not found)"
        );
        assert_eq!(
            summary("d-1", &c, LABEL, &ts, &d),
            "Green instance i-gone (no address) of deployment d-1 failed validation: EC2 knows no private IP address for it (terminated or not found); 0 of 3 consecutive successes after 0 probes."
        );
    }

    #[test]
    fn a_hopeless_instance_with_a_failure_is_named_before_one_without() {
        let c = cfg();
        let mut good_but_short = tracker("i-short", 80);
        good_but_short.record(&c, LABEL, 9_000, &good());
        let mut bad = tracker("i-bad", 80);
        bad.record(&c, LABEL, 9_000, &refused());
        let ts = vec![good_but_short, bad];
        let Decision::Failed(GateFailure::Instance { instance_id, .. }) = decide(&c, 0, &ts, 9_100)
        else {
            panic!()
        };
        assert_eq!(instance_id, "i-bad");
    }

    #[test]
    fn probe_again_waits_for_the_interval_and_lists_due_instances() {
        let c = cfg();
        let mut a = tracker("i-a", 80);
        let mut b = tracker("i-b", 80);
        a.record(&c, LABEL, 0, &good());
        b.record(&c, LABEL, 500, &good());
        let ts = vec![a, b];
        assert_eq!(
            decide(&c, 0, &ts, 100),
            Decision::ProbeAgain {
                at: 1_000,
                instances: vec!["i-a".into()]
            }
        );
        // Late: both are overdue, both are due now.
        assert_eq!(
            decide(&c, 0, &ts, 1_600),
            Decision::ProbeAgain {
                at: 1_000,
                instances: vec!["i-a".into(), "i-b".into()]
            }
        );
    }

    #[test]
    fn zero_interval_probes_back_to_back() {
        let mut c = cfg();
        c.interval_ms = 0;
        let (d, _, issued) = run(&c, &["i-1"], 5, |_, _| good());
        assert_eq!(d, Decision::Passed);
        assert_eq!(issued, vec![0, 5, 10]);
    }

    #[test]
    fn summaries() {
        let c = cfg();
        let (d, ts, _) = run(&c, &["i-1", "i-2"], 1, |_, _| good());
        assert_eq!(
            summary("d-1", &c, LABEL, &ts, &d),
            format!("All 2 green instances of deployment d-1 passed: 3 consecutive good answers each from /health (200) and /version naming revision \"{LABEL}\".")
        );
        let mut c1 = cfg();
        c1.version_path = None;
        assert_eq!(
            summary("d-1", &c1, LABEL, &ts[..1], &Decision::Passed),
            "All 1 green instance of deployment d-1 passed: 3 consecutive good answers each from /health (200)."
        );
        assert_eq!(
            summary("d-1", &c, LABEL, &[], &Decision::Failed(GateFailure::NoGreenTargets)),
            "Deployment d-1 has no green instance targets to validate (no green targets), so traffic must not move to it."
        );
        assert_eq!(
            summary(
                "d-1",
                &c,
                LABEL,
                &ts,
                &Decision::ProbeAgain {
                    at: 0,
                    instances: vec!["i-1".into()]
                }
            ),
            "Validation of deployment d-1 is still probing 1 green instance(s)."
        );
        // Connection errors are named with the address.
        let (d, ts, _) = run(&c, &["i-1"], 1, |_, _| refused());
        assert_eq!(
            summary("d-1", &c, LABEL, &ts, &d),
            "Green instance i-1 (127.0.0.1:80) of deployment d-1 failed validation: GET /health got no answer: connection refused; 0 of 3 consecutive successes after 9 probes."
        );
    }

    #[test]
    fn task_set_summaries_say_targets_and_name_the_task_set() {
        let fleet = GreenFleet::TaskSetTargets {
            task_set: "ecs-svc/123",
            target_group: "shop-tg-green",
        };
        let c = cfg();
        let (d, ts, _) = run(&c, &["10.0.1.5", "10.0.1.6"], 1, |_, _| good());
        assert_eq!(
            summary_of(fleet, "d-1", &c, LABEL, &ts, &d),
            format!("All 2 green targets of deployment d-1 (task set ecs-svc/123, target group shop-tg-green) passed: 3 consecutive good answers each from /health (200) and /version naming revision \"{LABEL}\".")
        );
        assert_eq!(
            summary_of(fleet, "d-1", &c, LABEL, &ts[..1], &Decision::Passed),
            format!("All 1 green target of deployment d-1 (task set ecs-svc/123, target group shop-tg-green) passed: 3 consecutive good answers each from /health (200) and /version naming revision \"{LABEL}\".")
        );
        assert_eq!(
            summary_of(fleet, "d-1", &c, LABEL, &[], &Decision::Failed(GateFailure::NoGreenTargets)),
            "Deployment d-1 has no targets registered in target group shop-tg-green of its green task set ecs-svc/123 (no green targets), so traffic must not move to it."
        );
        let (d, ts, _) = run(&c, &["10.0.1.5"], 1, |_, _| status(500, "boom"));
        assert_eq!(
            summary_of(fleet, "d-1", &c, LABEL, &ts, &d),
            "Green target 10.0.1.5 (127.0.0.1:80) of deployment d-1 (task set ecs-svc/123, target group shop-tg-green) failed validation: GET /health answered 500 (expected 200) \"boom\"; 0 of 3 consecutive successes after 9 probes."
        );
        assert_eq!(
            summary_of(
                fleet,
                "d-1",
                &c,
                LABEL,
                &ts,
                &Decision::ProbeAgain {
                    at: 0,
                    instances: vec!["10.0.1.5".into()]
                }
            ),
            "Validation of deployment d-1 is still probing 1 green target(s)."
        );
        // The EC2 wording is summary_of(Instances).
        let (d, ts, _) = run(&c, &["i-1"], 1, |_, _| refused());
        assert_eq!(
            summary_of(GreenFleet::Instances, "d-1", &c, LABEL, &ts, &d),
            summary("d-1", &c, LABEL, &ts, &d)
        );
    }
}
