//! A mailbox's OAuth2 connection as stored: settings round-trip as given, tokens are
//! sealed and come back whole, a refresh claim keeps a second worker off until it lapses,
//! and an authorization's state works exactly once. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{T0, TestDb, add_mailbox, on_both_backends};
use secrecy::{ExposeSecret as _, SecretString};
use store::{
    ClientSecretChange, OAuthFlow, OAuthProvider, OAuthSettings, OAuthState, OAuthTokens,
    PendingAuthorization,
};

on_both_backends!(
    oauth_settings_are_stored_as_given_and_tokens_sealed,
    a_refresh_claim_keeps_a_second_worker_off_until_it_lapses,
    an_authorization_state_works_once,
);

fn settings() -> OAuthSettings {
    OAuthSettings {
        provider: OAuthProvider::Microsoft,
        tenant: Some("contoso.onmicrosoft.com".into()),
        issuer: None,
        authorize_url: Some("https://login.example/authorize".into()),
        token_url: "https://login.example/token".into(),
        device_url: Some("https://login.example/devicecode".into()),
        client_id: "client-1".into(),
        scopes: vec![
            "https://outlook.office.com/POP.AccessAsUser.All".into(),
            "offline_access".into(),
        ],
        flow: OAuthFlow::DeviceCode,
    }
}

async fn oauth_settings_are_stored_as_given_and_tokens_sealed(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    assert_eq!(
        mailbox.oauth_state, None,
        "a password mailbox has no connection"
    );
    let secret = SecretString::from("client-secret-1");
    store
        .set_oauth_settings(
            mailbox.id,
            Some(&settings()),
            ClientSecretChange::Set(&secret),
            true,
            T0,
        )
        .await
        .expect("save");
    let read = store
        .mailbox_by_id(mailbox.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read.settings.oauth, Some(settings()));
    assert_eq!(read.oauth_state, Some(OAuthState::NotConnected));
    assert_eq!(
        store
            .oauth_client_secret(mailbox.id)
            .await
            .expect("open")
            .map(|s| s.expose_secret().to_string()),
        Some("client-secret-1".into())
    );
    let tokens = OAuthTokens {
        access_token: SecretString::from("access-1"),
        expires_at: T0 + 3_600_000,
        refresh_token: Some(SecretString::from("refresh-1")),
    };
    store
        .connect_oauth(mailbox.id, &tokens, T0)
        .await
        .expect("connect");
    let connection = store.oauth_connection(mailbox.id).await.expect("read");
    assert_eq!(connection.state, OAuthState::Connected);
    let got = connection.tokens.expect("tokens");
    assert_eq!(got.access_token.expose_secret(), "access-1");
    assert_eq!(
        got.refresh_token.map(|t| t.expose_secret().to_string()),
        Some("refresh-1".into())
    );
    // Sealed at rest: the database holds neither token in the clear.
    let mut raw = db.raw_connection().await;
    let row: (Vec<u8>, Vec<u8>) = sqlx::query_as(
        "SELECT oauth_access_token, oauth_refresh_token FROM mailboxes WHERE id = $1",
    )
    .bind(mailbox.id)
    .fetch_one(&mut raw)
    .await
    .expect("raw row");
    let holds = |sealed: &[u8], plain: &[u8]| sealed.windows(plain.len()).any(|w| w == plain);
    assert!(!holds(&row.0, b"access-1") && !holds(&row.1, b"refresh-1"));
    // A rotation without a new refresh token keeps the stored one.
    let renewed = OAuthTokens {
        access_token: SecretString::from("access-2"),
        expires_at: T0 + 7_200_000,
        refresh_token: None,
    };
    store
        .store_refreshed_tokens(mailbox.id, "me", &renewed, T0 + 1)
        .await
        .expect("store");
    let got = store
        .oauth_connection(mailbox.id)
        .await
        .expect("read")
        .tokens
        .expect("tokens");
    assert_eq!(got.access_token.expose_secret(), "access-2");
    assert_eq!(
        got.refresh_token.map(|t| t.expose_secret().to_string()),
        Some("refresh-1".into())
    );
    // Settings that move the tokens drop them.
    store
        .set_oauth_settings(
            mailbox.id,
            Some(&settings()),
            ClientSecretChange::Keep,
            true,
            T0,
        )
        .await
        .expect("save");
    let connection = store.oauth_connection(mailbox.id).await.expect("read");
    assert_eq!(connection.state, OAuthState::NotConnected);
    assert!(connection.tokens.is_none());
    // OAuth2 off: nothing of it is left.
    store
        .set_oauth_settings(mailbox.id, None, ClientSecretChange::Clear, false, T0)
        .await
        .expect("save");
    let read = store
        .mailbox_by_id(mailbox.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!((read.settings.oauth, read.oauth_state), (None, None));
    assert!(
        store
            .oauth_client_secret(mailbox.id)
            .await
            .expect("read")
            .is_none()
    );
}

async fn a_refresh_claim_keeps_a_second_worker_off_until_it_lapses(db: &TestDb) {
    let store = &db.store;
    let other = db.reopen().await;
    let mailbox = add_mailbox(store, "support").await;
    assert!(
        store
            .claim_token_refresh(mailbox.id, "node-a", T0, T0 + 90_000)
            .await
            .expect("claim")
    );
    assert!(
        !other
            .claim_token_refresh(mailbox.id, "node-b", T0 + 1, T0 + 90_001)
            .await
            .expect("claim")
    );
    assert!(
        store
            .claim_token_refresh(mailbox.id, "node-a", T0 + 2, T0 + 90_002)
            .await
            .expect("its own again")
    );
    assert!(
        other
            .claim_token_refresh(mailbox.id, "node-b", T0 + 90_003, T0 + 180_000)
            .await
            .expect("lapsed")
    );
    store
        .release_token_refresh(mailbox.id, "node-a")
        .await
        .expect("release");
    assert!(
        !store
            .claim_token_refresh(mailbox.id, "node-a", T0 + 90_004, T0 + 180_004)
            .await
            .expect("b holds it")
    );
    other
        .release_token_refresh(mailbox.id, "node-b")
        .await
        .expect("release");
    assert!(
        store
            .claim_token_refresh(mailbox.id, "node-a", T0 + 90_005, T0 + 180_005)
            .await
            .expect("free")
    );
}

async fn an_authorization_state_works_once(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let pending = PendingAuthorization {
        mailbox_id: mailbox.id,
        session_hash: "session-hash".into(),
        verifier: SecretString::from("verifier-1"),
        redirect_uri: "https://desk.example/oauth/callback".into(),
        expires_at: T0 + 600_000,
    };
    store
        .begin_oauth_authorization("state-hash", &pending, T0)
        .await
        .expect("begin");
    let taken = store
        .take_oauth_authorization("state-hash")
        .await
        .expect("take")
        .expect("there");
    assert_eq!(taken.verifier.expose_secret(), "verifier-1");
    assert_eq!(taken.session_hash, "session-hash");
    assert!(
        store
            .take_oauth_authorization("state-hash")
            .await
            .expect("take")
            .is_none(),
        "once"
    );
    // Expired flows are cleared as new ones begin.
    store
        .begin_oauth_authorization("old", &pending, T0)
        .await
        .expect("begin");
    store
        .begin_oauth_authorization("new", &pending, T0 + 600_001)
        .await
        .expect("begin");
    assert!(
        store
            .take_oauth_authorization("old")
            .await
            .expect("take")
            .is_none()
    );
    assert!(
        store
            .take_oauth_authorization("new")
            .await
            .expect("take")
            .is_some()
    );
}
