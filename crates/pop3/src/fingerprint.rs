//! A certificate's SHA-256 fingerprint: how an admin names the one certificate a
//! self-signed server presents, the way mpop's `--tls-fingerprint` and browsers do.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// The SHA-256 digest of a certificate's DER bytes.
///
/// Written as 32 uppercase hex pairs joined by colons (`AB:CD:...`), as
/// `openssl x509 -fingerprint -sha256` prints it; read with or without the colons, in
/// either case, with an optional `sha256:` / `SHA256 Fingerprint=` prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertFingerprint([u8; 32]);

/// Why a text is not a SHA-256 fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintError {
    #[error("a SHA-256 fingerprint has 64 hex digits; this has {0}")]
    WrongLength(usize),
    #[error("a SHA-256 fingerprint holds only hex digits (0-9, A-F) and colons; found {0:?}")]
    NotHex(char),
}

impl CertFingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(der: &[u8]) -> CertFingerprint {
        CertFingerprint(Sha256::digest(der).into())
    }

    /// The 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl FromStr for CertFingerprint {
    type Err = FingerprintError;

    fn from_str(text: &str) -> Result<CertFingerprint, FingerprintError> {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        let text = ["sha256 fingerprint=", "sha256:", "sha256="]
            .iter()
            .find_map(|prefix| lower.strip_prefix(prefix))
            .unwrap_or(&lower);
        let mut digits = Vec::with_capacity(64);
        for c in text.chars() {
            match c {
                ':' | ' ' => {}
                c if c.is_ascii_hexdigit() => digits.push(c),
                c => return Err(FingerprintError::NotHex(c)),
            }
        }
        if digits.len() != 64 {
            return Err(FingerprintError::WrongLength(digits.len()));
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
            let hex: String = pair.iter().collect();
            *byte = u8::from_str_radix(&hex, 16).map_err(|_| FingerprintError::NotHex(pair[0]))?;
        }
        Ok(CertFingerprint(bytes))
    }
}

impl fmt::Display for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertFingerprint({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLONS: &str = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:\
                          AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

    #[test]
    fn colons_case_and_openssl_prefix_are_all_accepted() {
        let plain = COLONS.replace(':', "").to_ascii_lowercase();
        let with_prefix = format!("SHA256 Fingerprint={COLONS}");
        for text in [COLONS, plain.as_str(), with_prefix.as_str()] {
            let parsed: CertFingerprint = text.parse().expect("a valid fingerprint");
            assert_eq!(parsed.to_string(), COLONS);
        }
    }

    #[test]
    fn short_or_non_hex_fingerprints_are_refused() {
        assert_eq!(
            "AB:CD".parse::<CertFingerprint>(),
            Err(FingerprintError::WrongLength(4))
        );
        let bad = COLONS.replacen('A', "G", 1);
        assert_eq!(
            bad.parse::<CertFingerprint>(),
            Err(FingerprintError::NotHex('g'))
        );
    }

    #[test]
    fn the_fingerprint_is_sha256_of_the_der_bytes() {
        // SHA-256 of the empty input, a known vector.
        assert_eq!(
            CertFingerprint::of(b"").to_string().replace(':', ""),
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
        );
    }
}
