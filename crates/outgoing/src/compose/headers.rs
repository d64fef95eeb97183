//! Header fields as bytes every server and client accepts.
//!
//! Three rules live here, because every header goes through this file:
//! - no CR, LF or other control character from any input reaches a header line
//!   ([`one_line`]): a display name or subject carrying `\r\nBcc: x` stays text;
//! - text outside printable ASCII (or text that would be mistaken for an encoded word)
//!   travels as RFC 2047 encoded words, UTF-8, each at most 75 characters and never
//!   split inside a character;
//! - lines are folded before 78 columns at the spaces between words ([`field`]); only a
//!   single unbreakable item (a long Message-ID or address) may run longer, and those
//!   are bounded far below the 998-octet limit by their validators.

/// Column at which header lines are folded (RFC 5322 §2.1.1 "SHOULD").
pub(crate) const FOLD_AT: usize = 78;

/// RFC 2047 §2: an encoded word may not be longer than 75 characters.
const MAX_ENCODED_WORD: usize = 75;

/// `=?utf-8?q?` plus `?=`.
const ENCODED_WORD_OVERHEAD: usize = 12;

/// Text made safe for a header: every control character (CR and LF among them) and
/// every kind of whitespace becomes one space, runs of spaces collapse, the ends are
/// trimmed.
///
/// Replacing rather than refusing is deliberate: a display name or subject with a
/// stray newline (pasted, or copied from a customer's mail) should still go out, and a
/// header injection attempt becomes harmless visible text.
pub(crate) fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_control() || c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

/// One header field, `Name: word word ...` with CRLF, folded before [`FOLD_AT`] at the
/// spaces between `words`.
///
/// Each word is an unbreakable unit already in its wire form (ASCII). A single space
/// joins them, so unfolding (removing the CRLF of a fold) gives back exactly that space.
pub(crate) fn field(name: &str, words: &[String]) -> String {
    let mut out = String::with_capacity(
        name.len() + 2 + words.iter().map(String::len).sum::<usize>() + words.len() * 3,
    );
    out.push_str(name);
    out.push(':');
    let mut line_len = name.len() + 1;
    for (i, word) in words.iter().enumerate() {
        debug_assert!(word.is_ascii() && !word.contains(['\r', '\n']));
        if i > 0 && line_len + 1 + word.len() > FOLD_AT {
            out.push_str("\r\n ");
            line_len = 1;
        } else {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += word.len();
    }
    out.push_str("\r\n");
    out
}

/// Room for the first word of field `name` on its first line (after `Name: `).
pub(crate) fn first_room(name: &str) -> usize {
    FOLD_AT.saturating_sub(name.len() + 2)
}

/// The words of an unstructured header (Subject), from text already passed through
/// [`one_line`]. `first_room` is how long the first word may be.
///
/// Printable ASCII words go as they are, so `Re:` and the `[#12]` token stay readable
/// in the raw message; each run of other words (non-ASCII, too long to fit a line, or
/// looking like an encoded word) becomes encoded words. A run is encoded as a whole,
/// spaces included, because decoders drop the whitespace between adjacent encoded
/// words but keep it between an encoded word and a plain one (RFC 2047 §6.2).
pub(crate) fn text_words(text: &str, first_room: usize) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    let flush = |run: &mut Vec<&str>, words: &mut Vec<String>| {
        if !run.is_empty() {
            let room = if words.is_empty() {
                first_room
            } else {
                MAX_ENCODED_WORD
            };
            words.extend(encoded_words(&run.join(" "), room));
            run.clear();
        }
    };
    if text.is_empty() {
        return words;
    }
    for (i, word) in text.split(' ').enumerate() {
        let room = if i == 0 { first_room } else { FOLD_AT - 1 };
        if is_plain(word) && word.len() <= room {
            flush(&mut run, &mut words);
            words.push(word.to_owned());
        } else {
            run.push(word);
        }
    }
    flush(&mut run, &mut words);
    words
}

/// The words of a display name (an RFC 5322 `phrase`), from text already passed
/// through [`one_line`].
///
/// Atoms go as they are, printable ASCII with specials (`Doe, Jane`, `J. Doe`) as a
/// quoted string, anything else as encoded words.
pub(crate) fn phrase_words(name: &str, first_room: usize) -> Vec<String> {
    if name.is_empty() {
        return Vec::new();
    }
    if is_plain(name) {
        if name.chars().all(|c| c == ' ' || is_atext(c)) {
            if words_fit(name, first_room) {
                return name.split(' ').map(str::to_owned).collect();
            }
        } else {
            let mut quoted = String::with_capacity(name.len() + 2);
            quoted.push('"');
            for c in name.chars() {
                if c == '"' || c == '\\' {
                    quoted.push('\\');
                }
                quoted.push(c);
            }
            quoted.push('"');
            // Folding inside a quoted string is allowed (it holds FWS), and unfolding
            // restores the single space.
            if words_fit(&quoted, first_room) {
                return quoted.split(' ').map(str::to_owned).collect();
            }
        }
    }
    encoded_words(name, first_room)
}

/// Printable ASCII that no decoder could take for an encoded word.
fn is_plain(text: &str) -> bool {
    text.bytes().all(|b| (b' '..=b'~').contains(&b)) && !text.contains("=?")
}

/// Whether every space-separated word fits on a line: the first after the field name,
/// the others after a fold.
fn words_fit(text: &str, first_room: usize) -> bool {
    text.split(' ').enumerate().all(|(i, word)| {
        let room = if i == 0 { first_room } else { FOLD_AT - 1 };
        word.len() <= room
    })
}

