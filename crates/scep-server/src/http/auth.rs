//! HTTP authentication of the admin page and the API: Basic credentials checked
//! against the users table, failures throttled per address and logged.

// Handlers answer with a finished Response in the error case; its size is irrelevant here.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::{AppState, ntlm};
use crate::accounts::{self, Permission};
use crate::store::UserRow;

/// How the request came (inserted by each listener).
#[derive(Clone, Copy, Debug)]
pub struct Transport {
    /// Over TLS.
    pub tls: bool,
    /// The connection's number, which NTLM state is kept under.
    pub connection: u64,
}

/// An authenticated user.
pub struct User(pub UserRow);

impl User {
    /// Whether the user has `p` (admin has every permission).
    pub fn can(&self, p: Permission) -> bool {
        p.allows(&self.0.permissions)
    }
}

/// A permission as a type, so that a handler states what it needs in its signature.
pub trait Need: Send + Sync + 'static {
    /// The permission.
    const PERMISSION: Permission;
    /// The 403 text for a user without it.
    const REFUSAL: &'static str;
}

/// May get challenges.
pub struct Enroll;
/// May manage.
pub struct Admin;

impl Need for Enroll {
    const PERMISSION: Permission = Permission::Enroll;
    const REFUSAL: &'static str = "You do not have sufficient permission to enroll with SCEP.";
}

impl Need for Admin {
    const PERMISSION: Permission = Permission::Admin;
    const REFUSAL: &'static str = "This needs the admin permission.";
}

/// Refuse credentials over plain HTTP from other hosts unless allowed.
pub fn require_secure(state: &AppState, transport: Option<Transport>, peer: SocketAddr) -> Result<(), Response> {
    let tls = transport.is_some_and(|t| t.tls);
    if tls || peer.ip().is_loopback() || state.settings.admin.allow_plain_http {
        return Ok(());
    }
    Err((
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain")],
        "This page is served over HTTPS only.\n\nIt hands out enrollment passwords and takes logins, which plain HTTP \
         would show to the network. Use the server's https:// address (its [tls] listener), or ask the administrator \
         to set admin.allow_plain_http = true.\n",
    )
        .into_response())
}

/// Authenticate a request: Basic credentials, an NTLM or Negotiate exchange on this
/// connection, or a connection NTLM already authenticated. The error is the response
/// to send (401 with the schemes offered or an NTLM CHALLENGE, 429, 503).
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    transport: Option<Transport>,
) -> Result<User, Response> {
    let conn = transport.map(|t| t.connection);
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if let (Some(conn), Some((scheme, token))) = (conn, value.and_then(ntlm::token)) {
        return match ntlm::step(state, conn, scheme, &token, peer).await {
            Ok(u) => Ok(u),
            Err(ntlm::Step::Challenge(answer)) => Err(ntlm::challenge_response(&answer)),
            Err(ntlm::Step::Refused(e)) => Err(refusal(state, e)),
            Err(ntlm::Step::Offer) => Err(unauthorized(state)),
        };
    }
    let basic = state.settings.admin.allow_basic;
    if let Some((name, password)) = basic_credentials(headers).filter(|_| basic) {
        return check_password(state, &name, password, peer).await.map_err(|e| refusal(state, e));
    }
    // A connection that NTLM authenticated stays authenticated while it is open.
    if let Some(name) = conn.and_then(|c| state.ntlm.user(c)) {
        match state.authority.user(&name).await {
            Ok(Some(u)) => return Ok(User(u)),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "user lookup failed");
                return Err(refusal(state, LoginError::Unavailable));
            }
        }
    }
    if state.login_throttle.blocked(peer.ip()) {
        return Err(throttled());
    }
    Err(unauthorized(state))
}

/// The answer to a failed login.
fn refusal(state: &AppState, e: LoginError) -> Response {
    match e {
        LoginError::Wrong => unauthorized(state),
        LoginError::Throttled => throttled(),
        LoginError::Unavailable => {
            (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, "text/plain")], "Service unavailable.\n")
                .into_response()
        }
    }
}

/// 401 offering Negotiate, NTLM and (when allowed) Basic, in the order IIS offers them.
fn unauthorized(state: &AppState) -> Response {
    let admin = &state.settings.admin;
    let mut r = (StatusCode::UNAUTHORIZED, [(header::CONTENT_TYPE, "text/plain")], "Authentication required.\n")
        .into_response();
    let h = r.headers_mut();
    h.append(header::WWW_AUTHENTICATE, HeaderValue::from_static("Negotiate"));
    h.append(header::WWW_AUTHENTICATE, HeaderValue::from_static("NTLM"));
    if admin.allow_basic {
        let v = HeaderValue::from_str(&format!("Basic realm=\"{}\", charset=\"UTF-8\"", admin.realm.replace('"', "")))
            .unwrap_or_else(|_| HeaderValue::from_static("Basic realm=\"scepd\""));
        h.append(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// Why a login failed.
pub enum LoginError {
    /// Wrong user or password (counted against the address).
    Wrong,
    /// Too many failures from this address.
    Throttled,
    /// The database failed.
    Unavailable,
}

fn throttled() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::CONTENT_TYPE, "text/plain")],
        "Too many failed logins; try again later.\n",
    )
        .into_response()
}

/// Check a user's password (argon2, on the password pool). While it runs, the check
/// holds one of the address's remaining failures, so parallel guesses cannot pass
/// the limit; failures are logged without the password.
pub async fn check_password(
    state: &AppState,
    name: &str,
    password: zeroize::Zeroizing<String>,
    peer: SocketAddr,
) -> Result<User, LoginError> {
    let Some(attempt) = state.login_throttle.attempt(peer.ip()).await else {
        tracing::warn!(peer = %peer.ip(), "login refused: too many failed logins from this address");
        return Err(LoginError::Throttled);
    };
    let user = state.authority.user(name).await.map_err(|e| {
        tracing::warn!(error = %e, "user lookup failed");
        LoginError::Unavailable
    })?;
    let hash = user.as_ref().map_or_else(|| accounts::dummy_hash().to_owned(), |u| u.password_hash.clone());
    let ok = state.passwords.verify(password, hash).await.map_err(|_| {
        tracing::warn!(peer = %peer.ip(), "login refused: too many password checks waiting");
        LoginError::Unavailable
    })?;
    match user {
        Some(u) if ok => {
            attempt.succeeded();
            Ok(User(u))
        }
        _ => {
            attempt.failed();
            tracing::warn!(user = name, peer = %peer.ip(), "failed login");
            Err(LoginError::Wrong)
        }
    }
}

/// `Authorization: Basic` user and password; `None` for any other scheme or an
/// undecodable value. Public for the fuzz target.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, zeroize::Zeroizing<String>)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?);
    let text = std::str::from_utf8(&raw).ok()?;
    let (user, pw) = text.split_once(':')?;
    Some((user.to_owned(), zeroize::Zeroizing::new(pw.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_parse_and_reject_junk() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic YWRtaW46cDpzcw=="));
        let (u, p) = basic_credentials(&h).unwrap();
        assert_eq!((u.as_str(), p.as_str()), ("admin", "p:ss"));
        for junk in ["Bearer abc", "Basic !!!", "Basic YWRtaW4="] {
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(junk));
            assert!(basic_credentials(&h).is_none(), "{junk}");
        }
    }
}
