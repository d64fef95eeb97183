//! Sign-in, sessions, API tokens, the setup, the cross-site check.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;
use store::Role;
use web::{SignInLimit, WebConfig};

use crate::common::{self, ADMIN, AGENT, Desk, NOW, PASSWORD};
use crate::postgres::on_both_backends;

#[tokio::test]
async fn sign_in_sets_a_hardened_cookie_and_says_who_signed_in() {
    let desk = Desk::new().await;
    desk.add_user(AGENT, Role::Agent).await;
    let reply = desk
        .post("/api/v1/session")
        .json(json!({"email": " Agent@Example.com ", "password": PASSWORD}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let cookie = reply.set_cookie().expect("set-cookie").to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(cookie.contains("Max-Age=604800"), "seven days: {cookie}");
    assert!(
        !cookie.contains("Secure"),
        "no Secure over plain http: {cookie}"
    );
    let body = reply.json();
    assert_eq!(body["role"], "agent");
    assert_eq!(body["user"]["email"], AGENT);
    assert!(body.to_string().find("password").is_none(), "{body}");

    let session = reply.session_cookie().expect("session");
    assert_eq!(session.len(), 43, "32 random bytes, base64url");
    let me = desk.get("/api/v1/session").cookie(&session).send().await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["user"]["email"], AGENT);
    assert_eq!(me.json()["token"], serde_json::Value::Null);
}

#[tokio::test]
async fn secure_cookies_behind_https() {
    let desk = Desk::with(
        WebConfig {
            secure_cookies: true,
            ..common::config()
        },
        |s| s,
    )
    .await;
    desk.add_user(AGENT, Role::Agent).await;
    let reply = desk
        .post("/api/v1/session")
        .json(json!({"email": AGENT, "password": PASSWORD}))
        .send()
        .await;
    assert!(reply.set_cookie().expect("cookie").contains("Secure"));
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_address_answer_alike() {
    let desk = Desk::new().await;
    desk.add_user(AGENT, Role::Agent).await;
    let wrong = desk
        .post("/api/v1/session")
        .json(json!({"email": AGENT, "password": "not the password"}))
        .send()
        .await;
    let unknown = desk
        .post("/api/v1/session")
        .json(json!({"email": "nobody@example.com", "password": PASSWORD}))
        .send()
        .await;
    wrong.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    unknown.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(wrong.body, unknown.body, "the same sentence for both");
    assert!(wrong.set_cookie().is_none() && unknown.set_cookie().is_none());

    let disabled = desk.add_user("gone@example.com", Role::Agent).await;
    desk.store
        .update_user(disabled.id, None, Role::Agent, true, NOW)
        .await
        .expect("disable");
    let reply = desk
        .post("/api/v1/session")
        .json(json!({"email": "gone@example.com", "password": PASSWORD}))
        .send()
        .await;
    assert_eq!(reply.body, unknown.body, "a disabled user is not told so");
}

#[tokio::test]
async fn sign_in_failures_are_limited_per_address() {
    let desk = Desk::new().await;
    desk.add_user(AGENT, Role::Agent).await;
    for attempt in 0..5 {
        let reply = desk
            .post("/api/v1/session")
            .client_ip(&format!("198.51.100.{attempt}"))
            .json(json!({"email": AGENT, "password": "guess number one"}))
            .send()
            .await;
        reply.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // Now even the right password is refused, from anywhere, until the window passes.
    let locked = desk
        .post("/api/v1/session")
        .client_ip("203.0.113.99")
        .json(json!({"email": AGENT, "password": PASSWORD}))
        .send()
        .await;
    locked.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry_after: u64 = locked
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=15 * 60).contains(&retry_after), "{retry_after}");
    // Unknown addresses are limited the same way (nothing tells them apart).
    for _ in 0..5 {
        desk.post("/api/v1/session")
            .json(json!({"email": "ghost@example.com", "password": "guess number one"}))
            .send()
            .await;
    }
    desk.post("/api/v1/session")
        .json(json!({"email": "ghost@example.com", "password": "guess number one"}))
        .send()
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");

    desk.clock.set(NOW + 16 * 60 * 1000);
    desk.sign_in(AGENT).await;
}

#[tokio::test]
async fn sign_in_failures_are_limited_per_network() {
    let desk = Desk::with(
        WebConfig {
            sign_in_limit: SignInLimit {
                per_address: 5,
                per_network: 3,
                window: Duration::from_secs(900),
            },
            ..common::config()
        },
        |s| s,
    )
    .await;
    desk.add_user(AGENT, Role::Agent).await;
    for n in 0..3 {
        desk.post("/api/v1/session")
            .client_ip("2001:db8:1:2::10")
            .json(json!({"email": format!("user{n}@example.com"), "password": "a guess of ten"}))
            .send()
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // Another address in the same /64 is the same client.
    desk.post("/api/v1/session")
        .client_ip("2001:db8:1:2::99")
        .json(json!({"email": AGENT, "password": PASSWORD}))
        .send()
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    // Another network signs in fine.
    let reply = desk
        .post("/api/v1/session")
        .client_ip("2001:db8:9:9::1")
        .json(json!({"email": AGENT, "password": PASSWORD}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

async fn a_session_ends_when_it_expires_or_the_user_signs_out(desk: Desk) {
    let session = desk.agent_session().await;
    // In use (more often than the idle timeout), a session lasts until its expiry and
    // not a moment longer.
    let hour = 3600 * 1000;
    let mut at = NOW;
    while at < NOW + 7 * 24 * hour - 1000 {
        at = (at + 11 * hour).min(NOW + 7 * 24 * hour - 1000);
        desk.clock.set(at);
        assert_eq!(
            desk.get("/api/v1/tickets")
                .cookie(&session)
                .send()
                .await
                .status,
            StatusCode::OK
        );
    }
    desk.clock.set(NOW + 7 * 24 * 3600 * 1000 + 1);
    desk.get("/api/v1/tickets")
        .cookie(&session)
        .send()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");

    let session = desk.sign_in(AGENT).await;
    let out = desk.delete("/api/v1/session").cookie(&session).send().await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let removal = out.set_cookie().expect("removal cookie");
    assert!(
        removal.starts_with("popdesk_session=;") && removal.contains("Max-Age=0"),
        "{removal}"
    );
    desk.get("/api/v1/session")
        .cookie(&session)
        .send()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    // A token has no session to end, and says so.
    let (_, token) = desk.token("agent").await;
    desk.delete("/api/v1/session")
        .bearer(&token)
        .send()
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions() {
    let desk = Desk::new().await;
    let admin = desk.admin_session().await;
    let agent = desk.agent_session().await;
    let id = desk
        .store
        .user_by_email(AGENT)
        .await
        .expect("read")
        .expect("agent")
        .id;
    let reply = desk
        .patch(&format!("/api/v1/users/{id}"))
        .cookie(&admin)
        .json(json!({"disabled": true}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    desk.get("/api/v1/tickets")
        .cookie(&agent)
        .send()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn cookie_requests_from_other_sites_are_refused() {
    let desk = Desk::new().await;
    let admin = desk.admin_session().await;
    let body = json!({"name": "from elsewhere", "role": "agent"});
    // A form on evil.example posting to popdesk with the victim's cookie.
    desk.post("/api/v1/tokens")
        .cookie(&admin)
        .header("host", "desk.example.com")
        .header("origin", "https://evil.example")
        .json(body.clone())
        .send()
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    desk.post("/api/v1/tokens")
        .cookie(&admin)
        .header("sec-fetch-site", "cross-site")
        .json(body.clone())
        .send()
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    // Signing in is checked too (login CSRF would sign the victim into our account).
    desk.post("/api/v1/session")
        .header("sec-fetch-site", "cross-site")
        .json(json!({"email": ADMIN, "password": PASSWORD}))
        .send()
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    assert!(
        desk.store.api_tokens().await.expect("tokens").is_empty(),
        "nothing was created"
    );
    // popdesk's own pages pass.
    let same_origin = desk
        .post("/api/v1/tokens")
        .cookie(&admin)
        .header("host", "desk.example.com")
        .header("origin", "https://desk.example.com")
        .json(body.clone())
        .send()
        .await;
    assert_eq!(same_origin.status, StatusCode::CREATED);
    let fetch = desk
        .post("/api/v1/tokens")
        .cookie(&admin)
        .header("sec-fetch-site", "same-origin")
        .json(body.clone())
        .send()
        .await;
    assert_eq!(fetch.status, StatusCode::CREATED);
    // A bearer request is not a browser's forgery, whatever its headers say.
    let (_, token) = desk.token("admin").await;
    let bearer = desk
        .post("/api/v1/tokens")
        .bearer(&token)
        .header("sec-fetch-site", "cross-site")
        .json(body)
        .send()
        .await;
    assert_eq!(bearer.status, StatusCode::CREATED);
    // Reading is never refused.
    let read = desk
        .get("/api/v1/tokens")
        .cookie(&admin)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await;
    assert_eq!(read.status, StatusCode::OK);
}

#[tokio::test]
async fn a_token_is_shown_once_and_stored_only_as_a_hash() {
    let desk = Desk::new().await;
    let admin = desk.admin_session().await;
    let created = desk
        .post("/api/v1/tokens")
        .cookie(&admin)
        .json(json!({"name": "monitoring", "role": "agent"}))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let body = created.json();
    let token = body["token"].as_str().expect("token").to_string();
    assert!(token.starts_with("pd_") && token.len() == 46, "{token}");
    assert_eq!(body["role"], "agent");
    assert_eq!(body["prefix"], &token[..10]);
    let admin_id = desk
        .store
        .user_by_email(ADMIN)
        .await
        .expect("r")
        .expect("a")
        .id;
    assert_eq!(body["created_by"], admin_id);

    let list = desk.get("/api/v1/tokens").cookie(&admin).send().await;
    assert_eq!(list.json()[0]["name"], "monitoring");
    assert!(
        !list.text().contains(&token),
        "the list never shows the secret"
    );
    assert!(list.json()[0].get("token").is_none());

    // Nothing on disk holds the token: not the database, not its WAL.
    desk.store.close().await;
    let mut seen_hash = false;
    let hash = sha256_hex(&token);
    for entry in walk(desk.data.path()) {
        let bytes = std::fs::read(&entry).expect("read");
        assert!(
            !contains(&bytes, token.as_bytes()),
            "{} holds the token",
            entry.display()
        );
        seen_hash |= contains(&bytes, hash.as_bytes());
    }
    assert!(seen_hash, "its sha256 is what is stored");
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

async fn a_revoked_or_made_up_token_is_refused(desk: Desk) {
    let (id, token) = desk.token("agent").await;
    assert_eq!(
        desk.get("/api/v1/tickets")
            .bearer(&token)
            .send()
            .await
            .status,
        StatusCode::OK
    );
    let admin = desk.admin_session().await;
    assert_eq!(
        desk.delete(&format!("/api/v1/tokens/{id}"))
            .cookie(&admin)
            .send()
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    desk.get("/api/v1/tickets")
        .bearer(&token)
        .send()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    // Revoking again: there is no live token with that id.
    desk.delete(&format!("/api/v1/tokens/{id}"))
        .cookie(&admin)
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let revoked = desk
        .get("/api/v1/tokens")
        .cookie(&admin)
        .send()
        .await
        .json();
    assert_eq!(revoked[0]["revoked_at"], NOW);

    for header in [
        "Bearer pd_madeup",
        "Bearer ",
        "Basic YWRtaW46YWRtaW4=",
        "pd_no_scheme",
    ] {
        desk.get("/api/v1/tickets")
            .header("authorization", header)
            .send()
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // A bad token is refused even with a good cookie beside it: no silent fallback.
    desk.get("/api/v1/tickets")
        .cookie(&admin)
        .bearer("pd_madeup")
        .send()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn token_requests_are_validated() {
    let desk = Desk::new().await;
    let admin = desk.admin_session().await;
    for body in [
        json!({"name": "x", "role": "agent", "expires_in_days": 0}),
        json!({"name": "x", "role": "agent", "expires_in_days": 3651}),
        json!({"name": "x", "role": "agent", "expires_in_days": -1}),
        json!({"name": "", "role": "agent"}),
        json!({"name": "x".repeat(101), "role": "agent"}),
        json!({"name": "x", "role": "root"}),
        json!({"name": "x"}),
        json!({"name": "x", "role": "agent", "secret": "mine"}),
    ] {
        desk.post("/api/v1/tokens")
            .cookie(&admin)
            .json(body)
            .send()
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    }
    desk.delete("/api/v1/tokens/999")
        .cookie(&admin)
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    desk.delete("/api/v1/tokens/abc")
        .cookie(&admin)
        .send()
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn setup_creates_the_first_admin_only_once() {
    let desk = Desk::new().await;
    let code = desk.setup_code.clone();
    let status = desk.get("/api/v1/setup").send().await;
    assert_eq!(status.json(), json!({"needed": true}));
    desk.post("/api/v1/setup")
        .json(json!({"email": "boss@example.com", "password": "short", "setup_code": code}))
        .send()
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    desk.post("/api/v1/setup")
        .json(json!({"email": "not-an-address", "password": PASSWORD, "setup_code": code}))
        .send()
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let created = desk
        .post("/api/v1/setup")
        .json(json!({
            "email": "boss@example.com", "password": PASSWORD, "name": "The Boss",
            // Typed the way people type codes.
            "setup_code": code.to_lowercase().replace('-', " "),
        }))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(created.json()["role"], "admin");
    assert_eq!(created.json()["name"], "The Boss");
    let session = created.session_cookie().expect("signed in");
    let me = desk.get("/api/v1/session").cookie(&session).send().await;
    assert_eq!(me.json()["role"], "admin");

    assert_eq!(
        desk.get("/api/v1/setup").send().await.json(),
        json!({"needed": false})
    );
    desk.post("/api/v1/setup")
        .json(json!({"email": "intruder@example.com", "password": PASSWORD, "setup_code": code}))
        .send()
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    assert_eq!(desk.store.count_users().await.expect("count"), 1);
}

/// Until the first admin exists, whoever reaches the port could claim the install: the
/// setup needs the one-time code from the log (or the data folder), compared in
/// constant time, with wrong guesses limited like sign-ins.
#[tokio::test]
async fn setup_without_the_setup_code_is_refused() {
    let desk = Desk::new().await;
    // The file `popdesk serve` writes for an admin who missed the log; setup removes it.
    std::fs::write(
        desk.data.path().join(web::SETUP_CODE_FILE),
        &desk.setup_code,
    )
    .expect("write");
    let missing = desk
        .post("/api/v1/setup")
        .json(json!({"email": "eve@example.com", "password": PASSWORD}))
        .send()
        .await;
    assert_eq!(
        missing.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        missing.text()
    );
    assert!(missing.text().contains("setup_code"), "{}", missing.text());
    let wrong = desk
        .post("/api/v1/setup")
        .json(json!({"email": "eve@example.com", "password": PASSWORD, "setup_code": "AAAA-AAAA-AAAA"}))
        .send()
        .await;
    wrong.assert_error(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        wrong.json()["error"]["field"],
        "setup_code",
        "{}",
        wrong.text()
    );
    let sentence = wrong.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        sentence.contains("setup code") && sentence.contains("log"),
        "{sentence}"
    );
    desk.post("/api/v1/setup")
        .json(json!({"email": "eve@example.com", "password": PASSWORD, "setup_code": ""}))
        .send()
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(desk.store.count_users().await.expect("count"), 0);

    // Guessing is limited per client like sign-ins: after 5 wrong codes, 429, even with
    // the right one; another client is not locked out by it.
    for _ in 0..3 {
        desk.post("/api/v1/setup")
            .json(json!({"email": "eve@example.com", "password": PASSWORD, "setup_code": "BBBB-BBBB-BBBB"}))
            .send()
            .await
            .assert_error(StatusCode::FORBIDDEN, "forbidden");
    }
    let limited = desk
        .post("/api/v1/setup")
        .json(json!({"email": "eve@example.com", "password": PASSWORD, "setup_code": desk.setup_code}))
        .send()
        .await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.text()
    );
    assert_eq!(desk.store.count_users().await.expect("count"), 0);

    let created = desk
        .post("/api/v1/setup")
        .client_ip("198.51.100.7")
        .json(json!({"email": "boss@example.com", "password": PASSWORD, "setup_code": desk.setup_code}))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert!(
        !desk.data.path().join(web::SETUP_CODE_FILE).exists(),
        "the setup code file goes once an admin exists"
    );
}

on_both_backends!(
    racing_setups_make_one_admin,
    a_revoked_or_made_up_token_is_refused,
    a_session_ends_when_it_expires_or_the_user_signs_out,
);

async fn racing_setups_make_one_admin(desk: Desk) {
    let setup = |n: u32| {
        desk.post("/api/v1/setup")
            .json(json!({
                "email": format!("racer{n}@example.com"),
                "password": PASSWORD,
                "setup_code": desk.setup_code,
            }))
            .send()
    };
    // Polled together: all four pass the "no user yet" check before any has hashed
    // its password, so only the store's atomic insert keeps it to one admin.
    let (a, b, c, d) = tokio::join!(setup(1), setup(2), setup(3), setup(4));
    let replies = [a, b, c, d];
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1);
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        reply.assert_error(StatusCode::CONFLICT, "conflict");
    }
    assert_eq!(desk.store.count_users().await.expect("count"), 1);
}

#[tokio::test]
async fn a_user_changes_their_own_password() {
    let desk = Desk::new().await;
    let session = desk.agent_session().await;
    let other_browser = desk.sign_in(AGENT).await;
    desk.patch("/api/v1/session/password")
        .cookie(&session)
        .json(
            json!({"current_password": "wrong wrong wrong", "new_password": "a brand new secret"}),
        )
        .send()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    desk.patch("/api/v1/session/password")
        .cookie(&session)
        .json(json!({"current_password": PASSWORD, "new_password": "short"}))
        .send()
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let changed = desk
        .patch("/api/v1/session/password")
        .cookie(&session)
        .json(json!({"current_password": PASSWORD, "new_password": "a brand new secret"}))
        .send()
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.text());
    let fresh = changed.session_cookie().expect("a new session here");
    assert_eq!(
        desk.get("/api/v1/session")
            .cookie(&fresh)
            .send()
            .await
            .status,
        StatusCode::OK
    );
    for old in [&session, &other_browser] {
        desk.get("/api/v1/session")
            .cookie(old)
            .send()
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let reply = desk
        .post("/api/v1/session")
        .json(json!({"email": AGENT, "password": "a brand new secret"}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

/// Issue 15: each user reads and changes their own preferences; an unknown time zone is
/// refused naming the field, and nothing changes; an API token has none.
#[tokio::test]
async fn a_user_reads_and_changes_their_own_preferences() {
    let desk = Desk::new().await;
    let session = desk.agent_session().await;
    let read = desk
        .get("/api/v1/session/preferences")
        .cookie(&session)
        .send()
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text());
    assert_eq!(
        read.json(),
        json!({"time_zone": "UTC", "notify_new_ticket": false,
               "notify_customer_reply": true, "notify_assigned": true})
    );
    let changed = desk
        .patch("/api/v1/session/preferences")
        .cookie(&session)
        .json(json!({"time_zone": "america/new_york", "notify_new_ticket": true}))
        .send()
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    assert_eq!(
        changed.json(),
        json!({"time_zone": "America/New_York", "notify_new_ticket": true,
               "notify_customer_reply": true, "notify_assigned": true})
    );
    let refused = desk
        .patch("/api/v1/session/preferences")
        .cookie(&session)
        .json(json!({"time_zone": "Europe/Atlantis", "notify_assigned": false}))
        .send()
        .await;
    refused.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(
        refused.json()["error"]["field"],
        "time_zone",
        "{}",
        refused.text()
    );
    desk.patch("/api/v1/session/preferences")
        .cookie(&session)
        .json(json!({"colour": "blue"}))
        .send()
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let read = desk
        .get("/api/v1/session/preferences")
        .cookie(&session)
        .send()
        .await;
    assert_eq!(read.json()["time_zone"], "America/New_York");
    assert_eq!(read.json()["notify_assigned"], true, "nothing changed");
    let (_, token) = desk.token("agent").await;
    desk.get("/api/v1/session/preferences")
        .bearer(&token)
        .send()
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
}

/// A token with a lifetime stops working when it ends; the list says when.
#[tokio::test]
async fn a_token_with_a_lifetime_stops_at_its_end() {
    let desk = Desk::new().await;
    let admin = desk.admin_session().await;
    let reply = desk
        .post("/api/v1/tokens")
        .cookie(&admin)
        .json(json!({"name": "short", "role": "agent", "expires_in_days": 7}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let body = reply.json();
    let week = 7 * 24 * 3600 * 1000;
    assert_eq!(body["expires_at"], NOW + week);
    let token = body["token"].as_str().expect("token").to_string();
    let (_, forever) = desk.token("agent").await;

    desk.clock.set(NOW + week - 1);
    let status = |token: String| {
        let desk = &desk;
        async move {
            desk.get("/api/v1/tickets")
                .bearer(&token)
                .send()
                .await
                .status
        }
    };
    assert_eq!(status(token.clone()).await, StatusCode::OK);
    desk.clock.set(NOW + week);
    desk.get("/api/v1/tickets")
        .bearer(&token)
        .send()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    // Without a lifetime a token keeps working.
    desk.clock.set(NOW + 100 * week);
    assert_eq!(status(forever).await, StatusCode::OK);
}

/// A token never does more than the person who made it may do now.
#[tokio::test]
async fn a_tokens_power_follows_its_maker_demoted_disabled_or_removed() {
    let desk = Desk::new().await;
    let admin = desk.admin_session().await;
    let boss = desk.add_user("boss@example.com", Role::Admin).await;
    let boss_session = desk.sign_in("boss@example.com").await;
    let reply = desk
        .post("/api/v1/tokens")
        .cookie(&boss_session)
        .json(json!({"name": "ops", "role": "admin"}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let token = reply.json()["token"].as_str().expect("token").to_string();
    // A token made with that token answers to the same person.
    let reply = desk
        .post("/api/v1/tokens")
        .bearer(&token)
        .json(json!({"name": "child", "role": "admin"}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(reply.json()["created_by"], boss.id);
    let child = reply.json()["token"].as_str().expect("token").to_string();
    let users_status = |token: String| {
        let desk = &desk;
        async move { desk.get("/api/v1/users").bearer(&token).send().await.status }
    };
    assert_eq!(users_status(token.clone()).await, StatusCode::OK);

    let change = |body: serde_json::Value| {
        let (desk, admin) = (&desk, &admin);
        async move {
            let reply = desk
                .patch(&format!("/api/v1/users/{}", boss.id))
                .cookie(admin)
                .json(body)
                .send()
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        }
    };
    // Demoted: the admin tokens act as an agent's.
    change(json!({"role": "agent"})).await;
    for token in [&token, &child] {
        desk.get("/api/v1/users")
            .bearer(token)
            .send()
            .await
            .assert_error(StatusCode::FORBIDDEN, "forbidden");
        assert_eq!(
            desk.get("/api/v1/tickets")
                .bearer(token)
                .send()
                .await
                .status,
            StatusCode::OK
        );
    }
    change(json!({"role": "admin"})).await;
    assert_eq!(users_status(token.clone()).await, StatusCode::OK);
    // Disabled: the tokens stop working.
    change(json!({"disabled": true})).await;
    for token in [&token, &child] {
        desk.get("/api/v1/tickets")
            .bearer(token)
            .send()
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    change(json!({"disabled": false})).await;
    assert_eq!(users_status(token.clone()).await, StatusCode::OK);
    // Removed: the tokens are revoked for good.
    let reply = desk
        .delete(&format!("/api/v1/users/{}", boss.id))
        .cookie(&admin)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    for token in [&token, &child] {
        desk.get("/api/v1/tickets")
            .bearer(token)
            .send()
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let list = desk
        .get("/api/v1/tokens")
        .cookie(&admin)
        .send()
        .await
        .json();
    assert!(
        list.as_array()
            .expect("tokens")
            .iter()
            .all(|t| t["revoked_at"] == NOW),
        "{list}"
    );
}

/// Signing in again in a browser ends the session its cookie carried; another browser's
/// session is left alone.
#[tokio::test]
async fn signing_in_again_ends_the_browsers_previous_session() {
    let desk = Desk::new().await;
    desk.add_user(AGENT, Role::Agent).await;
    let first = desk.sign_in(AGENT).await;
    let elsewhere = desk.sign_in(AGENT).await;
    let reply = desk
        .post("/api/v1/session")
        .cookie(&first)
        .json(json!({"email": AGENT, "password": PASSWORD}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let second = reply.session_cookie().expect("a new session cookie");
    assert_ne!(second, first);
    desk.get("/api/v1/session")
        .cookie(&first)
        .send()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    for live in [&second, &elsewhere] {
        assert_eq!(
            desk.get("/api/v1/session").cookie(live).send().await.status,
            StatusCode::OK
        );
    }
}

/// A session unused for the idle timeout ends; one in use lives on.
#[tokio::test]
async fn a_session_left_idle_ends() {
    let config = WebConfig {
        session_idle_timeout: Duration::from_secs(30 * 60),
        ..common::config()
    };
    let desk = Desk::with(config, |state| state).await;
    desk.add_user(AGENT, Role::Agent).await;
    let busy = desk.sign_in(AGENT).await;
    let idle = desk.sign_in(AGENT).await;
    let minute = 60 * 1000;
    for step in 1..=4 {
        desk.clock.set(NOW + step * 20 * minute);
        assert_eq!(
            desk.get("/api/v1/session")
                .cookie(&busy)
                .send()
                .await
                .status,
            StatusCode::OK,
            "used every 20 minutes"
        );
    }
    desk.get("/api/v1/session")
        .cookie(&idle)
        .send()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

/// A signed-in request that changes something and names neither its site nor its origin
/// is refused, body-less POSTs and other content types included; a bearer request, a
/// read and an anonymous sign-in are not.
#[tokio::test]
async fn signed_in_changes_without_sec_fetch_site_or_origin_are_refused() {
    let desk = Desk::new().await;
    let admin = desk.admin_session().await;
    let support = desk.mailbox("support", "support@example.com").await;
    let raw_id = desk
        .deliver(
            support,
            &common::mail("x@example.com", "a@example.com", "Hi", "Hello"),
        )
        .await;
    for (method, uri) in [
        ("POST", format!("/api/v1/messages/{raw_id}/reprocess")),
        ("POST", format!("/api/v1/mailboxes/{support}/fetch")),
        ("DELETE", "/api/v1/session".to_string()),
    ] {
        let method: axum::http::Method = method.parse().expect("method");
        desk.call(method.clone(), &uri)
            .cookie(&admin)
            .body("text/plain", "")
            .bare()
            .send()
            .await
            .assert_error(StatusCode::FORBIDDEN, "forbidden");
    }
    desk.post("/api/v1/tokens")
        .cookie(&admin)
        .json(json!({"name": "x", "role": "agent"}))
        .bare()
        .send()
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    assert!(desk.store.api_tokens().await.expect("tokens").is_empty());
    // Still signed in: the refused sign-out did nothing.
    assert_eq!(
        desk.get("/api/v1/session")
            .cookie(&admin)
            .bare()
            .send()
            .await
            .status,
        StatusCode::OK
    );
    // A bearer token needs no browser headers.
    let (_, token) = desk.token("admin").await;
    let reply = desk
        .post("/api/v1/tokens")
        .bearer(&token)
        .json(json!({"name": "y", "role": "agent"}))
        .bare()
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    // Signing in from a script (no cookie yet) still works.
    let reply = desk
        .post("/api/v1/session")
        .json(json!({"email": ADMIN, "password": PASSWORD}))
        .bare()
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}
