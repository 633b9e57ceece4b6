//! The certificate lifecycle end to end: renewal three ways, templates, manual
//! approval, revocation and CRLs, CA rollover and RA renewal.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Server, openssl_verify, run_scepclient, scepd};
use scep::attr::{FailInfo, MessageType};
use scep::crypto::{KeyType, PrivateKey};
use scep_client::{EnrollOptions, Enrolled, ScepClient, ScepError, pem};

fn serial_hex(e: &Enrolled) -> String {
    hex::encode_upper(e.certificate.tbs_certificate().serial_number().as_bytes())
}

async fn enroll(server: &Server, subject: &str, key: &PrivateKey) -> Enrolled {
    ScepClient::new(&server.url())
        .enroll(key, &EnrollOptions::new(subject).challenge(&server.challenge()))
        .await
        .unwrap()
}

fn row<'a>(rows: &'a [serde_json::Value], serial: &str) -> &'a serde_json::Value {
    rows.iter().find(|r| r["serial"] == serial).unwrap()
}

fn dir_arg(server: &Server) -> String {
    server.data_dir().to_str().unwrap().to_owned()
}

#[test]
fn scepclient_renews_with_renewal_req_and_no_challenge() {
    let server = Server::start(|_| {});
    let pw = server.challenge();
    let (ok, out, dir) = run_scepclient(&server.url(), "renewing", &pw, &[]);
    assert!(ok, "{out}");
    let old = std::fs::read(dir.path().join("client.pem")).unwrap();
    // Same directory: scepclient reuses its CSR (with the used challenge) and key, and
    // signs a RenewalReq with the current certificate.
    let out = Command::new("scepclient")
        .current_dir(dir.path())
        .args([
            "-server-url",
            &server.url(),
            "-private-key",
            "key.pem",
            "-cn",
            "renewing",
            "-certificate",
            "client.pem",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let new = std::fs::read(dir.path().join("client.pem")).unwrap();
    assert_ne!(old, new);
    assert!(openssl_verify(&server.data_dir().join("ca.pem"), &dir.path().join("client.pem")));
    let rows = server.certificates();
    assert_eq!(rows.len(), 2);
    let renewed = rows.iter().find(|r| !r["renews_serial"].is_null()).unwrap();
    assert!(rows.iter().any(|r| r["serial"] == renewed["renews_serial"]));
}

#[tokio::test]
async fn pkcsreq_signed_by_an_issued_certificate_renews_with_the_same_or_a_new_key() {
    let server = Server::start(|_| {});
    let client = ScepClient::new(&server.url());
    let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let first = enroll(&server, "CN=laptop-1,O=Example", &key).await;
    let opts = EnrollOptions::new("CN=laptop-1,O=Example").challenge("an old used challenge");
    // Same key, PKCSReq.
    let same = client.renew(&key, &first.certificate, &key, &opts, MessageType::PkcsReq).await.unwrap();
    // New key, PKCSReq signed by the old certificate and old key.
    let new_key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let fresh = client.renew(&new_key, &same.certificate, &key, &opts, MessageType::PkcsReq).await.unwrap();
    assert_eq!(
        *fresh.certificate.tbs_certificate().subject_public_key_info(),
        scep::crypto::Signer::public_key(&new_key)
    );
    // And RenewalReq.
    client.renew(&new_key, &fresh.certificate, &new_key, &opts, MessageType::RenewalReq).await.unwrap();
    let rows = server.certificates();
    assert_eq!(rows.len(), 4);
    assert_eq!(row(&rows, &serial_hex(&same))["renews_serial"], serial_hex(&first).as_str());
    assert_eq!(row(&rows, &serial_hex(&fresh))["renews_serial"], serial_hex(&same).as_str());
}

#[tokio::test]
async fn a_renewal_must_keep_its_subject_unless_allowed() {
    for allow in [false, true] {
        let server = Server::start(|cfg| {
            if allow {
                *cfg = cfg.replace("allow_subject_change = false", "allow_subject_change = true");
            }
        });
        let client = ScepClient::new(&server.url());
        let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
        let first = enroll(&server, "CN=router-9", &key).await;
        let r = client
            .renew(&key, &first.certificate, &key, &EnrollOptions::new("CN=router-10"), MessageType::RenewalReq)
            .await;
        match (allow, r) {
            (false, Err(ScepError::Failure { info: FailInfo::BadRequest, text })) => {
                assert!(text.contains("keep the subject"), "{text}")
            }
            (true, Ok(e)) => assert!(e.certificate.tbs_certificate().subject().to_string().contains("router-10")),
            (a, other) => panic!("allow={a}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn revoked_and_foreign_signers_cannot_renew() {
    let server = Server::start(|_| {});
    let other = Server::start(|_| {});
    let client = ScepClient::new(&server.url());
    let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let first = enroll(&server, "CN=phone", &key).await;
    let out =
        scepd(&["cert", "revoke", &serial_hex(&first), "--reason", "keyCompromise", "--data-dir", &dir_arg(&server)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r =
        client.renew(&key, &first.certificate, &key, &EnrollOptions::new("CN=phone"), MessageType::RenewalReq).await;
    assert!(matches!(&r, Err(ScepError::Failure { text, .. }) if text.contains("revoked")), "{r:?}");
    // A certificate from another CA is no renewal signer.
    let foreign = enroll(&other, "CN=phone", &key).await;
    let r =
        client.renew(&key, &foreign.certificate, &key, &EnrollOptions::new("CN=phone"), MessageType::RenewalReq).await;
    assert!(
        matches!(&r, Err(ScepError::Failure { text, .. }) if text.contains("must be signed by a certificate this CA issued")),
        "{r:?}"
    );
    let r = client.renew(&key, &foreign.certificate, &key, &EnrollOptions::new("CN=phone"), MessageType::PkcsReq).await;
    assert!(matches!(&r, Err(ScepError::Failure { info: FailInfo::BadRequest, .. })), "{r:?}");
    assert_eq!(server.certificates().len(), 1);
}

#[tokio::test]
async fn manual_approval_answers_pending_until_an_administrator_decides() {
    let server = Server::start(|cfg| *cfg = cfg.replace("approval = \"auto\"", "approval = \"manual\""));
    let url = server.url();
    let dir = dir_arg(&server);
    let pending_id = |status: &str| -> Option<String> {
        let out = scepd(&["request", "list", "--status", status, "--json", "--data-dir", &dir]);
        let v: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        v.first().map(|r| r["id"].as_str().unwrap().to_owned())
    };

    // Approved: the client polls (CertPoll) until it gets its certificate.
    let pw = server.challenge();
    let waiting = tokio::spawn(async move {
        let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
        let mut opts = EnrollOptions::new("CN=needs-approval").challenge(&pw);
        opts.poll_interval = Duration::from_millis(200);
        opts.max_wait = Duration::from_secs(30);
        ScepClient::new(&url).enroll(&key, &opts).await
    });
    let mut id = None;
    for _ in 0..100 {
        id = pending_id("pending");
        if id.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let id = id.expect("a pending request");
    assert!(server.certificates().is_empty());
    let out = scepd(&["request", "approve", &id, "--data-dir", &dir]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = waiting.await.unwrap().unwrap();
    assert!(got.polls >= 1);
    assert_eq!(server.certificates().len(), 1);
    // The challenge used at submission is linked to the certificate issued after approval.
    assert!(server.certificates()[0]["challenge_id"].is_string());

    // A resent PKCSReq (the same bytes) finds its pending request, then its certificate.
    let cas = ScepClient::new(&server.url()).ca_certs().await.unwrap();
    let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let subject: x509_cert::name::Name = "CN=resent".parse().unwrap();
    let csr = scep::x509::csr(&subject, &key, Some(&server.challenge()), &[]).unwrap();
    let signer =
        scep::signer::SignerCert::from_certificate(&scep::x509::scep_signer_certificate(&subject, &key).unwrap())
            .unwrap();
    let msg = scep::request::RequestBuilder {
        message_type: MessageType::PkcsReq,
        transaction_id: scep::attr::TransactionId::new("RESENT-1"),
        sender_nonce: scep::attr::Nonce(vec![4; 16]),
        body: &csr,
        recipient: &cas.encryption,
        cipher: scep::attr::ContentCipher::Aes128,
        signer: &key,
        signer_cert: &signer,
    }
    .build()
    .unwrap();
    let http = scep_client::http::HttpClient::default();
    let send = || async {
        let r = http
            .post(&format!("{}?operation=PKIOperation", server.url()), "application/x-pki-message", msg.clone())
            .await
            .unwrap();
        scep::response::ParsedCertRep::parse(&r.body, &cas.all, &signer, &key).unwrap().outcome
    };
    assert!(matches!(send().await, scep::response::Outcome::Pending));
    assert!(matches!(send().await, scep::response::Outcome::Pending));
    let id = pending_id("pending").unwrap();
    assert!(scepd(&["request", "approve", &id, "--data-dir", &dir]).status.success());
    let scep::response::Outcome::Success { certificates, .. } = send().await else { panic!("not issued") };
    let scep::response::Outcome::Success { certificates: again, .. } = send().await else { panic!("not issued") };
    assert_eq!(certificates[0], again[0]);
    assert_eq!(server.certificates().len(), 2);

    // Rejected while the client polls: it gets FAILURE.
    let pw = server.challenge();
    let url = server.url();
    let waiting = tokio::spawn(async move {
        let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
        let mut opts = EnrollOptions::new("CN=rejected").challenge(&pw);
        opts.poll_interval = Duration::from_millis(200);
        opts.max_wait = Duration::from_secs(30);
        ScepClient::new(&url).enroll(&key, &opts).await
    });
    let mut id = None;
    for _ in 0..100 {
        id = pending_id("pending");
        if id.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(scepd(&["request", "reject", &id.unwrap(), "--data-dir", &dir]).status.success());
    let r = waiting.await.unwrap();
    assert!(matches!(&r, Err(ScepError::Failure { text, .. }) if text.contains("rejected")), "{r:?}");
    assert_eq!(server.certificates().len(), 2);
}

#[tokio::test]
async fn revocation_shows_in_getcrl_and_the_http_crl_verified_by_openssl() {
    let server = Server::start(|cfg| {
        *cfg = cfg.replace("# base_url = \"http://scep.example.com\"", "base_url = \"http://scep.example.com\"")
    });
    let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let got = enroll(&server, "CN=to-revoke", &key).await;
    let serial = serial_hex(&got);
    let tmp = tempfile::tempdir().unwrap();
    let cert_path = tmp.path().join("cert.pem");
    std::fs::write(&cert_path, pem::certs_pem(std::slice::from_ref(&got.certificate)).unwrap()).unwrap();
    let text = String::from_utf8(
        Command::new("openssl")
            .args(["x509", "-noout", "-ext", "crlDistributionPoints", "-in"])
            .arg(&cert_path)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(text.contains("URI:http://scep.example.com/crl/"), "{text}");

    assert!(
        scepd(&["cert", "revoke", &serial, "--reason", "superseded", "--data-dir", &dir_arg(&server)]).status.success()
    );
    let check = |der: &[u8]| {
        let f = tmp.path().join("crl.der");
        std::fs::write(&f, der).unwrap();
        let out = Command::new("openssl")
            .args(["crl", "-inform", "DER", "-noout", "-text", "-CAfile"])
            .arg(server.data_dir().join("ca.pem"))
            .arg("-in")
            .arg(&f)
            .output()
            .unwrap();
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(all.contains("verify OK"), "{all}");
        assert!(all.contains(&format!("Serial Number: {serial}")), "{all}");
        assert!(all.contains("Superseded"), "{all}");
    };
    // Over HTTP.
    let http = scep_client::http::HttpClient::default();
    let r = http.get(&format!("{}/crl/ca.crl", server.base), &[]).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type.as_deref(), Some("application/pkix-crl"));
    check(&r.body);
    // Over SCEP: GetCRL.
    let crl = ScepClient::new(&server.url())
        .get_crl(got.certificate.tbs_certificate().serial_number().as_bytes())
        .await
        .unwrap();
    check(&der::Encode::to_der(&crl).unwrap());
    // GetCert finds the certificate by serial.
    let fetched = ScepClient::new(&server.url())
        .get_cert(got.certificate.tbs_certificate().serial_number().as_bytes())
        .await
        .unwrap();
    assert_eq!(fetched, got.certificate);
    assert_eq!(row(&server.certificates(), &serial)["status"], "revoked");
}

#[tokio::test]
async fn templates_are_chosen_by_endpoint_and_their_rules_are_enforced() {
    let server = Server::start(|cfg| {
        cfg.push_str(
            "\n[templates.vpn]\nvalidity_days = 30\nextended_key_usage = [\"clientAuth\", \"ipsecIKE\"]\nmin_rsa_bits = 3072\nrequired_subject = [\"O\"]\nsan_patterns = ['DNS:.*\\.vpn\\.example\\.com']\n",
        )
    });
    let client = ScepClient::new(&format!("{}/scep/vpn", server.base));
    let small = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let r = client.enroll(&small, &EnrollOptions::new("CN=gw,O=Example").challenge(&server.challenge())).await;
    assert!(
        matches!(&r, Err(ScepError::Failure { info: FailInfo::BadRequest, text }) if text.contains("3072")),
        "{r:?}"
    );
    let key = PrivateKey::generate(KeyType::Rsa3072).unwrap();
    let r = client.enroll(&key, &EnrollOptions::new("CN=gw").challenge(&server.challenge())).await;
    assert!(matches!(&r, Err(ScepError::Failure { text, .. }) if text.contains("subject with O")), "{r:?}");
    let mut opts = EnrollOptions::new("CN=gw,O=Example").challenge(&server.challenge());
    opts.dns = vec!["gw.example.org".into()];
    let r = client.enroll(&key, &opts).await;
    assert!(matches!(&r, Err(ScepError::Failure { text, .. }) if text.contains("DNS:gw.example.org")), "{r:?}");
    let mut opts = EnrollOptions::new("CN=gw,O=Example").challenge(&server.challenge());
    opts.dns = vec!["gw.vpn.example.com".into()];
    let got = client.enroll(&key, &opts).await.unwrap();
    let v = got.certificate.tbs_certificate().validity();
    let days = (v.not_after.to_unix_duration() - v.not_before.to_unix_duration()).as_secs() / 86_400;
    assert_eq!(days, 30);
    let rows = server.certificates();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["template"], "vpn");
}

#[tokio::test]
async fn a_renewal_keeps_its_template_and_cannot_climb_to_another() {
    let server = Server::start(|cfg| {
        cfg.push_str(
            "\n[templates.short]\nvalidity_days = 7\n\n[templates.long]\nvalidity_days = 700\nextended_key_usage = [\"clientAuth\", \"serverAuth\", \"ipsecIKE\"]\n",
        )
    });
    let short = ScepClient::new(&format!("{}/scep/short", server.base));
    let long = ScepClient::new(&format!("{}/scep/long", server.base));
    let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let opts = EnrollOptions::new("CN=climber");
    let got = short.enroll(&key, &opts.clone().challenge(&server.challenge())).await.unwrap();
    // Signed by the short-lived certificate, sent to the long template: refused, as
    // RenewalReq and as a renewal PKCSReq, with or without a challenge.
    for mtype in [MessageType::RenewalReq, MessageType::PkcsReq] {
        for o in [opts.clone(), opts.clone().challenge(&server.challenge())] {
            let r = long.renew(&key, &got.certificate, &key, &o, mtype).await;
            assert!(
                matches!(&r, Err(ScepError::Failure { info: FailInfo::BadRequest, text }) if text.contains("keeps its template")),
                "{mtype:?}: {r:?}"
            );
        }
    }
    // At the default endpoint and at its own, the renewal keeps the short template.
    let (mut current, mut current_key) = (got.certificate.clone(), None::<PrivateKey>);
    for client in [ScepClient::new(&server.url()), short.clone()] {
        let new_key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
        let signer = current_key.as_ref().unwrap_or(&key);
        let renewed = client.renew(&new_key, &current, signer, &opts, MessageType::RenewalReq).await.unwrap();
        let v = renewed.certificate.tbs_certificate().validity();
        assert_eq!((v.not_after.to_unix_duration() - v.not_before.to_unix_duration()).as_secs() / 86_400, 7);
        (current, current_key) = (renewed.certificate, Some(new_key));
    }
    let rows = server.certificates();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["template"] == "short"), "{rows:?}");
    // The first certificate was renewed already: it cannot start a second line.
    let fork = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let r = short.renew(&fork, &got.certificate, &key, &opts, MessageType::RenewalReq).await;
    assert!(
        matches!(&r, Err(ScepError::Failure { info: FailInfo::BadRequest, text }) if text.contains("renewed already")),
        "{r:?}"
    );
}

#[tokio::test]
async fn only_the_requester_can_poll_for_its_certificate() {
    let server = Server::start(|cfg| *cfg = cfg.replace("approval = \"auto\"", "approval = \"manual\""));
    let dir = dir_arg(&server);
    let client = ScepClient::new(&server.url());
    let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let mut opts = EnrollOptions::new("CN=polled").challenge(&server.challenge());
    opts.transaction_id = Some("POLL-BINDING-1".into());
    opts.max_wait = Duration::ZERO;
    let r = client.enroll(&key, &opts).await;
    assert!(matches!(r, Err(ScepError::StillPending { .. })), "{r:?}");
    // Someone who knows the transactionID and subject polls with their own key.
    let intruder = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let refused = |r: Result<scep_client::Polled, ScepError>| {
        assert!(matches!(&r, Err(ScepError::Failure { info: FailInfo::BadMessageCheck, .. })), "{r:?}")
    };
    refused(client.poll(&intruder, "CN=polled", "POLL-BINDING-1").await);
    assert!(matches!(client.poll(&key, "CN=polled", "POLL-BINDING-1").await, Ok(scep_client::Polled::Pending)));
    let out = scepd(&["request", "list", "--status", "pending", "--json", "--data-dir", &dir]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let id = rows[0]["id"].as_str().unwrap();
    let metrics = scep_client::http::HttpClient::default().get(&format!("{}/metrics", server.base), &[]).await.unwrap();
    assert!(String::from_utf8_lossy(&metrics.body).contains("\nscepd_pending_requests 1\n"));
    assert!(scepd(&["request", "approve", id, "--data-dir", &dir]).status.success());
    // The decision is in the audit trail, with who made it.
    let out = scepd(&["audit", "--json", "--outcome", "approved", "--data-dir", &dir]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["transaction_id"], "POLL-BINDING-1");
    assert!(rows[0]["reason"].as_str().unwrap().contains("approved by cli"), "{rows:?}");
    assert!(!scepd(&["request", "approve", id, "--data-dir", &dir]).status.success(), "decided twice");
    // Approved: the intruder still gets nothing (the certificate is not sent to their key).
    refused(client.poll(&intruder, "CN=polled", "POLL-BINDING-1").await);
    assert!(server.certificates().is_empty());
    let got = client.poll(&key, "CN=polled", "POLL-BINDING-1").await.unwrap();
    assert!(matches!(got, scep_client::Polled::Issued(_)));
    refused(client.poll(&intruder, "CN=polled", "POLL-BINDING-1").await);
    assert!(matches!(client.poll(&key, "CN=polled", "POLL-BINDING-1").await, Ok(scep_client::Polled::Issued(_))));
}

#[tokio::test]
async fn after_a_ca_rollover_clients_of_the_old_ca_still_renew() {
    let server = Server::start(|_| {});
    let client = ScepClient::new(&server.url());
    let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let old = enroll(&server, "CN=long-lived", &key).await;
    let old_ca = old.chain[0].clone();
    assert!(!client.caps().await.unwrap().has(scep::caps::Capability::GetNextCaCert));
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(4);
    let at = at.format(&time::format_description::well_known::Rfc3339).unwrap();
    let out = scepd(&["ca", "rollover", "--at", &at, "--data-dir", &dir_arg(&server)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Advertised before it takes over.
    let mut advertised = false;
    for _ in 0..40 {
        if client.caps().await.unwrap().has(scep::caps::Capability::GetNextCaCert) {
            advertised = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(advertised);
    let next = scep_client::http::HttpClient::default()
        .get(&format!("{}?operation=GetNextCACert", server.url()), &[])
        .await
        .unwrap();
    assert_eq!(next.status, 200);
    assert_eq!(next.content_type.as_deref(), Some("application/x-x509-next-ca-cert"));
    // Takes over.
    let mut switched = false;
    for _ in 0..100 {
        if client.ca_certs().await.unwrap().ca != old_ca {
            switched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(switched, "the new CA did not take over: {:?}", server.logs());
    let renewed = client
        .renew(&key, &old.certificate, &key, &EnrollOptions::new("CN=long-lived"), MessageType::RenewalReq)
        .await
        .unwrap();
    assert_ne!(renewed.chain[0], old_ca);
    scep::x509::verify_issued_by(&renewed.certificate, &renewed.chain[0]).unwrap();
    // The old CA still publishes its CRL.
    let rows = server.certificates();
    let old_ca_id =
        rows.iter().find(|r| r["serial"] == serial_hex(&old)).unwrap()["ca_id"].as_str().unwrap().to_owned();
    let r = scep_client::http::HttpClient::default()
        .get(&format!("{}/crl/{old_ca_id}.crl", server.base), &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn ra_certificates_renew_without_downtime() {
    let server = Server::start(|_| {});
    let client = ScepClient::new(&server.url());
    let before = client.ca_certs().await.unwrap();
    let out = scepd(&["ra", "renew", "--data-dir", &dir_arg(&server)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut after = before.clone();
    for _ in 0..100 {
        after = client.ca_certs().await.unwrap();
        if after.encryption != before.encryption {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(after.encryption, before.encryption, "the new RA certificates were not picked up");
    assert_eq!(after.ca, before.ca);
    let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    enroll(&server, "CN=after-ra-renewal", &key).await;
    let status = String::from_utf8(scepd(&["status", "--data-dir", &dir_arg(&server)]).stdout).unwrap();
    assert!(status.contains("RA encryption") && status.contains("days"), "{status}");
}
