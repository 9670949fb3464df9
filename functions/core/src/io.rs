//! Step inputs and outputs that several workflows share. Each workflow's own are in its
//! `io.rs` (e.g. [`crate::migrate::io`]).

use serde::{Deserialize, Serialize};

/// The intermediate image, as create-image and wait-image report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRef {
    pub image_id: String,
    pub name: String,
    pub state: String,
    #[serde(default)]
    pub snapshot_ids: Vec<String>,
    /// When the create call answered (epoch seconds), for rule 19
    /// (`rules::polls::missing_after_create`); absent once the image was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<u64>,
}

/// The `Catch` result Step Functions puts at `$.error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CaughtError {
    #[serde(rename = "Error", default)]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}
