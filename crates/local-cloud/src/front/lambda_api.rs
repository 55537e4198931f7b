//! Lambda's function API for the hosted functions, with AWS's wire shapes.
//!
//! greenlight's five functions live in [`LambdaHost`], not in moto, so the
//! front server answers every Lambda call under `/{api-version}/functions`
//! itself:
//! - `GET /2015-03-31/functions/` (ListFunctions) → `{"Functions": [..],
//!   "NextMarker"?}`: exactly the hosted functions, in name order; `MaxItems`
//!   (1–10000, default 50) and `Marker` (the `NextMarker` of the previous
//!   page) page them; `FunctionVersion=ALL` lists the same (only `$LATEST`
//!   exists); with `MasterRegion` (Lambda@Edge replicas) the list is empty.
//! - `GET /2015-03-31/functions/{FunctionName}` (GetFunction) →
//!   `{"Configuration": FunctionConfiguration, "Code": {"RepositoryType": "S3",
//!   "Location": "local: ..."}}`: the location says the code runs in-process;
//!   it is not a URL, there is no package to download.
//! - `GET /2015-03-31/functions/{FunctionName}/configuration`
//!   (GetFunctionConfiguration) → the FunctionConfiguration.
//! - `POST /2015-03-31/functions/{FunctionName}/invocations` (Invoke) → the
//!   front server's invoke (see [`crate::front`]).
//! - anything else under `/{api-version}/functions` (CreateFunction,
//!   DeleteFunction, UpdateFunctionCode, aliases, versions, policies,
//!   concurrency, URLs, ...) → 501 `NotImplemented`, naming the operation as not
//!   emulated: never a silent empty answer from moto, which does not know the
//!   hosted functions.
//!
//! `FunctionName` is a name, `name:qualifier`, a partial ARN
//! (`account:function:name`) or an ARN, URL-encoded in the path. Only
//! `$LATEST` exists: another qualifier (in the name or `?Qualifier=`) is not
//! found. Unknown function: 404, `x-amzn-ErrorType: ResourceNotFoundException`,
//! `{"Type": "User", "Message": "Function not found: arn:..."}` as on AWS.
//!
//! The FunctionConfiguration: `FunctionName`, `FunctionArn`, `Runtime`
//! `provided.al2023`, `Handler` `bootstrap`, `Architectures` `["arm64"]` (as
//! in template.yaml's `Globals`), a placeholder `Role` in the local account,
//! `Timeout` 900 (the deadline every hosted invocation gets), `Description`
//! saying it is hosted in-process, `LastModified` (when the local cloud
//! registered it), `Version` `$LATEST`, `State` `Active`, `LastUpdateStatus`
//! `Successful`, `PackageType` `Zip`. No `Environment`: the hosted handlers get
//! their configuration as a `Config` value from the local cloud, not through
//! environment variables, so there are none to show. No `CodeSize` or
//! `CodeSha256`: there is no package.

use crate::lambda_host::{parse_function_name, LambdaHost, FUNCTION_TIMEOUT};
use hyper::Method;
use serde_json::{json, Value};

/// template.yaml's `Globals.Function.Runtime`.
pub const RUNTIME: &str = "provided.al2023";
/// template.yaml's `Globals.Function.Handler`.
pub const HANDLER: &str = "bootstrap";
/// template.yaml's `Globals.Function.Architectures`.
pub const ARCHITECTURES: &[&str] = &["arm64"];
/// The placeholder execution role's name (`arn:aws:iam::<account>:role/<this>`).
pub const ROLE_NAME: &str = "greenlight-local-cloud-in-process";
/// Each hosted function's `Description`.
pub const DESCRIPTION: &str = "Hosted in-process by greenlight's local cloud: the handler runs inside the greenlight-local process, configured by the local cloud (no deployment package, no environment variables).";
/// ListFunctions' page size when `MaxItems` is not given (AWS's default).
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// The largest `MaxItems` AWS accepts.
pub const MAX_ITEMS_LIMIT: usize = 10_000;

/// What the front server does with a Lambda request under `/…/functions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LambdaRequest {
    /// `Invoke`: the front server's invoke (AWS's invoke wire shape).
    Invoke { function: String },
    /// A call this module answers ([`answer`]).
    Call(LambdaCall),
}

/// The function API calls answered here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LambdaCall {
    ListFunctions,
    GetFunction {
        function: String,
    },
    GetFunctionConfiguration {
        function: String,
    },
    /// A Lambda operation on functions the local cloud does not emulate.
    NotEmulated {
        operation: String,
    },
}

