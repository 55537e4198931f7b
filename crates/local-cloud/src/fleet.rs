//! Emulated EC2 instances: each one a real local HTTP server on its own
//! loopback address (127.0.0.N, N ≥ 2, stable per instance id), all on the same
//! app port, like a real fleet behind an ALB.
//!
//! What an instance does mirrors the CodeDeploy agent on EC2:
//! - `download_bundle` unpacks the revision under
//!   `<work_dir>/<instance>/<deployment>/` (entries that would escape it are
//!   refused) and reads `appspec.yml` (required, `version: 0.0`, `os: linux`).
//! - `run_lifecycle_event` runs the appspec's scripts for the event with
//!   `bash <script>` in the bundle directory, environment `LIFECYCLE_EVENT`,
//!   `DEPLOYMENT_ID`, `APPLICATION_NAME`, `DEPLOYMENT_GROUP_NAME`,
//!   `DEPLOYMENT_GROUP_ID` (when known, see [`Fleet::set_deployment_context`])
//!   and `GREENLIGHT_TIME_SCALE`; each script's appspec `timeout` (default
//!   3600 s) is scaled, and on expiry its whole process group is killed
//!   (`ScriptTimedOut`). A non-zero exit is `ScriptFailed`, a missing script
//!   `ScriptMissing`. The result carries CodeDeploy's diagnostics: script name,
//!   message, and the tail of the output (`[stdout]`/`[stderr]` lines).
//! - `ApplicationStop`, `BeforeBlockTraffic` and `AfterBlockTraffic` use the
//!   scripts of the revision currently installed (as CodeDeploy uses the last
//!   successful revision's appspec for them); `ApplicationStop` then stops the
//!   app server. `Install` makes the downloaded revision current.
//!   `ApplicationStart` runs its scripts, then starts the app server.
//! - The app server serves the current revision's `app.json`: `GET /health`,
//!   `GET /version`, `GET /`. Until a revision is started the address refuses
//!   connections, like a fresh instance.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;

use crate::clock::TimeScale;
use crate::moto::PortReservation;
use crate::revisions::AppConfig;

/// The outcome of one lifecycle event on one instance, shaped like CodeDeploy's
/// `Diagnostics` (errorCode, scriptName, message, logTail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookResult {
    pub succeeded: bool,
    pub script_name: Option<String>,
    /// "ScriptFailed" | "ScriptTimedOut" | "ScriptMissing" | "UnknownError"; None on success.
    pub error_code: Option<String>,
    pub message: String,
    pub log_tail: String,
}

impl HookResult {
    fn success(script_name: Option<String>, message: &str, log_tail: String) -> Self {
        Self {
            succeeded: true,
            script_name,
            error_code: None,
            message: message.to_string(),
            log_tail,
        }
    }

    fn failure(code: &str, script_name: Option<String>, message: String, log_tail: String) -> Self {
        Self {
            succeeded: false,
            script_name,
            error_code: Some(code.to_string()),
            message,
            log_tail,
        }
    }
}

/// CodeDeploy keeps the last 4 KB of a script's log as the diagnostics' logTail.
const LOG_TAIL_MAX: usize = 4096;
/// Refuse bundles that unpack to more than this (zip bombs).
const MAX_UNPACKED_BYTES: u64 = 256 * 1024 * 1024;
/// CodeDeploy's default per-script timeout when the appspec gives none.
const DEFAULT_SCRIPT_TIMEOUT_SECS: u64 = 3600;

