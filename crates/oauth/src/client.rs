//! The HTTP side: form posts to the token and device endpoints, and the issuer's
//! discovery document. Thin: every answer is read by the I/O-free [`crate::token`].

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use crate::error::ConnectError;
use crate::provider::Endpoints;
use crate::token::{
    DevicePoll, TokenError, TokenGrant, error_body, parse_device_poll, parse_token_response,
    refusal,
};

/// How long connecting to a provider may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one whole request may take. A refresh claim outlives this by far (see
/// `connection::CLAIM_MS`), so a claim never lapses while its refresh is in flight.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Answers larger than this are not OAuth2.
const MAX_BODY: usize = 256 * 1024;

/// Who the client is, as the token endpoint is told.
#[derive(Clone)]
pub struct ClientAuth {
    pub client_id: String,
    /// A confidential client's secret, sent with HTTP Basic (RFC 6749 section 2.3.1:
    /// the method every server must support); None for a public client, which names
    /// itself in the form.
    pub client_secret: Option<SecretString>,
}

/// What the device endpoint hands out (RFC 8628 section 3.2).
#[derive(Debug, Clone)]
pub struct DeviceAuthorization {
    pub device_code: SecretString,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_in_secs: u64,
    pub interval_secs: u64,
}

#[derive(Deserialize)]
struct DeviceBody {
    device_code: String,
    user_code: String,
    // Google says verification_url.
    #[serde(alias = "verification_url")]
    verification_uri: String,
    #[serde(default)]
    verification_uri_complete: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    interval: Option<u64>,
}

#[derive(Deserialize)]
struct DiscoveryBody {
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    #[serde(default)]
    device_authorization_endpoint: Option<String>,
}

/// An HTTP client for OAuth2 endpoints.
#[derive(Clone, Debug)]
pub struct TokenClient {
    http: reqwest::Client,
}

