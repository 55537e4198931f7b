//! Issue 8's fault scenarios, end to end: a deployment through the whole
//! pipeline (S3 → EventBridge → SQS → relay → Step Functions → the five
//! handlers → CodeDeploy/ALB emulation → real loopback instances) under load,
//! with faults injected through the local cloud's fault registry
//! (`cloud.faults`, the same registry as `/_greenlight/faults`). Every
//! assertion is on state read back through the AWS APIs or on what the
//! listener answered. Each scenario writes its figures into RELIABILITY.md
//! (between the `faults` markers) before it asserts, so a failed check shows
//! there as not survived.

use greenlight_e2e::{green_instances, print_progress, record_figures};
use local_cloud::cloud::LocalCloud;
use local_cloud::faults::{FaultKind, FaultSpec, FaultView};
use local_cloud::follow;
use local_cloud::revisions::RevisionKind;
use local_cloud::scenarios::{self, DeploymentReport, TargetGroupSettings};

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

/// The checks every fault scenario makes, named, with what was seen, and
/// notes for the figures row (e.g. which failed requests AWS would fail too).
struct Checks(Vec<(String, bool, String)>, Vec<String>);

impl Checks {
    fn new() -> Self {
        Self(Vec::new(), Vec::new())
    }
    /// A note shown in the figures row's outcome column.
    fn note(&mut self, text: impl Into<String>) {
        self.1.push(text.into());
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
                    f.spec.resource.clone().unwrap_or_else(|| "target".into())
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
            "{}{}{}",
            report.followed.status,
            report
                .followed
                .error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default(),
            self.1.iter().map(|n| format!("; {n}")).collect::<String>()
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
    common_checks_but_failures(checks, report, version);
    no_failed_requests(checks, report);
}

/// [`common_checks`] without "no request failed", for a scenario where
/// AWS's ALB itself fails some (it checks them its own way).
fn common_checks_but_failures(checks: &mut Checks, report: &DeploymentReport, version: &str) {
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
}

fn no_failed_requests(checks: &mut Checks, report: &DeploymentReport) {
    let load = report.load.clone().unwrap_or_default();
    checks.check(
        "no request through the listener failed",
        load.failed == 0 && load.ok == load.sent,
        &load,
    );
}

/// The success path's defined end: green serves, blue's ASG is gone, only green is registered.
fn green_deployed_checks(checks: &mut Checks, report: &DeploymentReport) {
    green_deployed_checks_but_failures(checks, report);
    no_failed_requests(checks, report);
}

/// The execution and its deployment both succeeded, without a rollback.
fn succeeded_without_rollback_checks(checks: &mut Checks, report: &DeploymentReport) {
    checks.check(
        "the execution succeeded",
        report.followed.status == "SUCCEEDED",
        (&report.followed.status, &report.followed.error),
    );
    let deployment = report.followed.deployment.clone();
    checks.check(
        "the deployment succeeded without a rollback",
        deployment.as_ref().is_some_and(|d| {
            d.status == greenlight_core::DeploymentStatus::Succeeded
                && d.rollback_deployment_id.is_none()
        }),
        &deployment,
    );
}

/// [`green_deployed_checks`] without "no request failed".
fn green_deployed_checks_but_failures(checks: &mut Checks, report: &DeploymentReport) {
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
    let id = report
        .followed
        .deployment
        .as_ref()
        .map(|d| d.deployment_id.clone())
        .unwrap_or_default();
    exactly_one_notification(checks, report, "deployed", &id);
    common_checks_but_failures(checks, report, &report.label);
}

/// The failure path's defined end before traffic moved: blue serves whole,
/// the green ASG is gone, the group points at blue, only blue is registered,
/// and exactly one notification names the deployment.
fn blue_kept_checks(
    checks: &mut Checks,
    report: &DeploymentReport,
    cloud: &local_cloud::cloud::LocalCloud,
) {
    let blue_asg = cloud.resources.names.blue_asg.clone();
    checks.check(
        "only the blue ASG exists (the green ASG is removed)",
        report.existing_asgs == vec![blue_asg.clone()],
        &report.existing_asgs,
    );
    checks.check(
        "the group points at the blue ASG",
        report.group_asgs == vec![blue_asg],
        &report.group_asgs,
    );
    let mut blue = cloud.resources.blue_instances.clone();
    blue.sort();
    checks.check(
        "only blue is registered",
        report.registered == blue,
        &report.registered,
    );
    let id = report
        .followed
        .deployment
        .as_ref()
        .map(|d| d.deployment_id.clone())
        .unwrap_or_default();
    exactly_one_notification(checks, report, "failed", &id);
    common_checks(checks, report, local_cloud::scenarios::initial_version());
}

/// Exactly one notification says what happened (issue 8; issue 11: a
/// success is announced too): its `outcome` message attribute is `outcome`
/// (deployed, superseded, failed) and its text names `deployment_id`.
fn exactly_one_notification(
    checks: &mut Checks,
    report: &DeploymentReport,
    outcome: &str,
    deployment_id: &str,
) {
    checks.check(
        &format!("exactly one notification, {outcome}, naming the deployment"),
        report.notifications.len() == 1
            && !deployment_id.is_empty()
            && report.notifications[0].outcome.as_deref() == Some(outcome)
            && report.notifications[0].message.contains(deployment_id),
        report
            .notifications
            .iter()
            .map(|n| (n.subject.clone(), n.outcome.clone()))
            .collect::<Vec<_>>(),
    );
}

/// What a scenario reads back once its upload has ended: the report, the
/// faults with how often they fired, the group's deployments and the
/// executions started for the upload's key.
struct Settled {
    report: DeploymentReport,
    faults: Vec<FaultView>,
    deployments: Vec<scenarios::GroupDeployment>,
    executions: Vec<(String, String)>,
}

/// Uploads `kind` with `faults` armed and follows it to its end, then waits
/// for late notifications (an event path that reports the same incident
/// again after the execution ended must be counted too) and reads back the
/// rest.
async fn upload_and_settle(
    cloud: &LocalCloud,
    kind: RevisionKind,
    label: &str,
    faults: Vec<FaultSpec>,
) -> Settled {
    let mut report = scenarios::upload_with_faults(cloud, kind, label, faults, &mut print_progress)
        .await
        .unwrap_or_else(|e| panic!("scenario did not run: {e}"));
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    report.notifications.extend(
        scenarios::notifications(cloud)
            .await
            .unwrap_or_else(|e| panic!("notifications: {e}")),
    );
    let deployments = scenarios::group_deployments(cloud)
        .await
        .unwrap_or_else(|e| panic!("ListDeployments: {e}"));
    let executions = follow::executions_with_key(cloud, &report.key).await;
    Settled {
        report,
        faults: cloud.faults.list(),
        deployments,
        executions,
    }
}

// One file per family of scenarios (tests/faults/*.rs), sharing the checks above.
mod approval;
mod bake;
mod bake_rollback_failed;
mod dead_execution;
mod emulated;
mod instances;
mod lambda_crash;
mod lambda_timeout;
mod live_page;
mod lost_events;
mod override_options;
mod pipeline_credentials;
mod rollback;
mod scaling;
mod stuck;
mod throttling;
