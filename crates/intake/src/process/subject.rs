//! The ticket reference in a subject line: `[#1234]`, with a configurable prefix.

/// The ticket number of the first `[PREFIX<digits>]` in `subject`, if any.
///
/// Agents' replies carry it and customers keep it when they answer, so it wins over
/// every other threading clue. Only the exact bracketed form counts: a bare `#1234` in
/// a subject is too often an order or invoice number.
pub fn ticket_number(subject: &str, prefix: &str) -> Option<i64> {
    let mut rest = subject;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        if let Some(tail) = strip_prefix_ignore_case(after, prefix) {
            let digits: &str = &tail[..tail
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(tail.len())];
            if !digits.is_empty()
                && digits.len() <= 18
                && tail[digits.len()..].starts_with(']')
                && let Ok(number) = digits.parse()
            {
                return Some(number);
            }
        }
        rest = after;
    }
    None
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// The subject of a new ticket: the message's subject without leading reply and forward
/// markers (`Re:`, `Fwd:`, `AW:`, `WG:`, `SV:`, ...), or a placeholder.
pub fn ticket_subject(subject: Option<&str>) -> String {
    let mut text = subject.unwrap_or("").trim();
    loop {
        let lower = text.to_ascii_lowercase();
        let marker = [
            "re:", "fwd:", "fw:", "aw:", "wg:", "sv:", "vs:", "tr:", "rv:",
        ]
        .into_iter()
        .find(|m| lower.starts_with(m));
        match marker {
            Some(m) => text = text[m.len()..].trim_start(),
            None => break,
        }
    }
    if text.is_empty() {
        "(no subject)".to_string()
    } else {
        text.chars().take(500).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_bracketed_reference_only() {
        assert_eq!(
            ticket_number("Re: [#1234] Printer on fire", "#"),
            Some(1234)
        );
        assert_eq!(ticket_number("AW: Printer [#77]", "#"), Some(77));
        assert_eq!(ticket_number("Order #1234 missing", "#"), None);
        assert_eq!(ticket_number("[#12a] x", "#"), None);
        assert_eq!(ticket_number("[Ticket#9] x", "ticket#"), Some(9));
        assert_eq!(ticket_number("[list] [#5] x", "#"), Some(5));
        assert_eq!(ticket_number("[#99999999999999999999999]", "#"), None);
        assert_eq!(ticket_number("[#", "#"), None);
    }

    #[test]
    fn ticket_subjects_lose_reply_markers() {
        assert_eq!(ticket_subject(Some("Re: RE: Fwd: Help")), "Help");
        assert_eq!(ticket_subject(Some("AW: WG: Drucker")), "Drucker");
        assert_eq!(ticket_subject(Some("   ")), "(no subject)");
        assert_eq!(ticket_subject(None), "(no subject)");
        assert_eq!(ticket_subject(Some("Reorder")), "Reorder");
    }
}
