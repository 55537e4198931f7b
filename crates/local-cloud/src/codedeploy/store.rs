//! CodeDeploy's resources in memory, and their JSON as the API returns them.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// How long (in simulated seconds) the steps CodeDeploy performs itself take.
/// Script hooks take as long as their scripts; AllowTraffic and BlockTraffic
/// as long as the load balancer's health checks and draining.
#[derive(Debug, Clone)]
pub struct LifecycleTimings {
    /// From CreateDeployment to InProgress.
    pub queue: Duration,
    /// Launching the green Auto Scaling group's instances.
    pub provisioning: Duration,
    pub download_bundle: Duration,
    pub install: Duration,
    /// The longest AllowTraffic (or BlockTraffic) waits for a target to turn
    /// healthy (or finish draining): CodeDeploy's limit on one lifecycle
    /// event, "Maximum number of seconds until an individual deployment
    /// lifecycle event fails if not completed: 3600" (user guide, "CodeDeploy
    /// quotas").
    pub allow_traffic_timeout: Duration,
}

impl Default for LifecycleTimings {
    fn default() -> Self {
        Self {
            queue: Duration::from_secs(2),
            provisioning: Duration::from_secs(45),
            download_bundle: Duration::from_secs(3),
            install: Duration::from_secs(4),
            allow_traffic_timeout: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentStatus {
    Created,
    Queued,
    InProgress,
    Baking,
    Ready,
    Succeeded,
    Failed,
    Stopped,
}

impl DeploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "Created",
            Self::Queued => "Queued",
            Self::InProgress => "InProgress",
            Self::Baking => "Baking",
            Self::Ready => "Ready",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Stopped => "Stopped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Created" => Self::Created,
            "Queued" => Self::Queued,
            "InProgress" => Self::InProgress,
            "Baking" => Self::Baking,
            "Ready" => Self::Ready,
            "Succeeded" => Self::Succeeded,
            "Failed" => Self::Failed,
            "Stopped" => Self::Stopped,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Stopped)
    }
}

#[derive(Debug, Clone)]
pub struct App {
    pub id: String,
    pub create_time: f64,
    pub compute_platform: String,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub application: String,
    pub name: String,
    /// The deployment group's settings exactly as given (CreateDeploymentGroup,
    /// merged with UpdateDeploymentGroup), minus the names.
    pub settings: Map<String, Value>,
    pub last_successful: Option<String>,
    pub last_attempted: Option<String>,
    pub target_revision: Option<Value>,
}

impl Group {
    pub fn auto_scaling_groups(&self) -> Vec<String> {
        self.settings
            .get("autoScalingGroups")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn config_name(&self) -> String {
        self.settings
            .get("deploymentConfigName")
            .and_then(Value::as_str)
            .unwrap_or("CodeDeployDefault.OneAtATime")
            .to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    pub error_code: String,
    pub script_name: Option<String>,
    pub message: String,
    pub log_tail: String,
}

#[derive(Debug, Clone)]
pub struct LifecycleEvent {
    pub name: String,
    pub status: &'static str,
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub diagnostics: Option<Diagnostics>,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub instance_id: String,
    pub label: &'static str,
    pub status: &'static str,
    pub last_updated: f64,
    pub events: Vec<LifecycleEvent>,
}

pub const GREEN_EVENTS: [&str; 10] = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
];
pub const BLUE_EVENTS: [&str; 3] = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"];
/// A rollback puts traffic back on the original instances...
pub const ALLOW_EVENTS: [&str; 3] = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"];

impl Target {
    pub fn new(instance_id: &str, label: &'static str) -> Self {
        let names: &[&str] = if label == "Green" {
            &GREEN_EVENTS
        } else {
            &BLUE_EVENTS
        };
        Self::with_events(instance_id, label, names)
    }

    pub fn with_events(instance_id: &str, label: &'static str, names: &[&str]) -> Self {
        Self {
            instance_id: instance_id.to_string(),
            label,
            status: "Pending",
            last_updated: now_secs(),
            events: names
                .iter()
                .map(|n| LifecycleEvent {
                    name: n.to_string(),
                    status: "Pending",
                    start: None,
                    end: None,
                    diagnostics: None,
                })
                .collect(),
        }
    }

