use super::*;
use aws_sdk_autoscaling::operation::create_or_update_tags::CreateOrUpdateTagsOutput;
use aws_sdk_autoscaling::operation::delete_tags::DeleteTagsOutput;
use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::{
    DescribeAutoScalingGroupsError, DescribeAutoScalingGroupsOutput,
};
use aws_sdk_autoscaling::operation::resume_processes::ResumeProcessesOutput;
use aws_sdk_autoscaling::operation::suspend_processes::SuspendProcessesOutput;
use aws_sdk_autoscaling::types::{AutoScalingGroup, Instance, SuspendedProcess, TagDescription};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use greenlight_core::scaling::{HoldRecord, HELD_PROCESSES};
use std::sync::{Arc, Mutex};

type Log = Arc<Mutex<Vec<String>>>;

fn group(
    name: &str,
    suspended: &[&str],
    desired: i32,
    instances: usize,
    tag: Option<&str>,
) -> AutoScalingGroup {
    let mut b = AutoScalingGroup::builder()
        .auto_scaling_group_name(name)
        .desired_capacity(desired);
    for p in suspended {
        b = b.suspended_processes(SuspendedProcess::builder().process_name(*p).build());
    }
    for i in 0..instances {
        b = b.instances(Instance::builder().instance_id(format!("i-{i}")).build());
    }
    if let Some(value) = tag {
        b = b.tags(
            TagDescription::builder()
                .resource_id(name)
                .key(HOLD_TAG_KEY)
                .value(value)
                .build(),
        );
    }
    b.build()
}

fn recording_client(groups: Vec<AutoScalingGroup>, log: Log) -> aws_sdk_autoscaling::Client {
    let describe =
        mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups).then_output(move || {
            DescribeAutoScalingGroupsOutput::builder()
                .set_auto_scaling_groups(Some(groups.clone()))
                .build()
        });
    let (l1, l2, l3, l4) = (log.clone(), log.clone(), log.clone(), log);
    let tag = mock!(aws_sdk_autoscaling::Client::create_or_update_tags)
        .match_requests(move |r| {
            let t = &r.tags()[0];
            l1.lock().unwrap().push(format!(
                "tag {} {}",
                t.resource_id().unwrap_or_default(),
                t.value().unwrap_or_default()
            ));
            true
        })
        .then_output(|| CreateOrUpdateTagsOutput::builder().build());
    let suspend = mock!(aws_sdk_autoscaling::Client::suspend_processes)
        .match_requests(move |r| {
            l2.lock().unwrap().push(format!(
                "suspend {} {}",
                r.auto_scaling_group_name().unwrap_or_default(),
                r.scaling_processes().join(",")
            ));
            true
        })
        .then_output(|| SuspendProcessesOutput::builder().build());
    let resume = mock!(aws_sdk_autoscaling::Client::resume_processes)
        .match_requests(move |r| {
            l3.lock().unwrap().push(format!(
                "resume {} {}",
                r.auto_scaling_group_name().unwrap_or_default(),
                r.scaling_processes().join(",")
            ));
            true
        })
        .then_output(|| ResumeProcessesOutput::builder().build());
    let untag = mock!(aws_sdk_autoscaling::Client::delete_tags)
        .match_requests(move |r| {
            let t = &r.tags()[0];
            l4.lock().unwrap().push(format!(
                "untag {} {}",
                t.resource_id().unwrap_or_default(),
                t.key().unwrap_or_default()
            ));
            true
        })
        .then_output(|| DeleteTagsOutput::builder().build());
    mock_client!(
        aws_sdk_autoscaling,
        RuleMode::MatchAny,
        [&describe, &tag, &suspend, &resume, &untag]
    )
}

#[tokio::test]
async fn hold_records_the_tag_before_suspending_and_skips_the_users_suspensions() {
    let log: Log = Arc::default();
    let client = recording_client(vec![group("blue", &["Terminate"], 2, 2, None)], log.clone());
    let hold = hold_groups(&client, &["blue".into(), "gone".into()], "exec-1")
        .await
        .unwrap();
    let calls = log.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(
        calls[0].starts_with("tag blue desired=2;instances=2;suspended=Launch,AZRebalance"),
        "{calls:?}"
    );
    assert!(calls[0].ends_with(";execution=exec-1"), "{calls:?}");
    assert_eq!(
        calls[1],
        "suspend blue Launch,AZRebalance,ReplaceUnhealthy,AlarmNotification,InstanceRefresh"
    );
    assert_eq!(hold.groups.len(), 1);
    assert!(!hold.groups[0].suspended.contains(&"Terminate".to_string()));
    assert!(hold.notes[0].contains("gone"), "{:?}", hold.notes);
}

