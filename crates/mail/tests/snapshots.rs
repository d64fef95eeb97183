//! Snapshots of the parsed model (and its classification) for corpus messages
//! chosen to cover every tag in `INDEX.tsv`: charsets, broken structure, bounces,
//! auto-replies, forwards, inline images, winmail.dat, ... A change in what
//! popdesk makes of real mail shows up here as a reviewable diff.
//!
//! The test checks the choice still covers every tag, so a new kind of mail added
//! to the corpus asks for a message here.

mod common;

use std::collections::BTreeSet;

use mail::{ClassifyContext, ParsedMessage, classify, parse};
use serde::Serialize;

/// At least one message per tag, picked greedily (rarest tags first), plus a few
/// more of the kinds a helpdesk sees most.
const CHOSEN: &[&str] = &[
    "mikel-mail/error_emails__content_transfer_encoding_empty.eml",
    "chatmail-core/tlsrpt.eml",
    "php-mime-mail-parser/failure.eml",
    "mimekit/yenc__simple.eml",
    "flanker/message-external-body.eml",
    "php-mime-mail-parser/m0020.eml",
    "mime-tools-via-mime4j/russian.eml",
    "stalwart-mail-parser/thirdparty__015.eml",
    "php-mime-mail-parser/issue149.eml",
    "mikel-mail/mime_emails__raw_email7.eml",
    "sisimai-set-of-emails/maildir__bsd__rfc3834-01.eml",
    "sisimai-set-of-emails/maildir__mac__arf-01.eml",
    "chatmail-core/ms_exchange_report_disposition_notification.eml",
    "sisimai-set-of-emails/maildir__bsd__lhost-postfix-09.eml",
    "stalwart-mail-parser/malformed__018.eml",
    "php-mime-mail-parser/issue115.eml",
    "mimekit/partial__message-partial.0.eml",
    "zbateson-mail-mime-parser/m2010.eml",
    "mikel-mail/multi_charset__ks_c_5601-1987.eml",
    "mimekit/tnef__rich-text.eml",
    "chatmail-core/messed_up_message_id.eml",
    "sisimai-set-of-emails/maildir__bsd__lhost-exchange2007-04.eml",
    "talon/OLK_SRC_BODY_SECTION.html",
    "chatmail-core/attach_filename_simple.eml",
    "chatmail-core/gmx-quote-body.eml",
    "chatmail-core/attach_filename_apostrophed.eml",
    "sisimai-set-of-emails/maildir__bsd__lhost-outlook-01.eml",
    "chatmail-core/apple_cid_jpg.eml",
    "chatmail-core/allinkl-quote.eml",
    "chatmail-core/attached-eml.eml",
    "chatmail-core/mailinglist_with_mimepart_footer_signed.eml",
    "chatmail-core/many_images_amazon_via_apple_mail.eml",
    "chatmail-core/cp1252-html.eml",
    "chatmail-core/gmx-forward.eml",
    "chatmail-core/dsn_relayed.eml",
    "chatmail-core/gmail_ndn.eml",
    "chatmail-core/gmail_ndn_group.eml",
    "chatmail-core/gmx_ndn.eml",
    "mime-tools-via-mime4j/bluedot-postcard.eml",
    "php-mime-mail-parser/m0129.eml",
    "sisimai-set-of-emails/maildir__bsd__lhost-amazonworkmail-01.eml",
    "sisimai-set-of-emails/maildir__bsd__lhost-amazonworkmail-03.eml",
    "chatmail-core/attach_filename_apostrophed_cont.eml",
    "chatmail-core/attach_filename_apostrophed_cp1252.eml",
    "chatmail-core/invalid_email_to.eml",
    "flanker/from-encoding.eml",
    "flanker/apache-message-news-mime.eml",
    "mikel-mail/error_emails__bad_date_header.eml",
    "sisimai-set-of-emails/maildir__bsd__rfc3834-03.eml",
    "sisimai-set-of-emails/maildir__bsd__rfc3834-05.eml",
    "chatmail-core/gmx-quote.eml",
    "chatmail-core/mailinglist_dpd.eml",
    "chatmail-core/big_forwarded_with_big_attachment.eml",
    "chatmail-core/ndn_with_attachment.eml",
    "chatmail-core/posteo_ndn.eml",
    "chatmail-core/testrun_ndn.eml",
    "flanker/disposition-notification.eml",
    "mimekit/messages__disposition-notification.anonymized.eml",
    "flanker/complaints__aol.eml",
    "sisimai-set-of-emails/maildir__bsd__arf-01.eml",
    "chatmail-core/issue_523.eml",
    "chatmail-core/mailparse-0.16.0-panic.eml",
    "sisimai-set-of-emails/maildir__bsd__lhost-activehunter-01.eml",
    "sisimai-set-of-emails/maildir__bsd__lhost-amavis-01.eml",
    "sisimai-set-of-emails/maildir__bsd__lhost-outlook-02.eml",
    "sisimai-set-of-emails/maildir__bsd__lhost-outlook-03.eml",
    "mikel-mail/error_emails__invalid_subject_characters.eml",
    "php-mime-mail-parser/m0021.eml",
    "mime4j/testmsgs__very-long-boundary.eml",
    "mime4j/testmsgs__weird-boundary.eml",
    "flanker/bounce__office365.eml",
    "flanker/outlook-express.eml",
    "django-helpdesk/pgp.eml",
    "django-helpdesk/quoted_printable.eml",
    "flanker/iphone.eml",
    "mikel-mail/attachment_emails__attachment_content_disposition.eml",
    "talon/standard_replies__gmail.eml",
    "talon/standard_replies__sparrow.eml",
];

