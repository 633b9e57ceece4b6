//! Every enrollment decision, and nowhere else: challenge checks, key and subject
//! rules, idempotent replay by transactionID, issuance and recording.

pub mod challenge;
pub mod throttle;
pub mod webhook;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use der::Encode;
use scep::attr::{DigestAlg, FailInfo, MessageType};
use scep::caps::{Capabilities, Capability};
use scep::crypto::Decrypter;
use scep::csr::Csr;
use scep::request::{Body, PkiMessage, ReplyTo, Request};
use scep::response::{Outcome, cert_rep};
use tracing::{info, warn};
use x509_cert::Certificate;

use crate::ca::{Ca, Profile};
use crate::config::{ChallengeMode, Config};
use crate::store::{Binding, ChallengeState, IssuedRecord, RecordError, Store};

/// The NDES event-log sentence for a bad or used challenge, which admins search for.
pub const BAD_CHALLENGE_TEXT: &str = "The password in the certificate request cannot be verified. It may have been used already. Obtain a new password to submit with this request.";

/// The answer to a PKIOperation.
pub enum PkiReply {
    /// A signed CertRep (SUCCESS, PENDING or FAILURE).
    CertRep(Vec<u8>),
    /// The bytes are not a pkiMessage: there is no transactionID to answer to.
    Unreadable,
}

/// Source of the current time, so tests can move it.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system clock, optionally shifted (`SCEPD_CLOCK_OFFSET_SECS`, for tests of expiry).
pub struct SystemClock {
    offset_secs: i64,
}

impl SystemClock {
    /// A clock shifted by `offset_secs`.
    pub fn with_offset(offset_secs: i64) -> Self {
        SystemClock { offset_secs }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        let now = SystemTime::now();
        let d = std::time::Duration::from_secs(self.offset_secs.unsigned_abs());
        if self.offset_secs >= 0 { now + d } else { now - d }
    }
}

/// Unix seconds.
pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A refusal: what the client is told and what the log says.
struct Rejection {
    info: FailInfo,
    public: String,
    reason: String,
}

/// What a challenge check found good, to act on when the certificate is recorded.
enum Authorised {
    /// A one-time challenge: its hash, consumed with the issuance.
    OneTime(Vec<u8>),
    /// Single password, webhook, or no challenge: nothing to consume.
    Reusable,
}

impl Rejection {
    fn new(info: FailInfo, public: impl Into<String>, reason: impl Into<String>) -> Self {
        Rejection { info, public: public.into(), reason: reason.into() }
    }
}

/// The enrollment authority.
pub struct Authority {
    ca: Arc<Ca>,
    store: Arc<dyn Store>,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    rejection_secret: [u8; 32],
    challenge_secret: [u8; 32],
    caps: String,
    ca_certs: (&'static str, Vec<u8>),
    single_key: [u8; 32],
    challenge_throttle: throttle::Throttle,
    webhook: Option<Arc<dyn webhook::Webhook>>,
}

impl Authority {
    /// Build the authority; GetCACaps and GetCACert bodies are computed once here.
    pub fn new(ca: Arc<Ca>, store: Arc<dyn Store>, config: Arc<Config>, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let mut caps = vec![Capability::Aes, Capability::Des3];
        if config.scep.advertise_post {
            caps.push(Capability::PostPkiOperation);
        }
        caps.extend([Capability::Sha256, Capability::Sha512]);
        if config.scep.advertise_post {
            caps.push(Capability::ScepStandard);
        }
        let ca_certs = if config.scep.ca_only_getcacert {
            // The CA then acts as its own RA: clients encrypt to it and trust only it.
            if !ca.ca.key.can_decrypt() {
                anyhow::bail!("scep.ca_only_getcacert needs an RSA CA key: clients encrypt to the CA certificate");
            }
            (scep::operation::CONTENT_TYPE_CA_CERT, ca.ca.cert.to_der()?)
        } else {
            (
                scep::operation::CONTENT_TYPE_CA_RA_CERT,
                scep::cms::certs_only(&[ca.ra_encrypt.cert.clone(), ca.ra_sign.cert.clone(), ca.ca.cert.clone()], &[])?,
            )
        };
        let window = std::time::Duration::from_secs(config.throttle.window_secs);
        Ok(Authority {
            rejection_secret: ca.secret("implicit rejection"),
            challenge_secret: ca.secret("challenge"),
            single_key: ca.secret("single password"),
            challenge_throttle: throttle::Throttle::new(config.throttle.max_failures, window),
            webhook: None,
            ca,
            store,
            config,
            clock,
            caps: Capabilities(caps).to_body(),
            ca_certs,
        })
    }

