//! Lambda for the `StartCopy` state of copy-image: see `ferry_steps::copy::start_copy`.
use ferry_steps::{copy::start_copy, runtime::serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(start_copy::handle).await
}
