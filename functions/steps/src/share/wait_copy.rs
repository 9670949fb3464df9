//! State `WaitCopy` of share-image: one DescribeImages per attempt. `pending` raises
//! `Ferry.ImageNotReady` (the state's Retry polls, rule 16); `failed` raises
//! `Ferry.ImageFailed` with the StateReason; `available` returns the copy and its snapshots.

use super::read;
use crate::aws::Clients;
use ferry_core::io::ImageRef;

use ferry_core::rules::polls::{self, ImagePoll};
use ferry_core::share::io::ShareApplyInput;
use ferry_core::{ErrorName, FerryError};

pub async fn handle(clients: Clients, input: ShareApplyInput) -> Result<ImageRef, FerryError> {
    let copy = input
        .copy
        .ok_or_else(|| FerryError::invalid_input("WaitCopy: no copy to wait for"))?;
    let id = &copy.image_id;
    let image = read::own_image(&clients.ec2, id).await?.ok_or_else(|| {
        polls::missing_after_create(
            &format!("the copy {id}"),
            copy.created_at,
            polls::epoch_seconds(),
            ErrorName::ImageNotReady,
            ErrorName::ImageFailed,
        )
    })?;
    let state = image
        .state()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    let reason = image.state_reason().and_then(|r| r.message());
    match polls::image_poll(id, &state, reason)? {
        ImagePoll::Available => Ok(ImageRef {
            image_id: id.clone(),
            name: image.name().unwrap_or_default().to_string(),
            state,
            snapshot_ids: read::image_snapshot_ids(&image),
            created_at: None,
        }),
        ImagePoll::NotReady => Err(polls::image_not_ready(id, &state)),
    }
}
