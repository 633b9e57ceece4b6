//! The one error type of the protocol crate and its single mapping to the wire.

use crate::attr::FailInfo;

/// Everything that can go wrong while reading or answering a SCEP message.
///
/// The `Display` text is for logs. It never contains secrets (challenge passwords,
/// key material) and is never sent to a client: clients see only [`FailInfo`],
/// produced by [`Error::fail_info`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a SCEP pkiMessage (outer CMS SignedData with the SCEP attributes).
    #[error("malformed pkiMessage: {0}")]
    Malformed(&'static str),
    /// ASN.1 decoding failed.
    #[error("ASN.1: {0}")]
    Asn1(#[from] der::Error),
    /// The message's signature, digest or signer certificate did not check out.
    #[error("message check failed: {0}")]
    BadMessageCheck(&'static str),
    /// The envelope could not be opened. Deliberately carries no detail: every
    /// decryption failure (key unwrap, key length, padding, content) is this one value,
    /// so that no failure can be told apart from another (RFC 3218 section 2.3).
    #[error("the envelope could not be decrypted")]
    Decrypt,
    /// An algorithm we do not accept (digest, signature, cipher or key type).
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// The request body (CSR, IssuerAndSubject, ...) is unacceptable.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A cryptographic operation on our side failed (signing, key generation, encryption).
    #[error("crypto failure: {0}")]
    Crypto(&'static str),
}

impl Error {
    /// The failInfo that goes on the wire for this error (RFC 8894 section 3.2.1.4).
    pub fn fail_info(&self) -> FailInfo {
        match self {
            Error::Malformed(_) | Error::Asn1(_) | Error::BadRequest(_) => FailInfo::BadRequest,
            Error::BadMessageCheck(_) | Error::Decrypt => FailInfo::BadMessageCheck,
            Error::UnsupportedAlgorithm(_) => FailInfo::BadAlg,
            Error::Crypto(_) => FailInfo::BadRequest,
        }
    }
}

impl From<aws_lc_rs::error::Unspecified> for Error {
    fn from(_: aws_lc_rs::error::Unspecified) -> Self {
        Error::Crypto("operation failed")
    }
}

impl From<x509_cert::builder::Error> for Error {
    fn from(e: x509_cert::builder::Error) -> Self {
        match e {
            x509_cert::builder::Error::Asn1(e) => Error::Asn1(e),
            _ => Error::Crypto("certificate builder failed"),
        }
    }
}

/// Result with the crate's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;
