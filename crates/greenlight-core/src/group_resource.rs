//! `Custom::GreenlightDeploymentGroup`: the decisions of the CloudFormation
//! custom resource that creates, updates and deletes a CodeDeploy application,
//! its EC2 blue/green deployment group and the target group's
//! `greenlight:application` tag (functions/deployment-group-resource).
//!
//! Request and response shapes follow the CloudFormation user guide, "Custom
//! resources" → "Custom resource request objects" and "Custom resource
//! response objects"
//! (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-requests.html,
//! https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-responses.html):
//! CloudFormation sends `RequestType` (Create/Update/Delete), `ResponseURL`
//! (a pre-signed S3 URL), `StackId`, `RequestId`, `ResourceType`,
//! `LogicalResourceId`, `PhysicalResourceId` (Update/Delete),
//! `ResourceProperties` and `OldResourceProperties` (Update); every property
//! value arrives as a string. The function answers by a PUT of `Status`
//! (SUCCESS/FAILED), `Reason` (required with FAILED), `PhysicalResourceId`,
//! `StackId`, `RequestId`, `LogicalResourceId` and `Data` to the URL; the
//! body may not exceed 4096 bytes.
//!
//! Ownership: what the resource creates is tagged `greenlight:stack-id` =
//! StackId and `greenlight:logical-id` = LogicalResourceId. Delete removes
//! only what carries this resource's tags (an application also only when it
//! has no other deployment group left), and the target group's tag only when
//! it names this application and no other group of it remains. A missing
//! resource is a no-op, never an error.
//!
//! The ASG that changes with every deployment: a copy-ASG deployment leaves
//! the group on a new ASG (`CodeDeploy_<group>_d-<id>`) and CodeDeploy deletes
//! the original after the termination wait. The template names the original
//! ASG (`AutoScalingGroupName`); while that name is unchanged an Update never
//! sends `autoScalingGroups` (UpdateDeploymentGroup keeps them when the field
//! is omitted: "To keep the Auto Scaling groups, enter their names or do not
//! specify this parameter", CodeDeploy API reference UpdateDeploymentGroup),
//! and a replacement (renamed application or group) carries the old group's
//! current ASG over. Only a changed `AutoScalingGroupName` resets the group's
//! ASG.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub use crate::plan::APPLICATION_TAG_KEY;

/// The tag naming the stack that created an application or group.
pub const OWNER_STACK_TAG_KEY: &str = "greenlight:stack-id";
/// The tag naming the custom resource (logical id) that created it.
pub const OWNER_RESOURCE_TAG_KEY: &str = "greenlight:logical-id";
/// The response body limit ("Custom resource response objects": 4096 bytes).
pub const MAX_RESPONSE_BYTES: usize = 4096;
/// How much of a failure's reason the response carries (the rest of the
/// 4096 bytes is ids and names).
pub const MAX_REASON_CHARS: usize = 1500;
/// CodeDeploy's limit on the blue/green waits (Ready wait and blue termination
/// wait): 2880 minutes (CodeDeploy API reference,
/// `BlueInstanceTerminationOption.terminationWaitTimeInMinutes`: "The maximum
/// setting is 2880 minutes (2 days)").
pub const MAX_WAIT_MINUTES: u32 = 2880;

/// CloudFormation's request type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestType {
    Create,
    Update,
    Delete,
}

/// A custom-resource request as CloudFormation sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomResourceRequest {
    pub request_type: RequestType,
    #[serde(rename = "ResponseURL")]
    pub response_url: String,
    pub stack_id: String,
    pub request_id: String,
    #[serde(default)]
    pub resource_type: String,
    pub logical_resource_id: String,
    #[serde(default)]
    pub physical_resource_id: Option<String>,
    #[serde(default)]
    pub resource_properties: Value,
    #[serde(default)]
    pub old_resource_properties: Option<Value>,
}

/// `SUCCESS` or `FAILED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ResponseStatus {
    Success,
    Failed,
}

/// The body PUT to the `ResponseURL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomResourceResponse {
    pub status: ResponseStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub data: BTreeMap<String, String>,
}

