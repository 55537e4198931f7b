//! The traffic validator's CodeDeploy lifecycle-hook mode: what to probe
//! for a deployment, by compute platform. Pure decisions; the shell reads
//! CodeDeploy / ELBv2 / EC2 and probes as [`crate::probe`] decides.
//!
//! - `Server` (EC2): the deployment's green instance targets, as in the
//!   state-machine (Ready wait) mode.
//! - `ECS`: the targets registered in the target group of the deployment's
//!   green task set ([`green_task_set`], [`plan_targets`]). Only targets
//!   ELBv2 lists in that target group are probed; never an address from the
//!   hook event.
//! - `Lambda`: nothing to probe over HTTP; the hook is answered `Failed`
//!   with [`NotProbed::LambdaPlatform`]'s plain reason. Anything else (or no
//!   platform at all) fails too.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::model::FleetLabel;

/// How the hook mode validates a deployment, from GetDeployment's `computePlatform`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookPlan {
    /// `Server`: probe the deployment's green EC2 instance targets.
    ProbeInstances,
    /// `ECS`: probe the targets of the green task set's target group.
    ProbeGreenTaskSet,
    /// Nothing that can be probed: report the hook `Failed` with this reason.
    Refuse(NotProbed),
}

/// The plan for a deployment on `compute_platform` (`Server` | `ECS` |
/// `Lambda`, as the API spells them; case is not significant).
pub fn hook_plan(compute_platform: Option<&str>) -> HookPlan {
    let Some(platform) = compute_platform.map(str::trim).filter(|p| !p.is_empty()) else {
        return HookPlan::Refuse(NotProbed::MissingPlatform);
    };
    match platform.to_ascii_lowercase().as_str() {
        "server" => HookPlan::ProbeInstances,
        "ecs" => HookPlan::ProbeGreenTaskSet,
        "lambda" => HookPlan::Refuse(NotProbed::LambdaPlatform),
        _ => HookPlan::Refuse(NotProbed::UnknownPlatform(platform.to_string())),
    }
}

/// The revision label the version check looks for in hook mode, from the
/// S3 key of the deployment's revision (`None` = no S3 revision, no version
/// check). EC2 bundles: the file name without `.zip` (as the deploy trigger
/// names them). ECS: the S3 object is the AppSpec file itself, so its
/// `.yaml` / `.yml` / `.json` extension is dropped too
/// (`appspecs/20240501120000-42.yaml` → `20240501120000-42`).
pub fn revision_label(plan: &HookPlan, s3_key: Option<&str>) -> Option<String> {
    let key = s3_key.map(str::trim).filter(|k| !k.is_empty())?;
    let label = crate::trigger::revision_label(key);
    if *plan != HookPlan::ProbeGreenTaskSet {
        return Some(label);
    }
    let lower = label.to_ascii_lowercase();
    let cut = [".yaml", ".yml", ".json"]
        .iter()
        .find(|ext| lower.ends_with(*ext) && lower.len() > ext.len())
        .map(|ext| label.len() - ext.len());
    Some(match cut {
        Some(end) => label[..end].to_string(),
        None => label,
    })
}

/// One ECS task set of a deployment target (BatchGetDeploymentTargets
/// `ecsTarget.taskSetsInfo[]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskSetView {
    /// `identifer` (sic, the API's spelling).
    pub identifier: Option<String>,
    /// `taskSetLabel`: `Blue` (original) / `Green` (replacement).
    pub label: Option<FleetLabel>,
    /// `targetGroup.name`.
    pub target_group: Option<String>,
}

/// The green task set the hook probes, and its target group's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GreenTaskSet {
    /// The task set's identifier, or `green` when CodeDeploy names none.
    pub task_set: String,
    pub target_group: String,
}

