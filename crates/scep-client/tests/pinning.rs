//! `--ca-fingerprint` pins the CA, and everything the client relies on must chain to it:
//! the RA certificates of GetCACert, the CertRep signer, the issued certificate, the
//! certificate of GetCert and the CRL of GetCRL. An on-path proxy in front of the real
//! scepd plays the attacker, with a second scepd as its CA.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::proxy::{Proxy, Route};
use common::{Scepd, openssl, scep};
use der::Encode;
use x509_cert::Certificate;

/// The certificates of `file` in a scepd data directory.
fn certs(server: &Scepd, file: &str) -> Vec<Certificate> {
    scep_client::pem::load_certs(&server.data_dir().join(file)).unwrap()
}

fn sha256(cert: &Certificate) -> String {
    hex::encode_upper(scep::attr::DigestAlg::Sha256.digest(&cert.to_der().unwrap()))
}

/// The SHA-256 fingerprint of a scepd's CA, as an admin pins it.
fn ca_fingerprint(server: &Scepd) -> String {
    sha256(&certs(server, "ca.pem")[0])
}

/// A certs-only GetCACert answer.
fn getcacert(certs: &[Certificate]) -> Route {
    Route::Answer(scep::operation::CONTENT_TYPE_CA_RA_CERT.into(), scep::cms::certs_only(certs, &[]).unwrap())
}

fn serial_of(cert_pem: &str) -> String {
    let (ok, out) = openssl(&["x509", "-in", cert_pem, "-noout", "-serial"]);
    assert!(ok, "{out}");
    out.trim().strip_prefix("serial=").unwrap().to_owned()
}

/// The attack of finding 12: the genuine CA, but RA certificates of the attacker's CA,
/// and every PKIOperation answered by the attacker's server. Before the fix the
/// fingerprint was checked on the CA certificate alone, and the enrollment succeeded
/// with a certificate from the attacker's CA.
#[test]
fn an_on_path_getcacert_with_the_real_ca_and_another_cas_ra_certificates_is_refused() {
    let genuine = Scepd::start(|_| {});
    let attacker = Scepd::start(|_| {});
    let mut forged = certs(&attacker, "ra-encrypt.pem");
    forged.extend(certs(&attacker, "ra-sign.pem"));
    let attacker_ras: Vec<String> = forged.iter().map(sha256).collect();
    forged.extend(certs(&genuine, "ca.pem"));
    let to = attacker.base.clone();
    let proxy = Proxy::start(move |target| {
        if target.contains("operation=GetCACert") { getcacert(&forged) } else { Route::Forward(to.clone()) }
    });
    let url = format!("{}/certsrv/mscep/mscep.dll", proxy.base);
    let pin = ca_fingerprint(&genuine);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();

    let (code, stdout, err) = scep(
        &[
            "enroll",
            &url,
            "--ca-fingerprint",
            &pin,
            "--challenge",
            &attacker.challenge(),
            "--subject",
            "CN=victim",
            "--out",
            out,
        ],
        &[],
        None,
    );
    assert_ne!(code, 0, "enrolled through the attacker: {stdout}");
    assert!(err.contains("the RA certificate CN=SCEP RA") && err.contains("is not issued by the pinned CA"), "{err}");
    assert!(attacker_ras.iter().any(|fp| err.contains(fp)), "the RA is named by its fingerprint: {err}");
    assert!(err.contains(&pin), "the pinned CA is named: {err}");
    assert!(!dir.path().join("cert.pem").exists());

    // GetCert, GetCRL and CertPoll hold the answer to the pin the same way.
    let key = dir.path().join("key.pem");
    std::fs::write(
        &key,
        scep_client::pem::key_pem(&scep::crypto::PrivateKey::generate(scep::crypto::KeyType::Rsa2048).unwrap())
            .unwrap(),
    )
    .unwrap();
    for args in [
        vec!["getcert", &url, "--serial", "01", "--ca-fingerprint", &pin],
        vec!["getcrl", &url, "--serial", "01", "--ca-fingerprint", &pin],
        vec![
            "poll",
            &url,
            "--transaction-id",
            "ABCD",
            "--subject",
            "CN=victim",
            "--key",
            key.to_str().unwrap(),
            "--out",
            out,
            "--ca-fingerprint",
            &pin,
        ],
    ] {
        let (code, _, err) = scep(&args, &[], None);
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains("is not issued by the pinned CA"), "{args:?}: {err}");
    }

    // Without a pin the answer still has to hang together: its CA did not issue its RAs.
    let (code, _, err) = scep(
        &["enroll", &url, "--challenge", &attacker.challenge(), "--subject", "CN=victim", "--out", out],
        &[],
        None,
    );
    assert_ne!(code, 0);
    assert!(err.contains("is not issued by the CA certificate of the GetCACert answer"), "{err}");
}

