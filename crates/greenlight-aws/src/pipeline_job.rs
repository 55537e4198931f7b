//! Answering a CodePipeline job from the failure path.

use crate::AwsError;
use aws_sdk_codepipeline::types::{FailureDetails, FailureType};

/// CodePipeline accepts at most 5000 characters of failure message
/// (CodePipeline API reference, `FailureDetails.message`).
pub const MAX_JOB_MESSAGE_CHARS: usize = 5000;

/// What PutJobFailureResult did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobAnswer {
    Failed,
    /// `InvalidJobStateException` / `JobNotFoundException`: answered before, or gone.
    AlreadyAnswered(String),
}

/// PutJobFailureResult(JobFailed, message) (cut to [`MAX_JOB_MESSAGE_CHARS`]).
pub async fn fail_job(
    codepipeline: &aws_sdk_codepipeline::Client,
    job_id: &str,
    message: &str,
) -> Result<JobAnswer, AwsError> {
    let details = FailureDetails::builder()
        .r#type(FailureType::JobFailed)
        .message(greenlight_core::runbook::truncate_chars(
            message,
            MAX_JOB_MESSAGE_CHARS,
        ))
        .build()
        .map_err(|e| {
            AwsError::unexpected(
                "PutJobFailureResult",
                job_id,
                format!("building the failure details: {e}"),
            )
        })?;
    match codepipeline
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
                Ok(JobAnswer::AlreadyAnswered(err.to_string()))
            } else {
                Err(err)
            }
        }
    }
}
