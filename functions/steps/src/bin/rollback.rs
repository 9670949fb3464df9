//! Lambda for the `Rollback` state of migrate-instance: see `ferry_steps::migrate::rollback`.
use ferry_steps::{migrate::rollback, runtime::serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(rollback::handle).await
}
