//! Tickets, for agents and admins alike: the list with filters, counts and pages, one
//! ticket's thread (mail, notes, status changes and replies), a status change and an
//! internal note. The reply box and "Send again" are in `replies.rs`.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use store::{
    EntryAttachment, EntryKind, OutboxMessage, Ticket, TicketEntry, TicketEvent, TicketEventKind,
    TicketFilter, TicketStatus,
};

use crate::AppState;
use crate::api::tickets::{NewNote, TicketUpdate};
use crate::input::{ApiJson, ApiPath};
use crate::ui::display::{self, When, person, size};
use crate::ui::flash::Flash;
use crate::ui::form::{CheckedForm, Choice, PagePath, PageQuery, query_string};
use crate::ui::page::{self, Layout, Section, impl_page};
use crate::ui::replies::{ReplyBox, ReplyCard};
use crate::ui::viewer::Viewer;

/// Rows per page of the ticket list.
const PER_PAGE: u32 = 50;

/// A status as people read it.
pub(crate) fn status_label(status: TicketStatus) -> &'static str {
    match status {
        TicketStatus::New => "New",
        TicketStatus::Open => "Open",
        TicketStatus::Pending => "Pending",
        TicketStatus::Resolved => "Resolved",
        TicketStatus::Closed => "Closed",
    }
}

/// A status count in the list's header: "New 3", a link to that filter.
pub(crate) struct StatusCount {
    label: &'static str,
    count: u64,
    href: String,
    current: bool,
}

/// One row of the ticket table.
pub(crate) struct TicketRow {
    number: i64,
    subject: String,
    requester: String,
    mailbox: String,
    status: &'static str,
    status_value: &'static str,
    updated: When,
    /// Where a search found the ticket (not shown for the subject: it is in the row).
    snippet: Option<store::Snippet>,
}

#[derive(Template, WebTemplate)]
#[template(path = "tickets.html")]
pub(crate) struct TicketsPage {
    layout: Layout,
    statuses: Vec<Choice>,
    mailboxes: Vec<Choice>,
    q: String,
    counts: Vec<StatusCount>,
    all: StatusCount,
    rows: Vec<TicketRow>,
    total: u64,
    first: u64,
    last: u64,
    previous: Option<String>,
    next: Option<String>,
    /// Some filter is set (the empty state says so).
    filtered: bool,
    /// A page number past the last page.
    past_end: bool,
    /// The list is a search's results, best match first.
    searched: bool,
    /// The search is this ticket's number: a link to open it.
    jump_to: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    status: Option<String>,
    mailbox: Option<String>,
    q: Option<String>,
    page: Option<String>,
}

