//! What a token endpoint answers (RFC 6749 section 5, RFC 8628 section 3.5), read into
//! what popdesk acts on. I/O-free: the HTTP status and body in, a grant or a classified
//! refusal out.

use secrecy::SecretString;
use serde::Deserialize;
use store::OAuthTokens;

/// How long an access token is taken to live when the provider does not say (RFC 6749
/// makes `expires_in` optional; every preset sends it).
const DEFAULT_LIFETIME_SECS: u64 = 3600;
/// Provider error descriptions are shown to admins: cut to this many characters.
const MAX_DESCRIPTION: usize = 300;

/// Tokens as the endpoint issued them.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub access_token: SecretString,
    pub expires_in_secs: u64,
    pub refresh_token: Option<SecretString>,
}

impl TokenGrant {
    /// The tokens to store, the expiry made absolute.
    pub fn into_tokens(self, now_ms: i64) -> OAuthTokens {
        let lifetime_ms =
            i64::try_from(self.expires_in_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        OAuthTokens {
            access_token: self.access_token,
            expires_at: now_ms.saturating_add(lifetime_ms),
            refresh_token: self.refresh_token,
        }
    }
}

/// Why the token endpoint gave no tokens, in the classes popdesk acts on differently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// `invalid_grant`: the refresh token (or code) is no good any more: revoked, unused
    /// too long, the password changed, Google's 7-day limit for apps in testing. Only an
    /// admin connecting again helps.
    #[error(
        "the provider refused the grant (invalid_grant{}): it was revoked, expired unused, or the account's password changed; connect the mailbox again",
        describe(.description)
    )]
    GrantRefused { description: Option<String> },
    /// `invalid_client` / `unauthorized_client`: the client id or secret is wrong or the
    /// app is not allowed this grant.
    #[error(
        "the provider refused the client id or secret ({code}{}); check the mailbox's OAuth2 client id and secret, and that the app registration allows this flow",
        describe(.description)
    )]
    ClientRefused {
        code: String,
        description: Option<String>,
    },
    /// Any other OAuth error (`invalid_scope`, `access_denied`, ...): permanent.
    #[error("the provider refused the request ({code}{})", describe(.description))]
    Refused {
        code: String,
        description: Option<String>,
    },
    /// The endpoint could not be reached, timed out, failed (5xx, 429) or answered
    /// something that is not OAuth2: transient, backs off like a network error.
    #[error(
        "the provider's token endpoint could not be used ({reason}); popdesk tries again later"
    )]
    Unavailable { reason: String },
}

impl TokenError {
    /// Whether trying again later may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, TokenError::Unavailable { .. })
    }

    /// The label of `popdesk_oauth_token_refreshes_total`'s `outcome`.
    pub fn outcome(&self) -> &'static str {
        match self {
            TokenError::GrantRefused { .. } => "invalid_grant",
            TokenError::ClientRefused { .. } => "invalid_client",
            TokenError::Refused { .. } => "refused",
            TokenError::Unavailable { .. } => "unavailable",
        }
    }
}

fn describe(description: &Option<String>) -> String {
    match description {
        Some(d) => format!(": {d}"),
        None => String::new(),
    }
}

#[derive(Deserialize)]
struct SuccessBody {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Provider text made safe to show: no control characters, bounded length.
fn clean(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_DESCRIPTION)
        .collect();
    cleaned.trim().to_string()
}

/// An OAuth2 error body, when the body is one.
pub(crate) fn error_body(body: &[u8]) -> Option<(String, Option<String>)> {
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    Some((
        clean(&parsed.error),
        parsed
            .error_description
            .map(|d| clean(&d))
            .filter(|d| !d.is_empty()),
    ))
}

/// Classifies an OAuth2 error code.
pub(crate) fn refusal(code: String, description: Option<String>) -> TokenError {
    match code.as_str() {
        "invalid_grant" => TokenError::GrantRefused { description },
        "invalid_client" | "unauthorized_client" => TokenError::ClientRefused { code, description },
        // Some servers answer an overloaded moment with these codes.
        "temporarily_unavailable" | "server_error" => TokenError::Unavailable {
            reason: format!("{code}{}", describe(&description)),
        },
        _ => TokenError::Refused { code, description },
    }
}

/// Reads a token endpoint's answer.
pub fn parse_token_response(status: u16, body: &[u8]) -> Result<TokenGrant, TokenError> {
    if (200..300).contains(&status) {
        let parsed: SuccessBody =
            serde_json::from_slice(body).map_err(|_| TokenError::Unavailable {
                reason: format!("HTTP {status} without an access token in JSON"),
            })?;
        if parsed.access_token.is_empty() {
            return Err(TokenError::Unavailable {
                reason: "an empty access token".into(),
            });
        }
        // Some providers send expires_in as a string.
        let expires_in_secs = match parsed.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
        .unwrap_or(DEFAULT_LIFETIME_SECS);
        return Ok(TokenGrant {
            access_token: SecretString::from(parsed.access_token),
            expires_in_secs,
            refresh_token: parsed
                .refresh_token
                .filter(|t| !t.is_empty())
                .map(SecretString::from),
        });
    }
    if status >= 500 || status == 429 {
        return Err(TokenError::Unavailable {
            reason: format!("HTTP {status}"),
        });
    }
    match error_body(body) {
        Some((code, description)) => Err(refusal(code, description)),
        None => Err(TokenError::Unavailable {
            reason: format!("HTTP {status} without an OAuth2 error"),
        }),
    }
}

