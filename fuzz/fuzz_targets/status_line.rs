//! Status lines and listing lines from arbitrary bytes: never a panic, and what parses
//! reads the same when written back; a uid's text maps one-to-one to its octets.
//!
//! Input: lines (LF-separated, as the session hands them over without their line end),
//! tried raw and steered into POP3-shaped lines. Seeds: `fuzz/seeds/status_line/`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pop3::Uid;
use pop3::codec::{StatusLine, parse_list_entry, parse_stat, parse_status_line, parse_uidl_entry};
use pop3_fuzz::steer::into_replies;

/// The status line a parse result stands for.
fn render(status: &StatusLine) -> Vec<u8> {
    match status {
        StatusLine::Ok(text) => format!("+OK {text}").into_bytes(),
        StatusLine::Err {
            code: Some(code),
            text,
        } => format!("-ERR [{code}] {text}").into_bytes(),
        StatusLine::Err { code: None, text } => format!("-ERR {text}").into_bytes(),
        StatusLine::Continuation(challenge) => [b"+ ".as_slice(), challenge].concat(),
    }
}

/// Undoes `Uid::from_octets`: `%XX` back to the octet.
fn uid_octets(uid: &Uid) -> Vec<u8> {
    let text = uid.as_str().as_bytes();
    let mut octets = Vec::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        if text[at] == b'%' {
            let hex = std::str::from_utf8(&text[at + 1..at + 3]).expect("%XX is ASCII");
            octets.push(u8::from_str_radix(hex, 16).expect("%XX is hex"));
            at += 3;
        } else {
            octets.push(text[at]);
            at += 1;
        }
    }
    octets
}

fn check_uid(octets: &[u8]) -> Uid {
    let uid = Uid::from_octets(octets);
    assert!(uid.as_str().bytes().all(|b| (0x21..=0x7e).contains(&b)));
    assert_eq!(uid_octets(&uid), octets, "uid text does not map back");
    uid
}

fn check_line(line: &[u8]) {
    if let Some(status) = parse_status_line(line) {
        // Parsing is idempotent through the rendered form.
        assert_eq!(parse_status_line(&render(&status)).as_ref(), Some(&status));
        if let StatusLine::Err {
            code: Some(code), ..
        } = &status
        {
            let code = code.to_string();
            assert!(!code.is_empty() && !code.contains(char::is_whitespace));
        }
    }
    if let Some(stat) = parse_stat(line) {
        let again = format!("{} {}", stat.count, stat.size);
        assert_eq!(parse_stat(again.as_bytes()), Some(stat));
    }
    if let Some(entry) = parse_list_entry(line) {
        let again = format!("{} {}", entry.number, entry.size);
        assert_eq!(parse_list_entry(again.as_bytes()), Some(entry));
    }
    if let Some(entry) = parse_uidl_entry(line) {
        let octets = uid_octets(&entry.uid);
        assert!(!octets.is_empty());
        let mut again = format!("{} ", entry.number).into_bytes();
        again.extend_from_slice(&octets);
        assert_eq!(parse_uidl_entry(&again), Some(entry));
    }
}

fuzz_target!(|input: &[u8]| {
    for bytes in std::iter::once(input.to_vec()).chain(into_replies(input)) {
        let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').take(64).collect();
        for line in &lines {
            check_line(line);
            // A trailing CR is what take_line strips; try the line both ways.
            if let Some(stripped) = line.strip_suffix(b"\r") {
                check_line(stripped);
            }
        }
        // Uid text is one-to-one: equal octets give equal text, different octets different
        // text. Neighbouring lines make the pairs; a line's own text form is the pair most
        // likely to collide (`%` escaping).
        for pair in lines.windows(2) {
            let (a, b) = (check_uid(pair[0]), check_uid(pair[1]));
            assert_eq!(pair[0] == pair[1], a == b, "{:?} / {:?}", pair[0], pair[1]);
        }
        for line in &lines {
            let uid = check_uid(line);
            let text = uid.as_str().as_bytes();
            assert_eq!(text == *line, check_uid(text) == uid);
        }
    }
});
