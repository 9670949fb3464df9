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

/// A nested execution's failure as the parent's Catch gets it: `States.TaskFailed` (for
/// `startExecution.sync`) whose Cause is the child's DescribeExecution as JSON; the
/// child's own Error and Cause (e.g. `Ferry.TargetAccessDenied`) are what an operator
/// needs. Anything else (the start itself failed) is kept as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NestedFailure {
    pub error: String,
    pub cause: String,
    /// The child execution, when the Cause names it.
    pub execution_arn: Option<String>,
    /// Did the child run and fail (rather than the start failing)?
    pub from_child: bool,
}

impl CaughtError {
    pub fn nested(&self) -> NestedFailure {
        if let Ok(serde_json::Value::Object(child)) =
            serde_json::from_str::<serde_json::Value>(&self.cause)
        {
            let field = |a: &str, b: &str| {
                child
                    .get(a)
                    .or_else(|| child.get(b))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string)
            };
            if let Some(error) = field("Error", "error") {
                return NestedFailure {
                    error,
                    cause: field("Cause", "cause").unwrap_or_default(),
                    execution_arn: field("ExecutionArn", "executionArn"),
                    from_child: true,
                };
            }
        }
        NestedFailure {
            error: self.error.clone(),
            cause: self.cause.clone(),
            execution_arn: None,
            from_child: false,
        }
    }
}
