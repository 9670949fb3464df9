//! `distribute-image`: share an image once, then copy it into many target accounts (one
//! nested copy-image execution per target, at most [`MAX_CONCURRENT_COPIES`] at a time),
//! and report each target's outcome.
//!
//! State → code: `statemachines/distribute-image.asl.json` state `Preflight` →
//! `functions/steps/src/bin/distribute-preflight.rs` → `ferry_steps::distribute::preflight`
//! → here:
//!
//! - [`resolve`]: `share.image`, the newest available AMI whose name matches a pattern
//!   (state `ResolveImage`, before Preflight; the scheduled path).
//! - [`plan`]: the request parsed into the plan (the share, one copy request per target).
//! - [`io`]: what each step takes and returns.
//! - [`target_failed`]: a failed target's report line.
//! - [`dry_run`]: what a dry run reports (the share's dry run, one planned copy per
//!   target), and what it checks.

pub const WORKFLOW_DISTRIBUTE_IMAGE: &str = "distribute-image";

/// Rule 8: "Concurrent snapshot copies per destination Region" is 20 (not adjustable).
/// The Map runs at most this many copy-image executions at once; each has at most one
/// CopyImage in flight, so no destination region (of any account) sees more than 20.
pub const MAX_CONCURRENT_COPIES: u32 = 20;

/// The largest state of a distribute-image execution (after the Map: the plan, the
/// share's record and one result per target) grows by about 2 KB per target for an image
/// of [`PAYLOAD_SNAPSHOTS`] snapshots under [`PAYLOAD_KEYS`] keys, and Step Functions
/// fails an execution whose state input or output exceeds 256 KiB
/// (`States.DataLimitExceeded`, which `States.ALL` does not catch; aws-rules.md 25). 100 targets
/// keep it under the limit with room (a test builds that state); at 500, the Preflight
/// output alone was 293 KB. (Far below the 25,000 history events: ~10 per target.)
pub const MAX_TARGETS: usize = 100;

/// Step Functions' payload quota: 256 KiB of UTF-8 JSON per state input or output.
pub const SFN_PAYLOAD_LIMIT: usize = 256 * 1024;

/// The image shape [`MAX_TARGETS`] is sized for: snapshots and distinct customer keys.
pub const PAYLOAD_SNAPSHOTS: usize = 8;
pub const PAYLOAD_KEYS: usize = 2;

/// Step Functions execution names: 1-80 characters.
pub const MAX_EXECUTION_NAME: usize = 80;

pub mod dry_run;
pub mod io;
pub mod plan;
pub mod resolve;
pub mod target_failed;

#[cfg(test)]
mod fixtures;
