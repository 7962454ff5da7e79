//! Per-IP submission limit (`KUJIRA_SUBMISSIONS_PER_IP_PER_HOUR`), kept in memory
//! with `governor`'s keyed GCRA limiter. In-process is enough for one instance: it
//! only has to slow down a flood, and a restart forgetting it is harmless.
//!
//! * The quota is N an hour with a burst of N: a client may send N at once, then one
//!   more every 60/N minutes.
//! * IPv4 clients are counted per address, IPv6 clients per /64, the block one
//!   subscriber line gets: otherwise one machine could take a fresh address for each
//!   request. IPv4-mapped IPv6 addresses count as the IPv4 address.
//! * Memory is bounded: at most [`MAX_TRACKED`] networks are tracked. Networks whose
//!   budget is whole again are forgotten every [`PRUNE_EVERY`], and at once when the
//!   table is full. A network that is new while the table is still full of recent
//!   ones is refused (fail closed): only a flood from that many networks fills it.
//! * Time comes from [`kujira_config::Clock`], so that tests drive it without sleeping.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::Quota;
use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use kujira_config::Clock;

/// Over the limit: try again after `retry_after_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    pub retry_after_secs: u64,
}

/// The most networks tracked at once: about 100 bytes each, so a few megabytes.
pub const MAX_TRACKED: usize = 100_000;
/// How often networks with a whole budget again are forgotten.
pub const PRUNE_EVERY: Duration = Duration::from_secs(10 * 60);
/// After a prune forced by a full table, the next one waits at least this long, so
/// that a flood cannot make every request scan the table.
const FULL_PRUNE_PAUSE: Duration = Duration::from_secs(60);

/// Whom a budget belongs to: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Network {
    V4(u32),
    V6(u64),
}

impl Network {
    fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(u32::from(v4)),
            IpAddr::V6(v6) => Self::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

/// `governor`'s view of the service clock: nanoseconds since the Unix epoch.
#[derive(Clone)]
struct ServiceClock(Arc<dyn Clock>);

impl ServiceClock {
    fn nanos(&self) -> u64 {
        let now = self.0.now();
        u64::try_from(now.timestamp_nanos_opt().unwrap_or(0)).unwrap_or(0)
    }
}

impl GovernorClock for ServiceClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.nanos())
    }
}

/// `governor`'s own map, shared with us so that we can ask whether a network is in it
/// (`governor` has no lookup of its own).
#[derive(Clone, Default)]
struct Table(Arc<DashMapStateStore<Network>>);

impl StateStore for Table {
    type Key = Network;

    fn measure_and_replace<T, F, E>(&self, key: &Network, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        self.0.measure_and_replace(key, f)
    }
}

impl ShrinkableKeyedStateStore<Network> for Table {
    fn retain_recent(&self, drop_below: Nanos) {
        ShrinkableKeyedStateStore::retain_recent(&*self.0, drop_below);
    }

