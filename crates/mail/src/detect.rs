//! Which charset a text part is really in, and why.
//!
//! Mail declares charsets, and real mail gets them wrong: no `charset` at all on
//! Big5 or GBK text, `charset=gb2312` on UTF-8, `charset=utf-8` on windows-1252,
//! `charset=iso-8859-1` on UTF-16. A mail client that believes the label shows
//! mojibake (`浣犲ソ` for `你好`). The order here is the one the issue asked for and
//! mail clients converge on:
//!
//! 1. a byte order mark, or the NUL pattern of UTF-16 without one: nothing else
//!    reads such bytes;
//! 2. the declared charset (then the HTML `<meta charset>`), when the bytes decode in
//!    it without errors and the result is plausible: valid UTF-8 with multi-byte
//!    sequences is not plausibly GB2312 or Latin-1 (UTF-8 is self-checking, legacy
//!    text almost never passes its check), and a label that only promises ASCII says
//!    nothing about 8-bit bytes;
//! 3. valid UTF-8 as UTF-8;
//! 4. otherwise detection: a multi-byte charset declared elsewhere in the message
//!    (another part, an encoded word) that decodes the bytes without errors, else
//!    chardetng (Firefox's detector), with the sender's top-level domain as its hint;
//!    a single-byte charset declared elsewhere wins over chardetng's generic
//!    windows-1252.
//!
//! Every choice comes with its reason in words, for the message's processing log.

use encoding_rs::{Encoding, ISO_2022_JP, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};

use crate::charset::encoding_for_label;

/// At most this much of a text is fed to the detector: enough to decide, and a
/// bound on the work a huge part causes.
const DETECT_PREFIX: usize = 256 * 1024;

/// What else is known about a text besides its bytes.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TextHints<'a> {
    /// The part's `charset` parameter, as written.
    pub declared: Option<&'a str>,
    /// For HTML: the `<meta charset>` (or `http-equiv`) label.
    pub meta: Option<&'a str>,
    /// Charsets the rest of the message names (other parts, encoded words),
    /// lower-cased, in order of appearance.
    pub message_charsets: &'a [String],
    /// The sender's top-level domain, lower-case ASCII (`ru`, `jp`, `tw`).
    pub tld: Option<&'a str>,
}

/// A text decoded to UTF-8, with the charset used and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodedText {
    pub text: String,
    pub encoding: &'static Encoding,
    pub reason: Reason,
}

/// Why [`DecodedText::encoding`] was used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Only ASCII: every charset reads it alike.
    Ascii,
    /// A byte order mark said so.
    ByteOrderMark,
    /// NUL in every other byte: UTF-16 without a byte order mark.
    Utf16Pattern { declared: Option<Rejected> },
    /// The part's declared charset decodes it cleanly.
    Declared { label: String },
    /// The HTML's `<meta charset>` decodes it cleanly.
    Meta {
        label: String,
        declared: Option<Rejected>,
    },
    /// The bytes are valid UTF-8.
    Utf8 { declared: Option<Rejected> },
    /// UTF-8 but for a few broken sequences (a cut, a stray byte): no other
    /// charset reads the rest, so those few are shown as U+FFFD.
    MostlyUtf8 {
        errors: usize,
        declared: Option<Rejected>,
    },
    /// A charset declared elsewhere in the message decodes it cleanly.
    ElsewhereInMessage {
        label: String,
        declared: Option<Rejected>,
    },
    /// chardetng's guess.
    Detected { declared: Option<Rejected> },
    /// Nothing decodes it cleanly; the declared charset left the fewest errors.
    DeclaredDespiteErrors { label: String, errors: usize },
}

/// A declared charset that was not used, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejected {
    pub label: String,
    pub why: RejectedWhy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RejectedWhy {
    /// No charset by that name.
    Unknown,
    /// Some bytes are not valid in it.
    InvalidBytes,
    /// The bytes are valid UTF-8, which the label would misread.
    Utf8Instead,
    /// The label (US-ASCII) promises 7-bit text, and there are 8-bit bytes.
    EightBitInAscii,
    /// The bytes are UTF-16.
    Utf16Instead,
}

