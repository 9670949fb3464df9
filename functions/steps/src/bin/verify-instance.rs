//! Lambda for the `VerifyInstance` state of migrate-instance: see `ferry_steps::migrate::verify_instance`.
use ferry_steps::{migrate::verify_instance, runtime::serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(verify_instance::handle).await
}
