//! The per-mailbox UIDL ledger (promise 2) and the batch commit that feeds it (promise 1).
//!
//! Every UIDL the fetcher has dealt with has a row: a message that comes back (a lost
//! QUIT, a provider that keeps mail) is recognised and only deleted again, never
//! downloaded twice. Mail that comes back under a new UIDL is caught by the unique
//! (mailbox_id, sha256) of raw messages: per mailbox, never across mailboxes, because the
//! same mail rightly reaches two support addresses.

use std::collections::{BTreeSet, HashMap};

use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::blob::is_sha256_hex;
use crate::processing::value_rows;
use crate::raw_message::{NewRawMessage, RawStatus};
use crate::text::{column, db_text_opt, text_enum, to_db};
use crate::{Store, StoreError};

/// What the fetcher did with a UIDL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LedgerState {
    /// Downloaded and stored.
    Stored,
    /// On the server at the first run with `--start now`: never imported.
    Seeded,
    /// Over the size limit: headers (or the whole message) stored as too large.
    TooLarge,
    /// Downloaded, and its content was already stored for this mailbox.
    Duplicate,
}
text_enum!(LedgerState, "ledger state", {
    Stored => "stored",
    Seeded => "seeded",
    TooLarge => "too_large",
    Duplicate => "duplicate",
});

impl LedgerState {
    /// The state a UIDL gets when its message is committed: one rule for the row
    /// [`Store::commit_batch`] writes and for the copy of the ledger a fetch run keeps
    /// in memory between its sessions.
    pub fn committed(outcome: CommitOutcome, status: RawStatus) -> LedgerState {
        match (outcome, status) {
            (CommitOutcome::Duplicate { .. }, _) => LedgerState::Duplicate,
            (CommitOutcome::Stored { .. }, RawStatus::Stored) => LedgerState::Stored,
            (CommitOutcome::Stored { .. }, RawStatus::TooLarge) => LedgerState::TooLarge,
        }
    }
}

/// One UIDL of a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub uid: String,
    pub state: LedgerState,
    pub raw_message_id: Option<i64>,
    pub first_seen_at: i64,
    /// When the server confirmed its deletion (QUIT answered +OK).
    pub deleted_at: Option<i64>,
}

/// What [`Store::commit_batch`] did with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// A new raw message.
    Stored { raw_message_id: i64 },
    /// This mailbox already had a message with these octets; nothing new was stored.
    Duplicate { raw_message_id: i64 },
}

impl CommitOutcome {
    /// The raw message the item ended up as.
    pub fn raw_message_id(self) -> i64 {
        match self {
            CommitOutcome::Stored { raw_message_id }
            | CommitOutcome::Duplicate { raw_message_id } => raw_message_id,
        }
    }
}

/// Rows per multi-row statement: well under SQLite's and PostgreSQL's parameter limits,
/// and few round trips for a mailbox with tens of thousands of messages.
const CHUNK: usize = 500;

/// Messages per multi-row insert of a batch commit: 8 values each, far below the
/// databases' limits on bound values.
const INSERT_CHUNK: usize = 100;

fn entry_from_row(row: &AnyRow) -> Result<LedgerEntry, StoreError> {
    Ok(LedgerEntry {
        uid: column(row, "uid")?,
        state: LedgerState::from_stored(&column::<String>(row, "state")?)?,
        raw_message_id: column(row, "raw_message_id")?,
        first_seen_at: column(row, "first_seen_at")?,
        deleted_at: column(row, "deleted_at")?,
    })
}