#[tokio::test]
async fn a_retried_hold_does_not_rewrite_the_record() {
    let log: Log = Arc::default();
    let record = HoldRecord {
        execution: "exec-1".into(),
        processes: vec!["Launch".into(), "Terminate".into()],
        desired: 2,
        instances: 2,
    };
    let client = recording_client(
        vec![group(
            "blue",
            &HELD_PROCESSES,
            2,
            2,
            Some(&record.tag_value()),
        )],
        log.clone(),
    );
    hold_groups(&client, &["blue".into()], "exec-1")
        .await
        .unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        vec!["suspend blue Launch,Terminate".to_string()]
    );
}

#[tokio::test]
async fn release_resumes_the_record_removes_it_and_reports_a_scale_out() {
    let log: Log = Arc::default();
    let record = HoldRecord {
        execution: "exec-1".into(),
        processes: vec!["Launch".into(), "Terminate".into()],
        desired: 2,
        instances: 2,
    };
    let client = recording_client(
        vec![
            group(
                "blue",
                &["Launch", "Terminate", "HealthCheck"],
                3,
                2,
                Some(&record.tag_value()),
            ),
            group("other", &["Launch"], 1, 1, None),
        ],
        log.clone(),
    );
    let release = release_groups(&client, &["blue".into(), "other".into()], "exec-1")
        .await
        .unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            "resume blue Launch,Terminate".to_string(),
            format!("untag blue {HOLD_TAG_KEY}"),
        ]
    );
    assert_eq!(release.resumed.len(), 1);
    assert_eq!(release.events.len(), 1);
    assert_eq!(release.events[0].desired_after, 3);
}

#[tokio::test]
async fn a_describe_failure_is_an_aws_error_naming_the_groups() {
    let rule = mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups)
        .then_error(|| DescribeAutoScalingGroupsError::unhandled(std::io::Error::other("boom")));
    let client = mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, [&rule]);
    let err = release_groups(&client, &["blue".into()], "exec-1")
        .await
        .unwrap_err();
    assert_eq!(err.operation, "DescribeAutoScalingGroups");
    assert_eq!(err.resource, "blue");
}

#[tokio::test]
async fn no_groups_no_calls() {
    let client = mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, []);
    assert_eq!(
        release_groups(&client, &[], "e").await.unwrap(),
        ScalingRelease::default()
    );
}

#[tokio::test]
async fn groups_held_by_reads_every_page_and_keeps_only_this_executions_records() {
    use aws_sdk_autoscaling::operation::describe_tags::DescribeTagsOutput;
    let mine = HoldRecord {
        execution: "exec-1".into(),
        processes: vec!["Launch".into()],
        desired: 1,
        instances: 1,
    };
    let other = HoldRecord {
        execution: "exec-2".into(),
        ..mine.clone()
    };
    let tag = |group: &str, value: String| {
        TagDescription::builder()
            .resource_id(group)
            .key(HOLD_TAG_KEY)
            .value(value)
            .build()
    };
    let (a, b) = (mine.tag_value(), other.tag_value());
    let first = mock!(aws_sdk_autoscaling::Client::describe_tags)
        .match_requests(|r| {
            r.next_token().is_none()
                && r.filters()[0].name() == Some("key")
                && r.filters()[0].values() == [HOLD_TAG_KEY.to_string()]
        })
        .then_output(move || {
            DescribeTagsOutput::builder()
                .tags(tag("blue", a.clone()))
                .tags(tag("someone-else", b.clone()))
                .next_token("p2")
                .build()
        });
    let c = mine.tag_value();
    let second = mock!(aws_sdk_autoscaling::Client::describe_tags)
        .match_requests(|r| r.next_token() == Some("p2"))
        .then_output(move || {
            DescribeTagsOutput::builder()
                .tags(tag("green", c.clone()))
                .tags(tag("junk", "x".into()))
                .build()
        });
    let client = mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, [&first, &second]);
    assert_eq!(
        groups_held_by(&client, "exec-1").await.unwrap(),
        vec!["blue".to_string(), "green".to_string()]
    );
}
