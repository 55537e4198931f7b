//! Step Functions executions: StartExecution (idempotent by name),
//! DescribeExecution (the one reader: status, output/error/cause and input)
//! and ListExecutions (the running executions of the pipeline), mapped to
//! `greenlight_core::trigger` types.

use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_sdk_sfn::types::ExecutionStatus as SdkStatus;
use greenlight_core::trigger::{execution_arn, ExecutionStatus};

use crate::AwsError;

/// What StartExecution did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedExecution {
    pub execution_arn: String,
    /// `ExecutionAlreadyExists`: an execution of this name exists (a
    /// duplicate event), nothing new was started. The ARN is derived from the
    /// state machine ARN and the name.
    pub duplicate: bool,
}

/// StartExecution `name` with `input` on `state_machine_arn`;
/// `ExecutionAlreadyExists` is a duplicate, not an error.
pub async fn start_execution(
    client: &aws_sdk_sfn::Client,
    state_machine_arn: &str,
    name: &str,
    input: &str,
) -> Result<StartedExecution, AwsError> {
    let result = client
        .start_execution()
        .state_machine_arn(state_machine_arn)
        .name(name)
        .input(input)
        .send()
        .await;
    match result {
        Ok(out) => Ok(StartedExecution {
            execution_arn: out.execution_arn().to_string(),
            duplicate: false,
        }),
        Err(err)
            if matches!(
                err.as_service_error(),
                Some(StartExecutionError::ExecutionAlreadyExists(_))
            ) =>
        {
            let arn = execution_arn(state_machine_arn, name).ok_or_else(|| {
                AwsError::unexpected(
                    "StartExecution",
                    state_machine_arn,
                    "ExecutionAlreadyExists, and the execution ARN cannot be derived from this state machine ARN",
                )
            })?;
            Ok(StartedExecution {
                execution_arn: arn,
                duplicate: true,
            })
        }
        Err(err) => Err(AwsError::from_sdk(
            "StartExecution",
            format!("{state_machine_arn} (execution {name})"),
            &err,
        )),
    }
}

/// An execution as DescribeExecution reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionView {
    pub name: String,
    pub status: ExecutionStatus,
    /// The execution's input (JSON text; `None` when Step Functions does not
    /// return it, e.g. input too large or not readable to the caller).
    pub input: Option<String>,
}

/// DescribeExecution's error code for an execution that does not exist.
pub const EXECUTION_DOES_NOT_EXIST: &str = "ExecutionDoesNotExist";

/// True when `err` says the execution does not exist.
pub fn is_missing_execution(err: &AwsError) -> bool {
    err.has_code(&[EXECUTION_DOES_NOT_EXIST])
}

/// DescribeExecution `execution_arn`.
pub async fn describe_execution(
    client: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<ExecutionView, AwsError> {
    let out = client
        .describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .map_err(|e| {
            let mut err = AwsError::from_sdk("DescribeExecution", execution_arn, &e);
            if err.code.is_none()
                && e.as_service_error()
                    .is_some_and(|s| s.is_execution_does_not_exist())
            {
                err.code = Some(EXECUTION_DOES_NOT_EXIST.to_string());
            }
            err
        })?;
    let name = out.name().map(str::to_string).unwrap_or_else(|| {
        execution_arn
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_string()
    });
    let owned = |s: Option<&str>| s.map(str::to_string);
    let status = match out.status() {
        SdkStatus::Running => ExecutionStatus::Running,
        SdkStatus::PendingRedrive => ExecutionStatus::PendingRedrive,
        SdkStatus::Succeeded => ExecutionStatus::Succeeded {
            output: owned(out.output()),
        },
        SdkStatus::Failed => ExecutionStatus::Failed {
            error: owned(out.error()),
            cause: owned(out.cause()),
        },
        SdkStatus::TimedOut => ExecutionStatus::TimedOut {
            error: owned(out.error()),
            cause: owned(out.cause()),
        },
        SdkStatus::Aborted => ExecutionStatus::Aborted {
            error: owned(out.error()),
            cause: owned(out.cause()),
        },
        other => ExecutionStatus::Unknown(other.as_str().to_string()),
    };
    Ok(ExecutionView {
        name,
        status,
        input: owned(out.input()),
    })
}

/// One execution ListExecutions lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionSummary {
    pub name: String,
    pub execution_arn: String,
}

