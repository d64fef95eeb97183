//! Acknowledgements: "we got your message, your reference is [#N]" on new tickets, for
//! mailboxes that ask for it (off by default).
//!
//! Promise 10 (automatic mail never starts a loop): an acknowledgement carries
//! `Auto-Submitted: auto-replied` (RFC 3834); the processor asks for one only for mail a
//! person wrote (never an auto-reply, a bounce or list mail); here it is never sent to a
//! no-reply or system address or to one of popdesk's own, and at most once per sender
//! and mailbox per period.

use std::time::Duration;

use store::{
    AcknowledgementOutcome, NewOutboxMessage, OutboxKind, Store, StoreError, WantedAcknowledgement,
};
use tokio::io::AsyncWriteExt as _;

use crate::compose::{self, AutoSubmitted, Draft};
use crate::now_ms;
use crate::replies::own_addresses;

/// The text sent when the admin has not written one. `{number}`, `{reference}`,
/// `{subject}` and `{mailbox}` are filled in.
pub const DEFAULT_TEXT: &str = "Hello,\n\nthank you for your message. We have received it and will answer as soon as we can.\n\nYour reference is {reference}. Please keep it in the subject when you write to us about this request.\n\n{mailbox}";

/// How acknowledgements are sent.
#[derive(Debug, Clone)]
pub struct AcknowledgementConfig {
    pub ticket_prefix: String,
    /// One sender gets at most one acknowledgement from one mailbox in this period.
    pub period: Duration,
    /// The text, with placeholders (see [`DEFAULT_TEXT`]).
    pub text: String,
}

impl Default for AcknowledgementConfig {
    fn default() -> Self {
        AcknowledgementConfig {
            ticket_prefix: "#".to_string(),
            period: Duration::from_secs(24 * 3600),
            text: DEFAULT_TEXT.to_string(),
        }
    }
}

/// Why an address never gets an acknowledgement, if it does not.
pub fn never_acknowledged(address: &str, own: &[String]) -> Option<&'static str> {
    let address = address.trim().to_lowercase();
    if own.contains(&address) {
        return Some("it is one of popdesk's own addresses");
    }
    let Some((local, _)) = address.rsplit_once('@') else {
        return Some("it is not an address");
    };
    let squashed: String = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    const SYSTEM: [&str; 8] = [
        "noreply",
        "donotreply",
        "mailerdaemon",
        "postmaster",
        "bounce",
        "bounces",
        "autoreply",
        "daemon",
    ];
    if SYSTEM.iter().any(|system| squashed == *system)
        || squashed.contains("noreply")
        || squashed.contains("donotreply")
        || squashed.starts_with("bounce")
        || local.starts_with("owner-")
        || local.ends_with("-request")
    {
        return Some("it is a no-reply or system address");
    }
    None
}

/// Why the header section of the mail that opened a ticket says it was sent by a
/// machine or to many, if it does: the last check before an acknowledgement, beside
/// the processor's classification, because answering such mail is how loops and
/// backscatter start (RFC 3834 §2).
pub fn automatic_mail(raw: &[u8]) -> Option<&'static str> {
    // The header section only, bounded: a hostile message must not cost more.
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(raw.len())
        .min(256 * 1024);
    let head = String::from_utf8_lossy(&raw[..head_end]);
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let value = value.trim().to_ascii_lowercase();
        match name.trim().to_ascii_lowercase().as_str() {
            "auto-submitted" if !value.starts_with("no") => return Some("it is Auto-Submitted"),
            "list-id" | "list-unsubscribe" | "list-post" => return Some("it is list or bulk mail"),
            "precedence" if ["bulk", "list", "junk", "auto_reply"].contains(&value.as_str()) => {
                return Some("its Precedence says bulk, list or junk");
            }
            "x-autoreply" | "x-autorespond" | "x-auto-response-suppress"
                if !value.is_empty() && value != "no" =>
            {
                return Some("it says it was sent automatically");
            }
            _ => {}
        }
    }
    None
}

/// Turns wanted acknowledgements into queued messages.
#[derive(Clone)]
pub struct Acknowledger {
    store: Store,
    config: AcknowledgementConfig,
}

impl Acknowledger {
    pub fn new(store: Store, config: AcknowledgementConfig) -> Acknowledger {
        Acknowledger { store, config }
    }

    /// Queues (or deliberately drops, with a log line) every wanted acknowledgement;
    /// returns how many were queued.
    pub async fn queue_wanted(&self) -> Result<u64, StoreError> {
        let mut queued = 0;
        loop {
            let wanted = self.store.wanted_acknowledgements(100).await?;
            if wanted.is_empty() {
                return Ok(queued);
            }
            let own = own_addresses(&self.store.mailboxes().await?);
            for one in &wanted {
                if self.queue_one(one, &own).await? {
                    queued += 1;
                }
            }
        }
    }

