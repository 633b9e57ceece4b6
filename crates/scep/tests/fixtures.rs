//! Golden requests from two client implementations, captured on the wire.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use scep::attr::{ContentCipher, DigestAlg, MessageType};
use scep::crypto::{Decrypter, PrivateKey};
use scep::operation::{Query, decode_message};
use scep::request::{Body, PkiMessage, Request};
use x509_cert::Certificate;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn open(bytes: &[u8]) -> Request {
    let key = PrivateKey::from_pkcs8_der(&fixture("ra-encrypt-key.der")).unwrap();
    let cert = Certificate::load_pem_chain(&fixture("ra-encrypt.pem")).unwrap().remove(0);
    let msg = PkiMessage::parse(bytes).unwrap();
    assert_eq!(msg.message_type(), MessageType::PkcsReq);
    let recipients: [(&Certificate, &dyn Decrypter); 1] = [(&cert, &key)];
    msg.verify().unwrap().open(&recipients, b"fixture").unwrap()
}

fn cn(req: &Request) -> String {
    let Body::PkcsReq(csr) = &req.body else { panic!("not a PKCSReq") };
    csr.subject().common_name().unwrap().unwrap().value().into_owned()
}

#[test]
fn micromdm_scepclient_post_des_sha1() {
    let req = open(&fixture("scepclient-post.der"));
    assert_eq!(req.reply.request_cipher, Some(ContentCipher::Des));
    assert_eq!(req.digest, DigestAlg::Sha1);
    assert_eq!(cn(&req), "scepclient-post");
    let Body::PkcsReq(csr) = &req.body else { unreachable!() };
    assert_eq!(csr.challenge().unwrap().expose().len(), 16);
    // base64 of SHA-1, with `+/=`: echoed byte for byte.
    assert_eq!(req.reply.transaction_id.as_str().len(), 28);
    assert_eq!(req.reply.sender_nonce.0.len(), 16);
}

#[test]
fn micromdm_scepclient_get_url_safe_base64() {
    let line = String::from_utf8(fixture("scepclient-get.txt")).unwrap();
    let q = Query::parse(line.split_once('?').unwrap().1);
    assert_eq!(q.operation.as_deref(), Some("PKIOperation"));
    let bytes = decode_message(q.message.as_deref().unwrap()).unwrap();
    let req = open(&bytes);
    assert_eq!(cn(&req), "scepclient-get");
}

#[test]
fn scep_rust_client_aes256_sha256_with_san() {
    let req = open(&fixture("scep-rust-aes256.der"));
    assert_eq!(req.reply.request_cipher, Some(ContentCipher::Aes256));
    assert_eq!(req.digest, DigestAlg::Sha256);
    assert_eq!(cn(&req), "scep-rust");
    let Body::PkcsReq(csr) = &req.body else { unreachable!() };
    assert!(csr.subject_alt_name().is_some());
}

#[test]
fn a_fixture_with_a_flipped_byte_never_panics() {
    // Every single-byte corruption of a real message is either unreadable or refused.
    let orig = fixture("scep-rust-aes256.der");
    let key = PrivateKey::from_pkcs8_der(&fixture("ra-encrypt-key.der")).unwrap();
    let cert = Certificate::load_pem_chain(&fixture("ra-encrypt.pem")).unwrap().remove(0);
    let recipients: [(&Certificate, &dyn Decrypter); 1] = [(&cert, &key)];
    for i in (0..orig.len()).step_by(7) {
        let mut b = orig.clone();
        b[i] ^= 0x5a;
        if let Ok(m) = PkiMessage::parse(&b) {
            let _ = m.verify().and_then(|m| m.open(&recipients, b"x"));
        }
        let _ = PkiMessage::parse(&b[..i]);
    }
}
