//! `scep bench`: a load generator for any SCEP server. Keys, CSRs, signer
//! certificates and challenges are made before the clock runs; only the
//! PKIOperation round trips are timed, by N workers over keep-alive HTTP. Replies
//! are checked afterwards, and every issued serial number is tracked so that a server
//! that hands out one serial twice is caught.
//!
//! Work goes in rounds: prepare a batch (untimed), send it (timed), check it
//! (untimed). Rounds let a server with a small challenge cache (NDES keeps five)
//! be measured with a fresh challenge per enrollment.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use scep::attr::{ContentCipher, MessageType, Nonce, TransactionId};
use scep::caps::Capability;
use scep::crypto::{KeyType, PrivateKey};
use scep::request::RequestBuilder;
use scep::response::{Outcome, ParsedCertRep};
use scep::signer::SignerCert;
use serde::Serialize;
use x509_cert::{Certificate, name::Name};

use crate::admin::{self, AdminError};
use crate::check::ChallengeSource;
use crate::client::{CaCerts, ScepClient, ScepError, random_transaction_id};
use crate::http::{HttpClient, HttpError};

/// Most keys generated up front; enrollments beyond reuse them with new subjects.
const KEY_POOL_MAX: usize = 256;

/// When to stop.
#[derive(Clone, Copy, Debug)]
pub enum Limit {
    /// This many enrollments.
    Count(usize),
    /// Send for this long (timed time only).
    Duration(Duration),
}

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Concurrent workers.
    pub concurrency: usize,
    /// Count or duration.
    pub limit: Limit,
    /// Challenge per enrollment.
    pub challenge: ChallengeSource,
    /// Key type of the enrolled keys.
    pub key_type: KeyType,
    /// Per-request time-out.
    pub timeout: Duration,
}

/// The result, as `--json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Successful enrollments.
    pub count: usize,
    /// Requests sent.
    pub requests: usize,
    /// Workers.
    pub concurrency: usize,
    /// Timed seconds (preparation and checking excluded).
    pub duration_secs: f64,
    /// Successful enrollments per timed second.
    pub enrollments_per_sec: f64,
    /// Latency of successful enrollments, median (ms).
    pub p50_ms: f64,
    /// 90th percentile (ms).
    pub p90_ms: f64,
    /// 99th percentile (ms).
    pub p99_ms: f64,
    /// Failed requests.
    pub failures: usize,
    /// Failed requests by kind: `http_STATUS`, `failInfo_NAME`, `pending`, `timeout`, `other`.
    pub failures_by_kind: BTreeMap<String, usize>,
    /// Whether any serial number was issued twice.
    pub duplicate_serials: bool,
    /// Certificates whose serial number had been issued before in this run.
    pub duplicate_serial_count: usize,
    /// POST or GET.
    pub transport: &'static str,
    /// Content cipher of the requests.
    pub cipher: String,
}

impl BenchReport {
    /// Lines for people.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{} enrollments in {:.2} s at concurrency {} ({}, {}): {:.1} enrollments/s\n",
            self.count, self.duration_secs, self.concurrency, self.transport, self.cipher, self.enrollments_per_sec
        );
        s.push_str(&format!("latency ms: p50 {:.1}  p90 {:.1}  p99 {:.1}\n", self.p50_ms, self.p90_ms, self.p99_ms));
        if self.failures == 0 {
            s.push_str("failures: none\n");
        } else {
            let kinds: Vec<String> = self.failures_by_kind.iter().map(|(k, v)| format!("{k} {v}")).collect();
            s.push_str(&format!("failures: {} ({})\n", self.failures, kinds.join(", ")));
        }
        s.push_str(&if self.duplicate_serials {
            format!("DUPLICATE SERIAL NUMBERS: {} certificate(s) reuse a serial\n", self.duplicate_serial_count)
        } else {
            "serial numbers: all distinct\n".to_owned()
        });
        s
    }
}

/// Bench errors that stop the run before it starts.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// GetCACaps / GetCACert / key generation failed.
    #[error(transparent)]
    Scep(#[from] ScepError),
    /// The admin page gave no challenge.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// Bad options.
    #[error("{0}")]
    Options(String),
}

/// One prepared request.
struct Prepared {
    msg: Vec<u8>,
    key: usize,
    signer_cert: SignerCert,
    tid: String,
    nonce: Nonce,
}

/// One answered (or failed) request.
struct Sent {
    latency: Duration,
    reply: Result<Vec<u8>, ScepError>,
}

