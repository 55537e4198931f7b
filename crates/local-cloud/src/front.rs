//! The front server: the one endpoint every SDK client of the local cloud
//! talks to (handlers, emulators, tests, and moto's own Step Functions, whose
//! `MOTO_PORT` points here).
//!
//! Routing (service = SigV4 credential scope of the request):
//! - `lambda`, `POST /2015-03-31/functions/{name-or-arn}/invocations` →
//!   [`LambdaHost`] (AWS's invoke wire shape: function errors answer 200 with
//!   `X-Amz-Function-Error: Unhandled`; unknown function 404
//!   `ResourceNotFoundException`; a body that is not JSON 400
//!   `InvalidRequestContentException`; `X-Amz-Invocation-Type: Event` 202,
//!   `DryRun` 204).
//! - `lambda`, anything else under `/{api-version}/functions` →
//!   [`lambda_api`]: ListFunctions, GetFunction and GetFunctionConfiguration
//!   answer the hosted functions with AWS's wire shapes; every other function
//!   operation (CreateFunction, DeleteFunction, aliases, ...) is a 501
//!   `NotImplemented` naming it as not emulated. Other Lambda APIs (event
//!   source mappings, layers, tags, ...) go to moto.
//! - `codedeploy` (`X-Amz-Target: CodeDeploy_20141006.<Op>`) → [`CodeDeploy`].
//! - `codepipeline` `PutJobSuccessResult`, `PutJobFailureResult`,
//!   `GetJobDetails`, `AcknowledgeJob` → [`CodePipelineJobs`]; the rest → moto.
//! - `elasticloadbalancing` `DescribeTargetHealth` → the emulated
//!   [`LoadBalancer`] (real health state); `RegisterTargets`,
//!   `DeregisterTargets`, `ModifyTargetGroup`, `ModifyTargetGroupAttributes`,
//!   `CreateTargetGroup`, `DeleteTargetGroup`, listener and rule writes
//!   (`ModifyListener`, `ModifyRule`, ...) → moto, then
//!   `LoadBalancer::refresh_all` before answering.
//! - `ec2` `DescribeInstances` → moto, answer rewritten to the fleet's loopback
//!   addresses ([`ec2`]): never a 10.x.
//! - `monitoring` (CloudWatch) in Smithy RPC v2 CBOR (what aws-sdk-cloudwatch
//!   sends) → translated to JSON 1.0 for moto and back ([`cloudwatch`]).
//! - `autoscaling` SetDesiredCapacity, UpdateAutoScalingGroup, ResumeProcesses,
//!   DescribeAutoScalingGroups, DeleteAutoScalingGroup → [`autoscaling`]:
//!   suspended Launch/Terminate hold capacity changes as AWS does (moto
//!   launches regardless), then moto.
//! - `/_greenlight/...` → the local cloud's own JSON endpoints (below).
//! - everything else → moto, verbatim: method, path, query, headers (the
//!   `Host` header included, so moto builds SQS queue URLs and S3 locations
//!   that point back here), body.
//!
//! S3: requests are forwarded as they come. An S3 client whose endpoint is
//! `http://127.0.0.1:<port>` uses path-style addressing by itself (the S3
//! endpoint rules never put a bucket in front of an IP address); with a host
//! name endpoint (`localhost`) set `force_path_style(true)`, because
//! `bucket.localhost` does not resolve here. moto treats `Host: 127.0.0.1:<p>`
//! and `localhost:<p>` as path-style.
//!
//! Own endpoints (JSON):
//! - `GET /_greenlight/health` → `{"status":"ok"}`
//! - `GET /_greenlight/lambda/functions` → `{"functions":[{"name","arn"}]}`
//! - `POST /_greenlight/codepipeline/jobs` with [`StartJob`] → `{"jobId"}` (201)
//! - `GET /_greenlight/codepipeline/jobs/{id}` → [`JobView`] (404 if unknown)
//! - `GET /_greenlight/faults` → `{"faults": [FaultView], "rateLimits": "aws"|"off",
//!   "throttledByRateLimits": {"service:Operation": n}}`
//! - `POST /_greenlight/faults` with a [`FaultSpec`] → `{"fault": FaultView}` (201;
//!   400 naming what is wrong; 404 for an instance fault on an unknown instance)
//! - `DELETE /_greenlight/faults` → `{"cleared": n}`; `DELETE /_greenlight/faults/{id}`
//! - `PUT /_greenlight/faults/rate-limits` with `{"mode": "off"|"aws"}`
//!
//! Faults and rate limits ([`crate::faults`]) are applied to every request
//! with a SigV4 service before it is routed (moto's services too), except the
//! local cloud's own calls ([`crate::faults::INTERNAL_ACCESS_KEY`]).

