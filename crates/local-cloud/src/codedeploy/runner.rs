//! A deployment really running: provisioning, install, Ready wait, reroute,
//! termination, rollback; with CodeDeploy's state-change events on EventBridge.

use super::health::MinimumHealthy;
use super::store::{
    now_secs, Deployment, DeploymentStatus, Diagnostics, Target, ALLOW_EVENTS, BLUE_EVENTS,
};
use super::{CodeDeploy, Control};
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Why a deployment ended early.
enum Halt {
    /// A lifecycle event or step failed: (errorInformation code, message).
    Failed(String, String),
    /// StopDeployment was called (with autoRollbackEnabled).
    Stopped(bool),
    /// The Ready wait ran out with actionOnTimeout STOP_DEPLOYMENT.
    ReadyTimeout,
}

type Step<T> = Result<T, Halt>;

const HEALTH_CONSTRAINTS: &str = "The overall deployment failed because too many individual instances failed deployment, too few healthy instances are available for deployment, or some instances in your deployment group are experiencing problems.";

impl CodeDeploy {
    pub(super) fn spawn_run(self: &Arc<Self>, deployment_id: String) {
        let cd = self.clone();
        tokio::spawn(async move { cd.run(deployment_id).await });
    }

    async fn run(self: Arc<Self>, id: String) {
        let control = self.control(&id);
        self.deps.scale.sleep(self.timings.queue).await;
        self.update(&id, |d| {
            d.status = DeploymentStatus::InProgress;
            d.start_time = Some(now_secs());
        });
        self.emit(&id, "START").await;
        let rollback_creator = self.with_store(|s| {
            s.deployments
                .get(&id)
                .map(|d| d.creator == "codeDeployRollback")
                .unwrap_or(false)
        });
        let outcome = if rollback_creator {
            self.run_rollback(&id).await
        } else {
            self.run_blue_green(&id, &control).await
        };
        match outcome {
            Ok(()) => {
                self.update(&id, |d| {
                    d.status = DeploymentStatus::Succeeded;
                    d.complete_time = Some(now_secs());
                });
                self.with_store(|s| {
                    let (app, group, rev) = match s.deployments.get(&id) {
                        Some(d) => (d.application.clone(), d.group.clone(), d.revision.clone()),
                        None => return,
                    };
                    if let Some(g) = s.groups.get_mut(&(app, group)) {
                        g.last_successful = Some(id.clone());
                        g.target_revision = Some(rev);
                    }
                });
                self.emit(&id, "SUCCESS").await;
            }
            Err(halt) => self.finish_halted(&id, halt).await,
        }
    }

    async fn finish_halted(self: &Arc<Self>, id: &str, halt: Halt) {
        let (status, code, message, rollback) = match halt {
            Halt::Failed(code, message) => {
                // A failed rollback is not rolled back again.
                let rollback = self.with_store(|s| {
                    s.deployments
                        .get(id)
                        .map(|d| {
                            d.creator != "codeDeployRollback"
                                && rollback_on(&d.auto_rollback, "DEPLOYMENT_FAILURE")
                        })
                        .unwrap_or(false)
                });
                (DeploymentStatus::Failed, code, message, rollback)
            }
            Halt::Stopped(auto_rollback) => (
                DeploymentStatus::Stopped,
                "MANUAL_STOP".to_string(),
                "The deployment was stopped by the user.".to_string(),
                auto_rollback,
            ),
            Halt::ReadyTimeout => (
                DeploymentStatus::Stopped,
                "TIMEOUT".to_string(),
                "The deployment was stopped because the replacement instances were not rerouted within the deploymentReadyOption wait time.".to_string(),
                false,
            ),
        };
        self.update(id, |d| {
            d.status = status;
            d.complete_time = Some(now_secs());
            d.error = Some((code.clone(), message.clone()));
            for t in d.targets.values_mut() {
                for e in t.events.iter_mut() {
                    if e.status == "Pending" || e.status == "InProgress" {
                        e.status = "Skipped";
                    }
                }
                if t.status == "Pending" || t.status == "InProgress" || t.status == "Ready" {
                    t.status = if status == DeploymentStatus::Stopped {
                        "Skipped"
                    } else {
                        "Failed"
                    };
                    t.last_updated = now_secs();
                }
            }
        });
        if rollback {
            self.start_rollback(id);
        }
        let state = if status == DeploymentStatus::Stopped {
            "STOP"
        } else {
            "FAILURE"
        };
        self.emit(id, state).await;
    }

