//! Lambda for the `Finalize` state of migrate-instance: see `ferry_steps::migrate::finalize`.
use ferry_steps::{migrate::finalize, runtime::serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(finalize::handle).await
}
