//! Logging in: USER/PASS, APOP and the SASL mechanisms, over the driver.

use secrecy::ExposeSecret as _;

use super::Client;
use crate::auth::{
    AuthMethod, Credentials, SaslExchange, SaslReply, apop_digest, choose_method, decode_challenge,
    encode_response,
};
use crate::codec::{Command, CommandKind};
use crate::error::{Error, ProtocolError};
use crate::session::Event;

/// RFC 5034: an AUTH command line with its initial response may be at most 255 octets;
/// longer ones go as a continuation.
const MAX_AUTH_LINE: usize = 255;
/// A server that keeps challenging is not going to let us in.
const MAX_SASL_ROUNDS: usize = 8;

impl Client {
    /// Logs in. `AuthMethod::Auto` picks from what the server offers; a method that would
    /// send a password or token in the clear is refused unless the connection is
    /// encrypted or insecure authentication was allowed. Capabilities are read again
    /// afterwards (servers may offer more once logged in).
    pub async fn authenticate(
        &mut self,
        credentials: &Credentials,
        method: AuthMethod,
    ) -> Result<AuthMethod, Error> {
        let method = choose_method(
            method,
            credentials,
            &self.capabilities,
            &self.greeting,
            self.is_encrypted(),
            self.options.allow_insecure_auth,
        )?;
        tracing::debug!(target: "pop3", method = method.name(), "authenticating");
        match (method, credentials) {
            (AuthMethod::User, Credentials::Password { user, password }) => {
                self.simple(Command::User(user.clone())).await?;
                self.simple(Command::Pass(password.expose_secret().to_string()))
                    .await?;
            }
            (AuthMethod::Apop, Credentials::Password { user, password }) => {
                let timestamp = self
                    .greeting
                    .apop_timestamp
                    .clone()
                    .ok_or(Error::NotSupported("APOP (no timestamp in its greeting)"))?;
                self.simple(Command::Apop {
                    user: user.clone(),
                    digest: apop_digest(&timestamp, password.expose_secret()),
                })
                .await?;
            }
            _ => {
                let exchange =
                    SaslExchange::new(method, credentials, &self.options.host, self.options.port);
                self.sasl(exchange).await?;
            }
        }
        self.authenticated = true;
        self.capabilities = self.capa().await?;
        Ok(method)
    }

    async fn sasl(&mut self, mut exchange: SaslExchange) -> Result<(), Error> {
        let mechanism = exchange.mechanism().to_string();
        let mut pending_initial = None;
        let mut command = Command::Auth {
            mechanism: mechanism.clone(),
            initial: None,
        };
        if let Some(initial) = exchange.initial_response() {
            let encoded = if initial.is_empty() {
                "=".to_string()
            } else {
                encode_response(&initial)
            };
            let one_step = Command::Auth {
                mechanism: mechanism.clone(),
                initial: Some(encoded.clone()),
            };
            if !exchange.always_two_step() && one_step.encoded_len() <= MAX_AUTH_LINE {
                command = one_step;
            } else {
                pending_initial = Some(encoded);
            }
        }
        self.send(&command)?;
        for _ in 0..MAX_SASL_ROUNDS {
            match self.next_event().await? {
                Event::Ok { .. } => return Ok(()),
                Event::Err(refused) => return Err(refused.into()),
                Event::Challenge(challenge) => {
                    let response = match pending_initial.take() {
                        Some(initial) => initial,
                        None => match exchange.respond(&decode_challenge(&challenge)) {
                            SaslReply::Respond(response) => encode_response(&response),
                            SaslReply::Cancel => "*".to_string(),
                        },
                    };
                    self.send(&Command::SaslResponse(response))?;
                }
                other => return Err(self.out_of_step(CommandKind::Auth, other)),
            }
        }
        self.broken = true;
        Err(Error::Protocol(ProtocolError::BadReply {
            command: CommandKind::Auth,
            line: format!("{mechanism}: more than {MAX_SASL_ROUNDS} challenges"),
        }))
    }
}
