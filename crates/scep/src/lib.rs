//! SCEP (RFC 8894) messages, without I/O: parse, verify and decrypt requests; build
//! and sign replies; and the same from the client's side.
//!
//! A server's PKIOperation goes through consuming steps, so nothing is ever
//! "decrypted if not yet":
//!
//! ```no_run
//! use scep::crypto::PrivateKey;
//! use scep::request::{Body, PkiMessage};
//! use scep::response::{Env, Outcome, cert_rep};
//! use x509_cert::Certificate;
//!
//! /// Answer one PKIOperation with the RA key and certificate.
//! fn answer(bytes: &[u8], ra_key: &PrivateKey, ra_cert: &Certificate, secret: &[u8]) -> scep::Result<Vec<u8>> {
//!     let msg = PkiMessage::parse(bytes)?; // structure only: on error, HTTP 400 or a FAILURE
//!     let reply = msg.reply_to().clone(); // enough to answer whatever happens
//!     let outcome = match msg.verify().and_then(|m| m.open(&[(ra_cert, ra_key)], secret)) {
//!         Ok(req) => match req.body {
//!             Body::PkcsReq(_csr) => Outcome::Pending, // policy decides
//!             _ => Outcome::Pending,
//!         },
//!         Err(e) => Outcome::Failure(e.fail_info(), "request rejected".into()),
//!     };
//!     cert_rep(&reply, &outcome, ra_key, ra_cert, Env::system(std::time::SystemTime::now()))
//! }
//! ```
#![forbid(unsafe_code)]

pub mod attr;
mod ber;
pub mod caps;
pub mod cms;
pub mod crypto;
pub mod csr;
mod error;
pub mod operation;
pub mod request;
pub mod response;
pub mod signer;
mod tlv;
pub mod x509;

pub use error::{Error, Result};
