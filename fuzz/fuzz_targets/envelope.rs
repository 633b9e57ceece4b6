//! (c) The envelope: a full `PkiMessage::parse` -> `verify` -> `open` with the
//! fixtures' RA key, so that key transport, implicit rejection, CBC decryption and
//! the body (CSR, IssuerAndSubject, IssuerAndSerialNumber) all run.
//!
//! The fuzzer cannot forge signatures, so the target signs each message itself with
//! a fixed requester key. The first byte picks what the rest of the input is:
//! - 0: the EnvelopedData ContentInfo itself (DER or BER), signed as it is;
//! - 1: the plaintext body, correctly encrypted to the RA certificate, so the body
//!   parsers see arbitrary bytes after a successful decryption;
//! - 2: the encrypted content key of an envelope around a valid CSR. Nothing but
//!   the RA key can produce a right one, so the result must be `Error::Decrypt`,
//!   the one answer for every decryption failure (the no-oracle property).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scep::Error;
use scep::attr::{MessageType, Nonce, TransactionId};
use scep::cms::{EnvelopeSpec, envelope_with};
use scep::crypto::Decrypter;
use scep::request::{PkiMessage, RequestBuilder};
use scepd_fuzz::{Input, fixed};
use x509_cert::Certificate;

const CONTENT_KEY: [u8; 32] = [0x5c; 32];

fuzz_target!(|data: &[u8]| {
    let f = fixed();
    let mut input = Input(data);
    let mode = input.byte() % 3;
    let message_type = if mode == 2 { MessageType::PkcsReq } else { input.request_type() };
    let cipher = input.cipher();
    let transport = input.transport();
    let envelope = match mode {
        0 => input.rest().to_vec(),
        1 => {
            let key = CONTENT_KEY.get(..cipher.key_len()).unwrap_or(&CONTENT_KEY);
            let spec = EnvelopeSpec { cipher, key, transport, encrypted_key: None, pad: true };
            match envelope_with(input.rest(), &f.ra_cert, &spec) {
                Ok(e) => e,
                Err(_) => return,
            }
        }
        _ => {
            let key = CONTENT_KEY.get(..cipher.key_len()).unwrap_or(&CONTENT_KEY);
            let spec = EnvelopeSpec { cipher, key, transport, encrypted_key: Some(input.rest().to_vec()), pad: true };
            match envelope_with(&f.csr, &f.ra_cert, &spec) {
                Ok(e) => e,
                Err(_) => return,
            }
        }
    };
    let signer_cert = scep::signer::SignerCert::from_certificate(&f.signer_cert).expect("the signer reads");
    let builder = RequestBuilder {
        message_type,
        transaction_id: TransactionId::new("fuzz"),
        sender_nonce: Nonce(vec![1; 16]),
        body: &[],
        recipient: &f.ra_cert,
        cipher,
        signer: &f.signer,
        signer_cert: &signer_cert,
    };
    let Ok(bytes) = builder.build_with_envelope(envelope) else { return };
    // The envelope is the signed content, opaque to the outer parser: whatever it is,
    // the message must parse and verify.
    let msg = PkiMessage::parse(&bytes).expect("a message signed here parses");
    let signed = msg.verify().expect("a message signed here verifies");
    let recipients: [(&Certificate, &dyn Decrypter); 1] = [(&f.ra_cert, &f.ra_key)];
    let result = signed.open(&recipients, b"fuzz rejection secret");
    match &result {
        Ok(req) => {
            let _ = format!("{req:?}");
        }
        Err(e) => {
            let _ = (e.to_string(), e.fail_info());
        }
    }
    if mode == 2 {
        assert!(matches!(result, Err(Error::Decrypt)), "a wrong content key gave {result:?}");
    }
});
