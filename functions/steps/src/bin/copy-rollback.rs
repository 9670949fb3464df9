//! Lambda for the `Rollback` state of copy-image: see `ferry_steps::copy::rollback`.
use ferry_steps::{copy::rollback, runtime::serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(rollback::handle).await
}
