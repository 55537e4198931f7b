use super::*;
use crate::loadgen::get;
use crate::revisions::{build_revision, RevisionKind};
use std::path::PathBuf;

/// Scale for these tests: 5 s interval → 100 ms, 2 s timeout → 40 ms.
const SCALE: f64 = 0.02;
const ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/demo-tg/0123456789abcdef";
const WAIT: Duration = Duration::from_secs(10);

fn unused_client() -> aws_sdk_elasticloadbalancingv2::Client {
    client_for("http://127.0.0.1:9")
}

fn client_for(endpoint: &str) -> aws_sdk_elasticloadbalancingv2::Client {
    use aws_sdk_elasticloadbalancingv2::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_elasticloadbalancingv2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            "AKIDLOCAL",
            "local-secret",
            None,
            None,
            "test",
        ))
        .build();
    aws_sdk_elasticloadbalancingv2::Client::from_conf(config)
}

struct Rig {
    fleet: Arc<Fleet>,
    lb: Arc<LoadBalancer>,
    dir: PathBuf,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.lb.shutdown();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rig(name: &str) -> Rig {
    let dir = std::env::temp_dir().join(format!("gl-lb-{name}-{}", std::process::id()));
    let scale = TimeScale::new(SCALE);
    let fleet = Fleet::on_reserved_port(scale, dir.clone()).expect("port");
    let lb = LoadBalancer::new(fleet.clone(), scale, unused_client());
    // Most tests here are about health checks and draining: no propagation
    // delay unless a test asks for one.
    lb.set_propagation(Propagation::INSTANT);
    Rig { fleet, lb, dir }
}

fn settings(healthy: u32, unhealthy: u32) -> HealthCheckSettings {
    HealthCheckSettings {
        protocol: "HTTP".into(),
        port: None,
        path: "/health".into(),
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
        healthy_threshold: healthy,
        unhealthy_threshold: unhealthy,
        matcher: "200".into(),
    }
}

impl Rig {
    fn register(&self, targets: &[&str], hc: HealthCheckSettings, delay_secs: u64) {
        let port = self.fleet.app_port();
        self.lb.apply(vec![TargetGroupSnapshot {
            arn: ARN.into(),
            name: "demo-tg".into(),
            port,
            health_check: hc,
            deregistration_delay: Duration::from_secs(delay_secs),
            registrations: targets.iter().map(|t| (t.to_string(), port)).collect(),
        }]);
    }

    fn state(&self, id: &str) -> Option<TargetHealth> {
        self.lb
            .target_health(ARN)
            .into_iter()
            .find(|t| t.instance_id == id)
    }

