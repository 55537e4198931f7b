//! moto's server as a child process: S3, ELBv2, Auto Scaling, EC2, SNS, SQS,
//! EventBridge, CloudWatch, IAM and Step Functions (really executing ASL).
//!
//! How moto 5.2.5 behaves (read in its source, checked by the tests here):
//! - `moto_server` sets `MOTO_PORT` to its own `-p` port only when the variable
//!   is unset (`moto/server.py`). Its Step Functions interpreter sends every
//!   service call of a task (Lambda included) to `http://localhost:$MOTO_PORT`
//!   (`moto/stepfunctions/parser/asl/utils/boto_client.py`), so we start it with
//!   `MOTO_PORT=<front port>`: Step Functions' Lambda calls reach the front
//!   server, which serves them and forwards everything else back to moto.
//! - `POST /moto-api/config` must come before any resource is created:
//!   `{"stepfunctions":{"execute_state_machine":true}}` selects the executing
//!   backend per request, `{"lambda":{"use_docker":false}}` keeps moto away
//!   from Docker. The answer echoes only `batch` and `lambda`
//!   (`MotoAPIBackend.get_config`), never `stepfunctions`: the Step Functions
//!   switch cannot be read back, only observed (an execution that runs).
//! - `GET /moto-api/` (the dashboard) answers 200 once the server listens; it is
//!   the readiness probe.
//! - the server is one Python process (werkzeug, threaded, no reloader).
//!
//! The child dies with its owner: `kill_on_drop`, an explicit
//! [`MotoServer::shutdown`], and (Linux) a parent-death signal, so an aborted
//! test or a Ctrl-C leaves nothing listening. Linux sends the parent-death
//! signal when the *thread* that spawned the child ends: call
//! [`MotoServer::start`] from an async task (a runtime thread lives as long as
//! the runtime), never from a `spawn_blocking` closure (those threads retire
//! when idle, which would kill moto).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The configuration the local cloud needs from moto (see the module docs).
pub const MOTO_CONFIG: &str =
    r#"{"stepfunctions":{"execute_state_machine":true},"lambda":{"use_docker":false}}"#;

/// How long moto may take to start listening (Python start-up on a busy 2-core box).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Puts the local Step Functions' waits on the simulated clock when the
/// environment asks (`GREENLIGHT_SFN_WAIT_SCALE`, real seconds per simulated
/// second; unset or 1: moto's own real-second waits, unchanged).
///
/// moto 5.2.5 waits a Wait state's seconds (`WaitFunction._wait_interval`)
/// and a callback task's `TimeoutSeconds(Path)`
/// (`StateTaskServiceCallback._wait_for_task_token_timeout`) in real
/// seconds. With a scale, both wait `seconds × scale` real seconds, like
/// every simulated wait of the local cloud; the history still shows the
/// state's own numbers. Retry intervals stay real seconds (they pace API
/// retries, which do not speed up). The replacement wait loops until its
/// deadline while the execution runs, as moto's own does after an unrelated
/// wake-up.
const MOTO_WAIT_PATCH: &str = r#"
import os as _os
import time as _time
_scale = float(_os.environ.get("GREENLIGHT_SFN_WAIT_SCALE") or "1")
if _scale != 1.0:
    import moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function as _wf
    import moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback as _cb

    def _wait_interval(self, env, wait_seconds):
        deadline = _time.monotonic() + wait_seconds * _scale
        while env.is_running():
            left = deadline - _time.monotonic()
            if left <= 0:
                return
            env.program_state_event.wait(left)

    _wf.WaitFunction._wait_interval = _wait_interval
    _original_token_wait = _cb.StateTaskServiceCallback._wait_for_task_token_timeout

    def _scaled_token_wait(self, timeout_seconds, callback_endpoint):
        if timeout_seconds:
            timeout_seconds = timeout_seconds * _scale
        return _original_token_wait(self, timeout_seconds, callback_endpoint)

    _cb.StateTaskServiceCallback._wait_for_task_token_timeout = _scaled_token_wait
"#;

