//! SCEP attribute OIDs and their typed values (RFC 8894 section 3.2.1).

use core::fmt;

use const_oid::ObjectIdentifier;

/// OIDs used by SCEP and the CMS around it.
pub mod oid {
    use const_oid::ObjectIdentifier;

    /// messageType (2.16.840.1.113733.1.9.2), PrintableString.
    pub const MESSAGE_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.2");
    /// pkiStatus (2.16.840.1.113733.1.9.3), PrintableString.
    pub const PKI_STATUS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.3");
    /// failInfo (2.16.840.1.113733.1.9.4), PrintableString.
    pub const FAIL_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.4");
    /// senderNonce (2.16.840.1.113733.1.9.5), OCTET STRING.
    pub const SENDER_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.5");
    /// recipientNonce (2.16.840.1.113733.1.9.6), OCTET STRING.
    pub const RECIPIENT_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.6");
    /// transactionID (2.16.840.1.113733.1.9.7), PrintableString.
    pub const TRANSACTION_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.7");
    /// failInfoText (1.3.6.1.5.5.7.24.1), UTF8String (RFC 8894 section 3.2.1.4.5).
    pub const FAIL_INFO_TEXT: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.24.1");
    /// PKCS#9 challengePassword.
    pub const CHALLENGE_PASSWORD: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.7");
    /// PKCS#9 extensionRequest.
    pub const EXTENSION_REQUEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.14");
    /// PKCS#9 contentType.
    pub const CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
    /// PKCS#9 messageDigest.
    pub const MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
    /// PKCS#9 signingTime.
    pub const SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
    /// CMS id-data.
    pub const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
    /// CMS id-signedData.
    pub const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
    /// CMS id-envelopedData.
    pub const ENVELOPED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.3");
    /// Microsoft's ValidityPeriod request attribute (a BMPString unit name).
    pub const MS_VALIDITY_PERIOD: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.13.1");
    /// Microsoft's ValidityPeriodUnits request attribute.
    pub const MS_VALIDITY_PERIOD_UNITS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.13.2");
    /// User principal name, as an otherName in a SAN.
    pub const MS_UPN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.20.2.3");
}

/// The messageType attribute (RFC 8894 section 3.2.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// `3`: the server's reply.
    CertRep,
    /// `17`: renewal request, signed by the certificate being renewed.
    RenewalReq,
    /// `19`: enrollment request.
    PkcsReq,
    /// `20`: poll for a pending request (GetCertInitial in older drafts).
    CertPoll,
    /// `21`: fetch a certificate by issuer and serial.
    GetCert,
    /// `22`: fetch a CRL.
    GetCrl,
}

/// pkiStatus (RFC 8894 section 3.2.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PkiStatus {
    /// `0`: the request was granted.
    Success,
    /// `2`: the request was refused (failInfo says why).
    Failure,
    /// `3`: the request waits for approval.
    Pending,
}

impl PkiStatus {
    /// The decimal number carried on the wire.
    pub fn code(self) -> u8 {
        match self {
            PkiStatus::Success => 0,
            PkiStatus::Failure => 2,
            PkiStatus::Pending => 3,
        }
    }

    /// Parse the decimal string of the attribute (surrounding spaces allowed).
    pub fn from_wire(s: &str) -> Option<Self> {
        Some(match s.trim() {
            "0" => PkiStatus::Success,
            "2" => PkiStatus::Failure,
            "3" => PkiStatus::Pending,
            _ => return None,
        })
    }
}

impl MessageType {
    /// The decimal number carried on the wire.
    pub fn code(self) -> u8 {
        match self {
            MessageType::CertRep => 3,
            MessageType::RenewalReq => 17,
            MessageType::PkcsReq => 19,
            MessageType::CertPoll => 20,
            MessageType::GetCert => 21,
            MessageType::GetCrl => 22,
        }
    }

    /// Parse the decimal string of the attribute.
    pub fn from_wire(s: &str) -> Option<Self> {
        Some(match s.trim() {
            "3" => MessageType::CertRep,
            "17" => MessageType::RenewalReq,
            "19" => MessageType::PkcsReq,
            "20" => MessageType::CertPoll,
            "21" => MessageType::GetCert,
            "22" => MessageType::GetCrl,
            _ => return None,
        })
    }

    /// Name as the RFC spells it.
    pub fn name(self) -> &'static str {
        match self {
            MessageType::CertRep => "CertRep",
            MessageType::RenewalReq => "RenewalReq",
            MessageType::PkcsReq => "PKCSReq",
            MessageType::CertPoll => "CertPoll",
            MessageType::GetCert => "GetCert",
            MessageType::GetCrl => "GetCRL",
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// failInfo values (RFC 8894 section 3.2.1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailInfo {
    /// `0`: unrecognized or unsupported algorithm.
    BadAlg,
    /// `1`: integrity check (signature, decryption) failed.
    BadMessageCheck,
    /// `2`: transaction not permitted or supported.
    BadRequest,
    /// `3`: signingTime too far from our clock.
    BadTime,
    /// `4`: no certificate could be identified matching the criteria.
    BadCertId,
}

impl FailInfo {
    /// The decimal number carried on the wire.
    pub fn code(self) -> u8 {
        match self {
            FailInfo::BadAlg => 0,
            FailInfo::BadMessageCheck => 1,
            FailInfo::BadRequest => 2,
            FailInfo::BadTime => 3,
            FailInfo::BadCertId => 4,
        }
    }

