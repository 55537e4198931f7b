//! Health-check tuning decisions: the fast profile, the AllowTraffic
//! prediction, the `greenlight:snapshot` tag, and what to change on `tune`
//! and `restore`.
//!
//! Why: CodeDeploy's AllowTraffic waits until the green targets are healthy
//! in the target group, which takes about (healthy threshold × interval) +
//! interval. The seed's settings (interval 30 s, healthy 10) made that 330 s;
//! the fast profile (interval 5 s, healthy 2) makes it 15 s. BlockTraffic on
//! blue waits for the deregistration delay (AWS default 300 s).
//!
//! The tuner records what it changed as an ELBv2 tag on the target group
//! ([`SNAPSHOT_TAG_KEY`], value [`encode_snapshot_tag`]) BEFORE changing
//! anything, so a restore works even without the pipeline state. A second
//! `tune` keeps the recorded (original) snapshot: tuned values are never
//! snapshotted.

use crate::model::{
    AllowTrafficPrediction, BlockTrafficPrediction, HealthCheckSettings, TargetGroupSnapshot,
    TuningResult,
};
use serde::{Deserialize, Serialize};

/// The ELBv2 tag key under which the tuner records the original settings.
pub const SNAPSHOT_TAG_KEY: &str = "greenlight:snapshot";
/// ELBv2 tag values are at most 256 characters.
pub const MAX_TAG_VALUE_CHARS: usize = 256;
/// Version prefix of the tag value; bump it when the encoding changes.
pub const SNAPSHOT_TAG_VERSION: &str = "v1";

/// ALB target-group health-check interval limits (seconds).
pub const INTERVAL_RANGE: (u32, u32) = (5, 300);
/// ALB target-group health-check timeout limits (seconds); also `< interval`.
pub const TIMEOUT_RANGE: (u32, u32) = (2, 120);
/// Healthy / unhealthy threshold limits (counts).
pub const THRESHOLD_RANGE: (u32, u32) = (2, 10);
/// `deregistration_delay.timeout_seconds` limits (seconds).
pub const DEREGISTRATION_RANGE: (u32, u32) = (0, 3600);

/// Defaults of the fast profile (issue 3 / the seed's tuned values).
pub const DEFAULT_INTERVAL_SECONDS: u32 = 5;
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 2;
pub const DEFAULT_HEALTHY_THRESHOLD: u32 = 2;
pub const DEFAULT_UNHEALTHY_THRESHOLD: u32 = 2;
pub const DEFAULT_DEREGISTRATION_DELAY_SECONDS: u32 = 30;

/// The settings the tuner applies during a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FastProfile {
    pub health_check: HealthCheckSettings,
    pub deregistration_delay_seconds: u32,
}

impl Default for FastProfile {
    fn default() -> Self {
        Self {
            health_check: HealthCheckSettings {
                interval_seconds: DEFAULT_INTERVAL_SECONDS,
                timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
                healthy_threshold: DEFAULT_HEALTHY_THRESHOLD,
                unhealthy_threshold: DEFAULT_UNHEALTHY_THRESHOLD,
            },
            deregistration_delay_seconds: DEFAULT_DEREGISTRATION_DELAY_SECONDS,
        }
    }
}

/// A fast profile that ALB would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("health-check interval {value} s is outside ALB's 5..=300 s; set HEALTH_CHECK_INTERVAL_SECONDS within it")]
    Interval { value: u32 },
    #[error("health-check timeout {value} s is outside ALB's 2..=120 s; set HEALTH_CHECK_TIMEOUT_SECONDS within it")]
    Timeout { value: u32 },
    #[error("health-check timeout {timeout} s must be less than the interval {interval} s; lower HEALTH_CHECK_TIMEOUT_SECONDS or raise HEALTH_CHECK_INTERVAL_SECONDS")]
    TimeoutNotBelowInterval { timeout: u32, interval: u32 },
    #[error("healthy threshold {value} is outside ALB's 2..=10; set HEALTHY_THRESHOLD within it")]
    HealthyThreshold { value: u32 },
    #[error(
        "unhealthy threshold {value} is outside ALB's 2..=10; set UNHEALTHY_THRESHOLD within it"
    )]
    UnhealthyThreshold { value: u32 },
    #[error("deregistration delay {value} s is outside 0..=3600 s; set DEREGISTRATION_DELAY_SECONDS within it")]
    DeregistrationDelay { value: u32 },
}

fn within(value: u32, (lo, hi): (u32, u32)) -> bool {
    (lo..=hi).contains(&value)
}

