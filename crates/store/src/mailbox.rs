//! Mailboxes: where to fetch from, how, and what to do with the mail on the server.
//!
//! The secret (password or OAuth token) is sealed with the [`SecretBox`](crate::SecretBox)
//! before it reaches the database and only [`Store::mailbox_secret`] opens it; `Mailbox`
//! never carries it, so listing or printing a mailbox cannot leak it.

pub use pop3::{AuthMethod, CertFingerprint};
use secrecy::{ExposeSecret, SecretString};
use sqlx::any::AnyRow;

use crate::oauth::{OAuthSettings, OAuthState, oauth_from_row, oauth_state_from_row};
use crate::secret::MAILBOX_SECRET;
use crate::sending::{SendingSettings, sending_from_row, sending_values};
use crate::text::{column, from_db, text_enum, to_db};
use crate::{Store, StoreError};

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TlsMode {
    /// TLS from the first byte (port 995).
    #[default]
    Implicit,
    /// Plain connection upgraded with STLS; fails closed if the server does not offer it.
    StartTls,
    /// No encryption (plaintext auth refused unless `allow_insecure_auth`).
    None,
}
text_enum!(TlsMode, "TLS mode", { Implicit => "implicit", StartTls => "starttls", None => "none" });

/// What happens to mail on the server once it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Policy {
    /// Delete once stored (the default).
    #[default]
    Delete,
    /// Leave it on the server (needs UIDL), optionally deleting it once it is older than
    /// this many days.
    Keep { delete_after_days: Option<u32> },
}

impl Policy {
    /// The policies' text forms.
    pub const NAMES: &'static [&'static str] = &["delete", "keep"];

    /// `delete` or `keep`.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Delete => "delete",
            Policy::Keep { .. } => "keep",
        }
    }

    fn from_stored(policy: &str, delete_after_days: Option<i64>) -> Result<Policy, StoreError> {
        match policy {
            "delete" => Ok(Policy::Delete),
            "keep" => Ok(Policy::Keep {
                delete_after_days: delete_after_days.and_then(|d| u32::try_from(d).ok()),
            }),
            other => Err(StoreError::UnknownValue {
                what: "mailbox policy",
                value: other.to_string(),
            }),
        }
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Policy::Keep {
                delete_after_days: Some(days),
            } => write!(f, "keep (delete after {days} days)"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// What the first run does with mail already on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StartMode {
    /// Import everything that is there.
    #[default]
    All,
    /// Seed the ledger with the current UIDLs and import nothing: only mail arriving from
    /// now on.
    Now,
}
text_enum!(StartMode, "start mode", { All => "all", Now => "now" });

/// What happens to a message larger than `max_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Oversize {
    /// Store its headers (TOP n 0) as too large; it stays on the server.
    #[default]
    Skip,
    /// Download it anyway and store it as too large.
    Download,
}
text_enum!(Oversize, "oversize policy", { Skip => "skip", Download => "download" });

/// What happens to mail whose subject names a ticket (`[#N]`) when its sender has never
/// taken part in that ticket and it replies to none of its messages. Ticket numbers are
/// sequential, so anyone can write one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NewAddressReference {
    /// It joins the ticket (the customer may write from another address), marked "from a
    /// new address", and does not reopen the ticket by itself.
    #[default]
    Join,
    /// It opens a ticket of its own.
    NewTicket,
}
text_enum!(NewAddressReference, "new-address reference policy", { Join => "join", NewTicket => "new-ticket" });

/// Everything an admin sets for a mailbox, except the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxSettings {
    /// Unique name, chosen by the admin.
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: String,
    /// How popdesk signs in; stored as its setting text (`auto`, `cram-md5`, ...).
    pub auth_method: AuthMethod,
    pub policy: Policy,
    pub start: StartMode,
    /// QUIT after this many messages (promise 3), or earlier: a session also ends after
    /// about a minute of downloading (the fetcher's session budget). The default is no
    /// real bound ([`DEFAULT_BATCH_MESSAGES`]); an admin sets a smaller one.
    pub batch_messages: u32,
    /// ... or after this many octets ([`DEFAULT_BATCH_BYTES`] unless set).
    pub batch_bytes: u64,
    /// Messages larger than this (octets, per LIST) follow `oversize`.
    pub max_size: u64,
    pub oversize: Oversize,
    /// A PEM file with the CA that signed the server's certificate (or the server's own
    /// self-signed certificate).
    pub ca_file: Option<String>,
    /// The one certificate this mailbox's server may present, whoever signed it: how an
    /// admin trusts a self-signed server.
    pub trusted_certificate: Option<CertFingerprint>,
    /// Allow plaintext authentication over an unencrypted connection.
    pub allow_insecure_auth: bool,
    pub enabled: bool,
    /// Seconds between the scheduler's polls of this mailbox.
    pub poll_interval_secs: u32,
    /// Where replies leave from; `None` until the admin sets up sending.
    pub sending: Option<SendingSettings>,
    /// How the mailbox gets its access tokens, when it signs in with OAuth2; `None` for
    /// a password (or a token pasted by hand).
    pub oauth: Option<OAuthSettings>,
    /// Mail naming a ticket from an address new to it: join, marked, or a new ticket.
    pub new_address_reference: NewAddressReference,
}

