//! Bad input gets a clear error: an SMTP server that cannot be reached is described in
//! words that say what to do, not in the operating system's ("os error 111").

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use outgoing::{Failure, SmtpTarget, SmtpTimeouts, test_sending};
use secrecy::SecretString;
use store::{SmtpAuth, TlsMode};

fn target(port: u16) -> SmtpTarget {
    SmtpTarget {
        host: "127.0.0.1".to_string(),
        port,
        tls: TlsMode::Implicit,
        auth: SmtpAuth::Auto,
        username: "support@example.com".to_string(),
        secret: SecretString::from("password".to_string()),
        allow_insecure_auth: false,
        ca_file: None,
    }
}

#[tokio::test]
async fn a_port_where_nothing_listens_says_connection_refused_and_what_to_check() {
    // A port that was free a moment ago: nothing listens on it now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let timeouts = SmtpTimeouts {
        connect: Duration::from_secs(10),
        send: Duration::from_secs(10),
    };
    let failure = test_sending(&target(port), timeouts)
        .await
        .expect_err("nothing listens there");
    let Failure::Temporary(message) = &failure else {
        panic!("the network is temporary trouble: {failure:?}");
    };
    assert!(
        message.contains("connection refused") && message.contains("check the SMTP host and port"),
        "{message}"
    );
    assert!(!message.contains("os error"), "{message}");
}