/// The green task set among all task sets of the deployment's ECS targets.
/// Several green entries are fine when they name one target group (the
/// first identifier is reported); green task sets on different target
/// groups, a green task set without a target group, or none at all are
/// refused (the hook fails: there is no one well-defined green fleet).
pub fn green_task_set(task_sets: &[TaskSetView]) -> Result<GreenTaskSet, NotProbed> {
    let green: Vec<&TaskSetView> = task_sets
        .iter()
        .filter(|t| t.label == Some(FleetLabel::Green))
        .collect();
    let Some(first) = green.first() else {
        return Err(NotProbed::NoGreenTaskSet {
            task_sets: task_sets.len(),
        });
    };
    let name = |t: &TaskSetView| {
        t.identifier
            .as_deref()
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .unwrap_or("green")
            .to_string()
    };
    let mut groups: Vec<String> = Vec::new();
    for t in &green {
        match t.target_group.as_deref().map(str::trim) {
            Some(g) if !g.is_empty() => {
                if !groups.iter().any(|known| known == g) {
                    groups.push(g.to_string());
                }
            }
            _ => return Err(NotProbed::NoTargetGroup { task_set: name(t) }),
        }
    }
    if groups.len() > 1 {
        return Err(NotProbed::SeveralGreenTargetGroups {
            target_groups: groups,
        });
    }
    Ok(GreenTaskSet {
        task_set: name(first),
        target_group: groups.remove(0),
    })
}

/// A target group as DescribeTargetGroups describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroupFacts {
    pub name: String,
    pub arn: String,
    /// `TargetType`: `ip` | `instance` | `lambda` | `alb`.
    pub target_type: Option<String>,
    /// The group's traffic port.
    pub port: Option<u16>,
}

/// One target registered in a target group (DescribeTargetHealth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredTarget {
    /// `Target.Id`: an IP address (`ip` groups) or an instance id (`instance` groups).
    pub id: String,
    /// `Target.Port`.
    pub port: Option<u16>,
    /// `TargetHealth.State` (`initial`, `healthy`, `draining`, ...).
    pub state: Option<String>,
}

/// Where a planned target lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetHost {
    /// An IP address (from an `ip` target group's target id).
    Ip(String),
    /// An EC2 instance id: the shell resolves its private IP with DescribeInstances.
    Instance(String),
}

/// One green target to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTarget {
    /// The name in the evidence (`instanceId`): the target id, with
    /// `:port` when several registered targets share the id (tasks on one
    /// instance).
    pub name: String,
    pub host: TargetHost,
    pub port: u16,
}

/// True for a target that is (or will be) serving: every state except
/// `draining` / `unhealthy.draining` (being deregistered, e.g. a task of an
/// earlier deployment on its way out).
pub fn is_serving(target: &RegisteredTarget) -> bool {
    !matches!(
        target
            .state
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("draining") | Some("unhealthy.draining")
    )
}

/// The targets to probe in the green target group `group`: every serving
/// registered target ([`is_serving`]), at its registered port (or
/// `probe_port` when `PROBE_PORT` is set, or the group's port when the
/// target names none). `ip` targets are probed at their id; `instance`
/// targets at the instance's private IP (resolved by the shell). Any other
/// target type, an `ip` target whose id is no IP address, or a target
/// without any port refuses the whole gate.
pub fn plan_targets(
    group: &TargetGroupFacts,
    targets: &[RegisteredTarget],
    probe_port: Option<u16>,
) -> Result<Vec<PlannedTarget>, NotProbed> {
    let kind = group
        .target_type
        .as_deref()
        .map(|t| t.trim().to_ascii_lowercase());
    let by_ip = match kind.as_deref() {
        Some("ip") => true,
        Some("instance") => false,
        _ => {
            return Err(NotProbed::UnsupportedTargetType {
                target_group: group.name.clone(),
                target_type: group.target_type.clone(),
            })
        }
    };
    let serving: Vec<&RegisteredTarget> = targets.iter().filter(|t| is_serving(t)).collect();
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for t in &serving {
        *ids.entry(t.id.trim()).or_default() += 1;
    }
    let mut planned: Vec<PlannedTarget> = Vec::with_capacity(serving.len());
    for t in serving {
        let id = t.id.trim();
        let Some(port) = probe_port.or(t.port).or(group.port).filter(|p| *p != 0) else {
            return Err(NotProbed::NoPort {
                target_group: group.name.clone(),
                target_id: id.to_string(),
            });
        };
        let host = if by_ip {
            match id.parse::<IpAddr>() {
                Ok(ip) => TargetHost::Ip(ip.to_string()),
                Err(_) => {
                    return Err(NotProbed::InvalidTargetAddress {
                        target_group: group.name.clone(),
                        target_id: id.to_string(),
                    })
                }
            }
        } else if id.is_empty() {
            return Err(NotProbed::InvalidTargetAddress {
                target_group: group.name.clone(),
                target_id: id.to_string(),
            });
        } else {
            TargetHost::Instance(id.to_string())
        };
        let name = if ids.get(id).copied().unwrap_or(0) > 1 {
            format!("{id}:{port}")
        } else {
            id.to_string()
        };
        if planned.iter().any(|p| p.name == name) {
            continue; // the same target listed twice
        }
        planned.push(PlannedTarget { name, host, port });
    }
    Ok(planned)
}

