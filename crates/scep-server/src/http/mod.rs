//! The only module that knows the web framework: SCEP paths, the NDES info page,
//! health, limits, and the one place errors become HTTP answers.

mod scep_routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::{
    Router,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::net::TcpListener;
use tower_http::{catch_panic::CatchPanicLayer, limit::RequestBodyLimitLayer, timeout::TimeoutLayer};

use crate::authority::Authority;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The authority.
    pub authority: Arc<Authority>,
}

/// Build the router with every limit applied.
pub fn router(state: AppState) -> Router {
    let limits = state.authority.config().limits.clone();
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .fallback(scep_routes::handle)
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(limits.request_timeout_secs),
        ))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(limits.max_concurrent_requests))
        .layer(CatchPanicLayer::custom(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.\n")))
}

/// Serve until `shutdown` resolves. Prints the bound address on stdout first, so
/// that scripts (and tests using port 0) can find it.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    println!("scepd listening on http://{addr}");
    tracing::info!(%addr, "listening");
    axum::serve(listener, router(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

async fn health() -> Response {
    plain(StatusCode::OK, "ok\n")
}

async fn ready(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    match state.authority.store().ping().await {
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
