//! The imperative shell of the CLI: each command reads AWS through
//! `greenlight_aws`, decides with the pure functions of this crate and of
//! `greenlight_core`, and prints.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use greenlight_aws::deployment::{read_deployment, read_deployment_summary, ReadError};
use greenlight_aws::deployment_control::{continue_deployment, stop_with_rollback, StopOutcome};
use greenlight_aws::deployment_group::{read_deployment_group, GroupReadError};
use greenlight_aws::deployment_list::{active_deployment, recent_deployments};
use greenlight_aws::executions::{describe_execution, is_missing_execution, latest_state_output};
use greenlight_aws::{artifacts, now_ms, reports, AwsError};
use greenlight_core::runbook::{marker_key, ReportMarker};
use greenlight_core::trigger::{
    execution_arn, execution_name, revision_identity, ExecutionStatus, UploadedObject,
};
use greenlight_core::watch::RecentDeployment;
use greenlight_core::watch::{
    blue_termination_wait_seconds, execution_of_description, own_deployment, Predictions,
};
use greenlight_core::{DeploymentStatus, PipelineInput, PipelineState};
use serde::Serialize;

use crate::cli::{Command, Global};
use crate::outcome::{
    parse_subject, rollback_choice, rollback_key, upload_key, KeyError, Outcome, PastDeployment,
    Subject, EXIT_ERROR,
};
use crate::report::{
    build_report, progress_key, progress_line, render, scale_report, Look, Report,
};

/// Why a command could not do its work (exit code [`EXIT_ERROR`], or 6 for a rejection).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{what} is not set: pass {flag} or set {env}")]
    Missing {
        what: &'static str,
        flag: &'static str,
        env: &'static str,
    },
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Deployment(#[from] ReadError),
    #[error(transparent)]
    Group(#[from] GroupReadError),
    #[error("{0}")]
    NotFound(String),
    #[error("cannot read {path}: {error}")]
    Io { path: String, error: String },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("rejected: {0}")]
    Rejected(String),
    #[error("{0}")]
    Refused(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Rejected(_) | CliError::Key(_) => Outcome::Rejected.exit_code(),
            _ => EXIT_ERROR,
        }
    }
}

/// The SDK clients the commands use.
pub struct Clients {
    pub codedeploy: aws_sdk_codedeploy::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub s3: aws_sdk_s3::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
}

impl Clients {
    /// Clients from one SDK configuration; S3 path-style when an endpoint is
    /// given (the local cloud serves every bucket on one host).
    pub fn new(sdk: &aws_config::SdkConfig, path_style: bool) -> Self {
        Self {
            codedeploy: aws_sdk_codedeploy::Client::new(sdk),
            sfn: aws_sdk_sfn::Client::new(sdk),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(sdk),
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(sdk)
                    .force_path_style(path_style)
                    .build(),
            ),
        }
    }
}

/// The SDK configuration from the global options: profile, region, endpoint
/// (`AWS_ENDPOINT_URL` is read by clap into `endpoint_url`), greenlight's timeouts.
pub async fn sdk_config(global: &Global) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(greenlight_aws::sdk_timeouts())
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(greenlight_aws::MAX_ATTEMPTS),
        );
    if let Some(p) = &global.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &global.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    if let Some(e) = &global.endpoint_url {
        loader = loader.endpoint_url(e);
    }
    loader.load().await
}

struct Ctx<'a> {
    global: &'a Global,
    clients: &'a Clients,
    out: &'a mut dyn Write,
    /// Whether `watch` draws bars (a terminal) or prints plain lines.
    tty: bool,
}

fn state_machine(global: &Global) -> Result<&str, CliError> {
    global
        .state_machine_arn
        .as_deref()
        .ok_or(CliError::Missing {
            what: "the pipeline state machine ARN",
            flag: "--state-machine-arn",
            env: "GREENLIGHT_STATE_MACHINE_ARN",
        })
}

fn bucket(global: &Global) -> Result<&str, CliError> {
    global.bucket.as_deref().ok_or(CliError::Missing {
        what: "the artifact bucket",
        flag: "--bucket",
        env: "GREENLIGHT_BUCKET",
    })
}

