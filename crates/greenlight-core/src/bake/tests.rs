use super::*;
use proptest::prelude::*;

const START: EpochMillis = 1_700_000_000_000;
const MIN: i64 = 60_000;

fn config() -> GroupBake {
    GroupBake {
        application: "shop".into(),
        deployment_group: "shop-bg".into(),
        bake_seconds: 300,
        alarms: vec!["shop-latency".into()],
        thresholds: BakeThresholds {
            max_5xx_count: Some(5),
            max_5xx_rate_percent: Some(1.0),
            max_response_time_ms: Some(500),
            max_unhealthy_hosts: Some(0),
        },
        period_seconds: 60,
        metric_delay_seconds: 60,
        min_look_seconds: 5,
        max_look_seconds: 60,
        standby_target_group: None,
        standby_settle_seconds: 30,
    }
}

fn sample(metric: BakeMetric, at_ms: EpochMillis, value: f64) -> MetricSample {
    MetricSample {
        metric,
        at_ms,
        value,
    }
}

fn alarm(name: &str, state: AlarmState) -> AlarmObservation {
    AlarmObservation {
        name: name.into(),
        state,
        since_ms: Some(START + 10_000),
        reason: "Threshold Crossed: 1 datapoint [9.0] was greater than the threshold (1.0)".into(),
    }
}

fn look(
    config: &GroupBake,
    now_ms: EpochMillis,
    alarms: &[AlarmObservation],
    samples: &[MetricSample],
) -> BakeDecision {
    decide(&BakeInputs {
        config,
        started_at_ms: START,
        now_ms,
        alarms,
        missing_alarms: &[],
        samples,
        probe_failures: &[],
    })
}

fn clean_minute(at: EpochMillis) -> Vec<MetricSample> {
    vec![
        sample(BakeMetric::RequestCount, at, 600.0),
        sample(BakeMetric::Target5xxCount, at, 0.0),
        sample(BakeMetric::TargetResponseTime, at, 0.02),
        sample(BakeMetric::UnHealthyHostCount, at, 0.0),
    ]
}

#[test]
fn a_clean_fleet_keeps_watching_until_bake_and_metric_delay_have_passed() {
    let c = config();
    let ok = [alarm("shop-latency", AlarmState::Ok)];
    let samples: Vec<_> = (0..5).flat_map(|m| clean_minute(START + m * MIN)).collect();
    // bake 300 s + delay 60 s = 360 s
    assert_eq!(
        look(&c, START + 359_999, &ok, &samples),
        BakeDecision::KeepWatching {
            next_look_at_ms: START + 359_999 + 5_000
        }
    );
    assert_eq!(
        look(&c, START + 360_000, &ok, &samples),
        BakeDecision::Pass { baked_seconds: 360 }
    );
    assert_eq!(pass_at_ms(&c, START), START + 360_000);
}

#[test]
fn the_next_look_is_the_pass_time_clamped_to_the_look_bounds() {
    let c = config();
    // far from the pass time: the longest wait
    assert_eq!(
        look(&c, START, &[], &[]),
        BakeDecision::KeepWatching {
            next_look_at_ms: START + 60_000
        }
    );
    // 20 s before it: exactly the pass time
    assert_eq!(
        look(&c, START + 340_000, &[], &[]),
        BakeDecision::KeepWatching {
            next_look_at_ms: START + 360_000
        }
    );
    // 1 s before it: never sooner than the shortest wait
    assert_eq!(
        look(&c, START + 359_000, &[], &[]),
        BakeDecision::KeepWatching {
            next_look_at_ms: START + 364_000
        }
    );
}

#[test]
fn an_alarm_in_alarm_fails_at_once_with_its_reason() {
    let c = config();
    let alarms = [
        alarm("shop-latency", AlarmState::Alarm),
        alarm("group-alarm", AlarmState::InsufficientData),
    ];
    let d = look(&c, START + 1_000, &alarms, &[]);
    let BakeDecision::Fail { evidence } = d else {
        panic!("expected Fail, got {d:?}");
    };
    assert_eq!(evidence.len(), 1);
    assert_eq!(
        evidence[0],
        BakeEvidence::Alarm {
            name: "shop-latency".into(),
            since_ms: Some(START + 10_000),
            reason: alarms[0].reason.clone(),
        }
    );
    assert!(summary(&evidence).starts_with("alarm shop-latency is in ALARM (Threshold Crossed"));
}