/// The ticket list.
pub(crate) async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: axum::http::HeaderMap,
    PageQuery(query): PageQuery<ListQuery>,
) -> Response {
    let text = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let status = match text(&query.status).map(|s| s.parse::<TicketStatus>()) {
        None => None,
        Some(Ok(status)) => Some(status),
        Some(Err(_)) => {
            return page::error(
                &state,
                Some(&viewer),
                StatusCode::BAD_REQUEST,
                "There is no such ticket status. Pick one from the list.",
            );
        }
    };
    let mailbox = match text(&query.mailbox).map(|m| m.parse::<i64>()) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            return page::error(
                &state,
                Some(&viewer),
                StatusCode::BAD_REQUEST,
                "There is no such mailbox. Pick one from the list.",
            );
        }
    };
    let q = text(&query.q).unwrap_or_default();
    // A page number that is not one reads as the first page.
    let page_number = text(&query.page)
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|p| (1..=100_000).contains(p))
        .unwrap_or(1);
    let filter = TicketFilter {
        scope: viewer.actor.scope().clone(),
        status,
        mailbox_id: mailbox,
        requester: None,
        text: (!q.is_empty()).then(|| q.clone()),
        limit: PER_PAGE,
        offset: (page_number - 1) * PER_PAGE,
        ..TicketFilter::default()
    };
    let store = state.store();
    // A ticket number searched for: its ticket, if the viewer may see it.
    let jump_to = match filter.text.as_deref().and_then(store::ticket_number) {
        Some(number) => match store.ticket_by_number(number).await {
            Ok(ticket) => ticket
                .filter(|ticket| filter.scope.allows(ticket.mailbox_id))
                .map(|ticket| ticket.merged_into.unwrap_or(ticket.number)),
            Err(error) => return page::api_error(&state, Some(&viewer), &error.into()),
        },
        None => None,
    };
    // Asked for as a page (Enter, a link), it opens; while typing (htmx), the results
    // show it first with a link, so "19" on the way to "1996" does not leave the list.
    if let Some(number) = jump_to
        && !crate::ui::form::from_htmx(&headers)
    {
        return page::see_other(&format!("/tickets/{number}"));
    }
    let loaded = async {
        let tickets = store.search_tickets(&filter).await?;
        let total = store.count_tickets(&filter).await?;
        let counts = store.count_tickets_by_status(&filter).await?;
        let mut mailboxes = store.mailboxes().await?;
        // An agent picks among their own mailboxes only.
        mailboxes.retain(|m| viewer.actor.scope().allows(m.id));
        Ok::<_, store::StoreError>((tickets, total, counts, mailboxes))
    }
    .await;
    let (tickets, total, counts, mailboxes) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return page::api_error(&state, Some(&viewer), &error.into()),
    };
    let names: HashMap<i64, String> = mailboxes
        .iter()
        .map(|m| (m.id, m.settings.name.clone()))
        .collect();
    let mailbox_value = mailbox.map(|id| id.to_string()).unwrap_or_default();
    // Links keep the other filters; a status link starts again at page 1.
    let link = |status: Option<TicketStatus>, page_number: u32| {
        let page = if page_number > 1 {
            page_number.to_string()
        } else {
            String::new()
        };
        format!(
            "/tickets{}",
            query_string(&[
                (
                    "status",
                    status.map(|s| s.as_str().to_string()).unwrap_or_default()
                ),
                ("mailbox", mailbox_value.clone()),
                ("q", q.clone()),
                ("page", page),
            ])
        )
    };
    let count_of = |wanted: TicketStatus| {
        counts
            .iter()
            .find(|(status, _)| *status == wanted)
            .map_or(0, |(_, n)| *n)
    };
    let now = state.now();
    let rows = tickets
        .iter()
        .map(|hit| (&hit.ticket, hit.snippet.as_ref()))
        .map(|(ticket, snippet)| TicketRow {
            number: ticket.number,
            subject: subject_or_placeholder(&ticket.subject),
            requester: person(
                Some(&ticket.requester.address),
                ticket.requester.name.as_deref(),
            ),
            mailbox: names
                .get(&ticket.mailbox_id)
                .cloned()
                .unwrap_or_else(|| "(removed mailbox)".to_string()),
            status: status_label(ticket.status),
            status_value: ticket.status.as_str(),
            updated: When::new(ticket.updated_at, now),
            snippet: snippet
                .filter(|s| s.field != store::SnippetField::Subject)
                .cloned(),
        })
        .collect::<Vec<_>>();
    let shown = u64::try_from(rows.len()).unwrap_or(0);
    let first = u64::from((page_number - 1) * PER_PAGE) + 1;
    let last = first + shown.saturating_sub(1);
    let page = TicketsPage {
        layout: Layout::signed_in(&viewer, "Tickets", Section::Tickets),
        statuses: std::iter::once(Choice::new("", "Any status", status.is_none()))
            .chain(
                TicketStatus::ALL
                    .iter()
                    .map(|s| Choice::new(s.as_str(), status_label(*s), status == Some(*s))),
            )
            .collect(),
        mailboxes: std::iter::once(Choice::new("", "All mailboxes", mailbox.is_none()))
            .chain(mailboxes.iter().map(|m| {
                Choice::new(
                    m.id.to_string(),
                    m.settings.name.clone(),
                    mailbox == Some(m.id),
                )
            }))
            .collect(),
        counts: TicketStatus::ALL
            .iter()
            .map(|s| StatusCount {
                label: status_label(*s),
                count: count_of(*s),
                href: link(Some(*s), 1),
                current: status == Some(*s),
            })
            .collect(),
        all: StatusCount {
            label: "All",
            count: counts.iter().map(|(_, n)| n).sum(),
            href: link(None, 1),
            current: status.is_none(),
        },
        filtered: status.is_some() || mailbox.is_some() || !q.is_empty(),
        past_end: page_number > 1 && shown == 0,
        searched: filter.text.is_some(),
        jump_to,
        q: q.clone(),
        previous: (page_number > 1).then(|| link(status, page_number - 1)),
        next: (u64::from(page_number) * u64::from(PER_PAGE) < total)
            .then(|| link(status, page_number + 1)),
        rows,
        total,
        first,
        last,
    };
    page::show(&state, StatusCode::OK, page)
}

