//! Requests, in the order the server handles them:
//! [`PkiMessage`] (parsed, untrusted) -> [`SignedRequest`] (signature checked) ->
//! [`Request`] (decrypted, typed body). Each step consumes the last.
//!
//! [`RequestBuilder`] makes the same messages on the client side.

use cms::cert::IssuerAndSerialNumber;
use der::{Decode, Encode, Sequence, asn1::OctetString, asn1::PrintableString};
use x509_cert::{Certificate, attr::Attribute, name::Name};

use crate::attr::{ContentCipher, DigestAlg, MessageType, Nonce, TransactionId, oid};
use crate::cms::{self as c, EnvelopeId, EnvelopeKeys, SignerInfoView};
use crate::crypto::{Decrypter, Signer};
use crate::csr::{Csr, decode_string};
use crate::error::{Error, Result};
use crate::signer::SignerCert;

/// Everything a CertRep needs to answer a request, known as soon as it is parsed.
#[derive(Clone, Debug)]
pub struct ReplyTo {
    /// transactionID, echoed byte for byte.
    pub transaction_id: TransactionId,
    /// The request's senderNonce, returned as recipientNonce.
    pub sender_nonce: Nonce,
    /// The certificate that signed the request: replies are enveloped to it.
    pub recipient: SignerCert,
    /// The request's content cipher once known (the reply's is derived from it).
    pub request_cipher: Option<ContentCipher>,
}

/// Where a FAILURE goes: the transactionID and senderNonce of a message that could
/// not be read further (RFC 8894 section 3.3.2 needs nothing else for a FAILURE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureAddress {
    /// transactionID, echoed byte for byte.
    pub transaction_id: TransactionId,
    /// The request's senderNonce, returned as recipientNonce.
    pub sender_nonce: Nonce,
}

/// Why [`PkiMessage::parse`] failed, and whom to tell.
#[derive(Debug)]
pub struct Unreadable {
    /// What is wrong with the message (for logs).
    pub error: Error,
    /// The message's transactionID and senderNonce when its signed attributes could be
    /// read: the answer is then a CertRep FAILURE (badMessageCheck), otherwise an HTTP
    /// error.
    pub address: Option<FailureAddress>,
}

impl From<Unreadable> for Error {
    fn from(u: Unreadable) -> Self {
        u.error
    }
}

impl From<Error> for Unreadable {
    fn from(error: Error) -> Self {
        Unreadable { error, address: None }
    }
}

/// IssuerAndSubject of CertPoll (RFC 8894 section 3.3.3).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct IssuerAndSubject {
    /// The CA's name.
    pub issuer: Name,
    /// The requested subject.
    pub subject: Name,
}

/// A pkiMessage whose structure has been read but nothing checked.
#[derive(Debug)]
pub struct PkiMessage {
    signer_info: SignerInfoView,
    content: Vec<u8>,
    message_type: MessageType,
    reply: ReplyTo,
}

impl PkiMessage {
    /// Read the outer SignedData (BER accepted), the SCEP signed attributes and the
    /// signer certificate, which is read leniently ([`SignerCert`]).
    pub fn parse(bytes: &[u8]) -> core::result::Result<Self, Unreadable> {
        let msg = c::SignedMessage::parse(bytes)?;
        let si = msg.signer_info.clone();
        let attrs = si.signed_attrs.as_slice();
        let string = |o| c::attribute(attrs, &o).and_then(decode_string);
        let transaction_id = string(oid::TRANSACTION_ID).ok_or(Error::Malformed("missing transactionID"))?;
        let sender_nonce = c::attribute(attrs, &oid::SENDER_NONCE)
            .and_then(|a| a.decode_as::<OctetString>().ok())
            .ok_or(Error::Malformed("missing senderNonce"))?;
        let address = FailureAddress {
            transaction_id: TransactionId::new(transaction_id),
            sender_nonce: Nonce(sender_nonce.into_bytes().into_vec()),
        };
        // From here on a failure can be answered with a CertRep FAILURE.
        let rest = || -> Result<(MessageType, Vec<u8>, SignerCert)> {
            if msg.more_signers {
                return Err(Error::Malformed("more than one SignerInfo"));
            }
            let message_type = string(oid::MESSAGE_TYPE)
                .and_then(|s| MessageType::from_wire(&s))
                .ok_or(Error::Malformed("missing or unknown messageType"))?;
            let signer = c::signer_certificate(&msg)?;
            let content = msg.content.clone().ok_or(Error::Malformed("no encapsulated content"))?;
            Ok((message_type, content, signer))
        };
        match rest() {
            Ok((message_type, content, recipient)) => Ok(PkiMessage {
                signer_info: si,
                content,
                message_type,
                reply: ReplyTo {
                    transaction_id: address.transaction_id,
                    sender_nonce: address.sender_nonce,
                    recipient,
                    request_cipher: None,
                },
            }),
            Err(error) => Err(Unreadable { error, address: Some(address) }),
        }
    }

