//! Proves the Postfix fixture against the real Postfix and Dovecot, through lettre (the
//! SMTP client popdesk sends with): what the reply tests rely on must already be known
//! good when one of them fails.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, Certificate, CertificateStore, Tls, TlsParameters,
};
use lettre::transport::smtp::commands::{Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use testkit::{Dovecot, Postfix, RawSession};

const DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);

/// A Dovecot with `support` (who sends) and `customer` (who receives), and a Postfix
/// delivering into it.
fn servers() -> (Dovecot, Postfix) {
    let dovecot = Dovecot::builder().lmtp(true).sasl_listener(true).start();
    dovecot.add_user("support", "secret");
    dovecot.add_user("customer", "pw");
    let started = Instant::now();
    let postfix = Postfix::start(&dovecot);
    eprintln!("Postfix started in {:?}", started.elapsed());
    (dovecot, postfix)
}

/// A reply as popdesk writes it. The body holds what SMTP transport must not change: a
/// line that starts with a dot (dot-stuffed on the wire), one that is only a dot, and
/// a `From ` line (which mbox delivery would escape).
fn reply(n: u32) -> Vec<u8> {
    format!(
        "From: Support <support@example.com>\r\n\
         To: customer@example.com\r\n\
         Subject: Re: printer on fire [#{n}]\r\n\
         Date: Mon, 1 Jun 2026 10:00:00 +0000\r\n\
         Message-ID: <reply-{n}@popdesk.test>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Hello,\r\n\
         .leading dot\r\n\
         .\r\n\
         From here on it works.\r\n\
         \r\n\
         -- \r\n\
         Support\r\n"
    )
    .into_bytes()
}

/// What goes on the wire for `message`: lettre ends DATA with `CRLF . CRLF` whatever
/// the message ends with, so a message ending in CRLF would arrive with one more empty
/// line. The last line's CRLF is left to lettre.
fn wire(message: &[u8]) -> &[u8] {
    message.strip_suffix(b"\r\n").unwrap_or(message)
}

fn body(message: &[u8]) -> &[u8] {
    let end_of_headers = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header/body separator");
    &message[end_of_headers + 4..]
}

fn envelope(to: &str) -> Envelope {
    Envelope::new(
        Some("support@example.com".parse().expect("sender")),
        vec![to.parse().expect("recipient")],
    )
    .expect("envelope")
}

fn tls_parameters(postfix: &Postfix) -> TlsParameters {
    let ca = std::fs::read(postfix.ca_pem_path()).expect("read the CA");
    TlsParameters::builder(postfix.host().to_owned())
        // The test CA only: a certificate Postfix got from anywhere else fails.
        .certificate_store(CertificateStore::None)
        .add_root_certificate(Certificate::from_pem(&ca).expect("CA PEM"))
        .build_rustls()
        .expect("TLS parameters")
}

/// A client for the submission port: STARTTLS (required), then AUTH PLAIN.
fn submission(postfix: &Postfix, user: &str, password: &str) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(postfix.host())
        .port(postfix.submission_addr().port())
        .tls(Tls::Required(tls_parameters(postfix)))
        .credentials(Credentials::new(user.to_owned(), password.to_owned()))
        .authentication(vec![Mechanism::Plain])
        .timeout(Some(Duration::from_secs(20)))
        .build()
}

/// A connection driven command by command: STARTTLS and AUTH done.
async fn open_session(postfix: &Postfix) -> AsyncSmtpConnection {
    let hello = ClientId::Domain("popdesk.test".into());
    let mut conn = AsyncSmtpConnection::connect_tokio1(
        postfix.submission_addr(),
        Some(Duration::from_secs(20)),
        &hello,
        None,
        None,
    )
    .await
    .expect("connect");
    conn.starttls(tls_parameters(postfix), &hello)
        .await
        .expect("STARTTLS");
    conn.auth(
        &[Mechanism::Plain],
        &Credentials::new("support".into(), "secret".into()),
    )
    .await
    .expect("AUTH");
    conn
}

async fn rcpt(conn: &mut AsyncSmtpConnection, to: &str) -> String {
    let sender: Address = "support@example.com".parse().expect("sender");
    conn.command(Mail::new(Some(sender), vec![]))
        .await
        .expect("MAIL FROM");
    let code = match conn
        .command(Rcpt::new(to.parse().expect("recipient"), vec![]))
        .await
    {
        Ok(response) => response.code().to_string(),
        Err(e) => e.status().map(|code| code.to_string()).unwrap_or_default(),
    };
    conn.command(Rset).await.expect("RSET");
    code
}

