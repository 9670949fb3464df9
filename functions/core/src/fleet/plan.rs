//! The state migrate-fleet's loop carries: the wave running now, the waves to come, and
//! the result table so far.

use super::request::{FleetRequest, Source, Unassigned};
use crate::distribute::plan::child_execution_name;
use crate::errors::FerryError;
use crate::names::ExecutionContext;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The Preflight's input: the request and the execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetPreflightInput {
    pub request: Value,
    pub context: ExecutionContext,
}

/// One nested migrate-instance execution: its name (deterministic: a retried or
/// re-driven start finds the same child) and input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetItem {
    pub source_instance_id: String,
    pub execution_name: String,
    pub input: Value,
}

/// What became of one source instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// Migrated (or, in a dry run, planned).
    Succeeded,
    /// A dry run's migration that Preflight accepted.
    Planned,
    /// Failed after Preflight; migrate-instance rolled back what it had made.
    RolledBack,
    /// Refused by migrate-instance's Preflight (or found by the selector with no target
    /// subnet): nothing was made.
    Skipped,
    /// The nested execution could not be started (or followed): nothing of it is known
    /// to have run.
    Failed,
    /// Not started: `maxFailures` was exceeded before its wave.
    NotStarted,
}

/// One line of the result table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetResult {
    pub source_instance_id: String,
    pub status: Outcome,
    pub execution_name: Option<String>,
    pub execution_arn: Option<String>,
    pub new_instance_id: Option<String>,
    pub target_availability_zone: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// The loop's state (the Preflight's output, then each Tally's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetState {
    /// The wave the Map runs next (at most `maxConcurrency` items).
    pub current: Vec<FleetItem>,
    /// The waves after it.
    pub pending: Vec<Vec<FleetItem>>,
    pub max_concurrency: usize,
    pub max_failures: Option<u32>,
    pub dry_run: bool,
    /// Results so far (skipped-by-selector instances from the start).
    pub results: Vec<FleetResult>,
    /// Rolled-back migrations so far.
    pub failures: u32,
    /// Is there a wave to run (`More?`)?
    pub more: bool,
    /// Did `maxFailures` stop the fleet early?
    pub stopped_early: bool,
    /// Counts by status (filled in by the last Tally).
    pub summary: BTreeMap<String, usize>,
}

impl FleetState {
    /// The first state: the migrations in waves of `maxConcurrency`, in request order.
    /// `migrations` are checked migrate-instance inputs (with the fleet's dryRun).
    pub fn new(
        request: &FleetRequest,
        migrations: Vec<Value>,
        unassigned: Vec<Unassigned>,
        parent: &ExecutionContext,
    ) -> Result<FleetState, FerryError> {
        let items: Vec<FleetItem> = migrations
            .into_iter()
            .map(|input| {
                let id = input["sourceInstanceId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                FleetItem {
                    execution_name: child_execution_name(parent, &id),
                    source_instance_id: id,
                    input,
                }
            })
            .collect();
        let mut waves: Vec<Vec<FleetItem>> = items
            .chunks(request.max_concurrency)
            .map(|c| c.to_vec())
            .collect();
        let current = if waves.is_empty() {
            Vec::new()
        } else {
            waves.remove(0)
        };
        let results = unassigned
            .into_iter()
            .map(|u| FleetResult {
                source_instance_id: u.instance_id,
                status: Outcome::Skipped,
                execution_name: None,
                execution_arn: None,
                new_instance_id: None,
                target_availability_zone: None,
                error: Some("Ferry.NoTargetSubnet".into()),
                cause: Some(u.reason),
            })
            .collect();
        let mut state = FleetState {
            more: !current.is_empty(),
            current,
            pending: waves,
            max_concurrency: request.max_concurrency,
            max_failures: request.max_failures,
            dry_run: request.dry_run,
            results,
            failures: 0,
            stopped_early: false,
            summary: BTreeMap::new(),
        };
        state.summarize();
        Ok(state)
    }

    pub fn summarize(&mut self) {
        let mut summary = BTreeMap::new();
        for r in &self.results {
            let key = serde_json::to_value(r.status)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string();
            *summary.entry(key).or_insert(0) += 1;
        }
        self.summary = summary;
    }
}

/// The migrations of a request whose source is a list (the selector's are made by the
/// Preflight after DescribeInstances).
pub fn listed_migrations(request: &FleetRequest) -> Option<Vec<Value>> {
    match &request.source {
        Source::Migrations(m) => Some(m.clone()),
        Source::Selector { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn ctx() -> ExecutionContext {
        ExecutionContext {
            execution_arn:
                "arn:aws:states:us-east-1:111122223333:execution:ferry-migrate-fleet:nightly".into(),
            execution_name: "nightly".into(),
            ..Default::default()
        }
    }

    fn request(n: usize, max_concurrency: usize) -> FleetRequest {
        let migrations: Vec<Value> = (0..n)
            .map(|i| json!({"sourceInstanceId": format!("i-{:017x}", i), "targetSubnetId": "subnet-0123456789abcdef1"}))
            .collect();
        FleetRequest::parse(&json!({"migrations": migrations, "maxConcurrency": max_concurrency}))
            .unwrap()
    }

    #[test]
    fn migrations_run_in_waves_of_max_concurrency_in_request_order() {
        let r = request(7, 3);
        let s = FleetState::new(&r, listed_migrations(&r).unwrap(), vec![], &ctx()).unwrap();
        assert_eq!(s.current.len(), 3);
        assert_eq!(s.pending.iter().map(Vec::len).collect::<Vec<_>>(), [3, 1]);
        assert!(s.more);
        assert_eq!(s.current[0].source_instance_id, format!("i-{:017x}", 0));
        assert_eq!(s.pending[1][0].source_instance_id, format!("i-{:017x}", 6));
        let names: std::collections::BTreeSet<_> = s
            .current
            .iter()
            .chain(s.pending.iter().flatten())
            .map(|i| i.execution_name.clone())
            .collect();
        assert_eq!(names.len(), 7, "one name per child");
        assert!(names
            .iter()
            .all(|n| n.len() <= 80 && n.starts_with("nightly-")));
        // the same parent names its children the same (a re-driven start finds them)
        let again = FleetState::new(&r, listed_migrations(&r).unwrap(), vec![], &ctx()).unwrap();
        assert_eq!(again.current, s.current);
    }

    #[test]
    fn nothing_to_migrate_reports_the_unassigned_and_runs_no_wave() {
        let r = FleetRequest::parse(&json!({"selector": {"tags": {"a": "b"}}, "targetSubnetIds": ["subnet-0123456789abcdef1"]})).unwrap();
        let s = FleetState::new(
            &r,
            vec![],
            vec![Unassigned {
                instance_id: "i-1".into(),
                reason: "no subnet".into(),
            }],
            &ctx(),
        )
        .unwrap();
        assert!(!s.more);
        assert_eq!(s.results[0].status, Outcome::Skipped);
        assert_eq!(s.summary["SKIPPED"], 1);
    }
}
