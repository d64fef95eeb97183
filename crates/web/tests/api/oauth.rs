//! OAuth2 on the web side: mailboxes that sign in with OAuth2 through the API, "Connect"
//! and the provider's redirect back to `/oauth/callback`, against a real OAuth2 server
//! (`testkit::OidcProvider`, npm oidc-provider) whose login the fixture scripts over
//! HTTP. The callback is bound to the admin's browser session; whatever is refused
//! stores nothing, and no response ever carries a token, a code or the client secret.

use axum::http::StatusCode;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use store::{OAuthState, Role};
use testkit::{OidcClient, OidcConfig, OidcProvider};

use crate::common::{self, Desk};

/// Where the tests say popdesk is reached; the provider sends the browser back here.
const PUBLIC_URL: &str = "http://desk.test:8080";
const CLIENT_ID: &str = "popdesk-web";
const CLIENT_SECRET: &str = "client-secret-never-shown-7";

async fn desk_with_public_url() -> Desk {
    let config = web::WebConfig {
        public_url: Some(web::PublicUrl::parse(PUBLIC_URL).expect("a valid public_url")),
        ..common::config()
    };
    Desk::with(config, |state| state).await
}

fn provider() -> OidcProvider {
    OidcProvider::start(OidcConfig::default().client(
        OidcClient::public(CLIENT_ID).redirect_uri(&format!("{PUBLIC_URL}/oauth/callback")),
    ))
}

/// A generic OAuth2 mailbox at the provider, for the POP3 user `dana`.
async fn oauth_mailbox(desk: &Desk, admin: &str, provider: &OidcProvider) -> i64 {
    let created = desk
        .post("/api/v1/mailboxes")
        .cookie(admin)
        .json(json!({
            "name": "oauthbox",
            "host": "127.0.0.1",
            "port": 110,
            "tls": "none",
            "allow_insecure_auth": true,
            "username": "dana",
            "oauth_provider": "generic",
            "oauth_issuer": provider.issuer(),
            "oauth_client_id": CLIENT_ID,
            "oauth_scopes": ["mail", "offline_access"],
        }))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    created.json()["id"].as_i64().expect("id")
}

/// "Connect" through the API: the provider's authorization URL.
async fn begin(desk: &Desk, session: &str, id: i64) -> String {
    let reply = desk
        .post(&format!("/api/v1/mailboxes/{id}/oauth/connect"))
        .cookie(session)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()["authorize_url"]
        .as_str()
        .expect("an authorize_url")
        .to_string()
}

/// The provider's redirect as the path and query popdesk sees.
fn callback_path(location: &str) -> String {
    let rest = location
        .strip_prefix(PUBLIC_URL)
        .unwrap_or_else(|| panic!("the provider sent the browser elsewhere: {location}"));
    assert!(rest.starts_with("/oauth/callback?"), "{location}");
    rest.to_string()
}

fn query_value(path: &str, name: &str) -> String {
    let query = path.split_once('?').map_or("", |(_, q)| q);
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .expect("a query")
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name} in {path}"))
}

/// The callback as the browser requests it: a top-level navigation from the provider.
async fn call_back(desk: &Desk, session: Option<&str>, path: &str) -> common::Reply {
    let call = desk.get(path).header("sec-fetch-site", "cross-site");
    match session {
        Some(session) => call.cookie(session).send().await,
        None => call.send().await,
    }
}

async fn state_of(desk: &Desk, id: i64) -> Option<OAuthState> {
    desk.store
        .mailbox_by_id(id)
        .await
        .expect("read")
        .expect("mailbox")
        .oauth_state
}

