//! What each distribute-image step takes and returns.

use super::plan::TargetItem;
use crate::io::CaughtError;
use crate::names::ExecutionContext;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DistributePreflightInput {
    pub request: Value,
    pub context: ExecutionContext,
}

/// A target whose copy failed, as the Map's Catch hands it over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetFailedInput {
    pub target: TargetItem,
    #[serde(default)]
    pub error: Option<CaughtError>,
}

/// One target's line in the distribute-image output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetResult {
    pub account_id: String,
    pub region: String,
    /// `SUCCEEDED` or `FAILED`.
    pub status: String,
    pub execution_name: String,
    pub error: Option<String>,
    pub cause: Option<String>,
}
