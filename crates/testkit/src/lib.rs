//! Real fixtures for popdesk's tests and benchmarks.
//!
//! popdesk's promises (no message lost, none duplicated, nothing hangs) are only worth
//! something if they hold against real servers, so tests run against a real Dovecot
//! rather than a mock:
//!
//! - [`Dovecot`]: a private Dovecot per test on loopback ports, with POP3 (offering
//!   STLS) and POP3S, a certificate from a throwaway [`TestCa`], users, and Maildirs the
//!   test fills directly with [`Dovecot::deliver`]. It can serve instead a self-signed
//!   certificate made by the real `openssl req -x509`
//!   ([`ServerCert::openssl_self_signed`]) and switch to another while running
//!   ([`Dovecot::replace_server_cert`]).
//! - [`Postfix`]: a private Postfix per test on loopback, with a submission port
//!   (STARTTLS, then AUTH) and an implicit-TLS port, checking AUTH against the Dovecot's
//!   users and delivering mail for any domain by LMTP into the Dovecot
//!   ([`DovecotBuilder::lmtp`], [`DovecotBuilder::sasl_listener`]). Recipient rules
//!   make it answer 4xx or 5xx at `RCPT TO` ([`Postfix::set_recipient_rule`]); it can
//!   be stopped and started again with its queue.
//! - [`OAuthIntrospection`]: the token endpoint Dovecot asks when a client logs in with
//!   XOAUTH2 or OAUTHBEARER.
//! - [`OidcProvider`]: a real OAuth2/OpenID provider (npm `oidc-provider`) whose opaque
//!   access tokens a [`Dovecot`] checks by introspection: client credentials, the device
//!   flow, the code flow with PKCE, rotating refresh tokens, and scripted logins.
//! - [`FaultProxy`]: a hand-written proxy in front of Dovecot for the faults a real
//!   server cannot produce (a cut mid-`RETR`, `QUIT` answered `-ERR`, no `UIDL`).
//! - [`FaultyPop3`]: a hand-written fake POP3 server for one message's faults (a body cut
//!   off every time, longer than announced, or stalled), which no real server does on
//!   demand, and for providers that bend `DELE` and `UIDL` ([`ProviderBehaviour`]: mail
//!   kept after deletion, offered again under new UIDLs, no UIDL, duplicate UIDLs).
//! - [`PrivatePostgres`]: a PostgreSQL cluster of the test's own (`initdb` under /tmp,
//!   a free loopback port, trust auth) that the test may restart or stop, which the
//!   machine's shared server never may be.
//! - [`RawSession`]: a hand-driven POP3 connection for setting up server state and
//!   checking it independently of the client under test.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use testkit::{Dovecot, RawSession};
//!
//! let dovecot = Dovecot::builder().apop(true).start();
//! dovecot.add_user("support", "secret");
//! dovecot.deliver("support", b"Subject: hi\r\n\r\nhello\r\n");
//!
//! let mut pop = RawSession::connect(dovecot.pop3_addr()).await?;
//! assert!(pop.login("support", "secret").await?.starts_with("+OK"));
//! assert!(pop.command("STAT").await?.starts_with("+OK 1 "));
//! # Ok(()) }
//! ```
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! use testkit::{Dovecot, Postfix};
//!
//! let dovecot = Dovecot::builder().lmtp(true).sasl_listener(true).start();
//! dovecot.add_user("support", "secret");
//! dovecot.add_user("customer", "pw");
//! let postfix = Postfix::start(&dovecot);
//! // ... send as `support` through postfix.submission_addr() to customer@example.com,
//! // trusting postfix.ca_pem_path() for postfix.host() ...
//! let delivered = postfix
//!     .wait_for_delivery(&dovecot, "customer", 1, Duration::from_secs(10))
//!     .await;
//! # }
//! ```
//!
//! Dovecot and Postfix must be installed (`scripts/install-test-deps`) and tests must run
//! as root, as CI does: their masters start as root and drop to their own accounts.

mod ca;
mod dovecot;
mod fault_proxy;
mod faulty_pop3;
mod maildir;
mod oauth;
mod oidc;
mod openssl;
mod postfix;
mod postgres;
mod raw;
mod socketmap;

pub use ca::{ServerCert, TestCa};
pub use dovecot::{Dovecot, DovecotBuilder};
pub use fault_proxy::{Fault, FaultProxy};
pub use faulty_pop3::{FaultyPop3, MessageFault, ProviderBehaviour};
pub use oauth::{IntrospectionRequest, OAuthIntrospection};
pub use oidc::{DEVICE_CODE_GRANT, OidcClient, OidcConfig, OidcProvider, TokenEvent};
pub use openssl::openssl_bin;
pub use postfix::{Postfix, PostfixBuilder};
pub use postgres::PrivatePostgres;
pub use raw::RawSession;
