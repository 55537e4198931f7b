//! Minimum healthy hosts: how many instances one step of a deployment may
//! touch at once, and whether a deployment with failed instances succeeds.
//! Pure functions over counts, so every rule is unit tested.
//!
//! Sources (CodeDeploy API reference, `MinimumHealthyHosts`; user guide,
//! "Working with deployment configurations" and "CodeDeploy instance health"):
//! - HOST_COUNT k: "In an example of nine instances, if a HOST_COUNT of six is
//!   specified, deploy to up to three instances at a time. The deployment is
//!   successful if six or more instances are deployed to successfully."
//! - FLEET_PERCENT p: "If a FLEET_PERCENT of 40 is specified, deploy to up to
//!   five instances at a time. The deployment is successful if four or more
//!   instances are deployed to successfully" (the healthy count is rounded up).
//! - CodeDeployDefault.OneAtATime answers GetDeploymentConfig with type
//!   MOST_CONCURRENCY, value 1: one instance at a time, "all instances but one
//!   are kept in a healthy state ... if the deployment to the last instance
//!   fails, the overall deployment is still successful".
//! - CodeDeployDefault.AllAtOnce (HOST_COUNT 0): "succeeds if the application
//!   revision is deployed to at least one instance"; HalfAtATime
//!   (FLEET_PERCENT 50): "up to half of the instances at a time (with
//!   fractions rounded down)", succeeds with at least half (rounded up).
//! - Blue/green: the replacement environment follows the same rules as an
//!   in-place deployment; traffic is rerouted in batches of the same size,
//!   with the same success rule.
//!
//! Not documented, harsher reading taken: a fleet of one instance never
//! succeeds with its only instance failed (OneAtATime's "last instance" rule
//! needs another instance that succeeded), and every deployment needs at
//! least one instance that succeeded.

/// A deployment configuration's `minimumHealthyHosts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinimumHealthy {
    /// CodeDeployDefault.OneAtATime.
    MostConcurrency,
    HostCount(u32),
    FleetPercent(u32),
}

impl MinimumHealthy {
    pub fn kind(self) -> &'static str {
        match self {
            Self::MostConcurrency => "MOST_CONCURRENCY",
            Self::HostCount(_) => "HOST_COUNT",
            Self::FleetPercent(_) => "FLEET_PERCENT",
        }
    }

    pub fn value(self) -> u32 {
        match self {
            Self::MostConcurrency => 1,
            Self::HostCount(v) | Self::FleetPercent(v) => v,
        }
    }

    /// Instances that must stay healthy (and, at the end, have succeeded).
    pub fn required(self, fleet: usize) -> usize {
        let n = fleet as u64;
        let required = match self {
            Self::MostConcurrency => n.saturating_sub(1),
            Self::HostCount(k) => u64::from(k),
            Self::FleetPercent(p) => (n * u64::from(p)).div_ceil(100),
        };
        usize::try_from(required).unwrap_or(usize::MAX).max(1)
    }

    /// How many instances one step may take at once (at least one).
    pub fn batch(self, fleet: usize) -> usize {
        match self {
            Self::MostConcurrency => 1,
            _ => {
                let required = match self {
                    Self::HostCount(k) => k as usize,
                    Self::FleetPercent(p) => (fleet * p as usize).div_ceil(100),
                    Self::MostConcurrency => 0,
                };
                fleet.saturating_sub(required).max(1)
            }
        }
    }

    /// After an instance failed: can the deployment still succeed? `failed`
    /// counts every failure so far, `remaining` the instances not yet tried.
    /// OneAtATime tolerates a failure only on the last instance.
    pub fn can_still_succeed(self, fleet: usize, failed: usize, remaining: usize) -> bool {
        match self {
            Self::MostConcurrency => failed <= 1 && remaining == 0 && fleet > 1,
            _ => fleet.saturating_sub(failed) >= self.required(fleet),
        }
    }

    /// The final verdict for a phase: enough instances succeeded.
    pub fn succeeded(self, fleet: usize, succeeded: usize) -> bool {
        succeeded >= self.required(fleet)
    }
}

/// The three predefined Server configs.
pub fn predefined(name: &str) -> Option<MinimumHealthy> {
    match name {
        "CodeDeployDefault.OneAtATime" => Some(MinimumHealthy::MostConcurrency),
        "CodeDeployDefault.HalfAtATime" => Some(MinimumHealthy::FleetPercent(50)),
        "CodeDeployDefault.AllAtOnce" => Some(MinimumHealthy::HostCount(0)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::MinimumHealthy::*;
    use super::*;

    #[test]
    fn the_api_reference_examples() {
        // Nine instances, HOST_COUNT 6: three at a time, six must succeed.
        assert_eq!(HostCount(6).batch(9), 3);
        assert_eq!(HostCount(6).required(9), 6);
        assert!(HostCount(6).succeeded(9, 6));
        assert!(!HostCount(6).succeeded(9, 5));
        // FLEET_PERCENT 40: five at a time, four must succeed.
        assert_eq!(FleetPercent(40).batch(9), 5);
        assert_eq!(FleetPercent(40).required(9), 4);
    }

    #[test]
    fn predefined_configs() {
        assert_eq!(
            predefined("CodeDeployDefault.OneAtATime"),
            Some(MostConcurrency)
        );
        assert_eq!(predefined("Custom"), None);
        // OneAtATime: one at a time; a failure only on the last instance is tolerated.
        assert_eq!(MostConcurrency.batch(4), 1);
        assert!(!MostConcurrency.can_still_succeed(4, 1, 2));
        assert!(MostConcurrency.can_still_succeed(4, 1, 0));
        assert!(MostConcurrency.succeeded(4, 3));
        assert!(!MostConcurrency.succeeded(4, 2));
        // ...but never with the only instance failed (harsher reading).
        assert!(!MostConcurrency.can_still_succeed(1, 1, 0));
        assert!(!MostConcurrency.succeeded(1, 0));
        // HalfAtATime: half rounded down at a time, half rounded up must succeed.
        let half = predefined("CodeDeployDefault.HalfAtATime").unwrap_or(MostConcurrency);
        assert_eq!(half.batch(5), 2);
        assert_eq!(half.batch(4), 2);
        assert_eq!(half.batch(1), 1);
        assert_eq!(half.required(5), 3);
        assert!(half.can_still_succeed(4, 2, 0));
        assert!(!half.can_still_succeed(4, 3, 0));
        // AllAtOnce: all at once, one success is enough, none is not.
        let all = predefined("CodeDeployDefault.AllAtOnce").unwrap_or(MostConcurrency);
        assert_eq!(all.batch(3), 3);
        assert!(all.succeeded(3, 1));
        assert!(!all.succeeded(3, 0));
        assert!(all.can_still_succeed(3, 2, 0));
        assert!(!all.can_still_succeed(3, 3, 0));
    }

    #[test]
    fn a_config_stricter_than_the_fleet_fails_on_the_first_failure() {
        assert_eq!(HostCount(5).batch(2), 1);
        assert!(!HostCount(5).succeeded(2, 2));
        assert!(!HostCount(2).can_still_succeed(2, 1, 1));
        assert!(FleetPercent(100).required(3) == 3 && FleetPercent(100).batch(3) == 1);
    }

    #[test]
    fn wire_names() {
        assert_eq!(
            (MostConcurrency.kind(), MostConcurrency.value()),
            ("MOST_CONCURRENCY", 1)
        );
        assert_eq!(
            (HostCount(2).kind(), FleetPercent(75).value()),
            ("HOST_COUNT", 75)
        );
    }
}
