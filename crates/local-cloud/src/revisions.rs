//! Demo app revisions: zip bundles shaped like real CodeDeploy EC2/on-premises
//! revisions: `appspec.yml` at the root (version 0.0, os linux, `files`,
//! `hooks` with `location` + `timeout` + `runas`), the app itself
//! (`app.json`: what the emulated instance serves) and `scripts/*.sh`.
//!
//! The instance's app server (see [`crate::fleet`]) serves
//! `GET /health`, `GET /version` and `GET /` as `app.json` says:
//!
//! | kind             | install hooks               | `/health`                                       |
//! |------------------|-----------------------------|-------------------------------------------------|
//! | `Good`           | succeed                     | 200 `ok`                                        |
//! | `FailingHealth`  | succeed                     | 500 `unhealthy: database connection refused...` |
//! | `FailingInstall` | AfterInstall exits 1        | (never started)                                 |
//! | `Slow`           | hooks sleep a few seconds   | 200 after 1 s (under ALB's 2 s+ timeouts)       |
//! | `Degrading`      | succeed                     | 200 `ok` (see below)                            |
//!
//! `Degrading` is the revision the gate cannot catch: it starts, passes the
//! health checks and the validator's probes (both come straight to the
//! instance), but [`DEGRADE_AFTER_MS`] (simulated) after the first request
//! through the load balancer (`X-Forwarded-For` set) it answers every such
//! request but `/health` with 500 [`DEGRADED_BODY`]: the bake's case.
//!
//! Scripts sleep in simulated seconds: the fleet exports
//! `GREENLIGHT_TIME_SCALE` (real seconds per simulated second) and the scripts
//! multiply by it, so a time-scaled local cloud stays proportionate.

use std::io::{Cursor, Write};
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use zip::write::SimpleFileOptions;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevisionKind {
    /// Installs, starts and answers `/health` 200.
    Good,
    /// Installs and starts fine; `/health` answers 500 with a reason.
    FailingHealth,
    /// The AfterInstall script exits 1 with a clear stderr line.
    FailingInstall,
    /// Hooks sleep a bit; `/health` answers slowly but within the timeouts.
    Slow,
    /// Starts fine and stays healthy, but answers real traffic (through the
    /// load balancer) with 500 once it has had it for [`DEGRADE_AFTER_MS`].
    Degrading,
}

impl RevisionKind {
    pub const ALL: [RevisionKind; 5] = [
        RevisionKind::Good,
        RevisionKind::FailingHealth,
        RevisionKind::FailingInstall,
        RevisionKind::Slow,
        RevisionKind::Degrading,
    ];

    /// The CLI name (`good`, `failing-health`, `failing-install`, `slow`, `degrading`).
    pub fn name(self) -> &'static str {
        match self {
            RevisionKind::Good => "good",
            RevisionKind::FailingHealth => "failing-health",
            RevisionKind::FailingInstall => "failing-install",
            RevisionKind::Slow => "slow",
            RevisionKind::Degrading => "degrading",
        }
    }
}

impl FromStr for RevisionKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        RevisionKind::ALL
            .into_iter()
            .find(|k| k.name() == wanted)
            .ok_or_else(|| {
                format!(
                    "unknown revision kind {s:?}: use one of good, failing-health, failing-install, slow, degrading"
                )
            })
    }
}

impl std::fmt::Display for RevisionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `app.json`: what an instance's app server serves for this revision.
/// Durations are simulated milliseconds (the fleet scales them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppConfig {
    /// The revision label served by `GET /version`.
    pub version: String,
    #[serde(default)]
    pub health: HealthBehaviour,
    /// Time between ApplicationStart and the app accepting connections.
    #[serde(default)]
    pub start_delay_ms: u64,
    /// This long (simulated) after the first request through the load
    /// balancer, every such request but `/health` answers 500
    /// [`DEGRADED_BODY`]; direct requests (health checks, the validator's
    /// probes) stay fine. None: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degrade_after_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthBehaviour {
    #[serde(default = "default_status")]
    pub status: u16,
    #[serde(default = "default_body")]
    pub body: String,
    /// How long `/health` takes to answer.
    #[serde(default)]
    pub delay_ms: u64,
}

fn default_status() -> u16 {
    200
}

fn default_body() -> String {
    "ok".to_string()
}

impl Default for HealthBehaviour {
    fn default() -> Self {
        Self {
            status: default_status(),
            body: default_body(),
            delay_ms: 0,
        }
    }
}

/// The message a `FailingHealth` revision's `/health` answers (status 500).
pub const UNHEALTHY_BODY: &str =
    "unhealthy: database connection refused (orders-db:5432): is the database running and reachable?";

/// How long (simulated) a `Degrading` revision serves real traffic well:
/// through the reroute, then it fails well inside a bake.
pub const DEGRADE_AFTER_MS: u64 = 60_000;

/// What a degraded `Degrading` revision answers real traffic (status 500).
pub const DEGRADED_BODY: &str =
    "internal error: connection pool exhausted (orders-db): all 10 connections busy";

