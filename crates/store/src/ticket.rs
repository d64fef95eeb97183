//! Tickets: the helpdesk's working material. A ticket belongs to one mailbox, has a
//! number agents and customers quote (`[#1234]`), a requester, a status, and entries in
//! arrival order: one per raw message at most (promise 2).
//!
//! Written only through a [`ProcessingTx`](crate::ProcessingTx) (and the status change
//! agents make); read here.

use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::text::{column, db_text, db_text_opt, from_db, text_enum, to_db};
use crate::ticket_order::{TicketCursor, TicketSort, Toward, order_and_keyset};
use crate::{Backend, Store, StoreError};

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Opened by a customer's mail, nobody has worked on it yet.
    New,
    Open,
    /// Waiting for the customer.
    Pending,
    /// Answered; a customer reply reopens it.
    Resolved,
    Closed,
}
text_enum!(TicketStatus, "ticket status", {
    New => "new",
    Open => "open",
    Pending => "pending",
    Resolved => "resolved",
    Closed => "closed",
});

impl TicketStatus {
    /// Every status, in the order of a ticket's life.
    pub const ALL: [TicketStatus; 5] = [
        TicketStatus::New,
        TicketStatus::Open,
        TicketStatus::Pending,
        TicketStatus::Resolved,
        TicketStatus::Closed,
    ];
}

/// What kind of mail an entry was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Mail written by a person.
    Message,
    /// A delivery status notification about one of the ticket's messages.
    Bounce,
    /// An out-of-office or other automatic answer.
    AutoReply,
}
text_enum!(EntryKind, "ticket entry kind", {
    Message => "message",
    Bounce => "bounce",
    AutoReply => "auto_reply",
});

/// Someone who wrote to the helpdesk, known by address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    pub id: i64,
    /// Trimmed and lower-cased, so one customer is one person whatever their client
    /// writes.
    pub address: String,
    pub name: Option<String>,
}

/// The user a ticket is assigned to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assignee {
    pub id: i64,
    pub email: String,
    pub name: Option<String>,
}

impl Assignee {
    /// How the assignee is shown: their name, or their address.
    pub fn label(&self) -> &str {
        match &self.name {
            Some(name) if !name.trim().is_empty() => name,
            _ => &self.email,
        }
    }
}

/// A ticket with its requester and how many entries it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ticket {
    pub id: i64,
    /// The number people quote; unique across mailboxes, never reused.
    pub number: i64,
    pub mailbox_id: i64,
    pub subject: String,
    pub requester: Person,
    pub status: TicketStatus,
    pub created_at: i64,
    /// The last entry or status change.
    pub updated_at: i64,
    pub entry_count: u64,
    /// Who works it; `None`: nobody yet.
    pub assignee: Option<Assignee>,
    /// The number of the ticket this one was merged into: its mail and history are
    /// there now.
    pub merged_into: Option<i64>,
    /// The `Date` of the first and of the latest mail on the ticket (when they were
    /// written), beside `created_at` and `updated_at` (when popdesk got them).
    pub first_mail_sent_at: Option<i64>,
    pub last_mail_sent_at: Option<i64>,
}

/// An attachment of an entry, as described on the entry; its bytes are in the blob store
/// under `sha256`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryAttachment {
    pub name: Option<String>,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    /// For inline images referenced as `cid:` from the HTML body.
    pub content_id: Option<String>,
    pub inline: bool,
    /// For a forwarded or returned message (`message/rfc822`): its headline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded: Option<ForwardedMessage>,
}

/// The headline of a message carried inside another (a forward, or the original in a
/// bounce), so a thread can show it without opening the attachment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardedMessage {
    pub from: Option<String>,
    pub subject: Option<String>,
    /// Its `Date`, ms since the epoch.
    pub date: Option<i64>,
    pub message_id: Option<String>,
}

/// An entry about to be added to a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicketEntry {
    pub raw_message_id: i64,
    pub message_id: String,
    pub kind: EntryKind,
    pub from_address: Option<String>,
    pub from_name: Option<String>,
    pub subject: Option<String>,
    pub sent_at: Option<i64>,
    /// The new part of the mail, without quoted history.
    pub reply_text: String,
    pub text_body: String,
    /// Sanitized.
    pub html_body: Option<String>,
    pub attachments: Vec<EntryAttachment>,
}

