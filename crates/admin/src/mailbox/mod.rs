//! Mailbox administration: create, change, remove, test the connection, fetch now.
//!
//! Every adapter describes what the admin asked for as a [`MailboxChange`]; the service
//! fills in defaults, parses the text settings into their types once, checks the rules
//! ([`rules`]), applies the secret rule ([`SecretRule`]), stores the result and tells the
//! scheduler.

pub mod connection;
pub mod oauth;
pub mod rules;
mod secret_rule;

use secrecy::{ExposeSecret as _, SecretString};
use store::{
    AuthMethod, CertFingerprint, ClientSecretChange, Mailbox, MailboxSettings, Oversize, Policy,
    SendingSettings, SmtpAuth, SmtpSecretChange, StartMode, TlsMode,
};

use self::connection::ConnectionReport;
pub use self::secret_rule::SecretRule;
use crate::Administration;
use crate::error::{AdminError, Field};

/// What an admin asks to set. `None` leaves a setting as it is (or, for a new mailbox,
/// takes the default); `Some(None)` clears a setting that can be empty. Choices are text
/// (`"starttls"`, `"cram-md5"`), numbers are as typed, so every adapter hands over the
/// same thing and gets the same refusal.
#[derive(Debug, Default, Clone)]
pub struct MailboxChange {
    pub name: Option<String>,
    pub host: Option<String>,
    pub port: Option<u64>,
    pub tls: Option<String>,
    pub username: Option<String>,
    /// The password or OAuth2 access token.
    pub secret: Option<SecretString>,
    pub auth_method: Option<String>,
    pub policy: Option<String>,
    pub delete_after_days: Option<Option<u64>>,
    pub start: Option<String>,
    pub batch_messages: Option<u64>,
    pub batch_bytes: Option<u64>,
    pub max_size: Option<u64>,
    pub oversize: Option<String>,
    pub ca_file: Option<Option<String>>,
    /// A SHA-256 fingerprint (hex, colons allowed).
    pub trusted_certificate: Option<Option<String>>,
    pub allow_insecure_auth: Option<bool>,
    pub enabled: Option<bool>,
    pub poll_interval_secs: Option<u64>,
    /// Sending (replies): the address replies come from. Blank (or `Some(None)`) turns
    /// sending off; the other sending settings then do not apply.
    pub send_address: Option<Option<String>>,
    pub send_display_name: Option<Option<String>>,
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u64>,
    pub smtp_tls: Option<String>,
    pub smtp_auth: Option<String>,
    /// Blank: the POP3 username and secret are reused.
    pub smtp_username: Option<Option<String>>,
    /// The SMTP password or token, when SMTP has a username of its own.
    pub smtp_secret: Option<SecretString>,
    pub smtp_allow_insecure_auth: Option<bool>,
    /// Acknowledge new tickets by mail.
    pub acknowledge: Option<bool>,
    /// OAuth2: `microsoft`, `google` or `generic`; blank (`Some(None)`) turns OAuth2 off,
    /// and the mailbox signs in with `secret` as a password (or a pasted token) again.
    pub oauth_provider: Option<Option<String>>,
    /// Microsoft: the tenant id or domain (`organizations` when blank).
    pub oauth_tenant: Option<Option<String>>,
    /// Generic: the issuer whose discovery document names the endpoints.
    pub oauth_issuer: Option<Option<String>>,
    pub oauth_authorize_url: Option<Option<String>>,
    pub oauth_token_url: Option<Option<String>>,
    pub oauth_device_url: Option<Option<String>>,
    pub oauth_client_id: Option<String>,
    /// Blank: a public client (PKCE or device flow without a secret).
    pub oauth_client_secret: Option<SecretString>,
    /// Empty: the provider preset's scopes.
    pub oauth_scopes: Option<Vec<String>>,
    /// `authorization-code`, `device-code` or `client-credentials`.
    pub oauth_flow: Option<String>,
}

fn choice<T: std::str::FromStr>(field: Field, text: &str, expected: &str) -> Result<T, AdminError> {
    text.trim()
        .to_ascii_lowercase()
        .parse()
        .map_err(|_| AdminError::invalid(field, format!("must be one of: {expected}")))
}

