//! What the server presented when its certificate was refused, and why it was refused.
//!
//! A refused certificate is a question for the admin ("is this really my server?"), not
//! a dead end: the error carries enough to show the certificate and offer to trust it by
//! its fingerprint.

use std::fmt;

use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::fingerprint::CertFingerprint;

/// The end-entity certificate a server presented, as an admin needs to see it before
/// deciding to trust it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedCertificate {
    /// The subject's distinguished name, e.g. `CN=localhost`; `unknown` if unreadable.
    pub subject: String,
    /// The issuer's distinguished name; `unknown` if unreadable.
    pub issuer: String,
    /// Start of validity, in Unix seconds (0 if unreadable).
    pub not_before: i64,
    /// End of validity, in Unix seconds (0 if unreadable).
    pub not_after: i64,
    /// SHA-256 of the certificate's DER bytes: what an admin pins.
    pub fingerprint: CertFingerprint,
    /// Whether the certificate is issued by itself and signed with its own key, as
    /// `openssl req -x509` makes them.
    pub self_signed: bool,
}

impl PresentedCertificate {
    /// Reads a DER-encoded certificate. Never fails: a certificate that cannot be parsed
    /// still has a fingerprint, and the other fields say `unknown`.
    pub fn from_der(der: &[u8]) -> PresentedCertificate {
        let fingerprint = CertFingerprint::of(der);
        match X509Certificate::from_der(der) {
            Ok((_, cert)) => PresentedCertificate {
                subject: cert.subject().to_string(),
                issuer: cert.issuer().to_string(),
                not_before: cert.validity().not_before.timestamp(),
                not_after: cert.validity().not_after.timestamp(),
                fingerprint,
                self_signed: cert.subject().as_raw() == cert.issuer().as_raw()
                    && cert.verify_signature(None).is_ok(),
            },
            Err(_) => PresentedCertificate {
                subject: "unknown".into(),
                issuer: "unknown".into(),
                not_before: 0,
                not_after: 0,
                fingerprint,
                self_signed: false,
            },
        }
    }
}

/// Why a server's certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateProblem {
    /// Signed by an authority that is neither a system root nor in the CA file.
    UnknownIssuer,
    /// The server's own, self-signed certificate (CA:TRUE or not), which nobody vouches
    /// for: trust it by pinning its fingerprint or by putting it in the CA file.
    SelfSigned,
    /// Valid, but not for the host name we connected to.
    NotValidForName,
    /// Past its end of validity.
    Expired,
    /// Before its start of validity (or the clock is wrong).
    NotYetValid,
    /// A fingerprint was pinned and the server presented another certificate: it changed
    /// its certificate, or someone is in between. The admin decides.
    PinMismatch {
        expected: CertFingerprint,
        found: CertFingerprint,
    },
    /// Anything else, in the TLS library's words.
    Other(String),
}

/// A refused server certificate: why, what was presented, and where.
#[derive(Debug, Clone)]
pub struct CertificateRefusal {
    pub(crate) problem: CertificateProblem,
    pub(crate) presented: PresentedCertificate,
    /// The host name the client connected to.
    pub(crate) host: String,
}

impl CertificateRefusal {
    pub fn problem(&self) -> &CertificateProblem {
        &self.problem
    }

    pub fn presented(&self) -> &PresentedCertificate {
        &self.presented
    }
}

impl fmt::Display for CertificateRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cert = &self.presented;
        match &self.problem {
            CertificateProblem::PinMismatch { expected, found } => {
                return write!(
                    f,
                    "the server's certificate changed: the pinned SHA-256 fingerprint is \
                     {expected}, but {} presented {found} (subject {}, issuer {}); trust the \
                     new certificate only if you know why it changed",
                    self.host, cert.subject, cert.issuer
                );
            }
            CertificateProblem::UnknownIssuer => write!(
                f,
                "the certificate of {} is signed by an unknown authority ({})",
                self.host, cert.issuer
            )?,
            CertificateProblem::SelfSigned => write!(
                f,
                "the certificate of {} is self-signed and not trusted",
                self.host
            )?,
            CertificateProblem::NotValidForName => write!(
                f,
                "the certificate of {} is not valid for that name",
                self.host
            )?,
            CertificateProblem::Expired => write!(
                f,
                "the certificate of {} expired on {}",
                self.host,
                utc_date(cert.not_after)
            )?,
            CertificateProblem::NotYetValid => write!(
                f,
                "the certificate of {} is valid only from {} (check the clock)",
                self.host,
                utc_date(cert.not_before)
            )?,
            CertificateProblem::Other(why) => {
                write!(f, "the certificate of {} was refused: {why}", self.host)?
            }
        }
        write!(
            f,
            " (subject {}, SHA-256 fingerprint {})",
            cert.subject, cert.fingerprint
        )
    }
}

/// `YYYY-MM-DD` of a Unix time, in UTC (proleptic Gregorian; days-from-civil inverted).
fn utc_date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_messages_are_utc_calendar_days() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_767_225_599), "2025-12-31");
        assert_eq!(utc_date(-1), "1969-12-31");
    }

    #[test]
    fn an_unreadable_certificate_still_has_its_fingerprint() {
        let presented = PresentedCertificate::from_der(b"not a certificate");
        assert_eq!(
            presented.fingerprint,
            CertFingerprint::of(b"not a certificate")
        );
        assert_eq!(presented.subject, "unknown");
        assert!(!presented.self_signed);
    }
}