impl Rejected {
    fn words(&self) -> String {
        let label = &self.label;
        match self.why {
            RejectedWhy::Unknown => format!("it declares {label:?}, which is no known charset"),
            RejectedWhy::InvalidBytes => {
                format!("it declares {label:?}, but the bytes are not valid {label}")
            }
            RejectedWhy::Utf8Instead => format!(
                "it declares {label:?}, but the bytes are valid UTF-8 ({label} would misread them)"
            ),
            RejectedWhy::EightBitInAscii => {
                format!("it declares {label:?}, but holds 8-bit bytes")
            }
            RejectedWhy::Utf16Instead => format!("it declares {label:?}, but the bytes are UTF-16"),
        }
    }
}

impl DecodedText {
    /// The choice in words: "Big5, detected (no charset declared, not UTF-8)".
    pub(crate) fn explain(&self) -> String {
        let name = self.encoding.name();
        let declared = |d: &Option<Rejected>| match d {
            Some(rejected) => rejected.words(),
            None => "it declares no charset".to_owned(),
        };
        match &self.reason {
            Reason::Ascii => format!("{name}: plain ASCII"),
            Reason::ByteOrderMark => format!("{name}, from its byte order mark"),
            Reason::Utf16Pattern { declared: d } => format!(
                "{name}: every other byte is NUL (UTF-16 without a byte order mark); {}",
                declared(d)
            ),
            Reason::Declared { label } => format!("{name}, as declared ({label:?})"),
            Reason::Meta { label, declared: d } => format!(
                "{name}, from the HTML's <meta charset={label:?}>; {}",
                declared(d)
            ),
            Reason::Utf8 { declared: d } => {
                format!("{name}: the bytes are valid UTF-8; {}", declared(d))
            }
            Reason::MostlyUtf8 {
                errors,
                declared: d,
            } => format!(
                "{name}: all but {errors} byte sequence(s) are valid UTF-8, shown as U+FFFD; {}",
                declared(d)
            ),
            Reason::ElsewhereInMessage { label, declared: d } => format!(
                "{name}: another part of the message declares {label:?} and the bytes are valid in it; {}",
                declared(d)
            ),
            Reason::Detected { declared: d } => {
                format!("{name}, detected from the bytes; {}", declared(d))
            }
            Reason::DeclaredDespiteErrors { label, errors } => format!(
                "{name}, as declared ({label:?}), with {errors} undecodable byte sequence(s) shown as U+FFFD: no other charset reads it better"
            ),
        }
    }

    /// True when the text needed no decision worth logging: ASCII, or the declared
    /// charset read it cleanly.
    pub(crate) fn is_unremarkable(&self) -> bool {
        matches!(self.reason, Reason::Ascii)
    }
}

