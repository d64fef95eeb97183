//! Outgoing mail: how popdesk answers the customer (DESIGN.md "Answering the customer").
//!
//! - [`compose`]: a reply or an acknowledgement as exact RFC 5322 bytes, I/O-free.
//!
//! Promise 8 (a reply is never lost and goes out once) is kept by committing the bytes
//! and an outbox row before any SMTP, and fixing the Message-ID when the reply is queued.

pub mod compose;
