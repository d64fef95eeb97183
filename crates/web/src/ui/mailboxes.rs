//! Mailboxes (admin): health at a glance, add with a provider preset, edit, test the
//! connection, fetch now, enable/disable, delete, and the fetch history.
//!
//! An adapter over [`admin::Administration`], like the API: the form becomes a
//! [`MailboxChange`], the service's refusal a sentence beside the form's field.

use std::collections::HashMap;

use admin::{AdminError, ConnectionReport, Field, MailboxChange};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use intake::schedule::{MailboxSchedule, ScheduleState};
use secrecy::SecretString;
use serde::Deserialize;
use store::{AuthMethod, FetchRun, Mailbox, Policy, ProcessStatus, RunOutcome};

use crate::AppState;
use crate::ui::display::{When, ago, duration, size};
use crate::ui::flash::Flash;
use crate::ui::form::{
    CheckedForm, Choice, EnabledForm, NoFields, PagePath, PageQuery, filled, ticked,
};
use crate::ui::page::{self, Layout, Section, impl_page};
use crate::ui::presets::{self, Preset};
use crate::ui::viewer::{AdminViewer, Viewer};

/// Past this many messages waiting for processing, the page says "at least" (the
/// store lists them rather than counting, so the number is kept small).
const BACKLOG_SHOWN: u32 = 100;

/// Fetch runs shown on a mailbox's page.
const HISTORY: u32 = 20;

/// A mailbox's health, in words.
pub(crate) struct Health {
    enabled: bool,
    /// Enabled, but not polled until the admin fixes what a permanent error says: the
    /// badge must not read "Enabled" beside "Stopped".
    stopped: bool,
    /// What the scheduler is doing: "Waiting: next poll in 1 minute", ...
    state: String,
    last_poll: Option<When>,
    last_success: Option<When>,
    /// Stored messages of this mailbox not yet made into tickets.
    backlog: String,
    /// What the server listed at the last successful fetch (a refused login lists
    /// nothing, which says nothing about the server).
    on_server: Option<String>,
    /// "1 message cannot be downloaded", when the server holds messages set aside.
    set_aside: Option<String>,
    /// Why mail is not coming in, in words: what needs the admin, or the last error.
    error: Option<String>,
}

fn schedule_state(schedule: Option<&MailboxSchedule>, enabled: bool, now: i64) -> String {
    let Some(schedule) = schedule else {
        return if enabled {
            "Not scheduled: no scheduler runs in this popdesk process".to_string()
        } else {
            "Disabled: not polled".to_string()
        };
    };
    match &schedule.state {
        ScheduleState::Waiting => match schedule.next_poll_at {
            Some(at) => format!("Waiting: next poll {}", ago(now - at)),
            None => "Waiting".to_string(),
        },
        ScheduleState::Running => "Fetching now".to_string(),
        ScheduleState::BackingOff { until } => {
            let when = When::new(*until, now);
            format!(
                "Backing off after errors until {} ({})",
                when.text, when.ago
            )
        }
        ScheduleState::Stopped { .. } => {
            "Stopped until you fix the error shown for this mailbox, or press “Fetch now”"
                .to_string()
        }
        ScheduleState::Disabled => "Disabled: not polled".to_string(),
    }
}

/// When each mailbox last fetched successfully, by the store's fetch history (the
/// scheduler knows it too, but only for the mailboxes it has run since it started).
async fn last_successes(state: &AppState) -> Result<HashMap<i64, i64>, store::StoreError> {
    Ok(state
        .store()
        .last_success_by_mailbox()
        .await?
        .into_iter()
        .collect())
}

