//! The failure report: steps taken, restore summary, summary sentence ([`compose_report`]).

use super::*;

/// Longest detail kept in an [`ActionRecord`] (SDK error messages can be long).
pub const MAX_ACTION_DETAIL_CHARS: usize = 600;

/// One step the handler took (or skipped) and how it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Step {
    ClaimReport,
    /// Looking for a deployment the execution created but never recorded.
    FindDeployment,
    ReadDeployment,
    StopDeployment,
    DeleteGreenAsg,
    PointGroupAtBlue,
    /// Resuming the Auto Scaling processes the deployment held
    /// ([`crate::scaling`]); the detail reports a scale event that arrived
    /// while held.
    ResumeScaling,
    RestoreLoadBalancer,
    /// Putting the bake's standby back (`$.bake.standby`): the listener's
    /// snapshot, then blue out of the standby target group.
    RestoreListener,
    Notify,
    FailCodePipelineJob,
    WriteReport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// This invocation did it.
    Done,
    /// It was already so (not found, already pointing there, already answered).
    AlreadyDone,
    /// Not needed or not possible; `detail` says why.
    Skipped,
    /// It failed; `detail` says how. The other steps still ran.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionRecord {
    pub step: Step,
    /// What it acted on: an ASG name, a target group ARN, a topic, a job id.
    pub target: String,
    pub outcome: Outcome,
    pub detail: String,
}

impl ActionRecord {
    pub fn new(
        step: Step,
        target: impl Into<String>,
        outcome: Outcome,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            step,
            target: truncate_chars(&target.into(), 300),
            outcome,
            detail: truncate_chars(&detail.into(), MAX_ACTION_DETAIL_CHARS),
        }
    }
}

/// The reason kept in [`listener_not_put_back`] however long its commands
/// are.
pub const MIN_LISTENER_REASON_CHARS: usize = 120;

/// The `RestoreListener` record of a listener the failure handler did not
/// put back (the standby keeps blue serving): `LISTENER NOT PUT BACK:
/// <reason>. Once blue is healthy ..., run: <commands>`. Only the reason is
/// cut to fit [`MAX_ACTION_DETAIL_CHARS`]; the commands are kept whole even
/// past it (a command cut short would be wrong to run, and their length is
/// bounded by the routes and blue's targets), so the report and the
/// notification always carry every exact command.
pub fn listener_not_put_back(
    target: impl Into<String>,
    reason: &str,
    commands: &[String],
) -> ActionRecord {
    let tail = format!(
        ". Once blue is healthy in the target group and green is out, run: {}",
        commands.join(" && ")
    );
    let room = MAX_ACTION_DETAIL_CHARS
        .saturating_sub(tail.chars().count())
        .max(MIN_LISTENER_REASON_CHARS);
    let head = truncate_chars(&format!("LISTENER NOT PUT BACK: {reason}"), room);
    ActionRecord {
        step: Step::RestoreListener,
        target: truncate_chars(&target.into(), 300),
        outcome: Outcome::Failed,
        detail: format!("{head}{tail}"),
    }
}

/// Where the failure report came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ReportSource {
    /// The state machine's failure path.
    #[serde(rename_all = "camelCase")]
    Pipeline {
        execution_name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        codepipeline_job_id: Option<String>,
    },
    /// An EventBridge CodeDeploy state-change event (deployment started
    /// outside the pipeline).
    #[serde(rename_all = "camelCase")]
    Event {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_id: Option<String>,
        state: String,
    },
    /// A Step Functions execution status-change event: the execution ended
    /// (ABORTED, TIMED_OUT, FAILED) without running its failure path.
    #[serde(rename_all = "camelCase")]
    Execution {
        execution_name: String,
        status: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RestoreState {
    /// Every tuned target group is back to its snapshot.
    Restored,
    /// Nothing was tuned (or no snapshot was recorded).
    NothingToRestore,
    /// At least one target group could not be restored.
    Failed,
}

/// Whether the load-balancer settings came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerRestore {
    pub state: RestoreState,
    pub detail: String,
}

