//! The mailbox form: its fields as posted, what it shows, the posted form as the
//! administration service's [`MailboxChange`], and the service's refusals in the form's
//! words. Also what "Test connection" found, as the page shows it.

use admin::{AdminError, ConnectionReport, Field, MailboxChange};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use secrecy::SecretString;
use serde::Deserialize;
use store::{AuthMethod, Mailbox, Policy};

use crate::AppState;
use crate::ui::display::{When, size};
use crate::ui::flash::Flash;
use crate::ui::form::{Choice, filled, ticked};
use crate::ui::page;
use crate::ui::presets::Preset;

/// The mailbox form's fields as posted (all text: numbers are parsed here, so a typo
/// comes back as a sentence beside the form).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct MailboxFields {
    #[serde(default)]
    pub(crate) preset: String,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) host: String,
    #[serde(default)]
    pub(crate) port: String,
    #[serde(default)]
    pub(crate) tls: String,
    #[serde(default)]
    pub(crate) username: String,
    #[serde(default)]
    pub(crate) password: String,
    #[serde(default)]
    pub(crate) auth_method: String,
    #[serde(default)]
    pub(crate) policy: String,
    #[serde(default)]
    pub(crate) delete_after_days: String,
    #[serde(default)]
    pub(crate) start: String,
    #[serde(default)]
    pub(crate) batch_messages: String,
    #[serde(default)]
    pub(crate) max_size: String,
    #[serde(default)]
    pub(crate) ca_file: String,
    #[serde(default)]
    pub(crate) trusted_certificate: String,
    #[serde(default)]
    pub(crate) poll_interval_secs: String,
    pub(crate) enabled: Option<String>,
    pub(crate) allow_insecure_auth: Option<String>,
    /// After a failed connection test: "disabled" saves the mailbox disabled, "enabled"
    /// saves it and lets the scheduler keep trying.
    #[serde(default)]
    pub(crate) save_anyway: String,
    /// "Trust this certificate" on the add form: the fingerprint the test showed.
    #[serde(default)]
    pub(crate) trust_fingerprint: String,
}

/// The form's values, as the template shows them. Never the password.
pub(crate) struct MailboxForm {
    pub(crate) action: String,
    pub(crate) submit: &'static str,
    pub(crate) preset: String,
    /// New mailboxes need a password; on edit, blank keeps the stored one.
    pub(crate) password_required: bool,
    pub(crate) name: String,
    pub(crate) host: String,
    pub(crate) port: String,
    pub(crate) tls: Vec<Choice>,
    pub(crate) username: String,
    pub(crate) username_hint: String,
    pub(crate) auth_method: Vec<Choice>,
    pub(crate) policy: Vec<Choice>,
    pub(crate) delete_after_days: String,
    pub(crate) start: Vec<Choice>,
    pub(crate) batch_messages: String,
    pub(crate) max_size: String,
    pub(crate) ca_file: String,
    pub(crate) trusted_certificate: String,
    pub(crate) poll_interval_secs: String,
    pub(crate) enabled: bool,
    pub(crate) allow_insecure_auth: bool,
    /// What is wrong, in the page's words.
    pub(crate) error: Option<String>,
    /// The id of the input the error is about, to mark it and link to it.
    pub(crate) error_field: String,
    /// A failed connection test of a new mailbox: its technical detail, and the
    /// "Save anyway" choices.
    pub(crate) test_failed: Option<FailedTest>,
}

/// A new mailbox's connection test failed: what to show beside "Save anyway".
pub(crate) struct FailedTest {
    pub(crate) detail: String,
    pub(crate) certificate: Option<CertificateView>,
}

/// The certificate a server presented that popdesk does not trust.
pub(crate) struct CertificateView {
    pub(crate) subject: String,
    pub(crate) issuer: String,
    pub(crate) valid_from: String,
    pub(crate) valid_until: String,
    pub(crate) fingerprint: String,
}

const TLS_CHOICES: [(&str, &str); 3] = [
    ("implicit", "TLS from the start (port 995)"),
    ("starttls", "STARTTLS (port 110)"),
    ("none", "None (unencrypted)"),
];

/// The label of each sign-in method; the values come from the settings model.
fn auth_label(method: AuthMethod) -> &'static str {
    match method {
        AuthMethod::Auto => "Automatic (the best the server offers)",
        AuthMethod::User => "USER and PASS",
        AuthMethod::Apop => "APOP",
        AuthMethod::Plain => "SASL PLAIN",
        AuthMethod::Login => "SASL LOGIN",
        AuthMethod::CramMd5 => "CRAM-MD5",
        AuthMethod::XOAuth2 => "XOAUTH2 (OAuth2 access token)",
        AuthMethod::OAuthBearer => "OAUTHBEARER (OAuth2 access token)",
    }
}

