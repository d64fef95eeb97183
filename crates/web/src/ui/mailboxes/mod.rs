//! Mailboxes (admin): health at a glance, add with a provider preset, edit (with the
//! settings for sending replies), test the connection, test sending, fetch now,
//! enable/disable, delete, and the fetch history.
//!
//! An adapter over [`admin::Administration`], like the API: the form becomes a
//! [`MailboxChange`], the service's refusal a sentence beside the form's field.

use admin::{AdminError, ConnectionReport};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use secrecy::SecretString;
use serde::Deserialize;
use store::Mailbox;

use crate::AppState;
use crate::ui::flash::Flash;
use crate::ui::form::{CheckedForm, EnabledForm, NoFields, PagePath, PageQuery, filled};
use crate::ui::oauth::{DeviceShown, OAuthSummary};
use crate::ui::page::{self, Layout, Section, impl_page};
use crate::ui::presets::{self, Preset};
use crate::ui::viewer::{AdminViewer, Viewer};

mod form;
mod health;

use self::form::{
    FailedTest, MailboxFields, MailboxForm, SendingSummary, SendingTestResult, TestResult,
    certificate_view, change_from, form_error, form_status, refused_status, saved, smtp_own_login,
};
use self::health::{FailingRow, HISTORY, Health, RunRow, health, last_successes};

/// One mailbox in the list.
pub(crate) struct MailboxRow {
    id: i64,
    name: String,
    server: String,
    health: Health,
    /// The OAuth2 provider refused the grant: the row says "Needs reconnecting" with a
    /// Reconnect button.
    needs_reconnecting: bool,
}

/// The content policy of a page whose forms may go to these OAuth2 providers:
/// "Connect" posts to popdesk, which redirects to the provider's authorization page, and
/// browsers hold a form's redirects to the page's `form-action` too.
fn with_form_targets(mut response: Response, origins: &[String]) -> Response {
    if origins.is_empty() {
        return response;
    }
    let mut targets: Vec<&str> = origins.iter().map(String::as_str).collect();
    targets.sort_unstable();
    targets.dedup();
    let policy = crate::ui::PAGE_CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' {}", targets.join(" ")),
    );
    if let Ok(value) = axum::http::HeaderValue::from_str(&policy) {
        response.headers_mut().insert(
            axum::http::HeaderName::from_static("content-security-policy"),
            value,
        );
    }
    response
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
        // One query for every mailbox's count, not one per row.
        let set_aside: std::collections::HashMap<i64, u64> = state
            .store()
            .set_aside_counts()
            .await?
            .into_iter()
            .collect();
        let notices = state.store().all_provider_notices().await?;
        let mut rows = Vec::new();
        let mut origins = Vec::new();
        for mailbox in state.store().mailboxes().await? {
            let needs_reconnecting =
                mailbox.oauth_state == Some(store::OAuthState::NeedsReconnecting);
            if needs_reconnecting
                && let Some(origin) =
                    OAuthSummary::new(&mailbox, &state).and_then(|o| o.authorize_origin)
            {
                origins.push(origin);
            }
            let runs = state.store().runs(mailbox.id, 1).await?;
            let set_aside = set_aside.get(&mailbox.id).copied().unwrap_or(0);
            let notices: Vec<store::ProviderNotice> = notices
                .iter()
                .filter(|n| n.mailbox_id == mailbox.id)
                .cloned()
                .collect();
            rows.push(MailboxRow {
                id: mailbox.id,
                name: mailbox.settings.name.clone(),
                server: format!("{}:{}", mailbox.settings.host, mailbox.settings.port),
                health: health(&state, &mailbox, &runs, &successes, set_aside, &notices).await?,
                needs_reconnecting,
            });
        }
        Ok::<_, store::StoreError>((rows, origins))
    }
    .await;
    match rows {
        Ok((rows, origins)) => with_form_targets(
            page::show(
                &state,
                StatusCode::OK,
                MailboxesPage {
                    layout: Layout::signed_in(&viewer, "Mailboxes", Section::Mailboxes),
                    rows,
                },
            ),
            &origins,
        ),
        Err(error) => page::api_error(&state, Some(&viewer), &error.into()),
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
        let (sentence, field) = form_error(error, smtp_own_login(&fields));
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
    sending: Option<SendingSummary>,
    sending_test: Option<SendingTestResult>,
    form: MailboxForm,
    failing: Vec<FailingRow>,
    /// The OAuth2 connection; None for a password mailbox.
    oauth: Option<OAuthSummary>,
    /// A device code just asked for, to approve at the provider.
    device: Option<DeviceShown>,
}

