//! Errors a caller can act on: retry, back off, or stop and tell the admin.

use std::{fmt, io};

use crate::certificate::{CertificateProblem, CertificateRefusal, PresentedCertificate};
use crate::codec::{CommandKind, RespCode};

/// A `-ERR` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// The command that was refused.
    pub command: CommandKind,
    /// The RESP-CODE, if the server gave one.
    pub code: Option<RespCode>,
    /// The server's words.
    pub text: String,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(
                f,
                "the server refused {}: [{code}] {}",
                self.command, self.text
            ),
            None => write!(f, "the server refused {}: {}", self.command, self.text),
        }
    }
}

impl std::error::Error for ServerError {}

/// The server broke the protocol. The connection is never used again after one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("the server sent a line longer than {limit} octets")]
    LineTooLong { limit: usize },
    #[error("the server's reply to {command} is not POP3: {line:?}")]
    NotPop3 { command: CommandKind, line: String },
    #[error("the server's reply to {command} could not be read: {line:?}")]
    BadReply { command: CommandKind, line: String },
    #[error("the server's {command} listing is larger than any real mailbox's")]
    TooManyLines { command: CommandKind },
    #[error("the server sent a reply nobody asked for: {line:?}")]
    Unsolicited { line: String },
    #[error("a {command} argument contains a line break")]
    LineBreakInArgument { command: CommandKind },
}

/// Which time limit ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// Opening the TCP connection (and the TLS handshake).
    Connect,
    /// Waiting for the server's next bytes.
    Read,
    /// The whole session's deadline.
    Session,
}

/// Everything that can go wrong in a POP3 session.
///
/// Callers branch on meaning through the predicates ([`Error::is_transient`],
/// [`Error::is_auth`], [`Error::resp_code`], [`Error::is_timeout`]); the variants behind
/// them are for messages and may grow.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("could not connect to {address}: {source}")]
    Connect { address: String, source: io::Error },
    #[error("the connection to the server was lost: {0}")]
    ConnectionLost(io::Error),
    #[error("the server closed the connection")]
    ConnectionClosed,
    #[error("{}", timeout_text(*.0))]
    Timeout(TimeoutKind),
    #[error("TLS with the server failed: {0}")]
    Tls(io::Error),
    /// The server's certificate was refused; says why and what it presented.
    #[error("TLS with the server failed: {0}")]
    Certificate(Box<CertificateRefusal>),
    #[error("invalid TLS settings: {0}")]
    TlsConfig(String),
    #[error("{0}")]
    Server(ServerError),
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    #[error(
        "the server does not offer STLS, so the connection cannot be encrypted; refusing to go on in plaintext"
    )]
    StlsNotOffered,
    #[error(
        "the server sent data before the TLS handshake began (possible injection attack); connection dropped"
    )]
    StlsBufferNotEmpty,
    #[error(
        "refusing to sign in with {mechanism} over an unencrypted connection; use TLS or allow insecure authentication for this mailbox"
    )]
    InsecureAuthRefused { mechanism: &'static str },
    #[error(
        "the server offers no authentication method we can use with these credentials (server offers: {offered})"
    )]
    NoUsableAuthMethod { offered: String },
    #[error("the server does not support {0}")]
    NotSupported(&'static str),
    #[error("writing the message out failed: {0}")]
    Sink(io::Error),
    /// The server sent more of a message than the caller allowed (see
    /// [`MessageSink::max_octets`](crate::MessageSink::max_octets)): more than it
    /// announced in `LIST`, or a body without end. Reading stopped there.
    #[error(
        "the server sent more of message {number} than the {limit} octets allowed for it (its LIST size plus a margin); stopped reading it"
    )]
    BodyTooLong { number: u32, limit: u64 },
    #[error("the connection is unusable after an earlier error")]
    Broken,
}

fn timeout_text(kind: TimeoutKind) -> &'static str {
    match kind {
        TimeoutKind::Connect => "the server did not accept the connection in time",
        TimeoutKind::Read => "the server stopped answering (read timeout)",
        TimeoutKind::Session => "the session took longer than its deadline",
    }
}

