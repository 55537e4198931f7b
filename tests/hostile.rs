//! Hostile input, table-driven: bad inputs at every entry point of every
//! function, each built from an events/*.json fixture mutated per case.
//!
//! Every case asserts: the answer is a named error (the `errorType`, or for
//! a CodePipeline job the `errorType` of the job's failure answer), its
//! message contains what is wrong and how to fix it (fragments per case), and
//! no write reached AWS (every write operation of every client is a counting
//! sentinel that must stay at 0; any call without a rule panics in
//! aws-smithy-mocks, so an unexpected read fails the case too).
//!
//! Payloads that do not deserialize into a typed handler's request never
//! reach the handler: lambda_runtime 1.5 answers them itself
//! (`lambda_runtime::deserializer::DeserializeError`, message "failed to
//! deserialize the incoming data into the function's payload type: [path]
//! <serde error>"). Those rows are run through the same serde types and
//! recorded as `Runtime.Deserialize` with serde's message.
//!
//! The figures go to RELIABILITY.md (section `hostile`).

use aws_sdk_codedeploy::operation::get_deployment::GetDeploymentError;
use aws_sdk_codedeploy::operation::get_deployment_group::{
    GetDeploymentGroupError, GetDeploymentGroupOutput,
};
use aws_sdk_codedeploy::operation::list_deployments::ListDeploymentsError;
use aws_sdk_codedeploy::types::{
    BlueGreenDeploymentConfiguration, DeploymentGroupInfo, DeploymentOption, DeploymentReadyAction,
    DeploymentReadyOption, DeploymentStyle, DeploymentType, LoadBalancerInfo, TargetGroupInfo,
};
use aws_sdk_sfn::operation::list_executions::ListExecutionsOutput;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const EB_CREATED: &str = include_str!("../events/s3-eventbridge-object-created.json");
const EB_DELETED: &str = include_str!("../events/s3-eventbridge-object-deleted.json");
const NOTIFICATION_PUT: &str = include_str!("../events/s3-notification-put.json");
const PIPELINE_JOB: &str = include_str!("../events/codepipeline-job.json");
const PIPELINE_CONTINUATION: &str = include_str!("../events/codepipeline-job-continuation.json");
const CD_FAILURE: &str = include_str!("../events/codedeploy-state-change-failure.json");
const CD_HOOK: &str = include_str!("../events/codedeploy-lifecycle-hook.json");
const TASK_ADMIT: &str = include_str!("../events/task-admit.json");
const TASK_CREATE: &str = include_str!("../events/task-create.json");
const TASK_STATUS: &str = include_str!("../events/task-status.json");
const TASK_TUNE: &str = include_str!("../events/task-tune.json");
const TASK_RESTORE: &str = include_str!("../events/task-restore.json");
const TASK_VALIDATE: &str = include_str!("../events/task-validate.json");
const TASK_HANDLE: &str = include_str!("../events/task-handle-failure.json");

const SM_ARN: &str = "arn:aws:states:us-east-1:111122223333:stateMachine:greenlight-pipeline";
const BUCKET: &str = "greenlight-artifacts-111122223333";
const PIPELINE_BUCKET: &str = "codepipeline-us-east-1-111122223333";
/// The name the runtime's own deserialization failures are recorded under.
const RUNTIME_DESERIALIZE: &str = "Runtime.Deserialize";

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Entry {
    S3EventBridge,
    S3Notification,
    CodePipelineJob,
    CodeDeployStateChange,
    CodeDeployHook,
    TaskAdmit,
    TaskCreate,
    TaskStatus,
    TaskTune,
    TaskRestore,
    TaskValidate,
    TaskHandle,
}

impl Entry {
    fn label(self) -> &'static str {
        match self {
            Self::S3EventBridge => "deploy-trigger: S3 via EventBridge",
            Self::S3Notification => "deploy-trigger: S3 notification",
            Self::CodePipelineJob => "deploy-trigger: CodePipeline job",
            Self::CodeDeployStateChange => "failure-handler: CodeDeploy state-change event",
            Self::CodeDeployHook => "traffic-validator: CodeDeploy hook event",
            Self::TaskAdmit => "deployment-watcher: admit task",
            Self::TaskCreate => "deployment-watcher: create task",
            Self::TaskStatus => "deployment-watcher: status task",
            Self::TaskTune => "health-check-tuner: tune task",
            Self::TaskRestore => "health-check-tuner: restore task",
            Self::TaskValidate => "traffic-validator: validate task",
            Self::TaskHandle => "failure-handler: handle task",
        }
    }
}

/// What the payload is: JSON, or raw text that may not even be JSON.
enum Payload {
    Json(Value),
    Text(String),
}

struct Case {
    entry: Entry,
    name: &'static str,
    payload: Payload,
    /// Expected errorType.
    error_type: &'static str,
    /// Fragments the message must contain (what is wrong, how to fix it).
    says: &'static [&'static str],
}

fn fixture(json: &str) -> Value {
    serde_json::from_str(json).expect("fixture is JSON")
}

fn with(json: &str, f: impl FnOnce(&mut Value)) -> Payload {
    let mut v = fixture(json);
    f(&mut v);
    Payload::Json(v)
}

fn remove(v: &mut Value, pointer: &str, field: &str) {
    v.pointer_mut(pointer)
        .and_then(Value::as_object_mut)
        .expect("object to remove from")
        .remove(field);
}

fn set(v: &mut Value, pointer: &str, value: Value) {
    *v.pointer_mut(pointer).expect("field to set") = value;
}

const EB_KEY: &str = "/detail/object/key";
const N_KEY: &str = "/Records/0/s3/object/key";
const CP_DATA: &str = "/CodePipeline.job/data";
const CP_PARAMS: &str = "/CodePipeline.job/data/actionConfiguration/configuration/UserParameters";
const CP_S3: &str = "/CodePipeline.job/data/inputArtifacts/0/location/s3Location";
const CP_TOKEN: &str = "/CodePipeline.job/data/continuationToken";

