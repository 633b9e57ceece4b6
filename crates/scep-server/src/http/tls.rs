//! The HTTPS listener: rustls (aws-lc provider, the same build as the SCEP crypto),
//! our own accept loop for handshake time-outs and a connection limit.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::config::{Tls, TlsSource};
use anyhow::Context;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// Renew the built-in certificate when less than this is left.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

/// The served certificate, replaceable while running: the built-in one is renewed.
#[derive(Debug)]
pub struct CertSlot {
    current: RwLock<(Arc<CertifiedKey>, SystemTime)>,
}

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).0.clone())
    }
}

/// The rustls configuration and where its certificate comes from.
pub struct TlsSetup {
    /// For the acceptor.
    pub config: rustls::ServerConfig,
    slot: Arc<CertSlot>,
    source: TlsSource,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The certificate and key from files, or a fresh one from the built-in CA.
fn certified(source: &TlsSource, ca: &crate::ca::Ca) -> anyhow::Result<(Arc<CertifiedKey>, SystemTime)> {
    let (chain, key, not_after) = match source {
        TlsSource::Files { cert, key } => {
            crate::ca::check_private(key)?;
            let chain = CertificateDer::pem_file_iter(cert)
                .with_context(|| format!("cannot read {}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("{} is not a PEM private key", key.display()))?;
            (chain, key, SystemTime::UNIX_EPOCH)
        }
        TlsSource::BuiltIn(names) => {
            let (certs, key) = ca.issue_tls(names, SystemTime::now())?;
            let not_after = certs
                .first()
                .map_or(SystemTime::UNIX_EPOCH, |c| c.tbs_certificate().validity().not_after.to_system_time());
            let chain = certs
                .iter()
                .map(|c| der::Encode::to_der(c).map(CertificateDer::from))
                .collect::<Result<Vec<_>, _>>()?;
            (chain, PrivateKeyDer::Pkcs8(key.pkcs8_der().to_vec().into()), not_after)
        }
    };
    let ck = CertifiedKey::from_der(chain, key, &provider())
        .context("the TLS certificate and key do not match or are not supported")?;
    Ok((Arc::new(ck), not_after))
}

/// Build the rustls configuration from files or from the built-in CA.
pub fn server_config(tls: &Tls, ca: &crate::ca::Ca) -> anyhow::Result<TlsSetup> {
    let slot = Arc::new(CertSlot { current: RwLock::new(certified(&tls.source, ca)?) });
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(slot.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsSetup { config, slot, source: tls.source.clone() })
}

/// Keep the built-in certificate fresh: re-issue it (from the current CA) when less
/// than 30 days are left.
pub async fn renew_builtin(setup_slot: Arc<CertSlot>, source: TlsSource, authority: Arc<crate::authority::Authority>) {
    if !matches!(source, TlsSource::BuiltIn(_)) {
        return;
    }
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        let expires = setup_slot.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).1;
        if expires.duration_since(SystemTime::now()).unwrap_or_default() > RENEW_BEFORE {
            continue;
        }
        match certified(&source, &authority.pki().ca) {
            Ok(new) => {
                *setup_slot.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = new;
                tracing::info!("TLS certificate renewed from the built-in CA");
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew the TLS certificate"),
        }
    }
}

impl TlsSetup {
    /// The parts [`renew_builtin`] needs.
    pub fn renewal(&self) -> (Arc<CertSlot>, TlsSource) {
        (self.slot.clone(), self.source.clone())
    }
}
