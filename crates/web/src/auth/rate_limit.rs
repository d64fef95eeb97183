//! Sign-in attempt limits, per address and per client network, kept in the database.
//!
//! An attempt is counted before its password is checked ([`SignInLimiter::reserve`]),
//! so parallel guesses cannot all slip under the limit, and a success takes it back.
//!
//! Per address stops guessing one account's password from many machines; per network
//! stops one machine from trying a password on many accounts. The counts live in the
//! database, so every popdesk node behind a load balancer sees the same failures, and
//! a restart forgets nothing. Only failures count, and a success clears its address (not
//! its network: one valid account must not reset an attacker's budget for the others).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use store::{SignInKey, Store, StoreError};

/// How many failures within how long lock out an address or a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInLimit {
    /// Failures per address (the account's email).
    pub per_address: u32,
    /// Failures per client network; higher, because a whole office may sign in from
    /// behind one NAT address.
    pub per_network: u32,
    /// A key's failures count from its first failure for this long.
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

/// The most addresses and networks tracked at once. Past it the keys touched longest
/// ago are forgotten, never everything, and a locked key only when nothing else is left:
/// a flood of made-up addresses must not lift the lockout of the account under attack.
const MAX_KEYS: usize = 100_000;

/// The table is trimmed to [`MAX_KEYS`] once per this many attempts of one process, so
/// it may exceed it by that many per node, briefly.
const PRUNE_EVERY: u64 = 32;

/// The longest address accepted (RFC 5321's path limit less its angle brackets); longer
/// ones are refused before any other work.
pub const MAX_ADDRESS_OCTETS: usize = 254;

