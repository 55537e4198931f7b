use super::*;
use serde_json::json;

const KEY: &str = "artifacts/shop/2024-05-01T12:00:00 build+42 café.zip";

fn event() -> Value {
    serde_json::from_str(include_str!(
        "../../../../../events/s3-eventbridge-object-created.json"
    ))
    .unwrap()
}

fn execution(status: &str) -> ExecutionFacts {
    ExecutionFacts {
        name: "shop-abc".into(),
        status: status.into(),
        output: None,
        error: None,
        cause: None,
        deployment: None,
    }
}

fn rejected_record() -> String {
    crate::relay::invocation_record(
        crate::lambda_host::DEPLOY_TRIGGER,
        event(),
        "NotAZip",
        "the object is not a zip archive",
        3,
        "id-1",
    )
    .to_string()
}

#[test]
fn a_succeeded_execution_with_a_succeeded_deployment_is_deployed() {
    let e = ExecutionFacts {
        deployment: Some(("d-1".into(), "Succeeded".into())),
        ..execution("SUCCEEDED")
    };
    assert_eq!(
        decide_fate(KEY, &[e], &[], &[]),
        UploadFate::Deployed {
            execution: "shop-abc".into(),
            deployment_id: "d-1".into()
        }
    );
}

#[test]
fn a_succeeded_execution_without_a_succeeded_deployment_is_unaccounted() {
    for deployment in [None, Some(("d-1".to_string(), "Stopped".to_string()))] {
        let e = ExecutionFacts {
            deployment,
            ..execution("SUCCEEDED")
        };
        assert!(!decide_fate(KEY, &[e], &[], &[]).is_accounted());
    }
}

#[test]
fn a_superseded_execution_names_the_newer_key() {
    let e = ExecutionFacts {
        output: Some(
            json!({"admission": {"decision": "superseded", "byKey": "artifacts/shop/b.zip"}}),
        ),
        ..execution("SUCCEEDED")
    };
    assert_eq!(
        decide_fate(KEY, &[e], &[], &[]),
        UploadFate::Superseded {
            execution: "shop-abc".into(),
            by_key: Some("artifacts/shop/b.zip".into())
        }
    );
}

#[test]
fn a_failed_execution_with_a_named_error_is_rejected_with_it() {
    let e = ExecutionFacts {
        error: Some("DeploymentFailed".into()),
        cause: Some("Install failed on i-1".into()),
        ..execution("FAILED")
    };
    assert_eq!(
        decide_fate(KEY, &[e], &[], &[]),
        UploadFate::Rejected {
            source: "execution shop-abc".into(),
            reason: "DeploymentFailed: Install failed on i-1".into()
        }
    );
}

#[test]
fn running_unnamed_failures_timeouts_and_aborts_are_unaccounted() {
    for status in ["RUNNING", "FAILED", "TIMED_OUT", "ABORTED"] {
        let fate = decide_fate(KEY, &[execution(status)], &[rejected_record()], &[]);
        assert!(!fate.is_accounted(), "{status}: {fate:?}");
    }
}

#[test]
fn one_unaccounted_execution_of_the_key_makes_the_upload_unaccounted() {
    let done = ExecutionFacts {
        deployment: Some(("d-1".into(), "Succeeded".into())),
        ..execution("SUCCEEDED")
    };
    let fate = decide_fate(KEY, &[done, execution("RUNNING")], &[], &[]);
    assert!(!fate.is_accounted(), "{fate:?}");
}

#[test]
fn deployed_wins_over_another_execution_that_failed() {
    let failed = ExecutionFacts {
        error: Some("GroupBusy".into()),
        ..execution("FAILED")
    };
    let done = ExecutionFacts {
        deployment: Some(("d-1".into(), "Succeeded".into())),
        ..execution("SUCCEEDED")
    };
    assert!(decide_fate(KEY, &[failed, done], &[], &[]).is_deployed());
}

#[test]
fn with_no_execution_a_rejected_uploads_record_naming_the_key_rejects_it() {
    assert_eq!(
        decide_fate(KEY, &[], &[rejected_record()], &[]),
        UploadFate::Rejected {
            source: "RejectedUploads queue".into(),
            reason: "NotAZip: the object is not a zip archive".into()
        }
    );
    // A record for another key does not account for this one.
    assert!(
        !decide_fate("artifacts/shop/other.zip", &[], &[rejected_record()], &[]).is_accounted()
    );
}

