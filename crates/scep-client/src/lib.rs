//! `scep`: a SCEP client that enrolls against any SCEP or NDES server, the way an
//! admin would test one.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use scep_client::{ScepClient, EnrollOptions};
//! let client = ScepClient::new("http://127.0.0.1:8080/certsrv/mscep/mscep.dll");
//! let key = scep::crypto::PrivateKey::generate(scep::crypto::KeyType::Rsa2048)?;
//! let opts = EnrollOptions::new("CN=device-1,O=Example").challenge("0123456789ABCDEF");
//! let result = client.enroll(&key, &opts).await?;
//! println!("{}", result.certificate.tbs_certificate().subject());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod admin;
pub mod bench;
mod binding;
pub mod check;
mod client;
pub mod http;
pub mod inspect;
pub mod p12;
pub mod pem;
pub mod pin;
pub mod quirks;

/// NTLMv2 messages (MS-NLMP), shared with the server.
pub use scep_ntlm as ntlm;

pub use pin::Fingerprint;

pub use client::{
    CaCerts, EnrollOptions, Enrolled, Polled, ScepClient, ScepError, Transport, random_transaction_id, upn_name,
};