impl LambdaCall {
    /// The Lambda API operation's name.
    pub fn operation(&self) -> &str {
        match self {
            Self::ListFunctions => "ListFunctions",
            Self::GetFunction { .. } => "GetFunction",
            Self::GetFunctionConfiguration { .. } => "GetFunctionConfiguration",
            Self::NotEmulated { operation } => operation,
        }
    }
}

/// The Lambda operations on functions (method, request URI as in the Lambda
/// API model, operation), to name the ones that are not emulated. A query in
/// the URI must be in the request's query too; the first match wins.
const FUNCTION_OPERATIONS: &[(&str, &str, &str)] = &[
    ("POST", "/2015-03-31/functions", "CreateFunction"),
    ("GET", "/2015-03-31/functions", "ListFunctions"),
    ("GET", "/2015-03-31/functions/{FunctionName}", "GetFunction"),
    (
        "DELETE",
        "/2015-03-31/functions/{FunctionName}",
        "DeleteFunction",
    ),
    (
        "GET",
        "/2015-03-31/functions/{FunctionName}/configuration",
        "GetFunctionConfiguration",
    ),
    (
        "PUT",
        "/2015-03-31/functions/{FunctionName}/configuration",
        "UpdateFunctionConfiguration",
    ),
    (
        "PUT",
        "/2015-03-31/functions/{FunctionName}/code",
        "UpdateFunctionCode",
    ),
    (
        "POST",
        "/2015-03-31/functions/{FunctionName}/invocations",
        "Invoke",
    ),
    (
        "POST",
        "/2014-11-13/functions/{FunctionName}/invoke-async",
        "InvokeAsync",
    ),
    (
        "POST",
        "/2021-11-15/functions/{FunctionName}/response-streaming-invocations",
        "InvokeWithResponseStream",
    ),
    (
        "GET",
        "/2015-03-31/functions/{FunctionName}/versions",
        "ListVersionsByFunction",
    ),
    (
        "POST",
        "/2015-03-31/functions/{FunctionName}/versions",
        "PublishVersion",
    ),
    (
        "GET",
        "/2015-03-31/functions/{FunctionName}/aliases",
        "ListAliases",
    ),
    (
        "POST",
        "/2015-03-31/functions/{FunctionName}/aliases",
        "CreateAlias",
    ),
    (
        "GET",
        "/2015-03-31/functions/{FunctionName}/aliases/{Name}",
        "GetAlias",
    ),
    (
        "PUT",
        "/2015-03-31/functions/{FunctionName}/aliases/{Name}",
        "UpdateAlias",
    ),
    (
        "DELETE",
        "/2015-03-31/functions/{FunctionName}/aliases/{Name}",
        "DeleteAlias",
    ),
    (
        "GET",
        "/2015-03-31/functions/{FunctionName}/policy",
        "GetPolicy",
    ),
    (
        "POST",
        "/2015-03-31/functions/{FunctionName}/policy",
        "AddPermission",
    ),
    (
        "DELETE",
        "/2015-03-31/functions/{FunctionName}/policy/{StatementId}",
        "RemovePermission",
    ),
    (
        "PUT",
        "/2017-10-31/functions/{FunctionName}/concurrency",
        "PutFunctionConcurrency",
    ),
    (
        "DELETE",
        "/2017-10-31/functions/{FunctionName}/concurrency",
        "DeleteFunctionConcurrency",
    ),
    (
        "GET",
        "/2019-09-30/functions/{FunctionName}/concurrency",
        "GetFunctionConcurrency",
    ),
    (
        "GET",
        "/2019-09-30/functions/{FunctionName}/provisioned-concurrency?List=ALL",
        "ListProvisionedConcurrencyConfigs",
    ),
    (
        "GET",
        "/2019-09-30/functions/{FunctionName}/provisioned-concurrency",
        "GetProvisionedConcurrencyConfig",
    ),
    (
        "PUT",
        "/2019-09-30/functions/{FunctionName}/provisioned-concurrency",
        "PutProvisionedConcurrencyConfig",
    ),
    (
        "DELETE",
        "/2019-09-30/functions/{FunctionName}/provisioned-concurrency",
        "DeleteProvisionedConcurrencyConfig",
    ),
    (
        "GET",
        "/2019-09-25/functions/{FunctionName}/event-invoke-config/list",
        "ListFunctionEventInvokeConfigs",
    ),
    (
        "GET",
        "/2019-09-25/functions/{FunctionName}/event-invoke-config",
        "GetFunctionEventInvokeConfig",
    ),
    (
        "PUT",
        "/2019-09-25/functions/{FunctionName}/event-invoke-config",
        "PutFunctionEventInvokeConfig",
    ),
    (
        "POST",
        "/2019-09-25/functions/{FunctionName}/event-invoke-config",
        "UpdateFunctionEventInvokeConfig",
    ),
    (
        "DELETE",
        "/2019-09-25/functions/{FunctionName}/event-invoke-config",
        "DeleteFunctionEventInvokeConfig",
    ),
    (
        "GET",
        "/2021-10-31/functions/{FunctionName}/urls",
        "ListFunctionUrlConfigs",
    ),
    (
        "GET",
        "/2021-10-31/functions/{FunctionName}/url",
        "GetFunctionUrlConfig",
    ),
    (
        "POST",
        "/2021-10-31/functions/{FunctionName}/url",
        "CreateFunctionUrlConfig",
    ),
    (
        "PUT",
        "/2021-10-31/functions/{FunctionName}/url",
        "UpdateFunctionUrlConfig",
    ),
    (
        "DELETE",
        "/2021-10-31/functions/{FunctionName}/url",
        "DeleteFunctionUrlConfig",
    ),
    (
        "GET",
        "/2020-06-30/functions/{FunctionName}/code-signing-config",
        "GetFunctionCodeSigningConfig",
    ),
    (
        "PUT",
        "/2020-06-30/functions/{FunctionName}/code-signing-config",
        "PutFunctionCodeSigningConfig",
    ),
    (
        "DELETE",
        "/2020-06-30/functions/{FunctionName}/code-signing-config",
        "DeleteFunctionCodeSigningConfig",
    ),
    (
        "GET",
        "/2021-07-20/functions/{FunctionName}/runtime-management-config",
        "GetRuntimeManagementConfig",
    ),
    (
        "PUT",
        "/2021-07-20/functions/{FunctionName}/runtime-management-config",
        "PutRuntimeManagementConfig",
    ),
    (
        "GET",
        "/2024-08-31/functions/{FunctionName}/recursion-config",
        "GetFunctionRecursionConfig",
    ),
    (
        "PUT",
        "/2024-08-31/functions/{FunctionName}/recursion-config",
        "PutFunctionRecursionConfig",
    ),
    (
        "GET",
        "/2025-11-30/functions/{FunctionName}/function-scaling-config",
        "GetFunctionScalingConfig",
    ),
    (
        "PUT",
        "/2025-11-30/functions/{FunctionName}/function-scaling-config",
        "PutFunctionScalingConfig",
    ),
    (
        "GET",
        "/2025-12-01/functions/{FunctionName}/durable-executions",
        "ListDurableExecutionsByFunction",
    ),
];

