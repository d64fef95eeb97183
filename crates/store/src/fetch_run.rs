//! Fetch runs: every run is recorded with its counts, outcome and error, so an admin can
//! always see why mail did or did not come in. Counts are saved after every batch, so a
//! run that was killed still shows what it did.

use sqlx::any::AnyRow;

use crate::ledger::lock_mailbox;
use crate::text::{column, from_db, text_enum, to_db};
use crate::{Store, StoreError};

/// What a run did, in numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Messages the server listed.
    pub listed: u64,
    /// Messages downloaded and stored.
    pub downloaded: u64,
    /// Messages deleted from the server.
    pub deleted: u64,
    /// Listed messages the ledger already knew.
    pub already_known: u64,
    /// Messages over the size limit.
    pub too_large: u64,
    /// Downloaded messages whose content this mailbox already had.
    pub duplicates: u64,
    /// Octets stored.
    pub bytes: u64,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunOutcome {
    /// Not finished (or its process died and no later run noticed yet).
    Running,
    Success,
    /// Failed in a way that heals by itself (network, IN-USE, disk full): retried later.
    Transient,
    /// Failed in a way that needs the admin (refused login, bad certificate).
    Permanent,
    /// Its process died before it finished; noticed when the next run started.
    Interrupted,
    /// Stopped at a safe point because popdesk was shutting down; the next run carries on.
    Cancelled,
}
text_enum!(RunOutcome, "run outcome", {
    Running => "running",
    Success => "success",
    Transient => "transient",
    Permanent => "permanent",
    Interrupted => "interrupted",
    Cancelled => "cancelled",
});

/// One recorded fetch run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRun {
    pub id: i64,
    pub mailbox_id: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub counts: RunCounts,
    pub outcome: RunOutcome,
    pub error: Option<String>,
}

/// The error recorded on runs found still 'running' when a new one starts.
const INTERRUPTED: &str = "the process running this fetch stopped before it finished (killed or crashed); the next run carried on where it stopped";

fn run_from_row(row: &AnyRow) -> Result<FetchRun, StoreError> {
    let count = |name: &str| column::<i64>(row, name).map(from_db);
    Ok(FetchRun {
        id: column(row, "id")?,
        mailbox_id: column(row, "mailbox_id")?,
        started_at: column(row, "started_at")?,
        finished_at: column(row, "finished_at")?,
        counts: RunCounts {
            listed: count("listed")?,
            downloaded: count("downloaded")?,
            deleted: count("deleted")?,
            already_known: count("already_known")?,
            too_large: count("too_large")?,
            duplicates: count("duplicates")?,
            bytes: count("bytes")?,
        },
        outcome: RunOutcome::from_stored(&column::<String>(row, "outcome")?)?,
        error: column(row, "error")?,
    })
}

/// The counts as database integers, in column order.
fn count_values(counts: &RunCounts) -> Result<[i64; 7], StoreError> {
    Ok([
        to_db("listed count", counts.listed)?,
        to_db("downloaded count", counts.downloaded)?,
        to_db("deleted count", counts.deleted)?,
        to_db("already known count", counts.already_known)?,
        to_db("too large count", counts.too_large)?,
        to_db("duplicates count", counts.duplicates)?,
        to_db("byte count", counts.bytes)?,
    ])
}

impl Store {
    /// Records a new run and returns its id. The mailbox's older runs still marked
    /// running are marked interrupted: the caller holds the mailbox's lease, so their
    /// processes are gone.
    pub async fn start_run(&self, mailbox_id: i64, now: i64) -> Result<i64, StoreError> {
        self.start_run_by(mailbox_id, now, None).await
    }

