//! Commands, their wire form, and their redacted trace form.

use std::fmt;

use bytes::BytesMut;

/// Which command a reply answers; carried in errors so a caller knows what failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    Greeting,
    Capa,
    Stls,
    User,
    Pass,
    Apop,
    Auth,
    Stat,
    List,
    Uidl,
    Top,
    Retr,
    Dele,
    Rset,
    Noop,
    Quit,
}

impl CommandKind {
    /// Whether a refusal of this command is about the credentials.
    pub fn is_authentication(self) -> bool {
        matches!(
            self,
            CommandKind::User | CommandKind::Pass | CommandKind::Apop | CommandKind::Auth
        )
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            CommandKind::Greeting => "greeting",
            CommandKind::Capa => "CAPA",
            CommandKind::Stls => "STLS",
            CommandKind::User => "USER",
            CommandKind::Pass => "PASS",
            CommandKind::Apop => "APOP",
            CommandKind::Auth => "AUTH",
            CommandKind::Stat => "STAT",
            CommandKind::List => "LIST",
            CommandKind::Uidl => "UIDL",
            CommandKind::Top => "TOP",
            CommandKind::Retr => "RETR",
            CommandKind::Dele => "DELE",
            CommandKind::Rset => "RSET",
            CommandKind::Noop => "NOOP",
            CommandKind::Quit => "QUIT",
        };
        f.write_str(name)
    }
}

/// One client command. Secret-bearing variants never show their secret in `Debug` or
/// `Display`, so a protocol trace can log commands as they are.
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    Capa,
    Stls,
    User(String),
    Pass(String),
    Apop {
        user: String,
        digest: String,
    },
    /// `AUTH mechanism [initial-response]`; the response is already base64.
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
    /// A line answering a SASL challenge (base64, or `*` to cancel). Not a command of its
    /// own: it continues the `AUTH` exchange.
    SaslResponse(String),
    Stat,
    List(Option<u32>),
    Uidl(Option<u32>),
    Top {
        msg: u32,
        lines: u32,
    },
    Retr(u32),
    Dele(u32),
    Rset,
    Noop,
    Quit,
}

impl Command {
    /// The kind of reply this command is answered with.
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::Capa => CommandKind::Capa,
            Command::Stls => CommandKind::Stls,
            Command::User(_) => CommandKind::User,
            Command::Pass(_) => CommandKind::Pass,
            Command::Apop { .. } => CommandKind::Apop,
            Command::Auth { .. } | Command::SaslResponse(_) => CommandKind::Auth,
            Command::Stat => CommandKind::Stat,
            Command::List(_) => CommandKind::List,
            Command::Uidl(_) => CommandKind::Uidl,
            Command::Top { .. } => CommandKind::Top,
            Command::Retr(_) => CommandKind::Retr,
            Command::Dele(_) => CommandKind::Dele,
            Command::Rset => CommandKind::Rset,
            Command::Noop => CommandKind::Noop,
            Command::Quit => CommandKind::Quit,
        }
    }

    /// Whether the command carries a user-supplied argument that must not contain a line
    /// break (which would let it smuggle a second command).
    pub fn has_safe_arguments(&self) -> bool {
        let args: &[&str] = match self {
            Command::User(user) => &[user],
            Command::Pass(pass) => &[pass],
            Command::Apop { user, digest } => &[user, digest],
            Command::Auth {
                mechanism,
                initial: Some(initial),
            } => &[mechanism, initial],
            Command::Auth { mechanism, .. } => &[mechanism],
            Command::SaslResponse(response) => &[response],
            _ => &[],
        };
        args.iter().all(|arg| !arg.contains(['\r', '\n']))
    }

    /// Appends the wire form, CRLF included.
    pub fn encode(&self, out: &mut BytesMut) {
        use std::fmt::Write as _;
        // Writing into a BytesMut cannot fail.
        let _ = match self {
            Command::Capa => write!(out, "CAPA"),
            Command::Stls => write!(out, "STLS"),
            Command::User(user) => write!(out, "USER {user}"),
            Command::Pass(pass) => write!(out, "PASS {pass}"),
            Command::Apop { user, digest } => write!(out, "APOP {user} {digest}"),
            Command::Auth {
                mechanism,
                initial: None,
            } => write!(out, "AUTH {mechanism}"),
            Command::Auth {
                mechanism,
                initial: Some(initial),
            } => write!(out, "AUTH {mechanism} {initial}"),
            Command::SaslResponse(response) => write!(out, "{response}"),
            Command::Stat => write!(out, "STAT"),
            Command::List(None) => write!(out, "LIST"),
            Command::List(Some(msg)) => write!(out, "LIST {msg}"),
            Command::Uidl(None) => write!(out, "UIDL"),
            Command::Uidl(Some(msg)) => write!(out, "UIDL {msg}"),
            Command::Top { msg, lines } => write!(out, "TOP {msg} {lines}"),
            Command::Retr(msg) => write!(out, "RETR {msg}"),
            Command::Dele(msg) => write!(out, "DELE {msg}"),
            Command::Rset => write!(out, "RSET"),
            Command::Noop => write!(out, "NOOP"),
            Command::Quit => write!(out, "QUIT"),
        };
        out.extend_from_slice(b"\r\n");
    }

    /// Length of the wire form including CRLF (RFC 5034 limits an AUTH line to 255).
    pub fn encoded_len(&self) -> usize {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.len()
    }
}

/// The trace form: what a debug log may show. Passwords, APOP digests and SASL data are
/// replaced, because a trace is exactly what people paste into bug reports.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Pass(_) => f.write_str("PASS <redacted>"),
            Command::Apop { user, .. } => write!(f, "APOP {user} <redacted>"),
            Command::Auth {
                mechanism,
                initial: Some(_),
            } => write!(f, "AUTH {mechanism} <redacted>"),
            Command::SaslResponse(_) => f.write_str("<redacted SASL response>"),
            other => {
                let mut out = BytesMut::new();
                other.encode(&mut out);
                f.write_str(String::from_utf8_lossy(&out).trim_end())
            }
        }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(command: Command) -> Vec<u8> {
        let mut out = BytesMut::new();
        command.encode(&mut out);
        out.to_vec()
    }

    #[test]
    fn wire_forms() {
        assert_eq!(wire(Command::Retr(7)), b"RETR 7\r\n");
        assert_eq!(wire(Command::Top { msg: 3, lines: 0 }), b"TOP 3 0\r\n");
        assert_eq!(wire(Command::Uidl(None)), b"UIDL\r\n");
        assert_eq!(wire(Command::Pass("s3cret".into())), b"PASS s3cret\r\n");
        assert_eq!(
            wire(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGEAYg==".into())
            }),
            b"AUTH PLAIN AGEAYg==\r\n"
        );
    }

    #[test]
    fn secrets_never_reach_traces() {
        let secret = "hunter2-very-secret";
        for command in [
            Command::Pass(secret.into()),
            Command::Apop {
                user: "u".into(),
                digest: secret.into(),
            },
            Command::Auth {
                mechanism: "XOAUTH2".into(),
                initial: Some(secret.into()),
            },
            Command::SaslResponse(secret.into()),
        ] {
            assert!(!command.to_string().contains(secret));
            assert!(!format!("{command:?}").contains(secret));
        }
    }

    #[test]
    fn line_breaks_in_arguments_are_caught() {
        assert!(!Command::User("bob\r\nDELE 1".into()).has_safe_arguments());
        assert!(Command::User("bob".into()).has_safe_arguments());
    }
}
