//! What an upload or a pipeline asks of one deployment beyond the defaults
//! (issue 10): a human approval at the gate, and the emergency override that
//! skips the bake. Decided once, by deploy-trigger, and carried in the
//! execution input ([`crate::model::PipelineInput::approval`] /
//! [`crate::model::PipelineInput::bake_skip`]; both absent in older inputs,
//! which therefore still parse and mean "no approval, bake as configured").
//!
//! Where a request comes from:
//! - the S3 object's tags ([`APPROVAL_TAG`]`=required`, [`BAKE_TAG`]`=skip`),
//!   read with GetObjectTagging on the uploaded version;
//! - the CodePipeline action's `UserParameters` (`"approval": "required"`,
//!   `"bake": "skip"`);
//! - for approval only, the group's default in `APPROVAL_CONFIG` (template
//!   parameter `ApprovalConfig`), which also sets the deadline.
//!
//! Harsher readings, on purpose: a value other than the one documented is an
//! error (a typo must not silently deploy without the approval its author
//! asked for), an upload cannot waive its group's approval default, and the
//! bake is never skipped by default (only an explicit request skips it, and
//! the skip is always notified).

use serde::{Deserialize, Serialize};

/// S3 object tag asking for an approval at the gate: `greenlight-approval=required`.
pub const APPROVAL_TAG: &str = "greenlight-approval";
/// S3 object tag skipping the bake: `greenlight-bake=skip`.
pub const BAKE_TAG: &str = "greenlight-bake";
/// The one value that asks for an approval.
pub const APPROVAL_REQUIRED: &str = "required";
/// The one value that skips the bake.
pub const BAKE_SKIP: &str = "skip";

/// Deadline of an approval asked by a tag or a pipeline parameter for a group
/// `APPROVAL_CONFIG` does not list: 30 minutes, so a group with a Ready wait of
/// at least 35 minutes holds it ([`READY_MARGIN_SECONDS`]).
pub const DEFAULT_DEADLINE_SECONDS: u32 = 1_800;

/// Time the gate needs at Ready besides the human's deadline: HoldGreenScaling,
/// Validate's probes and its retry budget (about two minutes of retry waits),
/// the notification and the ContinueDeployment after the answer. CodeDeploy's
/// Ready wait must exceed the approval deadline by at least this much, or
/// CodeDeploy stops the deployment (STOP_DEPLOYMENT) while a human may still
/// approve it.
pub const READY_MARGIN_SECONDS: u32 = 300;

/// CodeDeploy's longest Ready wait (`waitTimeInMinutes`, 2,880 minutes),
/// minus [`READY_MARGIN_SECONDS`]: the longest deadline any group can honour.
pub const MAX_DEADLINE_SECONDS: u32 = 2_880 * 60 - READY_MARGIN_SECONDS;

/// Who asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RequestedBy {
    /// The uploaded S3 object's tag.
    ObjectTag,
    /// The CodePipeline action's UserParameters.
    PipelineParameter,
    /// The deployment group's default (`APPROVAL_CONFIG`).
    GroupDefault,
}

impl RequestedBy {
    /// Words for notifications: "the upload's S3 tag greenlight-approval=required".
    pub fn describe(self, tag: &str, value: &str, parameter: &str) -> String {
        match self {
            Self::ObjectTag => format!("the uploaded object's S3 tag {tag}={value}"),
            Self::PipelineParameter => {
                format!("the CodePipeline action's UserParameters {{\"{parameter}\":\"{value}\"}}")
            }
            Self::GroupDefault => "the deployment group's default (ApprovalConfig)".to_string(),
        }
    }
}

/// An approval this deployment waits for after the automated gate passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRequest {
    pub requested_by: RequestedBy,
    /// The state machine's `AwaitApproval` waits this long
    /// (`TimeoutSecondsPath`), then the deployment is rejected by deadline.
    pub deadline_seconds: u32,
}

impl ApprovalRequest {
    pub fn describe(&self) -> String {
        self.requested_by
            .describe(APPROVAL_TAG, APPROVAL_REQUIRED, "approval")
    }
}

/// The emergency override: no bake after the reroute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BakeSkip {
    pub requested_by: RequestedBy,
}

impl BakeSkip {
    pub fn describe(&self) -> String {
        self.requested_by.describe(BAKE_TAG, BAKE_SKIP, "bake")
    }

