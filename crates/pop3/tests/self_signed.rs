//! Trusting a self-signed POP3 server (issue #10), against a real Dovecot serving a
//! certificate made by the real `openssl req -x509`, the way admins make them.
//!
//! Such a certificate is marked CA:TRUE by OpenSSL's default config, which webpki
//! refuses as a server's own certificate even when it is trusted. The admin must be able
//! to see what the server presents, trust it by fingerprint or by putting it in the CA
//! file, and be stopped when it changes.

use std::process::Command;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject as _;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use pop3::{
    AuthMethod, CertFingerprint, CertificateProblem, Client, ConnectOptions, Credentials, Error,
    Security,
};
use testkit::{Dovecot, ServerCert, openssl_bin};
use x509_parser::prelude::{FromDer as _, X509Certificate};

const USER: &str = "support";
const PASSWORD: &str = "s3cret";

/// A Dovecot serving a fresh `openssl req -x509` certificate, with one user.
fn self_signed_dovecot() -> (Dovecot, ServerCert) {
    let cert = ServerCert::openssl_self_signed();
    let dovecot = Dovecot::builder().server_cert(cert.clone()).start();
    dovecot.add_user(USER, PASSWORD);
    (dovecot, cert)
}

/// Options with nothing but the system roots trusted.
fn options(dovecot: &Dovecot, security: Security) -> ConnectOptions {
    let port = match security {
        Security::Implicit => dovecot.pop3s_addr().port(),
        _ => dovecot.pop3_addr().port(),
    };
    ConnectOptions::new(dovecot.host(), port, security)
}

/// The fingerprint as `openssl x509 -fingerprint -sha256` prints it, independent of the
/// client under test.
fn openssl_fingerprint(cert: &ServerCert) -> CertFingerprint {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("server.pem");
    std::fs::write(&path, &cert.cert_pem).expect("write the certificate");
    let output = Command::new(openssl_bin())
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&path)
        .output()
        .expect("run openssl x509");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .parse()
        .expect("openssl prints a SHA-256 fingerprint")
}

/// Connects, logs in and leaves with QUIT: the whole session works over this TLS.
async fn session_works(options: &ConnectOptions) {
    let mut client = Client::connect(options)
        .await
        .unwrap_or_else(|e| panic!("connect with {:?}: {e}", options.security));
    assert!(client.is_encrypted());
    client
        .authenticate(&Credentials::password(USER, PASSWORD), AuthMethod::User)
        .await
        .expect("login");
    assert_eq!(client.stat().await.expect("STAT").count, 0);
    assert!(client.quit().await.is_committed());
}

async fn refusal(options: &ConnectOptions) -> Error {
    Client::connect(options)
        .await
        .err()
        .expect("the certificate must be refused")
}

#[test]
fn openssl_marks_its_req_x509_certificates_ca_true() {
    let cert = ServerCert::openssl_self_signed();
    let der = cert.cert_der();
    let (_, parsed) = X509Certificate::from_der(&der).expect("a certificate");
    let constraints = parsed
        .basic_constraints()
        .expect("well-formed extensions")
        .expect("openssl's default config adds basicConstraints");
    assert!(constraints.value.ca, "the case issue #10 is about");
}

#[tokio::test]
async fn a_self_signed_server_is_refused_by_default_and_the_error_shows_its_certificate() {
    let (dovecot, cert) = self_signed_dovecot();
    let fingerprint = openssl_fingerprint(&cert);
    assert_eq!(fingerprint, CertFingerprint::of(&cert.cert_der()));

    for security in [Security::Implicit, Security::StartTls] {
        let error = refusal(&options(&dovecot, security)).await;
        assert!(error.is_tls() && !error.is_transient(), "{error}");
        assert_eq!(
            error.certificate_problem(),
            Some(&CertificateProblem::SelfSigned),
            "{error}"
        );
        let presented = error
            .presented_certificate()
            .expect("the error carries the certificate");
        assert_eq!(presented.fingerprint, fingerprint);
        assert_eq!(presented.subject, "CN=localhost");
        assert_eq!(presented.issuer, "CN=localhost");
        assert!(presented.self_signed);
        let days = (presented.not_after - presented.not_before) / 86_400;
        assert_eq!(days, 30, "openssl -days 30");
        assert!(
            error.to_string().contains(&fingerprint.to_string()),
            "{error}"
        );
    }
}

