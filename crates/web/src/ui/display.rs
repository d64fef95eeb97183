//! How values read on a page: times, sizes, durations, sentences. Everything is
//! prepared here as text, so templates only place it and designers never meet a raw
//! millisecond count.

use std::future::Future;

use jiff::Timestamp;
use jiff::tz::TimeZone;

tokio::task_local! {
    /// The time zone of the viewer whose page is being made, set around each UI request
    /// (`ui::viewer_time_zone`): every time on the page reads in it, without each of the
    /// many places that show a time passing it along.
    static VIEWER_ZONE: TimeZone;
}

/// Runs `page` with times shown in `zone`.
pub(crate) async fn in_zone<F: Future>(zone: TimeZone, page: F) -> F::Output {
    VIEWER_ZONE.scope(zone, page).await
}

/// A moment as a page shows it: `<time datetime="{iso}">{text}</time>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct When {
    /// RFC 3339 in UTC, for the `datetime` attribute (machines, screen readers).
    pub iso: String,
    /// "2026-11-26 09:00 CET": in the viewer's time zone (UTC unless they chose one),
    /// with the zone's abbreviation, so a time quoted to a colleague says which it is.
    pub text: String,
    /// "5 minutes ago", relative to the request's clock.
    pub ago: String,
}

impl When {
    /// In the viewer's time zone (UTC outside a page, or for a viewer without one).
    pub(crate) fn new(ms: i64, now_ms: i64) -> When {
        let zone = VIEWER_ZONE
            .try_with(TimeZone::clone)
            .unwrap_or(TimeZone::UTC);
        When::in_zone(ms, now_ms, zone)
    }

    pub(crate) fn in_zone(ms: i64, now_ms: i64, zone: TimeZone) -> When {
        match Timestamp::from_millisecond(ms) {
            Ok(at) => When {
                iso: at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                text: at
                    .to_zoned_datetime(zone)
                    .strftime("%Y-%m-%d %H:%M %Z")
                    .to_string(),
                ago: ago(now_ms.saturating_sub(ms)),
            },
            // Only a corrupt row has a time outside the years jiff knows.
            Err(_) => When {
                iso: String::new(),
                text: "an unknown time".to_string(),
                ago: String::new(),
            },
        }
    }
}

/// "just now", "5 minutes ago", "in 3 hours": for the times an admin scans (last poll,
/// next poll), where the distance matters more than the date.
pub(crate) fn ago(elapsed_ms: i64) -> String {
    let future = elapsed_ms < 0;
    let secs = elapsed_ms.unsigned_abs() / 1000;
    if secs < 45 {
        return if future { "in a moment" } else { "just now" }.to_string();
    }
    let (n, unit) = if secs < 90 * 60 {
        (secs.div_ceil(60).max(1), "minute")
    } else if secs < 36 * 3600 {
        ((secs + 1800) / 3600, "hour")
    } else {
        ((secs + 43_200) / 86_400, "day")
    };
    let plural = if n == 1 { "" } else { "s" };
    if future {
        format!("in {n} {unit}{plural}")
    } else {
        format!("{n} {unit}{plural} ago")
    }
}

/// "12 KB", "3.4 MB": decimal units, as mail clients show attachment sizes.
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    // Precision is not the point here; f64 holds any u64 size closely enough.
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// "0.4 s", "12 s", "3 min 5 s".
pub(crate) fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 10_000 {
        format!("{}.{} s", ms / 1000, (ms % 1000) / 100)
    } else if ms < 60_000 {
        format!("{} s", ms / 1000)
    } else {
        let secs = ms / 1000;
        format!("{} min {} s", secs / 60, secs % 60)
    }
}

/// An API error's message as a sentence on a page: capital first letter, full stop.
/// (The API's messages are written lower-case to sit inside JSON.)
pub(crate) fn sentence(text: &str) -> String {
    let text = text.trim();
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut out: String = first.to_uppercase().chain(chars).collect();
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// A person as "Name <address>", or the address alone.
pub(crate) fn person(address: Option<&str>, name: Option<&str>) -> String {
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    match (name, address) {
        (Some(name), Some(address)) => format!("{name} <{address}>"),
        (Some(name), None) => name.to_string(),
        (None, Some(address)) => address.to_string(),
        (None, None) => "an unknown sender".to_string(),
    }
}

/// Text escaped for HTML, as askama escapes it.
fn escape_html(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&#38;"),
            '<' => out.push_str("&#60;"),
            '>' => out.push_str("&#62;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Plain text (a note) as HTML with its http(s) links clickable: every part escaped,
/// each link opened in a new tab without the page's referrer or opener, and marked
/// `nofollow`. What a link ends with that is sentence punctuation stays outside it.
pub(crate) fn linked_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    loop {
        let next = ["https://", "http://"]
            .iter()
            .filter_map(|scheme| find_link_start(rest, scheme))
            .min();
        let Some(start) = next else {
            escape_html(rest, &mut out);
            return out;
        };
        escape_html(&rest[..start], &mut out);
        let tail = &rest[start..];
        let mut end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\''))
            .unwrap_or(tail.len());
        // Trailing punctuation belongs to the sentence; a closing bracket only when the
        // link did not open one.
        while end > 0 {
            let Some(last) = tail[..end].chars().next_back() else {
                break;
            };
            let unbalanced = |open: char, close: char| {
                last == close
                    && tail[..end].matches(open).count() < tail[..end].matches(close).count()
            };
            if matches!(last, '.' | ',' | ';' | ':' | '!' | '?')
                || unbalanced('(', ')')
                || unbalanced('[', ']')
            {
                end -= last.len_utf8();
            } else {
                break;
            }
        }
        let link = &tail[..end];
        if link.len() <= "https://".len() {
            escape_html(link, &mut out);
        } else {
            out.push_str("<a href=\"");
            escape_html(link, &mut out);
            out.push_str("\" rel=\"noopener noreferrer nofollow\" target=\"_blank\">");
            escape_html(link, &mut out);
            out.push_str("</a>");
        }
        rest = &tail[end..];
    }
}

