//! Writing a reply: the rules every adapter (web UI, JSON API, command line) shares.
//!
//! A reply is checked (the ticket exists and is not closed, its mailbox sends, the
//! addresses are addresses, the attachments fit), composed once into its exact bytes,
//! and committed — bytes in the blob store, then the outbox row, the ticket event and the
//! chosen status in one transaction — before any SMTP (promise 8). Nothing is queued when
//! a check fails.

use store::{
    EntryAttachment, EntryKind, Mailbox, NewOutboxMessage, OutboxKind, OutboxMessage, Store,
    StoreError, Ticket, TicketEntry, TicketEvent, TicketStatus,
};
use tokio::io::AsyncWriteExt as _;

use crate::compose::{self, Attachment, ComposeError, Draft, Quote};
use crate::now_ms;

/// The default limit on a reply's attachments, together: what most providers accept.
pub const DEFAULT_MAX_ATTACHMENTS_BYTES: u64 = 25 * 1024 * 1024;

/// How replies are written.
#[derive(Debug, Clone)]
pub struct ReplyConfig {
    /// What stands before the number in a subject's ticket reference: `[#1234]`.
    pub ticket_prefix: String,
    /// The attachments of one reply together may not be larger.
    pub max_attachments_bytes: u64,
}

impl Default for ReplyConfig {
    fn default() -> Self {
        ReplyConfig {
            ticket_prefix: "#".to_string(),
            max_attachments_bytes: DEFAULT_MAX_ATTACHMENTS_BYTES,
        }
    }
}

/// An agent's reply, as an adapter received it.
#[derive(Debug, Clone, Default)]
pub struct ReplyRequest {
    pub ticket_number: i64,
    /// What the agent wrote (plain text).
    pub body: String,
    /// Extra Cc addresses the agent typed.
    pub cc: Vec<String>,
    /// Keep the customer's Cc (and other To addresses), minus popdesk's own.
    pub reply_all: bool,
    pub attachments: Vec<Attachment>,
    /// The ticket's status once the reply is queued; `None` keeps it as it is.
    pub then_status: Option<TicketStatus>,
    /// The user writing, while they exist; `None` for an API token.
    pub author_id: Option<i64>,
    /// How the author is shown in the history.
    pub author: String,
}