fn tls_mode(text: &str) -> Result<TlsMode, AdminError> {
    choice(Field::Tls, text, "implicit, starttls, none")
}

fn auth_method(text: &str) -> Result<AuthMethod, AdminError> {
    let names: Vec<&str> = AuthMethod::ALL.iter().map(|m| m.as_setting()).collect();
    choice(Field::AuthMethod, text, &names.join(", "))
}

/// A fingerprint as typed; blank clears it.
fn fingerprint(text: Option<String>) -> Result<Option<CertFingerprint>, AdminError> {
    match text.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|e: pop3::FingerprintError| {
            AdminError::invalid(
                Field::TrustedCertificate,
                format!("must be a SHA-256 fingerprint: {e}"),
            )
        }),
    }
}

/// What happens to the stored SMTP secret, under the secret rule: a secret is only ever
/// sent where it was first meant to go, so pointing SMTP somewhere new needs the secret
/// SMTP signs in with typed again (its own, or the POP3 one it reuses).
fn smtp_secret_change<'a>(
    old: Option<&MailboxSettings>,
    new: &MailboxSettings,
    change: &'a MailboxChange,
    has_own: bool,
) -> Result<SmtpSecretChange<'a>, AdminError> {
    let Some(sending) = &new.sending else {
        return Ok(match change.smtp_secret.as_ref() {
            _ if has_own => SmtpSecretChange::Clear,
            _ => SmtpSecretChange::Keep,
        });
    };
    let creating = old.is_none();
    let moved = match old {
        None => None,
        Some(old) => SecretRule::smtp_needs_secret(old, new),
    };
    match &sending.smtp_username {
        Some(_) => {
            if let Some(secret) = &change.smtp_secret {
                return Ok(SmtpSecretChange::Set(secret));
            }
            if creating || !has_own {
                return Err(AdminError::invalid(
                    Field::SmtpSecret,
                    "is required when sending signs in with its own username",
                ));
            }
            match moved {
                Some(field) => Err(AdminError::SecretRequired { field }),
                None => Ok(SmtpSecretChange::Keep),
            }
        }
        None => {
            // The POP3 secret goes to the SMTP server: it must be given when SMTP moves
            // (a new mailbox always gives it).
            // An OAuth2 mailbox sends a token, not a stored password: moving SMTP
            // drops the tokens instead (see `oauth::needs_reconnect`).
            if let Some(field) = moved
                && change.secret.is_none()
                && new.oauth.is_none()
            {
                return Err(AdminError::SecretRequired { field });
            }
            Ok(if has_own {
                SmtpSecretChange::Clear
            } else {
                SmtpSecretChange::Keep
            })
        }
    }
}

