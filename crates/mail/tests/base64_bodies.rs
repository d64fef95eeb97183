//! Promise 1 (no loss): an attachment comes out of parsing with exactly the bytes that
//! were sent. mail-parser's base64 body decoder is patched for speed
//! (vendor/mail-parser/POPDESK.md); these check it against an independent encoder for
//! every shape a mailer writes: any length, any line width, CRLF or LF, padding, spaces
//! and tabs at line ends, a body ending on the boundary or at the end of the message.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;

/// `data` base64-encoded in lines of `width` characters, ended by `newline`, with
/// `trailing` after every line before its break.
fn wrapped(data: &[u8], width: usize, newline: &str, trailing: &str) -> String {
    let encoded = STANDARD.encode(data);
    let mut out = String::new();
    for line in encoded.as_bytes().chunks(width) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push_str(trailing);
        out.push_str(newline);
    }
    out
}

fn message_with(body: &str, newline: &str, closed: bool) -> Vec<u8> {
    let mut raw = [
        "From: a@example.com",
        "To: support@example.com",
        "Subject: file",
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=\"b-1\"",
        "",
        "--b-1",
        "Content-Type: text/plain",
        "",
        "see attached",
        "--b-1",
        "Content-Type: application/octet-stream",
        "Content-Disposition: attachment; filename=\"f.bin\"",
        "Content-Transfer-Encoding: base64",
        "",
    ]
    .join(newline);
    raw.push_str(newline);
    raw.push_str(body);
    if closed {
        raw.push_str("--b-1--");
        raw.push_str(newline);
    }
    raw.into_bytes()
}

fn attachment_of(raw: &[u8]) -> Vec<u8> {
    let message = mail::parse(raw).unwrap_or_else(|e| panic!("parse: {e}"));
    let [attachment] = message.attachments.as_slice() else {
        panic!("expected one attachment, got {}", message.attachments.len());
    };
    attachment.data.clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_base64_attachment_decodes_to_the_bytes_sent(
        data in proptest::collection::vec(any::<u8>(), 1..3000),
        width in prop::sample::select(vec![4usize, 57, 60, 64, 72, 76, 998]),
        crlf in any::<bool>(),
        trailing in prop::sample::select(vec!["", " ", "\t", "  \t"]),
        closed in any::<bool>(),
    ) {
        let newline = if crlf { "\r\n" } else { "\n" };
        let body = wrapped(&data, width, newline, trailing);
        let raw = message_with(&body, newline, closed);
        prop_assert_eq!(attachment_of(&raw), data);
    }
}

#[test]
fn a_line_width_that_splits_groups_still_decodes_whole() {
    // Widths that are not multiples of four leave a group across two lines: the fast
    // path stops at the break and the careful one carries the group over.
    let data: Vec<u8> = (0..=255u8).cycle().take(4099).collect();
    for width in [1, 3, 5, 7, 75, 77] {
        let raw = message_with(&wrapped(&data, width, "\r\n", ""), "\r\n", true);
        assert_eq!(attachment_of(&raw), data, "width {width}");
    }
}

#[test]
fn separately_padded_blocks_are_all_kept() {
    // Some mailers concatenate blocks encoded one by one, each with its padding.
    let body = format!(
        "{}\r\n{}\r\n",
        STANDARD.encode(b"ab"),
        STANDARD.encode(b"cdef")
    );
    let raw = message_with(&body, "\r\n", true);
    assert_eq!(attachment_of(&raw), b"abcdef");
}
