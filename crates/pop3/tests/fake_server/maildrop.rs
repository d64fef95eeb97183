//! The little POP3 the fake speaks: enough states and replies to bring a client to the
//! point of a fault. Written independently of the client's codec, so a shared mistake in
//! dot-stuffing cannot hide itself.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::script::Script;

/// Where a SASL exchange stands while the fake waits for the client's next line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sasl {
    PlainResponse,
    LoginUser,
    LoginPassword { user: String },
}

/// What to do after a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum After {
    Go,
    /// `QUIT`: close once the reply is out.
    Close,
}

/// One connection's view of the mailbox.
#[derive(Debug)]
pub(super) struct Maildrop {
    greeting: String,
    capabilities: Vec<String>,
    user: String,
    password: String,
    messages: Vec<Vec<u8>>,
    eol: &'static [u8],
    deleted: BTreeSet<usize>,
    given_user: Option<String>,
    sasl: Option<Sasl>,
    logged_in: bool,
}

impl Maildrop {
    pub(super) fn new(script: &Script) -> Maildrop {
        Maildrop {
            greeting: script.greeting.clone(),
            capabilities: script.capabilities.clone(),
            user: script.user.clone(),
            password: script.password.clone(),
            messages: script.messages.clone(),
            eol: script.line_end,
            deleted: BTreeSet::new(),
            given_user: None,
            sasl: None,
            logged_in: false,
        }
    }

    pub(super) fn greeting(&self) -> Vec<u8> {
        self.line(&format!("+OK {}", self.greeting))
    }

    /// Whether the line just read continues a SASL exchange rather than being a command.
    pub(super) fn in_sasl(&self) -> bool {
        self.sasl.is_some()
    }

    /// The reply to one line from the client.
    pub(super) fn answer(&mut self, line: &str) -> (Vec<u8>, After) {
        if let Some(step) = self.sasl.take() {
            return (self.sasl_step(step, line), After::Go);
        }
        let (verb, args) = split_command(line);
        let verb = verb.to_ascii_uppercase();
        let reply = match verb.as_str() {
            "CAPA" => {
                let mut reply = self.line("+OK Capability list follows");
                for capability in &self.capabilities {
                    reply.extend(self.line(capability));
                }
                reply.extend(self.line("."));
                reply
            }
            "QUIT" => {
                let text = if self.logged_in {
                    format!("+OK Logging out, {} messages deleted.", self.deleted.len())
                } else {
                    "+OK Logging out.".into()
                };
                return (self.line(&text), After::Close);
            }
            "NOOP" => self.line("+OK"),
            "STLS" if self.offers("STLS") && !self.logged_in => {
                // The fake cannot do TLS; only tests that break off here use STLS.
                self.line("+OK Begin TLS negotiation now.")
            }
            "USER" if !self.logged_in => {
                self.given_user = Some(args.to_string());
                self.line("+OK")
            }
            "PASS" if !self.logged_in => {
                let user = self.given_user.take().unwrap_or_default();
                self.login(&user, args)
            }
            "AUTH" if !self.logged_in => self.auth(args),
            _ if !self.logged_in => self.line("-ERR Unknown command or not logged in."),
            "STAT" => {
                let (count, size) = self.live().fold((0, 0), |(count, size), (_, body)| {
                    (count + 1, size + body.len())
                });
                self.line(&format!("+OK {count} {size}"))
            }
            "LIST" | "UIDL" => self.listing(&verb, args),
            "RETR" => match self.message(args) {
                Ok(body) => {
                    let mut reply = self.line(&format!("+OK {} octets", body.len()));
                    reply.extend(self.stuffed(body));
                    reply
                }
                Err(refusal) => refusal,
            },
            "DELE" => match self.number(args) {
                Ok(number) => {
                    self.deleted.insert(number);
                    self.line(&format!("+OK Message {number} deleted."))
                }
                Err(refusal) => refusal,
            },
            "RSET" => {
                self.deleted.clear();
                self.line("+OK")
            }
            _ => self.line("-ERR Unknown command."),
        };
        (reply, After::Go)
    }

    fn offers(&self, capability: &str) -> bool {
        self.capabilities
            .iter()
            .any(|line| line.eq_ignore_ascii_case(capability))
    }

    fn login(&mut self, user: &str, password: &str) -> Vec<u8> {
        if user == self.user && password == self.password {
            self.logged_in = true;
            self.line("+OK Logged in.")
        } else {
            self.line("-ERR [AUTH] Authentication failed.")
        }
    }

