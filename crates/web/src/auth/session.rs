//! Sign-in sessions: a random token in an HttpOnly cookie; the database keeps only its
//! sha256, with the user and an expiry.

use axum::http::HeaderMap;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use crate::AppState;
use crate::auth::secret::{new_secret, secret_hash};
use crate::error::ApiError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "popdesk_session";

/// Starts a session for the user and returns the cookie that carries it.
pub(crate) async fn start(state: &AppState, user_id: i64) -> Result<Cookie<'static>, ApiError> {
    let secret = new_secret()?;
    let now = state.now();
    let ttl = state.config().session_ttl;
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    state
        .store()
        .create_session(
            &secret_hash(&secret),
            user_id,
            now,
            now.saturating_add(ttl_ms),
        )
        .await?;
    let max_age = cookie::time::Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
    Ok(cookie(state, secret).max_age(max_age).build())
}

/// The idle timeout in milliseconds, as the store takes it.
pub(crate) fn idle_timeout_ms(state: &AppState) -> i64 {
    i64::try_from(state.config().session_idle_timeout.as_millis()).unwrap_or(i64::MAX)
}

/// Ends the session whose cookie this request presents, if any: signing in again in a
/// browser must not leave its previous session alive (a cookie copied before is then
/// worthless, and a shared computer's last user is really gone).
pub(crate) async fn end_presented(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(secret) = token(headers) {
        state.store().delete_session(&secret_hash(&secret)).await?;
    }
    Ok(())
}

/// The cookie that makes the browser forget its session.
pub(crate) fn removal(state: &AppState) -> Cookie<'static> {
    let mut cookie = cookie(state, String::new()).build();
    cookie.make_removal();
    cookie
}

/// HttpOnly (scripts never see it), SameSite=Lax (not sent on cross-site POSTs), the
/// whole site (the HTML UI shares it), Secure when popdesk is reached over https.
fn cookie(state: &AppState, value: String) -> cookie::CookieBuilder<'static> {
    Cookie::build((SESSION_COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(state.config().secure_cookies)
}

/// The session token the request carries, if any.
pub(crate) fn token(headers: &HeaderMap) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(SESSION_COOKIE)
        .map(|cookie| cookie.value().to_string())
        .filter(|value| !value.is_empty())
}