/// An address is kept as a hash of its normal form, so a key costs the same few bytes
/// whatever a client sends, and no address is stored for failing.
fn address_key(address: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(address.trim().to_lowercase().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("address:{hex}")
}

fn network_key(ip: IpAddr) -> String {
    format!("network:{}", network(ip))
}

/// One sign-in attempt, counted as a failure before its password is checked, so
/// parallel guesses cannot all pass the limit; a success takes it back.
#[derive(Debug)]
#[must_use = "an attempt that succeeds must be taken back with `succeeded`"]
pub(crate) struct Attempt {
    address: String,
    network: Option<String>,
    at: i64,
}

/// Recent failures per key, in the store.
#[derive(Debug)]
pub(crate) struct SignInLimiter {
    limit: SignInLimit,
    store: Store,
    max_keys: usize,
    attempts: AtomicU64,
}

impl SignInLimiter {
    pub(crate) fn new(limit: SignInLimit, store: Store) -> SignInLimiter {
        SignInLimiter {
            limit,
            store,
            max_keys: MAX_KEYS,
            attempts: AtomicU64::new(0),
        }
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.limit.window.as_millis()).unwrap_or(i64::MAX)
    }

    fn keys<'a>(&self, address: &'a str, network: Option<&'a str>) -> Vec<SignInKey<'a>> {
        let mut keys = vec![SignInKey {
            key: address,
            max: self.limit.per_address,
        }];
        if let Some(network) = network {
            keys.push(SignInKey {
                key: network,
                max: self.limit.per_network,
            });
        }
        keys
    }

    /// Checks the limit and counts the attempt as a failure in one step; `Ok(Err(seconds))`
    /// when this address or network must wait. Call [`SignInLimiter::succeeded`] when the
    /// password matches.
    pub(crate) async fn reserve(
        &self,
        address: &str,
        ip: Option<IpAddr>,
        now: i64,
    ) -> Result<Result<Attempt, u64>, StoreError> {
        let address = address_key(address);
        let network = ip.map(network_key);
        let keys = self.keys(&address, network.as_deref());
        let reserved = self
            .store
            .reserve_sign_in(&keys, self.window_ms(), now)
            .await?;
        if self.attempts.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.store
                .prune_sign_in_failures(self.window_ms(), now, self.max_keys)
                .await?;
        }
        Ok(match reserved {
            Ok(()) => Ok(Attempt {
                address,
                network,
                at: now,
            }),
            Err(wait_ms) => Err(u64::try_from(wait_ms).unwrap_or(1).div_ceil(1000)),
        })
    }

    /// The attempt's password matched: its address starts afresh, and the attempt no
    /// longer counts against its network (the network's other failures still do: one
    /// valid account must not reset an attacker's budget for the others).
    pub(crate) async fn succeeded(&self, attempt: Attempt) -> Result<(), StoreError> {
        let network = attempt.network.as_deref().map(|key| SignInKey {
            key,
            max: self.limit.per_network,
        });
        self.store
            .sign_in_succeeded(&attempt.address, network, attempt.at)
            .await
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

    async fn limiter(limit: SignInLimit) -> (tempfile::TempDir, SignInLimiter) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path(), None).await.expect("store");
        (dir, SignInLimiter::new(limit, store))
    }

    async fn allowed(
        limiter: &SignInLimiter,
        address: &str,
        ip: Option<IpAddr>,
        now: i64,
    ) -> Result<(), u64> {
        limiter
            .reserve(address, ip, now)
            .await
            .expect("the store answers")
            .map(|_attempt| ())
    }

    #[tokio::test]
    async fn five_failures_lock_an_address_for_the_window() {
        let (_dir, limiter) = limiter(SignInLimit::default()).await;
        for i in 0..5 {
            assert!(
                allowed(&limiter, "a@example.com", None, i * MIN)
                    .await
                    .is_ok()
            );
        }
        // The window began with the first failure (t=0): free again at 15 min.
        assert_eq!(
            allowed(&limiter, "A@Example.com ", None, 5 * MIN).await,
            Err(10 * 60)
        );
        assert!(
            allowed(&limiter, "b@example.com", None, 5 * MIN)
                .await
                .is_ok()
        );
        assert!(
            allowed(&limiter, "a@example.com", None, 15 * MIN)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_network_is_locked_across_addresses() {
        let (_dir, limiter) = limiter(SignInLimit::default()).await;
        let ip: IpAddr = "2001:db8::1".parse().expect("ip");
        let neighbour: IpAddr = "2001:db8::2".parse().expect("ip");
        for i in 0..20 {
            assert!(
                allowed(&limiter, &format!("user{i}@example.com"), Some(ip), 0)
                    .await
                    .is_ok()
            );
        }
        assert!(
            allowed(&limiter, "new@example.com", Some(neighbour), MIN)
                .await
                .is_err()
        );
        let elsewhere: IpAddr = "2001:db9::1".parse().expect("ip");
        assert!(
            allowed(&limiter, "new@example.com", Some(elsewhere), MIN)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn success_clears_the_address_only() {
        let (_dir, limiter) = limiter(SignInLimit::default()).await;
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        for i in 0..19 {
            assert!(
                allowed(&limiter, &format!("user{i}@example.com"), Some(ip), 0)
                    .await
                    .is_ok()
            );
        }
        for _ in 0..4 {
            assert!(allowed(&limiter, "a@example.com", None, 0).await.is_ok());
        }
        let attempt = limiter
            .reserve("a@example.com", Some(ip), 1)
            .await
            .expect("store")
            .expect("allowed");
        limiter.succeeded(attempt).await.expect("store");
        // The address starts afresh: five more tries from elsewhere.
        for _ in 0..5 {
            assert!(allowed(&limiter, "a@example.com", None, 2).await.is_ok());
        }
        // The network's other 19 failures still count, and one more locks it.
        assert!(
            allowed(&limiter, "b@example.com", Some(ip), 2)
                .await
                .is_ok()
        );
        assert!(
            allowed(&limiter, "c@example.com", Some(ip), 3)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_flood_of_made_up_addresses_does_not_lift_a_lockout() {
        let (_dir, mut limiter) = limiter(SignInLimit::default()).await;
        limiter.max_keys = 200;
        for _ in 0..5 {
            assert!(
                allowed(&limiter, "victim@example.com", None, 0)
                    .await
                    .is_ok()
            );
        }
        assert!(
            allowed(&limiter, "victim@example.com", None, MIN)
                .await
                .is_err()
        );
        for i in 0..1_000 {
            let _ = allowed(&limiter, &format!("made-up-{i}@example.com"), None, MIN).await;
        }
        assert!(
            allowed(&limiter, "victim@example.com", None, 2 * MIN)
                .await
                .is_err(),
            "the attacked address is still locked"
        );
        let left = limiter
            .store
            .prune_sign_in_failures(limiter.window_ms(), 2 * MIN, limiter.max_keys)
            .await
            .expect("store");
        assert!(left <= 200, "the table stays bounded: {left}");
        assert!(
            left > 100,
            "the flood evicted its own oldest entries, not everything"
        );
    }

    #[tokio::test]
    async fn parallel_attempts_are_counted_before_the_password_is_checked() {
        let (_dir, limiter) = limiter(SignInLimit::default()).await;
        let limiter = std::sync::Arc::new(limiter);
        let tasks: Vec<_> = (0..30)
            .map(|_| {
                let limiter = std::sync::Arc::clone(&limiter);
                tokio::spawn(
                    async move { allowed(&limiter, "a@example.com", None, 0).await.is_ok() },
                )
            })
            .collect();
        let mut reserved = 0;
        for task in tasks {
            if task.await.expect("task") {
                reserved += 1;
            }
        }
        assert_eq!(reserved, 5);
    }

    #[tokio::test]
    async fn a_success_takes_its_attempt_back_from_the_network() {
        let (_dir, limiter) = limiter(SignInLimit::default()).await;
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        for i in 0..19 {
            assert!(
                allowed(&limiter, &format!("user{i}@example.com"), Some(ip), 0)
                    .await
                    .is_ok()
            );
        }
        let attempt = limiter
            .reserve("me@example.com", Some(ip), 1)
            .await
            .expect("store")
            .expect("allowed");
        limiter.succeeded(attempt).await.expect("store");
        assert!(
            allowed(&limiter, "other@example.com", Some(ip), 2)
                .await
                .is_ok()
        );
        assert!(
            allowed(&limiter, "third@example.com", Some(ip), 3)
                .await
                .is_err()
        );
    }
}
