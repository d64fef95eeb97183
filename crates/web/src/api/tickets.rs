//! Tickets: the list with filters and pages, one ticket with its mail, history and
//! replies, a status change, an internal note. Agents and admins alike. Replying is in
//! `replies.rs`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::{
    EntryAttachment, EntryKind, Person, Snippet, SnippetField, Ticket, TicketCursor, TicketEntry,
    TicketEvent, TicketEventKind, TicketFilter, TicketHit, TicketSort, TicketStatus, Toward,
};
use utoipa::{IntoParams, ToSchema};

use crate::api::assignment::{AssigneeChoice, AssigneeView, assignable_user};
use crate::api::replies::ReplyView;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::input::{self, ApiJson, ApiPath, ApiQuery};
use crate::{AppState, auth};

/// Rows per page when the caller does not say.
const DEFAULT_PER_PAGE: u32 = 50;
/// The most rows one page may hold.
pub const MAX_PER_PAGE: u32 = 200;
/// The longest internal note, in characters.
const MAX_NOTE_CHARS: usize = 100_000;

/// A ticket's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    New,
    Open,
    Pending,
    Resolved,
    Closed,
}

impl From<TicketStatus> for Status {
    fn from(status: TicketStatus) -> Status {
        match status {
            TicketStatus::New => Status::New,
            TicketStatus::Open => Status::Open,
            TicketStatus::Pending => Status::Pending,
            TicketStatus::Resolved => Status::Resolved,
            TicketStatus::Closed => Status::Closed,
        }
    }
}

impl From<Status> for TicketStatus {
    fn from(status: Status) -> TicketStatus {
        match status {
            Status::New => TicketStatus::New,
            Status::Open => TicketStatus::Open,
            Status::Pending => TicketStatus::Pending,
            Status::Resolved => TicketStatus::Resolved,
            Status::Closed => TicketStatus::Closed,
        }
    }
}

/// An email address with the name that came with it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonView {
    pub address: String,
    pub name: Option<String>,
}

impl From<&Person> for PersonView {
    fn from(person: &Person) -> PersonView {
        PersonView {
            address: person.address.clone(),
            name: person.name.clone(),
        }
    }
}

/// A ticket as lists show it. Times are milliseconds since the Unix epoch.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketSummary {
    pub number: i64,
    pub mailbox_id: i64,
    pub subject: String,
    pub status: Status,
    pub requester: PersonView,
    pub created_at: i64,
    pub updated_at: i64,
    /// Mail messages on the ticket.
    pub entry_count: u64,
    /// Who works it; null: nobody.
    pub assignee: Option<AssigneeView>,
    /// The number of the ticket this one was merged into (its mail and history are
    /// there now); null for a ticket that was not merged.
    pub merged_into: Option<i64>,
    /// This ticket in the API.
    pub url: String,
    /// When searching (`q`): a few words of the best-matching mail around the first
    /// hit; null otherwise, and for a ticket found by its number alone.
    pub snippet: Option<SnippetView>,
}

/// A few words of a mail around what a search found.
#[derive(Debug, Serialize, ToSchema)]
pub struct SnippetView {
    /// Which part of the mail the words are from.
    pub field: SnippetFieldView,
    /// The words in order; joined, they are the snippet. `hit`: a word the search found.
    pub pieces: Vec<SnippetPieceView>,
}

/// The part of a mail a snippet is taken from.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SnippetFieldView {
    /// The new text of the mail.
    Message,
    /// The quoted history below it.
    Quoted,
    Attachment,
    Sender,
    Subject,
}

/// Part of a snippet.
#[derive(Debug, Serialize, ToSchema)]
pub struct SnippetPieceView {
    pub text: String,
    pub hit: bool,
}

impl From<&Snippet> for SnippetView {
    fn from(snippet: &Snippet) -> SnippetView {
        SnippetView {
            field: match snippet.field {
                SnippetField::Message => SnippetFieldView::Message,
                SnippetField::Quoted => SnippetFieldView::Quoted,
                SnippetField::Attachment => SnippetFieldView::Attachment,
                SnippetField::Sender => SnippetFieldView::Sender,
                SnippetField::Subject => SnippetFieldView::Subject,
            },
            pieces: snippet
                .pieces
                .iter()
                .map(|p| SnippetPieceView {
                    text: p.text.clone(),
                    hit: p.hit,
                })
                .collect(),
        }
    }
}

impl From<&TicketHit> for TicketSummary {
    fn from(hit: &TicketHit) -> TicketSummary {
        TicketSummary {
            snippet: hit.snippet.as_ref().map(SnippetView::from),
            ..TicketSummary::from(&hit.ticket)
        }
    }
}