impl FastProfile {
    /// A validated profile.
    pub fn new(
        interval_seconds: u32,
        timeout_seconds: u32,
        healthy_threshold: u32,
        unhealthy_threshold: u32,
        deregistration_delay_seconds: u32,
    ) -> Result<Self, ProfileError> {
        let profile = Self {
            health_check: HealthCheckSettings {
                interval_seconds,
                timeout_seconds,
                healthy_threshold,
                unhealthy_threshold,
            },
            deregistration_delay_seconds,
        };
        profile.validate()?;
        Ok(profile)
    }

    /// Checks every value against ALB's limits (the first problem found).
    pub fn validate(&self) -> Result<(), ProfileError> {
        let hc = &self.health_check;
        if !within(hc.interval_seconds, INTERVAL_RANGE) {
            return Err(ProfileError::Interval {
                value: hc.interval_seconds,
            });
        }
        if !within(hc.timeout_seconds, TIMEOUT_RANGE) {
            return Err(ProfileError::Timeout {
                value: hc.timeout_seconds,
            });
        }
        if hc.timeout_seconds >= hc.interval_seconds {
            return Err(ProfileError::TimeoutNotBelowInterval {
                timeout: hc.timeout_seconds,
                interval: hc.interval_seconds,
            });
        }
        if !within(hc.healthy_threshold, THRESHOLD_RANGE) {
            return Err(ProfileError::HealthyThreshold {
                value: hc.healthy_threshold,
            });
        }
        if !within(hc.unhealthy_threshold, THRESHOLD_RANGE) {
            return Err(ProfileError::UnhealthyThreshold {
                value: hc.unhealthy_threshold,
            });
        }
        if !within(self.deregistration_delay_seconds, DEREGISTRATION_RANGE) {
            return Err(ProfileError::DeregistrationDelay {
                value: self.deregistration_delay_seconds,
            });
        }
        Ok(())
    }
}

/// Seconds for a newly registered target to become healthy:
/// (healthy threshold × interval) + interval (the first check waits one interval).
pub fn allow_traffic_seconds(hc: &HealthCheckSettings) -> u32 {
    hc.healthy_threshold
        .saturating_mul(hc.interval_seconds)
        .saturating_add(hc.interval_seconds)
}

/// Predicted AllowTraffic time with the original settings (the slowest of the
/// snapshots: AllowTraffic waits for every target group) and with the profile.
/// With no snapshots, `before` equals `after`.
pub fn predict_allow_traffic(
    snapshots: &[TargetGroupSnapshot],
    profile: &FastProfile,
) -> AllowTrafficPrediction {
    let after_seconds = allow_traffic_seconds(&profile.health_check);
    let before_seconds = snapshots
        .iter()
        .map(|s| allow_traffic_seconds(&s.health_check))
        .max()
        .unwrap_or(after_seconds);
    AllowTrafficPrediction {
        before_seconds,
        after_seconds,
    }
}

/// Predicted BlockTraffic time (blue drains for the deregistration delay)
/// with the original settings (the longest delay of the snapshots) and with
/// the profile. With no snapshots, `before` equals `after`.
pub fn predict_block_traffic(
    snapshots: &[TargetGroupSnapshot],
    profile: &FastProfile,
) -> BlockTrafficPrediction {
    let after_seconds = profile.deregistration_delay_seconds;
    let before_seconds = snapshots
        .iter()
        .map(|s| s.deregistration_delay_seconds)
        .max()
        .unwrap_or(after_seconds);
    BlockTrafficPrediction {
        before_seconds,
        after_seconds,
    }
}

/// The `tune` output for the kept snapshots.
pub fn tuning_result(snapshots: Vec<TargetGroupSnapshot>, profile: &FastProfile) -> TuningResult {
    let predicted_allow_traffic = predict_allow_traffic(&snapshots, profile);
    let predicted_block_traffic = Some(predict_block_traffic(&snapshots, profile));
    TuningResult {
        snapshots,
        predicted_allow_traffic,
        predicted_block_traffic,
    }
}

// ---------------------------------------------------------------------------
// The snapshot tag
// ---------------------------------------------------------------------------

/// Field names of the tag value, in their one accepted order.
const TAG_FIELDS: [&str; 5] = [
    "interval",
    "timeout",
    "healthy",
    "unhealthy",
    "deregistration",
];

/// A `greenlight:snapshot` tag value that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tag {key}={value:?} is corrupt: {problem}; fix or delete the tag (expected e.g. {example:?})", key = SNAPSHOT_TAG_KEY, example = example_tag())]
pub struct TagError {
    pub value: String,
    pub problem: String,
}

