//! The failure reports' markers in S3 (the `ReportBucket`, where uploaders
//! cannot write): a conditional put and a read. Dedupe decisions are
//! `greenlight_core::runbook::marker_decision`.

use crate::AwsError;
use aws_sdk_s3::primitives::ByteStream;
use greenlight_core::runbook::ReportMarker;

/// The precondition of a marker write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition<'a> {
    /// Unconditional.
    None,
    /// `If-None-Match: *`: only when no object exists.
    Absent,
    /// `If-Match: <etag>`: only over exactly that object.
    Matches(&'a str),
}

/// S3 answers these when a conditional write loses (S3 user guide,
/// "Conditional writes": 412 Precondition Failed, 409 ConditionalRequestConflict).
pub const LOST_RACE_CODES: &[&str] = &["PreconditionFailed", "ConditionalRequestConflict"];

/// PutObject of the marker as JSON.
pub async fn put_marker(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    marker: &ReportMarker,
    condition: Condition<'_>,
) -> Result<(), AwsError> {
    let location = format!("s3://{bucket}/{key}");
    let body = serde_json::to_vec(marker).map_err(|e| {
        AwsError::unexpected(
            "PutObject",
            &location,
            format!("marker does not serialize: {e}"),
        )
    })?;
    let request = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/json")
        .body(ByteStream::from(body));
    let request = match condition {
        Condition::None => request,
        Condition::Absent => request.if_none_match("*"),
        Condition::Matches(etag) => request.if_match(etag),
    };
    request
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::from_sdk("PutObject", &location, &e))
}

/// A stored marker: its ETag and raw body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMarker {
    pub etag: Option<String>,
    pub body: Vec<u8>,
}

/// GetObject of the marker; `None` when it does not exist.
pub async fn get_marker(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<StoredMarker>, AwsError> {
    let location = format!("s3://{bucket}/{key}");
    match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => {
            let etag = out.e_tag().map(str::to_string);
            let bytes = out.body.collect().await.map_err(|e| AwsError {
                operation: "GetObject",
                resource: location.clone(),
                code: None,
                message: format!("reading the body: {e}"),
                transient: true,
            })?;
            Ok(Some(StoredMarker {
                etag,
                body: bytes.into_bytes().to_vec(),
            }))
        }
        Err(e) => {
            let err = AwsError::from_sdk("GetObject", &location, &e);
            if err.has_code(&["NoSuchKey", "NotFound"])
                || e.as_service_error().is_some_and(|s| s.is_no_such_key())
            {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }
}
