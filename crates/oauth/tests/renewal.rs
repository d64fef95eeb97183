//! A connection stays connected: tokens are renewed before they expire, a rotated refresh
//! token is never spent twice however many workers race an expiry, a token a server
//! refuses is renewed once, and a revoked grant puts the mailbox in "needs reconnecting"
//! without asking the provider again and again.
//!
//! Against a real OAuth2 server (`oidc-provider`, with rotating refresh tokens: a spent
//! refresh token coming back revokes the whole grant), on SQLite and on PostgreSQL. Each
//! "worker" is a `Connections` on a store of its own with its own connections, as a second
//! popdesk node would open the database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../store/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::{T0, TestDb, on_both_backends};
use oauth::{AccessError, Connections};
use secrecy::{ExposeSecret as _, SecretString};
use store::{
    AuthMethod, ClientSecretChange, Mailbox, MailboxSettings, OAuthFlow, OAuthProvider,
    OAuthSettings, OAuthState, Store,
};
use testkit::{OidcClient, OidcConfig, OidcProvider};

/// Access tokens live this long here: three expiries in well under a minute.
const TTL_SECS: u64 = 6;
const ACCOUNT: &str = "dana";

fn provider() -> OidcProvider {
    OidcProvider::start(
        OidcConfig {
            access_token_ttl_secs: TTL_SECS,
            ..OidcConfig::default()
        }
        .client(OidcClient::public("popdesk").redirect_uri("http://127.0.0.1:9/oauth/callback"))
        .client(
            OidcClient::confidential("popdesk-app", "app-secret")
                .grant_types(&["client_credentials"])
                .mailbox_user("support"),
        ),
    )
}

async fn oauth_mailbox(
    store: &Store,
    provider: &OidcProvider,
    flow: OAuthFlow,
    client_secret: Option<&str>,
) -> Mailbox {
    let settings = MailboxSettings {
        name: "oauthbox".into(),
        host: "127.0.0.1".into(),
        username: ACCOUNT.into(),
        auth_method: AuthMethod::XOAuth2,
        ..MailboxSettings::default()
    };
    let mailbox = store
        .add_mailbox(&settings, &SecretString::from(""), T0)
        .await
        .expect("add the mailbox");
    let oauth = OAuthSettings {
        provider: OAuthProvider::Generic,
        issuer: Some(provider.issuer()),
        authorize_url: Some(provider.authorize_url()),
        token_url: provider.token_url(),
        device_url: Some(provider.device_url()),
        client_id: if client_secret.is_some() {
            "popdesk-app".into()
        } else {
            "popdesk".into()
        },
        scopes: vec!["mail".into(), "offline_access".into()],
        flow,
        ..OAuthSettings::default()
    };
    let secret = client_secret.map(SecretString::from);
    let change = match &secret {
        Some(secret) => ClientSecretChange::Set(secret),
        None => ClientSecretChange::Clear,
    };
    store
        .set_oauth_settings(mailbox.id, Some(&oauth), change, true, T0)
        .await
        .expect("save the OAuth2 settings");
    reload(store, mailbox.id).await
}

async fn reload(store: &Store, id: i64) -> Mailbox {
    store
        .mailbox_by_id(id)
        .await
        .expect("read the mailbox")
        .expect("the mailbox exists")
}

/// Connects through the device flow, approving the code at the provider as the admin
/// would in a browser.
async fn connect_by_device(connections: &Connections, mailbox: &Mailbox, provider: &OidcProvider) {
    let device = connections
        .start_device(mailbox)
        .await
        .expect("start the device flow");
    provider
        .approve_device(&device.user_code, ACCOUNT)
        .await
        .unwrap_or_else(|e| panic!("approve the code: {e}\n{}", provider.log()));
    let connected = connections
        .finish_device(mailbox, &device)
        .await
        .expect("the device flow finishes");
    assert_eq!(connected.oauth_state, Some(OAuthState::Connected));
}

fn count(provider: &OidcProvider, grant: &str, outcome: &str) -> usize {
    provider
        .token_events()
        .iter()
        .filter(|e| e.grant_type == grant && e.outcome == outcome)
        .count()
}