/// One mail on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketEntry {
    pub id: i64,
    pub ticket_id: i64,
    pub mailbox_id: i64,
    pub raw_message_id: i64,
    pub message_id: String,
    pub kind: EntryKind,
    pub from_address: Option<String>,
    pub from_name: Option<String>,
    pub subject: Option<String>,
    pub sent_at: Option<i64>,
    pub reply_text: String,
    pub text_body: String,
    pub html_body: Option<String>,
    pub attachments: Vec<EntryAttachment>,
    pub created_at: i64,
    /// Mail that named the ticket by its `[#N]` reference from an address the ticket had
    /// never heard from, without replying to any of its messages.
    pub from_new_address: bool,
}

/// The longest ticket search and requester filter, in characters: far more than any
/// search needs, far below what SQLite's `LIKE` gives up on (a pattern of 50,000 bytes).
pub const MAX_SEARCH_CHARS: usize = 1000;

/// Whose tickets a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AssigneeFilter {
    /// Assigned to anyone or nobody.
    #[default]
    Any,
    /// Assigned to nobody.
    Nobody,
    /// Assigned to this user.
    User(i64),
}

/// Which mailboxes' tickets the caller may see at all (team mailboxes): a list shows
/// nothing outside them, whatever its other filters say.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MailboxScope {
    /// Every mailbox: admins, and API tokens no agent made.
    #[default]
    All,
    /// Only these mailboxes (an agent's).
    Only(Vec<i64>),
}

impl MailboxScope {
    /// Whether a ticket or message of this mailbox is visible.
    pub fn allows(&self, mailbox_id: i64) -> bool {
        match self {
            MailboxScope::All => true,
            MailboxScope::Only(ids) => ids.contains(&mailbox_id),
        }
    }
}

/// Which tickets [`Store::tickets`] lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFilter {
    /// The mailboxes the caller may see.
    pub scope: MailboxScope,
    pub status: Option<TicketStatus>,
    pub mailbox_id: Option<i64>,
    pub assignee: AssigneeFilter,
    /// The requester's address, exactly (compared case-insensitively).
    pub requester: Option<String>,
    /// A search (see [`Store::search_tickets`](crate::Store::search_tickets)): words
    /// found in one mail of the ticket (subject, text, quoted text, attachment names,
    /// sender), any order, accents and case folded, "phrases" in quotes, the last word
    /// as a prefix; or the ticket's number.
    pub text: Option<String>,
    pub sort: TicketSort,
    /// Where the page starts (keyset paging); `offset` counts only without one.
    pub cursor: Option<TicketCursor>,
    pub limit: u32,
    pub offset: u32,
}

impl Default for TicketFilter {
    /// All tickets, the first 50.
    fn default() -> Self {
        TicketFilter {
            scope: MailboxScope::All,
            status: None,
            assignee: AssigneeFilter::Any,
            mailbox_id: None,
            requester: None,
            text: None,
            sort: TicketSort::LastActivity,
            cursor: None,
            limit: 50,
            offset: 0,
        }
    }
}

/// `SELECT` of everything `ticket_from_row` reads, tickets aliased `t` (a macro so
/// queries stay `&'static str` where they can). The entry count is a subquery on the
/// (ticket_id, id) index: always right, and cheap for a page of tickets.
///
/// The requester's name is the one in the mail that opened the ticket (its first
/// entry from the requester's address), so a customer who signs differently later,
/// or who wrote under another name before, shows on each ticket as they wrote that
/// one; the person's own latest name stands in when that mail had none. Read
/// through the same (ticket_id, id) index, it needs no column of its own.
macro_rules! ticket_select {
    () => {
        "SELECT t.id, t.number, t.mailbox_id, t.subject, t.status, t.created_at, \
         t.updated_at, p.id AS requester_id, p.address AS requester_address, \
         COALESCE((SELECT o.from_name FROM ticket_entries o \
                   WHERE o.ticket_id = t.id AND o.from_address = p.address \
                   ORDER BY o.id LIMIT 1), p.name) AS requester_name, \
         (SELECT COUNT(*) FROM ticket_entries e WHERE e.ticket_id = t.id) AS entry_count, \
         t.assignee_id, a.email AS assignee_email, a.name AS assignee_name, \
         (SELECT m.number FROM tickets m WHERE m.id = t.merged_into_id) AS merged_into, \
         t.first_mail_sent_at, t.last_mail_sent_at \
         FROM tickets t JOIN people p ON p.id = t.requester_id \
         LEFT JOIN users a ON a.id = t.assignee_id "
    };
}
pub(crate) use ticket_select;

