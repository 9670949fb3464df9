//! Lambda of revoke-share (its state machine's one state, and a Task of copy-image):
//! see `ferry_steps::share::revoke_share`.
use ferry_steps::{runtime::serve, share::revoke_share};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(revoke_share::handle).await
}
