//! The audit trail's writer: entries go through a queue to a task that stores them
//! in batches, so that recording never holds up an enrollment.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::store::{AuditEntry, Store};

/// Entries queued before new ones are dropped (with a warning).
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
}

impl AuditSink {
    /// Start the writer task on `store`.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (tx, mut rx) = mpsc::channel::<AuditEntry>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                if batch.len() < BATCH {
                    tokio::time::sleep(LINGER).await;
                    while batch.len() < BATCH {
                        let Ok(entry) = rx.try_recv() else { break };
                        batch.push(entry);
                    }
                }
                if let Err(err) = store.record_audit(&batch).await {
                    tracing::warn!(error = %err, entries = batch.len(), "cannot record audit entries");
                }
                batch.clear();
            }
        });
        AuditSink { tx }
    }

    /// Queue an entry.
    pub fn record(&self, entry: AuditEntry) {
        if self.tx.try_send(entry).is_err() {
            tracing::warn!("audit queue full: an audit entry was dropped");
        }
    }
}
