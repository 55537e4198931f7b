//! The runbook's steps, the load-balancer restore, the notification, the
//! CodePipeline answer and the completed report: each one effect-layer call
//! turned into an `ActionRecord`.

use super::*;
use greenlight_core::bake::standby::{restore_commands, StandbyState, Weights};
use greenlight_core::bake::standby_record::{decide_recorded, RecordRead, RecordedDecision};

// ---- runbook -----------------------------------------------------------------

/// What the runbook acts on.
pub(crate) struct Target<'a> {
    pub(crate) application: &'a str,
    pub(crate) group: &'a str,
    pub(crate) deployment_id: Option<&'a str>,
    /// `pipeline.deployment.blueAutoScalingGroups` (empty without a record).
    pub(crate) recorded_blue: &'a [String],
}

/// What the runbook left: the latest view of the deployment (re-read after
/// a StopDeployment, else the one given) and of CodeDeploy's rollback of it.
pub(crate) struct RunbookResult {
    pub(crate) latest: Option<DeploymentView>,
    /// The rollback deployment as last read (none without a rollback, or
    /// when it could not be read).
    pub(crate) rollback: Option<DeploymentView>,
}

impl RunbookResult {
    /// How the rollback ended, for the report ([`rollback_outcome`]).
    /// `standby_serving`: what [`restore_standby`] returned.
    pub(crate) fn rollback_outcome(
        &self,
        recorded_blue: &[String],
        standby_serving: Option<&str>,
    ) -> Option<RollbackOutcome> {
        self.latest.as_ref().and_then(|v| {
            rollback_outcome(v, self.rollback.as_ref(), recorded_blue, standby_serving)
        })
    }
}

/// Runs the plan.
pub(crate) async fn run_runbook(
    deps: &Deps,
    target: &Target<'_>,
    view: Option<DeploymentView>,
    plan: &RunbookPlan,
    actions: &mut Vec<ActionRecord>,
) -> RunbookResult {
    let mut latest = view;
    if plan.stop_deployment {
        if let Some(id) = target.deployment_id {
            actions.push(stop_deployment(deps, id).await);
            // Re-read after the stop: deletion is decided on what the
            // deployment is now, not on what it was before the stop.
            latest = read_view(deps, Some(id), actions).await;
        }
    }
    let removing_green = matches!(
        plan.decision,
        RunbookDecision::RemoveGreenAndPointAtBlue { .. }
    );
    // The rollback is read for the report in any case; before removing the
    // green group the runbook waits for it to end (it owns the replacement
    // fleet while it runs).
    let rollback = match latest
        .as_ref()
        .and_then(|v| v.rollback_deployment_id.as_deref())
    {
        Some(rollback) => read_rollback(deps, rollback, removing_green).await,
        None => None,
    };
    if let RunbookDecision::RemoveGreenAndPointAtBlue { green_asg, .. } = &plan.decision {
        let rollback_status = rollback.as_ref().map(|r| r.status);
        actions.push(delete_green_asg(deps, green_asg, latest.as_ref(), rollback_status).await);
        actions.push(point_group_at_blue(deps, target, green_asg).await);
    }
    tracing::info!(
        deployment_id = target.deployment_id.unwrap_or(""),
        decision = ?plan.decision,
        rollback_status = ?rollback.as_ref().map(|r| r.status),
        "runbook applied"
    );
    RunbookResult { latest, rollback }
}

/// Resumes the Auto Scaling processes `execution` held (found by their
/// `greenlight:scaling-hold` tag, so it works on every failure path, a dead
/// execution's included, whatever the state recorded). One action per group
/// resumed (its detail reports a scale event that arrived while held) or per
/// note; nothing when the execution held nothing.
pub(crate) async fn release_scaling(deps: &Deps, execution: &str, actions: &mut Vec<ActionRecord>) {
    match release_held_by(&deps.autoscaling, execution).await {
        Ok(release) => {
            for group in &release.resumed {
                let resumed = if group.suspended.is_empty() {
                    "nothing to resume (every held process was already suspended before the deployment, and stays so)".to_string()
                } else {
                    format!("resumed {}", group.suspended.join(", "))
                };
                let event = release
                    .events
                    .iter()
                    .find(|e| e.group == group.name)
                    .map(|e| format!("; {}", e.summary))
                    .unwrap_or_default();
                actions.push(ActionRecord::new(
                    Step::ResumeScaling,
                    &group.name,
                    Outcome::Done,
                    format!("{resumed}{event}"),
                ));
            }
            for note in release.notes {
                actions.push(ActionRecord::new(
                    Step::ResumeScaling,
                    execution,
                    Outcome::Skipped,
                    note,
                ));
            }
        }
        Err(e) => actions.push(ActionRecord::new(
            Step::ResumeScaling,
            execution,
            Outcome::Failed,
            format!(
                "{e}; the Auto Scaling groups tagged greenlight:scaling-hold with execution={execution} still have processes suspended: resume the ones the tag names (aws autoscaling resume-processes) and delete the tag"
            ),
        )),
    }
}

