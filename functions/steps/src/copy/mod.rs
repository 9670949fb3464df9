//! The `copy-image` workflow's steps, one module per state:
//! Preflight → StartCopy → WaitCopy → (Revoke: RevokeShareFunction) → output,
//! and Rollback when any step after StartCopy was reached fails. Every step acts as the
//! target account through STS AssumeRole with the ExternalId ([`Clients::assume`]).
//!
//! [`Clients::assume`]: crate::aws::Clients::assume

pub mod preflight;
pub mod rollback;
pub mod start_copy;
pub mod wait_copy;

mod target;
