//! `popdesk ticket reply` and `popdesk outbox ...`: answering the customer from the
//! command line, through the same reply rules and outbox as the web.

use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use outgoing::compose::Attachment;
use outgoing::{Outgoing, ReplyRequest};
use serde::Serialize;
use store::{OutboxMessage, OutboxState, Store, TicketStatus};

use crate::EXIT_TEMPORARY;
use crate::cli::{OutboxCommand, OutboxStateArg, ReplyArgs};
use crate::config::Common;
use crate::output;

/// Who a reply from the command line is by, in ticket histories.
pub(crate) const CLI_AUTHOR: &str = "command line";

pub async fn reply(store: &Store, args: ReplyArgs, common: &Common) -> anyhow::Result<ExitCode> {
    let outgoing = common.outgoing(store);
    let body = match (&args.body, &args.body_file) {
        (Some(body), _) => body.clone(),
        (None, Some(path)) if path.as_os_str() == "-" => std::io::read_to_string(std::io::stdin())
            .context("cannot read the reply from standard input")?,
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the reply from {}", path.display()))?,
        (None, None) => {
            return Err(anyhow!(
                "give the reply with --body TEXT or --body-file FILE"
            ));
        }
    };
    let mut attachments = Vec::with_capacity(args.attach.len());
    for path in &args.attach {
        let data = std::fs::read(path)
            .with_context(|| format!("cannot read the attachment {}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "attachment".to_string());
        attachments.push(Attachment {
            content_type: content_type_for(&name).to_string(),
            name,
            data,
        });
    }
    let then_status = Some(
        args.status
            .map(crate::commands::tickets::ticket_status)
            .unwrap_or(TicketStatus::Pending),
    );
    let queued = outgoing
        .replies
        .queue(ReplyRequest {
            ticket_number: args.number,
            body,
            cc: args.cc.clone(),
            reply_all: args.reply_all,
            attachments,
            then_status,
            author_id: None,
            author: CLI_AUTHOR.to_string(),
        })
        .await
        .map_err(|error| anyhow!("{error}"))?;
    let message = queued.message;
    println!(
        "reply #{} to {} queued on ticket #{} (Message-ID <{}>)",
        message.id,
        message.recipients().collect::<Vec<_>>().join(", "),
        message.ticket_number,
        message.message_id
    );
    if args.no_send {
        return Ok(ExitCode::SUCCESS);
    }
    send_and_say(&outgoing, message.id).await
}

/// Sends one queued message now and says how it stands; the exit code tells scripts
/// whether to retry (75) or fix something (1).
async fn send_and_say(outgoing: &Outgoing, id: i64) -> anyhow::Result<ExitCode> {
    let message = outgoing.sender.send_now(id).await?;
    Ok(match message.state {
        OutboxState::Sent => {
            println!("sent: the server accepted it");
            ExitCode::SUCCESS
        }
        OutboxState::Queued => {
            eprintln!(
                "not sent yet: {}; it stays queued and is tried again at {} (by `popdesk serve`, or `popdesk outbox send`)",
                message
                    .last_error
                    .as_deref()
                    .unwrap_or("another sender is working on it"),
                output::time(message.next_attempt_at)
            );
            ExitCode::from(EXIT_TEMPORARY)
        }
        OutboxState::Failed => {
            eprintln!(
                "failed: {}; fix the cause, then `popdesk outbox retry {}`",
                message
                    .last_error
                    .as_deref()
                    .unwrap_or("no reason recorded"),
                message.id
            );
            ExitCode::FAILURE
        }
    })
}

pub async fn run(
    store: &Store,
    command: OutboxCommand,
    common: &Common,
) -> anyhow::Result<ExitCode> {
    let outgoing = common.outgoing(store);
    match command {
        OutboxCommand::List { state, limit, json } => {
            let state = state.map(|s| match s {
                OutboxStateArg::Queued => OutboxState::Queued,
                OutboxStateArg::Sent => OutboxState::Sent,
                OutboxStateArg::Failed => OutboxState::Failed,
            });
            let messages = store.outbox(state, limit).await?;
            if json {
                let views: Vec<OutboxView> = messages.iter().map(OutboxView::from).collect();
                println!("{}", serde_json::to_string_pretty(&views)?);
                return Ok(ExitCode::SUCCESS);
            }
            if messages.is_empty() {
                println!("the outbox is empty");
            }
            for m in &messages {
                println!(
                    "#{:<5} {:<7} ticket #{:<6} {:<15} to {}  {}{}",
                    m.id,
                    m.state,
                    m.ticket_number,
                    m.kind,
                    m.recipients().collect::<Vec<_>>().join(", "),
                    output::time(m.queued_at),
                    match (&m.state, &m.last_error) {
                        (OutboxState::Sent, _) | (_, None) => String::new(),
                        (_, Some(error)) => format!(" — {error}"),
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        OutboxCommand::Retry { id } => {
            let message = store
                .outbox_send_again(id, crate::commands::mailbox::now_ms())
                .await?
                .ok_or_else(|| {
                    anyhow!("there is no outgoing message #{id} (see `popdesk outbox list`)")
                })?;
            if message.state == OutboxState::Sent {
                println!("#{id} was sent already; nothing to do");
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "#{id} queued again (the same message, Message-ID <{}>)",
                message.message_id
            );
            send_and_say(&outgoing, id).await
        }
        OutboxCommand::Send => {
            let report = outgoing.run_once().await?;
            println!(
                "{} sent, {} to retry later, {} failed ({} SMTP connections)",
                report.sent, report.retrying, report.failed, report.connections
            );
            Ok(if report.failed > 0 {
                ExitCode::FAILURE
            } else if report.retrying > 0 {
                ExitCode::from(EXIT_TEMPORARY)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

/// A content type from the file name, for the common kinds; anything else is bytes.
fn content_type_for(name: &str) -> &'static str {
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match extension.as_deref() {
        Some("pdf") => "application/pdf",
        Some("txt" | "log") => "text/plain",
        Some("csv") => "text/csv",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("zip") => "application/zip",
        Some("json") => "application/json",
        Some("html" | "htm") => "text/html",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}

#[derive(Serialize)]
struct OutboxView<'a> {
    id: i64,
    ticket: i64,
    kind: &'static str,
    state: &'static str,
    message_id: &'a str,
    from: &'a str,
    to: &'a [String],
    cc: &'a [String],
    subject: &'a str,
    attempts: u32,
    last_error: Option<&'a str>,
    queued_at: i64,
    next_attempt_at: Option<i64>,
    sent_at: Option<i64>,
    failed_at: Option<i64>,
}

impl<'a> From<&'a OutboxMessage> for OutboxView<'a> {
    fn from(m: &'a OutboxMessage) -> Self {
        OutboxView {
            id: m.id,
            ticket: m.ticket_number,
            kind: m.kind.as_str(),
            state: m.state.as_str(),
            message_id: &m.message_id,
            from: &m.envelope_from,
            to: &m.to,
            cc: &m.cc,
            subject: &m.subject,
            attempts: m.attempts,
            last_error: m.last_error.as_deref(),
            queued_at: m.queued_at,
            next_attempt_at: (m.state == OutboxState::Queued).then_some(m.next_attempt_at),
            sent_at: m.sent_at,
            failed_at: m.failed_at,
        }
    }
}
