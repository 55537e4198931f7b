//! Watching a CodeDeploy blue/green deployment: pure decisions.
//!
//! Everything the deployment-watcher decides lives here: how CodeDeploy's
//! status strings map to [`DeploymentStatus`], what description names a
//! pipeline-owned deployment, which phase a deployment is in, the per-phase
//! ledger, how long to wait before the next look, the overall deadline, the
//! admission rule (one deployment per group, newer uploads supersede waiting
//! ones) and idempotent create.

use crate::model::{
    Admission, CreatedDeployment, DeploymentErrorInfo, DeploymentStatus, DeploymentView,
    EpochMillis, FleetLabel, InstanceTargetView, LifecycleStatus, NextStep, Phase, PhaseTiming,
    PipelineInput, StatusReport, TuningResult,
};

/// Every deployment the pipeline creates carries this description prefix,
/// followed by the Step Functions execution name.
pub const DESCRIPTION_PREFIX: &str = "greenlight execution ";

/// CodeDeploy refuses a longer description (`DescriptionTooLongException`;
/// CodeDeploy quotas: "Maximum number of characters in a deployment
/// description: 100").
pub const DESCRIPTION_MAX_CHARS: usize = 100;

/// The CodeDeploy deployment description for a deployment created by the
/// execution `execution_name`: `greenlight execution <name>`.
///
/// [`execution_of_description`] reads the name back. Step Functions execution
/// names contain no whitespace, so the name ends at the first space. A name of
/// the full 80 characters would make 101, one past CodeDeploy's limit: the
/// prefix then drops its trailing word's last letters (`greenlight exec
/// <name>`), which [`execution_of_description`] also reads.
pub fn deployment_description(execution_name: &str) -> String {
    let full = format!("{DESCRIPTION_PREFIX}{execution_name}");
    if full.chars().count() <= DESCRIPTION_MAX_CHARS {
        full
    } else {
        format!("{SHORT_DESCRIPTION_PREFIX}{execution_name}")
    }
}

/// The prefix for execution names too long for [`DESCRIPTION_PREFIX`].
pub const SHORT_DESCRIPTION_PREFIX: &str = "greenlight exec ";

/// The execution name a [`deployment_description`] names, or `None` for a
/// deployment started outside the pipeline (other or no description).
pub fn execution_of_description(desc: &str) -> Option<&str> {
    let rest = desc
        .strip_prefix(DESCRIPTION_PREFIX)
        .or_else(|| desc.strip_prefix(SHORT_DESCRIPTION_PREFIX))?;
    let name = rest.split_whitespace().next()?;
    // The text right after the prefix must be the name (no leading space).
    if rest.starts_with(name) {
        Some(name)
    } else {
        None
    }
}

/// CodeDeploy answered a deployment status this code does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown CodeDeploy deployment status {0:?}; expected one of Created, Queued, InProgress, Baking, Ready, Succeeded, Failed, Stopped")]
pub struct UnknownStatus(pub String);

/// CodeDeploy's `deploymentInfo.status` string → [`DeploymentStatus`].
pub fn parse_deployment_status(status: &str) -> Result<DeploymentStatus, UnknownStatus> {
    Ok(match status {
        "Created" => DeploymentStatus::Created,
        "Queued" => DeploymentStatus::Queued,
        "InProgress" => DeploymentStatus::InProgress,
        "Baking" => DeploymentStatus::Baking,
        "Ready" => DeploymentStatus::Ready,
        "Succeeded" => DeploymentStatus::Succeeded,
        "Failed" => DeploymentStatus::Failed,
        "Stopped" => DeploymentStatus::Stopped,
        other => return Err(UnknownStatus(other.to_string())),
    })
}

/// Statuses during which a deployment occupies its deployment group.
pub const ACTIVE_STATUSES: [DeploymentStatus; 5] = [
    DeploymentStatus::Created,
    DeploymentStatus::Queued,
    DeploymentStatus::InProgress,
    DeploymentStatus::Baking,
    DeploymentStatus::Ready,
];

/// CodeDeploy's status string for a [`DeploymentStatus`] (the inverse of
/// [`parse_deployment_status`]).
pub fn status_name(status: DeploymentStatus) -> &'static str {
    match status {
        DeploymentStatus::Created => "Created",
        DeploymentStatus::Queued => "Queued",
        DeploymentStatus::InProgress => "InProgress",
        DeploymentStatus::Baking => "Baking",
        DeploymentStatus::Ready => "Ready",
        DeploymentStatus::Succeeded => "Succeeded",
        DeploymentStatus::Failed => "Failed",
        DeploymentStatus::Stopped => "Stopped",
    }
}

/// True while a deployment occupies its group (not terminal).
pub fn is_active(status: DeploymentStatus) -> bool {
    !status.is_terminal()
}

// ---------------------------------------------------------------------------
// Phases and the ledger
// ---------------------------------------------------------------------------

/// Lifecycle events that install the revision on the green (replacement) fleet.
pub const INSTALL_EVENTS: [&str; 7] = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
];
/// Lifecycle events that register the green fleet with the load balancer.
pub const ALLOW_TRAFFIC_EVENTS: [&str; 3] =
    ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"];
/// Lifecycle events that deregister the blue (original) fleet.
pub const BLOCK_TRAFFIC_EVENTS: [&str; 3] =
    ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"];

/// How many instances a deployment config installs on, and reroutes, at once.
/// On EC2 blue/green the config paces both the install on the replacement
/// instances and the reroute (one AllowTraffic/BlockTraffic round per batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// `CodeDeployDefault.OneAtATime`, and any config greenlight cannot read
    /// (a custom one): the slowest pace, so predictions are not too short.
    OneAtATime,
    /// `CodeDeployDefault.HalfAtATime`: up to half the instances at a time.
    HalfAtATime,
    /// `CodeDeployDefault.AllAtOnce`.
    AllAtOnce,
}

impl Pace {
    /// The pace of a deployment config name (`None` or a custom name: one at a time).
    pub fn of_config(name: Option<&str>) -> Self {
        match name.map(str::trim) {
            Some("CodeDeployDefault.AllAtOnce") => Pace::AllAtOnce,
            Some("CodeDeployDefault.HalfAtATime") => Pace::HalfAtATime,
            _ => Pace::OneAtATime,
        }
    }

    /// Rounds needed for `instances` (at least 1).
    pub fn batches(self, instances: u32) -> u32 {
        let n = instances.max(1);
        match self {
            Pace::OneAtATime => n,
            Pace::HalfAtATime => n.min(2),
            Pace::AllAtOnce => 1,
        }
    }
}

/// Predicted duration of each phase, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Predictions {
    pub queued_seconds: u32,
    /// Launching the green ASG's instances and their CodeDeploy agent.
    pub provisioning_seconds: u32,
    /// Install events on one green instance (times the config's batches).
    pub install_per_instance_seconds: u32,
    /// Green installed, status still `InProgress`, rerouting not begun.
    pub ready_gap_seconds: u32,
    /// AllowTraffic: until a green target is healthy in the target group.
    pub allow_traffic_seconds: u32,
    /// BlockTraffic: deregistration (connection draining) of blue.
    pub block_traffic_seconds: u32,
    /// Reroute done until the blue fleet is terminated: the group's
    /// termination wait, then terminating the instances.
    pub terminating_seconds: u32,
    /// The deployment config's pace: Installing and Rerouting take one round per batch.
    pub pace: Pace,
}

/// ALB default health check (interval 30 s, healthy threshold 5): (5 × 30) + 30.
pub const DEFAULT_ALLOW_TRAFFIC_SECONDS: u32 = 180;
/// ALB default deregistration delay.
pub const DEFAULT_BLOCK_TRAFFIC_SECONDS: u32 = 300;
/// The tuner's default deregistration delay.
pub const TUNED_BLOCK_TRAFFIC_SECONDS: u32 = 30;
/// Terminating the blue instances once the termination wait is over.
pub const BLUE_TERMINATE_SECONDS: u32 = 60;

impl Default for Predictions {
    fn default() -> Self {
        Self {
            queued_seconds: 10,
            provisioning_seconds: 240,
            install_per_instance_seconds: 90,
            ready_gap_seconds: 10,
            allow_traffic_seconds: DEFAULT_ALLOW_TRAFFIC_SECONDS,
            block_traffic_seconds: DEFAULT_BLOCK_TRAFFIC_SECONDS,
            terminating_seconds: BLUE_TERMINATE_SECONDS,
            pace: Pace::OneAtATime,
        }
    }
}

impl Predictions {
    /// Defaults, with what the execution knows: AllowTraffic and BlockTraffic
    /// from the tuner's predictions (`after`; a tuning result without a
    /// BlockTraffic prediction means the default tuned delay), Terminating
    /// from the group's blue termination wait read by `create`, and the pace
    /// of the deployment config `create` used.
    pub fn for_pipeline(
        tuning: Option<&TuningResult>,
        deployment: Option<&CreatedDeployment>,
    ) -> Self {
        let mut p = Self::default();
        if let Some(t) = tuning {
            p.allow_traffic_seconds = t.predicted_allow_traffic.after_seconds;
            p.block_traffic_seconds = t
                .predicted_block_traffic
                .map_or(TUNED_BLOCK_TRAFFIC_SECONDS, |b| b.after_seconds);
        }
        if let Some(wait) = deployment.and_then(|d| d.blue_termination_wait_seconds) {
            p.terminating_seconds = wait.saturating_add(BLUE_TERMINATE_SECONDS);
        }
        if let Some(d) = deployment {
            p.pace = Pace::of_config(d.deployment_config_name.as_deref());
        }
        p
    }