    /// With a webhook client for verification and notifications.
    pub fn with_webhook(mut self, webhook: Arc<dyn webhook::Webhook>) -> Self {
        self.webhook = Some(webhook);
        self
    }

    /// Key of the single master password's encryption.
    pub fn single_password_key(&self) -> &[u8; 32] {
        &self.single_key
    }

    /// GetCACaps body.
    pub fn caps(&self) -> &str {
        &self.caps
    }

    /// GetCACert content type and body.
    pub fn ca_certs(&self) -> (&'static str, &[u8]) {
        (self.ca_certs.0, &self.ca_certs.1)
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The CA.
    pub fn ca(&self) -> &Arc<Ca> {
        &self.ca
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current time.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Secret keying the challenge hashes.
    pub fn challenge_secret(&self) -> &[u8; 32] {
        &self.challenge_secret
    }

    /// Handle one PKIOperation from `requester`, received by `via` (GET or POST).
    /// Crypto runs on the blocking pool.
    pub async fn pki_operation(self: &Arc<Self>, bytes: Vec<u8>, requester: String, via: &'static str) -> PkiReply {
        let this = Arc::clone(self);
        let opened = tokio::task::spawn_blocking(move || {
            let msg = match PkiMessage::parse(&bytes) {
                Ok(m) => m,
                Err(e) => return Err(e),
            };
            let reply = msg.reply_to().clone();
            let mtype = msg.message_type();
            let recipients = this.recipients();
            let req = msg.verify().and_then(|m| m.open(&recipients, &this.rejection_secret));
            Ok((reply, mtype, req))
        })
        .await;
        let (reply, mtype, req) = match opened {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                warn!(requester, via, error = %e, "unreadable PKIOperation");
                return PkiReply::Unreadable;
            }
            Err(e) => {
                warn!(requester, error = %e, "PKIOperation task failed");
                return PkiReply::Unreadable;
            }
        };
        let tid = reply.transaction_id.to_string();
        let outcome = match req {
            Err(e) => {
                let r = Rejection::new(e.fail_info(), public_text(&e), e.to_string());
                self.reject(&tid, mtype, &requester, r)
            }
            Ok(req) => match self.decide(req, &requester, via).await {
                Ok(o) => o,
                Err(r) => self.reject(&tid, mtype, &requester, r),
            },
        };
        let this = Arc::clone(self);
        let built = tokio::task::spawn_blocking(move || {
            let signer = this.reply_signer();
            cert_rep(&reply, &outcome, &signer.key, &signer.cert)
        })
        .await;
        match built {
            Ok(Ok(der)) => PkiReply::CertRep(der),
            Ok(Err(e)) => {
                warn!(transaction_id = tid, error = %e, "cannot build the CertRep");
                PkiReply::Unreadable
            }
            Err(e) => {
                warn!(transaction_id = tid, error = %e, "CertRep task failed");
                PkiReply::Unreadable
            }
        }
    }

    /// Our certificates that clients encrypt to, with their keys, preferred first.
    fn recipients(&self) -> Vec<(&Certificate, &dyn Decrypter)> {
        if self.config.scep.ca_only_getcacert {
            vec![(&self.ca.ca.cert, &self.ca.ca.key)]
        } else {
            vec![(&self.ca.ra_encrypt.cert, &self.ca.ra_encrypt.key), (&self.ca.ra_sign.cert, &self.ca.ra_sign.key)]
        }
    }

    /// The certificate and key that sign CertReps: one GetCACert returned.
    fn reply_signer(&self) -> &crate::ca::KeyedCert {
        if self.config.scep.ca_only_getcacert { &self.ca.ca } else { &self.ca.ra_sign }
    }

    fn reject(&self, tid: &str, mtype: MessageType, requester: &str, r: Rejection) -> Outcome {
        if let Some(hook) = self.webhook.clone() {
            let event = webhook::Event::Failed {
                transaction_id: tid.to_owned(),
                fail_info: r.info.name().to_owned(),
                reason: r.reason.clone(),
            };
            tokio::spawn(async move { hook.notify(&event).await });
        }
        warn!(transaction_id = tid, message_type = %mtype, requester, fail_info = %r.info, reason = r.reason, "request refused");
        Outcome::Failure(r.info, r.public)
    }

    async fn decide(self: &Arc<Self>, req: Request, requester: &str, via: &'static str) -> Result<Outcome, Rejection> {
        let Request { reply, body, .. } = req;
        match body {
            Body::PkcsReq(csr) => self.enroll(&reply, csr, requester, via).await,
            Body::RenewalReq(_) => Err(Rejection::new(
                FailInfo::BadRequest,
                "RenewalReq is not accepted by this server.",
                "RenewalReq received; renewal is not enabled",
            )),
            Body::CertPoll(ias) => {
                let found = self
                    .store
                    .issued_for_poll(reply.transaction_id.as_str(), &ias.subject.to_string())
                    .await
                    .map_err(internal)?;
                match found {
                    Some(row) => self.success_from_der(&row.der),
                    None => Err(Rejection::new(
                        FailInfo::BadCertId,
                        "No request with this transactionID is known.",
                        "CertPoll for an unknown transaction",
                    )),
                }
            }
            Body::GetCert(isn) => {
                if isn.issuer != *self.ca.ca.cert.tbs_certificate().subject() {
                    return Err(Rejection::new(
                        FailInfo::BadCertId,
                        "The issuer is not this CA.",
                        "GetCert for a foreign issuer",
                    ));
                }
                let serial = hex::encode_upper(isn.serial_number.as_bytes());
                match self.store.certificate(&serial).await.map_err(internal)? {
                    Some(row) => self.success_from_der(&row.der),
                    None => Err(Rejection::new(
                        FailInfo::BadCertId,
                        "No certificate with this serial number.",
                        format!("GetCert for unknown serial {serial}"),
                    )),
                }
            }
            Body::GetCrl(_) => Err(Rejection::new(
                FailInfo::BadRequest,
                "GetCRL is not offered by this server.",
                "GetCRL received; CRLs are not enabled",
            )),
        }
    }

    fn success_from_der(&self, der: &[u8]) -> Result<Outcome, Rejection> {
        let cert = crate::ca::cert_from_der(der).ok_or_else(|| internal("stored certificate does not decode"))?;
        let mut certificates = vec![cert];
        if self.config.scep.include_ca_in_reply {
            certificates.push(self.ca.ca.cert.clone());
        }
        Ok(Outcome::Success { certificates, crls: vec![] })
    }

    async fn enroll(
        self: &Arc<Self>,
        reply: &ReplyTo,
        csr: Csr,
        requester: &str,
        via: &'static str,
    ) -> Result<Outcome, Rejection> {
        let tid = reply.transaction_id.as_str();
        let signer_sha256 = DigestAlg::Sha256.digest(&reply.recipient.to_der().map_err(internal)?);
        let csr_sha256 = DigestAlg::Sha256.digest(csr.to_der());

        // A resent request (same transactionID, signer certificate and CSR) gets the
        // certificate it already got. A new key or signer with the same transactionID
        // is a new request: clients derive transactionIDs from keys.
        if let Some(row) = self.store.issued_for_retry(tid, &signer_sha256, &csr_sha256).await.map_err(internal)? {
            info!(
                transaction_id = tid,
                serial = row.serial,
                "resent request: answering with the certificate already issued"
            );
            return self.success_from_der(&row.der);
        }

        if reply.recipient.tbs_certificate().subject_public_key_info().algorithm.oid
            != scep::crypto::alg::RSA_ENCRYPTION
        {
            return Err(Rejection::new(
                FailInfo::BadAlg,
                "The request must be signed with an RSA key: the reply is encrypted to the signer certificate.",
                "non-RSA signer certificate",
            ));
        }
        self.check_key(&csr)?;
        let now = self.clock.now();
        let ip: Option<std::net::IpAddr> = requester.parse().ok();
        if ip.is_some_and(|ip| self.challenge_throttle.blocked(ip)) {
            return Err(Rejection::new(
                FailInfo::BadRequest,
                "Too many failed attempts from this address; try again later.",
                "address throttled after repeated wrong challenges",
            ));
        }
        let authorised = match self.authorise(&csr, tid, requester, now).await {
            Ok(a) => a,
            Err(r) => {
                if r.public == BAD_CHALLENGE_TEXT
                    && let Some(ip) = ip
                {
                    self.challenge_throttle.failure(ip);
                }
                return Err(r);
            }
        };
        let consume = match authorised {
            Authorised::OneTime(hash) => Some(hash),
            Authorised::Reusable => None,
        };

        let profile = Profile {
            name: "default".into(),
            validity: scep::x509::days(self.config.issuance.validity_days),
            extended_key_usage: vec![const_oid::db::rfc5280::ID_KP_CLIENT_AUTH],
            min_rsa_bits: self.config.issuance.min_rsa_bits,
        };
        let this = Arc::clone(self);
        let (cert, csr) = tokio::task::spawn_blocking(move || {
            let c = this.ca.issue(&csr, &profile, now);
            (c, csr)
        })
        .await
        .map_err(internal)?;
        let cert = cert.map_err(internal)?;
        let der = cert.to_der().map_err(internal)?;
        let tbs = cert.tbs_certificate();
        let rec = IssuedRecord {
            serial: hex::encode_upper(tbs.serial_number().as_bytes()),
            subject: tbs.subject().to_string(),
            sans: crate::names::sans(&csr),
            not_before: unix(tbs.validity().not_before.to_system_time()),
            not_after: unix(tbs.validity().not_after.to_system_time()),
            issued_at: unix(now),
            transaction_id: tid.to_owned(),
            message_type: MessageType::PkcsReq.name().to_owned(),
            signer_sha256,
            csr_sha256,
            requester: requester.to_owned(),
            template: "default".into(),
            renews_serial: None,
            der,
        };
        let serial = rec.serial.clone();
        let subject = rec.subject.clone();
        // The certificate reaches the client only after this commit; the challenge is
        // consumed in the same transaction, so one password gives one certificate.
        match self.store.record_issued(rec, consume.as_deref().map(|h| (h, unix(now)))).await {
            Ok(()) => {}
            Err(RecordError::ChallengeGone) => {
                return Err(Rejection::new(
                    FailInfo::BadRequest,
                    BAD_CHALLENGE_TEXT,
                    "the challenge was used by a concurrent request",
                ));
            }
            Err(e) => return Err(internal(e)),
        }
        info!(transaction_id = tid, serial, subject, requester, via, "certificate issued");
        if let Some(hook) = self.webhook.clone() {
            let der = cert.to_der().map_err(internal)?;
            let not_after = cert.tbs_certificate().validity().not_after.to_string();
            let event = webhook::Event::Issued {
                transaction_id: tid.to_owned(),
                serial,
                subject,
                thumbprint: hex::encode_upper(DigestAlg::Sha1.digest(&der)),
                sha256: hex::encode_upper(DigestAlg::Sha256.digest(&der)),
                not_after,
            };
            tokio::spawn(async move { hook.notify(&event).await });
        }
        let mut certificates = vec![cert];
        if self.config.scep.include_ca_in_reply {
            certificates.push(self.ca.ca.cert.clone());
        }
        Ok(Outcome::Success { certificates, crls: vec![] })
    }

    /// Check the request's challenge the way the configured mode says.
    async fn authorise(&self, csr: &Csr, tid: &str, requester: &str, now: SystemTime) -> Result<Authorised, Rejection> {
        let bad = |reason: &str| Rejection::new(FailInfo::BadRequest, BAD_CHALLENGE_TEXT, reason);
        match self.config.challenge.mode {
            ChallengeMode::OneTime => {
                let pw = csr.challenge().ok_or_else(|| bad("no challengePassword in the CSR"))?;
                let hash = challenge::hash(&self.challenge_secret, pw.expose());
                match self.store.challenge_state(&hash, unix(now)).await.map_err(internal)? {
                    ChallengeState::Valid(id, binding) => {
                        check_binding(&binding, csr).map_err(|why| {
                            Rejection::new(
                                FailInfo::BadRequest,
                                format!("The request does not match its challenge: {why}."),
                                format!("challenge {id} is bound: {why}"),
                            )
                        })?;
                        Ok(Authorised::OneTime(hash))
                    }
                    ChallengeState::Unusable(status) => Err(bad(&format!("challenge is {status:?}").to_lowercase())),
                    ChallengeState::Unknown => Err(bad("unknown challenge")),
                }
            }
            ChallengeMode::Single => {
                let pw = csr.challenge().ok_or_else(|| bad("no challengePassword in the CSR"))?;
                let master = challenge::single_password(self.store.as_ref(), &self.single_key)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| bad("no single password is set (scepd challenge rotate)"))?;
                if scep::crypto::constant_time_eq(pw.expose().trim().as_bytes(), master.as_bytes()) {
                    Ok(Authorised::Reusable)
                } else {
                    Err(bad("wrong single password"))
                }
            }
            ChallengeMode::None => {
                warn!(transaction_id = tid, requester, "enrolling without a challenge: challenge.mode is \"none\"");
                Ok(Authorised::Reusable)
            }
            ChallengeMode::Webhook => {
                let hook = self.webhook.as_ref().ok_or_else(|| internal("webhook mode without a webhook client"))?;
                let request = webhook::VerifyRequest {
                    transaction_id: tid.to_owned(),
                    message_type: MessageType::PkcsReq.name().to_owned(),
                    challenge: csr.challenge().map(|c| c.expose().to_owned()),
                    csr: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, csr.to_der()),
                    subject: csr.subject().to_string(),
                    sans: crate::names::sans(csr),
                    requester: requester.to_owned(),
                };
                match hook.verify(&request).await {
                    webhook::Decision::Allow => Ok(Authorised::Reusable),
                    webhook::Decision::Deny(why) => Err(bad(&format!("webhook denied: {why}"))),
                }
            }
        }
    }