impl From<&Ticket> for TicketSummary {
    fn from(ticket: &Ticket) -> TicketSummary {
        TicketSummary {
            number: ticket.number,
            mailbox_id: ticket.mailbox_id,
            subject: ticket.subject.clone(),
            status: ticket.status.into(),
            requester: (&ticket.requester).into(),
            created_at: ticket.created_at,
            updated_at: ticket.updated_at,
            entry_count: ticket.entry_count,
            assignee: ticket.assignee.as_ref().map(AssigneeView::from),
            merged_into: ticket.merged_into,
            url: format!("/api/v1/tickets/{}", ticket.number),
            snippet: None,
        }
    }
}

/// The ticket list's filters and page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TicketQuery {
    /// Only tickets with this status.
    #[serde(default, deserialize_with = "input::parsed")]
    #[param(value_type = Option<Status>)]
    status: Option<TicketStatus>,
    /// Only tickets of this mailbox (its id).
    #[serde(default, deserialize_with = "input::parsed")]
    #[param(value_type = Option<i64>)]
    mailbox: Option<i64>,
    /// Only tickets from this requester address (case-insensitive, exact).
    #[serde(default, deserialize_with = "input::empty_as_none")]
    requester: Option<String>,
    /// A search: words found in one mail of the ticket (subject, text, quoted text,
    /// attachment names, sender), in any order, accents and case folded; "phrases" in
    /// quotes; the last word also as the start of a longer one. A ticket number
    /// ("1996", "#1996") finds that ticket first and sets `jump_to`. Results are ranked,
    /// best match first.
    #[serde(default, deserialize_with = "input::empty_as_none")]
    q: Option<String>,
    /// Whose tickets: `me`, `none` (unassigned), or a user's address.
    #[serde(default, deserialize_with = "input::empty_as_none")]
    assignee: Option<String>,
    /// The order: `activity` (most recent first, the default), `created` (newest
    /// first), `requester` (by address) or `status` (new first).
    #[serde(default, deserialize_with = "input::parsed")]
    #[param(value_type = Option<String>, pattern = "^(activity|created|requester|status)$")]
    sort: Option<TicketSort>,
    /// The page after this cursor (a page's `next`), instead of `page`: keyset paging,
    /// as fast deep in the list as at its start.
    #[serde(default, deserialize_with = "input::empty_as_none")]
    after: Option<String>,
    /// Page number, from 1.
    #[serde(default, deserialize_with = "input::parsed")]
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4294967295_i64)]
    page: Option<u32>,
    /// Rows per page, 1 to 200 (default 50).
    #[serde(default, deserialize_with = "input::parsed")]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    per_page: Option<u32>,
}

/// Tickets per status (within the `mailbox` filter only, so the counts stay put while
/// other filters change).
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct StatusCounts {
    pub new: u64,
    pub open: u64,
    pub pending: u64,
    pub resolved: u64,
    pub closed: u64,
}

/// One page of tickets, most recently updated first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketPage {
    pub items: Vec<TicketSummary>,
    /// Tickets matching the filters, all pages together.
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
    pub status_counts: StatusCounts,
    /// When `q` is a ticket's number ("1996", "#1996"): the number of the ticket to open
    /// (the one it was merged into, if it was).
    pub jump_to: Option<i64>,
    /// The next page's cursor, for `after`; null on the last page, and while searching
    /// (search results, best match first, page by `page`).
    pub next: Option<String>,
}

