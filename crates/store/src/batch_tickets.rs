//! Tickets a processing batch opens, written together.
//!
//! On SQLite every statement is a hand-off to the database's thread and back, and for a
//! mailbox of new requests opening each ticket on its own was most of the time the
//! serial half of processing took. The batch holds SQLite's one write lock from its
//! first statement (`BEGIN IMMEDIATE`), so the ids and numbers of its new tickets and
//! entries can be given out in memory; the rows then wait and go out together, a few
//! dozen tickets per statement, just before the transaction's next statement of any
//! other kind. Every lookup therefore sees them, as it would have seen them written one
//! by one.

use sqlx::AssertSqlSafe;

use crate::processing::{
    ProcessingTx, bind_entry, entry_row_columns, person_conflict_sql, person_key, ticket_columns,
    wall_clock_ms,
};
use crate::text::{column, db_text};
use crate::ticket::{NewTicketEntry, TicketStatus, attachments_json};
use crate::{Backend, StoreError};

/// A ticket opened with its first entry, as the processor needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedTicket {
    pub id: i64,
    pub number: i64,
    pub entry_id: i64,
}

/// Tickets per statement: each takes 28 bound values (person 3, ticket 10, entry 15),
/// far below SQLite's limit on them.
const TICKETS_PER_STATEMENT: usize = 40;

/// The tickets of a transaction that wait to be written, and the ids the next ones take.
#[derive(Debug, Default)]
pub(crate) struct WaitingTickets {
    tickets: Vec<WaitingTicket>,
    /// The last ticket id and entry id given out, once read from the database. Read
    /// again after the waiting rows are written: a statement that inserts on its own
    /// takes the next id itself.
    last_ids: Option<(i64, i64)>,
}

#[derive(Debug)]
struct WaitingTicket {
    id: i64,
    number: i64,
    mailbox_id: i64,
    subject: String,
    address: String,
    name: Option<String>,
    /// When the person was first seen, should this mail be their first.
    person_since: i64,
    entry_id: i64,
    entry: NewTicketEntry,
    attachments: String,
    now: i64,
}

impl ProcessingTx {
    /// Opens a ticket for the mail's sender with the mail as its first entry, as
    /// [`ProcessingTx::open_ticket`] does, and returns its id and number and the
    /// entry's id. On SQLite, outside a message's savepoint, the rows wait and are
    /// written with the transaction's next statement (see the module's comment); a
    /// database refusal, a second entry for the raw message included, surfaces there.
    /// Elsewhere they are written at once.
    pub async fn open_ticket_in_batch(
        &mut self,
        mailbox_id: i64,
        subject: &str,
        sender: (&str, Option<&str>),
        first: NewTicketEntry,
        now: i64,
    ) -> Result<OpenedTicket, StoreError> {
        if self.backend != Backend::Sqlite || self.in_message {
            let (ticket, entry_id) = self
                .open_ticket(mailbox_id, subject, sender, &first, now)
                .await?;
            return Ok(OpenedTicket {
                id: ticket.id,
                number: ticket.number,
                entry_id,
            });
        }
        let number = self.next_ticket_number().await?;
        let (last_ticket, last_entry) = match self.waiting.last_ids {
            Some(ids) => ids,
            None => self.read_last_ids().await?,
        };
        let (id, entry_id) = (last_ticket + 1, last_entry + 1);
        self.waiting.last_ids = Some((id, entry_id));
        self.index_entry(entry_id, &first).await?;
        let (address, name) = person_key(sender.0, sender.1);
        self.waiting.tickets.push(WaitingTicket {
            id,
            number,
            mailbox_id,
            subject: db_text(subject),
            address,
            name,
            person_since: wall_clock_ms(),
            entry_id,
            attachments: attachments_json(&first.attachments)?,
            entry: first,
            now,
        });
        Ok(OpenedTicket {
            id,
            number,
            entry_id,
        })
    }

