use super::*;
use crate::bake::standby::{Route, RouteAction, RouteKind, StandbyTarget};

const MAIN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/demo-tg/73e2d6bc24d8a067";
const STANDBY: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/demo-standby/6d0ecf831eec9f09";

fn listener(n: usize) -> Route {
    Route {
        kind: RouteKind::Listener,
        arn: format!(
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/demo-alb/50dc6c495c0c9188/f2f7dc8efc52{n:04}"
        ),
        actions: vec![RouteAction {
            action_type: "forward".into(),
            order: Some(1),
            target_group_arn: Some(MAIN.into()),
            forward_to: Vec::new(),
            stickiness: None,
        }],
    }
}

fn state(routes: usize, weights: Weights) -> StandbyState {
    StandbyState {
        deployment_id: "d-ABCDEF123".into(),
        main_target_group_arn: MAIN.into(),
        standby_target_group_arn: STANDBY.into(),
        blue_targets: vec![
            StandbyTarget {
                instance_id: "i-0123456789abcdef0".into(),
                port: 8080,
            },
            StandbyTarget {
                instance_id: "i-0fedcba9876543210".into(),
                port: 8080,
            },
        ],
        routes: (0..routes).map(listener).collect(),
        weights,
        restored: false,
        settle_seconds: 30,
        switched_at_ms: None,
    }
}

/// The documented ELB tag value pattern `^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`.
fn tag_safe(v: &str) -> bool {
    v.chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
}

#[test]
fn base64_round_trips_every_length_and_matches_known_vectors() {
    // RFC 4648 section 10 test vectors.
    for (plain, encoded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64_encode(plain.as_bytes()), encoded);
        assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
    }
    let all: Vec<u8> = (0..=255u8).collect();
    assert_eq!(base64_decode(&base64_encode(&all)).unwrap(), all);
}

#[test]
fn base64_rejects_bad_text() {
    assert!(base64_decode("Zm9").is_err(), "length not a multiple of 4");
    assert!(base64_decode("Zm9{").is_err(), "not in the alphabet");
    assert!(base64_decode("Zg==Zm9v").is_err(), "padding in the middle");
    assert!(base64_decode("Z===").is_err(), "three padding characters");
}

#[test]
fn a_record_round_trips_within_the_elb_tag_limits() {
    let s = state(3, Weights::Switched);
    let tags = encode_record(&s).unwrap();
    assert_eq!(tags[0].0, RECORD_TAG_KEY);
    assert_eq!(tags[0].1, format!("v1 parts={}", tags.len() - 1));
    assert!(tags.len() > 2, "a three-route record spans several parts");
    for (k, v) in &tags {
        assert!(k.chars().count() <= 127, "{k}");
        assert!(
            v.chars().count() <= MAX_TAG_VALUE_CHARS,
            "{k} is {} long",
            v.len()
        );
        assert!(tag_safe(k) && tag_safe(v), "{k}={v}");
    }
    // Other tags around it (the user's, the settings snapshot) do not matter.
    let mut all = vec![
        ("team".to_string(), "web".to_string()),
        (
            "greenlight:snapshot".to_string(),
            "v1 interval=30".to_string(),
        ),
    ];
    all.extend(tags.iter().rev().cloned());
    assert_eq!(decode_record(&all), RecordRead::Found(Box::new(s)));
}

#[test]
fn a_record_too_big_for_the_tags_is_refused_with_why() {
    let err = encode_record(&state(40, Weights::Armed)).unwrap_err();
    assert!(err.contains("the standby is not armed"), "{err}");
    assert!(err.contains("40 route(s)"), "{err}");
    // The largest that fits still fits.
    let fits = (1..40)
        .take_while(|&n| encode_record(&state(n, Weights::Armed)).is_ok())
        .last()
        .unwrap();
    assert!(fits >= 6, "at least six listeners/rules fit, {fits} did");
    assert_eq!(
        encode_record(&state(fits, Weights::Armed)).unwrap().len(),
        MAX_RECORD_PARTS + 1
    );
}

#[test]
fn no_record_tags_is_absent() {
    assert_eq!(decode_record(&[]), RecordRead::Absent);
    assert_eq!(
        decode_record(&[("greenlight:snapshot".into(), "v1".into())]),
        RecordRead::Absent
    );
}

