//! Messages the server cannot hand out (promise 5 for mail still on the server).
//!
//! When a download fails mid-message, the fetcher records an attempt against that
//! message's UIDL and tries it again on its own in the next run. One that fails the same
//! way in several runs is *set aside*: it stays on the server, the fetcher no longer
//! retrieves it, and the rest of the mailbox flows again. The admin sees it here — UIDL,
//! size, headers when `TOP n 0` worked, each attempt — and can ask to try it again. A
//! message stored after all loses its row in the same transaction that stores it.

use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::ledger::lock_mailbox;
use crate::text::{column, db_text, from_db, text_enum, to_db};
use crate::{Store, StoreError};

/// How a retrieval failed, coarsely: "the same way" means the same kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The connection was closed or reset mid-message.
    Connection,
    /// The server went silent mid-message (read timeout) or the session ran out of time.
    Timeout,
    /// The server sent more than it announced in `LIST` (plus a margin).
    TooLong,
    /// The server sent something that is not POP3 mid-message.
    Protocol,
}
text_enum!(FailureKind, "failure kind", {
    Connection => "connection",
    Timeout => "timeout",
    TooLong => "too_long",
    Protocol => "protocol",
});

/// One failed try at downloading a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrievalAttempt {
    /// When it failed (ms since the epoch).
    pub at: i64,
    pub kind: FailureKind,
    /// The error in words, as the fetch run recorded it.
    pub error: String,
    /// Octets of the message that arrived before it broke off.
    pub octets: u64,
}

/// A message of a mailbox whose download failed at least once and that is not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingMessage {
    pub mailbox_id: i64,
    pub uid: String,
    /// The size the server announced in `LIST` at the latest attempt.
    pub size: u64,
    /// The header section from `TOP n 0`, when the server gave it (NULs removed).
    pub headers: Option<String>,
    /// Whether `TOP n 0` was tried (so `headers: None` means the server would not).
    pub headers_tried: bool,
    pub first_failed_at: i64,
    /// When it was set aside; `None` while the fetcher still tries it.
    pub set_aside_at: Option<i64>,
    /// The admin asked to try again: the next failure sets it aside at once.
    pub retry_once: bool,
    /// Every failed try, oldest first.
    pub attempts: Vec<RetrievalAttempt>,
}

impl FailingMessage {
    /// Left on the server and no longer retrieved until the admin asks to try again.
    pub fn is_set_aside(&self) -> bool {
        self.set_aside_at.is_some()
    }
}

/// A failed try, as the fetcher reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRetrieval<'a> {
    pub uid: &'a str,
    /// The size the server announced in `LIST`.
    pub size: u64,
    pub kind: FailureKind,
    pub error: &'a str,
    /// Octets of the message that arrived before it broke off.
    pub octets: u64,
}

/// Two failures this close in the message (in octets) broke off at the same place: a
/// corrupt file or a scanner stops at the same spot every time, a flaky network does not.
///
/// Narrow on purpose: the same bytes from the server leave the streaming decoder at the
/// same octet whatever the reads' sizes, so a message that really breaks off does so at
/// (nearly) the same octet each time; a window of kilobytes let a network that cut
/// short messages at random set healthy ones aside (seen in the crash-safety test's
/// random cuts).
pub const SAME_PLACE_OCTETS: u64 = 32;

const COLUMNS: &str = "mailbox_id, uid, size, headers, headers_tried, first_failed_at, \
                       set_aside_at, retry_once";

fn message_from_row(row: &AnyRow) -> Result<FailingMessage, StoreError> {
    Ok(FailingMessage {
        mailbox_id: column(row, "mailbox_id")?,
        uid: column(row, "uid")?,
        size: from_db(column(row, "size")?),
        headers: column(row, "headers")?,
        headers_tried: column::<i64>(row, "headers_tried")? != 0,
        first_failed_at: column(row, "first_failed_at")?,
        set_aside_at: column(row, "set_aside_at")?,
        retry_once: column::<i64>(row, "retry_once")? != 0,
        attempts: Vec::new(),
    })
}

fn attempt_from_row(row: &AnyRow) -> Result<(String, RetrievalAttempt), StoreError> {
    Ok((
        column(row, "uid")?,
        RetrievalAttempt {
            at: column(row, "attempted_at")?,
            kind: FailureKind::from_stored(&column::<String>(row, "kind")?)?,
            error: column(row, "error")?,
            octets: from_db(column(row, "octets")?),
        },
    ))
}