    /// Predicted duration of `phase` for a deployment with `green_instances`
    /// replacement instances (at least 1 is assumed). `None` for `Done`.
    pub fn phase_seconds(&self, phase: Phase, green_instances: usize) -> Option<u32> {
        let n = u32::try_from(green_instances.max(1)).unwrap_or(u32::MAX);
        let batches = self.pace.batches(n);
        match phase {
            Phase::Queued => Some(self.queued_seconds),
            Phase::Provisioning => Some(self.provisioning_seconds),
            Phase::Installing => Some(self.install_per_instance_seconds.saturating_mul(batches)),
            Phase::ReadyWait => Some(self.ready_gap_seconds),
            Phase::Rerouting => Some(
                self.allow_traffic_seconds
                    .saturating_add(self.block_traffic_seconds)
                    .saturating_mul(batches),
            ),
            Phase::Terminating => Some(self.terminating_seconds),
            Phase::Done => None,
        }
    }
}

/// When each phase boundary happened, read from the lifecycle events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Milestones {
    /// CodeDeploy's createTime.
    pub created: Option<EpochMillis>,
    /// First install event started on a green instance.
    pub install_started: Option<EpochMillis>,
    /// Every install event on every green instance succeeded (or was skipped):
    /// the last end time.
    pub installed: Option<EpochMillis>,
    /// First AllowTraffic-family event (green) or BlockTraffic-family event (blue) started.
    pub reroute_started: Option<EpochMillis>,
    /// Every reroute event succeeded (or was skipped): the last end time.
    pub rerouted: Option<EpochMillis>,
    /// CodeDeploy's completeTime (terminal deployments).
    pub completed: Option<EpochMillis>,
    /// Whether any install event started (even without a start time).
    pub install_begun: bool,
    /// All install events done successfully (even without end times).
    pub install_done: bool,
    pub reroute_begun: bool,
    pub reroute_done: bool,
}

fn is_green(t: &InstanceTargetView) -> bool {
    t.label != Some(FleetLabel::Blue)
}

fn is_blue(t: &InstanceTargetView) -> bool {
    t.label != Some(FleetLabel::Green)
}

/// Start/end summary of a set of lifecycle events.
#[derive(Default)]
struct Span {
    any: bool,
    begun: bool,
    all_ok: bool,
    first_start: Option<EpochMillis>,
    last_end: Option<EpochMillis>,
}

fn span<'a>(events: impl Iterator<Item = &'a crate::model::LifecycleEventView>) -> Span {
    let mut s = Span {
        all_ok: true,
        ..Span::default()
    };
    for e in events {
        s.any = true;
        let started = !matches!(
            e.status,
            LifecycleStatus::Pending | LifecycleStatus::Unknown
        ) || e.started_at_ms.is_some();
        // A skipped event without a start time did not run.
        let ran = started && !(e.status == LifecycleStatus::Skipped && e.started_at_ms.is_none());
        if ran {
            s.begun = true;
        }
        if let Some(t) = e.started_at_ms {
            s.first_start = Some(s.first_start.map_or(t, |f| f.min(t)));
        }
        if let Some(t) = e.ended_at_ms {
            s.last_end = Some(s.last_end.map_or(t, |l| l.max(t)));
        }
        if !matches!(
            e.status,
            LifecycleStatus::Succeeded | LifecycleStatus::Skipped
        ) {
            s.all_ok = false;
        }
    }
    if !s.any {
        s.all_ok = false;
    }
    s
}

/// Reads the phase boundaries of a deployment from its lifecycle events.
pub fn milestones(view: &DeploymentView) -> Milestones {
    let install = span(
        view.targets
            .iter()
            .filter(|t| is_green(t))
            .flat_map(|t| t.lifecycle_events.iter())
            .filter(|e| INSTALL_EVENTS.contains(&e.name.as_str())),
    );
    let green_reroute = view
        .targets
        .iter()
        .filter(|t| is_green(t))
        .flat_map(|t| t.lifecycle_events.iter())
        .filter(|e| ALLOW_TRAFFIC_EVENTS.contains(&e.name.as_str()));
    let blue_reroute = view
        .targets
        .iter()
        .filter(|t| is_blue(t))
        .flat_map(|t| t.lifecycle_events.iter())
        .filter(|e| BLOCK_TRAFFIC_EVENTS.contains(&e.name.as_str()));
    let reroute = span(green_reroute.chain(blue_reroute));
    Milestones {
        created: view.created_at_ms,
        install_started: install.first_start,
        installed: if install.all_ok {
            install.last_end
        } else {
            None
        },
        reroute_started: reroute.first_start,
        rerouted: if reroute.all_ok {
            reroute.last_end
        } else {
            None
        },
        completed: if view.status.is_terminal() {
            view.completed_at_ms
        } else {
            None
        },
        install_begun: install.begun,
        install_done: install.all_ok,
        reroute_begun: reroute.begun,
        reroute_done: reroute.all_ok,
    }
}

/// The phase a deployment is in.
///
/// `Created`/`Queued` → Queued; `Ready` → ReadyWait; `Baking` → Terminating;
/// terminal → Done; `InProgress` by the lifecycle events: nothing installed yet →
/// Provisioning; install events under way on green → Installing; green installed,
/// reroute not begun → ReadyWait; AllowTraffic (green) / BlockTraffic (blue)
/// under way → Rerouting; reroute done or the wait before terminating blue
/// started → Terminating.
pub fn phase_of(view: &DeploymentView) -> Phase {
    match view.status {
        DeploymentStatus::Created | DeploymentStatus::Queued => Phase::Queued,
        DeploymentStatus::Ready => Phase::ReadyWait,
        DeploymentStatus::Baking => Phase::Terminating,
        DeploymentStatus::Succeeded | DeploymentStatus::Failed | DeploymentStatus::Stopped => {
            Phase::Done
        }
        DeploymentStatus::InProgress => {
            let m = milestones(view);
            if view.termination_wait_started == Some(true) || m.reroute_done {
                Phase::Terminating
            } else if m.reroute_begun {
                Phase::Rerouting
            } else if m.install_done {
                Phase::ReadyWait
            } else if m.install_begun {
                Phase::Installing
            } else {
                Phase::Provisioning
            }
        }
    }
}

/// The per-phase timeline of a deployment, recomputed from its lifecycle
/// events at every look (no state kept between looks).
///
/// Rows: Provisioning from createTime (it includes any time queued: CodeDeploy
/// does not report when a deployment left the queue) — or Queued while still
/// queued; Installing from the first green install event; ReadyWait from green
/// installed; Rerouting from the first AllowTraffic/BlockTraffic-family event;
/// Terminating from reroute done. Each row ends where the next begins; the last
/// row ends at completeTime for a finished deployment and is open otherwise.
/// Rows whose start is unknown are left out.
pub fn ledger(view: &DeploymentView, predictions: &Predictions) -> Vec<PhaseTiming> {
    let phase = phase_of(view);
    let m = milestones(view);
    let green = view
        .targets
        .iter()
        .filter(|t| t.label == Some(FleetLabel::Green))
        .count();
    let first = if phase == Phase::Queued {
        Phase::Queued
    } else {
        Phase::Provisioning
    };
    let starts = [
        (first, m.created),
        (Phase::Installing, m.install_started),
        (Phase::ReadyWait, m.installed),
        (Phase::Rerouting, m.reroute_started),
        (Phase::Terminating, m.rerouted),
    ];
    let rows: Vec<(Phase, EpochMillis)> = starts
        .iter()
        .filter(|(p, _)| phase == Phase::Done || *p <= phase)
        .filter_map(|(p, t)| t.map(|t| (*p, t)))
        .collect();
    rows.iter()
        .enumerate()
        .map(|(i, (p, start))| {
            let end = match rows.get(i + 1) {
                Some((_, next)) => Some(*next),
                None if phase == Phase::Done => m.completed,
                None => None,
            };
            PhaseTiming {
                phase: *p,
                started_at_ms: *start,
                ended_at_ms: end,
                predicted_seconds: predictions.phase_seconds(*p, green),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Waiting, deadline, next step
// ---------------------------------------------------------------------------

/// Bounds of the adaptive wait between two looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitBounds {
    pub min_seconds: u32,
    pub max_seconds: u32,
    /// The event wait's bound (`MAX_EVENT_WAIT_SECONDS`): [`crate::wake::event_wait_seconds`].
    pub event_max_seconds: u32,
}

/// When a phase has overrun its prediction, look again after this fraction
/// (1/n) of the time it has taken so far (then bounded).
pub const OVERDUE_DIVISOR: i64 = 4;

/// Seconds to wait before the next look at a deployment in `phase`.
///
/// `remaining = predicted − elapsed` for the current phase's ledger row; a
/// phase past its prediction waits `elapsed / 4` instead; a phase with no row
/// (start unknown) waits its full prediction. The result is bounded to
/// `[min, max]` and never goes past the deadline by more than `min`.
pub fn wait_seconds(
    phase: Phase,
    ledger: &[PhaseTiming],
    predicted_for_phase: Option<u32>,
    deadline_ms: EpochMillis,
    now: EpochMillis,
    bounds: WaitBounds,
) -> u32 {
    let min = i64::from(bounds.min_seconds);
    let max = i64::from(bounds.max_seconds.max(bounds.min_seconds));
    let raw = phase_remaining_seconds(phase, ledger, predicted_for_phase, now).unwrap_or(min);
    let until_deadline = (deadline_ms - now).max(0) / 1000;
    let wait = raw.clamp(min, max).min(until_deadline.max(min));
    u32::try_from(wait).unwrap_or(bounds.max_seconds)
}

/// Seconds until the current phase should end: `predicted − elapsed` for
/// the phase's open ledger row; `elapsed / 4` once it overran its prediction;
/// the full prediction when the phase has no row yet; `None` without a
/// prediction. Unbounded: [`wait_seconds`] and [`crate::wake::event_wait_seconds`] bound it.
pub fn phase_remaining_seconds(
    phase: Phase,
    ledger: &[PhaseTiming],
    predicted_for_phase: Option<u32>,
    now: EpochMillis,
) -> Option<i64> {
    let row = ledger
        .iter()
        .rev()
        .find(|r| r.phase == phase && r.ended_at_ms.is_none());
    let predicted = row
        .and_then(|r| r.predicted_seconds)
        .or(predicted_for_phase)
        .map(i64::from)?;
    Some(match row {
        Some(r) => {
            let elapsed = (now - r.started_at_ms).max(0) / 1000;
            let remaining = predicted - elapsed;
            if remaining > 0 {
                remaining
            } else {
                elapsed / OVERDUE_DIVISOR
            }
        }
        None => predicted,
    })
}

/// The deadline of a deployment created at `created_at_ms`.
pub fn deadline_ms(created_at_ms: EpochMillis, timeout_seconds: u32) -> EpochMillis {
    created_at_ms.saturating_add(i64::from(timeout_seconds) * 1000)
}

/// The bound on watching a deployment past its point of no return, counted
/// from the pre-reroute deadline (`POST_REROUTE_TIMEOUT_SECONDS`, default
/// 3 hours: the reroute plus a blue termination wait of up to 2 hours 55
/// minutes; the trigger rejects groups whose termination wait does not fit).
pub const DEFAULT_POST_REROUTE_TIMEOUT_SECONDS: u32 = 3 * 60 * 60;

/// The error code a status report carries when a deployment past its point
/// of no return is still not finished at the post-reroute bound.
pub const POST_REROUTE_OVERDUE: &str = "POST_REROUTE_OVERDUE";

/// True once a deployment has passed its point of no return: the traffic
/// validator answered ContinueDeployment (`validated`), or CodeDeploy began
/// the reroute (an AllowTraffic/BlockTraffic-family event ran), started the
/// blue termination wait, or reports `Baking`. From then on green serves (or
/// is about to) and a stop with rollback would move production traffic back
/// to a blue fleet that is being drained or terminated: no deadline ever
/// stops such a deployment.
pub fn past_point_of_no_return(view: &DeploymentView, validated: bool) -> bool {
    validated
        || view.status == DeploymentStatus::Baking
        || view.termination_wait_started == Some(true)
        || milestones(view).reroute_begun
}

/// What the shell must do after a look, besides reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchAction {
    /// Nothing: report and let the state machine act on `next`.
    Report,
    /// The deadline passed before the point of no return:
    /// `StopDeployment(autoRollbackEnabled = true)`.
    StopWithRollback,
}

/// Everything one look decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub report: StatusReport,
    pub action: WatchAction,
}

/// Inputs of one status look besides the deployment itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookContext {
    /// From `$.deployment.deadlineMs`: applies only before the point of no
    /// return ([`past_point_of_no_return`]).
    pub deadline_ms: EpochMillis,
    /// Past the point of no return the watcher keeps watching until this
    /// bound (the deadline plus `POST_REROUTE_TIMEOUT_SECONDS`), then reports
    /// the deployment overdue and still never stops it.
    pub post_reroute_deadline_ms: EpochMillis,
    /// From `$.deployment.createdAtMs`, used when CodeDeploy gives no createTime.
    pub created_at_ms: EpochMillis,
    /// The traffic validator already passed this deployment (`$.validation`),
    /// so a deployment still `Ready` is waiting for ContinueDeployment to take effect.
    pub validated: bool,
    pub predictions: Predictions,
    pub bounds: WaitBounds,
    pub now: EpochMillis,
}