/// Mail written this long before (or after: clocks are wrong) it arrived says so.
const WRITTEN_APART_MS: i64 = 15 * 60 * 1000;

/// When a mail was written, if that is far from `arrived`.
fn written_apart(written: Option<i64>, arrived: i64, now: i64) -> Option<When> {
    written
        .filter(|written| written.abs_diff(arrived) >= WRITTEN_APART_MS.unsigned_abs())
        .map(|written| When::new(written, now))
}

fn subject_or_placeholder(subject: &str) -> String {
    if subject.trim().is_empty() {
        "(no subject)".to_string()
    } else {
        subject.to_string()
    }
}

/// An attachment as a download link.
pub(crate) struct AttachmentLink {
    href: String,
    name: String,
    size: String,
    /// "shown in the message", or a forwarded message's headline.
    note: Option<String>,
    /// A small preview of an image attachment: the same download route, as `<img>`.
    preview: Option<String>,
}

/// Image attachments up to this size get a preview on the ticket page; a larger one is
/// only a link, so a page of screenshots does not load megabytes.
const MAX_PREVIEW_BYTES: u64 = 5_000_000;

/// Only these: what every browser shows as an inert picture (never SVG, a document).
const PREVIEW_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

impl AttachmentLink {
    fn new(raw_message_id: i64, index: usize, attachment: &EntryAttachment, now: i64) -> Self {
        let note = match &attachment.forwarded {
            Some(forwarded) => {
                let mut parts = vec!["Forwarded message".to_string()];
                if let Some(from) = &forwarded.from {
                    parts.push(format!("from {from}"));
                }
                if let Some(subject) = &forwarded.subject {
                    parts.push(format!("“{subject}”"));
                }
                if let Some(date) = forwarded.date {
                    parts.push(format!("sent {}", When::new(date, now).text));
                }
                Some(parts.join(" "))
            }
            None if attachment.inline && attachment.content_id.is_some() => {
                Some("shown in the message".to_string())
            }
            // A nameless part (a bounce's delivery report): its type says what it is.
            None if attachment
                .name
                .as_deref()
                .is_none_or(|n| n.trim().is_empty()) =>
            {
                Some(attachment.content_type.clone())
            }
            None => None,
        };
        let fallback = if attachment.forwarded.is_some() {
            format!("forwarded-message-{index}.eml")
        } else {
            format!("attachment-{index}")
        };
        let href = format!("/api/v1/messages/{raw_message_id}/attachments/{index}");
        let essence = attachment
            .content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        // An inline image already shows in the formatted message.
        let shown_inline = attachment.inline && attachment.content_id.is_some();
        let preview = (PREVIEW_TYPES.contains(&essence.as_str())
            && attachment.size <= MAX_PREVIEW_BYTES
            && attachment.forwarded.is_none()
            && !shown_inline)
            .then(|| href.clone());
        AttachmentLink {
            // The API's download route: Content-Disposition attachment, risky types as
            // octet-stream, nosniff. Only the safe image types above are ever an <img>.
            href,
            preview,
            name: crate::download::safe_filename(attachment.name.as_deref(), &fallback),
            size: size(attachment.size),
            note,
        }
    }
}

