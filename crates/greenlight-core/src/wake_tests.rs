use super::*;
use crate::approval::{pending_task, HistoryEvent, NoPendingApproval};
use crate::model::DeploymentStatus as S;

const B: EventWaitBounds = EventWaitBounds {
    min_seconds: 5,
    max_seconds: 3600,
};
const NOW: EpochMillis = 10_000_000;
const FAR: EpochMillis = NOW + 100_000_000;

fn row(phase: Phase, started_s_ago: i64, predicted: Option<u32>) -> PhaseTiming {
    PhaseTiming {
        phase,
        started_at_ms: NOW - started_s_ago * 1000,
        ended_at_ms: None,
        predicted_seconds: predicted,
    }
}

#[test]
fn only_ready_and_the_ends_wake_the_loop() {
    for state in ["READY", "SUCCESS", "FAILURE", "STOP"] {
        assert!(wakes(state), "{state}");
    }
    for state in ["START", "", "ready", "RESUME"] {
        assert!(!wakes(state), "{state}");
    }
}

#[test]
fn the_await_task_looks_at_once_only_when_the_deployment_moved_to_a_state_the_loop_acts_on() {
    assert!(changed_since_look(S::InProgress, S::Ready));
    assert!(changed_since_look(S::InProgress, S::Succeeded));
    assert!(changed_since_look(S::Ready, S::Failed));
    assert!(changed_since_look(S::InProgress, S::Stopped));
    // Unchanged, or moved to a state the loop only waits through.
    assert!(!changed_since_look(S::InProgress, S::InProgress));
    assert!(!changed_since_look(S::Ready, S::Ready));
    assert!(!changed_since_look(S::Created, S::InProgress));
    assert!(!changed_since_look(S::Ready, S::InProgress));
    assert!(!changed_since_look(S::InProgress, S::Baking));
}

#[test]
fn before_ready_the_wait_runs_to_the_predicted_ready() {
    let p = Predictions::default();
    // Installing for 30 s of 2 × 90 s, then the 10 s ready gap.
    let ledger = [row(Phase::Installing, 30, Some(180))];
    let wait = event_wait_seconds(Phase::Installing, &ledger, &p, 2, FAR, NOW, B);
    assert_eq!(wait, 150 + 10);
    // Queued: every phase up to Ready (10 + 240 + 180 + 10).
    let wait = event_wait_seconds(Phase::Queued, &[], &p, 2, FAR, NOW, B);
    assert_eq!(wait, 10 + 240 + 180 + 10);
}

#[test]
fn after_the_reroute_the_wait_runs_to_the_predicted_end_including_the_termination_wait() {
    let mut p = Predictions {
        terminating_seconds: 2 * 3600 + 60,
        allow_traffic_seconds: 25,
        block_traffic_seconds: 30,
        ..Predictions::default()
    };
    let ledger = [row(Phase::Rerouting, 10, Some(110))];
    // 100 s of rerouting left, then the termination wait: capped at the max.
    let wait = event_wait_seconds(Phase::Rerouting, &ledger, &p, 2, FAR, NOW, B);
    assert_eq!(wait, 3600);
    // A short termination wait is waited out whole.
    p.terminating_seconds = 600;
    let wait = event_wait_seconds(Phase::Rerouting, &ledger, &p, 2, FAR, NOW, B);
    assert_eq!(wait, 100 + 600);
    let ledger = [row(Phase::Terminating, 100, Some(600))];
    let wait = event_wait_seconds(Phase::Terminating, &ledger, &p, 2, FAR, NOW, B);
    assert_eq!(wait, 500);
}

#[test]
fn a_phase_past_its_prediction_waits_a_quarter_of_its_age_plus_what_follows() {
    let p = Predictions::default();
    // Installing predicted 180 s, 400 s old: 100 s, then the 10 s gap.
    let ledger = [row(Phase::Installing, 400, Some(180))];
    let wait = event_wait_seconds(Phase::Installing, &ledger, &p, 2, FAR, NOW, B);
    assert_eq!(wait, 100 + 10);
}

