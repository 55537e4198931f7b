//! `greenlight-local` as a user runs it: argument errors, `revisions`, and
//! `status`/`down` when no service runs. Each run happens in a throw-away
//! project folder (an empty `template.yaml` marks it as the project root), so
//! a local cloud a developer keeps running in the repository is never touched.
//!
//! Having an integration test also makes `cargo test --workspace` build the
//! binary itself, with the same dependency features as the tests, which is the
//! binary `scripts/test.sh service` drives through the AWS CLI (one SDK
//! compile in CI instead of two).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_greenlight-local");

/// A throw-away project folder, removed on drop.
struct Project(PathBuf);

impl Project {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("greenlight-cli-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("template.yaml"), "").unwrap();
        Project(dir)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .current_dir(&self.0)
            .env_remove("AWS_ENDPOINT_URL")
            .output()
            .unwrap()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn no_command_prints_the_usage_and_exits_2() {
    let p = Project::new("usage");
    let out = p.run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("Usage: greenlight-local"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_lists_every_command_and_the_exit_codes() {
    let p = Project::new("help");
    let out = p.run(&["--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for command in [
        "demo",
        "scenario",
        "revisions",
        "up",
        "status",
        "down",
        "fault",
    ] {
        assert!(
            stdout(&out).contains(command),
            "help lacks {command}: {}",
            stdout(&out)
        );
    }
    assert!(stdout(&out).contains("Exit codes"), "{}", stdout(&out));
    for command in ["demo", "scenario", "revisions", "up", "status", "down"] {
        let help = p.run(&[command, "--help"]);
        assert_eq!(help.status.code(), Some(0), "{command}");
        assert!(
            stdout(&help).contains(&format!("Usage: greenlight-local {command}")),
            "{command}: {}",
            stdout(&help)
        );
    }
    let version = p.run(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert!(stdout(&version).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn an_unknown_command_is_named_in_the_error() {
    let p = Project::new("unknown");
    let out = p.run(&["deploy-everything"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("deploy-everything"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_options_are_rejected_before_anything_starts() {
    let p = Project::new("options");
    let scale = p.run(&["demo", "--time-scale", "3"]);
    assert_eq!(scale.status.code(), Some(2));
    assert!(
        stderr(&scale).contains("--time-scale 3: give a number in (0, 1]"),
        "{}",
        stderr(&scale)
    );
    let option = p.run(&["status", "--verbose"]);
    assert_eq!(option.status.code(), Some(2));
    assert!(stderr(&option).contains("--verbose"), "{}", stderr(&option));
    let missing = p.run(&["revisions", "--out"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("--out"), "{}", stderr(&missing));
    let revision = p.run(&["demo", "--revision", "excellent"]);
    assert_eq!(revision.status.code(), Some(2));
    assert!(
        stderr(&revision).contains("excellent"),
        "{}",
        stderr(&revision)
    );
    let scenario = p.run(&["scenario", "everything"]);
    assert_eq!(scenario.status.code(), Some(2));
    // Nothing was started: no service state appeared.
    assert!(!p.0.join(".local-cloud").exists());
}

fn zip_entry(path: &Path, name: &str) -> String {
    let file = std::fs::File::open(path).unwrap();
    let mut archive = zip::ZipArchive::new(file).unwrap();
    let mut entry = archive.by_name(name).unwrap();
    let mut text = String::new();
    entry.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn revisions_writes_one_uploadable_zip_per_kind() {
    let p = Project::new("revisions");
    let out = p.run(&["revisions", "--out", "built", "--label", "v7"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for kind in ["good", "failing-health", "failing-install", "slow"] {
        let path = p.0.join("built").join(format!("v7-{kind}.zip"));
        assert!(
            path.exists(),
            "{} missing; printed {}",
            path.display(),
            stdout(&out)
        );
        assert!(stdout(&out).contains(&format!("v7-{kind}.zip")));
        let appspec = zip_entry(&path, "appspec.yml");
        assert!(appspec.contains("version: 0.0"), "{appspec}");
        assert!(appspec.contains("os: linux"), "{appspec}");
    }
}

#[test]
fn status_and_down_report_when_nothing_runs() {
    let p = Project::new("status");
    let status = p.run(&["status"]);
    assert_eq!(status.status.code(), Some(1), "{}", stdout(&status));
    assert!(
        stdout(&status).contains("the local cloud is not running"),
        "{}",
        stdout(&status)
    );
    assert!(stdout(&status).contains("greenlight-local up"));
    let down = p.run(&["down"]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert!(stdout(&down).contains("nothing to stop"));
}
