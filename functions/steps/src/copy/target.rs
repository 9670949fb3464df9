//! Acting as the target account, and reading its copies.

use crate::aws::{aws_error, filter, tag_map, Clients};
use aws_sdk_ec2::types::Image;
use aws_sdk_ec2::Client;
use ferry_core::copy::io::CopyRef;
use ferry_core::copy::plan::CopyPlan;
use ferry_core::tags::TAG_EXECUTION;
use ferry_core::{ErrorName, FerryError};

/// The target account's clients in `region` (STS AssumeRole with the ExternalId; a
/// refusal is `Ferry.TargetAccessDenied`).
pub async fn assume(
    clients: &Clients,
    plan: &CopyPlan,
    region: &str,
) -> Result<Clients, FerryError> {
    let r = &plan.request;
    clients
        .assume(
            &r.target_role_arn,
            Some(&r.external_id),
            &plan.session_name,
            Some(region),
        )
        .await
}

/// One image by id as the caller sees it, or `None` if it does not exist for it.
pub async fn image(ec2: &Client, image_id: &str) -> Result<Option<Image>, FerryError> {
    crate::images::image(ec2, image_id, crate::images::Owner::Visible).await
}

/// The target's own images that this execution made: tagged with it, or named as the
/// plan names the copy (a copy whose tags were lost is still found by its name).
pub async fn own_copies(ec2: &Client, plan: &CopyPlan) -> Result<Vec<Image>, FerryError> {
    let arn = &plan.execution.execution_arn;
    let mut out: Vec<Image> = Vec::new();
    for f in [
        filter(&format!("tag:{TAG_EXECUTION}"), arn),
        filter("name", &plan.copy_name),
    ] {
        let found = ec2
            .describe_images()
            .owners("self")
            .filters(f)
            .send()
            .await
            .map_err(|e| aws_error("DescribeImages", e))?;
        for image in found.images() {
            if !out.iter().any(|i| i.image_id() == image.image_id()) {
                out.push(image.clone());
            }
        }
    }
    Ok(out)
}

/// Whether this execution made `image`: it carries the execution's tag.
pub fn is_ours(image: &Image, plan: &CopyPlan) -> bool {
    tag_map(image.tags()).get(TAG_EXECUTION) == Some(&plan.execution.execution_arn)
}

/// The image named as the plan names the copy must be this execution's, else refuse:
/// ferry never adopts (or removes) what it did not make.
pub fn ours_or_conflict(image: &Image, plan: &CopyPlan) -> Result<(), FerryError> {
    if is_ours(image, plan) {
        Ok(())
    } else {
        Err(FerryError::new(
            ErrorName::UnsupportedConfiguration,
            format!(
                "account {} already has an image named {} ({}) that this execution did not create; choose another name",
                plan.request.target_account_id,
                plan.copy_name,
                image.image_id().unwrap_or_default()
            ),
        ))
    }
}

pub use crate::images::state as image_state;

pub use crate::images::snapshot_ids;

pub fn copy_ref(image: &Image) -> CopyRef {
    CopyRef {
        image_id: image.image_id().unwrap_or_default().to_string(),
        name: image.name().unwrap_or_default().to_string(),
        state: image_state(image),
        snapshot_ids: snapshot_ids(image),
        kms_key_ids: Vec::new(),
        tags: tag_map(image.tags()),
        ..Default::default()
    }
}