/// A CertRep signed by a key other than the pinned CA's RA: the attacker adds its own
/// CA certificate to the genuine GetCACert answer (so that the client knows its key)
/// and answers PKIOperation from its own scepd, which signs CertReps with that CA key
/// (CA-only mode). Before the fix the client trusted every certificate of the answer
/// and took the attacker's FAILURE for the server's.
#[test]
fn a_certrep_signed_by_another_key_than_the_pinned_cas_ra_is_refused() {
    let genuine = Scepd::start(|_| {});
    let attacker = Scepd::start(|cfg| *cfg = cfg.replace("ca_only_getcacert = false", "ca_only_getcacert = true"));
    let mut answer = certs(&genuine, "ra-encrypt.pem");
    answer.extend(certs(&genuine, "ra-sign.pem"));
    answer.extend(certs(&genuine, "ca.pem"));
    let genuine_only = answer.clone();
    let attacker_ca = certs(&attacker, "ca.pem").remove(0);
    answer.push(attacker_ca.clone());
    let pin = ca_fingerprint(&genuine);
    let dir = tempfile::tempdir().unwrap();

    for (certs, signer_named) in [(answer, true), (genuine_only, false)] {
        let to = attacker.base.clone();
        let proxy = Proxy::start(move |target| {
            if target.contains("operation=GetCACert") { getcacert(&certs) } else { Route::Forward(to.clone()) }
        });
        let url = format!("{}/certsrv/mscep/mscep.dll", proxy.base);
        let (code, stdout, err) = scep(
            &[
                "enroll",
                &url,
                "--ca-fingerprint",
                &pin,
                "--challenge",
                &genuine.challenge(),
                "--subject",
                "CN=victim",
                "--out",
                dir.path().to_str().unwrap(),
            ],
            &[],
            None,
        );
        assert_ne!(code, 0, "{stdout}");
        assert!(!err.contains("failInfo"), "the forged reply is not taken for the server's: {err}");
        if signer_named {
            assert!(err.contains("the CertRep is signed by CN=scepd CA"), "{err}");
            assert!(err.contains(&sha256(&attacker_ca)) && err.contains("is not issued by the pinned CA"), "{err}");
        } else {
            assert!(err.contains("the CertRep is not signed by a certificate of the pinned CA"), "{err}");
        }
    }
}

/// The checks pass what the genuine CA sends: enrollment, GetCert and GetCRL pinned.
#[test]
fn a_pinned_enrollment_getcert_and_getcrl_pass_against_the_genuine_ca() {
    let server = Scepd::start(|_| {});
    let pin = ca_fingerprint(&server);
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = scep(
        &[
            "enroll",
            &server.url(),
            "--ca-fingerprint",
            &pin,
            "--challenge",
            &server.challenge(),
            "--subject",
            "CN=pinned",
            "--out",
            dir.path().to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    let serial = serial_of(dir.path().join("cert.pem").to_str().unwrap());
    let url = server.url();
    for cmd in ["getcert", "getcrl", "cacert"] {
        let mut args = vec![cmd, url.as_str(), "--ca-fingerprint", &pin];
        if cmd != "cacert" {
            args.extend(["--serial", &serial]);
        }
        let (code, out, err) = scep(&args, &[], None);
        assert_eq!(code, 0, "{cmd}: {out}{err}");
    }
    // A fingerprint of another CA stops at GetCACert, naming both.
    let other = "00".repeat(32);
    let (code, _, err) = scep(&["cacert", &server.url(), "--ca-fingerprint", &other], &[], None);
    assert_ne!(code, 0);
    assert!(err.contains(&format!("the CA fingerprint is {pin}, not the expected {other}")), "{err}");
}
