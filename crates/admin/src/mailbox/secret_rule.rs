//! The secret rule: a stored password or token is only ever sent where it was first
//! meant to go.
//!
//! Without it, an admin (or a leaked admin token) could point a mailbox at a server of
//! their choosing — another host or port, no TLS, a certificate they control, a method
//! that sends the secret in plaintext — press "Test connection" and read the stored
//! password off the wire. So changing any of those needs the secret typed again.

use store::MailboxSettings;

use crate::error::{AdminError, Field};

/// Which changes need the secret again.
pub struct SecretRule;

impl SecretRule {
    /// The first setting whose change would send the stored secret somewhere new.
    pub fn needs_secret(old: &MailboxSettings, new: &MailboxSettings) -> Option<Field> {
        [
            (old.host != new.host, Field::Host),
            (old.port != new.port, Field::Port),
            (old.tls != new.tls, Field::Tls),
            (old.username != new.username, Field::Username),
            (old.auth_method != new.auth_method, Field::AuthMethod),
            (old.ca_file != new.ca_file, Field::CaFile),
            (
                old.trusted_certificate != new.trusted_certificate,
                Field::TrustedCertificate,
            ),
            (
                old.allow_insecure_auth != new.allow_insecure_auth,
                Field::AllowInsecureAuth,
            ),
        ]
        .into_iter()
        .find_map(|(changed, field)| changed.then_some(field))
    }

    /// The first sending setting whose change would send the secret SMTP signs in with
    /// somewhere new; setting sending up for the first time counts as a change.
    pub fn smtp_needs_secret(old: &MailboxSettings, new: &MailboxSettings) -> Option<Field> {
        let new_sending = new.sending.as_ref()?;
        if new_sending.smtp_auth == store::SmtpAuth::None {
            return None;
        }
        let Some(old_sending) = &old.sending else {
            return Some(Field::SmtpHost);
        };
        [
            (
                old_sending.smtp_host != new_sending.smtp_host,
                Field::SmtpHost,
            ),
            (
                old_sending.smtp_port != new_sending.smtp_port,
                Field::SmtpPort,
            ),
            (old_sending.smtp_tls != new_sending.smtp_tls, Field::SmtpTls),
            (
                old_sending.smtp_auth != new_sending.smtp_auth,
                Field::SmtpAuth,
            ),
            (
                old_sending.smtp_username != new_sending.smtp_username,
                Field::SmtpUsername,
            ),
            (
                old_sending.smtp_allow_insecure_auth != new_sending.smtp_allow_insecure_auth,
                Field::SmtpAllowInsecureAuth,
            ),
            (old.ca_file != new.ca_file, Field::CaFile),
            // The reused POP3 username is where the secret goes too.
            (
                new_sending.smtp_username.is_none() && old.username != new.username,
                Field::Username,
            ),
        ]
        .into_iter()
        .find_map(|(changed, field)| changed.then_some(field))
    }

    /// Refuses a change that needs the secret when none was given.
    pub fn check(
        old: &MailboxSettings,
        new: &MailboxSettings,
        secret_given: bool,
    ) -> Result<(), AdminError> {
        match Self::needs_secret(old, new) {
            Some(field) if !secret_given => Err(AdminError::SecretRequired { field }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> MailboxSettings {
        MailboxSettings {
            name: "support".into(),
            host: "pop.example.com".into(),
            username: "support".into(),
            ..MailboxSettings::default()
        }
    }

    #[test]
    fn changing_where_the_secret_goes_needs_it_again() {
        let cases: Vec<(MailboxSettings, Field)> = vec![
            (
                MailboxSettings {
                    host: "evil.example".into(),
                    ..stored()
                },
                Field::Host,
            ),
            (
                MailboxSettings {
                    port: 110,
                    ..stored()
                },
                Field::Port,
            ),
            (
                MailboxSettings {
                    tls: store::TlsMode::None,
                    ..stored()
                },
                Field::Tls,
            ),
            (
                MailboxSettings {
                    username: "other".into(),
                    ..stored()
                },
                Field::Username,
            ),
            (
                MailboxSettings {
                    auth_method: store::AuthMethod::User,
                    ..stored()
                },
                Field::AuthMethod,
            ),
            (
                MailboxSettings {
                    ca_file: Some("/tmp/ca.pem".into()),
                    ..stored()
                },
                Field::CaFile,
            ),
            (
                MailboxSettings {
                    trusted_certificate: Some(store::CertFingerprint::of(b"x")),
                    ..stored()
                },
                Field::TrustedCertificate,
            ),
            (
                MailboxSettings {
                    allow_insecure_auth: true,
                    ..stored()
                },
                Field::AllowInsecureAuth,
            ),
        ];
        for (changed, field) in cases {
            assert_eq!(
                SecretRule::check(&stored(), &changed, false)
                    .err()
                    .and_then(|e| e.field()),
                Some(field)
            );
            assert!(SecretRule::check(&stored(), &changed, true).is_ok());
        }
    }

    #[test]
    fn changing_how_often_or_what_happens_to_mail_does_not() {
        let changed = MailboxSettings {
            name: "renamed".into(),
            poll_interval_secs: 300,
            batch_messages: 10,
            enabled: false,
            ..stored()
        };
        assert!(SecretRule::check(&stored(), &changed, false).is_ok());
    }
}
