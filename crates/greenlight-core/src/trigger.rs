//! deploy-trigger decisions: pure functions, no SDK types.
//!
//! The deploy-trigger Lambda turns an upload (an S3 event, delivered by
//! EventBridge or as a classic notification, or a CodePipeline job) into one
//! Step Functions execution. Everything it decides is here:
//!
//! * how the object key is carried in each kind of event ([`decode_key`]),
//! * which application and deployment group a key belongs to ([`KeyMapping`]),
//! * which uploads are rejected, and why ([`Rejection`], [`check_object`],
//!   [`check_gated`]),
//! * the deterministic execution name ([`execution_name`]) and the execution
//!   input ([`pipeline_input`]),
//! * the CodePipeline side: user parameters, the continuation token and what
//!   to answer the job from the execution's status ([`job_decision`]).
//!
//! # How S3 events carry the object key
//!
//! * Classic S3 event notifications (`Records[].s3.object.key`, to Lambda,
//!   SQS or SNS) carry the key **form-URL-encoded**: a space is `+`, a plus
//!   is `%2B`, `:` is `%3A`, non-ASCII is `%XX` UTF-8 bytes. AWS documents
//!   it in "Event message structure" (AmazonS3/latest/userguide/
//!   notification-content-structure.html: "the object key name value is URL
//!   encoded. For example, "red flower.jpg" becomes "red+flower.jpg""); see
//!   also aws/aws-sdk-net#640 (`this im + age blah.txt` arrived as
//!   `this+im+%2B+age+blah.txt`) and aws/aws-sdk-js#837 (`:` as `%3A`).
//! * S3 events delivered through **EventBridge** (`detail.object.key`) carry
//!   the key **as stored, not URL-encoded**. AWS's "EventBridge event message
//!   structure" page (AmazonS3/latest/userguide/ev-events.html) documents no
//!   encoding for `detail.object.key` (unlike the notification page); a real
//!   captured event shows `raw/health-check/2023-08-08T14:03:40.532432.zip`
//!   with `:` unencoded (a classic notification would say `%3A`); and
//!   aws-solutions-library-samples/guidance-for-medialake-on-aws PR #21
//!   removed the decoding of EventBridge keys after keys such as
//!   `test+b.png`, `ARTISTS K to O.png` and `%2B%20%%%.png` failed with it and
//!   worked without it. moto (the local cloud) does the same: raw `key.name`
//!   for EventBridge, encoded for notifications (getmoto/moto#9060).
//!   Decoding an EventBridge key would turn a literal `+` into a space and
//!   break on a literal `%`, so it is taken verbatim.
//!   (aws-lambda-powertools-python unquotes it; that is wrong for keys with
//!   a literal `+` or `%`.)
//!
//! Either way [`decode_key`] returns the key exactly as stored in S3, which
//! is what CreateDeployment's S3 revision needs.

use crate::model::{EpochMillis, PipelineInput, Revision, Source};
use percent_encoding::percent_decode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Step Functions execution names: 1..=80 characters.
pub const MAX_EXECUTION_NAME_LEN: usize = 80;
/// CodePipeline `continuationToken`: at most 2048 characters.
pub const MAX_CONTINUATION_TOKEN_LEN: usize = 2048;
/// CodePipeline `failureDetails.message`: at most 5000 characters.
pub const MAX_JOB_FAILURE_MESSAGE_LEN: usize = 5000;
/// CodePipeline `executionDetails.summary`: at most 2048 characters.
pub const MAX_JOB_SUMMARY_LEN: usize = 2048;
/// Readable application part of an execution name, at most this long
/// (`gl2-` + 8 + `-` + 34 + `-` + 32 = 80).
const NAME_APP_PART_LEN: usize = 34;
/// The same in the earlier `gl-<application>-<hash>` format.
const OLD_NAME_APP_PART_LEN: usize = 40;
/// Hex characters of the SHA-256 digest in an execution name (128 bits).
const NAME_HASH_LEN: usize = 32;
/// Where every rejection message points for the fix of a deployment group.
pub const README_GROUP_SECTION: &str =
    "README section \"Create the deployment group\" (functions/deploy-trigger/README.md)";

// ---------------------------------------------------------------------------
// Rejections
// ---------------------------------------------------------------------------

/// Why an upload is not deployed. Each variant is a stable Lambda
/// `error_type` ([`Rejection::error_type`]); nothing was started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("s3://{bucket}/{key} is not a .zip bundle; greenlight deploys only keys ending in .zip (CodeDeploy bundleType zip). Upload the build as <prefix><APP>/<file>.zip")]
    NotAZip { bucket: String, key: String },

    #[error("s3://{bucket}/{key} is empty (0 bytes); a CodeDeploy bundle cannot be empty. Check the build step that produced it and upload it again")]
    EmptyObject { bucket: String, key: String },

    #[error("s3://{bucket}/{key} matches no deployment target: it is not under ARTIFACT_PREFIX {artifact_prefix:?} as <prefix><APP>/<file>.zip{mapping_hint}. Upload under the prefix or add a KEY_MAPPING entry for it")]
    UnmappedKey {
        bucket: String,
        key: String,
        artifact_prefix: String,
        /// ", nor under any KEY_MAPPING prefix (a, b)" or empty.
        mapping_hint: String,
    },

    #[error("{what} for s3://{bucket}/{key}: greenlight deploys uploads only and never undeploys on a delete; nothing was started")]
    DeleteEvent {
        bucket: String,
        key: String,
        /// e.g. `Object Deleted (DeleteObject, Delete Marker Created)` or `ObjectRemoved:Delete`.
        what: String,
    },

    #[error("CodeDeploy application {application:?} does not exist ({detail}); create it, or fix the key's <APP> part / the KEY_MAPPING entry that names it")]
    UnknownApplication { application: String, detail: String },

    #[error("deployment group {deployment_group:?} does not exist in CodeDeploy application {application:?} ({detail}); create it as described in {README_GROUP_SECTION}, or fix DEFAULT_DEPLOYMENT_GROUP / the KEY_MAPPING entry")]
    UnknownDeploymentGroup {
        application: String,
        deployment_group: String,
        detail: String,
    },

    #[error("deployment group {deployment_group:?} of application {application:?} is not gated for greenlight: {}. Fix it as described in {README_GROUP_SECTION}", problems.join("; "))]
    GroupNotGated {
        application: String,
        deployment_group: String,
        problems: Vec<String>,
    },

    #[error("the object key {key:?} is not accepted: {problem}")]
    InvalidKey { key: String, problem: String },

    #[error("the CodePipeline action's UserParameters are invalid: {problem}. Use JSON like {{\"application\":\"my-app\",\"deploymentGroup\":\"my-group\"}} (deploymentGroup, label, approval (\"required\") and bake (\"skip\") are optional)")]
    InvalidUserParameters { problem: String },

    #[error("unsupported event: {description}. deploy-trigger handles EventBridge \"Object Created\" from aws.s3, S3 notification Records and CodePipeline jobs")]
    UnsupportedEvent { description: String },

    #[error("malformed {kind} event: {problem}")]
    InvalidEvent { kind: String, problem: String },

    /// An approval or bake request (S3 tag, UserParameters) with a value
    /// greenlight does not know (`crate::options`).
    #[error(transparent)]
    InvalidDeploymentOption(#[from] crate::options::InvalidOption),

    #[error("s3://{bucket}/{key} is not in {allowed}: greenlight deploys only from the buckets it is configured for. Upload to {allowed}, or set {setting} if this bucket is meant to deploy")]
    ForeignBucket {
        bucket: String,
        key: String,
        /// e.g. `the artifact bucket "b"`.
        allowed: String,
        /// The environment variable that would allow it.
        setting: String,
    },
}

impl Rejection {
    /// Stable Lambda `errorType` of this rejection.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::NotAZip { .. } => "NotAZip",
            Self::EmptyObject { .. } => "EmptyObject",
            Self::UnmappedKey { .. } => "UnmappedKey",
            Self::DeleteEvent { .. } => "DeleteEvent",
            Self::UnknownApplication { .. } => "UnknownApplication",
            Self::UnknownDeploymentGroup { .. } => "UnknownDeploymentGroup",
            Self::GroupNotGated { .. } => "GroupNotGated",
            Self::InvalidKey { .. } => "InvalidKey",
            Self::InvalidUserParameters { .. } => "InvalidUserParameters",
            Self::UnsupportedEvent { .. } => "UnsupportedEvent",
            Self::InvalidEvent { .. } => "InvalidEvent",
            Self::InvalidDeploymentOption(_) => "InvalidDeploymentOption",
            Self::ForeignBucket { .. } => "ForeignBucket",
        }
    }
}

// ---------------------------------------------------------------------------
// Buckets
// ---------------------------------------------------------------------------

/// The buckets an upload may come from: `ARTIFACT_BUCKET` for S3 events, and
/// for CodePipeline jobs that bucket or one of `PIPELINE_ARTIFACT_BUCKETS`
/// (a pipeline's artifact store is usually a bucket of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactBuckets {
    pub artifact_bucket: String,
    pub pipeline_buckets: Vec<String>,
}

/// Where an upload event came from, for [`ArtifactBuckets::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadRoute {
    S3Event,
    CodePipelineJob,
}

impl ArtifactBuckets {
    /// `artifact_bucket` (required, not blank) and `pipeline_buckets`, a
    /// comma-separated list (blank entries ignored).
    pub fn new(artifact_bucket: &str, pipeline_buckets: Option<&str>) -> Result<Self, String> {
        let artifact_bucket = artifact_bucket.trim();
        if artifact_bucket.is_empty() {
            return Err("ARTIFACT_BUCKET is empty; name the bucket uploads come from".into());
        }
        let pipeline_buckets = pipeline_buckets
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(str::to_string)
            .collect();
        Ok(Self {
            artifact_bucket: artifact_bucket.to_string(),
            pipeline_buckets,
        })
    }

