//! Each service's own throttling and 5xx errors, in its own wire shape.
//!
//! Sources:
//! - JSON protocols (awsJson1_0/1_1: CodeDeploy, CodePipeline, Step Functions,
//!   EventBridge, SQS's JSON protocol): "Common Errors" of the AWS API
//!   references: `ThrottlingException` (400, "The request was denied due to
//!   request throttling"), `InternalFailure` (500), `ServiceUnavailable`
//!   (503); the code in the body's `__type` and in `x-amzn-ErrorType`. The
//!   CodeDeploy and Step Functions models name `ThrottlingException` too.
//! - Query protocol (ELBv2, Auto Scaling, SNS, CloudWatch, IAM, STS): an XML
//!   `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.
//!   ELBv2: "you get the `ThrottlingException` error code and a `Rate
//!   exceeded` error message" (ELB user guide, elb-api-throttling.html).
//!   Auto Scaling and the other query services: `Throttling` / "Rate
//!   exceeded" (400), as they answer on the wire. SNS: its API reference's
//!   `ThrottledException`, code `Throttled`, HTTP 429.
//! - EC2 (ec2Query): `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`;
//!   `RequestLimitExceeded` ("Request limit exceeded.", EC2 API reference,
//!   error codes; HTTP 503 as EC2 sends it); 5xx `InternalError` (500),
//!   `Unavailable` (503).
//! - S3 (restXml): `<Error><Code/><Message/><RequestId/><HostId/></Error>`;
//!   `SlowDown` 503 "Please reduce your request rate.", `InternalError` 500,
//!   `ServiceUnavailable` 503 (S3 API reference, error responses).
//! - Lambda (restJson1): `TooManyRequestsException` 429 with
//!   `Reason: CallerRateLimitExceeded` and `Retry-After`, `ServiceException`
//!   500 (Lambda API reference, Invoke errors); code in `x-amzn-ErrorType`.
//!
//! Every code here is in the SDK's throttling list (aws-runtime
//! `retries/classifiers.rs` `THROTTLING_ERRORS`) or a 5xx, so the SDK retries them.

/// The wire protocol of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    AwsJson,
    Query,
    Ec2,
    S3,
    RestJson,
}

impl Protocol {
    /// `has_target`: the request carries `X-Amz-Target` (a JSON protocol).
    pub fn of(service: &str, has_target: bool) -> Self {
        match service {
            "ec2" => Self::Ec2,
            "s3" => Self::S3,
            "lambda" => Self::RestJson,
            _ if has_target => Self::AwsJson,
            _ => Self::Query,
        }
    }
}

/// An error answer: status, headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorAnswer {
    pub status: u16,
    pub code: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The throttling error of `service`.
pub fn throttle(service: &str, protocol: Protocol, request_id: &str) -> ErrorAnswer {
    match protocol {
        Protocol::AwsJson => json_error(400, "ThrottlingException", "Rate exceeded", request_id),
        Protocol::Query => match service {
            "elasticloadbalancing" => query_error(
                400,
                "Sender",
                "ThrottlingException",
                "Rate exceeded",
                request_id,
            ),
            "sns" => query_error(429, "Sender", "Throttled", "Rate exceeded", request_id),
            _ => query_error(400, "Sender", "Throttling", "Rate exceeded", request_id),
        },
        Protocol::Ec2 => ec2_error(
            503,
            "RequestLimitExceeded",
            "Request limit exceeded.",
            request_id,
        ),
        Protocol::S3 => s3_error(
            503,
            "SlowDown",
            "Please reduce your request rate.",
            request_id,
        ),
        Protocol::RestJson => {
            let mut answer = rest_json_error(
                429,
                "TooManyRequestsException",
                serde_json::json!({
                    "Type": "User",
                    "message": "Rate Exceeded.",
                    "Reason": "CallerRateLimitExceeded",
                    "retryAfterSeconds": "1",
                }),
                request_id,
            );
            answer.headers.push(("retry-after", "1".into()));
            answer
        }
    }
}

/// A 500 or 503 of `service`.
pub fn server_error(status: u16, protocol: Protocol, request_id: &str) -> ErrorAnswer {
    let unavailable = status == 503;
    match protocol {
        Protocol::AwsJson | Protocol::Query => {
            let (code, message) = if unavailable {
                (
                    "ServiceUnavailable",
                    "The request has failed due to a temporary failure of the server.",
                )
            } else {
                ("InternalFailure", "The request processing has failed because of an unknown error, exception or failure.")
            };
            if protocol == Protocol::AwsJson {
                json_error(status, code, message, request_id)
            } else {
                query_error(status, "Receiver", code, message, request_id)
            }
        }
        Protocol::Ec2 => {
            if unavailable {
                ec2_error(
                    503,
                    "Unavailable",
                    "The server is overloaded and can't handle the request.",
                    request_id,
                )
            } else {
                ec2_error(
                    500,
                    "InternalError",
                    "An internal error has occurred.",
                    request_id,
                )
            }
        }
        Protocol::S3 => {
            if unavailable {
                s3_error(
                    503,
                    "ServiceUnavailable",
                    "Service is unable to handle request.",
                    request_id,
                )
            } else {
                s3_error(
                    500,
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                    request_id,
                )
            }
        }
        Protocol::RestJson => rest_json_error(
            status,
            "ServiceException",
            serde_json::json!({"Type": "Service", "message": "The Lambda service encountered an internal error."}),
            request_id,
        ),
    }
}

fn json_error(status: u16, code: &str, message: &str, request_id: &str) -> ErrorAnswer {
    ErrorAnswer {
        status,
        code: code.into(),
        headers: vec![
            ("content-type", "application/x-amz-json-1.1".into()),
            ("x-amzn-errortype", code.into()),
            ("x-amzn-requestid", request_id.into()),
        ],
        body: serde_json::json!({"__type": code, "message": message}).to_string(),
    }
}

fn rest_json_error(
    status: u16,
    code: &str,
    body: serde_json::Value,
    request_id: &str,
) -> ErrorAnswer {
    ErrorAnswer {
        status,
        code: code.into(),
        headers: vec![
            ("content-type", "application/json".into()),
            ("x-amzn-errortype", code.into()),
            ("x-amzn-requestid", request_id.into()),
        ],
        body: body.to_string(),
    }
}

fn query_error(
    status: u16,
    kind: &str,
    code: &str,
    message: &str,
    request_id: &str,
) -> ErrorAnswer {
    ErrorAnswer {
        status,
        code: code.into(),
        headers: vec![
            ("content-type", "text/xml".into()),
            ("x-amzn-requestid", request_id.into()),
        ],
        body: format!(
            "<ErrorResponse xmlns=\"http://webservices.amazon.com/AWSFault/2005-15-09\"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
            xml_escape(message)
        ),
    }
}

fn ec2_error(status: u16, code: &str, message: &str, request_id: &str) -> ErrorAnswer {
    ErrorAnswer {
        status,
        code: code.into(),
        headers: vec![("content-type", "text/xml;charset=UTF-8".into())],
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>",
            xml_escape(message)
        ),
    }
}

fn s3_error(status: u16, code: &str, message: &str, request_id: &str) -> ErrorAnswer {
    ErrorAnswer {
        status,
        code: code.into(),
        headers: vec![
            ("content-type", "application/xml".into()),
            ("x-amz-request-id", request_id.into()),
        ],
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message><RequestId>{request_id}</RequestId><HostId>local</HostId></Error>",
            xml_escape(message)
        ),
    }
}