fn auth_choices(selected: &str) -> Vec<Choice> {
    AuthMethod::ALL
        .iter()
        .map(|m| Choice::new(m.as_setting(), auth_label(*m), m.as_setting() == selected))
        .collect()
}

const POLICY_CHOICES: [(&str, &str); 2] = [
    ("delete", "Delete from the server"),
    ("keep", "Keep on the server"),
];

const START_CHOICES: [(&str, &str); 2] = [
    ("all", "Import the mail that is there now"),
    ("now", "Only mail that arrives from now on"),
];

fn choices(options: &[(&str, &str)], selected: &str) -> Vec<Choice> {
    options
        .iter()
        .map(|(value, label)| Choice::new(*value, *label, *value == selected))
        .collect()
}

/// Each setting's input on the form and its label, for errors in the page's words.
fn form_field(field: Field) -> (&'static str, &'static str) {
    match field {
        Field::Name | Field::DisplayName | Field::TokenName => ("name", "Name"),
        Field::Host => ("host", "Host"),
        Field::Port => ("port", "Port"),
        Field::Tls => ("tls", "Security"),
        Field::Username | Field::Email => ("username", "Username"),
        Field::Secret | Field::Password => ("password", "Password or token"),
        Field::AuthMethod => ("auth_method", "Sign-in method"),
        Field::Policy => ("policy", "After fetching"),
        Field::DeleteAfterDays => ("delete_after_days", "Delete kept mail after (days)"),
        Field::Start => ("start", "First fetch"),
        Field::BatchMessages => ("batch_messages", "Messages per session"),
        Field::BatchBytes => ("batch_messages", "Bytes per session"),
        Field::MaxSize => ("max_size", "Largest message (bytes)"),
        Field::Oversize => ("max_size", "Larger messages"),
        Field::CaFile => ("ca_file", "CA certificate file"),
        Field::TrustedCertificate => ("trusted_certificate", "Trusted certificate (SHA-256)"),
        Field::AllowInsecureAuth => (
            "allow_insecure_auth",
            "Allow password over an unencrypted connection",
        ),
        Field::PollInterval => ("poll_interval_secs", "Poll every (seconds)"),
        Field::Role => ("role", "Role"),
        Field::SendAddress => ("send_address", "Send from address"),
        Field::SendDisplayName => ("send_display_name", "Sender name"),
        Field::SmtpHost => ("smtp_host", "SMTP server"),
        Field::SmtpPort => ("smtp_port", "SMTP port"),
        Field::SmtpTls => ("smtp_tls", "SMTP security"),
        Field::SmtpAuth => ("smtp_auth", "SMTP sign-in method"),
        Field::SmtpUsername => ("smtp_username", "SMTP username"),
        Field::SmtpSecret => ("smtp_password", "SMTP password or token"),
        Field::SmtpAllowInsecureAuth => (
            "smtp_allow_insecure_auth",
            "Allow SMTP password over an unencrypted connection",
        ),
    }
}

/// The service's refusal in the form's words: the sentence, and the input it is about.
pub(crate) fn form_error(error: &AdminError) -> (String, String) {
    match error {
        AdminError::Invalid { field, problem } => {
            let (id, label) = form_field(*field);
            (format!("“{label}” {problem}."), id.to_string())
        }
        AdminError::SecretRequired { field } => {
            let (id, label) = form_field(*field);
            (
                format!(
                    "Changing “{label}” needs the password again, so the stored one never goes where it was not meant to: type it in “Password or token”."
                ),
                id.to_string(),
            )
        }
        other => (
            crate::ui::display::sentence(&other.to_string()),
            other
                .field()
                .map(|f| form_field(f).0)
                .unwrap_or_default()
                .to_string(),
        ),
    }
}

impl MailboxForm {
    /// The form of a new mailbox, prefilled from a preset.
    pub(crate) fn new_from(preset: &Preset) -> MailboxForm {
        let defaults = store::MailboxSettings::default();
        MailboxForm {
            action: "/mailboxes".to_string(),
            submit: "Add mailbox",
            preset: preset.key.to_string(),
            password_required: true,
            name: String::new(),
            host: preset.host.to_string(),
            port: preset.port.to_string(),
            tls: choices(&TLS_CHOICES, preset.tls),
            username: String::new(),
            username_hint: preset.username_hint.to_string(),
            auth_method: auth_choices(preset.auth_method),
            policy: choices(&POLICY_CHOICES, "delete"),
            delete_after_days: String::new(),
            start: choices(&START_CHOICES, "all"),
            batch_messages: defaults.batch_messages.to_string(),
            max_size: defaults.max_size.to_string(),
            ca_file: String::new(),
            trusted_certificate: String::new(),
            poll_interval_secs: defaults.poll_interval_secs.to_string(),
            enabled: true,
            allow_insecure_auth: false,
            error: None,
            error_field: String::new(),
            test_failed: None,
        }
    }

