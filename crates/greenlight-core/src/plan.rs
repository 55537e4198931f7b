//! `greenlight plan`: read-only checks of a deployment group's prerequisites,
//! each failure with the exact fix, and the predicted phase durations with
//! the target group's current settings and with greenlight's profile.

use serde::Serialize;

use crate::trigger::{check_gated, Deadlines, GroupFacts, Target, MIN_REROUTE_SECONDS};
use crate::tuning::{allow_traffic_seconds, FastProfile};
use crate::watch::{Pace, Predictions, BLUE_TERMINATE_SECONDS};
use crate::{Phase, TargetGroupSnapshot};

/// The tag greenlight's IAM conditions scope ELBv2 writes to (template.yaml).
pub const APPLICATION_TAG_KEY: &str = "greenlight:application";

/// What GetDeploymentGroup says beyond [`GroupFacts`], for `plan`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSetup {
    /// `blueGreenDeploymentConfiguration.greenFleetProvisioningOption.action`:
    /// `COPY_AUTO_SCALING_GROUP` | `DISCOVER_EXISTING`.
    pub green_fleet_action: Option<String>,
    pub auto_rollback_enabled: bool,
    /// `autoRollbackConfiguration.events`.
    pub auto_rollback_events: Vec<String>,
    pub service_role_arn: Option<String>,
    pub deployment_config_name: Option<String>,
}

/// The group's target group, as ELBv2 answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetGroupState {
    /// Found: its current settings and its `greenlight:application` tag.
    Found {
        name: String,
        snapshot: TargetGroupSnapshot,
        application_tag: Option<String>,
    },
    /// DescribeTargetGroups did not find it (or could not be read: `detail`).
    Missing { name: String, detail: String },
}

/// Whether the CodeDeploy agent answered on the group's instances: read from
/// the group's newest deployment (an agent that ran lifecycle events answered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEvidence {
    /// Deployment `deployment_id` had lifecycle events that ran on its instances.
    Answered { deployment_id: String },
    /// Deployment `deployment_id` had lifecycle events that never started or failed.
    Silent {
        deployment_id: String,
        detail: String,
    },
    /// The group has no deployment to tell from.
    NoDeployment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CheckStatus {
    Pass,
    Fail,
    /// Not verifiable with read-only calls greenlight makes; the fix says how to check.
    Unknown,
}

/// One prerequisite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub name: &'static str,
    pub status: CheckStatus,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(name: &'static str, ok: bool, detail: String, fix: String) -> Check {
    Check {
        name,
        status: if ok {
            CheckStatus::Pass
        } else {
            CheckStatus::Fail
        },
        detail,
        fix: (!ok).then_some(fix),
    }
}

fn shown(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "unset".to_string())
}

/// The `update-deployment-group` command that sets greenlight's blue/green
/// configuration (the whole structure: CodeDeploy replaces it as a unit),
/// keeping the group's waits where they are valid.
pub fn blue_green_fix(application: &str, group: &str, facts: &GroupFacts) -> String {
    let ready = facts.ready_wait_minutes.filter(|m| *m > 0).unwrap_or(30);
    let terminate = facts
        .termination_wait_minutes
        .filter(|m| *m >= 0)
        .unwrap_or(5);
    format!(
        "aws deploy update-deployment-group --application-name {application} --current-deployment-group-name {group} --deployment-style deploymentType=BLUE_GREEN,deploymentOption=WITH_TRAFFIC_CONTROL --blue-green-deployment-configuration '{{\"deploymentReadyOption\":{{\"actionOnTimeout\":\"STOP_DEPLOYMENT\",\"waitTimeInMinutes\":{ready}}},\"greenFleetProvisioningOption\":{{\"action\":\"COPY_AUTO_SCALING_GROUP\"}},\"terminateBlueInstancesOnDeploymentSuccess\":{{\"action\":\"TERMINATE\",\"terminationWaitTimeInMinutes\":{terminate}}}}}'"
    )
}