/// Postfix's log once it holds `needle`. Log lines travel through Postfix's postlog
/// service, so they can trail the delivery they describe by a moment.
async fn wait_for_log(postfix: &Postfix, needle: &str) -> String {
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let log = postfix.log();
        if log.contains(needle) {
            return log;
        }
        assert!(Instant::now() < deadline, "no {needle:?} in:\n{log}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn refused(addr: std::net::SocketAddr) -> bool {
    matches!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

#[tokio::test]
async fn starttls_and_auth_plain_deliver_the_exact_body_into_the_recipients_maildir() {
    let (dovecot, postfix) = servers();

    let response = submission(&postfix, "support", "secret")
        .send_raw(&envelope("customer@example.com"), wire(&reply(1)))
        .await
        .unwrap_or_else(|e| panic!("send: {e}\n{}", postfix.log()));
    assert_eq!(response.code().to_string(), "250");

    let delivered = postfix
        .wait_for_delivery(&dovecot, "customer", 1, DELIVERY_TIMEOUT)
        .await;
    assert_eq!(delivered.len(), 1);
    let message = &delivered[0];
    assert_eq!(body(message), body(&reply(1)), "the body, byte for byte");
    let text = String::from_utf8_lossy(message);
    for header in [
        "Message-ID: <reply-1@popdesk.test>\r\n",
        "Subject: Re: printer on fire [#1]\r\n",
        "Delivered-To: customer@example.com\r\n",
    ] {
        assert!(text.contains(header), "{header:?} missing in:\n{text}");
    }
    assert!(dovecot.messages("support").is_empty());
    let log = wait_for_log(&postfix, "status=sent").await;
    assert!(log.contains("sasl_username=support"), "{log}");

    // And POP3 serves it, as popdesk's fetcher will see it.
    let mut pop = RawSession::connect(dovecot.pop3_addr())
        .await
        .expect("connect POP3");
    let login = pop.login("customer", "pw").await.expect("login");
    assert!(login.starts_with("+OK"), "{login}");
    let stat = pop.command("STAT").await.expect("STAT");
    assert!(stat.starts_with("+OK 1 "), "{stat}");
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_535() {
    let (dovecot, postfix) = servers();

    let error = submission(&postfix, "support", "wrong")
        .send_raw(&envelope("customer@example.com"), wire(&reply(1)))
        .await
        .expect_err("a wrong password must not send");
    assert_eq!(
        error.status().map(|code| code.to_string()).as_deref(),
        Some("535"),
        "{error}"
    );
    assert!(error.is_permanent(), "{error}");
    assert!(dovecot.messages("customer").is_empty());
}

#[tokio::test]
async fn the_submission_port_offers_auth_only_after_starttls_and_mail_only_after_auth() {
    let (dovecot, postfix) = servers();
    let hello = ClientId::Domain("popdesk.test".into());

    let mut plain = AsyncSmtpConnection::connect_tokio1(
        postfix.submission_addr(),
        Some(Duration::from_secs(20)),
        &hello,
        None,
        None,
    )
    .await
    .expect("connect");
    assert!(plain.can_starttls());
    assert!(
        !plain
            .server_info()
            .supports_auth_mechanism(Mechanism::Plain),
        "AUTH before STARTTLS: {}",
        plain.server_info()
    );
    let sender: Address = "support@example.com".parse().expect("sender");
    let error = plain
        .command(Mail::new(Some(sender.clone()), vec![]))
        .await
        .expect_err("MAIL before STARTTLS");
    assert_eq!(
        error.status().map(|c| c.to_string()).as_deref(),
        Some("530")
    );

    // After STARTTLS without AUTH: nothing is accepted for any domain.
    let mut tls = AsyncSmtpConnection::connect_tokio1(
        postfix.submission_addr(),
        Some(Duration::from_secs(20)),
        &hello,
        None,
        None,
    )
    .await
    .expect("connect");
    tls.starttls(tls_parameters(&postfix), &hello)
        .await
        .expect("STARTTLS");
    assert!(tls.server_info().supports_auth_mechanism(Mechanism::Plain));
    tls.command(Mail::new(Some(sender), vec![]))
        .await
        .expect("MAIL FROM");
    let error = tls
        .command(Rcpt::new(
            "customer@example.com".parse().expect("rcpt"),
            vec![],
        ))
        .await
        .expect_err("RCPT without AUTH");
    assert!(error.is_permanent(), "{error}");
    assert!(dovecot.messages("customer").is_empty());
}

#[tokio::test]
async fn the_implicit_tls_port_delivers() {
    let (dovecot, postfix) = servers();

    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(postfix.host())
        .port(postfix.smtps_addr().port())
        .tls(Tls::Wrapper(tls_parameters(&postfix)))
        .credentials(Credentials::new("support".into(), "secret".into()))
        .authentication(vec![Mechanism::Login])
        .timeout(Some(Duration::from_secs(20)))
        .build()
        .send_raw(&envelope("customer@example.com"), wire(&reply(2)))
        .await
        .unwrap_or_else(|e| panic!("send over implicit TLS: {e}\n{}", postfix.log()));

    let delivered = postfix
        .wait_for_delivery(&dovecot, "customer", 1, DELIVERY_TIMEOUT)
        .await;
    assert_eq!(body(&delivered[0]), body(&reply(2)));
    wait_for_log(&postfix, "postfix/smtps/smtpd").await;
}

#[tokio::test]
async fn a_450_rule_defers_at_rcpt_and_once_cleared_the_same_mail_goes_through() {
    let (dovecot, postfix) = servers();
    postfix.set_recipient_rule("customer@example.com", "450 4.7.1 Try again later");
    let client = submission(&postfix, "support", "secret");

    let error = client
        .send_raw(&envelope("customer@example.com"), wire(&reply(3)))
        .await
        .expect_err("the rule defers the recipient");
    assert_eq!(
        error.status().map(|c| c.to_string()).as_deref(),
        Some("450")
    );
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("Try again later"), "{error}");
    assert!(dovecot.messages("customer").is_empty());

    postfix.clear_recipient_rules();
    client
        .send_raw(&envelope("customer@example.com"), wire(&reply(3)))
        .await
        .unwrap_or_else(|e| panic!("send after the rule was lifted: {e}"));
    let delivered = postfix
        .wait_for_delivery(&dovecot, "customer", 1, DELIVERY_TIMEOUT)
        .await;
    assert_eq!(body(&delivered[0]), body(&reply(3)));
}

#[tokio::test]
async fn a_550_rule_refuses_the_recipient() {
    let (dovecot, postfix) = servers();
    postfix.set_recipient_rule("Customer@Example.com", "550 5.1.1 No such user");

    let error = submission(&postfix, "support", "secret")
        .send_raw(&envelope("customer@example.com"), wire(&reply(4)))
        .await
        .expect_err("the rule refuses the recipient");
    assert_eq!(
        error.status().map(|c| c.to_string()).as_deref(),
        Some("550")
    );
    assert!(error.is_permanent(), "{error}");
    assert!(error.to_string().contains("No such user"), "{error}");
    assert!(dovecot.messages("customer").is_empty());
}

#[tokio::test]
async fn a_rule_changed_while_a_connection_is_open_holds_from_its_next_rcpt() {
    let (_dovecot, postfix) = servers();
    let mut conn = open_session(&postfix).await;

    assert_eq!(rcpt(&mut conn, "customer@example.com").await, "250");
    postfix.set_recipient_rule("customer@example.com", "450 4.7.1 Try again later");
    assert_eq!(rcpt(&mut conn, "customer@example.com").await, "450");
    assert_eq!(rcpt(&mut conn, "other@example.com").await, "250");
    postfix.set_recipient_rule("example.com", "550 5.7.1 Whole domain refused");
    assert_eq!(rcpt(&mut conn, "other@example.com").await, "550");
    postfix.clear_recipient_rules();
    assert_eq!(rcpt(&mut conn, "customer@example.com").await, "250");
    conn.quit().await.expect("QUIT");
}

#[tokio::test]
async fn a_stopped_postfix_refuses_connections_and_starts_again_on_the_same_ports() {
    let (dovecot, postfix) = servers();

    let started = Instant::now();
    postfix.stop();
    eprintln!("Postfix stopped in {:?}", started.elapsed());
    assert!(!postfix.is_running());
    assert!(refused(postfix.submission_addr()));
    assert!(refused(postfix.smtps_addr()));
    let error = submission(&postfix, "support", "secret")
        .send_raw(&envelope("customer@example.com"), wire(&reply(5)))
        .await
        .expect_err("nothing listens");
    assert!(!error.is_permanent(), "{error}");

    let started = Instant::now();
    postfix.start_again();
    eprintln!("Postfix started again in {:?}", started.elapsed());
    assert!(postfix.is_running());
    submission(&postfix, "support", "secret")
        .send_raw(&envelope("customer@example.com"), wire(&reply(5)))
        .await
        .unwrap_or_else(|e| panic!("send after start_again: {e}\n{}", postfix.log()));
    let delivered = postfix
        .wait_for_delivery(&dovecot, "customer", 1, DELIVERY_TIMEOUT)
        .await;
    assert_eq!(body(&delivered[0]), body(&reply(5)));
}

#[tokio::test]
async fn mail_for_an_unknown_user_goes_to_dovecot_and_bounces_to_the_sender() {
    let (dovecot, postfix) = servers();

    // Accepted at RCPT (every domain is Postfix's own), refused by Dovecot's LMTP, so
    // Postfix returns it to the sender with a delivery status notification: the mail
    // went to the test's Dovecot and nowhere else.
    submission(&postfix, "support", "secret")
        .send_raw(&envelope("nobody@elsewhere.test"), wire(&reply(6)))
        .await
        .unwrap_or_else(|e| panic!("send: {e}\n{}", postfix.log()));
    let bounces = postfix
        .wait_for_delivery(&dovecot, "support", 1, DELIVERY_TIMEOUT)
        .await;
    let bounce = String::from_utf8_lossy(&bounces[0]);
    assert!(bounce.contains("report-type=delivery-status"), "{bounce}");
    assert!(bounce.contains("nobody@elsewhere.test"), "{bounce}");
    let log = wait_for_log(&postfix, "status=bounced").await;
    assert!(log.contains("relay=127.0.0.1"), "{log}");
}
