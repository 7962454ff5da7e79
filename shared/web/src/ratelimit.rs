//! Per-IP submission limit (`KUJIRA_SUBMISSIONS_PER_IP_PER_HOUR`), a sliding hour
//! kept in memory. In-process is enough for one instance; it only has to slow
//! down a flood, and a restart forgetting it is harmless.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use kujira_config::Clock;

/// Over the limit: try again after `retry_after_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    pub retry_after_secs: u64,
}

/// Counts submissions per client IP over the last hour.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    per_hour: u32,
    clock: Arc<dyn Clock>,
    hits: Arc<Mutex<HashMap<IpAddr, VecDeque<DateTime<Utc>>>>>,
}

/// Past this many tracked addresses, addresses with no recent hit are forgotten.
const PRUNE_AT: usize = 10_000;

impl RateLimiter {
    /// `per_hour == 0` turns the limit off.
    pub fn new(per_hour: u32, clock: Arc<dyn Clock>) -> Self {
        Self {
            per_hour,
            clock,
            hits: Arc::default(),
        }
    }

    /// Counts one submission from `ip`, or refuses it when the hour's quota is used.
    /// A refused attempt is not counted, so a client that waits gets through.
    pub fn check(&self, ip: IpAddr) -> Result<(), RateLimited> {
        if self.per_hour == 0 {
            return Ok(());
        }
        let now = self.clock.now();
        let window_start = now - Duration::hours(1);
        let mut hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        if hits.len() >= PRUNE_AT {
            hits.retain(|_, q| q.back().is_some_and(|t| *t > window_start));
        }
        let q = hits.entry(ip).or_default();
        while q.front().is_some_and(|t| *t <= window_start) {
            q.pop_front();
        }
        if q.len() >= self.per_hour as usize {
            let oldest = q.front().copied().unwrap_or(now);
            let wait = (oldest + Duration::hours(1) - now).num_seconds().max(1);
            return Err(RateLimited {
                retry_after_secs: wait as u64,
            });
        }
        q.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kujira_config::FixedClock;

    #[test]
    fn the_limit_counts_per_ip_over_a_sliding_hour() {
        let clock = FixedClock::new(DateTime::from_timestamp(1_800_000_000, 0).unwrap());
        let limiter = RateLimiter::new(2, Arc::new(clock.clone()));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limiter.check(a).is_ok());
        clock.advance(Duration::minutes(30));
        assert!(limiter.check(a).is_ok());
        let refused = limiter.check(a).unwrap_err();
        assert_eq!(refused.retry_after_secs, 30 * 60);
        assert!(limiter.check(b).is_ok());
        clock.advance(Duration::minutes(31));
        assert!(limiter.check(a).is_ok());
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let clock = FixedClock::new(DateTime::from_timestamp(1_800_000_000, 0).unwrap());
        let limiter = RateLimiter::new(0, Arc::new(clock));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!((0..1000).all(|_| limiter.check(a).is_ok()));
    }
}
