//! The policy layer, tested in milliseconds: the authority's decisions (challenges of
//! each mode and their bindings, templates, renewal rules, approval, the refusals they
//! give) against an in-memory SQLite store and an in-memory CA, below the protocol's
//! cryptography: requests enter as the decrypted, verified [`Request`] the pipeline
//! hands to `decide`. The end-to-end tests drive the same decisions through real
//! clients over HTTP.

use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use scep::attr::{DigestAlg, Nonce, TransactionId};
use scep::crypto::{KeyType, PrivateKey};
use scep::csr::Csr;
use scep::request::{Body, ReplyTo, Request};
use scep::response::Outcome;
use scep::signer::SignerCert;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{SubjectAltName, name::GeneralName};
use x509_cert::name::Name;

use super::decide::Decision;
use super::enroll::{self, Answer};
use super::refusal::Refused;
use super::{AdminChallenge, Authority, Clock, Refusal, Want};
use crate::config::Config;
use crate::store::{Binding, PendingStatus, Via};
use crate::vocab::Serial;

/// A clock the tests move.
struct TestClock(Mutex<SystemTime>);

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

/// An authority on an in-memory store, configured by `toml` (scepd.toml's text).
struct Fixture {
    authority: Arc<Authority>,
    clock: Arc<TestClock>,
    next_tid: std::sync::atomic::AtomicU32,
}

async fn fixture(toml: &str) -> Fixture {
    let config = Config::from_toml(std::path::Path::new("/nonexistent"), toml).expect("config");
    let store = crate::store::SqlStore::open("sqlite::memory:", true, 1).await.expect("in-memory store");
    let clock = Arc::new(TestClock(Mutex::new(SystemTime::now())));
    let authority =
        Authority::new(crate::ca::test_ca(), Arc::new(store), Arc::new(config), clock.clone()).expect("authority");
    Fixture { authority: Arc::new(authority), clock, next_tid: 0.into() }
}

/// A device: an RSA key (from a few generated once per process) and the self-signed
/// certificate it signs its first request with.
struct Device {
    key: PrivateKey,
    self_signed: SignerCert,
}

fn device(n: usize) -> Device {
    static KEYS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        (0..3).map(|_| PrivateKey::generate(KeyType::Rsa2048).expect("key").pkcs8_der().to_vec()).collect()
    });
    let key = PrivateKey::from_pkcs8_der(&keys[n]).expect("key");
    let cert = scep::x509::scep_signer_certificate(&name("CN=throwaway"), &key).expect("signer");
    Device { self_signed: SignerCert::from_certificate(&cert).expect("signer"), key }
}

fn name(s: &str) -> Name {
    Name::from_str(s).expect("name")
}

/// A CSR for `subject`, signed by `key`, with a challenge and DNS SANs.
fn csr(key: &PrivateKey, subject: &str, challenge: Option<&str>, dns: &[&str]) -> Csr {
    let mut ext = vec![];
    if !dns.is_empty() {
        let names = dns.iter().map(|d| GeneralName::DnsName(der::asn1::Ia5String::new(d).unwrap())).collect();
        ext.push(scep::x509::subject_alt_name(SubjectAltName(names)).unwrap());
    }
    Csr::from_der(&scep::x509::csr(&name(subject), key, challenge, &ext).expect("csr")).expect("csr reads")
}

impl Fixture {
    /// Hand a decrypted request to the authority as the pipeline does, under a new
    /// transactionID, at the endpoint of `template`.
    async fn decide(&self, body: Body, signer: &SignerCert, template: Option<&str>) -> Result<Answer, Refused> {
        let n = self.next_tid.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.send(body, &format!("tid-{n}"), signer, template).await
    }

    /// A request under a chosen transactionID (a poll, a resend).
    async fn poll_as(&self, body: Body, tid: &str, signer: &SignerCert) -> Result<Answer, Refused> {
        self.send(body, tid, signer, None).await
    }

