use deployment_watcher::{entry, Config, Deps};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    greenlight_aws::init_tracing();
    let config = Config::from_env()?;
    let sdk = greenlight_aws::load_sdk_config().await;
    let deps = Deps::new(&sdk, config);
    lambda_runtime::run(service_fn(|ev: LambdaEvent<serde_json::Value>| {
        entry(ev, &deps)
    }))
    .await
}
