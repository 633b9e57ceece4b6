//! The webhook over HTTPS with authenticated answers, end to end against the real
//! server: a verifier behind a certificate of a test CA (`webhook.ca_file`) that signs
//! its answers allows; an answer with a wrong, missing or replayed signature refuses
//! without counting against the client; plain HTTP off loopback is refused at start.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Server;
use scep::attr::FailInfo;
use scep_client::ScepError;

const SECRET: &str = "webhook test secret";

/// What the verifier saw.
#[derive(Default)]
struct Seen {
    /// (nonce header, verify body) of each verify call.
    verifies: Vec<(String, serde_json::Value)>,
    /// Notification bodies.
    events: Vec<serde_json::Value>,
}

/// A test CA and a server certificate for 127.0.0.1 and localhost, by OpenSSL.
fn test_pki(dir: &Path) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl").current_dir(dir).args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=webhook test CA", "-days", "2"],
    ]
    .concat());
    run(&[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]].concat());
    std::fs::write(
        dir.join("ext"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext",
        "-out",
        "server.pem",
    ]);
}

fn sign(key: &[u8], parts: &[&[u8]]) -> String {
    format!("sha256={}", hex::encode(scep::crypto::hmac_sha256(key, &parts.concat())))
}

/// An HTTPS verifier and notifier on 127.0.0.1 with the certificate of [`test_pki`].
/// The challenge decides the answer: "ALLOW" is allowed with a good signature,
/// "DENY" denied with one; "ALLOW-BADSIG" is signed under another key, "ALLOW-NOSIG"
/// not at all, "ALLOW-REPLAY" with the signature of the first verify call's answer.
async fn verifier(dir: &Path) -> (String, Arc<Mutex<Seen>>) {
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let chain: Vec<_> = CertificateDer::pem_file_iter(dir.join("server.pem")).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let first: Arc<Mutex<Option<String>>> = Arc::default();
    let s2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let seen = s2.clone();
            let first = first.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    let first = first.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(req, &seen, &first).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (format!("https://127.0.0.1:{}", addr.port()), seen)
}

async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    seen: &Mutex<Seen>,
    first: &Mutex<Option<String>>,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    use http_body_util::BodyExt;
    let path = req.uri().path().to_owned();
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (nonce, request_signature) = (header("X-Scepd-Nonce"), header("X-Scepd-Signature"));
    let body = req.into_body().collect().await.unwrap().to_bytes();
    // scepd signs its calls: the verifier can tell them from anybody else's.
    assert_eq!(request_signature, sign(SECRET.as_bytes(), &[&body]), "{path}");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let reply = |text: &str, signature: Option<String>| {
        let mut r = hyper::Response::builder().header("Content-Type", "application/json");
        if let Some(s) = signature {
            r = r.header("X-Scepd-Signature", s);
        }
        r.body(http_body_util::Full::new(bytes::Bytes::from(text.to_owned()))).unwrap()
    };
    if path == "/notify" {
        seen.lock().unwrap().events.push(json);
        return reply("{}", None);
    }
    assert_eq!(json["nonce"], nonce.as_str(), "the nonce is in the body and the header");
    seen.lock().unwrap().verifies.push((nonce.clone(), json.clone()));
    let good = |text: &str| sign(SECRET.as_bytes(), &[nonce.as_bytes(), text.as_bytes()]);
    let allow = r#"{"allow": true}"#;
    match json["challenge"].as_str().unwrap_or_default() {
        "ALLOW" => {
            first.lock().unwrap().get_or_insert_with(|| good(allow));
            reply(allow, Some(good(allow)))
        }
        "DENY" => reply(r#"{"allow": false}"#, Some(good(r#"{"allow": false}"#))),
        "ALLOW-BADSIG" => reply(allow, Some(sign(b"another key", &[nonce.as_bytes(), allow.as_bytes()]))),
        "ALLOW-REPLAY" => {
            let old = first.lock().unwrap().clone().expect("an ALLOW came first");
            reply(allow, Some(old))
        }
        _ => reply(allow, None),
    }
}

/// scepd configured for the verifier at `base`, trusting the test CA in `pki`.
fn start(base: &str, pki: &Path, throttle: Option<u32>) -> Server {
    let ca = pki.join("ca.pem");
    Server::start_with_env(
        |cfg| {
            *cfg = cfg.replace("mode = \"one-time\"", "mode = \"webhook\"");
            if let Some(n) = throttle {
                *cfg = cfg.replace("max_failures = 10", &format!("max_failures = {n}"));
            }
            cfg.push_str(&format!(
                "\n[webhook]\nverify_url = \"{base}/verify\"\nnotify_url = \"{base}/notify\"\ntimeout_ms = 2000\nca_file = \"{}\"\n",
                ca.display()
            ));
        },
        &[("SCEPD_WEBHOOK_SECRET", SECRET)],
    )
}

