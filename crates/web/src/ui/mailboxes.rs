//! Mailboxes (admin): health at a glance, add with a provider preset, edit, test the
//! connection, fetch now, enable/disable, delete, and the fetch history.
//!
//! Changes go through the API's handlers (`api::mailboxes`): the same validation, the
//! same scheduler reload, the same "an edit clears needs-attention".

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;
use intake::schedule::{MailboxSchedule, ScheduleState};
use serde::Deserialize;
use store::{FetchRun, Mailbox, Policy, ProcessStatus, RunOutcome, StartMode};

use crate::AppState;
use crate::api::mailboxes::{
    AuthMethod, ConnectionTest, MailboxUpdate, NewMailbox, PolicyName, Start, Tls,
};
use crate::auth::Admin;
use crate::input::{ApiJson, ApiPath};
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
            "Stopped until you fix the error below, or press “Fetch now”".to_string()
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
            .map(|r| match r.counts.listed {
                1 => "1 message on the server at the last successful fetch".to_string(),
                n => format!("{n} messages on the server at the last successful fetch"),
            }),
        error,
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
    ca_file: String,
    #[serde(default)]
    poll_interval_secs: String,
    enabled: Option<String>,
    allow_insecure_auth: Option<String>,
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
    ca_file: String,
    poll_interval_secs: String,
    enabled: bool,
    allow_insecure_auth: bool,
    error: Option<String>,
}

const TLS_CHOICES: [(&str, &str); 3] = [
    ("implicit", "TLS from the start (port 995)"),
    ("starttls", "STARTTLS (port 110)"),
    ("none", "None (unencrypted)"),
];

const AUTH_CHOICES: [(&str, &str); 8] = [
    ("auto", "Automatic (the best the server offers)"),
    ("user", "USER and PASS"),
    ("apop", "APOP"),
    ("plain", "SASL PLAIN"),
    ("login", "SASL LOGIN"),
    ("cram-md5", "CRAM-MD5"),
    ("xoauth2", "XOAUTH2 (OAuth2 access token)"),
    ("oauthbearer", "OAUTHBEARER (OAuth2 access token)"),
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
            auth_method: choices(&AUTH_CHOICES, preset.auth_method),
            policy: choices(&POLICY_CHOICES, "delete"),
            delete_after_days: String::new(),
            start: choices(&START_CHOICES, "all"),
            ca_file: String::new(),
            poll_interval_secs: defaults.poll_interval_secs.to_string(),
            enabled: true,
            allow_insecure_auth: false,
            error: None,
        }
    }

    /// The edit form of a stored mailbox.
    fn edit(mailbox: &Mailbox) -> MailboxForm {
        let s = &mailbox.settings;
        let (policy, days) = match s.policy {
            Policy::Delete => ("delete", None),
            Policy::Keep { delete_after_days } => ("keep", delete_after_days),
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
            auth_method: choices(&AUTH_CHOICES, &s.auth_method.to_ascii_lowercase()),
            policy: choices(&POLICY_CHOICES, policy),
            delete_after_days: days.map(|d| d.to_string()).unwrap_or_default(),
            start: choices(
                &START_CHOICES,
                match s.start {
                    StartMode::All => "all",
                    StartMode::Now => "now",
                },
            ),
            ca_file: s.ca_file.clone().unwrap_or_default(),
            poll_interval_secs: s.poll_interval_secs.to_string(),
            enabled: s.enabled,
            allow_insecure_auth: s.allow_insecure_auth,
            error: None,
        }
    }

    /// The form again with what was posted (not the password) and what was wrong.
    fn refill(mut self, fields: &MailboxFields, error: String) -> MailboxForm {
        self.name = fields.name.clone();
        self.host = fields.host.clone();
        self.port = fields.port.clone();
        self.tls = choices(&TLS_CHOICES, &fields.tls);
        self.username = fields.username.clone();
        self.auth_method = choices(&AUTH_CHOICES, &fields.auth_method);
        self.policy = choices(&POLICY_CHOICES, &fields.policy);
        self.delete_after_days = fields.delete_after_days.clone();
        self.start = choices(&START_CHOICES, &fields.start);
        self.ca_file = fields.ca_file.clone();
        self.poll_interval_secs = fields.poll_interval_secs.clone();
        self.enabled = ticked(fields.enabled.as_ref());
        self.allow_insecure_auth = ticked(fields.allow_insecure_auth.as_ref());
        self.error = Some(error);
        self
    }
}

