//! The store's semantics, the same tests on SQLite and on a real PostgreSQL: every
//! method atomic, a challenge consumed once, serials unique, CRL numbers taken once.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::sync::Arc;

use scep_server::store::{
    self, Binding, ChallengeState, ChallengeStatus, CrlRow, Earlier, EarlierRecord, IssuedRecord, NewChallenge,
    NewUser, PendingRow, PendingStatus, RecordError, RevokeOutcome, Store,
};

const NOW: i64 = 1_800_000_000;

fn record(serial: &str, tid: &str) -> IssuedRecord {
    IssuedRecord {
        serial: serial.into(),
        ca_id: "ca1".into(),
        subject: "CN=x".into(),
        sans: vec!["DNS:x.example".into()],
        not_before: NOW,
        not_after: NOW + 86_400,
        issued_at: NOW,
        transaction_id: tid.into(),
        message_type: "PKCSReq".into(),
        signer_sha256: vec![1; 32],
        csr_sha256: vec![2; 32],
        requester: "127.0.0.1".into(),
        template: "default".into(),
        renews_serial: None,
        pending_id: None,
        der: vec![0x30, 0],
    }
}

fn challenge(id: &str, hash: u8, expires: i64) -> NewChallenge {
    NewChallenge {
        id: id.into(),
        hash: vec![hash; 32],
        created_at: NOW,
        expires_at: expires,
        created_by: "test".into(),
        binding: Binding { subject: Some("CN=x".into()), sans: None, template: None },
    }
}