    async fn wait_state(&self, id: &str, state: TargetState) -> TargetHealth {
        let started = Instant::now();
        loop {
            if let Some(t) = self.state(id) {
                if t.state == state {
                    return t;
                }
            }
            assert!(
                started.elapsed() < WAIT,
                "{id} never became {state}: {:?}",
                self.state(id)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn wait_gone(&self, id: &str) {
        let started = Instant::now();
        while self.state(id).is_some() {
            assert!(started.elapsed() < WAIT, "{id} never finished draining");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn states(&self, id: &str) -> Vec<(TargetState, Option<String>)> {
        self.lb
            .target_history(ARN, id)
            .into_iter()
            .map(|t| (t.state, t.reason))
            .collect()
    }
}

fn s(state: TargetState, reason: Option<&str>) -> (TargetState, Option<String>) {
    (state, reason.map(str::to_string))
}

#[test]
fn matcher_follows_alb_syntax() {
    assert!(matcher_accepts("200", 200));
    assert!(!matcher_accepts("200", 204));
    assert!(matcher_accepts("200,202", 202));
    assert!(matcher_accepts("200-299", 250));
    assert!(!matcher_accepts("200-299", 301));
    assert!(matcher_accepts("200, 300-302", 301));
}

#[tokio::test]
async fn initial_then_healthy_after_healthy_threshold_successes() {
    let rig = rig("healthy");
    rig.fleet
        .launch_with_bundle("i-a", build_revision(RevisionKind::Good, "v1"))
        .await
        .expect("launch");
    let registered = Instant::now();
    rig.register(&["i-a"], settings(3, 2), 30);
    let first = rig.state("i-a").expect("registered");
    assert_eq!(first.state, TargetState::Initial);
    assert_eq!(first.reason.as_deref(), Some("Elb.RegistrationInProgress"));
    assert_eq!(
        first.description.as_deref(),
        Some("Target registration is in progress")
    );
    let healthy = rig.wait_state("i-a", TargetState::Healthy).await;
    assert_eq!((healthy.reason, healthy.description), (None, None));
    assert_eq!(
        rig.states("i-a"),
        vec![
            s(TargetState::Initial, Some("Elb.RegistrationInProgress")),
            s(TargetState::Initial, Some("Elb.InitialHealthChecking")),
            s(TargetState::Healthy, None),
        ]
    );
    // Three successes = checks at 0, 1 and 2 intervals (100 ms each, real).
    assert!(
        registered.elapsed() >= Duration::from_millis(200),
        "{:?}",
        registered.elapsed()
    );
}

#[tokio::test]
async fn a_500_health_endpoint_makes_the_target_unhealthy() {
    let rig = rig("unhealthy");
    rig.fleet
        .launch_with_bundle("i-sick", build_revision(RevisionKind::FailingHealth, "v2"))
        .await
        .expect("launch");
    rig.register(&["i-sick"], settings(2, 2), 30);
    let t = rig.wait_state("i-sick", TargetState::Unhealthy).await;
    assert_eq!(t.reason.as_deref(), Some("Target.ResponseCodeMismatch"));
    assert_eq!(
        t.description.as_deref(),
        Some("Health checks failed with these codes: [500]")
    );
    assert_eq!(
        rig.states("i-sick"),
        vec![
            s(TargetState::Initial, Some("Elb.RegistrationInProgress")),
            s(TargetState::Initial, Some("Elb.InitialHealthChecking")),
            s(TargetState::Unhealthy, Some("Target.ResponseCodeMismatch")),
        ]
    );
}

#[tokio::test]
async fn refused_then_recovered_target_goes_unhealthy_then_healthy() {
    let rig = rig("recover");
    rig.register(&["i-late"], settings(2, 2), 30);
    let t = rig.wait_state("i-late", TargetState::Unhealthy).await;
    assert_eq!(t.reason.as_deref(), Some("Target.FailedHealthChecks"));
    assert_eq!(t.description.as_deref(), Some("Health checks failed"));
    rig.fleet
        .launch_with_bundle("i-late", build_revision(RevisionKind::Good, "v1"))
        .await
        .expect("launch");
    rig.wait_state("i-late", TargetState::Healthy).await;
    let states = rig.states("i-late");
    assert_eq!(states.last(), Some(&s(TargetState::Healthy, None)));
    assert!(
        states.contains(&s(
            TargetState::Unhealthy,
            Some("Target.FailedHealthChecks")
        )),
        "{states:?}"
    );
}

#[tokio::test]
async fn a_health_check_slower_than_the_timeout_is_target_timeout() {
    let rig = rig("timeout");
    // Slow: /health takes 1 s (simulated); a 0.5 s timeout cannot wait for it.
    rig.fleet
        .launch_with_bundle("i-slow", build_revision(RevisionKind::Slow, "v3"))
        .await
        .expect("launch");
    let mut hc = settings(2, 2);
    hc.timeout = Duration::from_millis(500);
    rig.register(&["i-slow"], hc, 30);
    let t = rig.wait_state("i-slow", TargetState::Unhealthy).await;
    assert_eq!(t.reason.as_deref(), Some("Target.Timeout"));
    assert_eq!(t.description.as_deref(), Some("Request timed out"));
    // Within ALB's default-ish 2 s timeout the slow revision is healthy: settings
    // changes apply from the next check on.
    rig.register(&["i-slow"], settings(2, 2), 30);
    rig.wait_state("i-slow", TargetState::Healthy).await;
}

#[tokio::test]
async fn a_healthy_target_turns_unhealthy_after_unhealthy_threshold_failures() {
    let rig = rig("flip");
    rig.fleet
        .launch_with_bundle("i-a", build_revision(RevisionKind::Good, "v1"))
        .await
        .expect("launch");
    rig.register(&["i-a"], settings(2, 3), 30);
    rig.wait_state("i-a", TargetState::Healthy).await;
    rig.fleet.terminate("i-a").await;
    let t = rig.wait_state("i-a", TargetState::Unhealthy).await;
    assert_eq!(t.reason.as_deref(), Some("Target.FailedHealthChecks"));
    assert_eq!(
        rig.states("i-a")[2..],
        [
            s(TargetState::Healthy, None),
            s(TargetState::Unhealthy, Some("Target.FailedHealthChecks"))
        ]
    );
}

#[tokio::test]
async fn deregistered_target_drains_for_the_delay_and_completes_early_without_in_flight() {
    let rig = rig("drain");
    rig.fleet
        .launch_with_bundle("i-blue", build_revision(RevisionKind::Good, "v1"))
        .await
        .expect("launch");
    rig.register(&["i-blue"], settings(2, 2), 20); // 20 s → 400 ms real
    rig.wait_state("i-blue", TargetState::Healthy).await;
    let deregistered = Instant::now();
    rig.register(&[], settings(2, 2), 20);
    let t = rig.state("i-blue").expect("draining");
    assert_eq!(t.state, TargetState::Draining);
    assert_eq!(t.reason.as_deref(), Some("Target.DeregistrationInProgress"));
    assert_eq!(
        t.description.as_deref(),
        Some("Target deregistration is in progress")
    );
    // No in-flight requests: the deregistration completes at once...
    let started = Instant::now();
    while rig.lb.drain_complete(ARN, "i-blue") != Some(true) {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "drain never completed"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(
        deregistered.elapsed() < Duration::from_millis(300),
        "completed early: {:?}",
        deregistered.elapsed()
    );
    // ...but, as on ALB, it is shown draining until the delay expires, then removed.
    assert_eq!(
        rig.state("i-blue").map(|t| t.state),
        Some(TargetState::Draining)
    );
    rig.wait_gone("i-blue").await;
    assert!(
        deregistered.elapsed() >= Duration::from_millis(380),
        "{:?}",
        deregistered.elapsed()
    );
    assert_eq!(
        rig.states("i-blue")[3..],
        [
            s(
                TargetState::Draining,
                Some("Target.DeregistrationInProgress")
            ),
            s(TargetState::Unused, Some("Target.NotRegistered")),
        ]
    );
}

#[tokio::test]
async fn end_early_display_removes_an_idle_target_at_once_but_waits_for_in_flight() {
    let rig = rig("early");
    rig.lb.set_drain_display(DrainDisplay::EndEarly);
    rig.fleet
        .launch_with_bundle("i-a", build_revision(RevisionKind::Good, "v1"))
        .await
        .expect("launch");
    rig.fleet
        .launch_with_bundle("i-b", build_revision(RevisionKind::Good, "v1"))
        .await
        .expect("launch");
    rig.register(&["i-a", "i-b"], settings(2, 2), 300); // 300 s → 6 s real
    rig.wait_state("i-a", TargetState::Healthy).await;
    rig.wait_state("i-b", TargetState::Healthy).await;
    // Hold an in-flight request on i-b (what the listener does while forwarding).
    let held = loop {
        let (id, _, counter) = pick(&rig.lb.shared, ARN).expect("a target");
        let guard = InFlight(counter);
        if id == "i-b" {
            break guard;
        }
    };
    assert_eq!(rig.lb.in_flight(ARN, "i-b"), 1);
    let deregistered = Instant::now();
    rig.register(&[], settings(2, 2), 300);
    rig.wait_gone("i-a").await;
    assert!(
        deregistered.elapsed() < Duration::from_secs(2),
        "idle target ended early"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        rig.state("i-b").map(|t| t.state),
        Some(TargetState::Draining)
    );
    assert_eq!(rig.lb.drain_complete(ARN, "i-b"), Some(false));
    drop(held);
    rig.wait_gone("i-b").await;
    assert!(deregistered.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn reregistering_a_draining_target_starts_over_as_initial() {
    let rig = rig("rereg");
    rig.fleet
        .launch_with_bundle("i-a", build_revision(RevisionKind::Good, "v1"))
        .await
        .expect("launch");
    rig.register(&["i-a"], settings(2, 2), 300);
    rig.wait_state("i-a", TargetState::Healthy).await;
    rig.register(&[], settings(2, 2), 300);
    assert_eq!(
        rig.state("i-a").map(|t| t.state),
        Some(TargetState::Draining)
    );
    rig.register(&["i-a"], settings(2, 2), 300);
    let t = rig.state("i-a").expect("registered");
    assert_eq!(
        (t.state, t.reason.as_deref()),
        (TargetState::Initial, Some("Elb.RegistrationInProgress"))
    );
    rig.wait_state("i-a", TargetState::Healthy).await;
}

async fn versions_through(listener: SocketAddr, n: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let r = get(listener, "/version", Duration::from_secs(2))
            .await
            .expect("listener answers");
        *seen
            .entry(format!("{} {}", r.status, r.text()))
            .or_insert(0) += 1;
    }
    seen
}

#[tokio::test]
async fn listener_forwards_only_to_healthy_targets_and_fails_open() {
    let rig = rig("listener");
    let listener = rig
        .lb
        .serve_listener(ARN.to_string(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("listen");
    // Unknown/empty target group: 503 like ALB with no registered targets.
    let r = get(listener, "/version", Duration::from_secs(2))
        .await
        .expect("503");
    assert_eq!(r.status, 503);
    assert!(r.text().contains("503 Service Temporarily Unavailable"));

    rig.fleet
        .launch_with_bundle("i-good", build_revision(RevisionKind::Good, "v1"))
        .await
        .expect("launch");
    rig.fleet
        .launch_with_bundle("i-sick", build_revision(RevisionKind::FailingHealth, "v2"))
        .await
        .expect("launch");
    rig.register(&["i-good", "i-sick"], settings(2, 2), 30);
    rig.wait_state("i-good", TargetState::Healthy).await;
    rig.wait_state("i-sick", TargetState::Unhealthy).await;
    // Only the healthy one gets traffic (the unhealthy one answers /version fine, so this is routing).
    let seen = versions_through(listener, 20).await;
    assert_eq!(seen, BTreeMap::from([("200 v1".to_string(), 20)]));
    // The forwarded request carries ALB's X-Forwarded-* headers.
    assert_eq!(rig.lb.in_flight(ARN, "i-good"), 0);

    // No healthy target left: fail open to the unhealthy one.
    rig.register(&["i-sick"], settings(2, 2), 30);
    let seen = versions_through(listener, 6).await;
    assert_eq!(seen, BTreeMap::from([("200 v2".to_string(), 6)]));

    // Two healthy targets: round robin over both.
    rig.fleet
        .launch_with_bundle("i-good2", build_revision(RevisionKind::Good, "v1b"))
        .await
        .expect("launch");
    rig.register(&["i-good", "i-good2"], settings(2, 2), 30);
    rig.wait_state("i-good", TargetState::Healthy).await;
    rig.wait_state("i-good2", TargetState::Healthy).await;
    let seen = versions_through(listener, 10).await;
    assert_eq!(
        seen,
        BTreeMap::from([("200 v1".to_string(), 5), ("200 v1b".to_string(), 5)])
    );

    // A registered target that refuses the connection answers 502 (fail-open to a dead target).
    rig.register(&["i-gone"], settings(2, 2), 30);
    rig.wait_state("i-gone", TargetState::Unhealthy).await;
    let r = get(listener, "/version", Duration::from_secs(2))
        .await
        .expect("502");
    assert_eq!(r.status, 502);
}

#[tokio::test]
async fn listener_keeps_serving_through_a_blue_green_swap() {
    let rig = rig("swap");
    let listener = rig
        .lb
        .serve_listener(ARN.to_string(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("listen");
    rig.fleet
        .launch_with_bundle("i-blue", build_revision(RevisionKind::Good, "v1"))
        .await
        .expect("launch");
    rig.register(&["i-blue"], settings(2, 2), 10);
    rig.wait_state("i-blue", TargetState::Healthy).await;
    let load = crate::loadgen::start_load(
        &format!("http://{listener}/version"),
        100,
        Duration::from_secs(20),
    );
    rig.fleet
        .launch_with_bundle("i-green", build_revision(RevisionKind::Good, "v2"))
        .await
        .expect("launch");
    rig.register(&["i-blue", "i-green"], settings(2, 2), 10);
    rig.wait_state("i-green", TargetState::Healthy).await;
    rig.register(&["i-green"], settings(2, 2), 10);
    rig.wait_gone("i-blue").await;
    rig.fleet.terminate("i-blue").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let report = load.stop().await;
    println!("load through the swap: {report}");
    assert_eq!(report.failed, 0, "{report}");
    assert!(report.sent > 10, "{report}");
    assert!(
        report.by_version.contains_key("v1") && report.by_version.contains_key("v2"),
        "{report}"
    );
}

/// Serves `describe_target_health_response` over HTTP so the real SDK parses it.
async fn xml_endpoint(lb: Arc<LoadBalancer>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let lb = lb.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let lb = lb.clone();
                    async move {
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let form: Vec<(String, String)> =
                            form_urlencoded::parse(&body).into_owned().collect();
                        let (status, xml) = lb.describe_target_health_response(&form);
                        let mut response = Response::new(Full::new(Bytes::from(xml)));
                        *response.status_mut() = StatusCode::from_u16(status).expect("status");
                        response
                            .headers_mut()
                            .insert("content-type", "text/xml".parse().expect("header"));
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn describe_target_health_xml_is_what_the_sdk_parses() {
    use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata;
    use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetHealthStateEnum};
    let rig = rig("xml");
    rig.fleet
        .launch_with_bundle("i-sick", build_revision(RevisionKind::FailingHealth, "v2"))
        .await
        .expect("launch");
    rig.register(&["i-sick", "i-new"], settings(2, 2), 30);
    rig.wait_state("i-sick", TargetState::Unhealthy).await;

    let (status, xml) = rig.lb.describe_target_health_response(&[
        ("Action".into(), "DescribeTargetHealth".into()),
        ("TargetGroupArn".into(), ARN.into()),
    ]);
    assert_eq!(status, 200);
    for part in ["<DescribeTargetHealthResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">", "<DescribeTargetHealthResult>", "<TargetHealthDescriptions>", "<member>", "<Target>", "<HealthCheckPort>", "<TargetHealth>", "<ResponseMetadata>", "<RequestId>"] {
        assert!(xml.contains(part), "{part} in {xml}");
    }

    let client = client_for(&format!("http://{}", xml_endpoint(rig.lb.clone()).await));
    let out = client
        .describe_target_health()
        .target_group_arn(ARN)
        .send()
        .await
        .expect("parsed by the SDK");
    let descriptions = out.target_health_descriptions.unwrap_or_default();
    assert_eq!(descriptions.len(), 2);
    let port = i32::from(rig.fleet.app_port());
    let sick = descriptions
        .iter()
        .find(|d| d.target.as_ref().and_then(|t| t.id.as_deref()) == Some("i-sick"))
        .expect("i-sick");
    assert_eq!(sick.target.as_ref().and_then(|t| t.port), Some(port));
    assert_eq!(
        sick.health_check_port.as_deref(),
        Some(port.to_string().as_str())
    );
    let health = sick.target_health.as_ref().expect("health");
    assert_eq!(health.state, Some(TargetHealthStateEnum::Unhealthy));
    assert_eq!(
        health.reason.as_ref().map(|r| r.as_str()),
        Some("Target.ResponseCodeMismatch")
    );
    assert_eq!(
        health.description.as_deref(),
        Some("Health checks failed with these codes: [500]")
    );

    // Naming targets: a registered one, and one that is not registered (unused).
    let out = client
        .describe_target_health()
        .target_group_arn(ARN)
        .targets(TargetDescription::builder().id("i-sick").build())
        .targets(
            TargetDescription::builder()
                .id("i-other")
                .port(8080)
                .build(),
        )
        .send()
        .await
        .expect("parsed");
    let d = out.target_health_descriptions.unwrap_or_default();
    assert_eq!(d.len(), 2);
    let other = d[1].target_health.as_ref().expect("health");
    assert_eq!(other.state, Some(TargetHealthStateEnum::Unused));
    assert_eq!(
        other.reason.as_ref().map(|r| r.as_str()),
        Some("Target.NotRegistered")
    );
    assert_eq!(d[1].target.as_ref().and_then(|t| t.port), Some(8080));

    // Unknown target group: TargetGroupNotFound, 400, ErrorResponse XML.
    let err = client
        .describe_target_health()
        .target_group_arn(
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/nope/0000000000000000",
        )
        .send()
        .await
        .expect_err("unknown group");
    let service = err.into_service_error();
    assert!(service.is_target_group_not_found_exception(), "{service:?}");
    assert_eq!(service.code(), Some("TargetGroupNotFound"));
    assert_eq!(
        service.message(),
        Some("One or more target groups not found")
    );
    let (status, xml) = rig
        .lb
        .describe_target_health_response(&[("TargetGroupArn".into(), "arn:nope".into())]);
    assert_eq!(status, 400);
    assert!(
        xml.starts_with("<ErrorResponse") && xml.contains("<Code>TargetGroupNotFound</Code>"),
        "{xml}"
    );
    let (status, xml) = rig.lb.describe_target_health_response(&[]);
    assert_eq!(status, 400);
    assert!(xml.contains("<Code>ValidationError</Code>"), "{xml}");
}

#[path = "moto_tests.rs"]
mod moto_tests;

#[tokio::test]
async fn a_new_target_is_not_checked_before_its_registration_propagates() {
    let rig = rig("reg-latency");
    // 10 s → 200 ms real; interval 5 s → 100 ms; healthy threshold 2.
    rig.lb.set_propagation(Propagation {
        registration: Duration::from_secs(10),
        deregistration: Duration::ZERO,
    });
    rig.fleet
        .launch_with_bundle("i-a", build_revision(RevisionKind::Good, "v1"))
        .await
        .expect("launch");
    let registered = Instant::now();
    rig.register(&["i-a"], settings(2, 2), 30);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let t = rig.state("i-a").expect("registered");
    assert_eq!(
        (t.state, t.reason.as_deref()),
        (TargetState::Initial, Some("Elb.RegistrationInProgress")),
        "no health check before the registration propagated"
    );
    rig.wait_state("i-a", TargetState::Healthy).await;
    // Propagation (200 ms) + checks at 0 and 1 interval (100 ms).
    assert!(
        registered.elapsed() >= Duration::from_millis(300),
        "{:?}",
        registered.elapsed()
    );
}

#[tokio::test]
async fn a_deregistered_target_gets_new_requests_until_the_deregistration_propagates() {
    let rig = rig("dereg-latency");
    let listener = rig
        .lb
        .serve_listener(ARN.to_string(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("listen");
    rig.fleet
        .launch_with_bundle("i-blue", build_revision(RevisionKind::Good, "v1"))
        .await
        .expect("launch");
    rig.fleet
        .launch_with_bundle("i-green", build_revision(RevisionKind::Good, "v2"))
        .await
        .expect("launch");
    rig.register(&["i-blue", "i-green"], settings(2, 2), 300);
    rig.wait_state("i-blue", TargetState::Healthy).await;
    rig.wait_state("i-green", TargetState::Healthy).await;
    // 50 s → 1 s real.
    rig.lb.set_propagation(Propagation {
        registration: Duration::ZERO,
        deregistration: Duration::from_secs(50),
    });
    rig.register(&["i-green"], settings(2, 2), 300);
    assert_eq!(
        rig.state("i-blue").map(|t| t.state),
        Some(TargetState::Draining)
    );
    // Still routed: both versions answer right after DeregisterTargets.
    let seen = versions_through(listener, 10).await;
    assert_eq!(
        seen,
        BTreeMap::from([("200 v1".to_string(), 5), ("200 v2".to_string(), 5)])
    );
    assert_eq!(rig.lb.drain_complete(ARN, "i-blue"), Some(false));
    // Once propagated, only green; the drain then completes.
    let started = Instant::now();
    while rig.lb.drain_complete(ARN, "i-blue") != Some(true) {
        assert!(started.elapsed() < WAIT, "drain never completed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seen = versions_through(listener, 6).await;
    assert_eq!(seen, BTreeMap::from([("200 v2".to_string(), 6)]));
}

#[tokio::test]
async fn no_fail_open_to_initial_targets() {
    let rig = rig("no-fail-open");
    let listener = rig
        .lb
        .serve_listener(ARN.to_string(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("listen");
    rig.fleet
        .launch_with_bundle("i-sick", build_revision(RevisionKind::FailingHealth, "v2"))
        .await
        .expect("launch");
    rig.fleet
        .launch_with_bundle("i-new", build_revision(RevisionKind::Good, "v1"))
        .await
        .expect("launch");
    rig.register(&["i-sick"], settings(2, 2), 30);
    rig.wait_state("i-sick", TargetState::Unhealthy).await;
    // A long registration keeps i-new `initial`: the group no longer holds
    // only unhealthy targets, so no fail-open and nothing to route to.
    rig.lb.set_propagation(Propagation {
        registration: Duration::from_secs(3600),
        deregistration: Duration::ZERO,
    });
    rig.register(&["i-sick", "i-new"], settings(2, 2), 30);
    assert_eq!(
        rig.state("i-new").map(|t| t.state),
        Some(TargetState::Initial)
    );
    let r = get(listener, "/version", Duration::from_secs(2))
        .await
        .expect("503");
    assert_eq!(r.status, 503);
    // Only initial targets: 503 too (never routed to before a health check).
    rig.register(&["i-new"], settings(2, 2), 30);
    let r = get(listener, "/version", Duration::from_secs(2))
        .await
        .expect("503");
    assert_eq!(r.status, 503);
}

/// DescribeTargetHealth through the SDK: (state, reason) of `id`.
async fn described(lb: &Arc<LoadBalancer>, id: &str) -> (Option<String>, Option<String>) {
    let client = client_for(&format!("http://{}", xml_endpoint(lb.clone()).await));
    let out = client
        .describe_target_health()
        .target_group_arn(ARN)
        .send()
        .await
        .expect("parsed by the SDK");
    out.target_health_descriptions()
        .iter()
        .find(|d| d.target().and_then(|t| t.id()) == Some(id))
        .and_then(|d| d.target_health())
        .map(|h| {
            (
                h.state().map(|s| s.as_str().to_string()),
                h.reason().map(|r| r.as_str().to_string()),
            )
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_killed_instance_refuses_connections_and_its_target_turns_unhealthy() {
    let rig = rig("kill");
    rig.fleet
        .launch_with_bundle("i-dies", build_revision(RevisionKind::Good, "v1"))
        .await
        .expect("launch");
    rig.register(&["i-dies"], settings(2, 2), 30);
    rig.wait_state("i-dies", TargetState::Healthy).await;
    let addr = rig.fleet.socket_of("i-dies");
    let before = get(addr, "/version", Duration::from_secs(2)).await;
    assert!(before.as_ref().is_ok_and(|r| r.status == 200), "{before:?}");

    assert!(rig.fleet.kill("i-dies").await, "the fleet knows i-dies");
    assert!(rig.fleet.is_dead("i-dies"));
    let after = get(addr, "/version", Duration::from_secs(2)).await;
    assert!(
        matches!(after, Err(crate::loadgen::GetError::Connect(_))),
        "a dead instance refuses connections: {after:?}"
    );
    let t = rig.wait_state("i-dies", TargetState::Unhealthy).await;
    assert_eq!(t.reason.as_deref(), Some("Target.FailedHealthChecks"));
    assert_eq!(
        described(&rig.lb, "i-dies").await,
        (
            Some("unhealthy".to_string()),
            Some("Target.FailedHealthChecks".to_string())
        )
    );
    // An unknown instance cannot be killed.
    assert!(!rig.fleet.kill("i-unknown").await);
}

#[tokio::test]
async fn a_hung_health_endpoint_times_out_and_its_target_turns_unhealthy() {
    let rig = rig("hang-health");
    rig.fleet
        .launch_with_bundle("i-hangs", build_revision(RevisionKind::Good, "v1"))
        .await
        .expect("launch");
    rig.register(&["i-hangs"], settings(2, 2), 30);
    rig.wait_state("i-hangs", TargetState::Healthy).await;
    let addr = rig.fleet.socket_of("i-hangs");

    assert!(rig.fleet.set_health_hang("i-hangs", true));
    let health = get(addr, "/health", Duration::from_millis(300)).await;
    assert!(
        matches!(health, Err(crate::loadgen::GetError::Timeout)),
        "/health never answers: {health:?}"
    );
    // Only the health endpoint hangs: the app still serves.
    let version = get(addr, "/version", Duration::from_secs(2)).await;
    assert!(
        version.as_ref().is_ok_and(|r| r.status == 200),
        "{version:?}"
    );
    let t = rig.wait_state("i-hangs", TargetState::Unhealthy).await;
    assert_eq!(t.reason.as_deref(), Some("Target.Timeout"));
    assert_eq!(
        described(&rig.lb, "i-hangs").await,
        (
            Some("unhealthy".to_string()),
            Some("Target.Timeout".to_string())
        )
    );

    // Cleared, the target passes its healthy threshold again.
    assert!(rig.fleet.set_health_hang("i-hangs", false));
    rig.wait_state("i-hangs", TargetState::Healthy).await;
    // An unknown instance cannot be made to hang.
    assert!(!rig.fleet.set_health_hang("i-unknown", true));
}

#[path = "routing_tests.rs"]
mod routing_tests;
