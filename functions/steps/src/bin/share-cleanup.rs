//! Lambda for the `Cleanup` state of share-image: see `ferry_steps::share::cleanup`.
use ferry_steps::{runtime::serve, share::cleanup};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(cleanup::handle).await
}
