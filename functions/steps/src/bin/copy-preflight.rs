//! Lambda for the `Preflight` state of copy-image: see `ferry_steps::copy::preflight`.
use ferry_steps::{copy::preflight, runtime::serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(preflight::handle).await
}
