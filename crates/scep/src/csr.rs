//! PKCS#10 certification requests as SCEP clients send them: challengePassword in any
//! string type, several extensionRequest attributes, Windows validity attributes.

use core::fmt;

use const_oid::AssociatedOid;
use der::{
    Any, AnyRef, Decode, Encode, Sequence, Tag, Tagged,
    asn1::{BitStringRef, Ia5String, PrintableString, Utf8StringRef},
};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::{
    ext::{
        Extension,
        pkix::{KeyUsage, SubjectAltName},
    },
    name::Name,
    request::CertReqInfo,
};
use zeroize::Zeroizing;

use crate::attr::oid;
use crate::crypto;
use crate::error::{Error, Result};

/// A challenge password. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge(Zeroizing<String>);

impl Challenge {
    /// Wrap a password.
    pub fn new(s: impl Into<String>) -> Self {
        Challenge(Zeroizing::new(s.into()))
    }
    /// The password itself, for hashing or comparison.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Challenge(<redacted>)")
    }
}

/// The validity a Windows client asks for with ValidityPeriod/ValidityPeriodUnits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestedValidity {
    /// Requested validity in seconds.
    pub seconds: u64,
}

#[derive(Sequence)]
struct RawCertReq<'a> {
    info: AnyRef<'a>,
    algorithm: AlgorithmIdentifierOwned,
    signature: BitStringRef<'a>,
}

/// The requested extension `T` decoded strictly: it must decode as DER and re-encode
/// to exactly the bytes sent (no trailing bytes, no non-minimal lengths).
fn strict<T: AssociatedOid + for<'a> Decode<'a> + Encode>(extensions: &[Extension], name: &str) -> Result<Option<T>> {
    let Some(e) = extensions.iter().find(|e| e.extn_id == T::OID) else { return Ok(None) };
    let bytes = e.extn_value.as_bytes();
    let value = T::from_der(bytes).map_err(|_| Error::BadRequest(format!("the requested {name} does not decode")))?;
    if value.to_der().ok().as_deref() != Some(bytes) {
        return Err(Error::BadRequest(format!("the requested {name} is not DER")));
    }
    Ok(Some(value))
}

/// A parsed certification request whose self-signature has been checked.
#[derive(Clone, Debug)]
pub struct Csr {
    der: Vec<u8>,
    info: CertReqInfo,
    challenge: Option<Challenge>,
    extensions: Vec<Extension>,
    san: Option<SubjectAltName>,
    key_usage: Option<KeyUsage>,
    validity: Option<RequestedValidity>,
}

impl Csr {
    /// Parse a DER CSR and verify its signature with its own key. Before the signature
    /// checks out, bytes that do not decode give [`Error::Asn1`], a bad signature
    /// [`Error::BadMessageCheck`] and an unknown algorithm [`Error::UnsupportedAlgorithm`];
    /// what is wrong in a CSR whose signature verified is [`Error::BadRequest`].
    ///
    /// The extensions that policy reads and that go into a certificate (subjectAltName,
    /// keyUsage) are decoded strictly and must re-encode to the bytes sent: a value
    /// that decodes one way for the checks and goes into the certificate as other
    /// bytes is refused, and only the re-encoded value is ever issued.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let raw = RawCertReq::from_der(der)?;
        // Verify over the bytes as sent, not a re-encoding.
        let info_der = raw.info.to_der()?;
        let info = CertReqInfo::from_der(&info_der)?;
        crypto::verify(&info.public_key, &raw.algorithm.oid, None, &info_der, raw.signature.raw_bytes()).map_err(
            |e| match e {
                Error::UnsupportedAlgorithm(s) => Error::UnsupportedAlgorithm(s),
                _ => Error::BadMessageCheck("the CSR signature does not verify"),
            },
        )?;

