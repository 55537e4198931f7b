//! CodePipeline's Lambda invoke action, as seen from the function: jobs.
//!
//! What AWS does, and what this does:
//! - a pipeline action of provider `Lambda` creates a job and invokes the
//!   function asynchronously with a `CodePipeline.job` event (job `id`,
//!   `accountId`, `data.actionConfiguration.configuration.{FunctionName,
//!   UserParameters}`, `data.inputArtifacts[].location.s3Location
//!   {bucketName, objectKey}`, `data.outputArtifacts`, temporary
//!   `data.artifactCredentials`, and `data.continuationToken` when continuing);
//! - the function answers with `PutJobSuccessResult` or `PutJobFailureResult`
//!   (JSON 1.1, `X-Amz-Target: CodePipeline_20150709.<Op>`); an unknown job is
//!   `JobNotFoundException`, a second answer `InvalidJobStateException`, a
//!   malformed job id or request `ValidationException`;
//! - a success with a `continuationToken` keeps the action in progress: after a
//!   while CodePipeline invokes the function again with a NEW job whose data
//!   carries that token; the action ends with the first answer that has no
//!   token (success) or with a failure (`failureDetails.message`);
//! - CodePipeline invokes the function asynchronously (Lambda developer
//!   guide, "Using AWS Lambda with AWS CodePipeline"), with the function's
//!   `EventInvokeConfig` (retries, on-failure destination:
//!   [`crate::lambda_host::async_invoke`]), so it does not see the
//!   function's error or return: a job not answered within 20 minutes fails
//!   (the timer starts again with each continuation job), and the action
//!   fails once it has run 24 hours whatever its jobs do (DESIGN.md's review
//!   of CodePipeline's documented job timers; AWS CodePipeline user guide,
//!   "Invoke an AWS Lambda function in a pipeline": the function must call
//!   PutJobSuccessResult or PutJobFailureResult, otherwise the action times
//!   out). Both timers are simulated time (scaled). The failure message names
//!   what the function did (errored, or returned without answering).
//!
//! The action's outcome is read by following the chain of continuation jobs
//! from any job of it ([`CodePipelineJobs::job_view`], and the front server's
//! `GET /_greenlight/codepipeline/jobs/{id}`).
//!
//! Not emulated: pipelines, stages and their executions (moto has those APIs
//! for definitions only), output artifacts.

use crate::clock::TimeScale;
use crate::lambda_host::async_invoke::AsyncInvoker;
use crate::lambda_host::{LambdaHost, PIPELINE_TRIGGER};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// What a test (or the CLI) supplies to start a job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartJob {
    /// The input artifact's S3 location.
    pub bucket: String,
    pub key: String,
    /// The action's `UserParameters` (omitted from the event when None).
    #[serde(default)]
    pub user_parameters: Option<String>,
    /// The function to invoke (default: template.yaml's PipelineTriggerFunction).
    #[serde(default)]
    pub function_name: Option<String>,
    /// The input artifact's revision (S3 version id), `null` when None.
    #[serde(default)]
    pub revision: Option<String>,
    #[serde(default)]
    pub pipeline_name: Option<String>,
}

/// A job's status (`JobStatus` in the CodePipeline API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    InProgress,
    Succeeded,
    Failed,
}

/// `FailureDetails` of `PutJobFailureResult`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureDetails {
    #[serde(rename = "type")]
    pub failure_type: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_execution_id: Option<String>,
}

/// One job and, through the chain, the action's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub job_id: String,
    pub status: JobStatus,
    /// The token this job was invoked with (None for the first job).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_continuation_token: Option<String>,
    /// The token the function answered with (a continuation follows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_details: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_details: Option<FailureDetails>,
    /// The action: every job of the chain and its final state.
    pub action: ActionView,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionView {
    /// InProgress until the chain's last job is answered without a token.
    pub status: JobStatus,
    pub job_ids: Vec<String>,
    pub final_job_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_details: Option<FailureDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_details: Option<Value>,
}