    /// The edit form of a stored mailbox.
    pub(crate) fn edit(mailbox: &Mailbox) -> MailboxForm {
        let s = &mailbox.settings;
        let days = match s.policy {
            Policy::Delete => None,
            Policy::Keep { delete_after_days } => delete_after_days,
        };
        MailboxForm {
            action: format!("/mailboxes/{}", mailbox.id),
            submit: "Save changes",
            preset: String::new(),
            password_required: false,
            name: s.name.clone(),
            host: s.host.clone(),
            port: s.port.to_string(),
            tls: choices(&TLS_CHOICES, s.tls.as_str()),
            username: s.username.clone(),
            username_hint: String::new(),
            auth_method: auth_choices(s.auth_method.as_setting()),
            policy: choices(&POLICY_CHOICES, s.policy.as_str()),
            delete_after_days: days.map(|d| d.to_string()).unwrap_or_default(),
            start: choices(&START_CHOICES, s.start.as_str()),
            batch_messages: s.batch_messages.to_string(),
            max_size: s.max_size.to_string(),
            ca_file: s.ca_file.clone().unwrap_or_default(),
            trusted_certificate: s
                .trusted_certificate
                .map(|f| f.to_string())
                .unwrap_or_default(),
            poll_interval_secs: s.poll_interval_secs.to_string(),
            enabled: s.enabled,
            allow_insecure_auth: s.allow_insecure_auth,
            error: None,
            error_field: String::new(),
            test_failed: None,
        }
    }

    /// The form again with what was posted (not the password) and what was wrong.
    pub(crate) fn refill(
        mut self,
        fields: &MailboxFields,
        error: String,
        error_field: String,
    ) -> MailboxForm {
        self.name = fields.name.clone();
        self.host = fields.host.clone();
        self.port = fields.port.clone();
        self.tls = choices(&TLS_CHOICES, &fields.tls);
        self.username = fields.username.clone();
        self.auth_method = auth_choices(&fields.auth_method);
        self.policy = choices(&POLICY_CHOICES, &fields.policy);
        self.delete_after_days = fields.delete_after_days.clone();
        self.start = choices(&START_CHOICES, &fields.start);
        self.batch_messages = fields.batch_messages.clone();
        self.max_size = fields.max_size.clone();
        self.ca_file = fields.ca_file.clone();
        self.trusted_certificate = fields.trusted_certificate.clone();
        self.poll_interval_secs = fields.poll_interval_secs.clone();
        self.enabled = ticked(fields.enabled.as_ref());
        self.allow_insecure_auth = ticked(fields.allow_insecure_auth.as_ref());
        self.error = Some(error);
        self.error_field = error_field;
        self
    }
}

/// A number typed in the form; blank is None.
fn whole_number(text: &str, field: Field) -> Result<Option<u64>, (String, String)> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<u64>().map(Some).map_err(|_| {
        let (id, label) = form_field(field);
        (format!("“{label}” must be a whole number."), id.to_string())
    })
}

/// A choice from a `<select>`; blank means the default (or unchanged).
fn picked(text: &str) -> Option<String> {
    filled(Some(&text.to_string()))
}

/// The posted form as the service's [`MailboxChange`]: numbers parsed, the rest as
/// typed (the service checks it). An error is (sentence, input id).
pub(crate) fn change_from(
    fields: &MailboxFields,
    editing: bool,
) -> Result<MailboxChange, (String, String)> {
    let days = whole_number(&fields.delete_after_days, Field::DeleteAfterDays)?;
    Ok(MailboxChange {
        name: Some(fields.name.clone()),
        host: Some(fields.host.clone()),
        port: whole_number(&fields.port, Field::Port)?,
        tls: picked(&fields.tls),
        username: Some(fields.username.clone()),
        secret: (!fields.password.is_empty()).then(|| SecretString::from(fields.password.clone())),
        auth_method: picked(&fields.auth_method),
        policy: picked(&fields.policy),
        // On the edit form a blank number of days clears it; on a new one it is the default.
        delete_after_days: if editing { Some(days) } else { days.map(Some) },
        start: picked(&fields.start),
        batch_messages: whole_number(&fields.batch_messages, Field::BatchMessages)?,
        batch_bytes: None,
        max_size: whole_number(&fields.max_size, Field::MaxSize)?,
        oversize: None,
        ca_file: Some(filled(Some(&fields.ca_file))),
        trusted_certificate: Some(filled(Some(&fields.trusted_certificate))),
        allow_insecure_auth: Some(ticked(fields.allow_insecure_auth.as_ref())),
        enabled: Some(ticked(fields.enabled.as_ref())),
        poll_interval_secs: whole_number(&fields.poll_interval_secs, Field::PollInterval)?,
        ..MailboxChange::default()
    })
}

