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
    EntryAttachment, EntryKind, OutboxMessage, Ticket, TicketCursor, TicketEntry, TicketEvent,
    TicketEventKind, TicketSort, TicketStatus, Toward,
};

use crate::AppState;
use crate::api::tickets::{NewNote, TicketUpdate};
use crate::input::{ApiJson, ApiPath};
use crate::ui::display::{self, When, person, size};
use crate::ui::flash::Flash;
use crate::ui::form::{CheckedForm, Choice, PagePath, PageQuery};
use crate::ui::intake_banner::{IntakeProblem, intake_problems};
use crate::ui::list_view::{ListQuery, ListView, sort_label, ticket_href};
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
    /// The ticket's page, keeping the list's view (its previous/next follow it).
    href: String,
    subject: String,
    requester: String,
    mailbox: String,
    assignee: String,
    status: &'static str,
    status_value: &'static str,
    updated: When,
    /// Where a search found the ticket (not shown for the subject: it is in the row).
    snippet: Option<store::Snippet>,
}

/// A "Mine" / "Unassigned" / "All" tab.
pub(crate) struct ViewTab {
    label: &'static str,
    href: String,
    current: bool,
}

/// A page number link ("jump to").
pub(crate) struct PageLink {
    number: u64,
    href: String,
    current: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "tickets.html")]
