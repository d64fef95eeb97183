//! One SMTP session through lettre: connect (implicit TLS or STARTTLS, failing closed),
//! sign in, send any number of messages over the same connection, `QUIT`.
//!
//! Every step has a time limit (promise 6), and every failure is classed the way the
//! outbox needs: [`Failure::Temporary`] (a 4xx, the network, a timeout: try again later)
//! or [`Failure::Permanent`] (a 5xx: the server said no, trying again will not help until
//! someone changes something).

use std::path::PathBuf;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use secrecy::{ExposeSecret, SecretString};
use store::{Mailbox, SendingSettings, SmtpAuth, Store, StoreError, TlsMode};

/// Where and how to send: a mailbox's sending settings with the secret to sign in with.
#[derive(Clone)]
pub struct SmtpTarget {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub auth: SmtpAuth,
    pub username: String,
    pub secret: SecretString,
    pub allow_insecure_auth: bool,
    /// A PEM file with the CA to trust besides the system's (the mailbox's CA file).
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for SmtpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("auth", &self.auth)
            .field("username", &self.username)
            .field("secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl SmtpTarget {
    /// The target for a mailbox's sending settings, with its secret from the store (or,
    /// for a mailbox connected with OAuth2 that reuses its POP3 identity, a current access
    /// token); `None` when the mailbox does not send.
    pub async fn for_mailbox(
        store: &Store,
        connections: &oauth::Connections,
        mailbox: &Mailbox,
    ) -> Result<Option<SmtpTarget>, TargetError> {
        let Some(sending) = &mailbox.settings.sending else {
            return Ok(None);
        };
        let secret = if mailbox.settings.oauth.is_some() && sending.smtp_username.is_none() {
            connections.access_token(mailbox, None).await?
        } else {
            store.smtp_secret(mailbox.id).await?
        };
        Ok(Some(SmtpTarget::new(mailbox, sending, secret)))
    }

    /// The target for these settings (which may not be saved yet) and secret.
    pub fn new(mailbox: &Mailbox, sending: &SendingSettings, secret: SecretString) -> SmtpTarget {
        SmtpTarget {
            host: sending.smtp_host.clone(),
            port: sending.smtp_port,
            tls: sending.smtp_tls,
            auth: sending.smtp_auth,
            username: sending
                .smtp_username
                .clone()
                .unwrap_or_else(|| mailbox.settings.username.clone()),
            secret,
            allow_insecure_auth: sending.smtp_allow_insecure_auth,
            ca_file: mailbox.settings.ca_file.as_ref().map(PathBuf::from),
        }
    }
}

/// Why no SMTP target could be made for a mailbox.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The mailbox's OAuth2 connection gave no access token.
    #[error("{0}")]
    Token(#[from] oauth::AccessError),
}

impl TargetError {
    /// What the outbox does about it: our store's trouble is the caller's to report; a
    /// missing token fails or delays the message like an SMTP refusal would.
    pub fn into_failure(self) -> Result<Failure, StoreError> {
        match self {
            TargetError::Store(error) => Err(error),
            // A mailbox waiting to be (re)connected keeps its replies: they leave once
            // an admin connects it, within the retry window.
            TargetError::Token(
                error @ (oauth::AccessError::NotConnected | oauth::AccessError::NeedsReconnecting),
            ) => Ok(Failure::Temporary(error.to_string())),
            TargetError::Token(error) if error.is_transient() => {
                Ok(Failure::Temporary(error.to_string()))
            }
            TargetError::Token(error) => Ok(Failure::Permanent(error.to_string())),
        }
    }
}

/// How long each step may take.
#[derive(Debug, Clone, Copy)]
pub struct SmtpTimeouts {
    /// Connecting, TLS, greeting and signing in.
    pub connect: Duration,
    /// One message: MAIL, RCPT, DATA and the server's answer to the final dot.
    pub send: Duration,
}

impl Default for SmtpTimeouts {
    fn default() -> Self {
        SmtpTimeouts {
            connect: Duration::from_secs(30),
            // RFC 5321 §4.5.3.2 lets a server take 10 minutes after the final dot; most
            // answer in seconds, and a reply that times out is sent again (same
            // Message-ID), so a shorter wait costs at most a duplicate copy.
            send: Duration::from_secs(120),
        }
    }
}

/// Why sending did not work, classed by what the outbox does about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Try again later: a 4xx answer, the network, a timeout, a server that is away.
    Temporary(String),
    /// Do not try again on its own: a 5xx answer, or settings that cannot work.
    Permanent(String),
}

impl Failure {
    /// The words to show: the server's when it gave some.
    pub fn message(&self) -> &str {
        match self {
            Failure::Temporary(message) | Failure::Permanent(message) => message,
        }
    }