fn example_tag() -> String {
    encode_snapshot_tag(&TargetGroupSnapshot {
        target_group_arn: String::new(),
        health_check: HealthCheckSettings {
            interval_seconds: 30,
            timeout_seconds: 5,
            healthy_threshold: 5,
            unhealthy_threshold: 2,
        },
        deregistration_delay_seconds: 300,
    })
}

/// Encodes the settings of a snapshot (the ARN is where the tag lives, so it
/// is not repeated): `v1 interval=30 timeout=5 healthy=10 unhealthy=2 deregistration=300`.
/// Only characters ELBv2 allows in tag values (letters, digits, space, `=`);
/// at most 5 × 10 digits + 56 characters, well under 256.
pub fn encode_snapshot_tag(snapshot: &TargetGroupSnapshot) -> String {
    let hc = &snapshot.health_check;
    format!(
        "{SNAPSHOT_TAG_VERSION} interval={} timeout={} healthy={} unhealthy={} deregistration={}",
        hc.interval_seconds,
        hc.timeout_seconds,
        hc.healthy_threshold,
        hc.unhealthy_threshold,
        snapshot.deregistration_delay_seconds
    )
}

/// Strictly decodes a tag value written by [`encode_snapshot_tag`] for the
/// target group `target_group_arn`. Anything else (other version, missing,
/// extra, reordered or repeated fields, non-canonical numbers, values ELBv2
/// would refuse) is an error, never ignored.
pub fn decode_snapshot_tag(
    target_group_arn: &str,
    value: &str,
) -> Result<TargetGroupSnapshot, TagError> {
    let fail = |problem: String| TagError {
        value: value.to_string(),
        problem,
    };
    if value.chars().count() > MAX_TAG_VALUE_CHARS {
        return Err(fail(format!(
            "longer than {MAX_TAG_VALUE_CHARS} characters"
        )));
    }
    let mut parts = value.split(' ');
    match parts.next() {
        Some(SNAPSHOT_TAG_VERSION) => {}
        Some(other) => {
            return Err(fail(format!(
                "unknown version {other:?} (this greenlight reads {SNAPSHOT_TAG_VERSION:?})"
            )))
        }
        None => return Err(fail("empty".to_string())),
    }
    let mut numbers = [0u32; 5];
    for (slot, name) in numbers.iter_mut().zip(TAG_FIELDS) {
        let part = parts
            .next()
            .ok_or_else(|| fail(format!("field {name:?} is missing")))?;
        let (key, number) = part
            .split_once('=')
            .ok_or_else(|| fail(format!("{part:?} is not name=number")))?;
        if key != name {
            return Err(fail(format!("expected field {name:?}, found {key:?}")));
        }
        *slot = parse_canonical_u32(number)
            .ok_or_else(|| fail(format!("{name}={number:?} is not a whole number")))?;
    }
    if let Some(extra) = parts.next() {
        return Err(fail(format!("unexpected trailing {extra:?}")));
    }
    let [interval, timeout, healthy, unhealthy, deregistration] = numbers;
    let checks = [
        ("interval", interval, INTERVAL_RANGE),
        ("timeout", timeout, TIMEOUT_RANGE),
        ("healthy", healthy, THRESHOLD_RANGE),
        ("unhealthy", unhealthy, THRESHOLD_RANGE),
        ("deregistration", deregistration, DEREGISTRATION_RANGE),
    ];
    for (name, v, range) in checks {
        if !within(v, range) {
            return Err(fail(format!(
                "{name}={v} is outside ELBv2's {}..={}",
                range.0, range.1
            )));
        }
    }
    Ok(TargetGroupSnapshot {
        target_group_arn: target_group_arn.to_string(),
        health_check: HealthCheckSettings {
            interval_seconds: interval,
            timeout_seconds: timeout,
            healthy_threshold: healthy,
            unhealthy_threshold: unhealthy,
        },
        deregistration_delay_seconds: deregistration,
    })
}

/// ASCII digits only, no sign, no leading zero (except `0` itself), fits u32.
fn parse_canonical_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

// ---------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------

/// Settings to change on one target group (`None` = leave as is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Changes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deregistration_delay_seconds: Option<u32>,
}