/// The status report of one look, and whether to stop the deployment.
///
/// - terminal: `Succeeded` → next succeeded; `Failed`/`Stopped` → next failed
///   (with CodeDeploy's errorInformation and rollback deployment id);
/// - past the point of no return ([`past_point_of_no_return`]) and not
///   terminal → never stopped: wait (bounded by the post-reroute deadline);
///   past that bound still wait (the longest wait) with the error
///   [`POST_REROUTE_OVERDUE`] so the report says so;
/// - past the deadline before the point of no return → StopWithRollback,
///   next failed, `deadlineExceeded`;
/// - `Ready` → next validate, wait 0 (unless already validated: wait);
/// - otherwise → wait [`wait_seconds`].
pub fn assess(view: &DeploymentView, ctx: &LookContext) -> Assessment {
    let mut view_with_created;
    let view = if view.created_at_ms.is_none() {
        view_with_created = view.clone();
        view_with_created.created_at_ms = Some(ctx.created_at_ms);
        &view_with_created
    } else {
        view
    };
    let phase = phase_of(view);
    let ledger = ledger(view, &ctx.predictions);
    let mut report = StatusReport {
        deployment_id: view.deployment_id.clone(),
        status: view.status,
        phase,
        ledger,
        wait_seconds: 0,
        event_wait_seconds: ctx.bounds.min_seconds.max(1),
        next: NextStep::Wait,
        error: view.error.clone(),
        rollback_deployment_id: view.rollback_deployment_id.clone(),
        deadline_exceeded: false,
    };
    let mut action = WatchAction::Report;
    let no_return = !view.status.is_terminal() && past_point_of_no_return(view, ctx.validated);
    // Before the point of no return the deadline bounds the waits; past it,
    // the post-reroute bound does.
    let bound_ms = if no_return {
        ctx.post_reroute_deadline_ms.max(ctx.deadline_ms)
    } else {
        ctx.deadline_ms
    };
    match view.status {
        DeploymentStatus::Succeeded => report.next = NextStep::Succeeded,
        DeploymentStatus::Failed | DeploymentStatus::Stopped => report.next = NextStep::Failed,
        _ if no_return && ctx.now >= bound_ms => {
            report.next = NextStep::Wait;
            report.wait_seconds = ctx.bounds.max_seconds.max(ctx.bounds.min_seconds);
            report.event_wait_seconds = ctx.bounds.event_max_seconds.max(report.wait_seconds);
            if report.error.is_none() {
                report.error = Some(DeploymentErrorInfo {
                    code: POST_REROUTE_OVERDUE.to_string(),
                    message: format!(
                        "deployment {} is past its point of no return (traffic moved or ContinueDeployment answered) and still {} in phase {:?} {} s after creation, past the post-reroute bound; greenlight never stops such a deployment: check it in the CodeDeploy console (blue termination wait, BlockTraffic) and let it finish",
                        view.deployment_id,
                        status_name(view.status),
                        phase,
                        (ctx.now - ctx.created_at_ms).max(0) / 1000,
                    ),
                });
            }
        }
        _ if !no_return && ctx.now >= ctx.deadline_ms => {
            action = WatchAction::StopWithRollback;
            report.next = NextStep::Failed;
            report.deadline_exceeded = true;
            if report.error.is_none() {
                report.error = Some(DeploymentErrorInfo {
                    code: "DEADLINE_EXCEEDED".to_string(),
                    message: format!(
                        "deployment {} was still {} in phase {:?} at the pipeline deadline ({} s after creation); the watcher stopped it with rollback",
                        view.deployment_id,
                        status_name(view.status),
                        phase,
                        (ctx.deadline_ms - ctx.created_at_ms) / 1000,
                    ),
                });
            }
        }
        DeploymentStatus::Ready if !ctx.validated => report.next = NextStep::Validate,
        _ => {
            report.next = NextStep::Wait;
            let green = view
                .targets
                .iter()
                .filter(|t| t.label == Some(FleetLabel::Green))
                .count();
            report.wait_seconds = wait_seconds(
                phase,
                &report.ledger,
                ctx.predictions.phase_seconds(phase, green),
                bound_ms,
                ctx.now,
                ctx.bounds,
            );
            report.event_wait_seconds = crate::wake::event_wait_seconds(
                phase,
                &report.ledger,
                &ctx.predictions,
                green,
                bound_ms,
                ctx.now,
                crate::wake::EventWaitBounds {
                    min_seconds: ctx.bounds.min_seconds,
                    max_seconds: ctx.bounds.event_max_seconds,
                },
            )
            // Never shorter than the polling wait: an event only shortens it.
            .max(report.wait_seconds);
            if view.status == DeploymentStatus::Ready {
                // Validated, waiting for ContinueDeployment to show.
                report.wait_seconds = ctx.bounds.min_seconds;
                report.event_wait_seconds = ctx.bounds.min_seconds.max(1);
            }
        }
    }
    Assessment { report, action }
}

/// The `CreatedDeployment` for a deployment created (or found) at `created_at_ms`.
pub fn created_deployment(
    deployment_id: &str,
    created_at_ms: EpochMillis,
    timeout_seconds: u32,
    reused: bool,
) -> CreatedDeployment {
    CreatedDeployment {
        deployment_id: deployment_id.to_string(),
        created_at_ms,
        deadline_ms: deadline_ms(created_at_ms, timeout_seconds),
        reused,
        blue_termination_wait_seconds: None,
        deployment_config_name: None,
        blue_auto_scaling_groups: Vec::new(),
    }
}

/// Seconds blue stays up after the reroute, from the group's
/// `terminateBlueInstancesOnDeploymentSuccess` (`action`, minutes).
/// `KEEP_ALIVE` keeps blue running: no wait before the deployment ends.
/// A negative wait (not a value AWS accepts) is unknown.
pub fn blue_termination_wait_seconds(action: Option<&str>, wait_minutes: i32) -> Option<u32> {
    if action == Some("KEEP_ALIVE") {
        return Some(0);
    }
    u32::try_from(wait_minutes)
        .ok()
        .map(|m| m.saturating_mul(60))
}

// ---------------------------------------------------------------------------
// Admission
// ---------------------------------------------------------------------------

/// One execution competing for a deployment group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub execution_name: &'a str,
    pub input: &'a PipelineInput,
}

/// The admission decision (the shell turns `Busy` into the `GroupBusy` error,
/// which the state machine retries with backoff).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdmissionDecision {
    Proceed,
    Superseded {
        by_execution: String,
        by_key: String,
    },
    Busy,
}

