//! Every enrollment decision, and nowhere else: challenge checks, key and subject
//! rules, idempotent replay by transactionID, issuance and recording.

pub mod audit;
pub mod challenge;
mod crl;
pub mod decide;
mod enroll;
mod envelopes;
#[cfg(test)]
mod policy_tests;
mod queries;
pub mod refusal;
pub(crate) mod sealed;
pub mod throttle;
mod users;
pub mod webhook;

use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use der::Encode;
use scep::attr::{DigestAlg, MessageType};
use scep::caps::{Capabilities, Capability};
use scep::crypto::Decrypter;
use scep::request::{Body, PkiMessage, ReplyTo, Request, Unreadable};
use scep::response::{Env, Outcome, cert_rep, failure_rep};
use tracing::{info, warn};
use x509_cert::Certificate;

use crate::ca::{Ca, KeyedCert};
use crate::config::{ChallengeMode, Config};
use crate::store::{AuditOutcome, Binding, Store, Via};

pub use crl::{RevokeError, reason_from_name};
pub use users::NtlmRefusal;

pub use refusal::{BAD_CHALLENGE_TEXT, Refusal};
use refusal::{MAX_TRANSACTION_ID, Refused, internal};

/// The answer to a PKIOperation.
pub enum PkiReply {
    /// A signed CertRep (SUCCESS, PENDING or FAILURE).
    CertRep(Vec<u8>),
    /// The bytes are not a pkiMessage: there is no transactionID to answer to.
    Unreadable,
    /// The server failed (a signing task, say): not the client's fault.
    Fault,
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

/// The CA material with what is derived from it once: GetCACaps, GetCACert and
/// GetNextCACert bodies. Replaced whole when the files change (rollover, RA renewal).
pub struct Pki {
    /// The CA and RA certificates and keys.
    pub ca: Ca,
    /// GetCACaps body of the default endpoint.
    caps: String,
    /// GetCACaps bodies of the template endpoints that set their own.
    template_caps: std::collections::BTreeMap<String, String>,
    ca_certs: (&'static str, Vec<u8>),
    next_ca_cert: Option<Vec<u8>>,
    ca_only: bool,
}

impl Pki {
    /// Derive the protocol answers from `ca`.
    pub fn new(ca: Ca, config: &Config) -> anyhow::Result<Self> {
        // GetNextCACert is a fact about the CA, not a choice: listed exactly while a next
        // CA is prepared, after DES3 as NDES and micromdm list it.
        let body = |list: &[Capability]| {
            let mut caps: Vec<Capability> = list.iter().copied().filter(|c| *c != Capability::GetNextCaCert).collect();
            if ca.next.is_some() {
                let at = caps.iter().position(|c| *c == Capability::Des3).map_or(0, |i| i + 1);
                caps.insert(at, Capability::GetNextCaCert);
            }
            Capabilities(caps).to_body()
        };
        let caps = body(&config.scep.default_caps()?);
        let template_caps =
            config.templates.iter().filter_map(|t| Some((t.name.clone(), body(t.caps.as_deref()?)))).collect();
        let ca_only = config.scep.ca_only_getcacert;
        let ca_certs = if ca_only {
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
        // RFC 8894 section 3.5.2: the next CA (and RA) certificates, signed by the current CA.
        let next_ca_cert = match &ca.next {
            Some(n) => {
                let certs = if ca_only {
                    vec![n.ca.cert.clone()]
                } else {
                    vec![n.ra_encrypt.cert.clone(), n.ra_sign.cert.clone(), n.ca.cert.clone()]
                };
                Some(scep::response::next_ca_cert(&certs, &ca.ca.key, &ca.ca.cert)?)
            }
            None => None,
        };
        Ok(Pki { ca, caps, template_caps, ca_certs, next_ca_cert, ca_only })
    }

    /// Our certificates that clients encrypt to, with their keys, preferred first.
    fn recipients(&self) -> Vec<(&Certificate, &dyn Decrypter)> {
        let mut v: Vec<(&Certificate, &dyn Decrypter)> = if self.ca_only {
            vec![(&self.ca.ca.cert, &self.ca.ca.key)]
        } else {
            vec![(&self.ca.ra_encrypt.cert, &self.ca.ra_encrypt.key), (&self.ca.ra_sign.cert, &self.ca.ra_sign.key)]
        };
        // Clients that cached an earlier GetCACert still encrypt to earlier certificates.
        v.extend(self.ca.previous_ra.iter().map(|k| (&k.cert, &k.key as &dyn Decrypter)));
        v.extend(self.ca.previous.iter().filter(|k| k.key.can_decrypt()).map(|k| (&k.cert, &k.key as &dyn Decrypter)));
        v
    }

    /// The certificate and key that sign CertReps: one GetCACert returned.
    fn reply_signer(&self) -> &KeyedCert {
        if self.ca_only { &self.ca.ca } else { &self.ca.ra_sign }
    }
}

/// The enrollment authority.
pub struct Authority {
    pki: RwLock<Arc<Pki>>,
    store: Arc<dyn Store>,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    rejection_secret: [u8; 32],
    challenge_secret: [u8; 32],
    single_key: [u8; 32],
    ntlm_key: [u8; 32],
    challenge_throttle: throttle::Throttle,
    decrypt_throttle: throttle::Throttle,
    seen_keys: envelopes::SeenKeys,
    webhook: Option<Arc<dyn webhook::Webhook>>,
    audit: Option<audit::AuditSink>,
    metrics: crate::metrics::Metrics,
}

impl Authority {
    /// Build the authority; the protocol answers are computed once here.
    pub fn new(ca: Ca, store: Arc<dyn Store>, config: Arc<Config>, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let window = std::time::Duration::from_secs(config.throttle.window_secs);
        Ok(Authority {
            rejection_secret: ca.secret("implicit rejection"),
            challenge_secret: ca.secret("challenge"),
            single_key: ca.secret("single password"),
            ntlm_key: ca.secret(crate::accounts::NTLM_KEY),
            challenge_throttle: throttle::Throttle::new(config.throttle.max_failures, window),
            decrypt_throttle: throttle::Throttle::new(config.throttle.max_failures, window),
            seen_keys: envelopes::SeenKeys::default(),
            webhook: None,
            audit: None,
            metrics: crate::metrics::Metrics::default(),
            pki: RwLock::new(Arc::new(Pki::new(ca, &config)?)),
            store,
            config,
            clock,
        })
    }

