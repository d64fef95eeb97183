//! The benchmark mailbox: deterministic, realistic helpdesk mail.
//!
//! Most messages are short text/plain or multipart/alternative (text + HTML) mail with the
//! header block a real MTA leaves behind; about a fifth carry base64 attachments (PDF-,
//! PNG- and ZIP-like random bytes) and those make up most of the volume, as in a real
//! support inbox. Some bodies have lines that begin with a dot, including a line that is a
//! lone dot, so the client's dot-unstuffing is exercised on every run. Line endings are CRLF,
//! the way mail travels and the way POP3 sends it.

use crate::rng::Rng;

/// What to generate. The same spec always yields the same bytes.
#[derive(Clone, Copy, Debug)]
pub struct MailboxSpec {
    pub messages: usize,
    /// Aim for the whole mailbox; the result lands within a fraction of a percent.
    pub total_bytes: u64,
    pub seed: u64,
}

impl Default for MailboxSpec {
    fn default() -> Self {
        MailboxSpec {
            messages: 2_000,
            total_bytes: 130_000_000,
            seed: 0x706f_7064_6573_6b21, // "popdesk!"
        }
    }
}

/// One generated message, as it would sit in a Maildir.
pub struct Message {
    pub bytes: Vec<u8>,
}

/// Stream identifiers: every part of a message draws from its own stream, so changing the
/// attachment sizes (the second pass below) does not change the text around them.
const STREAM_TEXT: u64 = 1;
const STREAM_ATTACHMENT: u64 = 2;

/// Base64 with 76-character lines and CRLF grows data by about this factor.
const BASE64_GROWTH: f64 = (4.0 / 3.0) * (78.0 / 76.0);