    fn auth(&mut self, args: &str) -> Vec<u8> {
        let (mechanism, initial) = split_command(args);
        match (mechanism.to_ascii_uppercase().as_str(), initial) {
            ("PLAIN", "") => {
                self.sasl = Some(Sasl::PlainResponse);
                self.line("+ ")
            }
            ("PLAIN", initial) => self.plain(initial),
            ("LOGIN", "") => {
                self.sasl = Some(Sasl::LoginUser);
                self.line("+ VXNlcm5hbWU6")
            }
            _ => self.line("-ERR Unsupported authentication mechanism."),
        }
    }

    fn sasl_step(&mut self, step: Sasl, line: &str) -> Vec<u8> {
        if line == "*" {
            return self.line("-ERR Authentication aborted.");
        }
        let decoded = BASE64
            .decode(line.trim())
            .map(|octets| String::from_utf8_lossy(&octets).into_owned());
        let Ok(decoded) = decoded else {
            return self.line("-ERR Invalid base64 data.");
        };
        match step {
            Sasl::PlainResponse => self.plain(line),
            Sasl::LoginUser => {
                self.sasl = Some(Sasl::LoginPassword { user: decoded });
                self.line("+ UGFzc3dvcmQ6")
            }
            Sasl::LoginPassword { user } => self.login(&user, &decoded),
        }
    }

    /// `authzid NUL authcid NUL password`, base64 (RFC 4616).
    fn plain(&mut self, encoded: &str) -> Vec<u8> {
        let Ok(octets) = BASE64.decode(encoded.trim()) else {
            return self.line("-ERR Invalid base64 data.");
        };
        let text = String::from_utf8_lossy(&octets).into_owned();
        let mut parts = text.split('\0');
        let (_authzid, user, password) = (parts.next(), parts.next(), parts.next());
        match (user, password) {
            (Some(user), Some(password)) => self.login(user, password),
            _ => self.line("-ERR Malformed PLAIN response."),
        }
    }

    fn live(&self) -> impl Iterator<Item = (usize, &Vec<u8>)> {
        self.messages
            .iter()
            .enumerate()
            .map(|(index, body)| (index + 1, body))
            .filter(|(number, _)| !self.deleted.contains(number))
    }

    fn listing(&self, verb: &str, args: &str) -> Vec<u8> {
        let entry = |number: usize, body: &Vec<u8>| match verb {
            "LIST" => format!("{number} {}", body.len()),
            _ => format!("{number} uid-{number:06}"),
        };
        if args.is_empty() {
            let mut reply = self.line("+OK");
            for (number, body) in self.live() {
                reply.extend(self.line(&entry(number, body)));
            }
            reply.extend(self.line("."));
            return reply;
        }
        match self.message(args) {
            Ok(body) => {
                let number = self.number(args).unwrap_or_default();
                self.line(&format!("+OK {}", entry(number, body)))
            }
            Err(refusal) => refusal,
        }
    }

    /// A live message number from a command argument, or the `-ERR` to send.
    fn number(&self, args: &str) -> Result<usize, Vec<u8>> {
        let number = args
            .parse::<usize>()
            .ok()
            .filter(|number| (1..=self.messages.len()).contains(number))
            .ok_or_else(|| self.line("-ERR There's no message with that number."))?;
        if self.deleted.contains(&number) {
            return Err(self.line(&format!("-ERR Message {number} is already deleted.")));
        }
        Ok(number)
    }

    fn message(&self, args: &str) -> Result<&Vec<u8>, Vec<u8>> {
        let number = self.number(args)?;
        Ok(&self.messages[number - 1])
    }

    /// A body as it goes on the wire: a `.` doubled at every line start, a line end added
    /// if the last line lacks one, then the terminating `.` line.
    fn stuffed(&self, body: &[u8]) -> Vec<u8> {
        let mut wire = Vec::with_capacity(body.len() + 16);
        for line in body.split_inclusive(|octet| *octet == b'\n') {
            if line.first() == Some(&b'.') {
                wire.push(b'.');
            }
            wire.extend_from_slice(line);
        }
        if !wire.is_empty() && wire.last() != Some(&b'\n') {
            wire.extend_from_slice(self.eol);
        }
        wire.extend(self.line("."));
        wire
    }

    fn line(&self, text: &str) -> Vec<u8> {
        let mut line = text.as_bytes().to_vec();
        line.extend_from_slice(self.eol);
        line
    }
}

/// `VERB rest of the line`.
pub(super) fn split_command(line: &str) -> (&str, &str) {
    match line.split_once(' ') {
        Some((verb, args)) => (verb, args.trim()),
        None => (line, ""),
    }
}
