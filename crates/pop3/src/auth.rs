//! Credentials, the choice of authentication method, and the SASL mechanisms' steps.
//!
//! Everything here is I/O-free: the client feeds challenges in and sends what comes out.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::{Digest as _, Md5};
use secrecy::{ExposeSecret as _, SecretString};

use crate::error::Error;
use crate::types::{Capabilities, Greeting};

/// What the mailbox owner gave us to log in with.
#[derive(Clone)]
pub enum Credentials {
    /// A user name and password (USER/PASS, APOP, PLAIN, LOGIN, CRAM-MD5).
    Password {
        user: String,
        password: SecretString,
    },
    /// A user name and an OAuth 2.0 access token (XOAUTH2, OAUTHBEARER).
    OAuth2 { user: String, token: SecretString },
}

impl Credentials {
    pub fn password(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials::Password {
            user: user.into(),
            password: SecretString::from(password.into()),
        }
    }

    pub fn oauth2(user: impl Into<String>, token: impl Into<String>) -> Credentials {
        Credentials::OAuth2 {
            user: user.into(),
            token: SecretString::from(token.into()),
        }
    }

    pub fn user(&self) -> &str {
        match self {
            Credentials::Password { user, .. } | Credentials::OAuth2 { user, .. } => user,
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Password { user, .. } => write!(f, "Password {{ user: {user:?}, .. }}"),
            Credentials::OAuth2 { user, .. } => write!(f, "OAuth2 {{ user: {user:?}, .. }}"),
        }
    }
}

/// How to authenticate. `Auto` picks from the server's capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMethod {
    #[default]
    Auto,
    /// `USER` / `PASS` (RFC 1939).
    User,
    /// `APOP` (RFC 1939): an MD5 digest instead of the password.
    Apop,
    /// SASL PLAIN (RFC 4616).
    Plain,
    /// SASL LOGIN (draft-murchison-sasl-login).
    Login,
    /// SASL CRAM-MD5 (RFC 2195).
    CramMd5,
    /// Google's and Microsoft's XOAUTH2.
    XOAuth2,
    /// SASL OAUTHBEARER (RFC 7628).
    OAuthBearer,
}

impl AuthMethod {
    /// Every method, in the order a form lists them.
    pub const ALL: [AuthMethod; 8] = [
        AuthMethod::Auto,
        AuthMethod::User,
        AuthMethod::Apop,
        AuthMethod::Plain,
        AuthMethod::Login,
        AuthMethod::CramMd5,
        AuthMethod::XOAuth2,
        AuthMethod::OAuthBearer,
    ];

    /// The setting's text form (`auto`, `cram-md5`, `xoauth2`, ...): how the method is
    /// stored and typed on the command line and in the API. [`str::parse`] reads it back.
    pub fn as_setting(self) -> &'static str {
        match self {
            AuthMethod::Auto => "auto",
            AuthMethod::User => "user",
            AuthMethod::Apop => "apop",
            AuthMethod::Plain => "plain",
            AuthMethod::Login => "login",
            AuthMethod::CramMd5 => "cram-md5",
            AuthMethod::XOAuth2 => "xoauth2",
            AuthMethod::OAuthBearer => "oauthbearer",
        }
    }

    /// Whether the secret is an OAuth2 access token rather than a password.
    pub fn uses_token(self) -> bool {
        matches!(self, AuthMethod::XOAuth2 | AuthMethod::OAuthBearer)
    }

    /// The method's name as POP3 and SASL spell it.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Auto => "auto",
            AuthMethod::User => "USER",
            AuthMethod::Apop => "APOP",
            AuthMethod::Plain => "PLAIN",
            AuthMethod::Login => "LOGIN",
            AuthMethod::CramMd5 => "CRAM-MD5",
            AuthMethod::XOAuth2 => "XOAUTH2",
            AuthMethod::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// Whether the method puts the secret itself on the wire (readable without TLS).
    pub fn exposes_secret(self) -> bool {
        !matches!(self, AuthMethod::Apop | AuthMethod::CramMd5)
    }

    fn fits(self, credentials: &Credentials) -> bool {
        match self {
            AuthMethod::XOAuth2 | AuthMethod::OAuthBearer => {
                matches!(credentials, Credentials::OAuth2 { .. })
            }
            AuthMethod::Auto => true,
            _ => matches!(credentials, Credentials::Password { .. }),
        }
    }
}

impl std::str::FromStr for AuthMethod {
    type Err = String;