    /// [`Rejection::ForeignBucket`] unless `bucket` is one this route may
    /// deploy from. Exact, case-sensitive comparison (bucket names are
    /// lower-case; anything else is not the configured bucket).
    pub fn check(&self, route: UploadRoute, bucket: &str, key: &str) -> Result<(), Rejection> {
        if bucket == self.artifact_bucket {
            return Ok(());
        }
        let (allowed, setting) = match route {
            UploadRoute::S3Event => (
                format!("the artifact bucket {:?}", self.artifact_bucket),
                "ARTIFACT_BUCKET (the stack's artifact bucket) to it".to_string(),
            ),
            UploadRoute::CodePipelineJob => {
                if self.pipeline_buckets.iter().any(|b| b == bucket) {
                    return Ok(());
                }
                let mut all = vec![format!("{:?}", self.artifact_bucket)];
                all.extend(self.pipeline_buckets.iter().map(|b| format!("{b:?}")));
                (
                    format!(
                        "the artifact bucket or a pipeline artifact bucket ({})",
                        all.join(", ")
                    ),
                    "PIPELINE_ARTIFACT_BUCKETS (comma-separated) to include it".to_string(),
                )
            }
        };
        Err(Rejection::ForeignBucket {
            bucket: truncate_chars(bucket, 255),
            key: truncate_chars(key, 1024),
            allowed,
            setting,
        })
    }
}

// ---------------------------------------------------------------------------
// Key decoding
// ---------------------------------------------------------------------------

/// How an event carries the object key (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEncoding {
    /// Classic S3 event notification: `application/x-www-form-urlencoded`
    /// (`+` = space, `%XX` = UTF-8 byte).
    FormUrlEncoded,
    /// EventBridge `detail.object.key` and CodePipeline `objectKey`: as stored.
    Verbatim,
}

/// The key exactly as stored in S3.
pub fn decode_key(carried: &str, encoding: KeyEncoding) -> Result<String, Rejection> {
    match encoding {
        KeyEncoding::Verbatim => Ok(carried.to_string()),
        KeyEncoding::FormUrlEncoded => {
            // `+` first (a literal plus arrives as %2B, so no ambiguity), then %XX.
            let spaced = carried.replace('+', " ");
            let bytes: Vec<u8> = percent_decode(spaced.as_bytes()).collect();
            String::from_utf8(bytes).map_err(|_| Rejection::InvalidKey {
                key: carried.to_string(),
                problem: "its %XX escapes do not decode to UTF-8".to_string(),
            })
        }
    }
}

// ---------------------------------------------------------------------------
// Key -> (application, deployment group)
// ---------------------------------------------------------------------------

/// One `KEY_MAPPING` entry: keys starting with `prefix` deploy to
/// `application` / `deploymentGroup` (default: `DEFAULT_DEPLOYMENT_GROUP`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyRule {
    pub prefix: String,
    pub application: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_group: Option<String>,
}

/// Where an upload deploys to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub application: String,
    pub deployment_group: String,
}

/// A `KEY_MAPPING` that cannot be used; the message names the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyMappingError(pub String);

/// The key → target rules: `KEY_MAPPING` entries (longest matching prefix
/// wins), then the convention `<artifact_prefix><APP>/<file>.zip` → APP /
/// `default_group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMapping {
    pub artifact_prefix: String,
    pub default_group: String,
    /// Sorted longest prefix first.
    pub rules: Vec<KeyRule>,
}

impl KeyMapping {
    /// Builds the mapping; `key_mapping_json` is the raw `KEY_MAPPING` value.
    pub fn new(
        artifact_prefix: &str,
        default_group: &str,
        key_mapping_json: Option<&str>,
    ) -> Result<Self, KeyMappingError> {
        if default_group.trim().is_empty() {
            return Err(KeyMappingError(
                "DEFAULT_DEPLOYMENT_GROUP is empty; name the CodeDeploy deployment group".into(),
            ));
        }
        let rules = match key_mapping_json.map(str::trim).filter(|s| !s.is_empty()) {
            None => Vec::new(),
            Some(json) => parse_key_mapping(json)?,
        };
        Ok(Self {
            artifact_prefix: artifact_prefix.to_string(),
            default_group: default_group.to_string(),
            rules,
        })
    }

    /// The target of `key` (as stored), or [`Rejection::UnmappedKey`].
    pub fn resolve(&self, bucket: &str, key: &str) -> Result<Target, Rejection> {
        // rules are sorted longest prefix first: the first match is the longest.
        if let Some(rule) = self.rules.iter().find(|r| key.starts_with(&r.prefix)) {
            return Ok(Target {
                application: rule.application.clone(),
                deployment_group: rule
                    .deployment_group
                    .clone()
                    .unwrap_or_else(|| self.default_group.clone()),
            });
        }
        if let Some(rest) = key.strip_prefix(&self.artifact_prefix) {
            if let Some((app, file)) = rest.split_once('/') {
                if !app.is_empty() && !file.is_empty() && !file.ends_with('/') {
                    return Ok(Target {
                        application: app.to_string(),
                        deployment_group: self.default_group.clone(),
                    });
                }
            }
        }
        let mapping_hint = if self.rules.is_empty() {
            String::new()
        } else {
            let prefixes: Vec<String> = self
                .rules
                .iter()
                .map(|r| format!("{:?}", r.prefix))
                .collect();
            format!(
                ", nor under any KEY_MAPPING prefix ({})",
                prefixes.join(", ")
            )
        };
        Err(Rejection::UnmappedKey {
            bucket: bucket.to_string(),
            key: key.to_string(),
            artifact_prefix: self.artifact_prefix.clone(),
            mapping_hint,
        })
    }
}

fn parse_key_mapping(json: &str) -> Result<Vec<KeyRule>, KeyMappingError> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| KeyMappingError(format!("not valid JSON ({e}); expected a list like [{{\"prefix\":\"builds/shop/\",\"application\":\"shop\",\"deploymentGroup\":\"shop-prod\"}}]")))?;
    let items = value.as_array().ok_or_else(|| {
        KeyMappingError(
            "must be a JSON list of {\"prefix\",\"application\",\"deploymentGroup\"} objects"
                .into(),
        )
    })?;
    let mut rules = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let rule: KeyRule = serde_json::from_value(item.clone()).map_err(|e| {
            KeyMappingError(format!(
                "entry {i} is invalid ({e}); each entry is {{\"prefix\":..,\"application\":..,\"deploymentGroup\":..}} (deploymentGroup optional)"
            ))
        })?;
        if rule.prefix.is_empty() {
            return Err(KeyMappingError(format!("entry {i} has an empty prefix")));
        }
        if rule.application.trim().is_empty() {
            return Err(KeyMappingError(format!(
                "entry {i} (prefix {:?}) has an empty application",
                rule.prefix
            )));
        }
        if matches!(&rule.deployment_group, Some(g) if g.trim().is_empty()) {
            return Err(KeyMappingError(format!(
                "entry {i} (prefix {:?}) has an empty deploymentGroup; omit it to use DEFAULT_DEPLOYMENT_GROUP",
                rule.prefix
            )));
        }
        if let Some(j) = rules.iter().position(|r: &KeyRule| r.prefix == rule.prefix) {
            return Err(KeyMappingError(format!(
                "entries {j} and {i} have the same prefix {:?}; keep one",
                rule.prefix
            )));
        }
        rules.push(rule);
    }
    rules.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
    Ok(rules)
}

// ---------------------------------------------------------------------------
// Event kinds and object checks
// ---------------------------------------------------------------------------

/// What an S3 event says happened to the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectChange {
    Created,
    Deleted,
    /// Anything else (restore, tagging, ACL, ...): not handled.
    Other,
}

/// EventBridge `detail-type` of an `aws.s3` event.
pub fn eventbridge_change(detail_type: &str) -> ObjectChange {
    match detail_type {
        "Object Created" => ObjectChange::Created,
        "Object Deleted" => ObjectChange::Deleted,
        _ => ObjectChange::Other,
    }
}

/// Classic notification `eventName` (`ObjectCreated:Put`, `ObjectRemoved:Delete`,
/// `LifecycleExpiration:Delete`, ...; an `s3:` prefix is tolerated).
pub fn notification_change(event_name: &str) -> ObjectChange {
    let name = event_name.strip_prefix("s3:").unwrap_or(event_name);
    if name.starts_with("ObjectCreated:") {
        ObjectChange::Created
    } else if name.starts_with("ObjectRemoved:") || name.starts_with("LifecycleExpiration:") {
        ObjectChange::Deleted
    } else {
        ObjectChange::Other
    }
}

/// An uploaded object as an event describes it (key already decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedObject {
    pub bucket: String,
    pub key: String,
    /// `None` when the event does not say.
    pub size: Option<i64>,
    pub version: Option<String>,
    pub etag: Option<String>,
    /// S3's `sequencer`: the last resort for telling uploads apart.
    pub sequencer: Option<String>,
}

impl UploadedObject {
    /// Version id, without S3's literal `"null"` (objects written while
    /// versioning was off or suspended all share it, so it identifies nothing).
    pub fn real_version(&self) -> Option<&str> {
        self.version
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty() && *v != "null")
    }

    /// ETag without surrounding quotes.
    pub fn clean_etag(&self) -> Option<&str> {
        self.etag
            .as_deref()
            .map(|e| e.trim().trim_matches('"'))
            .filter(|e| !e.is_empty())
    }
}

/// Is `key` a zip bundle (`.zip`, any case)?
pub fn is_zip(key: &str) -> bool {
    let file = key.rsplit('/').next().unwrap_or(key);
    file.len() > 4 && file.to_ascii_lowercase().ends_with(".zip")
}

