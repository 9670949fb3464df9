//! Lambda of revoke-share (its state machine's one state, and a Task of copy-image):
//! see `ferry_steps::share::revoke`.
use ferry_steps::{runtime::serve, share::revoke};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(revoke::handle).await
}