    async fn send(
        &self,
        body: Body,
        tid: &str,
        signer: &SignerCert,
        template: Option<&str>,
    ) -> Result<Answer, Refused> {
        let reply = ReplyTo {
            transaction_id: TransactionId::new(tid),
            sender_nonce: Nonce(vec![7; 16]),
            recipient: signer.clone(),
            request_cipher: None,
        };
        let pki = self.authority.pki();
        let ctx = enroll::Context {
            pki: &pki,
            requester: "192.0.2.7",
            via: Via::Post,
            template,
            note: super::audit::SharedNote::default(),
            reply: reply.clone(),
        };
        self.authority.decide(Request { reply, digest: DigestAlg::Sha256, body }, &ctx, None).await
    }

    async fn enroll(&self, csr: Csr, signer: &SignerCert) -> Result<Answer, Refused> {
        self.decide(Body::PkcsReq(csr), signer, None).await
    }

    async fn challenge(&self, binding: Binding) -> String {
        match self.authority.admin_challenge("tests", binding, Want::OneTime).await.expect("mint") {
            AdminChallenge::OneTime(m, _) => m.password.to_string(),
            _ => panic!("no one-time challenge"),
        }
    }

    fn advance(&self, by: Duration) {
        *self.clock.0.lock().unwrap() += by;
    }
}

fn issued(a: Result<Answer, Refused>) -> Certificate {
    match a {
        Ok(Answer { outcome: Outcome::Success { certificates, .. }, .. }) => certificates[0].clone(),
        Ok(Answer { outcome, .. }) => panic!("not issued: {outcome:?}"),
        Err(r) => panic!("refused: {r:?}"),
    }
}

fn refusal(a: Result<Answer, Refused>) -> Refusal {
    match a {
        Err(r) => r.refusal,
        Ok(Answer { outcome, .. }) => panic!("not refused: {outcome:?}"),
    }
}

/// A device enrolled with a one-time challenge: its key and certificate.
async fn enrolled(f: &Fixture, n: usize, subject: &str, dns: &[&str]) -> (Device, Certificate) {
    let d = device(n);
    let pw = f.challenge(Binding::default()).await;
    let cert = issued(f.enroll(csr(&d.key, subject, Some(&pw), dns), &d.self_signed).await);
    (d, cert)
}

fn signer_of(cert: &Certificate) -> SignerCert {
    SignerCert::from_certificate(cert).unwrap()
}

#[tokio::test]
async fn a_one_time_challenge_issues_once() {
    let f = fixture("").await;
    let d = device(0);
    let pw = f.challenge(Binding::default()).await;
    issued(f.enroll(csr(&d.key, "CN=dev1", Some(&pw), &[]), &d.self_signed).await);
    let again = f.enroll(csr(&d.key, "CN=dev2", Some(&pw), &[]), &d.self_signed).await;
    assert_eq!(refusal(again), Refusal::WrongChallenge);
}

#[tokio::test]
async fn missing_unknown_and_expired_challenges_are_wrong_challenges() {
    let f = fixture("").await;
    let d = device(0);
    assert_eq!(refusal(f.enroll(csr(&d.key, "CN=a", None, &[]), &d.self_signed).await), Refusal::WrongChallenge);
    assert_eq!(
        refusal(f.enroll(csr(&d.key, "CN=a", Some("0123456789ABCDEF"), &[]), &d.self_signed).await),
        Refusal::WrongChallenge
    );
    let pw = f.challenge(Binding::default()).await;
    f.advance(Duration::from_secs(61 * 60));
    assert_eq!(refusal(f.enroll(csr(&d.key, "CN=a", Some(&pw), &[]), &d.self_signed).await), Refusal::WrongChallenge);
}

#[tokio::test]
async fn wrong_challenges_past_the_limit_are_throttled_then_counted_no_more() {
    let f = fixture("[throttle]\nmax_failures = 3\n").await;
    let d = device(0);
    for _ in 0..3 {
        let r = f.enroll(csr(&d.key, "CN=a", Some("WRONG"), &[]), &d.self_signed).await;
        assert_eq!(refusal(r), Refusal::WrongChallenge);
    }
    // Even a right challenge waits for the window: the address is refused, not checked.
    let pw = f.challenge(Binding::default()).await;
    assert_eq!(refusal(f.enroll(csr(&d.key, "CN=a", Some(&pw), &[]), &d.self_signed).await), Refusal::Throttled);
}

