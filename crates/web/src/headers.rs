//! Security headers on every response.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

/// The API's content policy: a JSON response loads nothing and is framed by nobody. Set
/// only when a handler did not choose its own (the HTML pages will).
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// `X-Content-Type-Options: nosniff` (a browser never guesses a type, so an attachment
/// cannot turn into a page), `Referrer-Policy: no-referrer` (ticket URLs stay private),
/// and the content policy.
pub(crate) fn with_security_headers<S>(router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static(API_CSP),
        ))
}
