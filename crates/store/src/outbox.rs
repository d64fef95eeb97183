//! The outbox: every message popdesk sends, committed before any SMTP (promise 8).
//!
//! A reply is queued in one transaction with its ticket event (and the status the agent
//! chose); its exact bytes are already in the blob store by then. Senders claim due rows
//! for a while (`claimed_until`, and `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several
//! nodes share the work without sending one reply twice), then record what the server
//! said: sent, try again later, or failed with its words.

use serde::Serialize;
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::event::{EVENT_COLUMNS, TicketEvent, event_from_row};
use crate::text::{column, db_text, text_enum};
use crate::ticket::{EntryAttachment, MailboxScope, TicketStatus, attachments_json};
use crate::{Backend, Store, StoreError};

/// What kind of message it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxKind {
    /// An agent's answer.
    Reply,
    /// "We got your message" on a new ticket (promise 10).
    Acknowledgement,
    /// Mail to an agent about a ticket (see `notification.rs`): not part of the ticket's
    /// conversation with the customer, so never shown in its thread.
    Notification,
}
text_enum!(OutboxKind, "outbox message kind", {
    Reply => "reply",
    Acknowledgement => "acknowledgement",
    Notification => "notification",
});

/// Where an outgoing message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting to be sent (first try, or again after a temporary failure).
    Queued,
    /// The server accepted it.
    Sent,
    /// Refused for good, or temporary failures outlasted the retry time; "Send again"
    /// queues it once more.
    Failed,
}
text_enum!(OutboxState, "outbox state", {
    Queued => "queued",
    Sent => "sent",
    Failed => "failed",
});

/// An outgoing message to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxMessage {
    pub ticket_id: i64,
    pub mailbox_id: i64,
    pub kind: OutboxKind,
    /// Without angle brackets; fixed now, so a resend is the identical message.
    pub message_id: String,
    /// The exact bytes, already persisted in the blob store.
    pub sha256: String,
    pub size: u64,
    pub envelope_from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    /// What the agent wrote (or the acknowledgement's text).
    pub body: String,
    pub attachments: Vec<EntryAttachment>,
    pub author_id: Option<i64>,
    pub author: String,
}

/// A recorded outgoing message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxMessage {
    pub id: i64,
    pub ticket_id: i64,
    /// The number people quote.
    pub ticket_number: i64,
    pub mailbox_id: i64,
    pub kind: OutboxKind,
    pub message_id: String,
    pub sha256: String,
    pub size: u64,
    pub envelope_from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub body: String,
    pub attachments: Vec<EntryAttachment>,
    pub author_id: Option<i64>,
    pub author: String,
    pub state: OutboxState,
    /// Sending attempts so far.
    pub attempts: u32,
    pub next_attempt_at: i64,
    /// The server's (or the network's) words at the last failed attempt.
    pub last_error: Option<String>,
    pub queued_at: i64,
    /// Retries stop some time after this (reset by "Send again").
    pub retry_from: i64,
    pub sent_at: Option<i64>,
    pub failed_at: Option<i64>,
}

impl OutboxMessage {
    /// Every recipient, To then Cc.
    pub fn recipients(&self) -> impl Iterator<Item = &str> {
        self.to.iter().chain(self.cc.iter()).map(String::as_str)
    }
}

/// A new ticket waiting for its acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedAcknowledgement {
    pub ticket_id: i64,
    pub mailbox_id: i64,
    /// The requester's address.
    pub address: String,
    pub created_at: i64,
}

/// What became of a wanted acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcknowledgementOutcome {
    /// Queued as this outbox message.
    Queued(Box<OutboxMessage>),
    /// This address got one from this mailbox at this time, within the period.
    RecentlyAcknowledged { last_sent_at: i64 },
    /// Nobody wanted it any more (another sender took it, or the ticket is gone).
    NotWanted,
}

const OUTBOX_COLUMNS: &str = "o.id, o.ticket_id, t.number AS ticket_number, o.mailbox_id, \
     o.kind, o.message_id, o.sha256, o.size, o.envelope_from, o.to_addresses, o.cc_addresses, \
     o.subject, o.body, o.attachments, o.author_id, o.author, o.state, o.attempts, \
     o.next_attempt_at, o.last_error, o.queued_at, o.retry_from, o.sent_at, o.failed_at";

fn outbox_select(condition: &str) -> String {
    format!(
        "SELECT {OUTBOX_COLUMNS} FROM outbox o JOIN tickets t ON t.id = o.ticket_id {condition}"
    )
}