/// Why the hook mode probes nothing and answers `Failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotProbed {
    /// A Lambda deployment: no HTTP target exists.
    LambdaPlatform,
    /// GetDeployment named a platform greenlight does not know.
    UnknownPlatform(String),
    /// GetDeployment named no compute platform.
    MissingPlatform,
    /// No ECS task set is labelled Green (`task_sets` = how many there are).
    NoGreenTaskSet { task_sets: usize },
    /// The green task set names no target group.
    NoTargetGroup { task_set: String },
    /// Green task sets on more than one target group.
    SeveralGreenTargetGroups { target_groups: Vec<String> },
    /// The green target group's targets are neither `ip` nor `instance`.
    UnsupportedTargetType {
        target_group: String,
        target_type: Option<String>,
    },
    /// An `ip` target whose id is not an IP address (or an empty id).
    InvalidTargetAddress {
        target_group: String,
        target_id: String,
    },
    /// Neither `PROBE_PORT`, the target nor the target group has a port.
    NoPort {
        target_group: String,
        target_id: String,
    },
}

impl NotProbed {
    /// The hook report's summary sentence.
    pub fn summary(&self, deployment_id: &str) -> String {
        let failed = "the lifecycle hook was reported Failed";
        match self {
            Self::LambdaPlatform => format!(
                "Deployment {deployment_id} is a Lambda deployment: greenlight's gate probes EC2 instances and ECS tasks behind a target group over HTTP, and a Lambda deployment has nothing it can probe, so {failed}. A Lambda deployment should not route this hook to greenlight's traffic validator: remove it from the AppSpec Hooks."
            ),
            Self::UnknownPlatform(platform) => format!(
                "Deployment {deployment_id} runs on compute platform \"{platform}\", which greenlight's gate does not know (it probes EC2 (Server) and ECS deployments), so {failed}."
            ),
            Self::MissingPlatform => format!(
                "Deployment {deployment_id} names no compute platform (GetDeployment has no computePlatform), so greenlight cannot tell what to probe and {failed}."
            ),
            Self::NoGreenTaskSet { task_sets } => format!(
                "ECS deployment {deployment_id} has no task set labelled Green (of {task_sets} task sets listed by BatchGetDeploymentTargets), so there is no green fleet to validate (no green targets) and {failed}."
            ),
            Self::NoTargetGroup { task_set } => format!(
                "The green task set {task_set} of ECS deployment {deployment_id} names no target group, so there are no green targets to probe and {failed}."
            ),
            Self::SeveralGreenTargetGroups { target_groups } => format!(
                "ECS deployment {deployment_id} has green task sets on several target groups ({}), so the green fleet is ambiguous and {failed}.",
                target_groups.join(", ")
            ),
            Self::UnsupportedTargetType {
                target_group,
                target_type,
            } => format!(
                "Target group {target_group} of ECS deployment {deployment_id}'s green task set has target type {}; greenlight probes ip or instance targets over HTTP, so {failed}.",
                target_type.as_deref().unwrap_or("(none)")
            ),
            Self::InvalidTargetAddress {
                target_group,
                target_id,
            } => format!(
                "Target group {target_group} of ECS deployment {deployment_id}'s green task set lists target \"{target_id}\", which is not an address greenlight can probe, so {failed}."
            ),
            Self::NoPort {
                target_group,
                target_id,
            } => format!(
                "Target {target_id} in target group {target_group} of ECS deployment {deployment_id}'s green task set has no port (nor has the group, and PROBE_PORT is unset), so {failed}."
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_platform_has_its_plan() {
        assert_eq!(hook_plan(Some("Server")), HookPlan::ProbeInstances);
        assert_eq!(hook_plan(Some("server")), HookPlan::ProbeInstances);
        assert_eq!(hook_plan(Some("ECS")), HookPlan::ProbeGreenTaskSet);
        assert_eq!(hook_plan(Some(" Ecs ")), HookPlan::ProbeGreenTaskSet);
        assert_eq!(
            hook_plan(Some("Lambda")),
            HookPlan::Refuse(NotProbed::LambdaPlatform)
        );
        assert_eq!(
            hook_plan(Some("Kubernetes")),
            HookPlan::Refuse(NotProbed::UnknownPlatform("Kubernetes".into()))
        );
        assert_eq!(
            hook_plan(None),
            HookPlan::Refuse(NotProbed::MissingPlatform)
        );
        assert_eq!(
            hook_plan(Some("  ")),
            HookPlan::Refuse(NotProbed::MissingPlatform)
        );
    }

    #[test]
    fn revision_labels_by_platform() {
        let ec2 = HookPlan::ProbeInstances;
        let ecs = HookPlan::ProbeGreenTaskSet;
        assert_eq!(
            revision_label(&ec2, Some("artifacts/shop/20240501120000-42.zip")).as_deref(),
            Some("20240501120000-42")
        );
        // EC2 keeps any other extension (the trigger's label rule).
        assert_eq!(
            revision_label(&ec2, Some("a/20240501120000-42.yaml")).as_deref(),
            Some("20240501120000-42.yaml")
        );
        for key in [
            "appspecs/20240501120000-42.yaml",
            "appspecs/20240501120000-42.YML",
            "20240501120000-42.json",
            "x/20240501120000-42.zip",
        ] {
            assert_eq!(
                revision_label(&ecs, Some(key)).as_deref(),
                Some("20240501120000-42"),
                "{key}"
            );
        }
        assert_eq!(
            revision_label(&ecs, Some("a/.yaml")).as_deref(),
            Some(".yaml")
        );
        assert_eq!(revision_label(&ecs, None), None);
        assert_eq!(revision_label(&ec2, Some(" ")), None);
    }

    fn set(id: &str, label: Option<FleetLabel>, tg: Option<&str>) -> TaskSetView {
        TaskSetView {
            identifier: Some(id.into()),
            label,
            target_group: tg.map(str::to_string),
        }
    }

    #[test]
    fn the_green_task_set_and_its_target_group_are_chosen() {
        let sets = [
            set("ecs-svc/blue", Some(FleetLabel::Blue), Some("shop-tg-blue")),
            set(
                "ecs-svc/green",
                Some(FleetLabel::Green),
                Some("shop-tg-green"),
            ),
        ];
        assert_eq!(
            green_task_set(&sets),
            Ok(GreenTaskSet {
                task_set: "ecs-svc/green".into(),
                target_group: "shop-tg-green".into()
            })
        );
        // Order does not matter; a second green entry on the same group is fine.
        let sets = [
            set("g1", Some(FleetLabel::Green), Some("tg-g")),
            set("b", Some(FleetLabel::Blue), Some("tg-b")),
            set("g2", Some(FleetLabel::Green), Some(" tg-g ")),
        ];
        assert_eq!(
            green_task_set(&sets),
            Ok(GreenTaskSet {
                task_set: "g1".into(),
                target_group: "tg-g".into()
            })
        );
        // No identifier: named "green".
        let sets = [TaskSetView {
            identifier: None,
            label: Some(FleetLabel::Green),
            target_group: Some("tg".into()),
        }];
        assert_eq!(green_task_set(&sets).unwrap().task_set, "green");
    }

    #[test]
    fn no_single_green_target_group_is_refused() {
        assert_eq!(
            green_task_set(&[]),
            Err(NotProbed::NoGreenTaskSet { task_sets: 0 })
        );
        let only_blue = [
            set("b", Some(FleetLabel::Blue), Some("tg-b")),
            set("x", None, Some("tg-x")),
        ];
        assert_eq!(
            green_task_set(&only_blue),
            Err(NotProbed::NoGreenTaskSet { task_sets: 2 })
        );
        assert_eq!(
            green_task_set(&[set("g", Some(FleetLabel::Green), None)]),
            Err(NotProbed::NoTargetGroup {
                task_set: "g".into()
            })
        );
        assert_eq!(
            green_task_set(&[set("g", Some(FleetLabel::Green), Some(" "))]),
            Err(NotProbed::NoTargetGroup {
                task_set: "g".into()
            })
        );
        assert_eq!(
            green_task_set(&[
                set("g1", Some(FleetLabel::Green), Some("tg-1")),
                set("g2", Some(FleetLabel::Green), Some("tg-2")),
            ]),
            Err(NotProbed::SeveralGreenTargetGroups {
                target_groups: vec!["tg-1".into(), "tg-2".into()]
            })
        );
    }

    fn group(target_type: Option<&str>, port: Option<u16>) -> TargetGroupFacts {
        TargetGroupFacts {
            name: "shop-tg-green".into(),
            arn: "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/shop-tg-green/1"
                .into(),
            target_type: target_type.map(str::to_string),
            port,
        }
    }

    fn target(id: &str, port: Option<u16>, state: Option<&str>) -> RegisteredTarget {
        RegisteredTarget {
            id: id.into(),
            port,
            state: state.map(str::to_string),
        }
    }

    #[test]
    fn ip_targets_are_probed_at_their_id_and_port() {
        let targets = [
            target("10.0.1.5", Some(8080), Some("healthy")),
            target("10.0.2.9", Some(8080), Some("initial")),
            target("fd00::7", None, None),
        ];
        let planned = plan_targets(&group(Some("ip"), Some(80)), &targets, None).unwrap();
        assert_eq!(
            planned,
            vec![
                PlannedTarget {
                    name: "10.0.1.5".into(),
                    host: TargetHost::Ip("10.0.1.5".into()),
                    port: 8080
                },
                PlannedTarget {
                    name: "10.0.2.9".into(),
                    host: TargetHost::Ip("10.0.2.9".into()),
                    port: 8080
                },
                // No target port: the group's.
                PlannedTarget {
                    name: "fd00::7".into(),
                    host: TargetHost::Ip("fd00::7".into()),
                    port: 80
                },
            ]
        );
        // PROBE_PORT wins over both.
        let planned = plan_targets(&group(Some("IP"), Some(80)), &targets, Some(9000)).unwrap();
        assert!(planned.iter().all(|p| p.port == 9000));
    }

    #[test]
    fn instance_targets_are_resolved_by_the_shell_and_named_uniquely() {
        let targets = [
            target("i-0a", Some(32768), Some("healthy")),
            target("i-0a", Some(32769), Some("healthy")),
            target("i-0b", Some(32770), Some("unhealthy")),
            target("i-0b", Some(32770), Some("unhealthy")), // listed twice
        ];
        let planned = plan_targets(&group(Some("instance"), Some(80)), &targets, None).unwrap();
        assert_eq!(
            planned,
            vec![
                PlannedTarget {
                    name: "i-0a:32768".into(),
                    host: TargetHost::Instance("i-0a".into()),
                    port: 32768
                },
                PlannedTarget {
                    name: "i-0a:32769".into(),
                    host: TargetHost::Instance("i-0a".into()),
                    port: 32769
                },
                PlannedTarget {
                    name: "i-0b:32770".into(),
                    host: TargetHost::Instance("i-0b".into()),
                    port: 32770
                },
            ]
        );
    }

    #[test]
    fn draining_targets_are_not_probed_and_an_empty_group_plans_nothing() {
        assert!(is_serving(&target("10.0.0.1", None, None)));
        assert!(is_serving(&target("10.0.0.1", None, Some("unused"))));
        assert!(is_serving(&target("10.0.0.1", None, Some("unhealthy"))));
        assert!(!is_serving(&target("10.0.0.1", None, Some("draining"))));
        assert!(!is_serving(&target(
            "10.0.0.1",
            None,
            Some("unhealthy.draining")
        )));
        let targets = [
            target("10.0.1.5", Some(8080), Some("draining")),
            target("10.0.1.6", Some(8080), Some("healthy")),
        ];
        let planned = plan_targets(&group(Some("ip"), None), &targets, None).unwrap();
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].name, "10.0.1.6");
        assert_eq!(
            plan_targets(&group(Some("ip"), None), &[], None),
            Ok(Vec::new())
        );
    }

    #[test]
    fn unprobeable_groups_and_targets_are_refused() {
        for kind in [Some("lambda"), Some("alb"), None] {
            assert_eq!(
                plan_targets(&group(kind, Some(80)), &[], None),
                Err(NotProbed::UnsupportedTargetType {
                    target_group: "shop-tg-green".into(),
                    target_type: kind.map(str::to_string)
                })
            );
        }
        assert_eq!(
            plan_targets(
                &group(Some("ip"), Some(80)),
                &[target("task-1", Some(80), None)],
                None
            ),
            Err(NotProbed::InvalidTargetAddress {
                target_group: "shop-tg-green".into(),
                target_id: "task-1".into()
            })
        );
        assert_eq!(
            plan_targets(
                &group(Some("instance"), Some(80)),
                &[target(" ", Some(80), None)],
                None
            ),
            Err(NotProbed::InvalidTargetAddress {
                target_group: "shop-tg-green".into(),
                target_id: "".into()
            })
        );
        assert_eq!(
            plan_targets(
                &group(Some("ip"), None),
                &[target("10.0.0.1", None, None)],
                None
            ),
            Err(NotProbed::NoPort {
                target_group: "shop-tg-green".into(),
                target_id: "10.0.0.1".into()
            })
        );
        assert_eq!(
            plan_targets(
                &group(Some("ip"), Some(0)),
                &[target("10.0.0.1", Some(0), None)],
                None
            ),
            Err(NotProbed::NoPort {
                target_group: "shop-tg-green".into(),
                target_id: "10.0.0.1".into()
            })
        );
    }

    #[test]
    fn refusal_summaries_say_plainly_why() {
        let lambda = NotProbed::LambdaPlatform.summary("d-1");
        assert_eq!(
            lambda,
            "Deployment d-1 is a Lambda deployment: greenlight's gate probes EC2 instances and ECS tasks behind a target group over HTTP, and a Lambda deployment has nothing it can probe, so the lifecycle hook was reported Failed. A Lambda deployment should not route this hook to greenlight's traffic validator: remove it from the AppSpec Hooks."
        );
        let cases = [
            (
                NotProbed::UnknownPlatform("Kubernetes".into()),
                "\"Kubernetes\"",
            ),
            (NotProbed::MissingPlatform, "no computePlatform"),
            (
                NotProbed::NoGreenTaskSet { task_sets: 1 },
                "no task set labelled Green (of 1 task sets",
            ),
            (
                NotProbed::NoTargetGroup {
                    task_set: "ts-9".into(),
                },
                "green task set ts-9 of ECS deployment d-1 names no target group",
            ),
            (
                NotProbed::SeveralGreenTargetGroups {
                    target_groups: vec!["a".into(), "b".into()],
                },
                "several target groups (a, b)",
            ),
            (
                NotProbed::UnsupportedTargetType {
                    target_group: "tg".into(),
                    target_type: Some("lambda".into()),
                },
                "target type lambda; greenlight probes ip or instance targets",
            ),
            (
                NotProbed::UnsupportedTargetType {
                    target_group: "tg".into(),
                    target_type: None,
                },
                "target type (none)",
            ),
            (
                NotProbed::InvalidTargetAddress {
                    target_group: "tg".into(),
                    target_id: "x".into(),
                },
                "lists target \"x\"",
            ),
            (
                NotProbed::NoPort {
                    target_group: "tg".into(),
                    target_id: "10.0.0.1".into(),
                },
                "Target 10.0.0.1 in target group tg",
            ),
        ];
        for (reason, expected) in cases {
            let s = reason.summary("d-1");
            assert!(s.contains(expected), "{s}");
            assert!(s.contains("d-1"), "{s}");
            assert!(s.contains("the lifecycle hook was reported Failed"), "{s}");
        }
    }
}