pub(crate) struct TicketsPage {
    layout: Layout,
    /// Admins: mailboxes that stopped bringing in mail.
    problems: Vec<IntakeProblem>,
    tabs: Vec<ViewTab>,
    statuses: Vec<Choice>,
    mailboxes: Vec<Choice>,
    assignees: Vec<Choice>,
    sorts: Vec<Choice>,
    q: String,
    counts: Vec<StatusCount>,
    all: StatusCount,
    rows: Vec<TicketRow>,
    /// "1–50 of 52" when the page's place is known (reached by number), else "50 of 52".
    summary: String,
    /// This page's own address: the self-updating list fetches it again.
    here: String,
    /// The view's fields for forms that keep it (jump to a page).
    view_fields: Vec<(&'static str, String)>,
    previous: Option<String>,
    next: Option<String>,
    pages: Vec<PageLink>,
    page_count: u64,
    /// The bulk form: statuses and assignees to pick from.
    bulk_statuses: Vec<Choice>,
    bulk_assignees: Vec<Choice>,
    /// Some filter is set (the empty state says so).
    filtered: bool,
    /// A page past the last page.
    past_end: bool,
    /// The list is a search's results, best match first.
    searched: bool,
    /// The search is this ticket's number: a link to open it.
    jump_to: Option<i64>,
}

/// One page of the list: a search's hits, or the list's page with its cursors.
struct TicketsFound {
    tickets: Vec<store::TicketHit>,
    previous: Option<TicketCursor>,
    next: Option<TicketCursor>,
}

/// The enabled agents and admins a ticket can be given to, as form choices (by
/// address), `selected` marked.
pub(crate) async fn assignee_choices(
    state: &AppState,
    selected: &str,
    mailbox_id: Option<i64>,
) -> Result<Vec<Choice>, store::StoreError> {
    // On a ticket's page, only people who can open it: admins, and the agents who work
    // its mailbox.
    let working = match mailbox_id {
        Some(id) => Some(state.store().mailbox_user_ids(id).await?),
        None => None,
    };
    Ok(state
        .store()
        .users()
        .await?
        .into_iter()
        .filter(|u| !u.disabled)
        .filter(|u| {
            u.role == store::Role::Admin
                || u.email == selected
                || working.as_ref().is_none_or(|ids| ids.contains(&u.id))
        })
        .map(|u| {
            let label = match &u.name {
                Some(name) if !name.trim().is_empty() => format!("{name} <{}>", u.email),
                _ => u.email.clone(),
            };
            let chosen = u.email == selected;
            Choice::new(u.email, label, chosen)
        })
        .collect())
}

/// The ticket list.
pub(crate) async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: axum::http::HeaderMap,
    PageQuery(query): PageQuery<ListQuery>,
) -> Response {
    let view = match ListView::read(&state, &viewer, &query) {
        Ok(view) => view,
        Err(response) => return response,
    };
    let mut filter = match view.filter(&state, &viewer).await {
        Ok(filter) => filter,
        Err(response) => return response,
    };
    filter.limit = PER_PAGE;
    let cursor = match (given(&query.after), given(&query.before)) {
        (Some(after), _) => Some(TicketCursor::parse(after, view.sort, Toward::After)),
        (None, Some(before)) => Some(TicketCursor::parse(before, view.sort, Toward::Before)),
        (None, None) => None,
    };
    // A cursor of another order (the sort was changed) or typed by hand: the first page.
    filter.cursor = cursor.and_then(Result::ok);
    // A page number that is not one reads as the first page.
    let page_number = given(&query.page)
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|p| (1..=100_000).contains(p))
        .unwrap_or(1);
    if filter.cursor.is_none() {
        filter.offset = (page_number - 1) * PER_PAGE;
    }
    let searching = filter.text.as_deref().is_some_and(|t| !t.trim().is_empty());
    let store = state.store();
    // A ticket number searched for: its ticket, if the viewer may see it.
    let jump_to =
        match crate::auth::scope::jump_target(store, &filter.scope, filter.text.as_deref()).await {
            Ok(jump_to) => jump_to,
            Err(error) => return page::api_error(&state, Some(&viewer), &error.into()),
        };
    // Asked for as a page (Enter, a link), it opens; while typing (htmx), the results
    // show it first with a link, so "19" on the way to "1996" does not leave the list.
    if let Some(number) = jump_to
        && !crate::ui::form::from_htmx(&headers)
    {
        return page::see_other(&format!("/tickets/{number}"));
    }
    let loaded = async {
        // A search lists its results best match first, by page number; the list
        // itself pages by cursor.
        let page = if searching {
            TicketsFound {
                tickets: store.search_tickets(&filter).await?,
                previous: None,
                next: None,
            }
        } else {
            let page = store.ticket_page(&filter).await?;
            TicketsFound {
                tickets: page
                    .tickets
                    .into_iter()
                    .map(|ticket| store::TicketHit {
                        ticket,
                        snippet: None,
                    })
                    .collect(),
                previous: page.previous,
                next: page.next,
            }
        };
        let total = store.count_tickets(&filter).await?;
        let counts = store.count_tickets_by_status(&filter).await?;
        let mut mailboxes = store.mailboxes().await?;
        // An agent picks among their own mailboxes only.
        mailboxes.retain(|m| viewer.actor.scope().allows(m.id));
        let assignees = assignee_choices(&state, "", None).await?;
        Ok::<_, store::StoreError>((page, total, counts, mailboxes, assignees))
    }
    .await;
    let (page, total, counts, mailboxes, users) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return page::api_error(&state, Some(&viewer), &error.into()),
    };
    let names: HashMap<i64, String> = mailboxes
        .iter()
        .map(|m| (m.id, m.settings.name.clone()))
        .collect();
    let count_of = |wanted: TicketStatus| {
        counts
            .iter()
            .find(|(status, _)| *status == wanted)
            .map_or(0, |(_, n)| *n)
    };
    let now = state.now();
    let rows = page
        .tickets
        .iter()
        .map(|hit| (&hit.ticket, hit.snippet.as_ref()))
        .map(|(ticket, snippet)| TicketRow {
            number: ticket.number,
            href: view.href(&format!("/tickets/{}", ticket.number), &[]),
            subject: subject_or_placeholder(&ticket.subject),
            requester: person(
                Some(&ticket.requester.address),
                ticket.requester.name.as_deref(),
            ),
            mailbox: names
                .get(&ticket.mailbox_id)
                .cloned()
                .unwrap_or_else(|| "(removed mailbox)".to_string()),
            assignee: ticket
                .assignee
                .as_ref()
                .map_or_else(String::new, |a| a.label().to_string()),
            status: status_label(ticket.status),
            status_value: ticket.status.as_str(),
            updated: When::new(ticket.updated_at, now),
            snippet: snippet
                .filter(|s| s.field != store::SnippetField::Subject)
                .cloned(),
        })
        .collect::<Vec<_>>();
    let page_count = total.div_ceil(u64::from(PER_PAGE));
    // The page's number is known when it was reached by number, not by a cursor.
    let known_page = filter.cursor.is_none().then_some(u64::from(page_number));
    let here = {
        let mut extra = Vec::new();
        if let Some(cursor) = &filter.cursor {
            let key = match cursor.toward {
                Toward::After => "after",
                Toward::Before => "before",
            };
            extra.push((key, cursor.to_param()));
        } else if page_number > 1 {
            extra.push(("page", page_number.to_string()));
        }
        view.href("/tickets", &extra)
    };
    let shown = rows.len() as u64;
    let summary = match known_page {
        Some(number) if shown > 0 => {
            let first = (number - 1) * u64::from(PER_PAGE) + 1;
            format!("{first}–{} of {total}", first + shown - 1)
        }
        _ => format!("{shown} of {total}"),
    };
    let tab = |label: &'static str, assignee: &str| ViewTab {
        label,
        href: view.with_assignee(assignee).href("/tickets", &[]),
        current: view.assignee == assignee,
    };
    let me = viewer.actor.user().map(|u| u.email.clone());
    let assignee_value = view.assignee.clone();
    let page = TicketsPage {
        layout: Layout::signed_in(&viewer, "Tickets", Section::Tickets),
        problems: if viewer.is_admin() {
            intake_problems(&state).await
        } else {
            Vec::new()
        },
        tabs: vec![tab("Mine", "me"), tab("Unassigned", "none"), tab("All", "")],
        statuses: std::iter::once(Choice::new("", "Any status", view.status.is_none()))
            .chain(
                TicketStatus::ALL
                    .iter()
                    .map(|s| Choice::new(s.as_str(), status_label(*s), view.status == Some(*s))),
            )
            .collect(),
        mailboxes: std::iter::once(Choice::new("", "All mailboxes", view.mailbox.is_none()))
            .chain(mailboxes.iter().map(|m| {
                Choice::new(
                    m.id.to_string(),
                    m.settings.name.clone(),
                    view.mailbox == Some(m.id),
                )
            }))
            .collect(),
        assignees: [
            Choice::new("", "Anyone", assignee_value.is_empty()),
            Choice::new("me", "Me", assignee_value == "me"),
            Choice::new("none", "Nobody", assignee_value == "none"),
        ]
        .into_iter()
        .chain(
            users
                .iter()
                .filter(|c| me.as_deref() != Some(c.value.as_str()))
                .map(|c| Choice::new(c.value.clone(), c.label.clone(), c.value == assignee_value)),
        )
        .collect(),
        sorts: TicketSort::ALL
            .iter()
            .map(|s| Choice::new(s.as_str(), sort_label(*s), view.sort == *s))
            .collect(),
        counts: TicketStatus::ALL
            .iter()
            .map(|s| StatusCount {
                label: status_label(*s),
                count: count_of(*s),
                href: view.with_status(Some(*s)).href("/tickets", &[]),
                current: view.status == Some(*s),
            })
            .collect(),
        all: StatusCount {
            label: "All",
            count: counts.iter().map(|(_, n)| n).sum(),
            href: view.with_status(None).href("/tickets", &[]),
            current: view.status.is_none(),
        },
        filtered: view.filtered(),
        past_end: (page_number > 1 || filter.cursor.is_some()) && rows.is_empty(),
        searched: searching,
        jump_to,
        q: view.q.clone(),
        previous: page
            .previous
            .map(|c| view.href("/tickets", &[("before", c.to_param())])),
        next: page
            .next
            .map(|c| view.href("/tickets", &[("after", c.to_param())])),
        pages: page_links(page_count, known_page)
            .into_iter()
            .map(|number| PageLink {
                number,
                href: view.href(
                    "/tickets",
                    &[(
                        "page",
                        if number > 1 {
                            number.to_string()
                        } else {
                            String::new()
                        },
                    )],
                ),
                current: known_page == Some(number),
            })
            .collect(),
        page_count,
        view_fields: view
            .params(&[])
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect(),
        bulk_statuses: TicketStatus::ALL
            .iter()
            .map(|s| Choice::new(s.as_str(), status_label(*s), false))
            .collect(),
        bulk_assignees: std::iter::once(Choice::new("none", "Nobody", false))
            .chain(users)
            .collect(),
        here,
        rows,
        summary,
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

/// A query value, trimmed; `None` when absent or empty.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The page numbers worth a link: the first and last two, and two either side of the
/// current page (all of them for a short list).
fn page_links(count: u64, current: Option<u64>) -> Vec<u64> {
    if count <= 1 {
        return Vec::new();
    }
    let current = current.unwrap_or(1);
    (1..=count)
        .filter(|&n| n <= 2 || n + 2 > count || n.abs_diff(current) <= 2)
        .collect()
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

/// An assignment or a merge in the thread, as one sentence.
pub(crate) struct EventLine {
    text: String,
    /// Where the sentence's other ticket is, for a merge.
    link: Option<(String, String)>,
    when: When,
}

/// One thing in a ticket's thread, in time order.
pub(crate) enum ThreadItem {
    Mail(MailCard),
    Note(NoteCard),
    Status(StatusLine),
    Reply(ReplyCard),
    Event(EventLine),
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
    /// Who works it, in words ("Nobody" when unassigned).
    assignee: String,
    /// The users it can be given to; the first choice is nobody.
    assignees: Vec<Choice>,
    /// The viewer's address, for "Assign to me"; `None` when it is theirs already or
    /// the viewer is an API token.
    me: Option<String>,
    /// The list this ticket was opened from, with its view kept.
    back: String,
    /// That view as a query string, carried by the page's forms so the page after
    /// them keeps it.
    view_query: String,
    previous: Option<String>,
    next: Option<String>,
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
        TicketEventKind::Assignment => Some(ThreadItem::Event(EventLine {
            text: match &event.assignee {
                Some(assignee) => format!("{} assigned the ticket to {assignee}", event.author),
                None => format!("{} unassigned the ticket", event.author),
            },
            link: None,
            when,
        })),
        // A page shows only tickets that were not merged (a merged one redirects), so
        // its merge events are tickets merged into it.
        TicketEventKind::Merge => {
            let other = event.other_ticket_number?;
            Some(ThreadItem::Event(EventLine {
                text: format!("{} merged ticket", event.author),
                link: Some((format!("/tickets/{other}"), format!("#{other}"))),
                when,
            }))
        }
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
    PageQuery(query): PageQuery<ListQuery>,
) -> Response {
    // The list's view only adds links: one that no longer reads (an old bookmark)
    // leaves the ticket shown, with plain links.
    let view = ListView::read(&state, &viewer, &query).unwrap_or_default();
    // A merged ticket lives on in the one it joined.
    if let Ok(Some(ticket)) = state.store().ticket_by_number(number).await
        && let Some(into) = ticket.merged_into
    {
        return page::see_other_with(
            &state,
            &view.href(&format!("/tickets/{into}"), &[]),
            Flash::done(format!("Ticket #{number} was merged into this one.")),
        );
    }
    ticket_view_page(&state, &viewer, number, &view, StatusCode::OK, |reply| {
        reply
    })
    .await
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
    ticket_view_page(state, viewer, number, &ListView::default(), status, reply).await
}

/// [`ticket_page`], opened from the list in this view: "Tickets", "Previous" and "Next"
/// keep it.
async fn ticket_view_page(
    state: &AppState,
    viewer: &Viewer,
    number: i64,
    view: &ListView,
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
        let current = ticket.assignee.as_ref().map_or("", |a| a.email.as_str());
        let assignees = assignee_choices(state, current, Some(ticket.mailbox_id)).await?;
        Ok::<_, store::StoreError>((entries, events, replies, mailbox, assignees))
    }
    .await;
    let (entries, events, replies, mailbox, assignees) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return page::api_error(state, Some(viewer), &error.into()),
    };
    let (previous, next) = match view.neighbours(state, viewer, &ticket).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let now = state.now();
    let subject = subject_or_placeholder(&ticket.subject);
    let me = viewer
        .actor
        .user()
        .map(|u| u.email.clone())
        .filter(|email| ticket.assignee.as_ref().is_none_or(|a| &a.email != email));
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
        assignee: ticket
            .assignee
            .as_ref()
            .map_or_else(|| "Nobody".to_string(), |a| a.label().to_string()),
        assignees: std::iter::once(Choice::new("", "Nobody", ticket.assignee.is_none()))
            .chain(assignees)
            .collect(),
        me,
        back: view.href("/tickets", &[]),
        view_query: view.href("", &[]),
        previous: previous.map(|n| view.href(&format!("/tickets/{n}"), &[])),
        next: next.map(|n| view.href(&format!("/tickets/{n}"), &[])),
        subject,
    };
    page::show(state, status, page)
}

#[derive(Deserialize)]
pub(crate) struct StatusForm {
    status: String,
    /// The list's view the page was opened in.
    #[serde(default)]
    view: String,
}

/// Changes the status, as the signed-in person.
pub(crate) async fn change_status(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(number): PagePath<i64>,
    CheckedForm(form): CheckedForm<StatusForm>,
) -> Response {
    let back = ticket_href(number, &form.view);
    let Ok(status) = form.status.trim().parse::<TicketStatus>() else {
        return page::see_other_with(
            &state,
            &back,
            Flash::failed("There is no such status. Pick one from the list."),
        );
    };
    let change = TicketUpdate {
        status: Some(status.into()),
        ..TicketUpdate::default()
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
    /// The list's view the page was opened in.
    #[serde(default)]
    view: String,
}

/// Adds an internal note, as the signed-in person.
pub(crate) async fn add_note(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(number): PagePath<i64>,
    CheckedForm(form): CheckedForm<NoteForm>,
) -> Response {
    let back = ticket_href(number, &form.view);
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
