//! Passwords: the rules a new password must meet, and argon2id hashing.
//!
//! Hashing costs tens of milliseconds of CPU on purpose, so request handlers run it on
//! a blocking thread ([`hash_blocking`], [`verify_blocking`]) and never on the async
//! workers that serve everyone else.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

/// The shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// The longest password accepted, in characters: a bound, so that no request makes the
/// server hash megabytes.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Why a password was not hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_PASSWORD_CHARS} characters long")]
    TooShort,
    #[error("the password must be at most {MAX_PASSWORD_CHARS} characters long")]
    TooLong,
    #[error("the password could not be hashed: {0}")]
    Hash(String),
}

/// Checks the rules a new password must meet.
pub fn check_password(password: &str) -> Result<(), PasswordError> {
    let chars = password.chars().count();
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordError::TooLong);
    }
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    Ok(())
}

/// The cost of an argon2id hash. The default is OWASP's recommendation (19 MiB, 2
/// passes, 1 lane). Verification reads the cost from the stored hash, so changing it
/// later keeps old hashes working; tests lower it because unoptimised builds take
/// seconds per hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCost {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

impl Default for PasswordCost {
    fn default() -> Self {
        PasswordCost {
            memory_kib: Params::DEFAULT_M_COST,
            passes: Params::DEFAULT_T_COST,
            lanes: Params::DEFAULT_P_COST,
        }
    }
}

/// argon2id, version 0x13, at this cost.
fn argon2(cost: PasswordCost) -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(cost.memory_kib, cost.passes, cost.lanes, None)
        .map_err(|e| PasswordError::Hash(format!("the hashing cost is not usable: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Checks the password rules and hashes the password into a PHC string
/// (`$argon2id$v=19$...`) with a fresh random salt, at the default cost. CPU-heavy:
/// call it from a blocking context (the CLI, `spawn_blocking`).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    hash_password_with(password, PasswordCost::default())
}

/// [`hash_password`] at another cost.
pub fn hash_password_with(password: &str, cost: PasswordCost) -> Result<String, PasswordError> {
    check_password(password)?;
    argon2(cost)?
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// True when `password` matches the PHC string `stored`; false for a wrong password and
/// for a stored value that is not a PHC string. CPU-heavy like [`hash_password`].
pub fn verify_password(password: &str, stored: &str) -> bool {
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return false;
    }
    // The cost given here does not matter: verification uses the stored hash's own.
    match (PasswordHash::new(stored), argon2(PasswordCost::default())) {
        (Ok(hash), Ok(argon2)) => argon2.verify_password(password.as_bytes(), &hash).is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let cost = PasswordCost {
            memory_kib: 64,
            passes: 1,
            lanes: 1,
        };
        let hash = hash_password_with("correct horse battery", cost).expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
        assert!(!verify_password("correct horse battery", "not a hash"));
    }

    #[test]
    fn the_default_cost_is_owasps() {
        assert_eq!(
            PasswordCost::default(),
            PasswordCost {
                memory_kib: 19 * 1024,
                passes: 2,
                lanes: 1
            }
        );
    }

    #[test]
    fn short_and_huge_passwords_are_refused() {
        assert!(matches!(
            hash_password("nine char"),
            Err(PasswordError::TooShort)
        ));
        // Ten characters in twenty bytes: the rule counts characters.
        assert!(check_password("ääääääääää").is_ok());
        assert!(matches!(
            check_password(&"x".repeat(MAX_PASSWORD_CHARS + 1)),
            Err(PasswordError::TooLong)
        ));
    }
}
