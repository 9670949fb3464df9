//! `copy-image`: the target account copies an AMI the hub shared with it, re-encrypted
//! under its own KMS key (rule 6), and owns the copy; then the share is revoked.
//!
//! State → code: `statemachines/copy-image.asl.json` state `StartCopy` →
//! `functions/steps/src/bin/copy-start.rs` → `ferry_steps::copy::start_copy` → here:
//!
//! - [`request`]: the copy request and its parsing.
//! - [`refusals`]: what the target must see of the source (rules 3, 7, 15).
//! - [`plan`]: the plan (copy name, token, session name, tags, the revoke payload).
//! - [`io`]: what each step takes and returns (and the rollback's report).
//! - [`dry_run`]: what a dry run reports (the copy, its key and tags, the revoke).

pub const WORKFLOW_COPY_IMAGE: &str = "copy-image";

/// Purpose string of the CopyImage ClientToken (`names::client_token`).
pub const COPY_TOKEN_PURPOSE: &str = "copy-image";

pub mod dry_run;
pub mod io;
pub mod plan;
pub mod refusals;
pub mod request;

#[cfg(test)]
mod fixtures;
