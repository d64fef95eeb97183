//! A complete POP3 client (RFC 1939, 2449, 2595, 5034, 7628).
//!
//! - An I/O-free core: [`codec`] turns commands into bytes and bytes into typed replies;
//!   [`Session`] matches replies to commands in flight, so pipelining, STLS and SASL
//!   continuations are plain unit tests.
//! - A thin tokio + rustls driver, [`Client`]: implicit TLS, STLS (fail-closed), plaintext;
//!   connect, read and session time limits; `RETR`/`TOP` streamed into any `AsyncWrite`
//!   with dot-unstuffing; batches pipelined when the server advertises PIPELINING.
//! - Errors that say what to do: [`Error::is_transient`], [`Error::is_auth`],
//!   [`Error::resp_code`], [`Error::is_timeout`]; a refused certificate says why
//!   ([`Error::certificate_problem`]) and what the server presented
//!   ([`Error::presented_certificate`]), so an admin can decide to trust it.
//! - Secrets stay out of traces: the `pop3::wire` debug trace redacts passwords, APOP
//!   digests and SASL data.
//!
//! ```no_run
//! # async fn example() -> Result<(), pop3::Error> {
//! use pop3::{AuthMethod, Client, ConnectOptions, Credentials, Security};
//!
//! let options = ConnectOptions::new("pop.example.com", 995, Security::Implicit);
//! let mut client = Client::connect(&options).await?;
//! client.authenticate(&Credentials::password("support", "secret"), AuthMethod::Auto).await?;
//! for entry in client.uidl().await? {
//!     let mut message = Vec::new();
//!     client.retr(entry.number, &mut message).await?;
//!     // ... store it durably, then:
//!     client.dele(entry.number).await?;
//! }
//! assert!(client.quit().await.is_committed());
//! # Ok(())
//! # }
//! ```

pub mod auth;
mod certificate;
mod client;
pub mod codec;
mod error;
mod fingerprint;
mod session;
mod types;

pub use auth::{AuthMethod, Credentials};
pub use certificate::{CertificateProblem, CertificateRefusal, PresentedCertificate};
pub use client::{Client, ConnectOptions, MessageSink, Security, Timeouts};
pub use codec::{CommandKind, RespCode};
pub use error::{Error, ProtocolError, ServerError, TimeoutKind};
pub use fingerprint::{CertFingerprint, FingerprintError};
pub use session::{
    Event, MAX_LISTING_ENTRIES, MAX_LISTING_LINE, MAX_LISTING_OCTETS, MAX_STATUS_LINE, Session,
};
pub use types::{Capabilities, Greeting, ListEntry, QuitOutcome, Retrieved, Stat, Uid, UidlEntry};