/// Decodes a text part's bytes (after its transfer encoding) to UTF-8.
pub(crate) fn decode_text(bytes: &[u8], hints: &TextHints<'_>) -> DecodedText {
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        let (text, _) =
            encoding.decode_without_bom_handling(bytes.get(bom_len..).unwrap_or_default());
        return DecodedText {
            text: text.into_owned(),
            encoding,
            reason: Reason::ByteOrderMark,
        };
    }
    let mut rejected: Option<Rejected> = None;
    if let Some(encoding) = utf16_without_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(bytes);
        let declared = hints.declared.and_then(|label| {
            let fits = encoding_for_label(label).is_some_and(|e| e == UTF_16LE || e == UTF_16BE);
            (!fits).then(|| Rejected {
                label: label.to_owned(),
                why: RejectedWhy::Utf16Instead,
            })
        });
        return DecodedText {
            text: text.into_owned(),
            encoding,
            reason: Reason::Utf16Pattern { declared },
        };
    }
    if bytes.is_ascii() && !bytes.contains(&0x1b) {
        return DecodedText {
            text: String::from_utf8_lossy(bytes).into_owned(),
            encoding: UTF_8,
            reason: Reason::Ascii,
        };
    }
    let is_utf8 = std::str::from_utf8(bytes).is_ok() && !bytes.contains(&0x1b);

    // 2. The declared charset, then the HTML's own.
    if let Some(label) = hints.declared {
        match try_label(label, bytes, is_utf8) {
            Ok((text, encoding)) => {
                return DecodedText {
                    text,
                    encoding,
                    reason: Reason::Declared {
                        label: label.to_owned(),
                    },
                };
            }
            Err(why) => {
                rejected = Some(Rejected {
                    label: label.to_owned(),
                    why,
                });
            }
        }
    }
    if let Some(label) = hints.meta
        && let Ok((text, encoding)) = try_label(label, bytes, is_utf8)
    {
        return DecodedText {
            text,
            encoding,
            reason: Reason::Meta {
                label: label.to_owned(),
                declared: rejected,
            },
        };
    }

    // 3. Valid UTF-8.
    if is_utf8 {
        return DecodedText {
            text: String::from_utf8_lossy(bytes).into_owned(),
            encoding: UTF_8,
            reason: Reason::Utf8 { declared: rejected },
        };
    }

    // A UTF-8 text with a few broken sequences is still UTF-8, unless the label
    // names a charset (that was tried above and failed).
    let declared_encoding = hints.declared.and_then(encoding_for_label);
    if declared_encoding.is_none_or(|e| e == UTF_8)
        && let Some(errors) = mostly_utf8(bytes)
    {
        return DecodedText {
            text: String::from_utf8_lossy(bytes).into_owned(),
            encoding: UTF_8,
            reason: Reason::MostlyUtf8 {
                errors,
                declared: rejected,
            },
        };
    }

    // 4. Detection, the rest of the message first.
    let declared_encoding = hints.declared.and_then(encoding_for_label);
    let elsewhere: Vec<(&String, &'static Encoding)> = hints
        .message_charsets
        .iter()
        .filter_map(|label| encoding_for_label(label).map(|e| (label, e)))
        .filter(|(_, e)| {
            *e != UTF_8 && *e != UTF_16LE && *e != UTF_16BE && Some(*e) != declared_encoding
        })
        .collect();
    for (label, encoding) in &elsewhere {
        if encoding.is_single_byte() {
            continue;
        }
        let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
        if !had_errors {
            return DecodedText {
                text: text.into_owned(),
                encoding,
                reason: Reason::ElsewhereInMessage {
                    label: (*label).clone(),
                    declared: rejected,
                },
            };
        }
    }
    let guess = guess_legacy(bytes, hints.tld);
    if guess == WINDOWS_1252
        && let Some((label, encoding)) = elsewhere
            .iter()
            .find(|(_, e)| e.is_single_byte() && *e != WINDOWS_1252)
    {
        let (text, _) = encoding.decode_without_bom_handling(bytes);
        return DecodedText {
            text: text.into_owned(),
            encoding,
            reason: Reason::ElsewhereInMessage {
                label: (*label).clone(),
                declared: rejected,
            },
        };
    }
    let (text, guess_errors) = decode_counting(guess, bytes);
    // A declared charset with a few bad sequences beats a guess that reads worse
    // (Shift_JIS with vendor characters, a truncated GBK part).
    if guess_errors > 0
        && let Some(label) = hints.declared
        && let Some(encoding) = declared_encoding
        && encoding != UTF_16LE
        && encoding != UTF_16BE
    {
        let (declared_text, errors) = decode_counting(encoding, bytes);
        if errors <= guess_errors {
            return DecodedText {
                text: declared_text,
                encoding,
                reason: Reason::DeclaredDespiteErrors {
                    label: label.to_owned(),
                    errors,
                },
            };
        }
    }
    DecodedText {
        text,
        encoding: guess,
        reason: Reason::Detected { declared: rejected },
    }
}