/// One poll of the device flow's token endpoint.
#[derive(Debug)]
pub enum DevicePoll {
    /// The admin has not approved yet.
    Pending,
    /// Poll more slowly (RFC 8628: add 5 seconds).
    SlowDown,
    Granted(TokenGrant),
}

/// Reads a device-code poll's answer: the pending states are not errors.
pub fn parse_device_poll(status: u16, body: &[u8]) -> Result<DevicePoll, TokenError> {
    if !(200..300).contains(&status)
        && status < 500
        && let Some((code, description)) = error_body(body)
    {
        return match code.as_str() {
            "authorization_pending" => Ok(DevicePoll::Pending),
            "slow_down" => Ok(DevicePoll::SlowDown),
            "expired_token" => Err(TokenError::Refused {
                code,
                description: Some(
                    description.unwrap_or_else(|| "the code expired before it was approved".into()),
                ),
            }),
            _ => Err(refusal(code, description)),
        };
    }
    parse_token_response(status, body).map(DevicePoll::Granted)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    #[test]
    fn a_grant_is_read_with_its_lifetime_and_rotated_refresh_token() {
        let body =
            br#"{"access_token":"at","token_type":"Bearer","expires_in":20,"refresh_token":"rt2"}"#;
        let grant = parse_token_response(200, body).expect("a grant");
        assert_eq!(grant.access_token.expose_secret(), "at");
        assert_eq!(grant.expires_in_secs, 20);
        let tokens = grant.into_tokens(1_000);
        assert_eq!(tokens.expires_at, 21_000);
        assert_eq!(
            tokens
                .refresh_token
                .as_ref()
                .map(|t| t.expose_secret().to_string()),
            Some("rt2".into())
        );
        let body = br#"{"access_token":"at","expires_in":"3599"}"#;
        let grant = parse_token_response(200, body).expect("a grant");
        assert_eq!(grant.expires_in_secs, 3599);
        assert!(grant.refresh_token.is_none());
    }

    #[test]
    fn refusals_are_classified_by_what_helps() {
        let e = parse_token_response(
            400,
            br#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#,
        )
        .err();
        assert!(matches!(e, Some(TokenError::GrantRefused { .. })));
        assert_eq!(e.as_ref().map(TokenError::outcome), Some("invalid_grant"));
        let e = parse_token_response(401, br#"{"error":"invalid_client"}"#).err();
        assert!(matches!(e, Some(TokenError::ClientRefused { .. })));
        let e = parse_token_response(400, br#"{"error":"invalid_scope"}"#).err();
        assert!(matches!(e, Some(TokenError::Refused { .. })));
        for (status, body) in [
            (503, &b"<html>down</html>"[..]),
            (429, br#"{"error":"invalid_grant"}"#),
            (400, b"not json"),
            (200, b"{}"),
            (400, br#"{"error":"temporarily_unavailable"}"#),
        ] {
            let e = parse_token_response(status, body).err();
            assert!(
                e.as_ref().is_some_and(TokenError::is_transient),
                "{status}: {e:?}"
            );
        }
    }

    #[test]
    fn provider_text_cannot_forge_lines_or_flood_the_page() {
        let body = format!(
            r#"{{"error":"invalid_grant","error_description":"a\nb{}"}}"#,
            "x".repeat(5000)
        );
        let e = parse_token_response(400, body.as_bytes())
            .err()
            .map(|e| e.to_string());
        let e = e.unwrap_or_default();
        assert!(!e.contains('\n'));
        assert!(e.len() < 600, "{}", e.len());
    }

    #[test]
    fn device_polls_tell_waiting_from_failing() {
        assert!(matches!(
            parse_device_poll(400, br#"{"error":"authorization_pending"}"#),
            Ok(DevicePoll::Pending)
        ));
        assert!(matches!(
            parse_device_poll(400, br#"{"error":"slow_down"}"#),
            Ok(DevicePoll::SlowDown)
        ));
        assert!(matches!(
            parse_device_poll(400, br#"{"error":"expired_token"}"#),
            Err(TokenError::Refused { .. })
        ));
        assert!(matches!(
            parse_device_poll(400, br#"{"error":"access_denied"}"#),
            Err(TokenError::Refused { .. })
        ));
        assert!(matches!(
            parse_device_poll(200, br#"{"access_token":"a","expires_in":5}"#),
            Ok(DevicePoll::Granted(_))
        ));
    }
}
