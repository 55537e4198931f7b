//! An ALB target-group emulator that behaves like one.
//!
//! moto keeps the load balancer's *configuration* (target groups, health-check
//! settings, attributes, registrations); this module supplies the *behaviour*
//! moto lacks, following ALB's documented semantics:
//!
//! - [`LoadBalancer::refresh_all`] reads every target group from moto
//!   (DescribeTargetGroups, DescribeTargetGroupAttributes for
//!   `deregistration_delay.timeout_seconds`, DescribeTargetHealth for the
//!   registrations only: moto's own health answers are ignored). New settings
//!   apply from the next health check on.
//! - Each registered target gets its own health checker that really probes it:
//!   `GET http://<fleet address>:<health-check port><path>` with
//!   `User-Agent: ELB-HealthChecker/2.0`, every interval × scale, timeout ×
//!   scale, success = the group's matcher (`200`, `200,202`, `200-299`).
//! - States: a new registration is `initial` (`Elb.RegistrationInProgress`
//!   until its first check, then `Elb.InitialHealthChecking`), `healthy` after
//!   healthy-threshold consecutive successes, `unhealthy` after
//!   unhealthy-threshold consecutive failures (`Target.ResponseCodeMismatch`
//!   "Health checks failed with these codes: [500]", `Target.Timeout`
//!   "Request timed out", `Target.FailedHealthChecks` "Health checks failed"
//!   for refused connections), and back to healthy after healthy-threshold
//!   successes.
//! - A deregistered target is `draining` (`Target.DeregistrationInProgress`)
//!   and receives no new requests. ALB's documented behaviour: when it has no
//!   in-flight requests the deregistration completes at once, "however, even
//!   though target deregistration is complete, the status of the target is
//!   displayed as draining until the deregistration delay timeout expires";
//!   then it is removed (DescribeTargetHealth naming it explicitly answers
//!   `unused`, `Target.NotRegistered`). [`LoadBalancer::drain_complete`] tells
//!   whether the in-flight requests are done. [`DrainDisplay::EndEarly`]
//!   removes the target as soon as it has no in-flight requests instead.
//! - Registration and deregistration take effect after a propagation delay
//!   ([`Propagation`], sources there): a new target is not health checked
//!   before it, a deregistered one still gets new requests until it.
//! - [`LoadBalancer::serve_listener`]: a reverse proxy forwarding each request
//!   round robin to the healthy targets; when none is healthy it fails open to
//!   the registered targets only if every one of them is unhealthy (never to
//!   `initial` ones); otherwise 503, as with none registered; 502 when the
//!   target refuses.
//!
//! - [`metrics`]: the target-group CloudWatch metrics (`RequestCount`,
//!   `HTTPCode_Target_5XX_Count`, `TargetResponseTime`,
//!   `UnHealthyHostCount`) of the traffic the listener really served,
//!   published per minute to moto's CloudWatch ([`LoadBalancer::start_metrics`]).
//!
//! - [`routing`]: a listener follows its default actions as moto holds them
//!   ([`LoadBalancer::serve_moto_listener`]): weighted forwards
//!   (`ForwardConfig.TargetGroups[].Weight`, weight 0 gets no request),
//!   ModifyListener / ModifyRule in force after a propagation delay, and only
//!   target groups a listener or rule forwards to are health-checked (the
//!   others' targets are `unused`, `Target.NotInUse`).
//!
//! Not emulated: slow start, stickiness, rule conditions (a served listener
//! routes by its default actions), algorithms other than round robin, HTTPS/gRPC health checks (probed as
//! HTTP), per-AZ behaviour, closing connections still open when the
//! deregistration delay expires.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::error::DisplayErrorContext;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

use crate::clock::TimeScale;
use crate::fleet::Fleet;
use crate::loadgen::{get_with_agent, send, GetError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetState {
    Initial,
    Healthy,
    Unhealthy,
    Draining,
    Unused,
}

impl TargetState {
    /// ELBv2's wire name (`TargetHealthStateEnum`).
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Initial => "initial",
            TargetState::Healthy => "healthy",
            TargetState::Unhealthy => "unhealthy",
            TargetState::Draining => "draining",
            TargetState::Unused => "unused",
        }
    }
}

impl std::fmt::Display for TargetState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealth {
    pub instance_id: String,
    pub port: u16,
    pub state: TargetState,
    pub reason: Option<String>,
    pub description: Option<String>,
}

/// One state change of a target (for timelines and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub state: TargetState,
    pub reason: Option<String>,
    pub at: Instant,
}

/// Health-check settings of a target group, in simulated ("AWS") time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckSettings {
    pub protocol: String,
    /// None = `traffic-port` (the target's own port).
    pub port: Option<u16>,
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// `Matcher.HttpCode`: "200", "200,202", "200-299".
    pub matcher: String,
}

impl Default for HealthCheckSettings {
    /// ALB's defaults for an HTTP instance target group.
    fn default() -> Self {
        Self {
            protocol: "HTTP".to_string(),
            port: None,
            path: "/".to_string(),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: "200".to_string(),
        }
    }
}

/// What moto says about one target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroupSnapshot {
    pub arn: String,
    pub name: String,
    pub port: u16,
    pub health_check: HealthCheckSettings,
    /// `deregistration_delay.timeout_seconds` (simulated).
    pub deregistration_delay: Duration,
    /// Registered targets: (instance id, port).
    pub registrations: Vec<(String, u16)>,
}

/// How long a drained target is displayed as `draining`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DrainDisplay {
    /// ALB: `draining` until the deregistration delay expires, even when the
    /// in-flight requests finished earlier.
    #[default]
    FullDelay,
    /// Remove the target as soon as it has no in-flight requests (bounded by the delay).
    EndEarly,
}

