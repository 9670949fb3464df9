//! `migrate-fleet`: many migrate-instance runs in one execution, at most
//! `maxConcurrency` at a time, each source instance at most once, with a per-instance
//! result table and a `maxFailures` stop.
//!
//! State → code: `statemachines/migrate-fleet.asl.json` state `Preflight` →
//! `functions/steps/src/bin/fleet-preflight.rs` → `ferry_steps::fleet::preflight` →
//! here; state `Tally` → `fleet-tally` → `ferry_steps::fleet::tally` → [`tally`].
//!
//! - [`request`]: the request (a list of migrate-instance inputs, or a tag selector with
//!   one target subnet per AZ), each migration checked as migrate-instance checks it.
//! - [`plan`]: the waves of nested executions and the state the loop carries.
//! - [`tally`]: one wave's outcomes into the result table, and whether to go on.
//!
//! The loop runs waves of `maxConcurrency` nested migrate-instance executions (a Map
//! whose iterations each start one and wait for it). After each wave, `Tally` counts
//! the rolled-back migrations; past `maxFailures`, no further wave starts (the
//! migrations already running finish). A wave waits for its slowest migration: the
//! price of an exact stop without shared state between Map iterations.

/// Migrations per execution: the loop's state carries every item and result, and
/// Step Functions fails an execution whose state exceeds 256 KiB (a unit test builds the
/// largest state at this count).
pub const MAX_FLEET: usize = 100;

/// Default `maxConcurrency` (issue 10).
pub const DEFAULT_MAX_CONCURRENCY: usize = 10;

pub const WORKFLOW_MIGRATE_FLEET: &str = "migrate-fleet";

pub mod plan;
pub mod request;
pub mod tally;
