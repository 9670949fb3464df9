//! What each copy-image step takes and returns: the JSON the state machine passes.

use super::dry_run::CopyDryRunReport;
use super::plan::CopyPlan;
use crate::io::CaughtError;
use crate::names::ExecutionContext;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyPreflightInput {
    pub request: Value,
    pub context: ExecutionContext,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyPlanInput {
    pub plan: CopyPlan,
    /// StartCopy: the copy that failed because EC2 could not use a KMS key (WaitCopy's
    /// `Ferry.CopyKeyNotUsable`), to remove and make again; `null` for the first copy.
    #[serde(default)]
    pub copy: Option<CopyRef>,
}

/// Preflight's output: the plan, `copy: null` (StartCopy's first copy), and in a dry run
/// the report the execution ends with (state `Planned`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyPreflightOutput {
    pub plan: CopyPlan,
    pub copy: Option<CopyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<CopyDryRunReport>,
}

/// The copy in the target account, as copy-image, wait-copy and the output report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CopyRef {
    pub image_id: String,
    pub name: String,
    pub state: String,
    #[serde(default)]
    pub snapshot_ids: Vec<String>,
    /// The KMS key of the copy's snapshots (the target's key, rule 6).
    #[serde(default)]
    pub kms_key_ids: Vec<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// When CopyImage answered (epoch seconds), for rule 19.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<u64>,
    /// Which copy this is (1 = the first; 0 = not known), see
    /// `plan::COPY_KEY_ATTEMPTS`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
    /// If this copy fails because EC2 cannot use a KMS key: seconds to wait before the
    /// next one (`plan::recopy_after_seconds`); absent after the last. The state
    /// machine's `CopyAgain?` reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recopy_after_seconds: Option<u64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyImageInput {
    pub plan: CopyPlan,
    pub copy: CopyRef,
    /// `WaitCopy`'s task token (`$$.Task.Token`: it is a `.waitForTaskToken` Task, see
    /// [`crate::waits`]): the step ends the wait itself when its poll finds the copy
    /// available; otherwise the copy's forwarded event (`Ferry.PollNow`) or the attempt's
    /// timeout starts the next poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyRollbackInput {
    pub plan: CopyPlan,
    #[serde(default)]
    pub copy: Option<CopyRef>,
    #[serde(default)]
    pub error: Option<CaughtError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyRollbackReport {
    pub deregistered: Vec<String>,
    pub deleted_snapshots: Vec<String>,
    pub original_error: Option<CaughtError>,
}