    /// [`Store::start_run`], naming the process that runs it ("host:pid").
    pub async fn start_run_by(
        &self,
        mailbox_id: i64,
        now: i64,
        fetcher: Option<&str>,
    ) -> Result<i64, StoreError> {
        let action = "record the start of the fetch run";
        let mut tx = self.pool().begin().await.map_err(StoreError::db(action))?;
        lock_mailbox(&mut tx, mailbox_id, action).await?;
        sqlx::query(
            "UPDATE fetch_runs SET outcome = 'interrupted', error = $1 \
             WHERE mailbox_id = $2 AND outcome = 'running'",
        )
        .bind(INTERRUPTED)
        .bind(mailbox_id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(action))?;
        let row = sqlx::query(
            "INSERT INTO fetch_runs (mailbox_id, started_at, finished_at, listed, downloaded, \
             deleted, already_known, too_large, duplicates, bytes, outcome, error, fetcher) \
             VALUES ($1, $2, NULL, 0, 0, 0, 0, 0, 0, 0, 'running', NULL, $3) RETURNING id",
        )
        .bind(mailbox_id)
        .bind(now)
        .bind(fetcher)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::db(action))?;
        let id = column(&row, "id")?;
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(id)
    }

    /// Records how a run ended.
    pub async fn finish_run(
        &self,
        run_id: i64,
        now: i64,
        counts: &RunCounts,
        outcome: RunOutcome,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let [
            listed,
            downloaded,
            deleted,
            already_known,
            too_large,
            duplicates,
            bytes,
        ] = count_values(counts)?;
        let done = sqlx::query(
            "UPDATE fetch_runs SET finished_at = $1, listed = $2, downloaded = $3, deleted = $4, \
             already_known = $5, too_large = $6, duplicates = $7, bytes = $8, outcome = $9, \
             error = $10 WHERE id = $11",
        )
        .bind(now)
        .bind(listed)
        .bind(downloaded)
        .bind(deleted)
        .bind(already_known)
        .bind(too_large)
        .bind(duplicates)
        .bind(bytes)
        .bind(outcome.as_str())
        .bind(error)
        .bind(run_id)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("record the end of the fetch run"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::RunNotFound(run_id));
        }
        Ok(())
    }

    /// Saves a running run's progress (after each batch).
    pub async fn update_run_counts(
        &self,
        run_id: i64,
        counts: &RunCounts,
    ) -> Result<(), StoreError> {
        let [
            listed,
            downloaded,
            deleted,
            already_known,
            too_large,
            duplicates,
            bytes,
        ] = count_values(counts)?;
        let done = sqlx::query(
            "UPDATE fetch_runs SET listed = $1, downloaded = $2, deleted = $3, \
             already_known = $4, too_large = $5, duplicates = $6, bytes = $7 WHERE id = $8",
        )
        .bind(listed)
        .bind(downloaded)
        .bind(deleted)
        .bind(already_known)
        .bind(too_large)
        .bind(duplicates)
        .bind(bytes)
        .bind(run_id)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("save the fetch run's progress"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::RunNotFound(run_id));
        }
        Ok(())
    }

    /// The mailbox's latest runs, newest first.
    pub async fn runs(&self, mailbox_id: i64, limit: u32) -> Result<Vec<FetchRun>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, mailbox_id, started_at, finished_at, listed, downloaded, deleted, \
             already_known, too_large, duplicates, bytes, outcome, error FROM fetch_runs \
             WHERE mailbox_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(mailbox_id)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("list the fetch runs"))?;
        rows.iter().map(run_from_row).collect()
    }

    /// When each mailbox last finished a successful run (mailboxes without one are left
    /// out): for metrics and status right after a restart.
    pub async fn last_success_by_mailbox(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT mailbox_id, MAX(finished_at) AS finished_at FROM fetch_runs \
             WHERE outcome = 'success' AND finished_at IS NOT NULL GROUP BY mailbox_id",
        )
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("read the last successful runs"))?;
        rows.iter()
            .map(|row| Ok((column(row, "mailbox_id")?, column(row, "finished_at")?)))
            .collect()
    }
}