impl Store {
    /// Every failing message of the mailbox — still tried, or set aside — with its
    /// attempts, oldest failure first.
    pub async fn failing_messages(
        &self,
        mailbox_id: i64,
    ) -> Result<Vec<FailingMessage>, StoreError> {
        self.failing_where(mailbox_id, false).await
    }

    /// The mailbox's set-aside messages with their attempts, oldest failure first: what
    /// the mailbox page, the API and `mailbox show` list, each with "try again".
    pub async fn set_aside_messages(
        &self,
        mailbox_id: i64,
    ) -> Result<Vec<FailingMessage>, StoreError> {
        self.failing_where(mailbox_id, true).await
    }

    async fn failing_where(
        &self,
        mailbox_id: i64,
        set_aside_only: bool,
    ) -> Result<Vec<FailingMessage>, StoreError> {
        let action = "list the mailbox's failing messages";
        let filter = if set_aside_only {
            " AND set_aside_at IS NOT NULL"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM failing_messages WHERE mailbox_id = $1{filter} \
             ORDER BY first_failed_at, uid"
        );
        // Built from constants only.
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(mailbox_id)
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db(action))?;
        let mut messages = rows
            .iter()
            .map(message_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        if messages.is_empty() {
            return Ok(messages);
        }
        let rows = sqlx::query(
            "SELECT uid, attempted_at, kind, error, octets FROM failing_message_attempts \
             WHERE mailbox_id = $1 ORDER BY id",
        )
        .bind(mailbox_id)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db(action))?;
        for row in &rows {
            let (uid, attempt) = attempt_from_row(row)?;
            if let Some(message) = messages.iter_mut().find(|m| m.uid == uid) {
                message.attempts.push(attempt);
            }
        }
        Ok(messages)
    }

    /// How many messages of the mailbox are set aside ("1 message cannot be downloaded").
    pub async fn set_aside_count(&self, mailbox_id: i64) -> Result<u64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM failing_messages \
             WHERE mailbox_id = $1 AND set_aside_at IS NOT NULL",
        )
        .bind(mailbox_id)
        .fetch_one(self.pool())
        .await
        .map_err(StoreError::db("count the mailbox's set-aside messages"))?;
        Ok(from_db(column(&row, "n")?))
    }

    /// Set-aside messages per mailbox id, for mailboxes that have any.
    pub async fn set_aside_counts(&self) -> Result<Vec<(i64, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT mailbox_id, COUNT(*) AS n FROM failing_messages \
             WHERE set_aside_at IS NOT NULL GROUP BY mailbox_id ORDER BY mailbox_id",
        )
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("count the set-aside messages"))?;
        rows.iter()
            .map(|row| Ok((column(row, "mailbox_id")?, from_db(column(row, "n")?))))
            .collect()
    }

    /// Records a failed try at downloading a message and decides whether it is now set
    /// aside: when its last `set_aside_after` attempts all failed the same way (same
    /// kind, within [`SAME_PLACE_OCTETS`] of the same place), or at once after the
    /// admin's "try again". Returns the message as it now stands.
    pub async fn record_failed_retrieval(
        &self,
        mailbox_id: i64,
        failure: &FailedRetrieval<'_>,
        now: i64,
        set_aside_after: u32,
    ) -> Result<FailingMessage, StoreError> {
        let action = "record a failed download";
        let size = to_db("message size", failure.size)?;
        let mut tx = self.pool().begin().await.map_err(StoreError::db(action))?;
        lock_mailbox(&mut tx, mailbox_id, action).await?;
        sqlx::query(
            "INSERT INTO failing_messages (mailbox_id, uid, size, headers, headers_tried, \
             first_failed_at, set_aside_at, retry_once) VALUES ($1, $2, $3, NULL, 0, $4, NULL, 0) \
             ON CONFLICT (mailbox_id, uid) DO UPDATE SET size = excluded.size",
        )
        .bind(mailbox_id)
        .bind(failure.uid)
        .bind(size)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(action))?;
        sqlx::query(
            "INSERT INTO failing_message_attempts (mailbox_id, uid, attempted_at, kind, error, \
             octets) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(mailbox_id)
        .bind(failure.uid)
        .bind(now)
        .bind(failure.kind.as_str())
        .bind(db_text(failure.error))
        .bind(to_db("octets", failure.octets)?)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(action))?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM failing_messages WHERE mailbox_id = $1 AND uid = $2"
        )))
        .bind(mailbox_id)
        .bind(failure.uid)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::db(action))?;
        let mut message = message_from_row(&row)?;
        if message.set_aside_at.is_none() {
            let needed = set_aside_after.max(1);
            let recent = sqlx::query(
                "SELECT kind, octets FROM failing_message_attempts \
                 WHERE mailbox_id = $1 AND uid = $2 ORDER BY id DESC LIMIT $3",
            )
            .bind(mailbox_id)
            .bind(failure.uid)
            .bind(i64::from(needed))
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
            let mut same_way = 0u32;
            for row in &recent {
                let octets = from_db(column(row, "octets")?);
                if column::<String>(row, "kind")? != failure.kind.as_str()
                    || octets.abs_diff(failure.octets) > SAME_PLACE_OCTETS
                {
                    break;
                }
                same_way += 1;
            }
            if message.retry_once || same_way >= needed {
                sqlx::query(
                    "UPDATE failing_messages SET set_aside_at = $1, retry_once = 0 \
                     WHERE mailbox_id = $2 AND uid = $3",
                )
                .bind(now)
                .bind(mailbox_id)
                .bind(failure.uid)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
                message.set_aside_at = Some(now);
                message.retry_once = false;
            }
        }
        let attempts = sqlx::query(
            "SELECT uid, attempted_at, kind, error, octets FROM failing_message_attempts \
             WHERE mailbox_id = $1 AND uid = $2 ORDER BY id",
        )
        .bind(mailbox_id)
        .bind(failure.uid)
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::db(action))?;
        message.attempts = attempts
            .iter()
            .map(|row| attempt_from_row(row).map(|(_, attempt)| attempt))
            .collect::<Result<_, _>>()?;
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(message)
    }

    /// Records what `TOP n 0` gave for a failing message (`None`: the server refused).
    pub async fn record_failing_headers(
        &self,
        mailbox_id: i64,
        uid: &str,
        headers: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE failing_messages SET headers = $1, headers_tried = 1 \
             WHERE mailbox_id = $2 AND uid = $3",
        )
        .bind(headers.map(db_text))
        .bind(mailbox_id)
        .bind(uid)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("record a failing message's headers"))?;
        Ok(())
    }

    /// "Try again": clears the set-aside mark, so the next run retrieves the message once
    /// more, on its own; should that fail too, it is set aside again at once. The
    /// attempts stay. False when the mailbox has no such set-aside message.
    pub async fn try_set_aside_again(
        &self,
        mailbox_id: i64,
        uid: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE failing_messages SET set_aside_at = NULL, retry_once = 1 \
             WHERE mailbox_id = $1 AND uid = $2 AND set_aside_at IS NOT NULL",
        )
        .bind(mailbox_id)
        .bind(uid)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("mark a set-aside message to be tried again"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Housekeeping: drops failing messages the server no longer lists (`present_uids` is
    /// the whole current UIDL list): someone removed them on the server. Returns how many.
    pub async fn forget_absent_failing(
        &self,
        mailbox_id: i64,
        present_uids: &[String],
    ) -> Result<u64, StoreError> {
        let action = "clean up the mailbox's failing messages";
        let rows = sqlx::query("SELECT uid FROM failing_messages WHERE mailbox_id = $1")
            .bind(mailbox_id)
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db(action))?;
        let mut forgotten = 0;
        for row in &rows {
            let uid: String = column(row, "uid")?;
            if present_uids.contains(&uid) {
                continue;
            }
            let mut tx = self.pool().begin().await.map_err(StoreError::db(action))?;
            lock_mailbox(&mut tx, mailbox_id, action).await?;
            for table in ["failing_message_attempts", "failing_messages"] {
                let done = sqlx::query(AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE mailbox_id = $1 AND uid = $2"
                )))
                .bind(mailbox_id)
                .bind(&uid)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
                if table == "failing_messages" {
                    forgotten += done.rows_affected();
                }
            }
            tx.commit().await.map_err(StoreError::db(action))?;
        }
        Ok(forgotten)
    }
}
