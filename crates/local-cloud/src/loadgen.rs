//! A bounded load generator for the zero-downtime tests, and the small HTTP/1.1
//! client the local cloud uses to talk to its own loopback servers (health
//! checks, the listener's forwarding).
//!
//! Loopback only: a URL whose host is not 127.0.0.0/8 or `localhost` is
//! refused. Every run is bounded in time (`duration`, at most 1 hour) and in
//! count (`requests_per_second × duration`, at most [`MAX_REQUESTS`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Request};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

/// Hard cap on the requests of one run.
pub const MAX_REQUESTS: u64 = 200_000;
/// Per-request timeout of the load generator.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_DURATION: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub sent: u64,
    /// 2xx answers.
    pub ok: u64,
    /// Everything else: non-2xx statuses, connection errors, timeouts.
    pub failed: u64,
    /// Status code ("200", "503", ...) or error kind ("connect-error", "timeout", "invalid-response", "invalid-url").
    pub by_status: BTreeMap<String, u64>,
    /// Version that answered (the app's `X-App-Version` header) → count of 2xx answers.
    pub by_version: BTreeMap<String, u64>,
}

impl LoadReport {
    fn record(&mut self, outcome: Result<SimpleResponse, GetError>) {
        match outcome {
            Ok(r) => {
                *self.by_status.entry(r.status.to_string()).or_default() += 1;
                if (200..300).contains(&r.status) {
                    self.ok += 1;
                    if let Some(v) = r.headers.get("x-app-version").and_then(|v| v.to_str().ok()) {
                        *self.by_version.entry(v.to_string()).or_default() += 1;
                    }
                } else {
                    self.failed += 1;
                }
            }
            Err(e) => {
                self.failed += 1;
                *self.by_status.entry(e.kind().to_string()).or_default() += 1;
            }
        }
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests, {} ok, {} failed",
            self.sent, self.ok, self.failed
        )?;
        if !self.by_status.is_empty() {
            let s: Vec<String> = self
                .by_status
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            write!(f, " (status {})", s.join(", "))?;
        }
        if !self.by_version.is_empty() {
            let v: Vec<String> = self
                .by_version
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            write!(f, " (versions {})", v.join(", "))?;
        }
        Ok(())
    }
}

/// An HTTP answer, fully read.
#[derive(Debug, Clone)]
pub struct SimpleResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl SimpleResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Debug)]
pub enum GetError {
    /// The TCP connection could not be made (refused, unreachable).
    Connect(std::io::Error),
    /// No complete answer within the timeout.
    Timeout,
    /// The connection broke or the answer was not HTTP/1.1.
    Protocol(String),
}

impl GetError {
    pub fn kind(&self) -> &'static str {
        match self {
            GetError::Connect(_) => "connect-error",
            GetError::Timeout => "timeout",
            GetError::Protocol(_) => "invalid-response",
        }
    }
}

impl std::fmt::Display for GetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GetError::Connect(e) => write!(f, "connection failed: {e}"),
            GetError::Timeout => f.write_str("request timed out"),
            GetError::Protocol(e) => write!(f, "invalid HTTP answer: {e}"),
        }
    }
}

impl std::error::Error for GetError {}

/// Sends one request on a fresh connection and reads the whole answer,
/// all within `timeout`.
pub async fn send(
    addr: SocketAddr,
    request: Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<SimpleResponse, GetError> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(GetError::Connect)?;
        let _ = stream.set_nodelay(true);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| GetError::Protocol(e.to_string()))?;
        let driver = tokio::spawn(connection);
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| GetError::Protocol(e.to_string()))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| GetError::Protocol(e.to_string()))?
            .to_bytes();
        driver.abort();
        Ok(SimpleResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or(Err(GetError::Timeout))
}

/// `GET path` on `addr` (a fresh connection, `Connection: close`).
pub async fn get(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<SimpleResponse, GetError> {
    get_with_agent(addr, path, "greenlight-local", timeout).await
}

pub(crate) async fn get_with_agent(
    addr: SocketAddr,
    path: &str,
    user_agent: &str,
    timeout: Duration,
) -> Result<SimpleResponse, GetError> {
    let request = Request::get(path)
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::USER_AGENT, user_agent)
        .header(hyper::header::CONNECTION, "close")
        .body(Full::new(Bytes::new()))
        .map_err(|e| GetError::Protocol(e.to_string()))?;
    send(addr, request, timeout).await
}