/// Why a reply was not queued. Each says what to do; nothing was queued.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("there is no ticket #{0}")]
    TicketNotFound(i64),
    #[error(
        "ticket #{0} is closed; reopen it (set it to Open) before answering, or the customer's next mail opens a new ticket"
    )]
    TicketClosed(i64),
    #[error(
        "the mailbox {mailbox:?} of ticket #{number} cannot send: set its sending address and SMTP server on the mailbox page first"
    )]
    SendingNotSetUp { number: i64, mailbox: String },
    #[error("the reply is empty; write something or attach a file")]
    Empty,
    #[error(
        "the requester's address {address:?} is not an address popdesk can send to; there is no one to answer on this ticket"
    )]
    RequesterAddress { address: String },
    #[error("{address:?} is not an email address (Cc); correct it or leave it out")]
    CcAddress { address: String },
    #[error(
        "the attachments are {size} bytes together, more than the limit of {limit} bytes; leave some out or share them another way"
    )]
    AttachmentsTooLarge { size: u64, limit: u64 },
    #[error("the attachment {name:?} is empty or has no name")]
    AttachmentInvalid { name: String },
    #[error("the reply cannot be composed: {0}")]
    Compose(#[from] ComposeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A reply committed to the outbox.
#[derive(Debug, Clone)]
pub struct QueuedReply {
    pub ticket: Ticket,
    pub message: OutboxMessage,
    /// The `reply` event, and the status change when there was one.
    pub events: Vec<TicketEvent>,
}

/// Writes replies.
#[derive(Clone)]
pub struct Replies {
    store: Store,
    config: ReplyConfig,
}

impl Replies {
    pub fn new(store: Store, config: ReplyConfig) -> Replies {
        Replies { store, config }
    }

    pub fn config(&self) -> &ReplyConfig {
        &self.config
    }

    /// Checks, composes and queues a reply.
    pub async fn queue(&self, request: ReplyRequest) -> Result<QueuedReply, ReplyError> {
        let number = request.ticket_number;
        let ticket = self
            .store
            .ticket_by_number(number)
            .await?
            .ok_or(ReplyError::TicketNotFound(number))?;
        if ticket.status == TicketStatus::Closed {
            return Err(ReplyError::TicketClosed(number));
        }
        let mailbox = self
            .store
            .mailbox_by_id(ticket.mailbox_id)
            .await?
            .ok_or_else(|| ReplyError::SendingNotSetUp {
                number,
                mailbox: format!("#{} (removed)", ticket.mailbox_id),
            })?;
        let Some(sending) = mailbox.settings.sending.clone() else {
            return Err(ReplyError::SendingNotSetUp {
                number,
                mailbox: mailbox.settings.name.clone(),
            });
        };
        if request.body.trim().is_empty() && request.attachments.is_empty() {
            return Err(ReplyError::Empty);
        }
        let mut attachments_size = 0u64;
        for attachment in &request.attachments {
            if attachment.name.trim().is_empty() || attachment.data.is_empty() {
                return Err(ReplyError::AttachmentInvalid {
                    name: attachment.name.clone(),
                });
            }
            attachments_size = attachments_size.saturating_add(attachment.data.len() as u64);
        }
        if attachments_size > self.config.max_attachments_bytes {
            return Err(ReplyError::AttachmentsTooLarge {
                size: attachments_size,
                limit: self.config.max_attachments_bytes,
            });
        }
        let mut cc = Vec::new();
        for address in &request.cc {
            let address = address.trim();
            if address.is_empty() {
                continue;
            }
            if !compose::is_valid_address(address) {
                return Err(ReplyError::CcAddress {
                    address: address.to_string(),
                });
            }
            cc.push(address.to_string());
        }

        let entries = self.store.ticket_entries(ticket.id).await?;
        let answered = last_customer_entry(&entries);
        let parsed = match answered {
            Some(entry) => self.parse_entry(entry).await,
            None => None,
        };
        let own = own_addresses(&self.store.mailboxes().await?);

        // To: where the customer asked answers to go, else who wrote.
        let to_address = parsed
            .as_ref()
            .and_then(|p| p.reply_to.first().or(p.from.as_ref()))
            .map(|a| (a.address.trim().to_string(), a.name.clone()))
            .unwrap_or_else(|| {
                (
                    ticket.requester.address.clone(),
                    ticket.requester.name.clone(),
                )
            });
        if !compose::is_valid_address(&to_address.0) {
            return Err(ReplyError::RequesterAddress {
                address: to_address.0,
            });
        }
        if request.reply_all
            && let Some(parsed) = &parsed
        {
            for address in parsed.to.iter().chain(parsed.cc.iter()) {
                let normalized = address.normalized();
                if own.contains(&normalized)
                    || normalized == to_address.0.to_lowercase()
                    || cc.iter().any(|c| c.to_lowercase() == normalized)
                    || !compose::is_valid_address(&normalized)
                {
                    continue;
                }
                cc.push(address.address.trim().to_string());
            }
        }

        let now = now_ms();
        let domain = sending
            .address
            .rsplit_once('@')
            .map_or("popdesk.invalid", |(_, domain)| domain);
        let message_id = compose::new_message_id(domain);
        let (in_reply_to, references) = match (&parsed, answered) {
            (Some(parsed), _)
                if !parsed.message_id_synthetic
                    && compose::is_valid_message_id(&parsed.message_id) =>
            {
                (
                    Some(parsed.message_id.clone()),
                    compose::references_chain(
                        &parsed.references,
                        Some(&parsed.message_id),
                        compose::MAX_REFERENCES,
                    ),
                )
            }
            _ => (None, Vec::new()),
        };
        let quote = answered.map(|entry| Quote {
            attribution: attribution(entry),
            text: entry.reply_text.clone(),
        });
        let draft = Draft {
            from: compose::Mailbox {
                address: sending.address.clone(),
                name: sending.display_name.clone(),
            },
            to: vec![compose::Mailbox {
                address: to_address.0.clone(),
                name: to_address.1.clone(),
            }],
            cc: cc
                .iter()
                .map(|address| compose::Mailbox {
                    address: address.clone(),
                    name: None,
                })
                .collect(),
            subject: compose::reply_subject(&ticket.subject, &self.config.ticket_prefix, number),
            message_id: message_id.clone(),
            in_reply_to,
            references,
            date_ms: now,
            body: request.body.clone(),
            quote,
            attachments: request.attachments.clone(),
            auto_submitted: None,
        };
        let bytes = compose::compose(&draft)?;

        // The bytes and the attachments (for the thread's download links) are durable
        // before the outbox row that points at them commits.
        let mut blobs = Vec::with_capacity(1 + request.attachments.len());
        let message_blob = self.write_blob(&bytes).await?;
        let sha256 = message_blob.sha256.clone();
        let size = message_blob.size;
        blobs.push(message_blob);
        let mut stored_attachments = Vec::with_capacity(request.attachments.len());
        for attachment in &request.attachments {
            let blob = self.write_blob(&attachment.data).await?;
            stored_attachments.push(EntryAttachment {
                name: Some(attachment.name.clone()),
                content_type: attachment.content_type.clone(),
                size: blob.size,
                sha256: blob.sha256.clone(),
                content_id: None,
                inline: false,
                forwarded: None,
            });
            blobs.push(blob);
        }
        self.store.blobs().persist(blobs).await?;

        let new = NewOutboxMessage {
            ticket_id: ticket.id,
            mailbox_id: mailbox.id,
            kind: OutboxKind::Reply,
            message_id,
            sha256,
            size,
            envelope_from: sending.address.clone(),
            to: vec![to_address.0],
            cc,
            subject: draft.subject.clone(),
            body: request.body.clone(),
            attachments: stored_attachments,
            author_id: request.author_id,
            author: request.author.clone(),
        };
        let (message, events) = self
            .store
            .queue_reply(&new, request.then_status, now)
            .await?;
        let ticket = self
            .store
            .ticket_by_id(ticket.id)
            .await?
            .ok_or(StoreError::TicketNotFound(ticket.id))?;
        Ok(QueuedReply {
            ticket,
            message,
            events,
        })
    }

    async fn write_blob(&self, data: &[u8]) -> Result<store::FinishedBlob, StoreError> {
        let mut writer = self.store.blobs().writer().await?;
        if let Err(error) = writer.write_all(data).await {
            return Err(writer.wrap_error(error));
        }
        writer.finish().await
    }

    /// The customer's message as it arrived (for Reply-To, Cc and References, which the
    /// entry does not keep). A message that cannot be read again is answered from what
    /// the entry holds.
    async fn parse_entry(&self, entry: &TicketEntry) -> Option<mail::ParsedMessage> {
        let raw = self
            .store
            .raw_message(entry.raw_message_id)
            .await
            .ok()
            .flatten()?;
        let bytes = self.store.blobs().read(&raw.sha256).await.ok()?;
        tokio::task::spawn_blocking(move || mail::parse(&bytes).ok())
            .await
            .ok()
            .flatten()
    }
}

/// The newest mail a person wrote on the ticket (not a bounce or an auto-reply).
fn last_customer_entry(entries: &[TicketEntry]) -> Option<&TicketEntry> {
    entries
        .iter()
        .rev()
        .find(|entry| entry.kind == EntryKind::Message)
}

/// "On 2026-12-01 10:00 UTC, Jane Doe <jane@example.com> wrote:"
fn attribution(entry: &TicketEntry) -> String {
    let who = match (&entry.from_name, &entry.from_address) {
        (Some(name), Some(address)) => format!("{name} <{address}>"),
        (None, Some(address)) => address.clone(),
        (Some(name), None) => name.clone(),
        (None, None) => "the customer".to_string(),
    };
    match entry.sent_at.and_then(format_utc) {
        Some(when) => format!("On {when}, {who} wrote:"),
        None => format!("{who} wrote:"),
    }
}

/// `2026-12-01 10:00 UTC` for ms since the epoch.
pub(crate) fn format_utc(ms: i64) -> Option<String> {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    Some(format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        (rest % 3600) / 60
    ))
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Every address popdesk receives at or sends from, lower-cased: never a recipient of
/// "reply to all", never acknowledged (promise 10).
pub fn own_addresses(mailboxes: &[Mailbox]) -> Vec<String> {
    let mut own = Vec::new();
    for mailbox in mailboxes {
        if mailbox.settings.username.contains('@') {
            own.push(mailbox.settings.username.trim().to_lowercase());
        }
        if let Some(sending) = &mailbox.settings.sending {
            own.push(sending.address.trim().to_lowercase());
        }
    }
    own
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribution_dates_read_as_utc_calendar_dates() {
        assert_eq!(format_utc(0).as_deref(), Some("1970-01-01 00:00 UTC"));
        // 2026-12-01 10:05:00 UTC
        assert_eq!(
            format_utc(1_796_119_500_000).as_deref(),
            Some("2026-12-01 10:05 UTC")
        );
        assert_eq!(
            format_utc(951_782_400_000).as_deref(),
            Some("2000-02-29 00:00 UTC")
        );
    }
}