fn cases() -> Vec<Case> {
    use Entry::*;
    let c = |entry: Entry,
             name: &'static str,
             payload: Payload,
             error_type: &'static str,
             says: &'static [&'static str]| Case {
        entry,
        name,
        payload,
        error_type,
        says,
    };
    let long_key = format!("artifacts/shop/{}.zip", "k".repeat(1100));
    let over_long_token = format!("greenlight/v1/{}", "x".repeat(3000));
    vec![
        // ---------------- S3 via EventBridge
        c(
            S3EventBridge,
            "malformed JSON",
            Payload::Text("{\"source\": \"aws.s3\", ".into()),
            RUNTIME_DESERIALIZE,
            &["EOF"],
        ),
        c(
            S3EventBridge,
            "wrong source",
            with(EB_CREATED, |v| set(v, "/source", json!("aws.ec2"))),
            "UnsupportedEvent",
            &["aws.ec2", "only aws.s3 is handled"],
        ),
        c(
            S3EventBridge,
            "other S3 detail-type",
            with(EB_CREATED, |v| {
                set(v, "/detail-type", json!("Object Restore Completed"))
            }),
            "UnsupportedEvent",
            &[
                "Object Restore Completed",
                "handles EventBridge \"Object Created\"",
            ],
        ),
        c(
            S3EventBridge,
            "delete event",
            Payload::Json(fixture(EB_DELETED)),
            "DeleteEvent",
            &["Object Deleted", "never undeploys"],
        ),
        c(
            S3EventBridge,
            "missing detail",
            with(EB_CREATED, |v| remove(v, "", "detail")),
            "InvalidEvent",
            &[
                "malformed EventBridge aws.s3 event",
                "missing field `detail`",
            ],
        ),
        c(
            S3EventBridge,
            "missing object key",
            with(EB_CREATED, |v| remove(v, "/detail/object", "key")),
            "InvalidEvent",
            &["missing field `key`"],
        ),
        c(
            S3EventBridge,
            "key of the wrong type",
            with(EB_CREATED, |v| set(v, EB_KEY, json!(42))),
            "InvalidEvent",
            &["invalid type"],
        ),
        c(
            S3EventBridge,
            "bucket missing",
            with(EB_CREATED, |v| remove(v, "/detail", "bucket")),
            "InvalidEvent",
            &["missing field `bucket`"],
        ),
        c(
            S3EventBridge,
            "another bucket",
            with(EB_CREATED, |v| {
                set(v, "/detail/bucket/name", json!("attacker-bucket"))
            }),
            "ForeignBucket",
            &["s3://attacker-bucket/", BUCKET, "ARTIFACT_BUCKET"],
        ),
        c(
            S3EventBridge,
            "bucket differing in case",
            with(EB_CREATED, |v| {
                set(v, "/detail/bucket/name", json!(BUCKET.to_uppercase()))
            }),
            "ForeignBucket",
            &["Upload to"],
        ),
        c(
            S3EventBridge,
            "not a zip",
            with(EB_CREATED, |v| {
                set(v, EB_KEY, json!("artifacts/shop/build.tar.gz"))
            }),
            "NotAZip",
            &["not a .zip bundle", "Upload the build as"],
        ),
        c(
            S3EventBridge,
            "empty object",
            with(EB_CREATED, |v| set(v, "/detail/object/size", json!(0))),
            "EmptyObject",
            &["is empty", "upload it again"],
        ),
        c(
            S3EventBridge,
            "negative size",
            with(EB_CREATED, |v| set(v, "/detail/object/size", json!(-5))),
            "InvalidEvent",
            &["outside S3's", "not written by S3"],
        ),
        c(
            S3EventBridge,
            "oversized object (over S3's 5 TiB)",
            with(EB_CREATED, |v| {
                set(v, "/detail/object/size", json!(6_000_000_000_000_i64))
            }),
            "InvalidEvent",
            &["outside S3's"],
        ),
        c(
            S3EventBridge,
            "oversized key (over 1024 bytes)",
            with(EB_CREATED, |v| set(v, EB_KEY, json!(long_key.clone()))),
            "InvalidKey",
            &["S3 keys are at most 1024 bytes", "shorter key"],
        ),
        c(
            S3EventBridge,
            "../ key",
            with(EB_CREATED, |v| {
                set(v, EB_KEY, json!("artifacts/shop/../../etc/passwd.zip"))
            }),
            "InvalidKey",
            &["path segment", "upload as"],
        ),
        c(
            S3EventBridge,
            "./ key",
            with(EB_CREATED, |v| {
                set(v, EB_KEY, json!("artifacts/./shop/x.zip"))
            }),
            "InvalidKey",
            &["path segment"],
        ),
        c(
            S3EventBridge,
            "control characters in the key",
            with(EB_CREATED, |v| {
                set(v, EB_KEY, json!("artifacts/shop/x\n\u{0}.zip"))
            }),
            "InvalidKey",
            &["control characters", "rename the object"],
        ),
        c(
            S3EventBridge,
            "key outside the prefix",
            with(EB_CREATED, |v| set(v, EB_KEY, json!("uploads/shop/x.zip"))),
            "UnmappedKey",
            &["matches no deployment target", "add a KEY_MAPPING entry"],
        ),
        c(
            S3EventBridge,
            "key directly under the prefix",
            with(EB_CREATED, |v| set(v, EB_KEY, json!("artifacts/x.zip"))),
            "UnmappedKey",
            &["<prefix><APP>/<file>.zip"],
        ),
        c(
            S3EventBridge,
            "unicode key, unknown application",
            with(EB_CREATED, |v| {
                set(v, EB_KEY, json!("artifacts/ショップ/ビルド 42.zip"))
            }),
            "UnknownApplication",
            &[
                "\"ショップ\" does not exist",
                "create it, or fix the key's <APP> part",
            ],
        ),
        c(
            S3EventBridge,
            "URL-encoded key taken verbatim, unknown application",
            with(EB_CREATED, |v| {
                set(v, EB_KEY, json!("artifacts/sh%6Fp/x.zip"))
            }),
            "UnknownApplication",
            &["sh%6Fp"],
        ),
        c(
            S3EventBridge,
            "no version, etag or sequencer",
            with(EB_CREATED, |v| {
                for f in ["version-id", "etag", "sequencer"] {
                    remove(v, "/detail/object", f)
                }
            }),
            "InvalidEvent",
            &["no version-id, etag or sequencer"],
        ),
        c(
            S3EventBridge,
            "not an object at all",
            Payload::Json(json!(["aws.s3"])),
            "UnsupportedEvent",
            &["handles EventBridge"],
        ),
        // ---------------- S3 notification
        c(
            S3Notification,
            "malformed JSON",
            Payload::Text("{\"Records\": [".into()),
            RUNTIME_DESERIALIZE,
            &["EOF"],
        ),
        c(
            S3Notification,
            "wrapped in SQS (wrong eventSource)",
            with(NOTIFICATION_PUT, |v| {
                set(v, "/Records/0/eventSource", json!("aws:sqs"))
            }),
            "UnsupportedEvent",
            &["aws:sqs", "route S3 to this function directly"],
        ),
        c(
            S3Notification,
            "empty Records",
            with(NOTIFICATION_PUT, |v| set(v, "/Records", json!([]))),
            "InvalidEvent",
            &["Records is empty"],
        ),
        c(
            S3Notification,
            "Records not a list",
            with(NOTIFICATION_PUT, |v| set(v, "/Records", json!({"s3": {}}))),
            "InvalidEvent",
            &["malformed S3 notification"],
        ),
        c(
            S3Notification,
            "missing s3.object",
            with(NOTIFICATION_PUT, |v| remove(v, "/Records/0/s3", "object")),
            "InvalidEvent",
            &["record 0", "missing field `object`"],
        ),
        c(
            S3Notification,
            "delete event",
            with(NOTIFICATION_PUT, |v| {
                set(v, "/Records/0/eventName", json!("ObjectRemoved:Delete"))
            }),
            "DeleteEvent",
            &["ObjectRemoved:Delete", "never undeploys"],
        ),
        c(
            S3Notification,
            "undecodable %-escapes",
            with(NOTIFICATION_PUT, |v| {
                set(v, N_KEY, json!("artifacts/shop/%FF%FE.zip"))
            }),
            "InvalidKey",
            &["do not decode to UTF-8"],
        ),
        c(
            S3Notification,
            "URL-encoded ../",
            with(NOTIFICATION_PUT, |v| {
                set(v, N_KEY, json!("artifacts/shop/%2E%2E/x.zip"))
            }),
            "InvalidKey",
            &["path segment"],
        ),
        c(
            S3Notification,
            "`+` is a space: unknown application",
            with(NOTIFICATION_PUT, |v| {
                set(v, N_KEY, json!("artifacts/no+such+app/x.zip"))
            }),
            "UnknownApplication",
            &["\"no such app\" does not exist"],
        ),
        c(
            S3Notification,
            "encoded control character",
            with(NOTIFICATION_PUT, |v| {
                set(v, N_KEY, json!("artifacts/shop/x%0A.zip"))
            }),
            "InvalidKey",
            &["control characters"],
        ),
        c(
            S3Notification,
            "another bucket",
            with(NOTIFICATION_PUT, |v| {
                set(v, "/Records/0/s3/bucket/name", json!("attacker-bucket"))
            }),
            "ForeignBucket",
            &["s3://attacker-bucket/", "ARTIFACT_BUCKET"],
        ),
        c(
            S3Notification,
            "a batch with one bad record starts nothing",
            with(NOTIFICATION_PUT, |v| {
                let mut bad = v["Records"][0].clone();
                bad["s3"]["object"]["key"] = json!("artifacts/shop/x.exe");
                v["Records"].as_array_mut().expect("list").push(bad);
            }),
            "NotAZip",
            &["x.exe"],
        ),
        c(
            S3Notification,
            "unknown deployment group (KEY_MAPPING names it)",
            with(NOTIFICATION_PUT, |v| {
                set(v, N_KEY, json!("mapped/ghost/x.zip"))
            }),
            "UnknownDeploymentGroup",
            &["\"ghost-group\" does not exist", "create it as described"],
        ),
        c(
            S3Notification,
            "group without the Ready wait",
            with(NOTIFICATION_PUT, |v| {
                set(v, N_KEY, json!("mapped/ungated/x.zip"))
            }),
            "GroupNotGated",
            &[
                "CONTINUE_DEPLOYMENT",
                "it must be STOP_DEPLOYMENT",
                "Fix it as described",
            ],
        ),
        c(
            S3Notification,
            "oversized key",
            with(NOTIFICATION_PUT, |v| set(v, N_KEY, json!(long_key.clone()))),
            "InvalidKey",
            &["at most 1024 bytes"],
        ),
        // ---------------- CodePipeline job (answered with PutJobFailureResult; errorType of the answer)
        c(
            CodePipelineJob,
            "malformed JSON",
            Payload::Text("{\"CodePipeline.job\": {\"id\": ".into()),
            RUNTIME_DESERIALIZE,
            &["EOF"],
        ),
        c(
            CodePipelineJob,
            "UserParameters not JSON",
            with(PIPELINE_JOB, |v| {
                set(v, CP_PARAMS, json!("{application: shop"))
            }),
            "InvalidUserParameters",
            &["UserParameters are invalid", "Use JSON like"],
        ),
        c(
            CodePipelineJob,
            "UserParameters with an extra field",
            with(PIPELINE_JOB, |v| {
                set(
                    v,
                    CP_PARAMS,
                    json!("{\"application\":\"shop\",\"deployment_group\":\"x\"}"),
                )
            }),
            "InvalidUserParameters",
            &["unknown field `deployment_group`", "Use JSON like"],
        ),
        c(
            CodePipelineJob,
            "UserParameters without application",
            with(PIPELINE_JOB, |v| {
                set(v, CP_PARAMS, json!("{\"deploymentGroup\":\"shop-prod\"}"))
            }),
            "InvalidUserParameters",
            &["missing field `application`"],
        ),
        c(
            CodePipelineJob,
            "UserParameters with an empty application",
            with(PIPELINE_JOB, |v| {
                set(v, CP_PARAMS, json!("{\"application\":\"  \"}"))
            }),
            "InvalidUserParameters",
            &["application is empty"],
        ),
        c(
            CodePipelineJob,
            "UserParameters a list",
            with(PIPELINE_JOB, |v| set(v, CP_PARAMS, json!("[\"shop\"]"))),
            "InvalidUserParameters",
            &["must be a JSON object"],
        ),
        c(
            CodePipelineJob,
            "UserParameters with an empty group",
            with(PIPELINE_JOB, |v| {
                set(
                    v,
                    CP_PARAMS,
                    json!("{\"application\":\"shop\",\"deploymentGroup\":\"\"}"),
                )
            }),
            "InvalidUserParameters",
            &["deploymentGroup is empty", "omit it"],
        ),
        c(
            CodePipelineJob,
            "no input artifact",
            with(PIPELINE_JOB, |v| {
                set(v, &format!("{CP_DATA}/inputArtifacts"), json!([]))
            }),
            "InvalidEvent",
            &["no input artifact", "give it the build output as input"],
        ),
        c(
            CodePipelineJob,
            "missing bucketName",
            with(PIPELINE_JOB, |v| remove(v, CP_S3, "bucketName")),
            "InvalidEvent",
            &["bucketName is missing"],
        ),
        c(
            CodePipelineJob,
            "missing objectKey",
            with(PIPELINE_JOB, |v| remove(v, CP_S3, "objectKey")),
            "InvalidEvent",
            &["objectKey is missing"],
        ),
        c(
            CodePipelineJob,
            "another bucket",
            with(PIPELINE_JOB, |v| {
                set(v, &format!("{CP_S3}/bucketName"), json!("attacker-bucket"))
            }),
            "ForeignBucket",
            &["s3://attacker-bucket/", "PIPELINE_ARTIFACT_BUCKETS"],
        ),
        c(
            CodePipelineJob,
            "../ object key",
            with(PIPELINE_JOB, |v| {
                set(
                    v,
                    &format!("{CP_S3}/objectKey"),
                    json!("shop-pipeline/../../x"),
                )
            }),
            "InvalidKey",
            &["path segment"],
        ),
        c(
            CodePipelineJob,
            "unknown application",
            with(PIPELINE_JOB, |v| {
                set(v, CP_PARAMS, json!("{\"application\":\"ghost\"}"))
            }),
            "UnknownApplication",
            &["\"ghost\" does not exist"],
        ),
        c(
            CodePipelineJob,
            "unknown deployment group",
            with(PIPELINE_JOB, |v| {
                set(
                    v,
                    CP_PARAMS,
                    json!("{\"application\":\"shop\",\"deploymentGroup\":\"ghost-group\"}"),
                )
            }),
            "UnknownDeploymentGroup",
            &["\"ghost-group\" does not exist"],
        ),
        c(
            CodePipelineJob,
            "group without the Ready wait",
            with(PIPELINE_JOB, |v| {
                set(
                    v,
                    CP_PARAMS,
                    json!("{\"application\":\"shop\",\"deploymentGroup\":\"ungated\"}"),
                )
            }),
            "GroupNotGated",
            &["STOP_DEPLOYMENT"],
        ),
        c(
            CodePipelineJob,
            "over-long continuation token",
            with(PIPELINE_CONTINUATION, |v| {
                set(v, CP_TOKEN, json!(over_long_token.clone()))
            }),
            "InvalidContinuationToken",
            &[
                "longer than 2048 characters",
                "not written by this deploy-trigger",
            ],
        ),
        c(
            CodePipelineJob,
            "foreign continuation token",
            with(PIPELINE_CONTINUATION, |v| {
                set(v, CP_TOKEN, json!("other-tool/v3/abc"))
            }),
            "InvalidContinuationToken",
            &["does not start with \"greenlight/v1/\""],
        ),
        c(
            CodePipelineJob,
            "token with a non-execution ARN",
            with(PIPELINE_CONTINUATION, |v| {
                set(v, CP_TOKEN, json!("greenlight/v1/arn:aws:s3:::bucket/key"))
            }),
            "InvalidContinuationToken",
            &["not a Step Functions execution ARN"],
        ),
        c(
            CodePipelineJob,
            "job without id (cannot be answered)",
            with(PIPELINE_JOB, |v| remove(v, "/CodePipeline.job", "id")),
            "InvalidEvent",
            &["CodePipeline.job.id is missing"],
        ),
        c(
            CodePipelineJob,
            "job data of the wrong type",
            with(PIPELINE_JOB, |v| set(v, CP_DATA, json!("x"))),
            "InvalidEvent",
            &[
                "malformed CodePipeline job event",
                "CodePipeline's Lambda invoke job",
            ],
        ),
        // ---------------- CodeDeploy state-change events (failure-handler)
        c(
            CodeDeployStateChange,
            "no deploymentId",
            with(CD_FAILURE, |v| remove(v, "/detail", "deploymentId")),
            "InvalidInput",
            &["no detail.deploymentId"],
        ),
        c(
            CodeDeployStateChange,
            "detail missing its fields",
            with(CD_FAILURE, |v| set(v, "/detail", json!({}))),
            "InvalidInput",
            &["invalid input"],
        ),
        c(
            CodeDeployStateChange,
            "not an event at all",
            Payload::Json(json!({"hello": "world"})),
            "InvalidInput",
            &["expected a state-machine task request"],
        ),
        c(
            CodeDeployStateChange,
            "a JSON string",
            Payload::Json(json!("aws.codedeploy")),
            "InvalidInput",
            &["invalid input"],
        ),
        // ---------------- CodeDeploy hook events (traffic-validator)
        c(
            CodeDeployHook,
            "empty DeploymentId",
            with(CD_HOOK, |v| set(v, "/DeploymentId", json!(""))),
            "InvalidInput",
            &["invalid input"],
        ),
        c(
            CodeDeployHook,
            "no hook execution id",
            with(CD_HOOK, |v| remove(v, "", "LifecycleEventHookExecutionId")),
            RUNTIME_DESERIALIZE,
            &["did not match any variant"],
        ),
        c(
            CodeDeployHook,
            "malformed JSON",
            Payload::Text("{\"DeploymentId\": ".into()),
            RUNTIME_DESERIALIZE,
            &["EOF"],
        ),
        // ---------------- deployment-watcher tasks
        c(
            TaskAdmit,
            "unknown action",
            with(TASK_ADMIT, |v| set(v, "/action", json!("explode"))),
            RUNTIME_DESERIALIZE,
            &["unknown variant `explode`", "expected one of"],
        ),
        c(
            TaskAdmit,
            "missing pipeline",
            with(TASK_ADMIT, |v| remove(v, "", "pipeline")),
            RUNTIME_DESERIALIZE,
            &["missing field `pipeline`"],
        ),
        c(
            TaskAdmit,
            "unknown deployment group",
            Payload::Json(fixture(TASK_ADMIT)),
            "DeploymentGroupNotFound",
            &["shop-bluegreen"],
        ),
        c(
            TaskCreate,
            "executionName of the wrong type",
            with(TASK_CREATE, |v| set(v, "/executionName", json!(7))),
            RUNTIME_DESERIALIZE,
            &["invalid type"],
        ),
        c(
            TaskCreate,
            "revision without a key",
            with(TASK_CREATE, |v| remove(v, "/pipeline/revision", "key")),
            RUNTIME_DESERIALIZE,
            &["missing field `key`"],
        ),
        c(
            TaskStatus,
            "no created deployment",
            with(TASK_STATUS, |v| remove(v, "/pipeline", "deployment")),
            "InvalidInput",
            &["$.deployment"],
        ),
        c(
            TaskStatus,
            "unknown deployment",
            Payload::Json(fixture(TASK_STATUS)),
            "DeploymentNotFound",
            &["d-7Q2KJ3X1A"],
        ),
        c(
            TaskStatus,
            "malformed JSON",
            Payload::Text("{\"action\": \"status\",".into()),
            RUNTIME_DESERIALIZE,
            &["EOF"],
        ),
        // ---------------- health-check-tuner tasks
        c(
            TaskTune,
            "unknown deployment group",
            Payload::Json(fixture(TASK_TUNE)),
            "DeploymentGroupNotFound",
            &["shop-bluegreen"],
        ),
        c(
            TaskTune,
            "unknown action",
            with(TASK_TUNE, |v| set(v, "/action", json!("detune"))),
            RUNTIME_DESERIALIZE,
            &["unknown variant `detune`", "expected"],
        ),
        c(
            TaskRestore,
            "missing executionName",
            with(TASK_RESTORE, |v| remove(v, "", "executionName")),
            RUNTIME_DESERIALIZE,
            &["missing field `executionName`"],
        ),
        // ---------------- traffic-validator tasks
        c(
            TaskValidate,
            "unknown action",
            with(TASK_VALIDATE, |v| set(v, "/action", json!("restore"))),
            "InvalidInput",
            &["invalid input"],
        ),
        c(
            TaskValidate,
            "no created deployment",
            with(TASK_VALIDATE, |v| remove(v, "/pipeline", "deployment")),
            "InvalidInput",
            &["invalid input"],
        ),
        // ---------------- failure-handler tasks
        c(
            TaskHandle,
            "unknown action",
            with(TASK_HANDLE, |v| set(v, "/action", json!("explode"))),
            "InvalidInput",
            &["state-machine task request does not parse"],
        ),
        c(
            TaskHandle,
            "missing pipeline",
            with(TASK_HANDLE, |v| remove(v, "", "pipeline")),
            "InvalidInput",
            &["invalid input"],
        ),
        c(
            TaskHandle,
            "malformed JSON",
            Payload::Text("{\"action\": \"handle\"".into()),
            RUNTIME_DESERIALIZE,
            &["EOF"],
        ),
    ]
}

