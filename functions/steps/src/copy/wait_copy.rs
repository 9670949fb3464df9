//! State `WaitCopy`: a `.waitForTaskToken` Task (see `ferry_core::waits`); each attempt
//! is one DescribeImages as the target. `available` ends the wait at once
//! (SendTaskSuccess, as the hub); `pending` leaves it to the copy's event, forwarded from
//! the target's bus to the hub's (the `ImageEvent` function then fails the Task with
//! `Ferry.PollNow`, whose 1 s Retry is the next poll), or to the attempt's timeout (the
//! slow fallback: events are best effort, and a target may not forward them at all).
//! Without a token (a plain Lambda Task) `pending` raises `Ferry.ImageNotReady` for a
//! Retry (rule 16). `failed` raises `Ferry.ImageFailed` with the
//! StateReason), or `Ferry.CopyKeyNotUsable` when the StateReason says EC2 could not use a
//! KMS key (rule 23: `CopyAgain?` makes the copy again after a wait). When available, reports the
//! copy's snapshots and the KMS key they are under.

use super::target;
use crate::aws::{aws_error, Clients};
use crate::waits;
use ferry_core::copy::io::{CopyImageInput, CopyRef};

use ferry_core::rules::polls::{self, ImagePoll};
use ferry_core::{ErrorName, FerryError};

pub async fn handle(clients: Clients, input: CopyImageInput) -> Result<CopyRef, FerryError> {
    let polled = poll(&clients, &input).await;
    waits::end_of_attempt(
        &clients.sfn,
        input.task_token.as_deref(),
        polled,
        input.copy.clone(),
    )
    .await
}

/// One poll of the copy as the target.
async fn poll(clients: &Clients, input: &CopyImageInput) -> Result<CopyRef, FerryError> {
    let plan = &input.plan;
    let target = target::assume(clients, plan, &plan.request.target_region).await?;
    let id = &input.copy.image_id;
    let image = target::image(&target.ec2, id).await?.ok_or_else(|| {
        polls::missing_after_create(
            &format!("copy {id} in account {}", plan.request.target_account_id),
            input.copy.created_at,
            polls::epoch_seconds(),
            ErrorName::ImageNotReady,
            ErrorName::ImageFailed,
        )
    })?;
    let state = target::image_state(&image);
    let code = image.state_reason().and_then(|r| r.code());
    let reason = image.state_reason().and_then(|r| r.message());
    if state == "failed" && ferry_core::rules::kms::copy_failed_on_key(code, reason) {
        return Err(FerryError::new(
            ErrorName::CopyKeyNotUsable,
            format!(
                "copy {id} (copy {} of at most {}) failed because EC2 could not use a KMS key: {}; a grant made by the share may not be in effect yet",
                input.copy.attempt.max(1),
                ferry_core::copy::plan::COPY_KEY_ATTEMPTS,
                reason.or(code).unwrap_or("no state reason given")
            ),
        ));
    }
    match polls::image_poll(id, &state, reason)? {
        ImagePoll::NotReady => Err(polls::image_not_ready(id, &state)),
        ImagePoll::Available => {
            let mut copy = target::copy_ref(&image);
            copy.attempt = input.copy.attempt;
            if !copy.snapshot_ids.is_empty() {
                let snaps = target
                    .ec2
                    .describe_snapshots()
                    .owner_ids("self")
                    .set_snapshot_ids(Some(copy.snapshot_ids.clone()))
                    .send()
                    .await
                    .map_err(|e| aws_error("DescribeSnapshots", e))?;
                let mut keys: Vec<String> = snaps
                    .snapshots()
                    .iter()
                    .filter_map(|s| s.kms_key_id().map(str::to_string))
                    .collect();
                keys.sort();
                keys.dedup();
                copy.kms_key_ids = keys;
            }
            Ok(copy)
        }
    }
}
