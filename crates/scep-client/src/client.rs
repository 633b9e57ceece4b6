//! The SCEP client: capabilities, CA certificates, enrollment with polling.

use std::str::FromStr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use der::{Decode, Encode};
use scep::attr::{ContentCipher, FailInfo, MessageType, Nonce, TransactionId};
use scep::caps::{Capabilities, Capability};
use scep::crypto::{PrivateKey, Signer};
use scep::request::RequestBuilder;
use scep::response::{Outcome, ParsedCertRep};
use scep::signer::SignerCert;
use scep::x509;
use x509_cert::{
    Certificate,
    ext::{
        Extension,
        pkix::{KeyUsages, SubjectAltName, name::GeneralName},
    },
    name::Name,
};

use crate::http::{HttpClient, HttpError};
use crate::pin::{Fingerprint, chains_to, crl_signed_by, describe, is_ca, issued_by};

/// Client errors.
#[derive(Debug, thiserror::Error)]
pub enum ScepError {
    /// HTTP failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The server answered with an HTTP error.
    #[error("{operation}: HTTP {status}: {body}")]
    Status {
        /// Operation.
        operation: &'static str,
        /// Status code.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// The server's answer is not what SCEP says.
    #[error("{0}")]
    Protocol(String),
    /// The server refused the request.
    #[error("the server refused the request: failInfo {info}{}", failure_text(.text))]
    Failure {
        /// failInfo.
        info: FailInfo,
        /// failInfoText.
        text: String,
    },
    /// Still pending after the wait allowed.
    #[error("the request {transaction_id} is still pending after {waited:?}")]
    StillPending {
        /// How long we polled.
        waited: Duration,
        /// Its transactionID, to poll for it later.
        transaction_id: String,
    },
    /// A certificate, CertRep or CRL does not chain to the CA it must come from: the
    /// pinned CA, or (without a pin) the CA certificates of the GetCACert answer.
    #[error("{0}")]
    Untrusted(String),
    /// Protocol crate error.
    #[error(transparent)]
    Scep(#[from] scep::Error),
}

/// ` (text)` for a non-empty failInfoText, nothing for an empty one.
fn failure_text(text: &str) -> String {
    if text.is_empty() { String::new() } else { format!(" ({text})") }
}

/// How PKIOperation travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// POST when the server advertises POSTPKIOperation, GET otherwise.
    Auto,
    /// Always POST.
    Post,
    /// Always GET.
    Get,
}

/// The certificates GetCACert returned, sorted into roles by their extensions.
#[derive(Clone, Debug)]
pub struct CaCerts {
    /// Every certificate, in the order received.
    pub all: Vec<Certificate>,
    /// The CA: the CA certificate that issued the RA certificates, else the first
    /// with basicConstraints CA (the pinned one, with a pin), else the only certificate.
    pub ca: Certificate,
    /// The certificate to encrypt to (keyEncipherment), RA or CA.
    pub encryption: Certificate,
    /// The certificate expected to sign replies (digitalSignature), RA or CA.
    pub signing: Certificate,
    /// The Content-Type the server used.
    pub content_type: String,
    /// The certificate `--ca-fingerprint` named, when one was given.
    pub pinned: Option<Certificate>,
    /// The certificates a CertRep may be signed by: with a pin, the pinned CA and the
    /// certificates that chain to it; without, every certificate of the answer.
    pub trusted: Vec<Certificate>,
}

impl CaCerts {
    /// Sort a GetCACert answer into roles.
    fn from_certs(all: Vec<Certificate>, content_type: String) -> Result<Self, ScepError> {
        let has = |c: &Certificate, ku: KeyUsages| x509::cert_key_usage(c).is_some_and(|k| k.0.contains(ku));
        let cas: Vec<&Certificate> = all.iter().filter(|c| is_ca(c)).collect();
        let ras: Vec<&Certificate> = all.iter().filter(|c| !is_ca(c)).collect();
        let encryption = ras.iter().find(|c| has(c, KeyUsages::KeyEncipherment)).or_else(|| ras.first()).copied();
        let signing = ras.iter().find(|c| has(c, KeyUsages::DigitalSignature)).or_else(|| ras.first()).copied();
        // The issuing CA: the one that signed the RA certificates (an answer may carry
        // the root and intermediates too, in any order).
        let ca = signing
            .and_then(|ra| cas.iter().find(|ca| issued_by(ra, ca)))
            .or_else(|| cas.first())
            .copied()
            .or_else(|| all.first())
            .cloned()
            .ok_or_else(|| ScepError::Protocol("GetCACert returned no certificate".into()))?;
        let encryption = encryption.cloned().unwrap_or_else(|| ca.clone());
        let signing = signing.cloned().unwrap_or_else(|| ca.clone());
        let trusted = all.clone();
        Ok(CaCerts { all, ca, encryption, signing, content_type, pinned: None, trusted })
    }

