//! Getting in and out: `/`, the first-run setup, sign-in and sign-out.
//!
//! These pages go through the API's own handlers (`api::setup`, `api::session`), so
//! the rules (password length, the sign-in limit, timing that does not reveal who has
//! an account) live in one place; this file only turns their answers into pages and
//! redirects.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use serde::Deserialize;

use crate::AppState;
use crate::api::session::SignIn;
use crate::api::setup::FirstAdmin;
use crate::auth::actor::identify;
use crate::input::{ApiJson, ClientIp};
use crate::ui::flash::Flash;
use crate::ui::form::{CheckedForm, NoFields, PageQuery, PublicForm};
use crate::ui::page::{self, Layout, impl_page};
use crate::ui::viewer::{Viewer, safe_next};

/// Where people land after signing in when no other page was asked for.
const LANDING: &str = "/tickets";

/// `/`: the tickets when signed in, else the sign-in page (or the setup while nobody
/// has an account).
pub(crate) async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match identify(&state, &headers).await {
        Ok(Some(_)) => page::see_other(LANDING),
        Ok(None) | Err(_) => match state.store().count_users().await {
            Ok(0) => page::see_other("/setup"),
            Ok(_) => page::see_other("/login"),
            Err(error) => page::api_error(&state, None, &error.into()),
        },
    }
}

/// The `Set-Cookie` headers of an API answer (the session cookie), onto our redirect.
pub(crate) fn carry_cookies(from: &Response, to: &mut Response) {
    for value in from.headers().get_all(header::SET_COOKIE) {
        to.headers_mut().append(header::SET_COOKIE, value.clone());
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "setup.html")]
pub(crate) struct SetupPage {
    layout: Layout,
    email: String,
    name: String,
    error: Option<String>,
}
impl_page!(SetupPage, SignInPage);

/// The setup form, while no user exists.
pub(crate) async fn setup_form(State(state): State<AppState>) -> Response {
    match state.store().count_users().await {
        Ok(0) => page::show(
            &state,
            StatusCode::OK,
            SetupPage {
                layout: Layout::public("Set up popdesk", None),
                email: String::new(),
                name: String::new(),
                error: None,
            },
        ),
        Ok(_) => page::see_other("/login"),
        Err(error) => page::api_error(&state, None, &error.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct SetupForm {
    email: String,
    #[serde(default)]
    name: String,
    password: String,
    #[serde(default)]
    setup_code: String,
}

/// Creates the first admin and signs them in.
pub(crate) async fn setup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    PublicForm(form): PublicForm<SetupForm>,
) -> Response {
    let first = FirstAdmin {
        email: form.email.clone(),
        password: form.password,
        name: Some(form.name.clone()),
        setup_code: form.setup_code,
    };
    match crate::api::setup::create_admin(State(state.clone()), ClientIp(ip), ApiJson(first)).await
    {
        Ok(answer) => {
            let mut response = page::see_other_with(
                &state,
                "/mailboxes/new",
                Flash::done(
                    "popdesk is set up and you are signed in. Add the first mailbox so mail comes in.",
                ),
            );
            carry_cookies(&answer, &mut response);
            response
        }
        // Someone finished the setup in the meantime.
        Err(error) if error.status() == StatusCode::CONFLICT => page::see_other("/login"),
        Err(error) => page::show(
            &state,
            error.status(),
            SetupPage {
                layout: Layout::public("Set up popdesk", None),
                email: form.email,
                name: form.name,
                error: Some(page::api_message(&error)),
            },
        ),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub(crate) struct SignInPage {
    layout: Layout,
    email: String,
    /// Where to go afterwards (already checked by [`safe_next`]); empty for the tickets.
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

fn checked_next(next: Option<&str>) -> String {
    next.and_then(safe_next).unwrap_or("").to_string()
}

/// The sign-in form (or straight on, for someone signed in already).
pub(crate) async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageQuery(query): PageQuery<NextQuery>,
) -> Response {
    let next = checked_next(query.next.as_deref());
    if let Ok(Some(_)) = identify(&state, &headers).await {
        return page::see_other(if next.is_empty() { LANDING } else { &next });
    }
    match state.store().count_users().await {
        Ok(0) => return page::see_other("/setup"),
        Ok(_) => {}
        Err(error) => return page::api_error(&state, None, &error.into()),
    }
    page::show(
        &state,
        StatusCode::OK,
        SignInPage {
            layout: Layout::public("Sign in", Flash::from_headers(&headers)),
            email: String::new(),
            next,
            error: None,
        },
    )
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    email: String,
    password: String,
    next: Option<String>,
}

/// Signs in and goes on to `next` (or the tickets).
pub(crate) async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PublicForm(form): PublicForm<SignInForm>,
) -> Response {
    let next = checked_next(form.next.as_deref());
    let sign_in = SignIn {
        email: form.email.clone(),
        password: form.password,
    };
    match crate::api::session::sign_in(
        State(state.clone()),
        ClientIp(ip),
        headers,
        ApiJson(sign_in),
    )
    .await
    {
        Ok(answer) => {
            let mut response = page::see_other(if next.is_empty() { LANDING } else { &next });
            carry_cookies(&answer, &mut response);
            response
        }
        Err(error) => {
            let message = match error.status() {
                StatusCode::UNAUTHORIZED => "The email or password is wrong.".to_string(),
                StatusCode::TOO_MANY_REQUESTS => {
                    let wait = error
                        .clone()
                        .into_response()
                        .headers()
                        .get(header::RETRY_AFTER)
                        .and_then(|v: &HeaderValue| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(60);
                    let minutes = wait.div_ceil(60);
                    let unit = if minutes == 1 { "minute" } else { "minutes" };
                    format!("Too many attempts. Wait {minutes} {unit} and try again.")
                }
                _ => page::api_message(&error),
            };
            page::show(
                &state,
                error.status(),
                SignInPage {
                    layout: Layout::public("Sign in", None),
                    email: form.email,
                    next,
                    error: Some(message),
                },
            )
        }
    }
}

/// Signs out: ends the session and goes to the sign-in page.
pub(crate) async fn logout(
    State(state): State<AppState>,
    viewer: Viewer,
    CheckedForm(NoFields {}): CheckedForm<NoFields>,
) -> Response {
    match crate::api::session::sign_out(State(state.clone()), viewer.actor.clone()).await {
        Ok(answer) => {
            let mut response =
                page::see_other_with(&state, "/login", Flash::done("You are signed out."));
            carry_cookies(&answer, &mut response);
            response
        }
        Err(error) => page::api_error(&state, Some(&viewer), &error),
    }
}
