//! Mailboxes (admin only): create, read, update, delete, test the connection, fetch
//! now, the fetch history. The password or token is write-only: no response carries it.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use intake::schedule::{FetchNowError, MailboxSchedule};
use intake::{SessionOptions, probe, session_plan};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use store::{FetchRun, Mailbox, MailboxSettings, Oversize, Policy, StartMode, TlsMode};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Admin;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::input::{self, ApiJson, ApiPath, ApiQuery};

/// How long "test connection" may take before it is reported as failed: below the
/// request timeout, so the caller gets an answer in words rather than a 408.
const PROBE_TIMEOUT: Duration = Duration::from_secs(45);

/// How the connection is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Tls {
    /// TLS from the first byte (POP3S, port 995).
    Implicit,
    /// Plain connection upgraded with STLS (port 110); fails if the server does not offer it.
    Starttls,
    /// No encryption (only with allow_insecure_auth for password logins).
    None,
}

/// How popdesk logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// The best the server offers.
    Auto,
    User,
    Apop,
    Plain,
    Login,
    CramMd5,
    /// OAuth2 (Gmail, Microsoft 365): the secret is an access token.
    Xoauth2,
    Oauthbearer,
}

impl AuthMethod {
    fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Auto => "auto",
            AuthMethod::User => "user",
            AuthMethod::Apop => "apop",
            AuthMethod::Plain => "plain",
            AuthMethod::Login => "login",
            AuthMethod::CramMd5 => "cram-md5",
            AuthMethod::Xoauth2 => "xoauth2",
            AuthMethod::Oauthbearer => "oauthbearer",
        }
    }

    fn from_stored(stored: &str) -> Option<AuthMethod> {
        serde_json::from_value(serde_json::Value::String(stored.to_ascii_lowercase())).ok()
    }
}

/// What happens to mail on the server once it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyName {
    Delete,
    /// Keep on the server (needs UIDL); optionally delete after delete_after_days.
    Keep,
}

/// What the first run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// Import what is on the server.
    All,
    /// Only mail that arrives from now on.
    Now,
}

/// What happens to mail over max_size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OversizeName {
    /// Store its headers only and keep it on the server.
    Skip,
    /// Download it anyway, marked as too large.
    Download,
}

/// A new mailbox. Only name, host, username and password are required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMailbox {
    #[schema(max_length = 100, pattern = r"\S")]
    pub name: String,
    #[schema(max_length = 253, pattern = r"^[^\s/\x00-\x1f\x7f-\x9f]+$")]
    pub host: String,
    /// Default 995 for implicit TLS, else 110.
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<u16>,
    pub tls: Option<Tls>,
    #[schema(min_length = 1, max_length = 320)]
    pub username: String,
    /// The password, or the OAuth2 access token. Write-only.
    #[schema(min_length = 1, max_length = 16384)]
    pub password: String,
    pub auth_method: Option<AuthMethod>,
    pub policy: Option<PolicyName>,
    /// With the keep policy: delete from the server this many days after storing.
    /// Ignored with the delete policy.
    #[schema(minimum = 1, maximum = 36500)]
    pub delete_after_days: Option<u32>,
    pub start: Option<Start>,
    #[schema(minimum = 1, maximum = 100000)]
    pub batch_messages: Option<u32>,
    #[schema(minimum = 1)]
    pub batch_bytes: Option<u64>,
    #[schema(minimum = 1)]
    pub max_size: Option<u64>,
    pub oversize: Option<OversizeName>,
    /// A PEM file on the server with the CA to trust for this mailbox.
    pub ca_file: Option<String>,
    pub allow_insecure_auth: Option<bool>,
    pub enabled: Option<bool>,
    #[schema(minimum = 10, maximum = 86400)]
    pub poll_interval_secs: Option<u32>,
}