    /// Without a pin: when the answer holds a CA certificate, every RA certificate must
    /// be issued by one of its CA certificates (see [`crate::pin`]).
    fn consistent(self) -> Result<Self, ScepError> {
        let cas: Vec<&Certificate> = self.all.iter().filter(|c| is_ca(c)).collect();
        if cas.is_empty() {
            return Ok(self);
        }
        for ra in self.all.iter().filter(|c| !is_ca(c)) {
            if !cas.iter().any(|ca| issued_by(ra, ca)) {
                return Err(ScepError::Untrusted(format!(
                    "the RA certificate {} is not issued by the CA certificate of the GetCACert answer ({})",
                    describe(ra),
                    cas.iter().map(|c| describe(c)).collect::<Vec<_>>().join(", ")
                )));
            }
        }
        Ok(self)
    }

    /// Hold the answer to `pin`: the certificate it names must be in the answer, and
    /// every RA certificate must chain to it. CA certificates that do not (a root above
    /// a pinned intermediate) stay in `all` but are not trusted.
    fn pinned_to(mut self, pin: &Fingerprint) -> Result<Self, ScepError> {
        let Some(pinned) = self.all.iter().find(|c| pin.matches(c)).cloned() else {
            return Err(ScepError::Untrusted(format!(
                "the CA fingerprint is {}, not the expected {}",
                pin.of(&self.ca),
                pin.hex()
            )));
        };
        for ra in self.all.iter().filter(|c| !is_ca(c)) {
            if !chains_to(ra, &pinned, &self.all) {
                return Err(ScepError::Untrusted(format!(
                    "the RA certificate {} is not issued by the pinned CA {}",
                    describe(ra),
                    describe(&pinned)
                )));
            }
        }
        self.trusted = self.all.iter().filter(|c| chains_to(c, &pinned, &self.all)).cloned().collect();
        if !self.trusted.contains(&self.ca) {
            self.ca = pinned.clone();
        }
        for role in [&mut self.encryption, &mut self.signing] {
            if !self.trusted.contains(role) {
                *role = self.ca.clone();
            }
        }
        self.pinned = Some(pinned);
        Ok(self)
    }

    /// With a pin, refuse a certificate a reply carries that does not chain to it.
    fn check_issued(&self, cert: &Certificate, what: &str) -> Result<(), ScepError> {
        match &self.pinned {
            Some(p) if !chains_to(cert, p, &self.all) => Err(ScepError::Untrusted(format!(
                "the {what} {} (issuer {}) is not issued by the pinned CA {}",
                describe(cert),
                cert.tbs_certificate().issuer(),
                describe(p)
            ))),
            _ => Ok(()),
        }
    }

