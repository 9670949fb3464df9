//! `migrate-instance`: move an EC2 instance to a subnet in another Availability Zone
//! (image it, launch the image there, verify, then deal with the source as asked).
//!
//! State → code, in one step each: `statemachines/migrate-instance.asl.json` state
//! `Preflight` → `functions/steps/src/bin/preflight.rs` → `ferry_steps::migrate::preflight`
//! → the pure side here:
//!
//! - [`request`]: the request and its parsing; [`source`]: what preflight reads.
//! - [`refusals`]: the AWS rules that refuse a source or target before any change.
//! - [`plan`]: the plan preflight decides once (image, launch spec, tags).
//! - [`io`]: what each step takes and returns.
//! - [`rollback`]: what to undo after a failure, from what is observed.
//! - [`dry_run`]: what a dry run reports (the image, the instance, the source's fate).

/// The `ferry:workflow` tag value of everything this workflow creates.
pub const WORKFLOW_MIGRATE_INSTANCE: &str = "migrate-instance";

pub mod dry_run;
pub mod io;
pub mod plan;
pub mod refusals;
pub mod request;
pub mod rollback;
pub mod source;

#[cfg(test)]
mod fixtures;
