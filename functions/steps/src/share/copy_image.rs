//! State `CopyImage` of share-image: CopyImage in the same account and region,
//! re-encrypted under the `reencryptWith` key (an AMI under aws/ebs cannot be shared,
//! rule 1), named and tagged after the execution, with a ClientToken from it so that a
//! retry returns the same copy. The original is not touched.

use crate::aws::{aws_error, error_code, filter, tag_spec, Clients};
use aws_sdk_ec2::types::ResourceType;
use ferry_core::io::ImageRef;
use ferry_core::share::io::SharePlanInput;
use ferry_core::tags::TAG_EXECUTION;
use ferry_core::FerryError;

pub async fn handle(clients: Clients, input: SharePlanInput) -> Result<ImageRef, FerryError> {
    let plan = &input.plan;
    let Some(copy) = &plan.reencrypt else {
        return Err(FerryError::invalid_input(
            "CopyImage: the plan has no re-encrypted copy",
        ));
    };
    let ec2 = &clients.ec2;
    let sent = ec2
        .copy_image()
        .source_image_id(&plan.image_id)
        .source_region(&plan.region)
        .name(&copy.name)
        .description(&copy.description)
        .encrypted(true)
        .kms_key_id(&copy.key_arn)
        .client_token(&copy.client_token)
        .tag_specifications(tag_spec(ResourceType::Image, &copy.tags))
        .tag_specifications(tag_spec(ResourceType::Snapshot, &copy.tags))
        .send()
        .await;
    let image_id = match sent {
        Ok(out) => out.image_id().unwrap_or_default().to_string(),
        // An earlier attempt made it under the same name: find it by this execution's tag.
        Err(e) if error_code(&e) == Some("InvalidAMIName.Duplicate") => {
            let found = ec2
                .describe_images()
                .owners("self")
                .filters(filter("name", &copy.name))
                .filters(filter(
                    &format!("tag:{TAG_EXECUTION}"),
                    &plan.execution.execution_arn,
                ))
                .send()
                .await
                .map_err(|e| aws_error("DescribeImages", e))?;
            match found.images().first().and_then(|i| i.image_id()) {
                Some(id) => id.to_string(),
                None => return Err(aws_error("CopyImage", e)),
            }
        }
        Err(e) => return Err(aws_error("CopyImage", e)),
    };
    tracing::info!(source = %plan.image_id, copy = %image_id, key = %copy.key_arn, "re-encrypted copy requested");
    Ok(ImageRef {
        image_id,
        name: copy.name.clone(),
        state: "pending".to_string(),
        snapshot_ids: Vec::new(),
        created_at: Some(ferry_core::rules::polls::epoch_seconds()),
    })
}