/// The health of a mailbox from the store and the scheduler. `runs` are its newest
/// runs, newest first.
async fn health(
    state: &AppState,
    mailbox: &Mailbox,
    runs: &[FetchRun],
    last_successes: &HashMap<i64, i64>,
) -> Result<Health, store::StoreError> {
    let now = state.now();
    let schedule = state.scheduler().and_then(|s| s.status(mailbox.id));
    let last_run = runs.first();
    let last_success = schedule
        .as_ref()
        .and_then(|s| s.last_success_at)
        .or_else(|| last_successes.get(&mailbox.id).copied());
    let last_poll = schedule
        .as_ref()
        .and_then(|s| s.last_poll_at)
        .or(last_run.map(|r| r.started_at));
    let waiting = state
        .store()
        .raw_messages_with_status(
            Some(ProcessStatus::Pending),
            Some(mailbox.id),
            BACKLOG_SHOWN,
        )
        .await?
        .len();
    let backlog = match waiting {
        0 => "None waiting to be made into tickets".to_string(),
        1 => "1 message waiting to be made into a ticket".to_string(),
        n if n >= usize::try_from(BACKLOG_SHOWN).unwrap_or(usize::MAX) => {
            format!("At least {n} messages waiting to be made into tickets")
        }
        n => format!("{n} messages waiting to be made into tickets"),
    };
    let failed_run_error = last_run
        .filter(|r| !matches!(r.outcome, RunOutcome::Success | RunOutcome::Running))
        .and_then(|r| r.error.clone());
    let error = mailbox
        .needs_attention
        .clone()
        .or_else(|| schedule.as_ref().and_then(|s| s.last_error.clone()))
        .or(failed_run_error)
        .map(|e| crate::ui::display::sentence(&e));
    Ok(Health {
        enabled: mailbox.settings.enabled,
        stopped: mailbox.needs_attention.is_some()
            || matches!(
                schedule.as_ref().map(|s| &s.state),
                Some(ScheduleState::Stopped { .. })
            ),
        state: schedule_state(schedule.as_ref(), mailbox.settings.enabled, now),
        last_poll: last_poll.map(|at| When::new(at, now)),
        last_success: last_success.map(|at| When::new(at, now)),
        backlog,
        on_server: runs
            .iter()
            .find(|r| r.outcome == RunOutcome::Success)
            .map(|r| {
                // What the server holds now is what it listed less what that run deleted
                // (mail that arrived since is not known until the next fetch).
                let left = r.counts.listed.saturating_sub(r.counts.deleted);
                let left = match left {
                    1 => "1 message".to_string(),
                    n => format!("{n} messages"),
                };
                format!(
                    "{left} after the last successful fetch, which downloaded {} and deleted {}",
                    r.counts.downloaded, r.counts.deleted
                )
            }),
        error,
        set_aside: match state.store().set_aside_count(mailbox.id).await? {
            0 => None,
            1 => Some("1 message cannot be downloaded".to_string()),
            n => Some(format!("{n} messages cannot be downloaded")),
        },
    })
}

/// One mailbox in the list.
pub(crate) struct MailboxRow {
    id: i64,
    name: String,
    server: String,
    health: Health,
}

#[derive(Template, WebTemplate)]
#[template(path = "mailboxes.html")]
pub(crate) struct MailboxesPage {
    layout: Layout,
    rows: Vec<MailboxRow>,
}

/// Every mailbox with its health.
pub(crate) async fn list(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
) -> Response {
    let rows = async {
        let successes = last_successes(&state).await?;
        let mut rows = Vec::new();
        for mailbox in state.store().mailboxes().await? {
            let runs = state.store().runs(mailbox.id, 1).await?;
            rows.push(MailboxRow {
                id: mailbox.id,
                name: mailbox.settings.name.clone(),
                server: format!("{}:{}", mailbox.settings.host, mailbox.settings.port),
                health: health(&state, &mailbox, &runs, &successes).await?,
            });
        }
        Ok::<_, store::StoreError>(rows)
    }
    .await;
    match rows {
        Ok(rows) => page::show(
            &state,
            StatusCode::OK,
            MailboxesPage {
                layout: Layout::signed_in(&viewer, "Mailboxes", Section::Mailboxes),
                rows,
            },
        ),
        Err(error) => page::api_error(&state, Some(&viewer), &error.into()),
    }
}

