//! The JSON API for integrators: one-time challenges that can be bound to a subject,
//! SANs and a template, asked about, and revoked. Authenticated like the admin page.

// Handlers answer with a finished Response in the error case; its size is irrelevant here.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;

use axum::{
    body::Bytes,
    extract::{ConnectInfo, Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::auth::{self, Admin, Enroll, Need, Transport};
use crate::accounts::Permission;
use crate::authority::decide::{DecideError, Decision};
use crate::authority::{AdminChallenge, Want, unix};
use crate::store::{Binding, ChallengeRow};
use crate::vocab::{CertStatus, PendingStatus, Serial, Via};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateChallenge {
    subject: Option<String>,
    sans: Option<Vec<String>>,
    template: Option<String>,
}

fn json_response(status: StatusCode, value: serde_json::Value) -> Response {
    let mut r = (status, value.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn error(status: StatusCode, message: &str) -> Response {
    json_response(status, json!({ "error": message }))
}

/// An API caller over an allowed transport, authenticated, holding permission `P`;
/// the rejection is the answer (403, 401 with the schemes, 429, 503).
pub(super) struct ApiUser<P> {
    user: auth::User,
    /// Over TLS.
    tls: bool,
    _need: std::marker::PhantomData<P>,
}

impl<P: Need> axum::extract::FromRequestParts<AppState> for ApiUser<P> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, Response> {
        let Some(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0) else {
            return Err(error(StatusCode::INTERNAL_SERVER_ERROR, "no peer address"));
        };
        let transport = parts.extensions.get::<Transport>().copied();
        auth::require_secure(state, transport, peer)?;
        let user = auth::authenticate(state, &parts.headers, peer, transport).await?;
        if !user.can(P::PERMISSION) {
            return Err(error(StatusCode::FORBIDDEN, P::REFUSAL));
        }
        Ok(ApiUser { user, tls: transport.is_some_and(|t| t.tls), _need: std::marker::PhantomData })
    }
}

fn describe(row: &ChallengeRow, now: i64) -> serde_json::Value {
    let mut v = serde_json::to_value(row).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        let remaining =
            if row.status == crate::store::ChallengeStatus::Outstanding { (row.expires_at - now).max(0) } else { 0 };
        o.insert("remaining_seconds".into(), json!(remaining));
        o.insert("expires".into(), json!(rfc3339(row.expires_at)));
    }
    v
}

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// `POST /api/v1/challenges`: mint a one-time challenge, optionally bound.
pub(super) async fn create(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser<Enroll>,
    body: Bytes,
) -> Response {
    let req: CreateChallenge = if body.iter().all(u8::is_ascii_whitespace) {
        CreateChallenge::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid JSON body: {e}")),
        }
    };
    let binding = Binding { subject: req.subject, sans: req.sans, template: req.template };
    match state.authority.admin_challenge(&user.0.name, binding.clone(), Want::OneTime).await {
        Ok(AdminChallenge::OneTime(m, _)) => {
            let now = unix(state.authority.now());
            let mut v = json!({
                "id": m.id,
                "password": m.password.as_str(),
                "expires_at": m.expires_at,
                "expires": rfc3339(m.expires_at),
                "remaining_seconds": (m.expires_at - now).max(0),
            });
            if let (Some(o), Ok(b)) = (v.as_object_mut(), serde_json::to_value(&binding))
                && let Some(bo) = b.as_object()
            {
                o.extend(bo.clone());
            }
            json_response(StatusCode::CREATED, v)
        }
        Ok(AdminChallenge::CacheFull(_)) => error(StatusCode::CONFLICT, "The password cache is full."),
        Ok(AdminChallenge::BadBinding(why)) => error(StatusCode::BAD_REQUEST, &why),
        Ok(AdminChallenge::NotIssued(_) | AdminChallenge::Unbindable(_) | AdminChallenge::Single(_)) => {
            error(StatusCode::CONFLICT, "challenge.mode is not one-time: this server issues no one-time challenges")
        }
        Err(e) => unavailable(&e, "API: cannot issue a challenge"),
    }
}

/// `GET /api/v1/challenges`: outstanding challenges.
pub(super) async fn list(State(state): State<AppState>, ApiUser { user, .. }: ApiUser<Enroll>) -> Response {
    let now = unix(state.authority.now());
    match state.authority.challenges_for(&viewer(&user)).await {
        Ok(rows) => json_response(
            StatusCode::OK,
            json!({ "challenges": rows.iter().map(|r| describe(r, now)).collect::<Vec<_>>() }),
        ),
        Err(e) => unavailable(&e, "API: list failed"),
    }
}

/// `GET /api/v1/challenges/{id}`: state and remaining lifetime.
pub(super) async fn show(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser<Enroll>,
    Path(id): Path<String>,
) -> Response {
    let now = unix(state.authority.now());
    match state.authority.challenge_for(&viewer(&user), &id).await {
        Ok(Some(row)) => json_response(StatusCode::OK, describe(&row, now)),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such challenge"),
        Err(e) => unavailable(&e, "API: lookup failed"),
    }
}

/// `DELETE /api/v1/challenges/{id}`: revoke an outstanding challenge.
pub(super) async fn revoke(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser<Enroll>,
    Path(id): Path<String>,
) -> Response {
    match state.authority.revoke_challenge_for(&viewer(&user), &id).await {
        Ok(true) => {
            tracing::info!(id, user = user.0.name, "challenge revoked");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => error(StatusCode::NOT_FOUND, "no outstanding challenge with this id"),
        Err(e) => unavailable(&e, "API: revoke failed"),
    }
}

/// Whose challenges a user sees: an administrator every one, others their own.
fn viewer(user: &auth::User) -> crate::authority::challenge::Viewer<'_> {
    crate::authority::challenge::Viewer { name: &user.0.name, admin: user.can(Permission::Admin) }
}

/// `GET /api/v1/requests[?status=pending]`: requests that went through approval.
pub(super) async fn requests(State(state): State<AppState>, _admin: ApiUser<Admin>, uri: axum::http::Uri) -> Response {
    // `all` (or no status) lists every request, as `scepd request list --status all` does.
    let status = match uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("status=")))
        .filter(|s| *s != "all")
        .map(str::parse::<PendingStatus>)
        .transpose()
    {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("status {e}, or all")),
    };
    match state.authority.pending_requests(status).await {
        Ok(rows) => json_response(StatusCode::OK, json!({ "requests": rows })),
        Err(e) => unavailable(&e, "API: list requests failed"),
    }
}

