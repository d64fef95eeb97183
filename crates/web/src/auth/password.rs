//! Passwords in request handlers: the rules and argon2id hashing are the administration
//! service's ([`admin::password`]); here they run on a blocking thread, never on the
//! async workers that serve everyone else, and fail as API errors.

pub use admin::password::{
    MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, PasswordCost, PasswordError, check_password,
    hash_password, hash_password_with, verify_password,
};

use crate::error::ApiError;

/// [`hash_password_with`] on a blocking thread; a broken rule is a validation error.
pub(crate) async fn hash_blocking(
    password: String,
    cost: PasswordCost,
) -> Result<String, ApiError> {
    match tokio::task::spawn_blocking(move || hash_password_with(&password, cost)).await {
        Ok(Ok(hash)) => Ok(hash),
        Ok(Err(error @ (PasswordError::TooShort | PasswordError::TooLong))) => {
            Err(ApiError::validation(error.to_string()).about("password"))
        }
        Ok(Err(error)) => Err(ApiError::internal(&error)),
        Err(join) => Err(ApiError::internal(&join)),
    }
}

/// [`verify_password`] on a blocking thread.
pub(crate) async fn verify_blocking(password: String, stored: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || verify_password(&password, &stored))
        .await
        .map_err(|join| ApiError::internal(&join))
}