async fn suite(s: Arc<dyn Store>) {
    // Challenges: the cache limit, states, one consumption.
    for i in 0..3u8 {
        assert!(s.create_challenge(challenge(&format!("c{i}"), i, NOW + 3600), NOW, 3).await.unwrap());
    }
    assert!(!s.create_challenge(challenge("c9", 9, NOW + 3600), NOW, 3).await.unwrap(), "cache full");
    assert!(
        matches!(s.challenge_state(&[0; 32], NOW).await.unwrap(), ChallengeState::Valid(id, b) if id == "c0" && b.subject.as_deref() == Some("CN=x"))
    );
    assert_eq!(
        s.challenge_state(&[0; 32], NOW + 3600).await.unwrap(),
        ChallengeState::Unusable(ChallengeStatus::Expired)
    );
    assert_eq!(s.challenge_state(&[7; 32], NOW).await.unwrap(), ChallengeState::Unknown);
    assert!(s.revoke_challenge("c1", NOW).await.unwrap());
    assert!(!s.revoke_challenge("c1", NOW).await.unwrap());
    assert_eq!(s.challenge("c1", NOW).await.unwrap().unwrap().status, ChallengeStatus::Revoked);
    assert_eq!(s.list_challenges(NOW).await.unwrap().len(), 2);

    // Twenty concurrent issuances with one challenge: exactly one is recorded.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.record_issued(record(&format!("A{i:02}"), "T"), Some((&[0; 32], NOW))).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(RecordError::ChallengeGone) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(s.count_certificates().await.unwrap(), 1);
    let c0 = s.challenge("c0", NOW).await.unwrap().unwrap();
    assert_eq!(c0.status, ChallengeStatus::Used);
    assert!(c0.used_serial.unwrap().starts_with('A'));
    // A used challenge frees its place in the cache.
    assert!(s.create_challenge(challenge("c3", 3, NOW + 3600), NOW, 3).await.unwrap());

    // Serials are unique.
    s.record_issued(record("B1", "T2"), None).await.unwrap();
    assert!(matches!(s.record_issued(record("B1", "T3"), None).await, Err(RecordError::DuplicateSerial)));
    let issued = Earlier { csr_sha256: vec![2; 32], record: EarlierRecord::Issued("B1".into()) };
    assert_eq!(s.earlier("T2", &[1; 32]).await.unwrap(), vec![issued]);
    assert!(s.earlier("T2", &[9; 32]).await.unwrap().is_empty());
    assert_eq!(s.issued_for_poll("T2", "CN=x").await.unwrap().unwrap().serial, "B1");
    assert_eq!(s.certificate("B1").await.unwrap().unwrap().sans, vec!["DNS:x.example".to_owned()]);
    // Search in SQL: subject substring in any ASCII case, or the exact serial; LIKE's
    // wildcards are plain characters; renewals are found by what they renew.
    let mut odd = record("S1", "T4");
    odd.subject = "CN=Printer_100%,O=Example".into();
    odd.renews_serial = Some("B1".into());
    s.record_issued(odd, None).await.unwrap();
    let serials = |rows: Vec<store::CertificateRow>| rows.into_iter().map(|r| r.serial).collect::<Vec<_>>();
    assert_eq!(serials(s.search_certificates("printer_100%", 10).await.unwrap()), ["S1"]);
    assert!(s.search_certificates("printer%100", 10).await.unwrap().is_empty());
    assert!(s.search_certificates("_", 10).await.unwrap().iter().all(|r| r.subject.contains('_')));
    assert_eq!(serials(s.search_certificates("b1", 10).await.unwrap()), ["B1"]);
    assert_eq!(s.renewed_by("B1").await.unwrap().as_deref(), Some("S1"));
    assert_eq!(s.renewed_by("S1").await.unwrap(), None);

    // Revocation and CRL numbers.
    assert_eq!(s.revoke("B1", Some(1), NOW).await.unwrap(), RevokeOutcome::Revoked);
    assert_eq!(s.revoke("B1", Some(1), NOW).await.unwrap(), RevokeOutcome::AlreadyRevoked);
    assert_eq!(s.revoke("NOPE", None, NOW).await.unwrap(), RevokeOutcome::NotFound);
    let revoked = s.revoked("ca1").await.unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].reason, Some(1));
    let crl = CrlRow { number: 1, this_update: NOW, next_update: NOW + 10, der: vec![1] };
    assert!(s.record_crl("ca1", &crl).await.unwrap());
    assert!(!s.record_crl("ca1", &crl).await.unwrap(), "a CRL number is taken once");
    assert_eq!(s.latest_crl("ca1").await.unwrap().unwrap().number, 1);

    // Pending requests.
    let p = PendingRow {
        id: "p1".into(),
        transaction_id: "TP".into(),
        signer_sha256: vec![3; 32],
        csr_sha256: vec![4; 32],
        csr: vec![5],
        signer_der: vec![6],
        subject: "CN=p".into(),
        sans: vec![],
        requester: "127.0.0.1".into(),
        template: "default".into(),
        message_type: "PKCSReq".into(),
        renews_serial: None,
        challenge_id: Some("c2".into()),
        status: PendingStatus::Pending,
        created_at: NOW,
        decided_at: None,
        decided_by: None,
        serial: None,
    };
    s.record_pending(&p, Some((&[2; 32], NOW))).await.unwrap();
    assert!(matches!(
        s.record_pending(&PendingRow { id: "p2".into(), ..p.clone() }, Some((&[2; 32], NOW))).await,
        Err(RecordError::ChallengeGone)
    ));
    let pending = Earlier { csr_sha256: vec![4; 32], record: EarlierRecord::Pending("p1".into()) };
    assert_eq!(s.earlier("TP", &[3; 32]).await.unwrap(), vec![pending]);
    assert_eq!(s.list_pending(Some(PendingStatus::Pending)).await.unwrap().len(), 1);
    assert!(s.decide_pending("p1", true, "admin", NOW).await.unwrap());
    assert!(!s.decide_pending("p1", false, "admin", NOW).await.unwrap());
    let mut done = record("C1", "TP");
    done.pending_id = Some("p1".into());
    s.record_issued(done.clone(), None).await.unwrap();
    let mut again = done;
    again.serial = "C2".into();
    assert!(
        matches!(s.record_issued(again, None).await, Err(RecordError::ChallengeGone)),
        "an approval completes once"
    );
    assert_eq!(s.pending("p1").await.unwrap().unwrap().serial.as_deref(), Some("C1"));

    // Users and settings.
    let perms = ["enroll".to_owned()];
    let user = NewUser { name: "u", password_hash: "h1", nt_secret: Some(b"sealed"), permissions: &perms };
    assert!(s.add_user(&user, NOW).await.unwrap());
    assert!(!s.add_user(&NewUser { password_hash: "h2", nt_secret: None, ..user }, NOW).await.unwrap());
    assert_eq!(s.user("u").await.unwrap().unwrap().nt_secret.as_deref(), Some(&b"sealed"[..]));
    assert!(s.set_user_password("u", "h3", None).await.unwrap());
    let row = s.user("u").await.unwrap().unwrap();
    assert_eq!((row.password_hash.as_str(), row.nt_secret), ("h3", None));
    assert_eq!(s.list_users().await.unwrap().len(), 1);
    assert!(s.remove_user("u").await.unwrap());
    s.put_setting("k", b"v1", NOW).await.unwrap();
    s.put_setting("k", b"v2", NOW).await.unwrap();
    assert_eq!(s.setting("k").await.unwrap().unwrap(), b"v2");
    s.ping().await.unwrap();
}

#[tokio::test]
async fn store_semantics_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    suite(store::open(&url, true).await.unwrap()).await;
}

#[tokio::test]
async fn store_semantics_on_postgresql() {
    let Some(url) = common::postgres_database().await else { return };
    suite(store::open(&url, true).await.unwrap()).await;
}

#[tokio::test]
async fn migrations_run_twice_without_harm() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    store::open(&url, true).await.unwrap();
    store::open(&url, true).await.unwrap();
    if let Some(url) = common::postgres_database().await {
        store::open(&url, true).await.unwrap();
        store::open(&url, true).await.unwrap();
    }
}
