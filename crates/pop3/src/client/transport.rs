//! The byte stream under a session: plain TCP or TLS over it, and how TLS is set up.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, PoisonError};
use std::task::{Context, Poll};

use rustls::ClientConfig;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::options::ConnectOptions;
use super::server_cert::{Presented, ServerCertCheck, Trust, refusal};
use crate::error::Error;

/// The connection, before or after TLS.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while STLS swaps one for the other, or after the stream failed mid-swap.
    Gone,
}

impl Stream {
    pub(crate) fn is_encrypted(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection already closed")
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }
}

/// TLS for one connection: the connector, and the certificate its verifier saw.
///
/// A connection gets its own `ClientConfig` because the verifier keeps that connection's
/// certificate for the error. It also means no TLS session is resumed from another
/// connection, so every connection's certificate is checked (a resumed session skips
/// the check). Loading the system roots is the costly part and is done once.
pub(crate) struct TlsSetup {
    connector: TlsConnector,
    presented: Presented,
}

/// Sets up TLS for one connection: the platform's roots (webpki-roots where the system
/// has none) plus the caller's CA file, or only the pinned certificate. There is
/// deliberately no "accept anything" switch.
pub(crate) fn connector(options: &ConnectOptions) -> Result<TlsSetup, Error> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    static SYSTEM_ROOTS: OnceLock<Result<Arc<dyn ServerCertVerifier>, String>> = OnceLock::new();
    let provider = PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone();
    let trust = match (&options.pinned_certificate, &options.ca_file) {
        (Some(pin), _) => Trust::Pinned(*pin),
        (None, None) => Trust::Roots {
            chain: SYSTEM_ROOTS
                .get_or_init(|| chain_verifier(Vec::new(), &provider))
                .clone()
                .map_err(Error::TlsConfig)?,
            exact: Arc::from([]),
        },
        (None, Some(path)) => {
            let extra = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    Error::TlsConfig(format!("cannot read CA file {}: {e}", path.display()))
                })?;
            if extra.is_empty() {
                return Err(Error::TlsConfig(format!(
                    "CA file {} holds no certificate",
                    path.display()
                )));
            }
            Trust::Roots {
                chain: chain_verifier(extra.clone(), &provider).map_err(Error::TlsConfig)?,
                exact: extra.into(),
            }
        }
    };
    let (verifier, presented) = ServerCertCheck::new(trust, provider.clone());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::TlsConfig(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(TlsSetup {
        connector: TlsConnector::from(Arc::new(config)),
        presented,
    })
}

/// Chain verification against the system's roots plus `extra_roots`.
fn chain_verifier(
    extra_roots: Vec<CertificateDer<'static>>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, String> {
    match rustls_platform_verifier::Verifier::new_with_extra_roots(
        extra_roots.clone(),
        provider.clone(),
    ) {
        Ok(verifier) => Ok(Arc::new(verifier)),
        // No system roots (a bare container): fall back to the Mozilla roots.
        Err(_) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            for cert in extra_roots {
                roots
                    .add(cert)
                    .map_err(|e| format!("unusable CA certificate: {e}"))?;
            }
            let verifier: Arc<dyn ServerCertVerifier> =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| e.to_string())?;
            Ok(verifier)
        }
    }
}

/// Runs the TLS handshake over `tcp`, checking the certificate against `host`.
pub(crate) async fn handshake(
    tls: &TlsSetup,
    host: &str,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, Error> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| Error::TlsConfig(format!("{host:?} is not a valid server name")))?;
    tls.connector.connect(name, tcp).await.map_err(|error| {
        // A rustls error (certificate, protocol) is about TLS; anything else is the
        // network failing during the handshake.
        let Some(tls_error) = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        else {
            return Error::ConnectionLost(error);
        };
        let presented = tls
            .presented
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match (tls_error, presented) {
            (rustls::Error::InvalidCertificate(problem), Some(cert)) => {
                Error::Certificate(Box::new(refusal(problem, &cert, host)))
            }
            _ => Error::Tls(error),
        }
    })
}