#[tokio::test]
async fn a_binding_holds_the_subject_and_exactly_its_sans() {
    let f = fixture("").await;
    let d = device(0);
    let subject_only = Binding { subject: Some("CN=bound".into()), ..Binding::default() };
    let pw = f.challenge(subject_only.clone()).await;
    let r = f.enroll(csr(&d.key, "CN=other", Some(&pw), &[]), &d.self_signed).await;
    assert!(matches!(refusal(r), Refusal::BindingBroken(why) if why.contains("subject must be CN=bound")));
    // A subject-only binding allows no SANs.
    let r = f.enroll(csr(&d.key, "CN=bound", Some(&pw), &["x.example"]), &d.self_signed).await;
    assert!(matches!(refusal(r), Refusal::BindingBroken(why) if why.contains("no subject alternative names")));
    issued(f.enroll(csr(&d.key, "CN=bound", Some(&pw), &[]), &d.self_signed).await);

    let with_sans = Binding { sans: Some(vec!["DNS:A.example".into()]), ..Binding::default() };
    let pw = f.challenge(with_sans).await;
    let r = f.enroll(csr(&d.key, "CN=x", Some(&pw), &["a.example", "b.example"]), &d.self_signed).await;
    assert!(matches!(refusal(r), Refusal::BindingBroken(_)));
    // Names compare without regard to case.
    issued(f.enroll(csr(&d.key, "CN=x", Some(&pw), &["a.EXAMPLE"]), &d.self_signed).await);
}

#[tokio::test]
async fn a_binding_to_an_unknown_template_or_a_bad_name_is_not_minted() {
    let f = fixture("").await;
    for binding in [
        Binding { template: Some("nope".into()), ..Binding::default() },
        Binding { subject: Some("not a name".into()), ..Binding::default() },
        Binding { sans: Some(vec!["ftp:x".into()]), ..Binding::default() },
    ] {
        let got = f.authority.admin_challenge("tests", binding, Want::OneTime).await.unwrap();
        assert!(matches!(got, AdminChallenge::BadBinding(_)));
    }
}

#[tokio::test]
async fn the_cache_of_one_time_challenges_is_bounded() {
    let f = fixture("[challenge]\npassword_max = 2\n").await;
    f.challenge(Binding::default()).await;
    f.challenge(Binding::default()).await;
    let got = f.authority.admin_challenge("tests", Binding::default(), Want::OneTime).await.unwrap();
    assert!(matches!(got, AdminChallenge::CacheFull(2)));
}

#[tokio::test]
async fn single_mode_takes_its_one_password_and_binds_nothing() {
    let f = fixture("[challenge]\nmode = \"single\"\n").await;
    let d = device(0);
    let pw = match f.authority.admin_challenge("tests", Binding::default(), Want::WhatTheModeGives).await.unwrap() {
        AdminChallenge::Single(p) => p.to_string(),
        _ => panic!("no single password"),
    };
    issued(f.enroll(csr(&d.key, "CN=a", Some(&pw), &[]), &d.self_signed).await);
    issued(f.enroll(csr(&d.key, "CN=b", Some(&pw), &[]), &d.self_signed).await);
    assert_eq!(
        refusal(f.enroll(csr(&d.key, "CN=c", Some("WRONG"), &[]), &d.self_signed).await),
        Refusal::WrongChallenge
    );
    let bound = Binding { subject: Some("CN=x".into()), ..Binding::default() };
    let got = f.authority.admin_challenge("tests", bound, Want::WhatTheModeGives).await.unwrap();
    assert!(matches!(got, AdminChallenge::Unbindable(_)), "a binding never silently falls away");
    let got = f.authority.admin_challenge("tests", Binding::default(), Want::OneTime).await.unwrap();
    assert!(matches!(got, AdminChallenge::NotIssued(_)), "the API never hands out the single password");
}

