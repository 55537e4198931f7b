//! The local cloud as a long-lived background service: `greenlight-local up`,
//! `status`, `down` (see crates/local-cloud/SERVICE.md).
//!
//! - `up` re-executes the same binary with the hidden `serve` command, detached
//!   (new session and process group, stdin closed, stdout and stderr to
//!   `.local-cloud/service/service.log`), waits until the service has written
//!   its state file and its endpoint answers, and prints the status. It is
//!   idempotent: when the state file names a live service whose endpoint
//!   answers, it reports that one and starts nothing.
//! - `serve` starts [`LocalCloud`], writes `.local-cloud/service/state.json`
//!   (pid, endpoint, region, credentials, listener, the demo's resources, ports,
//!   log path) and runs until SIGTERM, SIGINT or SIGHUP, then calls
//!   [`LocalCloud::shutdown`] (moto is its child and is stopped there; moto also
//!   gets a parent-death signal if the service is killed) and removes the state
//!   file.
//! - `status` prints the state and checks it is live (exit 1 when nothing runs).
//! - `down` sends SIGTERM, waits (bounded), SIGKILLs the whole process group as
//!   a last resort, checks that no process of the group is left and that none of
//!   the service's ports listens any more, and removes the state file.
//!
//! The state folder `.local-cloud/` is ignored by git.

use crate::cloud::{LocalCloud, Options};
use crate::faults::rate::RateMode;
use crate::provision::REGION;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The credentials `status` tells clients to use (any credentials work).
pub const ACCESS_KEY_ID: &str = "test";
pub const SECRET_ACCESS_KEY: &str = "test";

/// How long `up` waits for the service to be ready (moto start-up plus
/// provisioning plus a healthy blue fleet, on a busy 2-core machine).
const READY_TIMEOUT: Duration = Duration::from_secs(240);
/// How long `down` waits after SIGTERM before it SIGKILLs the process group.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `serve` gives [`LocalCloud::shutdown`].
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);
/// How many instance addresses (127.0.0.2 onwards) `down` checks on the app port.
const CHECKED_INSTANCE_ADDRESSES: u32 = 32;

/// Where the service keeps its files, inside the project.
#[derive(Debug, Clone)]
pub struct ServicePaths {
    pub dir: PathBuf,
    pub state_file: PathBuf,
    pub log_file: PathBuf,
    pub work_dir: PathBuf,
    pub lock_file: PathBuf,
}

impl ServicePaths {
    pub fn new(project_root: &Path) -> Self {
        let dir = project_root.join(".local-cloud").join("service");
        Self {
            state_file: dir.join("state.json"),
            log_file: dir.join("service.log"),
            work_dir: dir.join("work"),
            lock_file: dir.join("up.lock"),
            dir,
        }
    }
}

/// What `serve` writes to `state.json` once the local cloud is ready.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceState {
    pub pid: u32,
    pub started_at_ms: i64,
    pub endpoint_url: String,
    pub region: String,
    pub credentials: Credentials,
    pub listener_url: String,
    pub time_scale: f64,
    pub log_path: String,
    pub work_dir: String,
    pub resources: Resources,
    pub ports: Ports,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub note: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    pub bucket: String,
    pub artifact_prefix: String,
    /// Where an upload starts a deployment of the demo application.
    pub upload_key_pattern: String,
    pub application: String,
    pub deployment_group: String,
    pub target_group_name: String,
    pub target_group_arn: String,
    pub load_balancer_arn: String,
    pub state_machine_name: String,
    pub state_machine_arn: String,
    pub topic_arn: String,
    pub blue_asg: String,
    pub blue_instances: Vec<String>,
}

/// Every loopback port the service listens on (`down` checks them all).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Ports {
    pub endpoint: u16,
    pub listener: u16,
    pub moto: Option<u16>,
    /// The app port every instance (127.0.0.N) listens on.
    pub app: u16,
    pub instance_addresses: Vec<String>,
}

