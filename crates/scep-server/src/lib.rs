//! scepd: an NDES-compatible SCEP server with its own CA.
//!
//! `cli` drives everything; a request goes `http` -> `authority` -> `ca` and `store`.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod authority;
pub mod ca;
pub mod cli;
pub mod config;
pub mod http;
pub mod metrics;
mod names;
pub mod profile;
pub mod store;
pub mod templates;
pub mod text;
pub mod vocab;
