//! The NDES challenge lifecycle end to end: the admin page as products scrape it,
//! one-time and single passwords, expiry, the cache limit, concurrency, restarts,
//! the API with bindings, throttling, the webhook, HTTPS.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use base64::Engine as _;
use common::{Server, run_scepclient};
use regex::Regex;
use scep::attr::FailInfo;
use scep::crypto::{KeyType, PrivateKey};
use scep_client::{EnrollOptions, ScepClient, ScepError, http::HttpClient};

const USER: &str = "mdm";
const PASSWORD: &str = "correct horse battery";

fn basic(user: &str, pw: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}")))
}

/// GET the admin page; returns (status, decoded text, raw body, WWW-Authenticate).
async fn admin_page(server: &Server, auth: Option<String>) -> (u16, String, Vec<u8>, Vec<String>) {
    let headers: Vec<(&str, &str)> = auth.as_deref().map(|a| vec![("Authorization", a)]).unwrap_or_default();
    let r = HttpClient::default().get(&server.admin_url(), &headers).await.unwrap();
    let text = if r.body.starts_with(&[0xFF, 0xFE]) {
        let units: Vec<u16> = r.body[2..].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        String::from_utf16(&units).unwrap()
    } else {
        String::from_utf8_lossy(&r.body).into_owned()
    };
    (r.status, text, r.body, r.www_authenticate)
}

/// The consumer regex used by products that scrape NDES.
fn scrape(text: &str) -> Option<String> {
    Regex::new(r"(?i)The enrollment challenge password is: <B> (\S*)").unwrap().captures(text).map(|c| c[1].to_owned())
}

async fn enroll(server: &Server, cn: &str, pw: &str) -> Result<scep_client::Enrolled, ScepError> {
    let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    ScepClient::new(&server.url()).enroll(&key, &EnrollOptions::new(&format!("CN={cn}")).challenge(pw)).await
}

fn refused(r: Result<scep_client::Enrolled, ScepError>) -> String {
    match r {
        Err(ScepError::Failure { info: FailInfo::BadRequest, text }) => text,
        other => panic!("expected FAILURE badRequest, got {other:?}"),
    }
}

#[tokio::test]
async fn the_admin_page_is_scraped_like_ndes_and_its_password_enrolls_once() {
    let server = Server::start(|_| {});
    server.add_user(USER, PASSWORD, "enroll");
    let (status, text, raw, _) = admin_page(&server, Some(basic(USER, PASSWORD))).await;
    assert_eq!(status, 200);
    assert_eq!(&raw[..2], &[0xFF, 0xFE], "UTF-16LE with BOM");
    let pw = scrape(&text).expect("password line");
    assert_eq!(pw.len(), 16);
    assert!(pw.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()));
    // The thumbprint line comes first and is the CA's MD5 in four groups.
    let thumb = Regex::new(r"The thumbprint \(hash value\) for the CA certificate is: <B> ([0-9A-F]{8} [0-9A-F]{8} [0-9A-F]{8} [0-9A-F]{8}) </B>")
        .unwrap()
        .captures(&text)
        .expect("thumbprint line")[1]
        .to_owned();
    let ca_der = std::process::Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(server.data_dir().join("ca.pem"))
        .output()
        .unwrap()
        .stdout;
    assert_eq!(thumb, scep_server::http::thumbprint(&ca_der));
    assert!(text.find("thumbprint").unwrap() < text.find("challenge password is").unwrap());
    assert!(text.contains("This password can be used only once and will expire within 60 minutes."));

    let (ok, out, _d) = run_scepclient(&server.url(), "scraped", &pw, &[]);
    assert!(ok, "{out}");
    let (ok, out, _d) = run_scepclient(&server.url(), "again", &pw, &[]);
    assert!(!ok && out.contains("badRequest"), "{out}");
    assert_eq!(server.certificates().len(), 1);
    assert!(server.logs().iter().all(|l| !l.contains(&pw)), "a password reached the log");
}

