//! API tokens: `pd_` followed by 43 random characters, sent as
//! `Authorization: Bearer pd_...`. Shown once when created; stored as sha256 only.

use axum::http::{HeaderMap, header};

use crate::auth::secret::{new_secret, secret_hash};
use crate::error::ApiError;

/// Every popdesk API token starts with this, so a leaked one is recognisable (secret
/// scanners, logs).
pub const TOKEN_PREFIX: &str = "pd_";

/// How many leading characters of a token are kept in clear to tell tokens apart.
const SHOWN_CHARS: usize = 10;

/// A freshly made token: what to hand out and what to store. Public so the binary (a
/// future `popdesk token create`) and tools make tokens exactly as the API does.
pub struct NewToken {
    /// The whole token: handed to the admin once, never stored.
    pub secret: String,
    pub hash: String,
    pub prefix: String,
}

/// Makes a new random token.
pub fn new_token() -> Result<NewToken, ApiError> {
    let secret = format!("{TOKEN_PREFIX}{}", new_secret()?);
    Ok(NewToken {
        hash: secret_hash(&secret),
        prefix: secret.chars().take(SHOWN_CHARS).collect(),
        secret,
    })
}

/// The bearer token of the request: `None` without an Authorization header, an error
/// for an Authorization header that is not `Bearer <token>`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<Result<&str, ApiError>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let parsed = value
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    Some(parsed.ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the Authorization header must be \"Bearer pd_...\" with an API token",
        )
    }))
}

/// True when the request authenticates with a header rather than a cookie. A browser
/// cannot add that header to a cross-site request without a CORS preflight (which
/// popdesk never grants), so such requests need no cross-site check.
pub(crate) fn has_authorization(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION)
}