pub mod autoscaling;
pub mod cloudwatch;
pub mod data_limit;
pub mod ec2;
pub mod inject;
pub mod lambda_api;
pub mod page;
pub mod sigv4;

use crate::codedeploy::CodeDeploy;
use crate::codepipeline::{CodePipelineJobs, JobView, StartJob};
use crate::faults::{FaultKind, FaultSpec, Faults, Verdict};
use crate::fleet::Fleet;
use crate::lambda_host::{new_request_id, LambdaHost};
use crate::load_balancer::LoadBalancer;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The front server's response body.
pub type Body = BoxBody<Bytes, BoxError>;

/// Everything the front server routes to.
pub struct Services {
    /// moto itself, e.g. `http://127.0.0.1:5000` ([`crate::moto::MotoServer::endpoint`]).
    pub moto_endpoint: String,
    pub lambda: Arc<LambdaHost>,
    pub codedeploy: Arc<CodeDeploy>,
    pub lb: Arc<LoadBalancer>,
    pub fleet: Arc<Fleet>,
    pub pipeline: Arc<CodePipelineJobs>,
    /// Faults and rate limits applied before routing (see [`crate::faults`]).
    pub faults: Arc<Faults>,
    /// Shared with the relay: objects written by CopyObject, so their S3
    /// event says `reason: CopyObject` ([`copy_object_target`]).
    pub s3_events: Arc<crate::relay::S3EventState>,
    /// Desired capacities held while Launch/Terminate is suspended ([`autoscaling`]).
    pub held_capacity: Arc<autoscaling::HeldCapacity>,
    /// The live page's sources (`/_greenlight/`, [`page`]); None serves no page.
    pub page: Option<Arc<page::PageSources>>,
}

/// ELBv2 writes after which the emulated load balancer re-reads moto.
const ELB_WRITE_ACTIONS: &[&str] = &[
    "RegisterTargets",
    "DeregisterTargets",
    "ModifyTargetGroup",
    "ModifyTargetGroupAttributes",
    "CreateTargetGroup",
    "DeleteTargetGroup",
    "CreateListener",
    "ModifyListener",
    "DeleteListener",
    "CreateRule",
    "ModifyRule",
    "DeleteRule",
    "DeleteLoadBalancer",
];

/// CodePipeline operations the local cloud answers itself.
const CODEPIPELINE_JOB_OPERATIONS: &[&str] = &[
    "PutJobSuccessResult",
    "PutJobFailureResult",
    "GetJobDetails",
    "AcknowledgeJob",
];

