use super::*;
use serde_json::json;

const CREATE: &str = include_str!("../../../events/cfn-custom-resource-create.json");
const UPDATE: &str = include_str!("../../../events/cfn-custom-resource-update.json");
const DELETE: &str = include_str!("../../../events/cfn-custom-resource-delete.json");

fn request(text: &str) -> CustomResourceRequest {
    serde_json::from_str(text).expect("fixture parses")
}

fn spec() -> GroupSpec {
    parse_spec(&request(CREATE).resource_properties).expect("valid")
}

fn owner() -> Owner {
    Owner::of(&request(CREATE))
}

fn other_owner() -> Owner {
    Owner {
        stack_id: "arn:aws:cloudformation:us-east-1:123456789012:stack/other/1".into(),
        logical_id: "DeploymentGroup".into(),
    }
}

fn tg(tag: Option<&str>) -> BTreeMap<String, Option<String>> {
    BTreeMap::from([("shop-tg".to_string(), tag.map(str::to_string))])
}

fn ours(asg: &str) -> ObservedGroup {
    ObservedGroup {
        tags: owner().tags(),
        auto_scaling_groups: vec![asg.to_string()],
    }
}

#[test]
fn fixtures_parse_into_requests() {
    let create = request(CREATE);
    assert_eq!(create.request_type, RequestType::Create);
    assert_eq!(create.logical_resource_id, "DeploymentGroup");
    assert!(create.response_url.starts_with("https://"));
    assert_eq!(create.physical_resource_id, None);
    let update = request(UPDATE);
    assert_eq!(update.request_type, RequestType::Update);
    assert!(update.old_resource_properties.is_some());
    assert_eq!(
        update.physical_resource_id.as_deref(),
        Some("shop/shop-bluegreen")
    );
    assert_eq!(request(DELETE).request_type, RequestType::Delete);
}

#[test]
fn properties_parse_with_strings_numbers_and_defaults() {
    let s = spec();
    assert_eq!(s.application, "shop");
    assert_eq!(s.group, "shop-bluegreen");
    assert_eq!(s.auto_scaling_group, "shop-asg");
    assert_eq!(s.target_group, "shop-tg");
    assert_eq!(s.ready_wait_minutes, 30);
    assert_eq!(s.termination_wait_minutes, 5);
    assert_eq!(s.physical_id(), "shop/shop-bluegreen");
    let minimal = json!({
        "ApplicationName": "a", "DeploymentGroupName": "g",
        "ServiceRoleArn": "arn:aws:iam::1:role/r", "AutoScalingGroupName": "asg",
        "TargetGroupName": "tg", "ReadyWaitMinutes": 60, "TerminationWaitMinutes": 0
    });
    let m = parse_spec(&minimal).expect("valid");
    assert_eq!(m.deployment_config, DEFAULT_DEPLOYMENT_CONFIG);
    assert_eq!(m.ready_wait_minutes, 60);
    assert_eq!(m.termination_wait_minutes, 0);
}

#[test]
fn every_bad_property_is_named_with_its_fix() {
    let base = request(CREATE).resource_properties;
    let cases: &[(&str, Value, &str)] = &[
        ("ApplicationName", Value::Null, "is missing"),
        ("ApplicationName", json!("shop/x"), "letters, digits"),
        ("DeploymentGroupName", json!(""), "is missing"),
        (
            "ServiceRoleArn",
            json!("CodeDeployServiceRole"),
            "IAM role ARN",
        ),
        (
            "AutoScalingGroupName",
            Value::Null,
            "original Auto Scaling group",
        ),
        (
            "TargetGroupName",
            json!("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/shop-tg/1"),
            "not its ARN",
        ),
        (
            "DeploymentConfigName",
            json!("One At A Time"),
            "CodeDeployDefault",
        ),
        ("ReadyWaitMinutes", json!("0"), "from 1 to 2880"),
        ("ReadyWaitMinutes", json!("2881"), "from 1 to 2880"),
        ("TerminationWaitMinutes", json!("-1"), "from 0 to 2880"),
        ("TerminationWaitMinutes", json!("five"), "from 0 to 2880"),
    ];
    for (property, value, fix) in cases {
        let mut props = base.clone();
        if value.is_null() {
            props.as_object_mut().expect("object").remove(*property);
        } else {
            props[*property] = value.clone();
        }
        let e = parse_spec(&props).expect_err(property);
        let text = e.to_string();
        assert!(text.contains(property), "{text}");
        assert!(text.contains(fix), "{property}: {text}");
    }
    assert_eq!(parse_spec(&json!("x")), Err(PropertyError::NotAnObject));
}