#[tokio::test]
async fn mode_none_issues_without_a_challenge() {
    let f = fixture("[challenge]\nmode = \"none\"\n").await;
    let d = device(0);
    issued(f.enroll(csr(&d.key, "CN=a", None, &[]), &d.self_signed).await);
}

#[tokio::test]
async fn a_pkcsreq_must_be_signed_with_its_csrs_key() {
    let f = fixture("").await;
    let (a, b) = (device(0), device(1));
    let pw = f.challenge(Binding::default()).await;
    assert_eq!(refusal(f.enroll(csr(&a.key, "CN=a", Some(&pw), &[]), &b.self_signed).await), Refusal::ForeignSigner);
    let f = fixture("[scep]\nallow_foreign_signers = true\n").await;
    let pw = f.challenge(Binding::default()).await;
    issued(f.enroll(csr(&a.key, "CN=a", Some(&pw), &[]), &b.self_signed).await);
}

#[tokio::test]
async fn the_signer_must_hold_an_rsa_key() {
    let f = fixture("").await;
    let ec = PrivateKey::generate(KeyType::EcP256).unwrap();
    let cert = scep::x509::scep_signer_certificate(&name("CN=ec"), &ec).unwrap();
    let pw = f.challenge(Binding::default()).await;
    let r = f.enroll(csr(&ec, "CN=ec", Some(&pw), &[]), &signer_of(&cert)).await;
    assert_eq!(refusal(r), Refusal::SignerNotRsa);
}

