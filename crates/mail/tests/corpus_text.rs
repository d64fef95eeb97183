//! Every mail reads right (issue 18): no field an agent sees, made from any message
//! of the shared corpus, shows mojibake, a replacement character the source did not
//! hold, or a screen of control characters.
//!
//! The fields are the ones a ticket shows: subject, sender name, text and reply
//! text. Faults looked for:
//!
//! - mojibake: UTF-8 read as Latin-1 or windows-1252 (`Ã¶`, `Ã³`, `â€™`): a
//!   character whose windows-1252 byte would lead a UTF-8 sequence, followed by
//!   one whose byte would continue it;
//! - U+FFFD where the raw message holds none: bytes some charset reads cleanly were
//!   decoded with one that does not;
//! - more than 2 % control characters: binary shown as text.
//!
//! Mojibake the sender wrote (it is in the raw bytes as UTF-8, or quoted-printable UTF-8: Amazon's
//! `__mk_de_DE=ÅMÅŽÕÑ` in links) is counted apart and not a fault. So is a field
//! listed in [`BROKEN_AT_THE_SOURCE`], each with the reason no charset reads it.
//!
//! Prints the counts, then fails when any remain.

mod common;

use std::collections::BTreeMap;

/// Fields whose source bytes no charset reads cleanly, and why.
const BROKEN_AT_THE_SOURCE: &[(&str, &str, &str)] = &[(
    "flanker/mailformed-headers.eml",
    "sender name",
    "a raw UTF-8 Cyrillic name cut by a lone 0xF1 byte: the rest is valid only as UTF-8, the last byte in no charset",
)];

/// The fields of a ticket entry made from `raw`.
fn fields(message: &mail::ParsedMessage) -> Vec<(&'static str, String)> {
    vec![
        ("subject", message.subject.clone().unwrap_or_default()),
        (
            "sender name",
            message
                .from
                .as_ref()
                .and_then(|a| a.name.clone())
                .unwrap_or_default(),
        ),
        ("text", message.text_body.clone()),
        ("reply text", message.reply_text.clone()),
    ]
}

/// The byte windows-1252 (or Latin-1, for the C1 range) writes `c` as.
fn single_byte(c: char) -> Option<u8> {
    let mut utf8 = [0; 4];
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(c.encode_utf8(&mut utf8));
    if !unmappable && bytes.len() == 1 {
        return bytes.first().copied();
    }
    u8::try_from(u32::from(c)).ok()
}

/// Where UTF-8 was read as a single-byte charset: a whole UTF-8 sequence (a lead
/// byte and as many continuation bytes as it asks for), each byte shown as a
/// character. A lone Latin letter before a symbol ("é" and a no-break space in
/// French) is not one: the sequence must be complete.
fn mojibake(text: &str) -> Option<String> {
    let bytes: Vec<Option<u8>> = text.chars().map(single_byte).collect();
    let chars: Vec<char> = text.chars().collect();
    (0..bytes.len()).find_map(|i| {
        let lead = bytes[i]?;
        let len = match lead {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return None,
        };
        let sequence: Vec<u8> = bytes
            .get(i..i + len)?
            .iter()
            .copied()
            .collect::<Option<_>>()?;
        std::str::from_utf8(&sequence)
            .is_ok()
            .then(|| chars[i..i + len].iter().collect())
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn control_share(text: &str) -> f64 {
    let total = text.chars().count();
    if total == 0 {
        return 0.0;
    }
    let controls = text
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        .count();
    controls as f64 / total as f64
}

#[test]
fn no_ticket_field_made_from_the_corpus_shows_mojibake_replacement_or_binary() {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut faults: Vec<String> = Vec::new();
    let mut messages = 0;
    for entry in common::index() {
        let raw = common::read(&entry.file);
        let Ok(message) = mail::parse(&raw) else {
            continue;
        };
        messages += 1;
        let raw_has_replacement = raw.windows(3).any(|w| w == "\u{FFFD}".as_bytes());
        for (field, text) in fields(&message) {
            let mut fault = |kind: &'static str, sample: String| {
                *counts.entry(kind).or_default() += 1;
                if kind != "mojibake the sender wrote" {
                    faults.push(format!("{kind}: {} {field}: {sample:?}", entry.file));
                }
            };
            if let Some(sample) = mojibake(&text) {
                let quoted_printable: String =
                    sample.bytes().map(|b| format!("={b:02X}")).collect();
                if contains(&raw, sample.as_bytes()) || contains(&raw, quoted_printable.as_bytes())
                {
                    fault("mojibake the sender wrote", sample);
                } else {
                    fault("mojibake", sample);
                }
            }
            let excused = BROKEN_AT_THE_SOURCE
                .iter()
                .any(|(file, f, _)| *file == entry.file && *f == field);
            if !raw_has_replacement
                && !excused
                && let Some(at) = text.find('\u{FFFD}')
            {
                let start = text.floor_char_boundary(at.saturating_sub(20));
                let end = text.ceil_char_boundary((at + 20).min(text.len()));
                fault("replacement character", text[start..end].to_owned());
            }
            let share = control_share(&text);
            if share > 0.02 {
                fault("control characters", format!("{:.1} %", share * 100.0));
            }
        }
    }
    println!("corpus text scan: {messages} messages, 4 fields each");
    for kind in [
        "mojibake",
        "replacement character",
        "control characters",
        "mojibake the sender wrote",
    ] {
        println!(
            "  {:5}  fields with {kind}",
            counts.get(kind).copied().unwrap_or(0)
        );
    }
    for fault in &faults {
        println!("  {fault}");
    }
    assert!(faults.is_empty(), "{} fields read wrong", faults.len());
}

#[test]
fn the_mojibake_check_finds_what_it_should() {
    assert_eq!(
        mojibake("Die Hasen und die FrÃ¶sche").as_deref(),
        Some("Ã¶")
    );
    assert_eq!(
        mojibake("it\u{e2}\u{20ac}\u{2122}s").as_deref(),
        Some("â€™")
    );
    assert_eq!(mojibake("Frösche, café, Ärger, naïve, náš"), None);
    assert_eq!(mojibake("caf\u{e9}\u{a0}!"), None);
    assert!(control_share("a\0b\0c\0") > 0.02);
}
