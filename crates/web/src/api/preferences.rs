//! The signed-in user's own preferences: the time zone their pages show times in, and
//! which notifications by mail they get. Each user reads and changes only their own;
//! an API token has no user, so none.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use store::Preferences;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::SignedIn;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::input::ApiJson;
use crate::time_zone::TimeZoneName;

/// A user's preferences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PreferencesView {
    /// The IANA time zone the web pages show times in, e.g. "Europe/Berlin"; "UTC" by
    /// default.
    pub time_zone: String,
    /// Mail for every new ticket in the mailboxes the user works (off by default).
    pub notify_new_ticket: bool,
    /// Mail when the customer answers a ticket assigned to the user (on by default).
    pub notify_customer_reply: bool,
    /// Mail when someone else assigns a ticket to the user (on by default).
    pub notify_assigned: bool,
}

impl From<Preferences> for PreferencesView {
    fn from(p: Preferences) -> PreferencesView {
        PreferencesView {
            time_zone: p.time_zone,
            notify_new_ticket: p.notify_new_ticket,
            notify_customer_reply: p.notify_customer_reply,
            notify_assigned: p.notify_assigned,
        }
    }
}

/// What to change; a field left out stays as it is.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesChange {
    /// An IANA time zone name, e.g. "Europe/Berlin" or "UTC".
    #[schema(max_length = 64)]
    pub time_zone: Option<String>,
    pub notify_new_ticket: Option<bool>,
    pub notify_customer_reply: Option<bool>,
    pub notify_assigned: Option<bool>,
}

/// The signed-in user's preferences.
#[utoipa::path(
    get, path = "/api/v1/session/preferences", tag = "session",
    responses(
        (status = 200, description = "The caller's preferences", body = PreferencesView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Called with an API token (it has no preferences)", body = ErrorBody),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
) -> ApiResult<Json<PreferencesView>> {
    Ok(Json(state.store().preferences(user.id).await?.into()))
}

/// Changes the signed-in user's preferences; answers them as they are now.
#[utoipa::path(
    patch, path = "/api/v1/session/preferences", tag = "session",
    request_body = PreferencesChange,
    responses(
        (status = 200, description = "The caller's preferences as they are now", body = PreferencesView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Called with an API token (it has no preferences), or a cross-site request", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "An unknown time zone, or unknown fields", body = ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    ApiJson(change): ApiJson<PreferencesChange>,
) -> ApiResult<Json<PreferencesView>> {
    let preferences = change_preferences(&state, user.id, change).await?;
    Ok(Json(preferences.into()))
}

/// Applies a change to a user's preferences, the time zone checked first: the rules of
/// the API and of the preferences page, once.
pub(crate) async fn change_preferences(
    state: &AppState,
    user_id: i64,
    change: PreferencesChange,
) -> ApiResult<Preferences> {
    let mut preferences = state.store().preferences(user_id).await?;
    if let Some(name) = change.time_zone {
        let zone = TimeZoneName::parse(&name)
            .map_err(|e| ApiError::validation(e.to_string()).about("time_zone"))?;
        preferences.time_zone = zone.as_str().to_string();
    }
    if let Some(on) = change.notify_new_ticket {
        preferences.notify_new_ticket = on;
    }
    if let Some(on) = change.notify_customer_reply {
        preferences.notify_customer_reply = on;
    }
    if let Some(on) = change.notify_assigned {
        preferences.notify_assigned = on;
    }
    state
        .store()
        .set_preferences(user_id, &preferences, state.now())
        .await?;
    Ok(preferences)
}