        let mut challenge = None;
        let mut extensions: Vec<Extension> = Vec::new();
        let mut period: Option<String> = None;
        let mut units: Option<u64> = None;
        for attr in info.attributes.iter() {
            for value in attr.values.iter() {
                match attr.oid {
                    oid::CHALLENGE_PASSWORD if challenge.is_none() => {
                        challenge = Some(Challenge::new(decode_string(value).ok_or_else(|| {
                            Error::BadRequest("the challengePassword is not a readable string".into())
                        })?));
                    }
                    oid::EXTENSION_REQUEST => {
                        // Several extensionRequest attributes occur in the field: merge them,
                        // the first occurrence of an extension wins.
                        let exts: Vec<Extension> = value
                            .decode_as()
                            .map_err(|_| Error::BadRequest("an extensionRequest does not decode".into()))?;
                        for e in exts {
                            if !extensions.iter().any(|x| x.extn_id == e.extn_id) {
                                extensions.push(e);
                            }
                        }
                    }
                    oid::MS_VALIDITY_PERIOD => period = decode_string(value),
                    oid::MS_VALIDITY_PERIOD_UNITS => {
                        units = value
                            .decode_as::<u64>()
                            .ok()
                            .or_else(|| decode_string(value).and_then(|s| s.trim().parse().ok()))
                    }
                    _ => {}
                }
            }
        }
        let validity = match (period.as_deref().map(str::trim), units) {
            (Some(p), Some(n)) => {
                let unit: u64 = match p.to_ascii_lowercase().as_str() {
                    "seconds" => 1,
                    "minutes" => 60,
                    "hours" => 3600,
                    "days" => 86_400,
                    "weeks" => 7 * 86_400,
                    "months" => 30 * 86_400,
                    "years" => 365 * 86_400,
                    _ => 0,
                };
                (unit > 0).then(|| RequestedValidity { seconds: unit.saturating_mul(n) })
            }
            _ => None,
        };
        let san = strict::<SubjectAltName>(&extensions, "subjectAltName")?;
        let key_usage = strict::<KeyUsage>(&extensions, "keyUsage")?;
        Ok(Csr { der: der.to_vec(), info, challenge, extensions, san, key_usage, validity })
    }

    /// The DER as received.
    pub fn to_der(&self) -> &[u8] {
        &self.der
    }
    /// Requested subject.
    pub fn subject(&self) -> &Name {
        &self.info.subject
    }
    /// Requested public key.
    pub fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.info.public_key
    }
    /// The challengePassword, if any.
    pub fn challenge(&self) -> Option<&Challenge> {
        self.challenge.as_ref()
    }
    /// Requested extensions, merged from every extensionRequest.
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }
    /// A requested extension of type `T`, decoded.
    pub fn extension<T: AssociatedOid + for<'a> Decode<'a>>(&self) -> Option<T> {
        self.extensions.iter().find(|e| e.extn_id == T::OID).and_then(|e| T::from_der(e.extn_value.as_bytes()).ok())
    }
    /// Requested subject alternative names (decoded strictly when the CSR was read).
    pub fn subject_alt_name(&self) -> Option<SubjectAltName> {
        self.san.clone()
    }
    /// Requested key usage (decoded strictly when the CSR was read).
    pub fn key_usage(&self) -> Option<KeyUsage> {
        self.key_usage
    }
    /// Validity asked for by a Windows client.
    pub fn requested_validity(&self) -> Option<RequestedValidity> {
        self.validity
    }
}

/// Decode a string of any ASN.1 string type clients use for challenge passwords and
/// transaction IDs: PrintableString, UTF8String, IA5String, T61String (read as
/// Latin-1) and BMPString (UTF-16BE).
pub fn decode_string(any: &Any) -> Option<String> {
    let v = any.value();
    match any.tag() {
        Tag::PrintableString => any.decode_as::<PrintableString>().ok().map(|s| s.to_string()),
        Tag::Utf8String => any.decode_as::<Utf8StringRef<'_>>().ok().map(|s| s.as_str().to_owned()),
        Tag::Ia5String => any.decode_as::<Ia5String>().ok().map(|s| s.to_string()),
        Tag::TeletexString => Some(v.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            if !v.len().is_multiple_of(2) {
                return None;
            }
            let units = v
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c.first().copied().unwrap_or(0), c.get(1).copied().unwrap_or(0)]));
            char::decode_utf16(units).collect::<core::result::Result<String, _>>().ok()
        }
        Tag::OctetString => core::str::from_utf8(v).ok().map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_type_decodes() {
        let cases: Vec<(Tag, Vec<u8>)> = vec![
            (Tag::PrintableString, b"ABC123".to_vec()),
            (Tag::Utf8String, "ABC123".as_bytes().to_vec()),
            (Tag::Ia5String, b"ABC123".to_vec()),
            (Tag::TeletexString, b"ABC123".to_vec()),
            (Tag::BmpString, "ABC123".encode_utf16().flat_map(|u| u.to_be_bytes()).collect()),
        ];
        for (tag, bytes) in cases {
            let any = Any::new(tag, bytes).unwrap();
            assert_eq!(decode_string(&any).as_deref(), Some("ABC123"), "{tag:?}");
        }
        assert_eq!(format!("{:?}", Challenge::new("secret")), "Challenge(<redacted>)");
    }
}

