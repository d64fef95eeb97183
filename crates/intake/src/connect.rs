//! From a mailbox's stored settings to a logged-in POP3 session, and the `mailbox test`
//! probe that does only that.

use std::path::PathBuf;
use std::time::Duration;

use pop3::{AuthMethod, Client, ConnectOptions, Credentials, Security, Timeouts};
use secrecy::{ExposeSecret as _, SecretString};
use store::{MailboxSettings, TlsMode};

use crate::error::FetchError;

/// Session-level knobs that are not per-mailbox settings.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub timeouts: Timeouts,
    /// Use PIPELINING when the server offers it.
    pub pipelining: bool,
}

/// Overrides the POP3 read timeout (whole seconds): how long a server may stay silent
/// while a reply is due, and so how soon a message that stalls mid-body counts as failed.
/// For servers slower than the default allows, and for tests of stalling servers.
pub const READ_TIMEOUT_VAR: &str = "POPDESK_POP3_READ_TIMEOUT_SECS";

impl Default for SessionOptions {
    /// The client's default time limits, with the read timeout from
    /// [`READ_TIMEOUT_VAR`] when it is set to a positive number.
    fn default() -> Self {
        let mut timeouts = Timeouts::default();
        match std::env::var(READ_TIMEOUT_VAR)
            .ok()
            .map(|v| v.trim().parse::<u64>())
        {
            Some(Ok(secs)) if secs > 0 => timeouts.read = Duration::from_secs(secs),
            Some(_) => tracing::warn!(
                "{READ_TIMEOUT_VAR} is not a positive number of seconds; using the default read timeout"
            ),
            None => {}
        }
        SessionOptions {
            timeouts,
            pipelining: true,
        }
    }
}

/// Everything needed to open a session for one mailbox.
pub struct SessionPlan {
    pub options: ConnectOptions,
    pub credentials: Credentials,
    pub method: AuthMethod,
}

/// Builds connection options and credentials from a mailbox's settings.
pub fn session_plan(
    settings: &MailboxSettings,
    secret: &SecretString,
    session: &SessionOptions,
) -> Result<SessionPlan, FetchError> {
    let security = match settings.tls {
        TlsMode::Implicit => Security::Implicit,
        TlsMode::StartTls => Security::StartTls,
        TlsMode::None => Security::None,
    };
    let method = settings.auth_method;
    let mut options = ConnectOptions::new(settings.host.clone(), settings.port, security);
    options.ca_file = settings.ca_file.as_ref().map(PathBuf::from);
    options.pinned_certificate = settings.trusted_certificate;
    options.allow_insecure_auth = settings.allow_insecure_auth;
    options.timeouts = session.timeouts;
    options.pipelining = session.pipelining;
    let credentials = if method.uses_token() {
        Credentials::oauth2(settings.username.clone(), secret.expose_secret())
    } else {
        Credentials::password(settings.username.clone(), secret.expose_secret())
    };
    Ok(SessionPlan {
        options,
        credentials,
        method,
    })
}

/// Connects and logs in.
pub async fn open_session(plan: &SessionPlan) -> Result<Client, FetchError> {
    let mut client = Client::connect(&plan.options).await?;
    client.authenticate(&plan.credentials, plan.method).await?;
    Ok(client)
}

/// What `mailbox test` reports: the server as popdesk sees it, nothing changed.
#[derive(Debug, Clone)]
pub struct Probe {
    pub greeting: String,
    pub encrypted: bool,
    pub auth_method: AuthMethod,
    pub capabilities: Vec<String>,
    pub messages: u32,
    pub size: u64,
    pub has_uidl: bool,
    pub pipelining: bool,
}

/// Connects, logs in, reads STAT and the capabilities, and ends with QUIT. Deletes
/// nothing and retrieves nothing (a RETR would make Gmail hide the message).
pub async fn probe(plan: &SessionPlan) -> Result<Probe, FetchError> {
    let mut client = Client::connect(&plan.options).await?;
    let auth_method = client.authenticate(&plan.credentials, plan.method).await?;
    let stat = client.stat().await?;
    let capabilities = client.capabilities().clone();
    let probe = Probe {
        greeting: client.greeting().text.clone(),
        encrypted: client.is_encrypted(),
        auth_method,
        capabilities: capabilities.lines().to_vec(),
        messages: stat.count,
        size: stat.size,
        has_uidl: capabilities.uidl(),
        pipelining: client.is_pipelining(),
    };
    let _ = client.quit().await;
    Ok(probe)
}