    pub fn event_mut(&mut self, name: &str) -> Option<&mut LifecycleEvent> {
        self.events.iter_mut().find(|e| e.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct Deployment {
    pub id: String,
    pub application: String,
    pub group: String,
    pub config_name: String,
    pub description: Option<String>,
    pub creator: &'static str,
    pub revision: Value,
    pub previous_revision: Option<Value>,
    pub status: DeploymentStatus,
    pub error: Option<(String, String)>,
    pub create_time: f64,
    pub start_time: Option<f64>,
    pub complete_time: Option<f64>,
    pub ignore_application_stop_failures: bool,
    pub auto_rollback: Value,
    pub rollback_info: Map<String, Value>,
    /// Group settings at creation time (deployment style, blue/green, LB info).
    pub group_settings: Map<String, Value>,
    pub original_asgs: Vec<String>,
    pub green_asg: Option<String>,
    /// `minimumHealthyHosts` of the deployment's config, fixed at creation.
    pub min_healthy: super::health::MinimumHealthy,
    /// Replacement instances registered with the target groups so far (their
    /// AllowTraffic started): what a rollback must deregister.
    pub green_registered: Vec<String>,
    pub traffic_moved: bool,
    pub termination_wait_started: bool,
    pub status_messages: Vec<String>,
    pub targets: BTreeMap<String, Target>,
    pub target_order: Vec<String>,
}

impl Deployment {
    pub fn overview(&self) -> Value {
        let mut counts: BTreeMap<&str, u64> = [
            ("Pending", 0),
            ("InProgress", 0),
            ("Succeeded", 0),
            ("Failed", 0),
            ("Skipped", 0),
            ("Ready", 0),
        ]
        .into_iter()
        .collect();
        for t in self.targets.values() {
            if let Some(c) = counts.get_mut(t.status) {
                *c += 1;
            }
        }
        json!(counts)
    }

    pub fn target_arn(&self, region: &str, account: &str, instance_id: &str) -> String {
        format!("arn:aws:ec2:{region}:{account}:instance/{instance_id}")
    }

    pub fn info(&self) -> Value {
        let mut info = json!({
            "applicationName": self.application,
            "deploymentGroupName": self.group,
            "deploymentConfigName": self.config_name,
            "deploymentId": self.id,
            "revision": self.revision,
            "status": self.status.as_str(),
            "createTime": self.create_time,
            "creator": self.creator,
            "ignoreApplicationStopFailures": self.ignore_application_stop_failures,
            "autoRollbackConfiguration": self.auto_rollback,
            "updateOutdatedInstancesOnly": false,
            "instanceTerminationWaitTimeStarted": self.termination_wait_started,
            "deploymentOverview": self.overview(),
            "deploymentStatusMessages": self.status_messages,
            "computePlatform": "Server",
            "fileExistsBehavior": "DISALLOW",
            "targetInstances": { "autoScalingGroups": self.original_asgs },
        });
        let obj = match info.as_object_mut() {
            Some(o) => o,
            None => return info,
        };
        for key in [
            "deploymentStyle",
            "blueGreenDeploymentConfiguration",
            "loadBalancerInfo",
        ] {
            if let Some(v) = self.group_settings.get(key) {
                obj.insert(key.to_string(), v.clone());
            }
        }
        if let Some(d) = &self.description {
            obj.insert("description".into(), json!(d));
        }
        if let Some(p) = &self.previous_revision {
            obj.insert("previousRevision".into(), p.clone());
        }
        if let Some(t) = self.start_time {
            obj.insert("startTime".into(), json!(t));
        }
        if let Some(t) = self.complete_time {
            obj.insert("completeTime".into(), json!(t));
        }
        if let Some((code, message)) = &self.error {
            obj.insert(
                "errorInformation".into(),
                json!({ "code": code, "message": message }),
            );
        }
        if !self.rollback_info.is_empty() {
            obj.insert(
                "rollbackInfo".into(),
                Value::Object(self.rollback_info.clone()),
            );
        }
        info
    }

    pub fn target_json(&self, region: &str, account: &str, t: &Target) -> Value {
        let events: Vec<Value> = t
            .events
            .iter()
            .map(|e| {
                let mut ev = json!({ "lifecycleEventName": e.name, "status": e.status });
                if let Some(o) = ev.as_object_mut() {
                    if let Some(s) = e.start {
                        o.insert("startTime".into(), json!(s));
                    }
                    if let Some(s) = e.end {
                        o.insert("endTime".into(), json!(s));
                    }
                    if let Some(d) = &e.diagnostics {
                        let mut diag = json!({
                            "errorCode": d.error_code,
                            "message": d.message,
                            "logTail": d.log_tail,
                        });
                        if let (Some(dobj), Some(script)) = (diag.as_object_mut(), &d.script_name) {
                            dobj.insert("scriptName".into(), json!(script));
                        }
                        o.insert("diagnostics".into(), diag);
                    }
                }
                ev
            })
            .collect();
        json!({
            "deploymentTargetType": "InstanceTarget",
            "instanceTarget": {
                "deploymentId": self.id,
                "targetId": t.instance_id,
                "targetArn": self.target_arn(region, account, &t.instance_id),
                "status": t.status,
                "lastUpdatedAt": t.last_updated,
                "lifecycleEvents": events,
                "instanceLabel": t.label,
            }
        })
    }
}

/// A custom deployment configuration (CreateDeploymentConfig).
#[derive(Debug, Clone)]
pub struct CustomConfig {
    pub id: String,
    pub min_healthy: super::health::MinimumHealthy,
    pub create_time: f64,
}

#[derive(Debug, Default)]
pub struct Store {
    pub apps: BTreeMap<String, App>,
    /// Custom deployment configurations by name.
    pub configs: BTreeMap<String, CustomConfig>,
    /// Keyed by (application, group).
    pub groups: BTreeMap<(String, String), Group>,
    pub deployments: BTreeMap<String, Deployment>,
    /// Deployment ids in creation order.
    pub order: Vec<String>,
    /// Tags of applications and deployment groups, by ARN (`{"Key","Value"}`).
    pub tags: BTreeMap<String, Vec<Value>>,
}

impl Store {
    pub fn active_deployment(&self, application: &str, group: &str) -> Option<&Deployment> {
        self.deployments
            .values()
            .find(|d| d.application == application && d.group == group && !d.status.is_terminal())
    }

    pub fn group_json(&self, g: &Group) -> Value {
        let mut info = Value::Object(g.settings.clone());
        if let Some(o) = info.as_object_mut() {
            o.insert("applicationName".into(), json!(g.application));
            o.insert("deploymentGroupId".into(), json!(g.id));
            o.insert("deploymentGroupName".into(), json!(g.name));
            o.insert("deploymentConfigName".into(), json!(g.config_name()));
            o.insert("computePlatform".into(), json!("Server"));
            let asgs: Vec<Value> = g
                .auto_scaling_groups()
                .iter()
                .map(|n| {
                    json!({
                        "name": n,
                        "hook": format!("CodeDeploy-managed-automatic-launch-deployment-hook-{}-{}", g.name, &g.id[..8.min(g.id.len())]),
                    })
                })
                .collect();
            o.insert("autoScalingGroups".into(), Value::Array(asgs));
            if let Some(rev) = &g.target_revision {
                o.insert("targetRevision".into(), rev.clone());
            }
            for (field, id) in [
                ("lastSuccessfulDeployment", &g.last_successful),
                ("lastAttemptedDeployment", &g.last_attempted),
            ] {
                if let Some(d) = id.as_ref().and_then(|id| self.deployments.get(id)) {
                    let mut summary = json!({
                        "deploymentId": d.id,
                        "status": d.status.as_str(),
                        "createTime": d.create_time,
                    });
                    if let (Some(s), Some(t)) = (summary.as_object_mut(), d.complete_time) {
                        s.insert("endTime".into(), json!(t));
                    }
                    o.insert(field.into(), summary);
                }
            }
        }
        info
    }
}
