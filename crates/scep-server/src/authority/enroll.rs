//! PKCSReq, RenewalReq and CertPoll: replay, renewal, challenges, templates,
//! approval, issuance and recording.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use der::Encode;
use scep::attr::{DigestAlg, MessageType};
use scep::csr::Csr;
use scep::request::{IssuerAndSubject, ReplyTo};
use scep::response::Outcome;
use scep::signer::SignerCert;
use tracing::{info, warn};

use super::refusal::{MAX_SANS, MAX_SUBJECT, Refusal, Refused, internal};
use super::{Authority, Pki, cert_of, challenge, unix, webhook};
use crate::config::ChallengeMode;
use crate::store::{
    Binding, CertStatus, CertificateRow, ChallengeState, Earlier, EarlierRecord, IssuedRecord, PendingRow,
    PendingStatus, RecordError, Via,
};
use crate::templates::{Approval, Template};

/// Where a request came from.
pub(crate) struct Context<'a> {
    /// The CA material in use for this request.
    pub pki: &'a Arc<Pki>,
    /// Client address.
    pub requester: &'a str,
    /// GET or POST.
    pub via: Via,
    /// A template named by the endpoint.
    pub template: Option<&'a str>,
    /// What the audit entry will say.
    pub note: super::audit::SharedNote,
    /// How to answer.
    pub reply: scep::request::ReplyTo,
}

/// What a request's handling decided: the outcome, and the CertRep when issuance
/// signed it already (in the same trip to the blocking pool as the certificate).
pub(crate) struct Answer {
    /// SUCCESS, PENDING (a FAILURE is a `Rejection`).
    pub outcome: Outcome,
    /// The signed CertRep carrying `outcome`, when there is one.
    pub signed: Option<Vec<u8>>,
}

impl From<Outcome> for Answer {
    fn from(outcome: Outcome) -> Self {
        Answer { outcome, signed: None }
    }
}

/// What an enrollment reads first, fetched while its envelope is decrypted.
pub(crate) struct Prefetched {
    /// SHA-256 of the signer certificate.
    pub signer_sha256: Vec<u8>,
    /// Earlier requests with this transactionID and signer.
    pub earlier: crate::store::StoreResult<Vec<Earlier>>,
    /// The single password (single mode only).
    pub single_password: SinglePassword,
}

/// What a challenge check found good, to act on when the certificate is recorded.
enum Authorised {
    /// A one-time challenge: its hash (consumed with the issuance), id and binding.
    OneTime(Vec<u8>, String, Binding),
    /// Single password, webhook, no challenge, or a renewal: nothing to consume.
    Reusable,
}

/// The identity of a request for replays: transactionID, signer and CSR.
struct Fingerprint {
    signer_sha256: Vec<u8>,
    csr_sha256: Vec<u8>,
}