#[test]
fn insufficient_data_and_ok_alarms_do_not_fail() {
    let c = config();
    let alarms = [
        alarm("a", AlarmState::Ok),
        alarm("b", AlarmState::InsufficientData),
    ];
    assert!(matches!(
        look(&c, START + 400_000, &alarms, &[]),
        BakeDecision::Pass { .. }
    ));
}

#[test]
fn a_missing_alarm_fails_the_bake() {
    let c = config();
    let missing = vec!["shop-latncy".to_string()];
    let d = decide(&BakeInputs {
        config: &c,
        started_at_ms: START,
        now_ms: START + 400_000,
        alarms: &[],
        missing_alarms: &missing,
        samples: &[],
        probe_failures: &[],
    });
    assert_eq!(
        d,
        BakeDecision::Fail {
            evidence: vec![BakeEvidence::AlarmMissing {
                name: "shop-latncy".into()
            }]
        }
    );
}

#[test]
fn a_failed_probe_fails_the_bake() {
    let c = config();
    let probes = vec!["i-1 at 127.0.0.5:8080 answered 503".to_string()];
    let d = decide(&BakeInputs {
        config: &c,
        started_at_ms: START,
        now_ms: START + 30_000,
        alarms: &[],
        missing_alarms: &[],
        samples: &[],
        probe_failures: &probes,
    });
    let BakeDecision::Fail { evidence } = d else {
        panic!("expected Fail");
    };
    assert_eq!(
        evidence[0].describe(),
        "probe failed: i-1 at 127.0.0.5:8080 answered 503"
    );
}

#[test]
fn too_many_5xx_in_one_minute_fails_with_count_and_rate() {
    let c = config();
    let mut samples = clean_minute(START);
    samples.push(sample(BakeMetric::RequestCount, START + MIN, 100.0));
    samples.push(sample(BakeMetric::Target5xxCount, START + MIN, 40.0));
    let d = look(&c, START + 2 * MIN, &[], &samples);
    let BakeDecision::Fail { evidence } = d else {
        panic!("expected Fail");
    };
    assert_eq!(
        evidence,
        vec![
            BakeEvidence::Metric {
                check: MetricCheck::Target5xxCount,
                period_start_ms: START + MIN,
                value: 40.0,
                limit: 5.0
            },
            BakeEvidence::Metric {
                check: MetricCheck::Target5xxRatePercent,
                period_start_ms: START + MIN,
                value: 40.0,
                limit: 1.0
            },
        ]
    );
    assert!(summary(&evidence).contains("target 5xx answers 40 > limit 5"));
}

#[test]
fn the_rate_alone_fails_when_the_count_check_is_off() {
    let mut c = config();
    c.thresholds.max_5xx_count = None;
    let samples = vec![
        sample(BakeMetric::RequestCount, START, 1000.0),
        sample(BakeMetric::Target5xxCount, START, 11.0),
    ];
    let d = look(&c, START + 30_000, &[], &samples);
    assert_eq!(
        d,
        BakeDecision::Fail {
            evidence: vec![BakeEvidence::Metric {
                check: MetricCheck::Target5xxRatePercent,
                period_start_ms: START,
                // exactly what the decision computes: 11 / 1000 × 100
                value: 11.0 / 1000.0 * 100.0,
                limit: 1.0
            }]
        }
    );
    // at the limit is not over it
    let samples = vec![
        sample(BakeMetric::RequestCount, START, 1000.0),
        sample(BakeMetric::Target5xxCount, START, 10.0),
    ];
    assert!(matches!(
        look(&c, START + 30_000, &[], &samples),
        BakeDecision::KeepWatching { .. }
    ));
}

#[test]
fn errors_without_a_request_count_count_as_all_failed() {
    let mut c = config();
    c.thresholds.max_5xx_count = None;
    let samples = vec![sample(BakeMetric::Target5xxCount, START, 2.0)];
    let d = look(&c, START + 30_000, &[], &samples);
    assert!(matches!(
        &d,
        BakeDecision::Fail { evidence } if matches!(evidence[0], BakeEvidence::Metric { check: MetricCheck::Target5xxRatePercent, value, .. } if value == 100.0)
    ));
}

