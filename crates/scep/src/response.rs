//! CertRep: the server's reply to every PKIOperation (RFC 8894 section 3.3.2), and
//! its reading on the client side.

use std::time::SystemTime;

use der::asn1::{OctetString, PrintableString, Utf8StringRef};
use x509_cert::{Certificate, attr::Attribute, crl::CertificateList};

use crate::attr::{ContentCipher, FailInfo, MessageType, Nonce, PkiStatus, TransactionId, oid};
use crate::cms as c;
use crate::crypto::{Decrypter, SecureRandom, Signer, SystemRandom};
use crate::csr::decode_string;
use crate::error::{Error, Result};
use crate::request::{FailureAddress, ReplyTo};
use crate::signer::SignerCert;

/// The outcome a CertRep carries.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// SUCCESS with certificates (issued certificate first) and/or CRLs.
    Success {
        /// Certificates, in the order the client gets them.
        certificates: Vec<Certificate>,
        /// CRLs (GetCRL).
        crls: Vec<CertificateList>,
    },
    /// PENDING: poll again later.
    Pending,
    /// FAILURE with failInfo and a human-readable failInfoText.
    Failure(FailInfo, String),
}

/// What a reply takes from outside: the time it is signed at (signingTime) and where
/// its random bytes come from (the senderNonce, the content key and IV), as rustls's
/// `TimeProvider` and `CryptoProvider::secure_random` give them. With a fixed source,
/// a PENDING or FAILURE CertRep is reproduced byte for byte.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    /// signingTime.
    pub now: SystemTime,
    /// Random bytes.
    pub random: &'a dyn SecureRandom,
}

impl Env<'static> {
    /// At `now`, with the system CSPRNG.
    pub fn system(now: SystemTime) -> Self {
        Env { now, random: &SystemRandom }
    }
}

/// Build and sign a CertRep for `reply` with `outcome`, signed by `signer` whose
/// certificate (one of those GetCACert returns) is `signer_cert`.
///
/// SUCCESS content is enveloped to the request's signer certificate with AES of the
/// request's strength, or 3DES for clients that sent DES or 3DES.
pub fn cert_rep(
    reply: &ReplyTo,
    outcome: &Outcome,
    signer: &dyn Signer,
    signer_cert: &Certificate,
    env: Env<'_>,
) -> Result<Vec<u8>> {
    let address =
        FailureAddress { transaction_id: reply.transaction_id.clone(), sender_nonce: reply.sender_nonce.clone() };
    let content = match outcome {
        Outcome::Success { certificates, crls } => {
            let inner = c::certs_only(certificates, crls)?;
            let cipher = reply.request_cipher.map_or(ContentCipher::Aes256, ContentCipher::reply_cipher);
            Some(c::envelope(&inner, &reply.recipient, cipher, env.random)?)
        }
        // FAILURE and PENDING carry no envelope, but an empty eContent rather than none:
        // OpenSSL's PKCS7_verify (certmonger, sscep) takes absent content for detached
        // content and refuses the reply ("no content"); RFC 5652 allows either.
        Outcome::Failure(..) | Outcome::Pending => Some(Vec::new()),
    };
    signed(&address, outcome, content, signer, signer_cert, env)
}

/// A CertRep FAILURE for a message that could not be read beyond its transactionID
/// and senderNonce ([`crate::request::Unreadable`]).
pub fn failure_rep(
    to: &FailureAddress,
    info: FailInfo,
    text: &str,
    signer: &dyn Signer,
    signer_cert: &Certificate,
    env: Env<'_>,
) -> Result<Vec<u8>> {
    signed(to, &Outcome::Failure(info, text.to_owned()), Some(Vec::new()), signer, signer_cert, env)
}

/// The signed CertRep: the SCEP attributes for `outcome` over `content`, with
/// signingTime `env.now` (as micromdm's and Go's pkcs7 write it; Windows clients log it).
fn signed(
    to: &FailureAddress,
    outcome: &Outcome,
    content: Option<Vec<u8>>,
    signer: &dyn Signer,
    signer_cert: &Certificate,
    env: Env<'_>,
) -> Result<Vec<u8>> {
    let now = env.now;
    let status = match outcome {
        Outcome::Success { .. } => PkiStatus::Success,
        Outcome::Failure(..) => PkiStatus::Failure,
        Outcome::Pending => PkiStatus::Pending,
    };
    let mut attrs: Vec<Attribute> = vec![
        c::attr_value(oid::MESSAGE_TYPE, &PrintableString::new(&MessageType::CertRep.code().to_string())?)?,
        c::attr_value(oid::PKI_STATUS, &PrintableString::new(&status.code().to_string())?)?,
        c::attr_value(oid::TRANSACTION_ID, &transaction_id_value(&to.transaction_id)?)?,
        c::attr_value(oid::SENDER_NONCE, &OctetString::new(Nonce::from_random(env.random)?.0)?)?,
        c::attr_value(oid::RECIPIENT_NONCE, &OctetString::new(to.sender_nonce.0.clone())?)?,
        // RFC 5652 section 11.3: UTCTime through 2049, GeneralizedTime after.
        c::attr_value(oid::SIGNING_TIME, &x509_cert::time::Time::try_from(now)?)?,
    ];
    if let Outcome::Failure(info, text) = outcome {
        attrs.push(c::attr_value(oid::FAIL_INFO, &PrintableString::new(&info.code().to_string())?)?);
        attrs.push(c::attr_value(oid::FAIL_INFO_TEXT, &Utf8StringRef::new(text)?)?);
    }
    c::sign(content.as_deref(), attrs, signer, &SignerCert::from_certificate(signer_cert)?)
}

