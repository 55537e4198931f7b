use super::*;

fn group(suspended: &[&str], desired: i32, instances: u32, tag: Option<&str>) -> GroupScaling {
    GroupScaling {
        name: "shop-blue".into(),
        suspended: suspended.iter().map(|s| s.to_string()).collect(),
        desired_capacity: desired,
        instance_count: instances,
        hold_tag: tag.map(str::to_string),
        deleting: false,
    }
}

fn held() -> Vec<String> {
    HELD_PROCESSES.iter().map(|p| p.to_string()).collect()
}

#[test]
fn the_held_processes_are_launch_terminate_and_the_ones_that_use_them() {
    assert_eq!(
        HELD_PROCESSES,
        [
            "Launch",
            "Terminate",
            "AZRebalance",
            "ReplaceUnhealthy",
            "AlarmNotification",
            "InstanceRefresh"
        ]
    );
    assert!(!HELD_PROCESSES.contains(&"ScheduledActions"));
    assert!(!HELD_PROCESSES.contains(&"HealthCheck"));
}

#[test]
fn the_tag_round_trips_and_rejects_anything_else() {
    let record = HoldRecord {
        execution: "shop-20261202-abc".into(),
        processes: vec!["Launch".into(), "Terminate".into()],
        desired: 2,
        instances: 2,
    };
    let value = record.tag_value();
    assert_eq!(
        value,
        "desired=2;instances=2;suspended=Launch,Terminate;execution=shop-20261202-abc"
    );
    assert_eq!(HoldRecord::parse(&value), Some(record));
    let empty = HoldRecord {
        execution: "e".into(),
        processes: vec![],
        desired: 0,
        instances: 0,
    };
    assert_eq!(HoldRecord::parse(&empty.tag_value()), Some(empty));
    for bad in [
        "",
        "held",
        "desired=x;instances=2;suspended=Launch;execution=e",
        "desired=2;instances=2;suspended=Launch;execution=",
        "desired=2;suspended=Launch;execution=e",
    ] {
        assert_eq!(HoldRecord::parse(bad), None, "{bad}");
    }
}

#[test]
fn the_longest_tag_fits_an_auto_scaling_tag_value() {
    let record = HoldRecord {
        execution: "x".repeat(80),
        processes: held(),
        desired: i32::MAX,
        instances: u32::MAX,
    };
    assert!(
        record.tag_value().len() <= 256,
        "{}",
        record.tag_value().len()
    );
}

#[test]
fn a_fresh_hold_records_then_suspends_every_held_process() {
    let plan = plan_hold(&group(&[], 2, 2, None), "exec-1");
    assert_eq!(plan.suspend, held());
    assert_eq!(plan.record.desired, 2);
    assert_eq!(plan.record.instances, 2);
    assert_eq!(plan.write_tag, Some(plan.record.tag_value()));
    assert_eq!(plan.note, None);
}

#[test]
fn a_process_the_user_suspended_is_not_recorded_as_ours() {
    let plan = plan_hold(&group(&["Terminate", "HealthCheck"], 3, 3, None), "exec-1");
    assert!(!plan.suspend.contains(&"Terminate".to_string()));
    assert!(plan.suspend.contains(&"Launch".to_string()));
    assert_eq!(plan.suspend.len(), HELD_PROCESSES.len() - 1);
    // Released later: Terminate stays suspended.
    let mut now = group(&["Terminate", "HealthCheck"], 3, 3, None);
    now.suspended.extend(plan.suspend.clone());
    now.hold_tag = plan.write_tag.clone();
    let release = plan_release(&now, "exec-1");
    assert!(!release.resume.contains(&"Terminate".to_string()));
    assert_eq!(release.resume, plan.suspend);
}

#[test]
fn a_retried_hold_keeps_the_first_record() {
    let first = plan_hold(&group(&[], 2, 2, None), "exec-1");
    // The retry sees every process suspended (by the first attempt).
    let retry = plan_hold(
        &group(&HELD_PROCESSES, 2, 2, first.write_tag.as_deref()),
        "exec-1",
    );
    assert_eq!(retry.write_tag, None);
    assert_eq!(retry.suspend, first.suspend);
    assert_eq!(retry.record, first.record);
}

#[test]
fn a_stale_hold_of_another_execution_is_taken_over_not_mistaken_for_the_users() {
    let stale = HoldRecord {
        execution: "dead-exec".into(),
        processes: vec!["Launch".into(), "Terminate".into()],
        desired: 2,
        instances: 2,
    };
    let g = group(
        &["Launch", "Terminate", "ScheduledActions"],
        4,
        2,
        Some(&stale.tag_value()),
    );
    let plan = plan_hold(&g, "exec-2");
    assert_eq!(plan.record.execution, "exec-2");
    assert!(plan.suspend.contains(&"Launch".to_string()));
    assert!(plan.suspend.contains(&"Terminate".to_string()));
    assert!(plan.suspend.contains(&"AZRebalance".to_string()));
    assert!(!plan.suspend.contains(&"ScheduledActions".to_string()));
    assert_eq!(
        plan.record.desired, 2,
        "the baseline before greenlight held it"
    );
    assert!(plan
        .note
        .as_deref()
        .unwrap_or_default()
        .contains("dead-exec"));
    assert_eq!(plan.write_tag, Some(plan.record.tag_value()));
}

