//! `popdesk process`, `popdesk ticket ...`, `popdesk message ...`

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, bail};
use intake::{Processor, ProcessorConfig, SystemClock};
use serde::Serialize;
use store::{
    EntryAttachment, OutboxMessage, OutboxState, ProcessRecord, ProcessStatus, RawMessage, Store,
    Ticket, TicketEntry, TicketFilter, TicketStatus,
};

use crate::cli::{MessageCommand, MessageStatusArg, TicketCommand, TicketStatusArg};
use crate::config::Common;
use crate::output;

/// The processor with the configured ticket prefix and own addresses.
pub fn processor(store: &Store, common: &Common) -> Processor {
    let config = ProcessorConfig {
        ticket_prefix: common.ticket_prefix.clone(),
        own_addresses: common.own_addresses.clone(),
        ..ProcessorConfig::default()
    };
    Processor::new(store.clone(), Arc::new(SystemClock), config)
}

pub async fn process(store: &Store, common: &Common) -> anyhow::Result<ExitCode> {
    let report = processor(store, common).process_pending().await?;
    println!(
        "{} to tickets ({} new tickets), {} ignored, {} failed",
        report.processed, report.tickets_opened, report.ignored, report.failed
    );
    if report.failed > 0 {
        eprintln!(
            "{} messages could not be processed: see `popdesk message list --status failed`",
            report.failed
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn ticket_status(arg: TicketStatusArg) -> TicketStatus {
    match arg {
        TicketStatusArg::New => TicketStatus::New,
        TicketStatusArg::Open => TicketStatus::Open,
        TicketStatusArg::Pending => TicketStatus::Pending,
        TicketStatusArg::Resolved => TicketStatus::Resolved,
        TicketStatusArg::Closed => TicketStatus::Closed,
    }
}

fn message_status(arg: MessageStatusArg) -> ProcessStatus {
    match arg {
        MessageStatusArg::Pending => ProcessStatus::Pending,
        MessageStatusArg::Processed => ProcessStatus::Processed,
        MessageStatusArg::Ignored => ProcessStatus::Ignored,
        MessageStatusArg::Failed => ProcessStatus::Failed,
    }
}

#[derive(Serialize)]
struct TicketView {
    number: i64,
    subject: String,
    mailbox: String,
    requester: String,
    requester_name: Option<String>,
    status: String,
    created_at: i64,
    updated_at: i64,
    messages: u64,
    /// The assignee's address; null: nobody.
    assignee: Option<String>,
}

#[derive(Serialize)]
struct EntryView<'a> {
    kind: String,
    message_id: &'a str,
    from: Option<&'a str>,
    from_name: Option<&'a str>,
    subject: Option<&'a str>,
    sent_at: Option<i64>,
    received_at: i64,
    reply_text: &'a str,
    text_body: &'a str,
    has_html: bool,
    attachments: &'a [EntryAttachmentView],
    raw_message_id: i64,
}

#[derive(Serialize)]
struct EntryAttachmentView {
    name: Option<String>,
    content_type: String,
    size: u64,
    sha256: String,
    inline: bool,
}

impl From<&EntryAttachment> for EntryAttachmentView {
    fn from(a: &EntryAttachment) -> Self {
        EntryAttachmentView {
            name: a.name.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
            sha256: a.sha256.clone(),
            inline: a.inline,
        }
    }
}

async fn mailbox_names(store: &Store) -> anyhow::Result<std::collections::HashMap<i64, String>> {
    Ok(store
        .mailboxes()
        .await?
        .into_iter()
        .map(|m| (m.id, m.settings.name))
        .collect())
}

fn ticket_view(ticket: &Ticket, names: &std::collections::HashMap<i64, String>) -> TicketView {
    TicketView {
        number: ticket.number,
        subject: ticket.subject.clone(),
        mailbox: names
            .get(&ticket.mailbox_id)
            .cloned()
            .unwrap_or_else(|| format!("(removed mailbox {})", ticket.mailbox_id)),
        requester: ticket.requester.address.clone(),
        requester_name: ticket.requester.name.clone(),
        status: ticket.status.to_string(),
        created_at: ticket.created_at,
        updated_at: ticket.updated_at,
        messages: ticket.entry_count,
        assignee: ticket.assignee.as_ref().map(|a| a.email.clone()),
    }
}

pub async fn ticket(
    store: &Store,
    command: TicketCommand,
    common: &Common,
) -> anyhow::Result<ExitCode> {
    let names = mailbox_names(store).await?;
    match command {
        TicketCommand::Reply(args) => crate::commands::outbox::reply(store, args, common).await,
        TicketCommand::List {
            status,
            mailbox,
            limit,
            json,
        } => {
            let mailbox_id = match mailbox {
                Some(name) => Some(
                    store
                        .mailbox(&name)
                        .await?
                        .ok_or_else(|| anyhow!("there is no mailbox named {name:?}"))?
                        .id,
                ),
                None => None,
            };
            let filter = TicketFilter {
                status: status.map(ticket_status),
                mailbox_id,
                limit,
                ..TicketFilter::default()
            };
            let tickets = store.tickets(&filter).await?;
            let views: Vec<TicketView> = tickets.iter().map(|t| ticket_view(t, &names)).collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&views)?);
                return Ok(ExitCode::SUCCESS);
            }
            if views.is_empty() {
                println!("no tickets");
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:>7}  {:<9} {:<19} {:>4}  {:<28} SUBJECT",
                "TICKET", "STATUS", "UPDATED", "MSGS", "REQUESTER"
            );
            for t in &views {
                println!(
                    "{:>7}  {:<9} {:<19} {:>4}  {:<28} {}",
                    format!("#{}", t.number),
                    t.status,
                    output::time(t.updated_at),
                    t.messages,
                    t.requester,
                    t.subject
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        TicketCommand::Assign {
            number,
            email,
            none: _,
        } => assign(store, number, email.as_deref()).await,
        TicketCommand::Show { number, json } => {
            let ticket = store
                .ticket_by_number(number)
                .await?
                .ok_or_else(|| anyhow!("there is no ticket #{number}"))?;
            let entries = store.ticket_entries(ticket.id).await?;
            let replies = store.ticket_outbox(ticket.id).await?;
            show_ticket(&ticket, &entries, &replies, &names, json)
        }
    }
}

/// `ticket assign N EMAIL|--none`, recorded in the ticket's history as by the command
/// line.
async fn assign(store: &Store, number: i64, email: Option<&str>) -> anyhow::Result<ExitCode> {
    let ticket = store
        .ticket_by_number(number)
        .await?
        .ok_or_else(|| anyhow!("there is no ticket #{number}"))?;
    let assignee = match email {
        Some(email) => {
            let user = store
                .user_by_email(email)
                .await?
                .ok_or_else(|| anyhow!("there is no user with the address {email}; `popdesk user list` shows who there is"))?;
            Some(user)
        }
        None => None,
    };
    let changed = store
        .assign_ticket(
            ticket.id,
            assignee.as_ref().map(|u| u.id),
            None,
            crate::commands::outbox::CLI_AUTHOR,
            crate::commands::mailbox::now_ms(),
        )
        .await?;
    let who = assignee
        .as_ref()
        .map_or_else(|| "nobody".to_string(), |u| u.email.clone());
    if changed {
        println!("ticket #{number} is now assigned to {who}");
    } else {
        println!("ticket #{number} was assigned to {who} already");
    }
    Ok(ExitCode::SUCCESS)
}

fn show_ticket(
    ticket: &Ticket,
    entries: &[TicketEntry],
    replies: &[OutboxMessage],
    names: &std::collections::HashMap<i64, String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let attachments: Vec<Vec<EntryAttachmentView>> = entries
        .iter()
        .map(|e| {
            e.attachments
                .iter()
                .map(EntryAttachmentView::from)
                .collect()
        })
        .collect();
    let views: Vec<EntryView> = entries
        .iter()
        .zip(&attachments)
        .map(|(e, attachments)| EntryView {
            kind: e.kind.to_string(),
            message_id: &e.message_id,
            from: e.from_address.as_deref(),
            from_name: e.from_name.as_deref(),
            subject: e.subject.as_deref(),
            sent_at: e.sent_at,
            received_at: e.created_at,
            reply_text: &e.reply_text,
            text_body: &e.text_body,
            has_html: e.html_body.is_some(),
            attachments,
            raw_message_id: e.raw_message_id,
        })
        .collect();
    if json {
        #[derive(Serialize)]
        struct Full<'a> {
            #[serde(flatten)]
            ticket: TicketView,
            thread: Vec<EntryView<'a>>,
            /// What popdesk sent: replies and acknowledgements, with their state.
            replies: Vec<ReplyView<'a>>,
        }
        let full = Full {
            ticket: ticket_view(ticket, names),
            thread: views,
            replies: replies.iter().map(ReplyView::from).collect(),
        };
        println!("{}", serde_json::to_string_pretty(&full)?);
        return Ok(ExitCode::SUCCESS);
    }
    let view = ticket_view(ticket, names);
    println!("#{} {}", view.number, view.subject);
    println!(
        "status {} · mailbox {} · requester {}{} · opened {}",
        view.status,
        view.mailbox,
        view.requester_name
            .as_deref()
            .map(|n| format!("{n} "))
            .unwrap_or_default(),
        format_args!("<{}>", view.requester),
        output::time(view.created_at)
    );
    // Mail in and mail out, in the order it happened.
    let mut pending_replies = replies.iter().peekable();
    for entry in &views {
        while let Some(reply) =
            pending_replies.next_if(|r| r.queued_at <= entry.sent_at.unwrap_or(entry.received_at))
        {
            print_reply(reply);
        }
        println!();
        let label = match entry.kind.as_str() {
            "bounce" => " [bounce]",
            "auto_reply" => " [auto-reply]",
            _ => "",
        };
        println!(
            "── {}{} · {}{label}",
            entry.from_name.or(entry.from).unwrap_or("(unknown sender)"),
            entry.from.map(|a| format!(" <{a}>")).unwrap_or_default(),
            output::time(entry.sent_at.unwrap_or(entry.received_at)),
        );
        let text = if entry.reply_text.trim().is_empty() {
            entry.text_body
        } else {
            entry.reply_text
        };
        println!("{}", text.trim_end());
        if entry.reply_text.len() < entry.text_body.len() {
            println!(
                "   (quoted history folded: `popdesk message raw {}` has it all)",
                entry.raw_message_id
            );
        }
        for a in entry.attachments {
            println!(
                "   📎 {} ({}, {})",
                a.name.as_deref().unwrap_or("(unnamed)"),
                a.content_type,
                output::size(a.size)
            );
        }
    }
    for reply in pending_replies {
        print_reply(reply);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct MessageView {
    id: i64,
    mailbox: String,
    message_id: Option<String>,
    size: u64,
    received_at: i64,
    status: String,
    reason: String,
    ticket: Option<i64>,
    log: Vec<String>,
}

async fn message_view(
    store: &Store,
    raw: &RawMessage,
    record: &ProcessRecord,
    names: &std::collections::HashMap<i64, String>,
) -> anyhow::Result<MessageView> {
    let ticket = match record.ticket_id {
        Some(id) => store.ticket_by_id(id).await?.map(|t| t.number),
        None => None,
    };
    Ok(MessageView {
        id: raw.id,
        mailbox: names
            .get(&raw.mailbox_id)
            .cloned()
            .unwrap_or_else(|| format!("(removed mailbox {})", raw.mailbox_id)),
        message_id: raw.message_id.clone(),
        size: raw.size,
        received_at: raw.received_at,
        status: record.status.to_string(),
        reason: record.reason.clone(),
        ticket,
        log: record.log.clone(),
    })
}

pub async fn message(
    store: &Store,
    command: MessageCommand,
    common: &Common,
) -> anyhow::Result<ExitCode> {
    let names = mailbox_names(store).await?;
    match command {
        MessageCommand::List {
            status,
            limit,
            json,
        } => {
            let rows = store
                .raw_messages_with_status(status.map(message_status), None, limit)
                .await?;
            let mut views = Vec::with_capacity(rows.len());
            for (raw, record) in &rows {
                views.push(message_view(store, raw, record, &names).await?);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&views)?);
                return Ok(ExitCode::SUCCESS);
            }
            if views.is_empty() {
                println!("no messages");
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:>6}  {:<10} {:<19} {:>7}  {:<16} REASON",
                "ID", "STATUS", "RECEIVED", "TICKET", "MAILBOX"
            );
            for m in &views {
                println!(
                    "{:>6}  {:<10} {:<19} {:>7}  {:<16} {}",
                    m.id,
                    m.status,
                    output::time(m.received_at),
                    m.ticket.map(|n| format!("#{n}")).unwrap_or_default(),
                    m.mailbox,
                    m.reason
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        MessageCommand::Show { id } => {
            let raw = store
                .raw_message(id)
                .await?
                .ok_or_else(|| anyhow!("there is no stored message {id}"))?;
            let record = store
                .processing_record(id)
                .await?
                .ok_or_else(|| anyhow!("there is no stored message {id}"))?;
            let view = message_view(store, &raw, &record, &names).await?;
            println!("message:   {}", view.id);
            println!("mailbox:   {}", view.mailbox);
            println!(
                "id:        {}",
                view.message_id.as_deref().unwrap_or("(no Message-ID)")
            );
            println!("size:      {}", output::size(view.size));
            println!("received:  {}", output::time(view.received_at));
            println!("status:    {} — {}", view.status, view.reason);
            if let Some(number) = view.ticket {
                println!("ticket:    #{number}");
            }
            for line in &view.log {
                println!("log:       {line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        MessageCommand::Raw { id } => {
            let raw = store
                .raw_message(id)
                .await?
                .ok_or_else(|| anyhow!("there is no stored message {id}"))?;
            let bytes = store.blobs().read(&raw.sha256).await?;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&bytes)?;
            stdout.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        MessageCommand::Reprocess { id, failed } => {
            let count = if failed {
                store.reset_failed().await?
            } else {
                let id = id.unwrap_or_default();
                if !store.reset_processing(id).await? {
                    bail!("there is no stored message {id}");
                }
                1
            };
            let report = processor(store, common).process_pending().await?;
            println!(
                "reprocessed {count}: {} to tickets ({} new tickets), {} ignored, {} failed",
                report.processed, report.tickets_opened, report.ignored, report.failed
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_reply(reply: &OutboxMessage) {
    println!();
    let state = match reply.state {
        OutboxState::Sent => format!(
            "sent {}",
            reply.sent_at.map(output::time).unwrap_or_default()
        ),
        OutboxState::Queued => match &reply.last_error {
            Some(error) => format!(
                "queued, next attempt {} (last: {error})",
                output::time(reply.next_attempt_at)
            ),
            None => "queued".to_string(),
        },
        OutboxState::Failed => format!(
            "FAILED: {} (`popdesk outbox retry {}` sends it again)",
            reply.last_error.as_deref().unwrap_or("no reason recorded"),
            reply.id
        ),
    };
    println!(
        "── {} by {} to {} · {} · {state}",
        reply.kind,
        reply.author,
        reply.recipients().collect::<Vec<_>>().join(", "),
        output::time(reply.queued_at)
    );
    println!("{}", reply.body.trim_end());
    for a in &reply.attachments {
        println!(
            "   📎 {} ({}, {})",
            a.name.as_deref().unwrap_or("(unnamed)"),
            a.content_type,
            output::size(a.size)
        );
    }
}

/// A reply or acknowledgement in `ticket show --json`.
#[derive(Serialize)]
struct ReplyView<'a> {
    id: i64,
    kind: &'static str,
    state: &'static str,
    author: &'a str,
    message_id: &'a str,
    to: &'a [String],
    cc: &'a [String],
    subject: &'a str,
    body: &'a str,
    attachments: Vec<EntryAttachmentView>,
    attempts: u32,
    last_error: Option<&'a str>,
    queued_at: i64,
    sent_at: Option<i64>,
    failed_at: Option<i64>,
}

impl<'a> From<&'a OutboxMessage> for ReplyView<'a> {
    fn from(m: &'a OutboxMessage) -> Self {
        ReplyView {
            id: m.id,
            kind: m.kind.as_str(),
            state: m.state.as_str(),
            author: &m.author,
            message_id: &m.message_id,
            to: &m.to,
            cc: &m.cc,
            subject: &m.subject,
            body: &m.body,
            attachments: m
                .attachments
                .iter()
                .map(EntryAttachmentView::from)
                .collect(),
            attempts: m.attempts,
            last_error: m.last_error.as_deref(),
            queued_at: m.queued_at,
            sent_at: m.sent_at,
            failed_at: m.failed_at,
        }
    }
}
