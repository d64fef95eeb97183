//! Attachment names, however the sender wrote them.
//!
//! mail-parser decodes RFC 2047 words, RFC 2231 parameters and (after
//! [`crate::charset::prepare_raw`]) raw 8-bit names. One case it gets wrong: an
//! RFC 2231 name split into continuations (`filename*0*=windows-1251''%EF...;
//! filename*1*=%ED...`) has its charset applied to the first piece only, so the
//! rest turns into U+FFFD. RFC 2231 says the pieces are joined first and decoded
//! once; when mail-parser's name has replacement characters, the name is read
//! again from the raw header that way.

use mail_parser::{HeaderName, MessagePart, MimeHeaders};

use crate::charset::{decode_or_fallback, fallback_encoding};
use crate::parse::one_line;

/// The decoded file name of `part`, or `None` when it has none.
pub(crate) fn attachment_name(buf: &[u8], part: &MessagePart<'_>) -> Option<String> {
    let name = part
        .attachment_name()
        .map(one_line)
        .filter(|n| !n.is_empty());
    if name.as_deref().is_some_and(|n| n.contains('\u{FFFD}')) {
        let again = raw_header(buf, part, &HeaderName::ContentDisposition)
            .and_then(|raw| rfc2231_param(raw, "filename"))
            .or_else(|| {
                raw_header(buf, part, &HeaderName::ContentType)
                    .and_then(|raw| rfc2231_param(raw, "name"))
            })
            .map(|n| one_line(&n))
            .filter(|n| !n.is_empty() && !n.contains('\u{FFFD}'));
        if again.is_some() {
            return again;
        }
    }
    name
}

fn raw_header<'b>(
    buf: &'b [u8],
    part: &MessagePart<'_>,
    name: &HeaderName<'_>,
) -> Option<&'b [u8]> {
    let header = part.headers.iter().find(|h| &h.name == name)?;
    buf.get(header.offset_start as usize..header.offset_end as usize)
}

/// Reads parameter `param` from a raw header value the RFC 2231 way: every
/// `param*N` / `param*N*` piece in order, percent-decoded where marked, joined,
/// then decoded once with the charset of the first piece.
pub(crate) fn rfc2231_param(raw: &[u8], param: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let mut pieces: Vec<(u32, bool, String)> = Vec::new();
    for item in split_params(&text) {
        let Some((name, value)) = item.split_once('=') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        let Some(rest) = name.strip_prefix(param).and_then(|r| r.strip_prefix('*')) else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_owned();
        // `param*` alone, `param*N` or `param*N*`.
        let (index, extended) = if rest.is_empty() {
            (0, true)
        } else {
            let (num, star) = rest.strip_suffix('*').map_or((rest, false), |n| (n, true));
            match num.parse::<u32>() {
                Ok(n) if n < 1000 => (n, star),
                _ => continue,
            }
        };
        pieces.push((index, extended, value));
    }
    if pieces.is_empty() {
        return None;
    }
    pieces.sort_by_key(|(i, _, _)| *i);
    let mut charset = None;
    let mut bytes = Vec::new();
    for (n, (_, extended, value)) in pieces.iter().enumerate() {
        if !extended {
            bytes.extend_from_slice(value.as_bytes());
            continue;
        }
        let mut value = value.as_str();
        if n == 0 {
            // charset'language'value
            if let Some((cs, rest)) = value.split_once('\'')
                && let Some((_, rest)) = rest.split_once('\'')
            {
                charset = Some(cs.to_owned()).filter(|c| !c.is_empty());
                value = rest;
            }
        }
        bytes.extend(percent_decode_bytes(value));
    }
    let declared = charset
        .as_deref()
        .and_then(|c| encoding_rs::Encoding::for_label(c.trim().as_bytes()));
    let text = match declared {
        Some(enc) if enc != encoding_rs::UTF_8 => {
            let (text, _, had_errors) = enc.decode(&bytes);
            if had_errors {
                decode_or_fallback(&bytes, fallback_encoding(None)).0
            } else {
                text.into_owned()
            }
        }
        _ => decode_or_fallback(&bytes, fallback_encoding(None)).0,
    };
    Some(text)
}

/// Splits a header value at `;` outside double quotes.
fn split_params(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

fn percent_decode_bytes(value: &str) -> Vec<u8> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(decoded) = hex {
                out.push(decoded);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_are_joined_before_decoding() {
        let raw = b" attachment;\n filename*0*=windows-1251''%EF%F0%EE%E3%F0%E0%EC%EC%E8%F0%EE%E2%E0;\n filename*1*=%ED%E8%E5.HTM";
        assert_eq!(
            rfc2231_param(raw, "filename").as_deref(),
            Some("программирование.HTM")
        );
    }

    #[test]
    fn plain_and_extended_pieces_mix() {
        let raw = b"attachment; filename*0*=UTF-8''%C3%A4%20; filename*1=\"b c.txt\"";
        assert_eq!(rfc2231_param(raw, "filename").as_deref(), Some("ä b c.txt"));
        // Only the first piece may name a charset; later ones are taken literally.
        let raw = b"attachment; filename*0=\"a \"; filename*1*=UTF-8''x";
        assert_eq!(
            rfc2231_param(raw, "filename").as_deref(),
            Some("a UTF-8''x")
        );
        assert_eq!(rfc2231_param(b"attachment; filename=x", "filename"), None);
    }
}
