//! The CodeDeploy API operations: request validation and answers in AWS's
//! awsJson1_1 shapes, errors as `{"__type": "<Code>Exception", "message": ...}`.

use super::health::{self, MinimumHealthy};
use super::store::{now_secs, App, CustomConfig, Deployment, DeploymentStatus, Group, Store};
use super::CodeDeploy;
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub(super) struct ApiError {
    code: &'static str,
    message: String,
}

fn err(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        code,
        message: message.into(),
    }
}

type ApiResult = Result<Value, ApiError>;

pub(super) async fn handle(cd: &Arc<CodeDeploy>, operation: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let input: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return render(Err(err(
                    "SerializationException",
                    format!("request body is not JSON: {e}"),
                )))
            }
        }
    };
    let result = match operation {
        "CreateApplication" => cd.create_application(&input),
        "GetApplication" => cd.get_application(&input),
        "ListApplications" => cd.list_applications(),
        "DeleteApplication" => cd.delete_application(&input),
        "CreateDeploymentGroup" => cd.create_deployment_group(&input),
        "GetDeploymentGroup" => cd.get_deployment_group(&input),
        "UpdateDeploymentGroup" => cd.update_deployment_group(&input),
        "ListDeploymentGroups" => cd.list_deployment_groups(&input),
        "DeleteDeploymentGroup" => cd.delete_deployment_group(&input),
        "ListTagsForResource" => cd.list_tags_for_resource(&input),
        "TagResource" => cd.tag_resource(&input),
        "GetDeploymentConfig" => cd.get_deployment_config(&input),
        "CreateDeploymentConfig" => cd.create_deployment_config(&input),
        "DeleteDeploymentConfig" => cd.delete_deployment_config(&input),
        "ListDeploymentConfigs" => cd.list_deployment_configs(),
        "CreateDeployment" => cd.create_deployment(&input).await,
        "GetDeployment" => cd.get_deployment(&input),
        "BatchGetDeployments" => cd.batch_get_deployments(&input),
        "ListDeployments" => cd.list_deployments(&input),
        "ListDeploymentTargets" => cd.list_deployment_targets(&input),
        "BatchGetDeploymentTargets" => cd.batch_get_deployment_targets(&input),
        "GetDeploymentTarget" => cd.get_deployment_target(&input),
        "ContinueDeployment" => cd.continue_deployment(&input),
        "StopDeployment" => cd.stop_deployment(&input),
        other => Err(err(
            "UnknownOperationException",
            format!("greenlight's local CodeDeploy does not emulate {other}"),
        )),
    };
    render(result)
}

fn render(result: ApiResult) -> (u16, Vec<u8>) {
    match result {
        Ok(v) => (200, v.to_string().into_bytes()),
        Err(e) => (
            if e.code == "InternalFailure" {
                500
            } else {
                400
            },
            json!({ "__type": e.code, "message": e.message })
                .to_string()
                .into_bytes(),
        ),
    }
}

fn string_field<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn application_name(input: &Value) -> Result<&str, ApiError> {
    string_field(input, "applicationName").ok_or_else(|| {
        err(
            "ApplicationNameRequiredException",
            "The minimum number of required application names was not specified.",
        )
    })
}

fn deployment_group_name(input: &Value) -> Result<&str, ApiError> {
    string_field(input, "deploymentGroupName").ok_or_else(|| {
        err(
            "DeploymentGroupNameRequiredException",
            "The deployment group name was not specified.",
        )
    })
}

fn deployment_id(input: &Value) -> Result<&str, ApiError> {
    let id = string_field(input, "deploymentId").ok_or_else(|| {
        err(
            "DeploymentIdRequiredException",
            "At least one deployment ID must be specified.",
        )
    })?;
    validate_deployment_id(id)?;
    Ok(id)
}

fn validate_deployment_id(id: &str) -> Result<(), ApiError> {
    let ok = id.len() == 11
        && id.starts_with("d-")
        && id[2..]
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(err(
            "InvalidDeploymentIdException",
            format!("Specified DeploymentId is not in the valid format: {id}"),
        ))
    }
}

/// "Maximum number of characters in a deployment description: 100"
/// (CodeDeploy user guide, "CodeDeploy quotas"; the API model sets no bound).
const MAX_DESCRIPTION: usize = 100;
/// "Custom deployment configurations per account: 50" (same quotas page).
const MAX_CUSTOM_CONFIGS: usize = 50;

fn config_name(input: &Value) -> Result<&str, ApiError> {
    string_field(input, "deploymentConfigName").ok_or_else(|| {
        err(
            "DeploymentConfigNameRequiredException",
            "The deployment configuration name was not specified.",
        )
    })
}

fn no_config(name: &str) -> ApiError {
    err(
        "DeploymentConfigDoesNotExistException",
        format!("No deployment configuration found for name: {name}"),
    )
}

/// A predefined or custom config's minimum healthy hosts.
fn resolve_config(s: &Store, name: &str) -> Option<MinimumHealthy> {
    health::predefined(name).or_else(|| s.configs.get(name).map(|c| c.min_healthy))
}

