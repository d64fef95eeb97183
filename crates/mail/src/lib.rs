//! popdesk's mail crate: turns raw RFC 5322 bytes into the helpdesk's working material.
//!
//! - [`parse`] decodes a raw message into a [`ParsedMessage`]: addresses, subject,
//!   date, ids for threading, text and sanitized HTML bodies, attachments (with names
//!   decoded however the sender wrote them, forwarded messages summarised, and the
//!   files inside `winmail.dat` taken out, and its text read when the MIME text is
//!   empty), and the new part of a reply.
//! - [`classify`] tells normal mail from bounces, auto-replies, list mail and our own
//!   mail coming back, each with the reason in words.
//! - [`sanitize_html`] makes untrusted HTML safe to show an agent.
//!
//! It depends on nothing else in popdesk and does no I/O: the caller stores bytes,
//! threads and makes tickets.

mod binary;
mod charset;
mod classify;
mod date;
mod detect;
mod display_name;
mod encoded_word;
mod error;
mod filename;
mod html_text;
mod message;
mod parse;
mod reply;
mod report;
mod rtf_compressed;
mod rtf_text;
mod sanitize;
mod tnef;
mod tnef_body;

pub use classify::{
    AutoReplySignal, Classification, ClassifyContext, Confidence, DeliveryStatus, MessageKind,
    classify,
};
pub use error::ParseError;
pub use message::{
    Address, Attachment, DeliveryReport, ForwardedSummary, ParsedMessage, RecipientStatus,
};
pub use parse::{parse, parse_with};
pub use reply::{ReplySplit, split_reply};
pub use sanitize::{SanitizeOptions, drop_missing_inline_images, sanitize_html};
pub use tnef::{TnefError, TnefExtraction, TnefFile, TnefLimits, extract_tnef};
pub use tnef_body::{TnefBody, TnefBodySource, TnefBodyText};
