//! Charset labels, and raw 8-bit header bytes made readable before MIME parsing.
//!
//! mail-parser decodes declared charsets well but falls back to lossy UTF-8, which
//! turns every byte of an undeclared latin-1 or cp1252 header into U+FFFD. Real mail
//! does this all the time (raw 8-bit subjects and file names), so [`prepare_raw`]
//! decodes such header lines first: bytes inside an encoded word with that word's
//! charset, the rest with the charset the message declares when it reads them,
//! else the one [`crate::detect`] guesses. Body text is decided per part, later,
//! by [`crate::detect::decode_text`].

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

/// The encoding a charset label names, quotes and white space forgiven; `None`
/// for labels encoding_rs does not know and for those that cannot help with 8-bit
/// text (the "replacement" encoding, which maps everything to one U+FFFD).
pub(crate) fn encoding_for_label(label: &str) -> Option<&'static Encoding> {
    let label = label.trim().trim_matches(|c| c == '"' || c == '\'').trim();
    Encoding::for_label(label.as_bytes()).filter(|e| *e != encoding_rs::REPLACEMENT)
}

/// Labels that promise 7-bit text: they say nothing about what 8-bit bytes are
/// (encoding_rs maps them to windows-1252, which is a guess, not a declaration).
pub(crate) fn promises_ascii(label: &str) -> bool {
    let label = label.trim().trim_matches('"').to_ascii_lowercase();
    matches!(
        label.as_str(),
        "us-ascii" | "ascii" | "ansi_x3.4-1968" | "iso646-us" | "us" | "iso-ir-6" | "cp367"
    )
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

/// The encoding a Windows code page number names (TNEF's `attOemCodepage`, RTF's
/// `\ansicpg` and `\cpg`, MAPI's `PR_INTERNET_CPID`); windows-1252 for numbers
/// encoding_rs has no decoder for, which is what Outlook falls back to as well.
pub(crate) fn windows_codepage_encoding(cp: u32) -> &'static Encoding {
    let label = match cp {
        65001 => "utf-8",
        932 => "shift_jis",
        936 => "gbk",
        949 => "euc-kr",
        950 => "big5",
        10000 => "macintosh",
        20866 => "koi8-r",
        21866 => "koi8-u",
        50220..=50222 => "iso-2022-jp",
        51932 => "euc-jp",
        54936 => "gb18030",
        28591..=28605 => {
            return fallback_encoding(Some(&format!("iso-8859-{}", cp - 28590)));
        }
        874 | 1250..=1258 => {
            return fallback_encoding(Some(&format!("windows-{cp}")));
        }
        _ => "windows-1252",
    };
    Encoding::for_label(label.as_bytes()).unwrap_or(WINDOWS_1252)
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

    // Pass 1: which lines are header lines with 8-bit bytes, after the bytes inside
    // Q-encoded words were escaped (they belong to their word's charset).
    let mut lines: Vec<(Cow<'_, [u8]>, bool, bool)> = Vec::new();
    let mut escaped_words = false;
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
        if !candidate || std::str::from_utf8(line).is_ok() {
            lines.push((Cow::Borrowed(line), in_top_header, false));
            continue;
        }
        let line = match crate::encoded_word::escape_8bit_in_q_words(line) {
            Some(escaped) => {
                escaped_words = true;
                Cow::Owned(escaped)
            }
            None => Cow::Borrowed(line),
        };
        lines.push((line, in_top_header, true));
    }
    // A line that is UTF-8 but for a stray byte stays UTF-8 (see pass 2).
    let eight_bit: Vec<u8> = lines
        .iter()
        .filter(|(line, _, candidate)| {
            *candidate
                && std::str::from_utf8(line).is_err()
                && crate::detect::mostly_utf8(line).is_none()
        })
        .flat_map(|(line, _, _)| line.iter().copied())
        .collect();
    let broken_utf8 = lines.iter().any(|(line, _, candidate)| {
        *candidate
            && std::str::from_utf8(line).is_err()
            && crate::detect::mostly_utf8(line).is_some()
    });
    if eight_bit.is_empty() && !escaped_words && !broken_utf8 {
        return buf;
    }
    if escaped_words {
        notes.push(
            "raw 8-bit bytes inside encoded words were read with each word's own charset".into(),
        );
    }
    let (encoding, why) = header_encoding(&buf, header_end, &eight_bit);

    // Pass 2: the lines, 8-bit ones decoded with that charset.
    let mut out: Vec<u8> = Vec::with_capacity(buf.len() + buf.len() / 8);
    let mut changed_header = false;
    let mut changed_mime = false;
    for (line, in_top_header, candidate) in &lines {
        if *candidate && std::str::from_utf8(line).is_err() {
            if crate::detect::mostly_utf8(line).is_some() {
                out.extend_from_slice(String::from_utf8_lossy(line).as_bytes());
            } else {
                let (text, _) = encoding.decode_without_bom_handling(line);
                out.extend_from_slice(text.as_bytes());
            }
            if *in_top_header {
                changed_header = true;
            } else {
                changed_mime = true;
            }
        } else {
            out.extend_from_slice(line);
        }
    }
    if broken_utf8 {
        notes.push(
            "a header line is UTF-8 but for a few broken bytes; those are shown as U+FFFD".into(),
        );
    }
    if (changed_header || changed_mime) && !eight_bit.is_empty() {
        let where_ = match (changed_header, changed_mime) {
            (true, true) => "header fields and MIME part fields",
            (true, false) => "header fields",
            _ => "MIME part fields",
        };
        notes.push(format!(
            "raw 8-bit bytes in {where_} are not UTF-8; decoded as {} ({why})",
            encoding.name()
        ));
    }
    Cow::Owned(out)
}

/// The charset for raw 8-bit header bytes: the one the message declares (its top
/// header, else its first part) when it reads them without errors, else a guess
/// from the bytes. With the reason in words.
fn header_encoding(
    buf: &[u8],
    header_end: usize,
    eight_bit: &[u8],
) -> (&'static Encoding, &'static str) {
    let declared = find_charset_label(buf.get(..header_end).unwrap_or_default())
        .map(|label| (label, "the charset the message declares"))
        .or_else(|| {
            let start = buf.get(header_end..).unwrap_or_default();
            let prefix = start.get(..64 * 1024).unwrap_or(start);
            find_charset_label(prefix).map(|label| (label, "the charset its first part declares"))
        });
    if let Some((label, why)) = &declared
        && !promises_ascii(label)
        && let Some(encoding) = encoding_for_label(label)
        && encoding != UTF_8
        && !is_utf16_or_replacement(encoding)
        && !encoding.decode_without_bom_handling(eight_bit).1
    {
        return (encoding, why);
    }
    (
        crate::detect::guess_legacy(eight_bit, None),
        match declared {
            Some(_) => "detected: the declared charset does not read them",
            None => "detected: no charset is declared",
        },
    )
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
