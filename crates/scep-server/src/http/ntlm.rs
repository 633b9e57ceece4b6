//! NTLM and Negotiate (with an NTLM token) on the admin page and the API, as IIS does
//! them for NDES: a NEGOTIATE on one request, the CHALLENGE in the 401, the
//! AUTHENTICATE on the next request of the same connection, which is then
//! authenticated for as long as it stays open (IIS's default for keep-alive).
//!
//! State lives per connection, in [`Sessions`]: the listener numbers each connection
//! and forgets its entry when it closes; a challenge is answered once, within
//! [`CHALLENGE_TTL`], so a replayed AUTHENTICATE (on the same connection or another)
//! finds nothing to answer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use scep_ntlm::{Challenge, server, spnego};

use super::AppState;
use super::auth::{LoginError, User};
use crate::store::UserRow;

/// How long a CHALLENGE waits for its AUTHENTICATE.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(60);

/// The scheme a client used; the answer uses the same one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `NTLM`.
    Ntlm,
    /// `Negotiate`, carrying a raw NTLM token or NTLM inside SPNEGO.
    Negotiate,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Ntlm => "NTLM",
            Scheme::Negotiate => "Negotiate",
        }
    }
}

struct Pending {
    negotiate: Vec<u8>,
    challenge: Challenge,
    scheme: Scheme,
    at: Instant,
}

#[derive(Default)]
struct Connection {
    pending: Option<Pending>,
    user: Option<String>,
}

/// NTLM state of the open connections, bounded by the connection limit.
pub struct Sessions {
    next: AtomicU64,
    by_connection: Mutex<HashMap<u64, Connection>>,
    max: usize,
}

impl Sessions {
    /// State for at most `max` connections at a time.
    pub fn new(max: usize) -> Self {
        Sessions { next: AtomicU64::new(1), by_connection: Mutex::new(HashMap::new()), max }
    }

