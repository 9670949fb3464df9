//! State `WaitImage`: a `.waitForTaskToken` Task (see `ferry_core::waits`). Each attempt
//! makes one DescribeImages: `available` ends the wait at once (SendTaskSuccess with the
//! image), `failed` fails it with `Ferry.ImageFailed` and the StateReason, `pending`
//! leaves it to the image's "EC2 AMI State Change" event (the `ImageEvent` function) or,
//! when that event never comes, to the next attempt after the Task's timeout.
//! Without a token (a plain Lambda Task) it is the old poll: `pending` raises
//! `Ferry.ImageNotReady` for the state's Retry (rule 16).

use super::describe;
use crate::aws::Clients;
use crate::waits;
use ferry_core::io::ImageRef;
use ferry_core::migrate::io::ImageInput;

use ferry_core::rules::polls::{self, ImagePoll};
use ferry_core::{ErrorName, FerryError};

pub async fn handle(clients: Clients, input: ImageInput) -> Result<ImageRef, FerryError> {
    let polled = poll(&clients, &input).await;
    waits::end_of_attempt(
        &clients.sfn,
        input.task_token.as_deref(),
        polled,
        input.image,
    )
    .await
}

/// One DescribeImages: the image if it is available, `Ferry.ImageNotReady` while it is
/// pending (or not visible yet, rule 19), `Ferry.ImageFailed` otherwise.
async fn poll(clients: &Clients, input: &ImageInput) -> Result<ImageRef, FerryError> {
    let id = &input.image.image_id;
    let image = describe::image(&clients.ec2, id).await?.ok_or_else(|| {
        polls::missing_after_create(
            &format!("image {id}"),
            input.image.created_at,
            polls::epoch_seconds(),
            ErrorName::ImageNotReady,
            ErrorName::ImageFailed,
        )
    })?;
    let state = describe::image_state(&image);
    let reason = image.state_reason().and_then(|r| r.message());
    match polls::image_poll(id, &state, reason)? {
        ImagePoll::Available => Ok(describe::image_ref(&image)),
        ImagePoll::NotReady => Err(polls::image_not_ready(id, &state)),
    }
}
