use super::*;

const APP: &str = "shop";
const MAIN_ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-tg/1111";
const STANDBY_ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-standby/2222";

fn health() -> HealthCheckShape {
    HealthCheckShape {
        enabled: Some(true),
        protocol: Some("HTTP".into()),
        port: Some("traffic-port".into()),
        path: Some("/health".into()),
        matcher: Some("200".into()),
        interval_seconds: Some(30),
        timeout_seconds: Some(5),
        healthy_threshold: Some(5),
        unhealthy_threshold: Some(2),
    }
}

fn main_tg() -> TargetGroupShape {
    TargetGroupShape {
        name: "shop-tg".into(),
        arn: MAIN_ARN.into(),
        protocol: Some("HTTP".into()),
        port: Some(8080),
        vpc_id: Some("vpc-1".into()),
        target_type: Some("instance".into()),
        load_balancer_arns: vec!["arn:lb/app/shop/1".into()],
        health_check: health(),
    }
}

fn standby_tg() -> TargetGroupShape {
    TargetGroupShape {
        name: "shop-standby".into(),
        arn: STANDBY_ARN.into(),
        load_balancer_arns: Vec::new(),
        ..main_tg()
    }
}

fn run(standby: Result<&TargetGroupShape, &str>) -> Check {
    standby_check(
        APP,
        "shop-standby",
        &MainTargetGroup::One(Box::new(main_tg())),
        standby,
    )
}

const CREATE: &str = "aws elbv2 create-target-group --name shop-standby --protocol HTTP --port 8080 --vpc-id vpc-1 --target-type instance --health-check-enabled --health-check-protocol HTTP --health-check-port traffic-port --health-check-path /health --matcher HttpCode=200 --health-check-interval-seconds 30 --health-check-timeout-seconds 5 --healthy-threshold-count 5 --unhealthy-threshold-count 2 --tags Key=greenlight:application,Value=shop";

#[test]
fn a_standby_like_main_passes() {
    let s = standby_tg();
    let c = run(Ok(&s));
    assert_eq!(c.status, CheckStatus::Pass, "{c:?}");
    assert_eq!(c.name, CHECK_NAME);
    assert!(c.fix.is_none());
    assert!(
        c.detail
            .starts_with("shop-standby matches shop-tg: HTTP port 8080 in vpc-1"),
        "{}",
        c.detail
    );
}

#[test]
fn a_missing_standby_fails_with_the_exact_create_command() {
    let c = run(Err(
        "TargetGroupNotFound: One or more target groups not found",
    ));
    assert_eq!(c.status, CheckStatus::Fail);
    assert!(
        c.detail.contains("was not found (TargetGroupNotFound"),
        "{}",
        c.detail
    );
    let fix = c.fix.unwrap_or_default();
    assert!(fix.ends_with(CREATE), "{fix}");
}

#[test]
fn the_create_command_copies_what_main_has_and_omits_what_it_lacks() {
    let bare = TargetGroupShape {
        name: "x".into(),
        arn: "a".into(),
        ..TargetGroupShape::default()
    };
    assert_eq!(
        create_command("shop", "x-standby", &bare),
        "aws elbv2 create-target-group --name x-standby --tags Key=greenlight:application,Value=shop"
    );
    let mut off = main_tg();
    off.health_check.enabled = Some(false);
    assert!(create_command(APP, "s", &off).contains(" --no-health-check-enabled "));
    assert_eq!(create_command(APP, "shop-standby", &main_tg()), CREATE);
}

#[test]
fn the_main_group_itself_is_refused() {
    let c = standby_check(
        APP,
        "shop-tg",
        &MainTargetGroup::One(Box::new(main_tg())),
        Ok(&main_tg()),
    );
    assert_eq!(c.status, CheckStatus::Fail);
    assert!(c.detail.contains("is the deployment's own target group"));
    assert!(c
        .fix
        .unwrap_or_default()
        .contains("aws elbv2 create-target-group --name shop-tg-standby "));
}

