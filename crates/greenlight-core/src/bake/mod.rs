//! Bake: watching the green fleet after the reroute, during CodeDeploy's
//! blue termination wait, and deciding when it has proven itself.
//!
//! The decision ([`decide`]) is pure: the shell (traffic-validator `bake`)
//! reads CloudWatch (the group's alarms, the target group's ELB metrics) and
//! passes what it read, with their times and `now`; the answer is
//! [`BakeDecision::Pass`] (end the termination wait at once:
//! `ContinueDeployment(TERMINATION_WAIT)`), [`BakeDecision::Fail`] with the
//! evidence (stop with rollback while blue still exists) or
//! [`BakeDecision::KeepWatching`] with when to look next.
//!
//! Which groups bake, for how long and against which thresholds is one JSON
//! setting (`BAKE_CONFIG`, template parameter `BakeConfig`), parsed by
//! [`parse_bake_config`]; a group it does not name does not bake and keeps
//! the termination wait exactly as before.

use serde::{Deserialize, Serialize};

use crate::model::EpochMillis;

pub mod standby;
pub mod standby_record;

/// The four AWS/ApplicationELB target-group metrics the bake reads
/// (<https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BakeMetric {
    /// `HTTPCode_Target_5XX_Count`, statistic Sum.
    #[serde(rename = "HTTPCode_Target_5XX_Count")]
    Target5xxCount,
    /// `RequestCount`, statistic Sum (the denominator of the 5xx rate).
    RequestCount,
    /// `TargetResponseTime`, statistic Average, in seconds.
    TargetResponseTime,
    /// `UnHealthyHostCount`, statistic Maximum.
    UnHealthyHostCount,
}

impl BakeMetric {
    pub const ALL: [BakeMetric; 4] = [
        BakeMetric::Target5xxCount,
        BakeMetric::RequestCount,
        BakeMetric::TargetResponseTime,
        BakeMetric::UnHealthyHostCount,
    ];

    /// The CloudWatch metric name.
    pub fn metric_name(self) -> &'static str {
        match self {
            Self::Target5xxCount => "HTTPCode_Target_5XX_Count",
            Self::RequestCount => "RequestCount",
            Self::TargetResponseTime => "TargetResponseTime",
            Self::UnHealthyHostCount => "UnHealthyHostCount",
        }
    }

    /// The statistic the bake asks GetMetricData for.
    pub fn statistic(self) -> &'static str {
        match self {
            Self::Target5xxCount | Self::RequestCount => "Sum",
            Self::TargetResponseTime => "Average",
            Self::UnHealthyHostCount => "Maximum",
        }
    }

    /// A GetMetricData query id (`^[a-z][a-zA-Z0-9_]*$`).
    pub fn query_id(self) -> &'static str {
        match self {
            Self::Target5xxCount => "target5xx",
            Self::RequestCount => "requests",
            Self::TargetResponseTime => "responsetime",
            Self::UnHealthyHostCount => "unhealthy",
        }
    }

    pub fn from_query_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.query_id() == id)
    }
}

/// One datapoint: the metric's statistic over the period that starts at
/// `at_ms` (CloudWatch timestamps a datapoint with the start of its period).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSample {
    pub metric: BakeMetric,
    pub at_ms: EpochMillis,
    pub value: f64,
}

/// CloudWatch alarm state (`StateValue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

/// One alarm as DescribeAlarms answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmObservation {
    pub name: String,
    pub state: AlarmState,
    /// `StateUpdatedTimestamp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<EpochMillis>,
    /// `StateReason`.
    #[serde(default)]
    pub reason: String,
}

/// Built-in checks on the green target group, per metric period. `None` =
/// that check is off.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BakeThresholds {
    /// Fail when one period has more target 5xx answers than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_5xx_count: Option<u64>,
    /// Fail when one period's 5xx / requests is above this percentage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_5xx_rate_percent: Option<f64>,
    /// Fail when one period's average target response time is above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_response_time_ms: Option<u64>,
    /// Fail when one period's maximum unhealthy host count is above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unhealthy_hosts: Option<u64>,
}

