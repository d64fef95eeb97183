//! Flash messages: one sentence that survives a POST/303 redirect ("Mailbox added"),
//! carried by a short-lived cookie and cleared by the page that shows it.
//!
//! A cookie rather than a query parameter, so a reload or a shared link does not show
//! "Mailbox deleted" again. What it holds is only ever shown as escaped text: a cookie
//! planted by someone else can at worst show a wrong sentence, never markup.

use axum::http::{HeaderMap, HeaderValue, header};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The flash cookie's name.
pub(crate) const FLASH_COOKIE: &str = "popdesk_flash";

/// The longest flash shown; a longer cookie is ignored rather than trusted.
const MAX_CHARS: usize = 500;

/// One message for the next page: good news (`role="status"`) or a failure
/// (`role="alert"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flash {
    pub text: String,
    pub is_error: bool,
    /// The id of the element on the next page the message is about (a note just
    /// added): shown there instead of at the top. Letters, digits and `-` only.
    pub at: Option<String>,
}

impl Flash {
    pub(crate) fn done(text: impl Into<String>) -> Flash {
        Flash {
            text: text.into(),
            is_error: false,
            at: None,
        }
    }

    pub(crate) fn failed(text: impl Into<String>) -> Flash {
        Flash {
            text: text.into(),
            is_error: true,
            at: None,
        }
    }

    /// Shown at the element with this id rather than at the top of the page.
    pub(crate) fn at(mut self, id: impl Into<String>) -> Flash {
        let id = id.into();
        self.at = is_element_id(&id).then_some(id);
        self
    }

    /// Whether this flash belongs at the element with this id.
    pub(crate) fn is_at(&self, id: &str) -> bool {
        self.at.as_deref() == Some(id)
    }

    /// The flash a request carries, if any.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Flash> {
        let jar = CookieJar::from_headers(headers);
        let value = jar.get(FLASH_COOKIE)?.value();
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (kind, text) = text.split_once(':')?;
        if text.is_empty() || text.chars().count() > MAX_CHARS {
            return None;
        }
        let (kind, at) = match kind.split_once('#') {
            Some((kind, at)) => (kind, is_element_id(at).then(|| at.to_string())),
            None => (kind, None),
        };
        Some(Flash {
            text: text.to_string(),
            is_error: kind == "e",
            at,
        })
    }

    /// The `Set-Cookie` value that hands this flash to the next page. The text is
    /// base64url-encoded: cookie values cannot hold spaces or semicolons.
    pub(crate) fn cookie(&self, secure: bool) -> Option<HeaderValue> {
        let kind = if self.is_error { "e" } else { "s" };
        let at = self
            .at
            .as_deref()
            .map(|at| format!("#{at}"))
            .unwrap_or_default();
        let text: String = self.text.chars().take(MAX_CHARS).collect();
        let value = URL_SAFE_NO_PAD.encode(format!("{kind}{at}:{text}"));
        let cookie = Cookie::build((FLASH_COOKIE, value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(secure)
            .max_age(cookie::time::Duration::seconds(60))
            .build();
        HeaderValue::from_str(&cookie.to_string()).ok()
    }

    /// The `Set-Cookie` value that clears the flash once a page has shown it.
    pub(crate) fn removal(secure: bool) -> HeaderValue {
        let mut cookie = Cookie::build((FLASH_COOKIE, ""))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(secure)
            .build();
        cookie.make_removal();
        HeaderValue::from_str(&cookie.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("popdesk_flash=; Path=/; Max-Age=0"))
    }
}

/// An element id a flash may name: short, letters, digits and `-`.
fn is_element_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 40 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Adds the flash (if any) to a response's headers.
pub(crate) fn set(headers: &mut HeaderMap, flash: Option<&Flash>, secure: bool) {
    if let Some(value) = flash.and_then(|flash| flash.cookie(secure)) {
        headers.append(header::SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flash_survives_its_cookie() {
        let flash = Flash::failed("Could not fetch: the scheduler; is off");
        let set_cookie = flash.cookie(false).expect("cookie");
        let value = set_cookie.to_str().expect("ascii");
        let pair = value.split(';').next().expect("pair");
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(pair).expect("header"));
        assert_eq!(Flash::from_headers(&headers), Some(flash));
    }

    #[test]
    fn a_flash_at_an_element_keeps_its_place() {
        let flash = Flash::done("Note added.").at("note-12");
        let set_cookie = flash.cookie(false).expect("cookie");
        let pair = set_cookie
            .to_str()
            .expect("ascii")
            .split(';')
            .next()
            .expect("pair")
            .to_string();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&pair).expect("header"),
        );
        let back = Flash::from_headers(&headers).expect("flash");
        assert!(back.is_at("note-12"));
        assert_eq!(back, flash);
        assert_eq!(Flash::done("x").at("a\"b").at, None, "only plain ids");
    }

    #[test]
    fn a_mangled_flash_is_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("popdesk_flash=%%%"),
        );
        assert_eq!(Flash::from_headers(&headers), None);
    }
}
