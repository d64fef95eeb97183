//! The RFC 5322 `Date` header, always in UTC.

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The years a Date header is written for. RFC 5322 wants four digits and a year
/// from 1900 on; anything outside is a bug in the caller's clock, not a date to send.
pub(crate) const YEARS: std::ops::RangeInclusive<i64> = 1900..=9999;

/// `ms` since the Unix epoch as `Tue, 1 Dec 2026 10:00:00 +0000`, or `None` outside
/// [`YEARS`].
///
/// UTC rather than the server's zone: the composer owns no clock or time zone, and the
/// customer's client shows the time in theirs anyway.
pub(crate) fn rfc5322_date(ms: i64) -> Option<String> {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    if !YEARS.contains(&year) {
        return None;
    }
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[usize::try_from((days + 4).rem_euclid(7)).ok()?];
    let month = MONTHS[usize::try_from(month - 1).ok()?];
    Some(format!(
        "{weekday}, {day} {month} {year:04} {:02}:{:02}:{:02} +0000",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    ))
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_in_utc_with_weekday() {
        assert_eq!(
            rfc5322_date(0).as_deref(),
            Some("Thu, 1 Jan 1970 00:00:00 +0000")
        );
        // 2026-12-01T10:00:00Z
        assert_eq!(
            rfc5322_date(1_796_119_200_000).as_deref(),
            Some("Tue, 1 Dec 2026 10:00:00 +0000")
        );
        // A leap day, and milliseconds dropped.
        assert_eq!(
            rfc5322_date(951_827_696_999).as_deref(),
            Some("Tue, 29 Feb 2000 12:34:56 +0000")
        );
        assert_eq!(
            rfc5322_date(-1_000).as_deref(),
            Some("Wed, 31 Dec 1969 23:59:59 +0000")
        );
    }

    #[test]
    fn dates_outside_four_digit_years_are_refused() {
        assert_eq!(rfc5322_date(i64::MAX), None);
        assert_eq!(rfc5322_date(i64::MIN), None);
        assert_eq!(rfc5322_date(253_402_300_800_000), None); // year 10000
        assert!(rfc5322_date(253_402_300_799_000).is_some());
    }
}
