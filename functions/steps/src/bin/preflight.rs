//! Lambda for the `Preflight` state of migrate-instance: see `ferry_steps::migrate::preflight`.
use ferry_steps::{migrate::preflight, runtime::serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(preflight::handle).await
}
