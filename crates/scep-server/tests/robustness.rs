//! Bad input gets its precise answer, the server stays up, nothing is recorded, and
//! decryption failures cannot be told apart (no padding oracle).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::str::FromStr;

use common::Server;
use scep::attr::{ContentCipher, FailInfo, KeyTransport, MessageType, Nonce, TransactionId};
use scep::cms::{EnvelopeSpec, envelope_with};
use scep::crypto::{KeyType, PrivateKey, Signer};
use scep::request::RequestBuilder;
use scep::response::{Outcome, ParsedCertRep};
use scep::signer::SignerCert;
use scep_client::{CaCerts, ScepClient, http::HttpClient};
use x509_cert::name::Name;

struct Device {
    key: PrivateKey,
    signer: SignerCert,
    csr: Vec<u8>,
}

fn device(challenge: &str) -> Device {
    let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let subject = Name::from_str("CN=probe,O=Example").unwrap();
    let csr = scep::x509::csr(&subject, &key, Some(challenge), &[]).unwrap();
    let signer = SignerCert::from_certificate(&scep::x509::scep_signer_certificate(&subject, &key).unwrap()).unwrap();
    Device { key, signer, csr }
}

fn builder<'a>(d: &'a Device, cas: &'a CaCerts, tid: &str, nonce: &[u8]) -> RequestBuilder<'a> {
    RequestBuilder {
        message_type: MessageType::PkcsReq,
        transaction_id: TransactionId::new(tid),
        sender_nonce: Nonce(nonce.to_vec()),
        body: &d.csr,
        recipient: &cas.encryption,
        cipher: ContentCipher::Aes256,
        signer: &d.key,
        signer_cert: &d.signer,
    }
}

async fn post(server: &Server, body: Vec<u8>) -> scep_client::http::Response {
    HttpClient::default()
        .post(&format!("{}?operation=PKIOperation", server.url()), "application/x-pki-message", body)
        .await
        .unwrap()
}

async fn still_up(server: &Server) {
    let caps = ScepClient::new(&server.url()).caps().await.unwrap();
    assert!(caps.has(scep::caps::Capability::Aes));
}

#[tokio::test]
async fn unreadable_messages_get_http_errors_and_the_server_stays_up() {
    let mut server = Server::start(|_| {});
    let cas = ScepClient::new(&server.url()).ca_certs().await.unwrap();
    let d = device(&server.challenge());
    let good = builder(&d, &cas, "T1", &[1; 16]).build().unwrap();

    let truncated = post(&server, good[..good.len() / 2].to_vec()).await;
    assert_eq!(truncated.status, 400);
    let mut random = vec![0u8; 3000];
    aws_lc_rs::rand::fill(&mut random).unwrap();
    assert_eq!(post(&server, random).await.status, 400);
    assert_eq!(post(&server, vec![]).await.status, 400);
    let oversized = post(&server, vec![0x30; 200 * 1024]).await;
    assert_eq!(oversized.status, 413);
    // GET with a message that is not base64, and without one.
    let http = HttpClient::default();
    assert_eq!(
        http.get(&format!("{}?operation=PKIOperation&message=%%%%", server.url()), &[]).await.unwrap().status,
        400
    );
    assert_eq!(http.get(&format!("{}?operation=PKIOperation", server.url()), &[]).await.unwrap().status, 400);
    assert_eq!(http.get(&format!("{}?operation=Nonsense", server.url()), &[]).await.unwrap().status, 400);
    // A 16 KiB request line is fine (it reaches the SCEP decoder and is refused there).
    let long = format!("{}?operation=PKIOperation&message={}", server.url(), "A".repeat(16 * 1024));
    assert_eq!(http.get(&long, &[]).await.unwrap().status, 400);
    // The info page answers a plain GET.
    let info = http.get(&server.url(), &[]).await.unwrap();
    assert_eq!(info.status, 200);
    assert!(
        String::from_utf8_lossy(&info.body)
            .contains("Network Device Enrollment Service allows you to obtain certificates")
    );

    still_up(&server).await;
    assert!(server.alive());
    assert!(server.certificates().is_empty());
    // Bodies that do not parse carry no library text.
    assert_eq!(String::from_utf8_lossy(&truncated.body).trim(), "The request is not a valid SCEP message.");
}