/// The S3 object checks: `.zip` (when `require_zip`) and not empty.
/// CodePipeline artifacts have no extension, so the pipeline path passes
/// `require_zip = false`.
pub fn check_object(obj: &UploadedObject, require_zip: bool) -> Result<(), Rejection> {
    check_key_shape(&obj.key)?;
    if let Some(size) = obj.size.filter(|s| !(0..=MAX_OBJECT_SIZE).contains(s)) {
        return Err(Rejection::InvalidEvent {
            kind: "S3".into(),
            problem: format!(
                "s3://{}/{} has size {size}, outside S3's 0..={MAX_OBJECT_SIZE} bytes; the event was not written by S3",
                obj.bucket,
                truncate_chars(&obj.key, 200)
            ),
        });
    }
    if require_zip && !is_zip(&obj.key) {
        return Err(Rejection::NotAZip {
            bucket: obj.bucket.clone(),
            key: obj.key.clone(),
        });
    }
    if obj.size == Some(0) {
        return Err(Rejection::EmptyObject {
            bucket: obj.bucket.clone(),
            key: obj.key.clone(),
        });
    }
    Ok(())
}

/// S3 object keys: at most 1,024 bytes of UTF-8 (Amazon S3 user guide,
/// "Naming Amazon S3 objects").
pub const MAX_KEY_BYTES: usize = 1024;
/// S3 objects: at most 5 TiB (Amazon S3 user guide, "Uploading objects").
pub const MAX_OBJECT_SIZE: i64 = 5 * 1024 * 1024 * 1024 * 1024;

/// Keys greenlight refuses whatever the mapping says: longer than S3 allows,
/// with control characters (they would reach logs and CodeDeploy verbatim),
/// or with `.` / `..` path segments (S3 keys are opaque, but the agent's
/// downloads and operators' tools treat keys as paths; the harsher reading).
pub fn check_key_shape(key: &str) -> Result<(), Rejection> {
    let shown = || truncate_chars(key, 200);
    if key.len() > MAX_KEY_BYTES {
        return Err(Rejection::InvalidKey {
            key: shown(),
            problem: format!(
                "it is {} bytes long, S3 keys are at most {MAX_KEY_BYTES} bytes; use a shorter key",
                key.len()
            ),
        });
    }
    if key.chars().any(char::is_control) {
        return Err(Rejection::InvalidKey {
            key: shown(),
            problem:
                "it contains control characters (newline, NUL, ...); rename the object without them"
                    .into(),
        });
    }
    if key
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(Rejection::InvalidKey {
            key: shown(),
            problem: "it has a \".\" or \"..\" path segment; greenlight refuses path traversal in keys, upload as <prefix><APP>/<file>.zip".into(),
        });
    }
    Ok(())
}

/// Human label of a revision: the key's file name without `.zip`.
pub fn revision_label(key: &str) -> String {
    let file = key.rsplit('/').next().unwrap_or(key);
    if is_zip(file) {
        file[..file.len() - 4].to_string()
    } else {
        file.to_string()
    }
}

// ---------------------------------------------------------------------------
// Deployment group gate
// ---------------------------------------------------------------------------

/// What GetDeploymentGroup says about a group, as plain strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupFacts {
    /// `deploymentStyle.deploymentType`: `BLUE_GREEN` | `IN_PLACE`.
    pub deployment_type: Option<String>,
    /// `deploymentStyle.deploymentOption`: `WITH_TRAFFIC_CONTROL` | `WITHOUT_TRAFFIC_CONTROL`.
    pub deployment_option: Option<String>,
    /// `blueGreenDeploymentConfiguration.deploymentReadyOption.actionOnTimeout`.
    pub ready_action_on_timeout: Option<String>,
    /// `loadBalancerInfo.targetGroupInfoList[].name`.
    pub target_groups: Vec<String>,
    /// `blueGreenDeploymentConfiguration.deploymentReadyOption.waitTimeInMinutes`.
    pub ready_wait_minutes: Option<i32>,
    /// `blueGreenDeploymentConfiguration.terminateBlueInstancesOnDeploymentSuccess.action`:
    /// `TERMINATE` | `KEEP_ALIVE`.
    pub termination_action: Option<String>,
    /// `...terminateBlueInstancesOnDeploymentSuccess.terminationWaitTimeInMinutes`.
    pub termination_wait_minutes: Option<i32>,
    /// `autoScalingGroups[].name`: the group's (blue) fleet before a deployment.
    pub auto_scaling_groups: Vec<String>,
}

/// The pipeline's configured deadlines (the deployment-watcher's
/// `DEPLOYMENT_TIMEOUT_SECONDS` and `POST_REROUTE_TIMEOUT_SECONDS`; the
/// template gives the trigger the same values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Applies from creation up to the point of no return.
    pub deployment_timeout_seconds: u32,
    /// Applies past the point of no return, counted from the deadline.
    pub post_reroute_timeout_seconds: u32,
}

/// The least time the reroute (AllowTraffic on green, BlockTraffic on blue)
/// takes: the blue termination wait must fit in the post-reroute bound after it.
pub const MIN_REROUTE_SECONDS: u32 = 300;

/// A group is gated when it is BLUE_GREEN with traffic control, waits in
/// Ready (`actionOnTimeout = STOP_DEPLOYMENT`) for the traffic validator, and
/// has a target group to move traffic on; and its waits fit the deadlines:
///
/// - the Ready wait (`deploymentReadyOption.waitTimeInMinutes`) fits in
///   `DeploymentTimeoutSeconds`: a longer wait could never run out, since the
///   deadline (which applies until the validator continues the deployment)
///   always comes first, so the group would promise a gate it cannot keep.
///   The deadline stopping a deployment at the Ready gate is safe either way
///   (blue still serves); the check keeps the two settings honest;
/// - the blue termination wait (`terminationWaitTimeInMinutes`, when the
///   action is TERMINATE) plus [`MIN_REROUTE_SECONDS`] fits in
///   `PostRerouteTimeoutSeconds`: past the point of no return greenlight never
///   stops a deployment, and a wait that cannot fit would always be reported
///   overdue.
///
/// A wait the group does not state is not checked (nothing to compare).
pub fn check_gated(
    target: &Target,
    facts: &GroupFacts,
    deadlines: &Deadlines,
) -> Result<(), Rejection> {
    let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "unset".to_string());
    let mut problems = Vec::new();
    if facts.deployment_type.as_deref() != Some("BLUE_GREEN") {
        problems.push(format!(
            "deploymentStyle.deploymentType is {}, it must be BLUE_GREEN",
            shown(&facts.deployment_type)
        ));
    }
    if facts.deployment_option.as_deref() != Some("WITH_TRAFFIC_CONTROL") {
        problems.push(format!(
            "deploymentStyle.deploymentOption is {}, it must be WITH_TRAFFIC_CONTROL",
            shown(&facts.deployment_option)
        ));
    }
    if facts.ready_action_on_timeout.as_deref() != Some("STOP_DEPLOYMENT") {
        problems.push(format!(
            "blueGreenDeploymentConfiguration.deploymentReadyOption.actionOnTimeout is {}, it must be STOP_DEPLOYMENT so the deployment waits in Ready for the traffic validator",
            shown(&facts.ready_action_on_timeout)
        ));
    }
    if facts.target_groups.iter().all(|t| t.trim().is_empty()) {
        problems.push(
            "loadBalancerInfo.targetGroupInfoList names no target group, the ALB target group is required".to_string(),
        );
    }
    let timeout = i64::from(deadlines.deployment_timeout_seconds);
    if let Some(minutes) = facts.ready_wait_minutes {
        let wait = i64::from(minutes) * 60;
        if wait > timeout {
            problems.push(format!(
                "Ready wait {minutes} min ({wait} s) > DeploymentTimeoutSeconds {timeout}: greenlight's deadline always stops a deployment nobody continued before CodeDeploy's Ready timeout can; set deploymentReadyOption.waitTimeInMinutes to at most {} or raise DeploymentTimeoutSeconds to at least {wait}",
                timeout / 60
            ));
        }
    }
    let terminates = facts.termination_action.as_deref() != Some("KEEP_ALIVE");
    if let (true, Some(minutes)) = (terminates, facts.termination_wait_minutes) {
        let wait = i64::from(minutes) * 60;
        let reroute = i64::from(MIN_REROUTE_SECONDS);
        let bound = i64::from(deadlines.post_reroute_timeout_seconds);
        if wait + reroute > bound {
            problems.push(format!(
                "blue termination wait {minutes} min ({wait} s) + {reroute} s to reroute > PostRerouteTimeoutSeconds {bound}: the deployment could not finish within the post-reroute bound; set terminateBlueInstancesOnDeploymentSuccess.terminationWaitTimeInMinutes to at most {} or raise PostRerouteTimeoutSeconds to at least {}",
                (bound - reroute).max(0) / 60,
                wait + reroute
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Rejection::GroupNotGated {
            application: target.application.clone(),
            deployment_group: target.deployment_group.clone(),
            problems,
        })
    }
}

// ---------------------------------------------------------------------------
// Execution name and input
// ---------------------------------------------------------------------------

/// What tells one revision of a key from another, in order of preference.
pub fn revision_identity(obj: &UploadedObject) -> Option<String> {
    if let Some(v) = obj.real_version() {
        return Some(format!("version:{v}"));
    }
    if let Some(e) = obj.clean_etag() {
        return Some(format!("etag:{e}"));
    }
    obj.sequencer
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| format!("sequencer:{s}"))
}

