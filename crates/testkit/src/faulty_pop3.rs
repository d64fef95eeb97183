//! A hand-written, fault-injecting POP3 *server*, for one message's faults and for
//! providers that bend what `DELE` and `UIDL` mean.
//!
//! This is a fake, named as such: a real Dovecot cannot be made to break off one chosen
//! message on demand — close the connection halfway through its body every time (a
//! corrupt mail file, a virus scanner that kills the connection on one attachment), send
//! twice the size it announced in `LIST`, or stall mid-body. Nor does it behave like the
//! providers of [`ProviderBehaviour`]: keep mail it confirmed deleting, offer it again
//! under new UIDLs, have no UIDL, or give one UIDL to two messages. Everything else it does the
//! plain RFC 1939 way: USER/PASS, STAT, LIST, UIDL, TOP, RETR (dot-stuffed), DELE, RSET,
//! NOOP, and QUIT, which alone makes deletions final. It reads commands line by line, so
//! pipelined commands work. Plaintext only.
//!
//! It runs on its own threads (one per connection), so it keeps serving whatever the
//! test's runtime is doing.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the server does when a message's body is asked for with `RETR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MessageFault {
    /// Sends it whole.
    #[default]
    None,
    /// Sends the `+OK` and half the body, then closes the connection (FIN).
    CloseMidBody,
    /// Sends twice the octets announced in `LIST` (the body, then as much filler), then
    /// the terminator.
    TwiceAnnounced,
    /// Sends the `+OK` and half the body, then says nothing more until the client hangs
    /// up (or a minute passes).
    StallMidBody,
}

/// What the fake server does with deleted mail and UIDLs, like some real providers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProviderBehaviour {
    /// RFC 1939: deletions are final at `QUIT`, every message has its own UIDL.
    #[default]
    Plain,
    /// Answers `DELE` and `QUIT` `+OK` and keeps every message, under the same UIDL
    /// (Gmail's "keep Gmail's copy in the inbox").
    KeepsDeleted,
    /// Deletes at `QUIT`, then offers each deleted message once more under a new UIDL
    /// (`<uid>.again`), as Gmail's recent mode or a re-exported mailbox do.
    ReoffersUnderNewUidls,
    /// Has no UIDL: not in `CAPA`, and `UIDL` is answered `-ERR`.
    NoUidl,
    /// Lists every second message under the UIDL of the one before it (seen on servers
    /// keeping mail in mbox files).
    DuplicateUidls,
}

/// The suffix a message offered again under a new UIDL gets.
const AGAIN: &str = ".again";

/// One message on the fake server.
#[derive(Clone, Debug)]
struct Message {
    uid: String,
    octets: Vec<u8>,
    fault: MessageFault,
    /// How many more RETRs the fault strikes; `None`: every one.
    fault_times: Option<u32>,
    retrieved: u32,
}

#[derive(Debug, Default)]
struct Maildrop {
    messages: Vec<Message>,
    sessions: u32,
    behaviour: ProviderBehaviour,
}

