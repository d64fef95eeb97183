//! The subject of a reply: `Re: <ticket subject> [#N]`.

use super::headers::one_line;

/// Reply markers stripped from the front of a subject, compared without case, so
/// `Re:`, `RE:`, `AW:`, `Aw:`, `SV:`, `Antw:` never pile up into `Re: Re: AW:`.
/// Forward markers (`Fwd:`) are kept: a forwarded mail's subject is what it is about.
const REPLY_MARKERS: [&str; 4] = ["re", "aw", "sv", "antw"];

/// The subject of a reply on ticket `number`: `Re: <ticket subject> [<prefix><number>]`.
///
/// - The ticket subject is made one line (control characters become spaces).
/// - Leading reply markers (`Re:`, `RE:`, `Aw:`, `AW:`, `Sv:`, `Antw:`, also with a
///   count such as `Re[2]:`) are removed however often repeated, so exactly one `Re: `
///   leads.
/// - Every `[<prefix><digits>]` token is removed, this ticket's and any other's, then
///   this ticket's is appended once. Another ticket's token must go too: the intake
///   threads by the *first* token in a subject, so `Re: Merge with [#7] [#12]` would
///   file the customer's answer on ticket 7.
/// - An empty subject gives `Re: [#N]`: no invented placeholder text in a language the
///   customer may not read (the intake already names subject-less tickets).
///
/// The prefix is compared without ASCII case, as the intake reads it.
pub fn reply_subject(ticket_subject: &str, prefix: &str, number: i64) -> String {
    let prefix = one_line(prefix);
    let mut text = one_line(ticket_subject);
    loop {
        let before = text.len();
        text = strip_reply_markers(&text).to_owned();
        text = remove_ticket_tokens(&text, &prefix);
        if text.len() == before {
            break;
        }
    }
    let token = format!("[{prefix}{number}]");
    if text.is_empty() {
        format!("Re: {token}")
    } else {
        format!("Re: {text} {token}")
    }
}

/// `text` without leading reply markers, e.g. `RE: Aw:Re[3]: x` → `x`.
fn strip_reply_markers(mut text: &str) -> &str {
    'outer: loop {
        for marker in REPLY_MARKERS {
            let Some(rest) = text
                .get(..marker.len())
                .filter(|head| head.eq_ignore_ascii_case(marker))
                .map(|_| &text[marker.len()..])
            else {
                continue;
            };
            // An optional count, `Re[2]:` or `Re(2):`.
            let rest = skip_count(rest.trim_start_matches(' '));
            if let Some(rest) = rest.trim_start_matches(' ').strip_prefix(':') {
                text = rest.trim_start();
                continue 'outer;
            }
        }
        return text;
    }
}

fn skip_count(text: &str) -> &str {
    for (open, close) in [('[', ']'), ('(', ')')] {
        if let Some(inner) = text.strip_prefix(open)
            && let Some(end) = inner.find(close)
            && end > 0
            && inner[..end].bytes().all(|b| b.is_ascii_digit())
        {
            return &inner[end + 1..];
        }
    }
    text
}

/// `text` with every `[<prefix><digits>]` removed and the spaces around it collapsed.
fn remove_ticket_tokens(text: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let token_len = after
            .get(..prefix.len())
            .filter(|head| head.eq_ignore_ascii_case(prefix))
            .and_then(|_| {
                let tail = &after[prefix.len()..];
                let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
                (digits > 0 && tail[digits..].starts_with(']')).then_some(prefix.len() + digits + 1)
            });
        match token_len {
            Some(len) => rest = &after[len..],
            None => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    one_line(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_subject_is_re_subject_and_the_token() {
        assert_eq!(
            reply_subject("Printer on fire", "#", 12),
            "Re: Printer on fire [#12]"
        );
    }

    #[test]
    fn repeated_reply_markers_in_any_case_give_one_re() {
        for subject in [
            "Re: Printer on fire",
            "RE: Re: Printer on fire",
            "Aw: AW: re:Printer on fire",
            "SV: Antw: Re[2]: Printer on fire",
            "Re (3): Printer on fire",
            "re : Printer on fire",
        ] {
            assert_eq!(
                reply_subject(subject, "#", 12),
                "Re: Printer on fire [#12]",
                "{subject}"
            );
        }
    }

    #[test]
    fn the_ticket_token_appears_exactly_once() {
        for subject in [
            "Re: Printer on fire [#12]",
            "[#12] Re: Printer on fire",
            "Re: [#12] Re: Printer on fire [#12]",
            "RE: Printer [#12] on fire",
        ] {
            let reply = reply_subject(subject, "#", 12);
            assert_eq!(reply.matches("[#12]").count(), 1, "{reply}");
            assert!(reply.starts_with("Re: Printer"), "{reply}");
            assert!(!reply.contains("Re: Re:"), "{reply}");
        }
        assert_eq!(reply_subject("Re: x [#123]", "#", 12), "Re: x [#12]");
    }

    #[test]
    fn another_tickets_token_is_removed_so_the_answer_threads_here() {
        assert_eq!(
            reply_subject("Merge with [#7] please", "#", 12),
            "Re: Merge with please [#12]"
        );
        // Other bracketed text stays.
        assert_eq!(
            reply_subject("[list] x [#a1] [#]", "#", 12),
            "Re: [list] x [#a1] [#] [#12]"
        );
    }

    #[test]
    fn the_prefix_is_configurable_and_compared_without_case() {
        assert_eq!(
            reply_subject("Re: x [ticket#5]", "Ticket#", 5),
            "Re: x [Ticket#5]"
        );
    }

    #[test]
    fn forward_markers_are_kept() {
        assert_eq!(
            reply_subject("Fwd: invoice", "#", 3),
            "Re: Fwd: invoice [#3]"
        );
    }

    #[test]
    fn an_empty_subject_gives_re_and_the_token() {
        assert_eq!(reply_subject("", "#", 4), "Re: [#4]");
        assert_eq!(reply_subject(" Re: RE: [#4] ", "#", 4), "Re: [#4]");
    }

    #[test]
    fn line_breaks_in_a_subject_become_spaces() {
        assert_eq!(
            reply_subject("a\r\nBcc: evil@x", "#", 1),
            "Re: a Bcc: evil@x [#1]"
        );
    }
}
