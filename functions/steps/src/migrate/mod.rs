//! The `migrate-instance` workflow's steps, one module per state:
//! Preflight → CreateImage → WaitImage → LaunchInstance → VerifyInstance → Finalize,
//! and Rollback when any step after Preflight fails.
//!
//! State → code: state `LaunchInstance` → `src/bin/launch-instance.rs` (its `main`) →
//! `launch_instance.rs` here (the AWS calls; every state's module is its name in snake
//! case) → `ferry_core::migrate` (the pure side). `tests/layout.rs` checks this for every
//! state. `describe` reads the source for preflight and rollback.

pub mod create_image;
pub mod finalize;
pub mod launch_instance;
pub mod preflight;
pub mod rollback;
pub mod verify_instance;
pub mod wait_image;

pub(crate) mod describe;