#[derive(Debug, Clone)]
struct Job {
    start: StartJob,
    function_name: String,
    input_token: Option<String>,
    status: JobStatus,
    answered_token: Option<String>,
    execution_details: Option<Value>,
    failure_details: Option<FailureDetails>,
    previous: Option<String>,
    next: Option<String>,
    /// What the invocation did when it ended without answering the job.
    unanswered: Option<String>,
}

/// A job not answered within this (simulated) time fails.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// An action (all its continuation jobs) fails after this (simulated) time.
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// The CodePipeline job service.
pub struct CodePipelineJobs {
    lambda: Arc<LambdaHost>,
    /// Lambda's asynchronous invocation (retries, on-failure destination),
    /// once the local cloud knows the destinations; plain invocation before.
    invoker: std::sync::RwLock<Option<Arc<AsyncInvoker>>>,
    scale: TimeScale,
    continuation_delay: Duration,
    jobs: Mutex<HashMap<String, Job>>,
    this: Weak<CodePipelineJobs>,
}

/// Simulated delay before CodePipeline invokes a continuation job.
pub const DEFAULT_CONTINUATION_DELAY: Duration = Duration::from_secs(10);

impl CodePipelineJobs {
    pub fn new(lambda: Arc<LambdaHost>, scale: TimeScale) -> Arc<Self> {
        Self::with_continuation_delay(lambda, scale, DEFAULT_CONTINUATION_DELAY)
    }

