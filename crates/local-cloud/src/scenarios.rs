//! The end-to-end scenarios of issue 4, each runnable from the command line
//! (`greenlight-local scenario <name>`) and each an end-to-end test in
//! `tests/`. A scenario drives the local cloud like a user would (S3 upload,
//! CodePipeline job, a CodeDeploy call from outside) and returns what it read
//! back through the AWS APIs afterwards; the tests assert on those reports.

use crate::cloud::{LocalCloud, INITIAL_VERSION};
use crate::follow::{self, Followed, Progress};
use crate::loadgen::{self, LoadReport};
use crate::revisions::RevisionKind;
use serde_json::Value;
use std::time::Duration;

mod accounting;
pub mod scaling;
pub use accounting::{
    account_for_upload, decide_fate, rejected_records, ExecutionFacts, UploadFate,
};

/// Requests per second the load generator sends through the listener.
pub const LOAD_RPS: u32 = 20;

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{0}")]
    Cloud(#[from] crate::cloud::CloudError),
    #[error("no execution started for {key} within {seconds} s (is the relay running?)")]
    NoExecution { key: String, seconds: u64 },
    #[error("{what}: {message}")]
    Aws { what: &'static str, message: String },
    #[error("the fault could not be injected: {0}")]
    Fault(String),
}

fn aws<E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::fmt::Display>(
    what: &'static str,
) -> impl FnOnce(E) -> ScenarioError {
    move |e| ScenarioError::Aws {
        what,
        message: greenlight_aws::describe_error(&e),
    }
}

/// A target group's health-check settings and deregistration delay, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroupSettings {
    pub interval_seconds: i32,
    pub timeout_seconds: i32,
    pub healthy_threshold: i32,
    pub unhealthy_threshold: i32,
    pub deregistration_delay_seconds: String,
}

/// One SNS notification, read from the queue subscribed to the topic.
#[derive(Debug, Clone)]
pub struct Notification {
    pub subject: Option<String>,
    /// The human text: greenlight publishes with `MessageStructure=json`,
    /// so an SQS subscriber receives the JSON body, which carries the text
    /// under `text`; any other message is kept as it came.
    pub message: String,
    /// The `outcome` message attribute (deployed, superseded, failed), as
    /// SNS puts message attributes in the envelope it delivers to SQS (SNS
    /// developer guide, "Amazon SNS message attributes").
    pub outcome: Option<String>,
    /// The JSON body, when the message is one.
    pub body: Option<Value>,
}

/// What a deployment scenario read back at its end.
#[derive(Debug, Clone)]
pub struct DeploymentReport {
    pub key: String,
    pub label: String,
    pub followed: Followed,
    /// `/version` answers through the listener after the run (count by version).
    pub served_versions: std::collections::BTreeMap<String, u32>,
    /// Auto Scaling groups whose names the run cares about that still exist.
    pub existing_asgs: Vec<String>,
    /// The deployment group's Auto Scaling groups after the run.
    pub group_asgs: Vec<String>,
    pub settings_before: TargetGroupSettings,
    pub settings_after: TargetGroupSettings,
    pub notifications: Vec<Notification>,
    pub load: Option<LoadReport>,
    /// Instance ids registered in the target group after the run.
    pub registered: Vec<String>,
    /// What became of the upload (`key`), read back: deployed, superseded,
    /// rejected with a reason, or unaccounted ([`account_for_upload`]).
    pub upload: UploadFate,
}

impl DeploymentReport {
    pub fn green_asg(&self) -> Option<String> {
        self.followed
            .deployment
            .as_ref()
            .map(|d| format!("CodeDeploy_{}_{}", d.deployment_group, d.deployment_id))
    }
}

