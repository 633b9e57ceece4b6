//! CertReps reproduced byte for byte: with the time and the random bytes given by the
//! caller, the PENDING and FAILURE answers to a captured scepclient request are the
//! bytes in `fixtures/certrep-*.der`. A change to attribute order, encodings, the
//! signature or the CMS structure shows here as a diff, not as a client that stops
//! working. `SCEPD_BLESS=1 cargo test -p scep --test golden` rewrites the fixtures.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use der::DecodePem;
use scep::attr::FailInfo;
use scep::crypto::{PrivateKey, SecureRandom};
use scep::request::PkiMessage;
use scep::response::{Env, Outcome, ParsedCertRep, cert_rep};
use x509_cert::Certificate;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// Bytes 0, 1, 2, ... : not random, the same every run.
struct Counting(std::sync::atomic::AtomicU8);

impl SecureRandom for Counting {
    fn fill(&self, out: &mut [u8]) -> scep::Result<()> {
        for b in out {
            *b = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }
}

fn check(name: &str, outcome: Outcome) {
    let request = std::fs::read(format!("{DIR}/scepclient-post.der")).unwrap();
    let reply = PkiMessage::parse(&request).unwrap().reply_to().clone();
    let key = PrivateKey::from_pkcs8_der(&std::fs::read(format!("{DIR}/ra-encrypt-key.der")).unwrap()).unwrap();
    let cert = Certificate::from_pem(std::fs::read(format!("{DIR}/ra-encrypt.pem")).unwrap()).unwrap();
    let random = Counting(0.into());
    let env = Env { now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000), random: &random };
    let got = cert_rep(&reply, &outcome, &key, &cert, env).unwrap();

    // What the fixture holds is a CertRep a client reads, with the parts the caller chose.
    let parsed = ParsedCertRep::parse(&got, std::slice::from_ref(&cert), &reply.recipient, &key).unwrap();
    assert_eq!(parsed.sender_nonce.unwrap().0, (0..16).collect::<Vec<u8>>());
    assert_eq!(parsed.recipient_nonce.unwrap(), reply.sender_nonce);

    let path = format!("{DIR}/{name}");
    if std::env::var_os("SCEPD_BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read(&path).unwrap_or_else(|_| panic!("{path} is missing: run with SCEPD_BLESS=1"));
    assert!(got == want, "{name} differs from its golden fixture (SCEPD_BLESS=1 rewrites it after review)");
}

#[test]
fn a_pending_certrep_is_reproduced_byte_for_byte() {
    check("certrep-pending.der", Outcome::Pending);
}

#[test]
fn a_failure_certrep_is_reproduced_byte_for_byte() {
    check("certrep-failure.der", Outcome::Failure(FailInfo::BadRequest, "The request was rejected.".into()));
}