#[test]
fn an_unreadable_tag_is_replaced_and_said() {
    let plan = plan_hold(&group(&["Launch"], 1, 1, Some("garbage")), "exec-1");
    assert!(!plan.suspend.contains(&"Launch".to_string()));
    assert!(plan.write_tag.is_some());
    assert!(plan
        .note
        .as_deref()
        .unwrap_or_default()
        .contains("unreadable"));
}

#[test]
fn release_resumes_what_was_recorded_and_removes_the_tag() {
    let hold = plan_hold(&group(&[], 2, 2, None), "exec-1");
    let release = plan_release(
        &group(&HELD_PROCESSES, 2, 2, hold.write_tag.as_deref()),
        "exec-1",
    );
    assert_eq!(release.resume, held());
    assert!(release.delete_tag);
    assert_eq!(release.event, None);
    assert_eq!(release.note, None);
}

#[test]
fn a_scale_out_while_held_is_reported() {
    let hold = plan_hold(&group(&[], 2, 2, None), "exec-1");
    let release = plan_release(
        &group(&HELD_PROCESSES, 3, 2, hold.write_tag.as_deref()),
        "exec-1",
    );
    let event = release.event.expect("the scale-out is reported");
    assert_eq!((event.desired_before, event.desired_after), (2, 3));
    assert_eq!((event.instances_before, event.instances_after), (2, 2));
    assert!(
        event.summary.contains("desired capacity 2 -> 3"),
        "{}",
        event.summary
    );
    assert!(
        event.summary.contains("launches the missing"),
        "{}",
        event.summary
    );
}

#[test]
fn a_scale_in_while_held_is_reported() {
    let hold = plan_hold(&group(&[], 3, 3, None), "exec-1");
    let release = plan_release(
        &group(&HELD_PROCESSES, 1, 3, hold.write_tag.as_deref()),
        "exec-1",
    );
    let event = release.event.expect("the scale-in is reported");
    assert!(
        event.summary.contains("terminates the extra"),
        "{}",
        event.summary
    );
}

#[test]
fn a_group_without_a_hold_is_left_alone() {
    let release = plan_release(&group(&["Launch"], 2, 2, None), "exec-1");
    assert!(release.resume.is_empty());
    assert!(!release.delete_tag);
    assert_eq!(release.note, None);
}

#[test]
fn a_group_held_by_another_execution_is_left_alone_and_said() {
    let other = plan_hold(&group(&[], 2, 2, None), "exec-other");
    let release = plan_release(
        &group(&HELD_PROCESSES, 2, 2, other.write_tag.as_deref()),
        "exec-1",
    );
    assert!(release.resume.is_empty());
    assert!(!release.delete_tag);
    assert!(release.note.unwrap_or_default().contains("exec-other"));
}

#[test]
fn an_unreadable_tag_resumes_nothing_and_says_so() {
    let release = plan_release(&group(&["Launch"], 2, 2, Some("x")), "exec-1");
    assert!(release.resume.is_empty());
    assert!(!release.delete_tag);
    assert!(release.note.unwrap_or_default().contains("Launch"));
}

#[test]
fn groups_to_hold_lists_blue_then_green_once() {
    assert_eq!(
        groups_to_hold(&["blue".into(), "blue".into()], Some("green")),
        vec!["blue".to_string(), "green".to_string()]
    );
    assert_eq!(groups_to_hold(&[], None), Vec::<String>::new());
    assert_eq!(
        groups_to_hold(&["".into()], Some("blue")),
        vec!["blue".to_string()]
    );
}

#[test]
fn the_events_sentence_joins_the_summaries() {
    let release = ScalingRelease::default();
    assert_eq!(release.events_sentence(), None);
    let hold = plan_hold(&group(&[], 2, 2, None), "e");
    let plan = plan_release(
        &group(&HELD_PROCESSES, 3, 2, hold.write_tag.as_deref()),
        "e",
    );
    let release = ScalingRelease {
        events: plan.event.into_iter().collect(),
        ..Default::default()
    };
    assert!(release
        .events_sentence()
        .unwrap_or_default()
        .contains("shop-blue"));
}

#[test]
fn a_group_being_deleted_is_not_resumed() {
    let hold = plan_hold(&group(&[], 2, 2, None), "e");
    let mut g = group(&HELD_PROCESSES, 2, 2, hold.write_tag.as_deref());
    g.deleting = true;
    let release = plan_release(&g, "e");
    assert!(release.resume.is_empty());
    assert!(!release.delete_tag);
    assert_eq!(release.note, None);
}

#[test]
fn a_scale_request_seen_when_the_hold_is_reasserted_is_reported() {
    let first = plan_hold(&group(&[], 2, 2, None), "exec-1");
    assert_eq!(first.event, None);
    let again = plan_hold(
        &group(&HELD_PROCESSES, 4, 2, first.write_tag.as_deref()),
        "exec-1",
    );
    let event = again.event.expect("desired 2 -> 4 is reported");
    assert_eq!((event.desired_before, event.desired_after), (2, 4));
    let unchanged = plan_hold(
        &group(&HELD_PROCESSES, 2, 2, first.write_tag.as_deref()),
        "exec-1",
    );
    assert_eq!(unchanged.event, None);
}
