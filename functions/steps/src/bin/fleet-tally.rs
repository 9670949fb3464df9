//! Lambda for the `Tally` state of migrate-fleet: see `ferry_steps::fleet::tally`.
use ferry_steps::{fleet::tally, runtime::serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(tally::handle).await
}
