//! Composing outgoing mail: a reply or an acknowledgement as exact RFC 5322 bytes.
//!
//! I/O-free: [`compose`] turns a [`Draft`] into the bytes the outbox stores and SMTP
//! sends unchanged, so a resend after a crash is byte for byte the same message
//! (promise 8). Every byte of the header section is built here from checked or
//! cleaned values: CR and LF from a display name, subject, file name, address or id can
//! never start a header field of their own.
//!
//! - `headers`: cleaning text to one line, RFC 2047 encoded words, folding.
//! - `address`: which addresses are accepted ([`is_valid_address`]).
//! - `subject`: `Re: <subject> [#N]` ([`reply_subject`]).
//! - `message_id`: popdesk's own ids and the References chain.
//! - `date`: the Date header.
//! - `quote`: the agent's text with the customer's text quoted below it.
//! - `quoted_printable`: the text part's transfer encoding.
//! - `mime`, `attachments`: multipart structure and the files.

mod address;
mod attachments;
mod date;
mod headers;
mod message_id;
mod mime;
mod quote;
mod quoted_printable;
mod random;
mod subject;

pub use address::is_valid_address;
pub use message_id::{
    MAX_MESSAGE_ID, MAX_REFERENCES, is_valid_message_id, new_message_id, references_chain,
};
pub use mime::FALLBACK_CONTENT_TYPE;
pub use subject::reply_subject;

use headers::{field, first_room, one_line, phrase_words, text_words};

/// An address with an optional display name, as in `Jane Doe <jane@example.com>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The plain address; must pass [`is_valid_address`] or [`compose`] refuses it.
    pub address: String,
    /// The display name; `None` or an empty name writes the bare address. Any text is
    /// accepted: line breaks become spaces, non-ASCII is encoded.
    pub name: Option<String>,
}

/// A file sent with a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file name as the customer should see it. Control characters become spaces;
    /// an empty name becomes `attachment`; names over 255 bytes are shortened, keeping
    /// the extension.
    pub name: String,
    /// The media type, e.g. `application/pdf`; parameters are dropped, and a malformed
    /// type becomes [`FALLBACK_CONTENT_TYPE`].
    pub content_type: String,
    /// The file's bytes, sent unchanged (base64).
    pub data: Vec<u8>,
}

/// RFC 3834 `Auto-Submitted` values popdesk sends. A human reply carries none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoSubmitted {
    /// `auto-replied`: an automatic answer to a message, such as the acknowledgement of
    /// a new ticket. Also adds `X-Auto-Response-Suppress: All`, which Exchange and
    /// Outlook honour, so their out-of-office replies do not answer it (promise 10).
    AutoReplied,
}

/// The customer's message quoted below the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The line above the quote, e.g. `On Tue, 1 Dec 2026 10:00, Jane <j@x> wrote:`.
    /// Written as one line.
    pub attribution: String,
    /// The customer's text; each line is written with a `> ` prefix (`>` when empty).
    pub text: String,
}

/// Everything a reply or acknowledgement says; [`compose`] turns it into bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// The mailbox answering: its address and display name.
    pub from: Mailbox,
    /// The recipients; at least one is required.
    pub to: Vec<Mailbox>,
    /// Copies; no `Cc` header when empty.
    pub cc: Vec<Mailbox>,
    /// The final subject (see [`reply_subject`]). Line breaks become spaces.
    pub subject: String,
    /// This message's id without angle brackets, fixed when the reply is queued (see
    /// [`new_message_id`]); must pass [`is_valid_message_id`].
    pub message_id: String,
    /// The id of the message answered, without angle brackets; must pass
    /// [`is_valid_message_id`] (check a customer's id with it first; an unusable one is
    /// refused rather than guessed at).
    pub in_reply_to: Option<String>,
    /// The thread's ids without angle brackets, oldest first (see [`references_chain`],
    /// which already drops unusable ids). No `References` header when empty.
    pub references: Vec<String>,
    /// When the message was written, ms since the Unix epoch; written in UTC.
    pub date_ms: i64,
    /// What the agent wrote. Any line endings; sent with CRLF.
    pub body: String,
    /// The customer's message, quoted below the body.
    pub quote: Option<Quote>,
    /// Files sent with the reply; with any, the message is `multipart/mixed`.
    pub attachments: Vec<Attachment>,
    /// `Some` for automatic mail (acknowledgements); `None` for a human reply.
    pub auto_submitted: Option<AutoSubmitted>,
}

/// Why a draft could not be composed. Each message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    /// An address that is not a plain `local@domain` (see [`is_valid_address`]).
    #[error(
        "the {field} address {address:?} is not a plain address like name@example.com; correct it"
    )]
    InvalidAddress {
        /// `From`, `To` or `Cc`.
        field: &'static str,
        /// The address as given.
        address: String,
    },
    /// No `To` address at all.
    #[error("the message has no To address; add the customer's address")]
    NoRecipients,
    /// A Message-ID, In-Reply-To or References id that cannot be written as `<id>`.
    #[error(
        "the {field} id {id:?} is not a usable Message-ID (printable characters without spaces or angle brackets, at most {MAX_MESSAGE_ID}); leave it out or make a new one"
    )]
    InvalidMessageId {
        /// `Message-ID`, `In-Reply-To` or `References`.
        field: &'static str,
        /// The id as given.
        id: String,
    },
    /// A date outside the years 1900 to 9999, which RFC 5322 cannot express or no
    /// real clock gives.
    #[error(
        "the date {date_ms} ms since 1970 lies outside the years 1900 to 9999; use the current time"
    )]
    DateOutOfRange {
        /// The date as given.
        date_ms: i64,
    },
}

