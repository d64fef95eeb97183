//! The text inside `winmail.dat` (issue 18's closing point): Outlook mail whose
//! words are only in TNEF reads as text, from the real compressed RTF body in the
//! corpus. The corpus message also carries Outlook's own plain-text rendition of
//! the same body, so the RTF reading is checked against what Outlook wrote.

mod common;

use std::sync::OnceLock;

use mail::{TnefBody, TnefBodySource, TnefLimits, extract_tnef, parse};
use proptest::prelude::*;

const RICH_TEXT: &str = "mimekit/tnef__rich-text.eml";

/// The corpus message with its MIME `text/plain` part's content replaced by
/// `placeholder`: how Outlook mail looks when the text is only in TNEF. Made from
/// the real message because the corpus has no such mail of its own.
fn with_mime_text(placeholder: &str) -> Vec<u8> {
    let raw = common::read(RICH_TEXT);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let part = text.find("Content-Type: text/plain;").expect("a text part");
    let body_start = part + text[part..].find("\n\n").expect("part headers end") + 2;
    let body_end = body_start
        + text[body_start..]
            .find("------=_NextPart_000_0001_01D4945F.67C9A820")
            .expect("next boundary");
    format!(
        "{}{placeholder}\n{}",
        &text[..body_start],
        &text[body_end..]
    )
    .into_bytes()
}

/// The compressed RTF body of the corpus message, as stored in its winmail.dat.
fn corpus_rtf() -> &'static [u8] {
    static RTF: OnceLock<Vec<u8>> = OnceLock::new();
    RTF.get_or_init(|| {
        let parsed = parse(&common::read(RICH_TEXT)).expect("parses");
        let winmail = parsed
            .attachments
            .iter()
            .find(|a| a.name.as_deref() == Some("winmail.dat"))
            .expect("a winmail.dat");
        extract_tnef(&winmail.data, &TnefLimits::default())
            .expect("TNEF")
            .body
            .rtf_compressed
            .expect("a compressed RTF body")
    })
}

#[test]
fn corpus_rtf_body_reads_exactly_as_outlooks_own_plain_text() {
    let raw = common::read(RICH_TEXT);
    let parsed = parse(&raw).expect("parses");
    let winmail = parsed
        .attachments
        .iter()
        .find(|a| a.name.as_deref() == Some("winmail.dat"))
        .expect("a winmail.dat");
    let extraction = extract_tnef(&winmail.data, &TnefLimits::default()).expect("TNEF");
    // This message has no PR_BODY: the RTF is the only body inside.
    assert_eq!(extraction.body.plain, None);
    let mut notes = Vec::new();
    let body = extraction.body.text(&mut notes).expect("the RTF has text");
    assert_eq!(body.source, TnefBodySource::Rtf);
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(body.text, parsed.text_body);
    assert!(body.text.starts_with(
        " \n\nYou've made this a Christmas to remember\n\
         Springtime feeling's in the middle of December\n\
         Strangers meet and willingly surrender\n"
    ));
    assert!(body.text.ends_with(
        "Though it's cold outside we'll just stroke the burning embers\n\
         Oh! What a Christmas to remember"
    ));
    assert_eq!(body.text.lines().count(), parsed.text_body.lines().count());
}

#[test]
fn empty_mime_text_takes_the_winmail_rtf_body_and_says_so() {
    let original = parse(&common::read(RICH_TEXT)).expect("parses");
    let expected = &original.text_body;
    for placeholder in ["", " ", "\u{a0}", "\r\n\r\n"] {
        let parsed = parse(&with_mime_text(placeholder)).expect("parses");
        assert_eq!(&parsed.text_body, expected, "placeholder {placeholder:?}");
        assert!(
            parsed
                .reply_text
                .starts_with("You've made this a Christmas to remember"),
            "{:?}",
            &parsed.reply_text[..80.min(parsed.reply_text.len())]
        );
        assert!(
            parsed.notes.iter().any(|n| n
                == "the message's MIME text is empty; its text comes from the compressed RTF \
                    body (PR_RTF_COMPRESSED) in winmail.dat"),
            "{:?}",
            parsed.notes
        );
        // The files still come out as before.
        assert_eq!(parsed.attachments, original.attachments);
    }
}

#[test]
fn a_mime_text_part_with_words_is_never_replaced() {
    let parsed = parse(&with_mime_text("See the attached files.")).expect("parses");
    assert_eq!(parsed.text_body, "See the attached files.");
    assert!(
        !parsed
            .notes
            .iter()
            .any(|n| n.contains("its text comes from")),
        "{:?}",
        parsed.notes
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Promise 5 for the body inside winmail.dat: a real compressed RTF body cut
    /// and corrupted anywhere (header, tokens, the RTF it expands to) still reads.
    #[test]
    fn corrupted_corpus_rtf_bodies_read_without_panicking(
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..30),
    ) {
        let mut rtf = corpus_rtf().to_vec();
        rtf.truncate(cut.index(rtf.len() + 1));
        for (at, byte) in flips {
            if !rtf.is_empty() {
                let i = at.index(rtf.len());
                rtf[i] = byte;
            }
        }
        let body = TnefBody { rtf_compressed: Some(rtf), ..TnefBody::default() };
        let _ = body.text(&mut Vec::new());
    }
}
