//! Pure decisions of the CLI: what a deployment's outcome is, its exit code,
//! what a command-line subject names, and the upload keys greenlight's
//! trigger accepts.

use greenlight_core::trigger::{check_key_shape, is_zip, ExecutionStatus};
use greenlight_core::{DeploymentStatus, DeploymentView, EpochMillis};
use serde::Serialize;

/// How a deployment (or an upload) ended, or that it has not yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// The revision serves the whole fleet.
    Deployed,
    /// Still running.
    InProgress,
    /// Failed without a CodeDeploy rollback (e.g. before the deployment was
    /// created, or the failure runbook put the group back itself).
    Failed,
    /// The deployment failed or was stopped and CodeDeploy rolled back: the
    /// previous revision serves.
    RolledBack,
    /// A newer upload for the same group replaced this one before it deployed.
    Superseded,
    /// The upload was refused: no execution started for it (the trigger
    /// rejected it), or a check before uploading failed.
    Rejected,
    /// The wait's own `--timeout` ran out (the deployment goes on), or the
    /// execution timed out.
    TimedOut,
}

/// Exit code of a command that failed for another reason (an AWS error, a
/// missing setting, a deployment that does not exist).
pub const EXIT_ERROR: u8 = 1;
/// Exit code of bad usage (clap's own, for unknown options or missing arguments).
pub const EXIT_USAGE: u8 = 2;

/// The exit codes, as `--help` and the README show them.
pub const EXIT_CODES_HELP: &str = "Exit codes:
  0  deployed (or the command did what it was asked)
  1  error (AWS call failed, setting missing, not found)
  2  bad usage
  3  failed
  4  rolled back (CodeDeploy rolled back; the previous revision serves)
  5  superseded (a newer upload for the group replaced it)
  6  rejected (no execution started for the upload, or a check failed)
  7  timed out (--timeout ran out; the deployment goes on)
  8  in progress (status; watch stopped with Ctrl-C)";

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Deployed => 0,
            Outcome::Failed => 3,
            Outcome::RolledBack => 4,
            Outcome::Superseded => 5,
            Outcome::Rejected => 6,
            Outcome::TimedOut => 7,
            Outcome::InProgress => 8,
        }
    }

    /// Finished (anything but [`Outcome::InProgress`]).
    pub fn is_final(self) -> bool {
        self != Outcome::InProgress
    }

    /// Human words for the outcome.
    pub fn describe(self) -> &'static str {
        match self {
            Outcome::Deployed => "deployed",
            Outcome::InProgress => "in progress",
            Outcome::Failed => "failed",
            Outcome::RolledBack => "rolled back",
            Outcome::Superseded => "superseded",
            Outcome::Rejected => "rejected",
            Outcome::TimedOut => "timed out",
        }
    }
}

/// The execution that superseded this one, from a SUCCEEDED execution's
/// output (`admission.decision = "superseded"`, `admission.byExecution`).
pub fn superseded_by(output: Option<&str>) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(output?).ok()?;
    let admission = value.get("admission")?;
    if admission.get("decision")?.as_str()? != "superseded" {
        return None;
    }
    Some(
        admission
            .get("byExecution")
            .and_then(|b| b.as_str())
            .unwrap_or("a newer execution")
            .to_string(),
    )
}

fn rolled_back(deployment: Option<&DeploymentView>) -> bool {
    deployment.is_some_and(|d| {
        d.rollback_deployment_id.is_some()
            && matches!(
                d.status,
                DeploymentStatus::Failed | DeploymentStatus::Stopped
            )
    })
}

