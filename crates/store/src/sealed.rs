//! The sealed columns as a whole: re-sealing old secrets for their slots when the store
//! opens, settling a key rotation that a crash interrupted, and rotating the key.
//!
//! Old secrets (format 1, no slot) are re-sealed in one pass when the store opens rather
//! than the first time each is read: a secret that is never read (an SMTP password of a
//! mailbox that does not send) would otherwise stay movable between rows for ever, and one
//! pass at open is a single short transaction over a few rows. The pass only touches rows
//! that still hold format 1, with a compare-and-set, so stores opening at the same time on
//! one database do not overwrite each other.

use std::path::Path;

use sqlx::{AnyPool, AssertSqlSafe};

use crate::db::Backend;
use crate::secret::{
    KEY_FILE, KeySource, OpenedWith, PENDING_KEY_FILE, RotationLock, SEALED_COLUMNS, SealedColumn,
    SecretBox, sync_dir, write_private_file,
};
use crate::text::column;
use crate::{Store, StoreError};

/// One sealed value as read from its column.
struct SealedValue {
    column: &'static SealedColumn,
    row_id: i64,
    sealed: Vec<u8>,
}

/// Every sealed value in the database (rows whose column is NULL hold none). On
/// PostgreSQL inside a transaction, `lock` takes the rows' locks for the re-sealing.
async fn sealed_values<'c, E>(
    executor: E,
    column_def: &'static SealedColumn,
    lock: bool,
) -> Result<Vec<SealedValue>, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let SealedColumn {
        table,
        id_column,
        column: col,
        ..
    } = column_def;
    // The names come from SEALED_COLUMNS, constants of this crate.
    let sql = format!(
        "SELECT {id_column} AS row_id, {col} AS sealed FROM {table} WHERE {col} IS NOT NULL \
         ORDER BY {id_column}{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .fetch_all(executor)
        .await
        .map_err(StoreError::db("read the sealed secrets"))?;
    rows.iter()
        .map(|row| {
            Ok(SealedValue {
                column: column_def,
                row_id: column(row, "row_id")?,
                sealed: column(row, "sealed")?,
            })
        })
        .collect()
}

/// Replaces one sealed value if it is still what was read; false if it changed meanwhile.
async fn replace_sealed<'c, E>(
    executor: E,
    value: &SealedValue,
    resealed: &[u8],
) -> Result<bool, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let SealedColumn {
        table,
        id_column,
        column: col,
        ..
    } = value.column;
    let sql = format!("UPDATE {table} SET {col} = $1 WHERE {id_column} = $2 AND {col} = $3");
    let done = sqlx::query(AssertSqlSafe(sql))
        .bind(resealed.to_vec())
        .bind(value.row_id)
        .bind(value.sealed.clone())
        .execute(executor)
        .await
        .map_err(StoreError::db("store a re-sealed secret"))?;
    Ok(done.rows_affected() == 1)
}

/// Re-seals every sealed secret in one transaction: opened with `opener` (any key it
/// holds), sealed with `sealer` for the same slot. A secret that does not open, or one
/// that changes meanwhile, rolls everything back. The number re-sealed.
async fn reseal_all(
    pool: &AnyPool,
    backend: Backend,
    opener: &SecretBox,
    sealer: &SecretBox,
) -> Result<usize, StoreError> {
    let action = "re-seal the secrets";
    let mut tx = pool.begin().await.map_err(StoreError::db(action))?;
    let mut count = 0;
    for column_def in SEALED_COLUMNS {
        let values = sealed_values(&mut *tx, column_def, backend == Backend::Postgres).await?;
        for value in values {
            let slot = column_def.slot(value.row_id);
            let secret = opener.open(slot, &value.sealed)?;
            let resealed = sealer.seal(slot, secrecy::ExposeSecret::expose_secret(&secret));
            if !replace_sealed(&mut *tx, &value, &resealed).await? {
                return Err(StoreError::SecretChangedDuringRotation {
                    field: column_def.field,
                    row_id: value.row_id,
                });
            }
            count += 1;
        }
    }
    tx.commit().await.map_err(StoreError::db(action))?;
    Ok(count)
}

/// Re-seals the secrets still in format 1 (no slot) as format 2 for their slots. A
/// format-1 secret that does not open is left as it is and logged: the store still opens,
/// and reading it gives the error that tells the admin to type the password again.
pub(crate) async fn upgrade_unbound(pool: &AnyPool, secrets: &SecretBox) -> Result<(), StoreError> {
    for column_def in SEALED_COLUMNS {
        let values = sealed_values(pool, column_def, false).await?;
        for value in values
            .iter()
            .filter(|value| SecretBox::is_unbound(&value.sealed))
        {
            let slot = column_def.slot(value.row_id);
            match secrets.open(slot, &value.sealed) {
                Ok(secret) => {
                    let resealed =
                        secrets.seal(slot, secrecy::ExposeSecret::expose_secret(&secret));
                    // Lost the race to another store doing the same: fine.
                    replace_sealed(pool, value, &resealed).await?;
                }
                Err(error) => {
                    tracing::warn!(%error, "a secret sealed by an earlier popdesk could not be re-sealed")
                }
            }
        }
    }
    Ok(())
}

