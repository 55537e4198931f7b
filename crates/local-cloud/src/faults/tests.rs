use super::rate::{aws_rate, RateLimiter, RateMode};
use super::wire::{server_error, throttle, Protocol};
use super::*;

fn spec(kind: FaultKind) -> FaultSpec {
    FaultSpec {
        kind,
        service: None,
        operation: None,
        resource: None,
        count: None,
        percent: None,
        seed: None,
        status: None,
        hang_seconds: None,
    }
}

fn call(service: &str, operation: &str, text: &str) -> ApiCall {
    ApiCall {
        service: service.into(),
        operation: operation.into(),
        text: text.into(),
        access_key: Some(FUNCTION_ACCESS_KEY.into()),
    }
}

#[test]
fn a_count_fault_fires_on_the_next_n_matching_calls_only() {
    let mut r = Registry::default();
    let view = r
        .add(FaultSpec {
            service: Some("CodeDeploy".into()),
            operation: Some("GetDeployment".into()),
            count: Some(2),
            ..spec(FaultKind::Throttle)
        })
        .unwrap();
    assert_eq!(view.id, "f-1");
    assert_eq!(view.spec.service.as_deref(), Some("codedeploy"));
    // Another operation or service does not match.
    assert_eq!(
        r.decide(&call("codedeploy", "ListDeployments", "")),
        Verdict::Pass
    );
    assert_eq!(
        r.decide(&call("states", "GetDeployment", "")),
        Verdict::Pass
    );
    let fired = Verdict::Throttle {
        fault: Some("f-1".into()),
    };
    assert_eq!(r.decide(&call("codedeploy", "GetDeployment", "")), fired);
    assert_eq!(r.decide(&call("codedeploy", "getdeployment", "")), fired);
    assert_eq!(
        r.decide(&call("codedeploy", "GetDeployment", "")),
        Verdict::Pass
    );
    let listed = r.list();
    assert_eq!(
        (listed[0].fired, listed[0].matched, listed[0].active),
        (2, 2, false)
    );
}

#[test]
fn a_resource_narrows_the_fault_and_internal_calls_are_exempt() {
    let mut r = Registry::default();
    r.add(FaultSpec {
        service: Some("elasticloadbalancing".into()),
        resource: Some("targetgroup/blue".into()),
        count: Some(5),
        status: Some(503),
        ..spec(FaultKind::Error5xx)
    })
    .unwrap();
    assert_eq!(
        r.decide(&call(
            "elasticloadbalancing",
            "DescribeTargetHealth",
            "TargetGroupArn=arn:...:targetgroup/green/1"
        )),
        Verdict::Pass
    );
    assert_eq!(
        r.decide(&call(
            "elasticloadbalancing",
            "DescribeTargetHealth",
            "TargetGroupArn=arn:...:targetgroup/blue/1"
        )),
        Verdict::Error5xx { status: 503 }
    );
    let mut internal = call(
        "elasticloadbalancing",
        "DescribeTargetHealth",
        "targetgroup/blue",
    );
    internal.access_key = Some(INTERNAL_ACCESS_KEY.into());
    assert_eq!(r.decide(&internal), Verdict::Pass);
    assert_eq!(r.list()[0].fired, 1);
}

#[test]
fn a_percentage_fault_is_reproducible_from_its_seed() {
    let run = |seed| {
        let mut r = Registry::default();
        r.add(FaultSpec {
            service: Some("states".into()),
            percent: Some(30.0),
            seed: Some(seed),
            ..spec(FaultKind::Throttle)
        })
        .unwrap();
        (0..1000)
            .map(|_| r.decide(&call("states", "DescribeExecution", "")) != Verdict::Pass)
            .collect::<Vec<bool>>()
    };
    let a = run(7);
    assert_eq!(a, run(7));
    assert_ne!(a, run(8));
    let fired = a.iter().filter(|f| **f).count();
    assert!(
        (250..350).contains(&fired),
        "30% of 1000 fired {fired} times"
    );
}

