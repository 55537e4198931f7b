use super::*;
use crate::provision::DemoNames;

fn tokens(group: &str, tokens: &[&str]) -> GroupTokens {
    GroupTokens {
        group: group.into(),
        tokens: tokens.iter().map(|t| t.to_string()).collect(),
    }
}

#[test]
fn extra_group_names_fit_elb_limits_and_no_group_name_contains_another() {
    let extra = extra_groups(MAX_GROUPS, "artifacts/").unwrap();
    assert_eq!(extra.len(), MAX_GROUPS - 1);
    assert_eq!(extra[0].index, 1);
    assert_eq!(extra[0].deployment_group, "greenlight-scale-001");
    assert_eq!(extra[0].target_group, "gl-scale-001-tg");
    assert_eq!(extra[0].load_balancer, "gl-scale-001-alb");
    assert_eq!(extra[0].blue_asg, "gl-scale-001-blue");
    assert_eq!(extra[0].key_prefix, "artifacts/greenlight-scale-001/");
    let demo = demo_tokens(&DemoNames::default());
    let mut all: Vec<(usize, String)> = demo.iter().map(|t| (0, t.clone())).collect();
    for g in &extra {
        // ELBv2: target group and load balancer names are at most 32 characters.
        assert!(g.target_group.len() <= 32 && g.load_balancer.len() <= 32);
        all.extend(g.tokens().into_iter().map(|t| (g.index, t)));
    }
    // No token of one group is found inside a token of another (1 vs 10, 100...).
    let mut by_len = all.clone();
    by_len.sort_by_key(|(_, t)| t.len());
    for (i, (gi, short)) in by_len.iter().enumerate() {
        for (gj, long) in &by_len[i + 1..] {
            assert!(
                gi == gj || !long.contains(short.as_str()),
                "{short} (group {gi}) is inside {long} (group {gj})"
            );
        }
    }
}

#[test]
fn group_counts_outside_one_to_the_maximum_are_refused() {
    assert!(extra_groups(0, "a/").is_err());
    assert!(extra_groups(MAX_GROUPS + 1, "a/").is_err());
    assert_eq!(extra_groups(1, "a/").unwrap(), Vec::new());
}

#[test]
fn key_mapping_sends_each_prefix_to_its_group_and_none_without_extra_groups() {
    assert_eq!(key_mapping_json("app", &[]), None);
    let extra = extra_groups(3, "artifacts/").unwrap();
    let json = key_mapping_json("greenlight-demo", &extra).unwrap();
    let mapping = greenlight_core::trigger::KeyMapping::new(
        "artifacts/",
        "greenlight-demo-group",
        Some(&json),
    )
    .unwrap();
    let target = |key: &str| mapping.resolve("b", key).unwrap();
    let t = target("artifacts/greenlight-scale-002/v1.zip");
    assert_eq!(t.application, "greenlight-demo");
    assert_eq!(t.deployment_group, "greenlight-scale-002");
    assert_eq!(
        target("artifacts/greenlight-scale-001/v1.zip").deployment_group,
        "greenlight-scale-001"
    );
    // The demo's convention is untouched.
    let demo = target("artifacts/greenlight-demo/v1.zip");
    assert_eq!(demo.application, "greenlight-demo");
    assert_eq!(demo.deployment_group, "greenlight-demo-group");
}

#[test]
fn a_text_naming_two_groups_or_a_foreign_one_is_a_crossing() {
    let groups = [
        tokens("a", &["greenlight-demo-group", "i-aaa", "d-AAA"]),
        tokens("b", &["greenlight-scale-001", "i-bbb"]),
        tokens("c", &["greenlight-scale-002", ""]),
    ];
    let texts = [
        // Unowned calls naming one group each.
        Attributed {
            owner: None,
            what: "codedeploy:GetDeployment".into(),
            text: "{\"deploymentId\":\"d-AAA\"}",
        },
        Attributed {
            owner: None,
            what: "elasticloadbalancing:RegisterTargets".into(),
            text: "Targets.member.1.Id=i-bbb",
        },
        // An account-wide call: no group.
        Attributed {
            owner: None,
            what: "states:ListExecutions".into(),
            text: "{\"stateMachineArn\":\"x\"}",
        },
        // One call naming two groups.
        Attributed {
            owner: None,
            what: "elasticloadbalancing:ModifyListener".into(),
            text: "i-aaa and i-bbb",
        },
        // Group c's state naming its own group only: fine.
        Attributed {
            owner: Some(2),
            what: "c: Tune".into(),
            text: "greenlight-scale-002",
        },
        // Group c's state naming group b's instance.
        Attributed {
            owner: Some(2),
            what: "c: Gate".into(),
            text: "probe i-bbb",
        },
    ];
    let report = cross_group_check(&texts, &groups);
    assert_eq!(report.looked_at, 6);
    assert_eq!(report.unattributed, 1);
    assert_eq!(
        report.by_group,
        BTreeMap::from([
            ("a".to_string(), 1),
            ("b".to_string(), 1),
            ("c".to_string(), 1)
        ])
    );
    assert_eq!(
        report.evidence,
        vec!["i-aaa and i-bbb".to_string(), "probe i-bbb".to_string()],
        "the text around the token it should not name"
    );
    let long = format!("{}i-bbb{}", "x".repeat(100), "y".repeat(100));
    assert_eq!(
        crate::scale::excerpt(&long, "i-bbb"),
        format!("…{}i-bbb{}…", "x".repeat(60), "y".repeat(60))
    );
    assert_eq!(
        report.crossings,
        vec![
            (
                "elasticloadbalancing:ModifyListener".to_string(),
                vec!["a".to_string(), "b".to_string()]
            ),
            ("c: Gate".to_string(), vec!["b".to_string()]),
        ]
    );
    // The empty token of group c matches nothing.
    assert_eq!(groups_named("anything", &groups), Vec::<usize>::new());
}

