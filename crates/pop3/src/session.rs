//! The protocol state machine: commands in, bytes out; bytes in, events out.
//!
//! The session owns both buffers and the queue of replies it is waiting for, in order. It
//! never blocks and never reads a clock: the driver (`client`) moves bytes between it and a
//! socket. Because every command sent is queued with the reply shape it expects, several
//! commands can be in flight at once (RFC 2449 PIPELINING) and replies are matched to them
//! however the server's bytes are split.

use std::collections::VecDeque;

use bytes::{Buf, BytesMut};

use crate::codec::{
    BodyDecoder, Command, CommandKind, LineError, StatusLine, parse_list_entry, parse_stat,
    parse_status_line, parse_uidl_entry, take_line,
};
use crate::error::{ProtocolError, ServerError};
use crate::types::{Capabilities, Greeting, ListEntry, Stat, UidlEntry};

/// Longest status line accepted. RFC 2449 says 512 octets; real servers send longer SASL
/// challenges and chatty errors, so allow more — but not without bound.
pub const MAX_STATUS_LINE: usize = 8 * 1024;
/// Longest line in a `LIST`, `UIDL` or `CAPA` listing (UIDLs run long on some servers).
pub const MAX_LISTING_LINE: usize = 4 * 1024;
/// Most entries in one listing. Far beyond any real maildrop; stops a runaway server.
pub const MAX_LISTING_ENTRIES: usize = 5_000_000;
/// Most octets in one listing. Entry count alone does not bound memory: 5 million
/// 4 KiB UIDLs would be 20 GB. 64 MiB is over a million ordinary UIDL lines.
pub const MAX_LISTING_OCTETS: usize = 64 * 1024 * 1024;
/// Most body octets decoded per event, so body chunks handed out stay small.
const BODY_CHUNK: usize = 256 * 1024;

/// Something the server said, matched to the command it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Greeting(Greeting),
    /// `+OK` to a command with a single-line reply.
    Ok {
        command: CommandKind,
        text: String,
    },
    /// `-ERR` to any command (a multi-line command that fails has no body).
    Err(ServerError),
    /// A SASL challenge (still base64); the `AUTH` exchange goes on.
    Challenge(Vec<u8>),
    Stat(Stat),
    /// `LIST n`
    Scan(ListEntry),
    /// `UIDL n`
    Unique(UidlEntry),
    /// `LIST`
    Listing(Vec<ListEntry>),
    /// `UIDL`
    UniqueIds(Vec<UidlEntry>),
    Capabilities(Capabilities),
    /// `+OK` to `RETR` or `TOP`: body octets follow as [`Event::BodyData`].
    BodyStart {
        command: CommandKind,
    },
    /// Body octets are waiting in [`Session::take_body`].
    BodyData,
    /// The body's terminating line was read.
    BodyEnd {
        command: CommandKind,
        octets: u64,
    },
}

/// The shape of reply a queued command waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Greeting,
    Status,
    Auth,
    Stat,
    Capa,
    ListAll,
    ListOne,
    UidlAll,
    UidlOne,
    Body,
}

#[derive(Debug)]
struct Pending {
    command: CommandKind,
    expect: Expect,
}

/// A multi-line reply being read.
#[derive(Debug)]
enum Reading {
    Capa(Vec<String>),
    Listing(Vec<ListEntry>),
    Uniques(Vec<UidlEntry>),
    Body(BodyDecoder, CommandKind),
}

/// The I/O-free POP3 client session.
#[derive(Debug)]
pub struct Session {
    input: BytesMut,
    output: BytesMut,
    pending: VecDeque<Pending>,
    reading: Option<Reading>,
    body: BytesMut,
    broken: Option<ProtocolError>,
    /// Octets of the listing being read, against [`MAX_LISTING_OCTETS`].
    listing_octets: usize,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    /// A session waiting for the server's greeting.
    pub fn new() -> Session {
        let mut pending = VecDeque::new();
        pending.push_back(Pending {
            command: CommandKind::Greeting,
            expect: Expect::Greeting,
        });
        Session {
            input: BytesMut::with_capacity(64 * 1024),
            output: BytesMut::new(),
            pending,
            reading: None,
            body: BytesMut::new(),
            broken: None,
            listing_octets: 0,
        }
    }

