//! ferry's core: requests, plans, AWS rules, names and error names as plain data and
//! pure functions. No SDK and no I/O here; the Lambda steps in `ferry-steps` call AWS
//! and hand what they read to these functions.
//!
//! One folder per workflow, named as in `ferry-steps` (`migrate`, `share` with revoke,
//! `copy`, `distribute`), each split the same way: `request` (and `refusals`, the AWS
//! rules that refuse before any change), `plan`, `io` (what each step takes and returns)
//! and the undo decisions (`migrate::rollback`, `share::revoke`). What several workflows
//! share is at the top: [`errors`] (the `errorType`s the state machines match), [`names`]
//! (tokens and deterministic names), [`tags`], [`rules`] and [`io`], and [`dry_run`]: the
//! one output shape of every workflow's `"dryRun": true` (each workflow's `dry_run`
//! module turns its plan into it).
//!
//! From a state to its code: state `LaunchInstance` of `statemachines/migrate-instance.asl.json`
//! → `functions/steps/src/bin/launch-instance.rs` → `functions/steps/src/migrate/launch_instance.rs`
//! → `functions/core/src/migrate/` (here, `plan::LaunchSpec`).

pub mod copy;
pub mod distribute;
pub mod dry_run;
pub mod errors;
pub mod fleet;
pub mod io;
pub mod migrate;
pub mod names;
pub mod rules;
#[cfg(feature = "schema")]
pub mod schemas;
pub mod share;
pub mod tags;
pub mod waits;

pub use errors::{ErrorName, FerryError};
