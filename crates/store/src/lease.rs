//! One fetcher per mailbox at a time, across processes and machines (promise 4).
//!
//! A lease is one row per mailbox: who holds it (host, pid, a random token) and until
//! when. Every change is a single conditional statement, so the database decides the race:
//! PostgreSQL serialises conflicting upserts on the row, SQLite takes its one write lock,
//! also when several processes share one file.

use sqlx::any::AnyRow;

use crate::text::column;
use crate::{Store, StoreError};

/// Who holds (or wants) a lease. The token is what proves ownership; host and pid let
/// another fetcher on the same host see that the holder died.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub host: String,
    pub pid: u32,
    pub token: String,
}

/// The result of trying to take a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The caller holds the lease until `now + ttl_ms`.
    Acquired,
    /// Someone else holds it, unexpired.
    HeldBy {
        host: String,
        pid: u32,
        token: String,
        expires_at: i64,
    },
}

/// A racing release can empty the row between a failed take and the read of its holder;
/// then the take is tried again. Each retry means another fetcher made progress.
const ACQUIRE_ATTEMPTS: usize = 8;

impl Store {
    /// Takes the mailbox's lease if it is free, expired, or already the caller's (same
    /// token: then it is extended). Otherwise says who holds it.
    pub async fn acquire_lease(
        &self,
        mailbox_id: i64,
        holder: &LeaseHolder,
        now: i64,
        ttl_ms: i64,
    ) -> Result<LeaseOutcome, StoreError> {
        let expires_at = now.saturating_add(ttl_ms);
        for _ in 0..ACQUIRE_ATTEMPTS {
            // Foreign key checks make a lease on a missing mailbox fail; say so plainly.
            let taken = sqlx::query(
                "INSERT INTO mailbox_leases (mailbox_id, holder_host, holder_pid, token, expires_at) \
                 SELECT id, $2, $3, $4, $5 FROM mailboxes WHERE id = $1 \
                 ON CONFLICT (mailbox_id) DO UPDATE SET \
                   holder_host = excluded.holder_host, holder_pid = excluded.holder_pid, \
                   token = excluded.token, expires_at = excluded.expires_at \
                 WHERE mailbox_leases.expires_at <= $6 OR mailbox_leases.token = excluded.token",
            )
            .bind(mailbox_id)
            .bind(&holder.host)
            .bind(i64::from(holder.pid))
            .bind(&holder.token)
            .bind(expires_at)
            .bind(now)
            .execute(self.pool())
            .await
            .map_err(StoreError::db("take the mailbox's lease"))?;
            if taken.rows_affected() == 1 {
                return Ok(LeaseOutcome::Acquired);
            }
            let row = sqlx::query(
                "SELECT holder_host, holder_pid, token, expires_at FROM mailbox_leases \
                 WHERE mailbox_id = $1",
            )
            .bind(mailbox_id)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("read the mailbox's lease"))?;
            match row {
                Some(row) => return held_by(&row),
                None => {
                    // Either the mailbox does not exist, or the holder released it just
                    // now.
                    if self.mailbox_by_id(mailbox_id).await?.is_none() {
                        return Err(StoreError::MailboxNotFound(mailbox_id));
                    }
                }
            }
        }
        // Still racing after several rounds: report the current holder if there is one.
        let row = sqlx::query(
            "SELECT holder_host, holder_pid, token, expires_at FROM mailbox_leases \
             WHERE mailbox_id = $1",
        )
        .bind(mailbox_id)
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("read the mailbox's lease"))?;
        match row {
            Some(row) => held_by(&row),
            None => Err(StoreError::MailboxNotFound(mailbox_id)),
        }
    }

    /// Extends the caller's lease to `now + ttl_ms`. False means the caller no longer
    /// holds it (another fetcher took it over after it expired): stop at a safe point.
    pub async fn renew_lease(
        &self,
        mailbox_id: i64,
        holder: &LeaseHolder,
        now: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE mailbox_leases SET expires_at = $1 WHERE mailbox_id = $2 AND token = $3",
        )
        .bind(now.saturating_add(ttl_ms))
        .bind(mailbox_id)
        .bind(&holder.token)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("renew the mailbox's lease"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes over a lease whose holder the caller proved dead (same host, pid gone), even
    /// if it has not expired, but only if that holder (`stale_token`) still has it: if
    /// anyone else took it meanwhile, nothing changes and the answer is false.
    pub async fn steal_lease(
        &self,
        mailbox_id: i64,
        stale_token: &str,
        holder: &LeaseHolder,
        now: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE mailbox_leases SET holder_host = $1, holder_pid = $2, token = $3, \
             expires_at = $4 WHERE mailbox_id = $5 AND token = $6",
        )
        .bind(&holder.host)
        .bind(i64::from(holder.pid))
        .bind(&holder.token)
        .bind(now.saturating_add(ttl_ms))
        .bind(mailbox_id)
        .bind(stale_token)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("take over the mailbox's lease"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives the lease up, if the caller still holds it.
    pub async fn release_lease(
        &self,
        mailbox_id: i64,
        holder: &LeaseHolder,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM mailbox_leases WHERE mailbox_id = $1 AND token = $2")
            .bind(mailbox_id)
            .bind(&holder.token)
            .execute(self.pool())
            .await
            .map_err(StoreError::db("release the mailbox's lease"))?;
        Ok(())
    }
}

fn held_by(row: &AnyRow) -> Result<LeaseOutcome, StoreError> {
    let pid: i64 = column(row, "holder_pid")?;
    Ok(LeaseOutcome::HeldBy {
        host: column(row, "holder_host")?,
        pid: u32::try_from(pid).unwrap_or(0),
        token: column(row, "token")?,
        expires_at: column(row, "expires_at")?,
    })
}
