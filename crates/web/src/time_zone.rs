//! A user's time zone: an IANA name ("Europe/Berlin"), checked against the time zone
//! database built into popdesk (jiff's bundled copy), so times read the same on a host
//! without `/usr/share/zoneinfo` and a name accepted today is known tomorrow.

use jiff::tz::TimeZone;

/// A time zone name known to the database, in its canonical spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeZoneName(String);

/// Why a time zone name was refused, as one sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a time zone name; use a name such as Europe/Berlin, America/New_York or UTC")]
pub struct UnknownTimeZone(String);

/// The longest name accepted: the longest real one is about 30 characters.
const MAX_NAME_CHARS: usize = 64;

impl TimeZoneName {
    /// Accepts a name the database knows, in any letter case ("europe/berlin" becomes
    /// "Europe/Berlin").
    pub fn parse(text: &str) -> Result<TimeZoneName, UnknownTimeZone> {
        let text = text.trim();
        let refused = || UnknownTimeZone(text.chars().take(MAX_NAME_CHARS).collect());
        if text.is_empty() || text.chars().count() > MAX_NAME_CHARS {
            return Err(refused());
        }
        let zone = TimeZone::get(text).map_err(|_| refused())?;
        Ok(TimeZoneName(zone.iana_name().unwrap_or(text).to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The zone a stored name stands for; UTC for a name the database no longer knows.
pub(crate) fn zone_or_utc(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or(TimeZone::UTC)
}

/// Every name the database knows, sorted: what the preferences page offers.
pub(crate) fn known_names() -> Vec<String> {
    let mut names: Vec<String> = jiff::tz::db()
        .available()
        .map(|name| name.as_str().to_string())
        .collect();
    names.sort_unstable();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zone_names_are_checked_and_spelled_as_the_database_does() {
        assert_eq!(
            TimeZoneName::parse(" europe/berlin ").map(|n| n.as_str().to_string()),
            Ok("Europe/Berlin".to_string())
        );
        assert_eq!(
            TimeZoneName::parse("UTC").map(|n| n.as_str().to_string()),
            Ok("UTC".to_string())
        );
        for bad in [
            "",
            "Mars/Olympus_Mons",
            "Europe/Berlin; DROP",
            &"x".repeat(500),
        ] {
            assert!(TimeZoneName::parse(bad).is_err(), "{bad}");
        }
        assert!(known_names().iter().any(|n| n == "America/New_York"));
        assert_eq!(zone_or_utc("Nowhere/Else"), TimeZone::UTC);
    }
}