// ---------------------------------------------------------------------------
// Mocks: reads per case, every write a sentinel
// ---------------------------------------------------------------------------

fn meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

macro_rules! sentinel {
    ($op:expr, $err:ty) => {
        mock!($op).then_error(|| {
            <$err>::generic(meta("WriteNotAllowed", "a hostile input reached a write"))
        })
    };
}

/// Counting sentinels for every write operation greenlight's functions have.
fn write_sentinels() -> Vec<(&'static str, Rule)> {
    use aws_sdk_autoscaling::operation as asg;
    use aws_sdk_codedeploy::operation as cd;
    use aws_sdk_codepipeline::operation as cp;
    use aws_sdk_elasticloadbalancingv2::operation as elb;
    use aws_sdk_s3::operation as s3;
    use aws_sdk_sfn::operation as sfn;
    use aws_sdk_sns::operation as sns;
    vec![
        ("StartExecution", sentinel!(aws_sdk_sfn::Client::start_execution, sfn::start_execution::StartExecutionError)),
        ("StopExecution", sentinel!(aws_sdk_sfn::Client::stop_execution, sfn::stop_execution::StopExecutionError)),
        ("CreateDeployment", sentinel!(aws_sdk_codedeploy::Client::create_deployment, cd::create_deployment::CreateDeploymentError)),
        ("ContinueDeployment", sentinel!(aws_sdk_codedeploy::Client::continue_deployment, cd::continue_deployment::ContinueDeploymentError)),
        ("StopDeployment", sentinel!(aws_sdk_codedeploy::Client::stop_deployment, cd::stop_deployment::StopDeploymentError)),
        ("UpdateDeploymentGroup", sentinel!(aws_sdk_codedeploy::Client::update_deployment_group, cd::update_deployment_group::UpdateDeploymentGroupError)),
        ("PutLifecycleEventHookExecutionStatus", sentinel!(aws_sdk_codedeploy::Client::put_lifecycle_event_hook_execution_status, cd::put_lifecycle_event_hook_execution_status::PutLifecycleEventHookExecutionStatusError)),
        ("ModifyTargetGroup", sentinel!(aws_sdk_elasticloadbalancingv2::Client::modify_target_group, elb::modify_target_group::ModifyTargetGroupError)),
        ("ModifyTargetGroupAttributes", sentinel!(aws_sdk_elasticloadbalancingv2::Client::modify_target_group_attributes, elb::modify_target_group_attributes::ModifyTargetGroupAttributesError)),
        ("AddTags", sentinel!(aws_sdk_elasticloadbalancingv2::Client::add_tags, elb::add_tags::AddTagsError)),
        ("RemoveTags", sentinel!(aws_sdk_elasticloadbalancingv2::Client::remove_tags, elb::remove_tags::RemoveTagsError)),
        ("DeleteAutoScalingGroup", sentinel!(aws_sdk_autoscaling::Client::delete_auto_scaling_group, asg::delete_auto_scaling_group::DeleteAutoScalingGroupError)),
        ("UpdateAutoScalingGroup", sentinel!(aws_sdk_autoscaling::Client::update_auto_scaling_group, asg::update_auto_scaling_group::UpdateAutoScalingGroupError)),
        ("Publish", sentinel!(aws_sdk_sns::Client::publish, sns::publish::PublishError)),
        ("PutObject", sentinel!(aws_sdk_s3::Client::put_object, s3::put_object::PutObjectError)),
        ("DeleteObject", sentinel!(aws_sdk_s3::Client::delete_object, s3::delete_object::DeleteObjectError)),
        ("PutJobSuccessResult", sentinel!(aws_sdk_codepipeline::Client::put_job_success_result, cp::put_job_success_result::PutJobSuccessResultError)),
    ]
}

