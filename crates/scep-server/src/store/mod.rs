//! Everything scepd keeps: a [`Store`] of few, coarse, atomic methods named after
//! what they mean. Atomicity is what keeps several instances correct on one database:
//! no process-local state matters.

mod sql;

use std::sync::Arc;

use async_trait::async_trait;

pub use sql::{Backend, SqlStore};

pub use crate::vocab::{AuditOutcome, CertStatus, PendingStatus, Via};

/// Store errors. The text goes to logs only.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored data that does not read back.
    #[error("corrupt stored value: {0}")]
    Corrupt(&'static str),
    /// The database file cannot be created.
    #[error("cannot create the database file: {0}")]
    Io(#[from] std::io::Error),
    /// A URL we cannot open.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
}

/// Result with [`StoreError`].
pub type StoreResult<T> = Result<T, StoreError>;

/// A certificate to record, with how it came to be.
#[derive(Clone, Debug)]
pub struct IssuedRecord {
    /// Uppercase hex serial.
    pub serial: String,
    /// Issuing CA id.
    pub ca_id: String,
    /// Subject, RFC 4514.
    pub subject: String,
    /// Subject alternative names as `type:value`.
    pub sans: Vec<String>,
    /// Validity start, unix seconds.
    pub not_before: i64,
    /// Validity end, unix seconds.
    pub not_after: i64,
    /// When it was issued, unix seconds.
    pub issued_at: i64,
    /// The request's transactionID.
    pub transaction_id: String,
    /// PKCSReq or RenewalReq.
    pub message_type: String,
    /// SHA-256 of the request's signer certificate.
    pub signer_sha256: Vec<u8>,
    /// SHA-256 of the CSR.
    pub csr_sha256: Vec<u8>,
    /// Client address.
    pub requester: String,
    /// Template (profile) name.
    pub template: String,
    /// The serial of the certificate this one renews.
    pub renews_serial: Option<String>,
    /// The approved pending request this certificate completes.
    pub pending_id: Option<String>,
    /// The certificate.
    pub der: Vec<u8>,
}

/// A certificate as stored.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CertificateRow {
    /// Uppercase hex serial.
    pub serial: String,
    /// Issuing CA id.
    pub ca_id: String,
    /// Subject.
    pub subject: String,
    /// SANs.
    pub sans: Vec<String>,
    /// Validity start.
    pub not_before: i64,
    /// Validity end.
    pub not_after: i64,
    /// Issue time.
    pub issued_at: i64,
    /// transactionID of the request.
    pub transaction_id: String,
    /// Client address.
    pub requester: String,
    /// Template.
    pub template: String,
    /// The challenge consumed, by id.
    pub challenge_id: Option<String>,
    /// Revoked or not.
    pub status: CertStatus,
    /// Revocation time, unix seconds.
    pub revoked_at: Option<i64>,
    /// RFC 5280 reason code.
    pub revocation_reason: Option<i64>,
    /// The serial this certificate renewed.
    pub renews_serial: Option<String>,
    /// SHA-256 of the certificate that signed the request.
    #[serde(skip)]
    pub signer_sha256: Vec<u8>,
    /// DER.
    #[serde(skip)]
    pub der: Vec<u8>,
}

/// What a challenge may be used for (a binding made when it was created).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Binding {
    /// The subject (RFC 4514) the request must carry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The SANs (`DNS:...`, `IP:...`, `email:...`, `URI:...`, `UPN:...`) the request must carry, no more, no less.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sans: Option<Vec<String>>,
    /// The template to issue with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

impl Binding {
    /// Check the binding's parts: a distinguished name, SANs of a known type, a
    /// configured template. The error says what to fix.
    pub fn validate(&self, templates: &crate::templates::Templates) -> Result<(), String> {
        if let Some(s) = &self.subject
            && s.parse::<x509_cert::name::Name>().is_err()
        {
            return Err(format!("subject {s:?} is not a distinguished name like \"CN=device,O=Example\""));
        }
        for san in self.sans.iter().flatten() {
            let ok = san.split_once(':').is_some_and(|(kind, value)| {
                !value.is_empty() && ["DNS", "IP", "email", "URI", "UPN"].iter().any(|k| k.eq_ignore_ascii_case(kind))
            });
            if !ok {
                return Err(format!("SAN {san:?} is not one of DNS:, IP:, email:, URI:, UPN: followed by a value"));
            }
        }
        if let Some(t) = &self.template
            && !templates.contains(t)
        {
            return Err(format!("template {t:?} is not configured"));
        }
        Ok(())
    }

