//! Users (admin): the list, adding one, making someone admin or agent, disabling and
//! deleting; a user's own page to change their name and role, reset their password and
//! grant the mailboxes they work (team mailboxes). The administration rules keep at
//! least one admin who can sign in.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use store::{Mailbox, Role, User};

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
    /// The names of the mailboxes granted, in the mailboxes' order.
    mailboxes: Vec<String>,
}

/// The "Add user" form's values (never the password).
pub(crate) struct UserForm {
    email: String,
    name: String,
    roles: Vec<Choice>,
    error: Option<String>,
    /// The address has an account already: where to edit that user instead.
    edit_existing: Option<String>,
}

impl UserForm {
    fn empty() -> UserForm {
        UserForm {
            email: String::new(),
            name: String::new(),
            roles: role_choices("agent"),
            error: None,
            edit_existing: None,
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

/// A mailbox as a checkbox of the user page's "Mailboxes" form.
pub(crate) struct MailboxChoice {
    id: i64,
    name: String,
    granted: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "user.html")]
pub(crate) struct UserPage {
    layout: Layout,
    id: i64,
    email: String,
    name: String,
    is_admin: bool,
    roles: Vec<Choice>,
    mailboxes: Vec<MailboxChoice>,
}
impl_page!(UsersPage, DeleteUserPage, UserPage);

/// The names of these mailboxes, in the mailboxes' order.
fn mailbox_names(mailboxes: &[Mailbox], ids: &[i64]) -> Vec<String> {
    mailboxes
        .iter()
        .filter(|m| ids.contains(&m.id))
        .map(|m| m.settings.name.clone())
        .collect()
}

async fn users_page(
    state: &AppState,
    viewer: &Viewer,
    form: UserForm,
    status: StatusCode,
) -> Response {
    let loaded = async {
        let users = state.store().users().await?;
        let grants = state.store().user_mailbox_grants().await?;
        let mailboxes = state.store().mailboxes().await?;
        Ok::<_, store::StoreError>((users, grants, mailboxes))
    }
    .await;
    let (users, grants, mailboxes): (Vec<User>, HashMap<i64, Vec<i64>>, Vec<Mailbox>) = match loaded
    {
        Ok(loaded) => loaded,
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
                    mailboxes: mailbox_names(
                        &mailboxes,
                        grants.get(&user.id).map_or(&[][..], Vec::as_slice),
                    ),
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
        edit_existing: None,
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
            Flash::done(match user.role {
                Role::Admin => format!("{} can sign in now.", user.email),
                Role::Agent => format!(
                    "{} can sign in now. Give them the mailboxes they work: until then they see no tickets.",
                    user.email
                ),
            }),
        ),
        Err(admin::AdminError::EmailTaken(email)) => {
            // The address has an account: the form says so and links to it.
            let existing = match state.store().user_by_email(&email).await {
                Ok(user) => user,
                Err(error) => return page::api_error(&state, Some(&viewer), &error.into()),
            };
            let mut form = again(format!("There is already a user with the address {email}."));
            form.edit_existing = existing.map(|user| format!("/users/{}", user.id));
            users_page(&state, &viewer, form, StatusCode::CONFLICT).await
        }
        Err(error) if error.is_caller_error() => {
            let error = crate::error::ApiError::from(error);
            let form = again(page::api_message(&error));
            users_page(&state, &viewer, form, error.status()).await
        }
        Err(error) => page::api_error(&state, Some(&viewer), &error.into()),
    }
}

/// A change to one user through the administration rules, then back to the list;
/// refusals (the last admin) come back as a flash there.
async fn change(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    update: UserUpdate,
    done: impl FnOnce(&User) -> String,
) -> Response {
    change_then(state, viewer, id, update, "/users", done).await
}

/// A change to one user, then to `back`; what the person can fix (the last admin, a
/// short password, a long name) comes back as a flash there.
async fn change_then(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    update: UserUpdate,
    back: &str,
    done: impl FnOnce(&User) -> String,
) -> Response {
    match state.admin().update_user(id, &update.into_change()).await {
        Ok(user) => page::see_other_with(state, back, Flash::done(done(&user))),
        Err(admin::AdminError::UserNotFound(_)) => user_not_found(state, viewer, id),
        Err(error) if error.is_caller_error() => {
            page::see_other_with(state, back, Flash::failed(page::api_message(&error.into())))
        }
        Err(error) => page::api_error(state, Some(viewer), &error.into()),
    }
}

fn user_not_found(state: &AppState, viewer: &Viewer, id: i64) -> Response {
    page::not_found(state, Some(viewer), format!("There is no user #{id}."))
}

/// One user's page: name and role, their mailboxes, a new password.
pub(crate) async fn show(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
) -> Response {
    let loaded = async {
        let user = state.store().user_by_id(id).await?;
        let granted = state.store().user_mailbox_ids(id).await?;
        let mailboxes = state.store().mailboxes().await?;
        Ok::<_, store::StoreError>((user, granted, mailboxes))
    }
    .await;
    let (user, granted, mailboxes) = match loaded {
        Ok((Some(user), granted, mailboxes)) => (user, granted, mailboxes),
        Ok((None, ..)) => return user_not_found(&state, &viewer, id),
        Err(error) => return page::api_error(&state, Some(&viewer), &error.into()),
    };
    let role = match user.role {
        Role::Admin => "admin",
        Role::Agent => "agent",
    };
    page::show(
        &state,
        StatusCode::OK,
        UserPage {
            layout: Layout::signed_in(&viewer, user.email.clone(), Section::Users),
            id,
            name: user.name.clone().unwrap_or_default(),
            is_admin: user.role == Role::Admin,
            roles: role_choices(role),
            mailboxes: mailboxes
                .iter()
                .map(|m| MailboxChoice {
                    id: m.id,
                    name: m.settings.name.clone(),
                    granted: granted.contains(&m.id),
                })
                .collect(),
            email: user.email,
        },
    )
}

#[derive(Deserialize)]
pub(crate) struct ProfileForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

/// Changes a user's name and role.
pub(crate) async fn update_profile(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
    CheckedForm(form): CheckedForm<ProfileForm>,
) -> Response {
    let back = format!("/users/{id}");
    let Some(role) = role_name(&form.role) else {
        return page::see_other_with(&state, &back, Flash::failed("Pick a role from the list."));
    };
    let update = UserUpdate {
        name: Some(Some(form.name)),
        role: Some(role),
        disabled: None,
        password: None,
        mailboxes: None,
    };
    change_then(&state, &viewer, id, update, &back, |user| {
        format!(
            "Saved: {} is {}.",
            user.label(),
            match user.role {
                Role::Admin => "an admin",
                Role::Agent => "an agent",
            }
        )
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    password: String,
}

/// Sets a new password for a user (who forgot theirs); their sessions end.
pub(crate) async fn reset_password(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
    CheckedForm(form): CheckedForm<PasswordForm>,
) -> Response {
    let update = UserUpdate {
        name: None,
        role: None,
        disabled: None,
        password: Some(form.password),
        mailboxes: None,
    };
    change_then(&state, &viewer, id, update, &format!("/users/{id}"), |user| {
        format!(
            "{} has a new password; their sessions have ended. Give it to them in person or through a password manager.",
            user.email
        )
    })
    .await
}

/// Grants a user the mailboxes ticked (and takes away the others): an agent sees the
/// tickets and mail of these only.
pub(crate) async fn set_mailboxes(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
    // Checkboxes repeat their name (`mailbox=1&mailbox=3`): read as pairs.
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Response {
    let back = format!("/users/{id}");
    let mut ids = Vec::new();
    for (name, value) in &fields {
        if name != "mailbox" {
            continue;
        }
        match value.trim().parse::<i64>() {
            Ok(mailbox) => ids.push(mailbox),
            Err(_) => {
                return page::see_other_with(
                    &state,
                    &back,
                    Flash::failed("Tick mailboxes from the list."),
                );
            }
        }
    }
    let update = UserUpdate {
        name: None,
        role: None,
        disabled: None,
        password: None,
        mailboxes: Some(ids),
    };
    change_then(&state, &viewer, id, update, &back, |user| match user.role {
        Role::Admin => format!(
            "Saved. {} is an admin and sees every mailbox; these count if they become an agent.",
            user.email
        ),
        Role::Agent => format!("Saved: {} works the mailboxes ticked.", user.email),
    })
    .await
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
        mailboxes: None,
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
        mailboxes: None,
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