/// Messages per session unless the admin sets fewer: the most the rules allow, so that
/// by default the fetcher's time budget ends a session, not a count. (It was 1,000: at
/// 20 ms RTT each new session's handshakes, login and slow start cost as much as
/// hundreds of messages, and a lost session no longer costs downloads, as every message
/// is committed while the session goes on.)
pub const DEFAULT_BATCH_MESSAGES: u32 = 100_000;
/// Octets per session unless the admin sets fewer: a backstop well past what the time
/// budget lets through on most links (it was 50 MiB, a second of loopback download).
pub const DEFAULT_BATCH_BYTES: u64 = 1024 * 1024 * 1024;

impl Default for MailboxSettings {
    fn default() -> Self {
        MailboxSettings {
            name: String::new(),
            host: String::new(),
            port: 995,
            tls: TlsMode::Implicit,
            username: String::new(),
            auth_method: AuthMethod::Auto,
            policy: Policy::Delete,
            start: StartMode::All,
            batch_messages: DEFAULT_BATCH_MESSAGES,
            batch_bytes: DEFAULT_BATCH_BYTES,
            max_size: 25_000_000,
            oversize: Oversize::Skip,
            ca_file: None,
            trusted_certificate: None,
            allow_insecure_auth: false,
            enabled: true,
            poll_interval_secs: 60,
            sending: None,
            oauth: None,
            new_address_reference: NewAddressReference::Join,
        }
    }
}

/// A stored mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub id: i64,
    pub settings: MailboxSettings,
    /// Why the mailbox needs the admin (a permanent error such as a refused login).
    pub needs_attention: Option<String>,
    /// Where its OAuth2 connection stands; `None` without OAuth2 settings.
    pub oauth_state: Option<OAuthState>,
    /// The first run has happened (so `--start now` seeds only once).
    pub started: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The columns `mailbox_from_row` reads (a macro so queries stay `&'static str`).
macro_rules! mailbox_columns {
    () => {
        "id, name, host, port, tls, username, auth_method, policy, delete_after_days, \
         start_mode, batch_messages, batch_bytes, max_size, oversize, ca_file, \
         trusted_certificate, allow_insecure_auth, enabled, poll_interval_secs, needs_attention, started, created_at, \
         updated_at, send_address, send_display_name, smtp_host, smtp_port, smtp_tls, smtp_auth, \
         smtp_username, smtp_allow_insecure_auth, acknowledge, oauth_provider, oauth_tenant, \
         oauth_issuer, oauth_authorize_url, oauth_token_url, oauth_device_url, oauth_client_id, \
         oauth_scopes, oauth_flow, oauth_state, new_address_reference"
    };
}

/// Reads a stored auth method. Earlier versions stored what the admin typed, so the case
/// may vary; an unknown name means a newer popdesk wrote it.
fn auth_method_from_stored(stored: &str) -> Result<AuthMethod, StoreError> {
    stored.parse().map_err(|_| StoreError::UnknownValue {
        what: "authentication method",
        value: stored.to_string(),
    })
}

