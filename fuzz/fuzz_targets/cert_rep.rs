//! (f) The client's reply parser, `ParsedCertRep::parse`. The first byte picks what
//! the rest is:
//! - 0: a CertRep as received, checked against the fixture certificates and the
//!   fixed server key;
//! - 1: the parts of a reply (status, failInfo, transactionID, nonce, failInfoText),
//!   which the target signs with `cert_rep` as the server would; the parse must then
//!   give back exactly those parts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scep::attr::{FailInfo, Nonce, TransactionId};
use scep::request::ReplyTo;
use scep::response::{Outcome, ParsedCertRep, cert_rep};
use scepd_fuzz::{Input, fixed};

fuzz_target!(|data: &[u8]| {
    let f = fixed();
    let mut trusted = vec![f.signer_cert.clone()];
    trusted.extend(f.others.iter().cloned());
    let ours = scep::signer::SignerCert::from_certificate(&f.ra_cert).expect("the RA certificate reads");
    let mut input = Input(data);
    if input.byte() % 2 == 0 {
        if let Ok(rep) = ParsedCertRep::parse(input.rest(), &trusted, &ours, &f.ra_key) {
            let _ = format!("{rep:?}");
        }
        return;
    }

    let status = input.byte();
    let fail_info = match input.byte() % 5 {
        0 => FailInfo::BadAlg,
        1 => FailInfo::BadMessageCheck,
        2 => FailInfo::BadRequest,
        3 => FailInfo::BadTime,
        _ => FailInfo::BadCertId,
    };
    let cipher = input.cipher();
    let id_len = usize::from(input.byte());
    let transaction_id = String::from_utf8_lossy(input.take(id_len)).into_owned();
    let nonce = input.take(16).to_vec();
    let text = String::from_utf8_lossy(input.rest()).into_owned();
    let outcome = match status % 3 {
        0 => Outcome::Success { certificates: vec![f.ra_cert.clone(), f.signer_cert.clone()], crls: vec![] },
        1 => Outcome::Pending,
        _ => Outcome::Failure(fail_info, text),
    };
    let reply = ReplyTo {
        transaction_id: TransactionId::new(transaction_id.clone()),
        sender_nonce: Nonce(nonce.clone()),
        recipient: scep::signer::SignerCert::from_certificate(&f.ra_cert).expect("the RA certificate reads"),
        request_cipher: Some(cipher),
    };
    let now = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
    let bytes = cert_rep(&reply, &outcome, &f.signer, &f.signer_cert, scep::response::Env::system(now)).expect("a reply can always be built");
    let rep = ParsedCertRep::parse(&bytes, &trusted, &reply.recipient, &f.ra_key).expect("our own reply parses");
    assert_eq!(rep.transaction_id, Some(TransactionId::new(transaction_id)));
    assert_eq!(rep.recipient_nonce, Some(Nonce(nonce)));
    match (&outcome, &rep.outcome) {
        (Outcome::Pending, Outcome::Pending) => {}
        (Outcome::Failure(i, t), Outcome::Failure(j, u)) => assert!(i == j && t == u, "failure changed"),
        (Outcome::Success { certificates: a, .. }, Outcome::Success { certificates: b, .. }) => {
            assert!(a == b, "certificates changed")
        }
        (sent, got) => panic!("sent {sent:?}, parsed {got:?}"),
    }
});
