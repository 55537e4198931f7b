//! refresh_all against a real moto server (from the project venv, `.venv`,
//! which scripts/test.sh creates). Loopback only.

use super::*;
use std::process::Stdio;

struct Moto {
    child: tokio::process::Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn start_moto() -> Moto {
    // The project venv; GREENLIGHT_VENV overrides (e.g. when this file is built elsewhere).
    let venv = std::env::var_os("GREENLIGHT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv"));
    let bin = venv.join("bin/moto_server");
    assert!(
        bin.is_file(),
        "{} is missing: create the project venv first (scripts/test.sh does, or: python3 -m venv .venv && .venv/bin/pip install 'moto[server]==5.2.5')",
        bin.display()
    );
    let port = crate::moto::free_loopback_port().expect("free port");
    let child = tokio::process::Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("moto_server starts");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let started = Instant::now();
    while get(addr, "/moto-api/", Duration::from_secs(2))
        .await
        .map(|r| r.status)
        .ok()
        != Some(200)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "moto did not start within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Moto {
        child,
        endpoint: format!("http://{addr}"),
    }
}

/// Every `<tag>` value of an EC2 query API answer to `action`.
async fn ec2_values(moto: &Moto, action: &str, tag: &str) -> Vec<String> {
    let addr: SocketAddr = moto
        .endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let request = Request::post("/")
        .header("host", addr.to_string())
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDLOCAL/20250101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(Full::new(Bytes::from(format!("Action={action}&Version=2016-11-15"))))
        .expect("request");
    let xml = send(addr, request, Duration::from_secs(10))
        .await
        .expect(action)
        .text();
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut values = Vec::new();
    let mut rest = xml.as_str();
    while let Some(start) = rest.find(&open) {
        let from = start + open.len();
        let Some(len) = rest[from..].find(&close) else {
            break;
        };
        values.push(rest[from..from + len].to_string());
        rest = &rest[from + len..];
    }
    values
}

/// The default VPC's id, through EC2's query API (the only EC2 call needed here).
async fn default_vpc(moto: &Moto) -> String {
    let addr: SocketAddr = moto
        .endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let request = Request::post("/")
        .header("host", addr.to_string())
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDLOCAL/20250101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(Full::new(Bytes::from_static(b"Action=DescribeVpcs&Version=2016-11-15")))
        .expect("request");
    let answer = send(addr, request, Duration::from_secs(10))
        .await
        .expect("DescribeVpcs");
    let xml = answer.text();
    let start = xml.find("<vpcId>").expect("a vpc") + "<vpcId>".len();
    let end = xml[start..].find("</vpcId>").expect("vpc end") + start;
    xml[start..end].to_string()
}

