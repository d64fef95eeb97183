//! Telling normal mail from bounces, auto-replies, list mail and our own mail.
//!
//! A helpdesk that answers an out-of-office notice, or opens a ticket for every
//! bounce of its own replies, floods both sides; one that answers its own mail loops
//! forever. So every message is classified before it can open a ticket or trigger
//! anything, and every verdict comes with its reason in words for the log.
//!
//! Order of precedence, strongest evidence first: from ourselves (the loop guard
//! always wins), bounce, auto-reply by header (RFC 3834 and de-facto headers),
//! list mail, auto-reply by subject alone, normal.

use crate::ParsedMessage;
use crate::parse::clean_id;

/// What [`classify`] needs to know about this popdesk installation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassifyContext {
    /// The addresses popdesk's mailboxes receive at (and send from), any case.
    pub own_addresses: Vec<String>,
}

/// How sure a classification is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Confidence {
    /// A hint only: a subject that reads like an out-of-office notice. People write
    /// such subjects too, so the processor may still thread it like normal mail.
    Low,
    /// A header that mass and automated mail sets, but not only auto-replies
    /// (`Precedence: bulk`, `X-Auto-Response-Suppress`).
    Medium,
    /// A header whose purpose is to say "sent automatically" (`Auto-Submitted`,
    /// `X-Autoreply`, a read receipt).
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
    /// A recipient reported the message as abuse (RFC 5965 feedback report).
    Complaint,
    /// A bounce that does not say which (most non-standard bounces).
    Unknown,
}

/// The kind of an incoming message, which decides what the processor does with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum MessageKind {
    /// A person wrote it: it may open or update a ticket.
    Normal,
    /// A delivery report about a message sent earlier (by us, if the id matches).
    Bounce {
        /// The Message-ID of the message that bounced, when the report names it
        /// (returned headers or message, `Original-Message-ID`, or a `Message-ID:`
        /// line quoted in the text). The processor may also try `References`.
        original_message_id: Option<String>,
        /// What happened to that message.
        status: DeliveryStatus,
    },
    /// Sent automatically: out-of-office notice, read receipt, notification.
    AutoReply {
        /// How sure; [`Classification::signals`] says why.
        confidence: Confidence,
    },
    /// Mailing-list mail.
    List {
        /// The `List-Id` (`<id>` removed), when the list has one.
        list_id: Option<String>,
    },
    /// Mail from one of popdesk's own addresses: answering it would start a loop.
    FromOurselves,
}

/// One hint that a message was sent automatically.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AutoReplySignal {
    /// Where it was seen: a header name as written, or `Subject`.
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

/// At most this many header bytes are read: classification needs the top of the
/// message only, and a hostile header section must not cost more.
const MAX_HEADER_BYTES: usize = 256 * 1024;

