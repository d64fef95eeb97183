//! The thin tokio driver: sockets, TLS and time limits around the I/O-free [`Session`].

mod batch;
mod login;
mod options;
mod server_cert;
mod transport;

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf as _;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

pub use batch::MessageSink;
pub use options::{ConnectOptions, Security, Timeouts};
use transport::Stream;

use crate::codec::{Command, CommandKind};
use crate::error::{Error, ProtocolError, TimeoutKind};
use crate::session::{Event, Session};
use crate::types::{Capabilities, Greeting, ListEntry, QuitOutcome, Retrieved, Stat, UidlEntry};

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 * 1024;

/// A connected POP3 session.
///
/// Every method either completes its command or returns an error; after a protocol
/// error, a timeout or a lost connection the client refuses further commands
/// ([`Error::Broken`]) because its place in the reply stream is no longer known.
pub struct Client {
    stream: Stream,
    session: Session,
    options: ConnectOptions,
    greeting: Greeting,
    capabilities: Capabilities,
    session_deadline: Option<Instant>,
    needs_flush: bool,
    broken: bool,
    authenticated: bool,
}

impl Client {
    /// Connects, reads the greeting and capabilities, and (for [`Security::StartTls`])
    /// upgrades with STLS and reads the capabilities again.
    pub async fn connect(options: &ConnectOptions) -> Result<Client, Error> {
        let now = Instant::now();
        let session_deadline = options.timeouts.session.map(|limit| now + limit);
        let connect_deadline = earliest(now + options.timeouts.connect, session_deadline);
        let address = format!("{}:{}", options.host, options.port);

        let tcp = match timeout_at(
            connect_deadline,
            TcpStream::connect((options.host.as_str(), options.port)),
        )
        .await
        {
            Err(_) => return Err(Error::Timeout(TimeoutKind::Connect)),
            Ok(Err(source)) => return Err(Error::Connect { address, source }),
            Ok(Ok(tcp)) => tcp,
        };
        // Commands are tiny and latency matters more than packet count.
        let _ = tcp.set_nodelay(true);

        let stream = match options.security {
            Security::Implicit => {
                let tls_setup = transport::connector(options)?;
                let tls = timeout_at(
                    connect_deadline,
                    transport::handshake(&tls_setup, &options.host, tcp),
                )
                .await
                .map_err(|_| Error::Timeout(TimeoutKind::Connect))??;
                Stream::Tls(Box::new(tls))
            }
            Security::StartTls | Security::None => Stream::Plain(tcp),
        };

        let mut client = Client {
            stream,
            session: Session::new(),
            options: options.clone(),
            greeting: Greeting::parse(String::new()),
            capabilities: Capabilities::default(),
            session_deadline,
            needs_flush: false,
            broken: false,
            authenticated: false,
        };
        client.greeting = match client.next_event().await? {
            Event::Greeting(greeting) => greeting,
            Event::Err(refused) => return Err(refused.into()),
            other => return Err(client.out_of_step(CommandKind::Greeting, other)),
        };
        client.capabilities = client.capa().await?;
        if options.security == Security::StartTls {
            client.start_tls().await?;
        }
        Ok(client)
    }

