//! One scale run (`bench/scale`): a revision uploaded to every group of a
//! local cloud at once, every execution followed to its end (bounded), then
//! each group's outcome, timings, end state and the cross-group check read
//! back through the APIs (the local cloud's own, unthrottled credentials).

use super::{
    cross_group_check, demo_tokens, end_state_problems, Attributed, CrossGroupReport, Expected,
    GroupTokens, Observed,
};
use crate::cloud::LocalCloud;
use crate::revisions::{build_revision, RevisionKind};
use greenlight_core::{DeploymentView, FleetLabel};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// One group of the run, as the run knows it.
#[derive(Debug, Clone)]
struct Group {
    name: String,
    key: String,
    target_group_arn: String,
    listener_arn: String,
    blue_asg: String,
    blue_instances: Vec<String>,
    tokens: Vec<String>,
}

fn groups_of(cloud: &LocalCloud, label: &str) -> Vec<Group> {
    let r = &cloud.resources;
    let mut out = vec![Group {
        name: r.names.deployment_group.clone(),
        key: cloud.revision_key(label),
        target_group_arn: r.target_group_arn.clone(),
        listener_arn: r.listener_arn.clone(),
        blue_asg: r.names.blue_asg.clone(),
        blue_instances: r.blue_instances.clone(),
        tokens: demo_tokens(&r.names),
    }];
    for g in &cloud.groups {
        let g = &g.resources;
        out.push(Group {
            name: g.names.deployment_group.clone(),
            key: LocalCloud::group_revision_key(&g.names, label),
            target_group_arn: g.target_group_arn.clone(),
            listener_arn: g.listener_arn.clone(),
            blue_asg: g.names.blue_asg.clone(),
            blue_instances: g.blue_instances.clone(),
            tokens: g.names.tokens(),
        });
    }
    out
}

/// What happened to one group.
#[derive(Debug, Clone)]
pub struct GroupOutcome {
    pub group: String,
    /// The execution's status (RUNNING when the run's bound passed first;
    /// `NO EXECUTION` when none was found for the upload).
    pub status: String,
    pub deployment_status: Option<String>,
    /// The execution's error and cause when it did not succeed.
    pub error: Option<String>,
    pub upload_to_create_ms: Option<i64>,
    pub succeeded_to_end_ms: Option<i64>,
    pub upload_to_end_ms: Option<i64>,
    /// Where the group's end state differs from what its deployment leaves.
    pub end_state_problems: Vec<String>,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub groups: Vec<GroupOutcome>,
    /// Real time from the first upload to the last execution's end (or the bound).
    pub wall_ms: i64,
    /// Non-internal API calls (greenlight's functions and Step Functions'
    /// Lambda invocations) in the request log, and how many were answered
    /// with a throttling error.
    pub calls: usize,
    pub throttled: usize,
    /// Throttling answers by `service:Operation`.
    pub throttled_by_api: BTreeMap<String, u64>,
    /// The request log's calls, one group named at most each.
    pub calls_check: CrossGroupReport,
    /// The executions' states (input and output of every step), each
    /// naming its own group only.
    pub history_check: CrossGroupReport,
}