/// Run the benchmark against the SCEP `url`.
pub async fn run(url: &str, opts: &BenchOptions) -> Result<BenchReport, BenchError> {
    if opts.concurrency == 0 {
        return Err(BenchError::Options("--concurrency must be at least 1".into()));
    }
    if matches!(opts.limit, Limit::Count(0)) {
        return Err(BenchError::Options("--count must be at least 1".into()));
    }
    let client = ScepClient::new(url).with_http(HttpClient::new(opts.timeout));
    let caps = client.caps().await?;
    let cas = client.ca_certs().await?;
    let post = caps.has(Capability::PostPkiOperation);
    let cipher = if caps.has(Capability::Aes) { ContentCipher::Aes256 } else { ContentCipher::Des3 };

    let pool_size = match opts.limit {
        Limit::Count(n) => n.min(KEY_POOL_MAX),
        Limit::Duration(_) => (opts.concurrency * 16).clamp(16, KEY_POOL_MAX),
    };
    let keys = Arc::new(generate_keys(pool_size, opts.key_type).await?);
    let run_id = random_transaction_id()?.chars().take(8).collect::<String>();
    // Large rounds keep the workers busy: every round starts and ends with fewer
    // requests in flight than workers. An admin page's cache ends a round earlier.
    let batch_max = (opts.concurrency * 64).max(256);

    let mut timed = Duration::ZERO;
    let mut latencies: Vec<Duration> = Vec::new();
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let mut serials: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut requests = 0usize;
    let mut next = 0usize;
    loop {
        let want = match opts.limit {
            Limit::Count(n) if next >= n => break,
            Limit::Count(n) => (n - next).min(batch_max),
            Limit::Duration(d) if timed >= d => break,
            Limit::Duration(_) => batch_max,
        };
        let challenges = challenges(&opts.challenge, want, opts.timeout).await?;
        let batch = prepare(&keys, &cas, &challenges, next, &run_id, cipher).await?;
        next += batch.len();
        let budget = match opts.limit {
            Limit::Duration(d) => Some(d.saturating_sub(timed)),
            Limit::Count(_) => None,
        };
        let started = Instant::now();
        let sent = send(&client, batch.iter().map(|p| p.msg.clone()).collect(), post, opts.concurrency, budget).await;
        timed += started.elapsed();
        requests += sent.len();
        for (i, s) in sent {
            let Some(p) = batch.get(i) else { continue };
            match check_reply(p, &s, &keys, &cas) {
                Ok(serial) => {
                    latencies.push(s.latency);
                    *serials.entry(serial).or_default() += 1;
                }
                Err(kind) => *failures.entry(kind).or_default() += 1,
            }
        }
    }

    latencies.sort();
    let secs = timed.as_secs_f64();
    let duplicate_serial_count: usize = serials.values().map(|n| n.saturating_sub(1)).sum();
    Ok(BenchReport {
        count: latencies.len(),
        requests,
        concurrency: opts.concurrency,
        duration_secs: secs,
        enrollments_per_sec: if secs > 0.0 { latencies.len() as f64 / secs } else { 0.0 },
        p50_ms: percentile(&latencies, 50),
        p90_ms: percentile(&latencies, 90),
        p99_ms: percentile(&latencies, 99),
        failures: failures.values().sum(),
        failures_by_kind: failures,
        duplicate_serials: duplicate_serial_count > 0,
        duplicate_serial_count,
        transport: if post { "POST" } else { "GET" },
        cipher: format!("{cipher:?}"),
    })
}

/// Generate `n` keys on blocking threads.
async fn generate_keys(n: usize, kind: KeyType) -> Result<Vec<PrivateKey>, BenchError> {
    let threads = std::thread::available_parallelism().map_or(2, |p| p.get()).min(n.max(1));
    let mut tasks = Vec::new();
    for t in 0..threads {
        let mine = (n + threads - 1 - t) / threads;
        tasks.push(tokio::task::spawn_blocking(move || {
            (0..mine).map(|_| PrivateKey::generate(kind)).collect::<Result<Vec<_>, _>>()
        }));
    }
    let mut keys = Vec::with_capacity(n);
    for t in tasks {
        let got = t.await.map_err(|e| BenchError::Options(format!("key generation stopped: {e}")))?;
        keys.extend(got.map_err(ScepError::from)?);
    }
    Ok(keys)
}

