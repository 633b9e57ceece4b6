//! The only module that knows the web framework: SCEP paths, the NDES info and admin
//! pages, the API, health, limits, the TLS listener, and the one place errors become
//! HTTP answers.

mod admin;
mod api;
pub mod auth;
mod console;
mod listener;
mod ntlm;
mod origin;
mod scep_routes;
pub mod tls;
pub mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::{
    Router,
    body::Bytes,
    extract::{ConnectInfo, State},
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::net::TcpListener;
use tower_http::{catch_panic::CatchPanicLayer, limit::RequestBodyLimitLayer, timeout::TimeoutLayer};

use crate::authority::{Authority, throttle::Throttle};
pub use admin::{thumbprint, utf16le};
use auth::Transport;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The authority.
    pub authority: Arc<Authority>,
    /// Failed logins per address.
    pub login_throttle: Arc<Throttle>,
    /// Password checks, on their own bounded pool.
    pub passwords: Arc<crate::accounts::PasswordPool>,
    /// NTLM exchanges and NTLM-authenticated connections.
    ntlm: Arc<ntlm::Sessions>,
    /// The listeners' own settings.
    settings: Arc<Settings>,
}

/// What the HTTP layer itself is configured with: how the admin page and the API
/// authenticate, and the limits of every listener. Decisions are the authority's.
struct Settings {
    admin: crate::config::AdminConfig,
    limits: crate::config::LimitsConfig,
}

impl AppState {
    /// State for `authority`, with the login throttle, authentication and limits of `config`.
    pub fn new(authority: Arc<Authority>, config: &crate::config::Config) -> Self {
        let t = &config.throttle;
        let login_throttle = Arc::new(Throttle::new(t.max_failures, Duration::from_secs(t.window_secs)));
        let ntlm = Arc::new(ntlm::Sessions::new(config.limits.max_connections));
        let passwords = Arc::new(crate::accounts::PasswordPool::for_this_machine());
        let settings = Arc::new(Settings { admin: config.admin.clone(), limits: config.limits.clone() });
        AppState { authority, login_throttle, passwords, ntlm, settings }
    }
}

/// Build the router with every limit applied.
pub fn router(state: AppState) -> Router {
    let limits = state.settings.limits.clone();
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/v1/challenges", get(api::list).post(api::create))
        .route("/api/v1/challenges/{id}", get(api::show).delete(api::revoke))
        .route("/api/v1/requests", get(api::requests))
        .route("/api/v1/requests/{id}/{decision}", axum::routing::post(api::decide))
        .route("/api/v1/certificates/{serial}/revoke", axum::routing::post(api::revoke_certificate))
        .route("/api/v1/profiles/apple", get(api::apple_profile))
        .route("/console", get(console::root))
        .route("/console/", get(console::overview))
        .route("/console/login", get(console::login_page).post(console::login))
        .route("/console/login/windows", get(console::login_windows))
        .route("/console/logout", axum::routing::post(console::logout))
        .route("/console/certificates", get(console::certificates))
        .route("/console/certificates/{serial}", get(console::certificate))
        .route("/console/certificates/{serial}/revoke", axum::routing::post(console::revoke))
        .route("/console/requests", get(console::requests))
        .route("/console/requests/{id}/{decision}", axum::routing::post(console::decide))
        .route("/console/challenges", get(console::challenges).post(console::create_challenge))
        .route("/console/audit", get(console::audit))
        .route("/crl/{file}", get(crl))
        .fallback(fallback)
        .with_state(state)
        .layer(axum::middleware::from_fn(origin::guard))
        // The accept loop has already read the body within this limit; the layer keeps
        // the (public) router bounded wherever it is served.
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(limits.request_timeout_secs),
        ))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(limits.max_concurrent_requests))
        .layer(CatchPanicLayer::custom(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.\n")))
}

/// Serve plain HTTP until `shutdown` resolves. Prints the bound address on stdout
/// first, so that scripts (and tests using port 0) can find it.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    println!("scepd listening on http://{addr}");
    tracing::info!(%addr, "listening");
    let limits = state.settings.limits.clone();
    let sessions = state.ntlm.clone();
    listener::serve(listener, None, router(state), sessions, &limits, shutdown).await
}

/// Serve HTTPS until `shutdown` resolves; prints the address like [`serve`].
pub async fn serve_tls(
    listener: TcpListener,
    setup: tls::TlsSetup,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let limits = state.settings.limits.clone();
    println!("scepd listening on https://{addr}");
    tracing::info!(%addr, "listening (TLS)");
    let (slot, source) = setup.renewal();
    tokio::spawn(tls::renew_builtin(slot, source, state.authority.clone()));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(setup.config));
    let sessions = state.ntlm.clone();
    listener::serve(listener, Some(acceptor), router(state), sessions, &limits, shutdown).await
}

async fn fallback(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    transport: Option<axum::Extension<Transport>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if admin::is_admin_path(uri.path()) {
        // Only GET: every answer mints a password, and a HEAD must not fill the cache.
        if method != Method::GET {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.\n");
        }
        return admin::page(&state, &headers, transport.map(|t| t.0), peer).await;
    }
    if scep_routes::is_scep_path(uri.path()) {
        return scep_routes::handle(&state, peer, method, uri, body).await;
    }
    plain(StatusCode::NOT_FOUND, "Not found.\n")
}

/// `/crl/ca.crl` (the current CA) and `/crl/CAID.crl` (any generation), DER.
async fn crl(State(state): State<AppState>, axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let Some(id) = file.strip_suffix(".crl") else {
        return plain(StatusCode::NOT_FOUND, "Not found.\n");
    };
    match state.authority.crl_by_id(id).await {
        Ok(Some(der)) => {
            let mut r = der.into_response();
            r.headers_mut()
                .insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/pkix-crl"));
            r
        }
        Ok(None) => plain(StatusCode::NOT_FOUND, "No such CA.\n"),
        Err(e) => {
            tracing::warn!(error = %e, "cannot produce the CRL");
            plain(StatusCode::SERVICE_UNAVAILABLE, "The CRL is not available.\n")
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut r = state.authority.render_metrics().await.into_response();
    r.headers_mut()
        .insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("text/plain; version=0.0.4"));
    r
}

async fn health() -> Response {
    plain(StatusCode::OK, "ok\n")
}

async fn ready(State(state): State<AppState>) -> Response {
    match state.authority.ping().await {
        Ok(()) => plain(StatusCode::OK, "ready\n"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            plain(StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
    }
}

/// A plain-text answer.
pub(crate) fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, [(axum::http::header::CONTENT_TYPE, "text/plain")], text).into_response()
}
