//! State `WaitImage`: one DescribeImages per attempt. `pending` raises
//! `Ferry.ImageNotReady`, which the state's Retry turns into a backed-off poll (rule 16);
//! `failed` raises `Ferry.ImageFailed` with the StateReason.

use super::describe;
use crate::aws::Clients;
use ferry_core::io::ImageRef;
use ferry_core::migrate::io::ImageInput;

use ferry_core::rules::polls::{self, ImagePoll};
use ferry_core::{ErrorName, FerryError};

pub async fn handle(clients: Clients, input: ImageInput) -> Result<ImageRef, FerryError> {
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
