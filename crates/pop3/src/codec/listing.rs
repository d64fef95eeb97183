//! The lines of `STAT`, `LIST` and `UIDL` replies.

use crate::types::{ListEntry, Stat, Uid, UidlEntry};

fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| *b == b' ' || *b == b'\t')
        .filter(|field| !field.is_empty())
}

fn number<T: std::str::FromStr>(field: Option<&[u8]>) -> Option<T> {
    std::str::from_utf8(field?).ok()?.parse().ok()
}

/// `count size` (the text of `+OK` to `STAT`); trailing words are allowed.
pub fn parse_stat(text: &[u8]) -> Option<Stat> {
    let mut fields = fields(text);
    Some(Stat {
        count: number(fields.next())?,
        size: number(fields.next())?,
    })
}

/// `number size`, from `LIST` or `LIST n`; trailing words are allowed (RFC 1939).
pub fn parse_list_entry(line: &[u8]) -> Option<ListEntry> {
    let mut fields = fields(line);
    Some(ListEntry {
        number: number(fields.next())?,
        size: number(fields.next())?,
    })
}

/// `number uid`, from `UIDL` or `UIDL n`. The id is taken leniently: everything after the
/// number and its separating space, trimmed, of any length and any octets but line ends.
pub fn parse_uidl_entry(line: &[u8]) -> Option<UidlEntry> {
    let line = line.trim_ascii();
    let split = line.iter().position(|b| *b == b' ' || *b == b'\t')?;
    let number = number(Some(&line[..split]))?;
    let uid = line[split..].trim_ascii();
    if uid.is_empty() {
        return None;
    }
    Some(UidlEntry {
        number,
        uid: Uid::from_octets(uid),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_list_uidl() {
        assert_eq!(
            parse_stat(b"2 320"),
            Some(Stat {
                count: 2,
                size: 320
            })
        );
        assert_eq!(parse_stat(b"two 320"), None);
        assert_eq!(
            parse_list_entry(b"1 120 extra"),
            Some(ListEntry {
                number: 1,
                size: 120
            })
        );
        let long = "x".repeat(300);
        let entry = parse_uidl_entry(format!("3 {long}").as_bytes()).unwrap();
        assert_eq!(entry.number, 3);
        assert_eq!(entry.uid.as_str(), long);
        assert_eq!(
            parse_uidl_entry(b"4 odd id\x01").unwrap().uid.as_str(),
            "odd%20id%01"
        );
        assert_eq!(parse_uidl_entry(b"5"), None);
    }
}
