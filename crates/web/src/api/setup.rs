//! The one-time setup: while no user exists, whoever knows the setup code (from
//! `popdesk serve`'s log or the data folder's `setup-code` file) can create the first
//! admin (and is signed in as them). Afterwards it answers 409 for good.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use store::Role;
use utoipa::ToSchema;

use crate::AppState;
use crate::api::users::UserView;
use crate::auth::session;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::input::{ApiJson, ClientIp};

/// Whether the setup is still open.
#[derive(Debug, Serialize, ToSchema)]
pub struct SetupStatus {
    /// True while no user exists.
    pub needed: bool,
}

/// Whether the first admin still has to be created.
#[utoipa::path(
    get, path = "/api/v1/setup", tag = "setup",
    security(()),
    responses((status = 200, description = "Whether setup is needed", body = SetupStatus))
)]
pub async fn status(State(state): State<AppState>) -> ApiResult<Json<SetupStatus>> {
    Ok(Json(SetupStatus {
        needed: state.store().count_users().await? == 0,
    }))
}

/// The first admin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FirstAdmin {
    #[schema(
        max_length = 254,
        pattern = r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s\x00-\x1f\x7f-\x9f]+$"
    )]
    pub email: String,
    #[schema(min_length = 10, max_length = 1024)]
    pub password: String,
    #[schema(max_length = 200)]
    pub name: Option<String>,
    /// The one-time setup code `popdesk serve` printed in its log when it started (and
    /// wrote to `setup-code` in its data folder), like `ABCD-EFGH-JKLM`.
    #[schema(max_length = 64)]
    pub setup_code: String,
}

/// Failed setup codes count like failed sign-ins, per client (never one bucket for
/// everyone: a stranger's guesses must not lock the admin out of their own setup).
fn setup_code_key(ip: Option<std::net::IpAddr>) -> String {
    match ip {
        Some(ip) => format!("setup-code@{ip}"),
        None => "setup-code@unknown".to_string(),
    }
}

fn wrong_setup_code() -> ApiError {
    ApiError::forbidden(
        "the setup code is missing or wrong: popdesk printed it in its log when it started (\"setup code: ...\") and wrote it to the file setup-code in its data folder",
    )
    .about("setup_code")
}

fn closed() -> ApiError {
    ApiError::conflict("popdesk is set up already; sign in, or ask an admin for an account")
}

/// Creates the first admin and signs them in; only while no user exists.
#[utoipa::path(
    post, path = "/api/v1/setup", tag = "setup",
    request_body = FirstAdmin,
    security(()),
    responses(
        (status = 201, description = "The admin, signed in", body = UserView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Setup code missing or wrong, or cross-site request refused", body = ErrorBody),
        (status = 409, description = "Set up already", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid address, name or password", body = ErrorBody),
        (status = 429, description = "Too many wrong setup codes", body = ErrorBody),
    )
)]
pub async fn create_admin(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(admin): ApiJson<FirstAdmin>,
) -> ApiResult<Response> {
    // Cheap check first: once set up, nobody gets to spend a password hash here.
    if state.store().count_users().await? > 0 {
        return Err(closed());
    }
    let limiter = state.sign_in_limiter();
    let attempt = match limiter
        .reserve(&setup_code_key(ip), ip, state.now())
        .await?
    {
        Ok(attempt) => attempt,
        Err(wait_secs) => {
            tracing::info!(?ip, "setup refused: too many wrong setup codes");
            return Err(ApiError::rate_limited(wait_secs));
        }
    };
    if !state.setup_code().matches(&admin.setup_code) {
        tracing::info!(?ip, "setup refused: wrong setup code");
        return Err(wrong_setup_code());
    }
    limiter.succeeded(attempt).await?;
    let password = secrecy::SecretString::from(admin.password);
    let Some(user) = state
        .admin()
        .create_first_admin(&admin.email, admin.name.as_deref(), &password)
        .await?
    else {
        return Err(closed());
    };
    debug_assert_eq!(user.role, Role::Admin);
    tracing::info!(user_id = user.id, "first admin created through the setup");
    if let Err(error) = crate::auth::setup_code::remove_file(state.store().data_dir()) {
        tracing::warn!(%error, "could not remove the setup code file; it is of no use now, delete it");
    }
    let cookie = session::start(&state, user.id).await?;
    let cookie = HeaderValue::from_str(&cookie.to_string()).map_err(|e| ApiError::internal(&e))?;
    Ok((
        StatusCode::CREATED,
        [(header::SET_COOKIE, cookie)],
        // The first admin: no mailboxes granted, every mailbox seen.
        Json(UserView::new(&user, Vec::new())),
    )
        .into_response())
}