#[test]
fn with_no_execution_a_notification_naming_the_key_rejects_it() {
    let n = Notification {
        subject: Some("greenlight: upload rejected".into()),
        message: format!("{KEY} was not deployed: NotAZip"),
        outcome: None,
        body: None,
    };
    assert_eq!(
        decide_fate(KEY, &[], &[], &[n]),
        UploadFate::Rejected {
            source: "notification".into(),
            reason: "greenlight: upload rejected".into()
        }
    );
}

#[test]
fn no_trace_at_all_is_unaccounted() {
    let n = Notification {
        subject: None,
        message: "something else".into(),
        outcome: None,
        body: None,
    };
    assert!(!decide_fate(KEY, &[], &[], &[n]).is_accounted());
}

#[test]
fn classic_notification_records_are_matched_by_key_too() {
    let record = json!({
        "requestPayload": {"Records": [{"s3": {"object": {"key": KEY}}}]},
        "responsePayload": {"errorType": "NotAZip", "errorMessage": "x"}
    })
    .to_string();
    assert!(decide_fate(KEY, &[], &[record], &[]).is_rejected());
}

#[test]
fn the_invocation_record_has_lambdas_documented_shape() {
    let r: Value = serde_json::from_str(&rejected_record()).unwrap();
    assert_eq!(r["version"], "1.0");
    assert_eq!(r["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(r["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(
        r["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:123456789012:function:greenlight-deploy-trigger:$LATEST"
    );
    assert_eq!(r["requestPayload"], event());
    assert_eq!(r["responseContext"]["functionError"], "Unhandled");
    assert_eq!(r["responsePayload"]["errorType"], "NotAZip");
}

#[test]
fn an_aborted_execution_is_accounted_for_only_by_the_notification_naming_it() {
    for status in ["ABORTED", "TIMED_OUT"] {
        let e = execution(status);
        assert!(!decide_fate(KEY, std::slice::from_ref(&e), &[], &[]).is_accounted());
        let n = Notification {
            subject: Some("greenlight: execution ended".into()),
            message: format!("execution {} of the pipeline ended {status}", e.name),
            outcome: None,
            body: None,
        };
        assert!(decide_fate(KEY, &[e], &[], &[n]).is_rejected());
    }
}

#[test]
fn a_deployed_notification_naming_the_key_does_not_reject_it() {
    let n = Notification {
        subject: Some("greenlight deployed: shop/shop-bg d-1".into()),
        message: format!("Revision: x (s3://b/{KEY})"),
        outcome: Some("deployed".into()),
        body: None,
    };
    assert!(!decide_fate(KEY, &[], &[], &[n]).is_accounted());
}

#[test]
fn an_sns_envelope_gives_the_text_the_outcome_attribute_and_the_body() {
    let body = json!({"outcome": "deployed", "deploymentId": "d-1", "text": "greenlight: deployed\nDeployment: d-1\n"});
    let envelope = json!({
        "Type": "Notification",
        "Subject": "greenlight deployed: shop/shop-bg d-1",
        "Message": body.to_string(),
        "MessageAttributes": {"outcome": {"Type": "String", "Value": "deployed"}},
    });
    let n = crate::scenarios::notification_of(&envelope, "ignored");
    assert_eq!(
        n.subject.as_deref(),
        Some("greenlight deployed: shop/shop-bg d-1")
    );
    assert_eq!(n.message, "greenlight: deployed\nDeployment: d-1\n");
    assert_eq!(n.outcome.as_deref(), Some("deployed"));
    assert_eq!(n.body, Some(body));
    // A plain message (not JSON) is kept as it came, without an outcome.
    let plain = json!({"Message": "hello"});
    let n = crate::scenarios::notification_of(&plain, "raw");
    assert_eq!(n.message, "hello");
    assert_eq!(n.outcome, None);
    assert_eq!(
        crate::scenarios::notification_of(&Value::Null, "raw").message,
        "raw"
    );
}