#[tokio::test]
async fn credentials_and_permissions_are_checked() {
    let server = Server::start(|_| {});
    server.add_user(USER, PASSWORD, "enroll");
    server.add_user("viewer", PASSWORD, "");
    let (status, _, _, auth) = admin_page(&server, None).await;
    assert_eq!(status, 401);
    assert!(auth.iter().any(|a| a.starts_with("Basic realm=")), "{auth:?}");
    let (status, _, _, _) = admin_page(&server, Some(basic(USER, "wrong password"))).await;
    assert_eq!(status, 401);
    let (status, _, _, _) = admin_page(&server, Some(basic("nobody", PASSWORD))).await;
    assert_eq!(status, 401);
    let (status, text, _, _) = admin_page(&server, Some(basic("viewer", PASSWORD))).await;
    assert_eq!(status, 200);
    assert!(text.contains("You do not have sufficient permission to enroll with SCEP."));
    assert!(scrape(&text).is_none());
    // Path matching is case-insensitive, with or without the slash.
    let r = HttpClient::default()
        .get(&format!("{}/CertSrv/MSCEP_ADMIN", server.base), &[("Authorization", &basic(USER, PASSWORD))])
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(server.logged(|l| l.contains("failed login") && l.contains("nobody")));
    assert!(server.logs().iter().all(|l| !l.contains(PASSWORD)));
}

#[tokio::test]
async fn the_sixth_outstanding_password_finds_the_cache_full() {
    let server = Server::start(|_| {});
    server.add_user(USER, PASSWORD, "enroll");
    let mut seen = std::collections::HashSet::new();
    for _ in 0..5 {
        let (_, text, _, _) = admin_page(&server, Some(basic(USER, PASSWORD))).await;
        assert!(seen.insert(scrape(&text).unwrap()));
    }
    let (status, text, _, _) = admin_page(&server, Some(basic(USER, PASSWORD))).await;
    assert_eq!(status, 200);
    assert!(text.contains("The password cache is full."), "{text}");
    assert!(scrape(&text).is_none());
    // Using one frees a place.
    enroll(&server, "one", seen.iter().next().unwrap()).await.unwrap();
    let (_, text, _, _) = admin_page(&server, Some(basic(USER, PASSWORD))).await;
    assert!(scrape(&text).is_some());
}

#[tokio::test]
async fn an_expired_password_is_refused() {
    // The server's clock runs 61 minutes ahead of the CLI that mints the password.
    let server = Server::start_with_env(|_| {}, &[("SCEPD_CLOCK_OFFSET_SECS", "3660")]);
    let out = common::scepd(&["challenge", "new", "--data-dir", server.data_dir().to_str().unwrap()]);
    let pw = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let text = refused(enroll(&server, "late", &pw).await);
    assert!(text.contains("cannot be verified"));
    assert!(server.logged(|l| l.contains("challenge is expired")), "{:?}", server.logs());
    assert!(server.certificates().is_empty());
}