/// Settles a rotation that did not finish (`secret.key.new` beside `secret.key`): if the
/// database's secrets open with the pending key, the re-sealing had committed and the
/// pending key becomes `secret.key`; if none does, it never committed and the pending key
/// is removed. (A mix, which only a process still sealing with the old key after the
/// commit can leave, is re-sealed with the current key first.) Runs under the rotation
/// lock, so a rotation under way in another process is waited for, never undone.
pub(crate) async fn settle_pending_key(
    pool: &AnyPool,
    backend: Backend,
    data_dir: &Path,
    loaded: SecretBox,
) -> Result<SecretBox, StoreError> {
    if !loaded.has_pending() {
        return Ok(loaded);
    }
    let _lock = RotationLock::take(data_dir).await?;
    // Again under the lock: the rotation may have finished while this open waited.
    let secrets = SecretBox::load_with(data_dir, None).await?;
    if !secrets.has_pending() {
        return Ok(secrets);
    }
    let (mut by_current, mut by_pending) = (0usize, 0usize);
    for column_def in SEALED_COLUMNS {
        for value in sealed_values(pool, column_def, false).await? {
            match secrets.open_reporting(column_def.slot(value.row_id), &value.sealed) {
                Ok((_, OpenedWith::Current)) => by_current += 1,
                Ok((_, OpenedWith::Pending)) => by_pending += 1,
                Err(_) => {}
            }
        }
    }
    let pending_path = data_dir.join(PENDING_KEY_FILE);
    if by_current == 0 {
        tracing::info!(
            "a key rotation had committed before popdesk stopped; {} replaces {}",
            PENDING_KEY_FILE,
            KEY_FILE
        );
        let key_path = data_dir.join(KEY_FILE);
        std::fs::rename(&pending_path, &key_path)
            .map_err(|e| StoreError::io("replace the key file with", &pending_path, e))?;
        sync_dir(data_dir)?;
        return Ok(secrets.promote_pending());
    }
    let current = secrets.without_pending();
    if by_pending > 0 {
        reseal_all(pool, backend, &secrets, &current).await?;
    }
    tracing::info!(
        "a key rotation had not committed before popdesk stopped; {} is removed and {} stays",
        PENDING_KEY_FILE,
        KEY_FILE
    );
    std::fs::remove_file(&pending_path)
        .map_err(|e| StoreError::io("remove the unused key file", &pending_path, e))?;
    sync_dir(data_dir)?;
    Ok(current)
}

impl Store {
    /// Re-seals every secret with `new` in one transaction (e.g. a key from the
    /// environment that the admin switches to afterwards). The store itself goes on
    /// using its own key: open a new store once the key is switched. The number of
    /// secrets re-sealed.
    pub async fn reseal_secrets(&self, new: &SecretBox) -> Result<usize, StoreError> {
        reseal_all(self.pool(), self.backend(), self.secret_box(), new).await
    }

    /// `popdesk secret rotate`: a new random key for the key file, every secret
    /// re-sealed with it in one transaction. The new key is written (0600, fsync) to
    /// `secret.key.new` first and renamed over `secret.key` only after the commit; until
    /// then the old key stays where it is. A crash in between is settled by the next
    /// open. The number of secrets re-sealed.
    ///
    /// This store keeps the old key in memory: processes that have the store open
    /// (`popdesk serve`) must be restarted to seal and open with the new one.
    pub async fn rotate_key(&self) -> Result<usize, StoreError> {
        if self.secret_box().source() != KeySource::File {
            return Err(StoreError::KeyNotInFile);
        }
        let data_dir = self.data_dir().to_path_buf();
        let _lock = RotationLock::take(&data_dir).await?;
        // The key file as it is now (another rotation may have run since this store
        // opened).
        let opener = SecretBox::load_with(&data_dir, None)
            .await?
            .without_pending();
        let key = SecretBox::random_key()?;
        let pending_path = data_dir.join(PENDING_KEY_FILE);
        write_private_file(&pending_path, &key, false)
            .map_err(|e| StoreError::io("write the new key file", &pending_path, e))?;
        sync_dir(&data_dir)?;
        let sealer = SecretBox::from_key(&key);
        let count = match reseal_all(self.pool(), self.backend(), &opener, &sealer).await {
            Ok(count) => count,
            Err(error) => {
                // Nothing committed: the old key stays the key.
                let _ = std::fs::remove_file(&pending_path);
                let _ = sync_dir(&data_dir);
                return Err(error);
            }
        };
        std::fs::rename(&pending_path, data_dir.join(KEY_FILE))
            .map_err(|e| StoreError::io("replace the key file with", &pending_path, e))?;
        sync_dir(&data_dir)?;
        Ok(count)
    }
}
