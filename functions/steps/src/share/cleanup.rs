//! State `Cleanup` of share-image: after a failure past Preflight, deregister the
//! re-encrypted copy this execution made (found by its `ferry:execution` and
//! `ferry:workflow` tags, so a copy whose CopyImage call timed out is found too) and
//! delete its snapshots. Nothing else is touched; without a planned copy it makes no call.

use crate::aws::{aws_error, filter, Clients};
use crate::cleanup::{self, SnapshotRemoval};
use ferry_core::share::io::{ShareCleanupInput, ShareCleanupOutput};
use ferry_core::share::plan::snapshot_permissions_to_add;
use ferry_core::share::WORKFLOW_SHARE_IMAGE;
use ferry_core::tags::{TAG_EXECUTION, TAG_WORKFLOW};
use ferry_core::FerryError;

pub async fn handle(
    clients: Clients,
    input: ShareCleanupInput,
) -> Result<ShareCleanupOutput, FerryError> {
    let plan = &input.plan;
    let mut out = ShareCleanupOutput::default();
    let execution = &plan.execution.execution_arn;
    if plan.reencrypt.is_none() {
        // Apply may have failed half-way on the image itself: take back what its plan
        // added (issue 8, 2.8), nothing that was there before.
        let (launch, snapshots, grants) = super::revoke_share::undo_apply(
            &clients,
            &plan.image_id,
            plan.launch_permissions.clone(),
            &snapshot_permissions_to_add(&plan.snapshots, &plan.targets.account_ids),
            &plan.grant_key_arns,
            &plan.targets.account_ids,
            execution,
        )
        .await?;
        out.unshared_launch_permissions = launch.len();
        out.unshared_snapshot_permissions = snapshots.len();
        out.revoked_grants = grants.into_iter().map(|g| g.grant_id).collect();
        tracing::info!(?out, "took back what Apply had applied");
        return Ok(out);
    }
    let ec2 = &clients.ec2;
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
    // Grants on the re-encryption key for the copy (the copy's permissions went with it).
    for image in &out.deregistered_images.clone() {
        let (_, _, grants) = super::revoke_share::undo_apply(
            &clients,
            image,
            Vec::new(),
            &[],
            &plan.grant_key_arns,
            &plan.targets.account_ids,
            execution,
        )
        .await?;
        out.revoked_grants
            .extend(grants.into_iter().map(|g| g.grant_id));
    }
    tracing::info!(images = ?out.deregistered_images, snapshots = ?out.deleted_snapshots, "removed this execution's copy");
    Ok(out)
}