/// The SUCCESS answer to `request`.
pub fn success(
    request: &CustomResourceRequest,
    physical_resource_id: &str,
    data: BTreeMap<String, String>,
) -> CustomResourceResponse {
    CustomResourceResponse {
        status: ResponseStatus::Success,
        reason: None,
        physical_resource_id: physical_resource_id.to_string(),
        stack_id: request.stack_id.clone(),
        request_id: request.request_id.clone(),
        logical_resource_id: request.logical_resource_id.clone(),
        data,
    }
}

/// The FAILED answer to `request`: `reason` cut to [`MAX_REASON_CHARS`]; the
/// physical id is the request's own (Update/Delete), else the one the
/// properties name, else one that no Delete will act on.
pub fn failure(request: &CustomResourceRequest, reason: &str) -> CustomResourceResponse {
    let physical = request
        .physical_resource_id
        .clone()
        .filter(|p| !p.is_empty())
        .or_else(|| {
            parse_spec(&request.resource_properties)
                .ok()
                .map(|s| s.physical_id())
        })
        .unwrap_or_else(|| format!("failed-{}", request.request_id));
    let mut reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
    if reason.is_empty() {
        reason = "failed without a reason (see the function's log)".to_string();
    }
    CustomResourceResponse {
        status: ResponseStatus::Failed,
        reason: Some(reason),
        physical_resource_id: physical,
        stack_id: request.stack_id.clone(),
        request_id: request.request_id.clone(),
        logical_resource_id: request.logical_resource_id.clone(),
        data: BTreeMap::new(),
    }
}

/// Who created a resource: the stack and the custom resource's logical id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub stack_id: String,
    pub logical_id: String,
}

impl Owner {
    pub fn of(request: &CustomResourceRequest) -> Self {
        Self {
            stack_id: request.stack_id.clone(),
            logical_id: request.logical_resource_id.clone(),
        }
    }

    /// The tags that mark a resource as this owner's.
    pub fn tags(&self) -> Vec<(String, String)> {
        vec![
            (OWNER_STACK_TAG_KEY.to_string(), self.stack_id.clone()),
            (OWNER_RESOURCE_TAG_KEY.to_string(), self.logical_id.clone()),
        ]
    }

    /// True when `tags` mark the resource as this owner's (both tags equal).
    pub fn owns(&self, tags: &[(String, String)]) -> bool {
        let value = |key: &str| tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        value(OWNER_STACK_TAG_KEY) == Some(self.stack_id.as_str())
            && value(OWNER_RESOURCE_TAG_KEY) == Some(self.logical_id.as_str())
    }
}

/// The resource's properties, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    pub application: String,
    pub group: String,
    pub service_role_arn: String,
    /// The ASG the group starts on (the template's original ASG).
    pub auto_scaling_group: String,
    pub target_group: String,
    pub deployment_config: String,
    pub ready_wait_minutes: u32,
    pub termination_wait_minutes: u32,
}

pub const DEFAULT_DEPLOYMENT_CONFIG: &str = "CodeDeployDefault.OneAtATime";
pub const DEFAULT_READY_WAIT_MINUTES: u32 = 30;
pub const DEFAULT_TERMINATION_WAIT_MINUTES: u32 = 5;

impl GroupSpec {
    /// `<application>/<group>`: the resource's physical id.
    pub fn physical_id(&self) -> String {
        format!("{}/{}", self.application, self.group)
    }
}

/// `<application>/<group>` back into its names; `None` for anything else
/// (a failed Create's placeholder id).
pub fn parse_physical_id(id: &str) -> Option<(String, String)> {
    let (app, group) = id.split_once('/')?;
    (valid_name(app) && valid_name(group)).then(|| (app.to_string(), group.to_string()))
}

/// The CodeDeploy ARNs of `application` and its `group`, in the partition,
/// region and account of the stack `stack_id`
/// (`arn:<partition>:cloudformation:<region>:<account>:stack/...`); CodeDeploy's
/// ARN formats are `...:application:<name>` and
/// `...:deploymentgroup:<application>/<group>` (CodeDeploy user guide,
/// "CodeDeploy permissions reference"). `None` when `stack_id` is no ARN.
pub fn codedeploy_arns(stack_id: &str, application: &str, group: &str) -> Option<(String, String)> {
    let mut parts = stack_id.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(_service), Some(region), Some(account)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if partition.is_empty() || region.is_empty() || account.is_empty() {
        return None;
    }
    let prefix = format!("arn:{partition}:codedeploy:{region}:{account}");
    Some((
        format!("{prefix}:application:{application}"),
        format!("{prefix}:deploymentgroup:{application}/{group}"),
    ))
}

