use super::*;

fn group(required: bool, deadline_seconds: u32) -> GroupApproval {
    GroupApproval {
        application: "shop".into(),
        deployment_group: "shop-bg".into(),
        required,
        deadline_seconds,
    }
}

#[test]
fn nothing_asked_means_no_approval_and_the_bake_as_configured() {
    assert_eq!(decide(Asked::default(), None), Ok(Decided::default()));
    assert_eq!(
        decide(Asked::default(), Some(&group(false, 60))),
        Ok(Decided::default())
    );
}

#[test]
fn a_tag_or_a_parameter_asks_for_approval_with_the_groups_deadline() {
    let by_tag = decide(
        Asked {
            approval_tag: Some("required"),
            ..Asked::default()
        },
        Some(&group(false, 90)),
    )
    .unwrap();
    assert_eq!(
        by_tag.approval,
        Some(ApprovalRequest {
            requested_by: RequestedBy::ObjectTag,
            deadline_seconds: 90
        })
    );
    let by_parameter = decide(
        Asked {
            approval_parameter: Some(" required "),
            ..Asked::default()
        },
        None,
    )
    .unwrap();
    assert_eq!(
        by_parameter.approval,
        Some(ApprovalRequest {
            requested_by: RequestedBy::PipelineParameter,
            deadline_seconds: DEFAULT_DEADLINE_SECONDS
        })
    );
    assert_eq!(by_parameter.bake_skip, None);
}

#[test]
fn the_group_default_asks_when_the_upload_does_not() {
    let decided = decide(Asked::default(), Some(&group(true, 120))).unwrap();
    assert_eq!(
        decided.approval,
        Some(ApprovalRequest {
            requested_by: RequestedBy::GroupDefault,
            deadline_seconds: 120
        })
    );
}

#[test]
fn an_unknown_value_is_refused_not_ignored() {
    for asked in [
        Asked {
            approval_tag: Some("requried"),
            ..Asked::default()
        },
        Asked {
            approval_parameter: Some("no"),
            ..Asked::default()
        },
        Asked {
            bake_tag: Some("false"),
            ..Asked::default()
        },
        Asked {
            bake_parameter: Some(""),
            ..Asked::default()
        },
    ] {
        let e = decide(asked, Some(&group(true, 60))).unwrap_err();
        assert!(e.to_string().contains("is not accepted"), "{e}");
        assert!(e.to_string().contains("nothing was deployed"), "{e}");
    }
}

#[test]
fn the_bake_skip_is_taken_only_when_asked_explicitly() {
    let by_tag = decide(
        Asked {
            bake_tag: Some("skip"),
            ..Asked::default()
        },
        None,
    )
    .unwrap();
    assert_eq!(
        by_tag.bake_skip,
        Some(BakeSkip {
            requested_by: RequestedBy::ObjectTag
        })
    );
    assert_eq!(by_tag.approval, None);
    let by_parameter = decide(
        Asked {
            bake_parameter: Some(" skip "),
            approval_parameter: Some("required"),
            ..Asked::default()
        },
        Some(&group(false, 60)),
    )
    .unwrap();
    assert_eq!(
        by_parameter.bake_skip,
        Some(BakeSkip {
            requested_by: RequestedBy::PipelineParameter
        })
    );
    assert!(by_parameter.approval.is_some());
    // Never by default, never by a group setting: a group that requires
    // approval does not skip its bake.
    assert_eq!(
        decide(Asked::default(), Some(&group(true, 60)))
            .unwrap()
            .bake_skip,
        None
    );
    let skip = BakeSkip {
        requested_by: RequestedBy::PipelineParameter,
    };
    assert!(skip.describe().contains("{\"bake\":\"skip\"}"));
}

#[test]
fn the_skip_names_who_asked_and_where() {
    let mut input: crate::model::PipelineInput = serde_json::from_str(
        r#"{"application":"shop","deploymentGroup":"shop-bg","revision":{"bucket":"b","key":"artifacts/shop/k.zip","version":"v7","label":"k"},"uploadedAt":"2024-01-01T00:00:00Z","uploadedAtMs":1,"source":{"kind":"s3"}}"#,
    )
    .unwrap();
    let by_tag = BakeSkip {
        requested_by: RequestedBy::ObjectTag,
    };
    assert_eq!(
        by_tag.requester(&input),
        "S3 tag greenlight-bake=skip on s3://b/artifacts/shop/k.zip@v7"
    );
    input.revision.version = None;
    assert_eq!(
        by_tag.requester(&input),
        "S3 tag greenlight-bake=skip on s3://b/artifacts/shop/k.zip"
    );
    input.source = crate::model::Source::CodePipeline {
        job_id: "job-42".into(),
    };
    let by_parameter = BakeSkip {
        requested_by: RequestedBy::PipelineParameter,
    };
    assert_eq!(
        by_parameter.requester(&input),
        "CodePipeline job job-42 (UserParameters {\"bake\":\"skip\"})"
    );
}

