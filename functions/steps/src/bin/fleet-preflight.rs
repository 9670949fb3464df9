//! Lambda for the `Preflight` state of migrate-fleet: see `ferry_steps::fleet::preflight`.
use ferry_steps::{fleet::preflight, runtime::serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(preflight::handle).await
}
