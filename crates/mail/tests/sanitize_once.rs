//! Parsing with the caller's sanitizer options gives the HTML the caller would get by
//! sanitizing the parsed source again with them: the processor now sanitizes once,
//! inside `parse_with`, and what agents see must not change. Checked on every message
//! of the shared corpus that has an HTML body.

mod common;

use mail::{SanitizeOptions, parse, parse_with, sanitize_html};

#[test]
fn parse_with_options_sanitizes_as_sanitizing_the_source_again_would() {
    let options = SanitizeOptions {
        cid_url_template: Some("/messages/7/cid/{content_id}".to_string()),
        ..SanitizeOptions::default()
    };
    let mut with_html = 0;
    let mut with_inline_images = 0;
    for entry in common::index() {
        let raw = common::read(&entry.file);
        let Ok(plain) = parse(&raw) else {
            continue;
        };
        let Some(source) = plain.html_source.as_deref() else {
            continue;
        };
        with_html += 1;
        let expected = sanitize_html(source, &options);
        if expected.contains("/messages/7/cid/") {
            with_inline_images += 1;
        }
        let once = parse_with(&raw, &options).unwrap_or_else(|e| panic!("{}: {e}", entry.file));
        assert_eq!(
            once.html_body.as_deref(),
            Some(expected.as_str()),
            "{}",
            entry.file
        );
        // Everything but the HTML is as `parse` gives it.
        assert_eq!(once.text_body, plain.text_body, "{}", entry.file);
        assert_eq!(once.reply_text, plain.reply_text, "{}", entry.file);
        assert_eq!(
            once.attachments.len(),
            plain.attachments.len(),
            "{}",
            entry.file
        );
    }
    assert!(
        with_html > 100,
        "only {with_html} corpus messages have HTML"
    );
    assert!(
        with_inline_images > 0,
        "no corpus message has an inline image"
    );
}