fn refusal(r: Result<scep_client::Enrolled, ScepError>) -> String {
    match r {
        Err(ScepError::Failure { info: FailInfo::BadRequest, text }) => text,
        other => panic!("expected FAILURE badRequest, got {other:?}"),
    }
}

/// Issue 9 of the security review: the verifier was called over plain HTTP and its
/// answer believed as it came. Now it is HTTPS, trusted through `webhook.ca_file`, each
/// call carries a fresh nonce, and a signed allow enrolls; notifications go over the
/// same HTTPS client through the queue.
#[tokio::test]
async fn an_https_verifier_that_signs_its_answer_allows_enrollment() {
    let pki = tempfile::tempdir().unwrap();
    test_pki(pki.path());
    let (base, seen) = verifier(pki.path()).await;
    let server = start(&base, pki.path(), None);
    let got = common::enroll(&server, "signed", "ALLOW").await.unwrap();
    common::enroll(&server, "signed-again", "ALLOW").await.unwrap();
    assert_eq!(server.certificates().len(), 2);
    {
        let s = seen.lock().unwrap();
        assert_eq!(s.verifies.len(), 2);
        let (n1, n2) = (&s.verifies[0].0, &s.verifies[1].0);
        assert_eq!(n1.len(), 64, "32 random bytes in hex: {n1}");
        assert_ne!(n1, n2, "every call has its own nonce");
    }
    let serial = hex::encode_upper(got.certificate.tbs_certificate().serial_number().as_bytes());
    for _ in 0..50 {
        if seen.lock().unwrap().events.iter().filter(|e| e["event"] == "issued").count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = seen.lock().unwrap();
    assert!(s.events.iter().any(|e| e["event"] == "issued" && e["serial"] == serial.as_str()), "{:?}", s.events);
    assert!(!server.logs().iter().any(|l| l.contains("SCEPD_WEBHOOK_SECRET")), "no warning with a secret");
}

/// An allow whose signature is made under another key, missing, or copied from an
/// earlier answer (another nonce) is refused as "try again later" and not counted as a
/// wrong challenge: with `max_failures = 2`, four of them leave the address free to
/// enroll, while two signed denials then block it.
#[tokio::test]
async fn an_answer_without_a_valid_signature_is_refused_and_not_counted() {
    let pki = tempfile::tempdir().unwrap();
    test_pki(pki.path());
    let (base, seen) = verifier(pki.path()).await;
    let server = start(&base, pki.path(), Some(2));
    common::enroll(&server, "first", "ALLOW").await.unwrap();
    for challenge in ["ALLOW-BADSIG", "ALLOW-NOSIG", "ALLOW-REPLAY", "ALLOW-BADSIG"] {
        let text = refusal(common::enroll(&server, challenge, challenge).await);
        assert!(text.contains("try again later"), "{challenge}: {text}");
    }
    assert!(server.logged(|l| l.contains("no valid X-Scepd-Signature")));
    assert_eq!(seen.lock().unwrap().verifies.len(), 5, "every request reached the verifier");
    common::enroll(&server, "still-allowed", "ALLOW").await.unwrap();
    assert_eq!(server.certificates().len(), 2);
    // Signed denials are the client's fault and count.
    for _ in 0..2 {
        assert!(refusal(common::enroll(&server, "denied", "DENY").await).contains("cannot be verified"));
    }
    assert!(refusal(common::enroll(&server, "blocked", "ALLOW").await).contains("Too many failed attempts"));
}

/// `http://` to a host that is not loopback is refused at start, naming the setting
/// that allows it; with `webhook.allow_http` it starts, and warns of it, and without a
/// secret scepd warns that answers are not authenticated.
#[tokio::test]
async fn a_plain_http_verifier_off_loopback_is_a_configuration_error() {
    let hook = |extra: &'static str| {
        move |cfg: &mut String| {
            *cfg = cfg.replace("mode = \"one-time\"", "mode = \"webhook\"");
            cfg.push_str(&format!("\n[webhook]\nverify_url = \"http://192.0.2.10:9000/verify\"\n{extra}"));
        }
    };
    let err = common::serve_fails(hook(""), &[]);
    assert!(err.contains("plain HTTP") && err.contains("webhook.allow_http"), "{err}");
    let server = Server::start(hook("allow_http = true\n"));
    assert!(server.logged(|l| l.contains("plain HTTP to a host that is not loopback")));
    assert!(server.logged(|l| l.contains("webhook without SCEPD_WEBHOOK_SECRET")));
    // Loopback verifiers stay allowed over http://, as before.
    let local = Server::start(|cfg| {
        *cfg = cfg.replace("mode = \"one-time\"", "mode = \"webhook\"");
        cfg.push_str("\n[webhook]\nverify_url = \"http://localhost:9000/verify\"\n");
    });
    assert!(!local.logged(|l| l.contains("plain HTTP to a host")));
}