/// Uploads one good revision to every group at once (the request log on
/// from just before), waits for every execution to end (at most `bound`),
/// and reads the outcome back. `settings_before`: every target group's
/// health check before the run (interval, timeout, healthy, unhealthy), which
/// greenlight restores.
pub async fn run(
    cloud: &LocalCloud,
    label: &str,
    settings_before: [i32; 4],
    bound: Duration,
) -> Result<RunReport, String> {
    let groups = groups_of(cloud, label);
    cloud.faults.start_call_log();
    let s3 = cloud.s3();
    let bucket = cloud.resources.names.bucket.clone();
    let mut uploads = tokio::task::JoinSet::new();
    for (i, g) in groups.iter().enumerate() {
        let (s3, bucket, key) = (s3.clone(), bucket.clone(), g.key.clone());
        let body = build_revision(RevisionKind::Good, label);
        uploads.spawn(async move {
            let sent = s3
                .put_object()
                .bucket(bucket)
                .key(&key)
                .body(body.into())
                .send()
                .await;
            (
                i,
                now_ms(),
                sent.map_err(|e| greenlight_aws::describe_error(&e)),
            )
        });
    }
    let started = now_ms();
    let mut uploaded_at = vec![0i64; groups.len()];
    while let Some(done) = uploads.join_next().await {
        let (i, at, sent) = done.map_err(|e| format!("upload task: {e}"))?;
        sent.map_err(|e| format!("upload for {}: {e}", groups[i].name))?;
        if let Some(slot) = uploaded_at.get_mut(i) {
            *slot = at;
        }
    }

    // Follow: ListExecutions every second (status, stop date); each new
    // execution described once for its input's key.
    let sfn = aws_sdk_sfn::Client::new(&cloud.sdk);
    let deadline = tokio::time::Instant::now() + bound;
    let mut by_group: Vec<Option<(String, String)>> = vec![None; groups.len()];
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut ended: BTreeMap<String, (String, Option<i64>)> = BTreeMap::new();
    loop {
        let mut executions = Vec::new();
        let mut token = None;
        loop {
            let page = sfn
                .list_executions()
                .state_machine_arn(&cloud.resources.state_machine_arn)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| greenlight_aws::describe_error(&e))?;
            executions.extend(page.executions().iter().cloned());
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        for e in &executions {
            let arn = e.execution_arn().to_string();
            if seen.insert(arn.clone()) {
                let described = sfn
                    .describe_execution()
                    .execution_arn(&arn)
                    .send()
                    .await
                    .map_err(|e| greenlight_aws::describe_error(&e))?;
                let input: serde_json::Value = described
                    .input()
                    .and_then(|i| serde_json::from_str(i).ok())
                    .unwrap_or(serde_json::Value::Null);
                let key = input.pointer("/revision/key").and_then(|k| k.as_str());
                if let Some(i) = groups.iter().position(|g| Some(g.key.as_str()) == key) {
                    if let Some(slot) = by_group.get_mut(i) {
                        *slot = Some((arn.clone(), e.name().to_string()));
                    }
                }
            }
            let status = e.status().as_str().to_string();
            if status != "RUNNING" {
                let stop = e.stop_date().and_then(|d| d.to_millis().ok());
                ended.insert(arn, (status, stop));
            }
        }
        let all_ended = by_group
            .iter()
            .all(|g| g.as_ref().is_some_and(|(arn, _)| ended.contains_key(arn)));
        if all_ended || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let wall_ms = ended
        .values()
        .filter_map(|(_, stop)| *stop)
        .max()
        .unwrap_or_else(now_ms)
        - started;

    // Each group's deployment, end state and state data.
    let cd = aws_sdk_codedeploy::Client::new(&cloud.sdk);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&cloud.sdk);
    let asg = aws_sdk_autoscaling::Client::new(&cloud.sdk);
    let all_asgs = auto_scaling_groups(&asg).await?;
    let mut outcomes = Vec::with_capacity(groups.len());
    let mut tokens = Vec::with_capacity(groups.len());
    let mut histories: Vec<(usize, String, String)> = Vec::new();
    // Lambda's invocation records of the uploads the trigger rejected (read
    // only when an upload has no execution).
    let rejected = if by_group.iter().any(Option::is_none) {
        crate::scenarios::rejected_records(cloud)
            .await
            .map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };
    for (i, g) in groups.iter().enumerate() {
        let mut group_tokens: BTreeSet<String> = g.tokens.iter().cloned().collect();
        group_tokens.extend(g.blue_instances.iter().cloned());
        let Some((arn, name)) = by_group.get(i).cloned().flatten() else {
            outcomes.push(GroupOutcome {
                group: g.name.clone(),
                status: "NO EXECUTION".into(),
                deployment_status: None,
                error: None,
                upload_to_create_ms: None,
                succeeded_to_end_ms: None,
                upload_to_end_ms: None,
                end_state_problems: vec![rejection_of(&rejected, &g.key)],
            });
            tokens.push(GroupTokens {
                group: g.name.clone(),
                tokens: group_tokens,
            });
            continue;
        };
        group_tokens.insert(name.clone());
        let (status, stop) = ended
            .get(&arn)
            .cloned()
            .unwrap_or_else(|| ("RUNNING".into(), None));
        let view = deployment_of(&cd, &cloud.resources.names.application, &g.name, &name).await;
        let uploaded = uploaded_at.get(i).copied().unwrap_or_default();
        let mut problems = Vec::new();
        if let Some(v) = &view {
            group_tokens.insert(v.deployment_id.clone());
            group_tokens.extend(v.targets.iter().map(|t| t.instance_id.clone()));
            let expected = Expected {
                target_group_arn: g.target_group_arn.clone(),
                green: v
                    .targets
                    .iter()
                    .filter(|t| t.label == Some(FleetLabel::Green))
                    .map(|t| t.instance_id.clone())
                    .collect(),
                settings: settings_before,
                green_asg: format!("CodeDeploy_{}_{}", g.name, v.deployment_id),
            };
            let observed = observe(&elb, g, &all_asgs).await?;
            problems = end_state_problems(&expected, &observed);
        } else {
            problems.push("no deployment was found for the execution".into());
        }
        let error = if status == "SUCCEEDED" {
            None
        } else {
            sfn.describe_execution()
                .execution_arn(&arn)
                .send()
                .await
                .ok()
                .map(|d| {
                    format!(
                        "{}: {}",
                        d.error().unwrap_or_default(),
                        d.cause().unwrap_or_default()
                    )
                })
        };
        for (n, text) in history(&sfn, &arn).await?.into_iter().enumerate() {
            histories.push((i, format!("{}: history event {}", g.name, n + 1), text));
        }
        outcomes.push(GroupOutcome {
            group: g.name.clone(),
            status,
            deployment_status: view
                .as_ref()
                .map(|v| greenlight_core::watch::status_name(v.status).to_string()),
            error,
            upload_to_create_ms: view
                .as_ref()
                .and_then(|v| v.created_at_ms)
                .map(|c| c - uploaded),
            succeeded_to_end_ms: match (view.as_ref().and_then(|v| v.completed_at_ms), stop) {
                (Some(c), Some(s)) => Some(s - c),
                _ => None,
            },
            upload_to_end_ms: stop.map(|s| s - uploaded),
            end_state_problems: problems,
        });
        tokens.push(GroupTokens {
            group: g.name.clone(),
            tokens: group_tokens,
        });
    }

    let log = cloud.faults.take_call_log();
    let call_texts: Vec<Attributed<'_>> = log
        .iter()
        .map(|c| Attributed {
            owner: None,
            what: format!("{}:{}", c.service, c.operation),
            text: &c.text,
        })
        .collect();
    let history_texts: Vec<Attributed<'_>> = histories
        .iter()
        .map(|(owner, what, text)| Attributed {
            owner: Some(*owner),
            what: what.clone(),
            text,
        })
        .collect();
    Ok(RunReport {
        groups: outcomes,
        wall_ms,
        calls: log.len(),
        throttled: log.iter().filter(|c| c.throttled).count(),
        throttled_by_api: cloud.faults.throttled_counts(),
        calls_check: cross_group_check(&call_texts, &tokens),
        history_check: cross_group_check(&history_texts, &tokens),
    })
}