    /// Whether nothing is bound.
    pub fn is_empty(&self) -> bool {
        self.subject.is_none() && self.sans.is_none() && self.template.is_none()
    }
}

/// The life-cycle state of a challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChallengeStatus {
    /// Usable.
    Outstanding,
    /// A certificate was issued with it.
    Used,
    /// Past its validity.
    Expired,
    /// Withdrawn by an administrator.
    Revoked,
}

/// A challenge as stored (never the password).
#[derive(Clone, Debug, serde::Serialize)]
pub struct ChallengeRow {
    /// Public id.
    pub id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Creator.
    pub created_by: String,
    /// State at the time asked.
    pub status: ChallengeStatus,
    /// Serial of the certificate issued with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_serial: Option<String>,
    /// Binding.
    #[serde(flatten)]
    pub binding: Binding,
}

/// What looking a challenge up by password found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChallengeState {
    /// Outstanding: its id and binding.
    Valid(String, Binding),
    /// Not found: never issued, or purged.
    Unknown,
    /// Found but not usable.
    Unusable(ChallengeStatus),
}

/// A user to add.
#[derive(Clone, Copy, Debug)]
pub struct NewUser<'a> {
    /// Name.
    pub name: &'a str,
    /// argon2 PHC string.
    pub password_hash: &'a str,
    /// The sealed NT hash, for NTLM.
    pub nt_secret: Option<&'a [u8]>,
    /// Permissions.
    pub permissions: &'a [String],
}

/// A user of the admin page and API.
#[derive(Clone, Debug, serde::Serialize)]
pub struct UserRow {
    /// Name.
    pub name: String,
    /// argon2 PHC string.
    #[serde(skip)]
    pub password_hash: String,
    /// The NT hash, sealed under the server's key, for a user enabled for NTLM.
    #[serde(skip)]
    pub nt_secret: Option<Vec<u8>>,
    /// Console sessions signed under another epoch are over (logout, password change).
    #[serde(skip)]
    pub session_epoch: i64,
    /// Permissions.
    pub permissions: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// Why recording an issued certificate did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The one-time challenge was used or expired meanwhile (a concurrent request won).
    #[error("the challenge is no longer valid")]
    ChallengeGone,
    /// The serial already exists (a 128-bit collision, or a bug).
    #[error("duplicate serial")]
    DuplicateSerial,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new one-time challenge.
#[derive(Clone, Debug)]
pub struct NewChallenge {
    /// Public id (shown in listings, never the password).
    pub id: String,
    /// HMAC of the password.
    pub hash: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Who asked for it (user name or `cli`).
    pub created_by: String,
    /// What it may be used for.
    pub binding: Binding,
}

/// A request waiting for (or past) an administrator's decision.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PendingRow {
    /// Public id.
    pub id: String,
    /// transactionID.
    pub transaction_id: String,
    /// SHA-256 of the signer certificate.
    #[serde(skip)]
    pub signer_sha256: Vec<u8>,
    /// SHA-256 of the CSR.
    #[serde(skip)]
    pub csr_sha256: Vec<u8>,
    /// The CSR.
    #[serde(skip)]
    pub csr: Vec<u8>,
    /// The request's signer certificate.
    #[serde(skip)]
    pub signer_der: Vec<u8>,
    /// Subject.
    pub subject: String,
    /// SANs.
    pub sans: Vec<String>,
    /// Client address.
    pub requester: String,
    /// Template.
    pub template: String,
    /// PKCSReq or RenewalReq.
    pub message_type: String,
    /// The certificate renewed, for renewals.
    pub renews_serial: Option<String>,
    /// The one-time challenge it used, by id.
    pub challenge_id: Option<String>,
    /// Where it is.
    pub status: PendingStatus,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub decided_at: Option<i64>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// Serial issued.
    pub serial: Option<String>,
}

/// What revoking found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// Now revoked.
    Revoked,
    /// It was already.
    AlreadyRevoked,
    /// No such certificate.
    NotFound,
}

/// A revoked certificate for a CRL.
#[derive(Clone, Debug)]
pub struct RevokedEntry {
    /// Uppercase hex serial.
    pub serial: String,
    /// Unix seconds.
    pub revoked_at: i64,
    /// RFC 5280 reason code.
    pub reason: Option<i64>,
}

