//! The `bake` task: one look at the green fleet during CodeDeploy's blue
//! termination wait (see `greenlight_core::bake` for the decision and
//! statemachine/README.md for the loop).
//!
//! One look: read the deployment (still in its termination wait?); on the
//! first look put the target groups' own settings back (the snapshot Tune
//! took), remembering the fast profile that was live; read the watched
//! alarms and the target groups' ELB metrics; when those are clean, probe
//! the green instances as the gate does; decide. Pass →
//! `ContinueDeployment(TERMINATION_WAIT)` (blue is released now). Fail →
//! re-apply the fast profile (so CodeDeploy's rollback re-registers blue in
//! seconds), then `StopDeployment(autoRollbackEnabled)`. Keep watching →
//! the state machine waits `waitSeconds` and asks again.
//!
//! With a standby target group in the group's bake
//! (`greenlight_core::bake::standby`): the first look registers blue's
//! original instances there and weights every listener/rule forwarding to
//! the target group `{main: 1, standby: 0}` (same routing; the standby is
//! now health-checked); a failed bake switches them to `{main: 0, standby:
//! 1}` before the stop when blue is healthy there; a passed bake puts them
//! back to their snapshot and takes blue out before releasing it. After a
//! failed bake, the failure handler puts them back once the rollback ended.

use aws_sdk_codedeploy::types::DeploymentWaitType;
use greenlight_aws::cloudwatch::{alarm_states, target_group_metrics, MetricTarget};
use greenlight_aws::deployment::read_deployment;
use greenlight_aws::deployment_control::{stop_with_rollback, StopOutcome};
use greenlight_aws::deployment_group::read_group_alarm_names;
use greenlight_aws::listener::PutBack;
use greenlight_aws::load_balancer::{self, target_group_load_balancers};
use greenlight_aws::{now_ms, AwsError};
use greenlight_core::bake::standby::{self, StandbyState};
use greenlight_core::bake::standby_record::RecordRead;
use greenlight_core::bake::{
    self, bake_for, BakeDecision, BakeInputs, BakePlan, BakeReport, BakeVerdict, GroupBake,
};
use greenlight_core::model::{DeploymentView, TargetGroupSnapshot, TaskRequest};
use greenlight_core::tuning::Changes;
use lambda_runtime::Context;

use crate::{gate, Action, Deps, Error};

