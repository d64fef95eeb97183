//! API tokens (admin): the list, creating one (its secret shown once, on the page that
//! answers the form), revoking.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use store::Role;

use crate::AppState;
use crate::api::users::RoleName;
use crate::ui::display::When;
use crate::ui::flash::Flash;
use crate::ui::form::{CheckedForm, Choice, NoFields, PagePath};
use crate::ui::page::{self, Layout, Section, impl_page};
use crate::ui::viewer::{AdminViewer, Viewer};

pub(crate) struct TokenRow {
    id: i64,
    name: String,
    role: &'static str,
    prefix: String,
    created: When,
    last_used: Option<When>,
    revoked: Option<When>,
    expires: Option<When>,
    /// Past its expiry: listed, but no longer working.
    expired: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "tokens.html")]
pub(crate) struct TokensPage {
    layout: Layout,
    rows: Vec<TokenRow>,
    /// A token just made: its secret, shown this once.
    created: Option<String>,
    name: String,
    /// The lifetime typed in, in days ("" for none), kept when the form is refused.
    days: String,
    roles: Vec<Choice>,
    error: Option<String>,
}
impl_page!(TokensPage);

fn role_choices(selected: &str) -> Vec<Choice> {
    vec![
        Choice::new("agent", "Agent", selected != "admin"),
        Choice::new("admin", "Admin", selected == "admin"),
    ]
}

/// The page, with a new token's secret or the form's error.
struct Extra {
    created: Option<String>,
    name: String,
    role: String,
    days: String,
    error: Option<String>,
}

async fn tokens_page(
    state: &AppState,
    viewer: &Viewer,
    extra: Extra,
    status: StatusCode,
) -> Response {
    let tokens = match state.store().api_tokens().await {
        Ok(tokens) => tokens,
        Err(error) => return page::api_error(state, Some(viewer), &error.into()),
    };
    let now = state.now();
    page::show(
        state,
        status,
        TokensPage {
            layout: Layout::signed_in(viewer, "API tokens", Section::Tokens),
            rows: tokens
                .iter()
                .map(|token| TokenRow {
                    id: token.id,
                    name: token.name.clone(),
                    role: match token.role {
                        Role::Admin => "Admin",
                        Role::Agent => "Agent",
                    },
                    prefix: token.prefix.clone(),
                    created: When::new(token.created_at, now),
                    last_used: token.last_used_at.map(|at| When::new(at, now)),
                    revoked: token.revoked_at.map(|at| When::new(at, now)),
                    expires: token.expires_at.map(|at| When::new(at, now)),
                    expired: token.expires_at.is_some_and(|at| at <= now),
                })
                .collect(),
            created: extra.created,
            name: extra.name,
            days: extra.days,
            roles: role_choices(&extra.role),
            error: extra.error,
        },
    )
}

pub(crate) async fn list(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
) -> Response {
    let extra = Extra {
        created: None,
        name: String::new(),
        role: String::new(),
        days: String::new(),
        error: None,
    };
    tokens_page(&state, &viewer, extra, StatusCode::OK).await
}

#[derive(Deserialize)]
pub(crate) struct NewTokenFields {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    /// Days until the token stops working; blank for a token that does not expire.
    #[serde(default)]
    expires_in_days: String,
}

/// Creates a token and shows its secret once. Answered with the page itself rather than
/// a redirect: the secret must never be stored to show it later.
pub(crate) async fn create(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    CheckedForm(fields): CheckedForm<NewTokenFields>,
) -> Response {
    let role = match fields.role.as_str() {
        "admin" => RoleName::Admin,
        "agent" | "" => RoleName::Agent,
        _ => {
            let extra = Extra {
                created: None,
                name: fields.name,
                role: String::new(),
                days: fields.expires_in_days,
                error: Some("Pick a role from the list.".to_string()),
            };
            return tokens_page(&state, &viewer, extra, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    let days = fields.expires_in_days.trim();
    let expires_in_days = if days.is_empty() {
        None
    } else {
        match days.parse::<u32>() {
            Ok(days) => Some(days),
            Err(_) => {
                let extra = Extra {
                    created: None,
                    name: fields.name,
                    role: fields.role,
                    days: fields.expires_in_days,
                    error: Some(format!(
                        "Expires after: give a number of days from 1 to {}, or leave it empty for a token that does not expire.",
                        admin::MAX_TOKEN_DAYS
                    )),
                };
                return tokens_page(&state, &viewer, extra, StatusCode::UNPROCESSABLE_ENTITY).await;
            }
        }
    };
    let made = match crate::auth::token::new_token() {
        Ok(made) => made,
        Err(error) => return page::api_error(&state, Some(&viewer), &error),
    };
    let new = admin::NewToken {
        name: &fields.name,
        role: role.into(),
        hash: &made.hash,
        prefix: &made.prefix,
        created_by: viewer.actor.token_maker_id(),
        expires_in_days,
    };
    match state
        .admin()
        .create_token(&new)
        .await
        .map_err(crate::error::ApiError::from)
    {
        Ok(_) => {
            let extra = Extra {
                created: Some(made.secret),
                name: String::new(),
                role: String::new(),
                days: String::new(),
                error: None,
            };
            tokens_page(&state, &viewer, extra, StatusCode::OK).await
        }
        Err(error) if error.status().is_client_error() => {
            let extra = Extra {
                created: None,
                name: fields.name,
                role: fields.role,
                days: fields.expires_in_days,
                error: Some(page::api_message(&error)),
            };
            tokens_page(&state, &viewer, extra, error.status()).await
        }
        Err(error) => page::api_error(&state, Some(&viewer), &error),
    }
}

/// Revokes a token: it stops working at once.
pub(crate) async fn revoke(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
    CheckedForm(NoFields {}): CheckedForm<NoFields>,
) -> Response {
    match state
        .admin()
        .revoke_token(id)
        .await
        .map_err(crate::error::ApiError::from)
    {
        Ok(_) => page::see_other_with(
            &state,
            "/tokens",
            Flash::done("The token is revoked: it stops working at once."),
        ),
        Err(error) if error.status() == StatusCode::NOT_FOUND => {
            page::see_other_with(&state, "/tokens", Flash::failed(page::api_message(&error)))
        }
        Err(error) => page::api_error(&state, Some(&viewer), &error),
    }
}
