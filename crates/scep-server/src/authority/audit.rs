//! The audit trail's writer: entries go through a queue to a task that stores them
//! in batches, so that recording never holds up an enrollment.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::store::{AuditEntry, AuditOutcome, Store, Via};

/// Entries queued: past it, failure rows are counted instead, and other rows wait.
const QUEUE: usize = 10_000;

/// Most entries per commit.
const BATCH: usize = 256;

/// How long the writer lets entries gather after the first one arrives: one commit
/// (one fsync, one turn of the write lock) per interval instead of one per request,
/// so that the audit trail does not compete with certificate records for the disk.
const LINGER: std::time::Duration = std::time::Duration::from_millis(20);

/// What a request's handling learns on the way, for its audit entry.
#[derive(Default, Debug)]
pub struct Note {
    /// Requested subject.
    pub subject: Option<String>,
    /// Template.
    pub template: Option<String>,
    /// Serial issued or returned.
    pub serial: Option<String>,
    /// Whether a certificate was issued (rather than returned again).
    pub issued: bool,
    /// The one-time challenge used, by id.
    pub challenge_id: Option<String>,
    /// The certificate renewed.
    pub renews_serial: Option<String>,
    /// The request's CSR, for the webhook's failure notification (not in the trail).
    pub csr: Option<Vec<u8>>,
}

/// A shared, lockable note.
pub type SharedNote = Arc<Mutex<Note>>;

/// Update a note.
pub fn note(n: &SharedNote, f: impl FnOnce(&mut Note)) {
    f(&mut n.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
}

/// The sending side.
#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<AuditEntry>,
    failures: Arc<FailureBudget>,
}

/// Failure rows written per address (IPv6 per /64) per window; past it, they are
/// counted and written as one `suppressed` row when the window ends. A flood of
/// unreadable messages (no RSA cost to the sender) cannot fill the trail.
const FAILURE_ROWS: u32 = 20;
/// The window of [`FAILURE_ROWS`].
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses whose failure rows are counted; past it, failures from new addresses
/// are counted in one row without an address.
const MAX_ADDRESSES: usize = 100_000;
/// Longest text kept in a field of an audit row (characters).
pub const MAX_FIELD: usize = 1024;

#[derive(Default)]
struct FailureBudget {
    windows: Mutex<HashMap<IpAddr, Window>>,
    /// Failure rows not recorded: the queue was full, or too many addresses.
    dropped: AtomicU64,
}

struct Window {
    start: Instant,
    written: u32,
    suppressed: u64,
}

impl FailureBudget {
    /// Whether a failure row from `requester` is written (else it is counted).
    fn admit(&self, requester: &str) -> bool {
        let Ok(ip) = requester.parse::<IpAddr>() else { return true };
        let key = super::throttle::bucket(ip);
        let mut map = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&key) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let w = map.entry(key).or_insert(Window { start: Instant::now(), written: 0, suppressed: 0 });
        if w.written < FAILURE_ROWS {
            w.written += 1;
            true
        } else {
            w.suppressed += 1;
            false
        }
    }

    /// Rows for the windows that ended (and for dropped rows), the windows forgotten.
    fn summaries(&self, at: i64) -> Vec<AuditEntry> {
        let mut rows = Vec::new();
        let mut map = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|ip, w| {
            if w.start.elapsed() < FAILURE_WINDOW {
                return true;
            }
            if w.suppressed > 0 {
                rows.push(suppressed_row(
                    at,
                    &ip.to_string(),
                    format!(
                        "{} more failed or unreadable requests from this address within {} s, not recorded one by one",
                        w.suppressed,
                        FAILURE_WINDOW.as_secs()
                    ),
                ));
            }
            false
        });
        drop(map);
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            rows.push(suppressed_row(
                at,
                "-",
                format!(
                    "{dropped} failed or unreadable requests not recorded: the audit queue or address table was full"
                ),
            ));
        }
        rows
    }
}

fn suppressed_row(at: i64, requester: &str, reason: String) -> AuditEntry {
    AuditEntry {
        id: hex::encode(scep::crypto::random_bytes(8).unwrap_or_default()),
        at,
        requester: requester.to_owned(),
        via: Via::None,
        transaction_id: None,
        message_type: None,
        subject: None,
        template: None,
        outcome: AuditOutcome::Suppressed,
        fail_info: None,
        reason: Some(reason),
        serial: None,
        challenge_id: None,
        renews_serial: None,
    }
}

/// Whether an entry records a failure (rate-limited) rather than an outcome that must
/// never be lost (a certificate issued or returned, a request waiting).
fn is_failure(e: &AuditEntry) -> bool {
    e.outcome.is_failure()
}

impl AuditSink {
    /// Start the writer task on `store`.
    pub fn start(store: Arc<dyn Store>, clock: Arc<dyn super::Clock>) -> Self {
        let (tx, mut rx) = mpsc::channel::<AuditEntry>(QUEUE);
        let failures = Arc::new(FailureBudget::default());
        let budget = failures.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            let mut tick = tokio::time::interval(FAILURE_WINDOW / 4);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    n = rx.recv_many(&mut batch, BATCH) => {
                        if n == 0 {
                            break;
                        }
                        if batch.len() < BATCH {
                            tokio::time::sleep(LINGER).await;
                            while batch.len() < BATCH {
                                let Ok(entry) = rx.try_recv() else { break };
                                batch.push(entry);
                            }
                        }
                    }
                    _ = tick.tick() => {
                        let at = clock.now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                        batch.extend(budget.summaries(i64::try_from(at).unwrap_or(i64::MAX)));
                    }
                }
                if batch.is_empty() {
                    continue;
                }
                if let Err(err) = store.record_audit(&batch).await {
                    tracing::warn!(error = %err, entries = batch.len(), "cannot record audit entries");
                }
                batch.clear();
            }
        });
        AuditSink { tx, failures }
    }

    /// Queue an entry. An issuance, a returned certificate or a pending request waits
    /// for room in the queue (it is never dropped); failure rows are rate-limited per
    /// address and counted, not queued, when the queue is full.
    pub async fn record(&self, entry: AuditEntry) {
        if !is_failure(&entry) {
            if self.tx.send(entry).await.is_err() {
                tracing::warn!("the audit writer has stopped: an audit entry was not recorded");
            }
            return;
        }
        if !self.failures.admit(&entry.requester) {
            return;
        }
        if self.tx.try_send(entry).is_err() {
            self.failures.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_rows_are_limited_per_address_and_summarised() {
        let b = FailureBudget::default();
        for _ in 0..FAILURE_ROWS {
            assert!(b.admit("2001:db8::1"));
        }
        assert!(!b.admit("2001:db8::2"), "the same /64");
        assert!(b.admit("192.0.2.1"));
        // Windows still open: nothing to summarise.
        assert!(b.summaries(0).is_empty());
        for w in b.windows.lock().unwrap().values_mut() {
            w.start -= FAILURE_WINDOW;
        }
        let rows = b.summaries(0);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].requester, "2001:db8::");
        assert!(rows[0].reason.as_deref().unwrap().starts_with("1 more"));
        assert!(b.admit("2001:db8::1"), "a new window");
    }
}
