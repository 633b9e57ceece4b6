//! Dynamic validation and notification by an external service (Intune's connector,
//! step-ca's webhooks): the types and the seam. The HTTP client lives in `http`.

use async_trait::async_trait;
use serde::Serialize;

/// What the verifier is asked about.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyRequest {
    /// transactionID.
    pub transaction_id: String,
    /// PKCSReq or RenewalReq.
    pub message_type: String,
    /// The challengePassword as sent (the verifier issued it).
    pub challenge: Option<String>,
    /// The CSR, base64 DER.
    pub csr: String,
    /// Requested subject (RFC 4514).
    pub subject: String,
    /// Requested SANs as `type:value`.
    pub sans: Vec<String>,
    /// Client address.
    pub requester: String,
}

/// The verifier's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// An explicit allow.
    Allow,
    /// An answer other than allow, with why (for the log).
    Deny(String),
    /// No usable answer (error, time-out, HTTP status other than 200): also a denial,
    /// but not the client's fault, so it does not count against its address.
    Unavailable(String),
}

/// What the notifier is told: enough for a validation service (Intune's SCEP
/// validation API, say) to report the outcome: its successNotification wants the
/// transaction ID, the CSR, serial, thumbprint, issuer and expiry; its
/// failureNotification the transaction ID, the CSR and why.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    /// A certificate was issued.
    Issued {
        /// transactionID.
        transaction_id: String,
        /// Serial, uppercase hex.
        serial: String,
        /// Subject.
        subject: String,
        /// SHA-1 of the certificate (Windows' thumbprint), uppercase hex.
        thumbprint: String,
        /// SHA-256 of the certificate, uppercase hex.
        sha256: String,
        /// RFC 3339.
        not_after: String,
        /// The issuing CA's subject (RFC 4514).
        issuer: String,
        /// The CSR, base64 DER.
        csr: String,
        /// The certificate, base64 DER.
        certificate: String,
    },
    /// A request was refused.
    Failed {
        /// transactionID.
        transaction_id: String,
        /// failInfo name.
        fail_info: String,
        /// The reason as logged.
        reason: String,
        /// PKCSReq, RenewalReq, CertPoll, GetCert, GetCRL.
        message_type: String,
        /// The CSR, base64 DER, when the request got as far as one.
        csr: Option<String>,
    },
    /// An administrator approved or rejected a request that waited for approval.
    Decided {
        /// transactionID of the request.
        transaction_id: String,
        /// The pending request's id.
        id: String,
        /// `approved` or `rejected`.
        status: crate::vocab::PendingStatus,
        /// Who decided.
        by: String,
        /// `api`, `console` or `cli`.
        via: crate::vocab::Via,
        /// The request's subject.
        subject: String,
    },
}

/// The seam: a webhook client.
#[async_trait]
pub trait Webhook: Send + Sync {
    /// Ask whether to issue. Errors, time-outs and answers that cannot be
    /// authenticated are [`Decision::Unavailable`].
    async fn verify(&self, request: &VerifyRequest) -> Decision;
    /// Queue an event to be told, and return at once: the caller never waits for the
    /// notifier, and no task is spawned per event. Delivery is best effort: a full
    /// queue drops the event (logged and counted), a failure is logged, never retried.
    fn enqueue(&self, event: Event);
}
