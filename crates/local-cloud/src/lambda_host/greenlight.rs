//! The five greenlight function crates behind [`HostedFunction`] (deploy-trigger
//! twice, as template.yaml deploys it: for S3 events and for CodePipeline jobs).

use super::*;
use lambda_runtime::LambdaEvent;

/// Wraps one function crate (uniform API: `Deps`, `Request`, `Response`,
/// `handler`, `From<Error> for Diagnostic`) as a [`HostedFunction`].
macro_rules! hosted_function {
    ($wrapper:ident, $krate:ident) => {
        hosted_function!(@define $wrapper, $krate, |payload, context, deps| {
            let request: $krate::Request = decode_payload(payload)?;
            $krate::handler(LambdaEvent::new(request, context), deps)
                .await
                .map_err(Diagnostic::from)
        });
    };
    // A crate whose `entry` takes any JSON (tasks and EventBridge events).
    ($wrapper:ident, $krate:ident, entry) => {
        hosted_function!(@define $wrapper, $krate, |payload, context, deps| {
            $krate::entry(LambdaEvent::new(payload, context), deps)
                .await
                .map_err(Diagnostic::from)
        });
    };
    (@define $wrapper:ident, $krate:ident, |$payload:ident, $context:ident, $deps:ident| $call:block) => {
        struct $wrapper {
            deps: $krate::Deps,
        }

        impl HostedFunction for $wrapper {
            fn invoke(
                &self,
                $payload: Value,
                $context: Context,
            ) -> BoxFuture<'_, Result<Value, Diagnostic>> {
                Box::pin(async move {
                    let $deps = &self.deps;
                    let response = $call?;
                    encode_response(response)
                })
            }
        }
    };
}

hosted_function!(DeployTrigger, deploy_trigger);
hosted_function!(HealthCheckTuner, health_check_tuner);
hosted_function!(TrafficValidator, traffic_validator);
hosted_function!(DeploymentWatcher, deployment_watcher, entry);
hosted_function!(FailureHandler, failure_handler);

/// Each hosted function's configuration (what template.yaml's environment
/// sets on AWS): the caller fills in local values (state machine ARN, bucket,
/// topic, short waits).
pub struct FunctionConfigs {
    pub deploy_trigger: deploy_trigger::Config,
    pub health_check_tuner: health_check_tuner::Config,
    pub traffic_validator: traffic_validator::Config,
    pub deployment_watcher: deployment_watcher::Config,
    pub failure_handler: failure_handler::Config,
}

impl LambdaHost {
    /// Hosts the five greenlight functions, their SDK clients built from `sdk`
    /// (pointed at the front server), as the Lambda binaries build them.
    pub fn new(sdk: &aws_config::SdkConfig, configs: FunctionConfigs) -> Arc<Self> {
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".to_string());
        let host = Self::empty(DEFAULT_ACCOUNT_ID, &region);
        host.register(
            PIPELINE_TRIGGER,
            Arc::new(DeployTrigger {
                deps: deploy_trigger::Deps::new(sdk, configs.deploy_trigger.clone()),
            }),
        );
        host.register(
            DEPLOY_TRIGGER,
            Arc::new(DeployTrigger {
                deps: deploy_trigger::Deps::new(sdk, configs.deploy_trigger),
            }),
        );
        host.register(
            HEALTH_CHECK_TUNER,
            Arc::new(HealthCheckTuner {
                deps: health_check_tuner::Deps::new(sdk, configs.health_check_tuner),
            }),
        );
        host.register(
            TRAFFIC_VALIDATOR,
            Arc::new(TrafficValidator {
                deps: traffic_validator::Deps::new(sdk, configs.traffic_validator),
            }),
        );
        host.register(
            DEPLOYMENT_WATCHER,
            Arc::new(DeploymentWatcher {
                deps: deployment_watcher::Deps::new(sdk, configs.deployment_watcher),
            }),
        );
        host.register(
            FAILURE_HANDLER,
            Arc::new(FailureHandler {
                deps: failure_handler::Deps::new(sdk, configs.failure_handler),
            }),
        );
        host
    }
}
