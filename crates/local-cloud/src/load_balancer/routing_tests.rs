//! The served listener following moto's listener: weighted forwards, a
//! listener change in force after its propagation delay, and health checks
//! only for target groups a listener forwards to.

use super::*;

const STANDBY: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/demo-standby/fedcba9876543210";
const LISTENER: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/demo/1/80";

fn group(arn: &str, port: u16, targets: &[&str]) -> TargetGroupSnapshot {
    TargetGroupSnapshot {
        arn: arn.into(),
        name: arn.rsplit('/').nth(1).unwrap_or("tg").into(),
        port,
        health_check: settings(2, 2),
        deregistration_delay: Duration::from_secs(10),
        registrations: targets.iter().map(|t| (t.to_string(), port)).collect(),
    }
}

fn forward(pairs: &[(&str, u32)]) -> BTreeMap<String, routing::Forward> {
    BTreeMap::from([(
        LISTENER.to_string(),
        pairs.iter().map(|(a, w)| (a.to_string(), *w)).collect(),
    )])
}

fn state_in(rig: &Rig, arn: &str, id: &str) -> Option<TargetHealth> {
    rig.lb
        .target_health(arn)
        .into_iter()
        .find(|t| t.instance_id == id)
}

async fn wait_state_in(rig: &Rig, arn: &str, id: &str, state: TargetState) {
    let started = Instant::now();
    while state_in(rig, arn, id).map(|t| t.state) != Some(state) {
        assert!(
            started.elapsed() < WAIT,
            "{id} never became {state} in {arn}: {:?}",
            state_in(rig, arn, id)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_weighted_listener_keeps_standby_warm_and_switches_after_the_propagation_delay() {
    let rig = rig("weighted");
    // 10 s simulated → 200 ms real.
    rig.lb.set_listener_propagation(Duration::from_secs(10));
    let port = rig.fleet.app_port();
    for (id, version) in [("i-green", "v2"), ("i-blue", "v1")] {
        rig.fleet
            .launch_with_bundle(id, build_revision(RevisionKind::Good, version))
            .await
            .expect("launch");
    }
    rig.lb.apply_routes(forward(&[(ARN, 1)]));
    rig.lb.apply(vec![
        group(ARN, port, &["i-green"]),
        group(STANDBY, port, &["i-blue"]),
    ]);
    let listener = rig
        .lb
        .serve_moto_listener(LISTENER.to_string(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("listen");
    wait_state_in(&rig, ARN, "i-green", TargetState::Healthy).await;
    // Nothing forwards to the standby: its target is not health-checked.
    wait_state_in(&rig, STANDBY, "i-blue", TargetState::Unused).await;
    assert_eq!(
        state_in(&rig, STANDBY, "i-blue").and_then(|t| t.reason),
        Some("Target.NotInUse".to_string())
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        state_in(&rig, STANDBY, "i-blue").map(|t| t.state),
        Some(TargetState::Unused),
        "still not checked while nothing forwards to it"
    );
    assert_eq!(
        versions_through(listener, 6).await,
        BTreeMap::from([("200 v2".to_string(), 6)])
    );

    // Armed: {main 1, standby 0}. Routing unchanged, standby now checked.
    let armed = Instant::now();
    rig.lb.apply_routes(forward(&[(ARN, 1), (STANDBY, 0)]));
    assert_eq!(
        rig.lb.active_forward(LISTENER),
        Some(vec![(ARN.to_string(), 1)]),
        "the change is not in force before its propagation delay"
    );
    wait_state_in(&rig, STANDBY, "i-blue", TargetState::Healthy).await;
    assert!(
        armed.elapsed() >= Duration::from_millis(200),
        "standby checked before the listener change propagated: {:?}",
        armed.elapsed()
    );
    assert_eq!(
        versions_through(listener, 10).await,
        BTreeMap::from([("200 v2".to_string(), 10)]),
        "weight 0 gets no request"
    );

    // Switched: {main 0, standby 1}: green still answers until the change is
    // in force, then only blue.
    let switched = Instant::now();
    rig.lb.apply_routes(forward(&[(ARN, 0), (STANDBY, 1)]));
    let r = get(listener, "/version", Duration::from_secs(2))
        .await
        .expect("answer");
    assert_eq!(r.text(), "v2", "the old routing right after ModifyListener");
    while rig.lb.active_forward(LISTENER)
        != Some(vec![(ARN.to_string(), 0), (STANDBY.to_string(), 1)])
    {
        assert!(switched.elapsed() < WAIT);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(switched.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        versions_through(listener, 10).await,
        BTreeMap::from([("200 v1".to_string(), 10)])
    );
    // Both groups stay health-checked (main has weight 0 but is named).
    assert_eq!(
        state_in(&rig, ARN, "i-green").map(|t| t.state),
        Some(TargetState::Healthy)
    );

    // Put back: forward to main alone; the standby is detached again.
    rig.lb.apply_routes(forward(&[(ARN, 1)]));
    wait_state_in(&rig, STANDBY, "i-blue", TargetState::Unused).await;
    assert_eq!(
        versions_through(listener, 4).await,
        BTreeMap::from([("200 v2".to_string(), 4)])
    );
}

/// "ALB listener creation" (crate::emulated): a listener seen for the first
/// time waits the listener change delay like an update, the harsher reading
/// of what AWS documents for updates only.
#[tokio::test]
async fn a_new_listener_routes_and_health_checks_only_after_the_propagation_delay() {
    let rig = rig("new-listener");
    // 10 s simulated → 200 ms real.
    rig.lb.set_listener_propagation(Duration::from_secs(10));
    rig.fleet
        .launch_with_bundle("i-green", build_revision(RevisionKind::Good, "v2"))
        .await
        .expect("launch");
    let port = rig.fleet.app_port();
    let created = Instant::now();
    rig.lb.apply_routes(forward(&[(ARN, 1)]));
    rig.lb.apply(vec![group(ARN, port, &["i-green"])]);
    let listener = rig
        .lb
        .serve_moto_listener(LISTENER.to_string(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("listen");
    assert_eq!(
        rig.lb.active_forward(LISTENER),
        Some(Vec::new()),
        "a new listener routes nowhere before its propagation delay"
    );
    let early = get(listener, "/version", Duration::from_secs(2))
        .await
        .expect("an answer");
    if created.elapsed() < Duration::from_millis(200) {
        assert_eq!(early.status, 503, "no target group in force yet");
    }
    wait_state_in(&rig, ARN, "i-green", TargetState::Healthy).await;
    assert!(
        created.elapsed() >= Duration::from_millis(200),
        "health checked before the new listener was in force: {:?}",
        created.elapsed()
    );
    assert_eq!(
        rig.lb.route_history(LISTENER).len(),
        1,
        "the creation is the listener's first change"
    );
    assert_eq!(
        versions_through(listener, 4).await,
        BTreeMap::from([("200 v2".to_string(), 4)])
    );
}

#[tokio::test]
async fn a_listener_the_emulator_does_not_know_answers_503() {
    let rig = rig("unknown-listener");
    rig.lb.apply_routes(BTreeMap::new());
    let listener = rig
        .lb
        .serve_moto_listener(LISTENER.to_string(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("listen");
    let r = get(listener, "/version", Duration::from_secs(2))
        .await
        .expect("503");
    assert_eq!(r.status, 503);
}
