//! "Test connection": connect, sign in, read the mailbox's size, log out — and say what
//! went wrong in one sentence an admin can act on, keeping the technical detail apart.

use std::io::ErrorKind;
use std::time::Duration;

use intake::{FetchError, SessionOptions, probe, session_plan};
use secrecy::SecretString;
use store::MailboxSettings;

/// How long a connection test may take: below the web's request timeout, so the admin
/// gets an answer in words rather than a timeout page.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(45);

/// The server as popdesk saw it.
#[derive(Debug, Clone)]
pub struct ServerFacts {
    pub greeting: String,
    pub encrypted: bool,
    /// The sign-in method that was used (`PLAIN`, `USER`, ...).
    pub auth_method: String,
    pub capabilities: Vec<String>,
    /// Messages waiting on the server, and their size in octets.
    pub messages: u32,
    pub size: u64,
    /// Whether the server has UIDL (the keep policy needs it).
    pub has_uidl: bool,
    pub pipelining: bool,
}

/// Why the test failed: one sentence for people, the technical detail for the log and a
/// "details" disclosure.
#[derive(Debug, Clone)]
pub struct ConnectionProblem {
    pub summary: String,
    pub detail: String,
    /// The certificate the server presented, when it was not trusted: what an admin
    /// checks before "Trust this certificate".
    pub certificate: Option<pop3::PresentedCertificate>,
}

/// What a connection test found.
#[derive(Debug, Clone)]
pub enum ConnectionReport {
    Connected(ServerFacts),
    Failed(ConnectionProblem),
}

impl ConnectionReport {
    pub fn is_ok(&self) -> bool {
        matches!(self, ConnectionReport::Connected(_))
    }

    /// The test could not start: the mailbox's OAuth2 connection gave no token.
    pub fn token_unavailable(error: &oauth::AccessError) -> ConnectionReport {
        let mut summary = error.to_string();
        if let Some(first) = summary.get(..1) {
            let upper = first.to_uppercase();
            summary.replace_range(..1, &upper);
        }
        summary.push('.');
        ConnectionReport::Failed(ConnectionProblem {
            summary,
            detail: format!("no OAuth2 access token: {error}"),
            certificate: None,
        })
    }

    pub fn problem(&self) -> Option<&ConnectionProblem> {
        match self {
            ConnectionReport::Failed(problem) => Some(problem),
            ConnectionReport::Connected(_) => None,
        }
    }
}

/// Runs the test with these settings and this secret. Changes nothing on the server.
pub(crate) async fn test(
    settings: &MailboxSettings,
    secret: &SecretString,
    options: &SessionOptions,
) -> ConnectionReport {
    let plan = match session_plan(settings, secret, options) {
        Ok(plan) => plan,
        Err(error) => return ConnectionReport::Failed(explain(settings, &error)),
    };
    match tokio::time::timeout(TEST_TIMEOUT, probe(&plan)).await {
        Ok(Ok(found)) => ConnectionReport::Connected(ServerFacts {
            greeting: found.greeting,
            encrypted: found.encrypted,
            auth_method: found.auth_method.name().to_string(),
            capabilities: found.capabilities,
            messages: found.messages,
            size: found.size,
            has_uidl: found.has_uidl,
            pipelining: found.pipelining,
        }),
        Ok(Err(error)) => {
            tracing::info!(mailbox = %settings.name, error = %error, "connection test failed");
            ConnectionReport::Failed(explain(settings, &error))
        }
        Err(_) => ConnectionReport::Failed(ConnectionProblem {
            summary: format!(
                "The server did not finish answering within {} seconds. Check the host and port; a firewall may be dropping the connection.",
                TEST_TIMEOUT.as_secs()
            ),
            detail: format!("the test was stopped after {} s", TEST_TIMEOUT.as_secs()),
            certificate: None,
        }),
    }
}

/// One sentence for people, from a fetch error.
pub fn explain(settings: &MailboxSettings, error: &FetchError) -> ConnectionProblem {
    let detail = error.to_string();
    let certificate = match error {
        FetchError::Pop3(error) => error.presented_certificate().cloned(),
        _ => None,
    };
    let summary = match error {
        FetchError::Pop3(error) => explain_pop3(settings, error),
        _ => None,
    }
    .unwrap_or_else(|| {
        let mut sentence = detail.clone();
        if let Some(first) = sentence.get(..1) {
            let upper = first.to_uppercase();
            sentence.replace_range(..1, &upper);
        }
        if !sentence.ends_with('.') {
            sentence.push('.');
        }
        sentence
    });
    ConnectionProblem {
        summary,
        detail,
        certificate,
    }
}