/// A stored CRL.
#[derive(Clone, Debug)]
pub struct CrlRow {
    /// CRL number.
    pub number: i64,
    /// Unix seconds.
    pub this_update: i64,
    /// Unix seconds.
    pub next_update: i64,
    /// DER.
    pub der: Vec<u8>,
}

/// One PKIOperation as the audit trail keeps it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AuditEntry {
    /// Random id.
    pub id: String,
    /// Unix seconds.
    pub at: i64,
    /// Client address.
    pub requester: String,
    /// How it came in.
    pub via: Via,
    /// transactionID, when the message was readable.
    pub transaction_id: Option<String>,
    /// PKCSReq, RenewalReq, CertPoll, GetCert, GetCRL.
    pub message_type: Option<String>,
    /// Requested subject.
    pub subject: Option<String>,
    /// Template used.
    pub template: Option<String>,
    /// What became of it.
    pub outcome: AuditOutcome,
    /// failInfo name on failure.
    pub fail_info: Option<String>,
    /// Why, as the log says (never a secret).
    pub reason: Option<String>,
    /// Serial issued or returned.
    pub serial: Option<String>,
    /// The one-time challenge used, by id.
    pub challenge_id: Option<String>,
    /// The certificate renewed.
    pub renews_serial: Option<String>,
}

/// What to look for in the audit trail; empty fields match everything.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Exact transactionID.
    pub transaction_id: Option<String>,
    /// Subject containing this text.
    pub subject: Option<String>,
    /// Exact serial.
    pub serial: Option<String>,
    /// Exact outcome.
    pub outcome: Option<AuditOutcome>,
    /// From (unix seconds, inclusive).
    pub since: Option<i64>,
    /// To (unix seconds, exclusive).
    pub until: Option<i64>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// An earlier request with a transactionID and signer, which a resent request repeats
/// when its CSR is the same.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Earlier {
    /// SHA-256 of its CSR.
    pub csr_sha256: Vec<u8>,
    /// What became of it.
    pub record: EarlierRecord,
}

/// Where an earlier request's outcome is recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EarlierRecord {
    /// Issued: the certificate with this serial.
    Issued(String),
    /// Sent to approval: the pending request with this id.
    Pending(String),
}