#[test]
fn hang_defaults_outlast_the_sdk_and_validation_names_what_is_missing() {
    let mut r = Registry::default();
    r.add(FaultSpec {
        service: Some("codedeploy".into()),
        count: Some(1),
        ..spec(FaultKind::Hang)
    })
    .unwrap();
    assert_eq!(
        r.decide(&call("codedeploy", "GetDeployment", "")),
        Verdict::Hang {
            duration: Duration::from_secs(900)
        }
    );
    let missing = r.add(spec(FaultKind::Throttle)).unwrap_err();
    assert!(missing.to_string().contains("\"service\""), "{missing}");
    let no_count = r
        .add(FaultSpec {
            service: Some("s3".into()),
            ..spec(FaultKind::Throttle)
        })
        .unwrap_err();
    assert!(no_count.to_string().contains("\"count\""), "{no_count}");
    let both = FaultSpec {
        service: Some("s3".into()),
        count: Some(1),
        percent: Some(5.0),
        ..spec(FaultKind::Throttle)
    };
    assert!(matches!(r.add(both), Err(FaultError::Invalid(_))));
    let bad_status = FaultSpec {
        service: Some("s3".into()),
        count: Some(1),
        status: Some(502),
        ..spec(FaultKind::Error5xx)
    };
    assert!(r.add(bad_status).unwrap_err().to_string().contains("502"));
    assert!(r
        .add(spec(FaultKind::KillInstance))
        .unwrap_err()
        .to_string()
        .contains("instance id"));
    assert!(matches!(r.remove("f-99"), Err(FaultError::Unknown(_))));
}

#[test]
fn function_faults_fire_once_for_their_function() {
    let mut r = Registry::default();
    r.add(FaultSpec {
        resource: Some("greenlight-deployment-watcher".into()),
        ..spec(FaultKind::TimeoutOnce)
    })
    .unwrap();
    r.add(FaultSpec {
        resource: Some("greenlight-deploy-trigger".into()),
        ..spec(FaultKind::CrashOnce)
    })
    .unwrap();
    assert_eq!(
        r.take_function_fault("greenlight-failure-handler", None),
        None
    );
    assert_eq!(
        r.take_function_fault("greenlight-deployment-watcher", None),
        Some(FunctionFault::Timeout)
    );
    assert_eq!(
        r.take_function_fault("greenlight-deployment-watcher", None),
        None
    );
    assert_eq!(
        r.take_function_fault("greenlight-deploy-trigger", None),
        Some(FunctionFault::Crash)
    );
    assert_eq!(
        r.take_function_fault("greenlight-deploy-trigger", None),
        None
    );
}

#[test]
fn unknown_once_fires_once_for_its_function_and_action() {
    let mut r = Registry::default();
    r.add(FaultSpec {
        resource: Some("greenlight-traffic-validator".into()),
        operation: Some("validate".into()),
        ..spec(FaultKind::UnknownOnce)
    })
    .unwrap();
    assert_eq!(
        r.take_function_fault("greenlight-traffic-validator", Some("validate")),
        Some(FunctionFault::Unknown)
    );
    assert_eq!(
        r.take_function_fault("greenlight-traffic-validator", Some("validate")),
        None
    );
    let missing = Registry::default().add(spec(FaultKind::UnknownOnce));
    assert!(
        matches!(
            missing,
            Err(FaultError::Missing {
                field: "resource",
                ..
            })
        ),
        "{missing:?}"
    );
}

#[test]
fn function_faults_with_an_operation_fire_only_on_that_action() {
    let mut r = Registry::default();
    r.add(FaultSpec {
        resource: Some("greenlight-deployment-watcher".into()),
        operation: Some("create".into()),
        ..spec(FaultKind::CrashOnce)
    })
    .unwrap();
    assert_eq!(
        r.take_function_fault("greenlight-deployment-watcher", Some("admit")),
        None
    );
    assert_eq!(
        r.take_function_fault("greenlight-deployment-watcher", None),
        None
    );
    assert_eq!(
        r.take_function_fault("greenlight-deployment-watcher", Some("create")),
        Some(FunctionFault::Crash)
    );
    assert_eq!(
        r.take_function_fault("greenlight-deployment-watcher", Some("create")),
        None
    );
}