#[tokio::test]
async fn a_resent_request_gets_the_same_certificate_but_a_new_key_does_not() {
    let server = Server::start(|_| {});
    let cas = ScepClient::new(&server.url()).ca_certs().await.unwrap();
    let d = device(&server.challenge());
    let msg = builder(&d, &cas, "RETRY-1", &[2; 16]).build().unwrap();
    let first = ParsedCertRep::parse(&post(&server, msg.clone()).await.body, &cas.all, &d.signer, &d.key).unwrap();
    let second = ParsedCertRep::parse(&post(&server, msg).await.body, &cas.all, &d.signer, &d.key).unwrap();
    let (Outcome::Success { certificates: a, .. }, Outcome::Success { certificates: b, .. }) =
        (first.outcome, second.outcome)
    else {
        panic!("both must succeed")
    };
    assert_eq!(a[0], b[0], "the same certificate");
    assert_eq!(server.certificates().len(), 1);
    // Same transactionID, same (used) challenge, new key: a new request, refused.
    let d2 = device("");
    let d2 = Device {
        csr: scep::x509::csr(&Name::from_str("CN=probe,O=Example").unwrap(), &d2.key, Some("used"), &[]).unwrap(),
        ..d2
    };
    let third = ParsedCertRep::parse(
        &post(&server, builder(&d2, &cas, "RETRY-1", &[3; 16]).build().unwrap()).await.body,
        &cas.all,
        &d2.signer,
        &d2.key,
    )
    .unwrap();
    assert!(matches!(third.outcome, Outcome::Failure(FailInfo::BadRequest, _)));
    assert_eq!(server.certificates().len(), 1);
}

fn spec(encrypted_key: Option<Vec<u8>>, pad: bool) -> EnvelopeSpec<'static> {
    EnvelopeSpec {
        cipher: ContentCipher::Aes256,
        key: &[0x11; 32],
        transport: KeyTransport::RsaPkcs1,
        encrypted_key,
        pad,
    }
}

/// The reply with the senderNonce and the signature blanked out.
fn blank(reply: &[u8], cas: &CaCerts, d: &Device) -> (Vec<u8>, Outcome) {
    let parsed = ParsedCertRep::parse(reply, &cas.all, &d.signer, &d.key).unwrap();
    let nonce = parsed.sender_nonce.unwrap().0;
    let mut out = reply.to_vec();
    let pos = out.windows(nonce.len()).position(|w| w == nonce.as_slice()).unwrap();
    out[pos..pos + nonce.len()].fill(0);
    // signingTime: OID 1.2.840.113549.1.9.5, then SET { UTCTime (13 bytes) }.
    let oid = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05, 0x31, 0x0f, 0x17, 0x0d];
    let at = out.windows(oid.len()).position(|w| w == oid).expect("a signingTime") + oid.len();
    out[at..at + 13].fill(0);
    let n = out.len();
    out[n - 256..].fill(0); // RSA-2048 signature: the last field of the message
    (out, parsed.outcome)
}

