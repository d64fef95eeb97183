//! Faults a real Dovecot cannot be made to produce, against `FaultyServer` — a
//! hand-written fake POP3 server for fault cases only (see `fake_server/mod.rs`).
//!
//! Each test names the DESIGN.md promise it protects: 1 no message is lost, 6 nothing
//! hangs, 7 secrets stay secret. Every test is bounded in time, so a regression shows up
//! as a failure, never as a CI run that hangs.

mod fake_server;

use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use pop3::{
    AuthMethod, Client, CommandKind, ConnectOptions, Credentials, Error, MessageSink,
    ProtocolError, QuitOutcome, RespCode, Retrieved, Security, ServerError, TimeoutKind, Timeouts,
};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::Instant;
use tracing::instrument::WithSubscriber as _;

use fake_server::{Fault, FaultyServer, On, PASSWORD, Script, USER};

/// No test here may take longer; far beyond what any of them needs.
const BOUND: Duration = Duration::from_secs(15);

/// Runs a test body, failing it (instead of hanging CI) if it takes longer than `BOUND`.
async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, test)
        .await
        .expect("the test hung: promise 6 says nothing hangs")
}

/// The error of a call that must fail (`Client` is not `Debug`, so no `expect_err`).
fn failure<T>(result: Result<T, Error>, what: &str) -> Error {
    match result {
        Ok(_) => panic!("{what} succeeded, but it must fail"),
        Err(error) => error,
    }
}

async fn connect(options: &ConnectOptions) -> Client {
    Client::connect(options)
        .await
        .expect("connecting to the fake")
}

async fn logged_in(server: &FaultyServer) -> Client {
    let mut client = connect(&server.options()).await;
    client
        .authenticate(&server.credentials(), AuthMethod::User)
        .await
        .expect("logging in to the fake");
    client
}

/// `count` distinct messages of about `size` octets, CRLF lines, no dots at line starts.
fn plain_messages(count: usize, size: usize) -> Vec<Vec<u8>> {
    (1..=count)
        .map(|number| {
            let mut message = format!("Subject: message {number}\r\n\r\n").into_bytes();
            let mut line = 0;
            while message.len() < size {
                line += 1;
                message.extend(format!("line {line:05} of message {number}\r\n").into_bytes());
            }
            message
        })
        .collect()
}

/// Keeps what `retr_batch` delivers, and in what order it was told.
#[derive(Debug, Default)]
struct Collected {
    opened: Vec<u32>,
    finished: Vec<(u32, Vec<u8>)>,
    refused: Vec<(u32, ServerError)>,
}

impl Collected {
    fn finished_numbers(&self) -> Vec<u32> {
        self.finished.iter().map(|(number, _)| *number).collect()
    }
}

impl MessageSink for Collected {
    type Writer = Vec<u8>;

    async fn open(&mut self, number: u32) -> io::Result<Vec<u8>> {
        self.opened.push(number);
        Ok(Vec::new())
    }

    async fn finish(&mut self, writer: Vec<u8>, retrieved: Retrieved) -> io::Result<()> {
        assert_eq!(retrieved.octets, writer.len() as u64, "octets reported");
        self.finished.push((retrieved.number, writer));
        Ok(())
    }

    async fn refused(&mut self, number: u32, error: ServerError) -> io::Result<()> {
        self.refused.push((number, error));
        Ok(())
    }
}

/// Counts what `retr_batch` delivers without keeping it.
#[derive(Debug, Default)]
struct Counted {
    finished: usize,
    octets: u64,
}

impl MessageSink for Counted {
    type Writer = tokio::io::Sink;

    async fn open(&mut self, _number: u32) -> io::Result<tokio::io::Sink> {
        Ok(tokio::io::sink())
    }

    async fn finish(&mut self, _writer: tokio::io::Sink, retrieved: Retrieved) -> io::Result<()> {
        self.finished += 1;
        self.octets += retrieved.octets;
        Ok(())
    }

    async fn refused(&mut self, number: u32, error: ServerError) -> io::Result<()> {
        panic!("message {number} was refused: {error}");
    }
}

fn assert_not_committed(outcome: QuitOutcome) {
    assert!(
        matches!(outcome, QuitOutcome::NotCommitted { .. }),
        "a broken session must not report its deletions as committed: {outcome:?}"
    );
}

/// A client that lost its place must refuse everything after, and never send QUIT.
async fn assert_unusable(mut client: Client) {
    assert!(!client.is_usable());
    let later = failure(client.stat().await, "STAT after a failure");
    assert!(matches!(later, Error::Broken), "{later:?}");
    assert_not_committed(client.quit().await);
}

// --- 1. A connection cut mid-RETR ----------------------------------------------------

