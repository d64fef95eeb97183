//! Each rule a mailbox's settings must meet, once. [`check`] runs them all; the web UI,
//! the JSON API and the command line reach them only through the service.

use store::{MailboxSettings, Policy, SendingSettings, SmtpAuth, TlsMode};

use crate::error::{AdminError, Field};

/// Names are shown in lists and typed on the command line.
pub const MAX_NAME_CHARS: usize = 100;
/// RFC 1035's limit on a host name.
pub const MAX_HOST_LEN: usize = 253;
/// RFC 5321's limit on an address, which is what most usernames are.
pub const MAX_USERNAME_CHARS: usize = 320;
/// Messages per session: at least one, and few enough that a lost session costs little.
pub const BATCH_MESSAGES: std::ops::RangeInclusive<u64> = 1..=100_000;
/// Seconds between polls: no more often than every 10 s, at least once a day.
pub const POLL_INTERVAL: std::ops::RangeInclusive<u64> = 10..=86_400;
/// Days a kept message stays on the server: up to a hundred years.
pub const DELETE_AFTER_DAYS: std::ops::RangeInclusive<u64> = 1..=36_500;
/// A password or token, in characters: long enough for any OAuth2 token.
pub const MAX_SECRET_CHARS: usize = 16 * 1024;

fn in_range(
    field: Field,
    value: u64,
    range: &std::ops::RangeInclusive<u64>,
) -> Result<(), AdminError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(AdminError::invalid(
            field,
            format!("must be between {} and {}", range.start(), range.end()),
        ))
    }
}

/// A number from the caller, range-checked before it is narrowed to the settings' type.
pub(crate) fn number<T: TryFrom<u64>>(
    field: Field,
    value: u64,
    range: &std::ops::RangeInclusive<u64>,
) -> Result<T, AdminError> {
    in_range(field, value, range)?;
    T::try_from(value).map_err(|_| {
        AdminError::invalid(
            field,
            format!("must be between {} and {}", range.start(), range.end()),
        )
    })
}

pub(crate) fn name(name: &str) -> Result<(), AdminError> {
    let chars = name.chars().count();
    if name.trim().is_empty() || chars > MAX_NAME_CHARS {
        return Err(AdminError::invalid(
            Field::Name,
            format!("must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AdminError::invalid(
            Field::Name,
            "must not contain control characters",
        ));
    }
    Ok(())
}

pub(crate) fn host(host: &str) -> Result<(), AdminError> {
    if host.is_empty()
        || host.len() > MAX_HOST_LEN
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(AdminError::invalid(
            Field::Host,
            "must be a host name or an IP address, without spaces or slashes",
        ));
    }
    Ok(())
}

pub(crate) fn port(port: u64) -> Result<u16, AdminError> {
    number(Field::Port, port, &(1..=65_535))
}

pub(crate) fn username(username: &str) -> Result<(), AdminError> {
    username_for(Field::Username, username)
}

fn username_for(field: Field, username: &str) -> Result<(), AdminError> {
    if username.is_empty() || username.chars().count() > MAX_USERNAME_CHARS {
        return Err(AdminError::invalid(
            field,
            format!("must be 1 to {MAX_USERNAME_CHARS} characters"),
        ));
    }
    if username.chars().any(char::is_control) {
        return Err(AdminError::invalid(
            field,
            "must not contain control characters or line breaks",
        ));
    }
    Ok(())
}

pub(crate) fn secret(secret: &str) -> Result<(), AdminError> {
    secret_for(Field::Secret, secret)
}

fn secret_for(field: Field, secret: &str) -> Result<(), AdminError> {
    if secret.is_empty() || secret.chars().count() > MAX_SECRET_CHARS {
        return Err(AdminError::invalid(
            field,
            format!("must be 1 to {MAX_SECRET_CHARS} characters"),
        ));
    }
    // A line break would end the POP3 command and start another.
    if secret.contains(['\r', '\n', '\0']) {
        return Err(AdminError::invalid(field, "must not contain line breaks"));
    }
    Ok(())
}

/// RFC 5321's limit on a path, which an address must fit in.
pub const MAX_ADDRESS_LEN: usize = 254;

/// A plain address a server will accept in `MAIL FROM`: one `@`, something on each
/// side, no spaces, brackets or control characters.
pub fn is_address(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    address.len() <= MAX_ADDRESS_LEN
        && !local.is_empty()
        && !domain.is_empty()
        && !local.contains('@')
        && (domain.contains('.') || domain == "localhost")
        && address.is_ascii()
        && !address
            .chars()
            .any(|c| c.is_ascii_whitespace() || c.is_control() || "<>(),;:\\\"[]".contains(c))
}

pub(crate) fn smtp_secret(secret: &str) -> Result<(), AdminError> {
    secret_for(Field::SmtpSecret, secret)
}

/// The rules of sending settings.
pub(crate) fn sending(sending: &SendingSettings) -> Result<(), AdminError> {
    if !is_address(&sending.address) {
        return Err(AdminError::invalid(
            Field::SendAddress,
            "must be an email address such as support@example.com",
        ));
    }
    if let Some(name) = &sending.display_name
        && (name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control))
    {
        return Err(AdminError::invalid(
            Field::SendDisplayName,
            format!("must be at most {MAX_NAME_CHARS} characters, without line breaks"),
        ));
    }
    if sending.smtp_host.is_empty() {
        return Err(AdminError::invalid(
            Field::SmtpHost,
            "is needed to send: the SMTP server replies leave through (e.g. smtp.gmail.com)",
        ));
    }
    host(&sending.smtp_host).map_err(|_| {
        AdminError::invalid(
            Field::SmtpHost,
            "must be a host name or an IP address, without spaces or slashes",
        )
    })?;
    if let Some(username) = &sending.smtp_username {
        username_for(Field::SmtpUsername, username)?;
    }
    if sending.smtp_tls == TlsMode::None
        && sending.smtp_auth != SmtpAuth::None
        && !sending.smtp_allow_insecure_auth
    {
        return Err(AdminError::invalid(
            Field::SmtpTls,
            "must be implicit or starttls to sign in, unless signing in over an unencrypted connection is explicitly allowed",
        ));
    }
    Ok(())
}

