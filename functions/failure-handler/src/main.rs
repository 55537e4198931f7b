// The handler's future nests the runbook's AWS calls (greenlight-aws readers
// built on one another) deeper than rustc's default layout query depth.
#![recursion_limit = "256"]

use failure_handler::{handler, Config, Deps};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    greenlight_aws::init_tracing();
    let config = Config::from_env()?;
    let sdk = greenlight_aws::load_sdk_config().await;
    let deps = Deps::new(&sdk, config);
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<failure_handler::Request>| handler(event, &deps),
    ))
    .await
}
