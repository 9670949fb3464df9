//! `distribute-image`: share an image once, then copy it into many target accounts (one
//! nested copy-image execution per target, at most [`MAX_CONCURRENT_COPIES`] at a time),
//! and report each target's outcome.
//!
//! State → code: `statemachines/distribute-image.asl.json` state `Preflight` →
//! `functions/steps/src/bin/distribute-preflight.rs` → `ferry_steps::distribute::preflight`
//! → here:
//!
//! - [`plan`]: the request parsed into the plan (the share, one copy request per target).
//! - [`io`]: what each step takes and returns.
//! - [`target_failed`]: a failed target's report line.

pub const WORKFLOW_DISTRIBUTE_IMAGE: &str = "distribute-image";

/// Rule 8: "Concurrent snapshot copies per destination Region" is 20 (not adjustable).
/// The Map runs at most this many copy-image executions at once; each has at most one
/// CopyImage in flight, so no destination region (of any account) sees more than 20.
pub const MAX_CONCURRENT_COPIES: u32 = 20;

/// One execution's history holds at most 25,000 events; a target costs about 10 in the
/// parent (Map iteration, nested .sync task, result). Far below that, and a readable
/// report.
pub const MAX_TARGETS: usize = 500;

/// Step Functions execution names: 1-80 characters.
pub const MAX_EXECUTION_NAME: usize = 80;

pub mod io;
pub mod plan;
pub mod target_failed;

#[cfg(test)]
mod fixtures;
