//! The byte stream under a session: plain TCP or TLS over it, and how TLS is set up.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use rustls::ClientConfig;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::options::ConnectOptions;
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

/// Builds the TLS connector: the platform's roots (webpki-roots where the system has
/// none), plus the caller's CA file. There is deliberately no "accept anything" switch.
pub(crate) fn connector(options: &ConnectOptions) -> Result<TlsConnector, Error> {
    static DEFAULT: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    let config = match &options.ca_file {
        None => DEFAULT
            .get_or_init(|| build_config(Vec::new()))
            .clone()
            .map_err(Error::TlsConfig)?,
        Some(path) => {
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
            build_config(extra).map_err(Error::TlsConfig)?
        }
    };
    Ok(TlsConnector::from(config))
}

fn build_config(extra_roots: Vec<CertificateDer<'static>>) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> =
        match rustls_platform_verifier::Verifier::new_with_extra_roots(
            extra_roots.clone(),
            provider.clone(),
        ) {
            Ok(verifier) => Arc::new(verifier),
            // No system roots (a bare container): fall back to the Mozilla roots.
            Err(_) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                for cert in extra_roots {
                    roots
                        .add(cert)
                        .map_err(|e| format!("unusable CA certificate: {e}"))?;
                }
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| e.to_string())?
            }
        };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Runs the TLS handshake over `tcp`, checking the certificate against `host`.
pub(crate) async fn handshake(
    connector: &TlsConnector,
    host: &str,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, Error> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| Error::TlsConfig(format!("{host:?} is not a valid server name")))?;
    connector.connect(name, tcp).await.map_err(|error| {
        // A rustls error (certificate, protocol) is about TLS; anything else is the
        // network failing during the handshake.
        if error
            .get_ref()
            .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            Error::Tls(error)
        } else {
            Error::ConnectionLost(error)
        }
    })
}
