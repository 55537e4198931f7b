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
//! Every AWS call goes through `greenlight_aws` (`executions`, `codepipeline`,
//! `group_gate`), which answers core types and `AwsError`.
//!
//! Credentials: the raw event is never logged (CodePipeline jobs carry
//! artifact credentials; the runtime's own TRACE logging of payloads is
//! capped by `greenlight_aws::init_tracing`), `artifactCredentials` is blanked
//! before the job is parsed, and a CodePipeline job never fails the
//! invocation: once the job is answered the handler returns success, and when
//! it cannot be answered it returns success with `outcome: unanswered`
//! (logged as an error). A failed asynchronous invocation would put the whole
//! payload, credentials included, in the function's on-failure destination
//! (the RejectedUploads queue, kept 14 days); only S3 events, which carry no
//! secret, can fail the invocation.

use greenlight_aws::artifacts::object_tags;
use greenlight_aws::codepipeline::{put_job_failure, put_job_success, JobAnswer as JobResult};
use greenlight_aws::config::{optional, parsed_or, required, ConfigError};
use greenlight_aws::deployment_group::{read_group_facts, GroupLookup};
use greenlight_aws::executions::{describe_execution, start_execution};
use greenlight_aws::AwsError;
use greenlight_core::errors;
use greenlight_core::model::{EpochMillis, PipelineInput, Source};
use greenlight_core::options::{
    decide, group_approval, parse_approval_config, ready_wait_problem, Asked, Decided,
    GroupApproval, APPROVAL_TAG, BAKE_TAG,
};
use greenlight_core::trigger::{
    check_gated, check_object, decode_continuation_token, decode_key, encode_continuation_token,
    eventbridge_change, execution_name, job_decision, notification_change, parse_user_parameters,
    pipeline_input, pipeline_label, pipeline_target, revision_identity, revision_label,
    truncate_chars, ArtifactBuckets, Deadlines, ExecutionStatus, GroupFacts, JobDecision,
    KeyEncoding, KeyMapping, ObjectChange, Rejection, Target, TokenError, UploadRoute,
    UploadedObject, MAX_JOB_FAILURE_MESSAGE_LEN, MAX_JOB_SUMMARY_LEN,
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
    /// `ARTIFACT_BUCKET` and `PIPELINE_ARTIFACT_BUCKETS`: where uploads may come from.
    pub buckets: ArtifactBuckets,
    /// `ARTIFACT_PREFIX`, `DEFAULT_DEPLOYMENT_GROUP` and `KEY_MAPPING`.
    pub mapping: KeyMapping,
    /// `DEPLOYMENT_TIMEOUT_SECONDS` (default 3600) and
    /// `POST_REROUTE_TIMEOUT_SECONDS` (default 10800), the deployment-watcher's
    /// deadlines: a group whose Ready wait or blue termination wait cannot fit
    /// them is rejected.
    pub deadlines: Deadlines,
    /// `APPROVAL_CONFIG` (optional JSON list, template parameter
    /// `ApprovalConfig`): the groups that ask for a human approval by default,
    /// and each group's approval deadline (`greenlight_core::options`).
    pub approval: Vec<GroupApproval>,
}

