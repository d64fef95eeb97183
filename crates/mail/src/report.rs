//! Reading `multipart/report` messages (RFC 6522): delivery status notifications
//! (RFC 3464), read receipts (RFC 8098) and abuse reports (RFC 5965).
//!
//! Their machine-readable parts are kept as attachments like any other part; this
//! reads the few fields the helpdesk acts on, so a bounce can join the ticket of
//! the message that bounced.

use mail_parser::{Message, MessageParser, MimeHeaders};

use crate::message::{Attachment, DeliveryReport, RecipientStatus};
use crate::parse::{clean_id, one_line};

/// At most this many recipient blocks are read from one report.
const MAX_RECIPIENTS: usize = 1000;

/// The report's summary when `message` is a `multipart/report`, else `None`.
pub(crate) fn parse_delivery_report(
    message: &Message<'_>,
    attachments: &[Attachment],
) -> Option<DeliveryReport> {
    let ct = message.content_type()?;
    let is_report = ct.ctype().eq_ignore_ascii_case("multipart")
        && ct
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"));
    if !is_report {
        return None;
    }
    let mut report = DeliveryReport {
        report_type: ct
            .attribute("report-type")
            .map(|t| t.trim().to_ascii_lowercase())
            .unwrap_or_default(),
        ..DeliveryReport::default()
    };
    // The returned message's own Message-ID is the best evidence; the report's
    // Original-Message-ID field is the next best.
    let mut returned_id = None;
    let mut field_id = None;
    for att in attachments {
        match att.content_type.as_str() {
            "message/delivery-status" | "message/global-delivery-status" => {
                let blocks = field_blocks(&att.data);
                for block in &blocks {
                    if field_id.is_none() {
                        field_id = field(block, "original-message-id").and_then(clean_id);
                    }
                    let recipient = field(block, "final-recipient")
                        .or_else(|| field(block, "original-recipient"))
                        .map(strip_address_type);
                    let action = field(block, "action").map(|a| a.to_ascii_lowercase());
                    if (recipient.is_some() || action.is_some())
                        && report.recipients.len() < MAX_RECIPIENTS
                    {
                        report.recipients.push(RecipientStatus {
                            recipient,
                            action,
                            status: field(block, "status").map(str::to_owned),
                            diagnostic: field(block, "diagnostic-code").map(str::to_owned),
                        });
                    }
                }
            }
            "message/disposition-notification" | "message/global-disposition-notification" => {
                for block in &field_blocks(&att.data) {
                    if field_id.is_none() {
                        field_id = field(block, "original-message-id").and_then(clean_id);
                    }
                }
            }
            "message/feedback-report" => {
                for block in &field_blocks(&att.data) {
                    if report.feedback_type.is_none() {
                        report.feedback_type =
                            field(block, "feedback-type").map(|t| t.to_ascii_lowercase());
                    }
                }
            }
            "text/rfc822-headers" | "message/rfc822-headers" | "message/global-headers"
                if returned_id.is_none() =>
            {
                returned_id = MessageParser::default()
                    .parse_headers(&att.data)
                    .and_then(|m| m.message_id().and_then(clean_id));
            }
            "message/rfc822" | "message/global" if returned_id.is_none() => {
                returned_id = att.forwarded.as_ref().and_then(|f| f.message_id.clone());
            }
            _ => {}
        }
    }
    report.original_message_id = returned_id.or(field_id);
    Some(report)
}

/// `rfc822; user@example.com` to `user@example.com`.
fn strip_address_type(value: &str) -> String {
    let value = value.split_once(';').map_or(value, |(_, addr)| addr);
    one_line(value.trim().trim_start_matches('<').trim_end_matches('>'))
}

type Block = Vec<(String, String)>;

fn field<'b>(block: &'b Block, name: &str) -> Option<&'b str> {
    block
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Splits header-like report fields into blocks at blank lines, unfolding
/// continuation lines. Names are lower-cased.
pub(crate) fn field_blocks(data: &[u8]) -> Vec<Block> {
    let text = String::from_utf8_lossy(data);
    let mut blocks = Vec::new();
    let mut block: Block = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !block.is_empty() {
                blocks.push(std::mem::take(&mut block));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = block.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            block.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    if !block.is_empty() {
        blocks.push(block);
    }
    blocks
}
