//! Interop with a real Dovecot (Debian's dovecot-pop3d), started privately per test on
//! loopback by `testkit`. Each test names the promise of DESIGN.md it protects.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pop3::{
    AuthMethod, Client, ConnectOptions, Credentials, Error, MessageSink, QuitOutcome, RespCode,
    Retrieved, Security, ServerError,
};
use testkit::{Dovecot, OAuthIntrospection};
use tokio::io::AsyncWrite;

const USER: &str = "support";
const PASSWORD: &str = "correct horse battery staple";

/// Options for the instance's plain (STLS-capable) or implicit-TLS port, trusting its CA.
fn options(dovecot: &Dovecot, security: Security) -> ConnectOptions {
    let port = match security {
        Security::Implicit => dovecot.pop3s_addr().port(),
        _ => dovecot.pop3_addr().port(),
    };
    let mut options = ConnectOptions::new(dovecot.host(), port, security);
    options.ca_file = Some(dovecot.ca_pem_path());
    options.timeouts.read = Duration::from_secs(20);
    options
}

fn with_user() -> Dovecot {
    let dovecot = Dovecot::start();
    dovecot.add_user(USER, PASSWORD);
    dovecot
}

async fn login(dovecot: &Dovecot, security: Security, method: AuthMethod) -> Client {
    let mut client = Client::connect(&options(dovecot, security))
        .await
        .expect("connect");
    client
        .authenticate(&Credentials::password(USER, PASSWORD), method)
        .await
        .unwrap_or_else(|e| panic!("{method:?} login failed: {e}\n{}", dovecot.log()));
    client
}

/// The bytes Dovecot serves for a stored message: its lines with CRLF ends.
fn as_served(message: &[u8]) -> Vec<u8> {
    let mut served = Vec::with_capacity(message.len() + message.len() / 40);
    for (i, &octet) in message.iter().enumerate() {
        if octet == b'\n' && (i == 0 || message[i - 1] != b'\r') {
            served.push(b'\r');
        }
        served.push(octet);
    }
    served
}

async fn retr_vec(client: &mut Client, number: u32) -> Vec<u8> {
    let mut body = Vec::new();
    client.retr(number, &mut body).await.expect("RETR");
    body
}

#[tokio::test]
async fn stls_upgrades_rereads_capabilities_and_logs_in_with_plain() {
    let dovecot = with_user();
    let mut client = Client::connect(&options(&dovecot, Security::StartTls))
        .await
        .expect("connect with STLS");
    assert!(client.is_encrypted());
    // After TLS Dovecot no longer offers STLS: proof that CAPA was read again.
    assert!(!client.capabilities().stls());
    let method = client
        .authenticate(&Credentials::password(USER, PASSWORD), AuthMethod::Auto)
        .await
        .expect("login");
    assert_eq!(method, AuthMethod::Plain);
    assert_eq!(client.stat().await.expect("STAT").count, 0);
    assert_eq!(client.quit().await, QuitOutcome::Committed);
}

#[tokio::test]
async fn implicit_tls_with_the_callers_ca_file() {
    let dovecot = with_user();
    let client = login(&dovecot, Security::Implicit, AuthMethod::User).await;
    assert!(client.is_encrypted());
    assert!(client.capabilities().pipelining() && client.capabilities().resp_codes());
    assert!(client.quit().await.is_committed());
}

