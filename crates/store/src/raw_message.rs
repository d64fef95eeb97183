//! Raw messages: one row per distinct message stored for a mailbox, pointing at its blob.
//! Kept forever; processing them into tickets is a later stage.

use sqlx::any::AnyRow;

use crate::text::{column, from_db, text_enum};
use crate::{Store, StoreError};

/// Whether the whole message was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RawStatus {
    Stored,
    /// Over the size limit: only its headers (TOP n 0) were stored, or the whole message
    /// with `--oversize download`.
    TooLarge,
}
text_enum!(RawStatus, "raw message status", { Stored => "stored", TooLarge => "too_large" });

/// A message about to be committed (its blob already persisted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRawMessage {
    /// The server's UIDL, when it has one.
    pub uid: Option<String>,
    /// sha256 of the stored octets, lowercase hex: the blob's name.
    pub sha256: String,
    /// Octets stored.
    pub size: u64,
    /// The size the server announced in LIST.
    pub server_size: Option<u64>,
    pub message_id: Option<String>,
    pub status: RawStatus,
}

/// A stored raw message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    pub id: i64,
    pub mailbox_id: i64,
    pub uid: Option<String>,
    pub sha256: String,
    pub size: u64,
    pub server_size: Option<u64>,
    pub message_id: Option<String>,
    pub status: RawStatus,
    pub received_at: i64,
}

/// The columns `raw_from_row` reads (a macro so queries stay `&'static str`).
macro_rules! raw_columns {
    () => {
        "id, mailbox_id, uid, sha256, size, server_size, message_id, status, received_at"
    };
}
pub(crate) use raw_columns;

pub(crate) fn raw_from_row(row: &AnyRow) -> Result<RawMessage, StoreError> {
    Ok(RawMessage {
        id: column(row, "id")?,
        mailbox_id: column(row, "mailbox_id")?,
        uid: column(row, "uid")?,
        sha256: column(row, "sha256")?,
        size: from_db(column(row, "size")?),
        server_size: column::<Option<i64>>(row, "server_size")?.map(from_db),
        message_id: column(row, "message_id")?,
        status: RawStatus::from_stored(&column::<String>(row, "status")?)?,
        received_at: column(row, "received_at")?,
    })
}

impl Store {
    /// One raw message.
    pub async fn raw_message(&self, id: i64) -> Result<Option<RawMessage>, StoreError> {
        let sql = concat!(
            "SELECT ",
            raw_columns!(),
            " FROM raw_messages WHERE id = $1"
        );
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("read a raw message"))?;
        row.as_ref().map(raw_from_row).transpose()
    }

    /// A mailbox's raw messages in arrival order (also those of a removed mailbox).
    pub async fn raw_messages(&self, mailbox_id: i64) -> Result<Vec<RawMessage>, StoreError> {
        let sql = concat!(
            "SELECT ",
            raw_columns!(),
            " FROM raw_messages WHERE mailbox_id = $1 ORDER BY id"
        );
        let rows = sqlx::query(sql)
            .bind(mailbox_id)
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("list raw messages"))?;
        rows.iter().map(raw_from_row).collect()
    }

    /// How many raw messages a mailbox has.
    pub async fn count_raw_messages(&self, mailbox_id: i64) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM raw_messages WHERE mailbox_id = $1")
            .bind(mailbox_id)
            .fetch_one(self.pool())
            .await
            .map_err(StoreError::db("count raw messages"))?;
        Ok(from_db(column(&row, "n")?))
    }
}
