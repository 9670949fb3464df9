//! Read-only calls and SDK conversions shared by the share-image and revoke-share steps.

use crate::aws::{aws_error, error_code};
use aws_sdk_ec2::types::{
    Image, ImageAttributeName, LaunchPermission as SdkLaunchPermission, PermissionGroup,
    SnapshotAttributeName,
};
use aws_sdk_ec2::Client;
use ferry_core::share::facts::SnapshotFacts;
use ferry_core::share::record::LaunchPermission;
use ferry_core::FerryError;

pub use crate::keys::{describe_key, kms_error, requested_key};

/// The caller's own image `image_id`, or `None` (missing, or another account's).
pub async fn own_image(ec2: &Client, image_id: &str) -> Result<Option<Image>, FerryError> {
    crate::images::image(ec2, image_id, crate::images::Owner::Caller).await
}

pub use crate::images::snapshot_ids as image_snapshot_ids;

/// DescribeSnapshots of the image's snapshots (the caller's own).
pub async fn snapshots(ec2: &Client, ids: &[String]) -> Result<Vec<SnapshotFacts>, FerryError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let out = ec2
        .describe_snapshots()
        .owner_ids("self")
        .set_snapshot_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(|e| aws_error("DescribeSnapshots", e))?;
    Ok(ids
        .iter()
        .map(|id| {
            let s = out.snapshots().iter().find(|s| s.snapshot_id() == Some(id));
            SnapshotFacts {
                snapshot_id: id.clone(),
                encrypted: s.and_then(|s| s.encrypted()).unwrap_or(false),
                kms_key_id: s.and_then(|s| s.kms_key_id()).map(str::to_string),
                create_volume_user_ids: Vec::new(),
            }
        })
        .collect())
}

pub fn from_sdk(lp: &SdkLaunchPermission) -> Option<LaunchPermission> {
    if let Some(u) = lp.user_id() {
        return Some(LaunchPermission::UserId(u.to_string()));
    }
    if let Some(o) = lp.organization_arn() {
        return Some(LaunchPermission::OrganizationArn(o.to_string()));
    }
    if let Some(o) = lp.organizational_unit_arn() {
        return Some(LaunchPermission::OrganizationalUnitArn(o.to_string()));
    }
    lp.group()
        .map(|g| LaunchPermission::Group(g.as_str().to_string()))
}

pub fn to_sdk(lp: &LaunchPermission) -> SdkLaunchPermission {
    let b = SdkLaunchPermission::builder();
    match lp {
        LaunchPermission::UserId(v) => b.user_id(v),
        LaunchPermission::OrganizationArn(v) => b.organization_arn(v),
        LaunchPermission::OrganizationalUnitArn(v) => b.organizational_unit_arn(v),
        LaunchPermission::Group(v) => b.group(PermissionGroup::from(v.as_str())),
    }
    .build()
}

/// DescribeImageAttribute launchPermission: who may launch the image now.
pub async fn launch_permissions(
    ec2: &Client,
    image_id: &str,
) -> Result<Vec<LaunchPermission>, FerryError> {
    let out = ec2
        .describe_image_attribute()
        .image_id(image_id)
        .attribute(ImageAttributeName::LaunchPermission)
        .send()
        .await
        .map_err(|e| aws_error("DescribeImageAttribute(launchPermission)", e))?;
    Ok(out
        .launch_permissions()
        .iter()
        .filter_map(from_sdk)
        .collect())
}

/// DescribeSnapshotAttribute createVolumePermission: the account ids that may create
/// volumes from the snapshot; `None` when the snapshot is gone.
pub async fn create_volume_user_ids(
    ec2: &Client,
    snapshot_id: &str,
) -> Result<Option<Vec<String>>, FerryError> {
    match ec2
        .describe_snapshot_attribute()
        .snapshot_id(snapshot_id)
        .attribute(SnapshotAttributeName::CreateVolumePermission)
        .send()
        .await
    {
        Ok(out) => Ok(Some(
            out.create_volume_permissions()
                .iter()
                .filter_map(|p| p.user_id().map(str::to_string))
                .collect(),
        )),
        Err(e) if error_code(&e) == Some("InvalidSnapshot.NotFound") => Ok(None),
        Err(e) => Err(aws_error(
            "DescribeSnapshotAttribute(createVolumePermission)",
            e,
        )),
    }
}

/// The region of an ARN (`arn:aws:states:<region>:...`).
pub fn arn_region(arn: &str) -> Option<String> {
    arn.split(':')
        .nth(3)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
}
