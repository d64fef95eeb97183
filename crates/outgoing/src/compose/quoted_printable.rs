//! Quoted-printable (RFC 2045 §6.7) for the text part.
//!
//! Chosen over base64 because the text stays readable in a raw view and in the
//! blob store, and over 8bit because not every relay on the way takes 8-bit mail.

use super::headers::push_hex_escape;

/// RFC 2045 §6.7 (5): encoded lines are at most 76 characters.
pub(crate) const MAX_LINE: usize = 76;

/// `text`, whose lines end in CRLF only, as quoted-printable with CRLF line ends.
///
/// Hard line breaks stay line breaks; longer lines get soft breaks (`=` CRLF) so no
/// line exceeds [`MAX_LINE`], never inside an `=XX` escape. Encoded: `=`, every byte
/// outside printable ASCII (UTF-8 included), a space or tab at a line end (relays may
/// strip it), and the `F` of a line starting `From ` (mbox would turn it into `>From`).
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for (i, line) in text.split("\r\n").enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        encode_line(line.as_bytes(), &mut out);
    }
    out
}

fn encode_line(line: &[u8], out: &mut String) {
    let mut line_len = 0;
    let mut token = String::with_capacity(3);
    for (i, &b) in line.iter().enumerate() {
        let last = i + 1 == line.len();
        token.clear();
        let literal = match b {
            b'=' => false,
            b' ' | b'\t' => !last,
            b'F' if i == 0 && line.starts_with(b"From ") => false,
            b'!'..=b'~' => true,
            _ => false,
        };
        if literal {
            token.push(char::from(b));
        } else {
            push_hex_escape(&mut token, b);
        }
        // A soft break costs one `=`; the final token of a line needs no room for it.
        let room = if last { MAX_LINE } else { MAX_LINE - 1 };
        if line_len + token.len() > room {
            out.push_str("=\r\n");
            line_len = 0;
        }
        out.push_str(&token);
        line_len += token.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain decoder, to check the encoder against.
    fn decode(text: &str) -> Vec<u8> {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'=' if bytes[i + 1..].starts_with(b"\r\n") => i += 3,
                b'=' => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        out
    }

    #[test]
    fn non_ascii_equals_and_trailing_space_are_escaped() {
        assert_eq!(
            encode("Grüße = 1 \r\nok\t"),
            "Gr=C3=BC=C3=9Fe =3D 1=20\r\nok=09"
        );
        assert_eq!(encode("From here\r\nFrom"), "=46rom here\r\nFrom");
    }

    #[test]
    fn encoded_lines_never_exceed_76_characters_and_decode_back() {
        let text = format!(
            "{}\r\n{}\r\n\r\n{}",
            "a".repeat(300),
            "ä=".repeat(100),
            "word ".repeat(50)
        );
        let encoded = encode(&text);
        for line in encoded.split("\r\n") {
            assert!(line.len() <= MAX_LINE, "{line}");
        }
        assert_eq!(decode(&encoded), text.as_bytes());
    }

    #[test]
    fn a_line_of_exactly_76_characters_is_not_broken() {
        let line = "x".repeat(76);
        assert_eq!(encode(&line), line);
        assert_eq!(
            encode(&"x".repeat(77)),
            format!("{}=\r\nxx", "x".repeat(75))
        );
    }
}