/// Lists tickets.
#[utoipa::path(
    get, path = "/api/v1/tickets", tag = "tickets",
    params(TicketQuery),
    responses(
        (status = 200, description = "One page of tickets", body = TicketPage),
        (status = 400, description = "A filter or page value is not valid", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    actor: Actor,
    ApiQuery(query): ApiQuery<TicketQuery>,
) -> ApiResult<Json<TicketPage>> {
    let page = query.page.unwrap_or(1);
    let per_page = query.per_page.unwrap_or(DEFAULT_PER_PAGE);
    if page == 0 {
        return Err(ApiError::bad_request("page numbers start at 1"));
    }
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(ApiError::bad_request(format!(
            "per_page must be between 1 and {MAX_PER_PAGE}"
        )));
    }
    // A page past anything the store can address is simply past the end: empty.
    let offset = u32::try_from(u64::from(page - 1) * u64::from(per_page)).ok();
    let sort = query.sort.unwrap_or_default();
    let cursor = match &query.after {
        Some(after) => Some(
            TicketCursor::parse(after, sort, Toward::After)
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        ),
        None => None,
    };
    let assignee = match &query.assignee {
        Some(text) => AssigneeChoice::parse(text).filter(&state, &actor).await?,
        None => store::AssigneeFilter::Any,
    };
    let filter = TicketFilter {
        scope: actor.scope().clone(),
        status: query.status,
        mailbox_id: query.mailbox,
        assignee,
        requester: query.requester,
        text: query.q,
        sort,
        cursor,
        limit: per_page,
        offset: offset.unwrap_or(0),
    };
    let store = state.store();
    let searching = filter.text.as_deref().is_some_and(|t| !t.trim().is_empty());
    let (items, next): (Vec<TicketSummary>, Option<String>) = match offset {
        None => (Vec::new(), None),
        Some(_) if searching => {
            let hits = store.search_tickets(&filter).await?;
            (hits.iter().map(TicketSummary::from).collect(), None)
        }
        Some(_) => {
            let page = store.ticket_page(&filter).await?;
            (
                page.tickets.iter().map(TicketSummary::from).collect(),
                page.next.map(|c| c.to_param()),
            )
        }
    };
    let jump_to = auth::scope::jump_target(store, &filter.scope, filter.text.as_deref()).await?;
    let total = store.count_tickets(&filter).await?;
    let mut status_counts = StatusCounts::default();
    for (status, n) in store.count_tickets_by_status(&filter).await? {
        let slot = match status {
            TicketStatus::New => &mut status_counts.new,
            TicketStatus::Open => &mut status_counts.open,
            TicketStatus::Pending => &mut status_counts.pending,
            TicketStatus::Resolved => &mut status_counts.resolved,
            TicketStatus::Closed => &mut status_counts.closed,
        };
        *slot = n;
    }
    Ok(Json(TicketPage {
        items,
        total,
        page,
        per_page,
        status_counts,
        jump_to,
        next,
    }))
}

/// What kind of mail an entry is.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKindView {
    Message,
    Bounce,
    AutoReply,
}

impl From<EntryKind> for EntryKindView {
    fn from(kind: EntryKind) -> EntryKindView {
        match kind {
            EntryKind::Message => EntryKindView::Message,
            EntryKind::Bounce => EntryKindView::Bounce,
            EntryKind::AutoReply => EntryKindView::AutoReply,
        }
    }
}

/// An attachment's metadata; the bytes are at `download_url`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentView {
    /// Its place in the message's attachment list, as used in `download_url`.
    pub index: usize,
    pub name: Option<String>,
    /// As the sender declared it (the download may be served as octet-stream).
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub content_id: Option<String>,
    /// Shown inside the message (an inline image) rather than attached.
    pub inline: bool,
    /// For a forwarded message: its sender and subject.
    pub forwarded: Option<ForwardedView>,
    pub download_url: String,
}

/// A forwarded message's headline.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForwardedView {
    pub from: Option<String>,
    pub subject: Option<String>,
    pub date: Option<i64>,
    pub message_id: Option<String>,
}

impl AttachmentView {
    fn new(raw_message_id: i64, index: usize, attachment: &EntryAttachment) -> AttachmentView {
        AttachmentView {
            index,
            name: attachment.name.clone(),
            content_type: attachment.content_type.clone(),
            size: attachment.size,
            sha256: attachment.sha256.clone(),
            content_id: attachment.content_id.clone(),
            inline: attachment.inline,
            forwarded: attachment.forwarded.as_ref().map(|f| ForwardedView {
                from: f.from.clone(),
                subject: f.subject.clone(),
                date: f.date,
                message_id: f.message_id.clone(),
            }),
            download_url: format!("/api/v1/messages/{raw_message_id}/attachments/{index}"),
        }
    }
}

/// One mail message on a ticket.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryView {
    pub id: i64,
    /// The stored message it was made from (see /api/v1/messages/{id}).
    pub raw_message_id: i64,
    pub message_id: String,
    pub kind: EntryKindView,
    pub from: Option<PersonView>,
    pub subject: Option<String>,
    /// The Date header, ms since the epoch.
    pub sent_at: Option<i64>,
    pub created_at: i64,
    /// The new text of this message, without the quoted earlier mail.
    pub reply_text: String,
    /// The whole plain-text body.
    pub text: String,
    /// The HTML body, sanitized: no scripts, styles that cannot escape, remote images
    /// blocked, inline images pointing at /messages/{id}/cid/{content_id}.
    pub html: Option<String>,
    pub attachments: Vec<AttachmentView>,
    /// The subject names this ticket ([#N]) but the sender never took part in it and the
    /// mail replies to none of its messages; it did not reopen the ticket.
    pub from_new_address: bool,
}