#[tokio::test]
async fn decryption_failures_are_indistinguishable() {
    let server = Server::start(|_| {});
    let cas = ScepClient::new(&server.url()).ca_certs().await.unwrap();
    let d = device(&server.challenge());
    let ra = cas.encryption.tbs_certificate().subject_public_key_info().clone();
    let b = builder(&d, &cas, "ORACLE", &[7; 16]);

    // 1. bad PKCS#1 padding: random bytes as the encrypted key
    let mut junk = vec![0u8; 256];
    aws_lc_rs::rand::fill(&mut junk).unwrap();
    junk[0] = 0;
    let bad_padding = envelope_with(&d.csr, &cas.encryption, &spec(Some(junk), true)).unwrap();
    // 2. a well-formed key transport of a 16-byte key for AES-256
    let short = scep::crypto::encrypt_key(&ra, &[0x22; 16]).unwrap();
    let wrong_len = envelope_with(&d.csr, &cas.encryption, &spec(Some(short), true)).unwrap();
    // 3. the right key, but the last block's padding is invalid
    let mut unpadded = d.csr.clone();
    let fill = 16 - unpadded.len() % 16;
    unpadded.extend(std::iter::repeat_n(0u8, fill));
    let bad_cbc = envelope_with(&unpadded, &cas.encryption, &spec(None, false)).unwrap();
    // 4. encrypted to another certificate (the CA's)
    let wrong_cert = envelope_with(&d.csr, &cas.ca, &spec(None, true)).unwrap();
    // 5. decrypts, but the CSR's signature does not verify
    let mut forged = d.csr.clone();
    let n = forged.len();
    forged[n - 1] ^= 1;
    let bad_csr = envelope_with(&forged, &cas.encryption, &spec(None, true)).unwrap();

    let mut replies = Vec::new();
    for env in [bad_padding, wrong_len, bad_cbc, wrong_cert, bad_csr] {
        let before = server.logs().len();
        let r = post(&server, b.build_with_envelope(env).unwrap()).await;
        assert_eq!(r.status, 200);
        let (blanked, outcome) = blank(&r.body, &cas, &d);
        match &outcome {
            Outcome::Failure(FailInfo::BadMessageCheck, text) => {
                assert_eq!(text, "The message could not be verified or decrypted.")
            }
            other => panic!("{other:?}"),
        }
        // The log line of the refusal, without its timestamp.
        assert!(server.logged(|l| l.contains("request refused") && l.contains("ORACLE")));
        let mut line = String::new();
        for _ in 0..40 {
            if let Some(l) = server.logs()[before..].iter().find(|l| l.contains("request refused")) {
                line = l.clone();
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let line = line.split_once(' ').map(|x| x.1.to_owned()).unwrap_or_default();
        replies.push((blanked, line));
    }
    for (blanked, line) in &replies[1..] {
        assert_eq!(blanked, &replies[0].0, "replies differ beyond nonce and signature");
        assert_eq!(line, &replies[0].1, "log lines differ");
    }
    assert!(!replies[0].1.is_empty());
    // The valid request still succeeds: the failures consumed nothing.
    let ok = post(&server, b.build().unwrap()).await;
    let parsed = ParsedCertRep::parse(&ok.body, &cas.all, &d.signer, &d.key).unwrap();
    assert!(matches!(parsed.outcome, Outcome::Success { .. }));
    assert_eq!(server.certificates().len(), 1);
    let _ = d.key.public_key();
}

#[tokio::test]
async fn slow_and_idle_clients_cannot_hold_the_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start(|cfg| {
        *cfg = cfg
            .replace("max_connections = 1024", "max_connections = 4")
            .replace("header_timeout_secs = 15", "header_timeout_secs = 1")
    });
    let addr = server.base.trim_start_matches("http://").to_owned();
    // Four clients that send half a request line and stop fill every slot...
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /certsrv/mscep/mscep.dll?operation=GetCACaps HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        slow.push(s);
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // ...so a fifth connection is closed at once,
    let mut extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _ = extra.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut buf = Vec::new();
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), extra.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "a connection over the limit got an answer");
    // ...until the slow ones run out of time and are dropped.
    for s in &mut slow {
        let mut b = Vec::new();
        let r = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut b)).await;
        assert!(r.is_ok(), "a slow client was not disconnected");
    }
    still_up(&server).await;
}

