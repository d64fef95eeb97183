//! Proves each testkit feature against the real Dovecot, with the bytes on the wire.
//!
//! These tests deliberately use a hand-driven connection ([`RawSession`]) and not the
//! popdesk client: when a client test fails, the fixture must already be known good.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::{Digest as _, Md5};
use testkit::{Dovecot, OAuthIntrospection, RawSession};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn message(n: usize) -> Vec<u8> {
    format!("From: customer{n}@example.com\r\nSubject: ticket {n}\r\n\r\nbody {n}\r\n").into_bytes()
}

async fn capa(session: &mut RawSession) -> Vec<String> {
    let reply = session.command("CAPA").await.expect("CAPA");
    assert!(reply.starts_with("+OK"), "CAPA: {reply}");
    session.read_multiline().await.expect("CAPA list")
}

#[tokio::test]
async fn user_pass_stat_retr_dele_over_plain_tcp() {
    let dovecot = Dovecot::start();
    dovecot.add_user("support", "s3cret");
    dovecot.deliver_many("support", (1..=3).map(message));

    let mut pop = RawSession::connect(dovecot.pop3_addr())
        .await
        .expect("connect");
    assert!(pop.greeting().starts_with("+OK"), "{}", pop.greeting());
    assert!(
        !pop.greeting().contains('<'),
        "no APOP timestamp unless asked"
    );
    let reply = pop.login("support", "s3cret").await.expect("login");
    assert!(reply.starts_with("+OK"), "{reply}\n{}", dovecot.log());
    let total: usize = (1..=3).map(|n| message(n).len()).sum();
    assert_eq!(
        pop.command("STAT").await.expect("STAT"),
        format!("+OK 3 {total}")
    );

    // Message numbers follow delivery order.
    assert!(
        pop.command("RETR 2")
            .await
            .expect("RETR")
            .starts_with("+OK")
    );
    let body = pop.read_multiline().await.expect("RETR body").join("\r\n") + "\r\n";
    assert_eq!(body.as_bytes(), message(2));

    assert!(
        pop.command("DELE 2")
            .await
            .expect("DELE")
            .starts_with("+OK")
    );
    assert_eq!(
        dovecot.message_count("support"),
        3,
        "DELE is final only at QUIT"
    );
    assert!(pop.command("QUIT").await.expect("QUIT").starts_with("+OK"));
    drop(pop);

    assert_eq!(dovecot.message_count("support"), 2);
    assert_eq!(dovecot.messages("support"), vec![message(1), message(3)]);
}

#[tokio::test]
async fn wrong_password_is_refused() {
    let dovecot = Dovecot::start();
    dovecot.add_user("support", "right");
    let mut pop = RawSession::connect(dovecot.pop3_addr())
        .await
        .expect("connect");
    let reply = pop.login("support", "wrong").await.expect("login");
    assert!(reply.starts_with("-ERR [AUTH]"), "{reply}");
}

#[tokio::test]
async fn users_can_be_added_while_dovecot_runs() {
    let dovecot = Dovecot::start();
    dovecot.add_user("first", "one");
    let mut pop = RawSession::connect(dovecot.pop3_addr())
        .await
        .expect("connect");
    assert!(
        pop.login("first", "one")
            .await
            .expect("login")
            .starts_with("+OK")
    );

    dovecot.add_user("second", "two");
    dovecot.deliver("second", &message(1));
    let mut pop = RawSession::connect(dovecot.pop3_addr())
        .await
        .expect("connect");
    let reply = pop.login("second", "two").await.expect("login");
    assert!(reply.starts_with("+OK"), "{reply}\n{}", dovecot.log());
    assert!(
        pop.command("STAT")
            .await
            .expect("STAT")
            .starts_with("+OK 1 ")
    );
}

