//! API tokens (admin only): created with a role, shown once, listed without their
//! secret, revoked.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::ApiToken;
use utoipa::ToSchema;

use crate::AppState;
use crate::api::users::RoleName;
use crate::auth::Admin;
use crate::auth::token::new_token;
use crate::error::{ApiResult, ErrorBody};
use crate::input::{ApiJson, ApiPath};

/// A token without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub name: String,
    pub role: RoleName,
    /// The token's first characters, to recognise it.
    pub prefix: String,
    /// The user who answers for it: who created it, or who made the token that created
    /// it (null when made by the command line, or the user is gone).
    pub created_by: Option<i64>,
    pub created_at: i64,
    /// Updated at most once a minute.
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// When it stops working (null: it does not expire).
    pub expires_at: Option<i64>,
}

impl From<&ApiToken> for TokenView {
    fn from(token: &ApiToken) -> TokenView {
        TokenView {
            id: token.id,
            name: token.name.clone(),
            role: token.role.into(),
            prefix: token.prefix.clone(),
            created_by: token.created_by,
            created_at: token.created_at,
            last_used_at: token.last_used_at,
            revoked_at: token.revoked_at,
            expires_at: token.expires_at,
        }
    }
}

/// A new token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for (e.g. "monitoring").
    #[schema(max_length = 100, pattern = r"\S")]
    pub name: String,
    pub role: RoleName,
    /// Days until it stops working, 1 to 3650; left out, it does not expire.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<u32>,
}

/// A new token with its secret: the only time the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// Send it as `Authorization: Bearer <token>`. Store it now: it is not shown again.
    pub token: String,
    #[serde(flatten)]
    pub details: TokenView,
}

/// Every token, revoked ones included, newest first.
#[utoipa::path(
    get, path = "/api/v1/tokens", tag = "tokens",
    responses(
        (status = 200, description = "The tokens", body = Vec<TokenView>),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn list(State(state): State<AppState>, _admin: Admin) -> ApiResult<Json<Vec<TokenView>>> {
    let tokens = state.store().api_tokens().await?;
    Ok(Json(tokens.iter().map(TokenView::from).collect()))
}

/// Creates a token; the response holds its secret, once.
#[utoipa::path(
    post, path = "/api/v1/tokens", tag = "tokens",
    request_body = NewToken,
    responses(
        (status = 201, description = "The token with its secret", body = CreatedToken),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site request", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid name, role or lifetime", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Admin(actor): Admin,
    ApiJson(new): ApiJson<NewToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let made = new_token()?;
    let token = state
        .admin()
        .create_token(&admin::NewToken {
            name: &new.name,
            role: new.role.into(),
            hash: &made.hash,
            prefix: &made.prefix,
            created_by: actor.token_maker_id(),
            expires_in_days: new.expires_in_days,
        })
        .await?;
    tracing::info!(token_id = token.id, by = %actor.label(), "API token created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: made.secret,
            details: TokenView::from(&token),
        }),
    ))
}

/// Revokes a token: it stops working at once.
#[utoipa::path(
    delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path, description = "The token id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No live token with this id", body = ErrorBody),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    Admin(actor): Admin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    state.admin().revoke_token(id).await?;
    tracing::info!(token_id = id, by = %actor.label(), "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}
