//! The `migrate-instance` workflow's steps, one module per state:
//! Preflight → CreateImage → WaitImage → LaunchInstance → VerifyInstance → Finalize,
//! and Rollback when any step after Preflight fails.

pub mod create_image;
pub mod finalize;
pub mod launch_instance;
pub mod preflight;
pub mod rollback;
pub mod verify_instance;
pub mod wait_image;

mod describe;