/// The mailbox form's fields as posted (all text: numbers are parsed here, so a typo
/// comes back as a sentence beside the form).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct MailboxFields {
    #[serde(default)]
    preset: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    tls: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    auth_method: String,
    #[serde(default)]
    policy: String,
    #[serde(default)]
    delete_after_days: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    batch_messages: String,
    #[serde(default)]
    max_size: String,
    #[serde(default)]
    ca_file: String,
    #[serde(default)]
    trusted_certificate: String,
    #[serde(default)]
    poll_interval_secs: String,
    enabled: Option<String>,
    allow_insecure_auth: Option<String>,
    /// After a failed connection test: "disabled" saves the mailbox disabled, "enabled"
    /// saves it and lets the scheduler keep trying.
    #[serde(default)]
    save_anyway: String,
    /// "Trust this certificate" on the add form: the fingerprint the test showed.
    #[serde(default)]
    trust_fingerprint: String,
}

/// The form's values, as the template shows them. Never the password.
pub(crate) struct MailboxForm {
    action: String,
    submit: &'static str,
    preset: String,
    /// New mailboxes need a password; on edit, blank keeps the stored one.
    password_required: bool,
    name: String,
    host: String,
    port: String,
    tls: Vec<Choice>,
    username: String,
    username_hint: String,
    auth_method: Vec<Choice>,
    policy: Vec<Choice>,
    delete_after_days: String,
    start: Vec<Choice>,
    batch_messages: String,
    max_size: String,
    ca_file: String,
    trusted_certificate: String,
    poll_interval_secs: String,
    enabled: bool,
    allow_insecure_auth: bool,
    /// What is wrong, in the page's words.
    error: Option<String>,
    /// The id of the input the error is about, to mark it and link to it.
    error_field: String,
    /// A failed connection test of a new mailbox: its technical detail, and the
    /// "Save anyway" choices.
    test_failed: Option<FailedTest>,
}

