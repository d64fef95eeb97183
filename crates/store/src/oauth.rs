//! A mailbox's OAuth2 connection (DESIGN.md "OAuth2 connections"): its settings, part of
//! the mailbox's one typed model, and its tokens with their state.
//!
//! Tokens and the client secret are sealed like passwords. The access token, its expiry
//! and the refresh token are written together in one statement, so a rotated refresh
//! token is committed before the new access token is handed to anyone. Refreshing is
//! claimed on the row ([`Store::claim_token_refresh`]) so two workers never spend one
//! refresh token twice.

use secrecy::{ExposeSecret, SecretString};

use crate::secret::{OAUTH_ACCESS_TOKEN, OAUTH_CLIENT_SECRET, OAUTH_REFRESH_TOKEN, OAUTH_VERIFIER};
use crate::text::{column, text_enum};
use crate::{Store, StoreError};

/// Who issues the tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OAuthProvider {
    /// Microsoft 365 (Entra ID), by tenant.
    #[default]
    Microsoft,
    Google,
    /// Any provider, by its issuer's discovery document or its endpoints.
    Generic,
}
text_enum!(OAuthProvider, "OAuth2 provider", {
    Microsoft => "microsoft",
    Google => "google",
    Generic => "generic",
});

/// How the connection gets its first tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OAuthFlow {
    /// The admin's browser goes to the provider and comes back to popdesk (PKCE).
    #[default]
    AuthorizationCode,
    /// The admin approves a code on the provider's page, from any device.
    DeviceCode,
    /// App-only: no user, no refresh token; a new access token whenever one is due.
    ClientCredentials,
}
text_enum!(OAuthFlow, "OAuth2 flow", {
    AuthorizationCode => "authorization-code",
    DeviceCode => "device-code",
    ClientCredentials => "client-credentials",
});

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OAuthState {
    /// No tokens yet (or the settings changed where they go): "Connect".
    #[default]
    NotConnected,
    Connected,
    /// The provider refused the grant (`invalid_grant`: revoked, expired unused, password
    /// changed): polling stops until an admin connects again.
    NeedsReconnecting,
}
text_enum!(OAuthState, "OAuth2 connection state", {
    NotConnected => "not-connected",
    Connected => "connected",
    NeedsReconnecting => "needs-reconnecting",
});

/// Everything an admin sets for a mailbox's OAuth2 connection, except the client secret.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OAuthSettings {
    pub provider: OAuthProvider,
    /// Microsoft: the tenant id or domain, or `organizations`.
    pub tenant: Option<String>,
    /// Generic: the issuer whose `/.well-known/openid-configuration` named the endpoints.
    pub issuer: Option<String>,
    /// The endpoints as resolved when the settings were saved.
    pub authorize_url: Option<String>,
    pub token_url: String,
    pub device_url: Option<String>,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub flow: OAuthFlow,
}

impl OAuthSettings {
    /// The scopes as OAuth2 sends them: one string, space-separated.
    pub fn scope(&self) -> String {
        self.scopes.join(" ")
    }
}

/// A connection's tokens, opened.
#[derive(Debug, Clone)]
pub struct OAuthTokens {
    pub access_token: SecretString,
    /// When the access token expires (ms since the epoch).
    pub expires_at: i64,
    /// None for client credentials, and for providers that issue no refresh token.
    pub refresh_token: Option<SecretString>,
}

/// A connection's state and tokens as stored.
#[derive(Debug, Clone)]
pub struct OAuthConnection {
    pub state: OAuthState,
    pub tokens: Option<OAuthTokens>,
    pub connected_at: Option<i64>,
    pub refreshed_at: Option<i64>,
}

/// An authorization-code flow under way, as the callback finds it.
#[derive(Debug, Clone)]
pub struct PendingAuthorization {
    pub mailbox_id: i64,
    pub session_hash: String,
    pub verifier: SecretString,
    pub redirect_uri: String,
    pub expires_at: i64,
}