/// The fake server; stopped on drop.
pub struct FaultyPop3 {
    addr: SocketAddr,
    maildrop: Arc<Mutex<Maildrop>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

const USER: &str = "support";

impl FaultyPop3 {
    /// Starts on a free loopback port; `password` is the password of user `support`.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub fn start(password: &str) -> FaultyPop3 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("testkit: bind the faulty POP3");
        let addr = listener.local_addr().expect("testkit: faulty POP3 address");
        listener
            .set_nonblocking(true)
            .expect("testkit: non-blocking listener");
        let maildrop = Arc::new(Mutex::new(Maildrop::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let maildrop = Arc::clone(&maildrop);
            let stop = Arc::clone(&stop);
            let password = password.to_string();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let maildrop = Arc::clone(&maildrop);
                            let password = password.clone();
                            std::thread::spawn(move || {
                                let _ = serve(stream, &maildrop, &password);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        FaultyPop3 {
            addr,
            maildrop,
            stop,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The user name to log in with.
    pub fn user(&self) -> &'static str {
        USER
    }

    /// Adds a message (CRLF line ends expected) with a UIDL and a fault.
    pub fn add(&self, uid: &str, octets: &[u8], fault: MessageFault) {
        lock(&self.maildrop).messages.push(Message {
            uid: uid.to_string(),
            octets: octets.to_vec(),
            fault,
            fault_times: None,
            retrieved: 0,
        });
    }

    /// Makes `uid`'s fault strike only the next `times` RETRs (a flaky network), or
    /// every one with `None`.
    pub fn fault_times(&self, uid: &str, times: Option<u32>) {
        if let Some(message) = lock(&self.maildrop)
            .messages
            .iter_mut()
            .find(|m| m.uid == uid)
        {
            message.fault_times = times;
        }
    }

    /// Changes `uid`'s fault ("the admin fixed the server": [`MessageFault::None`]).
    pub fn set_fault(&self, uid: &str, fault: MessageFault) {
        if let Some(message) = lock(&self.maildrop)
            .messages
            .iter_mut()
            .find(|m| m.uid == uid)
        {
            message.fault = fault;
        }
    }

    /// Makes the server behave like such a provider from the next command on.
    pub fn set_behaviour(&self, behaviour: ProviderBehaviour) {
        lock(&self.maildrop).behaviour = behaviour;
    }

    /// The UIDLs still on the server, in order.
    pub fn uids(&self) -> Vec<String> {
        lock(&self.maildrop)
            .messages
            .iter()
            .map(|m| m.uid.clone())
            .collect()
    }

    /// How often `uid` was asked for with RETR.
    pub fn retrieved(&self, uid: &str) -> u32 {
        lock(&self.maildrop)
            .messages
            .iter()
            .find(|m| m.uid == uid)
            .map_or(0, |m| m.retrieved)
    }

    /// Sessions that logged in.
    pub fn sessions(&self) -> u32 {
        lock(&self.maildrop).sessions
    }
}

impl Drop for FaultyPop3 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(maildrop: &Mutex<Maildrop>) -> MutexGuard<'_, Maildrop> {
    maildrop.lock().unwrap_or_else(|p| p.into_inner())
}

/// One connection, until QUIT, a fault, or the client hangs up.
fn serve(stream: TcpStream, maildrop: &Mutex<Maildrop>, password: &str) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    out.write_all(b"+OK FaultyPop3 ready (a hand-written fake for fault tests)\r\n")?;
    let mut user_ok = false;
    let mut logged_in = false;
    // This session's view: indexes into the maildrop at login, and what it deleted.
    let mut view: Vec<String> = Vec::new();
    let mut deleted: Vec<bool> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut words = line.trim_end().splitn(3, ' ');
        let verb = words.next().unwrap_or_default().to_ascii_uppercase();
        let arg1 = words.next();
        let arg2 = words.next();
        let number = arg1
            .and_then(|a| a.parse::<usize>().ok())
            .filter(|n| *n >= 1 && *n <= view.len() && !deleted[*n - 1]);
        let reply: Vec<u8> = match (verb.as_str(), logged_in) {
            ("CAPA", _) if lock(maildrop).behaviour == ProviderBehaviour::NoUidl => {
                b"+OK\r\nUSER\r\nTOP\r\nPIPELINING\r\n.\r\n".to_vec()
            }
            ("CAPA", _) => b"+OK\r\nUSER\r\nUIDL\r\nTOP\r\nPIPELINING\r\n.\r\n".to_vec(),
            ("USER", false) => {
                user_ok = arg1 == Some(USER);
                b"+OK\r\n".to_vec()
            }
            ("PASS", false) if user_ok && arg1 == Some(password) => {
                logged_in = true;
                let mut drop = lock(maildrop);
                drop.sessions += 1;
                view = drop.messages.iter().map(|m| m.uid.clone()).collect();
                deleted = vec![false; view.len()];
                b"+OK logged in\r\n".to_vec()
            }
            ("PASS", false) => b"-ERR [AUTH] invalid login\r\n".to_vec(),
            ("QUIT", _) => {
                let mut drop = lock(maildrop);
                let is_deleted =
                    |m: &Message| view.iter().zip(&deleted).any(|(u, d)| *d && *u == m.uid);
                match drop.behaviour {
                    ProviderBehaviour::KeepsDeleted => {}
                    ProviderBehaviour::ReoffersUnderNewUidls => {
                        let again: Vec<Message> = drop
                            .messages
                            .iter()
                            .filter(|m| is_deleted(m) && !m.uid.ends_with(AGAIN))
                            .map(|m| Message {
                                uid: format!("{}{AGAIN}", m.uid),
                                retrieved: 0,
                                ..m.clone()
                            })
                            .collect();
                        drop.messages.retain(|m| !is_deleted(m));
                        drop.messages.extend(again);
                    }
                    _ => drop.messages.retain(|m| !is_deleted(m)),
                }
                drop_guard(drop);
                out.write_all(b"+OK bye\r\n")?;
                return Ok(());
            }
            (_, false) => b"-ERR log in first\r\n".to_vec(),
            ("NOOP", true) => b"+OK\r\n".to_vec(),
            ("RSET", true) => {
                deleted.iter_mut().for_each(|d| *d = false);
                b"+OK\r\n".to_vec()
            }
            ("UIDL", true) if lock(maildrop).behaviour == ProviderBehaviour::NoUidl => {
                b"-ERR this server has no UIDL (FaultyPop3)\r\n".to_vec()
            }
            ("STAT", true) | ("LIST", true) | ("UIDL", true) if arg1.is_none() => {
                let drop = lock(maildrop);
                let shared_uidls = drop.behaviour == ProviderBehaviour::DuplicateUidls;
                let live: Vec<(usize, &Message)> = view
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !deleted[*i])
                    .filter_map(|(i, uid)| {
                        drop.messages
                            .iter()
                            .find(|m| m.uid == *uid)
                            .map(|m| (i + 1, m))
                    })
                    .collect();
                let mut text = String::new();
                if verb == "STAT" {
                    let size: usize = live.iter().map(|(_, m)| m.octets.len()).sum();
                    text.push_str(&format!("+OK {} {size}\r\n", live.len()));
                } else {
                    text.push_str("+OK\r\n");
                    for (at, (n, m)) in live.iter().enumerate() {
                        if verb == "LIST" {
                            text.push_str(&format!("{n} {}\r\n", m.octets.len()));
                        } else if shared_uidls && at % 2 == 1 {
                            text.push_str(&format!("{n} {}\r\n", live[at - 1].1.uid));
                        } else {
                            text.push_str(&format!("{n} {}\r\n", m.uid));
                        }
                    }
                    text.push_str(".\r\n");
                }
                text.into_bytes()
            }
            ("DELE", true) => match number {
                Some(n) => {
                    deleted[n - 1] = true;
                    b"+OK\r\n".to_vec()
                }
                None => b"-ERR no such message\r\n".to_vec(),
            },
            ("TOP", true) | ("RETR", true) => {
                let Some(n) = number else {
                    out.write_all(b"-ERR no such message\r\n")?;
                    continue;
                };
                let (octets, fault) = {
                    let mut drop = lock(maildrop);
                    let Some(message) = drop.messages.iter_mut().find(|m| m.uid == view[n - 1])
                    else {
                        drop_guard(drop);
                        out.write_all(b"-ERR gone\r\n")?;
                        continue;
                    };
                    if verb == "TOP" {
                        (header_section(&message.octets).to_vec(), MessageFault::None)
                    } else {
                        message.retrieved += 1;
                        let strikes = match message.fault_times {
                            None => true,
                            Some(0) => false,
                            Some(left) => {
                                message.fault_times = Some(left - 1);
                                true
                            }
                        };
                        let fault = if strikes {
                            message.fault
                        } else {
                            MessageFault::None
                        };
                        (message.octets.clone(), fault)
                    }
                };
                let _ = arg2;
                let body = dot_stuff(&octets);
                out.write_all(b"+OK message follows\r\n")?;
                match fault {
                    MessageFault::None => {
                        out.write_all(&body)?;
                        out.write_all(b".\r\n")?;
                    }
                    MessageFault::TwiceAnnounced => {
                        out.write_all(&body)?;
                        let filler = b"filler line the server never announced\r\n";
                        let mut sent = 0;
                        while sent < octets.len() {
                            out.write_all(filler)?;
                            sent += filler.len();
                        }
                        out.write_all(b".\r\n")?;
                    }
                    MessageFault::CloseMidBody => {
                        out.write_all(&body[..body.len() / 2])?;
                        out.flush()?;
                        let _ = out.shutdown(Shutdown::Both);
                        return Ok(());
                    }
                    MessageFault::StallMidBody => {
                        out.write_all(&body[..body.len() / 2])?;
                        out.flush()?;
                        // Silent until the client gives up and hangs up.
                        let mut rest = Vec::new();
                        let _ = reader.read_to_end(&mut rest);
                        return Ok(());
                    }
                }
                continue;
            }
            _ => b"-ERR unknown command\r\n".to_vec(),
        };
        out.write_all(&reply)?;
    }
}

fn drop_guard(guard: MutexGuard<'_, Maildrop>) {
    drop(guard);
}

/// The header section, up to and including the empty line (all of it when none).
fn header_section(octets: &[u8]) -> &[u8] {
    match octets.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => &octets[..at + 4],
        None => octets,
    }
}

/// Dot-stuffs CRLF text and makes sure it ends with a line end.
fn dot_stuff(octets: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(octets.len() + 64);
    let mut at_line_start = true;
    for &b in octets {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}
