//! The NDES admin page (`/certsrv/mscep_admin/`) as products scrape it: a GET without
//! credentials, then NTLM when the server offers NTLM or Negotiate, Basic only when it
//! offers nothing else (and, over plain HTTP, only when allowed); the body decoded
//! whatever its encoding, and the one-time challenge taken out with the regex consumers
//! use.

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine as _;
use regex::Regex;
use zeroize::Zeroizing;

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
    #[error("the admin page refused the credentials (HTTP 401{offered}): check the user name and password{hint}")]
    Unauthorized {
        /// The schemes the server offered, for the message.
        offered: String,
        /// What else to try, if anything (`; ...`).
        hint: String,
    },
    /// The server wants authentication this client does not speak.
    #[error("the admin page asks for {0}, which this client does not support (it speaks Basic and NTLM)")]
    UnsupportedAuth(String),
    /// The scheme asked for (`--auth`) is not among those the server offers.
    #[error("the admin page does not offer {wanted} (WWW-Authenticate: {offered})")]
    NotOffered {
        /// The scheme asked for.
        wanted: &'static str,
        /// What the server offered.
        offered: String,
    },
    /// Basic over plain HTTP would show the password to the network.
    #[error(
        "refusing to send the password with Basic over plain HTTP to {0}: anyone on the network could read it. Use the admin page's https:// address, or pass --allow-basic-over-http to send it anyway"
    )]
    BasicInClear(String),
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
    /// How we authenticated: "Basic", "NTLM", or "none" when the page asked for nothing.
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

/// Which scheme to log in with (`--auth`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthScheme {
    /// NTLM when the server offers NTLM or Negotiate, else Basic.
    #[default]
    Auto,
    /// NTLM only (under Negotiate when that is all the server offers).
    Ntlm,
    /// Basic only: for accounts that have no NTLM (scepd users added without `--ntlm`).
    Basic,
}

impl core::str::FromStr for AuthScheme {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(AuthScheme::Auto),
            "ntlm" => Ok(AuthScheme::Ntlm),
            "basic" => Ok(AuthScheme::Basic),
            _ => Err(format!("--auth {s:?}: use auto, ntlm or basic")),
        }
    }
}

/// How to log in to an admin page.
#[derive(Clone)]
pub struct Login {
    /// User name (`DOMAIN\user` or `user@domain` for NTLM).
    pub user: String,
    /// Password.
    pub password: Zeroizing<String>,
    /// The scheme to use.
    pub scheme: AuthScheme,
    /// Send Basic credentials over plain `http://`, where they travel in clear.
    pub allow_basic_over_http: bool,
}

impl core::fmt::Debug for Login {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user)
            .field("scheme", &self.scheme)
            .field("allow_basic_over_http", &self.allow_basic_over_http)
            .finish_non_exhaustive()
    }
}

impl Login {
    /// `user` with `password`, scheme chosen by the server's offer, Basic only over HTTPS.
    pub fn new(user: &str, password: &str) -> Self {
        Login {
            user: user.to_owned(),
            password: Zeroizing::new(password.to_owned()),
            scheme: AuthScheme::Auto,
            allow_basic_over_http: false,
        }
    }
}

/// [`fetch`] with `user` and `password` and the defaults of [`Login::new`].
pub async fn fetch_challenge(
    url: &str,
    user: &str,
    password: &str,
    timeout: Duration,
) -> Result<AdminPage, AdminError> {
    fetch(url, &Login::new(user, password), timeout).await
}