/// Every prerequisite of `application`/`group`, in a fixed order.
pub fn group_checks(
    application: &str,
    group: &str,
    facts: &GroupFacts,
    setup: &GroupSetup,
    target_groups: &[TargetGroupState],
    agent: &AgentEvidence,
    deadlines: &Deadlines,
) -> Vec<Check> {
    let bg_fix = blue_green_fix(application, group, facts);
    let mut checks = vec![
        check(
            "blue/green with traffic control",
            facts.deployment_type.as_deref() == Some("BLUE_GREEN")
                && facts.deployment_option.as_deref() == Some("WITH_TRAFFIC_CONTROL"),
            format!(
                "deploymentStyle {} / {}",
                shown(&facts.deployment_type),
                shown(&facts.deployment_option)
            ),
            bg_fix.clone(),
        ),
        check(
            "green fleet copies the Auto Scaling group",
            setup.green_fleet_action.as_deref() == Some("COPY_AUTO_SCALING_GROUP"),
            format!(
                "greenFleetProvisioningOption.action {}",
                shown(&setup.green_fleet_action)
            ),
            bg_fix.clone(),
        ),
        check(
            "one Auto Scaling group",
            facts.auto_scaling_groups.len() == 1,
            format!("autoScalingGroups {:?}", facts.auto_scaling_groups),
            format!("aws deploy update-deployment-group --application-name {application} --current-deployment-group-name {group} --auto-scaling-groups <the fleet's ASG> (a copy-ASG deployment copies exactly one)"),
        ),
    ];
    let ready_ok = facts.ready_action_on_timeout.as_deref() == Some("STOP_DEPLOYMENT")
        && facts.ready_wait_minutes.is_some_and(|m| {
            m > 0 && i64::from(m) * 60 <= i64::from(deadlines.deployment_timeout_seconds)
        });
    checks.push(check(
        "Ready wait with STOP_DEPLOYMENT",
        ready_ok,
        format!(
            "deploymentReadyOption {} after {} min (DeploymentTimeoutSeconds {})",
            shown(&facts.ready_action_on_timeout),
            facts
                .ready_wait_minutes
                .map_or("unset".to_string(), |m| m.to_string()),
            deadlines.deployment_timeout_seconds
        ),
        bg_fix.clone(),
    ));
    let terminates = facts.termination_action.as_deref() == Some("TERMINATE");
    let wait_ok = facts.termination_wait_minutes.is_some_and(|m| {
        m >= 0
            && i64::from(m) * 60 + i64::from(MIN_REROUTE_SECONDS)
                <= i64::from(deadlines.post_reroute_timeout_seconds)
    });
    checks.push(check(
        "blue termination wait",
        terminates && wait_ok,
        format!(
            "terminateBlueInstancesOnDeploymentSuccess {} after {} min (PostRerouteTimeoutSeconds {})",
            shown(&facts.termination_action),
            facts
                .termination_wait_minutes
                .map_or("unset".to_string(), |m| m.to_string()),
            deadlines.post_reroute_timeout_seconds
        ),
        bg_fix,
    ));
    let events = |e: &str| setup.auto_rollback_events.iter().any(|x| x == e);
    checks.push(check(
        "automatic rollback",
        setup.auto_rollback_enabled
            && events("DEPLOYMENT_FAILURE")
            && events("DEPLOYMENT_STOP_ON_REQUEST"),
        format!(
            "autoRollbackConfiguration enabled={} events {:?}",
            setup.auto_rollback_enabled, setup.auto_rollback_events
        ),
        format!("aws deploy update-deployment-group --application-name {application} --current-deployment-group-name {group} --auto-rollback-configuration enabled=true,events=DEPLOYMENT_FAILURE,DEPLOYMENT_STOP_ON_REQUEST"),
    ));
    if target_groups.is_empty() {
        checks.push(check(
            "target group found and tagged",
            false,
            "loadBalancerInfo.targetGroupInfoList names no target group".into(),
            format!("aws deploy update-deployment-group --application-name {application} --current-deployment-group-name {group} --load-balancer-info 'targetGroupInfoList=[{{name=<target group>}}]'"),
        ));
    }
    for tg in target_groups {
        match tg {
            TargetGroupState::Found {
                name,
                snapshot,
                application_tag,
            } => checks.push(check(
                "target group found and tagged",
                application_tag.as_deref() == Some(application),
                format!(
                    "{name}: tag {APPLICATION_TAG_KEY}={}",
                    application_tag.as_deref().unwrap_or("(none)")
                ),
                format!(
                    "aws elbv2 add-tags --resource-arns {} --tags Key={APPLICATION_TAG_KEY},Value={application}",
                    snapshot.target_group_arn
                ),
            )),
            TargetGroupState::Missing { name, detail } => checks.push(check(
                "target group found and tagged",
                false,
                format!("{name}: {detail}"),
                format!("create the target group {name} (or name the right one in the group's loadBalancerInfo), then tag it {APPLICATION_TAG_KEY}={application}"),
            )),
        }
    }
    let agent_fix = "install and start the CodeDeploy agent on the fleet's AMI or launch template user data (`sudo systemctl status codedeploy-agent`; CodeDeploy user guide, \"Install the CodeDeploy agent\"), and give the instance profile read access to the artifact bucket".to_string();
    checks.push(match agent {
        AgentEvidence::Answered { deployment_id } => check(
            "CodeDeploy agent answering on the instances",
            true,
            format!("the agent ran lifecycle events in deployment {deployment_id}"),
            agent_fix,
        ),
        AgentEvidence::Silent {
            deployment_id,
            detail,
        } => check(
            "CodeDeploy agent answering on the instances",
            false,
            format!("deployment {deployment_id}: {detail}"),
            agent_fix,
        ),
        AgentEvidence::NoDeployment => Check {
            name: "CodeDeploy agent answering on the instances",
            status: CheckStatus::Unknown,
            detail: "the group has no deployment yet to tell from".into(),
            fix: Some(agent_fix),
        },
    });
    let role_fix = format!(
        "the service role needs the AWSCodeDeployRole managed policy plus ec2:RunInstances, ec2:CreateTags and iam:PassRole on the instances' role (a launch-template ASG copy; CodeDeploy user guide, \"Create a service role for CodeDeploy\"); check with aws iam simulate-principal-policy --policy-source-arn {} --action-names ec2:RunInstances ec2:CreateTags iam:PassRole",
        setup.service_role_arn.as_deref().unwrap_or("<service role ARN>")
    );
    checks.push(match &setup.service_role_arn {
        None => check(
            "service role can copy a launch-template ASG",
            false,
            "the group has no service role".into(),
            role_fix,
        ),
        Some(arn) => Check {
            name: "service role can copy a launch-template ASG",
            status: CheckStatus::Unknown,
            detail: format!("{arn}: its permissions are not read by plan (no IAM calls)"),
            fix: Some(role_fix),
        },
    });
    // The trigger's own gate, word for word, so plan never passes a group it rejects.
    let target = Target {
        application: application.to_string(),
        deployment_group: group.to_string(),
    };
    if let Err(rejection) = check_gated(&target, facts, deadlines) {
        checks.push(check(
            "greenlight's trigger accepts the group",
            false,
            rejection.to_string(),
            "apply the fixes above".into(),
        ));
    } else {
        checks.push(check(
            "greenlight's trigger accepts the group",
            true,
            "GroupNotGated would not be raised".into(),
            String::new(),
        ));
    }
    checks
}

