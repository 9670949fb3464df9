//! The `migrate-fleet` workflow's steps, one module per state: `Preflight` (the request
//! checked, a selector's instances found and given their target subnets, the waves
//! planned) and `Tally` (a wave's outcomes into the result table; no AWS call). The
//! migrations themselves are nested migrate-instance executions.
//!
//! State → code: state `Tally` → `src/bin/fleet-tally.rs` → `tally.rs` here →
//! `ferry_core::fleet` (the pure side).

pub mod preflight;
pub mod tally;