#[tokio::test]
async fn connection_cut_mid_retr_reports_lost_connection_and_keeps_nothing_half_done() {
    bounded(async {
        let messages = plain_messages(2, 4096);
        let server = FaultyServer::start(
            Script::new()
                .messages(messages.clone())
                .fault(On::CommandWith("RETR", "1"), Fault::CutInBody(1000)),
        )
        .await;
        let mut client = logged_in(&server).await;

        let mut out = Vec::new();
        let error = failure(client.retr(1, &mut out).await, "RETR of a cut message");
        assert!(
            error.is_transient(),
            "a cut connection is worth a retry: {error:?}"
        );
        assert!(matches!(error, Error::ConnectionClosed), "{error:?}");
        // Exactly what arrived, and never presented as the whole message.
        assert_eq!(out, messages[0][..1000]);
        assert!(!server.record().saw("DELE"));
        assert_unusable(client).await;
    })
    .await;
}

#[tokio::test]
async fn connection_reset_mid_retr_is_transient_and_leaves_only_a_prefix() {
    bounded(async {
        let messages = plain_messages(1, 64 * 1024);
        let server = FaultyServer::start(
            Script::new()
                .messages(messages.clone())
                .fault(On::Command("RETR"), Fault::ResetInBody(20_000)),
        )
        .await;
        let mut client = logged_in(&server).await;

        let mut out = Vec::new();
        let error = failure(client.retr(1, &mut out).await, "RETR of a reset message");
        assert!(error.is_transient(), "{error:?}");
        assert!(
            matches!(error, Error::ConnectionLost(_) | Error::ConnectionClosed),
            "{error:?}"
        );
        // A reset may discard what was in flight: the writer holds a prefix, never more.
        assert!(out.len() <= 20_000 && messages[0].starts_with(&out));
        assert_unusable(client).await;
    })
    .await;
}

// --- 2. A connection cut mid-batch, while pipelining ---------------------------------

#[tokio::test]
async fn connection_cut_mid_pipelined_retr_batch_finishes_only_complete_messages() {
    bounded(async {
        let messages = plain_messages(5, 2000);
        let server = FaultyServer::start(
            Script::new()
                .messages(messages.clone())
                .fault(On::CommandWith("RETR", "3"), Fault::CutInBody(700)),
        )
        .await;
        let mut client = logged_in(&server).await;
        assert!(client.is_pipelining());

        let mut sink = Collected::default();
        let error = failure(
            client.retr_batch(&[1, 2, 3, 4, 5], &mut sink).await,
            "a batch over a cut connection",
        );
        assert!(error.is_transient(), "{error:?}");
        // Message 3 was begun but never finished: nothing may commit it.
        assert_eq!(sink.opened, [1, 2, 3]);
        assert_eq!(sink.finished_numbers(), [1, 2]);
        assert_eq!(sink.finished[0].1, messages[0]);
        assert_eq!(sink.finished[1].1, messages[1]);
        assert!(sink.refused.is_empty());
        // The RETRs went out together, so the cut really came mid-pipeline.
        assert!(server.record().most_lines_in_one_read > 1);
        assert_unusable(client).await;
    })
    .await;
}

/// Like `Collected`, with a limit on every body.
struct Capped {
    inner: Collected,
    limit: u64,
}

impl MessageSink for Capped {
    type Writer = Vec<u8>;

    async fn open(&mut self, number: u32) -> io::Result<Vec<u8>> {
        self.inner.open(number).await
    }

    async fn finish(&mut self, writer: Vec<u8>, retrieved: Retrieved) -> io::Result<()> {
        self.inner.finish(writer, retrieved).await
    }

    async fn refused(&mut self, number: u32, error: ServerError) -> io::Result<()> {
        self.inner.refused(number, error).await
    }

    fn max_octets(&self, _number: u32) -> Option<u64> {
        Some(self.limit)
    }
}

#[tokio::test]
async fn body_longer_than_allowed_is_cut_off_and_the_session_never_reused() {
    bounded(async {
        // Messages 1 and 3 fit; message 2 is four times the limit (a server that sends
        // more than it announced, or without end): promise 6, bounded by size too.
        let mut messages = plain_messages(3, 2000);
        messages[1] = plain_messages(1, 8000).remove(0);
        let server = FaultyServer::start(Script::new().messages(messages.clone())).await;
        let mut client = logged_in(&server).await;
        let mut sink = Capped {
            inner: Collected::default(),
            limit: 2500,
        };
        let error = failure(
            client.retr_batch(&[1, 2, 3], &mut sink).await,
            "a batch with a body over its limit",
        );
        assert!(
            matches!(
                error,
                Error::BodyTooLong {
                    number: 2,
                    limit: 2500
                }
            ),
            "{error:?}"
        );
        assert!(error.is_body_too_long() && error.is_transient());
        assert_eq!(sink.inner.finished_numbers(), [1]);
        assert_eq!(sink.inner.opened, [1, 2]);
        assert_unusable(client).await;
    })
    .await;
}