    /// The waiting tickets whose first entry has one of these Message-IDs in this
    /// mailbox, oldest first, as `(Message-ID as stored, ticket id)`.
    pub(crate) fn waiting_first_entries(
        &self,
        mailbox_id: i64,
        message_ids: &[String],
    ) -> Vec<(String, i64)> {
        if self.waiting.tickets.is_empty() {
            return Vec::new();
        }
        let wanted: std::collections::HashSet<String> =
            message_ids.iter().map(|id| db_text(id)).collect();
        self.waiting
            .tickets
            .iter()
            .filter(|ticket| ticket.mailbox_id == mailbox_id)
            .map(|ticket| (db_text(&ticket.entry.message_id), ticket.id))
            .filter(|(message_id, _)| wanted.contains(message_id))
            .collect()
    }

    /// The largest ticket and entry ids ever given out: AUTOINCREMENT never gives one
    /// twice, even after its row was deleted, and neither may this.
    async fn read_last_ids(&mut self) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'tickets'), 0), \
             COALESCE((SELECT MAX(id) FROM tickets), 0)) AS ticket, \
             MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'ticket_entries'), 0), \
             COALESCE((SELECT MAX(id) FROM ticket_entries), 0)) AS entry",
        )
        .fetch_one(&mut *self.tx)
        .await
        .map_err(StoreError::db("open a ticket"))?;
        Ok((column(&row, "ticket")?, column(&row, "entry")?))
    }

    /// Writes the waiting tickets: their people, the tickets and their first entries,
    /// one statement per few dozen tickets.
    pub(crate) async fn write_opened_tickets(&mut self) -> Result<(), StoreError> {
        if self.waiting.tickets.is_empty() {
            return Ok(());
        }
        let tickets = std::mem::take(&mut self.waiting.tickets);
        self.waiting.last_ids = None;
        for chunk in tickets.chunks(TICKETS_PER_STATEMENT) {
            let sql = opening_sql(chunk.len());
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for ticket in chunk {
                query = query
                    .bind(ticket.address.as_str())
                    .bind(ticket.name.as_deref())
                    .bind(ticket.person_since);
            }
            for ticket in chunk {
                query = query
                    .bind(ticket.id)
                    .bind(ticket.number)
                    .bind(ticket.mailbox_id)
                    .bind(ticket.subject.as_str())
                    .bind(ticket.address.as_str())
                    .bind(TicketStatus::New.as_str())
                    .bind(ticket.now)
                    .bind(ticket.now)
                    .bind(ticket.entry.sent_at)
                    .bind(ticket.entry.sent_at);
            }
            for ticket in chunk {
                query = query
                    .bind(ticket.entry_id)
                    .bind(ticket.id)
                    .bind(ticket.mailbox_id);
                query = bind_entry(query, &ticket.entry, &ticket.attachments).bind(ticket.now);
            }
            query
                .execute(&mut *self.tx)
                .await
                .map_err(StoreError::db("open tickets"))?;
        }
        Ok(())
    }
}

/// The people, tickets and entries of `count` waiting tickets, in three statements
/// sent as one. Only placeholders are formatted in, never data.
fn opening_sql(count: usize) -> String {
    let people = crate::processing::value_rows(1, count, 3);
    let ticket_values = 3 * count;
    let tickets = (0..count)
        .map(|i| {
            let p = |k: usize| format!("${}", ticket_values + i * 10 + k);
            // The requester by the address its person row was just written under.
            format!(
                "({}, {}, {}, {}, (SELECT id FROM people WHERE address = {}), {}, {}, {}, {}, {})",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
                p(6),
                p(7),
                p(8),
                p(9),
                p(10)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let entries = crate::processing::value_rows(ticket_values + 10 * count + 1, count, 15);
    format!(
        concat!(
            "INSERT INTO people (address, name, created_at) VALUES {people} ",
            person_conflict_sql!(),
            "; INSERT INTO tickets (id, ",
            ticket_columns!(),
            ") VALUES {tickets}; INSERT INTO ticket_entries (id, ticket_id, mailbox_id, ",
            entry_row_columns!(),
            ") VALUES {entries}"
        ),
        people = people,
        tickets = tickets,
        entries = entries
    )
}