/// GET the admin page and take the challenge from it. The first request carries no
/// credentials (RFC 9110 section 11.6.1: they answer a challenge), so that the server
/// says which schemes it takes before anything is sent; then NTLM, bound to the service
/// and (over HTTPS) the TLS channel, when it offers NTLM or Negotiate, else Basic.
pub async fn fetch(url: &str, login: &Login, timeout: Duration) -> Result<AdminPage, AdminError> {
    let mut conn = Connection::open(url, timeout).await?;
    let r = conn.get(url, &[]).await?;
    if r.status != 401 {
        return page(&r, "none");
    }
    let offer = Offer::of(&r.www_authenticate);
    let ntlm_scheme = offer.ntlm_scheme();
    let use_ntlm = match (login.scheme, ntlm_scheme, offer.basic) {
        (AuthScheme::Auto | AuthScheme::Ntlm, Some(_), _) => true,
        (AuthScheme::Auto | AuthScheme::Basic, _, true) => false,
        (AuthScheme::Ntlm, None, _) => {
            return Err(AdminError::NotOffered { wanted: "NTLM", offered: offer.text() });
        }
        (AuthScheme::Basic, _, false) => {
            return Err(AdminError::NotOffered { wanted: "Basic", offered: offer.text() });
        }
        (AuthScheme::Auto, None, false) => {
            return Err(AdminError::UnsupportedAuth(if offer.headers.is_empty() {
                "no authentication scheme (401 without WWW-Authenticate)".into()
            } else {
                offer.text()
            }));
        }
    };
    if !use_ntlm && url.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("http://")) && !login.allow_basic_over_http {
        return Err(AdminError::BasicInClear(url.to_owned()));
    }
    // The exchange runs on a fresh connection rather than rely on the server keeping
    // the refused one open; NTLM authenticates the connection its legs travel on.
    drop(conn);
    let mut conn = Connection::open(url, timeout).await?;
    match ntlm_scheme.filter(|_| use_ntlm) {
        Some(scheme) => {
            let host = url.parse::<hyper::Uri>().ok().and_then(|u| u.host().map(str::to_owned)).unwrap_or_default();
            let binding = crate::binding::for_connection(&host, conn.peer_certificate());
            let creds = ntlm::Credentials::new(&login.user, &login.password);
            ntlm_exchange(url, &mut conn, scheme, &creds, &binding, offer.basic).await
        }
        None => {
            let pair = Zeroizing::new(format!("{}:{}", login.user, login.password.as_str()));
            let basic = Zeroizing::new(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(&*pair)));
            let r = conn.get(url, &[("Authorization", &basic)]).await?;
            page(&r, "Basic")
        }
    }
}

/// The schemes a 401 offered.
struct Offer {
    headers: Vec<String>,
    ntlm: bool,
    negotiate: bool,
    basic: bool,
}

impl Offer {
    fn of(headers: &[String]) -> Self {
        let scheme_is =
            |h: &String, name: &str| h.split_whitespace().next().is_some_and(|s| s.eq_ignore_ascii_case(name));
        Offer {
            headers: headers.to_vec(),
            ntlm: headers.iter().any(|h| scheme_is(h, "NTLM")),
            negotiate: headers.iter().any(|h| scheme_is(h, "Negotiate")),
            basic: headers.iter().any(|h| scheme_is(h, "Basic")),
        }
    }

    /// Plain NTLM when offered: Negotiate would first try Kerberos.
    fn ntlm_scheme(&self) -> Option<&'static str> {
        if self.ntlm {
            Some("NTLM")
        } else if self.negotiate {
            Some("Negotiate")
        } else {
            None
        }
    }

    fn text(&self) -> String {
        self.headers.join(", ")
    }
}

/// NEGOTIATE, CHALLENGE, AUTHENTICATE on one connection.
async fn ntlm_exchange(
    url: &str,
    conn: &mut Connection,
    scheme: &str,
    creds: &ntlm::Credentials,
    binding: &ntlm::Binding,
    basic_offered: bool,
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
            hint: String::new(),
        })?;
    let raw = b64.decode(token).map_err(|_| ntlm::NtlmError::Malformed("the challenge is not base64"))?;
    let challenge = ntlm::Challenge::parse(&raw)?;
    let auth = ntlm::authenticate_message_bound(creds, &negotiate, &challenge, binding);
    let r = conn.get(url, &[("Authorization", &format!("{scheme} {}", b64.encode(auth)))]).await?;
    if r.status == 401 {
        let hint = if basic_offered {
            "; the server also offers Basic: for an account without NTLM (on scepd, a user added without --ntlm), pass --auth basic".to_owned()
        } else {
            String::new()
        };
        return Err(AdminError::Unauthorized { offered: format!(" after NTLM, as {}", display_user(creds)), hint });
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
            hint: String::new(),
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
