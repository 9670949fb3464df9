//! Lambda for the `WaitCopy` state of copy-image: see `ferry_steps::copy::wait_copy`.
use ferry_steps::{copy::wait_copy, runtime::serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(wait_copy::handle).await
}
