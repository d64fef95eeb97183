//! Attachment parts: the file's bytes in base64 and its name as RFC 2231 parameters.

use super::Attachment;
use super::headers::{field, one_line};
use super::mime::{attachment_content_type, base64_lines};

/// Longest name sent, in bytes: no common file system stores a longer one, so a longer
/// name could not be saved by the customer anyway.
const MAX_NAME: usize = 255;

/// The longest extension kept when a long name is shortened.
const MAX_EXTENSION: usize = 16;

/// A parameter word (with its `;`) is kept within this many characters, so that it fits
/// on a folded header line of 78.
const MAX_PARAMETER: usize = 76;

/// The name used for a file whose name is empty (or only control characters).
const UNNAMED: &str = "attachment";

/// The name an attachment goes out with: one line (control characters become spaces),
/// at most [`MAX_NAME`] bytes keeping the extension, [`UNNAMED`] when nothing is left.
pub(crate) fn file_name(name: &str) -> String {
    let name = one_line(name);
    if name.is_empty() {
        return UNNAMED.to_owned();
    }
    if name.len() <= MAX_NAME {
        return name;
    }
    let extension = name
        .rfind('.')
        .map(|dot| &name[dot..])
        .filter(|ext| ext.len() <= MAX_EXTENSION)
        .unwrap_or("");
    let mut stem_end = MAX_NAME - extension.len();
    while !name.is_char_boundary(stem_end) {
        stem_end -= 1;
    }
    format!("{}{extension}", name[..stem_end].trim_end())
}

/// One attachment as a MIME body part (headers, blank line, base64), without a final
/// CRLF: `Content-Type: <type>; name=...`, `Content-Disposition: attachment;
/// filename=...`, `Content-Transfer-Encoding: base64`.
pub(crate) fn attachment_part(attachment: &Attachment) -> String {
    let name = file_name(&attachment.name);
    let mut content_type = vec![format!(
        "{};",
        attachment_content_type(&attachment.content_type)
    )];
    content_type.extend(parameter_words("name", &name));
    let mut disposition = vec!["attachment;".to_owned()];
    disposition.extend(parameter_words("filename", &name));

    let mut part = field("Content-Type", &content_type);
    part.push_str(&field("Content-Disposition", &disposition));
    part.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
    part.push_str(&base64_lines(&attachment.data));
    part
}

/// The parameter `attr` with `value`, as words for [`field`]; all but the last end in
/// `;` when continuations are needed.
///
/// Printable ASCII without quotes, backslashes or `%` goes as a quoted string
/// (`filename="report 2026.pdf"`). Anything else uses RFC 2231:
/// `filename*=utf-8''%C3%9Cbersicht%20M%C3%A4rz.pdf`, split into numbered continuations
/// (`filename*0*=...; filename*1*=...`) when long, each piece holding whole characters
/// so that even a decoder that applies the charset piece by piece reads it right. No
/// ASCII `filename=` fallback is added beside `filename*`: some parsers, popdesk's
/// own among them, take whichever `filename` comes first.
fn parameter_words(attr: &str, value: &str) -> Vec<String> {
    let plain = value.bytes().all(|b| (b' '..=b'~').contains(&b))
        && !value.contains(['"', '\\', '%'])
        && !value.contains("=?");
    if plain {
        let word = format!("{attr}=\"{value}\"");
        if word.len() <= MAX_PARAMETER {
            return vec![word];
        }
    }
    let single = format!("{attr}*=utf-8''{}", percent_encode(value));
    if single.len() <= MAX_PARAMETER {
        return vec![single];
    }
    let mut words: Vec<String> = Vec::new();
    let mut piece = String::new();
    let mut encoded_char = String::new();
    for c in value.chars() {
        encoded_char.clear();
        let mut buf = [0u8; 4];
        percent_encode_into(c.encode_utf8(&mut buf), &mut encoded_char);
        let head = piece_head(attr, words.len());
        // +1 for the `;` that separates this piece from the next.
        if head.len() + piece.len() + encoded_char.len() + 1 > MAX_PARAMETER && !piece.is_empty() {
            words.push(format!("{head}{piece};"));
            piece.clear();
        }
        piece.push_str(&encoded_char);
    }
    if !piece.is_empty() {
        words.push(format!("{}{piece}", piece_head(attr, words.len())));
    }
    words
}

fn piece_head(attr: &str, index: usize) -> String {
    if index == 0 {
        format!("{attr}*0*=utf-8''")
    } else {
        format!("{attr}*{index}*=")
    }
}

fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    percent_encode_into(value, &mut out);
    out
}

/// RFC 2231 `attribute-char`s go as they are, every other byte as `%XX`.
fn percent_encode_into(value: &str, out: &mut String) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_quoted_strings() {
        assert_eq!(
            parameter_words("filename", "report 2026.pdf"),
            ["filename=\"report 2026.pdf\""]
        );
    }

    #[test]
    fn non_ascii_names_use_rfc_2231() {
        assert_eq!(
            parameter_words("filename", "Übersicht März.pdf"),
            ["filename*=utf-8''%C3%9Cbersicht%20M%C3%A4rz.pdf"]
        );
        assert_eq!(
            parameter_words("name", "50% \"off\".txt"),
            ["name*=utf-8''50%25%20%22off%22.txt"]
        );
    }

    #[test]
    fn long_names_are_continued_in_whole_characters() {
        let name = format!("{}.pdf", "Größenänderung ".repeat(8));
        let words = parameter_words("filename", &name);
        assert!(words.len() > 1);
        assert!(words[0].starts_with("filename*0*=utf-8''"));
        assert!(words[1].starts_with("filename*1*="));
        for word in &words {
            assert!(word.len() <= MAX_PARAMETER, "{word}");
            let value = word
                .split_once("*=")
                .map_or("", |(_, v)| v)
                .trim_end_matches(';');
            let value = value.strip_prefix("utf-8''").unwrap_or(value);
            let bytes: Vec<u8> = decode_percent(value);
            assert!(String::from_utf8(bytes).is_ok(), "{word}");
        }
    }

    fn decode_percent(value: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let bytes = value.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&value[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        out
    }

    #[test]
    fn names_are_one_line_and_never_empty() {
        assert_eq!(
            file_name("a\r\nContent-Type: text/html.pdf"),
            "a Content-Type: text/html.pdf"
        );
        assert_eq!(file_name("\r\n"), UNNAMED);
    }

    #[test]
    fn overlong_names_are_shortened_keeping_the_extension() {
        let name = file_name(&format!("{}.pdf", "ü".repeat(300)));
        assert!(name.len() <= MAX_NAME);
        assert!(name.ends_with("ü.pdf"));
    }
}