impl TokenClient {
    /// A client with popdesk's time limits. Redirects are not followed: a token endpoint
    /// that redirects would take the client's secret and the grant somewhere else.
    pub fn new() -> TokenClient {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("popdesk/", env!("CARGO_PKG_VERSION")))
            .build()
            // Only a broken TLS backend makes this fail; fall back to the defaults then.
            .unwrap_or_default();
        TokenClient { http }
    }

    async fn post(
        &self,
        url: &str,
        client: &ClientAuth,
        form: &[(&str, &str)],
    ) -> Result<(u16, Vec<u8>), TokenError> {
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        let mut request = self.http.post(url).header("Accept", "application/json");
        match &client.client_secret {
            Some(secret) => {
                let credentials = format!(
                    "{}:{}",
                    form_encode(&client.client_id),
                    form_encode(secret.expose_secret())
                );
                request = request.header(
                    "Authorization",
                    format!("Basic {}", BASE64.encode(credentials)),
                );
            }
            None => fields.push(("client_id", &client.client_id)),
        }
        let response = request
            .form(&fields)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        let status = response.status().as_u16();
        let body = read_limited(response).await?;
        Ok((status, body))
    }

    /// Exchanges an authorization code (with its PKCE verifier).
    pub async fn exchange_code(
        &self,
        token_url: &str,
        client: &ClientAuth,
        code: &str,
        redirect_uri: &str,
        verifier: &SecretString,
    ) -> Result<TokenGrant, TokenError> {
        let (status, body) = self
            .post(
                token_url,
                client,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", redirect_uri),
                    ("code_verifier", verifier.expose_secret()),
                ],
            )
            .await?;
        parse_token_response(status, &body)
    }

    /// Spends a refresh token. `scope` only where the provider wants it named again
    /// (Microsoft); without it the grant's own scopes apply (RFC 6749 section 6), which
    /// spares providers that grant fewer than asked (`offline_access` dropped) from
    /// refusing the renewal as a wider scope.
    pub async fn refresh(
        &self,
        token_url: &str,
        client: &ClientAuth,
        refresh_token: &SecretString,
        scope: Option<&str>,
    ) -> Result<TokenGrant, TokenError> {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ];
        if let Some(scope) = scope.filter(|s| !s.is_empty()) {
            form.push(("scope", scope));
        }
        let (status, body) = self.post(token_url, client, &form).await?;
        parse_token_response(status, &body)
    }

    /// App-only tokens (client credentials).
    pub async fn client_credentials(
        &self,
        token_url: &str,
        client: &ClientAuth,
        scope: &str,
    ) -> Result<TokenGrant, TokenError> {
        let mut form = vec![("grant_type", "client_credentials")];
        if !scope.is_empty() {
            form.push(("scope", scope));
        }
        let (status, body) = self.post(token_url, client, &form).await?;
        parse_token_response(status, &body)
    }

    /// Starts the device flow.
    pub async fn start_device(
        &self,
        device_url: &str,
        client: &ClientAuth,
        scope: &str,
    ) -> Result<DeviceAuthorization, TokenError> {
        let (status, body) = self.post(device_url, client, &[("scope", scope)]).await?;
        if !(200..300).contains(&status) {
            return Err(match error_body(&body) {
                Some((code, description)) if status < 500 => refusal(code, description),
                _ => TokenError::Unavailable {
                    reason: format!("HTTP {status} from the device endpoint"),
                },
            });
        }
        let parsed: DeviceBody =
            serde_json::from_slice(&body).map_err(|_| TokenError::Unavailable {
                reason: "the device endpoint's answer is not a device authorization".into(),
            })?;
        Ok(DeviceAuthorization {
            device_code: SecretString::from(parsed.device_code),
            user_code: parsed.user_code,
            verification_uri: parsed.verification_uri,
            verification_uri_complete: parsed.verification_uri_complete,
            expires_in_secs: parsed.expires_in.unwrap_or(900),
            interval_secs: parsed.interval.unwrap_or(5).max(1),
        })
    }

    /// Asks once whether the device code was approved.
    pub async fn poll_device(
        &self,
        token_url: &str,
        client: &ClientAuth,
        device_code: &SecretString,
    ) -> Result<DevicePoll, TokenError> {
        let (status, body) = self
            .post(
                token_url,
                client,
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("device_code", device_code.expose_secret()),
                ],
            )
            .await?;
        parse_device_poll(status, &body)
    }

    /// The endpoints an issuer publishes (OpenID Connect discovery, then RFC 8414).
    pub async fn discover(&self, issuer: &str) -> Result<Endpoints, ConnectError> {
        let base = issuer.trim_end_matches('/');
        let mut last = String::new();
        for path in [
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
        ] {
            let url = format!("{base}{path}");
            let response = match self.http.get(&url).send().await {
                Ok(response) => response,
                Err(e) => {
                    last = format!("{url}: {}", unavailable(&e));
                    continue;
                }
            };
            let status = response.status().as_u16();
            let body = read_limited(response)
                .await
                .map_err(|e| ConnectError::Discovery(e.to_string()))?;
            if status != 200 {
                last = format!("{url} answered HTTP {status}");
                continue;
            }
            let parsed: DiscoveryBody = serde_json::from_slice(&body).map_err(|_| {
                ConnectError::Discovery(format!("{url} is not a discovery document"))
            })?;
            if let Some(named) = &parsed.issuer
                && named.trim_end_matches('/') != base
            {
                return Err(ConnectError::Discovery(format!(
                    "{url} names another issuer ({named})"
                )));
            }
            let token = parsed
                .token_endpoint
                .ok_or_else(|| ConnectError::Discovery(format!("{url} names no token endpoint")))?;
            return Ok(Endpoints {
                authorize: parsed.authorization_endpoint,
                token,
                device: parsed.device_authorization_endpoint,
            });
        }
        Err(ConnectError::Discovery(last))
    }
}

impl Default for TokenClient {
    fn default() -> Self {
        TokenClient::new()
    }
}

/// The reason a request did not get an answer, without the URL's query (which could
/// carry a code).
fn unavailable(error: &reqwest::Error) -> TokenError {
    let reason = if error.is_timeout() {
        "no answer in time".to_string()
    } else if error.is_connect() {
        "could not connect".to_string()
    } else {
        "the request failed".to_string()
    };
    let host = error
        .url()
        .and_then(|u| u.host_str().map(str::to_string))
        .map(|h| format!(" to {h}"))
        .unwrap_or_default();
    TokenError::Unavailable {
        reason: format!("{reason}{host}"),
    }
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, TokenError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unavailable(&e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(TokenError::Unavailable {
                reason: "an answer too large to be OAuth2".into(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `application/x-www-form-urlencoded` encoding, which RFC 6749 section 2.3.1 asks for
/// inside the Basic credentials.
fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        assert_eq!(form_encode("a b:c"), "a+b%3Ac");
    }
}