impl ServiceState {
    fn of(cloud: &LocalCloud, paths: &ServicePaths, time_scale: f64) -> Self {
        let r = &cloud.resources;
        let n = &r.names;
        let port_of = |url: &str| {
            url.rsplit(':')
                .next()
                .and_then(|p| p.trim_end_matches('/').parse().ok())
                .unwrap_or(0)
        };
        Self {
            pid: std::process::id(),
            started_at_ms: greenlight_aws::now_ms(),
            endpoint_url: cloud.endpoint(),
            region: REGION.to_string(),
            credentials: Credentials {
                access_key_id: ACCESS_KEY_ID.into(),
                secret_access_key: SECRET_ACCESS_KEY.into(),
                note: "any access key and secret work; no session token needed".into(),
            },
            listener_url: cloud.listener_url(),
            time_scale,
            log_path: paths.log_file.display().to_string(),
            work_dir: paths.work_dir.display().to_string(),
            resources: Resources {
                bucket: n.bucket.clone(),
                artifact_prefix: n.artifact_prefix.clone(),
                upload_key_pattern: format!("{}{}/<label>.zip", n.artifact_prefix, n.application),
                application: n.application.clone(),
                deployment_group: n.deployment_group.clone(),
                target_group_name: n.target_group.clone(),
                target_group_arn: r.target_group_arn.clone(),
                load_balancer_arn: r.load_balancer_arn.clone(),
                state_machine_name: n.state_machine.clone(),
                state_machine_arn: r.state_machine_arn.clone(),
                topic_arn: r.topic_arn.clone(),
                blue_asg: n.blue_asg.clone(),
                blue_instances: r.blue_instances.clone(),
            },
            ports: Ports {
                endpoint: port_of(&cloud.endpoint()),
                listener: cloud.listener.port(),
                moto: cloud.moto_endpoint().map(|u| port_of(&u)),
                app: cloud.fleet.app_port(),
                instance_addresses: r
                    .blue_instances
                    .iter()
                    .filter_map(|i| cloud.fleet.known_address(i))
                    .map(|a| a.to_string())
                    .collect(),
            },
        }
    }

    /// The `status` text.
    pub fn describe(&self) -> String {
        let r = &self.resources;
        format!(
            "greenlight local cloud (pid {pid}, time scale {scale})
  endpoint URL     {endpoint}
  region           {region}
  credentials      AWS_ACCESS_KEY_ID={ak} AWS_SECRET_ACCESS_KEY={sk} ({note})
  listener URL     {listener}   (the app through the load balancer)
  artifact bucket  s3://{bucket}/{prefix}   (upload to s3://{bucket}/{pattern} to deploy)
  application      {app}
  deployment group {group}
  blue ASG         {asg}   (the first fleet: {instances}; a deployment replaces it with a green copy)
  target group     {tg_name}
                   {tg}
  load balancer    {lb}
  state machine    {sm}
  topic            {topic}
  log              {log}
  try: aws --endpoint-url {endpoint} --region {region} deploy list-deployments --application-name {app}",
            pid = self.pid,
            scale = self.time_scale,
            endpoint = self.endpoint_url,
            region = self.region,
            ak = self.credentials.access_key_id,
            sk = self.credentials.secret_access_key,
            note = self.credentials.note,
            listener = self.listener_url,
            bucket = r.bucket,
            prefix = r.artifact_prefix,
            pattern = r.upload_key_pattern,
            app = r.application,
            group = r.deployment_group,
            asg = r.blue_asg,
            instances = r.blue_instances.join(", "),
            tg_name = r.target_group_name,
            tg = r.target_group_arn,
            lb = r.load_balancer_arn,
            sm = r.state_machine_arn,
            topic = r.topic_arn,
            log = self.log_path,
        )
    }

    /// Every `ip:port` the service listened on.
    fn listening_addresses(&self) -> Vec<SocketAddr> {
        let local = |port: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut out = vec![local(self.ports.endpoint), local(self.ports.listener)];
        out.extend(self.ports.moto.map(local));
        let mut ips: Vec<Ipv4Addr> = (2..2 + CHECKED_INSTANCE_ADDRESSES)
            .map(|n| Ipv4Addr::new(127, 0, 0, n as u8))
            .collect();
        ips.extend(
            self.ports
                .instance_addresses
                .iter()
                .filter_map(|a| a.parse::<Ipv4Addr>().ok())
                .filter(|a| a.is_loopback()),
        );
        ips.sort();
        ips.dedup();
        out.extend(
            ips.into_iter()
                .map(|ip| SocketAddr::V4(SocketAddrV4::new(ip, self.ports.app))),
        );
        out.retain(|a| a.port() != 0);
        out
    }
}