    /// CodeDeploy's automatic rollback: a new deployment, created by
    /// `codeDeployRollback`, of the last good revision to the original
    /// environment. For EC2 blue/green it really runs (it has targets and
    /// lifecycle events, takes time and can fail): AllowTraffic on the
    /// original (blue) instances, then BeforeBlockTraffic / BlockTraffic /
    /// AfterBlockTraffic on the replacement (green) instances, then the
    /// replacement environment is removed. Sources: CodeDeploy user guide,
    /// "Redeploy and roll back a deployment with CodeDeploy" (a rollback is a
    /// new deployment with a new id) and "Monitor deployments" (lifecycle
    /// events of a blue/green rollback). What happens to the replacement Auto
    /// Scaling group is not documented consistently (reports differ); we take
    /// the harsher reading for a runbook: the rollback deletes it at its end,
    /// so a runbook that also deletes it races CodeDeploy.
    fn start_rollback(self: &Arc<Self>, id: &str) {
        let rollback_id = self.next_id("d-");
        let created = self.with_store(|s| {
            let original = s.deployments.get_mut(id)?;
            original
                .rollback_info
                .insert("rollbackDeploymentId".into(), json!(rollback_id));
            original.rollback_info.insert(
                "rollbackMessage".into(),
                json!(format!(
                    "Deployment {id} was rolled back by deployment {rollback_id}."
                )),
            );
            let mut rollback = original.clone();
            rollback.id = rollback_id.clone();
            rollback.creator = "codeDeployRollback";
            rollback.description = Some(format!("Rollback of deployment {id}"));
            rollback.revision = original
                .previous_revision
                .clone()
                .unwrap_or_else(|| original.revision.clone());
            rollback.status = DeploymentStatus::Created;
            rollback.error = None;
            rollback.create_time = now_secs();
            rollback.start_time = None;
            rollback.complete_time = None;
            rollback.termination_wait_started = false;
            rollback.traffic_moved = false;
            rollback.green_registered = Vec::new();
            rollback.status_messages = Vec::new();
            let mut info = Map::new();
            info.insert("rollbackTriggeringDeploymentId".into(), json!(id));
            rollback.rollback_info = info;
            rollback.targets = Default::default();
            rollback.target_order = Vec::new();
            s.order.push(rollback_id.clone());
            s.deployments.insert(rollback_id.clone(), rollback);
            Some(())
        });
        if created.is_some() {
            self.spawn_run(rollback_id);
        }
    }

    /// The one place a forced rollback failure is applied (the fault
    /// injector's "make the rollback deployment fail"): `forced` fails the
    /// rollback before it touches the load balancer, as a rollback whose
    /// first lifecycle event fails would.
    fn forced_rollback_failure(&self, id: &str, forced: bool) -> Step<()> {
        if !forced {
            return Ok(());
        }
        self.message(id, "Rollback failed: forced by the fault injector");
        Err(Halt::Failed(
            "INTERNAL_ERROR".into(),
            "The rollback deployment failed (forced by greenlight's local cloud fault injector)."
                .into(),
        ))
    }