#[tokio::test]
async fn tls_is_verified_by_default_and_a_foreign_ca_is_refused() {
    let dovecot = with_user();
    let mut untrusting = options(&dovecot, Security::Implicit);
    untrusting.ca_file = None;
    let error = Client::connect(&untrusting)
        .await
        .err()
        .expect("the test CA is not a system root");
    assert!(error.is_tls(), "{error}");
    assert!(!error.is_transient());

    let mut stls = options(&dovecot, Security::StartTls);
    stls.ca_file = None;
    let error = Client::connect(&stls)
        .await
        .err()
        .expect("STLS verifies too");
    assert!(error.is_tls(), "{error}");
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused() {
    let dovecot = Dovecot::builder().cert_names(&["wrong.example"]).start();
    dovecot.add_user(USER, PASSWORD);
    let error = Client::connect(&options(&dovecot, Security::Implicit))
        .await
        .err()
        .expect("host name must match the certificate");
    assert!(error.is_tls(), "{error}");
}

#[tokio::test]
async fn secrets_stay_secret_plaintext_login_needs_explicit_consent() {
    let dovecot = with_user();
    let mut client = Client::connect(&options(&dovecot, Security::None))
        .await
        .expect("connect");
    let refused = client
        .authenticate(&Credentials::password(USER, PASSWORD), AuthMethod::Auto)
        .await
        .expect_err("no TLS, no consent");
    assert!(
        matches!(refused, Error::InsecureAuthRefused { .. }),
        "{refused}"
    );

    let mut consenting = options(&dovecot, Security::None);
    consenting.allow_insecure_auth = true;
    let mut client = Client::connect(&consenting).await.expect("connect");
    for method in [AuthMethod::User, AuthMethod::Plain, AuthMethod::Login] {
        let mut client = Client::connect(&consenting).await.expect("connect");
        client
            .authenticate(&Credentials::password(USER, PASSWORD), method)
            .await
            .unwrap_or_else(|e| panic!("{method:?}: {e}"));
        assert!(client.quit().await.is_committed());
    }
    client
        .authenticate(&Credentials::password(USER, PASSWORD), AuthMethod::User)
        .await
        .expect("USER/PASS with consent");
}

#[tokio::test]
async fn apop_and_cram_md5_without_tls_need_explicit_consent() {
    let dovecot = Dovecot::builder().apop(true).cram_md5(true).start();
    dovecot.add_user(USER, PASSWORD);
    // A digest seen on the wire can be guessed offline: no silent APOP or CRAM-MD5.
    for method in [AuthMethod::Auto, AuthMethod::Apop, AuthMethod::CramMd5] {
        let mut client = Client::connect(&options(&dovecot, Security::None))
            .await
            .expect("connect");
        let refused = client
            .authenticate(&Credentials::password(USER, PASSWORD), method)
            .await
            .expect_err("no TLS, no consent");
        assert!(
            matches!(refused, Error::InsecureAuthRefused { .. }),
            "{method:?}: {refused}"
        );
    }
    let mut consenting = options(&dovecot, Security::None);
    consenting.allow_insecure_auth = true;
    for method in [AuthMethod::Apop, AuthMethod::CramMd5] {
        let mut client = Client::connect(&consenting).await.expect("connect");
        client
            .authenticate(&Credentials::password(USER, PASSWORD), method)
            .await
            .unwrap_or_else(|e| panic!("{method:?} with consent: {e}\n{}", dovecot.log()));
        assert!(client.greeting().apop_timestamp.is_some());
        assert!(client.quit().await.is_committed());
    }
}

#[tokio::test]
async fn a_wrong_password_is_an_auth_error_not_a_retry() {
    let dovecot = with_user();
    for method in [AuthMethod::User, AuthMethod::Plain, AuthMethod::Login] {
        let mut client = Client::connect(&options(&dovecot, Security::Implicit))
            .await
            .expect("connect");
        let error = client
            .authenticate(&Credentials::password(USER, "wrong"), method)
            .await
            .expect_err("wrong password");
        assert!(error.is_auth(), "{method:?}: {error}");
        assert!(!error.is_transient(), "{method:?}: {error}");
    }
}

#[tokio::test]
async fn dotted_empty_and_eight_bit_messages_come_back_byte_for_byte() {
    let dovecot = with_user();
    let messages: Vec<Vec<u8>> = vec![
        b"Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\n...three\r\n. space\r\nend\r\n".to_vec(),
        Vec::new(),
        b"Subject: 8bit\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\ncaf\xe9 na\xefve \xff\xfe\r\n"
            .to_vec(),
        b"Subject: bare lf\n\nline one\n.dot line\n".to_vec(),
        b"Subject: no final newline\r\n\r\nlast line".to_vec(),
    ];
    dovecot.deliver_many(USER, messages.clone());
    let mut client = login(&dovecot, Security::Implicit, AuthMethod::Auto).await;
    let listing = client.list().await.expect("LIST");
    assert_eq!(listing.len(), messages.len());
    for (i, message) in messages.iter().enumerate() {
        let number = i as u32 + 1;
        let body = retr_vec(&mut client, number).await;
        let mut expected = as_served(message);
        if !expected.ends_with(b"\r\n") {
            // POP3 can only send whole lines; Dovecot ends the last one (an empty
            // message comes as one empty line).
            expected.extend_from_slice(b"\r\n");
        }
        assert_eq!(body, expected, "message {number}");
        assert_eq!(
            listing[i].size,
            as_served(message).len() as u64,
            "LIST size {number}"
        );
    }
    // TOP n 0: just the headers.
    let mut headers = Vec::new();
    client.top(1, 0, &mut headers).await.expect("TOP");
    assert_eq!(headers, b"Subject: dots\r\n\r\n");
    assert!(client.quit().await.is_committed());
}

/// Compares streamed bytes against the expected message as they arrive, so a 50 MB
/// message is checked without holding a second copy.
struct ExpectWriter<'a> {
    expected: &'a [u8],
    at: usize,
    largest_write: usize,
}

