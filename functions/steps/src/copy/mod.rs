//! The `copy-image` workflow's steps, one module per state:
//! Preflight → StartCopy → WaitCopy → (Revoke: RevokeShareFunction) → output,
//! and Rollback when any step after StartCopy was reached fails. Every step acts as the
//! target account through STS AssumeRole with the ExternalId ([`Clients::assume`]).
//!
//! `distribute` holds the two small steps of `distribute-image` (its copies are nested
//! copy-image executions).
//!
//! [`Clients::assume`]: crate::aws::Clients::assume

pub mod distribute;
pub mod preflight;
pub mod rollback;
pub mod start_copy;
pub mod wait_copy;

mod target;
