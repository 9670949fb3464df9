//! `share-image` and `revoke-share`: share an AMI with accounts, Organizations or OUs
//! (launch permissions, snapshot createVolumePermission, KMS grants on its
//! customer-managed keys), and take exactly that back.
//!
//! State → code: `statemachines/share-image.asl.json` state `Apply` →
//! `functions/steps/src/bin/share-apply.rs` → `ferry_steps::share::apply` → here:
//!
//! - [`request`]: the share request (targets, options) and its parsing.
//! - [`facts`]: what preflight reads (image, snapshots, keys).
//! - [`refusals`]: the sharing rules (aws-rules.md 1-9) that refuse before any change.
//! - [`plan`]: the plan preflight decides (what to add, re-encrypted copy, key policy).
//! - [`grants`]: the KMS grant operations and names.
//! - [`record`]: [`record::ShareRecord`], exactly what a share granted.
//! - [`io`]: what each step takes and returns.
//! - [`revoke`]: revoke-share's request and result.
//! - [`dry_run`]: what a dry run of share-image or revoke-share reports.

pub const WORKFLOW_SHARE_IMAGE: &str = "share-image";

pub mod dry_run;
pub mod facts;
pub mod grants;
pub mod io;
pub mod plan;
pub mod record;
pub mod refusals;
pub mod request;
pub mod revoke;

#[cfg(test)]
mod fixtures;
