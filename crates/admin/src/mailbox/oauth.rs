//! A mailbox's OAuth2 connection as the admin sets it: the rules its settings meet, the
//! endpoints resolved once when they are saved, and the rule for where tokens and the
//! client secret may go.

use secrecy::SecretString;
use store::{MailboxSettings, OAuthFlow, OAuthProvider, OAuthSettings};

use super::{MailboxChange, choice, optional_text};
use crate::error::{AdminError, Field};

impl crate::Administration {
    /// "Connect" (authorization code with PKCE): the provider's URL to send the admin's
    /// browser to. `session_key` binds the flow to the admin's session; `public_url` is
    /// where the provider sends the browser back (`{public_url}/oauth/callback`).
    pub async fn begin_oauth_connect(
        &self,
        id: i64,
        session_key: &str,
        public_url: Option<&str>,
    ) -> Result<String, AdminError> {
        let mailbox = self.mailbox(id).await?;
        let url = self
            .oauth
            .begin_authorization(&mailbox, session_key, public_url)
            .await?;
        tracing::info!(mailbox = %mailbox.settings.name, id, "OAuth2 authorization started");
        Ok(url)
    }

    /// The provider's redirect back: the tokens are stored and polling resumes. The
    /// error is the flow's own (unknown, replayed, expired or foreign state; the provider
    /// said no; the code was refused), for a page that says why.
    pub async fn finish_oauth_connect(
        &self,
        state: &str,
        code: Option<&str>,
        provider_error: Option<(&str, Option<&str>)>,
        session_key: &str,
    ) -> Result<store::Mailbox, oauth::ConnectError> {
        let result = self
            .oauth
            .finish_authorization(state, code, provider_error, session_key)
            .await;
        match &result {
            Ok(_) => self.reload(),
            Err(error) => tracing::info!(%error, "OAuth2 callback refused"),
        }
        result
    }

    /// The device flow's first step: the code the admin approves at the provider.
    pub async fn start_device_connect(
        &self,
        id: i64,
    ) -> Result<(store::Mailbox, oauth::DeviceAuthorization), AdminError> {
        let mailbox = self.mailbox(id).await?;
        let device = self.oauth.start_device(&mailbox).await?;
        Ok((mailbox, device))
    }

    /// Waits for the approval, stores the tokens; polling resumes.
    pub async fn finish_device_connect(
        &self,
        mailbox: &store::Mailbox,
        device: &oauth::DeviceAuthorization,
    ) -> Result<store::Mailbox, AdminError> {
        let mailbox = self.oauth.finish_device(mailbox, device).await?;
        self.reload();
        Ok(mailbox)
    }

    /// Client credentials: the first app-only token, now (fetching would get one too;
    /// this proves the client id and secret at once).
    pub async fn connect_app(&self, id: i64) -> Result<store::Mailbox, AdminError> {
        let mailbox = self.mailbox(id).await?;
        let mailbox = self.oauth.connect_app(&mailbox).await?;
        self.reload();
        Ok(mailbox)
    }
}

/// A client id, in characters (Microsoft's are GUIDs, Google's about 75).
pub const MAX_CLIENT_ID_CHARS: usize = 255;
/// A URL, in characters.
pub const MAX_URL_CHARS: usize = 2048;
/// The scopes, together.
pub const MAX_SCOPE_CHARS: usize = 2048;

impl MailboxChange {
    /// Whether this change touches the OAuth2 settings at all.
    fn touches_oauth(&self) -> bool {
        self.oauth_provider.is_some()
            || self.oauth_tenant.is_some()
            || self.oauth_issuer.is_some()
            || self.oauth_authorize_url.is_some()
            || self.oauth_token_url.is_some()
            || self.oauth_device_url.is_some()
            || self.oauth_client_id.is_some()
            || self.oauth_scopes.is_some()
            || self.oauth_flow.is_some()
    }