async fn auto_scaling_groups(
    asg: &aws_sdk_autoscaling::Client,
) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let mut out = BTreeMap::new();
    let mut token = None;
    loop {
        let page = asg
            .describe_auto_scaling_groups()
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| greenlight_aws::describe_error(&e))?;
        for g in page.auto_scaling_groups() {
            out.insert(
                g.auto_scaling_group_name().unwrap_or_default().to_string(),
                g.instances()
                    .iter()
                    .filter_map(|i| i.instance_id().map(str::to_string))
                    .collect(),
            );
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

async fn observe(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    g: &Group,
    all_asgs: &BTreeMap<String, BTreeSet<String>>,
) -> Result<Observed, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let listeners = elb
        .describe_listeners()
        .listener_arns(&g.listener_arn)
        .send()
        .await
        .map_err(|e| err(&greenlight_aws::describe_error(&e)))?;
    let mut listener_forwards_to = Vec::new();
    for l in listeners.listeners() {
        for a in l.default_actions() {
            if let Some(tg) = a.target_group_arn() {
                listener_forwards_to.push(tg.to_string());
            }
            if let Some(f) = a.forward_config() {
                for t in f.target_groups() {
                    if t.weight().unwrap_or(1) > 0 {
                        if let Some(arn) = t.target_group_arn() {
                            if !listener_forwards_to.iter().any(|x| x == arn) {
                                listener_forwards_to.push(arn.to_string());
                            }
                        }
                    }
                }
            }
        }
    }
    let health = elb
        .describe_target_health()
        .target_group_arn(&g.target_group_arn)
        .send()
        .await
        .map_err(|e| err(&greenlight_aws::describe_error(&e)))?;
    let registered = health
        .target_health_descriptions()
        .iter()
        .filter_map(|t| t.target().and_then(|t| t.id()).map(str::to_string))
        .collect();
    let tgs = elb
        .describe_target_groups()
        .target_group_arns(&g.target_group_arn)
        .send()
        .await
        .map_err(|e| err(&greenlight_aws::describe_error(&e)))?;
    let tg = tgs.target_groups().first();
    let settings = [
        tg.and_then(|t| t.health_check_interval_seconds())
            .unwrap_or_default(),
        tg.and_then(|t| t.health_check_timeout_seconds())
            .unwrap_or_default(),
        tg.and_then(|t| t.healthy_threshold_count())
            .unwrap_or_default(),
        tg.and_then(|t| t.unhealthy_threshold_count())
            .unwrap_or_default(),
    ];
    let green_prefix = format!("CodeDeploy_{}_", g.name);
    let asgs = all_asgs
        .iter()
        .filter(|(name, _)| **name == g.blue_asg || name.starts_with(&green_prefix))
        .map(|(n, i)| (n.clone(), i.clone()))
        .collect();
    Ok(Observed {
        listener_forwards_to,
        registered,
        settings,
        asgs,
    })
}

