//! Image reads every workflow shares: one image by id, its state, its snapshots.

use crate::aws::{aws_error, error_code};
use aws_sdk_ec2::types::Image;
use aws_sdk_ec2::Client;
use ferry_core::FerryError;

/// Who may own the image looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Any image the caller can see (its own, or shared with it).
    Visible,
    /// Only the caller's own images.
    Caller,
}

/// One image by id, or `None` if it does not exist for the caller (missing, malformed,
/// gone, or, with [`Owner::Caller`], another account's).
pub async fn image(
    ec2: &Client,
    image_id: &str,
    owner: Owner,
) -> Result<Option<Image>, FerryError> {
    let mut request = ec2.describe_images().image_ids(image_id);
    if owner == Owner::Caller {
        request = request.owners("self");
    }
    match request.send().await {
        Ok(out) => Ok(out
            .images()
            .iter()
            .find(|i| i.image_id() == Some(image_id))
            .cloned()),
        Err(e)
            if matches!(
                error_code(&e),
                Some(
                    "InvalidAMIID.NotFound" | "InvalidAMIID.Unavailable" | "InvalidAMIID.Malformed"
                )
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error("DescribeImages", e)),
    }
}

pub fn state(image: &Image) -> String {
    image
        .state()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default()
}

/// The image's snapshots, each once, in mapping order.
pub fn snapshot_ids(image: &Image) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in image
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()))
    {
        if !out.iter().any(|o| o == id) {
            out.push(id.to_string());
        }
    }
    out
}
