//! ferry's Lambda steps: each state of a state machine is one binary in `src/bin/`
//! whose `main` calls [`runtime::serve`] with one step function from here.

pub mod aws;
pub mod cleanup;
pub mod copy;
pub mod images;
pub mod migrate;
pub mod runtime;
pub mod share;

pub use aws::Clients;
