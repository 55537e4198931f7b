//! `greenlight-local`'s command line (clap): commands, options, exit codes,
//! and the human renderings of what a demo or scenario reports. The binary
//! (`src/main.rs`) only runs what this parses.

use crate::faults::rate::RateMode;
use crate::revisions::RevisionKind;
use crate::scenarios::TargetGroupSettings;
use clap::{Parser, Subcommand};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Exit codes, as `greenlight-local --help` lists them.
pub const EXIT_OK: u8 = 0;
/// An error: the local cloud did not start, an AWS call failed, the service
/// is not running (`status`), a fault command failed.
pub const EXIT_ERROR: u8 = 1;
/// Bad usage (clap's own code for usage errors).
pub const EXIT_USAGE: u8 = 2;
/// The demo or scenario ran, but its deployment did not end as that revision
/// should (a good revision not deployed, a failing one not rolled back).
pub const EXIT_UNEXPECTED: u8 = 3;
/// Interrupted (Ctrl-C) before the end.
pub const EXIT_INTERRUPTED: u8 = 4;

const EXIT_CODES: &str = "Exit codes:
  0  done; for demo/scenario: the deployment ended as the revision should
     (good/slow deployed, failing-* rolled back)
  1  error (the local cloud did not start, an AWS call failed; status: not running)
  2  bad usage
  3  demo/scenario: the deployment did not end as the revision should
  4  interrupted (Ctrl-C)

The service keeps its state and log in .local-cloud/service/ (git-ignored).
The local cloud runs on loopback only.";

/// `greenlight-local`: greenlight's local cloud (moto, greenlight's
/// CodeDeploy/CodePipeline/ALB emulation, real loopback instances).
#[derive(Debug, Parser)]
#[command(name = "greenlight-local", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// A time scale: real seconds per AWS second, in (0, 1].
pub fn parse_time_scale(v: &str) -> Result<f64, String> {
    v.parse()
        .ok()
        .filter(|f: &f64| *f > 0.0 && *f <= 1.0)
        .ok_or_else(|| format!("--time-scale {v}: give a number in (0, 1], e.g. 0.1"))
}

fn parse_revision(v: &str) -> Result<RevisionKind, String> {
    v.parse()
}

fn parse_rate_limits(v: &str) -> Result<RateMode, String> {
    v.parse()
}