#[tokio::test]
async fn refused_message_in_a_pipelined_batch_is_reported_and_the_rest_still_arrive() {
    bounded(async {
        let messages = plain_messages(3, 3000);
        let server = FaultyServer::start(Script::new().messages(messages.clone()).fault(
            On::CommandWith("RETR", "2"),
            Fault::Replace(b"-ERR [SYS/TEMP] Message is being delivered\r\n".to_vec()),
        ))
        .await;
        let mut client = logged_in(&server).await;
        let mut sink = Collected::default();
        client
            .retr_batch(&[1, 2, 3], &mut sink)
            .await
            .expect("a refusal does not end the batch");
        assert_eq!(sink.opened, [1, 3]);
        assert_eq!(
            sink.finished,
            [(1, messages[0].clone()), (3, messages[2].clone())]
        );
        assert_eq!(sink.refused.len(), 1);
        let (number, refused) = &sink.refused[0];
        assert_eq!(
            (*number, refused.code.as_ref()),
            (2, Some(&RespCode::SysTemp))
        );
        assert!(client.quit().await.is_committed());
    })
    .await;
}

// --- 3. Garbage and over-long replies ------------------------------------------------

const GARBAGE: &[u8] = b"HTTP/1.1 400 Bad Request\r\n";

#[tokio::test]
async fn garbage_instead_of_a_reply_is_a_protocol_error_and_the_session_is_never_reused() {
    bounded(async {
        let greeting = FaultyServer::start(
            Script::new().fault(On::Greeting, Fault::Replace(GARBAGE.to_vec())),
        )
        .await;
        let error = failure(Client::connect(&greeting.options()).await, "connect");
        assert!(
            matches!(
                error,
                Error::Protocol(ProtocolError::NotPop3 {
                    command: CommandKind::Greeting,
                    ..
                })
            ),
            "{error:?}"
        );

        let user = FaultyServer::start(
            Script::new().fault(On::Command("USER"), Fault::Replace(GARBAGE.to_vec())),
        )
        .await;
        let mut client = connect(&user.options()).await;
        let error = failure(
            client
                .authenticate(&user.credentials(), AuthMethod::User)
                .await,
            "login",
        );
        assert!(
            matches!(
                error,
                Error::Protocol(ProtocolError::NotPop3 {
                    command: CommandKind::User,
                    ..
                })
            ),
            "{error:?}"
        );
        // The password never follows a reply we could not read.
        assert!(!user.record().saw("PASS"));
        assert_unusable(client).await;

        for (reply, bad) in [
            (GARBAGE, "not POP3"),
            (&b"+OK lots of mail\r\n"[..], "unreadable STAT"),
        ] {
            let stat = FaultyServer::start(
                Script::new()
                    .messages(plain_messages(1, 100))
                    .fault(On::Command("STAT"), Fault::Replace(reply.to_vec())),
            )
            .await;
            let mut client = logged_in(&stat).await;
            let error = failure(client.stat().await, bad);
            assert!(
                matches!(
                    error,
                    Error::Protocol(
                        ProtocolError::NotPop3 {
                            command: CommandKind::Stat,
                            ..
                        } | ProtocolError::BadReply {
                            command: CommandKind::Stat,
                            ..
                        }
                    )
                ),
                "{bad}: {error:?}"
            );
            assert_unusable(client).await;
        }
    })
    .await;
}

#[tokio::test]
async fn garbage_line_inside_a_listing_is_a_protocol_error() {
    bounded(async {
        let mut listing = b"+OK 2 messages\r\n1 120\r\n".to_vec();
        listing.extend_from_slice(GARBAGE);
        listing.extend_from_slice(b".\r\n");
        let server = FaultyServer::start(
            Script::new()
                .messages(plain_messages(2, 100))
                .fault(On::Command("LIST"), Fault::Replace(listing)),
        )
        .await;
        let mut client = logged_in(&server).await;
        let error = failure(client.list().await, "LIST with a garbage line");
        assert!(
            matches!(
                error,
                Error::Protocol(ProtocolError::BadReply {
                    command: CommandKind::List,
                    ..
                })
            ),
            "{error:?}"
        );
        assert_unusable(client).await;
    })
    .await;
}

#[tokio::test]
async fn over_long_listing_line_is_refused() {
    bounded(async {
        let mut listing = b"+OK\r\n1 ".to_vec();
        listing.extend(vec![b'u'; pop3::MAX_LISTING_LINE + 100]);
        listing.extend_from_slice(b"\r\n.\r\n");
        let server = FaultyServer::start(
            Script::new()
                .messages(plain_messages(1, 100))
                .fault(On::Command("UIDL"), Fault::Replace(listing)),
        )
        .await;
        let mut client = logged_in(&server).await;
        let error = failure(client.uidl().await, "UIDL with an over-long line");
        assert!(
            matches!(
                error,
                Error::Protocol(ProtocolError::LineTooLong { limit }) if limit == pop3::MAX_LISTING_LINE
            ),
            "{error:?}"
        );
        assert_unusable(client).await;
    })
    .await;
}