/// `want` challenges (fewer when an admin page's cache fills up; at least one).
async fn challenges(
    source: &ChallengeSource,
    want: usize,
    timeout: Duration,
) -> Result<Vec<Option<String>>, BenchError> {
    match source {
        ChallengeSource::None => Ok(vec![None; want]),
        ChallengeSource::Fixed(pw) => Ok(vec![Some(pw.clone()); want]),
        ChallengeSource::AdminPage { url, login } => {
            let mut out = Vec::new();
            while out.len() < want {
                match admin::fetch(url, login, timeout).await {
                    Ok(p) => out.push(Some(p.password)),
                    Err(AdminError::CacheFull) if !out.is_empty() => break,
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(out)
        }
    }
}

/// CSRs, signer certificates and pkiMessages for one batch, built on blocking threads.
async fn prepare(
    keys: &Arc<Vec<PrivateKey>>,
    cas: &CaCerts,
    challenges: &[Option<String>],
    first: usize,
    run_id: &str,
    cipher: ContentCipher,
) -> Result<Vec<Prepared>, BenchError> {
    let threads = std::thread::available_parallelism().map_or(2, |p| p.get()).min(challenges.len().max(1));
    let mut tasks = Vec::new();
    for t in 0..threads {
        let keys = keys.clone();
        let recipient = cas.encryption.clone();
        let run_id = run_id.to_owned();
        let mine: Vec<(usize, Option<String>)> = challenges
            .iter()
            .enumerate()
            .filter(|(i, _)| i % threads == t)
            .map(|(i, c)| (first + i, c.clone()))
            .collect();
        tasks.push(tokio::task::spawn_blocking(move || {
            mine.into_iter()
                .map(|(n, pw)| prepare_one(&keys, n, pw.as_deref(), &run_id, &recipient, cipher).map(|p| (n, p)))
                .collect::<Result<Vec<_>, ScepError>>()
        }));
    }
    let mut all = Vec::with_capacity(challenges.len());
    for t in tasks {
        all.extend(t.await.map_err(|e| BenchError::Options(format!("preparation stopped: {e}")))??);
    }
    all.sort_by_key(|(n, _)| *n);
    Ok(all.into_iter().map(|(_, p)| p).collect())
}

fn prepare_one(
    keys: &[PrivateKey],
    n: usize,
    challenge: Option<&str>,
    run_id: &str,
    recipient: &Certificate,
    cipher: ContentCipher,
) -> Result<Prepared, ScepError> {
    let key_idx = n % keys.len().max(1);
    let key = keys.get(key_idx).ok_or_else(|| ScepError::Protocol("no key".into()))?;
    let subject: Name = format!("CN=scep-bench-{run_id}-{n}")
        .parse()
        .map_err(|_| ScepError::Protocol("bench subject does not parse".into()))?;
    let csr = scep::x509::csr(&subject, key, challenge, &[])?;
    let signer_cert = SignerCert::from_certificate(&scep::x509::scep_signer_certificate(&subject, key)?)?;
    let tid = random_transaction_id()?;
    let nonce = Nonce::random()?;
    let msg = RequestBuilder {
        message_type: MessageType::PkcsReq,
        transaction_id: TransactionId::new(tid.as_str()),
        sender_nonce: nonce.clone(),
        body: &csr,
        recipient,
        cipher,
        signer: key,
        signer_cert: &signer_cert,
    }
    .build()?;
    Ok(Prepared { msg, key: key_idx, signer_cert, tid, nonce })
}

/// Send `msgs` with `concurrency` workers; stop taking new ones once `budget` is
/// spent. Returns each sent message's index with its answer.
async fn send(
    client: &ScepClient,
    msgs: Vec<Vec<u8>>,
    post: bool,
    concurrency: usize,
    budget: Option<Duration>,
) -> Vec<(usize, Sent)> {
    let msgs = Arc::new(msgs);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, msgs, next) = (client.clone(), msgs.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                if budget.is_some_and(|b| started.elapsed() >= b) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(msg) = msgs.get(i) else { break };
                let t0 = Instant::now();
                let reply = client.pki_operation(msg.clone(), post).await;
                done.push((i, Sent { latency: t0.elapsed(), reply }));
            }
            done
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        if let Ok(done) = w.await {
            all.extend(done);
        }
    }
    all
}

/// The serial number of the certificate a reply carries, or the kind of failure.
fn check_reply(p: &Prepared, s: &Sent, keys: &[PrivateKey], cas: &CaCerts) -> Result<Vec<u8>, String> {
    let raw = match &s.reply {
        Ok(raw) => raw,
        Err(ScepError::Status { status, .. }) => return Err(format!("http_{status}")),
        Err(ScepError::Http(HttpError::Timeout(..))) => return Err("timeout".into()),
        Err(_) => return Err("other".into()),
    };
    let key = keys.get(p.key).ok_or("other")?;
    let rep = ParsedCertRep::parse(raw, &cas.trusted, &p.signer_cert, key).map_err(|_| "other".to_owned())?;
    if rep.transaction_id.as_ref().map(TransactionId::as_str) != Some(p.tid.as_str())
        || rep.recipient_nonce.as_ref() != Some(&p.nonce)
    {
        return Err("other".into());
    }
    match rep.outcome {
        Outcome::Success { certificates, .. } => {
            let ours = scep::crypto::Signer::public_key(key);
            // With a pooled key several certificates share it; the reply holds only one.
            let cert =
                certificates.iter().find(|c| *c.tbs_certificate().subject_public_key_info() == ours).ok_or("other")?;
            Ok(cert.tbs_certificate().serial_number().as_bytes().to_vec())
        }
        Outcome::Pending => Err("pending".into()),
        Outcome::Failure(info, _) => Err(format!("failInfo_{}", info.name())),
    }
}

/// The `pct`th percentile of sorted durations, in milliseconds (nearest rank).
fn percentile(sorted: &[Duration], pct: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (pct * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    sorted.get(rank - 1).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&d, 50), 50.0);
        assert_eq!(percentile(&d, 99), 99.0);
        assert_eq!(percentile(&d[..1], 99), 1.0);
        assert_eq!(percentile(&[], 50), 0.0);
    }
}
