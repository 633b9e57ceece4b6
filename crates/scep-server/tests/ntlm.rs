//! NTLM and Negotiate on the NDES admin page, as products that integrate with NDES use
//! it: `curl --ntlm`, Python's requests_ntlm and the `scep` client get challenges; a
//! wrong password, an unknown user, a user not enabled for NTLM, a replayed
//! AUTHENTICATE and one sent on another connection are refused, and failures throttle.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::process::Command;

use base64::Engine as _;
use common::Server;
use scep_client::ntlm;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const PASSWORD: &str = "correct horse 7";

fn add_ntlm_user(server: &Server, name: &str) {
    server.add_ntlm_user(name, PASSWORD, "enroll");
}

/// The challenge password on an admin page body (UTF-16LE).
fn password_on(body: &[u8]) -> Option<String> {
    scep_client::admin::extract_password(&scep_client::admin::decode_body(body))
}

/// `curl --ntlm -u USER:PW URL`: (HTTP status, body).
fn curl_ntlm(url: &str, user: &str, password: &str) -> (u16, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    let out = Command::new("curl")
        .args(["-s", "--ntlm", "-u", &format!("{user}:{password}"), "-o"])
        .arg(&body)
        .args(["-w", "%{http_code}", url])
        .output()
        .expect("curl is not installed (.ci/run installs it)");
    let code = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
    (code, std::fs::read(&body).unwrap_or_default())
}

#[test]
fn curl_ntlm_gets_a_challenge_and_wrong_logins_are_refused_and_throttled() {
    let server = Server::start(|cfg| {
        *cfg = cfg.replace("max_failures = 10", "max_failures = 4");
    });
    add_ntlm_user(&server, "svc");
    server.add_user("basiconly", PASSWORD, "enroll");
    let url = server.admin_url();
    // Domain-qualified names map to the scepd user; the case of the name does not matter.
    for who in ["CORP\\svc", "svc@corp.example", "SVC", "svc"] {
        let (code, body) = curl_ntlm(&url, who, PASSWORD);
        assert_eq!(code, 200, "{who}");
        let pw = password_on(&body).unwrap_or_else(|| panic!("no password for {who}"));
        assert_eq!(pw.len(), 16);
    }
    // The NDES path that some Java clients use answers the same.
    let (code, body) = curl_ntlm(&format!("{url}mscep.dll"), "CORP\\svc", PASSWORD);
    assert_eq!(code, 200);
    assert!(password_on(&body).is_some());

    // Wrong password, unknown user, a user without --ntlm: 401, then the throttle.
    for (who, pw) in [("CORP\\svc", "wrong password"), ("CORP\\nobody", PASSWORD), ("basiconly", PASSWORD)] {
        assert_eq!(curl_ntlm(&url, who, pw).0, 401, "{who}");
    }
    assert!(server.logged(|l| l.contains("failed NTLM login") && l.contains("not enabled for NTLM")));
    assert_eq!(curl_ntlm(&url, "CORP\\svc", "wrong again").0, 401);
    assert_eq!(curl_ntlm(&url, "CORP\\svc", PASSWORD).0, 429, "the address is throttled, even with the right password");
    // The NT hash is kept sealed, never in clear: no 16-byte MD4 of the password in the database.
    let db = std::fs::read(server.data_dir().join("scepd.db")).unwrap();
    let nt = ntlm::nt_hash(PASSWORD);
    assert!(!db.windows(16).any(|w| w == nt), "the NT hash is in the database in clear");
}