/// A bound front server. Binding first gives the port that moto's
/// `MOTO_PORT` needs before the services exist; [`Front::start`] then serves.
/// Dropping it stops accepting connections.
pub struct Front {
    listener: Option<TcpListener>,
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Front {
    /// Binds (e.g. `127.0.0.1:0` for a free port) without serving yet.
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        Ok(Self {
            listener: Some(listener),
            addr,
            task: None,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port>`: the endpoint URL for every SDK client.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts serving (once; later calls do nothing).
    pub fn start(&mut self, services: Arc<Services>) {
        if let Some(listener) = self.listener.take() {
            self.task = Some(tokio::spawn(accept_loop(services, listener)));
        }
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// An SDK configuration for the local cloud: every client built from it talks
/// to `endpoint` (the front server, or moto itself), region us-east-1, static
/// dummy credentials (nothing reads the environment or a profile).
///
/// It signs with [`crate::faults::INTERNAL_ACCESS_KEY`]: the local cloud's own
/// machinery, exempt from faults and rate limits. Other callers:
/// [`sdk_config_as`].
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    sdk_config_as(endpoint, crate::faults::INTERNAL_ACCESS_KEY).await
}

/// [`sdk_config`] signing with another access key id (faults and rate limits
/// apply to every key but the internal one).
pub async fn sdk_config_as(endpoint: &str, access_key_id: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            access_key_id,
            "local",
            None,
            None,
            "greenlight-local-cloud",
        ))
        .load()
        .await
}

/// Binds and serves until the runtime ends; returns the bound address.
pub async fn serve(services: Arc<Services>, bind: SocketAddr) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(accept_loop(services, listener));
    Ok(addr)
}

async fn accept_loop(services: Arc<Services>, listener: TcpListener) {
    let proxy = Arc::new(Proxy::new(services.moto_endpoint.clone()));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "front server: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let services = services.clone();
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let services = services.clone();
                let proxy = proxy.clone();
                async move {
                    match route(&services, &proxy, req).await {
                        Some(response) => Ok(response),
                        // A `hang` fault: no answer, the connection is dropped.
                        None => Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "hang fault: connection dropped",
                        )),
                    }
                }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "front server: connection ended");
            }
        });
    }
}

/// Which handler a request goes to (decided from its head and body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Internal,
    LambdaInvoke { function: String },
    LambdaApi { call: lambda_api::LambdaCall },
    CodeDeploy { operation: String },
    CodePipelineJob { operation: String },
    DescribeTargetHealth,
    ElbWrite { action: String },
    DescribeInstances,
    CloudWatchCbor { operation: String },
    AutoScaling { action: String },
    Moto,
}

/// The routing decision for one request (pure; see the module docs).
pub fn classify(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Route {
    if path.starts_with("/_greenlight/") || path == "/_greenlight" {
        return Route::Internal;
    }
    if let Some(operation) = cloudwatch::cbor_operation(path, headers) {
        return Route::CloudWatchCbor {
            operation: operation.to_string(),
        };
    }
    let service = sigv4::signing_service(headers, query);
    match service.as_deref() {
        Some("lambda") => match lambda_api::lambda_request(method, path, query) {
            Some(lambda_api::LambdaRequest::Invoke { function }) => {
                Route::LambdaInvoke { function }
            }
            Some(lambda_api::LambdaRequest::Call(call)) => Route::LambdaApi { call },
            None => Route::Moto,
        },
        Some("codedeploy") => match sigv4::target_operation(headers, "CodeDeploy_20141006") {
            Some(op) => Route::CodeDeploy {
                operation: op.to_string(),
            },
            None => Route::Moto,
        },
        Some("codepipeline") => match sigv4::target_operation(headers, "CodePipeline_20150709") {
            Some(op) if CODEPIPELINE_JOB_OPERATIONS.contains(&op) => Route::CodePipelineJob {
                operation: op.to_string(),
            },
            _ => Route::Moto,
        },
        Some("elasticloadbalancing") => {
            let params = sigv4::query_params(query, body, headers);
            match sigv4::action(&params) {
                Some("DescribeTargetHealth") => Route::DescribeTargetHealth,
                Some(a) if ELB_WRITE_ACTIONS.contains(&a) => Route::ElbWrite {
                    action: a.to_string(),
                },
                _ => Route::Moto,
            }
        }
        Some("ec2") => {
            let params = sigv4::query_params(query, body, headers);
            match sigv4::action(&params) {
                Some("DescribeInstances") => Route::DescribeInstances,
                _ => Route::Moto,
            }
        }
        Some("autoscaling") => {
            let params = sigv4::query_params(query, body, headers);
            match sigv4::action(&params) {
                Some(a) if autoscaling::ACTIONS.contains(&a) => Route::AutoScaling {
                    action: a.to_string(),
                },
                _ => Route::Moto,
            }
        }
        _ => Route::Moto,
    }
}

/// Answers one request; None drops the connection without an answer (`hang`).
async fn route(
    services: &Services,
    proxy: &Proxy,
    req: Request<Incoming>,
) -> Option<Response<Body>> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return Some(text_response(
                StatusCode::BAD_REQUEST,
                &format!("cannot read request body: {e}"),
            ))
        }
    };
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let route = classify(
        &parts.method,
        &path,
        query.as_deref(),
        &parts.headers,
        &body,
    );
    tracing::debug!(method = %parts.method, %path, ?route, "front");
    if let (Route::Moto, Some(page)) = (&route, &services.page) {
        if sigv4::signing_service(&parts.headers, query.as_deref()).as_deref() == Some("sns") {
            page.record_publish(query.as_deref(), &body, &parts.headers);
        }
    }
    let lambda_operation = match &route {
        Route::LambdaInvoke { .. } => Some("Invoke"),
        Route::LambdaApi { call } => Some(call.operation()),
        _ => None,
    };
    let call = match route {
        Route::Internal => None,
        _ => inject::api_call(
            &parts.method,
            &path,
            query.as_deref(),
            &parts.headers,
            &body,
            lambda_operation,
        ),
    };
    if let Some(call) = &call {
        let request_id = new_request_id();
        let answer = match services.faults.decide(call) {
            Verdict::Pass => None,
            Verdict::Throttle { fault } => {
                tracing::info!(service = %call.service, operation = %call.operation, fault = ?fault, "throttled");
                Some(inject::throttle_answer(call, &parts.headers, &request_id))
            }
            Verdict::Error5xx { status } => {
                tracing::info!(service = %call.service, operation = %call.operation, status, "error5xx fault");
                Some(inject::server_error_answer(
                    call,
                    status,
                    &parts.headers,
                    &request_id,
                ))
            }
            Verdict::Hang { duration } => {
                tracing::info!(service = %call.service, operation = %call.operation, ?duration, "hang fault");
                tokio::time::sleep(duration).await;
                return None;
            }
        };
        if let Some(answer) = answer {
            let mut response = bytes_response(answer.status, Bytes::from(answer.body));
            for (name, value) in &answer.headers {
                set_header(&mut response, *name, value);
            }
            return Some(response);
        }
    }
    let caller = call.and_then(|c| c.access_key);
    Some(match route {
        Route::Internal => internal(services, &parts.method, &path, &body).await,
        Route::LambdaInvoke { function } => {
            return lambda_invoke(
                services,
                &function,
                &parts.headers,
                &body,
                caller.as_deref(),
            )
            .await
        }
        Route::LambdaApi { call } => {
            let request_id = new_request_id();
            match lambda_api::answer(&services.lambda, &call, query.as_deref()) {
                lambda_api::LambdaAnswer::Ok(value) => {
                    let mut r = json_response(200, &value);
                    set_header(&mut r, "x-amzn-requestid", &request_id);
                    r
                }
                lambda_api::LambdaAnswer::Error {
                    status,
                    code,
                    message,
                } => lambda_service_error(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    code,
                    &message,
                    &request_id,
                ),
            }
        }
        Route::CodeDeploy { operation } => {
            let (status, out) = services.codedeploy.handle(&operation, &body).await;
            json_bytes_response(status, out, "application/x-amz-json-1.1")
        }
        Route::CodePipelineJob { operation } => {
            let (status, out) = services.pipeline.handle(&operation, &body).await;
            json_bytes_response(status, out, "application/x-amz-json-1.1")
        }
        Route::DescribeTargetHealth => {
            let params = sigv4::query_params(query.as_deref(), &body, &parts.headers);
            let (status, xml) = services.lb.describe_target_health_response(&params);
            let mut response = bytes_response(status, Bytes::from(xml));
            set_header(&mut response, CONTENT_TYPE, "text/xml");
            response
        }
        Route::ElbWrite { action } => {
            let response = proxy.forward(parts, body).await;
            if response.status().is_success() {
                if let Err(e) = services.lb.refresh_all().await {
                    tracing::warn!(%action, error = %e, "load balancer refresh after an ELBv2 write failed");
                }
            }
            response
        }
        Route::DescribeInstances => {
            let response = proxy.forward(parts, body).await;
            rewrite_instances_answer(services, response).await
        }
        Route::CloudWatchCbor { operation } => {
            cloudwatch_cbor(proxy, parts, &body, &operation).await
        }
        Route::AutoScaling { action } => {
            let params = sigv4::query_params(query.as_deref(), &body, &parts.headers);
            autoscaling::handle(&services.held_capacity, proxy, parts, body, params, &action).await
        }
        Route::Moto => {
            // Recorded before moto answers: moto queues the S3 event while it
            // handles the request, and the relay may read it before the
            // answer is back here.
            let copy = copy_object_target(&parts.method, &path, query.as_deref(), &parts.headers);
            if let Some((bucket, key)) = &copy {
                services.s3_events.record_copy(bucket, key);
            }
            let response = proxy.forward(parts, body).await;
            if let Some((bucket, key)) = &copy {
                if !response.status().is_success() {
                    services.s3_events.forget_copy(bucket, key);
                }
            }
            response
        }
    })
}

/// The bucket and key a path-style S3 CopyObject request writes: `PUT
/// /{bucket}/{key}` with an `x-amz-copy-source` header (S3 API reference,
/// "CopyObject"); UploadPartCopy (the same header on a part upload, with
/// `partNumber` and `uploadId`) writes no object. The key is the path's
/// percent-decoded rest.
pub fn copy_object_target(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Option<(String, String)> {
    if method != Method::PUT || !headers.contains_key("x-amz-copy-source") {
        return None;
    }
    let part_upload = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .any(|(name, _)| name == "uploadId" || name == "partNumber");
    if part_upload {
        return None;
    }
    let (bucket, key) = path.strip_prefix('/')?.split_once('/')?;
    if bucket.is_empty() || key.is_empty() {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .ok()
    };
    Some((decode(bucket)?, decode(key)?))
}

/// A CBOR CloudWatch request answered by moto's JSON 1.0 CloudWatch ([`cloudwatch`]).
async fn cloudwatch_cbor(
    proxy: &Proxy,
    mut parts: hyper::http::request::Parts,
    body: &[u8],
    operation: &str,
) -> Response<Body> {
    let cbor_answer = |status: u16, value: &Value| {
        let mut r = bytes_response(status, Bytes::from(cloudwatch::json_to_cbor(value)));
        set_header(&mut r, CONTENT_TYPE, "application/cbor");
        set_header(&mut r, "smithy-protocol", "rpc-v2-cbor");
        r
    };
    let input = match cloudwatch::cbor_to_json(body) {
        Ok(v) => v,
        Err(e) => {
            return cbor_answer(
                400,
                &json!({"__type": "SerializationException", "message": e}),
            )
        }
    };
    parts.uri = hyper::Uri::from_static("/");
    parts.headers.remove("smithy-protocol");
    parts.headers.remove("accept");
    parts.headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    if let Ok(target) = HeaderValue::from_str(&format!("{}.{operation}", cloudwatch::SERVICE)) {
        parts.headers.insert("x-amz-target", target);
    }
    let response = proxy.forward(parts, Bytes::from(input.to_string())).await;
    let status = response.status().as_u16();
    let request_id = response
        .headers()
        .get("x-amzn-requestid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = match response.into_body().collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            return cbor_answer(
                502,
                &json!({"__type": "InternalFailure", "message": format!("moto's answer could not be read: {e}")}),
            )
        }
    };
    let value: Value = if bytes.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(
            |_| json!({"__type": "InternalFailure", "message": String::from_utf8_lossy(&bytes)}),
        )
    };
    let mut r = cbor_answer(status, &value);
    if let Some(id) = request_id {
        set_header(&mut r, "x-amzn-requestid", &id);
    }
    r
}

async fn rewrite_instances_answer(services: &Services, response: Response<Body>) -> Response<Body> {
    if !response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            return text_response(
                StatusCode::BAD_GATEWAY,
                &format!("moto answer unreadable: {e}"),
            )
        }
    };
    let xml = String::from_utf8_lossy(&bytes);
    let fleet = services.fleet.clone();
    let rewritten = ec2::rewrite_describe_instances(&xml, |id| Some(fleet.address_of(id)));
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.remove(hyper::header::TRANSFER_ENCODING);
    let len = rewritten.len();
    let mut response = Response::from_parts(parts, full(Bytes::from(rewritten)));
    set_header(&mut response, CONTENT_LENGTH, &len.to_string());
    response
}

