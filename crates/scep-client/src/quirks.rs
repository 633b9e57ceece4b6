//! Signer certificates encoded the way clients in the field encode them, for testing
//! how liberal a server is (RFC 8894 section 2.3 asks only for a self-signed
//! certificate over the request's key).
//!
//! Real clients send: serial numbers of 32 random octets (certmonger, sscep: 33 with
//! the sign octet), zero or negative serials, GeneralizedTime before 2050, UTCTime
//! without seconds, version 1 certificates without extensions. A server must read
//! them all; none of them is what a CA issues.

use std::time::{Duration, SystemTime};

use der::{Any, Encode, Tag};
use scep::crypto::{PrivateKey, Signer};
use scep::signer::SignerCert;
use x509_cert::name::Name;

/// How a validity time is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeEncoding {
    /// UTCTime `YYMMDDHHMMSSZ` (RFC 5280).
    Utc,
    /// UTCTime `YYMMDDHHMMZ`, without seconds (X.680 allows it; DER-minded decoders refuse it).
    UtcWithoutSeconds,
    /// GeneralizedTime `YYYYMMDDHHMMSSZ`, even for years before 2050.
    Generalized,
}

/// The encoding choices of a signer certificate.
#[derive(Clone, Debug)]
pub struct SignerQuirks {
    /// The serial number's INTEGER value octets, two's complement, as long as wanted.
    pub serial: Vec<u8>,
    /// Encoding of notBefore.
    pub not_before: TimeEncoding,
    /// Encoding of notAfter.
    pub not_after: TimeEncoding,
    /// A version 3 certificate (with the version field); `false`: version 1, no field.
    pub v3: bool,
    /// basicConstraints and keyUsage extensions (version 3 only).
    pub extensions: bool,
}

impl SignerQuirks {
    /// What certmonger sends: a positive 32-octet serial (33 with the sign octet),
    /// GeneralizedTime validity, no keyUsage.
    pub fn certmonger_like() -> Self {
        let mut serial = vec![0x00];
        serial.extend(std::iter::repeat_n(0xc3, 32));
        SignerQuirks {
            serial,
            not_before: TimeEncoding::Generalized,
            not_after: TimeEncoding::Generalized,
            v3: true,
            extensions: false,
        }
    }
}

/// A self-signed certificate for `key` with `subject`, encoded as `q` says, valid from
/// an hour ago for a day (whole minutes, so that every encoding says the same).
pub fn signer_certificate(subject: &Name, key: &PrivateKey, q: &SignerQuirks) -> scep::Result<SignerCert> {
    let now = SystemTime::now();
    let minute = |t: SystemTime| {
        let s = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        SystemTime::UNIX_EPOCH + Duration::from_secs(s - s % 60)
    };
    let validity = seq(&[
        encode_time(minute(now - Duration::from_secs(3600)), q.not_before)?,
        encode_time(minute(now + Duration::from_secs(86_400)), q.not_after)?,
    ])?;
    let name = subject.to_der()?;
    let alg = key.signature_algorithm().to_der()?;
    let mut tbs = Vec::new();
    if q.v3 {
        tbs.push(
            Any::new(Tag::ContextSpecific { constructed: true, number: der::TagNumber(0) }, 2u8.to_der()?)?.to_der()?,
        );
    }
    tbs.push(Any::new(Tag::Integer, q.serial.clone())?.to_der()?);
    tbs.extend([alg.clone(), name.clone(), validity, name, key.public_key().to_der()?]);
    if q.v3 && q.extensions {
        let exts = seq(&[
            scep::x509::basic_constraints(false)?.to_der()?,
            scep::x509::key_usage(x509_cert::ext::pkix::KeyUsages::DigitalSignature)?.to_der()?,
        ])?;
        tbs.push(Any::new(Tag::ContextSpecific { constructed: true, number: der::TagNumber(3) }, exts)?.to_der()?);
    }
    let tbs = seq(&tbs)?;
    let signature = key.sign(&tbs)?;
    let cert = seq(&[tbs, alg, der::asn1::BitString::from_bytes(&signature)?.to_der()?])?;
    SignerCert::from_der(&cert)
}

fn seq(parts: &[Vec<u8>]) -> scep::Result<Vec<u8>> {
    Ok(Any::new(Tag::Sequence, parts.concat())?.to_der()?)
}

fn encode_time(t: SystemTime, how: TimeEncoding) -> scep::Result<Vec<u8>> {
    let dt = time::OffsetDateTime::from(t);
    let (y, mo, d, h, mi, s) = (dt.year(), u8::from(dt.month()), dt.day(), dt.hour(), dt.minute(), dt.second());
    let (tag, text) = match how {
        TimeEncoding::Utc => (Tag::UtcTime, format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100)),
        TimeEncoding::UtcWithoutSeconds => (Tag::UtcTime, format!("{:02}{mo:02}{d:02}{h:02}{mi:02}Z", y % 100)),
        TimeEncoding::Generalized => (Tag::GeneralizedTime, format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z")),
    };
    Ok(Any::new(tag, text.into_bytes())?.to_der()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use scep::crypto::KeyType;

    #[test]
    fn the_certmonger_shape_reads_leniently_and_not_strictly() {
        let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
        let subject: Name = "CN=quirky".parse().unwrap();
        let c = signer_certificate(&subject, &key, &SignerQuirks::certmonger_like()).unwrap();
        assert_eq!(c.public_key(), &key.public_key());
        assert!(c.certificate().is_none(), "x509-cert refuses a 33-octet serial");
        let strict = SignerQuirks {
            serial: vec![0x01, 0x02],
            not_before: TimeEncoding::Utc,
            not_after: TimeEncoding::Utc,
            v3: true,
            extensions: true,
        };
        let c = signer_certificate(&subject, &key, &strict).unwrap();
        let cert = c.certificate().expect("an ordinary certificate reads strictly");
        scep::x509::verify_issued_by(cert, cert).unwrap();
    }
}
