//! Several scepd instances on one PostgreSQL: any instance answers any request, a
//! challenge is honoured once, and killing an instance loses nothing a client received.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::collections::HashSet;

use base64::Engine as _;
use common::Server;
use scep::attr::MessageType;
use scep::crypto::{KeyType, PrivateKey};
use scep_client::{EnrollOptions, ScepClient, ScepError};

async fn two_instances(configure: impl FnOnce(&mut String)) -> Option<(Server, Server)> {
    let url = common::postgres_database().await?;
    let a = Server::start_with_env(configure, &[("SCEPD_DATABASE_URL", &url)]);
    let b = a.sibling();
    Some((a, b))
}

fn key() -> PrivateKey {
    PrivateKey::generate(KeyType::Rsa2048).unwrap()
}

#[tokio::test]
async fn instances_share_challenges_renewals_and_revocations() {
    let Some((a, b)) = two_instances(|c| *c = c.replace("max_failures = 10", "max_failures = 1000")).await else {
        return;
    };
    let (ca, cb) = (ScepClient::new(&a.url()), ScepClient::new(&b.url()));
    // A challenge minted for one instance is used on the other.
    let k = key();
    let got = cb.enroll(&k, &EnrollOptions::new("CN=roaming").challenge(&a.challenge())).await.unwrap();
    // Renewed on the other instance.
    let renewed =
        ca.renew(&k, &got.certificate, &k, &EnrollOptions::new("CN=roaming"), MessageType::RenewalReq).await.unwrap();
    assert_ne!(renewed.certificate, got.certificate);

    // One challenge sent to both at once: exactly one certificate, ten times over.
    for round in 0..10 {
        let pw = a.challenge();
        let (ka, kb) = (key(), key());
        let oa = EnrollOptions::new(&format!("CN=race-a-{round}")).challenge(&pw);
        let ob = EnrollOptions::new(&format!("CN=race-b-{round}")).challenge(&pw);
        let (ra, rb) = tokio::join!(ca.enroll(&ka, &oa), cb.enroll(&kb, &ob));
        assert_eq!(u8::from(ra.is_ok()) + u8::from(rb.is_ok()), 1, "round {round}: {ra:?} {rb:?}");
        for r in [ra, rb] {
            assert!(matches!(r, Ok(_) | Err(ScepError::Failure { .. })));
        }
    }
    assert_eq!(a.certificates().len(), 12);

    // A revocation made through one instance's API is in the CRL the other serves.
    a.add_user("ops", "operator password", "admin");
    let serial = hex::encode_upper(got.certificate.tbs_certificate().serial_number().as_bytes());
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", "ops:operator password", "-X", "POST"])
        .arg(format!("{}/api/v1/certificates/{serial}/revoke", a.base))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    let crl = scep_client::http::HttpClient::default().get(&format!("{}/crl/ca.crl", b.base), &[]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("crl.der"), &crl.body).unwrap();
    let text = std::process::Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(dir.path().join("crl.der"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains(&serial), "{}", String::from_utf8_lossy(&text.stdout));
}

#[tokio::test]
async fn killing_an_instance_mid_load_loses_no_issued_certificate() {
    let Some((mut a, b)) = two_instances(|c| *c = c.replace("mode = \"one-time\"", "mode = \"none\"")).await else {
        return;
    };
    let mut tasks = Vec::new();
    for i in 0..40 {
        let url = if i % 2 == 0 { a.url() } else { b.url() };
        tasks.push(tokio::spawn(async move {
            let k = key();
            ScepClient::new(&url).enroll(&k, &EnrollOptions::new(&format!("CN=load-{i}"))).await
        }));
        if i == 20 {
            a.kill();
        }
    }
    let mut received = HashSet::new();
    let mut failed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(e) => {
                received.insert(hex::encode_upper(e.certificate.tbs_certificate().serial_number().as_bytes()));
            }
            Err(_) => failed += 1,
        }
    }
    assert!(!received.is_empty() && failed > 0, "received {} failed {failed}", received.len());
    let stored: HashSet<String> = b.certificates().iter().map(|r| r["serial"].as_str().unwrap().to_owned()).collect();
    for s in &received {
        assert!(stored.contains(s), "certificate {s} reached a client but is not in the store");
    }
    assert_eq!(stored.len(), b.certificates().len(), "no serial repeats");
    let _ = base64::engine::general_purpose::STANDARD.encode([0u8]);
}
