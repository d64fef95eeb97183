//! Users (admin only): list, add, read, change, remove. There is always at least one
//! admin who can sign in: the last one cannot be removed, demoted or disabled.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::{Role, User};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Admin;
use crate::auth::password::hash_blocking;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::input::{self, ApiJson, ApiPath};

/// What a user or token may do: admins everything, agents read and work tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    Admin,
    Agent,
}

impl From<Role> for RoleName {
    fn from(role: Role) -> RoleName {
        match role {
            Role::Admin => RoleName::Admin,
            Role::Agent => RoleName::Agent,
        }
    }
}

impl From<RoleName> for Role {
    fn from(role: RoleName) -> Role {
        match role {
            RoleName::Admin => Role::Admin,
            RoleName::Agent => Role::Agent,
        }
    }
}

/// A user; never the password hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub email: String,
    pub name: Option<String>,
    pub role: RoleName,
    /// A disabled user cannot sign in.
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&User> for UserView {
    fn from(user: &User) -> UserView {
        UserView {
            id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            role: user.role.into(),
            disabled: user.disabled,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

/// Checks an address enough to catch typos: one `@` with text on both sides, no
/// spaces, at most 254 characters (RFC 5321's limit).
pub(crate) fn check_email(email: &str) -> ApiResult<String> {
    let email = email.trim();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if valid {
        Ok(email.to_string())
    } else {
        Err(ApiError::validation(
            "the email address is not valid (it needs the form name@example.com)",
        ))
    }
}

/// A display name: trimmed, empty means none, at most 200 characters.
pub(crate) fn check_name(name: Option<String>) -> ApiResult<Option<String>> {
    let name = name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
        return Err(ApiError::validation(
            "the name must be at most 200 characters",
        ));
    }
    Ok(name)
}

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(
        max_length = 254,
        pattern = r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s\x00-\x1f\x7f-\x9f]+$"
    )]
    pub email: String,
    #[schema(max_length = 200)]
    pub name: Option<String>,
    pub role: RoleName,
    #[schema(min_length = 10, max_length = 1024)]
    pub password: String,
}

/// Every user, by address.
#[utoipa::path(
    get, path = "/api/v1/users", tag = "users",
    responses(
        (status = 200, description = "The users", body = Vec<UserView>),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn list(State(state): State<AppState>, _admin: Admin) -> ApiResult<Json<Vec<UserView>>> {
    let users = state.store().users().await?;
    Ok(Json(users.iter().map(UserView::from).collect()))
}

/// Adds a user.
#[utoipa::path(
    post, path = "/api/v1/users", tag = "users",
    request_body = NewUser,
    responses(
        (status = 201, description = "The new user", body = UserView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site request", body = ErrorBody),
        (status = 409, description = "The address has an account", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid address, name or password", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    ApiJson(new): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let email = check_email(&new.email)?;
    let name = check_name(new.name)?;
    let hash = hash_blocking(new.password, state.password_cost()).await?;
    let user = state
        .store()
        .create_user(&email, name.as_deref(), new.role.into(), &hash, state.now())
        .await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

async fn find(state: &AppState, id: i64) -> ApiResult<User> {
    state
        .store()
        .user_by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no user #{id}")))
}

/// One user.
#[utoipa::path(
    get, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "The user id")),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(UserView::from(&find(&state, id).await?)))
}

/// Changes to a user: only the fields given change; `name: null` clears the name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>, nullable, max_length = 200)]
    pub name: Option<Option<String>>,
    pub role: Option<RoleName>,
    /// Disabling also ends the user's sessions.
    pub disabled: Option<bool>,
    /// A new password; ends the user's sessions.
    #[schema(min_length = 10, max_length = 1024)]
    pub password: Option<String>,
}

/// Would the admins who can sign in be none after `user` became `role`/`disabled`?
async fn leaves_no_admin(
    state: &AppState,
    user: &User,
    role: Role,
    disabled: bool,
) -> ApiResult<bool> {
    let was_active_admin = user.role == Role::Admin && !user.disabled;
    let stays_active_admin = role == Role::Admin && !disabled;
    if !was_active_admin || stays_active_admin {
        return Ok(false);
    }
    let others = state
        .store()
        .users()
        .await?
        .iter()
        .filter(|u| u.id != user.id && u.role == Role::Admin && !u.disabled)
        .count();
    Ok(others == 0)
}

fn last_admin() -> ApiError {
    ApiError::conflict("this is the last admin who can sign in; make another user an admin first")
}

/// Changes a user.
#[utoipa::path(
    patch, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "The user id")),
    request_body = UserUpdate,
    responses(
        (status = 200, description = "The user as it is now", body = UserView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "It would leave no admin", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid name or password", body = ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
    ApiJson(change): ApiJson<UserUpdate>,
) -> ApiResult<Json<UserView>> {
    let user = find(&state, id).await?;
    let name = match change.name {
        Some(name) => check_name(name)?,
        None => user.name.clone(),
    };
    let role = change.role.map_or(user.role, Role::from);
    let disabled = change.disabled.unwrap_or(user.disabled);
    if leaves_no_admin(&state, &user, role, disabled).await? {
        return Err(last_admin());
    }
    // Hash before writing anything, so a refused password changes nothing.
    let hash = match change.password {
        Some(password) => Some(hash_blocking(password, state.password_cost()).await?),
        None => None,
    };
    let now = state.now();
    let user = state
        .store()
        .update_user(id, name.as_deref(), role, disabled, now)
        .await?;
    if let Some(hash) = hash {
        state.store().set_user_password(id, &hash, now).await?;
    }
    Ok(Json(UserView::from(&user)))
}

/// Removes a user and their sessions; their notes keep the author's name.
#[utoipa::path(
    delete, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "The user id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The last admin", body = ErrorBody),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let user = find(&state, id).await?;
    if leaves_no_admin(&state, &user, Role::Agent, true).await? {
        return Err(last_admin());
    }
    if !state.store().delete_user(id).await? {
        return Err(ApiError::not_found(format!("there is no user #{id}")));
    }
    Ok(StatusCode::NO_CONTENT)
}
