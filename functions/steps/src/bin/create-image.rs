//! Lambda for the `CreateImage` state of migrate-instance: see `ferry_steps::migrate::create_image`.
use ferry_steps::{migrate::create_image, runtime::serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(create_image::handle).await
}
