//! Lambda for the `ResolveImage` state of distribute-image: see `ferry_steps::distribute::resolve_image`.
use ferry_steps::{distribute::resolve_image, runtime::serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(resolve_image::handle).await
}
