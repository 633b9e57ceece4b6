//! `scep check`: the admin's test plan against scepd and against micromdm's scepserver.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::{MICROMDM_CHALLENGE, Micromdm, PASSWORD, Scepd, USER, scep, scep_json, step};

#[test]
fn check_passes_every_step_against_scepd_with_its_admin_page() {
    let server = Scepd::start(|_| {});
    let (code, report) = scep_json(
        &[
            "check",
            &server.url(),
            "--admin-url",
            &server.admin_url(),
            "--user",
            USER,
            "--auth",
            "basic",
            "--allow-basic-over-http",
            "--json",
        ],
        &[("SCEP_PASSWORD", PASSWORD)],
    );
    for s in report["steps"].as_array().unwrap() {
        assert_eq!(s["status"], "PASS", "{s}");
    }
    let names: Vec<&str> = report["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "info page",
            "admin page",
            "GetCACaps",
            "GetCACert",
            "enrollment",
            "certificate",
            "renewal",
            "reused challenge"
        ]
    );
    assert_eq!(report["passed"], true);
    assert_eq!(code, 0);
    assert!(step(&report, "reused challenge")["detail"].as_str().unwrap().contains("badRequest"));
    assert!(step(&report, "GetCACert")["detail"].as_str().unwrap().contains("RA encryption"));

    // The text form says the same, one line a step; the password is never printed.
    let (code, text, _) = scep(
        &[
            "check",
            &server.url(),
            "--admin-url",
            &server.admin_url(),
            "--user",
            USER,
            "--auth",
            "basic",
            "--allow-basic-over-http",
        ],
        &[("SCEP_PASSWORD", PASSWORD)],
        None,
    );
    assert_eq!(code, 0, "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("PASS  ")).count(), 8, "{text}");
    assert!(text.ends_with("passed\n"));
    assert!(!text.contains(PASSWORD));
}

#[test]
fn check_without_a_challenge_skips_the_steps_that_need_one_and_passes() {
    let server = Scepd::start(|_| {});
    let (code, report) = scep_json(&["check", &server.url(), "--json"], &[]);
    assert_eq!(code, 0);
    assert_eq!(report["passed"], true);
    assert_eq!(step(&report, "GetCACaps")["status"], "PASS");
    for name in ["admin page", "enrollment", "certificate", "renewal", "reused challenge"] {
        let s = step(&report, name);
        assert_eq!(s["status"], "SKIP", "{s}");
        assert!(!s["detail"].as_str().unwrap().is_empty());
    }
    assert!(step(&report, "enrollment")["detail"].as_str().unwrap().contains("--admin-url"));
}

#[test]
fn check_fails_with_the_reason_when_the_admin_password_is_wrong_or_the_server_is_down() {
    let server = Scepd::start(|_| {});
    let (code, report) = scep_json(
        &[
            "check",
            &server.url(),
            "--admin-url",
            &server.admin_url(),
            "--user",
            USER,
            "--auth",
            "basic",
            "--allow-basic-over-http",
            "--json",
        ],
        &[("SCEP_PASSWORD", "not the password")],
    );
    assert_eq!(code, 1);
    assert_eq!(report["passed"], false);
    let admin = step(&report, "admin page");
    assert_eq!(admin["status"], "FAIL");
    assert!(admin["detail"].as_str().unwrap().contains("401"), "{admin}");
    assert_eq!(step(&report, "enrollment")["status"], "SKIP");

    let url = server.url();
    drop(server);
    let (code, report) = scep_json(&["check", &url, "--challenge", "X", "--json"], &[]);
    assert_eq!(code, 1);
    assert_eq!(step(&report, "info page")["status"], "FAIL");
    assert_eq!(step(&report, "GetCACaps")["status"], "FAIL");
    assert!(step(&report, "info page")["detail"].as_str().unwrap().contains("cannot reach"));
}

#[test]
fn check_against_micromdm_scepserver_passes_what_applies_and_names_the_rest() {
    let server = Micromdm::start();
    let (code, report) = scep_json(&["check", &server.url, "--challenge", MICROMDM_CHALLENGE, "--json"], &[]);
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    // No NDES information page and no RA certificates: worth a warning, not a failure.
    assert_eq!(step(&report, "info page")["status"], "WARN");
    assert_eq!(step(&report, "admin page")["status"], "SKIP");
    assert_eq!(step(&report, "GetCACaps")["status"], "PASS");
    let ca = step(&report, "GetCACert");
    assert_eq!(ca["status"], "WARN");
    assert!(ca["detail"].as_str().unwrap().contains("no RA certificates"), "{ca}");
    assert_eq!(step(&report, "enrollment")["status"], "PASS");
    assert_eq!(step(&report, "certificate")["status"], "PASS");
    // Its fixed challenge is reusable by design: an NDES one-time password is not.
    let reuse = step(&report, "reused challenge");
    assert_eq!(reuse["status"], "FAIL");
    assert!(reuse["detail"].as_str().unwrap().contains("enrolled a second time"), "{reuse}");
    // It advertises Renewal but refuses a RenewalReq signed by the certificate it issued.
    let renewal = step(&report, "renewal");
    assert!(matches!(renewal["status"].as_str(), Some("PASS" | "FAIL")), "{renewal}");
    assert!(!renewal["detail"].as_str().unwrap().is_empty());
    assert_eq!(report["passed"], false);
    assert_eq!(code, 1);
}