/// A mail message in the thread.
pub(crate) struct MailCard {
    id: i64,
    from: String,
    when: When,
    /// "Bounce", "Auto-reply", or none for a person's mail.
    badge: Option<&'static str>,
    kind: &'static str,
    /// Named the ticket by its number from an address new to it: the agent should look
    /// twice before acting on it.
    from_new_address: bool,
    /// The subject, when it differs from the ticket's.
    subject: Option<String>,
    /// The new text of this message.
    reply: String,
    /// The rest of the plain text (quoted history), folded.
    quoted: Option<String>,
    /// The sanitized HTML's address, for the sandboxed iframe.
    html_url: Option<String>,
    attachments: Vec<AttachmentLink>,
}

/// An internal note in the thread.
pub(crate) struct NoteCard {
    /// "note-{id}": the element's id, where the page lands after adding it.
    anchor: String,
    author: String,
    when: When,
    /// The note as HTML: escaped, with its links clickable ([`display::linked_text`]).
    body_html: String,
}

/// A status change in the thread: "X changed the status from A to B".
pub(crate) struct StatusLine {
    author: String,
    from: &'static str,
    to: &'static str,
    when: When,
}

/// One thing in a ticket's thread, in time order.
pub(crate) enum ThreadItem {
    Mail(MailCard),
    Note(NoteCard),
    Status(StatusLine),
    Reply(ReplyCard),
}

#[derive(Template, WebTemplate)]
#[template(path = "ticket.html")]
pub(crate) struct TicketPage {
    layout: Layout,
    number: i64,
    subject: String,
    status: &'static str,
    status_value: &'static str,
    requester: String,
    mailbox: String,
    created: When,
    updated: When,
    /// When the mail that opened the ticket was written, if that is not when it arrived
    /// (an imported mailbox).
    first_written: Option<When>,
    /// When the latest mail was written, if that is not the last activity.
    last_written: Option<When>,
    thread: Vec<ThreadItem>,
    statuses: Vec<Choice>,
    reply: ReplyBox,
}
impl_page!(TicketsPage, TicketPage);

/// Splits a plain body into the new text and the folded rest. `reply_text` is the
/// processor's cut; when the body starts with it, only what follows is folded,
/// otherwise (quotes interleaved with answers) the whole body is.
fn reply_and_quoted(reply_text: &str, text_body: &str) -> (String, Option<String>) {
    let reply = reply_text.trim();
    let body = text_body.trim();
    if reply.is_empty() {
        return (body.to_string(), None);
    }
    if body.is_empty() || body == reply {
        return (reply.to_string(), None);
    }
    let rest = body.strip_prefix(reply).map_or(body, str::trim);
    let quoted = (!rest.is_empty()).then(|| rest.to_string());
    (reply.to_string(), quoted)
}

fn mail_card(ticket: &Ticket, entry: &TicketEntry, now: i64) -> MailCard {
    let (reply, quoted) = reply_and_quoted(&entry.reply_text, &entry.text_body);
    let (badge, kind) = match entry.kind {
        EntryKind::Message => (None, "message"),
        EntryKind::Bounce => (Some("Bounce"), "bounce"),
        EntryKind::AutoReply => (Some("Auto-reply"), "auto-reply"),
    };
    MailCard {
        id: entry.id,
        from: person(entry.from_address.as_deref(), entry.from_name.as_deref()),
        when: When::new(entry.sent_at.unwrap_or(entry.created_at), now),
        badge,
        kind,
        from_new_address: entry.from_new_address,
        subject: entry
            .subject
            .clone()
            .filter(|s| !s.trim().is_empty() && s.trim() != ticket.subject.trim()),
        reply,
        quoted,
        html_url: entry
            .html_body
            .as_ref()
            .filter(|html| !html.trim().is_empty())
            .map(|_| format!("/messages/{}/html", entry.raw_message_id)),
        attachments: entry
            .attachments
            .iter()
            .enumerate()
            .map(|(index, a)| AttachmentLink::new(entry.raw_message_id, index, a, now))
            .collect(),
    }
}