/// Changes to a mailbox: only the fields given change. `delete_after_days` and
/// `ca_file` are cleared with null.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailboxUpdate {
    #[schema(max_length = 100, pattern = r"\S")]
    pub name: Option<String>,
    #[schema(max_length = 253, pattern = r"^[^\s/\x00-\x1f\x7f-\x9f]+$")]
    pub host: Option<String>,
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<u16>,
    pub tls: Option<Tls>,
    #[schema(min_length = 1, max_length = 320)]
    pub username: Option<String>,
    /// A new password or token. Write-only.
    #[schema(min_length = 1, max_length = 16384)]
    pub password: Option<String>,
    pub auth_method: Option<AuthMethod>,
    pub policy: Option<PolicyName>,
    /// With the keep policy: delete from the server this many days after storing
    /// (null: never). Ignored with the delete policy.
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<u32>, nullable, minimum = 1, maximum = 36500)]
    pub delete_after_days: Option<Option<u32>>,
    pub start: Option<Start>,
    #[schema(minimum = 1, maximum = 100000)]
    pub batch_messages: Option<u32>,
    #[schema(minimum = 1)]
    pub batch_bytes: Option<u64>,
    #[schema(minimum = 1)]
    pub max_size: Option<u64>,
    pub oversize: Option<OversizeName>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub ca_file: Option<Option<String>>,
    pub allow_insecure_auth: Option<bool>,
    pub enabled: Option<bool>,
    #[schema(minimum = 10, maximum = 86400)]
    pub poll_interval_secs: Option<u32>,
}

/// A mailbox as the API shows it; never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailboxView {
    pub id: i64,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub username: String,
    /// The stored method; null if this popdesk does not know it.
    pub auth_method: Option<AuthMethod>,
    pub policy: PolicyName,
    pub delete_after_days: Option<u32>,
    pub start: Start,
    pub batch_messages: u32,
    pub batch_bytes: u64,
    pub max_size: u64,
    pub oversize: OversizeName,
    pub ca_file: Option<String>,
    pub allow_insecure_auth: bool,
    pub enabled: bool,
    pub poll_interval_secs: u32,
    /// Why the mailbox needs the admin (a refused login, a bad certificate); null
    /// when it is fine. While set, the scheduler does not poll it.
    pub needs_attention: Option<String>,
    /// Whether the first run is done.
    pub started: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// Where the mailbox stands in the schedule; null when no scheduler runs in this
    /// process or it has not read the mailbox yet.
    #[schema(value_type = Option<Object>)]
    pub schedule: Option<MailboxSchedule>,
}

impl MailboxView {
    fn new(mailbox: Mailbox, schedule: Option<MailboxSchedule>) -> MailboxView {
        let s = mailbox.settings;
        let (policy, delete_after_days) = match s.policy {
            Policy::Delete => (PolicyName::Delete, None),
            Policy::Keep { delete_after_days } => (PolicyName::Keep, delete_after_days),
        };
        MailboxView {
            id: mailbox.id,
            name: s.name,
            host: s.host,
            port: s.port,
            tls: match s.tls {
                TlsMode::Implicit => Tls::Implicit,
                TlsMode::StartTls => Tls::Starttls,
                TlsMode::None => Tls::None,
            },
            username: s.username,
            auth_method: AuthMethod::from_stored(&s.auth_method),
            policy,
            delete_after_days,
            start: match s.start {
                StartMode::All => Start::All,
                StartMode::Now => Start::Now,
            },
            batch_messages: s.batch_messages,
            batch_bytes: s.batch_bytes,
            max_size: s.max_size,
            oversize: match s.oversize {
                Oversize::Skip => OversizeName::Skip,
                Oversize::Download => OversizeName::Download,
            },
            ca_file: s.ca_file,
            allow_insecure_auth: s.allow_insecure_auth,
            enabled: s.enabled,
            poll_interval_secs: s.poll_interval_secs,
            needs_attention: mailbox.needs_attention,
            started: mailbox.started,
            created_at: mailbox.created_at,
            updated_at: mailbox.updated_at,
            schedule,
        }
    }
}

fn view(state: &AppState, mailbox: Mailbox) -> MailboxView {
    let schedule = state.scheduler().and_then(|s| s.status(mailbox.id));
    MailboxView::new(mailbox, schedule)
}

/// The scheduler should read the mailboxes again.
fn reload(state: &AppState) {
    if let Some(scheduler) = state.scheduler() {
        scheduler.reload();
    }
}