/// One group's bake, as configured (JSON, camelCase).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupBake {
    pub application: String,
    pub deployment_group: String,
    /// How long green must stay clean after the reroute (1..=172800, CodeDeploy's longest termination wait).
    pub bake_seconds: u32,
    /// CloudWatch alarms to watch, by name, besides those configured on the
    /// deployment group itself (`alarmConfiguration`).
    #[serde(default)]
    pub alarms: Vec<String>,
    #[serde(default)]
    pub thresholds: BakeThresholds,
    /// The metric period asked of CloudWatch (ALB metrics: 60).
    #[serde(default = "default_period")]
    pub period_seconds: u32,
    /// ALB metrics reach CloudWatch after a delay; a pass waits this long
    /// past the bake time so the last period is in (default 60).
    #[serde(default = "default_metric_delay")]
    pub metric_delay_seconds: u32,
    /// Shortest and longest wait between two looks.
    #[serde(default = "default_min_look")]
    pub min_look_seconds: u32,
    #[serde(default = "default_max_look")]
    pub max_look_seconds: u32,
    /// The name of a target group that keeps blue warm during the bake
    /// ([`standby`]): same VPC, port, protocol and health check as the
    /// deployment's target group, created by the user. None = a failed bake
    /// returns traffic through CodeDeploy's rollback only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby_target_group: Option<String>,
    /// How long to wait after putting a listener back before blue leaves
    /// the standby (a listener change reaches the load balancer's nodes
    /// "after a short time", undocumented; default 30 s): taking blue out of
    /// standby earlier could fail requests still routed there. Waited only
    /// after a switch, and only when it fits the failure handler's time left
    /// ([`standby_record::settle_plan`]).
    #[serde(default = "default_standby_settle")]
    pub standby_settle_seconds: u32,
}

fn default_period() -> u32 {
    60
}
fn default_metric_delay() -> u32 {
    60
}
fn default_min_look() -> u32 {
    5
}
fn default_max_look() -> u32 {
    60
}
fn default_standby_settle() -> u32 {
    30
}

/// The largest bake: CodeDeploy's longest termination wait (2,880 minutes).
pub const MAX_BAKE_SECONDS: u32 = 2_880 * 60;
/// At most this many named alarms per group (DescribeAlarms takes 100 names).
pub const MAX_ALARMS: usize = 100;

/// A `BAKE_CONFIG` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BakeConfigError {
    #[error("BAKE_CONFIG is not a JSON list of group bakes ({0}); expected [{{\"application\": \"shop\", \"deploymentGroup\": \"shop-bg\", \"bakeSeconds\": 300, \"alarms\": [], \"thresholds\": {{\"max5xxCount\": 0}}}}]")]
    Json(String),
    #[error("BAKE_CONFIG names {application}/{group} twice; keep one entry per deployment group")]
    Duplicate { application: String, group: String },
    #[error("BAKE_CONFIG entry {application}/{group}: {problem}")]
    Invalid {
        application: String,
        group: String,
        problem: String,
    },
}

impl crate::group_config::GroupEntry for GroupBake {
    fn application(&self) -> &str {
        &self.application
    }
    fn deployment_group(&self) -> &str {
        &self.deployment_group
    }
}

impl From<crate::group_config::GroupConfigProblem> for BakeConfigError {
    fn from(p: crate::group_config::GroupConfigProblem) -> Self {
        use crate::group_config::GroupConfigProblem as P;
        match p {
            P::Json(e) => Self::Json(e),
            P::Duplicate { application, group } => Self::Duplicate { application, group },
            P::Invalid {
                application,
                group,
                problem,
            } => Self::Invalid {
                application,
                group,
                problem,
            },
        }
    }
}

/// Parses and checks `BAKE_CONFIG` (empty = no group bakes).
pub fn parse_bake_config(text: &str) -> Result<Vec<GroupBake>, BakeConfigError> {
    Ok(crate::group_config::parse_group_config(text, check_group)?)
}

