//! Lambda `ImageEvent` (an EventBridge target, not a state): "EC2 AMI State Change" ends
//! the `.waitForTaskToken` wait of the execution that made the image; see
//! `ferry_steps::waits::image_event`.
use ferry_steps::{runtime::serve, waits::image_event};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(image_event).await
}
