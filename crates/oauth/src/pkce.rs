//! PKCE (RFC 7636) and the random values of a flow: the verifier and its S256 challenge,
//! the `state`, and the hashes popdesk keeps instead of them. I/O-free apart from the
//! operating system's random numbers.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

use crate::error::ConnectError;

/// 32 random bytes as base64url: 43 characters, within RFC 7636's 43..=128 and of the
/// unreserved set it requires.
pub fn random_token() -> Result<SecretString, ConnectError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ConnectError::Random(e.to_string()))?;
    Ok(SecretString::from(BASE64URL.encode(bytes)))
}

/// The S256 challenge of a verifier: base64url(sha256(verifier)).
pub fn challenge(verifier: &SecretString) -> String {
    BASE64URL.encode(Sha256::digest(verifier.expose_secret().as_bytes()))
}

/// What popdesk stores in place of a `state` or a session id: their sha256, hex. A copy
/// of the database then cannot finish anyone's flow.
pub fn hash(value: &str) -> String {
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636s_example() {
        // RFC 7636, appendix B.
        let verifier = SecretString::from("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            challenge(&verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn random_tokens_are_long_and_differ() -> Result<(), ConnectError> {
        let a = random_token()?;
        let b = random_token()?;
        assert_eq!(a.expose_secret().len(), 43);
        assert!(
            a.expose_secret()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a.expose_secret(), b.expose_secret());
        Ok(())
    }
}
