//! `greenlight plan --standby-target-group NAME`: the check that the target
//! group a group's bake names as `standbyTargetGroup` (issue 10, "blue kept
//! warm", [`crate::bake::standby`]) exists and can stand in for the
//! deployment's target group, each problem with the exact fix.
//!
//! Why each property must match the deployment's (main) target group:
//! * protocol, port, target type: blue is registered in the standby on the
//!   main group's port, and after a failed bake the listener forwards all
//!   traffic there; a different protocol or port would not reach blue's
//!   application the way main did. These cannot be changed on an existing
//!   target group (ModifyTargetGroup has no such parameters), so the fix
//!   creates it again.
//! * VPC: a target group only takes instances of its own VPC.
//! * what the health check asks (enabled, protocol, port, path, matcher):
//!   "blue is healthy in the standby" must mean what "healthy in main"
//!   means; fixed with ModifyTargetGroup. Its timing (interval, timeout,
//!   thresholds) may differ and is only reported: a standby faster than
//!   main is a good choice (blue must turn healthy there within the bake,
//!   [`crate::bake::standby::decide_switch`]; the demo's standby uses the
//!   tuner's fast profile while main keeps the seed's slow one).
//! * nothing forwards to it yet: at the bake's first look greenlight weights
//!   every route to main `{main: 1, standby: 0}` and refuses a route that
//!   already names the standby (a switch left over from an earlier failure,
//!   [`crate::bake::standby::plan_arm`]).
//!
//! Its `greenlight:application` tag is not required (template.yaml's
//! RegisterTargets / DeregisterTargets statements are not tag-scoped); the
//! create command tags it like the deployment's target group all the same.
//!
//! Pure: the CLI reads both groups (DescribeTargetGroups, DescribeTags) and
//! passes what it read.

use crate::plan::{Check, CheckStatus, APPLICATION_TAG_KEY};

/// A target group's health check as DescribeTargetGroups answers it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthCheckShape {
    /// `HealthCheckEnabled`.
    pub enabled: Option<bool>,
    /// `HealthCheckProtocol`: HTTP | HTTPS.
    pub protocol: Option<String>,
    /// `HealthCheckPort`: a port number or `traffic-port`.
    pub port: Option<String>,
    /// `HealthCheckPath`.
    pub path: Option<String>,
    /// `Matcher.HttpCode`, e.g. `200` or `200-299`.
    pub matcher: Option<String>,
    pub interval_seconds: Option<i32>,
    pub timeout_seconds: Option<i32>,
    pub healthy_threshold: Option<i32>,
    pub unhealthy_threshold: Option<i32>,
}

/// What `plan` compares of a target group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetGroupShape {
    pub name: String,
    pub arn: String,
    /// `Protocol`: HTTP | HTTPS (...).
    pub protocol: Option<String>,
    pub port: Option<i32>,
    pub vpc_id: Option<String>,
    /// `TargetType`: instance | ip | lambda | alb.
    pub target_type: Option<String>,
    /// `LoadBalancerArns`: the load balancers whose listeners or rules forward to it.
    pub load_balancer_arns: Vec<String>,
    pub health_check: HealthCheckShape,
}

/// The deployment group's own (main) target group, as `plan` found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MainTargetGroup {
    One(Box<TargetGroupShape>),
    /// The group names `count` target groups: the standby supports exactly one.
    NotOne {
        count: usize,
    },
    /// It could not be read (`detail`).
    Unreadable {
        detail: String,
    },
}

/// The name of the check in `plan`'s report.
pub const CHECK_NAME: &str = "standby target group";

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "(none)".to_string(), |v| v.to_string())
}

/// The `aws elbv2 create-target-group` command that creates `name` as a
/// standby of `main` (same protocol, port, VPC, target type, health check),
/// tagged for `application`.
pub fn create_command(application: &str, name: &str, main: &TargetGroupShape) -> String {
    let mut c = format!("aws elbv2 create-target-group --name {name}");
    if let Some(p) = &main.protocol {
        c.push_str(&format!(" --protocol {p}"));
    }
    if let Some(p) = main.port {
        c.push_str(&format!(" --port {p}"));
    }
    if let Some(v) = &main.vpc_id {
        c.push_str(&format!(" --vpc-id {v}"));
    }
    if let Some(t) = &main.target_type {
        c.push_str(&format!(" --target-type {t}"));
    }
    c.push_str(&health_check_arguments(&main.health_check));
    c.push_str(&format!(
        " --tags Key={APPLICATION_TAG_KEY},Value={application}"
    ));
    c
}