/// Whether htmx sent the request (it swaps the answer into the page in place, so the
/// password input is never re-rendered and the admin types it once).
fn from_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// A form shown again: 422 for a plain post; 200 for htmx, which swaps only 2xx answers.
pub(crate) fn form_status(headers: &HeaderMap) -> StatusCode {
    refused_status(headers, None)
}

/// The status of a form shown again because of this refusal (409 for a taken name).
pub(crate) fn refused_status(headers: &HeaderMap, error: Option<&AdminError>) -> StatusCode {
    match error {
        _ if from_htmx(headers) => StatusCode::OK,
        Some(AdminError::MailboxNameTaken(_)) => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// After a saved form: 303 for a plain post, a whole-page load for htmx.
pub(crate) fn saved(
    state: &AppState,
    headers: &HeaderMap,
    location: &str,
    flash: Flash,
) -> Response {
    if from_htmx(headers) {
        let mut response = page::htmx_redirect(location);
        crate::ui::flash::set(
            response.headers_mut(),
            Some(&flash),
            state.config().secure_cookies,
        );
        response
    } else {
        page::see_other_with(state, location, flash)
    }
}

/// What "Test connection" found, as the page shows it.
pub(crate) struct TestResult {
    pub(crate) ok: bool,
    pub(crate) error: Option<String>,
    pub(crate) detail: String,
    pub(crate) certificate: Option<CertificateView>,
    pub(crate) greeting: String,
    pub(crate) encrypted: &'static str,
    pub(crate) auth_method: String,
    pub(crate) capabilities: Vec<String>,
    pub(crate) messages: String,
    pub(crate) uidl: &'static str,
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// The certificate a failed test met, for "Trust this certificate".
pub(crate) fn certificate_view(problem: &admin::ConnectionProblem) -> Option<CertificateView> {
    let cert = problem.certificate.as_ref()?;
    let day = |secs: i64| {
        let when = When::new(secs.saturating_mul(1000), 0);
        when.text
    };
    Some(CertificateView {
        subject: cert.subject.clone(),
        issuer: if cert.self_signed {
            format!("{} (self-signed)", cert.issuer)
        } else {
            cert.issuer.clone()
        },
        valid_from: day(cert.not_before),
        valid_until: day(cert.not_after),
        fingerprint: cert.fingerprint.to_string(),
    })
}

impl From<ConnectionReport> for TestResult {
    fn from(report: ConnectionReport) -> TestResult {
        match report {
            ConnectionReport::Connected(found) => TestResult {
                ok: true,
                error: None,
                detail: String::new(),
                certificate: None,
                greeting: found.greeting,
                encrypted: yes_no(found.encrypted),
                auth_method: found.auth_method,
                capabilities: found.capabilities,
                messages: match found.messages {
                    1 => format!("1 message, {}", size(found.size)),
                    n => format!("{n} messages, {}", size(found.size)),
                },
                uidl: yes_no(found.has_uidl),
            },
            ConnectionReport::Failed(problem) => TestResult {
                ok: false,
                certificate: certificate_view(&problem),
                error: Some(problem.summary),
                detail: problem.detail,
                greeting: String::new(),
                encrypted: "",
                auth_method: String::new(),
                capabilities: Vec::new(),
                messages: String::new(),
                uidl: "",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_in_a_number_is_a_sentence() {
        let fields = MailboxFields {
            port: "99x".into(),
            ..MailboxFields::default()
        };
        assert_eq!(
            change_from(&fields, false).err(),
            Some((
                "“Port” must be a whole number.".to_string(),
                "port".to_string()
            ))
        );
    }

    #[test]
    fn service_refusals_name_the_form_field() {
        let error = AdminError::Invalid {
            field: Field::BatchMessages,
            problem: "must be between 1 and 100000".into(),
        };
        assert_eq!(
            form_error(&error),
            (
                "“Messages per session” must be between 1 and 100000.".to_string(),
                "batch_messages".to_string()
            )
        );
    }
}