/// Long bodies are cut in snapshots; the corpus test covers the rest.
const TEXT_LIMIT: usize = 1200;

fn cut(text: &str) -> String {
    if text.len() <= TEXT_LIMIT {
        return text.to_owned();
    }
    let mut end = TEXT_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes in all]", &text[..end], text.len())
}

#[derive(Serialize)]
struct View<'a> {
    file: &'a str,
    #[serde(flatten)]
    message: ParsedMessage,
    classification: mail::Classification,
}

fn view<'a>(file: &'a str, message: &ParsedMessage, raw: &[u8]) -> View<'a> {
    let classification = classify(
        message,
        raw,
        &ClassifyContext {
            own_addresses: vec!["support@popdesk.example".into()],
        },
    );
    let mut shown = message.clone();
    shown.text_body = cut(&shown.text_body);
    shown.reply_text = cut(&shown.reply_text);
    shown.html_body = shown.html_body.as_deref().map(cut);
    shown.html_source = shown
        .html_source
        .as_deref()
        .map(|h| format!("[{} bytes]", h.len()));
    View {
        file,
        message: shown,
        classification,
    }
}

#[test]
fn chosen_messages_cover_every_corpus_tag() {
    let index = common::index();
    let all: BTreeSet<&str> = index
        .iter()
        .flat_map(|e| e.tags.iter().map(String::as_str))
        .collect();
    let covered: BTreeSet<&str> = index
        .iter()
        .filter(|e| CHOSEN.contains(&e.file.as_str()))
        .flat_map(|e| e.tags.iter().map(String::as_str))
        .collect();
    let missing: Vec<&&str> = all.difference(&covered).collect();
    assert!(missing.is_empty(), "tags without a snapshot: {missing:?}");
    assert!(CHOSEN.len() >= 60, "only {} snapshots", CHOSEN.len());
    for file in CHOSEN {
        assert!(
            index.iter().any(|e| e.file == *file),
            "{file} is not in INDEX.tsv"
        );
    }
}

#[test]
fn parsed_model_snapshots() {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_snapshot_path("snapshots");
    let _guard = settings.bind_to_scope();
    for file in CHOSEN {
        let raw = common::read(file);
        let message = parse(&raw).unwrap_or_else(|e| panic!("{file}: {e}"));
        let name = file.replace(['/', '.'], "_");
        insta::assert_yaml_snapshot!(name, view(file, &message, &raw));
    }
}
