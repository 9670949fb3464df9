//! Read-only calls shared by several steps.

use crate::aws::{aws_error, filter, tag_map};
use aws_sdk_ec2::types::{Image, Instance};
use aws_sdk_ec2::Client;
use ferry_core::io::ImageRef;
use ferry_core::tags::TAG_EXECUTION;
use ferry_core::{ErrorName, FerryError};

/// One instance by id, or `None` if EC2 does not know it.
pub async fn instance(ec2: &Client, instance_id: &str) -> Result<Option<Instance>, FerryError> {
    match ec2
        .describe_instances()
        .instance_ids(instance_id)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.instance_id() == Some(instance_id))
            .cloned()),
        Err(e)
            if matches!(
                crate::aws::error_code(&e),
                Some("InvalidInstanceID.NotFound" | "InvalidInstanceID.Malformed")
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error("DescribeInstances", e)),
    }
}

/// One instance by id that must exist.
pub async fn existing_instance(
    ec2: &Client,
    instance_id: &str,
    missing: ErrorName,
) -> Result<Instance, FerryError> {
    instance(ec2, instance_id)
        .await?
        .ok_or_else(|| FerryError::new(missing, format!("instance {instance_id} does not exist")))
}

pub fn state_name(instance: &Instance) -> String {
    instance
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_string())
        .unwrap_or_default()
}

pub use crate::images::snapshot_ids as image_snapshot_ids;
pub use crate::images::state as image_state;

pub fn image_ref(image: &Image) -> ImageRef {
    ImageRef {
        image_id: image.image_id().unwrap_or_default().to_string(),
        name: image.name().unwrap_or_default().to_string(),
        state: image_state(image),
        created_at: None,
        snapshot_ids: image_snapshot_ids(image),
    }
}

/// The account's own image with this name, if any. An image of that name that this
/// execution did not tag as its own is refused: ferry never adopts what it did not make.
pub async fn own_image_named(
    ec2: &Client,
    name: &str,
    execution_arn: &str,
) -> Result<Option<Image>, FerryError> {
    let out = ec2
        .describe_images()
        .owners("self")
        .filters(filter("name", name))
        .send()
        .await
        .map_err(|e| aws_error("DescribeImages", e))?;
    match out.images().first() {
        None => Ok(None),
        Some(image) => {
            let tags = tag_map(image.tags());
            if tags.get(TAG_EXECUTION).map(String::as_str) == Some(execution_arn) {
                Ok(Some(image.clone()))
            } else {
                Err(FerryError::new(
                    ErrorName::UnsupportedConfiguration,
                    format!(
                        "an image named {name} ({}) exists but was not created by this execution",
                        image.image_id().unwrap_or_default()
                    ),
                ))
            }
        }
    }
}

/// One image by id, or `None` if it is gone.
pub async fn image(ec2: &Client, image_id: &str) -> Result<Option<Image>, FerryError> {
    crate::images::image(ec2, image_id, crate::images::Owner::Visible).await
}
