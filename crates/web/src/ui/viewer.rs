//! Who is looking at a page, and the token their forms carry.
//!
//! The UI signs in through the API's own machinery (the `popdesk_session` cookie,
//! [`identify`]); a page requested without a session redirects to `/login?next=...`,
//! an agent on an admin page gets the 403 page.
//!
//! Every form of a signed-in page carries a hidden `csrf` field: HMAC-SHA256 of a fixed
//! label, keyed with the session's secret (the cookie value). Only the browser holding
//! the cookie can know it (the database keeps only the secret's hash; the cookie is
//! HttpOnly), it needs no server-side key or storage, it survives restarts, and it
//! changes with every sign-in. It backs up the cross-site check (`Sec-Fetch-Site` /
//! `Origin`) for browsers that send neither header.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

use crate::AppState;
use crate::auth::actor::identify;
use crate::auth::{Actor, session};
use crate::ui::flash::Flash;
use crate::ui::page;

/// What the form token is a MAC of: names its purpose, so the same key used for
/// anything else later can never produce a valid form token.
const FORM_TOKEN_LABEL: &[u8] = b"popdesk web UI form token v1";

/// A signed-in person (or API token) looking at a page.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub actor: Actor,
    /// The value of the hidden `csrf` field on this viewer's forms; empty for a caller
    /// without a session cookie (an API token, whose requests need no token).
    pub form_token: String,
    /// The flash message the request brought, shown once on this page.
    pub flash: Option<Flash>,
}

impl Viewer {
    pub(crate) fn is_admin(&self) -> bool {
        self.actor.is_admin()
    }

    /// How the navigation names the viewer: the user's name or address.
    pub(crate) fn name(&self) -> String {
        match self.actor.user() {
            Some(user) => user
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| user.email.clone()),
            None => self.actor.label(),
        }
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Viewer, Response> {
        if let Some(viewer) = parts.extensions.get::<Viewer>() {
            return Ok(viewer.clone());
        }
        match identify(state, &parts.headers).await {
            Ok(Some(actor)) => {
                let viewer = Viewer {
                    actor,
                    form_token: form_token(&parts.headers).unwrap_or_default(),
                    flash: Flash::from_headers(&parts.headers),
                };
                // The form extractor runs after this one and renders its 403 with the
                // viewer's navigation.
                parts.extensions.insert(viewer.clone());
                Ok(viewer)
            }
            Ok(None) => Err(sign_in_first(parts)),
            Err(error) => Err(page::api_error(state, None, &error)),
        }
    }
}

/// An admin looking at a page; anyone else gets the 403 page.
#[derive(Debug, Clone)]
pub(crate) struct AdminViewer(pub Viewer);

impl FromRequestParts<AppState> for AdminViewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<AdminViewer, Response> {
        let viewer = Viewer::from_request_parts(parts, state).await?;
        if viewer.is_admin() {
            Ok(AdminViewer(viewer))
        } else {
            Err(page::forbidden(
                state,
                Some(&viewer),
                "Only an admin can open this page. Ask one of your admins if you need it.",
            ))
        }
    }
}

/// The redirect to the sign-in page, coming back here afterwards (for a page that was
/// read; a form posted without a session is not replayed).
fn sign_in_first(parts: &Parts) -> Response {
    let here = parts.uri.path_and_query().map(|pq| pq.as_str());
    let next = match parts.method {
        Method::GET | Method::HEAD => here.filter(|here| *here != "/"),
        _ => None,
    };
    let location = match next {
        Some(next) => format!(
            "/login?{}",
            serde_urlencoded::to_string([("next", next)]).unwrap_or_default()
        ),
        None => "/login".to_string(),
    };
    if parts.headers.contains_key("hx-request") {
        // An htmx request follows a 303 inside XMLHttpRequest and would paste the
        // sign-in page into the current one; HX-Redirect makes htmx load it instead.
        page::htmx_redirect(&location)
    } else {
        page::see_other(&location)
    }
}

/// Where `next` may send someone after signing in: only a path on this site, never
/// another host (`//evil.example`, `/\evil.example`) — an open redirect would lend
/// popdesk's name to a phishing link.
pub(crate) fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.len() <= 2000
        && !next.chars().any(char::is_control);
    ok.then_some(next)
}

fn mac(session_secret: &str) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(session_secret.as_bytes()).ok()?;
    mac.update(FORM_TOKEN_LABEL);
    Some(mac)
}

/// The form token for the session this request carries.
pub(crate) fn form_token(headers: &HeaderMap) -> Option<String> {
    let secret = session::token(headers)?;
    let tag = mac(&secret)?.finalize().into_bytes();
    Some(URL_SAFE_NO_PAD.encode(tag))
}

/// Whether `submitted` is the form token of this request's session (compared in
/// constant time).
pub(crate) fn form_token_matches(headers: &HeaderMap, submitted: Option<&str>) -> bool {
    let (Some(secret), Some(submitted)) = (session::token(headers), submitted) else {
        return false;
    };
    let Ok(tag) = URL_SAFE_NO_PAD.decode(submitted.trim()) else {
        return false;
    };
    mac(&secret).is_some_and(|mac| mac.verify_slice(&tag).is_ok())
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, header};

    use super::*;

    fn with_session(secret: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("popdesk_session={secret}")).expect("header"),
        );
        headers
    }

    #[test]
    fn a_form_token_belongs_to_one_session() {
        let mine = with_session("secret-one");
        let token = form_token(&mine).expect("token");
        assert!(form_token_matches(&mine, Some(&token)));
        assert!(!form_token_matches(
            &with_session("secret-two"),
            Some(&token)
        ));
        assert!(!form_token_matches(&mine, Some("forged")));
        assert!(!form_token_matches(&mine, None));
        assert!(!form_token_matches(&HeaderMap::new(), Some(&token)));
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(
            safe_next("/tickets?status=new"),
            Some("/tickets?status=new")
        );
        assert_eq!(safe_next("//evil.example/"), None);
        assert_eq!(safe_next("/\\evil.example/"), None);
        assert_eq!(safe_next("https://evil.example/"), None);
        assert_eq!(safe_next("/tickets\r\nSet-Cookie: x"), None);
    }
}
