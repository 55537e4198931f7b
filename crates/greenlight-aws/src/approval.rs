//! Answering an execution's pending approval (issue 10): find the task token
//! of its `AwaitApproval` wait in GetExecutionHistory (decision:
//! [`greenlight_core::approval::pending_approval`]), then SendTaskSuccess or
//! SendTaskFailure. For `greenlight promote` / `abort`.

use crate::AwsError;
use greenlight_core::approval::{
    pending_approval, ApprovalAnswer, HistoryEvent, NoPendingApproval, PendingApproval,
    REJECTED_ERROR,
};

/// Why an approval could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("execution {execution_arn}: {reason}")]
    NotPending {
        execution_arn: String,
        reason: NoPendingApproval,
    },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// GetExecutionHistory (every page, oldest first) as core events.
pub async fn execution_history(
    client: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<Vec<HistoryEvent>, AwsError> {
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = client
            .get_execution_history()
            .execution_arn(execution_arn)
            .max_results(HISTORY_PAGE)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetExecutionHistory", execution_arn, &e))?;
        events.extend(out.events().iter().map(history_event));
        token = out
            .next_token()
            .map(str::to_string)
            .filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    Ok(events)
}

/// Events per GetExecutionHistory page (the API's maximum).
const HISTORY_PAGE: i32 = 1000;

/// The newest page of an execution's history (GetExecutionHistory
/// `reverseOrder`, one call), oldest first like [`execution_history`], or
/// `None` when that page cannot be trusted to hold the newest events: the
/// history has more pages and the answer was not newest-first (moto 5.2.5
/// ignores `reverseOrder`).
pub async fn newest_history_page(
    client: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<Option<Vec<HistoryEvent>>, AwsError> {
    let out = client
        .get_execution_history()
        .execution_arn(execution_arn)
        .reverse_order(true)
        .max_results(HISTORY_PAGE)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("GetExecutionHistory", execution_arn, &e))?;
    let mut events: Vec<HistoryEvent> = out.events().iter().map(history_event).collect();
    let more = out.next_token().is_some_and(|t| !t.is_empty());
    let newest_first = events.first().map(|e| e.id) >= events.last().map(|e| e.id);
    if more && !newest_first {
        return Ok(None);
    }
    events.sort_by_key(|e| e.id);
    Ok(Some(events))
}

fn history_event(e: &aws_sdk_sfn::types::HistoryEvent) -> HistoryEvent {
    HistoryEvent {
        id: e.id(),
        kind: e.r#type().as_str().to_string(),
        state_name: e
            .state_entered_event_details()
            .map(|d| d.name().to_string())
            .or_else(|| e.state_exited_event_details().map(|d| d.name().to_string())),
        parameters: e
            .task_scheduled_event_details()
            .map(|d| d.parameters().to_string()),
    }
}

/// The execution's pending approval.
pub async fn find_pending_approval(
    client: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<PendingApproval, ApprovalError> {
    let events = execution_history(client, execution_arn).await?;
    pending_approval(&events).map_err(|reason| ApprovalError::NotPending {
        execution_arn: execution_arn.to_string(),
        reason,
    })
}

/// Answers the execution's pending approval: SendTaskSuccess with
/// `{"approved":true,"by":...}`, or SendTaskFailure with
/// `greenlight.ApprovalRejected` and who rejected and why.
pub async fn answer_approval(
    client: &aws_sdk_sfn::Client,
    execution_arn: &str,
    answer: &ApprovalAnswer,
) -> Result<PendingApproval, ApprovalError> {
    let pending = find_pending_approval(client, execution_arn).await?;
    if answer.approved {
        client
            .send_task_success()
            .task_token(&pending.task_token)
            .output(answer.output())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("SendTaskSuccess", execution_arn, &e))?;
    } else {
        client
            .send_task_failure()
            .task_token(&pending.task_token)
            .error(REJECTED_ERROR)
            .cause(answer.cause())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("SendTaskFailure", execution_arn, &e))?;
    }
    Ok(pending)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryOutput;
    use aws_sdk_sfn::operation::send_task_failure::SendTaskFailureOutput;
    use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessOutput;
    use aws_sdk_sfn::primitives::DateTime;
    use aws_sdk_sfn::types::{
        HistoryEvent as Ev, HistoryEventType, StateEnteredEventDetails, TaskScheduledEventDetails,
    };
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use std::sync::{Arc, Mutex};

    const ARN: &str = "arn:aws:states:us-east-1:1:execution:greenlight-pipeline:exec-1";

    fn history(with_token: bool) -> GetExecutionHistoryOutput {
        let at = DateTime::from_secs(0);
        let entered = Ev::builder()
            .id(5)
            .timestamp(at)
            .r#type(HistoryEventType::TaskStateEntered)
            .state_entered_event_details(
                StateEnteredEventDetails::builder()
                    .name("AwaitApproval")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let parameters = if with_token {
            r#"{"Payload":{"taskToken":"tok-1"}}"#
        } else {
            r#"{"Payload":{}}"#
        };
        let scheduled = Ev::builder()
            .id(6)
            .timestamp(at)
            .r#type(HistoryEventType::TaskScheduled)
            .task_scheduled_event_details(
                TaskScheduledEventDetails::builder()
                    .resource_type("lambda")
                    .resource("invoke.waitForTaskToken")
                    .region("us-east-1")
                    .parameters(parameters)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        GetExecutionHistoryOutput::builder()
            .events(entered)
            .events(scheduled)
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn approve_sends_task_success_with_who() {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let s = seen.clone();
        let read = mock!(aws_sdk_sfn::Client::get_execution_history)
            .match_requests(|r| r.execution_arn() == Some(ARN))
            .then_output(|| history(true));
        let ok = mock!(aws_sdk_sfn::Client::send_task_success)
            .match_requests(move |r| {
                s.lock().unwrap().push(format!(
                    "{} {}",
                    r.task_token().unwrap_or_default(),
                    r.output().unwrap_or_default()
                ));
                true
            })
            .then_output(|| SendTaskSuccessOutput::builder().build());
        let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&read, &ok]);
        let answer = ApprovalAnswer {
            approved: true,
            by: "alice".into(),
            reason: None,
        };
        let pending = answer_approval(&client, ARN, &answer).await.unwrap();
        assert_eq!(pending.task_token, "tok-1");
        assert_eq!(
            *seen.lock().unwrap(),
            vec![r#"tok-1 {"approved":true,"by":"alice"}"#.to_string()]
        );
    }

    #[tokio::test]
    async fn reject_sends_task_failure_with_the_rejected_error() {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let s = seen.clone();
        let read = mock!(aws_sdk_sfn::Client::get_execution_history).then_output(|| history(true));
        let fail = mock!(aws_sdk_sfn::Client::send_task_failure)
            .match_requests(move |r| {
                s.lock().unwrap().push(format!(
                    "{} {} {}",
                    r.task_token().unwrap_or_default(),
                    r.error().unwrap_or_default(),
                    r.cause().unwrap_or_default()
                ));
                true
            })
            .then_output(|| SendTaskFailureOutput::builder().build());
        let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&read, &fail]);
        let answer = ApprovalAnswer {
            approved: false,
            by: "bob".into(),
            reason: Some("not now".into()),
        };
        answer_approval(&client, ARN, &answer).await.unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            vec!["tok-1 greenlight.ApprovalRejected rejected by bob: not now".to_string()]
        );
    }

    #[tokio::test]
    async fn nothing_is_sent_without_a_token() {
        let read = mock!(aws_sdk_sfn::Client::get_execution_history).then_output(|| history(false));
        let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&read]);
        let answer = ApprovalAnswer {
            approved: true,
            by: "alice".into(),
            reason: None,
        };
        let err = answer_approval(&client, ARN, &answer).await.unwrap_err();
        assert!(
            matches!(
                err,
                ApprovalError::NotPending {
                    reason: NoPendingApproval::NoToken,
                    ..
                }
            ),
            "{err}"
        );
    }
}
