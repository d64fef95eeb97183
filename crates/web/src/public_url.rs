//! `public_url`: the address admins open popdesk at, e.g. `https://desk.example.com`.
//! OAuth2 providers send the admin's browser back to `{public_url}/oauth/callback`, so
//! it must be exactly what the admin registers with the provider: parsed once, here.

use std::fmt;

/// Where the OAuth2 callback lives, below [`PublicUrl`].
pub const CALLBACK_PATH: &str = "/oauth/callback";

/// An http(s) URL without query, fragment or credentials, kept without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

/// Why a `public_url` was refused, as one sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("public_url {0}")]
pub struct PublicUrlError(&'static str);

impl PublicUrl {
    /// Parses `https://desk.example.com` or `http://127.0.0.1:8080/popdesk`.
    pub fn parse(text: &str) -> Result<PublicUrl, PublicUrlError> {
        let text = text.trim();
        let url = url::Url::parse(text).map_err(|_| {
            PublicUrlError("must be a URL such as https://desk.example.com (the address admins open popdesk at)")
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(PublicUrlError("must start with https:// (or http://)"));
        }
        if url.host().is_none() {
            return Err(PublicUrlError("must name a host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(PublicUrlError(
                "must not have a query (?...) or a fragment (#...): the provider appends its own",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(PublicUrlError("must not carry a user name or password"));
        }
        Ok(PublicUrl(url.as_str().trim_end_matches('/').to_string()))
    }

    /// The URL as configured, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `{public_url}/oauth/callback`: what the admin registers with the provider.
    pub fn redirect_uri(&self) -> String {
        format!("{}{CALLBACK_PATH}", self.0)
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_url_is_http_or_https_without_query() {
        assert_eq!(
            PublicUrl::parse("https://desk.example.com/")
                .map(|u| u.redirect_uri())
                .ok()
                .as_deref(),
            Some("https://desk.example.com/oauth/callback")
        );
        assert_eq!(
            PublicUrl::parse("http://127.0.0.1:8080/popdesk")
                .map(|u| u.redirect_uri())
                .ok()
                .as_deref(),
            Some("http://127.0.0.1:8080/popdesk/oauth/callback")
        );
        for bad in [
            "desk.example.com",
            "ftp://desk.example.com",
            "https://desk.example.com/?a=b",
            "https://desk.example.com/#x",
            "https://user:pw@desk.example.com",
            "",
        ] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