/// The trigger's one allowed answer to a job it rejects: PutJobFailureResult
/// (CodePipeline requires an answer; it changes no deployment). Counted.
fn job_failure_answer() -> Rule {
    mock!(aws_sdk_codepipeline::Client::put_job_failure_result).then_output(|| {
        aws_sdk_codepipeline::operation::put_job_failure_result::PutJobFailureResultOutput::builder(
        )
        .build()
    })
}

fn group_output(ready: DeploymentReadyAction) -> GetDeploymentGroupOutput {
    GetDeploymentGroupOutput::builder()
        .deployment_group_info(
            DeploymentGroupInfo::builder()
                .deployment_style(
                    DeploymentStyle::builder()
                        .deployment_type(DeploymentType::BlueGreen)
                        .deployment_option(DeploymentOption::WithTrafficControl)
                        .build(),
                )
                .blue_green_deployment_configuration(
                    BlueGreenDeploymentConfiguration::builder()
                        .deployment_ready_option(
                            DeploymentReadyOption::builder()
                                .action_on_timeout(ready)
                                .build(),
                        )
                        .build(),
                )
                .load_balancer_info(
                    LoadBalancerInfo::builder()
                        .target_group_info_list(TargetGroupInfo::builder().name("shop-tg").build())
                        .build(),
                )
                .build(),
        )
        .build()
}