async fn find(state: &AppState, id: i64) -> ApiResult<Mailbox> {
    state
        .store()
        .mailbox_by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no mailbox #{id}")))
}

/// The rules of settings, whichever way they were written.
fn check(settings: &MailboxSettings) -> ApiResult<()> {
    let name = settings.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::validation(
            "the mailbox name must be 1 to 100 characters",
        ));
    }
    let host = &settings.host;
    if host.is_empty()
        || host.len() > 253
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(ApiError::validation(
            "the host must be a host name or an IP address, without spaces or slashes",
        ));
    }
    if settings.port == 0 {
        return Err(ApiError::validation("the port must be between 1 and 65535"));
    }
    if settings.username.is_empty() || settings.username.chars().count() > 320 {
        return Err(ApiError::validation(
            "the username must be 1 to 320 characters",
        ));
    }
    if !(1..=100_000).contains(&settings.batch_messages) {
        return Err(ApiError::validation(
            "batch_messages must be between 1 and 100000",
        ));
    }
    if settings.batch_bytes == 0 || settings.max_size == 0 {
        return Err(ApiError::validation(
            "batch_bytes and max_size must be at least 1",
        ));
    }
    if !(10..=86_400).contains(&settings.poll_interval_secs) {
        return Err(ApiError::validation(
            "poll_interval_secs must be between 10 and 86400 (one day)",
        ));
    }
    if let Policy::Keep {
        delete_after_days: Some(days),
    } = settings.policy
        && !(1..=36_500).contains(&days)
    {
        return Err(ApiError::validation(
            "delete_after_days must be between 1 and 36500 (a hundred years)",
        ));
    }
    // The CA file is not checked here: "test connection" reads it and says what is
    // wrong with it, and so does the mailbox's next fetch.
    Ok(())
}

fn check_secret(secret: &str) -> ApiResult<SecretString> {
    if secret.is_empty() || secret.chars().count() > 16 * 1024 {
        return Err(ApiError::validation(
            "the password or token must be 1 to 16384 bytes",
        ));
    }
    Ok(SecretString::from(secret.to_string()))
}

/// The policy; `delete_after_days` means nothing with the delete policy (every message
/// goes as soon as it is stored) and is dropped there, as the response shows.
/// `delete_after_days` as given (checked even where the policy then ignores it, so the
/// API refuses what its schema refuses).
fn check_days(days: Option<u32>) -> ApiResult<Option<u32>> {
    match days {
        Some(days) if !(1..=36_500).contains(&days) => Err(ApiError::validation(
            "delete_after_days must be between 1 and 36500 (a hundred years)",
        )),
        days => Ok(days),
    }
}

fn policy(name: PolicyName, delete_after_days: Option<u32>) -> Policy {
    match name {
        PolicyName::Delete => Policy::Delete,
        PolicyName::Keep => Policy::Keep { delete_after_days },
    }
}

fn tls_mode(tls: Tls) -> TlsMode {
    match tls {
        Tls::Implicit => TlsMode::Implicit,
        Tls::Starttls => TlsMode::StartTls,
        Tls::None => TlsMode::None,
    }
}

/// All mailboxes, by name.
#[utoipa::path(
    get, path = "/api/v1/mailboxes", tag = "mailboxes",
    responses(
        (status = 200, description = "The mailboxes", body = Vec<MailboxView>),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
) -> ApiResult<Json<Vec<MailboxView>>> {
    let mailboxes = state.store().mailboxes().await?;
    Ok(Json(
        mailboxes.into_iter().map(|m| view(&state, m)).collect(),
    ))
}