    async fn run_rollback(&self, id: &str) -> Step<()> {
        let never = Arc::new(Control::default());
        let control = &never; // a rollback cannot be stopped
        let (app, group, original, green_asg, green, registered, min) = self.with_store(|s| {
            let d = s.deployments.get(id);
            let trigger = d
                .and_then(|d| d.rollback_info.get("rollbackTriggeringDeploymentId"))
                .and_then(Value::as_str)
                .and_then(|t| s.deployments.get(t));
            let green: Vec<String> = trigger
                .map(|t| {
                    t.target_order
                        .iter()
                        .filter(|i| t.targets.get(*i).is_some_and(|x| x.label == "Green"))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            (
                d.map(|d| d.application.clone()).unwrap_or_default(),
                d.map(|d| d.group.clone()).unwrap_or_default(),
                d.map(|d| d.original_asgs.clone()).unwrap_or_default(),
                trigger.and_then(|t| t.green_asg.clone()),
                green,
                trigger
                    .map(|t| t.green_registered.clone())
                    .unwrap_or_default(),
                d.map(|d| d.min_healthy)
                    .unwrap_or(MinimumHealthy::MostConcurrency),
            )
        });
        self.message(id, "Rerouting traffic back to the original instances");
        let blue = self.asg_instances(&original).await?;
        self.update(id, |d| {
            for i in &blue {
                d.targets
                    .insert(i.clone(), Target::with_events(i, "Blue", &ALLOW_EVENTS));
                d.target_order.push(i.clone());
            }
            for i in &green {
                d.targets
                    .insert(i.clone(), Target::with_events(i, "Green", &BLUE_EVENTS));
                d.target_order.push(i.clone());
            }
        });
        // The fault injector's `fail_rollback` (or CodeDeploy::fail_next_rollback).
        let forced = self.take_forced_rollback_failure(&app, &group)
            || self.deps.faults.take_rollback_failure(&app, &group);
        self.forced_rollback_failure(id, forced)?;
        let tgs = self.target_group_arns(id).await?;
        // AllowTraffic on the original instances: re-registered (a no-op for
        // a target still registered) and re-validated by the health checks.
        // Every original instance must pass: a rollback that leaves part of
        // the original fleet out of service fails (harsher reading; AWS does
        // not document minimum healthy hosts for a rollback's AllowTraffic).
        for chunk in blue.chunks(min.batch(blue.len())) {
            let allows = chunk
                .iter()
                .map(|i| self.allow_traffic(id, i, &tgs, control));
            for r in futures_join_all(allows).await {
                r?;
            }
        }
        for i in &blue {
            self.set_target_status(id, i, "Succeeded");
        }
        // BlockTraffic on the replacement instances: every one runs its
        // Before/AfterBlockTraffic hooks (an instance that is gone fails
        // them: harsher reading, AWS does not document skipping them); those
        // registered by the failed deployment's AllowTraffic are deregistered
        // and drained (CodeDeploy deregisters what it registered).
        self.message(id, "Blocking traffic to the replacement instances");
        for chunk in green.chunks(min.batch(green.len())) {
            let blocks = chunk.iter().map(|i| {
                let was_registered = registered.contains(i);
                let none: &[String] = &[];
                let tgs = if was_registered { &tgs[..] } else { none };
                self.block_traffic(id, i, tgs, control)
            });
            for r in futures_join_all(blocks).await {
                r?;
            }
        }
        for i in &green {
            self.set_target_status(id, i, "Succeeded");
        }
        // A deployment stopped during its termination wait had already
        // pointed the group at the replacement ASG: the rollback to the
        // original environment points it back (a no-op otherwise).
        if !original.is_empty() {
            self.with_store(|s| {
                if let Some(g) = s.groups.get_mut(&(app.clone(), group.clone())) {
                    g.settings
                        .insert("autoScalingGroups".into(), json!(original.clone()));
                }
            });
        }
        // The replacement environment goes away (see start_rollback).
        if let Some(asg) = green_asg {
            self.message(id, "Removing the replacement environment");
            if let Err(e) = self
                .autoscaling
                .delete_auto_scaling_group()
                .auto_scaling_group_name(&asg)
                .force_delete(true)
                .send()
                .await
            {
                tracing::info!(deployment = id, asg, error = %greenlight_aws::describe_error(&e), "rollback: the replacement Auto Scaling group was already gone or could not be deleted");
            }
            for i in &green {
                self.deps.fleet.terminate(i).await;
            }
        }
        Ok(())
    }

    async fn run_blue_green(self: &Arc<Self>, id: &str, control: &Arc<Control>) -> Step<()> {
        let settings = self.with_store(|s| {
            s.deployments
                .get(id)
                .map(|d| d.group_settings.clone())
                .unwrap_or_default()
        });
        let style = settings.get("deploymentStyle");
        let blue_green = style
            .and_then(|s| s.get("deploymentType"))
            .and_then(Value::as_str)
            == Some("BLUE_GREEN");
        if !blue_green {
            return Err(Halt::Failed(
                "INTERNAL_ERROR".into(),
                "greenlight's local CodeDeploy emulates EC2 blue/green deployment groups only (deploymentStyle BLUE_GREEN).".into(),
            ));
        }
        let bg = settings
            .get("blueGreenDeploymentConfiguration")
            .cloned()
            .unwrap_or(Value::Null);

        // Step 1: provisioning the replacement (green) fleet.
        self.message(id, "Provisioning replacement instances");
        let original = self.with_store(|s| {
            s.deployments
                .get(id)
                .map(|d| d.original_asgs.clone())
                .unwrap_or_default()
        });
        if original.is_empty() {
            return Err(Halt::Failed(
                "NO_INSTANCES".into(),
                "The deployment group has no Auto Scaling group to copy for the replacement environment.".into(),
            ));
        }
        let blue = self.asg_instances(&original).await?;
        let green_asg = self.copy_asg(id, &original[0]).await?;
        let green = self.asg_instances(std::slice::from_ref(&green_asg)).await?;
        self.update(id, |d| {
            d.green_asg = Some(green_asg.clone());
            for i in &green {
                d.targets.insert(i.clone(), Target::new(i, "Green"));
                d.target_order.push(i.clone());
            }
            for i in &blue {
                d.targets.insert(i.clone(), Target::new(i, "Blue"));
                d.target_order.push(i.clone());
            }
        });
        self.pause(control, self.timings.provisioning).await?;

        // Step 2: installing the revision on the replacement instances, in
        // batches and with the failures the config's minimum healthy hosts
        // allow (see health.rs for the rules and their sources).
        self.message(id, "Installing application on replacement instances");
        let min = self.with_store(|s| {
            s.deployments
                .get(id)
                .map(|d| d.min_healthy)
                .unwrap_or(MinimumHealthy::MostConcurrency)
        });
        let fleet = green.len();
        let mut failed = 0;
        let mut tried = 0;
        let mut installed = Vec::new();
        for chunk in green.chunks(min.batch(fleet)) {
            let installs = chunk.iter().map(|i| self.install(id, i, control));
            for (instance, r) in chunk.iter().zip(futures_join_all(installs).await) {
                match r {
                    Ok(()) => installed.push(instance.clone()),
                    Err(Halt::Failed(..)) => failed += 1,
                    Err(other) => return Err(other),
                }
            }
            tried += chunk.len();
            if failed > 0 && !min.can_still_succeed(fleet, failed, fleet - tried) {
                return Err(health_constraints());
            }
        }
        if !min.succeeded(fleet, installed.len()) {
            return Err(health_constraints());
        }

        // The Ready gate: wait for ContinueDeployment(READY_WAIT).
        let ready = bg.get("deploymentReadyOption");
        let action = ready
            .and_then(|r| r.get("actionOnTimeout"))
            .and_then(Value::as_str)
            .unwrap_or("CONTINUE_DEPLOYMENT");
        if action == "STOP_DEPLOYMENT" {
            let minutes = ready
                .and_then(|r| r.get("waitTimeInMinutes"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            self.update(id, |d| {
                d.status = DeploymentStatus::Ready;
                for t in d.targets.values_mut() {
                    if t.label == "Green" && t.status != "Failed" {
                        t.status = "Ready";
                        t.last_updated = now_secs();
                    }
                }
            });
            self.emit(id, "READY").await;
            self.wait_ready(control, Duration::from_secs(minutes * 60))
                .await?;
            self.update(id, |d| {
                d.status = DeploymentStatus::InProgress;
                for t in d.targets.values_mut() {
                    if t.label == "Green" && t.status == "Ready" {
                        t.status = "InProgress";
                    }
                }
            });
        }

        // Step 3: rerouting traffic to the replacement instances, batched as
        // the install was; an instance whose AllowTraffic fails counts as a
        // failed instance. A failure part-way leaves the load balancer as it
        // is (the green instances registered so far stay registered, blue is
        // still registered): the rollback puts it back.
        self.message(id, "Rerouting traffic to replacement instances");
        let tgs = self.target_group_arns(id).await?;
        let mut rerouted = Vec::new();
        let mut tried = fleet - installed.len();
        for chunk in installed.chunks(min.batch(fleet)) {
            let allows = chunk
                .iter()
                .map(|i| self.allow_traffic(id, i, &tgs, control));
            for (instance, r) in chunk.iter().zip(futures_join_all(allows).await) {
                match r {
                    Ok(()) => rerouted.push(instance.clone()),
                    Err(Halt::Failed(..)) => failed += 1,
                    Err(other) => return Err(other),
                }
            }
            tried += chunk.len();
            if failed > 0 && !min.can_still_succeed(fleet, failed, fleet - tried) {
                return Err(health_constraints());
            }
        }
        if !min.succeeded(fleet, rerouted.len()) {
            return Err(health_constraints());
        }
        self.update(id, |d| d.traffic_moved = true);
        // BlockTraffic on the original instances, in batches of the same rule.
        for chunk in blue.chunks(min.batch(blue.len())) {
            let blocks = chunk
                .iter()
                .map(|i| self.block_traffic(id, i, &tgs, control));
            for r in futures_join_all(blocks).await {
                r?;
            }
        }
        // The group now points at the replacement Auto Scaling group.
        self.with_store(|s| {
            let key = match s.deployments.get(id) {
                Some(d) => (d.application.clone(), d.group.clone()),
                None => return,
            };
            if let Some(g) = s.groups.get_mut(&key) {
                g.settings
                    .insert("autoScalingGroups".into(), json!([green_asg.clone()]));
            }
        });
        for instance in &rerouted {
            self.set_target_status(id, instance, "Succeeded");
        }

        // Step 4: terminating the original instances after the wait.
        let terminate = bg.get("terminateBlueInstancesOnDeploymentSuccess");
        let terminate_action = terminate
            .and_then(|t| t.get("action"))
            .and_then(Value::as_str)
            .unwrap_or("TERMINATE");
        if terminate_action == "TERMINATE" {
            let minutes = terminate
                .and_then(|t| t.get("terminationWaitTimeInMinutes"))
                .and_then(Value::as_u64)
                .unwrap_or(5);
            self.message(id, "Terminating original instances");
            self.update(id, |d| d.termination_wait_started = true);
            self.wait_termination(control, Duration::from_secs(minutes * 60))
                .await?;
            for asg in &original {
                let _ = self
                    .autoscaling
                    .delete_auto_scaling_group()
                    .auto_scaling_group_name(asg)
                    .force_delete(true)
                    .send()
                    .await;
            }
            for instance in &blue {
                self.deps.fleet.terminate(instance).await;
            }
        }
        for instance in &blue {
            self.set_target_status(id, instance, "Succeeded");
        }
        Ok(())
    }

    /// Lifecycle events ApplicationStop..ValidateService on one green instance.
    async fn install(&self, id: &str, instance: &str, control: &Arc<Control>) -> Step<()> {
        self.set_target_status(id, instance, "InProgress");
        let ignore_stop_failures = self.with_store(|s| {
            s.deployments
                .get(id)
                .map(|d| d.ignore_application_stop_failures)
                .unwrap_or(false)
        });
        for event in [
            "ApplicationStop",
            "DownloadBundle",
            "BeforeInstall",
            "Install",
            "AfterInstall",
            "ApplicationStart",
            "ValidateService",
        ] {
            self.check_stop(control)?;
            self.event_started(id, instance, event);
            let outcome = match event {
                "DownloadBundle" => {
                    let r = self.download_bundle(id, instance).await;
                    self.deps.scale.sleep(self.timings.download_bundle).await;
                    r
                }
                _ => {
                    if event == "Install" {
                        self.deps.scale.sleep(self.timings.install).await;
                    }
                    let hook = self
                        .deps
                        .fleet
                        .run_lifecycle_event(instance, id, event)
                        .await;
                    if hook.succeeded || (event == "ApplicationStop" && ignore_stop_failures) {
                        Ok(())
                    } else {
                        Err(Diagnostics {
                            error_code: hook
                                .error_code
                                .unwrap_or_else(|| "ScriptFailed".to_string()),
                            script_name: hook.script_name,
                            message: hook.message,
                            log_tail: hook.log_tail,
                        })
                    }
                }
            };
            self.event_finished(id, instance, event, outcome.clone().err());
            if outcome.is_err() {
                self.set_target_status(id, instance, "Failed");
                return Err(Halt::Failed(
                    "HEALTH_CONSTRAINTS".into(),
                    HEALTH_CONSTRAINTS.into(),
                ));
            }
        }
        Ok(())
    }

    async fn download_bundle(&self, id: &str, instance: &str) -> Result<(), Diagnostics> {
        let revision = self.with_store(|s| s.deployments.get(id).map(|d| d.revision.clone()));
        let s3 = revision
            .as_ref()
            .and_then(|r| r.get("s3Location"))
            .cloned()
            .unwrap_or(Value::Null);
        let field = |n: &str| s3.get(n).and_then(Value::as_str).map(str::to_string);
        let fail = |message: String| Diagnostics {
            error_code: "UnknownError".into(),
            script_name: None,
            message,
            log_tail: String::new(),
        };
        if field("bundleType").as_deref() != Some("zip") {
            return Err(fail(
                "greenlight's local cloud unpacks zip bundles only".into(),
            ));
        }
        let (bucket, key) = match (field("bucket"), field("key")) {
            (Some(b), Some(k)) => (b, k),
            _ => return Err(fail("The revision has no S3 bucket or key.".into())),
        };
        let mut get = self.s3.get_object().bucket(&bucket).key(&key);
        if let Some(v) = field("version") {
            get = get.version_id(v);
        }
        let object = get.send().await.map_err(|e| {
            fail(format!(
                "Failed to download bundle s3://{bucket}/{key}: {}",
                greenlight_aws::describe_error(&e)
            ))
        })?;
        if let Some(expected) = field("eTag") {
            let actual = object.e_tag().unwrap_or_default().trim_matches('"');
            if actual != expected.trim_matches('"') {
                return Err(fail(format!(
                    "The bundle's ETag {actual} does not match the revision's eTag {expected}."
                )));
            }
        }
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| fail(format!("Failed to read bundle body: {e}")))?
            .into_bytes()
            .to_vec();
        self.deps
            .fleet
            .download_bundle(instance, id, bytes)
            .await
            .map_err(fail)
    }

    async fn allow_traffic(
        &self,
        id: &str,
        instance: &str,
        tgs: &[String],
        control: &Arc<Control>,
    ) -> Step<()> {
        self.check_stop(control)?;
        self.hook_event(id, instance, "BeforeAllowTraffic").await?;
        self.check_stop(control)?;
        self.event_started(id, instance, "AllowTraffic");
        self.update(id, |d| {
            let green = d.targets.get(instance).is_some_and(|t| t.label == "Green");
            if green && !d.green_registered.iter().any(|i| i == instance) {
                d.green_registered.push(instance.to_string());
            }
        });
        for tg in tgs {
            self.register(tg, &[instance.to_string()]).await?;
        }
        let deadline =
            tokio::time::Instant::now() + self.deps.scale.real(self.timings.allow_traffic_timeout);
        loop {
            let healthy = tgs.iter().all(|tg| {
                self.deps.lb.target_health(tg).iter().any(|t| {
                    t.instance_id == instance
                        && matches!(t.state, crate::load_balancer::TargetState::Healthy)
                })
            });
            if healthy {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                let diag = Diagnostics {
                    error_code: "UnknownError".into(),
                    script_name: None,
                    message: format!("The instance {instance} did not pass the target group's health checks in time."),
                    log_tail: String::new(),
                };
                self.event_finished(id, instance, "AllowTraffic", Some(diag));
                self.set_target_status(id, instance, "Failed");
                return Err(Halt::Failed(
                    "HEALTH_CONSTRAINTS".into(),
                    HEALTH_CONSTRAINTS.into(),
                ));
            }
            if let Some(rollback) = control.stop_requested() {
                return Err(Halt::Stopped(rollback));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.event_finished(id, instance, "AllowTraffic", None);
        self.hook_event(id, instance, "AfterAllowTraffic").await
    }

    async fn block_traffic(
        &self,
        id: &str,
        instance: &str,
        tgs: &[String],
        control: &Arc<Control>,
    ) -> Step<()> {
        self.set_target_status(id, instance, "InProgress");
        self.check_stop(control)?;
        self.hook_event(id, instance, "BeforeBlockTraffic").await?;
        self.event_started(id, instance, "BlockTraffic");
        for tg in tgs {
            self.deregister(tg, &[instance.to_string()]).await?;
        }
        // Wait until the load balancer has drained it, within the lifecycle
        // event limit.
        let deadline =
            tokio::time::Instant::now() + self.deps.scale.real(self.timings.allow_traffic_timeout);
        loop {
            if tokio::time::Instant::now() >= deadline {
                let diag = Diagnostics {
                    error_code: "UnknownError".into(),
                    script_name: None,
                    message: format!("The instance {instance} was not deregistered from the target group in time."),
                    log_tail: String::new(),
                };
                self.event_finished(id, instance, "BlockTraffic", Some(diag));
                self.set_target_status(id, instance, "Failed");
                return Err(health_constraints());
            }
            let draining = tgs.iter().any(|tg| {
                self.deps.lb.target_health(tg).iter().any(|t| {
                    t.instance_id == instance
                        && !matches!(t.state, crate::load_balancer::TargetState::Unused)
                })
            });
            if !draining {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.event_finished(id, instance, "BlockTraffic", None);
        self.hook_event(id, instance, "AfterBlockTraffic").await
    }

    /// A lifecycle event that only runs the instance's appspec hook, if any.
    async fn hook_event(&self, id: &str, instance: &str, event: &str) -> Step<()> {
        self.event_started(id, instance, event);
        let hook = self
            .deps
            .fleet
            .run_lifecycle_event(instance, id, event)
            .await;
        if hook.succeeded {
            self.event_finished(id, instance, event, None);
            return Ok(());
        }
        self.event_finished(
            id,
            instance,
            event,
            Some(Diagnostics {
                error_code: hook.error_code.unwrap_or_else(|| "ScriptFailed".into()),
                script_name: hook.script_name,
                message: hook.message,
                log_tail: hook.log_tail,
            }),
        );
        self.set_target_status(id, instance, "Failed");
        Err(Halt::Failed(
            "HEALTH_CONSTRAINTS".into(),
            HEALTH_CONSTRAINTS.into(),
        ))
    }

    async fn copy_asg(&self, id: &str, original: &str) -> Step<String> {
        let group = self.with_store(|s| s.deployments.get(id).map(|d| d.group.clone()));
        let name = format!("CodeDeploy_{}_{id}", group.unwrap_or_default());
        let described = self
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(original)
            .send()
            .await
            .map_err(|e| provisioning_failed(original, &greenlight_aws::describe_error(&e)))?;
        let asg = described.auto_scaling_groups().first().ok_or_else(|| {
            provisioning_failed(original, "the Auto Scaling group does not exist")
        })?;
        let mut create = self
            .autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(&name)
            .min_size(asg.min_size().unwrap_or(0))
            .max_size(asg.max_size().unwrap_or(1))
            .desired_capacity(asg.desired_capacity().unwrap_or(1))
            .set_availability_zones(Some(asg.availability_zones().to_vec()))
            .set_vpc_zone_identifier(asg.vpc_zone_identifier().map(str::to_string))
            .set_launch_configuration_name(asg.launch_configuration_name().map(str::to_string));
        if let Some(lt) = asg.launch_template() {
            create = create.launch_template(
                aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                    .set_launch_template_id(lt.launch_template_id().map(str::to_string))
                    .set_launch_template_name(if lt.launch_template_id().is_some() {
                        None
                    } else {
                        lt.launch_template_name().map(str::to_string)
                    })
                    .set_version(lt.version().map(str::to_string))
                    .build(),
            );
        }
        create
            .send()
            .await
            .map_err(|e| provisioning_failed(&name, &greenlight_aws::describe_error(&e)))?;
        Ok(name)
    }

    async fn asg_instances(&self, names: &[String]) -> Step<Vec<String>> {
        let described = self
            .autoscaling
            .describe_auto_scaling_groups()
            .set_auto_scaling_group_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|e| {
                provisioning_failed(&names.join(","), &greenlight_aws::describe_error(&e))
            })?;
        Ok(described
            .auto_scaling_groups()
            .iter()
            .flat_map(|g| g.instances())
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect())
    }

    async fn target_group_arns(&self, id: &str) -> Step<Vec<String>> {
        let names: Vec<String> = self.with_store(|s| {
            s.deployments
                .get(id)
                .and_then(|d| d.group_settings.get("loadBalancerInfo").cloned())
                .and_then(|l| l.get("targetGroupInfoList").cloned())
                .and_then(|l| l.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        });
        if names.is_empty() {
            return Err(Halt::Failed(
                "MISSING_ELB_INFORMATION".into(),
                "The deployment group has no target group in loadBalancerInfo.".into(),
            ));
        }
        let described = self
            .elbv2
            .describe_target_groups()
            .set_names(Some(names.clone()))
            .send()
            .await
            .map_err(|e| {
                Halt::Failed(
                    "ELASTIC_LOAD_BALANCING_INVALID".into(),
                    format!(
                        "The target group(s) {} could not be read: {}",
                        names.join(", "),
                        greenlight_aws::describe_error(&e)
                    ),
                )
            })?;
        Ok(described
            .target_groups()
            .iter()
            .filter_map(|t| t.target_group_arn().map(str::to_string))
            .collect())
    }

    async fn register(&self, tg: &str, instances: &[String]) -> Step<()> {
        self.change_registration(tg, instances, true).await
    }

    async fn deregister(&self, tg: &str, instances: &[String]) -> Step<()> {
        self.change_registration(tg, instances, false).await
    }

    /// RegisterTargets / DeregisterTargets on the app port, through the front
    /// server so the emulated load balancer follows.
    async fn change_registration(
        &self,
        tg: &str,
        instances: &[String],
        register: bool,
    ) -> Step<()> {
        if instances.is_empty() {
            return Ok(());
        }
        let port = i32::from(self.deps.fleet.app_port());
        let targets: Vec<_> = instances
            .iter()
            .map(|i| {
                aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                    .id(i)
                    .port(port)
                    .build()
            })
            .collect();
        let (operation, result) = if register {
            let r = self
                .elbv2
                .register_targets()
                .target_group_arn(tg)
                .set_targets(Some(targets))
                .send()
                .await;
            (
                "RegisterTargets",
                r.map(|_| ())
                    .map_err(|e| greenlight_aws::describe_error(&e)),
            )
        } else {
            let r = self
                .elbv2
                .deregister_targets()
                .target_group_arn(tg)
                .set_targets(Some(targets))
                .send()
                .await;
            (
                "DeregisterTargets",
                r.map(|_| ())
                    .map_err(|e| greenlight_aws::describe_error(&e)),
            )
        };
        result.map_err(|e| {
            Halt::Failed(
                "ELASTIC_LOAD_BALANCING_INVALID".into(),
                format!("{operation} on {tg} failed: {e}"),
            )
        })
    }

    fn check_stop(&self, control: &Arc<Control>) -> Step<()> {
        match control.stop_requested() {
            Some(rollback) => Err(Halt::Stopped(rollback)),
            None => Ok(()),
        }
    }

    /// Sleep a simulated duration, waking early for StopDeployment.
    async fn pause(&self, control: &Arc<Control>, simulated: Duration) -> Step<()> {
        let sleep = tokio::time::sleep(self.deps.scale.real(simulated));
        tokio::pin!(sleep);
        loop {
            self.check_stop(control)?;
            tokio::select! {
                _ = &mut sleep => return self.check_stop(control),
                _ = control.notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    async fn wait_ready(&self, control: &Arc<Control>, wait: Duration) -> Step<()> {
        let deadline = tokio::time::Instant::now() + self.deps.scale.real(wait);
        loop {
            self.check_stop(control)?;
            if control.continue_ready.load(Ordering::SeqCst) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Halt::ReadyTimeout);
            }
            tokio::select! {
                _ = control.notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    /// The wait before terminating the original instances: ends at the
    /// deadline, at `ContinueDeployment(TERMINATION_WAIT)`, or at
    /// `StopDeployment`, which halts the deployment (with its rollback when
    /// asked) while the original instances still exist. Sources: the
    /// ContinueDeployment API reference (`TERMINATION_WAIT` ends the wait
    /// and terminates the originals) and the CodeDeploy console, which offers
    /// "Stop and roll back deployment" during this wait (user guide, "Stop a
    /// deployment with CodeDeploy": a stopped deployment with rollback
    /// redeploys the last good revision; for blue/green that reroutes traffic
    /// to the original instances). AWS does not document the API answer in
    /// this phase; we take the reading that lets a stop take effect (the
    /// harsher one for a runbook: the rollback then runs and can fail).
    async fn wait_termination(&self, control: &Arc<Control>, wait: Duration) -> Step<()> {
        let deadline = tokio::time::Instant::now() + self.deps.scale.real(wait);
        while tokio::time::Instant::now() < deadline
            && !control.continue_termination.load(Ordering::SeqCst)
        {
            self.check_stop(control)?;
            tokio::select! {
                _ = control.notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        self.check_stop(control)
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Deployment)) {
        self.with_store(|s| {
            if let Some(d) = s.deployments.get_mut(id) {
                f(d);
            }
        });
    }

    fn message(&self, id: &str, text: &str) {
        self.update(id, |d| d.status_messages.push(text.to_string()));
    }

    fn set_target_status(&self, id: &str, instance: &str, status: &'static str) {
        self.update(id, |d| {
            if let Some(t) = d.targets.get_mut(instance) {
                t.status = status;
                t.last_updated = now_secs();
            }
        });
    }

    fn event_started(&self, id: &str, instance: &str, event: &str) {
        self.update(id, |d| {
            if let Some(t) = d.targets.get_mut(instance) {
                if t.status == "Pending" {
                    t.status = "InProgress";
                }
                t.last_updated = now_secs();
                if let Some(e) = t.event_mut(event) {
                    e.status = "InProgress";
                    e.start = Some(now_secs());
                }
            }
        });
    }

    fn event_finished(&self, id: &str, instance: &str, event: &str, failure: Option<Diagnostics>) {
        self.update(id, |d| {
            if let Some(t) = d.targets.get_mut(instance) {
                t.last_updated = now_secs();
                if let Some(e) = t.event_mut(event) {
                    e.end = Some(now_secs());
                    match failure {
                        None => {
                            e.status = "Succeeded";
                            e.diagnostics = Some(Diagnostics {
                                error_code: "Success".into(),
                                script_name: None,
                                message: "Succeeded".into(),
                                log_tail: String::new(),
                            });
                        }
                        Some(diag) => {
                            e.status = "Failed";
                            e.diagnostics = Some(diag);
                        }
                    }
                }
            }
        });
    }

    /// "CodeDeploy Deployment State-change Notification" on the default bus,
    /// shaped as AWS documents it. Best effort, as on AWS.
    async fn emit(&self, id: &str, state: &str) {
        let (app, group) = match self.with_store(|s| {
            s.deployments
                .get(id)
                .map(|d| (d.application.clone(), d.group.clone()))
        }) {
            Some(x) => x,
            None => return,
        };
        // EventBridge delivers CodeDeploy's events best effort (EventBridge
        // events reference, "AWS CodeDeploy events"): a `lose_event` fault
        // loses this one.
        if self.deps.faults.take_lost_event(&app, &group) {
            tracing::info!(
                deployment = id,
                state,
                "CodeDeploy state-change event lost (fault lose_event)"
            );
            return;
        }
        let (region, account) = (&self.deps.region, &self.deps.account_id);
        let group_id = self.with_store(|s| {
            s.groups
                .get(&(app.clone(), group.clone()))
                .map(|g| g.id.clone())
                .unwrap_or_default()
        });
        let detail = json!({
            "region": region,
            "deploymentId": id,
            "instanceGroupId": group_id,
            "deploymentGroup": group,
            "state": state,
            "application": app,
        });
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source("aws.codedeploy")
            .detail_type("CodeDeploy Deployment State-change Notification")
            .detail(detail.to_string())
            .resources(format!(
                "arn:aws:codedeploy:{region}:{account}:application:{app}"
            ))
            .resources(format!(
                "arn:aws:codedeploy:{region}:{account}:deploymentgroup:{app}/{group}"
            ))
            .build();
        if let Err(e) = self.events.put_events().entries(entry).send().await {
            tracing::warn!(deployment = id, state, error = %greenlight_aws::describe_error(&e), "could not emit CodeDeploy state-change event");
        }
    }
}

fn health_constraints() -> Halt {
    Halt::Failed("HEALTH_CONSTRAINTS".into(), HEALTH_CONSTRAINTS.into())
}

fn provisioning_failed(asg: &str, why: &str) -> Halt {
    Halt::Failed(
        "AUTO_SCALING_CONFIGURATION".into(),
        format!("The replacement environment could not be provisioned from Auto Scaling group {asg}: {why}"),
    )
}

fn rollback_on(config: &Value, event: &str) -> bool {
    config
        .get("enabled")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        && config
            .get("events")
            .and_then(Value::as_array)
            .is_some_and(|e| e.iter().any(|x| x.as_str() == Some(event)))
}

/// Runs futures concurrently on this task and collects their outputs in order.
async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