    /// How to answer this message, whatever happens next.
    pub fn reply_to(&self) -> &ReplyTo {
        &self.reply
    }

    /// The messageType attribute.
    pub fn message_type(&self) -> MessageType {
        self.message_type
    }

    /// Check the signature by the included signer certificate and the messageDigest.
    /// Says nothing about whether that certificate is trusted: that is policy.
    pub fn verify(self) -> Result<SignedRequest> {
        let digest = c::verify_signer_info(&self.signer_info, self.reply.recipient.public_key(), &self.content)?;
        Ok(SignedRequest { msg: self, digest })
    }
}

/// A pkiMessage whose signature checked out.
#[derive(Debug)]
pub struct SignedRequest {
    msg: PkiMessage,
    digest: DigestAlg,
}

impl SignedRequest {
    /// How to answer this message.
    pub fn reply_to(&self) -> &ReplyTo {
        &self.msg.reply
    }

    /// The digest algorithm the signer used.
    pub fn digest(&self) -> DigestAlg {
        self.digest
    }

    /// Open the envelope with the RA key and read the body: [`SignedRequest::envelope`]
    /// then [`SealedRequest::open`].
    pub fn open(self, recipients: &[(&Certificate, &dyn Decrypter)], rejection_secret: &[u8]) -> Result<Request> {
        self.envelope()?.open(recipients, rejection_secret)
    }

    /// Read the envelope's structure, without decrypting it: a server can then refuse an
    /// envelope whose content key it has seen with other content ([`SealedRequest::id`]).
    pub fn envelope(self) -> Result<SealedRequest> {
        if self.msg.message_type == MessageType::CertRep {
            return Err(Error::BadRequest("a CertRep is not a request".into()));
        }
        let envelope = c::Envelope::parse(&self.msg.content)?;
        Ok(SealedRequest { msg: self.msg, digest: self.digest, envelope })
    }
}

/// A signed pkiMessage whose envelope has been read but not opened.
#[derive(Debug)]
pub struct SealedRequest {
    msg: PkiMessage,
    digest: DigestAlg,
    envelope: c::Envelope,
}

impl SealedRequest {
    /// How to answer this message.
    pub fn reply_to(&self) -> &ReplyTo {
        &self.msg.reply
    }

    /// What identifies the envelope: its encrypted keys, and what they protect here (the
    /// ciphertext and the signer). A legitimate resend has the same identity; an
    /// encrypted key that comes back with another ciphertext or signer is someone
    /// probing for a padding oracle with a captured key.
    pub fn id(&self) -> Result<EnvelopeId> {
        self.envelope.id(self.msg.reply.recipient.der())
    }

    /// Open the envelope with the RA key and read the body for the message type.
    /// Every failure from here until the content is authenticated, to decrypt or to
    /// read or check the body (a CSR that does not decode, does not verify or uses an
    /// algorithm scepd does not know), is the same [`Error::Decrypt`] (badMessageCheck):
    /// a difference would be an oracle. A CSR whose signature verified and that breaks
    /// a rule is [`Error::BadRequest`].
    ///
    /// `recipients` are our certificates with their keys, the preferred (RA
    /// encryption) first.
    pub fn open(self, recipients: &[(&Certificate, &dyn Decrypter)], rejection_secret: &[u8]) -> Result<Request> {
        let recipients = recipients
            .iter()
            .map(|(cert, dec)| SignerCert::from_certificate(cert).map(|c| (c, *dec)))
            .collect::<Result<_>>()?;
        let keys = EnvelopeKeys { recipients, rejection_secret };
        let (plain, cipher) = self.envelope.open(&keys)?;
        let body = match self.msg.message_type {
            MessageType::PkcsReq | MessageType::RenewalReq => {
                // Until the CSR's signature verifies, its failures are a decryption's.
                let csr = Csr::from_der(&plain).map_err(|e| match e {
                    Error::BadRequest(why) => Error::BadRequest(why),
                    _ => Error::Decrypt,
                })?;
                if self.msg.message_type == MessageType::PkcsReq { Body::PkcsReq(csr) } else { Body::RenewalReq(csr) }
            }
            MessageType::CertPoll => Body::CertPoll(IssuerAndSubject::from_der(&plain).map_err(|_| Error::Decrypt)?),
            MessageType::GetCert => Body::GetCert(IssuerAndSerialNumber::from_der(&plain).map_err(|_| Error::Decrypt)?),
            MessageType::GetCrl => Body::GetCrl(IssuerAndSerialNumber::from_der(&plain).map_err(|_| Error::Decrypt)?),
            MessageType::CertRep => return Err(Error::BadRequest("a CertRep is not a request".into())),
        };
        let mut reply = self.msg.reply;
        reply.request_cipher = Some(cipher);
        Ok(Request { reply, digest: self.digest, body })
    }
}

