//! Raw bytes to [`ParsedMessage`].
//!
//! mail-parser does the MIME work; this module turns its result into popdesk's
//! model and patches what real mail gets wrong: charsets (see [`crate::charset`]),
//! missing Message-IDs, attachment bytes of text parts, forwarded messages,
//! delivery reports and `winmail.dat`.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::html::text_to_html;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{
    Encoding, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};
use sha2::{Digest, Sha256};

use crate::charset::{find_charset_label, prepare_raw};
use crate::detect::{TextHints, decode_text};
use crate::html_text::sanitized_html_to_text;
use crate::message::{Address, Attachment, ForwardedSummary, ParsedMessage};
use crate::report::parse_delivery_report;
use crate::{ParseError, SanitizeOptions, TnefLimits, extract_tnef, sanitize_html, split_reply};

/// Longest Message-ID we keep (RFC 5322's line limit); longer ones are junk.
const MAX_ID_LEN: usize = 998;
/// At most this many addresses per field and ids per `References`: enough for any
/// real mail, and a bound on what a hostile header can make us store.
const MAX_LIST: usize = 1000;

/// Parses one raw message (RFC 5322, any line ending) into popdesk's model.
///
/// Never panics and never rejects a message for its charset: undeclared, unknown or
/// wrong charsets are decoded best effort and the guess is written to
/// [`ParsedMessage::notes`]. Input without a header section is read as a bare body.
/// Only input with nothing in it is an error, and a panic inside the MIME parser
/// that even the fallback (headers, then the rest as plain text) could not get
/// around; it is caught and turned into an error with its reason.
pub fn parse(raw: &[u8]) -> Result<ParsedMessage, ParseError> {
    parse_with(raw, &SanitizeOptions::default())
}

/// [`parse`], with [`ParsedMessage::html_body`] sanitized with `options` (where inline
/// images point, whether remote images load). Sanitizing is the largest part of
/// parsing a mail with HTML; a caller with its own options sanitizes once this way,
/// instead of again from [`ParsedMessage::html_source`].
pub fn parse_with(raw: &[u8], options: &SanitizeOptions) -> Result<ParsedMessage, ParseError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::empty());
    }
    let full = catch_unwind(AssertUnwindSafe(|| {
        let mut notes = Vec::new();
        let prepared = prepare_raw(raw, &mut notes);
        build(&prepared, raw, options, notes)
    }));
    let payload = match full {
        Ok(message) => return Ok(message),
        Err(payload) => panic_text(payload.as_ref()),
    };
    // mail-parser has debug assertions and unchecked arithmetic on odd structures;
    // keep what can be kept rather than failing the message.
    let degraded = catch_unwind(AssertUnwindSafe(|| {
        let mut notes = vec![format!(
            "the MIME parser failed ({payload}); headers kept and the rest read as plain text"
        )];
        let prepared = prepare_raw(raw, &mut notes);
        build_degraded(&prepared, raw, notes)
    }));
    degraded.map_err(|second| {
        ParseError::panic(
            "MIME parser panicked twice",
            &format!("{payload}; then {}", panic_text(second.as_ref())),
        )
    })
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic without a message".to_owned()
    }
}

