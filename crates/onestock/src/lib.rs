//! onestock's doors onto the domain core: the HTTP API, the upload processor, the
//! command line's helpers and the benchmark, with the service they share.
//!
//! Architecture Invariant: no rule of SPEC.md section 3 is written here; this crate
//! parses input into `onestock_core::rules::Command`s and renders their outcomes.

pub mod bench;
pub mod client;
pub mod demo;
pub mod http;
pub mod metrics;
pub mod pages;
pub mod request_id;
pub mod server;
pub mod service;
pub mod spapi;
pub mod streamed;
pub mod unread_body;
pub mod upload;