fn explain_pop3(settings: &MailboxSettings, error: &pop3::Error) -> Option<String> {
    let at = format!("{}:{}", settings.host, settings.port);
    let text = error.to_string();
    if error.is_auth() {
        return Some(
            "The server refused the sign-in. Check the username and the password (or token), and type the password again."
                .to_string(),
        );
    }
    if let Some(problem) = error.certificate_problem() {
        use pop3::CertificateProblem as P;
        let sentence = match problem {
            P::PinMismatch { .. } => "The server presented a different certificate from the one this mailbox trusts. If the server's certificate was replaced on purpose, check the new fingerprint below and trust it; otherwise someone may be in between.".to_string(),
            P::SelfSigned => "The server's certificate is self-signed, so no authority vouches for it. If this is your own server, compare the fingerprint below with the server's and trust it.".to_string(),
            P::UnknownIssuer => "The server's certificate is signed by an authority popdesk does not know. Give that authority's certificate as the CA certificate file, or compare the fingerprint below with the server's and trust it.".to_string(),
            P::NotValidForName => format!(
                "The server's certificate is not made out for “{}”. Use the host name the certificate names, or trust this exact certificate by its fingerprint.",
                settings.host
            ),
            P::Expired => "The server's certificate has expired. Ask the server's administrator to renew it.".to_string(),
            P::NotYetValid => "The server's certificate is not valid yet. Check the clock of the machine popdesk runs on.".to_string(),
            _ => "popdesk does not trust the server's certificate. Compare the fingerprint below with the server's and trust it, or give the CA certificate file.".to_string(),
        };
        return Some(sentence);
    }
    let sentence = match error {
        pop3::Error::Connect { source, .. } => match source.kind() {
            ErrorKind::ConnectionRefused => format!(
                "Nothing answers at {at}. Check the host and the port, and that the mail server is running."
            ),
            ErrorKind::TimedOut => format!(
                "{at} did not answer. Check the host and the port; a firewall may be dropping the connection."
            ),
            _ if text.contains("lookup") || text.contains("resolve") || text.contains("Name or service") => format!(
                "The host name “{}” could not be found. Check its spelling.",
                settings.host
            ),
            _ => format!("popdesk could not connect to {at}. Check the host and the port."),
        },
        pop3::Error::Timeout(_) => format!(
            "{at} stopped answering. Check the host and the port; a firewall may be dropping the connection."
        ),
        pop3::Error::Tls(_) if text.contains("InvalidContentType") || text.contains("corrupt message") => format!(
            "The server at {at} did not answer with TLS. Choose STARTTLS (usually port 110), or the server's TLS port (usually 995)."
        ),
        pop3::Error::Tls(_) if text.contains("UnknownIssuer") || text.contains("CaUsedAsEndEntity") || text.contains("SelfSigned") => {
            "The server's certificate is not signed by an authority popdesk trusts. If this is your own server with a self-signed certificate, compare its fingerprint with the server's and trust it.".to_string()
        }
        pop3::Error::Tls(_) if text.contains("NotValidForName") => format!(
            "The server's certificate is not made out for “{}”. Use the host name the certificate names.",
            settings.host
        ),
        pop3::Error::Tls(_) if text.contains("Expired") => {
            "The server's certificate has expired. Ask the server's administrator to renew it.".to_string()
        }
        pop3::Error::Tls(_) if text.contains("fingerprint") => {
            "The server presented a different certificate from the one this mailbox trusts. If the server's certificate was replaced on purpose, trust the new one; otherwise someone may be in between.".to_string()
        }
        pop3::Error::Tls(_) => format!(
            "TLS with {at} failed. Check the host, the port and the security setting."
        ),
        pop3::Error::TlsConfig(_) if settings.ca_file.is_some() => {
            "popdesk cannot use the CA certificate file. Give the path of a PEM file on the machine popdesk runs on.".to_string()
        }
        pop3::Error::StlsNotOffered => {
            "The server does not offer STARTTLS, so popdesk will not send the password unencrypted. Choose TLS from the start (usually port 995).".to_string()
        }
        pop3::Error::InsecureAuthRefused { .. } => {
            "popdesk will not sign in over an unencrypted connection (not even with APOP or CRAM-MD5, whose digests can be guessed offline). Choose TLS, or allow insecure sign-in for this mailbox if the network is trusted.".to_string()
        }
        pop3::Error::NoUsableAuthMethod { .. } => {
            "The server offers no sign-in method popdesk can use with these settings. Choose “Automatic”, or the method the server offers.".to_string()
        }
        pop3::Error::ConnectionClosed | pop3::Error::ConnectionLost(_) => format!(
            "The server at {at} closed the connection. Check the port and the security setting."
        ),
        pop3::Error::Protocol(_) => format!(
            "Something answered at {at}, but it is not a POP3 server. Check the port."
        ),
        _ => return None,
    };
    Some(sentence)
}