/// A property that is missing or wrong, with its fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PropertyError {
    #[error("Custom::GreenlightDeploymentGroup: the ResourceProperties are not an object; give the resource a Properties map")]
    NotAnObject,
    #[error("Custom::GreenlightDeploymentGroup property {property} is missing: {fix}")]
    Missing {
        property: &'static str,
        fix: &'static str,
    },
    #[error("Custom::GreenlightDeploymentGroup property {property} = {value:?} is invalid: {fix}")]
    Invalid {
        property: &'static str,
        value: String,
        fix: String,
    },
}

/// CodeDeploy names greenlight accepts: 1-100 of letters, digits, `.`, `_`,
/// `-` (the template's `ApplicationName` pattern; CodeDeploy's documented
/// limit is 100 characters, the character set is the harsher reading).
pub fn valid_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn text(props: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    match props.get(key)? {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn required(
    props: &serde_json::Map<String, Value>,
    property: &'static str,
    fix: &'static str,
) -> Result<String, PropertyError> {
    text(props, property).ok_or(PropertyError::Missing { property, fix })
}

fn name(
    props: &serde_json::Map<String, Value>,
    property: &'static str,
    fix: &'static str,
) -> Result<String, PropertyError> {
    let value = required(props, property, fix)?;
    if valid_name(&value) {
        Ok(value)
    } else {
        Err(PropertyError::Invalid {
            property,
            value,
            fix: "use 1-100 letters, digits, '.', '_' or '-'".into(),
        })
    }
}

fn minutes(
    props: &serde_json::Map<String, Value>,
    property: &'static str,
    default: u32,
    min: u32,
) -> Result<u32, PropertyError> {
    let Some(value) = text(props, property) else {
        return Ok(default);
    };
    match value.parse::<u32>() {
        Ok(m) if (min..=MAX_WAIT_MINUTES).contains(&m) => Ok(m),
        _ => Err(PropertyError::Invalid {
            property,
            value,
            fix: format!("give whole minutes from {min} to {MAX_WAIT_MINUTES}"),
        }),
    }
}

/// Validates `ResourceProperties` (CloudFormation sends every value as a
/// string; numbers are accepted too).
pub fn parse_spec(props: &Value) -> Result<GroupSpec, PropertyError> {
    let props = props.as_object().ok_or(PropertyError::NotAnObject)?;
    let application = name(
        props,
        "ApplicationName",
        "name the CodeDeploy application (the stack's ApplicationName parameter)",
    )?;
    let group = name(
        props,
        "DeploymentGroupName",
        "name the EC2 blue/green deployment group",
    )?;
    let service_role_arn = required(
        props,
        "ServiceRoleArn",
        "give the ARN of CodeDeploy's service role (AWSCodeDeployRole plus ec2:RunInstances, ec2:CreateTags and iam:PassRole for a launch-template ASG)",
    )?;
    if !(service_role_arn.starts_with("arn:") && service_role_arn.contains(":iam::")) {
        return Err(PropertyError::Invalid {
            property: "ServiceRoleArn",
            value: service_role_arn,
            fix: "give an IAM role ARN, arn:aws:iam::<account>:role/<name> (e.g. !GetAtt CodeDeployServiceRole.Arn)".into(),
        });
    }
    let auto_scaling_group = required(
        props,
        "AutoScalingGroupName",
        "name the application's original Auto Scaling group (the blue fleet of the first deployment)",
    )?;
    if auto_scaling_group.chars().count() > 255 {
        return Err(PropertyError::Invalid {
            property: "AutoScalingGroupName",
            value: auto_scaling_group,
            fix: "an Auto Scaling group name has at most 255 characters".into(),
        });
    }
    let target_group = required(
        props,
        "TargetGroupName",
        "name the ALB target group the fleet serves from (its name, not its ARN)",
    )?;
    if target_group.starts_with("arn:")
        || target_group.chars().count() > 32
        || !target_group
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(PropertyError::Invalid {
            property: "TargetGroupName",
            value: target_group,
            fix: "give the target group's name (1-32 letters, digits or '-'; !GetAtt <TargetGroup>.TargetGroupName), not its ARN".into(),
        });
    }
    let deployment_config =
        text(props, "DeploymentConfigName").unwrap_or_else(|| DEFAULT_DEPLOYMENT_CONFIG.into());
    if !valid_name(&deployment_config) {
        return Err(PropertyError::Invalid {
            property: "DeploymentConfigName",
            value: deployment_config,
            fix:
                "use CodeDeployDefault.OneAtATime, HalfAtATime, AllAtOnce or a custom config's name"
                    .into(),
        });
    }
    // A Ready wait of 0 minutes stops the deployment before the validator
    // can gate it: at least 1.
    let ready_wait_minutes = minutes(props, "ReadyWaitMinutes", DEFAULT_READY_WAIT_MINUTES, 1)?;
    let termination_wait_minutes = minutes(
        props,
        "TerminationWaitMinutes",
        DEFAULT_TERMINATION_WAIT_MINUTES,
        0,
    )?;
    Ok(GroupSpec {
        application,
        group,
        service_role_arn,
        auto_scaling_group,
        target_group,
        deployment_config,
        ready_wait_minutes,
        termination_wait_minutes,
    })
}

/// What the shell read before deciding, for one application/group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    /// The application exists; with its tags.
    pub application: Option<Vec<(String, String)>>,
    /// The group exists: its tags and current Auto Scaling groups.
    pub group: Option<ObservedGroup>,
    /// The application's other deployment groups (names).
    pub other_groups: Vec<String>,
    /// Target group name → the value of its `greenlight:application` tag
    /// (`None`: untagged). A target group missing here was not found.
    pub target_group_tags: BTreeMap<String, Option<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedGroup {
    pub tags: Vec<(String, String)>,
    pub auto_scaling_groups: Vec<String>,
}

/// One AWS write, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// CreateApplication (Server platform), tagged with the owner's tags.
    CreateApplication {
        application: String,
    },
    /// CreateDeploymentGroup with the full blue/green settings, tagged with
    /// the owner's tags, on `auto_scaling_group`.
    CreateGroup {
        spec: GroupSpec,
        auto_scaling_group: String,
    },
    /// UpdateDeploymentGroup with the full blue/green settings;
    /// `auto_scaling_groups: None` leaves the group's ASGs as they are.
    UpdateGroup {
        spec: GroupSpec,
        auto_scaling_groups: Option<Vec<String>>,
    },
    /// AddTags `greenlight:application = application` on the target group.
    TagTargetGroup {
        target_group: String,
        application: String,
    },
    /// RemoveTags `greenlight:application` from the target group.
    UntagTargetGroup {
        target_group: String,
    },
    DeleteGroup {
        application: String,
        group: String,
    },
    DeleteApplication {
        application: String,
    },
}