    /// With a pin, refuse a CRL not signed by the pinned CA or a CA chaining to it.
    fn check_crl(&self, crl: &x509_cert::crl::CertificateList) -> Result<(), ScepError> {
        match &self.pinned {
            Some(p) if !self.trusted.iter().filter(|c| is_ca(c)).any(|ca| crl_signed_by(crl, ca)) => {
                Err(ScepError::Untrusted(format!(
                    "the CRL of {} is not signed by the pinned CA {}",
                    crl.tbs_cert_list.issuer,
                    describe(p)
                )))
            }
            _ => Ok(()),
        }
    }
}

/// What to enroll for.
#[derive(Clone, Debug)]
pub struct EnrollOptions {
    /// Subject, RFC 4514 (`CN=...,O=...`).
    pub subject: String,
    /// The subject as an encoded name, kept byte for byte (a certificate being
    /// renewed); when set it is sent instead of `subject`.
    pub subject_name: Option<Name>,
    /// Challenge password.
    pub challenge: Option<String>,
    /// DNS names.
    pub dns: Vec<String>,
    /// IP addresses.
    pub ips: Vec<std::net::IpAddr>,
    /// Email addresses.
    pub emails: Vec<String>,
    /// User principal names (otherName 1.3.6.1.4.1.311.20.2.3, UTF8String).
    pub upns: Vec<String>,
    /// Further subject alternative names as they are (those of a certificate being renewed).
    pub other_names: Vec<GeneralName>,
    /// Expected CA fingerprint (hex SHA-256, SHA-1 or MD5); it takes the place of the
    /// client's own ([`ScepClient::with_ca_fingerprint`]) for this request.
    pub ca_fingerprint: Option<String>,
    /// POST or GET.
    pub transport: Transport,
    /// How long to keep polling a PENDING request.
    pub max_wait: Duration,
    /// Delay between polls.
    pub poll_interval: Duration,
    /// transactionID to use (default: hex SHA-256 of the public key).
    pub transaction_id: Option<String>,
}

impl EnrollOptions {
    /// Options for `subject` with defaults.
    pub fn new(subject: &str) -> Self {
        EnrollOptions {
            subject: subject.to_owned(),
            subject_name: None,
            challenge: None,
            dns: vec![],
            ips: vec![],
            emails: vec![],
            upns: vec![],
            other_names: vec![],
            ca_fingerprint: None,
            transport: Transport::Auto,
            max_wait: Duration::from_secs(300),
            poll_interval: Duration::from_secs(5),
            transaction_id: None,
        }
    }

    /// With a challenge password.
    pub fn challenge(mut self, pw: &str) -> Self {
        self.challenge = Some(pw.to_owned());
        self
    }

    /// The subject to request: `subject_name`, else `subject` parsed.
    fn name(&self) -> Result<Name, ScepError> {
        match &self.subject_name {
            Some(n) => Ok(n.clone()),
            None => parse_subject(&self.subject),
        }
    }

    /// Options to renew `cert`: its subject and subject alternative names, and a
    /// fresh random transactionID (the default one, derived from the key, would
    /// repeat the enrollment's).
    pub fn renewing(cert: &Certificate) -> Result<Self, ScepError> {
        let tbs = cert.tbs_certificate();
        let mut opts = EnrollOptions::new(&tbs.subject().to_string());
        // The renewal must name the subject exactly as the certificate does (NDES
        // compares them); text would change string types.
        opts.subject_name = Some(tbs.subject().clone());
        if let Ok(Some((_, san))) = tbs.get_extension::<SubjectAltName>() {
            opts.other_names = san.0;
        }
        opts.transaction_id = Some(random_transaction_id()?);
        Ok(opts)
    }
}

/// A random transactionID: 32 uppercase hex digits.
pub fn random_transaction_id() -> Result<String, ScepError> {
    Ok(hex::encode_upper(scep::crypto::random_bytes(16)?))
}

/// The outcome of one CertPoll.
#[derive(Clone, Debug)]
pub enum Polled {
    /// Issued.
    Issued(Box<Enrolled>),
    /// Still waiting for approval.
    Pending,
}

/// The result of an enrollment.
#[derive(Clone, Debug)]
pub struct Enrolled {
    /// The issued certificate.
    pub certificate: Certificate,
    /// Other certificates the reply held, then the CA certificates from GetCACert.
    pub chain: Vec<Certificate>,
    /// The transactionID used.
    pub transaction_id: String,
    /// Whether PKIOperation went by POST.
    pub used_post: bool,
    /// The cipher the request was encrypted with.
    pub cipher: ContentCipher,
    /// Number of CertPoll rounds.
    pub polls: u32,
}

/// A SCEP client for one server URL.
#[derive(Clone)]
pub struct ScepClient {
    url: String,
    http: HttpClient,
    pin: Option<Fingerprint>,
}

impl ScepClient {
    /// A client for the SCEP URL (e.g. `http://host/certsrv/mscep/mscep.dll`).
    pub fn new(url: &str) -> Self {
        ScepClient { url: url.trim_end_matches('?').to_owned(), http: HttpClient::default(), pin: None }
    }