#[tokio::test]
async fn long_subjects_and_many_sans_are_refused() {
    let f = fixture("").await;
    let d = device(0);
    let long = format!("CN={}", "x".repeat(1100));
    assert_eq!(refusal(f.enroll(csr(&d.key, &long, None, &[]), &d.self_signed).await), Refusal::SubjectTooLong);
    let names: Vec<String> = (0..101).map(|i| format!("h{i}.example")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(refusal(f.enroll(csr(&d.key, "CN=a", None, &names), &d.self_signed).await), Refusal::TooManySans);
}

#[tokio::test]
async fn template_rules_refuse_with_the_rule() {
    let f = fixture("[templates.vpn]\nrequired_subject = [\"O\"]\nsan_patterns = ['DNS:.*\\.vpn\\.example']\n").await;
    let d = device(0);
    let pw = f.challenge(Binding::default()).await;
    let r = f.decide(Body::PkcsReq(csr(&d.key, "CN=a", Some(&pw), &[])), &d.self_signed, Some("vpn")).await;
    assert!(matches!(refusal(r), Refusal::TemplateRule(rule) if rule.contains('O')));
    let r =
        f.decide(Body::PkcsReq(csr(&d.key, "CN=a,O=x", Some(&pw), &["a.other"])), &d.self_signed, Some("vpn")).await;
    assert!(matches!(refusal(r), Refusal::TemplateRule(_)));
    let ok = csr(&d.key, "CN=a,O=x", Some(&pw), &["a.vpn.example"]);
    issued(f.decide(Body::PkcsReq(ok), &d.self_signed, Some("vpn")).await);
}

#[tokio::test]
async fn a_renewal_needs_no_challenge_and_keeps_its_names_and_template() {
    let f = fixture("[templates.vpn]\nvalidity_days = 30\n").await;
    let (d, cert) = enrolled(&f, 0, "CN=dev", &["dev.example"]).await;
    let signer = signer_of(&cert);
    // Other names: refused.
    let r = f.decide(Body::RenewalReq(csr(&d.key, "CN=other", None, &["dev.example"])), &signer, None).await;
    assert_eq!(refusal(r), Refusal::RenewalChangesNames);
    let r = f.decide(Body::RenewalReq(csr(&d.key, "CN=dev", None, &[])), &signer, None).await;
    assert_eq!(refusal(r), Refusal::RenewalChangesNames);
    // Another template's endpoint: refused, naming the template it keeps.
    let r = f.decide(Body::RenewalReq(csr(&d.key, "CN=dev", None, &["dev.example"])), &signer, Some("vpn")).await;
    assert_eq!(refusal(r), Refusal::RenewalOtherTemplate("default".into()));
    // Same names, a new key, no challenge: issued.
    let new = device(1);
    let renewed =
        issued(f.decide(Body::RenewalReq(csr(&new.key, "CN=dev", None, &["dev.example"])), &signer, None).await);
    assert_eq!(renewed.tbs_certificate().subject(), cert.tbs_certificate().subject());
    // The renewed certificate does not renew again (a second line of certificates).
    let r = f.decide(Body::RenewalReq(csr(&d.key, "CN=dev", None, &["dev.example"])), &signer, None).await;
    assert_eq!(refusal(r), Refusal::RenewalRepeated);
    // Its successor does.
    let successor = signer_of(&renewed);
    issued(f.decide(Body::RenewalReq(csr(&new.key, "CN=dev", None, &["dev.example"])), &successor, None).await);
}

#[tokio::test]
async fn a_renewal_by_a_revoked_or_long_expired_certificate_is_refused() {
    let f = fixture("[templates.default]\nvalidity_days = 10\n[renewal]\ngrace_days = 5\n").await;
    let (d, cert) = enrolled(&f, 0, "CN=dev", &[]).await;
    let (e, other) = enrolled(&f, 1, "CN=dev2", &[]).await;
    f.authority.revoke(&Serial::of(&other), None).await.unwrap();
    let r = f.decide(Body::RenewalReq(csr(&e.key, "CN=dev2", None, &[])), &signer_of(&other), None).await;
    assert_eq!(refusal(r), Refusal::RenewalSignerRevoked);
    f.advance(Duration::from_secs(16 * 86_400));
    let r = f.decide(Body::RenewalReq(csr(&d.key, "CN=dev", None, &[])), &signer_of(&cert), None).await;
    assert_eq!(refusal(r), Refusal::RenewalSignerNotValid(5));
}

#[tokio::test]
async fn a_renewalreq_must_be_signed_by_a_certificate_of_this_ca() {
    let f = fixture("").await;
    let d = device(0);
    let r = f.decide(Body::RenewalReq(csr(&d.key, "CN=a", None, &[])), &d.self_signed, None).await;
    assert_eq!(refusal(r), Refusal::RenewalNotOurs);
}

#[tokio::test]
async fn manual_approval_waits_then_issues_or_refuses_at_the_next_poll() {
    let f = fixture("[templates.default]\napproval = \"manual\"\n").await;
    let d = device(0);
    let pw = f.challenge(Binding::default()).await;
    let first = f.enroll(csr(&d.key, "CN=waits", Some(&pw), &[]), &d.self_signed).await.unwrap();
    assert!(matches!(first.outcome, Outcome::Pending));
    let waiting = f.authority.pending_requests(Some(PendingStatus::Pending)).await.unwrap();
    assert_eq!(waiting.len(), 1);
    let row = &waiting[0];
    let poll = |tid: &str| {
        let body = Body::CertPoll(scep::request::IssuerAndSubject {
            issuer: f.authority.pki().ca.ca.cert.tbs_certificate().subject().clone(),
            subject: name(&row.subject),
        });
        (body, tid.to_owned())
    };
    // The poll must repeat the transaction: poll through the store's transactionID.
    let (body, tid) = poll(&row.transaction_id);
    let again = f.poll_as(body, &tid, &d.self_signed).await.unwrap();
    assert!(matches!(again.outcome, Outcome::Pending));
    f.authority.decide_pending(&row.id, Decision::Approve, "admin", Via::Cli).await.unwrap();
    let (body, tid) = poll(&row.transaction_id);
    issued(f.poll_as(body, &tid, &d.self_signed).await);
    // Someone else's key learns nothing.
    let (body, tid) = poll(&row.transaction_id);
    assert_eq!(refusal(f.poll_as(body, &tid, &device(1).self_signed).await), Refusal::Unmatched);

    let pw = f.challenge(Binding::default()).await;
    f.enroll(csr(&d.key, "CN=refused", Some(&pw), &[]), &d.self_signed).await.unwrap();
    let row = f.authority.pending_requests(Some(PendingStatus::Pending)).await.unwrap().remove(0);
    f.authority.decide_pending(&row.id, Decision::Reject, "admin", Via::Cli).await.unwrap();
    let body = Body::CertPoll(scep::request::IssuerAndSubject {
        issuer: f.authority.pki().ca.ca.cert.tbs_certificate().subject().clone(),
        subject: name(&row.subject),
    });
    assert_eq!(refusal(f.poll_as(body, &row.transaction_id, &d.self_signed).await), Refusal::RejectedByAdmin);
    // A decided request is decided once.
    assert!(f.authority.decide_pending(&row.id, Decision::Approve, "admin", Via::Cli).await.is_err());
}

#[tokio::test]
async fn a_resent_request_gets_the_same_certificate() {
    let f = fixture("").await;
    let d = device(0);
    let pw = f.challenge(Binding::default()).await;
    let req = csr(&d.key, "CN=resent", Some(&pw), &[]);
    let first = issued(f.poll_as(Body::PkcsReq(req.clone()), "same", &d.self_signed).await);
    // The challenge is used, yet the same transaction, signer and CSR get their certificate again.
    let second = issued(f.poll_as(Body::PkcsReq(req), "same", &d.self_signed).await);
    assert_eq!(first, second);
}

/// A webhook that records what it is told.
#[derive(Default)]
struct Recorder(Mutex<Vec<super::webhook::Event>>);

#[async_trait::async_trait]
impl super::webhook::Webhook for Recorder {
    async fn verify(&self, _: &super::webhook::VerifyRequest) -> super::webhook::Decision {
        super::webhook::Decision::Unavailable("not a verifier".into())
    }
    fn enqueue(&self, event: super::webhook::Event) {
        self.0.lock().unwrap().push(event);
    }
}

#[tokio::test]
async fn a_decision_is_audited_and_notified_with_the_authoritys_clock() {
    let config =
        Config::from_toml(std::path::Path::new("/nonexistent"), "[templates.default]\napproval = \"manual\"\n");
    let store = crate::store::SqlStore::open("sqlite::memory:", true, 1).await.unwrap();
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
    let clock = Arc::new(TestClock(Mutex::new(at)));
    let recorder = Arc::new(Recorder::default());
    let authority = Authority::new(crate::ca::test_ca(), Arc::new(store), Arc::new(config.unwrap()), clock.clone())
        .unwrap()
        .with_webhook(recorder.clone());
    let f = Fixture { authority: Arc::new(authority), clock, next_tid: 0.into() };
    let d = device(0);
    let pw = f.challenge(Binding::default()).await;
    f.enroll(csr(&d.key, "CN=waits", Some(&pw), &[]), &d.self_signed).await.unwrap();
    let row = f.authority.pending_requests(Some(PendingStatus::Pending)).await.unwrap().remove(0);
    f.authority.decide_pending(&row.id, Decision::Reject, "alice", Via::Console).await.unwrap();

    let audit = f.authority.audit(&crate::store::AuditFilter::default()).await.unwrap();
    let entry = audit.iter().find(|e| e.outcome == crate::store::AuditOutcome::Rejected).expect("audited");
    assert_eq!((entry.at, entry.via), (2_000_000_000, Via::Console));
    let events = recorder.0.lock().unwrap().clone();
    assert!(events.iter().any(|e| matches!(e,
        super::webhook::Event::Decided { status: PendingStatus::Rejected, by, via: Via::Console, .. } if by == "alice")));
    let rows = f.authority.pending_requests(Some(PendingStatus::Rejected)).await.unwrap();
    assert_eq!(rows[0].decided_at, Some(2_000_000_000));
}