    /// Replace the CA material (after a rollover or an RA renewal on disk).
    pub fn replace_ca(&self, ca: Ca) -> anyhow::Result<()> {
        let pki = Arc::new(Pki::new(ca, &self.config)?);
        *self.pki.write().unwrap_or_else(std::sync::PoisonError::into_inner) = pki;
        Ok(())
    }

    /// With an audit trail written to the store (servers; not CLI commands).
    pub fn with_audit(mut self) -> Self {
        self.audit = Some(audit::AuditSink::start(self.store.clone(), self.clock.clone()));
        self
    }

    /// With a webhook client for verification and notifications.
    pub fn with_webhook(mut self, webhook: Arc<dyn webhook::Webhook>) -> Self {
        self.webhook = Some(webhook);
        self
    }

    /// The current CA material.
    pub fn pki(&self) -> Arc<Pki> {
        self.pki.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// This process's metrics.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// The metrics exposition, with gauges read now.
    pub async fn render_metrics(&self) -> String {
        let now = self.clock.now();
        let mut g = crate::metrics::Gauges {
            challenges_max: u64::from(self.config.challenge.password_max),
            ..Default::default()
        };
        g.database_up = self.store.ping().await.is_ok();
        if g.database_up {
            g.challenges_outstanding = self.store.list_challenges(unix(now)).await.map_or(0, |v| v.len() as u64);
            g.pending_requests = self.store.count_pending().await.unwrap_or(0);
        }
        let pki = self.pki();
        let mut add = |role: &str, k: &KeyedCert| {
            let left = unix(k.not_after()) - unix(now);
            g.expiry.push((role.to_owned(), k.cert.tbs_certificate().subject().to_string(), left));
        };
        add("ca", &pki.ca.ca);
        add("ra-sign", &pki.ca.ra_sign);
        add("ra-encrypt", &pki.ca.ra_encrypt);
        if let Some(n) = &pki.ca.next {
            add("next-ca", &n.ca);
        }
        self.metrics.render(&g)
    }

    /// GetCACaps body of the default endpoint, or of a template's endpoint.
    pub fn caps(&self, template: Option<&str>) -> String {
        let p = self.pki();
        template.and_then(|t| p.template_caps.get(t)).unwrap_or(&p.caps).clone()
    }

    /// GetCACert content type and body.
    pub fn ca_certs(&self) -> (&'static str, Vec<u8>) {
        let p = self.pki();
        (p.ca_certs.0, p.ca_certs.1.clone())
    }

    /// GetNextCACert body, when a next CA is prepared.
    pub fn next_ca_cert(&self) -> Option<Vec<u8>> {
        self.pki().next_ca_cert.clone()
    }

    /// The current time.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Handle one PKIOperation from `requester`, received by `via` (GET or POST), at an
    /// endpoint that may name a template. Crypto runs on the blocking pool.
    pub async fn pki_operation(
        self: &Arc<Self>,
        bytes: Vec<u8>,
        requester: String,
        via: Via,
        template: Option<String>,
    ) -> PkiReply {
        let started = std::time::Instant::now();
        let pki = self.pki();
        let this = Arc::clone(self);
        let p2 = pki.clone();
        // Once the signature checks out, the lookups an enrollment needs (an earlier
        // request with this transactionID and signer, the single password) run while
        // the envelope is being decrypted, not after.
        let (early_tx, early_rx) = tokio::sync::oneshot::channel::<ReplyTo>();
        let ip: Option<std::net::IpAddr> = requester.parse().ok();
        let opened = tokio::task::spawn_blocking(move || {
            let msg = PkiMessage::parse(&bytes)?;
            let reply = msg.reply_to().clone();
            let mtype = msg.message_type();
            // Answered before any RSA work: the transactionID goes into every log line
            // and audit row of the request.
            if reply.transaction_id.as_str().len() > MAX_TRANSACTION_ID {
                let why = format!("the transactionID is longer than {MAX_TRANSACTION_ID} characters");
                return Ok((reply, mtype, Err(scep::Error::BadRequest(why))));
            }
            let recipients = p2.recipients();
            let req = msg.verify().and_then(|m| m.envelope()).and_then(|sealed| {
                // Everything from here to an authenticated content answers alike
                // (Error::Decrypt): a throttled address, a captured content key sent with
                // other content, a failed decryption, a body that does not read.
                // Counted after decryption (this runs on the blocking pool and cannot wait
                // its turn like a challenge check); parallel probes are bounded by the
                // connection limits, and each captured key answers once anyway.
                if let Some(ip) = ip
                    && this.decrypt_throttle.blocked(ip)
                {
                    warn!(requester = %ip, "decryption refused: too many undecryptable messages from this address");
                    return Err(scep::Error::Decrypt);
                }
                let settle = |opened: bool| {
                    if let (false, Some(ip)) = (opened, ip) {
                        this.decrypt_throttle.failure(ip);
                    }
                };
                if !this.seen_keys.admit(&sealed.id()?) {
                    warn!(transaction_id = %sealed.reply_to().transaction_id, "an encrypted key seen before came with other content or another signer: refused before decryption");
                    settle(false);
                    return Err(scep::Error::Decrypt);
                }
                if matches!(mtype, MessageType::PkcsReq | MessageType::RenewalReq) {
                    let _ = early_tx.send(sealed.reply_to().clone());
                }
                let opened = sealed.open(&recipients, &this.rejection_secret);
                settle(!matches!(opened, Err(scep::Error::Decrypt)));
                opened
            });
            Ok::<_, Unreadable>((reply, mtype, req))
        });
        let (opened, prefetched) = tokio::join!(opened, self.prefetch(early_rx));
        let (reply, mtype, req) = match opened {
            Ok(Ok(v)) => v,
            Ok(Err(Unreadable { error, address })) => {
                let tid = address.as_ref().map(|a| crate::text::clip(a.transaction_id.as_str(), MAX_TRANSACTION_ID));
                warn!(requester, via = via.as_str(), transaction_id = tid, %error, "unreadable PKIOperation");
                self.audit_entry(
                    &requester,
                    via,
                    tid.as_deref(),
                    None,
                    &audit::Note::default(),
                    AuditOutcome::Unreadable,
                    address.is_some().then(|| Refusal::Unverifiable.fail_info().name().to_owned()),
                    Some(error.to_string()),
                )
                .await;
                self.metrics.request("PKIOperation", "unreadable");
                // With a transactionID and senderNonce to answer to, the answer is a
                // CertRep: clients read those, not an HTTP error.
                let Some(address) = address else { return PkiReply::Unreadable };
                let now = self.clock.now();
                let signed = tokio::task::spawn_blocking(move || {
                    let signer = pki.reply_signer();
                    let r = Refusal::Unverifiable;
                    failure_rep(&address, r.fail_info(), &r.text(), &signer.key, &signer.cert, Env::system(now))
                })
                .await;
                return match signed {
                    Ok(Ok(der)) => PkiReply::CertRep(der),
                    Ok(Err(e)) => {
                        warn!(requester, error = %e, "cannot build the CertRep");
                        PkiReply::Fault
                    }
                    Err(e) => {
                        warn!(requester, error = %e, "CertRep task failed");
                        PkiReply::Fault
                    }
                };
            }
            Err(e) => {
                warn!(requester, error = %e, "PKIOperation task failed");
                return PkiReply::Fault;
            }
        };
        let tid = reply.transaction_id.to_string();
        let note = audit::SharedNote::default();
        let ctx = enroll::Context {
            pki: &pki,
            requester: &requester,
            via,
            template: template.as_deref(),
            note: note.clone(),
            reply: reply.clone(),
        };
        // Every line logged from here on carries the transactionID (JSON logs: in its span).
        let span = tracing::info_span!("pkioperation", transaction_id = %tid, requester = %requester);
        let (outcome, signed, reason) = tracing::Instrument::instrument(
            async {
                match req {
                    Err(e) => {
                        let r = Refusal::of_protocol(&e).because(e.to_string());
                        let reason = Some(r.reason.clone());
                        (self.reject(&tid, mtype, &requester, r, None), None, reason)
                    }
                    Ok(req) => match self.decide(req, &ctx, prefetched).await {
                        Ok(a) => (a.outcome, a.signed, None),
                        Err(r) => {
                            let reason = Some(r.reason.clone());
                            let csr = note.lock().unwrap_or_else(std::sync::PoisonError::into_inner).csr.take();
                            (self.reject(&tid, mtype, &requester, r, csr), None, reason)
                        }
                    },
                }
            },
            span,
        )
        .await;
        let n = std::mem::take(&mut *note.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let (result, fail) = match &outcome {
            Outcome::Success { .. } if n.issued => (AuditOutcome::Issued, None),
            Outcome::Success { .. } => (AuditOutcome::Success, None),
            Outcome::Pending => (AuditOutcome::Pending, None),
            Outcome::Failure(info, _) => (AuditOutcome::Failure, Some(info.name().to_owned())),
        };
        self.audit_entry(&requester, via, Some(&tid), Some(mtype), &n, result, fail, reason).await;
        self.metrics.request("PKIOperation", result.as_str());
        let built = match (signed, &outcome) {
            (Some(der), Outcome::Success { .. }) => Ok(Ok(der)),
            _ => {
                let now = self.clock.now();
                tokio::task::spawn_blocking(move || {
                    let signer = pki.reply_signer();
                    cert_rep(&reply, &outcome, &signer.key, &signer.cert, Env::system(now))
                })
                .await
            }
        };
        self.metrics.latency(started.elapsed());
        match built {
            Ok(Ok(der)) => PkiReply::CertRep(der),
            Ok(Err(e)) => {
                warn!(transaction_id = tid, error = %e, "cannot build the CertRep");
                PkiReply::Fault
            }
            Err(e) => {
                warn!(transaction_id = tid, error = %e, "CertRep task failed");
                PkiReply::Fault
            }
        }
    }

    /// The reads an enrollment starts with, for the request `early` announces (none
    /// when it announces nothing: not an enrollment, or not properly signed).
    async fn prefetch(&self, early: tokio::sync::oneshot::Receiver<ReplyTo>) -> Option<enroll::Prefetched> {
        let reply = early.await.ok()?;
        let signer_sha256 = DigestAlg::Sha256.digest(reply.recipient.der());
        let earlier = self.store.earlier(reply.transaction_id.as_str(), &signer_sha256);
        let single = async {
            match self.config.challenge.mode {
                ChallengeMode::Single => challenge::single_password(self.store.as_ref(), &self.single_key).await,
                _ => Ok(None),
            }
        };
        let (earlier, single_password) = tokio::join!(earlier, single);
        Some(enroll::Prefetched { signer_sha256, earlier, single_password })
    }

    #[allow(clippy::too_many_arguments)] // one audit row's worth of facts
    async fn audit_entry(
        &self,
        requester: &str,
        via: Via,
        tid: Option<&str>,
        mtype: Option<MessageType>,
        n: &audit::Note,
        outcome: AuditOutcome,
        fail_info: Option<String>,
        reason: Option<String>,
    ) {
        let Some(sink) = &self.audit else { return };
        // Every text a client chose is clipped: a row is bounded whatever was sent.
        let clip = |s: &str| crate::text::clip(s, audit::MAX_FIELD);
        let entry = crate::store::AuditEntry {
            id: hex::encode(scep::crypto::random_bytes(8).unwrap_or_default()),
            at: unix(self.clock.now()),
            requester: requester.to_owned(),
            via,
            transaction_id: tid.map(|t| crate::text::clip(t, MAX_TRANSACTION_ID)),
            message_type: mtype.map(|m| m.name().to_owned()),
            subject: n.subject.as_deref().map(clip),
            template: n.template.clone(),
            outcome,
            fail_info,
            reason: reason.as_deref().map(clip),
            serial: n.serial.clone(),
            challenge_id: n.challenge_id.clone(),
            renews_serial: n.renews_serial.clone(),
        };
        sink.record(entry).await;
    }

    fn reject(&self, tid: &str, mtype: MessageType, requester: &str, r: Refused, csr: Option<Vec<u8>>) -> Outcome {
        let info = r.refusal.fail_info();
        if let Some(hook) = &self.webhook {
            let event = webhook::Event::Failed {
                transaction_id: tid.to_owned(),
                fail_info: info.name().to_owned(),
                reason: r.reason.clone(),
                message_type: mtype.name().to_owned(),
                csr: csr.map(|c| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, c)),
            };
            hook.enqueue(event);
        }
        warn!(transaction_id = tid, message_type = %mtype, requester, fail_info = %info, reason = r.reason, "request refused");
        Outcome::Failure(info, r.refusal.text().into_owned())
    }

    async fn decide(
        self: &Arc<Self>,
        req: Request,
        ctx: &enroll::Context<'_>,
        prefetched: Option<enroll::Prefetched>,
    ) -> Result<enroll::Answer, Refused> {
        let Request { reply, body, .. } = req;
        match body {
            Body::PkcsReq(csr) => self.enroll(&reply, csr, MessageType::PkcsReq, ctx, prefetched).await,
            Body::RenewalReq(csr) => self.enroll(&reply, csr, MessageType::RenewalReq, ctx, prefetched).await,
            Body::CertPoll(ias) => self.poll(&reply, &ias, ctx).await,
            Body::GetCert(isn) => {
                if !ctx.pki.ca.cas().any(|c| *c.cert.tbs_certificate().subject() == isn.issuer) {
                    return Err(Refusal::Unmatched.because("GetCert for a foreign issuer"));
                }
                let serial = hex::encode_upper(isn.serial_number.as_bytes());
                match self.store.certificate(&serial).await.map_err(internal)? {
                    Some(row) => Ok(Outcome::Success { certificates: vec![cert_of(&row.der)?], crls: vec![] }.into()),
                    None => Err(Refusal::Unmatched.because(format!("GetCert for unknown serial {serial}"))),
                }
            }
            Body::GetCrl(isn) => {
                // The CA named by issuer; with several generations of one name, the one
                // that issued the serial, else the current one.
                let serial = hex::encode_upper(isn.serial_number.as_bytes());
                let row = self.store.certificate(&serial).await.map_err(internal)?;
                let ca = row
                    .as_ref()
                    .and_then(|r| ctx.pki.ca.by_id(&r.ca_id))
                    .or_else(|| ctx.pki.ca.cas().find(|c| *c.cert.tbs_certificate().subject() == isn.issuer))
                    .ok_or_else(|| Refusal::Unmatched.because("GetCRL for a foreign issuer"))?;
                let crl = self.crl_for(ca).await.map_err(internal)?;
                let crl = <x509_cert::crl::CertificateList as der::Decode>::from_der(&crl).map_err(internal)?;
                Ok(Outcome::Success { certificates: vec![], crls: vec![crl] }.into())
            }
        }
    }

    /// Mint what the admin page, the API, the console and `scepd challenge new` hand
    /// out: `want` says whether the caller can hand out anything but a one-time
    /// challenge (the API cannot: its answer has an id and an expiry).
    pub async fn admin_challenge(
        &self,
        created_by: &str,
        binding: Binding,
        want: Want,
    ) -> anyhow::Result<AdminChallenge> {
        let c = &self.config.challenge;
        let now = self.clock.now();
        // One rule for every caller: a binding is checked, and never silently falls away.
        if let Err(why) = binding.validate(&self.config.templates) {
            return Ok(AdminChallenge::BadBinding(why));
        }
        if c.mode != ChallengeMode::OneTime && !binding.is_empty() {
            return Ok(AdminChallenge::Unbindable(c.mode));
        }
        if c.mode != ChallengeMode::OneTime && want == Want::OneTime {
            return Ok(AdminChallenge::NotIssued(c.mode));
        }
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
                        AdminChallenge::OneTime(m, c.password_validity_minutes)
                    }
                    challenge::MintResult::CacheFull => AdminChallenge::CacheFull(c.password_max),
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
}

/// A certificate from stored DER.
fn cert_of(der: &[u8]) -> Result<Certificate, Refused> {
    crate::ca::cert_from_der(der).ok_or_else(|| internal("stored certificate does not decode"))
}

/// What a caller of [`Authority::admin_challenge`] can hand out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// A one-time challenge, or nothing.
    OneTime,
    /// Whatever the configured mode gives (the single password in single mode).
    WhatTheModeGives,
}

/// What the admin page shows.
pub enum AdminChallenge {
    /// A new one-time password, valid for this many minutes.
    OneTime(challenge::Minted, u64),
    /// This many (PasswordMax) are outstanding.
    CacheFull(u32),
    /// The binding asked for is not valid; the text says what to fix.
    BadBinding(String),
    /// The single master password.
    Single(zeroize::Zeroizing<String>),
    /// This mode issues no passwords (or none the caller can hand out).
    NotIssued(ChallengeMode),
    /// A binding was asked for, but only one-time challenges can be bound (the single
    /// password serves every device): nothing was issued.
    Unbindable(ChallengeMode),
}
