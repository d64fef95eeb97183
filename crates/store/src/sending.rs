//! A mailbox's sending settings: where replies to its customers leave from (DESIGN.md
//! "Answering the customer"). The address customers write to is the address answers come
//! from, so the settings live with the mailbox; the SMTP secret, when the POP3 one is not
//! reused, is sealed like it and only [`Store::smtp_secret`] opens it.

use secrecy::{ExposeSecret, SecretString};

use crate::mailbox::TlsMode;
use crate::secret::SMTP_SECRET;
use crate::text::{column, text_enum};
use crate::{Store, StoreError};

/// How popdesk signs in to the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SmtpAuth {
    /// PLAIN or LOGIN, whichever the server offers (PLAIN first).
    #[default]
    Auto,
    Plain,
    Login,
    /// An OAuth2 access token (Microsoft 365, Gmail).
    Xoauth2,
    /// No sign-in: a relay that trusts this machine.
    None,
}
text_enum!(SmtpAuth, "SMTP authentication", {
    Auto => "auto",
    Plain => "plain",
    Login => "login",
    Xoauth2 => "xoauth2",
    None => "none",
});

/// Everything an admin sets for sending from a mailbox, except the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendingSettings {
    /// The address replies come from (and customers write to).
    pub address: String,
    /// The name shown beside it, e.g. "Example Support".
    pub display_name: Option<String>,
    pub smtp_host: String,
    pub smtp_port: u16,
    /// Implicit TLS (465), STARTTLS (587), or none (only with `smtp_allow_insecure_auth`).
    pub smtp_tls: TlsMode,
    pub smtp_auth: SmtpAuth,
    /// `None`: the mailbox's POP3 username (and secret) are reused.
    pub smtp_username: Option<String>,
    /// Allow signing in over an unencrypted connection.
    pub smtp_allow_insecure_auth: bool,
    /// Send "we got your message" on new tickets (promise 10 rules apply).
    pub acknowledge: bool,
}

impl SendingSettings {
    /// The usual port for a TLS mode: 465 for implicit TLS, 587 for STARTTLS, 25 without.
    pub fn default_port(tls: TlsMode) -> u16 {
        match tls {
            TlsMode::Implicit => 465,
            TlsMode::StartTls => 587,
            TlsMode::None => 25,
        }
    }
}

/// The values of a mailbox's sending columns, in the order `mailbox.rs` writes them:
/// send_address, send_display_name, smtp_host, smtp_port, smtp_tls, smtp_auth,
/// smtp_username, smtp_allow_insecure_auth, acknowledge.
pub(crate) type SendingValues = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<&'static str>,
    Option<&'static str>,
    Option<String>,
    i64,
    i64,
);

pub(crate) fn sending_values(sending: Option<&SendingSettings>) -> SendingValues {
    let s = sending;
    (
        s.map(|s| s.address.clone()),
        s.and_then(|s| s.display_name.clone()),
        s.map(|s| s.smtp_host.clone()),
        s.map(|s| i64::from(s.smtp_port)),
        s.map(|s| s.smtp_tls.as_str()),
        s.map(|s| s.smtp_auth.as_str()),
        s.and_then(|s| s.smtp_username.clone()),
        i64::from(s.is_some_and(|s| s.smtp_allow_insecure_auth)),
        i64::from(s.is_some_and(|s| s.acknowledge)),
    )
}

/// Reads the sending settings from a mailbox row; `None` when sending is not set up.
pub(crate) fn sending_from_row(
    row: &sqlx::any::AnyRow,
) -> Result<Option<SendingSettings>, StoreError> {
    let Some(address) = column::<Option<String>>(row, "send_address")? else {
        return Ok(None);
    };
    let port: i64 = column::<Option<i64>>(row, "smtp_port")?.unwrap_or(587);
    let smtp_port = u16::try_from(port).map_err(|_| StoreError::UnknownValue {
        what: "SMTP port",
        value: port.to_string(),
    })?;
    let tls = column::<Option<String>>(row, "smtp_tls")?;
    let auth = column::<Option<String>>(row, "smtp_auth")?;
    Ok(Some(SendingSettings {
        address,
        display_name: column(row, "send_display_name")?,
        smtp_host: column::<Option<String>>(row, "smtp_host")?.unwrap_or_default(),
        smtp_port,
        smtp_tls: tls
            .as_deref()
            .map(TlsMode::from_stored)
            .transpose()?
            .unwrap_or(TlsMode::StartTls),
        smtp_auth: auth
            .as_deref()
            .map(SmtpAuth::from_stored)
            .transpose()?
            .unwrap_or_default(),
        smtp_username: column(row, "smtp_username")?,
        smtp_allow_insecure_auth: column::<i64>(row, "smtp_allow_insecure_auth")? != 0,
        acknowledge: column::<i64>(row, "acknowledge")? != 0,
    }))
}

/// What to do with the stored SMTP secret when sending settings are saved.
#[derive(Debug, Clone, Copy)]
pub enum SmtpSecretChange<'a> {
    /// Leave it as it is.
    Keep,
    /// Store this one (sealed).
    Set(&'a SecretString),
    /// Forget it: the POP3 secret is reused.
    Clear,
}

impl Store {
    /// Stores, keeps or forgets the mailbox's own SMTP secret (sealed).
    pub async fn set_smtp_secret(
        &self,
        mailbox_id: i64,
        secret: SmtpSecretChange<'_>,
    ) -> Result<(), StoreError> {
        let sealed = match secret {
            SmtpSecretChange::Keep => return Ok(()),
            SmtpSecretChange::Set(secret) => Some(
                self.secret_box()
                    .seal(SMTP_SECRET.slot(mailbox_id), secret.expose_secret()),
            ),
            SmtpSecretChange::Clear => None,
        };
        let done = sqlx::query("UPDATE mailboxes SET smtp_secret = $1 WHERE id = $2")
            .bind(sealed)
            .bind(mailbox_id)
            .execute(self.pool())
            .await
            .map_err(StoreError::db("save the SMTP secret"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::MailboxNotFound(mailbox_id));
        }
        Ok(())
    }

    /// The secret SMTP signs in with: the mailbox's own SMTP secret when it has one,
    /// else its POP3 secret.
    pub async fn smtp_secret(&self, mailbox_id: i64) -> Result<SecretString, StoreError> {
        if let Some(own) = self.own_smtp_secret(mailbox_id).await? {
            return Ok(own);
        }
        self.mailbox_secret(mailbox_id).await
    }

    /// Whether the mailbox keeps an SMTP secret of its own.
    pub async fn has_own_smtp_secret(&self, mailbox_id: i64) -> Result<bool, StoreError> {
        Ok(self.own_smtp_secret(mailbox_id).await?.is_some())
    }

    async fn own_smtp_secret(&self, mailbox_id: i64) -> Result<Option<SecretString>, StoreError> {
        let row = sqlx::query("SELECT smtp_secret FROM mailboxes WHERE id = $1")
            .bind(mailbox_id)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("read the SMTP secret"))?
            .ok_or(StoreError::MailboxNotFound(mailbox_id))?;
        column::<Option<Vec<u8>>>(&row, "smtp_secret")?
            .map(|sealed| {
                self.secret_box()
                    .open(SMTP_SECRET.slot(mailbox_id), &sealed)
            })
            .transpose()
    }
}