    /// Mint what the admin page and `scepd challenge new` show in the configured mode.
    pub async fn admin_challenge(&self, created_by: &str, binding: Binding) -> anyhow::Result<AdminChallenge> {
        let c = &self.config.challenge;
        let now = self.clock.now();
        Ok(match c.mode {
            ChallengeMode::OneTime => {
                let params = challenge::MintParams {
                    length: c.password_length,
                    validity_minutes: c.password_validity_minutes,
                    max_outstanding: c.password_max,
                    created_by,
                    binding,
                };
                match challenge::mint(self.store.as_ref(), &self.challenge_secret, params, now).await? {
                    challenge::MintResult::Minted(m) => {
                        info!(id = m.id, created_by, "one-time challenge issued");
                        AdminChallenge::OneTime(m)
                    }
                    challenge::MintResult::CacheFull => AdminChallenge::CacheFull,
                }
            }
            ChallengeMode::Single => match challenge::single_password(self.store.as_ref(), &self.single_key).await? {
                Some(p) => AdminChallenge::Single(p),
                None => AdminChallenge::Single(
                    challenge::rotate_single(self.store.as_ref(), &self.single_key, c.password_length, now).await?,
                ),
            },
            ChallengeMode::None | ChallengeMode::Webhook => AdminChallenge::NotIssued(c.mode),
        })
    }

