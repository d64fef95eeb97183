//! Plain text from an HTML-only message, for the text body and reply separation.
//!
//! mail-parser's own converter runs block elements together ("Thanks,Alex",
//! "ReplyFrom: Bob"), which hides exactly the line starts reply separation looks
//! for. Rather than add a second HTML engine, this reads the output of
//! [`crate::sanitize_html`]: html5ever has already parsed, repaired and
//! entity-decoded the markup, and ammonia's serialiser writes a small, fixed form
//! (allowed tags only, no scripts or styles, every `&`, `<`, `>` escaped in text).
//! A single pass over that turns block elements into line breaks and
//! `<blockquote>` into `> ` quoting, without recursion, so no document is too
//! deep for it.

/// Converts sanitized HTML (the output of [`crate::sanitize_html`]) to text.
pub(crate) fn sanitized_html_to_text(html: &str) -> String {
    let mut w = Writer::default();
    let mut rest = html;
    while !rest.is_empty() {
        if rest.starts_with('<') {
            let end = crate::sanitize::tag_end(rest);
            let tag = rest.get(1..end.saturating_sub(1)).unwrap_or_default();
            rest = &rest[end..];
            w.tag(tag);
        } else {
            let next = rest.find('<').unwrap_or(rest.len());
            w.text(&unescape(&rest[..next]));
            rest = &rest[next..];
        }
    }
    w.finish()
}

#[derive(Default)]
struct Writer {
    lines: Vec<String>,
    line: String,
    quote_depth: usize,
    pre_depth: usize,
    pending_space: bool,
}

impl Writer {
    fn tag(&mut self, tag: &str) {
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        match name.as_str() {
            "br" => self.newline(),
            "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => self.paragraph(),
            "blockquote" => {
                self.paragraph();
                if closing {
                    self.quote_depth = self.quote_depth.saturating_sub(1);
                } else {
                    self.quote_depth += 1;
                }
            }
            "pre" => {
                self.block();
                if closing {
                    self.pre_depth = self.pre_depth.saturating_sub(1);
                } else {
                    self.pre_depth += 1;
                }
            }
            "li" => {
                self.block();
                if !closing {
                    self.line.push_str("- ");
                }
            }
            "td" | "th" if !closing && !self.line.trim().is_empty() => {
                self.pending_space = true;
            }
            "div" | "tr" | "table" | "ul" | "ol" | "dl" | "dt" | "dd" | "hr" | "center"
            | "address" | "article" | "aside" | "footer" | "header" | "section" | "figure"
            | "figcaption" | "details" | "summary" | "main" | "nav" | "hgroup" | "caption"
            | "tbody" | "thead" | "tfoot" => self.block(),
            _ => {}
        }
    }

    fn text(&mut self, text: &str) {
        for c in text.chars() {
            let c = if c == '\u{a0}' { ' ' } else { c };
            if self.pre_depth > 0 {
                if c == '\n' {
                    self.newline();
                } else if c != '\r' {
                    self.line.push(c);
                }
                continue;
            }
            if c.is_whitespace() {
                self.pending_space = true;
                continue;
            }
            if self.pending_space && !self.line.is_empty() {
                self.line.push(' ');
            }
            self.pending_space = false;
            self.line.push(c);
        }
    }

    fn newline(&mut self) {
        let mut out = "> ".repeat(self.quote_depth);
        out.push_str(self.line.trim_end());
        self.lines.push(out.trim_end().to_owned());
        self.line.clear();
        self.pending_space = false;
    }

    /// Ends the current line if it has text.
    fn block(&mut self) {
        if !self.line.trim().is_empty() {
            self.newline();
        } else {
            self.line.clear();
            self.pending_space = false;
        }
    }

    /// Ends the current line and leaves one blank line.
    fn paragraph(&mut self) {
        self.block();
        if self
            .lines
            .last()
            .is_some_and(|l| !l.trim_start_matches(['>', ' ']).is_empty())
        {
            self.lines.push(">".repeat(self.quote_depth));
        }
    }

    fn finish(mut self) -> String {
        self.block();
        let mut out: Vec<&str> = Vec::with_capacity(self.lines.len());
        for line in &self.lines {
            let blank = line.trim_start_matches(['>', ' ']).is_empty();
            if blank
                && out
                    .last()
                    .is_none_or(|l| l.trim_start_matches(['>', ' ']).is_empty())
            {
                continue;
            }
            out.push(line);
        }
        while out
            .last()
            .is_some_and(|l| l.trim_start_matches(['>', ' ']).is_empty())
        {
            out.pop();
        }
        out.join("\n")
    }
}

/// Undoes the escaping html5ever's serialiser applies to text.
fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SanitizeOptions, sanitize_html};

    fn text(html: &str) -> String {
        sanitized_html_to_text(&sanitize_html(html, &SanitizeOptions::default()))
    }

    #[test]
    fn blocks_become_lines_and_quotes_become_quotes() {
        assert_eq!(
            text(
                "<div>Hi. I am fine.</div><div>Thanks,</div><div>Alex</div><blockquote>Hello &amp; <b>bye</b></blockquote>"
            ),
            "Hi. I am fine.\nThanks,\nAlex\n\n> Hello & bye"
        );
    }

    #[test]
    fn scripts_and_styles_leave_no_text() {
        assert_eq!(
            text("<style>p{color:red}</style><script>x()</script><p>a&lt;b</p>"),
            "a<b"
        );
    }

    #[test]
    fn deep_nesting_is_fine() {
        let html = "<div>".repeat(50_000) + "x" + &"</div>".repeat(50_000);
        assert_eq!(text(&html), "x");
        let html = "<blockquote>".repeat(500) + "x";
        assert_eq!(text(&html), format!("{}x", "> ".repeat(500)));
    }
}
