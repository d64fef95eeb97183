//! What a `FaultyServer` is told to do: the mailbox it pretends to hold, what it offers,
//! and which reply it spoils, and how.

use std::time::Duration;

/// The mailbox user every script logs in as unless told otherwise.
pub const USER: &str = "support@example.org";
/// Its password. Distinctive, so a test can search a trace for it.
pub const PASSWORD: &str = "Tr0ub4dor&3-never-log-me";

/// Where a fault strikes. Each fault fires once, at the first moment it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum On {
    /// The greeting.
    Greeting,
    /// The reply to a command with this verb, whatever its arguments.
    Command(&'static str),
    /// The reply to a command with this verb and exactly these arguments (`RETR`, `"3"`).
    CommandWith(&'static str, &'static str),
}

impl On {
    /// Whether this is the moment: `None` is the greeting, else the command's verb and
    /// arguments.
    pub(super) fn matches(&self, command: Option<(&str, &str)>) -> bool {
        match (self, command) {
            (On::Greeting, None) => true,
            (On::Command(verb), Some((got, _))) => verb.eq_ignore_ascii_case(got),
            (On::CommandWith(verb, args), Some((got, got_args))) => {
                verb.eq_ignore_ascii_case(got) && *args == got_args
            }
            _ => false,
        }
    }
}

/// What the fake does instead of answering properly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Sends these octets instead of the reply (garbage, a chosen `-ERR`).
    Replace(Vec<u8>),
    /// Sends the reply and these octets right behind it, in one write.
    Append(Vec<u8>),
    /// Sends the first `n` octets of the reply, then closes its side (FIN).
    CutAfter(usize),
    /// Sends the reply's first line and `n` octets of what follows, then closes (FIN).
    CutInBody(usize),
    /// Like `CutInBody`, but resets the connection (RST) instead of closing it.
    ResetInBody(usize),
    /// Never answers and never reads again; the connection stays open.
    GoSilent,
    /// Sends the reply's first line and `head` octets after it at once, then the rest one
    /// octet per `interval`.
    Trickle { head: usize, interval: Duration },
    /// Sends `octets` octets without a line end, as fast as the client takes them.
    EndlessLine { octets: usize },
}

/// The fake's whole behaviour, built up with the methods below.
#[derive(Debug, Clone)]
pub struct Script {
    pub(super) greeting: String,
    pub(super) capabilities: Vec<String>,
    pub(super) user: String,
    pub(super) password: String,
    pub(super) messages: Vec<Vec<u8>>,
    pub(super) line_end: &'static [u8],
    pub(super) faults: Vec<(On, Fault)>,
    pub(super) read_chunk: usize,
    pub(super) read_pause: Option<Duration>,
    pub(super) socket_buffer: Option<u32>,
}

impl Default for Script {
    fn default() -> Self {
        Self::new()
    }
}

impl Script {
    /// A well-behaved mailbox: no messages, CRLF line ends, USER and SASL PLAIN/LOGIN,
    /// RESP-CODES and PIPELINING offered, fast reads.
    pub fn new() -> Script {
        Script {
            greeting: "FaultyServer ready (a hand-written fake for fault tests)".into(),
            capabilities: [
                "TOP",
                "UIDL",
                "USER",
                "RESP-CODES",
                "PIPELINING",
                "SASL PLAIN LOGIN",
            ]
            .map(String::from)
            .to_vec(),
            user: USER.into(),
            password: PASSWORD.into(),
            messages: Vec::new(),
            line_end: b"\r\n",
            faults: Vec::new(),
            read_chunk: 64 * 1024,
            read_pause: None,
            socket_buffer: None,
        }
    }

    /// Replaces the `CAPA` lines.
    pub fn capabilities(mut self, lines: &[&str]) -> Script {
        self.capabilities = lines.iter().map(|line| line.to_string()).collect();
        self
    }

    /// The same capabilities, but without PIPELINING: the fake then also checks that no
    /// command arrives before the previous one was answered.
    pub fn without_pipelining(mut self) -> Script {
        self.capabilities
            .retain(|line| !line.eq_ignore_ascii_case("PIPELINING"));
        self
    }

    pub fn password(mut self, password: &str) -> Script {
        self.password = password.into();
        self
    }

    /// The messages in the maildrop, numbered from 1, as raw octets (line ends as given).
    pub fn messages(mut self, messages: Vec<Vec<u8>>) -> Script {
        self.messages = messages;
        self
    }

    /// A sloppy server: every line it sends ends in a bare LF.
    pub fn bare_lf(mut self) -> Script {
        self.line_end = b"\n";
        self
    }

    pub fn fault(mut self, on: On, fault: Fault) -> Script {
        self.faults.push((on, fault));
        self
    }

    /// Reads at most `chunk` octets at a time and pauses before every read.
    pub fn slow_reader(mut self, chunk: usize, pause: Duration) -> Script {
        self.read_chunk = chunk.max(1);
        self.read_pause = Some(pause);
        self
    }

    /// Small kernel send and receive buffers on the server side, so what the client does
    /// not read stays on the server's side instead of in a few megabytes of buffers.
    pub fn socket_buffer(mut self, octets: u32) -> Script {
        self.socket_buffer = Some(octets);
        self
    }
}