/// A text setting that may be empty; blank means none.
fn optional_text(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

impl MailboxChange {
    /// The settings after this change: `base` is the stored mailbox, or None for a new
    /// one (which starts from the defaults and must name a host, a user and a secret).
    pub fn apply(&self, base: Option<&MailboxSettings>) -> Result<MailboxSettings, AdminError> {
        let creating = base.is_none();
        let mut s = base.cloned().unwrap_or_default();
        if let Some(name) = &self.name {
            s.name = name.trim().to_string();
        }
        if let Some(host) = &self.host {
            s.host = host.trim().to_string();
        }
        if let Some(tls) = &self.tls {
            s.tls = tls_mode(tls)?;
        }
        match self.port {
            Some(port) => s.port = rules::port(port)?,
            // A new mailbox takes the usual port of its TLS mode.
            None if creating => {
                s.port = match s.tls {
                    TlsMode::Implicit => 995,
                    TlsMode::StartTls | TlsMode::None => 110,
                }
            }
            None => {}
        }
        if let Some(username) = &self.username {
            s.username = username.trim().to_string();
        }
        if let Some(method) = &self.auth_method {
            s.auth_method = auth_method(method)?;
        }
        let keep = match self
            .policy
            .as_deref()
            .map(|p| p.trim().to_ascii_lowercase())
        {
            None => matches!(s.policy, Policy::Keep { .. }),
            Some(p) if p == "keep" => true,
            Some(p) if p == "delete" => false,
            Some(_) => {
                return Err(AdminError::invalid(
                    Field::Policy,
                    "must be one of: delete, keep",
                ));
            }
        };
        let days = match self.delete_after_days {
            Some(Some(days)) => Some(rules::number::<u32>(
                Field::DeleteAfterDays,
                days,
                &rules::DELETE_AFTER_DAYS,
            )?),
            Some(None) => None,
            None => match s.policy {
                Policy::Keep { delete_after_days } => delete_after_days,
                Policy::Delete => None,
            },
        };
        s.policy = if keep {
            Policy::Keep {
                delete_after_days: days,
            }
        } else if matches!(self.delete_after_days, Some(Some(_))) {
            // With the delete policy every message goes as soon as it is stored: a number
            // of days would be silently meaningless.
            return Err(AdminError::invalid(
                Field::DeleteAfterDays,
                "applies only when mail is kept on the server (the keep policy)",
            ));
        } else {
            Policy::Delete
        };
        if let Some(start) = &self.start {
            s.start = choice::<StartMode>(Field::Start, start, "all, now")?;
        }
        if let Some(n) = self.batch_messages {
            s.batch_messages = rules::number(Field::BatchMessages, n, &rules::BATCH_MESSAGES)?;
        }
        if let Some(n) = self.batch_bytes {
            s.batch_bytes = n;
        }
        if let Some(n) = self.max_size {
            s.max_size = n;
        }
        if let Some(oversize) = &self.oversize {
            s.oversize = choice::<Oversize>(Field::Oversize, oversize, "skip, download")?;
        }
        if let Some(ca_file) = &self.ca_file {
            s.ca_file = optional_text(ca_file.clone());
        }
        if let Some(pin) = &self.trusted_certificate {
            s.trusted_certificate = fingerprint(pin.clone())?;
        }
        if let Some(allow) = self.allow_insecure_auth {
            s.allow_insecure_auth = allow;
        }
        if let Some(enabled) = self.enabled {
            s.enabled = enabled;
        }
        if let Some(secs) = self.poll_interval_secs {
            s.poll_interval_secs = rules::number(Field::PollInterval, secs, &rules::POLL_INTERVAL)?;
        }
        s.sending = self.apply_sending(&s)?;
        let turning_on_oauth = s.oauth.is_none()
            && self
                .oauth_provider
                .as_ref()
                .is_some_and(|p| optional_text(p.clone()).is_some());
        if turning_on_oauth && self.auth_method.is_none() && !s.auth_method.uses_token() {
            // OAuth2 signs in with a token: XOAUTH2 unless the admin chose OAUTHBEARER.
            s.auth_method = AuthMethod::XOAuth2;
        }
        let had_oauth = s.oauth.is_some();
        s.oauth = self.apply_oauth(&s)?;
        rules::check(&s)?;
        if let Some(o) = &s.oauth {
            oauth::check(&s, o)?;
        }
        if let Some(secret) = &self.smtp_secret {
            rules::smtp_secret(secret.expose_secret())?;
        }
        if let Some(secret) = &self.oauth_client_secret {
            oauth::client_secret(secret)?;
        }
        if let Some(secret) = &self.secret {
            rules::secret(secret.expose_secret())?;
        } else if s.oauth.is_none() && (creating || had_oauth) {
            // A password mailbox needs its password; one leaving OAuth2 has none stored.
            return Err(AdminError::invalid(Field::Secret, "is required"));
        }
        Ok(s)
    }
}

impl MailboxChange {
    /// The sending settings after this change, given the rest of the mailbox's settings
    /// (already changed).
    fn apply_sending(&self, s: &MailboxSettings) -> Result<Option<SendingSettings>, AdminError> {
        let address = match &self.send_address {
            Some(address) => optional_text(address.clone()),
            None => s.sending.as_ref().map(|sending| sending.address.clone()),
        };
        let Some(address) = address else {
            if self
                .smtp_host
                .as_deref()
                .is_some_and(|h| !h.trim().is_empty())
            {
                return Err(AdminError::invalid(
                    Field::SendAddress,
                    "is needed to send: the address replies come from (usually the mailbox's own address)",
                ));
            }
            return Ok(None);
        };
        let setting_up = s.sending.is_none();
        let mut sending = s.sending.clone().unwrap_or_else(|| SendingSettings {
            address: String::new(),
            display_name: None,
            smtp_host: String::new(),
            smtp_port: 587,
            smtp_tls: TlsMode::StartTls,
            smtp_auth: if s.auth_method.uses_token() {
                SmtpAuth::Xoauth2
            } else {
                SmtpAuth::Auto
            },
            smtp_username: None,
            smtp_allow_insecure_auth: false,
            acknowledge: false,
        });
        sending.address = address;
        if let Some(name) = &self.send_display_name {
            sending.display_name = optional_text(name.clone());
        }
        if let Some(host) = &self.smtp_host {
            sending.smtp_host = host.trim().to_string();
        }
        if let Some(tls) = &self.smtp_tls {
            sending.smtp_tls = choice(Field::SmtpTls, tls, "implicit, starttls, none")?;
        }
        match self.smtp_port {
            Some(port) => sending.smtp_port = rules::number(Field::SmtpPort, port, &(1..=65_535))?,
            // New sending settings take the usual port of their TLS mode.
            None if setting_up => {
                sending.smtp_port = SendingSettings::default_port(sending.smtp_tls)
            }
            None => {}
        }
        if let Some(auth) = &self.smtp_auth {
            sending.smtp_auth = choice(Field::SmtpAuth, auth, "auto, plain, login, xoauth2, none")?;
        }
        if let Some(username) = &self.smtp_username {
            sending.smtp_username = optional_text(username.clone());
        }
        if let Some(allow) = self.smtp_allow_insecure_auth {
            sending.smtp_allow_insecure_auth = allow;
        }
        if let Some(acknowledge) = self.acknowledge {
            sending.acknowledge = acknowledge;
        }
        rules::sending(&sending)?;
        Ok(Some(sending))
    }
}

impl Administration {
    /// The mailbox with this id.
    pub async fn mailbox(&self, id: i64) -> Result<Mailbox, AdminError> {
        self.store
            .mailbox_by_id(id)
            .await?
            .ok_or_else(|| AdminError::MailboxNotFound(format!("#{id}")))
    }

    /// The mailbox with this name.
    pub async fn mailbox_named(&self, name: &str) -> Result<Mailbox, AdminError> {
        self.store
            .mailbox(name)
            .await?
            .ok_or_else(|| AdminError::MailboxNotFound(format!("named {name:?}")))
    }

    /// The settings and secret a new mailbox would have, checked, without storing it.
    pub fn new_mailbox_settings(
        &self,
        change: &MailboxChange,
    ) -> Result<(MailboxSettings, SecretString), AdminError> {
        let settings = change.apply(None)?;
        let secret = match (&change.secret, &settings.oauth) {
            (Some(secret), _) => secret.clone(),
            // Tokens come from the connection; nothing to seal as the password.
            (None, Some(_)) => SecretString::from(""),
            (None, None) => return Err(AdminError::invalid(Field::Secret, "is required")),
        };
        Ok((settings, secret))
    }

    /// Adds a mailbox; the scheduler picks it up at once.
    pub async fn create_mailbox(&self, change: &MailboxChange) -> Result<Mailbox, AdminError> {
        let (mut settings, secret) = self.new_mailbox_settings(change)?;
        self.resolve_oauth(&mut settings).await?;
        let smtp_secret = smtp_secret_change(None, &settings, change, false)?;
        let mailbox = self
            .store
            .add_mailbox(&settings, &secret, self.now())
            .await?;
        self.store.set_smtp_secret(mailbox.id, smtp_secret).await?;
        if settings.oauth.is_some() {
            let client_secret = match change.oauth_client_secret.as_ref() {
                Some(secret) => match oauth::client_secret(secret)? {
                    Some(secret) => ClientSecretChange::Set(secret),
                    None => ClientSecretChange::Clear,
                },
                None => ClientSecretChange::Clear,
            };
            self.store
                .set_oauth_settings(
                    mailbox.id,
                    settings.oauth.as_ref(),
                    client_secret,
                    true,
                    self.now(),
                )
                .await?;
        }
        tracing::info!(mailbox = %mailbox.settings.name, id = mailbox.id, "mailbox added");
        self.reload();
        self.mailbox(mailbox.id).await
    }

    /// Finds a generic provider's endpoints from its issuer and checks that the flow has
    /// the endpoint it needs. Done once, when settings are saved.
    async fn resolve_oauth(&self, settings: &mut MailboxSettings) -> Result<(), AdminError> {
        if let Some(o) = settings.oauth.as_mut() {
            oauth::discover(self.oauth.http(), o).await?;
            oauth::check_flow(o)?;
        }
        Ok(())
    }

    /// Changes a mailbox. Any change clears its "needs attention" mark, so the scheduler
    /// tries it again: the admin has looked at it.
    pub async fn update_mailbox(
        &self,
        id: i64,
        change: &MailboxChange,
    ) -> Result<Mailbox, AdminError> {
        let current = self.mailbox(id).await?;
        let mut settings = change.apply(Some(&current.settings))?;
        self.resolve_oauth(&mut settings).await?;
        let client_secret = self
            .client_secret_change(&current, &settings, change)
            .await?;
        if settings.oauth.is_none() || current.settings.oauth.is_none() {
            // OAuth2 tokens are not a stored secret to protect: a change of where they
            // go drops them instead (the mailbox is connected again).
            SecretRule::check(&current.settings, &settings, change.secret.is_some())?;
        }
        let has_own = self.store.has_own_smtp_secret(id).await?;
        let smtp_secret = smtp_secret_change(Some(&current.settings), &settings, change, has_own)?;
        let mailbox = self
            .store
            .update_mailbox(id, &settings, change.secret.as_ref(), self.now())
            .await?;
        self.store.set_smtp_secret(id, smtp_secret).await?;
        if settings.oauth.is_some() || current.settings.oauth.is_some() {
            let reconnect = oauth::needs_reconnect(&current.settings, &settings);
            self.store
                .set_oauth_settings(
                    id,
                    settings.oauth.as_ref(),
                    client_secret,
                    reconnect,
                    self.now(),
                )
                .await?;
            if reconnect && settings.oauth.is_some() {
                tracing::info!(mailbox = %mailbox.settings.name, id, "OAuth2 settings changed where tokens come from or go; the mailbox must be connected again");
            }
        }
        tracing::info!(mailbox = %mailbox.settings.name, id, "mailbox changed");
        self.reload();
        self.mailbox(id).await
    }

    /// What happens to the stored OAuth2 client secret: a new one when typed; typed again
    /// when the token endpoint or client changes and one is stored; dropped with OAuth2.
    async fn client_secret_change<'a>(
        &self,
        current: &Mailbox,
        settings: &MailboxSettings,
        change: &'a MailboxChange,
    ) -> Result<ClientSecretChange<'a>, AdminError> {
        if settings.oauth.is_none() {
            return Ok(ClientSecretChange::Clear);
        }
        if let Some(secret) = &change.oauth_client_secret {
            return Ok(match oauth::client_secret(secret)? {
                Some(secret) => ClientSecretChange::Set(secret),
                None => ClientSecretChange::Clear,
            });
        }
        if let Some(field) = oauth::client_secret_needed(&current.settings, settings)
            && self.store.oauth_client_secret(current.id).await?.is_some()
        {
            return Err(AdminError::SecretRequired { field });
        }
        Ok(ClientSecretChange::Keep)
    }

    /// Turns scheduled fetching on or off.
    pub async fn set_mailbox_enabled(&self, id: i64, enabled: bool) -> Result<Mailbox, AdminError> {
        self.update_mailbox(
            id,
            &MailboxChange {
                enabled: Some(enabled),
                ..MailboxChange::default()
            },
        )
        .await
    }

    /// Pins the certificate the server presented, so a self-signed server is trusted.
    /// Like any change of what is trusted, it needs the secret again.
    pub async fn trust_certificate(
        &self,
        id: i64,
        fingerprint: &str,
        secret: Option<SecretString>,
    ) -> Result<Mailbox, AdminError> {
        self.update_mailbox(
            id,
            &MailboxChange {
                trusted_certificate: Some(Some(fingerprint.to_string())),
                secret,
                ..MailboxChange::default()
            },
        )
        .await
    }

    /// Removes a mailbox with its settings, secret, ledger and fetch history. Its stored
    /// messages and tickets stay.
    pub async fn remove_mailbox(&self, id: i64) -> Result<Mailbox, AdminError> {
        let mailbox = self.mailbox(id).await?;
        if !self.store.remove_mailbox_by_id(id).await? {
            return Err(AdminError::MailboxNotFound(format!("#{id}")));
        }
        tracing::info!(mailbox = %mailbox.settings.name, id, "mailbox removed");
        self.reload();
        Ok(mailbox)
    }

    /// Tests a stored mailbox with its stored secret: it goes only where it was meant to.
    pub async fn test_mailbox(&self, id: i64) -> Result<ConnectionReport, AdminError> {
        let mailbox = self.mailbox(id).await?;
        let secret = match mailbox.settings.oauth {
            Some(_) => match self.oauth.access_token(&mailbox, None).await {
                Ok(token) => token,
                Err(error) => return Ok(ConnectionReport::token_unavailable(&error)),
            },
            None => self.store.mailbox_secret(id).await?,
        };
        Ok(connection::test(&mailbox.settings, &secret, &self.session).await)
    }

    /// "Test sending": connects to the stored mailbox's SMTP server, starts TLS, signs in
    /// with the stored secret and says `QUIT`. No mail is sent. The outer error is the
    /// caller's (no such mailbox, sending not set up); the inner one is what SMTP said.
    pub async fn test_sending(
        &self,
        id: i64,
    ) -> Result<Result<outgoing::SendingTest, outgoing::Failure>, AdminError> {
        let mailbox = self.mailbox(id).await?;
        let target =
            match outgoing::SmtpTarget::for_mailbox(&self.store, &self.oauth, &mailbox).await {
                Ok(target) => target,
                Err(error) => return Ok(Err(error.into_failure()?)),
            };
        let target = target.ok_or_else(|| {
            AdminError::invalid(
                Field::SendAddress,
                "is not set: sending is off for this mailbox, so there is nothing to test",
            )
        })?;
        Ok(outgoing::test_sending(&target, outgoing::SmtpTimeouts::default()).await)
    }

    /// Tests the settings of a mailbox not yet stored, with the secret typed for it.
    pub async fn test_new_mailbox(
        &self,
        change: &MailboxChange,
    ) -> Result<ConnectionReport, AdminError> {
        let (settings, secret) = self.new_mailbox_settings(change)?;
        Ok(connection::test(&settings, &secret, &self.session).await)
    }

    /// The messages of this mailbox that could not be downloaded, set aside or still being
    /// retried, with every attempt.
    pub async fn failing_messages(
        &self,
        id: i64,
    ) -> Result<Vec<store::FailingMessage>, AdminError> {
        self.mailbox(id).await?;
        Ok(self.store.failing_messages(id).await?)
    }

    /// "Try again": the next run retrieves this set-aside message once more, on its own
    /// (the admin fixed the server); the scheduler is asked to run it now.
    pub async fn try_set_aside_again(&self, id: i64, uid: &str) -> Result<(), AdminError> {
        self.mailbox(id).await?;
        if !self.store.try_set_aside_again(id, uid).await? {
            return Err(AdminError::SetAsideNotFound {
                mailbox_id: id,
                uid: uid.to_string(),
            });
        }
        tracing::info!(mailbox_id = id, uid, "set-aside message to be tried again");
        if let Some(scheduler) = &self.scheduler {
            // Without a running scheduler the next `mailbox fetch` tries it.
            let _ = scheduler.fetch_now(id);
        }
        Ok(())
    }

    /// Fetches the mailbox out of turn through the scheduler.
    pub async fn fetch_now(&self, id: i64) -> Result<(), AdminError> {
        self.mailbox(id).await?;
        let scheduler = self
            .scheduler
            .as_ref()
            .ok_or(AdminError::SchedulerNotRunning)?;
        scheduler.fetch_now(id).map_err(|error| match error {
            intake::schedule::FetchNowError::UnknownMailbox(_) => {
                AdminError::MailboxNotFound(format!("#{id}"))
            }
            intake::schedule::FetchNowError::NotRunning => AdminError::SchedulerNotRunning,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_mailbox() -> MailboxChange {
        MailboxChange {
            name: Some("support".into()),
            host: Some(" pop.example.com ".into()),
            username: Some("support@example.com".into()),
            secret: Some(SecretString::from("hunter2")),
            ..MailboxChange::default()
        }
    }

    #[test]
    fn a_new_mailbox_takes_the_defaults_and_the_port_of_its_tls_mode() {
        let s = new_mailbox().apply(None).expect("valid");
        assert_eq!(
            (s.host.as_str(), s.port, s.tls),
            ("pop.example.com", 995, TlsMode::Implicit)
        );
        let s = MailboxChange {
            tls: Some("starttls".into()),
            ..new_mailbox()
        }
        .apply(None)
        .expect("valid");
        assert_eq!(s.port, 110);
    }

    #[test]
    fn a_new_mailbox_needs_a_secret() {
        let change = MailboxChange {
            secret: None,
            ..new_mailbox()
        };
        assert_eq!(
            change.apply(None).err().and_then(|e| e.field()),
            Some(Field::Secret)
        );
    }

    #[test]
    fn unknown_choices_name_their_field_and_the_valid_values() {
        let change = MailboxChange {
            auth_method: Some("kerberos".into()),
            ..new_mailbox()
        };
        let error = change.apply(None).err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some(
                "auth_method must be one of: auto, user, apop, plain, login, cram-md5, xoauth2, oauthbearer"
            )
        );
        let change = MailboxChange {
            tls: Some("ssl3".into()),
            ..new_mailbox()
        };
        assert_eq!(
            change.apply(None).err().and_then(|e| e.field()),
            Some(Field::Tls)
        );
    }

    #[test]
    fn days_to_keep_are_refused_with_the_delete_policy() {
        let change = MailboxChange {
            policy: Some("delete".into()),
            delete_after_days: Some(Some(7)),
            ..new_mailbox()
        };
        assert_eq!(
            change.apply(None).err().and_then(|e| e.field()),
            Some(Field::DeleteAfterDays)
        );
        let change = MailboxChange {
            policy: Some("keep".into()),
            delete_after_days: Some(Some(7)),
            ..new_mailbox()
        };
        assert_eq!(
            change.apply(None).ok().map(|s| s.policy),
            Some(Policy::Keep {
                delete_after_days: Some(7)
            })
        );
    }

    #[test]
    fn switching_to_delete_drops_the_kept_days() {
        let kept = MailboxChange {
            policy: Some("keep".into()),
            delete_after_days: Some(Some(7)),
            ..new_mailbox()
        }
        .apply(None)
        .expect("valid");
        let change = MailboxChange {
            policy: Some("delete".into()),
            ..MailboxChange::default()
        };
        assert_eq!(
            change.apply(Some(&kept)).ok().map(|s| s.policy),
            Some(Policy::Delete)
        );
    }

    #[test]
    fn fingerprints_are_parsed_once_and_blank_clears_them() {
        let pin = "AB:".repeat(31) + "AB";
        let s = MailboxChange {
            trusted_certificate: Some(Some(pin.to_lowercase())),
            ..new_mailbox()
        }
        .apply(None)
        .expect("valid");
        assert_eq!(s.trusted_certificate.map(|f| f.to_string()), Some(pin));
        let cleared = MailboxChange {
            trusted_certificate: Some(Some(" ".into())),
            ..MailboxChange::default()
        }
        .apply(Some(&s))
        .expect("valid");
        assert_eq!(cleared.trusted_certificate, None);
        let bad = MailboxChange {
            trusted_certificate: Some(Some("abc".into())),
            ..new_mailbox()
        };
        assert_eq!(
            bad.apply(None).err().and_then(|e| e.field()),
            Some(Field::TrustedCertificate)
        );
    }
}
