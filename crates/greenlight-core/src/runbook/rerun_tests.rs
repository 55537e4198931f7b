//! A failure handler that died mid-runbook: whose fresh claim may be taken
//! over ([`marker_decision_after`], [`failure_path_ended`]).

use super::*;

const NOW: EpochMillis = 1_714_565_200_000;

fn claim(execution: Option<&str>, age_ms: EpochMillis) -> ReportMarker {
    ReportMarker::InProgress {
        claimed_at_ms: NOW - age_ms,
        claimed_by: "req-dead".into(),
        execution: execution.map(str::to_string),
    }
}

fn end(status: &str, error: Option<&str>) -> ExecutionEnd {
    ExecutionEnd {
        execution_arn: "arn:aws:states:us-east-1:111122223333:execution:greenlight-pipeline:exec-1"
            .into(),
        state_machine_arn: "arn:aws:states:us-east-1:111122223333:stateMachine:greenlight-pipeline"
            .into(),
        name: "exec-1".into(),
        status: status.into(),
        error: error.map(str::to_string),
        cause: None,
    }
}

#[test]
fn a_fresh_claim_of_the_ended_failure_path_is_taken_over_at_once() {
    for age in [0, 1_000, TAKEOVER_AFTER_MS - 1] {
        let m = claim(Some("exec-1"), age);
        match marker_decision_after(
            ExistingMarker::Found(&m),
            NOW,
            TAKEOVER_AFTER_MS,
            Some("exec-1"),
        ) {
            MarkerDecision::TakeOver { reason } => {
                assert!(reason.contains("req-dead"), "{reason}");
                assert!(reason.contains("exec-1"), "{reason}");
            }
            other => panic!("age {age}: {other:?}"),
        }
    }
}

#[test]
fn other_fresh_claims_are_still_respected() {
    let cases = [
        // Another execution's failure path.
        (claim(Some("exec-2"), 1_000), Some("exec-1")),
        // An event-driven claim (no execution): maybe alive.
        (claim(None, 1_000), Some("exec-1")),
        // Nobody is known to have ended.
        (claim(Some("exec-1"), 1_000), None),
    ];
    for (m, ended) in cases {
        match marker_decision_after(ExistingMarker::Found(&m), NOW, TAKEOVER_AFTER_MS, ended) {
            MarkerDecision::Skip { report: None, .. } => {}
            other => panic!("{m:?} / {ended:?}: {other:?}"),
        }
        // And marker_decision is marker_decision_after knowing nothing.
        assert_eq!(
            marker_decision(ExistingMarker::Found(&m), NOW, TAKEOVER_AFTER_MS),
            marker_decision_after(ExistingMarker::Found(&m), NOW, TAKEOVER_AFTER_MS, None)
        );
    }
}

#[test]
fn the_claims_execution_round_trips_and_old_markers_still_parse() {
    let m = claim(Some("exec-1"), 0);
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["execution"], "exec-1");
    assert_eq!(serde_json::from_value::<ReportMarker>(json).unwrap(), m);
    let old =
        serde_json::json!({"state": "inProgress", "claimedAtMs": NOW, "claimedBy": "req-dead"});
    assert_eq!(
        serde_json::from_value::<ReportMarker>(old).unwrap(),
        claim(None, 0)
    );
    let none = serde_json::to_value(claim(None, 0)).unwrap();
    assert!(none.get("execution").is_none(), "{none}");
}

#[test]
fn only_a_failure_handler_failed_end_proves_the_failure_path_ended() {
    assert_eq!(
        failure_path_ended(&end("FAILED", Some(crate::errors::FAILURE_HANDLER_FAILED))),
        Some("exec-1")
    );
    for (status, error) in [
        ("FAILED", Some("States.Runtime")),
        ("FAILED", Some("States.DataLimitExceeded")),
        ("FAILED", None),
        ("ABORTED", None),
        ("ABORTED", Some(crate::errors::FAILURE_HANDLER_FAILED)),
        ("TIMED_OUT", Some("States.Timeout")),
    ] {
        assert_eq!(
            failure_path_ended(&end(status, error)),
            None,
            "{status} {error:?}"
        );
    }
    let mut nameless = end("FAILED", Some(crate::errors::FAILURE_HANDLER_FAILED));
    nameless.name = " ".into();
    assert_eq!(failure_path_ended(&nameless), None);
}