/// Starts moto_server with SendTaskFailure's `cause` passed through.
///
/// moto 5.2.5's `StepFunctionResponse.send_task_failure` reads only
/// `taskToken` and `error` and drops `cause`, although its interpreter's
/// backend takes one; AWS passes the cause on to the failed task, whose
/// Catch output is `{"Error": <error>, "Cause": <cause>}` (Step Functions API
/// reference, SendTaskFailure: "cause — A more detailed explanation of the
/// cause of the failure"; developer guide, "Handling errors": the error output
/// has `Error` and `Cause`). Without it a rejected approval could not name who
/// rejected it. Everything else is moto's own code.
const MOTO_CAUSE_PATCH: &str = r#"
import sys
import moto.stepfunctions.responses as _r

def _send_task_failure(self):
    token = self._get_param("taskToken")
    error = self._get_param("error")
    cause = self._get_param("cause")
    try:
        self.stepfunction_backend.send_task_failure(token, error=error, cause=cause)
    except TypeError:
        self.stepfunction_backend.send_task_failure(token, error=error)
    return _r.EmptyResult()

_r.StepFunctionResponse.send_task_failure = _send_task_failure
from moto.server import main
sys.argv[0] = "moto_server"
sys.exit(main())
"#;

/// A running `moto_server` child process; killed on drop.
#[derive(Debug)]
pub struct MotoServer {
    child: Option<Child>,
    port: u16,
    log_path: PathBuf,
}

impl MotoServer {
    /// Starts `<venv>/bin/moto_server` on a free loopback port with
    /// `MOTO_PORT=<front_port>`, waits until it answers, and applies
    /// [`MOTO_CONFIG`]. Output goes to a log file in the system temp dir
    /// (see [`MotoServer::log_path`]).
    pub async fn start(venv: &Path, front_port: u16) -> Result<Self, String> {
        let log_path = std::env::temp_dir().join(format!(
            "greenlight-moto-{}-{}.log",
            std::process::id(),
            front_port
        ));
        Self::start_logging_to(venv, front_port, &log_path, 1.0).await
    }