/// The stderr line a `FailingInstall` revision's AfterInstall script prints before exiting 1.
pub const INSTALL_ERROR_LINE: &str =
    "error: configuration check failed: DATABASE_URL is not set in /etc/demo-app/app.env";

/// The `app.json` of a revision kind.
pub fn app_config(kind: RevisionKind, version: &str) -> AppConfig {
    let health = match kind {
        RevisionKind::FailingHealth => HealthBehaviour {
            status: 500,
            body: UNHEALTHY_BODY.to_string(),
            delay_ms: 0,
        },
        RevisionKind::Slow => HealthBehaviour {
            status: 200,
            body: "ok".to_string(),
            delay_ms: 1000,
        },
        RevisionKind::Good | RevisionKind::FailingInstall | RevisionKind::Degrading => {
            HealthBehaviour::default()
        }
    };
    AppConfig {
        version: version.to_string(),
        health,
        start_delay_ms: if kind == RevisionKind::Slow { 2000 } else { 0 },
        degrade_after_ms: (kind == RevisionKind::Degrading).then_some(DEGRADE_AFTER_MS),
    }
}

const SCALED_SLEEP: &str = r#"# Sleeps a number of simulated seconds (the local cloud exports GREENLIGHT_TIME_SCALE).
scaled_sleep() {
  local seconds
  seconds=$(awk -v s="$1" -v f="${GREENLIGHT_TIME_SCALE:-1}" 'BEGIN { printf "%.3f", s * f }' 2>/dev/null || echo "$1")
  sleep "$seconds"
}
"#;

fn script(body: &str, slow_seconds: Option<u32>) -> String {
    let mut s = String::from("#!/bin/bash\nset -euo pipefail\ncd \"$(dirname \"$0\")/..\"\n");
    if let Some(seconds) = slow_seconds {
        s.push_str(SCALED_SLEEP);
        s.push_str(&format!(
            "echo \"slow revision: this step takes {seconds} s\"\nscaled_sleep {seconds}\n"
        ));
    }
    s.push_str(body);
    s
}

/// The scripts of a revision kind: (file name, content).
fn scripts(kind: RevisionKind, version: &str) -> Vec<(&'static str, String)> {
    let slow = |seconds| (kind == RevisionKind::Slow).then_some(seconds);
    let after_install = if kind == RevisionKind::FailingInstall {
        format!(
            "echo \"AfterInstall: configuring demo-app {version}\"\n\
             echo \"{INSTALL_ERROR_LINE}\" >&2\n\
             exit 1\n"
        )
    } else {
        format!(
            "echo \"AfterInstall: configuring demo-app {version}\"\n\
             test -f app.json || {{ echo \"app.json missing from the bundle\" >&2; exit 1; }}\n\
             echo \"configuration ok\"\n"
        )
    };
    vec![
        (
            "application_stop.sh",
            script(
                "echo \"ApplicationStop: stopping demo-app (deployment ${DEPLOYMENT_ID:-none})\"\n",
                None,
            ),
        ),
        (
            "before_install.sh",
            script(
                &format!("echo \"BeforeInstall: preparing for demo-app {version}\"\n"),
                slow(3),
            ),
        ),
        ("after_install.sh", script(&after_install, None)),
        (
            "application_start.sh",
            script(
                &format!("echo \"ApplicationStart: starting demo-app {version}\"\n"),
                slow(5),
            ),
        ),
        (
            "validate_service.sh",
            script(
                &format!(
                    "grep -q '\"version\"' app.json || {{ echo \"app.json has no version\" >&2; exit 1; }}\n\
                     echo \"ValidateService: demo-app {version} is installed\"\n"
                ),
                slow(3),
            ),
        ),
    ]
}

/// The `appspec.yml` of the demo app (EC2/on-premises AppSpec, version 0.0).
pub fn appspec_yaml() -> String {
    let hook = |event: &str, script: &str, timeout: u32| {
        format!(
            "  {event}:\n    - location: scripts/{script}\n      timeout: {timeout}\n      runas: root\n"
        )
    };
    let mut s = String::from(
        "version: 0.0\nos: linux\nfiles:\n  - source: /\n    destination: /opt/demo-app\nhooks:\n",
    );
    s.push_str(&hook("ApplicationStop", "application_stop.sh", 60));
    s.push_str(&hook("BeforeInstall", "before_install.sh", 120));
    s.push_str(&hook("AfterInstall", "after_install.sh", 120));
    s.push_str(&hook("ApplicationStart", "application_start.sh", 120));
    s.push_str(&hook("ValidateService", "validate_service.sh", 120));
    s
}

/// Zip bytes of a revision bundle (deterministic: same kind + version = same bytes).
pub fn build_revision(kind: RevisionKind, version: &str) -> Vec<u8> {
    // Writing into a Vec cannot fail for I/O reasons; the zip writer only
    // fails on invalid names, and ours are constants.
    try_build_revision(kind, version).expect("zip of constant file names into memory")
}