/// How long registration and deregistration take to reach the load balancer's
/// nodes (simulated time, scaled like every other duration).
///
/// - `registration`: a registered target stays `initial`
///   (`Elb.RegistrationInProgress`) and is not health checked until this has
///   passed; only then do the healthy-threshold checks start. AWS: "The load
///   balancer starts routing requests to the target as soon as the
///   registration process completes and the target passes the initial health
///   checks" (ELB user guide, "Register targets with your target group"); the
///   Gateway Load Balancer guide says "it can take a few minutes for the
///   registration process to complete and health checks to start". ALB does
///   not document a figure; 10 s is the low end of what is widely reported
///   (tens of seconds), picked so CI stays fast: the harsher reading is "at
///   least some seconds", never "at once".
/// - `deregistration`: a deregistered target shows `draining` at once but the
///   nodes keep sending it NEW requests for this long. AWS documents the
///   opposite ("The load balancer stops routing requests to a target as soon
///   as you deregister it"), but it is widely reported that ALB keeps routing
///   to a deregistered target for some seconds
///   (kubernetes-sigs/aws-load-balancer-controller#1064, "ALB sending requests
///   to pods after ingress controller deregisters them"); we take the harsher
///   reading, 5 s by default. The deregistration completes (in-flight done)
///   no earlier than this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Propagation {
    pub registration: Duration,
    pub deregistration: Duration,
}

impl Default for Propagation {
    fn default() -> Self {
        Self {
            registration: Duration::from_secs(10),
            deregistration: Duration::from_secs(5),
        }
    }
}

impl Propagation {
    /// No propagation delay (for tests of other behaviour).
    pub const INSTANT: Propagation = Propagation {
        registration: Duration::ZERO,
        deregistration: Duration::ZERO,
    };
}

const REGISTRATION_IN_PROGRESS: (&str, &str) = (
    "Elb.RegistrationInProgress",
    "Target registration is in progress",
);
const INITIAL_HEALTH_CHECKING: (&str, &str) = (
    "Elb.InitialHealthChecking",
    "Initial health checks in progress",
);
const DEREGISTRATION_IN_PROGRESS: (&str, &str) = (
    "Target.DeregistrationInProgress",
    "Target deregistration is in progress",
);
const NOT_REGISTERED: (&str, &str) = (
    "Target.NotRegistered",
    "Target is not registered to the target group",
);
/// ALB's idle timeout (the default 60 s), real time: the listener's upper bound per request.
const LISTENER_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a draining target's in-flight count is looked at.
const DRAIN_POLL: Duration = Duration::from_millis(5);
/// Largest request body the listener forwards.
const MAX_BODY: usize = 16 * 1024 * 1024;
const ELBV2_XMLNS: &str = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";

type Key = (String, u16);