/// Reads CodeDeploy's rollback deployment (GetDeployment only: its status
/// and error are what the report needs, not its targets), after waiting (at
/// most `ROLLBACK_WAIT_SECONDS`) for it to end when `wait`; `None` when it
/// could not be read.
async fn read_rollback(deps: &Deps, rollback: &str, wait: bool) -> Option<DeploymentView> {
    if wait {
        await_rollback_end(deps, rollback).await;
    }
    let read =
        match greenlight_aws::deployment::get_deployment_info(&deps.codedeploy, rollback).await {
            Ok(info) => greenlight_aws::deployment::deployment_view(rollback, &info, &[]),
            Err(e) => Err(e),
        };
    match read {
        Ok(view) => Some(view),
        Err(e) => {
            tracing::warn!(rollback, error = %e, "could not read the rollback deployment");
            None
        }
    }
}

/// StopDeployment with rollback; an already finished deployment is fine.
pub(crate) async fn stop_deployment(deps: &Deps, deployment_id: &str) -> ActionRecord {
    match stop_with_rollback(&deps.codedeploy, deployment_id).await {
        Ok(StopOutcome::Stopping { status, message }) => ActionRecord::new(
            Step::StopDeployment,
            deployment_id,
            Outcome::Done,
            format!(
                "StopDeployment(autoRollbackEnabled) answered {}{}",
                if status.is_empty() {
                    "no status"
                } else {
                    status.as_str()
                },
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                }
            ),
        ),
        Ok(StopOutcome::AlreadyCompleted) => ActionRecord::new(
            Step::StopDeployment,
            deployment_id,
            Outcome::AlreadyDone,
            "the deployment had already completed",
        ),
        Err(e) => ActionRecord::new(
            Step::StopDeployment,
            deployment_id,
            Outcome::Failed,
            e.to_string(),
        ),
    }
}

/// Deletes the green group (ForceDelete) only when the core's guard
/// ([`green_deletion`]) says it is this deployment's copy and never served.
/// Re-reads CodeDeploy's rollback deployment until it has ended, at most
/// `ROLLBACK_WAIT_SECONDS` (polling every few seconds): the green group is only
/// deleted once the rollback no longer needs it. Its last status read, or
/// `None` when it could not be read.
async fn await_rollback_end(
    deps: &Deps,
    rollback: &str,
) -> Option<greenlight_core::model::DeploymentStatus> {
    let wait = std::time::Duration::from_secs(u64::from(deps.config.rollback_wait_seconds));
    await_rollback_end_within(deps, rollback, wait).await
}

/// [`await_rollback_end`] within `wait`.
async fn await_rollback_end_within(
    deps: &Deps,
    rollback: &str,
    wait: std::time::Duration,
) -> Option<greenlight_core::model::DeploymentStatus> {
    let started = std::time::Instant::now();
    loop {
        let status = greenlight_aws::deployment::read_status(&deps.codedeploy, rollback)
            .await
            .ok();
        match status {
            Some(s) if !s.is_terminal() && started.elapsed() < wait => {
                let left = wait.saturating_sub(started.elapsed());
                tokio::time::sleep(left.min(std::time::Duration::from_secs(2))).await;
            }
            other => return other,
        }
    }
}