/// The health-check arguments (create-target-group and modify-target-group
/// take the same ones) that set `hc`.
fn health_check_arguments(hc: &HealthCheckShape) -> String {
    let mut c = String::new();
    if let Some(e) = hc.enabled {
        c.push_str(if e {
            " --health-check-enabled"
        } else {
            " --no-health-check-enabled"
        });
    }
    if let Some(p) = &hc.protocol {
        c.push_str(&format!(" --health-check-protocol {p}"));
    }
    if let Some(p) = &hc.port {
        c.push_str(&format!(" --health-check-port {p}"));
    }
    if let Some(p) = &hc.path {
        c.push_str(&format!(" --health-check-path {p}"));
    }
    if let Some(m) = &hc.matcher {
        c.push_str(&format!(" --matcher HttpCode={m}"));
    }
    if let Some(v) = hc.interval_seconds {
        c.push_str(&format!(" --health-check-interval-seconds {v}"));
    }
    if let Some(v) = hc.timeout_seconds {
        c.push_str(&format!(" --health-check-timeout-seconds {v}"));
    }
    if let Some(v) = hc.healthy_threshold {
        c.push_str(&format!(" --healthy-threshold-count {v}"));
    }
    if let Some(v) = hc.unhealthy_threshold {
        c.push_str(&format!(" --unhealthy-threshold-count {v}"));
    }
    c
}

/// The health-check arguments that set what `hc` asks (not its timing).
fn health_check_what_arguments(hc: &HealthCheckShape) -> String {
    health_check_arguments(&HealthCheckShape {
        interval_seconds: None,
        timeout_seconds: None,
        healthy_threshold: None,
        unhealthy_threshold: None,
        ..hc.clone()
    })
}

/// Seconds from registration to healthy: (healthy threshold × interval) +
/// interval (the first check comes one interval after registration).
fn seconds_to_healthy(hc: &HealthCheckShape) -> Option<i64> {
    let interval = i64::from(hc.interval_seconds?);
    Some(i64::from(hc.healthy_threshold?) * interval + interval)
}

/// The fields of what `standby`'s health check asks that differ from
/// `main`'s, as `field standby (main: x)`.
fn health_check_differences(main: &HealthCheckShape, standby: &HealthCheckShape) -> Vec<String> {
    let mut d = Vec::new();
    let mut cmp = |field: &str, a: String, b: String| {
        if a != b {
            d.push(format!("{field} {b} (main: {a})"));
        }
    };
    cmp(
        "HealthCheckEnabled",
        opt(&main.enabled),
        opt(&standby.enabled),
    );
    cmp(
        "HealthCheckProtocol",
        opt(&main.protocol),
        opt(&standby.protocol),
    );
    cmp("HealthCheckPort", opt(&main.port), opt(&standby.port));
    cmp("HealthCheckPath", opt(&main.path), opt(&standby.path));
    cmp(
        "Matcher.HttpCode",
        opt(&main.matcher),
        opt(&standby.matcher),
    );
    d
}

