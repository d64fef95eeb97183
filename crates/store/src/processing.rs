//! The processing queue: every raw message has a processing status (promise 5: what
//! fails is kept, visible and can be reprocessed), and the processor writes its decisions
//! for a batch of messages in one [`ProcessingTx`].

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Transaction};

use crate::raw_message::{RawMessage, raw_columns, raw_from_row};
use crate::text::{column, db_text, db_text_opt, text_enum};
use crate::ticket::{
    NewTicketEntry, Person, Ticket, TicketEntry, TicketStatus, attachments_json, entry_columns,
    entry_from_row, ticket_from_row, ticket_select,
};
use crate::{Backend, Store, StoreError};

// Statements written by both the step-by-step writes and `open_ticket`'s single SQLite
// round trip, spelled once. Macros, not consts: `concat!` joins only literals, and
// `sqlx::query` takes a `&'static str` without formatting.
macro_rules! upsert_person_sql {
    () => {
        concat!(
            "INSERT INTO people (address, name, created_at) VALUES ($1, $2, $3) ",
            person_conflict_sql!(),
            " RETURNING id, address, name"
        )
    };
}

/// What writing a known address again does to the people table: the latest name
/// given wins, no name keeps the known one.
macro_rules! person_conflict_sql {
    () => {
        "ON CONFLICT (address) DO UPDATE SET name = COALESCE(excluded.name, people.name)"
    };
}
pub(crate) use person_conflict_sql;

/// A new ticket's columns, as every insert of one names them.
macro_rules! ticket_columns {
    () => {
        "number, mailbox_id, subject, requester_id, status, created_at, updated_at, \
         first_mail_sent_at, last_mail_sent_at"
    };
}
pub(crate) use ticket_columns;

/// The column list of a new ticket; the VALUES follow.
macro_rules! insert_ticket_sql {
    () => {
        concat!("INSERT INTO tickets (", ticket_columns!(), ") ")
    };
}

/// A new entry's columns after ticket_id and mailbox_id: `bind_entry`'s order, then
/// created_at.
macro_rules! entry_row_columns {
    () => {
        "raw_message_id, message_id, kind, from_address, from_name, subject, sent_at, \
         reply_text, text_body, html_body, attachments, created_at"
    };
}
pub(crate) use entry_row_columns;

/// The column list of a new entry, in `bind_entry`'s order after ticket_id and
/// mailbox_id; the SELECT follows.
macro_rules! insert_entry_sql {
    () => {
        concat!(
            "INSERT INTO ticket_entries (ticket_id, mailbox_id, ",
            entry_row_columns!(),
            ") "
        )
    };
}

/// How many merges a ticket number is followed through.
const MAX_MERGE_HOPS: usize = 16;

/// Where a raw message stands in processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessStatus {
    /// Not processed yet (or set back for reprocessing).
    Pending,
    /// Made into a ticket entry (or recognised as one that exists).
    Processed,
    /// Deliberately not made into a ticket (list mail, our own mail, ...), with a reason.
    Ignored,
    /// Processing failed; kept with the reason, for an admin to look at and reprocess.
    Failed,
}
text_enum!(ProcessStatus, "processing status", {
    Pending => "pending",
    Processed => "processed",
    Ignored => "ignored",
    Failed => "failed",
});

/// What processing decided for one raw message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessRecord {
    pub status: ProcessStatus,
    /// One sentence; empty while pending.
    pub reason: String,
    pub ticket_id: Option<i64>,
    /// One line per processing step. Stored as one text joined by newlines, so a line
    /// that itself holds a newline reads back as several lines.
    pub log: Vec<String>,
    pub processed_at: Option<i64>,
}

/// Rows per `IN (...)` list: well under both databases' parameter limits.
const CHUNK: usize = 500;

/// The processing columns of `raw_messages`, read by `record_from_row`.
macro_rules! record_columns {
    () => {
        "process_status, process_reason, process_ticket_id, process_log, processed_at"
    };
}

fn record_from_row(row: &AnyRow) -> Result<ProcessRecord, StoreError> {
    let log: Option<String> = column(row, "process_log")?;
    Ok(ProcessRecord {
        status: ProcessStatus::from_stored(&column::<String>(row, "process_status")?)?,
        reason: column::<Option<String>>(row, "process_reason")?.unwrap_or_default(),
        ticket_id: column(row, "process_ticket_id")?,
        log: match log {
            Some(log) if !log.is_empty() => log.split('\n').map(str::to_string).collect(),
            _ => Vec::new(),
        },
        processed_at: column(row, "processed_at")?,
    })
}

