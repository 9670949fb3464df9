//! Lambda for the `Apply` state of share-image: see `ferry_steps::share::apply`.
use ferry_steps::{runtime::serve, share::apply};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(apply::handle).await
}