/// Whether the group's Ready wait holds an approval at the gate: the same
/// rule deploy-trigger enforces ([`crate::options::ready_wait_problem`]:
/// Ready wait ≥ deadline + 300 s). `approval_deadline_seconds` is the
/// group's `deadlineSeconds` in `ApprovalConfig` (plan cannot read the
/// function's settings; `--approval-deadline`). Without it the check uses the
/// deadline an upload that asks by tag or UserParameters gets by default
/// (1800 s) and reports `unknown` rather than failing: a group that never
/// uses approval needs no longer Ready wait.
pub fn approval_check(
    application: &str,
    group: &str,
    facts: &GroupFacts,
    deadlines: &Deadlines,
    approval_deadline_seconds: Option<u32>,
) -> Check {
    use crate::options::{
        min_ready_wait_minutes, ready_wait_problem, DEFAULT_DEADLINE_SECONDS, READY_MARGIN_SECONDS,
    };
    const NAME: &str = "Ready wait holds an approval";
    let deadline = approval_deadline_seconds.unwrap_or(DEFAULT_DEADLINE_SECONDS);
    let whose = if approval_deadline_seconds.is_some() {
        format!("approval deadline {deadline} s (--approval-deadline)")
    } else {
        format!("default approval deadline {deadline} s (no --approval-deadline given)")
    };
    let Some(minutes) = facts.ready_wait_minutes else {
        return Check {
            name: NAME,
            status: CheckStatus::Unknown,
            detail: format!("the group states no Ready wait to compare with the {whose}"),
            fix: Some("fix the Ready wait check above first".into()),
        };
    };
    let Some(problem) = ready_wait_problem(Some(minutes), deadline) else {
        return check(
            NAME,
            true,
            format!("Ready wait {minutes} min >= {whose} + {READY_MARGIN_SECONDS} s"),
            String::new(),
        );
    };
    let needed = min_ready_wait_minutes(deadline);
    let fixed = GroupFacts {
        ready_wait_minutes: i32::try_from(needed).ok(),
        ..facts.clone()
    };
    let mut fix = blue_green_fix(application, group, &fixed);
    if needed * 60 > i64::from(deadlines.deployment_timeout_seconds) {
        fix.push_str(&format!(
            "; and raise the pipeline's DeploymentTimeoutSeconds to at least {} (the Ready wait must fit in it)",
            needed * 60
        ));
    }
    match approval_deadline_seconds {
        Some(_) => check(NAME, false, format!("{whose}: {problem}"), fix),
        None => Check {
            name: NAME,
            status: CheckStatus::Unknown,
            detail: format!(
                "{whose}: an upload that asks for an approval would be refused: {problem}"
            ),
            fix: Some(format!(
                "if the group uses approval, run plan with --approval-deadline <its ApprovalConfig deadlineSeconds>; to hold the default deadline: {fix}"
            )),
        },
    }
}

