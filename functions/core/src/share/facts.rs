//! What share-image's preflight reads: the image, its snapshots and their KMS keys.

use super::record::LaunchPermission;
use serde::{Deserialize, Serialize};

/// An EBS snapshot of the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotFacts {
    pub snapshot_id: String,
    pub encrypted: bool,
    /// The key as EC2 reports it (an ARN); `None` for unencrypted snapshots.
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// Accounts that already have createVolumePermission (DescribeSnapshotAttribute).
    #[serde(default)]
    pub create_volume_user_ids: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyManager {
    #[serde(rename = "AWS")]
    Aws,
    #[serde(rename = "CUSTOMER")]
    Customer,
}

/// A KMS key as DescribeKey reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyFacts {
    /// The key as the snapshot (or the request) refers to it.
    pub key_id: String,
    pub key_arn: String,
    pub key_manager: KeyManager,
    #[serde(default)]
    pub key_state: Option<String>,
}

/// The image to share as DescribeImages, DescribeSnapshots, DescribeImageAttribute and
/// DescribeKey report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ImageFacts {
    pub image_id: String,
    pub name: String,
    pub owner_id: String,
    pub state: String,
    #[serde(default)]
    pub product_codes: Vec<String>,
    pub snapshots: Vec<SnapshotFacts>,
    /// Launch permissions the image has now.
    #[serde(default)]
    pub launch_permissions: Vec<LaunchPermission>,
}

impl ImageFacts {
    pub fn encrypted(&self) -> bool {
        self.snapshots.iter().any(|s| s.encrypted)
    }
    /// The distinct keys of the encrypted snapshots, in snapshot order.
    pub fn key_ids(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in &self.snapshots {
            if let Some(k) = &s.kms_key_id {
                if s.encrypted && !out.contains(k) {
                    out.push(k.clone());
                }
            }
        }
        out
    }
}

/// Everything preflight read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShareFacts {
    pub region: String,
    pub account_id: String,
    pub image: ImageFacts,
    pub keys: Vec<KeyFacts>,
    /// GetImageBlockPublicAccessState, read only when `public`.
    pub block_public_access: Option<String>,
    /// DescribeKey of `reencryptWith`, read only when given.
    pub reencrypt_key: Option<KeyFacts>,
}

/// The described key a snapshot's key id (id or ARN) refers to.
pub fn find_key<'a>(keys: &'a [KeyFacts], id: &str) -> Option<&'a KeyFacts> {
    keys.iter().find(|k| k.key_id == id || k.key_arn == id)
}