/// The posted fields as the API's types; a sentence for what does not parse.
struct Parsed {
    tls: Tls,
    port: Option<u16>,
    auth_method: AuthMethod,
    policy: PolicyName,
    delete_after_days: Option<u32>,
    start: Start,
    poll_interval_secs: Option<u32>,
    ca_file: Option<String>,
}

fn parse(fields: &MailboxFields) -> Result<Parsed, String> {
    let tls = match fields.tls.as_str() {
        "" | "implicit" => Tls::Implicit,
        "starttls" => Tls::Starttls,
        "none" => Tls::None,
        _ => return Err("Pick a security from the list.".to_string()),
    };
    let auth_method = match fields.auth_method.as_str() {
        "" | "auto" => AuthMethod::Auto,
        "user" => AuthMethod::User,
        "apop" => AuthMethod::Apop,
        "plain" => AuthMethod::Plain,
        "login" => AuthMethod::Login,
        "cram-md5" => AuthMethod::CramMd5,
        "xoauth2" => AuthMethod::Xoauth2,
        "oauthbearer" => AuthMethod::Oauthbearer,
        _ => return Err("Pick a sign-in method from the list.".to_string()),
    };
    let policy = match fields.policy.as_str() {
        "" | "delete" => PolicyName::Delete,
        "keep" => PolicyName::Keep,
        _ => return Err("Pick what happens after fetching from the list.".to_string()),
    };
    let start = match fields.start.as_str() {
        "" | "all" => Start::All,
        "now" => Start::Now,
        _ => return Err("Pick what the first fetch does from the list.".to_string()),
    };
    let port = match filled(Some(&fields.port)) {
        None => None,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => Some(port),
            _ => return Err("The port must be a number from 1 to 65535.".to_string()),
        },
    };
    let delete_after_days = match filled(Some(&fields.delete_after_days)) {
        None => None,
        Some(_) if policy == PolicyName::Delete => None,
        Some(days) => match days.parse::<u32>() {
            Ok(days) if days > 0 => Some(days),
            _ => {
                return Err(
                    "“Delete kept mail after” must be a number of days, at least 1.".to_string(),
                );
            }
        },
    };
    let poll_interval_secs = match filled(Some(&fields.poll_interval_secs)) {
        None => None,
        Some(secs) => match secs.parse::<u32>() {
            Ok(secs) if (10..=86_400).contains(&secs) => Some(secs),
            _ => {
                return Err(
                    "“Poll every” must be a number of seconds, from 10 to 86400.".to_string(),
                );
            }
        },
    };
    Ok(Parsed {
        tls,
        port,
        auth_method,
        policy,
        delete_after_days,
        start,
        poll_interval_secs,
        ca_file: filled(Some(&fields.ca_file)),
    })
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

