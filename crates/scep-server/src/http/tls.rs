//! The HTTPS listener: rustls (aws-lc provider, the same build as the SCEP crypto),
//! our own accept loop for handshake time-outs and a connection limit.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::{Router, extract::ConnectInfo};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::auth::Transport;
use crate::config::{Tls, TlsSource};

/// Time a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Build the rustls configuration from files or from the built-in CA.
pub fn server_config(tls: &Tls, ca: &crate::ca::Ca) -> anyhow::Result<rustls::ServerConfig> {
    let (chain, key): (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) = match &tls.source {
        TlsSource::Files { cert, key } => {
            let chain = CertificateDer::pem_file_iter(cert)
                .with_context(|| format!("cannot read {}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("{} is not a PEM private key", key.display()))?;
            (chain, key)
        }
        TlsSource::BuiltIn(names) => {
            let (certs, key) = ca.issue_tls(names, std::time::SystemTime::now())?;
            let chain = certs
                .iter()
                .map(|c| der::Encode::to_der(c).map(CertificateDer::from))
                .collect::<Result<Vec<_>, _>>()?;
            (chain, PrivateKeyDer::Pkcs8(key.pkcs8_der().to_vec().into()))
        }
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the TLS certificate and key do not match or are not supported")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Accept TLS connections until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    config: rustls::ServerConfig,
    router: Router,
    max_connections: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "TLS accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "TLS connection refused: connection limit reached");
            continue;
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
            };
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut().insert(Transport { tls: true });
                router.clone().oneshot(req)
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder.serve_connection(TokioIo::new(tls), svc).await {
                tracing::debug!(%peer, error = %e, "TLS connection ended with an error");
            }
        });
    }
}
