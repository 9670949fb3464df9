//! State `WaitCopy` of share-image: a `.waitForTaskToken` Task (see `ferry_core::waits`),
//! like migrate-instance's `WaitImage`. Each attempt makes one DescribeImages of the
//! re-encrypted copy: `available` ends the wait at once (SendTaskSuccess with the copy and
//! its snapshots), `failed` fails it with `Ferry.ImageFailed` and the StateReason,
//! `pending` leaves it to the copy's "EC2 AMI State Change" event (the `ImageEvent`
//! function: the copy carries this execution's `ferry:execution` tag) or, when that
//! event never comes, to the next attempt after the Task's timeout.
//! Without a token (a plain Lambda Task) it is the old poll: `pending` raises
//! `Ferry.ImageNotReady` for the state's Retry (rule 16).

use super::read;
use crate::aws::Clients;
use crate::waits;
use ferry_core::io::ImageRef;

use ferry_core::rules::polls::{self, ImagePoll};
use ferry_core::share::io::ShareApplyInput;
use ferry_core::{ErrorName, FerryError};

pub async fn handle(clients: Clients, input: ShareApplyInput) -> Result<ImageRef, FerryError> {
    let copy = input
        .copy
        .clone()
        .ok_or_else(|| FerryError::invalid_input("WaitCopy: no copy to wait for"))?;
    let polled = poll(&clients, &copy).await;
    waits::end_of_attempt(&clients.sfn, input.task_token.as_deref(), polled, copy).await
}

/// One DescribeImages: the copy if it is available, `Ferry.ImageNotReady` while it is
/// pending (or not visible yet, rule 19), `Ferry.ImageFailed` otherwise.
async fn poll(clients: &Clients, copy: &ImageRef) -> Result<ImageRef, FerryError> {
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
