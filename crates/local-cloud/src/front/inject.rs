//! Faults and rate limits in the front server, before routing: what API call a
//! request is ([`api_call`]) and the answer a verdict gives ([`answer`]).

use super::sigv4;
use crate::faults::wire::{self, ErrorAnswer, Protocol};
use crate::faults::ApiCall;
use hyper::{HeaderMap, Method};

/// The access key id of a SigV4-signed request (`Credential=AKID/...`).
pub fn access_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let from_scope = |scope: &str| scope.split('/').next().map(str::to_string);
    if let Some(auth) = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(start) = auth.find("Credential=") {
            let rest = &auth[start + "Credential=".len()..];
            let end = rest.find([',', ' ']).unwrap_or(rest.len());
            return from_scope(&rest[..end]);
        }
    }
    let query = query?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "X-Amz-Credential")
        .and_then(|(_, v)| from_scope(&v))
}

/// The S3 operation of a REST request (path-style: `/bucket/key`), as far as
/// fault matching needs it.
pub fn s3_operation(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> String {
    let trimmed = path.trim_start_matches('/');
    let (bucket, key) = match trimmed.split_once('/') {
        Some((b, k)) if !k.is_empty() => (b, Some(k)),
        _ => (trimmed.trim_end_matches('/'), None),
    };
    let q: Vec<(String, String)> = query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let has = |name: &str| q.iter().any(|(k, _)| k == name);
    let op = match (method.as_str(), bucket.is_empty(), key.is_some()) {
        ("GET", true, _) => "ListBuckets",
        ("GET", false, false) if has("list-type") => "ListObjectsV2",
        ("GET", false, false) if has("versions") => "ListObjectVersions",
        ("GET", false, false) => "ListObjects",
        ("HEAD", false, false) => "HeadBucket",
        ("PUT", false, false) => "CreateBucket",
        ("DELETE", false, false) => "DeleteBucket",
        ("POST", false, false) if has("delete") => "DeleteObjects",
        ("GET", false, true) => "GetObject",
        ("HEAD", false, true) => "HeadObject",
        ("PUT", false, true) if has("partNumber") => "UploadPart",
        ("PUT", false, true) if headers.contains_key("x-amz-copy-source") => "CopyObject",
        ("PUT", false, true) => "PutObject",
        ("DELETE", false, true) => "DeleteObject",
        ("POST", false, true) if has("uploads") => "CreateMultipartUpload",
        ("POST", false, true) if has("uploadId") => "CompleteMultipartUpload",
        _ => "Other",
    };
    op.to_string()
}

/// The API call a request is, for fault matching and rate limits; None for
/// requests without a SigV4 service (the local cloud's own endpoints).
pub fn api_call(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    lambda_operation: Option<&str>,
) -> Option<ApiCall> {
    let service = sigv4::signing_service(headers, query)?;
    let params = sigv4::query_params(query, body, headers);
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.split_once('.'))
        .map(|(_, op)| op.to_string());
    let operation = match service.as_str() {
        "s3" => s3_operation(method, path, query, headers),
        "lambda" => lambda_operation.unwrap_or("Other").to_string(),
        _ => target
            .or_else(|| sigv4::action(&params).map(str::to_string))
            .unwrap_or_else(|| "Other".to_string()),
    };
    let decoded_path = percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned();
    let mut text = decoded_path;
    for (k, v) in &params {
        text.push(' ');
        text.push_str(k);
        text.push('=');
        text.push_str(v);
    }
    text.push(' ');
    text.push_str(&String::from_utf8_lossy(body));
    Some(ApiCall {
        service,
        operation,
        text,
        access_key: access_key(headers, query),
    })
}

/// The throttling answer for a call.
pub fn throttle_answer(call: &ApiCall, headers: &HeaderMap, request_id: &str) -> ErrorAnswer {
    let protocol = Protocol::of(&call.service, headers.contains_key("x-amz-target"));
    wire::throttle(&call.service, protocol, request_id)
}

/// The 5xx answer for a call.
pub fn server_error_answer(
    call: &ApiCall,
    status: u16,
    headers: &HeaderMap,
    request_id: &str,
) -> ErrorAnswer {
    let protocol = Protocol::of(&call.service, headers.contains_key("x-amz-target"));
    wire::server_error(status, protocol, request_id)
}