#[tokio::test]
async fn over_long_status_line_errors_promptly_without_reading_it_all() {
    const ENDLESS: usize = 10 * 1024 * 1024;
    bounded(async {
        let server = FaultyServer::start(
            Script::new()
                .socket_buffer(16 * 1024)
                .fault(On::Command("STAT"), Fault::EndlessLine { octets: ENDLESS }),
        )
        .await;
        let mut client = logged_in(&server).await;

        let started = Instant::now();
        let error = failure(client.stat().await, "STAT answered by an endless line");
        let took = started.elapsed();
        assert!(
            matches!(
                error,
                Error::Protocol(ProtocolError::LineTooLong { limit }) if limit == pop3::MAX_STATUS_LINE
            ),
            "{error:?}"
        );
        // Refused as soon as the limit was passed, not at the read timeout (2 s).
        assert!(took < Duration::from_millis(1000), "took {took:?}");
        // Give the fake every chance to push more, while the client stays connected.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = server.record().endless_octets_sent;
        // What the fake got out is what the client read plus the kernel's buffers (about
        // 128 KiB here): nowhere near the whole line.
        assert!(
            sent < 1024 * 1024,
            "the client took {sent} of {ENDLESS} octets of one line; memory must stay bounded"
        );
        assert_unusable(client).await;
    })
    .await;
}

// --- 4. Pipelining against a server that stops or slows down -------------------------

#[tokio::test]
async fn server_that_stops_reading_while_the_client_pipelines_ends_in_a_read_timeout_not_a_deadlock()
 {
    bounded(async {
        let server =
            FaultyServer::start(Script::new().fault(On::Command("DELE"), Fault::GoSilent)).await;
        let mut options = server.options();
        options.timeouts.read = Duration::from_millis(500);
        options.pipeline_window = 100_000;
        let mut client = connect(&options).await;
        client
            .authenticate(&server.credentials(), AuthMethod::User)
            .await
            .expect("login");
        assert!(client.is_pipelining());

        // About 1.2 MB of commands: far more than the socket buffers take while the
        // server reads nothing.
        let numbers: Vec<u32> = (1..=100_000).collect();
        let started = Instant::now();
        let error = failure(client.dele_batch(&numbers).await, "DELE to a silent server");
        let took = started.elapsed();
        assert!(error.is_timeout(), "{error:?}");
        assert!(
            matches!(error, Error::Timeout(TimeoutKind::Read)),
            "{error:?}"
        );
        assert!(
            took >= Duration::from_millis(450) && took < Duration::from_millis(2000),
            "the read timeout is 500 ms; the batch took {took:?}"
        );
        assert_unusable(client).await;
    })
    .await;
}

#[tokio::test]
async fn slow_reading_server_still_gets_every_pipelined_dele_answered_in_order() {
    bounded(async {
        let count = 10_000;
        let server = FaultyServer::start(
            Script::new()
                .messages(vec![Vec::new(); count])
                .slow_reader(256, Duration::from_millis(1)),
        )
        .await;
        let mut options = server.options();
        options.pipeline_window = 100_000;
        let mut client = connect(&options).await;
        client
            .authenticate(&server.credentials(), AuthMethod::User)
            .await
            .expect("login");

        // Every message, then one already deleted, one that never existed, and zero.
        let mut numbers: Vec<u32> = (1..=count as u32).collect();
        numbers.extend([5_000, count as u32 + 1, 0]);
        let results = client.dele_batch(&numbers).await.expect("DELE batch");
        assert_eq!(
            results
                .iter()
                .map(|(number, _)| *number)
                .collect::<Vec<_>>(),
            numbers
        );
        for (number, result) in &results[..count] {
            assert!(result.is_ok(), "DELE {number}: {result:?}");
        }
        let refused: Vec<&str> = results[count..]
            .iter()
            .map(|(_, result)| match result {
                Err(refused) => refused.text.as_str(),
                Ok(()) => "accepted",
            })
            .collect();
        assert_eq!(
            refused,
            [
                "Message 5000 is already deleted.",
                "There's no message with that number.",
                "There's no message with that number.",
            ]
        );
        assert!(server.record().most_lines_in_one_read > 1);
        assert!(client.quit().await.is_committed());
    })
    .await;
}

#[tokio::test]
async fn pipelined_retrs_complete_while_the_server_is_busy_writing_large_replies() {
    bounded(async {
        // Small server-side buffers: the fake blocks writing replies as soon as the
        // client stops reading, and then reads no more commands. A client that only
        // read after writing every command would deadlock here.
        let count = 5_000;
        let messages = plain_messages(count, 2048);
        let total: u64 = messages.iter().map(|message| message.len() as u64).sum();
        let server = FaultyServer::start(
            Script::new()
                .messages(messages)
                .socket_buffer(4096)
                .slow_reader(64, Duration::ZERO),
        )
        .await;
        let mut options = server.options();
        options.pipeline_window = count;
        let mut client = connect(&options).await;
        client
            .authenticate(&server.credentials(), AuthMethod::User)
            .await
            .expect("login");

        let numbers: Vec<u32> = (1..=count as u32).collect();
        let mut sink = Counted::default();
        client
            .retr_batch(&numbers, &mut sink)
            .await
            .expect("the batch completes");
        assert_eq!((sink.finished, sink.octets), (count, total));
        assert!(client.quit().await.is_committed());
    })
    .await;
}

// --- 5. Slow servers and servers that never answer -----------------------------------