    fn from_str(name: &str) -> Result<AuthMethod, String> {
        Ok(match name.to_ascii_uppercase().as_str() {
            "AUTO" => AuthMethod::Auto,
            "USER" => AuthMethod::User,
            "APOP" => AuthMethod::Apop,
            "PLAIN" => AuthMethod::Plain,
            "LOGIN" => AuthMethod::Login,
            "CRAM-MD5" => AuthMethod::CramMd5,
            "XOAUTH2" => AuthMethod::XOAuth2,
            "OAUTHBEARER" => AuthMethod::OAuthBearer,
            _ => return Err(format!("unknown authentication method {name:?}")),
        })
    }
}

/// Picks the method to use and refuses one that would expose a secret in plaintext.
///
/// With `Auto` over TLS the common choice is made (PLAIN, then USER, then LOGIN). Without
/// TLS no method qualifies unless the caller explicitly allowed insecure authentication:
/// USER, PLAIN, LOGIN and the OAuth methods put the secret itself on the wire, and APOP
/// and CRAM-MD5, though they send only an MD5 digest, let anyone who watches one sign-in
/// guess the password offline (and a man in the middle can read the mail anyway).
pub fn choose_method(
    requested: AuthMethod,
    credentials: &Credentials,
    capabilities: &Capabilities,
    greeting: &Greeting,
    encrypted: bool,
    allow_insecure: bool,
) -> Result<AuthMethod, Error> {
    let insecure_ok = encrypted || allow_insecure;
    if requested != AuthMethod::Auto {
        if !requested.fits(credentials) {
            return Err(Error::NoUsableAuthMethod {
                offered: format!("{} needs other credentials", requested.name()),
            });
        }
        if !insecure_ok {
            return Err(Error::InsecureAuthRefused {
                mechanism: requested.name(),
            });
        }
        if requested == AuthMethod::Apop && greeting.apop_timestamp.is_none() {
            return Err(Error::NotSupported("APOP (no timestamp in its greeting)"));
        }
        return Ok(requested);
    }
    let sasl = |name: &str| capabilities.has_sasl(name);
    let candidates: &[(AuthMethod, bool)] = match credentials {
        Credentials::OAuth2 { .. } => &[
            (AuthMethod::XOAuth2, sasl("XOAUTH2")),
            (AuthMethod::OAuthBearer, sasl("OAUTHBEARER")),
        ],
        Credentials::Password { .. } => &[
            (AuthMethod::Plain, sasl("PLAIN")),
            // An RFC 1939-only server has no CAPA; USER is all it is sure to have.
            (
                AuthMethod::User,
                capabilities.user() || !capabilities.supported,
            ),
            (AuthMethod::Login, sasl("LOGIN")),
            (AuthMethod::CramMd5, sasl("CRAM-MD5")),
            (AuthMethod::Apop, greeting.apop_timestamp.is_some()),
        ],
    };
    let offered: Vec<AuthMethod> = candidates
        .iter()
        .filter(|(_, offered)| *offered)
        .map(|(method, _)| *method)
        .collect();
    match offered.first() {
        Some(method) if insecure_ok => Ok(*method),
        Some(method) => Err(Error::InsecureAuthRefused {
            mechanism: method.name(),
        }),
        None => Err(Error::NoUsableAuthMethod {
            offered: describe_offer(capabilities, greeting),
        }),
    }
}

fn describe_offer(capabilities: &Capabilities, greeting: &Greeting) -> String {
    let mut offer = Vec::new();
    if capabilities.user() {
        offer.push("USER".to_string());
    }
    if greeting.apop_timestamp.is_some() {
        offer.push("APOP".to_string());
    }
    offer.extend(
        capabilities
            .sasl_mechanisms()
            .into_iter()
            .map(|m| format!("SASL {m}")),
    );
    if offer.is_empty() {
        "nothing".into()
    } else {
        offer.join(", ")
    }
}

/// The APOP digest: MD5 of the greeting's timestamp followed by the password, in hex.
pub fn apop_digest(timestamp: &str, password: &str) -> String {
    let mut md5 = Md5::new();
    md5.update(timestamp.as_bytes());
    md5.update(password.as_bytes());
    hex(&md5.finalize())
}

fn hex(octets: &[u8]) -> String {
    octets.iter().map(|b| format!("{b:02x}")).collect()
}