    /// `delay` is simulated time (multiplied by the scale).
    pub fn with_continuation_delay(
        lambda: Arc<LambdaHost>,
        scale: TimeScale,
        delay: Duration,
    ) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            lambda,
            invoker: std::sync::RwLock::new(None),
            scale,
            continuation_delay: delay,
            jobs: Mutex::new(HashMap::new()),
            this: this.clone(),
        })
    }

    /// Invoke job functions through `invoker` (their `EventInvokeConfig`).
    pub fn set_async_invoker(&self, invoker: Arc<AsyncInvoker>) {
        if let Ok(mut slot) = self.invoker.write() {
            *slot = Some(invoker);
        }
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Job>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a job and invokes its function (asynchronously, as CodePipeline
    /// does); returns the job id.
    pub fn start_job(&self, start: StartJob) -> String {
        let function_name = start
            .function_name
            .clone()
            .unwrap_or_else(|| PIPELINE_TRIGGER.to_string());
        let id = new_job_id();
        self.jobs().insert(
            id.clone(),
            Job {
                start,
                function_name,
                input_token: None,
                status: JobStatus::InProgress,
                answered_token: None,
                execution_details: None,
                failure_details: None,
                previous: None,
                next: None,
                unanswered: None,
            },
        );
        self.dispatch(id.clone(), Duration::ZERO);
        self.action_timer(id.clone());
        id
    }

    fn dispatch(&self, job_id: String, delay: Duration) {
        let Some(this) = self.this.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            if !delay.is_zero() {
                this.scale.sleep(delay).await;
            }
            // The job's 20-minute timer runs from its invocation.
            let timer = this.clone();
            let timed = job_id.clone();
            tokio::spawn(async move {
                timer.scale.sleep(JOB_TIMEOUT).await;
                timer.time_out(&timed, "The job was not answered within 20 minutes");
            });
            this.run_job(&job_id).await;
        });
    }

    /// The action's 24-hour limit, from its first job.
    fn action_timer(&self, first_job: String) {
        let Some(this) = self.this.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            this.scale.sleep(ACTION_TIMEOUT).await;
            let last = this
                .job_view(&first_job)
                .map(|v| v.action.final_job_id)
                .unwrap_or(first_job);
            this.time_out(&last, "The action did not complete within 24 hours");
        });
    }

    /// Fails a job still in progress when one of its timers expires.
    fn time_out(&self, job_id: &str, why: &str) {
        let mut jobs = self.jobs();
        let Some(job) = jobs.get_mut(job_id) else {
            return;
        };
        if job.status != JobStatus::InProgress {
            return;
        }
        let message = match &job.unanswered {
            Some(what) => format!("{why}: {what}"),
            None => format!("{why}."),
        };
        tracing::warn!(job_id, %message, "CodePipeline job timed out");
        job.status = JobStatus::Failed;
        job.failure_details = Some(FailureDetails {
            failure_type: "JobFailed".to_string(),
            message,
            external_execution_id: None,
        });
    }

    async fn run_job(&self, job_id: &str) {
        let Some(job) = self.jobs().get(job_id).cloned() else {
            return;
        };
        if job.status != JobStatus::InProgress {
            return; // timed out before its invocation (a continuation's delay)
        }
        let event = self.job_event(job_id, &job);
        let invoker = self.invoker.read().ok().and_then(|i| i.clone());
        let result = match invoker {
            Some(invoker) => invoker.invoke(&job.function_name, event).await,
            None => self.lambda.invoke(&job.function_name, event).await,
        };
        let mut jobs = self.jobs();
        let Some(job) = jobs.get_mut(job_id) else {
            return;
        };
        if job.status != JobStatus::InProgress {
            return; // answered through the API: that answer is the outcome
        }
        let message = match result {
            Err(d) => format!(
                "The AWS Lambda function {} failed: {}: {}",
                job.function_name, d.error_type, d.error_message
            ),
            Ok(_) => format!(
                "The AWS Lambda function {} failed to return a result. Check the function to verify \
                 that it has permission to call the PutJobSuccessResult action and that it made a \
                 call to PutJobSuccessResult.",
                job.function_name
            ),
        };
        // CodePipeline does not see this (the invocation is asynchronous):
        // the job stays in progress until its timer fails it.
        tracing::warn!(job_id, %message, "CodePipeline job left unanswered");
        job.unanswered = Some(message);
    }

    /// The `CodePipeline.job` event, exactly as AWS shapes it.
    fn job_event(&self, job_id: &str, job: &Job) -> Value {
        json!({ "CodePipeline.job": {
            "id": job_id,
            "accountId": self.lambda.account_id(),
            "data": job_data(job, false),
        }})
    }

    /// Answers one CodePipeline API call (`operation` = part of X-Amz-Target
    /// after the dot, `body` = JSON request) with AWS's JSON 1.1 shapes.
    pub async fn handle(&self, operation: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let request: Value =
            match serde_json::from_slice(if body.is_empty() { b"{}" } else { body }) {
                Ok(v) => v,
                Err(e) => {
                    return error(
                        "SerializationException",
                        &format!("request body is not JSON: {e}"),
                    )
                }
            };
        let job_id = match request.get("jobId").and_then(Value::as_str) {
            Some(id) if is_job_id(id) => id.to_string(),
            Some(id) => {
                return error(
                    "ValidationException",
                    &format!(
                        "1 validation error detected: Value '{id}' at 'jobId' failed to satisfy constraint: \
                         Member must satisfy regular expression pattern: \
                         [0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}"
                    ),
                )
            }
            None => {
                return error(
                    "ValidationException",
                    "1 validation error detected: Value null at 'jobId' failed to satisfy constraint: Member must not be null",
                )
            }
        };
        match operation {
            "PutJobSuccessResult" => self.put_success(&job_id, &request),
            "PutJobFailureResult" => self.put_failure(&job_id, &request),
            "AcknowledgeJob" => self.acknowledge(&job_id, &request),
            "GetJobDetails" => self.get_details(&job_id),
            other => error(
                "UnknownOperationException",
                &format!("operation {other} is not served by the local CodePipeline job service"),
            ),
        }
    }

    fn put_success(&self, job_id: &str, request: &Value) -> (u16, Vec<u8>) {
        let token = request
            .get("continuationToken")
            .and_then(Value::as_str)
            .map(str::to_string);
        if token.is_some() && request.get("outputVariables").is_some() {
            return error(
                "ValidationException",
                "outputVariables can only be set on the final result: a continuation token was given",
            );
        }
        if let Some(t) = &token {
            if t.is_empty() || t.len() > 2048 {
                return error(
                    "ValidationException",
                    "1 validation error detected: Value at 'continuationToken' failed to satisfy constraint: \
                     Member must have length between 1 and 2048",
                );
            }
        }
        let next_id = {
            let mut jobs = self.jobs();
            let Some(job) = jobs.get_mut(job_id) else {
                return not_found(job_id);
            };
            if job.status != JobStatus::InProgress {
                return invalid_state(job_id, job.status);
            }
            job.status = JobStatus::Succeeded;
            job.answered_token = token.clone();
            job.execution_details = request.get("executionDetails").cloned();
            let Some(token) = token else {
                return ok(json!({}));
            };
            let next_id = new_job_id();
            job.next = Some(next_id.clone());
            let next = Job {
                start: job.start.clone(),
                function_name: job.function_name.clone(),
                input_token: Some(token),
                status: JobStatus::InProgress,
                answered_token: None,
                execution_details: None,
                failure_details: None,
                previous: Some(job_id.to_string()),
                next: None,
                unanswered: None,
            };
            jobs.insert(next_id.clone(), next);
            next_id
        };
        self.dispatch(next_id, self.continuation_delay);
        ok(json!({}))
    }

    fn put_failure(&self, job_id: &str, request: &Value) -> (u16, Vec<u8>) {
        let details: FailureDetails = match request
            .get("failureDetails")
            .cloned()
            .map(serde_json::from_value::<FailureDetails>)
        {
            Some(Ok(d)) => d,
            Some(Err(e)) => return error("ValidationException", &format!("failureDetails is malformed: {e}")),
            None => {
                return error(
                    "ValidationException",
                    "1 validation error detected: Value null at 'failureDetails' failed to satisfy constraint: Member must not be null",
                )
            }
        };
        const TYPES: &[&str] = &[
            "JobFailed",
            "ConfigurationError",
            "PermissionError",
            "RevisionOutOfSync",
            "RevisionUnavailable",
            "SystemUnavailable",
        ];
        if !TYPES.contains(&details.failure_type.as_str()) {
            return error(
                "ValidationException",
                &format!(
                    "1 validation error detected: Value '{}' at 'failureDetails.type' failed to satisfy constraint: \
                     Member must satisfy enum value set: [{}]",
                    details.failure_type,
                    TYPES.join(", ")
                ),
            );
        }
        if details.message.is_empty() || details.message.len() > 5000 {
            return error(
                "ValidationException",
                "1 validation error detected: Value at 'failureDetails.message' failed to satisfy constraint: \
                 Member must have length between 1 and 5000",
            );
        }
        let mut jobs = self.jobs();
        let Some(job) = jobs.get_mut(job_id) else {
            return not_found(job_id);
        };
        if job.status != JobStatus::InProgress {
            return invalid_state(job_id, job.status);
        }
        job.status = JobStatus::Failed;
        job.failure_details = Some(details);
        ok(json!({}))
    }

    fn acknowledge(&self, job_id: &str, request: &Value) -> (u16, Vec<u8>) {
        if request
            .get("nonce")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return error(
                "ValidationException",
                "1 validation error detected: Value null at 'nonce' failed to satisfy constraint: Member must not be null",
            );
        }
        let jobs = self.jobs();
        let Some(job) = jobs.get(job_id) else {
            return not_found(job_id);
        };
        ok(json!({ "status": status_name(job.status) }))
    }

    fn get_details(&self, job_id: &str) -> (u16, Vec<u8>) {
        let jobs = self.jobs();
        let Some(job) = jobs.get(job_id) else {
            return not_found(job_id);
        };
        ok(json!({ "jobDetails": {
            "id": job_id,
            "accountId": self.lambda.account_id(),
            "data": job_data(job, true),
        }}))
    }

    /// A job and its action's outcome (None: unknown job id).
    pub fn job_view(&self, job_id: &str) -> Option<JobView> {
        let jobs = self.jobs();
        let job = jobs.get(job_id)?;
        // Walk back to the first job, then forward to the last.
        let mut first = job_id.to_string();
        while let Some(prev) = jobs.get(&first).and_then(|j| j.previous.clone()) {
            first = prev;
        }
        let mut chain = vec![first.clone()];
        while let Some(next) = jobs
            .get(chain.last().map(String::as_str).unwrap_or(""))
            .and_then(|j| j.next.clone())
        {
            chain.push(next);
        }
        let final_id = chain.last().cloned().unwrap_or_else(|| job_id.to_string());
        let last = jobs.get(&final_id)?;
        let action_status = match (last.status, &last.answered_token) {
            (JobStatus::Succeeded, Some(_)) => JobStatus::InProgress, // continuation not created yet
            (status, _) => status,
        };
        Some(JobView {
            job_id: job_id.to_string(),
            status: job.status,
            input_continuation_token: job.input_token.clone(),
            continuation_token: job.answered_token.clone(),
            execution_details: job.execution_details.clone(),
            failure_details: job.failure_details.clone(),
            action: ActionView {
                status: action_status,
                job_ids: chain,
                final_job_id: final_id,
                failure_details: last.failure_details.clone(),
                execution_details: last.execution_details.clone(),
            },
        })
    }

    /// Waits (real time) until the action of `job_id` is no longer in progress.
    pub async fn wait_for_outcome(&self, job_id: &str, timeout: Duration) -> Option<JobView> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let view = self.job_view(job_id)?;
            if view.action.status != JobStatus::InProgress
                || tokio::time::Instant::now() >= deadline
            {
                return Some(view);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn job_data(job: &Job, with_context: bool) -> Value {
    let mut configuration = json!({ "FunctionName": job.function_name });
    if let Some(p) = &job.start.user_parameters {
        configuration["UserParameters"] = json!(p);
    }
    let mut data = json!({
        "actionConfiguration": { "configuration": configuration },
        "inputArtifacts": [{
            "location": {
                "s3Location": { "bucketName": job.start.bucket, "objectKey": job.start.key },
                "type": "S3"
            },
            "revision": job.start.revision,
            "name": "SourceArtifact"
        }],
        "outputArtifacts": [],
        "artifactCredentials": {
            "secretAccessKey": "local-cloud-secret-access-key",
            "sessionToken": "local-cloud-session-token",
            "accessKeyId": "ASIALOCALCLOUDEXAMPLE"
        }
    });
    if let Some(token) = &job.input_token {
        data["continuationToken"] = json!(token);
    }
    if with_context {
        data["actionTypeId"] =
            json!({"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"});
        data["pipelineContext"] = json!({
            "pipelineName": job.start.pipeline_name.clone().unwrap_or_else(|| "local-pipeline".to_string()),
            "stage": { "name": "Deploy" },
            "action": { "name": job.function_name },
        });
    }
    data
}

fn status_name(status: JobStatus) -> &'static str {
    match status {
        JobStatus::InProgress => "InProgress",
        JobStatus::Succeeded => "Succeeded",
        JobStatus::Failed => "Failed",
    }
}

/// A UUID-shaped job id (the API's `JobId` pattern).
fn new_job_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`
pub fn is_job_id(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| {
            g.len() == n
                && g.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

fn ok(body: Value) -> (u16, Vec<u8>) {
    (200, body.to_string().into_bytes())
}

fn error(code: &str, message: &str) -> (u16, Vec<u8>) {
    (
        400,
        json!({"__type": code, "message": message})
            .to_string()
            .into_bytes(),
    )
}

fn not_found(job_id: &str) -> (u16, Vec<u8>) {
    error(
        "JobNotFoundException",
        &format!("The job was specified in an invalid format or cannot be found: {job_id}"),
    )
}

fn invalid_state(job_id: &str, status: JobStatus) -> (u16, Vec<u8>) {
    error(
        "InvalidJobStateException",
        &format!(
            "Job {job_id} is already {}: a job takes one PutJobSuccessResult or PutJobFailureResult",
            status_name(status)
        ),
    )
}

#[cfg(test)]
mod tests;
