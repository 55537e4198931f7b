//! What the watcher's test files share: the test account's state machine,
//! the deployment the fixtures name, and the function built on mocked
//! clients.

use aws_smithy_mocks::{mock_client, Rule, RuleMode};
use deployment_watcher::{Config, Deps};

pub const SM_ARN: &str = "arn:aws:states:us-east-1:111122223333:stateMachine:greenlight-pipeline";
pub const DEPLOYMENT_ID: &str = "d-7Q2KJ3X1A";

pub fn config() -> Config {
    Config {
        state_machine_arn: SM_ARN.to_string(),
        deployment_config_name: "CodeDeployDefault.OneAtATime".to_string(),
        deployment_timeout_seconds: 3600,
        post_reroute_timeout_seconds: 3 * 3600,
        min_wait_seconds: 5,
        max_wait_seconds: 60,
        max_event_wait_seconds: 3600,
        ignore_application_stop_failures: false,
    }
}

pub fn deps(codedeploy: &[&Rule], sfn: &[&Rule]) -> Deps {
    deps_with(codedeploy, sfn, &[])
}

pub fn deps_with(codedeploy: &[&Rule], sfn: &[&Rule], autoscaling: &[&Rule]) -> Deps {
    Deps::from_clients(
        // One attempt per call: a throttled or 5xx answer reaches the shell
        // at once (the SDK's own retries are not under test here).
        mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, codedeploy, |c| c
            .retry_config(
                aws_sdk_codedeploy::config::retry::RetryConfig::standard().with_max_attempts(1)
            )),
        mock_client!(aws_sdk_sfn, RuleMode::MatchAny, sfn, |c| c.retry_config(
            aws_sdk_sfn::config::retry::RetryConfig::standard().with_max_attempts(1)
        )),
        mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, autoscaling),
        config(),
    )
}
