//! Lambda for the `Preflight` state of distribute-image: see `ferry_steps::distribute::preflight`.
use ferry_steps::{distribute::preflight, runtime::serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(preflight::handle).await
}
