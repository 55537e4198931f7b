//! Many deployment groups in one local cloud (`bench/scale`, issue 12 item 5).
//!
//! The demo group is group 0, unchanged. [`Options::extra_groups`]
//! (crate::cloud::Options) adds groups 1..N-1 to the demo's CodeDeploy
//! application, each with its own blue Auto Scaling group, application load
//! balancer, listener (port 80) and target group, and instances on their own
//! loopback addresses (the fleet hands out one per instance). An upload under
//! `<artifact_prefix><group>/` deploys to that group (a `KEY_MAPPING` entry
//! per extra group; the demo's `<artifact_prefix><APP>/` convention is untouched).
//!
//! Pure parts, tested here: the per-group names, the `KEY_MAPPING` value,
//! which groups an API call or a state's data names (the cross-group check
//! over the request log and the execution histories), and the check of a
//! group's end state against its own deployment.

use std::collections::{BTreeMap, BTreeSet};

pub mod provision;
pub mod run;

/// At most this many groups (the demo's and 998 extra): keeps the
/// three-digit index in every name, so no group's name contains another's.
pub const MAX_GROUPS: usize = 999;

/// The names of extra group `index` (1..[`MAX_GROUPS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupNames {
    pub index: usize,
    pub deployment_group: String,
    /// Elastic Load Balancing names: at most 32 characters.
    pub target_group: String,
    pub load_balancer: String,
    pub blue_asg: String,
    /// Uploads under this key prefix deploy to the group.
    pub key_prefix: String,
}

impl GroupNames {
    pub fn new(index: usize, artifact_prefix: &str) -> Self {
        let deployment_group = format!("greenlight-scale-{index:03}");
        Self {
            index,
            key_prefix: format!("{artifact_prefix}{deployment_group}/"),
            deployment_group,
            target_group: format!("gl-scale-{index:03}-tg"),
            load_balancer: format!("gl-scale-{index:03}-alb"),
            blue_asg: format!("gl-scale-{index:03}-blue"),
        }
    }

    /// The names that are this group's alone, as they appear in API calls:
    /// the deployment group (also in CodeDeploy's green Auto Scaling group
    /// `CodeDeploy_<group>_<deployment>`), the target group, the load
    /// balancer (in its listeners' ARNs), the blue Auto Scaling group and
    /// the key prefix.
    pub fn tokens(&self) -> Vec<String> {
        vec![
            self.deployment_group.clone(),
            self.target_group.clone(),
            self.load_balancer.clone(),
            self.blue_asg.clone(),
            self.key_prefix.clone(),
        ]
    }
}

/// The demo group's names (group 0), as [`GroupNames::tokens`] gives an
/// extra group's, with its standby target group.
pub fn demo_tokens(names: &crate::provision::DemoNames) -> Vec<String> {
    vec![
        names.deployment_group.clone(),
        names.target_group.clone(),
        names.standby_target_group.clone(),
        names.load_balancer.clone(),
        names.blue_asg.clone(),
        format!("{}{}/", names.artifact_prefix, names.application),
    ]
}

/// The extra groups of a cloud with `groups` groups in all (the demo's is
/// group 0): 1..groups.
pub fn extra_groups(groups: usize, artifact_prefix: &str) -> Result<Vec<GroupNames>, String> {
    if groups == 0 || groups > MAX_GROUPS {
        return Err(format!(
            "{groups} deployment groups: give 1..={MAX_GROUPS} (the demo's group is one of them)"
        ));
    }
    Ok((1..groups)
        .map(|i| GroupNames::new(i, artifact_prefix))
        .collect())
}

/// deploy-trigger's `KEY_MAPPING` for the extra groups (None without any:
/// the demo's configuration is unchanged).
pub fn key_mapping_json(application: &str, extra: &[GroupNames]) -> Option<String> {
    if extra.is_empty() {
        return None;
    }
    let rules: Vec<serde_json::Value> = extra
        .iter()
        .map(|g| {
            serde_json::json!({
                "prefix": g.key_prefix,
                "application": application,
                "deploymentGroup": g.deployment_group,
            })
        })
        .collect();
    Some(serde_json::Value::Array(rules).to_string())
}

/// What identifies one group's resources in API calls and state data:
/// its names and, once known, its instance ids, deployment ids and
/// execution names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupTokens {
    pub group: String,
    pub tokens: BTreeSet<String>,
}

/// The indexes (into `groups`) of the groups whose tokens `text` contains.
pub fn groups_named(text: &str, groups: &[GroupTokens]) -> Vec<usize> {
    groups
        .iter()
        .enumerate()
        .filter(|(_, g)| {
            g.tokens
                .iter()
                .any(|t| !t.is_empty() && text.contains(t.as_str()))
        })
        .map(|(i, _)| i)
        .collect()
}

/// One piece of text attributed to an owner: an API call from the request
/// log (owner unknown: every function signs with the same role), or a state
/// of a group's execution (owner: that group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributed<'a> {
    pub owner: Option<usize>,
    pub what: String,
    pub text: &'a str,
}

