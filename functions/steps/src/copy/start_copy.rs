//! State `StartCopy`: CopyImage as the target, in the destination region (rule 6),
//! re-encrypted under the target's key, with the source's tags when asked, ferry's
//! provenance tags on the copy and its snapshots, and a ClientToken derived from the
//! execution: a retry (or an SDK retry after a lost answer) returns the same copy.
//!
//! Entered again (from `CopyAgain?`) with the copy that failed because EC2 could not use
//! a KMS key (rule 23, a grant not in effect yet): that copy, which this execution made,
//! is removed with its snapshots and the next copy is made with a token of its own.

use super::target;
use crate::aws::{aws_error, aws_error_with, error_code, tag_spec, Clients};
use crate::cleanup;
use aws_sdk_ec2::types::ResourceType;
use ferry_core::copy::io::{CopyPlanInput, CopyRef};
use ferry_core::copy::plan::{recopy_after_seconds, CopyPlan};
use ferry_core::{ErrorName, FerryError};

pub async fn handle(clients: Clients, input: CopyPlanInput) -> Result<CopyRef, FerryError> {
    let plan = &input.plan;
    let r = &plan.request;
    let target = target::assume(&clients, plan, &r.target_region).await?;
    let ec2 = &target.ec2;
    let failed = input.copy.as_ref().filter(|c| !c.image_id.is_empty());
    let attempt = failed.map_or(1, |c| c.attempt.max(1) + 1);
    if let Some(failed) = failed {
        remove_failed_copy(ec2, plan, failed).await?;
    }
    let removed = failed.map(|c| c.image_id.as_str());
    for existing in target::own_copies(ec2, plan).await? {
        if existing.name() == Some(plan.copy_name.as_str()) && existing.image_id() != removed {
            target::ours_or_conflict(&existing, plan)?;
            tracing::info!(image = ?existing.image_id(), attempt, "copy already requested by an earlier attempt");
            return Ok(numbered(target::copy_ref(&existing), attempt));
        }
    }
    let copied = ec2
        .copy_image()
        .source_image_id(&r.source_image_id)
        .source_region(&r.source_region)
        .name(&plan.copy_name)
        .description(&plan.description)
        .encrypted(true)
        .kms_key_id(&r.target_kms_key_id)
        .copy_image_tags(plan.copy_image_tags)
        .client_token(plan.client_token_for(attempt))
        .tag_specifications(tag_spec(ResourceType::Image, &plan.tags))
        .tag_specifications(tag_spec(ResourceType::Snapshot, &plan.tags))
        .send()
        .await;
    match copied {
        Ok(out) => {
            let image_id = out.image_id().unwrap_or_default().to_string();
            tracing::info!(image = %image_id, attempt, "copy requested");
            Ok(numbered(
                CopyRef {
                    image_id,
                    name: plan.copy_name.clone(),
                    state: "pending".to_string(),
                    tags: plan.tags.clone(),
                    created_at: Some(ferry_core::rules::polls::epoch_seconds()),
                    ..Default::default()
                },
                attempt,
            ))
        }
        // A concurrent or timed-out earlier attempt won the race: use its copy.
        Err(e) if error_code(&e) == Some("InvalidAMIName.Duplicate") => {
            let found = target::own_copies(ec2, plan).await?;
            match found
                .iter()
                .find(|i| i.name() == Some(plan.copy_name.as_str()) && i.image_id() != removed)
            {
                Some(image) => {
                    target::ours_or_conflict(image, plan)?;
                    Ok(numbered(target::copy_ref(image), attempt))
                }
                // The name is still held by the copy just removed: EC2 frees it shortly.
                None if removed.is_some() => Err(FerryError::new(
                    ErrorName::Transient,
                    format!(
                        "CopyImage: the name {} is still held by the failed copy {} that was just deregistered",
                        plan.copy_name,
                        removed.unwrap_or_default()
                    ),
                )),
                None => Err(aws_error("CopyImage", e)),
            }
        }
        Err(e) => Err(aws_error_with(
            "CopyImage",
            e,
            &[
                ("InvalidAMIID.NotFound", ErrorName::ImageNotFound),
                ("InvalidAMIID.Unavailable", ErrorName::ImageNotFound),
                ("AuthFailure", ErrorName::TargetAccessDenied),
                ("UnauthorizedOperation", ErrorName::TargetAccessDenied),
            ],
        )),
    }
}

/// The copy's number and, should it fail on its key too, the wait before the next.
fn numbered(copy: CopyRef, attempt: u32) -> CopyRef {
    CopyRef {
        attempt,
        recopy_after_seconds: recopy_after_seconds(attempt),
        ..copy
    }
}

/// Removes the copy that failed on its key, and its snapshots, if this execution made it
/// and it is still `failed` (a copy that is not failed is never removed here). Snapshots
/// EC2 does not let go of yet raise `Ferry.ImageNotReady` (the state's Retry waits).
async fn remove_failed_copy(
    ec2: &aws_sdk_ec2::Client,
    plan: &CopyPlan,
    failed: &CopyRef,
) -> Result<(), FerryError> {
    let id = &failed.image_id;
    let mut snapshots = cleanup::own_snapshot_ids(ec2, &plan.execution.execution_arn).await?;
    if let Some(image) = target::image(ec2, id).await? {
        let state = target::image_state(&image);
        if !target::is_ours(&image, plan) || state != "failed" {
            return Err(FerryError::new(
                ErrorName::AwsError,
                format!("copy {id} is {state}, not a failed copy of this execution: it is left as it is"),
            ));
        }
        snapshots.extend(target::snapshot_ids(&image));
    }
    snapshots.sort();
    snapshots.dedup();
    let left = cleanup::remove_image_and_snapshots(ec2, id, &snapshots).await?;
    tracing::info!(image = %id, ?left, "removed the copy that failed on its key");
    if !left.is_empty() {
        return Err(FerryError::new(
            ErrorName::ImageNotReady,
            format!(
                "the snapshots {} of the failed copy {id} cannot be deleted yet",
                left.join(", ")
            ),
        ));
    }
    Ok(())
}