/// What the group's newest deployment says about the CodeDeploy agent: it
/// answered if any lifecycle event ran on any instance; a deployment whose
/// instances never started an event points at a silent agent.
pub fn agent_evidence(newest: Option<&crate::DeploymentView>) -> AgentEvidence {
    use crate::LifecycleStatus;
    let Some(d) = newest else {
        return AgentEvidence::NoDeployment;
    };
    let events: Vec<&crate::LifecycleEventView> = d
        .targets
        .iter()
        .flat_map(|t| t.lifecycle_events.iter())
        .collect();
    if events
        .iter()
        .any(|e| e.status == LifecycleStatus::Succeeded)
    {
        AgentEvidence::Answered {
            deployment_id: d.deployment_id.clone(),
        }
    } else if events.is_empty() {
        AgentEvidence::NoDeployment
    } else {
        AgentEvidence::Silent {
            deployment_id: d.deployment_id.clone(),
            detail: format!(
                "no lifecycle event succeeded on its {} instance(s){}",
                d.targets.len(),
                d.error
                    .as_ref()
                    .map(|e| format!(" ({}: {})", e.code, e.message))
                    .unwrap_or_default()
            ),
        }
    }
}

/// One phase predicted with the current settings and with greenlight's profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhasePlan {
    pub phase: Phase,
    pub current_seconds: u32,
    pub profile_seconds: u32,
}

