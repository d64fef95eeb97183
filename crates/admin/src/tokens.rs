//! API tokens: the rules for naming one, and who made it. The token's random secret is
//! made by the web service's authentication, which alone knows how tokens are checked;
//! only its hash and shown prefix reach the store.

use store::{ApiToken, Role};

use crate::Administration;
use crate::error::{AdminError, Field};

/// A token's name, in characters.
pub const MAX_TOKEN_NAME_CHARS: usize = 100;

/// The longest lifetime a token can be given, in days (ten years); a token meant to
/// live longer simply does not expire.
pub const MAX_TOKEN_DAYS: u32 = 3650;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// A token about to be recorded.
#[derive(Debug)]
pub struct NewToken<'a> {
    pub name: &'a str,
    pub role: Role,
    /// The sha256 of the secret, as authentication looks it up.
    pub hash: &'a str,
    /// The first characters of the secret, shown in lists to tell tokens apart.
    pub prefix: &'a str,
    pub created_by: Option<i64>,
    /// Days until it stops working; `None` for a token that does not expire.
    pub expires_in_days: Option<u32>,
}

/// A token name: trimmed, 1 to 100 characters.
pub fn check_token_name(name: &str) -> Result<String, AdminError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_TOKEN_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(AdminError::invalid(
            Field::TokenName,
            format!("must be 1 to {MAX_TOKEN_NAME_CHARS} characters, without control characters"),
        ));
    }
    Ok(name.to_string())
}

/// A token's lifetime: 1 to [`MAX_TOKEN_DAYS`] days.
pub fn check_token_days(days: u32) -> Result<u32, AdminError> {
    if !(1..=MAX_TOKEN_DAYS).contains(&days) {
        return Err(AdminError::invalid(
            Field::TokenExpiry,
            format!(
                "must be 1 to {MAX_TOKEN_DAYS} days, or left out for a token that does not expire"
            ),
        ));
    }
    Ok(days)
}

impl Administration {
    /// Records a new API token.
    pub async fn create_token(&self, new: &NewToken<'_>) -> Result<ApiToken, AdminError> {
        let name = check_token_name(new.name)?;
        let now = self.now();
        let expires_at = new
            .expires_in_days
            .map(check_token_days)
            .transpose()?
            .map(|days| now + i64::from(days) * DAY_MS);
        let token = self
            .store
            .create_api_token(
                &name,
                new.role,
                new.hash,
                new.prefix,
                new.created_by,
                now,
                expires_at,
            )
            .await?;
        tracing::info!(token_id = token.id, prefix = %token.prefix, "API token created");
        Ok(token)
    }

    /// Revokes a token: it stops working at once.
    pub async fn revoke_token(&self, id: i64) -> Result<(), AdminError> {
        if !self.store.revoke_api_token(id, self.now()).await? {
            return Err(AdminError::TokenNotFound(id));
        }
        tracing::info!(token_id = id, "API token revoked");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_names_are_one_to_a_hundred_characters() {
        assert_eq!(check_token_name(" ci ").ok().as_deref(), Some("ci"));
        assert!(check_token_name("  ").is_err());
        assert!(check_token_name(&"x".repeat(101)).is_err());
        assert!(check_token_name("ci\0").is_err());
    }

    #[test]
    fn token_lifetimes_are_one_day_to_ten_years() {
        assert!(check_token_days(0).is_err());
        assert_eq!(check_token_days(1).ok(), Some(1));
        assert_eq!(check_token_days(3650).ok(), Some(3650));
        assert!(check_token_days(3651).is_err());
    }
}
