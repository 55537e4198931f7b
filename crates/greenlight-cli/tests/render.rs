//! Snapshot tests of the CLI's human output and `--json`: fixed deployments
//! (tests/snapshots/*.json) rendered by the pure functions, compared with
//! golden files. `UPDATE_SNAPSHOTS=1` rewrites the golden files.

use greenlight_cli::report::{
    build_report, history_html, progress_line, render, render_history, render_plan, Look,
};
use greenlight_core::trigger::ExecutionStatus;
use greenlight_core::watch::Predictions;
use greenlight_core::DeploymentView;
use std::path::PathBuf;

const REROUTING: &str = include_str!("snapshots/deployment-rerouting.json");
const FAILED: &str = include_str!("snapshots/deployment-failed.json");
/// 30 s after the last event of the rerouting fixture.
const NOW_MS: i64 = 1_795_437_215_000;

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{} cannot be read ({e}); run with UPDATE_SNAPSHOTS=1 to create it",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "{} differs (UPDATE_SNAPSHOTS=1 to accept)",
        path.display()
    );
}

fn view(json: &str) -> DeploymentView {
    serde_json::from_str(json).expect("fixture is a DeploymentView")
}

fn running() -> Look {
    Look {
        execution: Some((
            "gl-shop-a6c18ae7f04d102aa897636e371154cd".into(),
            ExecutionStatus::Running,
        )),
        application: Some("shop".into()),
        deployment_group: Some("shop-bluegreen".into()),
        revision: Some("20261123154715-1".into()),
        deployment: Some(view(REROUTING)),
        validation: Some(
            serde_json::from_str(
                r#"{"deploymentId":"d-7Q2KJ3X1A","passed":true,"summary":"2 green instances of deployment d-7Q2KJ3X1A passed validation","instances":[{"instanceId":"i-0green0","address":"127.0.0.2:8080","probes":3,"consecutiveSuccesses":3,"lastStatus":200,"lastBody":"ok","passed":true},{"instanceId":"i-0green1","address":"127.0.0.3:8080","probes":4,"consecutiveSuccesses":3,"lastStatus":200,"passed":true}],"action":"continued"}"#,
            )
            .expect("a ValidationReport"),
        ),
    }
}

fn failed() -> Look {
    Look {
        execution: Some((
            "gl-shop-0123456789abcdef0123456789abcdef".into(),
            ExecutionStatus::Failed {
                error: Some("DeploymentFailed".into()),
                cause: Some("AfterInstall failed on i-0green0".into()),
            },
        )),
        application: Some("shop".into()),
        deployment_group: Some("shop-bluegreen".into()),
        revision: Some("20261123160000-2".into()),
        deployment: Some(view(FAILED)),
        validation: None,
    }
}

#[test]
fn status_of_a_running_deployment_human_and_json() {
    let report = build_report(&running(), &Predictions::default(), NOW_MS);
    golden("status-rerouting.txt", &render(&report, false));
    golden("watch-rerouting-tty.txt", &render(&report, true));
    golden(
        "watch-rerouting-line.txt",
        &format!("{}\n", progress_line(&report)),
    );
    golden(
        "status-rerouting.json",
        &format!(
            "{}\n",
            serde_json::to_string_pretty(&report).expect("serializes")
        ),
    );
}

#[test]
fn status_of_a_rolled_back_deployment_human_and_json() {
    let report = build_report(&failed(), &Predictions::default(), NOW_MS);
    golden("status-failed.txt", &render(&report, false));
    golden(
        "status-failed.json",
        &format!(
            "{}\n",
            serde_json::to_string_pretty(&report).expect("serializes")
        ),
    );
}

#[test]
fn history_lists_each_deployment_with_phases() {
    let reports = vec![
        build_report(&failed(), &Predictions::default(), NOW_MS),
        build_report(&running(), &Predictions::default(), NOW_MS),
    ];
    golden("history.txt", &render_history(&reports));
    golden(
        "history.json",
        &format!(
            "{}\n",
            serde_json::to_string_pretty(&reports).expect("serializes")
        ),
    );
}