/// Deterministic Step Functions execution name:
/// `gl2-<8 hex of sha256(deployment group)>-<application>-<32 hex of
/// sha256(bucket, key, identity)>`, at most 80 characters of
/// `[A-Za-z0-9_-]`. `identity` is [`revision_identity`] for S3 events and
/// `codepipeline-job:<id>` for pipeline jobs, so the same event delivered
/// twice gives the same name (and StartExecution refuses a second
/// execution), while a new upload of the same key gives a new one.
///
/// The name says whose upload it carries: the application (readable) and
/// the deployment group (a tag), so the watcher's admission reads only the
/// executions of its own group ([`may_belong_to_group`]) instead of every
/// running execution of the state machine. The earlier format,
/// `gl-<application>-<hash>`, is still told apart (an execution started
/// before the upgrade), but an S3 event redelivered across the upgrade gets
/// a new name: that upload may then run twice (the same revision deployed
/// again, one after the other).
pub fn execution_name(
    application: &str,
    deployment_group: &str,
    bucket: &str,
    key: &str,
    identity: &str,
) -> String {
    let mut hasher = Sha256::new();
    // Length-prefixed fields: no two (bucket, key, identity) triples collide by concatenation.
    for part in [bucket, key, identity] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{NAME_PREFIX}{}-{}-{}",
        group_tag(deployment_group),
        name_app_part(application),
        &hex[..NAME_HASH_LEN]
    )
}

/// The prefix of [`execution_name`]'s names.
const NAME_PREFIX: &str = "gl2-";
/// The prefix of the earlier format, `gl-<application>-<hash>`.
const OLD_NAME_PREFIX: &str = "gl-";
/// Hex characters of the deployment group's tag in an execution name.
const NAME_GROUP_TAG_LEN: usize = 8;

/// The deployment group's tag in an execution name: the first 8 hex of
/// sha256 of its name (two groups sharing a tag only cost the admission a
/// read of each other's executions: their input still names the group).
fn group_tag(deployment_group: &str) -> String {
    let digest = Sha256::digest(deployment_group.as_bytes());
    digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..NAME_GROUP_TAG_LEN]
        .to_string()
}

/// The application as [`execution_name`] writes it: characters outside
/// `[A-Za-z0-9_-]` become `-`, at most [`NAME_APP_PART_LEN`] of them, `app`
/// when empty.
fn name_app_part(application: &str) -> String {
    name_app_part_of(application, NAME_APP_PART_LEN)
}

fn name_app_part_of(application: &str, max: usize) -> String {
    let app: String = application
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(max)
        .collect();
    if app.is_empty() {
        "app".to_string()
    } else {
        app
    }
}

/// `<application part>-<hash>` → the application part, when the hash is
/// [`NAME_HASH_LEN`] hex characters.
fn split_app_and_hash(rest: &str) -> Option<&str> {
    if !rest.is_ascii() || rest.len() < NAME_HASH_LEN + 2 {
        return None;
    }
    let (app_part, hash) = rest.split_at(rest.len() - NAME_HASH_LEN);
    let app_part = app_part.strip_suffix('-')?;
    hash.chars()
        .all(|c| c.is_ascii_hexdigit())
        .then_some(app_part)
}

/// Whether the execution `name` may carry an upload of `application`: a
/// name in [`execution_name`]'s format (or the earlier `gl-` one) names its
/// application, so another application's execution is told apart without
/// reading its input; a name in any other format may be anyone's.
pub fn may_belong_to_application(name: &str, application: &str) -> bool {
    if let Some(rest) = name.strip_prefix(NAME_PREFIX) {
        let after_tag = rest
            .get(NAME_GROUP_TAG_LEN..)
            .and_then(|r| r.strip_prefix('-'));
        return match after_tag.and_then(split_app_and_hash) {
            Some(app_part) => app_part == name_app_part(application),
            None => true,
        };
    }
    match name
        .strip_prefix(OLD_NAME_PREFIX)
        .and_then(split_app_and_hash)
    {
        Some(app_part) => app_part == name_app_part_of(application, OLD_NAME_APP_PART_LEN),
        None => true,
    }
}

/// Whether the execution `name` may carry an upload for `application` /
/// `deployment_group`: [`may_belong_to_application`], and for a name in
/// [`execution_name`]'s format, its group tag is the group's. The
/// deployment-watcher's admission reads only such executions; an
/// earlier-format name may be any group's.
pub fn may_belong_to_group(name: &str, application: &str, deployment_group: &str) -> bool {
    if !may_belong_to_application(name, application) {
        return false;
    }
    match name.strip_prefix(NAME_PREFIX) {
        Some(rest) if split_app_and_hash(rest).is_some() => rest
            .get(..NAME_GROUP_TAG_LEN)
            .is_none_or(|tag| tag == group_tag(deployment_group)),
        _ => true,
    }
}

/// Is `name` a valid Step Functions execution name for greenlight
/// (1..=80 characters of `[A-Za-z0-9_-]`)?
pub fn is_valid_execution_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_EXECUTION_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The execution input (`PipelineInput`) for an accepted upload.
pub fn pipeline_input(
    target: &Target,
    obj: &UploadedObject,
    label: String,
    uploaded_at: String,
    uploaded_at_ms: EpochMillis,
    source: Source,
) -> PipelineInput {
    PipelineInput {
        application: target.application.clone(),
        deployment_group: target.deployment_group.clone(),
        revision: Revision {
            bucket: obj.bucket.clone(),
            key: obj.key.clone(),
            version: obj.real_version().map(str::to_string),
            etag: obj.clean_etag().map(str::to_string),
            label,
        },
        uploaded_at,
        uploaded_at_ms,
        source,
        approval: None,
        bake_skip: None,
    }
}

/// The ARN of execution `name` of `state_machine_arn`
/// (`arn:<p>:states:<r>:<a>:stateMachine:<sm>` → `arn:<p>:states:<r>:<a>:execution:<sm>:<name>`).
/// Used when StartExecution answers ExecutionAlreadyExists (no ARN in the error).
pub fn execution_arn(state_machine_arn: &str, name: &str) -> Option<String> {
    let parts: Vec<&str> = state_machine_arn.split(':').collect();
    if parts.len() != 7 || parts[0] != "arn" || parts[2] != "states" || parts[5] != "stateMachine" {
        return None;
    }
    if parts[6].is_empty() || name.is_empty() {
        return None;
    }
    Some(format!(
        "{}:{}:{}:{}:{}:execution:{}:{}",
        parts[0], parts[1], parts[2], parts[3], parts[4], parts[6], name
    ))
}

// ---------------------------------------------------------------------------
// CodePipeline
// ---------------------------------------------------------------------------

/// The action's `UserParameters` JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserParameters {
    pub application: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_group: Option<String>,
    /// Revision label (what the green fleet's version endpoint reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `"required"`: wait for a human approval after the gate (`crate::options`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// `"skip"`: the emergency override that skips the bake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake: Option<String>,
}

/// Parses `UserParameters`; `Ok(None)` when absent or blank.
pub fn parse_user_parameters(raw: Option<&str>) -> Result<Option<UserParameters>, Rejection> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    // Only a JSON object: serde would also read a struct from a list
    // (`["shop"]` as application "shop"), found by tests/hostile.rs.
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| Rejection::InvalidUserParameters {
            problem: format!("{e} in {}", truncate_chars(raw, 200)),
        })?;
    if !value.is_object() {
        return Err(Rejection::InvalidUserParameters {
            problem: format!(
                "they must be a JSON object, not {}",
                truncate_chars(raw, 200)
            ),
        });
    }
    let params: UserParameters =
        serde_json::from_value(value).map_err(|e| Rejection::InvalidUserParameters {
            problem: format!("{e} in {}", truncate_chars(raw, 200)),
        })?;
    if params.application.trim().is_empty() {
        return Err(Rejection::InvalidUserParameters {
            problem: "application is empty".into(),
        });
    }
    if matches!(&params.deployment_group, Some(g) if g.trim().is_empty()) {
        return Err(Rejection::InvalidUserParameters {
            problem: "deploymentGroup is empty; omit it to use DEFAULT_DEPLOYMENT_GROUP".into(),
        });
    }
    Ok(Some(params))
}

/// Target of a pipeline job: from `UserParameters`, else the key mapping of
/// the input artifact's object key (its `<APP>/` convention part too).
pub fn pipeline_target(
    params: Option<&UserParameters>,
    mapping: &KeyMapping,
    bucket: &str,
    key: &str,
) -> Result<Target, Rejection> {
    match params {
        Some(p) => Ok(Target {
            application: p.application.clone(),
            deployment_group: p
                .deployment_group
                .clone()
                .unwrap_or_else(|| mapping.default_group.clone()),
        }),
        None => mapping.resolve(bucket, key),
    }
}

/// Label of a pipeline revision: `UserParameters.label`, else the input
/// artifact's `revision` (the source revision, e.g. a commit id), else the
/// artifact's file name.
pub fn pipeline_label(
    params: Option<&UserParameters>,
    artifact_revision: Option<&str>,
    key: &str,
) -> String {
    params
        .and_then(|p| p.label.clone())
        .filter(|l| !l.trim().is_empty())
        .or_else(|| {
            artifact_revision
                .filter(|r| !r.trim().is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| revision_label(key))
}

/// A continuation token that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid continuation token: {0}")]
pub struct TokenError(pub String);

/// Prefix of greenlight continuation tokens (versioned, so the format can change).
const TOKEN_PREFIX: &str = "greenlight/v1/";

fn check_execution_arn(arn: &str) -> Result<(), TokenError> {
    let parts: Vec<&str> = arn.split(':').collect();
    let ok = parts.len() == 8
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && parts[2] == "states"
        && parts[5] == "execution"
        && !parts[6].is_empty()
        && !parts[7].is_empty();
    if ok {
        Ok(())
    } else {
        Err(TokenError(format!(
            "{:?} is not a Step Functions execution ARN (arn:<partition>:states:<region>:<account>:execution:<stateMachine>:<name>)",
            truncate_chars(arn, 200)
        )))
    }
}

/// The continuation token for an execution: `greenlight/v1/<execution ARN>`.
pub fn encode_continuation_token(execution_arn: &str) -> Result<String, TokenError> {
    check_execution_arn(execution_arn)?;
    let token = format!("{TOKEN_PREFIX}{execution_arn}");
    if token.chars().count() > MAX_CONTINUATION_TOKEN_LEN {
        return Err(TokenError(format!(
            "it would be {} characters, CodePipeline allows {MAX_CONTINUATION_TOKEN_LEN}",
            token.chars().count()
        )));
    }
    Ok(token)
}

/// The execution ARN a continuation token carries.
pub fn decode_continuation_token(token: &str) -> Result<String, TokenError> {
    if token.chars().count() > MAX_CONTINUATION_TOKEN_LEN {
        return Err(TokenError(format!(
            "longer than {MAX_CONTINUATION_TOKEN_LEN} characters"
        )));
    }
    let arn = token.strip_prefix(TOKEN_PREFIX).ok_or_else(|| {
        TokenError(format!(
            "{:?} does not start with {TOKEN_PREFIX:?}",
            truncate_chars(token, 200)
        ))
    })?;
    check_execution_arn(arn)?;
    Ok(arn.to_string())
}

/// A Step Functions execution's status as DescribeExecution reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionStatus {
    Running,
    /// Failed and waiting for a redrive: not finished yet.
    PendingRedrive,
    Succeeded {
        output: Option<String>,
    },
    Failed {
        error: Option<String>,
        cause: Option<String>,
    },
    TimedOut {
        error: Option<String>,
        cause: Option<String>,
    },
    Aborted {
        error: Option<String>,
        cause: Option<String>,
    },
    /// A status this version does not know.
    Unknown(String),
}

/// What to answer a CodePipeline job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobDecision {
    /// PutJobSuccessResult with the same continuation token.
    Continue { summary: String },
    /// PutJobSuccessResult without a token: the action succeeded.
    Success { summary: String },
    /// PutJobFailureResult (JobFailed) with this message (≤ 5000 chars).
    Failure { message: String },
}

