//! Users (admin only): list, add, read, change, remove. There is always at least one
//! admin who can sign in: the last one cannot be removed, demoted or disabled. The rules
//! are the administration service's ([`admin::Administration`]); this is their adapter.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use store::{Role, User};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Admin;
use crate::error::{ApiResult, ErrorBody};
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
    /// The mailboxes the user works, by id (team mailboxes): an agent sees the tickets
    /// and mail of these only, and nothing before one is granted. An admin sees every
    /// mailbox; what is granted to them counts once they are an agent.
    pub mailboxes: Vec<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl UserView {
    /// The user with the mailboxes granted to them.
    pub(crate) fn new(user: &User, mailboxes: Vec<i64>) -> UserView {
        UserView {
            id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            role: user.role.into(),
            disabled: user.disabled,
            mailboxes,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }

    /// The user with their granted mailboxes read from the store.
    async fn read(state: &AppState, user: &User) -> ApiResult<UserView> {
        let mailboxes = state.store().user_mailbox_ids(user.id).await?;
        Ok(UserView::new(user, mailboxes))
    }
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
    let mut grants = state.store().user_mailbox_grants().await?;
    Ok(Json(
        users
            .iter()
            .map(|user| UserView::new(user, grants.remove(&user.id).unwrap_or_default()))
            .collect(),
    ))
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
    let user = state
        .admin()
        .create_user(&admin::NewUser {
            email: new.email,
            name: new.name,
            role: new.role.into(),
            password: SecretString::from(new.password),
        })
        .await?;
    // A new user has no mailboxes: an agent sees nothing until an admin grants some.
    Ok((StatusCode::CREATED, Json(UserView::new(&user, Vec::new()))))
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
    let user = state.admin().user(id).await?;
    Ok(Json(UserView::read(&state, &user).await?))
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
    /// The mailboxes the user works, by id, replacing those granted before (`[]`
    /// takes all away). An id of no mailbox refuses the whole change (422).
    pub mailboxes: Option<Vec<i64>>,
}

impl UserUpdate {
    pub(crate) fn into_change(self) -> admin::UserChange {
        admin::UserChange {
            name: self.name,
            role: self.role.map(Role::from),
            disabled: self.disabled,
            password: self.password.map(SecretString::from),
            mailboxes: self.mailboxes,
        }
    }
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
        (status = 422, description = "Invalid name or password, or a mailbox that does not exist", body = ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
    ApiJson(change): ApiJson<UserUpdate>,
) -> ApiResult<Json<UserView>> {
    let user = state.admin().update_user(id, &change.into_change()).await?;
    Ok(Json(UserView::read(&state, &user).await?))
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
    state.admin().remove_user(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