/// What to do and what to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub physical_id: String,
    /// `Data` of the SUCCESS answer (`!GetAtt <Resource>.<Key>`).
    pub data: BTreeMap<String, String>,
    /// What was left alone and why (logged, and in the answer's Data as
    /// `Notes` on Delete).
    pub notes: Vec<String>,
}

/// Why a request cannot be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Property(#[from] PropertyError),
    #[error("deployment group {application}/{group} already exists and was not created by this resource ({logical_id} of {stack_id}); greenlight never takes over or changes a group it did not create: pick another DeploymentGroupName, delete the group, or adopt it by tagging it greenlight:stack-id={stack_id} and greenlight:logical-id={logical_id} (aws deploy tag-resource)")]
    GroupNotOurs {
        application: String,
        group: String,
        stack_id: String,
        logical_id: String,
    },
    #[error("target group {target_group} does not exist; create it first (DependsOn the target group, or !GetAtt <TargetGroup>.TargetGroupName) and check TargetGroupName")]
    TargetGroupNotFound { target_group: String },
    #[error("target group {target_group} is tagged greenlight:application={other}: it serves another application; give {application} its own target group (the tuner changes the health checks of every target group tagged with its application)")]
    TargetGroupClaimed {
        target_group: String,
        other: String,
        application: String,
    },
}

