//! A throwaway certificate authority, so TLS tests verify certificates for real.
//!
//! Tests must prove that the client *checks* the server certificate (chain and host name),
//! so the server cannot use a self-signed leaf the client is told to ignore. Instead each
//! fixture makes its own CA, hands its certificate to the client as the only trust root,
//! and signs server certificates for whatever names the test wants, including wrong ones.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

/// A certificate authority that exists only for one test (or one process).
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate and its private key, both PEM, as Dovecot's `ssl_cert` and
/// `ssl_key` want them.
#[derive(Clone)]
pub struct ServerCert {
    /// The leaf certificate, PEM.
    pub cert_pem: String,
    /// The leaf's private key (PKCS#8), PEM.
    pub key_pem: String,
}

impl TestCa {
    /// Makes a new CA with a fresh P-256 key.
    ///
    /// # Panics
    /// If key generation or signing fails, which only a broken crypto backend does.
    pub fn new() -> TestCa {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "popdesk testkit CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("testkit: generate CA key");
        let issuer =
            CertifiedIssuer::self_signed(params, key).expect("testkit: self-sign the test CA");
        TestCa { issuer }
    }

    /// The CA certificate, PEM: what a client puts in its trust store.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// Signs a server certificate whose subject alternative names are `names`.
    ///
    /// Each name that parses as an IP address becomes an IP SAN, everything else a DNS
    /// SAN. Pass names the client will *not* connect with (e.g. `wrong.example`) to test
    /// that host name verification fails.
    ///
    /// # Panics
    /// If `names` is empty or a name is not a valid DNS name.
    pub fn issue(&self, names: &[&str]) -> ServerCert {
        assert!(
            !names.is_empty(),
            "testkit: a server certificate needs a name"
        );
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.subject_alt_names = names.iter().map(|name| san(name)).collect();
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("testkit: generate server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("testkit: sign server certificate");
        ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

impl std::fmt::Debug for ServerCert {
    /// The certificate only: a key has no business in a test's output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCert")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl ServerCert {
    /// A certificate that signs itself, for `names` (IP addresses become IP SANs), the
    /// kind a small server makes for itself. `ca_true` marks it CA:TRUE, as
    /// `openssl req -x509` does with OpenSSL's default config.
    ///
    /// # Panics
    /// If `names` is empty, a name is not a valid DNS name, or signing fails.
    pub fn self_signed(names: &[&str], ca_true: bool) -> ServerCert {
        assert!(
            !names.is_empty(),
            "testkit: a server certificate needs a name"
        );
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.subject_alt_names = names.iter().map(|name| san(name)).collect();
        if ca_true {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        let key = KeyPair::generate().expect("testkit: generate server key");
        let cert = params
            .self_signed(&key)
            .expect("testkit: self-sign a server certificate");
        ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// The certificate, DER: what a fingerprint is taken of.
    ///
    /// # Panics
    /// If `cert_pem` holds no certificate.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes())
            .expect("testkit: the server certificate is PEM")
    }
}

fn san(name: &str) -> SanType {
    match name.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(
            name.try_into()
                .unwrap_or_else(|e| panic!("testkit: bad DNS name {name:?}: {e}")),
        ),
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}
