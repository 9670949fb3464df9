//! The `share-image` workflow's steps, one module per state:
//! Preflight → (CopyImage → WaitCopy, only for an AMI under aws/ebs with `reencryptWith`)
//! → Apply, and Cleanup (removes this execution's copy) when a step after Preflight fails.
//! And `revoke-share`, one state.

pub mod apply;
pub mod cleanup;
pub mod copy_image;
pub mod preflight;
pub mod revoke_share;
pub mod wait_copy;

mod read;
