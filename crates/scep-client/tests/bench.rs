//! `scep bench` against scepd (no-challenge mode, and the admin page for a fresh
//! challenge each) and against micromdm's scepserver, with the same small load.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::{MICROMDM_CHALLENGE, Micromdm, PASSWORD, Scepd, USER, scep_json};

const COUNT: &str = "20";
const CONCURRENCY: &str = "2";

/// The fields every report has, with sane values.
fn assert_shape(r: &serde_json::Value) {
    for k in ["enrollments_per_sec", "p50_ms", "p90_ms", "p99_ms", "duration_secs"] {
        assert!(r[k].as_f64().is_some_and(|v| v >= 0.0), "{k} in {r}");
    }
    for k in ["count", "failures", "concurrency", "requests"] {
        assert!(r[k].as_u64().is_some(), "{k} in {r}");
    }
    assert!(r["duplicate_serials"].is_boolean(), "{r}");
    let kinds = r["failures_by_kind"].as_object().unwrap();
    assert_eq!(kinds.values().map(|v| v.as_u64().unwrap()).sum::<u64>(), r["failures"].as_u64().unwrap());
    assert_eq!(r["count"].as_u64().unwrap() + r["failures"].as_u64().unwrap(), r["requests"].as_u64().unwrap());
    assert_eq!(r["concurrency"], 2);
    let (p50, p90, p99) = (r["p50_ms"].as_f64().unwrap(), r["p90_ms"].as_f64().unwrap(), r["p99_ms"].as_f64().unwrap());
    assert!(p50 <= p90 && p90 <= p99, "{r}");
}

fn summary(who: &str, r: &serde_json::Value) {
    eprintln!(
        "bench {who}: {} enrollments, {:.1}/s, p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, failures {} {}, duplicate serials {}",
        r["count"],
        r["enrollments_per_sec"].as_f64().unwrap(),
        r["p50_ms"].as_f64().unwrap(),
        r["p90_ms"].as_f64().unwrap(),
        r["p99_ms"].as_f64().unwrap(),
        r["failures"],
        r["failures_by_kind"],
        r["duplicate_serials"]
    );
}

#[test]
fn bench_measures_scepd_and_micromdm_scepserver_alike() {
    // scepd without challenges (NDES EnforcePassword=0): every enrollment issues.
    let scepd = Scepd::start(|cfg| *cfg = cfg.replace("mode = \"one-time\"", "mode = \"none\""));
    let (code, r) = scep_json(&["bench", &scepd.url(), "--count", COUNT, "--concurrency", CONCURRENCY, "--json"], &[]);
    summary("scepd (no challenge)", &r);
    assert_eq!(code, 0, "{r}");
    assert_shape(&r);
    assert_eq!(r["count"], 20, "{r}");
    assert_eq!(r["failures"], 0, "{r}");
    assert_eq!(r["duplicate_serials"], false, "{r}");
    assert!(r["enrollments_per_sec"].as_f64().unwrap() > 0.0);
    assert_eq!(r["transport"], "POST");
    drop(scepd);

    // micromdm's scepserver with its fixed challenge: report what it does, whatever it is
    // (its file depot may fail some requests or repeat serials under concurrency).
    let mdm = Micromdm::start();
    let (_, r) = scep_json(
        &[
            "bench",
            &mdm.url,
            "--count",
            COUNT,
            "--concurrency",
            CONCURRENCY,
            "--challenge",
            MICROMDM_CHALLENGE,
            "--json",
        ],
        &[],
    );
    summary("micromdm scepserver", &r);
    assert_shape(&r);
    assert_eq!(r["requests"], 20, "{r}");
}

#[test]
fn bench_takes_a_fresh_admin_page_challenge_per_enrollment_outside_the_clock() {
    // Two outstanding passwords at most: the bench works in rounds that fit the cache.
    let scepd = Scepd::start(|cfg| *cfg = cfg.replace("password_max = 5", "password_max = 3"));
    let (code, r) = scep_json(
        &[
            "bench",
            &scepd.url(),
            "--count",
            "7",
            "--concurrency",
            CONCURRENCY,
            "--admin-url",
            &scepd.admin_url(),
            "--user",
            USER,
            "--auth",
            "basic",
            "--allow-basic-over-http",
            "--json",
        ],
        &[("SCEP_PASSWORD", PASSWORD)],
    );
    summary("scepd (admin page)", &r);
    assert_eq!(code, 0, "{r}");
    assert_shape(&r);
    assert_eq!(r["count"], 7, "{r}");
    assert_eq!(r["duplicate_serials"], false);

    // A reused challenge is what a server with one-time passwords must refuse.
    let pw = scepd.challenge();
    let (_, r) = scep_json(
        &["bench", &scepd.url(), "--count", "4", "--concurrency", CONCURRENCY, "--challenge", &pw, "--json"],
        &[],
    );
    assert_shape(&r);
    assert_eq!(r["count"], 1, "one enrollment per one-time challenge: {r}");
    assert_eq!(r["failures_by_kind"]["failInfo_badRequest"], 3, "{r}");

    // --duration runs for about that long.
    let (code, r) = scep_json(&["bench", &scepd.url(), "--duration", "1", "--concurrency", CONCURRENCY, "--json"], &[]);
    assert_eq!(code, 1, "no challenge on a one-time server: nothing issues ({r})");
    assert_shape(&r);
    assert!(r["duration_secs"].as_f64().unwrap() >= 0.9, "{r}");
}
