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
use crate::ui::form::{Choice, filled, from_htmx, ticked};
use crate::ui::page;
use crate::ui::presets::{self, Preset};

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
    pub(crate) new_address_reference: String,
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
    /// Sending replies: blank turns sending off, and the SMTP fields are then ignored.
    #[serde(default)]
    pub(crate) send_address: String,
    #[serde(default)]
    pub(crate) send_display_name: String,
    #[serde(default)]
    pub(crate) smtp_host: String,
    #[serde(default)]
    pub(crate) smtp_port: String,
    #[serde(default)]
    pub(crate) smtp_tls: String,
    #[serde(default)]
    pub(crate) smtp_auth: String,
    /// Blank: SMTP signs in with the POP3 username and password.
    #[serde(default)]
    pub(crate) smtp_username: String,
    #[serde(default)]
    pub(crate) smtp_password: String,
    pub(crate) smtp_allow_insecure_auth: Option<String>,
    pub(crate) acknowledge: Option<String>,
    /// OAuth2: blank or `none` signs in with the password; the other fields then do not
    /// apply.
    #[serde(default)]
    pub(crate) oauth_provider: String,
    #[serde(default)]
    pub(crate) oauth_tenant: String,
    #[serde(default)]
    pub(crate) oauth_issuer: String,
    #[serde(default)]
    pub(crate) oauth_authorize_url: String,
    #[serde(default)]
    pub(crate) oauth_token_url: String,
    #[serde(default)]
    pub(crate) oauth_device_url: String,
    #[serde(default)]
    pub(crate) oauth_client_id: String,
    /// Blank keeps the stored one (on a new mailbox: a public client).
    #[serde(default)]
    pub(crate) oauth_client_secret: String,
    /// Space-separated; blank takes the provider's.
    #[serde(default)]
    pub(crate) oauth_scopes: String,
    #[serde(default)]
    pub(crate) oauth_flow: String,
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
    pub(crate) new_address_reference: Vec<Choice>,
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
    pub(crate) sending: SendingFields,
    pub(crate) oauth: OAuthFields,
}

/// The "OAuth2" part of the mailbox form. Never the client secret.
pub(crate) struct OAuthFields {
    pub(crate) provider: Vec<Choice>,
    pub(crate) tenant: String,
    pub(crate) issuer: String,
    pub(crate) authorize_url: String,
    pub(crate) token_url: String,
    pub(crate) device_url: String,
    pub(crate) client_id: String,
    /// Editing a mailbox: a blank secret keeps the stored one.
    pub(crate) editing: bool,
    pub(crate) scopes: String,
    pub(crate) flow: Vec<Choice>,
}

const OAUTH_PROVIDER_CHOICES: [(&str, &str); 4] = [
    ("none", "None: sign in with the password above"),
    ("microsoft", "Microsoft 365"),
    ("google", "Google (Gmail)"),
    ("generic", "Another provider (by its issuer or endpoints)"),
];

const OAUTH_FLOW_CHOICES: [(&str, &str); 3] = [
    (
        "authorization-code",
        "In the browser: Connect, sign in at the provider",
    ),
    ("device-code", "With a code entered at the provider"),
    (
        "client-credentials",
        "App-only (client credentials, no user)",
    ),
];

impl OAuthFields {
    fn from_preset(preset: &Preset) -> OAuthFields {
        OAuthFields {
            provider: choices(&OAUTH_PROVIDER_CHOICES, preset.oauth_provider),
            tenant: String::new(),
            issuer: String::new(),
            authorize_url: String::new(),
            token_url: String::new(),
            device_url: String::new(),
            client_id: String::new(),
            editing: false,
            scopes: String::new(),
            flow: choices(&OAUTH_FLOW_CHOICES, "authorization-code"),
        }
    }