impl From<&TicketEntry> for EntryView {
    fn from(entry: &TicketEntry) -> EntryView {
        EntryView {
            id: entry.id,
            raw_message_id: entry.raw_message_id,
            message_id: entry.message_id.clone(),
            kind: entry.kind.into(),
            from: entry.from_address.as_ref().map(|address| PersonView {
                address: address.clone(),
                name: entry.from_name.clone(),
            }),
            subject: entry.subject.clone(),
            sent_at: entry.sent_at,
            created_at: entry.created_at,
            reply_text: entry.reply_text.clone(),
            text: entry.text_body.clone(),
            html: entry.html_body.clone(),
            attachments: entry
                .attachments
                .iter()
                .enumerate()
                .map(|(index, a)| AttachmentView::new(entry.raw_message_id, index, a))
                .collect(),
            from_new_address: entry.from_new_address,
        }
    }
}

/// What kind of thing a person did.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKindView {
    Note,
    Status,
    /// An answer to the customer by email.
    Reply,
    /// The ticket was assigned to someone, or to nobody.
    Assignment,
    /// A ticket was merged into this one, or this one into another.
    Merge,
}

/// A note, a status change or a reply (its text and sending state are in the ticket's
/// `replies`), by a person or an API token.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub id: i64,
    pub kind: EventKindView,
    /// The user's id while the user exists; null for an API token.
    pub author_id: Option<i64>,
    pub author: String,
    /// The note's text.
    pub body: Option<String>,
    pub from_status: Option<Status>,
    pub to_status: Option<Status>,
    /// An assignment's new assignee as shown then; null: nobody.
    pub assignee: Option<String>,
    /// A merge's other ticket: the one merged in, or the one this ticket joined.
    pub other_ticket_number: Option<i64>,
    pub created_at: i64,
}

impl From<&TicketEvent> for EventView {
    fn from(event: &TicketEvent) -> EventView {
        EventView {
            id: event.id,
            kind: match event.kind {
                TicketEventKind::Note => EventKindView::Note,
                TicketEventKind::Status => EventKindView::Status,
                TicketEventKind::Reply => EventKindView::Reply,
                TicketEventKind::Assignment => EventKindView::Assignment,
                TicketEventKind::Merge => EventKindView::Merge,
            },
            author_id: event.author_id,
            author: event.author.clone(),
            body: event.body.clone(),
            from_status: event.from_status.map(Status::from),
            to_status: event.to_status.map(Status::from),
            assignee: event.assignee.clone(),
            other_ticket_number: event.other_ticket_number,
            created_at: event.created_at,
        }
    }
}

/// A ticket with its mail (oldest first), what people did on it (oldest first), and
/// what popdesk sent the customer (oldest first) with how sending went.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketDetail {
    pub ticket: TicketSummary,
    pub entries: Vec<EntryView>,
    pub events: Vec<EventView>,
    /// Replies and acknowledgements, each with its state: queued, sent or failed.
    pub replies: Vec<ReplyView>,
}

/// The ticket, if the caller may see it; one outside their mailboxes is as missing as
/// one that never existed.
pub(crate) async fn find(state: &AppState, actor: &Actor, number: i64) -> ApiResult<Ticket> {
    auth::scope::ticket(state, actor, number)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no ticket #{number}")))
}

/// One ticket with its messages and history.
#[utoipa::path(
    get, path = "/api/v1/tickets/{number}", tag = "tickets",
    params(("number" = i64, Path, description = "The ticket number")),
    responses(
        (status = 200, description = "The ticket", body = TicketDetail),
        (status = 400, description = "The number is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 404, description = "No such ticket", body = ErrorBody),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(number): ApiPath<i64>,
) -> ApiResult<Json<TicketDetail>> {
    let ticket = find(&state, &actor, number).await?;
    let entries = state.store().ticket_entries(ticket.id).await?;
    let events = state.store().ticket_events(ticket.id).await?;
    let replies = state.store().ticket_outbox(ticket.id).await?;
    Ok(Json(TicketDetail {
        ticket: (&ticket).into(),
        entries: entries.iter().map(EntryView::from).collect(),
        events: events.iter().map(EventView::from).collect(),
        replies: replies.iter().map(ReplyView::from).collect(),
    }))
}

/// A change to a ticket: its status, its assignee, or both.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketUpdate {
    pub status: Option<Status>,
    /// The address of the user to assign (an enabled agent or admin); null: nobody.
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub assignee: Option<Option<String>>,
}