/// Waits until the stored access token is inside its renewal window (the last quarter of
/// its life), so every worker sees a token due for renewal.
async fn until_due(store: &Store, id: i64) {
    let tokens = store
        .oauth_connection(id)
        .await
        .expect("read the tokens")
        .tokens
        .expect("connected");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let due_at = tokens.expires_at - 1_000;
    if due_at > now {
        tokio::time::sleep(Duration::from_millis((due_at - now) as u64)).await;
    }
}

async fn workers_racing_an_expiry_spend_each_refresh_token_once(db: &TestDb) {
    let provider = provider();
    let first = Connections::new(db.store.clone());
    let mailbox = oauth_mailbox(&db.store, &provider, OAuthFlow::DeviceCode, None).await;
    connect_by_device(&first, &mailbox, &provider).await;
    let spent = db
        .store
        .oauth_connection(mailbox.id)
        .await
        .expect("read")
        .tokens
        .and_then(|t| t.refresh_token)
        .expect("a refresh token");
    let mut workers = vec![first];
    for _ in 0..3 {
        workers.push(Connections::new(db.reopen().await));
    }
    let mut seen = Vec::new();
    for round in 1..=3 {
        until_due(&db.store, mailbox.id).await;
        let mailbox = reload(&db.store, mailbox.id).await;
        let mut racing = tokio::task::JoinSet::new();
        for worker in &workers {
            let (worker, mailbox) = (worker.clone(), mailbox.clone());
            racing.spawn(async move { worker.access_token(&mailbox, None).await });
        }
        let mut tokens = Vec::new();
        while let Some(joined) = racing.join_next().await {
            let token = joined
                .expect("the worker task")
                .unwrap_or_else(|e| panic!("round {round}: {e}\n{}", provider.log()));
            tokens.push(token.expose_secret().to_string());
        }
        tokens.dedup();
        assert_eq!(
            tokens.len(),
            1,
            "round {round}: every worker uses the one renewed token"
        );
        assert!(!seen.contains(&tokens[0]), "round {round}: a new token");
        seen.push(tokens[0].clone());
        assert_eq!(
            count(&provider, "refresh_token", "ok"),
            round,
            "round {round}: one renewal per expiry, whatever the number of workers"
        );
    }
    assert_eq!(
        count(&provider, "refresh_token", "invalid_grant"),
        0,
        "no spent refresh token came back: {:?}",
        provider.token_events()
    );
    let mailbox = reload(&db.store, mailbox.id).await;
    assert_eq!(mailbox.oauth_state, Some(OAuthState::Connected));
    assert_eq!(mailbox.needs_attention, None);
    // The provider rotated: the first refresh token is spent and refused now (which, as
    // the provider treats a spent token coming back, also revokes the grant: last).
    let reuse = oauth::TokenClient::new()
        .refresh(
            &provider.token_url(),
            &oauth::ClientAuth {
                client_id: "popdesk".into(),
                client_secret: None,
            },
            &spent,
            None,
        )
        .await;
    assert!(
        matches!(reuse, Err(oauth::TokenError::GrantRefused { .. })),
        "{reuse:?}"
    );
}

async fn a_token_the_server_refuses_is_renewed_at_once(db: &TestDb) {
    let provider = provider();
    let connections = Connections::new(db.store.clone());
    let mailbox = oauth_mailbox(&db.store, &provider, OAuthFlow::DeviceCode, None).await;
    connect_by_device(&connections, &mailbox, &provider).await;
    let current = connections
        .access_token(&mailbox, None)
        .await
        .expect("the fresh token");
    assert_eq!(
        count(&provider, "refresh_token", "ok"),
        0,
        "a fresh token is used as it is"
    );
    let renewed = connections
        .access_token(&mailbox, Some(&current))
        .await
        .expect("a renewed token");
    assert_ne!(renewed.expose_secret(), current.expose_secret());
    assert_eq!(count(&provider, "refresh_token", "ok"), 1);
    // Refused again by a worker that still held the old one: the renewed token serves.
    let again = connections
        .access_token(&mailbox, Some(&current))
        .await
        .expect("the renewed token");
    assert_eq!(again.expose_secret(), renewed.expose_secret());
    assert_eq!(count(&provider, "refresh_token", "ok"), 1);
}

