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
