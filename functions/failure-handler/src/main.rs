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