async fn a_revoked_grant_needs_reconnecting_and_the_provider_is_asked_once(db: &TestDb) {
    let provider = provider();
    let connections = Connections::new(db.store.clone());
    let mailbox = oauth_mailbox(&db.store, &provider, OAuthFlow::DeviceCode, None).await;
    connect_by_device(&connections, &mailbox, &provider).await;
    let revoked = provider
        .revoke_grants(ACCOUNT)
        .await
        .expect("revoke at the provider");
    assert!(revoked > 0);
    until_due(&db.store, mailbox.id).await;
    let error = connections.access_token(&mailbox, None).await.err();
    assert!(
        matches!(error, Some(AccessError::NeedsReconnecting)),
        "{error:?}"
    );
    let after = reload(&db.store, mailbox.id).await;
    assert_eq!(after.oauth_state, Some(OAuthState::NeedsReconnecting));
    let attention = after.needs_attention.clone().unwrap_or_default();
    assert!(attention.contains("needs reconnecting"), "{attention}");
    assert!(attention.contains("invalid_grant"), "{attention}");
    assert!(
        db.store
            .oauth_connection(mailbox.id)
            .await
            .expect("read")
            .tokens
            .is_none(),
        "the dead tokens are dropped"
    );
    let asked = provider.token_events().len();
    let error = connections.access_token(&after, None).await.err();
    assert!(matches!(error, Some(AccessError::NeedsReconnecting)));
    assert_eq!(provider.token_events().len(), asked, "not asked again");
    // Reconnecting makes it whole.
    connect_by_device(&connections, &after, &provider).await;
    let reconnected = reload(&db.store, mailbox.id).await;
    assert_eq!(reconnected.needs_attention, None);
    assert!(connections.access_token(&reconnected, None).await.is_ok());
}

async fn client_credentials_need_no_connect_and_renew_without_a_refresh_token(db: &TestDb) {
    let provider = provider();
    let connections = Connections::new(db.store.clone());
    let mailbox = oauth_mailbox(
        &db.store,
        &provider,
        OAuthFlow::ClientCredentials,
        Some("app-secret"),
    )
    .await;
    assert_eq!(mailbox.oauth_state, Some(OAuthState::NotConnected));
    let first = connections
        .access_token(&mailbox, None)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", provider.log()));
    let mailbox = reload(&db.store, mailbox.id).await;
    assert_eq!(mailbox.oauth_state, Some(OAuthState::Connected));
    until_due(&db.store, mailbox.id).await;
    let second = connections
        .access_token(&mailbox, None)
        .await
        .expect("a new app-only token");
    assert_ne!(first.expose_secret(), second.expose_secret());
    assert_eq!(count(&provider, "client_credentials", "ok"), 2);
    // A wrong secret is the client's fault: permanent, and said so.
    db.store
        .set_oauth_settings(
            mailbox.id,
            mailbox.settings.oauth.as_ref(),
            ClientSecretChange::Set(&SecretString::from("wrong")),
            true,
            T0,
        )
        .await
        .expect("change the secret");
    let mailbox = reload(&db.store, mailbox.id).await;
    let error = connections.access_token(&mailbox, None).await.err();
    let text = error.as_ref().map(ToString::to_string).unwrap_or_default();
    assert!(
        error.as_ref().is_some_and(|e| !e.is_transient()),
        "{error:?}"
    );
    assert!(text.contains("refused the client id or secret"), "{text}");
}

on_both_backends!(
    workers_racing_an_expiry_spend_each_refresh_token_once,
    a_token_the_server_refuses_is_renewed_at_once,
    a_revoked_grant_needs_reconnecting_and_the_provider_is_asked_once,
    client_credentials_need_no_connect_and_renew_without_a_refresh_token,
);

#[tokio::test]
async fn a_provider_that_is_down_is_a_transient_failure() {
    let db = TestDb::new(store::Backend::Sqlite).await;
    let provider = provider();
    let connections = Connections::new(db.store.clone());
    let mailbox = oauth_mailbox(
        &db.store,
        &provider,
        OAuthFlow::ClientCredentials,
        Some("app-secret"),
    )
    .await;
    drop(provider);
    let error = connections.access_token(&mailbox, None).await.err();
    assert!(
        error.as_ref().is_some_and(AccessError::is_transient),
        "{error:?}"
    );
    let mailbox = reload(&db.store, mailbox.id).await;
    assert_eq!(mailbox.needs_attention, None, "an outage needs no admin");
}
