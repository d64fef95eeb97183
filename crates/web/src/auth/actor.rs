//! The caller of a request: a signed-in user or an API token, with its role.
//!
//! [`authenticate`] runs before every protected route and puts the [`Actor`] into the
//! request; handlers take [`Actor`] (anyone signed in) or [`Admin`] (admins only) as an
//! argument, so what a route requires is written in its signature.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use store::{ApiToken, MailboxScope, Role, User};

use crate::AppState;
use crate::auth::secret::secret_hash;
use crate::auth::{scope, session, token};
use crate::error::ApiError;

/// Who is calling, and which mailboxes' tickets and mail they may see.
#[derive(Debug, Clone)]
pub struct Actor {
    pub role: Role,
    pub credential: Credential,
    /// Loaded with the caller, once per request (see [`scope`]).
    pub scope: MailboxScope,
}

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A browser session: the user and the stored hash of the session token.
    Session { user: User, token_hash: String },
    /// An API token.
    Token(ApiToken),
}

impl Actor {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// The mailboxes whose tickets and mail the caller may see.
    pub fn scope(&self) -> &MailboxScope {
        &self.scope
    }

    /// The signed-in user; `None` for an API token.
    pub fn user(&self) -> Option<&User> {
        match &self.credential {
            Credential::Session { user, .. } => Some(user),
            Credential::Token(_) => None,
        }
    }

    pub fn user_id(&self) -> Option<i64> {
        self.user().map(|user| user.id)
    }

    /// The user who answers for a token the caller makes: the signed-in user, or the
    /// maker of the calling token. A token made with a token is thus disabled, demoted
    /// and revoked with the same person as the token that made it.
    pub fn token_maker_id(&self) -> Option<i64> {
        match &self.credential {
            Credential::Session { user, .. } => Some(user.id),
            Credential::Token(token) => token.created_by,
        }
    }

    /// How the caller appears in a ticket's history.
    pub fn label(&self) -> String {
        match &self.credential {
            Credential::Session { user, .. } => user.label(),
            Credential::Token(token) => format!("API token \"{}\"", token.name),
        }
    }
}

/// The caller of a request with these headers: `Ok(None)` when it carries no
/// credentials (or a session that ended), an error for a bearer token that is not valid.
pub(crate) async fn identify(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Actor>, ApiError> {
    let now = state.now();
    if let Some(bearer) = token::bearer(headers) {
        let secret = bearer?;
        return match state
            .store()
            .api_token_by_hash(&secret_hash(secret), now)
            .await?
        {
            Some(api_token) => Ok(Some(Actor {
                role: api_token.role,
                scope: scope::of_token(state.store(), &api_token).await?,
                credential: Credential::Token(api_token),
            })),
            None => Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this API token is not valid: it was revoked, expired, its maker is disabled or removed, or it was mistyped",
            )),
        };
    }
    let Some(secret) = session::token(headers) else {
        return Ok(None);
    };
    let token_hash = secret_hash(&secret);
    let Some(user) = state
        .store()
        .session_user(&token_hash, now, session::idle_timeout_ms(state))
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(Actor {
        role: user.role,
        scope: scope::of_user(state.store(), &user).await?,
        credential: Credential::Session { user, token_hash },
    }))
}

/// Middleware of every protected route: 401 without a valid session or token.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    match identify(&state, &parts.headers).await {
        Ok(Some(actor)) => {
            parts.extensions.insert(actor);
            next.run(Request::from_parts(parts, body)).await
        }
        Ok(None) => ApiError::unauthorized().into_response(),
        Err(error) => error.into_response(),
    }
}

/// The caller that [`authenticate`] found, or (on a route outside the protected group)
/// the caller identified now; 401 without one.
impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(actor) = parts.extensions.get::<Actor>() {
            return Ok(actor.clone());
        }
        identify(state, &parts.headers)
            .await?
            .ok_or_else(ApiError::unauthorized)
    }
}

/// An admin caller; anyone else gets 403.
#[derive(Debug, Clone)]
pub struct Admin(pub Actor);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let actor = Actor::from_request_parts(parts, state).await?;
        if actor.is_admin() {
            Ok(Admin(actor))
        } else {
            Err(ApiError::admin_only())
        }
    }
}

/// A person signed in with a browser session (not an API token): for what only makes
/// sense for a session, such as signing out or changing one's password. A token gets
/// 403 before the request body is even read.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    /// The stored hash of the session's token.
    pub token_hash: String,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Actor::from_request_parts(parts, state).await?.credential {
            Credential::Session { user, token_hash } => Ok(SignedIn { user, token_hash }),
            Credential::Token(_) => Err(ApiError::forbidden(
                "this needs a signed-in person; an API token has no session or password \
                 (an admin can revoke a token instead)",
            )),
        }
    }
}
