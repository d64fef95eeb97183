//! Plays a server's bytes into a `pop3::Session` and checks its promises on every event.

use std::collections::VecDeque;

use pop3::codec::Command;
use pop3::{Event, MAX_LISTING_ENTRIES, MAX_LISTING_LINE, MAX_STATUS_LINE, ProtocolError, Session};

use crate::chunks::ChunkSizes;
use crate::script::Reply;

/// The session's private cap on one body chunk (`BODY_CHUNK` in session.rs).
const BODY_CHUNK: usize = 256 * 1024;
/// Most CAPA lines the session keeps.
const MAX_CAPA_LINES: usize = 1_000;
/// Lossy UTF-8 turns one bad octet into three (U+FFFD); `%XX` turns one octet into three.
const TEXT_GROWTH: usize = 3;
/// The answer the fuzz client gives to every SASL challenge (`user` in base64).
const SASL_RESPONSE: &str = "dXNlcg==";

/// What a run showed, in a form that does not depend on how the bytes were split: body
/// chunks are joined into one body.
#[derive(Debug, PartialEq, Eq)]
pub enum Observed {
    Event(Event),
    Body(Vec<u8>),
}

#[derive(Debug, PartialEq, Eq)]
pub struct Transcript {
    pub observed: Vec<Observed>,
    pub error: Option<ProtocolError>,
}

/// Sends `script` (pipelined, before any reply), then feeds `server` in `chunks`, polling
/// after every read until the session wants more. Panics on any broken promise.
pub fn replay(script: &[(Command, Reply)], server: &[u8], chunks: &ChunkSizes) -> Transcript {
    let mut run = Run {
        session: Session::new(),
        waiting: VecDeque::from([Reply::Greeting]),
        body: None,
        transcript: Transcript {
            observed: Vec::new(),
            error: None,
        },
    };
    for (command, reply) in script {
        run.session
            .send(command)
            .expect("a fresh session takes commands with safe arguments");
        run.waiting.push_back(*reply);
    }
    assert_eq!(run.session.in_flight(), run.waiting.len());
    for piece in chunks.split(server) {
        run.session.input().extend_from_slice(piece);
        if !run.drain() {
            break;
        }
    }
    run.transcript
}

struct Run {
    session: Session,
    /// The replies still owed, in the order the commands were sent.
    waiting: VecDeque<Reply>,
    /// Inside a body: which command's, and how many octets were taken so far.
    body: Option<(pop3::CommandKind, u64)>,
    transcript: Transcript,
}

impl Run {
    /// Polls until the session needs input (true) or fails (false).
    fn drain(&mut self) -> bool {
        loop {
            match self.session.poll_event() {
                Ok(Some(event)) => {
                    self.observe(event);
                    self.check_in_flight();
                }
                Ok(None) => {
                    self.check_waiting_for_input();
                    return true;
                }
                Err(error) => {
                    self.check_stays_broken(&error);
                    self.transcript.error = Some(error);
                    return false;
                }
            }
        }
    }