fn data(spec: &GroupSpec, asg: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("ApplicationName".to_string(), spec.application.clone()),
        ("DeploymentGroupName".to_string(), spec.group.clone()),
        ("AutoScalingGroupName".to_string(), asg.to_string()),
        ("TargetGroupName".to_string(), spec.target_group.clone()),
    ])
}

/// Tag the target group unless it already names the application; refuse one
/// that names another application or does not exist.
fn tag_target_group(spec: &GroupSpec, observed: &Observed) -> Result<Option<Action>, PlanError> {
    match observed.target_group_tags.get(&spec.target_group) {
        None => Err(PlanError::TargetGroupNotFound {
            target_group: spec.target_group.clone(),
        }),
        Some(Some(app)) if app == &spec.application => Ok(None),
        Some(Some(other)) => Err(PlanError::TargetGroupClaimed {
            target_group: spec.target_group.clone(),
            other: other.clone(),
            application: spec.application.clone(),
        }),
        Some(None) => Ok(Some(Action::TagTargetGroup {
            target_group: spec.target_group.clone(),
            application: spec.application.clone(),
        })),
    }
}

/// Create (and a replacement's create): the application unless it exists,
/// the group (on `carried_asg` when a replaced group's ASG is carried over,
/// else the spec's), the target group's tag. A group this resource already
/// created (a retried request) is updated instead, its ASG kept.
pub fn plan_create(
    spec: &GroupSpec,
    owner: &Owner,
    observed: &Observed,
    carried_asg: Option<&str>,
) -> Result<Plan, PlanError> {
    let mut actions = Vec::new();
    let mut notes = Vec::new();
    let tag = tag_target_group(spec, observed)?;
    if observed.application.is_none() {
        actions.push(Action::CreateApplication {
            application: spec.application.clone(),
        });
    } else if observed
        .application
        .as_ref()
        .is_some_and(|tags| !owner.owns(tags))
    {
        notes.push(format!(
            "application {} existed already: it is used, and never deleted by this resource",
            spec.application
        ));
    }
    let asg = match &observed.group {
        None => {
            let asg = carried_asg.unwrap_or(&spec.auto_scaling_group).to_string();
            actions.push(Action::CreateGroup {
                spec: spec.clone(),
                auto_scaling_group: asg.clone(),
            });
            asg
        }
        Some(g) if owner.owns(&g.tags) => {
            actions.push(Action::UpdateGroup {
                spec: spec.clone(),
                auto_scaling_groups: None,
            });
            g.auto_scaling_groups
                .first()
                .cloned()
                .unwrap_or_else(|| spec.auto_scaling_group.clone())
        }
        Some(_) => {
            return Err(PlanError::GroupNotOurs {
                application: spec.application.clone(),
                group: spec.group.clone(),
                stack_id: owner.stack_id.clone(),
                logical_id: owner.logical_id.clone(),
            })
        }
    };
    actions.extend(tag);
    Ok(Plan {
        actions,
        physical_id: spec.physical_id(),
        data: data(spec, &asg),
        notes,
    })
}

/// True when an Update must replace the resource (new physical id):
/// the application or the group was renamed.
pub fn needs_replacement(old: &GroupSpec, new: &GroupSpec) -> bool {
    old.application != new.application || old.group != new.group
}

/// The ASG a replacement carries over from the old group: its current ASG
/// when the template's `AutoScalingGroupName` is unchanged (the original may
/// be gone after a copy-ASG deployment), else none (the new name wins).
pub fn carried_asg<'a>(
    old: &GroupSpec,
    new: &GroupSpec,
    old_group: Option<&'a ObservedGroup>,
) -> Option<&'a str> {
    if old.auto_scaling_group != new.auto_scaling_group {
        return None;
    }
    old_group.and_then(|g| g.auto_scaling_groups.first().map(String::as_str))
}