/// The Lambda request for a path under `/{YYYY-MM-DD}/functions` (signed for
/// `lambda`); `None` for any other Lambda path (event source mappings,
/// layers, tags, account settings: moto's).
pub fn lambda_request(method: &Method, path: &str, query: Option<&str>) -> Option<LambdaRequest> {
    let segments = path_segments(path);
    let [version, "functions", rest @ ..] = segments.as_slice() else {
        return None;
    };
    if !is_api_version(version) {
        return None;
    }
    let name = || {
        rest.first()
            .and_then(|s| decode(s))
            .filter(|n| !n.is_empty())
    };
    let known = match (method.as_str(), *version, rest) {
        ("GET", "2015-03-31", []) => Some(LambdaRequest::Call(LambdaCall::ListFunctions)),
        ("POST", "2015-03-31", [_, "invocations"]) => {
            name().map(|function| LambdaRequest::Invoke { function })
        }
        ("GET", "2015-03-31", [_]) => {
            name().map(|function| LambdaRequest::Call(LambdaCall::GetFunction { function }))
        }
        ("GET", "2015-03-31", [_, "configuration"]) => name()
            .map(|function| LambdaRequest::Call(LambdaCall::GetFunctionConfiguration { function })),
        _ => None,
    };
    Some(known.unwrap_or_else(|| {
        LambdaRequest::Call(LambdaCall::NotEmulated {
            operation: operation_name(method, path, query),
        })
    }))
}