/// Adds a mailbox and goes to its page.
pub(crate) async fn create(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    CheckedForm(fields): CheckedForm<MailboxFields>,
) -> Response {
    let preset = presets::find(&fields.preset);
    let again = |error: String, status: StatusCode| {
        let form =
            MailboxForm::new_from(preset.unwrap_or(&presets::GENERIC)).refill(&fields, error);
        page::show(&state, status, new_page(&viewer, preset, Some(form)))
    };
    let parsed = match parse(&fields) {
        Ok(parsed) => parsed,
        Err(error) => return again(error, StatusCode::UNPROCESSABLE_ENTITY),
    };
    let new = NewMailbox {
        name: fields.name.clone(),
        host: fields.host.clone(),
        port: parsed.port,
        tls: Some(parsed.tls),
        username: fields.username.trim().to_string(),
        password: fields.password.clone(),
        auth_method: Some(parsed.auth_method),
        policy: Some(parsed.policy),
        delete_after_days: parsed.delete_after_days,
        start: Some(parsed.start),
        batch_messages: None,
        batch_bytes: None,
        max_size: None,
        oversize: None,
        ca_file: parsed.ca_file,
        allow_insecure_auth: Some(ticked(fields.allow_insecure_auth.as_ref())),
        enabled: Some(ticked(fields.enabled.as_ref())),
        poll_interval_secs: parsed.poll_interval_secs,
    };
    let admin = Admin(viewer.actor.clone());
    match crate::api::mailboxes::create(State(state.clone()), admin, ApiJson(new)).await {
        Ok(answer) => {
            // The API answers 201 with Location: /api/v1/mailboxes/{id}.
            let id = answer
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| l.rsplit('/').next())
                .and_then(|id| id.parse::<i64>().ok());
            let location =
                id.map_or_else(|| "/mailboxes".to_string(), |id| format!("/mailboxes/{id}"));
            page::see_other_with(
                &state,
                &location,
                Flash::done(format!(
                    "Mailbox “{}” added. Test the connection to see that popdesk can sign in.",
                    fields.name.trim()
                )),
            )
        }
        Err(error) if error.status().is_client_error() => {
            again(page::api_message(&error), error.status())
        }
        Err(error) => page::api_error(&state, Some(&viewer), &error),
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
    greeting: String,
    encrypted: &'static str,
    auth_method: String,
    capabilities: Vec<String>,
    messages: String,
    uidl: &'static str,
}

fn yes_no(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    }
}