/// Adds a mailbox; the scheduler picks it up at once.
#[utoipa::path(
    post, path = "/api/v1/mailboxes", tag = "mailboxes",
    request_body = NewMailbox,
    responses(
        (status = 201, description = "The new mailbox", body = MailboxView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site request", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "A setting is not valid", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    ApiJson(new): ApiJson<NewMailbox>,
) -> ApiResult<Response> {
    let tls = new.tls.unwrap_or(Tls::Implicit);
    let defaults = MailboxSettings::default();
    let settings = MailboxSettings {
        name: new.name.trim().to_string(),
        host: new.host.trim().to_string(),
        port: new.port.unwrap_or(match tls {
            Tls::Implicit => 995,
            _ => 110,
        }),
        tls: tls_mode(tls),
        username: new.username,
        auth_method: new
            .auth_method
            .unwrap_or(AuthMethod::Auto)
            .as_str()
            .to_string(),
        policy: policy(
            new.policy.unwrap_or(PolicyName::Delete),
            check_days(new.delete_after_days)?,
        ),
        start: match new.start.unwrap_or(Start::All) {
            Start::All => StartMode::All,
            Start::Now => StartMode::Now,
        },
        batch_messages: new.batch_messages.unwrap_or(defaults.batch_messages),
        batch_bytes: new.batch_bytes.unwrap_or(defaults.batch_bytes),
        max_size: new.max_size.unwrap_or(defaults.max_size),
        oversize: match new.oversize.unwrap_or(OversizeName::Skip) {
            OversizeName::Skip => Oversize::Skip,
            OversizeName::Download => Oversize::Download,
        },
        ca_file: new.ca_file.filter(|path| !path.trim().is_empty()),
        allow_insecure_auth: new.allow_insecure_auth.unwrap_or(false),
        enabled: new.enabled.unwrap_or(true),
        poll_interval_secs: new
            .poll_interval_secs
            .unwrap_or(defaults.poll_interval_secs),
    };
    check(&settings)?;
    let secret = check_secret(&new.password)?;
    let mailbox = state
        .store()
        .add_mailbox(&settings, &secret, state.now())
        .await?;
    reload(&state);
    let location = format!("/api/v1/mailboxes/{}", mailbox.id);
    let mut response = (StatusCode::CREATED, Json(view(&state, mailbox))).into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// One mailbox.
#[utoipa::path(
    get, path = "/api/v1/mailboxes/{id}", tag = "mailboxes",
    params(("id" = i64, Path, description = "The mailbox id")),
    responses(
        (status = 200, description = "The mailbox", body = MailboxView),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such mailbox", body = ErrorBody),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<MailboxView>> {
    let mailbox = find(&state, id).await?;
    Ok(Json(view(&state, mailbox)))
}

/// Changes a mailbox. Any change clears its "needs attention" mark, so the scheduler
/// tries it again (the admin has looked at it).
#[utoipa::path(
    patch, path = "/api/v1/mailboxes/{id}", tag = "mailboxes",
    params(("id" = i64, Path, description = "The mailbox id")),
    request_body = MailboxUpdate,
    responses(
        (status = 200, description = "The mailbox as it is now", body = MailboxView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such mailbox", body = ErrorBody),
        (status = 409, description = "The new name is taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "A setting is not valid", body = ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
    ApiJson(change): ApiJson<MailboxUpdate>,
) -> ApiResult<Json<MailboxView>> {
    let mailbox = find(&state, id).await?;
    let mut s = mailbox.settings;
    if let Some(name) = change.name {
        s.name = name.trim().to_string();
    }
    if let Some(host) = change.host {
        s.host = host.trim().to_string();
    }
    if let Some(tls) = change.tls {
        s.tls = tls_mode(tls);
    }
    if let Some(port) = change.port {
        s.port = port;
    }
    if let Some(username) = change.username {
        s.username = username;
    }
    if let Some(method) = change.auth_method {
        s.auth_method = method.as_str().to_string();
    }
    let (current_policy, current_days) = match s.policy {
        Policy::Delete => (PolicyName::Delete, None),
        Policy::Keep { delete_after_days } => (PolicyName::Keep, delete_after_days),
    };
    let new_policy = change.policy.unwrap_or(current_policy);
    let days = match change.delete_after_days {
        Some(days) => check_days(days)?,
        // Switching to delete drops the keep policy's number of days.
        None if new_policy == PolicyName::Delete => None,
        None => current_days,
    };
    s.policy = policy(new_policy, days);
    if let Some(start) = change.start {
        s.start = match start {
            Start::All => StartMode::All,
            Start::Now => StartMode::Now,
        };
    }
    if let Some(n) = change.batch_messages {
        s.batch_messages = n;
    }
    if let Some(n) = change.batch_bytes {
        s.batch_bytes = n;
    }
    if let Some(n) = change.max_size {
        s.max_size = n;
    }
    if let Some(oversize) = change.oversize {
        s.oversize = match oversize {
            OversizeName::Skip => Oversize::Skip,
            OversizeName::Download => Oversize::Download,
        };
    }
    if let Some(ca_file) = change.ca_file {
        s.ca_file = ca_file.filter(|path| !path.trim().is_empty());
    }
    if let Some(allow) = change.allow_insecure_auth {
        s.allow_insecure_auth = allow;
    }
    if let Some(enabled) = change.enabled {
        s.enabled = enabled;
    }
    if let Some(secs) = change.poll_interval_secs {
        s.poll_interval_secs = secs;
    }
    check(&s)?;
    let secret = change.password.as_deref().map(check_secret).transpose()?;
    let now = state.now();
    state
        .store()
        .update_mailbox(id, &s, secret.as_ref(), now)
        .await?;
    state.store().set_attention(id, None, now).await?;
    reload(&state);
    let mailbox = find(&state, id).await?;
    Ok(Json(view(&state, mailbox)))
}

/// Removes a mailbox with its settings, secret, ledger and fetch history. Its stored
/// messages and tickets stay.
#[utoipa::path(
    delete, path = "/api/v1/mailboxes/{id}", tag = "mailboxes",
    params(("id" = i64, Path, description = "The mailbox id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such mailbox", body = ErrorBody),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    if !state.store().remove_mailbox_by_id(id).await? {
        return Err(ApiError::not_found(format!("there is no mailbox #{id}")));
    }
    reload(&state);
    Ok(StatusCode::NO_CONTENT)
}

/// What "test connection" found: the server as popdesk sees it, or the error in words.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ConnectionTest {
    /// True when popdesk connected and logged in.
    pub ok: bool,
    /// Why not, in words.
    pub error: Option<String>,
    /// The server's greeting.
    pub greeting: Option<String>,
    pub encrypted: Option<bool>,
    /// The login method that was used.
    pub auth_method: Option<String>,
    pub capabilities: Vec<String>,
    /// Messages waiting on the server.
    pub messages: Option<u32>,
    /// Their size in octets.
    pub size: Option<u64>,
    /// Whether the server has UIDL (the keep policy needs it).
    pub has_uidl: Option<bool>,
    pub pipelining: Option<bool>,
}

impl ConnectionTest {
    fn failed(error: String) -> ConnectionTest {
        ConnectionTest {
            ok: false,
            error: Some(error),
            ..ConnectionTest::default()
        }
    }
}

/// Connects and logs in with the stored settings, reads the mailbox's size, and logs
/// out. Changes nothing on the server. A failed login or connection is a 200 with
/// `ok: false` and the reason.
#[utoipa::path(
    post, path = "/api/v1/mailboxes/{id}/test", tag = "mailboxes",
    params(("id" = i64, Path, description = "The mailbox id")),
    responses(
        (status = 200, description = "What the test found", body = ConnectionTest),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such mailbox", body = ErrorBody),
    )
)]
pub async fn test(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ConnectionTest>> {
    let mailbox = find(&state, id).await?;
    let secret = state.store().mailbox_secret(id).await?;
    Ok(Json(
        run_probe(&mailbox.settings, &secret, state.session_options()).await,
    ))
}

async fn run_probe(
    settings: &MailboxSettings,
    secret: &SecretString,
    options: &SessionOptions,
) -> ConnectionTest {
    let plan = match session_plan(settings, secret, options) {
        Ok(plan) => plan,
        Err(error) => return ConnectionTest::failed(error.to_string()),
    };
    match tokio::time::timeout(PROBE_TIMEOUT, probe(&plan)).await {
        Ok(Ok(found)) => ConnectionTest {
            ok: true,
            error: None,
            greeting: Some(found.greeting),
            encrypted: Some(found.encrypted),
            auth_method: Some(found.auth_method.name().to_string()),
            capabilities: found.capabilities,
            messages: Some(found.messages),
            size: Some(found.size),
            has_uidl: Some(found.has_uidl),
            pipelining: Some(found.pipelining),
        },
        Ok(Err(error)) => ConnectionTest::failed(error.to_string()),
        Err(_) => ConnectionTest::failed(format!(
            "the server did not finish answering within {} seconds",
            PROBE_TIMEOUT.as_secs()
        )),
    }
}

/// "Fetch now" was queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct FetchQueued {
    pub mailbox_id: i64,
    /// Where the mailbox stands now (null until the scheduler has read it).
    #[schema(value_type = Option<Object>)]
    pub schedule: Option<MailboxSchedule>,
}

/// Fetches the mailbox out of turn (also one that is stopped on an error or disabled).
/// Answers at once; the run's outcome shows in the mailbox's runs.
#[utoipa::path(
    post, path = "/api/v1/mailboxes/{id}/fetch", tag = "mailboxes",
    params(("id" = i64, Path, description = "The mailbox id")),
    responses(
        (status = 202, description = "The fetch is queued", body = FetchQueued),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such mailbox", body = ErrorBody),
        (status = 503, description = "No scheduler runs in this process", body = ErrorBody),
    )
)]
pub async fn fetch_now(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<(StatusCode, Json<FetchQueued>)> {
    find(&state, id).await?;
    let not_running = || {
        ApiError::unavailable(
            "the scheduler is not running in this popdesk process, so it cannot fetch now; \
             use `popdesk serve`, or `popdesk mailbox fetch` on the command line",
        )
    };
    let scheduler = state.scheduler().ok_or_else(not_running)?;
    match scheduler.fetch_now(id) {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            Json(FetchQueued {
                mailbox_id: id,
                schedule: scheduler.status(id),
            }),
        )),
        Err(FetchNowError::UnknownMailbox(_)) => {
            Err(ApiError::not_found(format!("there is no mailbox #{id}")))
        }
        Err(FetchNowError::NotRunning) => Err(not_running()),
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcomeView {
    Running,
    Success,
    Transient,
    Permanent,
    Interrupted,
    Cancelled,
}

/// One fetch run with its counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    pub id: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub outcome: RunOutcomeView,
    pub error: Option<String>,
    /// Messages the server listed.
    pub listed: u64,
    pub downloaded: u64,
    pub deleted: u64,
    /// Listed messages popdesk already had.
    pub already_known: u64,
    pub too_large: u64,
    pub duplicates: u64,
    /// Octets stored.
    pub bytes: u64,
}

