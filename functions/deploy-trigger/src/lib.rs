//! deploy-trigger: turns an upload into one greenlight Step Functions execution.
//!
//! One handler, three entry points, told apart from the raw JSON:
//!
//! * EventBridge `aws.s3` "Object Created" / "Object Deleted" events,
//! * classic S3 event notifications (`Records[]`),
//! * CodePipeline Lambda invoke jobs (`CodePipeline.job`), first invocation
//!   and re-invocations with a `continuationToken`.
//!
//! For an upload: decode the key, validate it (zip, not empty, mapped),
//! check with CodeDeploy GetDeploymentGroup that the application and group
//! exist and are gated, then StartExecution with a deterministic name.
//! ExecutionAlreadyExists is a duplicate event: success, nothing started.
//! Every decision is in [`greenlight_core::trigger`]; this file reads events
//! and AWS and acts.
//!
//! The raw event is never logged: CodePipeline jobs carry artifact credentials.

use aws_sdk_codedeploy::operation::get_deployment_group::GetDeploymentGroupError;
use aws_sdk_codepipeline::types::{ExecutionDetails, FailureDetails, FailureType};
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use greenlight_aws::config::{optional, parsed_or, required, ConfigError};
use greenlight_core::errors;
use greenlight_core::model::{EpochMillis, PipelineInput, Source};
use greenlight_core::trigger::{
    check_gated, check_object, decode_continuation_token, decode_key, encode_continuation_token,
    eventbridge_change, execution_arn, execution_name, job_decision, notification_change,
    parse_user_parameters, pipeline_input, pipeline_label, pipeline_target, revision_identity,
    revision_label, truncate_chars, Deadlines, ExecutionStatus, JobDecision, KeyEncoding,
    KeyMapping, ObjectChange, Rejection, Target, TokenError, UploadedObject,
    MAX_JOB_FAILURE_MESSAGE_LEN, MAX_JOB_SUMMARY_LEN,
};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime};

/// Default `ARTIFACT_PREFIX`.
pub const DEFAULT_ARTIFACT_PREFIX: &str = "artifacts/";

// ---------------------------------------------------------------------------
// Config and dependencies
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Config {
    /// `STATE_MACHINE_ARN`: the greenlight pipeline state machine.
    pub state_machine_arn: String,
    /// `ARTIFACT_PREFIX`, `DEFAULT_DEPLOYMENT_GROUP` and `KEY_MAPPING`.
    pub mapping: KeyMapping,
    /// `DEPLOYMENT_TIMEOUT_SECONDS` (default 3600) and
    /// `POST_REROUTE_TIMEOUT_SECONDS` (default 10800), the deployment-watcher's
    /// deadlines: a group whose Ready wait or blue termination wait cannot fit
    /// them is rejected.
    pub deadlines: Deadlines,
}

impl Config {
    /// Reads `STATE_MACHINE_ARN` (required), `ARTIFACT_PREFIX` (default
    /// `artifacts/`; set but empty = the whole bucket), `DEFAULT_DEPLOYMENT_GROUP`
    /// (required) and `KEY_MAPPING` (optional JSON list).
    pub fn from_env() -> Result<Self, ConfigError> {
        let state_machine_arn = required("STATE_MACHINE_ARN")?;
        let artifact_prefix = std::env::var("ARTIFACT_PREFIX")
            .unwrap_or_else(|_| DEFAULT_ARTIFACT_PREFIX.to_string());
        let default_group = required("DEFAULT_DEPLOYMENT_GROUP")?;
        let key_mapping = optional("KEY_MAPPING");
        let mut config = Self::new(
            &state_machine_arn,
            &artifact_prefix,
            &default_group,
            key_mapping.as_deref(),
        )?;
        config.deadlines = Deadlines {
            deployment_timeout_seconds: parsed_or(
                "DEPLOYMENT_TIMEOUT_SECONDS",
                DEFAULT_DEADLINES.deployment_timeout_seconds,
            )?,
            post_reroute_timeout_seconds: parsed_or(
                "POST_REROUTE_TIMEOUT_SECONDS",
                DEFAULT_DEADLINES.post_reroute_timeout_seconds,
            )?,
        };
        Ok(config)
    }

    pub fn new(
        state_machine_arn: &str,
        artifact_prefix: &str,
        default_group: &str,
        key_mapping: Option<&str>,
    ) -> Result<Self, ConfigError> {
        if execution_arn(state_machine_arn, "probe").is_none() {
            return Err(ConfigError::Invalid {
                name: "STATE_MACHINE_ARN",
                value: state_machine_arn.to_string(),
                problem: "not a state machine ARN (arn:<partition>:states:<region>:<account>:stateMachine:<name>)".into(),
            });
        }
        let mapping =
            KeyMapping::new(artifact_prefix, default_group, key_mapping).map_err(|e| {
                let (name, value) = if default_group.trim().is_empty() {
                    ("DEFAULT_DEPLOYMENT_GROUP", default_group.to_string())
                } else {
                    ("KEY_MAPPING", key_mapping.unwrap_or_default().to_string())
                };
                ConfigError::Invalid {
                    name,
                    value,
                    problem: e.0,
                }
            })?;
        Ok(Self {
            state_machine_arn: state_machine_arn.to_string(),
            mapping,
            deadlines: DEFAULT_DEADLINES,
        })
    }
}