/// Lambda `Invoke` with AWS's wire shape.
async fn lambda_invoke(
    services: &Services,
    function: &str,
    headers: &HeaderMap,
    body: &[u8],
    caller: Option<&str>,
) -> Option<Response<Body>> {
    let request_id = new_request_id();
    let Some(name) = services.lambda.resolve(function) else {
        let arn = match crate::lambda_host::parse_function_name(function) {
            Some(name) => services.lambda.function_arn(name),
            None => function.to_string(),
        };
        return Some(lambda_service_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {arn}"),
            &request_id,
        ));
    };
    let payload: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return Some(lambda_service_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    &format!("Could not parse request body into json: Could not parse payload into json: {e}"),
                    &request_id,
                ))
            }
        }
    };
    let invocation_type = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse");
    Some(match invocation_type {
        "DryRun" => {
            let mut r = bytes_response(204, Bytes::new());
            set_header(&mut r, "x-amzn-requestid", &request_id);
            r
        }
        "Event" => {
            let lambda = services.lambda.clone();
            tokio::spawn(async move {
                if let Err(d) = lambda.invoke(&name, payload).await {
                    tracing::warn!(function = %name, error_type = %d.error_type, error = %d.error_message, "asynchronous invocation failed");
                }
            });
            let mut r = bytes_response(202, Bytes::new());
            set_header(&mut r, "x-amzn-requestid", &request_id);
            r
        }
        "RequestResponse" => {
            let from_step_functions = caller == Some(data_limit::MOTO_SFN_ACCESS_KEY);
            let scheduled = from_step_functions.then(|| payload.clone());
            let result = services.lambda.invoke(&name, payload).await;
            let (body, function_error) = match result {
                Ok(v) => match scheduled {
                    Some(payload) if v.to_string().len() > data_limit::SFN_PAYLOAD_LIMIT => {
                        let cause = data_limit::cause(&name, v.to_string().len());
                        let stopped = data_limit::stop_scheduling_execution(
                            &services.moto_endpoint,
                            &name,
                            &payload,
                            &cause,
                        )
                        .await;
                        tracing::warn!(function = %name, execution = ?stopped, "task result over 256 KB: States.DataLimitExceeded");
                        (
                            json!({"errorType": "States.DataLimitExceeded", "errorMessage": cause}),
                            Some("Unhandled"),
                        )
                    }
                    _ => (v, None),
                },
                Err(d) => (
                    json!({"errorType": d.error_type, "errorMessage": d.error_message}),
                    Some("Unhandled"),
                ),
            };
            let mut r = bytes_response(200, Bytes::from(body.to_string()));
            set_header(&mut r, CONTENT_TYPE, "application/json");
            set_header(&mut r, "x-amzn-requestid", &request_id);
            set_header(&mut r, "x-amz-executed-version", "$LATEST");
            if let Some(e) = function_error {
                set_header(&mut r, "x-amz-function-error", e);
            }
            r
        }
        other => lambda_service_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            &format!("Unsupported invocation type {other}: use RequestResponse, Event or DryRun"),
            &request_id,
        ),
    })
}