/// HMAC-MD5 (RFC 2104), for CRAM-MD5.
fn hmac_md5(key: &[u8], message: &[u8]) -> [u8; 16] {
    const BLOCK: usize = 64;
    let mut block_key = [0u8; BLOCK];
    if key.len() > BLOCK {
        block_key[..16].copy_from_slice(&Md5::digest(key));
    } else {
        block_key[..key.len()].copy_from_slice(key);
    }
    let mut inner = Md5::new();
    inner.update(block_key.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Md5::new();
    outer.update(block_key.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// One SASL client exchange, as a little state machine.
pub struct SaslExchange {
    method: AuthMethod,
    user: String,
    secret: SecretString,
    host: String,
    port: u16,
    step: u32,
}

/// What to send next in a SASL exchange.
pub enum SaslReply {
    /// A response to send (raw; the client base64-encodes it).
    Respond(Vec<u8>),
    /// The challenge makes no sense for this mechanism: cancel with `*`.
    Cancel,
}

impl SaslExchange {
    /// Starts an exchange for a SASL method (not USER or APOP).
    pub fn new(method: AuthMethod, credentials: &Credentials, host: &str, port: u16) -> Self {
        let (user, secret) = match credentials {
            Credentials::Password { user, password } => (user.clone(), password.clone()),
            Credentials::OAuth2 { user, token } => (user.clone(), token.clone()),
        };
        SaslExchange {
            method,
            user,
            secret,
            host: host.to_string(),
            port,
            step: 0,
        }
    }

    pub fn mechanism(&self) -> &'static str {
        self.method.name()
    }

    /// The initial response, for mechanisms that start with one.
    pub fn initial_response(&self) -> Option<Vec<u8>> {
        let secret = self.secret.expose_secret();
        match self.method {
            AuthMethod::Plain => Some(format!("\0{}\0{secret}", self.user).into_bytes()),
            AuthMethod::XOAuth2 => {
                Some(format!("user={}\x01auth=Bearer {secret}\x01\x01", self.user).into_bytes())
            }
            AuthMethod::OAuthBearer => Some(
                format!(
                    "n,a={},\x01host={}\x01port={}\x01auth=Bearer {secret}\x01\x01",
                    gs2_escape(&self.user),
                    self.host,
                    self.port
                )
                .into_bytes(),
            ),
            _ => None,
        }
    }

    /// Whether the initial response must always go in its own line after an empty
    /// challenge. XOAUTH2 tokens are long and Microsoft 365 accepts only this form.
    pub fn always_two_step(&self) -> bool {
        self.method == AuthMethod::XOAuth2
    }

    /// Answers a (base64-decoded) challenge when no initial response is pending.
    pub fn respond(&mut self, challenge: &[u8]) -> SaslReply {
        self.step += 1;
        let secret = self.secret.expose_secret();
        match (self.method, self.step) {
            (AuthMethod::Login, 1) => SaslReply::Respond(self.user.clone().into_bytes()),
            (AuthMethod::Login, 2) => SaslReply::Respond(secret.as_bytes().to_vec()),
            (AuthMethod::CramMd5, 1) => {
                let digest = hmac_md5(secret.as_bytes(), challenge);
                SaslReply::Respond(format!("{} {}", self.user, hex(&digest)).into_bytes())
            }
            // After the token, a challenge carries the server's error JSON; the client must
            // answer it (empty for XOAUTH2, %x01 for OAUTHBEARER per RFC 7628) to get the
            // final -ERR.
            (AuthMethod::XOAuth2, 1) => SaslReply::Respond(Vec::new()),
            (AuthMethod::OAuthBearer, 1) => SaslReply::Respond(vec![0x01]),
            _ => SaslReply::Cancel,
        }
    }
}

/// RFC 5801 gs2 saslname escaping for the OAUTHBEARER authzid.
fn gs2_escape(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// base64 for the wire; an empty response is an empty line.
pub fn encode_response(response: &[u8]) -> String {
    BASE64.encode(response)
}

/// Decodes a challenge leniently: a server that sends something that is not base64 gets
/// its raw octets passed on instead of a failed login.
pub fn decode_challenge(challenge: &[u8]) -> Vec<u8> {
    BASE64
        .decode(challenge)
        .unwrap_or_else(|_| challenge.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(lines: &[&str]) -> Capabilities {
        Capabilities::from_lines(lines.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn apop_digest_matches_rfc_1939_example() {
        assert_eq!(
            apop_digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf"),
            "c4c9334bac560ecc979e58001b3e22fb"
        );
    }

    #[test]
    fn cram_md5_matches_rfc_2195_example() {
        let creds = Credentials::password("tim", "tanstaaftanstaaf");
        let mut exchange = SaslExchange::new(AuthMethod::CramMd5, &creds, "h", 110);
        let challenge =
            decode_challenge(b"PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+");
        let SaslReply::Respond(response) = exchange.respond(&challenge) else {
            panic!("CRAM-MD5 must answer its challenge");
        };
        assert_eq!(
            encode_response(&response),
            "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"
        );
    }

    #[test]
    fn plaintext_passwords_need_tls_or_explicit_consent() {
        let creds = Credentials::password("u", "p");
        let greeting = Greeting::parse("ready".into());
        let offered = caps(&["USER", "SASL PLAIN LOGIN"]);
        let refused = choose_method(AuthMethod::Auto, &creds, &offered, &greeting, false, false);
        assert!(matches!(refused, Err(Error::InsecureAuthRefused { .. })));
        assert!(matches!(
            choose_method(AuthMethod::User, &creds, &offered, &greeting, false, false),
            Err(Error::InsecureAuthRefused { .. })
        ));
        assert_eq!(
            choose_method(AuthMethod::Auto, &creds, &offered, &greeting, true, false).ok(),
            Some(AuthMethod::Plain)
        );
        assert_eq!(
            choose_method(AuthMethod::Auto, &creds, &offered, &greeting, false, true).ok(),
            Some(AuthMethod::Plain)
        );
    }

    #[test]
    fn apop_and_cram_md5_without_tls_need_explicit_consent_too() {
        let creds = Credentials::password("u", "p");
        let with_apop = Greeting::parse("ready <1.2@host>".into());
        let cram = caps(&["SASL CRAM-MD5"]);
        let plain_greeting = Greeting::parse("ready".into());
        // Auto without TLS used to pick APOP or CRAM-MD5 silently.
        for (offered, greeting, method) in [
            (&caps(&["USER", "SASL PLAIN"]), &with_apop, AuthMethod::Apop),
            (&cram, &plain_greeting, AuthMethod::CramMd5),
        ] {
            for requested in [AuthMethod::Auto, method] {
                assert!(
                    matches!(
                        choose_method(requested, &creds, offered, greeting, false, false),
                        Err(Error::InsecureAuthRefused { .. })
                    ),
                    "{requested:?} without TLS or consent"
                );
                assert_eq!(
                    choose_method(requested, &creds, offered, greeting, false, true).ok(),
                    Some(if requested == AuthMethod::Auto {
                        if method == AuthMethod::Apop {
                            AuthMethod::Plain
                        } else {
                            AuthMethod::CramMd5
                        }
                    } else {
                        method
                    }),
                    "{requested:?} with consent"
                );
                assert_eq!(
                    choose_method(requested, &creds, offered, greeting, true, false).ok(),
                    Some(if requested == AuthMethod::Auto {
                        if method == AuthMethod::Apop {
                            AuthMethod::Plain
                        } else {
                            AuthMethod::CramMd5
                        }
                    } else {
                        method
                    }),
                    "{requested:?} over TLS"
                );
            }
        }
    }

    #[test]
    fn oauth_tokens_pick_xoauth2_then_oauthbearer() {
        let creds = Credentials::oauth2("u@example.com", "tok");
        let greeting = Greeting::parse("ready".into());
        let both = caps(&["SASL OAUTHBEARER XOAUTH2"]);
        assert_eq!(
            choose_method(AuthMethod::Auto, &creds, &both, &greeting, true, false).ok(),
            Some(AuthMethod::XOAuth2)
        );
        let bearer = caps(&["SASL OAUTHBEARER"]);
        assert_eq!(
            choose_method(AuthMethod::Auto, &creds, &bearer, &greeting, true, false).ok(),
            Some(AuthMethod::OAuthBearer)
        );
        assert!(matches!(
            choose_method(
                AuthMethod::Auto,
                &creds,
                &caps(&["USER"]),
                &greeting,
                true,
                false
            ),
            Err(Error::NoUsableAuthMethod { .. })
        ));
    }

    #[test]
    fn xoauth2_and_oauthbearer_initial_responses() {
        let creds = Credentials::oauth2("u@example.com", "tok");
        let x = SaslExchange::new(AuthMethod::XOAuth2, &creds, "pop.example.com", 995);
        assert_eq!(
            x.initial_response().unwrap(),
            b"user=u@example.com\x01auth=Bearer tok\x01\x01"
        );
        assert!(x.always_two_step());
        let b = SaslExchange::new(AuthMethod::OAuthBearer, &creds, "pop.example.com", 995);
        assert_eq!(
            b.initial_response().unwrap(),
            b"n,a=u@example.com,\x01host=pop.example.com\x01port=995\x01auth=Bearer tok\x01\x01"
        );
    }
}
