//! `scep enroll`, `renew`, `poll`, `getcert`, `getcrl`, `challenge` and `cacert`
//! against the real scepd, their output checked by OpenSSL.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::{PASSWORD, Scepd, USER, openssl, scep};

fn path(dir: &tempfile::TempDir, name: &str) -> String {
    dir.path().join(name).to_str().unwrap().to_owned()
}

/// The serial number `openssl x509` prints for a certificate file.
fn serial(cert: &str) -> String {
    let (ok, out) = openssl(&["x509", "-in", cert, "-noout", "-serial"]);
    assert!(ok, "{out}");
    out.trim().strip_prefix("serial=").unwrap().to_owned()
}

#[test]
fn enroll_writes_a_key_and_chain_openssl_verifies_and_a_p12_openssl_3_opens() {
    let server = Scepd::start(|_| {});
    let out = tempfile::tempdir().unwrap();
    let p12 = path(&out, "device.p12");
    let (code, stdout, stderr) = scep(
        &[
            "enroll",
            &server.url(),
            "--challenge",
            &server.challenge(),
            "--subject",
            "CN=device-1,O=Example",
            "--dns",
            "device-1.example.com",
            "--ip",
            "192.0.2.7",
            "--email",
            "ops@example.com",
            "--upn",
            "device-1@example.com",
            "--out",
            out.path().to_str().unwrap(),
            "--p12",
            &p12,
            "--p12-password-stdin",
        ],
        &[],
        Some("p12 secret\n"),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("issued: CN=device-1,O=Example"), "{stdout}");
    let (cert, chain, key) = (path(&out, "cert.pem"), path(&out, "chain.pem"), path(&out, "key.pem"));
    let (ok, text) = openssl(&["verify", "-CAfile", &chain, &cert]);
    assert!(ok && text.contains(": OK"), "{text}");
    let (ok, text) = openssl(&["verify", "-CAfile", server.ca_pem().to_str().unwrap(), &cert]);
    assert!(ok, "{text}");
    let (_, text) = openssl(&["x509", "-in", &cert, "-noout", "-ext", "subjectAltName"]);
    for want in
        ["DNS:device-1.example.com", "IP Address:192.0.2.7", "email:ops@example.com", "UPN::device-1@example.com"]
    {
        assert!(text.contains(want), "{want} missing from {text}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o077, 0, "key.pem is private");
        assert_eq!(std::fs::metadata(&p12).unwrap().permissions().mode() & 0o077, 0, "the .p12 is private");
    }

    // OpenSSL 3.0 reads the PKCS#12: MAC verified, PBES2/AES-256 key, the certificate and chain.
    let (ok, info) = openssl(&["pkcs12", "-info", "-in", &p12, "-passin", "pass:p12 secret", "-noenc"]);
    assert!(ok, "{info}");
    assert!(info.contains("MAC: sha256"), "{info}");
    assert!(info.contains("PBES2, PBKDF2, AES-256-CBC"), "{info}");
    assert!(info.contains("PRF hmacWithSHA256"), "{info}");
    assert_eq!(info.matches("-----BEGIN CERTIFICATE-----").count(), 2, "certificate and CA: {info}");
    assert!(info.contains("-----BEGIN PRIVATE KEY-----"), "{info}");
    assert!(info.contains("friendlyName: device-1"), "{info}");
    // The key in it is key.pem's.
    let pub_of = |args: &[&str]| {
        let (ok, out) = openssl(args);
        assert!(ok, "{out}");
        out
    };
    let from_p12 = tempfile::NamedTempFile::new().unwrap();
    let from_p12 = from_p12.path().to_str().unwrap();
    pub_of(&["pkcs12", "-in", &p12, "-passin", "pass:p12 secret", "-nocerts", "-noenc", "-out", from_p12]);
    assert_eq!(pub_of(&["pkey", "-in", from_p12, "-pubout"]), pub_of(&["pkey", "-in", &key, "-pubout"]));
    // A wrong password fails the MAC check.
    let (ok, _) = openssl(&["pkcs12", "-info", "-in", &p12, "-passin", "pass:wrong", "-noenc"]);
    assert!(!ok);

    // An EC key (P-256) enrolls too (scepd answers to a throw-away RSA signer).
    let ec = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = scep(
        &[
            "enroll",
            &server.url(),
            "--subject",
            "CN=ec-device",
            "--key-type",
            "p256",
            "--out",
            ec.path().to_str().unwrap(),
        ],
        &[("SCEP_CHALLENGE", &server.challenge()), ("SCEP_P12_PASSWORD", "x")],
        None,
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (_, text) = openssl(&["x509", "-in", &path(&ec, "cert.pem"), "-noout", "-text"]);
    assert!(text.contains("prime256v1"), "{text}");

    // Errors say what to fix, and exit non-zero.
    let (code, _, err) = scep(
        &["enroll", &server.url(), "--subject", "CN=x", "--p12", &path(&ec, "x.p12"), "--challenge", "y"],
        &[],
        None,
    );
    assert_ne!(code, 0);
    assert!(err.contains("SCEP_P12_PASSWORD"), "{err}");
    let (code, _, err) =
        scep(&["enroll", &server.url(), "--subject", "CN=x", "--challenge", "0000000000000000"], &[], None);
    assert_ne!(code, 0);
    assert!(err.contains("badRequest"), "{err}");
    let (code, _, err) = scep(&["enroll", &server.url(), "--subject", "not a name", "--challenge", "y"], &[], None);
    assert_ne!(code, 0);
    assert!(err.contains("CN=device"), "{err}");
}

#[test]
fn renew_getcert_getcrl_and_cacert_against_scepd() {
    let server = Scepd::start(|_| {});
    let first = tempfile::tempdir().unwrap();
    let (code, out, err) = scep(
        &[
            "enroll",
            &server.url(),
            "--challenge",
            &server.challenge(),
            "--subject",
            "CN=router-7,O=Example",
            "--dns",
            "router-7.example.com",
            "--out",
            first.path().to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    let cert = path(&first, "cert.pem");
    let key = path(&first, "key.pem");

    // RenewalReq signed by the current certificate, same key, no challenge.
    let second = tempfile::tempdir().unwrap();
    let (code, out, err) = scep(
        &["renew", &server.url(), "--cert", &cert, "--key", &key, "--out", second.path().to_str().unwrap()],
        &[],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    let renewed = path(&second, "cert.pem");
    assert_ne!(serial(&renewed), serial(&cert));
    let (ok, text) = openssl(&["verify", "-CAfile", &path(&second, "chain.pem"), &renewed]);
    assert!(ok, "{text}");
    let (_, san) = openssl(&["x509", "-in", &renewed, "-noout", "-ext", "subjectAltName"]);
    assert!(san.contains("DNS:router-7.example.com"), "the SAN is carried over: {san}");

    // PKCSReq with a new key, signed by the renewed certificate.
    let third = tempfile::tempdir().unwrap();
    let (code, out, err) = scep(
        &[
            "renew",
            &server.url(),
            "--cert",
            &renewed,
            "--key",
            &path(&second, "key.pem"),
            "--new-key",
            "--pkcsreq",
            "--out",
            third.path().to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    let pubkey = |k: &str| openssl(&["pkey", "-in", k, "-pubout"]).1;
    assert_ne!(pubkey(&path(&third, "key.pem")), pubkey(&key), "a new key");

    // GetCert returns the issued certificate by serial number.
    let got = path(&third, "got.pem");
    let (code, out, err) = scep(&["getcert", &server.url(), "--serial", &serial(&cert), "--out", &got], &[], None);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read_to_string(&got).unwrap(), std::fs::read_to_string(&cert).unwrap());
    let (code, _, err) = scep(&["getcert", &server.url(), "--serial", "0102030405"], &[], None);
    assert_ne!(code, 0);
    assert!(err.contains("failInfo"), "{err}");

    // GetCRL: a CRL the CA signed, listing a revoked certificate.
    let out = server.admin(&["cert", "revoke", &serial(&cert), "--reason", "keyCompromise"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let crl = path(&third, "ca.crl");
    let (code, out, err) = scep(&["getcrl", &server.url(), "--serial", &serial(&cert), "--out", &crl], &[], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 revoked"), "{out}");
    let (ok, text) = openssl(&["crl", "-in", &crl, "-CAfile", server.ca_pem().to_str().unwrap(), "-noout", "-text"]);
    assert!(ok && text.contains("verify OK"), "{text}");
    assert!(text.to_uppercase().contains(&serial(&cert).to_uppercase()), "{text}");

    // cacert: roles, validity and the three fingerprints; --out writes the chain.
    let chain = path(&third, "ca-chain.pem");
    let (code, out, err) = scep(&["cacert", &server.url(), "--out", &chain], &[], None);
    assert_eq!(code, 0, "{out}{err}");
    for want in ["- CA: ", "- RA encryption: ", "- RA signing: ", "MD5:", "SHA-1:", "SHA-256:", "valid:"] {
        assert!(out.contains(want), "{want} missing from {out}");
    }
    let (_, fp) = openssl(&["x509", "-in", server.ca_pem().to_str().unwrap(), "-noout", "-fingerprint", "-sha256"]);
    let fp: String = fp.trim().rsplit('=').next().unwrap().replace(':', "");
    assert!(out.contains(&fp), "the CA's SHA-256 {fp} in {out}");
    assert_eq!(std::fs::read_to_string(&chain).unwrap().matches("BEGIN CERTIFICATE").count(), 3);

    // caps prints the keywords.
    let (code, out, _) = scep(&["caps", &server.url()], &[], None);
    assert_eq!(code, 0);
    assert!(out.lines().any(|l| l == "POSTPKIOperation"), "{out}");
}

#[test]
fn a_pending_enrollment_is_finished_by_poll_after_approval() {
    let server = Scepd::start(|cfg| *cfg = cfg.replace("approval = \"auto\"", "approval = \"manual\""));
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = scep(
        &[
            "enroll",
            &server.url(),
            "--challenge",
            &server.challenge(),
            "--subject",
            "CN=needs-approval",
            "--wait",
            "0",
            "--out",
            dir.path().to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("PENDING"), "{out}");
    let tid = out.split("--transaction-id ").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    let poll = ["poll", &server.url(), "--transaction-id", &tid, "--subject", "CN=needs-approval"];
    let key = path(&dir, "key.pem");
    let mut args: Vec<&str> = poll.to_vec();
    args.extend(["--key", &key, "--out", dir.path().to_str().unwrap()]);
    let (code, out, err) = scep(&args, &[], None);
    assert_eq!(code, 2, "still pending: {out}{err}");

    let list = server.admin(&["request", "list", "--status", "pending", "--json"]);
    let pending: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    let id = pending[0]["id"].as_str().unwrap().to_owned();
    let out = server.admin(&["request", "approve", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let (code, out, err) = scep(&args, &[], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("issued: CN=needs-approval"), "{out}");
    let (ok, text) = openssl(&["verify", "-CAfile", &path(&dir, "chain.pem"), &path(&dir, "cert.pem")]);
    assert!(ok, "{text}");
}

#[test]
fn challenge_prints_only_the_admin_page_password_and_names_refusals() {
    let server = Scepd::start(|cfg| *cfg = cfg.replace("password_max = 5", "password_max = 2"));
    let admin = server.admin_url();
    // The password from standard input, or SCEP_PASSWORD.
    let (code, out, err) = scep(
        &["challenge", &admin, "--user", USER, "--auth", "basic", "--allow-basic-over-http"],
        &[],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(code, 0, "{err}");
    let pw = out.trim().to_owned();
    assert_eq!(out, format!("{pw}\n"), "just the password on stdout");
    assert!(pw.len() == 16 && pw.chars().all(|c| c.is_ascii_hexdigit()), "{pw}");
    // It enrolls once.
    let dir = tempfile::tempdir().unwrap();
    let enroll = |pw: &str| {
        scep(
            &[
                "enroll",
                &server.url(),
                "--challenge",
                pw,
                "--subject",
                "CN=scraped",
                "--out",
                dir.path().to_str().unwrap(),
            ],
            &[],
            None,
        )
    };
    assert_eq!(enroll(&pw).0, 0);
    assert_ne!(enroll(&pw).0, 0);

    // NDES's own refusals, named.
    let (code, _, err) = scep(
        &["challenge", &admin, "--user", USER, "--auth", "basic", "--allow-basic-over-http"],
        &[("SCEP_PASSWORD", "wrong")],
        None,
    );
    assert_ne!(code, 0);
    assert!(err.contains("401") && err.contains("check the user name and password"), "{err}");
    assert_eq!(
        scep(
            &["challenge", &admin, "--user", USER, "--auth", "basic", "--allow-basic-over-http"],
            &[("SCEP_PASSWORD", PASSWORD)],
            None
        )
        .0,
        0
    );
    assert_eq!(
        scep(
            &["challenge", &admin, "--user", USER, "--auth", "basic", "--allow-basic-over-http"],
            &[("SCEP_PASSWORD", PASSWORD)],
            None
        )
        .0,
        0
    );
    let (code, _, err) = scep(
        &["challenge", &admin, "--user", USER, "--auth", "basic", "--allow-basic-over-http"],
        &[("SCEP_PASSWORD", PASSWORD)],
        None,
    );
    assert_ne!(code, 0);
    assert!(err.contains("The password cache is full."), "{err}");
}

#[test]
fn https_admin_page_and_enrollment_trust_the_ca_given_by_ssl_cert_file() {
    let server =
        Scepd::start(|cfg| cfg.push_str("\n[tls]\nlisten = \"127.0.0.1:0\"\nnames = [\"localhost\", \"127.0.0.1\"]\n"));
    let base = server.tls_base.clone().unwrap();
    let ca = server.ca_pem();
    let trust = [("SSL_CERT_FILE", ca.to_str().unwrap()), ("SCEP_PASSWORD", PASSWORD)];
    let admin = format!("{base}/certsrv/mscep_admin/");
    let url = format!("{base}/certsrv/mscep/mscep.dll");
    // scepd's test user has no NT hash: Basic, which HTTPS allows without a flag.
    let (code, pw, err) = scep(&["challenge", &admin, "--user", USER, "--auth", "basic"], &trust, None);
    assert_eq!(code, 0, "{err}");
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = scep(
        &["enroll", &url, "--challenge", pw.trim(), "--subject", "CN=over-tls", "--out", dir.path().to_str().unwrap()],
        &trust,
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    let (ok, text) = openssl(&["verify", "-CAfile", ca.to_str().unwrap(), &path(&dir, "cert.pem")]);
    assert!(ok, "{text}");
    // Without trust in the server's CA the connection is refused, and says why.
    let empty = tempfile::NamedTempFile::new().unwrap();
    let (code, _, err) = scep(&["caps", &url], &[("SSL_CERT_FILE", empty.path().to_str().unwrap())], None);
    assert_ne!(code, 0);
    assert!(err.contains("SSL_CERT_FILE"), "{err}");
    let foreign = Scepd::start(|_| {});
    let (code, _, err) = scep(&["caps", &url], &[("SSL_CERT_FILE", foreign.ca_pem().to_str().unwrap())], None);
    assert_ne!(code, 0);
    assert!(err.contains("cannot reach") && err.contains("certificate"), "{err}");
}

#[cfg(unix)]
#[test]
fn key_files_end_0600_over_existing_0644_files_and_a_symlinked_key_is_refused_before_enrolling() {
    use std::os::unix::fs::PermissionsExt;
    let server = Scepd::start(|_| {});
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let out = tempfile::tempdir().unwrap();
    let (key, p12) = (out.path().join("key.pem"), out.path().join("device.p12"));
    for f in [&key, &p12] {
        std::fs::write(f, "left by an earlier run").unwrap();
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let enroll = |dir: &std::path::Path, pw: &str| {
        scep(
            &[
                "enroll",
                &server.url(),
                "--challenge",
                pw,
                "--subject",
                "CN=key-files",
                "--out",
                dir.to_str().unwrap(),
                "--p12",
                dir.join("device.p12").to_str().unwrap(),
            ],
            &[("SCEP_P12_PASSWORD", "p12 secret")],
            None,
        )
    };
    let (code, stdout, err) = enroll(out.path(), &server.challenge());
    assert_eq!(code, 0, "{stdout}{err}");
    assert_eq!(mode(&key), 0o600, "key.pem");
    assert_eq!(mode(&p12), 0o600, "the .p12");
    assert!(std::fs::read_to_string(&key).unwrap().starts_with("-----BEGIN PRIVATE KEY-----"));

    // key.pem a symbolic link to a file elsewhere: refused, the file untouched, and the
    // challenge not spent (the refusal comes before the enrollment).
    let linked = tempfile::tempdir().unwrap();
    let elsewhere = linked.path().join("elsewhere");
    std::fs::write(&elsewhere, "not a key").unwrap();
    std::os::unix::fs::symlink(&elsewhere, linked.path().join("key.pem")).unwrap();
    let pw = server.challenge();
    let (code, _, err) = enroll(linked.path(), &pw);
    assert_ne!(code, 0);
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "not a key");
    let fresh = tempfile::tempdir().unwrap();
    let (code, stdout, err) = enroll(fresh.path(), &pw);
    assert_eq!(code, 0, "the challenge is still good: {stdout}{err}");
}