// ------------------------------------------------------------------ commands

/// `greenlight-local up`: starts the service unless one already runs.
pub fn up(project_root: &Path, time_scale: f64, rate_limits: RateMode) -> Result<bool, String> {
    let paths = ServicePaths::new(project_root);
    std::fs::create_dir_all(&paths.dir).map_err(|e| format!("{}: {e}", paths.dir.display()))?;
    // One `up` at a time (two terminals racing would start two services).
    let _lock = FileLock::acquire(&paths.lock_file)?;

    if let Some(state) = read_state(&paths)? {
        if process_alive(state.pid) && endpoint_answers(&state.endpoint_url) {
            println!("the local cloud is already running; nothing started");
            println!("{}", state.describe());
            return Ok(true);
        }
        println!(
            "removing a stale state file (pid {} is gone or its endpoint does not answer)",
            state.pid
        );
        if process_alive(state.pid) {
            stop_process(state.pid);
        }
        remove_state(&paths)?;
    }

    // A fresh work dir and log for this run.
    if paths.work_dir.exists() {
        std::fs::remove_dir_all(&paths.work_dir)
            .map_err(|e| format!("cannot clear {}: {e}", paths.work_dir.display()))?;
    }
    let log = std::fs::File::create(&paths.log_file)
        .map_err(|e| format!("{}: {e}", paths.log_file.display()))?;
    let log_err = log
        .try_clone()
        .map_err(|e| format!("{}: {e}", paths.log_file.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own binary: {e}"))?;
    let mut command = std::process::Command::new(&exe);
    command
        .args([
            "serve",
            "--time-scale",
            &time_scale.to_string(),
            "--rate-limits",
            match rate_limits {
                RateMode::Aws => "aws",
                RateMode::Off => "off",
            },
        ])
        .current_dir(project_root)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log_err);
    detach(&mut command);
    println!(
        "starting the local cloud in the background (time scale {time_scale}, log {}) ...",
        paths.log_file.display()
    );
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {} serve: {e}", exe.display()))?;
    let pid = child.id();

    let started = Instant::now();
    loop {
        if let Some(state) = read_state(&paths).ok().flatten() {
            if state.pid == pid && endpoint_answers(&state.endpoint_url) {
                println!(
                    "ready after {:.1}s; state in {}",
                    started.elapsed().as_secs_f64(),
                    paths.state_file.display()
                );
                println!("{}", state.describe());
                return Ok(true);
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the local cloud stopped while starting ({status}); last lines of {}:\n{}",
                paths.log_file.display(),
                log_tail(&paths.log_file, 25)
            ));
        }
        if started.elapsed() > READY_TIMEOUT {
            stop_process(pid);
            let _ = child.try_wait();
            let _ = remove_state(&paths);
            return Err(format!(
                "the local cloud was not ready within {}s and was stopped; last lines of {}:\n{}",
                READY_TIMEOUT.as_secs(),
                paths.log_file.display(),
                log_tail(&paths.log_file, 25)
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `greenlight-local status`: what runs and where (exit 1 when nothing runs).
pub fn status(project_root: &Path, json: bool) -> Result<bool, String> {
    let paths = ServicePaths::new(project_root);
    let Some(state) = read_state(&paths)? else {
        if json {
            println!("{}", serde_json::json!({"running": false}));
        } else {
            println!(
                "the local cloud is not running (no {}); start it with `greenlight-local up`",
                paths.state_file.display()
            );
        }
        return Ok(false);
    };
    let alive = process_alive(state.pid);
    let answers = alive && endpoint_answers(&state.endpoint_url);
    if json {
        let mut value = serde_json::to_value(&state).map_err(|e| e.to_string())?;
        if let Some(map) = value.as_object_mut() {
            map.insert("running".into(), serde_json::Value::Bool(answers));
            map.insert(
                "stateFile".into(),
                paths.state_file.display().to_string().into(),
            );
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?
        );
        return Ok(answers);
    }
    if !alive {
        println!(
            "the local cloud is not running: pid {} from {} is gone (stale state; `greenlight-local up` starts a new one, `greenlight-local down` cleans up)",
            state.pid,
            paths.state_file.display()
        );
        return Ok(false);
    }
    println!("{}", state.describe());
    if answers {
        println!(
            "  state            {} (endpoint answers)",
            paths.state_file.display()
        );
    } else {
        println!(
            "  WARNING: pid {} runs but {} does not answer; see the log",
            state.pid, state.endpoint_url
        );
    }
    Ok(answers)
}

/// `greenlight-local down`: stops the service and checks nothing is left.
pub fn down(project_root: &Path) -> Result<bool, String> {
    let paths = ServicePaths::new(project_root);
    let Some(state) = read_state(&paths)? else {
        println!(
            "the local cloud is not running (no {}); nothing to stop",
            paths.state_file.display()
        );
        return Ok(true);
    };
    let pid = state.pid;
    if process_alive(pid) {
        println!("stopping the local cloud (pid {pid}) ...");
        let how = stop_process(pid);
        println!("  pid {pid} {how}");
    } else {
        println!("pid {pid} is already gone; cleaning up");
    }
    // Anything left in the service's process group (moto, hook scripts)?
    let left = group_members(pid);
    if !left.is_empty() {
        println!("  killing leftover processes of group {pid}: {left:?}");
        for p in &left {
            // SAFETY: plain kill(2) on pids read from /proc in our group.
            unsafe { libc::kill(*p, libc::SIGKILL) };
        }
    }
    // Nothing may listen any more (moto dies asynchronously on its parent-death signal).
    let addresses = state.listening_addresses();
    let deadline = Instant::now() + Duration::from_secs(15);
    let listening = loop {
        let still: Vec<SocketAddr> = addresses.iter().copied().filter(|a| listens(*a)).collect();
        if still.is_empty() || Instant::now() > deadline {
            break still;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let group_left = group_members(pid);
    if !listening.is_empty() || !group_left.is_empty() {
        return Err(format!(
            "the local cloud did not stop cleanly: still listening {listening:?}, processes left {group_left:?}; state kept in {}",
            paths.state_file.display()
        ));
    }
    remove_state(&paths)?;
    println!(
        "stopped: no process left, nothing listening on {} checked loopback addresses (endpoint :{}, listener :{}, moto :{}, instances :{}); removed {}",
        addresses.len(),
        state.ports.endpoint,
        state.ports.listener,
        state
            .ports
            .moto
            .map(|p| p.to_string())
            .unwrap_or_else(|| "?".into()),
        state.ports.app,
        paths.state_file.display()
    );
    Ok(true)
}

/// `greenlight-local serve` (hidden; `up` runs it): the service process itself.
pub async fn serve(
    project_root: &Path,
    time_scale: f64,
    rate_limits: RateMode,
) -> Result<bool, String> {
    use tokio::signal::unix::{signal, SignalKind};
    let paths = ServicePaths::new(project_root);
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    println!(
        "[{}] serve: pid {} starting the local cloud (time scale {time_scale}, work dir {})",
        greenlight_aws::now_ms(),
        std::process::id(),
        paths.work_dir.display()
    );
    let mut options = Options::new(project_root, &paths.work_dir, time_scale);
    options.rate_limits = rate_limits;
    let cloud = tokio::select! {
        started = LocalCloud::start(options) => started.map_err(|e| e.to_string())?,
        _ = term.recv() => return Ok(false),
        _ = int.recv() => return Ok(false),
        _ = hup.recv() => return Ok(false),
    };
    let state = ServiceState::of(&cloud, &paths, time_scale);
    write_state(&paths, &state)?;
    println!("{}", state.describe());
    println!("[{}] serve: ready", greenlight_aws::now_ms());

    let which = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
        _ = hup.recv() => "SIGHUP",
    };
    println!(
        "[{}] serve: {which}: shutting down",
        greenlight_aws::now_ms()
    );
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, cloud.shutdown())
        .await
        .is_err()
    {
        println!(
            "serve: shutdown took over {}s; exiting anyway",
            SHUTDOWN_TIMEOUT.as_secs()
        );
    }
    if read_state(&paths).ok().flatten().map(|s| s.pid) == Some(std::process::id()) {
        let _ = remove_state(&paths);
    }
    println!("[{}] serve: stopped", greenlight_aws::now_ms());
    let _ = std::io::stdout().flush();
    // Leave now: nothing else must keep the process (and the ports) alive.
    std::process::exit(0)
}

// ------------------------------------------------------------------ helpers

pub fn read_state(paths: &ServicePaths) -> Result<Option<ServiceState>, String> {
    match std::fs::read_to_string(&paths.state_file) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            format!(
                "{} is not a state file of this version ({e}); stop the service it names, or delete the file",
                paths.state_file.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", paths.state_file.display())),
    }
}

fn write_state(paths: &ServicePaths, state: &ServiceState) -> Result<(), String> {
    let text = serde_json::to_string_pretty(state).map_err(|e| e.to_string())?;
    let tmp = paths.state_file.with_extension("json.tmp");
    std::fs::write(&tmp, text + "\n").map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &paths.state_file)
        .map_err(|e| format!("{}: {e}", paths.state_file.display()))
}

fn remove_state(paths: &ServicePaths) -> Result<(), String> {
    match std::fs::remove_file(&paths.state_file) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", paths.state_file.display())),
    }
}

#[cfg(unix)]
fn detach(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe; the closure allocates nothing.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A live (not zombie) `greenlight-local serve` process.
pub fn process_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) S ...": the state follows the last ')'.
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next());
    if matches!(state, Some("Z") | Some("X") | None) {
        return false;
    }
    // Guard against pid reuse: it must be our service.
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
            args.iter().any(|a| *a == b"serve")
        })
        .unwrap_or(false)
}

