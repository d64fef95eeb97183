//! The composer's promises, checked on the bytes and by reading them back with popdesk's
//! own parser (`mail::parse`), the way the customer's answer and our own returning copy
//! will be read.

use outgoing::compose::{
    Attachment, AutoSubmitted, ComposeError, Draft, MAX_REFERENCES, Mailbox, Quote, compose,
    new_message_id, references_chain, reply_subject,
};
use proptest::prelude::*;

/// 2026-12-01T10:00:00Z
const DATE_MS: i64 = 1_796_119_200_000;

fn mailbox(address: &str, name: Option<&str>) -> Mailbox {
    Mailbox {
        address: address.to_owned(),
        name: name.map(str::to_owned),
    }
}

fn draft() -> Draft {
    Draft {
        from: mailbox("support@popdesk.example", Some("Acme Support")),
        to: vec![mailbox("jane@customer.example", Some("Jane Doe"))],
        cc: Vec::new(),
        subject: reply_subject("Printer on fire", "#", 12),
        message_id: new_message_id("popdesk.example"),
        in_reply_to: Some("CAF+abc.1@mail.customer.example".to_owned()),
        references: vec![
            "root.0@mail.customer.example".to_owned(),
            "CAF+abc.1@mail.customer.example".to_owned(),
        ],
        date_ms: DATE_MS,
        body: "Hello Jane,\n\nplease switch it off first.\n\nAcme Support".to_owned(),
        quote: Some(Quote {
            attribution: "On Tue, 1 Dec 2026 09:00, Jane Doe <jane@customer.example> wrote:"
                .to_owned(),
            text: "My printer is on fire.\n\nWhat now?".to_owned(),
        }),
        attachments: Vec::new(),
        auto_submitted: None,
    }
}

/// The header section of `bytes` as (name, unfolded value) pairs, from the raw lines.
fn headers(bytes: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(bytes);
    let section = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in section.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            fields.last_mut().expect("a continuation follows a field").1 += line;
        } else {
            let (name, value) = line.split_once(':').expect("a header line has a colon");
            fields.push((name.to_owned(), value.trim_start().to_owned()));
        }
    }
    fields
}

fn header_names(bytes: &[u8]) -> Vec<String> {
    headers(bytes).into_iter().map(|(name, _)| name).collect()
}

fn header<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Every line ends in CRLF (no bare CR or LF anywhere) and is at most 998 octets.
fn assert_crlf_and_line_limit(bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            assert!(i > 0 && bytes[i - 1] == b'\r', "bare LF at {i}");
        }
        if b == b'\r' {
            assert_eq!(bytes.get(i + 1), Some(&b'\n'), "bare CR at {i}");
        }
    }
    for line in bytes.split(|&b| b == b'\n') {
        assert!(line.len() <= 999, "a line of {} octets", line.len());
    }
}

/// Header lines are folded at 78 columns, unless one unbreakable item (an id or an
/// address) is longer by itself.
fn assert_folded_at_78(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let section = text.split("\r\n\r\n").next().unwrap_or_default();
    for line in section.split("\r\n") {
        let content = match line.strip_prefix(' ') {
            Some(rest) => rest,
            None => line.split_once(": ").map_or(line, |(_, v)| v),
        };
        assert!(
            line.len() <= 78 || !content.contains(' '),
            "unfolded line of {}: {line:?}",
            line.len()
        );
    }
}

fn address_pairs(list: &[mail::Address]) -> Vec<(String, Option<String>)> {
    list.iter()
        .map(|a| (a.address.clone(), a.name.clone()))
        .collect()
}

