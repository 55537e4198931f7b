//! Revision bundles in the artifact bucket, as the `greenlight` CLI writes
//! them: PutObject of a bundle (an upload the trigger turns into an
//! execution) and CopyObject of a stored revision to a new key (a rollback
//! through the same pipeline). Both answer the stored object's version id and
//! ETag, from which the trigger's execution name is derived
//! (`greenlight_core::trigger::revision_identity`).

use aws_sdk_s3::primitives::ByteStream;
use greenlight_core::trigger::UploadedObject;

use crate::AwsError;

/// PutObject `body` as `bucket`/`key`; the stored object as the trigger's
/// event will describe it (version id, ETag, size).
pub async fn put_bundle(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
) -> Result<UploadedObject, AwsError> {
    let size = i64::try_from(body.len()).ok();
    let out = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/zip")
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("PutObject", format!("s3://{bucket}/{key}"), &e))?;
    Ok(UploadedObject {
        bucket: bucket.to_string(),
        key: key.to_string(),
        size,
        version: out.version_id().map(str::to_string),
        etag: out.e_tag().map(str::to_string),
        sequencer: None,
    })
}

/// What a key segment keeps unencoded in `x-amz-copy-source`: RFC 3986's
/// unreserved characters.
const KEY_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// CopyObject `bucket`/`from_key` (version `from_version`, when given) to
/// `bucket`/`to_key`: a new upload of a stored revision.
pub async fn copy_bundle(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    from_key: &str,
    from_version: Option<&str>,
    to_key: &str,
) -> Result<UploadedObject, AwsError> {
    // CopySource is `bucket/key[?versionId=...]`, the key URL-encoded
    // (S3 API reference, CopyObject `x-amz-copy-source`).
    let encoded: String = from_key
        .split('/')
        .map(|segment| percent_encoding::utf8_percent_encode(segment, KEY_SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/");
    let mut source = format!("{bucket}/{encoded}");
    if let Some(v) = from_version.filter(|v| !v.is_empty() && *v != "null") {
        source.push_str(&format!("?versionId={v}"));
    }
    let out = s3
        .copy_object()
        .bucket(bucket)
        .key(to_key)
        .copy_source(source)
        .send()
        .await
        .map_err(|e| {
            AwsError::from_sdk(
                "CopyObject",
                format!("s3://{bucket}/{from_key} -> s3://{bucket}/{to_key}"),
                &e,
            )
        })?;
    Ok(UploadedObject {
        bucket: bucket.to_string(),
        key: to_key.to_string(),
        size: None,
        version: out.version_id().map(str::to_string),
        etag: out
            .copy_object_result()
            .and_then(|r| r.e_tag())
            .map(str::to_string),
        sequencer: None,
    })
}

/// GetObjectTagging of the uploaded version (the version the event named,
/// when the bucket is versioned): the object's tags as (key, value) pairs.
/// deploy-trigger reads the upload's requests from them
/// (`greenlight_core::options`).
pub async fn object_tags(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Result<Vec<(String, String)>, AwsError> {
    let out = s3
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_string))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("GetObjectTagging", format!("s3://{bucket}/{key}"), &e))?;
    Ok(out
        .tag_set()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::operation::copy_object::CopyObjectOutput;
    use aws_sdk_s3::operation::put_object::PutObjectOutput;
    use aws_sdk_s3::types::CopyObjectResult;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    #[tokio::test]
    async fn put_bundle_answers_version_and_etag() {
        let put = mock!(aws_sdk_s3::Client::put_object)
            .match_requests(|r| {
                r.bucket() == Some("bkt")
                    && r.key() == Some("artifacts/shop/1-a.zip")
                    && r.content_type() == Some("application/zip")
            })
            .then_output(|| {
                PutObjectOutput::builder()
                    .version_id("v1")
                    .e_tag("\"e1\"")
                    .build()
            });
        let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&put]);
        let obj = put_bundle(&s3, "bkt", "artifacts/shop/1-a.zip", b"PK".to_vec())
            .await
            .expect("put");
        assert_eq!(obj.version.as_deref(), Some("v1"));
        assert_eq!(obj.clean_etag(), Some("e1"));
        assert_eq!(obj.size, Some(2));
        assert_eq!(put.num_calls(), 1);
    }

    #[tokio::test]
    async fn put_bundle_error_names_the_object() {
        let put = mock!(aws_sdk_s3::Client::put_object).then_http_response(|| {
            aws_sdk_s3::config::http::HttpResponse::new(
                403.try_into().expect("status"),
                aws_smithy_types::body::SdkBody::from(
                    "<Error><Code>AccessDenied</Code><Message>no</Message></Error>",
                ),
            )
        });
        let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&put]);
        let err = put_bundle(&s3, "bkt", "k.zip", vec![1])
            .await
            .expect_err("denied");
        assert_eq!(err.operation, "PutObject");
        assert_eq!(err.resource, "s3://bkt/k.zip");
        assert_eq!(err.code.as_deref(), Some("AccessDenied"));
        assert!(!err.transient);
    }

    #[tokio::test]
    async fn copy_bundle_names_the_source_version_and_encodes_the_key() {
        let copy = mock!(aws_sdk_s3::Client::copy_object)
            .match_requests(|r| {
                r.bucket() == Some("bkt")
                    && r.key() == Some("artifacts/shop/rollback-1/a b.zip")
                    && r.copy_source() == Some("bkt/artifacts/shop/a%20b.zip?versionId=v0")
            })
            .then_output(|| {
                CopyObjectOutput::builder()
                    .version_id("v2")
                    .copy_object_result(CopyObjectResult::builder().e_tag("\"e2\"").build())
                    .build()
            });
        let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&copy]);
        let obj = copy_bundle(
            &s3,
            "bkt",
            "artifacts/shop/a b.zip",
            Some("v0"),
            "artifacts/shop/rollback-1/a b.zip",
        )
        .await
        .expect("copy");
        assert_eq!(obj.version.as_deref(), Some("v2"));
        assert_eq!(obj.clean_etag(), Some("e2"));
        assert_eq!(copy.num_calls(), 1);
    }
}
