//! Requests captured from SCEP clients the project did not write (the interop suite in
//! `interop/` runs them end to end against the server). Here only what the protocol crate
//! decides is pinned: each reads, its signature verifies, and its signer certificate is
//! addressed as it names itself, however far from RFC 5280 it is.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use scep::attr::{DigestAlg, MessageType};
use scep::operation::{Query, decode_message};
use scep::request::PkiMessage;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/clients/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Parse and verify; the message type, the digest and the signer certificate.
fn read(bytes: &[u8]) -> (MessageType, DigestAlg, scep::signer::SignerCert, String) {
    let msg = PkiMessage::parse(bytes).unwrap();
    let mtype = msg.message_type();
    let reply = msg.reply_to().clone();
    let signed = msg.verify().unwrap();
    let digest = signed.digest();
    (mtype, digest, reply.recipient, reply.transaction_id.as_str().to_owned())
}

#[test]
fn certmonger_get_with_a_33_octet_signer_serial() {
    // certmonger 0.79.17 (C, OpenSSL 3): GET, standard base64 percent-encoded, 3.7 KB of query.
    let query = String::from_utf8(fixture("certmonger-pkcsreq.txt")).unwrap();
    assert!(query.len() > 3_500);
    let q = Query::parse(query.trim());
    let bytes = decode_message(q.message.as_deref().unwrap()).unwrap();
    let (mtype, digest, signer, tid) = read(&bytes);
    assert_eq!((mtype, digest), (MessageType::PkcsReq, DigestAlg::Sha256));
    // A 77-digit decimal transactionID, and a self-signed signer whose serial RFC 5280 decoders refuse.
    assert!(tid.len() > 70 && tid.bytes().all(|b| b.is_ascii_digit()), "{tid}");
    assert!(signer.certificate().is_none());
}

#[test]
fn certmonger_renewal_signed_by_the_issued_certificate() {
    let (mtype, _, signer, _) = read(&fixture("certmonger-renewal-pkcsreq.der"));
    assert_eq!(mtype, MessageType::PkcsReq);
    assert!(signer.certificate().is_some(), "scepd's own certificate reads strictly");
}

#[test]
fn strongswan_pki_pkcsreq_and_renewalreq() {
    // strongSwan 5.9.8 (C, its own PKCS#7 code): POST, sha256WithRSAEncryption in the SignerInfo.
    let (mtype, digest, signer, tid) = read(&fixture("strongswan-pkcsreq.der"));
    assert_eq!((mtype, digest), (MessageType::PkcsReq, DigestAlg::Sha256));
    assert_eq!(tid.len(), 40);
    assert!(signer.certificate().is_some());
    let (mtype, ..) = read(&fixture("strongswan-renewalreq.der"));
    assert_eq!(mtype, MessageType::RenewalReq);
}

#[test]
fn pyscep_and_scepreq_sign_with_sha512() {
    // pyscep 0.0.14 and scepreq 0.1.1 (Python, asn1crypto): SHA-512 because it is advertised.
    for f in ["pyscep-pkcsreq.der", "scepreq-pkcsreq.der"] {
        let (mtype, digest, ..) = read(&fixture(f));
        assert_eq!((mtype, digest), (MessageType::PkcsReq, DigestAlg::Sha512), "{f}");
    }
}