/// A Lambda service (not function) error, as AWS answers it (`Type`: `User`
/// for a 4xx, `Service` for a 5xx).
fn lambda_service_error(
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: &str,
) -> Response<Body> {
    let kind = if status.is_server_error() {
        "Service"
    } else {
        "User"
    };
    let body = json!({"Type": kind, "Message": message});
    let mut r = bytes_response(status.as_u16(), Bytes::from(body.to_string()));
    set_header(&mut r, CONTENT_TYPE, "application/json");
    set_header(&mut r, "x-amzn-errortype", code);
    set_header(&mut r, "x-amzn-requestid", request_id);
    r
}

async fn internal(services: &Services, method: &Method, path: &str, body: &[u8]) -> Response<Body> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.clone(), segments.as_slice()) {
        (Method::GET, ["_greenlight", "health"]) => json_response(200, &json!({"status": "ok"})),
        (Method::GET, ["_greenlight"]) => {
            // The page fetches `state.json` relative to itself: serve it under the slash.
            let mut r = text_response(StatusCode::MOVED_PERMANENTLY, "see /_greenlight/");
            set_header(&mut r, "location", "/_greenlight/");
            r
        }
        (Method::GET, ["_greenlight", ""]) => match &services.page {
            Some(_) => {
                let mut r = text_response(StatusCode::OK, &greenlight_core::page::live_html());
                set_header(&mut r, "content-type", "text/html; charset=utf-8");
                r
            }
            None => json_response(404, &json!({"error": "this front server has no live page"})),
        },
        (Method::GET, ["_greenlight", "state.json"]) => match &services.page {
            Some(sources) => json_response(200, &page::state(services, sources).await),
            None => json_response(404, &json!({"error": "this front server has no live page"})),
        },
        (Method::GET, ["_greenlight", "lambda", "functions"]) => {
            let functions: Vec<Value> = services
                .lambda
                .function_names()
                .into_iter()
                .map(|n| json!({"name": n, "arn": services.lambda.function_arn(&n)}))
                .collect();
            json_response(200, &json!({ "functions": functions }))
        }
        (Method::POST, ["_greenlight", "codepipeline", "jobs"]) => {
            match serde_json::from_slice::<StartJob>(body) {
                Ok(start) => {
                    let job_id = services.pipeline.start_job(start);
                    json_response(201, &json!({ "jobId": job_id }))
                }
                Err(e) => json_response(
                    400,
                    &json!({"error": format!("expected {{\"bucket\", \"key\", \"userParameters\"?, \"functionName\"?}}: {e}")}),
                ),
            }
        }
        (Method::GET, ["_greenlight", "codepipeline", "jobs", id]) => {
            match services.pipeline.job_view(id) {
                Some(view) => json_response(200, &view_json(&view)),
                None => json_response(404, &json!({"error": format!("no CodePipeline job {id}")})),
            }
        }
        (Method::GET, ["_greenlight", "faults"]) => json_response(200, &faults_json(services)),
        (Method::POST, ["_greenlight", "faults"]) => add_fault(services, body).await,
        (Method::PUT, ["_greenlight", "faults", "rate-limits"]) => {
            #[derive(serde::Deserialize)]
            struct SetMode {
                mode: crate::faults::rate::RateMode,
            }
            match serde_json::from_slice::<SetMode>(body) {
                Ok(set) => {
                    services.faults.set_rate_mode(set.mode);
                    json_response(200, &faults_json(services))
                }
                Err(e) => json_response(
                    400,
                    &json!({"error": format!("expected {{\"mode\": \"off\" | \"aws\"}}: {e}")}),
                ),
            }
        }
        (Method::DELETE, ["_greenlight", "faults"]) => {
            for view in services.faults.list() {
                lift_fault(services, &view.spec);
            }
            let cleared = services.faults.clear();
            json_response(200, &json!({ "cleared": cleared }))
        }
        (Method::DELETE, ["_greenlight", "faults", id]) => match services.faults.remove(id) {
            Ok(view) => {
                lift_fault(services, &view.spec);
                json_response(200, &json!({ "removed": view }))
            }
            Err(e) => json_response(404, &json!({"error": e.to_string()})),
        },
        _ => json_response(
            404,
            &json!({"error": format!("no local-cloud endpoint {method} {path}")}),
        ),
    }
}