fn addresses_from(row: &AnyRow, name: &str) -> Result<Vec<String>, StoreError> {
    let text: String = column(row, name)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Unreadable {
        what: "outbox recipients",
        detail: e.to_string(),
    })
}

fn addresses_json(addresses: &[String]) -> String {
    let cleaned: Vec<String> = addresses.iter().map(|a| db_text(a)).collect();
    // A list of strings always serialises.
    serde_json::to_string(&cleaned).unwrap_or_else(|_| "[]".to_string())
}

fn outbox_from_row(row: &AnyRow) -> Result<OutboxMessage, StoreError> {
    let attachments: String = column(row, "attachments")?;
    Ok(OutboxMessage {
        id: column(row, "id")?,
        ticket_id: column(row, "ticket_id")?,
        ticket_number: column(row, "ticket_number")?,
        mailbox_id: column(row, "mailbox_id")?,
        kind: OutboxKind::from_stored(&column::<String>(row, "kind")?)?,
        message_id: column(row, "message_id")?,
        sha256: column(row, "sha256")?,
        size: u64::try_from(column::<i64>(row, "size")?).unwrap_or(0),
        envelope_from: column(row, "envelope_from")?,
        to: addresses_from(row, "to_addresses")?,
        cc: addresses_from(row, "cc_addresses")?,
        subject: column(row, "subject")?,
        body: column(row, "body")?,
        attachments: serde_json::from_str(&attachments).map_err(|e| StoreError::Unreadable {
            what: "attachment list of an outgoing message",
            detail: e.to_string(),
        })?,
        author_id: column(row, "author_id")?,
        author: column(row, "author")?,
        state: OutboxState::from_stored(&column::<String>(row, "state")?)?,
        attempts: u32::try_from(column::<i64>(row, "attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: column(row, "next_attempt_at")?,
        last_error: column(row, "last_error")?,
        queued_at: column(row, "queued_at")?,
        retry_from: column(row, "retry_from")?,
        sent_at: column(row, "sent_at")?,
        failed_at: column(row, "failed_at")?,
    })
}

/// Inserts the outbox row inside a transaction; returns its id.
async fn insert_outbox(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    new: &NewOutboxMessage,
    now: i64,
) -> Result<i64, StoreError> {
    let action = "queue the outgoing message";
    let size = i64::try_from(new.size).map_err(|_| StoreError::UnknownValue {
        what: "message size",
        value: new.size.to_string(),
    })?;
    let row = sqlx::query(
        "INSERT INTO outbox (ticket_id, mailbox_id, kind, message_id, sha256, size, \
         envelope_from, to_addresses, cc_addresses, subject, body, attachments, author_id, \
         author, state, attempts, next_attempt_at, queued_at, retry_from) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'queued', 0, \
         $15, $15, $15) RETURNING id",
    )
    .bind(new.ticket_id)
    .bind(new.mailbox_id)
    .bind(new.kind.as_str())
    .bind(db_text(&new.message_id))
    .bind(&new.sha256)
    .bind(size)
    .bind(db_text(&new.envelope_from))
    .bind(addresses_json(&new.to))
    .bind(addresses_json(&new.cc))
    .bind(db_text(&new.subject))
    .bind(db_text(&new.body))
    .bind(attachments_json(&new.attachments)?)
    .bind(new.author_id)
    .bind(db_text(&new.author))
    .bind(now)
    .fetch_one(&mut **tx)
    .await
    .map_err(StoreError::db(action))?;
    column(&row, "id")
}

impl Store {
    /// Queues an agent's reply in one transaction: the outbox row, a `reply` event in the
    /// ticket's history, and the status the agent chose (with its own event when it
    /// changes). The bytes must already be persisted in the blob store. Returns the
    /// queued message and the events recorded.
    pub async fn queue_reply(
        &self,
        new: &NewOutboxMessage,
        then_status: Option<TicketStatus>,
        now: i64,
    ) -> Result<(OutboxMessage, Vec<TicketEvent>), StoreError> {
        let action = "queue the reply";
        let mut tx = self.pool().begin().await.map_err(StoreError::db(action))?;
        // Claims the ticket row first, so a status change beside it records an honest
        // transition.
        let done = sqlx::query("UPDATE tickets SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(new.ticket_id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::TicketNotFound(new.ticket_id));
        }
        let outbox_id = insert_outbox(&mut tx, new, now).await?;
        let mut events = Vec::new();
        let sql = format!(
            "INSERT INTO ticket_events (ticket_id, kind, author_id, author, body, outbox_id, \
             created_at) VALUES ($1, 'reply', $2, $3, $4, $5, $6) RETURNING {EVENT_COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(new.ticket_id)
            .bind(new.author_id)
            .bind(db_text(&new.author))
            .bind(db_text(&new.body))
            .bind(outbox_id)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        events.push(event_from_row(&row)?);
        if let Some(status) = then_status {
            let row = sqlx::query("SELECT status FROM tickets WHERE id = $1")
                .bind(new.ticket_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
            let from = TicketStatus::from_stored(&column::<String>(&row, "status")?)?;
            if from != status {
                sqlx::query("UPDATE tickets SET status = $1 WHERE id = $2")
                    .bind(status.as_str())
                    .bind(new.ticket_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db(action))?;
                let sql = format!(
                    "INSERT INTO ticket_events \
                     (ticket_id, kind, author_id, author, from_status, to_status, created_at) \
                     VALUES ($1, 'status', $2, $3, $4, $5, $6) RETURNING {EVENT_COLUMNS}"
                );
                let row = sqlx::query(AssertSqlSafe(sql))
                    .bind(new.ticket_id)
                    .bind(new.author_id)
                    .bind(db_text(&new.author))
                    .bind(from.as_str())
                    .bind(status.as_str())
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(StoreError::db(action))?;
                events.push(event_from_row(&row)?);
            }
        }
        let row = sqlx::query(AssertSqlSafe(outbox_select("WHERE o.id = $1")))
            .bind(outbox_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        let message = outbox_from_row(&row)?;
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok((message, events))
    }

    /// New tickets waiting for an acknowledgement, oldest first.
    pub async fn wanted_acknowledgements(
        &self,
        limit: u32,
    ) -> Result<Vec<WantedAcknowledgement>, StoreError> {
        let rows = sqlx::query(
            "SELECT ticket_id, mailbox_id, address, created_at FROM acknowledgements_wanted \
             ORDER BY created_at, ticket_id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("read the acknowledgements to send"))?;
        rows.iter()
            .map(|row| {
                Ok(WantedAcknowledgement {
                    ticket_id: column(row, "ticket_id")?,
                    mailbox_id: column(row, "mailbox_id")?,
                    address: column(row, "address")?,
                    created_at: column(row, "created_at")?,
                })
            })
            .collect()
    }

    /// Drops a wanted acknowledgement that will not be sent (the reason is the caller's
    /// to log). False when it was no longer wanted.
    pub async fn drop_wanted_acknowledgement(&self, ticket_id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM acknowledgements_wanted WHERE ticket_id = $1")
            .bind(ticket_id)
            .execute(self.pool())
            .await
            .map_err(StoreError::db("drop an acknowledgement"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Queues a ticket's acknowledgement unless its address got one from this mailbox
    /// since `not_before` (promise 10), in one transaction with taking it off the wanted
    /// list: two senders never both queue it. The bytes must already be persisted.
    pub async fn queue_acknowledgement(
        &self,
        new: &NewOutboxMessage,
        address: &str,
        not_before: i64,
        now: i64,
    ) -> Result<AcknowledgementOutcome, StoreError> {
        let action = "queue the acknowledgement";
        let mut tx = self.pool().begin().await.map_err(StoreError::db(action))?;
        let taken = sqlx::query("DELETE FROM acknowledgements_wanted WHERE ticket_id = $1")
            .bind(new.ticket_id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        if taken.rows_affected() == 0 {
            return Ok(AcknowledgementOutcome::NotWanted);
        }
        let address = db_text(&address.trim().to_lowercase());
        let last = sqlx::query(
            "SELECT last_sent_at FROM acknowledged_senders WHERE mailbox_id = $1 AND address = $2",
        )
        .bind(new.mailbox_id)
        .bind(&address)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::db(action))?;
        if let Some(row) = last {
            let last_sent_at: i64 = column(&row, "last_sent_at")?;
            if last_sent_at >= not_before {
                tx.commit().await.map_err(StoreError::db(action))?;
                return Ok(AcknowledgementOutcome::RecentlyAcknowledged { last_sent_at });
            }
        }
        sqlx::query(
            "INSERT INTO acknowledged_senders (mailbox_id, address, last_sent_at) \
             VALUES ($1, $2, $3) \
             ON CONFLICT (mailbox_id, address) DO UPDATE SET last_sent_at = excluded.last_sent_at",
        )
        .bind(new.mailbox_id)
        .bind(&address)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(action))?;
        let id = insert_outbox(&mut tx, new, now).await?;
        let row = sqlx::query(AssertSqlSafe(outbox_select("WHERE o.id = $1")))
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        let message = outbox_from_row(&row)?;
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(AcknowledgementOutcome::Queued(Box::new(message)))
    }

    /// Queues an agent's notification (see `notification.rs`) in one transaction with
    /// taking it off the wanted list: two senders never both queue it, and a crash
    /// between the two leaves it wanted. `None` when it was no longer wanted. The bytes
    /// must already be persisted.
    pub async fn queue_notification(
        &self,
        wanted_id: i64,
        new: &NewOutboxMessage,
        now: i64,
    ) -> Result<Option<OutboxMessage>, StoreError> {
        let action = "queue the notification";
        let mut tx = self.pool().begin().await.map_err(StoreError::db(action))?;
        let taken = sqlx::query("DELETE FROM notifications_wanted WHERE id = $1")
            .bind(wanted_id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        if taken.rows_affected() == 0 {
            return Ok(None);
        }
        let id = insert_outbox(&mut tx, new, now).await?;
        let row = sqlx::query(AssertSqlSafe(outbox_select("WHERE o.id = $1")))
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        let message = outbox_from_row(&row)?;
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(Some(message))
    }

    /// Claims up to `limit` messages due now for `claim_ms`, oldest first: another sender
    /// skips them until then. A sender that dies leaves them to be claimed again once the
    /// claim runs out (the same bytes, the same Message-ID: promise 8).
    pub async fn claim_due_outbox(
        &self,
        now: i64,
        limit: u32,
        claim_ms: i64,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let action = "claim outgoing messages";
        let mut tx = match self.backend() {
            Backend::Sqlite => self.pool().begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool().begin().await,
        }
        .map_err(StoreError::db(action))?;
        let lock = match self.backend() {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "SELECT id FROM outbox WHERE state = 'queued' AND next_attempt_at <= $1 \
             AND (claimed_until IS NULL OR claimed_until <= $1) ORDER BY id LIMIT $2{lock}"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = column(row, "id")?;
            sqlx::query("UPDATE outbox SET claimed_until = $1 WHERE id = $2")
                .bind(now.saturating_add(claim_ms))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
            let row = sqlx::query(AssertSqlSafe(outbox_select("WHERE o.id = $1")))
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
            claimed.push(outbox_from_row(&row)?);
        }
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(claimed)
    }

    /// Claims one message if it is queued and nobody holds it (due or not: the caller
    /// sends it now). `None` otherwise.
    pub async fn claim_outbox_message(
        &self,
        id: i64,
        now: i64,
        claim_ms: i64,
    ) -> Result<Option<OutboxMessage>, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET claimed_until = $1 WHERE id = $2 AND state = 'queued' \
             AND (claimed_until IS NULL OR claimed_until <= $3)",
        )
        .bind(now.saturating_add(claim_ms))
        .bind(id)
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("claim an outgoing message"))?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.outbox_message(id).await
    }

    /// Records that the server accepted the message.
    pub async fn outbox_sent(&self, id: i64, now: i64) -> Result<(), StoreError> {
        self.outbox_update(
            "UPDATE outbox SET state = 'sent', sent_at = $1, attempts = attempts + 1, \
             claimed_until = NULL, last_error = NULL WHERE id = $2",
            id,
            None,
            now,
            None,
        )
        .await
    }

    /// Records a temporary failure: tried again at `next_attempt_at`.
    pub async fn outbox_retry_later(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        self.outbox_update(
            "UPDATE outbox SET attempts = attempts + 1, claimed_until = NULL, last_error = $3, \
             next_attempt_at = $4 WHERE id = $2 AND $1 = $1",
            id,
            Some(error),
            now,
            Some(next_attempt_at),
        )
        .await
    }

    /// Records that the message failed for good, with the server's words.
    pub async fn outbox_failed(&self, id: i64, error: &str, now: i64) -> Result<(), StoreError> {
        self.outbox_update(
            "UPDATE outbox SET state = 'failed', failed_at = $1, attempts = attempts + 1, \
             claimed_until = NULL, last_error = $3 WHERE id = $2",
            id,
            Some(error),
            now,
            None,
        )
        .await
    }

    /// Gives a claimed message back without counting an attempt (the sender is stopping).
    pub async fn outbox_release(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET claimed_until = NULL WHERE id = $1 AND state = 'queued'")
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(StoreError::db("release an outgoing message"))?;
        Ok(())
    }

    async fn outbox_update(
        &self,
        sql: &'static str,
        id: i64,
        error: Option<&str>,
        now: i64,
        next_attempt_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut query = sqlx::query(sql).bind(now).bind(id);
        if let Some(error) = error {
            query = query.bind(db_text(error));
        }
        if let Some(next) = next_attempt_at {
            query = query.bind(next);
        }
        let done = query
            .execute(self.pool())
            .await
            .map_err(StoreError::db("record how sending went"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::OutboxMessageNotFound(id));
        }
        Ok(())
    }

    /// Queues a failed message once more ("Send again"): the same bytes, the same
    /// Message-ID, a fresh retry time. `None` when there is no such message; a message
    /// that is not failed is returned unchanged.
    pub async fn outbox_send_again(
        &self,
        id: i64,
        now: i64,
    ) -> Result<Option<OutboxMessage>, StoreError> {
        sqlx::query(
            "UPDATE outbox SET state = 'queued', next_attempt_at = $1, retry_from = $1, \
             claimed_until = NULL, failed_at = NULL WHERE id = $2 AND state = 'failed'",
        )
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("queue the message again"))?;
        self.outbox_message(id).await
    }

    /// One outgoing message.
    pub async fn outbox_message(&self, id: i64) -> Result<Option<OutboxMessage>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(outbox_select("WHERE o.id = $1")))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("read an outgoing message"))?;
        row.as_ref().map(outbox_from_row).transpose()
    }

    /// The outgoing message with this Message-ID (angle brackets removed), if popdesk
    /// sent it: how our own mail is known when it comes back (promise 9).
    pub async fn outbox_by_message_id(
        &self,
        message_id: &str,
    ) -> Result<Option<OutboxMessage>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(outbox_select("WHERE o.message_id = $1")))
            .bind(db_text(message_id))
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("read an outgoing message"))?;
        row.as_ref().map(outbox_from_row).transpose()
    }

    /// A ticket's outgoing messages to its customers, oldest first. Notifications to
    /// agents are left out: they are not part of the conversation, and which agent
    /// asked for which is their own business.
    pub async fn ticket_outbox(&self, ticket_id: i64) -> Result<Vec<OutboxMessage>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(outbox_select(
            "WHERE o.ticket_id = $1 AND o.kind <> 'notification' ORDER BY o.id",
        )))
        .bind(ticket_id)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("read the ticket's outgoing messages"))?;
        rows.iter().map(outbox_from_row).collect()
    }

    /// Outgoing messages, newest first, optionally in one state.
    pub async fn outbox(
        &self,
        state: Option<OutboxState>,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        self.outbox_in(&MailboxScope::All, state, limit).await
    }

    /// Outgoing messages of the tickets in `scope` (by the ticket's mailbox, as the
    /// ticket list decides), newest first, optionally in one state.
    pub async fn outbox_in(
        &self,
        scope: &MailboxScope,
        state: Option<OutboxState>,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let mut condition = match state {
            Some(_) => "WHERE o.state = $2".to_string(),
            None => "WHERE $2 = $2".to_string(),
        };
        let ids = match scope {
            MailboxScope::All => &[][..],
            MailboxScope::Only(ids) if ids.is_empty() => return Ok(Vec::new()),
            MailboxScope::Only(ids) => ids.as_slice(),
        };
        if !ids.is_empty() {
            // Only placeholders are formatted in, never data.
            let placeholders = (0..ids.len())
                .map(|i| format!("${}", i + 3))
                .collect::<Vec<_>>()
                .join(", ");
            condition.push_str(&format!(" AND t.mailbox_id IN ({placeholders})"));
        }
        condition.push_str(" ORDER BY o.id DESC LIMIT $1");
        let mut query = sqlx::query(AssertSqlSafe(outbox_select(&condition)))
            .bind(i64::from(limit))
            .bind(state.map_or("", OutboxState::as_str));
        for &id in ids {
            query = query.bind(id);
        }
        let rows = query
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("list the outbox"))?;
        rows.iter().map(outbox_from_row).collect()
    }

    /// How many messages wait in each state (for metrics and health).
    pub async fn outbox_counts(&self) -> Result<Vec<(OutboxState, u64)>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state")
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("count the outbox"))?;
        rows.iter()
            .map(|row| {
                Ok((
                    OutboxState::from_stored(&column::<String>(row, "state")?)?,
                    u64::try_from(column::<i64>(row, "n")?).unwrap_or(0),
                ))
            })
            .collect()
    }
}
