//! The text of a reply: what the agent wrote, then the customer's message quoted.

use super::Quote;
use super::headers::one_line;

/// The reply's text with CRLF line ends (bare CR and LF normalised), ending in CRLF:
/// the agent's text, a blank line, the attribution, and the customer's text with each
/// line prefixed `> ` (an empty line just `>`).
///
/// Trailing blank lines of the body and the quote are dropped so the blank line
/// between them is exactly one. The attribution is one line (line breaks in it become
/// spaces), as mail clients write it and popdesk's own reply splitter recognises it.
pub(crate) fn reply_text(body: &str, quote: Option<&Quote>) -> String {
    let mut out = String::with_capacity(body.len() + quote.map_or(0, |q| q.text.len() * 2));
    let body_lines = lines(body);
    for line in &body_lines {
        out.push_str(&printable(line));
        out.push_str("\r\n");
    }
    let Some(quote) = quote else {
        return out;
    };
    let attribution = one_line(&quote.attribution);
    let quoted = lines(&quote.text);
    if attribution.is_empty() && quoted.is_empty() {
        return out;
    }
    if !body_lines.is_empty() {
        out.push_str("\r\n");
    }
    if !attribution.is_empty() {
        out.push_str(&attribution);
        out.push_str("\r\n");
    }
    for line in quoted {
        if line.is_empty() {
            out.push('>');
        } else {
            out.push_str("> ");
            out.push_str(&printable(line));
        }
        out.push_str("\r\n");
    }
    out
}

/// A line without control characters other than tab: a NUL or an escape in a text part
/// would make mail programs (popdesk's own among them) take the part for a binary file.
fn printable(line: &str) -> std::borrow::Cow<'_, str> {
    if line.chars().any(|c| c.is_control() && c != '\t') {
        line.chars()
            .filter(|c| !c.is_control() || *c == '\t')
            .collect::<String>()
            .into()
    } else {
        line.into()
    }
}

/// The lines of `text` split at CRLF, bare CR or bare LF, trailing empty lines dropped.
fn lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = Vec::new();
    let mut rest = text;
    while let Some(end) = rest.find(['\r', '\n']) {
        lines.push(&rest[..end]);
        let skip = if rest[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
    }
    lines.push(rest);
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_lf_and_cr_in_the_body_become_crlf() {
        assert_eq!(reply_text("a\nb\rc\r\nd", None), "a\r\nb\r\nc\r\nd\r\n");
        assert_eq!(reply_text("a\r\r\nb", None), "a\r\n\r\nb\r\n");
    }

    #[test]
    fn the_quote_follows_a_blank_line_with_attribution_and_prefixes() {
        let quote = Quote {
            attribution: "On Tue, 1 Dec 2026 10:00, Jane <j@x> wrote:".into(),
            text: "Hello,\n\nmy printer\r\n> older\n\n".into(),
        };
        assert_eq!(
            reply_text("Thanks!\n\n", Some(&quote)),
            "Thanks!\r\n\r\nOn Tue, 1 Dec 2026 10:00, Jane <j@x> wrote:\r\n\
             > Hello,\r\n>\r\n> my printer\r\n> > older\r\n"
        );
    }

    #[test]
    fn an_empty_quote_adds_nothing() {
        let quote = Quote {
            attribution: " ".into(),
            text: "\n".into(),
        };
        assert_eq!(reply_text("Hi", Some(&quote)), "Hi\r\n");
    }

    #[test]
    fn an_empty_body_is_an_empty_text() {
        assert_eq!(reply_text("", None), "");
        assert_eq!(reply_text("\n\n", None), "");
    }
}
