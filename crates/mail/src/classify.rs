//! Telling normal mail from bounces, auto-replies, list mail and our own mail.

use crate::ParsedMessage;

/// What [`classify`] needs to know about this popdesk installation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassifyContext {
    /// The addresses popdesk's mailboxes receive at (and send from).
    pub own_addresses: Vec<String>,
}

/// How sure a classification is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Confidence {
    /// A hint only, e.g. a subject that looks like an out-of-office notice.
    Low,
    /// A header that automated mail sets, but not only auto-replies.
    Medium,
    /// A header whose purpose is to say "this was sent automatically".
    High,
}

/// What a delivery report says happened to the original message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum DeliveryStatus {
    /// Delivery failed for at least one recipient.
    Failed,
    /// Delivery is delayed and still being retried.
    Delayed,
    /// Delivered or relayed onwards: a success notice.
    Delivered,
    /// A recipient reported the message as abuse (RFC 5965).
    Complaint,
    /// A bounce that does not say which (most non-standard bounces).
    Unknown,
}

/// The kind of an incoming message, which decides what the processor does with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum MessageKind {
    /// A person wrote it: it may open or update a ticket.
    Normal,
    /// A delivery report about a message we sent.
    Bounce {
        /// The Message-ID of the message that bounced, when the report names it.
        original_message_id: Option<String>,
        /// What happened to that message.
        status: DeliveryStatus,
    },
    /// Sent automatically (out-of-office, read receipt, notification).
    AutoReply {
        /// How sure: see [`Classification::signals`] for why.
        confidence: Confidence,
    },
    /// Mailing-list mail.
    List {
        /// The `List-Id`, when the list has one.
        list_id: Option<String>,
    },
    /// Mail from one of popdesk's own addresses: answering it would start a loop.
    FromOurselves,
}

/// One hint that a message was sent automatically.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AutoReplySignal {
    /// Where it was seen: a header name, or `Subject`.
    pub source: String,
    /// The value that gave it away.
    pub value: String,
    /// How much it says on its own.
    pub strength: Confidence,
}

/// The verdict of [`classify`], with its reason in words.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Classification {
    /// What the message is.
    pub kind: MessageKind,
    /// Why, in one sentence, for the message's processing log.
    pub reason: String,
    /// Every auto-reply hint found, even when another kind won.
    pub signals: Vec<AutoReplySignal>,
}

/// Classifies a parsed message.
///
/// `raw_headers` is the raw message (or only its header section): header fields
/// are read from it directly, so a message stored headers-only can be classified.
pub fn classify(
    message: &ParsedMessage,
    raw_headers: &[u8],
    context: &ClassifyContext,
) -> Classification {
    let _ = (message, raw_headers, context);
    Classification {
        kind: MessageKind::Normal,
        reason: "no sign of automatic mail".to_owned(),
        signals: Vec::new(),
    }
}
