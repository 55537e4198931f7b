//! deployment-group-resource: the `Custom::GreenlightDeploymentGroup`
//! CloudFormation custom resource. One `sam deploy` creates, updates and
//! deletes the CodeDeploy application, its EC2 blue/green deployment group
//! (copy-ASG green fleet, Ready wait with STOP_DEPLOYMENT, blue termination
//! wait, automatic rollback on failure and stop, the ALB target group, the
//! service role) and the target group's `greenlight:application` tag, which
//! CloudFormation itself cannot declare (cloudformation-coverage-roadmap
//! #2071).
//!
//! CloudFormation invokes the function asynchronously with a request
//! ("Custom resource request objects", CloudFormation user guide) and waits
//! for the answer PUT to the request's pre-signed `ResponseURL`. Every
//! request is answered: a bad property, a group that belongs to someone
//! else or a failed AWS call is a FAILED answer whose `Reason` says what to
//! fix, so a stack never hangs waiting for it. Only a failure to deliver the
//! answer fails the invocation ([`errors::CUSTOM_RESOURCE_RESPONSE_FAILED`]),
//! so that Lambda's asynchronous retries run the (idempotent) request again.
//!
//! The decisions (validation, what to create, update or delete, ownership,
//! the ASG CodeDeploy swaps in at every deployment) are
//! [`greenlight_core::group_resource`]'s; the AWS calls are
//! [`greenlight_aws::group_resource`]'s.

use aws_sdk_codedeploy::Client as CodeDeployClient;
use aws_sdk_elasticloadbalancingv2::Client as Elbv2Client;
use greenlight_aws::config::ConfigError;
use greenlight_aws::group_resource::{
    apply_action, observe, response_client, send_response, ResponseClient, ResponseError,
};
use greenlight_aws::AwsError;
use greenlight_core::errors;
use greenlight_core::group_resource::{
    carried_asg, failure, needs_replacement, parse_physical_id, parse_spec, plan_create,
    plan_delete, plan_update, success, CustomResourceRequest, Observed, Owner, Plan, PlanError,
    RequestType, ResponseStatus,
};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How often the answer is PUT before the invocation fails.
pub const RESPONSE_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Attempts to deliver the answer ([`RESPONSE_ATTEMPTS`]).
    pub response_attempts: u32,
    /// The pause before the second attempt (doubled for each next one).
    pub response_backoff: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            response_attempts: RESPONSE_ATTEMPTS,
            response_backoff: Duration::from_secs(1),
        }
    }
}

impl Config {
    /// The function reads no environment variable: everything it needs is in
    /// the request's properties.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::default())
    }
}

pub struct Deps {
    pub codedeploy: CodeDeployClient,
    pub elbv2: Elbv2Client,
    pub http: ResponseClient,
    pub config: Config,
}

impl Deps {
    /// The SDK clients and the HTTPS client for the answer; fails when the
    /// system's root certificates cannot be loaded.
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> std::io::Result<Self> {
        Ok(Self {
            codedeploy: CodeDeployClient::new(sdk),
            elbv2: Elbv2Client::new(sdk),
            http: response_client()?,
            config,
        })
    }
}

pub type Request = CustomResourceRequest;

/// What the invocation returns (CloudFormation reads the PUT answer, not
/// this; it is for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub status: ResponseStatus,
    pub physical_resource_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub notes: Vec<String>,
}

/// Why a request failed (answered to CloudFormation as FAILED).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("{0}; nothing after it was changed, fix it and update the stack again (CloudFormation rolls back to the previous properties)")]
    Aws(#[from] AwsError),
}

/// The one error of the invocation: the answer could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the {status:?} answer for {logical_id} could not be sent to CloudFormation after {attempts} attempts: {source}")]
    Response {
        status: ResponseStatus,
        logical_id: String,
        attempts: u32,
        #[source]
        source: ResponseError,
    },
}

impl Error {
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Response { .. } => errors::CUSTOM_RESOURCE_RESPONSE_FAILED,
        }
    }
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.to_string(),
        }
    }
}