/// The outcome from what greenlight's execution and CodeDeploy's deployment
/// say. The execution decides when there is one (it ends only once the load
/// balancer is restored and the failure handled); the deployment says whether
/// CodeDeploy rolled back. Without an execution (a deployment created outside
/// greenlight, or no state machine known), the deployment alone decides.
pub fn outcome_of(
    execution: Option<&ExecutionStatus>,
    deployment: Option<&DeploymentView>,
) -> Outcome {
    match execution {
        Some(ExecutionStatus::Succeeded { output }) => {
            if superseded_by(output.as_deref()).is_some() {
                Outcome::Superseded
            } else {
                Outcome::Deployed
            }
        }
        Some(ExecutionStatus::Running | ExecutionStatus::PendingRedrive) => Outcome::InProgress,
        Some(ExecutionStatus::Unknown(_)) => Outcome::InProgress,
        Some(ExecutionStatus::TimedOut { .. }) => Outcome::TimedOut,
        Some(ExecutionStatus::Failed { .. } | ExecutionStatus::Aborted { .. }) => {
            if rolled_back(deployment) {
                Outcome::RolledBack
            } else {
                Outcome::Failed
            }
        }
        None => match deployment.map(|d| d.status) {
            None => Outcome::InProgress,
            Some(DeploymentStatus::Succeeded) => Outcome::Deployed,
            Some(DeploymentStatus::Failed | DeploymentStatus::Stopped) => {
                if rolled_back(deployment) {
                    Outcome::RolledBack
                } else {
                    Outcome::Failed
                }
            }
            Some(_) => Outcome::InProgress,
        },
    }
}

/// What a command-line argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A CodeDeploy deployment id (`d-XXXXXXXXX`).
    Deployment(String),
    /// A Step Functions execution ARN.
    ExecutionArn(String),
    /// A greenlight execution name (`gl-<app>-<hash>`): needs the state machine ARN.
    ExecutionName(String),
}

/// `d-...` is a deployment, `arn:...:execution:...` an execution ARN,
/// anything else an execution name.
pub fn parse_subject(arg: &str) -> Subject {
    let arg = arg.trim();
    if arg.starts_with("d-") {
        Subject::Deployment(arg.to_string())
    } else if arg.starts_with("arn:") && arg.contains(":execution:") {
        Subject::ExecutionArn(arg.to_string())
    } else {
        Subject::ExecutionName(arg.to_string())
    }
}

/// Why a bundle cannot be uploaded under greenlight's key convention.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{file:?} is not a .zip bundle: greenlight deploys zip bundles (appspec.yml at the root); zip it and pass the .zip")]
    NotZip { file: String },
    #[error("the application name is empty: pass --app with the CodeDeploy application")]
    EmptyApplication,
    #[error("{0}")]
    Shape(String),
}

/// The upload key for `file_name` (the bundle's own file name, whose stem is
/// the revision label the validator looks for in `/version`):
/// `<prefix><application>/<file_name>` (README, "Deploying to AWS"; the
/// trigger maps it to the application and `DEFAULT_DEPLOYMENT_GROUP`), or
/// `<key_prefix><file_name>` when the group is reached through a
/// `KEY_MAPPING` prefix.
pub fn upload_key(
    prefix: &str,
    application: &str,
    key_prefix: Option<&str>,
    file_name: &str,
) -> Result<String, KeyError> {
    if !is_zip(file_name) {
        return Err(KeyError::NotZip {
            file: file_name.to_string(),
        });
    }
    let key = match key_prefix {
        Some(kp) => format!("{kp}{file_name}"),
        None => {
            if application.trim().is_empty() {
                return Err(KeyError::EmptyApplication);
            }
            format!("{prefix}{application}/{file_name}")
        }
    };
    check_key_shape(&key).map_err(|r| KeyError::Shape(r.to_string()))?;
    Ok(key)
}

/// The key a rollback copies a stored revision to: the same folder, under
/// `rollback-<now_ms>/`, the same file name (so the revision label, which the
/// validator expects in the green fleet's `/version`, is unchanged and the key
/// still maps to the same application and group).
pub fn rollback_key(original_key: &str, now_ms: EpochMillis) -> String {
    match original_key.rsplit_once('/') {
        Some((dir, file)) => format!("{dir}/rollback-{now_ms}/{file}"),
        None => format!("rollback-{now_ms}/{original_key}"),
    }
}

/// One of the group's past deployments, newest first, as `rollback` chooses among them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastDeployment {
    pub deployment_id: String,
    pub status: DeploymentStatus,
    /// The greenlight execution that created it (its description), if any.
    pub execution_name: Option<String>,
    /// CodeDeploy's `creator` (`codeDeployRollback` for its own rollbacks).
    pub creator: Option<String>,
}

