//! Why a fetch run failed, in words an admin can act on, and whether to retry.

use store::{RunOutcome, StoreError};

/// A fetch run's failure.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Another fetcher holds this mailbox (promise 4). Not a failure of the mailbox.
    #[error(
        "another fetcher is already working on this mailbox (pid {pid} on {host}); try again when it is done"
    )]
    Busy { host: String, pid: u32 },
    #[error("{}", pop3_advice(.0))]
    Pop3(#[from] pop3::Error),
    #[error("{}", store_advice(.0))]
    Store(#[from] StoreError),
    /// One message's download broke off (connection cut, server silent, body longer
    /// than announced). What arrived whole before it is stored; the next run tries this
    /// message again on its own.
    #[error(
        "message {number} (UIDL {uid}, {size} octets) could not be downloaded: {source}; it stays on the server, and the next run tries it again on its own (failed {attempts} time(s); set aside after {set_aside_after} runs in a row fail it the same way)"
    )]
    MessageFailed {
        number: u32,
        uid: String,
        size: u64,
        attempts: usize,
        set_aside_after: u32,
        source: pop3::Error,
    },
    #[error(
        "the server does not support UIDL, which the keep policy needs to recognise mail it has already fetched; use the delete policy for this mailbox"
    )]
    KeepNeedsUidl,
    #[error("the mailbox's settings are not usable: {0}")]
    Settings(String),
    /// No OAuth2 access token: not connected, needs reconnecting, the client refused, or
    /// the token endpoint is down.
    #[error("{0}")]
    OAuth(#[from] oauth::AccessError),
    #[error(
        "this fetcher lost its lease on the mailbox (another process took it over); stopped at a safe point"
    )]
    LeaseLost,
    /// The fetch was cancelled (popdesk is shutting down) and stopped at a safe point:
    /// nothing half-stored, nothing deleted that is not committed.
    #[error(
        "popdesk was shutting down; the run stopped at a safe point and the next run carries on"
    )]
    Cancelled,
}

impl FetchError {
    /// How the run ends: transient errors are retried later with backoff; permanent ones
    /// need a person and mark the mailbox as needing attention.
    pub fn outcome(&self) -> RunOutcome {
        match self {
            FetchError::Busy { .. } | FetchError::LeaseLost => RunOutcome::Transient,
            FetchError::Pop3(error) if error.is_transient() => RunOutcome::Transient,
            FetchError::Pop3(_) => RunOutcome::Permanent,
            // The mailbox works; one message did not, and has its own record.
            FetchError::MessageFailed { .. } => RunOutcome::Transient,
            // Disk full and database trouble heal when space or service comes back.
            FetchError::Store(_) => RunOutcome::Transient,
            FetchError::KeepNeedsUidl | FetchError::Settings(_) => RunOutcome::Permanent,
            FetchError::OAuth(error) if error.is_transient() => RunOutcome::Transient,
            FetchError::OAuth(_) => RunOutcome::Permanent,
            FetchError::Cancelled => RunOutcome::Cancelled,
        }
    }

    pub fn is_permanent(&self) -> bool {
        self.outcome() == RunOutcome::Permanent
    }
}

/// How every refused-login error begins.
pub const AUTH_FAILED: &str = "authentication failed";

fn pop3_advice(error: &pop3::Error) -> String {
    if error.is_auth() {
        // Starts with the words an admin (and the scheduler's status) looks for.
        return format!(
            "{AUTH_FAILED}: the server refused the login ({error}); check the mailbox's username, password or token"
        );
    }
    if let Some(code) = error.resp_code() {
        use pop3::RespCode;
        let advice = match code {
            RespCode::InUse => "another client is using this mailbox right now; popdesk will retry",
            RespCode::LoginDelay => {
                "the server asks to wait longer between logins; popdesk will retry later"
            }
            RespCode::SysTemp => "the server has a temporary problem; popdesk will retry",
            RespCode::SysPerm => {
                "the server reports a permanent problem with this mailbox; ask its administrator"
            }
            _ => "",
        };
        if !advice.is_empty() {
            return format!("{error}: {advice}");
        }
    }
    if let pop3::Error::Connect { address, source } = error {
        // The OS's words ("Connection refused (os error 111)") are for the log; the run's
        // error is shown on the mailbox page and must say what to do.
        let what = match source.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                "nothing answers there (connection refused); check the host and the port, and that the mail server is running".to_string()
            }
            std::io::ErrorKind::TimedOut => {
                "no answer in time; check the host and the port, a firewall may be dropping the connection".to_string()
            }
            _ if source.to_string().contains("lookup") => {
                "the host name could not be found; check its spelling".to_string()
            }
            _ => format!("{source}; check the host and the port"),
        };
        return format!("could not connect to {address}: {what}; popdesk will retry");
    }
    if error.presented_certificate().is_some() {
        return format!(
            "{error}; trust the server's certificate by its fingerprint (\"Test connection\" shows it), or give the CA that signed it as the mailbox's CA file"
        );
    }
    if error.is_tls() {
        return format!("{error}; check the host name and the TLS mode");
    }
    if error.is_timeout() {
        return format!("{error}; popdesk will retry");
    }
    error.to_string()
}

fn store_advice(error: &StoreError) -> String {
    if error.is_disk_full() {
        format!(
            "the disk holding popdesk's data is full ({error}); free space and the next run continues where this one stopped"
        )
    } else {
        error.to_string()
    }
}