/// Live processes whose process group is `pgid` (the service is its group's leader).
fn group_members(pgid: u32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let fields: Vec<&str> = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            // fields[0] = state, [1] = ppid, [2] = pgrp
            fields.len() > 2
                && !matches!(fields[0], "Z" | "X")
                && fields[2].parse::<u32>().ok() == Some(pgid)
        })
        .collect()
}

/// SIGTERM, bounded wait, then SIGKILL to the whole group. Says what it took.
fn stop_process(pid: u32) -> String {
    let started = Instant::now();
    let pid_t = pid as libc::pid_t;
    // SAFETY: plain kill(2) on a pid we checked is our service.
    unsafe { libc::kill(pid_t, libc::SIGTERM) };
    while started.elapsed() < STOP_TIMEOUT {
        if !process_alive(pid) {
            return format!(
                "exited after SIGTERM in {:.1}s",
                started.elapsed().as_secs_f64()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: as above; the service leads its own process group (setsid).
    unsafe {
        libc::kill(-pid_t, libc::SIGKILL);
        libc::kill(pid_t, libc::SIGKILL);
    }
    let killed = Instant::now();
    while killed.elapsed() < Duration::from_secs(5) && process_alive(pid) {
        std::thread::sleep(Duration::from_millis(100));
    }
    format!(
        "did not exit within {}s of SIGTERM: SIGKILLed its process group",
        STOP_TIMEOUT.as_secs()
    )
}

fn listens(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

/// `GET /_greenlight/health` on the endpoint answers 200.
pub fn endpoint_answers(endpoint_url: &str) -> bool {
    let Some(host_port) = endpoint_url.strip_prefix("http://") else {
        return false;
    };
    let host_port = host_port.trim_end_matches('/');
    let Ok(addr) = host_port.parse::<SocketAddr>() else {
        return false;
    };
    if !addr.ip().is_loopback() {
        return false;
    }
    let attempt = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.set_write_timeout(Some(Duration::from_secs(2)))?;
        write!(
            stream,
            "GET /_greenlight/health HTTP/1.1\r\nHost: {host_port}\r\nConnection: close\r\n\r\n"
        )?;
        let mut head = [0u8; 16];
        let mut read = 0;
        while read < head.len() {
            let n = stream.read(&mut head[read..])?;
            if n == 0 {
                break;
            }
            read += n;
        }
        Ok(head[..read].starts_with(b"HTTP/1.1 200"))
    };
    attempt().unwrap_or(false)
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// An exclusive `flock` held while it lives.
struct FileLock {
    _file: std::fs::File,
}

impl FileLock {
    fn acquire(path: &Path) -> Result<Self, String> {
        use std::os::unix::io::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        // SAFETY: flock on a descriptor we own; released when the file closes.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            return Err(format!(
                "cannot lock {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ServiceState {
        ServiceState {
            pid: 4242,
            started_at_ms: 1,
            endpoint_url: "http://127.0.0.1:4566".into(),
            region: REGION.into(),
            credentials: Credentials {
                access_key_id: ACCESS_KEY_ID.into(),
                secret_access_key: SECRET_ACCESS_KEY.into(),
                note: "any".into(),
            },
            listener_url: "http://127.0.0.1:8080".into(),
            time_scale: 0.1,
            log_path: "/p/.local-cloud/service/service.log".into(),
            work_dir: "/p/.local-cloud/service/work".into(),
            resources: Resources {
                bucket: "b".into(),
                artifact_prefix: "artifacts/".into(),
                upload_key_pattern: "artifacts/app/<label>.zip".into(),
                application: "app".into(),
                deployment_group: "g".into(),
                target_group_name: "tg".into(),
                target_group_arn: "arn:tg".into(),
                load_balancer_arn: "arn:lb".into(),
                state_machine_name: "sm".into(),
                state_machine_arn: "arn:sm".into(),
                topic_arn: "arn:topic".into(),
                blue_asg: "blue".into(),
                blue_instances: vec!["i-1".into()],
            },
            ports: Ports {
                endpoint: 4566,
                listener: 8080,
                moto: Some(5000),
                app: 9000,
                instance_addresses: vec!["127.0.0.2".into(), "10.0.0.5".into()],
            },
        }
    }

    #[test]
    fn state_round_trips_in_camel_case() {
        let s = sample();
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains("\"endpointUrl\":\"http://127.0.0.1:4566\""));
        assert!(text.contains("\"targetGroupArn\":\"arn:tg\""));
        assert_eq!(serde_json::from_str::<ServiceState>(&text).unwrap(), s);
    }

    #[test]
    fn checked_addresses_are_loopback_only() {
        let addrs = sample().listening_addresses();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
        assert!(addrs.contains(&"127.0.0.1:4566".parse().unwrap()));
        assert!(addrs.contains(&"127.0.0.1:5000".parse().unwrap()));
        assert!(addrs.contains(&"127.0.0.2:9000".parse().unwrap()));
        assert_eq!(
            addrs.iter().filter(|a| a.port() == 9000).count(),
            CHECKED_INSTANCE_ADDRESSES as usize
        );
    }

    #[test]
    fn state_file_write_read_remove() {
        let dir =
            std::env::temp_dir().join(format!("greenlight-service-test-{}", std::process::id()));
        let paths = ServicePaths::new(&dir);
        std::fs::create_dir_all(&paths.dir).unwrap();
        assert_eq!(read_state(&paths).unwrap(), None);
        write_state(&paths, &sample()).unwrap();
        assert_eq!(read_state(&paths).unwrap(), Some(sample()));
        remove_state(&paths).unwrap();
        remove_state(&paths).unwrap();
        assert_eq!(read_state(&paths).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_dead_or_foreign_pid_is_not_alive() {
        // Our own test process is alive but is not a `serve` process.
        assert!(!process_alive(std::process::id()));
        assert!(!process_alive(u32::MAX - 1));
        assert!(!endpoint_answers("http://10.0.0.1:80"));
        assert!(!endpoint_answers("not a url"));
    }

    #[test]
    fn describe_names_everything_a_client_needs() {
        let text = sample().describe();
        for needle in [
            "http://127.0.0.1:4566",
            "us-east-1",
            "AWS_ACCESS_KEY_ID=test",
            "http://127.0.0.1:8080",
            "arn:tg",
            "arn:sm",
            "arn:topic",
            "blue",
            "s3://b/artifacts/",
        ] {
            assert!(text.contains(needle), "{needle} missing in {text}");
        }
    }
}