#[tokio::test]
async fn fifty_concurrent_requests_with_one_password_give_one_certificate() {
    let server = Server::start(|cfg| *cfg = cfg.replace("max_failures = 10", "max_failures = 1000"));
    let pw = server.challenge();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let url = server.url();
        let pw = pw.clone();
        tasks.push(tokio::spawn(async move {
            let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
            ScepClient::new(&url).enroll(&key, &EnrollOptions::new(&format!("CN=race-{i}")).challenge(&pw)).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(ScepError::Failure { info: FailInfo::BadRequest, .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(server.certificates().len(), 1);
}

#[tokio::test]
async fn outstanding_passwords_survive_a_restart() {
    let server = Server::start(|_| {});
    let pw = server.challenge();
    let dir = server.stop();
    let server = Server::serve(dir);
    enroll(&server, "after-restart", &pw).await.unwrap();
}

#[tokio::test]
async fn single_mode_reuses_one_encrypted_password_across_restarts() {
    let server = Server::start(|cfg| *cfg = cfg.replace("mode = \"one-time\"", "mode = \"single\""));
    server.add_user(USER, PASSWORD, "enroll");
    let (_, text, _, _) = admin_page(&server, Some(basic(USER, PASSWORD))).await;
    let pw = scrape(&text).unwrap();
    assert!(text.contains("This password can be used multiple times and will not expire."));
    enroll(&server, "a", &pw).await.unwrap();
    enroll(&server, "b", &pw).await.unwrap();
    refused(enroll(&server, "c", "0000000000000000").await);
    let dir = server.stop();
    // Stored encrypted: the password appears nowhere in the database files.
    for f in std::fs::read_dir(dir.path().join("data")).unwrap() {
        let f = f.unwrap().path();
        let bytes = std::fs::read(&f).unwrap();
        assert!(!bytes.windows(pw.len()).any(|w| w == pw.as_bytes()), "{} holds the password", f.display());
    }
    let server = Server::serve(dir);
    let (_, text, _, _) = admin_page(&server, Some(basic(USER, PASSWORD))).await;
    assert_eq!(scrape(&text).unwrap(), pw);
    enroll(&server, "d", &pw).await.unwrap();
    // Rotation replaces it.
    let out = common::scepd(&["challenge", "rotate", "--data-dir", server.data_dir().to_str().unwrap()]);
    let new_pw = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_ne!(new_pw, pw);
    refused(enroll(&server, "e", &pw).await);
    enroll(&server, "f", &new_pw).await.unwrap();
}

async fn api(server: &Server, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    let http = HttpClient::default();
    let url = format!("{}{path}", server.base);
    let auth = basic(USER, PASSWORD);
    let r = match method {
        "POST" => {
            // The client's POST helper carries no Authorization header: use curl.
            let out = std::process::Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "-",
                    "-w",
                    "\n%{http_code}",
                    "-u",
                    &format!("{USER}:{PASSWORD}"),
                    "-X",
                    "POST",
                    "-H",
                    "Content-Type: application/json",
                    "--data",
                    body.unwrap_or(""),
                    &url,
                ])
                .output()
                .unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            let (json, code) = text.rsplit_once('\n').unwrap();
            return (code.parse().unwrap(), serde_json::from_str(json).unwrap_or_default());
        }
        "DELETE" => {
            let out = std::process::Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "-u",
                    &format!("{USER}:{PASSWORD}"),
                    "-X",
                    "DELETE",
                    &url,
                ])
                .output()
                .unwrap();
            return (String::from_utf8(out.stdout).unwrap().parse().unwrap(), serde_json::Value::Null);
        }
        _ => http.get(&url, &[("Authorization", &auth)]).await.unwrap(),
    };
    (r.status, serde_json::from_slice(&r.body).unwrap_or_default())
}

#[tokio::test]
async fn the_api_binds_reports_and_revokes_challenges() {
    let server = Server::start(|_| {});
    server.add_user(USER, PASSWORD, "enroll");
    let (status, c) = api(
        &server,
        "POST",
        "/api/v1/challenges",
        Some(r#"{"subject":"CN=bound-device,O=Example","sans":["DNS:bound.example.com"]}"#),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    let (id, pw) = (c["id"].as_str().unwrap().to_owned(), c["password"].as_str().unwrap().to_owned());
    let (status, s) = api(&server, "GET", &format!("/api/v1/challenges/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(s["status"], "outstanding");
    assert!(s["remaining_seconds"].as_i64().unwrap() > 3500);
    assert!(s.get("password").is_none());

    // Anything else than the bound subject and SANs is refused, and does not use it up.
    let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let client = ScepClient::new(&server.url());
    let mut opts = EnrollOptions::new("CN=other-device,O=Example").challenge(&pw);
    opts.dns = vec!["bound.example.com".into()];
    let text = refused(client.enroll(&key, &opts).await);
    assert!(text.contains("does not match its challenge"), "{text}");
    opts.subject = "CN=bound-device,O=Example".into();
    opts.dns = vec![];
    refused(client.enroll(&key, &opts).await);
    opts.dns = vec!["bound.example.com".into()];
    let got = client.enroll(&key, &opts).await.unwrap();
    let serial = hex::encode_upper(got.certificate.tbs_certificate().serial_number().as_bytes());
    let (status, s) = api(&server, "GET", &format!("/api/v1/challenges/{id}"), None).await;
    assert_eq!(s["status"], "used", "{status} {s}");
    assert_eq!(s["used_serial"], serial.as_str());

    // Revocation.
    let (_, c2) = api(&server, "POST", "/api/v1/challenges", Some("")).await;
    let id2 = c2["id"].as_str().unwrap();
    assert_eq!(api(&server, "DELETE", &format!("/api/v1/challenges/{id2}"), None).await.0, 204);
    assert_eq!(api(&server, "GET", &format!("/api/v1/challenges/{id2}"), None).await.1["status"], "revoked");
    refused(enroll(&server, "revoked", c2["password"].as_str().unwrap()).await);
    assert_eq!(api(&server, "DELETE", &format!("/api/v1/challenges/{id2}"), None).await.0, 404);
    assert_eq!(api(&server, "GET", "/api/v1/challenges/nope", None).await.0, 404);
    let (status, e) = api(&server, "POST", "/api/v1/challenges", Some(r#"{"sans":["bogus"]}"#)).await;
    assert_eq!(status, 400, "{e}");
    // `scepd challenge list` shows outstanding ones without passwords.
    let out = common::scepd(&["challenge", "list", "--json", "--data-dir", server.data_dir().to_str().unwrap()]);
    let list = String::from_utf8(out.stdout).unwrap();
    assert!(!list.contains(&pw));
}

#[tokio::test]
async fn a_challenge_bound_to_a_subject_alone_allows_no_alternative_names() {
    let server = Server::start(|_| {});
    server.add_user(USER, PASSWORD, "enroll");
    let (status, c) = api(&server, "POST", "/api/v1/challenges", Some(r#"{"subject":"CN=only-subject"}"#)).await;
    assert_eq!(status, 201, "{c}");
    let pw = c["password"].as_str().unwrap().to_owned();
    let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let client = ScepClient::new(&server.url());
    let mut opts = EnrollOptions::new("CN=only-subject").challenge(&pw);
    opts.dns = vec!["anything.example.com".into()];
    let text = refused(client.enroll(&key, &opts).await);
    assert!(text.contains("no subject alternative names"), "{text}");
    opts.dns = vec![];
    let got = client.enroll(&key, &opts).await.unwrap();
    let mut exts = got.certificate.tbs_certificate().extensions().into_iter().flatten();
    assert!(exts.all(|e| e.extn_id != const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME));
}

#[tokio::test]
async fn wrong_challenges_are_throttled_per_address() {
    let server = Server::start(|cfg| *cfg = cfg.replace("max_failures = 10", "max_failures = 3"));
    let good = server.challenge();
    for i in 0..3 {
        let text = refused(enroll(&server, &format!("guess-{i}"), "0123456789ABCDEF").await);
        assert!(text.contains("cannot be verified"));
    }
    let text = refused(enroll(&server, "late", &good).await);
    assert!(text.contains("Too many failed attempts"), "{text}");
    assert!(server.certificates().is_empty());
}

#[tokio::test]
async fn failed_logins_are_throttled() {
    let server = Server::start(|cfg| *cfg = cfg.replace("max_failures = 10", "max_failures = 2"));
    server.add_user(USER, PASSWORD, "enroll");
    for _ in 0..2 {
        assert_eq!(admin_page(&server, Some(basic(USER, "nope"))).await.0, 401);
    }
    assert_eq!(admin_page(&server, Some(basic(USER, PASSWORD))).await.0, 429);
}

#[tokio::test]
async fn parallel_wrong_logins_cannot_pass_the_limit() {
    // Each guess is counted before its password check: eight guesses sent at once
    // from one address get two answers "wrong" and six "throttled", not eight "wrong".
    let server = Server::start(|cfg| *cfg = cfg.replace("max_failures = 10", "max_failures = 2"));
    server.add_user(USER, PASSWORD, "enroll");
    let guesses = (0..8).map(|i| admin_page(&server, Some(basic(USER, &format!("guess-{i}")))));
    let statuses: Vec<u16> = futures_util::future::join_all(guesses).await.into_iter().map(|r| r.0).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 2, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 6, "{statuses:?}");
}

#[tokio::test]
async fn parallel_wrong_challenges_cannot_pass_the_limit() {
    let server = Server::start(|cfg| *cfg = cfg.replace("max_failures = 10", "max_failures = 2"));
    let guesses = (0..6).map(|i| {
        let server = &server;
        async move { refused(enroll(server, &format!("guess-{i}"), &format!("{i:016X}")).await) }
    });
    let texts = futures_util::future::join_all(guesses).await;
    let wrong = texts.iter().filter(|t| t.contains("cannot be verified")).count();
    let throttled = texts.iter().filter(|t| t.contains("Too many failed attempts")).count();
    assert_eq!((wrong, throttled), (2, 4), "{texts:?}");
}

/// curl with credentials and extra headers; the HTTP status and body.
fn curl(server: &Server, method: &str, path: &str, headers: &[&str], body: Option<&str>) -> (u16, String) {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-u", &format!("{USER}:{PASSWORD}"), "-X", method]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    if let Some(b) = body {
        cmd.args(["--data", b]);
    }
    let out = cmd.arg(format!("{}{path}", server.base)).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_owned())
}

#[tokio::test]
async fn cross_site_requests_cannot_revoke_or_fill_the_password_cache() {
    let server = Server::start(|_| {});
    server.add_user(USER, PASSWORD, "admin");
    let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let client = ScepClient::new(&server.url());
    let got = client.enroll(&key, &EnrollOptions::new("CN=victim").challenge(&server.challenge())).await.unwrap();
    let serial = hex::encode_upper(got.certificate.tbs_certificate().serial_number().as_bytes());
    let revoke = format!("/api/v1/certificates/{serial}/revoke");
    let form = "Content-Type: application/x-www-form-urlencoded";
    let json = "Content-Type: application/json";
    // A form on another site, posted by a browser with cached credentials.
    let (status, _) = curl(&server, "POST", &revoke, &["Origin: https://evil.example", form], Some("reason=x"));
    assert_eq!(status, 403);
    let (status, _) = curl(&server, "POST", &revoke, &["Sec-Fetch-Site: cross-site", json], Some("{}"));
    assert_eq!(status, 403);
    // A form from a browser that sends neither header: not JSON, refused.
    let (status, text) = curl(&server, "POST", &revoke, &[form], Some("reason=x"));
    assert_eq!(status, 415, "{text}");
    assert!(text.contains("Content-Type: application/json"), "{text}");
    assert_eq!(server.certificates()[0]["status"], "valid");
    // An <img> on another site pointing at the admin page makes no password.
    let admin = "/certsrv/mscep_admin/";
    let img = ["Sec-Fetch-Site: cross-site", "Sec-Fetch-Dest: image", "Sec-Fetch-Mode: no-cors"];
    for _ in 0..3 {
        assert_eq!(curl(&server, "GET", admin, &img, None).0, 403);
    }
    let (_, list) = curl(&server, "GET", "/api/v1/challenges", &[], None);
    let outstanding: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(outstanding.as_array().map_or(0, Vec::len), 0, "{list}");
    // The same requests from the server's own origin, a typed-in URL or a script work.
    assert_eq!(curl(&server, "GET", admin, &["Sec-Fetch-Site: none"], None).0, 200);
    let origin = format!("Origin: {}", server.base);
    let (status, text) = curl(&server, "POST", &revoke, &[&origin, json], Some(r#"{"reason":"keyCompromise"}"#));
    assert_eq!(status, 200, "{text}");
    assert_eq!(server.certificates()[0]["status"], "revoked");
    // An empty POST without a content type (curl -X POST) still mints a challenge.
    assert_eq!(curl(&server, "POST", "/api/v1/challenges", &[], None).0, 201);
}

#[tokio::test]
async fn enroll_only_users_see_and_revoke_only_their_own_challenges() {
    let server = Server::start(|_| {});
    server.add_user(USER, PASSWORD, "enroll");
    server.add_user("other-mdm", "another password", "enroll");
    server.add_user("ops", "operator password", "admin");
    let as_user = |user: &str, pw: &str, method: &str, path: &str| -> (u16, String) {
        let out = std::process::Command::new("curl")
            .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-u", &format!("{user}:{pw}"), "-X", method])
            .arg(format!("{}{path}", server.base))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.parse().unwrap(), body.to_owned())
    };
    let (status, mine) = api(&server, "POST", "/api/v1/challenges", Some("")).await;
    assert_eq!(status, 201);
    let id = mine["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/challenges/{id}");
    // The other MDM account neither lists, reads nor revokes it.
    let (_, list) = as_user("other-mdm", "another password", "GET", "/api/v1/challenges");
    assert!(!list.contains(&id), "{list}");
    assert_eq!(as_user("other-mdm", "another password", "GET", &path).0, 404);
    assert_eq!(as_user("other-mdm", "another password", "DELETE", &path).0, 404);
    // Its owner and an administrator do.
    let (_, list) = api(&server, "GET", "/api/v1/challenges", None).await;
    assert!(list.to_string().contains(&id), "{list}");
    let (_, list) = as_user("ops", "operator password", "GET", "/api/v1/challenges");
    assert!(list.contains(&id), "{list}");
    assert_eq!(as_user("ops", "operator password", "DELETE", &path).0, 204);
    assert_eq!(api(&server, "GET", &path, None).await.1["status"], "revoked");
}

#[tokio::test]
async fn https_serves_the_admin_page_with_a_certificate_from_the_built_in_ca() {
    let server = Server::start(|cfg| {
        cfg.push_str("\n[tls]\nlisten = \"127.0.0.1:0\"\nnames = [\"localhost\", \"127.0.0.1\"]\n")
    });
    server.add_user(USER, PASSWORD, "enroll");
    let url = format!("{}/certsrv/mscep_admin/", server.tls_base.as_ref().unwrap());
    let out = std::process::Command::new("curl")
        .args(["-s", "--fail", "--cacert"])
        .arg(server.data_dir().join("ca.pem"))
        .args(["-u", &format!("{USER}:{PASSWORD}"), &url])
        .output()
        .unwrap();
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    let units: Vec<u16> = out.stdout[2..].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    assert!(scrape(&String::from_utf16(&units).unwrap()).is_some());
}

mod webhook_receiver {
    use std::sync::{Arc, Mutex};

    use axum::{Router, body::Bytes, extract::State, routing::post};

    pub type Events = Arc<Mutex<Vec<serde_json::Value>>>;

    /// A verifier that allows the challenge "ALLOW", denies "DENY", and sleeps on "SLOW".
    pub async fn start() -> (String, Events) {
        let events: Events = Arc::default();
        async fn verify(body: Bytes) -> String {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            match v["challenge"].as_str() {
                Some(c) if c.starts_with("ALLOW") => r#"{"allow": true}"#.into(),
                Some("SLOW") => {
                    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                    r#"{"allow": true}"#.into()
                }
                _ => r#"{"allow": false}"#.into(),
            }
        }
        async fn notify(State(events): State<Events>, body: Bytes) -> &'static str {
            events.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
            "ok"
        }
        let app =
            Router::new().route("/verify", post(verify)).route("/notify", post(notify)).with_state(events.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}"), events)
    }
}

#[tokio::test]
async fn the_webhook_allows_denies_and_times_out_to_deny() {
    let (base, events) = webhook_receiver::start().await;
    let server = Server::start(|cfg| {
        *cfg = cfg.replace("mode = \"one-time\"", "mode = \"webhook\"");
        cfg.push_str(&format!(
            "\n[webhook]\nverify_url = \"{base}/verify\"\nnotify_url = \"{base}/notify\"\ntimeout_ms = 500\n"
        ));
    });
    let got = enroll(&server, "hooked", "ALLOW").await.unwrap();
    // Intune's challenges are encrypted blobs of several kilobytes.
    let long = format!("ALLOW{}", "A".repeat(4091));
    assert_eq!(long.len(), 4096);
    enroll(&server, "long-challenge", &long).await.unwrap();
    assert!(refused(enroll(&server, "denied", "DENY").await).contains("cannot be verified"));
    // A verifier that does not answer in time denies too, without blaming the client.
    assert!(refused(enroll(&server, "slow", "SLOW").await).contains("try again later"));
    assert_eq!(server.certificates().len(), 2);
    // Notifications arrive (asynchronously).
    let serial = hex::encode_upper(got.certificate.tbs_certificate().serial_number().as_bytes());
    for _ in 0..50 {
        if events.lock().unwrap().len() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let ev = events.lock().unwrap().clone();
    let issued = ev.iter().find(|e| e["event"] == "issued" && e["serial"] == serial.as_str()).expect("issued");
    assert_eq!(issued["thumbprint"].as_str().unwrap().len(), 40);
    // What a validation service needs to report success: the CSR, issuer, certificate, expiry.
    let b64 = base64::engine::general_purpose::STANDARD;
    let csr = scep::csr::Csr::from_der(&b64.decode(issued["csr"].as_str().unwrap()).unwrap()).unwrap();
    assert!(csr.subject().to_string().contains("CN=hooked"));
    let ca = got.certificate.tbs_certificate().issuer().to_string();
    assert_eq!(issued["issuer"], ca.as_str());
    let cert = b64.decode(issued["certificate"].as_str().unwrap()).unwrap();
    assert_eq!(cert, der::Encode::to_der(&got.certificate).unwrap());
    assert!(issued["not_after"].as_str().unwrap().len() >= 20);
    // And of a failure: the CSR and the reason.
    let failed: Vec<_> = ev.iter().filter(|e| e["event"] == "failed").collect();
    assert_eq!(failed.len(), 2, "{ev:?}");
    for f in failed {
        assert_eq!(f["message_type"], "PKCSReq");
        assert!(f["csr"].as_str().is_some_and(|c| !c.is_empty()), "{f}");
        assert!(f["reason"].as_str().is_some_and(|r| !r.is_empty()), "{f}");
    }
    assert!(server.logged(|l| l.contains("no answer within")));
}

#[test]
fn the_console_refuses_a_bound_challenge_in_single_mode() {
    let server = Server::start(|cfg| *cfg = cfg.replace("mode = \"one-time\"", "mode = \"single\""));
    server.add_user(USER, PASSWORD, "admin");
    let dir = tempfile::tempdir().unwrap();
    let jar = dir.path().join("jar");
    let curl = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-b"])
            .arg(&jar)
            .arg("-c")
            .arg(&jar)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    curl(&[
        "-d",
        &format!("user={USER}&password={}", PASSWORD.replace(' ', "+")),
        &format!("{}/console/login", server.base),
    ]);
    let page = curl(&[&format!("{}/console/challenges", server.base)]);
    let csrf =
        Regex::new(r#"name="csrf" value="([^"]+)""#).unwrap().captures(&page).unwrap_or_else(|| panic!("{page}"))[1]
            .to_owned();
    let answer = curl(&[
        "-d",
        &format!("csrf={csrf}&subject=CN%3Ddevice1&sans="),
        &format!("{}/console/challenges", server.base),
    ]);
    assert!(answer.contains("Only one-time challenges can be bound"), "{answer}");
    assert!(!answer.contains("id=\"password\""), "the master password was shown: {answer}");
    // Without a binding the console shows the single password, as before.
    let answer = curl(&["-d", &format!("csrf={csrf}&subject=&sans="), &format!("{}/console/challenges", server.base)]);
    assert!(answer.contains("The single password:"), "{answer}");
    // The CLI follows the same rule.
    let out =
        server.cli(&["challenge", "new", "--subject", "CN=device1", "--data-dir", server.data_dir().to_str().unwrap()]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("bind one-time challenges"));
}
