//! The certificate that signed a request, read leniently.
//!
//! Requesters sign with certificates that nobody checked against RFC 5280: self-signed
//! throw-aways with 32-byte serial numbers (certmonger and sscep use them), negative or
//! zero serials, GeneralizedTime before 2050, UTCTime without seconds, no KeyUsage.
//! Only three things are taken from such a certificate: its public key (to verify the
//! request and to encrypt the reply), its issuer and serial number exactly as encoded
//! (to address the reply, RFC 8894 section 3.3.2), and its bytes (to recognise a
//! resend). Policy that needs more, such as "is this a certificate we issued?", uses
//! [`SignerCert::certificate`]: the RFC 5280 reading, present when the certificate
//! decodes strictly, as every certificate scepd issues does.
//!
//! What this module does *not* check: the signature on the certificate, its validity
//! period, its extensions. A self-signed signer certificate proves nothing but
//! possession of its key, which the request's signature shows.

use std::fmt;

use der::{Any, Decode, Encode, Tag};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;

use crate::error::{Error, Result};
use crate::tlv::Tlv;

/// Longest serial number accepted in a signer certificate, in octets of the INTEGER's
/// value (RFC 5280 allows 20 for issued certificates; clients use up to 33).
pub const MAX_SIGNER_SERIAL_LEN: usize = 64;

/// A request's signer certificate: its key and its address, whatever its encoding.
#[derive(Clone, PartialEq, Eq)]
pub struct SignerCert {
    der: Vec<u8>,
    /// The DER of IssuerAndSerialNumber built from the certificate's own encodings.
    issuer_and_serial: Vec<u8>,
    spki: SubjectPublicKeyInfoOwned,
    strict: Option<Certificate>,
}

impl SignerCert {
    /// Read a certificate leniently: `SEQUENCE { tbsCertificate, signatureAlgorithm,
    /// signature }`, of whose tbsCertificate only the serial number, issuer and
    /// subjectPublicKeyInfo are decoded.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        const WHAT: &str = "the signer certificate does not decode";
        let cert = Tlv::parse(der, WHAT)?;
        let parts = cert.sequence(WHAT)?;
        let tbs = parts.first().ok_or(Error::Malformed(WHAT))?.sequence(WHAT)?;
        // version [0] EXPLICIT is optional (v1 certificates have none).
        let fields: Vec<&Tlv<'_>> = tbs.iter().skip_while(|t| t.is_context(0)).collect();
        let (serial, issuer, spki) = match fields.as_slice() {
            [serial, _signature, issuer, _validity, _subject, spki, ..] => (*serial, *issuer, *spki),
            _ => return Err(Error::Malformed(WHAT)),
        };
        if serial.tag != Tag::Integer || serial.value.is_empty() || serial.value.len() > MAX_SIGNER_SERIAL_LEN + 1 {
            return Err(Error::Malformed(
                "the signer certificate's serial number is not an INTEGER of up to 64 octets",
            ));
        }
        if issuer.tag != Tag::Sequence {
            return Err(Error::Malformed(WHAT));
        }
        let spki: SubjectPublicKeyInfoOwned = spki.decode("the signer certificate's public key does not decode")?;
        let body = [issuer.whole, serial.whole].concat();
        let issuer_and_serial = Any::new(Tag::Sequence, body)?.to_der()?;
        Ok(SignerCert { der: der.to_vec(), issuer_and_serial, spki, strict: Certificate::from_der(der).ok() })
    }

    /// The same view of a certificate already decoded.
    pub fn from_certificate(cert: &Certificate) -> Result<Self> {
        Self::from_der(&cert.to_der()?)
    }

    /// The certificate's bytes, as the requester sent them (BER made definite).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate's public key.
    pub fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    /// The RFC 5280 reading of the certificate, when it has one.
    pub fn certificate(&self) -> Option<&Certificate> {
        self.strict.as_ref()
    }

    /// The DER of the IssuerAndSerialNumber that names this certificate.
    pub(crate) fn issuer_and_serial(&self) -> &[u8] {
        &self.issuer_and_serial
    }

    /// Whether a SignerIdentifier (the whole element) names this certificate.
    pub(crate) fn is_named_by(&self, sid: &Tlv<'_>) -> bool {
        if sid.tag == Tag::Sequence {
            return sid.whole == self.issuer_and_serial.as_slice();
        }
        // subjectKeyIdentifier [0] IMPLICIT OCTET STRING: the extension when there is
        // one, else the usual derivation (RFC 5280 section 4.2.1.2, method 1).
        if sid.is_context(0) {
            let from_extension = self
                .strict
                .as_ref()
                .and_then(|c| c.tbs_certificate().get_extension::<x509_cert::ext::pkix::SubjectKeyIdentifier>().ok())
                .flatten()
                .map(|(_, ski)| ski.0.as_bytes().to_vec());
            let id = from_extension.unwrap_or_else(|| crate::x509::key_identifier(&self.spki));
            return sid.value == id.as_slice();
        }
        false
    }
}

