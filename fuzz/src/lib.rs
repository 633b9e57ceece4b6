//! What the fuzz targets share: the RA key and certificates of the protocol
//! fixtures, a fixed requester key, and a small reader for structured inputs.
//!
//! The fixtures are compiled in, so a target binary runs from any directory and a
//! crash reproduces with the binary and the artifact alone.

use std::sync::OnceLock;

use scep::attr::{ContentCipher, KeyTransport, MessageType};
use scep::crypto::{KeyType, PrivateKey};
use x509_cert::Certificate;

const RA_ENCRYPT_KEY: &[u8] = include_bytes!("../../crates/scep/tests/fixtures/ra-encrypt-key.der");
const RA_ENCRYPT_PEM: &[u8] = include_bytes!("../../crates/scep/tests/fixtures/ra-encrypt.pem");
const RA_SIGN_PEM: &[u8] = include_bytes!("../../crates/scep/tests/fixtures/ra-sign.pem");
const CA_PEM: &[u8] = include_bytes!("../../crates/scep/tests/fixtures/ca.pem");

/// Keys and certificates fixed for the life of a fuzzing process.
pub struct Fixed {
    /// The RA encryption key the fixture requests were encrypted to (RSA-2048).
    pub ra_key: PrivateKey,
    /// Its certificate.
    pub ra_cert: Certificate,
    /// The fixtures' RA signing and CA certificates (keys not available).
    pub others: Vec<Certificate>,
    /// A requester (or, for CertReps, a server) key: P-256, because ECDSA signs in
    /// microseconds and the targets sign on every input.
    pub signer: PrivateKey,
    /// Its self-signed certificate.
    pub signer_cert: Certificate,
    /// A valid DER CSR signed by `signer`, with a challengePassword.
    pub csr: Vec<u8>,
}

/// The process-wide [`Fixed`] material; built on first use.
///
/// # Panics
/// When the compiled-in fixtures do not load: a broken harness, not a finding.
#[allow(clippy::expect_used)]
pub fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let ra_key = PrivateKey::from_pkcs8_der(RA_ENCRYPT_KEY).expect("fixture RA key");
        let ra_cert = first_cert(RA_ENCRYPT_PEM);
        let others = vec![first_cert(RA_SIGN_PEM), first_cert(CA_PEM)];
        let signer = PrivateKey::generate(KeyType::EcP256).expect("P-256 key");
        let subject = ra_cert.tbs_certificate().subject().clone();
        let signer_cert = scep::x509::scep_signer_certificate(&subject, &signer).expect("signer certificate");
        let csr = scep::x509::csr(&subject, &signer, Some("fuzz-challenge-0123"), &[]).expect("CSR");
        Fixed { ra_key, ra_cert, others, signer, signer_cert, csr }
    })
}

#[allow(clippy::expect_used)]
fn first_cert(pem: &[u8]) -> Certificate {
    Certificate::load_pem_chain(pem).expect("fixture PEM").into_iter().next().expect("one certificate")
}

/// Reads choices off the front of a fuzz input; past the end every choice is 0.
pub struct Input<'a>(pub &'a [u8]);

impl<'a> Input<'a> {
    /// The next byte.
    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    /// The next `n` bytes, or fewer at the end.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    /// Everything not read yet.
    pub fn rest(self) -> &'a [u8] {
        self.0
    }

    /// A content cipher.
    pub fn cipher(&mut self) -> ContentCipher {
        match self.byte() % 5 {
            0 => ContentCipher::Aes128,
            1 => ContentCipher::Aes192,
            2 => ContentCipher::Aes256,
            3 => ContentCipher::Des3,
            _ => ContentCipher::Des,
        }
    }

    /// A key transport.
    pub fn transport(&mut self) -> KeyTransport {
        match self.byte() % 3 {
            0 => KeyTransport::RsaPkcs1,
            1 => KeyTransport::RsaOaepSha1,
            _ => KeyTransport::RsaOaepSha256,
        }
    }

    /// A request message type.
    pub fn request_type(&mut self) -> MessageType {
        match self.byte() % 5 {
            0 => MessageType::PkcsReq,
            1 => MessageType::RenewalReq,
            2 => MessageType::CertPoll,
            3 => MessageType::GetCert,
            _ => MessageType::GetCrl,
        }
    }
}