#[tokio::test]
async fn server_answering_one_byte_a_second_hits_the_read_timeout() {
    bounded(async {
        let messages = plain_messages(1, 500);
        let server = FaultyServer::start(Script::new().messages(messages.clone()).fault(
            On::Command("RETR"),
            Fault::Trickle {
                head: 10,
                interval: Duration::from_secs(1),
            },
        ))
        .await;
        let mut options = server.options();
        options.timeouts.read = Duration::from_millis(300);
        let mut client = connect(&options).await;
        client
            .authenticate(&server.credentials(), AuthMethod::User)
            .await
            .expect("login");

        let started = Instant::now();
        let mut out = Vec::new();
        let error = failure(client.retr(1, &mut out).await, "RETR at a byte a second");
        let took = started.elapsed();
        assert!(
            matches!(error, Error::Timeout(TimeoutKind::Read)),
            "{error:?}"
        );
        assert!(took < Duration::from_millis(900), "took {took:?}");
        assert_eq!(out, messages[0][..10]);
        assert_unusable(client).await;
    })
    .await;
}

#[tokio::test]
async fn whole_session_deadline_fires_even_while_bytes_keep_trickling_in() {
    bounded(async {
        let messages = plain_messages(1, 500);
        let server = FaultyServer::start(Script::new().messages(messages.clone()).fault(
            On::Command("RETR"),
            Fault::Trickle {
                head: 10,
                interval: Duration::from_secs(1),
            },
        ))
        .await;
        let mut options = server.options();
        // Every byte comes well within the read timeout; only the session limit can end it.
        options.timeouts = Timeouts {
            connect: Duration::from_secs(2),
            read: Duration::from_millis(1500),
            session: Some(Duration::from_millis(2500)),
        };
        let started = Instant::now();
        let mut client = connect(&options).await;
        client
            .authenticate(&server.credentials(), AuthMethod::User)
            .await
            .expect("login");

        let mut out = Vec::new();
        let error = failure(client.retr(1, &mut out).await, "RETR past the deadline");
        let took = started.elapsed();
        assert!(
            matches!(error, Error::Timeout(TimeoutKind::Session)),
            "{error:?}"
        );
        assert!(
            took >= Duration::from_millis(2400) && took < Duration::from_millis(3500),
            "the session deadline is 2.5 s; it ended after {took:?}"
        );
        // Bytes did keep coming after the first burst.
        assert!(out.len() > 10, "only {} octets arrived", out.len());
        assert!(messages[0].starts_with(&out));
        assert_unusable(client).await;
    })
    .await;
}