/// `curl --negotiate -u :` with gss-ntlmssp and no Kerberos ticket: SPNEGO carrying
/// NTLM, the credentials from an NTLM_USER_FILE. (HTTP status, body, stderr).
fn curl_negotiate(url: &str, user: &str, password: &str) -> (u16, Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    let (domain, name) = user.split_once('\\').unwrap_or(("", user));
    let users = dir.path().join("ntlm-users");
    std::fs::write(&users, format!("{domain}:{name}:{password}\n")).unwrap();
    let out = Command::new("curl")
        .args(["-s", "-v", "--negotiate", "-u", ":", "-o"])
        .arg(&body)
        .args(["-w", "%{http_code}", url])
        .env("NTLM_USER_FILE", &users)
        .env("KRB5CCNAME", dir.path().join("no-ticket"))
        .env("KRB5_CONFIG", dir.path().join("no-krb5.conf"))
        .output()
        .expect("curl is not installed (.ci/run installs it)");
    let code = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
    (code, std::fs::read(&body).unwrap_or_default(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn curl_negotiate_falls_back_to_ntlm_inside_spnego() {
    assert!(
        std::path::Path::new("/usr/lib/x86_64-linux-gnu/gssntlmssp/gssntlmssp.so").exists()
            || std::path::Path::new("/usr/lib/aarch64-linux-gnu/gssntlmssp/gssntlmssp.so").exists(),
        "gss-ntlmssp is not installed (.ci/run installs it)"
    );
    let server = Server::start(|cfg| *cfg = cfg.replace("max_failures = 10", "max_failures = 3"));
    add_ntlm_user(&server, "svc");
    let url = server.admin_url();
    let (code, body, log) = curl_negotiate(&url, "CORP\\svc", PASSWORD);
    assert_eq!(code, 200, "{log}");
    assert!(log.contains("Authorization: Negotiate YE"), "curl did not send SPNEGO: {log}");
    assert_eq!(password_on(&body).map(|p| p.len()), Some(16));
    assert!(server.logged(|l| l.contains("NTLM login") && l.contains("Negotiate")));
    // A wrong password is refused and counted like any other failed login.
    for _ in 0..3 {
        assert_eq!(curl_negotiate(&url, "CORP\\svc", "wrong").0, 401);
    }
    assert_eq!(curl_negotiate(&url, "CORP\\svc", PASSWORD).0, 429);
}

#[tokio::test]
async fn without_credentials_the_admin_page_offers_negotiate_ntlm_then_basic() {
    let server = Server::start(|_| {});
    let r = scep_client::http::HttpClient::default().get(&server.admin_url(), &[]).await.unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.www_authenticate[..2], ["Negotiate".to_owned(), "NTLM".to_owned()]);
    assert!(r.www_authenticate[2].starts_with("Basic realm="), "{:?}", r.www_authenticate);
    // Basic can be turned off: then only the Windows schemes are offered, and Basic fails.
    let server = Server::start(|cfg| *cfg = cfg.replace("allow_basic = true", "allow_basic = false"));
    server.add_user("basic", PASSWORD, "enroll");
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("basic:{PASSWORD}")));
    let r = scep_client::http::HttpClient::default()
        .get(&server.admin_url(), &[("Authorization", basic.as_str())])
        .await
        .unwrap();
    assert_eq!((r.status, r.www_authenticate.len()), (401, 2), "{:?}", r.www_authenticate);
}

#[tokio::test]
async fn the_scep_client_falls_back_to_ntlm_when_basic_is_off() {
    let server = Server::start(|cfg| *cfg = cfg.replace("allow_basic = true", "allow_basic = false"));
    add_ntlm_user(&server, "svc");
    let page = scep_client::admin::fetch_challenge(
        &server.admin_url(),
        "CORP\\svc",
        PASSWORD,
        std::time::Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(page.scheme, "NTLM");
    assert_eq!(page.password.len(), 16);
    // The challenge it got enrolls.
    let key = scep::crypto::PrivateKey::generate(scep::crypto::KeyType::Rsa2048).unwrap();
    let opts = scep_client::EnrollOptions::new("CN=via-ntlm").challenge(&page.password);
    scep_client::ScepClient::new(&server.url()).enroll(&key, &opts).await.unwrap();
}

#[test]
fn requests_ntlm_gets_a_challenge() {
    let python = std::env::var("SCEPD_INTEROP_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/interop-venv/bin/python").to_owned());
    let server = Server::start(|_| {});
    add_ntlm_user(&server, "svc");
    let script = "import sys, requests, requests_ntlm\n\
                  r = requests.get(sys.argv[1], auth=requests_ntlm.HttpNtlmAuth(sys.argv[2], sys.argv[3]), timeout=20)\n\
                  print(r.status_code)\n\
                  sys.stdout.write(r.content.decode('utf-16') if r.status_code == 200 else r.text)\n";
    for (who, expect) in [("CORP\\svc", "200"), ("CORP\\svc-typo", "401")] {
        let out = Command::new(&python)
            .args(["-c", script, &server.admin_url(), who, PASSWORD])
            .output()
            .unwrap_or_else(|e| panic!("{python}: {e} (run .ci/run, which installs interop/requirements.txt)"));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(text.lines().next(), Some(expect), "{who}: {text}");
        if expect == "200" {
            assert!(scep_client::admin::extract_password(&text).is_some(), "{text}");
        }
    }
}

/// One keep-alive HTTP/1.1 connection, raw.
struct Conn {
    r: BufReader<TcpStream>,
}

impl Conn {
    async fn open(base: &str) -> Conn {
        let addr = base.trim_start_matches("http://");
        Conn { r: BufReader::new(TcpStream::connect(addr).await.unwrap()) }
    }