fn try_build_revision(kind: RevisionKind, version: &str) -> zip::result::ZipResult<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let file = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    let exec = file.unix_permissions(0o755);

    zip.start_file("appspec.yml", file)?;
    zip.write_all(appspec_yaml().as_bytes())?;

    let app = serde_json::to_string_pretty(&app_config(kind, version))
        .map_err(|e| zip::result::ZipError::Io(std::io::Error::other(e)))?;
    zip.start_file("app.json", file)?;
    zip.write_all(app.as_bytes())?;

    zip.add_directory("scripts/", file.unix_permissions(0o755))?;
    for (name, content) in scripts(kind, version) {
        zip.start_file(format!("scripts/{name}"), exec)?;
        zip.write_all(content.as_bytes())?;
    }
    Ok(zip.finish()?.into_inner())
}

/// Writes a revision bundle to `path` (the CLI uploads it to S3).
pub fn write_revision(path: &Path, kind: RevisionKind, version: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)?;
        }
    }
    let bytes = try_build_revision(kind, version).map_err(std::io::Error::other)?;
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn files(zip: &[u8]) -> Vec<(String, String)> {
        let mut archive = zip::ZipArchive::new(Cursor::new(zip)).expect("valid zip");
        (0..archive.len())
            .map(|i| {
                let mut f = archive.by_index(i).expect("entry");
                let mut s = String::new();
                if f.is_file() {
                    f.read_to_string(&mut s).expect("utf-8");
                }
                (f.name().to_string(), s)
            })
            .collect()
    }

    fn file(zip: &[u8], name: &str) -> String {
        files(zip)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
            .unwrap_or_else(|| panic!("{name} in bundle"))
    }

    #[test]
    fn every_kind_is_a_valid_zip_with_appspec_app_and_scripts() {
        for kind in RevisionKind::ALL {
            let zip = build_revision(kind, "v7");
            let names: Vec<String> = files(&zip).into_iter().map(|(n, _)| n).collect();
            for wanted in [
                "appspec.yml",
                "app.json",
                "scripts/before_install.sh",
                "scripts/after_install.sh",
                "scripts/application_start.sh",
                "scripts/validate_service.sh",
                "scripts/application_stop.sh",
            ] {
                assert!(
                    names.iter().any(|n| n == wanted),
                    "{kind}: {wanted} in {names:?}"
                );
            }
            let app: AppConfig = serde_json::from_str(&file(&zip, "app.json")).expect("app.json");
            assert_eq!(app.version, "v7");
        }
    }

    #[test]
    fn appspec_is_codedeploy_shaped_yaml() {
        let spec: serde_yaml::Value = serde_yaml::from_str(&file(
            &build_revision(RevisionKind::Good, "v1"),
            "appspec.yml",
        ))
        .expect("yaml");
        assert_eq!(spec["version"].as_f64(), Some(0.0));
        assert_eq!(spec["os"].as_str(), Some("linux"));
        assert_eq!(spec["files"][0]["source"].as_str(), Some("/"));
        for event in [
            "ApplicationStop",
            "BeforeInstall",
            "AfterInstall",
            "ApplicationStart",
            "ValidateService",
        ] {
            let hook = &spec["hooks"][event][0];
            assert!(hook["location"]
                .as_str()
                .is_some_and(|l| l.starts_with("scripts/")));
            assert!(hook["timeout"].as_u64().is_some_and(|t| t > 0 && t <= 3600));
        }
    }

    #[test]
    fn kinds_differ_where_they_should() {
        let health = |k| app_config(k, "v").health;
        assert_eq!(health(RevisionKind::Good).status, 200);
        assert_eq!(health(RevisionKind::FailingHealth).status, 500);
        assert!(health(RevisionKind::FailingHealth)
            .body
            .starts_with("unhealthy: database"));
        assert!(health(RevisionKind::Slow).delay_ms > 0);
        let failing = build_revision(RevisionKind::FailingInstall, "v");
        let after = file(&failing, "scripts/after_install.sh");
        assert!(after.contains("exit 1") && after.contains(INSTALL_ERROR_LINE));
        let slow = build_revision(RevisionKind::Slow, "v");
        assert!(file(&slow, "scripts/application_start.sh").contains("scaled_sleep"));
    }

    #[test]
    fn bundles_are_deterministic_and_written_to_disk() {
        assert_eq!(
            build_revision(RevisionKind::Good, "v1"),
            build_revision(RevisionKind::Good, "v1")
        );
        let dir = std::env::temp_dir().join(format!("gl-rev-{}", std::process::id()));
        let path = dir.join("nested/app-v1.zip");
        write_revision(&path, RevisionKind::Slow, "v1").expect("written");
        assert_eq!(
            std::fs::read(&path).expect("read back"),
            build_revision(RevisionKind::Slow, "v1")
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in RevisionKind::ALL {
            assert_eq!(kind.name().parse::<RevisionKind>(), Ok(kind));
        }
        assert_eq!(
            "FAILING_HEALTH".parse::<RevisionKind>(),
            Ok(RevisionKind::FailingHealth)
        );
        assert!("broken".parse::<RevisionKind>().is_err());
    }
}
