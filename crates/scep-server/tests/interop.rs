//! Clients the project did not write, against the real server. Each driver in
//! `interop/` runs one client's own code (its command line, its daemon or its library,
//! as its users do) through enrollment, renewal and whatever else the client supports,
//! printing `PASS`, `FAIL` or `XFAIL` (a named bug of the client, shown by the error it
//! raises) per step; docs/interop.md has the table. `.ci/run` installs the clients
//! (Debian: strongswan-pki, certmonger; PyPI: interop/requirements.txt into
//! target/interop-venv) and no test here skips a missing one.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{PASSPHRASE, SCEPD, Server};

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

/// The Python with interop/requirements.txt installed.
fn python() -> String {
    let p = std::env::var("SCEPD_INTEROP_PYTHON").unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/interop-venv/bin/python").display().to_string()
    });
    assert!(
        Path::new(&p).exists(),
        "{p} is missing: run .ci/run, or python3 -m venv target/interop-venv && \
         target/interop-venv/bin/pip install -r interop/requirements.txt"
    );
    p
}

/// A server with a manual-approval template, for the PENDING steps.
fn server() -> Server {
    Server::start(|cfg| cfg.push_str("\n[templates.manual]\napproval = \"manual\"\n"))
}

/// Run `program args... URL DATA_DIR WORK_DIR`; check that it passed, that every step
/// in `steps` passed, and that nothing was skipped. Returns the driver's output.
fn drive(server: &Server, program: &str, args: &[&str], steps: &[&str]) -> String {
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(program)
        .args(args)
        .arg(server.url())
        .arg(server.data_dir())
        .arg(work.path())
        .env("SCEPD", SCEPD)
        .env("SCEPD_KEY_PASSPHRASE", PASSPHRASE)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(out.status.success(), "driver {args:?} failed:\n{text}");
    assert!(!lines.iter().any(|l| l.starts_with("FAIL ") || l.starts_with("SKIP ")), "{text}");
    for step in steps {
        let passed = lines.iter().any(|l| {
            l.strip_prefix("PASS ")
                .is_some_and(|r| r == *step || r.starts_with(&format!("{step} ")) || r.starts_with(&format!("{step}:")))
        });
        assert!(passed, "step {step} did not pass:\n{text}");
    }
    text
}

#[test]
fn strongswan_pki_enrolls_renews_three_ways_and_polls() {
    let server = server();
    let script = interop_dir().join("strongswan.sh");
    drive(
        &server,
        "bash",
        &[script.to_str().unwrap()],
        &[
            "getcacert",
            "getcacaps",
            "enroll",
            "verify",
            "renew",
            "renew-used-challenge",
            "renew-new-key",
            "renew-pkcsreq",
            "refused-bad-challenge",
            "pending",
        ],
    );
    // strongSwan asked for nothing scepd could not read: every PKIOperation was answered with a CertRep.
    assert!(!server.logged(|l| l.contains("unreadable PKIOperation")), "{:?}", server.logs());
}

#[test]
fn certmonger_enrolls_renews_rekeys_and_waits_for_approval() {
    let server = server();
    let script = interop_dir().join("certmonger.sh");
    drive(
        &server,
        "bash",
        &[script.to_str().unwrap()],
        &[
            "getcacaps",
            "getcacert",
            "add-scep-ca",
            "enroll",
            "verify",
            "renew",
            "renew-used-challenge",
            "rekey",
            "refused-bad-challenge",
            "pending",
        ],
    );
    // certmonger sends by GET, with a 32-octet signer serial and a 77-digit transactionID.
    assert!(server.logged(|l| l.contains("certificate issued") && l.contains("GET")), "{:?}", server.logs());
}

#[test]
fn pyscep_enrolls_renews_and_gets_certificates_and_crls() {
    let server = server();
    let driver = interop_dir().join("pyscep_client.py");
    drive(
        &server,
        &python(),
        &[driver.to_str().unwrap()],
        &[
            "getcacaps",
            "getcacert",
            "enroll",
            "verify",
            "renew",
            "renew-old-challenge",
            "renew-new-key",
            "refused-used-challenge",
            "certpoll",
            "getcert",
            "getcrl",
            "pending-enroll",
            "pending-poll",
            "pending-approved-poll",
        ],
    );
}

#[test]
fn scepreq_enrolls_with_a_throwaway_signer_and_renews() {
    // scepreq signs with a throw-away key, which scepd accepts only when told to.
    let server = Server::start(|cfg| {
        *cfg = cfg.replace("allow_foreign_signers = false", "allow_foreign_signers = true");
        cfg.push_str("\n[templates.manual]\napproval = \"manual\"\n");
    });
    let driver = interop_dir().join("scepreq_client.py");
    drive(
        &server,
        &python(),
        &[driver.to_str().unwrap()],
        &[
            "getcacaps",
            "getcacert",
            "enroll",
            "verify",
            "sans",
            "renew",
            "renew-old-challenge",
            "refused-used-challenge",
            "certpoll",
            "getcert",
            "getcrl",
            "pending-enroll",
            "pending-poll",
            "pending-approved-poll",
        ],
    );
}