#[tokio::test]
async fn refresh_all_follows_moto_registrations_settings_and_attributes() {
    use aws_sdk_elasticloadbalancingv2::types::{
        Matcher, ProtocolEnum, TargetDescription, TargetGroupAttribute,
    };
    let moto = start_moto().await;
    let rig = rig("moto");
    let client = client_for(&moto.endpoint);
    let lb = LoadBalancer::new(rig.fleet.clone(), TimeScale::new(SCALE), client.clone());
    let port = i32::from(rig.fleet.app_port());

    let created = client
        .create_target_group()
        .name("demo-tg")
        .protocol(ProtocolEnum::Http)
        .port(port)
        .vpc_id(default_vpc(&moto).await)
        .health_check_path("/health")
        .health_check_interval_seconds(5)
        .health_check_timeout_seconds(2)
        .healthy_threshold_count(2)
        .unhealthy_threshold_count(2)
        .matcher(Matcher::builder().http_code("200").build())
        .send()
        .await
        .expect("CreateTargetGroup");
    let arn = created.target_groups.unwrap_or_default()[0]
        .target_group_arn
        .clone()
        .expect("arn");
    client
        .modify_target_group_attributes()
        .target_group_arn(&arn)
        .attributes(
            TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value("10")
                .build(),
        )
        .send()
        .await
        .expect("ModifyTargetGroupAttributes");

    // ALB health-checks a target group only while a listener forwards to it.
    let subnets = ec2_values(&moto, "DescribeSubnets", "subnetId").await;
    assert!(subnets.len() >= 2, "default subnets: {subnets:?}");
    let alb = client
        .create_load_balancer()
        .name("demo-alb")
        .subnets(&subnets[0])
        .subnets(&subnets[1])
        .send()
        .await
        .expect("CreateLoadBalancer");
    let alb_arn = alb.load_balancers()[0]
        .load_balancer_arn()
        .expect("lb arn")
        .to_string();
    client
        .create_listener()
        .load_balancer_arn(&alb_arn)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .default_actions(
            aws_sdk_elasticloadbalancingv2::types::Action::builder()
                .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                .target_group_arn(&arn)
                .build(),
        )
        .send()
        .await
        .expect("CreateListener");

    lb.refresh_all().await.expect("refresh");
    assert_eq!(lb.target_group_arns(), vec![arn.clone()]);
    let (hc, delay) = lb.settings(&arn).expect("settings");
    assert_eq!(
        (hc.path.as_str(), hc.interval, hc.timeout),
        ("/health", Duration::from_secs(5), Duration::from_secs(2))
    );
    assert_eq!(
        (
            hc.healthy_threshold,
            hc.unhealthy_threshold,
            hc.matcher.as_str(),
            hc.port
        ),
        (2, 2, "200", None)
    );
    assert_eq!(delay, Duration::from_secs(10));
    assert!(lb.target_health(&arn).is_empty());

    // Registration in moto → initial → healthy, from real probes (moto's own "healthy" is ignored).
    rig.fleet
        .launch_with_bundle("i-0aaa", build_revision(RevisionKind::Good, "v1"))
        .await
        .expect("launch");
    let register = |id: &str| TargetDescription::builder().id(id).port(port).build();
    client
        .register_targets()
        .target_group_arn(&arn)
        .targets(register("i-0aaa"))
        .targets(register("i-0bbb"))
        .send()
        .await
        .expect("RegisterTargets");
    lb.refresh_all().await.expect("refresh");
    let state = |id: &str| {
        lb.target_health(&arn)
            .into_iter()
            .find(|t| t.instance_id == id)
            .map(|t| (t.state, t.reason))
    };
    assert_eq!(
        state("i-0aaa"),
        Some((
            TargetState::Initial,
            Some("Elb.RegistrationInProgress".into())
        ))
    );
    let started = Instant::now();
    while state("i-0aaa").map(|s| s.0) != Some(TargetState::Healthy)
        || state("i-0bbb").map(|s| s.0) != Some(TargetState::Unhealthy)
    {
        assert!(started.elapsed() < WAIT, "{:?}", lb.target_health(&arn));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        state("i-0bbb"),
        Some((
            TargetState::Unhealthy,
            Some("Target.FailedHealthChecks".into())
        ))
    );

    // ModifyTargetGroup takes effect on the next refresh.
    client
        .modify_target_group()
        .target_group_arn(&arn)
        .health_check_interval_seconds(6)
        .healthy_threshold_count(3)
        .send()
        .await
        .expect("ModifyTargetGroup");
    assert_eq!(
        lb.settings(&arn).expect("settings").0.interval,
        Duration::from_secs(5)
    );
    lb.refresh_all().await.expect("refresh");
    let (hc, _) = lb.settings(&arn).expect("settings");
    assert_eq!(
        (hc.interval, hc.healthy_threshold),
        (Duration::from_secs(6), 3)
    );

    // Deregistration in moto → draining for 10 s × 0.02 = 200 ms → removed.
    client
        .deregister_targets()
        .target_group_arn(&arn)
        .targets(register("i-0aaa"))
        .send()
        .await
        .expect("DeregisterTargets");
    lb.refresh_all().await.expect("refresh");
    assert_eq!(
        state("i-0aaa"),
        Some((
            TargetState::Draining,
            Some("Target.DeregistrationInProgress".into())
        ))
    );
    let started = Instant::now();
    while state("i-0aaa").is_some() {
        assert!(started.elapsed() < WAIT, "never drained");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_, xml) = lb.describe_target_health_response(&[
        ("TargetGroupArn".into(), arn.clone()),
        ("Targets.member.1.Id".into(), "i-0aaa".into()),
    ]);
    assert!(
        xml.contains("<State>unused</State>")
            && xml.contains("<Reason>Target.NotRegistered</Reason>"),
        "{xml}"
    );

    // A deleted target group disappears (and its health checks stop).
    client
        .deregister_targets()
        .target_group_arn(&arn)
        .targets(register("i-0bbb"))
        .send()
        .await
        .expect("DeregisterTargets");
    // A target group in use by a listener cannot be deleted (ResourceInUse):
    // the load balancer (and its listener) goes first.
    client
        .delete_load_balancer()
        .load_balancer_arn(&alb_arn)
        .send()
        .await
        .expect("DeleteLoadBalancer");
    client
        .delete_target_group()
        .target_group_arn(&arn)
        .send()
        .await
        .expect("DeleteTargetGroup");
    lb.refresh_all().await.expect("refresh");
    assert!(lb.target_group_arns().is_empty());
    let (status, xml) =
        lb.describe_target_health_response(&[("TargetGroupArn".into(), arn.clone())]);
    assert_eq!(status, 400);
    assert!(xml.contains("TargetGroupNotFound"));
    lb.shutdown();
}