/// The bake's own rules (the shared ones: `crate::group_config`).
fn check_group(g: &GroupBake) -> Result<(), String> {
    if !(1..=MAX_BAKE_SECONDS).contains(&g.bake_seconds) {
        return Err(format!(
            "bakeSeconds {} must be 1..={MAX_BAKE_SECONDS} (CodeDeploy's longest termination wait)",
            g.bake_seconds
        ));
    }
    if g.alarms.len() > MAX_ALARMS {
        return Err(format!(
            "{} alarms named; at most {MAX_ALARMS}",
            g.alarms.len()
        ));
    }
    if g.alarms
        .iter()
        .any(|a| a.trim().is_empty() || a.len() > 255)
    {
        return Err("an alarm name is empty or longer than 255 characters".into());
    }
    if g.period_seconds == 0 || !g.period_seconds.is_multiple_of(60) {
        return Err(format!(
            "periodSeconds {} must be a positive multiple of 60 (ALB metrics are per minute)",
            g.period_seconds
        ));
    }
    if g.min_look_seconds == 0 || g.min_look_seconds > g.max_look_seconds {
        return Err(format!(
            "minLookSeconds {} must be at least 1 and at most maxLookSeconds {}",
            g.min_look_seconds, g.max_look_seconds
        ));
    }
    if g.max_look_seconds > 3_600 {
        return Err(format!(
            "maxLookSeconds {} must be at most 3600",
            g.max_look_seconds
        ));
    }
    if g.standby_settle_seconds > 300 {
        return Err(format!(
            "standbySettleSeconds {} must be at most 300",
            g.standby_settle_seconds
        ));
    }
    if let Some(name) = &g.standby_target_group {
        // CreateTargetGroup: at most 32 alphanumeric characters or hyphens,
        // not beginning or ending with a hyphen.
        let valid = !name.is_empty()
            && name.len() <= 32
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !valid {
            return Err(format!(
                "standbyTargetGroup {name:?} is not a target group name (1-32 letters, digits or hyphens, no hyphen first or last)"
            ));
        }
    }
    if let Some(rate) = g.thresholds.max_5xx_rate_percent {
        if !(0.0..=100.0).contains(&rate) {
            return Err(format!(
                "thresholds.max5xxRatePercent {rate} must be 0..=100"
            ));
        }
    }
    Ok(())
}

/// The bake configured for one deployment group, if any.
pub fn bake_for<'a>(
    groups: &'a [GroupBake],
    application: &str,
    group: &str,
) -> Option<&'a GroupBake> {
    crate::group_config::entry_for(groups, application, group)
}

/// What the bake does for one deployment, decided before any look at the
/// fleet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BakePlan<'a> {
    /// The group has no bake: the termination wait runs as configured (a
    /// skip asked for such a group has nothing to skip; the deployed
    /// notification says it was asked).
    NotConfigured,
    /// The group bakes, but the upload asked for the emergency override:
    /// put the target groups' own settings back (as a first look does) and
    /// do not watch; CodeDeploy's termination wait runs out as configured,
    /// blue is kept for all of it, nothing ends it early.
    Skip {
        config: &'a GroupBake,
        skip: &'a crate::options::BakeSkip,
    },
    /// Watch green with this bake.
    Watch(&'a GroupBake),
}

/// [`BakePlan`] from the group's bake (if any) and the upload's override
/// (only ever explicit: [`crate::options::decide`]).
pub fn plan<'a>(
    config: Option<&'a GroupBake>,
    skip: Option<&'a crate::options::BakeSkip>,
) -> BakePlan<'a> {
    match (config, skip) {
        (None, _) => BakePlan::NotConfigured,
        (Some(config), Some(skip)) => BakePlan::Skip { config, skip },
        (Some(config), None) => BakePlan::Watch(config),
    }
}

/// The `$.bake.summary` of a skipped bake (names who asked).
pub fn skipped_summary(requester: &str) -> String {
    format!(
        "bake SKIPPED by override ({requester}): green is not watched; the target groups' own settings are back; CodeDeploy's termination wait runs out as configured and blue is kept until then (no early termination)"
    )
}

