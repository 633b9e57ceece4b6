//! A whole PKIOperation through the protocol crate: client request -> server parse,
//! verify, open -> CertRep -> client parse, for every cipher and key transport.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use scep::attr::{ContentCipher, FailInfo, MessageType, Nonce, TransactionId};
use scep::crypto::{KeyType, PrivateKey, Signer};
use scep::request::{Body, PkiMessage, RequestBuilder};
use scep::response::{Env, Outcome, ParsedCertRep, cert_rep};
use scep::signer::SignerCert;
use scep::x509::{self, CertTemplate};
use x509_cert::{Certificate, ext::pkix::KeyUsages, name::Name};

struct Pki {
    ca_key: PrivateKey,
    ca: Certificate,
    ra_key: PrivateKey,
    ra: Certificate,
}

fn pki() -> Pki {
    let ca_key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let now = SystemTime::now();
    let ca = x509::issue(
        &CertTemplate {
            subject: Name::from_str("CN=Test CA").unwrap(),
            serial: x509::random_serial().unwrap(),
            not_before: now,
            not_after: now + Duration::from_secs(86400),
            extensions: vec![
                x509::basic_constraints(true).unwrap(),
                x509::key_usage(KeyUsages::KeyCertSign | KeyUsages::CRLSign).unwrap(),
            ],
        },
        &ca_key.public_key(),
        None,
        &ca_key,
    )
    .unwrap();
    let ra_key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let ra = x509::issue(
        &CertTemplate {
            subject: Name::from_str("CN=Test RA").unwrap(),
            serial: x509::random_serial().unwrap(),
            not_before: now,
            not_after: now + Duration::from_secs(86400),
            extensions: vec![x509::key_usage(KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment).unwrap()],
        },
        &ra_key.public_key(),
        Some(&ca),
        &ca_key,
    )
    .unwrap();
    Pki { ca_key, ca, ra_key, ra }
}

fn request(p: &Pki, client: &PrivateKey, cipher: ContentCipher, challenge: Option<&str>) -> (Vec<u8>, SignerCert) {
    let subject = Name::from_str("CN=device-1,O=Example").unwrap();
    let csr = x509::csr(&subject, client, challenge, &[]).unwrap();
    let signer_cert = SignerCert::from_certificate(&x509::scep_signer_certificate(&subject, client).unwrap()).unwrap();
    let msg = RequestBuilder {
        message_type: MessageType::PkcsReq,
        transaction_id: TransactionId::new("ABC+/="),
        sender_nonce: Nonce(vec![9; 16]),
        body: &csr,
        recipient: &p.ra,
        cipher,
        signer: client,
        signer_cert: &signer_cert,
    }
    .build()
    .unwrap();
    (msg, signer_cert)
}

#[test]
fn enrollment_round_trip_for_every_cipher() {
    let p = pki();
    let client = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    for cipher in [ContentCipher::Des3, ContentCipher::Aes128, ContentCipher::Aes256] {
        let (bytes, signer) = request(&p, &client, cipher, Some("S3CRET"));
        let msg = PkiMessage::parse(&bytes).unwrap();
        assert_eq!(msg.message_type(), MessageType::PkcsReq);
        let reply = msg.reply_to().clone();
        assert_eq!(reply.transaction_id.as_str(), "ABC+/=");
        let req = msg.verify().unwrap().open(&[(&p.ra, &p.ra_key)], b"secret").unwrap();
        let Body::PkcsReq(csr) = &req.body else { panic!("not a PKCSReq") };
        assert_eq!(csr.challenge().unwrap().expose(), "S3CRET");
        assert_eq!(req.reply.request_cipher, Some(cipher));
        let now = SystemTime::now();
        let issued = x509::issue(
            &CertTemplate {
                subject: csr.subject().clone(),
                serial: x509::random_serial().unwrap(),
                not_before: now,
                not_after: now + Duration::from_secs(3600),
                extensions: vec![],
            },
            csr.public_key(),
            Some(&p.ca),
            &p.ca_key,
        )
        .unwrap();
        let out = cert_rep(
            &req.reply,
            &Outcome::Success { certificates: vec![issued.clone(), p.ca.clone()], crls: vec![] },
            &p.ra_key,
            &p.ra,
            Env::system(SystemTime::now()),
        )
        .unwrap();
        let parsed = ParsedCertRep::parse(&out, &[p.ca.clone(), p.ra.clone()], &signer, &client).unwrap();
        assert_eq!(parsed.transaction_id.unwrap().as_str(), "ABC+/=");
        assert_eq!(parsed.recipient_nonce.unwrap().0, vec![9; 16]);
        assert_ne!(parsed.sender_nonce.unwrap().0, vec![9; 16]);
        assert_eq!(parsed.cipher, Some(cipher.reply_cipher()));
        let Outcome::Success { certificates, .. } = parsed.outcome else { panic!("not a success") };
        assert_eq!(certificates.first(), Some(&issued), "issued certificate first");
        x509::verify_issued_by(&issued, &p.ca).unwrap();
    }
}