/// Timing of the decryption failures against a valid request, for docs/security.md:
/// `cargo test --release -p scep-server --test robustness oracle_timing -- --ignored --nocapture`.
/// Not a pass/fail test: timings belong in benchmarks.
#[tokio::test]
#[ignore = "a benchmark: run by hand"]
async fn oracle_timing() {
    let server = Server::start(|c| *c = c.replace("max_failures = 10", "max_failures = 1000000"));
    let cas = ScepClient::new(&server.url()).ca_certs().await.unwrap();
    let d = device("0000000000000000");
    let ra = cas.encryption.tbs_certificate().subject_public_key_info().clone();
    let b = builder(&d, &cas, "TIMING", &[7; 16]);
    let mut junk = vec![0u8; 256];
    aws_lc_rs::rand::fill(&mut junk).unwrap();
    junk[0] = 0;
    let short = scep::crypto::encrypt_key(&ra, &[0x22; 16]).unwrap();
    let mut unpadded = d.csr.clone();
    let fill = 16 - unpadded.len() % 16;
    unpadded.extend(std::iter::repeat_n(0u8, fill));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("valid envelope, wrong challenge", b.build().unwrap()),
        (
            "bad PKCS#1 padding",
            b.build_with_envelope(envelope_with(&d.csr, &cas.encryption, &spec(Some(junk), true)).unwrap()).unwrap(),
        ),
        (
            "wrong-length content key",
            b.build_with_envelope(envelope_with(&d.csr, &cas.encryption, &spec(Some(short), true)).unwrap()).unwrap(),
        ),
        (
            "bad CBC padding",
            b.build_with_envelope(envelope_with(&unpadded, &cas.encryption, &spec(None, false)).unwrap()).unwrap(),
        ),
        (
            "encrypted to another certificate",
            b.build_with_envelope(envelope_with(&d.csr, &cas.ca, &spec(None, true)).unwrap()).unwrap(),
        ),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..300 {
        for (i, (_, msg)) in cases.iter().enumerate() {
            let t = std::time::Instant::now();
            let r = post(&server, msg.clone()).await;
            times[i].push(t.elapsed().as_secs_f64() * 1e6);
            assert_eq!(r.status, 200);
        }
    }
    for (i, (name, _)) in cases.iter().enumerate() {
        let v = &mut times[i];
        v.sort_by(f64::total_cmp);
        println!(
            "{name:<34} median {:>7.0} µs   p10 {:>7.0}   p90 {:>7.0}",
            v[v.len() / 2],
            v[v.len() / 10],
            v[v.len() * 9 / 10]
        );
    }
}

