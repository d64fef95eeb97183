//! RFC 2047 encoded words (`=?charset?Q|B?text?=`), decoded the way mail clients
//! (Thunderbird, Python's `email`) decode them, not the way mail-parser does.
//!
//! Three things real mail needs that a word-by-word decoder gets wrong:
//!
//! - adjacent words in one charset are joined *as bytes* before decoding: Japanese
//!   mailers split ISO-2022-JP (a stateful encoding) and multi-byte UTF-8 characters
//!   across words, and decoded one by one they turn into U+FFFD;
//! - white space is dropped only between two encoded words (RFC 2047 §6.2); between
//!   an encoded word and ordinary text, or a quoted string, it is kept:
//!   `=?ISO-8859-1?Q?Gabr=EDel?= "A." =?ISO-8859-1?Q?P=E9tursson?=` is
//!   `Gabríel A. Pétursson`, not `GabríelA. Pétursson`;
//! - raw 8-bit bytes inside a word (old clients wrote `=?iso-8859-1?Q?Fr\xF6sche?=`)
//!   belong to that word's charset. [`escape_8bit_in_q_words`] turns them into `=F6`
//!   before anything else reads the header, so they are decoded once, with the word's
//!   charset, instead of being made UTF-8 and then read as ISO-8859-1 again
//!   (`FrÃ¶sche`).
//!
//! A word whose bytes are not valid in its charset (a "utf-8" word holding Latin-1)
//! is decoded by [`crate::detect`] instead of showing U+FFFD.