fn build(
    buf: &[u8],
    original: &[u8],
    options: &SanitizeOptions,
    mut notes: Vec<String>,
) -> ParsedMessage {
    let message = if crate::charset::starts_with_header_field(buf) {
        MessageParser::default().parse(buf)
    } else {
        None
    };
    let Some(message) = message else {
        return build_bare(buf, original, options, notes);
    };

    let mut out = ParsedMessage::default();
    headers_into(&message, &mut out, &mut notes);

    // Bodies. A part can be in both the text and the HTML list (a text-only
    // message): it is decoded, and its choice logged, once.
    let hints = MessageHints::gather(buf, &message, out.from.as_ref());
    let mut decoded: HashMap<u32, PartText> = HashMap::new();
    let body_ids: Vec<u32> = message
        .text_body
        .iter()
        .chain(message.html_body.iter())
        .copied()
        .collect();
    for id in body_ids {
        if let Some(part) = message.parts.get(id as usize)
            && matches!(part.body, PartType::Text(_) | PartType::Html(_))
            && !decoded.contains_key(&id)
        {
            decoded.insert(id, part_text(buf, part, id, &hints, &mut notes));
        }
    }
    let texts: Vec<String> = message
        .text_body
        .iter()
        .filter_map(|id| {
            let part = message.parts.get(*id as usize)?;
            match (decoded.get(id)?, &part.body) {
                (PartText::Binary { line, .. }, _) => Some(line.clone()),
                (PartText::Text(text), PartType::Html(_)) => Some(sanitized_html_to_text(
                    &sanitize_html(text, &SanitizeOptions::default()),
                )),
                (PartText::Text(text), _) => Some(text.clone()),
            }
        })
        .collect();
    out.text_body = normalize_newlines(&texts.join("\n"))
        .trim_end()
        .trim_start_matches('\n')
        .to_owned();

    let html_parts: Vec<(u32, &MessagePart<'_>)> = message
        .html_body
        .iter()
        .filter_map(|&id| message.parts.get(id as usize).map(|p| (id, p)))
        .collect();
    if html_parts.iter().any(|(id, p)| {
        matches!(p.body, PartType::Html(_)) && matches!(decoded.get(id), Some(PartText::Text(_)))
    }) {
        let mut html = String::new();
        for (id, part) in html_parts {
            match (decoded.get(&id), &part.body) {
                (Some(PartText::Text(h)), PartType::Html(_)) => html.push_str(h),
                (Some(PartText::Text(t)), PartType::Text(_)) => html.push_str(&text_to_html(t)),
                (Some(PartText::Binary { line, .. }), _) => html.push_str(&text_to_html(line)),
                _ => {}
            }
        }
        let depth = crate::sanitize::nesting_depth(&html);
        if depth > crate::sanitize::MAX_NESTING {
            notes.push(format!(
                "the HTML body nests {depth} elements deep (limit {}); shown as plain text",
                crate::sanitize::MAX_NESTING
            ));
        }
        out.html_source = Some(html);
    }
    let cids = out
        .html_source
        .as_deref()
        .map(cid_references)
        .unwrap_or_default();
    out.html_body = out
        .html_source
        .as_deref()
        .map(|h| sanitize_html(h, options));

    // Attachments, then the files inside any winmail.dat.
    for &id in &message.attachments {
        if let Some(part) = message.parts.get(id as usize)
            && let Some(att) = attachment(buf, part, &cids, &mut notes)
        {
            out.attachments.push(att);
        }
    }
    // Text parts that are really files, offered as the files they are.
    let mut binary: Vec<(u32, Attachment)> = decoded
        .into_iter()
        .filter_map(|(id, text)| match text {
            // A part mail-parser already lists as an attachment is there once.
            PartText::Binary { attachment, .. } if !message.attachments.contains(&id) => {
                Some((id, *attachment))
            }
            _ => None,
        })
        .collect();
    binary.sort_by_key(|(id, _)| *id);
    out.attachments.extend(binary.into_iter().map(|(_, a)| a));
    for (index, part) in message.parts.iter().enumerate() {
        if part.is_encoding_problem && index > 0 {
            notes.push(format!(
                "MIME part {index} has a broken structure or transfer encoding; kept as text"
            ));
        }
    }
    extract_winmail(&mut out, &mut notes);

    out.delivery_report = parse_delivery_report(&message, &out.attachments);
    out.reply_text = reply_text(&out);
    finish(out, original, notes)
}

/// The fallback after a parser panic: header fields from a headers-only parse, the
/// rest of the bytes as one plain-text body.
fn build_degraded(buf: &[u8], original: &[u8], mut notes: Vec<String>) -> ParsedMessage {
    let end = crate::charset::header_section_end(buf);
    let mut out = ParsedMessage::default();
    if let Some(message) = MessageParser::default().parse_headers(buf) {
        headers_into(&message, &mut out, &mut notes);
    }
    let body = buf.get(end..).unwrap_or_default();
    let declared = find_charset_label(buf.get(..end).unwrap_or_default());
    let decoded = decode_text(
        body,
        &TextHints {
            declared: declared.as_deref(),
            ..TextHints::default()
        },
    );
    if !decoded.is_unremarkable() {
        notes.push(format!("the body: {}", decoded.explain()));
    }
    out.text_body = normalize_newlines(&decoded.text);
    out.reply_text = reply_text(&out);
    finish(out, original, notes)
}

/// Input without a header section: the whole of it is the body, HTML when it
/// looks like HTML.
fn build_bare(
    buf: &[u8],
    original: &[u8],
    options: &SanitizeOptions,
    mut notes: Vec<String>,
) -> ParsedMessage {
    notes.push("no header section found; the whole message is read as its body".to_owned());
    let decoded = decode_text(buf, &TextHints::default());
    if !decoded.is_unremarkable() {
        notes.push(format!("the body: {}", decoded.explain()));
    }
    let text = decoded.text;
    let mut out = ParsedMessage::default();
    let trimmed = text.trim_start();
    if trimmed.starts_with('<') && trimmed.contains('>') {
        let html_body = sanitize_html(&text, options);
        out.text_body = sanitized_html_to_text(&html_body);
        out.html_body = Some(html_body);
        out.html_source = Some(text);
    } else {
        out.text_body = normalize_newlines(&text).trim_matches('\n').to_owned();
    }
    out.reply_text = reply_text(&out);
    finish(out, original, notes)
}

/// Fills in the synthetic Message-ID when needed and attaches the notes.
fn finish(mut out: ParsedMessage, original: &[u8], mut notes: Vec<String>) -> ParsedMessage {
    if out.message_id.is_empty() {
        let digest = hex(&Sha256::digest(original));
        out.message_id = format!("{}@popdesk.invalid", &digest[..32]);
        out.message_id_synthetic = true;
        notes.push("no usable Message-ID; a synthetic one was made from the raw bytes".into());
    }
    notes.dedup();
    out.notes = notes;
    out
}

fn headers_into(message: &Message<'_>, out: &mut ParsedMessage, notes: &mut Vec<String>) {
    out.from = addresses(message, "From", message.from())
        .into_iter()
        .next();
    out.reply_to = addresses(message, "Reply-To", message.reply_to());
    out.to = addresses(message, "To", message.to());
    out.cc = addresses(message, "Cc", message.cc());
    out.subject = subject(message);
    out.date = date_ms(message, notes);
    out.message_id = message.message_id().and_then(clean_id).unwrap_or_default();
    out.in_reply_to = ids(message.in_reply_to());
    out.references = ids(message.references());
}

/// The subject decoded from the raw header the way mail clients decode it (see
/// [`crate::encoded_word`]); mail-parser's reading when there is no raw header.
fn subject(message: &Message<'_>) -> Option<String> {
    let parsed = message.subject()?;
    match message.header_raw("Subject") {
        Some(raw) => Some(one_line(&crate::encoded_word::decode_unstructured(raw))),
        None => Some(one_line(parsed)),
    }
}

fn date_ms(message: &Message<'_>, notes: &mut Vec<String>) -> Option<i64> {
    match message.date() {
        Some(d) if d.is_valid() => Some(d.to_timestamp().saturating_mul(1000)),
        _ => {
            let raw = message.header_raw("Date")?;
            let lenient = crate::date::parse_lenient(raw);
            notes.push(match lenient {
                Some(_) => format!(
                    "the Date header {:?} is in an obsolete form; read leniently",
                    raw.trim()
                ),
                None => format!("the Date header {:?} is not a date; ignored", one_line(raw)),
            });
            lenient
        }
    }
}

/// The addresses of one header field. Display names with encoded words are read
/// again from the raw header (see [`crate::display_name`]).
fn addresses(
    message: &Message<'_>,
    field: &str,
    value: Option<&mail_parser::Address<'_>>,
) -> Vec<Address> {
    let Some(value) = value else {
        return Vec::new();
    };
    let names = message
        .header_raw(field)
        .filter(|raw| raw.contains("=?"))
        .map(crate::display_name::display_names)
        .unwrap_or_default();
    value
        .iter()
        .filter_map(|addr| {
            let address = addr.address().map(str::trim).unwrap_or_default();
            if address.is_empty() {
                return None;
            }
            let ours = names
                .iter()
                .find(|(a, _)| a.eq_ignore_ascii_case(address))
                .map(|(_, name)| name.clone());
            let name = ours
                .or_else(|| addr.name().map(one_line))
                .filter(|n| !n.is_empty());
            Some(Address {
                name,
                address: one_line(address),
            })
        })
        .take(MAX_LIST)
        .collect()
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => clean_id(id).into_iter().collect(),
        HeaderValue::TextList(list) => list
            .iter()
            .filter_map(|id| clean_id(id))
            .take(MAX_LIST)
            .collect(),
        _ => Vec::new(),
    }
}

