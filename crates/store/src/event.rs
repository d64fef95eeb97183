//! What people do on a ticket: internal notes, status changes, replies, assignments and
//! merges, kept in order beside the mail entries so a ticket's history says who did what
//! and when.

use serde::Serialize;
use sqlx::any::AnyRow;

use crate::text::{column, text_enum};
use crate::{Store, StoreError, TicketStatus};

/// What kind of thing happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketEventKind {
    /// An internal note: agents see it, the customer never does.
    Note,
    /// The status was changed by a person (or an API client).
    Status,
    /// An answer to the customer, sent by email through the outbox.
    Reply,
    /// The ticket was given to someone, or to nobody.
    Assignment,
    /// Another ticket was merged into this one, or this one into another.
    Merge,
}
text_enum!(TicketEventKind, "ticket event kind", {
    Note => "note",
    Status => "status",
    Reply => "reply",
    Assignment => "assignment",
    Merge => "merge",
});

/// One thing a person did on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketEvent {
    pub id: i64,
    pub ticket_id: i64,
    pub kind: TicketEventKind,
    /// The user, while they exist; `None` for an API token or a removed user.
    pub author_id: Option<i64>,
    /// How the author was shown when it happened (kept after a user is removed).
    pub author: String,
    /// The note's text.
    pub body: Option<String>,
    pub from_status: Option<TicketStatus>,
    pub to_status: Option<TicketStatus>,
    /// A reply's outgoing message (its state, its bytes).
    pub outbox_id: Option<i64>,
    /// An assignment's new assignee, while the user exists; `None` also for "nobody".
    pub assignee_id: Option<i64>,
    /// How an assignment's new assignee was shown when it happened; `None`: nobody.
    pub assignee: Option<String>,
    /// A merge's other ticket: the one merged in, or the one this ticket joined.
    pub other_ticket_number: Option<i64>,
    pub created_at: i64,
}

pub(crate) const EVENT_COLUMNS: &str = "id, ticket_id, kind, author_id, author, body, \
     from_status, to_status, outbox_id, assignee_id, assignee, other_ticket_number, created_at";

fn status_column(row: &AnyRow, name: &str) -> Result<Option<TicketStatus>, StoreError> {
    column::<Option<String>>(row, name)?
        .map(|s| TicketStatus::from_stored(&s))
        .transpose()
}

pub(crate) fn event_from_row(row: &AnyRow) -> Result<TicketEvent, StoreError> {
    Ok(TicketEvent {
        id: column(row, "id")?,
        ticket_id: column(row, "ticket_id")?,
        kind: TicketEventKind::from_stored(&column::<String>(row, "kind")?)?,
        author_id: column(row, "author_id")?,
        author: column(row, "author")?,
        body: column(row, "body")?,
        from_status: status_column(row, "from_status")?,
        to_status: status_column(row, "to_status")?,
        outbox_id: column(row, "outbox_id")?,
        assignee_id: column(row, "assignee_id")?,
        assignee: column(row, "assignee")?,
        other_ticket_number: column(row, "other_ticket_number")?,
        created_at: column(row, "created_at")?,
    })
}

impl Store {
    /// Adds an internal note; it counts as activity on the ticket.
    pub async fn add_ticket_note(
        &self,
        ticket_id: i64,
        author_id: Option<i64>,
        author: &str,
        body: &str,
        now: i64,
    ) -> Result<TicketEvent, StoreError> {
        let action = "add a note to the ticket";
        let mut tx = self.pool().begin().await.map_err(StoreError::db(action))?;
        let done = sqlx::query("UPDATE tickets SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(ticket_id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::TicketNotFound(ticket_id));
        }
        let sql = format!(
            "INSERT INTO ticket_events (ticket_id, kind, author_id, author, body, created_at) \
             VALUES ($1, 'note', $2, $3, $4, $5) RETURNING {EVENT_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ticket_id)
            .bind(author_id)
            .bind(author)
            .bind(body)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        let event = event_from_row(&row)?;
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(event)
    }

    /// Changes a ticket's status and records who did it. `None` when the ticket already
    /// had that status (nothing is recorded).
    pub async fn change_ticket_status(
        &self,
        ticket_id: i64,
        status: TicketStatus,
        author_id: Option<i64>,
        author: &str,
        now: i64,
    ) -> Result<Option<TicketEvent>, StoreError> {
        let action = "change the ticket's status";
        let mut tx = self.pool().begin().await.map_err(StoreError::db(action))?;
        // Claims the row first, so two agents changing it at once record two honest
        // transitions rather than two from the same old status.
        let done = sqlx::query("UPDATE tickets SET updated_at = updated_at WHERE id = $1")
            .bind(ticket_id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::TicketNotFound(ticket_id));
        }
        let row = sqlx::query("SELECT status FROM tickets WHERE id = $1")
            .bind(ticket_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        let from = TicketStatus::from_stored(&column::<String>(&row, "status")?)?;
        if from == status {
            return Ok(None);
        }
        sqlx::query("UPDATE tickets SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(now)
            .bind(ticket_id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        let sql = format!(
            "INSERT INTO ticket_events \
             (ticket_id, kind, author_id, author, from_status, to_status, created_at) \
             VALUES ($1, 'status', $2, $3, $4, $5, $6) RETURNING {EVENT_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ticket_id)
            .bind(author_id)
            .bind(author)
            .bind(from.as_str())
            .bind(status.as_str())
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        let event = event_from_row(&row)?;
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(Some(event))
    }

    /// A ticket's notes and status changes, oldest first.
    pub async fn ticket_events(&self, ticket_id: i64) -> Result<Vec<TicketEvent>, StoreError> {
        let sql =
            format!("SELECT {EVENT_COLUMNS} FROM ticket_events WHERE ticket_id = $1 ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ticket_id)
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("read the ticket's history"))?;
        rows.iter().map(event_from_row).collect()
    }
}
