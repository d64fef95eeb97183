//! The message text inside a `winmail.dat`, for mail whose MIME text is empty.
//!
//! Outlook sometimes sends its text only inside TNEF: the MIME `text/plain` part is
//! empty or missing and the words are in the message's MAPI properties, as plain
//! text (`PR_BODY`), compressed RTF (`PR_RTF_COMPRESSED`) or HTML (`PR_HTML`).
//! Other clients show such mail as blank. [`TnefBody::text`] picks the first of
//! those that yields text, in that order: plain text is what Outlook itself shows
//! a plain-text reader, RTF is what Outlook usually stores, and the HTML is last
//! because it needs the most conversion.

use serde::Serialize;

use crate::rtf_compressed::{MAX_RTF_BYTES, decompress_rtf};
use crate::rtf_text::{RtfContent, read_rtf};
use crate::{SanitizeOptions, sanitize_html};

/// A message body as a `winmail.dat` stored it, read but not yet turned into text:
/// most such mail has MIME text too, and then needs no decompression at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TnefBody {
    /// `PR_BODY` (or the older `attBody` attribute), decoded.
    pub plain: Option<String>,
    /// `PR_RTF_COMPRESSED`: the RTF body, LZFu-compressed as Outlook stores it.
    pub rtf_compressed: Option<Vec<u8>>,
    /// `PR_HTML`, decoded with the message's code page.
    pub html: Option<String>,
}

/// Where the text taken from a `winmail.dat` came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TnefBodySource {
    /// The plain-text body, `PR_BODY` or `attBody`.
    PlainText,
    /// The compressed RTF body, read as text.
    Rtf,
    /// HTML that Outlook encapsulated in the compressed RTF body.
    HtmlInRtf,
    /// The HTML body, `PR_HTML`.
    Html,
}

impl TnefBodySource {
    /// In words, for the message's processing log.
    pub fn describe(self) -> &'static str {
        match self {
            Self::PlainText => "the plain-text body (PR_BODY)",
            Self::Rtf => "the compressed RTF body (PR_RTF_COMPRESSED)",
            Self::HtmlInRtf => "the HTML inside the compressed RTF body (PR_RTF_COMPRESSED)",
            Self::Html => "the HTML body (PR_HTML)",
        }
    }
}

/// The text of a [`TnefBody`] and where it came from: an agent reading a ticket
/// built from it, and whoever reads its log, should know it was not MIME text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TnefBodyText {
    /// `\n` line ends, leading blank lines and trailing white space removed.
    pub text: String,
    /// Which of the stored forms the text was read from, for the processing log.
    pub source: TnefBodySource,
}

impl TnefBody {
    /// True when the `winmail.dat` held no body at all.
    pub fn is_empty(&self) -> bool {
        self.plain.is_none() && self.rtf_compressed.is_none() && self.html.is_none()
    }

    /// The body as text: the plain text when there is some, else the RTF's text,
    /// else the HTML's. Damage met on the way is added to `notes`. `None` when no
    /// form holds any text.
    pub fn text(&self, notes: &mut Vec<String>) -> Option<TnefBodyText> {
        let found = |text: String, source| {
            let text = tidy(&text);
            (!text.is_empty()).then_some(TnefBodyText { text, source })
        };
        if let Some(found) = self
            .plain
            .clone()
            .and_then(|p| found(p, TnefBodySource::PlainText))
        {
            return Some(found);
        }
        if let Some(compressed) = &self.rtf_compressed {
            match decompress_rtf(compressed, MAX_RTF_BYTES) {
                Ok(rtf) => {
                    notes.extend(rtf.notes.into_iter().map(|n| format!("winmail.dat: {n}")));
                    let reading = read_rtf(&rtf.rtf);
                    notes.extend(
                        reading
                            .notes
                            .into_iter()
                            .map(|n| format!("winmail.dat: {n}")),
                    );
                    let text = match reading.content {
                        RtfContent::Text(text) => found(text, TnefBodySource::Rtf),
                        RtfContent::Html(html) => {
                            found(html_to_text(&html), TnefBodySource::HtmlInRtf)
                        }
                    };
                    if text.is_some() {
                        return text;
                    }
                }
                Err(e) => notes.push(format!("winmail.dat: the RTF body could not be read ({e})")),
            }
        }
        self.html
            .as_deref()
            .and_then(|html| found(html_to_text(html), TnefBodySource::Html))
    }
}

/// HTML to text the way the crate does it for HTML-only mail: sanitized first,
/// so the converter only ever sees well-formed, script-free markup.
fn html_to_text(html: &str) -> String {
    crate::html_text::sanitized_html_to_text(&sanitize_html(html, &SanitizeOptions::default()))
}

/// The same shape [`crate::ParsedMessage::text_body`] has for MIME text.
fn tidy(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .trim_end()
        .trim_start_matches('\n')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtf_compressed::tests::{SPEC_EXAMPLE_1, compress_for_tests};

    #[test]
    fn plain_text_wins_over_rtf() {
        let body = TnefBody {
            plain: Some("Plain\r\nwords\r\n".into()),
            rtf_compressed: Some(SPEC_EXAMPLE_1.to_vec()),
            html: None,
        };
        let text = body.text(&mut Vec::new()).expect("has text");
        assert_eq!(text.text, "Plain\nwords");
        assert_eq!(text.source, TnefBodySource::PlainText);
    }

    #[test]
    fn compressed_rtf_becomes_text() {
        let body = TnefBody {
            rtf_compressed: Some(SPEC_EXAMPLE_1.to_vec()),
            ..TnefBody::default()
        };
        let mut notes = Vec::new();
        let text = body.text(&mut notes).expect("has text");
        assert_eq!(text.text, "hello world");
        assert_eq!(text.source, TnefBodySource::Rtf);
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn html_encapsulated_in_rtf_reads_as_the_html_would() {
        let rtf = b"{\\rtf1\\ansi\\ansicpg1252\\fromhtml1 {\\*\\htmltag19 <html><body>}\
{\\*\\htmltag64 <p>}\\htmlrtf {\\htmlrtf0 Hi Ana,\\htmlrtf }\\htmlrtf0 {\\*\\htmltag72 </p>}\
{\\*\\htmltag64 <p>}the printer is back.{\\*\\htmltag72 </p>}\\htmlrtf \\par \\htmlrtf0 \
{\\*\\htmltag27 </body></html>}}";
        let body = TnefBody {
            rtf_compressed: Some(compress_for_tests(rtf)),
            ..TnefBody::default()
        };
        let text = body.text(&mut Vec::new()).expect("has text");
        assert_eq!(text.text, "Hi Ana,\n\nthe printer is back.");
        assert_eq!(text.source, TnefBodySource::HtmlInRtf);
    }

    #[test]
    fn unreadable_rtf_falls_back_to_html_and_says_why() {
        let body = TnefBody {
            rtf_compressed: Some(b"short".to_vec()),
            html: Some("<p>From <b>HTML</b></p>".into()),
            ..TnefBody::default()
        };
        let mut notes = Vec::new();
        let text = body.text(&mut notes).expect("has text");
        assert_eq!(text.text, "From HTML");
        assert_eq!(text.source, TnefBodySource::Html);
        assert!(notes[0].contains("could not be read"), "{notes:?}");
    }

    #[test]
    fn white_space_only_forms_are_no_text() {
        let body = TnefBody {
            plain: Some(" \r\n".into()),
            rtf_compressed: Some(compress_for_tests(b"{\\rtf1 \\par \\par }")),
            html: None,
        };
        assert_eq!(body.text(&mut Vec::new()), None);
    }
}
