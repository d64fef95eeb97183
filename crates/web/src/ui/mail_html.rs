//! `/messages/{id}/html`: a message's sanitized HTML as a document of its own, for the
//! `<iframe sandbox>` on the ticket page. Mail HTML is never part of a page: here it
//! runs under a policy that forbids scripts, plugins and remote loads, and is framed
//! only by popdesk's own pages.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};

use crate::AppState;
use crate::ui::display::person;
use crate::ui::form::PagePath;
use crate::ui::page;
use crate::ui::viewer::Viewer;

/// The mail document's content policy: a sandbox (no scripts, no forms, no top-level
/// navigation; same origin only so its images carry the session cookie), nothing loads
/// but popdesk's own images (the inline `cid:` ones) and `data:` images, styles only
/// inline (mail carries its own), framed only by popdesk.
pub const MAIL_CSP: &str = "sandbox allow-same-origin allow-popups; default-src 'none'; \
img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'";

#[derive(Template)]
#[template(path = "mail_html.html")]
struct MailDocument {
    title: String,
    /// Sanitized when the message was processed; see the template.
    body: String,
}

pub(crate) async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(id): PagePath<i64>,
) -> Response {
    // Read directly, not through the processing record: reprocessing resets the record
    // while the entry (and its HTML) stays until the processor replaces it.
    // Only the mail of a ticket the viewer sees (see `auth::scope`).
    let entry = match crate::auth::scope::entry(&state, &viewer.actor, id).await {
        Ok(entry) => entry,
        Err(error) => return page::api_error(&state, Some(&viewer), &error.into()),
    };
    let Some((entry, html)) = entry.and_then(|e| e.html_body.clone().map(|html| (e, html))) else {
        return page::not_found(
            &state,
            Some(&viewer),
            format!("Message #{id} has no formatted (HTML) text."),
        );
    };
    // An inline image the mail refers to but does not carry (or carries as something
    // that is no image) would be a broken-image icon: it is left out.
    let carried: Vec<&str> = entry
        .attachments
        .iter()
        .filter(|a| crate::download::inline_image_type(&a.content_type).is_some())
        .filter_map(|a| a.content_id.as_deref())
        .collect();
    let html = mail::drop_missing_inline_images(&html, &carried);
    let document = MailDocument {
        title: format!(
            "Message from {}",
            person(entry.from_address.as_deref(), entry.from_name.as_deref())
        ),
        body: html,
    };
    let html = match document.render() {
        Ok(html) => html,
        Err(error) => {
            tracing::error!(%error, "could not render a mail document");
            return page::error(
                &state,
                Some(&viewer),
                StatusCode::INTERNAL_SERVER_ERROR,
                "The message could not be shown; the details are in the server's log.",
            );
        }
    };
    let mut response = html.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(MAIL_CSP),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    response
}
