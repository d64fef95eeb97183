//! The parsed message model: one incoming mail in the helpdesk's words.
//!
//! Everything here is owned and free of mail-parser types, so the processor can keep
//! it, serialise it and hand it to the web layer without dragging the raw bytes along.

use serde::Serialize;

/// One incoming mail, decoded and made safe to show.
///
/// Built by [`crate::parse`]. Text is always UTF-8 with `\n` line ends, whatever
/// the message declared. Message-IDs are stored without angle brackets, so they
/// compare equal however a client wrote them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ParsedMessage {
    /// The first `From` address; `None` when the header is missing or unreadable.
    pub from: Option<Address>,
    /// `Reply-To` addresses: where a reply should go when present.
    pub reply_to: Vec<Address>,
    /// `To` addresses, groups flattened.
    pub to: Vec<Address>,
    /// `Cc` addresses, groups flattened.
    pub cc: Vec<Address>,
    /// The decoded subject, on one line; `None` when the header is missing.
    pub subject: Option<String>,
    /// The `Date` header in milliseconds since the Unix epoch; `None` when missing
    /// or not a real date. Never the arrival time: the caller knows that.
    pub date: Option<i64>,
    /// The `Message-ID` without angle brackets, or a synthetic one (see
    /// [`ParsedMessage::message_id_synthetic`]).
    pub message_id: String,
    /// True when the message had no usable `Message-ID` and [`ParsedMessage::message_id`]
    /// was made from the sha256 of the raw bytes (`<hex>@popdesk.invalid`): the same
    /// bytes always get the same id, so reprocessing and dedupe stay stable.
    pub message_id_synthetic: bool,
    /// `In-Reply-To` ids (usually one; some clients write several).
    pub in_reply_to: Vec<String>,
    /// `References` ids, oldest first, as the sender wrote them.
    pub references: Vec<String>,
    /// The plain-text body: every inline text part in order, HTML converted to
    /// text when the message has no text part. The full body, quotes included.
    pub text_body: String,
    /// The new part of a reply: [`ParsedMessage::text_body`] without the quoted history
    /// and the signature. Equal to `text_body` when nothing could be told apart, or
    /// when the message is a forward (the forwarded history is its content).
    pub reply_text: String,
    /// The HTML body sanitized with [`crate::SanitizeOptions::default`]: no scripts,
    /// no remote loads, `cid:` images not pointed anywhere yet. Re-sanitize
    /// [`ParsedMessage::html_source`] with your own options to point them at stored
    /// attachments.
    pub html_body: Option<String>,
    /// The decoded HTML exactly as the sender wrote it. Never show this to anyone:
    /// it exists so [`crate::sanitize_html`] can be run again with other options.
    pub html_source: Option<String>,
    /// Every part that is not the body: files, inline images, forwarded messages,
    /// reports, and files taken out of `winmail.dat` (after the `winmail.dat` itself).
    pub attachments: Vec<Attachment>,
    /// What a `multipart/report` said (bounces, read receipts, abuse reports).
    pub delivery_report: Option<DeliveryReport>,
    /// What was odd and how it was handled ("no charset declared; decoded as
    /// windows-1252"). For the message's processing log; empty for clean mail.
    pub notes: Vec<String>,
}

/// A mailbox: an address with the display name the sender gave it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Address {
    /// The decoded display name, if any.
    pub name: Option<String>,
    /// The address as written (`local@domain`); may lack an `@` in broken mail.
    pub address: String,
}

impl Address {
    /// The address lower-cased, for comparisons: domains are case-insensitive and in
    /// practice so are local parts.
    pub fn normalized(&self) -> String {
        self.address.trim().to_lowercase()
    }
}

/// A part of the message kept as a file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Attachment {
    /// The file name, decoded from RFC 2231 parameters, RFC 2047 words or raw 8-bit
    /// bytes; `None` when the sender gave none.
    pub name: Option<String>,
    /// The lower-cased MIME type, e.g. `application/pdf`.
    pub content_type: String,
    /// Size of [`Attachment::data`] in bytes.
    pub size: usize,
    /// Lower-case hex sha256 of [`Attachment::data`]: the blob store's name for it.
    pub sha256: String,
    /// The `Content-ID` without angle brackets: what `cid:` URLs in the HTML refer to.
    pub content_id: Option<String>,
    /// True when the HTML body shows this part through a `cid:` reference, so a
    /// ticket view need not list it again among the files.
    pub inline: bool,
    /// For a forwarded or returned `message/rfc822` part: who sent it, when, about
    /// what. [`Attachment::data`] is then the whole message, ready for [`crate::parse`].
    pub forwarded: Option<ForwardedSummary>,
    /// For a file taken out of a `winmail.dat`: the index in
    /// [`ParsedMessage::attachments`] of the `winmail.dat` it came from.
    pub extracted_from: Option<usize>,
    /// The decoded bytes, for the caller to store. Left out of serialisation.
    #[serde(skip)]
    pub data: Vec<u8>,
}

/// The headline of a message enclosed in another one (a forward, or the original
/// returned inside a bounce).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ForwardedSummary {
    /// The enclosed message's first `From` address.
    pub from: Option<Address>,
    /// Its decoded subject.
    pub subject: Option<String>,
    /// Its `Date` in milliseconds since the Unix epoch.
    pub date: Option<i64>,
    /// Its `Message-ID` without angle brackets; never synthetic, because a bounce
    /// must only be matched on an id that really was sent.
    pub message_id: Option<String>,
}

/// What a `multipart/report` (RFC 6522) said about some earlier message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    /// The `report-type` parameter, lower-cased: `delivery-status` (RFC 3464),
    /// `disposition-notification` (read receipts), `feedback-report` (abuse), ...
    pub report_type: String,
    /// One entry per recipient block of a `message/delivery-status` part.
    pub recipients: Vec<RecipientStatus>,
    /// `Feedback-Type` of an abuse report (RFC 5965), lower-cased.
    pub feedback_type: Option<String>,
    /// The `Message-ID` of the message the report is about, from the returned
    /// headers or message, or the report's `Original-Message-ID` field.
    pub original_message_id: Option<String>,
}

/// One recipient block of a delivery status notification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecipientStatus {
    /// `Final-Recipient` (or `Original-Recipient`) without its address type.
    pub recipient: Option<String>,
    /// `Action`, lower-cased: `failed`, `delayed`, `delivered`, `relayed`, `expanded`.
    pub action: Option<String>,
    /// `Status`, e.g. `5.1.1`.
    pub status: Option<String>,
    /// `Diagnostic-Code`, as the remote server said it.
    pub diagnostic: Option<String>,
}