    fn check_key(&self, csr: &Csr) -> Result<(), Rejection> {
        let spki = csr.public_key();
        let bits = scep::crypto::key_bits(spki).ok_or_else(|| {
            Rejection::new(
                FailInfo::BadAlg,
                "The key type is not supported (use RSA, P-256 or P-384).",
                "unsupported key type",
            )
        })?;
        if spki.algorithm.oid == scep::crypto::alg::RSA_ENCRYPTION && bits < self.config.issuance.min_rsa_bits {
            return Err(Rejection::new(
                FailInfo::BadRequest,
                format!("The RSA key has {bits} bits; at least {} are required.", self.config.issuance.min_rsa_bits),
                format!("RSA key of {bits} bits"),
            ));
        }
        if csr.subject().is_empty() && csr.subject_alt_name().is_none() {
            return Err(Rejection::new(
                FailInfo::BadRequest,
                "The request has neither a subject nor a subject alternative name.",
                "empty subject",
            ));
        }
        Ok(())
    }
}

/// What the admin page shows.
pub enum AdminChallenge {
    /// A new one-time password.
    OneTime(challenge::Minted),
    /// PasswordMax are outstanding.
    CacheFull,
    /// The single master password.
    Single(zeroize::Zeroizing<String>),
    /// This mode issues no passwords.
    NotIssued(ChallengeMode),
}