#[test]
fn physical_ids_round_trip_and_placeholders_are_not_groups() {
    assert_eq!(
        parse_physical_id("shop/shop-bluegreen"),
        Some(("shop".into(), "shop-bluegreen".into()))
    );
    assert_eq!(parse_physical_id("failed-7f0e"), None);
    assert_eq!(parse_physical_id("a/b/c"), None);
    assert_eq!(parse_physical_id("/g"), None);
}

#[test]
fn responses_carry_the_request_ids_and_a_bounded_reason() {
    let create = request(CREATE);
    let ok = success(&create, "shop/shop-bluegreen", BTreeMap::new());
    let body = serde_json::to_value(&ok).expect("json");
    assert_eq!(body["Status"], "SUCCESS");
    assert_eq!(body["PhysicalResourceId"], "shop/shop-bluegreen");
    assert_eq!(body["StackId"], create.stack_id.as_str());
    assert_eq!(body["RequestId"], create.request_id.as_str());
    assert_eq!(body["LogicalResourceId"], "DeploymentGroup");
    assert!(body.get("Reason").is_none());

    let failed = failure(&create, &"x".repeat(10_000));
    assert_eq!(failed.status, ResponseStatus::Failed);
    assert_eq!(failed.physical_resource_id, "shop/shop-bluegreen");
    let text = serde_json::to_string(&failed).expect("json");
    assert!(text.len() <= MAX_RESPONSE_BYTES, "{}", text.len());
    assert!(text.contains("\"Status\":\"FAILED\""));

    let mut bad = create.clone();
    bad.resource_properties = json!({});
    let failed = failure(&bad, "");
    assert_eq!(
        failed.physical_resource_id,
        format!("failed-{}", create.request_id)
    );
    assert!(!failed.reason.unwrap_or_default().is_empty());

    let update = request(UPDATE);
    assert_eq!(
        failure(&update, "r").physical_resource_id,
        "shop/shop-bluegreen"
    );
}

#[test]
fn ownership_needs_both_tags() {
    let o = owner();
    assert!(o.owns(&o.tags()));
    assert!(!o.owns(&other_owner().tags()));
    assert!(!o.owns(&o.tags()[..1]));
    assert!(!o.owns(&[]));
}

#[test]
fn create_on_an_empty_account_creates_everything() {
    let observed = Observed {
        target_group_tags: tg(None),
        ..Default::default()
    };
    let plan = plan_create(&spec(), &owner(), &observed, None).expect("plan");
    assert_eq!(
        plan.actions,
        vec![
            Action::CreateApplication {
                application: "shop".into()
            },
            Action::CreateGroup {
                spec: spec(),
                auto_scaling_group: "shop-asg".into()
            },
            Action::TagTargetGroup {
                target_group: "shop-tg".into(),
                application: "shop".into()
            },
        ]
    );
    assert_eq!(plan.physical_id, "shop/shop-bluegreen");
    assert_eq!(plan.data["AutoScalingGroupName"], "shop-asg");
}

#[test]
fn create_uses_an_existing_application_and_an_already_tagged_target_group() {
    let observed = Observed {
        application: Some(vec![]),
        target_group_tags: tg(Some("shop")),
        ..Default::default()
    };
    let plan = plan_create(&spec(), &owner(), &observed, None).expect("plan");
    assert_eq!(
        plan.actions,
        vec![Action::CreateGroup {
            spec: spec(),
            auto_scaling_group: "shop-asg".into()
        }]
    );
    assert!(plan.notes[0].contains("never deleted"));
}

#[test]
fn create_refuses_a_group_it_did_not_create() {
    for tags in [vec![], other_owner().tags()] {
        let observed = Observed {
            application: Some(vec![]),
            group: Some(ObservedGroup {
                tags,
                auto_scaling_groups: vec!["shop-asg".into()],
            }),
            target_group_tags: tg(None),
            ..Default::default()
        };
        let e = plan_create(&spec(), &owner(), &observed, None).expect_err("not ours");
        assert!(matches!(e, PlanError::GroupNotOurs { .. }));
        assert!(e.to_string().contains("greenlight:stack-id="), "{e}");
    }
}