    /// Like [`MotoServer::start`], with moto's stdout and stderr appended to
    /// `log_path`, and Step Functions' waits scaled by `wait_scale` (real
    /// seconds per state-machine second: [`MOTO_WAIT_PATCH`]; 1.0 = moto's own).
    pub async fn start_logging_to(
        venv: &Path,
        front_port: u16,
        log_path: &Path,
        wait_scale: f64,
    ) -> Result<Self, String> {
        let program = venv.join("bin").join("moto_server");
        if !program.exists() {
            return Err(format!(
                "{} not found: create the project venv first (python3 -m venv .venv && \
                 .venv/bin/pip install -r scripts/tools/requirements.txt)",
                program.display()
            ));
        }
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create log dir {}: {e}", dir.display()))?;
        }
        // A port picked by binding :0 may be taken again before moto binds it:
        // try a few times.
        let mut last_error = String::new();
        for _ in 0..3 {
            let port =
                free_loopback_port().map_err(|e| format!("no free loopback port for moto: {e}"))?;
            match Self::spawn(&program, port, front_port, log_path, wait_scale).await {
                Ok(server) => return Ok(server),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    async fn spawn(
        program: &Path,
        port: u16,
        front_port: u16,
        log_path: &Path,
        wait_scale: f64,
    ) -> Result<Self, String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(|e| format!("cannot open moto log {}: {e}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("cannot open moto log {}: {e}", log_path.display()))?;
        // moto_server's own entry point (`moto.server:main`), run by the venv's
        // python after one correction of moto's Step Functions front
        // (MOTO_CAUSE_PATCH) and, when asked, its waits on the simulated clock
        // (MOTO_WAIT_PATCH).
        let python = program.with_file_name("python");
        let script = format!("{MOTO_WAIT_PATCH}{MOTO_CAUSE_PATCH}");
        let mut command = Command::new(&python);
        command
            .args(["-c", &script, "-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_PORT", front_port.to_string())
            .env("GREENLIGHT_SFN_WAIT_SCALE", wait_scale.to_string())
            // Never reach a real AWS endpoint or a proxy from moto.
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("NO_PROXY", "*")
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true);
        set_parent_death_signal(&mut command);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
        let mut server = MotoServer {
            child: Some(child),
            port,
            log_path: log_path.to_path_buf(),
        };
        server.wait_ready().await?;
        server.configure().await?;
        Ok(server)
    }

    /// `http://127.0.0.1:<port>`: moto itself (the front server forwards here).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The moto process's id while it runs (to read its memory from /proc).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where moto's output goes.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Stops moto and waits for the process to end.
    pub async fn shutdown(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("{}/moto-api/", self.endpoint());
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!(
                        "moto_server exited at start-up ({status}); see {}",
                        self.log_path.display()
                    ));
                }
            }
            if let Ok((200, _)) = simple_request("GET", &url, None).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "moto_server did not answer on {url} within {READY_TIMEOUT:?}; see {}",
                    self.log_path.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn configure(&self) -> Result<(), String> {
        let url = format!("{}/moto-api/config", self.endpoint());
        let (status, body) = simple_request("POST", &url, Some(MOTO_CONFIG.as_bytes().to_vec()))
            .await
            .map_err(|e| format!("POST {url} failed: {e}"))?;
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        // moto answers 201 with the batch/lambda part of its config.
        if !(200..300).contains(&status) || answer["lambda"]["use_docker"] != false {
            return Err(format!(
                "moto refused its configuration (HTTP {status}): {}",
                String::from_utf8_lossy(&body)
            ));
        }
        Ok(())
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// A free TCP port on 127.0.0.1 (bind :0, read, release).
pub fn free_loopback_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    Ok(listener.local_addr()?.port())
}

/// A TCP port held on 127.0.0.1 for as long as this value lives, so that no
/// other local cloud (in this process or another) is handed it by a bind to
/// port 0.
///
/// Why: every cloud's instances listen on 127.0.0.2, 127.0.0.3, ... with the
/// cloud's one app port. A port picked by binding 127.0.0.1:0 and releasing
/// it is free again on 127.0.0.1 while the instances use it on 127.0.0.N, so
/// a second cloud running at the same time could pick the same port and find
/// 127.0.0.2:port taken by the first cloud's instance ("Address already in
/// use"). Holding a bound (not listening) socket on 127.0.0.1:port keeps the
/// kernel from giving the port to anyone else's bind(:0) or connect().
#[derive(Debug)]
pub struct PortReservation {
    port: u16,
    _socket: tokio::net::TcpSocket,
}

impl PortReservation {
    pub fn new() -> std::io::Result<Self> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let port = socket.local_addr()?.port();
        Ok(Self {
            port,
            _socket: socket,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

#[cfg(target_os = "linux")]
fn set_parent_death_signal(command: &mut Command) {
    // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn set_parent_death_signal(_command: &mut Command) {}

/// One plain HTTP/1.1 request (loopback helpers: readiness, configuration).
pub(crate) async fn simple_request(
    method: &str,
    url: &str,
    body: Option<Vec<u8>>,
) -> Result<(u16, Bytes), String> {
    let client: Client<_, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut builder = hyper::Request::builder().method(method).uri(url);
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let request = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| format!("{method} {url}: no answer within 10 s"))?
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn venv() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv")
    }

    #[test]
    fn a_reserved_port_is_held_on_127_0_0_1_and_free_for_the_instances() {
        let reservation = PortReservation::new().unwrap();
        let port = reservation.port();
        // Nobody else can be handed it on 127.0.0.1 (bind :0 and connect pick
        // only ports free there) ...
        let taken = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap_err();
        assert_eq!(taken.kind(), std::io::ErrorKind::AddrInUse);
        // ... while the fleet's instances still listen on it at 127.0.0.N.
        let instance = std::net::TcpListener::bind(("127.0.0.2", port)).unwrap();
        drop(instance);
        drop(reservation);
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
    }

    #[tokio::test]
    async fn starts_configures_and_stops_moto() {
        let front_port = free_loopback_port().unwrap();
        let moto = MotoServer::start(&venv(), front_port).await.unwrap();
        let endpoint = moto.endpoint();
        assert!(endpoint.starts_with("http://127.0.0.1:"));
        let (status, body) = simple_request("GET", &format!("{endpoint}/moto-api/config"), None)
            .await
            .unwrap();
        assert_eq!(status, 201);
        let config: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(config["lambda"]["use_docker"], false);
        let port = moto.port();
        moto.shutdown().await;
        // Nothing listens there any more.
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }

    #[tokio::test]
    async fn missing_venv_is_a_clear_error() {
        let err = MotoServer::start(Path::new("/nonexistent-venv"), 1)
            .await
            .unwrap_err();
        assert!(err.contains("moto_server not found"), "{err}");
    }
}