#[test]
fn slow_answers_and_unhealthy_hosts_fail() {
    let c = config();
    let samples = vec![
        sample(BakeMetric::TargetResponseTime, START, 0.75),
        sample(BakeMetric::UnHealthyHostCount, START, 1.0),
    ];
    let d = look(&c, START + 30_000, &[], &samples);
    assert_eq!(
        d,
        BakeDecision::Fail {
            evidence: vec![
                BakeEvidence::Metric {
                    check: MetricCheck::ResponseTimeMs,
                    period_start_ms: START,
                    value: 750.0,
                    limit: 500.0
                },
                BakeEvidence::Metric {
                    check: MetricCheck::UnhealthyHosts,
                    period_start_ms: START,
                    value: 1.0,
                    limit: 0.0
                },
            ]
        }
    );
}

#[test]
fn checks_that_are_off_never_fail() {
    let mut c = config();
    c.thresholds = BakeThresholds::default();
    let samples = vec![
        sample(BakeMetric::Target5xxCount, START, 1e6),
        sample(BakeMetric::TargetResponseTime, START, 60.0),
        sample(BakeMetric::UnHealthyHostCount, START, 10.0),
    ];
    assert!(matches!(
        look(&c, START + 400_000, &[], &samples),
        BakeDecision::Pass { .. }
    ));
}

#[test]
fn periods_that_ended_before_the_bake_are_ignored_but_the_overlapping_one_counts() {
    let c = config();
    // period [START-60s, START) ended exactly at the start: before the bake
    let before = vec![sample(BakeMetric::Target5xxCount, START - MIN, 100.0)];
    assert!(matches!(
        look(&c, START + 10_000, &[], &before),
        BakeDecision::KeepWatching { .. }
    ));
    // period [START-59s, START+1s) overlaps the bake
    let overlapping = vec![sample(
        BakeMetric::Target5xxCount,
        START - MIN + 1_000,
        100.0,
    )];
    assert!(matches!(
        look(&c, START + 10_000, &[], &overlapping),
        BakeDecision::Fail { .. }
    ));
}

#[test]
fn non_finite_values_are_ignored() {
    let c = config();
    let samples = vec![
        sample(BakeMetric::Target5xxCount, START, f64::NAN),
        sample(BakeMetric::TargetResponseTime, START, f64::INFINITY),
    ];
    assert!(matches!(
        look(&c, START + 10_000, &[], &samples),
        BakeDecision::KeepWatching { .. }
    ));
}

#[test]
fn two_datapoints_for_one_period_count_as_the_worse() {
    let c = config();
    let samples = vec![
        sample(BakeMetric::UnHealthyHostCount, START, 0.0),
        sample(BakeMetric::UnHealthyHostCount, START, 2.0),
    ];
    assert!(matches!(
        look(&c, START + 10_000, &[], &samples),
        BakeDecision::Fail { .. }
    ));
}

#[test]
fn evidence_lists_alarms_then_missing_then_metrics_then_probes() {
    let c = config();
    let missing = vec!["gone".to_string()];
    let probes = vec!["i-2 refused".to_string()];
    let alarms = [alarm("a", AlarmState::Alarm)];
    let samples = vec![sample(BakeMetric::UnHealthyHostCount, START, 1.0)];
    let d = decide(&BakeInputs {
        config: &c,
        started_at_ms: START,
        now_ms: START + 10_000,
        alarms: &alarms,
        missing_alarms: &missing,
        samples: &samples,
        probe_failures: &probes,
    });
    let BakeDecision::Fail { evidence } = d else {
        panic!("expected Fail");
    };
    let kinds: Vec<_> = evidence
        .iter()
        .map(|e| match e {
            BakeEvidence::Alarm { .. } => "alarm",
            BakeEvidence::AlarmMissing { .. } => "missing",
            BakeEvidence::Metric { .. } => "metric",
            BakeEvidence::Probe { .. } => "probe",
        })
        .collect();
    assert_eq!(kinds, ["alarm", "missing", "metric", "probe"]);
    assert_eq!(
        summary(&evidence),
        format!(
            "{}; {}; {}; and 1 more",
            evidence[0].describe(),
            evidence[1].describe(),
            evidence[2].describe()
        )
    );
}

