//! Sign-in attempt limits, per address and per client network, in memory.
//!
//! Per address stops guessing one account's password from many machines; per network
//! stops one machine from trying a password on many accounts. In memory is enough: a
//! restart forgets the counts, which costs an attacker a restart they cannot cause.
//! Only failures count, and a success clears its address (not its network: one valid
//! account must not reset an attacker's budget for the others).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// How many failures within how long lock out an address or a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInLimit {
    /// Failures per address (the account's email).
    pub per_address: u32,
    /// Failures per client network; higher, because a whole office may sign in from
    /// behind one NAT address.
    pub per_network: u32,
    pub window: Duration,
}

impl Default for SignInLimit {
    fn default() -> Self {
        SignInLimit {
            per_address: 5,
            per_network: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Past this many tracked keys, expired ones are dropped; the bound keeps a flood of
/// made-up addresses from growing memory without end.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Address(String),
    Network(IpAddr),
}

/// Recent failures per key (times in ms), oldest first.
#[derive(Debug)]
pub(crate) struct SignInLimiter {
    limit: SignInLimit,
    failures: Mutex<HashMap<Key, VecDeque<i64>>>,
}

impl SignInLimiter {
    pub(crate) fn new(limit: SignInLimit) -> SignInLimiter {
        SignInLimiter {
            limit,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.limit.window.as_millis()).unwrap_or(i64::MAX)
    }

    fn max(&self, key: &Key) -> usize {
        let max = match key {
            Key::Address(_) => self.limit.per_address,
            Key::Network(_) => self.limit.per_network,
        };
        usize::try_from(max).unwrap_or(usize::MAX).max(1)
    }

    fn keys(address: &str, ip: Option<IpAddr>) -> Vec<Key> {
        let mut keys = vec![Key::Address(address.trim().to_lowercase())];
        if let Some(ip) = ip {
            keys.push(Key::Network(network(ip)));
        }
        keys
    }

    /// `Err(seconds)` when this address or network must wait before trying again.
    pub(crate) fn check(&self, address: &str, ip: Option<IpAddr>, now: i64) -> Result<(), u64> {
        let window = self.window_ms();
        let failures = self.lock();
        let mut wait_ms = 0i64;
        for key in Self::keys(address, ip) {
            let max = self.max(&key);
            if let Some(times) = failures.get(&key) {
                let recent: Vec<i64> = times.iter().copied().filter(|t| now - t < window).collect();
                if recent.len() >= max {
                    // Free again when the oldest failure that still counts expires.
                    let oldest = recent[recent.len() - max];
                    wait_ms = wait_ms.max(oldest + window - now);
                }
            }
        }
        if wait_ms > 0 {
            Err(u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000))
        } else {
            Ok(())
        }
    }

    pub(crate) fn record_failure(&self, address: &str, ip: Option<IpAddr>, now: i64) {
        let window = self.window_ms();
        let mut failures = self.lock();
        if failures.len() >= MAX_KEYS {
            failures.retain(|_, times| times.back().is_some_and(|t| now - t < window));
            if failures.len() >= MAX_KEYS {
                tracing::warn!(
                    keys = failures.len(),
                    "too many addresses and networks with failed sign-ins to track; forgetting them all"
                );
                failures.clear();
            }
        }
        for key in Self::keys(address, ip) {
            let max = self.max(&key);
            let times = failures.entry(key).or_default();
            while times.front().is_some_and(|t| now - t >= window) {
                times.pop_front();
            }
            times.push_back(now);
            // Only the last `max` failures decide anything.
            while times.len() > max {
                times.pop_front();
            }
        }
    }

    pub(crate) fn record_success(&self, address: &str) {
        self.lock()
            .remove(&Key::Address(address.trim().to_lowercase()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, VecDeque<i64>>> {
        // A panic while holding the lock leaves plain counters, still usable.
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The unit one client controls: an IPv4 address, or an IPv6 /64 (one host usually has
/// a whole /64 to pick addresses from).
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn five_failures_lock_an_address_for_the_window() {
        let limiter = SignInLimiter::new(SignInLimit::default());
        for i in 0..5 {
            assert!(limiter.check("a@example.com", None, i * MIN).is_ok());
            limiter.record_failure("a@example.com", None, i * MIN);
        }
        // The first failure (t=0) frees a slot at 15 min.
        assert_eq!(limiter.check("A@Example.com ", None, 5 * MIN), Err(10 * 60));
        assert!(limiter.check("b@example.com", None, 5 * MIN).is_ok());
        assert!(limiter.check("a@example.com", None, 15 * MIN).is_ok());
    }

    #[test]
    fn a_network_is_locked_across_addresses() {
        let limiter = SignInLimiter::new(SignInLimit::default());
        let ip: IpAddr = "2001:db8::1".parse().expect("ip");
        let neighbour: IpAddr = "2001:db8::2".parse().expect("ip");
        for i in 0..20 {
            limiter.record_failure(&format!("user{i}@example.com"), Some(ip), 0);
        }
        assert!(
            limiter
                .check("new@example.com", Some(neighbour), MIN)
                .is_err()
        );
        assert!(
            limiter
                .check(
                    "new@example.com",
                    Some("2001:db9::1".parse().expect("ip")),
                    MIN
                )
                .is_ok()
        );
    }

    #[test]
    fn success_clears_the_address_only() {
        let limiter = SignInLimiter::new(SignInLimit::default());
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        for _ in 0..20 {
            limiter.record_failure("a@example.com", Some(ip), 0);
        }
        limiter.record_success("a@example.com");
        assert!(limiter.check("a@example.com", None, 1).is_ok());
        assert!(limiter.check("a@example.com", Some(ip), 1).is_err());
    }
}