impl AdmissionDecision {
    /// The state-machine output for `Proceed`/`Superseded`; `None` for `Busy`.
    pub fn admission(&self) -> Option<Admission> {
        match self {
            Self::Proceed => Some(Admission::Proceed),
            Self::Superseded {
                by_execution,
                by_key,
            } => Some(Admission::Superseded {
                by_execution: by_execution.clone(),
                by_key: by_key.clone(),
            }),
            Self::Busy => None,
        }
    }
}

/// Order of uploads: later `uploadedAtMs` is newer; ties by key, then by
/// execution name (so the order is total).
fn upload_order<'a>(c: &Candidate<'a>) -> (EpochMillis, &'a str, &'a str) {
    (
        c.input.uploaded_at_ms,
        c.input.revision.key.as_str(),
        c.execution_name,
    )
}

/// The admission rule: one deployment per deployment group at a time.
///
/// 1. Among the other RUNNING executions for the same application and
///    deployment group, if any upload is newer than mine (later `uploadedAtMs`,
///    ties broken by key, then by execution name), mine is **superseded** by the
///    newest of them: it ends without deploying and names that execution.
/// 2. Otherwise, if the group has an active deployment (Created, Queued,
///    InProgress, Baking, Ready), mine is **busy**: it waits its turn (the
///    running deployment is never interrupted).
/// 3. Otherwise mine **proceeds**.
pub fn admit(me: Candidate<'_>, others: &[Candidate<'_>], group_active: bool) -> AdmissionDecision {
    let mine = upload_order(&me);
    let newest = others
        .iter()
        .filter(|o| o.execution_name != me.execution_name)
        .filter(|o| {
            o.input.application == me.input.application
                && o.input.deployment_group == me.input.deployment_group
        })
        .filter(|o| upload_order(o) > mine)
        .max_by(|a, b| upload_order(a).cmp(&upload_order(b)));
    match newest {
        Some(n) => AdmissionDecision::Superseded {
            by_execution: n.execution_name.to_string(),
            by_key: n.input.revision.key.clone(),
        },
        None if group_active => AdmissionDecision::Busy,
        None => AdmissionDecision::Proceed,
    }
}

// ---------------------------------------------------------------------------
// Idempotent create
// ---------------------------------------------------------------------------

/// A recent deployment of the group, as ListDeployments + BatchGetDeployments give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentDeployment {
    pub deployment_id: String,
    pub description: Option<String>,
    pub created_at_ms: Option<EpochMillis>,
}