    /// The OAuth2 settings after this change, given the rest of the mailbox's settings
    /// (already changed). A generic provider named by its issuer alone comes back with
    /// an empty token URL: [`discover`] fills it in.
    pub(super) fn apply_oauth(
        &self,
        s: &MailboxSettings,
    ) -> Result<Option<OAuthSettings>, AdminError> {
        let provider = match &self.oauth_provider {
            Some(text) => match optional_text(text.clone()) {
                None => return Ok(None),
                Some(text) => Some(choice::<OAuthProvider>(
                    Field::OAuthProvider,
                    &text,
                    "microsoft, google, generic",
                )?),
            },
            None => s.oauth.as_ref().map(|o| o.provider),
        };
        let Some(provider) = provider else {
            if self.touches_oauth() {
                return Err(AdminError::invalid(
                    Field::OAuthProvider,
                    "is needed for OAuth2: microsoft, google or generic",
                ));
            }
            return Ok(None);
        };
        let before = s.oauth.clone().filter(|o| o.provider == provider);
        let mut o = before.clone().unwrap_or(OAuthSettings {
            provider,
            ..OAuthSettings::default()
        });
        if let Some(tenant) = &self.oauth_tenant {
            o.tenant = optional_text(tenant.clone());
        }
        if let Some(issuer) = &self.oauth_issuer {
            o.issuer = optional_text(issuer.clone()).map(|i| i.trim_end_matches('/').to_string());
        }
        if let Some(flow) = &self.oauth_flow {
            o.flow = choice(
                Field::OAuthFlow,
                flow,
                "authorization-code, device-code, client-credentials",
            )?;
        }
        if let Some(id) = &self.oauth_client_id {
            o.client_id = id.trim().to_string();
        }
        match oauth::preset_endpoints(provider, o.tenant.as_deref()) {
            Some(endpoints) => {
                for (given, field) in [
                    (&self.oauth_issuer, Field::OAuthIssuer),
                    (&self.oauth_authorize_url, Field::OAuthAuthorizeUrl),
                    (&self.oauth_token_url, Field::OAuthTokenUrl),
                    (&self.oauth_device_url, Field::OAuthDeviceUrl),
                ] {
                    if given
                        .as_ref()
                        .is_some_and(|g| optional_text(g.clone()).is_some())
                    {
                        return Err(AdminError::invalid(
                            field,
                            format!(
                                "applies only to the generic provider; {provider}'s endpoints are built in"
                            ),
                        ));
                    }
                }
                o.issuer = None;
                o.authorize_url = endpoints.authorize;
                o.token_url = endpoints.token;
                o.device_url = endpoints.device;
            }
            None => {
                if let Some(url) = &self.oauth_authorize_url {
                    o.authorize_url = optional_text(url.clone());
                }
                if let Some(url) = &self.oauth_token_url {
                    o.token_url = optional_text(url.clone()).unwrap_or_default();
                }
                if let Some(url) = &self.oauth_device_url {
                    o.device_url = optional_text(url.clone());
                }
                // A new issuer's endpoints come from its discovery document, unless the
                // admin names them in the same change.
                let issuer_changed = self.oauth_issuer.is_some()
                    && before.as_ref().and_then(|b| b.issuer.clone()) != o.issuer;
                if issuer_changed && self.oauth_token_url.is_none() {
                    o.token_url = String::new();
                    if self.oauth_authorize_url.is_none() {
                        o.authorize_url = None;
                    }
                    if self.oauth_device_url.is_none() {
                        o.device_url = None;
                    }
                }
                if o.token_url.is_empty() && o.issuer.is_none() {
                    return Err(AdminError::invalid(
                        Field::OAuthTokenUrl,
                        "is needed for a generic provider, unless its issuer is given (its discovery document names the endpoints)",
                    ));
                }
            }
        }
        match &self.oauth_scopes {
            Some(scopes) => {
                o.scopes = scopes
                    .iter()
                    .flat_map(|s| s.split_ascii_whitespace())
                    .map(str::to_string)
                    .collect();
            }
            None if before.is_none() || self.oauth_flow.is_some() => {
                o.scopes = Vec::new();
            }
            None => {}
        }
        if o.scopes.is_empty() {
            o.scopes = oauth::default_scopes(provider, o.flow, s.sending.is_some());
        }
        Ok(Some(o))
    }
}

/// The rules an OAuth2 connection's settings meet (the endpoints as far as they are
/// known before discovery).
pub(super) fn check(s: &MailboxSettings, o: &OAuthSettings) -> Result<(), AdminError> {
    if !s.auth_method.uses_token() {
        return Err(AdminError::invalid(
            Field::AuthMethod,
            "must be xoauth2 or oauthbearer for a mailbox that signs in with OAuth2",
        ));
    }
    if o.client_id.is_empty()
        || o.client_id.chars().count() > MAX_CLIENT_ID_CHARS
        || o.client_id
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(AdminError::invalid(
            Field::OAuthClientId,
            format!(
                "must be the app's client id: 1 to {MAX_CLIENT_ID_CHARS} characters without spaces"
            ),
        ));
    }
    if let Some(tenant) = &o.tenant
        && (tenant.len() > 255
            || !tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'))
    {
        return Err(AdminError::invalid(
            Field::OAuthTenant,
            "must be a tenant id, a domain such as contoso.onmicrosoft.com, or organizations",
        ));
    }
    if let Some(issuer) = &o.issuer {
        endpoint(Field::OAuthIssuer, issuer)?;
    }
    if !o.token_url.is_empty() {
        endpoint(Field::OAuthTokenUrl, &o.token_url)?;
    }
    if let Some(url) = &o.authorize_url {
        endpoint(Field::OAuthAuthorizeUrl, url)?;
    }
    if let Some(url) = &o.device_url {
        endpoint(Field::OAuthDeviceUrl, url)?;
    }
    let scope = o.scope();
    if scope.is_empty() {
        return Err(AdminError::invalid(
            Field::OAuthScopes,
            "are needed for a generic provider: the scopes its mail servers want",
        ));
    }
    if scope.len() > MAX_SCOPE_CHARS
        || scope
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Err(AdminError::invalid(
            Field::OAuthScopes,
            format!("must be scope names, up to {MAX_SCOPE_CHARS} characters in all"),
        ));
    }
    Ok(())
}