#[cfg(test)]
mod wire_tests {
    use std::str::FromStr;

    use der::{Any, Encode, Tag, asn1::SetOfVec};
    use x509_cert::{
        attr::Attribute,
        ext::pkix::{KeyUsage, KeyUsages, SubjectAltName, name::GeneralName},
        name::Name,
        request::{CertReq, CertReqInfo, Version},
    };

    use super::*;
    use crate::crypto::{KeyType, PrivateKey, Signer};

    /// A CSR with the attributes exactly as given, signed by `key`.
    fn csr_with(key: &PrivateKey, attrs: Vec<Attribute>) -> Vec<u8> {
        let info = CertReqInfo {
            version: Version::V1,
            subject: Name::from_str("CN=wire,O=Example").unwrap(),
            public_key: key.public_key(),
            attributes: SetOfVec::try_from(attrs).unwrap(),
        };
        let sig = key.sign(&info.to_der().unwrap()).unwrap();
        CertReq {
            info,
            algorithm: key.signature_algorithm(),
            signature: der::asn1::BitString::from_bytes(&sig).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    fn attr(oid: const_oid::ObjectIdentifier, value: Any) -> Attribute {
        Attribute { oid, values: SetOfVec::try_from(vec![value]).unwrap() }
    }

    fn ext_req(exts: Vec<Extension>) -> Attribute {
        attr(oid::EXTENSION_REQUEST, Any::encode_from(&exts).unwrap())
    }

    #[test]
    fn challenge_in_every_string_type_reaches_the_policy() {
        let key = PrivateKey::generate(KeyType::EcP256).unwrap();
        let pw = "1ED0DD50F7459D6E";
        let bmp: Vec<u8> = pw.encode_utf16().flat_map(u16::to_be_bytes).collect();
        for (tag, bytes) in [
            (Tag::PrintableString, pw.as_bytes().to_vec()),
            (Tag::Utf8String, pw.as_bytes().to_vec()),
            (Tag::Ia5String, pw.as_bytes().to_vec()),
            (Tag::TeletexString, pw.as_bytes().to_vec()),
            (Tag::BmpString, bmp),
        ] {
            let der = csr_with(&key, vec![attr(oid::CHALLENGE_PASSWORD, Any::new(tag, bytes).unwrap())]);
            let csr = Csr::from_der(&der).unwrap();
            assert_eq!(csr.challenge().unwrap().expose(), pw, "{tag:?}");
        }
    }

    #[test]
    fn several_extension_requests_are_merged_and_windows_validity_is_read() {
        let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
        let san = SubjectAltName(vec![GeneralName::DnsName(der::asn1::Ia5String::new("a.example").unwrap())]);
        let ku = KeyUsage(KeyUsages::DigitalSignature.into());
        let units = "Days".encode_utf16().flat_map(u16::to_be_bytes).collect::<Vec<u8>>();
        let der = csr_with(
            &key,
            vec![
                ext_req(vec![crate::x509::extension(&san, false).unwrap()]),
                ext_req(vec![crate::x509::extension(&ku, true).unwrap()]),
                attr(oid::MS_VALIDITY_PERIOD, Any::new(Tag::BmpString, units).unwrap()),
                attr(oid::MS_VALIDITY_PERIOD_UNITS, Any::encode_from(&30u32).unwrap()),
            ],
        );
        let csr = Csr::from_der(&der).unwrap();
        assert_eq!(csr.extensions().len(), 2);
        assert_eq!(csr.subject_alt_name().unwrap(), san);
        assert_eq!(csr.key_usage().unwrap(), ku);
        assert_eq!(csr.requested_validity().unwrap().seconds, 30 * 86_400);
        assert!(csr.challenge().is_none());
    }

    #[test]
    fn a_tampered_csr_is_refused() {
        let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
        let mut der = csr_with(&key, vec![]);
        let n = der.len();
        der[n - 1] ^= 1;
        assert!(matches!(Csr::from_der(&der), Err(Error::BadMessageCheck(_))));
        assert!(matches!(Csr::from_der(&der[..n / 2]), Err(Error::Asn1(_))));
    }
}
