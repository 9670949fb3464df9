//! The `copy-image` workflow's steps, one module per state:
//! Preflight → StartCopy → WaitCopy → (Revoke: RevokeShareFunction) → output,
//! and Rollback when any step after StartCopy was reached fails. Every step acts as the
//! target account through STS AssumeRole with the ExternalId ([`Clients::assume`]).
//!
//! State → code: state `StartCopy` → `src/bin/copy-start.rs` (its `main`) → `start_copy.rs`
//! here (the AWS calls; every state's module is its name in snake case) →
//! `ferry_core::copy` (the pure side). `tests/layout.rs` checks this for every state.
//! `target` assumes the target account's role and reads what it sees.
//!
//! [`Clients::assume`]: crate::aws::Clients::assume

pub mod preflight;
pub mod rollback;
pub mod start_copy;
pub mod wait_copy;

mod target;
