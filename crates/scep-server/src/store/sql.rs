//! The store on SQL: SQLite (embedded, WAL mode) or PostgreSQL (several instances),
//! one implementation through sqlx's `Any` driver. Statements use `$N` placeholders,
//! which both understand; the few differences are in [`Backend`].

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{
    AnyPool, Executor, Row,
    any::{AnyPoolOptions, AnyRow},
    migrate::{Migration, MigrationSource, MigrationType, Migrator},
};

use super::{
    AuditEntry, AuditFilter, Binding, CertificateRow, ChallengeRow, ChallengeState, ChallengeStatus, CrlRow, Earlier,
    EarlierRecord, IssuedRecord, NewChallenge, NewUser, PendingRow, RecordError, RevokeOutcome, RevokedEntry, Store,
    StoreError, StoreResult, UserRow,
};
use crate::vocab::{AuditOutcome, PendingStatus};

/// Migrations compiled into the binary, so that one file is all there is to deploy.
#[derive(Debug)]
struct Embedded(&'static [(i64, &'static str, &'static str)]);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> futures_core::future::BoxFuture<'static, Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(v, d, sql)| {
                    Migration::new(*v, (*d).into(), MigrationType::Simple, sqlx::SqlSafeStr::into_sql_str(*sql), false)
                })
                .collect())
        })
    }
}

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/sqlite/0001_init.sql")),
    (2, "user ntlm", include_str!("../../migrations/sqlite/0002_user_ntlm.sql")),
    (3, "user sessions", include_str!("../../migrations/sqlite/0003_user_sessions.sql")),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/postgres/0001_init.sql")),
    (2, "user ntlm", include_str!("../../migrations/postgres/0002_user_ntlm.sql")),
    (3, "user sessions", include_str!("../../migrations/postgres/0003_user_sessions.sql")),
];

/// Which database is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: one writer at a time; write transactions take the lock up front.
    Sqlite,
    /// PostgreSQL: row locks; a transaction-scoped advisory lock where a count must
    /// not race (the challenge cache limit).
    Postgres,
}

/// The SQL store.
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer: writers of this process queue here instead of
    /// sleeping in SQLite's busy handler (other processes still meet busy_timeout).
    writer: tokio::sync::Mutex<()>,
}

/// Advisory lock key serialising challenge creation across PostgreSQL instances.
const CHALLENGE_LOCK: i64 = 0x5CE9_0001;

/// Create the SQLite file of `url` readable by its owner only (it holds the audit
/// trail, sealed secrets and password hashes; SQLite gives the -wal and -shm files
/// the same mode). An existing file is left as it is, with a warning when others can
/// read it.
fn create_private(url: &str) -> StoreResult<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let rest = url.trim_start_matches("sqlite:");
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(':') || url.contains("mode=memory") {
        return Ok(());
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
                tracing::warn!(path, "the database file can be read by other users: chmod 600 it");
            }
            Ok(())
        }
        Err(e) => Err(StoreError::Io(e)),
    }
}

impl SqlStore {
    /// Open `sqlite://PATH` (created if missing) or `postgres://...`, optionally migrating.
    pub async fn open(url: &str, migrate: bool, max_connections: u32) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if url.starts_with("sqlite:") {
            create_private(url)?;
            let url = if url.contains('?') { url.to_owned() } else { format!("{url}?mode=rwc") };
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let mut opts = AnyPoolOptions::new().max_connections(max_connections).acquire_timeout(Duration::from_secs(30));
        if backend == Backend::Sqlite {
            // A SQLite connection is a file handle: it cannot drop like a socket, and a
            // health check before each use is a round trip to its worker thread.
            opts = opts.test_before_acquire(false).after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            });
        }
        let pool = opts.connect(&url).await?;
        let store = SqlStore { pool, backend, writer: tokio::sync::Mutex::new(()) };
        if migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Run the migrations of this backend.
    pub async fn migrate(&self) -> StoreResult<()> {
        let m = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        Migrator::new(Embedded(m)).await?.run(&self.pool).await?;
        Ok(())
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A write transaction: SQLite takes the write lock first, so that reads inside it
    /// cannot go stale before the write; the guard keeps this process's writers in line.
    async fn begin_write(&self) -> Result<WriteTx<'_>, sqlx::Error> {
        let guard = self.writer_guard().await;
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTx { tx, _guard: guard })
    }

    /// On SQLite, this process's writer lock (PostgreSQL needs none).
    async fn writer_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.writer.lock().await),
            Backend::Postgres => None,
        }
    }
}

