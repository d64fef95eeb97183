//! The HTML web UI: server-rendered pages (askama templates in `crates/web/templates/`)
//! for agents working tickets and admins running mailboxes, enhanced by htmx where a
//! round trip without a page load reads better. Every main flow works without
//! JavaScript: plain forms, POST, then `303 See Other` to the next page.
//!
//! The UI holds no rules of its own: it signs in, changes tickets, mailboxes, users and
//! tokens through the API's handlers (called as functions), so validation, the
//! last-admin rule and scheduler reloads are the API's, once.
//!
//! # Routes and labels
//!
//! These are a contract with the browser tests: names of pages, fields and buttons.
//!
//! | route | page |
//! |---|---|
//! | `GET /` | 303 to `/tickets`, `/login`, or `/setup` while no user exists |
//! | `GET/POST /setup` | first admin: "Email", "Name", "Password", button "Create admin"; then 303 to `/mailboxes/new` |
//! | `GET/POST /login`, `POST /logout` | "Email", "Password", "Sign in"; "Sign out" in the navigation |
//! | `GET /tickets?status=&mailbox=&q=&assignee=&sort=&after=&before=&page=` | tabs "Mine", "Unassigned", "All"; filters "Status", "Mailbox", "Assignee", "Sort", "Search", button "Filter"; counts per status; table with checkboxes and the bulk actions; "Previous"/"Next" (keyset), page numbers and "Go to page" |
//! | `GET /tickets/{number}` | the thread; "Status" + "Change status", "Internal note" + "Add note"; replies with their state; the reply box: "Reply", "Cc", "Reply to all", "Attachments", "Send and set Pending" / "Send and set Resolved" |
//! | `POST /tickets/{number}/status`, `/notes` | fields `status`, `body` |
//! | `POST /tickets/{number}/assign`, `/merge` | "Assign" (`assignee`: an address, empty for nobody) + "Assign", "Assign to me"; "Merge into ticket" (`into`) + "Merge" |
//! | `POST /tickets/bulk` | the list's ticked `ticket`s, `action=status\|assign\|merge` with `status`, `assignee`, `into`; `back` |
//! | `POST /tickets/{number}/replies` | multipart: `csrf` (first), `body`, `cc`, `reply_all`, `attachments` (files), `then=pending\|resolved`; refused: the page again (422) with the sentence beside the box |
//! | `POST /tickets/{number}/replies/{id}/retry` | "Send again" on a failed reply |
//! | `GET /messages/{id}/html` | a message's sanitized HTML, for the sandboxed iframe only |
//! | `GET /mailboxes`, `/mailboxes/new?preset=`, `/mailboxes/{id}` | health, presets, edit, test, fetch, history |
//! | `POST /mailboxes`, `/mailboxes/{id}`, `/{id}/test`, `/{id}/test-sending`, `/{id}/trust`, `/{id}/fetch`, `/{id}/enabled`, `/{id}/delete` | "Add mailbox" tests first; a failed test offers "Save anyway (disabled)" / "Save and keep trying" (`save_anyway=disabled|enabled`) and, for an untrusted certificate, "Trust this certificate"; the form's "Sending replies" part, "Test sending" on the mailbox page |
//! | `POST /mailboxes/{id}/oauth/connect`, `/{id}/oauth/device`, `GET /oauth/callback` | OAuth2 on the mailbox page: "Connect" / "Reconnect" (to the provider and back), "Connect with a code" (the device flow's code shown on the page); the callback lands on the mailbox page with "Connected to ..." or says why not (400) |
//! | `GET /messages?status=failed\|ignored`, `/messages/{id}`, `POST /messages/{id}/reprocess` | |
//! | `GET/POST /users`, `POST /users/{id}/role`, `/{id}/enabled`, `/{id}/delete` | |
//! | `GET /users/{id}`, `POST /users/{id}/profile`, `/{id}/password`, `/{id}/mailboxes` | a user's page ("Edit" on the list): "Name" + "Role", "Save name and role"; the mailboxes they work as checkboxes (`mailbox=ID`, repeated), "Save mailboxes"; "New password", "Set new password" |
//! | `GET/POST /tokens`, `POST /tokens/{id}/revoke` | |
//! | `GET/POST /preferences`, `POST /preferences/password` | the viewer's own: "Time zone", the "Mail me when" checkboxes, "Save preferences"; "Current password", "New password", "Change password"; linked from the viewer's name in the navigation |
//! | `GET /assets/{htmx.min.js,app.css,app.js}` | built into the binary |
//!
//! Where the pages go beyond, or differ from, the contract the browser tests were
//! written against:
//!
//! - Deleting asks first, on a page: "Delete mailbox" on the mailbox page is a button
//!   of a GET form that opens `GET /mailboxes/{id}/delete`, whose own "Delete mailbox"
//!   button posts `POST /mailboxes/{id}/delete`. Users alike: "Delete" opens
//!   `GET /users/{id}/delete`, button "Delete user".
//! - A user's row has buttons and no fields: "Make admin"/"Make agent"
//!   (`POST /users/{id}/role`, `role=admin|agent`), "Disable"/"Enable"
//!   (`POST /users/{id}/enabled`, `enabled=true|false`). A visually hidden address
//!   follows each button's text, so screen readers tell the rows apart.
//! - After the setup the new admin lands on `/mailboxes/new`: the first thing a new
//!   install needs.
//! - The mailbox form has two fields more: "Delete kept mail after (days)" and
//!   "First fetch" (import what is there, or only new mail).
//! - The mail document has no `<base target="_blank">`: the sanitizer already gives
//!   every link `target="_blank"`, and the browser tests want no `<base>`/`<meta>` in
//!   the frame.
//! - "Waiting messages" is the processing backlog (stored, not yet made into tickets);
//!   beside it, what the server listed at the last successful fetch.
//! - Wrong credentials answer 401 with the form, too many attempts 429; a new API token
//!   is shown on the page that answers the POST (200), never stored to show later.
//!
//! # Safety in the browser
//!
//! - Every page: the content policy in [`PAGE_CSP`] (no inline script or style at all),
//!   `X-Frame-Options: DENY`, `Cache-Control: no-store` (pages hold customer mail).
//! - Mail HTML never enters a page: it is served alone by `/messages/{id}/html` under a
//!   sandboxing policy and shown in `<iframe sandbox>` without `allow-scripts`.
//! - Every POST passes the cross-site check (`Sec-Fetch-Site`/`Origin`) and, from a
//!   signed-in page, the form token (see `ui/viewer.rs`).

