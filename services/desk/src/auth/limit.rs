//! The per-IP limit on login attempts (governor's GCRA, keyed per client).
//!
//! The per-account lockout stops guessing one account's password; this limit stops
//! one client from trying many accounts (password spraying) and from making the
//! server hash passwords without end. Every attempt counts, successful ones too:
//! governor cannot count only the failures without also gating on them, and a
//! success costs as much hashing as a failure. The burst is sized for an office
//! whose whole desk logs in at nine from behind one NAT address.
//!
//! IPv6 clients are keyed on their /64, the block one subscriber gets: keying on
//! the full address would let one client rotate through 2^64 keys.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use kujira_config::Clock;

/// Attempts one client may make at once.
pub const BURST: u32 = 20;
/// After the burst, one more attempt per this interval.
pub const REPLENISH: Duration = Duration::from_secs(60);
/// Past this many tracked clients, idle ones are forgotten; if that is not enough
/// (a flood from more distinct networks than this), new clients are refused until
/// the old ones age out, so that memory stays bounded.
pub const MAX_TRACKED: usize = 100_000;

/// Over the limit: try again after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TryLater {
    pub retry_after_secs: u64,
}

/// The key of a client: its IPv4 address, or the /64 of its IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(IpAddr::V6(bits.into()))
                }
            },
        }
    }
}

/// governor's clock over kujira's [`Clock`], so that tests drive it with a
/// `FixedClock` instead of sleeping.
#[derive(Debug, Clone)]
struct KujiraClock(Arc<dyn Clock>);

impl GovernorClock for KujiraClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let nanos = self
            .0
            .now()
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .max(0);
        Nanos::new(nanos as u64)
    }
}

/// Counts login attempts per client.
pub struct LoginLimiter {
    limiter:
        RateLimiter<ClientKey, DashMapStateStore<ClientKey>, KujiraClock, NoOpMiddleware<Nanos>>,
    clock: KujiraClock,
}

impl std::fmt::Debug for LoginLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLimiter")
            .field("tracked", &self.limiter.len())
            .finish()
    }
}

impl LoginLimiter {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let burst = NonZeroU32::new(BURST).expect("BURST is not zero");
        let quota = Quota::with_period(REPLENISH)
            .expect("REPLENISH is not zero")
            .allow_burst(burst);
        let clock = KujiraClock(clock);
        Self {
            limiter: RateLimiter::dashmap_with_clock(quota, clock.clone()),
            clock,
        }
    }

    /// Counts one attempt from `ip`, or refuses it when the client is over its quota.
    pub fn check(&self, ip: IpAddr) -> Result<(), TryLater> {
        let key = ClientKey::of(ip);
        if self.limiter.len() >= MAX_TRACKED {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
            if self.limiter.len() >= MAX_TRACKED {
                tracing::warn!(
                    tracked = self.limiter.len(),
                    "login limiter full: refusing new clients"
                );
                return Err(TryLater {
                    retry_after_secs: REPLENISH.as_secs(),
                });
            }
        }
        self.limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            TryLater {
                retry_after_secs: wait.as_secs().max(1),
            }
        })
    }

    /// How many clients are tracked now.
    pub fn tracked(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kujira_config::FixedClock;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_clients_are_keyed_on_their_64() {
        assert_eq!(
            ClientKey::of(ip("2001:db8:1:2:aaaa::1")),
            ClientKey::of(ip("2001:db8:1:2:ffff:1:2:3"))
        );
        assert_ne!(
            ClientKey::of(ip("2001:db8:1:2::1")),
            ClientKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            ClientKey::of(ip("::ffff:192.0.2.1")),
            ClientKey::of(ip("192.0.2.1"))
        );
        assert_ne!(
            ClientKey::of(ip("192.0.2.1")),
            ClientKey::of(ip("192.0.2.2"))
        );
    }

    #[test]
    fn the_burst_then_one_attempt_per_interval() {
        let clock = FixedClock::new("2026-12-01T00:00:00Z".parse().unwrap());
        let limiter = LoginLimiter::new(Arc::new(clock.clone()));
        let a = ip("192.0.2.1");
        for i in 0..BURST {
            assert!(limiter.check(a).is_ok(), "attempt {i}");
        }
        let refused = limiter.check(a).unwrap_err();
        assert_eq!(refused.retry_after_secs, REPLENISH.as_secs());
        assert!(limiter.check(ip("192.0.2.2")).is_ok(), "another client");
        clock.advance(chrono::Duration::seconds(REPLENISH.as_secs() as i64));
        assert!(limiter.check(a).is_ok());
        assert!(limiter.check(a).is_err());
    }
}