/// The deployment whose revision `rollback` redeploys: among greenlight's own
/// succeeded deployments (newest first), the one before the newest (the
/// newest is what serves now, the revision being rolled back from).
/// `None` when the group has fewer than two.
pub fn rollback_choice(newest_first: &[PastDeployment]) -> Option<&PastDeployment> {
    newest_first
        .iter()
        .filter(|d| {
            d.status == DeploymentStatus::Succeeded
                && d.execution_name.is_some()
                && d.creator.as_deref() != Some("codeDeployRollback")
        })
        .nth(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(status: DeploymentStatus, rollback: bool) -> DeploymentView {
        DeploymentView {
            deployment_id: "d-1".into(),
            application: "shop".into(),
            deployment_group: "shop-bg".into(),
            status,
            description: None,
            created_at_ms: None,
            completed_at_ms: None,
            error: None,
            rollback_deployment_id: rollback.then(|| "d-RB".to_string()),
            creator: None,
            rollback_triggering_deployment_id: None,
            original_auto_scaling_groups: vec![],
            termination_wait_started: None,
            targets: vec![],
        }
    }

    fn failed() -> ExecutionStatus {
        ExecutionStatus::Failed {
            error: Some("ValidationFailed".into()),
            cause: None,
        }
    }

    #[test]
    fn exit_codes_are_distinct_and_documented() {
        let all = [
            Outcome::Deployed,
            Outcome::InProgress,
            Outcome::Failed,
            Outcome::RolledBack,
            Outcome::Superseded,
            Outcome::Rejected,
            Outcome::TimedOut,
        ];
        let mut codes: Vec<u8> = all.iter().map(|o| o.exit_code()).collect();
        codes.extend([EXIT_ERROR, EXIT_USAGE]);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), codes.len(), "{codes:?}");
        assert_eq!(Outcome::Deployed.exit_code(), 0);
        for o in all {
            let line = format!("  {}  {}", o.exit_code(), o.describe());
            assert!(EXIT_CODES_HELP.contains(&line), "{line} not in help");
        }
    }

    #[test]
    fn succeeded_execution_is_deployed_unless_superseded() {
        let ok = ExecutionStatus::Succeeded {
            output: Some(r#"{"admission":{"decision":"proceed"}}"#.into()),
        };
        assert_eq!(outcome_of(Some(&ok), None), Outcome::Deployed);
        let sup = ExecutionStatus::Succeeded {
            output: Some(
                r#"{"admission":{"decision":"superseded","byExecution":"gl-x-2","byKey":"k"}}"#
                    .into(),
            ),
        };
        assert_eq!(outcome_of(Some(&sup), None), Outcome::Superseded);
        assert_eq!(
            superseded_by(Some(
                r#"{"admission":{"decision":"superseded","byExecution":"gl-x-2"}}"#
            ))
            .as_deref(),
            Some("gl-x-2")
        );
        assert_eq!(superseded_by(Some("not json")), None);
        assert_eq!(superseded_by(None), None);
    }

    #[test]
    fn failed_execution_is_rolled_back_only_when_codedeploy_rolled_back() {
        let stopped = deployment(DeploymentStatus::Stopped, true);
        assert_eq!(
            outcome_of(Some(&failed()), Some(&stopped)),
            Outcome::RolledBack
        );
        let no_rb = deployment(DeploymentStatus::Failed, false);
        assert_eq!(outcome_of(Some(&failed()), Some(&no_rb)), Outcome::Failed);
        assert_eq!(outcome_of(Some(&failed()), None), Outcome::Failed);
        let aborted = ExecutionStatus::Aborted {
            error: None,
            cause: None,
        };
        assert_eq!(outcome_of(Some(&aborted), None), Outcome::Failed);
        let timed = ExecutionStatus::TimedOut {
            error: None,
            cause: None,
        };
        assert_eq!(outcome_of(Some(&timed), None), Outcome::TimedOut);
    }

    #[test]
    fn running_execution_is_in_progress_whatever_the_deployment_says() {
        let done = deployment(DeploymentStatus::Succeeded, false);
        assert_eq!(
            outcome_of(Some(&ExecutionStatus::Running), Some(&done)),
            Outcome::InProgress
        );
        assert_eq!(
            outcome_of(Some(&ExecutionStatus::PendingRedrive), None),
            Outcome::InProgress
        );
    }

    #[test]
    fn without_execution_the_deployment_decides() {
        let cases = [
            (DeploymentStatus::Succeeded, false, Outcome::Deployed),
            (DeploymentStatus::Failed, true, Outcome::RolledBack),
            (DeploymentStatus::Stopped, true, Outcome::RolledBack),
            (DeploymentStatus::Failed, false, Outcome::Failed),
            (DeploymentStatus::Stopped, false, Outcome::Failed),
            (DeploymentStatus::Ready, false, Outcome::InProgress),
            (DeploymentStatus::InProgress, false, Outcome::InProgress),
            (DeploymentStatus::Created, false, Outcome::InProgress),
        ];
        for (status, rb, want) in cases {
            let d = deployment(status, rb);
            assert_eq!(outcome_of(None, Some(&d)), want, "{status:?} rb={rb}");
        }
        assert_eq!(outcome_of(None, None), Outcome::InProgress);
    }

    #[test]
    fn subjects_are_told_apart() {
        assert_eq!(
            parse_subject("d-ABC123"),
            Subject::Deployment("d-ABC123".into())
        );
        let arn = "arn:aws:states:us-east-1:1:execution:greenlight-pipeline:gl-a-1";
        assert_eq!(parse_subject(arn), Subject::ExecutionArn(arn.into()));
        assert_eq!(
            parse_subject(" gl-a-1 "),
            Subject::ExecutionName("gl-a-1".into())
        );
    }

    #[test]
    fn upload_key_follows_the_convention() {
        assert_eq!(
            upload_key("artifacts/", "shop", None, "20240501120000-42.zip").as_deref(),
            Ok("artifacts/shop/20240501120000-42.zip")
        );
        assert_eq!(
            upload_key("artifacts/", "shop", Some("builds/shop/"), "1.zip").as_deref(),
            Ok("builds/shop/1.zip")
        );
        assert!(matches!(
            upload_key("artifacts/", "shop", None, "build.tar.gz"),
            Err(KeyError::NotZip { .. })
        ));
        assert_eq!(
            upload_key("artifacts/", " ", None, "a.zip"),
            Err(KeyError::EmptyApplication)
        );
        assert!(matches!(
            upload_key("artifacts/", "..", None, "a.zip"),
            Err(KeyError::Shape(_))
        ));
    }

    #[test]
    fn rollback_key_keeps_folder_and_label() {
        assert_eq!(
            rollback_key("artifacts/shop/20240501-1.zip", 42),
            "artifacts/shop/rollback-42/20240501-1.zip"
        );
        assert_eq!(rollback_key("a.zip", 7), "rollback-7/a.zip");
        assert_eq!(
            greenlight_core::trigger::revision_label(&rollback_key("artifacts/shop/v1.zip", 9)),
            "v1"
        );
    }

    fn past(id: &str, status: DeploymentStatus, exec: bool, creator: &str) -> PastDeployment {
        PastDeployment {
            deployment_id: id.into(),
            status,
            execution_name: exec.then(|| format!("gl-{id}")),
            creator: Some(creator.into()),
        }
    }

    #[test]
    fn rollback_picks_the_succeeded_revision_before_the_live_one() {
        use DeploymentStatus::*;
        let history = [
            past("d-5", Failed, true, "user"),
            past("d-4", Succeeded, true, "user"),
            past("d-3", Succeeded, false, "user"),
            past("d-2", Succeeded, true, "codeDeployRollback"),
            past("d-1", Succeeded, true, "user"),
        ];
        assert_eq!(
            rollback_choice(&history).map(|d| d.deployment_id.as_str()),
            Some("d-1")
        );
        assert_eq!(rollback_choice(&history[..2]), None);
        assert_eq!(rollback_choice(&[]), None);
    }
}
