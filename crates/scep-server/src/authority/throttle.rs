//! Failures counted per client address: failed logins, wrong challenges.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A fixed-window failure counter per address.
pub struct Throttle {
    max: u32,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// Most addresses remembered; past it, windows that ended are dropped.
const MAX_TRACKED: usize = 100_000;

impl Throttle {
    /// Allow `max` failures per `window`.
    pub fn new(max: u32, window: Duration) -> Self {
        Throttle { max, window, seen: Mutex::new(HashMap::new()) }
    }

    /// Whether `addr` is refused now (its failures reached the limit in this window).
    pub fn blocked(&self, addr: IpAddr) -> bool {
        let map = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&addr).is_some_and(|(start, n)| start.elapsed() < self.window && *n >= self.max)
    }

    /// Count one failure of `addr`.
    pub fn failure(&self, addr: IpAddr) {
        let mut map = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_TRACKED {
            let window = self.window;
            map.retain(|_, (start, _)| start.elapsed() < window);
        }
        let e = map.entry(addr).or_insert((Instant::now(), 0));
        if e.0.elapsed() >= self.window {
            *e = (Instant::now(), 0);
        }
        e.1 = e.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_per_address() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(!t.blocked(a));
            t.failure(a);
        }
        assert!(t.blocked(a));
        assert!(!t.blocked(b));
        let quick = Throttle::new(1, Duration::from_millis(1));
        quick.failure(a);
        std::thread::sleep(Duration::from_millis(5));
        assert!(!quick.blocked(a));
    }
}
