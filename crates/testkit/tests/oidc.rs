//! The OAuth2 provider fixture behaves like a real mail provider: its tokens open a real
//! Dovecot's POP3 mailboxes, refresh tokens rotate and die when reused, codes work once,
//! revoked grants and expired tokens stop working. Each test starts its own provider.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pop3::{AuthMethod, Client, ConnectOptions, Credentials, Security};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use testkit::{DEVICE_CODE_GRANT, Dovecot, OidcClient, OidcConfig, OidcProvider, TokenEvent};

const CALLBACK: &str = "http://127.0.0.1:9/oauth/callback";

/// A public client like popdesk's own when it runs the device or code flow.
fn desktop_client() -> OidcClient {
    OidcClient::public("popdesk").redirect_uri(CALLBACK)
}

/// POSTs a form to the token (or device) endpoint, optionally with HTTP Basic client auth.
async fn post_form(
    url: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, Value) {
    let http = reqwest::Client::new();
    let mut request = http.post(url).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.expect("reach the provider");
    let status = response.status();
    let body = response.json().await.expect("the provider answers JSON");
    (status, body)
}

fn text<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {body}"))
}

/// Runs a device flow for `account` to the end: authorization, approval, poll.
async fn device_tokens(provider: &OidcProvider, account: &str) -> Value {
    let (status, device) = post_form(
        &provider.device_url(),
        &[("client_id", "popdesk"), ("scope", "mail offline_access")],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{device}");
    provider
        .approve_device(text(&device, "user_code"), account)
        .await
        .unwrap_or_else(|e| panic!("approve: {e}\n{}", provider.log()));
    let (status, tokens) = post_form(
        &provider.token_url(),
        &[
            ("grant_type", DEVICE_CODE_GRANT),
            ("device_code", text(&device, "device_code")),
            ("client_id", "popdesk"),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

async fn refresh(provider: &OidcProvider, refresh_token: &str) -> (StatusCode, Value) {
    post_form(
        &provider.token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", "popdesk"),
        ],
        None,
    )
    .await
}

fn dovecot_for(provider: &OidcProvider, users: &[&str]) -> Dovecot {
    let dovecot = Dovecot::builder()
        .oauth2(provider.introspection_url_for_dovecot())
        .start();
    for user in users {
        dovecot.add_user(user, "unused");
        dovecot.deliver(user, b"Subject: hello\r\n\r\nhi\r\n");
    }
    dovecot
}

/// Logs in over POP3S with a bearer token and counts the mailbox's messages.
async fn pop3_login(
    dovecot: &Dovecot,
    user: &str,
    token: &str,
    method: AuthMethod,
) -> Result<u64, pop3::Error> {
    let mut options = ConnectOptions::new(
        dovecot.host(),
        dovecot.pop3s_addr().port(),
        Security::Implicit,
    );
    options.ca_file = Some(dovecot.ca_pem_path());
    options.timeouts.read = Duration::from_secs(20);
    let mut client = Client::connect(&options).await?;
    client
        .authenticate(&Credentials::oauth2(user, token), method)
        .await?;
    let count = client.stat().await?.count;
    client.quit().await;
    Ok(count as u64)
}

fn events(provider: &OidcProvider, grant_type: &str) -> Vec<String> {
    provider
        .token_events()
        .into_iter()
        .filter(|e| e.grant_type == grant_type)
        .map(|e| e.outcome)
        .collect()
}

#[tokio::test]
async fn client_credentials_tokens_open_the_configured_mailbox_and_made_up_ones_do_not() {
    let provider = OidcProvider::start(
        OidcConfig::default()
            .client(
                OidcClient::confidential("daemon-post", "post-secret")
                    .grant_types(&["client_credentials"])
                    .auth_method("client_secret_post")
                    .mailbox_user("support"),
            )
            .client(
                OidcClient::confidential("daemon-basic", "basic-secret")
                    .grant_types(&["client_credentials"])
                    .mailbox_user("support"),
            ),
    );
    let (status, post) = post_form(
        &provider.token_url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "daemon-post"),
            ("client_secret", "post-secret"),
            ("scope", "https://outlook.office365.com/.default"),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{post}");
    let post_token = text(&post, "access_token");
    assert!(!post_token.contains('.'), "opaque, not a JWT: {post_token}");
    assert_eq!(post["expires_in"], 20);
    let (status, basic) = post_form(
        &provider.token_url(),
        &[("grant_type", "client_credentials"), ("scope", "mail")],
        Some(("daemon-basic", "basic-secret")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{basic}");
    let dovecot = dovecot_for(&provider, &["support"]);
    let count = pop3_login(&dovecot, "support", post_token, AuthMethod::XOAuth2)
        .await
        .unwrap_or_else(|e| panic!("XOAUTH2: {e}\n{}", dovecot.log()));
    assert_eq!(count, 1);
    pop3_login(
        &dovecot,
        "support",
        text(&basic, "access_token"),
        AuthMethod::OAuthBearer,
    )
    .await
    .unwrap_or_else(|e| panic!("OAUTHBEARER: {e}\n{}", dovecot.log()));
    let error = pop3_login(&dovecot, "support", "made-up-token", AuthMethod::XOAuth2)
        .await
        .expect_err("a token the provider never issued");
    assert!(error.is_auth(), "{error}");

    assert_eq!(
        provider.token_events(),
        [
            TokenEvent {
                grant_type: "client_credentials".into(),
                outcome: "ok".into(),
                client_id: Some("daemon-post".into()),
            },
            TokenEvent {
                grant_type: "client_credentials".into(),
                outcome: "ok".into(),
                client_id: Some("daemon-basic".into()),
            },
        ]
    );
}

#[tokio::test]
async fn device_flow_is_pending_until_approved_and_then_opens_the_accounts_mailbox() {
    let provider = OidcProvider::start(OidcConfig::default().client(desktop_client()));
    let (status, device) = post_form(
        &provider.device_url(),
        &[
            ("client_id", "popdesk"),
            (
                "scope",
                "https://outlook.office.com/POP.AccessAsUser.All offline_access",
            ),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{device}");
    let poll = [
        ("grant_type", DEVICE_CODE_GRANT),
        ("device_code", text(&device, "device_code")),
        ("client_id", "popdesk"),
    ];
    let (status, pending) = post_form(&provider.token_url(), &poll, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(pending["error"], "authorization_pending");

    provider
        .approve_device(text(&device, "user_code"), "dana")
        .await
        .unwrap_or_else(|e| panic!("approve: {e}\n{}", provider.log()));
    let (status, tokens) = post_form(&provider.token_url(), &poll, None).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
    // oidc-provider drops offline_access from the granted scope; the refresh token comes
    // anyway (see server.mjs, issueRefreshToken).
    assert_eq!(
        tokens["scope"],
        "https://outlook.office.com/POP.AccessAsUser.All"
    );

    let dovecot = dovecot_for(&provider, &["dana", "erik"]);
    let access = text(&tokens, "access_token");
    pop3_login(&dovecot, "dana", access, AuthMethod::XOAuth2)
        .await
        .unwrap_or_else(|e| panic!("XOAUTH2 as dana: {e}\n{}", dovecot.log()));
    let error = pop3_login(&dovecot, "erik", access, AuthMethod::XOAuth2)
        .await
        .expect_err("dana's token is not erik's");
    assert!(error.is_auth(), "{error}");

    // A device code is good for one set of tokens, and using it again is taken as theft:
    // the tokens it gave are revoked.
    let (_, again) = post_form(&provider.token_url(), &poll, None).await;
    assert_eq!(again["error"], "invalid_grant", "{again}");
    let error = pop3_login(&dovecot, "dana", access, AuthMethod::XOAuth2)
        .await
        .expect_err("revoked with the reused device code");
    assert!(error.is_auth(), "{error}");
    assert_eq!(
        events(&provider, DEVICE_CODE_GRANT),
        ["authorization_pending", "ok", "invalid_grant"]
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reusing_an_old_one_revokes_the_grant() {
    let provider = OidcProvider::start(OidcConfig::default().client(desktop_client()));
    let first = device_tokens(&provider, "dana").await;
    let old = text(&first, "refresh_token");

    let (status, second) = refresh(&provider, old).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let new = text(&second, "refresh_token");
    assert_ne!(new, old, "rotated");
    assert_ne!(text(&second, "access_token"), text(&first, "access_token"));

    let (status, reused) = refresh(&provider, old).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reused["error"], "invalid_grant", "{reused}");
    // Reuse is taken as theft: the whole grant is gone, the newest token with it.
    let (_, newest) = refresh(&provider, new).await;
    assert_eq!(newest["error"], "invalid_grant", "{newest}");

    assert_eq!(
        events(&provider, "refresh_token"),
        ["ok", "invalid_grant", "invalid_grant"]
    );
}

#[tokio::test]
async fn authorization_code_with_pkce_redirects_back_with_state_and_works_once() {
    let provider = OidcProvider::start(OidcConfig::default().client(desktop_client()));
    let verifier = "testkit-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let authorize = reqwest::Url::parse_with_params(
        &provider.authorize_url(),
        [
            ("response_type", "code"),
            ("client_id", "popdesk"),
            ("redirect_uri", CALLBACK),
            ("scope", "mail offline_access"),
            ("state", "st-42"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .expect("authorize URL");

    let location = provider
        .authorize(authorize.as_str(), "dana")
        .await
        .unwrap_or_else(|e| panic!("authorize: {e}\n{}", provider.log()));
    let redirect = reqwest::Url::parse(&location).expect("redirect URL");
    assert!(location.starts_with(CALLBACK), "{location}");
    let param = |name: &str| {
        redirect
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("state").as_deref(), Some("st-42"));
    let code = param("code").unwrap_or_else(|| panic!("no code in {location}"));

    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("client_id", "popdesk"),
        ("code_verifier", verifier),
    ];
    let (status, tokens) = post_form(&provider.token_url(), &exchange, None).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(
        tokens["access_token"].is_string() && tokens["refresh_token"].is_string(),
        "{tokens}"
    );
    let (status, again) = post_form(&provider.token_url(), &exchange, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(again["error"], "invalid_grant", "{again}");
    assert_eq!(
        events(&provider, "authorization_code"),
        ["ok", "invalid_grant"]
    );

    // Without the verifier's challenge the provider refuses to start at all.
    let mut no_pkce = authorize.clone();
    no_pkce.query_pairs_mut().clear().extend_pairs([
        ("response_type", "code"),
        ("client_id", "popdesk"),
        ("redirect_uri", CALLBACK),
        ("scope", "mail"),
        ("state", "st-43"),
    ]);
    let refused = provider
        .authorize(no_pkce.as_str(), "dana")
        .await
        .expect("an error goes back to the client");
    assert!(refused.contains("error=invalid_request"), "{refused}");
}

#[tokio::test]
async fn revoked_grants_refuse_refresh_and_their_access_tokens() {
    let provider = OidcProvider::start(OidcConfig::default().client(desktop_client()));
    let dana = device_tokens(&provider, "dana").await;
    let erik = device_tokens(&provider, "erik").await;
    let dovecot = dovecot_for(&provider, &["dana"]);
    pop3_login(
        &dovecot,
        "dana",
        text(&dana, "access_token"),
        AuthMethod::XOAuth2,
    )
    .await
    .unwrap_or_else(|e| panic!("before revocation: {e}\n{}", dovecot.log()));

    let revoked = provider.revoke_grants("dana").await.expect("revoke");
    assert_eq!(revoked, 1);
    let (status, refused) = refresh(&provider, text(&dana, "refresh_token")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"], "invalid_grant", "{refused}");
    let error = pop3_login(
        &dovecot,
        "dana",
        text(&dana, "access_token"),
        AuthMethod::XOAuth2,
    )
    .await
    .expect_err("the access token went with the grant");
    assert!(error.is_auth(), "{error}");
    // Other accounts keep theirs.
    let (status, fine) = refresh(&provider, text(&erik, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{fine}");
}

#[tokio::test]
async fn expired_access_tokens_no_longer_open_the_mailbox() {
    let provider = OidcProvider::start(
        OidcConfig {
            access_token_ttl_secs: 3,
            ..OidcConfig::default()
        }
        .client(
            OidcClient::confidential("daemon", "secret")
                .grant_types(&["client_credentials"])
                .mailbox_user("support"),
        ),
    );
    let (status, tokens) = post_form(
        &provider.token_url(),
        &[("grant_type", "client_credentials"), ("scope", "mail")],
        Some(("daemon", "secret")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["expires_in"], 3);
    let token = text(&tokens, "access_token");
    let dovecot = dovecot_for(&provider, &["support"]);
    pop3_login(&dovecot, "support", token, AuthMethod::XOAuth2)
        .await
        .unwrap_or_else(|e| panic!("while valid: {e}\n{}", dovecot.log()));

    tokio::time::sleep(Duration::from_millis(3500)).await;
    let error = pop3_login(&dovecot, "support", token, AuthMethod::XOAuth2)
        .await
        .expect_err("expired");
    assert!(error.is_auth(), "{error}");
}