fn config_info(name: &str, id: &str, min: MinimumHealthy, create_time: f64) -> Value {
    json!({ "deploymentConfigInfo": {
        "deploymentConfigId": id,
        "deploymentConfigName": name,
        "minimumHealthyHosts": { "type": min.kind(), "value": min.value() },
        "createTime": create_time,
        "computePlatform": "Server",
    }})
}

impl CodeDeploy {
    fn get_deployment_config(&self, input: &Value) -> ApiResult {
        let name = config_name(input)?;
        if let Some(min) = health::predefined(name) {
            let id = format!("00000000-0000-0000-0000-00000000000{}", name.len() % 10);
            return Ok(config_info(name, &id, min, 1_400_000_000.0));
        }
        self.with_store(|s| {
            let c = s.configs.get(name).ok_or_else(|| no_config(name))?;
            Ok(config_info(name, &c.id, c.min_healthy, c.create_time))
        })
    }

    /// CreateDeploymentConfig for the Server platform: `minimumHealthyHosts`
    /// HOST_COUNT (≥ 0) or FLEET_PERCENT (0..=99 as the console allows; AWS
    /// does not document the API's bound, harsher reading: 100 % is refused
    /// because it could never deploy).
    fn create_deployment_config(&self, input: &Value) -> ApiResult {
        let name = config_name(input)?;
        if name.len() > 100 || name.starts_with("CodeDeployDefault.") {
            return Err(err(
                "InvalidDeploymentConfigNameException",
                format!("The deployment configuration name {name} is invalid: at most 100 characters, and the CodeDeployDefault. prefix is reserved."),
            ));
        }
        let platform = string_field(input, "computePlatform").unwrap_or("Server");
        if platform != "Server" {
            return Err(err(
                "InvalidComputePlatformException",
                format!("greenlight's local CodeDeploy emulates the Server (EC2) platform only, not {platform}"),
            ));
        }
        let min = input.get("minimumHealthyHosts");
        let kind = min.and_then(|m| m.get("type")).and_then(Value::as_str);
        let value = min.and_then(|m| m.get("value")).and_then(Value::as_i64);
        let invalid = |why: &str| {
            err(
                "InvalidMinimumHealthyHostValueException",
                format!(
                    "The minimum healthy instance value was specified in an invalid format: {why}"
                ),
            )
        };
        let min = match (kind, value) {
            (Some("HOST_COUNT"), Some(v)) if (0..=i64::from(u32::MAX)).contains(&v) => {
                MinimumHealthy::HostCount(v as u32)
            }
            (Some("FLEET_PERCENT"), Some(v)) if (0..=99).contains(&v) => {
                MinimumHealthy::FleetPercent(v as u32)
            }
            (Some("HOST_COUNT") | Some("FLEET_PERCENT"), _) => {
                return Err(invalid(
                    "HOST_COUNT takes a value ≥ 0, FLEET_PERCENT a value from 0 to 99",
                ))
            }
            _ => return Err(invalid("type must be HOST_COUNT or FLEET_PERCENT")),
        };
        let id = self.uuid_like();
        self.with_store(|s| {
            if s.configs.contains_key(name) {
                return Err(err(
                    "DeploymentConfigAlreadyExistsException",
                    format!("A deployment configuration with the name {name} already exists."),
                ));
            }
            if s.configs.len() >= MAX_CUSTOM_CONFIGS {
                return Err(err(
                    "DeploymentConfigLimitExceededException",
                    "The deployment configurations limit (50) was exceeded.",
                ));
            }
            s.configs.insert(
                name.to_string(),
                CustomConfig {
                    id: id.clone(),
                    min_healthy: min,
                    create_time: now_secs(),
                },
            );
            Ok(json!({ "deploymentConfigId": id }))
        })
    }

    fn delete_deployment_config(&self, input: &Value) -> ApiResult {
        let name = config_name(input)?;
        if health::predefined(name).is_some() {
            return Err(err(
                "InvalidOperationException",
                format!("The predefined deployment configuration {name} cannot be deleted."),
            ));
        }
        self.with_store(|s| {
            let in_use = s.groups.values().any(|g| g.config_name() == name)
                || s.deployments
                    .values()
                    .any(|d| d.config_name == name && !d.status.is_terminal());
            if in_use {
                return Err(err(
                    "DeploymentConfigInUseException",
                    format!("The deployment configuration {name} is still in use."),
                ));
            }
            // Deleting a config that does not exist succeeds, as on AWS.
            s.configs.remove(name);
            Ok(json!({}))
        })
    }

    fn list_deployment_configs(&self) -> ApiResult {
        self.with_store(|s| {
            let mut names: Vec<String> = [
                "CodeDeployDefault.AllAtOnce",
                "CodeDeployDefault.HalfAtATime",
                "CodeDeployDefault.OneAtATime",
            ]
            .iter()
            .map(|n| n.to_string())
            .collect();
            names.extend(s.configs.keys().cloned());
            Ok(json!({ "deploymentConfigsList": names }))
        })
    }
}

