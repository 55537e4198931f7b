//! Step Functions reads of the failure path: an execution's input.

use crate::AwsError;

/// DescribeExecution: the execution's status and input (JSON text; `None`
/// when Step Functions does not return it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionInput {
    pub status: String,
    pub input: Option<String>,
}

/// DescribeExecution of `execution_arn`.
pub async fn describe_execution(
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
