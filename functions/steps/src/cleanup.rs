//! Removing what a run created, shared by every workflow's cleanup and rollback steps.
//! Every helper tolerates "already gone" (and says whether it removed anything), so the
//! steps can be retried or re-driven safely.

use crate::aws::{aws_error, error_code, filter};
use aws_sdk_ec2::types::SnapshotReturnCodes;
use aws_sdk_ec2::Client;
use ferry_core::tags::TAG_EXECUTION;
use ferry_core::FerryError;

/// Snapshots of this account tagged with this execution.
pub async fn own_snapshot_ids(
    ec2: &Client,
    execution_arn: &str,
) -> Result<Vec<String>, FerryError> {
    let out = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(filter(&format!("tag:{TAG_EXECUTION}"), execution_arn))
        .send()
        .await
        .map_err(|e| aws_error("DescribeSnapshots", e))?;
    Ok(out
        .snapshots()
        .iter()
        .filter_map(|s| s.snapshot_id().map(str::to_string))
        .collect())
}

/// What DeregisterImage did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deregistered {
    /// `false`: the image was already gone.
    pub existed: bool,
    /// The image's snapshots EC2 deleted with it.
    pub snapshots_deleted: Vec<String>,
}

/// Deregisters the image together with its snapshots (`DeleteAssociatedSnapshots`), so no
/// snapshot is left "in use" by an image that was just deregistered (rule 20: a
/// DeleteSnapshot right after DeregisterImage can fail with `InvalidSnapshot.InUse`). A
/// snapshot another AMI also uses is kept by EC2 (not listed as deleted).
pub async fn deregister_image(ec2: &Client, image_id: &str) -> Result<Deregistered, FerryError> {
    match ec2
        .deregister_image()
        .image_id(image_id)
        .delete_associated_snapshots(true)
        .send()
        .await
    {
        Ok(out) => Ok(Deregistered {
            existed: true,
            snapshots_deleted: out
                .delete_snapshot_results()
                .iter()
                .filter(|r| r.return_code() == Some(&SnapshotReturnCodes::Success))
                .filter_map(|r| r.snapshot_id().map(str::to_string))
                .collect(),
        }),
        Err(e)
            if matches!(
                error_code(&e),
                Some("InvalidAMIID.NotFound" | "InvalidAMIID.Unavailable")
            ) =>
        {
            Ok(Deregistered::default())
        }
        Err(e) => Err(aws_error("DeregisterImage", e)),
    }
}

/// What DeleteSnapshot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotRemoval {
    Deleted,
    /// Already gone.
    Gone,
    /// `InvalidSnapshot.InUse`: an image still uses it, or one was deregistered moments ago
    /// (rule 20). Deleting it later works; the caller decides whether to wait or report it.
    InUse,
}

/// Deletes the snapshot.
pub async fn delete_snapshot(
    ec2: &Client,
    snapshot_id: &str,
) -> Result<SnapshotRemoval, FerryError> {
    match ec2.delete_snapshot().snapshot_id(snapshot_id).send().await {
        Ok(_) => Ok(SnapshotRemoval::Deleted),
        Err(e) if error_code(&e) == Some("InvalidSnapshot.NotFound") => Ok(SnapshotRemoval::Gone),
        Err(e) if error_code(&e) == Some("InvalidSnapshot.InUse") => Ok(SnapshotRemoval::InUse),
        Err(e) => Err(aws_error("DeleteSnapshot", e)),
    }
}

/// Removes an image this run made and every snapshot of it (`snapshot_ids`: the image's and
/// those tagged with the execution): the image with its snapshots, then what is left.
/// Returns the ids that could not be removed (snapshots still in use).
pub async fn remove_image_and_snapshots(
    ec2: &Client,
    image_id: &str,
    snapshot_ids: &[String],
) -> Result<Vec<String>, FerryError> {
    let done = deregister_image(ec2, image_id).await?;
    let mut left = Vec::new();
    for snapshot in snapshot_ids {
        if done.snapshots_deleted.contains(snapshot) {
            continue;
        }
        if delete_snapshot(ec2, snapshot).await? == SnapshotRemoval::InUse {
            left.push(snapshot.clone());
        }
    }
    Ok(left)
}

/// Ends a migration's "in flight" state on what it made (`ferry:in-flight`, see
/// ferry_core::tags::TAG_IN_FLIGHT): after this, no rollback's role may remove them.
pub async fn end_in_flight(ec2: &Client, resource_ids: &[String]) -> Result<(), FerryError> {
    if resource_ids.is_empty() {
        return Ok(());
    }
    ec2.delete_tags()
        .set_resources(Some(resource_ids.to_vec()))
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key(ferry_core::tags::TAG_IN_FLIGHT)
                .build(),
        )
        .send()
        .await
        .map_err(|e| aws_error("DeleteTags(ferry:in-flight)", e))?;
    Ok(())
}
