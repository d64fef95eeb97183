//! How values read on a page: times, sizes, durations, sentences. Everything is
//! prepared here as text, so templates only place it and designers never meet a raw
//! millisecond count.

use cookie::time::OffsetDateTime;

/// A moment as a page shows it: `<time datetime="{iso}">{text}</time>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct When {
    /// RFC 3339 in UTC, for the `datetime` attribute (machines, screen readers).
    pub iso: String,
    /// "2026-11-26 08:00 UTC": one zone for everybody, so two agents reading a ticket
    /// see the same times.
    pub text: String,
    /// "5 minutes ago", relative to the request's clock.
    pub ago: String,
}

impl When {
    pub(crate) fn new(ms: i64, now_ms: i64) -> When {
        match OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) {
            Ok(t) => When {
                iso: format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                    t.year(),
                    u8::from(t.month()),
                    t.day(),
                    t.hour(),
                    t.minute(),
                    t.second()
                ),
                text: format!(
                    "{:04}-{:02}-{:02} {:02}:{:02} UTC",
                    t.year(),
                    u8::from(t.month()),
                    t.day(),
                    t.hour(),
                    t.minute()
                ),
                ago: ago(now_ms.saturating_sub(ms)),
            },
            // Only a corrupt row has a time outside the year range `time` knows.
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