/// Reads the OAuth2 settings from a mailbox row; `None` for a mailbox that signs in
/// with a password.
pub(crate) fn oauth_from_row(row: &sqlx::any::AnyRow) -> Result<Option<OAuthSettings>, StoreError> {
    let Some(provider) = column::<Option<String>>(row, "oauth_provider")? else {
        return Ok(None);
    };
    let flow = column::<Option<String>>(row, "oauth_flow")?;
    Ok(Some(OAuthSettings {
        provider: OAuthProvider::from_stored(&provider)?,
        tenant: column(row, "oauth_tenant")?,
        issuer: column(row, "oauth_issuer")?,
        authorize_url: column(row, "oauth_authorize_url")?,
        token_url: column::<Option<String>>(row, "oauth_token_url")?.unwrap_or_default(),
        device_url: column(row, "oauth_device_url")?,
        client_id: column::<Option<String>>(row, "oauth_client_id")?.unwrap_or_default(),
        scopes: column::<Option<String>>(row, "oauth_scopes")?
            .unwrap_or_default()
            .split_ascii_whitespace()
            .map(str::to_string)
            .collect(),
        flow: flow
            .as_deref()
            .map(OAuthFlow::from_stored)
            .transpose()?
            .unwrap_or_default(),
    }))
}

/// The connection state column of a mailbox row (None for a password mailbox).
pub(crate) fn oauth_state_from_row(
    row: &sqlx::any::AnyRow,
) -> Result<Option<OAuthState>, StoreError> {
    column::<Option<String>>(row, "oauth_state")?
        .as_deref()
        .map(OAuthState::from_stored)
        .transpose()
}

/// What to do with the stored client secret when OAuth2 settings are saved.
#[derive(Debug, Clone, Copy)]
pub enum ClientSecretChange<'a> {
    Keep,
    Set(&'a SecretString),
    /// A public client (PKCE or device flow without a secret), or OAuth2 turned off.
    Clear,
}

/// Drops a connection's tokens and refresh claim; `$1` is the state it takes (NULL when
/// the mailbox no longer uses OAuth2), `$2` the mailbox.
const FORGET_TOKENS: &str = "UPDATE mailboxes SET oauth_state = $1, oauth_access_token = NULL, \
     oauth_expires_at = NULL, oauth_refresh_token = NULL, oauth_refreshing_by = NULL, \
     oauth_refreshing_until = NULL WHERE id = $2";