fn emit(ctx: &mut Ctx<'_>, text: &str) {
    let _ = ctx.out.write_all(text.as_bytes());
    let _ = ctx.out.flush();
}

fn emit_json<T: Serialize>(ctx: &mut Ctx<'_>, value: &T) {
    let text =
        serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    emit(ctx, &format!("{text}\n"));
}

/// Where to look: an execution, a deployment, or both.
#[derive(Debug, Clone, Default)]
struct Located {
    execution_arn: Option<String>,
    deployment_id: Option<String>,
}

async fn locate(
    ctx: &Ctx<'_>,
    subject: Option<&str>,
    app: Option<&str>,
    group: Option<&str>,
) -> Result<Located, CliError> {
    match (subject, app, group) {
        (Some(s), _, _) => match parse_subject(s) {
            Subject::Deployment(id) => Ok(Located {
                execution_arn: None,
                deployment_id: Some(id),
            }),
            Subject::ExecutionArn(arn) => Ok(Located {
                execution_arn: Some(arn),
                deployment_id: None,
            }),
            Subject::ExecutionName(name) => {
                let sm = state_machine(ctx.global)?;
                let arn = execution_arn(sm, &name).ok_or_else(|| {
                    CliError::NotFound(format!(
                        "{sm} is not a state machine ARN (arn:aws:states:<region>:<account>:stateMachine:<name>)"
                    ))
                })?;
                Ok(Located {
                    execution_arn: Some(arn),
                    deployment_id: None,
                })
            }
        },
        (None, Some(app), Some(group)) => {
            let active = active_deployment(&ctx.clients.codedeploy, app, group).await?;
            let id = match active {
                Some(id) => id,
                None => newest_first(ctx, app, group, 30, now_ms())
                    .await?
                    .into_iter()
                    .next()
                    .map(|d| d.deployment_id)
                    .ok_or_else(|| {
                        CliError::NotFound(format!(
                            "deployment group {app}/{group} has no deployment in the last 30 days"
                        ))
                    })?,
            };
            Ok(Located {
                execution_arn: None,
                deployment_id: Some(id),
            })
        }
        _ => Err(CliError::NotFound(
            "name a deployment (d-...), an execution, or pass --app and --group".into(),
        )),
    }
}

/// The predictions for a look: the execution's own (tuning, config, the
/// group's termination wait) once its state is readable (a succeeded
/// execution's output); before that greenlight's default tuned profile.
fn predictions_for(state: Option<&PipelineState>, termination_wait: Option<u32>) -> Predictions {
    if let Some(s) = state.filter(|s| s.tuning.is_some() || s.deployment.is_some()) {
        return Predictions::for_pipeline(s.tuning.as_ref(), s.deployment.as_ref());
    }
    let profile = greenlight_core::tuning::FastProfile::default();
    let mut p = Predictions {
        allow_traffic_seconds: greenlight_core::tuning::allow_traffic_seconds(
            &profile.health_check,
        ),
        block_traffic_seconds: profile.deregistration_delay_seconds,
        ..Predictions::default()
    };
    if let Some(w) = termination_wait {
        p.terminating_seconds = w.saturating_add(greenlight_core::watch::BLUE_TERMINATE_SECONDS);
    }
    p
}