#[test]
fn a_rollback_failure_is_taken_once_for_its_group() {
    let mut r = Registry::default();
    r.add(FaultSpec {
        resource: Some("app/group-a".into()),
        ..spec(FaultKind::FailRollback)
    })
    .unwrap();
    assert!(!r.take_rollback_failure("app", "group-b"));
    assert!(r.take_rollback_failure("app", "group-a"));
    assert!(!r.take_rollback_failure("app", "group-a"));
    r.add(spec(FaultKind::FailRollback)).unwrap();
    assert!(r.take_rollback_failure("other", "group"));
    assert_eq!(r.clear(), 2);
    assert!(r.list().is_empty());
}

#[test]
fn a_lost_event_fault_loses_only_its_groups_events_and_only_count_of_them() {
    let mut r = Registry::default();
    r.add(FaultSpec {
        resource: Some("app/group-a".into()),
        count: Some(2),
        ..spec(FaultKind::LoseEvent)
    })
    .unwrap();
    assert!(!r.take_lost_event("app", "group-b"));
    assert!(r.take_lost_event("app", "group-a"));
    assert!(r.take_lost_event("app", "group-a"));
    assert!(
        !r.take_lost_event("app", "group-a"),
        "count 2: the third is delivered"
    );
    // Default: one event, any group; never a rollback failure.
    r.add(spec(FaultKind::LoseEvent)).unwrap();
    assert!(!r.take_rollback_failure("other", "group"));
    assert!(r.take_lost_event("other", "group"));
    assert!(!r.take_lost_event("other", "group"));
}

#[test]
fn token_buckets_throttle_beyond_the_rate_and_refill() {
    let mut limiter = RateLimiter::new(RateMode::Aws);
    let cd = aws_rate("codedeploy", "GetDeployment").unwrap();
    let burst = cd.capacity as usize;
    for _ in 0..burst {
        assert!(limiter.admit("codedeploy", "GetDeployment", 0.0));
    }
    assert!(!limiter.admit("codedeploy", "GetDeployment", 0.0));
    // Another operation has its own bucket.
    assert!(limiter.admit("codedeploy", "ListDeployments", 0.0));
    // One second later, `refill` tokens are back.
    let refill = cd.refill_per_second as usize;
    for _ in 0..refill {
        assert!(limiter.admit("codedeploy", "GetDeployment", 1.0));
    }
    assert!(!limiter.admit("codedeploy", "GetDeployment", 1.0));
    assert_eq!(limiter.throttled()["codedeploy:GetDeployment"], 2);
    // ELBv2 Describe*: the documented 40 / 10 per second.
    let elb = aws_rate("elasticloadbalancing", "DescribeTargetHealth").unwrap();
    assert_eq!((elb.capacity, elb.refill_per_second), (40.0, 10.0));
    assert_eq!(aws_rate("sqs", "ReceiveMessage"), None);
    limiter.set_mode(RateMode::Off);
    for _ in 0..1000 {
        assert!(limiter.admit("codedeploy", "GetDeployment", 1.0));
    }
    assert_eq!("aws".parse::<RateMode>(), Ok(RateMode::Aws));
    assert!("fast".parse::<RateMode>().is_err());
}

#[test]
fn faults_come_before_rate_limits_and_internal_calls_skip_both() {
    let faults = Faults::new(RateMode::Aws);
    let mut throttled = 0;
    for _ in 0..100 {
        if faults.decide(&call("codedeploy", "GetDeployment", "")) != Verdict::Pass {
            throttled += 1;
        }
    }
    // The bucket (10) plus what refilled meanwhile passes; the rest is throttled.
    assert!(throttled >= 80, "throttled {throttled}");
    let mut internal = call("codedeploy", "GetDeployment", "");
    internal.access_key = Some(INTERNAL_ACCESS_KEY.into());
    assert_eq!(faults.decide(&internal), Verdict::Pass);
    assert!(faults.throttled_counts()["codedeploy:GetDeployment"] >= 80);
}

