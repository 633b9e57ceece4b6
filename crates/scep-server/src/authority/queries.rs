//! What the API, the console and the CLI read: through the authority, like every
//! decision, so that no caller needs the store itself.

use super::Authority;
use crate::store::{AuditEntry, AuditFilter, CertificateRow, PendingRow, StoreResult};

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

    /// One certificate by serial (hex, any case, colons allowed).
    pub async fn certificate(&self, serial: &str) -> StoreResult<Option<CertificateRow>> {
        self.store.certificate(&serial.replace(':', "").to_ascii_uppercase()).await
    }

    /// Requests for approval, all or in one status.
    pub async fn pending_requests(&self, status: Option<&str>) -> StoreResult<Vec<PendingRow>> {
        self.store.list_pending(status).await
    }

    /// The audit trail, newest first.
    pub async fn audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        self.store.query_audit(filter).await
    }

    /// Drop audit entries older than `before` (unix seconds); how many went.
    pub async fn purge_audit(&self, before: i64) -> StoreResult<u64> {
        self.store.purge_audit(before).await
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> StoreResult<()> {
        self.store.ping().await
    }

    /// A new single password (`scepd challenge rotate`), sealed in the store.
    pub async fn rotate_single_password(&self) -> StoreResult<zeroize::Zeroizing<String>> {
        let length = self.config.challenge.password_length;
        super::challenge::rotate_single(self.store.as_ref(), &self.single_key, length, self.now()).await
    }
}