/// Generates the mailbox in two passes: first every message with empty attachments, to learn
/// how much the text takes; then the attachments are sized to fill the rest of the budget.
pub fn generate(spec: &MailboxSpec) -> Vec<Message> {
    let plans: Vec<Plan> = (0..spec.messages)
        .map(|i| Plan::draw(spec.seed, i))
        .collect();
    let text_bytes: u64 = plans
        .iter()
        .enumerate()
        .map(|(i, plan)| {
            let zeros = vec![0; plan.attachments.len()];
            render(spec.seed, i, plan, &zeros).len() as u64
        })
        .sum();
    let weight_sum: f64 = plans
        .iter()
        .flat_map(|p| &p.attachments)
        .map(|a| a.weight)
        .sum();
    let budget = spec.total_bytes.saturating_sub(text_bytes) as f64 / BASE64_GROWTH;
    plans
        .iter()
        .enumerate()
        .map(|(i, plan)| {
            let sizes: Vec<usize> = plan
                .attachments
                .iter()
                .map(|a| {
                    if weight_sum > 0.0 {
                        (budget * a.weight / weight_sum) as usize
                    } else {
                        0
                    }
                })
                .collect();
            Message {
                bytes: render(spec.seed, i, plan, &sizes),
            }
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum BodyKind {
    Plain,
    Alternative,
}

#[derive(Clone, Copy, Debug)]
enum AttachmentKind {
    Pdf,
    Png,
    Zip,
}

#[derive(Clone, Debug)]
struct AttachmentPlan {
    kind: AttachmentKind,
    /// Share of the attachment budget (log-normal: many small files, a few big ones).
    weight: f64,
}

/// The shape of one message, drawn before any text is written.
#[derive(Clone, Debug)]
struct Plan {
    body: BodyKind,
    attachments: Vec<AttachmentPlan>,
}

impl Plan {
    fn draw(seed: u64, index: usize) -> Plan {
        let mut rng = Rng::new(seed, &[index as u64, 0]);
        let body = if rng.chance(0.5) {
            BodyKind::Plain
        } else {
            BodyKind::Alternative
        };
        let attachments = if rng.chance(0.2) {
            (0..rng.range(1, 3))
                .map(|_| AttachmentPlan {
                    kind: rng.pick(&[
                        AttachmentKind::Pdf,
                        AttachmentKind::Png,
                        AttachmentKind::Zip,
                    ]),
                    weight: (rng.normal() * 0.9).exp(),
                })
                .collect()
        } else {
            Vec::new()
        };
        Plan { body, attachments }
    }
}

/// Builds the message text with CRLF line endings.
struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn line(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }
}

fn render(seed: u64, index: usize, plan: &Plan, attachment_sizes: &[usize]) -> Vec<u8> {
    let mut rng = Rng::new(seed, &[index as u64, STREAM_TEXT]);
    let mut w = Writer {
        out: Vec::with_capacity(8 * 1024 + attachment_sizes.iter().sum::<usize>() * 14 / 10),
    };
    let sender = Sender::draw(&mut rng);
    let when = date(index, &mut rng);
    let subject = subject(&mut rng);
    let message_id = format!("{:016x}.{index}@{}", rng.next_u64(), sender.domain);

    w.line(&format!("Return-Path: <{}>", sender.address()));
    w.line("Delivered-To: support@helpdesk.example");
    let queue_id = format!("{:010X}", rng.below(1 << 40));
    w.line(&format!(
        "Received: from mx{}.{} (mx{}.{} [192.0.2.{}])",
        rng.range(1, 4),
        sender.domain,
        rng.range(1, 4),
        sender.domain,
        rng.range(1, 254)
    ));
    w.line(&format!(
        "\tby mail.helpdesk.example (Postfix) with ESMTPS id {queue_id}"
    ));
    w.line(&format!("\tfor <support@helpdesk.example>; {when}"));
    w.line(&format!(
        "Received: from [198.51.100.{}] (unknown [198.51.100.{}])",
        rng.range(1, 254),
        rng.range(1, 254)
    ));
    w.line(&format!(
        "\tby mx1.{} with ESMTPSA id {:012x}; {when}",
        sender.domain,
        rng.below(1 << 48)
    ));
    w.line(&format!(
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={}; s=mail;",
        sender.domain
    ));
    w.line(&format!(
        "\th=from:to:subject:date:message-id; bh={}",
        token(&mut rng, 44)
    ));
    w.line(&format!("\tb={}", token(&mut rng, 70)));
    w.line(&format!("\t {}", token(&mut rng, 70)));
    w.line(&format!("Message-ID: <{message_id}>"));
    w.line(&format!("Date: {when}"));
    w.line(&format!("From: \"{}\" <{}>", sender.name, sender.address()));
    w.line("To: Support <support@helpdesk.example>");
    if rng.chance(0.3) {
        w.line(&format!("Subject: Re: {subject}"));
        let parent = format!("{:016x}@helpdesk.example", rng.next_u64());
        w.line(&format!("In-Reply-To: <{parent}>"));
        w.line(&format!("References: <{parent}>"));
    } else {
        w.line(&format!("Subject: {subject}"));
    }
    w.line(&format!("X-Mailer: {}", rng.pick(MAILERS)));
    w.line("MIME-Version: 1.0");

    let mixed = !plan.attachments.is_empty();
    let outer = format!("mixed-{:016x}", rng.next_u64());
    let alt = format!("alt-{:016x}", rng.next_u64());
    if mixed {
        w.line(&format!(
            "Content-Type: multipart/mixed; boundary=\"{outer}\""
        ));
        w.line("");
        w.line("This is a multi-part message in MIME format.");
        w.line(&format!("--{outer}"));
    }
    let paragraphs = text_paragraphs(&mut rng);
    match plan.body {
        BodyKind::Plain => plain_part(&mut w, &paragraphs),
        BodyKind::Alternative => {
            w.line(&format!(
                "Content-Type: multipart/alternative; boundary=\"{alt}\""
            ));
            w.line("");
            w.line(&format!("--{alt}"));
            plain_part(&mut w, &paragraphs);
            w.line(&format!("--{alt}"));
            html_part(&mut w, &paragraphs, &mut rng);
            w.line(&format!("--{alt}--"));
        }
    }
    for (i, (attachment, &size)) in plan.attachments.iter().zip(attachment_sizes).enumerate() {
        let mut bytes_rng = Rng::new(seed, &[index as u64, STREAM_ATTACHMENT, i as u64]);
        w.line(&format!("--{outer}"));
        attachment_part(&mut w, attachment.kind, size, &mut rng, &mut bytes_rng);
    }
    if mixed {
        w.line(&format!("--{outer}--"));
    }
    w.out
}

fn plain_part(w: &mut Writer, paragraphs: &[Vec<String>]) {
    w.line("Content-Type: text/plain; charset=utf-8; format=flowed");
    w.line("Content-Transfer-Encoding: 8bit");
    w.line("");
    for paragraph in paragraphs {
        for line in paragraph {
            w.line(line);
        }
        w.line("");
    }
}

fn html_part(w: &mut Writer, paragraphs: &[Vec<String>], rng: &mut Rng) {
    w.line("Content-Type: text/html; charset=utf-8");
    w.line("Content-Transfer-Encoding: 8bit");
    w.line("");
    w.line("<!DOCTYPE html>");
    w.line("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">");
    w.line("<style type=\"text/css\">");
    w.line("body { font-family: Arial, Helvetica, sans-serif; font-size: 14px; color: #222222; }");
    w.line(".quote { border-left: 2px solid #cccccc; padding-left: 8px; color: #555555; }");
    w.line(".signature { color: #888888; font-size: 12px; }");
    w.line("</style></head>");
    w.line("<body>");
    for paragraph in paragraphs {
        let style = rng.pick(&[
            "",
            " style=\"margin:0 0 12px 0\"",
            " class=\"quote\"",
            " style=\"margin:0;padding:0;line-height:1.4\"",
        ]);
        w.line(&format!("<div dir=\"ltr\"><p{style}>"));
        for line in paragraph {
            // Leading dots survive into the HTML too, as they do in real mail.
            w.line(&escape_html(line));
        }
        w.line("</p></div>");
    }
    w.line("<div class=\"signature\"><table cellpadding=\"0\" cellspacing=\"0\" border=\"0\"><tr>");
    w.line("<td style=\"padding-right:10px\"><img src=\"cid:logo@example.com\" width=\"48\" height=\"48\" alt=\"\"></td>");
    w.line("<td>Sent from my work account</td></tr></table></div>");
    w.line("</body></html>");
}

fn attachment_part(
    w: &mut Writer,
    kind: AttachmentKind,
    size: usize,
    rng: &mut Rng,
    bytes_rng: &mut Rng,
) {
    let (mime, stem, ext, magic): (&str, &str, &str, &[u8]) = match kind {
        AttachmentKind::Pdf => (
            "application/pdf",
            rng.pick(&["invoice", "contract", "report", "statement"]),
            "pdf",
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        ),
        AttachmentKind::Png => (
            "image/png",
            rng.pick(&["screenshot", "photo", "error", "image001"]),
            "png",
            b"\x89PNG\r\n\x1a\n",
        ),
        AttachmentKind::Zip => (
            "application/zip",
            rng.pick(&["logs", "export", "attachments"]),
            "zip",
            b"PK\x03\x04",
        ),
    };
    let name = format!("{stem}-{}.{ext}", rng.range(1000, 99999));
    w.line(&format!("Content-Type: {mime}; name=\"{name}\""));
    w.line(&format!(
        "Content-Disposition: attachment; filename=\"{name}\""
    ));
    w.line("Content-Transfer-Encoding: base64");
    w.line("");
    let mut data = vec![0u8; size.max(magic.len())];
    bytes_rng.fill(&mut data);
    data[..magic.len()].copy_from_slice(magic);
    base64_lines(&data, &mut w.out);
}

/// RFC 2045 base64: 76-character lines, CRLF.
fn base64_lines(data: &[u8], out: &mut Vec<u8>) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for line in data.chunks(57) {
        for group in line.chunks(3) {
            let b = [
                group[0],
                *group.get(1).unwrap_or(&0),
                *group.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            out.push(ALPHABET[(n >> 18) as usize & 63]);
            out.push(ALPHABET[(n >> 12) as usize & 63]);
            out.push(if group.len() > 1 {
                ALPHABET[(n >> 6) as usize & 63]
            } else {
                b'='
            });
            out.push(if group.len() > 2 {
                ALPHABET[n as usize & 63]
            } else {
                b'='
            });
        }
        out.extend_from_slice(b"\r\n");
    }
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

struct Sender {
    name: String,
    local: String,
    domain: &'static str,
}

impl Sender {
    fn draw(rng: &mut Rng) -> Sender {
        let first = rng.pick(FIRST_NAMES);
        let last = rng.pick(LAST_NAMES);
        Sender {
            name: format!("{first} {last}"),
            local: format!("{}.{}", first.to_lowercase(), last.to_lowercase()),
            domain: rng.pick(DOMAINS),
        }
    }

    fn address(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }
}

/// An RFC 5322 date, spread over the first months of 2026 in message order.
fn date(index: usize, rng: &mut Rng) -> String {
    const START: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z
    let secs = START + index as u64 * 3_600 + rng.below(3_600);
    let days = (secs / 86_400) as i64;
    let (y, m, d) = civil_from_days(days);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    let t = secs % 86_400;
    let zone = rng.pick(&["+0000", "+0100", "-0500", "+0200", "-0800", "+0530"]);
    format!(
        "{weekday}, {d:02} {month} {y} {:02}:{:02}:{:02} {zone}",
        t / 3_600,
        t / 60 % 60,
        t % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn subject(rng: &mut Rng) -> String {
    let topic = rng.pick(SUBJECT_TOPICS);
    let tail = rng.pick(SUBJECT_TAILS);
    format!("{topic} {tail}").trim_end().to_string()
}

fn token(rng: &mut Rng, len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..len).map(|_| char::from(rng.pick(CHARS))).collect()
}

/// Wrapped paragraphs of prose, sometimes a quoted earlier message, sometimes lines that
/// begin with a dot (which the server must dot-stuff and the client must unstuff).
fn text_paragraphs(rng: &mut Rng) -> Vec<Vec<String>> {
    let mut paragraphs = vec![vec![rng.pick(GREETINGS).to_string()]];
    for _ in 0..rng.range(2, 9) {
        let count = rng.range(2, 7);
        paragraphs.push(wrap(&sentences(rng, count), 72, ""));
    }
    if rng.chance(0.15) {
        paragraphs.push(dotted_lines(rng));
    }
    if rng.chance(0.4) {
        let mut quoted =
            vec!["On an earlier date, Support <support@helpdesk.example> wrote:".to_string()];
        for _ in 0..rng.range(1, 4) {
            let count = rng.range(2, 5);
            quoted.extend(wrap(&sentences(rng, count), 70, "> "));
            quoted.push(">".to_string());
        }
        paragraphs.push(quoted);
    }
    paragraphs.push(vec![
        rng.pick(CLOSINGS).to_string(),
        "-- ".to_string(),
        "Sent from a customer account".to_string(),
    ]);
    paragraphs
}

fn dotted_lines(rng: &mut Rng) -> Vec<String> {
    let mut lines = vec!["Steps to reproduce:".to_string()];
    for _ in 0..rng.range(1, 4) {
        lines.push(rng.pick(DOT_LINES).to_string());
    }
    lines
}

fn sentences(rng: &mut Rng, count: usize) -> String {
    let mut text = String::new();
    for _ in 0..count {
        let words = rng.range(6, 18);
        for i in 0..words {
            let word = rng.pick(WORDS);
            if i == 0 {
                let mut chars = word.chars();
                if let Some(c) = chars.next() {
                    text.extend(c.to_uppercase());
                    text.push_str(chars.as_str());
                }
            } else {
                text.push(' ');
                text.push_str(word);
            }
        }
        text.push_str(rng.pick(&[". ", ". ", ". ", "? ", "! "]));
    }
    text.trim_end().to_string()
}

fn wrap(text: &str, width: usize, prefix: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::from(prefix);
    for word in text.split(' ') {
        if line.len() > prefix.len() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::replace(&mut line, String::from(prefix)));
        }
        if line.len() > prefix.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if line.len() > prefix.len() {
        lines.push(line);
    }
    lines
}

const FIRST_NAMES: &[&str] = &[
    "Anna", "Ben", "Chloé", "David", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kara",
    "Luis", "Mei", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Viktor",
    "Wen", "Yara",
];
const LAST_NAMES: &[&str] = &[
    "Andersen", "Brown", "Costa", "Dubois", "Eriksson", "Fischer", "García", "Hansen", "Ivanova",
    "Jensen", "Kowalski", "López", "Müller", "Nakamura", "Okafor", "Petrov", "Rossi", "Schmidt",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "example.net",
    "customer.example",
    "shop.example",
    "mail.example",
];
const MAILERS: &[&str] = &[
    "Microsoft Outlook 16.0",
    "Apple Mail (2.3774.500.171.1.1)",
    "Mozilla Thunderbird 128.5.0",
    "Roundcube Webmail/1.6.9",
    "K-9 Mail for Android",
];
const SUBJECT_TOPICS: &[&str] = &[
    "Invoice",
    "Login problem",
    "Refund request",
    "Order",
    "Question about my account",
    "Delivery delayed",
    "Password reset not arriving",
    "Error when exporting",
    "Contract renewal",
    "Cannot upload files",
    "Billing address change",
    "Feature request",
];
const SUBJECT_TAILS: &[&str] = &[
    "#48213",
    "for March",
    "(urgent)",
    "- follow up",
    "again",
    "- screenshot attached",
    "",
    "from last week",
    "on mobile",
    "ref. 2026-0193",
];
const GREETINGS: &[&str] = &[
    "Hello,",
    "Hi support team,",
    "Dear Sir or Madam,",
    "Hi there,",
    "Good morning,",
];
const CLOSINGS: &[&str] = &[
    "Best regards,",
    "Thanks in advance,",
    "Kind regards,",
    "Cheers,",
    "Many thanks,",
];
/// A lone "." is the line a careless client confuses with the end of the message.
const DOT_LINES: &[&str] = &[
    ".",
    "..",
    "...",
    ". open the settings page",
    ".. then click export",
    ".hidden files are missing from the archive",
    "...and then nothing happens",
];
const WORDS: &[&str] = &[
    "the",
    "account",
    "invoice",
    "order",
    "we",
    "I",
    "please",
    "could",
    "you",
    "check",
    "again",
    "since",
    "yesterday",
    "the",
    "export",
    "fails",
    "with",
    "an",
    "error",
    "message",
    "and",
    "attached",
    "screenshot",
    "shows",
    "it",
    "our",
    "team",
    "cannot",
    "log",
    "in",
    "after",
    "password",
    "reset",
    "which",
    "was",
    "requested",
    "twice",
    "today",
    "delivery",
    "is",
    "late",
    "by",
    "three",
    "days",
    "tracking",
    "number",
    "does",
    "not",
    "work",
    "refund",
    "for",
    "the",
    "second",
    "item",
    "has",
    "not",
    "arrived",
    "yet",
    "thank",
    "help",
    "contract",
    "renewal",
    "date",
    "changed",
    "without",
    "notice",
    "also",
    "billing",
    "address",
    "is",
    "wrong",
    "on",
    "this",
    "month",
    "statement",
    "would",
    "like",
    "to",
    "know",
    "when",
    "feature",
    "will",
    "be",
    "available",
    "mobile",
    "app",
    "crashes",
    "every",
    "time",
    "upload",
    "large",
    "file",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> MailboxSpec {
        MailboxSpec {
            messages: 200,
            total_bytes: 8_000_000,
            seed: 42,
        }
    }

    #[test]
    fn same_seed_gives_identical_mailbox() {
        let a = generate(&small());
        let b = generate(&small());
        assert!(a.iter().zip(&b).all(|(x, y)| x.bytes == y.bytes));
    }

    #[test]
    fn total_size_lands_near_target() {
        let spec = small();
        let total: usize = generate(&spec).iter().map(|m| m.bytes.len()).sum();
        let off = (total as f64 - spec.total_bytes as f64).abs() / spec.total_bytes as f64;
        assert!(off < 0.01, "total {total} is {off:.3} off the target");
    }

    #[test]
    fn every_line_ends_in_crlf_and_fits_smtp_limit() {
        for m in generate(&small()) {
            assert!(m.bytes.ends_with(b"\r\n"));
            for line in m.bytes.split(|&b| b == b'\n') {
                if !line.is_empty() {
                    assert_eq!(line.last(), Some(&b'\r'));
                }
                assert!(line.len() <= 1000);
            }
        }
    }

    #[test]
    fn some_messages_exercise_dot_stuffing() {
        let messages = generate(&small());
        let with_lone_dot = messages
            .iter()
            .filter(|m| m.bytes.windows(5).any(|w| w == b"\r\n.\r\n"))
            .count();
        assert!(with_lone_dot > 0);
    }

    #[test]
    fn dates_are_valid() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        let mut rng = Rng::new(1, &[]);
        assert!(date(0, &mut rng).starts_with("Thu, 01 Jan 2026 00:"));
    }
}
