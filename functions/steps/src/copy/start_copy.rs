//! State `StartCopy`: CopyImage as the target, in the destination region (rule 6),
//! re-encrypted under the target's key, with the source's tags when asked, ferry's
//! provenance tags on the copy and its snapshots, and a ClientToken derived from the
//! execution: a retry (or an SDK retry after a lost answer) returns the same copy.

use super::target;
use crate::aws::{aws_error, aws_error_with, error_code, tag_spec, Clients};
use aws_sdk_ec2::types::ResourceType;
use ferry_core::copy::io::{CopyPlanInput, CopyRef};
use ferry_core::{ErrorName, FerryError};

pub async fn handle(clients: Clients, input: CopyPlanInput) -> Result<CopyRef, FerryError> {
    let plan = &input.plan;
    let r = &plan.request;
    let target = target::assume(&clients, plan, &r.target_region).await?;
    let ec2 = &target.ec2;
    for existing in target::own_copies(ec2, plan).await? {
        if existing.name() == Some(plan.copy_name.as_str()) {
            target::ours_or_conflict(&existing, plan)?;
            tracing::info!(image = ?existing.image_id(), "copy already requested by an earlier attempt");
            return Ok(target::copy_ref(&existing));
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
        .client_token(&plan.client_token)
        .tag_specifications(tag_spec(ResourceType::Image, &plan.tags))
        .tag_specifications(tag_spec(ResourceType::Snapshot, &plan.tags))
        .send()
        .await;
    match copied {
        Ok(out) => {
            let image_id = out.image_id().unwrap_or_default().to_string();
            tracing::info!(image = %image_id, "copy requested");
            Ok(CopyRef {
                image_id,
                name: plan.copy_name.clone(),
                state: "pending".to_string(),
                tags: plan.tags.clone(),
                created_at: Some(ferry_core::rules::polls::epoch_seconds()),
                ..Default::default()
            })
        }
        // A concurrent or timed-out earlier attempt won the race: use its copy.
        Err(e) if error_code(&e) == Some("InvalidAMIName.Duplicate") => {
            let found = target::own_copies(ec2, plan).await?;
            match found
                .iter()
                .find(|i| i.name() == Some(plan.copy_name.as_str()))
            {
                Some(image) => {
                    target::ours_or_conflict(image, plan)?;
                    Ok(target::copy_ref(image))
                }
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
