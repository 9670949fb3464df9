//! ferry's core: requests, plans, AWS rules, names and error names as plain data and
//! pure functions. No SDK and no I/O here; the Lambda steps in `ferry-steps` call AWS
//! and hand what they read to these functions.

pub mod copy;
pub mod distribute;
pub mod errors;
pub mod io;
pub mod names;
pub mod plan;
pub mod request;
pub mod rollback;
pub mod rules;
pub mod share;
pub mod source;

pub use errors::{ErrorName, FerryError};