impl Store {
    /// Saves (or, with None, removes) a mailbox's OAuth2 settings. `reconnect` drops the
    /// tokens, so the mailbox must be connected again: the settings changed where tokens
    /// come from or where they go.
    pub async fn set_oauth_settings(
        &self,
        mailbox_id: i64,
        settings: Option<&OAuthSettings>,
        client_secret: ClientSecretChange<'_>,
        reconnect: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        let s = settings;
        // One transaction: settings, secret and tokens change together, so a crash never
        // leaves new endpoints with tokens meant for the old ones.
        let action = "save the OAuth2 settings";
        let mut tx = self.pool().begin().await.map_err(StoreError::db(action))?;
        let done = sqlx::query(
            "UPDATE mailboxes SET oauth_provider = $1, oauth_tenant = $2, oauth_issuer = $3, \
             oauth_authorize_url = $4, oauth_token_url = $5, oauth_device_url = $6, \
             oauth_client_id = $7, oauth_scopes = $8, oauth_flow = $9, updated_at = $10 \
             WHERE id = $11",
        )
        .bind(s.map(|s| s.provider.as_str()))
        .bind(s.and_then(|s| s.tenant.clone()))
        .bind(s.and_then(|s| s.issuer.clone()))
        .bind(s.and_then(|s| s.authorize_url.clone()))
        .bind(s.map(|s| s.token_url.clone()))
        .bind(s.and_then(|s| s.device_url.clone()))
        .bind(s.map(|s| s.client_id.clone()))
        .bind(s.map(OAuthSettings::scope))
        .bind(s.map(|s| s.flow.as_str()))
        .bind(now)
        .bind(mailbox_id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("save the OAuth2 settings"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::MailboxNotFound(mailbox_id));
        }
        let sealed = match client_secret {
            ClientSecretChange::Keep => None,
            ClientSecretChange::Set(secret) => Some(Some(
                self.secret_box()
                    .seal(OAUTH_CLIENT_SECRET.slot(mailbox_id), secret.expose_secret()),
            )),
            ClientSecretChange::Clear => Some(None),
        };
        if let Some(sealed) = sealed {
            sqlx::query("UPDATE mailboxes SET oauth_client_secret = $1 WHERE id = $2")
                .bind(sealed)
                .bind(mailbox_id)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("save the OAuth2 client secret"))?;
        }
        let forget = match (settings, reconnect) {
            (None, _) => Some(None),
            (Some(_), true) => Some(Some(OAuthState::NotConnected)),
            (Some(_), false) => None,
        };
        if let Some(state) = forget {
            sqlx::query(FORGET_TOKENS)
                .bind(state.map(OAuthState::as_str))
                .bind(mailbox_id)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("forget the OAuth2 tokens"))?;
        } else {
            // A new connection starts unconnected; an existing one keeps its state.
            sqlx::query(
                "UPDATE mailboxes SET oauth_state = $1 WHERE id = $2 AND oauth_state IS NULL",
            )
            .bind(OAuthState::NotConnected.as_str())
            .bind(mailbox_id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("save the OAuth2 connection state"))?;
        }
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(())
    }

    /// The client secret, when the client has one.
    pub async fn oauth_client_secret(
        &self,
        mailbox_id: i64,
    ) -> Result<Option<SecretString>, StoreError> {
        let row = sqlx::query("SELECT oauth_client_secret FROM mailboxes WHERE id = $1")
            .bind(mailbox_id)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("read the OAuth2 client secret"))?
            .ok_or(StoreError::MailboxNotFound(mailbox_id))?;
        column::<Option<Vec<u8>>>(&row, "oauth_client_secret")?
            .map(|sealed| {
                self.secret_box()
                    .open(OAUTH_CLIENT_SECRET.slot(mailbox_id), &sealed)
            })
            .transpose()
    }

    /// The connection's state and tokens.
    pub async fn oauth_connection(&self, mailbox_id: i64) -> Result<OAuthConnection, StoreError> {
        let row = sqlx::query(
            "SELECT oauth_state, oauth_access_token, oauth_expires_at, oauth_refresh_token, \
             oauth_connected_at, oauth_refreshed_at FROM mailboxes WHERE id = $1",
        )
        .bind(mailbox_id)
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("read the OAuth2 tokens"))?
        .ok_or(StoreError::MailboxNotFound(mailbox_id))?;
        let state = oauth_state_from_row(&row)?.unwrap_or_default();
        let access = column::<Option<Vec<u8>>>(&row, "oauth_access_token")?;
        let tokens = match access {
            None => None,
            Some(sealed) => Some(OAuthTokens {
                access_token: self
                    .secret_box()
                    .open(OAUTH_ACCESS_TOKEN.slot(mailbox_id), &sealed)?,
                expires_at: column::<Option<i64>>(&row, "oauth_expires_at")?.unwrap_or(0),
                refresh_token: column::<Option<Vec<u8>>>(&row, "oauth_refresh_token")?
                    .map(|sealed| {
                        self.secret_box()
                            .open(OAUTH_REFRESH_TOKEN.slot(mailbox_id), &sealed)
                    })
                    .transpose()?,
            }),
        };
        Ok(OAuthConnection {
            state,
            tokens,
            connected_at: column(&row, "oauth_connected_at")?,
            refreshed_at: column(&row, "oauth_refreshed_at")?,
        })
    }

    /// Stores the tokens of a new connection (any flow) and marks it connected; clears
    /// what the mailbox needed from the admin, so the scheduler polls it again.
    pub async fn connect_oauth(
        &self,
        mailbox_id: i64,
        tokens: &OAuthTokens,
        now: i64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE mailboxes SET oauth_state = $1, oauth_access_token = $2, \
             oauth_expires_at = $3, oauth_refresh_token = $4, oauth_connected_at = $5, \
             oauth_refreshed_at = $5, needs_attention = NULL, updated_at = $5, \
             oauth_refreshing_by = NULL, oauth_refreshing_until = NULL WHERE id = $6",
        )
        .bind(OAuthState::Connected.as_str())
        .bind(self.secret_box().seal(
            OAUTH_ACCESS_TOKEN.slot(mailbox_id),
            tokens.access_token.expose_secret(),
        ))
        .bind(tokens.expires_at)
        .bind(tokens.refresh_token.as_ref().map(|t| {
            self.secret_box()
                .seal(OAUTH_REFRESH_TOKEN.slot(mailbox_id), t.expose_secret())
        }))
        .bind(now)
        .bind(mailbox_id)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("save the OAuth2 tokens"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::MailboxNotFound(mailbox_id));
        }
        Ok(())
    }

    /// Claims the right to refresh the mailbox's tokens until `until`: true when the
    /// caller holds it (it was free, expired, or already the caller's).
    pub async fn claim_token_refresh(
        &self,
        mailbox_id: i64,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE mailboxes SET oauth_refreshing_by = $1, oauth_refreshing_until = $2 \
             WHERE id = $3 AND (oauth_refreshing_until IS NULL OR oauth_refreshing_until <= $4 \
             OR oauth_refreshing_by = $1)",
        )
        .bind(holder)
        .bind(until)
        .bind(mailbox_id)
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("claim the OAuth2 token refresh"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Lets go of a refresh claim (nothing happens if another holds it now).
    pub async fn release_token_refresh(
        &self,
        mailbox_id: i64,
        holder: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE mailboxes SET oauth_refreshing_by = NULL, oauth_refreshing_until = NULL \
             WHERE id = $1 AND oauth_refreshing_by = $2",
        )
        .bind(mailbox_id)
        .bind(holder)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("release the OAuth2 token refresh"))?;
        Ok(())
    }

    /// Stores refreshed tokens and releases the refresh claim. A `refresh_token` of None
    /// keeps the stored one (the provider did not rotate it). The tokens are written even
    /// if the claim lapsed meanwhile: the provider has already rotated the refresh token,
    /// and the new one is the only one that still works. False: the caller no longer
    /// held the claim (worth a warning: another worker may have spent the old token).
    pub async fn store_refreshed_tokens(
        &self,
        mailbox_id: i64,
        holder: &str,
        tokens: &OAuthTokens,
        now: i64,
    ) -> Result<bool, StoreError> {
        let still_ours = sqlx::query("SELECT oauth_refreshing_by FROM mailboxes WHERE id = $1")
            .bind(mailbox_id)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("read the OAuth2 refresh claim"))?
            .map(|row| column::<Option<String>>(&row, "oauth_refreshing_by"))
            .transpose()?
            .flatten()
            .is_some_and(|by| by == holder);
        let access = self.secret_box().seal(
            OAUTH_ACCESS_TOKEN.slot(mailbox_id),
            tokens.access_token.expose_secret(),
        );
        let query = match &tokens.refresh_token {
            Some(refresh) => sqlx::query(
                "UPDATE mailboxes SET oauth_access_token = $1, oauth_expires_at = $2, \
                 oauth_refresh_token = $3, oauth_refreshed_at = $4, oauth_state = $5, \
                 oauth_refreshing_by = NULL, oauth_refreshing_until = NULL WHERE id = $6",
            )
            .bind(access)
            .bind(tokens.expires_at)
            .bind(self.secret_box().seal(
                OAUTH_REFRESH_TOKEN.slot(mailbox_id),
                refresh.expose_secret(),
            )),
            None => sqlx::query(
                "UPDATE mailboxes SET oauth_access_token = $1, oauth_expires_at = $2, \
                 oauth_refreshed_at = $3, oauth_state = $4, oauth_refreshing_by = NULL, \
                 oauth_refreshing_until = NULL WHERE id = $5",
            )
            .bind(access)
            .bind(tokens.expires_at),
        };
        let done = query
            .bind(now)
            .bind(OAuthState::Connected.as_str())
            .bind(mailbox_id)
            .execute(self.pool())
            .await
            .map_err(StoreError::db("save the refreshed OAuth2 tokens"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::MailboxNotFound(mailbox_id));
        }
        Ok(still_ours)
    }

    /// Drops the tokens. With a state, the connection takes it (`NeedsReconnecting` when
    /// the provider refused the grant, `NotConnected` when settings changed); with None
    /// the mailbox no longer uses OAuth2.
    pub async fn forget_oauth_tokens(
        &self,
        mailbox_id: i64,
        state: Option<OAuthState>,
    ) -> Result<(), StoreError> {
        sqlx::query(FORGET_TOKENS)
            .bind(state.map(OAuthState::as_str))
            .bind(mailbox_id)
            .execute(self.pool())
            .await
            .map_err(StoreError::db("forget the OAuth2 tokens"))?;
        Ok(())
    }

    /// Records an authorization-code flow under way.
    pub async fn begin_oauth_authorization(
        &self,
        state_hash: &str,
        pending: &PendingAuthorization,
        now: i64,
    ) -> Result<(), StoreError> {
        // Abandoned flows are cleared as new ones start: nothing else reads them.
        sqlx::query("DELETE FROM oauth_authorizations WHERE expires_at <= $1")
            .bind(now)
            .execute(self.pool())
            .await
            .map_err(StoreError::db("clear expired OAuth2 authorizations"))?;
        // The verifier is bound to its row, whose id exists only after the insert: both
        // in one transaction.
        let action = "record the OAuth2 authorization";
        let mut tx = self.pool().begin().await.map_err(StoreError::db(action))?;
        let row = sqlx::query(
            "INSERT INTO oauth_authorizations (state_hash, mailbox_id, session_hash, verifier, \
             redirect_uri, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             RETURNING id",
        )
        .bind(state_hash)
        .bind(pending.mailbox_id)
        .bind(&pending.session_hash)
        .bind(Vec::<u8>::new())
        .bind(&pending.redirect_uri)
        .bind(now)
        .bind(pending.expires_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::db(action))?;
        let id: i64 = column(&row, "id")?;
        sqlx::query("UPDATE oauth_authorizations SET verifier = $1 WHERE id = $2")
            .bind(
                self.secret_box()
                    .seal(OAUTH_VERIFIER.slot(id), pending.verifier.expose_secret()),
            )
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(())
    }

    /// Takes the authorization with this state hash: it is gone afterwards, whatever the
    /// caller decides, so a state works once.
    pub async fn take_oauth_authorization(
        &self,
        state_hash: &str,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM oauth_authorizations WHERE state_hash = $1 \
             RETURNING id, mailbox_id, session_hash, verifier, redirect_uri, expires_at",
        )
        .bind(state_hash)
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("take the OAuth2 authorization"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let sealed: Vec<u8> = column(&row, "verifier")?;
        let id: i64 = column(&row, "id")?;
        Ok(Some(PendingAuthorization {
            mailbox_id: column(&row, "mailbox_id")?,
            session_hash: column(&row, "session_hash")?,
            verifier: self.secret_box().open(OAUTH_VERIFIER.slot(id), &sealed)?,
            redirect_uri: column(&row, "redirect_uri")?,
            expires_at: column(&row, "expires_at")?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip() {
        for flow in [
            OAuthFlow::AuthorizationCode,
            OAuthFlow::DeviceCode,
            OAuthFlow::ClientCredentials,
        ] {
            assert_eq!(flow.as_str().parse::<OAuthFlow>().ok(), Some(flow));
        }
        assert_eq!(
            "needs-reconnecting".parse::<OAuthState>().ok(),
            Some(OAuthState::NeedsReconnecting)
        );
        assert!("azure".parse::<OAuthProvider>().is_err());
    }
}