#[test]
fn approval_config_parses_and_checks() {
    assert_eq!(parse_approval_config("  "), Ok(Vec::new()));
    let parsed = parse_approval_config(
        r#"[{"application":"shop","deploymentGroup":"shop-bg","required":true,"deadlineSeconds":1800},{"application":"shop","deploymentGroup":"other"}]"#,
    )
    .unwrap();
    assert_eq!(parsed[0], group(true, 1800));
    assert!(!parsed[1].required);
    assert_eq!(parsed[1].deadline_seconds, DEFAULT_DEADLINE_SECONDS);
    assert_eq!(
        group_approval(&parsed, "shop", "other").map(|g| g.deployment_group.as_str()),
        Some("other")
    );
    assert_eq!(group_approval(&parsed, "shop", "nope"), None);
    assert!(matches!(
        parse_approval_config(
            r#"[{"application":"a","deploymentGroup":"g"},{"application":"a","deploymentGroup":"g"}]"#
        ),
        Err(ApprovalConfigError::Duplicate { .. })
    ));
    assert!(matches!(
        parse_approval_config(r#"[{"application":"a","deploymentGroup":"g","deadlineSeconds":0}]"#),
        Err(ApprovalConfigError::Invalid { .. })
    ));
    assert!(matches!(
        parse_approval_config(r#"[{"application":"a","deploymentGroup":"g","deadline":5}]"#),
        Err(ApprovalConfigError::Json(_))
    ));
    assert!(matches!(
        parse_approval_config(r#"[{"application":" ","deploymentGroup":"g"}]"#),
        Err(ApprovalConfigError::Invalid { .. })
    ));
}

#[test]
fn the_ready_wait_must_exceed_the_deadline_by_the_gates_margin() {
    // 60 min Ready wait = 3600 s; a 3300 s deadline + 300 s margin fits exactly.
    assert_eq!(ready_wait_problem(Some(60), 3_300), None);
    let problem = ready_wait_problem(Some(60), 3_301).unwrap();
    assert!(problem.contains("Ready wait 60 min (3600 s)"), "{problem}");
    assert!(problem.contains("3601 s"), "{problem}");
    assert!(problem.contains("at least 61"), "{problem}");
    assert!(problem.contains("at most 3300"), "{problem}");
    assert_eq!(ready_wait_problem(None, 3_600), None);
    assert!(ready_wait_problem(Some(1), 3_600)
        .unwrap()
        .contains("at most 0"));
}

#[test]
fn the_gate_continues_only_without_an_approval() {
    let request = ApprovalRequest {
        requested_by: RequestedBy::GroupDefault,
        deadline_seconds: 60,
    };
    assert_eq!(gate_action(true, None), GateAction::Continue);
    assert_eq!(gate_action(true, Some(&request)), GateAction::AwaitApproval);
    assert_eq!(gate_action(false, Some(&request)), GateAction::Stop);
    assert_eq!(gate_action(false, None), GateAction::Stop);
}

#[test]
fn old_inputs_without_the_fields_still_parse() {
    let old = r#"{"application":"shop","deploymentGroup":"shop-bg","revision":{"bucket":"b","key":"k.zip","label":"k"},"uploadedAt":"2024-01-01T00:00:00Z","uploadedAtMs":1,"source":{"kind":"s3"}}"#;
    let input: crate::model::PipelineInput = serde_json::from_str(old).unwrap();
    assert_eq!(input.approval, None);
    assert_eq!(input.bake_skip, None);
    let round = serde_json::to_value(&input).unwrap();
    assert!(round.get("approval").is_none() && round.get("bakeSkip").is_none());
    let mut asked = input.clone();
    asked.approval = Some(ApprovalRequest {
        requested_by: RequestedBy::ObjectTag,
        deadline_seconds: 30,
    });
    let v = serde_json::to_value(&asked).unwrap();
    assert_eq!(
        v["approval"],
        serde_json::json!({"requestedBy": "objectTag", "deadlineSeconds": 30})
    );
}

#[test]
fn a_caught_error_without_a_cause_parses() {
    // A SendTaskFailure without cause reaches the Catch as "Cause": null
    // (moto), or without Cause at all; the failure path must still read it
    // (seen in tests/faults/approval.rs: the failure handler refused the state).
    for text in [
        r#"{"Error":"greenlight.ApprovalRejected","Cause":null}"#,
        r#"{"Error":"greenlight.ApprovalRejected"}"#,
    ] {
        let e: crate::model::TaskError = serde_json::from_str(text).unwrap();
        assert_eq!(e.error, "greenlight.ApprovalRejected");
        assert_eq!(e.cause, "");
    }
}
