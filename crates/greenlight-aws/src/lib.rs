//! The imperative shell pieces the functions share: start-up (tracing, SDK
//! config, environment), and AWS reads/writes mapped to `greenlight_core` types.

pub mod approval;
pub mod artifacts;
pub mod autoscaling;
pub mod cloudwatch;
pub mod codepipeline;
pub mod config;
pub mod deployment;
pub mod deployment_control;
pub mod deployment_group;
pub mod deployment_list;
pub mod error;
pub mod executions;
pub mod group_resource;
pub mod instances;
pub mod listener;
pub mod load_balancer;
pub mod log_capture;
pub mod notify;
pub mod reports;
pub mod wake;

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::time::{SystemTime, UNIX_EPOCH};

/// Targets whose TRACE (and DEBUG) events may carry raw invocation payloads,
/// capped at INFO whatever `RUST_LOG` says. `lambda_runtime` 1.5 logs every
/// event body at TRACE (`layers/api_response.rs`: "raw JSON event received
/// from Lambda", target `lambda_runtime::layers::api_response`), and a
/// CodePipeline job's body carries `artifactCredentials`. The runtime API
/// client is capped with it (it carries the same bodies).
pub const PAYLOAD_LOGGING_TARGETS: &[&str] = &["lambda_runtime", "lambda_runtime_api_client"];

/// The subscriber [`init_tracing`] installs, writing to `writer`: JSON lines,
/// level from `env_filter`, and the [`PAYLOAD_LOGGING_TARGETS`] capped at
/// INFO by a second, global filter that no `RUST_LOG` directive can widen
/// (a more specific `lambda_runtime::layers::api_response=trace` included).
pub fn subscriber<W>(
    env_filter: tracing_subscriber::EnvFilter,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt;
    let cap = PAYLOAD_LOGGING_TARGETS.iter().fold(
        tracing_subscriber::filter::Targets::new()
            .with_default(tracing_subscriber::filter::LevelFilter::TRACE),
        |targets, target| targets.with_target(*target, tracing::Level::INFO),
    );
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(env_filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .with_writer(writer)
        .finish()
        .with(cap)
}

/// JSON logs to stdout (CloudWatch), level from Lambda's log-level setting
/// (`AWS_LAMBDA_LOG_LEVEL`, set from the function's
/// `LoggingConfig.ApplicationLogLevel`), else `RUST_LOG`, else `info`
/// ([`log_filter_directives`]); payload-carrying runtime targets capped at
/// INFO ([`subscriber`]). Safe to call more than once (the local cloud hosts
/// several handlers).
pub fn init_tracing() {
    use tracing_subscriber::util::SubscriberInitExt;
    let directives = log_filter_directives(
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
        std::env::var("RUST_LOG").ok().as_deref(),
    );
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = subscriber(filter, std::io::stdout).try_init();
}

/// The filter directives [`init_tracing`] uses. Lambda's advanced logging
/// controls win (Lambda developer guide, "Log-level filtering": Lambda
/// sets `AWS_LAMBDA_LOG_LEVEL` to TRACE, DEBUG, INFO, WARN, ERROR or FATAL
/// and drops JSON lines below it anyway, so a filter that lets less through
/// only wastes work); tracing has no FATAL, so FATAL keeps ERROR. Without it,
/// `RUST_LOG`; an unknown level or neither gives `info`.
pub fn log_filter_directives(lambda_level: Option<&str>, rust_log: Option<&str>) -> String {
    let lambda = lambda_level.map(str::trim).filter(|l| !l.is_empty());
    match lambda.map(str::to_ascii_uppercase).as_deref() {
        Some("TRACE") => "trace".to_string(),
        Some("DEBUG") => "debug".to_string(),
        Some("INFO") => "info".to_string(),
        Some("WARN") => "warn".to_string(),
        Some("ERROR") | Some("FATAL") => "error".to_string(),
        Some(_) => "info".to_string(),
        None => match rust_log.map(str::trim).filter(|l| !l.is_empty()) {
            Some(directives) => directives.to_string(),
            None => "info".to_string(),
        },
    }
}

/// Shared SDK configuration, loaded once at start-up. Honours
/// `AWS_ENDPOINT_URL` (the local cloud points every client at its front server).
///
/// Timeouts and retries are explicit: the SDK's defaults set only a 3.1 s
/// connect timeout, so one hung call would hold a function until its Lambda
/// timeout (`Sandbox.Timedout`, which says nothing about which call hung). A
/// control-plane call that has not answered in [`ATTEMPT_TIMEOUT`] is retried
/// (standard mode, [`MAX_ATTEMPTS`] attempts with exponential backoff and
/// jitter, which also absorbs throttling), and gives up after
/// [`OPERATION_TIMEOUT`] as a transient [`AwsError`], well inside the
/// functions' 30-60 s Lambda timeouts.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(sdk_timeouts())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .load()
        .await
}

/// Per-attempt timeout of every AWS call greenlight makes.
pub const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Timeout of one AWS operation, retries included.
pub const OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
/// Attempts per AWS operation (the SDK's standard retry mode).
pub const MAX_ATTEMPTS: u32 = 4;

