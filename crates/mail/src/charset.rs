//! Best-effort decoding for mail that lies about its charset or says nothing.
//!
//! mail-parser decodes declared charsets well but falls back to lossy UTF-8, which
//! turns every byte of an undeclared latin-1 or cp1252 text into U+FFFD. Real mail
//! does this all the time (raw 8-bit subjects and file names, `charset=utf-8` on
//! cp1252 text), so where the bytes are not UTF-8 we guess instead: the charset the
//! message declares elsewhere, else windows-1252, which decodes every byte and is
//! what "iso-8859-1" means in practice.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// The encoding to use for bytes that are not UTF-8, given a declared label.
///
/// A declared UTF-8 label is ignored (the bytes just proved it wrong); an unknown
/// label falls back to windows-1252.
pub(crate) fn fallback_encoding(label: Option<&str>) -> &'static Encoding {
    match label.and_then(|l| Encoding::for_label(l.trim().trim_matches('"').as_bytes())) {
        Some(enc) if enc != UTF_8 && !is_utf16_or_replacement(enc) => enc,
        _ => WINDOWS_1252,
    }
}

/// UTF-16 labels on 8-bit text and the "replacement" encoding (which maps
/// everything to one U+FFFD) never help as a fallback.
fn is_utf16_or_replacement(enc: &'static Encoding) -> bool {
    enc == encoding_rs::UTF_16BE || enc == encoding_rs::UTF_16LE || enc == encoding_rs::REPLACEMENT
}

/// Decodes `bytes` as UTF-8 when they are, else with `fallback`. Returns the text
/// and whether the fallback was used.
pub(crate) fn decode_or_fallback(bytes: &[u8], fallback: &'static Encoding) -> (String, bool) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => {
            let (text, _) = fallback.decode_without_bom_handling(bytes);
            (text.into_owned(), true)
        }
    }
}

/// Finds a `charset=` parameter in `bytes` (a header block, or the first bytes of
/// an HTML document for `<meta charset>`). Bounded by the slice the caller gives.
pub(crate) fn find_charset_label(bytes: &[u8]) -> Option<String> {
    const NEEDLE: &[u8] = b"charset=";
    let lower = bytes.to_ascii_lowercase();
    let start = lower.windows(NEEDLE.len()).position(|w| w == NEEDLE)? + NEEDLE.len();
    let rest = bytes.get(start..)?;
    let rest = rest.strip_prefix(b"\"").unwrap_or(rest);
    let rest = rest.strip_prefix(b"'").unwrap_or(rest);
    let end = rest
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')))
        .unwrap_or(rest.len());
    let label = std::str::from_utf8(rest.get(..end)?).ok()?;
    (!label.is_empty()).then(|| label.to_owned())
}

/// Prepares raw bytes for mail-parser:
///
/// - a message with CR-only line ends (old Mac mail) gets LF line ends, because
///   mail-parser only knows LF and CRLF and would read it as one header line;
/// - raw 8-bit header lines that are not UTF-8 are transcoded to UTF-8 with the
///   message's declared charset or windows-1252, so subjects, display names and
///   attachment names decode instead of becoming U+FFFD. Only the top header
///   section and `Content-*` lines (with their continuations) in the body are
///   touched: body text is decoded later, per part, with its own charset.
///
/// Returns the input unchanged (borrowed) when nothing needed doing.
pub(crate) fn prepare_raw<'a>(raw: &'a [u8], notes: &mut Vec<String>) -> Cow<'a, [u8]> {
    let mut buf: Cow<'a, [u8]> = Cow::Borrowed(raw);
    if !raw.contains(&b'\n') && raw.contains(&b'\r') {
        buf = Cow::Owned(
            raw.iter()
                .map(|&b| if b == b'\r' { b'\n' } else { b })
                .collect(),
        );
        notes.push("line ends are bare CR; read as LF".to_owned());
    }
    let leading = leading_blank_lines(&buf);
    if leading > 0 && starts_with_header_field(buf.get(leading..).unwrap_or_default()) {
        // A blank line first would end the header section before it began.
        buf = match buf {
            Cow::Borrowed(b) => Cow::Borrowed(b.get(leading..).unwrap_or_default()),
            Cow::Owned(b) => Cow::Owned(b.get(leading..).unwrap_or_default().to_vec()),
        };
        notes.push("blank lines before the header section were skipped".to_owned());
    }
    if std::str::from_utf8(&buf).is_ok() {
        return buf;
    }
    let header_end = header_section_end(&buf);
    let encoding =
        fallback_encoding(find_charset_label(buf.get(..header_end).unwrap_or_default()).as_deref());

    let mut out: Vec<u8> = Vec::with_capacity(buf.len() + buf.len() / 8);
    let mut changed_header = false;
    let mut changed_mime = false;
    let mut in_content_field = false;
    let mut offset = 0;
    for line in buf.split_inclusive(|&b| b == b'\n') {
        let in_top_header = offset < header_end;
        offset += line.len();
        let candidate = if in_top_header {
            true
        } else if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            in_content_field
        } else {
            in_content_field = line.len() > 8 && line[..8].eq_ignore_ascii_case(b"content-");
            in_content_field
        };
        if candidate && std::str::from_utf8(line).is_err() {
            let (text, _) = encoding.decode_without_bom_handling(line);
            out.extend_from_slice(text.as_bytes());
            if in_top_header {
                changed_header = true;
            } else {
                changed_mime = true;
            }
        } else {
            out.extend_from_slice(line);
        }
    }
    if changed_header || changed_mime {
        let where_ = match (changed_header, changed_mime) {
            (true, true) => "header fields and MIME part fields",
            (true, false) => "header fields",
            _ => "MIME part fields",
        };
        notes.push(format!(
            "raw 8-bit bytes in {where_} are not UTF-8; decoded as {}",
            encoding.name()
        ));
        Cow::Owned(out)
    } else {
        buf
    }
}