/// The deployment of `group` whose description names execution `name`.
async fn deployment_of(
    cd: &aws_sdk_codedeploy::Client,
    application: &str,
    group: &str,
    name: &str,
) -> Option<DeploymentView> {
    let list = cd
        .list_deployments()
        .application_name(application)
        .deployment_group_name(group)
        .send()
        .await
        .ok()?;
    for id in list.deployments() {
        let view = greenlight_aws::deployment::read_deployment(cd, id)
            .await
            .ok()?;
        if view
            .description
            .as_deref()
            .and_then(greenlight_core::watch::execution_of_description)
            == Some(name)
        {
            return Some(view);
        }
    }
    None
}

/// An event's inputs, outputs, parameters, errors and causes (the SDK's
/// Debug redacts them as sensitive), after its type.
fn event_data(e: &aws_sdk_sfn::types::HistoryEvent) -> String {
    let mut parts: Vec<&str> = vec![e.r#type().as_str()];
    if let Some(d) = e.execution_started_event_details() {
        parts.extend(d.input());
    }
    if let Some(d) = e.execution_succeeded_event_details() {
        parts.extend(d.output());
    }
    if let Some(d) = e.execution_failed_event_details() {
        parts.extend(d.error());
        parts.extend(d.cause());
    }
    if let Some(d) = e.state_entered_event_details() {
        parts.push(d.name());
        parts.extend(d.input());
    }
    if let Some(d) = e.state_exited_event_details() {
        parts.push(d.name());
        parts.extend(d.output());
    }
    if let Some(d) = e.task_scheduled_event_details() {
        parts.push(d.resource());
        parts.push(d.parameters());
    }
    if let Some(d) = e.task_succeeded_event_details() {
        parts.extend(d.output());
    }
    if let Some(d) = e.task_failed_event_details() {
        parts.extend(d.error());
        parts.extend(d.cause());
    }
    if let Some(d) = e.lambda_function_scheduled_event_details() {
        parts.extend(d.input());
    }
    if let Some(d) = e.lambda_function_succeeded_event_details() {
        parts.extend(d.output());
    }
    if let Some(d) = e.lambda_function_failed_event_details() {
        parts.extend(d.error());
        parts.extend(d.cause());
    }
    parts.join(" ")
}

/// Every event of the execution's history, as text (its inputs and outputs).
async fn history(sfn: &aws_sdk_sfn::Client, arn: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = sfn
            .get_execution_history()
            .execution_arn(arn)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| greenlight_aws::describe_error(&e))?;
        out.extend(page.events().iter().map(event_data));
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

/// Why the upload of `key` has no execution: the trigger's error from its
/// RejectedUploads record, when there is one.
fn rejection_of(records: &[String], key: &str) -> String {
    let record = records
        .iter()
        .filter_map(|r| serde_json::from_str::<serde_json::Value>(r).ok())
        .find(|r| {
            r.get("requestPayload")
                .is_some_and(|p| p.to_string().contains(key))
        });
    match record {
        Some(r) => format!(
            "no execution: the upload was rejected to RejectedUploads ({}: {})",
            r.pointer("/responsePayload/errorType")
                .and_then(|t| t.as_str())
                .unwrap_or("no errorType"),
            r.pointer("/responsePayload/errorMessage")
                .and_then(|m| m.as_str())
                .unwrap_or("no errorMessage")
        ),
        None => {
            "no execution was found for the upload, and no RejectedUploads record names it".into()
        }
    }
}
