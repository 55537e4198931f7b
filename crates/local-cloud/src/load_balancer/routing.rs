//! Listener routing: which target groups a listener (or rule) forwards to,
//! with which weights, and since when.
//!
//! ALB semantics emulated here:
//! - A forward action names one target group (`TargetGroupArn`) or several
//!   with weights (`ForwardConfig.TargetGroups[].Weight`, 0..=999, absent =
//!   1); each request goes to a group in proportion to its weight, and a
//!   group of weight 0 gets no request (ELB guide, "Listener rules for your
//!   Application Load Balancer", forward actions).
//! - A target group is health-checked only while a listener or rule of the
//!   load balancer forwards to it (any weight, 0 included); otherwise its
//!   targets are `unused` with `Target.NotInUse` ("Target group is not
//!   configured to receive traffic from the load balancer", ELB guide,
//!   "Health checks for Application Load Balancer target groups", reason
//!   codes).
//! - A change of a listener's or rule's actions takes effect after a
//!   propagation delay: "Rule updates do not take effect immediately, so
//!   requests could be routed using the previous rule configuration for a
//!   short time after you update a rule" (ELB guide, "Edit a listener rule
//!   for your Application Load Balancer"). AWS gives no figure: the harsher
//!   reading is a non-zero delay, configurable
//!   ([`super::LoadBalancer::set_listener_propagation`]), by default the
//!   registration latency (10 s simulated). A listener or rule seen for the
//!   first time waits the same delay before it routes (and before its target
//!   groups are health checked): AWS documents the delay for updates only,
//!   the harsher reading applies it to creation too; a deleted one stops at
//!   once (its requests fail at once rather than drain: also the harsher
//!   reading). `crate::emulated`, "ALB listener creation".
//! - Rule conditions are not emulated: the served listener routes by its
//!   default actions only; rules count for which groups are attached.

use std::collections::{BTreeMap, VecDeque};

/// One forward as the nodes route it: (target group ARN, weight).
pub type Forward = Vec<(String, u32)>;

/// One change of a listener's or rule's forward (for timelines and tests):
/// when the emulator read it and when it reached the nodes (wall clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteChange {
    pub forward: Forward,
    pub read_at: std::time::SystemTime,
    pub in_force_at: std::time::SystemTime,
}

/// A listener's default actions or a rule's actions, as the nodes see them.
#[derive(Debug, Default)]
pub(super) struct RouteTable {
    pub active: Forward,
    /// Changes read from the configuration, each in force from its instant.
    pending: VecDeque<(Forward, tokio::time::Instant)>,
    next_pick: u64,
    history: Vec<RouteChange>,
}

impl RouteTable {
    fn settle(&mut self, now: tokio::time::Instant) {
        while self.pending.front().is_some_and(|(_, at)| *at <= now) {
            if let Some((forward, _)) = self.pending.pop_front() {
                self.active = forward;
            }
        }
    }

    fn latest(&self) -> &Forward {
        self.pending.back().map_or(&self.active, |(f, _)| f)
    }
}

#[derive(Debug, Default)]
pub(super) struct Routes {
    /// Whether listeners were ever read (from moto, or given by a test).
    /// Until then every target group counts as attached: a driver of the
    /// emulator that knows no listener (the unit tests' rigs) keeps the
    /// health checks it always had.
    known: bool,
    /// By listener ARN (its default actions) or rule ARN.
    tables: BTreeMap<String, RouteTable>,
}

impl Routes {
    /// Takes the configuration just read (every listener and rule with its
    /// forward); changes reach the nodes `delay` (real time) from `now`.
    pub fn update(
        &mut self,
        read: BTreeMap<String, Forward>,
        now: tokio::time::Instant,
        delay: std::time::Duration,
    ) {
        self.known = true;
        self.tables.retain(|key, _| read.contains_key(key));
        for (key, forward) in read {
            // A new listener or rule routes nowhere until its first forward
            // is in force, like any later change.
            let table = self.tables.entry(key).or_default();
            table.settle(now);
            if *table.latest() != forward {
                let read_at = std::time::SystemTime::now();
                table.history.push(RouteChange {
                    forward: forward.clone(),
                    read_at,
                    in_force_at: read_at + delay,
                });
                table.pending.push_back((forward, now + delay));
            }
        }
    }