#[test]
fn the_wait_is_bounded_by_min_max_and_the_deadline() {
    let p = Predictions::default();
    // Ready gap nearly over: the minimum.
    let ledger = [row(Phase::ReadyWait, 9, Some(10))];
    assert_eq!(
        event_wait_seconds(Phase::ReadyWait, &ledger, &p, 2, FAR, NOW, B),
        5
    );
    // The deadline 60 s away bounds a 440 s prediction.
    assert_eq!(
        event_wait_seconds(Phase::Queued, &[], &p, 2, NOW + 60_000, NOW, B),
        60
    );
    // Past the deadline: the minimum (the look then stops the deployment).
    assert_eq!(
        event_wait_seconds(Phase::Queued, &[], &p, 2, NOW - 1, NOW, B),
        5
    );
    // A max below the min is read as the min; a zero min as 1 (never a
    // zero timeout, which Step Functions refuses).
    let odd = EventWaitBounds {
        min_seconds: 0,
        max_seconds: 0,
    };
    assert_eq!(
        event_wait_seconds(Phase::Queued, &[], &p, 2, FAR, NOW, odd),
        1
    );
}

#[test]
fn the_wake_output_names_the_deployment_and_the_cause() {
    let out: serde_json::Value = serde_json::from_str(&wake_output("d-1", "READY")).expect("json");
    assert_eq!(
        out,
        serde_json::json!({"deploymentId": "d-1", "wokenBy": "READY"})
    );
}

#[test]
fn the_events_fixture_parses_as_a_state_change() {
    let event: serde_json::Value = serde_json::from_str(include_str!(
        "../../../events/codedeploy-state-change-ready.json"
    ))
    .expect("fixture");
    let detail: DeploymentStateChange =
        serde_json::from_value(event["detail"].clone()).expect("detail");
    assert_eq!(detail.state, "READY");
    assert!(detail.deployment_id.starts_with("d-"));
    assert!(wakes(&detail.state));
}

fn event(id: i64, kind: &str, state: Option<&str>, parameters: Option<&str>) -> HistoryEvent {
    HistoryEvent {
        id,
        kind: kind.to_string(),
        state_name: state.map(str::to_string),
        parameters: parameters.map(str::to_string),
    }
}

#[test]
fn the_token_of_the_waiting_loop_is_found_and_a_finished_wait_has_none() {
    let params = r#"{"FunctionName":"w","Payload":{"action":"await","taskToken":"tok-2"}}"#;
    let mut history = vec![
        event(1, "ExecutionStarted", None, None),
        event(2, "TaskStateEntered", Some(AWAIT_EVENT_STATE), None),
        event(
            3,
            "TaskScheduled",
            None,
            Some(&params.replace("tok-2", "tok-1")),
        ),
        event(4, "TaskTimedOut", None, None),
        event(5, "TaskStateExited", Some(AWAIT_EVENT_STATE), None),
        event(6, "TaskStateEntered", Some("Status"), None),
        event(7, "TaskStateExited", Some("Status"), None),
        event(8, "TaskStateEntered", Some(AWAIT_EVENT_STATE), None),
        event(9, "TaskScheduled", None, Some(params)),
        event(10, "TaskStarted", None, None),
    ];
    let pending = pending_task(&history, AWAIT_EVENT_STATE).expect("waiting");
    assert_eq!(
        (pending.task_token.as_str(), pending.scheduled_event_id),
        ("tok-2", 9)
    );
    history.push(event(11, "TaskSucceeded", None, None));
    assert_eq!(
        pending_task(&history, AWAIT_EVENT_STATE),
        Err(NoPendingApproval::AlreadyAnswered)
    );
    // Entered but not yet scheduled: no token yet (the await task answers
    // its own token when the deployment moved meanwhile).
    assert_eq!(
        pending_task(&history[..8], AWAIT_EVENT_STATE),
        Err(NoPendingApproval::NoToken)
    );
    assert_eq!(
        pending_task(&history[..1], AWAIT_EVENT_STATE),
        Err(NoPendingApproval::NeverAsked)
    );
}