/// Which test the mailbox page shows the result of, if any.
enum Tested {
    Nothing,
    Connection(Box<TestResult>),
    Sending(SendingTestResult),
    /// Not a test: the device flow's code.
    DeviceCode(DeviceShown),
}

/// The mailbox page with a device code to approve.
pub(crate) async fn device_page(
    state: &AppState,
    viewer: &Viewer,
    mailbox: Mailbox,
    code: crate::api::oauth::DeviceCode,
) -> Response {
    mailbox_page(
        state,
        viewer,
        mailbox,
        Tested::DeviceCode(code.into()),
        None,
        StatusCode::OK,
    )
    .await
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
    tested: Tested,
    form: Option<MailboxForm>,
    status: StatusCode,
) -> Response {
    let (test, sending_test, device) = match tested {
        Tested::Nothing => (None, None, None),
        Tested::Connection(result) => (Some(*result), None, None),
        Tested::Sending(result) => (None, Some(result), None),
        Tested::DeviceCode(code) => (None, None, Some(code)),
    };
    let loaded = async {
        let runs = state.store().runs(mailbox.id, HISTORY).await?;
        let successes = last_successes(state).await?;
        let failing = state.store().failing_messages(mailbox.id).await?;
        let set_aside = failing.iter().filter(|m| m.is_set_aside()).count();
        let set_aside = u64::try_from(set_aside).unwrap_or(u64::MAX);
        let notices = state.store().provider_notices(mailbox.id).await?;
        let health = health(state, &mailbox, &runs, &successes, set_aside, &notices).await?;
        Ok::<_, store::StoreError>((runs, health, failing))
    }
    .await;
    let (runs, health, failing) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return page::api_error(state, Some(viewer), &error.into()),
    };
    let now = state.now();
    let oauth = OAuthSummary::new(&mailbox, state);
    let origins: Vec<String> = oauth
        .as_ref()
        .and_then(|o| o.authorize_origin.clone())
        .into_iter()
        .collect();
    let page = MailboxPage {
        oauth,
        device,
        layout: Layout::signed_in(viewer, mailbox.settings.name.clone(), Section::Mailboxes),
        id: mailbox.id,
        name: mailbox.settings.name.clone(),
        server: format!("{}:{}", mailbox.settings.host, mailbox.settings.port),
        health,
        runs: runs.iter().map(|run| RunRow::new(run, now)).collect(),
        test,
        sending: SendingSummary::new(&mailbox),
        sending_test,
        form: form.unwrap_or_else(|| MailboxForm::edit(&mailbox)),
        failing: failing
            .into_iter()
            .map(|m| FailingRow::new(m, now))
            .collect(),
    };
    with_form_targets(page::show(state, status, page), &origins)
}

pub(crate) async fn show(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
) -> Response {
    match find(&state, &viewer, id).await {
        Ok(mailbox) => {
            mailbox_page(
                &state,
                &viewer,
                mailbox,
                Tested::Nothing,
                None,
                StatusCode::OK,
            )
            .await
        }
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
                form_error(&error, smtp_own_login(&fields))
            }
            Err(error) => return page::api_error(&state, Some(&viewer), &error.into()),
        },
        Err(refused) => refused,
    };
    let form = MailboxForm::edit(&mailbox).refill(&fields, refused.0, refused.1);
    mailbox_page(
        &state,
        &viewer,
        mailbox,
        Tested::Nothing,
        Some(form),
        status,
    )
    .await
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
                Tested::Connection(Box::new(report.into())),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(error) => page::api_error(&state, Some(&viewer), &error.into()),
    }
}

/// "Test sending": connects to the SMTP server, secures the connection, signs in and
/// says QUIT, sending no mail; shows the mailbox page with the result (htmx swaps only
/// the result into the page).
pub(crate) async fn test_sending(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
    CheckedForm(NoFields {}): CheckedForm<NoFields>,
) -> Response {
    let mailbox = match find(&state, &viewer, id).await {
        Ok(mailbox) => mailbox,
        Err(response) => return response,
    };
    let outcome = match state.admin().test_sending(id).await {
        Ok(outcome) => outcome,
        // Sending is not set up (the button is only shown when it is): the sentence.
        Err(error) if error.is_caller_error() => {
            return page::see_other_with(
                &state,
                &format!("/mailboxes/{id}"),
                Flash::failed(form_error(&error, false).0),
            );
        }
        Err(error) => return page::api_error(&state, Some(&viewer), &error.into()),
    };
    let result = SendingTestResult::new(&mailbox, outcome);
    mailbox_page(
        &state,
        &viewer,
        mailbox,
        Tested::Sending(result),
        None,
        StatusCode::OK,
    )
    .await
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
            page::see_other_with(&state, &back, Flash::failed(form_error(&error, false).0))
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