impl Authority {
    pub(super) async fn enroll(
        self: &Arc<Self>,
        reply: &ReplyTo,
        csr: Csr,
        mtype: MessageType,
        ctx: &Context<'_>,
        prefetched: Option<Prefetched>,
    ) -> Result<Answer, Refused> {
        let tid = reply.transaction_id.as_str();
        let subject = csr.subject().to_string();
        if subject.len() > MAX_SUBJECT {
            return Err(Refusal::SubjectTooLong.because(format!("subject of {} characters", subject.len())));
        }
        let san_count = crate::names::sans(&csr).len();
        if san_count > MAX_SANS {
            return Err(Refusal::TooManySans.because(format!("{san_count} subject alternative names")));
        }
        super::audit::note(&ctx.note, |n| {
            n.subject = Some(subject);
            // Kept only for the webhook's failure notification: no copy on the hot path without one.
            if self.webhook.is_some() {
                n.csr = Some(csr.to_der().to_vec());
            }
        });
        // The prefetch announced this very request's signer, so its hash is reused.
        let (signer_sha256, earlier, single_password) = match prefetched {
            Some(p) => (p.signer_sha256, p.earlier, Some(p.single_password)),
            None => {
                let signer_sha256 = DigestAlg::Sha256.digest(reply.recipient.der());
                let earlier = self.store.earlier(tid, &signer_sha256).await;
                (signer_sha256, earlier, None)
            }
        };
        let fp = Fingerprint { signer_sha256, csr_sha256: DigestAlg::Sha256.digest(csr.to_der()) };

        // A resent request (same transactionID, signer certificate and CSR) gets what
        // it got before. A new key or signer with the same transactionID is a new
        // request: clients derive transactionIDs from keys, so they repeat.
        let resent = earlier.map_err(internal)?.into_iter().find(|e| e.csr_sha256 == fp.csr_sha256);
        match resent.map(|e| e.record) {
            Some(EarlierRecord::Issued(serial)) => {
                info!(transaction_id = tid, serial, "resent request: answering with the certificate already issued");
                let row = self.store.certificate(&serial).await.map_err(internal)?;
                let row = row.ok_or_else(|| internal(format!("certificate {serial} vanished")))?;
                return self.success(&row.der, &row.template, &ctx.note).map(Answer::from);
            }
            Some(EarlierRecord::Pending(id)) => {
                let row = self.store.pending(&id).await.map_err(internal)?;
                let row = row.ok_or_else(|| internal(format!("pending request {id} vanished")))?;
                return self.pending_answer(row, reply, ctx).await;
            }
            None => {}
        }

        let signer_key = reply.recipient.public_key();
        if signer_key.algorithm.oid != scep::crypto::alg::RSA_ENCRYPTION {
            return Err(Refusal::SignerNotRsa.because("non-RSA signer certificate"));
        }
        let now = self.clock.now();
        let renews = self.renewal_of(&reply.recipient, &csr, ctx.pki, now).await?;
        // RFC 8894 section 2.3: a requester without a certificate signs with the key of its
        // CSR. A foreign signer is what someone replaying a captured request under their
        // own signature looks like; only a CSR key that cannot receive the reply (not
        // RSA) needs another one, unless the operator allows throw-away signers.
        let csr_key = csr.public_key();
        if renews.is_none()
            && csr_key.subject_public_key != signer_key.subject_public_key
            && csr_key.algorithm.oid == scep::crypto::alg::RSA_ENCRYPTION
            && !self.config.scep.allow_foreign_signers
        {
            return Err(Refusal::ForeignSigner
                .because("signed by a key other than the CSR's (scep.allow_foreign_signers is off)"));
        }
        if mtype == MessageType::RenewalReq && renews.is_none() {
            return Err(Refusal::RenewalNotOurs.because("RenewalReq signed by a certificate this CA did not issue"));
        }
        let authorised = match &renews {
            // Possession of the current certificate's key authorises its renewal; an old
            // or used challenge the client still sends is ignored.
            Some(_) => Authorised::Reusable,
            None => self.authorise_with_throttle(&csr, tid, ctx.requester, now, single_password).await?,
        };
        let bound = match &authorised {
            Authorised::OneTime(_, _, b) => b.template.clone(),
            Authorised::Reusable => None,
        };
        let template = self.template_for(&csr, bound.as_deref(), ctx.template, renews.as_ref())?;
        super::audit::note(&ctx.note, |n| {
            n.template = Some(template.name.clone());
            n.renews_serial = renews.as_ref().map(|r| r.serial.clone());
            if let Authorised::OneTime(_, id, _) = &authorised {
                n.challenge_id = Some(id.clone());
            }
        });
        template
            .check(&csr)
            .map_err(|rule| Refusal::TemplateRule(rule.to_string()).because(format!("template rule: {rule}")))?;
        let consume = match &authorised {
            Authorised::OneTime(hash, _, _) => Some(hash.clone()),
            Authorised::Reusable => None,
        };

        if template.approval == Approval::Manual {
            let row = PendingRow {
                id: hex::encode(scep::crypto::random_bytes(8).map_err(internal)?),
                transaction_id: tid.to_owned(),
                signer_sha256: fp.signer_sha256,
                csr_sha256: fp.csr_sha256,
                csr: csr.to_der().to_vec(),
                signer_der: reply.recipient.der().to_vec(),
                subject: csr.subject().to_string(),
                sans: crate::names::sans(&csr),
                requester: ctx.requester.to_owned(),
                template: template.name.clone(),
                message_type: mtype.name().to_owned(),
                renews_serial: renews.as_ref().map(|r| r.serial.clone()),
                challenge_id: match &authorised {
                    Authorised::OneTime(_, id, _) => Some(id.clone()),
                    Authorised::Reusable => None,
                },
                status: PendingStatus::Pending,
                created_at: unix(now),
                decided_at: None,
                decided_by: None,
                serial: None,
            };
            return match self.store.record_pending(&row, consume.as_deref().map(|h| (h, unix(now)))).await {
                Ok(()) => {
                    info!(
                        transaction_id = tid,
                        id = row.id,
                        subject = row.subject,
                        template = row.template,
                        "request waits for approval"
                    );
                    Ok(Outcome::Pending.into())
                }
                Err(RecordError::ChallengeGone) => {
                    Err(Refusal::WrongChallenge.because("the challenge was used by a concurrent request"))
                }
                Err(e) => Err(internal(e)),
            };
        }

        let issue = Issue {
            tid,
            mtype,
            fp,
            renews: renews.map(|r| r.serial),
            pending_id: None,
            consume,
            ca_template: template,
        };
        self.issue_and_record(csr, issue, ctx, now).await
    }