/// The message for `draft` as RFC 5322 bytes with CRLF line endings throughout.
///
/// Headers, in this order: `Date`, `From`, `To`, `Cc` (when any), `Subject`,
/// `Message-ID`, `In-Reply-To` and `References` (when given), `Auto-Submitted` and
/// `X-Auto-Response-Suppress` (automatic mail only), `MIME-Version`, `Content-Type`,
/// and `Content-Transfer-Encoding` when there are no attachments. The body is UTF-8
/// `text/plain` in quoted-printable; with attachments, `multipart/mixed` with that text
/// first and each file in base64.
///
/// Every line is at most 998 octets; header lines are folded at 78 columns except
/// where one id or address is longer.
pub fn compose(draft: &Draft) -> Result<Vec<u8>, ComposeError> {
    let date = date::rfc5322_date(draft.date_ms).ok_or(ComposeError::DateOutOfRange {
        date_ms: draft.date_ms,
    })?;
    check_mailbox("From", &draft.from)?;
    if draft.to.is_empty() {
        return Err(ComposeError::NoRecipients);
    }
    for mailbox in &draft.to {
        check_mailbox("To", mailbox)?;
    }
    for mailbox in &draft.cc {
        check_mailbox("Cc", mailbox)?;
    }
    check_id("Message-ID", &draft.message_id)?;
    if let Some(id) = &draft.in_reply_to {
        check_id("In-Reply-To", id)?;
    }
    for id in &draft.references {
        check_id("References", id)?;
    }

    let mut out = String::new();
    out.push_str(&format!("Date: {date}\r\n"));
    out.push_str(&address_field("From", std::slice::from_ref(&draft.from)));
    out.push_str(&address_field("To", &draft.to));
    if !draft.cc.is_empty() {
        out.push_str(&address_field("Cc", &draft.cc));
    }
    out.push_str(&field(
        "Subject",
        &text_words(&one_line(&draft.subject), first_room("Subject")),
    ));
    out.push_str(&field("Message-ID", &[format!("<{}>", draft.message_id)]));
    if let Some(id) = &draft.in_reply_to {
        out.push_str(&field("In-Reply-To", &[format!("<{id}>")]));
    }
    if !draft.references.is_empty() {
        let ids: Vec<String> = draft
            .references
            .iter()
            .map(|id| format!("<{id}>"))
            .collect();
        out.push_str(&field("References", &ids));
    }
    match draft.auto_submitted {
        Some(AutoSubmitted::AutoReplied) => {
            out.push_str("Auto-Submitted: auto-replied\r\n");
            out.push_str("X-Auto-Response-Suppress: All\r\n");
        }
        None => {}
    }
    out.push_str("MIME-Version: 1.0\r\n");

    let text = quoted_printable::encode(&quote::reply_text(&draft.body, draft.quote.as_ref()));
    const TEXT_HEADERS: &str = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n";
    if draft.attachments.is_empty() {
        out.push_str(TEXT_HEADERS);
        out.push_str("\r\n");
        out.push_str(&text);
    } else {
        let boundary = mime::new_boundary();
        out.push_str(&field(
            "Content-Type",
            &[
                "multipart/mixed;".to_owned(),
                format!("boundary=\"{boundary}\""),
            ],
        ));
        out.push_str("\r\n");
        out.push_str(&format!("--{boundary}\r\n{TEXT_HEADERS}\r\n{text}\r\n"));
        for attachment in &draft.attachments {
            out.push_str(&format!("--{boundary}\r\n"));
            out.push_str(&attachments::attachment_part(attachment));
            out.push_str("\r\n");
        }
        out.push_str(&format!("--{boundary}--\r\n"));
    }
    Ok(out.into_bytes())
}

fn check_mailbox(field: &'static str, mailbox: &Mailbox) -> Result<(), ComposeError> {
    if is_valid_address(&mailbox.address) {
        Ok(())
    } else {
        Err(ComposeError::InvalidAddress {
            field,
            address: mailbox.address.clone(),
        })
    }
}

fn check_id(field: &'static str, id: &str) -> Result<(), ComposeError> {
    if is_valid_message_id(id) {
        Ok(())
    } else {
        Err(ComposeError::InvalidMessageId {
            field,
            id: id.to_owned(),
        })
    }
}

/// `From`, `To` or `Cc`: `Name <address>` (or the bare address), comma-separated.
fn address_field(name: &str, mailboxes: &[Mailbox]) -> String {
    let mut words = Vec::new();
    for (i, mailbox) in mailboxes.iter().enumerate() {
        // The first name shares its line with the field name; later ones may be folded
        // onto a line of their own.
        let room = if i == 0 {
            first_room(name)
        } else {
            headers::FOLD_AT - 3
        };
        let display = phrase_words(&one_line(mailbox.name.as_deref().unwrap_or("")), room);
        let mut address = if display.is_empty() {
            mailbox.address.clone()
        } else {
            format!("<{}>", mailbox.address)
        };
        if i + 1 < mailboxes.len() {
            address.push(',');
        }
        words.extend(display);
        words.push(address);
    }
    field(name, &words)
}