#[tokio::test]
async fn capa_offers_stls_pipelining_resp_codes_and_sasl() {
    let introspection = OAuthIntrospection::start();
    let dovecot = Dovecot::builder()
        .cram_md5(true)
        .oauth2(introspection.url())
        .start();
    let mut pop = RawSession::connect(dovecot.pop3_addr())
        .await
        .expect("connect");
    let capa = capa(&mut pop).await;
    for wanted in ["STLS", "USER", "PIPELINING", "RESP-CODES", "UIDL", "TOP"] {
        assert!(
            capa.iter().any(|c| c == wanted),
            "{wanted} missing: {capa:?}"
        );
    }
    let sasl = capa
        .iter()
        .find(|c| c.starts_with("SASL "))
        .expect("SASL capability");
    for mechanism in ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER"] {
        assert!(
            sasl.split(' ').any(|m| m == mechanism),
            "{mechanism}: {sasl}"
        );
    }
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let dovecot = Dovecot::start();
    dovecot.add_user("support", "pw");
    dovecot.deliver_many("support", [message(1), message(2)]);
    let mut pop = RawSession::connect(dovecot.pop3_addr())
        .await
        .expect("connect");
    pop.send_raw(b"USER support\r\nPASS pw\r\nSTAT\r\nLIST\r\n")
        .await
        .expect("pipelined write");
    assert!(pop.read_line().await.expect("USER").starts_with("+OK"));
    assert!(pop.read_line().await.expect("PASS").starts_with("+OK"));
    assert!(pop.read_line().await.expect("STAT").starts_with("+OK 2 "));
    assert!(pop.read_line().await.expect("LIST").starts_with("+OK"));
    assert_eq!(pop.read_multiline().await.expect("LIST body").len(), 2);
}

#[tokio::test]
async fn pop3s_handshake_verifies_against_the_test_ca() {
    let dovecot = Dovecot::start();
    dovecot.add_user("support", "pw");
    for name in ["localhost", "127.0.0.1"] {
        let mut pop =
            RawSession::connect_tls(dovecot.pop3s_addr(), name, dovecot.tls_client_config())
                .await
                .unwrap_or_else(|e| panic!("TLS as {name}: {e}\n{}", dovecot.log()));
        assert!(pop.is_tls());
        assert!(pop.greeting().starts_with("+OK"));
        assert!(
            pop.login("support", "pw")
                .await
                .expect("login")
                .starts_with("+OK")
        );
    }
    let pem = std::fs::read_to_string(dovecot.ca_pem_path()).expect("CA PEM file");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
}

#[tokio::test]
async fn stls_upgrades_the_plain_port() {
    let dovecot = Dovecot::start();
    dovecot.add_user("support", "pw");
    let pop = RawSession::connect(dovecot.pop3_addr())
        .await
        .expect("connect");
    let mut pop = pop
        .stls(dovecot.host(), dovecot.tls_client_config())
        .await
        .expect("STLS");
    assert!(pop.is_tls());
    let capa = capa(&mut pop).await;
    assert!(
        !capa.iter().any(|c| c == "STLS"),
        "STLS again after TLS: {capa:?}"
    );
    assert!(
        pop.login("support", "pw")
            .await
            .expect("login")
            .starts_with("+OK")
    );
}

#[tokio::test]
async fn certificate_for_another_host_fails_verification() {
    let dovecot = Dovecot::builder().cert_names(&["wrong.example"]).start();
    let err = RawSession::connect_tls(
        dovecot.pop3s_addr(),
        "localhost",
        dovecot.tls_client_config(),
    )
    .await
    .err()
    .expect("a certificate for wrong.example must not pass as localhost");
    assert!(
        err.to_string().contains("certificate"),
        "expected a certificate error, got: {err}"
    );
    // The certificate itself is fine: the same CA vouches for the name it carries.
    RawSession::connect_tls(
        dovecot.pop3s_addr(),
        "wrong.example",
        dovecot.tls_client_config(),
    )
    .await
    .expect("TLS as wrong.example");
}

/// A token longer than the 255 octets RFC 2449 allows in one command line, as Google
/// and Microsoft tokens are: the client must send it as a continuation.
fn long_token() -> String {
    "ya29.".to_owned() + &"a0Z9-_".repeat(60)
}