    /// Queues a command: its bytes go to [`Session::output`], its reply is expected after
    /// every reply already expected.
    ///
    /// Input already buffered while no reply was due answers nothing we sent (a server
    /// that replied twice). Pairing it with this command would shift every later reply by
    /// one — a refused `DELE` read as accepted — so that is an
    /// [`ProtocolError::Unsolicited`] and the session is over.
    pub fn send(&mut self, command: &Command) -> Result<(), ProtocolError> {
        if let Some(broken) = &self.broken {
            return Err(broken.clone());
        }
        if self.pending.is_empty() && !self.input.is_empty() {
            let end = memchr::memchr(b'\n', &self.input).unwrap_or(self.input.len());
            let error = ProtocolError::Unsolicited {
                line: excerpt(self.input[..end].trim_ascii_end()),
            };
            self.broken = Some(error.clone());
            return Err(error);
        }
        if !command.has_safe_arguments() {
            return Err(ProtocolError::LineBreakInArgument {
                command: command.kind(),
            });
        }
        tracing::debug!(target: "pop3::wire", "C: {command}");
        command.encode(&mut self.output);
        let expect = match command {
            // Continues the AUTH exchange already queued.
            Command::SaslResponse(_) => return Ok(()),
            Command::Capa => Expect::Capa,
            Command::Auth { .. } => Expect::Auth,
            Command::Stat => Expect::Stat,
            Command::List(None) => Expect::ListAll,
            Command::List(Some(_)) => Expect::ListOne,
            Command::Uidl(None) => Expect::UidlAll,
            Command::Uidl(Some(_)) => Expect::UidlOne,
            Command::Retr(_) | Command::Top { .. } => Expect::Body,
            _ => Expect::Status,
        };
        self.pending.push_back(Pending {
            command: command.kind(),
            expect,
        });
        Ok(())
    }

    /// Bytes waiting to be written to the server. The driver writes from the front and
    /// advances past what was written.
    pub fn output(&mut self) -> &mut BytesMut {
        &mut self.output
    }

    /// The read buffer: the driver appends what it reads from the server here.
    pub fn input(&mut self) -> &mut BytesMut {
        &mut self.input
    }

