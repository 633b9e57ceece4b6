//! (a) A GET PKIOperation: the raw query string through `Query::parse`, then the
//! `message` through `decode_message` and on to `PkiMessage::parse`, as the server
//! does. Also checks that every base64 variant clients send decodes to the bytes
//! that were encoded.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use libfuzzer_sys::fuzz_target;
use scep::operation::{Operation, Query, decode_message};
use scep::request::PkiMessage;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let q = Query::parse(&raw);
    if let Some(op) = q.operation.as_deref() {
        let _ = Operation::from_name(op);
    }
    if let Some(message) = q.message.as_deref()
        && let Ok(bytes) = decode_message(message)
    {
        let _ = PkiMessage::parse(&bytes);
    }

    // The input as bytes, in each encoding seen in the field (scep-wire.md).
    let std = STANDARD.encode(data);
    let wrapped = std.as_bytes().chunks(64).map(String::from_utf8_lossy).collect::<Vec<_>>().join("\r\n");
    for variant in [std.clone(), URL_SAFE_NO_PAD.encode(data), std.replace('+', " "), wrapped] {
        assert_eq!(decode_message(&variant).ok().as_deref(), Some(data), "{variant}");
    }
    // Percent-encoded in a query, after another parameter of the same name's absence.
    let pct = std.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    let q = Query::parse(&format!("operation=PKIOperation&message={pct}"));
    assert_eq!(q.message.as_deref(), Some(std.as_str()));
});
