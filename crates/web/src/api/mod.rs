//! The JSON API under `/api/v1`: one file per resource.
//!
//! Three routes are public because they are how a caller gets credentials (or learns
//! about the API): `GET/POST /setup`, `POST /session` and `GET /openapi.json`. Every
//! other route sits behind [`authenticate`](crate::auth::actor::authenticate); a handler
//! that takes [`Admin`](crate::auth::Admin) is admin-only. Cookie-authenticated requests
//! that change something pass the cross-site check first.

pub mod assignment;
pub mod mailboxes;
pub mod merge;
pub mod messages;
pub mod oauth;
pub mod preferences;
pub mod replies;
pub mod session;
pub mod setup;
pub mod tickets;
pub mod tokens;
pub mod users;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{MethodRouter, delete, get, patch, post};

use crate::error::ApiError;
use crate::{AppState, auth, openapi};

/// Where the API lives.
pub const PREFIX: &str = "/api/v1";

/// Routes anyone may call: how a caller gets credentials, or learns about the API.
/// Paths are relative to [`PREFIX`].
fn public_routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/setup", get(setup::status).post(setup::create_admin)),
        // Signing in is public; who-am-I and signing out take an `Actor`, which
        // authenticates by itself outside the protected group.
        (
            "/session",
            post(session::sign_in)
                .get(session::show)
                .delete(session::sign_out),
        ),
        ("/openapi.json", get(openapi::serve)),
    ]
}

/// Routes behind authentication. Paths are relative to [`PREFIX`]. A reply's body may
/// be larger than any other (its attachments): `reply_body_limit`.
fn protected_routes(reply_body_limit: usize) -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/tickets", get(tickets::list)),
        (
            "/tickets/{number}",
            get(tickets::show).patch(tickets::update),
        ),
        ("/tickets/{number}/notes", post(tickets::add_note)),
        ("/tickets/{number}/merge", post(merge::merge)),
        (
            "/tickets/{number}/replies",
            post(replies::create).layer(DefaultBodyLimit::max(reply_body_limit)),
        ),
        ("/outbox", get(replies::list)),
        ("/outbox/{id}/retry", post(replies::retry)),
        ("/outbox/{id}/attachments/{index}", get(replies::attachment)),
        ("/messages", get(messages::list)),
        ("/messages/{id}", get(messages::show)),
        ("/messages/{id}/raw", get(messages::raw)),
        ("/messages/{id}/reprocess", post(messages::reprocess)),
        (
            "/messages/{id}/attachments/{index}",
            get(messages::attachment),
        ),
        ("/mailboxes", get(mailboxes::list).post(mailboxes::create)),
        (
            "/mailboxes/{id}",
            get(mailboxes::show)
                .patch(mailboxes::update)
                .delete(mailboxes::remove),
        ),
        ("/mailboxes/{id}/test", post(mailboxes::test)),
        (
            "/mailboxes/{id}/test-sending",
            post(mailboxes::test_sending),
        ),
        ("/mailboxes/{id}/fetch", post(mailboxes::fetch_now)),
        ("/mailboxes/{id}/oauth/connect", post(oauth::connect)),
        ("/mailboxes/{id}/oauth/device", post(oauth::device)),
        ("/mailboxes/{id}/runs", get(mailboxes::runs)),
        ("/mailboxes/{id}/failing", get(mailboxes::failing)),
        ("/mailboxes/{id}/failing/retry", post(mailboxes::try_again)),
        ("/users", get(users::list).post(users::create)),
        (
            "/users/{id}",
            get(users::show).patch(users::update).delete(users::remove),
        ),
        ("/tokens", get(tokens::list).post(tokens::create)),
        ("/tokens/{id}", delete(tokens::revoke)),
        ("/session/password", patch(session::change_password)),
        (
            "/session/preferences",
            get(preferences::show).patch(preferences::update),
        ),
    ]
}

/// Every route the service answers, as full paths in axum's pattern syntax: for the
/// test that holds the OpenAPI document against the router.
pub fn route_paths() -> Vec<String> {
    public_routes()
        .into_iter()
        .chain(protected_routes(0))
        .map(|(path, _)| format!("{PREFIX}{path}"))
        .chain(
            [messages::CID_PATH, "/healthz", "/metrics"]
                .into_iter()
                .map(str::to_string),
        )
        .collect()
}

/// The routes under [`PREFIX`].
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let mut protected = Router::new();
    for (path, route) in protected_routes(state.reply_body_limit()) {
        protected = protected.route(path, route);
    }
    // route_layer: unknown paths fall through to the JSON 404 below, not to a 401.
    let protected =
        protected.route_layer(from_fn_with_state(state.clone(), auth::actor::authenticate));
    let mut api = Router::new();
    for (path, route) in public_routes() {
        api = api.route(path, route);
    }
    api.merge(protected)
        .fallback(unknown_route)
        .layer(from_fn_with_state(state.clone(), auth::csrf::check))
}

async fn unknown_route() -> ApiError {
    ApiError::not_found("there is no such API route; see /api/v1/openapi.json")
}