    /// Parse the decimal string of the attribute.
    pub fn from_wire(s: &str) -> Option<Self> {
        Some(match s.trim() {
            "0" => FailInfo::BadAlg,
            "1" => FailInfo::BadMessageCheck,
            "2" => FailInfo::BadRequest,
            "3" => FailInfo::BadTime,
            "4" => FailInfo::BadCertId,
            _ => return None,
        })
    }

    /// Name as the RFC spells it.
    pub fn name(self) -> &'static str {
        match self {
            FailInfo::BadAlg => "badAlg",
            FailInfo::BadMessageCheck => "badMessageCheck",
            FailInfo::BadRequest => "badRequest",
            FailInfo::BadTime => "badTime",
            FailInfo::BadCertId => "badCertId",
        }
    }
}

impl fmt::Display for FailInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// transactionID: echoed byte for byte. Clients use hex, base64 with `+/=`, or decimal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TransactionId(String);

impl TransactionId {
    /// Wrap a transaction id as received.
    pub fn new(s: impl Into<String>) -> Self {
        TransactionId(s.into())
    }
    /// The id as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A senderNonce or recipientNonce (16 bytes from conforming clients; any length accepted).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Nonce(pub Vec<u8>);

impl Nonce {
    /// A fresh 16-byte nonce from the system CSPRNG.
    pub fn random() -> crate::Result<Self> {
        Self::from_random(&crate::crypto::SystemRandom)
    }

    /// A fresh 16-byte nonce from `random`.
    pub fn from_random(random: &dyn crate::crypto::SecureRandom) -> crate::Result<Self> {
        Ok(Nonce(crate::crypto::random_from(random, 16)?))
    }
}

/// Content key transport algorithms accepted in requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyTransport {
    /// RSA PKCS#1 v1.5 (rsaEncryption): most clients.
    RsaPkcs1,
    /// RSA-OAEP with SHA-1 (Windows CNG/TPM keys).
    RsaOaepSha1,
    /// RSA-OAEP with SHA-256.
    RsaOaepSha256,
}

/// Content encryption algorithms (CBC) of the envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentCipher {
    /// Single DES: accepted from old clients, never sent.
    Des,
    /// DES-EDE3-CBC.
    Des3,
    /// AES-128-CBC.
    Aes128,
    /// AES-192-CBC.
    Aes192,
    /// AES-256-CBC.
    Aes256,
}

impl ContentCipher {
    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            ContentCipher::Des => 8,
            ContentCipher::Des3 | ContentCipher::Aes192 => 24,
            ContentCipher::Aes128 => 16,
            ContentCipher::Aes256 => 32,
        }
    }
    /// Block (and IV) length in bytes.
    pub fn block_len(self) -> usize {
        match self {
            ContentCipher::Des | ContentCipher::Des3 => 8,
            _ => 16,
        }
    }
    /// The algorithm OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            ContentCipher::Des => ObjectIdentifier::new_unwrap("1.3.14.3.2.7"),
            ContentCipher::Des3 => ObjectIdentifier::new_unwrap("1.2.840.113549.3.7"),
            ContentCipher::Aes128 => ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.2"),
            ContentCipher::Aes192 => ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.22"),
            ContentCipher::Aes256 => ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.42"),
        }
    }
    /// Look an OID up.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        [ContentCipher::Des, ContentCipher::Des3, ContentCipher::Aes128, ContentCipher::Aes192, ContentCipher::Aes256]
            .into_iter()
            .find(|c| c.oid() == *oid)
    }
    /// The cipher a reply uses for a client whose request used `self`: the same AES
    /// strength, and 3DES for clients that sent DES or 3DES (they offered nothing
    /// better; single DES is never sent).
    pub fn reply_cipher(self) -> ContentCipher {
        match self {
            ContentCipher::Des | ContentCipher::Des3 => ContentCipher::Des3,
            ContentCipher::Aes128 | ContentCipher::Aes192 => ContentCipher::Aes128,
            ContentCipher::Aes256 => ContentCipher::Aes256,
        }
    }
}

/// Digest algorithms accepted in requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlg {
    /// SHA-1 (old clients; accepted, never used for our own signatures).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl DigestAlg {
    /// The algorithm OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            DigestAlg::Sha1 => ObjectIdentifier::new_unwrap("1.3.14.3.2.26"),
            DigestAlg::Sha256 => ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1"),
            DigestAlg::Sha384 => ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2"),
            DigestAlg::Sha512 => ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3"),
        }
    }
    /// Look an OID up.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        [DigestAlg::Sha1, DigestAlg::Sha256, DigestAlg::Sha384, DigestAlg::Sha512].into_iter().find(|d| d.oid() == *oid)
    }
    /// Digest `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use aws_lc_rs::digest;
        let alg = match self {
            DigestAlg::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            DigestAlg::Sha256 => &digest::SHA256,
            DigestAlg::Sha384 => &digest::SHA384,
            DigestAlg::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }
}
