//! Lambda for the `LaunchInstance` state of migrate-instance: see `ferry_steps::migrate::launch_instance`.
use ferry_steps::{migrate::launch_instance, runtime::serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(launch_instance::handle).await
}
