//! /healthz, /metrics, security headers, errors for unknown routes and methods.

use axum::http::StatusCode;
use serde_json::json;
use store::{RunCounts, RunOutcome};
use web::WebConfig;

use crate::common::{self, Desk, NOW, mail};

#[tokio::test]
async fn healthz_says_whether_the_database_answers() {
    let desk = Desk::new().await;
    let reply = desk.get("/healthz").send().await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({"status": "ok", "database": "ok"}));
    desk.store.close().await;
    let reply = desk.get("/healthz").send().await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.json(),
        json!({"status": "unavailable", "database": "unreachable"})
    );
}

#[tokio::test]
async fn healthz_names_a_background_part_that_is_down_without_its_cause() {
    let board = intake::HealthBoard::new();
    let desk = Desk::with(common::config(), |state| state.with_health(board.clone())).await;
    board.set("scheduler", intake::PartHealth::Running);
    board.set("processor", intake::PartHealth::Running);
    let reply = desk.get("/healthz").send().await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"status": "ok", "database": "ok", "scheduler": "ok", "processor": "ok"})
    );

    board.set(
        "scheduler",
        intake::PartHealth::Restarting {
            cause: "it panicked: secret detail".into(),
        },
    );
    let reply = desk.get("/healthz").send().await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.json(),
        json!({"status": "degraded", "database": "ok", "scheduler": "restarting", "processor": "ok"})
    );

    board.set("scheduler", intake::PartHealth::Running);
    let reply = desk.get("/healthz").send().await;
    assert_eq!(reply.status, StatusCode::OK);

    // The database matters most: unavailable, whatever the parts say.
    board.set("processor", intake::PartHealth::Stopped);
    desk.store.close().await;
    let reply = desk.get("/healthz").send().await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.json(),
        json!({"status": "unavailable", "database": "unreachable", "scheduler": "ok", "processor": "stopped"})
    );
}

#[tokio::test]
async fn metrics_show_the_backlog_and_last_success_and_need_credentials() {
    let handle = web::install_metrics_recorder();
    // Calling it again is fine and gives the same recorder.
    let _again = web::install_metrics_recorder();
    let desk = Desk::with(common::config(), |state| state.with_metrics(handle.clone())).await;
    let support = desk.mailbox("support", "support@example.com").await;
    desk.deliver(
        support,
        &mail("m1@example.com", "a@example.com", "One", "1"),
    )
    .await;
    desk.deliver(
        support,
        &mail("m2@example.com", "a@example.com", "Two", "2"),
    )
    .await;
    let run = desk.store.start_run(support, NOW).await.expect("start");
    desk.store
        .finish_run(
            run,
            NOW + 1500,
            &RunCounts::default(),
            RunOutcome::Success,
            None,
        )
        .await
        .expect("finish");

    desk.get("/metrics")
        .send()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    let (_, token) = desk.token("agent").await;
    let reply = desk.get("/metrics").bearer(&token).send().await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(
        reply
            .header("content-type")
            .expect("type")
            .starts_with("text/plain")
    );
    let text = reply.text();
    assert!(text.contains("popdesk_processing_backlog 2"), "{text}");
    assert!(
        text.contains(
            "popdesk_mailbox_last_success_timestamp_seconds{mailbox=\"support\"} 1800000001.5"
        ),
        "{text}"
    );
    // Requests are counted by their route pattern, not their path.
    assert!(
        text.contains(
            "popdesk_http_requests_total{method=\"POST\",route=\"/api/v1/tokens\",status=\"201\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("popdesk_http_request_duration_seconds_bucket"),
        "{text}"
    );

    let public = Desk::with(
        WebConfig {
            metrics_public: true,
            ..common::config()
        },
        |state| state.with_metrics(handle),
    )
    .await;
    assert_eq!(public.get("/metrics").send().await.status, StatusCode::OK);
    // Without a recorder there is nothing to show.
    let without = Desk::new().await;
    let (_, token) = without.token("admin").await;
    without
        .get("/metrics")
        .bearer(&token)
        .send()
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
}

#[tokio::test]
async fn every_response_has_the_security_headers() {
    let desk = Desk::new().await;
    let admin = desk.admin_session().await;
    for reply in [
        desk.get("/healthz").send().await,
        desk.get("/api/v1/tickets").send().await,
        desk.get("/api/v1/tickets").cookie(&admin).send().await,
        desk.get("/api/v1/nothing-here").send().await,
        desk.get("/api/v1/openapi.json").send().await,
        desk.get("/metrics").send().await,
    ] {
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(
            reply.header("content-security-policy"),
            Some("default-src 'none'; frame-ancestors 'none'")
        );
        assert!(reply.header("x-request-id").is_some());
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let desk = Desk::new().await;
    let admin = desk.admin_session().await;
    desk.get("/api/v1/nothing-here")
        .cookie(&admin)
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    // Unknown paths are 404 with or without credentials (no 401 that hides them).
    desk.get("/api/v1/nothing-here")
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let reply = desk.delete("/api/v1/tickets").cookie(&admin).send().await;
    reply.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert!(reply.header("allow").expect("Allow").contains("GET"));
    desk.call(axum::http::Method::PUT, "/healthz")
        .send()
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn oversized_bodies_are_413_everywhere() {
    let desk = Desk::with(
        WebConfig {
            max_body_bytes: 1000,
            ..common::config()
        },
        |s| s,
    )
    .await;
    let admin = desk.admin_session().await;
    let big = json!({"email": "x@example.com", "password": "p".repeat(2000)});
    desk.post("/api/v1/session")
        .json(big.clone())
        .send()
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    desk.post("/api/v1/setup")
        .json(big)
        .send()
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    desk.post("/api/v1/tokens")
        .cookie(&admin)
        .json(json!({"name": "n".repeat(2000), "role": "agent"}))
        .send()
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[tokio::test]
async fn a_request_that_takes_too_long_is_stopped_with_408() {
    // A "POP3 server" that accepts and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let _held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let desk = Desk::with(
        WebConfig {
            request_timeout: std::time::Duration::from_millis(300),
            ..common::config()
        },
        |s| s,
    )
    .await;
    let admin = desk.admin_session().await;
    let settings = store::MailboxSettings {
        name: "silent".into(),
        host: "127.0.0.1".into(),
        port,
        tls: store::TlsMode::None,
        username: "x".into(),
        ..store::MailboxSettings::default()
    };
    let id = desk
        .store
        .add_mailbox(
            &settings,
            &secrecy::SecretString::from("x".to_string()),
            NOW,
        )
        .await
        .expect("add")
        .id;
    let started = std::time::Instant::now();
    desk.post(&format!("/api/v1/mailboxes/{id}/test"))
        .cookie(&admin)
        .send()
        .await
        .assert_error(StatusCode::REQUEST_TIMEOUT, "timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
