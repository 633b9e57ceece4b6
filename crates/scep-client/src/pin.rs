//! The CA pin (`--ca-fingerprint`) and what it vouches for.
//!
//! A GetCACert answer is not authenticated: over plain HTTP anyone on the path can
//! rewrite it, and over HTTPS it is whatever the server at that URL says. The
//! fingerprint, read from the NDES admin page or from the CA itself, is the one thing
//! the client trusts, so everything it relies on must chain to the certificate it
//! names: the RA certificates it encrypts to and verifies replies with, the signer of
//! every CertRep, the certificates a reply carries and the CRLs of GetCRL.
//!
//! Without a pin, one check still applies: when GetCACert holds a CA certificate, each
//! RA certificate must be issued by one of the answer's CA certificates. That does not
//! authenticate anything (a rewritten answer can carry a matching CA), but an answer
//! whose parts do not belong together is a misconfigured server or a tampered answer,
//! and enrolling against it would leave a chain.pem that does not verify.

use std::str::FromStr;

use der::Encode;
use x509_cert::{Certificate, crl::CertificateList, ext::pkix::BasicConstraints};

use crate::client::ScepError;

/// Longest chain walked up from a certificate towards the pinned CA (RA, issuing CA,
/// intermediates): enough for any real PKI, and a bound on hostile answers.
const MAX_DEPTH: usize = 8;

/// An expected CA fingerprint: the SHA-256, SHA-1 or MD5 of the certificate's DER.
#[derive(Clone, PartialEq, Eq)]
pub struct Fingerprint {
    alg: Alg,
    /// Uppercase hex.
    hex: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Alg {
    Sha256,
    Sha1,
    /// The NDES admin page shows the CA's MD5.
    Md5,
}

impl core::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?} {}", self.alg, self.hex)
    }
}

impl FromStr for Fingerprint {
    type Err = ScepError;

    /// Hex digits with any separators (`AB:CD`, `ABCD EF01`, as the admin page groups them).
    fn from_str(s: &str) -> Result<Self, ScepError> {
        let hex: String = s.chars().filter(char::is_ascii_hexdigit).collect::<String>().to_ascii_uppercase();
        let alg = match hex.len() {
            64 => Alg::Sha256,
            40 => Alg::Sha1,
            32 => Alg::Md5,
            _ => {
                return Err(ScepError::Protocol(
                    "--ca-fingerprint must be a SHA-256 (64 hex digits), SHA-1 (40) or MD5 (32) fingerprint".into(),
                ));
            }
        };
        Ok(Fingerprint { alg, hex })
    }
}

impl Fingerprint {
    /// The fingerprint of `cert` in this one's algorithm, uppercase hex.
    pub fn of(&self, cert: &Certificate) -> String {
        let der = cert.to_der().unwrap_or_default();
        match self.alg {
            Alg::Sha256 => hex::encode_upper(scep::attr::DigestAlg::Sha256.digest(&der)),
            Alg::Sha1 => hex::encode_upper(scep::attr::DigestAlg::Sha1.digest(&der)),
            Alg::Md5 => hex::encode_upper(<md5::Md5 as md5::Digest>::digest(&der)),
        }
    }

    /// Whether this is `cert`'s fingerprint.
    pub fn matches(&self, cert: &Certificate) -> bool {
        self.of(cert) == self.hex
    }

    /// The expected value, uppercase hex.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

/// Whether `cert` says it is a CA (basicConstraints cA).
pub(crate) fn is_ca(cert: &Certificate) -> bool {
    cert.tbs_certificate().get_extension::<BasicConstraints>().ok().flatten().is_some_and(|(_, bc)| bc.ca)
}

/// Whether `issuer`'s key verifies `cert`'s signature. The key is what the pin stands
/// for; names are not compared (string types and case differ between encoders).
pub(crate) fn issued_by(cert: &Certificate, issuer: &Certificate) -> bool {
    scep::x509::verify_issued_by(cert, issuer).is_ok()
}

/// Whether `cert` is `anchor` or chains to it through CA certificates of `cas`, each
/// link's signature verified with the next one's key.
pub(crate) fn chains_to(cert: &Certificate, anchor: &Certificate, cas: &[Certificate]) -> bool {
    chains_within(cert, anchor, cas, MAX_DEPTH)
}

fn chains_within(cert: &Certificate, anchor: &Certificate, cas: &[Certificate], depth: usize) -> bool {
    if cert == anchor || issued_by(cert, anchor) {
        return true;
    }
    depth > 0
        && cas.iter().any(|i| {
            i != cert && i != anchor && is_ca(i) && issued_by(cert, i) && chains_within(i, anchor, cas, depth - 1)
        })
}

/// Whether `issuer`'s key verifies the CRL's signature.
pub(crate) fn crl_signed_by(crl: &CertificateList, issuer: &Certificate) -> bool {
    let Ok(tbs) = crl.tbs_cert_list.to_der() else { return false };
    scep::crypto::verify(
        issuer.tbs_certificate().subject_public_key_info(),
        &crl.signature_algorithm.oid,
        None,
        &tbs,
        crl.signature.raw_bytes(),
    )
    .is_ok()
}

/// A certificate for an error message: its subject and SHA-256 fingerprint (two CAs
/// set up with the same defaults have the same name).
pub(crate) fn describe(cert: &Certificate) -> String {
    let der = cert.to_der().unwrap_or_default();
    format!(
        "{} (SHA-256 {})",
        cert.tbs_certificate().subject(),
        hex::encode_upper(scep::attr::DigestAlg::Sha256.digest(&der))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_take_any_separators_and_say_what_lengths_work() {
        // The NDES admin page's grouping, lowercase.
        let f: Fingerprint = "a656fa66 ab12b433 a2da5cf7 cc153d9a".parse().unwrap();
        assert_eq!((f.alg, f.hex()), (Alg::Md5, "A656FA66AB12B433A2DA5CF7CC153D9A"));
        assert_eq!("A6:56:FA:66:AB:12:B4:33:A2:DA:5C:F7:CC:15:3D:9A".parse::<Fingerprint>().unwrap(), f);
        let e = "ABCD".parse::<Fingerprint>().unwrap_err();
        assert!(e.to_string().contains("SHA-256 (64 hex digits)"), "{e}");
        assert_eq!("a".repeat(64).parse::<Fingerprint>().unwrap().alg, Alg::Sha256);
        assert_eq!("a".repeat(40).parse::<Fingerprint>().unwrap().alg, Alg::Sha1);
    }
}
