//! What the operator sees: the audit trail per transaction, Prometheus metrics, and
//! JSON logs carrying the transactionID.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::Server;
use scep::crypto::{KeyType, PrivateKey};
use scep_client::{EnrollOptions, ScepClient, ScepError};

#[tokio::test]
async fn the_audit_trail_metrics_and_json_logs_tell_what_happened() {
    let server = Server::start_with_env(|_| {}, &[("SCEPD_LOG_FORMAT", "json")]);
    let client = ScepClient::new(&server.url());
    let mut serials = Vec::new();
    for i in 0..3 {
        let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
        let got = client
            .enroll(&key, &EnrollOptions::new(&format!("CN=ops-{i}")).challenge(&server.challenge()))
            .await
            .unwrap();
        serials.push(hex::encode_upper(got.certificate.tbs_certificate().serial_number().as_bytes()));
    }
    let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let mut opts = EnrollOptions::new("CN=wrong-password").challenge("0000000000000000");
    opts.transaction_id = Some("FAILED-TX-1".into());
    assert!(matches!(client.enroll(&key, &opts).await, Err(ScepError::Failure { .. })));

    // The failure's reason, by transactionID (the audit writer is asynchronous).
    let dir = server.data_dir().to_str().unwrap().to_owned();
    let mut found = serde_json::Value::Null;
    for _ in 0..40 {
        let out = server.cli(&["audit", "--transaction", "FAILED-TX-1", "--json", "--data-dir", &dir]);
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        if let Some(r) = rows.into_iter().next() {
            found = r;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(found["outcome"], "failure", "{found}");
    assert_eq!(found["fail_info"], "badRequest");
    assert_eq!(found["reason"], "unknown challenge");
    assert_eq!(found["subject"], "CN=wrong-password");
    assert_eq!(found["message_type"], "PKCSReq");
    let out = server.cli(&["audit", "--outcome", "issued", "--json", "--data-dir", &dir]);
    let issued: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(issued.len(), 3);
    assert!(issued.iter().all(|r| r["challenge_id"].is_string() && r["template"] == "default"));
    let out = server.cli(&["audit", "--serial", &serials[0], "--json", "--data-dir", &dir]);
    assert_eq!(serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap().len(), 1);

    // Metrics.
    let m = scep_client::http::HttpClient::default().get(&format!("{}/metrics", server.base), &[]).await.unwrap();
    let text = String::from_utf8(m.body).unwrap();
    assert!(text.contains("scepd_requests_total{operation=\"PKIOperation\",outcome=\"issued\"} 3"), "{text}");
    assert!(text.contains("scepd_requests_total{operation=\"PKIOperation\",outcome=\"failure\"} 1"), "{text}");
    assert!(text.contains("scepd_pkioperation_duration_seconds_count 4"));
    assert!(text.contains("scepd_challenges_max 5"));
    assert!(text.contains("scepd_database_up 1"));
    assert!(text.contains("scepd_certificate_expiry_seconds{role=\"ra-encrypt\""));

    // JSON logs: the refusal line carries the transactionID in its span.
    assert!(server.logged(|l| {
        serde_json::from_str::<serde_json::Value>(l)
            .is_ok_and(|v| v["fields"]["message"] == "request refused" && v["span"]["transaction_id"] == "FAILED-TX-1")
    }));
}

#[test]
fn status_and_start_up_name_what_integrations_trip_on() {
    let server = Server::start(|cfg| {
        *cfg = cfg.replace("password_validity_minutes = 60", "password_validity_minutes = 15");
    });
    let dir = server.data_dir().to_str().unwrap().to_owned();
    let out = server.cli(&["status", "--data-dir", &dir]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("WARNING: challenge.password_validity_minutes is 15: integrations that fetch a challenge"),
        "{text}"
    );
    assert!(server.logged(|l| l.contains("WARN") && l.contains("password_validity_minutes is 15")));
    // The default configuration has nothing to warn about.
    let quiet = Server::start(|_| {});
    let out = quiet.cli(&["status", "--data-dir", quiet.data_dir().to_str().unwrap()]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("WARNING: challenge"));
}

#[test]
fn the_database_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start(|_| {});
    for name in ["scepd.db", "scepd.db-wal"] {
        let path = server.data_dir().join(name);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
    }
}
