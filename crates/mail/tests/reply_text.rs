//! The new part of a reply, told apart from quoted history, on real replies from
//! the corpus (mailgun/talon's fixtures with talon's expected results in
//! `talon/EXPECTED.tsv`) and on hand-made cases for the rules in between.

mod common;

use mail::{parse, split_reply};

fn squash(s: &str) -> String {
    s.replace("\\n", "")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// `talon/EXPECTED.tsv`: file, what is compared, expected, source.
fn expectations() -> Vec<(String, String, String)> {
    let text = String::from_utf8(common::read("talon/EXPECTED.tsv")).expect("utf-8");
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            Some((
                (*cols.first()?).to_owned(),
                (*cols.get(1)?).to_owned(),
                (*cols.get(2)?).to_owned(),
            ))
        })
        .collect()
}

fn html_mail(html: &[u8]) -> Vec<u8> {
    let mut raw = b"From: alex@example.com\r\nSubject: Re: Test message\r\nContent-Type: text/html; charset=utf-8\r\n\r\n".to_vec();
    raw.extend_from_slice(html);
    raw
}

#[test]
fn standard_replies_from_common_clients_keep_only_the_new_text() {
    let mut checked = 0;
    for (file, what, expected) in expectations() {
        if !what.starts_with("plain:") {
            continue;
        }
        let message = parse(&common::read(&format!("talon/{file}"))).expect("parses");
        if file.contains("sparrow") {
            // talon keeps the signature in the reply; popdesk cuts it off and
            // keeps it apart.
            assert_eq!(message.reply_text, "Hello", "{file}");
            let split = split_reply(&message.text_body);
            let signature = split.signature.unwrap_or_default();
            assert!(
                signature.contains("Sent with Sparrow"),
                "{file}: {signature}"
            );
            assert!(expected.contains("Sent with Sparrow"));
        } else {
            assert_eq!(message.reply_text, expected, "{file}");
        }
        // The full body is always kept.
        assert!(message.text_body.len() > message.reply_text.len(), "{file}");
        checked += 1;
    }
    assert_eq!(checked, 7, "talon's seven standard replies");
}

#[test]
fn html_replies_from_common_clients_keep_only_the_new_text() {
    let mut checked = 0;
    for (file, what, expected) in expectations() {
        if !what.starts_with("html body (not a message)") {
            continue;
        }
        let message = parse(&html_mail(&common::read(&format!("talon/{file}")))).expect("parses");
        assert_eq!(
            squash(&message.reply_text),
            squash(&expected),
            "{file}: {:?}",
            message.reply_text
        );
        checked += 1;
    }
    assert_eq!(checked, 6, "talon's six HTML replies");
}

#[test]
fn outlook_and_hr_separated_html_replies_drop_the_header_block() {
    let olk = parse(&html_mail(&common::read("talon/OLK_SRC_BODY_SECTION.html"))).expect("parses");
    assert_eq!(olk.reply_text, "Reply");
    let hr = parse(&html_mail(&common::read(
        "talon/reply-separated-by-hr.html",
    )))
    .expect("parses");
    // talon also drops "Bob" above the rule; popdesk keeps it as part of the reply.
    assert!(
        hr.reply_text.starts_with("Hi\nthere"),
        "{:?}",
        hr.reply_text
    );
    assert!(!hr.reply_text.contains("From:"), "{:?}", hr.reply_text);
}

#[test]
fn yahoo_share_block_reply_keeps_text_and_drops_headers() {
    let message = parse(&common::read("talon/reply-quotations-share-block.eml")).expect("parses");
    assert!(!message.reply_text.is_empty());
    assert!(
        !message.reply_text.contains("From"),
        "{:?}",
        message.reply_text
    );
    assert!(
        !message.reply_text.contains("wrote:"),
        "{:?}",
        message.reply_text
    );
}

#[test]
fn corpus_replies_never_lose_everything() {
    // Every message tagged as a reply or quoting text ends with a non-empty reply
    // text when its body is non-empty, and the reply is a part of the body.
    let mut tagged = common::tagged("reply");
    tagged.extend(common::tagged("quoted-text"));
    assert!(tagged.len() > 50);
    for entry in tagged {
        let message = parse(&common::read(&entry.file)).expect("parses");
        if message.text_body.trim().is_empty() {
            continue;
        }
        assert!(!message.reply_text.is_empty(), "{}", entry.file);
        let first_line = message.reply_text.lines().next().unwrap_or_default();
        assert!(
            message.text_body.contains(first_line.trim()),
            "{}: reply {:?} not from the body",
            entry.file,
            first_line
        );
    }
}

#[test]
fn a_reply_to_a_forward_cuts_at_the_reply_not_the_forward() {
    let text = "Done, thanks.\n\nOn Tue, 3 Apr 2012 at 16:55, Support <support@popdesk.example> wrote:\n> ---------- Forwarded message ---------\n> From: Bob\n";
    assert_eq!(split_reply(text).reply, "Done, thanks.");
}

#[test]
fn a_forwarded_message_is_kept_whole() {
    let raw = b"From: agent@example.com\nSubject: Fwd: printer broken\n\nPlease handle.\n\n---------- Forwarded message ---------\nFrom: Customer <c@example.org>\nDate: Mon, 2 Apr 2012 17:44\nSubject: printer broken\nTo: agent@example.com\n\nMy printer is broken.\n";
    let message = parse(raw).expect("parses");
    assert!(message.reply_text.contains("My printer is broken."));
}

#[test]
fn localized_attributions_are_recognised() {
    for (attribution, lang) in [
        (
            "Am 02.04.2012 um 18:26 schrieb Bob <bob@example.com>:",
            "de",
        ),
        (
            "Le 2 avr. 2012 à 18:26, Bob <bob@example.com> a écrit :",
            "fr",
        ),
        (
            "El 2 abr 2012, a las 18:26, Bob <bob@example.com> escribió:",
            "es",
        ),
        (
            "Il giorno 2 apr 2012, alle ore 18:26, Bob ha scritto:",
            "it",
        ),
        (
            "Op 2 apr. 2012 om 18:26 heeft Bob <bob@example.com> het volgende geschreven:",
            "nl",
        ),
        (
            "2 апреля 2012 г., 18:26 пользователь Bob <bob@example.com> написал:",
            "ru",
        ),
    ] {
        let text = format!("Danke.\n\n{attribution}\n\n> Hallo\n");
        assert_eq!(split_reply(&text).reply, "Danke.", "{lang}");
    }
}
