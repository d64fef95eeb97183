//! One fetcher per mailbox across processes and machines (promise 4).
//!
//! The lease is a row in the database with an expiry, renewed while the run works. A
//! fetcher that was killed leaves its lease behind; on the same host we can prove it is
//! dead (its pid is gone) and take over at once instead of waiting for the expiry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use store::{LeaseHolder, LeaseOutcome, Store};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::error::FetchError;

/// How long a lease lasts past its last renewal unless configured otherwise: a node that
/// dies on another machine (where its pid cannot be checked) holds its mailboxes this long
/// at most. Renewed every third of it, so two renewals may fail before it is lost.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);

/// A held lease, renewed in the background until released or dropped.
pub struct LeaseGuard {
    store: Store,
    mailbox_id: i64,
    holder: LeaseHolder,
    lost: Arc<AtomicBool>,
    renewer: JoinHandle<()>,
}

impl LeaseGuard {
    /// Takes the mailbox's lease, or says who holds it.
    pub async fn take(
        store: &Store,
        mailbox_id: i64,
        clock: Arc<dyn Clock>,
        ttl: Duration,
    ) -> Result<LeaseGuard, FetchError> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(3);
        let holder = LeaseHolder {
            host: host_name(),
            pid: std::process::id(),
            token: random_token(),
        };
        let now = clock.now_ms();
        match store
            .acquire_lease(mailbox_id, &holder, now, ttl_ms)
            .await?
        {
            LeaseOutcome::Acquired => {}
            LeaseOutcome::HeldBy {
                host, pid, token, ..
            } => {
                let dead = host == holder.host && pid != holder.pid && !process_alive(pid);
                let taken = dead
                    && store
                        .steal_lease(mailbox_id, &token, &holder, now, ttl_ms)
                        .await?;
                if !taken {
                    return Err(FetchError::Busy { host, pid });
                }
                tracing::info!(
                    mailbox_id,
                    pid,
                    "took over the lease of a fetcher that died"
                );
            }
        }
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = tokio::spawn(renew(
            store.clone(),
            mailbox_id,
            holder.clone(),
            clock,
            lost.clone(),
            ttl_ms,
        ));
        Ok(LeaseGuard {
            store: store.clone(),
            mailbox_id,
            holder,
            lost,
            renewer,
        })
    }

    /// Who holds it: "host:pid".
    pub fn holder_name(&self) -> String {
        format!("{}:{}", self.holder.host, self.holder.pid)
    }

    /// Whether another process took the lease over (we were too slow to renew it).
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Gives the lease up so the next fetcher need not wait for it to expire.
    pub async fn release(self) {
        self.renewer.abort();
        if let Err(error) = self
            .store
            .release_lease(self.mailbox_id, &self.holder)
            .await
        {
            tracing::warn!(%error, "could not release the mailbox lease; it expires by itself");
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

async fn renew(
    store: Store,
    mailbox_id: i64,
    holder: LeaseHolder,
    clock: Arc<dyn Clock>,
    lost: Arc<AtomicBool>,
    ttl_ms: i64,
) {
    let every = Duration::from_millis(u64::try_from(ttl_ms / 3).unwrap_or(1));
    loop {
        tokio::time::sleep(every).await;
        match store
            .renew_lease(mailbox_id, &holder, clock.now_ms(), ttl_ms)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            // A database hiccup: try again next round; the TTL leaves room for that.
            Err(error) => tracing::warn!(%error, "renewing the mailbox lease failed"),
        }
    }
}

fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

fn process_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    let Some(pid) = rustix::process::Pid::from_raw(raw) else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        // EPERM: it exists but belongs to someone else.
        Err(errno) => errno != rustix::io::Errno::SRCH,
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 16];
    // Without randomness, fall back to time and pid: uniqueness per holder is all we need.
    if getrandom::fill(&mut bytes).is_err() {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ u128::from(std::process::id());
        bytes = seed.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
