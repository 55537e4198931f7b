use super::*;
use crate::model::{Phase, Revision, Source};
use serde_json::Value;

const NOW: i64 = 1_700_000_000_000;

fn input() -> PipelineInput {
    PipelineInput {
        application: "shop".into(),
        deployment_group: "shop-prod".into(),
        revision: Revision {
            bucket: "artifacts-bucket".into(),
            key: "artifacts/shop/20240101120000-42.zip".into(),
            version: Some("v1".into()),
            etag: None,
            label: "20240101120000-42".into(),
        },
        uploaded_at: "2024-01-01T12:00:00Z".into(),
        uploaded_at_ms: NOW - 60_000,
        source: Source::S3 { event_id: None },
        approval: None,
        bake_skip: None,
    }
}

fn ledger() -> Vec<PhaseTiming> {
    vec![
        PhaseTiming {
            phase: Phase::Provisioning,
            started_at_ms: NOW - 100_000,
            ended_at_ms: Some(NOW - 70_000),
            predicted_seconds: Some(25),
        },
        PhaseTiming {
            phase: Phase::Installing,
            started_at_ms: NOW - 70_000,
            ended_at_ms: Some(NOW - 28_000),
            predicted_seconds: None,
        },
        PhaseTiming {
            phase: Phase::Done,
            started_at_ms: NOW,
            ended_at_ms: None,
            predicted_seconds: None,
        },
    ]
}

#[test]
fn deployed_names_the_deployment_revision_and_phases() {
    let n = deployed(&input(), "exec-1", "d-OK1", &ledger(), None);
    assert_eq!(n.subject, "greenlight deployed: shop/shop-prod d-OK1");
    assert_eq!(n.outcome, DeploymentOutcome::Deployed);
    assert!(n
        .message
        .contains("revision 20240101120000-42 is deployed to shop/shop-prod"));
    assert!(n.message.contains("Deployment: d-OK1"));
    assert!(n.message.contains("Provisioning: 30 s (predicted 25 s)"));
    assert!(n.message.contains("Installing: 42 s\n"));
    assert!(!n.message.contains("Done"));
    assert_eq!(n.body["outcome"], "deployed");
    assert_eq!(n.body["deploymentId"], "d-OK1");
    assert_eq!(n.body["executionName"], "exec-1");
    assert_eq!(
        n.body["revision"]["key"],
        "artifacts/shop/20240101120000-42.zip"
    );
    assert_eq!(n.body["phases"].as_array().unwrap().len(), 2);
    assert_eq!(n.body["phases"][0]["phase"], "Provisioning");
    assert_eq!(n.body["phases"][0]["predictedSeconds"], 25);
    assert_eq!(n.body["text"], n.message.as_str());
}

#[test]
fn a_phase_still_open_says_so() {
    let row = PhaseTiming {
        phase: Phase::Terminating,
        started_at_ms: NOW,
        ended_at_ms: None,
        predicted_seconds: Some(3),
    };
    assert_eq!(phase_line(&row), "Terminating: not ended (predicted 3 s)");
}

#[test]
fn superseded_names_the_newer_upload() {
    let n = superseded(
        &input(),
        "exec-1",
        "exec-2",
        "artifacts/shop/20240101130000-43.zip",
    );
    assert_eq!(n.outcome, DeploymentOutcome::Superseded);
    assert!(n
        .subject
        .starts_with("greenlight superseded: shop/shop-prod"));
    assert!(n.message.contains("NOT deployed"));
    assert!(n.message.contains("artifacts/shop/20240101130000-43.zip"));
    assert!(n.message.contains("exec-2"));
    assert_eq!(n.body["outcome"], "superseded");
    assert_eq!(n.body["supersededBy"]["executionName"], "exec-2");
    assert_eq!(
        n.body["supersededBy"]["key"],
        "artifacts/shop/20240101130000-43.zip"
    );
}

