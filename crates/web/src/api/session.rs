//! Signing in and out with a password, who-am-I, and changing one's own password.
//!
//! A failed sign-in never says whether the address has an account: the answer is the
//! same, and an unknown address is checked against a dummy hash so it takes as long as
//! a wrong password. Failures are limited per address and per client network (429
//! with Retry-After).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use store::MailboxScope;
use utoipa::ToSchema;

use crate::AppState;
use crate::api::tokens::TokenView;
use crate::api::users::{RoleName, UserView};
use crate::auth::password::{MAX_PASSWORD_CHARS, hash_blocking};
use crate::auth::rate_limit::MAX_ADDRESS_OCTETS;
use crate::auth::{Actor, Credential, SignedIn, session};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::input::{ApiJson, ClientIp};

/// An address and a password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub email: String,
    pub password: String,
}

/// Who is calling: a signed-in user, or an API token.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub role: RoleName,
    /// The signed-in user; null for an API token.
    pub user: Option<UserView>,
    /// The API token in use; null for a browser session.
    pub token: Option<TokenView>,
}

impl From<&Actor> for SessionView {
    fn from(actor: &Actor) -> SessionView {
        let (user, token) = match &actor.credential {
            Credential::Session { user, .. } => {
                let mailboxes = match actor.scope() {
                    MailboxScope::Only(ids) => ids.clone(),
                    MailboxScope::All => Vec::new(),
                };
                (Some(UserView::new(user, mailboxes)), None)
            }
            Credential::Token(token) => (None, Some(TokenView::from(token))),
        };
        SessionView {
            role: actor.role.into(),
            user,
            token,
        }
    }
}

fn wrong_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "the email address or the password is wrong",
    )
}

/// Checks a password for an address with the sign-in limit; the user when it matches.
///
/// The attempt is counted before the password is checked and taken back only when it
/// matches: checked first and counted after, any number of parallel guesses would pass
/// the limit together.
async fn check_password(
    state: &AppState,
    email: &str,
    password: String,
    ip: Option<std::net::IpAddr>,
) -> ApiResult<store::User> {
    if email.len() > MAX_ADDRESS_OCTETS {
        return Err(address_too_long());
    }
    let limiter = state.sign_in_limiter();
    let attempt = match limiter.reserve(email, ip, state.now()).await? {
        Ok(attempt) => attempt,
        Err(wait_secs) => {
            tracing::info!(?ip, "sign-in refused: too many failures");
            return Err(ApiError::rate_limited(wait_secs));
        }
    };
    let user = if password.chars().count() > MAX_PASSWORD_CHARS {
        None
    } else {
        state.store().user_by_email(email).await?
    };
    let stored = match &user {
        Some(user) => state.store().user_password_hash(user.id).await?,
        None => None,
    };
    let checks = state.password_checks();
    let matches = match stored {
        Some(hash) => checks.verify(password, hash).await?,
        None => {
            // Same work as a real check, so timing does not tell who has an account.
            let dummy = state.dummy_hash().await?.to_string();
            checks.verify(password, dummy).await?;
            false
        }
    };
    match user {
        Some(user) if matches && !user.disabled => {
            limiter.succeeded(attempt).await?;
            Ok(user)
        }
        _ => {
            tracing::info!(?ip, "sign-in failed");
            Err(wrong_credentials())
        }
    }
}

fn address_too_long() -> ApiError {
    ApiError::validation(format!(
        "an email address has at most {MAX_ADDRESS_OCTETS} characters"
    ))
    .about("email")
}

/// `Set-Cookie` for a cookie.
fn set_cookie(cookie: &cookie::Cookie<'_>) -> ApiResult<(header::HeaderName, HeaderValue)> {
    HeaderValue::from_str(&cookie.to_string())
        .map(|value| (header::SET_COOKIE, value))
        .map_err(|e| ApiError::internal(&e))
}