#[test]
fn port_protocol_vpc_or_target_type_differences_need_a_new_group() {
    for change in [
        (|t: &mut TargetGroupShape| t.port = Some(80)) as fn(&mut TargetGroupShape),
        |t| t.protocol = Some("HTTPS".into()),
        |t| t.vpc_id = Some("vpc-2".into()),
        |t| t.target_type = Some("ip".into()),
    ] {
        let mut s = standby_tg();
        change(&mut s);
        let c = run(Ok(&s));
        assert_eq!(c.status, CheckStatus::Fail, "{s:?}");
        assert!(
            c.detail
                .contains("cannot be changed on an existing target group"),
            "{}",
            c.detail
        );
        assert_eq!(
            c.fix.as_deref(),
            Some(
                format!(
                    "aws elbv2 delete-target-group --target-group-arn {STANDBY_ARN} && {CREATE}"
                )
                .as_str()
            )
        );
    }
    let mut s = standby_tg();
    s.port = Some(80);
    let c = run(Ok(&s));
    assert!(c.detail.contains("Port 80 (main: 8080)"), "{}", c.detail);
}

#[test]
fn a_health_check_difference_is_fixed_in_place_with_main_values() {
    let mut s = standby_tg();
    s.health_check.path = Some("/".into());
    s.health_check.matcher = Some("200-399".into());
    let c = run(Ok(&s));
    assert_eq!(c.status, CheckStatus::Fail);
    assert!(
        c.detail.contains("HealthCheckPath / (main: /health)")
            && c.detail.contains("Matcher.HttpCode 200-399 (main: 200)"),
        "{}",
        c.detail
    );
    assert_eq!(
        c.fix.as_deref(),
        Some(format!("aws elbv2 modify-target-group --target-group-arn {STANDBY_ARN} --health-check-enabled --health-check-protocol HTTP --health-check-port traffic-port --health-check-path /health --matcher HttpCode=200").as_str())
    );
}

#[test]
fn a_faster_or_slower_health_check_timing_passes_and_is_reported() {
    // The demo's standby: the tuner's fast profile against main's seed settings.
    let mut s = standby_tg();
    s.health_check.interval_seconds = Some(5);
    s.health_check.timeout_seconds = Some(2);
    s.health_check.healthy_threshold = Some(2);
    let c = run(Ok(&s));
    assert_eq!(c.status, CheckStatus::Pass, "{c:?}");
    assert!(
        c.detail
            .contains("blue turns healthy there 15 s after registration, main 180 s"),
        "{}",
        c.detail
    );
}

#[test]
fn every_field_of_what_the_health_check_asks_is_compared() {
    let changes: [fn(&mut HealthCheckShape); 5] = [
        |h| h.enabled = Some(false),
        |h| h.protocol = Some("HTTPS".into()),
        |h| h.port = Some("8081".into()),
        |h| h.path = None,
        |h| h.matcher = Some("200-299".into()),
    ];
    for change in changes {
        let mut s = standby_tg();
        change(&mut s.health_check);
        let c = run(Ok(&s));
        assert_eq!(c.status, CheckStatus::Fail, "{:?}", s.health_check);
        assert!(c.detail.contains("health check differs"), "{}", c.detail);
    }
}

#[test]
fn a_standby_something_already_forwards_to_fails_listener_fix_first() {
    let mut s = standby_tg();
    s.load_balancer_arns = vec!["arn:lb/app/shop/1".into()];
    s.health_check.path = Some("/".into());
    let c = run(Ok(&s));
    assert_eq!(c.status, CheckStatus::Fail);
    assert!(c.detail.contains("already forwards to it"), "{}", c.detail);
    let fix = c.fix.unwrap_or_default();
    assert!(
        fix.starts_with("put back the listener or rule that forwards to "),
        "{fix}"
    );
    assert!(
        fix.contains("; then aws elbv2 modify-target-group "),
        "{fix}"
    );
}

#[test]
fn a_group_without_exactly_one_target_group_fails_and_an_unreadable_main_is_unknown() {
    let s = standby_tg();
    for count in [0, 2] {
        let c = standby_check(
            APP,
            "shop-standby",
            &MainTargetGroup::NotOne { count },
            Ok(&s),
        );
        assert_eq!(c.status, CheckStatus::Fail);
        assert!(c.detail.contains(&format!("names {count} target groups")));
        assert!(c.fix.is_some());
    }
    let c = standby_check(
        APP,
        "shop-standby",
        &MainTargetGroup::Unreadable {
            detail: "AccessDenied".into(),
        },
        Ok(&s),
    );
    assert_eq!(c.status, CheckStatus::Unknown);
    assert!(c.detail.contains("AccessDenied"));
}
