//! Lambda for the `TargetFailed` state of distribute-image: see `ferry_steps::distribute::target_failed`.
use ferry_steps::{distribute::target_failed, runtime::serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(target_failed::handle).await
}
