//! (d) The CSR and its attributes: `Csr::from_der` and every accessor.
//!
//! A CSR's attributes are read only after its self-signature verifies, which
//! mutated bytes never do. So the first byte picks what the rest is:
//! - 0: a CSR as received;
//! - 1: a CertificationRequestInfo, which the target gives the fixed key and signs,
//!   so that the attribute parsers (challengePassword, extensionRequest, the
//!   Microsoft validity pair) see arbitrary content. Such a CSR must verify.
#![no_main]

use der::asn1::BitString;
use der::{Decode, Encode};
use libfuzzer_sys::fuzz_target;
use scep::Error;
use scep::crypto::Signer;
use scep::csr::Csr;
use x509_cert::request::{CertReq, CertReqInfo};

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else { return };
    let (der, signed_here) = if mode % 2 == 0 { (rest.to_vec(), false) } else { (sign(rest), true) };
    if der.is_empty() {
        return;
    }
    match Csr::from_der(&der) {
        Ok(csr) => {
            let _ = (csr.subject(), csr.public_key(), csr.extensions(), csr.to_der());
            let _ = (csr.subject_alt_name(), csr.key_usage(), csr.requested_validity());
            let _ = format!("{csr:?}");
            if let Some(c) = csr.challenge() {
                let shown = format!("{c:?}");
                let secret = c.expose();
                assert!(secret.len() < 4 || "Challenge(<redacted>)".contains(secret) || !shown.contains(secret));
            }
        }
        Err(e) => {
            let _ = (e.to_string(), e.fail_info());
            if signed_here {
                assert!(
                    !matches!(&e, Error::BadRequest(m) if m.contains("signature")),
                    "a CSR signed here does not verify"
                );
            }
        }
    }
});

/// A CSR around `info` (if it decodes) with the fixed key put in and signed by it.
fn sign(info: &[u8]) -> Vec<u8> {
    let f = scepd_fuzz::fixed();
    let Ok(mut info) = CertReqInfo::from_der(info) else { return Vec::new() };
    info.public_key = f.signer.public_key();
    let Ok(tbs) = info.to_der() else { return Vec::new() };
    let Ok(sig) = f.signer.sign(&tbs) else { return Vec::new() };
    let Ok(signature) = BitString::from_bytes(&sig) else { return Vec::new() };
    CertReq { info, algorithm: f.signer.signature_algorithm(), signature }.to_der().unwrap_or_default()
}