/// Whether `csr` carries what `binding` requires: the same subject, and exactly the
/// bound SANs.
fn check_binding(binding: &Binding, csr: &Csr) -> Result<(), String> {
    if let Some(subject) = &binding.subject {
        let want = subject.parse::<x509_cert::name::Name>().map(|n| n.to_string()).unwrap_or_else(|_| subject.clone());
        if !csr.subject().to_string().eq_ignore_ascii_case(&want) {
            return Err(format!("the subject must be {want}"));
        }
    }
    if let Some(sans) = &binding.sans {
        let mut want: Vec<String> = sans.iter().map(|s| s.to_ascii_lowercase()).collect();
        let mut got: Vec<String> = crate::names::sans(csr).iter().map(|s| s.to_ascii_lowercase()).collect();
        want.sort();
        got.sort();
        if want != got {
            return Err(format!("the subject alternative names must be {}", sans.join(", ")));
        }
    }
    Ok(())
}

/// The text a client sees for a protocol error: fixed sentences, never library text.
fn public_text(e: &scep::Error) -> String {
    match e.fail_info() {
        FailInfo::BadMessageCheck => "The message could not be verified or decrypted.".into(),
        FailInfo::BadAlg => "An algorithm in the request is not supported.".into(),
        _ => match e {
            scep::Error::BadRequest(s) => format!("The request is not acceptable: {s}."),
            _ => "The request could not be read.".into(),
        },
    }
}

fn internal(e: impl std::fmt::Display) -> Rejection {
    Rejection::new(FailInfo::BadRequest, "The server could not complete the request.", format!("internal error: {e}"))
}
