//! AWS rules that several workflows rely on, one named function each (see
//! `shared/notes/aws-rules.md`); the local AWS world enforces the same rules on its side
//! (`tests/world/ferry_world/rules/`). A rule only one workflow applies lives in that
//! workflow's `refusals.rs` (e.g. [`crate::migrate::refusals`]).
//!
//! - [`ids`]: the formats of EC2 ids, account ids, regions, ARNs and names.
//! - [`kms`]: KMS key references.
//! - [`polls`]: what one poll of an image or an instance means (rule 15).

pub mod ids;
pub mod kms;
pub mod polls;