#[test]
fn each_protocol_answers_its_own_throttling_shape() {
    let cd = throttle("codedeploy", Protocol::of("codedeploy", true), "r1");
    assert_eq!((cd.status, cd.code.as_str()), (400, "ThrottlingException"));
    assert!(cd.body.contains("\"__type\":\"ThrottlingException\""));
    let elb = throttle(
        "elasticloadbalancing",
        Protocol::of("elasticloadbalancing", false),
        "r2",
    );
    assert_eq!(elb.status, 400);
    assert!(elb.body.contains("<Code>ThrottlingException</Code>"));
    let asg = throttle("autoscaling", Protocol::of("autoscaling", false), "r3");
    assert!(asg
        .body
        .contains("<Code>Throttling</Code><Message>Rate exceeded</Message>"));
    let ec2 = throttle("ec2", Protocol::of("ec2", false), "r4");
    assert_eq!(
        (ec2.status, ec2.code.as_str()),
        (503, "RequestLimitExceeded")
    );
    assert!(ec2
        .body
        .contains("<Errors><Error><Code>RequestLimitExceeded</Code>"));
    let s3 = throttle("s3", Protocol::of("s3", false), "r5");
    assert_eq!((s3.status, s3.code.as_str()), (503, "SlowDown"));
    let lambda = throttle("lambda", Protocol::of("lambda", false), "r6");
    assert_eq!(
        (lambda.status, lambda.code.as_str()),
        (429, "TooManyRequestsException")
    );
    assert!(lambda
        .headers
        .iter()
        .any(|(k, v)| *k == "x-amzn-errortype" && v == "TooManyRequestsException"));
    let sns = throttle("sns", Protocol::of("sns", false), "r7");
    assert_eq!((sns.status, sns.code.as_str()), (429, "Throttled"));
    let sfn = server_error(503, Protocol::of("states", true), "r8");
    assert_eq!((sfn.status, sfn.code.as_str()), (503, "ServiceUnavailable"));
    let elb500 = server_error(500, Protocol::Query, "r9");
    assert!(elb500
        .body
        .contains("<Type>Receiver</Type><Code>InternalFailure</Code>"));
    assert_eq!(server_error(500, Protocol::Ec2, "r").code, "InternalError");
    assert_eq!(
        server_error(503, Protocol::S3, "r").code,
        "ServiceUnavailable"
    );
    assert_eq!(
        server_error(500, Protocol::RestJson, "r").code,
        "ServiceException"
    );
}

#[test]
fn the_request_log_keeps_external_calls_with_their_verdict_only_while_on() {
    let faults = Faults::new(RateMode::Aws);
    // Off by default: nothing is kept.
    let _ = faults.decide(&call("codedeploy", "GetDeployment", "before"));
    assert!(faults.take_call_log().is_empty());
    faults.start_call_log();
    for n in 0..12 {
        let _ = faults.decide(&call("codedeploy", "GetDeployment", &format!("d-{n}")));
    }
    let mut internal = call("codedeploy", "GetDeployment", "internal");
    internal.access_key = Some(INTERNAL_ACCESS_KEY.into());
    assert_eq!(faults.decide(&internal), Verdict::Pass);
    let log = faults.take_call_log();
    // The internal call is not logged; the 12 external ones are, in order.
    assert_eq!(log.len(), 12);
    assert_eq!(log[0].text, "d-0");
    assert_eq!(log[11].text, "d-11");
    assert!(log
        .iter()
        .all(|c| c.service == "codedeploy" && c.operation == "GetDeployment"));
    // The bucket holds 10 (refill 5/s): the first call passes, the last ones are throttled.
    assert!(!log[0].throttled);
    assert!(log[11].throttled);
    let throttled = log.iter().filter(|c| c.throttled).count() as u64;
    assert_eq!(
        throttled,
        faults.throttled_counts()["codedeploy:GetDeployment"]
    );
    // Taking empties the log but keeps it on.
    assert!(faults.take_call_log().is_empty());
    let _ = faults.decide(&call("s3", "PutObject", "again"));
    assert_eq!(faults.take_call_log().len(), 1);
}
