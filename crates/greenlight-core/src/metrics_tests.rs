use super::*;

const NOW: EpochMillis = 1_700_000_000_000;

fn subject() -> Subject<'static> {
    Subject {
        application: "shop",
        deployment_group: "shop-bg",
        deployment_id: Some("d-ABC123"),
    }
}

fn row(phase: Phase, started: i64, ended: Option<i64>, predicted: Option<u32>) -> PhaseTiming {
    PhaseTiming {
        phase,
        started_at_ms: started,
        ended_at_ms: ended,
        predicted_seconds: predicted,
    }
}

/// Every name the EMF directive lists is a root member of the right type
/// (CloudWatch user guide, "Specification: Embedded metric format").
fn assert_valid_emf(doc: &Value) {
    let aws = &doc["_aws"];
    assert_eq!(aws["Timestamp"], json!(NOW));
    let directives = aws["CloudWatchMetrics"].as_array().unwrap();
    assert_eq!(directives.len(), 1);
    let directive = &directives[0];
    assert_eq!(directive["Namespace"], NAMESPACE);
    for set in directive["Dimensions"].as_array().unwrap() {
        let set = set.as_array().unwrap();
        assert!(!set.is_empty() && set.len() <= 30);
        for name in set {
            assert!(doc[name.as_str().unwrap()].is_string(), "{name} in {doc}");
        }
    }
    let metrics = directive["Metrics"].as_array().unwrap();
    assert!(!metrics.is_empty() && metrics.len() <= 100);
    for metric in metrics {
        let name = metric["Name"].as_str().unwrap();
        assert!(doc[name].is_number(), "{name} in {doc}");
        assert!(matches!(
            metric["Unit"].as_str(),
            Some("Seconds") | Some("Count")
        ));
    }
}

#[test]
fn phase_documents_carry_actual_and_predicted_seconds_per_phase() {
    let ledger = vec![
        row(
            Phase::Provisioning,
            NOW - 90_000,
            Some(NOW - 60_000),
            Some(40),
        ),
        row(Phase::Installing, NOW - 60_000, Some(NOW - 15_500), None),
        row(Phase::Rerouting, NOW - 15_500, None, Some(15)),
        row(Phase::Done, NOW, None, None),
    ];
    let docs = phase_documents(NOW, &subject(), &ledger);
    assert_eq!(docs.len(), 3, "{docs:?}");
    for doc in &docs {
        assert_valid_emf(doc);
        assert_eq!(doc["Application"], "shop");
        assert_eq!(doc["DeploymentGroup"], "shop-bg");
        assert_eq!(doc["deploymentId"], "d-ABC123");
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Application", "DeploymentGroup", "Phase"]])
        );
    }
    assert_eq!(docs[0]["Phase"], "Provisioning");
    assert_eq!(docs[0]["PhaseSeconds"], json!(30.0));
    assert_eq!(docs[0]["PhasePredictedSeconds"], json!(40.0));
    assert_eq!(docs[1]["Phase"], "Installing");
    assert_eq!(docs[1]["PhaseSeconds"], json!(44.5));
    assert!(docs[1].get("PhasePredictedSeconds").is_none());
    assert_eq!(
        docs[1]["_aws"]["CloudWatchMetrics"][0]["Metrics"],
        json!([{"Name": "PhaseSeconds", "Unit": "Seconds"}])
    );
    // A phase still running has only its prediction.
    assert_eq!(docs[2]["Phase"], "Rerouting");
    assert!(docs[2].get("PhaseSeconds").is_none());
    assert_eq!(docs[2]["PhasePredictedSeconds"], json!(15.0));
}

#[test]
fn a_phase_with_neither_figure_or_a_clock_going_backwards_is_handled() {
    let ledger = vec![
        row(Phase::Queued, NOW, None, None),
        row(Phase::Installing, NOW, Some(NOW - 5_000), None),
    ];
    let docs = phase_documents(NOW, &subject(), &ledger);
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["PhaseSeconds"], json!(0.0));
}

#[test]
fn empty_or_overlong_dimension_values_give_no_document() {
    let empty = Subject {
        application: "",
        ..subject()
    };
    assert!(outcome_document(NOW, &empty, DeploymentOutcome::Deployed).is_none());
    assert!(gate_document(NOW, &empty, Gate::Bake, true).is_none());
    let long = "a".repeat(1025);
    let long = Subject {
        deployment_group: &long,
        ..subject()
    };
    assert!(phase_documents(NOW, &long, &[row(Phase::Installing, 0, Some(1), None)]).is_empty());
    let max = "g".repeat(1024);
    let max = Subject {
        deployment_group: &max,
        ..subject()
    };
    assert!(outcome_document(NOW, &max, DeploymentOutcome::Failed).is_some());
}

#[test]
fn gate_documents_count_a_pass_or_a_failure() {
    let passed = gate_document(NOW, &subject(), Gate::Validation, true).unwrap();
    assert_valid_emf(&passed);
    assert_eq!(passed["Gate"], "validation");
    assert_eq!(passed["GatePassed"], json!(1.0));
    assert_eq!(passed["GateFailed"], json!(0.0));
    let failed = gate_document(NOW, &subject(), Gate::Bake, false).unwrap();
    assert_valid_emf(&failed);
    assert_eq!(failed["Gate"], "bake");
    assert_eq!(failed["GatePassed"], json!(0.0));
    assert_eq!(failed["GateFailed"], json!(1.0));
}

#[test]
fn outcome_documents_name_the_outcome() {
    for (outcome, name) in [
        (DeploymentOutcome::Deployed, "deployed"),
        (DeploymentOutcome::Superseded, "superseded"),
        (DeploymentOutcome::Failed, "failed"),
        (DeploymentOutcome::ApprovalRequested, "approvalRequested"),
        (DeploymentOutcome::BakeSkipped, "bakeSkipped"),
    ] {
        let doc = outcome_document(NOW, &subject(), outcome).unwrap();
        assert_valid_emf(&doc);
        assert_eq!(doc["Outcome"], name);
        assert_eq!(doc["Deployments"], json!(1.0));
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Application", "DeploymentGroup", "Outcome"]])
        );
    }
    let anonymous = Subject {
        deployment_id: None,
        ..subject()
    };
    let doc = outcome_document(NOW, &anonymous, DeploymentOutcome::Superseded).unwrap();
    assert!(doc.get("deploymentId").is_none());
}

#[test]
fn a_line_is_one_line_of_json() {
    let doc = outcome_document(NOW, &subject(), DeploymentOutcome::Deployed).unwrap();
    let line = emf_line(&doc);
    assert!(!line.contains('\n'));
    assert_eq!(serde_json::from_str::<Value>(&line).unwrap(), doc);
}
