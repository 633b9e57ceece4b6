//! The web console driven by a real browser (Debian's Chromium through ChromeDriver's
//! WebDriver protocol): log in, create a challenge, enroll with scepclient using it,
//! see the enrollment in the audit view, revoke the certificate, approve a pending
//! request. With SCEPD_SCREENSHOTS=DIR, each page is saved there as PNG.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use common::{Server, run_scepclient};
use scep::crypto::{KeyType, PrivateKey};
use scep_client::http::HttpClient;
use scep_client::{EnrollOptions, ScepClient};
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: HttpClient,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is not installed: apt-get install -y chromium-driver (.ci/run does this)");
        let base = format!("http://127.0.0.1:{port}");
        let http = HttpClient::new(Duration::from_secs(60));
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1000,800", format!("--user-data-dir={}", profile.path().display())]
        }}}});
        let mut session = None;
        for _ in 0..100 {
            if let Ok(r) =
                http.post(&format!("{base}/session"), "application/json", caps.to_string().into_bytes()).await
            {
                let v: Value = serde_json::from_slice(&r.body).unwrap();
                session =
                    Some(v["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {v}")).to_owned());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Browser { driver, base, session: session.expect("chromedriver did not start"), http, _profile: profile }
    }

    async fn cmd(&self, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}/{path}", self.base, self.session);
        let r = self.http.post(&url, "application/json", body.to_string().into_bytes()).await.unwrap();
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(v["value"].get("error").is_none(), "{path}: {v}");
        v["value"].clone()
    }

    async fn get(&self, path: &str) -> Value {
        let r = self.http.get(&format!("{}/session/{}/{path}", self.base, self.session), &[]).await.unwrap();
        serde_json::from_slice::<Value>(&r.body).unwrap()["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.cmd("url", json!({ "url": url })).await;
    }

    async fn find(&self, css: &str) -> String {
        self.cmd("element", json!({"using": "css selector", "value": css})).await[ELEMENT].as_str().unwrap().to_owned()
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd(&format!("element/{e}/click"), json!({})).await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd(&format!("element/{e}/value"), json!({ "text": text })).await;
    }

    async fn source(&self) -> String {
        self.get("source").await.as_str().unwrap().to_owned()
    }

    /// Wait (up to ten seconds) until the page shows `text`: a click that submits a
    /// form may return before the next page has loaded.
    async fn wait_for(&self, text: &str) -> bool {
        for _ in 0..100 {
            if self.source().await.contains(text) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.get(&format!("element/{e}/text")).await.as_str().unwrap().to_owned()
    }

    async fn screenshot(&self, name: &str) {
        let png =
            base64::engine::general_purpose::STANDARD.decode(self.get("screenshot").await.as_str().unwrap()).unwrap();
        assert_eq!(&png[..4], b"\x89PNG");
        if let Ok(dir) = std::env::var("SCEPD_SCREENSHOTS") {
            std::fs::write(format!("{dir}/console-{name}.png"), png).unwrap();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = Command::new("curl")
            .args(["-s", "-X", "DELETE", &format!("{}/session/{}", self.base, self.session)])
            .output();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[tokio::test]
async fn an_administrator_runs_scepd_from_the_console() {
    let server = Server::start(|c| c.push_str("\n[templates.manual]\napproval = \"manual\"\n"));
    server.add_user("admin", "console password", "admin");
    let b = Browser::start().await;
    let console = format!("{}/console/", server.base);

    // Log in.
    b.go(&console).await;
    assert!(b.wait_for("Log in").await);
    b.type_into("#user", "admin").await;
    b.type_into("#password", "console password").await;
    b.click("#login").await;
    assert!(b.wait_for("CA and RA certificates").await);
    b.screenshot("overview").await;

    // Create a challenge and enroll with scepclient using it.
    b.go(&format!("{console}challenges")).await;
    b.click("#create").await;
    assert!(b.wait_for("id=\"password\"").await);
    let pw = b.text("#password").await;
    assert_eq!(pw.len(), 16);
    b.screenshot("challenges").await;
    let (ok, out, _d) = run_scepclient(&server.url(), "console-device", &pw, &[]);
    assert!(ok, "{out}");

    // The enrollment in the audit view (the audit writer is asynchronous).
    let mut seen = false;
    for _ in 0..20 {
        b.go(&format!("{console}audit?subject=console-device")).await;
        if b.source().await.contains("issued") {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "the enrollment is not in the audit view");
    b.screenshot("audit").await;

    // Revoke it.
    let serial = server.certificates()[0]["serial"].as_str().unwrap().to_owned();
    b.go(&format!("{console}certificates?q=console-device")).await;
    b.click(&format!("a[href='/console/certificates/{serial}']")).await;
    assert!(b.wait_for("id=\"revoke\"").await);
    b.click("#revoke").await;
    assert!(b.wait_for(">revoked at").await);
    assert!(b.text("#status").await.starts_with("revoked"));
    b.screenshot("certificate").await;
    assert_eq!(server.certificates()[0]["status"], "revoked");

    // Approve a pending request while its client polls.
    let url = format!("{}/scep/manual", server.base);
    let pw = server.challenge();
    let waiting = tokio::spawn(async move {
        let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
        let mut opts = EnrollOptions::new("CN=awaiting-approval").challenge(&pw);
        opts.poll_interval = Duration::from_millis(200);
        opts.max_wait = Duration::from_secs(30);
        ScepClient::new(&url).enroll(&key, &opts).await
    });
    let mut approved = false;
    for _ in 0..50 {
        b.go(&format!("{console}requests")).await;
        if b.source().await.contains("awaiting-approval") {
            b.screenshot("requests").await;
            b.click("button[id^='approve-']").await;
            approved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(approved, "the pending request never showed");
    waiting.await.unwrap().unwrap();

    // Forms without the session's token are refused.
    let forged = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--data", "reason=keyCompromise"])
        .arg(format!("{console}certificates/{serial}/revoke"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&forged.stdout), "303", "no session: sent to the login page");
}

/// One console request with curl: status, response headers (lower-case) and body.
fn console_curl(base: &str, path: &str, cookie: Option<&str>, form: Option<&str>, ca: Option<&Path>) -> Answer {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-D", "-", "-o", "-"]);
    if let Some(ca) = ca {
        cmd.arg("--cacert").arg(ca);
    }
    if let Some(c) = cookie {
        cmd.args(["-H", &format!("Cookie: {c}")]);
    }
    if let Some(f) = form {
        cmd.args(["--data", f]);
    }
    let out = cmd.arg(format!("{base}{path}")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie: scepd_console="))
        .map(|l| l.get("set-cookie: ".len()..).unwrap().split(';').next().unwrap().to_owned());
    Answer { status, head: head.to_ascii_lowercase(), body: body.to_owned(), cookie }
}

struct Answer {
    status: u16,
    head: String,
    body: String,
    cookie: Option<String>,
}

/// Log in: the session cookie, the CSRF token of the overview, the login's headers.
fn login(base: &str, user: &str, pw: &str, ca: Option<&Path>) -> (String, String, String) {
    let a = console_curl(base, "/console/login", None, Some(&format!("user={user}&password={pw}")), ca);
    assert_eq!(a.status, 303, "{}", a.head);
    let cookie = a.cookie.unwrap();
    let page = console_curl(base, "/console/", Some(&cookie), None, ca);
    assert_eq!(page.status, 200);
    let csrf = page.body.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    (cookie, csrf, a.head)
}

#[tokio::test]
async fn logout_and_a_password_change_end_console_sessions() {
    let server = Server::start(|cfg| {
        cfg.push_str("\n[tls]\nlisten = \"127.0.0.1:0\"\nnames = [\"localhost\", \"127.0.0.1\"]\n")
    });
    server.add_user("ops", "operator password", "admin");
    let base = server.base.clone();
    let pw = "operator%20password";

    // Two sessions; logging out of one ends both, and a copied cookie is worthless.
    let (first, csrf, head) = login(&base, "ops", pw, None);
    assert!(!head.lines().any(|l| l.starts_with("set-cookie:") && l.contains("secure")), "loopback over HTTP: {head}");
    let (second, _, _) = login(&base, "ops", pw, None);
    let out = console_curl(&base, "/console/logout", Some(&first), Some(&format!("csrf={csrf}")), None);
    assert_eq!(out.status, 303);
    for cookie in [&first, &second] {
        let a = console_curl(&base, "/console/", Some(cookie), None, None);
        assert_eq!(a.status, 303, "{}", a.head);
        assert!(a.head.contains("location: /console/login"), "{}", a.head);
    }

    // A password change ends the sessions too.
    let (third, _, _) = login(&base, "ops", pw, None);
    let out = common::scepd_stdin(
        &["user", "passwd", "ops", "--password-stdin", "--data-dir", server.data_dir().to_str().unwrap()],
        "a new password\n",
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(console_curl(&base, "/console/", Some(&third), None, None).status, 303);

    // Over HTTPS the cookie is Secure and the pages carry HSTS.
    let ca = server.data_dir().join("ca.pem");
    let tls = server.tls_base.clone().unwrap().replace("127.0.0.1", "localhost");
    let (cookie, _, head) = login(&tls, "ops", "a%20new%20password", Some(&ca));
    assert!(head.lines().any(|l| l.starts_with("set-cookie:") && l.contains("; secure")), "{head}");
    let a = console_curl(&tls, "/console/", Some(&cookie), None, Some(&ca));
    assert!(a.head.contains("strict-transport-security: max-age=31536000"), "{}", a.head);
}