impl CodeDeploy {
    fn create_application(&self, input: &Value) -> ApiResult {
        let name = application_name(input)?;
        let platform = string_field(input, "computePlatform").unwrap_or("Server");
        if platform != "Server" {
            return Err(err(
                "InvalidComputePlatformException",
                format!("greenlight's local CodeDeploy emulates the Server (EC2) platform only, not {platform}"),
            ));
        }
        let tags = request_tags(input)?;
        let arn = self.application_arn(name);
        let id = self.uuid_like();
        self.with_store(|s| {
            if s.apps.contains_key(name) {
                return Err(err(
                    "ApplicationAlreadyExistsException",
                    format!("An application with the name {name} already exists for your account"),
                ));
            }
            if !tags.is_empty() {
                s.tags.insert(arn, tags);
            }
            s.apps.insert(
                name.to_string(),
                App {
                    id: id.clone(),
                    create_time: now_secs(),
                    compute_platform: platform.to_string(),
                },
            );
            Ok(json!({ "applicationId": id }))
        })
    }

    fn get_application(&self, input: &Value) -> ApiResult {
        let name = application_name(input)?;
        self.with_store(|s| {
            let app = s.apps.get(name).ok_or_else(|| no_application(name))?;
            Ok(json!({ "application": {
                "applicationId": app.id,
                "applicationName": name,
                "createTime": app.create_time,
                "linkedToGitHub": false,
                "computePlatform": app.compute_platform,
            }}))
        })
    }

    fn list_applications(&self) -> ApiResult {
        self.with_store(|s| Ok(json!({ "applications": s.apps.keys().collect::<Vec<_>>() })))
    }

    /// DeleteApplication also deletes its deployment groups; an application
    /// that does not exist is no error (the API reference lists no
    /// does-not-exist error for it).
    fn delete_application(&self, input: &Value) -> ApiResult {
        let name = application_name(input)?;
        let app_arn = self.application_arn(name);
        let group_prefix = self.group_arn(name, "");
        self.with_store(|s| {
            s.apps.remove(name);
            s.groups.retain(|(app, _), _| app != name);
            s.tags
                .retain(|arn, _| *arn != app_arn && !arn.starts_with(&group_prefix));
            Ok(json!({}))
        })
    }

    fn create_deployment_group(&self, input: &Value) -> ApiResult {
        let app = application_name(input)?;
        let name = deployment_group_name(input)?;
        if string_field(input, "serviceRoleArn").is_none() {
            return Err(err(
                "RoleRequiredException",
                "The service role ARN was not specified.",
            ));
        }
        let mut settings = group_settings(input)?;
        let tags = request_tags(input)?;
        settings.remove("tags");
        let arn = self.group_arn(app, name);
        let id = self.uuid_like();
        self.with_store(|s| {
            if !s.apps.contains_key(app) {
                return Err(no_application(app));
            }
            let key = (app.to_string(), name.to_string());
            if s.groups.contains_key(&key) {
                return Err(err(
                    "DeploymentGroupAlreadyExistsException",
                    format!("A deployment group with the name {name} already exists for the application {app}"),
                ));
            }
            if !tags.is_empty() {
                s.tags.insert(arn, tags);
            }
            s.groups.insert(
                key,
                Group {
                    id: id.clone(),
                    application: app.to_string(),
                    name: name.to_string(),
                    settings,
                    last_successful: None,
                    last_attempted: None,
                    target_revision: None,
                },
            );
            Ok(json!({ "deploymentGroupId": id }))
        })
    }

    fn get_deployment_group(&self, input: &Value) -> ApiResult {
        let app = application_name(input)?;
        let name = deployment_group_name(input)?;
        self.with_store(|s| {
            if !s.apps.contains_key(app) {
                return Err(no_application(app));
            }
            let group = s
                .groups
                .get(&(app.to_string(), name.to_string()))
                .ok_or_else(|| no_group(name))?;
            Ok(json!({ "deploymentGroupInfo": s.group_json(group) }))
        })
    }

    fn update_deployment_group(&self, input: &Value) -> ApiResult {
        let app = application_name(input)?;
        let current = string_field(input, "currentDeploymentGroupName").ok_or_else(|| {
            err(
                "DeploymentGroupNameRequiredException",
                "The current deployment group name was not specified.",
            )
        })?;
        let mut changes = group_settings(input)?;
        changes.remove("currentDeploymentGroupName");
        let new_name = changes
            .remove("newDeploymentGroupName")
            .and_then(|v| v.as_str().map(str::to_string));
        self.with_store(|s| {
            if !s.apps.contains_key(app) {
                return Err(no_application(app));
            }
            let key = (app.to_string(), current.to_string());
            let mut group = s.groups.remove(&key).ok_or_else(|| no_group(current))?;
            for (k, v) in changes {
                group.settings.insert(k, v);
            }
            if let Some(n) = new_name {
                group.name = n;
            }
            s.groups
                .insert((app.to_string(), group.name.clone()), group);
            Ok(json!({ "hooksNotCleanedUp": [] }))
        })
    }