#[test]
fn a_reply_round_trips_through_popdesks_parser() {
    let mut draft = draft();
    draft.from.name = Some("Acme Süpport – Team".to_owned());
    draft.to = vec![mailbox("jane@customer.example", Some("Doe, Jane"))];
    draft.cc = vec![
        mailbox("bob@customer.example", Some("Bob Müller")),
        mailbox("carol@customer.example", None),
    ];
    draft.subject = reply_subject("Drucker brennt – was tun?", "#", 12);
    draft.body = "Hallo Jane,\nbitte schalten Sie ihn aus. Grüße".to_owned();
    let bytes = compose(&draft).expect("composes");
    let parsed = mail::parse(&bytes).expect("parses");

    assert_eq!(
        parsed.subject.as_deref(),
        Some("Re: Drucker brennt – was tun? [#12]")
    );
    let from = parsed.from.expect("a From");
    assert_eq!(from.address, "support@popdesk.example");
    assert_eq!(from.name.as_deref(), Some("Acme Süpport – Team"));
    assert_eq!(
        address_pairs(&parsed.to),
        [(
            "jane@customer.example".to_owned(),
            Some("Doe, Jane".to_owned())
        )]
    );
    assert_eq!(
        address_pairs(&parsed.cc),
        [
            (
                "bob@customer.example".to_owned(),
                Some("Bob Müller".to_owned())
            ),
            ("carol@customer.example".to_owned(), None),
        ]
    );
    assert_eq!(parsed.message_id, draft.message_id);
    assert!(!parsed.message_id_synthetic);
    assert_eq!(parsed.in_reply_to, [draft.in_reply_to.clone().unwrap()]);
    assert_eq!(parsed.references, draft.references);
    assert_eq!(parsed.date, Some(DATE_MS));
    assert_eq!(
        parsed.reply_text,
        "Hallo Jane,\nbitte schalten Sie ihn aus. Grüße"
    );
    assert!(
        parsed.text_body.contains(
            "On Tue, 1 Dec 2026 09:00, Jane Doe <jane@customer.example> wrote:\n\
             > My printer is on fire.\n>\n> What now?"
        ),
        "{}",
        parsed.text_body
    );
    assert!(parsed.attachments.is_empty());
}

#[test]
fn attachments_round_trip_with_exact_bytes_and_names() {
    let big: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let long_name = format!("{}Größenänderung.pdf", "Quartalsübersicht ".repeat(6));
    let mut draft = draft();
    draft.attachments = vec![
        Attachment {
            name: "Übersicht März.pdf".to_owned(),
            content_type: "application/pdf".to_owned(),
            data: b"%PDF-1.7\n\x00\xff binary \r\n--=_popdesk_ =_".to_vec(),
        },
        Attachment {
            name: "firmware.bin".to_owned(),
            content_type: "application/octet-stream".to_owned(),
            data: big.clone(),
        },
        Attachment {
            name: long_name.clone(),
            content_type: "Application/PDF; charset=x".to_owned(),
            data: b"second pdf".to_vec(),
        },
        Attachment {
            name: "notes.txt".to_owned(),
            content_type: "not a type".to_owned(),
            data: "line one\nline two\n".as_bytes().to_vec(),
        },
    ];
    let bytes = compose(&draft).expect("composes");
    assert_crlf_and_line_limit(&bytes);
    assert_folded_at_78(&bytes);
    let fields = headers(&bytes);
    assert!(
        header(&fields, "Content-Type")
            .is_some_and(|v| v.starts_with("multipart/mixed; boundary=\"=_popdesk_"))
    );
    assert_eq!(header(&fields, "Content-Transfer-Encoding"), None);

    let parsed = mail::parse(&bytes).expect("parses");
    assert_eq!(parsed.reply_text, draft.body);
    let expected = [
        ("Übersicht März.pdf", "application/pdf"),
        ("firmware.bin", "application/octet-stream"),
        (long_name.as_str(), "application/pdf"),
        ("notes.txt", "application/octet-stream"),
    ];
    assert_eq!(parsed.attachments.len(), expected.len());
    for ((got, sent), (name, content_type)) in parsed
        .attachments
        .iter()
        .zip(&draft.attachments)
        .zip(expected)
    {
        assert_eq!(got.name.as_deref(), Some(name));
        assert_eq!(got.content_type, content_type, "{name}");
        // Not assert_eq!: three megabytes of Debug output help no one.
        assert!(got.data == sent.data, "{name}: the bytes differ");
    }
    assert_eq!(parsed.attachments[1].size, 3 * 1024 * 1024);
}

#[test]
fn attachment_names_use_rfc_2231_parameters() {
    let mut draft = draft();
    draft.attachments = vec![Attachment {
        name: "Übersicht März.pdf".to_owned(),
        content_type: "application/pdf".to_owned(),
        data: vec![1, 2, 3],
    }];
    let text = String::from_utf8(compose(&draft).expect("composes")).expect("ASCII");
    assert!(text.contains(
        "Content-Type: application/pdf; name*=utf-8''%C3%9Cbersicht%20M%C3%A4rz.pdf\r\n"
    ));
    assert!(text.contains(
        "Content-Disposition: attachment;\r\n filename*=utf-8''%C3%9Cbersicht%20M%C3%A4rz.pdf\r\n"
    ));
}