#[test]
fn summary_of_nothing_says_so() {
    assert_eq!(summary(&[]), "the bake failed without evidence");
}

#[test]
fn the_metric_window_is_aligned_to_the_period_and_covers_the_bake() {
    // START is 1_700_000_000_000 = 20 s into a minute
    let minute = START.div_euclid(MIN) * MIN;
    assert_eq!(
        metric_window(START, START + 90_000, 60),
        (minute - MIN, minute + 2 * MIN)
    );
    // a look at the very start still spans at least one period
    let (a, b) = metric_window(START, START, 60);
    assert_eq!((a, b), (minute - MIN, minute + MIN));
    let (a, b) = metric_window(START, START + 1, 300);
    assert_eq!(a % 300_000, 0);
    assert!(b > START && b % 300_000 == 0);
}

#[test]
fn wait_seconds_round_up_and_are_at_least_one() {
    assert_eq!(wait_seconds(0, 0), 1);
    assert_eq!(wait_seconds(0, -5_000), 1);
    assert_eq!(wait_seconds(0, 1), 1);
    assert_eq!(wait_seconds(0, 1_000), 1);
    assert_eq!(wait_seconds(0, 1_001), 2);
    assert_eq!(wait_seconds(0, 60_000), 60);
}

#[test]
fn saved_seconds_is_the_wait_minus_the_bake() {
    assert_eq!(saved_seconds(Some(300), START, START + 90_000), Some(210));
    assert_eq!(saved_seconds(Some(60), START, START + 90_000), Some(0));
    assert_eq!(saved_seconds(None, START, START + 90_000), None);
    assert_eq!(saved_seconds(Some(300), START, START - 5_000), Some(300));
}

#[test]
fn metric_names_statistics_and_query_ids_round_trip() {
    for m in BakeMetric::ALL {
        assert_eq!(BakeMetric::from_query_id(m.query_id()), Some(m));
        let id = m.query_id();
        assert!(id.chars().next().is_some_and(|c| c.is_ascii_lowercase()));
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    }
    assert_eq!(BakeMetric::from_query_id("nope"), None);
    assert_eq!(
        BakeMetric::Target5xxCount.metric_name(),
        "HTTPCode_Target_5XX_Count"
    );
    assert_eq!(BakeMetric::TargetResponseTime.statistic(), "Average");
    assert_eq!(BakeMetric::UnHealthyHostCount.statistic(), "Maximum");
    assert_eq!(BakeMetric::RequestCount.statistic(), "Sum");
}

#[test]
fn config_parses_with_defaults_and_finds_the_group() {
    let groups = parse_bake_config(
        r#"[{"application": "shop", "deploymentGroup": "shop-bg", "bakeSeconds": 120,
             "alarms": ["shop-5xx"], "thresholds": {"max5xxCount": 0, "max5xxRatePercent": 0.5}}]"#,
    )
    .expect("valid");
    assert_eq!(groups.len(), 1);
    let g = bake_for(&groups, "shop", "shop-bg").expect("configured");
    assert_eq!(g.bake_seconds, 120);
    assert_eq!(g.period_seconds, 60);
    assert_eq!(g.metric_delay_seconds, 60);
    assert_eq!((g.min_look_seconds, g.max_look_seconds), (5, 60));
    assert_eq!(g.thresholds.max_5xx_count, Some(0));
    assert_eq!(g.thresholds.max_response_time_ms, None);
    assert!(bake_for(&groups, "shop", "other").is_none());
    assert!(bake_for(&groups, "other", "shop-bg").is_none());
    assert_eq!(parse_bake_config("  ").expect("empty"), Vec::new());
}

