//! Property-based tests (proptest) over the parsers and the decision core,
//! run as one test so the figures (properties, cases generated, failures)
//! are written to RELIABILITY.md (section `properties`) by every run.
//!
//! Each property runs a fixed number of generated cases (no shrinking
//! persistence files); the total is at least 100,000 per run.

use greenlight_core::model::{
    DeploymentStatus, DeploymentView, HealthCheckSettings, NextStep, Phase, PhaseTiming,
    TargetGroupSnapshot,
};
use greenlight_core::trigger::{
    decode_continuation_token, decode_key, encode_continuation_token, execution_arn,
    execution_name, is_valid_execution_name, may_belong_to_group, parse_user_parameters,
    KeyEncoding, MAX_EXECUTION_NAME_LEN,
};
use greenlight_core::tuning::{
    decode_snapshot_tag, encode_snapshot_tag, plan_restore, plan_tune, Changes, FastProfile,
    DEREGISTRATION_RANGE, INTERVAL_RANGE, THRESHOLD_RANGE, TIMEOUT_RANGE,
};
use greenlight_core::watch::{
    assess, wait_seconds, LookContext, Predictions, WaitBounds, WatchAction,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use serde_json::{json, Value};
use std::time::Instant;

const SM_ARN: &str = "arn:aws:states:us-east-1:111122223333:stateMachine:greenlight-pipeline";

/// One property's figures.
struct Figure {
    name: &'static str,
    cases: u32,
    failure: Option<String>,
    millis: u128,
}

fn check<S: Strategy>(
    figures: &mut Vec<Figure>,
    name: &'static str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let started = Instant::now();
    let result = runner.run(&strategy, test);
    let failure = match result {
        Ok(()) => None,
        Err(TestError::Fail(why, value)) => Some(format!("{why} for {value:?}")),
        Err(TestError::Abort(why)) => Some(format!("aborted: {why}")),
    };
    figures.push(Figure {
        name,
        cases,
        failure,
        millis: started.elapsed().as_millis(),
    });
}

/// The form-URL encoding S3 notifications use for keys (space = `+`, other
/// bytes outside `[A-Za-z0-9-_.*]` as `%XX`).
fn form_url_encode(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b' ' => "+".to_string(),
            b if b.is_ascii_alphanumeric() || b"-_.*".contains(&b) => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn settings() -> impl Strategy<Value = (HealthCheckSettings, u32)> {
    (
        INTERVAL_RANGE.0..=INTERVAL_RANGE.1,
        TIMEOUT_RANGE.0..=TIMEOUT_RANGE.1,
        THRESHOLD_RANGE.0..=THRESHOLD_RANGE.1,
        THRESHOLD_RANGE.0..=THRESHOLD_RANGE.1,
        DEREGISTRATION_RANGE.0..=DEREGISTRATION_RANGE.1,
    )
        .prop_map(|(i, t, h, u, d)| {
            (
                HealthCheckSettings {
                    interval_seconds: i,
                    timeout_seconds: t,
                    healthy_threshold: h,
                    unhealthy_threshold: u,
                },
                d,
            )
        })
}

fn apply(current: &mut TargetGroupSnapshot, changes: &Changes) {
    if let Some(hc) = changes.health_check {
        current.health_check = hc;
    }
    if let Some(d) = changes.deregistration_delay_seconds {
        current.deregistration_delay_seconds = d;
    }
}

fn status_strategy() -> impl Strategy<Value = DeploymentStatus> {
    prop_oneof![
        Just(DeploymentStatus::Created),
        Just(DeploymentStatus::Queued),
        Just(DeploymentStatus::InProgress),
        Just(DeploymentStatus::Baking),
        Just(DeploymentStatus::Ready),
        Just(DeploymentStatus::Succeeded),
        Just(DeploymentStatus::Failed),
        Just(DeploymentStatus::Stopped),
    ]
}

fn phase_strategy() -> impl Strategy<Value = Phase> {
    prop_oneof![
        Just(Phase::Queued),
        Just(Phase::Provisioning),
        Just(Phase::Installing),
        Just(Phase::ReadyWait),
        Just(Phase::Rerouting),
        Just(Phase::Terminating),
        Just(Phase::Done),
    ]
}

/// A deployment view built through serde (the shape CodeDeploy reads map to).
fn view(status: DeploymentStatus, created_at_ms: Option<i64>) -> DeploymentView {
    let mut v = json!({
        "deploymentId": "d-PROP",
        "application": "shop",
        "deploymentGroup": "shop-prod",
        "status": status,
        "targets": [],
    });
    if let Some(ms) = created_at_ms {
        v["createdAtMs"] = json!(ms);
    }
    serde_json::from_value(v).expect("deployment view")
}

/// A JSON leaf to put where a field was.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        ".{0,40}".prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
    ]
}