#[tokio::test]
async fn greeting_that_never_comes_times_out() {
    bounded(async {
        let read = Duration::from_millis(300);
        // A listener that never accepts: the kernel completes the handshake, nobody
        // speaks.
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind to 127.0.0.1:0");
        let mut options = ConnectOptions::new(
            "127.0.0.1",
            listener.local_addr().expect("its address").port(),
            Security::None,
        );
        options.timeouts.read = read;
        // A fake that accepts and stays silent.
        let silent = FaultyServer::start(Script::new().fault(On::Greeting, Fault::GoSilent)).await;
        let mut silent_options = silent.options();
        silent_options.timeouts.read = read;

        for options in [options, silent_options] {
            let started = Instant::now();
            let error = failure(
                Client::connect(&options).await,
                "connect without a greeting",
            );
            let took = started.elapsed();
            assert!(
                matches!(error, Error::Timeout(TimeoutKind::Read)),
                "{error:?}"
            );
            assert!(took < Duration::from_millis(1000), "took {took:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn connect_to_a_listener_whose_backlog_is_full_times_out() {
    bounded(async {
        // With its accept queue full, Linux drops further SYNs: connect itself hangs.
        let socket = TcpSocket::new_v4().expect("a TCP socket");
        socket
            .bind(([127, 0, 0, 1], 0).into())
            .expect("bind to 127.0.0.1:0");
        let listener = socket.listen(0).expect("listen");
        let address = listener.local_addr().expect("its address");
        let mut queued = Vec::new();
        let mut full = false;
        for _ in 0..64 {
            match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(address))
                .await
            {
                Ok(stream) => queued.push(stream.expect("a queued connection")),
                Err(_) => {
                    full = true;
                    break;
                }
            }
        }
        assert!(full, "the backlog never filled");

        let mut options = ConnectOptions::new("127.0.0.1", address.port(), Security::None);
        options.timeouts.connect = Duration::from_millis(300);
        let started = Instant::now();
        let error = failure(Client::connect(&options).await, "connect to a full backlog");
        let took = started.elapsed();
        assert!(
            matches!(error, Error::Timeout(TimeoutKind::Connect)),
            "{error:?}"
        );
        assert!(error.is_transient());
        assert!(took < Duration::from_millis(1000), "took {took:?}");
    })
    .await;
}

// --- 6. What QUIT's answer means for this session's deletions ------------------------

#[tokio::test]
async fn quit_outcome_says_whether_deletions_are_final() {
    bounded(async {
        let cases = [
            (None, "Committed"),
            (
                Some(Fault::Replace(
                    b"-ERR [SYS/TEMP] Some deletes failed\r\n".to_vec(),
                )),
                "Unknown",
            ),
            (Some(Fault::CutAfter(0)), "NotCommitted"),
        ];
        for (fault, expected) in cases {
            let mut script = Script::new().messages(plain_messages(2, 100));
            if let Some(fault) = fault {
                script = script.fault(On::Command("QUIT"), fault);
            }
            let server = FaultyServer::start(script).await;
            let mut client = logged_in(&server).await;
            client.dele(1).await.expect("DELE 1");
            let outcome = client.quit().await;
            let got = match &outcome {
                QuitOutcome::Committed => "Committed",
                QuitOutcome::Unknown { .. } => "Unknown",
                QuitOutcome::NotCommitted { .. } => "NotCommitted",
            };
            assert_eq!(got, expected, "{outcome:?}");
            assert!(server.record().saw("QUIT"));
        }
    })
    .await;
}

// --- 7. RESP-CODES on PASS -----------------------------------------------------------

#[tokio::test]
async fn resp_codes_on_pass_tell_retry_from_stop() {
    bounded(async {
        // (reply to PASS, code, transient: retry later, auth: tell the admin)
        let cases: [(&str, Option<RespCode>, bool, bool); 6] = [
            (
                "-ERR [IN-USE] Mailbox is locked by another session",
                Some(RespCode::InUse),
                true,
                false,
            ),
            (
                "-ERR [LOGIN-DELAY] Wait 900 seconds",
                Some(RespCode::LoginDelay),
                true,
                false,
            ),
            (
                "-ERR [SYS/TEMP] Temporary storage failure",
                Some(RespCode::SysTemp),
                true,
                false,
            ),
            (
                "-ERR [SYS/PERM] Mailbox is corrupt",
                Some(RespCode::SysPerm),
                false,
                false,
            ),
            (
                "-ERR [AUTH] Authentication failed.",
                Some(RespCode::Auth),
                false,
                true,
            ),
            ("-ERR Authentication failed.", None, false, true),
        ];
        for (reply, code, transient, auth) in cases {
            let server = FaultyServer::start(Script::new().fault(
                On::Command("PASS"),
                Fault::Replace(format!("{reply}\r\n").into_bytes()),
            ))
            .await;
            let mut client = connect(&server.options()).await;
            let error = failure(
                client
                    .authenticate(&server.credentials(), AuthMethod::User)
                    .await,
                reply,
            );
            assert_eq!(error.resp_code(), code.as_ref(), "{reply}");
            assert_eq!(error.is_transient(), transient, "{reply}: is_transient");
            assert_eq!(error.is_auth(), auth, "{reply}: is_auth");
            let refused = error.server_error().expect("a -ERR");
            assert_eq!(refused.command, CommandKind::Pass);
            // A well-formed -ERR keeps our place in the stream.
            assert!(client.is_usable() && !client.is_authenticated());
            assert!(client.quit().await.is_committed());
        }
    })
    .await;
}

// --- 8. STLS fails closed ------------------------------------------------------------

#[tokio::test]
async fn stls_not_offered_fails_closed_before_any_credentials_are_sent() {
    bounded(async {
        let server = FaultyServer::start(Script::new()).await;
        let mut options = server.options();
        options.security = Security::StartTls;
        options.allow_insecure_auth = false;
        let error = failure(Client::connect(&options).await, "STLS without an offer");
        assert!(matches!(error, Error::StlsNotOffered), "{error:?}");
        assert!(error.is_tls() && !error.is_transient());
        assert_eq!(server.record().lines, ["CAPA"]);
    })
    .await;
}

#[tokio::test]
async fn bytes_injected_after_the_stls_answer_are_refused() {
    bounded(async {
        let server = FaultyServer::start(
            Script::new()
                .capabilities(&["STLS", "USER", "UIDL", "PIPELINING"])
                .fault(
                    On::Command("STLS"),
                    Fault::Append(b"+OK injected before the handshake\r\n".to_vec()),
                ),
        )
        .await;
        let mut options = server.options();
        options.security = Security::StartTls;
        options.allow_insecure_auth = false;
        let error = failure(Client::connect(&options).await, "STLS with injected bytes");
        assert!(matches!(error, Error::StlsBufferNotEmpty), "{error:?}");
        assert_eq!(server.record().lines, ["CAPA", "STLS"]);
    })
    .await;
}

// --- 9. No plaintext secrets without consent -----------------------------------------

#[tokio::test]
async fn plaintext_password_is_refused_without_explicit_consent() {
    bounded(async {
        let server = FaultyServer::start(Script::new()).await;
        let mut options = server.options();
        options.allow_insecure_auth = false;
        let mut client = connect(&options).await;
        for method in [
            AuthMethod::Auto,
            AuthMethod::User,
            AuthMethod::Plain,
            AuthMethod::Login,
        ] {
            let error = failure(
                client.authenticate(&server.credentials(), method).await,
                method.name(),
            );
            assert!(
                matches!(error, Error::InsecureAuthRefused { .. }),
                "{method:?}: {error:?}"
            );
        }
        let record = server.record();
        for verb in ["USER", "PASS", "AUTH", "APOP"] {
            assert!(!record.saw(verb), "{verb} reached the server: {record:?}");
        }
        assert!(client.is_usable());
        assert!(client.quit().await.is_committed());

        options.allow_insecure_auth = true;
        let mut client = connect(&options).await;
        client
            .authenticate(&server.credentials(), AuthMethod::Auto)
            .await
            .expect("login with explicit consent");
        assert!(client.is_authenticated());
        assert!(client.quit().await.is_committed());
    })
    .await;
}

// --- 10. Lock-step and pipelined sessions agree --------------------------------------

/// Messages that exercise framing: dot lines, an empty one, 8-bit octets, a long line.
fn tricky_messages() -> Vec<Vec<u8>> {
    let mut every_octet: Vec<u8> = (0..=255u8).filter(|octet| *octet != b'\n').collect();
    every_octet.extend_from_slice(b"\r\n");
    let mut long_line = vec![b'a'; 300 * 1024];
    long_line.extend_from_slice(b"\r\n");
    vec![
        b"Subject: dots\r\n\r\n.\r\n..\r\n...\r\n. leading\r\n.\rx\r\nend\r\n".to_vec(),
        Vec::new(),
        b"Subject: caf\xc3\xa9\r\n\r\n\xff\xfe\x00\x80 8-bit\r\n".to_vec(),
        every_octet,
        long_line,
        b".\r\n".to_vec(),
        b"Subject: last\r\n\r\nbody\r\n".to_vec(),
    ]
}

struct Fetched {
    pipelined: bool,
    messages: Vec<(u32, Vec<u8>)>,
    deleted: Vec<u32>,
    quit: QuitOutcome,
}

async fn fetch_and_delete_everything(server: &FaultyServer) -> Fetched {
    let mut client = logged_in(server).await;
    let stat = client.stat().await.expect("STAT");
    let listing = client.list().await.expect("LIST");
    let uids = client.uidl().await.expect("UIDL");
    assert_eq!(stat.count as usize, listing.len());
    assert_eq!(listing.len(), uids.len());
    let numbers: Vec<u32> = listing.iter().map(|entry| entry.number).collect();
    let mut sink = Collected::default();
    client
        .retr_batch(&numbers, &mut sink)
        .await
        .expect("RETR batch");
    for ((number, body), entry) in sink.finished.iter().zip(&listing) {
        assert_eq!((*number, body.len() as u64), (entry.number, entry.size));
    }
    let deleted = client
        .dele_batch(&numbers)
        .await
        .expect("DELE batch")
        .into_iter()
        .filter(|(_, result)| result.is_ok())
        .map(|(number, _)| number)
        .collect();
    Fetched {
        pipelined: client.is_pipelining(),
        messages: sink.finished,
        deleted,
        quit: client.quit().await,
    }
}

#[tokio::test]
async fn lock_step_and_pipelined_sessions_deliver_identical_bytes() {
    bounded(async {
        let messages = tricky_messages();
        let expected: Vec<(u32, Vec<u8>)> = (1..).zip(messages.iter().cloned()).collect();

        let lock_step = FaultyServer::start(
            Script::new()
                .without_pipelining()
                .messages(messages.clone()),
        )
        .await;
        let one_by_one = fetch_and_delete_everything(&lock_step).await;
        let record = lock_step.record();
        assert!(!one_by_one.pipelined);
        assert!(
            record.overtaken.is_empty(),
            "commands sent before the previous answer, without PIPELINING: {:?}",
            record.overtaken
        );
        assert_eq!(record.most_lines_in_one_read, 1);

        let pipelining = FaultyServer::start(Script::new().messages(messages.clone())).await;
        let together = fetch_and_delete_everything(&pipelining).await;
        assert!(together.pipelined);
        assert!(
            pipelining.record().most_lines_in_one_read > 1,
            "PIPELINING was offered but every command came alone"
        );

        for fetched in [&one_by_one, &together] {
            assert!(
                fetched.messages == expected,
                "bytes differ from the maildrop"
            );
            assert_eq!(
                fetched.deleted,
                (1..=messages.len() as u32).collect::<Vec<_>>()
            );
            assert!(fetched.quit.is_committed(), "{:?}", fetched.quit);
        }
    })
    .await;
}

#[tokio::test]
async fn lock_step_check_catches_a_client_that_pipelines_uninvited() {
    bounded(async {
        // The check above is only worth something if it can fail: a raw client that sends
        // two commands at once to a server without PIPELINING must be caught.
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let server = FaultyServer::start(Script::new().without_pipelining()).await;
        let port = server.options().port;
        let mut raw = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        raw.write_all(b"NOOP\r\nNOOP\r\n").await.expect("write");
        let mut replies = Vec::new();
        let mut chunk = [0; 256];
        while replies.iter().filter(|octet| **octet == b'\n').count() < 3 {
            let read = raw.read(&mut chunk).await.expect("read");
            assert!(read > 0, "the fake hung up");
            replies.extend_from_slice(&chunk[..read]);
        }
        assert_eq!(server.record().overtaken, ["NOOP"]);
    })
    .await;
}

// --- 11. Bytes come out exactly ------------------------------------------------------

#[tokio::test]
async fn retr_delivers_dot_lines_empty_and_8bit_messages_byte_for_byte() {
    bounded(async {
        let messages = tricky_messages();
        let server = FaultyServer::start(Script::new().messages(messages.clone())).await;
        let mut client = logged_in(&server).await;
        for (number, message) in (1..).zip(&messages) {
            let mut out = Vec::new();
            let retrieved = client.retr(number, &mut out).await.expect("RETR");
            assert!(out == *message, "message {number} changed on the way");
            assert_eq!(retrieved.octets, message.len() as u64);
        }
        assert!(client.quit().await.is_committed());
    })
    .await;
}

#[tokio::test]
async fn bare_lf_server_delivers_its_octets_unchanged() {
    bounded(async {
        let messages = vec![
            b"Subject: sloppy\n\n.\n..\n.leading dot\nend\n".to_vec(),
            Vec::new(),
            b"caf\xc3\xa9 \xff\x00\n".to_vec(),
            b".\n".to_vec(),
        ];
        let server = FaultyServer::start(Script::new().bare_lf().messages(messages.clone())).await;
        let mut client = logged_in(&server).await;
        for (number, message) in (1..).zip(&messages) {
            let mut out = Vec::new();
            client.retr(number, &mut out).await.expect("RETR");
            assert!(out == *message, "message {number}: {out:?}");
        }
        let mut sink = Collected::default();
        client
            .retr_batch(&[1, 2, 3, 4], &mut sink)
            .await
            .expect("RETR batch");
        assert_eq!(sink.finished, (1..).zip(messages).collect::<Vec<_>>());
        assert!(client.quit().await.is_committed());
    })
    .await;
}

// --- 12. Traces never hold secrets ---------------------------------------------------

/// Collects every `pop3` trace event as a line of text.
#[derive(Clone, Default)]
struct TraceCapture {
    lines: Arc<Mutex<Vec<String>>>,
}

impl TraceCapture {
    fn text(&self) -> String {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .join("\n")
    }
}

impl tracing::Subscriber for TraceCapture {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target().starts_with("pop3")
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = format!("{}:", event.metadata().target());
        event.record(&mut FieldText(&mut line));
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// Writes an event's fields as ` name=value` (the message as it is).
struct FieldText<'a>(&'a mut String);

impl tracing::field::Visit for FieldText<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = match field.name() {
            "message" => write!(self.0, " {value:?}"),
            name => write!(self.0, " {name}={value:?}"),
        };
    }
}

#[tokio::test]
async fn wire_trace_never_contains_the_password() {
    bounded(async {
        let capture = TraceCapture::default();
        // Long enough that PLAIN's initial response no longer fits on the AUTH line and
        // goes as a separate continuation line.
        let long_password = format!("{PASSWORD}-{}", "x".repeat(300));
        let logins = [
            (AuthMethod::User, PASSWORD),
            (AuthMethod::Plain, PASSWORD),
            (AuthMethod::Plain, long_password.as_str()),
            (AuthMethod::Login, PASSWORD),
        ];
        for (method, password) in logins {
            let server = FaultyServer::start(Script::new().password(password)).await;
            async {
                let mut client = connect(&server.options()).await;
                let used = client
                    .authenticate(&Credentials::password(USER, password), method)
                    .await
                    .expect("login");
                assert_eq!(used, method);
                assert!(client.quit().await.is_committed());
            }
            .with_subscriber(capture.clone())
            .await;
            assert!(server.record().lines.len() >= 4, "the login happened");
        }

        let trace = capture.text();
        assert!(trace.contains(&format!("C: USER {USER}")), "{trace}");
        assert!(trace.contains("C: PASS <redacted>"), "{trace}");
        assert!(trace.contains("C: AUTH PLAIN <redacted>"), "{trace}");
        assert!(trace.contains("<redacted SASL response>"), "{trace}");
        let secrets = [
            PASSWORD.to_string(),
            BASE64.encode(PASSWORD),
            BASE64.encode(format!("\0{USER}\0{PASSWORD}")),
            BASE64.encode(format!("\0{USER}\0{long_password}")),
        ];
        for secret in secrets {
            assert!(
                !trace.contains(&secret),
                "the trace holds {secret:?}:\n{trace}"
            );
        }
    })
    .await;
}

// --- Framing: a reply nobody asked for -----------------------------------------------

#[tokio::test]
async fn reply_nobody_asked_for_is_refused_not_taken_as_the_next_answer() {
    bounded(async {
        // The fake answers NOOP twice. The stray `+OK` is already buffered when DELE 99 is
        // sent; the real answer to DELE 99 is `-ERR` (there is no message 99).
        let server = FaultyServer::start(Script::new().messages(plain_messages(1, 100)).fault(
            On::Command("NOOP"),
            Fault::Append(b"+OK stray\r\n".to_vec()),
        ))
        .await;
        let mut client = logged_in(&server).await;
        client.noop().await.expect("NOOP");
        let result = client.dele(99).await;
        assert!(
            matches!(
                result,
                Err(Error::Protocol(ProtocolError::Unsolicited { .. }))
            ),
            "the stray +OK was taken as the answer to DELE 99: {result:?}"
        );
        assert_unusable(client).await;
    })
    .await;
}