/// A write transaction and, on SQLite, this process's writer lock.
struct WriteTx<'a> {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _guard: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl WriteTx<'_> {
    async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

fn row_to_cert(r: &AnyRow) -> StoreResult<CertificateRow> {
    let sans: String = r.try_get("sans")?;
    Ok(CertificateRow {
        serial: r.try_get("serial")?,
        ca_id: r.try_get("ca_id")?,
        subject: r.try_get("subject")?,
        sans: json(&sans, "sans")?,
        not_before: r.try_get("not_before")?,
        not_after: r.try_get("not_after")?,
        issued_at: r.try_get("issued_at")?,
        transaction_id: r.try_get("transaction_id")?,
        requester: r.try_get("requester")?,
        template: r.try_get("template")?,
        challenge_id: r.try_get("challenge_id")?,
        status: word(r, "status")?,
        revoked_at: r.try_get("revoked_at")?,
        revocation_reason: r.try_get("revocation_reason")?,
        renews_serial: r.try_get("renews_serial")?,
        signer_sha256: r.try_get("signer_sha256")?,
        der: r.try_get("der")?,
    })
}

/// A column holding one of a vocabulary's words; anything else is a corrupt row.
fn word<T: std::str::FromStr>(r: &AnyRow, column: &'static str) -> StoreResult<T> {
    let v: String = r.try_get(column)?;
    v.parse().map_err(|_| StoreError::Corrupt(column))
}

/// A column holding JSON; JSON that does not read is a corrupt row, never "nothing".
fn json<T: serde::de::DeserializeOwned>(v: &str, column: &'static str) -> StoreResult<T> {
    serde_json::from_str(v).map_err(|_| StoreError::Corrupt(column))
}

const CHALLENGE_COLUMNS: &str =
    "id, created_at, expires_at, created_by, bound_subject, bound_sans, template, used_at, used_serial, revoked_at";

fn row_to_challenge(r: &AnyRow, now: i64) -> StoreResult<ChallengeRow> {
    let expires_at: i64 = r.try_get("expires_at")?;
    let used_at: Option<i64> = r.try_get("used_at")?;
    let revoked_at: Option<i64> = r.try_get("revoked_at")?;
    let sans: Option<String> = r.try_get("bound_sans")?;
    Ok(ChallengeRow {
        id: r.try_get("id")?,
        created_at: r.try_get("created_at")?,
        expires_at,
        created_by: r.try_get("created_by")?,
        status: super::challenge_status(used_at, revoked_at, expires_at, now),
        used_serial: r.try_get("used_serial")?,
        binding: Binding {
            subject: r.try_get("bound_subject")?,
            sans: sans.map(|s| json(&s, "bound_sans")).transpose()?,
            template: r.try_get("template")?,
        },
    })
}

const PENDING_COLUMNS: &str = "id, transaction_id, signer_sha256, csr_sha256, csr, signer_der, subject, sans, requester, \
     template, message_type, renews_serial, challenge_id, status, created_at, decided_at, decided_by, serial";

fn row_to_pending(r: &AnyRow) -> StoreResult<PendingRow> {
    let sans: String = r.try_get("sans")?;
    Ok(PendingRow {
        id: r.try_get("id")?,
        transaction_id: r.try_get("transaction_id")?,
        signer_sha256: r.try_get("signer_sha256")?,
        csr_sha256: r.try_get("csr_sha256")?,
        csr: r.try_get("csr")?,
        signer_der: r.try_get("signer_der")?,
        subject: r.try_get("subject")?,
        sans: json(&sans, "sans")?,
        requester: r.try_get("requester")?,
        template: r.try_get("template")?,
        message_type: r.try_get("message_type")?,
        renews_serial: r.try_get("renews_serial")?,
        challenge_id: r.try_get("challenge_id")?,
        status: word(r, "status")?,
        created_at: r.try_get("created_at")?,
        decided_at: r.try_get("decided_at")?,
        decided_by: r.try_get("decided_by")?,
        serial: r.try_get("serial")?,
    })
}

fn row_to_user(r: &AnyRow) -> StoreResult<UserRow> {
    let perms: String = r.try_get("permissions")?;
    Ok(UserRow {
        name: r.try_get("name")?,
        password_hash: r.try_get("password_hash")?,
        nt_secret: r.try_get("nt_secret")?,
        session_epoch: r.try_get("session_epoch")?,
        permissions: perms.split(',').filter(|p| !p.is_empty()).map(str::to_owned).collect(),
        created_at: r.try_get("created_at")?,
    })
}

const CERT_COLUMNS: &str = "serial, ca_id, subject, sans, not_before, not_after, issued_at, transaction_id, requester, \
     template, challenge_id, status, revoked_at, revocation_reason, renews_serial, signer_sha256, der";

#[async_trait]
impl Store for SqlStore {
    async fn create_challenge(&self, c: NewChallenge, now: i64, max_outstanding: u32) -> StoreResult<bool> {
        // BEGIN IMMEDIATE takes the write lock first, so the count and the insert
        // cannot interleave with another writer's.
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(CHALLENGE_LOCK).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM challenges WHERE expires_at <= $1")
            .bind(now - super::CHALLENGE_KEEP_SECS)
            .execute(&mut *tx)
            .await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM challenges WHERE used_at IS NULL AND revoked_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        if n >= i64::from(max_outstanding) {
            tx.commit().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO challenges (id, hash, created_at, expires_at, created_by, bound_subject, bound_sans, template) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&c.id)
        .bind(&c.hash)
        .bind(c.created_at)
        .bind(c.expires_at)
        .bind(&c.created_by)
        .bind(&c.binding.subject)
        .bind(c.binding.sans.as_ref().map(|s| serde_json::to_string(s).unwrap_or_default()))
        .bind(&c.binding.template)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn challenge_state(&self, hash: &[u8], now: i64) -> StoreResult<ChallengeState> {
        let sql = format!("SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE hash = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(hash).fetch_optional(&self.pool).await?;
        Ok(match row.as_ref().map(|r| row_to_challenge(r, now)).transpose()? {
            None => ChallengeState::Unknown,
            Some(c) if c.status == ChallengeStatus::Outstanding => ChallengeState::Valid(c.id, c.binding),
            Some(c) => ChallengeState::Unusable(c.status),
        })
    }

    async fn challenge(&self, id: &str, now: i64) -> StoreResult<Option<ChallengeRow>> {
        let sql = format!("SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(|r| row_to_challenge(r, now)).transpose()
    }

    async fn revoke_challenge(&self, id: &str, now: i64) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE challenges SET revoked_at = $1 WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $3",
        )
        .bind(now)
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn list_challenges(&self, now: i64) -> StoreResult<Vec<ChallengeRow>> {
        let sql = format!(
            "SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE used_at IS NULL AND revoked_at IS NULL AND expires_at > $1 ORDER BY created_at"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).fetch_all(&self.pool).await?;
        rows.iter().map(|r| row_to_challenge(r, now)).collect()
    }

    async fn record_issued(&self, rec: IssuedRecord, consume: Option<(&[u8], i64)>) -> Result<(), RecordError> {
        if consume.is_none() && rec.pending_id.is_none() {
            // One statement is its own transaction: no BEGIN/COMMIT round trips.
            let _guard = self.writer_guard().await;
            return insert_certificate(&self.pool, &rec, None).await;
        }
        let mut tx = self.begin_write().await.map_err(super::StoreError::from)?;
        let mut challenge_id: Option<String> = None;
        if let Some((hash, now)) = consume {
            let id: Option<String> = sqlx::query_scalar(
                "UPDATE challenges SET used_at = $1, used_serial = $2 \
                 WHERE hash = $3 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $4 RETURNING id",
            )
            .bind(now)
            .bind(&rec.serial)
            .bind(hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(super::StoreError::from)?;
            match id {
                Some(id) => challenge_id = Some(id),
                None => return Err(RecordError::ChallengeGone),
            }
        }
        insert_certificate(&mut *tx, &rec, challenge_id.as_deref()).await?;
        if let Some(pid) = &rec.pending_id {
            let done = sqlx::query(
                "UPDATE pending_requests SET status = 'issued', serial = $1 WHERE id = $2 AND status = 'approved'",
            )
            .bind(&rec.serial)
            .bind(pid)
            .execute(&mut *tx)
            .await
            .map_err(super::StoreError::from)?;
            if done.rows_affected() != 1 {
                // Another instance completed it first: keep its certificate, not ours.
                return Err(RecordError::ChallengeGone);
            }
            // The challenge the request used at submission now points at its certificate.
            sqlx::query(
                "UPDATE certificates SET challenge_id = (SELECT challenge_id FROM pending_requests WHERE id = $1) WHERE serial = $2",
            )
            .bind(pid)
            .bind(&rec.serial)
            .execute(&mut *tx)
            .await
            .map_err(super::StoreError::from)?;
            sqlx::query(
                "UPDATE challenges SET used_serial = $1 WHERE id = (SELECT challenge_id FROM pending_requests WHERE id = $2)",
            )
            .bind(&rec.serial)
            .bind(pid)
            .execute(&mut *tx)
            .await
            .map_err(super::StoreError::from)?;
        }
        tx.commit().await.map_err(super::StoreError::from)?;
        Ok(())
    }

    async fn earlier(&self, transaction_id: &str, signer_sha256: &[u8]) -> StoreResult<Vec<Earlier>> {
        let rows: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
            "SELECT kind, id, csr_sha256 FROM (\
             SELECT 'issued' AS kind, serial AS id, csr_sha256, issued_at AS at FROM certificates \
             WHERE transaction_id = $1 AND signer_sha256 = $2 \
             UNION ALL SELECT 'pending' AS kind, id, csr_sha256, created_at AS at FROM pending_requests \
             WHERE transaction_id = $1 AND signer_sha256 = $2) AS earlier \
             ORDER BY kind, at DESC",
        )
        .bind(transaction_id)
        .bind(signer_sha256)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(kind, id, csr_sha256)| Earlier {
                csr_sha256,
                record: if kind == "issued" { EarlierRecord::Issued(id) } else { EarlierRecord::Pending(id) },
            })
            .collect())
    }

