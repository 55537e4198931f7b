//! The one list of Lambda `errorType` names greenlight's functions answer
//! with, and which of them the state machine retries.
//!
//! Step Functions matches a failed task by its `errorType` (the `Retry` and
//! `Catch` `ErrorEquals` lists in `statemachine/pipeline.asl.json`), so these
//! names are an API: the functions and the failure classification use the
//! constants here, never a string of their own, and `scripts/check-static.py`
//! fails when a name in the state machine is not one of [`ALL`] (or a
//! `Lambda.*` / `States.*` name) or when a retried name is not in
//! [`RETRIED`].

/// An AWS call failed for a reason that may pass on its own: throttling,
/// a 5xx answer, a timeout or a dropped connection, after the SDK's own
/// retries. The state machine retries it with backoff on idempotent tasks
/// only; the failure path never reads it as "the deployment failed".
pub const AWS_TRANSIENT: &str = "AwsTransient";
/// An AWS call failed for a reason that will not pass by retrying
/// (access denied, validation, a resource in the wrong state).
pub const AWS_ERROR: &str = "AwsError";
/// The task's input is not what the state machine contract says.
pub const INVALID_INPUT: &str = "InvalidInput";
/// A deployment is already active on the group (Admit, Create): wait your turn.
pub const GROUP_BUSY: &str = "GroupBusy";
pub const DEPLOYMENT_GROUP_NOT_FOUND: &str = "DeploymentGroupNotFound";
pub const DEPLOYMENT_NOT_FOUND: &str = "DeploymentNotFound";
pub const INVALID_REVISION: &str = "InvalidRevision";
pub const DEPLOYMENT_CREATE_REJECTED: &str = "DeploymentCreateRejected";
pub const DEPLOYMENT_NOT_READY: &str = "DeploymentNotReady";
pub const NO_PROBE_PORT: &str = "NoProbePort";
pub const INVALID_PROFILE: &str = "InvalidProfile";
pub const NO_LOAD_BALANCER: &str = "NoLoadBalancer";
pub const TARGET_GROUP_NOT_FOUND: &str = "TargetGroupNotFound";
pub const CORRUPT_SNAPSHOT_TAG: &str = "CorruptSnapshotTag";
pub const INTERNAL_ERROR: &str = "InternalError";
/// A human rejected the deployment at the approval wait (SendTaskFailure
/// with this error, `greenlight abort`), or answered it without
/// `"approved": true` (the validator's `continue` action).
pub const APPROVAL_REJECTED: &str = "greenlight.ApprovalRejected";
/// deployment-group-resource could not deliver its answer to CloudFormation's
/// ResponseURL (every other failure is answered to CloudFormation as FAILED):
/// the invocation fails so that Lambda's asynchronous retries try again.
pub const CUSTOM_RESOURCE_RESPONSE_FAILED: &str = "CustomResourceResponseFailed";

/// The error of the state machine's `FailureHandlerFailed` Fail state (an
/// execution's end, not a function's `errorType`, so not in [`ALL`]): the
/// failure handler's last attempt ended without a report.
pub const FAILURE_HANDLER_FAILED: &str = "FailureHandlerFailed";

// deploy-trigger's own names (its upload rejections are
// `trigger::Rejection::error_type`). The trigger is invoked by EventBridge,
// S3 and CodePipeline, never by the state machine; the job outcomes below are
// the `errorType` of its `{"outcome":"failed"}` answers.

/// A CodePipeline `continuationToken` that deploy-trigger did not write.
pub const INVALID_CONTINUATION_TOKEN: &str = "InvalidContinuationToken";
/// CodePipeline refused the job result (PutJobSuccessResult/PutJobFailureResult).
pub const JOB_RESULT_FAILED: &str = "JobResultFailed";
/// The job's execution succeeded without deploying: a newer upload replaced it.
pub const SUPERSEDED: &str = "Superseded";
pub const EXECUTION_FAILED: &str = "ExecutionFailed";
pub const EXECUTION_TIMED_OUT: &str = "ExecutionTimedOut";
pub const EXECUTION_ABORTED: &str = "ExecutionAborted";
pub const EXECUTION_STATUS_UNKNOWN: &str = "ExecutionStatusUnknown";