/// Decodes with `label` when that is plausible; else says why not.
fn try_label(
    label: &str,
    bytes: &[u8],
    is_utf8: bool,
) -> Result<(String, &'static Encoding), RejectedWhy> {
    let encoding = encoding_for_label(label).ok_or(RejectedWhy::Unknown)?;
    if encoding == UTF_8 {
        return if is_utf8 {
            Ok((String::from_utf8_lossy(bytes).into_owned(), UTF_8))
        } else {
            Err(RejectedWhy::InvalidBytes)
        };
    }
    if crate::charset::promises_ascii(label) {
        return Err(RejectedWhy::EightBitInAscii);
    }
    let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
    if had_errors {
        return Err(RejectedWhy::InvalidBytes);
    }
    // ISO-2022-JP is 7-bit: valid UTF-8 by construction, so that proves nothing.
    if is_utf8 && encoding != ISO_2022_JP {
        return Err(RejectedWhy::Utf8Instead);
    }
    Ok((text.into_owned(), encoding))
}

/// chardetng's guess among the legacy charsets (never UTF-8: callers try that
/// first), with the top-level domain as a hint when it is one it can take.
pub(crate) fn guess_legacy(bytes: &[u8], tld: Option<&str>) -> &'static Encoding {
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Allow);
    let prefix = bytes.get(..DETECT_PREFIX).unwrap_or(bytes);
    detector.feed(prefix, prefix.len() == bytes.len());
    // chardetng panics on a label with upper case, dots or non-ASCII.
    let tld = tld.filter(|t| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    detector.guess(tld.map(str::as_bytes), chardetng::Utf8Detection::Deny)
}

/// UTF-16LE or BE when most code units of the first kilobytes have a NUL high (or
/// low) byte: ASCII-range text in UTF-16 without a byte order mark. Needs the other
/// byte to be non-NUL often, so a run of zeros (binary) is not taken for text.
pub(crate) fn utf16_without_bom(bytes: &[u8]) -> Option<&'static Encoding> {
    let sample = bytes.get(..4096).unwrap_or(bytes);
    let units = sample.len() / 2;
    if units < 4 || !sample.contains(&0) {
        return None;
    }
    let (mut nul_even, mut nul_odd, mut both) = (0usize, 0usize, 0usize);
    for pair in sample.chunks_exact(2) {
        match (pair[0], pair[1]) {
            (0, 0) => both += 1,
            (0, _) => nul_even += 1,
            (_, 0) => nul_odd += 1,
            _ => {}
        }
    }
    // Nearly every unit has exactly one NUL byte, and on the same side.
    let threshold = units * 9 / 10;
    let encoding = if nul_odd >= threshold && both * 20 < units {
        UTF_16LE
    } else if nul_even >= threshold && both * 20 < units {
        UTF_16BE
    } else {
        return None;
    };
    let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
    let controls = text
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        .count();
    (!had_errors && controls * 50 < text.chars().count().max(1)).then_some(encoding)
}

/// The number of broken sequences when `bytes` are UTF-8 with a few of them: at
/// least four valid multi-byte characters, and at most one broken sequence for
/// every four of those. Legacy text seldom forms even one valid UTF-8 sequence.
pub(crate) fn mostly_utf8(bytes: &[u8]) -> Option<usize> {
    let mut valid_multibyte = 0usize;
    let mut broken = 0usize;
    for chunk in bytes.utf8_chunks() {
        valid_multibyte += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
        if !chunk.invalid().is_empty() {
            broken += 1;
        }
    }
    (broken > 0 && valid_multibyte >= 4 && broken * 4 <= valid_multibyte).then_some(broken)
}