/// RFC 5322 `atext`: what an atom may hold without quoting.
pub(crate) fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

/// `text` as RFC 2047 UTF-8 encoded words, each at most 75 characters (the first at
/// most `first_room`), split only between characters.
///
/// Q is used when it is no longer than B, so mostly-Latin text stays readable in a raw
/// view; B for everything else. Decoders drop the whitespace between adjacent encoded
/// words, so spaces travel inside them (as `_` in Q).
pub(crate) fn encoded_words(text: &str, first_room: usize) -> Vec<String> {
    let q_total: usize = text.bytes().map(q_len).sum();
    let b_total = text.len().div_ceil(3) * 4;
    let use_q = q_total <= b_total;
    // Never less than one four-byte character needs, whatever the caller's room.
    let first_room = first_room.clamp(ENCODED_WORD_OVERHEAD + 12, MAX_ENCODED_WORD);

    let mut words = Vec::new();
    let mut chunk = String::new();
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let room = if words.is_empty() {
            first_room
        } else {
            MAX_ENCODED_WORD
        } - ENCODED_WORD_OVERHEAD;
        let added = c.encode_utf8(&mut buf).len();
        let would = if use_q {
            chunk.bytes().map(q_len).sum::<usize>()
                + buf[..added].iter().copied().map(q_len).sum::<usize>()
        } else {
            (chunk.len() + added).div_ceil(3) * 4
        };
        if would > room && !chunk.is_empty() {
            words.push(encode_word(&chunk, use_q));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(encode_word(&chunk, use_q));
    }
    words
}

fn encode_word(chunk: &str, use_q: bool) -> String {
    use base64::Engine as _;
    if use_q {
        let mut out = String::from("=?utf-8?q?");
        for b in chunk.bytes() {
            match b {
                b' ' => out.push('_'),
                _ if q_literal(b) => out.push(char::from(b)),
                _ => push_hex_escape(&mut out, b),
            }
        }
        out.push_str("?=");
        out
    } else {
        format!(
            "=?utf-8?b?{}?=",
            base64::engine::general_purpose::STANDARD.encode(chunk.as_bytes())
        )
    }
}

/// RFC 2047 §5 (3): the characters a Q-encoded word may carry literally in a phrase,
/// the strictest of its three contexts, so one encoder serves subjects and names.
fn q_literal(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!*+-/".contains(&b)
}

fn q_len(b: u8) -> usize {
    if b == b' ' || q_literal(b) { 1 } else { 3 }
}

/// Appends `=XX` with upper-case hex, as quoted-printable and Q encoding both want.
pub(crate) fn push_hex_escape(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('=');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0f)]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_line_breaks_become_single_spaces() {
        assert_eq!(one_line("  a\r\nBcc: x\t\u{0}b\u{2028}c  "), "a Bcc: x b c");
    }

    #[test]
    fn long_plain_headers_fold_before_78_columns_at_spaces() {
        let text = "word ".repeat(40);
        let words = text_words(one_line(&text).as_str(), first_room("Subject"));
        let header = field("Subject", &words);
        for line in header.split("\r\n") {
            assert!(line.len() <= FOLD_AT, "{line:?}");
        }
        assert_eq!(
            header.replace("\r\n ", " "),
            format!("Subject: {}\r\n", one_line(&text))
        );
    }

    #[test]
    fn encoded_words_stay_within_75_characters_and_whole_characters() {
        let text = "Grüße aus München – 東京の天気は晴れです ".repeat(6);
        let text = one_line(&text);
        let words = encoded_words(&text, first_room("Subject"));
        assert!(words.len() > 1);
        for word in &words {
            assert!(word.len() <= MAX_ENCODED_WORD, "{word}");
        }
        assert!(words[0].len() <= first_room("Subject"));
    }

    #[test]
    fn only_the_words_that_need_it_are_encoded() {
        let words = text_words("Re: Drucker brennt – schnell! [#12]", first_room("Subject"));
        assert_eq!(
            words,
            [
                "Re:",
                "Drucker",
                "brennt",
                "=?utf-8?b?4oCT?=",
                "schnell!",
                "[#12]"
            ]
        );
        // Q or B, whichever is shorter, for each run.
        let words = text_words("Grüße aus München [#3]", first_room("Subject"));
        assert_eq!(
            words,
            [
                "=?utf-8?b?R3LDvMOfZQ==?=",
                "aus",
                "=?utf-8?q?M=C3=BCnchen?=",
                "[#3]"
            ]
        );
        // Adjacent words that need encoding share encoded words, space included.
        let words = text_words("Grüße München", first_room("Subject"));
        assert_eq!(words, ["=?utf-8?b?R3LDvMOfZSBNw7xuY2hlbg==?="]);
    }

    #[test]
    fn text_that_looks_like_an_encoded_word_is_encoded() {
        let words = text_words("=?utf-8?q?hi?=", 60);
        assert!(words[0].starts_with("=?utf-8?"));
        assert_ne!(words, ["=?utf-8?q?hi?="]);
    }

    #[test]
    fn display_names_with_specials_are_quoted() {
        assert_eq!(
            phrase_words("Doe, Jane \"JD\"", 70),
            ["\"Doe,", "Jane", "\\\"JD\\\"\""]
        );
        assert_eq!(phrase_words("Jane Doe", 70), ["Jane", "Doe"]);
    }
}