impl Store {
    /// Raw messages waiting for processing, in arrival order, at most `limit`.
    pub async fn pending_raw_messages(&self, limit: u32) -> Result<Vec<RawMessage>, StoreError> {
        let sql = concat!(
            "SELECT ",
            raw_columns!(),
            " FROM raw_messages WHERE process_status = 'pending' ORDER BY id LIMIT $1"
        );
        let rows = sqlx::query(sql)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("list messages waiting for processing"))?;
        rows.iter().map(raw_from_row).collect()
    }

    /// Raw messages waiting for processing with an id above `after`, in arrival order, at
    /// most `limit`: the next batch while the one before it is still being decided.
    pub async fn pending_raw_messages_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<RawMessage>, StoreError> {
        let sql = concat!(
            "SELECT ",
            raw_columns!(),
            " FROM raw_messages WHERE process_status = 'pending' AND id > $1 ORDER BY id LIMIT $2"
        );
        let rows = sqlx::query(sql)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("list messages waiting for processing"))?;
        rows.iter().map(raw_from_row).collect()
    }

    /// How many stored messages wait to be turned into tickets (the processing backlog).
    pub async fn count_pending_raw_messages(&self) -> Result<u64, StoreError> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM raw_messages WHERE process_status = 'pending'")
                .fetch_one(self.pool())
                .await
                .map_err(StoreError::db("count messages waiting for processing"))?;
        Ok(crate::text::from_db(column(&row, "n")?))
    }

    /// Raw messages with their processing record, newest first, optionally only those
    /// with one status and/or of one mailbox.
    pub async fn raw_messages_with_status(
        &self,
        status: Option<ProcessStatus>,
        mailbox_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(RawMessage, ProcessRecord)>, StoreError> {
        let mut conditions = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if status.is_some() {
            conditions.push(format!("process_status = {}", next()));
        }
        if mailbox_id.is_some() {
            conditions.push(format!("mailbox_id = {}", next()));
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let limit_placeholder = next();
        // Only placeholders are formatted in, never data.
        let sql = format!(
            "SELECT {}, {} FROM raw_messages {where_clause} ORDER BY id DESC LIMIT {limit_placeholder}",
            raw_columns!(),
            record_columns!()
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        if let Some(status) = status {
            query = query.bind(status.as_str());
        }
        if let Some(mailbox_id) = mailbox_id {
            query = query.bind(mailbox_id);
        }
        let rows = query
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("list messages by processing status"))?;
        rows.iter()
            .map(|row| Ok((raw_from_row(row)?, record_from_row(row)?)))
            .collect()
    }

    /// The processing record of one raw message; None if there is no such message.
    pub async fn processing_record(
        &self,
        raw_message_id: i64,
    ) -> Result<Option<ProcessRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            record_columns!(),
            " FROM raw_messages WHERE id = $1"
        );
        let row = sqlx::query(sql)
            .bind(raw_message_id)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("read a message's processing record"))?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// Sets a message back to pending (`message reprocess`), clearing its record. False
    /// if there is no such message. A ticket entry made from it stays: processing is
    /// idempotent by raw message, so reprocessing finds it again.
    pub async fn reset_processing(&self, raw_message_id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE raw_messages SET process_status = 'pending', process_reason = NULL, \
             process_ticket_id = NULL, process_log = NULL, processed_at = NULL WHERE id = $1",
        )
        .bind(raw_message_id)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("set a message back for reprocessing"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets every failed message back to pending; returns how many.
    pub async fn reset_failed(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE raw_messages SET process_status = 'pending', process_reason = NULL, \
             process_ticket_id = NULL, process_log = NULL, processed_at = NULL \
             WHERE process_status = 'failed'",
        )
        .execute(self.pool())
        .await
        .map_err(StoreError::db("set failed messages back for reprocessing"))?;
        Ok(done.rows_affected())
    }

    /// Starts one transaction for a batch of processing decisions: one commit per batch,
    /// not per message. Dropping it without [`ProcessingTx::commit`] rolls the whole
    /// batch back.
    ///
    /// On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`), so a batch never
    /// fails half-way because another process wrote since its first read, and its commit
    /// reaches the disk with the next durable one (see [`Store::deferred_sync_pool`]):
    /// a batch lost to a power cut leaves its messages pending, and they are decided again.
    pub async fn begin_processing(&self) -> Result<ProcessingTx, StoreError> {
        let action = "start processing a batch of messages";
        let writer = self.sqlite_writer().await;
        let tx = match self.backend() {
            Backend::Sqlite => {
                self.deferred_sync_pool()
                    .begin_with("BEGIN IMMEDIATE")
                    .await
            }
            Backend::Postgres => self.pool().begin().await,
        }
        .map_err(StoreError::db(action))?;
        Ok(ProcessingTx {
            tx,
            backend: self.backend(),
            in_message: false,
            search_rows: Vec::new(),
            numbers: None,
            waiting: crate::batch_tickets::WaitingTickets::default(),
            _writer: writer,
        })
    }
}

/// A write transaction for the processor. Lookups see what this transaction already
/// wrote: a reply in the same batch as the mail it answers threads onto the ticket that
/// mail just opened.
pub struct ProcessingTx {
    pub(crate) tx: Transaction<'static, Any>,
    pub(crate) backend: Backend,
    /// Between [`ProcessingTx::begin_message`] and its keep or undo: writes go out at
    /// once, so a refusal belongs to that message.
    pub(crate) in_message: bool,
    /// Search rows of entries added outside a message's savepoint, written together
    /// by [`ProcessingTx::write_deferred`] (nothing in a batch reads them back).
    search_rows: Vec<crate::search::SearchRow>,
    /// SQLite: ticket numbers given out in this transaction, once the counter was read.
    numbers: Option<TicketNumbers>,
    /// SQLite: tickets opened outside a message's savepoint whose writes wait for the
    /// transaction's next statement (see [`ProcessingTx::open_ticket_in_batch`]).
    pub(crate) waiting: crate::batch_tickets::WaitingTickets,
    /// SQLite: this process's turn to write, until the batch commits or is dropped.
    _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
}

/// The SQLite ticket counter as a transaction counts on it in memory.
#[derive(Debug, Clone, Copy)]
struct TicketNumbers {
    /// The last number given out.
    last: i64,
    /// What the counter row holds in this transaction.
    written: i64,
    /// `last` when the current message's savepoint began: an undone message's numbers
    /// are given out again, as its tickets are gone.
    at_message_start: i64,
}

