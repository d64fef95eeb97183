//! OAuth2 from the command line, as a script would set it up (issue #11): a mailbox
//! connected with the device flow through `popdesk mailbox connect` keeps fetching across
//! several access-token expiries, with the refresh token rotated at the provider; a
//! revoked grant stops the mailbox as "needs reconnecting" until `connect` is run again;
//! a client-credentials mailbox fetches at once, with no `connect`, and keeps fetching.
//!
//! A real OAuth2 server (`oidc-provider` on loopback) issues the tokens and a real
//! Dovecot asks it about every XOAUTH2 login (its `oauth2` passdb, introspection), so a
//! token popdesk did not really get from the provider is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::Popdesk;
use testkit::{Dovecot, OidcClient, OidcConfig, OidcProvider, Postfix};

/// Short-lived access tokens: an expiry every few seconds.
const TTL_SECS: u64 = 8;
const SECRET_VAR: &str = "POPDESK_TEST_OAUTH_CLIENT_SECRET";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn mail(n: usize, to: &str) -> Vec<u8> {
    format!(
        "From: Customer {n} <customer{n}@example.net>\r\nTo: {to}@example.org\r\nSubject: Question {n}\r\nMessage-ID: <oauth-{n}-{to}@example.net>\r\nDate: Thu, 03 Dec 2026 08:00:00 +0000\r\n\r\nHello, question number {n}.\r\n"
    )
    .into_bytes()
}

/// `mailbox fetch NAME` must succeed and store `expected` new messages.
fn fetch_stores(popdesk: &Popdesk, name: &str, expected: u64, provider: &OidcProvider) {
    let done = popdesk.fetch(name);
    let runs = popdesk.runs(name);
    let last = runs.last().expect("a recorded run");
    assert!(
        done.status.success() && last.outcome == "success" && last.downloaded == expected,
        "fetch of {name}: {:?}, run {last:?}\n--- stderr ---\n{}\n--- provider ---\n{}",
        done.status,
        done.stderr,
        provider.log()
    );
}

fn events(provider: &OidcProvider, grant: &str, outcome: &str) -> usize {
    provider
        .token_events()
        .iter()
        .filter(|e| e.grant_type == grant && e.outcome == outcome)
        .count()
}

