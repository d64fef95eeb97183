//! How one connection judges the server's certificate, and what it remembers of it.
//!
//! rustls reports a refused certificate as an error without the certificate. An admin
//! facing "unknown issuer" needs to see what the server presented to decide whether to
//! trust it, so the verifier keeps the end-entity certificate of its connection and the
//! handshake's error is rebuilt from it ([`refusal`]).

use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_name;
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::certificate::{CertificateProblem, CertificateRefusal, PresentedCertificate};
use crate::fingerprint::CertFingerprint;

/// Who vouches for the server's certificate.
#[derive(Debug, Clone)]
pub(crate) enum Trust {
    /// Chain verification against roots (the system's, plus the CA file's), and the CA
    /// file's certificates themselves, accepted as they are when the server presents one.
    Roots {
        chain: Arc<dyn ServerCertVerifier>,
        exact: Arc<[CertificateDer<'static>]>,
    },
    /// Exactly this certificate and no other.
    Pinned(CertFingerprint),
}

/// The end-entity certificate the server presented on one connection, once it has.
pub(crate) type Presented = Arc<Mutex<Option<CertificateDer<'static>>>>;

/// The verifier of one connection: [`Trust`] decides, and the presented certificate is
/// kept for the error.
#[derive(Debug)]
pub(crate) struct ServerCertCheck {
    trust: Trust,
    provider: Arc<CryptoProvider>,
    presented: Presented,
}

/// A pinned fingerprint that the presented certificate does not have. Travels inside
/// rustls' error so that [`refusal`] can name both fingerprints.
#[derive(Debug, thiserror::Error)]
#[error("the certificate's SHA-256 fingerprint is {found}, not the pinned {expected}")]
struct PinMismatch {
    expected: CertFingerprint,
    found: CertFingerprint,
}

impl ServerCertCheck {
    pub(crate) fn new(trust: Trust, provider: Arc<CryptoProvider>) -> (ServerCertCheck, Presented) {
        let presented = Presented::default();
        let check = ServerCertCheck {
            trust,
            provider,
            presented: Arc::clone(&presented),
        };
        (check, presented)
    }

    fn judge(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.trust {
            Trust::Pinned(expected) => {
                let found = CertFingerprint::of(end_entity);
                if found == *expected {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                        OtherError(Arc::new(PinMismatch {
                            expected: *expected,
                            found,
                        })),
                    )))
                }
            }
            Trust::Roots { chain, exact } => {
                if exact
                    .iter()
                    .any(|cert| cert.as_ref() == end_entity.as_ref())
                {
                    // The admin put this very certificate in the CA file: the server's own
                    // self-signed one. webpki would refuse it as its own end entity when it
                    // is marked CA:TRUE (as `openssl req -x509` makes them), so it is taken
                    // as it is. The host name is still checked, because webpki can do that
                    // on any certificate and it costs nothing: the file vouches for a key,
                    // not for whichever host presents it. Its dates are not checked, as
                    // webpki checks no trust anchor's dates: an admin who trusts one exact
                    // certificate replaces it when they choose (self-signed ones often
                    // outlive their dates on small servers).
                    let parsed = ParsedCertificate::try_from(end_entity)?;
                    verify_server_name(&parsed, server_name)?;
                    return Ok(ServerCertVerified::assertion());
                }
                chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
        }
    }
}

impl ServerCertVerifier for ServerCertCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self
            .presented
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(end_entity.clone().into_owned());
        self.judge(end_entity, intermediates, server_name, ocsp_response, now)
    }

    // Whichever way the certificate was accepted, the server must prove it holds its
    // key: the handshake's signatures are checked against it with the provider's
    // algorithms, as rustls' own verifier does.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        match &self.trust {
            Trust::Roots { chain, .. } => chain.root_hint_subjects(),
            Trust::Pinned(_) => None,
        }
    }
}