/// `$first, $first+1, ...` for `n` parameters. Statements built with it contain only
/// placeholders, never data, hence the `AssertSqlSafe`s below.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// The mailbox's ledger, oldest first.
    pub async fn ledger(&self, mailbox_id: i64) -> Result<Vec<LedgerEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT uid, state, raw_message_id, first_seen_at, deleted_at FROM ledger \
             WHERE mailbox_id = $1 ORDER BY first_seen_at, uid",
        )
        .bind(mailbox_id)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("read the mailbox's ledger"))?;
        rows.iter().map(entry_from_row).collect()
    }

    /// The ledger rows of these UIDLs, for those that have one (in no particular
    /// order): what a session's listing needs to know, read in a few queries, however
    /// long the mailbox's history (rows stay after their message is deleted).
    pub async fn ledger_entries(
        &self,
        mailbox_id: i64,
        uids: &[String],
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let mut entries = Vec::new();
        for chunk in uids.chunks(CHUNK) {
            let sql = format!(
                "SELECT uid, state, raw_message_id, first_seen_at, deleted_at FROM ledger \
                 WHERE mailbox_id = $1 AND uid IN ({})",
                placeholders(2, chunk.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(mailbox_id);
            for uid in chunk {
                query = query.bind(uid.as_str());
            }
            let rows = query
                .fetch_all(self.pool())
                .await
                .map_err(StoreError::db("read the mailbox's ledger"))?;
            for row in &rows {
                entries.push(entry_from_row(row)?);
            }
        }
        Ok(entries)
    }

    /// Records UIDLs as seen without importing them (`--start now`). UIDLs already in the
    /// ledger keep their row. All or nothing.
    pub async fn seed_ledger(
        &self,
        mailbox_id: i64,
        uids: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        let uids: Vec<&String> = uids.iter().collect::<BTreeSet<_>>().into_iter().collect();
        if uids.is_empty() {
            return Ok(());
        }
        let action = "seed the mailbox's ledger";
        let mut tx = self.pool().begin().await.map_err(StoreError::db(action))?;
        lock_mailbox(&mut tx, mailbox_id, action).await?;
        for chunk in uids.chunks(CHUNK) {
            let values = (0..chunk.len())
                .map(|i| format!("($1, ${}, 'seeded', NULL, $2, NULL)", i + 3))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO ledger (mailbox_id, uid, state, raw_message_id, first_seen_at, \
                 deleted_at) VALUES {values} ON CONFLICT (mailbox_id, uid) DO NOTHING"
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(mailbox_id).bind(now);
            for uid in chunk {
                query = query.bind(uid.as_str());
            }
            query
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
        }
        tx.commit().await.map_err(StoreError::db(action))
    }

    /// Commits one batch in ONE transaction: for each item its raw message row (or the
    /// existing one with the same octets in this mailbox: a duplicate) and, when it has a
    /// UIDL, its ledger row; a message that had failed before is no longer failing (see
    /// [`Store::failing_messages`]). Returns one outcome per item, in order. If it fails, nothing
    /// of the batch is visible.
    ///
    /// Call it only after [`BlobStore::persist`](crate::BlobStore::persist) returned for
    /// these blobs, and delete from the server only after it returned.
    pub async fn commit_batch(
        &self,
        mailbox_id: i64,
        items: &[NewRawMessage],
        now: i64,
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        self.commit_raw_messages(self.pool(), mailbox_id, items, now)
            .await
    }

    /// [`Store::commit_batch`] for one part of a session's download, durable only once
    /// [`Store::sync_commits`] returns (or a later durable commit does): a session
    /// commits many parts and deletes from the server once, at its end, so one sync
    /// there stands for a sync per part. Delete from the server only after that sync.
    pub async fn commit_part(
        &self,
        mailbox_id: i64,
        items: &[NewRawMessage],
        now: i64,
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        self.commit_raw_messages(self.deferred_sync_pool(), mailbox_id, items, now)
            .await
    }

    async fn commit_raw_messages(
        &self,
        pool: &sqlx::AnyPool,
        mailbox_id: i64,
        items: &[NewRawMessage],
        now: i64,
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        for item in items {
            if !is_sha256_hex(&item.sha256) {
                return Err(StoreError::InvalidDigest(item.sha256.clone()));
            }
        }
        let action = "commit the batch of messages";
        // Sizes and Message-IDs as the database takes them, before the write lock.
        let mut rows = Vec::with_capacity(items.len());
        for item in items {
            rows.push((
                to_db("message size", item.size)?,
                item.server_size
                    .map(|s| to_db("message size", s))
                    .transpose()?,
                db_text_opt(item.message_id.as_deref()),
            ));
        }
        let _writer = self.sqlite_writer().await;
        let mut tx = pool.begin().await.map_err(StoreError::db(action))?;
        lock_mailbox(&mut tx, mailbox_id, action).await?;
        // A statement per chunk of messages, not two per message: each statement is a
        // round trip to the database's thread, and the write lock is held throughout.
        // The first of equal octets in the batch is the one inserted; the others, and
        // those already stored, are its duplicates.
        let mut first_of: HashMap<&str, usize> = HashMap::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            first_of.entry(item.sha256.as_str()).or_insert(i);
        }
        let firsts: Vec<usize> = (0..items.len())
            .filter(|&i| first_of.get(items[i].sha256.as_str()) == Some(&i))
            .collect();
        let mut ids: HashMap<&str, CommitOutcome> = HashMap::with_capacity(items.len());
        for chunk in firsts.chunks(INSERT_CHUNK) {
            // Only placeholders are formatted in, never data.
            let sql = format!(
                "INSERT INTO raw_messages (mailbox_id, uid, sha256, size, server_size, \
                 message_id, status, received_at) VALUES {} \
                 ON CONFLICT (mailbox_id, sha256) DO NOTHING RETURNING id, sha256",
                value_rows(1, chunk.len(), 8)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for &i in chunk {
                let (item, (size, server_size, message_id)) = (&items[i], &rows[i]);
                query = query
                    .bind(mailbox_id)
                    .bind(item.uid.as_deref())
                    .bind(item.sha256.as_str())
                    .bind(*size)
                    .bind(*server_size)
                    .bind(message_id.as_deref())
                    .bind(item.status.as_str())
                    .bind(now);
            }
            let rows = query
                .fetch_all(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
            outcomes_by_digest(&rows, items, &first_of, stored, &mut ids)?;
            // Those not inserted were stored before.
            let known: Vec<&str> = chunk
                .iter()
                .map(|&i| items[i].sha256.as_str())
                .filter(|sha256| !ids.contains_key(sha256))
                .collect();
            if known.is_empty() {
                continue;
            }
            let sql = format!(
                "SELECT id, sha256 FROM raw_messages WHERE mailbox_id = $1 AND sha256 IN ({})",
                placeholders(2, known.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(mailbox_id);
            for sha256 in &known {
                query = query.bind(*sha256);
            }
            let rows = query
                .fetch_all(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
            outcomes_by_digest(&rows, items, &first_of, duplicate, &mut ids)?;
        }
        let mut outcomes = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Some(&first) = ids.get(item.sha256.as_str()) else {
                return Err(StoreError::db(action)(sqlx::Error::RowNotFound));
            };
            outcomes.push(if first_of.get(item.sha256.as_str()) == Some(&i) {
                first
            } else {
                CommitOutcome::Duplicate {
                    raw_message_id: first.raw_message_id(),
                }
            });
        }
        // The ledger rows, a UIDL's last message in the batch winning (UIDLs of one
        // listing are distinct anyway). An existing row (seeded, or headers only before)
        // now describes what was stored; it keeps its first_seen_at, and it is on the
        // server again.
        let mut ledger: Vec<(&str, LedgerState, i64)> = Vec::new();
        let mut row_of: HashMap<&str, usize> = HashMap::new();
        for (item, outcome) in items.iter().zip(&outcomes) {
            let Some(uid) = item.uid.as_deref() else {
                continue;
            };
            let row = (
                uid,
                LedgerState::committed(*outcome, item.status),
                outcome.raw_message_id(),
            );
            match row_of.get(uid) {
                Some(&at) => ledger[at] = row,
                None => {
                    row_of.insert(uid, ledger.len());
                    ledger.push(row);
                }
            }
        }
        for chunk in ledger.chunks(INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO ledger (mailbox_id, uid, state, raw_message_id, first_seen_at, \
                 deleted_at) VALUES {} \
                 ON CONFLICT (mailbox_id, uid) DO UPDATE SET state = excluded.state, \
                 raw_message_id = excluded.raw_message_id, deleted_at = NULL",
                value_rows(1, chunk.len(), 6)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (uid, state, raw_message_id) in chunk {
                query = query
                    .bind(mailbox_id)
                    .bind(*uid)
                    .bind(state.as_str())
                    .bind(*raw_message_id)
                    .bind(now)
                    .bind(None::<i64>);
            }
            query
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
        }
        // A message that failed before and arrived now is no longer failing.
        let uids: Vec<&str> = items
            .iter()
            .filter_map(|item| item.uid.as_deref())
            .collect();
        for chunk in uids.chunks(CHUNK) {
            for table in ["failing_message_attempts", "failing_messages"] {
                let sql = format!(
                    "DELETE FROM {table} WHERE mailbox_id = $1 AND uid IN ({})",
                    placeholders(2, chunk.len())
                );
                let mut query = sqlx::query(AssertSqlSafe(sql)).bind(mailbox_id);
                for uid in chunk {
                    query = query.bind(*uid);
                }
                query
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db(action))?;
            }
        }
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(outcomes)
    }

    /// Records that the server confirmed these deletions (QUIT answered +OK). The rows
    /// stay: a provider that keeps mail shows the messages again, and they must be
    /// recognised.
    pub async fn mark_deleted(
        &self,
        mailbox_id: i64,
        uids: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        if uids.is_empty() {
            return Ok(());
        }
        let action = "record deletions in the mailbox's ledger";
        let _writer = self.sqlite_writer().await;
        let mut tx = self.pool().begin().await.map_err(StoreError::db(action))?;
        for chunk in uids.chunks(CHUNK) {
            let sql = format!(
                "UPDATE ledger SET deleted_at = $1 WHERE mailbox_id = $2 AND uid IN ({})",
                placeholders(3, chunk.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(now).bind(mailbox_id);
            for uid in chunk {
                query = query.bind(uid.as_str());
            }
            query
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
        }
        tx.commit().await.map_err(StoreError::db(action))
    }

    /// Housekeeping: drops ledger rows whose deletion was confirmed and whose UIDL the
    /// server no longer lists (`present_uids` is the whole current UIDL list). Returns how
    /// many were dropped. Should such a message ever come back, the per-mailbox content
    /// hash still recognises it.
    pub async fn forget_deleted_absent(
        &self,
        mailbox_id: i64,
        present_uids: &[String],
    ) -> Result<u64, StoreError> {
        let action = "clean up the mailbox's ledger";
        let rows =
            sqlx::query("SELECT uid FROM ledger WHERE mailbox_id = $1 AND deleted_at IS NOT NULL")
                .bind(mailbox_id)
                .fetch_all(self.pool())
                .await
                .map_err(StoreError::db(action))?;
        let present: BTreeSet<&str> = present_uids.iter().map(String::as_str).collect();
        let mut absent = Vec::new();
        for row in &rows {
            let uid: String = column(row, "uid")?;
            if !present.contains(uid.as_str()) {
                absent.push(uid);
            }
        }
        let mut forgotten = 0;
        for chunk in absent.chunks(CHUNK) {
            // deleted_at is checked again: a row stored anew meanwhile is no longer deleted.
            let sql = format!(
                "DELETE FROM ledger WHERE mailbox_id = $1 AND deleted_at IS NOT NULL \
                 AND uid IN ({})",
                placeholders(2, chunk.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(mailbox_id);
            for uid in chunk {
                query = query.bind(uid.as_str());
            }
            let done = query
                .execute(self.pool())
                .await
                .map_err(StoreError::db(action))?;
            forgotten += done.rows_affected();
        }
        Ok(forgotten)
    }
}

/// The first statement of a writing transaction: locks the mailbox row (PostgreSQL) or
/// takes SQLite's write lock at once, so a deferred SQLite transaction never has to
/// upgrade a stale read snapshot (which fails at once instead of waiting), and a
/// concurrent `remove_mailbox` waits for the commit. A missing mailbox is reported as such.
/// Records, for rows of `(id, sha256)`, what happened to the first item of the batch
/// with that content.
fn outcomes_by_digest<'a>(
    rows: &[AnyRow],
    items: &'a [NewRawMessage],
    first_of: &HashMap<&str, usize>,
    outcome: fn(i64) -> CommitOutcome,
    outcomes: &mut HashMap<&'a str, CommitOutcome>,
) -> Result<(), StoreError> {
    for row in rows {
        let sha256: String = column(row, "sha256")?;
        if let Some(&i) = first_of.get(sha256.as_str()) {
            outcomes.insert(items[i].sha256.as_str(), outcome(column(row, "id")?));
        }
    }
    Ok(())
}

fn stored(raw_message_id: i64) -> CommitOutcome {
    CommitOutcome::Stored { raw_message_id }
}

fn duplicate(raw_message_id: i64) -> CommitOutcome {
    CommitOutcome::Duplicate { raw_message_id }
}

pub(crate) async fn lock_mailbox(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    mailbox_id: i64,
    action: &'static str,
) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE mailboxes SET updated_at = updated_at WHERE id = $1")
        .bind(mailbox_id)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db(action))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::MailboxNotFound(mailbox_id));
    }
    Ok(())
}
