//! Dry runs: every workflow takes `"dryRun": true` in its input. It then runs its
//! Preflight (every read-only check, the same refusals by name) and ends successfully
//! with a [`DryRunReport`]: what the run would change, and no mutating AWS call.
//!
//! The report has one shape for every workflow, `{"dryRun": true, "workflow": "...",
//! "plan": <what would change>, "warnings": [...]}`; `plan` is each workflow's own
//! summary of the plan its Preflight built: [`crate::migrate::dry_run`],
//! [`crate::share::dry_run`] (share-image and revoke-share), [`crate::copy::dry_run`] and
//! [`crate::distribute::dry_run`]. In the state machines, a Choice `DryRun?` right after
//! Preflight reads the plan's `dryRun` flag and goes to the final state `Planned`.

use serde::{Deserialize, Serialize};

/// A dry run's output. Built by the Preflight step (`report` next to the plan in its
/// output, only in a dry run) and returned as is by the state machine's `Planned` state;
/// distribute-image's is put together by its `Planned` state from its nested dry runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DryRunReport<P> {
    /// Always `true`: tells a dry run's output from a run's.
    pub dry_run: bool,
    /// The workflow's name (`migrate-instance`, `share-image`, ...).
    pub workflow: String,
    /// What the run would change.
    pub plan: P,
    /// What the operator should know (the plan's own warnings, and what a dry run could
    /// not check).
    pub warnings: Vec<String>,
}

impl<P> DryRunReport<P> {
    pub fn new(workflow: &str, plan: P, warnings: Vec<String>) -> DryRunReport<P> {
        DryRunReport {
            dry_run: true,
            workflow: workflow.to_string(),
            plan,
            warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_report_shape_is_stable() {
        let r = DryRunReport::new("share-image", json!({"a": 1}), vec!["w".into()]);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"dryRun": true, "workflow": "share-image", "plan": {"a": 1}, "warnings": ["w"]})
        );
        let extra = json!({"dryRun": true, "workflow": "x", "plan": {}, "warnings": [], "more": 1});
        assert!(serde_json::from_value::<DryRunReport<serde_json::Value>>(extra).is_err());
    }
}
