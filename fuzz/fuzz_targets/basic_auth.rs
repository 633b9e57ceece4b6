//! (h) The `Authorization: Basic` header of the admin page and API:
//! `scep_server::http::auth::basic_credentials`.
//!
//! Checks that a header built from a parsed user and password parses back to the
//! same pair.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use scep_server::http::auth::basic_credentials;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else { return };
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value);
    let Some((user, password)) = basic_credentials(&headers) else { return };
    let again = format!("Basic {}", STANDARD.encode(format!("{user}:{}", password.as_str())));
    let Ok(value) = HeaderValue::from_str(&again) else { return };
    headers.insert(header::AUTHORIZATION, value);
    let (u, p) = basic_credentials(&headers).expect("a header made from parsed credentials parses");
    assert!(u == user && p.as_str() == password.as_str(), "credentials changed in a round trip");
});
