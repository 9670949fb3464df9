//! Lambda for the `WaitImage` state of migrate-instance: see `ferry_steps::migrate::wait_image`.
use ferry_steps::{migrate::wait_image, runtime::serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(wait_image::handle).await
}
