//! (e) BER normalisation, which is private to `scep`: reached through the two public
//! parsers that normalise first, `cms::parse_certs_only` (GetCACert and CertRep
//! contents) and `PkiMessage::parse`. A certs-only structure that parses must also
//! survive a DER round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scep::cms::{certs_only, parse_certs_only};
use scep::request::PkiMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok((certs, crls)) = parse_certs_only(data)
        && let Ok(der) = certs_only(&certs, &crls)
    {
        let again = parse_certs_only(&der).expect("our own certs-only DER parses");
        assert!(again.0 == certs && again.1 == crls, "certs-only round trip changed the content");
    }
    let _ = PkiMessage::parse(data);
});