/// Sums up the restore from the `RestoreLoadBalancer` actions.
pub fn summarize_restore(source: &RestoreSource, actions: &[ActionRecord]) -> LoadBalancerRestore {
    let restores: Vec<&ActionRecord> = actions
        .iter()
        .filter(|a| a.step == Step::RestoreLoadBalancer)
        .collect();
    let failed: Vec<&ActionRecord> = restores
        .iter()
        .copied()
        .filter(|a| a.outcome == Outcome::Failed)
        .collect();
    let restored = restores
        .iter()
        .filter(|a| a.outcome == Outcome::Done)
        .count();
    if !failed.is_empty() {
        let what: Vec<String> = failed
            .iter()
            .map(|a| format!("{} ({})", a.target, a.detail))
            .collect();
        return LoadBalancerRestore {
            state: RestoreState::Failed,
            detail: format!(
                "NOT restored on {} of {} target group(s): {}",
                failed.len(),
                restores.len(),
                what.join("; ")
            ),
        };
    }
    if restored > 0 {
        return LoadBalancerRestore {
            state: RestoreState::Restored,
            detail: format!("health-check settings and deregistration delay restored on {restored} target group(s)"),
        };
    }
    let detail = match source {
        RestoreSource::Nothing { reason } => format!("nothing to restore: {reason}"),
        RestoreSource::RecordedTags => {
            "nothing to restore: no target group carries a recorded snapshot".to_string()
        }
        RestoreSource::Snapshots { .. } => {
            "nothing to restore: the snapshots were already in place".to_string()
        }
    };
    LoadBalancerRestore {
        state: RestoreState::NothingToRestore,
        detail,
    }
}

/// The failure report: the failure-handler's answer, the state machine's
/// `$.report` (its `error` and `summary` become the `Fail` state's error and
/// cause), the body of the completed marker, and the notification's source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureReport {
    /// Short error name: ValidationFailed | DeploymentFailed | DeadlineExceeded
    /// | GroupBusyTimeout | TaskFailed.
    pub error: FailureKind,
    /// One sentence: what failed, where, what was done, next step.
    pub summary: String,
    pub source: ReportSource,
    pub application: String,
    pub deployment_group: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<Revision>,
    pub classification: Classification,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
    /// The failing instances' probe evidence (validation failures).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_evidence: Vec<InstanceEvidence>,
    pub runbook: RunbookPlan,
    /// How CodeDeploy's rollback of the deployment ended (when it has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackOutcome>,
    pub actions: Vec<ActionRecord>,
    pub load_balancer: LoadBalancerRestore,
    pub next_step: String,
    pub handled_at_ms: EpochMillis,
}

/// Everything [`compose_report`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportInput {
    pub source: ReportSource,
    pub application: String,
    pub deployment_group: String,
    pub deployment_id: Option<String>,
    pub revision: Option<Revision>,
    pub classification: Classification,
    pub diagnosis: Option<Diagnosis>,
    pub validation_evidence: Vec<InstanceEvidence>,
    pub runbook: RunbookPlan,
    /// [`rollback_outcome`] of the deployment, when it has a rollback.
    pub rollback: Option<RollbackOutcome>,
    pub restore_source: RestoreSource,
    pub actions: Vec<ActionRecord>,
    pub now: EpochMillis,
}