    async fn queue_one(
        &self,
        wanted: &WantedAcknowledgement,
        own: &[String],
    ) -> Result<bool, StoreError> {
        let drop = |why: String| async move {
            tracing::info!(ticket_id = wanted.ticket_id, "no acknowledgement: {why}");
            self.store
                .drop_wanted_acknowledgement(wanted.ticket_id)
                .await
                .map(|_| false)
        };
        let Some(ticket) = self.store.ticket_by_id(wanted.ticket_id).await? else {
            return drop("the ticket is gone".to_string()).await;
        };
        let mailbox = self.store.mailbox_by_id(wanted.mailbox_id).await?;
        let Some((mailbox, sending)) = mailbox.and_then(|m| {
            let sending = m.settings.sending.clone()?;
            Some((m, sending))
        }) else {
            return drop("the mailbox no longer sends".to_string()).await;
        };
        if !sending.acknowledge {
            return drop("the mailbox no longer acknowledges new tickets".to_string()).await;
        }
        if let Some(why) = never_acknowledged(&wanted.address, own) {
            return drop(format!("{} {why}", wanted.address)).await;
        }
        if !compose::is_valid_address(&wanted.address) {
            return drop(format!("{} is not an address", wanted.address)).await;
        }
        let reference = format!("[{}{}]", self.config.ticket_prefix, ticket.number);
        let body = self
            .config
            .text
            .replace("{number}", &ticket.number.to_string())
            .replace("{reference}", &reference)
            .replace("{subject}", &ticket.subject)
            .replace(
                "{mailbox}",
                sending.display_name.as_deref().unwrap_or(&sending.address),
            );
        let entries = self.store.ticket_entries(ticket.id).await?;
        let first = entries.first();
        if let Some(entry) = first
            && let Some(raw) = self.store.raw_message(entry.raw_message_id).await?
            && let Ok(bytes) = self.store.blobs().read(&raw.sha256).await
            && let Some(why) = automatic_mail(&bytes)
        {
            return drop(format!(
                "the mail that opened ticket #{} {why}",
                ticket.number
            ))
            .await;
        }
        let now = now_ms();
        let domain = sending
            .address
            .rsplit_once('@')
            .map_or("popdesk.invalid", |(_, domain)| domain);
        let message_id = compose::new_message_id(domain);
        // A synthetic or malformed id of the customer's mail is left out, not refused.
        let in_reply_to = first
            .map(|entry| entry.message_id.clone())
            .filter(|id| compose::is_valid_message_id(id) && !id.ends_with("@popdesk.invalid"));
        let draft = Draft {
            from: compose::Mailbox {
                address: sending.address.clone(),
                name: sending.display_name.clone(),
            },
            to: vec![compose::Mailbox {
                address: wanted.address.clone(),
                name: ticket.requester.name.clone(),
            }],
            cc: Vec::new(),
            subject: compose::reply_subject(
                &ticket.subject,
                &self.config.ticket_prefix,
                ticket.number,
            ),
            message_id: message_id.clone(),
            references: in_reply_to.iter().cloned().collect(),
            in_reply_to,
            date_ms: now,
            body: body.clone(),
            quote: None,
            attachments: Vec::new(),
            auto_submitted: Some(AutoSubmitted::AutoReplied),
        };
        let bytes = match compose::compose(&draft) {
            Ok(bytes) => bytes,
            Err(error) => return drop(format!("it cannot be composed: {error}")).await,
        };
        let mut writer = self.store.blobs().writer().await?;
        if let Err(error) = writer.write_all(&bytes).await {
            return Err(writer.wrap_error(error));
        }
        let blob = writer.finish().await?;
        let (sha256, size) = (blob.sha256.clone(), blob.size);
        self.store.blobs().persist(vec![blob]).await?;
        let new = NewOutboxMessage {
            ticket_id: ticket.id,
            mailbox_id: mailbox.id,
            kind: OutboxKind::Acknowledgement,
            message_id,
            sha256,
            size,
            envelope_from: sending.address.clone(),
            to: vec![wanted.address.clone()],
            cc: Vec::new(),
            subject: draft.subject.clone(),
            body,
            attachments: Vec::new(),
            author_id: None,
            author: "popdesk (acknowledgement)".to_string(),
        };
        let period = i64::try_from(self.config.period.as_millis()).unwrap_or(i64::MAX);
        match self
            .store
            .queue_acknowledgement(&new, &wanted.address, now.saturating_sub(period), now)
            .await?
        {
            AcknowledgementOutcome::Queued(_) => Ok(true),
            AcknowledgementOutcome::RecentlyAcknowledged { .. } => {
                tracing::info!(
                    ticket = ticket.number,
                    "no acknowledgement: {} got one from this mailbox within the period",
                    wanted.address
                );
                Ok(false)
            }
            AcknowledgementOutcome::NotWanted => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_and_bulk_mail_is_known_by_its_headers() {
        let mail = |headers: &str| format!("{headers}From: a@example.org\r\n\r\nbody\r\n");
        for headers in [
            "Auto-Submitted: auto-replied\r\n",
            "List-Id: <news.example.org>\r\n",
            "List-Unsubscribe: <mailto:u@example.org>\r\n",
            "Precedence: bulk\r\n",
            "X-Autoreply: yes\r\n",
        ] {
            assert!(
                automatic_mail(mail(headers).as_bytes()).is_some(),
                "{headers}"
            );
        }
        for headers in ["Auto-Submitted: no\r\n", "Subject: List-Id: tricks\r\n", ""] {
            assert_eq!(automatic_mail(mail(headers).as_bytes()), None, "{headers}");
        }
        // Only the header section counts.
        assert_eq!(
            automatic_mail(b"From: a@example.org\r\n\r\nList-Id: <x>\r\n"),
            None
        );
    }

    #[test]
    fn no_reply_and_system_addresses_are_never_acknowledged() {
        let own = vec!["support@example.com".to_string()];
        for address in [
            "noreply@example.org",
            "no-reply@example.org",
            "No_Reply@Example.org",
            "do-not-reply@example.org",
            "donotreply@example.org",
            "noreply-billing@example.org",
            "gmail-noreply@google.com",
            "MAILER-DAEMON@example.org",
            "postmaster@example.org",
            "bounces+123@example.org",
            "owner-list@example.org",
            "list-request@example.org",
            "support@example.com",
        ] {
            assert!(
                never_acknowledged(address, &own).is_some(),
                "{address} must not be acknowledged"
            );
        }
        for address in [
            "jane@example.org",
            "replies@example.org",
            "noah@example.org",
        ] {
            assert_eq!(never_acknowledged(address, &own), None, "{address}");
        }
    }
}