#[test]
fn a_retried_create_updates_its_own_group_and_keeps_its_asg() {
    let observed = Observed {
        application: Some(owner().tags()),
        group: Some(ours("CodeDeploy_shop-bluegreen_d-ABC")),
        target_group_tags: tg(Some("shop")),
        ..Default::default()
    };
    let plan = plan_create(&spec(), &owner(), &observed, None).expect("plan");
    assert_eq!(
        plan.actions,
        vec![Action::UpdateGroup {
            spec: spec(),
            auto_scaling_groups: None
        }]
    );
    assert_eq!(
        plan.data["AutoScalingGroupName"],
        "CodeDeploy_shop-bluegreen_d-ABC"
    );
}

#[test]
fn create_refuses_a_missing_or_foreign_target_group() {
    let missing = Observed::default();
    assert!(matches!(
        plan_create(&spec(), &owner(), &missing, None),
        Err(PlanError::TargetGroupNotFound { .. })
    ));
    let claimed = Observed {
        target_group_tags: tg(Some("blog")),
        ..Default::default()
    };
    let e = plan_create(&spec(), &owner(), &claimed, None).expect_err("claimed");
    assert!(e.to_string().contains("greenlight:application=blog"), "{e}");
}

#[test]
fn update_keeps_the_asg_codedeploy_swapped_in() {
    let old = spec();
    let new = GroupSpec {
        ready_wait_minutes: 45,
        termination_wait_minutes: 10,
        ..spec()
    };
    let observed = Observed {
        application: Some(owner().tags()),
        group: Some(ours("CodeDeploy_shop-bluegreen_d-XYZ")),
        target_group_tags: tg(Some("shop")),
        ..Default::default()
    };
    let plan = plan_update(&old, &new, &owner(), &observed).expect("plan");
    assert_eq!(
        plan.actions,
        vec![Action::UpdateGroup {
            spec: new.clone(),
            auto_scaling_groups: None
        }]
    );
    assert_eq!(
        plan.data["AutoScalingGroupName"],
        "CodeDeploy_shop-bluegreen_d-XYZ"
    );
}

#[test]
fn update_with_a_new_asg_name_points_the_group_at_it() {
    let new = GroupSpec {
        auto_scaling_group: "shop-asg-v2".into(),
        ..spec()
    };
    let observed = Observed {
        group: Some(ours("CodeDeploy_shop-bluegreen_d-XYZ")),
        target_group_tags: tg(Some("shop")),
        ..Default::default()
    };
    let plan = plan_update(&spec(), &new, &owner(), &observed).expect("plan");
    assert_eq!(
        plan.actions,
        vec![Action::UpdateGroup {
            spec: new,
            auto_scaling_groups: Some(vec!["shop-asg-v2".into()])
        }]
    );
}

#[test]
fn update_moves_the_target_group_tag() {
    let new = GroupSpec {
        target_group: "shop-tg2".into(),
        ..spec()
    };
    let mut tags = tg(Some("shop"));
    tags.insert("shop-tg2".into(), None);
    let observed = Observed {
        group: Some(ours("shop-asg")),
        target_group_tags: tags.clone(),
        ..Default::default()
    };
    let plan = plan_update(&spec(), &new, &owner(), &observed).expect("plan");
    assert_eq!(
        plan.actions[1..],
        [
            Action::TagTargetGroup {
                target_group: "shop-tg2".into(),
                application: "shop".into()
            },
            Action::UntagTargetGroup {
                target_group: "shop-tg".into()
            }
        ]
    );
    // Another group of the application may still use the old target group.
    let shared = Observed {
        other_groups: vec!["shop-canary".into()],
        ..observed
    };
    let plan = plan_update(&spec(), &new, &owner(), &shared).expect("plan");
    assert!(!plan
        .actions
        .iter()
        .any(|a| matches!(a, Action::UntagTargetGroup { .. })));
}

#[test]
fn update_refuses_a_foreign_group_and_recreates_a_missing_one() {
    let foreign = Observed {
        group: Some(ObservedGroup {
            tags: other_owner().tags(),
            auto_scaling_groups: vec![],
        }),
        target_group_tags: tg(Some("shop")),
        ..Default::default()
    };
    assert!(matches!(
        plan_update(&spec(), &spec(), &owner(), &foreign),
        Err(PlanError::GroupNotOurs { .. })
    ));
    let missing = Observed {
        application: Some(owner().tags()),
        target_group_tags: tg(Some("shop")),
        ..Default::default()
    };
    let plan = plan_update(&spec(), &spec(), &owner(), &missing).expect("plan");
    assert!(matches!(plan.actions[0], Action::CreateGroup { .. }));
    assert!(plan.notes.iter().any(|n| n.contains("created again")));
}