    fn list_deployment_groups(&self, input: &Value) -> ApiResult {
        let app = application_name(input)?;
        self.with_store(|s| {
            if !s.apps.contains_key(app) {
                return Err(no_application(app));
            }
            let names: Vec<&String> = s
                .groups
                .keys()
                .filter(|(a, _)| a == app)
                .map(|(_, g)| g)
                .collect();
            Ok(json!({ "applicationName": app, "deploymentGroups": names }))
        })
    }

    /// DeleteDeploymentGroup: a group (or application) that does not exist
    /// is no error (CodeDeploy API reference DeleteDeploymentGroup lists only
    /// name-required, invalid-name and role errors).
    fn delete_deployment_group(&self, input: &Value) -> ApiResult {
        let app = application_name(input)?;
        let name = deployment_group_name(input)?;
        let arn = self.group_arn(app, name);
        self.with_store(|s| {
            s.groups.remove(&(app.to_string(), name.to_string()));
            s.tags.remove(&arn);
            Ok(json!({ "hooksNotCleanedUp": [] }))
        })
    }

    fn application_arn(&self, application: &str) -> String {
        format!(
            "arn:aws:codedeploy:{}:{}:application:{application}",
            self.deps.region, self.deps.account_id
        )
    }

    fn group_arn(&self, application: &str, group: &str) -> String {
        format!(
            "arn:aws:codedeploy:{}:{}:deploymentgroup:{application}/{group}",
            self.deps.region, self.deps.account_id
        )
    }

    /// The application or deployment group an ARN names, if it exists:
    /// `InvalidArnException` for a malformed ARN, `ArnNotSupportedException`
    /// for another resource type, the does-not-exist errors otherwise
    /// (CodeDeploy API reference ListTagsForResource, TagResource).
    fn tagged_resource(&self, input: &Value) -> Result<String, ApiError> {
        let arn = string_field(input, "ResourceArn").ok_or_else(|| {
            err(
                "ResourceArnRequiredException",
                "The ARN of a resource is required, but was not found.",
            )
        })?;
        let prefix = format!(
            "arn:aws:codedeploy:{}:{}:",
            self.deps.region, self.deps.account_id
        );
        let rest = arn.strip_prefix(&prefix).ok_or_else(|| {
            err(
                "InvalidArnException",
                format!("The specified ARN {arn} is not in a valid format."),
            )
        })?;
        let (kind, name) = rest.split_once(':').ok_or_else(|| {
            err(
                "InvalidArnException",
                format!("The specified ARN {arn} is not in a valid format."),
            )
        })?;
        self.with_store(|s| match kind {
            "application" if s.apps.contains_key(name) => Ok(arn.to_string()),
            "application" => Err(no_application(name)),
            "deploymentgroup" => {
                let (app, group) = name.split_once('/').ok_or_else(|| {
                    err("InvalidArnException", format!("The specified ARN {arn} is not in a valid format."))
                })?;
                if !s.apps.contains_key(app) {
                    return Err(no_application(app));
                }
                if s.groups.contains_key(&(app.to_string(), group.to_string())) {
                    Ok(arn.to_string())
                } else {
                    Err(no_group(group))
                }
            }
            _ => Err(err(
                "ArnNotSupportedException",
                format!("The specified ARN {arn} is not supported: greenlight's local CodeDeploy tags applications and deployment groups."),
            )),
        })
    }

    fn list_tags_for_resource(&self, input: &Value) -> ApiResult {
        let arn = self.tagged_resource(input)?;
        self.with_store(|s| Ok(json!({ "Tags": s.tags.get(&arn).cloned().unwrap_or_default() })))
    }

    fn tag_resource(&self, input: &Value) -> ApiResult {
        let arn = self.tagged_resource(input)?;
        let tags = request_tags_field(input, "Tags")?;
        if tags.is_empty() {
            return Err(err("TagRequiredException", "A tag was not specified."));
        }
        self.with_store(|s| {
            let existing = s.tags.entry(arn).or_default();
            for tag in tags {
                existing.retain(|t| t.get("Key") != tag.get("Key"));
                existing.push(tag);
            }
            Ok(json!({}))
        })
    }

