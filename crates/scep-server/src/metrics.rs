//! Prometheus metrics: counters and a latency histogram kept in memory, gauges read
//! at scrape time (challenges, pending requests, certificate expiry, database).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Latency buckets, seconds.
const BUCKETS: [f64; 11] = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// The counters of one process.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String), u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// Values read at scrape time.
#[derive(Default, Debug)]
pub struct Gauges {
    /// Outstanding one-time challenges.
    pub challenges_outstanding: u64,
    /// PasswordMax.
    pub challenges_max: u64,
    /// Requests waiting for approval.
    pub pending_requests: u64,
    /// (role, subject, seconds until notAfter).
    pub expiry: Vec<(String, String, i64)>,
    /// Whether the database answered.
    pub database_up: bool,
}

impl Metrics {
    /// Count one request of `operation` with `outcome`.
    pub fn request(&self, operation: &str, outcome: &str) {
        let mut m = self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *m.entry((operation.to_owned(), outcome.to_owned())).or_default() += 1;
    }

    /// Record a PKIOperation's duration.
    pub fn latency(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b
                && let Some(c) = self.buckets.get(i)
            {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The exposition text (Prometheus text format 0.0.4).
    pub fn render(&self, g: &Gauges) -> String {
        let mut out = String::new();
        out.push_str("# HELP scepd_requests_total SCEP requests by operation and outcome.\n# TYPE scepd_requests_total counter\n");
        for ((op, outcome), n) in self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
            let _ = writeln!(out, "scepd_requests_total{{operation=\"{op}\",outcome=\"{outcome}\"}} {n}");
        }
        out.push_str("# HELP scepd_pkioperation_duration_seconds Time to answer a PKIOperation.\n# TYPE scepd_pkioperation_duration_seconds histogram\n");
        for (i, b) in BUCKETS.iter().enumerate() {
            let n = self.buckets.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
            let _ = writeln!(out, "scepd_pkioperation_duration_seconds_bucket{{le=\"{b}\"}} {n}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "scepd_pkioperation_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "scepd_pkioperation_duration_seconds_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "scepd_pkioperation_duration_seconds_count {count}");
        let gauge = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n");
        };
        gauge(&mut out, "scepd_challenges_outstanding", "Unused one-time challenges.", g.challenges_outstanding);
        gauge(&mut out, "scepd_challenges_max", "Most outstanding challenges (NDES PasswordMax).", g.challenges_max);
        gauge(&mut out, "scepd_pending_requests", "Requests waiting for approval.", g.pending_requests);
        gauge(&mut out, "scepd_database_up", "1 when the database answers.", u64::from(g.database_up));
        out.push_str("# HELP scepd_certificate_expiry_seconds Seconds until a CA or RA certificate expires.\n# TYPE scepd_certificate_expiry_seconds gauge\n");
        for (role, subject, secs) in &g.expiry {
            let subject = subject.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(out, "scepd_certificate_expiry_seconds{{role=\"{role}\",subject=\"{subject}\"}} {secs}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauges() {
        let m = Metrics::default();
        m.request("PKIOperation", "issued");
        m.request("PKIOperation", "issued");
        m.latency(Duration::from_millis(7));
        let text = m.render(&Gauges { challenges_max: 5, database_up: true, ..Gauges::default() });
        assert!(text.contains("scepd_requests_total{operation=\"PKIOperation\",outcome=\"issued\"} 2"));
        assert!(text.contains("scepd_pkioperation_duration_seconds_bucket{le=\"0.01\"} 1"));
        assert!(text.contains("scepd_pkioperation_duration_seconds_bucket{le=\"0.005\"} 0"));
        assert!(text.contains("scepd_challenges_max 5"));
        assert!(text.contains("scepd_database_up 1"));
    }
}