impl From<&FetchRun> for RunView {
    fn from(run: &FetchRun) -> RunView {
        use store::RunOutcome as O;
        RunView {
            id: run.id,
            started_at: run.started_at,
            finished_at: run.finished_at,
            outcome: match run.outcome {
                O::Running => RunOutcomeView::Running,
                O::Success => RunOutcomeView::Success,
                O::Transient => RunOutcomeView::Transient,
                O::Permanent => RunOutcomeView::Permanent,
                O::Interrupted => RunOutcomeView::Interrupted,
                O::Cancelled => RunOutcomeView::Cancelled,
            },
            error: run.error.clone(),
            listed: run.counts.listed,
            downloaded: run.counts.downloaded,
            deleted: run.counts.deleted,
            already_known: run.counts.already_known,
            too_large: run.counts.too_large,
            duplicates: run.counts.duplicates,
            bytes: run.counts.bytes,
        }
    }
}

/// How many runs to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// 1 to 500 (default 20).
    #[serde(default, deserialize_with = "input::parsed")]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// The mailbox's fetch runs, newest first.
#[utoipa::path(
    get, path = "/api/v1/mailboxes/{id}/runs", tag = "mailboxes",
    params(("id" = i64, Path, description = "The mailbox id"), RunQuery),
    responses(
        (status = 200, description = "Runs, newest first", body = Vec<RunView>),
        (status = 400, description = "The id or limit is not valid", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such mailbox", body = ErrorBody),
    )
)]
pub async fn runs(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<RunQuery>,
) -> ApiResult<Json<Vec<RunView>>> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 500"));
    }
    find(&state, id).await?;
    let runs = state.store().runs(id, limit).await?;
    Ok(Json(runs.iter().map(RunView::from).collect()))
}