    pub fn is_permanent(&self) -> bool {
        matches!(self, Failure::Permanent(_))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Failure {}

/// What a failed step was, for the sentence shown.
#[derive(Debug, Clone, Copy)]
enum Step {
    Connect,
    StartTls,
    SignIn,
    Send,
}

impl Step {
    fn doing(self) -> &'static str {
        match self {
            Step::Connect => "connecting",
            Step::StartTls => "starting TLS",
            Step::SignIn => "signing in",
            Step::Send => "sending",
        }
    }
}

/// Classes a lettre error and puts the server's words (code first) in a sentence.
fn failure(step: Step, target: &SmtpTarget, error: &lettre::transport::smtp::Error) -> Failure {
    let server = format!("{}:{}", target.host, target.port);
    let words = server_words(error);
    if let Some(code) = error.status() {
        let sentence = match step {
            Step::SignIn => format!(
                "the SMTP server {server} refused the sign-in as {}: {code} {words}; check the username and password (or token) for sending",
                target.username
            ),
            _ => format!("the SMTP server {server} answered {code} {words}"),
        };
        return if error.is_permanent() {
            Failure::Permanent(sentence)
        } else {
            Failure::Temporary(sentence)
        };
    }
    if error.is_timeout() {
        return Failure::Temporary(format!(
            "the SMTP server {server} did not answer in time while {}",
            step.doing()
        ));
    }
    if error.is_tls() {
        return Failure::Temporary(format!(
            "TLS with the SMTP server {server} failed: {words}; if the server uses its own certificate, set the mailbox's CA file"
        ));
    }
    if error.is_client() {
        // lettre's own checks: no common sign-in method, STARTTLS not offered.
        return Failure::Permanent(format!(
            "the SMTP server {server} cannot be used while {}: {words}",
            step.doing()
        ));
    }
    // The OS's words ("Connection refused (os error 111)") are for the log; what is
    // shown on the reply and the mailbox page must say what to do.
    let words = network_advice(error).map_or(words, str::to_string);
    Failure::Temporary(format!(
        "the SMTP server {server} could not be reached while {}: {words}",
        step.doing()
    ))
}

/// What a network failure under `error` means and what to do about it; `None` when the
/// error carries no I/O error of a kind with advice.
fn network_advice(error: &lettre::transport::smtp::Error) -> Option<&'static str> {
    use std::io::ErrorKind;
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                ErrorKind::ConnectionRefused => Some(
                    "nothing answers there (connection refused); check the SMTP host and port, and that the mail server is running",
                ),
                ErrorKind::TimedOut => Some(
                    "no answer in time; check the SMTP host and port, a firewall may be dropping the connection",
                ),
                ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::UnexpectedEof
                | ErrorKind::BrokenPipe => Some(
                    "the server closed the connection; check the port and the TLS mode (implicit TLS is usually port 465, STARTTLS 587)",
                ),
                _ if io.to_string().contains("lookup") => {
                    Some("the host name could not be found; check its spelling")
                }
                _ => None,
            };
        }
        source = cause.source();
    }
    None
}

/// The text after lettre's own prefix: the server's response, or the underlying error.
fn server_words(error: &lettre::transport::smtp::Error) -> String {
    match std::error::Error::source(error) {
        Some(source) => source.to_string().trim().to_string(),
        None => error.to_string(),
    }
}

/// An open, signed-in SMTP connection.
pub struct SmtpSession {
    connection: AsyncSmtpConnection,
    target: SmtpTarget,
    timeouts: SmtpTimeouts,
}

