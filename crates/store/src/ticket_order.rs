//! The order of the ticket list and paging through it by keyset: a page starts after (or
//! ends before) the row that ended the page before, by its sort key and id, so a page
//! deep in a long list costs what the first does (OFFSET reads and drops every row
//! before it), and a ticket that moves while an agent pages neither repeats nor hides
//! the rows after it.

use crate::text::text_enum;
use crate::ticket::{Bind, TicketFilter};
use crate::{Store, StoreError, Ticket, TicketStatus};

/// How the ticket list is ordered. Ties are broken by the ticket's id, so every order is
/// total and a keyset cursor names one place in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TicketSort {
    /// Most recent activity first.
    #[default]
    LastActivity,
    /// Newest ticket first.
    Created,
    /// By the requester's address, A to Z.
    Requester,
    /// In the order of a ticket's life (new first), newest first within a status.
    Status,
}
text_enum!(TicketSort, "ticket sort order", {
    LastActivity => "activity",
    Created => "created",
    Requester => "requester",
    Status => "status",
});

impl TicketSort {
    /// Every order, as a list offers them.
    pub const ALL: [TicketSort; 4] = [
        TicketSort::LastActivity,
        TicketSort::Created,
        TicketSort::Requester,
        TicketSort::Status,
    ];

    /// The sort key's SQL (tickets `t`, requesters `p`), whether it ascends, and whether
    /// the id that breaks ties ascends.
    fn sql(self) -> (&'static str, bool, bool) {
        match self {
            TicketSort::LastActivity => ("t.updated_at", false, false),
            TicketSort::Created => ("t.created_at", false, false),
            TicketSort::Requester => ("p.address", true, true),
            TicketSort::Status => (STATUS_RANK, true, false),
        }
    }

    /// The ticket's value of the sort key.
    fn key_of(self, ticket: &Ticket) -> SortKey {
        match self {
            TicketSort::LastActivity => SortKey::Int(ticket.updated_at),
            TicketSort::Created => SortKey::Int(ticket.created_at),
            TicketSort::Requester => SortKey::Text(ticket.requester.address.clone()),
            TicketSort::Status => SortKey::Int(status_rank(ticket.status)),
        }
    }
}

/// A status's place in a ticket's life, as SQL: the same numbers as [`status_rank`].
const STATUS_RANK: &str = "(CASE t.status WHEN 'new' THEN 0 WHEN 'open' THEN 1 \
     WHEN 'pending' THEN 2 WHEN 'resolved' THEN 3 ELSE 4 END)";

fn status_rank(status: TicketStatus) -> i64 {
    match status {
        TicketStatus::New => 0,
        TicketStatus::Open => 1,
        TicketStatus::Pending => 2,
        TicketStatus::Resolved => 3,
        TicketStatus::Closed => 4,
    }
}

/// The value of a sort key at a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    Int(i64),
    Text(String),
}

/// Which side of the cursor a page lies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toward {
    /// The rows after the cursor: the next page.
    After,
    /// The rows before it: the previous page.
    Before,
}

/// A place in the ticket list: the sort key and id of the row next to it, and the side
/// the page lies on. Its text form (`id.key`) goes into links and the API's `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketCursor {
    pub key: SortKey,
    pub id: i64,
    pub toward: Toward,
}

impl TicketCursor {
    /// The place just after (or before) this ticket in this order.
    pub fn at(ticket: &Ticket, sort: TicketSort, toward: Toward) -> TicketCursor {
        TicketCursor {
            key: sort.key_of(ticket),
            id: ticket.id,
            toward,
        }
    }

    /// The cursor's text form, as [`TicketCursor::parse`] reads it.
    pub fn to_param(&self) -> String {
        match &self.key {
            SortKey::Int(key) => format!("{}.{key}", self.id),
            SortKey::Text(key) => format!("{}.{key}", self.id),
        }
    }

    /// Reads a cursor's text form for this order. A cursor of another order, or text
    /// that is not a cursor, is [`StoreError::Parse`].
    pub fn parse(text: &str, sort: TicketSort, toward: Toward) -> Result<TicketCursor, StoreError> {
        let invalid = || StoreError::Parse {
            what: "page cursor",
            value: text.chars().take(100).collect(),
            expected: &["the cursor of a page's next or previous link"],
        };
        let (id, key) = text.split_once('.').ok_or_else(invalid)?;
        let id = id.parse::<i64>().map_err(|_| invalid())?;
        let key = match sort {
            TicketSort::Requester => SortKey::Text(key.to_string()),
            _ => SortKey::Int(key.parse::<i64>().map_err(|_| invalid())?),
        };
        Ok(TicketCursor { key, id, toward })
    }
}