    fn observe(&mut self, event: Event) {
        if let Some((command, taken)) = &mut self.body {
            match event {
                Event::BodyData => {
                    let chunk = self.session.take_body();
                    assert!(!chunk.is_empty(), "BodyData with no octets");
                    assert!(chunk.len() <= BODY_CHUNK, "body chunk of {}", chunk.len());
                    *taken += chunk.len() as u64;
                    match self.transcript.observed.last_mut() {
                        Some(Observed::Body(body)) => body.extend_from_slice(&chunk),
                        _ => self
                            .transcript
                            .observed
                            .push(Observed::Body(chunk.to_vec())),
                    }
                    return;
                }
                Event::BodyEnd {
                    command: ended,
                    octets,
                } => {
                    assert_eq!(ended, *command, "BodyEnd for another command");
                    assert_eq!(octets, *taken, "octets reported differ from octets taken");
                    self.body = None;
                }
                other => panic!("{other:?} in the middle of a {command} body"),
            }
            self.transcript.observed.push(Observed::Event(event));
            return;
        }
        let Some(&owed) = self.waiting.front() else {
            panic!("{event:?} with no command in flight");
        };
        let matches = match &event {
            Event::Err(refused) => refused.command == owed.command(),
            Event::Greeting(greeting) => {
                assert!(greeting.text.len() <= TEXT_GROWTH * MAX_STATUS_LINE);
                owed == Reply::Greeting
            }
            Event::Ok { command, .. } => {
                *command == owed.command() && matches!(owed, Reply::Status(_) | Reply::Auth)
            }
            Event::Challenge(challenge) => {
                assert!(challenge.len() <= MAX_STATUS_LINE);
                owed == Reply::Auth
            }
            Event::Stat(_) => owed == Reply::Stat,
            Event::Scan(_) => owed == Reply::Scan,
            Event::Unique(entry) => {
                check_uid(&entry.uid);
                owed == Reply::Unique
            }
            Event::Listing(entries) => {
                assert!(entries.len() <= MAX_LISTING_ENTRIES);
                owed == Reply::Listing
            }
            Event::UniqueIds(entries) => {
                assert!(entries.len() <= MAX_LISTING_ENTRIES);
                entries.iter().for_each(|entry| check_uid(&entry.uid));
                owed == Reply::UniqueIds
            }
            Event::Capabilities(capabilities) => {
                assert!(capabilities.lines().len() <= MAX_CAPA_LINES);
                for line in capabilities.lines() {
                    assert!(line.len() <= TEXT_GROWTH * MAX_LISTING_LINE);
                }
                // What the client asks of them after CAPA; none may panic.
                let _ = (capabilities.sasl_mechanisms(), capabilities.login_delay());
                let _ = (capabilities.expire(), capabilities.has_sasl("PLAIN"));
                owed == Reply::Capa
            }
            Event::BodyStart { command } => owed == Reply::Body(*command),
            Event::BodyData | Event::BodyEnd { .. } => false,
        };
        assert!(matches, "{event:?} answers {owed:?}");
        match &event {
            Event::Challenge(_) => {
                // The AUTH exchange goes on; the same reply is still owed.
                self.session
                    .send(&Command::SaslResponse(SASL_RESPONSE.into()))
                    .expect("a healthy session takes a SASL response");
            }
            Event::BodyStart { command } => {
                self.waiting.pop_front();
                self.body = Some((*command, 0));
            }
            _ => {
                self.waiting.pop_front();
            }
        }
        self.transcript.observed.push(Observed::Event(event));
    }

    /// `in_flight` counts down with the replies, one step behind only while a listing's
    /// lines are being read (the status line already took the command off the queue).
    fn check_in_flight(&self) {
        let in_flight = self.session.in_flight();
        let lag = self
            .waiting
            .len()
            .checked_sub(in_flight)
            .unwrap_or_else(|| {
                panic!(
                    "session waits for {in_flight} replies, {} owed",
                    self.waiting.len()
                )
            });
        match lag {
            0 => {}
            1 => assert!(
                self.body.is_none() && self.waiting.front().is_some_and(|r| r.is_listing()),
                "in_flight dropped early for {:?}",
                self.waiting.front()
            ),
            _ => panic!("in_flight {in_flight} is {lag} behind"),
        }
    }

    /// Waiting for input must mean no full line is buffered and memory stays bounded.
    fn check_waiting_for_input(&mut self) {
        self.check_in_flight();
        let buffered = self.session.input().len();
        assert!(buffered <= MAX_STATUS_LINE, "{buffered} octets buffered");
        if self.body.is_some() {
            assert_eq!(buffered, 0, "a body decoder waiting with input left");
        } else if buffered > 0 {
            assert!(
                !self.session.input().contains(&b'\n'),
                "waiting for input with a whole line buffered"
            );
        }
    }

    /// After an `Err`, the session refuses to go on, with the same error.
    fn check_stays_broken(&mut self, error: &ProtocolError) {
        assert!(self.session.is_broken());
        assert_eq!(self.session.poll_event().as_ref(), Err(error));
        assert_eq!(self.session.send(&Command::Noop).as_ref(), Err(error));
        assert_eq!(self.session.poll_event().as_ref(), Err(error));
    }
}

/// A uid's text is printable ASCII (safe to store) and bounded.
fn check_uid(uid: &pop3::Uid) {
    let text = uid.as_str();
    assert!(!text.is_empty());
    assert!(text.len() <= TEXT_GROWTH * MAX_LISTING_LINE);
    assert!(text.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{text:?}");
}