#[test]
fn the_sns_message_gives_email_the_text_and_everyone_else_the_json_body() {
    let n = deployed(&input(), "exec-1", "d-OK1", &ledger(), None);
    let message: Value = serde_json::from_str(&sns_message(&n)).unwrap();
    let object = message.as_object().unwrap();
    assert_eq!(object.len(), 2, "{message}");
    assert_eq!(message["email"], n.message.as_str());
    let default: Value = serde_json::from_str(message["default"].as_str().unwrap()).unwrap();
    assert_eq!(default, n.body);
}

#[test]
fn attributes_carry_outcome_application_and_group_and_skip_empty_values() {
    let n = superseded(&input(), "exec-1", "exec-2", "k");
    assert_eq!(
        sns_attributes(&n),
        vec![
            ("outcome", "superseded".to_string()),
            ("application", "shop".to_string()),
            ("deploymentGroup", "shop-prod".to_string()),
        ]
    );
    let mut blank = input();
    blank.deployment_group = " ".into();
    let n = deployed(&blank, "exec-1", "d-1", &[], None);
    assert_eq!(
        sns_attributes(&n),
        vec![
            ("outcome", "deployed".to_string()),
            ("application", "shop".to_string()),
        ]
    );
}

#[test]
fn a_bake_skipped_by_override_is_its_own_notification_naming_who_asked() {
    let mut i = input();
    let skip = crate::options::BakeSkip {
        requested_by: crate::options::RequestedBy::ObjectTag,
    };
    i.bake_skip = Some(skip);
    let n = bake_skipped(&i, "exec-1", "d-SKIP1", &skip, Some(1_800));
    assert_eq!(n.outcome, DeploymentOutcome::BakeSkipped);
    assert_eq!(n.outcome.name(), "bakeSkipped");
    assert!(n.message.starts_with(
        "greenlight: bake SKIPPED for shop/shop-prod deployment d-SKIP1 by override (S3 tag greenlight-bake=skip on s3://artifacts-bucket/artifacts/shop/20240101120000-42.zip@v1)\n"
    ), "{}", n.message);
    assert!(n.message.contains("whole termination wait (1800 s)"));
    assert!(n
        .message
        .contains("aws deploy stop-deployment --deployment-id d-SKIP1 --auto-rollback-enabled"));
    assert_eq!(
        n.subject,
        "greenlight: bake SKIPPED for shop/shop-prod d-SKIP1"
    );
    assert_eq!(n.body["outcome"], "bakeSkipped");
    assert_eq!(n.body["bakeSkip"]["requestedBy"], "objectTag");
    assert_eq!(n.body["terminationWaitSeconds"], 1_800);
    assert_eq!(
        sns_attributes(&n)[0],
        (ATTR_OUTCOME, "bakeSkipped".to_string())
    );
}

#[test]
fn the_deployed_notification_says_whether_the_override_skipped_the_bake() {
    let mut i = input();
    i.source = Source::CodePipeline {
        job_id: "job-9".into(),
    };
    i.bake_skip = Some(crate::options::BakeSkip {
        requested_by: crate::options::RequestedBy::PipelineParameter,
    });
    let skipped = deployed(&i, "exec-1", "d-OK1", &[], Some(BakeVerdict::Skipped));
    assert!(skipped.message.contains(
        "Bake: SKIPPED by override (CodePipeline job job-9 (UserParameters {\"bake\":\"skip\"})): green was not watched"
    ), "{}", skipped.message);
    assert_eq!(skipped.body["bakeSkip"]["skipped"], true);
    let nothing = deployed(&i, "exec-1", "d-OK1", &[], Some(BakeVerdict::NotConfigured));
    assert!(nothing
        .message
        .contains("but the group has no bake configured: nothing was skipped"));
    assert_eq!(nothing.body["bakeSkip"]["skipped"], false);
    // Without an override the notification has no bake line at all.
    let plain = deployed(&input(), "exec-1", "d-OK1", &[], Some(BakeVerdict::Passed));
    assert!(!plain.message.contains("Bake:"));
    assert!(plain.body.get("bakeSkip").is_none());
}