/// One look at an execution and its deployment.
async fn look(ctx: &Ctx<'_>, located: &mut Located) -> Result<(Look, Predictions), CliError> {
    let mut result = Look::default();
    let mut state: Option<PipelineState> = None;
    // A deployment named alone: its description names the execution.
    if located.execution_arn.is_none() {
        if let (Some(id), Some(sm)) = (&located.deployment_id, &ctx.global.state_machine_arn) {
            let d = read_deployment_summary(&ctx.clients.codedeploy, id).await?;
            if let Some(name) = d.description.as_deref().and_then(execution_of_description) {
                located.execution_arn = execution_arn(sm, name);
            }
        }
    }
    if let Some(arn) = &located.execution_arn {
        let exec = describe_execution(&ctx.clients.sfn, arn)
            .await
            .map_err(|e| {
                if is_missing_execution(&e) {
                    CliError::NotFound(format!("execution {arn} does not exist: {e}"))
                } else {
                    CliError::Aws(e)
                }
            })?;
        let input: Option<PipelineInput> = exec
            .input
            .as_deref()
            .and_then(|i| serde_json::from_str(i).ok());
        if let ExecutionStatus::Succeeded { output: Some(o) } = &exec.status {
            state = serde_json::from_str(o).ok();
        }
        if state.is_none() {
            // Running or failed: the newest state a task exited with.
            state = latest_state_output(&ctx.clients.sfn, arn, |o| {
                serde_json::from_str::<PipelineState>(o).ok()
            })
            .await?;
        }
        result.validation = state.as_ref().and_then(|s| s.validation.clone());
        if let Some(i) = &input {
            result.application = Some(i.application.clone());
            result.deployment_group = Some(i.deployment_group.clone());
            result.revision = Some(i.revision.label.clone());
            if located.deployment_id.is_none() {
                located.deployment_id = state
                    .as_ref()
                    .and_then(|s| s.deployment.as_ref())
                    .map(|d| d.deployment_id.clone());
            }
            if located.deployment_id.is_none() {
                let recent = recent_deployments(
                    &ctx.clients.codedeploy,
                    &i.application,
                    &i.deployment_group,
                    i.uploaded_at_ms - 300_000,
                    now_ms() + 300_000,
                )
                .await?;
                located.deployment_id =
                    own_deployment(&exec.name, &recent).map(|d| d.deployment_id.clone());
            }
        }
        result.execution = Some((exec.name, exec.status));
    }
    let mut termination_wait = None;
    if let Some(id) = &located.deployment_id {
        let d = read_deployment(&ctx.clients.codedeploy, id).await?;
        if state.is_none() {
            if let Ok(facts) =
                read_deployment_group(&ctx.clients.codedeploy, &d.application, &d.deployment_group)
                    .await
            {
                termination_wait = blue_termination_wait_seconds(
                    facts.termination_action.as_deref(),
                    facts.termination_wait_minutes.unwrap_or(0),
                );
            }
        }
        result.deployment = Some(d);
    }
    let predictions = predictions_for(state.as_ref(), termination_wait);
    Ok((result, predictions))
}

async fn report_of(ctx: &Ctx<'_>, located: &mut Located) -> Result<Report, CliError> {
    let (l, p) = look(ctx, located).await?;
    Ok(scale_report(
        build_report(&l, &p, now_ms()),
        ctx.global.time_scale,
    ))
}

/// Follows until the outcome is final, `timeout` runs out (TimedOut) or
/// Ctrl-C (InProgress; the deployment goes on). Prints progress unless JSON.
async fn follow(
    ctx: &mut Ctx<'_>,
    located: &mut Located,
    timeout: Option<u64>,
    live: bool,
) -> Result<Report, CliError> {
    let started = Instant::now();
    let mut last_key = String::new();
    loop {
        let mut report = report_of(ctx, located).await?;
        if live && !ctx.global.json {
            if ctx.tty {
                emit(ctx, &format!("\x1b[2J\x1b[H{}", render(&report, true)));
            } else {
                let key = progress_key(&report);
                if key != last_key {
                    let line = progress_line(&report);
                    emit(ctx, &format!("{line}\n"));
                    last_key = key;
                }
            }
        }
        if report.outcome.is_final() {
            return Ok(report);
        }
        if let Some(t) = timeout {
            if started.elapsed() >= Duration::from_secs(t) {
                report.outcome = Outcome::TimedOut;
                report.exit_code = Outcome::TimedOut.exit_code();
                return Ok(report);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(ctx.global.interval.max(1))) => {}
            _ = tokio::signal::ctrl_c() => {
                if !ctx.global.json {
                    emit(ctx, "stopped watching (Ctrl-C); the deployment goes on\n");
                }
                return Ok(report);
            }
        }
    }
}

fn finish(ctx: &mut Ctx<'_>, report: &Report) -> u8 {
    if ctx.global.json {
        emit_json(ctx, report);
    } else {
        emit(ctx, &render(report, false));
    }
    report.exit_code
}