/// The checks that need the endpoints discovered: each flow needs its endpoint.
pub(super) fn check_flow(o: &OAuthSettings) -> Result<(), AdminError> {
    match o.flow {
        OAuthFlow::AuthorizationCode if o.authorize_url.is_none() => Err(AdminError::invalid(
            Field::OAuthAuthorizeUrl,
            "is needed for the authorization-code flow",
        )),
        OAuthFlow::DeviceCode if o.device_url.is_none() => Err(AdminError::invalid(
            Field::OAuthDeviceUrl,
            "is needed for the device-code flow (the provider publishes none)",
        )),
        _ => Ok(()),
    }
}

/// An endpoint URL: HTTPS, or plain HTTP only to this machine (a provider on loopback, as
/// in tests). Tokens and the client secret never cross a network in the clear.
fn endpoint(field: Field, text: &str) -> Result<(), AdminError> {
    if text.len() > MAX_URL_CHARS {
        return Err(AdminError::invalid(
            field,
            format!("must be at most {MAX_URL_CHARS} characters"),
        ));
    }
    let url = url::Url::parse(text).map_err(|_| {
        AdminError::invalid(
            field,
            "must be a URL such as https://login.example.com/token",
        )
    })?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(AdminError::invalid(
            field,
            "must be an https:// URL (plain http only to this machine)",
        )),
    }
}

/// Fills in what a generic provider's issuer publishes, for endpoints not given.
pub(super) async fn discover(
    http: &oauth::TokenClient,
    o: &mut OAuthSettings,
) -> Result<(), AdminError> {
    let Some(issuer) = o.issuer.clone() else {
        return Ok(());
    };
    if !o.token_url.is_empty() {
        return Ok(());
    }
    let found = http
        .discover(&issuer)
        .await
        .map_err(|e| AdminError::invalid(Field::OAuthIssuer, format!("could not be used: {e}")))?;
    o.token_url = found.token;
    if o.authorize_url.is_none() {
        o.authorize_url = found.authorize;
    }
    if o.device_url.is_none() {
        o.device_url = found.device;
    }
    for (field, url) in [
        (Field::OAuthTokenUrl, Some(&o.token_url)),
        (Field::OAuthAuthorizeUrl, o.authorize_url.as_ref()),
        (Field::OAuthDeviceUrl, o.device_url.as_ref()),
    ] {
        if let Some(url) = url {
            endpoint(field, url)?;
        }
    }
    Ok(())
}

/// Whether a change of settings must drop the tokens (the mailbox is connected again):
/// the tokens would go to another server or user, or come from another provider, client
/// or scope.
pub fn needs_reconnect(old: &MailboxSettings, new: &MailboxSettings) -> bool {
    let (Some(a), Some(b)) = (&old.oauth, &new.oauth) else {
        return old.oauth.is_some() != new.oauth.is_some();
    };
    crate::SecretRule::needs_secret(old, new).is_some()
        || a.provider != b.provider
        || a.tenant != b.tenant
        || a.issuer != b.issuer
        || a.authorize_url != b.authorize_url
        || a.token_url != b.token_url
        || a.device_url != b.device_url
        || a.client_id != b.client_id
        || a.scopes != b.scopes
        || a.flow != b.flow
        || old.sending.as_ref().map(|s| &s.smtp_host) != new.sending.as_ref().map(|s| &s.smtp_host)
}