/// After a failed bake: waits (within `ROLLBACK_WAIT_SECONDS`) until the
/// stopped deployment names its rollback deployment and that rollback has
/// ended, so the target groups are restored only after blue is back behind
/// the load balancer on the fast profile. Updates `result` with the stopped
/// deployment and its rollback as last read (for the report); never fails.
pub(crate) async fn await_bake_rollback(
    deps: &Deps,
    deployment_id: &str,
    result: &mut RunbookResult,
) {
    let wait = std::time::Duration::from_secs(u64::from(deps.config.rollback_wait_seconds));
    let started = std::time::Instant::now();
    let mut rollback = result
        .latest
        .as_ref()
        .and_then(|v| v.rollback_deployment_id.clone());
    while rollback.is_none() && started.elapsed() < wait {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        if let Ok(view) =
            greenlight_aws::deployment::read_deployment(&deps.codedeploy, deployment_id).await
        {
            rollback = view.rollback_deployment_id.clone();
            result.latest = Some(view);
        }
    }
    match rollback {
        Some(r) => {
            let left = wait.saturating_sub(started.elapsed());
            let status = await_rollback_end_within(deps, &r, left).await;
            tracing::info!(
                deployment_id,
                rollback = r.as_str(),
                ?status,
                "bake rollback awaited before the restore"
            );
            if let Some(view) = read_rollback(deps, &r, false).await {
                result.rollback = Some(view);
            }
        }
        None => tracing::warn!(
            deployment_id,
            "no rollback deployment appeared; restoring now"
        ),
    }
}

pub(crate) async fn delete_green_asg(
    deps: &Deps,
    name: &str,
    latest: Option<&DeploymentView>,
    rollback_status: Option<greenlight_core::model::DeploymentStatus>,
) -> ActionRecord {
    let found = match describe_group(&deps.autoscaling, name).await {
        Ok(found) => found,
        Err(e) => {
            return ActionRecord::new(
                Step::DeleteGreenAsg,
                name,
                Outcome::Failed,
                format!("could not describe the group, so it was not deleted: {e}"),
            )
        }
    };
    match green_deletion(name, latest, found.as_ref(), rollback_status) {
        GreenDeletion::Absent { .. } => ActionRecord::new(
            Step::DeleteGreenAsg,
            name,
            Outcome::AlreadyDone,
            "no such Auto Scaling group (already deleted, or CodeDeploy never created it)",
        ),
        GreenDeletion::Keep { reason, .. } => {
            tracing::warn!(asg = name, reason = reason.as_str(), "green group kept");
            ActionRecord::new(Step::DeleteGreenAsg, name, Outcome::Skipped, reason)
        }
        GreenDeletion::Delete { .. } => match force_delete_group(&deps.autoscaling, name).await {
            Ok(DeleteOutcome::Deleted) => ActionRecord::new(
                Step::DeleteGreenAsg,
                name,
                Outcome::Done,
                "DeleteAutoScalingGroup(ForceDelete) accepted: the green instances are terminated with it",
            ),
            Ok(DeleteOutcome::AlreadyGone) => ActionRecord::new(
                Step::DeleteGreenAsg,
                name,
                Outcome::AlreadyDone,
                "no such Auto Scaling group (already deleted, or CodeDeploy never created it)",
            ),
            Ok(DeleteOutcome::AlreadyDeleting) => ActionRecord::new(
                Step::DeleteGreenAsg,
                name,
                Outcome::AlreadyDone,
                "the Auto Scaling group is already being deleted",
            ),
            Err(e) => ActionRecord::new(Step::DeleteGreenAsg, name, Outcome::Failed, e.to_string()),
        },
    }
}

/// Makes the deployment group point at the recorded blue ASG(s), unless it
/// already does ([`point_at_blue`] decides, and never guesses).
pub(crate) async fn point_group_at_blue(
    deps: &Deps,
    target: &Target<'_>,
    green_asg: &str,
) -> ActionRecord {
    let (application, group) = (target.application, target.group);
    let at = format!("{application}/{group}");
    let current = match group_auto_scaling_groups(&deps.codedeploy, application, group).await {
        Ok(current) => current,
        Err(e) => {
            return ActionRecord::new(Step::PointGroupAtBlue, at, Outcome::Failed, e.to_string())
        }
    };
    match point_at_blue(target.recorded_blue, &current, green_asg) {
        Repoint::AlreadyThere { asgs, reason } => ActionRecord::new(
            Step::PointGroupAtBlue,
            at,
            Outcome::AlreadyDone,
            format!("{reason} ({})", asgs.join(", ")),
        ),
        Repoint::Skip { reason } => {
            ActionRecord::new(Step::PointGroupAtBlue, at, Outcome::Skipped, reason)
        }
        Repoint::Update { from, to } => {
            match set_group_auto_scaling_groups(&deps.codedeploy, application, group, &to).await {
                Ok(()) => ActionRecord::new(
                    Step::PointGroupAtBlue,
                    at,
                    Outcome::Done,
                    format!(
                        "autoScalingGroups changed from [{}] to [{}]",
                        from.join(", "),
                        to.join(", ")
                    ),
                ),
                Err(e) => {
                    ActionRecord::new(Step::PointGroupAtBlue, at, Outcome::Failed, e.to_string())
                }
            }
        }
    }
}