#[test]
fn config_errors_name_the_entry_and_the_fix() {
    let cases = [
        ("{}", "not a JSON list"),
        (
            r#"[{"application":"a","deploymentGroup":"g","bakeSeconds":60,"typo":1}]"#,
            "unknown field",
        ),
        (
            r#"[{"application":"a","deploymentGroup":"g","bakeSeconds":60},{"application":"a","deploymentGroup":"g","bakeSeconds":90}]"#,
            "names a/g twice",
        ),
        (
            r#"[{"application":"a","deploymentGroup":"g","bakeSeconds":0}]"#,
            "bakeSeconds 0 must be",
        ),
        (
            r#"[{"application":"a","deploymentGroup":"g","bakeSeconds":172801}]"#,
            "bakeSeconds 172801 must be",
        ),
        (
            r#"[{"application":"","deploymentGroup":"g","bakeSeconds":60}]"#,
            "must not be empty",
        ),
        (
            r#"[{"application":"a","deploymentGroup":"g","bakeSeconds":60,"periodSeconds":30}]"#,
            "multiple of 60",
        ),
        (
            r#"[{"application":"a","deploymentGroup":"g","bakeSeconds":60,"minLookSeconds":61}]"#,
            "minLookSeconds 61",
        ),
        (
            r#"[{"application":"a","deploymentGroup":"g","bakeSeconds":60,"maxLookSeconds":4000}]"#,
            "maxLookSeconds 4000",
        ),
        (
            r#"[{"application":"a","deploymentGroup":"g","bakeSeconds":60,"alarms":[""]}]"#,
            "alarm name is empty",
        ),
        (
            r#"[{"application":"a","deploymentGroup":"g","bakeSeconds":60,"thresholds":{"max5xxRatePercent":101}}]"#,
            "max5xxRatePercent 101",
        ),
    ];
    for (text, expected) in cases {
        let err = parse_bake_config(text).expect_err(text).to_string();
        assert!(err.contains(expected), "{text}: {err}");
    }
    let many: Vec<String> = (0..=MAX_ALARMS).map(|i| format!("\"a{i}\"")).collect();
    let text = format!(
        r#"[{{"application":"a","deploymentGroup":"g","bakeSeconds":60,"alarms":[{}]}}]"#,
        many.join(",")
    );
    assert!(parse_bake_config(&text)
        .expect_err("too many")
        .to_string()
        .contains("at most 100"));
}

#[test]
fn report_and_decision_json_shapes() {
    let report = BakeReport {
        deployment_id: "d-1".into(),
        verdict: BakeVerdict::Watching,
        started_at_ms: Some(START),
        looked_at_ms: START + 5_000,
        looks: 1,
        bake_seconds: Some(300),
        wait_seconds: 60,
        evidence: vec![],
        summary: "watching".into(),
        saved_seconds: None,
        tuned: vec![],
        standby: None,
        standby_note: None,
    };
    let json = serde_json::to_value(&report).expect("serializes");
    assert_eq!(json["verdict"], "watching");
    assert_eq!(json["waitSeconds"], 60);
    assert_eq!(json["startedAtMs"], START);
    assert!(json.get("evidence").is_none());
    let back: BakeReport = serde_json::from_value(json).expect("round trip");
    assert_eq!(back, report);
    for (v, s) in [
        (BakeVerdict::NotConfigured, "notConfigured"),
        (BakeVerdict::Passed, "passed"),
        (BakeVerdict::Failed, "failed"),
        (BakeVerdict::Ended, "ended"),
        (BakeVerdict::Skipped, "skipped"),
    ] {
        assert_eq!(serde_json::to_value(v).expect("serializes"), s);
    }
    let e = BakeEvidence::Metric {
        check: MetricCheck::Target5xxCount,
        period_start_ms: START,
        value: 3.0,
        limit: 0.0,
    };
    let json = serde_json::to_value(&e).expect("serializes");
    assert_eq!(json["kind"], "metric");
    assert_eq!(json["check"], "target5xxCount");
    assert_eq!(
        serde_json::to_value(AlarmState::InsufficientData).expect("serializes"),
        "INSUFFICIENT_DATA"
    );
}

fn arb_state() -> impl Strategy<Value = AlarmState> {
    prop_oneof![
        Just(AlarmState::Ok),
        Just(AlarmState::Alarm),
        Just(AlarmState::InsufficientData)
    ]
}

fn arb_metric() -> impl Strategy<Value = BakeMetric> {
    prop_oneof![
        Just(BakeMetric::Target5xxCount),
        Just(BakeMetric::RequestCount),
        Just(BakeMetric::TargetResponseTime),
        Just(BakeMetric::UnHealthyHostCount)
    ]
}