/// `appspec.yml` (EC2/on-premises): the parts the agent acts on.
#[derive(Debug, Clone, Deserialize)]
pub struct AppSpec {
    pub version: serde_yaml::Value,
    pub os: String,
    #[serde(default)]
    pub files: Vec<AppSpecFile>,
    #[serde(default)]
    pub hooks: BTreeMap<String, Vec<HookScript>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AppSpecFile {
    pub source: String,
    pub destination: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HookScript {
    pub location: String,
    #[serde(default)]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub runas: Option<String>,
}

impl AppSpec {
    /// Parses and validates an appspec the way the agent does (version 0.0, os linux).
    pub fn parse(text: &str) -> Result<Self, String> {
        let spec: AppSpec = serde_yaml::from_str(text).map_err(|e| {
            format!("The AppSpec file is not valid YAML or misses a required field: {e}")
        })?;
        let version_ok = match &spec.version {
            serde_yaml::Value::Number(n) => n.as_f64() == Some(0.0),
            serde_yaml::Value::String(s) => s.trim() == "0.0",
            _ => false,
        };
        if !version_ok {
            return Err(format!(
                "The deployment failed because an invalid version value ({}) was entered in the application specification file. Make sure your AppSpec file specifies \"0.0\" as the version, and then try again.",
                yaml_scalar(&spec.version)
            ));
        }
        if spec.os.trim() != "linux" {
            return Err(format!(
                "The deployment failed because the operating system specified in the AppSpec file ({}) does not match the instance's operating system (linux).",
                spec.os
            ));
        }
        Ok(spec)
    }
}

fn yaml_scalar(v: &serde_yaml::Value) -> String {
    serde_yaml::to_string(v)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// One unpacked revision on one instance.
#[derive(Debug, Clone)]
struct Bundle {
    deployment_id: String,
    dir: PathBuf,
    appspec: AppSpec,
    app: AppConfig,
}

struct AppServer {
    version: String,
    task: Option<JoinHandle<()>>,
    /// A second descriptor of the server's listening socket, set once it is
    /// bound: stopping shuts the socket down through it (see `stop_listening`).
    listening: ListeningSocket,
}

/// Where a server's task leaves a duplicate of its listening socket.
type ListeningSocket = Arc<Mutex<Option<OwnedFd>>>;

impl Drop for AppServer {
    /// A dropped fleet (or instance) leaves nothing listening.
    fn drop(&mut self) {
        if let Some(fd) = lock(&self.listening).take() {
            stop_listening(&fd);
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Stops a listening socket for every descriptor that refers to it.
///
/// Closing our descriptor is not enough: a process another thread is forking
/// at that moment (a lifecycle script, moto) holds a copy of every descriptor
/// until its `exec` closes them (CLOEXEC), and meanwhile the socket keeps
/// accepting connections nobody answers. On Linux `shutdown` of a listening
/// socket moves it to CLOSE whoever holds it, so the next connect is refused
/// at once, as on an instance whose server stopped.
fn stop_listening(fd: &OwnedFd) {
    // SAFETY: `fd` is an open socket descriptor owned for the call's duration;
    // shutdown(2) touches no memory of ours.
    let _ = unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR) };
}

/// A duplicate (CLOEXEC) of `listener`'s descriptor, for `stop_listening`.
fn listening_copy(listener: &TcpListener) -> Option<OwnedFd> {
    listener.as_fd().try_clone_to_owned().ok()
}

#[derive(Default)]
struct InstanceState {
    bundles: HashMap<String, Bundle>,
    current: Option<Bundle>,
    server: Option<AppServer>,
}

#[derive(Default)]
struct Instance {
    /// Serialises lifecycle work on one instance (the agent runs one event at a time).
    ops: tokio::sync::Mutex<()>,
    state: Mutex<InstanceState>,
}

#[derive(Debug, Clone, Default)]
struct DeploymentContext {
    application_name: Option<String>,
    deployment_group_name: Option<String>,
    deployment_group_id: Option<String>,
}

#[derive(Default)]
struct Addresses {
    by_id: HashMap<String, Ipv4Addr>,
    next: u32,
}

pub struct Fleet {
    app_port: u16,
    /// Holds `app_port` on 127.0.0.1 for the fleet's life (see [`PortReservation`]).
    _app_port_reservation: Option<PortReservation>,
    scale: TimeScale,
    work_dir: PathBuf,
    addresses: Mutex<Addresses>,
    instances: Mutex<HashMap<String, Arc<Instance>>>,
    contexts: Mutex<HashMap<String, DeploymentContext>>,
    /// Instances killed by a `kill_instance` fault (see [`Fleet::kill`]).
    dead: Mutex<HashSet<String>>,
    /// Instances [`Fleet::terminate`]d: unlike an instance that never ran a
    /// revision, their lifecycle events fail.
    terminated: Mutex<HashSet<String>>,
    /// Instances whose health endpoint hangs (`hang_health`), read by their app servers.
    hung_health: Arc<Mutex<HashSet<String>>>,
}

/// How long CodeDeploy waits for a lifecycle event the agent of a dead
/// instance never reports, in AWS seconds: one hour. CodeDeploy user guide,
/// "Troubleshoot Amazon EC2 Auto Scaling issues": "CodeDeploy has a one-hour
/// timeout for the CodeDeploy agent to respond to pending deployments";
/// "Integrating CodeDeploy with Amazon EC2 Auto Scaling": when an instance
/// shuts down, "the other deployments that were running can take an hour to
/// time out"; "Quotas": a lifecycle event may run up to 3600 s. An AppSpec
/// hook's `timeout` does not shorten it: the agent enforces that timeout,
/// and a dead instance's agent enforces nothing (AWS does not say the
/// service applies it; the harsher reading, used here).
pub const SILENT_AGENT_TIMEOUT: Duration = Duration::from_secs(3600);

/// Lock a std mutex, recovering from poisoning (a panicked holder left plain data).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A path component safe to use as a directory name.
fn safe_component(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '.') {
        "_".to_string()
    } else {
        cleaned
    }
}

/// The loopback address of allocation index `n` (2, 3, ... → 127.0.0.2, 127.0.0.3, ...).
fn loopback(n: u32) -> Ipv4Addr {
    let [_, a, b, c] = n.to_be_bytes();
    Ipv4Addr::new(127, a, b, c)
}

impl Fleet {
    /// A fleet whose instances listen on a port reserved for it: the way to
    /// build one when other fleets may run at the same time.
    pub fn on_reserved_port(scale: TimeScale, work_dir: PathBuf) -> std::io::Result<Arc<Self>> {
        let reservation = PortReservation::new()?;
        Ok(Self::build(
            reservation.port(),
            Some(reservation),
            scale,
            work_dir,
        ))
    }

    /// A fleet on a port the caller owns.
    pub fn new(app_port: u16, scale: TimeScale, work_dir: PathBuf) -> Arc<Self> {
        Self::build(app_port, None, scale, work_dir)
    }

    fn build(
        app_port: u16,
        reservation: Option<PortReservation>,
        scale: TimeScale,
        work_dir: PathBuf,
    ) -> Arc<Self> {
        Arc::new(Self {
            app_port,
            _app_port_reservation: reservation,
            scale,
            work_dir,
            addresses: Mutex::new(Addresses {
                by_id: HashMap::new(),
                next: 2,
            }),
            instances: Mutex::new(HashMap::new()),
            contexts: Mutex::new(HashMap::new()),
            terminated: Mutex::new(HashSet::new()),
            dead: Mutex::new(HashSet::new()),
            hung_health: Arc::new(Mutex::new(HashSet::new())),
        })
    }

    /// `kill_instance`: the instance dies as an EC2 instance that lost power
    /// would look from outside: its server stops (its address refuses
    /// connections: the load balancer's health checks fail, requests routed
    /// to it fail), and its CodeDeploy agent stops reporting: a lifecycle
    /// event on it (running or later) does not complete; it fails after
    /// [`SILENT_AGENT_TIMEOUT`] (scaled). False when the fleet does not know
    /// the instance. A dead instance stays dead (terminate it to forget it).
    pub async fn kill(&self, instance_id: &str) -> bool {
        let Some(instance) = self.existing(instance_id) else {
            return false;
        };
        lock(&self.dead).insert(instance_id.to_string());
        // Not under `ops`: a lifecycle event may be running on it right now.
        stop_server(&instance).await;
        tracing::info!(instance = instance_id, "instance killed (fault)");
        true
    }

    pub fn is_dead(&self, instance_id: &str) -> bool {
        lock(&self.dead).contains(instance_id)
    }

    /// `hang_health`: the instance's `GET /health` never answers (the load
    /// balancer's health checks time out) while `hang` is true. False when
    /// the fleet does not know the instance.
    pub fn set_health_hang(&self, instance_id: &str, hang: bool) -> bool {
        if self.existing(instance_id).is_none() && hang {
            return false;
        }
        let mut hung = lock(&self.hung_health);
        if hang {
            hung.insert(instance_id.to_string());
        } else {
            hung.remove(instance_id);
        }
        true
    }

    /// What the agent of a dead instance "reports": nothing, until the
    /// lifecycle event times out.
    async fn silent_agent(&self, instance_id: &str, event: &str) -> HookResult {
        self.scale.sleep(SILENT_AGENT_TIMEOUT).await;
        HookResult::failure(
            "UnknownError",
            None,
            format!(
                "The CodeDeploy agent on {instance_id} did not report lifecycle event {event} within {} seconds: the instance is not responding.",
                SILENT_AGENT_TIMEOUT.as_secs()
            ),
            String::new(),
        )
    }

    pub fn app_port(&self) -> u16 {
        self.app_port
    }

    pub fn scale(&self) -> TimeScale {
        self.scale
    }

    /// The instance's loopback address, allocated on first use and stable
    /// for the fleet's life (even after terminate, like a private IP in a log).
    pub fn address_of(&self, instance_id: &str) -> Ipv4Addr {
        let mut a = lock(&self.addresses);
        if let Some(ip) = a.by_id.get(instance_id) {
            return *ip;
        }
        // Skip .0 and .255 host bytes: legal on lo, but confusing to read.
        while matches!(a.next & 0xff, 0 | 255) {
            a.next += 1;
        }
        let ip = loopback(a.next);
        a.next += 1;
        a.by_id.insert(instance_id.to_string(), ip);
        ip
    }

    pub fn known_address(&self, instance_id: &str) -> Option<Ipv4Addr> {
        lock(&self.addresses).by_id.get(instance_id).copied()
    }

    /// The instance id that owns a loopback address, if any.
    pub fn instance_at(&self, ip: Ipv4Addr) -> Option<String> {
        lock(&self.addresses)
            .by_id
            .iter()
            .find(|(_, a)| **a == ip)
            .map(|(id, _)| id.clone())
    }

    /// `address_of(instance):app_port`.
    pub fn socket_of(&self, instance_id: &str) -> SocketAddr {
        SocketAddr::from((self.address_of(instance_id), self.app_port))
    }

    /// Instances the fleet currently knows (downloaded or launched, not terminated).
    pub fn instance_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.instances).keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Names exported to the deployment's hook scripts (APPLICATION_NAME,
    /// DEPLOYMENT_GROUP_NAME, DEPLOYMENT_GROUP_ID), as the agent does.
    pub fn set_deployment_context(
        &self,
        deployment_id: &str,
        application_name: Option<&str>,
        deployment_group_name: Option<&str>,
        deployment_group_id: Option<&str>,
    ) {
        lock(&self.contexts).insert(
            deployment_id.to_string(),
            DeploymentContext {
                application_name: application_name.map(str::to_string),
                deployment_group_name: deployment_group_name.map(str::to_string),
                deployment_group_id: deployment_group_id.map(str::to_string),
            },
        );
    }

    fn instance(&self, instance_id: &str) -> Arc<Instance> {
        lock(&self.instances)
            .entry(instance_id.to_string())
            .or_default()
            .clone()
    }

    fn existing(&self, instance_id: &str) -> Option<Arc<Instance>> {
        lock(&self.instances).get(instance_id).cloned()
    }

    /// Unpacks a revision for a deployment (DownloadBundle). `appspec.yml` is required.
    pub async fn download_bundle(
        &self,
        instance_id: &str,
        deployment_id: &str,
        zip: Vec<u8>,
    ) -> Result<(), String> {
        let dir = self
            .work_dir
            .join(safe_component(instance_id))
            .join(safe_component(deployment_id));
        let instance = self.instance(instance_id);
        let _ops = instance.ops.lock().await;
        let unpack_dir = dir.clone();
        let (appspec, app) = tokio::task::spawn_blocking(move || unpack(&zip, &unpack_dir))
            .await
            .map_err(|e| format!("unpacking the bundle failed: {e}"))??;
        let app = app.unwrap_or_else(|| AppConfig {
            version: deployment_id.to_string(),
            health: Default::default(),
            start_delay_ms: 0,
            degrade_after_ms: None,
        });
        lock(&instance.state).bundles.insert(
            deployment_id.to_string(),
            Bundle {
                deployment_id: deployment_id.to_string(),
                dir,
                appspec,
                app,
            },
        );
        Ok(())
    }

    /// Runs one lifecycle event (see the module docs).
    pub async fn run_lifecycle_event(
        &self,
        instance_id: &str,
        deployment_id: &str,
        event: &str,
    ) -> HookResult {
        let Some(instance) = self.existing(instance_id) else {
            // A fresh instance has no revision yet. ApplicationStop,
            // BeforeBlockTraffic and AfterBlockTraffic run the scripts of the
            // last successfully installed revision (CodeDeploy user guide,
            // AppSpec "hooks" section: these events use the previous
            // revision's AppSpec), so an instance that never installed one
            // has nothing to run (a rollback blocks traffic on every
            // replacement instance, installed or not). A terminated instance
            // fails.
            let terminated = lock(&self.terminated).contains(instance_id);
            if !terminated
                && matches!(
                    event,
                    "ApplicationStop" | "BeforeBlockTraffic" | "AfterBlockTraffic"
                )
            {
                return HookResult {
                    succeeded: true,
                    script_name: None,
                    error_code: None,
                    message: "No revision installed yet: no script to run for this event.".into(),
                    log_tail: String::new(),
                };
            }
            return HookResult::failure(
                "UnknownError",
                None,
                format!("The instance {instance_id} is not known to the local fleet (never launched, or terminated)."),
                String::new(),
            );
        };
        if self.is_dead(instance_id) {
            return self.silent_agent(instance_id, event).await;
        }
        let result = self
            .run_lifecycle_event_on(&instance, instance_id, deployment_id, event)
            .await;
        if self.is_dead(instance_id) {
            // Killed while the event ran: the agent never reports it, and
            // nothing it started keeps serving.
            stop_server(&instance).await;
            return self.silent_agent(instance_id, event).await;
        }
        result
    }

    async fn run_lifecycle_event_on(
        &self,
        instance: &Arc<Instance>,
        instance_id: &str,
        deployment_id: &str,
        event: &str,
    ) -> HookResult {
        let instance = instance.clone();
        let _ops = instance.ops.lock().await;
        let (downloaded, current) = {
            let st = lock(&instance.state);
            (st.bundles.get(deployment_id).cloned(), st.current.clone())
        };
        match event {
            "DownloadBundle" => match downloaded {
                Some(_) => HookResult::success(None, "Succeeded", String::new()),
                None => HookResult::failure(
                    "UnknownError",
                    None,
                    format!("No bundle was downloaded for deployment {deployment_id} on {instance_id}."),
                    String::new(),
                ),
            },
            "Install" => match downloaded {
                Some(bundle) => {
                    let log = format!(
                        "LifecycleEvent - Install\n[stdout]Installing revision {} from {}",
                        bundle.app.version,
                        bundle.dir.display()
                    );
                    lock(&instance.state).current = Some(bundle);
                    HookResult::success(None, "Succeeded", log)
                }
                None => HookResult::failure(
                    "UnknownError",
                    None,
                    format!("Install before DownloadBundle: no bundle for deployment {deployment_id} on {instance_id}."),
                    String::new(),
                ),
            },
            "ApplicationStop" => {
                let result = match &current {
                    Some(bundle) => self.run_scripts(instance_id, bundle, deployment_id, event).await,
                    None => HookResult::success(
                        None,
                        "Succeeded",
                        "LifecycleEvent - ApplicationStop\n[stdout]No previous revision on this instance: nothing to stop".to_string(),
                    ),
                };
                if result.succeeded {
                    stop_server(&instance).await;
                }
                result
            }
            "BeforeBlockTraffic" | "AfterBlockTraffic" => match &current {
                Some(bundle) => self.run_scripts(instance_id, bundle, deployment_id, event).await,
                None => HookResult::success(None, "Succeeded", String::new()),
            },
            _ => {
                let Some(bundle) = downloaded.or(current) else {
                    return HookResult::failure(
                        "UnknownError",
                        None,
                        format!("No revision for deployment {deployment_id} on {instance_id}: DownloadBundle did not run."),
                        String::new(),
                    );
                };
                let mut result = self.run_scripts(instance_id, &bundle, deployment_id, event).await;
                if event == "ApplicationStart" && result.succeeded {
                    // The revision of this deployment (Install made it current).
                    lock(&instance.state).current = Some(bundle.clone());
                    if let Err(e) = self.start_server(instance_id, &instance, &bundle).await {
                        result = HookResult::failure("UnknownError", result.script_name, e, result.log_tail);
                    }
                }
                result
            }
        }
    }

    /// Demo blue fleet: unpack, install and start a revision directly (no hooks),
    /// like an instance whose user data installed the app at launch.
    pub async fn launch_with_bundle(&self, instance_id: &str, zip: Vec<u8>) -> Result<(), String> {
        const LAUNCH: &str = "launch";
        self.download_bundle(instance_id, LAUNCH, zip).await?;
        let instance = self.instance(instance_id);
        let _ops = instance.ops.lock().await;
        let bundle = {
            let mut st = lock(&instance.state);
            let bundle = st
                .bundles
                .get(LAUNCH)
                .cloned()
                .ok_or_else(|| format!("the launch bundle of {instance_id} vanished"))?;
            st.current = Some(bundle.clone());
            bundle
        };
        self.start_server(instance_id, &instance, &bundle).await
    }

    /// Stops the instance's server (its address refuses connections again) and forgets it.
    pub async fn terminate(&self, instance_id: &str) {
        lock(&self.terminated).insert(instance_id.to_string());
        let removed = lock(&self.instances).remove(instance_id);
        if let Some(instance) = removed {
            let _ops = instance.ops.lock().await;
            stop_server(&instance).await;
            let dir = self.work_dir.join(safe_component(instance_id));
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
        }
    }

    /// The version the instance's app server is serving (None when not started).
    pub fn running_version(&self, instance_id: &str) -> Option<String> {
        let instance = self.existing(instance_id)?;
        let st = lock(&instance.state);
        st.server.as_ref().map(|s| s.version.clone())
    }

    /// Terminates every instance (shutdown).
    pub async fn terminate_all(&self) {
        for id in self.instance_ids() {
            self.terminate(&id).await;
        }
    }

    async fn start_server(
        &self,
        instance_id: &str,
        instance: &Instance,
        bundle: &Bundle,
    ) -> Result<(), String> {
        stop_server(instance).await;
        if self.is_dead(instance_id) {
            return Err(format!("The instance {instance_id} is not responding."));
        }
        let hung_health = self.hung_health.clone();
        let addr = self.socket_of(instance_id);
        let app = Arc::new(bundle.app.clone());
        let scale = self.scale;
        let start_delay = scale.real(Duration::from_millis(app.start_delay_ms));
        let listening = ListeningSocket::default();
        let task = if start_delay.is_zero() {
            let listener = bind(addr).map_err(|e| {
                format!("The app server of {instance_id} could not listen on {addr}: {e}")
            })?;
            *lock(&listening) = listening_copy(&listener);
            tokio::spawn(serve_app(
                listener,
                app.clone(),
                instance_id.to_string(),
                scale,
                hung_health,
            ))
        } else {
            let id = instance_id.to_string();
            let app = app.clone();
            let listening = listening.clone();
            tokio::spawn(async move {
                tokio::time::sleep(start_delay).await;
                match bind(addr) {
                    Ok(listener) => {
                        *lock(&listening) = listening_copy(&listener);
                        serve_app(listener, app, id, scale, hung_health).await
                    }
                    Err(e) => {
                        tracing::error!(instance = %id, %addr, error = %e, "app server could not listen")
                    }
                }
            })
        };
        lock(&instance.state).server = Some(AppServer {
            version: app.version.clone(),
            task: Some(task),
            listening,
        });
        Ok(())
    }

    async fn run_scripts(
        &self,
        instance_id: &str,
        bundle: &Bundle,
        deployment_id: &str,
        event: &str,
    ) -> HookResult {
        let scripts = bundle.appspec.hooks.get(event).cloned().unwrap_or_default();
        if scripts.is_empty() {
            return HookResult::success(None, "Succeeded", String::new());
        }
        let context = lock(&self.contexts)
            .get(deployment_id)
            .cloned()
            .unwrap_or_default();
        let mut env: Vec<(&str, String)> = vec![
            ("LIFECYCLE_EVENT", event.to_string()),
            ("DEPLOYMENT_ID", deployment_id.to_string()),
            ("GREENLIGHT_TIME_SCALE", format!("{}", self.scale.factor())),
            ("GREENLIGHT_INSTANCE_ID", instance_id.to_string()),
        ];
        if let Some(v) = context.application_name {
            env.push(("APPLICATION_NAME", v));
        }
        if let Some(v) = context.deployment_group_name {
            env.push(("DEPLOYMENT_GROUP_NAME", v));
        }
        if let Some(v) = context.deployment_group_id {
            env.push(("DEPLOYMENT_GROUP_ID", v));
        }
        let mut log = String::new();
        let mut last = None;
        for script in scripts {
            let outcome = run_script(&bundle.dir, event, &script, &env, self.scale).await;
            log.push_str(&outcome.log);
            last = Some(script.location.clone());
            if let Some((code, message)) = outcome.error {
                return HookResult::failure(code, last, message, tail(&log));
            }
        }
        tracing::debug!(instance = instance_id, deployment = %bundle.deployment_id, event, "hooks succeeded");
        HookResult::success(last, "Succeeded", tail(&log))
    }
}

fn tail(log: &str) -> String {
    let log = log.trim_end();
    if log.len() <= LOG_TAIL_MAX {
        return log.to_string();
    }
    let mut start = log.len() - LOG_TAIL_MAX;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    // Start on a whole line.
    match log[start..].find('\n') {
        Some(i) => log[start + i + 1..].to_string(),
        None => log[start..].to_string(),
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn stop_server(instance: &Instance) {
    let server = lock(&instance.state).server.take();
    let Some(mut server) = server else {
        return;
    };
    if let Some(fd) = lock(&server.listening).take() {
        stop_listening(&fd);
    }
    if let Some(task) = server.task.take() {
        task.abort();
        // Wait until the listener and its connections are dropped: the port is free after this.
        let _ = task.await;
    }
}

/// Unpacks `zip` into `dir` (replacing it), refusing entries that escape it.
fn unpack(zip: &[u8], dir: &Path) -> Result<(AppSpec, Option<AppConfig>), String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip))
        .map_err(|e| format!("The revision bundle is not a valid zip archive: {e}"))?;
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .map_err(|e| format!("could not clear {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("could not create {}: {e}", dir.display()))?;
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("The revision bundle has an unreadable entry #{i}: {e}"))?;
        let Some(relative) = entry.enclosed_name() else {
            return Err(format!(
                "The revision bundle has an entry whose path escapes the bundle directory: {:?}; refusing to unpack it.",
                entry.name()
            ));
        };
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(format!(
                "The revision bundle has an unsafe entry path: {:?}",
                entry.name()
            ));
        }
        let path = dir.join(&relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&path)
                .map_err(|e| format!("could not create {}: {e}", path.display()))?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("could not create {}: {e}", parent.display()))?;
        }
        let mut content = Vec::new();
        let limit = MAX_UNPACKED_BYTES.saturating_sub(total) + 1;
        (&mut entry)
            .take(limit)
            .read_to_end(&mut content)
            .map_err(|e| format!("could not read {:?} from the bundle: {e}", entry.name()))?;
        total += content.len() as u64;
        if total > MAX_UNPACKED_BYTES {
            return Err(format!(
                "The revision bundle unpacks to more than {} MiB; refusing it.",
                MAX_UNPACKED_BYTES / (1024 * 1024)
            ));
        }
        // Symlink entries are written as plain files holding the link text: never followed.
        std::fs::write(&path, &content)
            .map_err(|e| format!("could not write {}: {e}", path.display()))?;
        if let Some(mode) = entry.unix_mode() {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o755));
        }
    }
    let appspec_path = dir.join("appspec.yml");
    let text = std::fs::read_to_string(&appspec_path).map_err(|_| {
        format!(
            "The CodeDeploy agent did not find an AppSpec file within the unpacked revision directory at revision-relative path \"appspec.yml\". The revision was unpacked to directory \"{}\", and the AppSpec file was expected but not found at path \"{}\".",
            dir.display(),
            appspec_path.display()
        )
    })?;
    let appspec = AppSpec::parse(&text)?;
    let app = match std::fs::read_to_string(dir.join("app.json")) {
        Ok(text) => Some(
            serde_json::from_str::<AppConfig>(&text)
                .map_err(|e| format!("The bundle's app.json is invalid: {e}"))?,
        ),
        Err(_) => None,
    };
    Ok((appspec, app))
}