#[tokio::test]
async fn pinning_its_fingerprint_trusts_a_self_signed_server() {
    let (dovecot, cert) = self_signed_dovecot();
    for security in [Security::Implicit, Security::StartTls] {
        let mut pinned = options(&dovecot, security);
        pinned.pinned_certificate = Some(openssl_fingerprint(&cert));
        session_works(&pinned).await;
    }
}

#[tokio::test]
async fn its_own_certificate_as_the_ca_file_trusts_a_self_signed_server() {
    let (dovecot, _cert) = self_signed_dovecot();
    for security in [Security::Implicit, Security::StartTls] {
        let mut own = options(&dovecot, security);
        own.ca_file = Some(dovecot.server_cert_pem_path());
        session_works(&own).await;
    }
}

#[tokio::test]
async fn a_server_that_changes_its_certificate_is_refused_naming_both_fingerprints() {
    let (dovecot, old) = self_signed_dovecot();
    let old_fingerprint = openssl_fingerprint(&old);
    let mut pinned = options(&dovecot, Security::Implicit);
    pinned.pinned_certificate = Some(old_fingerprint);
    session_works(&pinned).await;
    let ca_dir = tempfile::tempdir().expect("a temp dir");
    let old_pem = ca_dir.path().join("old.pem");
    std::fs::write(&old_pem, &old.cert_pem).expect("keep the old certificate");

    let new = ServerCert::openssl_self_signed();
    dovecot.replace_server_cert(&new);
    let new_fingerprint = openssl_fingerprint(&new);
    assert_ne!(old_fingerprint, new_fingerprint);

    let error = refusal(&pinned).await;
    assert!(error.is_tls() && !error.is_transient(), "{error}");
    assert_eq!(
        error.certificate_problem(),
        Some(&CertificateProblem::PinMismatch {
            expected: old_fingerprint,
            found: new_fingerprint,
        })
    );
    let message = error.to_string();
    assert!(
        message.contains(&old_fingerprint.to_string())
            && message.contains(&new_fingerprint.to_string()),
        "{message}"
    );
    assert_eq!(
        error.presented_certificate().map(|c| c.fingerprint),
        Some(new_fingerprint)
    );

    // Trusting the old certificate through the CA file does not trust the new one.
    let mut old_ca = options(&dovecot, Security::Implicit);
    old_ca.ca_file = Some(old_pem);
    let error = refusal(&old_ca).await;
    assert_eq!(
        error.certificate_problem(),
        Some(&CertificateProblem::SelfSigned),
        "{error}"
    );

    // The admin trusts the new certificate: the pin is updated, and all is well.
    pinned.pinned_certificate = Some(new_fingerprint);
    session_works(&pinned).await;
}

/// A hand-written TLS server presenting one certificate while signing with another key:
/// a fault no real server produces (Dovecot refuses a key that does not match), but
/// exactly what an impostor who copied a public certificate would do.
#[derive(Debug)]
struct ImpostorKey(Arc<CertifiedKey>);

impl ResolvesServerCert for ImpostorKey {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

#[tokio::test]
async fn a_pinned_certificate_is_refused_from_a_server_without_its_key() {
    let copied = ServerCert::self_signed(&["localhost"], true);
    let impostor = ServerCert::self_signed(&["localhost"], true);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = PrivateKeyDer::from_pem_slice(impostor.key_pem.as_bytes()).expect("a PEM key");
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .expect("a usable key");
    let served = CertifiedKey::new(vec![copied.cert_der()], signing_key);
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(ImpostorKey(Arc::new(served))));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let _ = TlsAcceptor::from(Arc::new(config)).accept(tcp).await;
    });

    let mut pinned = ConnectOptions::new("localhost", port, Security::Implicit);
    pinned.pinned_certificate = Some(CertFingerprint::of(&copied.cert_der()));
    let error = refusal(&pinned).await;
    assert!(error.is_tls() && !error.is_transient(), "{error}");
    // The fingerprint matched; the handshake signature did not.
    assert!(
        matches!(
            error.certificate_problem(),
            Some(CertificateProblem::Other(why)) if why.contains("signature")
        ),
        "{error}"
    );
    let _ = server.await;
}