impl Changes {
    /// What to change so that a target group at `current` has `health_check`
    /// and `deregistration_delay_seconds`.
    pub fn between(
        current: &TargetGroupSnapshot,
        health_check: HealthCheckSettings,
        deregistration_delay_seconds: u32,
    ) -> Self {
        Self {
            health_check: (current.health_check != health_check).then_some(health_check),
            deregistration_delay_seconds: (current.deregistration_delay_seconds
                != deregistration_delay_seconds)
                .then_some(deregistration_delay_seconds),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.health_check.is_none() && self.deregistration_delay_seconds.is_none()
    }
}

/// What `tune` does on one target group, in this order: write the tag (when
/// `tag_value` is set), then apply `changes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunePlan {
    /// The original settings: the recorded tag when there is one, else the
    /// current settings.
    pub keep: TargetGroupSnapshot,
    /// The tag value to write first; `None` when a tag is already recorded
    /// (it holds the original and must not be overwritten).
    pub tag_value: Option<String>,
    pub changes: Changes,
}

/// Plans `tune` for one target group from its current settings and the
/// snapshot recorded in its tag, if any. An existing tag wins: a retried or
/// repeated tune must never record already-tuned values as the original.
pub fn plan_tune(
    current: &TargetGroupSnapshot,
    recorded: Option<&TargetGroupSnapshot>,
    profile: &FastProfile,
) -> TunePlan {
    let (keep, tag_value) = match recorded {
        Some(r) => (
            TargetGroupSnapshot {
                target_group_arn: current.target_group_arn.clone(),
                ..r.clone()
            },
            None,
        ),
        None => (current.clone(), Some(encode_snapshot_tag(current))),
    };
    TunePlan {
        keep,
        tag_value,
        changes: Changes::between(
            current,
            profile.health_check,
            profile.deregistration_delay_seconds,
        ),
    }
}

/// What `restore` does on one target group, in this order: apply `changes`,
/// then remove the tag (last, so a failed restore can be retried from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestorePlan {
    pub changes: Changes,
    pub remove_tag: bool,
}

impl RestorePlan {
    /// Nothing to do: already restored (or never tuned).
    pub fn is_noop(&self) -> bool {
        self.changes.is_empty() && !self.remove_tag
    }
}

/// Plans `restore` of `snapshot` on a target group now at `current`, whose
/// snapshot tag is present or not. Equal settings and no tag = nothing to do.
pub fn plan_restore(
    current: &TargetGroupSnapshot,
    snapshot: &TargetGroupSnapshot,
    tag_present: bool,
) -> RestorePlan {
    RestorePlan {
        changes: Changes::between(
            current,
            snapshot.health_check,
            snapshot.deregistration_delay_seconds,
        ),
        remove_tag: tag_present,
    }
}

/// Where `restore` takes the snapshots from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RestoreSource {
    /// `pipeline.tuning.snapshots` (the state machine's own record).
    State,
    /// The `greenlight:snapshot` tags of the deployment group's target groups.
    Tags,
}

/// The pipeline state's snapshots win when present (even an empty list: the
/// tune ran and found nothing); otherwise the recorded tags are read.
pub fn restore_source(tuning: Option<&TuningResult>) -> RestoreSource {
    match tuning {
        Some(_) => RestoreSource::State,
        None => RestoreSource::Tags,
    }
}

/// Why a target group was not restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedTargetGroup {
    pub target_group_arn: String,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SkipReason {
    /// Settings already equal the snapshot and no tag is left.
    AlreadyRestored,
    /// No snapshot tag: this target group was not tuned (or already restored).
    NotTuned,
    /// The target group no longer exists.
    TargetGroupGone,
}