/// Signs in: sets the session cookie and answers who signed in.
#[utoipa::path(
    post, path = "/api/v1/session", tag = "session",
    request_body = SignIn,
    security(()),
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = SessionView,
            headers(("set-cookie" = String, description = "popdesk_session=...; HttpOnly; SameSite=Lax; Path=/"))),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Wrong address or password", body = ErrorBody),
        (status = 403, description = "Cross-site request refused", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Missing or unknown fields, an address over 254 characters, or a control character", body = ErrorBody),
        (status = 429, description = "Too many failed attempts, or too many sign-ins being checked at once", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn sign_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignIn>,
) -> ApiResult<Response> {
    // Before any other work (even lowercasing): a body may carry a megabyte of address.
    let email = body.email.trim();
    if email.len() > MAX_ADDRESS_OCTETS {
        return Err(address_too_long());
    }
    let email = email.to_lowercase();
    let user = check_password(&state, &email, body.password, ip).await?;
    session::end_presented(&state, &headers).await?;
    let cookie = session::start(&state, user.id).await?;
    // Housekeeping where sessions are made, so the table does not grow forever.
    if let Err(error) = state
        .store()
        .delete_expired_sessions(state.now(), session::idle_timeout_ms(&state))
        .await
    {
        tracing::warn!(%error, "could not remove expired sessions");
    }
    tracing::info!(user_id = user.id, "signed in");
    let actor = Actor {
        role: user.role,
        scope: crate::auth::scope::of_user(state.store(), &user).await?,
        credential: Credential::Session {
            user,
            token_hash: String::new(),
        },
    };
    Ok(([set_cookie(&cookie)?], Json(SessionView::from(&actor))).into_response())
}

/// Who is calling.
#[utoipa::path(
    get, path = "/api/v1/session", tag = "session",
    responses(
        (status = 200, description = "The caller", body = SessionView),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn show(actor: Actor) -> Json<SessionView> {
    Json(SessionView::from(&actor))
}

/// Signs out: ends the session and clears the cookie.
#[utoipa::path(
    delete, path = "/api/v1/session", tag = "session",
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Called with an API token (no session), or a cross-site request", body = ErrorBody),
    )
)]
pub async fn sign_out(State(state): State<AppState>, actor: Actor) -> ApiResult<Response> {
    let Credential::Session { token_hash, .. } = &actor.credential else {
        return Err(ApiError::forbidden(
            "an API token has no session to end; an admin can revoke the token instead",
        ));
    };
    state.store().delete_session(token_hash).await?;
    let removal = session::removal(&state);
    Ok((StatusCode::NO_CONTENT, [set_cookie(&removal)?]).into_response())
}

/// A new password for the signed-in user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    #[schema(min_length = 10, max_length = 1024)]
    pub new_password: String,
}

/// Changes the signed-in user's own password. Ends all their sessions (other browsers
/// are signed out) and starts a new one here.
#[utoipa::path(
    patch, path = "/api/v1/session/password", tag = "session",
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed; a new session cookie is set"),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Not signed in, or the current password is wrong", body = ErrorBody),
        (status = 403, description = "Called with an API token (no password), or a cross-site request", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "The new password breaks the rules", body = ErrorBody),
        (status = 429, description = "Too many failed attempts", body = ErrorBody),
    )
)]
pub async fn change_password(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    ClientIp(ip): ClientIp,
    ApiJson(change): ApiJson<PasswordChange>,
) -> ApiResult<Response> {
    // Check the new password's rules first: a refused new password should not count
    // as a failed sign-in.
    crate::auth::password::check_password(&change.new_password)
        .map_err(|e| ApiError::validation(e.to_string()))?;
    let user = check_password(&state, &user.email, change.current_password, ip).await?;
    let hash = hash_blocking(change.new_password, state.password_cost()).await?;
    state
        .store()
        .set_user_password(user.id, &hash, state.now())
        .await?;
    let cookie = session::start(&state, user.id).await?;
    Ok((StatusCode::NO_CONTENT, [set_cookie(&cookie)?]).into_response())
}
