//! The NDES admin page (`/certsrv/mscep_admin/`) as products scrape it: GET with
//! Basic credentials, NTLM when the server asks for it, the body decoded whatever its
//! encoding, and the one-time challenge taken out with the regex consumers use.

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine as _;
use regex::Regex;

use crate::http::{Connection, HttpError, Response};
use crate::ntlm;

/// The expression NDES consumers match (ndes-contract.md).
static PASSWORD_LINE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)The enrollment challenge password is: <B> (\S*)").ok());
static THUMBPRINT_LINE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)The thumbprint \(hash value\) for the CA certificate is: <B> ([0-9A-F ]+?) </B>").ok()
});

/// Texts NDES shows instead of a password.
const CACHE_FULL: &str = "The password cache is full.";
const NO_PERMISSION: &str = "You do not have sufficient permission to enroll with SCEP.";
const REUSABLE: &str = "This password can be used multiple times";

/// Why no challenge came from the admin page.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// HTTP failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// NDES keeps at most PasswordMax unused passwords.
    #[error(
        "the admin page says \"The password cache is full.\": use or let expire the outstanding passwords, or raise PasswordMax (scepd: challenge.password_max)"
    )]
    CacheFull,
    /// The user authenticated but may not enroll.
    #[error(
        "the admin page says \"You do not have sufficient permission to enroll with SCEP.\": give the user enroll permission on the CA template (scepd: user add --permissions enroll)"
    )]
    NoPermission,
    /// The credentials were refused.
    #[error("the admin page refused the credentials (HTTP 401{offered}): check the user name and password")]
    Unauthorized {
        /// The schemes the server offered, for the message.
        offered: String,
    },
    /// The server wants authentication this client does not speak.
    #[error("the admin page asks for {0}, which this client does not support (it speaks Basic and NTLM)")]
    UnsupportedAuth(String),
    /// The NTLM exchange went wrong.
    #[error(transparent)]
    Ntlm(#[from] ntlm::NtlmError),
    /// Another status.
    #[error("the admin page answered HTTP {status}: {body}")]
    Status {
        /// Status code.
        status: u16,
        /// Start of the decoded body.
        body: String,
    },
    /// A page without the password line.
    #[error("the admin page has no \"The enrollment challenge password is:\" line; it starts: {0}")]
    NoPassword(String),
}

/// What the admin page said.
#[derive(Clone)]
pub struct AdminPage {
    /// The challenge password.
    pub password: String,
    /// Single-password mode: "This password can be used multiple times and will not expire."
    pub reusable: bool,
    /// The CA thumbprint the page shows (MD5, four groups), if any.
    pub thumbprint: Option<String>,
    /// How we authenticated: "Basic" or "NTLM".
    pub scheme: &'static str,
}

impl core::fmt::Debug for AdminPage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AdminPage")
            .field("reusable", &self.reusable)
            .field("thumbprint", &self.thumbprint)
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

/// GET the admin page and take the challenge from it. Basic first; NTLM when the
/// server answers 401 offering `NTLM` or `Negotiate`.
pub async fn fetch_challenge(
    url: &str,
    user: &str,
    password: &str,
    timeout: Duration,
) -> Result<AdminPage, AdminError> {
    let mut conn = Connection::open(url, timeout).await?;
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
    let r = conn.get(url, &[("Authorization", &basic)]).await?;
    if r.status != 401 {
        return page(&r, "Basic");
    }
    let scheme = r
        .www_authenticate
        .iter()
        .filter_map(|h| h.split_whitespace().next())
        .find(|s| s.eq_ignore_ascii_case("NTLM") || s.eq_ignore_ascii_case("Negotiate"))
        .map(|s| if s.eq_ignore_ascii_case("NTLM") { "NTLM" } else { "Negotiate" });
    let Some(scheme) = scheme else {
        let offered = r.www_authenticate.join(", ");
        if r.www_authenticate.iter().any(|h| h.trim_start().to_ascii_lowercase().starts_with("basic")) {
            return Err(AdminError::Unauthorized { offered: format!(", WWW-Authenticate: {offered}") });
        }
        return Err(AdminError::UnsupportedAuth(if offered.is_empty() {
            "no authentication scheme (401 without WWW-Authenticate)".into()
        } else {
            offered
        }));
    };
    // Prefer plain NTLM when both are offered: Negotiate would first try Kerberos.
    let scheme = if r.www_authenticate.iter().any(|h| h.trim().eq_ignore_ascii_case("NTLM")) { "NTLM" } else { scheme };
    // NTLM authenticates the connection its three legs travel on: start a fresh one
    // rather than rely on the server keeping the refused one open.
    drop(conn);
    let mut conn = Connection::open(url, timeout).await?;
    ntlm_exchange(url, &mut conn, scheme, &ntlm::Credentials::new(user, password)).await
}

/// NEGOTIATE, CHALLENGE, AUTHENTICATE on one connection.
async fn ntlm_exchange(
    url: &str,
    conn: &mut Connection,
    scheme: &str,
    creds: &ntlm::Credentials,
) -> Result<AdminPage, AdminError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let negotiate = ntlm::negotiate_message();
    let r = conn.get(url, &[("Authorization", &format!("{scheme} {}", b64.encode(&negotiate)))]).await?;
    if r.status != 401 {
        return page(&r, "NTLM");
    }
    let token = r
        .www_authenticate
        .iter()
        .find_map(|h| {
            let (s, t) = h.trim().split_once(' ')?;
            s.eq_ignore_ascii_case(scheme).then(|| t.trim().to_owned())
        })
        .ok_or_else(|| AdminError::Unauthorized {
            offered: format!(", no NTLM challenge in WWW-Authenticate: {}", r.www_authenticate.join(", ")),
        })?;
    let raw = b64.decode(token).map_err(|_| ntlm::NtlmError::Malformed("the challenge is not base64"))?;
    let challenge = ntlm::Challenge::parse(&raw)?;
    let auth = ntlm::authenticate_message(creds, &negotiate, &challenge);
    let r = conn.get(url, &[("Authorization", &format!("{scheme} {}", b64.encode(auth)))]).await?;
    if r.status == 401 {
        return Err(AdminError::Unauthorized { offered: format!(" after NTLM, as {}", display_user(creds)) });
    }
    page(&r, "NTLM")
}