pub(crate) fn ticket_from_row(row: &AnyRow) -> Result<Ticket, StoreError> {
    Ok(Ticket {
        id: column(row, "id")?,
        number: column(row, "number")?,
        mailbox_id: column(row, "mailbox_id")?,
        subject: column(row, "subject")?,
        requester: Person {
            id: column(row, "requester_id")?,
            address: column(row, "requester_address")?,
            name: column(row, "requester_name")?,
        },
        status: TicketStatus::from_stored(&column::<String>(row, "status")?)?,
        created_at: column(row, "created_at")?,
        updated_at: column(row, "updated_at")?,
        entry_count: from_db(column(row, "entry_count")?),
        assignee: match column::<Option<i64>>(row, "assignee_id")? {
            Some(id) => Some(Assignee {
                id,
                email: column(row, "assignee_email")?,
                name: column(row, "assignee_name")?,
            }),
            None => None,
        },
        merged_into: column(row, "merged_into")?,
        first_mail_sent_at: column(row, "first_mail_sent_at")?,
        last_mail_sent_at: column(row, "last_mail_sent_at")?,
    })
}

/// The columns `entry_from_row` reads.
macro_rules! entry_columns {
    () => {
        "id, ticket_id, mailbox_id, raw_message_id, message_id, kind, from_address, \
         from_name, subject, sent_at, reply_text, text_body, html_body, attachments, \
         created_at, from_new_address"
    };
}
pub(crate) use entry_columns;

pub(crate) fn entry_from_row(row: &AnyRow) -> Result<TicketEntry, StoreError> {
    let attachments: String = column(row, "attachments")?;
    let attachments = serde_json::from_str(&attachments).map_err(|e| StoreError::Unreadable {
        what: "attachment list of a ticket entry",
        detail: e.to_string(),
    })?;
    Ok(TicketEntry {
        id: column(row, "id")?,
        ticket_id: column(row, "ticket_id")?,
        mailbox_id: column(row, "mailbox_id")?,
        raw_message_id: column(row, "raw_message_id")?,
        message_id: column(row, "message_id")?,
        kind: EntryKind::from_stored(&column::<String>(row, "kind")?)?,
        from_address: column(row, "from_address")?,
        from_name: column(row, "from_name")?,
        subject: column(row, "subject")?,
        sent_at: column(row, "sent_at")?,
        reply_text: column(row, "reply_text")?,
        text_body: column(row, "text_body")?,
        html_body: column(row, "html_body")?,
        attachments,
        created_at: column(row, "created_at")?,
        from_new_address: column::<i64>(row, "from_new_address")? != 0,
    })
}

/// A value bound to a filter's placeholder.
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

/// The `WHERE` clause of a ticket filter (tickets `t`, requesters `p`) and its values in
/// placeholder order. Only placeholders are formatted into the SQL, never data.
pub(crate) fn filter_sql(
    filter: &TicketFilter,
    backend: Backend,
) -> Result<(String, Vec<Bind>), StoreError> {
    for (field, value) in [("search", &filter.text), ("requester", &filter.requester)] {
        if value
            .as_deref()
            .is_some_and(|v| v.chars().count() > MAX_SEARCH_CHARS)
        {
            return Err(StoreError::SearchTooLong {
                field,
                max: MAX_SEARCH_CHARS,
            });
        }
    }
    // A merged ticket lives on only as a pointer to the one it joined.
    let mut conditions = vec!["t.merged_into_id IS NULL".to_string()];
    let mut binds = Vec::new();
    if let MailboxScope::Only(ids) = &filter.scope {
        if ids.is_empty() {
            conditions.push("1 = 0".to_string());
        } else {
            let mut placeholders = Vec::with_capacity(ids.len());
            for &id in ids {
                binds.push(Bind::Int(id));
                placeholders.push(format!("${}", binds.len()));
            }
            conditions.push(format!("t.mailbox_id IN ({})", placeholders.join(", ")));
        }
    }
    match filter.assignee {
        AssigneeFilter::Any => {}
        AssigneeFilter::Nobody => conditions.push("t.assignee_id IS NULL".to_string()),
        AssigneeFilter::User(user_id) => {
            binds.push(Bind::Int(user_id));
            conditions.push(format!("t.assignee_id = ${}", binds.len()));
        }
    }
    if let Some(status) = filter.status {
        binds.push(Bind::Text(status.as_str().to_string()));
        conditions.push(format!("t.status = ${}", binds.len()));
    }
    if let Some(mailbox_id) = filter.mailbox_id {
        binds.push(Bind::Int(mailbox_id));
        conditions.push(format!("t.mailbox_id = ${}", binds.len()));
    }
    if let Some(requester) = &filter.requester {
        binds.push(Bind::Text(db_text(&requester.trim().to_lowercase())));
        conditions.push(format!("p.address = ${}", binds.len()));
    }
    if let Some(text) = &filter.text
        && let Some(condition) = crate::search::ticket_condition(text, backend, &mut binds)
    {
        conditions.push(condition);
    }
    let where_clause = format!("WHERE {}", conditions.join(" AND "));
    Ok((where_clause, binds))
}