/// deploy-trigger's own names (above), apart from its rejections.
pub const TRIGGER: &[&str] = &[
    INVALID_CONTINUATION_TOKEN,
    JOB_RESULT_FAILED,
    SUPERSEDED,
    EXECUTION_FAILED,
    EXECUTION_TIMED_OUT,
    EXECUTION_ABORTED,
    EXECUTION_STATUS_UNKNOWN,
];

/// Every name above: what a greenlight function may answer as `errorType`
/// (the trigger's rejections are listed by `trigger::Rejection::error_type`;
/// neither they nor [`TRIGGER`] names reach the state machine).
pub const ALL: &[&str] = &[
    AWS_TRANSIENT,
    AWS_ERROR,
    INVALID_INPUT,
    GROUP_BUSY,
    DEPLOYMENT_GROUP_NOT_FOUND,
    DEPLOYMENT_NOT_FOUND,
    INVALID_REVISION,
    DEPLOYMENT_CREATE_REJECTED,
    DEPLOYMENT_NOT_READY,
    NO_PROBE_PORT,
    INVALID_PROFILE,
    NO_LOAD_BALANCER,
    TARGET_GROUP_NOT_FOUND,
    CORRUPT_SNAPSHOT_TAG,
    INTERNAL_ERROR,
    APPROVAL_REJECTED,
    CUSTOM_RESOURCE_RESPONSE_FAILED,
    INVALID_CONTINUATION_TOKEN,
    JOB_RESULT_FAILED,
    SUPERSEDED,
    EXECUTION_FAILED,
    EXECUTION_TIMED_OUT,
    EXECUTION_ABORTED,
    EXECUTION_STATUS_UNKNOWN,
];

/// The Lambda service errors AWS recommends retrying on every Lambda task
/// (Step Functions developer guide, "Handling errors": "Handle transient
/// Lambda service exceptions").
pub const LAMBDA_SERVICE_ERRORS: &[&str] = &[
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];

/// Names of ours the state machine may retry (on the tasks that are safe to
/// run again): waiting for a busy group, and transient AWS errors.
pub const RETRIED: &[&str] = &[GROUP_BUSY, AWS_TRANSIENT];

/// True for a name the state machine treats as "greenlight could not read or
/// write AWS for now", not as a verdict on the deployment.
pub fn is_transient(error_type: &str) -> bool {
    error_type == AWS_TRANSIENT
        || LAMBDA_SERVICE_ERRORS.contains(&error_type)
        || error_type == "Sandbox.Timedout"
        || error_type == "States.Timeout"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_retried_names_are_known() {
        let mut sorted = ALL.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ALL.len(), "duplicate errorType in ALL");
        for name in RETRIED {
            assert!(ALL.contains(name), "{name} retried but not in ALL");
        }
        for name in TRIGGER {
            assert!(ALL.contains(name), "{name} in TRIGGER but not in ALL");
        }
    }

    #[test]
    fn transient_names() {
        assert!(is_transient(AWS_TRANSIENT));
        assert!(is_transient("Lambda.TooManyRequestsException"));
        assert!(is_transient("Sandbox.Timedout"));
        // A crash or out-of-memory kill (which AWS may also name a timeout
        // by) is retried where safe, but once the retries are spent it is a
        // task failure: at Ready the failure path stops the deployment while
        // blue still serves (runbook tests, `lambda_died_task`).
        assert!(!is_transient("Lambda.Unknown"));
        assert!(!is_transient(AWS_ERROR));
        assert!(!is_transient(GROUP_BUSY));
        assert!(!is_transient("States.DataLimitExceeded"));
    }
}