fn arb_config() -> impl Strategy<Value = GroupBake> {
    (
        1u32..=MAX_BAKE_SECONDS,
        0u32..=600,
        1u32..=120,
        0u32..=600,
        prop::option::of(0u64..50),
        prop::option::of(0.0f64..=100.0),
    )
        .prop_map(|(bake, delay, min_look, extra, count, rate)| GroupBake {
            bake_seconds: bake,
            metric_delay_seconds: delay,
            min_look_seconds: min_look,
            max_look_seconds: min_look + extra,
            thresholds: BakeThresholds {
                max_5xx_count: count,
                max_5xx_rate_percent: rate,
                ..BakeThresholds::default()
            },
            ..config()
        })
}

proptest! {
    #[test]
    fn never_passes_early_next_look_in_bounds_any_alarm_fails(
        c in arb_config(),
        offset in -100_000i64..(MAX_BAKE_SECONDS as i64 * 1_000 + 1_000_000),
        states in prop::collection::vec(arb_state(), 0..6),
        raw in prop::collection::vec((arb_metric(), -120_000i64..400_000_000, 0.0f64..1e4), 0..12),
    ) {
        let now = START + offset;
        let alarms: Vec<_> = states
            .iter()
            .enumerate()
            .map(|(i, s)| alarm(&format!("a{i}"), *s))
            .collect();
        let samples: Vec<_> = raw.iter().map(|(m, at, v)| sample(*m, START + at, *v)).collect();
        let d = look(&c, now, &alarms, &samples);
        let any_alarm = states.contains(&AlarmState::Alarm);
        match d {
            BakeDecision::Pass { baked_seconds } => {
                prop_assert!(!any_alarm);
                prop_assert!(now >= START + i64::from(c.bake_seconds) * 1_000);
                prop_assert!(now >= pass_at_ms(&c, START));
                prop_assert!(baked_seconds >= c.bake_seconds);
            }
            BakeDecision::Fail { evidence } => {
                prop_assert!(!evidence.is_empty());
            }
            BakeDecision::KeepWatching { next_look_at_ms } => {
                prop_assert!(!any_alarm);
                prop_assert!(now < pass_at_ms(&c, START));
                prop_assert!(next_look_at_ms >= now + i64::from(c.min_look_seconds) * 1_000);
                prop_assert!(next_look_at_ms <= now + i64::from(c.max_look_seconds) * 1_000);
                let w = wait_seconds(now, next_look_at_ms);
                prop_assert!(w >= c.min_look_seconds && w <= c.max_look_seconds);
            }
        }
        if any_alarm {
            prop_assert!(matches!(look(&c, now, &alarms, &samples), BakeDecision::Fail { .. }), "an alarm in ALARM must fail");
        }
    }

    #[test]
    fn clean_samples_never_fail(
        c in arb_config(),
        minutes in 0i64..20,
        offset in 0i64..400_000_000,
    ) {
        let samples: Vec<_> = (0..minutes).flat_map(|m| clean_minute(START + m * MIN)).collect();
        let d = look(&c, START + offset, &[alarm("a", AlarmState::Ok)], &samples);
        prop_assert!(!matches!(d, BakeDecision::Fail { .. }), "{:?}", d);
    }
}

#[test]
fn the_override_skips_only_a_group_that_bakes() {
    use crate::options::{BakeSkip, RequestedBy};
    let c = config();
    let skip = BakeSkip {
        requested_by: RequestedBy::ObjectTag,
    };
    assert_eq!(plan(Some(&c), None), BakePlan::Watch(&c));
    assert_eq!(
        plan(Some(&c), Some(&skip)),
        BakePlan::Skip {
            config: &c,
            skip: &skip
        }
    );
    // Nothing to skip: the group keeps the plain termination wait.
    assert_eq!(plan(None, Some(&skip)), BakePlan::NotConfigured);
    assert_eq!(plan(None, None), BakePlan::NotConfigured);
    let summary = skipped_summary("S3 tag greenlight-bake=skip on s3://b/k@v1");
    assert!(
        summary
            .starts_with("bake SKIPPED by override (S3 tag greenlight-bake=skip on s3://b/k@v1)"),
        "{summary}"
    );
    assert!(summary.contains("no early termination"), "{summary}");
}
