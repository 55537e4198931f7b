//! Waking an execution's status loop on a CodeDeploy event
//! ([`greenlight_core::wake`]): the token of its `AwaitDeploymentEvent` wait,
//! read from the execution's history, and SendTaskSuccess.

use crate::approval::execution_history;
use crate::AwsError;
use greenlight_core::approval::{pending_task, NoPendingApproval, PendingApproval};
use greenlight_core::wake::AWAIT_EVENT_STATE;

/// SendTaskSuccess's answers for a token whose task already ended (its
/// timeout, another wake, the execution's end): Step Functions API
/// reference, SendTaskSuccess errors `TaskTimedOut`, `TaskDoesNotExist`,
/// `InvalidToken`.
pub const ENDED_TASK_CODES: &[&str] = &["TaskTimedOut", "TaskDoesNotExist", "InvalidToken"];

/// How an answer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The wait took the answer: the execution looks now.
    Woke,
    /// The wait had already ended: nothing to do.
    AlreadyEnded,
}

/// The execution's pending event wait (`Err` says why there is none).
pub async fn pending_event_wait(
    client: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<Result<PendingApproval, NoPendingApproval>, AwsError> {
    let events = execution_history(client, execution_arn).await?;
    Ok(pending_task(&events, AWAIT_EVENT_STATE))
}

/// SendTaskSuccess(`token`, `output`); a task that already ended is
/// [`Answer::AlreadyEnded`], not an error. `resource` names the execution in errors.
pub async fn answer_wait(
    client: &aws_sdk_sfn::Client,
    token: &str,
    output: &str,
    resource: &str,
) -> Result<Answer, AwsError> {
    match client
        .send_task_success()
        .task_token(token)
        .output(output)
        .send()
        .await
    {
        Ok(_) => Ok(Answer::Woke),
        Err(e) => {
            let err = AwsError::from_sdk("SendTaskSuccess", resource, &e);
            if err.has_code(ENDED_TASK_CODES) {
                Ok(Answer::AlreadyEnded)
            } else {
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sfn::operation::send_task_success::{SendTaskSuccessError, SendTaskSuccessOutput};
    use aws_sdk_sfn::types::error::{InvalidOutput, TaskTimedOut};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn meta(code: &str) -> aws_smithy_types::error::ErrorMetadata {
        aws_smithy_types::error::ErrorMetadata::builder()
            .code(code)
            .message("m")
            .build()
    }

    #[tokio::test]
    async fn an_answer_wakes_and_an_ended_task_is_not_an_error() {
        let ok = mock!(aws_sdk_sfn::Client::send_task_success)
            .match_requests(|r| r.task_token() == Some("tok") && r.output() == Some("{}"))
            .then_output(|| SendTaskSuccessOutput::builder().build());
        let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&ok]);
        assert_eq!(
            answer_wait(&client, "tok", "{}", "exec").await.expect("ok"),
            Answer::Woke
        );

        let timed_out = mock!(aws_sdk_sfn::Client::send_task_success).then_error(|| {
            SendTaskSuccessError::TaskTimedOut(
                TaskTimedOut::builder().meta(meta("TaskTimedOut")).build(),
            )
        });
        let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&timed_out]);
        assert_eq!(
            answer_wait(&client, "tok", "{}", "exec").await.expect("ok"),
            Answer::AlreadyEnded
        );

        let bad = mock!(aws_sdk_sfn::Client::send_task_success).then_error(|| {
            SendTaskSuccessError::InvalidOutput(
                InvalidOutput::builder().meta(meta("InvalidOutput")).build(),
            )
        });
        let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&bad]);
        let err = answer_wait(&client, "tok", "{}", "exec")
            .await
            .expect_err("an error");
        assert_eq!(
            (err.operation, err.code.as_deref(), err.resource.as_str()),
            ("SendTaskSuccess", Some("InvalidOutput"), "exec")
        );
    }
}