    async fn create_deployment(self: &Arc<Self>, input: &Value) -> ApiResult {
        let app = application_name(input)?;
        let group_name = deployment_group_name(input)?;
        let revision = input.get("revision").cloned().ok_or_else(|| {
            err(
                "RevisionRequiredException",
                "The revision ID was not specified.",
            )
        })?;
        validate_revision(&revision)?;
        if let Some(d) = string_field(input, "description") {
            if d.chars().count() > MAX_DESCRIPTION {
                return Err(err(
                    "DescriptionTooLongException",
                    format!(
                        "The description is too long: {} characters, at most {MAX_DESCRIPTION}.",
                        d.chars().count()
                    ),
                ));
            }
        }
        let asgs = self.with_store(|s| {
            if !s.apps.contains_key(app) {
                return Err(no_application(app));
            }
            s.groups
                .get(&(app.to_string(), group_name.to_string()))
                .map(|g| {
                    let copies = g
                        .settings
                        .get("blueGreenDeploymentConfiguration")
                        .and_then(|b| b.get("greenFleetProvisioningOption"))
                        .and_then(|o| o.get("action"))
                        .and_then(Value::as_str)
                        == Some("COPY_AUTO_SCALING_GROUP");
                    (copies, g.auto_scaling_groups())
                })
                .ok_or_else(|| no_group(group_name))
        })?;
        // "If you choose to copy an Auto Scaling group, you can specify only
        // one" (CodeDeploy user guide, "Create a deployment group for an
        // EC2/On-Premises blue/green deployment"): CreateDeployment answers
        // InvalidAutoScalingGroupException otherwise.
        if asgs.0 && asgs.1.len() > 1 {
            return Err(err(
                "InvalidAutoScalingGroupException",
                format!(
                    "A blue/green deployment that copies an Auto Scaling group needs exactly one Auto Scaling group in the deployment group; {group_name} has {}: {}.",
                    asgs.1.len(),
                    asgs.1.join(", ")
                ),
            ));
        }
        self.check_revision_exists(&revision).await?;
        let id = self.next_id("d-");
        let deployment = self.with_store(|s| {
            if !s.apps.contains_key(app) {
                return Err(no_application(app));
            }
            let group = s
                .groups
                .get(&(app.to_string(), group_name.to_string()))
                .ok_or_else(|| no_group(group_name))?
                .clone();
            if let Some(active) = s.active_deployment(app, group_name) {
                return Err(err(
                    "DeploymentLimitExceededException",
                    format!(
                        "The Deployment Group '{group_name}' already has an active Deployment '{}'",
                        active.id
                    ),
                ));
            }
            let config_name = match string_field(input, "deploymentConfigName") {
                Some(n) => n.to_string(),
                None => group.config_name(),
            };
            let min_healthy =
                resolve_config(s, &config_name).ok_or_else(|| no_config(&config_name))?;
            let auto_rollback = input
                .get("autoRollbackConfiguration")
                .or_else(|| group.settings.get("autoRollbackConfiguration"))
                .cloned()
                .unwrap_or_else(|| json!({ "enabled": false }));
            let previous_revision = group.target_revision.clone();
            let deployment = Deployment {
                id: id.clone(),
                application: app.to_string(),
                group: group_name.to_string(),
                config_name,
                description: string_field(input, "description").map(str::to_string),
                creator: "user",
                revision,
                previous_revision,
                status: DeploymentStatus::Created,
                error: None,
                create_time: now_secs(),
                start_time: None,
                complete_time: None,
                ignore_application_stop_failures: input
                    .get("ignoreApplicationStopFailures")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                auto_rollback,
                rollback_info: Map::new(),
                group_settings: group.settings.clone(),
                original_asgs: group.auto_scaling_groups(),
                green_asg: None,
                min_healthy,
                green_registered: Vec::new(),
                traffic_moved: false,
                termination_wait_started: false,
                status_messages: Vec::new(),
                targets: Default::default(),
                target_order: Vec::new(),
            };
            if let Some(g) = s.groups.get_mut(&(app.to_string(), group_name.to_string())) {
                g.last_attempted = Some(id.clone());
            }
            s.order.push(id.clone());
            s.deployments.insert(id.clone(), deployment.clone());
            Ok(deployment)
        })?;
        self.spawn_run(deployment.id.clone());
        Ok(json!({ "deploymentId": deployment.id }))
    }

