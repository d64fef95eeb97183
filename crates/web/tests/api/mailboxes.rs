//! Mailboxes through the API: CRUD with a write-only secret, validation, "test
//! connection" against a real Dovecot, "fetch now" through a real scheduler, runs.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use intake::schedule::{Scheduler, SchedulerConfig};
use intake::{Fetcher, Processor, ProcessorConfig, SystemClock};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use store::{RunCounts, RunOutcome};
use testkit::Dovecot;
use tokio_util::sync::CancellationToken;

use crate::common::{self, Desk, NOW, mail};

const SECRET: &str = "hunter2-but-longer";

fn new_mailbox(name: &str) -> Value {
    json!({
        "name": name,
        "host": "pop.example.com",
        "username": "support@example.com",
        "password": SECRET,
    })
}

#[tokio::test]
async fn mailboxes_are_created_read_changed_and_removed_without_showing_the_secret() {
    let desk = Desk::new().await;
    let admin = desk.admin_session().await;
    let created = desk
        .post("/api/v1/mailboxes")
        .cookie(&admin)
        .json(new_mailbox("support"))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let body = created.json();
    let id = body["id"].as_i64().expect("id");
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/mailboxes/{id}").as_str())
    );
    assert_eq!(body["port"], 995, "implicit TLS by default");
    assert_eq!(body["tls"], "implicit");
    assert_eq!(body["auth_method"], "auto");
    assert_eq!(body["policy"], "delete");
    assert_eq!(body["enabled"], true);
    assert_eq!(body["needs_attention"], Value::Null);
    assert_eq!(
        body["schedule"],
        Value::Null,
        "no scheduler in this process"
    );
    assert!(body.get("password").is_none());
    assert!(!created.text().contains(SECRET));
    let stored = desk.store.mailbox_secret(id).await.expect("secret");
    assert_eq!(stored.expose_secret(), SECRET);

    let url = format!("/api/v1/mailboxes/{id}");
    let read = desk.get(&url).cookie(&admin).send().await;
    assert_eq!(read.json()["name"], "support");
    assert!(!read.text().contains(SECRET));
    let list = desk.get("/api/v1/mailboxes").cookie(&admin).send().await;
    assert_eq!(list.json().as_array().expect("list").len(), 1);
    assert!(!list.text().contains(SECRET));

    desk.store
        .set_attention(id, Some("the server refused the login"), NOW)
        .await
        .expect("attention");
    assert_eq!(
        desk.get(&url).cookie(&admin).send().await.json()["needs_attention"],
        "the server refused the login"
    );
    let changed = desk
        .patch(&url)
        .cookie(&admin)
        .json(json!({
            "name": "helpdesk",
            "tls": "starttls",
            "port": 110,
            "password": "a new password",
            "policy": "keep",
            "delete_after_days": 30,
            // JSON Schema (and JavaScript) cannot tell 300.0 from 300.
            "poll_interval_secs": 300.0,
        }))
        .send()
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    let body = changed.json();
    assert_eq!(body["name"], "helpdesk");
    assert_eq!(body["tls"], "starttls");
    assert_eq!(body["policy"], "keep");
    assert_eq!(body["delete_after_days"], 30);
    assert_eq!(body["poll_interval_secs"], 300);
    assert_eq!(body["username"], "support@example.com", "untouched");
    assert_eq!(body["needs_attention"], Value::Null, "an edit clears it");
    assert!(!changed.text().contains("a new password"));
    let stored = desk.store.mailbox_secret(id).await.expect("secret");
    assert_eq!(stored.expose_secret(), "a new password");
    // null clears; leaving a field out keeps it.
    let cleared = desk
        .patch(&url)
        .cookie(&admin)
        .json(json!({"delete_after_days": null}))
        .send()
        .await
        .json();
    assert_eq!(cleared["delete_after_days"], Value::Null);
    assert_eq!(cleared["policy"], "keep");
    assert_eq!(
        desk.store
            .mailbox_secret(id)
            .await
            .expect("s")
            .expose_secret(),
        "a new password"
    );

    let removed = desk.delete(&url).cookie(&admin).send().await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    desk.get(&url)
        .cookie(&admin)
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    desk.delete(&url)
        .cookie(&admin)
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn mailbox_settings_are_validated() {
    let desk = Desk::new().await;
    let admin = desk.admin_session().await;
    let with = |change: Value| {
        let mut body = new_mailbox("support");
        for (key, value) in change.as_object().expect("object") {
            if value.is_null() {
                body.as_object_mut().expect("object").remove(key);
            } else {
                body[key] = value.clone();
            }
        }
        body
    };
    for body in [
        with(json!({"password": null})),
        with(json!({"name": ""})),
        with(json!({"host": "pop example com"})),
        with(json!({"host": ""})),
        with(json!({"username": ""})),
        with(json!({"password": ""})),
        with(json!({"port": 0})),
        with(json!({"port": 70000})),
        with(json!({"port": "995"})),
        with(json!({"tls": "ssl"})),
        with(json!({"auth_method": "kerberos"})),
        with(json!({"policy": "keep", "delete_after_days": 0})),
        with(json!({"policy": "keep", "delete_after_days": 36501})),
        // Out of range even where the delete policy would ignore it.
        with(json!({"delete_after_days": 0})),
        with(json!({"port": 995.5})),
        with(json!({"poll_interval_secs": 1})),
        with(json!({"batch_messages": 0})),
        with(json!({"colour": "blue"})),
    ] {
        let reply = desk
            .post("/api/v1/mailboxes")
            .cookie(&admin)
            .json(body.clone())
            .send()
            .await;
        reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    }
    assert!(desk.store.mailboxes().await.expect("list").is_empty());

    desk.post("/api/v1/mailboxes")
        .cookie(&admin)
        .json(new_mailbox("support"))
        .send()
        .await;
    desk.post("/api/v1/mailboxes")
        .cookie(&admin)
        .json(new_mailbox("support"))
        .send()
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    let other = desk
        .post("/api/v1/mailboxes")
        .cookie(&admin)
        .json(new_mailbox("sales"))
        .send()
        .await
        .json();
    let url = format!("/api/v1/mailboxes/{}", other["id"]);
    desk.patch(&url)
        .cookie(&admin)
        .json(json!({"name": "support"}))
        .send()
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    desk.patch(&url)
        .cookie(&admin)
        .json(json!({"poll_interval_secs": -5}))
        .send()
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    desk.patch("/api/v1/mailboxes/999")
        .cookie(&admin)
        .json(json!({"name": "x"}))
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

/// A desk with a Dovecot user holding two messages.
async fn with_dovecot() -> (Desk, Dovecot) {
    let dovecot = Dovecot::start();
    dovecot.add_user("support", "dovecot-password");
    dovecot.deliver(
        "support",
        &mail("d1@example.com", "alice@example.com", "One", "1"),
    );
    dovecot.deliver(
        "support",
        &mail("d2@example.com", "bob@example.com", "Two", "2"),
    );
    (Desk::new().await, dovecot)
}

async fn add_dovecot_mailbox(desk: &Desk, admin: &str, dovecot: &Dovecot, password: &str) -> i64 {
    let reply = desk
        .post("/api/v1/mailboxes")
        .cookie(admin)
        .json(json!({
            "name": format!("dovecot-{password}"),
            "host": dovecot.host(),
            "port": dovecot.pop3s_addr().port(),
            "username": "support",
            "password": password,
            "ca_file": dovecot.ca_pem_path().display().to_string(),
            "enabled": false,
        }))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    reply.json()["id"].as_i64().expect("id")
}

#[tokio::test]
async fn test_connection_reports_the_server_or_the_error_in_words() {
    let (desk, dovecot) = with_dovecot().await;
    let admin = desk.admin_session().await;
    let good = add_dovecot_mailbox(&desk, &admin, &dovecot, "dovecot-password").await;
    let bad = add_dovecot_mailbox(&desk, &admin, &dovecot, "wrong-password").await;

    let reply = desk
        .post(&format!("/api/v1/mailboxes/{good}/test"))
        .cookie(&admin)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["ok"], true, "{body}");
    assert_eq!(body["encrypted"], true);
    assert_eq!(body["messages"], 2);
    assert_eq!(body["has_uidl"], true);
    assert!(body["size"].as_u64().expect("size") > 0);
    assert!(body["auth_method"].is_string());
    assert!(
        body["capabilities"]
            .as_array()
            .expect("capabilities")
            .iter()
            .any(|c| c == "UIDL")
    );
    assert_eq!(
        dovecot.message_count("support"),
        2,
        "the test changes nothing"
    );

    let reply = desk
        .post(&format!("/api/v1/mailboxes/{bad}/test"))
        .cookie(&admin)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["ok"], false);
    let error = body["error"].as_str().expect("error");
    assert!(error.contains("refused the sign-in"), "{error}");
    let detail = body["detail"].as_str().expect("the technical detail");
    assert!(detail.contains("refused the login"), "{detail}");
    assert!(
        !error.contains("wrong-password"),
        "no secret in the error: {error}"
    );

    desk.post("/api/v1/mailboxes/999/test")
        .cookie(&admin)
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn fetch_now_without_a_scheduler_is_503() {
    let desk = Desk::new().await;
    let admin = desk.admin_session().await;
    let id = desk.mailbox("support", "support@example.com").await;
    desk.post(&format!("/api/v1/mailboxes/{id}/fetch"))
        .cookie(&admin)
        .send()
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    desk.post("/api/v1/mailboxes/999/fetch")
        .cookie(&admin)
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn fetch_now_runs_the_mailbox_through_the_scheduler() {
    let dovecot = Dovecot::start();
    dovecot.add_user("support", "dovecot-password");
    dovecot.deliver(
        "support",
        &mail("d1@example.com", "alice@example.com", "One", "1"),
    );
    let data = tempfile::TempDir::new().expect("temp dir");
    let store = store::Store::open(data.path(), None).await.expect("store");
    let clock = Arc::new(SystemClock);
    let processor = Processor::new(store.clone(), clock.clone(), ProcessorConfig::default());
    let fetcher = Fetcher::new(store.clone(), clock.clone()).with_processor(processor);
    let (scheduler, handle) =
        Scheduler::new(store.clone(), fetcher, clock, SchedulerConfig::default());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(scheduler.run(shutdown.clone()));
    let desk = Desk::on_store(store, data, common::config(), |state| {
        state.with_scheduler(handle)
    });
    let admin = desk.admin_session().await;
    // Disabled: only "fetch now" makes it run.
    let id = add_dovecot_mailbox(&desk, &admin, &dovecot, "dovecot-password").await;

    let reply = desk
        .post(&format!("/api/v1/mailboxes/{id}/fetch"))
        .cookie(&admin)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    assert_eq!(reply.json()["mailbox_id"], id);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let runs = loop {
        let runs = desk
            .get(&format!("/api/v1/mailboxes/{id}/runs"))
            .cookie(&admin)
            .send()
            .await
            .json();
        if runs[0]["outcome"] == "success" {
            break runs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no run finished: {runs}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(runs[0]["downloaded"], 1);
    assert_eq!(dovecot.message_count("support"), 0, "deleted after storing");
    let mailbox = desk
        .get(&format!("/api/v1/mailboxes/{id}"))
        .cookie(&admin)
        .send()
        .await
        .json();
    assert!(mailbox["schedule"].is_object(), "{mailbox}");
    assert_eq!(mailbox["schedule"]["mailbox_id"], id);

    shutdown.cancel();
    running.await.expect("scheduler stops");
}

#[tokio::test]
async fn runs_are_listed_newest_first() {
    let desk = Desk::new().await;
    let admin = desk.admin_session().await;
    let id = desk.mailbox("support", "support@example.com").await;
    for (i, outcome) in [RunOutcome::Success, RunOutcome::Transient]
        .into_iter()
        .enumerate()
    {
        let run = desk
            .store
            .start_run(id, NOW + i as i64)
            .await
            .expect("start");
        let counts = RunCounts {
            listed: 3,
            downloaded: 2,
            ..RunCounts::default()
        };
        let error = (outcome == RunOutcome::Transient).then_some("the server hung up");
        desk.store
            .finish_run(run, NOW + 10 + i as i64, &counts, outcome, error)
            .await
            .expect("finish");
    }
    let runs = desk
        .get(&format!("/api/v1/mailboxes/{id}/runs"))
        .cookie(&admin)
        .send()
        .await
        .json();
    assert_eq!(runs[0]["outcome"], "transient");
    assert_eq!(runs[0]["error"], "the server hung up");
    assert_eq!(runs[1]["outcome"], "success");
    assert_eq!(runs[1]["downloaded"], 2);
    let one = desk
        .get(&format!("/api/v1/mailboxes/{id}/runs?limit=1"))
        .cookie(&admin)
        .send()
        .await
        .json();
    assert_eq!(one.as_array().expect("runs").len(), 1);
    for query in ["limit=0", "limit=x", "limit=501"] {
        desk.get(&format!("/api/v1/mailboxes/{id}/runs?{query}"))
            .cookie(&admin)
            .send()
            .await
            .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    }
    desk.get("/api/v1/mailboxes/999/runs")
        .cookie(&admin)
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}
