use super::*;
use crate::model::{
    DeploymentStatus, FleetLabel, InstanceTargetView, LifecycleEventView, LifecycleStatus, Phase,
};

const T0: EpochMillis = 1_700_000_000_000;

fn event(
    name: &str,
    status: LifecycleStatus,
    start: Option<i64>,
    end: Option<i64>,
) -> LifecycleEventView {
    LifecycleEventView {
        name: name.to_string(),
        status,
        started_at_ms: start.map(|s| T0 + s * 1000),
        ended_at_ms: end.map(|s| T0 + s * 1000),
        diagnostics: None,
    }
}

fn view() -> DeploymentView {
    DeploymentView {
        deployment_id: "d-PAGE1".to_string(),
        application: "shop".to_string(),
        deployment_group: "shop-prod".to_string(),
        status: DeploymentStatus::InProgress,
        description: None,
        created_at_ms: Some(T0),
        completed_at_ms: None,
        error: None,
        rollback_deployment_id: None,
        creator: None,
        rollback_triggering_deployment_id: None,
        original_auto_scaling_groups: vec![],
        termination_wait_started: None,
        targets: vec![
            InstanceTargetView {
                instance_id: "i-green".to_string(),
                label: Some(FleetLabel::Green),
                status: LifecycleStatus::InProgress,
                lifecycle_events: vec![
                    event(
                        "ApplicationStop",
                        LifecycleStatus::Succeeded,
                        Some(30),
                        Some(31),
                    ),
                    event(
                        "DownloadBundle",
                        LifecycleStatus::Succeeded,
                        Some(31),
                        Some(35),
                    ),
                    event("Install", LifecycleStatus::InProgress, Some(35), None),
                ],
            },
            InstanceTargetView {
                instance_id: "i-blue".to_string(),
                label: Some(FleetLabel::Blue),
                status: LifecycleStatus::Pending,
                lifecycle_events: vec![event("BlockTraffic", LifecycleStatus::Pending, None, None)],
            },
        ],
    }
}

#[test]
fn a_deployment_shows_its_phases_instances_events_and_health() {
    let health = |id: &str| (id == "i-blue").then(|| "healthy".to_string());
    let d = deployment_json(&view(), &Predictions::default(), T0 + 40_000, 1.0, &health);
    assert_eq!(d["deploymentId"], "d-PAGE1");
    assert_eq!(d["deploymentStatus"], "InProgress");
    let phases = d["phases"].as_array().unwrap();
    assert!(!phases.is_empty());
    assert!(phases
        .iter()
        .all(|p| p["predictedSeconds"].is_number() || p["phase"] == "Done"));
    let last = phases.last().unwrap();
    assert_eq!(last["done"], false, "{d}");
    let instances = d["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2);
    assert_eq!(instances[0]["fleet"], "Green");
    assert_eq!(instances[0]["events"].as_array().unwrap().len(), 3);
    assert_eq!(instances[0]["events"][2]["name"], "Install");
    assert_eq!(instances[0]["events"][2]["status"], "InProgress");
    assert_eq!(instances[0]["targetHealth"], Value::Null);
    assert_eq!(instances[1]["targetHealth"], "healthy");
}

#[test]
fn actual_seconds_are_scaled_to_aws_seconds() {
    let none = |_: &str| None;
    let real = deployment_json(&view(), &Predictions::default(), T0 + 40_000, 1.0, &none);
    let scaled = deployment_json(&view(), &Predictions::default(), T0 + 40_000, 0.1, &none);
    let first = |d: &Value| d["phases"][0]["actualSeconds"].as_f64().unwrap();
    assert!(first(&real) > 0.0);
    assert!(
        (first(&scaled) - first(&real) * 10.0).abs() < 0.11,
        "{real} {scaled}"
    );
    // A scale that is not positive is read as AWS time.
    let odd = deployment_json(&view(), &Predictions::default(), T0 + 40_000, 0.0, &none);
    assert_eq!(first(&odd), first(&real));
    assert_eq!(
        odd["phases"][0]["phase"],
        serde_json::to_value(Phase::Provisioning).unwrap()
    );
}

#[test]
fn the_live_page_is_self_contained_and_fetches_its_state() {
    let page = live_html();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("fetch(\"state.json\""));
    for id in [
        "id=\"deployments\"",
        "id=\"traffic\"",
        "id=\"targets\"",
        "id=\"notifications\"",
    ] {
        assert!(page.contains(id), "{id}");
    }
    // No external resource: nothing is loaded from another origin.
    for banned in ["http://", "https://", "src=", "<link", "@import"] {
        assert!(!page.contains(banned), "{banned}");
    }
}

#[test]
fn a_static_page_embeds_its_state_so_it_cannot_break_out_of_the_script() {
    let state = json!({
        "title": "history </script><script>alert(1)</script> & <!--",
        "deployments": [],
    });
    let page = static_html(&state);
    assert!(!page.contains(STATE_PLACEHOLDER));
    assert!(!page.contains("</script><script>alert(1)"));
    assert!(!page.contains("<!--"));
    let start =
        page.find("type=\"application/json\">").unwrap() + "type=\"application/json\">".len();
    let end = start + page[start..].find("</script>").unwrap();
    let back: Value = serde_json::from_str(&page[start..end]).unwrap();
    assert_eq!(back, state);
}
