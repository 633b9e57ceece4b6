//! (b) The outer SignedData of a PKIOperation: `PkiMessage::parse`, then `verify`,
//! then what the server does with a message it could parse whatever happens next:
//! a FAILURE CertRep to its transactionID, and (for a verified request that
//! succeeds) a SUCCESS envelope to the request's own, attacker-chosen, certificate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scep::attr::FailInfo;
use scep::request::PkiMessage;
use scep::response::{Outcome, cert_rep, failure_rep};

fuzz_target!(|data: &[u8]| {
    let msg = match PkiMessage::parse(data) {
        Ok(m) => m,
        Err(u) => {
            let _ = (u.error.to_string(), u.error.fail_info());
            // Readable to its transactionID: the answer is a FAILURE, which must not fail.
            if let Some(to) = &u.address {
                let f = scepd_fuzz::fixed();
                let now = std::time::SystemTime::UNIX_EPOCH;
                let info = FailInfo::BadMessageCheck;
                assert!(failure_rep(to, info, "unreadable", &f.signer, &f.signer_cert, scep::response::Env::system(now)).is_ok(), "no FAILURE");
            }
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
    let now = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
    assert!(cert_rep(&reply, &failure, &f.signer, &f.signer_cert, scep::response::Env::system(now)).is_ok(), "no FAILURE reply");
    let success = Outcome::Success { certificates: vec![f.ra_cert.clone()], crls: vec![] };
    let _ = cert_rep(&reply, &success, &f.signer, &f.signer_cert, scep::response::Env::system(now));
});