#[tokio::test]
async fn a_message_readable_to_its_transaction_id_gets_a_certrep_failure() {
    let server = Server::start(|_| {});
    let cas = ScepClient::new(&server.url()).ca_certs().await.unwrap();
    let d = device(&server.challenge());
    let mut msg = builder(&d, &cas, "UNREADABLE-1", &[7; 16]).build().unwrap();
    // Change the serial number in the SignerInfo's identifier (outside the signature):
    // the signer certificate the message carries is no longer the one it names.
    let serial = d.signer.certificate().unwrap().tbs_certificate().serial_number().as_bytes().to_vec();
    let at = msg.windows(serial.len()).rposition(|w| w == serial.as_slice()).unwrap();
    msg[at + serial.len() - 1] ^= 1;
    let r = post(&server, msg).await;
    assert_eq!((r.status, r.content_type.as_deref()), (200, Some("application/x-pki-message")));
    let rep = ParsedCertRep::parse(&r.body, &cas.all, &d.signer, &d.key).unwrap();
    assert!(matches!(rep.outcome, Outcome::Failure(FailInfo::BadMessageCheck, _)), "{:?}", rep.outcome);
    assert_eq!(rep.transaction_id.unwrap().as_str(), "UNREADABLE-1");
    assert_eq!(rep.recipient_nonce.unwrap().0, vec![7; 16]);
    assert!(server.logged(|l| l.contains("unreadable PKIOperation") && l.contains("UNREADABLE-1")));

    // The CertRep as Windows and OpenSSL read it: signingTime among the signed
    // attributes, rsaEncryption as the SignerInfo's signatureAlgorithm.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rep.der"), &r.body).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["cms", "-cmsout", "-print", "-inform", "DER", "-in"])
        .arg(dir.path().join("rep.der"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("signingTime"), "{text}");
    let signer_info_alg = text.rsplit_once("signatureAlgorithm:").unwrap().1.lines().nth(1).unwrap();
    assert!(signer_info_alg.contains("rsaEncryption"), "{text}");
    // The RA certificates carry the Certificate Request Agent EKU, as NDES's do.
    for ra in [&cas.encryption, &cas.signing] {
        let (_, eku) = ra.tbs_certificate().get_extension::<x509_cert::ext::pkix::ExtendedKeyUsage>().unwrap().unwrap();
        assert!(eku.0.iter().any(|o| o.to_string() == "1.3.6.1.4.1.311.20.2.1"), "{eku:?}");
    }
}

/// The IV of an AES-256-CBC envelope, to change.
fn iv_at(envelope: &[u8]) -> usize {
    // OID 2.16.840.1.101.3.4.1.42 (aes256-CBC), then OCTET STRING (16).
    let oid = [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a, 0x04, 0x10];
    envelope.windows(oid.len()).position(|w| w == oid).unwrap() + oid.len()
}

#[tokio::test]
async fn a_captured_content_key_answers_once_whatever_the_message_type() {
    let server = Server::start(|_| {});
    let cas = ScepClient::new(&server.url()).ca_certs().await.unwrap();
    // The victim's PKCSReq, as an eavesdropper captures it; it enrolls.
    let victim = device(&server.challenge());
    let captured = envelope_with(&victim.csr, &cas.encryption, &spec(None, true)).unwrap();
    let r =
        post(&server, builder(&victim, &cas, "VICTIM", &[1; 16]).build_with_envelope(captured.clone()).unwrap()).await;
    let ok = ParsedCertRep::parse(&r.body, &cas.all, &victim.signer, &victim.key).unwrap();
    assert!(matches!(ok.outcome, Outcome::Success { .. }));

    // The attacker re-signs the victim's envelope under its own key, with changed IVs,
    // as every message type: no probe is decrypted, and every answer is the same.
    let attacker = device("not a challenge");
    let mut replies = Vec::new();
    let probes = [
        (MessageType::GetCert, None),
        (MessageType::GetCrl, None),
        (MessageType::CertPoll, None),
        (MessageType::PkcsReq, None),
        (MessageType::RenewalReq, None),
        // the unchanged ciphertext, under another signer
        (MessageType::PkcsReq, Some(())),
    ];
    for (i, (mtype, unchanged)) in probes.iter().enumerate() {
        let mut env = captured.clone();
        if unchanged.is_none() {
            let at = iv_at(&env);
            env[at + 15] ^= u8::try_from(i + 1).unwrap();
        }
        let mut b = builder(&attacker, &cas, "PROBE", &[9; 16]);
        b.message_type = *mtype;
        let r = post(&server, b.build_with_envelope(env).unwrap()).await;
        assert_eq!(r.status, 200);
        let (blanked, outcome) = blank(&r.body, &cas, &attacker);
        match &outcome {
            Outcome::Failure(FailInfo::BadMessageCheck, text) => {
                assert_eq!(text, "The message could not be verified or decrypted.", "{mtype:?}")
            }
            other => panic!("{mtype:?}: {other:?}"),
        }
        replies.push(blanked);
    }
    for r in &replies[1..] {
        assert_eq!(r, &replies[0], "answers differ beyond nonce, time and signature");
    }
    assert!(server.logged(|l| l.contains("an encrypted key seen before came with other content")));
    // Nothing was issued to the attacker; the victim's resend still gets its certificate.
    assert_eq!(server.certificates().len(), 1);
    let again = post(&server, builder(&victim, &cas, "VICTIM", &[1; 16]).build_with_envelope(captured).unwrap()).await;
    let again = ParsedCertRep::parse(&again.body, &cas.all, &victim.signer, &victim.key).unwrap();
    assert!(matches!(again.outcome, Outcome::Success { .. }), "{:?}", again.outcome);
}

#[tokio::test]
async fn getcert_getcrl_and_certpoll_that_match_nothing_answer_as_an_undecryptable_message() {
    let server = Server::start(|_| {});
    let cas = ScepClient::new(&server.url()).ca_certs().await.unwrap();
    let d = device("unused");
    let unknown = cms::cert::IssuerAndSerialNumber {
        issuer: Name::from_str("CN=Someone Else").unwrap(),
        serial_number: x509_cert::serial_number::SerialNumber::new(&[0x42]).unwrap(),
    };
    let isn = der::Encode::to_der(&unknown).unwrap();
    let ias = scep::request::issuer_and_subject(
        &Name::from_str("CN=Someone Else").unwrap(),
        &Name::from_str("CN=probe").unwrap(),
    )
    .unwrap();
    for (mtype, body) in [(MessageType::GetCert, &isn), (MessageType::GetCrl, &isn), (MessageType::CertPoll, &ias)] {
        let mut b = builder(&d, &cas, "NOMATCH", &[3; 16]);
        b.message_type = mtype;
        b.body = body;
        let r = post(&server, b.build().unwrap()).await;
        let rep = ParsedCertRep::parse(&r.body, &cas.all, &d.signer, &d.key).unwrap();
        assert!(
            matches!(&rep.outcome, Outcome::Failure(FailInfo::BadMessageCheck, t) if t == "The message could not be verified or decrypted."),
            "{mtype:?}: {:?}",
            rep.outcome
        );
    }
}

#[tokio::test]
async fn a_pkcsreq_signed_by_a_key_other_than_its_csrs_is_refused() {
    let server = Server::start(|_| {});
    let cas = ScepClient::new(&server.url()).ca_certs().await.unwrap();
    let mut d = device(&server.challenge());
    // A throw-away RSA signer, as scepreq sends: refused unless allowed.
    let other = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let subject = Name::from_str("CN=probe,O=Example").unwrap();
    d.signer = SignerCert::from_certificate(&scep::x509::scep_signer_certificate(&subject, &other).unwrap()).unwrap();
    let mut b = builder(&d, &cas, "FOREIGN", &[5; 16]);
    b.signer = &other;
    let r = post(&server, b.build().unwrap()).await;
    let rep = ParsedCertRep::parse(&r.body, &cas.all, &d.signer, &other).unwrap();
    assert!(matches!(rep.outcome, Outcome::Failure(FailInfo::BadRequest, _)), "{:?}", rep.outcome);
    assert!(server.logged(|l| l.contains("signed by a key other than the CSR's")));
    assert_eq!(server.certificates().len(), 0);
}

#[tokio::test]
async fn a_san_that_is_not_der_is_refused_before_policy_reads_it() {
    use x509_cert::ext::{
        Extension,
        pkix::{SubjectAltName, name::GeneralName},
    };
    let server = Server::start(|_| {});
    let cas = ScepClient::new(&server.url()).ca_certs().await.unwrap();
    let san = SubjectAltName(vec![GeneralName::DnsName(der::asn1::Ia5String::new("evil.example").unwrap())]);
    let good = der::Encode::to_der(&san).unwrap();
    // Trailing bytes after the SEQUENCE, and a non-minimal length: policy would see no
    // SANs while a raw copy would put these bytes into the certificate.
    let mut trailing = good.clone();
    trailing.extend([0x04, 0x00]);
    let mut long_form = vec![0x30, 0x81, good[1]];
    long_form.extend(&good[2..]);
    for (n, bytes) in [trailing, long_form].into_iter().enumerate() {
        let ext = Extension {
            extn_id: const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME,
            critical: false,
            extn_value: der::asn1::OctetString::new(bytes).unwrap(),
        };
        let mut d = device(&server.challenge());
        d.csr =
            scep::x509::csr(&Name::from_str("CN=probe,O=Example").unwrap(), &d.key, Some(&server.challenge()), &[ext])
                .unwrap();
        let r = post(&server, builder(&d, &cas, &format!("SAN-{n}"), &[n as u8; 16]).build().unwrap()).await;
        let rep = ParsedCertRep::parse(&r.body, &cas.all, &d.signer, &d.key).unwrap();
        assert!(matches!(&rep.outcome, Outcome::Failure(FailInfo::BadRequest, _)), "case {n}: {:?}", rep.outcome);
    }
    assert!(server.logged(|l| l.contains("subjectAltName is not DER") || l.contains("subjectAltName does not decode")));
    assert_eq!(server.certificates().len(), 0);
}

/// `scepd audit` rows, as JSON, once `want` of them with `outcome` are there (the
/// writer commits a little after the answers).
fn audit_rows(server: &Server, outcome: &str, want: usize) -> Vec<serde_json::Value> {
    let dir = server.data_dir();
    let mut rows = Vec::new();
    for _ in 0..50 {
        let out = common::scepd(&["audit", "--json", "--outcome", outcome, "--data-dir", dir.to_str().unwrap()]);
        rows = serde_json::from_slice(&out.stdout).unwrap();
        if rows.len() >= want {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    rows
}

#[tokio::test]
async fn client_chosen_text_is_bounded_in_the_audit_trail_and_escaped_when_shown() {
    let server = Server::start(|_| {});
    let cas = ScepClient::new(&server.url()).ca_certs().await.unwrap();
    let challenge = server.challenge();

    // A 300-character transactionID is refused with a reason, before any decryption.
    let d = device(&challenge);
    let long_tid = "A".repeat(300);
    let reply = post(&server, builder(&d, &cas, &long_tid, &[3; 16]).build().unwrap()).await;
    let rep = ParsedCertRep::parse(&reply.body, &cas.all, &d.signer, &d.key).unwrap();
    match rep.outcome {
        Outcome::Failure(FailInfo::BadRequest, text) => {
            assert!(text.contains("transactionID is longer than 256"), "{text}")
        }
        other => panic!("{other:?}"),
    }

    // A subject carrying a newline and a terminal escape sequence (a wrong challenge,
    // so it is refused and recorded): `scepd audit` shows it escaped on one line.
    let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let subject = Name::from_str("CN=evil\n2026-12-03 forged line \u{1b}[2J").unwrap();
    let csr = scep::x509::csr(&subject, &key, Some("wrong"), &[]).unwrap();
    let signer = SignerCert::from_certificate(&scep::x509::scep_signer_certificate(&subject, &key).unwrap()).unwrap();
    let evil = Device { key, signer, csr };
    post(&server, builder(&evil, &cas, "EVIL", &[4; 16]).build().unwrap()).await;
    let rows = audit_rows(&server, "failure", 2);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r["transaction_id"].as_str().unwrap().len() < 300), "{rows:?}");
    let out = common::scepd(&["audit", "--outcome", "failure", "--data-dir", server.data_dir().to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("CN=evil"), "{text}");
    assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text}");

    // Fifty unreadable messages from one address: failure rows are limited to twenty
    // per address and minute, the two above included.
    for i in 0..50u8 {
        assert_eq!(post(&server, vec![0x30, 0x03, 0x02, 0x01, i]).await.status, 400);
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let rows = audit_rows(&server, "unreadable", 50);
    assert_eq!(rows.len(), 18, "{} rows", rows.len());
    still_up(&server).await;
}
