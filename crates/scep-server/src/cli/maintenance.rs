//! What a running server does in the background: take over a prepared CA when it is
//! due, pick up CA and RA files changed by `scepd ca rollover` or `scepd ra renew` (or
//! by another instance), keep CRLs fresh, and warn of expiry.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::authority::Authority;
use crate::ca::{Ca, Passphrase, files, rollover};

/// How often the data directory is looked at.
const TICK: Duration = Duration::from_secs(2);
/// How often CRLs are checked for freshness and expiry is reported.
const SLOW_TICK: Duration = Duration::from_secs(3600);

pub(super) async fn run(dir: PathBuf, pass: Passphrase, authority: Arc<Authority>) {
    let mut stamp = files_stamp(&dir);
    let mut last_slow = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(TICK).await;
        match rollover::promote_if_due(&dir, authority.now()) {
            Ok(true) => tracing::info!("the prepared CA has taken over"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot promote the prepared CA"),
        }
        let now_stamp = files_stamp(&dir);
        if now_stamp != stamp {
            match Ca::load(&dir, &pass).and_then(|ca| authority.replace_ca(ca)) {
                Ok(()) => {
                    tracing::info!("CA and RA certificates reloaded");
                    stamp = now_stamp;
                }
                // Files mid-change: try again at the next tick.
                Err(e) => tracing::debug!(error = %e, "CA files not loadable yet"),
            }
        }
        if last_slow.elapsed() >= SLOW_TICK {
            last_slow = tokio::time::Instant::now();
            match authority.purge_expired_audit().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(entries = n, "old audit entries purged"),
                Err(e) => tracing::warn!(error = %e, "cannot purge the audit trail"),
            }
            let pki = authority.pki();
            for ca in pki.ca.cas() {
                if let Err(e) = authority.crl_for(ca).await {
                    tracing::warn!(ca = ca.id(), error = %e, "cannot refresh the CRL");
                }
            }
            for line in super::lifecycle::expiry_report(&pki.ca, SystemTime::now()) {
                if line.contains("WARNING") {
                    tracing::warn!("{line}");
                }
            }
        }
    }
}

/// Modification times and sizes of the files that define the CA material.
fn files_stamp(dir: &Path) -> Vec<(String, Option<SystemTime>, u64)> {
    let mut names = vec!["ca.pem".to_owned(), "ra-sign.pem".into(), "ra-encrypt.pem".into()];
    for sub in [files::PREVIOUS, files::NEXT] {
        if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
            names.extend(rd.filter_map(|e| e.ok()).map(|e| format!("{sub}/{}", e.file_name().to_string_lossy())));
        }
    }
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let m = std::fs::metadata(dir.join(&n)).ok();
            let t = m.as_ref().and_then(|m| m.modified().ok());
            (n, t, m.map_or(0, |m| m.len()))
        })
        .collect()
}