/// Waits for the execution `arn` to exist (the trigger starts it after the
/// upload's event); `false` when it does not within `seconds`.
async fn await_execution(ctx: &Ctx<'_>, arn: &str, seconds: u64) -> Result<bool, CliError> {
    let started = Instant::now();
    loop {
        match describe_execution(&ctx.clients.sfn, arn).await {
            Ok(_) => return Ok(true),
            Err(e) if is_missing_execution(&e) => {}
            Err(e) => return Err(e.into()),
        }
        if started.elapsed() >= Duration::from_secs(seconds) {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// What `deploy` and `rollback` print before following.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Uploaded {
    bucket: String,
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    execution_name: String,
    execution_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    from_deployment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<Report>,
}

#[allow(clippy::too_many_arguments)]
async fn start_and_follow(
    ctx: &mut Ctx<'_>,
    app: &str,
    group: &str,
    obj: UploadedObject,
    from_deployment: Option<String>,
    wait: bool,
    timeout: Option<u64>,
    start_timeout: u64,
) -> Result<u8, CliError> {
    let sm = state_machine(ctx.global)?.to_string();
    let identity = revision_identity(&obj).unwrap_or_default();
    let name = execution_name(app, group, &obj.bucket, &obj.key, &identity);
    let arn = execution_arn(&sm, &name)
        .ok_or_else(|| CliError::NotFound(format!("{sm} is not a state machine ARN")))?;
    let mut uploaded = Uploaded {
        bucket: obj.bucket.clone(),
        key: obj.key.clone(),
        version: obj.version.clone(),
        execution_name: name.clone(),
        execution_arn: arn.clone(),
        from_deployment,
        report: None,
    };
    if !ctx.global.json {
        emit(
            ctx,
            &format!(
                "uploaded s3://{}/{}{}\nexecution {name}\n",
                obj.bucket,
                obj.key,
                obj.version
                    .as_deref()
                    .map(|v| format!(" (version {v})"))
                    .unwrap_or_default()
            ),
        );
    }
    if !wait {
        if ctx.global.json {
            emit_json(ctx, &uploaded);
        }
        return Ok(0);
    }
    if !await_execution(ctx, &arn, start_timeout).await? {
        return Err(CliError::Rejected(format!(
            "no execution {name} started within {start_timeout} s of the upload: the trigger refused it (its reason is in the RejectedUploads queue and the trigger's logs), or the bucket's EventBridge notifications are off"
        )));
    }
    let mut located = Located {
        execution_arn: Some(arn),
        deployment_id: None,
    };
    let report = follow(ctx, &mut located, timeout, true).await?;
    let code = report.exit_code;
    if ctx.global.json {
        uploaded.report = Some(report);
        emit_json(ctx, &uploaded);
    } else {
        emit(ctx, &render(&report, false));
    }
    Ok(code)
}

/// A deployment group's gate, checked before uploading: the trigger would
/// reject the upload otherwise (`GroupNotGated`).
async fn check_group(ctx: &Ctx<'_>, app: &str, group: &str) -> Result<(), CliError> {
    let facts = match read_deployment_group(&ctx.clients.codedeploy, app, group).await {
        Ok(facts) => facts,
        // The trigger rejects such an upload (UnknownApplication / UnknownDeploymentGroup).
        Err(e @ GroupReadError::NotFound { .. }) => return Err(CliError::Rejected(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    let target = greenlight_core::trigger::Target {
        application: app.to_string(),
        deployment_group: group.to_string(),
    };
    // The pipeline's deadlines are template parameters the CLI does not
    // know: only the group's shape is checked here (the waits against the
    // deadlines are `plan`'s and the trigger's), so no upload the trigger
    // would accept is refused.
    let deadlines = greenlight_core::trigger::Deadlines {
        deployment_timeout_seconds: u32::MAX,
        post_reroute_timeout_seconds: u32::MAX,
    };
    greenlight_core::trigger::check_gated(&target, &facts, &deadlines)
        .map_err(|r| CliError::Rejected(r.to_string()))
}

/// Runs one parsed command; the exit code.
pub async fn run(command: &Command, global: &Global, clients: &Clients, out: &mut dyn Write) -> u8 {
    let tty = std::io::stdout().is_terminal();
    let mut ctx = Ctx {
        global,
        clients,
        out,
        tty,
    };
    match dispatch(&mut ctx, command).await {
        Ok(code) => code,
        Err(e) => {
            let code = e.exit_code();
            if global.json {
                emit_json(
                    &mut ctx,
                    &serde_json::json!({"error": e.to_string(), "exitCode": code}),
                );
            } else {
                eprintln!("greenlight: {e}");
            }
            code
        }
    }
}

async fn dispatch(ctx: &mut Ctx<'_>, command: &Command) -> Result<u8, CliError> {
    match command {
        Command::Deploy {
            bundle,
            group,
            key_prefix,
            wait,
            timeout,
            start_timeout,
        } => {
            let file = bundle
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or_default()
                .to_string();
            let key = upload_key(&ctx.global.prefix, &group.app, key_prefix.as_deref(), &file)?;
            let body = std::fs::read(bundle).map_err(|e| CliError::Io {
                path: bundle.display().to_string(),
                error: e.to_string(),
            })?;
            let bucket = bucket(ctx.global)?.to_string();
            state_machine(ctx.global)?;
            check_group(ctx, &group.app, &group.group).await?;
            let obj = artifacts::put_bundle(&ctx.clients.s3, &bucket, &key, body).await?;
            start_and_follow(
                ctx,
                &group.app,
                &group.group,
                obj,
                None,
                *wait,
                *timeout,
                *start_timeout,
            )
            .await
        }
        Command::Status {
            subject,
            app,
            group,
        } => {
            let mut located =
                locate(ctx, subject.as_deref(), app.as_deref(), group.as_deref()).await?;
            let report = report_of(ctx, &mut located).await?;
            Ok(finish(ctx, &report))
        }
        Command::Wait {
            subject,
            app,
            group,
            timeout,
        } => {
            let mut located =
                locate(ctx, subject.as_deref(), app.as_deref(), group.as_deref()).await?;
            let report = follow(ctx, &mut located, *timeout, false).await?;
            Ok(finish(ctx, &report))
        }
        Command::Watch {
            subject,
            app,
            group,
        } => {
            let mut located =
                locate(ctx, subject.as_deref(), app.as_deref(), group.as_deref()).await?;
            let report = follow(ctx, &mut located, None, true).await?;
            Ok(finish(ctx, &report))
        }
        Command::History {
            group,
            limit,
            days,
            html,
        } => {
            history(
                ctx,
                &group.app,
                &group.group,
                *limit,
                *days,
                html.as_deref(),
            )
            .await
        }
        Command::Logs { deployment } => logs(ctx, deployment).await,
        Command::Promote { subject } => promote_or_abort(ctx, subject, true).await,
        Command::Abort { subject } => promote_or_abort(ctx, subject, false).await,
        Command::Plan {
            group,
            instances,
            deployment_timeout_seconds,
            post_reroute_timeout_seconds,
            approval_deadline,
            standby_target_group,
        } => {
            let deadlines = greenlight_core::trigger::Deadlines {
                deployment_timeout_seconds: *deployment_timeout_seconds,
                post_reroute_timeout_seconds: *post_reroute_timeout_seconds,
            };
            plan(
                ctx,
                &group.app,
                &group.group,
                *instances,
                &deadlines,
                *approval_deadline,
                standby_target_group.as_deref(),
            )
            .await
        }
        Command::Rollback {
            group,
            wait,
            timeout,
            days,
        } => rollback(ctx, &group.app, &group.group, *wait, *timeout, *days).await,
    }
}

/// The group's deployments of the last `days` days before `now`, newest first.
async fn newest_first(
    ctx: &Ctx<'_>,
    app: &str,
    group: &str,
    days: u32,
    now: i64,
) -> Result<Vec<RecentDeployment>, CliError> {
    let mut recent = recent_deployments(
        &ctx.clients.codedeploy,
        app,
        group,
        now - i64::from(days) * 86_400_000,
        now,
    )
    .await?;
    recent.sort_by_key(|d| std::cmp::Reverse(d.created_at_ms));
    Ok(recent)
}

async fn history(
    ctx: &mut Ctx<'_>,
    app: &str,
    group: &str,
    limit: usize,
    days: u32,
    html: Option<&std::path::Path>,
) -> Result<u8, CliError> {
    let recent = newest_first(ctx, app, group, days, now_ms()).await?;
    let mut reports = Vec::new();
    for d in recent.into_iter().take(limit) {
        let mut located = Located {
            execution_arn: None,
            deployment_id: Some(d.deployment_id),
        };
        reports.push(report_of(ctx, &mut located).await?);
    }
    if ctx.global.json {
        emit_json(ctx, &reports);
    } else if reports.is_empty() {
        emit(
            ctx,
            &format!("no deployments of {app}/{group} in the last {days} days\n"),
        );
    } else {
        let text = crate::report::render_history(&reports);
        emit(ctx, &text);
    }
    if let Some(path) = html {
        let page = crate::report::history_html(app, group, &reports, now_ms());
        std::fs::write(path, page).map_err(|e| CliError::Io {
            path: path.display().to_string(),
            error: format!("cannot write the HTML timeline: {e}"),
        })?;
        if !ctx.global.json {
            emit(ctx, &format!("timeline written to {}\n", path.display()));
        }
    }
    Ok(0)
}

async fn logs(ctx: &mut Ctx<'_>, deployment: &str) -> Result<u8, CliError> {
    let bucket = ctx.global.report_bucket.clone().ok_or(CliError::Missing {
        what: "the failure reports' bucket",
        flag: "--report-bucket",
        env: "GREENLIGHT_REPORT_BUCKET",
    })?;
    let prefix = ctx.global.report_prefix.clone();
    let mut keys = vec![marker_key(&prefix, Some(deployment), "")];
    let d = read_deployment_summary(&ctx.clients.codedeploy, deployment).await?;
    if let Some(name) = d.description.as_deref().and_then(execution_of_description) {
        keys.push(marker_key(&prefix, None, name));
    }
    for key in &keys {
        let Some(stored) = reports::get_marker(&ctx.clients.s3, &bucket, key).await? else {
            continue;
        };
        let marker: ReportMarker = serde_json::from_slice(&stored.body).map_err(|e| {
            CliError::NotFound(format!(
                "s3://{bucket}/{key} is not a failure report greenlight can read: {e}"
            ))
        })?;
        if ctx.global.json {
            emit_json(ctx, &marker);
        } else {
            emit(ctx, &crate::report::render_marker(&marker));
        }
        return Ok(0);
    }
    Err(CliError::NotFound(format!(
        "no failure report for {deployment} in s3://{bucket}/{prefix} (deployment status {}): the failure handler writes one when a deployment fails or is stopped",
        greenlight_core::watch::status_name(d.status)
    )))
}

async fn promote_or_abort(ctx: &mut Ctx<'_>, subject: &str, promote: bool) -> Result<u8, CliError> {
    let mut located = locate(ctx, Some(subject), None, None).await?;
    let (l, _) = look(ctx, &mut located).await?;
    // An execution waiting for a human's approval (its AwaitApproval task
    // token) is answered first: the pipeline then continues or stops the
    // deployment itself.
    if let Some(arn) = &located.execution_arn {
        use greenlight_aws::approval::{answer_approval, ApprovalError};
        let answer = greenlight_core::approval::ApprovalAnswer {
            approved: promote,
            by: std::env::var("USER")
                .map(|u| format!("{u} (greenlight CLI)"))
                .unwrap_or_else(|_| "greenlight CLI".to_string()),
            reason: (!promote).then(|| "greenlight abort".to_string()),
        };
        match answer_approval(&ctx.clients.sfn, arn, &answer).await {
            Ok(_) => {
                let action = if promote { "approved" } else { "rejected" };
                let name = arn.rsplit(':').next().unwrap_or(arn).to_string();
                if ctx.global.json {
                    emit_json(
                        ctx,
                        &serde_json::json!({"execution": name, "action": action, "detail": "answered the pending approval"}),
                    );
                } else {
                    emit(
                        ctx,
                        &format!("{action} the pending approval of execution {name}\n"),
                    );
                }
                return Ok(0);
            }
            Err(ApprovalError::NotPending { .. }) => {}
            Err(ApprovalError::Aws(e)) => return Err(e.into()),
        }
    }
    let d = l
        .deployment
        .ok_or_else(|| CliError::NotFound(format!("{subject} has no CodeDeploy deployment yet")))?;
    let status = greenlight_core::watch::status_name(d.status);
    let (action, detail) = if promote {
        if d.status != DeploymentStatus::Ready {
            return Err(CliError::Refused(format!(
                "deployment {} is {status}, not waiting at the gate (Ready): nothing to promote",
                d.deployment_id
            )));
        }
        continue_deployment(&ctx.clients.codedeploy, &d.deployment_id).await?;
        (
            "promoted",
            "ContinueDeployment(READY_WAIT): traffic moves to the green fleet".to_string(),
        )
    } else {
        if d.status.is_terminal() {
            return Err(CliError::Refused(format!(
                "deployment {} has already ended ({status}): nothing to abort",
                d.deployment_id
            )));
        }
        match stop_with_rollback(&ctx.clients.codedeploy, &d.deployment_id).await? {
            StopOutcome::Stopping { status, message } => (
                "aborted",
                format!("StopDeployment with rollback: {status} {message}")
                    .trim()
                    .to_string(),
            ),
            StopOutcome::AlreadyCompleted => {
                return Err(CliError::Refused(format!(
                    "deployment {} completed before it could be stopped",
                    d.deployment_id
                )))
            }
        }
    };
    if ctx.global.json {
        emit_json(
            ctx,
            &serde_json::json!({"deploymentId": d.deployment_id, "action": action, "detail": detail}),
        );
    } else {
        emit(ctx, &format!("{action} {}: {detail}\n", d.deployment_id));
    }
    Ok(0)
}

async fn rollback(
    ctx: &mut Ctx<'_>,
    app: &str,
    group: &str,
    wait: bool,
    timeout: Option<u64>,
    days: u32,
) -> Result<u8, CliError> {
    let sm = state_machine(ctx.global)?.to_string();
    let bucket = bucket(ctx.global)?.to_string();
    let now = now_ms();
    let recent = newest_first(ctx, app, group, days, now).await?;
    let mut past = Vec::new();
    for d in &recent {
        let v = read_deployment_summary(&ctx.clients.codedeploy, &d.deployment_id).await?;
        past.push(PastDeployment {
            deployment_id: v.deployment_id.clone(),
            status: v.status,
            execution_name: v
                .description
                .as_deref()
                .and_then(execution_of_description)
                .map(str::to_string),
            creator: v.creator.clone(),
        });
    }
    let chosen = rollback_choice(&past).ok_or_else(|| {
        CliError::NotFound(format!(
            "{app}/{group} has no earlier succeeded greenlight deployment in the last {days} days to roll back to"
        ))
    })?;
    let name = chosen.execution_name.clone().unwrap_or_default();
    let arn = execution_arn(&sm, &name)
        .ok_or_else(|| CliError::NotFound(format!("{sm} is not a state machine ARN")))?;
    let exec = describe_execution(&ctx.clients.sfn, &arn).await?;
    let input: PipelineInput = exec
        .input
        .as_deref()
        .and_then(|i| serde_json::from_str(i).ok())
        .ok_or_else(|| {
            CliError::NotFound(format!(
                "execution {name} (deployment {}) has no readable input naming its revision",
                chosen.deployment_id
            ))
        })?;
    let rev = input.revision;
    if rev.bucket != bucket {
        return Err(CliError::Refused(format!(
            "the last good revision is in s3://{}/{}, not in the artifact bucket {bucket}: copy it there yourself",
            rev.bucket, rev.key
        )));
    }
    let to_key = rollback_key(&rev.key, now);
    let obj = artifacts::copy_bundle(
        &ctx.clients.s3,
        &bucket,
        &rev.key,
        rev.version.as_deref(),
        &to_key,
    )
    .await?;
    start_and_follow(
        ctx,
        app,
        group,
        obj,
        Some(chosen.deployment_id.clone()),
        wait,
        timeout,
        120,
    )
    .await
}

/// What `plan` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanReport {
    application: String,
    deployment_group: String,
    deployment_config: String,
    instances: u32,
    checks: Vec<greenlight_core::plan::Check>,
    phases: Vec<greenlight_core::plan::PhasePlan>,
    exit_code: u8,
}

async fn plan(
    ctx: &mut Ctx<'_>,
    app: &str,
    group: &str,
    instances: u32,
    deadlines: &greenlight_core::trigger::Deadlines,
    approval_deadline: Option<u32>,
    standby_target_group: Option<&str>,
) -> Result<u8, CliError> {
    use greenlight_aws::load_balancer::{snapshot, tag_value, target_group_by_name};
    use greenlight_core::plan::{
        agent_evidence, approval_check, group_checks, phase_plan, CheckStatus, TargetGroupState,
        APPLICATION_TAG_KEY,
    };
    let (facts, setup) =
        greenlight_aws::deployment_group::read_group_setup(&ctx.clients.codedeploy, app, group)
            .await?;
    let mut target_groups = Vec::new();
    for name in &facts.target_groups {
        let state = async {
            let tg = target_group_by_name(&ctx.clients.elbv2, name).await?;
            let snap = snapshot(&ctx.clients.elbv2, &tg.arn).await?;
            let tag = tag_value(&ctx.clients.elbv2, &tg.arn, APPLICATION_TAG_KEY).await?;
            Ok::<_, greenlight_aws::load_balancer::LbError>((snap, tag))
        }
        .await;
        target_groups.push(match state {
            Ok((snapshot, application_tag)) => TargetGroupState::Found {
                name: name.clone(),
                snapshot,
                application_tag,
            },
            Err(e) => TargetGroupState::Missing {
                name: name.clone(),
                detail: e.to_string(),
            },
        });
    }
    let recent = newest_first(ctx, app, group, 30, now_ms()).await?;
    let newest = match recent.first() {
        Some(d) => Some(read_deployment(&ctx.clients.codedeploy, &d.deployment_id).await?),
        None => None,
    };
    let agent = agent_evidence(newest.as_ref());
    let mut checks = group_checks(
        app,
        group,
        &facts,
        &setup,
        &target_groups,
        &agent,
        deadlines,
    );
    checks.push(approval_check(
        app,
        group,
        &facts,
        deadlines,
        approval_deadline,
    ));
    if let Some(standby) = standby_target_group {
        use greenlight_aws::load_balancer::target_group_shape;
        use greenlight_core::standby_plan::{standby_check, MainTargetGroup};
        let main = match facts.target_groups.as_slice() {
            [name] => match target_group_shape(&ctx.clients.elbv2, name).await {
                Ok(shape) => MainTargetGroup::One(Box::new(shape)),
                Err(e) => MainTargetGroup::Unreadable {
                    detail: e.to_string(),
                },
            },
            names => MainTargetGroup::NotOne { count: names.len() },
        };
        // A missing standby is the user's to create (the check prints the
        // command), not a deployment group setting to fix: keep only AWS's detail.
        let found = target_group_shape(&ctx.clients.elbv2, standby)
            .await
            .map_err(|e| match e {
                greenlight_aws::load_balancer::LbError::TargetGroupNotFound { detail, .. } => {
                    detail
                }
                other => other.to_string(),
            });
        checks.push(standby_check(
            app,
            standby,
            &main,
            found.as_ref().map_err(String::as_str),
        ));
    }
    let snapshots: Vec<_> = target_groups
        .iter()
        .filter_map(|t| match t {
            TargetGroupState::Found { snapshot, .. } => Some(snapshot.clone()),
            TargetGroupState::Missing { .. } => None,
        })
        .collect();
    let config = setup
        .deployment_config_name
        .clone()
        .unwrap_or_else(|| "CodeDeployDefault.OneAtATime".into());
    let termination = blue_termination_wait_seconds(
        facts.termination_action.as_deref(),
        facts.termination_wait_minutes.unwrap_or(0),
    );
    let phases = phase_plan(
        &snapshots,
        &greenlight_core::tuning::FastProfile::default(),
        termination,
        greenlight_core::watch::Pace::of_config(Some(&config)),
        instances,
    );
    let failed = checks.iter().any(|c| c.status == CheckStatus::Fail);
    let report = PlanReport {
        application: app.to_string(),
        deployment_group: group.to_string(),
        deployment_config: config,
        instances,
        checks,
        phases,
        exit_code: if failed {
            Outcome::Failed.exit_code()
        } else {
            0
        },
    };
    if ctx.global.json {
        emit_json(ctx, &report);
    } else {
        emit(
            ctx,
            &crate::report::render_plan(
                &report.application,
                &report.deployment_group,
                &report.deployment_config,
                report.instances,
                &report.checks,
                &report.phases,
            ),
        );
    }
    Ok(report.exit_code)
}