    fn stored(mailbox: &Mailbox) -> OAuthFields {
        let Some(o) = &mailbox.settings.oauth else {
            return OAuthFields {
                editing: true,
                ..OAuthFields::from_preset(&presets::GENERIC)
            };
        };
        let generic = o.provider == store::OAuthProvider::Generic;
        let endpoint = |url: Option<&String>| {
            if generic {
                url.cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        OAuthFields {
            provider: choices(&OAUTH_PROVIDER_CHOICES, o.provider.as_str()),
            tenant: o.tenant.clone().unwrap_or_default(),
            issuer: o.issuer.clone().unwrap_or_default(),
            authorize_url: endpoint(o.authorize_url.as_ref()),
            token_url: endpoint(Some(&o.token_url)),
            device_url: endpoint(o.device_url.as_ref()),
            client_id: o.client_id.clone(),
            editing: true,
            scopes: o.scope(),
            flow: choices(&OAUTH_FLOW_CHOICES, o.flow.as_str()),
        }
    }

    /// What was posted (not the secret).
    fn refill(&mut self, fields: &MailboxFields) {
        self.provider = choices(&OAUTH_PROVIDER_CHOICES, &fields.oauth_provider);
        self.tenant = fields.oauth_tenant.clone();
        self.issuer = fields.oauth_issuer.clone();
        self.authorize_url = fields.oauth_authorize_url.clone();
        self.token_url = fields.oauth_token_url.clone();
        self.device_url = fields.oauth_device_url.clone();
        self.client_id = fields.oauth_client_id.clone();
        self.scopes = fields.oauth_scopes.clone();
        self.flow = choices(&OAUTH_FLOW_CHOICES, &fields.oauth_flow);
    }
}

/// The "Sending replies" part of the mailbox form. Never the SMTP password.
pub(crate) struct SendingFields {
    pub(crate) address: String,
    pub(crate) display_name: String,
    pub(crate) smtp_host: String,
    pub(crate) smtp_port: String,
    pub(crate) smtp_tls: Vec<Choice>,
    pub(crate) smtp_auth: Vec<Choice>,
    pub(crate) smtp_username: String,
    /// SMTP has a password of its own stored: blank keeps it.
    pub(crate) smtp_password_stored: bool,
    pub(crate) smtp_allow_insecure_auth: bool,
    pub(crate) acknowledge: bool,
    /// What the provider's SMTP wants the admin to know.
    pub(crate) about: &'static [&'static str],
}

const SMTP_TLS_CHOICES: [(&str, &str); 3] = [
    ("implicit", "TLS from the start (port 465)"),
    ("starttls", "STARTTLS (port 587)"),
    ("none", "None (unencrypted)"),
];

const SMTP_AUTH_CHOICES: [(&str, &str); 5] = [
    ("auto", "Automatic (PLAIN or LOGIN, as the server offers)"),
    ("plain", "PLAIN"),
    ("login", "LOGIN"),
    ("xoauth2", "XOAUTH2 (OAuth2 access token)"),
    ("none", "None (a relay that trusts this machine)"),
];

impl SendingFields {
    /// Sending not set up: the provider's SMTP server as a start.
    fn from_preset(preset: &Preset) -> SendingFields {
        SendingFields {
            address: String::new(),
            display_name: String::new(),
            smtp_host: preset.smtp_host.to_string(),
            smtp_port: preset.smtp_port.to_string(),
            smtp_tls: choices(&SMTP_TLS_CHOICES, preset.smtp_tls),
            smtp_auth: choices(&SMTP_AUTH_CHOICES, preset.smtp_auth),
            smtp_username: String::new(),
            smtp_password_stored: false,
            smtp_allow_insecure_auth: false,
            acknowledge: false,
            about: preset.sending_about,
        }
    }

    /// A stored mailbox's sending settings (or its provider's defaults when it does not
    /// send yet).
    fn stored(mailbox: &Mailbox) -> SendingFields {
        let preset = presets::for_pop3_host(&mailbox.settings.host);
        let Some(sending) = &mailbox.settings.sending else {
            return SendingFields::from_preset(preset);
        };
        SendingFields {
            address: sending.address.clone(),
            display_name: sending.display_name.clone().unwrap_or_default(),
            smtp_host: sending.smtp_host.clone(),
            smtp_port: sending.smtp_port.to_string(),
            smtp_tls: choices(&SMTP_TLS_CHOICES, sending.smtp_tls.as_str()),
            smtp_auth: choices(&SMTP_AUTH_CHOICES, sending.smtp_auth.as_str()),
            smtp_username: sending.smtp_username.clone().unwrap_or_default(),
            smtp_password_stored: sending.smtp_username.is_some(),
            smtp_allow_insecure_auth: sending.smtp_allow_insecure_auth,
            acknowledge: sending.acknowledge,
            about: preset.sending_about,
        }
    }

