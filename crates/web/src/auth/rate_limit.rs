//! Sign-in attempt limits, per address and per client network, in memory.
//!
//! An attempt is counted before its password is checked ([`SignInLimiter::reserve`]),
//! so parallel guesses cannot all slip under the limit, and a success takes it back.
//!
//! Per address stops guessing one account's password from many machines; per network
//! stops one machine from trying a password on many accounts. In memory is enough: a
//! restart forgets the counts, which costs an attacker a restart they cannot cause.
//! Only failures count, and a success clears its address (not its network: one valid
//! account must not reset an attacker's budget for the others).

use std::collections::{BTreeMap, HashMap, VecDeque};
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

/// The most addresses and networks tracked at once (about 15 MB at most). Past it the
/// entry touched longest ago is forgotten, never everything: a flood of made-up
/// addresses must not lift the lockout of the account under attack.
const MAX_KEYS: usize = 100_000;

/// The longest address accepted (RFC 5321's path limit less its angle brackets); longer
/// ones are refused before any other work.
pub const MAX_ADDRESS_OCTETS: usize = 254;

/// What failures are counted against. An address is kept as a hash of its normal form,
/// so a key costs the same few bytes whatever a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Address([u8; 32]),
    Network(IpAddr),
}

impl Key {
    fn address(address: &str) -> Key {
        use sha2::Digest as _;
        Key::Address(sha2::Sha256::digest(address.trim().to_lowercase().as_bytes()).into())
    }
}

/// Recent failures of one key (times in ms, oldest first) and when it was last touched.
#[derive(Debug)]
struct Failures {
    times: VecDeque<i64>,
    /// Position in its tier's eviction order.
    stamp: u64,
    /// At its limit: evicted only after every key that locks nothing.
    locked: bool,
}

/// The tracked keys in two tiers, each in the order they were last touched. Eviction
/// takes the oldest key that locks nothing, and a locked one only when no other is
/// left, so an attacker who sprays addresses evicts their own spray first.
#[derive(Debug, Default)]
struct Tracked {
    keys: HashMap<Key, Failures>,
    open: BTreeMap<u64, Key>,
    locked: BTreeMap<u64, Key>,
    next_stamp: u64,
}

impl Tracked {
    fn tier(&mut self, locked: bool) -> &mut BTreeMap<u64, Key> {
        if locked {
            &mut self.locked
        } else {
            &mut self.open
        }
    }

    /// Adds a failure at `now` to `key`, keeping only the last `max`.
    fn add(&mut self, key: Key, max: usize, window: i64, now: i64) {
        if !self.keys.contains_key(&key) && self.keys.len() >= MAX_KEYS {
            self.evict_one();
        }
        self.next_stamp += 1;
        let stamp = self.next_stamp;
        let entry = self.keys.entry(key).or_insert_with(|| Failures {
            times: VecDeque::new(),
            stamp,
            locked: false,
        });
        let (old_stamp, was_locked) = (entry.stamp, entry.locked);
        while entry.times.front().is_some_and(|t| now - t >= window) {
            entry.times.pop_front();
        }
        entry.times.push_back(now);
        // Only the last `max` failures decide anything.
        while entry.times.len() > max {
            entry.times.pop_front();
        }
        entry.stamp = stamp;
        entry.locked = entry.times.len() >= max;
        let locked = entry.locked;
        self.tier(was_locked).remove(&old_stamp);
        self.tier(locked).insert(stamp, key);
    }

    fn remove(&mut self, key: &Key) {
        if let Some(entry) = self.keys.remove(key) {
            self.tier(entry.locked).remove(&entry.stamp);
        }
    }

    /// Forgets the key touched longest ago, preferring one that locks nothing.
    fn evict_one(&mut self) {
        let oldest = match self.open.pop_first() {
            Some((_, key)) => key,
            None => match self.locked.pop_first() {
                Some((_, key)) => {
                    tracing::warn!(
                        keys = self.keys.len(),
                        "every tracked sign-in address and network is locked; forgetting the oldest"
                    );
                    key
                }
                None => return,
            },
        };
        self.keys.remove(&oldest);
    }
}

/// One sign-in attempt, counted as a failure before its password is checked, so
/// parallel guesses cannot all pass the limit; a success takes it back.
#[derive(Debug)]
#[must_use = "an attempt that succeeds must be taken back with `succeeded`"]
pub(crate) struct Attempt {
    address: Key,
    network: Option<Key>,
    at: i64,
}

/// Recent failures per key.
#[derive(Debug)]
pub(crate) struct SignInLimiter {
    limit: SignInLimit,
    tracked: Mutex<Tracked>,
}