    /// A number for a new connection.
    pub fn connection(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Forget a closed connection.
    pub fn forget(&self, id: u64) {
        self.map().remove(&id);
    }

    /// The user a connection authenticated as, if it did.
    pub fn user(&self, id: u64) -> Option<String> {
        self.map().get(&id).and_then(|c| c.user.clone())
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Connection>> {
        self.by_connection.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keep a challenge for `id`; `false` when too many connections hold state.
    fn start(&self, id: u64, p: Pending) -> bool {
        let mut m = self.map();
        if !m.contains_key(&id) && m.len() >= self.max {
            return false;
        }
        let c = m.entry(id).or_default();
        c.pending = Some(p);
        c.user = None;
        true
    }

    /// The challenge `id` is answering, once, if it is still fresh.
    fn take(&self, id: u64) -> Option<Pending> {
        let p = self.map().get_mut(&id)?.pending.take()?;
        (p.at.elapsed() <= CHALLENGE_TTL).then_some(p)
    }

    fn authenticated(&self, id: u64, user: &str) {
        self.map().entry(id).or_default().user = Some(user.to_owned());
    }
}

/// An `Authorization: NTLM ...` or `Negotiate ...` header's scheme and token.
pub fn token(value: &str) -> Option<(Scheme, Vec<u8>)> {
    let (scheme, b64) = value.trim().split_once(' ')?;
    let scheme = if scheme.eq_ignore_ascii_case("ntlm") {
        Scheme::Ntlm
    } else if scheme.eq_ignore_ascii_case("negotiate") {
        Scheme::Negotiate
    } else {
        return None;
    };
    Some((scheme, base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?))
}

/// One step of the exchange on connection `conn`: a CHALLENGE for a NEGOTIATE (the
/// error is the 401 that carries it), or the user for an AUTHENTICATE.
pub async fn step(state: &AppState, conn: u64, scheme: Scheme, token: &[u8], peer: SocketAddr) -> Result<User, Step> {
    // NTLM inside SPNEGO (GSS-API clients without a Kerberos ticket: curl
    // --negotiate with gss-ntlmssp) is unwrapped, and the answers are wrapped alike.
    let spnego = scheme == Scheme::Negotiate && spnego::is_spnego(token);
    let token = if spnego { spnego::parse(token).ok().and_then(|t| t.ntlm()).unwrap_or_default() } else { token };
    // A token that is no NTLM message (Kerberos, alone or inside SPNEGO, from a
    // domain-joined client) is not a failed login: the client is offered the schemes
    // again and falls back to NTLM.
    if !server::is_message(token, 1) && !server::is_message(token, 3) {
        tracing::debug!(peer = %peer.ip(), "an authorization token that is not NTLM: offering the schemes again");
        return Err(Step::Offer);
    }
    if state.login_throttle.blocked(peer.ip()) {
        tracing::warn!(peer = %peer.ip(), "login refused: too many failed logins from this address");
        return Err(Step::Refused(LoginError::Throttled));
    }
    if server::is_message(token, 1) {
        let now = state.authority.now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut nonce = [0u8; 8];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| Step::Refused(LoginError::Unavailable))?;
        let cfg = &state.settings.admin;
        let identity = server::Identity::new(&cfg.ntlm_domain, &cfg.ntlm_domain, "");
        // FILETIME: 100 ns units since 1601.
        let filetime = (now + 11_644_473_600) * 10_000_000;
        let challenge = match server::challenge_message(token, nonce, &identity, filetime) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(peer = %peer.ip(), error = %e, "NTLM NEGOTIATE refused");
                return Err(Step::Refused(LoginError::Wrong));
            }
        };
        let wrapped;
        let carried = if spnego {
            wrapped = spnego::response(spnego::NegState::AcceptIncomplete, true, Some(&challenge.raw));
            &wrapped
        } else {
            &challenge.raw
        };
        let answer = format!("{} {}", scheme.name(), base64::engine::general_purpose::STANDARD.encode(carried));
        let pending = Pending { negotiate: token.to_vec(), challenge, scheme, at: Instant::now() };
        if !state.ntlm.start(conn, pending) {
            tracing::warn!(peer = %peer.ip(), "NTLM refused: too many connections in an NTLM exchange");
            return Err(Step::Refused(LoginError::Unavailable));
        }
        return Err(Step::Challenge(answer));
    }
    // The check holds one of the address's remaining failures: parallel AUTHENTICATEs
    // cannot pass the limit.
    let Some(attempt) = state.login_throttle.attempt(peer.ip()).await else {
        tracing::warn!(peer = %peer.ip(), "login refused: too many failed logins from this address");
        return Err(Step::Refused(LoginError::Throttled));
    };
    let verified = authenticate(state, conn, scheme, token).await;
    match verified {
        Ok(user) => {
            attempt.succeeded();
            tracing::info!(user = user.name, scheme = scheme.name(), peer = %peer.ip(), "NTLM login");
            state.ntlm.authenticated(conn, &user.name);
            Ok(User(user))
        }
        Err(Some(why)) => {
            attempt.failed();
            tracing::warn!(peer = %peer.ip(), reason = why, "failed NTLM login");
            Err(Step::Refused(LoginError::Wrong))
        }
        Err(None) => Err(Step::Refused(LoginError::Unavailable)),
    }
}

/// Check an AUTHENTICATE against this connection's CHALLENGE: the user, or why not
/// (`None`: the store failed, not the client).
async fn authenticate(state: &AppState, conn: u64, scheme: Scheme, token: &[u8]) -> Result<UserRow, Option<String>> {
    let Some(pending) = state.ntlm.take(conn) else {
        return Err(Some("an AUTHENTICATE without a CHALLENGE on this connection (or after it expired)".into()));
    };
    if pending.scheme != scheme {
        return Err(Some("the AUTHENTICATE changed the authentication scheme".into()));
    }
    let auth = server::Authenticate::parse(token).map_err(|e| Some(e.to_string()))?;
    match state.authority.ntlm_user(&auth, &pending.negotiate, &pending.challenge).await {
        Ok(user) => Ok(user),
        Err(crate::authority::NtlmRefusal::Wrong(why)) => Err(Some(why)),
        Err(crate::authority::NtlmRefusal::Unavailable(e)) => {
            tracing::warn!(error = e, "NTLM login: store unavailable");
            Err(None)
        }
    }
}

/// What a step that does not authenticate answers.
pub enum Step {
    /// `WWW-Authenticate: NTLM <CHALLENGE>` (or Negotiate) in a 401.
    Challenge(String),
    /// The exchange failed.
    Refused(LoginError),
    /// The token is not one this server speaks: offer the schemes again.
    Offer,
}

/// The 401 that carries a CHALLENGE.
pub fn challenge_response(www_authenticate: &str) -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, [(header::CONTENT_TYPE, "text/plain")], "Authentication required.\n")
        .into_response();
    if let Ok(v) = HeaderValue::from_str(www_authenticate) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}
