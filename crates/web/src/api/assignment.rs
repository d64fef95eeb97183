//! Who works a ticket, as the API speaks of it: the assignee's view in ticket JSON, the
//! list's `assignee=me|none|EMAIL` filter, and an address in a change turned into the
//! user the store assigns. Assigning itself is part of `PATCH /api/v1/tickets/{n}`.

use serde::Serialize;
use store::{Assignee, AssigneeFilter, User};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};

/// The user a ticket is assigned to.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssigneeView {
    pub email: String,
    pub name: Option<String>,
}

impl From<&Assignee> for AssigneeView {
    fn from(assignee: &Assignee) -> AssigneeView {
        AssigneeView {
            email: assignee.email.clone(),
            name: assignee.name.clone(),
        }
    }
}

/// Whose tickets a list shows, as a caller names them: themselves, nobody, or a user by
/// address. Parsed once at the edge; [`AssigneeChoice::filter`] finds the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssigneeChoice {
    Me,
    Nobody,
    Email(String),
}

impl AssigneeChoice {
    /// `me`, `none`, or an address (any case).
    pub fn parse(text: &str) -> AssigneeChoice {
        let text = text.trim();
        if text.eq_ignore_ascii_case("me") {
            AssigneeChoice::Me
        } else if text.eq_ignore_ascii_case("none") {
            AssigneeChoice::Nobody
        } else {
            AssigneeChoice::Email(text.to_lowercase())
        }
    }

    /// The store's filter. "me" is the signed-in person, or for an API token the person
    /// who made it; an address nobody has is a 422 about `assignee`.
    pub async fn filter(&self, state: &AppState, actor: &Actor) -> ApiResult<AssigneeFilter> {
        match self {
            AssigneeChoice::Nobody => Ok(AssigneeFilter::Nobody),
            AssigneeChoice::Me => match actor.user_id().or(actor.token_maker_id()) {
                Some(id) => Ok(AssigneeFilter::User(id)),
                None => Err(ApiError::validation(
                    "this API token belongs to nobody, so it has no tickets of its own; name an assignee by address",
                )
                .about("assignee")),
            },
            AssigneeChoice::Email(email) => match state.store().user_by_email(email).await? {
                Some(user) => Ok(AssigneeFilter::User(user.id)),
                None => Err(no_such_user(email)),
            },
        }
    }
}

/// The user an address in a change names, who must be able to sign in.
pub async fn assignable_user(state: &AppState, email: &str) -> ApiResult<User> {
    match state.store().user_by_email(email.trim()).await? {
        Some(user) if !user.disabled => Ok(user),
        Some(user) => Err(ApiError::validation(format!(
            "{} is disabled and cannot be assigned tickets; enable the user first or pick another",
            user.email
        ))
        .about("assignee")),
        None => Err(no_such_user(email)),
    }
}

fn no_such_user(email: &str) -> ApiError {
    ApiError::validation(format!(
        "there is no user with the address {}; assign an agent or admin by the address they sign in with",
        email.trim()
    ))
    .about("assignee")
}
