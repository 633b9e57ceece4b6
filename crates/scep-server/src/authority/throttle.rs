//! Failures counted per client address: failed logins, wrong challenges, messages
//! that do not decrypt.
//!
//! An attempt is counted when it starts, before the password or challenge is checked,
//! and given back when it succeeds: parallel guesses from one address cannot pass the
//! limit while the first ones are still being verified. IPv6 clients are counted per
//! /64 (one host usually holds the whole prefix), IPv4-mapped addresses as IPv4.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A fixed-window failure counter per address bucket.
pub struct Throttle {
    max: u32,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, Entry>>,
}

#[derive(Clone, Copy)]
struct Entry {
    start: Instant,
    /// Failures in this window, plus attempts still being verified.
    count: u32,
}

/// Most address buckets remembered: past it, ended windows are dropped, then the
/// oldest window.
const MAX_TRACKED: usize = 100_000;

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

/// One counted attempt: a failure unless [`Attempt::succeeded`] gives it back.
/// Dropped unsettled (the request was cancelled), it is given back too: the client
/// learnt nothing.
#[must_use = "an attempt is settled with failed() or succeeded()"]
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    key: IpAddr,
    start: Instant,
    failed: bool,
}

impl Attempt<'_> {
    /// The attempt failed: it stays counted.
    pub fn failed(mut self) {
        self.failed = true;
    }

    /// The attempt succeeded: it is given back.
    pub fn succeeded(self) {}
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.failed {
            return;
        }
        let mut map = self.throttle.lock();
        // The window the attempt was counted in may have ended (and been reset) since.
        if let Some(e) = map.get_mut(&self.key)
            && e.start == self.start
        {
            e.count = e.count.saturating_sub(1);
        }
    }
}

impl Throttle {
    /// Allow `max` failures per `window`.
    pub fn new(max: u32, window: Duration) -> Self {
        Throttle { max, window, seen: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `addr` is refused now (its failures and attempts in flight reached the
    /// limit in this window).
    pub fn blocked(&self, addr: IpAddr) -> bool {
        let map = self.lock();
        map.get(&bucket(addr)).is_some_and(|e| e.start.elapsed() < self.window && e.count >= self.max)
    }

    /// Count an attempt of `addr` before it is verified; `None` when the address is
    /// at its limit (refuse without verifying).
    pub fn attempt(&self, addr: IpAddr) -> Option<Attempt<'_>> {
        let key = bucket(addr);
        let mut map = self.lock();
        let e = self.entry(&mut map, key);
        if e.count >= self.max {
            return None;
        }
        e.count += 1;
        let start = e.start;
        Some(Attempt { throttle: self, key, start, failed: false })
    }

    /// Count one failure of `addr` that was not started as an attempt.
    pub fn failure(&self, addr: IpAddr) {
        let key = bucket(addr);
        let mut map = self.lock();
        let e = self.entry(&mut map, key);
        e.count = e.count.saturating_add(1);
    }

    /// The current window's entry of `key`, making room when the map is full.
    fn entry<'m>(&self, map: &'m mut HashMap<IpAddr, Entry>, key: IpAddr) -> &'m mut Entry {
        if map.len() >= MAX_TRACKED && !map.contains_key(&key) {
            let window = self.window;
            map.retain(|_, e| e.start.elapsed() < window);
            if map.len() >= MAX_TRACKED
                && let Some(oldest) = map.iter().min_by_key(|(_, e)| e.start).map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        let now = Instant::now();
        let e = map.entry(key).or_insert(Entry { start: now, count: 0 });
        if e.start.elapsed() >= self.window {
            *e = Entry { start: now, count: 0 };
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

    #[test]
    fn blocks_after_max_failures_per_address() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        for _ in 0..3 {
            assert!(!t.blocked(a));
            t.attempt(a).unwrap().failed();
        }
        assert!(t.blocked(a));
        assert!(t.attempt(a).is_none());
        assert!(!t.blocked(b));
        let quick = Throttle::new(1, Duration::from_millis(1));
        quick.failure(a);
        std::thread::sleep(Duration::from_millis(5));
        assert!(!quick.blocked(a));
    }

    #[test]
    fn attempts_in_flight_count_before_they_are_verified() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let a = ip("192.0.2.1");
        let in_flight: Vec<_> = (0..3).map(|_| t.attempt(a).unwrap()).collect();
        // A fourth parallel guess is refused while three are still being verified.
        assert!(t.attempt(a).is_none());
        for x in in_flight {
            x.succeeded();
        }
        // Successes are given back.
        assert!(!t.blocked(a));
        drop(t.attempt(a).unwrap());
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