    async fn issued_for_poll(&self, transaction_id: &str, subject: &str) -> StoreResult<Option<CertificateRow>> {
        let sql = format!(
            "SELECT {CERT_COLUMNS} FROM certificates WHERE transaction_id = $1 AND subject = $2 ORDER BY issued_at DESC LIMIT 1"
        );
        let row =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(transaction_id).bind(subject).fetch_optional(&self.pool).await?;
        row.as_ref().map(row_to_cert).transpose()
    }

    async fn certificate(&self, serial: &str) -> StoreResult<Option<CertificateRow>> {
        let sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE serial = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(serial).fetch_optional(&self.pool).await?;
        row.as_ref().map(row_to_cert).transpose()
    }

    async fn list_certificates(&self, limit: u32) -> StoreResult<Vec<CertificateRow>> {
        let sql = format!("SELECT {CERT_COLUMNS} FROM certificates ORDER BY issued_at DESC, serial LIMIT $1");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(i64::from(limit)).fetch_all(&self.pool).await?;
        rows.iter().map(row_to_cert).collect()
    }

    async fn search_certificates(&self, term: &str, limit: u32) -> StoreResult<Vec<CertificateRow>> {
        // LIKE's wildcards in the term are matched as themselves; the case is folded for
        // ASCII only, as SQLite's LOWER does.
        let pattern =
            format!("%{}%", term.to_ascii_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let sql = format!(
            "SELECT {CERT_COLUMNS} FROM certificates WHERE LOWER(subject) LIKE $1 ESCAPE '\\' OR serial = $2 \
             ORDER BY issued_at DESC, serial LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(pattern)
            .bind(term.replace(':', "").to_ascii_uppercase())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_cert).collect()
    }

    async fn count_certificates(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM certificates").fetch_one(&self.pool).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn renewed_by(&self, serial: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar("SELECT serial FROM certificates WHERE renews_serial = $1 ORDER BY issued_at LIMIT 1")
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn count_pending(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pending_requests WHERE status = 'pending'")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn revoke(&self, serial: &str, reason: Option<i64>, now: i64) -> StoreResult<RevokeOutcome> {
        let r = sqlx::query(
            "UPDATE certificates SET status = 'revoked', revoked_at = $1, revocation_reason = $2 WHERE serial = $3 AND status = 'valid'",
        )
        .bind(now)
        .bind(reason)
        .bind(serial)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 1 {
            return Ok(RevokeOutcome::Revoked);
        }
        let exists: Option<String> = sqlx::query_scalar("SELECT status FROM certificates WHERE serial = $1")
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?;
        Ok(if exists.is_some() { RevokeOutcome::AlreadyRevoked } else { RevokeOutcome::NotFound })
    }

    async fn revoked(&self, ca_id: &str) -> StoreResult<Vec<RevokedEntry>> {
        let rows = sqlx::query(
            "SELECT serial, revoked_at, revocation_reason FROM certificates WHERE ca_id = $1 AND status = 'revoked' ORDER BY revoked_at, serial",
        )
        .bind(ca_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RevokedEntry {
                    serial: r.try_get("serial")?,
                    revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.unwrap_or(0),
                    reason: r.try_get("revocation_reason")?,
                })
            })
            .collect()
    }