impl fmt::Debug for SignerCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerCert")
            .field("len", &self.der.len())
            .field("key", &self.spki.algorithm.oid)
            .field("rfc5280", &self.strict.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{KeyType, PrivateKey, Signer};

    fn strict_cert() -> (Certificate, PrivateKey) {
        let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
        let subject = "CN=device".parse().unwrap();
        (crate::x509::scep_signer_certificate(&subject, &key).unwrap(), key)
    }

    #[test]
    fn a_strict_certificate_reads_the_same_both_ways() {
        let (cert, key) = strict_cert();
        let s = SignerCert::from_certificate(&cert).unwrap();
        assert_eq!(s.certificate(), Some(&cert));
        assert_eq!(s.public_key(), &key.public_key());
        let isn = cms::cert::IssuerAndSerialNumber {
            issuer: cert.tbs_certificate().issuer().clone(),
            serial_number: cert.tbs_certificate().serial_number().clone(),
        };
        assert_eq!(s.issuer_and_serial(), isn.to_der().unwrap().as_slice());
    }

    /// Swap the serial number INTEGER of a DER certificate for `serial` (value octets).
    fn with_serial(cert: &Certificate, serial: &[u8]) -> Vec<u8> {
        let der = cert.to_der().unwrap();
        let old = cert.tbs_certificate().serial_number().to_der().unwrap();
        let new = Any::new(Tag::Integer, serial.to_vec()).unwrap().to_der().unwrap();
        let tbs = cert.tbs_certificate().to_der().unwrap();
        let tbs_body = Tlv::parse(&tbs, "t").unwrap().value.to_vec();
        let pos = tbs_body.windows(old.len()).position(|w| w == old.as_slice()).unwrap();
        let mut body = tbs_body.clone();
        body.splice(pos..pos + old.len(), new);
        let new_tbs = Any::new(Tag::Sequence, body).unwrap().to_der().unwrap();
        let outer = Tlv::parse(&der, "c").unwrap();
        let rest: Vec<u8> = outer.sequence("c").unwrap()[1..].iter().flat_map(|t| t.whole.to_vec()).collect();
        Any::new(Tag::Sequence, [new_tbs, rest].concat()).unwrap().to_der().unwrap()
    }

    #[test]
    fn serials_rfc_5280_refuses_are_read() {
        let (cert, key) = strict_cert();
        let mut long = vec![0x00];
        long.extend([0xa5u8; 32]);
        for serial in [long, vec![0x00], vec![0xff, 0x01], vec![0x7f; 64]] {
            let der = with_serial(&cert, &serial);
            let s = SignerCert::from_der(&der).unwrap();
            assert_eq!(s.public_key(), &key.public_key());
            assert!(s.issuer_and_serial().ends_with(&serial));
        }
        assert!(SignerCert::from_der(&with_serial(&cert, &[0x7f; 66])).is_err());
    }

    #[test]
    fn garbage_is_refused() {
        assert!(SignerCert::from_der(&[0x30, 0x00]).is_err());
        assert!(SignerCert::from_der(&[0x02, 0x01, 0x00]).is_err());
    }
}