impl SmtpSession {
    /// Connects, secures and signs in. Refuses (permanently) to send a password over an
    /// unencrypted connection unless the mailbox allows it (promise 7).
    pub async fn open(target: &SmtpTarget, timeouts: SmtpTimeouts) -> Result<SmtpSession, Failure> {
        if target.tls == TlsMode::None
            && target.auth != SmtpAuth::None
            && !target.allow_insecure_auth
        {
            return Err(Failure::Permanent(format!(
                "sending through {}:{} would send the password unencrypted; use TLS (implicit or STARTTLS) or allow insecure sign-in for this mailbox's sending",
                target.host, target.port
            )));
        }
        match tokio::time::timeout(timeouts.connect, Self::open_unbounded(target, timeouts)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Temporary(format!(
                "the SMTP server {}:{} did not finish connecting and signing in within {} s",
                target.host,
                target.port,
                timeouts.connect.as_secs()
            ))),
        }
    }

    async fn open_unbounded(
        target: &SmtpTarget,
        timeouts: SmtpTimeouts,
    ) -> Result<SmtpSession, Failure> {
        let hello = ClientId::default();
        let implicit = match target.tls {
            TlsMode::Implicit => Some(tls_parameters(target)?),
            _ => None,
        };
        let mut connection = AsyncSmtpConnection::connect_tokio1(
            (target.host.as_str(), target.port),
            Some(timeouts.connect),
            &hello,
            implicit,
            None,
        )
        .await
        .map_err(|e| failure(Step::Connect, target, &e))?;
        if target.tls == TlsMode::StartTls {
            if !connection.can_starttls() {
                connection.abort().await;
                return Err(Failure::Permanent(format!(
                    "the SMTP server {}:{} does not offer STARTTLS; popdesk will not send over an unencrypted connection (use implicit TLS, usually port 465, or check the port)",
                    target.host, target.port
                )));
            }
            connection
                .starttls(tls_parameters(target)?, &hello)
                .await
                .map_err(|e| failure(Step::StartTls, target, &e))?;
        }
        let mechanisms: &[Mechanism] = match target.auth {
            SmtpAuth::None => &[],
            SmtpAuth::Auto => &[Mechanism::Plain, Mechanism::Login],
            SmtpAuth::Plain => &[Mechanism::Plain],
            SmtpAuth::Login => &[Mechanism::Login],
            SmtpAuth::Xoauth2 => &[Mechanism::Xoauth2],
        };
        if !mechanisms.is_empty() {
            let credentials = Credentials::new(
                target.username.clone(),
                target.secret.expose_secret().to_string(),
            );
            connection
                .auth(mechanisms, &credentials)
                .await
                .map_err(|e| failure(Step::SignIn, target, &e))?;
        }
        Ok(SmtpSession {
            connection,
            target: target.clone(),
            timeouts,
        })
    }

    /// Sends one message's exact bytes to these recipients.
    pub async fn send(
        &mut self,
        envelope_from: &str,
        recipients: &[&str],
        bytes: &[u8],
    ) -> Result<(), Failure> {
        let from = envelope_from.parse().map_err(|_| {
            Failure::Permanent(format!(
                "the sending address {envelope_from:?} is not an address; correct the mailbox's sending address"
            ))
        })?;
        let mut to = Vec::with_capacity(recipients.len());
        for recipient in recipients {
            to.push(recipient.parse().map_err(|_| {
                Failure::Permanent(format!("the recipient {recipient:?} is not an address"))
            })?);
        }
        let envelope = Envelope::new(Some(from), to)
            .map_err(|e| Failure::Permanent(format!("the message has no recipient: {e}")))?;
        // lettre ends DATA with CRLF "." CRLF whatever the message ends with: the
        // message's own final line break is left to it, so the bytes arrive exactly as
        // stored.
        let bytes = bytes.strip_suffix(b"\r\n").unwrap_or(bytes);
        match tokio::time::timeout(self.timeouts.send, self.connection.send(&envelope, bytes)).await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(failure(Step::Send, &self.target, &e)),
            Err(_) => {
                // Mid-DATA the connection is in an unknown state: it is not used again.
                self.connection.abort().await;
                Err(Failure::Temporary(format!(
                    "the SMTP server {}:{} did not accept the message within {} s; it will be sent again (the same message, so the recipient sees one)",
                    self.target.host,
                    self.target.port,
                    self.timeouts.send.as_secs()
                )))
            }
        }
    }

    /// Whether the connection can carry another message.
    pub fn is_usable(&self) -> bool {
        !self.connection.has_broken()
    }

    /// Ends the session politely; a server that does not answer is left behind.
    pub async fn quit(mut self) {
        let quit = tokio::time::timeout(Duration::from_secs(10), self.connection.quit()).await;
        if !matches!(quit, Ok(Ok(_))) {
            self.connection.abort().await;
        }
    }
}

/// TLS for this server: the system's roots plus the mailbox's CA file.
fn tls_parameters(target: &SmtpTarget) -> Result<TlsParameters, Failure> {
    let mut builder = TlsParameters::builder(target.host.clone());
    if let Some(path) = &target.ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            Failure::Permanent(format!(
                "the CA file {} cannot be read: {e}",
                path.display()
            ))
        })?;
        let certificate = Certificate::from_pem(&pem).map_err(|e| {
            Failure::Permanent(format!(
                "the CA file {} holds no usable certificate: {e}",
                path.display()
            ))
        })?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|e| Failure::Permanent(format!("TLS cannot be set up: {e}")))
}

/// What "Test sending" found: the session worked up to `QUIT`; no mail was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendingTest {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub auth: SmtpAuth,
    pub username: String,
}

/// Connects, secures, signs in and says `QUIT`: whether replies can leave this way.
pub async fn test_sending(
    target: &SmtpTarget,
    timeouts: SmtpTimeouts,
) -> Result<SendingTest, Failure> {
    let session = SmtpSession::open(target, timeouts).await?;
    session.quit().await;
    Ok(SendingTest {
        host: target.host.clone(),
        port: target.port,
        tls: target.tls,
        auth: target.auth,
        username: target.username.clone(),
    })
}
