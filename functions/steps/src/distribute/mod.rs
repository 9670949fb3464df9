//! The `distribute-image` workflow's steps that are not nested executions, one module per
//! state: `ResolveImage` (a request naming `share.image`: the newest matching image, the
//! only one that calls AWS, read only), `Preflight` (parse and check every target before
//! anything is shared) and `TargetFailed` (turn a failed nested copy into the target's
//! report line). The share and the copies are nested share-image and copy-image
//! executions.
//!
//! State → code: state `TargetFailed` → `src/bin/distribute-target-failed.rs` (its `main`)
//! → `target_failed.rs` here → `ferry_core::distribute` (the pure side). `tests/layout.rs`
//! checks this for every state.

pub mod preflight;
pub mod resolve_image;
pub mod target_failed;