/// Splits `http://host:port/path` into a loopback socket address and path.
pub fn parse_loopback_url(url: &str) -> Result<(SocketAddr, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("{url}: invalid port {p:?}"))?,
        ),
        None => (authority, 80),
    };
    let ip: IpAddr = match host {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        h => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("{url}: the host must be a loopback IP address or localhost"))?,
    };
    if !ip.is_loopback() {
        return Err(format!(
            "{url}: refusing to send load to a non-loopback address ({ip})"
        ));
    }
    Ok((SocketAddr::new(ip, port), path))
}

/// Sends `requests_per_second` GETs to `url` (loopback only) for `duration`,
/// then waits for the answers (each bounded by [`REQUEST_TIMEOUT`]).
pub async fn run_load(url: &str, requests_per_second: u32, duration: Duration) -> LoadReport {
    let (_keep, stop) = oneshot::channel::<()>();
    drive(url.to_string(), requests_per_second, duration, stop).await
}

/// A load run in the background, for as long as a deployment takes.
pub struct LoadHandle {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<LoadReport>,
}

impl LoadHandle {
    /// Stops sending, waits for the answers in flight, and reports.
    pub async fn stop(mut self) -> LoadReport {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(report) => report,
            Err(e) => LoadReport {
                failed: 1,
                by_status: BTreeMap::from([(format!("load-generator-crashed: {e}"), 1)]),
                ..LoadReport::default()
            },
        }
    }
}

/// Starts a load run that lasts until [`LoadHandle::stop`] or `max_duration`.
pub fn start_load(url: &str, requests_per_second: u32, max_duration: Duration) -> LoadHandle {
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(drive(
        url.to_string(),
        requests_per_second,
        max_duration,
        rx,
    ));
    LoadHandle {
        stop: Some(tx),
        task,
    }
}

async fn drive(
    url: String,
    requests_per_second: u32,
    duration: Duration,
    mut stop: oneshot::Receiver<()>,
) -> LoadReport {
    let mut report = LoadReport::default();
    let (addr, path) = match parse_loopback_url(&url) {
        Ok(parsed) => parsed,
        Err(e) => {
            tracing::error!(error = %e, "load generator refused its URL");
            report.failed = 1;
            report.by_status.insert("invalid-url".to_string(), 1);
            return report;
        }
    };
    let rps = requests_per_second.clamp(1, 10_000);
    let duration = duration.min(MAX_DURATION);
    let max = ((duration.as_secs_f64() * f64::from(rps)).ceil() as u64).clamp(1, MAX_REQUESTS);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rps)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let deadline = Instant::now() + duration;
    let mut in_flight = tokio::task::JoinSet::new();
    while report.sent < max && Instant::now() < deadline {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => {
                report.sent += 1;
                let path = path.clone();
                in_flight.spawn(async move { get(addr, &path, REQUEST_TIMEOUT).await });
            }
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                if let Ok(outcome) = done {
                    report.record(outcome);
                }
            }
        }
    }
    while let Some(done) = in_flight.join_next().await {
        match done {
            Ok(outcome) => report.record(outcome),
            Err(_) => {
                report.failed += 1;
                *report
                    .by_status
                    .entry("task-failed".to_string())
                    .or_default() += 1;
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_accepted() {
        let (addr, path) = parse_loopback_url("http://127.0.0.1:8080/version").expect("loopback");
        assert_eq!(addr, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(path, "/version");
        assert_eq!(
            parse_loopback_url("http://localhost:9")
                .expect("localhost")
                .1,
            "/"
        );
        assert!(parse_loopback_url("http://127.0.0.9:1/x").is_ok());
        assert!(parse_loopback_url("http://10.0.0.1:80/").is_err());
        assert!(parse_loopback_url("http://192.168.1.1/").is_err());
        assert!(parse_loopback_url("http://example.com/").is_err());
        assert!(parse_loopback_url("https://127.0.0.1/").is_err());
    }

    #[tokio::test]
    async fn a_refused_url_is_reported_not_sent() {
        let report = run_load("http://10.1.2.3:80/", 10, Duration::from_millis(100)).await;
        assert_eq!(report.sent, 0);
        assert_eq!(report.by_status.get("invalid-url"), Some(&1));
    }

    #[tokio::test]
    async fn counts_connection_errors_as_failures() {
        // Nothing listens on this port: bind, read the port, drop.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let report = run_load(
            &format!("http://127.0.0.1:{port}/"),
            50,
            Duration::from_millis(200),
        )
        .await;
        assert!(report.sent >= 5 && report.sent <= 11, "{report}");
        assert_eq!(report.failed, report.sent);
        assert_eq!(report.by_status.get("connect-error"), Some(&report.sent));
    }
}