/// Every leaf pointer of a JSON value.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let escaped = k.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{escaped}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

const TRIGGER_EVENTS: [&str; 5] = [
    include_str!("../events/s3-eventbridge-object-created.json"),
    include_str!("../events/s3-eventbridge-object-deleted.json"),
    include_str!("../events/s3-notification-put.json"),
    include_str!("../events/codepipeline-job.json"),
    include_str!("../events/codepipeline-job-continuation.json"),
];

/// deploy-trigger deps whose every call succeeds (gated group, started
/// execution, running execution, answered job).
fn permissive_trigger() -> (deploy_trigger::Deps, Vec<aws_smithy_mocks::Rule>) {
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    let rules = vec![
        mock!(aws_sdk_codedeploy::Client::get_deployment_group).then_output(|| {
            use aws_sdk_codedeploy::types::*;
            aws_sdk_codedeploy::operation::get_deployment_group::GetDeploymentGroupOutput::builder()
                .deployment_group_info(
                    DeploymentGroupInfo::builder()
                        .deployment_style(
                            DeploymentStyle::builder()
                                .deployment_type(DeploymentType::BlueGreen)
                                .deployment_option(DeploymentOption::WithTrafficControl)
                                .build(),
                        )
                        .blue_green_deployment_configuration(
                            BlueGreenDeploymentConfiguration::builder()
                                .deployment_ready_option(
                                    DeploymentReadyOption::builder()
                                        .action_on_timeout(DeploymentReadyAction::StopDeployment)
                                        .build(),
                                )
                                .build(),
                        )
                        .load_balancer_info(
                            LoadBalancerInfo::builder()
                                .target_group_info_list(TargetGroupInfo::builder().name("tg").build())
                                .build(),
                        )
                        .build(),
                )
                .build()
        }),
        mock!(aws_sdk_sfn::Client::start_execution).then_compute_output(|r| {
            aws_sdk_sfn::operation::start_execution::StartExecutionOutput::builder()
                .execution_arn(execution_arn(SM_ARN, r.name().unwrap_or("x")).unwrap_or_default())
                .start_date(aws_smithy_types::DateTime::from_secs(0))
                .build()
                .expect("start output")
        }),
        mock!(aws_sdk_sfn::Client::describe_execution).then_output(|| {
            aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput::builder()
                .execution_arn("arn:aws:states:us-east-1:1:execution:sm:x")
                .state_machine_arn(SM_ARN)
                .status(aws_sdk_sfn::types::ExecutionStatus::Running)
                .start_date(aws_smithy_types::DateTime::from_secs(0))
                .build()
                .expect("describe output")
        }),
        mock!(aws_sdk_codepipeline::Client::put_job_success_result).then_output(|| {
            aws_sdk_codepipeline::operation::put_job_success_result::PutJobSuccessResultOutput::builder().build()
        }),
        mock!(aws_sdk_codepipeline::Client::put_job_failure_result).then_output(|| {
            aws_sdk_codepipeline::operation::put_job_failure_result::PutJobFailureResultOutput::builder().build()
        }),
        mock!(aws_sdk_s3::Client::get_object_tagging).then_output(|| {
            aws_sdk_s3::operation::get_object_tagging::GetObjectTaggingOutput::builder()
                .set_tag_set(Some(Vec::new()))
                .build()
                .expect("tagging output")
        }),
    ];
    let refs: Vec<&aws_smithy_mocks::Rule> = rules.iter().collect();
    let deps = deploy_trigger::Deps {
        sfn: mock_client!(aws_sdk_sfn, RuleMode::MatchAny, refs.clone()),
        s3: mock_client!(aws_sdk_s3, RuleMode::MatchAny, refs.clone()),
        codedeploy: mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, refs.clone()),
        codepipeline: mock_client!(aws_sdk_codepipeline, RuleMode::MatchAny, refs),
        config: deploy_trigger::Config::new(
            SM_ARN,
            "greenlight-artifacts-111122223333",
            Some("codepipeline-us-east-1-111122223333"),
            "artifacts/",
            "shop-prod",
            None,
        )
        .expect("config"),
    };
    (deps, rules)
}