/// Everything one look read, with `now`.
#[derive(Debug, Clone, PartialEq)]
pub struct BakeInputs<'a> {
    pub config: &'a GroupBake,
    /// When the bake began (the first look after the reroute completed).
    pub started_at_ms: EpochMillis,
    pub now_ms: EpochMillis,
    /// Every alarm the bake watches: the group's named alarms and the
    /// deployment group's own, as DescribeAlarms answered.
    pub alarms: &'a [AlarmObservation],
    /// Alarm names the bake was told to watch that DescribeAlarms did not
    /// return (deleted or misspelt).
    pub missing_alarms: &'a [String],
    pub samples: &'a [MetricSample],
    /// Failed HTTP probes of the green targets (same checks as the gate),
    /// one sentence each; empty when all passed.
    pub probe_failures: &'a [String],
}

/// Why a bake failed: each item names what was seen and the limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum BakeEvidence {
    /// A watched alarm is in ALARM.
    #[serde(rename_all = "camelCase")]
    Alarm {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since_ms: Option<EpochMillis>,
        reason: String,
    },
    /// A watched alarm does not exist: the bake cannot watch what it was
    /// told to (harsher reading: fail rather than pass unwatched).
    #[serde(rename_all = "camelCase")]
    AlarmMissing { name: String },
    /// A built-in check on the target group's metrics.
    #[serde(rename_all = "camelCase")]
    Metric {
        check: MetricCheck,
        period_start_ms: EpochMillis,
        value: f64,
        limit: f64,
    },
    /// A green target failed the HTTP probe.
    #[serde(rename_all = "camelCase")]
    Probe { detail: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MetricCheck {
    Target5xxCount,
    Target5xxRatePercent,
    ResponseTimeMs,
    UnhealthyHosts,
}

impl BakeEvidence {
    /// One sentence for reports and notifications.
    pub fn describe(&self) -> String {
        match self {
            Self::Alarm { name, reason, .. } => {
                if reason.is_empty() {
                    format!("alarm {name} is in ALARM")
                } else {
                    format!("alarm {name} is in ALARM ({reason})")
                }
            }
            Self::AlarmMissing { name } => format!(
                "alarm {name} does not exist, so the bake cannot watch it (fix the group's BakeConfig alarms or create the alarm)"
            ),
            Self::Metric {
                check,
                period_start_ms,
                value,
                limit,
            } => {
                let what = match check {
                    MetricCheck::Target5xxCount => "target 5xx answers",
                    MetricCheck::Target5xxRatePercent => "target 5xx rate (%)",
                    MetricCheck::ResponseTimeMs => "average target response time (ms)",
                    MetricCheck::UnhealthyHosts => "unhealthy hosts",
                };
                format!(
                    "{what} {} > limit {} in the minute starting at {period_start_ms} ms",
                    round2(*value),
                    round2(*limit)
                )
            }
            Self::Probe { detail } => format!("probe failed: {detail}"),
        }
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Where a bake stands, as the state machine routes on it (`$.bake.verdict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BakeVerdict {
    /// The group has no bake: the termination wait runs as configured.
    NotConfigured,
    /// Look again after `waitSeconds`.
    Watching,
    /// Passed; `ContinueDeployment(TERMINATION_WAIT)` was answered.
    Passed,
    /// Failed; `StopDeployment(autoRollbackEnabled)` was answered.
    Failed,
    /// The emergency override (`greenlight-bake=skip`, UserParameters
    /// `{"bake":"skip"}`): the group has a bake, it was not run; the
    /// termination wait runs as configured ([`BakePlan::Skip`]).
    Skipped,
    /// The deployment is no longer in its termination wait (it ended, or
    /// the wait ran out before the bake did): back to the status loop.
    Ended,
}

/// traffic-validator `bake` output, stored at `$.bake` (each look replaces
/// the previous one and carries `startedAtMs`, `looks` and `tuned` on).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BakeReport {
    pub deployment_id: String,
    pub verdict: BakeVerdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<EpochMillis>,
    pub looked_at_ms: EpochMillis,
    pub looks: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_seconds: Option<u32>,
    /// For `watching`: the Wait state's `SecondsPath`.
    pub wait_seconds: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<BakeEvidence>,
    pub summary: String,
    /// For `passed`: the termination wait the early end saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_seconds: Option<u32>,
    /// The fast profile as it was live on each target group when the bake
    /// put the snapshot back (first look); re-applied on a failed bake so
    /// the rollback re-registers blue fast.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tuned: Vec<crate::model::TargetGroupSnapshot>,
    /// The standby keeping blue warm ([`standby`]): the routes' snapshots,
    /// blue's targets in standby and the weights in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<standby::StandbyState>,
    /// Why the standby is not in use (not armed, or not switched to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby_note: Option<String>,
}

/// The answer of one look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "camelCase")]
pub enum BakeDecision {
    /// Clean for the whole bake (and the metric delay): end the wait now.
    #[serde(rename_all = "camelCase")]
    Pass { baked_seconds: u32 },
    /// Something is wrong: roll back while blue still exists.
    #[serde(rename_all = "camelCase")]
    Fail { evidence: Vec<BakeEvidence> },
    /// Nothing wrong yet, not done: look again at `next_look_at_ms`.
    #[serde(rename_all = "camelCase")]
    KeepWatching { next_look_at_ms: EpochMillis },
}

/// When a bake started at `started_at_ms` may pass: the bake time plus the
/// metric delay (the last period must have reached CloudWatch).
pub fn pass_at_ms(config: &GroupBake, started_at_ms: EpochMillis) -> EpochMillis {
    started_at_ms
        .saturating_add(i64::from(config.bake_seconds) * 1_000)
        .saturating_add(i64::from(config.metric_delay_seconds) * 1_000)
}

/// The bake decision. Rules, in order:
///
/// 1. Any watched alarm in ALARM, any named alarm missing, any sample whose
///    period overlaps the bake (period end after `started_at_ms`) over a
///    threshold, any failed probe → `Fail` with every piece of evidence.
///    Samples of periods that ended before the bake began are ignored (they
///    describe the fleet before the reroute).
/// 2. Else, at or after [`pass_at_ms`] → `Pass`.
/// 3. Else `KeepWatching`: next look at the pass time, clamped to
///    `now + min_look ..= now + max_look`.
pub fn decide(inputs: &BakeInputs<'_>) -> BakeDecision {
    let evidence = evidence(inputs);
    if !evidence.is_empty() {
        return BakeDecision::Fail { evidence };
    }
    let c = inputs.config;
    let pass_at = pass_at_ms(c, inputs.started_at_ms);
    if inputs.now_ms >= pass_at {
        let baked = (inputs.now_ms.saturating_sub(inputs.started_at_ms) / 1_000).max(0);
        return BakeDecision::Pass {
            baked_seconds: u32::try_from(baked).unwrap_or(u32::MAX),
        };
    }
    let earliest = inputs
        .now_ms
        .saturating_add(i64::from(c.min_look_seconds.max(1)) * 1_000);
    let latest = inputs
        .now_ms
        .saturating_add(i64::from(c.max_look_seconds.max(c.min_look_seconds).max(1)) * 1_000);
    BakeDecision::KeepWatching {
        next_look_at_ms: pass_at.clamp(earliest, latest),
    }
}

/// The GetMetricData window of a look, aligned to the period as CloudWatch
/// advises ("specify StartTime and EndTime values that align with the value
/// of the metric's Period", GetMetricData API reference): from the start of
/// the period before the bake began (it overlaps the bake) to the end of the
/// period `now` is in.
pub fn metric_window(
    started_at_ms: EpochMillis,
    now_ms: EpochMillis,
    period_seconds: u32,
) -> (EpochMillis, EpochMillis) {
    let period = i64::from(period_seconds.max(1)) * 1_000;
    let start = started_at_ms.div_euclid(period).saturating_sub(1) * period;
    let end = (now_ms.div_euclid(period).saturating_add(1)) * period;
    (start, end.max(start + period))
}

/// Whole seconds from `now_ms` to `at_ms`, rounded up, at least 1 (a Wait
/// state's `SecondsPath`).
pub fn wait_seconds(now_ms: EpochMillis, at_ms: EpochMillis) -> u32 {
    let ms = at_ms.saturating_sub(now_ms).max(1);
    u32::try_from((ms + 999) / 1_000).unwrap_or(u32::MAX).max(1)
}

fn evidence(inputs: &BakeInputs<'_>) -> Vec<BakeEvidence> {
    let mut found = Vec::new();
    for a in inputs.alarms {
        if a.state == AlarmState::Alarm {
            found.push(BakeEvidence::Alarm {
                name: a.name.clone(),
                since_ms: a.since_ms,
                reason: a.reason.clone(),
            });
        }
    }
    for name in inputs.missing_alarms {
        found.push(BakeEvidence::AlarmMissing { name: name.clone() });
    }
    found.extend(metric_evidence(inputs));
    for detail in inputs.probe_failures {
        found.push(BakeEvidence::Probe {
            detail: detail.clone(),
        });
    }
    found
}

fn metric_evidence(inputs: &BakeInputs<'_>) -> Vec<BakeEvidence> {
    let t = &inputs.config.thresholds;
    let period_ms = i64::from(inputs.config.period_seconds.max(1)) * 1_000;
    let in_bake = |s: &&MetricSample| {
        s.at_ms.saturating_add(period_ms) > inputs.started_at_ms && s.value.is_finite()
    };
    let samples: Vec<&MetricSample> = inputs.samples.iter().filter(in_bake).collect();
    let mut periods: Vec<EpochMillis> = samples.iter().map(|s| s.at_ms).collect();
    periods.sort_unstable();
    periods.dedup();
    let value = |metric: BakeMetric, at: EpochMillis| -> Option<f64> {
        let mut values = samples
            .iter()
            .filter(|s| s.metric == metric && s.at_ms == at)
            .map(|s| s.value);
        let first = values.next()?;
        // Two datapoints for one period (should not happen) count as the worse.
        Some(values.fold(first, f64::max))
    };
    let mut found = Vec::new();
    for at in periods {
        let errors = value(BakeMetric::Target5xxCount, at);
        let requests = value(BakeMetric::RequestCount, at);
        let mut check = |check: MetricCheck, v: Option<f64>, limit: Option<f64>| {
            if let (Some(v), Some(limit)) = (v, limit) {
                if v > limit {
                    found.push(BakeEvidence::Metric {
                        check,
                        period_start_ms: at,
                        value: v,
                        limit,
                    });
                }
            }
        };
        check(
            MetricCheck::Target5xxCount,
            errors,
            t.max_5xx_count.map(|c| c as f64),
        );
        let rate = match (errors, requests) {
            (Some(e), Some(r)) if r > 0.0 => Some(e / r * 100.0),
            // 5xx answers with no request count in the period: all failed.
            (Some(e), _) if e > 0.0 => Some(100.0),
            _ => None,
        };
        check(
            MetricCheck::Target5xxRatePercent,
            rate,
            t.max_5xx_rate_percent,
        );
        check(
            MetricCheck::ResponseTimeMs,
            value(BakeMetric::TargetResponseTime, at).map(|s| s * 1_000.0),
            t.max_response_time_ms.map(|m| m as f64),
        );
        check(
            MetricCheck::UnhealthyHosts,
            value(BakeMetric::UnHealthyHostCount, at),
            t.max_unhealthy_hosts.map(|m| m as f64),
        );
    }
    found
}

/// One sentence for the failure report: the first pieces of evidence.
pub fn summary(evidence: &[BakeEvidence]) -> String {
    const SHOWN: usize = 3;
    let mut parts: Vec<String> = evidence.iter().take(SHOWN).map(|e| e.describe()).collect();
    if evidence.len() > SHOWN {
        parts.push(format!("and {} more", evidence.len() - SHOWN));
    }
    if parts.is_empty() {
        "the bake failed without evidence".to_string()
    } else {
        parts.join("; ")
    }
}

/// The seconds an early end saved: the termination wait CodeDeploy would
/// have waited after the reroute, minus the time the bake took.
pub fn saved_seconds(
    termination_wait_seconds: Option<u32>,
    started_at_ms: EpochMillis,
    ended_at_ms: EpochMillis,
) -> Option<u32> {
    let wait = termination_wait_seconds?;
    let took = ended_at_ms.saturating_sub(started_at_ms).max(0) / 1_000;
    let took = u32::try_from(took).unwrap_or(u32::MAX);
    Some(wait.saturating_sub(took))
}

#[cfg(test)]
mod tests;
