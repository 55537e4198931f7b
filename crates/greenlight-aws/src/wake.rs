//! Waking an execution's status loop on a CodeDeploy event
//! ([`greenlight_core::wake`]): the token of its `AwaitDeploymentEvent` wait,
//! read from the execution's history, and SendTaskSuccess.

use crate::approval::{execution_history, newest_history_page};
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

/// The execution's pending event wait (`Err` says why there is none). A
/// pending wait is the execution's newest state, so the newest page of its
/// history holds it: one call however long the execution has run; the
/// whole history only when that page cannot be trusted
/// ([`newest_history_page`]).
pub async fn pending_event_wait(
    client: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<Result<PendingApproval, NoPendingApproval>, AwsError> {
    let events = match newest_history_page(client, execution_arn).await? {
        Some(events) => events,
        None => execution_history(client, execution_arn).await?,
    };
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

    fn history_event(
        id: i64,
        kind: aws_sdk_sfn::types::HistoryEventType,
    ) -> aws_sdk_sfn::types::builders::HistoryEventBuilder {
        aws_sdk_sfn::types::HistoryEvent::builder()
            .id(id)
            .timestamp(aws_smithy_types::DateTime::from_secs(0))
            .r#type(kind)
    }

    /// A history page ending (by id) in a pending AwaitDeploymentEvent wait
    /// with token `tok-<first_id>`: `newest_first` orders it as AWS answers
    /// `reverseOrder`; `more` gives it a next page.
    fn page(
        first_id: i64,
        newest_first: bool,
        more: bool,
    ) -> aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryOutput {
        use aws_sdk_sfn::types::{
            HistoryEventType, StateEnteredEventDetails, TaskScheduledEventDetails,
        };
        let mut events = vec![
            history_event(first_id, HistoryEventType::TaskStateEntered)
                .state_entered_event_details(
                    StateEnteredEventDetails::builder()
                        .name(AWAIT_EVENT_STATE)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
            history_event(first_id + 1, HistoryEventType::TaskScheduled)
                .task_scheduled_event_details(
                    TaskScheduledEventDetails::builder()
                        .resource_type("lambda")
                        .resource("invoke.waitForTaskToken")
                        .region("us-east-1")
                        .parameters(format!(
                            r#"{{"Payload":{{"action":"await","taskToken":"tok-{first_id}"}}}}"#
                        ))
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        ];
        if newest_first {
            events.reverse();
        }
        let mut out =
            aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryOutput::builder()
                .set_events(Some(events));
        if more {
            out = out.next_token("page-2");
        }
        out.build().unwrap()
    }

    #[tokio::test]
    async fn the_pending_wait_comes_from_one_newest_first_page() {
        let newest = mock!(aws_sdk_sfn::Client::get_execution_history)
            .match_requests(|r| r.reverse_order() == Some(true) && r.next_token().is_none())
            .then_output(|| page(2001, true, true));
        let client = mock_client!(aws_sdk_sfn, RuleMode::Sequential, [&newest]);
        let pending = pending_event_wait(&client, "exec").await.unwrap().unwrap();
        assert_eq!(pending.task_token, "tok-2001");
        assert_eq!(pending.scheduled_event_id, 2002);
        assert_eq!(newest.num_calls(), 1, "one page, however long the history");
    }

    #[tokio::test]
    async fn a_page_that_ignored_reverse_order_falls_back_to_the_whole_history() {
        // Oldest first with more to come (moto): its wait is an old one; the
        // whole history, read oldest first, ends with the pending wait.
        let ignored = mock!(aws_sdk_sfn::Client::get_execution_history)
            .match_requests(|r| r.reverse_order() == Some(true))
            .then_output(|| page(1, false, true));
        let first = mock!(aws_sdk_sfn::Client::get_execution_history)
            .match_requests(|r| r.reverse_order().is_none() && r.next_token().is_none())
            .then_output(|| page(1, false, true));
        let second = mock!(aws_sdk_sfn::Client::get_execution_history)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_output(|| page(2001, false, false));
        let client = mock_client!(
            aws_sdk_sfn,
            RuleMode::Sequential,
            [&ignored, &first, &second]
        );
        let pending = pending_event_wait(&client, "exec").await.unwrap().unwrap();
        assert_eq!(pending.task_token, "tok-2001");
        assert_eq!(
            (ignored.num_calls(), first.num_calls(), second.num_calls()),
            (1, 1, 1)
        );
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
