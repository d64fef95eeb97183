//! API tokens: the rules for naming one, and who made it. The token's random secret is
//! made by the web service's authentication, which alone knows how tokens are checked;
//! only its hash and shown prefix reach the store.

use store::{ApiToken, Role};

use crate::Administration;
use crate::error::{AdminError, Field};

/// A token's name, in characters.
pub const MAX_TOKEN_NAME_CHARS: usize = 100;

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

impl Administration {
    /// Records a new API token.
    pub async fn create_token(&self, new: &NewToken<'_>) -> Result<ApiToken, AdminError> {
        let name = check_token_name(new.name)?;
        let token = self
            .store
            .create_api_token(
                &name,
                new.role,
                new.hash,
                new.prefix,
                new.created_by,
                self.now(),
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
}