// ---- load balancer -------------------------------------------------------------

pub(crate) fn restore_record(
    target: &str,
    result: Result<RestoreOutcome, LbError>,
) -> ActionRecord {
    match result {
        Ok(RestoreOutcome::Restored) => ActionRecord::new(
            Step::RestoreLoadBalancer,
            target,
            Outcome::Done,
            "health check and deregistration delay put back to the snapshot; snapshot tag removed",
        ),
        Ok(RestoreOutcome::AlreadyRestored) => ActionRecord::new(
            Step::RestoreLoadBalancer,
            target,
            Outcome::AlreadyDone,
            "settings already equal the snapshot",
        ),
        Ok(RestoreOutcome::NotTuned) => ActionRecord::new(
            Step::RestoreLoadBalancer,
            target,
            Outcome::AlreadyDone,
            "no recorded snapshot tag: not tuned or already restored",
        ),
        Err(e) => ActionRecord::new(
            Step::RestoreLoadBalancer,
            target,
            Outcome::Failed,
            format!("{}: {e}", e.error_type()),
        ),
    }
}

/// Puts the bake's standby back: from `$.bake.standby` when the path has
/// the pipeline state, else from the standby's record on the deployment
/// group's target group (`greenlight:standby` tags, written by the traffic
/// validator before it changed a listener), so an execution that died
/// after arming is put back by its execution-end path too. Only onto a
/// healthy blue fleet (`decide_restore`); only a record of `deployment_id`
/// on its own target group (`decide_recorded`: another deployment's record
/// is left alone and reported). When the record says the listener was
/// switched and `result` is given, CodeDeploy's rollback is awaited first
/// (within `ROLLBACK_WAIT_SECONDS`), so blue is back in the target group
/// before the listener is put back. `deadline_ms` = the invocation's
/// deadline (bounds the settle, never slept past).
///
/// Returns the standby target group the listener still forwards to with
/// blue in it (switched and left in place), for the report: blue then
/// serves alone, whatever the deployment's own target group holds.
pub(crate) async fn restore_standby(
    deps: &Deps,
    scope: &StandbyScope<'_>,
    result: Option<&mut RunbookResult>,
    actions: &mut Vec<ActionRecord>,
) -> Option<String> {
    if let Some(mut standby) = scope.bake.and_then(|b| b.standby.clone()) {
        let (record, serving) = put_back_record(deps, &mut standby, scope.deadline_ms).await;
        actions.push(record);
        return serving;
    }
    let (application, group) = (scope.application, scope.group);
    let found = match &scope.target_groups {
        Some(known) => Ok(known.clone()),
        None => target_group_arns(&deps.codedeploy, &deps.elbv2, application, group).await,
    };
    let arns = match found {
        Ok(arns) => arns,
        Err(LbError::NoLoadBalancer { .. }) => return None,
        Err(e) => {
            actions.push(ActionRecord::new(
                Step::RestoreListener,
                format!("{application}/{group}"),
                Outcome::Failed,
                format!("the target groups could not be read, so no standby record was looked for ({e}): if this deployment's bake armed a standby, a listener may still forward over it"),
            ));
            return None;
        }
    };
    let mut result = result;
    let mut serving = None;
    for arn in arns {
        let record = match greenlight_aws::listener::read_record(&deps.elbv2, &arn).await {
            Ok(RecordRead::Absent) => continue,
            Ok(RecordRead::Found(state)) => *state,
            Ok(RecordRead::Corrupt { reason }) => {
                actions.push(ActionRecord::new(
                    Step::RestoreListener,
                    &arn,
                    Outcome::Failed,
                    format!("LISTENER NOT PUT BACK: the standby record on {arn} does not decode ({reason}); nothing was changed from it: check the listeners and rules forwarding to {arn}, then remove its greenlight:standby tags"),
                ));
                continue;
            }
            Err(e) => {
                actions.push(ActionRecord::new(
                    Step::RestoreListener,
                    &arn,
                    Outcome::Failed,
                    format!("the standby record on {arn} could not be read ({e}): if this deployment's bake armed a standby, a listener may still forward over it"),
                ));
                continue;
            }
        };
        match decide_recorded(&record, &arn, scope.deployment_id) {
            RecordedDecision::LeaveAlone { reason } => actions.push(ActionRecord::new(
                Step::RestoreListener,
                &arn,
                Outcome::Skipped,
                format!(
                    "{reason}: left alone; to put it back by hand once blue is healthy in the target group: {}",
                    restore_commands(&record).join(" && ")
                ),
            )),
            RecordedDecision::PutBack => {
                let mut record = record;
                if record.weights == Weights::Switched && !record.restored {
                    if let (Some(id), Some(r)) = (scope.deployment_id, result.as_deref_mut()) {
                        crate::steps::await_bake_rollback(deps, id, r).await;
                    }
                }
                let (action, left_serving) =
                    put_back_record(deps, &mut record, scope.deadline_ms).await;
                actions.push(action);
                serving = serving.or(left_serving);
            }
        }
    }
    serving
}

