//! MIME structure: content types, the multipart boundary, base64 bodies.

use base64::Engine as _;

use super::random::random_128;

/// The type an attachment gets when the one given is not a well-formed media type.
pub const FALLBACK_CONTENT_TYPE: &str = "application/octet-stream";

/// RFC 6838 §4.2: a type or subtype name is at most 127 characters.
const MAX_TYPE_NAME: usize = 127;

/// base64 lines are at most 76 characters (RFC 2045 §6.8).
const BASE64_LINE: usize = 76;

/// The media type an attachment is sent as: `raw` lower-cased without parameters when it
/// is a well-formed `type/subtype` (RFC 6838 restricted names), otherwise
/// [`FALLBACK_CONTENT_TYPE`].
///
/// `multipart/*` and `message/*` also fall back: RFC 2046 forbids base64 for them, and
/// base64 is the only encoding that carries any file's bytes unchanged. Parameters
/// (such as a charset) are dropped; the bytes travel exactly as given either way.
pub(crate) fn attachment_content_type(raw: &str) -> String {
    let essence = raw
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return FALLBACK_CONTENT_TYPE.to_owned();
    };
    if !is_restricted_name(kind)
        || !is_restricted_name(subtype)
        || kind == "multipart"
        || kind == "message"
    {
        return FALLBACK_CONTENT_TYPE.to_owned();
    }
    essence
}

fn is_restricted_name(name: &str) -> bool {
    name.len() <= MAX_TYPE_NAME
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
}

/// A new multipart boundary: `=_popdesk_` and 128 random bits in hex.
///
/// Random, and also impossible in the content by construction: every part is
/// quoted-printable or base64, and neither can produce `=_` (in quoted-printable `=`
/// is always followed by a hex digit or a line break; base64 has no `_` and `=` only as
/// final padding). Part headers cannot start a line with `--` either.
pub(crate) fn new_boundary() -> String {
    let mut boundary = String::from("=_popdesk_");
    for b in random_128() {
        boundary.push_str(&format!("{b:02x}"));
    }
    boundary
}

/// `data` as base64 in lines of 76 characters joined by CRLF, without a final CRLF.
pub(crate) fn base64_lines(data: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / BASE64_LINE * 2);
    // base64 output is ASCII, so every index is a character boundary.
    let mut start = 0;
    while let Some(line) = encoded.get(start..encoded.len().min(start + BASE64_LINE)) {
        if line.is_empty() {
            break;
        }
        if start > 0 {
            out.push_str("\r\n");
        }
        out.push_str(line);
        start += BASE64_LINE;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_content_types_are_kept_lower_cased_without_parameters() {
        assert_eq!(
            attachment_content_type("application/pdf"),
            "application/pdf"
        );
        assert_eq!(attachment_content_type(" Image/PNG ; name=x"), "image/png");
        assert_eq!(
            attachment_content_type(
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            ),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        );
    }

    #[test]
    fn malformed_content_types_fall_back_to_octet_stream() {
        for bad in [
            "",
            "pdf",
            "application/",
            "/pdf",
            "a/b/c",
            "text/plain\r\nBcc: evil@x",
            "text/pl ain",
            "text/\"x\"",
            "multipart/mixed",
            "message/rfc822",
            "täxt/plain",
        ] {
            assert_eq!(
                attachment_content_type(bad),
                FALLBACK_CONTENT_TYPE,
                "{bad:?}"
            );
        }
        assert_eq!(
            attachment_content_type(&format!("application/{}", "x".repeat(128))),
            FALLBACK_CONTENT_TYPE
        );
    }

    #[test]
    fn boundaries_are_random_and_contain_what_no_encoded_part_can() {
        let a = new_boundary();
        assert_ne!(a, new_boundary());
        assert!(a.starts_with("=_popdesk_") && a.len() == 42);
    }

    #[test]
    fn base64_lines_are_76_characters() {
        let text = base64_lines(&[0xAB; 200]);
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert!(lines[..lines.len() - 1].iter().all(|l| l.len() == 76));
        assert!(lines.last().is_some_and(|l| l.len() <= 76));
        assert_eq!(base64_lines(&[]), "");
    }
}
