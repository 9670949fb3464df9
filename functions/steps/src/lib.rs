//! ferry's Lambda steps: each state of a state machine is one binary in `src/bin/`
//! whose `main` calls [`runtime::serve`] with one step function from here.
//!
//! From a state to its code in one step each: state `WaitCopy` of
//! `statemachines/copy-image.asl.json` → `src/bin/copy-wait.rs` → `src/copy/wait_copy.rs`
//! (the SDK calls) → `ferry_core::copy` (the pure side: request, refusals, plan, io).
//! One folder per workflow, named as in `ferry-core`: `migrate`, `share` (with
//! revoke-share), `copy`, `distribute`. What several steps share: [`aws`] (clients, error
//! mapping), [`images`] (one image lookup), [`cleanup`] (removals), [`waits`] (task-token waits and the `ImageEvent` function),
//! [`runtime`].

pub mod aws;
pub mod cleanup;
pub mod copy;
pub mod distribute;
pub mod fleet;
pub mod images;
pub mod keys;
pub mod migrate;
pub mod runtime;
pub mod share;
pub mod waits;

pub use aws::Clients;