#[test]
fn a_rename_replaces_and_carries_the_current_asg_over() {
    let old = spec();
    let renamed = GroupSpec {
        group: "shop-bg2".into(),
        ..spec()
    };
    assert!(needs_replacement(&old, &renamed));
    assert!(!needs_replacement(&old, &spec()));
    let old_group = ours("CodeDeploy_shop-bluegreen_d-XYZ");
    assert_eq!(
        carried_asg(&old, &renamed, Some(&old_group)),
        Some("CodeDeploy_shop-bluegreen_d-XYZ")
    );
    let new_asg = GroupSpec {
        auto_scaling_group: "other".into(),
        ..renamed.clone()
    };
    assert_eq!(carried_asg(&old, &new_asg, Some(&old_group)), None);
    assert_eq!(carried_asg(&old, &renamed, None), None);
    let observed = Observed {
        application: Some(owner().tags()),
        target_group_tags: tg(Some("shop")),
        ..Default::default()
    };
    let plan = plan_create(
        &renamed,
        &owner(),
        &observed,
        carried_asg(&old, &renamed, Some(&old_group)),
    )
    .expect("plan");
    assert_eq!(plan.physical_id, "shop/shop-bg2");
    assert_eq!(
        plan.actions,
        vec![Action::CreateGroup {
            spec: renamed,
            auto_scaling_group: "CodeDeploy_shop-bluegreen_d-XYZ".into()
        }]
    );
}

#[test]
fn delete_removes_only_what_it_created() {
    let everything = Observed {
        application: Some(owner().tags()),
        group: Some(ours("CodeDeploy_shop-bluegreen_d-XYZ")),
        other_groups: vec![],
        target_group_tags: tg(Some("shop")),
    };
    let plan = plan_delete("shop/shop-bluegreen", Some(&spec()), &owner(), &everything);
    assert_eq!(
        plan.actions,
        vec![
            Action::DeleteGroup {
                application: "shop".into(),
                group: "shop-bluegreen".into()
            },
            Action::UntagTargetGroup {
                target_group: "shop-tg".into()
            },
            Action::DeleteApplication {
                application: "shop".into()
            },
        ]
    );

    // An application someone else made, with another group: only our group goes.
    let shared = Observed {
        application: Some(vec![]),
        other_groups: vec!["shop-canary".into()],
        ..everything.clone()
    };
    let plan = plan_delete("shop/shop-bluegreen", Some(&spec()), &owner(), &shared);
    assert_eq!(
        plan.actions,
        vec![Action::DeleteGroup {
            application: "shop".into(),
            group: "shop-bluegreen".into()
        }]
    );

    // A group of another stack under our physical id (a failed Create's rollback).
    let foreign = Observed {
        application: Some(other_owner().tags()),
        group: Some(ObservedGroup {
            tags: other_owner().tags(),
            auto_scaling_groups: vec![],
        }),
        ..everything.clone()
    };
    let plan = plan_delete("shop/shop-bluegreen", Some(&spec()), &owner(), &foreign);
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert!(plan.notes.iter().any(|n| n.contains("left alone")));

    // A target group tagged for another application keeps its tag.
    let other_tg = Observed {
        target_group_tags: tg(Some("blog")),
        ..everything
    };
    let plan = plan_delete("shop/shop-bluegreen", Some(&spec()), &owner(), &other_tg);
    assert!(!plan
        .actions
        .iter()
        .any(|a| matches!(a, Action::UntagTargetGroup { .. })));
}

#[test]
fn delete_of_what_is_gone_or_never_was_is_a_no_op() {
    let plan = plan_delete(
        "shop/shop-bluegreen",
        Some(&spec()),
        &owner(),
        &Observed::default(),
    );
    assert!(plan.actions.is_empty());
    assert!(plan.notes.iter().any(|n| n.contains("already gone")));
    let plan = plan_delete("failed-7f0e", None, &owner(), &Observed::default());
    assert!(plan.actions.is_empty());
    assert_eq!(plan.physical_id, "failed-7f0e");
}

#[test]
fn codedeploy_arns_follow_the_stack() {
    let stack = request(CREATE).stack_id;
    assert_eq!(
        codedeploy_arns(&stack, "shop", "shop-bluegreen"),
        Some((
            "arn:aws:codedeploy:us-east-1:123456789012:application:shop".into(),
            "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:shop/shop-bluegreen".into()
        ))
    );
    assert_eq!(codedeploy_arns("not-an-arn", "a", "g"), None);
    assert_eq!(
        codedeploy_arns("arn:aws:cloudformation::1:stack/x", "a", "g"),
        None
    );
}