/// The typed body of a request.
#[derive(Debug)]
pub enum Body {
    /// PKCSReq (19): enrollment.
    PkcsReq(Csr),
    /// RenewalReq (17): renewal signed by the current certificate.
    RenewalReq(Csr),
    /// CertPoll (20): asks about a pending request.
    CertPoll(IssuerAndSubject),
    /// GetCert (21).
    GetCert(IssuerAndSerialNumber),
    /// GetCRL (22).
    GetCrl(IssuerAndSerialNumber),
}

/// A verified, decrypted request.
#[derive(Debug)]
pub struct Request {
    /// How to answer it (the reply cipher is now known).
    pub reply: ReplyTo,
    /// The digest algorithm the client used.
    pub digest: DigestAlg,
    /// The typed body.
    pub body: Body,
}

impl Request {
    /// The message type.
    pub fn message_type(&self) -> MessageType {
        match self.body {
            Body::PkcsReq(_) => MessageType::PkcsReq,
            Body::RenewalReq(_) => MessageType::RenewalReq,
            Body::CertPoll(_) => MessageType::CertPoll,
            Body::GetCert(_) => MessageType::GetCert,
            Body::GetCrl(_) => MessageType::GetCrl,
        }
    }
}

/// Builds a pkiMessage on the client side.
pub struct RequestBuilder<'a> {
    /// The message type.
    pub message_type: MessageType,
    /// transactionID to send.
    pub transaction_id: TransactionId,
    /// senderNonce to send.
    pub sender_nonce: Nonce,
    /// The DER body (CSR, IssuerAndSubject or IssuerAndSerialNumber).
    pub body: &'a [u8],
    /// The RA certificate to encrypt to (the keyEncipherment one).
    pub recipient: &'a Certificate,
    /// Content cipher for the envelope.
    pub cipher: ContentCipher,
    /// The key signing the message, and its certificate (self-signed or the current one).
    pub signer: &'a dyn Signer,
    /// Certificate of `signer`, as it goes into the message.
    pub signer_cert: &'a SignerCert,
}

impl RequestBuilder<'_> {
    /// Encode, encrypt and sign.
    pub fn build(&self) -> Result<Vec<u8>> {
        let recipient = SignerCert::from_certificate(self.recipient)?;
        self.sign(c::envelope(self.body, &recipient, self.cipher, &crate::crypto::SystemRandom)?)
    }

    /// Sign a ready-made envelope (see `cms::envelope_with`) instead of encrypting
    /// `body`: for tests of what a server does with envelopes a client never makes.
    #[cfg(feature = "testing")]
    pub fn build_with_envelope(&self, envelope: Vec<u8>) -> Result<Vec<u8>> {
        self.sign(envelope)
    }

    fn sign(&self, envelope: Vec<u8>) -> Result<Vec<u8>> {
        let attrs: Vec<Attribute> = vec![
            c::attr_value(oid::MESSAGE_TYPE, &PrintableString::new(&self.message_type.code().to_string())?)?,
            c::attr_value(oid::TRANSACTION_ID, &PrintableString::new(self.transaction_id.as_str())?)?,
            c::attr_value(oid::SENDER_NONCE, &OctetString::new(self.sender_nonce.0.clone())?)?,
        ];
        c::sign(Some(&envelope), attrs, self.signer, self.signer_cert)
    }
}

/// The DER of an IssuerAndSubject for CertPoll.
pub fn issuer_and_subject(issuer: &Name, subject: &Name) -> Result<Vec<u8>> {
    Ok(IssuerAndSubject { issuer: issuer.clone(), subject: subject.clone() }.to_der()?)
}