    async fn latest_crl(&self, ca_id: &str) -> StoreResult<Option<CrlRow>> {
        let row = sqlx::query(
            "SELECT number, this_update, next_update, der FROM crls WHERE ca_id = $1 ORDER BY number DESC LIMIT 1",
        )
        .bind(ca_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(CrlRow {
                number: r.try_get("number")?,
                this_update: r.try_get("this_update")?,
                next_update: r.try_get("next_update")?,
                der: r.try_get("der")?,
            })
        })
        .transpose()
    }

    async fn record_crl(&self, ca_id: &str, crl: &CrlRow) -> StoreResult<bool> {
        let r = sqlx::query(
            "INSERT INTO crls (ca_id, number, this_update, next_update, der) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(ca_id)
        .bind(crl.number)
        .bind(crl.this_update)
        .bind(crl.next_update)
        .bind(&crl.der)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn record_pending(&self, row: &PendingRow, consume: Option<(&[u8], i64)>) -> Result<(), RecordError> {
        let mut tx = self.begin_write().await.map_err(super::StoreError::from)?;
        if let Some((hash, now)) = consume {
            let done = sqlx::query(
                "UPDATE challenges SET used_at = $1 WHERE hash = $2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $3",
            )
            .bind(now)
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(super::StoreError::from)?;
            if done.rows_affected() != 1 {
                return Err(RecordError::ChallengeGone);
            }
        }
        sqlx::query(
            "INSERT INTO pending_requests (id, transaction_id, signer_sha256, csr_sha256, csr, signer_der, subject, sans, \
             requester, template, message_type, renews_serial, challenge_id, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&row.id)
        .bind(&row.transaction_id)
        .bind(&row.signer_sha256)
        .bind(&row.csr_sha256)
        .bind(&row.csr)
        .bind(&row.signer_der)
        .bind(&row.subject)
        .bind(serde_json::to_string(&row.sans).unwrap_or_else(|_| "[]".into()))
        .bind(&row.requester)
        .bind(&row.template)
        .bind(&row.message_type)
        .bind(&row.renews_serial)
        .bind(&row.challenge_id)
        .bind(row.status.as_str())
        .bind(row.created_at)
        .execute(&mut *tx)
        .await
        .map_err(super::StoreError::from)?;
        tx.commit().await.map_err(super::StoreError::from)?;
        Ok(())
    }

    async fn pending_for_poll(&self, transaction_id: &str, subject: &str) -> StoreResult<Option<PendingRow>> {
        let sql = format!(
            "SELECT {PENDING_COLUMNS} FROM pending_requests WHERE transaction_id = $1 AND subject = $2 ORDER BY created_at DESC LIMIT 1"
        );
        let row =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(transaction_id).bind(subject).fetch_optional(&self.pool).await?;
        row.as_ref().map(row_to_pending).transpose()
    }

    async fn pending(&self, id: &str) -> StoreResult<Option<PendingRow>> {
        let sql = format!("SELECT {PENDING_COLUMNS} FROM pending_requests WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(row_to_pending).transpose()
    }

    async fn list_pending(&self, status: Option<PendingStatus>) -> StoreResult<Vec<PendingRow>> {
        let sql = format!(
            "SELECT {PENDING_COLUMNS} FROM pending_requests WHERE (CAST($1 AS TEXT) IS NULL OR status = $2) ORDER BY created_at DESC LIMIT 1000"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(status.map(PendingStatus::as_str))
            .bind(status.map(PendingStatus::as_str))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_pending).collect()
    }

    async fn decide_pending(&self, id: &str, approve: bool, by: &str, now: i64) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE pending_requests SET status = $1, decided_at = $2, decided_by = $3 WHERE id = $4 AND status = 'pending'",
        )
        .bind(if approve { "approved" } else { "rejected" })
        .bind(now)
        .bind(by)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn record_audit(&self, entries: &[AuditEntry]) -> StoreResult<()> {
        // One commit (one fsync) for the whole batch.
        let mut tx = self.begin_write().await?;
        for e in entries {
            sqlx::query(
                "INSERT INTO audit (id, at, requester, via, transaction_id, message_type, subject, template, outcome, \
                 fail_info, reason, serial, challenge_id, renews_serial) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(&e.id)
            .bind(e.at)
            .bind(&e.requester)
            .bind(e.via.as_str())
            .bind(&e.transaction_id)
            .bind(&e.message_type)
            .bind(&e.subject)
            .bind(&e.template)
            .bind(e.outcome.as_str())
            .bind(&e.fail_info)
            .bind(&e.reason)
            .bind(&e.serial)
            .bind(&e.challenge_id)
            .bind(&e.renews_serial)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn query_audit(&self, f: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, requester, via, transaction_id, message_type, subject, template, outcome, fail_info, reason, \
             serial, challenge_id, renews_serial FROM audit \
             WHERE (CAST($1 AS TEXT) IS NULL OR transaction_id = $2) \
             AND (CAST($3 AS TEXT) IS NULL OR subject LIKE $4) \
             AND (CAST($5 AS TEXT) IS NULL OR serial = $6) \
             AND (CAST($7 AS TEXT) IS NULL OR outcome = $8) \
             AND at >= $9 AND at < $10 \
             ORDER BY at DESC, id LIMIT $11",
        )
        .bind(&f.transaction_id)
        .bind(&f.transaction_id)
        .bind(&f.subject)
        .bind(f.subject.as_ref().map(|s| format!("%{}%", s.replace(['%', '_'], ""))))
        .bind(&f.serial)
        .bind(&f.serial)
        .bind(f.outcome.map(AuditOutcome::as_str))
        .bind(f.outcome.map(AuditOutcome::as_str))
        .bind(f.since.unwrap_or(i64::MIN))
        .bind(f.until.unwrap_or(i64::MAX))
        .bind(i64::from(if f.limit == 0 { 100 } else { f.limit }))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    requester: r.try_get("requester")?,
                    via: word(r, "via")?,
                    transaction_id: r.try_get("transaction_id")?,
                    message_type: r.try_get("message_type")?,
                    subject: r.try_get("subject")?,
                    template: r.try_get("template")?,
                    outcome: word(r, "outcome")?,
                    fail_info: r.try_get("fail_info")?,
                    reason: r.try_get("reason")?,
                    serial: r.try_get("serial")?,
                    challenge_id: r.try_get("challenge_id")?,
                    renews_serial: r.try_get("renews_serial")?,
                })
            })
            .collect()
    }

    async fn purge_audit(&self, before: i64) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM audit WHERE at < $1").bind(before).execute(&self.pool).await?.rows_affected())
    }

