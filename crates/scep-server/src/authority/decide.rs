//! Deciding a request that waits for approval: the one path the API, the console and
//! the CLI take, so that every decision is timed by the authority's clock, logged and
//! written to the audit trail before it is reported done.

use super::{Authority, unix};
use crate::store::{AuditEntry, AuditOutcome, PendingRow, PendingStatus, StoreError, Via};

/// What an administrator decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Issue at the client's next poll.
    Approve,
    /// Refuse; the next poll gets FAILURE.
    Reject,
}

impl Decision {
    /// `approve` or `reject`, as the API path and the console form name them.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "approve" => Some(Decision::Approve),
            "reject" => Some(Decision::Reject),
            _ => None,
        }
    }

    /// The request's status after the decision.
    pub fn status(self) -> PendingStatus {
        match self {
            Decision::Approve => PendingStatus::Approved,
            Decision::Reject => PendingStatus::Rejected,
        }
    }

    /// What the audit trail records.
    pub fn outcome(self) -> AuditOutcome {
        match self {
            Decision::Approve => AuditOutcome::Approved,
            Decision::Reject => AuditOutcome::Rejected,
        }
    }
}

/// Why a decision was not made.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// No request with this id waits for a decision (unknown, or decided already).
    #[error("no pending request with this id")]
    NotPending,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Authority {
    /// Decide pending request `id` as user `by`, through `via` (`api`, `console`,
    /// `cli`): recorded, logged and audited. Returns the request as it was.
    pub async fn decide_pending(
        &self,
        id: &str,
        decision: Decision,
        by: &str,
        via: Via,
    ) -> Result<PendingRow, DecideError> {
        let row = self.store.pending(id).await?.ok_or(DecideError::NotPending)?;
        let now = unix(self.now());
        if !self.store.decide_pending(id, decision == Decision::Approve, by, now).await? {
            return Err(DecideError::NotPending);
        }
        tracing::info!(
            id,
            user = by,
            via = via.as_str(),
            decision = decision.status().as_str(),
            subject = row.subject,
            "pending request decided"
        );
        // Written before the decision is reported: it is rare and must not be lost.
        let entry = AuditEntry {
            id: hex::encode(scep::crypto::random_bytes(8).unwrap_or_default()),
            at: now,
            requester: row.requester.clone(),
            via,
            transaction_id: Some(row.transaction_id.clone()),
            message_type: Some(row.message_type.clone()),
            subject: Some(row.subject.clone()),
            template: Some(row.template.clone()),
            outcome: decision.outcome(),
            fail_info: None,
            reason: Some(format!("pending request {id} {} by {by}", decision.status())),
            serial: None,
            challenge_id: row.challenge_id.clone(),
            renews_serial: row.renews_serial.clone(),
        };
        self.store.record_audit(&[entry]).await?;
        if let Some(hook) = &self.webhook {
            hook.enqueue(super::webhook::Event::Decided {
                transaction_id: row.transaction_id.clone(),
                id: id.to_owned(),
                status: decision.status(),
                by: by.to_owned(),
                via,
                subject: row.subject.clone(),
            });
        }
        Ok(row)
    }
}