/// Decodes every encoded word in an unstructured header value (`Subject`, a quoted
/// display name). Text outside the words is kept as it is, white space included;
/// callers put the result on one line.
pub(crate) fn decode_unstructured(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut pending: Option<(String, Vec<u8>)> = None;
    let mut rest = raw;
    while let Some(start) = rest.find("=?") {
        let Some(word) = parse_encoded_word(&rest[start..]) else {
            let (before, after) = rest.split_at(start + 2);
            flush(&mut pending, &mut out);
            out.push_str(before);
            rest = after;
            continue;
        };
        let between = &rest[..start];
        // §6.2: white space between two encoded words is not displayed.
        if !(pending.is_some() && between.chars().all(char::is_whitespace)) {
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

/// Decodes one run of joined words and appends it to `out`.
fn flush(pending: &mut Option<(String, Vec<u8>)>, out: &mut String) {
    if let Some((charset, bytes)) = pending.take() {
        out.push_str(&decode_word_bytes(&charset, &bytes));
    }
}

/// The text of an encoded word's bytes: its charset when they are valid in it, else
/// what the detector makes of them (a mislabelled word is still readable).
fn decode_word_bytes(charset: &str, bytes: &[u8]) -> String {
    let declared = crate::charset::encoding_for_label(charset);
    if let Some(encoding) = declared {
        let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
        if !had_errors {
            return text.into_owned();
        }
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return text.to_owned();
    }
    let guess = crate::detect::guess_legacy(bytes, None);
    let (text, _) = guess.decode_without_bom_handling(bytes);
    text.into_owned()
}

/// The charsets named by encoded words in `raw`, lower-cased, in order: a hint for
/// the message's undeclared text.
pub(crate) fn word_charsets(raw: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = raw;
    while let Some(start) = rest.find("=?") {
        rest = &rest[start..];
        match parse_encoded_word(rest) {
            Some(word) => {
                let charset = word.charset.to_ascii_lowercase();
                if !found.contains(&charset) {
                    found.push(charset);
                }
                rest = &rest[word.len..];
            }
            None => rest = &rest[2..],
        }
    }
    found
}

struct EncodedWord {
    charset: String,
    bytes: Vec<u8>,
    /// Length of the whole `=?...?=` in the input.
    len: usize,
}

/// Reads one `=?charset?B|Q?text?=` at the start of `s`.
fn parse_encoded_word(s: &str) -> Option<EncodedWord> {
    let (charset, encoding, text, len) = split_word(s.as_bytes())?;
    let charset = std::str::from_utf8(charset).ok()?;
    // RFC 2231 language suffix: charset*lang.
    let charset = charset.split('*').next().unwrap_or(charset).to_owned();
    let bytes = match encoding {
        b'B' | b'b' => mail_parser::decoders::base64::base64_decode(text)?,
        _ => q_decode(text)?,
    };
    Some(EncodedWord {
        charset,
        bytes,
        len,
    })
}

/// Splits `=?charset?E?text?=` at the start of `s` into charset, encoding letter and
/// text, with the whole word's length. White space inside a word ends it: that is
/// not a word but text that happens to hold `=?`.
fn split_word(s: &[u8]) -> Option<(&[u8], u8, &[u8], usize)> {
    let body = s.strip_prefix(b"=?")?;
    let charset_end = body.iter().position(|&b| b == b'?')?;
    let charset = body.get(..charset_end)?;
    let encoding = *body.get(charset_end + 1)?;
    if !matches!(encoding, b'B' | b'b' | b'Q' | b'q') || body.get(charset_end + 2) != Some(&b'?') {
        return None;
    }
    let text_start = charset_end + 3;
    let rest = body.get(text_start..)?;
    let text_end = rest.windows(2).position(|w| w == b"?=")?;
    let text = rest.get(..text_end)?;
    if charset.is_empty()
        || charset.iter().any(u8::is_ascii_whitespace)
        || text.iter().any(u8::is_ascii_whitespace)
    {
        return None;
    }
    Some((charset, encoding, text, 2 + text_start + text_end + 2))
}

/// The "Q" encoding: `_` is a space, `=XX` a byte, anything else itself.
fn q_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        match b {
            b'_' => out.push(b' '),
            b'=' => {
                let hex = text
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
    Some(out)
}

/// Rewrites raw 8-bit bytes inside Q-encoded words of a raw header line as `=XX`,
/// so they keep their word's charset. `None` when the line has no such byte.
pub(crate) fn escape_8bit_in_q_words(line: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(line.len() + 16);
    let mut changed = false;
    let mut i = 0;
    while i < line.len() {
        let rest = line.get(i..).unwrap_or_default();
        if rest.starts_with(b"=?")
            && let Some((charset, encoding, text, len)) = split_word_8bit(rest)
            && matches!(encoding, b'Q' | b'q')
            && text.iter().any(|b| !b.is_ascii())
        {
            out.extend_from_slice(b"=?");
            out.extend_from_slice(charset);
            out.push(b'?');
            out.push(encoding);
            out.push(b'?');
            for &b in text {
                if b.is_ascii() {
                    out.push(b);
                } else {
                    out.extend_from_slice(format!("={b:02X}").as_bytes());
                }
            }
            out.extend_from_slice(b"?=");
            changed = true;
            i += len;
            continue;
        }
        out.push(line[i]);
        i += 1;
    }
    changed.then_some(out)
}

/// [`split_word`] for raw lines: the charset must be ASCII, the text may hold 8-bit
/// bytes but no white space.
fn split_word_8bit(s: &[u8]) -> Option<(&[u8], u8, &[u8], usize)> {
    let found = split_word(s)?;
    found.0.is_ascii().then_some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_8bit_inside_a_q_word_is_read_with_the_words_charset() {
        let line = b"Subject: =?iso-8859-1?Q?Die_Hasen_und_die_Fr\xF6sche?=\n";
        let escaped = escape_8bit_in_q_words(line).expect("an 8-bit byte was escaped");
        assert_eq!(
            escaped,
            b"Subject: =?iso-8859-1?Q?Die_Hasen_und_die_Fr=F6sche?=\n".to_vec()
        );
        let text = std::str::from_utf8(&escaped).expect("ASCII now");
        assert_eq!(
            decode_unstructured(text).trim(),
            "Subject: Die Hasen und die Frösche"
        );
        assert_eq!(escape_8bit_in_q_words(b"Subject: Fr\xF6sche\n"), None);
    }

    #[test]
    fn white_space_between_an_encoded_word_and_plain_text_is_kept() {
        assert_eq!(
            decode_unstructured("=?ISO-8859-1?Q?Gabr=EDel?= \"A.\" =?ISO-8859-1?Q?P=E9tursson?="),
            "Gabríel \"A.\" Pétursson"
        );
        assert_eq!(
            decode_unstructured("Re: =?utf-8?Q?caf=C3=A9?= ok"),
            "Re: café ok"
        );
    }

    #[test]
    fn white_space_between_two_encoded_words_is_dropped() {
        assert_eq!(
            decode_unstructured("=?utf-8?Q?a?= =?utf-8?Q?b?=\n =?iso-8859-1?Q?=E9?="),
            "abé"
        );
    }

    #[test]
    fn a_multi_byte_character_split_across_words_is_joined_before_decoding() {
        // "キジトラ" in ISO-2022-JP, and "キ" split in the middle of its UTF-8 bytes.
        let raw = "=?iso-2022-jp?B?GyRCJS0lOCVIJWkbKEI=?= x";
        assert_eq!(decode_unstructured(raw), "キジトラ x");
        let split = "=?utf-8?Q?=E3=82?= =?utf-8?Q?=AD?= and =?utf-8?B?w6Q=?=";
        assert_eq!(decode_unstructured(split), "キ and ä");
        assert_eq!(decode_unstructured("plain =? text"), "plain =? text");
    }

    #[test]
    fn a_word_not_valid_in_its_charset_is_detected_instead_of_replaced() {
        // A "utf-8" word that holds Latin-1.
        assert_eq!(decode_unstructured("=?utf-8?Q?Gr=FC=DFe?="), "Grüße");
        assert_eq!(decode_unstructured("=?x-unknown?Q?caf=C3=A9?="), "café");
    }

    #[test]
    fn charsets_of_words_are_listed_once_in_order() {
        let raw = "=?KOI8-R?B?8NLJ18XU?= =?utf-8?Q?x?= =?koi8-r?Q?y?=";
        assert_eq!(word_charsets(raw), vec!["koi8-r", "utf-8"]);
    }
}