/// A new mailbox's connection test failed: what to show beside "Save anyway".
pub(crate) struct FailedTest {
    detail: String,
    certificate: Option<CertificateView>,
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
    fn new_from(preset: &Preset) -> MailboxForm {
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
    fn edit(mailbox: &Mailbox) -> MailboxForm {
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
    fn refill(mut self, fields: &MailboxFields, error: String, error_field: String) -> MailboxForm {
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
fn change_from(fields: &MailboxFields, editing: bool) -> Result<MailboxChange, (String, String)> {
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
    })
}

/// Whether htmx sent the request (it swaps the answer into the page in place, so the
/// password input is never re-rendered and the admin types it once).
fn from_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// A form shown again: 422 for a plain post; 200 for htmx, which swaps only 2xx answers.
fn form_status(headers: &HeaderMap) -> StatusCode {
    refused_status(headers, None)
}

/// The status of a form shown again because of this refusal (409 for a taken name).
fn refused_status(headers: &HeaderMap, error: Option<&AdminError>) -> StatusCode {
    match error {
        _ if from_htmx(headers) => StatusCode::OK,
        Some(AdminError::MailboxNameTaken(_)) => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// After a saved form: 303 for a plain post, a whole-page load for htmx.
fn saved(state: &AppState, headers: &HeaderMap, location: &str, flash: Flash) -> Response {
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

#[derive(Template, WebTemplate)]
#[template(path = "mailbox_new.html")]
pub(crate) struct NewMailboxPage {
    layout: Layout,
    presets: Vec<&'static Preset>,
    preset: Option<&'static Preset>,
    form: MailboxForm,
}

impl NewMailboxPage {
    /// Whether the preset button `key` is the one chosen.
    fn is_current(&self, key: &str) -> bool {
        self.preset.is_some_and(|preset| preset.key == key)
    }
}

#[derive(Deserialize)]
pub(crate) struct PresetQuery {
    preset: Option<String>,
}

fn new_page(
    viewer: &Viewer,
    preset: Option<&'static Preset>,
    form: Option<MailboxForm>,
) -> NewMailboxPage {
    NewMailboxPage {
        layout: Layout::signed_in(viewer, "Add a mailbox", Section::Mailboxes),
        presets: presets::ALL.to_vec(),
        preset,
        form: form.unwrap_or_else(|| MailboxForm::new_from(preset.unwrap_or(&presets::GENERIC))),
    }
}

/// The choice of presets, or the form prefilled from one.
pub(crate) async fn new_form(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PageQuery(query): PageQuery<PresetQuery>,
) -> Response {
    let preset = query.preset.as_deref().and_then(presets::find);
    page::show(&state, StatusCode::OK, new_page(&viewer, preset, None))
}

/// Adds a mailbox and goes to its page. The connection is tested first; when the test
/// fails the form comes back with the reason and the choice to save it anyway, disabled
/// or still trying.
pub(crate) async fn create(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    headers: HeaderMap,
    CheckedForm(fields): CheckedForm<MailboxFields>,
) -> Response {
    let preset = presets::find(&fields.preset);
    let again = |error: String, error_field: String, failed: Option<FailedTest>| {
        let mut form = MailboxForm::new_from(preset.unwrap_or(&presets::GENERIC)).refill(
            &fields,
            error,
            error_field,
        );
        form.test_failed = failed;
        page::show(
            &state,
            form_status(&headers),
            new_page(&viewer, preset, Some(form)),
        )
    };
    let refused = |error: &AdminError| {
        let (sentence, field) = form_error(error);
        let form = MailboxForm::new_from(preset.unwrap_or(&presets::GENERIC))
            .refill(&fields, sentence, field);
        page::show(
            &state,
            refused_status(&headers, Some(error)),
            new_page(&viewer, preset, Some(form)),
        )
    };
    let mut change = match change_from(&fields, false) {
        Ok(change) => change,
        Err((error, field)) => return again(error, field, None),
    };
    if let Some(pin) = filled(Some(&fields.trust_fingerprint)) {
        change.trusted_certificate = Some(Some(pin));
    }
    let admin = state.admin();
    let tested = match fields.save_anyway.as_str() {
        "disabled" => {
            change.enabled = Some(false);
            None
        }
        "enabled" => None,
        _ => match admin.test_new_mailbox(&change).await {
            Ok(report) => Some(report),
            Err(error) if error.is_caller_error() => return refused(&error),
            Err(error) => return page::api_error(&state, Some(&viewer), &error.into()),
        },
    };
    if let Some(ConnectionReport::Failed(problem)) = &tested {
        let failed = FailedTest {
            detail: problem.detail.clone(),
            certificate: certificate_view(problem),
        };
        return again(
            format!("The connection test failed: {}", problem.summary),
            String::new(),
            Some(failed),
        );
    }
    match admin.create_mailbox(&change).await {
        Ok(mailbox) => {
            let note = match (&tested, mailbox.settings.enabled) {
                (Some(ConnectionReport::Connected(found)), _) => format!(
                    "Mailbox “{}” added: popdesk signed in and found {} on the server.",
                    mailbox.settings.name,
                    match found.messages {
                        1 => "1 message".to_string(),
                        n => format!("{n} messages"),
                    }
                ),
                (_, false) => format!(
                    "Mailbox “{}” saved, disabled: enable it once the connection test passes.",
                    mailbox.settings.name
                ),
                (_, true) => format!(
                    "Mailbox “{}” saved: popdesk keeps trying and shows what goes wrong on this page.",
                    mailbox.settings.name
                ),
            };
            saved(
                &state,
                &headers,
                &format!("/mailboxes/{}", mailbox.id),
                Flash::done(note),
            )
        }
        Err(error) if error.is_caller_error() => refused(&error),
        Err(error) => page::api_error(&state, Some(&viewer), &error.into()),
    }
}

/// One row of the fetch history.
pub(crate) struct RunRow {
    started: When,
    duration: String,
    outcome: &'static str,
    outcome_class: &'static str,
    listed: u64,
    downloaded: u64,
    deleted: u64,
    error: String,
}

impl RunRow {
    fn new(run: &FetchRun, now: i64) -> RunRow {
        let (outcome, outcome_class) = match run.outcome {
            RunOutcome::Running => ("Running", "running"),
            RunOutcome::Success => ("Success", "ok"),
            RunOutcome::Transient => ("Failed, retried later", "warn"),
            RunOutcome::Permanent => ("Failed, needs you", "bad"),
            RunOutcome::Interrupted => ("Interrupted", "warn"),
            RunOutcome::Cancelled => ("Cancelled at shutdown", "warn"),
        };
        RunRow {
            started: When::new(run.started_at, now),
            duration: run
                .finished_at
                .map(|end| duration(end - run.started_at))
                .unwrap_or_default(),
            outcome,
            outcome_class,
            listed: run.counts.listed,
            downloaded: run.counts.downloaded,
            deleted: run.counts.deleted,
            error: run
                .error
                .as_deref()
                .map(crate::ui::display::sentence)
                .unwrap_or_default(),
        }
    }
}

/// What "Test connection" found, as the page shows it.
pub(crate) struct TestResult {
    ok: bool,
    error: Option<String>,
    detail: String,
    certificate: Option<CertificateView>,
    greeting: String,
    encrypted: &'static str,
    auth_method: String,
    capabilities: Vec<String>,
    messages: String,
    uidl: &'static str,
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// The certificate a failed test met, for "Trust this certificate".
fn certificate_view(problem: &admin::ConnectionProblem) -> Option<CertificateView> {
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

#[derive(Template, WebTemplate)]
#[template(path = "mailbox.html")]
pub(crate) struct MailboxPage {
    layout: Layout,
    id: i64,
    name: String,
    server: String,
    health: Health,
    runs: Vec<RunRow>,
    test: Option<TestResult>,
    form: MailboxForm,
    failing: Vec<FailingRow>,
}

/// A message on the server that could not be downloaded, as the mailbox page lists it.
pub(crate) struct FailingRow {
    uid: String,
    size: String,
    headers: Option<String>,
    set_aside: bool,
    retry_once: bool,
    attempts: Vec<(When, String)>,
}

impl FailingRow {
    fn new(message: store::FailingMessage, now: i64) -> FailingRow {
        FailingRow {
            set_aside: message.is_set_aside(),
            uid: message.uid,
            size: size(message.size),
            headers: message.headers,
            retry_once: message.retry_once,
            attempts: message
                .attempts
                .into_iter()
                .map(|a| (When::new(a.at, now), crate::ui::display::sentence(&a.error)))
                .collect(),
        }
    }
}
impl_page!(
    MailboxesPage,
    NewMailboxPage,
    MailboxPage,
    DeleteMailboxPage
);

async fn find(state: &AppState, viewer: &Viewer, id: i64) -> Result<Mailbox, Response> {
    match state.admin().mailbox(id).await {
        Ok(mailbox) => Ok(mailbox),
        Err(AdminError::MailboxNotFound(_)) => Err(page::not_found(
            state,
            Some(viewer),
            format!("There is no mailbox #{id}. It may have been deleted."),
        )),
        Err(error) => Err(page::api_error(state, Some(viewer), &error.into())),
    }
}

/// The mailbox page: with a test result, or the edit form as posted.
async fn mailbox_page(
    state: &AppState,
    viewer: &Viewer,
    mailbox: Mailbox,
    test: Option<TestResult>,
    form: Option<MailboxForm>,
    status: StatusCode,
) -> Response {
    let loaded = async {
        let runs = state.store().runs(mailbox.id, HISTORY).await?;
        let successes = last_successes(state).await?;
        let health = health(state, &mailbox, &runs, &successes).await?;
        let failing = state.store().failing_messages(mailbox.id).await?;
        Ok::<_, store::StoreError>((runs, health, failing))
    }
    .await;
    let (runs, health, failing) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return page::api_error(state, Some(viewer), &error.into()),
    };
    let now = state.now();
    let page = MailboxPage {
        layout: Layout::signed_in(viewer, mailbox.settings.name.clone(), Section::Mailboxes),
        id: mailbox.id,
        name: mailbox.settings.name.clone(),
        server: format!("{}:{}", mailbox.settings.host, mailbox.settings.port),
        health,
        runs: runs.iter().map(|run| RunRow::new(run, now)).collect(),
        test,
        form: form.unwrap_or_else(|| MailboxForm::edit(&mailbox)),
        failing: failing
            .into_iter()
            .map(|m| FailingRow::new(m, now))
            .collect(),
    };
    page::show(state, status, page)
}

pub(crate) async fn show(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
) -> Response {
    match find(&state, &viewer, id).await {
        Ok(mailbox) => mailbox_page(&state, &viewer, mailbox, None, None, StatusCode::OK).await,
        Err(response) => response,
    }
}

/// Saves the edit form. A blank password keeps the stored one, unless the change would
/// send it somewhere new (the secret rule).
pub(crate) async fn update(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
    headers: HeaderMap,
    CheckedForm(fields): CheckedForm<MailboxFields>,
) -> Response {
    let mailbox = match find(&state, &viewer, id).await {
        Ok(mailbox) => mailbox,
        Err(response) => return response,
    };
    let mut status = form_status(&headers);
    let refused = match change_from(&fields, true) {
        Ok(change) => match state.admin().update_mailbox(id, &change).await {
            Ok(_) => {
                return saved(
                    &state,
                    &headers,
                    &format!("/mailboxes/{id}"),
                    Flash::done("Changes saved."),
                );
            }
            Err(error) if error.is_caller_error() => {
                status = refused_status(&headers, Some(&error));
                form_error(&error)
            }
            Err(error) => return page::api_error(&state, Some(&viewer), &error.into()),
        },
        Err(refused) => refused,
    };
    let form = MailboxForm::edit(&mailbox).refill(&fields, refused.0, refused.1);
    mailbox_page(&state, &viewer, mailbox, None, Some(form), status).await
}

/// Connects, signs in and reads the mailbox's size, changing nothing; shows the mailbox
/// page with the result (htmx swaps only the result into the page).
pub(crate) async fn test(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
    CheckedForm(NoFields {}): CheckedForm<NoFields>,
) -> Response {
    let mailbox = match find(&state, &viewer, id).await {
        Ok(mailbox) => mailbox,
        Err(response) => return response,
    };
    match state.admin().test_mailbox(id).await {
        Ok(report) => {
            mailbox_page(
                &state,
                &viewer,
                mailbox,
                Some(report.into()),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(error) => page::api_error(&state, Some(&viewer), &error.into()),
    }
}

/// "Fetch now" through the scheduler.
pub(crate) async fn fetch(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
    CheckedForm(NoFields {}): CheckedForm<NoFields>,
) -> Response {
    let back = format!("/mailboxes/{id}");
    match state.admin().fetch_now(id).await {
        Ok(()) => page::see_other_with(&state, &back, Flash::done("Fetch started")),
        Err(error @ AdminError::SchedulerNotRunning) => page::see_other_with(
            &state,
            &back,
            Flash::failed(crate::ui::display::sentence(&error.to_string())),
        ),
        Err(error) => page::api_error(&state, Some(&viewer), &error.into()),
    }
}

/// Turns scheduled fetching on or off.
pub(crate) async fn set_enabled(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
    CheckedForm(form): CheckedForm<EnabledForm>,
) -> Response {
    let enabled = match form.enabled(&state, &viewer) {
        Ok(enabled) => enabled,
        Err(page) => return page,
    };
    match state.admin().set_mailbox_enabled(id, enabled).await {
        Ok(_) => page::see_other_with(
            &state,
            &format!("/mailboxes/{id}"),
            Flash::done(if enabled {
                "Mailbox enabled: popdesk polls it again."
            } else {
                "Mailbox disabled: popdesk does not poll it until you enable it."
            }),
        ),
        Err(error) => page::api_error(&state, Some(&viewer), &error.into()),
    }
}

/// "Try again" on a set-aside message.
#[derive(Debug, Deserialize)]
pub(crate) struct TryAgainFields {
    uid: String,
}

/// Asks for a set-aside message to be retrieved once more (the server was fixed).
pub(crate) async fn try_again(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
    CheckedForm(fields): CheckedForm<TryAgainFields>,
) -> Response {
    let back = format!("/mailboxes/{id}");
    match state.admin().try_set_aside_again(id, &fields.uid).await {
        Ok(()) => page::see_other_with(
            &state,
            &back,
            Flash::done("popdesk tries that message again at the next fetch."),
        ),
        Err(error @ AdminError::SetAsideNotFound { .. }) => page::see_other_with(
            &state,
            &back,
            Flash::failed(crate::ui::display::sentence(&error.to_string())),
        ),
        Err(error) => page::api_error(&state, Some(&viewer), &error.into()),
    }
}

/// "Trust this certificate": the fingerprint the test showed, and the password again
/// (what is trusted decides where the password goes: the secret rule).
#[derive(Debug, Deserialize)]
pub(crate) struct TrustFields {
    fingerprint: String,
    #[serde(default)]
    password: String,
}

/// Pins the certificate the server presented.
pub(crate) async fn trust(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
    CheckedForm(fields): CheckedForm<TrustFields>,
) -> Response {
    let back = format!("/mailboxes/{id}");
    let secret = (!fields.password.is_empty()).then(|| SecretString::from(fields.password));
    match state
        .admin()
        .trust_certificate(id, &fields.fingerprint, secret)
        .await
    {
        Ok(_) => page::see_other_with(
            &state,
            &back,
            Flash::done("Certificate trusted. Test the connection again to check."),
        ),
        Err(error) if error.is_caller_error() => {
            page::see_other_with(&state, &back, Flash::failed(form_error(&error).0))
        }
        Err(error) => page::api_error(&state, Some(&viewer), &error.into()),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "mailbox_delete.html")]
pub(crate) struct DeleteMailboxPage {
    layout: Layout,
    id: i64,
    name: String,
}

/// Asks before deleting (a page, so it works without JavaScript).
pub(crate) async fn confirm_delete(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
) -> Response {
    match find(&state, &viewer, id).await {
        Ok(mailbox) => page::show(
            &state,
            StatusCode::OK,
            DeleteMailboxPage {
                layout: Layout::signed_in(&viewer, "Delete mailbox", Section::Mailboxes),
                id,
                name: mailbox.settings.name,
            },
        ),
        Err(response) => response,
    }
}

/// Deletes the mailbox (its settings, secret, ledger and history; tickets stay).
pub(crate) async fn delete(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
    CheckedForm(NoFields {}): CheckedForm<NoFields>,
) -> Response {
    match state.admin().remove_mailbox(id).await {
        Ok(mailbox) => page::see_other_with(
            &state,
            "/mailboxes",
            Flash::done(format!(
                "Mailbox “{}” deleted. Its tickets and stored messages stay.",
                mailbox.settings.name
            )),
        ),
        Err(AdminError::MailboxNotFound(_)) => page::not_found(
            &state,
            Some(&viewer),
            format!("There is no mailbox #{id}. It may have been deleted."),
        ),
        Err(error) => page::api_error(&state, Some(&viewer), &error.into()),
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