impl Error {
    /// Whether trying again later, unchanged, may well succeed: network trouble,
    /// timeouts, a locked maildrop, LOGIN-DELAY, SYS/TEMP.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::ConnectionLost(_)
            | Error::ConnectionClosed
            | Error::Timeout(_)
            | Error::BodyTooLong { .. }
            | Error::Broken => true,
            Error::Server(server) => match &server.code {
                Some(code) => code.is_transient(),
                // Without a code only a refused login is clearly permanent.
                None => !server.command.is_authentication(),
            },
            // Something that is not POP3 from the first byte (an HTTP or TLS port, say)
            // is a setting to fix, not a hiccup to retry.
            Error::Protocol(ProtocolError::NotPop3 {
                command: CommandKind::Greeting,
                ..
            }) => false,
            Error::Protocol(_) => true,
            _ => false,
        }
    }

    /// Whether the credentials were refused: stop and tell the admin.
    pub fn is_auth(&self) -> bool {
        match self {
            Error::Server(server) => match &server.code {
                Some(RespCode::Auth) => true,
                Some(_) => false,
                None => server.command.is_authentication(),
            },
            _ => false,
        }
    }

    /// The RESP-CODE of a `-ERR`, if any.
    pub fn resp_code(&self) -> Option<&RespCode> {
        match self {
            Error::Server(server) => server.code.as_ref(),
            _ => None,
        }
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_))
    }

    /// Whether TLS failed (handshake, certificate, or settings): a person must look.
    pub fn is_tls(&self) -> bool {
        matches!(
            self,
            Error::Tls(_)
                | Error::Certificate(_)
                | Error::TlsConfig(_)
                | Error::StlsNotOffered
                | Error::StlsBufferNotEmpty
        )
    }

    /// The certificate the server presented, when it was refused: what a UI shows
    /// before offering to trust it (by [`PresentedCertificate::fingerprint`]).
    pub fn presented_certificate(&self) -> Option<&PresentedCertificate> {
        match self {
            Error::Certificate(refusal) => Some(&refusal.presented),
            _ => None,
        }
    }

    /// Why the server's certificate was refused, if that is what failed.
    pub fn certificate_problem(&self) -> Option<&CertificateProblem> {
        match self {
            Error::Certificate(refusal) => Some(&refusal.problem),
            _ => None,
        }
    }

    /// The `-ERR` behind this error, if it is one.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            Error::Server(server) => Some(server),
            _ => None,
        }
    }

    /// Whether a body was cut off at its allowed size ([`Error::BodyTooLong`]).
    pub fn is_body_too_long(&self) -> bool {
        matches!(self, Error::BodyTooLong { .. })
    }

    /// Whether the writer given to `RETR`/`TOP` failed (e.g. the disk is full).
    pub fn is_sink(&self) -> bool {
        matches!(self, Error::Sink(_))
    }
}

impl From<ServerError> for Error {
    fn from(error: ServerError) -> Error {
        Error::Server(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(command: CommandKind, code: Option<RespCode>) -> Error {
        Error::Server(ServerError {
            command,
            code,
            text: "x".into(),
        })
    }

    #[test]
    fn callers_can_tell_retry_from_stop() {
        assert!(server(CommandKind::Pass, Some(RespCode::InUse)).is_transient());
        assert!(!server(CommandKind::Pass, Some(RespCode::InUse)).is_auth());
        assert!(server(CommandKind::Pass, Some(RespCode::LoginDelay)).is_transient());
        assert!(server(CommandKind::Retr, Some(RespCode::SysTemp)).is_transient());
        assert!(!server(CommandKind::Retr, Some(RespCode::SysPerm)).is_transient());
        assert!(server(CommandKind::Auth, Some(RespCode::Auth)).is_auth());
        assert!(server(CommandKind::Pass, None).is_auth());
        assert!(!server(CommandKind::Pass, None).is_transient());
        assert!(Error::Timeout(TimeoutKind::Read).is_timeout());
        assert!(Error::Timeout(TimeoutKind::Read).is_transient());
        assert!(Error::StlsNotOffered.is_tls() && !Error::StlsNotOffered.is_transient());
        let not_pop3 = |command| {
            Error::Protocol(ProtocolError::NotPop3 {
                command,
                line: "HTTP/1.1 400 Bad Request".into(),
            })
        };
        assert!(!not_pop3(CommandKind::Greeting).is_transient());
        assert!(not_pop3(CommandKind::Retr).is_transient());
        assert_eq!(
            server(CommandKind::Pass, Some(RespCode::InUse)).resp_code(),
            Some(&RespCode::InUse)
        );
    }
}