impl std::fmt::Debug for ProcessingTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessingTx")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl ProcessingTx {
    /// The transaction's connection for the next statement, here and in the batch's
    /// writes that live in other files. Tickets the batch opened whose writes are still
    /// waiting ([`ProcessingTx::open_ticket_in_batch`]) are written first, so every
    /// statement sees them and no id is given out twice. The one statement that reads
    /// past them, [`ProcessingTx::ticket_for_message_ids`], matches them in memory.
    pub(crate) async fn db(&mut self) -> Result<&mut sqlx::AnyConnection, StoreError> {
        self.write_opened_tickets().await?;
        Ok(&mut self.tx)
    }

    /// Claims up to `limit` pending messages, oldest first, for this transaction. On
    /// PostgreSQL the rows stay locked until commit and other processors skip them
    /// (`FOR NO KEY UPDATE SKIP LOCKED`: the fetcher's ledger rows that point at them
    /// are not blocked); on SQLite this transaction already holds the one write lock.
    pub async fn claim_pending(&mut self, limit: u32) -> Result<Vec<RawMessage>, StoreError> {
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR NO KEY UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "SELECT {} FROM raw_messages WHERE process_status = 'pending' ORDER BY id LIMIT $1{lock}",
            raw_columns!()
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(i64::from(limit))
            .fetch_all(self.db().await?)
            .await
            .map_err(StoreError::db("claim messages waiting for processing"))?;
        rows.iter().map(raw_from_row).collect()
    }

    /// Of these raw messages (read with [`Store::pending_raw_messages`] and prepared
    /// before the batch began), claims those still pending and returns their ids in
    /// ascending order. Decide only these: the others were processed meanwhile, or (on
    /// PostgreSQL) are in another processor's open batch, locked as in
    /// [`claim_pending`](Self::claim_pending).
    pub async fn claim_raw_messages(
        &mut self,
        raw_message_ids: &[i64],
    ) -> Result<Vec<i64>, StoreError> {
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR NO KEY UPDATE SKIP LOCKED",
        };
        let mut claimed = Vec::with_capacity(raw_message_ids.len());
        for chunk in raw_message_ids.chunks(CHUNK) {
            let placeholders = (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            // Only placeholders are formatted in, never data.
            let sql = format!(
                "SELECT id FROM raw_messages WHERE id IN ({placeholders}) \
                 AND process_status = 'pending' ORDER BY id{lock}"
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(*id);
            }
            let rows = query
                .fetch_all(self.db().await?)
                .await
                .map_err(StoreError::db("claim messages waiting for processing"))?;
            for row in &rows {
                claimed.push(column::<i64>(row, "id")?);
            }
        }
        claimed.sort_unstable();
        Ok(claimed)
    }

    /// What the batch needs to know before its decisions, read in a few queries
    /// instead of several per message: which of these raw messages already have their
    /// entry (processing is idempotent), which of these Message-IDs a mailbox already
    /// holds (the same mail twice stays one entry), and which popdesk sent itself.
    /// `messages` are `(raw message id, mailbox id, Message-ID)`; a synthetic
    /// Message-ID should be left out by giving `None`.
    pub async fn known_for_batch(
        &mut self,
        messages: &[(i64, i64, Option<&str>)],
    ) -> Result<BatchKnown, StoreError> {
        let action = "look up what a batch of messages already has";
        let mut known = BatchKnown::default();
        let row = sqlx::query(
            "SELECT COALESCE(MAX(notify_new_ticket), 0) AS new_ticket, \
             COALESCE(MAX(notify_customer_reply), 0) AS customer_reply \
             FROM users WHERE disabled = 0",
        )
        .fetch_one(self.db().await?)
        .await
        .map_err(StoreError::db(action))?;
        known.someone_hears_of_new_tickets = column::<i64>(&row, "new_ticket")? != 0;
        known.someone_hears_of_customer_replies = column::<i64>(&row, "customer_reply")? != 0;
        let raw_ids: Vec<i64> = messages.iter().map(|(raw, _, _)| *raw).collect();
        for chunk in raw_ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT raw_message_id, ticket_id FROM ticket_entries \
                 WHERE raw_message_id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query
                .fetch_all(self.db().await?)
                .await
                .map_err(StoreError::db(action))?
            {
                known
                    .entry_of_raw
                    .insert(column(&row, "raw_message_id")?, column(&row, "ticket_id")?);
            }
        }
        let mut by_mailbox: HashMap<i64, Vec<String>> = HashMap::new();
        for (_, mailbox_id, message_id) in messages {
            if let Some(message_id) = message_id {
                by_mailbox
                    .entry(*mailbox_id)
                    .or_default()
                    .push(db_text(message_id));
            }
        }
        for (mailbox_id, ids) in &by_mailbox {
            for chunk in ids.chunks(CHUNK) {
                // Oldest first: should two entries share an id, the older one decides.
                let sql = format!(
                    "SELECT message_id, ticket_id FROM ticket_entries \
                     WHERE mailbox_id = $1 AND message_id IN ({}) ORDER BY id",
                    placeholders(2, chunk.len())
                );
                let mut query = sqlx::query(AssertSqlSafe(sql)).bind(*mailbox_id);
                for id in chunk {
                    query = query.bind(id.as_str());
                }
                for row in query
                    .fetch_all(self.db().await?)
                    .await
                    .map_err(StoreError::db(action))?
                {
                    known
                        .entry_with_message_id
                        .entry((*mailbox_id, column(&row, "message_id")?))
                        .or_insert(column(&row, "ticket_id")?);
                }
            }
            for chunk in ids.chunks(CHUNK) {
                let sql = format!(
                    "SELECT message_id, id, ticket_id FROM outbox WHERE message_id IN ({})",
                    placeholders(1, chunk.len())
                );
                let mut query = sqlx::query(AssertSqlSafe(sql));
                for id in chunk {
                    query = query.bind(id.as_str());
                }
                for row in query
                    .fetch_all(self.db().await?)
                    .await
                    .map_err(StoreError::db(action))?
                {
                    known.sent_by_us.insert(
                        column(&row, "message_id")?,
                        (column(&row, "id")?, column(&row, "ticket_id")?),
                    );
                }
            }
        }
        Ok(known)
    }

    /// The ticket with this number in this mailbox (a number quoted in another
    /// mailbox's ticket is not this mailbox's business). A ticket merged into another
    /// answers with the one it joined, wherever that is: its mail lives there now.
    pub async fn ticket_by_number(
        &mut self,
        mailbox_id: i64,
        number: i64,
    ) -> Result<Option<Ticket>, StoreError> {
        let sql = concat!(
            ticket_select!(),
            "WHERE t.mailbox_id = $1 AND t.number = $2"
        );
        let row = sqlx::query(sql)
            .bind(mailbox_id)
            .bind(number)
            .fetch_optional(self.db().await?)
            .await
            .map_err(StoreError::db("read a ticket"))?;
        let Some(mut ticket) = row.as_ref().map(ticket_from_row).transpose()? else {
            return Ok(None);
        };
        // Merges chain (A into B, then B into C); a merge never points back, and the
        // bound only keeps a damaged database from looping.
        for _ in 0..MAX_MERGE_HOPS {
            let Some(into) = ticket.merged_into else {
                break;
            };
            let sql = concat!(ticket_select!(), "WHERE t.number = $1");
            let row = sqlx::query(sql)
                .bind(into)
                .fetch_optional(self.db().await?)
                .await
                .map_err(StoreError::db("read a ticket"))?;
            match row.as_ref().map(ticket_from_row).transpose()? {
                Some(next) => ticket = next,
                None => break,
            }
        }
        Ok(Some(ticket))
    }

    /// The ticket holding an entry with one of these Message-IDs in this mailbox. Tries
    /// the ids in the order given (first hit wins) and returns the ticket with the id
    /// that matched. Should two entries share a matching id, the older one decides.
    pub async fn ticket_for_message_ids(
        &mut self,
        mailbox_id: i64,
        ids: &[String],
    ) -> Result<Option<(Ticket, String)>, StoreError> {
        let action = "look up a ticket by Message-ID";
        // Chunks in the caller's order: a hit in an earlier chunk beats any later one.
        for chunk in ids.chunks(CHUNK) {
            let placeholders = (0..chunk.len())
                .map(|i| format!("${}", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            // Our own replies count like the customer's mail (promise 9): an answer to
            // one of them belongs to its ticket. Not a notification to an agent: it is
            // no part of the conversation, so answering it makes nobody a participant.
            let sql = format!(
                "SELECT message_id, ticket_id, source FROM (\
                 SELECT message_id, ticket_id, 0 AS source, id FROM ticket_entries \
                 WHERE mailbox_id = $1 AND message_id IN ({placeholders}) \
                 UNION ALL SELECT message_id, ticket_id, 1 AS source, id FROM outbox \
                 WHERE mailbox_id = $1 AND kind <> 'notification' \
                 AND message_id IN ({placeholders})) AS known \
                 ORDER BY source, id"
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(mailbox_id);
            for id in chunk {
                query = query.bind(db_text(id));
            }
            // Read past the batch's waiting tickets (see `batch_tickets`) instead of
            // writing them first: most mail names earlier messages, and writing the
            // waiting tickets before each lookup cost a statement for nearly every
            // message of a batch of new requests. Their first entries are looked up in
            // memory instead; their ids are above every written entry's, so they rank
            // after the written entries and before the outbox, as in the query.
            let rows = query
                .fetch_all(&mut *self.tx)
                .await
                .map_err(StoreError::db(action))?;
            let mut found: HashMap<String, i64> = HashMap::new();
            let mut outbox = Vec::new();
            for row in &rows {
                let message_id: String = column(row, "message_id")?;
                let ticket_id: i64 = column(row, "ticket_id")?;
                if column::<i64>(row, "source")? == 0 {
                    found.entry(message_id).or_insert(ticket_id);
                } else {
                    outbox.push((message_id, ticket_id));
                }
            }
            for (message_id, ticket_id) in self.waiting_first_entries(mailbox_id, chunk) {
                found.entry(message_id).or_insert(ticket_id);
            }
            for (message_id, ticket_id) in outbox {
                found.entry(message_id).or_insert(ticket_id);
            }
            let Some((id, ticket_id)) = chunk
                .iter()
                .find_map(|id| found.get(&db_text(id)).map(|&ticket_id| (id, ticket_id)))
            else {
                continue;
            };
            let sql = concat!(ticket_select!(), "WHERE t.id = $1");
            let row = sqlx::query(sql)
                .bind(ticket_id)
                .fetch_one(self.db().await?)
                .await
                .map_err(StoreError::db(action))?;
            return Ok(Some((ticket_from_row(&row)?, id.clone())));
        }
        Ok(None)
    }

    /// The ticket of the outgoing message popdesk sent with this Message-ID, in any
    /// mailbox: mail carrying it is our own coming back (promise 9).
    pub async fn sent_by_us(&mut self, message_id: &str) -> Result<Option<(i64, i64)>, StoreError> {
        let row = sqlx::query("SELECT id, ticket_id FROM outbox WHERE message_id = $1")
            .bind(db_text(message_id))
            .fetch_optional(self.db().await?)
            .await
            .map_err(StoreError::db("look up an outgoing message"))?;
        row.map(|row| Ok((column(&row, "id")?, column(&row, "ticket_id")?)))
            .transpose()
    }

    /// Asks for an acknowledgement of a new ticket (its mailbox sends them); the sender
    /// decides, under promise 10's rules, whether it goes out.
    pub async fn want_acknowledgement(
        &mut self,
        ticket_id: i64,
        mailbox_id: i64,
        address: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO acknowledgements_wanted (ticket_id, mailbox_id, address, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (ticket_id) DO NOTHING",
        )
        .bind(ticket_id)
        .bind(mailbox_id)
        .bind(db_text(&address.trim().to_lowercase()))
        .bind(now)
        .execute(self.db().await?)
        .await
        .map_err(StoreError::db("ask for an acknowledgement"))?;
        Ok(())
    }

    /// Whether `address` (normalized) has taken part in the ticket: its requester, the
    /// sender of one of its messages (not one marked as from a new address: writing
    /// twice does not make a stranger a participant), or an address one of its replies
    /// went to (an agent answering someone takes them in).
    pub async fn is_participant(
        &mut self,
        ticket_id: i64,
        address: &str,
    ) -> Result<bool, StoreError> {
        let address = db_text(&address.to_lowercase());
        let row = sqlx::query(
            "SELECT 1 AS known FROM tickets t JOIN people p ON p.id = t.requester_id \
             WHERE t.id = $1 AND lower(p.address) = $2 \
             UNION ALL SELECT 1 FROM ticket_entries \
             WHERE ticket_id = $1 AND lower(from_address) = $2 AND from_new_address = 0 \
             UNION ALL SELECT 1 FROM outbox WHERE ticket_id = $1 AND kind <> 'notification' \
             AND (lower(to_addresses) LIKE $3 ESCAPE '!' OR lower(cc_addresses) LIKE $3 ESCAPE '!') \
             LIMIT 1",
        )
        .bind(ticket_id)
        .bind(&address)
        // The outbox keeps its recipients as a JSON array of strings.
        .bind(format!(
            "%\"{}\"%",
            address
                .replace('!', "!!")
                .replace('%', "!%")
                .replace('_', "!_")
        ))
        .fetch_optional(self.db().await?)
        .await
        .map_err(StoreError::db("look up the ticket's participants"))?;
        Ok(row.is_some())
    }

    /// Marks an entry as mail from a new address (see [`TicketEntry::from_new_address`]).
    pub async fn mark_from_new_address(&mut self, entry_id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE ticket_entries SET from_new_address = 1 WHERE id = $1")
            .bind(entry_id)
            .execute(self.db().await?)
            .await
            .map_err(StoreError::db("mark an entry as from a new address"))?;
        Ok(())
    }

    /// The ticket entry made from this raw message, if any (what makes processing
    /// idempotent).
    pub async fn entry_for_raw_message(
        &mut self,
        raw_message_id: i64,
    ) -> Result<Option<TicketEntry>, StoreError> {
        let sql = concat!(
            "SELECT ",
            entry_columns!(),
            " FROM ticket_entries WHERE raw_message_id = $1"
        );
        let row = sqlx::query(sql)
            .bind(raw_message_id)
            .fetch_optional(self.db().await?)
            .await
            .map_err(StoreError::db("read a ticket entry"))?;
        row.as_ref().map(entry_from_row).transpose()
    }

    /// The (oldest) entry in this mailbox with this Message-ID: the same mail arriving
    /// twice with different bytes stays one entry. Never across mailboxes.
    pub async fn entry_with_message_id(
        &mut self,
        mailbox_id: i64,
        message_id: &str,
    ) -> Result<Option<TicketEntry>, StoreError> {
        let sql = concat!(
            "SELECT ",
            entry_columns!(),
            " FROM ticket_entries WHERE mailbox_id = $1 AND message_id = $2 ORDER BY id LIMIT 1"
        );
        let row = sqlx::query(sql)
            .bind(mailbox_id)
            .bind(db_text(message_id))
            .fetch_optional(self.db().await?)
            .await
            .map_err(StoreError::db("read a ticket entry"))?;
        row.as_ref().map(entry_from_row).transpose()
    }

    /// Finds or creates the person with this address (trimmed, lower-cased). The latest
    /// name given becomes the person's name; no name (or a blank one) keeps the known
    /// one. Every name a person wrote under stays on their mails' entries
    /// ([`Store::names_of_person`]), and each ticket shows the name of the mail that
    /// opened it.
    pub async fn person(
        &mut self,
        address: &str,
        name: Option<&str>,
    ) -> Result<Person, StoreError> {
        let action = "record a requester";
        let (address, name) = person_key(address, name);
        // PostgreSQL: read first, so the common case (a known customer) takes no row
        // lock and concurrent processors do not queue behind each other's batches.
        // SQLite: the batch holds the one write lock already, and the upsert alone is
        // one statement instead of two.
        if self.backend == Backend::Postgres {
            let row = sqlx::query("SELECT id, address, name FROM people WHERE address = $1")
                .bind(&address)
                .fetch_optional(self.db().await?)
                .await
                .map_err(StoreError::db(action))?;
            if let Some(row) = &row {
                let person = person_from_row(row)?;
                if name.is_none() || person.name == name {
                    return Ok(person);
                }
            }
        }
        // The people table has no other timestamps to agree with, and the signature
        // takes no clock: the wall clock records when a person first wrote.
        let now = wall_clock_ms();
        let row = sqlx::query(upsert_person_sql!())
            .bind(&address)
            .bind(name.as_deref())
            .bind(now)
            .fetch_one(self.db().await?)
            .await
            .map_err(StoreError::db(action))?;
        person_from_row(&row)
    }

    /// Opens a new ticket, status new, with the next ticket number, for `requester`
    /// (as [`ProcessingTx::person`] returned them).
    pub async fn create_ticket(
        &mut self,
        mailbox_id: i64,
        subject: &str,
        requester: &Person,
        now: i64,
    ) -> Result<Ticket, StoreError> {
        self.insert_ticket(mailbox_id, subject, requester, None, now)
            .await
    }

    /// Opens a new ticket for the mail's sender with the mail as its first entry: the
    /// sender's person record as [`person`] keeps it, the ticket (born with its mail's
    /// dates) and the entry. Returns the ticket and the entry's id.
    ///
    /// On SQLite the three writes are one round trip to the database's thread instead
    /// of three: the batch holds the one write lock anyway, and for a mailbox of new
    /// tickets those hand-offs were the largest part of the time the serial half of
    /// processing took. PostgreSQL keeps its read-first [`person`], which spares
    /// concurrent processors a row lock.
    ///
    /// [`person`]: Self::person
    pub async fn open_ticket(
        &mut self,
        mailbox_id: i64,
        subject: &str,
        sender: (&str, Option<&str>),
        first: &NewTicketEntry,
        now: i64,
    ) -> Result<(Ticket, i64), StoreError> {
        if self.backend == Backend::Postgres {
            let requester = self.person(sender.0, sender.1).await?;
            let ticket = self
                .insert_ticket(mailbox_id, subject, &requester, first.sent_at, now)
                .await?;
            let entry_id = match self.insert_entry(ticket.id, mailbox_id, first, now).await {
                Ok(id) => id,
                Err(error @ StoreError::EntryExists { .. }) => {
                    self.withdraw_ticket(ticket.id, ticket.number).await?;
                    return Err(error);
                }
                Err(error) => return Err(error),
            };
            return Ok((
                Ticket {
                    entry_count: 1,
                    ..ticket
                },
                entry_id,
            ));
        }
        let action = "open a ticket";
        let number = self.next_ticket_number().await?;
        let subject = db_text(subject);
        let (address, name) = person_key(sender.0, sender.1);
        let attachments = attachments_json(&first.attachments)?;
        // The ticket takes the person's id by address, the entry the ticket's by
        // last_insert_rowid(): no value travels back between the statements.
        let query = sqlx::query(concat!(
            upsert_person_sql!(),
            "; ",
            insert_ticket_sql!(),
            "VALUES ($4, $5, $6, (SELECT id FROM people WHERE address = $1), $7, $8, $8, \
             $15, $15) RETURNING id; ",
            insert_entry_sql!(),
            "SELECT id, $5, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $8 \
             FROM tickets WHERE id = last_insert_rowid() \
             ON CONFLICT (raw_message_id) DO NOTHING RETURNING id",
        ))
        .bind(&address)
        .bind(name.as_deref())
        .bind(wall_clock_ms())
        .bind(number)
        .bind(mailbox_id)
        .bind(&subject)
        .bind(TicketStatus::New.as_str())
        .bind(now);
        let rows = bind_entry(query, first, &attachments)
            .fetch_all(self.db().await?)
            .await
            .map_err(StoreError::db(action))?;
        let (requester, ticket_id, entry_id) = match rows.as_slice() {
            [person, ticket, entry] => (
                person_from_row(person)?,
                column::<i64>(ticket, "id")?,
                column::<i64>(entry, "id")?,
            ),
            // The raw message has its entry already (the processor looks first, so
            // this is a caller's mistake): the ticket goes again, and its number with
            // it, so that, as with `add_entry`, nothing of it was written.
            [_, ticket] => {
                self.withdraw_ticket(column(ticket, "id")?, number).await?;
                return Err(StoreError::EntryExists {
                    raw_message_id: first.raw_message_id,
                });
            }
            _ => {
                let wrong = format!("opening a ticket returned {} rows, not 3", rows.len());
                return Err(StoreError::db(action)(sqlx::Error::Protocol(wrong)));
            }
        };
        self.index_entry(entry_id, first).await?;
        let ticket = Ticket {
            id: ticket_id,
            number,
            mailbox_id,
            subject,
            requester,
            status: TicketStatus::New,
            created_at: now,
            updated_at: now,
            entry_count: 1,
            assignee: None,
            merged_into: None,
            first_mail_sent_at: first.sent_at,
            last_mail_sent_at: first.sent_at,
        };
        Ok((ticket, entry_id))
    }

    /// Takes back a ticket this transaction just inserted and nothing points at yet,
    /// with its number where the number is this transaction's to give again (SQLite).
    async fn withdraw_ticket(&mut self, ticket_id: i64, number: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM tickets WHERE id = $1")
            .bind(ticket_id)
            .execute(self.db().await?)
            .await
            .map_err(StoreError::db("open a ticket"))?;
        if let Some(numbers) = &mut self.numbers
            && numbers.last == number
        {
            numbers.last = number - 1;
        }
        Ok(())
    }

    async fn insert_ticket(
        &mut self,
        mailbox_id: i64,
        subject: &str,
        requester: &Person,
        mail_sent_at: Option<i64>,
        now: i64,
    ) -> Result<Ticket, StoreError> {
        let action = "open a ticket";
        let number = self.next_ticket_number().await?;
        let subject = db_text(subject);
        let row = sqlx::query(concat!(
            insert_ticket_sql!(),
            "VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $7) RETURNING id",
        ))
        .bind(number)
        .bind(mailbox_id)
        .bind(&subject)
        .bind(requester.id)
        .bind(TicketStatus::New.as_str())
        .bind(now)
        .bind(mail_sent_at)
        .fetch_one(self.db().await?)
        .await
        .map_err(StoreError::db(action))?;
        // What reading it back would give, without the round trip: a new ticket has no
        // entries (so the requester's own name stands), no assignee and no merge.
        Ok(Ticket {
            id: column(&row, "id")?,
            number,
            mailbox_id,
            subject,
            requester: requester.clone(),
            status: TicketStatus::New,
            created_at: now,
            updated_at: now,
            entry_count: 0,
            assignee: None,
            merged_into: None,
            first_mail_sent_at: mail_sent_at,
            last_mail_sent_at: mail_sent_at,
        })
    }

    /// Unique, increasing, never given out twice. PostgreSQL: a sequence, which never
    /// waits for another processor's open batch (a rolled-back batch leaves a gap).
    /// SQLite: a counter row inside this transaction, which already holds the one write
    /// lock (a rolled-back batch gives its numbers out again: nobody ever saw them).
    /// On SQLite the counter is read once per transaction, counted on in memory and
    /// written back with the deferred writes, a statement per batch instead of one per
    /// ticket.
    pub(crate) async fn next_ticket_number(&mut self) -> Result<i64, StoreError> {
        let action = "take the next ticket number";
        match self.backend {
            Backend::Sqlite => {
                let last = match self.numbers {
                    Some(numbers) => numbers.last,
                    None => {
                        let row =
                            sqlx::query("SELECT last_number FROM ticket_counter WHERE id = 1")
                                .fetch_one(self.db().await?)
                                .await
                                .map_err(StoreError::db(action))?;
                        let last = column(&row, "last_number")?;
                        self.numbers = Some(TicketNumbers {
                            last,
                            written: last,
                            at_message_start: last,
                        });
                        last
                    }
                };
                if let Some(numbers) = &mut self.numbers {
                    numbers.last = last + 1;
                }
                Ok(last + 1)
            }
            Backend::Postgres => {
                let row = sqlx::query("SELECT nextval('ticket_numbers') AS n")
                    .fetch_one(self.db().await?)
                    .await
                    .map_err(StoreError::db(action))?;
                column(&row, "n")
            }
        }
    }

    /// Adds an entry to a ticket and counts it as the ticket's latest activity. Returns
    /// the entry's id.
    ///
    /// A raw message makes at most one entry: if it already has one this fails with
    /// [`StoreError::EntryExists`], and the transaction stays usable (nothing was written).
    /// A missing ticket is [`StoreError::TicketNotFound`], likewise.
    pub async fn add_entry(
        &mut self,
        ticket_id: i64,
        mailbox_id: i64,
        entry: &NewTicketEntry,
        now: i64,
    ) -> Result<i64, StoreError> {
        let id = self.insert_entry(ticket_id, mailbox_id, entry, now).await?;
        sqlx::query(
            "UPDATE tickets SET updated_at = $1, \
             first_mail_sent_at = COALESCE(first_mail_sent_at, $3), \
             last_mail_sent_at = COALESCE($3, last_mail_sent_at) WHERE id = $2",
        )
        .bind(now)
        .bind(ticket_id)
        .bind(entry.sent_at)
        .execute(self.db().await?)
        .await
        .map_err(StoreError::db("add an entry to a ticket"))?;
        Ok(id)
    }

    /// The entry's own row and its search row, without touching the ticket.
    async fn insert_entry(
        &mut self,
        ticket_id: i64,
        mailbox_id: i64,
        entry: &NewTicketEntry,
        now: i64,
    ) -> Result<i64, StoreError> {
        let action = "add an entry to a ticket";
        let attachments = attachments_json(&entry.attachments)?;
        // INSERT ... SELECT FROM tickets: a missing ticket inserts nothing instead of
        // breaking a foreign key, which would abort the whole batch on PostgreSQL; so
        // does ON CONFLICT for a raw message that has its entry.
        let query = sqlx::query(concat!(
            insert_entry_sql!(),
            "SELECT id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 \
             FROM tickets WHERE id = $1 \
             ON CONFLICT (raw_message_id) DO NOTHING RETURNING id",
        ))
        .bind(ticket_id)
        .bind(mailbox_id);
        let row = bind_entry(query, entry, &attachments)
            .bind(now)
            .fetch_optional(self.db().await?)
            .await
            .map_err(StoreError::db(action))?;
        let Some(row) = row else {
            if self
                .entry_for_raw_message(entry.raw_message_id)
                .await?
                .is_some()
            {
                return Err(StoreError::EntryExists {
                    raw_message_id: entry.raw_message_id,
                });
            }
            return Err(StoreError::TicketNotFound(ticket_id));
        };
        let id: i64 = column(&row, "id")?;
        self.index_entry(id, entry).await?;
        Ok(id)
    }

    /// Makes a new entry searchable from the moment it is there, in the same
    /// transaction: at once inside a message's savepoint, else with the batch's
    /// deferred writes.
    pub(crate) async fn index_entry(
        &mut self,
        id: i64,
        entry: &NewTicketEntry,
    ) -> Result<(), StoreError> {
        let text = crate::search::EntryText {
            subject: entry.subject.as_deref(),
            from_name: entry.from_name.as_deref(),
            from_address: entry.from_address.as_deref(),
            reply_text: &entry.reply_text,
            text_body: &entry.text_body,
            attachments: &entry.attachments,
        };
        let row = crate::search::SearchRow::new(id, &text);
        if self.in_message {
            let backend = self.backend;
            crate::search::index_entries(self.db().await?, backend, &[row]).await?;
        } else {
            self.search_rows.push(row);
        }
        Ok(())
    }

    /// Sets a ticket's status (a customer reply reopening a resolved ticket).
    pub async fn set_ticket_status(
        &mut self,
        ticket_id: i64,
        status: TicketStatus,
        now: i64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE tickets SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(now)
            .bind(ticket_id)
            .execute(self.db().await?)
            .await
            .map_err(StoreError::db("change a ticket's status"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::TicketNotFound(ticket_id));
        }
        Ok(())
    }

    /// Records what processing decided for a raw message; `processed_at` is `now`.
    pub async fn record_processing(
        &mut self,
        raw_message_id: i64,
        record: &ProcessRecord,
        now: i64,
    ) -> Result<(), StoreError> {
        self.record_processing_of(&[(raw_message_id, record)], now)
            .await
    }

    /// Records what processing decided for several raw messages, in one statement per
    /// hundred; `processed_at` is `now`. Fails with the first id that is not a raw
    /// message (and then records none of them).
    pub async fn record_processing_of(
        &mut self,
        records: &[(i64, &ProcessRecord)],
        now: i64,
    ) -> Result<(), StoreError> {
        let action = "record a message's processing";
        for chunk in records.chunks(100) {
            // Only placeholders are formatted in, never data. The CTE names the
            // columns the same way on both databases (VALUES alone names them
            // differently).
            let values = value_rows(2, chunk.len(), 5);
            let sql = format!(
                "WITH decided (id, status, reason, ticket_id, log) AS (VALUES {values}) \
                 UPDATE raw_messages SET process_status = decided.status, \
                 process_reason = decided.reason, process_ticket_id = decided.ticket_id, \
                 process_log = decided.log, processed_at = $1 \
                 FROM decided WHERE raw_messages.id = decided.id"
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(now);
            for (id, record) in chunk {
                query = query
                    .bind(*id)
                    .bind(record.status.as_str())
                    .bind(db_text(&record.reason))
                    .bind(record.ticket_id)
                    .bind(db_text(&record.log.join("\n")));
            }
            let done = query
                .execute(self.db().await?)
                .await
                .map_err(StoreError::db(action))?;
            if done.rows_affected() < chunk.len() as u64 {
                let ids: Vec<i64> = chunk.iter().map(|(id, _)| *id).collect();
                let sql = format!(
                    "SELECT id FROM raw_messages WHERE id IN ({})",
                    placeholders(1, ids.len())
                );
                let mut query = sqlx::query(AssertSqlSafe(sql));
                for id in &ids {
                    query = query.bind(*id);
                }
                let rows = query
                    .fetch_all(self.db().await?)
                    .await
                    .map_err(StoreError::db(action))?;
                let mut found = HashSet::new();
                for row in &rows {
                    found.insert(column::<i64>(row, "id")?);
                }
                if let Some(missing) = ids.iter().find(|id| !found.contains(id)) {
                    return Err(StoreError::RawMessageNotFound(*missing));
                }
            }
        }
        Ok(())
    }

    /// Writes what the batch deferred (the search rows of its new entries). Call it
    /// before making anything else durable; [`ProcessingTx::commit`] calls it too.
    pub async fn write_deferred(&mut self) -> Result<(), StoreError> {
        let rows = std::mem::take(&mut self.search_rows);
        let backend = self.backend;
        crate::search::index_entries(self.db().await?, backend, &rows).await?;
        if let Some(numbers) = self.numbers
            && numbers.last != numbers.written
        {
            sqlx::query("UPDATE ticket_counter SET last_number = $1 WHERE id = 1")
                .bind(numbers.last)
                .execute(self.db().await?)
                .await
                .map_err(StoreError::db("take the next ticket number"))?;
            if let Some(numbers) = &mut self.numbers {
                numbers.written = numbers.last;
            }
        }
        Ok(())
    }

    /// Marks where one message's writes begin, so that [`undo_message`](Self::undo_message)
    /// can take them back and leave the rest of the batch as it was (a savepoint). After a
    /// statement failed, PostgreSQL refuses every further one in the transaction until it
    /// is rolled back to such a point: without it one message's refused data would cost
    /// the whole batch.
    pub async fn begin_message(&mut self) -> Result<(), StoreError> {
        self.savepoint("SAVEPOINT message", "mark the start of a message's writes")
            .await?;
        self.in_message = true;
        if let Some(numbers) = &mut self.numbers {
            numbers.at_message_start = numbers.last;
        }
        Ok(())
    }

    /// Keeps what this message wrote since [`begin_message`](Self::begin_message).
    pub async fn keep_message(&mut self) -> Result<(), StoreError> {
        self.savepoint("RELEASE SAVEPOINT message", "keep a message's writes")
            .await?;
        self.in_message = false;
        Ok(())
    }

    /// Takes back everything written since [`begin_message`](Self::begin_message), also
    /// after a statement failed; the transaction is usable again and the earlier messages'
    /// writes stay.
    pub async fn undo_message(&mut self) -> Result<(), StoreError> {
        self.savepoint(
            "ROLLBACK TO SAVEPOINT message",
            "take back a failed message's writes",
        )
        .await?;
        if let Some(numbers) = &mut self.numbers {
            numbers.last = numbers.at_message_start;
        }
        self.keep_message().await
    }

    async fn savepoint(
        &mut self,
        sql: &'static str,
        action: &'static str,
    ) -> Result<(), StoreError> {
        sqlx::query(sql)
            .execute(self.db().await?)
            .await
            .map_err(StoreError::db(action))?;
        Ok(())
    }

    /// Commits the batch: all its decisions become visible at once, durably.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        self.write_deferred().await?;
        self.tx
            .commit()
            .await
            .map_err(StoreError::db("commit a batch of processed messages"))
    }
}

/// Binds an entry's own columns, in the order both inserts of an entry name them:
/// raw_message_id, message_id, kind, from_address, from_name, subject, sent_at,
/// reply_text, text_body, html_body, attachments.
pub(crate) fn bind_entry<'q>(
    query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    entry: &NewTicketEntry,
    attachments: &'q str,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    query
        .bind(entry.raw_message_id)
        .bind(db_text(&entry.message_id))
        .bind(entry.kind.as_str())
        .bind(db_text_opt(entry.from_address.as_deref()))
        .bind(db_text_opt(entry.from_name.as_deref()))
        .bind(db_text_opt(entry.subject.as_deref()))
        .bind(entry.sent_at)
        .bind(db_text(&entry.reply_text))
        .bind(db_text(&entry.text_body))
        .bind(db_text_opt(entry.html_body.as_deref()))
        .bind(attachments)
}

/// A person's address and name as the people table keeps them.
pub(crate) fn person_key(address: &str, name: Option<&str>) -> (String, Option<String>) {
    (
        db_text(&address.trim().to_lowercase()),
        db_text_opt(name.map(str::trim).filter(|n| !n.is_empty())),
    )
}

fn person_from_row(row: &AnyRow) -> Result<Person, StoreError> {
    Ok(Person {
        id: column(row, "id")?,
        address: column(row, "address")?,
        name: column(row, "name")?,
    })
}

pub(crate) fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What a batch of messages already has in the database (see
/// [`ProcessingTx::known_for_batch`]); the processor adds what the batch itself writes.
#[derive(Debug, Default)]
pub struct BatchKnown {
    /// Raw message id → the ticket its entry is on.
    entry_of_raw: HashMap<i64, i64>,
    /// (mailbox id, Message-ID) → the ticket of the oldest entry with it.
    entry_with_message_id: HashMap<(i64, String), i64>,
    /// Message-ID → (outgoing message id, its ticket), for mail popdesk sent.
    sent_by_us: HashMap<String, (i64, i64)>,
    /// Whether any active user wants new-ticket notifications at all; when nobody
    /// does, asking for them per ticket is a statement for nothing.
    someone_hears_of_new_tickets: bool,
    /// Likewise for notifications of customers' replies.
    someone_hears_of_customer_replies: bool,
}

impl BatchKnown {
    /// The ticket this raw message's entry is on, if it has one.
    pub fn ticket_of_raw_message(&self, raw_message_id: i64) -> Option<i64> {
        self.entry_of_raw.get(&raw_message_id).copied()
    }

    /// The ticket of the (oldest) entry in this mailbox with this Message-ID.
    pub fn ticket_with_message_id(&self, mailbox_id: i64, message_id: &str) -> Option<i64> {
        self.entry_with_message_id
            .get(&(mailbox_id, db_text(message_id)))
            .copied()
    }

    /// The outgoing message popdesk sent with this Message-ID and its ticket.
    pub fn sent_by_us(&self, message_id: &str) -> Option<(i64, i64)> {
        self.sent_by_us.get(&db_text(message_id)).copied()
    }

    /// Whether any active user wants new-ticket notifications (if not, none need
    /// asking for).
    pub fn someone_hears_of_new_tickets(&self) -> bool {
        self.someone_hears_of_new_tickets
    }

    /// Whether any active user wants notifications of customers' replies.
    pub fn someone_hears_of_customer_replies(&self) -> bool {
        self.someone_hears_of_customer_replies
    }

    /// Records an entry the batch just added, so later messages of the same batch see it.
    pub fn entry_added(
        &mut self,
        raw_message_id: i64,
        mailbox_id: i64,
        message_id: &str,
        ticket_id: i64,
    ) {
        self.entry_of_raw.insert(raw_message_id, ticket_id);
        self.entry_with_message_id
            .entry((mailbox_id, db_text(message_id)))
            .or_insert(ticket_id);
    }
}

/// `($first, …), (…), …`: `rows` rows of `columns` placeholders each, numbered on.
pub(crate) fn value_rows(first: usize, rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| format!("({})", placeholders(first + row * columns, columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `$first, $first+1, …` for `count` values.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
