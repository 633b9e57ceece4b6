//! What the API, the console and the CLI read: through the authority, like every
//! decision, so that no caller needs the store itself.

use super::Authority;
use crate::store::{AuditEntry, AuditFilter, CertificateRow, PendingRow, PendingStatus, StoreResult};
use crate::vocab::Serial;

/// What the store holds, counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    /// Certificates issued (and imported).
    pub certificates: u64,
    /// Requests waiting for approval.
    pub pending: u64,
}

impl Authority {
    /// The newest certificates, or those whose subject contains `term` (ASCII case
    /// folded) or whose serial is `term`; searched in the database.
    pub async fn certificates(&self, term: &str, limit: u32) -> StoreResult<Vec<CertificateRow>> {
        if term.is_empty() {
            self.store.list_certificates(limit).await
        } else {
            self.store.search_certificates(term, limit).await
        }
    }

    /// One certificate by serial.
    pub async fn certificate(&self, serial: &Serial) -> StoreResult<Option<CertificateRow>> {
        self.store.certificate(serial.as_str()).await
    }

    /// How many certificates are stored and how many requests wait for approval,
    /// counted in the database.
    pub async fn counts(&self) -> StoreResult<Counts> {
        let (certificates, pending) = tokio::join!(self.store.count_certificates(), self.store.count_pending());
        Ok(Counts { certificates: certificates?, pending: pending? })
    }

    /// Requests for approval, all or in one status.
    pub async fn pending_requests(&self, status: Option<PendingStatus>) -> StoreResult<Vec<PendingRow>> {
        self.store.list_pending(status).await
    }

    /// The audit trail, newest first.
    pub async fn audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        self.store.query_audit(filter).await
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> StoreResult<()> {
        self.store.ping().await
    }

    /// A new single password (`scepd challenge rotate`), sealed in the store; refused
    /// in every other mode.
    pub async fn rotate_single_password(&self) -> anyhow::Result<zeroize::Zeroizing<String>> {
        let c = &self.config.challenge;
        if c.mode != crate::config::ChallengeMode::Single {
            anyhow::bail!("challenge.mode is {:?}: only the single password is rotated", c.mode.name());
        }
        Ok(super::challenge::rotate_single(self.store.as_ref(), &self.single_key, c.password_length, self.now())
            .await?)
    }

    /// Drop audit entries older than `audit.retention_days`; how many went.
    pub async fn purge_expired_audit(&self) -> StoreResult<u64> {
        let keep = i64::try_from(self.config.audit.retention_days.saturating_mul(86_400)).unwrap_or(i64::MAX);
        self.store.purge_audit(super::unix(self.now()).saturating_sub(keep)).await
    }

    /// Whether `/scep/NAME/` names a configured template.
    pub fn has_template(&self, name: &str) -> bool {
        self.config.templates.contains(name)
    }
}