/// The Lambda API operation of a request under `/…/functions`
/// ([`FUNCTION_OPERATIONS`]), or `"<METHOD> <path>"` when none matches.
pub fn operation_name(method: &Method, path: &str, query: Option<&str>) -> String {
    let segments = path_segments(path);
    let params = query_params(query);
    FUNCTION_OPERATIONS
        .iter()
        .find(|(m, uri, _)| {
            if *m != method.as_str() {
                return false;
            }
            let (template, required) = uri.split_once('?').unwrap_or((uri, ""));
            let template = path_segments(template);
            let path_matches = template.len() == segments.len()
                && template.iter().zip(&segments).all(|(t, s)| {
                    if t.starts_with('{') {
                        !s.is_empty()
                    } else {
                        t == s
                    }
                });
            let query_matches = required.is_empty()
                || required.split('&').all(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    params.iter().any(|(pk, pv)| pk == k && pv == v)
                });
            path_matches && query_matches
        })
        .map(|(_, _, op)| op.to_string())
        .unwrap_or_else(|| format!("{method} {path}"))
}

/// The answer to a [`LambdaCall`]: a JSON body (200) or a Lambda service error.
#[derive(Debug, Clone, PartialEq)]
pub enum LambdaAnswer {
    Ok(Value),
    Error {
        status: u16,
        code: &'static str,
        message: String,
    },
}

/// Answers a call from the hosted functions (`query`: the request's query).
pub fn answer(host: &LambdaHost, call: &LambdaCall, query: Option<&str>) -> LambdaAnswer {
    let params = query_params(query);
    let param = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    match call {
        LambdaCall::ListFunctions => {
            let max_items = match parse_max_items(param("MaxItems")) {
                Ok(m) => m,
                Err(message) => return invalid_parameter(message),
            };
            if let Some(version) = param("FunctionVersion") {
                if version != "ALL" {
                    return invalid_parameter(format!(
                        "1 validation error detected: Value '{version}' at 'functionVersion' failed to satisfy constraint: Member must satisfy enum value set: [ALL]"
                    ));
                }
            }
            // Lambda@Edge replicas in another region: there are none here.
            let names = if param("MasterRegion").is_some() {
                Vec::new()
            } else {
                host.function_names()
            };
            let (page, next_marker) = page(&names, param("Marker"), max_items);
            let functions: Vec<Value> = page
                .iter()
                .map(|name| configuration_of(host, name))
                .collect();
            LambdaAnswer::Ok(list_functions_body(functions, next_marker))
        }
        LambdaCall::GetFunction { function } => match hosted_name(host, function, param) {
            Ok(name) => LambdaAnswer::Ok(json!({
                "Configuration": configuration_of(host, &name),
                "Code": code_location(&name),
            })),
            Err(not_found) => not_found,
        },
        LambdaCall::GetFunctionConfiguration { function } => {
            match hosted_name(host, function, param) {
                Ok(name) => LambdaAnswer::Ok(configuration_of(host, &name)),
                Err(not_found) => not_found,
            }
        }
        LambdaCall::NotEmulated { operation } => LambdaAnswer::Error {
            status: 501,
            code: "NotImplemented",
            message: not_emulated_message(operation),
        },
    }
}

/// The message of a call that is not emulated.
pub fn not_emulated_message(operation: &str) -> String {
    format!(
        "{operation} is not emulated by greenlight's local cloud: its Lambda functions are hosted in-process, and only ListFunctions, GetFunction, GetFunctionConfiguration and Invoke are served"
    )
}

/// The hosted function a `FunctionName` (and `?Qualifier=`) addresses, or
/// AWS's 404.
fn hosted_name<'a>(
    host: &LambdaHost,
    function: &str,
    param: impl Fn(&str) -> Option<&'a str>,
) -> Result<String, LambdaAnswer> {
    let qualifier = function_qualifier(function).or_else(|| param("Qualifier"));
    let arn = match parse_function_name(function) {
        Some(name) => host.function_arn(name),
        None => function.to_string(),
    };
    match (host.resolve(function), qualifier) {
        (Some(name), None | Some("$LATEST")) => Ok(name),
        (_, qualifier) => Err(LambdaAnswer::Error {
            status: 404,
            code: "ResourceNotFoundException",
            message: match qualifier {
                Some(q) if !arn.ends_with(&format!(":{q}")) => {
                    format!("Function not found: {arn}:{q}")
                }
                _ => format!("Function not found: {arn}"),
            },
        }),
    }
}

fn configuration_of(host: &LambdaHost, name: &str) -> Value {
    function_configuration(
        name,
        &host.function_arn(name),
        host.account_id(),
        host.registered_at_ms(name).unwrap_or(0),
    )
}

