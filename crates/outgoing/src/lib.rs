//! Outgoing mail: how popdesk answers the customer (DESIGN.md "Answering the customer").
//!
//! - [`compose`]: a reply or an acknowledgement as exact RFC 5322 bytes, I/O-free.
//! - [`Replies`]: the rules for writing a reply, shared by the web UI, the JSON API and
//!   the command line; a reply is committed to the outbox before any SMTP.
//! - [`Acknowledger`]: "we got your message" on new tickets, under promise 10's rules.
//! - [`Notifier`]: mail to agents about their tickets, as their preferences ask.
//! - [`Sender`]: works the outbox over one reused SMTP connection per mailbox, with
//!   retries for temporary failures.
//! - [`smtp`]: one SMTP session through lettre, and "Test sending".
//!
//! Promise 8 (a reply is never lost and goes out once) is kept by committing the bytes
//! and an outbox row before any SMTP, and fixing the Message-ID when the reply is queued.

pub mod acknowledge;
pub mod compose;
pub mod notify;
pub mod replies;
pub mod sender;
mod service;
pub mod smtp;

pub use acknowledge::{AcknowledgementConfig, Acknowledger};
pub use notify::{NotificationConfig, Notifier};
pub use replies::{QueuedReply, Replies, ReplyConfig, ReplyError, ReplyRequest};
pub use sender::{SendReport, Sender, SenderConfig};
pub use service::{Outgoing, SEND_EVERY};
pub use smtp::{Failure, SendingTest, SmtpTarget, SmtpTimeouts, TargetError, test_sending};

/// Now, in ms since the Unix epoch (the store's time unit).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