/// The failing instances of a validation report (empty when none failed or
/// there was no validation).
pub fn failing_evidence(state: &PipelineState) -> Vec<InstanceEvidence> {
    state
        .validation
        .as_ref()
        .filter(|v| !v.passed)
        .map(|v| {
            v.instances
                .iter()
                .filter(|i| !i.passed)
                .take(MAX_LISTED_INSTANCES)
                .map(|i| InstanceEvidence {
                    last_body: i.last_body.as_deref().map(|b| truncate_chars(b, 300)),
                    last_error: i.last_error.as_deref().map(|b| truncate_chars(b, 300)),
                    address: truncate_chars(&i.address, 100),
                    instance_id: truncate_chars(&i.instance_id, 100),
                    ..i.clone()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The CodePipeline job of a pipeline state, if the upload came from one.
pub fn codepipeline_job_id(state: &PipelineState) -> Option<String> {
    match &state.input.source {
        Source::CodePipeline { job_id } => Some(job_id.clone()),
        Source::S3 { .. } => None,
    }
}

/// The deployment a failed execution created, if any.
pub fn pipeline_deployment_id(state: &PipelineState) -> Option<String> {
    state
        .deployment
        .as_ref()
        .map(|d| d.deployment_id.clone())
        .or_else(|| state.status.as_ref().map(|s| s.deployment_id.clone()))
        .or_else(|| state.validation.as_ref().map(|v| v.deployment_id.clone()))
        .filter(|id| !id.is_empty())
}

/// The next step for the operator.
pub fn next_step(
    kind: FailureKind,
    decision: &RunbookDecision,
    actions: &[ActionRecord],
) -> String {
    let failed: Vec<String> = actions
        .iter()
        .filter(|a| a.outcome == Outcome::Failed && a.step != Step::ClaimReport)
        .map(|a| format!("{:?} on {}", a.step, a.target))
        .collect();
    let base = match decision {
        RunbookDecision::ExplainAfterTraffic { next_step, .. }
        | RunbookDecision::Undetermined { next_step, .. }
        | RunbookDecision::LeftRunning { next_step, .. } => next_step.clone(),
        _ => match kind {
            FailureKind::ValidationFailed => {
                "fix what the failing instance answered (health or version endpoint) and upload a new revision".to_string()
            }
            FailureKind::BakeFailed => {
                "find out why the new revision misbehaved under real traffic (the bake evidence names the alarm or the target-group metric and the minute), fix it and upload a new revision; blue serves meanwhile".to_string()
            }
            FailureKind::DeploymentFailed => {
                "fix the failing lifecycle event (see the instance diagnostics and log tail) and upload a new revision".to_string()
            }
            FailureKind::DeadlineExceeded => {
                "find out why the deployment was slow (see the phase it was in) or raise DEPLOYMENT_TIMEOUT_SECONDS, then upload again".to_string()
            }
            FailureKind::GroupBusyTimeout => {
                "wait for the running deployment on the group to finish, then upload the revision again".to_string()
            }
            FailureKind::ApprovalRejected => {
                "nothing to undo: blue kept serving; upload the revision again when it may go out (and have someone approve it within the deadline)".to_string()
            }
            FailureKind::TaskFailed => {
                "fix the cause of the task failure (see the function's logs), then upload the revision again".to_string()
            }
            FailureKind::LostSight => {
                "check that greenlight's functions can reach AWS (throttling, service health, timeouts in their logs), then upload the revision again".to_string()
            }
            FailureKind::ExecutionEnded => {
                "see why the execution ended (Step Functions console: its error and last state), fix that, then upload the revision again".to_string()
            }
        },
    };
    if failed.is_empty() {
        base
    } else {
        format!(
            "first finish by hand what failed here ({}), then {base}",
            failed.join(", ")
        )
    }
}

pub(crate) fn outcome_phrase(actions: &[ActionRecord], step: Step) -> Option<(Outcome, String)> {
    actions
        .iter()
        .find(|a| a.step == step)
        .map(|a| (a.outcome, a.detail.clone()))
}

/// One clause saying what the runbook did.
pub fn runbook_clause(plan: &RunbookPlan, actions: &[ActionRecord]) -> String {
    let mut parts = Vec::new();
    if plan.stop_deployment {
        match outcome_phrase(actions, Step::StopDeployment) {
            Some((Outcome::Failed, d)) => {
                parts.push(format!("stopping the deployment FAILED ({d})"))
            }
            Some(_) => {
                parts.push("the still-active deployment was stopped with rollback".to_string())
            }
            None => {}
        }
    }
    match &plan.decision {
        RunbookDecision::RemoveGreenAndPointAtBlue {
            green_asg,
            blue_asgs,
            ..
        } => {
            parts.push(match outcome_phrase(actions, Step::DeleteGreenAsg) {
                Some((Outcome::Done, _)) => format!("green ASG {green_asg} deleted"),
                Some((Outcome::AlreadyDone, _)) => format!("green ASG {green_asg} already gone"),
                Some((Outcome::Failed, d)) => {
                    format!("deleting green ASG {green_asg} FAILED ({d})")
                }
                Some((Outcome::Skipped, d)) => format!("green ASG {green_asg} left in place ({d})"),
                None => format!("green ASG {green_asg} not touched"),
            });
            let blue = blue_asgs.join(", ");
            parts.push(match outcome_phrase(actions, Step::PointGroupAtBlue) {
                Some((Outcome::Done, _)) => format!("group pointed back at blue ASG {blue}"),
                Some((Outcome::AlreadyDone, _)) => {
                    format!("group already points at blue ASG {blue}")
                }
                Some((Outcome::Failed, d)) => {
                    format!("pointing the group at blue ASG {blue} FAILED ({d})")
                }
                Some((Outcome::Skipped, d)) => format!("group left as it is ({d})"),
                None => "group not checked".to_string(),
            });
        }
        RunbookDecision::ExplainAfterTraffic { green_asg, .. } => {
            parts.push(format!(
                "traffic had already moved, so green ASG {green_asg} was kept and nothing was deleted"
            ));
        }
        RunbookDecision::NothingToUndo { reason } => {
            parts.push(format!("nothing to undo ({reason})"))
        }
        RunbookDecision::Undetermined { reason, .. } => parts.push(reason.clone()),
        RunbookDecision::LeftRunning { reason, .. } => parts.push(reason.clone()),
    }
    parts.join(", ")
}

/// The one-sentence summary: what failed, where, what was done, next step.
pub fn summary(
    classification: &Classification,
    plan: &RunbookPlan,
    rollback: Option<&RollbackOutcome>,
    actions: &[ActionRecord],
    lb: &LoadBalancerRestore,
    next: &str,
) -> String {
    let lb_clause = match lb.state {
        RestoreState::Restored => "load balancer settings restored".to_string(),
        RestoreState::NothingToRestore => {
            "load balancer settings untouched (nothing to restore)".to_string()
        }
        RestoreState::Failed => format!("load balancer settings {}", lb.detail),
    };
    // A rollback that succeeded is the expected end and stays out of the one
    // sentence (the notification's Rollback line still says so).
    let rollback_clause = rollback
        .filter(|r| r.failed || !r.next_step.is_empty())
        .map(|r| format!("{}; ", trim_sentence(&r.detail)))
        .unwrap_or_default();
    format!(
        "{}: {}; {rollback_clause}{}; {}; next: {}.",
        classification.kind,
        classification.cause,
        runbook_clause(plan, actions),
        lb_clause,
        trim_sentence(next)
    )
}

/// The operator's next step with the rollback's by-hand step first (a failed
/// or unfinished rollback leaves production as it is: that comes before
/// anything else).
pub fn with_rollback_step(next: String, rollback: Option<&RollbackOutcome>) -> String {
    match rollback.filter(|r| !r.next_step.is_empty()) {
        Some(r) => format!("{}; then {next}", trim_sentence(&r.next_step)),
        None => next,
    }
}

/// Builds the report from what the handler found and did.
pub fn compose_report(input: ReportInput) -> FailureReport {
    let load_balancer = summarize_restore(&input.restore_source, &input.actions);
    let next = with_rollback_step(
        next_step(
            input.classification.kind,
            &input.runbook.decision,
            &input.actions,
        ),
        input.rollback.as_ref(),
    );
    let summary = summary(
        &input.classification,
        &input.runbook,
        input.rollback.as_ref(),
        &input.actions,
        &load_balancer,
        &next,
    );
    FailureReport {
        error: input.classification.kind,
        summary,
        source: input.source,
        application: input.application,
        deployment_group: input.deployment_group,
        deployment_id: input.deployment_id,
        revision: input.revision,
        classification: input.classification,
        diagnosis: input.diagnosis,
        validation_evidence: input.validation_evidence,
        runbook: input.runbook,
        rollback: input.rollback,
        actions: input.actions,
        load_balancer,
        next_step: next,
        handled_at_ms: input.now,
    }
}

/// The report for a delivery whose failure another invocation is handling
/// right now (pipeline path: the state machine still needs `error`/`summary`).
pub fn in_progress_report(
    source: ReportSource,
    state: &PipelineState,
    classification: Classification,
    reason: &str,
    now: EpochMillis,
) -> FailureReport {
    let runbook = RunbookPlan {
        stop_deployment: false,
        decision: RunbookDecision::NothingToUndo {
            reason: format!("another invocation is running the runbook: {reason}"),
        },
    };
    let next = "see the report that invocation writes".to_string();
    let load_balancer = LoadBalancerRestore {
        state: RestoreState::NothingToRestore,
        detail: "left to the invocation that holds the claim".to_string(),
    };
    let summary = format!(
        "{}: {}; {}; next: {next}.",
        classification.kind,
        classification.cause,
        runbook_clause(&runbook, &[])
    );
    FailureReport {
        error: classification.kind,
        summary,
        source,
        application: state.input.application.clone(),
        deployment_group: state.input.deployment_group.clone(),
        deployment_id: pipeline_deployment_id(state),
        revision: Some(state.input.revision.clone()),
        classification,
        diagnosis: None,
        validation_evidence: failing_evidence(state),
        runbook,
        rollback: None,
        actions: Vec::new(),
        load_balancer,
        next_step: next,
        handled_at_ms: now,
    }
}