// Helpers here fail with the page to show (an axum `Response`, 128 bytes): that is
// what every handler answers anyway, so boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

mod assets;
mod assignment;
mod bulk;
mod display;
mod flash;
mod form;
mod intake_banner;
mod list_view;
mod mail_html;
mod mailboxes;
mod merge;
mod messages;
mod oauth;
mod page;
mod preferences;
mod presets;
mod replies;
mod sign_in;
mod tickets;
mod tokens;
mod users;
mod viewer;

pub use mail_html::MAIL_CSP;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::AppState;
use crate::error::ApiError;

/// The content policy of every page: nothing inline, nothing from elsewhere, frames
/// only from popdesk itself (the mail iframe), never framed by anyone.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; frame-src 'self'; frame-ancestors 'none'; form-action 'self'; \
base-uri 'none'; object-src 'none'";

/// The error page for a request refused before it reached a page's handler (see
/// [`crate::edge`]), with the viewer's navigation when someone is signed in.
pub(crate) async fn error_page(
    state: &AppState,
    parts: &mut axum::http::request::Parts,
    status: axum::http::StatusCode,
    message: String,
) -> axum::response::Response {
    use axum::extract::FromRequestParts as _;
    let viewer = viewer::Viewer::from_request_parts(parts, state).await.ok();
    page::error(state, viewer.as_ref(), status, message)
}

