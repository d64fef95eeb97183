//! Failed sign-ins per key (an address's hash, a client network), in the database so that
//! every popdesk process on it counts the same failures: an attacker gains nothing by
//! spreading guesses over the nodes behind a load balancer.
//!
//! A key counts failures in a fixed window that starts with its first failure. Counting
//! is one conditional upsert per key, inside one transaction for all of an attempt's
//! keys, so parallel attempts on any number of nodes cannot all slip under a limit.

use sqlx::Row as _;

use crate::{Store, StoreError};

/// One key an attempt counts against, and the failures it may have in a window.
#[derive(Debug, Clone, Copy)]
pub struct SignInKey<'a> {
    pub key: &'a str,
    pub max: u32,
}

impl Store {
    /// Counts an attempt as a failure against every key, unless one of them is at its
    /// limit: then nothing is counted and `Ok(Err(ms))` says how long until it may try
    /// again. Keys whose window ended start a new one.
    pub async fn reserve_sign_in(
        &self,
        keys: &[SignInKey<'_>],
        window_ms: i64,
        now: i64,
    ) -> Result<Result<(), i64>, StoreError> {
        let action = "count a sign-in attempt";
        let expired = now.saturating_sub(window_ms);
        let mut tx = self.pool().begin().await.map_err(StoreError::db(action))?;
        for key in keys {
            let max = i64::from(key.max.max(1));
            let counted = sqlx::query(
                "INSERT INTO sign_in_failures (limit_key, window_start, failures, at_limit, touched_at) \
                 VALUES ($1, $2, 1, CASE WHEN 1 >= $4 THEN 1 ELSE 0 END, $2) \
                 ON CONFLICT (limit_key) DO UPDATE SET \
                   window_start = CASE WHEN sign_in_failures.window_start <= $3 \
                     THEN excluded.window_start ELSE sign_in_failures.window_start END, \
                   failures = CASE WHEN sign_in_failures.window_start <= $3 \
                     THEN 1 ELSE sign_in_failures.failures + 1 END, \
                   at_limit = CASE WHEN (CASE WHEN sign_in_failures.window_start <= $3 \
                     THEN 1 ELSE sign_in_failures.failures + 1 END) >= $4 THEN 1 ELSE 0 END, \
                   touched_at = excluded.touched_at \
                 WHERE sign_in_failures.window_start <= $3 OR sign_in_failures.failures < $4 \
                 RETURNING failures",
            )
            .bind(key.key)
            .bind(now)
            .bind(expired)
            .bind(max)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
            if counted.is_none() {
                let start: i64 =
                    sqlx::query("SELECT window_start FROM sign_in_failures WHERE limit_key = $1")
                        .bind(key.key)
                        .fetch_one(&mut *tx)
                        .await
                        .and_then(|row| row.try_get(0))
                        .map_err(StoreError::db(action))?;
                // Nothing of this attempt counts.
                tx.rollback().await.map_err(StoreError::db(action))?;
                return Ok(Err((start.saturating_add(window_ms) - now).max(1)));
            }
        }
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(Ok(()))
    }

    /// A reserved attempt succeeded: `forget` starts afresh, and the attempt no longer
    /// counts against `take_back` (if it is still in the window the attempt counted in).
    pub async fn sign_in_succeeded(
        &self,
        forget: &str,
        take_back: Option<SignInKey<'_>>,
        attempt_at: i64,
    ) -> Result<(), StoreError> {
        let action = "record a successful sign-in";
        let mut tx = self.pool().begin().await.map_err(StoreError::db(action))?;
        sqlx::query("DELETE FROM sign_in_failures WHERE limit_key = $1")
            .bind(forget)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        if let Some(key) = take_back {
            sqlx::query(
                "UPDATE sign_in_failures SET failures = failures - 1, \
                   at_limit = CASE WHEN failures - 1 >= $3 THEN 1 ELSE 0 END \
                 WHERE limit_key = $1 AND window_start <= $2 AND failures > 0",
            )
            .bind(key.key)
            .bind(attempt_at)
            .bind(i64::from(key.max.max(1)))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
            sqlx::query("DELETE FROM sign_in_failures WHERE limit_key = $1 AND failures <= 0")
                .bind(key.key)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
        }
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(())
    }

    /// Keeps at most `max_keys` keys: forgets those whose window ended, then those
    /// touched longest ago that lock nothing, and keys at their limit only when no other
    /// is left — so a flood of made-up addresses evicts its own spray first. Returns how
    /// many keys remain.
    pub async fn prune_sign_in_failures(
        &self,
        window_ms: i64,
        now: i64,
        max_keys: usize,
    ) -> Result<usize, StoreError> {
        let action = "forget old sign-in failures";
        sqlx::query("DELETE FROM sign_in_failures WHERE window_start <= $1")
            .bind(now.saturating_sub(window_ms))
            .execute(self.pool())
            .await
            .map_err(StoreError::db(action))?;
        let count: i64 = sqlx::query("SELECT COUNT(*) FROM sign_in_failures")
            .fetch_one(self.pool())
            .await
            .and_then(|row| row.try_get(0))
            .map_err(StoreError::db(action))?;
        let count = usize::try_from(count).unwrap_or(0);
        if count <= max_keys {
            return Ok(count);
        }
        let over = i64::try_from(count - max_keys).unwrap_or(i64::MAX);
        let evicted = sqlx::query(
            "DELETE FROM sign_in_failures WHERE limit_key IN \
             (SELECT limit_key FROM sign_in_failures ORDER BY at_limit, touched_at LIMIT $1)",
        )
        .bind(over)
        .execute(self.pool())
        .await
        .map_err(StoreError::db(action))?
        .rows_affected();
        let left = count.saturating_sub(usize::try_from(evicted).unwrap_or(0));
        Ok(left)
    }
}
