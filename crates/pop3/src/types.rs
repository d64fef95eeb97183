//! What the server tells us, as typed values.

use std::fmt;

/// The reply to `STAT`: the maildrop's message count and total size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub count: u32,
    pub size: u64,
}

/// One line of `LIST`: a message number and its size in octets as the server counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListEntry {
    pub number: u32,
    pub size: u64,
}

/// One line of `UIDL`: a message number and the id that stays the same across sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidlEntry {
    pub number: u32,
    pub uid: Uid,
}

/// A unique-id as the server sent it, kept as text that maps one-to-one to the octets.
///
/// RFC 1939 allows 1–70 printable ASCII characters; real servers send longer ids and odd
/// bytes. Printable ASCII stays as it is; every other octet (and `%` itself) becomes `%XX`,
/// so two different ids can never become the same text and the text is safe to store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uid(String);

impl Uid {
    /// Builds the text form from the raw octets of the id.
    pub fn from_octets(octets: &[u8]) -> Uid {
        use std::fmt::Write as _;
        let mut text = String::with_capacity(octets.len());
        for &octet in octets {
            if (0x21..=0x7e).contains(&octet) && octet != b'%' {
                text.push(char::from(octet));
            } else {
                // Writing into a String cannot fail.
                let _ = write!(text, "%{octet:02X}");
            }
        }
        Uid(text)
    }

    /// The text form, as stored in a ledger.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a text form read back from storage.
    pub fn from_stored(text: impl Into<String>) -> Uid {
        Uid(text.into())
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The server's greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// The text after `+OK`.
    pub text: String,
    /// The APOP timestamp (`<...@...>`, brackets included) if the server offers APOP.
    pub apop_timestamp: Option<String>,
}

impl Greeting {
    pub(crate) fn parse(text: String) -> Greeting {
        let apop_timestamp = text.find('<').and_then(|start| {
            let end = start + text[start..].find('>')?;
            let stamp = &text[start..=end];
            stamp.contains('@').then(|| stamp.to_string())
        });
        Greeting {
            text,
            apop_timestamp,
        }
    }
}

/// The capabilities a server lists for `CAPA` (RFC 2449).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    lines: Vec<String>,
    /// False when the server answered `CAPA` with `-ERR` (an RFC 1939-only server).
    pub supported: bool,
}

impl Capabilities {
    pub(crate) fn from_lines(lines: Vec<String>) -> Capabilities {
        Capabilities {
            lines,
            supported: true,
        }
    }

    pub(crate) fn unsupported() -> Capabilities {
        Capabilities::default()
    }

    /// The raw capability lines.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    fn find(&self, name: &str) -> Option<&str> {
        self.lines.iter().find_map(|line| {
            let mut words = line.splitn(2, ' ');
            let first = words.next()?;
            first
                .eq_ignore_ascii_case(name)
                .then(|| words.next().unwrap_or("").trim())
        })
    }

    /// Whether a capability is listed.
    pub fn has(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    pub fn stls(&self) -> bool {
        self.has("STLS")
    }

    pub fn pipelining(&self) -> bool {
        self.has("PIPELINING")
    }

    pub fn uidl(&self) -> bool {
        self.has("UIDL")
    }

    pub fn top(&self) -> bool {
        self.has("TOP")
    }

    pub fn user(&self) -> bool {
        self.has("USER")
    }

    pub fn resp_codes(&self) -> bool {
        self.has("RESP-CODES")
    }

    /// The SASL mechanisms offered, upper-cased.
    pub fn sasl_mechanisms(&self) -> Vec<String> {
        self.find("SASL")
            .map(|list| {
                list.split_ascii_whitespace()
                    .map(|m| m.to_ascii_uppercase())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn has_sasl(&self, mechanism: &str) -> bool {
        self.sasl_mechanisms()
            .iter()
            .any(|m| m.eq_ignore_ascii_case(mechanism))
    }

    /// The LOGIN-DELAY the server announces, in seconds, if any.
    pub fn login_delay(&self) -> Option<u64> {
        self.find("LOGIN-DELAY")?
            .split_ascii_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// The EXPIRE policy: `Some(None)` for NEVER, `Some(Some(days))` otherwise.
    pub fn expire(&self) -> Option<Option<u64>> {
        let value = self.find("EXPIRE")?.split_ascii_whitespace().next()?;
        if value.eq_ignore_ascii_case("NEVER") {
            Some(None)
        } else {
            value.parse().ok().map(Some)
        }
    }
}

/// What a `RETR` or `TOP` delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retrieved {
    /// Message number in this session.
    pub number: u32,
    /// Octets written to the caller's writer (after dot-unstuffing).
    pub octets: u64,
}

/// What happened to this session's deletions when it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuitOutcome {
    /// The server answered `+OK` to `QUIT`: deletions are final.
    Committed,
    /// The server answered `-ERR`: RFC 1939 says some deletions may not have happened.
    /// Treat every deleted message as possibly still there.
    Unknown { reason: String },
    /// No `+OK` came: the connection was already unusable (QUIT was never sent, and the
    /// server rolls back every deletion of the session), or it ended before the reply. In
    /// that second case a server that did receive the QUIT may have committed: treat
    /// deletions as not done, and let the ledger make deleting again harmless.
    NotCommitted { reason: String },
}

impl QuitOutcome {
    pub fn is_committed(&self) -> bool {
        matches!(self, QuitOutcome::Committed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_text_is_one_to_one() {
        assert_eq!(Uid::from_octets(b"000001a4.4f3b").as_str(), "000001a4.4f3b");
        assert_eq!(Uid::from_octets(b"a b").as_str(), "a%20b");
        assert_eq!(Uid::from_octets(b"a%20b").as_str(), "a%2520b");
        assert_eq!(Uid::from_octets(b"\xff").as_str(), "%FF");
    }

    #[test]
    fn greeting_apop_timestamp() {
        let g = Greeting::parse("POP3 ready <1896.697170952@dbc.mtview.ca.us>".into());
        assert_eq!(
            g.apop_timestamp.as_deref(),
            Some("<1896.697170952@dbc.mtview.ca.us>")
        );
        assert_eq!(
            Greeting::parse("Dovecot ready.".into()).apop_timestamp,
            None
        );
    }

    #[test]
    fn capabilities() {
        let caps = Capabilities::from_lines(vec![
            "TOP".into(),
            "UIDL".into(),
            "RESP-CODES".into(),
            "PIPELINING".into(),
            "SASL PLAIN login XOAUTH2".into(),
            "LOGIN-DELAY 900".into(),
            "EXPIRE NEVER".into(),
        ]);
        assert!(caps.pipelining() && caps.uidl() && caps.top() && !caps.stls());
        assert!(caps.has_sasl("LOGIN") && caps.has_sasl("xoauth2"));
        assert_eq!(caps.login_delay(), Some(900));
        assert_eq!(caps.expire(), Some(None));
    }
}