/// Classifies a parsed message.
///
/// Order of precedence, strongest evidence first: from ourselves (the loop guard
/// always wins), bounce (RFC 3464 and RFC 5965 reports, then mail-system senders
/// with bounce subjects or a returned message), auto-reply by header (RFC 3834
/// `Auto-Submitted`, `X-Autoreply`, `X-Autorespond`, `Precedence`,
/// `X-Auto-Response-Suppress`, read receipts), list mail (`List-Id`), auto-reply
/// by subject alone (low confidence), normal.
///
/// `raw_headers` is the raw message, or only its header section: header fields are
/// read from it directly (the model keeps only the ones threading needs), which
/// also lets a message stored headers-only, because it was too large, be
/// classified. Never fails: unknown means [`MessageKind::Normal`].
pub fn classify(
    message: &ParsedMessage,
    raw_headers: &[u8],
    context: &ClassifyContext,
) -> Classification {
    let headers = read_headers(raw_headers);
    let signals = auto_reply_signals(message, &headers);

    if let Some(from) = &message.from {
        let from = from.normalized();
        if context
            .own_addresses
            .iter()
            .any(|own| own.trim().eq_ignore_ascii_case(&from))
        {
            return Classification {
                kind: MessageKind::FromOurselves,
                reason: format!("sent from {from}, one of popdesk's own addresses (loop guard)"),
                signals,
            };
        }
    }

    if let Some((status, why)) = bounce_evidence(message, &headers) {
        let original_message_id = original_message_id(message);
        let reason = match &original_message_id {
            Some(id) => format!("{why}; about message <{id}>"),
            None => format!("{why}; the original Message-ID is not in it"),
        };
        return Classification {
            kind: MessageKind::Bounce {
                original_message_id,
                status,
            },
            reason,
            signals,
        };
    }

    let strongest = signals.iter().max_by_key(|s| s.strength);
    if let Some(signal) = strongest.filter(|s| s.strength >= Confidence::Medium) {
        return Classification {
            kind: MessageKind::AutoReply {
                confidence: signal.strength,
            },
            reason: format!(
                "sent automatically: {}: {}",
                signal.source,
                shorten(&signal.value)
            ),
            signals,
        };
    }

    let list_id = header(&headers, "list-id");
    let list_precedence =
        header(&headers, "precedence").is_some_and(|p| p.trim().eq_ignore_ascii_case("list"));
    if list_id.is_some() || list_precedence {
        let list_id = list_id.map(list_id_value);
        let reason = match &list_id {
            Some(id) => format!("mailing-list mail (List-Id {id})"),
            None => "mailing-list mail (Precedence: list)".to_owned(),
        };
        return Classification {
            kind: MessageKind::List { list_id },
            reason,
            signals,
        };
    }

    if let Some(signal) = strongest {
        return Classification {
            kind: MessageKind::AutoReply {
                confidence: signal.strength,
            },
            reason: format!(
                "probably sent automatically ({} {:?}), a weak sign only",
                signal.source,
                shorten(&signal.value)
            ),
            signals,
        };
    }

    Classification {
        kind: MessageKind::Normal,
        reason: "no sign of automatic, list or bounced mail".to_owned(),
        signals,
    }
}

type Headers = Vec<(String, String)>;