/// At most this many ListExecutions pages are read (1000 executions a page
/// at most: Step Functions API reference, ListExecutions `maxResults`).
pub const MAX_EXECUTION_PAGES: usize = 50;

/// ListExecutions(statusFilter RUNNING) of `state_machine_arn`, every page
/// (at most [`MAX_EXECUTION_PAGES`]).
pub async fn list_running_executions(
    client: &aws_sdk_sfn::Client,
    state_machine_arn: &str,
) -> Result<Vec<ExecutionSummary>, AwsError> {
    let mut found = Vec::new();
    let mut next_token: Option<String> = None;
    for _ in 0..MAX_EXECUTION_PAGES {
        let page = client
            .list_executions()
            .state_machine_arn(state_machine_arn)
            .status_filter(SdkStatus::Running)
            .set_next_token(next_token.take())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ListExecutions", state_machine_arn, &e))?;
        found.extend(page.executions().iter().map(|item| ExecutionSummary {
            name: item.name().to_string(),
            execution_arn: item.execution_arn().to_string(),
        }));
        match page.next_token() {
            Some(t) if !t.is_empty() => next_token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(found)
}

/// The newest execution state a state exited with (GetExecutionHistory,
/// newest first, one page of at most 1000 events; the highest event id wins), parsed with `parse`;
/// `None` when no exited state's output parses. The CLI reads the gate's
/// [`greenlight_core::ValidationReport`] (`$.validation`) this way while the
/// execution runs, before any output exists.
pub async fn latest_state_output<T>(
    client: &aws_sdk_sfn::Client,
    execution_arn: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, AwsError> {
    let page = client
        .get_execution_history()
        .execution_arn(execution_arn)
        .reverse_order(true)
        .max_results(1000)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("GetExecutionHistory", execution_arn, &e))?;
    // The newest by event id, whatever order the answer is in (moto 5.2.5
    // ignores `reverseOrder`).
    Ok(page
        .events()
        .iter()
        .filter_map(|e| {
            let output = e.state_exited_event_details()?.output()?;
            parse(output).map(|parsed| (e.id(), parsed))
        })
        .max_by_key(|(id, _)| *id)
        .map(|(_, parsed)| parsed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sfn::operation::describe_execution::{
        DescribeExecutionError, DescribeExecutionOutput,
    };
    use aws_sdk_sfn::operation::start_execution::StartExecutionOutput;
    use aws_sdk_sfn::types::error::{
        ExecutionAlreadyExists, ExecutionDoesNotExist, StateMachineDoesNotExist,
    };
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn meta(code: &str) -> aws_smithy_types::error::ErrorMetadata {
        aws_smithy_types::error::ErrorMetadata::builder()
            .code(code)
            .message("m")
            .build()
    }

    const SM: &str = "arn:aws:states:us-east-1:111122223333:stateMachine:greenlight-pipeline";
    const EXEC: &str = "arn:aws:states:us-east-1:111122223333:execution:greenlight-pipeline:gl-x";

    #[tokio::test]
    async fn started_duplicate_and_failed_starts() {
        let ok = mock!(aws_sdk_sfn::Client::start_execution).then_output(|| {
            StartExecutionOutput::builder()
                .execution_arn(EXEC)
                .start_date(aws_smithy_types::DateTime::from_secs(0))
                .build()
                .expect("output")
        });
        let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&ok]);
        let s = start_execution(&client, SM, "gl-x", "{}")
            .await
            .expect("started");
        assert_eq!((s.execution_arn.as_str(), s.duplicate), (EXEC, false));

        let dup = mock!(aws_sdk_sfn::Client::start_execution).then_error(|| {
            StartExecutionError::ExecutionAlreadyExists(
                ExecutionAlreadyExists::builder()
                    .meta(meta("ExecutionAlreadyExists"))
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&dup]);
        let s = start_execution(&client, SM, "gl-x", "{}")
            .await
            .expect("duplicate");
        assert_eq!((s.execution_arn.as_str(), s.duplicate), (EXEC, true));

        let missing = mock!(aws_sdk_sfn::Client::start_execution).then_error(|| {
            StartExecutionError::StateMachineDoesNotExist(
                StateMachineDoesNotExist::builder()
                    .message("no")
                    .meta(meta("StateMachineDoesNotExist"))
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&missing]);
        let e = start_execution(&client, SM, "gl-x", "{}")
            .await
            .unwrap_err();
        assert_eq!(e.operation, "StartExecution");
        assert_eq!(e.code.as_deref(), Some("StateMachineDoesNotExist"));
        assert!(!e.transient);
        assert!(e.resource.contains("gl-x"));
    }

    #[tokio::test]
    async fn describe_maps_every_status() {
        let rule = mock!(aws_sdk_sfn::Client::describe_execution).then_output(|| {
            DescribeExecutionOutput::builder()
                .execution_arn(EXEC)
                .state_machine_arn(SM)
                .name("gl-x")
                .status(SdkStatus::Failed)
                .error("E")
                .cause("C")
                .start_date(aws_smithy_types::DateTime::from_secs(0))
                .build()
                .expect("output")
        });
        let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&rule]);
        let v = describe_execution(&client, EXEC).await.expect("read");
        assert_eq!(v.name, "gl-x");
        assert_eq!(
            v.status,
            ExecutionStatus::Failed {
                error: Some("E".into()),
                cause: Some("C".into())
            }
        );
        let gone = mock!(aws_sdk_sfn::Client::describe_execution).then_error(|| {
            DescribeExecutionError::ExecutionDoesNotExist(
                ExecutionDoesNotExist::builder()
                    .meta(meta("ExecutionDoesNotExist"))
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&gone]);
        let e = describe_execution(&client, EXEC).await.unwrap_err();
        assert_eq!(e.code.as_deref(), Some("ExecutionDoesNotExist"));
        assert_eq!(e.resource, EXEC);
    }

    use crate::test_support::json_error as http;

    #[tokio::test]
    async fn describe_reads_the_input_and_names_a_missing_execution() {
        let rule = mock!(aws_sdk_sfn::Client::describe_execution).then_output(|| {
            DescribeExecutionOutput::builder()
                .execution_arn(EXEC)
                .state_machine_arn(SM)
                .status(SdkStatus::Running)
                .input(r#"{"k":1}"#)
                .start_date(aws_smithy_types::DateTime::from_secs(0))
                .build()
                .expect("output")
        });
        let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&rule]);
        let v = describe_execution(&client, EXEC).await.expect("read");
        assert_eq!(
            v,
            ExecutionView {
                name: "gl-x".into(),
                status: ExecutionStatus::Running,
                input: Some(r#"{"k":1}"#.into()),
            }
        );
        // A typed error without metadata still reads as ExecutionDoesNotExist.
        let gone = mock!(aws_sdk_sfn::Client::describe_execution).then_error(|| {
            DescribeExecutionError::ExecutionDoesNotExist(ExecutionDoesNotExist::builder().build())
        });
        let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&gone]);
        let e = describe_execution(&client, EXEC).await.unwrap_err();
        assert!(is_missing_execution(&e), "{e}");
        assert!(!e.transient);
        let throttled = mock!(aws_sdk_sfn::Client::describe_execution)
            .then_http_response(|| http(400, "ThrottlingException"));
        let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&throttled], |c| c
            .retry_config(
                aws_sdk_sfn::config::retry::RetryConfig::standard().with_max_attempts(1)
            ));
        let e = describe_execution(&client, EXEC).await.unwrap_err();
        assert!(e.transient, "{e}");
        assert!(!is_missing_execution(&e));
    }

    #[tokio::test]
    async fn running_executions_across_pages() {
        use aws_sdk_sfn::operation::list_executions::ListExecutionsOutput;
        use aws_sdk_sfn::types::ExecutionListItem;
        let item = |name: &str| {
            ExecutionListItem::builder()
                .execution_arn(format!("{EXEC}-{name}"))
                .state_machine_arn(SM)
                .name(name)
                .status(SdkStatus::Running)
                .start_date(aws_smithy_types::DateTime::from_secs(0))
                .build()
                .expect("item")
        };
        let first = mock!(aws_sdk_sfn::Client::list_executions)
            .match_requests(|r| {
                r.next_token().is_none() && r.status_filter() == Some(&SdkStatus::Running)
            })
            .then_output(move || {
                ListExecutionsOutput::builder()
                    .executions(item("a"))
                    .next_token("t")
                    .build()
                    .expect("output")
            });
        let second = mock!(aws_sdk_sfn::Client::list_executions)
            .match_requests(|r| r.next_token() == Some("t"))
            .then_output(move || {
                ListExecutionsOutput::builder()
                    .executions(item("b"))
                    .build()
                    .expect("output")
            });
        let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&first, &second]);
        let names: Vec<String> = list_running_executions(&client, SM)
            .await
            .expect("listed")
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
        let throttled = mock!(aws_sdk_sfn::Client::list_executions)
            .then_http_response(|| http(400, "ThrottlingException"));
        let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&throttled], |c| c
            .retry_config(
                aws_sdk_sfn::config::retry::RetryConfig::standard().with_max_attempts(1)
            ));
        let e = list_running_executions(&client, SM).await.unwrap_err();
        assert!(e.transient, "{e}");
        let missing = mock!(aws_sdk_sfn::Client::list_executions)
            .then_http_response(|| http(400, "StateMachineDoesNotExist"));
        let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&missing]);
        let e = list_running_executions(&client, SM).await.unwrap_err();
        assert_eq!(
            (
                e.operation,
                e.resource.as_str(),
                e.code.as_deref(),
                e.transient
            ),
            (
                "ListExecutions",
                SM,
                Some("StateMachineDoesNotExist"),
                false
            )
        );
    }

    #[tokio::test]
    async fn latest_state_output_finds_the_newest_that_parses() {
        use aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryOutput;
        use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType, StateExitedEventDetails};
        let event = |id: i64, output: &str| {
            HistoryEvent::builder()
                .id(id)
                .r#type(HistoryEventType::TaskStateExited)
                .timestamp(aws_smithy_types::DateTime::from_secs(id))
                .state_exited_event_details(
                    StateExitedEventDetails::builder()
                        .name("S")
                        .output(output)
                        .build()
                        .expect("details"),
                )
                .build()
                .expect("event")
        };
        let history = mock!(aws_sdk_sfn::Client::get_execution_history)
            .match_requests(|r| r.reverse_order() == Some(true))
            .then_output(move || {
                GetExecutionHistoryOutput::builder()
                    .events(event(1, r#"{"validation":"older"}"#))
                    .events(event(3, r#"{"other":1}"#))
                    .events(event(2, r#"{"validation":"newest"}"#))
                    .build()
                    .expect("output")
            });
        let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&history]);
        let found = latest_state_output(&client, "arn:exec", |o| {
            let v: serde_json::Value = serde_json::from_str(o).ok()?;
            v.get("validation")?.as_str().map(str::to_string)
        })
        .await
        .expect("read");
        assert_eq!(found.as_deref(), Some("newest"));
    }
}