/// Runs `mailbox connect NAME`, approves the code it prints at the provider as `account`,
/// and insists it exits 0.
fn connect(popdesk: &Popdesk, name: &str, provider: &OidcProvider, account: &str) {
    let running = popdesk.spawn(&["mailbox", "connect", name]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        let out = running.stdout_so_far();
        if let Some(code) = out
            .lines()
            .find_map(|l| l.split("enter the code ").nth(1))
            .map(|c| c.trim().to_string())
        {
            assert!(
                out.contains(&provider.issuer()),
                "connect names the provider's page: {out}"
            );
            break code;
        }
        assert!(
            Instant::now() < deadline,
            "no code printed: {out}\n{}",
            running.stderr_so_far()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    runtime()
        .block_on(provider.approve_device(&code, account))
        .unwrap_or_else(|e| panic!("approve {code}: {e}\n{}", provider.log()));
    let done = running.wait(Duration::from_secs(60));
    assert!(
        done.status.success(),
        "connect: {:?}\n{}\n{}",
        done.status,
        done.stdout,
        done.stderr
    );
    assert!(done.stdout.contains("connected"), "{}", done.stdout);
}

#[test]
fn a_device_code_mailbox_keeps_fetching_across_token_expiries_until_its_grant_is_revoked() {
    let provider = OidcProvider::start(
        OidcConfig {
            access_token_ttl_secs: TTL_SECS,
            ..OidcConfig::default()
        }
        .client(
            OidcClient::public("popdesk-cli").redirect_uri("http://127.0.0.1:9/oauth/callback"),
        ),
    );
    let dovecot = Dovecot::builder()
        .oauth2(provider.introspection_url_for_dovecot())
        .start();
    dovecot.add_user("dana", "not-used-with-oauth2");
    let data = tempfile::tempdir().expect("data folder");
    let popdesk = Popdesk::new(data.path());
    let pop3 = dovecot.pop3_addr();
    let issuer = provider.issuer();
    popdesk.run_ok(&[
        "mailbox",
        "add",
        "oauthbox",
        "--host",
        &pop3.ip().to_string(),
        "--port",
        &pop3.port().to_string(),
        "--tls",
        "none",
        "--allow-insecure-auth",
        "--user",
        "dana",
        "--auth",
        "xoauth2",
        "--oauth-provider",
        "generic",
        "--oauth-issuer",
        &issuer,
        "--oauth-client-id",
        "popdesk-cli",
        "--oauth-flow",
        "device-code",
        "--oauth-scope",
        "mail",
        "--oauth-scope",
        "offline_access",
    ]);
    let shown = popdesk.show("oauthbox");
    assert_eq!(shown["oauth"]["state"], "not-connected", "{shown}");
    assert_eq!(
        shown["oauth"]["token_url"].as_str(),
        Some(format!("{issuer}/token").as_str()),
        "the endpoints come from the issuer's discovery document"
    );
    // Not connected yet: a fetch says what to do and stores nothing.
    dovecot.deliver("dana", &mail(0, "dana"));
    let done = popdesk.fetch("oauthbox");
    assert!(!done.status.success());
    assert!(
        (done.stdout.clone() + &done.stderr).contains("popdesk mailbox connect"),
        "{}{}",
        done.stdout,
        done.stderr
    );
    popdesk.run_ok(&["mailbox", "update", "oauthbox", "--enable"]);

    connect(&popdesk, "oauthbox", &provider, "dana");
    assert_eq!(popdesk.show("oauthbox")["oauth"]["state"], "connected");
    fetch_stores(&popdesk, "oauthbox", 1, &provider);

    // Three expiries: each fetch after one renews the token first.
    let started = Instant::now();
    for n in 1..=3 {
        std::thread::sleep(Duration::from_secs(TTL_SECS) + Duration::from_millis(500));
        dovecot.deliver("dana", &mail(n, "dana"));
        fetch_stores(&popdesk, "oauthbox", 1, &provider);
        assert_eq!(
            events(&provider, "refresh_token", "ok"),
            n,
            "one renewal per expiry: {:?}",
            provider.token_events()
        );
    }
    eprintln!(
        "kept fetching across 3 expiries of {TTL_SECS} s tokens over {:.0} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(events(&provider, "refresh_token", "invalid_grant"), 0);

    // The grant revoked at the provider: the next renewal is refused, the mailbox stops
    // as "needs reconnecting", and fetching again does not ask the provider again.
    let revoked = runtime()
        .block_on(provider.revoke_grants("dana"))
        .expect("revoke");
    assert!(revoked > 0);
    std::thread::sleep(Duration::from_secs(TTL_SECS) + Duration::from_millis(500));
    dovecot.deliver("dana", &mail(4, "dana"));
    let done = popdesk.fetch("oauthbox");
    assert!(!done.status.success(), "a revoked grant cannot fetch");
    let shown = popdesk.show("oauthbox");
    assert_eq!(shown["oauth"]["state"], "needs-reconnecting", "{shown}");
    let attention = shown["needs_attention"].as_str().unwrap_or_default();
    assert!(attention.contains("needs reconnecting"), "{attention}");
    let asked = provider.token_events().len();
    popdesk.fetch("oauthbox");
    assert_eq!(provider.token_events().len(), asked, "not asked again");
    assert_eq!(
        dovecot.message_count("dana"),
        1,
        "the new mail waits on the server"
    );

    // Reconnect: fetching resumes with what waited.
    connect(&popdesk, "oauthbox", &provider, "dana");
    fetch_stores(&popdesk, "oauthbox", 1, &provider);
    assert_eq!(dovecot.message_count("dana"), 0);
    let shown = popdesk.show("oauthbox");
    assert_eq!(shown["oauth"]["state"], "connected");
    assert!(shown["needs_attention"].is_null(), "{shown}");
}

#[test]
fn a_client_credentials_mailbox_fetches_without_connect_and_keeps_fetching() {
    let provider = OidcProvider::start(
        OidcConfig {
            access_token_ttl_secs: TTL_SECS,
            ..OidcConfig::default()
        }
        .client(
            OidcClient::confidential("popdesk-app", "app-secret-1")
                .grant_types(&["client_credentials"])
                .mailbox_user("shared"),
        ),
    );
    let dovecot = Dovecot::builder()
        .oauth2(provider.introspection_url_for_dovecot())
        .start();
    dovecot.add_user("shared", "not-used-with-oauth2");
    let data = tempfile::tempdir().expect("data folder");
    let popdesk = Popdesk::new(data.path());
    let pop3 = dovecot.pop3_addr();
    let issuer = provider.issuer();
    let add = popdesk
        .spawn_with(
            &[
                "mailbox",
                "add",
                "appbox",
                "--host",
                &pop3.ip().to_string(),
                "--port",
                &pop3.port().to_string(),
                "--tls",
                "none",
                "--allow-insecure-auth",
                "--user",
                "shared",
                "--auth",
                "xoauth2",
                "--oauth-provider",
                "generic",
                "--oauth-issuer",
                &issuer,
                "--oauth-client-id",
                "popdesk-app",
                "--oauth-client-secret-env",
                SECRET_VAR,
                "--oauth-flow",
                "client-credentials",
                "--oauth-scope",
                "mail",
            ],
            &[(SECRET_VAR, "app-secret-1")],
        )
        .wait(Duration::from_secs(60));
    assert!(add.status.success(), "{}", add.stderr);
    let listed = popdesk
        .run_ok(&["mailbox", "show", "appbox", "--json"])
        .stdout;
    assert!(
        !listed.contains("app-secret-1"),
        "the client secret is never shown"
    );

    for n in 0..3 {
        dovecot.deliver("shared", &mail(n, "shared"));
        fetch_stores(&popdesk, "appbox", 1, &provider);
        std::thread::sleep(Duration::from_secs(TTL_SECS) + Duration::from_millis(500));
    }
    assert_eq!(
        events(&provider, "client_credentials", "ok"),
        3,
        "a new app-only token for each expiry: {:?}",
        provider.token_events()
    );
    let stderr_and_logs = popdesk.fetch("appbox").stderr;
    assert!(!stderr_and_logs.contains("app-secret-1"));

    // The secret rotated at the provider without telling popdesk: a permanent, named
    // failure that needs the admin.
    let update = popdesk
        .spawn_with(
            &[
                "mailbox",
                "update",
                "appbox",
                "--oauth-client-secret-env",
                SECRET_VAR,
            ],
            &[(SECRET_VAR, "not-the-secret")],
        )
        .wait(Duration::from_secs(60));
    assert!(update.status.success(), "{}", update.stderr);
    std::thread::sleep(Duration::from_secs(TTL_SECS));
    let done = popdesk.fetch("appbox");
    assert!(!done.status.success());
    let shown = popdesk.show("appbox");
    let attention = shown["needs_attention"].as_str().unwrap_or_default();
    assert!(
        attention.contains("refused the client id or secret"),
        "{shown}"
    );
    assert!(!attention.contains("not-the-secret"));
}

#[test]
fn replies_leave_through_smtp_signed_in_with_the_connections_token() {
    let provider = OidcProvider::start(
        OidcConfig {
            access_token_ttl_secs: TTL_SECS,
            ..OidcConfig::default()
        }
        .client(
            OidcClient::confidential("popdesk-app", "app-secret-2")
                .grant_types(&["client_credentials"])
                .mailbox_user("support"),
        ),
    );
    let dovecot = Dovecot::builder()
        .lmtp(true)
        .sasl_listener(true)
        .oauth2(provider.introspection_url_for_dovecot())
        .start();
    dovecot.add_user("support", "not-used-with-oauth2");
    dovecot.add_user("customer", "customer-pass");
    let postfix = Postfix::start(&dovecot);
    let data = tempfile::tempdir().expect("data folder");
    let popdesk = Popdesk::new(data.path());
    let pop3 = dovecot.pop3_addr();
    let issuer = provider.issuer();
    let smtp_port = postfix.submission_addr().port().to_string();
    let ca = postfix.ca_pem_path().display().to_string();
    let add = popdesk
        .spawn_with(
            &[
                "mailbox",
                "add",
                "support",
                "--host",
                &pop3.ip().to_string(),
                "--port",
                &pop3.port().to_string(),
                "--tls",
                "none",
                "--allow-insecure-auth",
                "--ca-file",
                &ca,
                "--user",
                "support",
                "--auth",
                "xoauth2",
                "--oauth-provider",
                "generic",
                "--oauth-issuer",
                &issuer,
                "--oauth-client-id",
                "popdesk-app",
                "--oauth-client-secret-env",
                SECRET_VAR,
                "--oauth-flow",
                "client-credentials",
                "--oauth-scope",
                "mail",
                "--address",
                "support@example.com",
                "--smtp-host",
                postfix.host(),
                "--smtp-port",
                &smtp_port,
                "--smtp-tls",
                "starttls",
            ],
            &[(SECRET_VAR, "app-secret-2")],
        )
        .wait(Duration::from_secs(60));
    assert!(add.status.success(), "{}", add.stderr);
    let shown = popdesk.show("support");
    assert_eq!(shown["sending"]["smtp_auth"], "xoauth2", "{shown}");

    dovecot.deliver(
        "support",
        b"From: Customer <customer@example.com>\r\nTo: support@example.com\r\nSubject: Printer on fire\r\nMessage-ID: <fire@example.com>\r\nDate: Thu, 03 Dec 2026 08:00:00 +0000\r\n\r\nIt is on fire.\r\n",
    );
    fetch_stores(&popdesk, "support", 1, &provider);
    popdesk.run_ok(&["ticket", "reply", "1", "--body", "Unplug it.", "--no-send"]);
    // After an expiry the sender renews the token before it signs in to SMTP.
    std::thread::sleep(Duration::from_secs(TTL_SECS) + Duration::from_millis(500));
    let sent = popdesk.run_ok(&["outbox", "send"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while dovecot.message_count("customer") == 0 {
        assert!(
            Instant::now() < deadline,
            "the reply did not arrive: {}\n{}\n--- postfix ---\n{}",
            sent.stdout,
            sent.stderr,
            postfix.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let delivered = String::from_utf8_lossy(&dovecot.messages("customer")[0]).to_string();
    assert!(delivered.contains("Unplug it."), "{delivered}");
    assert!(
        events(&provider, "client_credentials", "ok") >= 2,
        "the SMTP sign-in used a renewed token: {:?}",
        provider.token_events()
    );
}