/// The pipeline's answer from an execution's status.
///
/// A SUCCEEDED execution whose output says the admission was `superseded`
/// ended in the "Superseded" Succeed state without deploying: a newer upload
/// for the same group replaced it. The revision this job carries was not
/// deployed, so the job fails with "superseded by <execution>".
pub fn job_decision(execution_name: &str, status: &ExecutionStatus) -> JobDecision {
    let failure = |what: &str, error: &Option<String>, cause: &Option<String>| {
        let mut msg = format!("greenlight execution {execution_name} {what}");
        if let Some(e) = error.as_deref().filter(|e| !e.is_empty()) {
            msg.push_str(&format!(": {e}"));
        }
        if let Some(c) = cause.as_deref().filter(|c| !c.is_empty()) {
            msg.push_str(&format!(": {c}"));
        }
        JobDecision::Failure {
            message: truncate_chars(&msg, MAX_JOB_FAILURE_MESSAGE_LEN),
        }
    };
    match status {
        ExecutionStatus::Running => JobDecision::Continue {
            summary: format!("greenlight execution {execution_name} is running"),
        },
        ExecutionStatus::PendingRedrive => JobDecision::Continue {
            summary: format!("greenlight execution {execution_name} is waiting for a redrive"),
        },
        ExecutionStatus::Succeeded { output } => match superseded_by(output.as_deref()) {
            Some((by_execution, by_key)) => JobDecision::Failure {
                message: truncate_chars(
                    &format!(
                        "superseded by {by_execution}: a newer upload ({by_key}) for the same deployment group replaced this revision before it was deployed, so it was not deployed (greenlight execution {execution_name})"
                    ),
                    MAX_JOB_FAILURE_MESSAGE_LEN,
                ),
            },
            None => JobDecision::Success {
                summary: truncate_chars(
                    &format!("greenlight execution {execution_name} deployed the revision"),
                    MAX_JOB_SUMMARY_LEN,
                ),
            },
        },
        ExecutionStatus::Failed { error, cause } => failure("failed", error, cause),
        ExecutionStatus::TimedOut { error, cause } => failure("timed out", error, cause),
        ExecutionStatus::Aborted { error, cause } => failure("was aborted", error, cause),
        ExecutionStatus::Unknown(s) => JobDecision::Failure {
            message: truncate_chars(
                &format!("greenlight execution {execution_name} has unknown status {s}"),
                MAX_JOB_FAILURE_MESSAGE_LEN,
            ),
        },
    }
}

/// `(byExecution, byKey)` when the execution output's admission says superseded.
fn superseded_by(output: Option<&str>) -> Option<(String, String)> {
    let value: serde_json::Value = serde_json::from_str(output?).ok()?;
    let admission = value.get("admission")?;
    if admission.get("decision")?.as_str()? != "superseded" {
        return None;
    }
    let text = |field: &str| {
        admission
            .get(field)
            .and_then(|v| v.as_str())
            .unwrap_or("unknown")
            .to_string()
    };
    Some((text("byExecution"), text("byKey")))
}