/// Decodes RFC 2047 encoded words, joining adjacent words of one charset before
/// decoding them.
///
/// RFC 2047 wants every word to decode on its own, but Japanese mailers split
/// ISO-2022-JP (a stateful encoding) and multi-byte UTF-8 across words; decoded one
/// by one, such a subject turns into U+FFFD. Used when mail-parser's decoding left
/// replacement characters. Text between words that is only white space is dropped,
/// as RFC 2047 says.
pub(crate) fn decode_encoded_words_joined(raw: &str) -> String {
    let mut out = String::new();
    let mut pending: Option<(String, Vec<u8>)> = None;
    let mut rest = raw;
    let flush = |pending: &mut Option<(String, Vec<u8>)>, out: &mut String| {
        if let Some((charset, bytes)) = pending.take() {
            let enc = Encoding::for_label(charset.trim().as_bytes()).unwrap_or(UTF_8);
            let (text, _, _) = enc.decode(&bytes);
            out.push_str(&text);
        }
    };
    while let Some(start) = rest.find("=?") {
        let Some(word) = parse_encoded_word(&rest[start..]) else {
            let (before, after) = rest.split_at(start + 2);
            flush(&mut pending, &mut out);
            out.push_str(before);
            rest = after;
            continue;
        };
        let between = &rest[..start];
        if !(between.trim().is_empty() && pending.is_some()) {
            flush(&mut pending, &mut out);
            out.push_str(between);
        }
        match &mut pending {
            Some((charset, bytes)) if charset.eq_ignore_ascii_case(&word.charset) => {
                bytes.extend_from_slice(&word.bytes);
            }
            _ => {
                flush(&mut pending, &mut out);
                pending = Some((word.charset, word.bytes));
            }
        }
        rest = &rest[start + word.len..];
    }
    flush(&mut pending, &mut out);
    out.push_str(rest);
    out
}

struct EncodedWord {
    charset: String,
    bytes: Vec<u8>,
    len: usize,
}

/// Reads one `=?charset?B|Q?text?=` at the start of `s`.
fn parse_encoded_word(s: &str) -> Option<EncodedWord> {
    let body = s.strip_prefix("=?")?;
    let (charset, body) = body.split_once('?')?;
    let (encoding, body) = body.split_once('?')?;
    let end = body.find("?=")?;
    let text = &body[..end];
    if text.contains(char::is_whitespace) || charset.contains(char::is_whitespace) {
        return None;
    }
    // RFC 2231 language suffix: charset*lang.
    let charset = charset.split('*').next().unwrap_or(charset).to_owned();
    let bytes = match encoding {
        "B" | "b" => mail_parser::decoders::base64::base64_decode(text.as_bytes())?,
        "Q" | "q" => {
            let mut out = Vec::with_capacity(text.len());
            let raw = text.as_bytes();
            let mut i = 0;
            while let Some(&b) = raw.get(i) {
                match b {
                    b'_' => out.push(b' '),
                    b'=' => {
                        let hex = raw
                            .get(i + 1..i + 3)
                            .and_then(|h| std::str::from_utf8(h).ok())
                            .and_then(|h| u8::from_str_radix(h, 16).ok())?;
                        out.push(hex);
                        i += 2;
                    }
                    _ => out.push(b),
                }
                i += 1;
            }
            out
        }
        _ => return None,
    };
    Some(EncodedWord {
        charset,
        bytes,
        len: 2 + s[2..].find('?')? + 1 + encoding.len() + 1 + end + 2,
    })
}