/// The persistence seam. Every method is one atomic unit.
#[async_trait]
pub trait Store: Send + Sync {
    /// Record a new challenge unless `max_outstanding` unexpired ones exist already
    /// (then `Ok(false)`). Expired ones are purged first.
    async fn create_challenge(&self, c: NewChallenge, now: i64, max_outstanding: u32) -> StoreResult<bool>;
    /// Look a challenge up by hash without consuming it.
    async fn challenge_state(&self, hash: &[u8], now: i64) -> StoreResult<ChallengeState>;
    /// A challenge by id, with its state at `now`.
    async fn challenge(&self, id: &str, now: i64) -> StoreResult<Option<ChallengeRow>>;
    /// Withdraw an outstanding challenge; `false` when there is none with that id.
    async fn revoke_challenge(&self, id: &str, now: i64) -> StoreResult<bool>;
    /// Outstanding challenges.
    async fn list_challenges(&self, now: i64) -> StoreResult<Vec<ChallengeRow>>;
    /// Record an issued certificate; when `consume` is given, mark that challenge used
    /// (by this serial) in the same transaction, and fail with
    /// [`RecordError::ChallengeGone`] if it is no longer outstanding. Nothing is
    /// recorded then.
    async fn record_issued(&self, rec: IssuedRecord, consume: Option<(&[u8], i64)>) -> Result<(), RecordError>;
    /// What became of earlier requests with this transactionID and signer: their
    /// certificates (newest first), then their pending requests (newest first). The
    /// one with the same CSR is what a resent request gets again.
    async fn earlier(&self, transaction_id: &str, signer_sha256: &[u8]) -> StoreResult<Vec<Earlier>>;
    /// The newest certificate issued for `transaction_id` to `subject`: the answer to
    /// a CertPoll.
    async fn issued_for_poll(&self, transaction_id: &str, subject: &str) -> StoreResult<Option<CertificateRow>>;
    /// A certificate by serial (uppercase hex).
    async fn certificate(&self, serial: &str) -> StoreResult<Option<CertificateRow>>;
    /// The most recent certificates, newest first.
    async fn list_certificates(&self, limit: u32) -> StoreResult<Vec<CertificateRow>>;
    /// Certificates whose subject contains `term` (any case) or whose serial is `term`,
    /// newest first, searched in the database.
    async fn search_certificates(&self, term: &str, limit: u32) -> StoreResult<Vec<CertificateRow>>;
    /// Number of certificates stored.
    async fn count_certificates(&self) -> StoreResult<u64>;
    /// The serial of a certificate issued as a renewal of `serial`, if any.
    async fn renewed_by(&self, serial: &str) -> StoreResult<Option<String>>;
    /// Number of requests waiting for approval, counted in the database.
    async fn count_pending(&self) -> StoreResult<u64>;
    /// Revoke a certificate.
    async fn revoke(&self, serial: &str, reason: Option<i64>, now: i64) -> StoreResult<RevokeOutcome>;
    /// Revoked certificates issued by `ca_id`, for its CRL.
    async fn revoked(&self, ca_id: &str) -> StoreResult<Vec<RevokedEntry>>;
    /// The newest CRL of `ca_id`.
    async fn latest_crl(&self, ca_id: &str) -> StoreResult<Option<CrlRow>>;
    /// Store a CRL; `false` if that number exists already (another instance made it).
    async fn record_crl(&self, ca_id: &str, crl: &CrlRow) -> StoreResult<bool>;
    /// Record a request for approval, consuming its one-time challenge (by hash) in
    /// the same transaction, like [`Store::record_issued`].
    async fn record_pending(&self, row: &PendingRow, consume: Option<(&[u8], i64)>) -> Result<(), RecordError>;
    /// The newest pending request of `transaction_id` for `subject` (CertPoll).
    async fn pending_for_poll(&self, transaction_id: &str, subject: &str) -> StoreResult<Option<PendingRow>>;
    /// A pending request by id.
    async fn pending(&self, id: &str) -> StoreResult<Option<PendingRow>>;
    /// Requests with `status` (all when `None`), newest first.
    async fn list_pending(&self, status: Option<PendingStatus>) -> StoreResult<Vec<PendingRow>>;
    /// Move a `pending` request to `approved` or `rejected`; `false` if it was not pending.
    async fn decide_pending(&self, id: &str, approve: bool, by: &str, now: i64) -> StoreResult<bool>;
    /// Append entries to the audit trail, in one transaction.
    async fn record_audit(&self, entries: &[AuditEntry]) -> StoreResult<()>;
    /// Search the audit trail, newest first.
    async fn query_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>>;
    /// Drop audit entries older than `before`; returns how many.
    async fn purge_audit(&self, before: i64) -> StoreResult<u64>;
    /// Add a user; `false` if the name exists.
    async fn add_user(&self, user: &NewUser<'_>, now: i64) -> StoreResult<bool>;
    /// Replace a user's password hash and sealed NT hash (`None`: no NTLM); `false` if
    /// there is no such user.
    async fn set_user_password(&self, name: &str, password_hash: &str, nt_secret: Option<&[u8]>) -> StoreResult<bool>;
    /// End every console session of `name` (its session epoch moves on); false when
    /// there is no such user. A password change does the same.
    async fn end_sessions(&self, name: &str) -> StoreResult<bool>;
    /// Remove a user; `false` if there is no such user.
    async fn remove_user(&self, name: &str) -> StoreResult<bool>;
    /// A user by name.
    async fn user(&self, name: &str) -> StoreResult<Option<UserRow>>;
    /// Every user.
    async fn list_users(&self) -> StoreResult<Vec<UserRow>>;
    /// A named setting.
    async fn setting(&self, name: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Set a named setting.
    async fn put_setting(&self, name: &str, value: &[u8], now: i64) -> StoreResult<()>;
    /// Whether the database answers.
    async fn ping(&self) -> StoreResult<()>;
}

/// How long used, expired and revoked challenges are kept for state queries.
pub const CHALLENGE_KEEP_SECS: i64 = 7 * 86_400;

/// A challenge's state from its columns (shared by every backend).
pub fn challenge_status(used_at: Option<i64>, revoked_at: Option<i64>, expires_at: i64, now: i64) -> ChallengeStatus {
    if used_at.is_some() {
        ChallengeStatus::Used
    } else if revoked_at.is_some() {
        ChallengeStatus::Revoked
    } else if expires_at <= now {
        ChallengeStatus::Expired
    } else {
        ChallengeStatus::Outstanding
    }
}

/// Open the store a URL names, running migrations when `migrate` is set.
pub async fn open(url: &str, migrate: bool) -> StoreResult<Arc<dyn Store>> {
    let max = if url.starts_with("sqlite:") { 8 } else { 16 };
    Ok(Arc::new(SqlStore::open(url, migrate, max).await?))
}