    /// Who asked, with where, for the skip's notification and report:
    /// `S3 tag greenlight-bake=skip on s3://bucket/key@version` or
    /// `CodePipeline job <id> (UserParameters {"bake":"skip"})`.
    pub fn requester(&self, input: &crate::model::PipelineInput) -> String {
        let r = &input.revision;
        match (self.requested_by, &input.source) {
            (RequestedBy::PipelineParameter, crate::model::Source::CodePipeline { job_id }) => {
                format!("CodePipeline job {job_id} (UserParameters {{\"bake\":\"skip\"}})")
            }
            (RequestedBy::ObjectTag, _) => format!(
                "S3 tag {BAKE_TAG}={BAKE_SKIP} on s3://{}/{}{}",
                r.bucket,
                r.key,
                r.version
                    .as_deref()
                    .map(|v| format!("@{v}"))
                    .unwrap_or_default()
            ),
            _ => self.describe(),
        }
    }
}

/// One group's approval setting (`APPROVAL_CONFIG`, JSON, camelCase).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupApproval {
    pub application: String,
    pub deployment_group: String,
    /// Every deployment of the group waits for an approval (default false:
    /// only uploads that ask for one wait).
    #[serde(default)]
    pub required: bool,
    /// How long a human has to answer (1..=[`MAX_DEADLINE_SECONDS`]).
    #[serde(default = "default_deadline")]
    pub deadline_seconds: u32,
}

fn default_deadline() -> u32 {
    DEFAULT_DEADLINE_SECONDS
}

/// An `APPROVAL_CONFIG` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalConfigError {
    #[error("APPROVAL_CONFIG is not a JSON list of group approvals ({0}); expected [{{\"application\": \"shop\", \"deploymentGroup\": \"shop-bg\", \"required\": true, \"deadlineSeconds\": 1800}}]")]
    Json(String),
    #[error(
        "APPROVAL_CONFIG names {application}/{group} twice; keep one entry per deployment group"
    )]
    Duplicate { application: String, group: String },
    #[error("APPROVAL_CONFIG entry {application}/{group}: {problem}")]
    Invalid {
        application: String,
        group: String,
        problem: String,
    },
}

impl crate::group_config::GroupEntry for GroupApproval {
    fn application(&self) -> &str {
        &self.application
    }
    fn deployment_group(&self) -> &str {
        &self.deployment_group
    }
}

impl From<crate::group_config::GroupConfigProblem> for ApprovalConfigError {
    fn from(p: crate::group_config::GroupConfigProblem) -> Self {
        use crate::group_config::GroupConfigProblem as P;
        match p {
            P::Json(e) => Self::Json(e),
            P::Duplicate { application, group } => Self::Duplicate { application, group },
            P::Invalid {
                application,
                group,
                problem,
            } => Self::Invalid {
                application,
                group,
                problem,
            },
        }
    }
}

/// Parses and checks `APPROVAL_CONFIG` (empty = no group asks by default).
pub fn parse_approval_config(text: &str) -> Result<Vec<GroupApproval>, ApprovalConfigError> {
    Ok(crate::group_config::parse_group_config(
        text,
        |g: &GroupApproval| {
            if (1..=MAX_DEADLINE_SECONDS).contains(&g.deadline_seconds) {
                Ok(())
            } else {
                Err(format!(
                    "deadlineSeconds {} must be 1..={MAX_DEADLINE_SECONDS} (CodeDeploy's longest Ready wait, 2880 min, less {READY_MARGIN_SECONDS} s for the gate)",
                    g.deadline_seconds
                ))
            }
        },
    )?)
}

/// The group's entry, if any.
pub fn group_approval<'a>(
    config: &'a [GroupApproval],
    application: &str,
    group: &str,
) -> Option<&'a GroupApproval> {
    crate::group_config::entry_for(config, application, group)
}

/// A request value that is not the documented one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name} {name}={value:?} is not accepted: the only value is {expected:?} ({meaning}); remove it or fix the value, nothing was deployed")]
pub struct InvalidOption {
    /// "S3 tag" or "UserParameters".
    pub source_name: &'static str,
    pub name: &'static str,
    pub value: String,
    pub expected: &'static str,
    pub meaning: &'static str,
}

/// The raw requests of one upload: its tag values and its pipeline parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Asked<'a> {
    pub approval_tag: Option<&'a str>,
    pub bake_tag: Option<&'a str>,
    pub approval_parameter: Option<&'a str>,
    pub bake_parameter: Option<&'a str>,
}

/// What the deployment will do about approval and bake.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decided {
    pub approval: Option<ApprovalRequest>,
    pub bake_skip: Option<BakeSkip>,
}

