//! Users (admin): the list, adding one, making someone admin or agent, disabling and
//! deleting. The API's handlers keep the rule that at least one admin can sign in.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use store::{Role, User};

use crate::AppState;
use crate::api::users::{RoleName, UserUpdate};
use crate::ui::display::When;
use crate::ui::flash::Flash;
use crate::ui::form::{CheckedForm, Choice, EnabledForm, NoFields, PagePath};
use crate::ui::page::{self, Layout, Section, impl_page};
use crate::ui::viewer::{AdminViewer, Viewer};

pub(crate) struct UserRow {
    id: i64,
    email: String,
    name: String,
    is_admin: bool,
    disabled: bool,
    /// The viewer's own account.
    is_me: bool,
    created: When,
}

/// The "Add user" form's values (never the password).
pub(crate) struct UserForm {
    email: String,
    name: String,
    roles: Vec<Choice>,
    error: Option<String>,
}

impl UserForm {
    fn empty() -> UserForm {
        UserForm {
            email: String::new(),
            name: String::new(),
            roles: role_choices("agent"),
            error: None,
        }
    }
}

fn role_choices(selected: &str) -> Vec<Choice> {
    // Plain "Agent"/"Admin": the hint beside the field says what each may do.
    vec![
        Choice::new("agent", "Agent", selected != "admin"),
        Choice::new("admin", "Admin", selected == "admin"),
    ]
}

#[derive(Template, WebTemplate)]
#[template(path = "users.html")]
pub(crate) struct UsersPage {
    layout: Layout,
    rows: Vec<UserRow>,
    form: UserForm,
}

#[derive(Template, WebTemplate)]
#[template(path = "user_delete.html")]
pub(crate) struct DeleteUserPage {
    layout: Layout,
    id: i64,
    email: String,
}
impl_page!(UsersPage, DeleteUserPage);

async fn users_page(
    state: &AppState,
    viewer: &Viewer,
    form: UserForm,
    status: StatusCode,
) -> Response {
    let users = match state.store().users().await {
        Ok(users) => users,
        Err(error) => return page::api_error(state, Some(viewer), &error.into()),
    };
    let now = state.now();
    let me = viewer.actor.user_id();
    page::show(
        state,
        status,
        UsersPage {
            layout: Layout::signed_in(viewer, "Users", Section::Users),
            rows: users
                .iter()
                .map(|user| UserRow {
                    id: user.id,
                    email: user.email.clone(),
                    name: user.name.clone().unwrap_or_default(),
                    is_admin: user.role == Role::Admin,
                    disabled: user.disabled,
                    is_me: Some(user.id) == me,
                    created: When::new(user.created_at, now),
                })
                .collect(),
            form,
        },
    )
}

pub(crate) async fn list(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
) -> Response {
    users_page(&state, &viewer, UserForm::empty(), StatusCode::OK).await
}

#[derive(Deserialize)]
pub(crate) struct NewUserFields {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

fn role_name(value: &str) -> Option<RoleName> {
    match value {
        "admin" => Some(RoleName::Admin),
        "agent" => Some(RoleName::Agent),
        _ => None,
    }
}

/// Adds a user.
pub(crate) async fn create(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    CheckedForm(fields): CheckedForm<NewUserFields>,
) -> Response {
    let again = |error: String| UserForm {
        email: fields.email.clone(),
        name: fields.name.clone(),
        roles: role_choices(&fields.role),
        error: Some(error),
    };
    let Some(role) = role_name(&fields.role) else {
        let form = again("Pick a role from the list.".to_string());
        return users_page(&state, &viewer, form, StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    let new = admin::NewUser {
        email: fields.email.clone(),
        name: Some(fields.name.clone()),
        role: role.into(),
        password: secrecy::SecretString::from(fields.password.clone()),
    };
    match state.admin().create_user(&new).await {
        Ok(user) => page::see_other_with(
            &state,
            "/users",
            Flash::done(format!("{} can sign in now.", user.email)),
        ),
        Err(error) if error.is_caller_error() => {
            let error = crate::error::ApiError::from(error);
            let form = again(page::api_message(&error));
            users_page(&state, &viewer, form, error.status()).await
        }
        Err(error) => page::api_error(&state, Some(&viewer), &error.into()),
    }
}

/// A change to one user through the API; refusals (the last admin) come back as a
/// flash on the list.
async fn change(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    update: UserUpdate,
    done: impl FnOnce(&User) -> String,
) -> Response {
    match state.admin().update_user(id, &update.into_change()).await {
        Ok(user) => page::see_other_with(state, "/users", Flash::done(done(&user))),
        Err(error @ admin::AdminError::LastAdmin) => page::see_other_with(
            state,
            "/users",
            Flash::failed(page::api_message(&error.into())),
        ),
        Err(error) => page::api_error(state, Some(viewer), &error.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct RoleForm {
    role: String,
}

/// Makes a user admin or agent.
pub(crate) async fn set_role(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
    CheckedForm(form): CheckedForm<RoleForm>,
) -> Response {
    let Some(role) = role_name(&form.role) else {
        return page::error(
            &state,
            Some(&viewer),
            StatusCode::BAD_REQUEST,
            "There is no such role.",
        );
    };
    let update = UserUpdate {
        name: None,
        role: Some(role),
        disabled: None,
        password: None,
    };
    change(&state, &viewer, id, update, |user| match user.role {
        Role::Admin => format!("{} is an admin now.", user.email),
        Role::Agent => format!("{} is an agent now.", user.email),
    })
    .await
}

/// Disables a user (they cannot sign in; their sessions end) or enables them again.
pub(crate) async fn set_enabled(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
    CheckedForm(form): CheckedForm<EnabledForm>,
) -> Response {
    let disabled = match form.enabled(&state, &viewer) {
        Ok(enabled) => !enabled,
        Err(page) => return page,
    };
    let update = UserUpdate {
        name: None,
        role: None,
        disabled: Some(disabled),
        password: None,
    };
    change(&state, &viewer, id, update, |user| {
        if user.disabled {
            format!("{} is disabled and cannot sign in.", user.email)
        } else {
            format!("{} can sign in again.", user.email)
        }
    })
    .await
}

/// Asks before deleting a user.
pub(crate) async fn confirm_delete(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
) -> Response {
    match state.store().user_by_id(id).await {
        Ok(Some(user)) => page::show(
            &state,
            StatusCode::OK,
            DeleteUserPage {
                layout: Layout::signed_in(&viewer, "Delete user", Section::Users),
                id,
                email: user.email,
            },
        ),
        Ok(None) => page::not_found(&state, Some(&viewer), format!("There is no user #{id}.")),
        Err(error) => page::api_error(&state, Some(&viewer), &error.into()),
    }
}

/// Deletes a user (not the last admin); their notes keep their name.
pub(crate) async fn delete(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
    CheckedForm(NoFields {}): CheckedForm<NoFields>,
) -> Response {
    let email = match state.store().user_by_id(id).await {
        Ok(Some(user)) => user.email,
        Ok(None) => {
            return page::not_found(&state, Some(&viewer), format!("There is no user #{id}."));
        }
        Err(error) => return page::api_error(&state, Some(&viewer), &error.into()),
    };
    match state.admin().remove_user(id).await {
        Ok(_) => page::see_other_with(
            &state,
            "/users",
            Flash::done(format!("{email} was deleted.")),
        ),
        Err(error @ admin::AdminError::LastAdmin) => page::see_other_with(
            &state,
            "/users",
            Flash::failed(page::api_message(&error.into())),
        ),
        Err(error) => page::api_error(&state, Some(&viewer), &error.into()),
    }
}