    /// CertPoll (GetCertInitial): a pending request's state, or what was issued.
    pub(super) async fn poll(
        self: &Arc<Self>,
        reply: &ReplyTo,
        ias: &IssuerAndSubject,
        ctx: &Context<'_>,
    ) -> Result<Answer, Refused> {
        let tid = reply.transaction_id.as_str();
        let subject = ias.subject.to_string();
        // A poll must come from the requester: signed by the request's signer (its
        // certificate, or its key under a new self-signed certificate) or the key of its
        // CSR, or for a renewal by the renewed certificate.
        // Anyone else who knows a transactionID and subject learns nothing, and cannot
        // have an approved certificate sent to their own key.
        let signer_key = &reply.recipient.public_key().subject_public_key;
        if let Some(row) = self.store.pending_for_poll(tid, &subject).await.map_err(internal)? {
            let original = SignerCert::from_der(&row.signer_der).ok();
            let csr_key = Csr::from_der(&row.csr).ok().map(|c| c.public_key().subject_public_key.clone());
            let ours = original.is_some_and(|o| o.public_key().subject_public_key == *signer_key)
                || csr_key.is_some_and(|k| k == *signer_key);
            if !ours {
                return Err(Refusal::Unmatched.because("CertPoll signed by another key than the request's"));
            }
            return self.pending_answer(row, reply, ctx).await;
        }
        match self.store.issued_for_poll(tid, &subject).await.map_err(internal)? {
            Some(row) => {
                let cert = cert_of(&row.der)?;
                let renewed_by_signer = reply.recipient.certificate().is_some_and(|c| {
                    row.renews_serial.as_deref()
                        == Some(hex::encode_upper(c.tbs_certificate().serial_number().as_bytes()).as_str())
                });
                let same_signer = DigestAlg::Sha256.digest(reply.recipient.der()) == row.signer_sha256;
                if cert.tbs_certificate().subject_public_key_info().subject_public_key != *signer_key
                    && !renewed_by_signer
                    && !same_signer
                {
                    return Err(Refusal::Unmatched.because("CertPoll signed by another key than the request's"));
                }
                self.success(&row.der, &row.template, &ctx.note).map(Answer::from)
            }
            None => Err(Refusal::Unmatched.because("CertPoll for an unknown transaction")),
        }
    }

