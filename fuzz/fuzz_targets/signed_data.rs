//! (b) The outer SignedData of a PKIOperation: `PkiMessage::parse`, then `verify`,
//! then what the server does with a message it could parse whatever happens next:
//! a FAILURE CertRep to its transactionID, and (for a verified request that
//! succeeds) a SUCCESS envelope to the request's own, attacker-chosen, certificate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scep::attr::FailInfo;
use scep::request::PkiMessage;
use scep::response::{Outcome, cert_rep};

fuzz_target!(|data: &[u8]| {
    let msg = match PkiMessage::parse(data) {
        Ok(m) => m,
        Err(e) => {
            let _ = (e.to_string(), e.fail_info());
            return;
        }
    };
    let _ = format!("{msg:?}");
    let _ = msg.message_type();
    let reply = msg.reply_to().clone();
    if let Err(e) = msg.verify() {
        let _ = (e.to_string(), e.fail_info());
    }
    let f = scepd_fuzz::fixed();
    let failure = Outcome::Failure(FailInfo::BadMessageCheck, "request rejected".into());
    // The transactionID is echoed whatever its characters: answering must not fail.
    assert!(cert_rep(&reply, &failure, &f.signer, &f.signer_cert).is_ok(), "no FAILURE reply");
    let success = Outcome::Success { certificates: vec![f.ra_cert.clone()], crls: vec![] };
    let _ = cert_rep(&reply, &success, &f.signer, &f.signer_cert);
});