#[test]
fn properties_hold_over_100k_generated_cases() {
    let mut figures: Vec<Figure> = Vec::new();

    check(
        &mut figures,
        "S3 notification key decoding inverts S3's form-URL encoding (any Unicode key)",
        20_000,
        ".{0,80}",
        |key: String| {
            let decoded = decode_key(&form_url_encode(&key), KeyEncoding::FormUrlEncoded);
            prop_assert_eq!(decoded.as_deref(), Ok(key.as_str()));
            let verbatim = decode_key(&key, KeyEncoding::Verbatim);
            prop_assert_eq!(verbatim.as_deref(), Ok(key.as_str()));
            Ok(())
        },
    );

    check(
        &mut figures,
        "key decoding never panics on arbitrary %, + and bytes",
        10_000,
        "[%+0-9A-Fa-f/ a-z\\x{80}-\\x{10FFFF}]{0,64}",
        |carried: String| {
            // Either the stored key or an InvalidKey naming the problem.
            if let Err(e) = decode_key(&carried, KeyEncoding::FormUrlEncoded) {
                prop_assert_eq!(e.error_type(), "InvalidKey");
            }
            Ok(())
        },
    );

    check(
        &mut figures,
        "UserParameters parsing never panics; accepted ones name an application",
        10_000,
        prop_oneof![
            ".{0,60}".boxed(),
            (
                "[a-z ]{0,8}",
                proptest::option::of("[a-z-]{0,8}"),
                proptest::option::of(".{0,8}")
            )
                .prop_map(|(a, g, l)| {
                    let mut v = json!({"application": a});
                    if let Some(g) = g {
                        v["deploymentGroup"] = json!(g);
                    }
                    if let Some(l) = l {
                        v["label"] = json!(l);
                    }
                    v.to_string()
                })
                .boxed(),
        ],
        |raw: String| {
            match parse_user_parameters(Some(&raw)) {
                Ok(Some(p)) => prop_assert!(!p.application.trim().is_empty()),
                Ok(None) => prop_assert!(raw.trim().is_empty()),
                Err(e) => prop_assert_eq!(e.error_type(), "InvalidUserParameters"),
            }
            Ok(())
        },
    );

    check(
        &mut figures,
        "continuation tokens: decoding never panics, encode/decode round-trips, length ≤ 2048",
        10_000,
        prop_oneof![
            ".{0,3000}".boxed(),
            (
                "[a-z0-9-]{1,20}",
                "[0-9]{12}",
                "[A-Za-z0-9_-]{1,80}",
                "[A-Za-z0-9_-]{1,80}"
            )
                .prop_map(|(region, account, sm, name)| format!(
                    "greenlight/v1/arn:aws:states:{region}:{account}:execution:{sm}:{name}"
                ))
                .boxed(),
        ],
        |token: String| {
            if let Ok(arn) = decode_continuation_token(&token) {
                let again = encode_continuation_token(&arn);
                prop_assert_eq!(again.as_deref(), Ok(token.as_str()));
                prop_assert!(token.chars().count() <= 2048);
            }
            Ok(())
        },
    );

    check(
        &mut figures,
        "snapshot tags: decoding any text never panics",
        10_000,
        prop_oneof![
            ".{0,300}".boxed(),
            "v1( [a-z]{0,14}=[0-9]{0,11}){0,7}".boxed(),
        ],
        |value: String| {
            let _ = decode_snapshot_tag("arn:tg", &value);
            Ok(())
        },
    );

    check(
        &mut figures,
        "snapshot tags: encode/decode round-trips every in-range snapshot",
        10_000,
        settings(),
        |(hc, d)| {
            let snap = TargetGroupSnapshot {
                target_group_arn: "arn:tg".into(),
                health_check: hc,
                deregistration_delay_seconds: d,
            };
            let tag = encode_snapshot_tag(&snap);
            prop_assert!(tag.chars().count() <= 256);
            prop_assert_eq!(decode_snapshot_tag("arn:tg", &tag), Ok(snap));
            Ok(())
        },
    );

    check(
        &mut figures,
        "restore after any sequence of tunes yields the first snapshot",
        10_000,
        (settings(), proptest::collection::vec(settings(), 1..6)),
        |(first, profiles)| {
            let original = TargetGroupSnapshot {
                target_group_arn: "arn:tg".into(),
                health_check: first.0,
                deregistration_delay_seconds: first.1,
            };
            let mut current = original.clone();
            let mut tag: Option<String> = None;
            let mut kept = Vec::new();
            for (hc, d) in profiles {
                let profile = FastProfile {
                    health_check: hc,
                    deregistration_delay_seconds: d,
                };
                let recorded = match &tag {
                    Some(t) => Some(
                        decode_snapshot_tag("arn:tg", t)
                            .map_err(|e| TestCaseError::fail(e.to_string()))?,
                    ),
                    None => None,
                };
                let plan = plan_tune(&current, recorded.as_ref(), &profile);
                if let Some(v) = plan.tag_value {
                    prop_assert!(tag.is_none(), "a recorded tag is never overwritten");
                    tag = Some(v);
                }
                apply(&mut current, &plan.changes);
                kept.push(plan.keep);
            }
            for keep in &kept {
                prop_assert_eq!(keep, &original);
            }
            // From the state machine's record and from the tag alike.
            let from_tag = decode_snapshot_tag("arn:tg", tag.as_deref().unwrap_or_default())
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            for snapshot in [&kept[0], &from_tag] {
                let mut restored = current.clone();
                let plan = plan_restore(&restored, snapshot, true);
                apply(&mut restored, &plan.changes);
                prop_assert!(plan.remove_tag);
                prop_assert_eq!(&restored, &original);
                // Restoring again is a no-op once the tag is gone.
                prop_assert!(plan_restore(&restored, snapshot, false).is_noop());
            }
            Ok(())
        },
    );

    check(
        &mut figures,
        "the watcher never continues past a terminal status (no wait, no validate, no stop)",
        10_000,
        (
            prop_oneof![
                Just(DeploymentStatus::Succeeded),
                Just(DeploymentStatus::Failed),
                Just(DeploymentStatus::Stopped)
            ],
            proptest::option::of(0i64..4_000_000_000_000),
            0i64..4_000_000_000_000,
            0i64..4_000_000_000_000,
            any::<bool>(),
            0u32..600,
            0u32..3600,
        ),
        |(status, created, deadline, now, validated, min, max)| {
            let ctx = LookContext {
                deadline_ms: deadline,
                post_reroute_deadline_ms: deadline.saturating_add(10_800_000),
                created_at_ms: created.unwrap_or(0),
                validated,
                predictions: Predictions::default(),
                bounds: WaitBounds {
                    min_seconds: min,
                    max_seconds: max,
                    event_max_seconds: max,
                },
                now,
            };
            let a = assess(&view(status, created), &ctx);
            let expected = if status == DeploymentStatus::Succeeded {
                NextStep::Succeeded
            } else {
                NextStep::Failed
            };
            prop_assert_eq!(a.report.next, expected);
            prop_assert_eq!(a.action, WatchAction::Report);
            prop_assert_eq!(a.report.wait_seconds, 0);
            Ok(())
        },
    );

    check(
        &mut figures,
        "non-terminal looks: waits stay within [min, max] and a stop only past the deadline",
        10_000,
        (
            status_strategy(),
            phase_strategy(),
            proptest::option::of(0u32..100_000),
            -10_000_000i64..10_000_000,
            -10_000_000i64..10_000_000,
            0u32..600,
            0u32..3600,
            proptest::option::of(0u32..100_000),
        ),
        |(status, phase, predicted, started_offset, deadline_offset, min, max, row_predicted)| {
            let now = 1_700_000_000_000i64;
            let bounds = WaitBounds {
                min_seconds: min,
                max_seconds: max,
                event_max_seconds: max,
            };
            let ledger = vec![PhaseTiming {
                phase,
                started_at_ms: now + started_offset,
                ended_at_ms: None,
                predicted_seconds: row_predicted,
            }];
            let w = wait_seconds(
                phase,
                &ledger,
                predicted,
                now + deadline_offset,
                now,
                bounds,
            );
            prop_assert!(
                w >= min && w <= max.max(min),
                "wait {} outside [{}, {}]",
                w,
                min,
                max
            );
            let ctx = LookContext {
                deadline_ms: now + deadline_offset,
                post_reroute_deadline_ms: now + deadline_offset + 10_800_000,
                created_at_ms: now - 1000,
                validated: false,
                predictions: Predictions::default(),
                bounds,
                now,
            };
            let a = assess(&view(status, Some(now - 1000)), &ctx);
            if !status.is_terminal() {
                if a.action == WatchAction::StopWithRollback {
                    prop_assert!(deadline_offset <= 0, "stopped before the deadline");
                }
                if a.report.next == NextStep::Wait {
                    prop_assert!(
                        a.report.wait_seconds >= min && a.report.wait_seconds <= max.max(min)
                    );
                    // The event wait: never shorter than the polling wait, never
                    // zero (Step Functions refuses a zero timeout), within its bound.
                    prop_assert!(
                        a.report.event_wait_seconds >= a.report.wait_seconds.max(1)
                            && a.report.event_wait_seconds <= max.max(min).max(1),
                        "event wait {} outside [{}, {}]",
                        a.report.event_wait_seconds,
                        a.report.wait_seconds.max(1),
                        max.max(min).max(1)
                    );
                }
            }
            Ok(())
        },
    );

    check(
        &mut figures,
        "execution names are valid (1-80 of [A-Za-z0-9_-]), distinct for distinct objects, and their own group's",
        10_000,
        (
            ".{0,100}",
            ".{0,300}",
            "[ab]{0,3}",
            "[ab]{0,3}",
            "[ab]{0,3}",
            "[ab]{0,3}",
            "[ab]{0,3}",
            "[ab]{0,3}",
        ),
        |(app, group, b1, k1, i1, b2, k2, i2)| {
            let n1 = execution_name(&app, &group, &b1, &k1, &i1);
            let n2 = execution_name(&app, &group, &b2, &k2, &i2);
            prop_assert!(may_belong_to_group(&n1, &app, &group), "{}", n1);
            prop_assert!(is_valid_execution_name(&n1), "{}", n1);
            prop_assert!(n1.len() <= MAX_EXECUTION_NAME_LEN);
            prop_assert!(execution_arn(SM_ARN, &n1).is_some());
            prop_assert_eq!(n1 == n2, (b1, k1, i1) == (b2, k2, i2));
            Ok(())
        },
    );

    // The whole trigger handler on mutated fixtures: never panics, and a
    // CodePipeline job never fails the invocation (credentials stay out of
    // the on-failure queue).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (deps, _rules) = permissive_trigger();
    let events: Vec<(Value, Vec<String>)> = TRIGGER_EVENTS
        .iter()
        .map(|text| {
            let v: Value = serde_json::from_str(text).expect("fixture");
            let mut ps = Vec::new();
            pointers(&v, String::new(), &mut ps);
            (v, ps)
        })
        .collect();
    check(
        &mut figures,
        "deploy-trigger: mutated events never panic; CodePipeline jobs never fail the invocation",
        5_000,
        (
            0usize..TRIGGER_EVENTS.len(),
            any::<proptest::sample::Index>(),
            leaf(),
        ),
        |(which, at, value)| {
            let (base, ps) = &events[which];
            let mut payload = base.clone();
            let pointer = at.get(ps);
            if pointer.is_empty() {
                payload = value;
            } else if let Some(slot) = payload.pointer_mut(pointer) {
                *slot = value;
            }
            let is_job = payload.get("CodePipeline.job").is_some();
            let result = rt.block_on(deploy_trigger::handler(
                lambda_runtime::LambdaEvent::new(payload, lambda_runtime::Context::default()),
                &deps,
            ));
            if is_job {
                prop_assert!(
                    result.is_ok(),
                    "a job failed the invocation: {:?}",
                    result.err().map(|e| e.to_string())
                );
            }
            Ok(())
        },
    );

    let total: u32 = figures.iter().map(|f| f.cases).sum();
    let failed: Vec<&Figure> = figures.iter().filter(|f| f.failure.is_some()).collect();
    let millis: u128 = figures.iter().map(|f| f.millis).sum();
    let mut body = String::from("## Properties\n\n");
    body.push_str(&format!(
        "Written by `tests/properties.rs` (`cargo test --workspace -- properties_hold`), proptest, fixed case counts, no persisted seeds. {} properties, {} generated cases, {} failing properties, {:.1} s in this run (debug build).\n\n",
        figures.len(), total, failed.len(), millis as f64 / 1000.0
    ));
    body.push_str("| Property | Cases | Result | Time (ms) |\n| --- | ---: | --- | ---: |\n");
    for f in &figures {
        let result = match &f.failure {
            None => "holds".to_string(),
            Some(why) => format!(
                "FAILS: {}",
                why.chars()
                    .take(200)
                    .collect::<String>()
                    .replace('|', "\\|")
            ),
        };
        body.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            f.name, f.cases, result, f.millis
        ));
    }
    println!("{body}");
    greenlight_e2e::reliability::write_section("properties", &body).expect("write RELIABILITY.md");
    assert!(
        total >= 100_000,
        "at least 100,000 cases per run, have {total}"
    );
    assert!(
        failed.is_empty(),
        "failing properties:\n{}",
        failed
            .iter()
            .map(|f| format!("{}: {}", f.name, f.failure.as_deref().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