/// A Message-ID as popdesk stores it: no angle brackets, no white space, bounded.
pub(crate) fn clean_id(id: &str) -> Option<String> {
    let id = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    if id.is_empty()
        || id.len() > MAX_ID_LEN
        || id.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return None;
    }
    Some(id.to_owned())
}

/// A header value on one line: folding and control characters become spaces.
pub(crate) fn one_line(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut last_space = false;
    for c in value.trim().chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c == ' ' {
            if !last_space {
                out.push(c);
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    out
}

fn normalize_newlines(text: &str) -> String {
    if !text.contains('\r') {
        return text.to_owned();
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// The bytes of a leaf part after undoing its transfer encoding, straight from
/// the raw message: what the sender attached, before any charset decoding.
fn transfer_decoded<'b>(buf: &'b [u8], part: &MessagePart<'_>) -> Option<Cow<'b, [u8]>> {
    let start = part.offset_body as usize;
    let end = part.offset_end as usize;
    let raw = buf.get(start..end.max(start))?;
    match part.encoding {
        Encoding::Base64 => base64_decode(base64_data(raw)).map(Cow::Owned),
        Encoding::QuotedPrintable => quoted_printable_decode(raw).map(Cow::Owned),
        Encoding::None if part.is_encoding_problem => Some(recovered(raw, part)),
        Encoding::None => Some(Cow::Borrowed(raw)),
    }
}

/// A part mail-parser gave up decoding keeps its raw bytes, encoding and all. The
/// commonest cause is not a broken encoding but a message cut short, or a mailer that
/// never wrote the closing boundary: the base64 file is whole, only the `--boundary--`
/// after it is missing. When the declared encoding decodes cleanly it is undone here,
/// so the customer's attachment is the file they sent, not its base64 text; anything
/// that does not decode cleanly stays raw, as before.
fn recovered<'b>(raw: &'b [u8], part: &MessagePart<'_>) -> Cow<'b, [u8]> {
    let Some(declared) = part.content_transfer_encoding() else {
        return Cow::Borrowed(raw);
    };
    let declared = declared.trim().to_ascii_lowercase();
    let decoded = match declared.as_str() {
        "base64" => base64_decode(base64_data(raw)),
        "quoted-printable" => quoted_printable_decode(raw),
        _ => None,
    };
    decoded.map_or(Cow::Borrowed(raw), Cow::Owned)
}

/// A base64 body up to the end of its data: RFC 2045 takes padding (`=`) as the
/// end, so text after it on the same line (`ecO2dMOkIHZhYW4uCg== ignored`) is not
/// decoded into garbage. Padding at a line's end is left alone: some mailers
/// concatenate separately padded blocks.
fn base64_data(raw: &[u8]) -> &[u8] {
    let mut offset = 0;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if let Some(pad) = line.iter().position(|&b| b == b'=') {
            let after = line.get(pad..).unwrap_or_default();
            let rest = after.iter().skip_while(|&&b| b == b'=');
            if rest.clone().any(|b| !b.is_ascii_whitespace()) {
                let pad_end = pad + after.iter().take_while(|&&b| b == b'=').count();
                return raw.get(..offset + pad_end).unwrap_or(raw);
            }
        }
        offset += line.len();
    }
    raw
}

/// What the message as a whole says about the charsets of its text: hints for a
/// part that declares none, or a wrong one.
struct MessageHints {
    /// Charsets named by the parts' `Content-Type` and the top header's encoded
    /// words, lower-cased, first seen first.
    charsets: Vec<String>,
    /// The top-level domain of the sender's address: chardetng's hint.
    tld: Option<String>,
}

impl MessageHints {
    fn gather(buf: &[u8], message: &Message<'_>, from: Option<&Address>) -> Self {
        let mut charsets: Vec<String> = Vec::new();
        for part in &message.parts {
            if let Some(label) = part.content_type().and_then(|ct| ct.attribute("charset")) {
                let label = label.trim().to_ascii_lowercase();
                if !label.is_empty() && !charsets.contains(&label) {
                    charsets.push(label);
                }
            }
        }
        let header = buf
            .get(..crate::charset::header_section_end(buf))
            .unwrap_or_default();
        for label in crate::encoded_word::word_charsets(&String::from_utf8_lossy(header)) {
            if !charsets.contains(&label) {
                charsets.push(label);
            }
        }
        let tld = from
            .and_then(|a| a.address.rsplit_once('@'))
            .and_then(|(_, domain)| domain.trim().trim_end_matches('>').rsplit('.').next())
            .map(str::to_ascii_lowercase)
            .filter(|t| t.len() >= 2 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        MessageHints { charsets, tld }
    }
}

/// A body part, decoded.
enum PartText {
    Text(String),
    /// A "text" part that is a file: the line shown in its place, and the file.
    Binary {
        line: String,
        attachment: Box<Attachment>,
    },
}

/// Decodes one text or HTML body part from its bytes (see [`crate::detect`]) and
/// logs the charset used when there was one to choose; a part that is a file
/// becomes one (see [`crate::binary`]).
fn part_text(
    buf: &[u8],
    part: &MessagePart<'_>,
    id: u32,
    hints: &MessageHints,
    notes: &mut Vec<String>,
) -> PartText {
    let parsed = match &part.body {
        PartType::Text(t) | PartType::Html(t) => t.as_ref(),
        _ => "",
    };
    let content_type = content_type_of(part);
    let Some(bytes) = transfer_decoded(buf, part) else {
        return PartText::Text(parsed.to_owned());
    };
    if let Some(kind) = crate::binary::sniff_binary(&bytes) {
        let name = crate::filename::attachment_name(buf, part)
            .unwrap_or_else(|| kind.file_name.to_owned());
        notes.push(format!(
            "part {id} is labelled {content_type} but is {}; kept as the attachment {name:?}, not shown as text",
            kind.description
        ));
        let line = format!(
            "[This part of the message is not text but {}: it is attached as \"{name}\".]",
            kind.description
        );
        let data = bytes.into_owned();
        let attachment = Attachment {
            name: Some(name),
            content_type: kind.content_type.to_owned(),
            size: data.len(),
            sha256: hex(&Sha256::digest(&data)),
            content_id: part.content_id().and_then(clean_id),
            inline: false,
            forwarded: None,
            extracted_from: None,
            data,
        };
        return PartText::Binary {
            line,
            attachment: Box::new(attachment),
        };
    }
    let declared = part.content_type().and_then(|ct| ct.attribute("charset"));
    let meta = matches!(part.body, PartType::Html(_))
        .then(|| find_charset_label(bytes.get(..2048).unwrap_or(&bytes)))
        .flatten();
    let decoded = decode_text(
        &bytes,
        &TextHints {
            declared,
            meta: meta.as_deref(),
            message_charsets: &hints.charsets,
            tld: hints.tld.as_deref(),
        },
    );
    if !decoded.is_unremarkable() {
        notes.push(format!("part {id} ({content_type}): {}", decoded.explain()));
    }
    PartText::Text(decoded.text)
}

/// Content-IDs the HTML refers to through `cid:` URLs, lower-cased.
fn cid_references(html: &str) -> HashSet<String> {
    let lower = html.to_ascii_lowercase();
    let mut found = HashSet::new();
    let mut rest = lower.as_str();
    while let Some(pos) = rest.find("cid:") {
        rest = &rest[pos + 4..];
        let end = rest
            .find(|c: char| c == '"' || c == '\'' || c == ')' || c == '>' || c.is_whitespace())
            .unwrap_or(rest.len());
        let id = crate::sanitize::percent_decode(&rest[..end]);
        if let Some(id) = clean_id(&id) {
            found.insert(id);
        }
        rest = &rest[end..];
    }
    found
}

fn attachment(
    buf: &[u8],
    part: &MessagePart<'_>,
    cids: &HashSet<String>,
    notes: &mut Vec<String>,
) -> Option<Attachment> {
    let (data, forwarded): (Vec<u8>, Option<ForwardedSummary>) = match &part.body {
        PartType::Multipart(_) => return None,
        PartType::Binary(b) | PartType::InlineBinary(b) => (b.to_vec(), None),
        PartType::Text(t) | PartType::Html(t) => {
            let bytes = transfer_decoded(buf, part)
                .map(Cow::into_owned)
                .unwrap_or_else(|| t.as_bytes().to_vec());
            (bytes, None)
        }
        PartType::Message(nested) => {
            let start = part.offset_body as usize;
            let end = part.offset_end as usize;
            let bytes = match part.encoding {
                Encoding::None if end > start => buf.get(start..end).map(<[u8]>::to_vec),
                _ => None,
            }
            .unwrap_or_else(|| nested.raw_message.to_vec());
            // The headline comes from the bytes kept, so it always matches what an
            // agent opens. With broken boundaries mail-parser can merge several
            // enclosed messages into one part; the bytes then hold all of them.
            let from_bytes = MessageParser::default()
                .parse_headers(&bytes)
                .map(|m| summary(&m));
            let from_parser = summary(nested);
            if from_bytes
                .as_ref()
                .is_some_and(|s| s.message_id != from_parser.message_id)
            {
                notes.push(
                    "an enclosed message's MIME boundaries are broken; what follows it is kept in the same attachment"
                        .into(),
                );
            }
            (bytes, Some(from_bytes.unwrap_or(from_parser)))
        }
    };
    let content_type = content_type_of(part);
    // A message/rfc822 part mail-parser could not read as a message may still have
    // readable headers: a bounce's returned original often is cut short.
    let forwarded = forwarded.or_else(|| {
        (content_type == "message/rfc822" || content_type == "message/global")
            .then(|| {
                MessageParser::default()
                    .parse_headers(&data)
                    .map(|m| summary(&m))
            })
            .flatten()
    });
    let content_id = part.content_id().and_then(clean_id);
    let inline = content_id
        .as_ref()
        .is_some_and(|id| cids.contains(&id.to_ascii_lowercase()));
    let name = crate::filename::attachment_name(buf, part);
    if name.as_deref().is_some_and(|n| n.contains('\u{FFFD}')) {
        notes.push("an attachment name has bytes that could not be decoded".into());
    }
    Some(Attachment {
        name,
        content_type,
        size: data.len(),
        sha256: hex(&Sha256::digest(&data)),
        content_id,
        inline,
        forwarded,
        extracted_from: None,
        data,
    })
}

fn content_type_of(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => {
            let main = ct.ctype().trim().to_ascii_lowercase();
            match ct.subtype() {
                Some(sub) => format!("{main}/{}", sub.trim().to_ascii_lowercase()),
                None => main,
            }
        }
        None => match part.body {
            PartType::Text(_) => "text/plain".into(),
            PartType::Html(_) => "text/html".into(),
            PartType::Message(_) => "message/rfc822".into(),
            _ => "application/octet-stream".into(),
        },
    }
}

fn summary(message: &Message<'_>) -> ForwardedSummary {
    ForwardedSummary {
        from: addresses(message, "From", message.from())
            .into_iter()
            .next(),
        subject: subject(message),
        date: message
            .date()
            .filter(|d| d.is_valid())
            .map(|d| d.to_timestamp().saturating_mul(1000)),
        message_id: message.message_id().and_then(clean_id),
    }
}

/// Adds the files inside each `winmail.dat` as attachments of their own, after
/// the original, which is kept as it came. When the message's MIME text is empty
/// (Outlook left the words only inside TNEF), the text comes from the first
/// `winmail.dat` body that has some.
fn extract_winmail(out: &mut ParsedMessage, notes: &mut Vec<String>) {
    let limits = TnefLimits::default();
    let containers: Vec<usize> = out
        .attachments
        .iter()
        .enumerate()
        .filter(|(_, a)| is_tnef(a))
        .map(|(i, _)| i)
        .collect();
    for index in containers {
        let Some(container) = out.attachments.get(index) else {
            continue;
        };
        match extract_tnef(&container.data, &limits) {
            Ok(extraction) => {
                notes.extend(extraction.notes);
                // `char::is_whitespace` covers the lone no-break space some
                // Exchange versions leave as the MIME text of such mail.
                if out.text_body.trim().is_empty()
                    && let Some(body) = extraction.body.text(notes)
                {
                    notes.push(format!(
                        "the message's MIME text is empty; its text comes from {} in winmail.dat",
                        body.source.describe()
                    ));
                    out.text_body = body.text;
                }
                for file in extraction.files {
                    let content_type = file
                        .content_type
                        .clone()
                        .unwrap_or_else(|| "application/octet-stream".into());
                    out.attachments.push(Attachment {
                        name: file.name,
                        content_type,
                        size: file.data.len(),
                        sha256: hex(&Sha256::digest(&file.data)),
                        content_id: file.content_id,
                        inline: false,
                        forwarded: None,
                        extracted_from: Some(index),
                        data: file.data,
                    });
                }
            }
            Err(e) => notes.push(format!("winmail.dat could not be read ({e}); kept as is")),
        }
    }
}

fn is_tnef(a: &Attachment) -> bool {
    matches!(
        a.content_type.as_str(),
        "application/ms-tnef" | "application/vnd.ms-tnef"
    ) || a
        .name
        .as_deref()
        .is_some_and(|n| n.eq_ignore_ascii_case("winmail.dat"))
}

/// The new part of the message for the ticket view. A forward keeps everything:
/// the forwarded history is what the sender wants us to read.
fn reply_text(out: &ParsedMessage) -> String {
    if out.subject.as_deref().is_some_and(is_forward_subject) {
        return out.text_body.trim().to_owned();
    }
    let split = split_reply(&out.text_body);
    if split.reply.is_empty() {
        out.text_body.trim().to_owned()
    } else {
        split.reply
    }
}

fn is_forward_subject(subject: &str) -> bool {
    let lower = subject.trim_start().to_lowercase();
    ["fwd:", "fw:", "wg:", "tr:", "fwd :", "fw :", "rv:", "i:"]
        .iter()
        .any(|p| lower.starts_with(p))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}