/// Where a link with this scheme starts in `text`: at the start of a word only, so
/// "xhttps://" is not one.
fn find_link_start(text: &str, scheme: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find(scheme).map(|at| at + from) {
        let before = text[..at].chars().next_back();
        if before.is_none_or(|c| !c.is_alphanumeric()) {
            return Some(at);
        }
        from = at + scheme.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_in_utc_with_a_distance() {
        // 2027-01-15T08:00:00Z
        let when = When::new(1_800_000_000_000, 1_800_000_000_000 + 5 * 60_000);
        assert_eq!(when.iso, "2027-01-15T08:00:00Z");
        assert_eq!(when.text, "2027-01-15 08:00 UTC");
        assert_eq!(when.ago, "5 minutes ago");
        assert_eq!(ago(-2 * 3_600_000), "in 2 hours");
        assert_eq!(ago(1000), "just now");
        assert_eq!(ago(3 * 86_400_000), "3 days ago");
    }

    #[test]
    fn links_in_notes_are_clickable_and_everything_else_is_escaped() {
        assert_eq!(
            linked_text("See https://example.com/a?b=1&c=2. Or <b>not</b>"),
            "See <a href=\"https://example.com/a?b=1&#38;c=2\" rel=\"noopener noreferrer nofollow\" \
             target=\"_blank\">https://example.com/a?b=1&#38;c=2</a>. Or &#60;b&#62;not&#60;/b&#62;"
        );
        assert_eq!(
            linked_text("(docs: http://wiki.example/Page_(x))"),
            "(docs: <a href=\"http://wiki.example/Page_(x)\" rel=\"noopener noreferrer nofollow\" \
             target=\"_blank\">http://wiki.example/Page_(x)</a>)"
        );
        assert_eq!(
            linked_text("javascript:alert(1) xhttps://a.example https://"),
            "javascript:alert(1) xhttps://a.example https://"
        );
        assert_eq!(
            linked_text("\"https://a.example/\"onmouseover=x"),
            "&#34;<a href=\"https://a.example/\" rel=\"noopener noreferrer nofollow\" \
             target=\"_blank\">https://a.example/</a>&#34;onmouseover=x"
        );
    }

    #[tokio::test]
    async fn times_read_in_the_viewers_time_zone_with_its_abbreviation() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        // 2027-01-15T08:00:00Z: winter, CET.
        let winter = in_zone(berlin.clone(), async { When::new(1_800_000_000_000, 0) }).await;
        assert_eq!(winter.text, "2027-01-15 09:00 CET");
        assert_eq!(winter.iso, "2027-01-15T08:00:00Z", "machines read UTC");
        // Six months on: summer time.
        let summer = When::in_zone(1_800_000_000_000 + 182 * 86_400_000, 0, berlin);
        assert!(summer.text.ends_with("CEST"), "{}", summer.text);
        let new_york = When::in_zone(
            1_800_000_000_000,
            0,
            TimeZone::get("America/New_York").unwrap(),
        );
        assert_eq!(new_york.text, "2027-01-15 03:00 EST");
        // Outside a page: UTC.
        assert_eq!(When::new(1_800_000_000_000, 0).text, "2027-01-15 08:00 UTC");
    }

    #[test]
    fn sizes_and_durations_read_like_a_mail_client() {
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(12_345), "12 KB");
        assert_eq!(size(3_400_000), "3.4 MB");
        assert_eq!(duration(420), "0.4 s");
        assert_eq!(duration(185_000), "3 min 5 s");
    }

    #[test]
    fn api_messages_become_sentences() {
        assert_eq!(sentence("there is no ticket #5"), "There is no ticket #5.");
        assert_eq!(sentence("Done!"), "Done!");
        assert_eq!(sentence(""), "");
    }
}
