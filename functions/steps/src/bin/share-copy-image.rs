//! Lambda for the `CopyImage` state of share-image: see `ferry_steps::share::copy_image`.
use ferry_steps::{runtime::serve, share::copy_image};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(copy_image::handle).await
}
