//! The one error type of the effect layer: which operation on which
//! resource failed, the AWS error code, and whether it may pass on its own.
//!
//! "Transient" follows the AWS SDK's own retry classification
//! (`aws-runtime` `retries::classifiers::THROTTLING_ERRORS` and
//! `TRANSIENT_ERRORS`, and smithy's rule that timeouts, dispatch failures,
//! unreadable responses and HTTP 5xx are retryable): an error the SDK would
//! have retried, still failing after its attempts, is transient. Every
//! other error is permanent.

use aws_sdk_codedeploy::config::http::HttpResponse;
use aws_sdk_codedeploy::error::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use greenlight_core::errors;

/// Throttling error codes, as the AWS SDK for Rust classifies them
/// (`aws-runtime` 1.x `THROTTLING_ERRORS`), plus the transient codes
/// (`TRANSIENT_ERRORS`) and the 5xx codes AWS services answer with.
pub const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
];

/// An AWS call that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} on {resource} failed{}: {message}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default(), if *transient { " [transient: retrying later may succeed]" } else { "" })]
pub struct AwsError {
    /// The API operation, e.g. `GetDeployment`.
    pub operation: &'static str,
    /// What it was called on (deployment id, ARN, name).
    pub resource: String,
    /// The service's error code, when the service answered one.
    pub code: Option<String>,
    /// The service's message, or the transport error chain.
    pub message: String,
    /// Throttling, 5xx, timeout or connection failure.
    pub transient: bool,
}

impl AwsError {
    /// Classifies an SDK error (any service: every SDK crate shares the
    /// smithy `SdkError` and `HttpResponse`).
    pub fn from_sdk<E>(
        operation: &'static str,
        resource: impl Into<String>,
        err: &SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let code = err.code().map(str::to_string);
        let status = err.raw_response().map(|r| r.status().as_u16());
        let transient = match err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
            SdkError::ResponseError(_) => true,
            SdkError::ConstructionFailure(_) => false,
            _ => {
                code.as_deref()
                    .is_some_and(|c| TRANSIENT_CODES.contains(&c))
                    || status.is_some_and(|s| s >= 500 || s == 429)
            }
        };
        let message = match (err.as_service_error(), err.message()) {
            (Some(_), Some(m)) => m.to_string(),
            _ => DisplayErrorContext(err).to_string(),
        };
        Self {
            operation,
            resource: resource.into(),
            code,
            message,
            transient,
        }
    }

    /// A permanent error that did not come from the SDK (an answer greenlight
    /// cannot interpret).
    pub fn unexpected(
        operation: &'static str,
        resource: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            operation,
            resource: resource.into(),
            code: None,
            message: message.into(),
            transient: false,
        }
    }

    /// True when the service answered this error code.
    pub fn has_code(&self, codes: &[&str]) -> bool {
        self.code.as_deref().is_some_and(|c| codes.contains(&c))
    }

    /// The Lambda `errorType` for this error: [`errors::AWS_TRANSIENT`] or
    /// [`errors::AWS_ERROR`].
    pub fn error_type(&self) -> &'static str {
        if self.transient {
            errors::AWS_TRANSIENT
        } else {
            errors::AWS_ERROR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codedeploy::operation::get_deployment::GetDeploymentError;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(code: &str, status: u16) -> SdkError<GetDeploymentError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message("m").build();
        let status = status.try_into().expect("valid status");
        let response = HttpResponse::new(status, SdkBody::empty());
        SdkError::service_error(GetDeploymentError::generic(meta), response)
    }

    #[test]
    fn throttling_and_5xx_are_transient() {
        for (code, status) in [
            ("ThrottlingException", 400),
            ("Throttling", 400),
            ("RequestLimitExceeded", 503),
            ("SomethingNew", 500),
            ("SomethingNew", 503),
        ] {
            let e = AwsError::from_sdk("GetDeployment", "d-1", &service_error(code, status));
            assert!(e.transient, "{code} {status}");
            assert_eq!(e.error_type(), errors::AWS_TRANSIENT);
            assert_eq!(e.code.as_deref(), Some(code));
        }
    }

    #[test]
    fn client_errors_are_permanent() {
        for code in [
            "AccessDeniedException",
            "DeploymentDoesNotExistException",
            "ValidationException",
        ] {
            let e = AwsError::from_sdk("GetDeployment", "d-1", &service_error(code, 400));
            assert!(!e.transient, "{code}");
            assert_eq!(e.error_type(), errors::AWS_ERROR);
            assert!(e.to_string().contains("GetDeployment on d-1 failed"));
            assert!(e.to_string().contains(code));
        }
    }

    #[test]
    fn timeouts_are_transient() {
        let err: SdkError<GetDeploymentError, HttpResponse> =
            SdkError::timeout_error("read timed out");
        let e = AwsError::from_sdk("GetDeployment", "d-1", &err);
        assert!(e.transient);
        assert_eq!(e.code, None);
    }
}
