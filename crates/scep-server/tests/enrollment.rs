//! End-to-end enrollment against the real scepd on 127.0.0.1, with micromdm's
//! scepclient and the project's own client.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::{Server, openssl_verify, run_scepclient};
use scep::crypto::{KeyType, PrivateKey};
use scep_client::{EnrollOptions, ScepClient, ScepError, Transport};

#[test]
fn scepclient_enrolls_by_post_and_the_chain_verifies() {
    let server = Server::start(|_| {});
    let pw = server.challenge();
    let (ok, out, dir) = run_scepclient(&server.url(), "router-1", &pw, &[]);
    assert!(ok, "scepclient failed: {out}");
    assert!(openssl_verify(&server.data_dir().join("ca.pem"), &dir.path().join("client.pem")));
    let certs = server.certificates();
    assert_eq!(certs.len(), 1);
    assert!(certs[0]["subject"].as_str().unwrap().contains("CN=router-1"));
    assert!(server.logged(|l| l.contains("certificate issued") && l.contains("POST")));
    // The NDES path with Windows' suffix and the generic aliases route too.
    let pw = server.challenge();
    let (ok, out, _d) =
        run_scepclient(&format!("{}/certsrv/mscep/mscep.dll/pkiclient.exe", server.base), "router-2", &pw, &[]);
    assert!(ok, "{out}");
    let pw = server.challenge();
    let (ok, out, _d) = run_scepclient(&format!("{}/cgi-bin/pkiclient.exe", server.base), "router-3", &pw, &[]);
    assert!(ok, "{out}");
    assert_eq!(server.certificates().len(), 3);
}

#[test]
fn scepclient_enrolls_by_get_when_post_is_not_advertised() {
    let server = Server::start(|cfg| *cfg = cfg.replace("advertise_post = true", "advertise_post = false"));
    let pw = server.challenge();
    let (ok, out, dir) = run_scepclient(&server.url(), "get-client", &pw, &[]);
    assert!(ok, "scepclient failed: {out}");
    assert!(openssl_verify(&server.data_dir().join("ca.pem"), &dir.path().join("client.pem")));
    assert!(server.logged(|l| l.contains("certificate issued") && l.contains("GET")), "{:?}", server.logs());
}

#[tokio::test]
async fn scep_client_enrolls_by_post_and_by_get_with_sans() {
    let server = Server::start(|_| {});
    let client = ScepClient::new(&format!("{}/scep", server.base));
    for transport in [Transport::Post, Transport::Get] {
        let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
        let mut opts = EnrollOptions::new("CN=laptop-7,O=Example").challenge(&server.challenge());
        opts.dns = vec!["laptop-7.example.com".into()];
        opts.ips = vec!["192.0.2.7".parse().unwrap()];
        opts.transport = transport;
        let got = client.enroll(&key, &opts).await.unwrap();
        assert_eq!(got.used_post, transport == Transport::Post);
        scep::x509::verify_issued_by(&got.certificate, &got.chain[0]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, scep_client::pem::certs_pem(std::slice::from_ref(&got.certificate)).unwrap()).unwrap();
        assert!(openssl_verify(&server.data_dir().join("ca.pem"), &cert));
        let text = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(&cert)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout).to_string();
        assert!(text.contains("DNS:laptop-7.example.com") && text.contains("IP Address:192.0.2.7"), "{text}");
    }
    let rows = server.certificates();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["sans"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn bad_challenges_are_refused_and_nothing_is_recorded() {
    let server = Server::start(|_| {});
    let client = ScepClient::new(&server.url());
    let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    // wrong, missing, malformed (empty, and a valid password with junk appended)
    let valid = server.challenge();
    for pw in [Some("0123456789ABCDEF".to_owned()), None, Some(String::new()), Some(format!("{valid}00"))] {
        let mut opts = EnrollOptions::new("CN=intruder");
        opts.challenge = pw.clone();
        match client.enroll(&key, &opts).await {
            Err(ScepError::Failure { info, text }) => {
                assert_eq!(info, scep::attr::FailInfo::BadRequest, "{pw:?}");
                assert!(text.contains("cannot be verified"), "{text}");
            }
            other => panic!("{pw:?}: expected a FAILURE, got {other:?}"),
        }
    }
    assert!(server.certificates().is_empty());
    // The valid one still works once, and only once.
    let opts = EnrollOptions::new("CN=device").challenge(&valid);
    client.enroll(&key, &opts).await.unwrap();
    let key2 = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let err = client.enroll(&key2, &EnrollOptions::new("CN=device-2").challenge(&valid)).await.unwrap_err();
    assert!(matches!(err, ScepError::Failure { info: scep::attr::FailInfo::BadRequest, .. }), "{err:?}");
    assert_eq!(server.certificates().len(), 1);
}

#[test]
fn scepclient_reusing_a_challenge_is_refused() {
    let server = Server::start(|_| {});
    let pw = server.challenge();
    let (ok, out, _d) = run_scepclient(&server.url(), "first", &pw, &[]);
    assert!(ok, "{out}");
    let (ok, out, _d) = run_scepclient(&server.url(), "second", &pw, &[]);
    assert!(!ok);
    assert!(out.contains("badRequest"), "{out}");
    assert_eq!(server.certificates().len(), 1);
}

#[tokio::test]
async fn concurrent_enrollments_never_share_a_serial() {
    let server = Server::start(|cfg| *cfg = cfg.replace("password_max = 5", "password_max = 100"));
    let client = ScepClient::new(&server.url());
    let mut tasks = Vec::new();
    for i in 0..24 {
        let pw = server.challenge();
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
            client.enroll(&key, &EnrollOptions::new(&format!("CN=c{i}")).challenge(&pw)).await.unwrap()
        }));
    }
    let mut serials = std::collections::HashSet::new();
    for t in tasks {
        let got = t.await.unwrap();
        assert!(serials.insert(got.certificate.tbs_certificate().serial_number().as_bytes().to_vec()));
    }
    let rows = server.certificates();
    assert_eq!(rows.len(), 24);
    let stored: std::collections::HashSet<_> = rows.iter().map(|r| r["serial"].as_str().unwrap().to_owned()).collect();
    assert_eq!(stored.len(), 24);
}