impl AsyncWrite for ExpectWriter<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let end = self.at + buf.len();
        if end > self.expected.len() || self.expected[self.at..end] != *buf {
            return Poll::Ready(Err(io::Error::other(format!(
                "mismatch at offset {}",
                self.at
            ))));
        }
        self.at = end;
        self.largest_write = self.largest_write.max(buf.len());
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn a_50_mb_message_streams_in_bounded_chunks() {
    let dovecot = with_user();
    let mut message = b"Subject: big\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec();
    let mut line = 0u64;
    while message.len() < 50 * 1024 * 1024 {
        line += 1;
        // Some lines start with a dot, so stuffing happens throughout.
        if line.is_multiple_of(97) {
            message.extend_from_slice(b".");
        }
        message.extend_from_slice(
            format!(
                "{line:012} ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789\r\n"
            )
            .as_bytes(),
        );
    }
    dovecot.deliver(USER, &message);
    let mut client = login(&dovecot, Security::Implicit, AuthMethod::Auto).await;
    let mut writer = ExpectWriter {
        expected: &message,
        at: 0,
        largest_write: 0,
    };
    let retrieved = client.retr(1, &mut writer).await.expect("RETR 50 MB");
    assert_eq!(retrieved.octets, message.len() as u64);
    assert_eq!(writer.at, message.len());
    // The body reaches the writer in chunks, never as one 50 MB buffer.
    assert!(
        writer.largest_write <= 256 * 1024,
        "{}",
        writer.largest_write
    );
    assert!(client.quit().await.is_committed());
}

/// Collects each retrieved message, as the intake's blob store would.
#[derive(Default)]
struct Collect {
    messages: Vec<(u32, Vec<u8>)>,
    refused: Vec<(u32, ServerError)>,
}

impl MessageSink for Collect {
    type Writer = Vec<u8>;

    async fn open(&mut self, _number: u32) -> io::Result<Vec<u8>> {
        Ok(Vec::new())
    }

    async fn finish(&mut self, writer: Vec<u8>, retrieved: Retrieved) -> io::Result<()> {
        assert_eq!(writer.len() as u64, retrieved.octets);
        self.messages.push((retrieved.number, writer));
        Ok(())
    }

    async fn refused(&mut self, number: u32, error: ServerError) -> io::Result<()> {
        self.refused.push((number, error));
        Ok(())
    }
}