/// Update in place (same application and group; see [`needs_replacement`]).
/// The group's ASGs are left alone unless `AutoScalingGroupName` changed; a
/// changed target group moves the tag (the old one's tag is removed only when
/// it names this application and the application has no other group).
pub fn plan_update(
    old: &GroupSpec,
    new: &GroupSpec,
    owner: &Owner,
    observed: &Observed,
) -> Result<Plan, PlanError> {
    let Some(group) = &observed.group else {
        // Deleted outside CloudFormation: create it again.
        let mut plan = plan_create(new, owner, observed, None)?;
        plan.notes.push(format!(
            "deployment group {} was missing and is created again",
            new.physical_id()
        ));
        return Ok(plan);
    };
    if !owner.owns(&group.tags) {
        return Err(PlanError::GroupNotOurs {
            application: new.application.clone(),
            group: new.group.clone(),
            stack_id: owner.stack_id.clone(),
            logical_id: owner.logical_id.clone(),
        });
    }
    let mut actions = Vec::new();
    let tag = tag_target_group(new, observed)?;
    let (asgs, current) = if old.auto_scaling_group == new.auto_scaling_group {
        let current = group
            .auto_scaling_groups
            .first()
            .cloned()
            .unwrap_or_else(|| new.auto_scaling_group.clone());
        (None, current)
    } else {
        (
            Some(vec![new.auto_scaling_group.clone()]),
            new.auto_scaling_group.clone(),
        )
    };
    actions.push(Action::UpdateGroup {
        spec: new.clone(),
        auto_scaling_groups: asgs,
    });
    actions.extend(tag);
    let mut notes = Vec::new();
    if old.target_group != new.target_group {
        let old_tag = observed.target_group_tags.get(&old.target_group);
        if old_tag == Some(&Some(new.application.clone())) && observed.other_groups.is_empty() {
            actions.push(Action::UntagTargetGroup {
                target_group: old.target_group.clone(),
            });
        } else {
            notes.push(format!(
                "target group {} keeps its tags (not tagged for {}, or another group of the application remains)",
                old.target_group, new.application
            ));
        }
    }
    Ok(Plan {
        actions,
        physical_id: new.physical_id(),
        data: data(new, &current),
        notes,
    })
}

/// Delete: only what this resource created; missing is fine. `spec` is the
/// deleted resource's properties when they parse (for its target group).
pub fn plan_delete(
    physical_id: &str,
    spec: Option<&GroupSpec>,
    owner: &Owner,
    observed: &Observed,
) -> Plan {
    let mut actions = Vec::new();
    let mut notes = Vec::new();
    let Some((application, group)) = parse_physical_id(physical_id) else {
        return Plan {
            actions,
            physical_id: physical_id.to_string(),
            data: BTreeMap::new(),
            notes: vec![format!(
                "{physical_id} names no deployment group this resource created: nothing to delete"
            )],
        };
    };
    let mut group_gone = true;
    match &observed.group {
        None => notes.push(format!("deployment group {physical_id} is already gone")),
        Some(g) if owner.owns(&g.tags) => actions.push(Action::DeleteGroup {
            application: application.clone(),
            group: group.clone(),
        }),
        Some(_) => {
            group_gone = false;
            notes.push(format!(
                "deployment group {physical_id} was not created by this resource: left alone"
            ));
        }
    }
    let last_group = group_gone && observed.other_groups.is_empty();
    if let Some(tg) = spec
        .filter(|s| s.application == application)
        .map(|s| &s.target_group)
    {
        if last_group && observed.target_group_tags.get(tg) == Some(&Some(application.clone())) {
            actions.push(Action::UntagTargetGroup {
                target_group: tg.clone(),
            });
        } else {
            notes.push(format!("target group {tg} keeps its tags"));
        }
    }
    match &observed.application {
        None => notes.push(format!("application {application} is already gone")),
        Some(tags) if owner.owns(tags) && last_group => actions.push(Action::DeleteApplication {
            application: application.clone(),
        }),
        Some(tags) if owner.owns(tags) => notes.push(format!(
            "application {application} still has deployment groups ({}): kept",
            observed.other_groups.join(", ")
        )),
        Some(_) => notes.push(format!(
            "application {application} was not created by this resource: kept"
        )),
    }
    Plan {
        actions,
        physical_id: physical_id.to_string(),
        data: BTreeMap::new(),
        notes,
    }
}

#[cfg(test)]
#[path = "group_resource_tests.rs"]
mod tests;
