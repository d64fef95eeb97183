//! How to reach a server: address, encryption, time limits, pipelining.

use std::path::PathBuf;
use std::time::Duration;

use crate::fingerprint::CertFingerprint;

/// How the connection is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (port 995).
    Implicit,
    /// Plaintext, upgraded with `STLS` (RFC 2595) before anything else. Fails closed when
    /// the server does not offer STLS.
    StartTls,
    /// No encryption. Passwords are still refused unless insecure authentication is
    /// explicitly allowed.
    None,
}

impl std::str::FromStr for Security {
    type Err = String;

    fn from_str(name: &str) -> Result<Security, String> {
        match name.to_ascii_lowercase().as_str() {
            "implicit" | "tls" | "ssl" => Ok(Security::Implicit),
            "starttls" | "stls" => Ok(Security::StartTls),
            "none" | "plain" => Ok(Security::None),
            _ => Err(format!(
                "unknown TLS mode {name:?} (expected implicit, starttls or none)"
            )),
        }
    }
}

/// Time limits. Every network step has one, so nothing hangs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// For the TCP connection and the TLS handshake.
    pub connect: Duration,
    /// For each read: how long the server may stay silent while a reply is due. A large
    /// message that keeps arriving never hits it.
    pub read: Duration,
    /// For the whole session from connect on. On by default: a server that trickles a
    /// byte just often enough to beat the read timeout must not hold a client forever.
    pub session: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            read: Duration::from_secs(60),
            session: Some(Duration::from_secs(60 * 60)),
        }
    }
}

/// Everything [`crate::Client::connect`] needs.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// A PEM file of extra trusted CA certificates (for servers with an internal CA). The
    /// system's roots stay trusted; verification and the host name check stay on.
    ///
    /// It may also hold the server's own self-signed certificate (even one marked
    /// CA:TRUE, as `openssl req -x509` makes them): a server presenting exactly that
    /// certificate is trusted, as long as it names the host.
    pub ca_file: Option<PathBuf>,
    /// Trust exactly one certificate, by the SHA-256 fingerprint of its DER bytes (like
    /// mpop's `--tls-fingerprint`), whatever its issuer, names or dates. Any other
    /// certificate is refused, even one the roots would trust: the server changed its
    /// certificate and the admin decides. The roots and `ca_file` are not consulted.
    /// The TLS handshake's signatures are still checked against the pinned certificate.
    pub pinned_certificate: Option<CertFingerprint>,
    pub timeouts: Timeouts,
    /// Allow secrets (passwords, tokens) over an unencrypted connection.
    pub allow_insecure_auth: bool,
    /// Use PIPELINING when the server advertises it.
    pub pipelining: bool,
    /// Most commands in flight at once when pipelining.
    pub pipeline_window: usize,
}

impl ConnectOptions {
    /// Options with safe defaults: certificate checks on, no insecure auth, pipelining
    /// when offered.
    pub fn new(host: impl Into<String>, port: u16, security: Security) -> ConnectOptions {
        ConnectOptions {
            host: host.into(),
            port,
            security,
            ca_file: None,
            pinned_certificate: None,
            timeouts: Timeouts::default(),
            allow_insecure_auth: false,
            pipelining: true,
            pipeline_window: 32,
        }
    }
}