    /// Pin the CA: every operation then checks what it relies on against the CA
    /// certificate with this fingerprint (see [`crate::pin`]).
    pub fn with_ca_fingerprint(mut self, pin: Fingerprint) -> Self {
        self.pin = Some(pin);
        self
    }

    /// With another HTTP client (time-outs).
    pub fn with_http(mut self, http: HttpClient) -> Self {
        self.http = http;
        self
    }

    fn op_url(&self, op: &str, message: Option<&str>) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        match message {
            Some(m) => format!("{}{sep}operation={op}&message={m}", self.url),
            None => format!("{}{sep}operation={op}", self.url),
        }
    }

    /// GetCACaps.
    pub async fn caps(&self) -> Result<Capabilities, ScepError> {
        let r = self.http.get(&self.op_url("GetCACaps", None), &[]).await?;
        if r.status != 200 {
            return Err(status_error("GetCACaps", &r));
        }
        Ok(Capabilities::parse(&String::from_utf8_lossy(&r.body)))
    }

    /// GetCACert, sorted into roles, and held to the pin if there is one.
    pub async fn ca_certs(&self) -> Result<CaCerts, ScepError> {
        self.ca_certs_pinned(self.pin.as_ref()).await
    }

    async fn ca_certs_pinned(&self, pin: Option<&Fingerprint>) -> Result<CaCerts, ScepError> {
        let cas = self.unpinned_ca_certs().await?;
        match pin {
            Some(p) => cas.pinned_to(p),
            None => cas.consistent(),
        }
    }

    async fn unpinned_ca_certs(&self) -> Result<CaCerts, ScepError> {
        let r = self.http.get(&self.op_url("GetCACert", None), &[]).await?;
        if r.status != 200 {
            return Err(status_error("GetCACert", &r));
        }
        let ct = r.content_type.clone().unwrap_or_default();
        let certs = if ct.eq_ignore_ascii_case(scep::operation::CONTENT_TYPE_CA_CERT) {
            vec![
                Certificate::from_der(&r.body)
                    .map_err(|_| ScepError::Protocol("GetCACert: the body is not a DER certificate".into()))?,
            ]
        } else {
            scep::cms::parse_certs_only(&r.body)
                .map_err(|_| {
                    ScepError::Protocol(format!(
                        "GetCACert: Content-Type {ct:?} but the body is not a certs-only PKCS#7"
                    ))
                })?
                .0
        };
        CaCerts::from_certs(certs, ct)
    }