#[test]
fn ca_only_getcacert_serves_scepclient_with_ca_fingerprint() {
    // With the CA acting as RA, scepclient can pin the CA by fingerprint: it then
    // encrypts to the CA certificate and trusts only it.
    let server = Server::start(|cfg| *cfg = cfg.replace("ca_only_getcacert = false", "ca_only_getcacert = true"));
    let ca_pem = std::fs::read(server.data_dir().join("ca.pem")).unwrap();
    let ca = x509_cert::Certificate::load_pem_chain(&ca_pem).unwrap().remove(0);
    let fp = hex::encode(scep::attr::DigestAlg::Sha256.digest(&der::Encode::to_der(&ca).unwrap()));
    let pw = server.challenge();
    let (ok, out, dir) = run_scepclient(&server.url(), "pinned", &pw, &["-ca-fingerprint", &fp]);
    assert!(ok, "scepclient failed: {out}");
    assert!(openssl_verify(&server.data_dir().join("ca.pem"), &dir.path().join("client.pem")));
}

#[tokio::test]
async fn an_ec_key_enrolls_with_a_throwaway_rsa_signer() {
    let server = Server::start(|_| {});
    let key = PrivateKey::generate(KeyType::EcP256).unwrap();
    let got = ScepClient::new(&server.url())
        .enroll(&key, &EnrollOptions::new("CN=ec-device").challenge(&server.challenge()))
        .await
        .unwrap();
    assert_eq!(*got.certificate.tbs_certificate().subject_public_key_info(), scep::crypto::Signer::public_key(&key));
    assert_eq!(server.certificates().len(), 1);
}

#[tokio::test]
async fn getcacaps_is_configurable_per_endpoint() {
    let server = Server::start(|cfg| {
        *cfg = cfg.replace(
            "ca_only_getcacert = false",
            "ca_only_getcacert = false\ncaps = [\"AES\", \"POSTPKIOperation\", \"Renewal\", \"SHA-1\", \"SHA-256\"]",
        );
        cfg.push_str("\n[templates.legacy]\ncaps = [\"des3\", \"SHA-1\", \"GetNextCACert\"]\n");
    });
    let get = |url: String| async move {
        let r = scep_client::http::HttpClient::default().get(&url, &[]).await.unwrap();
        assert_eq!(r.status, 200);
        String::from_utf8(r.body).unwrap()
    };
    let default = get(format!("{}?operation=GetCACaps", server.url())).await;
    assert_eq!(default, "AES\nPOSTPKIOperation\nRenewal\nSHA-1\nSHA-256\n");
    // The template's own list; GetNextCACert only while a next CA exists.
    let legacy = get(format!("{}/scep/legacy/pkiclient.exe?operation=GetCACaps", server.base)).await;
    assert_eq!(legacy, "DES3\nSHA-1\n");
    // An endpoint without a list of its own answers the default one.
    assert_eq!(get(format!("{}/scep/default/pkiclient.exe?operation=GetCACaps", server.base)).await, default);
    // The client reads the configured list.
    let caps = ScepClient::new(&server.url()).caps().await.unwrap();
    assert!(caps.has(scep::caps::Capability::Sha1) && !caps.has(scep::caps::Capability::Des3));

    // A keyword scepd does not know is a configuration error that says what it knows.
    let cfg = server.data_dir().join("scepd.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("\"SHA-1\", \"SHA-256\"]", "\"SHA-3\"]");
    std::fs::write(&cfg, text).unwrap();
    let out = server.cli(&["status", "--data-dir", server.data_dir().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("unknown GetCACaps keyword \"SHA-3\"") && err.contains("SHA-512"),
        "{err}"
    );
}