/// The endpoint change that would send the stored client secret somewhere new: it must
/// be typed again then.
pub fn client_secret_needed(old: &MailboxSettings, new: &MailboxSettings) -> Option<Field> {
    let (Some(a), Some(b)) = (&old.oauth, &new.oauth) else {
        return None;
    };
    [
        (a.token_url != b.token_url, Field::OAuthTokenUrl),
        (a.device_url != b.device_url, Field::OAuthDeviceUrl),
        (a.client_id != b.client_id, Field::OAuthClientId),
    ]
    .into_iter()
    .find_map(|(changed, field)| changed.then_some(field))
}

/// The client secret as typed: blank means a public client.
pub(super) fn client_secret(secret: &SecretString) -> Result<Option<&SecretString>, AdminError> {
    use secrecy::ExposeSecret as _;
    let text = secret.expose_secret();
    if text.trim().is_empty() {
        return Ok(None);
    }
    if text.chars().count() > super::rules::MAX_SECRET_CHARS || text.chars().any(char::is_control) {
        return Err(AdminError::invalid(
            Field::OAuthClientSecret,
            "must be the app's client secret, without control characters",
        ));
    }
    Ok(Some(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn microsoft() -> MailboxChange {
        MailboxChange {
            name: Some("support".into()),
            host: Some("outlook.office365.com".into()),
            username: Some("support@contoso.com".into()),
            auth_method: Some("xoauth2".into()),
            oauth_provider: Some(Some("microsoft".into())),
            oauth_tenant: Some(Some("contoso.onmicrosoft.com".into())),
            oauth_client_id: Some("00000000-1111-2222-3333-444444444444".into()),
            ..MailboxChange::default()
        }
    }

    #[test]
    fn a_microsoft_mailbox_needs_no_password_and_gets_the_preset() {
        let s = microsoft().apply(None).expect("valid");
        let o = s.oauth.expect("OAuth2 settings");
        assert_eq!(
            o.token_url,
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(
            o.scope(),
            "https://outlook.office.com/POP.AccessAsUser.All offline_access"
        );
        assert_eq!(o.flow, OAuthFlow::AuthorizationCode);
    }

    #[test]
    fn an_oauth_mailbox_signs_in_with_a_token_method() {
        let change = MailboxChange {
            auth_method: Some("plain".into()),
            ..microsoft()
        };
        assert_eq!(
            change.apply(None).err().and_then(|e| e.field()),
            Some(Field::AuthMethod)
        );
    }

    #[test]
    fn endpoints_go_over_https_or_stay_on_this_machine() {
        for (url, ok) in [
            ("https://idp.example.com/token", true),
            ("http://127.0.0.1:8080/token", true),
            ("http://localhost/token", true),
            ("http://idp.example.com/token", false),
            ("ftp://idp.example.com/token", false),
            ("not a url", false),
        ] {
            assert_eq!(endpoint(Field::OAuthTokenUrl, url).is_ok(), ok, "{url}");
        }
    }

    #[test]
    fn a_generic_provider_needs_a_token_url_or_an_issuer() {
        let change = MailboxChange {
            oauth_provider: Some(Some("generic".into())),
            oauth_tenant: None,
            oauth_scopes: Some(vec!["mail".into()]),
            ..microsoft()
        };
        assert_eq!(
            change.apply(None).err().and_then(|e| e.field()),
            Some(Field::OAuthTokenUrl)
        );
        let change = MailboxChange {
            oauth_issuer: Some(Some("https://idp.example.com/".into())),
            ..change
        };
        let s = change.apply(None).expect("valid before discovery");
        assert_eq!(
            s.oauth.and_then(|o| o.issuer).as_deref(),
            Some("https://idp.example.com")
        );
    }

    #[test]
    fn presets_refuse_endpoints_of_their_own() {
        let change = MailboxChange {
            oauth_token_url: Some(Some("https://evil.example/token".into())),
            ..microsoft()
        };
        assert_eq!(
            change.apply(None).err().and_then(|e| e.field()),
            Some(Field::OAuthTokenUrl)
        );
    }

    #[test]
    fn moving_the_token_endpoint_or_the_server_drops_the_tokens() {
        let old = microsoft().apply(None).expect("valid");
        let mut moved = old.clone();
        moved.host = "pop.evil.example".into();
        assert!(needs_reconnect(&old, &moved));
        let mut polled = old.clone();
        polled.poll_interval_secs = 300;
        assert!(!needs_reconnect(&old, &polled));
        let mut tenant = old.clone();
        if let Some(o) = tenant.oauth.as_mut() {
            o.token_url = "https://login.microsoftonline.com/other/oauth2/v2.0/token".into();
        }
        assert!(needs_reconnect(&old, &tenant));
        assert_eq!(
            client_secret_needed(&old, &tenant),
            Some(Field::OAuthTokenUrl)
        );
    }
}