/// health-check-tuner `restore` output (stored at `$.restored`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreReport {
    pub source: RestoreSource,
    /// Target groups whose settings were put back or whose tag was removed.
    pub restored: Vec<String>,
    pub skipped: Vec<SkippedTargetGroup>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(interval: u32, timeout: u32, healthy: u32, unhealthy: u32) -> HealthCheckSettings {
        HealthCheckSettings {
            interval_seconds: interval,
            timeout_seconds: timeout,
            healthy_threshold: healthy,
            unhealthy_threshold: unhealthy,
        }
    }

    fn snap(arn: &str, h: HealthCheckSettings, dereg: u32) -> TargetGroupSnapshot {
        TargetGroupSnapshot {
            target_group_arn: arn.to_string(),
            health_check: h,
            deregistration_delay_seconds: dereg,
        }
    }

    const ARN: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-tg/50dc6c495c0c9188";

    fn seed() -> TargetGroupSnapshot {
        snap(ARN, hc(30, 5, 10, 2), 300)
    }

    // ---- profile -----------------------------------------------------------

    #[test]
    fn default_profile_is_the_seeds_tuned_values() {
        let p = FastProfile::default();
        assert_eq!(p.health_check, hc(5, 2, 2, 2));
        assert_eq!(p.deregistration_delay_seconds, 30);
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(FastProfile::new(5, 2, 2, 2, 30), Ok(p));
    }

    #[test]
    fn profile_accepts_the_alb_boundaries() {
        assert!(FastProfile::new(5, 2, 2, 2, 0).is_ok());
        assert!(FastProfile::new(300, 120, 10, 10, 3600).is_ok());
        assert!(FastProfile::new(121, 120, 2, 2, 30).is_ok());
        assert!(FastProfile::new(6, 5, 2, 2, 30).is_ok());
    }

    #[test]
    fn profile_rejects_out_of_range_interval() {
        assert_eq!(
            FastProfile::new(4, 2, 2, 2, 30),
            Err(ProfileError::Interval { value: 4 })
        );
        assert_eq!(
            FastProfile::new(301, 2, 2, 2, 30),
            Err(ProfileError::Interval { value: 301 })
        );
        assert_eq!(
            FastProfile::new(0, 2, 2, 2, 30),
            Err(ProfileError::Interval { value: 0 })
        );
    }

    #[test]
    fn profile_rejects_out_of_range_timeout() {
        assert_eq!(
            FastProfile::new(5, 1, 2, 2, 30),
            Err(ProfileError::Timeout { value: 1 })
        );
        assert_eq!(
            FastProfile::new(300, 121, 2, 2, 30),
            Err(ProfileError::Timeout { value: 121 })
        );
    }

    #[test]
    fn profile_rejects_timeout_not_below_interval() {
        assert_eq!(
            FastProfile::new(5, 5, 2, 2, 30),
            Err(ProfileError::TimeoutNotBelowInterval {
                timeout: 5,
                interval: 5
            })
        );
        assert_eq!(
            FastProfile::new(10, 20, 2, 2, 30),
            Err(ProfileError::TimeoutNotBelowInterval {
                timeout: 20,
                interval: 10
            })
        );
    }

    #[test]
    fn profile_rejects_out_of_range_thresholds() {
        assert_eq!(
            FastProfile::new(5, 2, 1, 2, 30),
            Err(ProfileError::HealthyThreshold { value: 1 })
        );
        assert_eq!(
            FastProfile::new(5, 2, 11, 2, 30),
            Err(ProfileError::HealthyThreshold { value: 11 })
        );
        assert_eq!(
            FastProfile::new(5, 2, 2, 1, 30),
            Err(ProfileError::UnhealthyThreshold { value: 1 })
        );
        assert_eq!(
            FastProfile::new(5, 2, 2, 11, 30),
            Err(ProfileError::UnhealthyThreshold { value: 11 })
        );
    }

    #[test]
    fn profile_rejects_out_of_range_deregistration_delay() {
        assert_eq!(
            FastProfile::new(5, 2, 2, 2, 3601),
            Err(ProfileError::DeregistrationDelay { value: 3601 })
        );
    }

    #[test]
    fn profile_errors_name_the_variable_to_fix() {
        let cases = [
            (
                FastProfile::new(4, 2, 2, 2, 30),
                "HEALTH_CHECK_INTERVAL_SECONDS",
            ),
            (
                FastProfile::new(5, 1, 2, 2, 30),
                "HEALTH_CHECK_TIMEOUT_SECONDS",
            ),
            (
                FastProfile::new(5, 5, 2, 2, 30),
                "HEALTH_CHECK_TIMEOUT_SECONDS",
            ),
            (FastProfile::new(5, 2, 1, 2, 30), "HEALTHY_THRESHOLD"),
            (FastProfile::new(5, 2, 2, 1, 30), "UNHEALTHY_THRESHOLD"),
            (
                FastProfile::new(5, 2, 2, 2, 4000),
                "DEREGISTRATION_DELAY_SECONDS",
            ),
        ];
        for (result, var) in cases {
            let msg = result.unwrap_err().to_string();
            assert!(msg.contains(var), "{msg} should name {var}");
        }
    }

    #[test]
    fn validate_catches_a_hand_built_invalid_profile() {
        let p = FastProfile {
            health_check: hc(5, 2, 2, 2),
            deregistration_delay_seconds: 9999,
        };
        assert_eq!(
            p.validate(),
            Err(ProfileError::DeregistrationDelay { value: 9999 })
        );
    }

    // ---- prediction --------------------------------------------------------

    #[test]
    fn allow_traffic_alb_default_is_180_seconds() {
        assert_eq!(allow_traffic_seconds(&hc(30, 5, 5, 2)), 180);
    }

    #[test]
    fn allow_traffic_seed_settings_are_330_seconds() {
        assert_eq!(allow_traffic_seconds(&hc(30, 5, 10, 2)), 330);
    }

    #[test]
    fn allow_traffic_floor_is_15_seconds() {
        assert_eq!(allow_traffic_seconds(&hc(5, 2, 2, 2)), 15);
        assert_eq!(
            allow_traffic_seconds(&FastProfile::default().health_check),
            15
        );
    }

    #[test]
    fn allow_traffic_saturates_instead_of_overflowing() {
        assert_eq!(allow_traffic_seconds(&hc(u32::MAX, 2, 10, 2)), u32::MAX);
    }

    #[test]
    fn prediction_before_is_the_slowest_target_group() {
        let p = predict_allow_traffic(
            &[
                snap("a", hc(30, 5, 5, 2), 300),
                seed(),
                snap("c", hc(10, 5, 3, 2), 300),
            ],
            &FastProfile::default(),
        );
        assert_eq!(
            p,
            AllowTrafficPrediction {
                before_seconds: 330,
                after_seconds: 15
            }
        );
    }

    #[test]
    fn prediction_without_target_groups_is_unchanged() {
        let p = predict_allow_traffic(&[], &FastProfile::default());
        assert_eq!(p.before_seconds, 15);
        assert_eq!(p.after_seconds, 15);
    }

    #[test]
    fn tuning_result_carries_snapshots_and_prediction() {
        let r = tuning_result(vec![seed()], &FastProfile::default());
        assert_eq!(r.snapshots, vec![seed()]);
        assert_eq!(r.predicted_allow_traffic.before_seconds, 330);
        assert_eq!(r.predicted_allow_traffic.after_seconds, 15);
        assert_eq!(
            r.predicted_block_traffic,
            Some(BlockTrafficPrediction {
                before_seconds: 300,
                after_seconds: 30
            })
        );
    }

    #[test]
    fn block_traffic_before_is_the_longest_delay_after_is_the_profile() {
        let profile = FastProfile {
            deregistration_delay_seconds: 45,
            ..FastProfile::default()
        };
        let p = predict_block_traffic(
            &[
                snap("a", hc(30, 5, 5, 2), 120),
                seed(),
                snap("c", hc(10, 5, 3, 2), 0),
            ],
            &profile,
        );
        assert_eq!(p.before_seconds, 300);
        assert_eq!(p.after_seconds, 45);
        // Nothing tuned: the profile's delay on both sides.
        let none = predict_block_traffic(&[], &profile);
        assert_eq!((none.before_seconds, none.after_seconds), (45, 45));
        // A delay already below the profile's is still set to the profile's
        // (plan_tune writes the profile value), so `after` is the profile's.
        let low = predict_block_traffic(&[snap("d", hc(10, 5, 3, 2), 5)], &profile);
        assert_eq!((low.before_seconds, low.after_seconds), (5, 45));
    }

    #[test]
    fn tuning_result_without_block_prediction_still_parses() {
        // State written before predictedBlockTraffic existed.
        let json =
            r#"{"snapshots":[],"predictedAllowTraffic":{"beforeSeconds":15,"afterSeconds":15}}"#;
        let r: TuningResult = serde_json::from_str(json).unwrap();
        assert_eq!(r.predicted_block_traffic, None);
    }

    // ---- tag ---------------------------------------------------------------

    #[test]
    fn tag_encoding_is_compact_and_readable() {
        assert_eq!(
            encode_snapshot_tag(&seed()),
            "v1 interval=30 timeout=5 healthy=10 unhealthy=2 deregistration=300"
        );
    }

    #[test]
    fn tag_round_trips() {
        for s in [
            seed(),
            snap(ARN, hc(5, 2, 2, 2), 0),
            snap(ARN, hc(300, 120, 10, 10), 3600),
        ] {
            let v = encode_snapshot_tag(&s);
            assert_eq!(decode_snapshot_tag(ARN, &v), Ok(s));
        }
    }

    #[test]
    fn tag_decoding_uses_the_given_arn() {
        let v = encode_snapshot_tag(&snap("other", hc(30, 5, 5, 2), 300));
        assert_eq!(decode_snapshot_tag(ARN, &v).unwrap().target_group_arn, ARN);
    }

    #[test]
    fn tag_fits_elbv2_limits_even_at_u32_max() {
        let s = snap(ARN, hc(u32::MAX, u32::MAX, u32::MAX, u32::MAX), u32::MAX);
        let v = encode_snapshot_tag(&s);
        assert!(v.len() <= MAX_TAG_VALUE_CHARS, "{} chars", v.len());
        // ELBv2 tag value pattern: letters, digits, spaces and _.:/=+-@ only.
        assert!(v
            .chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c)));
    }

    fn assert_corrupt(value: &str, needle: &str) {
        let err = decode_snapshot_tag(ARN, value).expect_err(value);
        assert_eq!(err.value, value);
        assert!(
            err.problem.contains(needle),
            "{value:?}: problem {:?} should contain {needle:?}",
            err.problem
        );
        let msg = err.to_string();
        assert!(msg.contains("greenlight:snapshot"), "{msg}");
        assert!(msg.contains("corrupt"), "{msg}");
    }

    #[test]
    fn tag_decoding_rejects_empty_and_unknown_versions() {
        assert_corrupt("", "unknown version");
        assert_corrupt(
            "v2 interval=30 timeout=5 healthy=10 unhealthy=2 deregistration=300",
            "unknown version",
        );
        assert_corrupt("interval=30 timeout=5", "unknown version");
    }

    #[test]
    fn tag_decoding_rejects_missing_fields() {
        assert_corrupt("v1", "\"interval\" is missing");
        assert_corrupt(
            "v1 interval=30 timeout=5 healthy=10 unhealthy=2",
            "\"deregistration\" is missing",
        );
    }

    #[test]
    fn tag_decoding_rejects_extra_reordered_and_repeated_fields() {
        assert_corrupt(
            "v1 interval=30 timeout=5 healthy=10 unhealthy=2 deregistration=300 x=1",
            "trailing",
        );
        assert_corrupt(
            "v1 interval=30 timeout=5 healthy=10 unhealthy=2 deregistration=300 ",
            "trailing",
        );
        assert_corrupt(
            "v1 timeout=5 interval=30 healthy=10 unhealthy=2 deregistration=300",
            "expected field \"interval\"",
        );
        assert_corrupt(
            "v1 interval=30 interval=30 healthy=10 unhealthy=2 deregistration=300",
            "expected field \"timeout\"",
        );
        assert_corrupt(
            "v1  interval=30 timeout=5 healthy=10 unhealthy=2 deregistration=300",
            "not name=number",
        );
    }

    #[test]
    fn tag_decoding_rejects_non_canonical_numbers() {
        for bad in ["", "-1", "+5", "030", "3.0", "x", "99999999999", " 30"] {
            let v =
                format!("v1 interval={bad} timeout=5 healthy=10 unhealthy=2 deregistration=300");
            if bad.starts_with(' ') {
                assert_corrupt(&v, "not a whole number");
            } else {
                assert_corrupt(&v, "interval=");
            }
        }
        assert_corrupt(
            "v1 interval=30 timeout=5 healthy=10 unhealthy=2 deregistration=0300",
            "not a whole number",
        );
    }

    #[test]
    fn tag_decoding_accepts_zero_deregistration() {
        let v = "v1 interval=30 timeout=5 healthy=10 unhealthy=2 deregistration=0";
        assert_eq!(
            decode_snapshot_tag(ARN, v)
                .unwrap()
                .deregistration_delay_seconds,
            0
        );
    }

    #[test]
    fn tag_decoding_rejects_values_elbv2_would_refuse() {
        assert_corrupt(
            "v1 interval=4 timeout=2 healthy=10 unhealthy=2 deregistration=300",
            "interval=4 is outside",
        );
        assert_corrupt(
            "v1 interval=30 timeout=1 healthy=10 unhealthy=2 deregistration=300",
            "timeout=1 is outside",
        );
        assert_corrupt(
            "v1 interval=30 timeout=5 healthy=11 unhealthy=2 deregistration=300",
            "healthy=11 is outside",
        );
        assert_corrupt(
            "v1 interval=30 timeout=5 healthy=10 unhealthy=1 deregistration=300",
            "unhealthy=1 is outside",
        );
        assert_corrupt(
            "v1 interval=30 timeout=5 healthy=10 unhealthy=2 deregistration=3601",
            "deregistration=3601 is outside",
        );
    }

    #[test]
    fn tag_decoding_rejects_over_long_values() {
        let v = format!("v1 {}", "x".repeat(300));
        assert_corrupt(&v, "longer than 256");
    }

    // ---- tune plan ---------------------------------------------------------

    #[test]
    fn first_tune_snapshots_current_and_writes_tag() {
        let plan = plan_tune(&seed(), None, &FastProfile::default());
        assert_eq!(plan.keep, seed());
        assert_eq!(
            plan.tag_value.as_deref(),
            Some("v1 interval=30 timeout=5 healthy=10 unhealthy=2 deregistration=300")
        );
        assert_eq!(
            plan.changes,
            Changes {
                health_check: Some(hc(5, 2, 2, 2)),
                deregistration_delay_seconds: Some(30),
            }
        );
    }

    #[test]
    fn repeated_tune_keeps_the_recorded_original_and_writes_no_tag() {
        let tuned_now = snap(ARN, hc(5, 2, 2, 2), 30);
        let recorded = snap("ignored", hc(30, 5, 10, 2), 300);
        let plan = plan_tune(&tuned_now, Some(&recorded), &FastProfile::default());
        assert_eq!(plan.keep, seed());
        assert_eq!(plan.tag_value, None);
        assert!(plan.changes.is_empty());
    }

    #[test]
    fn tune_with_tag_but_drifted_settings_reapplies_profile() {
        // Someone changed the interval by hand after the first tune.
        let current = snap(ARN, hc(10, 2, 2, 2), 30);
        let plan = plan_tune(&current, Some(&seed()), &FastProfile::default());
        assert_eq!(plan.keep, seed());
        assert_eq!(plan.tag_value, None);
        assert_eq!(
            plan.changes,
            Changes {
                health_check: Some(hc(5, 2, 2, 2)),
                deregistration_delay_seconds: None,
            }
        );
    }

    #[test]
    fn tune_changes_only_what_differs() {
        let current = snap(ARN, hc(5, 2, 2, 2), 300);
        let plan = plan_tune(&current, None, &FastProfile::default());
        assert_eq!(plan.changes.health_check, None);
        assert_eq!(plan.changes.deregistration_delay_seconds, Some(30));
        let current = snap(ARN, hc(30, 5, 5, 2), 30);
        let plan = plan_tune(&current, None, &FastProfile::default());
        assert_eq!(plan.changes.health_check, Some(hc(5, 2, 2, 2)));
        assert_eq!(plan.changes.deregistration_delay_seconds, None);
    }

    #[test]
    fn tune_of_an_already_fast_group_still_records_a_tag() {
        let current = snap(ARN, hc(5, 2, 2, 2), 30);
        let plan = plan_tune(&current, None, &FastProfile::default());
        assert!(plan.changes.is_empty());
        assert!(plan.tag_value.is_some());
        assert_eq!(plan.keep, current);
    }

    // ---- restore plan ------------------------------------------------------

    #[test]
    fn restore_puts_back_exactly_the_snapshot_and_removes_tag() {
        let current = snap(ARN, hc(5, 2, 2, 2), 30);
        let plan = plan_restore(&current, &seed(), true);
        assert_eq!(
            plan,
            RestorePlan {
                changes: Changes {
                    health_check: Some(hc(30, 5, 10, 2)),
                    deregistration_delay_seconds: Some(300),
                },
                remove_tag: true,
            }
        );
        assert!(!plan.is_noop());
    }

    #[test]
    fn restore_of_restored_group_is_noop() {
        let plan = plan_restore(&seed(), &seed(), false);
        assert!(plan.is_noop());
        assert!(plan.changes.is_empty());
    }

    #[test]
    fn restore_with_equal_settings_but_tag_left_removes_only_the_tag() {
        let plan = plan_restore(&seed(), &seed(), true);
        assert!(plan.changes.is_empty());
        assert!(plan.remove_tag);
        assert!(!plan.is_noop());
    }

    #[test]
    fn restore_changes_only_what_differs() {
        let current = snap(ARN, hc(30, 5, 10, 2), 30);
        let plan = plan_restore(&current, &seed(), false);
        assert_eq!(plan.changes.health_check, None);
        assert_eq!(plan.changes.deregistration_delay_seconds, Some(300));
    }

    #[test]
    fn restore_source_prefers_state() {
        let r = tuning_result(vec![], &FastProfile::default());
        assert_eq!(restore_source(Some(&r)), RestoreSource::State);
        assert_eq!(restore_source(None), RestoreSource::Tags);
    }

    #[test]
    fn restore_report_json_shape() {
        let report = RestoreReport {
            source: RestoreSource::Tags,
            restored: vec![ARN.to_string()],
            skipped: vec![SkippedTargetGroup {
                target_group_arn: "b".into(),
                reason: SkipReason::NotTuned,
            }],
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "source": "tags",
                "restored": [ARN],
                "skipped": [{"targetGroupArn": "b", "reason": "notTuned"}]
            })
        );
    }

    #[test]
    fn changes_json_omits_unchanged_parts() {
        let c = Changes {
            health_check: None,
            deregistration_delay_seconds: Some(30),
        };
        assert_eq!(
            serde_json::to_value(c).unwrap(),
            serde_json::json!({"deregistrationDelaySeconds": 30})
        );
    }
}