#[test]
fn missing_or_bad_record_tags_are_corrupt_not_absent() {
    let tags = encode_record(&state(2, Weights::Armed)).unwrap();
    let corrupt = |t: &[(String, String)]| matches!(decode_record(t), RecordRead::Corrupt { .. });
    // Header gone, parts left.
    assert!(corrupt(&tags[1..]));
    // A part gone.
    let mut missing = tags.clone();
    missing.remove(2);
    assert!(corrupt(&missing));
    // Header says more parts than there are, or nonsense.
    let mut more = tags.clone();
    more[0].1 = format!("v1 parts={}", tags.len());
    assert!(corrupt(&more));
    let mut bad = tags.clone();
    bad[0].1 = "v2 whatever".into();
    assert!(corrupt(&bad));
    let mut zero = tags.clone();
    zero[0].1 = "v1 parts=0".into();
    assert!(corrupt(&zero));
    // A part edited.
    let mut edited = tags.clone();
    edited[1].1 = "AAAA".into();
    assert!(corrupt(&edited));
}

#[test]
fn stale_parts_beyond_the_header_count_are_not_read() {
    // A longer record (3 routes) overwritten by a shorter one: its extra
    // parts stay until removal, and must not be read.
    let long = encode_record(&state(3, Weights::Armed)).unwrap();
    let short_state = state(1, Weights::Switched);
    let short = encode_record(&short_state).unwrap();
    assert!(long.len() > short.len());
    let mut tags: Vec<(String, String)> = long
        .iter()
        .filter(|(k, _)| !short.iter().any(|(sk, _)| sk == k))
        .cloned()
        .collect();
    tags.extend(short.iter().cloned());
    assert_eq!(
        decode_record(&tags),
        RecordRead::Found(Box::new(short_state))
    );
    // ... and are removed with it.
    let keys = record_keys(&tags);
    assert_eq!(keys.len(), long.len());
    assert!(!keys.contains(&"team".to_string()));
}

#[test]
fn only_this_deployments_record_on_its_own_target_group_is_acted_on() {
    let s = state(1, Weights::Switched);
    assert_eq!(
        decide_recorded(&s, MAIN, Some("d-ABCDEF123")),
        RecordedDecision::PutBack
    );
    for (on, id) in [
        (STANDBY, Some("d-ABCDEF123")),
        (MAIN, Some("d-OTHER")),
        (MAIN, None),
        (MAIN, Some("")),
    ] {
        assert!(
            matches!(
                decide_recorded(&s, on, id),
                RecordedDecision::LeaveAlone { .. }
            ),
            "{on} {id:?}"
        );
    }
    // A state from before the record (no deployment id) is never matched.
    let mut old = s.clone();
    old.deployment_id = String::new();
    assert!(matches!(
        decide_recorded(&old, MAIN, Some("")),
        RecordedDecision::LeaveAlone { .. }
    ));
}

#[test]
fn armed_routes_deregister_at_once_whatever_the_time_left() {
    for left in [None, Some(0), Some(1_000), Some(900_000)] {
        assert_eq!(settle_plan(Weights::Armed, 300, left), Settle::Now);
    }
}

#[test]
fn switched_routes_wait_the_settle_only_when_it_fits_the_invocation() {
    assert_eq!(
        settle_plan(Weights::Switched, 30, None),
        Settle::Wait { seconds: 30 }
    );
    // 30 s settle + 30 s reserve = 60 s: exactly fits.
    assert_eq!(
        settle_plan(Weights::Switched, 30, Some(60_000)),
        Settle::Wait { seconds: 30 }
    );
    let Settle::Leave { reason } = settle_plan(Weights::Switched, 30, Some(59_999)) else {
        panic!("expected Leave");
    };
    assert!(
        reason.contains("30 s settle") && reason.contains("59 s"),
        "{reason}"
    );
    // The longest settle allowed (300 s) after a long rollback wait in a
    // 300 s Lambda never sleeps past the deadline.
    assert!(matches!(
        settle_plan(Weights::Switched, 300, Some(120_000)),
        Settle::Leave { .. }
    ));
    assert!(matches!(
        settle_plan(Weights::Switched, 0, Some(-5)),
        Settle::Leave { .. }
    ));
}