    /// What was posted (not the password).
    fn refill(&mut self, fields: &MailboxFields) {
        self.address = fields.send_address.clone();
        self.display_name = fields.send_display_name.clone();
        self.smtp_host = fields.smtp_host.clone();
        self.smtp_port = fields.smtp_port.clone();
        self.smtp_tls = choices(&SMTP_TLS_CHOICES, &fields.smtp_tls);
        self.smtp_auth = choices(&SMTP_AUTH_CHOICES, &fields.smtp_auth);
        self.smtp_username = fields.smtp_username.clone();
        self.smtp_allow_insecure_auth = ticked(fields.smtp_allow_insecure_auth.as_ref());
        self.acknowledge = ticked(fields.acknowledge.as_ref());
    }
}

/// A choice's label, for the mailbox page.
fn label_of(choices: &[(&'static str, &'static str)], value: &str) -> &'static str {
    choices
        .iter()
        .find(|(v, _)| *v == value)
        .map_or("unknown", |(_, label)| *label)
}

/// How a mailbox sends, as its page shows it. Never the password.
pub(crate) struct SendingSummary {
    /// "Example Support <support@example.com>".
    pub(crate) from: String,
    /// "smtp.example.com:587".
    pub(crate) server: String,
    pub(crate) security: &'static str,
    pub(crate) sign_in: &'static str,
    /// "the mailbox's username and password above", or SMTP's own username.
    pub(crate) login: String,
    pub(crate) acknowledge: &'static str,
}

impl SendingSummary {
    /// `None` when the mailbox does not send.
    pub(crate) fn new(mailbox: &Mailbox) -> Option<SendingSummary> {
        let sending = mailbox.settings.sending.as_ref()?;
        Some(SendingSummary {
            from: crate::ui::display::person(
                Some(&sending.address),
                sending.display_name.as_deref(),
            ),
            server: format!("{}:{}", sending.smtp_host, sending.smtp_port),
            security: label_of(&SMTP_TLS_CHOICES, sending.smtp_tls.as_str()),
            sign_in: label_of(&SMTP_AUTH_CHOICES, sending.smtp_auth.as_str()),
            login: match &sending.smtp_username {
                Some(username) => format!("{username}, with a password of its own"),
                None => format!(
                    "{}, with the mailbox's password (as POP3)",
                    mailbox.settings.username
                ),
            },
            acknowledge: if sending.acknowledge { "yes" } else { "no" },
        })
    }
}

/// What "Test sending" found, as the page shows it.
pub(crate) struct SendingTestResult {
    pub(crate) ok: bool,
    /// "Connected to smtp.example.com:587 with STARTTLS and signed in as ...".
    pub(crate) summary: String,
    /// The failure with the server's own words.
    pub(crate) error: Option<String>,
    /// Whether waiting will help (a 4xx, the network) or something must change.
    pub(crate) advice: &'static str,
}