/// The attachment list as stored: a JSON array.
pub(crate) fn attachments_json(attachments: &[EntryAttachment]) -> Result<String, StoreError> {
    // Sizes above i64::MAX would not read back in every JSON consumer; refuse them like
    // every other size column does.
    for attachment in attachments {
        to_db("attachment size", attachment.size)?;
    }
    // JSON would carry a U+0000 as `\u0000`, which PostgreSQL takes in a text column, but
    // it would come back as U+0000 on read: the names are made safe like every other text
    // from mail, so both backends give back the same list.
    let attachments: Vec<EntryAttachment> = attachments.iter().map(attachment_for_db).collect();
    serde_json::to_string(&attachments).map_err(|e| StoreError::Unreadable {
        what: "attachment list of a ticket entry",
        detail: e.to_string(),
    })
}

/// An attachment description with every text made safe by [`db_text`].
fn attachment_for_db(attachment: &EntryAttachment) -> EntryAttachment {
    EntryAttachment {
        name: db_text_opt(attachment.name.as_deref()),
        content_type: db_text(&attachment.content_type),
        size: attachment.size,
        sha256: attachment.sha256.clone(),
        content_id: db_text_opt(attachment.content_id.as_deref()),
        inline: attachment.inline,
        forwarded: attachment.forwarded.as_ref().map(|f| ForwardedMessage {
            from: db_text_opt(f.from.as_deref()),
            subject: db_text_opt(f.subject.as_deref()),
            date: f.date,
            message_id: db_text_opt(f.message_id.as_deref()),
        }),
    }
}

impl Store {
    /// Tickets in the filter's order, one page of them: from its cursor, or its offset.
    pub async fn tickets(&self, filter: &TicketFilter) -> Result<Vec<Ticket>, StoreError> {
        let (mut where_clause, mut binds) = filter_sql(filter, self.backend())?;
        let order = order_and_keyset(filter, &mut where_clause, &mut binds);
        let n = binds.len();
        // Only placeholders are formatted in, never data.
        let sql = format!(
            "{} {where_clause} {order} LIMIT ${} OFFSET ${}",
            ticket_select!(),
            n + 1,
            n + 2
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for bind in binds {
            query = match bind {
                Bind::Text(text) => query.bind(text),
                Bind::Int(int) => query.bind(int),
            };
        }
        let offset = if filter.cursor.is_some() {
            0
        } else {
            filter.offset
        };
        let rows = query
            .bind(i64::from(filter.limit))
            .bind(i64::from(offset))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("list tickets"))?;
        let mut tickets = rows
            .iter()
            .map(ticket_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // A page before the cursor was read backwards.
        if filter
            .cursor
            .as_ref()
            .is_some_and(|c| c.toward == Toward::Before)
        {
            tickets.reverse();
        }
        Ok(tickets)
    }

    /// How many tickets the filter matches, all pages together.
    pub async fn count_tickets(&self, filter: &TicketFilter) -> Result<u64, StoreError> {
        let (where_clause, binds) = filter_sql(filter, self.backend())?;
        // The requester is only needed to filter by it; without such a filter the count
        // reads the tickets' status index alone, not every ticket and its requester.
        let sql = if filter.requester.is_none() && filter.text.is_none() {
            format!("SELECT COUNT(*) AS n FROM tickets t {where_clause}")
        } else {
            format!(
                "SELECT COUNT(*) AS n FROM tickets t JOIN people p ON p.id = t.requester_id \
                 {where_clause}"
            )
        };
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for bind in binds {
            query = match bind {
                Bind::Text(text) => query.bind(text),
                Bind::Int(int) => query.bind(int),
            };
        }
        let row = query
            .fetch_one(self.pool())
            .await
            .map_err(StoreError::db("count tickets"))?;
        Ok(from_db(column(&row, "n")?))
    }

    /// How many tickets have each status (every status, zeros included, in the order of
    /// [`TicketStatus::ALL`]) among those the filter matches, its own status aside: the
    /// counts beside a search count the search's results.
    pub async fn count_tickets_by_status(
        &self,
        filter: &TicketFilter,
    ) -> Result<Vec<(TicketStatus, u64)>, StoreError> {
        let filter = TicketFilter {
            status: None,
            ..filter.clone()
        };
        let (where_clause, binds) = filter_sql(&filter, self.backend())?;
        let join = if filter.requester.is_none() && filter.text.is_none() {
            ""
        } else {
            "JOIN people p ON p.id = t.requester_id"
        };
        let sql = format!(
            "SELECT t.status, COUNT(*) AS n FROM tickets t {join} {where_clause} GROUP BY t.status"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for bind in binds {
            query = match bind {
                Bind::Text(text) => query.bind(text),
                Bind::Int(int) => query.bind(int),
            };
        }
        let rows = query
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("count tickets"))?;
        let mut counts: Vec<(TicketStatus, u64)> =
            TicketStatus::ALL.iter().map(|&s| (s, 0)).collect();
        for row in &rows {
            let status = TicketStatus::from_stored(&column::<String>(row, "status")?)?;
            let n = from_db(column(row, "n")?);
            if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == status) {
                slot.1 = n;
            }
        }
        Ok(counts)
    }