fn event_item(event: &TicketEvent, now: i64) -> Option<ThreadItem> {
    let when = When::new(event.created_at, now);
    match event.kind {
        TicketEventKind::Note => Some(ThreadItem::Note(NoteCard {
            anchor: format!("note-{}", event.id),
            author: event.author.clone(),
            when,
            body_html: display::linked_text(event.body.as_deref().unwrap_or_default()),
        })),
        TicketEventKind::Status => Some(ThreadItem::Status(StatusLine {
            author: event.author.clone(),
            from: event.from_status.map_or("none", status_label),
            to: status_label(event.to_status?),
            when,
        })),
        // Shown from the outbox, with its sending state.
        TicketEventKind::Reply => None,
    }
}

/// Entries, replies and events merged by time; an entry goes first on a tie (the mail
/// came, then someone reacted), and a reply before the status change queued with it.
fn thread(
    ticket: &Ticket,
    entries: &[TicketEntry],
    events: &[TicketEvent],
    replies: &[OutboxMessage],
    now: i64,
) -> Vec<ThreadItem> {
    let mut timed: Vec<(i64, u8, ThreadItem)> = entries
        .iter()
        .map(|e| (e.created_at, 0, ThreadItem::Mail(mail_card(ticket, e, now))))
        .chain(
            replies
                .iter()
                .map(|r| (r.queued_at, 1, ThreadItem::Reply(ReplyCard::new(r, now)))),
        )
        .chain(
            events
                .iter()
                .filter_map(|e| event_item(e, now).map(|item| (e.created_at, 1, item))),
        )
        .collect();
    // Stable: at the same time and order, replies stay before the events.
    timed.sort_by_key(|(time, order, _)| (*time, *order));
    timed.into_iter().map(|(_, _, item)| item).collect()
}

/// One ticket with its thread.
pub(crate) async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(number): PagePath<i64>,
) -> Response {
    ticket_page(&state, &viewer, number, StatusCode::OK, |reply| reply).await
}

/// The ticket page with this status; `reply` fills the reply box (with what was typed
/// and why it was refused, after a refusal).
pub(crate) async fn ticket_page(
    state: &AppState,
    viewer: &Viewer,
    number: i64,
    status: StatusCode,
    reply: impl FnOnce(ReplyBox) -> ReplyBox,
) -> Response {
    let store = state.store();
    // One outside the viewer's mailboxes is as missing as one that never existed.
    let ticket = match crate::auth::scope::ticket(state, &viewer.actor, number).await {
        Ok(Some(ticket)) => ticket,
        Ok(None) => {
            return page::not_found(
                state,
                Some(viewer),
                format!("There is no ticket #{number}."),
            );
        }
        Err(error) => return page::api_error(state, Some(viewer), &error.into()),
    };
    let loaded = async {
        let entries = store.ticket_entries(ticket.id).await?;
        let events = store.ticket_events(ticket.id).await?;
        let replies = store.ticket_outbox(ticket.id).await?;
        let mailbox = store.mailbox_by_id(ticket.mailbox_id).await?;
        Ok::<_, store::StoreError>((entries, events, replies, mailbox))
    }
    .await;
    let (entries, events, replies, mailbox) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return page::api_error(state, Some(viewer), &error.into()),
    };
    let now = state.now();
    let subject = subject_or_placeholder(&ticket.subject);
    let page = TicketPage {
        layout: Layout::signed_in(
            viewer,
            format!("{subject} #{}", ticket.number),
            Section::Tickets,
        ),
        number: ticket.number,
        status: status_label(ticket.status),
        status_value: ticket.status.as_str(),
        requester: person(
            Some(&ticket.requester.address),
            ticket.requester.name.as_deref(),
        ),
        reply: reply(ReplyBox::new(state, viewer, &ticket, mailbox.as_ref())),
        mailbox: mailbox.map_or_else(|| "(removed mailbox)".to_string(), |m| m.settings.name),
        created: When::new(ticket.created_at, now),
        updated: When::new(ticket.updated_at, now),
        first_written: written_apart(ticket.first_mail_sent_at, ticket.created_at, now),
        last_written: written_apart(ticket.last_mail_sent_at, ticket.updated_at, now),
        thread: thread(&ticket, &entries, &events, &replies, now),
        statuses: TicketStatus::ALL
            .iter()
            .map(|s| Choice::new(s.as_str(), status_label(*s), *s == ticket.status))
            .collect(),
        subject,
    };
    page::show(state, status, page)
}

