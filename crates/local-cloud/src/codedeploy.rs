//! A faithful CodeDeploy for EC2 blue/green deployment groups, on the wire
//! (awsJson1_1, `X-Amz-Target: CodeDeploy_20141006.<Op>`) and in behaviour:
//! a deployment really runs — a green Auto Scaling group copied in moto, the
//! revision's bundle downloaded from S3 and installed on each green instance
//! (its appspec hooks run, its app server started on the instance's loopback
//! address), the `Ready` wait of `deploymentReadyOption`, traffic rerouted by
//! registering green and deregistering blue in the target group (the emulated
//! ALB's real health checks and draining decide how long that takes), blue
//! terminated after the termination wait, with the config's minimum healthy
//! hosts deciding a deployment with failed instances (`health.rs`), and
//! automatic rollback as a deployment that runs and can fail (`runner.rs`).
//!
//! What it does not emulate: in-place deployments, Lambda/ECS compute
//! platforms, alarms, triggers, on-premises instances, GitHub revisions.

mod api;
mod health;
mod runner;
mod store;

pub use store::{DeploymentStatus, LifecycleTimings};

use crate::clock::TimeScale;
use crate::fleet::Fleet;
use crate::load_balancer::LoadBalancer;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// What the emulator needs from the rest of the local cloud.
pub struct CodeDeployDeps {
    pub fleet: Arc<Fleet>,
    pub lb: Arc<LoadBalancer>,
    pub scale: TimeScale,
    /// SDK configuration pointed at the front server (so ELBv2 writes keep the
    /// emulated load balancer in step and EC2 answers carry loopback addresses).
    pub sdk: aws_config::SdkConfig,
    pub account_id: String,
    pub region: String,
    /// The fault registry: `fail_rollback` ([`crate::faults::Faults::take_rollback_failure`]).
    pub faults: Arc<crate::faults::Faults>,
}

/// The CodeDeploy service. Cheap to share (`Arc`).
pub struct CodeDeploy {
    deps: CodeDeployDeps,
    timings: LifecycleTimings,
    store: Mutex<store::Store>,
    controls: Mutex<HashMap<String, Arc<Control>>>,
    /// (application, group) whose next rollback deployment must fail.
    forced_rollback_failures: Mutex<std::collections::HashSet<(String, String)>>,
    counter: AtomicU64,
    autoscaling: aws_sdk_autoscaling::Client,
    elbv2: aws_sdk_elasticloadbalancingv2::Client,
    s3: aws_sdk_s3::Client,
    events: aws_sdk_eventbridge::Client,
}

/// Requests that reach a running deployment from the API.
#[derive(Default)]
struct Control {
    notify: Notify,
    continue_ready: AtomicBool,
    continue_termination: AtomicBool,
    /// `Some(auto_rollback)` once StopDeployment was called.
    stop: Mutex<Option<bool>>,
}

impl Control {
    fn stop_requested(&self) -> Option<bool> {
        *self.stop.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl CodeDeploy {
    pub fn new(deps: CodeDeployDeps) -> Arc<Self> {
        Self::with_timings(deps, LifecycleTimings::default())
    }

    pub fn with_timings(deps: CodeDeployDeps, timings: LifecycleTimings) -> Arc<Self> {
        let s3_config = aws_sdk_s3::config::Builder::from(&deps.sdk)
            .force_path_style(true)
            .build();
        Arc::new(Self {
            autoscaling: aws_sdk_autoscaling::Client::new(&deps.sdk),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(&deps.sdk),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            events: aws_sdk_eventbridge::Client::new(&deps.sdk),
            deps,
            timings,
            store: Mutex::new(store::Store::default()),
            controls: Mutex::new(HashMap::new()),
            forced_rollback_failures: Mutex::new(Default::default()),
            counter: AtomicU64::new(1),
        })
    }

    /// Answers one API call: `operation` is the part of `X-Amz-Target` after
    /// the dot, `body` the JSON request. Returns the HTTP status and JSON body.
    pub async fn handle(self: &Arc<Self>, operation: &str, body: &[u8]) -> (u16, Vec<u8>) {
        api::handle(self, operation, body).await
    }

    /// Makes the next rollback deployment of this deployment group fail (once).
    pub fn fail_next_rollback(&self, application: &str, group: &str) {
        self.forced_rollback_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((application.to_string(), group.to_string()));
    }

    /// Whether a rollback of this group was asked to fail; consumes the request.
    fn take_forced_rollback_failure(&self, application: &str, group: &str) -> bool {
        self.forced_rollback_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(application.to_string(), group.to_string()))
    }

    /// Status of a deployment, for the local cloud's own progress display.
    pub fn deployment_status(&self, deployment_id: &str) -> Option<DeploymentStatus> {
        self.with_store(|s| s.deployments.get(deployment_id).map(|d| d.status))
    }

    fn with_store<T>(&self, f: impl FnOnce(&mut store::Store) -> T) -> T {
        let mut guard = self.store.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    fn control(&self, deployment_id: &str) -> Arc<Control> {
        let mut controls = self.controls.lock().unwrap_or_else(|e| e.into_inner());
        controls
            .entry(deployment_id.to_string())
            .or_insert_with(|| Arc::new(Control::default()))
            .clone()
    }

    /// CodeDeploy ids look like `d-` + 9 upper-case alphanumerics.
    fn next_id(&self, prefix: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // Mix the counter with the start time so two local clouds differ.
        let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (store::now_secs() as u64);
        let mut id = String::from(prefix);
        for _ in 0..9 {
            id.push(ALPHABET[(x % ALPHABET.len() as u64) as usize] as char);
            x /= ALPHABET.len() as u64;
            x ^= n.rotate_left(17);
        }
        id
    }

    fn uuid_like(&self) -> String {
        let a = self.counter.fetch_add(1, Ordering::Relaxed);
        let t = store::now_secs().to_bits();
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (t >> 32) as u32,
            (a & 0xffff) as u16,
            (t & 0xfff) as u16,
            (a >> 16) & 0xfff,
            t & 0xffff_ffff_ffff
        )
    }
}

#[cfg(test)]
mod tests;