    /// Send one pkiMessage and return the raw CertRep.
    pub async fn pki_operation(&self, msg: Vec<u8>, post: bool) -> Result<Vec<u8>, ScepError> {
        let r = if post {
            self.http.post(&self.op_url("PKIOperation", None), scep::operation::CONTENT_TYPE_PKI_MESSAGE, msg).await?
        } else {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&msg);
            let enc = b64.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
            self.http.get(&self.op_url("PKIOperation", Some(&enc)), &[]).await?
        };
        if r.status != 200 {
            return Err(status_error("PKIOperation", &r));
        }
        Ok(r.body)
    }

    /// Enroll `key` with `opts`: GetCACaps, GetCACert, PKCSReq signed by a self-signed
    /// certificate, CertPoll while PENDING.
    pub async fn enroll(&self, key: &PrivateKey, opts: &EnrollOptions) -> Result<Enrolled, ScepError> {
        let subject = opts.name()?;
        let throwaway = throwaway_signer(key)?;
        let signer: &PrivateKey = throwaway.as_ref().unwrap_or(key);
        let signer_cert = x509::scep_signer_certificate(&subject, signer)?;
        self.request_certificate(key, opts, signer, &signer_cert, MessageType::PkcsReq).await
    }

    /// Renew: a request for `key` (the current key, or a new one) signed by the current
    /// certificate and its key, as RenewalReq or (as some clients do) PKCSReq.
    pub async fn renew(
        &self,
        key: &PrivateKey,
        current: &Certificate,
        current_key: &PrivateKey,
        opts: &EnrollOptions,
        message_type: MessageType,
    ) -> Result<Enrolled, ScepError> {
        self.request_certificate(key, opts, current_key, current, message_type).await
    }

    /// One CertPoll (RFC 8894 section 3.3.3) for a pending request of `key` with
    /// `subject` and `transaction_id`, signed by a self-signed certificate of `key`.
    pub async fn poll(&self, key: &PrivateKey, subject: &str, transaction_id: &str) -> Result<Polled, ScepError> {
        let caps = self.caps().await?;
        let cas = self.ca_certs().await?;
        let subject = parse_subject(subject)?;
        let throwaway = throwaway_signer(key)?;
        let signer: &PrivateKey = throwaway.as_ref().unwrap_or(key);
        let signer_cert = SignerCert::from_certificate(&x509::scep_signer_certificate(&subject, signer)?)?;
        let t = Transaction {
            cas: &cas,
            caps: &caps,
            tid: transaction_id,
            signer,
            signer_cert: &signer_cert,
            transport: Transport::Auto,
        };
        let body = scep::request::issuer_and_subject(cas.ca.tbs_certificate().subject(), &subject)?;
        let rep = self.transact(&t, MessageType::CertPoll, &body).await?;
        match rep.outcome {
            Outcome::Success { certificates, .. } => {
                Ok(Polled::Issued(Box::new(issued(key, certificates, &cas, &t, transaction_id, 0)?)))
            }
            Outcome::Pending => Ok(Polled::Pending),
            Outcome::Failure(info, text) => Err(ScepError::Failure { info, text }),
        }
    }

    /// GetCert: a certificate by issuer and serial number.
    pub async fn get_cert(&self, serial: &[u8]) -> Result<Certificate, ScepError> {
        let (certs, _, cas) = self.get_by_serial(MessageType::GetCert, serial).await?;
        let cert = certs
            .into_iter()
            .next()
            .ok_or_else(|| ScepError::Protocol("GetCert SUCCESS without a certificate".into()))?;
        cas.check_issued(&cert, "certificate from GetCert")?;
        Ok(cert)
    }

    /// GetCRL: the CRL of the CA that issued `serial`.
    pub async fn get_crl(&self, serial: &[u8]) -> Result<x509_cert::crl::CertificateList, ScepError> {
        let (_, crls, cas) = self.get_by_serial(MessageType::GetCrl, serial).await?;
        let crl = crls.into_iter().next().ok_or_else(|| ScepError::Protocol("GetCRL SUCCESS without a CRL".into()))?;
        cas.check_crl(&crl)?;
        Ok(crl)
    }

    async fn get_by_serial(
        &self,
        mtype: MessageType,
        serial: &[u8],
    ) -> Result<(Vec<Certificate>, Vec<x509_cert::crl::CertificateList>, CaCerts), ScepError> {
        let caps = self.caps().await?;
        let cas = self.ca_certs().await?;
        let key = PrivateKey::generate(scep::crypto::KeyType::Rsa2048)?;
        let signer_cert =
            SignerCert::from_certificate(&x509::scep_signer_certificate(&parse_subject("CN=scep client")?, &key)?)?;
        let isn = cms::cert::IssuerAndSerialNumber {
            issuer: cas.ca.tbs_certificate().subject().clone(),
            serial_number: x509_cert::serial_number::SerialNumber::new(serial).map_err(scep::Error::from)?,
        };
        let body = isn.to_der().map_err(scep::Error::from)?;
        let tid = random_transaction_id()?;
        let t = Transaction {
            cas: &cas,
            caps: &caps,
            tid: &tid,
            signer: &key,
            signer_cert: &signer_cert,
            transport: Transport::Auto,
        };
        match self.transact(&t, mtype, &body).await?.outcome {
            Outcome::Success { certificates, crls } => Ok((certificates, crls, cas)),
            Outcome::Failure(info, text) => Err(ScepError::Failure { info, text }),
            Outcome::Pending => Err(ScepError::Protocol(format!("{} answered PENDING", mtype.name()))),
        }
    }

    async fn request_certificate(
        &self,
        key: &PrivateKey,
        opts: &EnrollOptions,
        signer: &PrivateKey,
        signer_cert: &Certificate,
        message_type: MessageType,
    ) -> Result<Enrolled, ScepError> {
        let caps = self.caps().await?;
        let pin = opts.ca_fingerprint.as_deref().map(str::parse::<Fingerprint>).transpose()?;
        let cas = self.ca_certs_pinned(pin.as_ref().or(self.pin.as_ref())).await?;
        let subject = opts.name()?;
        let mut names: Vec<GeneralName> = Vec::new();
        for d in &opts.dns {
            names.push(GeneralName::DnsName(
                der::asn1::Ia5String::new(d).map_err(|_| ScepError::Protocol(format!("bad DNS name {d:?}")))?,
            ));
        }
        for e in &opts.emails {
            names.push(GeneralName::Rfc822Name(
                der::asn1::Ia5String::new(e).map_err(|_| ScepError::Protocol(format!("bad email {e:?}")))?,
            ));
        }
        for ip in &opts.ips {
            let bytes = match ip {
                std::net::IpAddr::V4(a) => a.octets().to_vec(),
                std::net::IpAddr::V6(a) => a.octets().to_vec(),
            };
            names.push(GeneralName::IpAddress(der::asn1::OctetString::new(bytes).map_err(scep::Error::from)?));
        }
        for upn in &opts.upns {
            names.push(upn_name(upn)?);
        }
        for n in &opts.other_names {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        let mut extensions: Vec<Extension> = Vec::new();
        if !names.is_empty() {
            extensions.push(x509::subject_alt_name(SubjectAltName(names))?);
        }
        let csr = x509::csr(&subject, key, opts.challenge.as_deref(), &extensions)?;
        let tid = opts.transaction_id.clone().unwrap_or_else(|| {
            hex::encode_upper(scep::attr::DigestAlg::Sha256.digest(&key.public_key().to_der().unwrap_or_default()))
        });
        let signer_cert = SignerCert::from_certificate(signer_cert)?;
        let t = Transaction {
            cas: &cas,
            caps: &caps,
            tid: &tid,
            signer,
            signer_cert: &signer_cert,
            transport: opts.transport,
        };
        let started = Instant::now();
        let mut polls = 0u32;
        let mut rep = self.transact(&t, message_type, &csr).await?;
        loop {
            match rep.outcome {
                Outcome::Success { certificates, .. } => {
                    return issued(key, certificates, &cas, &t, &tid, polls);
                }
                Outcome::Failure(info, text) => return Err(ScepError::Failure { info, text }),
                Outcome::Pending => {
                    if started.elapsed() >= opts.max_wait {
                        return Err(ScepError::StillPending { waited: opts.max_wait, transaction_id: tid.clone() });
                    }
                    tokio::time::sleep(opts.poll_interval).await;
                    polls += 1;
                    let body = scep::request::issuer_and_subject(cas.ca.tbs_certificate().subject(), &subject)?;
                    rep = self.transact(&t, MessageType::CertPoll, &body).await?;
                }
            }
        }
    }

    /// One request and its checked reply.
    async fn transact(
        &self,
        t: &Transaction<'_>,
        message_type: MessageType,
        body: &[u8],
    ) -> Result<ParsedCertRep, ScepError> {
        let nonce = Nonce::random()?;
        let msg = RequestBuilder {
            message_type,
            transaction_id: TransactionId::new(t.tid),
            sender_nonce: nonce.clone(),
            body,
            recipient: &t.cas.encryption,
            cipher: t.cipher(),
            signer: t.signer,
            signer_cert: t.signer_cert,
        }
        .build()?;
        let raw = self.pki_operation(msg, t.post()).await?;
        let rep = match ParsedCertRep::parse(&raw, &t.cas.trusted, t.signer_cert, t.signer) {
            Ok(rep) => rep,
            Err(e) => return Err(untrusted_signer(&raw, t, e)),
        };
        if rep.transaction_id.as_ref().map(TransactionId::as_str) != Some(t.tid) {
            return Err(ScepError::Protocol("the CertRep does not echo our transactionID".into()));
        }
        if rep.recipient_nonce.as_ref() != Some(&nonce) {
            return Err(ScepError::Protocol("the CertRep's recipientNonce is not our senderNonce".into()));
        }
        Ok(rep)
    }
}