/// `s` cut to at most `max` characters (never inside a character), with `…`
/// as the last character when cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod bucket_tests {
    use super::*;

    #[test]
    fn only_the_configured_buckets_deploy() {
        let b = ArtifactBuckets::new("art", Some(" cp-store , ,other")).expect("valid");
        assert_eq!(b.pipeline_buckets, vec!["cp-store", "other"]);
        assert_eq!(b.check(UploadRoute::S3Event, "art", "k"), Ok(()));
        assert_eq!(b.check(UploadRoute::CodePipelineJob, "art", "k"), Ok(()));
        assert_eq!(
            b.check(UploadRoute::CodePipelineJob, "cp-store", "k"),
            Ok(())
        );
        let e = b.check(UploadRoute::S3Event, "cp-store", "k").unwrap_err();
        assert_eq!(e.error_type(), "ForeignBucket");
        let text = e.to_string();
        assert!(
            text.contains("s3://cp-store/k")
                && text.contains("\"art\"")
                && text.contains("ARTIFACT_BUCKET"),
            "{text}"
        );
        let e = b
            .check(UploadRoute::CodePipelineJob, "Art", "k")
            .unwrap_err();
        assert!(e.to_string().contains("PIPELINE_ARTIFACT_BUCKETS"), "{e}");
        assert!(ArtifactBuckets::new("  ", None).is_err());
    }

    #[test]
    fn user_parameters_must_be_an_object() {
        for raw in ["[\"shop\"]", "[\"shop\", \"prod\"]", "\"shop\"", "7"] {
            let e = parse_user_parameters(Some(raw)).unwrap_err();
            assert_eq!(e.error_type(), "InvalidUserParameters", "{raw}");
        }
    }

    #[test]
    fn hostile_key_shapes_are_invalid_keys() {
        for key in [
            "artifacts/shop/../x.zip".to_string(),
            "artifacts/./shop/x.zip".to_string(),
            "artifacts/shop/x\n.zip".to_string(),
            format!("artifacts/shop/{}.zip", "a".repeat(1100)),
        ] {
            let e = check_key_shape(&key).unwrap_err();
            assert_eq!(e.error_type(), "InvalidKey", "{key}");
        }
        assert!(check_key_shape("artifacts/shop/..x.zip").is_ok());
        assert!(check_key_shape("artifacts/shop/café 日本.zip").is_ok());
        let obj = UploadedObject {
            bucket: "b".into(),
            key: "artifacts/shop/x.zip".into(),
            size: Some(-1),
            version: None,
            etag: None,
            sequencer: None,
        };
        assert_eq!(
            check_object(&obj, true).unwrap_err().error_type(),
            "InvalidEvent"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(key: &str) -> UploadedObject {
        UploadedObject {
            bucket: "bkt".into(),
            key: key.into(),
            size: Some(10),
            version: Some("v1".into()),
            etag: Some("e1".into()),
            sequencer: None,
        }
    }

    fn mapping(json: Option<&str>) -> KeyMapping {
        KeyMapping::new("artifacts/", "prod", json).unwrap()
    }

    fn target(app: &str, group: &str) -> Target {
        Target {
            application: app.into(),
            deployment_group: group.into(),
        }
    }

    fn gated() -> GroupFacts {
        GroupFacts {
            deployment_type: Some("BLUE_GREEN".into()),
            deployment_option: Some("WITH_TRAFFIC_CONTROL".into()),
            ready_action_on_timeout: Some("STOP_DEPLOYMENT".into()),
            target_groups: vec!["tg".into()],
            ready_wait_minutes: Some(30),
            termination_action: Some("TERMINATE".into()),
            termination_wait_minutes: Some(60),
            auto_scaling_groups: vec!["asg".into()],
        }
    }

    const DEADLINES: Deadlines = Deadlines {
        deployment_timeout_seconds: 3600,
        post_reroute_timeout_seconds: 3 * 3600,
    };

    /// Defect 1 (issue 9): groups whose waits cannot fit the deadlines are
    /// rejected, naming the numbers.
    #[test]
    fn waits_that_cannot_fit_the_deadlines_are_named() {
        let t = target("shop", "prod");
        let facts = GroupFacts {
            ready_wait_minutes: Some(61),
            ..gated()
        };
        let msg = check_gated(&t, &facts, &DEADLINES).unwrap_err().to_string();
        assert!(
            msg.contains("Ready wait 61 min (3660 s) > DeploymentTimeoutSeconds 3600")
                && msg.contains("at most 60"),
            "{msg}"
        );
        let facts = GroupFacts {
            termination_wait_minutes: Some(180),
            ..gated()
        };
        let msg = check_gated(&t, &facts, &DEADLINES).unwrap_err().to_string();
        assert!(
            msg.contains("blue termination wait 180 min (10800 s) + 300 s to reroute > PostRerouteTimeoutSeconds 10800")
                && msg.contains("at most 175"),
            "{msg}"
        );
        // The largest waits that fit pass; KEEP_ALIVE has no termination wait.
        let facts = GroupFacts {
            ready_wait_minutes: Some(60),
            termination_wait_minutes: Some(175),
            ..gated()
        };
        assert!(check_gated(&t, &facts, &DEADLINES).is_ok());
        let facts = GroupFacts {
            termination_action: Some("KEEP_ALIVE".into()),
            termination_wait_minutes: Some(2880),
            ..gated()
        };
        assert!(check_gated(&t, &facts, &DEADLINES).is_ok());
    }

    // ---- key decoding

    #[test]
    fn form_decoding_plus_is_space_and_2b_is_plus() {
        assert_eq!(
            decode_key("a+b%2Bc.zip", KeyEncoding::FormUrlEncoded).unwrap(),
            "a b+c.zip"
        );
    }

    #[test]
    fn form_decoding_colon_slash_and_utf8() {
        assert_eq!(
            decode_key(
                "artifacts/shop/2024-05-01T12%3A00%3A00+build%2B42+caf%C3%A9.zip",
                KeyEncoding::FormUrlEncoded
            )
            .unwrap(),
            "artifacts/shop/2024-05-01T12:00:00 build+42 café.zip"
        );
        assert_eq!(
            decode_key("a%2Fb", KeyEncoding::FormUrlEncoded).unwrap(),
            "a/b"
        );
        assert_eq!(
            decode_key("%ED%95%9C%EA%B8%80.zip", KeyEncoding::FormUrlEncoded).unwrap(),
            "한글.zip"
        );
    }

    #[test]
    fn form_decoding_literal_percent_and_lowercase_hex() {
        // a literal % arrives as %25
        assert_eq!(
            decode_key("100%25+done%2b.zip", KeyEncoding::FormUrlEncoded).unwrap(),
            "100% done+.zip"
        );
        // a stray % that is no escape is kept
        assert_eq!(
            decode_key("50%zz.zip", KeyEncoding::FormUrlEncoded).unwrap(),
            "50%zz.zip"
        );
    }

    #[test]
    fn form_decoding_rejects_invalid_utf8() {
        let err = decode_key("bad%FF.zip", KeyEncoding::FormUrlEncoded).unwrap_err();
        assert_eq!(err.error_type(), "InvalidKey");
        assert!(err.to_string().contains("bad%FF.zip"));
    }

    #[test]
    fn verbatim_keeps_everything() {
        for k in [
            "artifacts/shop/2024-05-01T12:00:00 build+42 café.zip",
            "a+b.zip",
            "%2B%20%%%.zip",
        ] {
            assert_eq!(decode_key(k, KeyEncoding::Verbatim).unwrap(), k);
        }
    }

    #[test]
    fn both_forms_reach_the_same_stored_key() {
        let stored = "artifacts/shop/2024-05-01T12:00:00 build+42 café.zip";
        let classic = "artifacts/shop/2024-05-01T12%3A00%3A00+build%2B42+caf%C3%A9.zip";
        assert_eq!(
            decode_key(classic, KeyEncoding::FormUrlEncoded).unwrap(),
            decode_key(stored, KeyEncoding::Verbatim).unwrap()
        );
    }

    // ---- key mapping

    #[test]
    fn convention_maps_app_and_default_group() {
        let m = mapping(None);
        assert_eq!(
            m.resolve("b", "artifacts/shop/20240501-42.zip").unwrap(),
            target("shop", "prod")
        );
        // nested paths under the app are allowed
        assert_eq!(
            m.resolve("b", "artifacts/shop/2024/05/x.zip").unwrap(),
            target("shop", "prod")
        );
    }

    #[test]
    fn convention_rejects_keys_outside_prefix_or_without_app() {
        let m = mapping(None);
        for key in [
            "other/shop/x.zip",
            "artifacts/x.zip",
            "artifacts//x.zip",
            "artifacts/shop/",
            "artifacts/shop/dir/",
            "x.zip",
        ] {
            let err = m.resolve("b", key).unwrap_err();
            assert_eq!(err.error_type(), "UnmappedKey", "{key}");
            assert!(err.to_string().contains("artifacts/"), "{err}");
        }
    }

    #[test]
    fn empty_artifact_prefix_maps_top_level_folders() {
        let m = KeyMapping::new("", "prod", None).unwrap();
        assert_eq!(
            m.resolve("b", "shop/x.zip").unwrap(),
            target("shop", "prod")
        );
    }

    #[test]
    fn mapping_overrides_and_longest_prefix_wins() {
        let m = mapping(Some(
            r#"[{"prefix":"builds/","application":"generic","deploymentGroup":"g1"},
                {"prefix":"builds/shop/","application":"shop","deploymentGroup":"shop-blue"},
                {"prefix":"artifacts/shop/","application":"shop2"}]"#,
        ));
        assert_eq!(
            m.resolve("b", "builds/shop/x.zip").unwrap(),
            target("shop", "shop-blue")
        );
        assert_eq!(
            m.resolve("b", "builds/x.zip").unwrap(),
            target("generic", "g1")
        );
        // mapping wins over the convention; missing group = default
        assert_eq!(
            m.resolve("b", "artifacts/shop/x.zip").unwrap(),
            target("shop2", "prod")
        );
        // convention still applies to other keys
        assert_eq!(
            m.resolve("b", "artifacts/cart/x.zip").unwrap(),
            target("cart", "prod")
        );
        let err = m.resolve("b", "elsewhere/x.zip").unwrap_err();
        assert!(err.to_string().contains("KEY_MAPPING prefix"), "{err}");
        assert!(err.to_string().contains("\"builds/shop/\""), "{err}");
    }

    #[test]
    fn mapping_order_in_json_does_not_matter() {
        let a = mapping(Some(
            r#"[{"prefix":"a/","application":"x"},{"prefix":"a/b/","application":"y"}]"#,
        ));
        let b = mapping(Some(
            r#"[{"prefix":"a/b/","application":"y"},{"prefix":"a/","application":"x"}]"#,
        ));
        assert_eq!(a.resolve("b", "a/b/c.zip").unwrap().application, "y");
        assert_eq!(b.resolve("b", "a/b/c.zip").unwrap().application, "y");
    }

    #[test]
    fn blank_key_mapping_is_no_mapping() {
        assert!(mapping(Some("  ")).rules.is_empty());
        assert!(mapping(Some("[]")).rules.is_empty());
    }

    #[test]
    fn key_mapping_errors_name_the_problem() {
        let cases = [
            ("{not json", "not valid JSON"),
            (r#"{"prefix":"a/"}"#, "must be a JSON list"),
            (r#"[{"prefix":"a/"}]"#, "entry 0 is invalid"),
            (
                r#"[{"prefix":"a/","application":"x","deployment_group":"g"}]"#,
                "unknown field",
            ),
            (r#"[{"prefix":"","application":"x"}]"#, "empty prefix"),
            (
                r#"[{"prefix":"a/","application":" "}]"#,
                "empty application",
            ),
            (
                r#"[{"prefix":"a/","application":"x","deploymentGroup":""}]"#,
                "empty deploymentGroup",
            ),
            (
                r#"[{"prefix":"a/","application":"x"},{"prefix":"a/","application":"y"}]"#,
                "same prefix",
            ),
            (r#"[1]"#, "entry 0 is invalid"),
        ];
        for (json, expected) in cases {
            let err = KeyMapping::new("artifacts/", "prod", Some(json)).unwrap_err();
            assert!(err.0.contains(expected), "{json}: {}", err.0);
        }
    }

    #[test]
    fn empty_default_group_is_a_config_error() {
        let err = KeyMapping::new("artifacts/", " ", None).unwrap_err();
        assert!(err.0.contains("DEFAULT_DEPLOYMENT_GROUP"));
    }

    // ---- event kinds

    #[test]
    fn eventbridge_detail_types() {
        assert_eq!(eventbridge_change("Object Created"), ObjectChange::Created);
        assert_eq!(eventbridge_change("Object Deleted"), ObjectChange::Deleted);
        assert_eq!(
            eventbridge_change("Object Restore Completed"),
            ObjectChange::Other
        );
    }

    #[test]
    fn notification_event_names() {
        for n in [
            "ObjectCreated:Put",
            "ObjectCreated:Post",
            "ObjectCreated:Copy",
            "ObjectCreated:CompleteMultipartUpload",
            "s3:ObjectCreated:Put",
        ] {
            assert_eq!(notification_change(n), ObjectChange::Created, "{n}");
        }
        for n in [
            "ObjectRemoved:Delete",
            "ObjectRemoved:DeleteMarkerCreated",
            "LifecycleExpiration:Delete",
            "s3:ObjectRemoved:Delete",
        ] {
            assert_eq!(notification_change(n), ObjectChange::Deleted, "{n}");
        }
        for n in [
            "ObjectRestore:Completed",
            "ObjectTagging:Put",
            "",
            "s3:TestEvent",
        ] {
            assert_eq!(notification_change(n), ObjectChange::Other, "{n}");
        }
    }

    // ---- object checks

    #[test]
    fn zip_detection() {
        assert!(is_zip("a/b.zip"));
        assert!(is_zip("a/B.ZIP"));
        assert!(is_zip("x y+z.Zip"));
        assert!(!is_zip("a/b.zip/"));
        assert!(!is_zip("a/.zip"));
        assert!(!is_zip("a/b.tar.gz"));
        assert!(!is_zip("a/zip"));
        assert!(!is_zip("a.zip/b"));
    }

    #[test]
    fn check_object_rejections() {
        assert!(check_object(&obj("artifacts/a/b.zip"), true).is_ok());
        let e = check_object(&obj("artifacts/a/b.tgz"), true).unwrap_err();
        assert_eq!(e.error_type(), "NotAZip");
        assert!(e.to_string().contains("s3://bkt/artifacts/a/b.tgz"));
        // pipeline artifacts have no extension
        assert!(check_object(&obj("pipe/Build/AbC123"), false).is_ok());
        let mut empty = obj("artifacts/a/b.zip");
        empty.size = Some(0);
        let e = check_object(&empty, true).unwrap_err();
        assert_eq!(e.error_type(), "EmptyObject");
        assert_eq!(
            check_object(&empty, false).unwrap_err().error_type(),
            "EmptyObject"
        );
        let mut unknown_size = obj("artifacts/a/b.zip");
        unknown_size.size = None;
        assert!(check_object(&unknown_size, true).is_ok());
    }

    #[test]
    fn not_a_zip_is_checked_before_empty() {
        let mut o = obj("artifacts/a/b.txt");
        o.size = Some(0);
        assert_eq!(check_object(&o, true).unwrap_err().error_type(), "NotAZip");
    }

    #[test]
    fn labels() {
        assert_eq!(
            revision_label("artifacts/shop/20240501-42.zip"),
            "20240501-42"
        );
        assert_eq!(revision_label("a/b c+d é.ZIP"), "b c+d é");
        assert_eq!(revision_label("pipe/Build/AbC123"), "AbC123");
        assert_eq!(revision_label("x.zip"), "x");
    }

    #[test]
    fn version_and_etag_cleaning() {
        let mut o = obj("k.zip");
        o.version = Some("null".into());
        o.etag = Some("\"abc\"".into());
        assert_eq!(o.real_version(), None);
        assert_eq!(o.clean_etag(), Some("abc"));
        o.version = Some("".into());
        o.etag = Some("".into());
        assert_eq!(o.real_version(), None);
        assert_eq!(o.clean_etag(), None);
    }

    // ---- gate

    #[test]
    fn gated_group_passes() {
        assert!(check_gated(&target("a", "g"), &gated(), &DEADLINES).is_ok());
    }

    #[test]
    fn each_gate_problem_is_named() {
        let t = target("shop", "prod");
        let cases: Vec<(GroupFacts, &str)> = vec![
            (
                GroupFacts {
                    deployment_type: Some("IN_PLACE".into()),
                    ..gated()
                },
                "deploymentType is IN_PLACE, it must be BLUE_GREEN",
            ),
            (
                GroupFacts {
                    deployment_option: Some("WITHOUT_TRAFFIC_CONTROL".into()),
                    ..gated()
                },
                "deploymentOption is WITHOUT_TRAFFIC_CONTROL",
            ),
            (
                GroupFacts {
                    ready_action_on_timeout: Some("CONTINUE_DEPLOYMENT".into()),
                    ..gated()
                },
                "actionOnTimeout is CONTINUE_DEPLOYMENT, it must be STOP_DEPLOYMENT",
            ),
            (
                GroupFacts {
                    ready_action_on_timeout: None,
                    ..gated()
                },
                "actionOnTimeout is unset",
            ),
            (
                GroupFacts {
                    target_groups: vec![],
                    ..gated()
                },
                "names no target group",
            ),
        ];
        for (facts, expected) in cases {
            let err = check_gated(&t, &facts, &DEADLINES).unwrap_err();
            assert_eq!(err.error_type(), "GroupNotGated");
            let msg = err.to_string();
            assert!(msg.contains(expected), "{msg}");
            assert!(msg.contains("Create the deployment group"), "{msg}");
            assert!(
                msg.contains("\"prod\"") && msg.contains("\"shop\""),
                "{msg}"
            );
        }
    }

    #[test]
    fn all_gate_problems_are_listed_together() {
        let err = check_gated(&target("a", "g"), &GroupFacts::default(), &DEADLINES).unwrap_err();
        match err {
            Rejection::GroupNotGated { problems, .. } => assert_eq!(problems.len(), 4),
            other => panic!("{other:?}"),
        }
    }

    // ---- execution name

    #[test]
    fn execution_name_is_deterministic_valid_and_readable() {
        let a = execution_name("shop", "web", "bkt", "artifacts/shop/x.zip", "version:v1");
        let b = execution_name("shop", "web", "bkt", "artifacts/shop/x.zip", "version:v1");
        assert_eq!(a, b);
        assert!(a.starts_with("gl2-"), "{a}");
        assert!(a[4 + 8..].starts_with("-shop-"), "{a}");
        assert_eq!(a.len(), "gl2-".len() + 8 + "-shop-".len() + 32);
        assert!(is_valid_execution_name(&a));
    }

    #[test]
    fn an_execution_name_tells_its_application_apart() {
        let shop = execution_name("shop", "web", "bkt", "k.zip", "version:v1");
        let eu = execution_name("shop-eu", "web", "bkt", "k.zip", "version:v1");
        assert!(may_belong_to_application(&shop, "shop"));
        assert!(!may_belong_to_application(&shop, "shop-eu"));
        assert!(!may_belong_to_application(&eu, "shop"));
        assert!(may_belong_to_application(&eu, "shop-eu"));
        // Sanitized and truncated the same way as the name.
        let odd = "shop.example/checkout";
        assert!(may_belong_to_application(
            &execution_name(odd, "g", "b", "k", "i"),
            odd
        ));
        let long = "a".repeat(70);
        assert!(may_belong_to_application(
            &execution_name(&long, "g", "b", "k", "i"),
            &long
        ));
        assert!(may_belong_to_application(
            &execution_name("", "g", "b", "k", "i"),
            ""
        ));
        // The earlier format (executions started before the upgrade) still tells its application.
        let old = format!("gl-{}-{}", "shop", "0123456789abcdef0123456789abcdef");
        assert!(may_belong_to_application(&old, "shop"));
        assert!(!may_belong_to_application(&old, "billing"));
        let old_long = format!(
            "gl-{}-{}",
            "a".repeat(40),
            "0123456789abcdef0123456789abcdef"
        );
        assert!(may_belong_to_application(&old_long, &"a".repeat(70)));
        // Names in another format may be anyone's.
        for other in [
            "manual-run-1",
            "gl-shop",
            "gl-shop-not-a-hash",
            "gl-shop-ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
            "gl2-shop",
            "gl2-12345678-shop-not-a-hash",
        ] {
            assert!(may_belong_to_application(other, "billing"), "{other}");
            assert!(may_belong_to_group(other, "billing", "web"), "{other}");
        }
    }

    #[test]
    fn an_execution_name_tells_its_deployment_group_apart() {
        let web = execution_name("shop", "web", "bkt", "k.zip", "version:v1");
        let api = execution_name("shop", "api", "bkt", "k.zip", "version:v1");
        assert_ne!(web, api);
        assert!(may_belong_to_group(&web, "shop", "web"));
        assert!(!may_belong_to_group(&web, "shop", "api"));
        assert!(may_belong_to_group(&api, "shop", "api"));
        // Another application's never, whatever the group.
        assert!(!may_belong_to_group(&web, "billing", "web"));
        // An earlier-format name may be any group's of its application.
        let old = format!("gl-shop-{}", "0123456789abcdef0123456789abcdef");
        assert!(may_belong_to_group(&old, "shop", "api"));
        assert!(!may_belong_to_group(&old, "billing", "api"));
        // 50 groups of one application: each name is its own group's only.
        let names: Vec<String> = (0..50)
            .map(|i| execution_name("shop", &format!("group-{i:03}"), "b", "k", "i"))
            .collect();
        for (i, name) in names.iter().enumerate() {
            let own: Vec<usize> = (0..50)
                .filter(|j| may_belong_to_group(name, "shop", &format!("group-{j:03}")))
                .collect();
            assert_eq!(own, vec![i], "{name}");
        }
    }

    #[test]
    fn execution_name_differs_per_bucket_key_and_identity() {
        let base = execution_name("shop", "g", "bkt", "k.zip", "version:v1");
        assert_ne!(
            base,
            execution_name("shop", "g", "bkt2", "k.zip", "version:v1")
        );
        assert_ne!(
            base,
            execution_name("shop", "g", "bkt", "k2.zip", "version:v1")
        );
        assert_ne!(
            base,
            execution_name("shop", "g", "bkt", "k.zip", "version:v2")
        );
        // no concatenation ambiguity
        assert_ne!(
            execution_name("a", "g", "ab", "c", "d"),
            execution_name("a", "g", "a", "bc", "d")
        );
    }

    #[test]
    fn execution_name_sanitizes_and_bounds_the_application() {
        let long = "My App.with spaces/and:ünïcode".repeat(5);
        let n = execution_name(&long, &"g".repeat(200), "b", "k", "i");
        assert!(is_valid_execution_name(&n), "{n}");
        assert_eq!(n.len(), MAX_EXECUTION_NAME_LEN);
        assert!(n[13..].starts_with("My-App-with-spaces-and-"), "{n}");
        let n = execution_name("", "g", "b", "k", "i");
        assert!(n[12..].starts_with("-app-"), "{n}");
        assert!(is_valid_execution_name(&n));
    }

    #[test]
    fn execution_name_validation() {
        assert!(!is_valid_execution_name(""));
        assert!(!is_valid_execution_name("a b"));
        assert!(!is_valid_execution_name(&"a".repeat(81)));
        assert!(is_valid_execution_name(&"a".repeat(80)));
    }

    #[test]
    fn revision_identity_prefers_version_then_etag_then_sequencer() {
        let mut o = obj("k.zip");
        assert_eq!(revision_identity(&o).as_deref(), Some("version:v1"));
        o.version = Some("null".into());
        assert_eq!(revision_identity(&o).as_deref(), Some("etag:e1"));
        o.etag = None;
        o.sequencer = Some("0055AED6DCD90281E5".into());
        assert_eq!(
            revision_identity(&o).as_deref(),
            Some("sequencer:0055AED6DCD90281E5")
        );
        o.sequencer = None;
        assert_eq!(revision_identity(&o), None);
    }

    #[test]
    fn pipeline_input_carries_the_decoded_key_and_times() {
        let mut o = obj("artifacts/shop/a b+c.zip");
        o.etag = Some("\"e\"".into());
        let input = pipeline_input(
            &target("shop", "prod"),
            &o,
            revision_label(&o.key),
            "2024-05-01T12:00:00Z".into(),
            1_714_564_800_000,
            Source::S3 {
                event_id: Some("id".into()),
            },
        );
        assert_eq!(input.revision.key, "artifacts/shop/a b+c.zip");
        assert_eq!(input.revision.label, "a b+c");
        assert_eq!(input.revision.etag.as_deref(), Some("e"));
        assert_eq!(input.revision.version.as_deref(), Some("v1"));
        assert_eq!(input.uploaded_at_ms, 1_714_564_800_000);
        let json = serde_json::to_value(&input).unwrap();
        assert_eq!(json["uploadedAt"], "2024-05-01T12:00:00Z");
        assert_eq!(json["deploymentGroup"], "prod");
        assert_eq!(json["source"]["kind"], "s3");
    }

    #[test]
    fn execution_arn_from_state_machine_arn() {
        assert_eq!(
            execution_arn(
                "arn:aws:states:us-east-1:123456789012:stateMachine:greenlight",
                "gl-shop-abc"
            )
            .as_deref(),
            Some("arn:aws:states:us-east-1:123456789012:execution:greenlight:gl-shop-abc")
        );
        assert_eq!(
            execution_arn("arn:aws:states:us-east-1:1:activity:x", "n"),
            None
        );
        assert_eq!(execution_arn("nonsense", "n"), None);
        assert_eq!(
            execution_arn("arn:aws:states:us-east-1:1:stateMachine:sm", ""),
            None
        );
    }

    // ---- CodePipeline

    #[test]
    fn user_parameters() {
        assert_eq!(parse_user_parameters(None).unwrap(), None);
        assert_eq!(parse_user_parameters(Some("  ")).unwrap(), None);
        let p = parse_user_parameters(Some(r#"{"application":"shop","deploymentGroup":"g"}"#))
            .unwrap()
            .unwrap();
        assert_eq!(p.application, "shop");
        assert_eq!(p.deployment_group.as_deref(), Some("g"));
        let p = parse_user_parameters(Some(r#"{"application":"shop","label":"v1.2"}"#))
            .unwrap()
            .unwrap();
        assert_eq!(p.deployment_group, None);
        assert_eq!(p.label.as_deref(), Some("v1.2"));
        for bad in [
            "shop",
            r#"{"deploymentGroup":"g"}"#,
            r#"{"application":""}"#,
            r#"{"application":"a","deploymentGroup":" "}"#,
            r#"{"application":"a","group":"g"}"#,
        ] {
            let e = parse_user_parameters(Some(bad)).unwrap_err();
            assert_eq!(e.error_type(), "InvalidUserParameters", "{bad}");
            assert!(e.to_string().contains("\"application\""), "{e}");
        }
    }

    #[test]
    fn pipeline_target_from_params_or_mapping() {
        let m = mapping(Some(
            r#"[{"prefix":"pipe/","application":"shop","deploymentGroup":"pg"}]"#,
        ));
        let p = UserParameters {
            application: "cart".into(),
            deployment_group: None,
            label: None,
            approval: None,
            bake: None,
        };
        assert_eq!(
            pipeline_target(Some(&p), &m, "b", "pipe/x").unwrap(),
            target("cart", "prod")
        );
        assert_eq!(
            pipeline_target(None, &m, "b", "pipe/Build/x").unwrap(),
            target("shop", "pg")
        );
        assert_eq!(
            pipeline_target(None, &m, "b", "other/x")
                .unwrap_err()
                .error_type(),
            "UnmappedKey"
        );
    }

    #[test]
    fn pipeline_labels() {
        let p = UserParameters {
            application: "a".into(),
            deployment_group: None,
            label: Some("v9".into()),
            approval: None,
            bake: None,
        };
        assert_eq!(pipeline_label(Some(&p), Some("abc123"), "p/B/xyz"), "v9");
        assert_eq!(pipeline_label(None, Some("abc123"), "p/B/xyz"), "abc123");
        assert_eq!(pipeline_label(None, Some(" "), "p/B/xyz"), "xyz");
        assert_eq!(pipeline_label(None, None, "p/B/xyz"), "xyz");
    }

    #[test]
    fn continuation_token_round_trip() {
        let arn = "arn:aws:states:us-east-1:123456789012:execution:greenlight:gl-shop-abc";
        let token = encode_continuation_token(arn).unwrap();
        assert!(token.len() <= MAX_CONTINUATION_TOKEN_LEN);
        assert_eq!(decode_continuation_token(&token).unwrap(), arn);
    }

    #[test]
    fn continuation_token_validation() {
        assert!(encode_continuation_token("arn:aws:states:r:a:stateMachine:sm").is_err());
        assert!(decode_continuation_token("arn:aws:states:r:a:execution:sm:n").is_err());
        assert!(decode_continuation_token("greenlight/v1/garbage").is_err());
        assert!(
            decode_continuation_token("greenlight/v1/arn:aws:states:r:a:execution::n").is_err()
        );
        let long = format!(
            "greenlight/v1/arn:aws:states:r:a:execution:sm:{}",
            "n".repeat(2100)
        );
        assert!(decode_continuation_token(&long)
            .unwrap_err()
            .0
            .contains("longer than 2048"));
        let long_arn = format!("arn:aws:states:r:a:execution:sm:{}", "n".repeat(2100));
        assert!(encode_continuation_token(&long_arn)
            .unwrap_err()
            .0
            .contains("2048"));
    }

    #[test]
    fn decisions_running_and_pending_redrive_continue() {
        assert!(matches!(
            job_decision("n", &ExecutionStatus::Running),
            JobDecision::Continue { .. }
        ));
        assert!(matches!(
            job_decision("n", &ExecutionStatus::PendingRedrive),
            JobDecision::Continue { .. }
        ));
    }

    #[test]
    fn decision_succeeded_deployed() {
        let output = r#"{"application":"a","admission":{"decision":"proceed"},"restored":{}}"#;
        match job_decision(
            "gl-a-1",
            &ExecutionStatus::Succeeded {
                output: Some(output.into()),
            },
        ) {
            JobDecision::Success { summary } => assert!(summary.contains("gl-a-1")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            job_decision("n", &ExecutionStatus::Succeeded { output: None }),
            JobDecision::Success { .. }
        ));
        assert!(matches!(
            job_decision(
                "n",
                &ExecutionStatus::Succeeded {
                    output: Some("not json".into())
                }
            ),
            JobDecision::Success { .. }
        ));
    }

    #[test]
    fn decision_succeeded_but_superseded_is_a_failure() {
        let output = r#"{"admission":{"decision":"superseded","byExecution":"gl-a-newer","byKey":"artifacts/a/2.zip"}}"#;
        match job_decision(
            "gl-a-old",
            &ExecutionStatus::Succeeded {
                output: Some(output.into()),
            },
        ) {
            JobDecision::Failure { message } => {
                assert!(message.starts_with("superseded by gl-a-newer"), "{message}");
                assert!(message.contains("artifacts/a/2.zip"));
                assert!(message.contains("not deployed"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decision_failures_carry_error_and_cause() {
        let e = |s: &str| Some(s.to_string());
        let cases = [
            (
                ExecutionStatus::Failed {
                    error: e("ValidationFailed"),
                    cause: e("green i-1 answered 500"),
                },
                "failed: ValidationFailed: green i-1 answered 500",
            ),
            (
                ExecutionStatus::TimedOut {
                    error: None,
                    cause: None,
                },
                "timed out",
            ),
            (
                ExecutionStatus::Aborted {
                    error: e(""),
                    cause: e("stopped by operator"),
                },
                "was aborted: stopped by operator",
            ),
            (
                ExecutionStatus::Unknown("WEIRD".into()),
                "unknown status WEIRD",
            ),
        ];
        for (status, expected) in cases {
            match job_decision("gl-x", &status) {
                JobDecision::Failure { message } => {
                    assert!(message.contains(expected), "{message}");
                    assert!(message.contains("gl-x"));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn failure_message_is_bounded() {
        let status = ExecutionStatus::Failed {
            error: Some("E".into()),
            cause: Some("é".repeat(10_000)),
        };
        match job_decision("n", &status) {
            JobDecision::Failure { message } => {
                assert_eq!(message.chars().count(), MAX_JOB_FAILURE_MESSAGE_LEN);
                assert!(message.ends_with('…'));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn truncation() {
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abcd", 3), "ab…");
        assert_eq!(truncate_chars("ééé", 2), "é…");
        assert_eq!(truncate_chars("abc", 0), "");
    }

    #[test]
    fn error_types_are_stable() {
        let s = String::new;
        let all = [
            Rejection::NotAZip {
                bucket: s(),
                key: s(),
            },
            Rejection::EmptyObject {
                bucket: s(),
                key: s(),
            },
            Rejection::UnmappedKey {
                bucket: s(),
                key: s(),
                artifact_prefix: s(),
                mapping_hint: s(),
            },
            Rejection::DeleteEvent {
                bucket: s(),
                key: s(),
                what: s(),
            },
            Rejection::UnknownApplication {
                application: s(),
                detail: s(),
            },
            Rejection::UnknownDeploymentGroup {
                application: s(),
                deployment_group: s(),
                detail: s(),
            },
            Rejection::GroupNotGated {
                application: s(),
                deployment_group: s(),
                problems: vec![],
            },
            Rejection::InvalidKey {
                key: s(),
                problem: s(),
            },
            Rejection::InvalidUserParameters { problem: s() },
            Rejection::UnsupportedEvent { description: s() },
            Rejection::InvalidEvent {
                kind: s(),
                problem: s(),
            },
        ];
        let names: Vec<&str> = all.iter().map(Rejection::error_type).collect();
        assert_eq!(
            names,
            [
                "NotAZip",
                "EmptyObject",
                "UnmappedKey",
                "DeleteEvent",
                "UnknownApplication",
                "UnknownDeploymentGroup",
                "GroupNotGated",
                "InvalidKey",
                "InvalidUserParameters",
                "UnsupportedEvent",
                "InvalidEvent"
            ]
        );
    }

    #[test]
    fn unknown_group_message_points_to_the_readme() {
        let e = Rejection::UnknownDeploymentGroup {
            application: "shop".into(),
            deployment_group: "prod".into(),
            detail: "DeploymentGroupDoesNotExistException".into(),
        };
        assert!(e.to_string().contains("Create the deployment group"));
    }
}