impl Config {
    /// Reads `STATE_MACHINE_ARN` (required), `ARTIFACT_BUCKET` (required),
    /// `PIPELINE_ARTIFACT_BUCKETS` (optional, comma-separated), `ARTIFACT_PREFIX` (default
    /// `artifacts/`; set but empty = the whole bucket), `DEFAULT_DEPLOYMENT_GROUP`
    /// (required) and `KEY_MAPPING` (optional JSON list).
    pub fn from_env() -> Result<Self, ConfigError> {
        let state_machine_arn = required("STATE_MACHINE_ARN")?;
        let artifact_bucket = required("ARTIFACT_BUCKET")?;
        let pipeline_buckets = optional("PIPELINE_ARTIFACT_BUCKETS");
        let artifact_prefix = std::env::var("ARTIFACT_PREFIX")
            .unwrap_or_else(|_| DEFAULT_ARTIFACT_PREFIX.to_string());
        let default_group = required("DEFAULT_DEPLOYMENT_GROUP")?;
        let key_mapping = optional("KEY_MAPPING");
        let mut config = Self::new(
            &state_machine_arn,
            &artifact_bucket,
            pipeline_buckets.as_deref(),
            &artifact_prefix,
            &default_group,
            key_mapping.as_deref(),
        )?;
        config.approval = parse_approval_config(&optional("APPROVAL_CONFIG").unwrap_or_default())
            .map_err(|e| ConfigError::Invalid {
            name: "APPROVAL_CONFIG",
            value: optional("APPROVAL_CONFIG").unwrap_or_default(),
            problem: e.to_string(),
        })?;
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
        artifact_bucket: &str,
        pipeline_buckets: Option<&str>,
        artifact_prefix: &str,
        default_group: &str,
        key_mapping: Option<&str>,
    ) -> Result<Self, ConfigError> {
        if greenlight_core::trigger::execution_arn(state_machine_arn, "probe").is_none() {
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
        let buckets =
            ArtifactBuckets::new(artifact_bucket, pipeline_buckets).map_err(|problem| {
                ConfigError::Invalid {
                    name: "ARTIFACT_BUCKET",
                    value: artifact_bucket.to_string(),
                    problem,
                }
            })?;
        Ok(Self {
            state_machine_arn: state_machine_arn.to_string(),
            buckets,
            mapping,
            deadlines: DEFAULT_DEADLINES,
            approval: Vec::new(),
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
    /// GetObjectTagging: the upload's approval / bake requests.
    pub s3: aws_sdk_s3::Client,
    pub codedeploy: aws_sdk_codedeploy::Client,
    pub codepipeline: aws_sdk_codepipeline::Client,
    pub config: Config,
}

impl Deps {
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        Self {
            sfn: aws_sdk_sfn::Client::new(sdk),
            s3: aws_sdk_s3::Client::new(sdk),
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
    /// Pipeline job that could not be answered (no job id, an event that is
    /// not a job, or CodePipeline refused both results). Returned as success
    /// on purpose: a failed invocation would put the job's payload, with its
    /// artifact credentials, in the on-failure queue. CodePipeline fails the
    /// action when its wait for an answer runs out; the error is logged.
    #[serde(rename_all = "camelCase")]
    Unanswered {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job_id: Option<String>,
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
    /// An AWS call failed; `fix` says what to check.
    #[error("{error}; {fix}")]
    Aws { error: AwsError, fix: &'static str },
    #[error("{0}; the job's continuationToken was not written by this deploy-trigger")]
    Token(#[from] TokenError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What to check when GetDeploymentGroup fails for another reason than a missing application or group.
const FIX_GROUP: &str = "check the function's codedeploy:GetDeploymentGroup permission";
/// What to do when an AWS call still failed transiently after its retries.
const FIX_TRANSIENT: &str = "AWS answered with throttling or a transient error on every attempt (AwsTransient), which says nothing about greenlight's settings or permissions: Lambda invokes an S3 upload's event twice more and then keeps it in the RejectedUploads queue with this reason (upload the revision again, or invoke the function with the record's requestPayload); a CodePipeline job fails with it (retry the stage)";
/// What to check when GetObjectTagging fails.
const FIX_TAGS: &str = "check the function's s3:GetObjectTagging / s3:GetObjectVersionTagging permission on the artifact bucket's objects and redeliver the event (the upload's greenlight-approval / greenlight-bake tags must be read before it deploys)";
/// What to check when StartExecution fails.
const FIX_START: &str =
    "check STATE_MACHINE_ARN and the states:StartExecution permission, then redeliver the event";
/// What to check when DescribeExecution fails.
const FIX_DESCRIBE: &str = "check the states:DescribeExecution permission; CodePipeline invokes the action again with the same token";
/// What to check when CodePipeline refuses the job result.
const FIX_JOB_RESULT: &str = "check the codepipeline:PutJobSuccessResult/PutJobFailureResult permissions and that the job is still in progress";

impl Error {
    /// An AWS error with what to check. A transient one (throttling, a 5xx,
    /// a timeout, after the SDK's retries) says nothing about permissions or
    /// settings, so it gets [`FIX_TRANSIENT`] instead.
    fn aws(fix: &'static str) -> impl FnOnce(AwsError) -> Self {
        move |error| {
            let fix = if error.transient { FIX_TRANSIENT } else { fix };
            Self::Aws { error, fix }
        }
    }

    /// Stable Lambda `errorType` (names from `greenlight_core::errors` and
    /// `trigger::Rejection::error_type`).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Rejected(r) => r.error_type(),
            Self::Aws { error, .. } => error.error_type(),
            Self::Token(_) => errors::INVALID_CONTINUATION_TOKEN,
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
        Entry::CodePipeline => Ok(handle_job(payload, deps, now).await),
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
        Ok(response @ Response::Unanswered { .. }) => {
            tracing::error!(response = ?response, "deploy-trigger could not answer the CodePipeline job; CodePipeline fails the action when its wait runs out")
        }
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
    deps.config
        .buckets
        .check(UploadRoute::S3Event, &obj.bucket, &obj.key)?;
    check_object(obj, true)?;
    let target = deps.config.mapping.resolve(&obj.bucket, &obj.key)?;
    let identity = revision_identity(obj).ok_or_else(|| Rejection::InvalidEvent {
        kind: "S3".into(),
        problem: format!(
            "the event for s3://{}/{} has no version-id, etag or sequencer to tell this upload from another",
            obj.bucket, obj.key
        ),
    })?;
    let facts = check_group(deps, &target).await?;
    let tags = object_tags(&deps.s3, &obj.bucket, &obj.key, obj.real_version())
        .await
        .map_err(Error::aws(FIX_TAGS))?;
    let tag = |name: &str| {
        tags.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let decided = decide_options(
        deps,
        &target,
        &facts,
        Asked {
            approval_tag: tag(APPROVAL_TAG),
            bake_tag: tag(BAKE_TAG),
            ..Asked::default()
        },
    )?;
    let name = execution_name(
        &target.application,
        &target.deployment_group,
        &obj.bucket,
        &obj.key,
        &identity,
    );
    let mut input = pipeline_input(
        &target,
        obj,
        revision_label(&obj.key),
        upload.uploaded_at,
        upload.uploaded_at_ms,
        Source::S3 {
            event_id: upload.event_id,
        },
    );
    input.approval = decided.approval;
    input.bake_skip = decided.bake_skip;
    Ok(Prepared {
        target,
        name,
        input,
    })
}

// ---------------------------------------------------------------------------
// AWS calls
// ---------------------------------------------------------------------------

/// The upload's approval and bake requests, decided with the group's
/// default; an approval the group's Ready wait cannot hold is refused.
fn decide_options(
    deps: &Deps,
    target: &Target,
    facts: &GroupFacts,
    asked: Asked<'_>,
) -> Result<Decided, Error> {
    let group = group_approval(
        &deps.config.approval,
        &target.application,
        &target.deployment_group,
    );
    let decided = decide(asked, group).map_err(Rejection::from)?;
    if let Some(request) = decided.approval.as_ref() {
        if let Some(problem) =
            ready_wait_problem(facts.ready_wait_minutes, request.deadline_seconds)
        {
            return Err(Rejection::GroupNotGated {
                application: target.application.clone(),
                deployment_group: target.deployment_group.clone(),
                problems: vec![format!(
                    "an approval was asked ({}): {problem}",
                    request.describe()
                )],
            }
            .into());
        }
    }
    Ok(decided)
}

/// GetDeploymentGroup: the application and group exist and are gated.
async fn check_group(deps: &Deps, target: &Target) -> Result<GroupFacts, Error> {
    let facts = match read_group_facts(&deps.codedeploy, target)
        .await
        .map_err(Error::aws(FIX_GROUP))?
    {
        GroupLookup::Found(facts) => facts,
        GroupLookup::NoApplication { detail } => {
            return Err(Rejection::UnknownApplication {
                application: target.application.clone(),
                detail,
            }
            .into())
        }
        GroupLookup::NoGroup { detail } => {
            return Err(Rejection::UnknownDeploymentGroup {
                application: target.application.clone(),
                deployment_group: target.deployment_group.clone(),
                detail,
            }
            .into())
        }
    };
    check_gated(target, &facts, &deps.config.deadlines)?;
    Ok(facts)
}

/// StartExecution; ExecutionAlreadyExists = duplicate (success, nothing new).
async fn start(deps: &Deps, p: &Prepared, job_id: Option<&str>) -> Result<Response, Error> {
    let input = serde_json::to_string(&p.input)
        .map_err(|e| Error::Internal(format!("execution input: {e}")))?;
    let started = start_execution(&deps.sfn, &deps.config.state_machine_arn, &p.name, &input)
        .await
        .map_err(Error::aws(FIX_START))?;
    let (execution_arn, duplicate) = (started.execution_arn, started.duplicate);
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

/// A CodePipeline job, answered whatever happens; never an `Err` (see the
/// module docs: a failed invocation would queue the job's credentials).
async fn handle_job(mut v: Value, deps: &Deps, now: EpochMillis) -> Response {
    let redact = Redactor::new(&v);
    blank_artifact_credentials(&mut v);
    let job_id_hint = v
        .pointer("/CodePipeline.job/id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(|id| truncate_chars(id, 200));
    let unanswered = |job_id: Option<String>, e: Error| Response::Unanswered {
        job_id,
        error_type: e.error_type().to_string(),
        message: truncate_chars(&redact.apply(&e.to_string()), MAX_JOB_FAILURE_MESSAGE_LEN),
    };
    let event: aws_lambda_events::event::codepipeline_job::CodePipelineJobEvent =
        match serde_json::from_value(v) {
            Ok(event) => event,
            Err(e) => {
                let e = Rejection::InvalidEvent {
                    kind: "CodePipeline job".into(),
                    problem: format!(
                        "{e}; the event must be CodePipeline's Lambda invoke job ({{\"CodePipeline.job\":{{\"id\":..,\"data\":..}}}})"
                    ),
                };
                return unanswered(job_id_hint, e.into());
            }
        };
    let job = event.code_pipeline_job;
    let Some(job_id) = job.id.clone().filter(|id| !id.is_empty()) else {
        // Without an id the job cannot be answered at all.
        let e = Rejection::InvalidEvent {
            kind: "CodePipeline job".into(),
            problem: "CodePipeline.job.id is missing; only CodePipeline's own invocations can be answered".into(),
        };
        return unanswered(None, e.into());
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
            message: redact.apply(&e.to_string()),
            execution_arn: None,
            error_type: if rejected {
                format!("rejected:{}", e.error_type())
            } else {
                e.error_type().to_string()
            },
        }
    });
    match answer_job(deps, &job_id, answer).await {
        Ok(response) => response,
        Err(e) => unanswered(Some(job_id), e),
    }
}

/// The string values of a job's `artifactCredentials` (any shape), cut out
/// of every message the job's answer or log line carries: serde's parse
/// errors quote the values they reject, so a credential pasted in the wrong
/// field could otherwise be echoed.
struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    fn new(v: &Value) -> Self {
        fn strings(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::String(s) if !s.is_empty() => out.push(s.clone()),
                Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
                Value::Object(map) => map.values().for_each(|i| strings(i, out)),
                _ => {}
            }
        }
        let mut secrets = Vec::new();
        if let Some(creds) = v.pointer("/CodePipeline.job/data/artifactCredentials") {
            strings(creds, &mut secrets);
        }
        // Longest first, so a secret containing another is cut whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets }
    }

    fn apply(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_string(), |t, s| t.replace(s.as_str(), "[redacted]"))
    }
}

/// Replaces `CodePipeline.job.data.artifactCredentials` with `{}`: greenlight
/// never uses them (CodeDeploy reads the artifact with its own role), and a
/// parse error must not be able to quote them.
pub fn blank_artifact_credentials(v: &mut Value) {
    if let Some(creds) = v.pointer_mut("/CodePipeline.job/data/artifactCredentials") {
        *creds = Value::Object(Default::default());
    }
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
    deps.config
        .buckets
        .check(UploadRoute::CodePipelineJob, &bucket, &key)?;
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
    let facts = check_group(deps, &target).await?;
    let decided = decide_options(
        deps,
        &target,
        &facts,
        Asked {
            approval_parameter: params.as_ref().and_then(|p| p.approval.as_deref()),
            bake_parameter: params.as_ref().and_then(|p| p.bake.as_deref()),
            ..Asked::default()
        },
    )?;
    let name = execution_name(
        &target.application,
        &target.deployment_group,
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
    let input = PipelineInput {
        approval: decided.approval,
        bake_skip: decided.bake_skip,
        ..input
    };
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
    let view = describe_execution(&deps.sfn, &arn)
        .await
        .map_err(Error::aws(FIX_DESCRIBE))?;
    let (name, status) = (view.name, view.status);
    let failure_type = match &status {
        ExecutionStatus::Running | ExecutionStatus::PendingRedrive => "",
        ExecutionStatus::Succeeded { .. } => errors::SUPERSEDED,
        ExecutionStatus::Failed { .. } => errors::EXECUTION_FAILED,
        ExecutionStatus::TimedOut { .. } => errors::EXECUTION_TIMED_OUT,
        ExecutionStatus::Aborted { .. } => errors::EXECUTION_ABORTED,
        ExecutionStatus::Unknown(_) => errors::EXECUTION_STATUS_UNKNOWN,
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

/// PutJobFailureResult's answer as the trigger takes it: a job that was
/// already answered (or is gone) is an error here, since the trigger answers
/// each job once.
fn failed(answer: Result<JobResult, AwsError>) -> Result<(), AwsError> {
    match answer? {
        JobResult::Failed => Ok(()),
        JobResult::AlreadyAnswered(e) => Err(e),
    }
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
            match put_job_success(
                &deps.codepipeline,
                job_id,
                &summary,
                &execution_arn,
                continuation_token.as_deref(),
            )
            .await
            {
                Ok(()) => Ok(response),
                Err(e) => {
                    let message = format!("PutJobSuccessResult failed ({e}) after: {summary}");
                    failed(
                        put_job_failure(&deps.codepipeline, job_id, &message, Some(&execution_arn))
                            .await,
                    )
                    .map_err(Error::aws(FIX_JOB_RESULT))?;
                    Ok(Response::Failed {
                        job_id: job_id.to_string(),
                        execution_arn: Some(execution_arn),
                        error_type: errors::JOB_RESULT_FAILED.into(),
                        message: truncate_chars(&message, MAX_JOB_FAILURE_MESSAGE_LEN),
                    })
                }
            }
        }
        JobAnswer::Failure {
            message,
            execution_arn,
            error_type,
        } => {
            failed(
                put_job_failure(
                    &deps.codepipeline,
                    job_id,
                    &message,
                    execution_arn.as_deref(),
                )
                .await,
            )
            .map_err(Error::aws(FIX_JOB_RESULT))?;
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
            // Checked: a huge number (hostile input) must not overflow.
            ((secs * 1e3).round() as i128)
                .checked_mul(1_000_000)
                .and_then(|nanos| OffsetDateTime::from_unix_timestamp_nanos(nanos).ok())
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
    fn event_time_of_a_huge_number_is_now_not_a_panic() {
        // Found by tests/properties.rs: `as i128 * 1_000_000` overflowed.
        let now = 1_714_564_805_000;
        assert_eq!(event_time(Some(&json!(1.0e300)), now).1, now);
        assert_eq!(event_time(Some(&json!(-1.0e300)), now).1, now);
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
        assert!(Config::new(sm, "art", None, "artifacts/", "prod", None).is_ok());
        let e = Config::new("nope", "art", None, "artifacts/", "prod", None).unwrap_err();
        assert!(e.to_string().contains("STATE_MACHINE_ARN"), "{e}");
        let e = Config::new(sm, "art", None, "artifacts/", "prod", Some("{bad")).unwrap_err();
        assert!(
            e.to_string().contains("KEY_MAPPING") && e.to_string().contains("not valid JSON"),
            "{e}"
        );
        let e = Config::new(sm, "art", None, "artifacts/", " ", None).unwrap_err();
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
