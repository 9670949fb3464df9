//! State `Cleanup` of share-image: after a failure past Preflight, deregister the
//! re-encrypted copy this execution made (found by its `ferry:execution` and
//! `ferry:workflow` tags, so a copy whose CopyImage call timed out is found too) and
//! delete its snapshots. Nothing else is touched; without a planned copy it makes no call.

use crate::aws::{aws_error, filter, Clients};
use crate::cleanup::{self, SnapshotRemoval};
use ferry_core::share::io::{ShareCleanupInput, ShareCleanupOutput};
use ferry_core::share::WORKFLOW_SHARE_IMAGE;
use ferry_core::tags::{TAG_EXECUTION, TAG_WORKFLOW};
use ferry_core::FerryError;

pub async fn handle(
    clients: Clients,
    input: ShareCleanupInput,
) -> Result<ShareCleanupOutput, FerryError> {
    let plan = &input.plan;
    let mut out = ShareCleanupOutput::default();
    if plan.reencrypt.is_none() {
        return Ok(out);
    }
    let ec2 = &clients.ec2;
    let execution = &plan.execution.execution_arn;
    let mine = || {
        [
            filter(&format!("tag:{TAG_EXECUTION}"), execution),
            filter(&format!("tag:{TAG_WORKFLOW}"), WORKFLOW_SHARE_IMAGE),
        ]
    };
    let images = ec2
        .describe_images()
        .owners("self")
        .set_filters(Some(mine().to_vec()))
        .send()
        .await
        .map_err(|e| aws_error("DescribeImages", e))?;
    for image in images.images() {
        let Some(id) = image.image_id() else { continue };
        let done = cleanup::deregister_image(ec2, id).await?;
        if done.existed {
            out.deregistered_images.push(id.to_string());
        }
        out.deleted_snapshots.extend(done.snapshots_deleted);
    }
    let snapshots = ec2
        .describe_snapshots()
        .owner_ids("self")
        .set_filters(Some(mine().to_vec()))
        .send()
        .await
        .map_err(|e| aws_error("DescribeSnapshots", e))?;
    for snapshot in snapshots.snapshots() {
        let Some(id) = snapshot.snapshot_id() else {
            continue;
        };
        match cleanup::delete_snapshot(ec2, id).await? {
            SnapshotRemoval::Deleted => out.deleted_snapshots.push(id.to_string()),
            SnapshotRemoval::Gone => {}
            SnapshotRemoval::InUse => {
                tracing::warn!(snapshot = %id, "cleanup: snapshot still in use, left in place")
            }
        }
    }
    tracing::info!(images = ?out.deregistered_images, snapshots = ?out.deleted_snapshots, "removed this execution's copy");
    Ok(out)
}