#[tokio::test]
async fn an_oauth_mailbox_needs_no_password_and_its_json_never_shows_secrets() {
    let desk = desk_with_public_url().await;
    let admin = desk.admin_session().await;
    let created = desk
        .post("/api/v1/mailboxes")
        .cookie(&admin)
        .json(json!({
            "name": "m365",
            "host": "outlook.office365.com",
            "username": "support@contoso.com",
            "oauth_provider": "microsoft",
            "oauth_tenant": "contoso.onmicrosoft.com",
            "oauth_client_id": "00000000-1111-2222-3333-444444444444",
            "oauth_client_secret": CLIENT_SECRET,
        }))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let body = created.json();
    let id = body["id"].as_i64().expect("id");
    assert_eq!(
        body["auth_method"], "xoauth2",
        "OAuth2 signs in with a token"
    );
    let oauth = &body["oauth"];
    assert_eq!(oauth["provider"], "microsoft");
    assert_eq!(oauth["tenant"], "contoso.onmicrosoft.com");
    assert_eq!(oauth["state"], "not-connected");
    assert_eq!(oauth["flow"], "authorization-code");
    assert_eq!(
        oauth["token_url"],
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
    assert_eq!(
        oauth["scopes"],
        json!([
            "https://outlook.office.com/POP.AccessAsUser.All",
            "offline_access"
        ])
    );
    assert_eq!(
        oauth["redirect_uri"],
        format!("{PUBLIC_URL}/oauth/callback")
    );
    assert!(oauth.get("client_secret").is_none());
    let stored = desk
        .store
        .oauth_client_secret(id)
        .await
        .expect("read")
        .expect("the client secret is stored");
    assert_eq!(stored.expose_secret(), CLIENT_SECRET);
    for reply in [
        created,
        desk.get(&format!("/api/v1/mailboxes/{id}"))
            .cookie(&admin)
            .send()
            .await,
        desk.get("/api/v1/mailboxes").cookie(&admin).send().await,
    ] {
        assert!(reply.status.is_success(), "{}", reply.text());
        assert!(!reply.text().contains(CLIENT_SECRET), "{}", reply.text());
    }

    // A password mailbox still needs its password.
    let refused = desk
        .post("/api/v1/mailboxes")
        .cookie(&admin)
        .json(json!({"name": "plain", "host": "pop.example.com", "username": "u"}))
        .send()
        .await;
    refused.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(refused.json()["error"]["field"], "password");
    // And a password mailbox has no oauth object.
    let plain = desk.mailbox("plain", "plain@example.com").await;
    let plain = desk
        .get(&format!("/api/v1/mailboxes/{plain}"))
        .cookie(&admin)
        .send()
        .await
        .json();
    assert_eq!(plain["oauth"], Value::Null);
}

#[tokio::test]
async fn connect_says_why_it_cannot_work_without_public_url() {
    let desk = Desk::new().await;
    let admin = desk.admin_session().await;
    let created = desk
        .post("/api/v1/mailboxes")
        .cookie(&admin)
        .json(json!({
            "name": "gmail",
            "host": "pop.gmail.com",
            "username": "support@example.com",
            "oauth_provider": "google",
            "oauth_client_id": "1234-abc.apps.googleusercontent.com",
        }))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let body = created.json();
    assert_eq!(body["oauth"]["redirect_uri"], Value::Null);
    let id = body["id"].as_i64().expect("id");
    let reply = desk
        .post(&format!("/api/v1/mailboxes/{id}/oauth/connect"))
        .cookie(&admin)
        .send()
        .await;
    reply.assert_error(StatusCode::CONFLICT, "conflict");
    assert!(reply.text().contains("public_url"), "{}", reply.text());
    // Nor can an API token start it: there is no browser to send back.
    let (_, token) = desk.token("admin").await;
    let by_token = desk
        .post(&format!("/api/v1/mailboxes/{id}/oauth/connect"))
        .bearer(&token)
        .send()
        .await;
    by_token.assert_error(StatusCode::CONFLICT, "conflict");
    // A password mailbox cannot be connected at all.
    let plain = desk.mailbox("plain", "plain@example.com").await;
    desk.post(&format!("/api/v1/mailboxes/{plain}/oauth/connect"))
        .cookie(&admin)
        .send()
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
}

#[tokio::test]
async fn the_provider_sends_the_admin_back_connected_and_a_reused_code_or_state_is_refused() {
    let provider = provider();
    let desk = desk_with_public_url().await;
    let admin = desk.admin_session().await;
    let id = oauth_mailbox(&desk, &admin, &provider).await;

    let authorize_url = begin(&desk, &admin, id).await;
    assert!(authorize_url.starts_with(&format!("{}/", provider.issuer())));
    assert!(authorize_url.contains("code_challenge_method=S256"));
    let location = provider
        .authorize(&authorize_url, "dana")
        .await
        .expect("the provider signs dana in");
    let path = callback_path(&location);
    let code = query_value(&path, "code");
    let state = query_value(&path, "state");

    // Not signed in: a page that says so, and nothing is used up or stored.
    let anonymous = call_back(&desk, None, &path).await;
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.text()
    );
    assert!(
        anonymous.text().contains("not signed in"),
        "{}",
        anonymous.text()
    );
    assert_eq!(state_of(&desk, id).await, Some(OAuthState::NotConnected));

    let back = call_back(&desk, Some(&admin), &path).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.text());
    assert_eq!(
        back.header("location"),
        Some(format!("/mailboxes/{id}").as_str())
    );
    assert!(
        back.set_cookie()
            .is_some_and(|c| c.starts_with("popdesk_flash=")),
        "a flash says it worked"
    );
    assert_eq!(state_of(&desk, id).await, Some(OAuthState::Connected));
    let connection = desk.store.oauth_connection(id).await.expect("connection");
    let tokens = connection.tokens.expect("tokens are stored");
    let refresh = tokens
        .refresh_token
        .expect("offline_access gave a refresh token");
    let page = desk
        .get(&format!("/mailboxes/{id}"))
        .cookie(&admin)
        .send()
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text().contains("Connected"),
        "the page shows the connection"
    );
    let json = desk
        .get(&format!("/api/v1/mailboxes/{id}"))
        .cookie(&admin)
        .send()
        .await;
    assert_eq!(json.json()["oauth"]["state"], "connected");
    for text in [back.text(), page.text(), json.text()] {
        for secret in [
            tokens.access_token.expose_secret(),
            refresh.expose_secret(),
            code.as_str(),
            state.as_str(),
        ] {
            assert!(!text.contains(secret), "a secret leaked: {text}");
        }
    }

    // The same answer again: the state worked once.
    let replayed = call_back(&desk, Some(&admin), &path).await;
    assert_eq!(
        replayed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        replayed.text()
    );
    assert!(
        replayed.text().contains("already used"),
        "{}",
        replayed.text()
    );

    // The used code with a fresh state: the provider refuses it, nothing changes.
    let fresh = begin(&desk, &admin, id).await;
    let fresh_state = query_value(&fresh, "state");
    let reused = call_back(
        &desk,
        Some(&admin),
        &format!(
            "/oauth/callback?{}",
            serde_urlencoded::to_string([("code", code.as_str()), ("state", fresh_state.as_str())])
                .expect("query")
        ),
    )
    .await;
    assert_eq!(reused.status, StatusCode::BAD_REQUEST, "{}", reused.text());
    assert!(!reused.text().contains(&code), "{}", reused.text());
    let after = desk.store.oauth_connection(id).await.expect("connection");
    assert_eq!(
        after
            .tokens
            .map(|t| t.access_token.expose_secret().to_string()),
        Some(tokens.access_token.expose_secret().to_string()),
        "a refused code stores nothing"
    );
    assert!(
        provider
            .token_events()
            .iter()
            .any(|e| e.grant_type == "authorization_code" && e.outcome != "ok"),
        "the provider saw the reused code: {:?}",
        provider.token_events()
    );
}

