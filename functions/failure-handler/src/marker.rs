//! Claiming the report marker (dedupe), decided by
//! `greenlight_core::runbook::marker_decision`.

use super::*;

// ---- dedupe marker ----------------------------------------------------------

pub(crate) enum Claim {
    /// This invocation holds the marker.
    Claimed(ActionRecord),
    /// Handled or being handled: do nothing twice.
    Skip {
        reason: String,
        report: Option<Box<FailureReport>>,
    },
    /// The marker could not be written (S3 failing): go on without it.
    Unavailable(ActionRecord),
}

/// Who claims, for [`claim`].
pub(crate) struct Claimant<'a> {
    /// The invocation (its request id).
    pub by: &'a str,
    /// The execution whose failure path claims (recorded in the marker).
    pub execution: Option<&'a str>,
    /// The execution whose failure-path attempts are known to have ended:
    /// its fresh in-progress claim is taken over
    /// (`greenlight_core::runbook::marker_decision_after`).
    pub ended_failure_path: Option<&'a str>,
}

/// Claims `key` for this invocation: `PutObject If-None-Match: *` with an
/// in-progress marker. When it exists, reads it and lets the core decide.
pub(crate) async fn claim(
    deps: &Deps,
    key: &str,
    claimant: &Claimant<'_>,
    now: EpochMillis,
) -> Claim {
    let claimed_by = claimant.by;
    let bucket = deps.config.report_bucket.as_str();
    let location = format!("s3://{bucket}/{key}");
    let mine = ReportMarker::InProgress {
        claimed_at_ms: now,
        claimed_by: claimed_by.to_string(),
        execution: claimant.execution.map(str::to_string),
    };
    match put_marker(&deps.s3, bucket, key, &mine, Condition::Absent).await {
        Ok(()) => {
            return Claim::Claimed(ActionRecord::new(
                Step::ClaimReport,
                location,
                Outcome::Done,
                format!("claimed by {claimed_by}"),
            ))
        }
        Err(e) if e.has_code(&["ConditionalRequestConflict"]) => {
            return Claim::Skip {
                reason: format!(
                "another invocation is claiming {location} right now (ConditionalRequestConflict)"
            ),
                report: None,
            }
        }
        Err(e) if e.has_code(&["PreconditionFailed"]) => {}
        Err(e) => {
            tracing::warn!(
                marker = location.as_str(),
                error = %e,
                "could not claim the report marker; going on without dedupe"
            );
            return Claim::Unavailable(ActionRecord::new(
                Step::ClaimReport,
                location,
                Outcome::Failed,
                format!("could not write the marker, handled without dedupe: {e}"),
            ));
        }
    }

    // Someone claimed it before: read what they left.
    let (etag, body) = match get_marker(&deps.s3, bucket, key).await {
        Ok(Some(stored)) => (stored.etag, Some(stored.body)),
        Ok(None) => (None, None),
        Err(e) => {
            return Claim::Skip {
                reason: format!("{location} exists but could not be read ({e})"),
                report: None,
            }
        }
    };
    let parsed = body.as_deref().map(serde_json::from_slice::<ReportMarker>);
    let existing = match &parsed {
        None => ExistingMarker::Absent,
        Some(Ok(marker)) => ExistingMarker::Found(marker),
        Some(Err(_)) => ExistingMarker::Unreadable,
    };
    match marker_decision_after(
        existing,
        now,
        TAKEOVER_AFTER_MS,
        claimant.ended_failure_path,
    ) {
        MarkerDecision::Skip { reason, report } => {
            tracing::info!(
                marker = location.as_str(),
                reason = reason.as_str(),
                "duplicate delivery"
            );
            Claim::Skip { reason, report }
        }
        MarkerDecision::Proceed => {
            match put_marker(&deps.s3, bucket, key, &mine, Condition::Absent).await {
                Ok(()) => Claim::Claimed(ActionRecord::new(
                    Step::ClaimReport,
                    location,
                    Outcome::Done,
                    format!("claimed by {claimed_by} (the earlier marker had vanished)"),
                )),
                Err(e) => Claim::Skip {
                    reason: format!("{location} was claimed again by another invocation ({e})"),
                    report: None,
                },
            }
        }
        MarkerDecision::TakeOver { reason } => {
            let condition = match etag.as_deref() {
                Some(etag) => Condition::Matches(etag),
                None => Condition::None,
            };
            match put_marker(&deps.s3, bucket, key, &mine, condition).await {
                Ok(()) => Claim::Claimed(ActionRecord::new(
                    Step::ClaimReport,
                    location,
                    Outcome::Done,
                    format!("taken over by {claimed_by}: {reason}"),
                )),
                Err(e) if e.has_code(LOST_RACE_CODES) => Claim::Skip {
                    reason: format!("another invocation took over {location} first"),
                    report: None,
                },
                Err(e) => Claim::Unavailable(ActionRecord::new(
                    Step::ClaimReport,
                    location,
                    Outcome::Failed,
                    format!(
                        "could not take over the stale marker ({reason}), handled without dedupe: {e}"
                    ),
                )),
            }
        }
    }
}

/// [`claim`] for the event-driven paths (CodeDeploy events, execution ends):
/// the claim's record to go on with, or the answer when this failure is
/// handled (its report) or being handled elsewhere (ignored, with why).
pub(crate) async fn claim_or_answer(
    deps: &Deps,
    key: &str,
    claimant: &Claimant<'_>,
    now: EpochMillis,
    deployment_id: Option<&str>,
) -> Result<ActionRecord, Response> {
    match claim(deps, key, claimant, now).await {
        Claim::Claimed(record) | Claim::Unavailable(record) => Ok(record),
        Claim::Skip {
            report: Some(report),
            ..
        } => Err(Response::Duplicate(*report)),
        Claim::Skip {
            reason,
            report: None,
        } => Err(Response::Ignored {
            reason,
            deployment_id: deployment_id.map(str::to_string),
        }),
    }
}