#[tokio::test]
async fn xoauth2_long_token_in_two_steps_succeeds_via_introspection() {
    let introspection = OAuthIntrospection::start();
    let token = long_token();
    introspection.add_token(&token, "support@example.com");
    let dovecot = Dovecot::builder().oauth2(introspection.url()).start();
    dovecot.add_user("support@example.com", "unused");
    dovecot.deliver("support@example.com", &message(1));

    let response = BASE64.encode(format!(
        "user=support@example.com\x01auth=Bearer {token}\x01\x01"
    ));
    assert!(response.len() > 300);
    let mut pop = RawSession::connect(dovecot.pop3_addr())
        .await
        .expect("connect");
    assert_eq!(pop.command("AUTH XOAUTH2").await.expect("AUTH"), "+ ");
    let reply = pop.command(&response).await.expect("response");
    assert!(reply.starts_with("+OK"), "{reply}\n{}", dovecot.log());
    assert!(
        pop.command("STAT")
            .await
            .expect("STAT")
            .starts_with("+OK 1 ")
    );

    let requests = introspection.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].token.as_deref(), Some(token.as_str()));
    assert!(requests[0].active);
}

#[tokio::test]
async fn oauthbearer_succeeds_via_introspection() {
    let introspection = OAuthIntrospection::start();
    let token = long_token();
    introspection.add_token(&token, "support");
    let dovecot = Dovecot::builder().oauth2(introspection.url()).start();
    dovecot.add_user("support", "unused");

    let response = BASE64.encode(format!("n,a=support,\x01auth=Bearer {token}\x01\x01"));
    let mut pop = RawSession::connect(dovecot.pop3_addr())
        .await
        .expect("connect");
    assert_eq!(pop.command("AUTH OAUTHBEARER").await.expect("AUTH"), "+ ");
    let reply = pop.command(&response).await.expect("response");
    assert!(reply.starts_with("+OK"), "{reply}\n{}", dovecot.log());
}

#[tokio::test]
async fn xoauth2_bad_token_gets_a_challenge_then_err() {
    let introspection = OAuthIntrospection::start();
    introspection.add_token("good-token", "support");
    let dovecot = Dovecot::builder().oauth2(introspection.url()).start();
    dovecot.add_user("support", "unused");

    let response = BASE64.encode("user=support\x01auth=Bearer bad-token\x01\x01");
    let mut pop = RawSession::connect(dovecot.pop3_addr())
        .await
        .expect("connect");
    assert_eq!(pop.command("AUTH XOAUTH2").await.expect("AUTH"), "+ ");
    let challenge = pop.command(&response).await.expect("response");
    let json = challenge
        .strip_prefix("+ ")
        .unwrap_or_else(|| panic!("expected a `+ ` error challenge, got {challenge:?}"));
    let json = String::from_utf8(BASE64.decode(json).expect("base64 challenge")).expect("utf-8");
    assert!(json.contains("status"), "{json}");
    // The client answers the error challenge with an empty line.
    let reply = pop.command("").await.expect("final reply");
    assert!(reply.starts_with("-ERR"), "{reply}");

    let requests = introspection.requests();
    assert_eq!(
        requests.last().and_then(|r| r.token.as_deref()),
        Some("bad-token")
    );
    assert!(!requests.iter().any(|r| r.active));
}

#[tokio::test]
async fn apop_timestamp_in_greeting_and_digest_login() {
    let dovecot = Dovecot::builder().apop(true).start();
    dovecot.add_user("support", "tanstaaf");
    let mut pop = RawSession::connect(dovecot.pop3_addr())
        .await
        .expect("connect");
    let greeting = pop.greeting().to_owned();
    let start = greeting.find('<').expect("APOP timestamp in greeting");
    let end = greeting.rfind('>').expect("end of APOP timestamp");
    let timestamp = &greeting[start..=end];
    let digest = hex(&Md5::digest(format!("{timestamp}tanstaaf").as_bytes()));
    let reply = pop
        .command(&format!("APOP support {digest}"))
        .await
        .expect("APOP");
    assert!(reply.starts_with("+OK"), "{reply}\n{}", dovecot.log());
}

fn hmac_md5(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..16].copy_from_slice(&Md5::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Md5::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Md5::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().to_vec()
}