/// Why a CertRep did not verify: with a pin, name the certificate that signed it when
/// it is one of the GetCACert answer's that the pin does not vouch for.
fn untrusted_signer(raw: &[u8], t: &Transaction<'_>, e: scep::Error) -> ScepError {
    let Some(pinned) = &t.cas.pinned else { return e.into() };
    if !matches!(e, scep::Error::BadMessageCheck(_)) {
        return e.into();
    }
    let signer = t
        .cas
        .all
        .iter()
        .filter(|c| !t.cas.trusted.contains(c))
        .find(|c| ParsedCertRep::parse(raw, std::slice::from_ref(*c), t.signer_cert, t.signer).is_ok());
    ScepError::Untrusted(match signer {
        Some(c) => format!(
            "the CertRep is signed by {}, which is not issued by the pinned CA {}",
            describe(c),
            describe(pinned)
        ),
        None => format!("the CertRep is not signed by a certificate of the pinned CA {} ({e})", describe(pinned)),
    })
}

/// The reply is encrypted to the signer certificate, which needs an RSA key: an EC
/// key is enrolled with a throw-away RSA signer.
fn throwaway_signer(key: &PrivateKey) -> Result<Option<PrivateKey>, ScepError> {
    Ok(if key.can_decrypt() { None } else { Some(PrivateKey::generate(scep::crypto::KeyType::Rsa2048)?) })
}

