//! Liberal in what scepd accepts: signer certificates encoded as clients in the field
//! encode them (long, zero and negative serials, GeneralizedTime before 2050, UTCTime
//! without seconds, version 1 without extensions) enroll and renew end to end, by POST
//! and by GET, and the reply is addressed to the signer exactly as it named itself.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use base64::Engine;
use common::{Server, openssl_verify};
use der::EncodePem;
use scep::attr::{ContentCipher, MessageType, Nonce, TransactionId};
use scep::crypto::{KeyType, PrivateKey};
use scep::request::RequestBuilder;
use scep::response::{Outcome, ParsedCertRep};
use scep::signer::SignerCert;
use scep_client::quirks::{SignerQuirks, TimeEncoding, signer_certificate};
use scep_client::{CaCerts, ScepClient, http::HttpClient};
use x509_cert::{Certificate, name::Name};

/// Send one PKIOperation (GET with percent-encoded standard base64, or POST) and read the
/// CertRep as the requester: verified against GetCACert, opened with `key`.
async fn transact(server: &Server, msg: Vec<u8>, by_get: bool, signer: &SignerCert, key: &PrivateKey) -> Outcome {
    let http = HttpClient::default();
    let r = if by_get {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&msg);
        let q: String = b64
            .bytes()
            .map(|b| match b {
                b'+' => "%2B".to_owned(),
                b'/' => "%2F".to_owned(),
                b'=' => "%3D".to_owned(),
                _ => char::from(b).to_string(),
            })
            .collect();
        http.get(&format!("{}?operation=PKIOperation&message={q}", server.url()), &[]).await.unwrap()
    } else {
        http.post(&format!("{}?operation=PKIOperation", server.url()), "application/x-pki-message", msg).await.unwrap()
    };
    assert_eq!(r.status, 200, "HTTP {}: {}", r.status, String::from_utf8_lossy(&r.body));
    let cas = ScepClient::new(&server.url()).ca_certs().await.unwrap();
    ParsedCertRep::parse(&r.body, &cas.all, signer, key).unwrap().outcome
}

fn message(cas: &CaCerts, mtype: MessageType, csr: &[u8], key: &PrivateKey, signer: &SignerCert, tid: &str) -> Vec<u8> {
    RequestBuilder {
        message_type: mtype,
        transaction_id: TransactionId::new(tid),
        sender_nonce: Nonce::random().unwrap(),
        body: csr,
        recipient: &cas.encryption,
        cipher: ContentCipher::Aes256,
        signer: key,
        signer_cert: signer,
    }
    .build()
    .unwrap()
}

fn issued(outcome: Outcome, what: &str) -> Certificate {
    match outcome {
        Outcome::Success { certificates, .. } => certificates.into_iter().next().unwrap(),
        other => panic!("{what}: {other:?}"),
    }
}

/// Enroll with a signer certificate shaped by `q`, then renew with the certificate
/// issued (RenewalReq, no challenge); check both certificates.
async fn enroll_and_renew(server: &Server, q: &SignerQuirks, by_get: bool, n: usize) {
    let cas = ScepClient::new(&server.url()).ca_certs().await.unwrap();
    let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let subject: Name = format!("CN=quirk-{n},O=Example").parse().unwrap();
    let csr = scep::x509::csr(&subject, &key, Some(&server.challenge()), &[]).unwrap();
    let signer = signer_certificate(&subject, &key, q).unwrap();
    // A long decimal transactionID, as certmonger sends.
    let tid = format!("{}{n:04}", "1234567890".repeat(7));
    let msg = message(&cas, MessageType::PkcsReq, &csr, &key, &signer, &tid);
    let cert = issued(transact(server, msg, by_get, &signer, &key).await, &format!("enrollment with {q:?}"));
    assert_eq!(cert.tbs_certificate().subject(), &subject);
    assert_eq!(cert.tbs_certificate().subject_public_key_info(), &scep::crypto::Signer::public_key(&key));
    // What scepd issues stays RFC 5280 whatever the requester sent.
    let serial = cert.tbs_certificate().serial_number().as_bytes();
    assert!(serial.len() <= 20 && serial[0] & 0x80 == 0, "issued serial {serial:02x?}");

    let renew_key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let csr = scep::x509::csr(&subject, &renew_key, None, &[]).unwrap();
    let current = SignerCert::from_certificate(&cert).unwrap();
    let msg = message(&cas, MessageType::RenewalReq, &csr, &key, &current, &format!("{tid}R"));
    let renewed = issued(transact(server, msg, by_get, &current, &key).await, &format!("renewal after {q:?}"));
    assert_eq!(renewed.tbs_certificate().subject(), &subject);
    assert_ne!(renewed.tbs_certificate().serial_number(), cert.tbs_certificate().serial_number());
    for c in [&cert, &renewed] {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), c.to_pem(der::pem::LineEnding::LF).unwrap()).unwrap();
        assert!(openssl_verify(&server.data_dir().join("ca.pem"), f.path()), "openssl verify");
    }
}

fn quirks(serial: Vec<u8>, not_before: TimeEncoding, not_after: TimeEncoding, v3: bool, ext: bool) -> SignerQuirks {
    SignerQuirks { serial, not_before, not_after, v3, extensions: ext }
}

#[tokio::test]
async fn signer_certificates_as_clients_encode_them_enroll_and_renew() {
    use TimeEncoding::*;
    let server = Server::start(|_| {});
    let cases = [
        ("certmonger", SignerQuirks::certmonger_like()),
        ("64-octet serial", quirks([vec![0x00], vec![0x9e; 64]].concat(), Utc, Utc, true, true)),
        ("zero serial", quirks(vec![0x00], Utc, Utc, true, true)),
        ("negative serial", quirks(vec![0xfe, 0x01], Utc, Utc, true, true)),
        ("GeneralizedTime before 2050", quirks(vec![0x01], Generalized, Generalized, true, true)),
        ("UTCTime without seconds", quirks(vec![0x02], UtcWithoutSeconds, UtcWithoutSeconds, true, true)),
        ("version 1, no extensions", quirks(vec![0x03], Utc, Utc, false, false)),
        ("no keyUsage", quirks(vec![0x04], Utc, Generalized, true, false)),
    ];
    for (n, (name, q)) in cases.iter().enumerate() {
        eprintln!("case: {name}");
        enroll_and_renew(&server, q, n % 2 == 0, n).await;
    }
    // Every enrollment and renewal is in the store.
    assert_eq!(server.certificates().len(), 2 * cases.len());
}

/// A small deterministic generator, so that a failing case can be named and rerun.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[tokio::test]
async fn random_signer_certificate_encodings_enroll() {
    let seed = std::env::var("SCEPD_QUIRK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5ce9d);
    eprintln!("SCEPD_QUIRK_SEED={seed}");
    let mut g = Lcg(seed);
    let server = Server::start(|_| {});
    let times = [TimeEncoding::Utc, TimeEncoding::UtcWithoutSeconds, TimeEncoding::Generalized];
    for n in 0..12 {
        let len = 1 + g.below(64) as usize;
        let serial: Vec<u8> = (0..len).map(|_| g.below(256) as u8).collect();
        let v3 = g.below(2) == 0;
        let q = SignerQuirks {
            serial,
            not_before: times[g.below(3) as usize],
            not_after: times[g.below(3) as usize],
            v3,
            extensions: v3 && g.below(2) == 0,
        };
        eprintln!("case {n}: {q:?}");
        enroll_and_renew(&server, &q, g.below(2) == 0, n).await;
    }
}