/// `GET /_greenlight/faults`: the faults with their counts, the rate-limit
/// mode and how many calls each rate limit throttled.
fn faults_json(services: &Services) -> Value {
    json!({
        "faults": services.faults.list(),
        "rateLimits": services.faults.rate_mode(),
        "throttledByRateLimits": services.faults.throttled_counts(),
    })
}

/// `POST /_greenlight/faults`: registers a fault; instance faults apply at once.
async fn add_fault(services: &Services, body: &[u8]) -> Response<Body> {
    let spec = match serde_json::from_slice::<FaultSpec>(body) {
        Ok(spec) => spec,
        Err(e) => {
            return json_response(
                400,
                &json!({"error": format!("expected a fault {{\"kind\", \"service\"?, \"operation\"?, \"resource\"?, \"count\"? | \"percent\"?, \"seed\"?, \"status\"?, \"hangSeconds\"?}} (see the README): {e}")}),
            )
        }
    };
    let view = match services.faults.add(spec) {
        Ok(view) => view,
        Err(e) => return json_response(400, &json!({"error": e.to_string()})),
    };
    let instance = view.spec.resource.clone().unwrap_or_default();
    let applied = match view.spec.kind {
        FaultKind::KillInstance => Some(services.fleet.kill(&instance).await),
        FaultKind::HangHealth => Some(services.fleet.set_health_hang(&instance, true)),
        _ => None,
    };
    match applied {
        Some(false) => {
            let _ = services.faults.remove(&view.id);
            json_response(
                404,
                &json!({"error": format!("no instance {instance} in the local fleet; see `greenlight-local status` or EC2 DescribeInstances")}),
            )
        }
        Some(true) => {
            services.faults.record_applied(&view.id);
            let view = services
                .faults
                .list()
                .into_iter()
                .find(|f| f.id == view.id)
                .unwrap_or(view);
            json_response(201, &json!({ "fault": view }))
        }
        None => json_response(201, &json!({ "fault": view })),
    }
}