/// The certificate for `key` among a SUCCESS reply's, and the rest as its chain.
fn issued(
    key: &PrivateKey,
    certificates: Vec<Certificate>,
    cas: &CaCerts,
    t: &Transaction<'_>,
    tid: &str,
    polls: u32,
) -> Result<Enrolled, ScepError> {
    let ours = key.public_key();
    let certificate = certificates
        .iter()
        .find(|c| *c.tbs_certificate().subject_public_key_info() == ours)
        .cloned()
        .ok_or_else(|| ScepError::Protocol("SUCCESS without a certificate for our key".into()))?;
    cas.check_issued(&certificate, "issued certificate")?;
    let mut chain: Vec<Certificate> = certificates.into_iter().filter(|c| *c != certificate).collect();
    if !chain.contains(&cas.ca) {
        chain.push(cas.ca.clone());
    }
    Ok(Enrolled { certificate, chain, transaction_id: tid.to_owned(), used_post: t.post(), cipher: t.cipher(), polls })
}

/// A UPN subject alternative name: otherName 1.3.6.1.4.1.311.20.2.3 holding a UTF8String.
pub fn upn_name(upn: &str) -> Result<GeneralName, ScepError> {
    const UPN: const_oid::ObjectIdentifier = const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.20.2.3");
    let value = der::asn1::Utf8StringRef::new(upn)
        .and_then(|s| der::Any::encode_from(&s))
        .map_err(|_| ScepError::Protocol(format!("bad UPN {upn:?}")))?;
    Ok(GeneralName::OtherName(x509_cert::ext::pkix::name::OtherName { type_id: UPN, value }))
}

/// What stays the same across the messages of one transaction.
struct Transaction<'a> {
    cas: &'a CaCerts,
    caps: &'a Capabilities,
    tid: &'a str,
    signer: &'a PrivateKey,
    signer_cert: &'a SignerCert,
    transport: Transport,
}

impl Transaction<'_> {
    /// The strongest cipher both sides have.
    fn cipher(&self) -> ContentCipher {
        if self.caps.has(Capability::Aes) { ContentCipher::Aes256 } else { ContentCipher::Des3 }
    }

    fn post(&self) -> bool {
        match self.transport {
            Transport::Auto => self.caps.has(Capability::PostPkiOperation),
            Transport::Post => true,
            Transport::Get => false,
        }
    }
}

fn parse_subject(s: &str) -> Result<Name, ScepError> {
    Name::from_str(s)
        .map_err(|_| ScepError::Protocol(format!("subject {s:?} is not a distinguished name like CN=device,O=Example")))
}

fn status_error(operation: &'static str, r: &crate::http::Response) -> ScepError {
    let body: String = String::from_utf8_lossy(&r.body).chars().take(200).collect();
    ScepError::Status { operation, status: r.status, body: body.trim().to_owned() }
}