    fn shrink_to_fit(&self) {
        ShrinkableKeyedStateStore::shrink_to_fit(&*self.0);
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

type Keyed = governor::RateLimiter<Network, Table, ServiceClock, NoOpMiddleware<Nanos>>;

/// Counts submissions per client network.
#[derive(Clone)]
pub struct RateLimiter(Option<Arc<Inner>>);

struct Inner {
    limiter: Keyed,
    table: Table,
    clock: ServiceClock,
    max_tracked: usize,
    /// When (clock nanoseconds) the table is next pruned.
    next_prune: AtomicU64,
    /// When a full table may next be pruned on demand.
    next_full_prune: AtomicU64,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("tracked", &self.tracked())
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// `per_hour == 0` turns the limit off.
    pub fn new(per_hour: u32, clock: Arc<dyn Clock>) -> Self {
        Self::with_capacity(per_hour, clock, MAX_TRACKED)
    }

    /// Like [`RateLimiter::new`], tracking at most `max_tracked` networks.
    pub fn with_capacity(per_hour: u32, clock: Arc<dyn Clock>, max_tracked: usize) -> Self {
        let Some(per_hour) = NonZeroU32::new(per_hour) else {
            return Self(None);
        };
        let clock = ServiceClock(clock);
        let table = Table::default();
        let limiter =
            governor::RateLimiter::new(Quota::per_hour(per_hour), table.clone(), clock.clone());
        let next_prune = AtomicU64::new(clock.nanos().saturating_add(nanos(PRUNE_EVERY)));
        Self(Some(Arc::new(Inner {
            limiter,
            table,
            clock,
            max_tracked: max_tracked.max(1),
            next_prune,
            next_full_prune: AtomicU64::new(0),
        })))
    }

    /// Counts one submission from `ip`, or refuses it when its network's budget is
    /// spent. A refused attempt is not counted, so a client that waits gets through.
    pub fn check(&self, ip: IpAddr) -> Result<(), RateLimited> {
        let Some(inner) = &self.0 else {
            return Ok(());
        };
        let network = Network::of(ip);
        let now = inner.clock.nanos();
        if now >= inner.next_prune.load(Ordering::Relaxed) {
            inner.prune(now, PRUNE_EVERY);
        }
        if inner.limiter.len() >= inner.max_tracked && !inner.table.0.contains_key(&network) {
            if now >= inner.next_full_prune.load(Ordering::Relaxed) {
                inner.next_full_prune.store(
                    now.saturating_add(nanos(FULL_PRUNE_PAUSE)),
                    Ordering::Relaxed,
                );
                inner.prune(now, PRUNE_EVERY);
            }
            if inner.limiter.len() >= inner.max_tracked {
                tracing::warn!(
                    tracked = inner.limiter.len(),
                    "per-IP limit: the table is full; refusing a new network"
                );
                return Err(RateLimited {
                    retry_after_secs: FULL_PRUNE_PAUSE.as_secs(),
                });
            }
        }
        inner.limiter.check_key(&network).map_err(|not_until| {
            let wait = not_until.wait_time_from(Nanos::from(now));
            RateLimited {
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
            .at_least_one_second()
        })
    }

    /// How many networks are tracked now (for tests and diagnostics).
    pub fn tracked(&self) -> usize {
        self.0.as_ref().map_or(0, |i| i.limiter.len())
    }
}

impl RateLimited {
    fn at_least_one_second(self) -> Self {
        Self {
            retry_after_secs: self.retry_after_secs.max(1),
        }
    }
}

impl Inner {
    /// Forgets networks whose budget is whole again; the next prune is due after `pause`.
    fn prune(&self, now: u64, pause: Duration) {
        self.next_prune
            .store(now.saturating_add(nanos(pause)), Ordering::Relaxed);
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use kujira_config::FixedClock;

    fn clock() -> FixedClock {
        FixedClock::new(DateTime::from_timestamp(1_800_000_000, 0).unwrap())
    }

    #[test]
    fn the_budget_refills_one_submission_at_a_time() {
        let clock = clock();
        let limiter = RateLimiter::new(2, Arc::new(clock.clone()));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limiter.check(a).is_ok());
        assert!(limiter.check(a).is_ok());
        let refused = limiter.check(a).unwrap_err();
        // Two an hour: the next one is due half an hour later.
        assert_eq!(refused.retry_after_secs, 30 * 60);
        assert!(limiter.check(b).is_ok());
        clock.advance(chrono::Duration::minutes(29));
        assert_eq!(limiter.check(a).unwrap_err().retry_after_secs, 60);
        clock.advance(chrono::Duration::minutes(1));
        assert!(limiter.check(a).is_ok());
        assert!(limiter.check(a).is_err());
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limiter = RateLimiter::new(0, Arc::new(clock()));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!((0..1000).all(|_| limiter.check(a).is_ok()));
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn every_address_of_one_ipv6_64_shares_one_budget() {
        let limiter = RateLimiter::new(3, Arc::new(clock()));
        let net = |host: u64| {
            IpAddr::from(std::net::Ipv6Addr::from(
                (0x2001_0db8_0001_0002_u128 << 64) | u128::from(host),
            ))
        };
        for host in [1, 0xdead_beef, u64::MAX] {
            assert!(limiter.check(net(host)).is_ok());
        }
        // A fourth address from the same /64 finds the budget spent.
        assert!(limiter.check(net(42)).is_err());
        // The neighbouring /64 has its own budget.
        let neighbour: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(limiter.check(neighbour).is_ok());
        assert_eq!(limiter.tracked(), 2);
        // An IPv4-mapped address counts as the IPv4 address.
        let v4: IpAddr = "198.51.100.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.check(v4).is_ok());
        }
        assert!(limiter.check(mapped).is_err());
    }

    #[test]
    fn a_flood_of_networks_never_grows_the_table_past_its_bound() {
        let clock = clock();
        let limiter = RateLimiter::with_capacity(5, Arc::new(clock.clone()), 1000);
        let network = |n: u64| {
            IpAddr::from(std::net::Ipv6Addr::from(
                (u128::from(0x2001_0db8_0000_0000_u64 | n) << 64) | 1,
            ))
        };
        let mut refused = 0;
        for n in 0..50_000 {
            if limiter.check(network(n)).is_err() {
                refused += 1;
            }
            assert!(limiter.tracked() <= 1000, "at {n}: {}", limiter.tracked());
        }
        assert_eq!(
            refused, 49_000,
            "new networks are refused while the table is full"
        );
        // Once the flood's budgets are whole again, they are forgotten and new
        // networks get in.
        clock.advance(chrono::Duration::hours(1));
        assert!(limiter.check(network(1_000_000)).is_ok());
        assert!(limiter.tracked() <= 2, "{}", limiter.tracked());

        // With the default bound too, the table stays bounded.
        let limiter = RateLimiter::new(5, Arc::new(clock.clone()));
        for n in 0..(MAX_TRACKED as u64 + 20_000) {
            let _ = limiter.check(network(n));
        }
        assert!(limiter.tracked() <= MAX_TRACKED);
    }
}