/// What [`restore_standby`] works on.
pub(crate) struct StandbyScope<'a> {
    pub(crate) bake: Option<&'a greenlight_core::bake::BakeReport>,
    pub(crate) application: &'a str,
    pub(crate) group: &'a str,
    pub(crate) deployment_id: Option<&'a str>,
    pub(crate) deadline_ms: Option<EpochMillis>,
    /// The target groups to look for a record on; `None` = the deployment
    /// group's (read from CodeDeploy).
    pub(crate) target_groups: Option<Vec<String>>,
}

/// [`greenlight_aws::listener::put_back`] as an action record; when it
/// cannot, the record says LISTENER NOT PUT BACK with the commands that do
/// it by hand: blue keeps serving through the standby meanwhile. Also
/// returns the standby target group when the listener was switched to it and
/// is kept there (see [`restore_standby`]).
async fn put_back_record(
    deps: &Deps,
    standby: &mut StandbyState,
    deadline_ms: Option<EpochMillis>,
) -> (ActionRecord, Option<String>) {
    let target = standby
        .routes
        .iter()
        .map(|r| r.arn.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let remaining = deadline_ms.map(|d| d - greenlight_aws::now_ms());
    match greenlight_aws::listener::put_back(&deps.elbv2, standby, remaining).await {
        greenlight_aws::listener::PutBack::Done { detail } => (
            ActionRecord::new(Step::RestoreListener, target, Outcome::Done, detail),
            None,
        ),
        // The commands are kept whole (a cut command would be wrong to run):
        // greenlight_core::runbook::listener_not_put_back cuts only the reason.
        greenlight_aws::listener::PutBack::Kept { reason, commands } => {
            tracing::error!(reason = %reason, "standby kept: blue keeps serving through it");
            // Kept changes nothing: a switched listener still forwards to the standby.
            let serving = (standby.weights == Weights::Switched)
                .then(|| standby.standby_target_group_arn.clone());
            (
                greenlight_core::runbook::listener_not_put_back(target, &reason, &commands),
                serving,
            )
        }
        greenlight_aws::listener::PutBack::Failed { error, commands } => {
            tracing::error!(error = %error, "standby put back failed");
            (
                greenlight_core::runbook::listener_not_put_back(target, &error, &commands),
                None,
            )
        }
    }
}

pub(crate) async fn restore_load_balancer(
    deps: &Deps,
    application: &str,
    group: &str,
    source: &RestoreSource,
    actions: &mut Vec<ActionRecord>,
) {
    match source {
        RestoreSource::Nothing { .. } => {}
        RestoreSource::Snapshots { snapshots } => {
            for snapshot in snapshots {
                let result = restore_target_group(&deps.elbv2, snapshot).await;
                actions.push(restore_record(&snapshot.target_group_arn, result));
            }
        }
        RestoreSource::RecordedTags => {
            match target_group_arns(&deps.codedeploy, &deps.elbv2, application, group).await {
                Ok(arns) => {
                    for arn in arns {
                        let result = restore_recorded(&deps.elbv2, &arn).await;
                        actions.push(restore_record(&arn, result));
                    }
                }
                Err(LbError::NoLoadBalancer { .. }) => actions.push(ActionRecord::new(
                    Step::RestoreLoadBalancer,
                    format!("{application}/{group}"),
                    Outcome::Skipped,
                    "the deployment group has no ALB target group",
                )),
                Err(e) => actions.push(ActionRecord::new(
                    Step::RestoreLoadBalancer,
                    format!("{application}/{group}"),
                    Outcome::Failed,
                    format!("finding the target groups: {}: {e}", e.error_type()),
                )),
            }
        }
    }
}

// ---- notify, job, report -------------------------------------------------------

/// Publishes the one notification, fails the CodePipeline job, and writes the
/// completed report over the marker.
pub(crate) async fn finish(
    deps: &Deps,
    key: &str,
    claimed_at_ms: EpochMillis,
    mut report: FailureReport,
    job_id: Option<&str>,
) -> FailureReport {
    greenlight_aws::emit_metrics(greenlight_core::metrics::outcome_document(
        report.handled_at_ms,
        &greenlight_core::metrics::Subject {
            application: &report.application,
            deployment_group: &report.deployment_group,
            deployment_id: report.deployment_id.as_deref(),
        },
        greenlight_core::metrics::DeploymentOutcome::Failed,
    ));
    let message = notification(&report);
    let topic = deps.config.topic_arn.as_str();
    report
        .actions
        .push(match publish(&deps.sns, topic, &message).await {
            Ok(id) => ActionRecord::new(
                Step::Notify,
                topic,
                Outcome::Done,
                format!(
                    "published \"{}\" (message id {})",
                    message.subject,
                    id.as_deref().unwrap_or("unknown")
                ),
            ),
            Err(e) => ActionRecord::new(Step::Notify, topic, Outcome::Failed, e.to_string()),
        });

    if let Some(job_id) = job_id {
        report
            .actions
            .push(fail_job(deps, job_id, &report.summary).await);
    }

    let bucket = deps.config.report_bucket.as_str();
    let location = format!("s3://{bucket}/{key}");
    report.actions.push(ActionRecord::new(
        Step::WriteReport,
        &location,
        Outcome::Done,
        "completed report written over the marker",
    ));
    let marker = ReportMarker::Completed {
        claimed_at_ms,
        completed_at_ms: greenlight_aws::now_ms().max(claimed_at_ms),
        report: Box::new(report.clone()),
    };
    if let Err(e) = put_marker(&deps.s3, bucket, key, &marker, Condition::None).await {
        tracing::warn!(
            marker = location.as_str(),
            error = %e,
            "could not write the completed report"
        );
        if let Some(last) = report.actions.last_mut() {
            last.outcome = Outcome::Failed;
            last.detail = format!("could not write the completed report: {e}");
        }
    }
    tracing::info!(
        error = report.error.as_str(),
        summary = report.summary.as_str(),
        "failure handled"
    );
    report
}

/// PutJobFailureResult(JobFailed, summary); a job already answered (or gone)
/// is fine.
pub(crate) async fn fail_job(deps: &Deps, job_id: &str, summary: &str) -> ActionRecord {
    match put_job_failure(&deps.codepipeline, job_id, summary, None).await {
        Ok(JobAnswer::Failed) => ActionRecord::new(
            Step::FailCodePipelineJob,
            job_id,
            Outcome::Done,
            "PutJobFailureResult(JobFailed) with the summary",
        ),
        Ok(JobAnswer::AlreadyAnswered(detail)) => ActionRecord::new(
            Step::FailCodePipelineJob,
            job_id,
            Outcome::AlreadyDone,
            format!("the job was already answered ({detail})"),
        ),
        Err(e) => ActionRecord::new(
            Step::FailCodePipelineJob,
            job_id,
            Outcome::Failed,
            e.to_string(),
        ),
    }
}
