//! Lambda for the `Preflight` state of share-image: see `ferry_steps::share::preflight`.
use ferry_steps::{runtime::serve, share::preflight};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(preflight::handle).await
}