/// GetDeploymentGroup: application "shop" exists with a gated "shop-prod"
/// and an "ungated" group (Ready wait continues); everything else is missing.
fn group_reads() -> Vec<Rule> {
    vec![
        mock!(aws_sdk_codedeploy::Client::get_deployment_group)
            .match_requests(|r| r.application_name() == Some("shop") && r.deployment_group_name() == Some("shop-prod"))
            .then_output(|| group_output(DeploymentReadyAction::StopDeployment)),
        mock!(aws_sdk_codedeploy::Client::get_deployment_group)
            .match_requests(|r| r.application_name() == Some("shop") && r.deployment_group_name() == Some("ungated"))
            .then_output(|| group_output(DeploymentReadyAction::ContinueDeployment)),
        mock!(aws_sdk_codedeploy::Client::get_deployment_group)
            .match_requests(|r| r.application_name() == Some("shop"))
            .then_error(|| {
                GetDeploymentGroupError::DeploymentGroupDoesNotExistException(
                    aws_sdk_codedeploy::types::error::DeploymentGroupDoesNotExistException::builder()
                        .message("No Deployment Group found for name: shop-bluegreen")
                        .meta(meta("DeploymentGroupDoesNotExistException", "No Deployment Group found"))
                        .build(),
                )
            }),
        // The upload's tags (deploy-trigger reads its approval / bake requests): none.
        mock!(aws_sdk_s3::Client::get_object_tagging).then_output(|| {
            aws_sdk_s3::operation::get_object_tagging::GetObjectTaggingOutput::builder()
                .set_tag_set(Some(Vec::new()))
                .build()
                .expect("tagging output")
        }),
        mock!(aws_sdk_codedeploy::Client::get_deployment_group).then_error(|| {
            GetDeploymentGroupError::ApplicationDoesNotExistException(
                aws_sdk_codedeploy::types::error::ApplicationDoesNotExistException::builder()
                    .message("No application found")
                    .meta(meta("ApplicationDoesNotExistException", "No application found"))
                    .build(),
            )
        }),
    ]
}