    /// Whether any listener or rule forwards to the group (any weight) as
    /// the nodes route now.
    pub fn attached(&mut self, target_group_arn: &str, now: tokio::time::Instant) -> bool {
        if !self.known {
            return true;
        }
        self.tables.values_mut().any(|t| {
            t.settle(now);
            t.active.iter().any(|(arn, _)| arn == target_group_arn)
        })
    }

    /// The target group the next request through `listener_arn` goes to:
    /// weighted round robin (a group of weight w gets w of every `sum`
    /// requests, in order); None when the listener is unknown or every
    /// weight is 0.
    pub fn choose(&mut self, listener_arn: &str, now: tokio::time::Instant) -> Option<String> {
        let table = self.tables.get_mut(listener_arn)?;
        table.settle(now);
        let total: u64 = table.active.iter().map(|(_, w)| u64::from(*w)).sum();
        if total == 0 {
            return None;
        }
        let mut slot = table.next_pick % total;
        table.next_pick = table.next_pick.wrapping_add(1);
        for (arn, weight) in &table.active {
            let w = u64::from(*weight);
            if slot < w {
                return Some(arn.clone());
            }
            slot -= w;
        }
        None
    }

    /// Every change of a listener's or rule's forward since it was first read.
    pub fn history(&self, key: &str) -> Vec<RouteChange> {
        self.tables
            .get(key)
            .map(|t| t.history.clone())
            .unwrap_or_default()
    }

    /// The forward a listener or rule routes by now (for tests and the live page).
    pub fn active(&mut self, key: &str, now: tokio::time::Instant) -> Option<Forward> {
        let table = self.tables.get_mut(key)?;
        table.settle(now);
        Some(table.active.clone())
    }
}