/// The rules that involve more than one setting.
pub(crate) fn check(settings: &MailboxSettings) -> Result<(), AdminError> {
    name(&settings.name)?;
    host(&settings.host)?;
    if settings.port == 0 {
        port(0)?;
    }
    username(&settings.username)?;
    in_range(
        Field::BatchMessages,
        u64::from(settings.batch_messages),
        &BATCH_MESSAGES,
    )?;
    if settings.batch_bytes == 0 {
        return Err(AdminError::invalid(Field::BatchBytes, "must be at least 1"));
    }
    if settings.max_size == 0 {
        return Err(AdminError::invalid(Field::MaxSize, "must be at least 1"));
    }
    in_range(
        Field::PollInterval,
        u64::from(settings.poll_interval_secs),
        &POLL_INTERVAL,
    )?;
    if let Policy::Keep {
        delete_after_days: Some(days),
    } = settings.policy
    {
        in_range(Field::DeleteAfterDays, u64::from(days), &DELETE_AFTER_DAYS)?;
    }
    if let Some(path) = &settings.ca_file
        && (path.trim().is_empty() || path.chars().any(char::is_control))
    {
        return Err(AdminError::invalid(
            Field::CaFile,
            "must be the path of a PEM file",
        ));
    }
    if settings.trusted_certificate.is_some() && settings.tls == TlsMode::None {
        return Err(AdminError::invalid(
            Field::TrustedCertificate,
            "needs TLS: an unencrypted connection has no certificate to trust",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> MailboxSettings {
        MailboxSettings {
            name: "support".into(),
            host: "pop.example.com".into(),
            username: "support@example.com".into(),
            ..MailboxSettings::default()
        }
    }

    fn refused_field(settings: &MailboxSettings) -> Option<Field> {
        check(settings).err().and_then(|e| e.field())
    }

    #[test]
    fn the_defaults_with_a_name_host_and_user_are_valid() {
        assert!(check(&valid()).is_ok());
    }

    #[test]
    fn whitespace_only_names_are_rejected() {
        let s = MailboxSettings {
            name: "  ".into(),
            ..valid()
        };
        assert_eq!(refused_field(&s), Some(Field::Name));
    }

    #[test]
    fn hosts_with_spaces_slashes_or_nothing_are_rejected() {
        for host in [
            "",
            " ",
            "pop example.com",
            "https://pop.example.com",
            "a\u{7}b",
        ] {
            let s = MailboxSettings {
                host: host.into(),
                ..valid()
            };
            assert_eq!(refused_field(&s), Some(Field::Host), "{host:?}");
        }
    }

    #[test]
    fn port_zero_is_rejected() {
        assert_eq!(
            refused_field(&MailboxSettings { port: 0, ..valid() }),
            Some(Field::Port)
        );
        assert_eq!(
            port(70_000).err().and_then(|e| e.field()),
            Some(Field::Port)
        );
        assert_eq!(port(995).ok(), Some(995));
    }

    #[test]
    fn batches_of_zero_or_over_the_limit_are_rejected() {
        for n in [0, 100_001] {
            let s = MailboxSettings {
                batch_messages: n,
                ..valid()
            };
            assert_eq!(refused_field(&s), Some(Field::BatchMessages), "{n}");
        }
        assert!(
            check(&MailboxSettings {
                batch_messages: 100_000,
                ..valid()
            })
            .is_ok()
        );
    }

    #[test]
    fn a_size_limit_of_zero_is_rejected() {
        let s = MailboxSettings {
            max_size: 0,
            ..valid()
        };
        assert_eq!(refused_field(&s), Some(Field::MaxSize));
        let s = MailboxSettings {
            batch_bytes: 0,
            ..valid()
        };
        assert_eq!(refused_field(&s), Some(Field::BatchBytes));
    }

    #[test]
    fn poll_intervals_outside_ten_seconds_to_a_day_are_rejected() {
        for secs in [9, 86_401] {
            let s = MailboxSettings {
                poll_interval_secs: secs,
                ..valid()
            };
            assert_eq!(refused_field(&s), Some(Field::PollInterval), "{secs}");
        }
    }

    #[test]
    fn kept_mail_is_deleted_after_one_day_to_a_hundred_years() {
        let s = MailboxSettings {
            policy: Policy::Keep {
                delete_after_days: Some(0),
            },
            ..valid()
        };
        assert_eq!(refused_field(&s), Some(Field::DeleteAfterDays));
    }

    #[test]
    fn a_pinned_certificate_needs_tls() {
        let s = MailboxSettings {
            tls: TlsMode::None,
            trusted_certificate: Some(store::CertFingerprint::of(b"cert")),
            ..valid()
        };
        assert_eq!(refused_field(&s), Some(Field::TrustedCertificate));
    }

    #[test]
    fn secrets_with_line_breaks_are_rejected() {
        assert_eq!(
            secret("pass\r\nDELE 1").err().and_then(|e| e.field()),
            Some(Field::Secret)
        );
        assert_eq!(
            secret("").err().and_then(|e| e.field()),
            Some(Field::Secret)
        );
        assert!(secret("hunter2").is_ok());
    }
}
