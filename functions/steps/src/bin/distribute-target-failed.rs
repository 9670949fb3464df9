//! Lambda for the `TargetFailed` state of distribute-image: see `ferry_steps::copy::distribute`.
use ferry_steps::{copy::distribute, runtime::serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(distribute::target_failed).await
}