fn display_user(c: &ntlm::Credentials) -> String {
    if c.domain.is_empty() { c.user.clone() } else { format!("{}\\{}", c.domain, c.user) }
}

/// Read an answered page.
fn page(r: &Response, scheme: &'static str) -> Result<AdminPage, AdminError> {
    let text = decode_body(&r.body);
    if r.status == 401 {
        return Err(AdminError::Unauthorized {
            offered: format!(", WWW-Authenticate: {}", r.www_authenticate.join(", ")),
        });
    }
    if text.contains(CACHE_FULL) {
        return Err(AdminError::CacheFull);
    }
    if text.contains(NO_PERMISSION) {
        return Err(AdminError::NoPermission);
    }
    if r.status != 200 {
        return Err(AdminError::Status { status: r.status, body: start_of(&text) });
    }
    let password = extract_password(&text).ok_or_else(|| AdminError::NoPassword(start_of(&text)))?;
    let thumbprint = THUMBPRINT_LINE
        .as_ref()
        .and_then(|re| re.captures(&text))
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_owned());
    Ok(AdminPage { password, reusable: text.contains(REUSABLE), thumbprint, scheme })
}

/// The challenge on a decoded admin page, if any.
pub fn extract_password(text: &str) -> Option<String> {
    let c = PASSWORD_LINE.as_ref()?.captures(text)?;
    let pw = c.get(1)?.as_str();
    (!pw.is_empty()).then(|| pw.to_owned())
}

/// Decode an admin page: UTF-16LE after FF FE, UTF-16BE after FE FF, UTF-16LE
/// without a BOM when every other byte is zero (real NDES declares UTF-8 in a Meta
/// tag while sending UTF-16), else UTF-8.
pub fn decode_body(body: &[u8]) -> String {
    let utf16 = |b: &[u8], le: bool| {
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| match c {
                [a, b] if le => u16::from_le_bytes([*a, *b]),
                [a, b] => u16::from_be_bytes([*a, *b]),
                _ => 0,
            })
            .collect();
        String::from_utf16_lossy(&units)
    };
    if let Some(rest) = body.strip_prefix(&[0xFF, 0xFE]) {
        utf16(rest, true)
    } else if let Some(rest) = body.strip_prefix(&[0xFE, 0xFF]) {
        utf16(rest, false)
    } else if body.len() >= 2 && body.iter().skip(1).step_by(2).all(|b| *b == 0) {
        utf16(body, true)
    } else {
        String::from_utf8_lossy(body).into_owned()
    }
}

/// The first 200 characters of a page, tags and blank space squeezed out.
fn start_of(text: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    let mut last_space = true;
    for ch in text.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if in_tag => {}
            c if c.is_whitespace() => {
                if !last_space {
                    out.push(' ');
                }
                last_space = true;
            }
            c => {
                out.push(c);
                last_space = false;
            }
        }
        if out.chars().count() >= 200 {
            break;
        }
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "<P> The thumbprint (hash value) for the CA certificate is: <B> A656FA66 AB12B433 A2DA5CF7 CC153D9A </B> <P> The enrollment challenge password is: <B> 1ED0DD50F7459D6E </B> <P> This password can be used only once";

    fn le(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn every_encoding_ndes_pages_come_in_decodes() {
        let mut bom_le = vec![0xFF, 0xFE];
        bom_le.extend(le(PAGE));
        let mut bom_be = vec![0xFE, 0xFF];
        bom_be.extend(PAGE.encode_utf16().flat_map(u16::to_be_bytes));
        for body in [bom_le, bom_be, le(PAGE), PAGE.as_bytes().to_vec()] {
            let text = decode_body(&body);
            assert_eq!(extract_password(&text).as_deref(), Some("1ED0DD50F7459D6E"));
        }
    }

    #[test]
    fn the_page_gives_password_thumbprint_and_mode() {
        let r = Response { status: 200, content_type: None, www_authenticate: vec![], body: le(PAGE) };
        let p = page(&r, "Basic").unwrap();
        assert_eq!(p.password, "1ED0DD50F7459D6E");
        assert_eq!(p.thumbprint.as_deref(), Some("A656FA66 AB12B433 A2DA5CF7 CC153D9A"));
        assert!(!p.reusable);
        assert!(!format!("{p:?}").contains("1ED0"), "Debug hides the password");
    }

    #[test]
    fn ndes_refusals_are_named() {
        let full = Response {
            status: 200,
            content_type: None,
            www_authenticate: vec![],
            body: le("<P> The password cache is full. </P>"),
        };
        assert!(matches!(page(&full, "Basic"), Err(AdminError::CacheFull)));
        let denied = Response {
            status: 403,
            content_type: None,
            www_authenticate: vec![],
            body: b"You do not have sufficient permission to enroll with SCEP.".to_vec(),
        };
        assert!(matches!(page(&denied, "Basic"), Err(AdminError::NoPermission)));
        let other =
            Response { status: 200, content_type: None, www_authenticate: vec![], body: b"<html>hi</html>".to_vec() };
        assert!(matches!(page(&other, "Basic"), Err(AdminError::NoPassword(s)) if s == "hi"));
    }
}