/// The forward of one ELBv2 action list: the first `forward` action's
/// target groups with weights (absent weight = 1; a plain `TargetGroupArn`
/// = weight 1). Other action types forward nowhere.
pub fn forward_of(actions: &[aws_sdk_elasticloadbalancingv2::types::Action]) -> Forward {
    let mut sorted: Vec<&aws_sdk_elasticloadbalancingv2::types::Action> = actions.iter().collect();
    sorted.sort_by_key(|a| a.order().unwrap_or(i32::MAX));
    for a in sorted {
        if a.r#type().map(|t| t.as_str()) != Some("forward") {
            continue;
        }
        let groups: Forward = a
            .forward_config()
            .map(|f| {
                f.target_groups()
                    .iter()
                    .filter_map(|g| {
                        let weight = u32::try_from(g.weight().unwrap_or(1)).unwrap_or(0);
                        Some((g.target_group_arn()?.to_string(), weight))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !groups.is_empty() {
            return groups;
        }
        if let Some(arn) = a.target_group_arn() {
            return vec![(arn.to_string(), 1)];
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn fw(pairs: &[(&str, u32)]) -> Forward {
        pairs.iter().map(|(a, w)| (a.to_string(), *w)).collect()
    }

    #[test]
    fn a_change_is_in_force_only_after_the_delay_and_in_order() {
        let mut routes = Routes::default();
        let t0 = tokio::time::Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let delay = Duration::from_secs(10);
        routes.update(
            BTreeMap::from([("l".into(), fw(&[("main", 1)]))]),
            t0,
            delay,
        );
        // A new listener waits the delay too ("ALB listener creation").
        assert_eq!(routes.active("l", t0), Some(Vec::new()));
        assert_eq!(routes.choose("l", at(9)), None);
        assert!(!routes.attached("main", at(9)));
        assert_eq!(routes.active("l", at(10)), Some(fw(&[("main", 1)])));
        assert!(routes.attached("main", at(10)));
        assert!(!routes.attached("standby", at(10)));
        routes.update(
            BTreeMap::from([("l".into(), fw(&[("main", 1), ("standby", 0)]))]),
            at(10),
            delay,
        );
        routes.update(
            BTreeMap::from([("l".into(), fw(&[("main", 0), ("standby", 1)]))]),
            at(15),
            delay,
        );
        assert_eq!(routes.choose("l", at(19)), Some("main".into()));
        assert!(!routes.attached("standby", at(19)));
        // First change in force at 20 s: standby attached, weight 0 gets nothing.
        assert!(routes.attached("standby", at(20)));
        for _ in 0..5 {
            assert_eq!(routes.choose("l", at(20)), Some("main".into()));
        }
        // Second change at 25 s: all on standby.
        for _ in 0..5 {
            assert_eq!(routes.choose("l", at(25)), Some("standby".into()));
        }
        // The same configuration read again is no change.
        routes.update(
            BTreeMap::from([("l".into(), fw(&[("main", 0), ("standby", 1)]))]),
            at(25),
            delay,
        );
        assert_eq!(routes.choose("l", at(25)), Some("standby".into()));
        assert_eq!(routes.history("l").len(), 3, "creation, arm, switch");
    }

    #[test]
    fn weights_split_requests_in_proportion() {
        let mut routes = Routes::default();
        let now = tokio::time::Instant::now();
        routes.update(
            BTreeMap::from([("l".into(), fw(&[("a", 3), ("b", 1)]))]),
            now,
            Duration::ZERO,
        );
        let picks: Vec<String> = (0..8).filter_map(|_| routes.choose("l", now)).collect();
        assert_eq!(picks.iter().filter(|p| *p == "a").count(), 6);
        assert_eq!(picks.iter().filter(|p| *p == "b").count(), 2);
        routes.update(
            BTreeMap::from([("l".into(), fw(&[("a", 0), ("b", 0)]))]),
            now,
            Duration::ZERO,
        );
        assert_eq!(routes.choose("l", now), None, "all weights 0: nowhere");
        assert_eq!(routes.choose("unknown", now), None);
    }

    #[test]
    fn without_known_listeners_every_group_is_attached_and_a_removed_listener_detaches() {
        let mut routes = Routes::default();
        let now = tokio::time::Instant::now();
        assert!(routes.attached("anything", now));
        routes.update(
            BTreeMap::from([("rule".into(), fw(&[("tg", 1)]))]),
            now,
            Duration::ZERO,
        );
        assert!(routes.attached("tg", now));
        routes.update(BTreeMap::new(), now, Duration::ZERO);
        assert!(!routes.attached("tg", now));
    }

    #[test]
    fn forward_of_reads_both_forms() {
        use aws_sdk_elasticloadbalancingv2::types::{
            Action, ActionTypeEnum, ForwardActionConfig, TargetGroupTuple,
        };
        let plain = Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn("main")
            .build();
        assert_eq!(forward_of(&[plain]), fw(&[("main", 1)]));
        let weighted = Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(
                ForwardActionConfig::builder()
                    .target_groups(
                        TargetGroupTuple::builder()
                            .target_group_arn("main")
                            .weight(0)
                            .build(),
                    )
                    .target_groups(
                        TargetGroupTuple::builder()
                            .target_group_arn("standby")
                            .build(),
                    )
                    .build(),
            )
            .build();
        assert_eq!(forward_of(&[weighted]), fw(&[("main", 0), ("standby", 1)]));
        let redirect = Action::builder().r#type(ActionTypeEnum::Redirect).build();
        assert_eq!(forward_of(&[redirect]), Vec::new());
    }
}