/// `POST /api/v1/requests/{id}/approve` and `.../reject`.
pub(super) async fn decide(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser<Admin>,
    Path((id, decision)): Path<(String, String)>,
) -> Response {
    let Some(decision) = Decision::from_name(&decision) else {
        return error(StatusCode::NOT_FOUND, "use approve or reject");
    };
    match state.authority.decide_pending(&id, decision, &user.0.name, Via::Api).await {
        Ok(_) => json_response(StatusCode::OK, json!({ "id": id, "status": decision.status() })),
        Err(DecideError::NotPending) => error(StatusCode::NOT_FOUND, "no pending request with this id"),
        Err(DecideError::Store(e)) => unavailable(&e, "API: decision failed"),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    reason: Option<String>,
}

/// `POST /api/v1/certificates/{serial}/revoke` with optional `{"reason": "keyCompromise"}`.
pub(super) async fn revoke_certificate(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser<Admin>,
    Path(serial): Path<String>,
    body: Bytes,
) -> Response {
    let req: RevokeBody = if body.iter().all(u8::is_ascii_whitespace) {
        RevokeBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid JSON body: {e}")),
        }
    };
    let reason = match req.reason.as_deref().map(crate::authority::reason_from_name) {
        None => None,
        Some(Some(r)) => Some(r),
        Some(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "unknown reason: use an RFC 5280 name such as keyCompromise or superseded",
            );
        }
    };
    let Ok(serial) = serial.parse::<Serial>() else {
        return error(StatusCode::BAD_REQUEST, "not a serial number: use hex, like 5A3F09");
    };
    match state.authority.revoke(&serial, reason).await {
        Ok(()) => {
            tracing::info!(serial = serial.as_str(), user = user.0.name, "revoked through the API");
            json_response(StatusCode::OK, json!({ "serial": serial, "status": CertStatus::Revoked }))
        }
        Err(crate::authority::RevokeError::NotFound(_)) => {
            error(StatusCode::NOT_FOUND, "no certificate with this serial")
        }
        Err(crate::authority::RevokeError::AlreadyRevoked(_)) => error(StatusCode::CONFLICT, "already revoked"),
        Err(e) => unavailable(&e, "API: revoke failed"),
    }
}

/// `GET /api/v1/profiles/apple[?subject=CN%3D...&dns=NAME&url=SCEP_URL]`: a
/// .mobileconfig with a fresh challenge; the URL defaults to this server's NDES path
/// on the Host the request came to.
pub(super) async fn apple_profile(
    State(state): State<AppState>,
    ApiUser { user, tls, .. }: ApiUser<Enroll>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let mut subject = "CN=%ComputerName%".to_owned();
    let mut dns = Vec::new();
    let mut url = None;
    for (k, v) in uri.query().unwrap_or("").split('&').filter_map(|kv| kv.split_once('=')) {
        let v = percent(v);
        match k {
            "subject" => subject = v,
            "dns" => dns.push(v),
            "url" => url = Some(v),
            _ => {}
        }
    }
    let Ok(subject_name) = subject.parse::<x509_cert::name::Name>() else {
        return error(StatusCode::BAD_REQUEST, "subject is not a distinguished name");
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let url = url.unwrap_or_else(|| format!("{}://{host}/certsrv/mscep/mscep.dll", if tls { "https" } else { "http" }));
    let challenge =
        match state.authority.admin_challenge(&user.0.name, Binding::default(), Want::WhatTheModeGives).await {
            Ok(AdminChallenge::OneTime(m, _)) => m.password.to_string(),
            Ok(AdminChallenge::Single(p)) => p.to_string(),
            Ok(AdminChallenge::CacheFull(_)) => return error(StatusCode::CONFLICT, "The password cache is full."),
            Ok(AdminChallenge::NotIssued(_) | AdminChallenge::Unbindable(_) | AdminChallenge::BadBinding(_)) => {
                String::new()
            }
            Err(e) => {
                tracing::warn!(error = %e, "API: cannot issue a challenge for a profile");
                return error(StatusCode::SERVICE_UNAVAILABLE, "service unavailable");
            }
        };
    let p = crate::profile::AppleProfile {
        url,
        name: "scepd".into(),
        challenge,
        subject: subject_name,
        dns,
        emails: vec![],
        upns: vec![],
        key_size: 2048,
        key_usage: 5,
        retries: 3,
        retry_delay: 10,
    };
    let body = crate::profile::apple_mobileconfig(&p, &state.authority.pki().ca.ca.cert);
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-apple-aspen-config"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn percent(s: &str) -> String {
    let q = scep::operation::Query::parse(&format!("message={}", s.replace('+', "%20")));
    q.message.unwrap_or_default()
}

/// A store or signing failure: logged with its cause, answered without it.
fn unavailable(e: &dyn std::fmt::Display, what: &str) -> Response {
    tracing::warn!(error = %e, "{what}");
    error(StatusCode::SERVICE_UNAVAILABLE, "service unavailable")
}