    async fn start_tls(&mut self) -> Result<(), Error> {
        if !self.capabilities.stls() {
            self.broken = true;
            return Err(Error::StlsNotOffered);
        }
        self.simple(Command::Stls).await?;
        // Anything already buffered arrived before the handshake and could be an
        // attacker's injected reply (CVE-2011-0411-style); it must not be trusted.
        if !self.session.input().is_empty() {
            self.broken = true;
            return Err(Error::StlsBufferNotEmpty);
        }
        let tls_setup = transport::connector(&self.options)?;
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            self.broken = true;
            return Err(Error::Broken);
        };
        let deadline = earliest(
            Instant::now() + self.options.timeouts.connect,
            self.session_deadline,
        );
        let tls = match timeout_at(
            deadline,
            transport::handshake(&tls_setup, &self.options.host, tcp),
        )
        .await
        {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => {
                self.broken = true;
                return Err(error);
            }
            Err(_) => {
                self.broken = true;
                return Err(Error::Timeout(TimeoutKind::Connect));
            }
        };
        self.stream = Stream::Tls(Box::new(tls));
        // What the server offers may change once the channel is private (RFC 2595).
        self.capabilities = self.capa().await?;
        Ok(())
    }

    /// The server's greeting.
    pub fn greeting(&self) -> &Greeting {
        &self.greeting
    }

    /// The capabilities last read (after TLS, and again after login).
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Whether the connection is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.stream.is_encrypted()
    }

    /// Whether the client may still be used.
    pub fn is_usable(&self) -> bool {
        !self.broken && !self.session.is_broken()
    }

    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Whether commands will be pipelined (the server offers it and the caller allows it).
    pub fn is_pipelining(&self) -> bool {
        self.options.pipelining && self.capabilities.pipelining()
    }

    fn window(&self) -> usize {
        if self.is_pipelining() {
            self.options.pipeline_window.max(1)
        } else {
            1
        }
    }

    /// `CAPA`; an RFC 1939-only server's `-ERR` gives empty, unsupported capabilities.
    pub async fn capa(&mut self) -> Result<Capabilities, Error> {
        self.send(&Command::Capa)?;
        match self.next_event().await? {
            Event::Capabilities(capabilities) => Ok(capabilities),
            Event::Err(_) => Ok(Capabilities::unsupported()),
            other => Err(self.out_of_step(CommandKind::Capa, other)),
        }
    }

    /// `STAT`
    pub async fn stat(&mut self) -> Result<Stat, Error> {
        self.send(&Command::Stat)?;
        match self.next_event().await? {
            Event::Stat(stat) => Ok(stat),
            Event::Err(refused) => Err(refused.into()),
            other => Err(self.out_of_step(CommandKind::Stat, other)),
        }
    }

    /// `LIST`: every message's number and size.
    pub async fn list(&mut self) -> Result<Vec<ListEntry>, Error> {
        self.send(&Command::List(None))?;
        match self.next_event().await? {
            Event::Listing(entries) => Ok(entries),
            Event::Err(refused) => Err(refused.into()),
            other => Err(self.out_of_step(CommandKind::List, other)),
        }
    }

    /// `LIST n`
    pub async fn list_one(&mut self, number: u32) -> Result<ListEntry, Error> {
        self.send(&Command::List(Some(number)))?;
        match self.next_event().await? {
            Event::Scan(entry) => Ok(entry),
            Event::Err(refused) => Err(refused.into()),
            other => Err(self.out_of_step(CommandKind::List, other)),
        }
    }

    /// `UIDL`: every message's unique id.
    pub async fn uidl(&mut self) -> Result<Vec<UidlEntry>, Error> {
        self.send(&Command::Uidl(None))?;
        match self.next_event().await? {
            Event::UniqueIds(entries) => Ok(entries),
            Event::Err(refused) => Err(refused.into()),
            other => Err(self.out_of_step(CommandKind::Uidl, other)),
        }
    }

    /// `UIDL n`
    pub async fn uidl_one(&mut self, number: u32) -> Result<UidlEntry, Error> {
        self.send(&Command::Uidl(Some(number)))?;
        match self.next_event().await? {
            Event::Unique(entry) => Ok(entry),
            Event::Err(refused) => Err(refused.into()),
            other => Err(self.out_of_step(CommandKind::Uidl, other)),
        }
    }

    /// `RETR n`, streamed into `out` with dot-stuffing removed. Memory use does not grow
    /// with the message. If `out` fails the client is unusable afterwards (the rest of the
    /// body is still on the wire) and the error is [`Error::Sink`].
    pub async fn retr<W>(&mut self, number: u32, out: &mut W) -> Result<Retrieved, Error>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        self.send(&Command::Retr(number))?;
        self.read_body(number, out).await
    }

    /// `TOP n lines`: the headers and the first `lines` body lines, streamed into `out`.
    pub async fn top<W>(&mut self, number: u32, lines: u32, out: &mut W) -> Result<Retrieved, Error>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        self.send(&Command::Top { msg: number, lines })?;
        self.read_body(number, out).await
    }

    /// `DELE n`. Final only when [`Client::quit`] reports [`QuitOutcome::Committed`].
    pub async fn dele(&mut self, number: u32) -> Result<(), Error> {
        self.simple(Command::Dele(number)).await.map(drop)
    }

    /// `RSET`: undo this session's deletions.
    pub async fn rset(&mut self) -> Result<(), Error> {
        self.simple(Command::Rset).await.map(drop)
    }

    /// `NOOP`
    pub async fn noop(&mut self) -> Result<(), Error> {
        self.simple(Command::Noop).await.map(drop)
    }

    /// `QUIT`, and what it means for this session's deletions.
    pub async fn quit(mut self) -> QuitOutcome {
        if !self.is_usable() {
            return QuitOutcome::NotCommitted {
                reason: "the connection was already unusable, so QUIT was not sent".into(),
            };
        }
        if let Err(error) = self.send(&Command::Quit) {
            return QuitOutcome::NotCommitted {
                reason: error.to_string(),
            };
        }
        let outcome = match self.next_event().await {
            Ok(Event::Ok { .. }) => QuitOutcome::Committed,
            Ok(Event::Err(refused)) => QuitOutcome::Unknown {
                reason: refused.text,
            },
            Ok(other) => QuitOutcome::Unknown {
                reason: format!("unexpected reply to QUIT: {other:?}"),
            },
            Err(error) => QuitOutcome::NotCommitted {
                reason: error.to_string(),
            },
        };
        let _ = timeout_at(
            Instant::now() + self.options.timeouts.read,
            self.stream.shutdown(),
        )
        .await;
        outcome
    }

    /// Sends a command with a single-line reply and returns the `+OK` text.
    async fn simple(&mut self, command: Command) -> Result<String, Error> {
        let kind = command.kind();
        self.send(&command)?;
        match self.next_event().await? {
            Event::Ok { text, .. } => Ok(text),
            Event::Err(refused) => Err(refused.into()),
            other => Err(self.out_of_step(kind, other)),
        }
    }

    async fn read_body<W>(&mut self, number: u32, out: &mut W) -> Result<Retrieved, Error>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        match self.next_event().await? {
            Event::BodyStart { .. } => {}
            Event::Err(refused) => return Err(refused.into()),
            other => return Err(self.out_of_step(CommandKind::Retr, other)),
        }
        self.stream_body(number, out, None).await
    }

    /// Copies body chunks to `out` until the terminator; the `+OK` was already read.
    /// Past `limit` octets it stops before writing the chunk that would cross it.
    async fn stream_body<W>(
        &mut self,
        number: u32,
        out: &mut W,
        limit: Option<u64>,
    ) -> Result<Retrieved, Error>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let mut written = 0u64;
        loop {
            match self.next_event().await? {
                Event::BodyData => {
                    let chunk = self.session.take_body();
                    written = written.saturating_add(chunk.len() as u64);
                    if let Some(limit) = limit
                        && written > limit
                    {
                        // The rest of the body is still on the wire.
                        self.broken = true;
                        return Err(Error::BodyTooLong { number, limit });
                    }
                    if let Err(error) = out.write_all(&chunk).await {
                        self.broken = true;
                        return Err(Error::Sink(error));
                    }
                }
                Event::BodyEnd { octets, .. } => {
                    if let Err(error) = out.flush().await {
                        self.broken = true;
                        return Err(Error::Sink(error));
                    }
                    return Ok(Retrieved { number, octets });
                }
                other => return Err(self.out_of_step(CommandKind::Retr, other)),
            }
        }
    }

    fn send(&mut self, command: &Command) -> Result<(), Error> {
        if self.broken {
            return Err(Error::Broken);
        }
        self.session.send(command).map_err(|error| match error {
            // A bad argument is the caller's mistake, not the connection's.
            ProtocolError::LineBreakInArgument { .. } => Error::Protocol(error),
            // The server sent a reply nobody asked for: our place in its replies is lost.
            ProtocolError::Unsolicited { .. } => {
                self.broken = true;
                Error::Protocol(error)
            }
            _ => {
                self.broken = true;
                Error::Broken
            }
        })
    }

    /// The next event, reading (and writing queued commands) as needed.
    async fn next_event(&mut self) -> Result<Event, Error> {
        if self.broken {
            return Err(Error::Broken);
        }
        loop {
            match self.session.poll_event() {
                Ok(Some(event)) => return Ok(event),
                Ok(None) => {}
                Err(error) => {
                    self.broken = true;
                    return Err(error.into());
                }
            }
            if let Err(error) = self.exchange().await {
                self.broken = true;
                return Err(error);
            }
        }
    }

    /// Writes queued commands and reads whatever the server sends, at the same time, until
    /// some bytes were read. Reading while writing is what keeps a pipelining client from
    /// deadlocking against a server that is itself blocked writing replies.
    async fn exchange(&mut self) -> Result<(), Error> {
        let now = Instant::now();
        let read_deadline = now + self.options.timeouts.read;
        let deadline = earliest(read_deadline, self.session_deadline);
        let kind = if deadline < read_deadline {
            TimeoutKind::Session
        } else {
            TimeoutKind::Read
        };
        match timeout_at(deadline, poll_fn(|cx| self.poll_exchange(cx))).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout(kind)),
        }
    }

    fn poll_exchange(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let output = self.session.output();
        while !output.is_empty() {
            match Pin::new(&mut self.stream).poll_write(cx, output) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(Error::ConnectionClosed)),
                Poll::Ready(Ok(written)) => {
                    output.advance(written);
                    self.needs_flush = true;
                }
                Poll::Ready(Err(error)) => return Poll::Ready(Err(Error::ConnectionLost(error))),
                Poll::Pending => break,
            }
        }
        if output.is_empty() && self.needs_flush {
            // TLS buffers records; flushing pushes them onto the socket.
            match Pin::new(&mut self.stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.needs_flush = false,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(Error::ConnectionLost(error))),
                Poll::Pending => {}
            }
        }
        let input = self.session.input();
        input.reserve(READ_CHUNK);
        match tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, input) {
            Poll::Ready(Ok(0)) => Poll::Ready(Err(Error::ConnectionClosed)),
            Poll::Ready(Ok(_)) => Poll::Ready(Ok(())),
            Poll::Ready(Err(error)) => Poll::Ready(Err(Error::ConnectionLost(error))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// An event that cannot answer the command we sent: our place in the stream is lost.
    fn out_of_step(&mut self, command: CommandKind, event: Event) -> Error {
        self.broken = true;
        Error::Protocol(ProtocolError::BadReply {
            command,
            line: format!("{event:?}").chars().take(80).collect(),
        })
    }
}

fn earliest(deadline: Instant, other: Option<Instant>) -> Instant {
    match other {
        Some(other) if other < deadline => other,
        _ => deadline,
    }
}