    /// RevisionDoesNotExistException when the S3 object (and version, and
    /// eTag when given) is not there: CodeDeploy checks the revision when the
    /// deployment is created (API reference, CreateDeployment errors).
    async fn check_revision_exists(&self, revision: &Value) -> Result<(), ApiError> {
        let s3 = &revision["s3Location"];
        let field = |n: &str| s3.get(n).and_then(Value::as_str).filter(|v| !v.is_empty());
        let (Some(bucket), Some(key)) = (field("bucket"), field("key")) else {
            return Ok(()); // validate_revision already refused it
        };
        let mut head = self.s3.head_object().bucket(bucket).key(key);
        if let Some(v) = field("version") {
            head = head.version_id(v);
        }
        let missing = |why: String| {
            err(
                "RevisionDoesNotExistException",
                format!("The named revision s3://{bucket}/{key} does not exist: {why}"),
            )
        };
        match head.send().await {
            Ok(object) => match field("eTag") {
                Some(expected)
                    if object.e_tag().unwrap_or_default().trim_matches('"')
                        != expected.trim_matches('"') =>
                {
                    Err(missing(format!(
                        "its ETag is {}, the revision names {expected}",
                        object.e_tag().unwrap_or_default()
                    )))
                }
                _ => Ok(()),
            },
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                if matches!(status, Some(403 | 404)) {
                    Err(missing(greenlight_aws::describe_error(&e)))
                } else {
                    Err(err(
                        "InternalFailure",
                        format!(
                            "greenlight's local CodeDeploy could not read the revision s3://{bucket}/{key} from S3: {}",
                            greenlight_aws::describe_error(&e)
                        ),
                    ))
                }
            }
        }
    }

    fn get_deployment(&self, input: &Value) -> ApiResult {
        let id = deployment_id(input)?;
        self.with_store(|s| {
            let d = s.deployments.get(id).ok_or_else(|| no_deployment(id))?;
            Ok(json!({ "deploymentInfo": d.info() }))
        })
    }

    fn batch_get_deployments(&self, input: &Value) -> ApiResult {
        let ids: Vec<&str> = input
            .get("deploymentIds")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if ids.is_empty() {
            return Err(err(
                "DeploymentIdRequiredException",
                "At least one deployment ID must be specified.",
            ));
        }
        if ids.len() > 25 {
            return Err(err(
                "BatchLimitExceededException",
                "The maximum number of names or IDs allowed for this request (25) was exceeded.",
            ));
        }
        for id in &ids {
            validate_deployment_id(id)?;
        }
        self.with_store(|s| {
            let infos: Vec<Value> = ids
                .iter()
                .filter_map(|id| s.deployments.get(*id).map(Deployment::info))
                .collect();
            Ok(json!({ "deploymentsInfo": infos }))
        })
    }

    fn list_deployments(&self, input: &Value) -> ApiResult {
        let app = string_field(input, "applicationName");
        let group = string_field(input, "deploymentGroupName");
        if group.is_some() && app.is_none() {
            return Err(err(
                "ApplicationNameRequiredException",
                "If the deployment group name is specified, the application name must also be specified.",
            ));
        }
        let statuses: Option<Vec<DeploymentStatus>> = match input.get("includeOnlyStatuses") {
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for v in a {
                    let s = v.as_str().unwrap_or_default();
                    out.push(DeploymentStatus::parse(s).ok_or_else(|| {
                        err(
                            "InvalidDeploymentStatusException",
                            format!("The deployment status {s} is not valid."),
                        )
                    })?);
                }
                Some(out)
            }
            _ => None,
        };
        let range = input.get("createTimeRange");
        let start = range.and_then(|r| r.get("start")).and_then(Value::as_f64);
        let end = range.and_then(|r| r.get("end")).and_then(Value::as_f64);
        self.with_store(|s| {
            if let Some(a) = app {
                if !s.apps.contains_key(a) {
                    return Err(no_application(a));
                }
                if let Some(g) = group {
                    if !s.groups.contains_key(&(a.to_string(), g.to_string())) {
                        return Err(no_group(g));
                    }
                }
            }
            // Newest first, as the console lists them.
            let ids: Vec<&String> = s
                .order
                .iter()
                .rev()
                .filter(|id| {
                    s.deployments.get(*id).is_some_and(|d| {
                        app.is_none_or(|a| d.application == a)
                            && group.is_none_or(|g| d.group == g)
                            && statuses.as_ref().is_none_or(|st| st.contains(&d.status))
                            && start.is_none_or(|t| d.create_time >= t)
                            && end.is_none_or(|t| d.create_time <= t)
                    })
                })
                .collect();
            Ok(json!({ "deployments": ids }))
        })
    }

    fn list_deployment_targets(&self, input: &Value) -> ApiResult {
        let id = deployment_id(input)?;
        let filters = input.get("targetFilters");
        let wanted = |key: &str| -> Option<Vec<String>> {
            filters
                .and_then(|f| f.get(key))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
        };
        let statuses = wanted("TargetStatus");
        let labels = wanted("ServerInstanceLabel");
        self.with_store(|s| {
            let d = s.deployments.get(id).ok_or_else(|| no_deployment(id))?;
            // A deployment has no targets before it starts (API reference,
            // ListDeploymentTargets: DeploymentNotStartedException).
            if matches!(
                d.status,
                DeploymentStatus::Created | DeploymentStatus::Queued
            ) {
                return Err(err(
                    "DeploymentNotStartedException",
                    format!("The deployment {id} has not started."),
                ));
            }
            let ids: Vec<&String> = d
                .target_order
                .iter()
                .filter(|t| {
                    d.targets.get(*t).is_some_and(|t| {
                        statuses
                            .as_ref()
                            .is_none_or(|st| st.iter().any(|x| x == t.status))
                            && labels
                                .as_ref()
                                .is_none_or(|l| l.iter().any(|x| x == t.label))
                    })
                })
                .collect();
            Ok(json!({ "targetIds": ids }))
        })
    }

    fn batch_get_deployment_targets(&self, input: &Value) -> ApiResult {
        let id = deployment_id(input)?;
        let ids: Vec<&str> = input
            .get("targetIds")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if ids.is_empty() {
            return Err(err(
                "DeploymentTargetIdRequiredException",
                "A deployment target ID was not provided.",
            ));
        }
        if ids.len() > 25 {
            return Err(err(
                "DeploymentTargetListSizeExceededException",
                "The maximum number of targets that can be associated with an Amazon ECS or AWS Lambda deployment was exceeded. The target list of both types of deployments must have exactly one item. This exception does not apply to EC2/On-premises deployments.",
            ));
        }
        let (region, account) = (&self.deps.region, &self.deps.account_id);
        self.with_store(|s| {
            let d = s.deployments.get(id).ok_or_else(|| no_deployment(id))?;
            let mut out = Vec::new();
            for t in &ids {
                let target = d.targets.get(*t).ok_or_else(|| {
                    err(
                        "DeploymentTargetDoesNotExistException",
                        format!("The provided target ID does not belong to the attempted deployment: {t}"),
                    )
                })?;
                out.push(d.target_json(region, account, target));
            }
            Ok(json!({ "deploymentTargets": out }))
        })
    }

    fn get_deployment_target(&self, input: &Value) -> ApiResult {
        let id = deployment_id(input)?;
        let target = string_field(input, "targetId").ok_or_else(|| {
            err(
                "DeploymentTargetIdRequiredException",
                "A deployment target ID was not provided.",
            )
        })?;
        let (region, account) = (&self.deps.region, &self.deps.account_id);
        self.with_store(|s| {
            let d = s.deployments.get(id).ok_or_else(|| no_deployment(id))?;
            let t = d.targets.get(target).ok_or_else(|| {
                err(
                    "DeploymentTargetDoesNotExistException",
                    format!("The provided target ID does not belong to the attempted deployment: {target}"),
                )
            })?;
            Ok(json!({ "deploymentTarget": d.target_json(region, account, t) }))
        })
    }

    fn continue_deployment(&self, input: &Value) -> ApiResult {
        let id = deployment_id(input)?;
        let wait_type = string_field(input, "deploymentWaitType").unwrap_or("READY_WAIT");
        let (status, termination_wait) = self.with_store(|s| {
            s.deployments
                .get(id)
                .map(|d| (d.status, d.termination_wait_started))
                .ok_or_else(|| no_deployment(id))
        })?;
        if status.is_terminal() {
            return Err(err(
                "DeploymentAlreadyCompletedException",
                format!("The deployment {id} has already completed."),
            ));
        }
        let control = self.control(id);
        match wait_type {
            "READY_WAIT" => {
                if status != DeploymentStatus::Ready {
                    return Err(err(
                        "DeploymentIsNotInReadyStateException",
                        format!("The deployment {id} is not in a ready state."),
                    ));
                }
                control
                    .continue_ready
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
            "TERMINATION_WAIT" => {
                if !termination_wait {
                    return Err(err(
                        "DeploymentIsNotInReadyStateException",
                        format!("The deployment {id} is not waiting to terminate the original instances."),
                    ));
                }
                control
                    .continue_termination
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
            other => {
                return Err(err(
                    "InvalidDeploymentWaitTypeException",
                    format!("The wait type {other} is invalid."),
                ))
            }
        }
        control.notify.notify_waiters();
        Ok(json!({}))
    }

    fn stop_deployment(&self, input: &Value) -> ApiResult {
        let id = deployment_id(input)?;
        let auto_rollback = input
            .get("autoRollbackEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let status = self.with_store(|s| {
            s.deployments
                .get(id)
                .map(|d| d.status)
                .ok_or_else(|| no_deployment(id))
        })?;
        if status.is_terminal() {
            return Err(err(
                "DeploymentAlreadyCompletedException",
                format!("The deployment {id} has already completed."),
            ));
        }
        let control = self.control(id);
        {
            let mut stop = control.stop.lock().unwrap_or_else(|e| e.into_inner());
            if stop.is_none() {
                *stop = Some(auto_rollback);
            }
        }
        control.notify.notify_waiters();
        Ok(json!({
            "status": "Pending",
            "statusMessage": "Stopping Pending. Stopping to schedule commands in the deployment instances",
        }))
    }
}

