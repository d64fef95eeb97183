//! A POP3 conversation driven by hand, line by line.
//!
//! Fixtures are checked with the bytes on the wire, not with the client under test:
//! the testkit's own tests use this, and other tests can use it to put a server into a
//! state (hold the mailbox lock, look at what is left) independently of the client
//! they are testing. It knows nothing of POP3 beyond lines and the `.` terminator.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Longest line accepted from the server; a longer one is an error, not a hang.
const MAX_LINE: usize = 1024 * 1024;

/// A TCP or TLS byte stream.
trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

enum Stream {
    Plain(BufReader<TcpStream>),
    Tls(Box<BufReader<TlsStream<TcpStream>>>),
}

/// One POP3 connection, spoken to by hand.
///
/// Every read has a timeout (30 s by default, enough for Dovecot's 10 s `[IN-USE]`
/// wait), so a test that expects a reply the server never sends fails instead of
/// hanging.
pub struct RawSession {
    stream: Stream,
    greeting: String,
    timeout: Duration,
}

impl RawSession {
    /// Connects in plaintext and reads the greeting.
    pub async fn connect(addr: SocketAddr) -> io::Result<RawSession> {
        let timeout = Duration::from_secs(30);
        let tcp = with_timeout(timeout, TcpStream::connect(addr)).await??;
        let mut session = RawSession {
            stream: Stream::Plain(BufReader::new(tcp)),
            greeting: String::new(),
            timeout,
        };
        session.greeting = session.read_line().await?;
        Ok(session)
    }

    /// Connects with implicit TLS (POP3S), verifying the server as `server_name`, and
    /// reads the greeting.
    pub async fn connect_tls(
        addr: SocketAddr,
        server_name: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> io::Result<RawSession> {
        let timeout = Duration::from_secs(30);
        let tcp = with_timeout(timeout, TcpStream::connect(addr)).await??;
        let tls = handshake(tcp, server_name, config, timeout).await?;
        let mut session = RawSession {
            stream: Stream::Tls(Box::new(BufReader::new(tls))),
            greeting: String::new(),
            timeout,
        };
        session.greeting = session.read_line().await?;
        Ok(session)
    }

    /// Sends `STLS`, expects `+OK`, and upgrades the connection to TLS.
    ///
    /// Fails if the server sent anything after its `+OK` before the handshake: such
    /// bytes would be injected plaintext.
    pub async fn stls(
        self,
        server_name: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> io::Result<RawSession> {
        let mut this = self;
        let reply = this.command("STLS").await?;
        if !reply.starts_with("+OK") {
            return Err(io::Error::other(format!("STLS refused: {reply}")));
        }
        let Stream::Plain(reader) = this.stream else {
            return Err(io::Error::other("STLS on a connection that is already TLS"));
        };
        if !reader.buffer().is_empty() {
            return Err(io::Error::other("bytes after the STLS reply, before TLS"));
        }
        let tls = handshake(reader.into_inner(), server_name, config, this.timeout).await?;
        Ok(RawSession {
            stream: Stream::Tls(Box::new(BufReader::new(tls))),
            greeting: this.greeting,
            timeout: this.timeout,
        })
    }

    /// The greeting line, without CRLF (e.g. `+OK ... <ts@host>` with APOP).
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// Changes the timeout for each later read and write.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Whether the connection is TLS (after `connect_tls` or `stls`).
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// Sends `line` followed by CRLF.
    pub async fn send(&mut self, line: &str) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.send_raw(&bytes).await
    }

    /// Sends bytes as they are (for pipelining several commands in one write).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let timeout = self.timeout;
        let stream = self.transport();
        with_timeout(timeout, async {
            stream.write_all(bytes).await?;
            stream.flush().await
        })
        .await?
    }

    /// Reads one line, without its CRLF. End of stream is an `UnexpectedEof` error.
    pub async fn read_line(&mut self) -> io::Result<String> {
        let timeout = self.timeout;
        let mut line = Vec::new();
        let read = async {
            loop {
                let n = match &mut self.stream {
                    Stream::Plain(r) => read_until_lf(r, &mut line).await?,
                    Stream::Tls(r) => read_until_lf(&mut **r, &mut line).await?,
                };
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "connection closed; partial line {:?}",
                            String::from_utf8_lossy(&line)
                        ),
                    ));
                }
                if line.ends_with(b"\n") {
                    return Ok(());
                }
                if line.len() > MAX_LINE {
                    return Err(io::Error::other("line longer than 1 MiB"));
                }
            }
        };
        with_timeout(timeout, read).await??;
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Reads the body of a multi-line reply up to the `.` line, dot-unstuffed, one
    /// string per line (the status line must already have been read).
    pub async fn read_multiline(&mut self) -> io::Result<Vec<String>> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line().await?;
            if line == "." {
                return Ok(lines);
            }
            lines.push(match line.strip_prefix('.') {
                Some(rest) => rest.to_owned(),
                None => line,
            });
        }
    }

    /// Sends a command and returns its one-line reply.
    pub async fn command(&mut self, line: &str) -> io::Result<String> {
        self.send(line).await?;
        self.read_line().await
    }

    /// `USER`/`PASS`; returns the reply to `PASS` (or to `USER` if that failed).
    pub async fn login(&mut self, user: &str, password: &str) -> io::Result<String> {
        let reply = self.command(&format!("USER {user}")).await?;
        if !reply.starts_with("+OK") {
            return Ok(reply);
        }
        self.command(&format!("PASS {password}")).await
    }

    fn transport(&mut self) -> &mut dyn Transport {
        match &mut self.stream {
            Stream::Plain(r) => r,
            Stream::Tls(r) => &mut **r,
        }
    }
}

async fn read_until_lf<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> io::Result<usize> {
    // `take` bounds one call; the caller loops and checks the total.
    let mut limited = (&mut *reader).take(64 * 1024);
    limited.read_until(b'\n', line).await
}

async fn handshake(
    tcp: TcpStream,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> io::Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    with_timeout(timeout, TlsConnector::from(config).connect(name, tcp)).await?
}

async fn with_timeout<F: Future>(timeout: Duration, fut: F) -> io::Result<F::Output> {
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "POP3 peer did not answer in time"))
}
