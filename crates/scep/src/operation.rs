//! SCEP HTTP operations (RFC 8894 section 4) and the `message` parameter in every
//! form clients send it.

use base64::Engine as _;

use crate::error::{Error, Result};

/// Content type of a single CA certificate.
pub const CONTENT_TYPE_CA_CERT: &str = "application/x-x509-ca-cert";
/// Content type of a certs-only SignedData with the CA and RA certificates.
pub const CONTENT_TYPE_CA_RA_CERT: &str = "application/x-x509-ca-ra-cert";
/// Content type of GetNextCACert.
pub const CONTENT_TYPE_NEXT_CA_CERT: &str = "application/x-x509-next-ca-cert";
/// Content type of a pkiMessage, both ways.
pub const CONTENT_TYPE_PKI_MESSAGE: &str = "application/x-pki-message";

/// A SCEP operation named by the `operation` query parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// GetCACaps.
    GetCaCaps,
    /// GetCACert.
    GetCaCert,
    /// GetNextCACert.
    GetNextCaCert,
    /// PKIOperation.
    PkiOperation,
}

impl Operation {
    /// Parse the operation name (case-insensitive, as IIS matches it).
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "getcacaps" => Operation::GetCaCaps,
            "getcacert" => Operation::GetCaCert,
            "getnextcacert" => Operation::GetNextCaCert,
            "pkioperation" => Operation::PkiOperation,
            _ => return None,
        })
    }

    /// The name as the RFC spells it.
    pub fn name(self) -> &'static str {
        match self {
            Operation::GetCaCaps => "GetCACaps",
            Operation::GetCaCert => "GetCACert",
            Operation::GetNextCaCert => "GetNextCACert",
            Operation::PkiOperation => "PKIOperation",
        }
    }
}

/// The `operation` and raw `message` values of a query string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// `operation`, percent-decoded.
    pub operation: Option<String>,
    /// `message`, percent-decoded but otherwise untouched (a `+` stays a `+`).
    pub message: Option<String>,
}

impl Query {
    /// Split a raw query string. Unlike form decoding, `+` is kept: clients send
    /// unescaped base64, and its `+` is data, not a space.
    pub fn parse(raw: &str) -> Self {
        let mut q = Query::default();
        for pair in raw.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(k);
            if k.eq_ignore_ascii_case("operation") && q.operation.is_none() {
                q.operation = Some(percent_decode(v));
            } else if k.eq_ignore_ascii_case("message") && q.message.is_none() {
                q.message = Some(percent_decode(v));
            }
        }
        q
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b.get(i + 1..i + 3).and_then(|h| core::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decode the base64 `message` of a GET PKIOperation in any variant seen in the
/// field: standard, URL-safe (`-_`), with line breaks, with `+` turned into a space by
/// an earlier form decoder, with or without `=` padding.
pub fn decode_message(message: &str) -> Result<Vec<u8>> {
    let cleaned: String = message
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\t'))
        .map(|c| match c {
            ' ' => '+',
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .filter(|c| *c != '=')
        .collect();
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(cleaned.as_bytes())
        .map_err(|_| Error::Malformed("message is not base64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_base64_variant_decodes_to_the_same_bytes() {
        let bytes: Vec<u8> = (0u8..=255).collect();
        let std = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
        let pct = std.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
        let wrapped: String =
            std.as_bytes().chunks(64).map(|c| core::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join("%0A");
        for raw in [std.clone(), url, pct, wrapped, std.replace('+', " ")] {
            let q = Query::parse(&format!("operation=PKIOperation&message={raw}"));
            assert_eq!(q.operation.as_deref(), Some("PKIOperation"));
            assert_eq!(decode_message(q.message.as_deref().unwrap()).unwrap(), bytes, "{raw}");
        }
        // Unescaped `+` in the raw query stays data.
        let q = Query::parse(&format!("message={std}&operation=PKIOperation"));
        assert_eq!(decode_message(q.message.as_deref().unwrap()).unwrap(), bytes);
        assert!(decode_message("not base64!!").is_err());
    }

    #[test]
    fn operation_names_are_case_insensitive() {
        assert_eq!(Operation::from_name("getcacaps"), Some(Operation::GetCaCaps));
        assert_eq!(Operation::from_name("PKIOperation"), Some(Operation::PkiOperation));
        assert_eq!(Operation::from_name("nope"), None);
    }
}