/// The refusal an admin sees: rustls' reason in our words, and the certificate.
pub(crate) fn refusal(
    error: &CertificateError,
    end_entity: &CertificateDer<'_>,
    host: &str,
) -> CertificateRefusal {
    let presented = PresentedCertificate::from_der(end_entity);
    let problem = match error {
        CertificateError::UnknownIssuer if presented.self_signed => CertificateProblem::SelfSigned,
        CertificateError::UnknownIssuer => CertificateProblem::UnknownIssuer,
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            CertificateProblem::NotValidForName
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            CertificateProblem::Expired
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            CertificateProblem::NotYetValid
        }
        CertificateError::BadSignature => CertificateProblem::Other(
            "a signature does not verify: the certificate's own, or the server's proof \
             that it holds the certificate's key"
                .into(),
        ),
        CertificateError::Other(OtherError(inner)) => {
            if let Some(pin) = inner.downcast_ref::<PinMismatch>() {
                CertificateProblem::PinMismatch {
                    expected: pin.expected,
                    found: pin.found,
                }
            } else if matches!(
                inner.downcast_ref::<webpki::Error>(),
                Some(webpki::Error::CaUsedAsEndEntity)
            ) {
                if presented.self_signed {
                    CertificateProblem::SelfSigned
                } else {
                    CertificateProblem::Other(
                        "the server presented a CA certificate as its own".into(),
                    )
                }
            } else {
                CertificateProblem::Other(inner.to_string())
            }
        }
        other => CertificateProblem::Other(other.to_string()),
    };
    CertificateRefusal {
        problem,
        presented,
        host: host.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use rustls::RootCertStore;
    use rustls::client::WebPkiServerVerifier;
    use testkit::{ServerCert, TestCa};

    use super::*;

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    fn roots(trusted: &[CertificateDer<'static>]) -> Trust {
        let mut store = RootCertStore::empty();
        for cert in trusted {
            store.add(cert.clone()).expect("a usable root");
        }
        let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider())
            .build()
            .expect("a verifier");
        Trust::Roots {
            chain,
            exact: trusted.to_vec().into(),
        }
    }

    /// Roots that vouch for nothing the tests present (rustls wants at least one). Not
    /// another `TestCa`: its name would match and the failure be a bad signature.
    fn unrelated_roots() -> Trust {
        roots(&[ServerCert::self_signed(&["unrelated.example"], true).cert_der()])
    }

    fn name(host: &str) -> ServerName<'static> {
        match host.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(host.to_owned()).expect("a DNS name"),
        }
    }

    /// Runs `trust` on `cert` for `host`; on refusal, what the admin would be told.
    fn check(
        trust: Trust,
        cert: &CertificateDer<'static>,
        host: &str,
    ) -> Result<(), Box<CertificateRefusal>> {
        let (check, presented) = ServerCertCheck::new(trust, provider());
        let result = check.verify_server_cert(cert, &[], &name(host), &[], UnixTime::now());
        let seen = presented
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        assert_eq!(
            seen.as_ref(),
            Some(cert),
            "the presented certificate is kept"
        );
        match result {
            Ok(_) => Ok(()),
            Err(rustls::Error::InvalidCertificate(error)) => {
                Err(Box::new(refusal(&error, cert, host)))
            }
            Err(other) => panic!("not a certificate error: {other:?}"),
        }
    }

    #[test]
    fn a_pinned_certificate_is_trusted_whatever_its_issuer_name_or_ca_flag() {
        let cert = ServerCert::self_signed(&["elsewhere.example"], true).cert_der();
        let pin = Trust::Pinned(CertFingerprint::of(&cert));
        assert!(check(pin, &cert, "localhost").is_ok());
    }

    #[test]
    fn a_pin_refuses_another_certificate_even_one_the_roots_would_trust() {
        let ca = TestCa::new();
        let good = ca.issue(&["localhost"]).cert_der();
        let pinned = ServerCert::self_signed(&["localhost"], true).cert_der();
        let refusal = check(
            Trust::Pinned(CertFingerprint::of(&pinned)),
            &good,
            "localhost",
        )
        .expect_err("only the pinned certificate is trusted");
        assert_eq!(
            refusal.problem(),
            &CertificateProblem::PinMismatch {
                expected: CertFingerprint::of(&pinned),
                found: CertFingerprint::of(&good),
            }
        );
        let message = refusal.to_string();
        assert!(
            message.contains(&CertFingerprint::of(&pinned).to_string())
                && message.contains(&CertFingerprint::of(&good).to_string()),
            "{message}"
        );
    }

    #[test]
    fn the_servers_own_ca_true_certificate_in_the_ca_file_is_trusted_for_its_names() {
        let cert = ServerCert::self_signed(&["localhost", "127.0.0.1"], true).cert_der();
        assert!(check(roots(std::slice::from_ref(&cert)), &cert, "localhost").is_ok());
        assert!(check(roots(std::slice::from_ref(&cert)), &cert, "127.0.0.1").is_ok());
        let refusal = check(roots(std::slice::from_ref(&cert)), &cert, "other.example")
            .expect_err("the host name is still checked");
        assert_eq!(refusal.problem(), &CertificateProblem::NotValidForName);
    }

    #[test]
    fn a_chain_to_a_ca_in_the_ca_file_is_still_verified_as_before() {
        let ca = TestCa::new();
        let leaf = ca.issue(&["localhost"]).cert_der();
        assert!(check(roots(&[ca.cert_der()]), &leaf, "localhost").is_ok());
        let refusal =
            check(roots(&[ca.cert_der()]), &leaf, "other.example").expect_err("wrong host name");
        assert_eq!(refusal.problem(), &CertificateProblem::NotValidForName);
    }

    #[test]
    fn an_untrusted_self_signed_certificate_is_called_self_signed_ca_true_or_not() {
        for ca_true in [true, false] {
            let cert = ServerCert::self_signed(&["localhost"], ca_true).cert_der();
            let refusal = check(unrelated_roots(), &cert, "localhost").expect_err("nobody vouches");
            assert_eq!(
                refusal.problem(),
                &CertificateProblem::SelfSigned,
                "CA:{ca_true}"
            );
            assert!(refusal.presented().self_signed);
            assert_eq!(refusal.presented().fingerprint, CertFingerprint::of(&cert));
            assert_eq!(refusal.presented().subject, "CN=localhost");
        }
    }

    #[test]
    fn a_certificate_from_an_unknown_authority_says_so_and_names_the_issuer() {
        let leaf = TestCa::new().issue(&["localhost"]).cert_der();
        let refusal = check(unrelated_roots(), &leaf, "localhost").expect_err("unknown CA");
        assert_eq!(refusal.problem(), &CertificateProblem::UnknownIssuer);
        assert!(!refusal.presented().self_signed);
        assert_eq!(refusal.presented().issuer, "CN=popdesk testkit CA");
        assert!(refusal.presented().not_before < refusal.presented().not_after);
        assert!(
            refusal.to_string().contains("unknown authority"),
            "{refusal}"
        );
    }
}