/// Decides the approval and the bake override of one upload. The tag is
/// looked at before the pipeline parameter (an upload has one or the other
/// in practice); the group default applies when neither asks. The deadline is
/// the group's (`deadlineSeconds`) or [`DEFAULT_DEADLINE_SECONDS`].
pub fn decide(asked: Asked<'_>, group: Option<&GroupApproval>) -> Result<Decided, InvalidOption> {
    let approval_asked = [
        (
            asked.approval_tag,
            "S3 tag",
            APPROVAL_TAG,
            RequestedBy::ObjectTag,
        ),
        (
            asked.approval_parameter,
            "UserParameters",
            "approval",
            RequestedBy::PipelineParameter,
        ),
    ];
    let mut approval_by = None;
    for (value, source_name, name, by) in approval_asked {
        let Some(value) = value else { continue };
        if value.trim() != APPROVAL_REQUIRED {
            return Err(InvalidOption {
                source_name,
                name,
                value: value.to_string(),
                expected: APPROVAL_REQUIRED,
                meaning: "wait for a human's approval after the gate passed",
            });
        }
        approval_by = approval_by.or(Some(by));
    }
    let approval_by = approval_by.or_else(|| {
        group
            .filter(|g| g.required)
            .map(|_| RequestedBy::GroupDefault)
    });
    let bake_asked = [
        (asked.bake_tag, "S3 tag", BAKE_TAG, RequestedBy::ObjectTag),
        (
            asked.bake_parameter,
            "UserParameters",
            "bake",
            RequestedBy::PipelineParameter,
        ),
    ];
    let mut bake_by: Option<RequestedBy> = None;
    for (value, source_name, name, by) in bake_asked {
        let Some(value) = value else { continue };
        if value.trim() != BAKE_SKIP {
            return Err(InvalidOption {
                source_name,
                name,
                value: value.to_string(),
                expected: BAKE_SKIP,
                meaning: "the emergency override that skips the bake after the reroute",
            });
        }
        bake_by = bake_by.or(Some(by));
    }
    Ok(Decided {
        approval: approval_by.map(|requested_by| ApprovalRequest {
            requested_by,
            deadline_seconds: group.map_or(DEFAULT_DEADLINE_SECONDS, |g| g.deadline_seconds),
        }),
        bake_skip: bake_by.map(|requested_by| BakeSkip { requested_by }),
    })
}

/// The shortest Ready wait, in whole minutes, that holds an approval with
/// this deadline: deadline + [`READY_MARGIN_SECONDS`], rounded up.
pub fn min_ready_wait_minutes(deadline_seconds: u32) -> i64 {
    (i64::from(deadline_seconds) + i64::from(READY_MARGIN_SECONDS) + 59) / 60
}

/// Why CodeDeploy's Ready wait cannot hold an approval: it must exceed the
/// deadline by [`READY_MARGIN_SECONDS`], else CodeDeploy stops the deployment
/// (STOP_DEPLOYMENT) while a human may still approve it. `None` when it fits
/// (or when the group states no Ready wait: nothing to compare).
pub fn ready_wait_problem(
    ready_wait_minutes: Option<i32>,
    deadline_seconds: u32,
) -> Option<String> {
    let minutes = ready_wait_minutes?;
    let wait = i64::from(minutes) * 60;
    let needed = i64::from(deadline_seconds) + i64::from(READY_MARGIN_SECONDS);
    (wait < needed).then(|| {
        format!(
            "Ready wait {minutes} min ({wait} s) < approval deadline {deadline_seconds} s + {READY_MARGIN_SECONDS} s for the gate ({needed} s): CodeDeploy would stop the deployment while a human may still approve it; set deploymentReadyOption.waitTimeInMinutes to at least {} or shorten the group's deadlineSeconds in ApprovalConfig to at most {}",
            min_ready_wait_minutes(deadline_seconds),
            (wait - i64::from(READY_MARGIN_SECONDS)).max(0)
        )
    })
}

/// What the validator does once the automated gate has a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateAction {
    /// ContinueDeployment(READY_WAIT): traffic moves now.
    Continue,
    /// Passed, but a human must approve: the deployment stays in Ready and
    /// the state machine waits in `AwaitApproval`.
    AwaitApproval,
    /// StopDeployment with rollback.
    Stop,
}

pub fn gate_action(passed: bool, approval: Option<&ApprovalRequest>) -> GateAction {
    match (passed, approval) {
        (false, _) => GateAction::Stop,
        (true, Some(_)) => GateAction::AwaitApproval,
        (true, None) => GateAction::Continue,
    }
}

#[cfg(test)]
#[path = "options_tests.rs"]
mod tests;