#[tokio::test]
async fn cram_md5_login() {
    let dovecot = Dovecot::builder().cram_md5(true).start();
    dovecot.add_user("support", "pw");
    let mut pop = RawSession::connect(dovecot.pop3_addr())
        .await
        .expect("connect");
    let challenge = pop.command("AUTH CRAM-MD5").await.expect("AUTH");
    let challenge = BASE64
        .decode(challenge.strip_prefix("+ ").expect("challenge"))
        .expect("base64 challenge");
    let answer = BASE64.encode(format!("support {}", hex(&hmac_md5(b"pw", &challenge))));
    let reply = pop.command(&answer).await.expect("answer");
    assert!(reply.starts_with("+OK"), "{reply}\n{}", dovecot.log());
}

#[tokio::test]
async fn second_session_on_a_locked_mailbox_gets_in_use() {
    let dovecot = Dovecot::builder().lock_session(true).start();
    dovecot.add_user("support", "pw");
    let mut first = RawSession::connect(dovecot.pop3_addr())
        .await
        .expect("connect");
    assert!(
        first
            .login("support", "pw")
            .await
            .expect("login")
            .starts_with("+OK")
    );

    let mut second = RawSession::connect(dovecot.pop3_addr())
        .await
        .expect("connect");
    let started = Instant::now();
    let reply = second.login("support", "pw").await.expect("login");
    assert!(reply.starts_with("-ERR [IN-USE]"), "{reply}");
    // Dovecot waits for the lock for a fixed 10 s before giving up.
    assert!(started.elapsed() < Duration::from_secs(25));

    assert!(
        first
            .command("QUIT")
            .await
            .expect("QUIT")
            .starts_with("+OK")
    );
    let mut third = RawSession::connect(dovecot.pop3_addr())
        .await
        .expect("connect");
    assert!(
        third
            .login("support", "pw")
            .await
            .expect("login")
            .starts_with("+OK")
    );
}

#[tokio::test]
async fn two_thousand_messages_130_mb_deliver_quickly() {
    let dovecot = Dovecot::start();
    dovecot.add_user("bulk", "pw");
    let body = vec![b'x'; 65_000];
    let started = Instant::now();
    let delivered = dovecot.deliver_many(
        "bulk",
        (0..2000).map(|n| {
            let mut message = format!("Subject: bulk {n}\r\n\r\n").into_bytes();
            message.extend_from_slice(&body);
            message
        }),
    );
    let took = started.elapsed();
    assert_eq!(delivered, 2000);
    assert_eq!(dovecot.message_count("bulk"), 2000);
    assert!(took < Duration::from_secs(30), "delivery took {took:?}");

    let mut pop = RawSession::connect(dovecot.pop3_addr())
        .await
        .expect("connect");
    assert!(
        pop.login("bulk", "pw")
            .await
            .expect("login")
            .starts_with("+OK")
    );
    assert!(
        pop.command("STAT")
            .await
            .expect("STAT")
            .starts_with("+OK 2000 ")
    );
}

#[tokio::test]
async fn log_records_authentication() {
    let dovecot = Dovecot::start();
    dovecot.add_user("support", "pw");
    let mut pop = RawSession::connect(dovecot.pop3_addr())
        .await
        .expect("connect");
    assert!(
        pop.login("support", "pw")
            .await
            .expect("login")
            .starts_with("+OK")
    );
    assert!(pop.command("QUIT").await.expect("QUIT").starts_with("+OK"));
    let log = dovecot.log();
    assert!(log.contains("auth"), "{log}");
    assert!(log.contains("support"), "{log}");
    assert!(!log.contains("pw\n"), "password in the log: {log}");
}

#[test]
fn dropping_dovecot_stops_it() {
    let dovecot = Dovecot::start();
    let addr = dovecot.pop3_addr();
    let dir = dovecot.dir().to_path_buf();
    drop(dovecot);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still listening"
    );
    assert!(!dir.exists(), "temp dir left behind");
}

#[tokio::test]
async fn unknown_user_is_an_auth_failure() {
    let dovecot = Dovecot::start();
    let mut pop = RawSession::connect(dovecot.pop3_addr())
        .await
        .expect("connect");
    let reply = pop.login("nobody-here", "pw").await.expect("login");
    assert!(
        reply.starts_with("-ERR [AUTH]"),
        "{reply}\n{}",
        dovecot.log()
    );
}