pub(crate) async fn bake_task(
    task: TaskRequest<Action>,
    context: &Context,
    deps: &Deps,
) -> Result<BakeReport, Error> {
    let pipeline = &task.pipeline;
    let created = pipeline.deployment.as_ref().ok_or_else(|| {
        Error::InvalidInput(
            "pipeline.deployment is missing: the Bake state runs only after Create stored $.deployment".to_string(),
        )
    })?;
    let deployment_id = created.deployment_id.trim().to_string();
    if deployment_id.is_empty() {
        return Err(Error::InvalidInput(
            "pipeline.deployment.deploymentId is empty".to_string(),
        ));
    }
    let application = pipeline.input.application.as_str();
    let group = pipeline.input.deployment_group.as_str();
    let now = now_ms();
    // The previous look of this deployment (each look replaces $.bake).
    let previous = pipeline
        .bake
        .as_ref()
        .filter(|b| b.deployment_id == deployment_id);
    let looks = previous.map_or(0, |b| b.looks).saturating_add(1);
    let report = |verdict, summary: String| BakeReport {
        deployment_id: deployment_id.clone(),
        verdict,
        started_at_ms: previous.and_then(|b| b.started_at_ms),
        looked_at_ms: now,
        looks,
        bake_seconds: None,
        wait_seconds: 0,
        evidence: Vec::new(),
        summary,
        saved_seconds: None,
        tuned: previous.map(|b| b.tuned.clone()).unwrap_or_default(),
        standby: previous.and_then(|b| b.standby.clone()),
        standby_note: previous.and_then(|b| b.standby_note.clone()),
    };

    let plan = bake::plan(
        bake_for(&deps.config.bake, application, group),
        pipeline.input.bake_skip.as_ref(),
    );
    let (config, skip) = match plan {
        BakePlan::NotConfigured => {
            let asked = pipeline
                .input
                .bake_skip
                .as_ref()
                .map(|s| {
                    format!(
                        " (a skip was asked by override, {}: nothing to skip)",
                        s.requester(&pipeline.input)
                    )
                })
                .unwrap_or_default();
            return Ok(report(
                BakeVerdict::NotConfigured,
                format!("no bake is configured for {application}/{group}: CodeDeploy's termination wait runs as configured{asked}"),
            ));
        }
        BakePlan::Skip { config, skip } => (config, Some(skip)),
        BakePlan::Watch(config) => (config, None),
    };
    let view = read_deployment(&deps.codedeploy, &deployment_id).await?;
    if view.status.is_terminal() {
        return Ok(report(
            BakeVerdict::Ended,
            format!(
                "deployment {deployment_id} already ended {:?} before the bake decided",
                view.status
            ),
        ));
    }
    if view.termination_wait_started != Some(true) {
        let mut r = report(
            BakeVerdict::Watching,
            format!("deployment {deployment_id} has not begun its termination wait yet"),
        );
        r.bake_seconds = Some(config.bake_seconds);
        r.wait_seconds = config.min_look_seconds.max(1);
        return Ok(r);
    }

    let snapshots: &[TargetGroupSnapshot] = pipeline
        .tuning
        .as_ref()
        .map(|t| t.snapshots.as_slice())
        .unwrap_or_default();
    if let Some(skip) = skip {
        // The emergency override: production gets its own settings back as
        // a first look would, and nothing is watched; no fast profile is
        // kept (no bake can fail, so no rollback re-applies it). The
        // AnnounceBakeSkipped state notifies it next.
        put_back_snapshots(deps, snapshots).await?;
        let requester = skip.requester(&pipeline.input);
        tracing::warn!(deployment_id, requester = %requester, "bake skipped by override");
        let mut r = report(BakeVerdict::Skipped, bake::skipped_summary(&requester));
        r.bake_seconds = Some(config.bake_seconds);
        r.tuned = Vec::new();
        return Ok(r);
    }
    let cloudwatch = deps.cloudwatch.as_ref().ok_or_else(|| {
        Error::InvalidInput(format!(
            "{application}/{group} bakes, but the traffic validator has no CloudWatch client"
        ))
    })?;
    let started_at = previous.and_then(|b| b.started_at_ms).unwrap_or(now);
    // First look: production runs on its own settings from now on, and
    // blue is kept warm in the standby (when the group has one).
    let mut standby = previous.and_then(|b| b.standby.clone());
    let mut standby_note = previous.and_then(|b| b.standby_note.clone());
    let tuned = match previous.filter(|b| b.started_at_ms.is_some()) {
        Some(b) => b.tuned.clone(),
        None => {
            let tuned = put_back_snapshots(deps, snapshots).await?;
            match arm_standby(deps, config, application, group, &deployment_id, &view).await {
                Ok(Some(state)) => {
                    tracing::info!(deployment_id, standby = %state.standby_target_group_arn, routes = state.routes.len(), "standby armed: blue registered, listener weighted main 1 / standby 0");
                    standby = Some(state);
                }
                Ok(None) => {}
                Err(note) => {
                    tracing::warn!(deployment_id, note = %note, "standby not armed: a failed bake returns traffic through CodeDeploy's rollback only");
                    standby_note = Some(note);
                }
            }
            tuned
        }
    };

    let mut names = config.alarms.clone();
    for name in read_group_alarm_names(&deps.codedeploy, application, group)
        .await
        .map_err(Error::Group)?
    {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let alarms = alarm_states(cloudwatch, &names).await?;
    let mut targets = Vec::new();
    for s in snapshots {
        for lb in target_group_load_balancers(&deps.elbv2, &s.target_group_arn)
            .await
            .map_err(Error::LoadBalancer)?
        {
            targets.push(MetricTarget {
                target_group_arn: s.target_group_arn.clone(),
                load_balancer_arn: lb,
            });
        }
    }
    let (from, to) = bake::metric_window(started_at, now, config.period_seconds);
    let samples =
        target_group_metrics(cloudwatch, &targets, from, to, config.period_seconds).await?;

    let mut inputs = BakeInputs {
        config,
        started_at_ms: started_at,
        now_ms: now,
        alarms: &alarms.found,
        missing_alarms: &alarms.missing,
        samples: &samples,
        probe_failures: &[],
    };
    let mut decision = bake::decide(&inputs);
    // Metrics and alarms are clean: probe green as the gate does.
    let probe_failures;
    if !matches!(decision, BakeDecision::Fail { .. }) {
        let run = gate(deps, &view, Some(&pipeline.input.revision.label), context).await?;
        if !run.passed {
            probe_failures = vec![run.summary];
            inputs.probe_failures = &probe_failures;
            inputs.now_ms = now_ms();
            decision = bake::decide(&inputs);
        }
    }

    let mut r = report(BakeVerdict::Watching, String::new());
    r.started_at_ms = Some(started_at);
    r.bake_seconds = Some(config.bake_seconds);
    r.tuned = tuned;
    r.standby = standby;
    r.standby_note = standby_note;
    match decision {
        BakeDecision::KeepWatching { next_look_at_ms } => {
            r.wait_seconds = bake::wait_seconds(now, next_look_at_ms);
            r.summary = format!(
                "green is clean after {} s of a {} s bake; next look in {} s",
                (now - started_at).max(0) / 1_000,
                config.bake_seconds,
                r.wait_seconds
            );
        }
        BakeDecision::Pass { baked_seconds } => {
            // The listener and the standby are put back before blue is
            // released (ContinueDeployment terminates it).
            if let Some(state) = r.standby.as_mut() {
                let remaining = i64::try_from(context.deadline)
                    .ok()
                    .filter(|d| *d > 0)
                    .map(|d| d - now_ms());
                match greenlight_aws::listener::put_back(&deps.elbv2, state, remaining).await {
                    PutBack::Done { detail } => {
                        tracing::info!(deployment_id, detail = %detail, "standby put back")
                    }
                    PutBack::Kept {
                        reason: problem,
                        commands,
                    }
                    | PutBack::Failed {
                        error: problem,
                        commands,
                    } => {
                        return Err(Error::Aws(AwsError::unexpected(
                            "ModifyListener",
                            state.standby_target_group_arn.clone(),
                            format!("the bake passed but the standby could not be put back ({problem}); blue is not released; by hand: {}", commands.join(" && ")),
                        )));
                    }
                }
            }
            match continue_termination(deps, &deployment_id).await? {
                true => {
                    r.verdict = BakeVerdict::Passed;
                    let ended = now_ms();
                    r.saved_seconds = bake::saved_seconds(
                        created.blue_termination_wait_seconds,
                        started_at,
                        ended,
                    );
                    r.summary = format!(
                        "green stayed clean for {baked_seconds} s (bake {} s): blue released now (ContinueDeployment TERMINATION_WAIT){}",
                        config.bake_seconds,
                        r.saved_seconds
                            .map(|s| format!(", about {s} s of the termination wait saved"))
                            .unwrap_or_default()
                    );
                    tracing::info!(deployment_id, baked_seconds, saved = ?r.saved_seconds, "bake passed; termination wait ended early");
                }
                false => {
                    r.verdict = BakeVerdict::Ended;
                    r.summary = format!(
                        "green stayed clean for {baked_seconds} s, but deployment {deployment_id} had already completed"
                    );
                }
            }
        }
        BakeDecision::Fail { evidence } => {
            r.summary = bake::summary(&evidence);
            r.evidence = evidence;
            fail_bake(deps, &deployment_id, &mut r).await?;
            match (&r.standby, &r.standby_note) {
                (Some(s), None) if s.weights == standby::Weights::Switched => {
                    r.summary = format!("{}; traffic switched to blue in the standby target group before the rollback", r.summary);
                }
                (_, Some(note)) => r.summary = format!("{}; {note}", r.summary),
                _ => {}
            }
        }
    }
    if matches!(r.verdict, BakeVerdict::Passed | BakeVerdict::Failed) {
        greenlight_aws::emit_metrics(greenlight_core::metrics::gate_document(
            now_ms(),
            &greenlight_core::metrics::Subject {
                application,
                deployment_group: group,
                deployment_id: Some(&deployment_id),
            },
            greenlight_core::metrics::Gate::Bake,
            r.verdict == BakeVerdict::Passed,
        ));
    }
    Ok(r)
}

/// Puts each snapshot back on its target group and returns the settings
/// that were live before (the fast profile), for a fast rollback later.
/// The `greenlight:snapshot` tag stays: Restore (or the failure handler)
/// removes it at the end, as without a bake.
async fn put_back_snapshots(
    deps: &Deps,
    snapshots: &[TargetGroupSnapshot],
) -> Result<Vec<TargetGroupSnapshot>, Error> {
    let mut tuned = Vec::with_capacity(snapshots.len());
    for s in snapshots {
        let live = load_balancer::snapshot(&deps.elbv2, &s.target_group_arn)
            .await
            .map_err(Error::LoadBalancer)?;
        let changes = Changes::between(&live, s.health_check, s.deregistration_delay_seconds);
        load_balancer::apply(&deps.elbv2, &s.target_group_arn, &changes)
            .await
            .map_err(Error::LoadBalancer)?;
        tracing::info!(target_group = %s.target_group_arn, "bake began: the target group's own settings are back");
        tuned.push(live);
    }
    Ok(tuned)
}

/// Re-applies the fast profile recorded at the bake's start, so the
/// rollback's AllowTraffic on blue takes seconds; a failure to do so is
/// logged and the stop goes ahead (a slow rollback beats none).
async fn reapply_profile(deps: &Deps, tuned: &[TargetGroupSnapshot]) -> Vec<String> {
    let mut problems = Vec::new();
    for t in tuned {
        let result = async {
            let live = load_balancer::snapshot(&deps.elbv2, &t.target_group_arn).await?;
            let changes = Changes::between(&live, t.health_check, t.deregistration_delay_seconds);
            load_balancer::apply(&deps.elbv2, &t.target_group_arn, &changes).await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(target_group = %t.target_group_arn, error = %e, "could not re-apply the fast profile before the rollback; it will be slower");
            problems.push(format!(
                "the fast profile could not be re-applied on {} ({e})",
                t.target_group_arn
            ));
        }
    }
    problems
}

/// Registers blue in the group's standby target group and weights the
/// listener ([`greenlight_aws::listener::arm`]); Ok(None) when the group
/// has no standby; Err = why it is not used (the bake goes on without).
/// A record of this deployment's standby already on the target group (a
/// first look whose invocation armed, then failed before answering, and was
/// retried) is taken over as it is, not armed twice.
async fn arm_standby(
    deps: &Deps,
    config: &GroupBake,
    application: &str,
    group: &str,
    deployment_id: &str,
    view: &DeploymentView,
) -> Result<Option<StandbyState>, String> {
    let Some(name) = config.standby_target_group.as_deref() else {
        return Ok(None);
    };
    let mains = load_balancer::target_group_arns(&deps.codedeploy, &deps.elbv2, application, group)
        .await
        .map_err(|e| format!("the deployment group's target group could not be read: {e}"))?;
    let [main] = mains.as_slice() else {
        return Err(format!(
            "the standby supports a deployment group with one target group ({} found)",
            mains.len()
        ));
    };
    let facts = load_balancer::target_group_by_name(&deps.elbv2, name)
        .await
        .map_err(|e| format!("the standby target group {name} could not be read: {e}"))?;
    let port = load_balancer::target_group_port(&deps.elbv2, main)
        .await
        .map_err(|e| format!("the target group's port could not be read: {e}"))?
        .ok_or_else(|| format!("target group {main} has no port"))?;
    if facts.port != Some(port) {
        return Err(format!(
            "the standby {name} listens on port {:?}, the target group on {port}: they must match",
            facts.port
        ));
    }
    if let Ok(RecordRead::Found(state)) =
        greenlight_aws::listener::read_record(&deps.elbv2, main).await
    {
        if state.deployment_id == deployment_id && !state.restored {
            tracing::warn!(deployment_id, "the standby was armed by an earlier attempt of this look: its record is taken over");
            return Ok(Some(*state));
        }
    }
    let blue = standby::blue_targets(view, port);
    greenlight_aws::listener::arm(
        &deps.elbv2,
        deployment_id,
        main,
        &facts.arn,
        &blue,
        config.standby_settle_seconds,
    )
    .await
    .map(Some)
}

async fn fail_bake(deps: &Deps, deployment_id: &str, r: &mut BakeReport) -> Result<(), Error> {
    // Traffic on blue first (one listener change), then the rollback.
    if let Some(state) = r.standby.as_mut() {
        match greenlight_aws::listener::switch(&deps.elbv2, state, now_ms()).await {
            Ok(()) => tracing::warn!(
                deployment_id,
                "bake failed: listener switched to blue in the standby"
            ),
            Err(note) => {
                tracing::error!(deployment_id, note = %note, "bake failed: the standby could not take the traffic");
                r.standby_note = Some(note);
            }
        }
    }
    let problems = reapply_profile(deps, &r.tuned).await;
    match stop_with_rollback(&deps.codedeploy, deployment_id).await? {
        StopOutcome::Stopping { .. } => {
            r.verdict = BakeVerdict::Failed;
            tracing::warn!(deployment_id, summary = %r.summary, "bake failed; deployment stopped with rollback while blue still exists");
        }
        StopOutcome::AlreadyCompleted => {
            // Harsher reading for the report: the evidence stands, but the
            // deployment completed first, so no rollback can follow.
            r.verdict = BakeVerdict::Ended;
            r.summary = format!(
                "{}; but deployment {deployment_id} had already completed, so it could not be rolled back",
                r.summary
            );
            tracing::error!(deployment_id, summary = %r.summary, "bake failed after the deployment completed");
        }
    }
    for p in problems {
        r.summary = format!("{}; {p}", r.summary);
    }
    Ok(())
}

/// `ContinueDeployment(TERMINATION_WAIT)`; false when CodeDeploy answers
/// that the deployment already completed (a repeated look after a transient
/// error, or the wait ran out meanwhile).
async fn continue_termination(deps: &Deps, deployment_id: &str) -> Result<bool, Error> {
    match deps
        .codedeploy
        .continue_deployment()
        .deployment_id(deployment_id)
        .deployment_wait_type(DeploymentWaitType::TerminationWait)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => {
            let err = AwsError::from_sdk("ContinueDeployment", deployment_id, &e);
            if err.has_code(&["DeploymentAlreadyCompletedException"])
                || e.as_service_error()
                    .is_some_and(|s| s.is_deployment_already_completed_exception())
            {
                Ok(false)
            } else {
                Err(Error::Aws(err))
            }
        }
    }
}

#[cfg(test)]
#[path = "bake_tests.rs"]
mod tests;
