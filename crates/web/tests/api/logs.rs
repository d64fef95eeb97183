//! No secret in any log line: every request that carries one (a password, a session
//! cookie, an API token, a mailbox password) is made with logging at TRACE, and the
//! captured output is searched for them.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use serde_json::json;
use store::Role;

use crate::common::{ADMIN, Desk, PASSWORD};

/// Log output collected in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_reaches_the_log() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // This test's runtime is single-threaded: everything the handlers log is caught.
    let _guard = tracing::subscriber::set_default(subscriber);

    let desk = Desk::new().await;
    desk.add_user(ADMIN, Role::Admin).await;
    // Tests on other threads register callsites meanwhile, and one registered while this
    // subscriber was being set can keep a cached "never": ask every callsite again.
    tracing::callsite::rebuild_interest_cache();
    let signed_in = desk
        .post("/api/v1/session")
        .json(json!({"email": ADMIN, "password": PASSWORD}))
        .send()
        .await;
    let session = signed_in.session_cookie().expect("session");
    desk.post("/api/v1/session")
        .json(json!({"email": ADMIN, "password": "a wrong password"}))
        .send()
        .await;
    let token = desk
        .post("/api/v1/tokens")
        .cookie(&session)
        .json(json!({"name": "ci", "role": "admin"}))
        .send()
        .await
        .json()["token"]
        .as_str()
        .expect("token")
        .to_string();
    let mailbox_secret = "mailbox-secret-4711";
    let mailbox = desk
        .post("/api/v1/mailboxes")
        .bearer(&token)
        .json(json!({
            "name": "support",
            "host": "127.0.0.1",
            "port": 1,
            "tls": "none",
            "allow_insecure_auth": true,
            "username": "support",
            "password": mailbox_secret,
        }))
        .send()
        .await;
    assert_eq!(mailbox.status, StatusCode::CREATED);
    let id = mailbox.json()["id"].as_i64().expect("id");
    desk.post(&format!("/api/v1/mailboxes/{id}/test"))
        .bearer(&token)
        .send()
        .await;
    desk.patch("/api/v1/session/password")
        .cookie(&session)
        .json(json!({"current_password": PASSWORD, "new_password": "another long secret"}))
        .send()
        .await;
    desk.get("/api/v1/tickets")
        .bearer("pd_not-a-real-token-but-still-secret")
        .send()
        .await;

    let log = String::from_utf8(captured.0.lock().expect("log").clone()).expect("utf-8");
    assert!(log.contains("request"), "something was logged: {log}");
    for secret in [
        PASSWORD,
        "a wrong password",
        "another long secret",
        session.as_str(),
        token.as_str(),
        &token[10..],
        mailbox_secret,
        "pd_not-a-real-token-but-still-secret",
    ] {
        assert!(!log.contains(secret), "{secret:?} is in the log:\n{log}");
    }
}