pub async fn target_group_settings(
    cloud: &LocalCloud,
) -> Result<TargetGroupSettings, ScenarioError> {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&cloud.sdk);
    let tg = elb
        .describe_target_groups()
        .target_group_arns(&cloud.resources.target_group_arn)
        .send()
        .await
        .map_err(aws("DescribeTargetGroups"))?;
    let tg =
        tg.target_groups().first().cloned().unwrap_or_else(|| {
            aws_sdk_elasticloadbalancingv2::types::TargetGroup::builder().build()
        });
    let attrs = elb
        .describe_target_group_attributes()
        .target_group_arn(&cloud.resources.target_group_arn)
        .send()
        .await
        .map_err(aws("DescribeTargetGroupAttributes"))?;
    let delay = attrs
        .attributes()
        .iter()
        .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
        .and_then(|a| a.value())
        .unwrap_or_default()
        .to_string();
    Ok(TargetGroupSettings {
        interval_seconds: tg.health_check_interval_seconds().unwrap_or_default(),
        timeout_seconds: tg.health_check_timeout_seconds().unwrap_or_default(),
        healthy_threshold: tg.healthy_threshold_count().unwrap_or_default(),
        unhealthy_threshold: tg.unhealthy_threshold_count().unwrap_or_default(),
        deregistration_delay_seconds: delay,
    })
}

/// Instance ids registered in the demo target group (AWS's view).
pub async fn registered_targets(cloud: &LocalCloud) -> Result<Vec<String>, ScenarioError> {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&cloud.sdk);
    let health = elb
        .describe_target_health()
        .target_group_arn(&cloud.resources.target_group_arn)
        .send()
        .await
        .map_err(aws("DescribeTargetHealth"))?;
    let mut ids: Vec<String> = health
        .target_health_descriptions()
        .iter()
        .filter(|d| {
            d.target_health()
                .and_then(|h| h.state())
                .map(|s| s.as_str() != "draining" && s.as_str() != "unused")
                .unwrap_or(true)
        })
        .filter_map(|d| d.target().and_then(|t| t.id()).map(str::to_string))
        .collect();
    ids.sort();
    Ok(ids)
}

