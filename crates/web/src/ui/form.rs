//! Reading what a page sends: form bodies (with the form token checked), paths and query
//! strings. A failure is a page in the site's layout, never axum's plain text.
//!
//! Form structs hold text (`String`, `Option<String>` for checkboxes) and handlers
//! parse numbers themselves, so a typo in "Port" comes back as a sentence next to the
//! form rather than as a 400.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::auth::token::has_authorization;
use crate::ui::page;
use crate::ui::viewer::{Viewer, form_token_matches};

/// What the 403 page says when the form token is missing or wrong.
pub(crate) const FORM_REFUSED: &str = "This form could not be accepted: it is from an older \
     sign-in or from another site. Go back, reload the page and try again.";

/// A form with no fields of its own (only the token).
#[derive(Deserialize)]
pub(crate) struct NoFields {}

/// One `<option>` of a `<select>`.
#[derive(Debug, Clone)]
pub(crate) struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

impl Choice {
    pub(crate) fn new(
        value: impl Into<String>,
        label: impl Into<String>,
        selected: bool,
    ) -> Choice {
        Choice {
            value: value.into(),
            label: label.into(),
            selected,
        }
    }
}

/// Only the token, read apart from the form's own fields.
#[derive(Deserialize)]
struct TokenField {
    csrf: Option<String>,
}

/// A form posted from a signed-in page, its `csrf` field checked against the session.
/// (A request with an Authorization header needs no token: another site cannot make a
/// browser send one.)
pub(crate) struct CheckedForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for CheckedForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let viewer = request.extensions().get::<Viewer>().cloned();
        let headers = request.headers().clone();
        let bytes = body(request, state, viewer.as_ref()).await?;
        if !has_authorization(&headers) {
            let submitted = serde_urlencoded::from_bytes::<TokenField>(&bytes)
                .ok()
                .and_then(|field| field.csrf);
            if !form_token_matches(&headers, submitted.as_deref()) {
                tracing::info!("refused a UI form without a valid form token");
                return Err(page::forbidden(state, viewer.as_ref(), FORM_REFUSED));
            }
        }
        parse(&bytes, state, viewer.as_ref()).map(CheckedForm)
    }
}

/// A form posted by someone not signed in yet (sign-in, setup): no session, so no
/// token; the cross-site check guards it.
pub(crate) struct PublicForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for PublicForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let bytes = body(request, state, None).await?;
        parse(&bytes, state, None).map(PublicForm)
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

async fn body(
    request: Request,
    state: &AppState,
    viewer: Option<&Viewer>,
) -> Result<Bytes, Response> {
    if !is_form(request.headers()) {
        return Err(page::error(
            state,
            viewer,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "This address takes an HTML form. Use the page's own form.",
        ));
    }
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                page::error(
                    state,
                    viewer,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "What you sent is larger than this server accepts.",
                )
            } else {
                page::error(
                    state,
                    viewer,
                    StatusCode::BAD_REQUEST,
                    "The form could not be read. Reload the page and try again.",
                )
            }
        })
}

fn parse<T: DeserializeOwned>(
    bytes: &[u8],
    state: &AppState,
    viewer: Option<&Viewer>,
) -> Result<T, Response> {
    serde_urlencoded::from_bytes(bytes).map_err(|error| {
        tracing::info!(%error, "a UI form did not fit");
        page::error(
            state,
            viewer,
            StatusCode::BAD_REQUEST,
            "The form is missing a field this page needs. Reload the page and try again.",
        )
    })
}

/// Path parameters: one that does not parse (`/tickets/abc`) is the 404 page.
pub(crate) struct PagePath<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for PagePath<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(PagePath(value)),
            Err(_) => {
                let viewer = parts.extensions.get::<Viewer>().cloned();
                Err(page::not_found(
                    state,
                    viewer.as_ref(),
                    "There is no such page.",
                ))
            }
        }
    }
}

/// A query string; one that does not fit is a 400 page.
pub(crate) struct PageQuery<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for PageQuery<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query)
            .map(PageQuery)
            .map_err(|_| {
                let viewer = parts.extensions.get::<Viewer>().cloned();
                page::error(
                    state,
                    viewer.as_ref(),
                    StatusCode::BAD_REQUEST,
                    "The address has a parameter this page does not understand.",
                )
            })
    }
}

/// Whether htmx sent the request: it swaps only 2xx answers into the page, so a form
/// shown again with its error is a 200 for htmx (and a 4xx for a plain post).
pub(crate) fn from_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// A checkbox: sent (with any value) when ticked, absent when not.
pub(crate) fn ticked(value: Option<&String>) -> bool {
    value.is_some()
}

/// A form's text field, trimmed; `None` when empty.
pub(crate) fn filled(value: Option<&String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The query string for these pairs, leaving out empty values; "" when none is left.
pub(crate) fn query_string(pairs: &[(&str, String)]) -> String {
    let kept: Vec<(&str, &str)> = pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| (*key, value.as_str()))
        .collect();
    if kept.is_empty() {
        return String::new();
    }
    match serde_urlencoded::to_string(&kept) {
        Ok(query) => format!("?{query}"),
        Err(_) => String::new(),
    }
}

/// The field of an "Enable"/"Disable" button: `enabled=true|false`.
#[derive(Deserialize)]
pub(crate) struct EnabledForm {
    enabled: String,
}

impl EnabledForm {
    /// The choice, or the 400 page for anything else.
    pub(crate) fn enabled(
        &self,
        state: &AppState,
        viewer: &crate::ui::viewer::Viewer,
    ) -> Result<bool, Response> {
        match self.enabled.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(page::error(
                state,
                Some(viewer),
                StatusCode::BAD_REQUEST,
                "The form asked for neither enabling nor disabling.",
            )),
        }
    }
}
