//! The web console for the people who run scepd: server-rendered pages, no
//! JavaScript, readable on a phone. A form login sets a signed session cookie
//! (HttpOnly, SameSite=Strict); every form carries a per-session CSRF token.

// Handlers answer with a finished Response in the error case; its size is irrelevant here.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;

use axum::{
    body::Bytes,
    extract::{ConnectInfo, Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use base64::Engine as _;

use super::AppState;
use super::auth::{self, Admin, Enroll, LoginError, Need, Transport};
use crate::accounts::Permission;
use crate::authority::{AdminChallenge, Want, reason_from_name, unix};
use crate::store::{AuditFilter, Binding, UserRow};
use crate::vocab::{AuditOutcome, CertStatus, PendingStatus, Serial, Via};

const COOKIE: &str = "scepd_console";
/// Session lifetime.
const SESSION_SECS: i64 = 8 * 3600;

/// A logged-in console user.
struct Session {
    user: UserRow,
    csrf: String,
}

impl Session {
    fn can(&self, p: Permission) -> bool {
        p.allows(&self.user.permissions)
    }
}

fn key(state: &AppState) -> [u8; 32] {
    state.authority.pki().ca.secret("console session")
}

/// `user|expires|epoch|HMAC` in URL-safe base64. The epoch is the user's session
/// epoch when the session started: logout and a password change move it on, which
/// ends the session on every instance.
fn sign_session(state: &AppState, user: &str, expires: i64, epoch: i64) -> String {
    let body = format!("{user}|{expires}|{epoch}");
    let mac = scep::crypto::hmac_sha256(&key(state), body.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{body}|{}", hex::encode(mac)))
}

fn csrf_token(state: &AppState, cookie: &str) -> String {
    hex::encode(scep::crypto::hmac_sha256(&key(state), format!("csrf|{cookie}").as_bytes()))
}

async fn session(state: &AppState, headers: &HeaderMap) -> Option<Session> {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(&format!("{COOKIE}=")).map(str::to_owned))?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&cookie).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut parts = text.rsplitn(2, '|');
    let mac = hex::decode(parts.next()?).ok()?;
    let body = parts.next()?;
    let want = scep::crypto::hmac_sha256(&key(state), body.as_bytes());
    if !scep::crypto::constant_time_eq(&mac, &want) {
        return None;
    }
    let (rest, epoch) = body.rsplit_once('|')?;
    let (user, expires) = rest.rsplit_once('|')?;
    if expires.parse::<i64>().ok()? < unix(state.authority.now()) {
        return None;
    }
    // The user must still exist (removal ends its sessions), and the session must be
    // of the user's current epoch (logout and password changes end sessions).
    let user = state.authority.user(user).await.ok()??;
    if epoch.parse::<i64>().ok()? != user.session_epoch {
        return None;
    }
    Some(Session { csrf: csrf_token(state, &cookie), user })
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert("x-frame-options", HeaderValue::from_static("DENY"));
    // Ignored by browsers over plain HTTP (RFC 6797 section 8.1); over HTTPS it keeps
    // them on HTTPS.
    r.headers_mut().insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    r.headers_mut().insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    r
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static("/console/")));
    r
}