/// The `tags` of CreateApplication / CreateDeploymentGroup.
fn request_tags(input: &Value) -> Result<Vec<Value>, ApiError> {
    request_tags_field(input, "tags")
}

/// A list of `{"Key","Value"}` tags: every tag needs a key
/// (`InvalidTagException` / `InvalidTagsToAddException` otherwise; CodeDeploy
/// API reference, Tag: Key and Value are strings; harsher reading: an empty
/// key is refused).
fn request_tags_field(input: &Value, field: &str) -> Result<Vec<Value>, ApiError> {
    let Some(list) = input.get(field) else {
        return Ok(Vec::new());
    };
    let list = list.as_array().cloned().unwrap_or_default();
    for tag in &list {
        let key = tag.get("Key").and_then(Value::as_str).unwrap_or_default();
        if key.is_empty() {
            return Err(err(
                "InvalidTagsToAddException",
                "A tag has no Key; every tag needs a key.",
            ));
        }
    }
    Ok(list
        .into_iter()
        .map(|t| json!({ "Key": t.get("Key").cloned().unwrap_or_default(), "Value": t.get("Value").cloned().unwrap_or(json!("")) }))
        .collect())
}

fn no_application(name: &str) -> ApiError {
    err(
        "ApplicationDoesNotExistException",
        format!("No application found for name: {name}"),
    )
}

