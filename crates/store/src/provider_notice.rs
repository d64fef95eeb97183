//! What a mailbox's provider does with deleted mail, as the fetcher noticed it.
//!
//! POP3 has no way to ask a server whether `DELE` really deletes. Some providers keep
//! the mail, show it again under new UIDLs, or break UIDL's rules; popdesk survives all
//! of it (the ledger, the per-mailbox content hash) and records here what it saw, so the
//! admin learns why the provider's mailbox keeps filling up or why old mail "came back".
//! A notice is information: nothing reads it to stop polling.

use sqlx::any::AnyRow;

use crate::ledger::lock_mailbox;
use crate::text::{column, from_db, text_enum, to_db};
use crate::{Store, StoreError};

/// A behaviour of the server that POP3 does not promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NoticeKind {
    /// Messages whose deletion the server confirmed (`DELE` +OK, then `QUIT` +OK) are
    /// listed again under the same UIDL.
    KeptAfterDelete,
    /// Messages popdesk already stored are offered again under new UIDLs (Gmail's
    /// recent mode, a provider that re-exports), recognised by their content.
    ReofferedUnderNewUidl,
    /// The server lists messages without UIDL.
    NoUidl,
    /// One listing gives the same UIDL to several messages.
    DuplicateUidls,
}
text_enum!(NoticeKind, "provider notice kind", {
    KeptAfterDelete => "kept_after_delete",
    ReofferedUnderNewUidl => "reoffered_under_new_uidl",
    NoUidl => "no_uidl",
    DuplicateUidls => "duplicate_uidls",
});

/// One behaviour noticed on one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderNotice {
    pub mailbox_id: i64,
    pub kind: NoticeKind,
    pub first_seen_at: i64,
    pub last_seen_at: i64,
    /// Messages showing it in the last run that saw it (kept on the server now, ...).
    pub last_count: u64,
    /// Messages showing it over every run since `first_seen_at`.
    pub total: u64,
}

fn notice_from_row(row: &AnyRow) -> Result<ProviderNotice, StoreError> {
    Ok(ProviderNotice {
        mailbox_id: column(row, "mailbox_id")?,
        kind: NoticeKind::from_stored(&column::<String>(row, "kind")?)?,
        first_seen_at: column(row, "first_seen_at")?,
        last_seen_at: column(row, "last_seen_at")?,
        last_count: from_db(column(row, "last_count")?),
        total: from_db(column(row, "total")?),
    })
}

const COLUMNS: &str = "mailbox_id, kind, first_seen_at, last_seen_at, last_count, total";

impl Store {
    /// The mailbox's notices, in the order of [`NoticeKind`].
    pub async fn provider_notices(
        &self,
        mailbox_id: i64,
    ) -> Result<Vec<ProviderNotice>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM provider_notices WHERE mailbox_id = $1");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(mailbox_id)
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("read the mailbox's provider notices"))?;
        let mut notices = rows
            .iter()
            .map(notice_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        notices.sort_by_key(|n| n.kind);
        Ok(notices)
    }

    /// Every mailbox's notices (one query for a list of mailboxes), by mailbox, then
    /// in the order of [`NoticeKind`].
    pub async fn all_provider_notices(&self) -> Result<Vec<ProviderNotice>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM provider_notices");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("read the provider notices"))?;
        let mut notices = rows
            .iter()
            .map(notice_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        notices.sort_by_key(|n| (n.mailbox_id, n.kind));
        Ok(notices)
    }

    /// Records what one run saw: for each `(kind, messages)` with messages > 0 the
    /// notice is created or brought up to date; `forget` are kinds that stopped, whose
    /// notices go. One transaction.
    pub async fn update_provider_notices(
        &self,
        mailbox_id: i64,
        seen: &[(NoticeKind, u64)],
        forget: &[NoticeKind],
        now: i64,
    ) -> Result<(), StoreError> {
        if seen.iter().all(|(_, n)| *n == 0) && forget.is_empty() {
            return Ok(());
        }
        let action = "record the mailbox's provider notices";
        let mut tx = self.pool().begin().await.map_err(StoreError::db(action))?;
        lock_mailbox(&mut tx, mailbox_id, action).await?;
        for (kind, messages) in seen.iter().filter(|(_, n)| *n > 0) {
            let messages = to_db("message count", *messages)?;
            sqlx::query(
                "INSERT INTO provider_notices (mailbox_id, kind, first_seen_at, last_seen_at, \
                 last_count, total) VALUES ($1, $2, $3, $3, $4, $4) \
                 ON CONFLICT (mailbox_id, kind) DO UPDATE SET last_seen_at = excluded.last_seen_at, \
                 last_count = excluded.last_count, \
                 total = provider_notices.total + excluded.total",
            )
            .bind(mailbox_id)
            .bind(kind.as_str())
            .bind(now)
            .bind(messages)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        }
        for kind in forget {
            sqlx::query("DELETE FROM provider_notices WHERE mailbox_id = $1 AND kind = $2")
                .bind(mailbox_id)
                .bind(kind.as_str())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
        }
        tx.commit().await.map_err(StoreError::db(action))
    }
}