fn mailbox_from_row(row: &AnyRow) -> Result<Mailbox, StoreError> {
    let port: i64 = column(row, "port")?;
    let port = u16::try_from(port).map_err(|_| StoreError::UnknownValue {
        what: "port",
        value: port.to_string(),
    })?;
    let batch_messages: i64 = column(row, "batch_messages")?;
    Ok(Mailbox {
        id: column(row, "id")?,
        settings: MailboxSettings {
            name: column(row, "name")?,
            host: column(row, "host")?,
            port,
            tls: TlsMode::from_stored(&column::<String>(row, "tls")?)?,
            username: column(row, "username")?,
            auth_method: auth_method_from_stored(&column::<String>(row, "auth_method")?)?,
            policy: Policy::from_stored(
                &column::<String>(row, "policy")?,
                column(row, "delete_after_days")?,
            )?,
            start: StartMode::from_stored(&column::<String>(row, "start_mode")?)?,
            batch_messages: u32::try_from(batch_messages).unwrap_or(u32::MAX),
            batch_bytes: from_db(column(row, "batch_bytes")?),
            max_size: from_db(column(row, "max_size")?),
            oversize: Oversize::from_stored(&column::<String>(row, "oversize")?)?,
            ca_file: column(row, "ca_file")?,
            trusted_certificate: column::<Option<String>>(row, "trusted_certificate")?
                .map(|text| {
                    text.parse().map_err(|_| StoreError::UnknownValue {
                        what: "trusted certificate fingerprint",
                        value: text,
                    })
                })
                .transpose()?,
            allow_insecure_auth: column::<i64>(row, "allow_insecure_auth")? != 0,
            enabled: column::<i64>(row, "enabled")? != 0,
            poll_interval_secs: u32::try_from(column::<i64>(row, "poll_interval_secs")?)
                .unwrap_or(u32::MAX),
            sending: sending_from_row(row)?,
            oauth: oauth_from_row(row)?,
            new_address_reference: NewAddressReference::from_stored(&column::<String>(
                row,
                "new_address_reference",
            )?)?,
        },
        needs_attention: column(row, "needs_attention")?,
        oauth_state: oauth_state_from_row(row)?,
        started: column::<i64>(row, "started")? != 0,
        created_at: column(row, "created_at")?,
        updated_at: column(row, "updated_at")?,
    })
}

impl Store {
    /// Adds a mailbox; its secret is sealed before it is stored. A taken name gives
    /// [`StoreError::MailboxExists`].
    ///
    /// The secret is sealed for the mailbox's row, whose id exists only once the row is
    /// inserted: the row goes in with an empty secret and gets the sealed one in the same
    /// transaction, so no reader ever sees it without.
    pub async fn add_mailbox(
        &self,
        settings: &MailboxSettings,
        secret: &SecretString,
        now: i64,
    ) -> Result<Mailbox, StoreError> {
        let action = "add the mailbox";
        let mut tx = self.pool().begin().await.map_err(StoreError::db(action))?;
        let send = sending_values(settings.sending.as_ref());
        let delete_after_days = match settings.policy {
            Policy::Keep { delete_after_days } => delete_after_days.map(i64::from),
            Policy::Delete => None,
        };
        let row = sqlx::query(
            "INSERT INTO mailboxes (name, host, port, tls, username, auth_method, policy, \
             delete_after_days, start_mode, batch_messages, batch_bytes, max_size, oversize, \
             ca_file, allow_insecure_auth, enabled, secret, needs_attention, started, \
             created_at, updated_at, poll_interval_secs, trusted_certificate, send_address, \
             send_display_name, smtp_host, smtp_port, smtp_tls, smtp_auth, smtp_username, \
             smtp_allow_insecure_auth, acknowledge, new_address_reference) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, NULL, 0, $18, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, \
             $30) \
             ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(&settings.name)
        .bind(&settings.host)
        .bind(i64::from(settings.port))
        .bind(settings.tls.as_str())
        .bind(&settings.username)
        .bind(settings.auth_method.as_setting())
        .bind(settings.policy.as_str())
        .bind(delete_after_days)
        .bind(settings.start.as_str())
        .bind(i64::from(settings.batch_messages))
        .bind(to_db("batch size in bytes", settings.batch_bytes)?)
        .bind(to_db("size limit", settings.max_size)?)
        .bind(settings.oversize.as_str())
        .bind(settings.ca_file.as_deref())
        .bind(i64::from(settings.allow_insecure_auth))
        .bind(i64::from(settings.enabled))
        .bind(Vec::<u8>::new())
        .bind(now)
        .bind(i64::from(settings.poll_interval_secs))
        .bind(settings.trusted_certificate.map(|f| f.to_string()))
        .bind(send.0)
        .bind(send.1)
        .bind(send.2)
        .bind(send.3)
        .bind(send.4)
        .bind(send.5)
        .bind(send.6)
        .bind(send.7)
        .bind(send.8)
        .bind(settings.new_address_reference.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::db(action))?;
        let Some(row) = row else {
            return Err(StoreError::MailboxExists(settings.name.clone()));
        };
        let id: i64 = column(&row, "id")?;
        let sealed = self
            .secret_box()
            .seal(MAILBOX_SECRET.slot(id), secret.expose_secret());
        sqlx::query("UPDATE mailboxes SET secret = $1 WHERE id = $2")
            .bind(sealed)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(Mailbox {
            id,
            settings: settings.clone(),
            needs_attention: None,
            oauth_state: None,
            started: false,
            created_at: now,
            updated_at: now,
        })
    }

    /// The mailbox with this name.
    pub async fn mailbox(&self, name: &str) -> Result<Option<Mailbox>, StoreError> {
        let sql = concat!(
            "SELECT ",
            mailbox_columns!(),
            " FROM mailboxes WHERE name = $1"
        );
        let row = sqlx::query(sql)
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("read a mailbox"))?;
        row.as_ref().map(mailbox_from_row).transpose()
    }