#[test]
fn failure_reply_carries_fail_info_and_text() {
    let p = pki();
    let client = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let (bytes, signer) = request(&p, &client, ContentCipher::Aes128, None);
    let reply = PkiMessage::parse(&bytes).unwrap().reply_to().clone();
    let out = cert_rep(
        &reply,
        &Outcome::Failure(FailInfo::BadRequest, "no challenge".into()),
        &p.ra_key,
        &p.ra,
        Env::system(SystemTime::now()),
    )
    .unwrap();
    let parsed = ParsedCertRep::parse(&out, std::slice::from_ref(&p.ra), &signer, &client).unwrap();
    match parsed.outcome {
        Outcome::Failure(FailInfo::BadRequest, text) => assert_eq!(text, "no challenge"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn tampered_signature_is_bad_message_check() {
    let p = pki();
    let client = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let (mut bytes, _) = request(&p, &client, ContentCipher::Aes128, Some("x"));
    // The SignerInfo's signature is the last field of the message.
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    let msg = PkiMessage::parse(&bytes).unwrap();
    let err = msg.verify().unwrap_err();
    assert_eq!(err.fail_info(), FailInfo::BadMessageCheck);
}

#[test]
fn wrong_recipient_and_garbage_key_look_the_same() {
    let p = pki();
    let other = pki();
    let client = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    // Encrypted to another RA: the unwrap fails, a substitute key is used, the body
    // is garbage: the error is the same Decrypt as for any other bad content.
    let (bytes, _) = request(&other, &client, ContentCipher::Aes128, Some("x"));
    let err = PkiMessage::parse(&bytes).unwrap().verify().unwrap().open(&[(&p.ra, &p.ra_key)], b"s").unwrap_err();
    assert!(matches!(err, scep::Error::Decrypt), "{err:?}");
    let _ = p.ca_key.sign(b"").unwrap();
}

fn open_with(p: &Pki, bytes: &[u8]) -> scep::Result<scep::request::Request> {
    let recipients: [(&Certificate, &dyn scep::crypto::Decrypter); 1] = [(&p.ra, &p.ra_key)];
    PkiMessage::parse(bytes)?.verify()?.open(&recipients, b"secret")
}

#[cfg(feature = "testing")] // `cargo test --workspace` has it: the server's tests ask for it
#[test]
fn oaep_key_transport_and_single_des_are_accepted() {
    use scep::attr::KeyTransport;
    use scep::cms::{EnvelopeSpec, envelope_with};
    let p = pki();
    let client = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let subject = Name::from_str("CN=win-tpm").unwrap();
    let csr = x509::csr(&subject, &client, Some("pw"), &[]).unwrap();
    let signer_cert = SignerCert::from_certificate(&x509::scep_signer_certificate(&subject, &client).unwrap()).unwrap();
    let cases = [
        (ContentCipher::Aes256, KeyTransport::RsaOaepSha1),
        (ContentCipher::Aes128, KeyTransport::RsaOaepSha256),
        (ContentCipher::Des, KeyTransport::RsaPkcs1),
    ];
    for (cipher, transport) in cases {
        let key = scep::crypto::random_bytes(cipher.key_len()).unwrap();
        let env =
            envelope_with(&csr, &p.ra, &EnvelopeSpec { cipher, key: &key, transport, encrypted_key: None, pad: true })
                .unwrap();
        let msg = RequestBuilder {
            message_type: MessageType::PkcsReq,
            transaction_id: TransactionId::new("1234567890123456789012345"),
            sender_nonce: Nonce(vec![1; 16]),
            body: &csr,
            recipient: &p.ra,
            cipher,
            signer: &client,
            signer_cert: &signer_cert,
        }
        .build_with_envelope(env)
        .unwrap();
        let req = open_with(&p, &msg).unwrap_or_else(|e| panic!("{cipher:?} {transport:?}: {e}"));
        assert_eq!(req.reply.request_cipher, Some(cipher));
        // Single DES requesters are answered with 3DES, never DES.
        assert_ne!(req.reply.request_cipher.unwrap().reply_cipher(), ContentCipher::Des);
    }
}

#[test]
fn a_signer_key_other_than_the_csr_key_gets_the_reply() {
    // One NDES-oriented tool signs with a throw-away key: the reply must be
    // encrypted to the signer certificate, not to the CSR key.
    let p = pki();
    let device_key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let throwaway = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let subject = Name::from_str("CN=device").unwrap();
    let csr = x509::csr(&subject, &device_key, Some("pw"), &[]).unwrap();
    let signer_cert = SignerCert::from_certificate(
        &x509::scep_signer_certificate(&Name::from_str("CN=SCEP Protocol Certificate").unwrap(), &throwaway).unwrap(),
    )
    .unwrap();
    let msg = RequestBuilder {
        message_type: MessageType::PkcsReq,
        transaction_id: TransactionId::new("t"),
        sender_nonce: Nonce(vec![5; 16]),
        body: &csr,
        recipient: &p.ra,
        cipher: ContentCipher::Aes128,
        signer: &throwaway,
        signer_cert: &signer_cert,
    }
    .build()
    .unwrap();
    let req = open_with(&p, &msg).unwrap();
    let Body::PkcsReq(csr) = &req.body else { panic!() };
    assert_eq!(*csr.public_key(), device_key.public_key());
    let issued = x509::issue(
        &CertTemplate {
            subject: csr.subject().clone(),
            serial: x509::random_serial().unwrap(),
            not_before: SystemTime::now(),
            not_after: SystemTime::now() + Duration::from_secs(60),
            extensions: vec![],
        },
        csr.public_key(),
        Some(&p.ca),
        &p.ca_key,
    )
    .unwrap();
    let out = cert_rep(
        &req.reply,
        &Outcome::Success { certificates: vec![issued.clone()], crls: vec![] },
        &p.ra_key,
        &p.ra,
        Env::system(SystemTime::now()),
    )
    .unwrap();
    let parsed = ParsedCertRep::parse(&out, std::slice::from_ref(&p.ra), &signer_cert, &throwaway).unwrap();
    let Outcome::Success { certificates, .. } = parsed.outcome else { panic!() };
    assert_eq!(certificates[0], issued);
    assert!(ParsedCertRep::parse(&out, std::slice::from_ref(&p.ra), &signer_cert, &device_key).is_err());
}
