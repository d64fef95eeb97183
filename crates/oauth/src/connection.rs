//! A mailbox's connection: an access token whenever intake or outgoing mail needs one,
//! renewed before it expires and once more when a server refuses it; and the three ways
//! to connect.
//!
//! Renewal is claimed on the mailbox's row before the token endpoint is asked, so of two
//! workers (a fetch and a send, or two nodes) one spends the refresh token and the other
//! waits for the result. A provider that rotates refresh tokens revokes the whole grant
//! when a spent one comes back, so this is what keeps a mailbox connected for months.

use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use store::{
    Mailbox, OAuthConnection, OAuthFlow, OAuthSettings, OAuthState, PendingAuthorization, Store,
};

use crate::client::{ClientAuth, DeviceAuthorization, TokenClient};
use crate::error::{AccessError, ConnectError};
use crate::pkce;
use crate::provider::extra_authorize_params;
use crate::token::{DevicePoll, TokenError};

/// Renew when less than this remains of an access token's life...
const RENEW_BEFORE_MS: i64 = 5 * 60_000;
/// ... or less than this share of it (a token that lives 20 s is renewed 5 s early, not
/// on every use).
const RENEW_BEFORE_SHARE: i64 = 4;
/// How long a refresh claim lasts: far longer than one token request may take, so it
/// never lapses while its refresh is in flight.
const CLAIM_MS: i64 = 90_000;
/// How long a worker waits for another's refresh before giving up for this run.
const WAIT_FOR_OTHER: Duration = Duration::from_secs(45);
const WAIT_STEP: Duration = Duration::from_millis(200);
/// How long an authorization-code flow may take, from Connect to the callback.
pub const AUTHORIZATION_TTL_MS: i64 = 10 * 60_000;

/// `popdesk_oauth_token_refreshes_total{mailbox,outcome}`.
pub const TOKEN_REFRESHES_TOTAL: &str = "popdesk_oauth_token_refreshes_total";

/// The `# HELP` line of the OAuth2 metrics.
pub fn describe_metrics() {
    metrics::describe_counter!(
        TOKEN_REFRESHES_TOTAL,
        "OAuth2 access tokens renewed, by mailbox and outcome (ok, invalid_grant, invalid_client, refused, unavailable)"
    );
}