    /// GET the admin page with `authorization`; (status, WWW-Authenticate values).
    async fn get(&mut self, authorization: Option<&str>) -> (u16, Vec<String>) {
        let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
        let req = format!("GET /certsrv/mscep_admin/ HTTP/1.1\r\nHost: x\r\n{auth}\r\n");
        self.r.get_mut().write_all(req.as_bytes()).await.unwrap();
        let mut status = String::new();
        self.r.read_line(&mut status).await.unwrap();
        let code = status.split(' ').nth(1).unwrap().parse().unwrap();
        let (mut len, mut www) = (0usize, Vec::new());
        loop {
            let mut line = String::new();
            self.r.read_line(&mut line).await.unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(": ").unwrap();
            if k.eq_ignore_ascii_case("content-length") {
                len = v.parse().unwrap();
            } else if k.eq_ignore_ascii_case("www-authenticate") {
                www.push(v.to_owned());
            }
        }
        let mut body = vec![0; len];
        self.r.read_exact(&mut body).await.unwrap();
        (code, www)
    }
}

#[tokio::test]
async fn an_authenticate_is_good_once_and_only_on_its_connection() {
    let server = Server::start(|_| {});
    add_ntlm_user(&server, "svc");
    let b64 = base64::engine::general_purpose::STANDARD;
    let creds = ntlm::Credentials::new("CORP\\svc", PASSWORD);
    let negotiate = ntlm::negotiate_message();

    let mut a = Conn::open(&server.base).await;
    let (code, www) = a.get(Some(&format!("NTLM {}", b64.encode(&negotiate)))).await;
    assert_eq!(code, 401);
    let token = www.iter().find_map(|w| w.strip_prefix("NTLM ")).expect("an NTLM CHALLENGE");
    let challenge = ntlm::Challenge::parse(&b64.decode(token).unwrap()).unwrap();
    assert!(challenge.timestamp().is_some(), "the target information carries a timestamp");
    let authenticate = format!("NTLM {}", b64.encode(ntlm::authenticate_message(&creds, &negotiate, &challenge)));
    assert_eq!(a.get(Some(&authenticate)).await.0, 200);
    // The connection stays authenticated, as IIS keeps it.
    assert_eq!(a.get(None).await.0, 200);
    // The same AUTHENTICATE again, on this connection or on another: refused.
    assert_eq!(a.get(Some(&authenticate)).await.0, 401);
    let mut b = Conn::open(&server.base).await;
    assert_eq!(b.get(Some(&authenticate)).await.0, 401);
    assert!(server.logged(|l| l.contains("an AUTHENTICATE without a CHALLENGE on this connection")));

    // A Kerberos (SPNEGO) token is not a failed login: the schemes are offered again.
    let spnego = format!("Negotiate {}", b64.encode([0x60, 0x06, 0x06, 0x04, 0x2b, 0x06, 0x01, 0x05]));
    let (code, www) = b.get(Some(&spnego)).await;
    assert_eq!((code, www.first().map(String::as_str)), (401, Some("Negotiate")));

    // Negotiate with a raw NTLM token works the same way and answers in Negotiate.
    let mut c = Conn::open(&server.base).await;
    let (code, www) = c.get(Some(&format!("Negotiate {}", b64.encode(&negotiate)))).await;
    assert_eq!(code, 401);
    let token = www.iter().find_map(|w| w.strip_prefix("Negotiate ")).expect("a Negotiate CHALLENGE");
    let challenge = ntlm::Challenge::parse(&b64.decode(token).unwrap()).unwrap();
    let authenticate = format!("Negotiate {}", b64.encode(ntlm::authenticate_message(&creds, &negotiate, &challenge)));
    assert_eq!(c.get(Some(&authenticate)).await.0, 200);
}

#[test]
fn the_console_logs_in_with_ntlm() {
    let server = Server::start(|_| {});
    server.add_ntlm_user("ops", PASSWORD, "admin");
    let dir = tempfile::tempdir().unwrap();
    let jar = dir.path().join("cookies");
    let out = Command::new("curl")
        .args(["-s", "--ntlm", "-u", &format!("CORP\\ops:{PASSWORD}"), "-c"])
        .arg(&jar)
        .args(["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}"])
        .arg(format!("{}/console/login/windows", server.base))
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.starts_with("303 ") && answer.ends_with("/console/"), "{answer}");
    // The session cookie opens the console, with no credentials.
    let out = Command::new("curl")
        .args(["-s", "-b"])
        .arg(&jar)
        .args(["-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{}/console/", server.base))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    // A wrong password gets no session.
    let (code, _) = curl_ntlm(&format!("{}/console/login/windows", server.base), "CORP\\ops", "wrong");
    assert_eq!(code, 401);
}
