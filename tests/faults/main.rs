//! Issue 8's fault scenarios, end to end: a deployment through the whole
//! pipeline (S3 → EventBridge → SQS → relay → Step Functions → the five
//! handlers → CodeDeploy/ALB emulation → real loopback instances) under load,
//! with faults injected through the local cloud's fault registry
//! (`cloud.faults`, the same registry as `/_greenlight/faults`). Every
//! assertion is on state read back through the AWS APIs or on what the
//! listener answered. Each scenario writes its figures into RELIABILITY.md
//! (between the `faults` markers) before it asserts, so a failed check shows
//! there as not survived.

use greenlight_e2e::{green_instances, record_figures};
use local_cloud::faults::{FaultKind, FaultSpec, FaultView};
use local_cloud::scenarios::{DeploymentReport, TargetGroupSettings};

const FIGURES_HEADER: &str = "| scenario | faults (fired) | outcome | survived | load sent | load failed |\n|---|---|---|---|---|---|";

/// The seed's slow settings the demo target group starts with.
fn seed_settings() -> TargetGroupSettings {
    TargetGroupSettings {
        interval_seconds: 30,
        timeout_seconds: 5,
        healthy_threshold: 10,
        unhealthy_threshold: 2,
        deregistration_delay_seconds: "300".into(),
    }
}

fn spec(kind: FaultKind) -> FaultSpec {
    FaultSpec {
        kind,
        service: None,
        operation: None,
        resource: None,
        count: None,
        percent: None,
        seed: None,
        status: None,
        hang_seconds: None,
    }
}

fn throttle_percent(service: &str, percent: f64, seed: u64) -> FaultSpec {
    FaultSpec {
        service: Some(service.into()),
        percent: Some(percent),
        seed: Some(seed),
        ..spec(FaultKind::Throttle)
    }
}

/// The checks every fault scenario makes, named, with what was seen.
struct Checks(Vec<(String, bool, String)>);

impl Checks {
    fn new() -> Self {
        Self(Vec::new())
    }
    fn check(&mut self, name: &str, ok: bool, seen: impl std::fmt::Debug) {
        self.0.push((name.to_string(), ok, format!("{seen:?}")));
    }
    fn survived(&self) -> bool {
        self.0.iter().all(|(_, ok, _)| *ok)
    }
    /// Records the scenario's figures, then fails the test on any failed check.
    fn finish(self, scenario: &str, faults: &[FaultView], report: &DeploymentReport) {
        let faults_text = faults
            .iter()
            .map(|f| {
                let what = f
                    .spec
                    .service
                    .iter()
                    .chain(f.spec.operation.iter())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(":");
                let what = if what.is_empty() {
                    "target".to_string()
                } else {
                    what
                };
                let share = f.spec.percent.map(|p| format!(" {p}%")).unwrap_or_default();
                format!(
                    "{}[{what}{share}] ({})",
                    serde_json::to_value(f.spec.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    f.fired
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let outcome = format!(
            "{}{}",
            report.followed.status,
            report
                .followed
                .error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
        let (sent, failed) = report
            .load
            .as_ref()
            .map(|l| (l.sent, l.failed))
            .unwrap_or((0, 0));
        let survived = if self.survived() { "yes" } else { "no" };
        record_figures(
            "faults",
            FIGURES_HEADER,
            scenario,
            &format!("| {scenario} | {faults_text} | {outcome} | {survived} | {sent} | {failed} |"),
        );
        let failed: Vec<String> = self
            .0
            .iter()
            .filter(|(_, ok, _)| !ok)
            .map(|(name, _, seen)| format!("{name}: {seen}"))
            .collect();
        assert!(
            failed.is_empty(),
            "{scenario}: failed checks:\n{}\nexecution: {:?} {:?}\nnotifications: {:?}",
            failed.join("\n"),
            report.followed.error,
            report.followed.cause,
            report.notifications
        );
    }
}

/// The checks common to every scenario: settings back to the snapshot, one
/// version serving the whole fleet (10 of 10 answers), no request through
/// the listener failed (AWS's ALB fails none while one healthy fleet stays
/// registered), the load generator really ran, and the upload is accounted
/// for (deployed, superseded or rejected with a reason, read back through
/// the APIs: `scenarios::account_for_upload`).
fn common_checks(checks: &mut Checks, report: &DeploymentReport, version: &str) {
    checks.check(
        "every upload is accounted for",
        report.upload.is_accounted(),
        (&report.key, &report.upload),
    );
    checks.check(
        "settings before are the seed's",
        report.settings_before == seed_settings(),
        &report.settings_before,
    );
    checks.check(
        "settings equal the snapshot",
        report.settings_after == report.settings_before,
        &report.settings_after,
    );
    checks.check(
        "one version serves the whole fleet",
        report.served_versions.len() == 1 && report.served_versions.get(version) == Some(&10),
        &report.served_versions,
    );
    let load = report.load.clone().unwrap_or_default();
    checks.check("the load generator ran", load.sent >= 20, &load);
    checks.check(
        "no request through the listener failed",
        load.failed == 0 && load.ok == load.sent,
        &load,
    );
}

/// The success path's defined end: green serves, blue's ASG is gone, only green is registered.
fn green_deployed_checks(checks: &mut Checks, report: &DeploymentReport) {
    checks.check(
        "the upload ended deployed",
        report.upload.is_deployed(),
        &report.upload,
    );
    let green_asg = report.green_asg().unwrap_or_default();
    checks.check(
        "only the green ASG exists",
        report.existing_asgs == vec![green_asg.clone()],
        &report.existing_asgs,
    );
    checks.check(
        "the group points at the green ASG",
        report.group_asgs == vec![green_asg],
        &report.group_asgs,
    );
    let green = report
        .followed
        .deployment
        .as_ref()
        .map(green_instances)
        .unwrap_or_default();
    checks.check(
        "only green is registered",
        !green.is_empty() && report.registered == green,
        &report.registered,
    );
    checks.check(
        "no notification for a success",
        report.notifications.is_empty(),
        &report.notifications,
    );
    common_checks(checks, report, &report.label);
}

// One file per family of scenarios (tests/faults/*.rs), sharing the checks above.
mod bake;
mod emulated;
mod throttling;
