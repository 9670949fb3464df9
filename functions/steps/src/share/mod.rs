//! The `share-image` workflow's steps, one module per state:
//! Preflight → (CopyImage → WaitCopy, only for an AMI under aws/ebs with `reencryptWith`)
//! → Apply, and Cleanup (removes this execution's copy) when a step after Preflight fails.
//! And `revoke-share`, one state.
//!
//! State → code: state `Apply` → `src/bin/share-apply.rs` (its `main`) → `apply.rs` here
//! (the AWS calls; every state's module is its name in snake case, `RevokeShare` →
//! `revoke_share.rs`) → `ferry_core::share` (the pure side). `tests/layout.rs` checks this
//! for every state. `read` holds the reads that preflight and revoke share.

pub mod apply;
pub mod cleanup;
pub mod copy_image;
pub mod preflight;
pub mod revoke_share;
pub mod wait_copy;

pub(crate) mod read;