    /// The ticket with this number, in whichever mailbox.
    pub async fn ticket_by_number(&self, number: i64) -> Result<Option<Ticket>, StoreError> {
        let sql = concat!(ticket_select!(), "WHERE t.number = $1");
        let row = sqlx::query(sql)
            .bind(number)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("read a ticket"))?;
        row.as_ref().map(ticket_from_row).transpose()
    }

    /// Every name a person has written under, latest first, read from their mails'
    /// entries: the person record keeps only the latest, the entries keep them all.
    pub async fn names_of_person(&self, address: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT from_name, MAX(id) AS last FROM ticket_entries \
             WHERE from_address = $1 AND from_name IS NOT NULL \
             GROUP BY from_name ORDER BY last DESC",
        )
        .bind(db_text(&address.trim().to_lowercase()))
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("list the names a person wrote under"))?;
        rows.iter().map(|row| column(row, "from_name")).collect()
    }

    /// A ticket by its id (as a processing record names it).
    pub async fn ticket_by_id(&self, id: i64) -> Result<Option<Ticket>, StoreError> {
        let sql = concat!(ticket_select!(), "WHERE t.id = $1");
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("read a ticket"))?;
        row.as_ref().map(ticket_from_row).transpose()
    }

    /// A ticket's entries in arrival order.
    pub async fn ticket_entries(&self, ticket_id: i64) -> Result<Vec<TicketEntry>, StoreError> {
        let sql = concat!(
            "SELECT ",
            entry_columns!(),
            " FROM ticket_entries WHERE ticket_id = $1 ORDER BY id"
        );
        let rows = sqlx::query(sql)
            .bind(ticket_id)
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("read a ticket's entries"))?;
        rows.iter().map(entry_from_row).collect()
    }

    /// The ticket entry made from this raw message, if processing made one. Read
    /// directly (not through the processing record), so it is found while a reprocess
    /// request has reset the record.
    pub async fn entry_for_raw_message(
        &self,
        raw_message_id: i64,
    ) -> Result<Option<TicketEntry>, StoreError> {
        let sql = concat!(
            "SELECT ",
            entry_columns!(),
            " FROM ticket_entries WHERE raw_message_id = $1"
        );
        let row = sqlx::query(sql)
            .bind(raw_message_id)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("read a ticket entry"))?;
        row.as_ref().map(entry_from_row).transpose()
    }

    /// Sets a ticket's status (an agent's decision); it counts as activity.
    pub async fn set_ticket_status(
        &self,
        ticket_id: i64,
        status: TicketStatus,
        now: i64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE tickets SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(now)
            .bind(ticket_id)
            .execute(self.pool())
            .await
            .map_err(StoreError::db("change a ticket's status"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::TicketNotFound(ticket_id));
        }
        Ok(())
    }
}