/// Other reads the task handlers make before they can reject: no executions,
/// a group that does not exist, a deployment that does not exist.
fn task_reads() -> Vec<Rule> {
    vec![
        mock!(aws_sdk_sfn::Client::list_executions).then_output(|| {
            ListExecutionsOutput::builder()
                .set_executions(Some(vec![]))
                .build()
                .expect("list executions output")
        }),
        mock!(aws_sdk_codedeploy::Client::list_deployments).then_error(|| {
            ListDeploymentsError::DeploymentGroupDoesNotExistException(
                aws_sdk_codedeploy::types::error::DeploymentGroupDoesNotExistException::builder()
                    .message("No Deployment Group found for name: shop-bluegreen")
                    .meta(meta(
                        "DeploymentGroupDoesNotExistException",
                        "No Deployment Group found for name: shop-bluegreen",
                    ))
                    .build(),
            )
        }),
        mock!(aws_sdk_codedeploy::Client::get_deployment).then_error(|| {
            GetDeploymentError::DeploymentDoesNotExistException(
                aws_sdk_codedeploy::types::error::DeploymentDoesNotExistException::builder()
                    .message("The deployment d-7Q2KJ3X1A could not be found.")
                    .meta(meta(
                        "DeploymentDoesNotExistException",
                        "The deployment d-7Q2KJ3X1A could not be found.",
                    ))
                    .build(),
            )
        }),
    ]
}