    async fn add_user(&self, user: &NewUser<'_>, now: i64) -> StoreResult<bool> {
        let r = sqlx::query(
            "INSERT INTO users (name, password_hash, nt_secret, permissions, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(user.name)
        .bind(user.password_hash)
        .bind(user.nt_secret)
        .bind(user.permissions.join(","))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn set_user_password(&self, name: &str, password_hash: &str, nt_secret: Option<&[u8]>) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE users SET password_hash = $1, nt_secret = $2, session_epoch = session_epoch + 1 WHERE name = $3",
        )
        .bind(password_hash)
        .bind(nt_secret)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn end_sessions(&self, name: &str) -> StoreResult<bool> {
        let r = sqlx::query("UPDATE users SET session_epoch = session_epoch + 1 WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn remove_user(&self, name: &str) -> StoreResult<bool> {
        let r = sqlx::query("DELETE FROM users WHERE name = $1").bind(name).execute(&self.pool).await?;
        Ok(r.rows_affected() == 1)
    }

    async fn user(&self, name: &str) -> StoreResult<Option<UserRow>> {
        let row = sqlx::query(
            "SELECT name, password_hash, nt_secret, session_epoch, permissions, created_at FROM users WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_to_user).transpose()
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRow>> {
        let rows = sqlx::query(
            "SELECT name, password_hash, nt_secret, session_epoch, permissions, created_at FROM users ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_user).collect()
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn put_setting(&self, name: &str, value: &[u8], now: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO settings (name, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(value)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Insert an issued certificate; a serial already taken is `DuplicateSerial`.
async fn insert_certificate<'e, E>(db: E, rec: &IssuedRecord, challenge_id: Option<&str>) -> Result<(), RecordError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let res = sqlx::query(
        "INSERT INTO certificates (serial, ca_id, subject, sans, not_before, not_after, issued_at, transaction_id, \
         message_type, signer_sha256, csr_sha256, requester, template, challenge_id, renews_serial, der) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(&rec.serial)
    .bind(&rec.ca_id)
    .bind(&rec.subject)
    .bind(serde_json::to_string(&rec.sans).unwrap_or_else(|_| "[]".into()))
    .bind(rec.not_before)
    .bind(rec.not_after)
    .bind(rec.issued_at)
    .bind(&rec.transaction_id)
    .bind(&rec.message_type)
    .bind(&rec.signer_sha256)
    .bind(&rec.csr_sha256)
    .bind(&rec.requester)
    .bind(&rec.template)
    .bind(challenge_id)
    .bind(&rec.renews_serial)
    .bind(&rec.der)
    .execute(db)
    .await;
    match res {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(RecordError::DuplicateSerial),
        Err(e) => Err(super::StoreError::from(e).into()),
    }
}
