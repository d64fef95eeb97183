//! The cross-site check for cookie-authenticated requests: tower-http's CSRF layer
//! (Sec-Fetch-Site, then Origin against Host), applied to requests without an
//! Authorization header. A bearer request cannot be forged by another site's page, and
//! API clients should not have to send browser headers.
//!
//! The layer lets a request with neither header through (an old browser, or a client
//! that strips them). For an unsafe request that carries a session cookie that is not
//! enough: every browser popdesk supports sends one of the two on such a request, so
//! their absence means a client popdesk cannot vouch for, and the request is refused.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use tower::{Layer as _, ServiceExt as _};
use tower_http::csrf::{CsrfLayer, ProtectionError};

use crate::AppState;
use crate::auth::token::has_authorization;
use crate::error::ApiError;

pub(crate) type CrossSiteLayer = CsrfLayer<fn(ProtectionError) -> Response>;

/// The layer with the configured trusted origins; an origin that is not in browser form
/// is left out with an error in the log (it could never match anyway).
pub(crate) fn layer(trusted_origins: &[String]) -> CrossSiteLayer {
    let mut layer = CsrfLayer::new();
    for origin in trusted_origins {
        layer = match layer.clone().add_trusted_origin(origin) {
            Ok(with_origin) => with_origin,
            Err(error) => {
                tracing::error!(%origin, ?error, "ignoring a trusted origin that is not in the form https://host[:port]");
                layer
            }
        };
    }
    layer.with_rejection_response(refused as fn(ProtectionError) -> Response)
}

fn refused(error: ProtectionError) -> Response {
    tracing::info!(kind = ?error.kind(), "refused a cross-site request");
    ApiError::forbidden(
        "this request came from another site and was refused; use popdesk's own pages, or an API token",
    )
    .into_response()
}

/// Middleware: the cross-site check for every request that does not bring its own
/// Authorization header.
pub(crate) async fn check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if has_authorization(request.headers()) {
        return next.run(request).await;
    }
    if is_unsafe(request.method())
        && has_session_cookie(request.headers())
        && !names_its_site(request.headers())
    {
        tracing::info!(method = %request.method(), "refused a signed-in request that says nothing of its site");
        return ApiError::forbidden(
            "a signed-in request that changes something must come from a browser that sends Sec-Fetch-Site or Origin; programs use an API token",
        )
        .into_response();
    }
    match state.cross_site().layer(next).oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// Methods that may change something (RFC 9110's unsafe methods).
fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Whether the request carries a popdesk session cookie (valid or not: the check comes
/// before the session is looked up).
fn has_session_cookie(headers: &HeaderMap) -> bool {
    crate::auth::session::token(headers).is_some()
}

/// Whether the request says where it comes from.
fn names_its_site(headers: &HeaderMap) -> bool {
    headers.contains_key("sec-fetch-site") || headers.contains_key(header::ORIGIN)
}