/// Undoes what can be undone when a fault is removed (a hung health
/// endpoint answers again; a killed instance stays dead, as on EC2).
fn lift_fault(services: &Services, spec: &FaultSpec) {
    if spec.kind == FaultKind::HangHealth {
        if let Some(instance) = &spec.resource {
            services.fleet.set_health_hang(instance, false);
        }
    }
}

fn view_json(view: &JobView) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}

/// Forwards requests to moto, verbatim.
struct Proxy {
    moto: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and `Expect` (the body is already read).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
];

impl Proxy {
    fn new(moto: String) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build_http::<Full<Bytes>>();
        Self {
            moto: moto.trim_end_matches('/').to_string(),
            client,
        }
    }

    async fn forward(&self, parts: hyper::http::request::Parts, body: Bytes) -> Response<Body> {
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/");
        let uri = format!("{}{}", self.moto, path_and_query);
        let mut builder = Request::builder().method(parts.method.clone()).uri(&uri);
        if let Some(headers) = builder.headers_mut() {
            for (name, value) in parts.headers.iter() {
                if !HOP_BY_HOP.contains(&name.as_str()) && name != CONTENT_LENGTH {
                    headers.append(name.clone(), value.clone());
                }
            }
            if !body.is_empty() || parts.headers.contains_key(CONTENT_LENGTH) {
                headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
            }
        }
        let request = match builder.body(Full::new(body)) {
            Ok(r) => r,
            Err(e) => {
                return text_response(
                    StatusCode::BAD_REQUEST,
                    &format!("cannot forward request: {e}"),
                )
            }
        };
        match self.client.request(request).await {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                for name in HOP_BY_HOP {
                    parts.headers.remove(*name);
                }
                Response::from_parts(parts, body.map_err(|e| Box::new(e) as BoxError).boxed())
            }
            Err(e) => text_response(
                StatusCode::BAD_GATEWAY,
                &format!("moto at {} did not answer: {e}", self.moto),
            ),
        }
    }
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

fn bytes_response(status: u16, body: Bytes) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
}

fn json_bytes_response(status: u16, body: Vec<u8>, content_type: &str) -> Response<Body> {
    let mut response = bytes_response(status, Bytes::from(body));
    set_header(&mut response, CONTENT_TYPE, content_type);
    set_header(&mut response, "x-amzn-requestid", &new_request_id());
    response
}

fn json_response(status: u16, value: &Value) -> Response<Body> {
    let mut response = bytes_response(status, Bytes::from(value.to_string()));
    set_header(&mut response, CONTENT_TYPE, "application/json");
    response
}

fn text_response(status: StatusCode, text: &str) -> Response<Body> {
    let mut response = bytes_response(status.as_u16(), Bytes::from(text.to_string()));
    set_header(&mut response, CONTENT_TYPE, "text/plain; charset=utf-8");
    response
}

fn set_header<K>(response: &mut Response<Body>, name: K, value: &str)
where
    K: TryInto<HeaderName>,
{
    if let (Ok(name), Ok(value)) = (name.try_into(), HeaderValue::from_str(value)) {
        response.headers_mut().insert(name, value);
    }
}

#[cfg(test)]
mod tests;
