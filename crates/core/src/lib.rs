//! The rules of onestock (SPEC.md section 3) and the types they speak: no HTTP, no SQL,
//! no JSON. Every door (HTTP API, uploads, command line) turns its input into a
//! [`rules::Command`] and runs it through [`rules::execute`] on a storage [`storage::Tx`].
//!
//! Architecture Invariant: this crate does no I/O; time comes in as a value.

pub mod catalog;
pub mod clock;
pub mod dry_run;
pub mod error;
pub mod model;
pub mod region;
pub mod rules;
pub mod storage;
pub mod types;

pub use error::{DomainError, ErrorCode};