#[test]
fn without_attachments_the_message_is_one_text_part() {
    let bytes = compose(&draft()).expect("composes");
    let fields = headers(&bytes);
    assert_eq!(
        header(&fields, "Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        header(&fields, "Content-Transfer-Encoding"),
        Some("quoted-printable")
    );
    assert_eq!(header(&fields, "MIME-Version"), Some("1.0"));
    assert!(!String::from_utf8_lossy(&bytes).contains("multipart"));
}

#[test]
fn a_reply_has_the_expected_headers_and_no_auto_submitted() {
    let draft = draft();
    let bytes = compose(&draft).expect("composes");
    assert_eq!(
        header_names(&bytes),
        [
            "Date",
            "From",
            "To",
            "Subject",
            "Message-ID",
            "In-Reply-To",
            "References",
            "MIME-Version",
            "Content-Type",
            "Content-Transfer-Encoding"
        ]
    );
    let fields = headers(&bytes);
    assert_eq!(
        header(&fields, "Date"),
        Some("Tue, 1 Dec 2026 10:00:00 +0000")
    );
    assert_eq!(
        header(&fields, "From"),
        Some("Acme Support <support@popdesk.example>")
    );
    assert_eq!(
        header(&fields, "Subject"),
        Some("Re: Printer on fire [#12]")
    );
    assert_eq!(
        header(&fields, "Message-ID"),
        Some(format!("<{}>", draft.message_id).as_str())
    );
    assert_eq!(
        header(&fields, "In-Reply-To"),
        Some("<CAF+abc.1@mail.customer.example>")
    );
    assert_eq!(
        header(&fields, "References"),
        Some("<root.0@mail.customer.example> <CAF+abc.1@mail.customer.example>")
    );
    let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
    assert!(!text.contains("auto-submitted"));
}

#[test]
fn an_acknowledgement_is_auto_replied() {
    let mut draft = draft();
    draft.auto_submitted = Some(AutoSubmitted::AutoReplied);
    let bytes = compose(&draft).expect("composes");
    let fields = headers(&bytes);
    assert_eq!(header(&fields, "Auto-Submitted"), Some("auto-replied"));
    assert_eq!(header(&fields, "X-Auto-Response-Suppress"), Some("All"));
}

#[test]
fn cc_in_reply_to_and_references_are_omitted_when_empty() {
    let mut draft = draft();
    draft.in_reply_to = None;
    draft.references.clear();
    draft.quote = None;
    let bytes = compose(&draft).expect("composes");
    let names = header_names(&bytes);
    for absent in ["Cc", "In-Reply-To", "References"] {
        assert!(!names.iter().any(|n| n == absent), "{absent} in {names:?}");
    }
    let parsed = mail::parse(&bytes).expect("parses");
    assert_eq!(parsed.text_body.trim_end(), draft.body);
}

#[test]
fn cr_lf_in_any_field_never_injects_a_header() {
    const EVIL: &str = "\r\nBcc: evil@x\r\n";
    let mut draft = draft();
    draft.from.name = Some(format!("Support{EVIL}"));
    draft.to = vec![mailbox("jane@customer.example", Some(EVIL))];
    draft.cc = vec![mailbox(
        "bob@customer.example",
        Some(&format!("Bob{EVIL}X")),
    )];
    draft.subject = format!("Hello{EVIL}Subject: two");
    draft.quote = Some(Quote {
        attribution: format!("On Tuesday{EVIL}"),
        text: format!("quoted{EVIL}"),
    });
    draft.body = format!("body{EVIL}\n\rmore");
    draft.attachments = vec![Attachment {
        name: format!("a.pdf{EVIL}Content-Type: text/html"),
        content_type: format!("application/pdf{EVIL}"),
        data: EVIL.as_bytes().to_vec(),
    }];
    let bytes = compose(&draft).expect("composes");
    assert_crlf_and_line_limit(&bytes);

    // The raw header section: exactly the expected fields, none named Bcc.
    assert_eq!(
        header_names(&bytes),
        [
            "Date",
            "From",
            "To",
            "Cc",
            "Subject",
            "Message-ID",
            "In-Reply-To",
            "References",
            "MIME-Version",
            "Content-Type"
        ]
    );
    // No header section, the parts' included, has a line starting a Bcc field. (The
    // text part's body may: it is the agent's text, not a header.)
    let text = String::from_utf8_lossy(&bytes);
    let boundary = text
        .split("boundary=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("multipart");
    for part in text.split(&format!("--{boundary}")) {
        let head = part
            .trim_start_matches("\r\n")
            .split("\r\n\r\n")
            .next()
            .unwrap_or_default();
        assert!(
            !head
                .split("\r\n")
                .any(|line| line.to_ascii_lowercase().starts_with("bcc:")),
            "{head}"
        );
    }

    let parsed = mail::parse(&bytes).expect("parses");
    assert_eq!(
        parsed.subject.as_deref(),
        Some("Hello Bcc: evil@x Subject: two")
    );
    let mut everyone: Vec<String> = parsed
        .to
        .iter()
        .chain(&parsed.cc)
        .chain(&parsed.from)
        .map(|a| a.address.clone())
        .collect();
    everyone.sort();
    assert_eq!(
        everyone,
        [
            "bob@customer.example",
            "jane@customer.example",
            "support@popdesk.example"
        ]
    );
    assert_eq!(parsed.cc[0].name.as_deref(), Some("Bob Bcc: evil@x X"));
    assert_eq!(parsed.attachments.len(), 1);
    assert_eq!(
        parsed.attachments[0].name.as_deref(),
        Some("a.pdf Bcc: evil@x Content-Type: text/html")
    );
    // A content type with a line break in it is malformed, so it falls back.
    assert_eq!(
        parsed.attachments[0].content_type,
        outgoing::compose::FALLBACK_CONTENT_TYPE
    );
    assert_eq!(parsed.attachments[0].data, EVIL.as_bytes());
}

/// A change made to a draft.
type Edit = Box<dyn Fn(&mut Draft)>;

#[test]
fn cr_lf_in_an_address_or_id_is_refused() {
    const EVIL: &str = "jane@customer.example\r\nBcc: evil@x";
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|d| d.from.address = EVIL.to_owned()), "From"),
        (Box::new(|d| d.to[0].address = EVIL.to_owned()), "To"),
        (Box::new(|d| d.cc = vec![mailbox(EVIL, None)]), "Cc"),
    ];
    for (edit, field) in cases {
        let mut draft = draft();
        edit(&mut draft);
        match compose(&draft) {
            Err(ComposeError::InvalidAddress { field: f, address }) => {
                assert_eq!((f, address.as_str()), (field, EVIL));
            }
            other => panic!("{field}: {other:?}"),
        }
    }
    let ids: Vec<(Edit, &str)> = vec![
        (Box::new(|d| d.message_id = EVIL.to_owned()), "Message-ID"),
        (
            Box::new(|d| d.in_reply_to = Some(EVIL.to_owned())),
            "In-Reply-To",
        ),
        (
            Box::new(|d| d.references.push(EVIL.to_owned())),
            "References",
        ),
    ];
    for (edit, field) in ids {
        let mut draft = draft();
        edit(&mut draft);
        match compose(&draft) {
            Err(ComposeError::InvalidMessageId { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[test]
fn a_draft_without_recipients_or_with_an_impossible_date_is_refused() {
    let mut no_one = draft();
    no_one.to.clear();
    assert!(matches!(compose(&no_one), Err(ComposeError::NoRecipients)));
    let mut far = draft();
    far.date_ms = i64::MAX;
    assert!(matches!(
        compose(&far),
        Err(ComposeError::DateOutOfRange { .. })
    ));
    // Errors say what to fix in one sentence.
    let message = compose(&no_one).unwrap_err().to_string();
    assert!(message.contains("add the customer's address"), "{message}");
}

#[test]
fn non_ascii_names_and_subjects_are_encoded_words_folded_at_78() {
    let mut draft = draft();
    draft.from.name = Some("Служба поддержки клиентов компании Акме – отдел принтеров".to_owned());
    draft.to = vec![
        mailbox("jane@customer.example", Some("山田 太郎")),
        mailbox("bob@customer.example", Some("Bob \"the builder\" O'Neil")),
    ];
    draft.subject = reply_subject(
        &"Drucker brennt, und die Feuerlöscher sind leer – was nun? ".repeat(4),
        "#",
        12,
    );
    let bytes = compose(&draft).expect("composes");
    assert_folded_at_78(&bytes);
    let text = String::from_utf8(bytes.clone()).expect("the header section is ASCII");
    let section = text.split("\r\n\r\n").next().unwrap_or_default();
    for word in section
        .split([' ', '\r', '\n'])
        .filter(|w| w.starts_with("=?"))
    {
        assert!(word.len() <= 75, "{word}");
        assert!(word.starts_with("=?utf-8?q?") || word.starts_with("=?utf-8?b?"));
    }
    let fields = headers(&bytes);
    // The ticket token stays readable in the raw header, for filters and people.
    assert!(
        header(&fields, "Subject").is_some_and(|s| s.starts_with("Re: ") && s.ends_with(" [#12]")),
        "{section}"
    );
    assert!(
        header(&fields, "To").is_some_and(
            |to| to.contains("\"Bob \\\"the builder\\\" O'Neil\" <bob@customer.example>")
        ),
        "{section}"
    );

    let parsed = mail::parse(&bytes).expect("parses");
    assert_eq!(
        parsed.from.and_then(|a| a.name).as_deref(),
        draft.from.name.as_deref()
    );
    assert_eq!(parsed.to[0].name.as_deref(), Some("山田 太郎"));
    assert_eq!(
        parsed.to[1].name.as_deref(),
        Some("Bob \"the builder\" O'Neil")
    );
    assert_eq!(parsed.subject.as_deref(), Some(draft.subject.as_str()));
}

#[test]
fn body_lines_stay_within_76_characters_and_non_ascii_survives() {
    let mut draft = draft();
    draft.body = format!(
        "{}\r\nZeile mit Umlauten: äöü ß € 😀 {}\rEnde",
        "x".repeat(500),
        "ä".repeat(80)
    );
    draft.quote = None;
    let bytes = compose(&draft).expect("composes");
    assert_crlf_and_line_limit(&bytes);
    let text = String::from_utf8_lossy(&bytes);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    for line in body.split("\r\n") {
        assert!(line.len() <= 76, "{line}");
    }
    let parsed = mail::parse(&bytes).expect("parses");
    assert_eq!(
        parsed.text_body.trim_end(),
        draft.body.replace("\r\n", "\n").replace('\r', "\n")
    );
}

#[test]
fn a_reply_to_a_long_thread_carries_a_bounded_references_chain() {
    let refs: Vec<String> = (0..50).map(|i| format!("m{i}@customer.example")).collect();
    let mut draft = draft();
    draft.references = references_chain(&refs, Some("last@customer.example"), MAX_REFERENCES);
    let parsed = mail::parse(&compose(&draft).expect("composes")).expect("parses");
    assert_eq!(parsed.references.len(), MAX_REFERENCES);
    assert_eq!(parsed.references[0], "m0@customer.example");
    assert_eq!(
        parsed.references.last().map(String::as_str),
        Some("last@customer.example")
    );
}

/// Header text as the parser gives it back: controls and whitespace as one space, trimmed.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        ".{0,300}",
        Just("\r\nBcc: evil@x".to_owned()),
        "[ -~]{0,200}",
        "(=\\?utf-8\\?q\\?[a-z_=]{0,10}\\?= ?){0,4}",
    ]
}

/// Mostly addresses that pass, sometimes anything, when `anything` is set.
fn address(anything: bool) -> BoxedStrategy<String> {
    let valid = "[a-z0-9_+-]{1,10}(\\.[a-z0-9_+-]{1,10})?@[a-z0-9]{1,20}(\\.[a-z]{2,6}){0,2}";
    if anything {
        prop_oneof![
            6 => valid,
            1 => any::<String>(),
            1 => Just("jane@x\r\nBcc: evil@x".to_owned()),
        ]
        .boxed()
    } else {
        valid.boxed()
    }
}

/// Mostly ids that pass, sometimes anything, when `anything` is set.
fn id(anything: bool) -> BoxedStrategy<String> {
    let valid = "[a-zA-Z0-9.+=_$-]{1,60}@[a-z0-9.-]{1,30}";
    if anything {
        prop_oneof![
            6 => valid,
            1 => any::<String>(),
            1 => Just("a@x\r\nBcc: evil@x".to_owned()),
        ]
        .boxed()
    } else {
        valid.boxed()
    }
}

fn mailbox_strategy(anything: bool) -> impl Strategy<Value = Mailbox> {
    (address(anything), proptest::option::of(text()))
        .prop_map(|(address, name)| Mailbox { address, name })
}

prop_compose! {
    /// A draft with arbitrary text everywhere; addresses and ids valid unless
    /// `anything` is set.
    fn arbitrary_draft(anything: bool)(
        from in mailbox_strategy(anything),
        to in proptest::collection::vec(mailbox_strategy(anything), usize::from(!anything)..4),
        cc in proptest::collection::vec(mailbox_strategy(anything), 0..3),
        subject in text(),
        message_id in id(anything),
        in_reply_to in proptest::option::of(id(anything)),
        references in proptest::collection::vec(id(anything), 0..4),
        date_ms in if anything {
            prop_oneof![3 => 0i64..4_000_000_000_000, 1 => any::<i64>()].boxed()
        } else {
            (-2_000_000_000_000i64..200_000_000_000_000).boxed()
        },
        body in text(),
        quote in proptest::option::of((text(), text())),
        attachments in proptest::collection::vec(
            (text(), text(), proptest::collection::vec(any::<u8>(), 0..200)),
            0..3,
        ),
        auto in any::<bool>(),
    ) -> Draft {
        Draft {
            from, to, cc, subject, message_id, in_reply_to, references, date_ms, body,
            quote: quote.map(|(attribution, text)| Quote { attribution, text }),
            attachments: attachments
                .into_iter()
                .map(|(name, content_type, data)| Attachment { name, content_type, data })
                .collect(),
            auto_submitted: auto.then_some(AutoSubmitted::AutoReplied),
        }
    }
}

/// Checks the bytes of a composed `draft`: CRLF only, lines within limits, exactly the
/// expected header fields, and what popdesk's parser reads back.
fn check_composed(draft: &Draft, bytes: &[u8]) -> Result<(), TestCaseError> {
    assert_crlf_and_line_limit(bytes);
    assert_folded_at_78(bytes);

    let mut expected = vec!["Date", "From", "To"];
    if !draft.cc.is_empty() {
        expected.push("Cc");
    }
    expected.extend(["Subject", "Message-ID"]);
    if draft.in_reply_to.is_some() {
        expected.push("In-Reply-To");
    }
    if !draft.references.is_empty() {
        expected.push("References");
    }
    if draft.auto_submitted.is_some() {
        expected.extend(["Auto-Submitted", "X-Auto-Response-Suppress"]);
    }
    expected.extend(["MIME-Version", "Content-Type"]);
    if draft.attachments.is_empty() {
        expected.push("Content-Transfer-Encoding");
    }
    prop_assert_eq!(header_names(bytes), expected);

    let parsed = mail::parse(bytes).expect("what popdesk composes, popdesk parses");
    prop_assert_eq!(parsed.subject.unwrap_or_default(), one_line(&draft.subject));
    prop_assert_eq!(&parsed.message_id, &draft.message_id);
    prop_assert_eq!(
        parsed.in_reply_to,
        draft.in_reply_to.clone().into_iter().collect::<Vec<_>>()
    );
    prop_assert_eq!(&parsed.references, &draft.references);
    let from = parsed.from.clone().unwrap_or_default();
    let everyone_sent = std::iter::once(&draft.from)
        .chain(&draft.to)
        .chain(&draft.cc);
    let everyone_read = std::iter::once(&from).chain(&parsed.to).chain(&parsed.cc);
    prop_assert_eq!(parsed.to.len(), draft.to.len());
    prop_assert_eq!(parsed.cc.len(), draft.cc.len());
    for (read, sent) in everyone_read.zip(everyone_sent) {
        prop_assert_eq!(&read.address, &sent.address);
        let sent_name = one_line(sent.name.as_deref().unwrap_or(""));
        prop_assert_eq!(read.name.clone().unwrap_or_default(), sent_name);
    }
    prop_assert_eq!(parsed.attachments.len(), draft.attachments.len());
    for (read, sent) in parsed.attachments.iter().zip(&draft.attachments) {
        prop_assert_eq!(&read.data, &sent.data);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_draft_composes_to_well_formed_bytes_or_a_clean_error(draft in arbitrary_draft(true)) {
        match compose(&draft) {
            Ok(bytes) => check_composed(&draft, &bytes)?,
            Err(error) => {
                let message = error.to_string();
                prop_assert!(message.contains("; ") && !message.contains('\n'), "{}", message);
            }
        }
    }

    #[test]
    fn arbitrary_text_in_every_field_keeps_the_header_section_intact(
        draft in arbitrary_draft(false)
    ) {
        let bytes = compose(&draft).expect("valid addresses, ids and date compose");
        check_composed(&draft, &bytes)?;
    }
}