fn count_refresh(mailbox: &Mailbox, outcome: &'static str) {
    metrics::counter!(TOKEN_REFRESHES_TOTAL, "mailbox" => mailbox.settings.name.clone(), "outcome" => outcome)
        .increment(1);
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Hands out access tokens and connects mailboxes. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Connections {
    store: Store,
    http: TokenClient,
    /// Names this process in refresh claims.
    holder: String,
}

impl Connections {
    pub fn new(store: Store) -> Connections {
        let mut tag = [0u8; 8];
        // Without randomness two processes with one pid on two hosts could share a name;
        // the pid alone still tells this process's claims apart from its siblings'.
        let _ = getrandom::fill(&mut tag);
        Connections {
            store,
            http: TokenClient::new(),
            holder: format!("{}:{:016x}", std::process::id(), u64::from_le_bytes(tag)),
        }
    }

    /// The HTTP client, for discovery when settings are saved.
    pub fn http(&self) -> &TokenClient {
        &self.http
    }

    /// An access token for the mailbox, renewed first when it is about to expire. Pass
    /// the token a server just refused as `refused`: that one is renewed whatever its
    /// expiry (unless another worker already did).
    pub async fn access_token(
        &self,
        mailbox: &Mailbox,
        refused: Option<&SecretString>,
    ) -> Result<SecretString, AccessError> {
        let settings = mailbox
            .settings
            .oauth
            .as_ref()
            .ok_or(AccessError::NotConnected)?;
        let connection = self.store.oauth_connection(mailbox.id).await?;
        if let Some(token) = usable(&connection, refused, now_ms()) {
            return Ok(token);
        }
        ready_to_renew(&connection, settings)?;
        let waited_until = tokio::time::Instant::now() + WAIT_FOR_OTHER;
        loop {
            let now = now_ms();
            if self
                .store
                .claim_token_refresh(mailbox.id, &self.holder, now, now + CLAIM_MS)
                .await?
            {
                break;
            }
            if tokio::time::Instant::now() >= waited_until {
                return Err(AccessError::RefreshBusy);
            }
            tokio::time::sleep(WAIT_STEP).await;
            // The other worker may be done: its token serves this one too.
            let connection = self.store.oauth_connection(mailbox.id).await?;
            if let Some(token) = usable(&connection, refused, now_ms()) {
                return Ok(token);
            }
            ready_to_renew(&connection, settings)?;
        }
        let result = self.renew_claimed(mailbox, settings, refused).await;
        if result.is_err() {
            // On success the write released the claim.
            if let Err(error) = self
                .store
                .release_token_refresh(mailbox.id, &self.holder)
                .await
            {
                tracing::warn!(mailbox = %mailbox.settings.name, %error, "could not release the OAuth2 refresh claim; it lapses by itself");
            }
        }
        result
    }

    async fn renew_claimed(
        &self,
        mailbox: &Mailbox,
        settings: &OAuthSettings,
        refused: Option<&SecretString>,
    ) -> Result<SecretString, AccessError> {
        // Read again under the claim: a worker that held it before may have just renewed.
        let connection = self.store.oauth_connection(mailbox.id).await?;
        let now = now_ms();
        if let Some(token) = usable(&connection, refused, now) {
            self.store
                .release_token_refresh(mailbox.id, &self.holder)
                .await?;
            return Ok(token);
        }
        ready_to_renew(&connection, settings)?;
        let client = self.client_auth(mailbox, settings).await?;
        let scope = settings.scope();
        let grant = match settings.flow {
            OAuthFlow::ClientCredentials => {
                self.http
                    .client_credentials(&settings.token_url, &client, &scope)
                    .await
            }
            OAuthFlow::AuthorizationCode | OAuthFlow::DeviceCode => {
                let Some(refresh) = connection.tokens.and_then(|t| t.refresh_token) else {
                    // Nothing to renew with: the provider gave no refresh token (Google
                    // without offline access). Only connecting again helps.
                    return Err(self
                        .needs_reconnecting(
                            mailbox,
                            "the provider gave no refresh token, so the expired access token cannot be renewed",
                        )
                        .await);
                };
                let named = (settings.provider == store::OAuthProvider::Microsoft)
                    .then_some(scope.as_str());
                self.http
                    .refresh(&settings.token_url, &client, &refresh, named)
                    .await
            }
        };
        match grant {
            Ok(grant) => {
                let tokens = grant.into_tokens(now_ms());
                let access = tokens.access_token.clone();
                if connection.state == OAuthState::Connected {
                    let kept = self
                        .store
                        .store_refreshed_tokens(mailbox.id, &self.holder, &tokens, now_ms())
                        .await?;
                    if !kept {
                        tracing::warn!(mailbox = %mailbox.settings.name, "the OAuth2 refresh claim lapsed during a renewal; the new tokens are stored");
                    }
                } else {
                    // Client credentials need no Connect: the first token connects.
                    self.store
                        .connect_oauth(mailbox.id, &tokens, now_ms())
                        .await?;
                }
                count_refresh(mailbox, "ok");
                tracing::debug!(mailbox = %mailbox.settings.name, "OAuth2 access token renewed");
                Ok(access)
            }
            Err(TokenError::GrantRefused { description })
                if settings.flow != OAuthFlow::ClientCredentials =>
            {
                count_refresh(mailbox, "invalid_grant");
                let why = format!(
                    "the provider refused the refresh token (invalid_grant{})",
                    description.map(|d| format!(": {d}")).unwrap_or_default()
                );
                Err(self.needs_reconnecting(mailbox, &why).await)
            }
            Err(error) => {
                count_refresh(mailbox, error.outcome());
                tracing::info!(mailbox = %mailbox.settings.name, %error, "OAuth2 access token not renewed");
                Err(AccessError::Token(error))
            }
        }
    }

    /// Puts the mailbox in "needs reconnecting": tokens dropped, polling stopped (the
    /// reason is its "needs attention"), said once in the log.
    async fn needs_reconnecting(&self, mailbox: &Mailbox, why: &str) -> AccessError {
        let result = async {
            self.store
                .forget_oauth_tokens(mailbox.id, Some(OAuthState::NeedsReconnecting))
                .await?;
            self.store
                .set_attention(
                    mailbox.id,
                    Some(&format!("{}: {why}", AccessError::NeedsReconnecting)),
                    now_ms(),
                )
                .await
        }
        .await;
        match result {
            Ok(()) => {
                tracing::warn!(mailbox = %mailbox.settings.name, reason = why, "OAuth2 connection needs reconnecting; polling stops until an admin reconnects it");
                AccessError::NeedsReconnecting
            }
            Err(error) => AccessError::Store(error),
        }
    }

    async fn client_auth(
        &self,
        mailbox: &Mailbox,
        settings: &OAuthSettings,
    ) -> Result<ClientAuth, store::StoreError> {
        Ok(ClientAuth {
            client_id: settings.client_id.clone(),
            client_secret: self.store.oauth_client_secret(mailbox.id).await?,
        })
    }

    /// Starts an authorization-code flow: the URL to send the admin's browser to. The
    /// `state` is bound to the admin's session (`session_key`, kept only as a hash) and
    /// works once, for [`AUTHORIZATION_TTL_MS`].
    pub async fn begin_authorization(
        &self,
        mailbox: &Mailbox,
        session_key: &str,
        public_url: Option<&str>,
    ) -> Result<String, ConnectError> {
        let settings = oauth_settings(mailbox)?;
        let authorize = settings
            .authorize_url
            .as_deref()
            .ok_or(ConnectError::NoAuthorizeEndpoint)?;
        let public_url = public_url
            .map(|u| u.trim_end_matches('/'))
            .filter(|u| !u.is_empty())
            .ok_or(ConnectError::NoPublicUrl)?;
        let redirect_uri = format!("{public_url}/oauth/callback");
        let state = pkce::random_token()?;
        let verifier = pkce::random_token()?;
        let challenge = pkce::challenge(&verifier);
        let now = now_ms();
        self.store
            .begin_oauth_authorization(
                &pkce::hash(state.expose_secret()),
                &PendingAuthorization {
                    mailbox_id: mailbox.id,
                    session_hash: pkce::hash(session_key),
                    verifier,
                    redirect_uri: redirect_uri.clone(),
                    expires_at: now + AUTHORIZATION_TTL_MS,
                },
                now,
            )
            .await?;
        let mut url = url::Url::parse(authorize).map_err(|e| {
            ConnectError::Discovery(format!(
                "the authorization endpoint {authorize:?} is not a URL: {e}"
            ))
        })?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &settings.client_id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("scope", &settings.scope())
                .append_pair("state", state.expose_secret())
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if !mailbox.settings.username.is_empty()
                && settings.provider != store::OAuthProvider::Generic
            {
                // Saves the admin picking the account at Microsoft and Google.
                query.append_pair("login_hint", &mailbox.settings.username);
            }
            for (name, value) in extra_authorize_params(settings.provider) {
                query.append_pair(name, value);
            }
        }
        Ok(url.into())
    }

    /// Finishes an authorization-code flow from the provider's redirect. The state is
    /// taken first, so whatever happens next it never works again.
    pub async fn finish_authorization(
        &self,
        state: &str,
        code: Option<&str>,
        provider_error: Option<(&str, Option<&str>)>,
        session_key: &str,
    ) -> Result<Mailbox, ConnectError> {
        let pending = self
            .store
            .take_oauth_authorization(&pkce::hash(state))
            .await?
            .ok_or(ConnectError::UnknownState)?;
        if pending.session_hash != pkce::hash(session_key) {
            return Err(ConnectError::ForeignSession);
        }
        if pending.expires_at <= now_ms() {
            return Err(ConnectError::ExpiredState);
        }
        if let Some((code, description)) = provider_error {
            return Err(ConnectError::Denied {
                code: clean(code),
                description: description.map(clean),
            });
        }
        let code = code.filter(|c| !c.is_empty()).ok_or(ConnectError::Denied {
            code: "no code".into(),
            description: None,
        })?;
        let mailbox = self
            .store
            .mailbox_by_id(pending.mailbox_id)
            .await?
            .ok_or(ConnectError::UnknownState)?;
        let settings = oauth_settings(&mailbox)?;
        let client = self.client_auth(&mailbox, settings).await?;
        let grant = self
            .http
            .exchange_code(
                &settings.token_url,
                &client,
                code,
                &pending.redirect_uri,
                &pending.verifier,
            )
            .await?;
        self.store
            .connect_oauth(mailbox.id, &grant.into_tokens(now_ms()), now_ms())
            .await?;
        tracing::info!(mailbox = %mailbox.settings.name, "OAuth2 connection made (authorization code)");
        self.reread(mailbox.id).await
    }

    /// Starts the device flow: the code the admin approves at the provider.
    pub async fn start_device(
        &self,
        mailbox: &Mailbox,
    ) -> Result<DeviceAuthorization, ConnectError> {
        let settings = oauth_settings(mailbox)?;
        let device = settings
            .device_url
            .as_deref()
            .ok_or(ConnectError::NoDeviceEndpoint)?;
        let client = self.client_auth(mailbox, settings).await?;
        Ok(self
            .http
            .start_device(device, &client, &settings.scope())
            .await?)
    }

    /// Waits until the admin approves the device code (or it expires), then stores the
    /// tokens.
    pub async fn finish_device(
        &self,
        mailbox: &Mailbox,
        device: &DeviceAuthorization,
    ) -> Result<Mailbox, ConnectError> {
        let settings = oauth_settings(mailbox)?;
        let client = self.client_auth(mailbox, settings).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(device.expires_in_secs);
        let mut interval = Duration::from_secs(device.interval_secs);
        loop {
            tokio::time::sleep(interval).await;
            if tokio::time::Instant::now() >= deadline {
                return Err(ConnectError::DeviceExpired);
            }
            match self
                .http
                .poll_device(&settings.token_url, &client, &device.device_code)
                .await
            {
                Ok(DevicePoll::Pending) => {}
                Ok(DevicePoll::SlowDown) => interval += Duration::from_secs(5),
                Ok(DevicePoll::Granted(grant)) => {
                    self.store
                        .connect_oauth(mailbox.id, &grant.into_tokens(now_ms()), now_ms())
                        .await?;
                    tracing::info!(mailbox = %mailbox.settings.name, "OAuth2 connection made (device code)");
                    return self.reread(mailbox.id).await;
                }
                Err(TokenError::Refused { code, .. }) if code == "expired_token" => {
                    return Err(ConnectError::DeviceExpired);
                }
                // An outage while waiting: keep polling until the code expires.
                Err(error) if error.is_transient() => {
                    tracing::info!(mailbox = %mailbox.settings.name, %error, "device-code poll failed; polling on");
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Connects an app-only (client credentials) mailbox now: its first token.
    pub async fn connect_app(&self, mailbox: &Mailbox) -> Result<Mailbox, ConnectError> {
        let settings = oauth_settings(mailbox)?;
        let client = self.client_auth(mailbox, settings).await?;
        let grant = self
            .http
            .client_credentials(&settings.token_url, &client, &settings.scope())
            .await?;
        self.store
            .connect_oauth(mailbox.id, &grant.into_tokens(now_ms()), now_ms())
            .await?;
        tracing::info!(mailbox = %mailbox.settings.name, "OAuth2 connection made (client credentials)");
        self.reread(mailbox.id).await
    }

    async fn reread(&self, id: i64) -> Result<Mailbox, ConnectError> {
        Ok(self
            .store
            .mailbox_by_id(id)
            .await?
            .ok_or(store::StoreError::MailboxNotFound(id))?)
    }
}

/// The mailbox's OAuth2 settings, for connecting it.
fn oauth_settings(mailbox: &Mailbox) -> Result<&OAuthSettings, ConnectError> {
    mailbox
        .settings
        .oauth
        .as_ref()
        .ok_or(ConnectError::NotOAuth)
}

/// The stored access token, when it can be used as it is.
fn usable(
    connection: &OAuthConnection,
    refused: Option<&SecretString>,
    now: i64,
) -> Option<SecretString> {
    if connection.state != OAuthState::Connected {
        return None;
    }
    let tokens = connection.tokens.as_ref()?;
    if refused.is_some_and(|r| r.expose_secret() == tokens.access_token.expose_secret()) {
        return None;
    }
    let issued = connection
        .refreshed_at
        .or(connection.connected_at)
        .unwrap_or(tokens.expires_at);
    let lifetime = (tokens.expires_at - issued).max(0);
    let early = RENEW_BEFORE_MS.min(lifetime / RENEW_BEFORE_SHARE);
    (tokens.expires_at - early > now).then(|| tokens.access_token.clone())
}

/// Whether the connection can be renewed without an admin.
fn ready_to_renew(
    connection: &OAuthConnection,
    settings: &OAuthSettings,
) -> Result<(), AccessError> {
    match connection.state {
        OAuthState::NeedsReconnecting => Err(AccessError::NeedsReconnecting),
        OAuthState::NotConnected if settings.flow != OAuthFlow::ClientCredentials => {
            Err(AccessError::NotConnected)
        }
        _ => Ok(()),
    }
}

/// Provider text from a redirect, made safe to show.
fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}

#[cfg(test)]
mod tests {
    use store::OAuthTokens;

    use super::*;

    fn connected(expires_at: i64, issued: i64) -> OAuthConnection {
        OAuthConnection {
            state: OAuthState::Connected,
            tokens: Some(OAuthTokens {
                access_token: SecretString::from("at"),
                expires_at,
                refresh_token: None,
            }),
            connected_at: Some(issued),
            refreshed_at: None,
        }
    }

    #[test]
    fn a_token_is_renewed_a_quarter_of_its_life_early_at_most_five_minutes() {
        // 20 s token issued at 0: renewed from 15 s on.
        let c = connected(20_000, 0);
        assert!(usable(&c, None, 14_000).is_some());
        assert!(usable(&c, None, 15_001).is_none());
        // One-hour token: renewed five minutes before it expires.
        let c = connected(3_600_000, 0);
        assert!(usable(&c, None, 3_290_000).is_some());
        assert!(usable(&c, None, 3_300_001).is_none());
    }

    #[test]
    fn a_refused_token_is_renewed_whatever_its_expiry() {
        let c = connected(3_600_000, 0);
        assert!(usable(&c, Some(&SecretString::from("at")), 1).is_none());
        assert!(usable(&c, Some(&SecretString::from("other")), 1).is_some());
    }
}
