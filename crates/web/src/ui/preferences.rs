//! The viewer's own preferences page: the time zone times are shown in, which
//! notifications by mail they get, and changing their password. The rules are the
//! API's (`api::preferences`, `api::session::change_password`), called as functions.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use std::collections::HashMap;

use crate::AppState;
use crate::api::preferences::{PreferencesChange, change_preferences};
use crate::api::session::PasswordChange;
use crate::auth::{Credential, SignedIn};
use crate::input::{ApiJson, ClientIp};
use crate::time_zone::known_names;
use crate::ui::flash::Flash;
use crate::ui::form::{CheckedForm, ticked};
use crate::ui::page::{self, Layout, Section, impl_page};
use crate::ui::viewer::Viewer;

#[derive(Template, WebTemplate)]
#[template(path = "preferences.html")]
pub(crate) struct PreferencesPage {
    layout: Layout,
    email: String,
    zones: Vec<String>,
    time_zone: String,
    notify_new_ticket: bool,
    notify_customer_reply: bool,
    notify_assigned: bool,
    /// Whether any mailbox sends mail (notifications go out through them).
    can_send: bool,
    error: Option<String>,
    password_error: Option<String>,
}
impl_page!(PreferencesPage);

/// The form's errors, shown beside the form they belong to.
#[derive(Default)]
struct Errors {
    preferences: Option<String>,
    password: Option<String>,
}

/// The signed-in user behind the page; an API token has no preferences.
fn signed_in(viewer: &Viewer) -> Option<SignedIn> {
    match &viewer.actor.credential {
        Credential::Session { user, token_hash } => Some(SignedIn {
            user: user.clone(),
            token_hash: token_hash.clone(),
        }),
        Credential::Token(_) => None,
    }
}

fn no_user(state: &AppState, viewer: &Viewer) -> Response {
    page::forbidden(
        state,
        Some(viewer),
        "An API token has no preferences: sign in as a user to set yours.",
    )
}

async fn preferences_page(
    state: &AppState,
    viewer: &Viewer,
    errors: Errors,
    status: StatusCode,
) -> Response {
    let Some(me) = signed_in(viewer) else {
        return no_user(state, viewer);
    };
    let preferences = match state.store().preferences(me.user.id).await {
        Ok(preferences) => preferences,
        Err(error) => return page::api_error(state, Some(viewer), &error.into()),
    };
    let can_send = match state.store().mailboxes().await {
        Ok(mailboxes) => mailboxes.iter().any(|m| m.settings.sending.is_some()),
        Err(error) => return page::api_error(state, Some(viewer), &error.into()),
    };
    page::show(
        state,
        status,
        PreferencesPage {
            layout: Layout::signed_in(viewer, "Preferences", Section::Preferences),
            email: me.user.email,
            zones: known_names(),
            time_zone: preferences.time_zone,
            notify_new_ticket: preferences.notify_new_ticket,
            notify_customer_reply: preferences.notify_customer_reply,
            notify_assigned: preferences.notify_assigned,
            can_send,
            error: errors.preferences,
            password_error: errors.password,
        },
    )
}

pub(crate) async fn show(State(state): State<AppState>, viewer: Viewer) -> Response {
    preferences_page(&state, &viewer, Errors::default(), StatusCode::OK).await
}

/// Saves the preferences form. Checkboxes are sent only when ticked, so the fields come
/// as a map: an unticked box is "off", not "unchanged".
pub(crate) async fn save(
    State(state): State<AppState>,
    viewer: Viewer,
    CheckedForm(fields): CheckedForm<HashMap<String, String>>,
) -> Response {
    let Some(me) = signed_in(&viewer) else {
        return no_user(&state, &viewer);
    };
    let change = PreferencesChange {
        time_zone: fields.get("time_zone").cloned(),
        notify_new_ticket: Some(ticked(fields.get("notify_new_ticket"))),
        notify_customer_reply: Some(ticked(fields.get("notify_customer_reply"))),
        notify_assigned: Some(ticked(fields.get("notify_assigned"))),
    };
    match change_preferences(&state, me.user.id, change).await {
        Ok(_) => page::see_other_with(
            &state,
            "/preferences",
            Flash::done("Your preferences are saved."),
        ),
        Err(error) if error.status().is_client_error() => {
            let errors = Errors {
                preferences: Some(page::api_message(&error)),
                password: None,
            };
            preferences_page(&state, &viewer, errors, error.status()).await
        }
        Err(error) => page::api_error(&state, Some(&viewer), &error),
    }
}

#[derive(Deserialize)]
pub(crate) struct PasswordFields {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

/// Changes the viewer's password through the API's handler: the same rules, the same
/// sign-in limit on the current password, and the new session cookie it sets.
pub(crate) async fn change_password(
    State(state): State<AppState>,
    viewer: Viewer,
    ClientIp(ip): ClientIp,
    CheckedForm(fields): CheckedForm<PasswordFields>,
) -> Response {
    let Some(me) = signed_in(&viewer) else {
        return no_user(&state, &viewer);
    };
    let change = PasswordChange {
        current_password: fields.current_password,
        new_password: fields.new_password,
    };
    match crate::api::session::change_password(
        State(state.clone()),
        me,
        ClientIp(ip),
        ApiJson(change),
    )
    .await
    {
        Ok(answer) => {
            let mut response = page::see_other_with(
                &state,
                "/preferences",
                Flash::done("Your password is changed. Your other browsers are signed out."),
            );
            crate::ui::sign_in::carry_cookies(&answer, &mut response);
            response
        }
        Err(error) if error.status().is_client_error() => {
            let message = match error.status() {
                StatusCode::UNAUTHORIZED => "The current password is wrong.".to_string(),
                StatusCode::TOO_MANY_REQUESTS => {
                    "Too many wrong passwords: wait a few minutes and try again.".to_string()
                }
                _ => page::api_message(&error),
            };
            let errors = Errors {
                preferences: None,
                password: Some(message),
            };
            preferences_page(&state, &viewer, errors, error.status()).await
        }
        Err(error) => page::api_error(&state, Some(&viewer), &error),
    }
}