    /// The mailbox with this id.
    pub async fn mailbox_by_id(&self, id: i64) -> Result<Option<Mailbox>, StoreError> {
        let sql = concat!(
            "SELECT ",
            mailbox_columns!(),
            " FROM mailboxes WHERE id = $1"
        );
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("read a mailbox"))?;
        row.as_ref().map(mailbox_from_row).transpose()
    }

    /// All mailboxes, by name.
    pub async fn mailboxes(&self) -> Result<Vec<Mailbox>, StoreError> {
        let sql = concat!(
            "SELECT ",
            mailbox_columns!(),
            " FROM mailboxes ORDER BY name"
        );
        let rows = sqlx::query(sql)
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("list the mailboxes"))?;
        rows.iter().map(mailbox_from_row).collect()
    }

    /// Removes a mailbox with its secret, ledger, fetch runs and lease; false if there was
    /// none by that name.
    ///
    /// Its raw messages stay: they are customers' mail, possibly not yet turned into
    /// tickets, and removing a mailbox's settings must not destroy them. They keep the old
    /// mailbox id, which is never given to another mailbox. A mailbox added again under
    /// the same name is a new mailbox with an empty ledger (use `--start now` to not
    /// import what is on the server again).
    pub async fn remove_mailbox(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM mailboxes WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await
            .map_err(StoreError::db("remove the mailbox"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Replaces a mailbox's settings (and its secret, when one is given). A name taken by
    /// another mailbox gives [`StoreError::MailboxExists`]. The ledger, the first-run mark
    /// and the fetch history stay: they describe the server's mail, not the settings.
    /// A recorded problem is cleared: the admin has changed something, so the scheduler
    /// tries again.
    pub async fn update_mailbox(
        &self,
        id: i64,
        settings: &MailboxSettings,
        secret: Option<&SecretString>,
        now: i64,
    ) -> Result<Mailbox, StoreError> {
        let delete_after_days = match settings.policy {
            Policy::Keep { delete_after_days } => delete_after_days.map(i64::from),
            Policy::Delete => None,
        };
        let send = sending_values(settings.sending.as_ref());
        if let Some(other) = self.mailbox(&settings.name).await?
            && other.id != id
        {
            return Err(StoreError::MailboxExists(settings.name.clone()));
        }
        let done = sqlx::query(
            "UPDATE mailboxes SET name = $1, host = $2, port = $3, tls = $4, username = $5, \
             auth_method = $6, policy = $7, delete_after_days = $8, start_mode = $9, \
             batch_messages = $10, batch_bytes = $11, max_size = $12, oversize = $13, \
             ca_file = $14, allow_insecure_auth = $15, enabled = $16, \
             poll_interval_secs = $17, updated_at = $18, needs_attention = NULL, \
             trusted_certificate = $20, send_address = $21, send_display_name = $22, \
             smtp_host = $23, smtp_port = $24, smtp_tls = $25, smtp_auth = $26, \
             smtp_username = $27, smtp_allow_insecure_auth = $28, acknowledge = $29, \
             new_address_reference = $30 \
             WHERE id = $19",
        )
        .bind(&settings.name)
        .bind(&settings.host)
        .bind(i64::from(settings.port))
        .bind(settings.tls.as_str())
        .bind(&settings.username)
        .bind(settings.auth_method.as_setting())
        .bind(settings.policy.as_str())
        .bind(delete_after_days)
        .bind(settings.start.as_str())
        .bind(i64::from(settings.batch_messages))
        .bind(to_db("batch size in bytes", settings.batch_bytes)?)
        .bind(to_db("size limit", settings.max_size)?)
        .bind(settings.oversize.as_str())
        .bind(settings.ca_file.as_deref())
        .bind(i64::from(settings.allow_insecure_auth))
        .bind(i64::from(settings.enabled))
        .bind(i64::from(settings.poll_interval_secs))
        .bind(now)
        .bind(id)
        .bind(settings.trusted_certificate.map(|f| f.to_string()))
        .bind(send.0)
        .bind(send.1)
        .bind(send.2)
        .bind(send.3)
        .bind(send.4)
        .bind(send.5)
        .bind(send.6)
        .bind(send.7)
        .bind(send.8)
        .bind(settings.new_address_reference.as_str())
        .execute(self.pool())
        .await
        .map_err(StoreError::db("update the mailbox"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::MailboxNotFound(id));
        }
        if let Some(secret) = secret {
            self.set_mailbox_secret(id, secret, now).await?;
        }
        self.mailbox_by_id(id)
            .await?
            .ok_or(StoreError::MailboxNotFound(id))
    }

    /// Removes the mailbox with this id; false if there was none. See [`Store::remove_mailbox`].
    pub async fn remove_mailbox_by_id(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM mailboxes WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(StoreError::db("remove the mailbox"))?;
        Ok(done.rows_affected() > 0)
    }

    /// The mailbox's password or token, decrypted.
    pub async fn mailbox_secret(&self, id: i64) -> Result<SecretString, StoreError> {
        let row = sqlx::query("SELECT secret FROM mailboxes WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("read the mailbox secret"))?
            .ok_or(StoreError::MailboxNotFound(id))?;
        let sealed: Vec<u8> = column(&row, "secret")?;
        self.secret_box().open(MAILBOX_SECRET.slot(id), &sealed)
    }

    /// Replaces the mailbox's password or token (e.g. a refreshed OAuth token).
    pub async fn set_mailbox_secret(
        &self,
        id: i64,
        secret: &SecretString,
        now: i64,
    ) -> Result<(), StoreError> {
        let sealed = self
            .secret_box()
            .seal(MAILBOX_SECRET.slot(id), secret.expose_secret());
        let done = sqlx::query("UPDATE mailboxes SET secret = $1, updated_at = $2 WHERE id = $3")
            .bind(sealed)
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(StoreError::db("update the mailbox secret"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::MailboxNotFound(id));
        }
        Ok(())
    }

    /// Records why the mailbox needs the admin (shown in lists), or clears it with None.
    pub async fn set_attention(
        &self,
        id: i64,
        reason: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let done =
            sqlx::query("UPDATE mailboxes SET needs_attention = $1, updated_at = $2 WHERE id = $3")
                .bind(reason)
                .bind(now)
                .bind(id)
                .execute(self.pool())
                .await
                .map_err(StoreError::db("record the mailbox's problem"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::MailboxNotFound(id));
        }
        Ok(())
    }

    /// Enables or disables the mailbox's scheduled fetching.
    pub async fn set_enabled(&self, id: i64, enabled: bool, now: i64) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE mailboxes SET enabled = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::from(enabled))
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(StoreError::db("enable or disable the mailbox"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::MailboxNotFound(id));
        }
        Ok(())
    }

    /// Records that the mailbox's first run is done.
    pub async fn mark_started(&self, id: i64, now: i64) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE mailboxes SET started = 1, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(StoreError::db("record the mailbox's first run"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::MailboxNotFound(id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip() {
        for tls in [TlsMode::Implicit, TlsMode::StartTls, TlsMode::None] {
            assert_eq!(tls.to_string().parse::<TlsMode>().ok(), Some(tls));
        }
        assert_eq!("starttls".parse::<TlsMode>().ok(), Some(TlsMode::StartTls));
        assert_eq!("now".parse::<StartMode>().ok(), Some(StartMode::Now));
        assert_eq!(
            "download".parse::<Oversize>().ok(),
            Some(Oversize::Download)
        );
        let e = "ssl".parse::<TlsMode>().err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("\"ssl\" is not a valid TLS mode; use one of: implicit, starttls, none")
        );
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let d = MailboxSettings::default();
        assert_eq!(d.port, 995);
        assert_eq!(d.auth_method, AuthMethod::Auto);
        // No count to speak of: the fetcher's time budget ends a session (README).
        assert_eq!(d.batch_messages, 100_000);
        assert_eq!(d.batch_bytes, 1_073_741_824);
        assert_eq!(d.max_size, 25_000_000);
        assert!(d.enabled && !d.allow_insecure_auth);
    }
}
