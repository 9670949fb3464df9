//! What each share-image step takes and returns: the JSON the state machine passes.

use super::dry_run::ShareDryRunReport;
use super::plan::SharePlan;
use super::record::ShareRecord;
use crate::io::{CaughtError, ImageRef};
use crate::names::ExecutionContext;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharePreflightInput {
    pub request: serde_json::Value,
    pub context: ExecutionContext,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharePlanInput {
    pub plan: SharePlan,
}

/// share-image's Preflight output: the plan, and in a dry run the report the execution
/// ends with (state `Planned`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharePreflightOutput {
    pub plan: SharePlan,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ShareDryRunReport>,
}

/// The image the apply step shares: the copy when there is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareApplyInput {
    pub plan: SharePlan,
    #[serde(default)]
    pub copy: Option<ImageRef>,
    /// `$$.Task.Token` when `WaitCopy` is a `.waitForTaskToken` Task
    /// ([`crate::waits`]): the step ends the wait itself when its poll finds the copy
    /// available, and otherwise leaves it to the copy's event or the next attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_token: Option<String>,
}

/// share-image's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareResult {
    pub record: ShareRecord,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareCleanupInput {
    pub plan: SharePlan,
    #[serde(default)]
    pub error: Option<CaughtError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ShareCleanupOutput {
    pub deregistered_images: Vec<String>,
    pub deleted_snapshots: Vec<String>,
    /// Launch / snapshot permissions a failed Apply had added and cleanup took back.
    #[serde(default)]
    pub unshared_launch_permissions: usize,
    #[serde(default)]
    pub unshared_snapshot_permissions: usize,
    /// Grants of this execution that cleanup revoked.
    #[serde(default)]
    pub revoked_grants: Vec<String>,
}
