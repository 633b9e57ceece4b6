//! The admin page rendered by a real browser (Debian's Chromium, headless): it logs in
//! with NTLM (offered before Basic, as IIS does, and preferred by browsers), decodes
//! the UTF-16LE body and shows a password that then enrolls.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::process::Command;

use common::{Server, run_scepclient};

fn chromium(args: &[&str], url: &str) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium is not installed: apt-get install -y chromium (.ci/run does this)")
}

#[test]
fn chromium_renders_the_admin_page_and_its_password_enrolls() {
    let server = Server::start(|_| {});
    server.add_ntlm_user("browser", "browser password", "enroll");
    let url = format!("{}/certsrv/mscep_admin/", server.base.replace("http://", "http://browser:browser%20password@"));
    let out = chromium(&["--dump-dom"], &url);
    let dom = String::from_utf8_lossy(&out.stdout);
    let re = regex::Regex::new(r"(?i)The enrollment challenge password is: <b> ([0-9A-F]{16}) </b>").unwrap();
    let pw = re.captures(&dom).unwrap_or_else(|| panic!("no password in the rendered page: {dom}"))[1].to_owned();
    assert!(dom.contains("The thumbprint (hash value) for the CA certificate is:"));
    let (ok, text, _d) = run_scepclient(&server.url(), "from-browser", &pw, &[]);
    assert!(ok, "{text}");
    assert!(server.logged(|l| l.contains("NTLM login") && l.contains("browser")), "{:?}", server.logs());

    let shot = tempfile::tempdir().unwrap();
    let png = shot.path().join("admin.png");
    chromium(&["--window-size=1000,420", &format!("--screenshot={}", png.display())], &url);
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
}