pub async fn handler(event: LambdaEvent<Request>, deps: &Deps) -> Result<Response, Error> {
    let request = event.payload;
    tracing::info!(
        request_type = ?request.request_type,
        logical_id = %request.logical_resource_id,
        physical_id = ?request.physical_resource_id,
        "custom resource request"
    );
    let (answer, notes) = match carry_out(&request, deps).await {
        Ok(plan) => {
            for note in &plan.notes {
                tracing::info!(note = %note, "left alone");
            }
            (success(&request, &plan.physical_id, plan.data), plan.notes)
        }
        Err(e) => {
            tracing::error!(error = %e, "custom resource request failed");
            (failure(&request, &e.to_string()), Vec::new())
        }
    };
    let mut attempt = 0;
    let mut pause = deps.config.response_backoff;
    loop {
        attempt += 1;
        match send_response(&deps.http, &request.response_url, &answer).await {
            Ok(()) => break,
            Err(source) if attempt >= deps.config.response_attempts.max(1) => {
                return Err(Error::Response {
                    status: answer.status,
                    logical_id: request.logical_resource_id.clone(),
                    attempts: attempt,
                    source,
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, "answer not delivered, trying again");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
    }
    Ok(Response {
        status: answer.status,
        physical_resource_id: answer.physical_resource_id,
        reason: answer.reason,
        notes,
    })
}

/// Reads what exists, decides, and carries the plan out in order.
async fn carry_out(request: &Request, deps: &Deps) -> Result<Plan, RequestError> {
    let owner = Owner::of(request);
    let stack = request.stack_id.as_str();
    let plan = match request.request_type {
        RequestType::Create => {
            let spec = parse_spec(&request.resource_properties).map_err(PlanError::from)?;
            let o = observe(
                &deps.codedeploy,
                &deps.elbv2,
                stack,
                &spec.application,
                &spec.group,
                &[&spec.target_group],
            )
            .await?;
            let plan = plan_create(&spec, &owner, &o.observed, None)?;
            (plan, o.target_group_arns)
        }
        RequestType::Update => {
            let new = parse_spec(&request.resource_properties).map_err(PlanError::from)?;
            let old = request
                .old_resource_properties
                .as_ref()
                .and_then(|p| parse_spec(p).ok());
            match old {
                Some(old) if !needs_replacement(&old, &new) => {
                    let o = observe(
                        &deps.codedeploy,
                        &deps.elbv2,
                        stack,
                        &new.application,
                        &new.group,
                        &[&new.target_group, &old.target_group],
                    )
                    .await?;
                    (
                        plan_update(&old, &new, &owner, &o.observed)?,
                        o.target_group_arns,
                    )
                }
                old => {
                    // A renamed application or group: a new resource (new
                    // physical id; CloudFormation then deletes the old one),
                    // on the old group's current ASG while the template's
                    // ASG name is unchanged.
                    let previous = match &old {
                        Some(old) => {
                            observe(
                                &deps.codedeploy,
                                &deps.elbv2,
                                stack,
                                &old.application,
                                &old.group,
                                &[],
                            )
                            .await?
                            .observed
                            .group
                        }
                        None => None,
                    };
                    let carried = old
                        .as_ref()
                        .and_then(|old| carried_asg(old, &new, previous.as_ref()))
                        .map(str::to_string);
                    let o = observe(
                        &deps.codedeploy,
                        &deps.elbv2,
                        stack,
                        &new.application,
                        &new.group,
                        &[&new.target_group],
                    )
                    .await?;
                    (
                        plan_create(&new, &owner, &o.observed, carried.as_deref())?,
                        o.target_group_arns,
                    )
                }
            }
        }
        RequestType::Delete => {
            let physical = request.physical_resource_id.clone().unwrap_or_default();
            let spec = parse_spec(&request.resource_properties).ok();
            match parse_physical_id(&physical) {
                Some((application, group)) => {
                    let tgs: Vec<&str> = spec.iter().map(|s| s.target_group.as_str()).collect();
                    let o = observe(
                        &deps.codedeploy,
                        &deps.elbv2,
                        stack,
                        &application,
                        &group,
                        &tgs,
                    )
                    .await?;
                    (
                        plan_delete(&physical, spec.as_ref(), &owner, &o.observed),
                        o.target_group_arns,
                    )
                }
                None => (
                    plan_delete(&physical, spec.as_ref(), &owner, &Observed::default()),
                    Default::default(),
                ),
            }
        }
    };
    let (plan, arns) = plan;
    for action in &plan.actions {
        tracing::info!(action = ?action, "applying");
        apply_action(&deps.codedeploy, &deps.elbv2, &owner, &arns, action).await?;
    }
    Ok(plan)
}