/// A hosted function's FunctionConfiguration (see the module docs).
pub fn function_configuration(
    name: &str,
    arn: &str,
    account_id: &str,
    last_modified_ms: i64,
) -> Value {
    json!({
        "FunctionName": name,
        "FunctionArn": arn,
        "Runtime": RUNTIME,
        "Role": format!("arn:aws:iam::{account_id}:role/{ROLE_NAME}"),
        "Handler": HANDLER,
        "Description": DESCRIPTION,
        "Timeout": FUNCTION_TIMEOUT.as_secs(),
        "LastModified": lambda_timestamp(last_modified_ms),
        "Version": "$LATEST",
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": ARCHITECTURES,
    })
}

/// GetFunction's `Code`: where the code is. Not a URL: the handler runs in
/// the local cloud's process and there is no package to download.
pub fn code_location(name: &str) -> Value {
    json!({
        "RepositoryType": "S3",
        "Location": format!(
            "local: {name} runs in-process in greenlight's local cloud; there is no deployment package to download"
        ),
    })
}

/// ListFunctions' body.
pub fn list_functions_body(functions: Vec<Value>, next_marker: Option<String>) -> Value {
    let mut body = json!({ "Functions": functions });
    if let Some(marker) = next_marker {
        body["NextMarker"] = Value::String(marker);
    }
    body
}

/// One page of `names` (sorted): those after `marker` (a previous page's last
/// name), at most `max_items` (default [`DEFAULT_PAGE_SIZE`]); the next marker
/// when more follow.
pub fn page<'a>(
    names: &'a [String],
    marker: Option<&str>,
    max_items: Option<usize>,
) -> (&'a [String], Option<String>) {
    let start = marker
        .map(|m| names.partition_point(|n| n.as_str() <= m))
        .unwrap_or(0);
    let size = max_items.unwrap_or(DEFAULT_PAGE_SIZE).max(1);
    let end = start.saturating_add(size).min(names.len());
    let page = &names[start..end];
    let next = (end < names.len()).then(|| page.last().cloned()).flatten();
    (page, next)
}

/// `MaxItems`: absent, or an integer in 1..=10000 (else AWS's validation
/// message).
pub fn parse_max_items(value: Option<&str>) -> Result<Option<usize>, String> {
    let Some(value) = value else {
        return Ok(None);
    };
    match value.parse::<i64>() {
        Ok(n) if n < 1 => Err(format!(
            "1 validation error detected: Value '{value}' at 'maxItems' failed to satisfy constraint: Member must have value greater than or equal to 1"
        )),
        Ok(n) if n > MAX_ITEMS_LIMIT as i64 => Err(format!(
            "1 validation error detected: Value '{value}' at 'maxItems' failed to satisfy constraint: Member must have value less than or equal to {MAX_ITEMS_LIMIT}"
        )),
        Ok(n) => Ok(usize::try_from(n).ok()),
        Err(_) => Err(format!(
            "Value '{value}' at 'maxItems' is not a valid integer"
        )),
    }
}

/// The qualifier inside a `FunctionName` (`name:q`, `account:function:name:q`,
/// `arn:…:function:name:q`).
pub fn function_qualifier(function_name_or_arn: &str) -> Option<&str> {
    let parts: Vec<&str> = function_name_or_arn.split(':').collect();
    match parts.as_slice() {
        [_, q] | [_, "function", _, q] | ["arn", _, "lambda", _, _, "function", _, q] => Some(q),
        _ => None,
    }
}

/// Lambda's `LastModified` format: `2024-05-01T12:00:00.000+0000`.
pub fn lambda_timestamp(unix_ms: i64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+0000"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000+0000".to_string())
}

fn invalid_parameter(message: String) -> LambdaAnswer {
    LambdaAnswer::Error {
        status: 400,
        code: "InvalidParameterValueException",
        message,
    }
}

/// A Lambda API version path segment: `YYYY-MM-DD`.
fn is_api_version(segment: &str) -> bool {
    segment.len() == 10
        && segment.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            _ => c.is_ascii_digit(),
        })
}

/// The path's segments without the leading and a trailing `/`.
fn path_segments(path: &str) -> Vec<&str> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    trimmed.split('/').collect()
}

fn decode(segment: &str) -> Option<String> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