/// A GetNextCACert body (RFC 8894 section 3.5.2): a SignedData, signed by the current
/// CA, whose content is a certs-only SignedData of the next CA (and RA) certificates.
pub fn next_ca_cert(certs: &[Certificate], signer: &dyn Signer, signer_cert: &Certificate) -> Result<Vec<u8>> {
    let inner = c::certs_only(certs, &[])?;
    c::sign(Some(&inner), vec![], signer, &SignerCert::from_certificate(signer_cert)?)
}

/// The transactionID as a PrintableString when it is one, else a UTF8String.
fn transaction_id_value(id: &TransactionId) -> der::Result<der::Any> {
    match PrintableString::new(id.as_str()) {
        Ok(p) => der::Any::encode_from(&p),
        Err(_) => der::Any::encode_from(&Utf8StringRef::new(id.as_str())?),
    }
}

/// A CertRep as a client reads it.
#[derive(Clone, Debug)]
pub struct ParsedCertRep {
    /// Echoed transactionID.
    pub transaction_id: Option<TransactionId>,
    /// recipientNonce (should equal our senderNonce).
    pub recipient_nonce: Option<Nonce>,
    /// The server's senderNonce.
    pub sender_nonce: Option<Nonce>,
    /// The outcome; SUCCESS content already decrypted.
    pub outcome: Outcome,
    /// The cipher the server used for the envelope (SUCCESS only).
    pub cipher: Option<ContentCipher>,
}

impl ParsedCertRep {
    /// Verify a CertRep against the certificates GetCACert returned and open the
    /// envelope with our key.
    pub fn parse(
        bytes: &[u8],
        trusted: &[Certificate],
        our_cert: &SignerCert,
        our_key: &dyn Decrypter,
    ) -> Result<Self> {
        let (content, attrs) = c::verify_reply(bytes, trusted)?;
        let string = |o| c::attribute(&attrs, &o).and_then(decode_string);
        let nonce = |o| {
            c::attribute(&attrs, &o)
                .and_then(|a| a.decode_as::<OctetString>().ok())
                .map(|o| Nonce(o.into_bytes().into_vec()))
        };
        if string(oid::MESSAGE_TYPE).and_then(|t| MessageType::from_wire(&t)) != Some(MessageType::CertRep) {
            return Err(Error::Malformed("reply messageType is not CertRep"));
        }
        let status = string(oid::PKI_STATUS).ok_or(Error::Malformed("reply has no pkiStatus"))?;
        let mut cipher = None;
        let outcome = match PkiStatus::from_wire(&status).ok_or(Error::Malformed("unknown pkiStatus"))? {
            PkiStatus::Success => {
                let env = content.ok_or(Error::Malformed("SUCCESS without content"))?;
                // Clients have no implicit-rejection secret to keep: a random one is fine.
                let secret = crate::crypto::random_bytes(32)?;
                let keys = c::EnvelopeKeys { recipients: vec![(our_cert.clone(), our_key)], rejection_secret: &secret };
                let (plain, ciph) = c::open_envelope(&env, &keys)?;
                cipher = Some(ciph);
                let (certificates, crls) = c::parse_certs_only(&plain)?;
                Outcome::Success { certificates, crls }
            }
            PkiStatus::Failure => {
                let info = string(oid::FAIL_INFO)
                    .and_then(|s| FailInfo::from_wire(&s))
                    .ok_or(Error::Malformed("FAILURE without a valid failInfo"))?;
                Outcome::Failure(info, string(oid::FAIL_INFO_TEXT).unwrap_or_default())
            }
            PkiStatus::Pending => Outcome::Pending,
        };
        Ok(ParsedCertRep {
            transaction_id: string(oid::TRANSACTION_ID).map(TransactionId::new),
            recipient_nonce: nonce(oid::RECIPIENT_NONCE),
            sender_nonce: nonce(oid::SENDER_NONCE),
            outcome,
            cipher,
        })
    }
}