/// Attempts of a CodeDeploy call that only reads (GetDeployment,
/// GetDeploymentGroup, the deployment's target listings), still within
/// [`OPERATION_TIMEOUT`]. A throttled read is safe to repeat, and these reads
/// are the ones many deployments make at once (each status look, each event
/// wait, the gate, every upload's group check): with [`MAX_ATTEMPTS`] the
/// SDK's full-jitter backoff gives up after about 3.5 s of throttling, which
/// at 50 groups deploying at once rejected uploads and ended a gate in
/// LostSight (BENCHMARKS.md, scale). With this many, the backoff (1, 2, 4, 8,
/// 16 s caps, full jitter) spends the whole operation timeout waiting out
/// the throttling before the read is reported transient.
pub const READ_MAX_ATTEMPTS: u32 = 10;

/// The attempts a read-only call makes on a client configured for
/// `client_max_attempts`: at least [`READ_MAX_ATTEMPTS`], except that a
/// client built for a single attempt (no retries at all) stays so.
pub fn read_attempts(client_max_attempts: u32) -> u32 {
    if client_max_attempts <= 1 {
        client_max_attempts
    } else {
        client_max_attempts.max(READ_MAX_ATTEMPTS)
    }
}

/// Per-operation config override for CodeDeploy's read-only calls: the
/// client's own retry settings with [`read_attempts`] attempts (its
/// timeouts, and so [`OPERATION_TIMEOUT`], still bound the whole call). A
/// client without retry settings of its own keeps the SDK's defaults.
pub(crate) fn codedeploy_read_override(
    client: &aws_sdk_codedeploy::Client,
) -> aws_sdk_codedeploy::config::Builder {
    let read = aws_sdk_codedeploy::config::Builder::default();
    match client.config().retry_config() {
        Some(retry) => {
            let attempts = read_attempts(retry.max_attempts());
            read.retry_config(retry.clone().with_max_attempts(attempts))
        }
        None => read,
    }
}

/// The timeouts [`load_sdk_config`] applies.
pub fn sdk_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_millis(3100))
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// Prints CloudWatch embedded-metric-format documents
/// (`greenlight_core::metrics`), one JSON line each, on stdout, where
/// CloudWatch Logs extracts the metrics from the function's log group.
pub fn emit_metrics(documents: impl IntoIterator<Item = serde_json::Value>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for document in documents {
        let _ = writeln!(out, "{}", greenlight_core::metrics::emf_line(&document));
    }
}

/// Wall clock as epoch milliseconds: the one place the shells read time.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The service error code of an SDK error (`DeploymentLimitExceededException`,
/// `ExecutionAlreadyExists`, ...), if the service answered with one.
pub fn error_code<E: ProvideErrorMetadata>(err: &E) -> Option<&str> {
    err.code()
}

/// A one-line description of an SDK error for error messages: code and message.
pub fn describe_error<E: ProvideErrorMetadata + std::fmt::Display>(err: &E) -> String {
    match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => err.to_string(),
    }
}
pub use error::AwsError;

/// Test helpers shared by the modules' mock tests.
#[cfg(test)]
pub(crate) mod test_support {
    /// An AWS JSON-protocol error answer (CodeDeploy, CodePipeline, Step
    /// Functions) with `code` and HTTP `status`.
    pub fn json_error(status: u16, code: &str) -> aws_sdk_codedeploy::config::http::HttpResponse {
        aws_sdk_codedeploy::config::http::HttpResponse::new(
            status.try_into().expect("status"),
            aws_smithy_types::body::SdkBody::from(format!(
                r#"{{"__type":"{code}","message":"m"}}"#
            )),
        )
    }
}

#[cfg(test)]
mod log_level_tests {
    use super::log_filter_directives;

    #[test]
    fn lambdas_log_level_wins_over_rust_log() {
        assert_eq!(log_filter_directives(Some("DEBUG"), Some("trace")), "debug");
        assert_eq!(log_filter_directives(Some("warn"), None), "warn");
        assert_eq!(log_filter_directives(Some("TRACE"), Some("error")), "trace");
        assert_eq!(log_filter_directives(Some("INFO"), Some("debug")), "info");
    }

    #[test]
    fn fatal_keeps_errors_and_an_unknown_level_falls_back_to_info() {
        assert_eq!(log_filter_directives(Some("FATAL"), None), "error");
        assert_eq!(log_filter_directives(Some("ERROR"), None), "error");
        assert_eq!(log_filter_directives(Some("loud"), Some("debug")), "info");
    }

    #[test]
    fn without_lambdas_setting_rust_log_then_info() {
        assert_eq!(
            log_filter_directives(None, Some("greenlight=debug")),
            "greenlight=debug"
        );
        assert_eq!(log_filter_directives(Some("  "), Some("warn")), "warn");
        assert_eq!(log_filter_directives(None, None), "info");
        assert_eq!(log_filter_directives(None, Some("")), "info");
    }

    #[test]
    fn a_trace_level_still_caps_the_runtimes_payload_logging() {
        let capture = crate::log_capture::LogCapture::default();
        let filter = tracing_subscriber::EnvFilter::new(log_filter_directives(Some("TRACE"), None));
        let subscriber = super::subscriber(filter, capture.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "lambda_runtime::layers::api_response", "artifactCredentials secret");
            tracing::trace!(target: "greenlight", "own trace line");
        });
        let out = capture.text();
        assert!(out.contains("own trace line"), "{out}");
        assert!(!out.contains("artifactCredentials"), "{out}");
    }
}