    /// Replies still expected (commands in flight, the greeting included at first).
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// True when no reply is expected and nothing is left to send.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.output.is_empty()
    }

    /// Whether a protocol error has made this session unusable.
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    /// Takes the body octets decoded so far (after an [`Event::BodyData`]).
    pub fn take_body(&mut self) -> BytesMut {
        self.body.split()
    }

    /// Decodes the next event from buffered input; `Ok(None)` means more input is needed.
    ///
    /// After any `Err`, the session stays broken: a connection whose framing we lost must
    /// never be used again, because the next bytes could be read as the wrong reply.
    pub fn poll_event(&mut self) -> Result<Option<Event>, ProtocolError> {
        if let Some(broken) = &self.broken {
            return Err(broken.clone());
        }
        let result = self.decode_event();
        if let Err(error) = &result {
            self.broken = Some(error.clone());
        }
        result
    }

    fn decode_event(&mut self) -> Result<Option<Event>, ProtocolError> {
        loop {
            if let Some(reading) = self.reading.take() {
                match self.continue_reading(reading)? {
                    Progress::Event(event) => return Ok(Some(event)),
                    Progress::NeedInput => return Ok(None),
                }
            }
            let line = match take_line(&mut self.input, MAX_STATUS_LINE) {
                Ok(Some(line)) => line,
                Ok(None) => return Ok(None),
                Err(LineError::TooLong { limit }) => {
                    return Err(ProtocolError::LineTooLong { limit });
                }
            };
            let Some(pending) = self.pending.pop_front() else {
                return Err(ProtocolError::Unsolicited {
                    line: excerpt(&line),
                });
            };
            let status = parse_status_line(&line).ok_or_else(|| ProtocolError::NotPop3 {
                command: pending.command,
                line: excerpt(&line),
            })?;
            if pending.expect != Expect::Body {
                tracing::debug!(target: "pop3::wire", "S: {}", trace_status(&status));
            }
            match self.on_status(pending, status)? {
                Some(event) => return Ok(Some(event)),
                // A multi-line reply began: read its lines.
                None => continue,
            }
        }
    }

    fn on_status(
        &mut self,
        pending: Pending,
        status: StatusLine,
    ) -> Result<Option<Event>, ProtocolError> {
        let command = pending.command;
        let text = match status {
            StatusLine::Err { code, text } => {
                return Ok(Some(Event::Err(ServerError {
                    command,
                    code,
                    text,
                })));
            }
            StatusLine::Continuation(challenge) if pending.expect == Expect::Auth => {
                // The exchange goes on: the same AUTH still waits for its final reply.
                self.pending.push_front(pending);
                return Ok(Some(Event::Challenge(challenge)));
            }
            StatusLine::Continuation(_) => {
                return Err(ProtocolError::NotPop3 {
                    command,
                    line: "+ (a SASL continuation outside AUTH)".into(),
                });
            }
            StatusLine::Ok(text) => text,
        };
        let bad = |text: &str| ProtocolError::BadReply {
            command,
            line: excerpt(text.as_bytes()),
        };
        Ok(Some(match pending.expect {
            Expect::Greeting => Event::Greeting(Greeting::parse(text)),
            Expect::Status | Expect::Auth => Event::Ok { command, text },
            Expect::Stat => Event::Stat(parse_stat(text.as_bytes()).ok_or_else(|| bad(&text))?),
            Expect::ListOne => {
                Event::Scan(parse_list_entry(text.as_bytes()).ok_or_else(|| bad(&text))?)
            }
            Expect::UidlOne => {
                Event::Unique(parse_uidl_entry(text.as_bytes()).ok_or_else(|| bad(&text))?)
            }
            Expect::Capa => {
                self.reading = Some(Reading::Capa(Vec::new()));
                self.listing_octets = 0;
                return Ok(None);
            }
            Expect::ListAll => {
                self.reading = Some(Reading::Listing(Vec::new()));
                self.listing_octets = 0;
                return Ok(None);
            }
            Expect::UidlAll => {
                self.reading = Some(Reading::Uniques(Vec::new()));
                self.listing_octets = 0;
                return Ok(None);
            }
            Expect::Body => {
                self.reading = Some(Reading::Body(BodyDecoder::new(), command));
                Event::BodyStart { command }
            }
        }))
    }

    fn continue_reading(&mut self, reading: Reading) -> Result<Progress, ProtocolError> {
        match reading {
            Reading::Body(mut decoder, command) => {
                if !self.body.is_empty() {
                    // The driver has not taken the last chunk yet.
                    self.reading = Some(Reading::Body(decoder, command));
                    return Ok(Progress::Event(Event::BodyData));
                }
                let window = self.input.len().min(BODY_CHUNK);
                let used = decoder.decode(&self.input[..window], &mut self.body);
                self.input.advance(used);
                let done = decoder.is_done();
                let event = if !self.body.is_empty() {
                    self.reading = Some(Reading::Body(decoder, command));
                    Progress::Event(Event::BodyData)
                } else if done {
                    tracing::debug!(target: "pop3::wire", "S: <{} octets of {command} body>", decoder.octets());
                    Progress::Event(Event::BodyEnd {
                        command,
                        octets: decoder.octets(),
                    })
                } else {
                    self.reading = Some(Reading::Body(decoder, command));
                    Progress::NeedInput
                };
                Ok(event)
            }
            Reading::Capa(mut lines) => {
                while let Some(line) = self.listing_line(CommandKind::Capa)? {
                    match line {
                        ListingLine::End => {
                            return Ok(Progress::Event(Event::Capabilities(
                                Capabilities::from_lines(lines),
                            )));
                        }
                        ListingLine::Line(line) => {
                            let line = String::from_utf8_lossy(&line).trim().to_string();
                            if lines.len() >= 1_000 {
                                return Err(ProtocolError::TooManyLines {
                                    command: CommandKind::Capa,
                                });
                            }
                            if !line.is_empty() {
                                lines.push(line);
                            }
                        }
                    }
                }
                self.reading = Some(Reading::Capa(lines));
                Ok(Progress::NeedInput)
            }
            Reading::Listing(mut entries) => {
                while let Some(line) = self.listing_line(CommandKind::List)? {
                    match line {
                        ListingLine::End => {
                            return Ok(Progress::Event(Event::Listing(entries)));
                        }
                        ListingLine::Line(line) => {
                            let entry =
                                parse_list_entry(&line).ok_or_else(|| ProtocolError::BadReply {
                                    command: CommandKind::List,
                                    line: excerpt(&line),
                                })?;
                            push_bounded(&mut entries, entry, CommandKind::List)?;
                        }
                    }
                }
                self.reading = Some(Reading::Listing(entries));
                Ok(Progress::NeedInput)
            }
            Reading::Uniques(mut entries) => {
                while let Some(line) = self.listing_line(CommandKind::Uidl)? {
                    match line {
                        ListingLine::End => {
                            return Ok(Progress::Event(Event::UniqueIds(entries)));
                        }
                        ListingLine::Line(line) => {
                            let entry =
                                parse_uidl_entry(&line).ok_or_else(|| ProtocolError::BadReply {
                                    command: CommandKind::Uidl,
                                    line: excerpt(&line),
                                })?;
                            push_bounded(&mut entries, entry, CommandKind::Uidl)?;
                        }
                    }
                }
                self.reading = Some(Reading::Uniques(entries));
                Ok(Progress::NeedInput)
            }
        }
    }

    /// One line of a multi-line listing, dot-unstuffed; `End` for the terminating `.`.
    fn listing_line(&mut self, command: CommandKind) -> Result<Option<ListingLine>, ProtocolError> {
        let mut line = match take_line(&mut self.input, MAX_LISTING_LINE) {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(None),
            Err(LineError::TooLong { limit }) => return Err(ProtocolError::LineTooLong { limit }),
        };
        self.listing_octets += line.len() + 2;
        if self.listing_octets > MAX_LISTING_OCTETS {
            return Err(ProtocolError::TooManyLines { command });
        }
        if &line[..] == b"." {
            return Ok(Some(ListingLine::End));
        }
        if line.first() == Some(&b'.') {
            line.advance(1);
        }
        Ok(Some(ListingLine::Line(line)))
    }
}

enum Progress {
    Event(Event),
    NeedInput,
}

enum ListingLine {
    Line(BytesMut),
    End,
}

fn push_bounded<T>(
    entries: &mut Vec<T>,
    entry: T,
    command: CommandKind,
) -> Result<(), ProtocolError> {
    if entries.len() >= MAX_LISTING_ENTRIES {
        return Err(ProtocolError::TooManyLines { command });
    }
    entries.push(entry);
    Ok(())
}

/// A short, printable piece of a bad line for an error message.
fn excerpt(line: &[u8]) -> String {
    let shown = &line[..line.len().min(80)];
    let mut text: String = String::from_utf8_lossy(shown)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if line.len() > 80 {
        text.push('…');
    }
    text
}

fn trace_status(status: &StatusLine) -> String {
    match status {
        StatusLine::Ok(text) => format!("+OK {text}"),
        StatusLine::Err {
            code: Some(code),
            text,
        } => format!("-ERR [{code}] {text}"),
        StatusLine::Err { code: None, text } => format!("-ERR {text}"),
        // Challenges can carry tokens echoed back by a server; keep them out of traces.
        StatusLine::Continuation(_) => "+ <challenge>".to_string(),
    }
}