/// The cross-group check's result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrossGroupReport {
    /// Texts looked at.
    pub looked_at: usize,
    /// How many named exactly one group, by group.
    pub by_group: BTreeMap<String, usize>,
    /// How many named no group (account-wide calls: ListExecutions,
    /// DescribeTargetHealth of another fleet... or none of the tokens).
    pub unattributed: usize,
    /// Texts naming two groups, or naming a group other than their owner:
    /// `what` and the groups named.
    pub crossings: Vec<(String, Vec<String>)>,
    /// For each crossing (same order), the text around the first token of a
    /// group it should not name ([`excerpt`]), so a report can say what
    /// crossed.
    pub evidence: Vec<String>,
}

/// Characters either side of a foreign token kept as evidence.
pub const EXCERPT_CHARS: usize = 60;

/// `text` around the first occurrence of `token`, `EXCERPT_CHARS` characters
/// either side, with `…` where it was cut.
pub fn excerpt(text: &str, token: &str) -> String {
    let Some(at) = text.find(token) else {
        return String::new();
    };
    let before: String = text[..at]
        .chars()
        .rev()
        .take(EXCERPT_CHARS)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let after: String = text[at + token.len()..]
        .chars()
        .take(EXCERPT_CHARS)
        .collect();
    let cut_before = before.len() < at;
    let cut_after = at + token.len() + after.len() < text.len();
    format!(
        "{}{before}{token}{after}{}",
        if cut_before { "…" } else { "" },
        if cut_after { "…" } else { "" }
    )
}

/// Which group each text names; a text that names more than one group, or
/// (with an owner) any group but its owner, is a crossing.
pub fn cross_group_check(texts: &[Attributed<'_>], groups: &[GroupTokens]) -> CrossGroupReport {
    let mut report = CrossGroupReport {
        looked_at: texts.len(),
        ..CrossGroupReport::default()
    };
    for t in texts {
        let named = groups_named(t.text, groups);
        let foreign = t.owner.is_some_and(|o| named.iter().any(|n| *n != o));
        if named.len() > 1 || foreign {
            report.crossings.push((
                t.what.clone(),
                named.iter().map(|i| groups[*i].group.clone()).collect(),
            ));
            // The first group it should not name: not its owner; without an
            // owner, the second group named.
            let other = named
                .iter()
                .copied()
                .find(|n| t.owner.is_some_and(|o| o != *n))
                .or_else(|| named.get(1).copied());
            let token = other.and_then(|g| {
                groups[g]
                    .tokens
                    .iter()
                    .find(|k| !k.is_empty() && t.text.contains(k.as_str()))
            });
            report
                .evidence
                .push(token.map(|k| excerpt(t.text, k)).unwrap_or_default());
        } else if let Some(only) = named.first() {
            *report
                .by_group
                .entry(groups[*only].group.clone())
                .or_default() += 1;
        } else {
            report.unattributed += 1;
        }
    }
    report
}

/// What one group's deployment should have left, from its own deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub target_group_arn: String,
    /// The deployment's green (replacement) instances.
    pub green: BTreeSet<String>,
    /// The target group's health-check settings before the deployment
    /// (interval, timeout, healthy, unhealthy): greenlight restores them.
    pub settings: [i32; 4],
    /// CodeDeploy's green Auto Scaling group, `CodeDeploy_<group>_<deployment>`.
    pub green_asg: String,
}

/// What the group's resources look like after the run, read from the APIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The target groups the listener's default action forwards to.
    pub listener_forwards_to: Vec<String>,
    /// The instances registered in the target group.
    pub registered: BTreeSet<String>,
    pub settings: [i32; 4],
    /// The Auto Scaling groups that are the group's (its blue one and any
    /// `CodeDeploy_<group>_*`), with their instances.
    pub asgs: BTreeMap<String, BTreeSet<String>>,
}

/// Where the group's end state differs from what its own deployment should
/// have left (empty: as expected).
pub fn end_state_problems(expected: &Expected, observed: &Observed) -> Vec<String> {
    let mut problems = Vec::new();
    if observed.listener_forwards_to != [expected.target_group_arn.clone()] {
        problems.push(format!(
            "the listener forwards to {:?}, not only to its own target group",
            observed.listener_forwards_to
        ));
    }
    if expected.green.is_empty() {
        problems.push("the deployment names no green instance".into());
    }
    if observed.registered != expected.green {
        problems.push(format!(
            "the target group holds {:?}, not the deployment's green instances {:?}",
            observed.registered, expected.green
        ));
    }
    if observed.settings != expected.settings {
        problems.push(format!(
            "the health check is {:?}, not the {:?} it had before (greenlight restores it)",
            observed.settings, expected.settings
        ));
    }
    let mut asgs = observed.asgs.iter();
    match (asgs.next(), asgs.next()) {
        (Some((name, instances)), None)
            if *name == expected.green_asg && *instances == expected.green => {}
        _ => problems.push(format!(
            "the group's Auto Scaling groups are {:?}, not only {} with the green instances",
            observed.asgs, expected.green_asg
        )),
    }
    problems
}

/// The `p`th percentile (nearest rank) of `values`.
pub fn percentile(values: &[i64], p: f64) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// `value ÷ base` as `1.23×`, or `n/a` when either is missing or the base is 0.
pub fn ratio(value: Option<i64>, base: Option<i64>) -> String {
    match (value, base) {
        (Some(v), Some(b)) if b > 0 => format!("{:.2}×", v as f64 / b as f64),
        _ => "n/a".into(),
    }
}

#[cfg(test)]
mod tests;