#[tokio::test]
async fn pipelined_and_lock_step_batches_give_the_same_result_and_deletes_commit_at_quit() {
    let dovecot = with_user();
    let messages: Vec<Vec<u8>> = (0..40)
        .map(|i| {
            format!("Subject: m{i}\r\nMessage-ID: <{i}@test>\r\n\r\n.dot {i}\r\nbody {i}\r\n")
                .into_bytes()
        })
        .collect();
    dovecot.deliver_many(USER, messages.clone());

    let mut results = Vec::new();
    for pipelining in [true, false] {
        let mut options = options(&dovecot, Security::Implicit);
        options.pipelining = pipelining;
        options.pipeline_window = 8;
        let mut client = Client::connect(&options).await.expect("connect");
        client
            .authenticate(&Credentials::password(USER, PASSWORD), AuthMethod::Auto)
            .await
            .expect("login");
        assert_eq!(client.is_pipelining(), pipelining);
        let uidl = client.uidl().await.expect("UIDL");
        let numbers: Vec<u32> = uidl.iter().map(|e| e.number).collect();
        // LIST and UIDL in one go (one round trip when pipelining).
        let (listing, uids) = client.list_with_uids().await.expect("LIST + UIDL");
        assert_eq!(uids.as_ref(), Some(&uidl));
        assert_eq!(listing.len(), uidl.len());
        let mut sink = Collect::default();
        // Number 99 does not exist: its -ERR must not disturb the others.
        let mut asked = numbers.clone();
        asked.insert(5, 99);
        client.retr_batch(&asked, &mut sink).await.expect("batch");
        assert_eq!(sink.refused.len(), 1);
        assert_eq!(sink.refused[0].0, 99);
        let uidls_again = client.uidl_batch(&numbers).await.expect("UIDL n batch");
        assert!(
            uidls_again
                .iter()
                .zip(&uidl)
                .all(|((_, got), want)| got.as_ref().ok() == Some(want))
        );
        let sizes = client.list_batch(&numbers).await.expect("LIST n batch");
        assert!(sizes.iter().all(|(_, size)| size.is_ok()));
        results.push((uidl, sink.messages));
        // Ends without QUIT: nothing of this session may be deleted.
        drop(client);
    }
    assert_eq!(results[0], results[1], "pipelined and lock-step differ");
    assert_eq!(results[0].1.len(), messages.len());
    for ((_, got), want) in results[0].1.iter().zip(&messages) {
        assert_eq!(got, want);
    }

    // DELE everything, drop without QUIT: the server keeps them all (promise 1).
    let mut client = login(&dovecot, Security::Implicit, AuthMethod::Auto).await;
    let numbers: Vec<u32> = (1..=messages.len() as u32).collect();
    let deleted = client.dele_batch(&numbers).await.expect("DELE batch");
    assert!(deleted.iter().all(|(_, r)| r.is_ok()));
    drop(client);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(dovecot.message_count(USER), messages.len());

    // DELE and QUIT: committed, and the mailbox is empty.
    let mut client = login(&dovecot, Security::Implicit, AuthMethod::Auto).await;
    client.dele_batch(&numbers).await.expect("DELE batch");
    assert_eq!(client.quit().await, QuitOutcome::Committed);
    assert_eq!(dovecot.message_count(USER), 0);
}

#[tokio::test]
async fn a_second_session_on_a_locked_mailbox_gets_in_use() {
    let dovecot = Dovecot::builder().lock_session(true).start();
    dovecot.add_user(USER, PASSWORD);
    let first = login(&dovecot, Security::Implicit, AuthMethod::Auto).await;
    let mut second = Client::connect(&options(&dovecot, Security::Implicit))
        .await
        .expect("connect");
    let error = second
        .authenticate(&Credentials::password(USER, PASSWORD), AuthMethod::User)
        .await
        .expect_err("the mailbox is locked by the first session");
    assert_eq!(error.resp_code(), Some(&RespCode::InUse), "{error}");
    assert!(error.is_transient() && !error.is_auth(), "{error}");
    assert!(first.quit().await.is_committed());
}

#[tokio::test]
async fn xoauth2_and_oauthbearer_with_a_token_longer_than_255_octets() {
    let introspection = OAuthIntrospection::start();
    let dovecot = Dovecot::builder().oauth2(introspection.url()).start();
    dovecot.add_user(USER, "unused");
    let token = format!("ya29.{}", "T".repeat(600));
    introspection.add_token(&token, USER);
    dovecot.deliver(USER, b"Subject: via oauth\r\n\r\nhi\r\n");

    for method in [AuthMethod::XOAuth2, AuthMethod::OAuthBearer] {
        let mut client = Client::connect(&options(&dovecot, Security::Implicit))
            .await
            .expect("connect");
        client
            .authenticate(&Credentials::oauth2(USER, token.clone()), method)
            .await
            .unwrap_or_else(|e| panic!("{method:?}: {e}\n{}", dovecot.log()));
        assert_eq!(client.stat().await.expect("STAT").count, 1);
        assert!(client.quit().await.is_committed());

        let mut client = Client::connect(&options(&dovecot, Security::Implicit))
            .await
            .expect("connect");
        let error = client
            .authenticate(&Credentials::oauth2(USER, "expired-token"), method)
            .await
            .expect_err("unknown token");
        assert!(error.is_auth(), "{method:?}: {error}");
    }
    assert!(
        introspection
            .requests()
            .iter()
            .any(|r| r.token.as_deref() == Some(token.as_str()))
    );
}