/// Length of the white-space-only lines at the start of `buf`.
fn leading_blank_lines(buf: &[u8]) -> usize {
    let mut offset = 0;
    for line in buf.split_inclusive(|&b| b == b'\n') {
        if !line.iter().all(u8::is_ascii_whitespace) || !line.ends_with(b"\n") {
            break;
        }
        offset += line.len();
    }
    offset
}

/// Whether `buf` starts with a header field (`Name: value`, obsolete white space
/// before the colon allowed), after an optional mbox `From ` line. Input that does
/// not is read as a bare body: an HTML fragment, an armoured PGP block, a note.
pub(crate) fn starts_with_header_field(buf: &[u8]) -> bool {
    let mut lines = buf.split(|&b| b == b'\n');
    let mut first = lines.next().unwrap_or_default();
    if first.starts_with(b"From ") {
        first = lines.next().unwrap_or_default();
    }
    let name_len = first
        .iter()
        .take_while(|&&b| (0x21..=0x7e).contains(&b) && b != b':')
        .count();
    name_len > 0
        && first
            .get(name_len..)
            .is_some_and(|rest| rest.iter().find(|b| **b != b' ' && **b != b'\t') == Some(&b':'))
}

/// Byte offset just past the blank line ending the top header section, or the
/// whole length when there is none.
pub(crate) fn header_section_end(buf: &[u8]) -> usize {
    let mut offset = 0;
    for line in buf.split_inclusive(|&b| b == b'\n') {
        offset += line.len();
        if line == b"\n" || line == b"\r\n" {
            return offset;
        }
    }
    buf.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_latin1_subject_is_decoded_not_replaced() {
        let raw = b"Subject: Gr\xfc\xdfe\nContent-Type: text/plain; charset=iso-8859-1\n\nbody\n";
        let mut notes = Vec::new();
        let out = prepare_raw(raw, &mut notes);
        assert!(
            String::from_utf8_lossy(&out).contains("Subject: Grüße"),
            "{notes:?}"
        );
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn body_bytes_are_left_alone() {
        let raw = b"Subject: x\n\nbody \xe9\n";
        let mut notes = Vec::new();
        assert_eq!(&*prepare_raw(raw, &mut notes), &raw[..]);
        assert!(notes.is_empty());
    }

    #[test]
    fn cr_only_line_ends_become_lf() {
        let mut notes = Vec::new();
        let out = prepare_raw(b"Subject: x\r\rbody\r", &mut notes);
        assert_eq!(&*out, b"Subject: x\n\nbody\n");
    }

    #[test]
    fn leading_blank_lines_before_headers_are_skipped() {
        let mut notes = Vec::new();
        let out = prepare_raw(b"   \n\nSubject: x\n\nbody\n", &mut notes);
        assert_eq!(&*out, b"Subject: x\n\nbody\n");
        assert!(starts_with_header_field(
            b"From a@b Thu Jul  2 2020\nSubject : x\n"
        ));
        assert!(!starts_with_header_field(b"<html><body>"));
        assert!(!starts_with_header_field(b"-----BEGIN PGP MESSAGE-----\n"));
        assert!(!starts_with_header_field(b"This is a note: with a colon\n"));
    }

    #[test]
    fn split_iso_2022_jp_words_are_joined_before_decoding() {
        // "キジトラ" split in the middle of the escape sequence state.
        let raw = "=?iso-2022-jp?B?GyRCJS0lOCVIJWkbKEI=?= x";
        assert_eq!(decode_encoded_words_joined(raw), "キジトラ x");
        let split = "=?utf-8?Q?=E3=82?= =?utf-8?Q?=AD?= and =?utf-8?B?w6Q=?=";
        assert_eq!(decode_encoded_words_joined(split), "キ and ä");
        assert_eq!(
            decode_encoded_words_joined("plain =? text"),
            "plain =? text"
        );
    }

    #[test]
    fn charset_label_is_found_quoted_or_not() {
        assert_eq!(
            find_charset_label(b"text/html; charset=\"KOI8-R\"").as_deref(),
            Some("KOI8-R")
        );
        assert_eq!(
            find_charset_label(b"<meta charset=utf-8>").as_deref(),
            Some("utf-8")
        );
        assert_eq!(fallback_encoding(Some("utf-8")), WINDOWS_1252);
        assert_eq!(fallback_encoding(Some("bogus")), WINDOWS_1252);
    }
}