fn no_group(name: &str) -> ApiError {
    err(
        "DeploymentGroupDoesNotExistException",
        format!("No Deployment Group found for name: {name}"),
    )
}

fn no_deployment(id: &str) -> ApiError {
    err(
        "DeploymentDoesNotExistException",
        format!("The deployment {id} could not be found."),
    )
}

/// The settings part of a Create/UpdateDeploymentGroup request, validated
/// where CodeDeploy validates.
fn group_settings(input: &Value) -> Result<Map<String, Value>, ApiError> {
    let mut settings = input.as_object().cloned().unwrap_or_default();
    for key in ["applicationName", "deploymentGroupName"] {
        settings.remove(key);
    }
    if let Some(style) = settings.get("deploymentStyle") {
        let kind = style.get("deploymentType").and_then(Value::as_str);
        let option = style.get("deploymentOption").and_then(Value::as_str);
        if !matches!(kind, None | Some("IN_PLACE") | Some("BLUE_GREEN")) {
            return Err(err(
                "InvalidDeploymentStyleException",
                "An invalid deployment style was specified. Valid deployment types include \"IN_PLACE\" and \"BLUE_GREEN.\" Valid deployment options include \"WITH_TRAFFIC_CONTROL\" and \"WITHOUT_TRAFFIC_CONTROL.\"",
            ));
        }
        if !matches!(
            option,
            None | Some("WITH_TRAFFIC_CONTROL") | Some("WITHOUT_TRAFFIC_CONTROL")
        ) {
            return Err(err(
                "InvalidDeploymentStyleException",
                "An invalid deployment style was specified. Valid deployment options include \"WITH_TRAFFIC_CONTROL\" and \"WITHOUT_TRAFFIC_CONTROL.\"",
            ));
        }
        if kind == Some("BLUE_GREEN") && option == Some("WITH_TRAFFIC_CONTROL") {
            let has_lb = settings
                .get("loadBalancerInfo")
                .and_then(|l| l.get("targetGroupInfoList"))
                .and_then(Value::as_array)
                .is_some_and(|l| !l.is_empty());
            if !has_lb {
                return Err(err(
                    "InvalidLoadBalancerInfoException",
                    "A blue/green deployment with traffic control needs loadBalancerInfo with at least one target group.",
                ));
            }
        }
    }
    if let Some(ready) = settings
        .get("blueGreenDeploymentConfiguration")
        .and_then(|b| b.get("deploymentReadyOption"))
    {
        let action = ready.get("actionOnTimeout").and_then(Value::as_str);
        if !matches!(
            action,
            None | Some("CONTINUE_DEPLOYMENT") | Some("STOP_DEPLOYMENT")
        ) {
            return Err(err(
                "InvalidBlueGreenDeploymentConfigurationException",
                "deploymentReadyOption.actionOnTimeout must be CONTINUE_DEPLOYMENT or STOP_DEPLOYMENT.",
            ));
        }
        let wait = ready.get("waitTimeInMinutes").and_then(Value::as_i64);
        if action == Some("STOP_DEPLOYMENT") && wait.is_some_and(|w| !(0..=2880).contains(&w)) {
            return Err(err(
                "InvalidBlueGreenDeploymentConfigurationException",
                "deploymentReadyOption.waitTimeInMinutes must be between 0 and 2880.",
            ));
        }
    }
    Ok(settings)
}

fn validate_revision(revision: &Value) -> Result<(), ApiError> {
    let kind = revision.get("revisionType").and_then(Value::as_str);
    match kind {
        Some("S3") => {}
        Some(other) => {
            return Err(err(
                "InvalidRevisionException",
                format!("greenlight's local CodeDeploy deploys S3 revisions only, not {other}"),
            ))
        }
        None => {
            return Err(err(
                "InvalidRevisionException",
                "The revision's revisionType was not specified.",
            ))
        }
    }
    let s3 = revision.get("s3Location").ok_or_else(|| {
        err(
            "InvalidRevisionException",
            "An S3 revision needs s3Location.",
        )
    })?;
    for field in ["bucket", "key"] {
        if s3
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(err(
                "InvalidRevisionException",
                format!("The revision's s3Location.{field} was not specified."),
            ));
        }
    }
    match s3.get("bundleType").and_then(Value::as_str) {
        Some("zip") | Some("tar") | Some("tgz") => Ok(()),
        Some(other) => Err(err(
            "InvalidRevisionException",
            format!("The bundle type {other} is invalid. Valid bundle types are zip, tar, tgz and YAML/JSON (Lambda/ECS only)."),
        )),
        None => Err(err(
            "InvalidRevisionException",
            "The revision's s3Location.bundleType was not specified.",
        )),
    }
}
