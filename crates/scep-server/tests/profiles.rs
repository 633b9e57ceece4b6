//! Deployment profiles: the Apple .mobileconfig read by a real plist parser (Python's
//! plistlib), and the Windows settings.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::process::Command;

use common::{Server, run_scepclient};

#[test]
fn the_apple_profile_is_a_valid_plist_with_a_working_challenge() {
    let server = Server::start(|_| {});
    let out = server.cli(&[
        "profile",
        "apple",
        "--url",
        &server.url(),
        "--subject",
        "CN=iPhone,O=Example",
        "--dns",
        "phone.example.com",
        "--data-dir",
        server.data_dir().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scep.mobileconfig");
    std::fs::write(&file, &out.stdout).unwrap();
    let script = r#"
import json, plistlib, sys
p = plistlib.load(open(sys.argv[1], "rb"))
s = p["PayloadContent"][0]
c = s["PayloadContent"]
print(json.dumps({
  "type": p["PayloadType"], "inner_type": s["PayloadType"],
  "uuids": [p["PayloadUUID"], s["PayloadUUID"]],
  "url": c["URL"], "challenge": c["Challenge"], "key_type": c["Key Type"], "keysize": c["Keysize"],
  "usage": c["Key Usage"], "subject": c["Subject"], "san": c["SubjectAltName"], "fp": c["CAFingerprint"].hex().upper(),
  "retries": c["Retries"], "delay": c["RetryDelay"],
}))
"#;
    let out = Command::new("python3").arg("-c").arg(script).arg(&file).output().unwrap();
    assert!(out.status.success(), "plistlib: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["type"], "Configuration");
    assert_eq!(v["inner_type"], "com.apple.security.scep");
    assert_ne!(v["uuids"][0], v["uuids"][1]);
    assert_eq!(v["url"], server.url().as_str());
    assert_eq!(
        (v["key_type"].as_str(), v["keysize"].as_i64(), v["usage"].as_i64()),
        (Some("RSA"), Some(2048), Some(5))
    );
    assert_eq!(v["subject"], serde_json::json!([[["O", "Example"]], [["CN", "iPhone"]]]));
    assert_eq!(v["san"]["dNSName"], "phone.example.com");
    let sha1 = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha1", "-in"])
        .arg(server.data_dir().join("ca.pem"))
        .output()
        .unwrap();
    let sha1 = String::from_utf8(sha1.stdout).unwrap().trim().rsplit('=').next().unwrap().replace(':', "");
    assert_eq!(v["fp"], sha1.as_str());
    // The embedded challenge is a real one-time challenge.
    let (ok, text, _d) = run_scepclient(&server.url(), "from-profile", v["challenge"].as_str().unwrap(), &[]);
    assert!(ok, "{text}");

    // The same through the API.
    server.add_user("mdm", "mdm password 1", "enroll");
    let api = Command::new("curl")
        .args(["-s", "-u", "mdm:mdm password 1", "-D", "-"])
        .arg(format!("{}/api/v1/profiles/apple?subject=CN%3Dmac-1&dns=mac.example.com", server.base))
        .output()
        .unwrap();
    let api = String::from_utf8(api.stdout).unwrap();
    assert!(
        api.contains("application/x-apple-aspen-config")
            && api.contains("com.apple.security.scep")
            && api.contains("mac.example.com"),
        "{api}"
    );

    let win =
        server.cli(&["profile", "windows", "--url", &server.url(), "--data-dir", server.data_dir().to_str().unwrap()]);
    let win = String::from_utf8(win.stdout).unwrap();
    assert!(win.contains(&sha1) && win.contains(&server.url()), "{win}");
}