    /// The answer for a request that went through approval.
    async fn pending_answer(
        self: &Arc<Self>,
        row: PendingRow,
        reply: &ReplyTo,
        ctx: &Context<'_>,
    ) -> Result<Answer, Refused> {
        match row.status.as_str() {
            "pending" => Ok(Outcome::Pending.into()),
            "rejected" => Err(Refusal::RejectedByAdmin.because(format!("pending request {} was rejected", row.id))),
            "issued" => {
                let serial = row.serial.clone().unwrap_or_default();
                let cert = self
                    .store
                    .certificate(&serial)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| internal("issued request without its certificate"))?;
                self.success(&cert.der, &cert.template, &ctx.note).map(Answer::from)
            }
            "approved" => {
                // Issued now, at the first poll after approval; the signer of this poll
                // gets the envelope.
                let csr = Csr::from_der(&row.csr).map_err(internal)?;
                let template = self
                    .config
                    .templates
                    .get(&row.template)
                    .cloned()
                    .ok_or_else(|| internal(format!("template {} no longer exists", row.template)))?;
                let issue = Issue {
                    tid: &row.transaction_id,
                    mtype: if row.message_type == "RenewalReq" {
                        MessageType::RenewalReq
                    } else {
                        MessageType::PkcsReq
                    },
                    fp: Fingerprint { signer_sha256: row.signer_sha256.clone(), csr_sha256: row.csr_sha256.clone() },
                    renews: row.renews_serial.clone(),
                    pending_id: Some(row.id.clone()),
                    consume: None,
                    ca_template: template,
                };
                let now = self.clock.now();
                match self.issue_and_record(csr, issue, ctx, now).await {
                    Err(r) if r.refusal == Refusal::CompletedElsewhere => {
                        let again = self
                            .store
                            .pending(&row.id)
                            .await
                            .map_err(internal)?
                            .ok_or_else(|| internal("pending request vanished"))?;
                        Box::pin(self.pending_answer(again, reply, ctx)).await
                    }
                    other => other,
                }
            }
            other => Err(internal(format!("pending request in state {other}"))),
        }
    }

    /// The template. A renewal keeps the renewed certificate's (sent to another
    /// template's endpoint, it is refused: possession of a certificate does not buy
    /// another template's usages or validity). Otherwise a challenge's binding, then
    /// the endpoint's, then NDES's choice by key usage.
    fn template_for(
        &self,
        csr: &Csr,
        bound: Option<&str>,
        endpoint: Option<&str>,
        renews: Option<&CertificateRow>,
    ) -> Result<Template, Refused> {
        let t = &self.config.templates;
        if let Some(r) = renews {
            if endpoint.is_some_and(|e| e != r.template) {
                return Err(Refusal::RenewalOtherTemplate(r.template.clone()).because(format!(
                    "renewal of {} (template {}) sent to template {}",
                    r.serial,
                    r.template,
                    endpoint.unwrap_or("")
                )));
            }
            return t.get(&r.template).cloned().ok_or_else(|| {
                Refusal::RenewalTemplateGone
                    .because(format!("renewal of {}: template {} is not configured", r.serial, r.template))
            });
        }
        match bound.or(endpoint) {
            Some(n) => t.get(n).cloned().ok_or_else(|| internal(format!("unknown template {n}"))),
            None => Ok(t.select(csr).clone()),
        }
    }

    /// When the request is signed by a certificate this CA issued, that certificate's
    /// record: the request is then a renewal (RFC 8894 section 2.3, NDES KB 959193).
    async fn renewal_of(
        &self,
        signer: &SignerCert,
        csr: &Csr,
        pki: &Pki,
        now: SystemTime,
    ) -> Result<Option<CertificateRow>, Refused> {
        // Every certificate this CA issued reads as RFC 5280: one that does not is
        // some other signer (a self-signed throw-away, typically).
        let Some(signer) = signer.certificate() else { return Ok(None) };
        if pki.ca.issuer_of(signer).is_none() {
            return Ok(None);
        }
        let serial = hex::encode_upper(signer.tbs_certificate().serial_number().as_bytes());
        let row = self.store.certificate(&serial).await.map_err(internal)?.ok_or_else(|| {
            Refusal::RenewalSignerUnknown.because(format!("renewal signer {serial} is not in the store"))
        })?;
        if row.status == CertStatus::Revoked {
            return Err(Refusal::RenewalSignerRevoked.because(format!("renewal signed by revoked {serial}")));
        }
        if !self.config.renewal.allow_repeated
            && let Some(successor) = self.store.renewed_by(&serial).await.map_err(internal)?
        {
            return Err(Refusal::RenewalRepeated
                .because(format!("{serial} was renewed already by {successor} (renewal.allow_repeated is off)")));
        }
        let v = signer.tbs_certificate().validity();
        let grace = Duration::from_secs(self.config.renewal.grace_days.saturating_mul(86_400));
        if now < v.not_before.to_system_time() || now > v.not_after.to_system_time() + grace {
            return Err(Refusal::RenewalSignerNotValid(self.config.renewal.grace_days)
                .because(format!("renewal signer {serial} outside its validity and grace")));
        }
        if !self.config.renewal.allow_subject_change {
            let same_subject = csr.subject() == signer.tbs_certificate().subject();
            let mut want = crate::names::cert_sans(signer);
            let mut got = crate::names::sans(csr);
            want.sort();
            got.sort();
            if !same_subject || want != got {
                return Err(
                    Refusal::RenewalChangesNames.because(format!("renewal of {serial} changes subject or SANs"))
                );
            }
        }
        Ok(Some(row))
    }

    async fn authorise_with_throttle(
        &self,
        csr: &Csr,
        tid: &str,
        requester: &str,
        now: SystemTime,
        single_password: Option<SinglePassword>,
    ) -> Result<Authorised, Refused> {
        let throttled = || Refusal::Throttled.because("address throttled after repeated wrong challenges");
        // The check holds one of the address's remaining failures, given back unless
        // the challenge was wrong: parallel guesses cannot pass the limit.
        let attempt = match requester.parse::<std::net::IpAddr>() {
            Ok(ip) => Some(self.challenge_throttle.attempt(ip).await.ok_or_else(throttled)?),
            Err(_) => None,
        };
        let r = self.authorise(csr, tid, requester, now, single_password).await;
        match (&r, attempt) {
            (Err(e), Some(a)) if e.refusal.counts_as_wrong_challenge() => a.failed(),
            (_, Some(a)) => a.succeeded(),
            (_, None) => {}
        }
        r
    }

    /// Check the request's challenge the way the configured mode says.
    async fn authorise(
        &self,
        csr: &Csr,
        tid: &str,
        requester: &str,
        now: SystemTime,
        single_password: Option<SinglePassword>,
    ) -> Result<Authorised, Refused> {
        let bad = |reason: &str| Refusal::WrongChallenge.because(reason);
        match self.config.challenge.mode {
            ChallengeMode::OneTime => {
                let pw = csr.challenge().ok_or_else(|| bad("no challengePassword in the CSR"))?;
                let hash = challenge::hash(&self.challenge_secret, pw.expose());
                match self.store.challenge_state(&hash, unix(now)).await.map_err(internal)? {
                    ChallengeState::Valid(id, binding) => {
                        check_binding(&binding, csr).map_err(|why| {
                            let reason = format!("challenge {id} is bound: {why}");
                            Refusal::BindingBroken(why).because(reason)
                        })?;
                        Ok(Authorised::OneTime(hash, id, binding))
                    }
                    ChallengeState::Unusable(status) => Err(bad(&format!("challenge is {status:?}").to_lowercase())),
                    ChallengeState::Unknown => Err(bad("unknown challenge")),
                }
            }
            ChallengeMode::Single => {
                let pw = csr.challenge().ok_or_else(|| bad("no challengePassword in the CSR"))?;
                let master = match single_password {
                    Some(read) => read,
                    None => challenge::single_password(self.store.as_ref(), &self.single_key).await,
                }
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
                    webhook::Decision::Unavailable(why) => {
                        Err(Refusal::VerifierUnavailable.because(format!("webhook unavailable: {why}")))
                    }
                }
            }
        }
    }

    /// Sign, record (consuming the challenge or completing the approval in the same
    /// transaction), then answer. The certificate reaches the client only after the commit.
    async fn issue_and_record(
        self: &Arc<Self>,
        csr: Csr,
        issue: Issue<'_>,
        ctx: &Context<'_>,
        now: SystemTime,
    ) -> Result<Answer, Refused> {
        let pki = Arc::clone(ctx.pki);
        let template = issue.ca_template.clone();
        let crl_base = self.config.crl.base_url.clone();
        let reply = ctx.reply.clone();
        // Sign the certificate and the CertRep that carries it in one trip to the
        // blocking pool; the CertRep is sent only once the certificate is recorded.
        let (signed, csr) = tokio::task::spawn_blocking(move || {
            let signed = pki.ca.issue(&csr, &template, now, crl_base.as_deref()).and_then(|cert| {
                let mut certificates = vec![cert.clone()];
                if template.include_ca_cert {
                    certificates.push(pki.ca.ca.cert.clone());
                }
                let signer = pki.reply_signer();
                let rep = scep::response::cert_rep(
                    &reply,
                    &Outcome::Success { certificates, crls: vec![] },
                    &signer.key,
                    &signer.cert,
                    scep::response::Env::system(now),
                )?;
                Ok((cert, rep))
            });
            (signed, csr)
        })
        .await
        .map_err(internal)?;
        let (cert, rep) = signed.map_err(internal)?;
        let der = cert.to_der().map_err(internal)?;
        let tbs = cert.tbs_certificate();
        let rec = IssuedRecord {
            serial: hex::encode_upper(tbs.serial_number().as_bytes()),
            ca_id: ctx.pki.ca.ca.id(),
            subject: tbs.subject().to_string(),
            sans: crate::names::sans(&csr),
            not_before: unix(tbs.validity().not_before.to_system_time()),
            not_after: unix(tbs.validity().not_after.to_system_time()),
            issued_at: unix(now),
            transaction_id: issue.tid.to_owned(),
            message_type: issue.mtype.name().to_owned(),
            signer_sha256: issue.fp.signer_sha256,
            csr_sha256: issue.fp.csr_sha256,
            requester: ctx.requester.to_owned(),
            template: issue.ca_template.name.clone(),
            renews_serial: issue.renews.clone(),
            pending_id: issue.pending_id.clone(),
            der: der.clone(),
        };
        let (serial, subject, tid) = (rec.serial.clone(), rec.subject.clone(), issue.tid);
        match self.store.record_issued(rec, issue.consume.as_deref().map(|h| (h, unix(now)))).await {
            Ok(()) => {}
            Err(RecordError::ChallengeGone) if issue.pending_id.is_some() => {
                return Err(
                    Refusal::CompletedElsewhere.because("the approved request was completed by another instance")
                );
            }
            Err(RecordError::ChallengeGone) => {
                return Err(Refusal::WrongChallenge.because("the challenge was used by a concurrent request"));
            }
            Err(e) => return Err(internal(e)),
        }
        info!(
            transaction_id = tid,
            serial,
            subject,
            requester = ctx.requester,
            via = ctx.via.as_str(),
            renews = issue.renews,
            "certificate issued"
        );
        super::audit::note(&ctx.note, |n| {
            n.serial = Some(serial.clone());
            n.issued = true;
        });
        if let Some(old) = &issue.renews
            && self.config.renewal.revoke_superseded
        {
            let superseded = Some(x509_cert::ext::pkix::CrlReason::Superseded);
            let revoked = match old.parse::<crate::vocab::Serial>() {
                Ok(serial) => self.revoke(&serial, superseded).await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            if let Err(e) = revoked {
                warn!(serial = old, error = %e, "could not revoke the superseded certificate");
            }
        }
        if let Some(hook) = &self.webhook {
            let b64 = |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b);
            let event = webhook::Event::Issued {
                transaction_id: tid.to_owned(),
                serial,
                subject,
                thumbprint: hex::encode_upper(DigestAlg::Sha1.digest(&der)),
                sha256: hex::encode_upper(DigestAlg::Sha256.digest(&der)),
                not_after: cert.tbs_certificate().validity().not_after.to_string(),
                issuer: cert.tbs_certificate().issuer().to_string(),
                csr: b64(csr.to_der()),
                certificate: b64(&der),
            };
            hook.enqueue(event);
        }
        let mut certificates = vec![cert];
        if issue.ca_template.include_ca_cert {
            certificates.push(ctx.pki.ca.ca.cert.clone());
        }
        Ok(Answer { outcome: Outcome::Success { certificates, crls: vec![] }, signed: Some(rep) })
    }

    /// SUCCESS with a stored certificate (and the CA certificate when its template says so).
    fn success(&self, der: &[u8], template: &str, note: &super::audit::SharedNote) -> Result<Outcome, Refused> {
        let cert = cert_of(der)?;
        super::audit::note(note, |n| {
            n.serial = Some(hex::encode_upper(cert.tbs_certificate().serial_number().as_bytes()))
        });
        let mut certificates = vec![cert];
        if self.config.templates.get(template).is_some_and(|t| t.include_ca_cert) {
            let pki = self.pki();
            certificates.push(pki.ca.ca.cert.clone());
        }
        Ok(Outcome::Success { certificates, crls: vec![] })
    }
}

/// The single password as read from the store.
type SinglePassword = crate::store::StoreResult<Option<zeroize::Zeroizing<String>>>;

/// What to issue.
struct Issue<'a> {
    tid: &'a str,
    mtype: MessageType,
    fp: Fingerprint,
    renews: Option<String>,
    pending_id: Option<String>,
    consume: Option<Vec<u8>>,
    ca_template: Template,
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
    // A binding to a subject alone allows that subject and no alternative names.
    let no_sans = Vec::new();
    let sans = binding.sans.as_ref().or(binding.subject.as_ref().map(|_| &no_sans));
    if let Some(sans) = sans {
        let mut want: Vec<String> = sans.iter().map(|s| s.to_ascii_lowercase()).collect();
        let mut got: Vec<String> = crate::names::sans(csr).iter().map(|s| s.to_ascii_lowercase()).collect();
        want.sort();
        got.sort();
        if want != got {
            return Err(if sans.is_empty() {
                "the request may carry no subject alternative names".to_owned()
            } else {
                format!("the subject alternative names must be {}", sans.join(", "))
            });
        }
    }
    Ok(())
}