/// The UI's routes, with their own not-found page for every path nobody else answers.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(sign_in::home))
        .route("/setup", get(sign_in::setup_form).post(sign_in::setup))
        .route("/login", get(sign_in::login_form).post(sign_in::login))
        .route("/logout", post(sign_in::logout))
        .route("/tickets", get(tickets::list))
        .route("/tickets/{number}", get(tickets::show))
        .route("/tickets/{number}/status", post(tickets::change_status))
        .route("/tickets/{number}/notes", post(tickets::add_note))
        .route("/tickets/{number}/assign", post(assignment::assign))
        .route("/tickets/{number}/merge", post(merge::merge))
        .route("/tickets/bulk", post(bulk::apply))
        // The reply form carries files: its own body limit, the API reply route's.
        .route(
            "/tickets/{number}/replies",
            post(replies::reply).layer(DefaultBodyLimit::max(state.reply_body_limit())),
        )
        .route(
            "/tickets/{number}/replies/{id}/retry",
            post(replies::send_again),
        )
        // `/messages/{id}/cid/{content_id}` (inline images) is the API's, beside these.
        .route("/messages", get(messages::list))
        .route("/messages/{id}", get(messages::show))
        .route("/messages/{id}/html", get(mail_html::show))
        .route("/messages/{id}/reprocess", post(messages::reprocess))
        .route("/mailboxes", get(mailboxes::list).post(mailboxes::create))
        .route("/mailboxes/new", get(mailboxes::new_form))
        .route(
            "/mailboxes/{id}",
            get(mailboxes::show).post(mailboxes::update),
        )
        .route("/mailboxes/{id}/test", post(mailboxes::test))
        .route(
            "/mailboxes/{id}/test-sending",
            post(mailboxes::test_sending),
        )
        .route("/mailboxes/{id}/trust", post(mailboxes::trust))
        .route("/mailboxes/{id}/failing/retry", post(mailboxes::try_again))
        .route("/mailboxes/{id}/fetch", post(mailboxes::fetch))
        .route("/mailboxes/{id}/enabled", post(mailboxes::set_enabled))
        .route("/mailboxes/{id}/oauth/connect", post(oauth::connect))
        .route("/mailboxes/{id}/oauth/device", post(oauth::device))
        // The provider sends the admin's browser back here (`{public_url}/oauth/callback`).
        .route(crate::public_url::CALLBACK_PATH, get(oauth::callback))
        .route(
            "/mailboxes/{id}/delete",
            get(mailboxes::confirm_delete).post(mailboxes::delete),
        )
        .route("/users", get(users::list).post(users::create))
        .route("/users/{id}", get(users::show))
        .route("/users/{id}/profile", post(users::update_profile))
        .route("/users/{id}/password", post(users::reset_password))
        .route("/users/{id}/mailboxes", post(users::set_mailboxes))
        .route("/users/{id}/role", post(users::set_role))
        .route("/users/{id}/enabled", post(users::set_enabled))
        .route(
            "/users/{id}/delete",
            get(users::confirm_delete).post(users::delete),
        )
        .route(
            "/preferences",
            get(preferences::show).post(preferences::save),
        )
        .route("/preferences/password", post(preferences::change_password))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}/revoke", post(tokens::revoke))
        .route("/assets/htmx.min.js", get(assets::htmx))
        .route("/assets/app.css", get(assets::app_css))
        .route("/assets/app.js", get(assets::app_js))
        .fallback(not_found)
        .layer(from_fn_with_state(state.clone(), viewer_time_zone))
        .layer(from_fn_with_state(state.clone(), cross_site_check))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static(PAGE_CSP),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// The API's cross-site check in front of every UI route; its refusal (a JSON error,
/// made for API clients) becomes the 403 page.
async fn cross_site_check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = crate::auth::csrf::check(State(state.clone()), request, next).await;
    let refused = response.status() == StatusCode::FORBIDDEN
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if refused {
        page::forbidden(&state, None, form::FORM_REFUSED)
    } else {
        response
    }
}

/// Shows the page's times in the signed-in viewer's time zone (see `display::When`).
/// The viewer found here is kept in the request, so the page's own extractor does not
/// look the session up again. Assets and pages nobody is signed in to skip the lookup.
async fn viewer_time_zone(State(state): State<AppState>, request: Request, next: Next) -> Response {
    use axum::extract::FromRequestParts as _;
    if request.uri().path().starts_with("/assets/") {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let user_id = match viewer::Viewer::from_request_parts(&mut parts, &state).await {
        Ok(viewer) => viewer.actor.user_id(),
        Err(_) => None,
    };
    let zone = match user_id {
        Some(user_id) => match state.store().preferences(user_id).await {
            Ok(preferences) => crate::time_zone::zone_or_utc(&preferences.time_zone),
            Err(error) => {
                tracing::warn!(%error, "the viewer's time zone could not be read; showing UTC");
                jiff::tz::TimeZone::UTC
            }
        },
        None => jiff::tz::TimeZone::UTC,
    };
    display::in_zone(zone, next.run(Request::from_parts(parts, body))).await
}

/// Any path no route answers: the 404 page (JSON under `/api/`, where clients expect
/// it).
async fn not_found(State(state): State<AppState>, request: Request) -> Response {
    if request.uri().path().starts_with("/api/") {
        return ApiError::not_found("there is no such route").into_response();
    }
    let (mut parts, _body) = request.into_parts();
    let viewer = {
        use axum::extract::FromRequestParts as _;
        viewer::Viewer::from_request_parts(&mut parts, &state)
            .await
            .ok()
    };
    page::not_found(
        &state,
        viewer.as_ref(),
        "There is no page at this address. It may have been moved, or the link was mistyped.",
    )
}