/// The deployment-watcher's default deadlines.
pub const DEFAULT_DEADLINES: Deadlines = Deadlines {
    deployment_timeout_seconds: 3600,
    post_reroute_timeout_seconds: greenlight_core::watch::DEFAULT_POST_REROUTE_TIMEOUT_SECONDS,
};

pub struct Deps {
    pub sfn: aws_sdk_sfn::Client,
    pub codedeploy: aws_sdk_codedeploy::Client,
    pub codepipeline: aws_sdk_codepipeline::Client,
    pub config: Config,
}

impl Deps {
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        Self {
            sfn: aws_sdk_sfn::Client::new(sdk),
            codedeploy: aws_sdk_codedeploy::Client::new(sdk),
            codepipeline: aws_sdk_codepipeline::Client::new(sdk),
            config,
        }
    }
}

// ---------------------------------------------------------------------------
// Request, Response, Error
// ---------------------------------------------------------------------------

/// Any of the three entry points; told apart by [`handler`].
pub type Request = Value;

/// What the invocation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum Response {
    /// A new execution was started (for a pipeline job: and the job was
    /// answered with a continuation token).
    #[serde(rename_all = "camelCase")]
    Started {
        execution_name: String,
        execution_arn: String,
        application: String,
        deployment_group: String,
        bucket: String,
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job_id: Option<String>,
    },
    /// The execution for this revision already exists (a duplicate event):
    /// nothing new was started.
    #[serde(rename_all = "camelCase")]
    Duplicate {
        execution_name: String,
        execution_arn: String,
        application: String,
        deployment_group: String,
        bucket: String,
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job_id: Option<String>,
    },
    /// Pipeline job whose upload was rejected: the job was failed with the reason.
    #[serde(rename_all = "camelCase")]
    Rejected {
        job_id: String,
        error_type: String,
        message: String,
    },
    /// Pipeline job re-invoked while the execution runs: answered with the same token.
    #[serde(rename_all = "camelCase")]
    Continued {
        job_id: String,
        execution_arn: String,
        summary: String,
    },
    /// Pipeline job whose execution deployed the revision: job succeeded.
    #[serde(rename_all = "camelCase")]
    Succeeded {
        job_id: String,
        execution_arn: String,
        summary: String,
    },
    /// Pipeline job failed (execution failed or superseded, or an error in
    /// the handler): the job was answered with PutJobFailureResult.
    #[serde(rename_all = "camelCase")]
    Failed {
        job_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        execution_arn: Option<String>,
        error_type: String,
        message: String,
    },
    /// Not an upload (S3's `s3:TestEvent` when notifications are configured).
    #[serde(rename_all = "camelCase")]
    Ignored { reason: String },
    /// A notification with several records: one outcome per record.
    #[serde(rename_all = "camelCase")]
    Batch { outcomes: Vec<Response> },
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The upload is not deployed; nothing was started.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("CodeDeploy GetDeploymentGroup for application {application:?} group {deployment_group:?} failed: {message}; check the function's codedeploy:GetDeploymentGroup permission and retry")]
    CodeDeploy {
        application: String,
        deployment_group: String,
        message: String,
    },
    #[error("Step Functions StartExecution {name} on {state_machine_arn} failed: {message}; check STATE_MACHINE_ARN and the states:StartExecution permission, then redeliver the event")]
    StartExecution {
        name: String,
        state_machine_arn: String,
        message: String,
    },
    #[error("Step Functions DescribeExecution {execution_arn} failed: {message}; check the states:DescribeExecution permission")]
    DescribeExecution {
        execution_arn: String,
        message: String,
    },
    #[error("{0}; the job's continuationToken was not written by this deploy-trigger")]
    Token(#[from] TokenError),
    #[error("could not answer CodePipeline job {job_id}: {message}; check the codepipeline:PutJobSuccessResult/PutJobFailureResult permissions")]
    JobResult { job_id: String, message: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Stable Lambda `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Rejected(r) => r.error_type(),
            Self::CodeDeploy { .. } => errors::CODE_DEPLOY_ERROR,
            Self::StartExecution { .. } => errors::START_EXECUTION_FAILED,
            Self::DescribeExecution { .. } => errors::DESCRIBE_EXECUTION_FAILED,
            Self::Token(_) => errors::INVALID_CONTINUATION_TOKEN,
            Self::JobResult { .. } => errors::JOB_RESULT_FAILED,
            Self::Internal(_) => errors::INTERNAL_ERROR,
        }
    }
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.to_string(),
        }
    }
}

// ---------------------------------------------------------------------------
// Handler
// ---------------------------------------------------------------------------

pub async fn handler(event: LambdaEvent<Request>, deps: &Deps) -> Result<Response, Error> {
    let now = greenlight_aws::now_ms();
    let payload = event.payload;
    let result = match classify(&payload) {
        Entry::CodePipeline => handle_job(&payload, deps, now).await,
        Entry::EventBridge => match parse_eventbridge(&payload, now) {
            Ok(upload) => handle_uploads(vec![upload], deps).await,
            Err(e) => Err(e.into()),
        },
        Entry::Notification => match parse_notification(&payload, now) {
            Ok(uploads) => handle_uploads(uploads, deps).await,
            Err(e) => Err(e.into()),
        },
        Entry::S3TestEvent => Ok(Response::Ignored {
            reason: "s3:TestEvent (sent by S3 when a notification configuration is saved)"
                .to_string(),
        }),
        Entry::Unsupported(description) => Err(Rejection::UnsupportedEvent { description }.into()),
    };
    match &result {
        Ok(response) => tracing::info!(response = ?response, "deploy-trigger done"),
        Err(e) => {
            tracing::warn!(error_type = e.error_type(), error = %e, "deploy-trigger rejected or failed")
        }
    }
    result
}

enum Entry {
    CodePipeline,
    EventBridge,
    Notification,
    S3TestEvent,
    Unsupported(String),
}

fn classify(v: &Value) -> Entry {
    if v.get("CodePipeline.job").is_some() {
        return Entry::CodePipeline;
    }
    if v.get("Records").is_some() {
        return Entry::Notification;
    }
    if v.get("detail-type").is_some() {
        let source = v.get("source").and_then(Value::as_str).unwrap_or("");
        if source == "aws.s3" {
            return Entry::EventBridge;
        }
        let detail_type = v.get("detail-type").and_then(Value::as_str).unwrap_or("");
        return Entry::Unsupported(format!(
            "EventBridge event {detail_type:?} from {source:?} (only aws.s3 is handled)"
        ));
    }
    if v.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Entry::S3TestEvent;
    }
    let keys: Vec<&str> = v
        .as_object()
        .map(|o| o.keys().map(String::as_str).take(8).collect())
        .unwrap_or_default();
    Entry::Unsupported(format!("an event with top-level fields {keys:?}"))
}

// ---------------------------------------------------------------------------
// S3 events (EventBridge and classic notifications)
// ---------------------------------------------------------------------------

// Own lenient structs rather than aws_lambda_events' S3Event/EventBridgeEvent:
// those require an RFC 3339 `eventTime`/`time`, while the local cloud's
// emulator (moto) sends epoch seconds as the EventBridge `time`, an
// offset-less `eventTime`, and `eTag` instead of `etag`. Field names are AWS's.

#[derive(Deserialize)]
struct EbEvent {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "detail-type")]
    detail_type: String,
    #[serde(default)]
    time: Option<Value>,
    detail: EbDetail,
}

#[derive(Deserialize)]
struct EbDetail {
    bucket: EbBucket,
    object: EbObject,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default, rename = "deletion-type")]
    deletion_type: Option<String>,
}

#[derive(Deserialize)]
struct EbBucket {
    name: String,
}

#[derive(Deserialize)]
struct EbObject {
    key: String,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default, alias = "eTag")]
    etag: Option<String>,
    #[serde(default, rename = "version-id")]
    version_id: Option<String>,
    #[serde(default)]
    sequencer: Option<String>,
}

#[derive(Deserialize)]
struct Notification {
    #[serde(rename = "Records")]
    records: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotificationRecord {
    #[serde(default)]
    event_time: Option<Value>,
    #[serde(default)]
    event_name: Option<String>,
    #[serde(default)]
    response_elements: Option<Value>,
    s3: NotificationS3,
}

#[derive(Deserialize)]
struct NotificationS3 {
    bucket: EbBucket,
    object: NotificationObject,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotificationObject {
    key: String,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default, alias = "etag")]
    e_tag: Option<String>,
    #[serde(default)]
    version_id: Option<String>,
    #[serde(default)]
    sequencer: Option<String>,
}

/// One object change from an S3 event, key decoded.
#[derive(Debug, Clone)]
struct S3Upload {
    change: ObjectChange,
    /// Human description of the change, e.g. `Object Deleted (DeleteObject)`.
    what: String,
    object: UploadedObject,
    uploaded_at: String,
    uploaded_at_ms: EpochMillis,
    event_id: Option<String>,
}

fn parse_eventbridge(v: &Value, now: EpochMillis) -> Result<S3Upload, Rejection> {
    let ev: EbEvent = serde_json::from_value(v.clone()).map_err(|e| Rejection::InvalidEvent {
        kind: "EventBridge aws.s3".into(),
        problem: e.to_string(),
    })?;
    // EventBridge carries the key as stored (see greenlight_core::trigger docs).
    let key = decode_key(&ev.detail.object.key, KeyEncoding::Verbatim)?;
    let (uploaded_at, uploaded_at_ms) = event_time(ev.time.as_ref(), now);
    let details: Vec<&str> = [
        ev.detail.reason.as_deref(),
        ev.detail.deletion_type.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let what = if details.is_empty() {
        ev.detail_type.clone()
    } else {
        format!("{} ({})", ev.detail_type, details.join(", "))
    };
    Ok(S3Upload {
        change: eventbridge_change(&ev.detail_type),
        what,
        object: UploadedObject {
            bucket: ev.detail.bucket.name,
            key,
            size: ev.detail.object.size,
            version: ev.detail.object.version_id,
            etag: ev.detail.object.etag,
            sequencer: ev.detail.object.sequencer,
        },
        uploaded_at,
        uploaded_at_ms,
        event_id: ev.id,
    })
}

fn parse_notification(v: &Value, now: EpochMillis) -> Result<Vec<S3Upload>, Rejection> {
    let invalid = |problem: String| Rejection::InvalidEvent {
        kind: "S3 notification".into(),
        problem,
    };
    let n: Notification = serde_json::from_value(v.clone()).map_err(|e| invalid(e.to_string()))?;
    if n.records.is_empty() {
        return Err(invalid("Records is empty".into()));
    }
    let mut uploads = Vec::with_capacity(n.records.len());
    for (i, raw) in n.records.iter().enumerate() {
        let source = raw.get("eventSource").and_then(Value::as_str).unwrap_or("");
        if source != "aws:s3" {
            return Err(Rejection::UnsupportedEvent {
                description: format!(
                    "record {i} has eventSource {source:?} (S3 events wrapped in SQS/SNS are not unwrapped; route S3 to this function directly or via EventBridge)"
                ),
            });
        }
        let r: NotificationRecord =
            serde_json::from_value(raw.clone()).map_err(|e| invalid(format!("record {i}: {e}")))?;
        // Classic notifications carry the key form-URL-encoded.
        let key = decode_key(&r.s3.object.key, KeyEncoding::FormUrlEncoded)?;
        let event_name = r.event_name.unwrap_or_default();
        let (uploaded_at, uploaded_at_ms) = event_time(r.event_time.as_ref(), now);
        let request_id = r
            .response_elements
            .as_ref()
            .and_then(|e| e.get("x-amz-request-id"))
            .and_then(Value::as_str)
            .map(str::to_string);
        uploads.push(S3Upload {
            change: notification_change(&event_name),
            what: event_name,
            object: UploadedObject {
                bucket: r.s3.bucket.name,
                key,
                size: r.s3.object.size,
                version: r.s3.object.version_id,
                etag: r.s3.object.e_tag,
                sequencer: r.s3.object.sequencer,
            },
            uploaded_at,
            uploaded_at_ms,
            event_id: request_id,
        });
    }
    Ok(uploads)
}

/// A validated upload, ready to start.
struct Prepared {
    target: Target,
    name: String,
    input: PipelineInput,
}

async fn handle_uploads(uploads: Vec<S3Upload>, deps: &Deps) -> Result<Response, Error> {
    // Validate every record first: a rejected batch starts nothing.
    let mut prepared = Vec::with_capacity(uploads.len());
    for upload in uploads {
        prepared.push(prepare_upload(upload, deps).await?);
    }
    let mut outcomes = Vec::with_capacity(prepared.len());
    for p in prepared {
        outcomes.push(start(deps, &p, None).await?);
    }
    if outcomes.len() == 1 {
        Ok(outcomes.remove(0))
    } else {
        Ok(Response::Batch { outcomes })
    }
}

async fn prepare_upload(upload: S3Upload, deps: &Deps) -> Result<Prepared, Error> {
    let obj = &upload.object;
    match upload.change {
        ObjectChange::Created => {}
        ObjectChange::Deleted => {
            return Err(Rejection::DeleteEvent {
                bucket: obj.bucket.clone(),
                key: obj.key.clone(),
                what: upload.what.clone(),
            }
            .into())
        }
        ObjectChange::Other => {
            return Err(Rejection::UnsupportedEvent {
                description: format!("S3 {} for s3://{}/{}", upload.what, obj.bucket, obj.key),
            }
            .into())
        }
    }
    check_object(obj, true)?;
    let target = deps.config.mapping.resolve(&obj.bucket, &obj.key)?;
    let identity = revision_identity(obj).ok_or_else(|| Rejection::InvalidEvent {
        kind: "S3".into(),
        problem: format!(
            "the event for s3://{}/{} has no version-id, etag or sequencer to tell this upload from another",
            obj.bucket, obj.key
        ),
    })?;
    check_group(deps, &target).await?;
    let name = execution_name(&target.application, &obj.bucket, &obj.key, &identity);
    let input = pipeline_input(
        &target,
        obj,
        revision_label(&obj.key),
        upload.uploaded_at,
        upload.uploaded_at_ms,
        Source::S3 {
            event_id: upload.event_id,
        },
    );
    Ok(Prepared {
        target,
        name,
        input,
    })
}

// ---------------------------------------------------------------------------
// AWS calls
// ---------------------------------------------------------------------------

/// GetDeploymentGroup: the application and group exist and are gated.
async fn check_group(deps: &Deps, target: &Target) -> Result<(), Error> {
    let out = deps
        .codedeploy
        .get_deployment_group()
        .application_name(&target.application)
        .deployment_group_name(&target.deployment_group)
        .send()
        .await;
    let out = match out {
        Ok(out) => out,
        Err(err) => {
            let detail = describe_error(&err);
            return Err(match err.as_service_error() {
                Some(
                    GetDeploymentGroupError::ApplicationDoesNotExistException(_)
                    | GetDeploymentGroupError::InvalidApplicationNameException(_)
                    | GetDeploymentGroupError::ApplicationNameRequiredException(_),
                ) => Rejection::UnknownApplication {
                    application: target.application.clone(),
                    detail,
                }
                .into(),
                Some(
                    GetDeploymentGroupError::DeploymentGroupDoesNotExistException(_)
                    | GetDeploymentGroupError::InvalidDeploymentGroupNameException(_)
                    | GetDeploymentGroupError::DeploymentGroupNameRequiredException(_),
                ) => Rejection::UnknownDeploymentGroup {
                    application: target.application.clone(),
                    deployment_group: target.deployment_group.clone(),
                    detail,
                }
                .into(),
                _ => Error::CodeDeploy {
                    application: target.application.clone(),
                    deployment_group: target.deployment_group.clone(),
                    message: detail,
                },
            });
        }
    };
    let Some(info) = out.deployment_group_info() else {
        return Err(Rejection::UnknownDeploymentGroup {
            application: target.application.clone(),
            deployment_group: target.deployment_group.clone(),
            detail: "GetDeploymentGroup returned no deploymentGroupInfo".into(),
        }
        .into());
    };
    let facts = greenlight_aws::deployment_group::group_facts(info);
    check_gated(target, &facts, &deps.config.deadlines)?;
    Ok(())
}

/// StartExecution; ExecutionAlreadyExists = duplicate (success, nothing new).
async fn start(deps: &Deps, p: &Prepared, job_id: Option<&str>) -> Result<Response, Error> {
    let input = serde_json::to_string(&p.input)
        .map_err(|e| Error::Internal(format!("execution input: {e}")))?;
    let sm = &deps.config.state_machine_arn;
    let result = deps
        .sfn
        .start_execution()
        .state_machine_arn(sm)
        .name(&p.name)
        .input(input)
        .send()
        .await;
    let (execution_arn, duplicate) = match result {
        Ok(out) => (out.execution_arn().to_string(), false),
        Err(err)
            if matches!(
                err.as_service_error(),
                Some(StartExecutionError::ExecutionAlreadyExists(_))
            ) =>
        {
            let arn = execution_arn(sm, &p.name).ok_or_else(|| {
                Error::Internal(format!("cannot derive the execution ARN from {sm}"))
            })?;
            (arn, true)
        }
        Err(err) => {
            return Err(Error::StartExecution {
                name: p.name.clone(),
                state_machine_arn: sm.clone(),
                message: describe_error(&err),
            })
        }
    };
    let (execution_name, application, deployment_group, bucket, key, job_id) = (
        p.name.clone(),
        p.target.application.clone(),
        p.target.deployment_group.clone(),
        p.input.revision.bucket.clone(),
        p.input.revision.key.clone(),
        job_id.map(str::to_string),
    );
    Ok(if duplicate {
        Response::Duplicate {
            execution_name,
            execution_arn,
            application,
            deployment_group,
            bucket,
            key,
            job_id,
        }
    } else {
        Response::Started {
            execution_name,
            execution_arn,
            application,
            deployment_group,
            bucket,
            key,
            job_id,
        }
    })
}

// ---------------------------------------------------------------------------
// CodePipeline jobs
// ---------------------------------------------------------------------------

/// How to answer the job, and what to return once answered.
enum JobAnswer {
    Success {
        continuation_token: Option<String>,
        summary: String,
        execution_arn: String,
        response: Response,
    },
    Failure {
        message: String,
        execution_arn: Option<String>,
        error_type: String,
    },
}

async fn handle_job(v: &Value, deps: &Deps, now: EpochMillis) -> Result<Response, Error> {
    let event: aws_lambda_events::event::codepipeline_job::CodePipelineJobEvent =
        serde_json::from_value(v.clone()).map_err(|e| Rejection::InvalidEvent {
            kind: "CodePipeline job".into(),
            problem: e.to_string(),
        })?;
    let job = event.code_pipeline_job;
    let Some(job_id) = job.id.clone().filter(|id| !id.is_empty()) else {
        // Without an id the job cannot be answered at all.
        return Err(Rejection::InvalidEvent {
            kind: "CodePipeline job".into(),
            problem: "CodePipeline.job.id is missing".into(),
        }
        .into());
    };
    let answer = match job
        .data
        .continuation_token
        .as_deref()
        .filter(|t| !t.is_empty())
    {
        None => first_job_invocation(&job, &job_id, deps, now).await,
        Some(token) => continue_job(token, &job_id, deps).await,
    };
    let answer = answer.unwrap_or_else(|e| {
        let rejected = matches!(e, Error::Rejected(_));
        JobAnswer::Failure {
            message: e.to_string(),
            execution_arn: None,
            error_type: if rejected {
                format!("rejected:{}", e.error_type())
            } else {
                e.error_type().to_string()
            },
        }
    });
    answer_job(deps, &job_id, answer).await
}

async fn first_job_invocation(
    job: &aws_lambda_events::event::codepipeline_job::CodePipelineJob,
    job_id: &str,
    deps: &Deps,
    now: EpochMillis,
) -> Result<JobAnswer, Error> {
    let params = parse_user_parameters(
        job.data
            .action_configuration
            .configuration
            .user_parameters
            .as_deref(),
    )?;
    let invalid = |problem: &str| Rejection::InvalidEvent {
        kind: "CodePipeline job".into(),
        problem: problem.to_string(),
    };
    let artifact = job.data.input_artifacts.first().ok_or_else(|| {
        invalid("the action has no input artifact; give it the build output as input")
    })?;
    let s3 = &artifact.location.s3_location;
    let bucket = s3
        .bucket_name
        .clone()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| invalid("inputArtifacts[0].location.s3Location.bucketName is missing"))?;
    let key = s3
        .object_key
        .clone()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| invalid("inputArtifacts[0].location.s3Location.objectKey is missing"))?;
    let key = decode_key(&key, KeyEncoding::Verbatim)?;
    let target = pipeline_target(params.as_ref(), &deps.config.mapping, &bucket, &key)?;
    let object = UploadedObject {
        bucket: bucket.clone(),
        key: key.clone(),
        size: None,
        version: None,
        etag: None,
        sequencer: None,
    };
    // Pipeline artifacts are zip bundles without an extension.
    check_object(&object, false)?;
    check_group(deps, &target).await?;
    let name = execution_name(
        &target.application,
        &bucket,
        &key,
        &format!("codepipeline-job:{job_id}"),
    );
    let label = pipeline_label(params.as_ref(), artifact.revision.as_deref(), &key);
    let input = pipeline_input(
        &target,
        &object,
        label,
        rfc3339_ms(now),
        now,
        Source::CodePipeline {
            job_id: job_id.to_string(),
        },
    );
    let prepared = Prepared {
        target,
        name,
        input,
    };
    let response = start(deps, &prepared, Some(job_id)).await?;
    let execution_arn = match &response {
        Response::Started { execution_arn, .. } | Response::Duplicate { execution_arn, .. } => {
            execution_arn.clone()
        }
        _ => return Err(Error::Internal("start returned no execution".into())),
    };
    let token = encode_continuation_token(&execution_arn)?;
    Ok(JobAnswer::Success {
        continuation_token: Some(token),
        summary: truncate_chars(
            &format!(
                "greenlight execution {} started for {}/{}",
                prepared.name, prepared.target.application, prepared.target.deployment_group
            ),
            MAX_JOB_SUMMARY_LEN,
        ),
        execution_arn,
        response,
    })
}

async fn continue_job(token: &str, job_id: &str, deps: &Deps) -> Result<JobAnswer, Error> {
    let arn = decode_continuation_token(token)?;
    let out = deps
        .sfn
        .describe_execution()
        .execution_arn(&arn)
        .send()
        .await
        .map_err(|e| Error::DescribeExecution {
            execution_arn: arn.clone(),
            message: describe_error(&e),
        })?;
    let name = out
        .name()
        .map(str::to_string)
        .unwrap_or_else(|| arn.rsplit(':').next().unwrap_or_default().to_string());
    let owned = |s: Option<&str>| s.map(str::to_string);
    use aws_sdk_sfn::types::ExecutionStatus as S;
    let (status, failure_type) = match out.status() {
        S::Running => (ExecutionStatus::Running, ""),
        S::PendingRedrive => (ExecutionStatus::PendingRedrive, ""),
        S::Succeeded => (
            ExecutionStatus::Succeeded {
                output: owned(out.output()),
            },
            "Superseded",
        ),
        S::Failed => (
            ExecutionStatus::Failed {
                error: owned(out.error()),
                cause: owned(out.cause()),
            },
            "ExecutionFailed",
        ),
        S::TimedOut => (
            ExecutionStatus::TimedOut {
                error: owned(out.error()),
                cause: owned(out.cause()),
            },
            "ExecutionTimedOut",
        ),
        S::Aborted => (
            ExecutionStatus::Aborted {
                error: owned(out.error()),
                cause: owned(out.cause()),
            },
            "ExecutionAborted",
        ),
        other => (
            ExecutionStatus::Unknown(other.as_str().to_string()),
            "ExecutionStatusUnknown",
        ),
    };
    Ok(match job_decision(&name, &status) {
        JobDecision::Continue { summary } => JobAnswer::Success {
            continuation_token: Some(token.to_string()),
            summary: summary.clone(),
            execution_arn: arn.clone(),
            response: Response::Continued {
                job_id: job_id.to_string(),
                execution_arn: arn,
                summary,
            },
        },
        JobDecision::Success { summary } => JobAnswer::Success {
            continuation_token: None,
            summary: summary.clone(),
            execution_arn: arn.clone(),
            response: Response::Succeeded {
                job_id: job_id.to_string(),
                execution_arn: arn,
                summary,
            },
        },
        JobDecision::Failure { message } => JobAnswer::Failure {
            message,
            execution_arn: Some(arn),
            error_type: failure_type.to_string(),
        },
    })
}

/// PutJobSuccessResult / PutJobFailureResult. A failed success report is
/// followed by a failure report, so the job is always answered if CodePipeline
/// accepts anything at all; only when nothing is accepted is this an error.
async fn answer_job(deps: &Deps, job_id: &str, answer: JobAnswer) -> Result<Response, Error> {
    match answer {
        JobAnswer::Success {
            continuation_token,
            summary,
            execution_arn,
            response,
        } => {
            let details = ExecutionDetails::builder()
                .summary(truncate_chars(&summary, MAX_JOB_SUMMARY_LEN))
                .external_execution_id(truncate_chars(&execution_arn, 1500))
                .build();
            let mut req = deps
                .codepipeline
                .put_job_success_result()
                .job_id(job_id)
                .execution_details(details);
            if let Some(token) = continuation_token {
                req = req.continuation_token(token);
            }
            match req.send().await {
                Ok(_) => Ok(response),
                Err(e) => {
                    let message = format!(
                        "PutJobSuccessResult failed ({}) after: {summary}",
                        describe_error(&e)
                    );
                    put_failure(deps, job_id, &message, Some(&execution_arn)).await?;
                    Ok(Response::Failed {
                        job_id: job_id.to_string(),
                        execution_arn: Some(execution_arn),
                        error_type: "JobResultFailed".into(),
                        message,
                    })
                }
            }
        }
        JobAnswer::Failure {
            message,
            execution_arn,
            error_type,
        } => {
            put_failure(deps, job_id, &message, execution_arn.as_deref()).await?;
            let message = truncate_chars(&message, MAX_JOB_FAILURE_MESSAGE_LEN);
            Ok(match error_type.strip_prefix("rejected:") {
                Some(rejection) => Response::Rejected {
                    job_id: job_id.to_string(),
                    error_type: rejection.to_string(),
                    message,
                },
                None => Response::Failed {
                    job_id: job_id.to_string(),
                    execution_arn,
                    error_type,
                    message,
                },
            })
        }
    }
}

async fn put_failure(
    deps: &Deps,
    job_id: &str,
    message: &str,
    execution_arn: Option<&str>,
) -> Result<(), Error> {
    let mut details = FailureDetails::builder()
        .r#type(FailureType::JobFailed)
        .message(truncate_chars(message, MAX_JOB_FAILURE_MESSAGE_LEN));
    if let Some(arn) = execution_arn {
        details = details.external_execution_id(truncate_chars(arn, 1500));
    }
    let details = details
        .build()
        .map_err(|e| Error::Internal(format!("failure details: {e}")))?;
    deps.codepipeline
        .put_job_failure_result()
        .job_id(job_id)
        .failure_details(details)
        .send()
        .await
        .map_err(|e| Error::JobResult {
            job_id: job_id.to_string(),
            message: format!(
                "PutJobFailureResult failed ({}) while reporting: {}",
                describe_error(&e),
                truncate_chars(message, 500)
            ),
        })?;
    Ok(())
}

/// One line for an SDK error: the service's code and message (`ExecutionDoesNotExist:
/// Execution Does Not Exist`), or the whole error chain when the call never got an
/// answer (timeout, connection, credentials).
fn describe_error<E, R>(err: &aws_sdk_sfn::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sfn::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(se) => match (se.code(), se.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            _ => se.to_string(),
        },
        None => aws_sdk_sfn::error::DisplayErrorContext(err).to_string(),
    }
}

// ---------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------

/// The event time as (RFC 3339 UTC, epoch ms). Accepts RFC 3339 strings,
/// offset-less `YYYY-MM-DDTHH:MM:SS[.fff]` (taken as UTC) and epoch seconds
/// (a number); anything else, or no time, is `now`.
pub fn event_time(v: Option<&Value>, now: EpochMillis) -> (String, EpochMillis) {
    let parsed = match v {
        Some(Value::String(s)) => parse_time_str(s),
        Some(Value::Number(n)) => n.as_f64().filter(|f| f.is_finite()).and_then(|secs| {
            OffsetDateTime::from_unix_timestamp_nanos((secs * 1e3).round() as i128 * 1_000_000).ok()
        }),
        _ => None,
    };
    match parsed {
        Some(t) => {
            let ms = (t.unix_timestamp_nanos() / 1_000_000) as EpochMillis;
            (rfc3339_ms(ms), ms)
        }
        None => {
            if v.is_some() {
                tracing::warn!("event time not understood; using the current time");
            }
            (rfc3339_ms(now), now)
        }
    }
}

fn parse_time_str(s: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    let with_fraction = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]"
    );
    let plain = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    PrimitiveDateTime::parse(s, &with_fraction)
        .or_else(|_| PrimitiveDateTime::parse(s, &plain))
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// Epoch ms as RFC 3339 UTC (`2024-05-01T12:00:05.123Z`; no fraction when whole seconds).
pub fn rfc3339_ms(ms: EpochMillis) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_time_rfc3339() {
        let (s, ms) = event_time(Some(&json!("2024-05-01T12:00:05Z")), 0);
        assert_eq!(s, "2024-05-01T12:00:05Z");
        assert_eq!(ms, 1_714_564_805_000);
        let (s, ms) = event_time(Some(&json!("2024-05-01T12:00:05.123Z")), 0);
        assert_eq!(s, "2024-05-01T12:00:05.123Z");
        assert_eq!(ms, 1_714_564_805_123);
        let (s, _) = event_time(Some(&json!("2024-05-01T14:00:05+02:00")), 0);
        assert_eq!(s, "2024-05-01T12:00:05Z");
    }

    #[test]
    fn event_time_offsetless_and_epoch_seconds() {
        let (s, ms) = event_time(Some(&json!("2024-05-01T12:00:05.123456")), 0);
        assert_eq!(
            (s.as_str(), ms),
            ("2024-05-01T12:00:05.123Z", 1_714_564_805_123)
        );
        let (_, ms) = event_time(Some(&json!("2024-05-01T12:00:05")), 0);
        assert_eq!(ms, 1_714_564_805_000);
        let (s, ms) = event_time(Some(&json!(1_714_564_805.5)), 0);
        assert_eq!(
            (s.as_str(), ms),
            ("2024-05-01T12:00:05.5Z", 1_714_564_805_500)
        );
    }

    #[test]
    fn event_time_falls_back_to_now() {
        let now = 1_714_564_805_000;
        assert_eq!(event_time(None, now).1, now);
        assert_eq!(event_time(Some(&json!("yesterday")), now).1, now);
        assert_eq!(event_time(Some(&json!(null)), now).1, now);
        assert_eq!(
            event_time(Some(&json!(true)), now).0,
            "2024-05-01T12:00:05Z"
        );
    }

    #[test]
    fn config_validation() {
        let sm = "arn:aws:states:us-east-1:111122223333:stateMachine:greenlight";
        assert!(Config::new(sm, "artifacts/", "prod", None).is_ok());
        let e = Config::new("nope", "artifacts/", "prod", None).unwrap_err();
        assert!(e.to_string().contains("STATE_MACHINE_ARN"), "{e}");
        let e = Config::new(sm, "artifacts/", "prod", Some("{bad")).unwrap_err();
        assert!(
            e.to_string().contains("KEY_MAPPING") && e.to_string().contains("not valid JSON"),
            "{e}"
        );
        let e = Config::new(sm, "artifacts/", " ", None).unwrap_err();
        assert!(e.to_string().contains("DEFAULT_DEPLOYMENT_GROUP"), "{e}");
    }

    #[test]
    fn diagnostics_carry_stable_error_types() {
        let d: Diagnostic = Error::Rejected(Rejection::NotAZip {
            bucket: "b".into(),
            key: "k".into(),
        })
        .into();
        assert_eq!(d.error_type, "NotAZip");
        assert!(d.error_message.contains("s3://b/k"));
        let d: Diagnostic = Error::Token(TokenError("x".into())).into();
        assert_eq!(d.error_type, "InvalidContinuationToken");
    }
}
