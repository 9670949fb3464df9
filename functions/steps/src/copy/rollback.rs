//! State `Rollback` of copy-image (the Catch of every state from StartCopy on): as the
//! target, deregister the copies this execution made (found by its tag or the planned
//! name and tag, plus the id CopyImage answered) and delete their snapshots. Deregistering
//! a pending copy stops the copy (EC2 UG, "Stop a pending AMI copy operation"); snapshots
//! that cannot be deleted yet raise `Ferry.ImageNotReady` so the Retry runs it again.

use super::target;
use crate::aws::{aws_error, error_code, Clients};
use crate::cleanup;
use ferry_core::copy::io::{CopyRollbackInput, CopyRollbackReport};
use ferry_core::{ErrorName, FerryError};

pub async fn handle(
    clients: Clients,
    input: CopyRollbackInput,
) -> Result<CopyRollbackReport, FerryError> {
    let plan = &input.plan;
    let target = target::assume(&clients, plan, &plan.request.target_region).await?;
    let ec2 = &target.ec2;
    let mut images: Vec<aws_sdk_ec2::types::Image> = target::own_copies(ec2, plan)
        .await?
        .into_iter()
        .filter(|i| target::is_ours(i, plan))
        .collect();
    if let Some(known) = &input.copy {
        if !known.image_id.is_empty()
            && !images
                .iter()
                .any(|i| i.image_id() == Some(known.image_id.as_str()))
        {
            // The id CopyImage answered with this execution's ClientToken: ours even if
            // its tags are missing, provided the target owns it.
            if let Some(image) = target::image(ec2, &known.image_id).await? {
                if image.owner_id() == Some(plan.request.target_account_id.as_str()) {
                    images.push(image);
                }
            }
        }
    }
    let mut snapshots: Vec<String> = Vec::new();
    let mut deregistered = Vec::new();
    let mut gone_with_images: Vec<String> = Vec::new();
    for image in &images {
        let id = image.image_id().unwrap_or_default().to_string();
        snapshots.extend(target::snapshot_ids(image));
        let done = cleanup::deregister_image(ec2, &id).await?;
        tracing::info!(image = %id, snapshots = ?done.snapshots_deleted, "rollback: deregistered the copy");
        deregistered.push(id);
        gone_with_images.extend(done.snapshots_deleted);
    }
    snapshots.extend(cleanup::own_snapshot_ids(ec2, &plan.execution.execution_arn).await?);
    snapshots.sort();
    snapshots.dedup();
    snapshots.retain(|s| !gone_with_images.contains(s));
    let mut deleted = gone_with_images;
    for snapshot in snapshots {
        match ec2.delete_snapshot().snapshot_id(&snapshot).send().await {
            Ok(_) => deleted.push(snapshot),
            Err(e) if error_code(&e) == Some("InvalidSnapshot.NotFound") => {}
            Err(e)
                if matches!(
                    error_code(&e),
                    Some("InvalidSnapshot.InUse" | "IncorrectState")
                ) =>
            {
                return Err(FerryError::new(
                    ErrorName::ImageNotReady,
                    format!("rollback waits for {snapshot} to be deletable"),
                ))
            }
            Err(e) => return Err(aws_error("DeleteSnapshot", e)),
        }
    }
    Ok(CopyRollbackReport {
        deregistered,
        deleted_snapshots: deleted,
        original_error: input.error.clone(),
    })
}