struct World {
    writes: Vec<(&'static str, Rule)>,
    job_answer: Rule,
    reads: Vec<Rule>,
}

impl World {
    fn new() -> Self {
        let mut reads = group_reads();
        reads.extend(task_reads());
        Self {
            writes: write_sentinels(),
            job_answer: job_failure_answer(),
            reads,
        }
    }

    fn rules(&self) -> Vec<&Rule> {
        let mut all: Vec<&Rule> = self.reads.iter().collect();
        all.extend(self.writes.iter().map(|(_, r)| r));
        all.push(&self.job_answer);
        all
    }

    fn codedeploy(&self) -> aws_sdk_codedeploy::Client {
        mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, self.rules())
    }
    fn sfn(&self) -> aws_sdk_sfn::Client {
        mock_client!(aws_sdk_sfn, RuleMode::MatchAny, self.rules())
    }
    fn codepipeline(&self) -> aws_sdk_codepipeline::Client {
        mock_client!(aws_sdk_codepipeline, RuleMode::MatchAny, self.rules())
    }
    fn elbv2(&self) -> aws_sdk_elasticloadbalancingv2::Client {
        mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::MatchAny,
            self.rules()
        )
    }
    fn ec2(&self) -> aws_sdk_ec2::Client {
        mock_client!(aws_sdk_ec2, RuleMode::MatchAny, self.rules())
    }
    fn autoscaling(&self) -> aws_sdk_autoscaling::Client {
        mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, self.rules())
    }
    fn sns(&self) -> aws_sdk_sns::Client {
        mock_client!(aws_sdk_sns, RuleMode::MatchAny, self.rules())
    }
    fn s3(&self) -> aws_sdk_s3::Client {
        mock_client!(aws_sdk_s3, RuleMode::MatchAny, self.rules())
    }

    /// Names of the write operations that were called.
    fn writes_called(&self) -> Vec<&'static str> {
        self.writes
            .iter()
            .filter(|(_, r)| r.num_calls() > 0)
            .map(|(name, _)| *name)
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Running one case
// ---------------------------------------------------------------------------

/// (errorType, message) of the answer, or `None` when the input was accepted.
type Outcome = Option<(String, String)>;

fn from_diagnostic(d: Diagnostic) -> Outcome {
    Some((d.error_type, d.error_message))
}

/// Parses `payload` into the handler's request type as lambda_runtime does
/// (serde_json from the raw bytes), or answers the runtime's rejection.
fn parse<T: serde::de::DeserializeOwned>(payload: &Payload) -> Result<T, Outcome> {
    let parsed = match payload {
        Payload::Json(v) => serde_json::from_value(v.clone()),
        Payload::Text(t) => serde_json::from_str(t),
    };
    parsed.map_err(|e| {
        Some((
            RUNTIME_DESERIALIZE.to_string(),
            format!(
                "failed to deserialize the incoming data into the function's payload type: {e}"
            ),
        ))
    })
}

fn event<T>(payload: T) -> LambdaEvent<T> {
    LambdaEvent::new(payload, Context::default())
}

