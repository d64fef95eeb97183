//! Promise 5 (bad input never blocks the queue) from the other side: whatever the
//! bytes, `parse`, `classify`, `sanitize_html`, `split_reply` and `extract_tnef`
//! return. Random input shaped like mail (header lines, boundaries, encoded words,
//! broken transfer encodings) and corpus messages cut and corrupted at random.

mod common;

use std::sync::OnceLock;

use mail::{
    ClassifyContext, SanitizeOptions, TnefLimits, classify, extract_tnef, parse, sanitize_html,
    split_reply,
};
use proptest::prelude::*;

/// Pieces real mail is made of, for random input that gets past the first line.
const PIECES: &[&str] = &[
    "From: \"Name\" <a@b.c>\r\n",
    "From: =?utf-8?B?w6TDtg==?= <x@y>\n",
    "Subject: =?iso-2022-jp?B?GyRCJS0lOCVIJWkbKEI=?=\n",
    "Subject: =?utf-8?Q?caf=C3=A9?=\n",
    "Message-ID: <",
    "References: <a@b> <c@d>\n",
    "Content-Type: multipart/mixed; boundary=\"b\"\n",
    "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n",
    "Content-Type: message/rfc822\n",
    "Content-Type: text/html; charset=\"koi8-r\"\n",
    "Content-Type: application/ms-tnef; name=winmail.dat\n",
    "Content-Disposition: attachment; filename*0*=utf-8''%E2%82; filename*1*=%AC.txt\n",
    "Content-Transfer-Encoding: base64\n",
    "Content-Transfer-Encoding: quoted-printable\n",
    "Auto-Submitted: auto-replied\n",
    "\n",
    "\r\n",
    "--b\n",
    "--b--\n",
    "eJ8+IhAAAQaQCAAEAAAAAAABAAEAAQeQBgAIAAAA5AQAAAAAAADoAA==\n",
    "=E4=F6=\n",
    "<html><body><div><blockquote>On Mon wrote:\n",
    "<img src=\"cid:x\" onerror=alert(1)><a href=javascript:x>",
    "> quoted\n",
    "-- \n",
    "Final-Recipient: rfc822; x@y\nAction: failed\nStatus: 5.1.1\n",
    "\u{e9}\u{fffd}\0\x01\x7f",
];

fn mailish() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(PIECES).prop_map(|p| p.as_bytes().to_vec()),
            1 => prop::collection::vec(any::<u8>(), 0..40),
        ],
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

fn corpus() -> &'static Vec<Vec<u8>> {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        common::index()
            .iter()
            .map(|e| common::read(&e.file))
            .filter(|raw| raw.len() < 200_000)
            .collect()
    })
}

fn exercise(raw: &[u8]) {
    if let Ok(message) = parse(raw) {
        let _ = classify(
            &message,
            raw,
            &ClassifyContext {
                own_addresses: vec!["a@b.c".into()],
            },
        );
        let _ = split_reply(&message.text_body);
        if let Some(html) = &message.html_source {
            let _ = sanitize_html(
                html,
                &SanitizeOptions {
                    cid_url_template: Some("/a/{content_id}".into()),
                    load_remote_images: false,
                },
            );
        }
        assert!(!message.message_id.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn mail_shaped_input_never_panics(raw in mailish()) {
        exercise(&raw);
    }

    #[test]
    fn corrupted_corpus_messages_never_panic(
        pick in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..20),
    ) {
        let messages = corpus();
        let mut raw = pick.get(messages).clone();
        let len = cut.index(raw.len() + 1);
        raw.truncate(len);
        for (at, byte) in flips {
            if !raw.is_empty() {
                let i = at.index(raw.len());
                raw[i] = byte;
            }
        }
        exercise(&raw);
    }

    #[test]
    fn any_text_sanitizes_and_splits(text in ".{0,400}") {
        let _ = sanitize_html(&text, &SanitizeOptions::default());
        let _ = split_reply(&text);
    }

    #[test]
    fn any_bytes_after_a_tnef_signature_are_read_within_bounds(
        body in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut data = vec![0x78, 0x9f, 0x3e, 0x22, 0, 0];
        data.extend_from_slice(&body);
        let _ = extract_tnef(&data, &TnefLimits::default());
    }
}
