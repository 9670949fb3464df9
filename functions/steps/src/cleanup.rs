//! Removing what a run created, shared by every workflow's cleanup and rollback steps.
//! Every helper tolerates "already gone" (and says whether it removed anything), so the
//! steps can be retried or re-driven safely.

use crate::aws::{aws_error, error_code, filter};
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

/// Deregisters the image; `false` if it was already gone.
pub async fn deregister_image(ec2: &Client, image_id: &str) -> Result<bool, FerryError> {
    match ec2.deregister_image().image_id(image_id).send().await {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                error_code(&e),
                Some("InvalidAMIID.NotFound" | "InvalidAMIID.Unavailable")
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(aws_error("DeregisterImage", e)),
    }
}

/// Deletes the snapshot; `false` if it was already gone.
pub async fn delete_snapshot(ec2: &Client, snapshot_id: &str) -> Result<bool, FerryError> {
    match ec2.delete_snapshot().snapshot_id(snapshot_id).send().await {
        Ok(_) => Ok(true),
        Err(e) if error_code(&e) == Some("InvalidSnapshot.NotFound") => Ok(false),
        Err(e) => Err(aws_error("DeleteSnapshot", e)),
    }
}