#[test]
fn plan_human_and_json() {
    use greenlight_core::plan::{
        approval_check, group_checks, phase_plan, AgentEvidence, TargetGroupState,
    };
    use greenlight_core::trigger::{Deadlines, GroupFacts};
    use greenlight_core::{HealthCheckSettings, TargetGroupSnapshot};
    let facts = GroupFacts {
        deployment_type: Some("BLUE_GREEN".into()),
        deployment_option: Some("WITH_TRAFFIC_CONTROL".into()),
        ready_action_on_timeout: Some("CONTINUE_DEPLOYMENT".into()),
        target_groups: vec!["shop-tg".into()],
        ready_wait_minutes: Some(0),
        termination_action: Some("TERMINATE".into()),
        termination_wait_minutes: Some(5),
        auto_scaling_groups: vec!["shop-asg".into()],
    };
    let setup = greenlight_core::plan::GroupSetup {
        green_fleet_action: Some("COPY_AUTO_SCALING_GROUP".into()),
        auto_rollback_enabled: true,
        auto_rollback_events: vec!["DEPLOYMENT_FAILURE".into()],
        service_role_arn: Some("arn:aws:iam::111122223333:role/CodeDeployServiceRole".into()),
        deployment_config_name: Some("CodeDeployDefault.OneAtATime".into()),
    };
    let snapshot = TargetGroupSnapshot {
        target_group_arn:
            "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/shop-tg/73e2d6bc24d8a067"
                .into(),
        health_check: HealthCheckSettings {
            interval_seconds: 30,
            timeout_seconds: 5,
            healthy_threshold: 10,
            unhealthy_threshold: 2,
        },
        deregistration_delay_seconds: 300,
    };
    let tgs = vec![TargetGroupState::Found {
        name: "shop-tg".into(),
        snapshot: snapshot.clone(),
        application_tag: None,
    }];
    let deadlines = Deadlines {
        deployment_timeout_seconds: 3600,
        post_reroute_timeout_seconds: 10800,
    };
    let mut checks = group_checks(
        "shop",
        "shop-bluegreen",
        &facts,
        &setup,
        &tgs,
        &AgentEvidence::NoDeployment,
        &deadlines,
    );
    // `--approval-deadline 1800`: the fixture's 0 min Ready wait cannot hold it.
    checks.push(approval_check(
        "shop",
        "shop-bluegreen",
        &facts,
        &deadlines,
        Some(1_800),
    ));
    let phases = phase_plan(
        &[snapshot],
        &greenlight_core::tuning::FastProfile::default(),
        Some(300),
        greenlight_core::watch::Pace::OneAtATime,
        2,
    );
    golden(
        "plan.txt",
        &render_plan(
            "shop",
            "shop-bluegreen",
            "CodeDeployDefault.OneAtATime",
            2,
            &checks,
            &phases,
        ),
    );
    golden(
        "plan.json",
        &format!(
            "{}\n",
            serde_json::to_string_pretty(&serde_json::json!({"checks": checks, "phases": phases}))
                .expect("serializes")
        ),
    );
}

#[test]
fn history_html_embeds_the_same_reports_in_the_timeline_page() {
    let reports = vec![
        build_report(&failed(), &Predictions::default(), NOW_MS),
        build_report(&running(), &Predictions::default(), NOW_MS),
    ];
    let page = history_html("shop", "shop-bg", &reports, NOW_MS);
    assert!(page.starts_with("<!DOCTYPE html>"));
    // The live page's template: same renderer, state embedded instead of fetched.
    assert!(page.contains("id=\"deployments\""));
    let marker = "type=\"application/json\">";
    let start = page.find(marker).expect("embedded state") + marker.len();
    let end = start + page[start..].find("</script>").expect("closed");
    let state: serde_json::Value = serde_json::from_str(&page[start..end]).expect("json");
    assert_eq!(state["title"], "greenlight history: shop/shop-bg");
    assert_eq!(state["live"], false);
    assert_eq!(
        state["deployments"],
        serde_json::to_value(&reports).expect("serializes")
    );
    assert!(state["deployments"][0]["phases"][0]["predictedSeconds"].is_number());
}