impl SendingTestResult {
    pub(crate) fn new(
        mailbox: &Mailbox,
        outcome: Result<outgoing::SendingTest, outgoing::Failure>,
    ) -> SendingTestResult {
        match outcome {
            Ok(test) => SendingTestResult {
                ok: true,
                summary: format!(
                    "Connected to {}:{} ({}) and signed in as {} ({}). No mail was sent.",
                    test.host,
                    test.port,
                    label_of(&SMTP_TLS_CHOICES, test.tls.as_str()),
                    test.username,
                    label_of(&SMTP_AUTH_CHOICES, test.auth.as_str()),
                ),
                error: None,
                advice: "",
            },
            Err(failure) => SendingTestResult {
                ok: false,
                summary: mailbox
                    .settings
                    .sending
                    .as_ref()
                    .map(|s| format!("{}:{}", s.smtp_host, s.smtp_port))
                    .unwrap_or_default(),
                advice: if failure.is_permanent() {
                    "The server refused: fix the sending settings (or the account), then test again."
                } else {
                    "This may pass later (the server or the network is away); replies wait in the outbox and are tried again."
                },
                error: Some(crate::ui::display::sentence(failure.message())),
            },
        }
    }
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

const NEW_ADDRESS_CHOICES: [(&str, &str); 2] = [
    (
        "join",
        "Add it to the ticket, marked “from a new address” (it does not reopen the ticket)",
    ),
    ("new-ticket", "Open a ticket of its own"),
];

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
        Field::TokenExpiry => ("expires_in_days", "Expires after (days)"),
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
        Field::OAuthProvider => ("oauth_provider", "OAuth2 provider"),
        Field::OAuthTenant => ("oauth_tenant", "Tenant"),
        Field::OAuthIssuer => ("oauth_issuer", "Issuer"),
        Field::OAuthAuthorizeUrl => ("oauth_authorize_url", "Authorization URL"),
        Field::OAuthTokenUrl => ("oauth_token_url", "Token URL"),
        Field::OAuthDeviceUrl => ("oauth_device_url", "Device-code URL"),
        Field::OAuthClientId => ("oauth_client_id", "Client id"),
        Field::OAuthClientSecret => ("oauth_client_secret", "Client secret"),
        Field::OAuthScopes => ("oauth_scopes", "Scopes"),
        Field::OAuthFlow => ("oauth_flow", "How to connect"),
        Field::NewAddressReference => (
            "new_address_reference",
            "Ticket references from new addresses",
        ),
        Field::Mailboxes => ("mailboxes", "Mailboxes"),
    }
}

/// Where the password asked for again is typed: SMTP's own, when an SMTP setting moved
/// and SMTP has a username of its own; else the mailbox's.
fn secret_label(field: Field, smtp_own_login: bool) -> &'static str {
    let smtp_field = matches!(
        field,
        Field::SmtpHost
            | Field::SmtpPort
            | Field::SmtpTls
            | Field::SmtpAuth
            | Field::SmtpUsername
            | Field::SmtpAllowInsecureAuth
    );
    if smtp_field && smtp_own_login {
        form_field(Field::SmtpSecret).1
    } else {
        form_field(Field::Secret).1
    }
}