/// Decodes and counts the replacement characters the decoding made.
fn decode_counting(encoding: &'static Encoding, bytes: &[u8]) -> (String, usize) {
    let before = bytes
        .windows(3)
        .filter(|w| *w == "\u{FFFD}".as_bytes())
        .count();
    let (text, _) = encoding.decode_without_bom_handling(bytes);
    let after = text.matches('\u{FFFD}').count();
    (text.into_owned(), after.saturating_sub(before))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hints(declared: Option<&str>) -> TextHints<'_> {
        TextHints {
            declared,
            ..TextHints::default()
        }
    }

    #[test]
    fn a_clean_declared_charset_is_used() {
        let decoded = decode_text(b"Gr\xfc\xdfe", &hints(Some("iso-8859-1")));
        assert_eq!(decoded.text, "Grüße");
        assert_eq!(
            decoded.reason,
            Reason::Declared {
                label: "iso-8859-1".into()
            }
        );
    }

    #[test]
    fn utf8_declared_as_gb2312_is_read_as_utf8() {
        let decoded = decode_text("你好，世界".as_bytes(), &hints(Some("gb2312")));
        assert_eq!(decoded.text, "你好，世界");
        assert_eq!(decoded.encoding, UTF_8);
        assert!(
            decoded.explain().contains("valid UTF-8"),
            "{}",
            decoded.explain()
        );
    }

    #[test]
    fn utf8_that_is_not_is_detected() {
        let decoded = decode_text(
            b"Sehr geehrte Damen und Herren, f\xfcr die \xc4nderung danke ich Ihnen.",
            &hints(Some("utf-8")),
        );
        assert_eq!(
            decoded.text,
            "Sehr geehrte Damen und Herren, für die Änderung danke ich Ihnen."
        );
        assert!(matches!(
            decoded.reason,
            Reason::Detected { declared: Some(_) }
        ));
    }

    #[test]
    fn utf8_with_a_stray_byte_stays_utf8() {
        let mut bytes = "Юникод запрещен".as_bytes().to_vec();
        bytes.push(0xf1);
        let decoded = decode_text(&bytes, &hints(None));
        assert_eq!(decoded.text, "Юникод запрещен\u{FFFD}");
        assert!(matches!(
            decoded.reason,
            Reason::MostlyUtf8 { errors: 1, .. }
        ));
        // Latin-1 is not "mostly UTF-8".
        assert_eq!(mostly_utf8(b"Gr\xfc\xdfe aus K\xf6ln"), None);
    }

    #[test]
    fn us_ascii_with_utf8_bytes_is_utf8() {
        let decoded = decode_text("naïve café".as_bytes(), &hints(Some("us-ascii")));
        assert_eq!(decoded.text, "naïve café");
    }

    #[test]
    fn utf16_without_bom_is_recognised_whatever_the_label() {
        let bytes: Vec<u8> = "UTF-16 text, little endian"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let decoded = decode_text(&bytes, &hints(Some("iso-8859-1")));
        assert_eq!(decoded.text, "UTF-16 text, little endian");
        assert_eq!(decoded.encoding, UTF_16LE);
        let bytes: Vec<u8> = "Привет".encode_utf16().flat_map(u16::to_be_bytes).collect();
        // Not ASCII-range: no NUL pattern, so this is left to the BOM or the label.
        assert_eq!(utf16_without_bom(&bytes), None);
    }

    #[test]
    fn a_charset_declared_elsewhere_in_the_message_helps() {
        let big5 =
            b"\xa7\x41\xa6\x6e\xa1\x41\xa7\xda\xaa\xba\xb9\x71\xb8\xa3\xa6\xb3\xb0\xdd\xc3\x44";
        let others = vec!["big5".to_owned()];
        let decoded = decode_text(
            big5,
            &TextHints {
                message_charsets: &others,
                ..TextHints::default()
            },
        );
        assert_eq!(decoded.text, "你好，我的電腦有問題");
        assert!(matches!(decoded.reason, Reason::ElsewhereInMessage { .. }));
    }

    #[test]
    fn an_odd_top_level_domain_does_not_upset_the_detector() {
        for tld in ["RU", "co.uk", "рф", ""] {
            let _ = guess_legacy(b"\xcf\xf0\xe8\xe2\xe5\xf2", Some(tld));
        }
    }
}
