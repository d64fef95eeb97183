//! Lenient reading of `Date` headers mail-parser gives up on.
//!
//! Old and hand-rolled mailers still write RFC 822's obsolete forms: two-digit
//! years (`20 Dec 95`), named zones (`CST`), no zone at all, or no seconds. A
//! ticket sorted by a date we could have read is better than one with none, so
//! these are read here; anything without a day, a month name, a year and a time
//! is still no date.

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// Milliseconds since the Unix epoch for a loosely RFC 5322 date, or `None`.
pub(crate) fn parse_lenient(value: &str) -> Option<i64> {
    let mut day = None;
    let mut month = None;
    let mut year = None;
    let mut time = None;
    let mut offset_minutes = 0i64;
    let mut pm = None;
    for token in value
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .take(16)
    {
        let lower = token.to_ascii_lowercase();
        if token.contains(':') && time.is_none() {
            time = parse_time(token);
        } else if let Some(m) = MONTHS.iter().position(|m| lower.starts_with(m)) {
            month.get_or_insert(m as u32 + 1);
        } else if lower == "am" || lower == "pm" {
            pm = Some(lower == "pm");
        } else if (token.starts_with('+') || token.starts_with('-')) && token.len() == 5 {
            let sign = if token.starts_with('-') { -1 } else { 1 };
            let digits: i64 = token.get(1..)?.parse().ok()?;
            offset_minutes = sign * ((digits / 100) * 60 + digits % 100);
        } else if let Some(z) = named_zone(&lower) {
            offset_minutes = z * 60;
        } else if token.chars().all(|c| c.is_ascii_digit()) && token.len() <= 4 {
            let n: i64 = token.parse().ok()?;
            if token.len() <= 2 && day.is_none() {
                day = Some(n);
            } else if year.is_none() {
                year = Some(match token.len() {
                    1 | 2 if n < 50 => 2000 + n,
                    1..=3 => 1900 + n,
                    _ => n,
                });
            }
        }
    }
    let (day, month, year, (mut hour, minute, second)) = (day?, month?, year?, time?);
    match pm {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        _ => {}
    }
    if !(1..=31).contains(&day) || !(1900..=3000).contains(&year) || hour > 23 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000)
}

fn parse_time(token: &str) -> Option<(i64, i64, i64)> {
    let mut parts = token.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let s: i64 = parts.next().map_or(Some(0), |s| s.parse().ok())?;
    (h <= 23 && m <= 59 && s <= 60).then_some((h, m, s))
}

/// RFC 822 zone names (and the few more mailers write), in hours east of UTC.
fn named_zone(name: &str) -> Option<i64> {
    Some(match name.trim_matches(|c| c == '(' || c == ')') {
        "ut" | "utc" | "gmt" | "z" => 0,
        "est" => -5,
        "edt" => -4,
        "cst" => -6,
        "cdt" => -5,
        "mst" => -7,
        "mdt" => -6,
        "pst" => -8,
        "pdt" => -7,
        "cet" | "met" | "bst" => 1,
        "cest" | "mest" => 2,
        _ => return None,
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obsolete_forms_are_read() {
        // 1995-12-21T01:59:00Z
        assert_eq!(
            parse_lenient("Wed, 20 Dec 95 19:59 CST"),
            Some(819_511_140_000)
        );
        // No zone: read as UTC.
        assert_eq!(
            parse_lenient("Wed, 15 Feb 1995 09:38:18"),
            Some(792_841_098_000)
        );
        assert_eq!(
            parse_lenient("May 8, 2005 1:17 PM"),
            Some(1_115_558_220_000)
        );
        assert_eq!(
            parse_lenient("Thu, 1 Jan 1970 00:00:00 +0100"),
            Some(-3_600_000)
        );
    }

    #[test]
    fn garbage_is_no_date() {
        assert_eq!(parse_lenient("Whenever"), None);
        assert_eq!(parse_lenient("Pn, 29 paX 2007 21:13:00 +0100"), None);
        assert_eq!(parse_lenient(""), None);
    }
}
