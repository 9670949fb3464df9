//! What each migrate-instance step takes and returns: the JSON the state machine passes.

use super::dry_run::MigrationDryRunReport;
use super::plan::MigrationPlan;
use super::request::SourceAction;
use crate::io::{CaughtError, ImageRef};
use crate::names::ExecutionContext;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreflightInput {
    /// The execution input as the user sent it; parsed strictly by preflight.
    pub request: serde_json::Value,
    pub context: ExecutionContext,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreflightOutput {
    pub plan: MigrationPlan,
    /// Only in a dry run: the execution's output (state `Planned`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<MigrationDryRunReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanInput {
    pub plan: MigrationPlan,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageInput {
    pub plan: MigrationPlan,
    pub image: ImageRef,
    /// `$$.Task.Token` when the wait is a `.waitForTaskToken` Task ([`crate::waits`]):
    /// the step then ends the wait itself with SendTaskSuccess when its poll finds the
    /// image available, and otherwise leaves it to the image's event or the next attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_token: Option<String>,
}

/// The new instance, as launch-instance and verify-instance report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct InstanceRef {
    pub instance_id: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub subnet_id: Option<String>,
    #[serde(default)]
    pub private_ip: Option<String>,
    #[serde(default)]
    pub public_ip: Option<String>,
    /// When RunInstances answered (epoch seconds), for rule 19.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceInput {
    pub plan: MigrationPlan,
    pub instance: InstanceRef,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalizeInput {
    pub plan: MigrationPlan,
    pub image: ImageRef,
    pub instance: InstanceRef,
}

/// The execution's output on success.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationResult {
    pub source_instance_id: String,
    pub new_instance_id: String,
    pub source_availability_zone: String,
    pub target_availability_zone: String,
    pub target_subnet_id: String,
    pub source_private_ip: Option<String>,
    pub new_private_ip: Option<String>,
    pub new_public_ip: Option<String>,
    pub image_id: String,
    pub image_kept: bool,
    pub elastic_ips_moved: Vec<String>,
    pub source_action: SourceAction,
    pub warnings: Vec<String>,
    /// What finalize could not remove after the cut-over (image or snapshot ids): left for
    /// the operator, never a reason to roll back a verified move.
    #[serde(default)]
    pub leftovers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackInput {
    pub plan: MigrationPlan,
    #[serde(default)]
    pub image: Option<ImageRef>,
    #[serde(default)]
    pub instance: Option<InstanceRef>,
    #[serde(default)]
    pub error: Option<CaughtError>,
}
