//! Promise 6 (nothing hangs): shapes of input that make parsers slow or deep —
//! tens of thousands of parts, deep MIME and message nesting, deeply nested HTML,
//! huge header fields, endless quotes — each parse in bounded time. These are
//! hand-made on purpose: no real mailer writes them, an attacker does.

use std::time::{Duration, Instant};

use mail::{ClassifyContext, classify, parse};

/// Generous for a debug build on a busy 2-core machine; a release build is 10 to
/// 50 times faster.
const LIMIT: Duration = Duration::from_secs(20);

fn parse_in_time(name: &str, raw: &[u8]) -> mail::ParsedMessage {
    let start = Instant::now();
    let message = parse(raw).unwrap_or_else(|e| panic!("{name}: {e}"));
    let _ = classify(&message, raw, &ClassifyContext::default());
    let took = start.elapsed();
    assert!(took < LIMIT, "{name} took {took:?}");
    message
}

#[test]
fn fifty_thousand_parts() {
    let mut raw =
        String::from("From: a@b.c\nSubject: many\nContent-Type: multipart/mixed; boundary=b\n\n");
    for i in 0..50_000 {
        raw.push_str(&format!(
            "--b\nContent-Type: text/plain\nContent-Disposition: attachment; filename=f{i}.txt\n\nx{i}\n"
        ));
    }
    raw.push_str("--b--\n");
    let message = parse_in_time("many parts", raw.as_bytes());
    assert_eq!(message.attachments.len(), 50_000);
}

#[test]
fn deep_multipart_and_message_nesting() {
    let mut raw = String::from("From: a@b.c\nSubject: deep\n");
    for i in 0..5_000 {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n"
        ));
    }
    raw.push_str("Content-Type: text/plain\n\nhi\n");
    parse_in_time("deep multipart", raw.as_bytes());

    let mut raw = String::from("From: a@b.c\nSubject: enclosed\n");
    for i in 0..5_000 {
        raw.push_str(&format!(
            "Content-Type: message/rfc822\n\nFrom: x{i}@y\nSubject: s{i}\n"
        ));
    }
    raw.push_str("\nbody\n");
    parse_in_time("deep message/rfc822", raw.as_bytes());
}

#[test]
fn deeply_nested_html_is_shown_as_text() {
    for open in [
        "<div>",
        "<div></span>",
        "<blockquote>",
        "<b><i></b>",
        "<table><tr><td>",
    ] {
        let html = open.repeat(60_000) + "the text";
        let raw = format!("From: a@b.c\nSubject: html\nContent-Type: text/html\n\n{html}\n");
        let message = parse_in_time(open, raw.as_bytes());
        assert!(message.text_body.contains("the text"), "{open}");
    }
}

#[test]
fn huge_header_fields() {
    let words = vec!["=?utf-8?B?w6Q=?="; 100_000].join(" ");
    let to: Vec<String> = (0..100_000).map(|i| format!("u{i}@x.example")).collect();
    let refs: Vec<String> = (0..100_000).map(|i| format!("<{i}@x.example>")).collect();
    let raw = format!(
        "From: a@b.c\nSubject: {words}\nTo: {}\nReferences: {}\n\nbody\n",
        to.join(", "),
        refs.join(" ")
    );
    let message = parse_in_time("huge headers", raw.as_bytes());
    // Address and id lists are bounded.
    assert!(message.to.len() <= 1000);
    assert!(message.references.len() <= 1000);
}

#[test]
fn endless_quotes_and_attribution_lookalikes() {
    let raw = format!(
        "From: a@b.c\nSubject: q\n\n{}",
        "> line\nOn Mon, 1 Jan 2024 someone wrote:\n".repeat(200_000)
    );
    parse_in_time("quotes", raw.as_bytes());
}