impl SignInLimiter {
    pub(crate) fn new(limit: SignInLimit) -> SignInLimiter {
        SignInLimiter {
            limit,
            tracked: Mutex::new(Tracked::default()),
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

    fn keys(address: &str, ip: Option<IpAddr>) -> (Key, Option<Key>) {
        (
            Key::address(address),
            ip.map(|ip| Key::Network(network(ip))),
        )
    }

    /// Milliseconds until `key` may try again (0: now).
    fn wait_ms(&self, tracked: &Tracked, key: &Key, now: i64) -> i64 {
        let window = self.window_ms();
        let max = self.max(key);
        let Some(failures) = tracked.keys.get(key) else {
            return 0;
        };
        let recent: Vec<i64> = failures
            .times
            .iter()
            .copied()
            .filter(|t| now - t < window)
            .collect();
        if recent.len() >= max {
            // Free again when the oldest failure that still counts expires.
            recent[recent.len() - max] + window - now
        } else {
            0
        }
    }

    fn wait(&self, tracked: &Tracked, keys: &(Key, Option<Key>), now: i64) -> Result<(), u64> {
        let (address, network) = keys;
        let wait_ms = std::iter::once(address)
            .chain(network)
            .map(|key| self.wait_ms(tracked, key, now))
            .max()
            .unwrap_or(0);
        if wait_ms > 0 {
            Err(u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000))
        } else {
            Ok(())
        }
    }

    #[cfg(test)]
    /// `Err(seconds)` when this address or network must wait before trying again.
    pub(crate) fn check(&self, address: &str, ip: Option<IpAddr>, now: i64) -> Result<(), u64> {
        let keys = Self::keys(address, ip);
        self.wait(&self.lock(), &keys, now)
    }

    /// Checks the limit and counts the attempt as a failure in one step; `Err(seconds)`
    /// when this address or network must wait. Call [`SignInLimiter::succeeded`] when the
    /// password matches.
    pub(crate) fn reserve(
        &self,
        address: &str,
        ip: Option<IpAddr>,
        now: i64,
    ) -> Result<Attempt, u64> {
        let keys = Self::keys(address, ip);
        let mut tracked = self.lock();
        self.wait(&tracked, &keys, now)?;
        let (address, network) = keys;
        self.add(&mut tracked, address, now);
        if let Some(network) = network {
            self.add(&mut tracked, network, now);
        }
        Ok(Attempt {
            address,
            network,
            at: now,
        })
    }

    /// The attempt's password matched: its address starts afresh, and the attempt no
    /// longer counts against its network (the network's other failures still do: one
    /// valid account must not reset an attacker's budget for the others).
    pub(crate) fn succeeded(&self, attempt: Attempt) {
        let mut tracked = self.lock();
        tracked.remove(&attempt.address);
        if let Some(network) = attempt.network
            && let Some(failures) = tracked.keys.get_mut(&network)
            && let Some(at) = failures.times.iter().rposition(|t| *t == attempt.at)
        {
            failures.times.remove(at);
            if failures.times.is_empty() {
                tracked.remove(&network);
            } else if failures.locked && failures.times.len() < self.max(&network) {
                // Back to the tier of keys that lock nothing.
                let stamp = failures.stamp;
                failures.locked = false;
                tracked.locked.remove(&stamp);
                tracked.open.insert(stamp, network);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn record_failure(&self, address: &str, ip: Option<IpAddr>, now: i64) {
        let (address, network) = Self::keys(address, ip);
        let mut tracked = self.lock();
        self.add(&mut tracked, address, now);
        if let Some(network) = network {
            self.add(&mut tracked, network, now);
        }
    }

    #[cfg(test)]
    pub(crate) fn record_success(&self, address: &str) {
        self.lock().remove(&Key::address(address));
    }

    fn add(&self, tracked: &mut Tracked, key: Key, now: i64) {
        tracked.add(key, self.max(&key), self.window_ms(), now);
    }

    /// How many addresses and networks are tracked.
    #[cfg(test)]
    fn tracked_keys(&self) -> usize {
        self.lock().keys.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tracked> {
        // A panic while holding the lock leaves plain counters, still usable.
        self.tracked
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

    #[test]
    fn a_flood_of_made_up_addresses_does_not_lift_a_lockout() {
        let limiter = SignInLimiter::new(SignInLimit::default());
        for _ in 0..5 {
            limiter.record_failure("victim@example.com", None, 0);
        }
        assert!(limiter.check("victim@example.com", None, MIN).is_err());
        for i in 0..200_000 {
            limiter.record_failure(&format!("made-up-{i}@example.com"), None, MIN);
        }
        assert!(
            limiter.check("victim@example.com", None, 2 * MIN).is_err(),
            "the attacked address is still locked"
        );
        assert!(limiter.tracked_keys() <= MAX_KEYS, "memory stays bounded");
        // The flood evicted its own oldest entries, not everything.
        assert!(limiter.tracked_keys() > MAX_KEYS / 2);
    }

    #[test]
    fn parallel_attempts_are_counted_before_the_password_is_checked() {
        let limiter = SignInLimiter::new(SignInLimit::default());
        let reserved: Vec<_> = (0..50)
            .filter_map(|_| limiter.reserve("a@example.com", None, 0).ok())
            .collect();
        assert_eq!(reserved.len(), 5);
    }

    #[test]
    fn a_success_takes_its_attempt_back_from_the_network() {
        let limiter = SignInLimiter::new(SignInLimit::default());
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        for i in 0..19 {
            limiter.record_failure(&format!("user{i}@example.com"), Some(ip), 0);
        }
        let attempt = limiter
            .reserve("me@example.com", Some(ip), 1)
            .expect("allowed");
        limiter.succeeded(attempt);
        assert!(limiter.check("me@example.com", Some(ip), 2).is_ok());
        assert!(limiter.reserve("other@example.com", Some(ip), 2).is_ok());
        assert!(limiter.check("third@example.com", Some(ip), 3).is_err());
    }
}
