//! CodePipeline job results, the one writer of them: PutJobSuccessResult
//! (with or without a continuation token; the trigger) and
//! PutJobFailureResult (JobFailed; the trigger and the failure handler).
//! Lengths are cut to CodePipeline's limits (summary 2048, message 5000,
//! external execution id 1500 characters: CodePipeline API reference,
//! ExecutionDetails and FailureDetails).

use aws_sdk_codepipeline::types::{ExecutionDetails, FailureDetails, FailureType};
use greenlight_core::trigger::{truncate_chars, MAX_JOB_FAILURE_MESSAGE_LEN, MAX_JOB_SUMMARY_LEN};

use crate::AwsError;

/// FailureDetails.message: at most 5000 characters.
pub const MAX_JOB_MESSAGE_CHARS: usize = MAX_JOB_FAILURE_MESSAGE_LEN;

/// What PutJobFailureResult did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobAnswer {
    /// The job is now failed.
    Failed,
    /// `InvalidJobStateException` / `JobNotFoundException`: the job was
    /// answered before, or is gone. The error says which; the caller decides
    /// whether that is fine (the failure handler) or not (the trigger).
    AlreadyAnswered(AwsError),
}

/// ExecutionDetails.externalExecutionId and FailureDetails.externalExecutionId: at most 1500 characters.
pub const MAX_EXTERNAL_EXECUTION_ID_LEN: usize = 1500;

/// PutJobSuccessResult for `job_id`; with `continuation_token` CodePipeline
/// invokes the action again, without it the action succeeded.
pub async fn put_job_success(
    client: &aws_sdk_codepipeline::Client,
    job_id: &str,
    summary: &str,
    external_execution_id: &str,
    continuation_token: Option<&str>,
) -> Result<(), AwsError> {
    let details = ExecutionDetails::builder()
        .summary(truncate_chars(summary, MAX_JOB_SUMMARY_LEN))
        .external_execution_id(truncate_chars(
            external_execution_id,
            MAX_EXTERNAL_EXECUTION_ID_LEN,
        ))
        .build();
    let mut req = client
        .put_job_success_result()
        .job_id(job_id)
        .execution_details(details);
    if let Some(token) = continuation_token {
        req = req.continuation_token(token);
    }
    req.send()
        .await
        .map_err(|e| AwsError::from_sdk("PutJobSuccessResult", job_id, &e))?;
    Ok(())
}

/// PutJobFailureResult (type JobFailed) for `job_id` with `message` (cut to
/// [`MAX_JOB_MESSAGE_CHARS`]).
pub async fn put_job_failure(
    client: &aws_sdk_codepipeline::Client,
    job_id: &str,
    message: &str,
    external_execution_id: Option<&str>,
) -> Result<JobAnswer, AwsError> {
    let mut details = FailureDetails::builder()
        .r#type(FailureType::JobFailed)
        .message(truncate_chars(message, MAX_JOB_MESSAGE_CHARS));
    if let Some(id) = external_execution_id {
        details = details.external_execution_id(truncate_chars(id, MAX_EXTERNAL_EXECUTION_ID_LEN));
    }
    let details = details.build().map_err(|e| {
        AwsError::unexpected(
            "PutJobFailureResult",
            job_id,
            format!("failure details: {e}"),
        )
    })?;
    match client
        .put_job_failure_result()
        .job_id(job_id)
        .failure_details(details)
        .send()
        .await
    {
        Ok(_) => Ok(JobAnswer::Failed),
        Err(e) => {
            let err = AwsError::from_sdk("PutJobFailureResult", job_id, &e);
            if err.has_code(&["InvalidJobStateException", "JobNotFoundException"])
                || e.as_service_error().is_some_and(|s| {
                    s.is_invalid_job_state_exception() || s.is_job_not_found_exception()
                })
            {
                Ok(JobAnswer::AlreadyAnswered(err))
            } else {
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codepipeline::operation::put_job_failure_result::{
        PutJobFailureResultError, PutJobFailureResultOutput,
    };
    use aws_sdk_codepipeline::operation::put_job_success_result::PutJobSuccessResultOutput;
    use aws_sdk_codepipeline::types::error::InvalidJobStateException;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use crate::test_support::json_error as http;

    #[tokio::test]
    async fn success_carries_the_token_and_cut_summary() {
        let long = "s".repeat(5000);
        let rule = mock!(aws_sdk_codepipeline::Client::put_job_success_result)
            .match_requests(|r| {
                r.continuation_token() == Some("tok")
                    && r.execution_details()
                        .and_then(|d| d.summary())
                        .is_some_and(|s| s.chars().count() == MAX_JOB_SUMMARY_LEN)
            })
            .then_output(|| PutJobSuccessResultOutput::builder().build());
        let client = mock_client!(aws_sdk_codepipeline, RuleMode::MatchAny, [&rule]);
        put_job_success(&client, "job", &long, "arn", Some("tok"))
            .await
            .expect("answered");
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn failure_errors_name_the_job() {
        let rule = mock!(aws_sdk_codepipeline::Client::put_job_failure_result).then_error(|| {
            PutJobFailureResultError::InvalidJobStateException(
                InvalidJobStateException::builder()
                    .message("done")
                    .meta(
                        aws_smithy_types::error::ErrorMetadata::builder()
                            .code("InvalidJobStateException")
                            .message("done")
                            .build(),
                    )
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_codepipeline, RuleMode::MatchAny, [&rule]);
        let Ok(JobAnswer::AlreadyAnswered(e)) =
            put_job_failure(&client, "job-1", "why", None).await
        else {
            panic!("InvalidJobStateException is an answered job");
        };
        assert_eq!(e.operation, "PutJobFailureResult");
        assert_eq!(e.resource, "job-1");
        assert_eq!(e.code.as_deref(), Some("InvalidJobStateException"));
        let ok = mock!(aws_sdk_codepipeline::Client::put_job_failure_result)
            .match_requests(|r| r.failure_details().is_some_and(|d| d.message() == "why"))
            .then_output(|| PutJobFailureResultOutput::builder().build());
        let client = mock_client!(aws_sdk_codepipeline, RuleMode::MatchAny, [&ok]);
        assert_eq!(
            put_job_failure(&client, "job-1", "why", Some("arn")).await,
            Ok(JobAnswer::Failed)
        );
    }

    #[tokio::test]
    async fn throttling_is_transient_and_access_denied_permanent() {
        let throttled = mock!(aws_sdk_codepipeline::Client::put_job_failure_result)
            .then_http_response(|| http(400, "ThrottlingException"));
        let client = mock_client!(
            aws_sdk_codepipeline,
            RuleMode::MatchAny,
            [&throttled],
            |c| c.retry_config(
                aws_sdk_codepipeline::config::retry::RetryConfig::standard().with_max_attempts(1)
            )
        );
        let e = put_job_failure(&client, "job-1", "why", None)
            .await
            .unwrap_err();
        assert!(e.transient, "{e}");
        assert_eq!(e.code.as_deref(), Some("ThrottlingException"));
        let denied = mock!(aws_sdk_codepipeline::Client::put_job_success_result)
            .then_http_response(|| http(400, "AccessDeniedException"));
        let client = mock_client!(aws_sdk_codepipeline, RuleMode::MatchAny, [&denied]);
        let e = put_job_success(&client, "job-2", "s", "arn", None)
            .await
            .unwrap_err();
        assert!(!e.transient, "{e}");
        assert_eq!(e.operation, "PutJobSuccessResult");
        assert_eq!(e.resource, "job-2");
        assert_eq!(e.code.as_deref(), Some("AccessDeniedException"));
    }
}