/// Predicted phase durations for `instances` green instances at `pace`:
/// AllowTraffic and BlockTraffic from the slowest target group's current
/// health check and deregistration delay, and from `profile`; Terminating
/// from the group's termination wait (when it terminates).
pub fn phase_plan(
    snapshots: &[TargetGroupSnapshot],
    profile: &FastProfile,
    termination_wait_seconds: Option<u32>,
    pace: Pace,
    instances: u32,
) -> Vec<PhasePlan> {
    let base = Predictions {
        pace,
        terminating_seconds: termination_wait_seconds
            .unwrap_or(0)
            .saturating_add(BLUE_TERMINATE_SECONDS),
        ..Predictions::default()
    };
    let current = Predictions {
        allow_traffic_seconds: snapshots
            .iter()
            .map(|s| allow_traffic_seconds(&s.health_check))
            .max()
            .unwrap_or(base.allow_traffic_seconds),
        block_traffic_seconds: snapshots
            .iter()
            .map(|s| s.deregistration_delay_seconds)
            .max()
            .unwrap_or(base.block_traffic_seconds),
        ..base
    };
    let tuned = Predictions {
        allow_traffic_seconds: allow_traffic_seconds(&profile.health_check),
        block_traffic_seconds: profile.deregistration_delay_seconds,
        ..base
    };
    let n = usize::try_from(instances).unwrap_or(usize::MAX);
    [
        Phase::Provisioning,
        Phase::Installing,
        Phase::ReadyWait,
        Phase::Rerouting,
        Phase::Terminating,
    ]
    .into_iter()
    .map(|phase| PhasePlan {
        phase,
        current_seconds: current.phase_seconds(phase, n).unwrap_or(0),
        profile_seconds: tuned.phase_seconds(phase, n).unwrap_or(0),
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HealthCheckSettings;

    fn gated() -> GroupFacts {
        GroupFacts {
            deployment_type: Some("BLUE_GREEN".into()),
            deployment_option: Some("WITH_TRAFFIC_CONTROL".into()),
            ready_action_on_timeout: Some("STOP_DEPLOYMENT".into()),
            target_groups: vec!["shop-tg".into()],
            ready_wait_minutes: Some(30),
            termination_action: Some("TERMINATE".into()),
            termination_wait_minutes: Some(5),
            auto_scaling_groups: vec!["shop-asg".into()],
        }
    }

    fn setup() -> GroupSetup {
        GroupSetup {
            green_fleet_action: Some("COPY_AUTO_SCALING_GROUP".into()),
            auto_rollback_enabled: true,
            auto_rollback_events: vec![
                "DEPLOYMENT_FAILURE".into(),
                "DEPLOYMENT_STOP_ON_REQUEST".into(),
            ],
            service_role_arn: Some("arn:aws:iam::1:role/cd".into()),
            deployment_config_name: None,
        }
    }

    fn seed_snapshot() -> TargetGroupSnapshot {
        TargetGroupSnapshot {
            target_group_arn: "arn:tg/shop-tg".into(),
            health_check: HealthCheckSettings {
                interval_seconds: 30,
                timeout_seconds: 5,
                healthy_threshold: 10,
                unhealthy_threshold: 2,
            },
            deregistration_delay_seconds: 300,
        }
    }

    fn tagged(tag: Option<&str>) -> Vec<TargetGroupState> {
        vec![TargetGroupState::Found {
            name: "shop-tg".into(),
            snapshot: seed_snapshot(),
            application_tag: tag.map(str::to_string),
        }]
    }

    const DEADLINES: Deadlines = Deadlines {
        deployment_timeout_seconds: 3600,
        post_reroute_timeout_seconds: 10800,
    };

    fn failing(checks: &[Check]) -> Vec<&'static str> {
        checks
            .iter()
            .filter(|c| c.status == CheckStatus::Fail)
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn a_gated_group_passes_every_check_it_can_read() {
        let agent = AgentEvidence::Answered {
            deployment_id: "d-1".into(),
        };
        let checks = group_checks(
            "shop",
            "shop-bg",
            &gated(),
            &setup(),
            &tagged(Some("shop")),
            &agent,
            &DEADLINES,
        );
        assert!(failing(&checks).is_empty(), "{checks:#?}");
        assert!(checks
            .iter()
            .all(|c| c.status != CheckStatus::Fail && c.fix.is_none()
                || c.status == CheckStatus::Unknown));
        let role = checks
            .iter()
            .find(|c| c.name.starts_with("service role"))
            .expect("role check");
        assert_eq!(role.status, CheckStatus::Unknown);
        assert!(role
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("ec2:RunInstances") && f.contains("iam:PassRole")));
    }

    #[test]
    fn each_missing_prerequisite_fails_with_its_exact_fix() {
        let mut facts = gated();
        facts.ready_action_on_timeout = Some("CONTINUE_DEPLOYMENT".into());
        facts.termination_action = Some("KEEP_ALIVE".into());
        let mut s = setup();
        s.green_fleet_action = Some("DISCOVER_EXISTING".into());
        s.auto_rollback_enabled = false;
        s.service_role_arn = None;
        let agent = AgentEvidence::Silent {
            deployment_id: "d-2".into(),
            detail: "ApplicationStop never started".into(),
        };
        let checks = group_checks(
            "shop",
            "shop-bg",
            &facts,
            &s,
            &tagged(None),
            &agent,
            &DEADLINES,
        );
        assert_eq!(
            failing(&checks),
            vec![
                "green fleet copies the Auto Scaling group",
                "Ready wait with STOP_DEPLOYMENT",
                "blue termination wait",
                "automatic rollback",
                "target group found and tagged",
                "CodeDeploy agent answering on the instances",
                "service role can copy a launch-template ASG",
                "greenlight's trigger accepts the group",
            ]
        );
        let fix = |name: &str| {
            checks
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| c.fix.clone())
                .unwrap_or_default()
        };
        assert!(fix("Ready wait with STOP_DEPLOYMENT")
            .contains("\"actionOnTimeout\":\"STOP_DEPLOYMENT\",\"waitTimeInMinutes\":30"));
        assert!(
            fix("green fleet copies the Auto Scaling group").contains("COPY_AUTO_SCALING_GROUP")
        );
        assert!(fix("automatic rollback")
            .contains("enabled=true,events=DEPLOYMENT_FAILURE,DEPLOYMENT_STOP_ON_REQUEST"));
        assert_eq!(
            fix("target group found and tagged"),
            "aws elbv2 add-tags --resource-arns arn:tg/shop-tg --tags Key=greenlight:application,Value=shop"
        );
    }

    #[test]
    fn waits_that_do_not_fit_the_deadlines_fail() {
        let mut facts = gated();
        facts.ready_wait_minutes = Some(61);
        facts.termination_wait_minutes = Some(2880);
        let checks = group_checks(
            "shop",
            "shop-bg",
            &facts,
            &setup(),
            &tagged(Some("shop")),
            &AgentEvidence::NoDeployment,
            &DEADLINES,
        );
        assert_eq!(
            failing(&checks),
            vec![
                "Ready wait with STOP_DEPLOYMENT",
                "blue termination wait",
                "greenlight's trigger accepts the group"
            ]
        );
        let agent = checks
            .iter()
            .find(|c| c.name.starts_with("CodeDeploy agent"))
            .expect("agent");
        assert_eq!(agent.status, CheckStatus::Unknown);
    }

    #[test]
    fn the_ready_wait_must_hold_the_approval_deadline_with_the_exact_fix() {
        // 30 min Ready wait; a 1500 s deadline + 300 s fits (1800 s).
        let fits = approval_check("shop", "shop-bg", &gated(), &DEADLINES, Some(1_500));
        assert_eq!(fits.status, CheckStatus::Pass, "{fits:?}");
        assert!(fits
            .detail
            .contains("Ready wait 30 min >= approval deadline 1500 s"));
        let short = approval_check("shop", "shop-bg", &gated(), &DEADLINES, Some(1_501));
        assert_eq!(short.status, CheckStatus::Fail, "{short:?}");
        assert!(short.detail.contains("at least 31"), "{short:?}");
        let fix = short.fix.expect("a fix");
        assert!(
            fix.starts_with("aws deploy update-deployment-group --application-name shop --current-deployment-group-name shop-bg "),
            "{fix}"
        );
        assert!(fix.contains("\"waitTimeInMinutes\":31}"), "{fix}");
        assert!(!fix.contains("DeploymentTimeoutSeconds"), "{fix}");
        // A deadline whose Ready wait no longer fits in the pipeline's
        // deployment timeout says to raise that too.
        let long = approval_check("shop", "shop-bg", &gated(), &DEADLINES, Some(3_600));
        let fix = long.fix.expect("a fix");
        assert!(fix.contains("\"waitTimeInMinutes\":65}"), "{fix}");
        assert!(
            fix.contains("raise the pipeline's DeploymentTimeoutSeconds to at least 3900"),
            "{fix}"
        );
        // No deadline given: the default one, reported as unknown, not failed.
        let default = approval_check("shop", "shop-bg", &gated(), &DEADLINES, None);
        assert_eq!(default.status, CheckStatus::Unknown, "{default:?}");
        assert!(default.detail.contains("default approval deadline 1800 s"));
        assert!(default
            .fix
            .expect("fix")
            .contains("\"waitTimeInMinutes\":35}"));
        let holds = GroupFacts {
            ready_wait_minutes: Some(35),
            ..gated()
        };
        assert_eq!(
            approval_check("shop", "shop-bg", &holds, &DEADLINES, None).status,
            CheckStatus::Pass
        );
        let unset = GroupFacts {
            ready_wait_minutes: None,
            ..gated()
        };
        assert_eq!(
            approval_check("shop", "shop-bg", &unset, &DEADLINES, Some(60)).status,
            CheckStatus::Unknown
        );
    }

    #[test]
    fn missing_target_group_and_multiple_asgs_fail() {
        let mut facts = gated();
        facts.auto_scaling_groups = vec!["a".into(), "b".into()];
        let missing = vec![TargetGroupState::Missing {
            name: "shop-tg".into(),
            detail: "TargetGroupNotFound".into(),
        }];
        let checks = group_checks(
            "shop",
            "shop-bg",
            &facts,
            &setup(),
            &missing,
            &AgentEvidence::NoDeployment,
            &DEADLINES,
        );
        assert_eq!(
            failing(&checks),
            vec!["one Auto Scaling group", "target group found and tagged"]
        );
        let none = group_checks(
            "shop",
            "shop-bg",
            &gated(),
            &setup(),
            &[],
            &AgentEvidence::NoDeployment,
            &DEADLINES,
        );
        assert_eq!(failing(&none), vec!["target group found and tagged"]);
    }

    #[test]
    fn agent_evidence_reads_the_newest_deployment() {
        use crate::{
            DeploymentStatus, DeploymentView, InstanceTargetView, LifecycleEventView,
            LifecycleStatus,
        };
        let view = |status: LifecycleStatus| DeploymentView {
            deployment_id: "d-1".into(),
            application: "shop".into(),
            deployment_group: "bg".into(),
            status: DeploymentStatus::Failed,
            description: None,
            created_at_ms: None,
            completed_at_ms: None,
            error: None,
            rollback_deployment_id: None,
            creator: None,
            rollback_triggering_deployment_id: None,
            original_auto_scaling_groups: vec![],
            termination_wait_started: None,
            targets: vec![InstanceTargetView {
                instance_id: "i-1".into(),
                label: None,
                status,
                lifecycle_events: vec![LifecycleEventView {
                    name: "ApplicationStop".into(),
                    status,
                    started_at_ms: None,
                    ended_at_ms: None,
                    diagnostics: None,
                }],
            }],
        };
        assert_eq!(agent_evidence(None), AgentEvidence::NoDeployment);
        assert_eq!(
            agent_evidence(Some(&view(LifecycleStatus::Succeeded))),
            AgentEvidence::Answered {
                deployment_id: "d-1".into()
            }
        );
        assert!(matches!(
            agent_evidence(Some(&view(LifecycleStatus::Pending))),
            AgentEvidence::Silent { .. }
        ));
        let mut empty = view(LifecycleStatus::Pending);
        empty.targets.clear();
        assert_eq!(agent_evidence(Some(&empty)), AgentEvidence::NoDeployment);
    }

    #[test]
    fn phase_plan_compares_the_seed_settings_with_the_profile() {
        let plan = phase_plan(
            &[seed_snapshot()],
            &FastProfile::default(),
            Some(300),
            Pace::OneAtATime,
            2,
        );
        let row = |p: Phase| *plan.iter().find(|r| r.phase == p).expect("row");
        // Seed: (10 × 30) + 30 = 330 s healthy + 300 s drain, two rounds.
        assert_eq!(row(Phase::Rerouting).current_seconds, 2 * (330 + 300));
        // Profile: (2 × 5) + 5 = 15 s + 30 s, two rounds.
        assert_eq!(row(Phase::Rerouting).profile_seconds, 2 * (15 + 30));
        assert_eq!(row(Phase::Terminating).current_seconds, 360);
        assert_eq!(row(Phase::Installing).current_seconds, 180);
        assert_eq!(row(Phase::Installing).profile_seconds, 180);
        let all_at_once = phase_plan(&[], &FastProfile::default(), None, Pace::AllAtOnce, 4);
        let r = all_at_once
            .iter()
            .find(|r| r.phase == Phase::Rerouting)
            .expect("row");
        assert_eq!(r.current_seconds, 180 + 300);
        assert_eq!(r.profile_seconds, 45);
    }
}