fn parse_bake(v: &str) -> Result<u32, String> {
    v.parse()
        .map_err(|_| format!("--bake {v}: give whole seconds, e.g. 10 (0: no bake)"))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// A real blue/green deployment, end to end: start the local cloud, upload a revision, follow it, print the timeline.
    Demo {
        /// good | failing-health | failing-install | slow | degrading
        #[arg(long, default_value = "good", value_parser = parse_revision)]
        revision: RevisionKind,
        /// Real seconds the green fleet bakes after the reroute (default 5; 150 for degrading; 0: no bake). A bake that does not fit the 5-minute termination wait gets a 30-minute one.
        #[arg(long, value_parser = parse_bake)]
        bake: Option<u32>,
        /// Real seconds per AWS second, in (0, 1].
        #[arg(long, default_value = "0.1", value_parser = parse_time_scale)]
        time_scale: f64,
        /// The revision's label (default: a fresh timestamp label).
        #[arg(long)]
        label: Option<String>,
        /// off | aws: throttle beyond AWS-like API rates (aws, the default) or not.
        #[arg(long, default_value = "aws", value_parser = parse_rate_limits)]
        rate_limits: RateMode,
    },
    /// One named scenario on a fresh local cloud, with its result as the exit code.
    Scenario {
        /// good | failing-health | failing-install | slow | pipeline | concurrent | outside
        #[arg(value_parser = ["good", "failing-health", "failing-install", "slow", "pipeline", "concurrent", "outside"])]
        name: String,
        /// Real seconds per AWS second, in (0, 1].
        #[arg(long, default_value = "0.1", value_parser = parse_time_scale)]
        time_scale: f64,
        /// off | aws
        #[arg(long, default_value = "aws", value_parser = parse_rate_limits)]
        rate_limits: RateMode,
    },
    /// Write one uploadable revision zip per kind (good, failing-health, failing-install, slow, degrading).
    Revisions {
        /// Folder to write to.
        #[arg(long, default_value = "target/revisions")]
        out: PathBuf,
        /// Version label (file names are <label>-<kind>.zip).
        #[arg(long)]
        label: Option<String>,
    },
    /// Start the local cloud as a background service (idempotent).
    Up {
        /// Real seconds per AWS second, in (0, 1].
        #[arg(long, default_value = "0.1", value_parser = parse_time_scale)]
        time_scale: f64,
        /// off | aws
        #[arg(long, default_value = "aws", value_parser = parse_rate_limits)]
        rate_limits: RateMode,
    },
    /// Endpoint, region, credentials, listener and demo resources of the running service (exit 1: not running).
    Status {
        /// One JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Stop the service: no process left, nothing listening.
    Down,
    /// The running service's fault injector: list | add <kind> [options] | clear [ID] | rate-limits off|aws (`greenlight-local fault help`).
    #[command(disable_help_flag = true)]
    Fault {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// What `up` runs in the background.
    #[command(hide = true)]
    Serve {
        #[arg(long, default_value = "0.1", value_parser = parse_time_scale)]
        time_scale: f64,
        #[arg(long, default_value = "aws", value_parser = parse_rate_limits)]
        rate_limits: RateMode,
    },
}

/// Whether a revision kind is expected to deploy (else to roll back).
pub fn expected_to_deploy(kind: RevisionKind) -> bool {
    matches!(kind, RevisionKind::Good | RevisionKind::Slow)
}

/// The exit code of a demo or scenario whose execution ended with
/// `status` (Step Functions: SUCCEEDED, FAILED, ...).
pub fn outcome_exit(kind: RevisionKind, status: &str) -> u8 {
    if (status == "SUCCEEDED") == expected_to_deploy(kind) {
        EXIT_OK
    } else {
        EXIT_UNEXPECTED
    }
}

/// A target group's settings as one human line.
pub fn settings_line(s: &TargetGroupSettings) -> String {
    format!(
        "health check every {} s (timeout {} s), healthy after {}, unhealthy after {}, deregistration delay {} s",
        s.interval_seconds,
        s.timeout_seconds,
        s.healthy_threshold,
        s.unhealthy_threshold,
        s.deregistration_delay_seconds
    )
}

/// Which versions served how many requests, as one human line.
pub fn versions_line<N: std::fmt::Display>(served: &BTreeMap<String, N>) -> String {
    if served.is_empty() {
        return "nothing".to_string();
    }
    served
        .iter()
        .map(|(version, n)| format!("{version} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A list of names as one line (`none` when empty).
pub fn names_line(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("greenlight-local").chain(args.iter().copied()))
    }

    #[test]
    fn every_existing_invocation_still_parses() {
        let demo = parse(&[
            "demo",
            "--revision",
            "degrading",
            "--bake",
            "150",
            "--time-scale",
            "0.2",
            "--label",
            "x",
        ])
        .expect("demo");
        match demo.command {
            Command::Demo {
                revision,
                bake,
                time_scale,
                label,
                ..
            } => {
                assert_eq!(revision, RevisionKind::Degrading);
                assert_eq!(bake, Some(150));
                assert_eq!(time_scale, 0.2);
                assert_eq!(label.as_deref(), Some("x"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["scenario", "good", "--time-scale", "0.1"]).expect("scenario").command,
            Command::Scenario { ref name, .. } if name == "good"
        ));
        assert!(matches!(
            parse(&["revisions", "--out", "/tmp/rev", "--label", "l"]).expect("revisions").command,
            Command::Revisions { ref out, .. } if out == &PathBuf::from("/tmp/rev")
        ));
        assert!(matches!(
            parse(&["up", "--time-scale", "0.1", "--rate-limits", "off"])
                .expect("up")
                .command,
            Command::Up {
                rate_limits: RateMode::Off,
                ..
            }
        ));
        assert!(matches!(
            parse(&["status", "--json"]).expect("status").command,
            Command::Status { json: true }
        ));
        assert!(matches!(
            parse(&["down"]).expect("down").command,
            Command::Down
        ));
        assert!(matches!(
            parse(&["fault", "add", "throttle", "--service", "codedeploy"]).expect("fault").command,
            Command::Fault { ref args } if args == &["add", "throttle", "--service", "codedeploy"]
        ));
        assert!(matches!(
            parse(&["fault", "--help"]).expect("fault help").command,
            Command::Fault { ref args } if args == &["--help"]
        ));
        assert!(matches!(
            parse(&["serve", "--time-scale", "0.1", "--rate-limits", "aws"])
                .expect("serve")
                .command,
            Command::Serve { .. }
        ));
    }

    #[test]
    fn bad_usage_is_a_usage_error_naming_the_problem() {
        for (args, needle) in [
            (
                &["demo", "--time-scale", "3"][..],
                "give a number in (0, 1]",
            ),
            (&["demo", "--revision", "excellent"][..], "excellent"),
            (&["demo", "--bake", "soon"][..], "give whole seconds"),
            (&["status", "--verbose"][..], "--verbose"),
            (&["revisions", "--out"][..], "--out"),
            (&["scenario", "everything"][..], "everything"),
            (&["deploy-everything"][..], "deploy-everything"),
            (&["up", "--rate-limits", "sometimes"][..], "sometimes"),
        ] {
            let e = parse(args).expect_err(needle);
            assert_eq!(e.exit_code(), i32::from(EXIT_USAGE), "{args:?}");
            assert!(e.to_string().contains(needle), "{args:?}: {e}");
        }
        assert_eq!(
            parse(&[]).expect_err("no command").exit_code(),
            i32::from(EXIT_USAGE)
        );
    }

    #[test]
    fn help_and_version_are_not_errors() {
        let help = parse(&["--help"]).expect_err("help");
        assert_eq!(help.kind(), ErrorKind::DisplayHelp);
        assert_eq!(help.exit_code(), 0);
        let text = help.to_string();
        for command in [
            "demo",
            "scenario",
            "revisions",
            "up",
            "status",
            "down",
            "fault",
        ] {
            assert!(text.contains(command), "{command}: {text}");
        }
        assert!(text.contains("Exit codes"), "{text}");
        assert!(!text.contains("serve"), "{text}");
        for command in ["demo", "scenario", "revisions", "up", "status", "down"] {
            let e = parse(&[command, "--help"]).expect_err(command);
            assert_eq!(e.kind(), ErrorKind::DisplayHelp, "{command}");
        }
        let version = parse(&["--version"]).expect_err("version");
        assert_eq!(version.kind(), ErrorKind::DisplayVersion);
        assert!(version.to_string().contains(env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn exit_codes_follow_the_outcome_the_revision_should_have() {
        assert_eq!(outcome_exit(RevisionKind::Good, "SUCCEEDED"), EXIT_OK);
        assert_eq!(outcome_exit(RevisionKind::Slow, "SUCCEEDED"), EXIT_OK);
        assert_eq!(outcome_exit(RevisionKind::Good, "FAILED"), EXIT_UNEXPECTED);
        assert_eq!(outcome_exit(RevisionKind::FailingHealth, "FAILED"), EXIT_OK);
        assert_eq!(
            outcome_exit(RevisionKind::FailingInstall, "FAILED"),
            EXIT_OK
        );
        assert_eq!(
            outcome_exit(RevisionKind::FailingHealth, "SUCCEEDED"),
            EXIT_UNEXPECTED
        );
        assert_eq!(outcome_exit(RevisionKind::Degrading, "FAILED"), EXIT_OK);
    }

    #[test]
    fn reports_render_as_human_lines() {
        let s = TargetGroupSettings {
            interval_seconds: 30,
            timeout_seconds: 5,
            healthy_threshold: 10,
            unhealthy_threshold: 2,
            deregistration_delay_seconds: "300".into(),
        };
        let line = settings_line(&s);
        assert_eq!(
            line,
            "health check every 30 s (timeout 5 s), healthy after 10, unhealthy after 2, deregistration delay 300 s"
        );
        assert!(!line.contains('{'));
        let served = BTreeMap::from([("v1".to_string(), 3u32), ("v2".to_string(), 1u32)]);
        assert_eq!(versions_line(&served), "v1 (3), v2 (1)");
        assert_eq!(versions_line(&BTreeMap::<String, u32>::new()), "nothing");
        assert_eq!(names_line(&[]), "none");
        assert_eq!(names_line(&["a".into(), "b".into()]), "a, b");
    }
}