/// HTML escaping.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn page(title: &str, session: Option<&Session>, body: &str) -> String {
    let nav = match session {
        Some(s) => format!(
            "<nav><a href=\"/console/\">Overview</a> <a href=\"/console/certificates\">Certificates</a> \
             <a href=\"/console/requests\">Pending</a> <a href=\"/console/challenges\">Challenges</a> \
             <a href=\"/console/audit\">Audit</a> <form method=\"post\" action=\"/console/logout\" class=\"inline\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button>Log out {}</button></form></nav>",
            s.csrf,
            esc(&s.user.name)
        ),
        None => String::new(),
    };
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{t} - scepd</title><style>\
body{{font-family:system-ui,sans-serif;margin:0;color:#1d2327}}header{{background:#0b6e6e;color:#fff;padding:.6em 1em}}\
main{{padding:1em;max-width:72em}}nav{{display:flex;flex-wrap:wrap;gap:.8em;padding:.5em 1em;background:#eef4f4}}\
nav a{{color:#0b4f4f}}table{{border-collapse:collapse;width:100%;font-size:.92em}}td,th{{border-bottom:1px solid #ddd;padding:.35em;text-align:left;vertical-align:top}}\
.wrap{{overflow-x:auto}}.warn{{color:#a40000;font-weight:bold}}.ok{{color:#0a6b0a}}code,.mono{{font-family:ui-monospace,monospace;word-break:break-all}}\
form.inline{{display:inline}}input,select,button{{font-size:1em;margin:.2em 0}}.box{{border:1px solid #ccc;padding:.8em;margin:.8em 0;border-radius:4px}}\
.secret{{font-size:1.4em;font-family:ui-monospace,monospace;background:#ffe;padding:.3em}}</style></head>\
<body><header><strong>scepd</strong> · {t}</header>{nav}<main>{body}</main></body></html>",
        t = esc(title)
    )
}

fn fmt_time(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}

/// Parse an `application/x-www-form-urlencoded` body.
fn form(body: &[u8]) -> Vec<(String, String)> {
    let dec = |s: &str| -> String {
        let s = s.replace('+', " ");
        let q = scep::operation::Query::parse(&format!("message={s}"));
        q.message.unwrap_or_default()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (dec(k), dec(v)))
        .collect()
}

fn field<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn query(uri: &Uri) -> Vec<(String, String)> {
    form(uri.query().unwrap_or("").as_bytes())
}

/// Every console route: secure transport, then a session.
async fn guard(
    state: &AppState,
    transport: Option<Transport>,
    peer: SocketAddr,
    headers: &HeaderMap,
    need: Permission,
) -> Result<Session, Response> {
    auth::require_secure(state, transport, peer)?;
    let Some(s) = session(state, headers).await else { return Err(redirect("/console/login")) };
    if !s.can(need) {
        return Err(html(
            StatusCode::FORBIDDEN,
            page("Forbidden", Some(&s), "<p>You do not have the permission for this page.</p>"),
        ));
    }
    Ok(s)
}

/// POST handlers: the session's CSRF token must come back with the form.
fn check_csrf(s: &Session, f: &[(String, String)]) -> Result<(), Response> {
    match field(f, "csrf") {
        Some(t) if scep::crypto::constant_time_eq(t.as_bytes(), s.csrf.as_bytes()) => Ok(()),
        _ => Err(html(
            StatusCode::FORBIDDEN,
            page("Forbidden", Some(s), "<p>The form has expired; reload the page and try again.</p>"),
        )),
    }
}

/// A console user with permission `P`, from the session cookie; the rejection is the
/// answer (the HTTPS-only page, a redirect to the login, 403).
pub(super) struct Console<P> {
    s: Session,
    _need: std::marker::PhantomData<P>,
}

impl<P: Need> axum::extract::FromRequestParts<AppState> for Console<P> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, Response> {
        let Some(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0) else {
            return Err(html(StatusCode::INTERNAL_SERVER_ERROR, page("Error", None, "<p>No peer address.</p>")));
        };
        let transport = parts.extensions.get::<Transport>().copied();
        let s = guard(state, transport, peer, &parts.headers, P::PERMISSION).await?;
        Ok(Console { s, _need: std::marker::PhantomData })
    }
}

pub(super) async fn login_page(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    t: Option<axum::Extension<Transport>>,
) -> Response {
    if let Err(r) = auth::require_secure(&state, t.map(|t| t.0), peer) {
        return r;
    }
    html(StatusCode::OK, page("Log in", None, LOGIN_FORM))
}

const LOGIN_FORM: &str = "<form method=\"post\" action=\"/console/login\" class=\"box\"><p><label>User<br><input name=\"user\" id=\"user\" autocomplete=\"username\" required></label></p>\
<p><label>Password<br><input name=\"password\" id=\"password\" type=\"password\" autocomplete=\"current-password\" required></label></p><p><button id=\"login\">Log in</button></p></form>\
<p><a href=\"/console/login/windows\" id=\"login-windows\">Log in with Windows authentication (NTLM)</a></p>";

pub(super) async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    t: Option<axum::Extension<Transport>>,
    body: Bytes,
) -> Response {
    let tls = t.as_ref().is_some_and(|t| t.0.tls);
    if let Err(r) = auth::require_secure(&state, t.map(|t| t.0), peer) {
        return r;
    }
    let f = form(&body);
    let (Some(user), Some(pw)) = (field(&f, "user"), field(&f, "password")) else {
        return html(StatusCode::BAD_REQUEST, page("Log in", None, LOGIN_FORM));
    };
    match auth::check_password(&state, user, zeroize::Zeroizing::new(pw.to_owned()), peer).await {
        Ok(u) => start_session(&state, &u, tls, peer),
        Err(LoginError::Throttled) => html(
            StatusCode::TOO_MANY_REQUESTS,
            page("Log in", None, "<p class=\"warn\">Too many failed logins; try again later.</p>"),
        ),
        Err(LoginError::Unavailable) => {
            html(StatusCode::SERVICE_UNAVAILABLE, page("Log in", None, "<p>Service unavailable.</p>"))
        }
        Err(LoginError::Wrong) => html(
            StatusCode::UNAUTHORIZED,
            page("Log in", None, &format!("<p class=\"warn\">Wrong user or password.</p>{LOGIN_FORM}")),
        ),
    }
}

/// `GET /console/login/windows`: log in with NTLM (or Negotiate carrying NTLM), as a
/// browser on a Windows network does without asking; the session then is a cookie as
/// for a password login.
pub(super) async fn login_windows(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    t: Option<axum::Extension<Transport>>,
    headers: HeaderMap,
) -> Response {
    let transport = t.map(|t| t.0);
    if let Err(r) = auth::require_secure(&state, transport, peer) {
        return r;
    }
    match auth::authenticate(&state, &headers, peer, transport).await {
        Ok(u) => start_session(&state, &u, transport.is_some_and(|t| t.tls), peer),
        Err(r) => r,
    }
}

/// The redirect into the console with a new session cookie for `u`.
fn start_session(state: &AppState, u: &auth::User, tls: bool, peer: SocketAddr) -> Response {
    let cookie = sign_session(state, &u.0.name, unix(state.authority.now()) + SESSION_SECS, u.0.session_epoch);
    let mut r = redirect("/console/");
    // Secure, so that a browser never sends it over plain HTTP, except to a console
    // reached over loopback (the one plain-HTTP case that does not cross a network).
    let secure = if tls || !peer.ip().is_loopback() { "; Secure" } else { "" };
    let v = format!("{COOKIE}={cookie}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}{secure}");
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    tracing::info!(user = u.0.name, "console login");
    r
}

pub(super) async fn logout(State(state): State<AppState>, Console { s, .. }: Console<Enroll>, body: Bytes) -> Response {
    if let Err(r) = check_csrf(&s, &form(&body)) {
        return r;
    }
    // Ends this session and the user's others: a copied cookie is worthless after it.
    if let Err(e) = state.authority.end_sessions(&s.user.name).await {
        tracing::warn!(error = %e, user = s.user.name, "cannot end the console sessions");
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            page("Log out", None, "<p>Service unavailable; you are still logged in.</p>"),
        );
    }
    tracing::info!(user = s.user.name, "console logout");
    let mut r = redirect("/console/login");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("scepd_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

pub(super) async fn overview(State(state): State<AppState>, Console { s, .. }: Console<Enroll>) -> Response {
    let pki = state.authority.pki();
    let now = unix(state.authority.now());
    let mut body = String::from(
        "<h2>CA and RA certificates</h2><div class=\"wrap\"><table><tr><th>Role</th><th>Subject</th><th>Expires</th></tr>",
    );
    let mut row = |role: &str, k: &crate::ca::KeyedCert| {
        let left = (unix(k.not_after()) - now) / 86_400;
        let class = if left < 30 { "warn" } else { "ok" };
        body.push_str(&format!(
            "<tr><td>{role}</td><td>{}</td><td class=\"{class}\">{} ({left} days)</td></tr>",
            esc(&k.cert.tbs_certificate().subject().to_string()),
            fmt_time(unix(k.not_after()))
        ));
    };
    row("CA", &pki.ca.ca);
    row("RA signing", &pki.ca.ra_sign);
    row("RA encryption", &pki.ca.ra_encrypt);
    if let Some(n) = &pki.ca.next {
        row("Next CA", &n.ca);
    }
    body.push_str("</table></div>");
    for (title, outcome) in [("Recent enrollments", AuditOutcome::Issued), ("Recent failures", AuditOutcome::Failure)] {
        let rows =
            state.authority.audit(&AuditFilter { outcome: Some(outcome), limit: 10, ..AuditFilter::default() }).await;
        body.push_str(&format!("<h2>{title}</h2>"));
        body.push_str(&audit_table(&rows));
    }
    html(StatusCode::OK, page("Overview", Some(&s), &body))
}

/// Audit rows as a table; a store that did not answer is said so, not shown as empty.
fn audit_table(rows: &crate::store::StoreResult<Vec<crate::store::AuditEntry>>) -> String {
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "console: the audit trail cannot be read");
            return "<p class=\"warn\">The audit trail cannot be read now: the database did not answer.</p>".into();
        }
    };
    let mut out = String::from(
        "<div class=\"wrap\"><table class=\"audit\"><tr><th>Time</th><th>From</th><th>Type</th><th>Transaction</th><th>Outcome</th><th>Subject</th><th>Serial</th><th>Reason</th></tr>",
    );
    for r in rows {
        let serial = r
            .serial
            .as_deref()
            .map(|s| format!("<a class=\"mono\" href=\"/console/certificates/{0}\">{0}</a>", esc(s)))
            .unwrap_or_default();
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}{}</td><td>{}</td><td>{serial}</td><td>{}</td></tr>",
            fmt_time(r.at),
            esc(&r.requester),
            esc(r.message_type.as_deref().unwrap_or("-")),
            esc(r.transaction_id.as_deref().unwrap_or("-")),
            r.outcome,
            r.fail_info.as_deref().map(|f| format!(" ({})", esc(f))).unwrap_or_default(),
            esc(r.subject.as_deref().unwrap_or("")),
            esc(r.reason.as_deref().unwrap_or("")),
        ));
    }
    if rows.is_empty() {
        out.push_str("<tr><td colspan=\"8\">Nothing yet.</td></tr>");
    }
    out.push_str("</table></div>");
    out
}

pub(super) async fn certificates(
    State(state): State<AppState>,
    Console { s, .. }: Console<Admin>,
    uri: Uri,
) -> Response {
    let q = query(&uri);
    let term = field(&q, "q").unwrap_or("").trim().to_owned();
    let rows = state.authority.certificates(&term, 500).await.unwrap_or_default();
    let mut body = format!(
        "<form method=\"get\" action=\"/console/certificates\"><input name=\"q\" id=\"q\" value=\"{}\" placeholder=\"subject or serial\"> <button>Search</button></form>\
         <div class=\"wrap\"><table><tr><th>Serial</th><th>Subject</th><th>Status</th><th>Expires</th><th>Template</th></tr>",
        esc(&term)
    );
    for r in &rows {
        body.push_str(&format!(
            "<tr><td><a class=\"mono\" href=\"/console/certificates/{0}\">{0}</a></td><td>{1}</td><td>{2}</td><td>{3}</td><td>{4}</td></tr>",
            esc(&r.serial),
            esc(&r.subject),
            r.status,
            fmt_time(r.not_after),
            esc(&r.template)
        ));
    }
    body.push_str("</table></div>");
    html(StatusCode::OK, page("Certificates", Some(&s), &body))
}

pub(super) async fn certificate(
    State(state): State<AppState>,
    Console { s, .. }: Console<Admin>,
    Path(serial): Path<String>,
) -> Response {
    let found = match serial.parse::<Serial>() {
        Ok(serial) => state.authority.certificate(&serial).await,
        Err(_) => Ok(None),
    };
    let Ok(Some(c)) = found else {
        return html(StatusCode::NOT_FOUND, page("Certificate", Some(&s), "<p>No such certificate.</p>"));
    };
    let sha256 = hex::encode_upper(scep::attr::DigestAlg::Sha256.digest(&c.der));
    let mut body = format!(
        "<table><tr><th>Serial</th><td class=\"mono\">{}</td></tr><tr><th>Subject</th><td>{}</td></tr><tr><th>SANs</th><td>{}</td></tr>\
         <tr><th>Valid</th><td>{} to {}</td></tr><tr><th>Status</th><td id=\"status\">{}{}</td></tr><tr><th>Template</th><td>{}</td></tr>\
         <tr><th>Transaction</th><td class=\"mono\">{}</td></tr><tr><th>Requester</th><td>{}</td></tr><tr><th>Renews</th><td class=\"mono\">{}</td></tr>\
         <tr><th>SHA-256</th><td class=\"mono\">{}</td></tr></table>",
        esc(&c.serial),
        esc(&c.subject),
        esc(&c.sans.join(", ")),
        fmt_time(c.not_before),
        fmt_time(c.not_after),
        c.status,
        c.revoked_at.map(|t| format!(" at {}", fmt_time(t))).unwrap_or_default(),
        esc(&c.template),
        esc(&c.transaction_id),
        esc(&c.requester),
        esc(c.renews_serial.as_deref().unwrap_or("-")),
        sha256
    );
    if c.status == CertStatus::Valid {
        body.push_str(&format!(
            "<form method=\"post\" action=\"/console/certificates/{}/revoke\" class=\"box\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label>Reason <select name=\"reason\" id=\"reason\"><option>unspecified</option><option>keyCompromise</option><option>affiliationChanged</option>\
             <option>superseded</option><option>cessationOfOperation</option><option>certificateHold</option><option>privilegeWithdrawn</option></select></label> \
             <button id=\"revoke\">Revoke</button></form>",
            esc(&c.serial),
            s.csrf
        ));
    }
    html(StatusCode::OK, page("Certificate", Some(&s), &body))
}

pub(super) async fn revoke(
    State(state): State<AppState>,
    Console { s, .. }: Console<Admin>,
    Path(serial): Path<String>,
    body: Bytes,
) -> Response {
    let f = form(&body);
    if let Err(r) = check_csrf(&s, &f) {
        return r;
    }
    let reason = field(&f, "reason").and_then(reason_from_name);
    let Ok(serial) = serial.parse::<Serial>() else {
        return html(StatusCode::NOT_FOUND, page("Certificate", Some(&s), "<p>No such certificate.</p>"));
    };
    match state.authority.revoke(&serial, reason).await {
        Ok(()) => {
            tracing::info!(serial = serial.as_str(), user = s.user.name, "revoked from the console");
            redirect(&format!("/console/certificates/{serial}"))
        }
        Err(e) => html(
            StatusCode::CONFLICT,
            page("Certificate", Some(&s), &format!("<p class=\"warn\">{}</p>", esc(&e.to_string()))),
        ),
    }
}

pub(super) async fn requests(State(state): State<AppState>, Console { s, .. }: Console<Admin>) -> Response {
    let rows = state.authority.pending_requests(Some(PendingStatus::Pending)).await.unwrap_or_default();
    let mut body = String::from(
        "<div class=\"wrap\"><table><tr><th>Created</th><th>Subject</th><th>SANs</th><th>Template</th><th>From</th><th></th></tr>",
    );
    for r in &rows {
        let button = |what: &str| {
            format!(
                "<form method=\"post\" action=\"/console/requests/{0}/{what}\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{1}\"><button id=\"{what}-{0}\">{what}</button></form>",
                esc(&r.id),
                s.csrf
            )
        };
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td></tr>",
            fmt_time(r.created_at),
            esc(&r.subject),
            esc(&r.sans.join(", ")),
            esc(&r.template),
            esc(&r.requester),
            button("approve"),
            button("reject")
        ));
    }
    if rows.is_empty() {
        body.push_str("<tr><td colspan=\"6\">No request waits for approval.</td></tr>");
    }
    body.push_str("</table></div>");
    html(StatusCode::OK, page("Pending requests", Some(&s), &body))
}

pub(super) async fn decide(
    State(state): State<AppState>,
    Console { s, .. }: Console<Admin>,
    Path((id, what)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(r) = check_csrf(&s, &form(&body)) {
        return r;
    }
    let Some(decision) = crate::authority::decide::Decision::from_name(&what) else {
        return html(StatusCode::NOT_FOUND, page("Pending requests", Some(&s), "<p>Use approve or reject.</p>"));
    };
    match state.authority.decide_pending(&id, decision, &s.user.name, Via::Console).await {
        Ok(_) => redirect("/console/requests"),
        Err(crate::authority::decide::DecideError::NotPending) => html(
            StatusCode::NOT_FOUND,
            page("Pending requests", Some(&s), "<p>That request is not waiting for a decision (decided already?).</p>"),
        ),
        Err(crate::authority::decide::DecideError::Store(e)) => {
            tracing::warn!(error = %e, "console: decision failed");
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                page("Pending requests", Some(&s), "<p>Service unavailable; nothing was decided.</p>"),
            )
        }
    }
}

pub(super) async fn challenges(State(state): State<AppState>, Console { s, .. }: Console<Enroll>) -> Response {
    html(StatusCode::OK, page("Challenges", Some(&s), &challenges_body(&state, &s, "").await))
}

async fn challenges_body(state: &AppState, s: &Session, shown: &str) -> String {
    let viewer = crate::authority::challenge::Viewer { name: &s.user.name, admin: s.can(Permission::Admin) };
    let rows = state.authority.challenges_for(&viewer).await.unwrap_or_default();
    let mut body = String::from(shown);
    body.push_str(&format!(
        "<form method=\"post\" action=\"/console/challenges\" class=\"box\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <p><label>Bind to subject (optional)<br><input name=\"subject\" id=\"subject\" placeholder=\"CN=device,O=Example\"></label></p>\
         <p><label>Bind to SANs (optional, comma-separated)<br><input name=\"sans\" id=\"sans\" placeholder=\"DNS:device.example.com\"></label></p>\
         <p><button id=\"create\">Create a one-time challenge</button></p></form><h2>Outstanding</h2>\
         <div class=\"wrap\"><table><tr><th>Id</th><th>Created</th><th>Expires</th><th>By</th><th>Bound to</th></tr>",
        s.csrf
    ));
    for r in &rows {
        let bound =
            [r.binding.subject.clone().unwrap_or_default(), r.binding.sans.clone().unwrap_or_default().join(", ")]
                .join(" ");
        body.push_str(&format!(
            "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.id),
            fmt_time(r.created_at),
            fmt_time(r.expires_at),
            esc(&r.created_by),
            esc(bound.trim())
        ));
    }
    body.push_str("</table></div>");
    body
}

pub(super) async fn create_challenge(
    State(state): State<AppState>,
    Console { s, .. }: Console<Enroll>,
    body: Bytes,
) -> Response {
    let f = form(&body);
    if let Err(r) = check_csrf(&s, &f) {
        return r;
    }
    let subject = field(&f, "subject").map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let sans: Vec<String> = field(&f, "sans")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    let binding = Binding { subject, sans: (!sans.is_empty()).then_some(sans), template: None };
    let shown = match state.authority.admin_challenge(&s.user.name, binding, Want::WhatTheModeGives).await {
        Ok(AdminChallenge::BadBinding(e)) => {
            let shown = format!("<p class=\"warn\">{}</p>", esc(&e));
            return html(
                StatusCode::BAD_REQUEST,
                page("Challenges", Some(&s), &challenges_body(&state, &s, &shown).await),
            );
        }
        Ok(AdminChallenge::OneTime(m, _)) => format!(
            "<div class=\"box\"><p>New one-time challenge (shown once; valid until {}):</p><p class=\"secret\" id=\"password\">{}</p></div>",
            fmt_time(m.expires_at),
            esc(&m.password)
        ),
        Ok(AdminChallenge::Single(p)) => format!(
            "<div class=\"box\"><p>The single password:</p><p class=\"secret\" id=\"password\">{}</p></div>",
            esc(&p)
        ),
        Ok(AdminChallenge::CacheFull(_)) => "<p class=\"warn\">The password cache is full.</p>".into(),
        Ok(AdminChallenge::NotIssued(m)) => format!("<p>This server issues no challenges (mode {}).</p>", m.name()),
        Ok(AdminChallenge::Unbindable(m)) => format!(
            "<p class=\"warn\">Only one-time challenges can be bound to a subject or SANs; challenge mode is {}.</p>",
            m.name()
        ),
        Err(e) => {
            tracing::warn!(error = %e, "console: cannot issue a challenge");
            "<p class=\"warn\">The challenge could not be created.</p>".into()
        }
    };
    html(StatusCode::OK, page("Challenges", Some(&s), &challenges_body(&state, &s, &shown).await))
}

pub(super) async fn audit(State(state): State<AppState>, Console { s, .. }: Console<Admin>, uri: Uri) -> Response {
    let q = query(&uri);
    let get = |k: &str| field(&q, k).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let filter = AuditFilter {
        transaction_id: get("transaction"),
        subject: get("subject"),
        serial: get("serial").map(|s| s.parse::<Serial>().map_or(s, |s| s.as_str().to_owned())),
        outcome: get("outcome").and_then(|o| o.parse().ok()),
        limit: 200,
        ..AuditFilter::default()
    };
    let rows = state.authority.audit(&filter).await;
    let v = |o: &Option<String>| esc(o.as_deref().unwrap_or(""));
    let outcomes: String = AuditOutcome::ALL
        .iter()
        .map(|o| {
            let selected = if filter.outcome == Some(*o) { " selected" } else { "" };
            format!("<option{selected}>{o}</option>")
        })
        .collect();
    let body = format!(
        "<form method=\"get\" action=\"/console/audit\" class=\"box\"><input name=\"transaction\" placeholder=\"transactionID\" value=\"{}\"> \
         <input name=\"subject\" id=\"audit-subject\" placeholder=\"subject contains\" value=\"{}\"> <input name=\"serial\" placeholder=\"serial\" value=\"{}\"> \
         <select name=\"outcome\"><option value=\"\">any outcome</option>{}</select> \
         <button id=\"filter\">Filter</button></form>{}",
        v(&filter.transaction_id),
        v(&filter.subject),
        v(&filter.serial),
        outcomes,
        audit_table(&rows)
    );
    html(StatusCode::OK, page("Audit trail", Some(&s), &body))
}

/// `/console` without the slash.
pub(super) async fn root() -> Response {
    redirect("/console/")
}
