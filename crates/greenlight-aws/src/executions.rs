//! Step Functions executions: StartExecution (idempotent by name) and
//! DescribeExecution, mapped to `greenlight_core::trigger` types.

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
        .map_err(|e| AwsError::from_sdk("DescribeExecution", execution_arn, &e))?;
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
    Ok(ExecutionView { name, status })
}

/// DescribeExecution as the failure path reads it: the execution's status and
/// input (JSON text; `None` when Step Functions does not return it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionInput {
    pub status: String,
    pub input: Option<String>,
}

/// DescribeExecution of `execution_arn`, with its input (the failure path
/// reads a dead execution's PipelineState from it).
pub async fn describe_execution_input(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<ExecutionInput, AwsError> {
    let out = sfn
        .describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("DescribeExecution", execution_arn, &e))?;
    Ok(ExecutionInput {
        status: out.status().as_str().to_string(),
        input: out.input().map(str::to_string),
    })
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
}