struct Target {
    state: TargetState,
    reason: Option<&'static str>,
    description: Option<String>,
    ok_streak: u32,
    fail_streak: u32,
    checks: u64,
    generation: u64,
    in_flight: Arc<AtomicUsize>,
    drain_complete: bool,
    /// While draining: the state the target had when it was deregistered and
    /// until when (real time) the nodes still route new requests to it.
    still_routed: Option<(TargetState, tokio::time::Instant)>,
    history: Vec<Transition>,
    /// The health checker, or the drain timer while draining.
    task: Option<JoinHandle<()>>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Target {
    fn set(&mut self, state: TargetState, reason: Option<(&'static str, String)>) {
        let (code, description) = match reason {
            Some((c, d)) => (Some(c), Some(d)),
            None => (None, None),
        };
        if self.state != state || self.reason != code || self.history.is_empty() {
            self.history.push(Transition {
                state,
                reason: code.map(str::to_string),
                at: Instant::now(),
            });
        }
        self.state = state;
        self.reason = code;
        self.description = description;
    }

    fn health(&self, id: &str, port: u16) -> TargetHealth {
        TargetHealth {
            instance_id: id.to_string(),
            port,
            state: self.state,
            reason: self.reason.map(str::to_string),
            description: self.description.clone(),
        }
    }
}

struct Group {
    name: String,
    port: u16,
    settings: HealthCheckSettings,
    deregistration_delay: Duration,
    targets: BTreeMap<Key, Target>,
    /// History of targets that finished deregistering (they answer `unused`).
    removed: BTreeMap<Key, Vec<Transition>>,
    next_pick: usize,
}

#[derive(Default)]
struct State {
    groups: BTreeMap<String, Group>,
    generation: u64,
    routes: routing::Routes,
}

/// Where a served listener sends requests.
#[derive(Debug, Clone)]
enum ListenerTarget {
    /// Always this target group (a listener the emulator was given directly).
    Fixed(Arc<str>),
    /// The default actions of this listener as moto holds them ([`routing`]).
    Moto(Arc<str>),
}

/// How long a listener or rule change takes to reach the nodes (simulated
/// time; [`routing`] cites the source): by default the registration latency.
pub const DEFAULT_LISTENER_PROPAGATION: Duration = Duration::from_secs(10);

const NOT_IN_USE: (&str, &str) = (
    "Target.NotInUse",
    "Target group is not configured to receive traffic from the load balancer",
);

struct Shared {
    metrics: Mutex<metrics::Counters>,
    /// Answered listener requests per version the answering instance runs
    /// (the live page's "traffic by version"; not an AWS metric).
    served_by_version: Mutex<std::collections::BTreeMap<String, u64>>,
    fleet: Arc<Fleet>,
    scale: TimeScale,
    state: Mutex<State>,
    drain_display: Mutex<DrainDisplay>,
    propagation: Mutex<Propagation>,
    listener_propagation: Mutex<Duration>,
}

pub struct LoadBalancer {
    shared: Arc<Shared>,
    elbv2: aws_sdk_elasticloadbalancingv2::Client,
    /// One refresh at a time; the number of the last refresh request it
    /// covers (see [`LoadBalancer::refresh_all`]).
    refresh_lock: tokio::sync::Mutex<u64>,
    /// Refresh requests so far (each caller takes the next number).
    refresh_requests: AtomicU64,
    listeners: Mutex<Vec<JoinHandle<()>>>,
    request_ids: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Probe outcome: Ok, or a failure (reason code, description).
type ProbeOutcome = Result<(), (&'static str, String)>;

impl LoadBalancer {
    pub fn new(
        fleet: Arc<Fleet>,
        scale: TimeScale,
        moto_elbv2: aws_sdk_elasticloadbalancingv2::Client,
    ) -> Arc<Self> {
        Arc::new(Self {
            shared: Arc::new(Shared {
                metrics: Mutex::new(metrics::Counters::default()),
                served_by_version: Mutex::new(Default::default()),
                fleet,
                scale,
                state: Mutex::new(State::default()),
                drain_display: Mutex::new(DrainDisplay::default()),
                propagation: Mutex::new(Propagation::default()),
                listener_propagation: Mutex::new(DEFAULT_LISTENER_PROPAGATION),
            }),
            elbv2: moto_elbv2,
            refresh_lock: tokio::sync::Mutex::new(0),
            refresh_requests: AtomicU64::new(0),
            listeners: Mutex::new(Vec::new()),
            request_ids: AtomicU64::new(0),
        })
    }

    /// Chooses how long drained targets stay `draining` (default: ALB's full delay).
    pub fn set_drain_display(&self, display: DrainDisplay) {
        *lock(&self.shared.drain_display) = display;
    }

    /// Sets the registration/deregistration propagation delays (default: [`Propagation::default`]).
    pub fn set_propagation(&self, propagation: Propagation) {
        *lock(&self.shared.propagation) = propagation;
    }

    /// Sets how long a listener or rule change takes to reach the nodes
    /// (simulated; default [`DEFAULT_LISTENER_PROPAGATION`]).
    pub fn set_listener_propagation(&self, delay: Duration) {
        *lock(&self.shared.listener_propagation) = delay;
    }

    /// Reads target groups, settings, attributes and registrations, and the
    /// load balancers' listeners and rules, from moto and reconciles: new
    /// registrations start health checks, removed ones drain, listener
    /// changes reach the nodes after their propagation delay.
    ///
    /// Callers queued behind a running refresh share the next one: a refresh
    /// that began reading after a caller's request covers it (the caller's
    /// write was done before it asked), so N writes at once cost two reads
    /// of moto, not N (each read is a few calls per target group and load
    /// balancer: with many groups, one refresh per write serialized every
    /// ELBv2 write of every group behind all the others).
    pub async fn refresh_all(&self) -> Result<(), String> {
        let request = self.refresh_requests.fetch_add(1, Ordering::SeqCst) + 1;
        let mut covered = self.refresh_lock.lock().await;
        if *covered >= request {
            return Ok(());
        }
        // Every request numbered up to here was made before this read begins.
        let through = self.refresh_requests.load(Ordering::SeqCst);
        let snapshots = self.read_moto().await?;
        let routes = self.read_moto_routes().await?;
        self.apply_routes(routes);
        self.apply(snapshots);
        *covered = through;
        Ok(())
    }

    /// Every listener's default forward and every non-default rule's forward,
    /// by listener or rule ARN.
    async fn read_moto_routes(&self) -> Result<BTreeMap<String, routing::Forward>, String> {
        let fail = |op: &str, e: &dyn std::fmt::Display| format!("{op} on moto failed: {e}");
        let mut read = BTreeMap::new();
        let mut lbs = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .elbv2
                .describe_load_balancers()
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| fail("DescribeLoadBalancers", &DisplayErrorContext(&e)))?;
            lbs.extend(
                page.load_balancers()
                    .iter()
                    .filter_map(|l| l.load_balancer_arn().map(str::to_string)),
            );
            match page.next_marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                _ => break,
            }
        }
        for lb in lbs {
            let listeners = self
                .elbv2
                .describe_listeners()
                .load_balancer_arn(&lb)
                .send()
                .await
                .map_err(|e| fail("DescribeListeners", &DisplayErrorContext(&e)))?;
            for listener in listeners.listeners() {
                let Some(listener_arn) = listener.listener_arn() else {
                    continue;
                };
                read.insert(
                    listener_arn.to_string(),
                    routing::forward_of(listener.default_actions()),
                );
                let rules = self
                    .elbv2
                    .describe_rules()
                    .listener_arn(listener_arn)
                    .send()
                    .await
                    .map_err(|e| fail("DescribeRules", &DisplayErrorContext(&e)))?;
                for rule in rules.rules() {
                    if rule.is_default().unwrap_or(false) {
                        continue;
                    }
                    if let Some(rule_arn) = rule.rule_arn() {
                        read.insert(rule_arn.to_string(), routing::forward_of(rule.actions()));
                    }
                }
            }
        }
        Ok(read)
    }

    /// Takes the listeners' and rules' forwards (what `refresh_all` read from
    /// moto); a change reaches the nodes after the listener propagation
    /// delay. Public so a test can drive the emulator without moto.
    pub fn apply_routes(&self, read: BTreeMap<String, routing::Forward>) {
        let delay = self
            .shared
            .scale
            .real(*lock(&self.shared.listener_propagation));
        lock(&self.shared.state)
            .routes
            .update(read, tokio::time::Instant::now(), delay);
    }

    /// Every change of a listener's or rule's forward, oldest first.
    pub fn route_history(&self, key: &str) -> Vec<routing::RouteChange> {
        lock(&self.shared.state).routes.history(key)
    }

    /// The forward a listener or rule routes by now (None: unknown).
    pub fn active_forward(&self, key: &str) -> Option<routing::Forward> {
        lock(&self.shared.state)
            .routes
            .active(key, tokio::time::Instant::now())
    }

    async fn read_moto(&self) -> Result<Vec<TargetGroupSnapshot>, String> {
        let mut groups = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .elbv2
                .describe_target_groups()
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "DescribeTargetGroups on moto failed: {}",
                        DisplayErrorContext(&e)
                    )
                })?;
            groups.extend(page.target_groups.unwrap_or_default());
            match page.next_marker {
                Some(m) if !m.is_empty() => marker = Some(m),
                _ => break,
            }
        }
        let mut snapshots = Vec::new();
        for tg in groups {
            let Some(arn) = tg.target_group_arn.clone() else {
                continue;
            };
            let port = tg.port.and_then(|p| u16::try_from(p).ok()).unwrap_or(80);
            let defaults = HealthCheckSettings::default();
            let secs = |v: Option<i32>, d: Duration| {
                v.and_then(|s| u64::try_from(s).ok())
                    .map(Duration::from_secs)
                    .unwrap_or(d)
            };
            let count = |v: Option<i32>, d: u32| {
                v.and_then(|s| u32::try_from(s).ok())
                    .filter(|c| *c > 0)
                    .unwrap_or(d)
            };
            let health_check = HealthCheckSettings {
                protocol: tg
                    .health_check_protocol
                    .as_ref()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or(defaults.protocol.clone()),
                port: tg.health_check_port.as_deref().and_then(|p| p.parse().ok()),
                path: tg
                    .health_check_path
                    .clone()
                    .filter(|p| !p.is_empty())
                    .unwrap_or(defaults.path.clone()),
                interval: secs(tg.health_check_interval_seconds, defaults.interval),
                timeout: secs(tg.health_check_timeout_seconds, defaults.timeout),
                healthy_threshold: count(tg.healthy_threshold_count, defaults.healthy_threshold),
                unhealthy_threshold: count(
                    tg.unhealthy_threshold_count,
                    defaults.unhealthy_threshold,
                ),
                matcher: tg
                    .matcher
                    .as_ref()
                    .and_then(|m| m.http_code.clone())
                    .unwrap_or(defaults.matcher.clone()),
            };
            let attributes = self
                .elbv2
                .describe_target_group_attributes()
                .target_group_arn(&arn)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "DescribeTargetGroupAttributes({arn}) on moto failed: {}",
                        DisplayErrorContext(&e)
                    )
                })?;
            let deregistration_delay = attributes
                .attributes
                .unwrap_or_default()
                .iter()
                .find(|a| a.key.as_deref() == Some("deregistration_delay.timeout_seconds"))
                .and_then(|a| a.value.as_deref())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
                .unwrap_or(Duration::from_secs(300));
            let health = self
                .elbv2
                .describe_target_health()
                .target_group_arn(&arn)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "DescribeTargetHealth({arn}) on moto failed: {}",
                        DisplayErrorContext(&e)
                    )
                })?;
            let registrations = health
                .target_health_descriptions
                .unwrap_or_default()
                .into_iter()
                .filter_map(|d| {
                    let target = d.target?;
                    let p = target
                        .port
                        .and_then(|p| u16::try_from(p).ok())
                        .unwrap_or(port);
                    Some((target.id?, p))
                })
                .collect();
            snapshots.push(TargetGroupSnapshot {
                arn,
                name: tg.target_group_name.unwrap_or_default(),
                port,
                health_check,
                deregistration_delay,
                registrations,
            });
        }
        Ok(snapshots)
    }

    /// Reconciles the emulator with a full list of target groups (what
    /// `refresh_all` read from moto). Public so a test can drive the emulator
    /// without moto.
    pub fn apply(&self, snapshots: Vec<TargetGroupSnapshot>) {
        let mut to_spawn: Vec<(String, Key, u64, bool)> = Vec::new();
        {
            let mut st = lock(&self.shared.state);
            let wanted: std::collections::BTreeSet<&str> =
                snapshots.iter().map(|s| s.arn.as_str()).collect();
            st.groups.retain(|arn, _| wanted.contains(arn.as_str()));
            for snap in snapshots {
                st.generation += 1;
                let generation = st.generation;
                let group = st.groups.entry(snap.arn.clone()).or_insert_with(|| Group {
                    name: snap.name.clone(),
                    port: snap.port,
                    settings: snap.health_check.clone(),
                    deregistration_delay: snap.deregistration_delay,
                    targets: BTreeMap::new(),
                    removed: BTreeMap::new(),
                    next_pick: 0,
                });
                group.name = snap.name;
                group.port = snap.port;
                group.settings = snap.health_check;
                group.deregistration_delay = snap.deregistration_delay;
                let registered: std::collections::BTreeSet<Key> =
                    snap.registrations.into_iter().collect();
                for key in &registered {
                    let fresh = match group.targets.get(key) {
                        None => true,
                        Some(t) => t.state == TargetState::Draining,
                    };
                    if fresh {
                        let in_flight = group
                            .targets
                            .get(key)
                            .map(|t| t.in_flight.clone())
                            .unwrap_or_default();
                        let mut history = group.removed.remove(key).unwrap_or_default();
                        if let Some(old) = group.targets.remove(key) {
                            history.extend(old.history.iter().cloned());
                        }
                        let mut target = Target {
                            state: TargetState::Initial,
                            reason: None,
                            description: None,
                            ok_streak: 0,
                            fail_streak: 0,
                            checks: 0,
                            generation,
                            in_flight,
                            drain_complete: false,
                            still_routed: None,
                            history,
                            task: None,
                        };
                        target.set(
                            TargetState::Initial,
                            Some((
                                REGISTRATION_IN_PROGRESS.0,
                                REGISTRATION_IN_PROGRESS.1.to_string(),
                            )),
                        );
                        group.targets.insert(key.clone(), target);
                        to_spawn.push((snap.arn.clone(), key.clone(), generation, true));
                    }
                }
                for (key, target) in group.targets.iter_mut() {
                    if !registered.contains(key) && target.state != TargetState::Draining {
                        if let Some(task) = target.task.take() {
                            task.abort();
                        }
                        target.generation = generation;
                        let latency = self
                            .shared
                            .scale
                            .real(lock(&self.shared.propagation).deregistration);
                        target.still_routed =
                            Some((target.state, tokio::time::Instant::now() + latency));
                        target.set(
                            TargetState::Draining,
                            Some((
                                DEREGISTRATION_IN_PROGRESS.0,
                                DEREGISTRATION_IN_PROGRESS.1.to_string(),
                            )),
                        );
                        to_spawn.push((snap.arn.clone(), key.clone(), generation, false));
                    }
                }
            }
            for (arn, key, generation, health_check) in to_spawn {
                let shared = self.shared.clone();
                let task = if health_check {
                    tokio::spawn(health_checker(shared, arn.clone(), key.clone(), generation))
                } else {
                    tokio::spawn(drainer(shared, arn.clone(), key.clone(), generation))
                };
                if let Some(t) = st
                    .groups
                    .get_mut(&arn)
                    .and_then(|g| g.targets.get_mut(&key))
                {
                    t.task = Some(task);
                } else {
                    task.abort();
                }
            }
        }
    }

    /// Current health of every target of a group (empty if the group is unknown).
    pub fn target_health(&self, target_group_arn: &str) -> Vec<TargetHealth> {
        let st = lock(&self.shared.state);
        st.groups
            .get(target_group_arn)
            .map(|g| {
                g.targets
                    .iter()
                    .map(|((id, port), t)| t.health(id, *port))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Target group ARNs the emulator knows.
    /// Answered listener requests per version, since the start.
    pub fn traffic_by_version(&self) -> Vec<(String, u64)> {
        lock(&self.shared.served_by_version)
            .iter()
            .map(|(v, n)| (v.clone(), *n))
            .collect()
    }

    pub fn target_group_arns(&self) -> Vec<String> {
        lock(&self.shared.state).groups.keys().cloned().collect()
    }

    /// The health-check settings and deregistration delay in force for a group.
    pub fn settings(&self, target_group_arn: &str) -> Option<(HealthCheckSettings, Duration)> {
        let st = lock(&self.shared.state);
        st.groups
            .get(target_group_arn)
            .map(|g| (g.settings.clone(), g.deregistration_delay))
    }

    /// Every state a target went through, oldest first (kept across deregistration).
    pub fn target_history(&self, target_group_arn: &str, instance_id: &str) -> Vec<Transition> {
        let st = lock(&self.shared.state);
        let Some(group) = st.groups.get(target_group_arn) else {
            return Vec::new();
        };
        let mut history: Vec<Transition> = group
            .removed
            .iter()
            .filter(|((id, _), _)| id == instance_id)
            .flat_map(|(_, h)| h.iter().cloned())
            .chain(
                group
                    .targets
                    .iter()
                    .filter(|((id, _), _)| id == instance_id)
                    .flat_map(|(_, t)| t.history.iter().cloned()),
            )
            .collect();
        history.sort_by_key(|t| t.at);
        history.dedup();
        history
    }

    /// Requests the listener is currently forwarding to this target.
    pub fn in_flight(&self, target_group_arn: &str, instance_id: &str) -> usize {
        let st = lock(&self.shared.state);
        st.groups
            .get(target_group_arn)
            .map(|g| {
                g.targets
                    .iter()
                    .filter(|((id, _), _)| id == instance_id)
                    .map(|(_, t)| t.in_flight.load(Ordering::SeqCst))
                    .sum()
            })
            .unwrap_or(0)
    }

    /// For a draining target: whether its in-flight requests are done (the
    /// deregistration is complete while the state still says draining).
    /// None when the target is not draining.
    pub fn drain_complete(&self, target_group_arn: &str, instance_id: &str) -> Option<bool> {
        let st = lock(&self.shared.state);
        let group = st.groups.get(target_group_arn)?;
        group
            .targets
            .iter()
            .find(|((id, _), t)| id == instance_id && t.state == TargetState::Draining)
            .map(|(_, t)| t.drain_complete)
    }

    /// ELBv2 `DescribeTargetHealth` answer (XML), from the emulated state.
    /// `form` = the decoded query/form parameters of the request.
    pub fn describe_target_health_response(&self, form: &[(String, String)]) -> (u16, String) {
        let request_id = self.request_id();
        let param = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let Some(arn) = param("TargetGroupArn").filter(|a| !a.is_empty()) else {
            return error_response(
                400,
                "ValidationError",
                "1 validation error detected: Value null at 'targetGroupArn' failed to satisfy constraint: Member must not be null",
                &request_id,
            );
        };
        // Targets.member.N.Id / Targets.member.N.Port
        let mut asked: BTreeMap<u32, (Option<String>, Option<u16>)> = BTreeMap::new();
        for (k, v) in form {
            let Some(rest) = k.strip_prefix("Targets.member.") else {
                continue;
            };
            let Some((n, field)) = rest.split_once('.') else {
                continue;
            };
            let Ok(n) = n.parse::<u32>() else { continue };
            let entry = asked.entry(n).or_default();
            match field {
                "Id" => entry.0 = Some(v.clone()),
                "Port" => entry.1 = v.parse().ok(),
                _ => {}
            }
        }
        let st = lock(&self.shared.state);
        let Some(group) = st.groups.get(arn) else {
            return error_response(
                400,
                "TargetGroupNotFound",
                "One or more target groups not found",
                &request_id,
            );
        };
        let hc_port = |port: u16| group.settings.port.unwrap_or(port);
        let mut members: Vec<(String, u16, u16, TargetHealth)> = Vec::new();
        if asked.is_empty() {
            for ((id, port), t) in &group.targets {
                members.push((id.clone(), *port, hc_port(*port), t.health(id, *port)));
            }
        } else {
            for (_, (id, port)) in asked {
                let Some(id) = id else {
                    return error_response(
                        400,
                        "ValidationError",
                        "1 validation error detected: Value null at 'targets.member.id' failed to satisfy constraint: Member must not be null",
                        &request_id,
                    );
                };
                let found = group
                    .targets
                    .iter()
                    .find(|((tid, tport), _)| *tid == id && port.is_none_or(|p| p == *tport));
                match found {
                    Some(((tid, tport), t)) => {
                        members.push((tid.clone(), *tport, hc_port(*tport), t.health(tid, *tport)))
                    }
                    None => {
                        let port = port.unwrap_or(group.port);
                        members.push((
                            id.clone(),
                            port,
                            hc_port(port),
                            TargetHealth {
                                instance_id: id,
                                port,
                                state: TargetState::Unused,
                                reason: Some(NOT_REGISTERED.0.to_string()),
                                description: Some(NOT_REGISTERED.1.to_string()),
                            },
                        ));
                    }
                }
            }
        }
        let mut xml = format!(
            "<DescribeTargetHealthResponse xmlns=\"{ELBV2_XMLNS}\">\n  <DescribeTargetHealthResult>\n    <TargetHealthDescriptions>\n"
        );
        for (id, port, hc_port, health) in members {
            xml.push_str("      <member>\n");
            xml.push_str(&format!(
                "        <Target>\n          <Id>{}</Id>\n          <Port>{port}</Port>\n        </Target>\n",
                escape(&id)
            ));
            xml.push_str(&format!(
                "        <HealthCheckPort>{hc_port}</HealthCheckPort>\n"
            ));
            xml.push_str("        <TargetHealth>\n");
            xml.push_str(&format!(
                "          <State>{}</State>\n",
                health.state.as_str()
            ));
            if let Some(reason) = &health.reason {
                xml.push_str(&format!("          <Reason>{}</Reason>\n", escape(reason)));
            }
            if let Some(description) = &health.description {
                xml.push_str(&format!(
                    "          <Description>{}</Description>\n",
                    escape(description)
                ));
            }
            xml.push_str("        </TargetHealth>\n      </member>\n");
        }
        xml.push_str(&format!(
            "    </TargetHealthDescriptions>\n  </DescribeTargetHealthResult>\n  <ResponseMetadata>\n    <RequestId>{request_id}</RequestId>\n  </ResponseMetadata>\n</DescribeTargetHealthResponse>\n"
        ));
        (200, xml)
    }

    fn request_id(&self) -> String {
        let n = self.request_ids.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let h = t ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (h >> 32) as u32,
            (h >> 16) as u16,
            0x4000 | ((h as u16) & 0x0fff),
            0x8000 | ((n as u16) & 0x3fff),
            (t ^ n) & 0xffff_ffff_ffff
        )
    }

    /// Serves an ALB listener on `bind` whose default action forwards to
    /// `target_group_arn`. Returns the bound address.
    pub async fn serve_listener(
        self: &Arc<Self>,
        target_group_arn: String,
        bind: SocketAddr,
    ) -> std::io::Result<SocketAddr> {
        self.serve(ListenerTarget::Fixed(Arc::from(target_group_arn)), bind)
            .await
    }

    /// Serves moto's listener `listener_arn` on `bind`: requests follow its
    /// default actions as [`refresh_all`](Self::refresh_all) last read them
    /// ([`routing`]). Returns the bound address.
    pub async fn serve_moto_listener(
        self: &Arc<Self>,
        listener_arn: String,
        bind: SocketAddr,
    ) -> std::io::Result<SocketAddr> {
        self.serve(ListenerTarget::Moto(Arc::from(listener_arn)), bind)
            .await
    }

    async fn serve(
        self: &Arc<Self>,
        target: ListenerTarget,
        bind: SocketAddr,
    ) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let local = listener.local_addr()?;
        let shared = self.shared.clone();
        let arn = target;
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, client)) = accepted else {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        };
                        let _ = stream.set_nodelay(true);
                        let shared = shared.clone();
                        let arn = arn.clone();
                        connections.spawn(async move {
                            let service = hyper::service::service_fn(move |req| {
                                let shared = shared.clone();
                                let arn = arn.clone();
                                async move { Ok::<_, Infallible>(forward(&shared, &arn, req, client, local).await) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        lock(&self.listeners).push(task);
        Ok(local)
    }

    /// Publishes the target groups' CloudWatch metrics ([`metrics`]) with
    /// the `LoadBalancer` dimension of `load_balancer_arn`, until shutdown.
    pub fn start_metrics(&self, cloudwatch: aws_sdk_cloudwatch::Client, load_balancer_arn: String) {
        let task = tokio::spawn(metrics::publisher(
            self.shared.clone(),
            cloudwatch,
            load_balancer_arn,
        ));
        lock(&self.listeners).push(task);
    }

    /// Stops listeners and health checks (also done on drop).
    pub fn shutdown(&self) {
        for task in lock(&self.listeners).drain(..) {
            task.abort();
        }
        lock(&self.shared.state).groups.clear();
    }
}

impl Drop for LoadBalancer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn error_response(status: u16, code: &str, message: &str, request_id: &str) -> (u16, String) {
    (
        status,
        format!(
            "<ErrorResponse xmlns=\"{ELBV2_XMLNS}\">\n  <Error>\n    <Type>Sender</Type>\n    <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n",
            escape(code),
            escape(message)
        ),
    )
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether `code` matches an ALB `Matcher.HttpCode` ("200", "200,202", "200-299").
pub fn matcher_accepts(matcher: &str, code: u16) -> bool {
    matcher
        .split(',')
        .map(str::trim)
        .any(|part| match part.split_once('-') {
            Some((lo, hi)) => match (lo.trim().parse::<u16>(), hi.trim().parse::<u16>()) {
                (Ok(lo), Ok(hi)) => (lo..=hi).contains(&code),
                _ => false,
            },
            None => part.parse::<u16>() == Ok(code),
        })
}

/// One health-check probe of one target.
async fn probe(
    shared: &Shared,
    instance_id: &str,
    port: u16,
    settings: &HealthCheckSettings,
) -> ProbeOutcome {
    let ip = shared.fleet.address_of(instance_id);
    let port = settings.port.unwrap_or(port);
    let timeout = shared.scale.real(settings.timeout);
    match get_with_agent(
        SocketAddr::from((ip, port)),
        &settings.path,
        "ELB-HealthChecker/2.0",
        timeout,
    )
    .await
    {
        Ok(r) if matcher_accepts(&settings.matcher, r.status) => Ok(()),
        Ok(r) => Err((
            "Target.ResponseCodeMismatch",
            format!("Health checks failed with these codes: [{}]", r.status),
        )),
        Err(GetError::Timeout) => Err(("Target.Timeout", "Request timed out".to_string())),
        Err(_) => Err((
            "Target.FailedHealthChecks",
            "Health checks failed".to_string(),
        )),
    }
}

/// Applies one probe outcome to a target, following ALB's threshold rules.
fn record_check(target: &mut Target, outcome: ProbeOutcome, settings: &HealthCheckSettings) {
    target.checks += 1;
    match outcome {
        Ok(()) => {
            target.ok_streak += 1;
            target.fail_streak = 0;
            let enough = target.ok_streak >= settings.healthy_threshold;
            match target.state {
                TargetState::Initial | TargetState::Unhealthy if enough => {
                    target.set(TargetState::Healthy, None)
                }
                TargetState::Initial => target.set(
                    TargetState::Initial,
                    Some((
                        INITIAL_HEALTH_CHECKING.0,
                        INITIAL_HEALTH_CHECKING.1.to_string(),
                    )),
                ),
                _ => {}
            }
        }
        Err(failure) => {
            target.fail_streak += 1;
            target.ok_streak = 0;
            let enough = target.fail_streak >= settings.unhealthy_threshold;
            match target.state {
                TargetState::Initial | TargetState::Healthy if enough => {
                    target.set(TargetState::Unhealthy, Some(failure))
                }
                TargetState::Initial => target.set(
                    TargetState::Initial,
                    Some((
                        INITIAL_HEALTH_CHECKING.0,
                        INITIAL_HEALTH_CHECKING.1.to_string(),
                    )),
                ),
                TargetState::Unhealthy => target.set(TargetState::Unhealthy, Some(failure)),
                _ => {}
            }
        }
    }
}

/// A registered target's health checker: probe, record, wait an interval, repeat.
async fn health_checker(shared: Arc<Shared>, arn: String, key: Key, generation: u64) {
    // The registration reaches the nodes first (`Elb.RegistrationInProgress`).
    let registration = shared.scale.real(lock(&shared.propagation).registration);
    tokio::time::sleep(registration).await;
    // Then the first check comes one interval later, not at once: AWS does
    // not document when a new target's first health check runs (only that
    // traffic starts once "the registration process completes and the target
    // passes the initial health checks"); a node probes on its own interval
    // schedule, so the harsher reading is a full interval of waiting.
    let first_interval = {
        let st = lock(&shared.state);
        match st.groups.get(&arn) {
            Some(group) => group.settings.interval,
            None => return,
        }
    };
    tokio::time::sleep(shared.scale.real(first_interval)).await;
    loop {
        let started = tokio::time::Instant::now();
        let settings = {
            let mut st = lock(&shared.state);
            let attached = st.routes.attached(&arn, started);
            let Some(group) = st.groups.get_mut(&arn) else {
                return;
            };
            let interval = group.settings.interval;
            match group.targets.get_mut(&key) {
                Some(t) if t.generation == generation && t.state != TargetState::Draining => {
                    if attached {
                        if t.state == TargetState::Unused {
                            t.set(
                                TargetState::Initial,
                                Some((
                                    INITIAL_HEALTH_CHECKING.0,
                                    INITIAL_HEALTH_CHECKING.1.to_string(),
                                )),
                            );
                        }
                        Ok(group.settings.clone())
                    } else {
                        // Nothing forwards to the group: no health checks,
                        // and the next ones start from scratch.
                        t.ok_streak = 0;
                        t.fail_streak = 0;
                        t.set(
                            TargetState::Unused,
                            Some((NOT_IN_USE.0, NOT_IN_USE.1.to_string())),
                        );
                        Err(interval)
                    }
                }
                _ => return,
            }
        };
        let settings = match settings {
            Ok(settings) => settings,
            Err(interval) => {
                tokio::time::sleep_until(started + shared.scale.real(interval)).await;
                continue;
            }
        };
        let outcome = probe(&shared, &key.0, key.1, &settings).await;
        let interval = {
            let mut st = lock(&shared.state);
            let Some(group) = st.groups.get_mut(&arn) else {
                return;
            };
            let settings = group.settings.clone();
            match group.targets.get_mut(&key) {
                Some(t) if t.generation == generation && t.state != TargetState::Draining => {
                    record_check(t, outcome, &settings);
                }
                _ => return,
            }
            settings.interval
        };
        tokio::time::sleep_until(started + shared.scale.real(interval)).await;
    }
}

/// A deregistered target's drain: no new requests; the deregistration is
/// complete when its in-flight requests are done; it is displayed as draining
/// until the delay expires (or only until then, with `DrainDisplay::EndEarly`).
async fn drainer(shared: Arc<Shared>, arn: String, key: Key, generation: u64) {
    let (delay, in_flight, routed_until) = {
        let st = lock(&shared.state);
        let Some(group) = st.groups.get(&arn) else {
            return;
        };
        let Some(t) = group.targets.get(&key) else {
            return;
        };
        (
            shared.scale.real(group.deregistration_delay),
            t.in_flight.clone(),
            t.still_routed.map(|(_, until)| until),
        )
    };
    let deadline = tokio::time::Instant::now() + delay;
    loop {
        // New requests may still arrive until the deregistration has reached
        // every node: it cannot be complete before then.
        let propagated = routed_until.is_none_or(|u| tokio::time::Instant::now() >= u);
        let idle = propagated && in_flight.load(Ordering::SeqCst) == 0;
        let end_early = *lock(&shared.drain_display) == DrainDisplay::EndEarly;
        let expired = tokio::time::Instant::now() >= deadline;
        {
            let mut st = lock(&shared.state);
            let Some(group) = st.groups.get_mut(&arn) else {
                return;
            };
            match group.targets.get_mut(&key) {
                Some(t) if t.generation == generation && t.state == TargetState::Draining => {
                    if idle && !t.drain_complete {
                        t.drain_complete = true;
                    }
                    if expired || (end_early && idle) {
                        if let Some(mut t) = group.targets.remove(&key) {
                            t.set(
                                TargetState::Unused,
                                Some((NOT_REGISTERED.0, NOT_REGISTERED.1.to_string())),
                            );
                            // This task is the target's own: don't abort ourselves on drop.
                            t.task.take();
                            group
                                .removed
                                .insert(key.clone(), std::mem::take(&mut t.history));
                        }
                        return;
                    }
                }
                _ => return,
            }
        }
        let now = tokio::time::Instant::now();
        tokio::time::sleep(DRAIN_POLL.min(deadline.saturating_duration_since(now))).await;
    }
}

/// The state the load balancer's nodes route by: a draining target whose
/// deregistration has not yet propagated is still routed as what it was.
fn routing_state(t: &Target, now: tokio::time::Instant) -> TargetState {
    match (t.state, t.still_routed) {
        (TargetState::Draining, Some((before, until))) if now < until => before,
        (state, _) => state,
    }
}

/// Picks the next target for a request: round robin over the healthy targets.
/// With none healthy, ALB fails open only when the group "contains only
/// unhealthy registered targets" (ELB user guide, "Health checks for
/// Application Load Balancer target groups"): `initial` targets never get
/// traffic, and one `initial` target among unhealthy ones means no fail-open
/// (AWS does not document that mix; we take the harsher reading: 503).
fn pick(shared: &Shared, arn: &str) -> Option<(String, SocketAddr, Arc<AtomicUsize>)> {
    let mut st = lock(&shared.state);
    let group = st.groups.get_mut(arn)?;
    let now = tokio::time::Instant::now();
    let routed: Vec<(&Key, TargetState)> = group
        .targets
        .iter()
        .map(|(k, t)| (k, routing_state(t, now)))
        .filter(|(_, state)| *state != TargetState::Draining)
        .collect();
    let healthy: Vec<&Key> = routed
        .iter()
        .filter(|(_, state)| *state == TargetState::Healthy)
        .map(|(k, _)| *k)
        .collect();
    let candidates: Vec<&Key> = if !healthy.is_empty() {
        healthy
    } else if routed
        .iter()
        .all(|(_, state)| *state == TargetState::Unhealthy)
    {
        routed.iter().map(|(k, _)| *k).collect()
    } else {
        Vec::new()
    };
    if candidates.is_empty() {
        return None;
    }
    let key = candidates[group.next_pick % candidates.len()].clone();
    group.next_pick = group.next_pick.wrapping_add(1);
    let target = group.targets.get(&key)?;
    let in_flight = target.in_flight.clone();
    in_flight.fetch_add(1, Ordering::SeqCst);
    let ip = shared.fleet.address_of(&key.0);
    Some((key.0, SocketAddr::from((ip, key.1)), in_flight))
}

struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn is_hop_by_hop(name: &hyper::header::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

fn plain(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/html"),
    );
    response.headers_mut().insert(
        hyper::header::SERVER,
        hyper::header::HeaderValue::from_static("awselb/2.0"),
    );
    response
}

fn alb_error_page(status: StatusCode) -> Response<Full<Bytes>> {
    let title = match status {
        StatusCode::SERVICE_UNAVAILABLE => "503 Service Temporarily Unavailable",
        StatusCode::GATEWAY_TIMEOUT => "504 Gateway Time-out",
        _ => "502 Bad Gateway",
    };
    plain(
        status,
        &format!("<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"),
    )
}

async fn forward(
    shared: &Shared,
    target: &ListenerTarget,
    req: Request<Incoming>,
    client: SocketAddr,
    listener: SocketAddr,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
    };
    let arn: String = match target {
        ListenerTarget::Fixed(arn) => arn.to_string(),
        ListenerTarget::Moto(listener_arn) => {
            let chosen = lock(&shared.state)
                .routes
                .choose(listener_arn, tokio::time::Instant::now());
            match chosen {
                Some(arn) => arn,
                None => return alb_error_page(StatusCode::SERVICE_UNAVAILABLE),
            }
        }
    };
    let arn = arn.as_str();
    let Some((instance, addr, in_flight)) = pick(shared, arn) else {
        return alb_error_page(StatusCode::SERVICE_UNAVAILABLE);
    };
    let _guard = InFlight(in_flight);
    let chosen_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let sent = Instant::now();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    let mut builder = Request::builder().method(parts.method.clone()).uri(path);
    for (name, value) in parts.headers.iter() {
        if !is_hop_by_hop(name) && !name.as_str().starts_with("x-forwarded-") {
            builder = builder.header(name, value);
        }
    }
    let forwarded_for = match parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(prior) => format!("{prior}, {}", client.ip()),
        None => client.ip().to_string(),
    };
    builder = builder
        .header("x-forwarded-for", forwarded_for)
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-port", listener.port().to_string())
        .header(hyper::header::CONNECTION, "close");
    if !parts.headers.contains_key(hyper::header::HOST) {
        builder = builder.header(hyper::header::HOST, listener.to_string());
    }
    let Ok(request) = builder.body(Full::new(body)) else {
        return plain(StatusCode::BAD_REQUEST, "bad request");
    };
    let answer = send(addr, request, LISTENER_REQUEST_TIMEOUT).await;
    let served = match &answer {
        Ok(a) => metrics::Served::Answered {
            status: a.status,
            took: sent.elapsed(),
        },
        Err(_) => metrics::Served::NoAnswer,
    };
    lock(&shared.metrics).record(arn, chosen_at, served);
    if answer.is_ok() {
        let version = shared
            .fleet
            .running_version(&instance)
            .unwrap_or_else(|| "(unknown)".to_string());
        *lock(&shared.served_by_version).entry(version).or_insert(0) += 1;
    }
    match answer {
        Ok(answer) => {
            let mut response = Response::new(Full::new(answer.body));
            *response.status_mut() =
                StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
            for (name, value) in answer.headers.iter() {
                if !is_hop_by_hop(name) && name != hyper::header::CONTENT_LENGTH {
                    response.headers_mut().append(name, value.clone());
                }
            }
            response
        }
        Err(GetError::Timeout) => alb_error_page(StatusCode::GATEWAY_TIMEOUT),
        Err(_) => alb_error_page(StatusCode::BAD_GATEWAY),
    }
}

#[path = "load_balancer/metrics.rs"]
pub mod metrics;

#[path = "load_balancer/routing.rs"]
pub mod routing;

#[cfg(test)]
#[path = "load_balancer/tests.rs"]
mod tests;