async fn run_trigger(payload: &Payload, w: &World) -> Outcome {
    let request: deploy_trigger::Request = match parse(payload) {
        Ok(r) => r,
        Err(o) => return o,
    };
    let config = deploy_trigger::Config::new(
        SM_ARN,
        BUCKET,
        Some(PIPELINE_BUCKET),
        "artifacts/",
        "shop-prod",
        Some(r#"[{"prefix":"mapped/ghost/","application":"shop","deploymentGroup":"ghost-group"},{"prefix":"mapped/ungated/","application":"shop","deploymentGroup":"ungated"}]"#),
    )
    .expect("trigger config");
    let deps = deploy_trigger::Deps {
        sfn: w.sfn(),
        s3: w.s3(),
        codedeploy: w.codedeploy(),
        codepipeline: w.codepipeline(),
        config,
    };
    use deploy_trigger::Response as R;
    match deploy_trigger::handler(event(request), &deps).await {
        Err(e) => from_diagnostic(e.into()),
        Ok(R::Rejected {
            error_type,
            message,
            ..
        })
        | Ok(R::Failed {
            error_type,
            message,
            ..
        })
        | Ok(R::Unanswered {
            error_type,
            message,
            ..
        }) => Some((error_type, message)),
        Ok(_) => None,
    }
}

async fn run_watcher(payload: &Payload, w: &World) -> Outcome {
    let request: deployment_watcher::Request = match parse(payload) {
        Ok(r) => r,
        Err(o) => return o,
    };
    let config = deployment_watcher::Config {
        state_machine_arn: SM_ARN.to_string(),
        deployment_config_name: "CodeDeployDefault.OneAtATime".to_string(),
        deployment_timeout_seconds: 3600,
        post_reroute_timeout_seconds: 10800,
        min_wait_seconds: 5,
        max_wait_seconds: 60,
        max_event_wait_seconds: 3600,
        ignore_application_stop_failures: false,
    };
    let deps =
        deployment_watcher::Deps::from_clients(w.codedeploy(), w.sfn(), w.autoscaling(), config);
    deployment_watcher::handler(event(request), &deps)
        .await
        .err()
        .and_then(|e| from_diagnostic(e.into()))
}

async fn run_tuner(payload: &Payload, w: &World) -> Outcome {
    let request: health_check_tuner::Request = match parse(payload) {
        Ok(r) => r,
        Err(o) => return o,
    };
    let deps = health_check_tuner::Deps {
        codedeploy: w.codedeploy(),
        elbv2: w.elbv2(),
        config: health_check_tuner::Config::default(),
    };
    health_check_tuner::handler(event(request), &deps)
        .await
        .err()
        .and_then(|e| from_diagnostic(e.into()))
}

async fn run_validator(payload: &Payload, w: &World) -> Outcome {
    let request: traffic_validator::Request = match parse(payload) {
        Ok(r) => r,
        Err(o) => return o,
    };
    let config = traffic_validator::Config {
        probe: greenlight_core::probe::ProbeConfig::default(),
        bake: Vec::new(),
    };
    let deps = traffic_validator::Deps::from_clients(w.codedeploy(), w.ec2(), w.elbv2(), config);
    traffic_validator::handler(event(request), &deps)
        .await
        .err()
        .and_then(|e| from_diagnostic(e.into()))
}

async fn run_failure_handler(payload: &Payload, w: &World) -> Outcome {
    let request: failure_handler::Request = match parse(payload) {
        Ok(r) => r,
        Err(o) => return o,
    };
    let deps = failure_handler::Deps {
        codedeploy: w.codedeploy(),
        autoscaling: w.autoscaling(),
        elbv2: w.elbv2(),
        sns: w.sns(),
        s3: w.s3(),
        codepipeline: w.codepipeline(),
        sfn: w.sfn(),
        config: failure_handler::Config {
            topic_arn: "arn:aws:sns:us-east-1:111122223333:greenlight".into(),
            report_bucket: BUCKET.into(),
            report_prefix: "greenlight-reports/".into(),
            state_machine_arn: Some(SM_ARN.to_string()),
            rollback_wait_seconds: 0,
        },
    };
    failure_handler::handler(event(request), &deps)
        .await
        .err()
        .and_then(|e| from_diagnostic(e.into()))
}

async fn run(case: &Case, w: &World) -> Outcome {
    use Entry::*;
    match case.entry {
        S3EventBridge | S3Notification | CodePipelineJob => run_trigger(&case.payload, w).await,
        TaskAdmit | TaskCreate | TaskStatus => run_watcher(&case.payload, w).await,
        TaskTune | TaskRestore => run_tuner(&case.payload, w).await,
        CodeDeployHook | TaskValidate => run_validator(&case.payload, w).await,
        CodeDeployStateChange | TaskHandle => run_failure_handler(&case.payload, w).await,
    }
}

/// Names a greenlight answer may carry: the core's list, the trigger's
/// rejections, and the runtime's own deserialization failure.
fn is_named(error_type: &str) -> bool {
    const REJECTIONS: &[&str] = &[
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
        "InvalidEvent",
        "ForeignBucket",
    ];
    greenlight_core::errors::ALL.contains(&error_type)
        || REJECTIONS.contains(&error_type)
        || error_type == RUNTIME_DESERIALIZE
}

#[derive(Default)]
struct Figures {
    cases: usize,
    named: usize,
    no_side_effect: usize,
    runtime: usize,
    names: BTreeMap<String, usize>,
}

#[tokio::test(flavor = "current_thread")]
async fn every_bad_input_gets_a_named_error_and_no_side_effect() {
    let cases = cases();
    let mut failures: Vec<String> = Vec::new();
    let mut figures: BTreeMap<Entry, Figures> = BTreeMap::new();
    for case in &cases {
        let w = World::new();
        let outcome = run(case, &w).await;
        let writes = w.writes_called();
        let f = figures.entry(case.entry).or_default();
        f.cases += 1;
        let label = format!("[{}] {}", case.entry.label(), case.name);
        match &outcome {
            None => failures.push(format!("{label}: accepted, expected {}", case.error_type)),
            Some((error_type, message)) => {
                let mut ok = true;
                if error_type != case.error_type {
                    failures.push(format!(
                        "{label}: errorType {error_type}, expected {} ({message})",
                        case.error_type
                    ));
                    ok = false;
                }
                for fragment in case.says {
                    if !message.contains(fragment) {
                        failures.push(format!("{label}: message lacks {fragment:?}: {message}"));
                        ok = false;
                    }
                }
                if ok && is_named(error_type) {
                    f.named += 1;
                    *f.names.entry(error_type.clone()).or_default() += 1;
                }
                if error_type == RUNTIME_DESERIALIZE {
                    f.runtime += 1;
                }
            }
        }
        if writes.is_empty() {
            f.no_side_effect += 1;
        } else {
            failures.push(format!("{label}: wrote {writes:?}"));
        }
        // A job is answered at most once, and only with a failure.
        if w.job_answer.num_calls() > 1 {
            failures.push(format!(
                "{label}: PutJobFailureResult called {} times",
                w.job_answer.num_calls()
            ));
        }
    }
    assert!(
        cases.len() >= 60,
        "at least 60 bad inputs, have {}",
        cases.len()
    );
    let body = report(&figures, cases.len(), failures.len());
    println!("{body}");
    if failures.is_empty() {
        let path = greenlight_e2e::reliability::write_section("hostile", &body)
            .expect("write RELIABILITY.md");
        println!("wrote {}", path.display());
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn report(figures: &BTreeMap<Entry, Figures>, total: usize, failed: usize) -> String {
    let mut out = String::new();
    out.push_str("## Hostile input\n\n");
    out.push_str(&format!(
        "Written by `tests/hostile.rs` (`cargo test --workspace -- every_bad_input`). {total} bad inputs built from `events/*.json`, mutated per case; each must get a named error whose message says what is wrong and how to fix it, with no write to AWS (every write operation is a counting mock that must stay at 0). Failed cases in this run: {failed}.\n\n"
    ));
    out.push_str("| Entry point | Cases | Named error, message checked | No side effect | Of which rejected by the runtime's deserialization | errorTypes |\n| --- | ---: | ---: | ---: | ---: | --- |\n");
    for (entry, f) in figures {
        let names: Vec<String> = f.names.iter().map(|(n, c)| format!("{n} ×{c}")).collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            entry.label(),
            f.cases,
            f.named,
            f.no_side_effect,
            f.runtime,
            names.join(", ")
        ));
    }
    let sum = |g: fn(&Figures) -> usize| figures.values().map(g).sum::<usize>();
    out.push_str(&format!(
        "| **all** | **{}** | **{}** | **{}** | **{}** | |\n",
        sum(|f| f.cases),
        sum(|f| f.named),
        sum(|f| f.no_side_effect),
        sum(|f| f.runtime)
    ));
    out.push_str(&format!(
        "\n`{RUNTIME_DESERIALIZE}`: the payload does not deserialize into the typed handler's request, so lambda_runtime answers `lambda_runtime::deserializer::DeserializeError` with serde's message (it names the field and the expected values, not a fix) before any greenlight code runs. CodePipeline jobs are answered with PutJobFailureResult (the one write allowed, at most once), and a job that cannot be answered still returns success (`unanswered`) so no failed-invocation record carries its credentials.\n"
    ));
    out
}