#[tokio::test]
async fn a_forged_state_a_refusal_and_another_admins_session_are_refused_and_store_nothing() {
    let provider = provider();
    let desk = desk_with_public_url().await;
    let admin = desk.admin_session().await;
    let id = oauth_mailbox(&desk, &admin, &provider).await;

    let forged = call_back(
        &desk,
        Some(&admin),
        "/oauth/callback?code=abc&state=forged-state",
    )
    .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST, "{}", forged.text());
    assert!(
        forged.text().contains("unknown or was already used"),
        "{}",
        forged.text()
    );
    assert!(!forged.text().contains("forged-state"));
    assert_eq!(state_of(&desk, id).await, Some(OAuthState::NotConnected));

    // The admin said no at the provider.
    let denied_state = query_value(&begin(&desk, &admin, id).await, "state");
    let denied = call_back(
        &desk,
        Some(&admin),
        &format!(
            "/oauth/callback?{}",
            serde_urlencoded::to_string([
                ("error", "access_denied"),
                ("error_description", "The user said no"),
                ("state", denied_state.as_str()),
            ])
            .expect("query")
        ),
    )
    .await;
    assert_eq!(denied.status, StatusCode::BAD_REQUEST, "{}", denied.text());
    assert!(
        denied.text().contains("did not grant access"),
        "{}",
        denied.text()
    );
    assert_eq!(state_of(&desk, id).await, Some(OAuthState::NotConnected));

    // Begun in one admin's session, called back in another's.
    desk.add_user("second-admin@example.com", Role::Admin).await;
    let other = desk.sign_in("second-admin@example.com").await;
    let authorize_url = begin(&desk, &admin, id).await;
    let location = provider
        .authorize(&authorize_url, "dana")
        .await
        .expect("the provider signs dana in");
    let path = callback_path(&location);
    let foreign = call_back(&desk, Some(&other), &path).await;
    assert_eq!(
        foreign.status,
        StatusCode::BAD_REQUEST,
        "{}",
        foreign.text()
    );
    assert!(
        foreign.text().contains("another browser session"),
        "{}",
        foreign.text()
    );
    assert_eq!(state_of(&desk, id).await, Some(OAuthState::NotConnected));
    assert!(
        desk.store
            .oauth_connection(id)
            .await
            .expect("c")
            .tokens
            .is_none()
    );

    // An agent is no admin: refused before the state is looked at.
    let agent = desk.agent_session().await;
    let by_agent = call_back(&desk, Some(&agent), &path).await;
    assert_eq!(
        by_agent.status,
        StatusCode::FORBIDDEN,
        "{}",
        by_agent.text()
    );
}