/// The top-level header fields, unfolded, names lower-cased, values trimmed.
fn read_headers(raw: &[u8]) -> Headers {
    let raw = raw.get(..MAX_HEADER_BYTES).unwrap_or(raw);
    let mut headers: Headers = Vec::new();
    // Line by line, so only the header section is decoded, not the body behind it (a
    // newline is never part of a multi-byte character: the result is the same).
    for line in raw.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if line.trim().is_empty() {
            if headers.is_empty() && !line.is_empty() {
                continue;
            }
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        match line.split_once(':') {
            Some((name, value)) if !name.trim().is_empty() && !name.contains(' ') => {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
            Some((name, value)) if name.trim_end().len() < name.len() => {
                // Obsolete syntax: white space before the colon.
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
            // A From_ line of an mbox, or junk: skip it.
            _ => {}
        }
    }
    headers
}

fn header<'h>(headers: &'h Headers, name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn list_id_value(value: &str) -> String {
    match (value.rfind('<'), value.rfind('>')) {
        (Some(start), Some(end)) if start < end => value[start + 1..end].trim().to_owned(),
        _ => value.trim().to_owned(),
    }
}

fn shorten(value: &str) -> String {
    let mut s: String = value.chars().take(80).collect();
    if s.len() < value.len() {
        s.push('…');
    }
    s
}

/// Every sign that the message was sent by a program rather than a person.
fn auto_reply_signals(message: &ParsedMessage, headers: &Headers) -> Vec<AutoReplySignal> {
    let mut signals = Vec::new();
    let mut add = |source: &str, value: &str, strength| {
        signals.push(AutoReplySignal {
            source: source.to_owned(),
            value: value.to_owned(),
            strength,
        });
    };
    for (name, value) in headers {
        let token = value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match name.as_str() {
            // RFC 3834: anything but "no" means a program sent it.
            "auto-submitted" if !token.is_empty() && token != "no" => {
                add("Auto-Submitted", value, Confidence::High);
            }
            "x-autoreply" | "x-autorespond" | "x-autoresponder" | "x-auto-reply"
                if token != "no" && token != "false" =>
            {
                add(&header_case(name), value, Confidence::High);
            }
            "x-autogenerated" if token == "reply" => {
                add("X-Autogenerated", value, Confidence::High);
            }
            "precedence" | "x-precedence" => match token.as_str() {
                "auto_reply" | "auto-reply" => add(&header_case(name), value, Confidence::High),
                "bulk" | "junk" => add(&header_case(name), value, Confidence::Medium),
                _ => {}
            },
            // Exchange sets it on the mail its own automation sends.
            "x-auto-response-suppress" if !token.is_empty() && token != "none" => {
                add("X-Auto-Response-Suppress", value, Confidence::Medium);
            }
            _ => {}
        }
    }
    let read_receipt = message.attachments.iter().any(|a| {
        matches!(
            a.content_type.as_str(),
            "message/disposition-notification" | "message/global-disposition-notification"
        )
    });
    if read_receipt {
        add(
            "Content-Type",
            "message/disposition-notification (a read receipt, RFC 8098)",
            Confidence::High,
        );
    }
    if message
        .delivery_report
        .as_ref()
        .is_some_and(|r| r.report_type == "tlsrpt")
    {
        add(
            "Content-Type",
            "multipart/report; report-type=tlsrpt (an SMTP TLS report)",
            Confidence::High,
        );
    }
    if let Some(subject) = &message.subject
        && looks_like_auto_reply_subject(subject)
    {
        add("Subject", subject, Confidence::Low);
    }
    signals
}

/// Canonical capitalisation of a lower-cased header name, for the log.
fn header_case(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(first) => first.to_uppercase().chain(c).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Subjects that out-of-office and auto-reply programs write, in the languages
/// support mail arrives in most. Prefixes only: a person writing "my out of office
/// setting is broken" is not an auto-reply.
fn looks_like_auto_reply_subject(subject: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "out of office",
        "out of the office",
        "automatic reply",
        "auto reply",
        "auto-reply",
        "autoreply",
        "auto response",
        "auto-response",
        "autoresponse",
        "automatic response",
        "abwesend",
        "abwesenheitsnotiz",
        "automatische antwort",
        "réponse automatique",
        "reponse automatique",
        "absence du bureau",
        "absent du bureau",
        "respuesta automática",
        "respuesta automatica",
        "fuera de la oficina",
        "risposta automatica",
        "fuori sede",
        "automatisch antwoord",
        "afwezig",
        "autosvar",
        "automatisk svar",
        "fraværsmelding",
        "resposta automática",
        "ausente",
        "odpowiedź automatyczna",
        "automatická odpověď",
        "מענה 'אני לא נמצא'",
        "自動応答",
        "自动回复",
    ];
    let lower = subject.trim().to_lowercase();
    // "Re: Out of office" is a person replying; only the program's own prefix counts.
    PREFIXES.iter().any(|p| lower.starts_with(p))
        || lower.contains("[auto-reply]")
        || lower.contains("(auto-reply)")
        || lower.contains("[autoreply]")
}

/// Why this is a bounce and what it says happened, or `None`.
fn bounce_evidence(message: &ParsedMessage, headers: &Headers) -> Option<(DeliveryStatus, String)> {
    if let Some(report) = &message.delivery_report {
        match report.report_type.as_str() {
            "delivery-status" | "global-delivery-status" => {
                let status = dsn_status(message);
                let who: Vec<&str> = report
                    .recipients
                    .iter()
                    .filter_map(|r| r.recipient.as_deref())
                    .take(3)
                    .collect();
                let action = match status {
                    DeliveryStatus::Failed => "delivery failed",
                    DeliveryStatus::Delayed => "delivery delayed",
                    DeliveryStatus::Delivered => "delivered or relayed",
                    _ => "status not stated",
                };
                let to = if who.is_empty() {
                    String::new()
                } else {
                    format!(" for {}", who.join(", "))
                };
                return Some((
                    status,
                    format!("RFC 3464 delivery status notification: {action}{to}"),
                ));
            }
            "feedback-report" => {
                let kind = report.feedback_type.as_deref().unwrap_or("unspecified");
                return Some((
                    DeliveryStatus::Complaint,
                    format!("RFC 5965 abuse feedback report ({kind})"),
                ));
            }
            _ => {}
        }
    }
    let has_dsn_part = message.attachments.iter().any(|a| {
        matches!(
            a.content_type.as_str(),
            "message/delivery-status" | "message/global-delivery-status"
        )
    });
    if has_dsn_part {
        return Some((
            dsn_status(message),
            "carries a message/delivery-status part outside a multipart/report".to_owned(),
        ));
    }

    if let Some(failed) = header(headers, "x-failed-recipients") {
        return Some((
            DeliveryStatus::Failed,
            format!("X-Failed-Recipients: {} (a bounce)", shorten(failed)),
        ));
    }

    let from_local = message
        .from
        .as_ref()
        .map(|a| {
            a.address
                .split('@')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    // The raw From field too: `From: MAILER-DAEMON <>` and `From: mailer-daemon`
    // carry no usable address, so they never reach the model's `from`.
    let from_text = format!(
        "{} {}",
        header(headers, "from").unwrap_or_default(),
        message
            .from
            .as_ref()
            .and_then(|a| a.name.as_deref())
            .unwrap_or_default()
    )
    .to_lowercase();
    let subject = message.subject.as_deref().unwrap_or_default();
    let subject_says = bounce_subject(subject);
    let null_sender =
        header(headers, "return-path").is_some_and(|r| r.trim() == "<>" || r.trim().is_empty());
    let returns_a_message = message.attachments.iter().any(|a| {
        a.forwarded.is_some()
            || matches!(
                a.content_type.as_str(),
                "text/rfc822-headers" | "message/rfc822-headers"
            )
    });

    if matches!(
        from_local.as_str(),
        "mailer-daemon" | "mailer_daemon" | "maildaemon"
    ) {
        return Some((
            DeliveryStatus::Unknown,
            format!("sent by {} (a mail server's bounce address)", from_local),
        ));
    }
    let system_sender = matches!(
        from_local.as_str(),
        "postmaster" | "mail-daemon" | "mailerdaemon" | "mdaemon" | "bounce" | "bounces"
    ) || [
        "mailer-daemon",
        "mailer daemon",
        "mail delivery",
        "postmaster",
        "mail administrator",
        "system administrator",
        "mail system",
        "postoffice",
    ]
    .iter()
    .any(|n| from_text.contains(n))
        || null_sender;
    if from_text.contains("mailer-daemon") && from_local.is_empty() {
        return Some((
            DeliveryStatus::Unknown,
            "sent by MAILER-DAEMON (a mail server's bounce address)".to_owned(),
        ));
    }
    if system_sender && !subject_says && returns_a_message {
        return Some((
            DeliveryStatus::Unknown,
            "non-standard bounce: a mail system returned a message".to_owned(),
        ));
    }
    if system_sender && subject_says {
        let sender = if null_sender && from_local.is_empty() {
            "the null sender".to_owned()
        } else {
            message
                .from
                .as_ref()
                .map(|a| a.address.clone())
                .unwrap_or_else(|| "the null sender".to_owned())
        };
        return Some((
            DeliveryStatus::Unknown,
            format!(
                "non-standard bounce: subject {:?} from {sender}",
                shorten(subject)
            ),
        ));
    }
    None
}

/// The overall status of an RFC 3464 report: failed wins over delayed over
/// delivered, because one failed recipient is what matters.
fn dsn_status(message: &ParsedMessage) -> DeliveryStatus {
    let actions: Vec<&str> = message
        .delivery_report
        .iter()
        .flat_map(|r| r.recipients.iter())
        .filter_map(|r| r.action.as_deref())
        .collect();
    if actions.iter().any(|a| a.starts_with("failed")) {
        DeliveryStatus::Failed
    } else if actions.iter().any(|a| a.starts_with("delayed")) {
        DeliveryStatus::Delayed
    } else if actions.iter().any(|a| {
        a.starts_with("delivered") || a.starts_with("relayed") || a.starts_with("expanded")
    }) {
        DeliveryStatus::Delivered
    } else {
        let status_5 = message
            .delivery_report
            .iter()
            .flat_map(|r| r.recipients.iter())
            .any(|r| {
                r.status
                    .as_deref()
                    .is_some_and(|s| s.trim().starts_with('5'))
            });
        if status_5 {
            DeliveryStatus::Failed
        } else {
            DeliveryStatus::Unknown
        }
    }
}

/// Subjects bounce programs write.
fn bounce_subject(subject: &str) -> bool {
    const PHRASES: &[&str] = &[
        "undeliver",
        "undelivered",
        "delivery status notification",
        "delivery failure",
        "delivery failed",
        "delivery has failed",
        "delivery notification",
        "delivery problem",
        "failure notice",
        "failed delivery",
        "returned mail",
        "returned to sender",
        "mail delivery failed",
        "mail system error",
        "non-delivery",
        "nondeliverable",
        "non remis",
        "unzustellbar",
        "nicht zustellbar",
        "could not send message",
        "message not delivered",
        "delivery report",
        "mail could not be delivered",
        "rejected",
        "bounce",
        "warning: message",
        "delayed mail",
        "delivery delayed",
        "system undeliverable",
        "permanent error",
        "error sending",
        "配信できません",
        "配送できません",
        "送信できません",
        "届きませんでした",
        "エラー",
        "mail failure",
        "message delivery",
    ];
    let lower = subject.to_lowercase();
    PHRASES.iter().any(|p| lower.contains(p))
}

/// The Message-ID of the message a bounce is about: the report's, then a returned
/// message or header block attached in any structure, then a `Message-ID:` line
/// quoted in the text.
fn original_message_id(message: &ParsedMessage) -> Option<String> {
    if let Some(id) = message
        .delivery_report
        .as_ref()
        .and_then(|r| r.original_message_id.clone())
    {
        return Some(id);
    }
    for att in &message.attachments {
        if let Some(id) = att.forwarded.as_ref().and_then(|f| f.message_id.clone()) {
            return Some(id);
        }
        if matches!(
            att.content_type.as_str(),
            "text/rfc822-headers" | "message/rfc822-headers" | "message/global-headers"
        ) && let Some(id) = message_id_line(&String::from_utf8_lossy(&att.data))
        {
            return Some(id);
        }
    }
    message_id_line(&message.text_body)
}

/// The first `Message-ID: <...>` line in quoted header text (indented or `>`-quoted
/// copies included), ignoring the bounce's own headers, which are not in the body.
fn message_id_line(text: &str) -> Option<String> {
    for line in text.lines().take(5000) {
        let line = line.trim_start_matches(|c: char| c == '>' || c.is_whitespace());
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("message-id") {
            continue;
        }
        let value = value.trim();
        let id = match (value.find('<'), value.find('>')) {
            (Some(start), Some(end)) if start < end => &value[start + 1..end],
            _ => value,
        };
        if let Some(id) = clean_id(id).filter(|id| id.contains('@')) {
            return Some(id);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn classify_raw(raw: &str, own: &[&str]) -> Classification {
        let message = parse(raw.as_bytes()).expect("parses");
        let ctx = ClassifyContext {
            own_addresses: own.iter().map(|s| (*s).to_owned()).collect(),
        };
        classify(&message, raw.as_bytes(), &ctx)
    }

    #[test]
    fn mail_from_our_own_address_is_a_loop() {
        let c = classify_raw(
            "From: Support <SUPPORT@example.com>\nAuto-Submitted: auto-replied\nSubject: x\n\nhi\n",
            &["support@example.com"],
        );
        assert_eq!(c.kind, MessageKind::FromOurselves);
        assert!(c.reason.contains("support@example.com"), "{}", c.reason);
    }

    #[test]
    fn auto_submitted_no_is_normal() {
        let c = classify_raw("From: a@b.c\nAuto-Submitted: no\nSubject: x\n\nhi\n", &[]);
        assert_eq!(c.kind, MessageKind::Normal);
        assert!(c.signals.is_empty());
    }

    #[test]
    fn header_signals_are_strong_subjects_weak() {
        let c = classify_raw("From: a@b.c\nX-Autoreply: yes\nSubject: x\n\nhi\n", &[]);
        assert_eq!(
            c.kind,
            MessageKind::AutoReply {
                confidence: Confidence::High
            }
        );
        let c = classify_raw("From: a@b.c\nPrecedence: bulk\nSubject: x\n\nhi\n", &[]);
        assert_eq!(
            c.kind,
            MessageKind::AutoReply {
                confidence: Confidence::Medium
            }
        );
        let c = classify_raw(
            "From: a@b.c\nSubject: Abwesenheitsnotiz: Urlaub\n\nhi\n",
            &[],
        );
        assert_eq!(
            c.kind,
            MessageKind::AutoReply {
                confidence: Confidence::Low
            }
        );
        let c = classify_raw(
            "From: a@b.c\nSubject: Re: out of office settings broken\n\nhi\n",
            &[],
        );
        assert_eq!(c.kind, MessageKind::Normal);
    }

    #[test]
    fn list_mail_names_its_list() {
        let c = classify_raw(
            "From: a@b.c\nList-Id: Rust users <users.rust-lang.org>\nSubject: x\n\nhi\n",
            &[],
        );
        assert_eq!(
            c.kind,
            MessageKind::List {
                list_id: Some("users.rust-lang.org".into())
            }
        );
    }

    #[test]
    fn mailer_daemon_bounce_finds_the_quoted_message_id() {
        let raw = "From: MAILER-DAEMON@mx.example.com\nSubject: failure notice\n\n\
                   Sorry, we were unable to deliver your message.\n\n\
                   --- Below this line is a copy of the message.\n\n\
                   Message-ID: <abc.123@popdesk.example>\nSubject: Re: [#12] help\n";
        let c = classify_raw(raw, &[]);
        assert_eq!(
            c.kind,
            MessageKind::Bounce {
                original_message_id: Some("abc.123@popdesk.example".into()),
                status: DeliveryStatus::Unknown,
            }
        );
    }

    #[test]
    fn rfc3464_report_is_a_bounce_with_its_status() {
        let raw = "From: postmaster@example.org\nSubject: Delivery Status Notification\n\
                   MIME-Version: 1.0\n\
                   Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n\
                   --b\nContent-Type: text/plain\n\nIt failed.\n\
                   --b\nContent-Type: message/delivery-status\n\n\
                   Reporting-MTA: dns; mx.example.org\n\n\
                   Final-Recipient: rfc822; nobody@example.org\nAction: failed\nStatus: 5.1.1\n\n\
                   --b\nContent-Type: text/rfc822-headers\n\n\
                   From: support@popdesk.example\nMessage-ID: <orig-1@popdesk.example>\nSubject: hi\n\n\
                   --b--\n";
        let c = classify_raw(raw, &[]);
        assert_eq!(
            c.kind,
            MessageKind::Bounce {
                original_message_id: Some("orig-1@popdesk.example".into()),
                status: DeliveryStatus::Failed,
            }
        );
        assert!(c.reason.contains("nobody@example.org"), "{}", c.reason);
    }
}