fn query_params(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lambda_host::{
        BoxFuture, FnFunction, DEFAULT_ACCOUNT_ID, DEPLOYMENT_WATCHER, DEPLOY_TRIGGER,
        FAILURE_HANDLER, HEALTH_CHECK_TUNER, TRAFFIC_VALIDATOR,
    };
    use std::sync::Arc;

    const FIVE: [&str; 5] = [
        DEPLOY_TRIGGER,
        HEALTH_CHECK_TUNER,
        TRAFFIC_VALIDATOR,
        DEPLOYMENT_WATCHER,
        FAILURE_HANDLER,
    ];

    fn host() -> Arc<LambdaHost> {
        let host = LambdaHost::empty(DEFAULT_ACCOUNT_ID, "us-east-1");
        for name in FIVE {
            host.register(
                name,
                Arc::new(FnFunction(|payload: Value, _| {
                    Box::pin(async move { Ok(payload) }) as BoxFuture<'static, _>
                })),
            );
        }
        host
    }

    fn call(method: Method, path: &str, query: Option<&str>) -> Option<LambdaRequest> {
        lambda_request(&method, path, query)
    }

    fn ok(answer: LambdaAnswer) -> Value {
        match answer {
            LambdaAnswer::Ok(v) => v,
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    fn names(body: &Value) -> Vec<String> {
        body["Functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["FunctionName"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn paths_become_calls() {
        for path in ["/2015-03-31/functions/", "/2015-03-31/functions"] {
            assert_eq!(
                call(Method::GET, path, Some("MaxItems=2")),
                Some(LambdaRequest::Call(LambdaCall::ListFunctions))
            );
        }
        let arn =
            "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Agreenlight-deploy-trigger";
        assert_eq!(
            call(Method::GET, &format!("/2015-03-31/functions/{arn}"), None),
            Some(LambdaRequest::Call(LambdaCall::GetFunction {
                function:
                    "arn:aws:lambda:us-east-1:123456789012:function:greenlight-deploy-trigger"
                        .into()
            }))
        );
        assert_eq!(
            call(Method::GET, "/2015-03-31/functions/f/configuration", None),
            Some(LambdaRequest::Call(LambdaCall::GetFunctionConfiguration {
                function: "f".into()
            }))
        );
        assert_eq!(
            call(Method::POST, "/2015-03-31/functions/f/invocations", None),
            Some(LambdaRequest::Invoke {
                function: "f".into()
            })
        );
        // Not under /{version}/functions: not ours.
        for path in [
            "/2015-03-31/event-source-mappings/",
            "/2018-10-31/layers",
            "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af",
            "/2016-08-19/account-settings/",
            "/functions/f",
            "/latest/functions/f",
        ] {
            assert_eq!(call(Method::GET, path, None), None, "{path}");
        }
    }

    #[test]
    fn other_function_calls_are_named_and_not_emulated() {
        let not_emulated =
            |method: Method, path: &str, query: Option<&str>| match call(method, path, query) {
                Some(LambdaRequest::Call(LambdaCall::NotEmulated { operation })) => operation,
                other => panic!("{path}: {other:?}"),
            };
        for (method, path, query, op) in [
            (
                Method::POST,
                "/2015-03-31/functions",
                None,
                "CreateFunction",
            ),
            (
                Method::POST,
                "/2015-03-31/functions/",
                None,
                "CreateFunction",
            ),
            (
                Method::DELETE,
                "/2015-03-31/functions/f",
                None,
                "DeleteFunction",
            ),
            (
                Method::PUT,
                "/2015-03-31/functions/f/code",
                None,
                "UpdateFunctionCode",
            ),
            (
                Method::PUT,
                "/2015-03-31/functions/f/configuration",
                None,
                "UpdateFunctionConfiguration",
            ),
            (
                Method::GET,
                "/2015-03-31/functions/f/versions",
                None,
                "ListVersionsByFunction",
            ),
            (
                Method::GET,
                "/2015-03-31/functions/f/aliases/live",
                None,
                "GetAlias",
            ),
            (
                Method::DELETE,
                "/2015-03-31/functions/f/policy/s1",
                None,
                "RemovePermission",
            ),
            (
                Method::POST,
                "/2014-11-13/functions/f/invoke-async/",
                None,
                "InvokeAsync",
            ),
            (
                Method::GET,
                "/2019-09-30/functions/f/concurrency",
                None,
                "GetFunctionConcurrency",
            ),
            (
                Method::GET,
                "/2019-09-30/functions/f/provisioned-concurrency",
                Some("List=ALL"),
                "ListProvisionedConcurrencyConfigs",
            ),
            (
                Method::GET,
                "/2019-09-30/functions/f/provisioned-concurrency",
                Some("Qualifier=live"),
                "GetProvisionedConcurrencyConfig",
            ),
            (
                Method::GET,
                "/2021-10-31/functions/f/url",
                None,
                "GetFunctionUrlConfig",
            ),
            // Malformed invocations and unknown paths are named by method and path.
            (
                Method::POST,
                "/2015-03-31/functions//invocations",
                None,
                "POST /2015-03-31/functions//invocations",
            ),
            (
                Method::POST,
                "/2015-03-31/functions/a/b/invocations",
                None,
                "POST /2015-03-31/functions/a/b/invocations",
            ),
            (
                Method::GET,
                "/2030-01-01/functions/f/future",
                None,
                "GET /2030-01-01/functions/f/future",
            ),
        ] {
            assert_eq!(not_emulated(method, path, query), op, "{path}");
        }
        let answer = answer(
            &host(),
            &LambdaCall::NotEmulated {
                operation: "CreateFunction".into(),
            },
            None,
        );
        let LambdaAnswer::Error {
            status,
            code,
            message,
        } = answer
        else {
            panic!("{answer:?}")
        };
        assert_eq!((status, code), (501, "NotImplemented"));
        assert!(
            message.starts_with("CreateFunction is not emulated by greenlight's local cloud"),
            "{message}"
        );
    }

    #[test]
    fn list_functions_lists_exactly_the_hosted_functions() {
        let host = host();
        let body = ok(answer(&host, &LambdaCall::ListFunctions, None));
        let mut expected: Vec<String> = FIVE.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(names(&body), expected);
        assert!(body.get("NextMarker").is_none());
        for f in body["Functions"].as_array().unwrap() {
            let name = f["FunctionName"].as_str().unwrap();
            assert_eq!(
                f["FunctionArn"],
                format!("arn:aws:lambda:us-east-1:123456789012:function:{name}")
            );
            assert!(f.get("Environment").is_none());
        }
        // FunctionVersion=ALL: the same (only $LATEST exists); MasterRegion: no replicas.
        let all = ok(answer(
            &host,
            &LambdaCall::ListFunctions,
            Some("FunctionVersion=ALL"),
        ));
        assert_eq!(names(&all), expected);
        let edge = ok(answer(
            &host,
            &LambdaCall::ListFunctions,
            Some("MasterRegion=us-east-1&FunctionVersion=ALL"),
        ));
        assert_eq!(names(&edge), Vec::<String>::new());
        assert!(matches!(
            answer(&host, &LambdaCall::ListFunctions, Some("FunctionVersion=1")),
            LambdaAnswer::Error {
                status: 400,
                code: "InvalidParameterValueException",
                ..
            }
        ));
    }

    #[test]
    fn list_functions_pages_with_max_items_and_marker() {
        let host = host();
        let mut seen = Vec::new();
        let mut query = "MaxItems=2".to_string();
        let mut pages = 0;
        loop {
            let body = ok(answer(&host, &LambdaCall::ListFunctions, Some(&query)));
            pages += 1;
            let page = names(&body);
            assert!(page.len() <= 2);
            seen.extend(page);
            match body.get("NextMarker").and_then(Value::as_str) {
                Some(marker) => {
                    query = form_urlencoded::Serializer::new(String::new())
                        .append_pair("MaxItems", "2")
                        .append_pair("Marker", marker)
                        .finish()
                }
                None => break,
            }
        }
        assert_eq!(pages, 3);
        let mut expected: Vec<String> = FIVE.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(seen, expected);
        for bad in ["0", "-1", "10001", "two"] {
            assert!(
                matches!(
                    answer(
                        &host,
                        &LambdaCall::ListFunctions,
                        Some(&format!("MaxItems={bad}"))
                    ),
                    LambdaAnswer::Error {
                        status: 400,
                        code: "InvalidParameterValueException",
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn pages_are_pure() {
        let names: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        assert_eq!(page(&names, None, None), (&names[..], None));
        assert_eq!(page(&names, None, Some(5)), (&names[..], None));
        assert_eq!(
            page(&names, None, Some(2)),
            (&names[0..2], Some("b".into()))
        );
        assert_eq!(
            page(&names, Some("b"), Some(2)),
            (&names[2..4], Some("d".into()))
        );
        assert_eq!(page(&names, Some("d"), Some(2)), (&names[4..5], None));
        assert_eq!(page(&names, Some("e"), Some(2)), (&names[5..5], None));
        assert_eq!(page(&names, Some("zz"), None), (&names[5..5], None));
        assert_eq!(page(&[], None, None), (&[][..], None));
        assert_eq!(parse_max_items(None), Ok(None));
        assert_eq!(parse_max_items(Some("1")), Ok(Some(1)));
        assert_eq!(parse_max_items(Some("10000")), Ok(Some(10_000)));
        assert!(parse_max_items(Some("0"))
            .unwrap_err()
            .contains("greater than or equal to 1"));
    }

    #[test]
    fn the_configuration_has_aws_shape() {
        let c = function_configuration(
            "greenlight-deploy-trigger",
            "arn:aws:lambda:us-east-1:123456789012:function:greenlight-deploy-trigger",
            "123456789012",
            1_714_564_800_123,
        );
        assert_eq!(
            c,
            json!({
                "FunctionName": "greenlight-deploy-trigger",
                "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:greenlight-deploy-trigger",
                "Runtime": "provided.al2023",
                "Role": "arn:aws:iam::123456789012:role/greenlight-local-cloud-in-process",
                "Handler": "bootstrap",
                "Description": DESCRIPTION,
                "Timeout": 900,
                "LastModified": "2024-05-01T12:00:00.123+0000",
                "Version": "$LATEST",
                "State": "Active",
                "LastUpdateStatus": "Successful",
                "PackageType": "Zip",
                "Architectures": ["arm64"],
            })
        );
        assert!(DESCRIPTION.contains("in-process by greenlight's local cloud"));
        assert!(DESCRIPTION.len() <= 256, "Lambda's Description limit");
        assert_eq!(lambda_timestamp(0), "1970-01-01T00:00:00.000+0000");
    }

    #[test]
    fn runtime_handler_and_architectures_are_template_yamls() {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let template: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(root.join("template.yaml")).unwrap())
                .unwrap();
        let globals = &template["Globals"]["Function"];
        assert_eq!(globals["Runtime"].as_str(), Some(RUNTIME));
        assert_eq!(globals["Handler"].as_str(), Some(HANDLER));
        let archs: Vec<&str> = globals["Architectures"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(archs, ARCHITECTURES);
    }

    #[test]
    fn get_function_by_name_arn_and_partial_arn() {
        let host = host();
        for function in [
            "greenlight-traffic-validator",
            "greenlight-traffic-validator:$LATEST",
            "123456789012:function:greenlight-traffic-validator",
            "arn:aws:lambda:us-east-1:123456789012:function:greenlight-traffic-validator",
        ] {
            let body = ok(answer(
                &host,
                &LambdaCall::GetFunction {
                    function: function.into(),
                },
                None,
            ));
            assert_eq!(
                body["Configuration"]["FunctionArn"],
                "arn:aws:lambda:us-east-1:123456789012:function:greenlight-traffic-validator",
                "{function}"
            );
            assert_eq!(body["Code"]["RepositoryType"], "S3");
            let location = body["Code"]["Location"].as_str().unwrap();
            assert!(location.starts_with("local: "), "{location}");
            assert!(!location.contains("://"), "{location}");
            let config = ok(answer(
                &host,
                &LambdaCall::GetFunctionConfiguration {
                    function: function.into(),
                },
                Some("Qualifier=%24LATEST"),
            ));
            assert_eq!(config, body["Configuration"]);
        }
    }

    #[test]
    fn unknown_functions_and_versions_are_not_found() {
        let host = host();
        let not_found = |function: &str, query: Option<&str>| match answer(
            &host,
            &LambdaCall::GetFunction {
                function: function.into(),
            },
            query,
        ) {
            LambdaAnswer::Error {
                status: 404,
                code: "ResourceNotFoundException",
                message,
            } => message,
            other => panic!("{function}: {other:?}"),
        };
        assert_eq!(
            not_found("nope", None),
            "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope"
        );
        assert_eq!(
            not_found("greenlight-deploy-trigger", Some("Qualifier=live")),
            "Function not found: arn:aws:lambda:us-east-1:123456789012:function:greenlight-deploy-trigger:live"
        );
        assert_eq!(
            not_found("greenlight-deploy-trigger:3", None),
            "Function not found: arn:aws:lambda:us-east-1:123456789012:function:greenlight-deploy-trigger:3"
        );
        assert!(matches!(
            answer(
                &host,
                &LambdaCall::GetFunctionConfiguration {
                    function: "arn:aws:lambda:us-east-1:123456789012:function:nope".into()
                },
                None
            ),
            LambdaAnswer::Error { status: 404, .. }
        ));
    }

    #[test]
    fn qualifiers_are_read_from_every_name_form() {
        assert_eq!(function_qualifier("f"), None);
        assert_eq!(function_qualifier("f:live"), Some("live"));
        assert_eq!(function_qualifier("1:function:f"), None);
        assert_eq!(function_qualifier("1:function:f:3"), Some("3"));
        assert_eq!(
            function_qualifier("arn:aws:lambda:us-east-1:1:function:f"),
            None
        );
        assert_eq!(
            function_qualifier("arn:aws:lambda:us-east-1:1:function:f:$LATEST"),
            Some("$LATEST")
        );
    }
}