struct ScriptOutcome {
    log: String,
    /// (error code, message) when the script did not succeed.
    error: Option<(&'static str, String)>,
}

/// Resolves a hook `location` inside the bundle; None when it would escape it.
fn script_path(bundle_dir: &Path, location: &str) -> Option<PathBuf> {
    let relative = Path::new(location.trim_start_matches('/'));
    if relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        Some(bundle_dir.join(relative))
    } else {
        None
    }
}

async fn run_script(
    bundle_dir: &Path,
    event: &str,
    script: &HookScript,
    env: &[(&str, String)],
    scale: TimeScale,
) -> ScriptOutcome {
    let mut log = format!("LifecycleEvent - {event}\nScript - {}\n", script.location);
    let path = match script_path(bundle_dir, &script.location) {
        Some(p) if p.is_file() => p,
        Some(p) => {
            return ScriptOutcome {
                log,
                error: Some((
                    "ScriptMissing",
                    format!("Script does not exist at specified location: {}", p.display()),
                )),
            }
        }
        None => {
            return ScriptOutcome {
                log,
                error: Some((
                    "ScriptMissing",
                    format!(
                        "Script location {} points outside the revision; scripts must be inside the bundle.",
                        script.location
                    ),
                )),
            }
        }
    };
    let timeout_secs = script.timeout.unwrap_or(DEFAULT_SCRIPT_TIMEOUT_SECS);
    let runas = script.runas.clone().unwrap_or_else(|| "root".to_string());
    let mut command = tokio::process::Command::new("bash");
    command
        .arg(&path)
        .current_dir(bundle_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return ScriptOutcome {
                log,
                error: Some((
                    "UnknownError",
                    format!("Could not run bash for {}: {e}", script.location),
                )),
            }
        }
    };
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(tokio::spawn(collect_lines(out, "[stdout]", lines.clone())));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(tokio::spawn(collect_lines(err, "[stderr]", lines.clone())));
    }
    let pid = child.id();
    let limit = scale.real(Duration::from_secs(timeout_secs));
    let status = tokio::time::timeout(limit, child.wait()).await;
    let timed_out = status.is_err();
    if timed_out {
        if let Some(pid) = pid {
            kill_group(pid);
        }
        let _ = child.wait().await;
    } else if let Some(pid) = pid {
        // Background children left by the script would hold its output open; end them too.
        kill_group(pid);
    }
    for reader in readers {
        let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
    }
    for line in lock(&lines).iter() {
        log.push_str(line);
        log.push('\n');
    }
    let error = match status {
        Err(_) => Some((
            "ScriptTimedOut",
            format!(
                "Script at specified location: {} failed to complete in {timeout_secs} seconds",
                script.location
            ),
        )),
        Ok(Err(e)) => Some((
            "UnknownError",
            format!("Waiting for {} failed: {e}", script.location),
        )),
        Ok(Ok(status)) if status.success() => None,
        Ok(Ok(status)) => Some((
            "ScriptFailed",
            match status.code() {
                Some(code) => format!(
                    "Script at specified location: {} run as user {runas} failed with exit code {code}",
                    script.location
                ),
                None => format!(
                    "Script at specified location: {} run as user {runas} was killed by a signal",
                    script.location
                ),
            },
        )),
    };
    ScriptOutcome { log, error }
}

fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals the process group we created
        // (process_group(0) made the child its leader); no memory is touched.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

async fn collect_lines(
    stream: impl AsyncRead + Unpin,
    prefix: &'static str,
    lines: Arc<Mutex<Vec<String>>>,
) {
    let mut reader = BufReader::new(stream).lines();
    while let Ok(Some(line)) = reader.next_line().await {
        let mut l = lock(&lines);
        l.push(format!("{prefix}{line}"));
        // Keep memory bounded; only the tail is reported.
        if l.len() > 2000 {
            l.drain(..1000);
        }
    }
}

/// The demo app: serves one revision's app.json until aborted.
async fn serve_app(
    listener: TcpListener,
    app: Arc<AppConfig>,
    instance_id: String,
    scale: TimeScale,
    hung_health: Arc<Mutex<HashSet<String>>>,
) {
    // When the first request through the load balancer arrived (`Degrading`).
    let traffic_since: Arc<std::sync::OnceLock<tokio::time::Instant>> = Arc::default();
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of file descriptors or similar: don't spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let app = app.clone();
                let instance_id = instance_id.clone();
                let hung_health = hung_health.clone();
                let traffic_since = traffic_since.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let app = app.clone();
                        let instance_id = instance_id.clone();
                        let hung_health = hung_health.clone();
                        let traffic_since = traffic_since.clone();
                        async move {
                            if req.uri().path() == "/health" && lock(&hung_health).contains(&instance_id) {
                                // `hang_health`: never answer; the prober's timeout ends it.
                                std::future::pending::<()>().await;
                            }
                            Ok::<_, Infallible>(app_response(req, &app, &instance_id, scale, &traffic_since).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn app_response(
    req: Request<Incoming>,
    app: &AppConfig,
    instance_id: &str,
    scale: TimeScale,
    traffic_since: &std::sync::OnceLock<tokio::time::Instant>,
) -> Response<Full<Bytes>> {
    // Real traffic comes through the load balancer (it adds X-Forwarded-For);
    // health checks and the validator's probes come straight to the instance.
    let real_traffic = req.headers().contains_key("x-forwarded-for");
    let degraded = real_traffic
        && app.degrade_after_ms.is_some_and(|after| {
            let since = traffic_since.get_or_init(tokio::time::Instant::now);
            since.elapsed() >= scale.real(Duration::from_millis(after))
        });
    let (status, content_type, body) = match req.uri().path() {
        path if degraded && path != "/health" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            crate::revisions::DEGRADED_BODY.to_string(),
        ),
        "/health" => {
            let delay = scale.real(Duration::from_millis(app.health.delay_ms));
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let status = StatusCode::from_u16(app.health.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, "text/plain; charset=utf-8", app.health.body.clone())
        }
        "/version" => (StatusCode::OK, "text/plain; charset=utf-8", app.version.clone()),
        "/" => (
            StatusCode::OK,
            "text/html; charset=utf-8",
            format!(
                "<!doctype html><html><head><title>demo-app {v}</title></head><body><h1>demo-app {v}</h1><p>served by {instance_id}</p></body></html>\n",
                v = app.version
            ),
        ),
        _ => (StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "not found".to_string()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(&app.version) {
        headers.insert("x-app-version", v);
    }
    if let Ok(v) = hyper::header::HeaderValue::from_str(instance_id) {
        headers.insert("x-instance-id", v);
    }
    response
}

#[cfg(test)]
#[path = "fleet/tests.rs"]
mod tests;