/// The deployment this execution already created (a retried `create`), if
/// any: the earliest one whose description names `execution_name`.
pub fn own_deployment<'a>(
    execution_name: &str,
    recent: &'a [RecentDeployment],
) -> Option<&'a RecentDeployment> {
    recent
        .iter()
        .filter(|d| {
            d.description.as_deref().and_then(execution_of_description) == Some(execution_name)
        })
        .min_by_key(|d| {
            (
                d.created_at_ms.unwrap_or(EpochMillis::MAX),
                d.deployment_id.clone(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_round_trips() {
        let name = "app-0123456789abcdef-20240101";
        let d = deployment_description(name);
        assert_eq!(d, "greenlight execution app-0123456789abcdef-20240101");
        assert_eq!(execution_of_description(&d), Some(name));
    }

    #[test]
    fn descriptions_fit_codedeploys_limit_for_every_execution_name_length() {
        // Step Functions execution names are 1..=80 characters.
        for len in 1..=80 {
            let name = "n".repeat(len);
            let d = deployment_description(&name);
            assert!(
                d.chars().count() <= DESCRIPTION_MAX_CHARS,
                "{len}: {} chars",
                d.chars().count()
            );
            assert_eq!(execution_of_description(&d), Some(name.as_str()), "{len}");
        }
    }

    #[test]
    fn outside_descriptions_have_no_execution() {
        assert_eq!(execution_of_description(""), None);
        assert_eq!(execution_of_description("manual deploy by bob"), None);
        assert_eq!(execution_of_description("greenlight execution "), None);
        assert_eq!(execution_of_description("greenlight execution  x"), None);
        assert_eq!(
            execution_of_description("Greenlight execution abc"),
            None,
            "prefix is case-sensitive"
        );
        assert_eq!(
            execution_of_description("greenlight execution abc"),
            Some("abc")
        );
    }

    #[test]
    fn every_status_string_maps() {
        use DeploymentStatus::*;
        for (s, want) in [
            ("Created", Created),
            ("Queued", Queued),
            ("InProgress", InProgress),
            ("Baking", Baking),
            ("Ready", Ready),
            ("Succeeded", Succeeded),
            ("Failed", Failed),
            ("Stopped", Stopped),
        ] {
            assert_eq!(parse_deployment_status(s), Ok(want));
        }
        assert_eq!(
            parse_deployment_status("SUCCEEDED"),
            Err(UnknownStatus("SUCCEEDED".into()))
        );
        assert!(parse_deployment_status("")
            .unwrap_err()
            .to_string()
            .contains("unknown CodeDeploy deployment status"));
    }

    // ---- helpers -------------------------------------------------------

    use crate::model::{
        AllowTrafficPrediction, BlockTrafficPrediction, LifecycleDiagnostics, LifecycleEventView,
        Revision, Source,
    };

    const T0: EpochMillis = 1_700_000_000_000;

    fn s(secs: i64) -> EpochMillis {
        T0 + secs * 1000
    }

    fn ev(
        name: &str,
        status: LifecycleStatus,
        start: Option<i64>,
        end: Option<i64>,
    ) -> LifecycleEventView {
        LifecycleEventView {
            name: name.to_string(),
            status,
            started_at_ms: start.map(s),
            ended_at_ms: end.map(s),
            diagnostics: None,
        }
    }

    fn done(name: &str, start: i64, end: i64) -> LifecycleEventView {
        ev(name, LifecycleStatus::Succeeded, Some(start), Some(end))
    }

    fn pending(name: &str) -> LifecycleEventView {
        ev(name, LifecycleStatus::Pending, None, None)
    }

    fn target(id: &str, label: FleetLabel, events: Vec<LifecycleEventView>) -> InstanceTargetView {
        InstanceTargetView {
            instance_id: id.to_string(),
            label: Some(label),
            status: LifecycleStatus::InProgress,
            lifecycle_events: events,
        }
    }

    fn green_events(
        installed_upto: usize,
        allow: &[LifecycleEventView],
    ) -> Vec<LifecycleEventView> {
        // Install event i runs from 100+10i to 100+10i+5 s.
        let mut v: Vec<_> = INSTALL_EVENTS
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let st = 100 + 10 * i as i64;
                if i < installed_upto {
                    done(n, st, st + 5)
                } else if i == installed_upto {
                    ev(n, LifecycleStatus::InProgress, Some(st), None)
                } else {
                    pending(n)
                }
            })
            .collect();
        if allow.is_empty() {
            v.extend(ALLOW_TRAFFIC_EVENTS.iter().map(|n| pending(n)));
        } else {
            v.extend(allow.iter().cloned());
        }
        v
    }

    fn blue_events(block: &[LifecycleEventView]) -> Vec<LifecycleEventView> {
        if block.is_empty() {
            BLOCK_TRAFFIC_EVENTS.iter().map(|n| pending(n)).collect()
        } else {
            block.to_vec()
        }
    }

    fn view(status: DeploymentStatus, targets: Vec<InstanceTargetView>) -> DeploymentView {
        DeploymentView {
            deployment_id: "d-TEST12345".to_string(),
            application: "shop".to_string(),
            deployment_group: "shop-prod".to_string(),
            status,
            description: Some(deployment_description("ex-1")),
            created_at_ms: Some(T0),
            completed_at_ms: None,
            error: None,
            rollback_deployment_id: None,
            creator: None,
            rollback_triggering_deployment_id: None,
            original_auto_scaling_groups: vec!["shop-blue".to_string()],
            termination_wait_started: Some(false),
            targets,
        }
    }

    /// A deployment with one green and one blue instance at a given stage.
    fn staged(status: DeploymentStatus, stage: &str) -> DeploymentView {
        let allow_done = vec![
            done("BeforeAllowTraffic", 200, 201),
            done("AllowTraffic", 201, 220),
            done("AfterAllowTraffic", 220, 221),
        ];
        let block_done = vec![
            done("BeforeBlockTraffic", 222, 223),
            done("BlockTraffic", 223, 260),
            done("AfterBlockTraffic", 260, 261),
        ];
        let (green, blue) = match stage {
            "none" => (vec![], vec![]),
            "provisioning" => (
                vec![target(
                    "i-green",
                    FleetLabel::Green,
                    green_events(0, &[])
                        .into_iter()
                        .map(|mut e| {
                            e.status = LifecycleStatus::Pending;
                            e.started_at_ms = None;
                            e
                        })
                        .collect(),
                )],
                vec![target("i-blue", FleetLabel::Blue, blue_events(&[]))],
            ),
            "installing" => (
                vec![target("i-green", FleetLabel::Green, green_events(3, &[]))],
                vec![target("i-blue", FleetLabel::Blue, blue_events(&[]))],
            ),
            "installed" => (
                vec![target("i-green", FleetLabel::Green, green_events(7, &[]))],
                vec![target("i-blue", FleetLabel::Blue, blue_events(&[]))],
            ),
            "allowing" => (
                vec![target(
                    "i-green",
                    FleetLabel::Green,
                    green_events(
                        7,
                        &[
                            done("BeforeAllowTraffic", 200, 201),
                            ev("AllowTraffic", LifecycleStatus::InProgress, Some(201), None),
                            pending("AfterAllowTraffic"),
                        ],
                    ),
                )],
                vec![target("i-blue", FleetLabel::Blue, blue_events(&[]))],
            ),
            "blocking" => (
                vec![target(
                    "i-green",
                    FleetLabel::Green,
                    green_events(7, &allow_done),
                )],
                vec![target(
                    "i-blue",
                    FleetLabel::Blue,
                    vec![
                        done("BeforeBlockTraffic", 222, 223),
                        ev("BlockTraffic", LifecycleStatus::InProgress, Some(223), None),
                        pending("AfterBlockTraffic"),
                    ],
                )],
            ),
            "rerouted" => (
                vec![target(
                    "i-green",
                    FleetLabel::Green,
                    green_events(7, &allow_done),
                )],
                vec![target("i-blue", FleetLabel::Blue, block_done)],
            ),
            other => panic!("unknown stage {other}"),
        };
        view(status, green.into_iter().chain(blue).collect())
    }

    fn ctx(now: EpochMillis) -> LookContext {
        LookContext {
            deadline_ms: deadline_ms(T0, 3600),
            post_reroute_deadline_ms: deadline_ms(deadline_ms(T0, 3600), 3 * 3600),
            created_at_ms: T0,
            validated: false,
            predictions: Predictions::default(),
            bounds: WaitBounds {
                min_seconds: 5,
                max_seconds: 60,
                event_max_seconds: 3600,
            },
            now,
        }
    }

    fn input(app: &str, group: &str, key: &str, at: EpochMillis) -> PipelineInput {
        PipelineInput {
            application: app.to_string(),
            deployment_group: group.to_string(),
            revision: Revision {
                bucket: "artifacts-bucket".to_string(),
                key: key.to_string(),
                version: Some("v1".to_string()),
                etag: None,
                label: key.trim_end_matches(".zip").to_string(),
            },
            uploaded_at: "2023-11-14T22:13:20Z".to_string(),
            uploaded_at_ms: at,
            source: Source::S3 { event_id: None },
            approval: None,
            bake_skip: None,
        }
    }

    // ---- statuses ------------------------------------------------------

    #[test]
    fn status_names_round_trip_and_activity() {
        use DeploymentStatus::*;
        for st in [
            Created, Queued, InProgress, Baking, Ready, Succeeded, Failed, Stopped,
        ] {
            assert_eq!(parse_deployment_status(status_name(st)), Ok(st));
            assert_eq!(is_active(st), ACTIVE_STATUSES.contains(&st), "{st:?}");
        }
        assert!(!is_active(Succeeded) && !is_active(Failed) && !is_active(Stopped));
    }

    // ---- phases --------------------------------------------------------

    #[test]
    fn phase_by_status_alone() {
        use DeploymentStatus::*;
        assert_eq!(phase_of(&staged(Created, "none")), Phase::Queued);
        assert_eq!(phase_of(&staged(Queued, "none")), Phase::Queued);
        assert_eq!(phase_of(&staged(Ready, "installed")), Phase::ReadyWait);
        assert_eq!(phase_of(&staged(Baking, "rerouted")), Phase::Terminating);
        for st in [Succeeded, Failed, Stopped] {
            assert_eq!(phase_of(&staged(st, "installing")), Phase::Done);
        }
    }

    #[test]
    fn in_progress_phase_by_lifecycle_events() {
        use DeploymentStatus::InProgress;
        assert_eq!(phase_of(&staged(InProgress, "none")), Phase::Provisioning);
        assert_eq!(
            phase_of(&staged(InProgress, "provisioning")),
            Phase::Provisioning
        );
        assert_eq!(
            phase_of(&staged(InProgress, "installing")),
            Phase::Installing
        );
        assert_eq!(phase_of(&staged(InProgress, "installed")), Phase::ReadyWait);
        assert_eq!(phase_of(&staged(InProgress, "allowing")), Phase::Rerouting);
        assert_eq!(phase_of(&staged(InProgress, "blocking")), Phase::Rerouting);
        assert_eq!(
            phase_of(&staged(InProgress, "rerouted")),
            Phase::Terminating
        );
        let mut v = staged(InProgress, "blocking");
        v.termination_wait_started = Some(true);
        assert_eq!(phase_of(&v), Phase::Terminating);
    }

    #[test]
    fn skipped_install_events_count_as_installed() {
        let mut v = staged(DeploymentStatus::InProgress, "installed");
        v.targets[0].lifecycle_events[0] =
            ev("ApplicationStop", LifecycleStatus::Skipped, None, None);
        assert_eq!(phase_of(&v), Phase::ReadyWait);
        // Only a skipped event so far: nothing has run yet.
        let v = view(
            DeploymentStatus::InProgress,
            vec![target(
                "i-green",
                FleetLabel::Green,
                vec![
                    ev("ApplicationStop", LifecycleStatus::Skipped, None, None),
                    pending("DownloadBundle"),
                ],
            )],
        );
        assert_eq!(phase_of(&v), Phase::Provisioning);
    }

    #[test]
    fn a_failed_install_event_is_not_installed() {
        let mut v = staged(DeploymentStatus::InProgress, "installed");
        v.targets[0].lifecycle_events[5].status = LifecycleStatus::Failed;
        let m = milestones(&v);
        assert!(!m.install_done);
        assert_eq!(m.installed, None);
        assert_eq!(phase_of(&v), Phase::Installing);
    }

    #[test]
    fn blue_install_events_and_green_block_events_are_ignored() {
        // Events of the wrong family on the wrong fleet do not move the phase.
        let v = view(
            DeploymentStatus::InProgress,
            vec![
                target(
                    "i-green",
                    FleetLabel::Green,
                    vec![done("BlockTraffic", 10, 20)],
                ),
                target("i-blue", FleetLabel::Blue, vec![done("Install", 10, 20)]),
            ],
        );
        let m = milestones(&v);
        assert!(!m.install_begun && !m.reroute_begun);
        assert_eq!(phase_of(&v), Phase::Provisioning);
    }

    #[test]
    fn milestones_read_first_start_and_last_end() {
        let v = staged(DeploymentStatus::InProgress, "rerouted");
        let m = milestones(&v);
        assert_eq!(m.created, Some(T0));
        assert_eq!(m.install_started, Some(s(100)));
        assert_eq!(m.installed, Some(s(165)));
        assert_eq!(m.reroute_started, Some(s(200)));
        assert_eq!(m.rerouted, Some(s(261)));
        assert_eq!(m.completed, None);
        assert!(m.install_done && m.reroute_done);
    }

    // ---- ledger --------------------------------------------------------

    fn phases(l: &[PhaseTiming]) -> Vec<Phase> {
        l.iter().map(|r| r.phase).collect()
    }

    #[test]
    fn ledger_while_queued() {
        let l = ledger(
            &staged(DeploymentStatus::Queued, "none"),
            &Predictions::default(),
        );
        assert_eq!(
            l,
            vec![PhaseTiming {
                phase: Phase::Queued,
                started_at_ms: T0,
                ended_at_ms: None,
                predicted_seconds: Some(10),
            }]
        );
    }

    #[test]
    fn ledger_grows_with_each_phase() {
        use DeploymentStatus::*;
        use Phase::*;
        let p = Predictions::default();
        let cases = [
            (InProgress, "provisioning", vec![Provisioning]),
            (InProgress, "installing", vec![Provisioning, Installing]),
            (
                Ready,
                "installed",
                vec![Provisioning, Installing, ReadyWait],
            ),
            (
                InProgress,
                "allowing",
                vec![Provisioning, Installing, ReadyWait, Rerouting],
            ),
            (
                InProgress,
                "blocking",
                vec![Provisioning, Installing, ReadyWait, Rerouting],
            ),
            (
                InProgress,
                "rerouted",
                vec![Provisioning, Installing, ReadyWait, Rerouting, Terminating],
            ),
        ];
        for (status, stage, want) in cases {
            let l = ledger(&staged(status, stage), &p);
            assert_eq!(phases(&l), want, "{stage}");
            // Rows are contiguous and only the last is open.
            for w in l.windows(2) {
                assert_eq!(w[0].ended_at_ms, Some(w[1].started_at_ms), "{stage}");
            }
            assert_eq!(l.last().unwrap().ended_at_ms, None, "{stage}");
        }
    }

    #[test]
    fn ledger_times_and_predictions() {
        let tuning = TuningResult {
            snapshots: vec![],
            predicted_allow_traffic: AllowTrafficPrediction {
                before_seconds: 330,
                after_seconds: 15,
            },
            predicted_block_traffic: None,
        };
        let p = Predictions::for_pipeline(Some(&tuning), None);
        let l = ledger(&staged(DeploymentStatus::InProgress, "rerouted"), &p);
        let row = |ph: Phase| l.iter().find(|r| r.phase == ph).unwrap().clone();
        assert_eq!(row(Phase::Provisioning).started_at_ms, T0);
        assert_eq!(row(Phase::Provisioning).ended_at_ms, Some(s(100)));
        assert_eq!(row(Phase::Provisioning).predicted_seconds, Some(240));
        assert_eq!(row(Phase::Installing).started_at_ms, s(100));
        assert_eq!(row(Phase::Installing).ended_at_ms, Some(s(165)));
        assert_eq!(row(Phase::Installing).predicted_seconds, Some(90));
        assert_eq!(row(Phase::ReadyWait).ended_at_ms, Some(s(200)));
        assert_eq!(row(Phase::Rerouting).started_at_ms, s(200));
        assert_eq!(row(Phase::Rerouting).ended_at_ms, Some(s(261)));
        assert_eq!(
            row(Phase::Rerouting).predicted_seconds,
            Some(15 + TUNED_BLOCK_TRAFFIC_SECONDS)
        );
        assert_eq!(row(Phase::Terminating).started_at_ms, s(261));
        assert_eq!(row(Phase::Terminating).predicted_seconds, Some(60));
    }

    #[test]
    fn ledger_of_a_finished_deployment_is_closed() {
        let mut v = staged(DeploymentStatus::Succeeded, "rerouted");
        v.completed_at_ms = Some(s(400));
        let l = ledger(&v, &Predictions::default());
        assert_eq!(l.len(), 5);
        assert_eq!(l.last().unwrap().phase, Phase::Terminating);
        assert_eq!(l.last().unwrap().ended_at_ms, Some(s(400)));
        assert!(l.iter().all(|r| r.ended_at_ms.is_some()));
    }

    #[test]
    fn ledger_of_a_failed_install_ends_at_completion() {
        let mut v = staged(DeploymentStatus::Failed, "installing");
        v.targets[0].lifecycle_events[3] =
            ev("Install", LifecycleStatus::Failed, Some(130), Some(140));
        v.completed_at_ms = Some(s(141));
        let l = ledger(&v, &Predictions::default());
        assert_eq!(phases(&l), vec![Phase::Provisioning, Phase::Installing]);
        assert_eq!(l[1].ended_at_ms, Some(s(141)));
    }

    #[test]
    fn ledger_without_create_time_has_no_provisioning_row() {
        let mut v = staged(DeploymentStatus::InProgress, "installing");
        v.created_at_ms = None;
        let l = ledger(&v, &Predictions::default());
        assert_eq!(phases(&l), vec![Phase::Installing]);
    }

    #[test]
    fn predictions_use_the_tuned_delay_and_the_groups_termination_wait() {
        let tuning = TuningResult {
            snapshots: vec![],
            predicted_allow_traffic: AllowTrafficPrediction {
                before_seconds: 330,
                after_seconds: 15,
            },
            predicted_block_traffic: Some(BlockTrafficPrediction {
                before_seconds: 300,
                after_seconds: 45,
            }),
        };
        let mut created = created_deployment("d-1", 0, 3600, false);
        created.blue_termination_wait_seconds = Some(5 * 60);
        let p = Predictions::for_pipeline(Some(&tuning), Some(&created));
        // No config recorded: one at a time, so two rounds for two instances.
        assert_eq!(p.phase_seconds(Phase::Rerouting, 2), Some(2 * (15 + 45)));
        assert_eq!(
            p.phase_seconds(Phase::Terminating, 2),
            Some(300 + BLUE_TERMINATE_SECONDS)
        );
        // A wait of 0 minutes: only the termination itself.
        created.blue_termination_wait_seconds = Some(0);
        let p = Predictions::for_pipeline(None, Some(&created));
        assert_eq!(
            p.phase_seconds(Phase::Terminating, 1),
            Some(BLUE_TERMINATE_SECONDS)
        );
        // Unknown wait (the group could not be read): the default.
        created.blue_termination_wait_seconds = None;
        let p = Predictions::for_pipeline(None, Some(&created));
        assert_eq!(p, Predictions::default());
        // A huge wait saturates instead of overflowing.
        created.blue_termination_wait_seconds = Some(u32::MAX);
        let p = Predictions::for_pipeline(None, Some(&created));
        assert_eq!(p.phase_seconds(Phase::Terminating, 1), Some(u32::MAX));
    }

    #[test]
    fn pace_of_the_deployment_config() {
        assert_eq!(
            Pace::of_config(Some("CodeDeployDefault.OneAtATime")),
            Pace::OneAtATime
        );
        assert_eq!(
            Pace::of_config(Some("CodeDeployDefault.HalfAtATime")),
            Pace::HalfAtATime
        );
        assert_eq!(
            Pace::of_config(Some(" CodeDeployDefault.AllAtOnce ")),
            Pace::AllAtOnce
        );
        // A custom config (its minimum healthy hosts are not read) or none: the slowest pace.
        assert_eq!(Pace::of_config(Some("shop-90-percent")), Pace::OneAtATime);
        assert_eq!(Pace::of_config(None), Pace::OneAtATime);
        // Lambda/ECS config names do not pace EC2 instances; treated as unknown.
        assert_eq!(
            Pace::of_config(Some("CodeDeployDefault.ECSAllAtOnce")),
            Pace::OneAtATime
        );
    }

    #[test]
    fn batches_per_pace() {
        for (instances, one, half, all) in [(0, 1, 1, 1), (1, 1, 1, 1), (2, 2, 2, 1), (5, 5, 2, 1)]
        {
            assert_eq!(Pace::OneAtATime.batches(instances), one, "{instances}");
            assert_eq!(Pace::HalfAtATime.batches(instances), half, "{instances}");
            assert_eq!(Pace::AllAtOnce.batches(instances), all, "{instances}");
        }
        assert_eq!(Pace::OneAtATime.batches(u32::MAX), u32::MAX);
    }

    #[test]
    fn install_and_reroute_predictions_follow_the_pace() {
        let mut created = created_deployment("d-1", 0, 3600, false);
        for (config, install, reroute) in [
            ("CodeDeployDefault.OneAtATime", 4 * 90, 4 * (180 + 300)),
            ("CodeDeployDefault.HalfAtATime", 2 * 90, 2 * (180 + 300)),
            ("CodeDeployDefault.AllAtOnce", 90, 180 + 300),
        ] {
            created.deployment_config_name = Some(config.to_string());
            let p = Predictions::for_pipeline(None, Some(&created));
            assert_eq!(
                p.phase_seconds(Phase::Installing, 4),
                Some(install),
                "{config}"
            );
            assert_eq!(
                p.phase_seconds(Phase::Rerouting, 4),
                Some(reroute),
                "{config}"
            );
            // Phases that are not paced by the config.
            assert_eq!(
                p.phase_seconds(Phase::Provisioning, 4),
                Some(240),
                "{config}"
            );
            assert_eq!(p.phase_seconds(Phase::Terminating, 4), Some(60), "{config}");
        }
        // Saturates instead of overflowing.
        let p = Predictions {
            allow_traffic_seconds: u32::MAX,
            ..Predictions::default()
        };
        assert_eq!(p.phase_seconds(Phase::Rerouting, 3), Some(u32::MAX));
    }

    #[test]
    fn blue_termination_wait_from_the_group() {
        assert_eq!(
            blue_termination_wait_seconds(Some("TERMINATE"), 5),
            Some(300)
        );
        assert_eq!(blue_termination_wait_seconds(Some("TERMINATE"), 0), Some(0));
        assert_eq!(blue_termination_wait_seconds(None, 60), Some(3600));
        assert_eq!(
            blue_termination_wait_seconds(Some("KEEP_ALIVE"), 60),
            Some(0)
        );
        assert_eq!(blue_termination_wait_seconds(Some("TERMINATE"), -1), None);
        // The API caps the wait at 2880 minutes; larger values still do not overflow.
        assert_eq!(
            blue_termination_wait_seconds(Some("TERMINATE"), i32::MAX),
            Some(u32::MAX)
        );
    }

    #[test]
    fn predictions_default_and_tuned() {
        let d = Predictions::for_pipeline(None, None);
        assert_eq!(d, Predictions::default());
        assert_eq!(d.phase_seconds(Phase::Rerouting, 1), Some(180 + 300));
        assert_eq!(d.phase_seconds(Phase::Installing, 0), Some(90));
        assert_eq!(d.phase_seconds(Phase::Installing, 3), Some(270));
        assert_eq!(d.phase_seconds(Phase::Done, 3), None);
        assert_eq!(d.phase_seconds(Phase::Queued, 3), Some(10));
        assert_eq!(d.phase_seconds(Phase::Provisioning, 3), Some(240));
        assert_eq!(d.phase_seconds(Phase::ReadyWait, 3), Some(10));
        assert_eq!(d.phase_seconds(Phase::Terminating, 3), Some(60));
    }

    // ---- waiting -------------------------------------------------------

    const B: WaitBounds = WaitBounds {
        min_seconds: 5,
        max_seconds: 60,
        event_max_seconds: 3600,
    };

    fn row(phase: Phase, start: i64, predicted: u32) -> PhaseTiming {
        PhaseTiming {
            phase,
            started_at_ms: s(start),
            ended_at_ms: None,
            predicted_seconds: Some(predicted),
        }
    }

    #[test]
    fn wait_is_remaining_prediction_bounded() {
        let far = s(100_000);
        // 240 s predicted, 200 elapsed → 40.
        assert_eq!(
            wait_seconds(
                Phase::Provisioning,
                &[row(Phase::Provisioning, 0, 240)],
                None,
                far,
                s(200),
                B
            ),
            40
        );
        // 238 elapsed → 2 → min 5.
        assert_eq!(
            wait_seconds(
                Phase::Provisioning,
                &[row(Phase::Provisioning, 0, 240)],
                None,
                far,
                s(238),
                B
            ),
            5
        );
        // 10 elapsed → 230 → max 60.
        assert_eq!(
            wait_seconds(
                Phase::Provisioning,
                &[row(Phase::Provisioning, 0, 240)],
                None,
                far,
                s(10),
                B
            ),
            60
        );
    }

    #[test]
    fn overdue_phase_waits_a_quarter_of_its_age() {
        let far = s(100_000);
        // 100 predicted, 120 elapsed → overdue → 30.
        assert_eq!(
            wait_seconds(
                Phase::Installing,
                &[row(Phase::Installing, 0, 100)],
                None,
                far,
                s(120),
                B
            ),
            30
        );
        // 1000 elapsed → 250 → 60.
        assert_eq!(
            wait_seconds(
                Phase::Installing,
                &[row(Phase::Installing, 0, 100)],
                None,
                far,
                s(1000),
                B
            ),
            60
        );
        // Exactly at the prediction → overdue → 100/4 = 25.
        assert_eq!(
            wait_seconds(
                Phase::Installing,
                &[row(Phase::Installing, 0, 100)],
                None,
                far,
                s(100),
                B
            ),
            25
        );
    }

    #[test]
    fn wait_without_a_row_uses_the_prediction_or_min() {
        let far = s(100_000);
        assert_eq!(
            wait_seconds(Phase::Rerouting, &[], Some(45), far, s(0), B),
            45
        );
        assert_eq!(
            wait_seconds(Phase::Rerouting, &[], Some(500), far, s(0), B),
            60
        );
        assert_eq!(wait_seconds(Phase::Done, &[], None, far, s(0), B), 5);
        // A closed row of the same phase is not the current one.
        let mut closed = row(Phase::Rerouting, 0, 500);
        closed.ended_at_ms = Some(s(10));
        assert_eq!(
            wait_seconds(Phase::Rerouting, &[closed], Some(20), far, s(0), B),
            20
        );
    }

    #[test]
    fn wait_does_not_overshoot_the_deadline() {
        let r = [row(Phase::Provisioning, 0, 240)];
        assert_eq!(
            wait_seconds(Phase::Provisioning, &r, None, s(30), s(10), B),
            20
        );
        assert_eq!(
            wait_seconds(Phase::Provisioning, &r, None, s(12), s(10), B),
            5
        );
        assert_eq!(
            wait_seconds(Phase::Provisioning, &r, None, s(0), s(10), B),
            5
        );
    }

    #[test]
    fn wait_bounds_min_above_max_use_min() {
        let b = WaitBounds {
            min_seconds: 30,
            max_seconds: 10,
            event_max_seconds: 10,
        };
        assert_eq!(
            wait_seconds(
                Phase::Provisioning,
                &[row(Phase::Provisioning, 0, 240)],
                None,
                s(100_000),
                s(0),
                b
            ),
            30
        );
    }

    #[test]
    fn clock_skew_never_gives_negative_elapsed() {
        // now before the phase start (skew) → full prediction, bounded.
        assert_eq!(
            wait_seconds(
                Phase::Terminating,
                &[row(Phase::Terminating, 100, 40)],
                None,
                s(100_000),
                s(50),
                B
            ),
            40
        );
    }

    #[test]
    fn deadline_and_created_deployment() {
        assert_eq!(deadline_ms(T0, 3600), T0 + 3_600_000);
        assert_eq!(deadline_ms(i64::MAX - 1, 10), i64::MAX);
        let c = created_deployment("d-1", T0, 60, true);
        assert_eq!(c.deadline_ms, T0 + 60_000);
        assert!(c.reused);
        assert_eq!(c.deployment_id, "d-1");
    }

    // ---- assess --------------------------------------------------------

    #[test]
    fn ready_means_validate_now() {
        let a = assess(&staged(DeploymentStatus::Ready, "installed"), &ctx(s(300)));
        assert_eq!(a.action, WatchAction::Report);
        assert_eq!(a.report.next, NextStep::Validate);
        assert_eq!(a.report.wait_seconds, 0);
        assert_eq!(a.report.phase, Phase::ReadyWait);
        assert!(!a.report.deadline_exceeded);
    }

    #[test]
    fn ready_after_validation_waits_min() {
        let mut c = ctx(s(300));
        c.validated = true;
        let a = assess(&staged(DeploymentStatus::Ready, "installed"), &c);
        assert_eq!(a.report.next, NextStep::Wait);
        assert_eq!(a.report.wait_seconds, 5);
    }

    #[test]
    fn in_progress_waits_per_phase() {
        // Provisioning at 60 s: 240 − 60 = 180 → 60.
        let a = assess(
            &staged(DeploymentStatus::InProgress, "provisioning"),
            &ctx(s(60)),
        );
        assert_eq!(
            (a.report.next, a.report.phase, a.report.wait_seconds),
            (NextStep::Wait, Phase::Provisioning, 60)
        );
        // Installing since 100 s, 1 green × 90 s, now 170 → 20.
        let a = assess(
            &staged(DeploymentStatus::InProgress, "installing"),
            &ctx(s(170)),
        );
        assert_eq!(
            (a.report.phase, a.report.wait_seconds),
            (Phase::Installing, 20)
        );
        // Rerouting since 200 s, default 480 s predicted, now 470 → 210 → 60.
        let a = assess(
            &staged(DeploymentStatus::InProgress, "allowing"),
            &ctx(s(470)),
        );
        assert_eq!(
            (a.report.phase, a.report.wait_seconds),
            (Phase::Rerouting, 60)
        );
        // Tuned: 15 + 30 = 45 predicted, since 200, now 230 → 15.
        let mut c = ctx(s(230));
        c.predictions.allow_traffic_seconds = 15;
        c.predictions.block_traffic_seconds = 30;
        let a = assess(&staged(DeploymentStatus::InProgress, "blocking"), &c);
        assert_eq!(
            (a.report.phase, a.report.wait_seconds),
            (Phase::Rerouting, 15)
        );
        // Terminating since 261, 60 predicted, now 300 → 21.
        let a = assess(
            &staged(DeploymentStatus::InProgress, "rerouted"),
            &ctx(s(300)),
        );
        assert_eq!(
            (a.report.phase, a.report.wait_seconds),
            (Phase::Terminating, 21)
        );
        // Queued since T0, 10 predicted, now 2 → 8.
        let a = assess(&staged(DeploymentStatus::Queued, "none"), &ctx(s(2)));
        assert_eq!((a.report.phase, a.report.wait_seconds), (Phase::Queued, 8));
        // Green installed, InProgress (gap before rerouting): 10 predicted from 165, now 166 → 9.
        let a = assess(
            &staged(DeploymentStatus::InProgress, "installed"),
            &ctx(s(166)),
        );
        assert_eq!(
            (a.report.phase, a.report.next, a.report.wait_seconds),
            (Phase::ReadyWait, NextStep::Wait, 9)
        );
    }

    #[test]
    fn succeeded_is_succeeded() {
        let mut v = staged(DeploymentStatus::Succeeded, "rerouted");
        v.completed_at_ms = Some(s(400));
        let a = assess(&v, &ctx(s(401)));
        assert_eq!(a.report.next, NextStep::Succeeded);
        assert_eq!(a.report.phase, Phase::Done);
        assert_eq!(a.report.wait_seconds, 0);
        assert_eq!(a.action, WatchAction::Report);
        assert!(a.report.error.is_none());
    }

    #[test]
    fn failed_and_stopped_carry_the_error_and_rollback() {
        for st in [DeploymentStatus::Failed, DeploymentStatus::Stopped] {
            let mut v = staged(st, "installing");
            v.error = Some(DeploymentErrorInfo {
                code: "HEALTH_CONSTRAINTS".into(),
                message: "The overall deployment failed because too many individual instances failed deployment".into(),
            });
            v.rollback_deployment_id = Some("d-ROLLBACK1".into());
            let a = assess(&v, &ctx(s(500)));
            assert_eq!(a.report.next, NextStep::Failed);
            assert_eq!(a.report.error.as_ref().unwrap().code, "HEALTH_CONSTRAINTS");
            assert_eq!(
                a.report.rollback_deployment_id.as_deref(),
                Some("d-ROLLBACK1")
            );
            assert_eq!(a.action, WatchAction::Report);
            assert!(!a.report.deadline_exceeded);
        }
    }

    #[test]
    fn past_the_deadline_stops_with_rollback() {
        use DeploymentStatus::*;
        for (st, stage) in [
            (Created, "none"),
            (Queued, "none"),
            (InProgress, "installing"),
            (Ready, "installed"),
        ] {
            let a = assess(&staged(st, stage), &ctx(s(3600)));
            assert_eq!(a.action, WatchAction::StopWithRollback, "{st:?}");
            assert_eq!(a.report.next, NextStep::Failed);
            assert!(a.report.deadline_exceeded);
            assert_eq!(a.report.wait_seconds, 0);
            let e = a.report.error.unwrap();
            assert_eq!(e.code, "DEADLINE_EXCEEDED");
            assert!(
                e.message.contains("d-TEST12345") && e.message.contains("3600 s"),
                "{}",
                e.message
            );
        }
    }

    /// Defect 1 (issue 9): the deadline stopped with rollback a deployment
    /// that had passed validation and moved traffic (blue termination wait).
    #[test]
    fn past_the_point_of_no_return_the_deadline_never_stops() {
        use DeploymentStatus::*;
        let mut waiting = staged(InProgress, "rerouted");
        waiting.termination_wait_started = Some(true);
        let cases: Vec<(&str, DeploymentView, bool)> = vec![
            ("Baking", staged(Baking, "rerouted"), false),
            ("termination wait", waiting, false),
            (
                "AllowTraffic under way",
                staged(InProgress, "allowing"),
                false,
            ),
            (
                "BlockTraffic under way",
                staged(InProgress, "blocking"),
                false,
            ),
            ("rerouted", staged(InProgress, "rerouted"), false),
            // Validated: ContinueDeployment answered, CodeDeploy still shows
            // Ready or has not begun the reroute.
            ("validated, still Ready", staged(Ready, "installed"), true),
            (
                "validated, InProgress",
                staged(InProgress, "installed"),
                true,
            ),
        ];
        for (name, v, validated) in cases {
            assert!(past_point_of_no_return(&v, validated), "{name}");
            for now in [s(3600), s(3600 + 3 * 3600 - 1)] {
                let mut c = ctx(now);
                c.validated = validated;
                let a = assess(&v, &c);
                assert_eq!(a.action, WatchAction::Report, "{name} at {now}");
                assert_eq!(a.report.next, NextStep::Wait, "{name}");
                assert!(!a.report.deadline_exceeded, "{name}");
                assert!(a.report.error.is_none(), "{name}");
                assert!(a.report.wait_seconds >= 5, "{name}");
            }
        }
    }

    #[test]
    fn past_the_post_reroute_bound_reports_overdue_and_still_never_stops() {
        let v = staged(DeploymentStatus::Baking, "rerouted");
        let c = ctx(s(3600 + 3 * 3600));
        let a = assess(&v, &c);
        assert_eq!(a.action, WatchAction::Report);
        assert_eq!(a.report.next, NextStep::Wait);
        assert_eq!(a.report.wait_seconds, 60);
        assert!(!a.report.deadline_exceeded);
        let e = a.report.error.unwrap();
        assert_eq!(e.code, POST_REROUTE_OVERDUE);
        assert!(
            e.message.contains("never stops") && e.message.contains("d-TEST12345"),
            "{}",
            e.message
        );
    }

    #[test]
    fn before_the_point_of_no_return_nothing_counts_as_past_it() {
        use DeploymentStatus::*;
        for (st, stage) in [
            (Created, "none"),
            (Queued, "none"),
            (InProgress, "provisioning"),
            (InProgress, "installing"),
            (InProgress, "installed"),
            (Ready, "installed"),
        ] {
            assert!(
                !past_point_of_no_return(&staged(st, stage), false),
                "{st:?} {stage}"
            );
        }
    }

    #[test]
    fn waits_past_the_point_of_no_return_are_bounded_by_the_post_reroute_bound() {
        let v = staged(DeploymentStatus::Baking, "rerouted");
        // 10 s before the post-reroute bound: wait at most until it.
        let a = assess(&v, &ctx(s(3600 + 3 * 3600 - 10)));
        assert_eq!(a.report.wait_seconds, 10);
    }

    #[test]
    fn deadline_keeps_codedeploy_error_when_there_is_one() {
        let mut v = staged(DeploymentStatus::InProgress, "installing");
        v.error = Some(DeploymentErrorInfo {
            code: "TIMEOUT".into(),
            message: "m".into(),
        });
        let a = assess(&v, &ctx(s(4000)));
        assert_eq!(a.report.error.unwrap().code, "TIMEOUT");
    }

    #[test]
    fn finished_deployments_past_the_deadline_are_not_stopped() {
        for st in [
            DeploymentStatus::Succeeded,
            DeploymentStatus::Failed,
            DeploymentStatus::Stopped,
        ] {
            let a = assess(&staged(st, "rerouted"), &ctx(s(9999)));
            assert_eq!(a.action, WatchAction::Report);
            assert!(!a.report.deadline_exceeded);
        }
    }

    #[test]
    fn just_before_the_deadline_waits_until_it() {
        let a = assess(
            &staged(DeploymentStatus::InProgress, "installing"),
            &ctx(s(3590)),
        );
        assert_eq!(a.action, WatchAction::Report);
        assert_eq!(a.report.wait_seconds, 10);
    }

    #[test]
    fn missing_create_time_falls_back_to_the_pipeline() {
        let mut v = staged(DeploymentStatus::InProgress, "provisioning");
        v.created_at_ms = None;
        let a = assess(&v, &ctx(s(60)));
        assert_eq!(a.report.ledger[0].phase, Phase::Provisioning);
        assert_eq!(a.report.ledger[0].started_at_ms, T0);
    }

    #[test]
    fn report_serializes_in_the_contract_shape() {
        let a = assess(
            &staged(DeploymentStatus::InProgress, "installing"),
            &ctx(s(170)),
        );
        let j = serde_json::to_value(&a.report).unwrap();
        assert_eq!(j["next"], "wait");
        assert_eq!(j["waitSeconds"], 20);
        assert_eq!(j["phase"], "Installing");
        assert_eq!(j["status"], "InProgress");
        assert_eq!(j["ledger"][1]["phase"], "Installing");
        assert_eq!(j["deadlineExceeded"], false);
    }

    #[test]
    fn diagnostics_do_not_change_the_phase() {
        let mut v = staged(DeploymentStatus::InProgress, "installing");
        v.targets[0].lifecycle_events[0].diagnostics = Some(LifecycleDiagnostics {
            error_code: "Success".into(),
            script_name: None,
            message: "Succeeded".into(),
            log_tail: None,
        });
        assert_eq!(phase_of(&v), Phase::Installing);
    }

    // ---- admission -----------------------------------------------------

    #[test]
    fn alone_and_idle_proceeds() {
        let me = input("shop", "prod", "shop/2.zip", 2000);
        assert_eq!(
            admit(
                Candidate {
                    execution_name: "me",
                    input: &me
                },
                &[],
                false
            ),
            AdmissionDecision::Proceed
        );
        assert_eq!(
            AdmissionDecision::Proceed.admission(),
            Some(Admission::Proceed)
        );
    }

    #[test]
    fn alone_and_busy_waits() {
        let me = input("shop", "prod", "shop/2.zip", 2000);
        let d = admit(
            Candidate {
                execution_name: "me",
                input: &me,
            },
            &[],
            true,
        );
        assert_eq!(d, AdmissionDecision::Busy);
        assert_eq!(d.admission(), None);
    }

    #[test]
    fn a_newer_upload_supersedes_even_when_idle() {
        let me = input("shop", "prod", "shop/2.zip", 2000);
        let newer = input("shop", "prod", "shop/3.zip", 3000);
        let newest = input("shop", "prod", "shop/4.zip", 4000);
        let others = [
            Candidate {
                execution_name: "newest",
                input: &newest,
            },
            Candidate {
                execution_name: "newer",
                input: &newer,
            },
        ];
        for active in [false, true] {
            let d = admit(
                Candidate {
                    execution_name: "me",
                    input: &me,
                },
                &others,
                active,
            );
            assert_eq!(
                d,
                AdmissionDecision::Superseded {
                    by_execution: "newest".into(),
                    by_key: "shop/4.zip".into()
                }
            );
            assert_eq!(
                d.admission(),
                Some(Admission::Superseded {
                    by_execution: "newest".into(),
                    by_key: "shop/4.zip".into()
                })
            );
        }
    }

    #[test]
    fn older_uploads_and_other_groups_do_not_supersede() {
        let me = input("shop", "prod", "shop/2.zip", 2000);
        let older = input("shop", "prod", "shop/1.zip", 1000);
        let other_group = input("shop", "staging", "shop/9.zip", 9000);
        let other_app = input("blog", "prod", "blog/9.zip", 9000);
        let others = [
            Candidate {
                execution_name: "older",
                input: &older,
            },
            Candidate {
                execution_name: "og",
                input: &other_group,
            },
            Candidate {
                execution_name: "oa",
                input: &other_app,
            },
        ];
        // The older one is deploying: I wait, it is not interrupted.
        assert_eq!(
            admit(
                Candidate {
                    execution_name: "me",
                    input: &me
                },
                &others,
                true
            ),
            AdmissionDecision::Busy
        );
        assert_eq!(
            admit(
                Candidate {
                    execution_name: "me",
                    input: &me
                },
                &others,
                false
            ),
            AdmissionDecision::Proceed
        );
    }

    #[test]
    fn my_own_execution_in_the_list_is_ignored() {
        let me = input("shop", "prod", "shop/2.zip", 2000);
        let others = [Candidate {
            execution_name: "me",
            input: &me,
        }];
        assert_eq!(
            admit(
                Candidate {
                    execution_name: "me",
                    input: &me
                },
                &others,
                false
            ),
            AdmissionDecision::Proceed
        );
    }

    #[test]
    fn ties_on_upload_time_are_broken_by_key_then_name() {
        let me = input("shop", "prod", "shop/b.zip", 2000);
        let same_time_later_key = input("shop", "prod", "shop/c.zip", 2000);
        let same_time_earlier_key = input("shop", "prod", "shop/a.zip", 2000);
        let d = admit(
            Candidate {
                execution_name: "me",
                input: &me,
            },
            &[Candidate {
                execution_name: "c",
                input: &same_time_later_key,
            }],
            false,
        );
        assert_eq!(
            d,
            AdmissionDecision::Superseded {
                by_execution: "c".into(),
                by_key: "shop/c.zip".into()
            }
        );
        let d = admit(
            Candidate {
                execution_name: "me",
                input: &me,
            },
            &[Candidate {
                execution_name: "a",
                input: &same_time_earlier_key,
            }],
            false,
        );
        assert_eq!(d, AdmissionDecision::Proceed);
        // Same key and time (two versions of one object): the execution name decides,
        // so exactly one of the two proceeds.
        let twin = input("shop", "prod", "shop/b.zip", 2000);
        let a = admit(
            Candidate {
                execution_name: "x-1",
                input: &me,
            },
            &[Candidate {
                execution_name: "x-2",
                input: &twin,
            }],
            false,
        );
        let b = admit(
            Candidate {
                execution_name: "x-2",
                input: &twin,
            },
            &[Candidate {
                execution_name: "x-1",
                input: &me,
            }],
            false,
        );
        assert_eq!(
            a,
            AdmissionDecision::Superseded {
                by_execution: "x-2".into(),
                by_key: "shop/b.zip".into()
            }
        );
        assert_eq!(b, AdmissionDecision::Proceed);
    }

    // ---- idempotent create ---------------------------------------------

    fn recent(id: &str, desc: Option<&str>, at: Option<EpochMillis>) -> RecentDeployment {
        RecentDeployment {
            deployment_id: id.to_string(),
            description: desc.map(str::to_string),
            created_at_ms: at,
        }
    }

    #[test]
    fn finds_the_deployment_this_execution_created() {
        let mine = deployment_description("ex-1");
        let other = deployment_description("ex-10");
        let list = [
            recent("d-OTHER", Some(&other), Some(5)),
            recent("d-MANUAL", Some("manual"), Some(1)),
            recent("d-NODESC", None, Some(1)),
            recent("d-MINE", Some(&mine), Some(7)),
        ];
        assert_eq!(
            own_deployment("ex-1", &list).map(|d| d.deployment_id.as_str()),
            Some("d-MINE")
        );
        assert_eq!(
            own_deployment("ex-10", &list).map(|d| d.deployment_id.as_str()),
            Some("d-OTHER")
        );
        assert_eq!(own_deployment("ex-2", &list), None);
        assert_eq!(own_deployment("ex-1", &[]), None);
    }

    #[test]
    fn two_deployments_of_one_execution_pick_the_earliest() {
        let mine = deployment_description("ex-1");
        let list = [
            recent("d-LATER", Some(&mine), Some(9)),
            recent("d-FIRST", Some(&mine), Some(3)),
            recent("d-UNKNOWN-TIME", Some(&mine), None),
        ];
        assert_eq!(
            own_deployment("ex-1", &list).unwrap().deployment_id,
            "d-FIRST"
        );
    }
}