/// Checks the standby target group `standby_name` (as read: `Err` = not
/// found or unreadable, with why) against the deployment's target group.
pub fn standby_check(
    application: &str,
    standby_name: &str,
    main: &MainTargetGroup,
    standby: Result<&TargetGroupShape, &str>,
) -> Check {
    let main = match main {
        MainTargetGroup::One(m) => m,
        MainTargetGroup::NotOne { count } => {
            return Check {
                name: CHECK_NAME,
                status: CheckStatus::Fail,
                detail: format!(
                    "the deployment group names {count} target groups; a standby ({standby_name}) stands in for exactly one, so the bake would run without it"
                ),
                fix: Some(
                    "remove standbyTargetGroup from the group's BakeConfig entry, or give the deployment group exactly one target group".to_string(),
                ),
            }
        }
        MainTargetGroup::Unreadable { detail } => {
            return Check {
                name: CHECK_NAME,
                status: CheckStatus::Unknown,
                detail: format!(
                    "the deployment's target group could not be read ({detail}), so the standby {standby_name} was not compared with it"
                ),
                fix: Some("fix the target group check above first".to_string()),
            }
        }
    };
    let standby = match standby {
        Ok(s) => s,
        Err(detail) => {
            return Check {
                name: CHECK_NAME,
                status: CheckStatus::Fail,
                detail: format!("the standby target group {standby_name} was not found ({detail})"),
                fix: Some(format!(
                    "create it like {} (or with the CloudFormation snippet in the README, \"Blue kept warm\"): {}",
                    main.name,
                    create_command(application, standby_name, main)
                )),
            }
        }
    };
    if standby.arn == main.arn || standby.name == main.name {
        return Check {
            name: CHECK_NAME,
            status: CheckStatus::Fail,
            detail: format!(
                "standbyTargetGroup {standby_name} is the deployment's own target group"
            ),
            fix: Some(format!(
                "create a separate target group and name it in BakeConfig's standbyTargetGroup: {}",
                create_command(application, &format!("{}-standby", main.name), main)
            )),
        };
    }
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    let mut fixed_for_good = Vec::new();
    let mut cmp = |field: &str, a: String, b: String| {
        if a != b {
            fixed_for_good.push(format!("{field} {b} (main: {a})"));
        }
    };
    cmp("Protocol", opt(&main.protocol), opt(&standby.protocol));
    cmp("Port", opt(&main.port), opt(&standby.port));
    cmp("VpcId", opt(&main.vpc_id), opt(&standby.vpc_id));
    cmp(
        "TargetType",
        opt(&main.target_type),
        opt(&standby.target_type),
    );
    let recreate = !fixed_for_good.is_empty();
    if recreate {
        problems.push(format!(
            "{} (these cannot be changed on an existing target group)",
            fixed_for_good.join(", ")
        ));
        fixes.push(format!(
            "aws elbv2 delete-target-group --target-group-arn {} && {}",
            standby.arn,
            create_command(application, standby_name, main)
        ));
    }
    let health = health_check_differences(&main.health_check, &standby.health_check);
    if !health.is_empty() {
        problems.push(format!("health check differs: {}", health.join(", ")));
        if !recreate {
            fixes.push(format!(
                "aws elbv2 modify-target-group --target-group-arn {}{}",
                standby.arn,
                health_check_what_arguments(&main.health_check)
            ));
        }
    }
    if !standby.load_balancer_arns.is_empty() {
        problems.push(format!(
            "a listener or rule of {} already forwards to it (a switch to the standby not put back?), so the bake would not arm it",
            standby.load_balancer_arns.join(", ")
        ));
        fixes.insert(0, format!(
            "put back the listener or rule that forwards to {} (the LISTENER NOT PUT BACK commands of the last failure report, or aws elbv2 describe-listeners / describe-rules to find it) so that nothing forwards to it",
            standby.arn
        ));
    }
    if problems.is_empty() {
        Check {
            name: CHECK_NAME,
            status: CheckStatus::Pass,
            detail: format!(
                "{standby_name} matches {}: {} port {} in {}, target type {}, the same health check ({} {} on port {}, matcher {}; blue turns healthy there {} s after registration, main {} s), nothing forwards to it yet",
                main.name,
                opt(&main.protocol),
                opt(&main.port),
                opt(&main.vpc_id),
                opt(&main.target_type),
                opt(&main.health_check.protocol),
                opt(&main.health_check.path),
                opt(&main.health_check.port),
                opt(&main.health_check.matcher),
                opt(&seconds_to_healthy(&standby.health_check)),
                opt(&seconds_to_healthy(&main.health_check)),
            ),
            fix: None,
        }
    } else {
        Check {
            name: CHECK_NAME,
            status: CheckStatus::Fail,
            detail: format!(
                "the standby {standby_name} cannot stand in for {}: {}",
                main.name,
                problems.join("; ")
            ),
            fix: Some(fixes.join("; then ")),
        }
    }
}

#[cfg(test)]
#[path = "standby_plan_tests.rs"]
mod tests;
