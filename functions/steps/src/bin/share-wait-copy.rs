//! Lambda for the `WaitCopy` state of share-image: see `ferry_steps::share::wait_copy`.
use ferry_steps::{runtime::serve, share::wait_copy};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(wait_copy::handle).await
}
