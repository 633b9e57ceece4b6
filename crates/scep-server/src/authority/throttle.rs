//! Failures counted per client address: failed logins, wrong challenges, messages
//! that do not decrypt.
//!
//! A password or challenge check is an [`Attempt`]: while it runs it holds one of the
//! address's remaining failures, so at most that many checks from one address run at
//! once and parallel guesses cannot pass the limit; further checks wait their turn (a
//! NAT'd fleet enrolling at once is slowed, not refused), and once the failures reach
//! the limit they are refused. A success gives its place back. IPv6 clients are
//! counted per /64 (one host usually holds the whole prefix), IPv4-mapped addresses
//! as IPv4.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A fixed-window failure counter per address bucket.
pub struct Throttle {
    max: u32,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, Entry>>,
    settled: tokio::sync::Notify,
}

#[derive(Clone, Copy)]
struct Entry {
    start: Instant,
    failures: u32,
    /// Attempts being checked now.
    in_flight: u32,
}

/// Most address buckets remembered: past it, ended windows are dropped, then the
/// oldest window.
const MAX_TRACKED: usize = 100_000;
/// Longest an attempt waits for its turn before it is refused as throttled.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// The bucket an address is counted in: IPv4 as is, IPv6 by its /64.
pub fn bucket(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// One check in progress: a failure if [`Attempt::failed`] says so, otherwise (a
/// success, or a request cancelled before its answer) its place is given back.
#[must_use = "an attempt is settled with failed() or succeeded()"]
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    key: IpAddr,
    failed: bool,
}

impl Attempt<'_> {
    /// The check failed: counted.
    pub fn failed(mut self) {
        self.failed = true;
    }

    /// The check succeeded: its place is given back.
    pub fn succeeded(self) {}
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        {
            let mut map = self.throttle.lock();
            if let Some(e) = map.get_mut(&self.key) {
                e.in_flight = e.in_flight.saturating_sub(1);
                if self.failed {
                    e.failures = e.failures.saturating_add(1);
                }
            }
        }
        self.throttle.settled.notify_waiters();
    }
}

impl Throttle {
    /// Allow `max` failures per `window`.
    pub fn new(max: u32, window: Duration) -> Self {
        Throttle { max, window, seen: Mutex::new(HashMap::new()), settled: tokio::sync::Notify::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `addr` is refused now (its failures reached the limit in this window).
    pub fn blocked(&self, addr: IpAddr) -> bool {
        let map = self.lock();
        map.get(&bucket(addr)).is_some_and(|e| e.start.elapsed() < self.window && e.failures >= self.max)
    }

    /// Start a check for `addr`: at once while its failures and checks in progress
    /// are under the limit, after the checks ahead of it settle otherwise; `None`
    /// when the address is throttled (refuse without checking).
    pub async fn attempt(&self, addr: IpAddr) -> Option<Attempt<'_>> {
        let key = bucket(addr);
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        loop {
            // Registered before looking, so that a settlement in between is not missed.
            let settled = self.settled.notified();
            {
                let mut map = self.lock();
                let e = self.entry(&mut map, key);
                if e.failures >= self.max {
                    return None;
                }
                if e.failures + e.in_flight < self.max {
                    e.in_flight += 1;
                    return Some(Attempt { throttle: self, key, failed: false });
                }
            }
            if tokio::time::timeout_at(deadline, settled).await.is_err() {
                return None;
            }
        }
    }

    /// Count one failure of `addr` that was not checked as an attempt.
    pub fn failure(&self, addr: IpAddr) {
        let key = bucket(addr);
        let mut map = self.lock();
        let e = self.entry(&mut map, key);
        e.failures = e.failures.saturating_add(1);
    }

    /// The current window's entry of `key`, making room when the map is full.
    fn entry<'m>(&self, map: &'m mut HashMap<IpAddr, Entry>, key: IpAddr) -> &'m mut Entry {
        if map.len() >= MAX_TRACKED && !map.contains_key(&key) {
            let window = self.window;
            map.retain(|_, e| e.start.elapsed() < window || e.in_flight > 0);
            if map.len() >= MAX_TRACKED
                && let Some(oldest) =
                    map.iter().filter(|(_, e)| e.in_flight == 0).min_by_key(|(_, e)| e.start).map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        let now = Instant::now();
        let e = map.entry(key).or_insert(Entry { start: now, failures: 0, in_flight: 0 });
        if e.start.elapsed() >= self.window {
            *e = Entry { start: now, failures: 0, in_flight: e.in_flight };
        }
        e
    }

    /// Buckets remembered now.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn blocks_after_max_failures_per_address() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        for _ in 0..3 {
            assert!(!t.blocked(a));
            t.attempt(a).await.unwrap().failed();
        }
        assert!(t.blocked(a));
        assert!(t.attempt(a).await.is_none());
        assert!(!t.blocked(b));
        let quick = Throttle::new(1, Duration::from_millis(1));
        quick.failure(a);
        std::thread::sleep(Duration::from_millis(5));
        assert!(!quick.blocked(a));
    }

    #[tokio::test]
    async fn checks_in_progress_hold_the_remaining_failures() {
        let t = std::sync::Arc::new(Throttle::new(3, Duration::from_secs(60)));
        let a = ip("192.0.2.1");
        let in_flight: Vec<_> = futures_util::future::join_all((0..3).map(|_| t.attempt(a))).await;
        // A fourth check waits while three are in progress...
        let t2 = t.clone();
        let fourth = tokio::spawn(async move { t2.attempt(a).await.map(Attempt::succeeded).is_some() });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!fourth.is_finished());
        // ...and is refused once they all failed.
        for x in in_flight {
            x.unwrap().failed();
        }
        assert!(!fourth.await.unwrap());
        // Successes give their place back: many in turn, none refused.
        let t = Throttle::new(2, Duration::from_secs(60));
        let ok = futures_util::future::join_all((0..20).map(|_| async {
            let x = t.attempt(a).await;
            tokio::task::yield_now().await;
            x.map(Attempt::succeeded).is_some()
        }))
        .await;
        assert!(ok.iter().all(|x| *x));
        assert!(!t.blocked(a));
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let t = Throttle::new(2, Duration::from_secs(60));
        t.failure(ip("2001:db8:1:2::1"));
        t.failure(ip("2001:db8:1:2:ffff::9"));
        assert!(t.blocked(ip("2001:db8:1:2::abcd")));
        assert!(!t.blocked(ip("2001:db8:1:3::1")));
        t.failure(ip("::ffff:192.0.2.7"));
        t.failure(ip("192.0.2.7"));
        assert!(t.blocked(ip("192.0.2.7")));
    }

    #[test]
    fn the_map_stays_bounded() {
        let t = Throttle::new(1, Duration::from_secs(60));
        for i in 0..(MAX_TRACKED as u32 + 10) {
            t.failure(IpAddr::V4(std::net::Ipv4Addr::from(i)));
        }
        assert_eq!(t.tracked(), MAX_TRACKED);
    }
}