#[derive(Deserialize)]
pub(crate) struct StatusForm {
    status: String,
}

/// Changes the status, as the signed-in person.
pub(crate) async fn change_status(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(number): PagePath<i64>,
    CheckedForm(form): CheckedForm<StatusForm>,
) -> Response {
    let back = format!("/tickets/{number}");
    let Ok(status) = form.status.trim().parse::<TicketStatus>() else {
        return page::see_other_with(
            &state,
            &back,
            Flash::failed("There is no such status. Pick one from the list."),
        );
    };
    let change = TicketUpdate {
        status: status.into(),
    };
    match crate::api::tickets::update(
        State(state.clone()),
        viewer.actor.clone(),
        ApiPath(number),
        ApiJson(change),
    )
    .await
    {
        Ok(updated) => {
            let text = match updated.0.event {
                Some(_) => format!("The status is now {}.", status_label(status)),
                None => format!("The status was {} already.", status_label(status)),
            };
            page::see_other_with(&state, &back, Flash::done(text))
        }
        Err(error) => page::api_error(&state, Some(&viewer), &error),
    }
}

#[derive(Deserialize)]
pub(crate) struct NoteForm {
    body: String,
}

/// Adds an internal note, as the signed-in person.
pub(crate) async fn add_note(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(number): PagePath<i64>,
    CheckedForm(form): CheckedForm<NoteForm>,
) -> Response {
    let back = format!("/tickets/{number}");
    match crate::api::tickets::add_note(
        State(state.clone()),
        viewer.actor.clone(),
        ApiPath(number),
        ApiJson(NewNote { body: form.body }),
    )
    .await
    {
        // The confirmation shows on the note itself, where the page lands.
        Ok((_, note)) => page::see_other_with(
            &state,
            &format!("{back}#note-{}", note.0.id),
            Flash::done("Note added.").at(format!("note-{}", note.0.id)),
        ),
        Err(error) if error.status() == StatusCode::UNPROCESSABLE_ENTITY => page::see_other_with(
            &state,
            &back,
            Flash::failed(display::sentence(&error.body().error.message)),
        ),
        Err(error) => page::api_error(&state, Some(&viewer), &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_history_after_the_reply_is_folded() {
        assert_eq!(
            reply_and_quoted("Thanks!", "Thanks!\n\nOn Monday Bob wrote:\n> hi"),
            (
                "Thanks!".to_string(),
                Some("On Monday Bob wrote:\n> hi".to_string())
            )
        );
        assert_eq!(
            reply_and_quoted("Hello", "Hello"),
            ("Hello".to_string(), None)
        );
        // Answers between quotes: the whole body is folded.
        assert_eq!(
            reply_and_quoted("yes\nno", "> a?\nyes\n> b?\nno"),
            (
                "yes\nno".to_string(),
                Some("> a?\nyes\n> b?\nno".to_string())
            )
        );
        // Nothing new (a bare forward of quotes): the body is the text.
        assert_eq!(reply_and_quoted("", "> old"), ("> old".to_string(), None));
    }
}