/// Drains the SNS inbox queue.
pub async fn notifications(cloud: &LocalCloud) -> Result<Vec<Notification>, ScenarioError> {
    let sqs = aws_sdk_sqs::Client::new(&cloud.sdk);
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(&cloud.resources.notifications_queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(aws("ReceiveMessage"))?;
        if got.messages().is_empty() {
            return Ok(out);
        }
        for m in got.messages() {
            let envelope: Value = m
                .body()
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or(Value::Null);
            out.push(notification_of(&envelope, m.body().unwrap_or_default()));
            if let Some(handle) = m.receipt_handle() {
                let _ = sqs
                    .delete_message()
                    .queue_url(&cloud.resources.notifications_queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await;
            }
        }
    }
}

/// One SNS envelope (as SNS delivers to an SQS subscriber without raw
/// delivery) read as a [`Notification`]; `raw` is the SQS body, kept as the
/// message when it is no envelope.
pub fn notification_of(envelope: &Value, raw: &str) -> Notification {
    let message = envelope
        .get("Message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| raw.to_string());
    let body = serde_json::from_str::<Value>(&message)
        .ok()
        .filter(Value::is_object);
    let text = body
        .as_ref()
        .and_then(|b| b.get("text"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Notification {
        subject: envelope
            .get("Subject")
            .and_then(Value::as_str)
            .map(str::to_string),
        message: text.unwrap_or(message),
        outcome: envelope
            .pointer("/MessageAttributes/outcome/Value")
            .and_then(Value::as_str)
            .map(str::to_string),
        body,
    }
}

/// Waits (bounded) until `n` notifications arrived; returns what arrived.
pub async fn await_notifications(
    cloud: &LocalCloud,
    n: usize,
    timeout: Duration,
) -> Result<Vec<Notification>, ScenarioError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut all = Vec::new();
    loop {
        all.extend(notifications(cloud).await?);
        if all.len() >= n || tokio::time::Instant::now() >= deadline {
            // A short grace period so a duplicate would be seen too.
            tokio::time::sleep(Duration::from_millis(500)).await;
            all.extend(notifications(cloud).await?);
            return Ok(all);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn existing_asgs(
    cloud: &LocalCloud,
    names: &[String],
) -> Result<Vec<String>, ScenarioError> {
    let asg = aws_sdk_autoscaling::Client::new(&cloud.sdk);
    let out = asg
        .describe_auto_scaling_groups()
        .set_auto_scaling_group_names(Some(names.to_vec()))
        .send()
        .await
        .map_err(aws("DescribeAutoScalingGroups"))?;
    Ok(out
        .auto_scaling_groups()
        .iter()
        .filter_map(|g| g.auto_scaling_group_name().map(str::to_string))
        .collect())
}

pub async fn group_asgs(cloud: &LocalCloud) -> Result<Vec<String>, ScenarioError> {
    let cd = aws_sdk_codedeploy::Client::new(&cloud.sdk);
    let names = &cloud.resources.names;
    let group = cd
        .get_deployment_group()
        .application_name(&names.application)
        .deployment_group_name(&names.deployment_group)
        .send()
        .await
        .map_err(aws("GetDeploymentGroup"))?;
    Ok(group
        .deployment_group_info()
        .map(|g| {
            g.auto_scaling_groups()
                .iter()
                .filter_map(|a| a.name().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// `/version` through the listener, `n` times.
pub async fn served_versions(
    cloud: &LocalCloud,
    n: u32,
) -> std::collections::BTreeMap<String, u32> {
    let mut out = std::collections::BTreeMap::new();
    for _ in 0..n {
        let answer = match loadgen::get(cloud.listener, "/version", Duration::from_secs(5)).await {
            Ok(r) if r.status == 200 => r.text().trim().to_string(),
            Ok(r) => format!("HTTP {}", r.status),
            Err(e) => format!("error: {}", e.kind()),
        };
        *out.entry(answer).or_insert(0) += 1;
    }
    out
}

/// A label like CI's `YYYYmmddHHMMSS-<build>`, unique per call.
pub fn new_label(build: &str) -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}-{build}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// Scenarios 1–3 (and the demo): upload a revision of `kind` to the artifact
/// bucket under load, follow its execution to the end, read back the result.
pub async fn upload_and_follow(
    cloud: &LocalCloud,
    kind: RevisionKind,
    label: &str,
    with_load: bool,
    progress: &mut dyn FnMut(Progress),
) -> Result<DeploymentReport, ScenarioError> {
    upload_follow_read(cloud, kind, label, with_load, None, progress).await
}

/// [`upload_and_follow`] under load, but reads back only once every
/// deployment of the group has ended (bounded by `settle`): a rollback
/// CodeDeploy still runs after the execution ended is part of the outcome
/// (it re-registers blue, deletes the replacement ASG), and the load keeps
/// running through it.
pub async fn upload_and_follow_settled(
    cloud: &LocalCloud,
    kind: RevisionKind,
    label: &str,
    settle: Duration,
    progress: &mut dyn FnMut(Progress),
) -> Result<DeploymentReport, ScenarioError> {
    upload_follow_read(cloud, kind, label, true, Some(settle), progress).await
}

async fn upload_follow_read(
    cloud: &LocalCloud,
    kind: RevisionKind,
    label: &str,
    with_load: bool,
    settle: Option<Duration>,
    progress: &mut dyn FnMut(Progress),
) -> Result<DeploymentReport, ScenarioError> {
    let settings_before = target_group_settings(cloud).await?;
    let load = with_load.then(|| {
        loadgen::start_load(
            &format!("{}/version", cloud.listener_url()),
            LOAD_RPS,
            Duration::from_secs(600),
        )
    });
    let key = cloud.upload_revision(kind, label).await?;
    let (arn, name) = follow::find_execution(cloud, &key, Duration::from_secs(30))
        .await
        .ok_or_else(|| ScenarioError::NoExecution {
            key: key.clone(),
            seconds: 30,
        })?;
    let followed = follow::follow(cloud, &arn, &name, Duration::from_secs(600), progress).await;
    if let Some(settle) = settle {
        await_group_idle(cloud, settle).await?;
    }
    let load = match load {
        Some(l) => Some(l.stop().await),
        None => None,
    };
    finish_report(cloud, key, label, followed, settings_before, load).await
}

/// Like [`upload_and_follow_settled`], but once the execution is found runs
/// `intervene(execution_arn)` (which may wait for a moment of the run and
/// then act on it: stop the execution, inject a fault...) before following
/// the execution to its end. Whatever `intervene` returns is handed back.
pub async fn upload_and_intervene<T, F, Fut>(
    cloud: &LocalCloud,
    kind: RevisionKind,
    label: &str,
    settle: Duration,
    intervene: F,
    progress: &mut dyn FnMut(Progress),
) -> Result<(DeploymentReport, T), ScenarioError>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, ScenarioError>>,
{
    upload_tagged_and_intervene(cloud, kind, label, None, settle, intervene, progress).await
}

/// [`upload_and_intervene`] with the upload's S3 object tags (`tagging`,
/// e.g. `greenlight-approval=required`), put in the same PutObject.
pub async fn upload_tagged_and_intervene<T, F, Fut>(
    cloud: &LocalCloud,
    kind: RevisionKind,
    label: &str,
    tagging: Option<&str>,
    settle: Duration,
    intervene: F,
    progress: &mut dyn FnMut(Progress),
) -> Result<(DeploymentReport, T), ScenarioError>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, ScenarioError>>,
{
    let settings_before = target_group_settings(cloud).await?;
    let load = loadgen::start_load(
        &format!("{}/version", cloud.listener_url()),
        LOAD_RPS,
        Duration::from_secs(600),
    );
    let key = cloud.upload_revision_tagged(kind, label, tagging).await?;
    let (arn, name) = follow::find_execution(cloud, &key, Duration::from_secs(30))
        .await
        .ok_or_else(|| ScenarioError::NoExecution {
            key: key.clone(),
            seconds: 30,
        })?;
    let intervened = intervene(arn.clone()).await?;
    let mut followed = follow::follow(cloud, &arn, &name, Duration::from_secs(600), progress).await;
    // An execution that died outside its failure path is handled afterwards
    // (the status-change event brings the failure handler): its notification
    // is the last thing the runbook does before it completes its report, so
    // read back only once it came (or `settle` passed), and the group is idle.
    let notifications = if followed.status == "SUCCEEDED" {
        Vec::new()
    } else {
        await_notifications(cloud, 1, settle).await?
    };
    await_group_idle(cloud, settle).await?;
    followed.deployment = follow::deployment_of(cloud, &name).await;
    let load = Some(load.stop().await);
    let mut notifications = notifications;
    notifications.extend(self::notifications(cloud).await?);
    let report = read_back(
        cloud,
        key,
        label,
        followed,
        settings_before,
        load,
        notifications,
    )
    .await?;
    Ok((report, intervened))
}

/// Registers a fault as `POST /_greenlight/faults` does: API, function and
/// rollback faults wait for their calls; instance faults (`kill_instance`,
/// `hang_health`) apply at once.
pub async fn inject(
    cloud: &LocalCloud,
    spec: crate::faults::FaultSpec,
) -> Result<crate::faults::FaultView, ScenarioError> {
    use crate::faults::FaultKind;
    let view = cloud
        .faults
        .add(spec)
        .map_err(|e| ScenarioError::Fault(e.to_string()))?;
    let instance = view.spec.resource.clone().unwrap_or_default();
    let applied = match view.spec.kind {
        FaultKind::KillInstance => Some(cloud.fleet.kill(&instance).await),
        FaultKind::HangHealth => Some(cloud.fleet.set_health_hang(&instance, true)),
        _ => None,
    };
    match applied {
        Some(false) => {
            let _ = cloud.faults.remove(&view.id);
            Err(ScenarioError::Fault(format!(
                "no instance {instance} in the local fleet"
            )))
        }
        Some(true) => {
            cloud.faults.record_applied(&view.id);
            Ok(view)
        }
        None => Ok(view),
    }
}

/// [`upload_and_follow`] under load with `faults` injected before the upload.
pub async fn upload_with_faults(
    cloud: &LocalCloud,
    kind: RevisionKind,
    label: &str,
    faults: Vec<crate::faults::FaultSpec>,
    progress: &mut dyn FnMut(Progress),
) -> Result<DeploymentReport, ScenarioError> {
    for spec in faults {
        inject(cloud, spec).await?;
    }
    upload_and_follow_settled(cloud, kind, label, SETTLE, progress).await
}

/// How long (real time) a fault scenario waits for CodeDeploy to finish
/// what the execution left running (a rollback) before reading back.
pub const SETTLE: Duration = Duration::from_secs(120);

/// Waits (bounded) until no deployment of the demo group is in progress.
pub async fn await_group_idle(cloud: &LocalCloud, timeout: Duration) -> Result<(), ScenarioError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let deployments = group_deployments(cloud).await?;
        if deployments.iter().all(|d| d.ended) || tokio::time::Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls (every 20 ms, up to `timeout`) until `ready` holds, then injects
/// `spec(..)` built from what `ready` returned. For faults that must land at
/// a moment of the run (a green instance exists, the tuner has run...).
/// Returns the injected fault, or None when the moment never came.
pub async fn inject_when<T, R, F>(
    cloud: &LocalCloud,
    timeout: Duration,
    mut ready: R,
    spec: impl FnOnce(T) -> crate::faults::FaultSpec,
) -> Result<Option<crate::faults::FaultView>, ScenarioError>
where
    R: FnMut() -> F,
    F: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(found) = ready().await {
            return inject(cloud, spec(found)).await.map(Some);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Instances of the local fleet that are not in `known` (e.g. green ones), sorted.
pub fn new_instances(cloud: &LocalCloud, known: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = cloud
        .fleet
        .instance_ids()
        .into_iter()
        .filter(|i| !known.contains(i))
        .collect();
    ids.sort();
    ids
}

/// One deployment of the demo group, as BatchGetDeployments shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDeployment {
    pub id: String,
    /// `user`, `autoscaling`, `codeDeployRollback`, ...
    pub creator: String,
    pub status: String,
    /// Succeeded, Failed or Stopped.
    pub ended: bool,
}

/// Every deployment of the demo deployment group (ListDeployments, then
/// BatchGetDeployments), oldest first as ListDeployments gives them.
pub async fn group_deployments(cloud: &LocalCloud) -> Result<Vec<GroupDeployment>, ScenarioError> {
    let cd = aws_sdk_codedeploy::Client::new(&cloud.sdk);
    let names = &cloud.resources.names;
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = cd
            .list_deployments()
            .application_name(&names.application)
            .deployment_group_name(&names.deployment_group)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(aws("ListDeployments"))?;
        ids.extend(page.deployments().iter().cloned());
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let mut out = Vec::new();
    // BatchGetDeployments takes at most 25 ids.
    for chunk in ids.chunks(25) {
        let got = cd
            .batch_get_deployments()
            .set_deployment_ids(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(aws("BatchGetDeployments"))?;
        for d in got.deployments_info() {
            let status = d
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            out.push(GroupDeployment {
                id: d.deployment_id().unwrap_or_default().to_string(),
                creator: d
                    .creator()
                    .map(|c| c.as_str().to_string())
                    .unwrap_or_default(),
                ended: matches!(status.as_str(), "Succeeded" | "Failed" | "Stopped"),
                status,
            });
        }
    }
    Ok(out)
}

async fn finish_report(
    cloud: &LocalCloud,
    key: String,
    label: &str,
    followed: Followed,
    settings_before: TargetGroupSettings,
    load: Option<LoadReport>,
) -> Result<DeploymentReport, ScenarioError> {
    let expect_notification = followed.status != "SUCCEEDED";
    let notifications = if expect_notification {
        await_notifications(cloud, 1, Duration::from_secs(20)).await?
    } else {
        notifications(cloud).await?
    };
    read_back(
        cloud,
        key,
        label,
        followed,
        settings_before,
        load,
        notifications,
    )
    .await
}

/// Reads back the end state of a run whose `notifications` were collected:
/// served versions, the blue and green Auto Scaling groups, the target group's
/// settings and targets, and what became of the upload.
async fn read_back(
    cloud: &LocalCloud,
    key: String,
    label: &str,
    followed: Followed,
    settings_before: TargetGroupSettings,
    load: Option<LoadReport>,
    notifications: Vec<Notification>,
) -> Result<DeploymentReport, ScenarioError> {
    let mut asg_names = vec![cloud.resources.names.blue_asg.clone()];
    if let Some(d) = &followed.deployment {
        asg_names.push(format!(
            "CodeDeploy_{}_{}",
            d.deployment_group, d.deployment_id
        ));
    }
    let upload = account_for_upload(cloud, &key, &notifications).await?;
    Ok(DeploymentReport {
        key,
        label: label.to_string(),
        served_versions: served_versions(cloud, 10).await,
        existing_asgs: existing_asgs(cloud, &asg_names).await?,
        group_asgs: group_asgs(cloud).await?,
        settings_before,
        settings_after: target_group_settings(cloud).await?,
        notifications,
        registered: registered_targets(cloud).await?,
        load,
        followed,
        upload,
    })
}

/// What a CodePipeline job ended with.
#[derive(Debug, Clone)]
pub struct PipelineReport {
    pub job_id: String,
    pub view: Option<crate::codepipeline::JobView>,
    pub followed: Option<Followed>,
}

/// Scenario 4: the same deployment started from a CodePipeline job. The
/// artifact is put where a pipeline's artifact store would put it (no `.zip`
/// extension, outside the artifact prefix so the S3 rule does not fire).
pub async fn pipeline_job(
    cloud: &LocalCloud,
    kind: RevisionKind,
    label: &str,
    progress: &mut dyn FnMut(Progress),
) -> Result<PipelineReport, ScenarioError> {
    pipeline_job_asking(
        cloud,
        kind,
        label,
        serde_json::Map::new(),
        |_| async { Ok(()) },
        progress,
    )
    .await
}

/// [`pipeline_job`] whose `UserParameters` also carry `asks` (e.g.
/// `{"approval": "required"}`), running `intervene(execution_arn)` once the
/// execution is found (e.g. answer its approval) before following it.
pub async fn pipeline_job_asking<F, Fut>(
    cloud: &LocalCloud,
    kind: RevisionKind,
    label: &str,
    asks: serde_json::Map<String, Value>,
    intervene: F,
    progress: &mut dyn FnMut(Progress),
) -> Result<PipelineReport, ScenarioError>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), ScenarioError>>,
{
    let key = format!("pipeline-artifacts/BuildArtif/{label}");
    cloud
        .s3()
        .put_object()
        .bucket(&cloud.resources.names.bucket)
        .key(&key)
        .body(crate::revisions::build_revision(kind, label).into())
        .send()
        .await
        .map_err(aws("PutObject"))?;
    let names = &cloud.resources.names;
    let job_id = cloud.pipeline.start_job(crate::codepipeline::StartJob {
        bucket: names.bucket.clone(),
        key: key.clone(),
        user_parameters: Some({
            let mut parameters = serde_json::Map::new();
            parameters.insert("application".into(), names.application.clone().into());
            parameters.insert(
                "deploymentGroup".into(),
                names.deployment_group.clone().into(),
            );
            parameters.extend(asks);
            Value::Object(parameters).to_string()
        }),
        ..Default::default()
    });
    let followed = match follow::find_execution(cloud, &key, Duration::from_secs(30)).await {
        Some((arn, name)) => {
            intervene(arn.clone()).await?;
            Some(follow::follow(cloud, &arn, &name, Duration::from_secs(600), progress).await)
        }
        None => None,
    };
    let view = cloud
        .pipeline
        .wait_for_outcome(&job_id, Duration::from_secs(120))
        .await;
    Ok(PipelineReport {
        job_id,
        view,
        followed,
    })
}

/// What two competing uploads and a duplicated event ended with.
#[derive(Debug, Clone)]
pub struct ConcurrencyReport {
    pub first: Followed,
    pub second: Followed,
    /// Deployments of the group with (create, complete) times, oldest first.
    pub deployments: Vec<(String, Option<i64>, Option<i64>)>,
    pub duplicate_key: String,
    /// Executions whose input names the duplicated key.
    pub duplicate_executions: usize,
    /// Deployments created by those executions.
    pub duplicate_deployments: usize,
}

/// Scenario 5: two uploads to one group within a second, then the same S3
/// event delivered twice.
pub async fn concurrent_uploads(
    cloud: &LocalCloud,
    progress: &mut dyn FnMut(Progress),
) -> Result<ConcurrencyReport, ScenarioError> {
    let first_label = new_label("101");
    let second_label = new_label("102");
    let first_key = cloud
        .upload_revision(RevisionKind::Good, &first_label)
        .await?;
    let second_key = cloud
        .upload_revision(RevisionKind::Good, &second_label)
        .await?;
    let mut followed = Vec::new();
    for key in [&first_key, &second_key] {
        let (arn, name) = follow::find_execution(cloud, key, Duration::from_secs(30))
            .await
            .ok_or_else(|| ScenarioError::NoExecution {
                key: key.clone(),
                seconds: 30,
            })?;
        followed.push((arn, name));
    }
    let mut results = Vec::new();
    for (arn, name) in &followed {
        results.push(follow::follow(cloud, arn, name, Duration::from_secs(900), progress).await);
    }
    let second = results.pop();
    let first = results.pop();

    // The same S3 event delivered twice: put one message on the rule's queue twice.
    let dup_label = new_label("103");
    let dup_key = cloud.revision_key(&dup_label);
    let put = cloud
        .s3()
        .put_object()
        .bucket(&cloud.resources.names.bucket)
        .key(&dup_key)
        .body(crate::revisions::build_revision(RevisionKind::Good, &dup_label).into())
        .send()
        .await
        .map_err(aws("PutObject"))?;
    // The upload itself already produced one delivery; deliver the same event again.
    let (dup_arn, dup_name) = follow::find_execution(cloud, &dup_key, Duration::from_secs(30))
        .await
        .ok_or_else(|| ScenarioError::NoExecution {
            key: dup_key.clone(),
            seconds: 30,
        })?;
    let sfn = aws_sdk_sfn::Client::new(&cloud.sdk);
    let input: Value = sfn
        .describe_execution()
        .execution_arn(&dup_arn)
        .send()
        .await
        .map_err(aws("DescribeExecution"))?
        .input()
        .and_then(|i| serde_json::from_str(i).ok())
        .unwrap_or(Value::Null);
    let event = serde_json::json!({
        "version": "0",
        "id": "5f1c7b6e-0000-4000-8000-00000000d0b1",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": crate::provision::ACCOUNT_ID,
        "time": input.get("uploadedAt").cloned().unwrap_or(Value::Null),
        "region": crate::provision::REGION,
        "resources": [format!("arn:aws:s3:::{}", cloud.resources.names.bucket)],
        "detail": {
            "version": "0",
            "bucket": {"name": cloud.resources.names.bucket},
            "object": {
                "key": dup_key,
                "size": input.pointer("/revision/size").cloned().unwrap_or(serde_json::json!(1)),
                "etag": input.pointer("/revision/etag").cloned().unwrap_or(Value::Null),
                "version-id": put.version_id(),
                "sequencer": "0062E99A88DC407460"
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": crate::provision::ACCOUNT_ID,
            "reason": "PutObject"
        }
    });
    let sqs = aws_sdk_sqs::Client::new(&cloud.sdk);
    sqs.send_message()
        .queue_url(&cloud.resources.trigger_queue_url)
        .message_body(event.to_string())
        .send()
        .await
        .map_err(aws("SendMessage"))?;
    let dup_followed = follow::follow(
        cloud,
        &dup_arn,
        &dup_name,
        Duration::from_secs(900),
        progress,
    )
    .await;
    // Give the duplicate delivery time to be relayed before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let duplicate_executions = follow::executions_with_key(cloud, &dup_key).await.len();
    let duplicate_deployments = usize::from(dup_followed.deployment.is_some());

    let cd = aws_sdk_codedeploy::Client::new(&cloud.sdk);
    let names = &cloud.resources.names;
    let ids = cd
        .list_deployments()
        .application_name(&names.application)
        .deployment_group_name(&names.deployment_group)
        .send()
        .await
        .map_err(aws("ListDeployments"))?
        .deployments()
        .to_vec();
    let mut deployments = Vec::new();
    for chunk in ids.chunks(25) {
        let infos = cd
            .batch_get_deployments()
            .set_deployment_ids(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(aws("BatchGetDeployments"))?;
        for d in infos.deployments_info() {
            deployments.push((
                d.deployment_id().unwrap_or_default().to_string(),
                d.create_time().map(|t| t.to_millis().unwrap_or_default()),
                d.complete_time().map(|t| t.to_millis().unwrap_or_default()),
            ));
        }
    }
    deployments.sort_by_key(|d| d.1);
    match (first, second) {
        (Some(first), Some(second)) => Ok(ConcurrencyReport {
            first,
            second,
            deployments,
            duplicate_key: dup_key,
            duplicate_executions,
            duplicate_deployments,
        }),
        _ => Err(ScenarioError::NoExecution {
            key: first_key,
            seconds: 30,
        }),
    }
}

/// What a deployment started outside the pipeline ended with.
#[derive(Debug, Clone)]
pub struct OutsideReport {
    pub deployment_id: String,
    pub status: String,
    pub notifications: Vec<Notification>,
    /// The failure handler's report object in the artifact bucket, if written.
    pub report: Option<Value>,
}

/// Scenario 6: a deployment created directly with CodeDeploy (not through
/// greenlight) that fails; the EventBridge rule brings the failure handler.
pub async fn outside_failure(cloud: &LocalCloud) -> Result<OutsideReport, ScenarioError> {
    let label = new_label("outside");
    // Outside the artifact prefix: the trigger's rule does not see it.
    let key = format!("manual/{label}.zip");
    let put = cloud
        .s3()
        .put_object()
        .bucket(&cloud.resources.names.bucket)
        .key(&key)
        .body(crate::revisions::build_revision(RevisionKind::FailingInstall, &label).into())
        .send()
        .await
        .map_err(aws("PutObject"))?;
    let cd = aws_sdk_codedeploy::Client::new(&cloud.sdk);
    let names = &cloud.resources.names;
    let created = cd
        .create_deployment()
        .application_name(&names.application)
        .deployment_group_name(&names.deployment_group)
        .description("manual deployment by an operator")
        .revision(
            aws_sdk_codedeploy::types::RevisionLocation::builder()
                .revision_type(aws_sdk_codedeploy::types::RevisionLocationType::S3)
                .s3_location(
                    aws_sdk_codedeploy::types::S3Location::builder()
                        .bucket(&names.bucket)
                        .key(&key)
                        .bundle_type(aws_sdk_codedeploy::types::BundleType::Zip)
                        .set_version(put.version_id().map(str::to_string))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .map_err(aws("CreateDeployment"))?;
    let id = created.deployment_id().unwrap_or_default().to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    let mut status = String::new();
    while tokio::time::Instant::now() < deadline {
        let d = cd
            .get_deployment()
            .deployment_id(&id)
            .send()
            .await
            .map_err(aws("GetDeployment"))?;
        status = d
            .deployment_info()
            .and_then(|i| i.status())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        if matches!(status.as_str(), "Succeeded" | "Failed" | "Stopped") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let notifications = await_notifications(cloud, 1, Duration::from_secs(30)).await?;
    let report_key = format!("{}{id}.json", names.report_prefix);
    let report = match cloud
        .s3()
        .get_object()
        .bucket(&names.report_bucket)
        .key(&report_key)
        .send()
        .await
    {
        Ok(o) => o
            .body
            .collect()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b.into_bytes()).ok()),
        Err(_) => None,
    };
    Ok(OutsideReport {
        deployment_id: id,
        status,
        notifications,
        report,
    })
}

/// The version the blue fleet serves before any deployment.
pub fn initial_version() -> &'static str {
    INITIAL_VERSION
}