/// The service's refusal in the form's words: the sentence, and the input it is about.
/// `smtp_own_login`: the form gave SMTP a username of its own (which password a moved
/// SMTP setting needs again).
pub(crate) fn form_error(error: &AdminError, smtp_own_login: bool) -> (String, String) {
    match error {
        AdminError::Invalid { field, problem } => {
            let (id, label) = form_field(*field);
            (format!("“{label}” {problem}."), id.to_string())
        }
        AdminError::SecretRequired { field } => {
            let (id, label) = form_field(*field);
            (
                format!(
                    "Changing “{label}” needs the password again, so the stored one never goes where it was not meant to: type it in “{}”.",
                    secret_label(*field, smtp_own_login)
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
            new_address_reference: choices(&NEW_ADDRESS_CHOICES, "join"),
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
            sending: SendingFields::from_preset(preset),
            oauth: OAuthFields::from_preset(preset),
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
            new_address_reference: choices(&NEW_ADDRESS_CHOICES, s.new_address_reference.as_str()),
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
            sending: SendingFields::stored(mailbox),
            oauth: OAuthFields::stored(mailbox),
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
        self.new_address_reference = choices(&NEW_ADDRESS_CHOICES, &fields.new_address_reference);
        self.batch_messages = fields.batch_messages.clone();
        self.max_size = fields.max_size.clone();
        self.ca_file = fields.ca_file.clone();
        self.trusted_certificate = fields.trusted_certificate.clone();
        self.poll_interval_secs = fields.poll_interval_secs.clone();
        self.enabled = ticked(fields.enabled.as_ref());
        self.allow_insecure_auth = ticked(fields.allow_insecure_auth.as_ref());
        self.sending.refill(fields);
        self.oauth.refill(fields);
        self.error = Some(error);
        self.error_field = error_field;
        self
    }
}

/// Whether the posted form gives SMTP a username of its own.
pub(crate) fn smtp_own_login(fields: &MailboxFields) -> bool {
    !fields.send_address.trim().is_empty() && !fields.smtp_username.trim().is_empty()
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
    let mut change = MailboxChange {
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
        new_address_reference: picked(&fields.new_address_reference),
        batch_messages: whole_number(&fields.batch_messages, Field::BatchMessages)?,
        batch_bytes: None,
        max_size: whole_number(&fields.max_size, Field::MaxSize)?,
        oversize: None,
        ca_file: Some(filled(Some(&fields.ca_file))),
        trusted_certificate: Some(filled(Some(&fields.trusted_certificate))),
        allow_insecure_auth: Some(ticked(fields.allow_insecure_auth.as_ref())),
        enabled: Some(ticked(fields.enabled.as_ref())),
        poll_interval_secs: whole_number(&fields.poll_interval_secs, Field::PollInterval)?,
        ..sending_change(fields)?
    };
    oauth_change(fields, &mut change);
    Ok(change)
}

/// The "OAuth2" part as the service's change. Only the fields of the chosen provider
/// are handed over: a preset's endpoints are built in, and a field left over from
/// another choice must not be refused.
fn oauth_change(fields: &MailboxFields, change: &mut MailboxChange) {
    let provider = fields.oauth_provider.trim().to_ascii_lowercase();
    if provider.is_empty() || provider == "none" {
        change.oauth_provider = Some(None);
        return;
    }
    if change.auth_method.as_deref() == Some("auto") {
        // OAuth2 signs in with a token: the service picks XOAUTH2.
        change.auth_method = None;
    }
    match provider.as_str() {
        "microsoft" => change.oauth_tenant = Some(filled(Some(&fields.oauth_tenant))),
        "generic" => {
            change.oauth_issuer = Some(filled(Some(&fields.oauth_issuer)));
            // Blank: found from the issuer (or unchanged).
            for (typed, target) in [
                (&fields.oauth_authorize_url, &mut change.oauth_authorize_url),
                (&fields.oauth_token_url, &mut change.oauth_token_url),
                (&fields.oauth_device_url, &mut change.oauth_device_url),
            ] {
                if let Some(url) = filled(Some(typed)) {
                    *target = Some(Some(url));
                }
            }
        }
        _ => change.oauth_tenant = Some(None),
    }
    change.oauth_provider = Some(Some(provider));
    change.oauth_client_id = Some(fields.oauth_client_id.clone());
    change.oauth_client_secret = (!fields.oauth_client_secret.is_empty())
        .then(|| SecretString::from(fields.oauth_client_secret.clone()));
    let scopes: Vec<String> = fields
        .oauth_scopes
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    change.oauth_scopes = (!scopes.is_empty()).then_some(scopes);
    change.oauth_flow = picked(&fields.oauth_flow);
}

/// The "Sending replies" part as the service's change. A blank address turns sending
/// off and the SMTP fields, prefilled from the provider's preset, are left out: an admin
/// who does not want replies from this mailbox never has to clear them.
fn sending_change(fields: &MailboxFields) -> Result<MailboxChange, (String, String)> {
    let Some(address) = filled(Some(&fields.send_address)) else {
        return Ok(MailboxChange {
            send_address: Some(None),
            ..MailboxChange::default()
        });
    };
    Ok(MailboxChange {
        send_address: Some(Some(address)),
        send_display_name: Some(filled(Some(&fields.send_display_name))),
        smtp_host: Some(fields.smtp_host.clone()),
        smtp_port: whole_number(&fields.smtp_port, Field::SmtpPort)?,
        smtp_tls: picked(&fields.smtp_tls),
        smtp_auth: picked(&fields.smtp_auth),
        smtp_username: Some(filled(Some(&fields.smtp_username))),
        smtp_secret: (!fields.smtp_password.is_empty())
            .then(|| SecretString::from(fields.smtp_password.clone())),
        smtp_allow_insecure_auth: Some(ticked(fields.smtp_allow_insecure_auth.as_ref())),
        acknowledge: Some(ticked(fields.acknowledge.as_ref())),
        ..MailboxChange::default()
    })
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
            form_error(&error, false),
            (
                "“Messages per session” must be between 1 and 100000.".to_string(),
                "batch_messages".to_string()
            )
        );
    }
}
