//! The local cloud's time scale: every emulated duration (health-check
//! interval and timeout, deregistration delay, lifecycle event work, Ready and
//! termination waits) is multiplied by the scale before it is slept, and every
//! reported duration is divided by it, so reports read in "AWS seconds".

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeScale(f64);

impl TimeScale {
    /// `factor` = real seconds per simulated second (1.0 = real time, 0.05 = 20× faster).
    pub fn new(factor: f64) -> Self {
        let factor = if factor.is_finite() && factor > 0.0 {
            factor
        } else {
            1.0
        };
        Self(factor)
    }

    pub fn factor(self) -> f64 {
        self.0
    }

    /// Real duration to sleep for a simulated one.
    pub fn real(self, simulated: Duration) -> Duration {
        simulated.mul_f64(self.0)
    }

    /// Simulated ("AWS") duration for a measured real one.
    pub fn simulated(self, real: Duration) -> Duration {
        real.div_f64(self.0)
    }

    /// Sleep for a simulated duration.
    pub async fn sleep(self, simulated: Duration) {
        tokio::time::sleep(self.real(simulated)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_both_ways() {
        let scale = TimeScale::new(0.1);
        assert_eq!(scale.real(Duration::from_secs(30)), Duration::from_secs(3));
        assert_eq!(
            scale.simulated(Duration::from_secs(3)),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn rejects_nonsense_factors() {
        assert_eq!(TimeScale::new(0.0).factor(), 1.0);
        assert_eq!(TimeScale::new(-2.0).factor(), 1.0);
        assert_eq!(TimeScale::new(f64::NAN).factor(), 1.0);
    }
}