impl From<ConnectionTest> for TestResult {
    fn from(test: ConnectionTest) -> TestResult {
        TestResult {
            ok: test.ok,
            error: test.error.as_deref().map(crate::ui::display::sentence),
            greeting: test.greeting.unwrap_or_default(),
            encrypted: yes_no(test.encrypted),
            auth_method: test.auth_method.unwrap_or_default(),
            capabilities: test.capabilities,
            messages: match (test.messages, test.size) {
                (Some(1), Some(bytes)) => format!("1 message, {}", size(bytes)),
                (Some(n), Some(bytes)) => format!("{n} messages, {}", size(bytes)),
                (Some(n), None) => format!("{n} messages"),
                _ => String::new(),
            },
            uidl: yes_no(test.has_uidl),
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
}
impl_page!(
    MailboxesPage,
    NewMailboxPage,
    MailboxPage,
    DeleteMailboxPage
);

async fn find(state: &AppState, viewer: &Viewer, id: i64) -> Result<Mailbox, Response> {
    match state.store().mailbox_by_id(id).await {
        Ok(Some(mailbox)) => Ok(mailbox),
        Ok(None) => Err(page::not_found(
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
        Ok::<_, store::StoreError>((runs, health))
    }
    .await;
    let (runs, health) = match loaded {
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

/// Saves the edit form. A blank password keeps the stored one.
pub(crate) async fn update(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
    CheckedForm(fields): CheckedForm<MailboxFields>,
) -> Response {
    let mailbox = match find(&state, &viewer, id).await {
        Ok(mailbox) => mailbox,
        Err(response) => return response,
    };
    let parsed = match parse(&fields) {
        Ok(parsed) => parsed,
        Err(error) => {
            let form = MailboxForm::edit(&mailbox).refill(&fields, error);
            return mailbox_page(
                &state,
                &viewer,
                mailbox,
                None,
                Some(form),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let change = MailboxUpdate {
        name: Some(fields.name.clone()),
        host: Some(fields.host.clone()),
        port: parsed.port,
        tls: Some(parsed.tls),
        username: Some(fields.username.trim().to_string()),
        password: (!fields.password.is_empty()).then(|| fields.password.clone()),
        auth_method: Some(parsed.auth_method),
        policy: Some(parsed.policy),
        delete_after_days: Some(parsed.delete_after_days),
        start: Some(parsed.start),
        ca_file: Some(parsed.ca_file),
        allow_insecure_auth: Some(ticked(fields.allow_insecure_auth.as_ref())),
        enabled: Some(ticked(fields.enabled.as_ref())),
        poll_interval_secs: parsed.poll_interval_secs,
        ..MailboxUpdate::default()
    };
    let admin = Admin(viewer.actor.clone());
    match crate::api::mailboxes::update(State(state.clone()), admin, ApiPath(id), ApiJson(change))
        .await
    {
        Ok(_) => page::see_other_with(
            &state,
            &format!("/mailboxes/{id}"),
            Flash::done("Changes saved."),
        ),
        Err(error) if error.status().is_client_error() => {
            let form = MailboxForm::edit(&mailbox).refill(&fields, page::api_message(&error));
            mailbox_page(&state, &viewer, mailbox, None, Some(form), error.status()).await
        }
        Err(error) => page::api_error(&state, Some(&viewer), &error),
    }
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
    let admin = Admin(viewer.actor.clone());
    match crate::api::mailboxes::test(State(state.clone()), admin, ApiPath(id)).await {
        Ok(found) => {
            mailbox_page(
                &state,
                &viewer,
                mailbox,
                Some(found.0.into()),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(error) => page::api_error(&state, Some(&viewer), &error),
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
    let admin = Admin(viewer.actor.clone());
    match crate::api::mailboxes::fetch_now(State(state.clone()), admin, ApiPath(id)).await {
        Ok(_) => page::see_other_with(&state, &back, Flash::done("Fetch started")),
        Err(error) if error.status() == StatusCode::SERVICE_UNAVAILABLE => {
            page::see_other_with(&state, &back, Flash::failed(page::api_message(&error)))
        }
        Err(error) => page::api_error(&state, Some(&viewer), &error),
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
    let change = MailboxUpdate {
        enabled: Some(enabled),
        ..MailboxUpdate::default()
    };
    let admin = Admin(viewer.actor.clone());
    match crate::api::mailboxes::update(State(state.clone()), admin, ApiPath(id), ApiJson(change))
        .await
    {
        Ok(_) => page::see_other_with(
            &state,
            &format!("/mailboxes/{id}"),
            Flash::done(if enabled {
                "Mailbox enabled: popdesk polls it again."
            } else {
                "Mailbox disabled: popdesk does not poll it until you enable it."
            }),
        ),
        Err(error) => page::api_error(&state, Some(&viewer), &error),
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
    let mailbox = match find(&state, &viewer, id).await {
        Ok(mailbox) => mailbox,
        Err(response) => return response,
    };
    let admin = Admin(viewer.actor.clone());
    match crate::api::mailboxes::remove(State(state.clone()), admin, ApiPath(id)).await {
        Ok(_) => page::see_other_with(
            &state,
            "/mailboxes",
            Flash::done(format!(
                "Mailbox “{}” deleted. Its tickets and stored messages stay.",
                mailbox.settings.name
            )),
        ),
        Err(error) => page::api_error(&state, Some(&viewer), &error),
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
            parse(&fields).err().as_deref(),
            Some("The port must be a number from 1 to 65535.")
        );
        let fields = MailboxFields {
            policy: "keep".into(),
            delete_after_days: "0".into(),
            ..MailboxFields::default()
        };
        assert!(parse(&fields).is_err());
        // Days typed in while "delete" is chosen are dropped, not an error.
        let fields = MailboxFields {
            policy: "delete".into(),
            delete_after_days: "7".into(),
            ..MailboxFields::default()
        };
        assert_eq!(parse(&fields).map(|p| p.delete_after_days), Ok(None));
    }
}