/// The `ORDER BY` of a filter, and the cursor's condition appended to its `WHERE`
/// clause (its values to `binds`). A page before the cursor is read in reverse order;
/// the caller turns it around.
pub(crate) fn order_and_keyset(
    filter: &TicketFilter,
    where_clause: &mut String,
    binds: &mut Vec<Bind>,
) -> String {
    let (key, key_ascends, id_ascends) = filter.sort.sql();
    let reverse = filter
        .cursor
        .as_ref()
        .is_some_and(|c| c.toward == Toward::Before);
    if let Some(cursor) = &filter.cursor {
        binds.push(match &cursor.key {
            SortKey::Int(value) => Bind::Int(*value),
            SortKey::Text(value) => Bind::Text(value.clone()),
        });
        let k = binds.len();
        binds.push(Bind::Int(cursor.id));
        let i = binds.len();
        // "After" in the list's order: greater where the column ascends.
        let op = |ascends: bool| if ascends != reverse { ">" } else { "<" };
        where_clause.push_str(&format!(
            " AND ({key} {} ${k} OR ({key} = ${k} AND t.id {} ${i}))",
            op(key_ascends),
            op(id_ascends)
        ));
    }
    let dir = |ascends: bool| if ascends != reverse { "ASC" } else { "DESC" };
    format!(
        "ORDER BY {key} {}, t.id {}",
        dir(key_ascends),
        dir(id_ascends)
    )
}

/// One page of the ticket list, with the cursors of the pages beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketListPage {
    pub tickets: Vec<Ticket>,
    /// The page before this one; `None` on the first.
    pub previous: Option<TicketCursor>,
    /// The page after this one; `None` on the last.
    pub next: Option<TicketCursor>,
}

impl Store {
    /// One page of the tickets the filter matches, at its cursor (or its offset when it
    /// has none), and whether pages lie before and after it.
    pub async fn ticket_page(&self, filter: &TicketFilter) -> Result<TicketListPage, StoreError> {
        let limit = usize::try_from(filter.limit).unwrap_or(usize::MAX);
        let probe = TicketFilter {
            limit: filter.limit.saturating_add(1),
            ..filter.clone()
        };
        let mut tickets = self.tickets(&probe).await?;
        let toward = filter.cursor.as_ref().map_or(Toward::After, |c| c.toward);
        let more = tickets.len() > limit;
        if more {
            match toward {
                Toward::After => tickets.truncate(limit),
                // Read in reverse and turned around: the extra row is the first.
                Toward::Before => {
                    tickets.remove(0);
                }
            }
        }
        let sort = filter.sort;
        // The side the page was read toward is known from the extra row; the other side
        // takes one more look, from this page's edge (or the cursor, past the end).
        let beyond = |edge: Option<&Ticket>, toward: Toward| match edge {
            Some(ticket) => Some(TicketCursor::at(ticket, sort, toward)),
            None => filter.cursor.clone().map(|c| TicketCursor { toward, ..c }),
        };
        let (previous, next) = match toward {
            Toward::After => {
                let next = if more {
                    beyond(tickets.last(), Toward::After)
                } else {
                    None
                };
                let previous = if filter.cursor.is_none() && filter.offset == 0 {
                    None
                } else {
                    self.any_beyond(filter, beyond(tickets.first(), Toward::Before))
                        .await?
                };
                (previous, next)
            }
            Toward::Before => {
                let previous = if more {
                    beyond(tickets.first(), Toward::Before)
                } else {
                    None
                };
                let next = self
                    .any_beyond(filter, beyond(tickets.last(), Toward::After))
                    .await?;
                (previous, next)
            }
        };
        Ok(TicketListPage {
            tickets,
            previous,
            next,
        })
    }

    /// The cursor, when the filter matches a ticket beyond it.
    async fn any_beyond(
        &self,
        filter: &TicketFilter,
        cursor: Option<TicketCursor>,
    ) -> Result<Option<TicketCursor>, StoreError> {
        let Some(cursor) = cursor else {
            return Ok(None);
        };
        let probe = TicketFilter {
            cursor: Some(cursor.clone()),
            limit: 1,
            offset: 0,
            ..filter.clone()
        };
        Ok((!self.tickets(&probe).await?.is_empty()).then_some(cursor))
    }
}