fn expected() -> Expected {
    Expected {
        target_group_arn: "tg-a".into(),
        green: BTreeSet::from(["i-g1".to_string(), "i-g2".to_string()]),
        settings: [30, 5, 10, 2],
        green_asg: "CodeDeploy_a_d-1".into(),
    }
}

fn as_expected() -> Observed {
    Observed {
        listener_forwards_to: vec!["tg-a".into()],
        registered: BTreeSet::from(["i-g1".to_string(), "i-g2".to_string()]),
        settings: [30, 5, 10, 2],
        asgs: BTreeMap::from([(
            "CodeDeploy_a_d-1".to_string(),
            BTreeSet::from(["i-g1".to_string(), "i-g2".to_string()]),
        )]),
    }
}

#[test]
fn the_end_state_matches_only_what_the_groups_own_deployment_leaves() {
    assert_eq!(
        end_state_problems(&expected(), &as_expected()),
        Vec::<String>::new()
    );

    let mut other_tg = as_expected();
    other_tg.listener_forwards_to = vec!["tg-b".into()];
    let mut split = as_expected();
    split.listener_forwards_to = vec!["tg-a".into(), "tg-b".into()];
    let mut blue_left = as_expected();
    blue_left.registered.insert("i-blue".into());
    let mut not_restored = as_expected();
    not_restored.settings = [5, 2, 2, 2];
    let mut blue_asg_left = as_expected();
    blue_asg_left
        .asgs
        .insert("a-blue".into(), BTreeSet::from(["i-b1".to_string()]));
    let mut wrong_asg = as_expected();
    wrong_asg.asgs = BTreeMap::from([("CodeDeploy_a_d-2".to_string(), as_expected().registered)]);
    let mut no_asg = as_expected();
    no_asg.asgs.clear();
    for (what, observed, needle) in [
        ("another group's target group", other_tg, "listener"),
        ("a split forward", split, "listener"),
        (
            "a blue instance still registered",
            blue_left,
            "target group holds",
        ),
        ("settings not restored", not_restored, "health check"),
        ("blue ASG not deleted", blue_asg_left, "Auto Scaling"),
        ("another deployment's ASG", wrong_asg, "Auto Scaling"),
        ("no ASG", no_asg, "Auto Scaling"),
    ] {
        let problems = end_state_problems(&expected(), &observed);
        assert_eq!(problems.len(), 1, "{what}: {problems:?}");
        assert!(problems[0].contains(needle), "{what}: {problems:?}");
    }
    let mut no_green = expected();
    no_green.green.clear();
    let mut nothing = as_expected();
    nothing.registered.clear();
    nothing.asgs = BTreeMap::from([("CodeDeploy_a_d-1".to_string(), BTreeSet::new())]);
    assert_eq!(
        end_state_problems(&no_green, &nothing),
        vec!["the deployment names no green instance".to_string()]
    );
}

#[test]
fn percentiles_take_the_nearest_rank_and_ratios_need_a_base() {
    assert_eq!(percentile(&[], 50.0), None);
    let v = [5, 1, 4, 2, 3, 6, 7, 8, 9, 10];
    assert_eq!(percentile(&v, 50.0), Some(5));
    assert_eq!(percentile(&v, 95.0), Some(10));
    assert_eq!(percentile(&[7], 95.0), Some(7));
    assert_eq!(ratio(Some(1500), Some(1000)), "1.50×");
    assert_eq!(ratio(Some(1500), Some(0)), "n/a");
    assert_eq!(ratio(None, Some(1000)), "n/a");
}