/// The ticket after a change, the status change it made (null when the status did not
/// change), and whether the assignee changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketUpdated {
    pub ticket: TicketSummary,
    pub event: Option<EventView>,
    pub assignee_changed: bool,
}

/// Changes a ticket's status or assignee.
#[utoipa::path(
    patch, path = "/api/v1/tickets/{number}", tag = "tickets",
    params(("number" = i64, Path, description = "The ticket number")),
    request_body = TicketUpdate,
    responses(
        (status = 200, description = "The ticket as it is now", body = TicketUpdated),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Cross-site request refused", body = ErrorBody),
        (status = 404, description = "No such ticket", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Unknown status or field, nothing to change, or an assignee who is no enabled user", body = ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(number): ApiPath<i64>,
    ApiJson(change): ApiJson<TicketUpdate>,
) -> ApiResult<Json<TicketUpdated>> {
    if change.status.is_none() && change.assignee.is_none() {
        return Err(ApiError::validation(
            "nothing to change: give a status, an assignee, or both",
        ));
    }
    let ticket = find(&state, &actor, number).await?;
    // The assignee is checked before anything is written, so a refused one changes
    // nothing at all.
    let assignee = match &change.assignee {
        Some(Some(email)) => {
            let user = assignable_user(&state, email).await?;
            // An agent is given only tickets they can open: the ticket's mailbox must be
            // one of theirs.
            if user.role == store::Role::Agent
                && !state
                    .store()
                    .user_mailbox_ids(user.id)
                    .await?
                    .contains(&ticket.mailbox_id)
            {
                return Err(ApiError::validation(format!(
                    "{} does not work this ticket's mailbox, so they could not open it; give them the mailbox on their user page first, or pick someone who works it",
                    user.email
                ))
                .about("assignee"));
            }
            Some(Some(user.id))
        }
        Some(None) => Some(None),
        None => None,
    };
    let assignee_changed = match assignee {
        Some(assignee_id) => {
            state
                .store()
                .assign_ticket(
                    ticket.id,
                    assignee_id,
                    actor.user_id(),
                    &actor.label(),
                    state.now(),
                )
                .await?
        }
        None => false,
    };
    if assignee_changed && let Some(outgoing) = state.outgoing() {
        // "Assigned to you" goes out now rather than at the sender's next round.
        outgoing.wake();
    }
    let event = match change.status {
        Some(status) => {
            state
                .store()
                .change_ticket_status(
                    ticket.id,
                    status.into(),
                    actor.user_id(),
                    &actor.label(),
                    state.now(),
                )
                .await?
        }
        None => None,
    };
    let ticket = find(&state, &actor, number).await?;
    Ok(Json(TicketUpdated {
        ticket: (&ticket).into(),
        event: event.as_ref().map(EventView::from),
        assignee_changed,
    }))
}

/// An internal note: agents see it, the customer never does.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    /// Plain text.
    #[schema(max_length = 100000, pattern = r"\S")]
    pub body: String,
}

/// White space as the document's `\S` pattern means it (ECMAScript's `\s`), so "not
/// only white space" is the same rule for the handler and for a client reading the
/// schema. Rust's `char::is_whitespace` also counts U+0085, which `\S` matches.
fn schema_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// Adds an internal note to a ticket.
#[utoipa::path(
    post, path = "/api/v1/tickets/{number}/notes", tag = "tickets",
    params(("number" = i64, Path, description = "The ticket number")),
    request_body = NewNote,
    responses(
        (status = 201, description = "The note", body = EventView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Cross-site request refused", body = ErrorBody),
        (status = 404, description = "No such ticket", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Empty or too long note", body = ErrorBody),
    )
)]
pub async fn add_note(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(number): ApiPath<i64>,
    ApiJson(note): ApiJson<NewNote>,
) -> ApiResult<(StatusCode, Json<EventView>)> {
    // Whether the ticket is there (for this caller) comes first: an invisible ticket is
    // missing, whatever the note says.
    let ticket = find(&state, &actor, number).await?;
    let body = note.body.trim_matches(schema_space);
    if body.is_empty() {
        return Err(ApiError::validation("the note is empty"));
    }
    if body.chars().count() > MAX_NOTE_CHARS {
        return Err(ApiError::validation(format!(
            "the note is longer than {MAX_NOTE_CHARS} characters"
        )));
    }
    let event = state
        .store()
        .add_ticket_note(
            ticket.id,
            actor.user_id(),
            &actor.label(),
            body,
            state.now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(EventView::from(&event))))
}
