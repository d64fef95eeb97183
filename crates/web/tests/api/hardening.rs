//! What an anonymous client could do to the service before issue 14's hardening: guess
//! passwords in parallel past the limit, exhaust memory with argon2, share one bucket
//! behind a proxy, grow the metrics without end, and get 500s out of U+0000 and long
//! searches.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use store::Role;
use tower::ServiceExt as _;
use web::{PasswordCost, SignInLimit, WebConfig};

use crate::common::{self, AGENT, Desk, PASSWORD};
use crate::postgres::on_both_backends;

/// The process's peak resident memory (VmHWM), in MiB.
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib / 1024)
}

/// A sign-in request as from `ip` (the socket's peer), optionally through a proxy.
fn sign_in_request(
    email: &str,
    password: &str,
    ip: &str,
    forwarded: Option<&str>,
) -> Request<Body> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/session")
        .header("content-type", "application/json");
    if let Some(forwarded) = forwarded {
        builder = builder.header("x-forwarded-for", forwarded);
    }
    let mut request = builder
        .body(Body::from(
            json!({"email": email, "password": password}).to_string(),
        ))
        .expect("request");
    request
        .extensions_mut()
        .insert(ConnectInfo(std::net::SocketAddr::new(
            ip.parse().expect("ip"),
            40000,
        )));
    request
}

/// Sends all the requests at once; the statuses in order.
async fn all_at_once(app: &axum::Router, requests: Vec<Request<Body>>) -> Vec<StatusCode> {
    let barrier = Arc::new(tokio::sync::Barrier::new(requests.len()));
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let app = app.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                app.oneshot(request).await.expect("infallible").status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("task"));
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_guesses_verify_at_most_five_and_memory_stays_bounded() {
    // The real argon2 cost (19 MiB per check), so memory shows what production does.
    let desk = Desk::with(
        WebConfig {
            password_cost: PasswordCost::default(),
            password_checks_at_once: 2,
            ..common::config()
        },
        |state| state,
    )
    .await;
    let hash = web::hash_password(PASSWORD).expect("hash");
    desk.store
        .create_user(AGENT, None, Role::Agent, &hash, common::NOW)
        .await
        .expect("user");
    let before = peak_rss_mib();

    let guesses = (0..50)
        .map(|n| {
            sign_in_request(
                AGENT,
                &format!("wrong guess {n}"),
                &format!("198.51.100.{n}"),
                None,
            )
        })
        .collect();
    let statuses = all_at_once(&desk.app, guesses).await;
    let verified = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    eprintln!(
        "50 parallel guesses for one address: {verified} verified, {limited} refused with 429"
    );
    assert!(
        verified <= 5,
        "{verified} guesses were checked: {statuses:?}"
    );
    assert_eq!(verified + limited, 50, "{statuses:?}");

    // Fifty addresses from fifty networks: the limiter lets each through, so only the
    // bound on argon2 work keeps memory down.
    let spread = (0..50)
        .map(|n| {
            sign_in_request(
                &format!("nobody{n}@example.com"),
                "wrong",
                &format!("203.0.113.{n}"),
                None,
            )
        })
        .collect();
    let statuses = all_at_once(&desk.app, spread).await;
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let after = peak_rss_mib();
    eprintln!(
        "peak RSS: {before} MiB before, {after} MiB after 100 parallel sign-ins at the real argon2 cost"
    );
    // Unbounded, 50 checks at once hold 50 × 19 MiB, and the allocator keeps a buffer
    // per thread that ever hashed; two checking threads hold about 40.
    assert!(
        after.saturating_sub(before) < 300,
        "peak RSS grew from {before} to {after} MiB"
    );
}

#[tokio::test]
async fn an_address_over_254_octets_is_refused_before_any_work() {
    let desk = Desk::new().await;
    let long = format!("{}@example.com", "a".repeat(250));
    let reply = desk
        .post("/api/v1/session")
        .json(json!({"email": long, "password": "whatever"}))
        .send()
        .await;
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(reply.json()["error"]["field"], "email");
}

fn proxied_desk_config() -> WebConfig {
    WebConfig {
        trusted_proxies: vec!["10.0.0.0/8".parse().expect("cidr")],
        sign_in_limit: SignInLimit {
            per_address: 100,
            ..SignInLimit::default()
        },
        ..common::config()
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_budget() {
    let desk = Desk::with(proxied_desk_config(), |state| state).await;
    desk.add_user(AGENT, Role::Agent).await;
    // An attacker behind the proxy uses up their network's 20 failures...
    for n in 0..20 {
        let status = desk
            .app
            .clone()
            .oneshot(sign_in_request(
                &format!("guess{n}@example.com"),
                "wrong",
                "10.0.0.1",
                Some("203.0.113.66, 10.1.1.1"),
            ))
            .await
            .expect("infallible")
            .status();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let attacker = desk
        .app
        .clone()
        .oneshot(sign_in_request(
            AGENT,
            PASSWORD,
            "10.0.0.1",
            Some("203.0.113.66"),
        ))
        .await
        .expect("infallible");
    assert_eq!(attacker.status(), StatusCode::TOO_MANY_REQUESTS);
    // ...and a colleague behind the same proxy still signs in; an address the client
    // wrote in front of theirs changes nothing.
    let colleague = desk
        .app
        .clone()
        .oneshot(sign_in_request(
            AGENT,
            PASSWORD,
            "10.0.0.1",
            Some("203.0.113.66, 198.51.100.20, 10.1.1.1"),
        ))
        .await
        .expect("infallible");
    assert_eq!(colleague.status(), StatusCode::OK);
}

#[tokio::test]
async fn forwarded_for_from_anyone_else_is_ignored() {
    let desk = Desk::with(proxied_desk_config(), |state| state).await;
    desk.add_user(AGENT, Role::Agent).await;
    // A client that is not a trusted proxy cannot pick a fresh bucket per guess.
    for n in 0..20 {
        let status = desk
            .app
            .clone()
            .oneshot(sign_in_request(
                &format!("guess{n}@example.com"),
                "wrong",
                "192.0.2.10",
                Some(&format!("203.0.113.{n}")),
            ))
            .await
            .expect("infallible")
            .status();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let next = desk
        .app
        .clone()
        .oneshot(sign_in_request(
            AGENT,
            PASSWORD,
            "192.0.2.10",
            Some("198.51.100.99"),
        ))
        .await
        .expect("infallible");
    assert_eq!(next.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn made_up_methods_are_counted_as_other() {
    let handle = web::install_metrics_recorder();
    let desk = Desk::with(
        WebConfig {
            metrics_public: true,
            ..common::config()
        },
        |state| state.with_metrics(handle.clone()),
    )
    .await;
    for method in ["BREWCOFFEE", "XYZZY42"] {
        let method = Method::from_bytes(method.as_bytes()).expect("a token");
        desk.call(method, "/healthz").send().await;
    }
    let text = desk.get("/metrics").send().await.text();
    assert!(
        !text.contains("BREWCOFFEE") && !text.contains("XYZZY42"),
        "{text}"
    );
    assert!(text.contains("method=\"other\""), "{text}");
}

on_both_backends!(
    control_characters_are_refused_with_the_field_named,
    a_search_over_the_cap_is_refused_not_a_500,
);

async fn control_characters_are_refused_with_the_field_named(desk: Desk) {
    let admin = desk.admin_session().await;
    let reply = desk
        .post("/api/v1/session")
        .json(json!({"email": "a\u{0}@example.com", "password": "whatever"}))
        .send()
        .await;
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(reply.json()["error"]["field"], "email");

    for (uri, field) in [
        ("/api/v1/tickets?q=a%00b", "q"),
        ("/api/v1/tickets?requester=a%00%40example.com", "requester"),
        ("/api/v1/tickets?q=a%1Bb", "q"),
    ] {
        let reply = desk.get(uri).cookie(&admin).send().await;
        reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
        assert_eq!(reply.json()["error"]["field"], field, "{uri}");
    }

    let reply = desk
        .post("/api/v1/mailboxes")
        .cookie(&admin)
        .json(json!({
            "name": "sup\u{0}port",
            "host": "pop.example.com",
            "username": "support@example.com",
            "password": "secret",
        }))
        .send()
        .await;
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(reply.json()["error"]["field"], "name");
    assert!(desk.store.mailboxes().await.expect("list").is_empty());

    // Lines in a text are fine.
    let reply = desk
        .get("/api/v1/tickets?q=plain%20words")
        .cookie(&admin)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

async fn a_search_over_the_cap_is_refused_not_a_500(desk: Desk) {
    let admin = desk.admin_session().await;
    let long = "x".repeat(50_000);
    let reply = desk
        .get(&format!("/api/v1/tickets?q={long}"))
        .cookie(&admin)
        .send()
        .await;
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(reply.json()["error"]["field"], "q");
    let at_cap = "x".repeat(web::edge::MAX_QUERY_CHARS);
    let reply = desk
        .get(&format!("/api/v1/tickets?q={at_cap}"))
        .cookie(&admin)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());

    // The page says so in words.
    let page = desk
        .get(&format!("/tickets?q={long}"))
        .cookie(&admin)
        .send()
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.text().contains("longer than 1000 characters"),
        "{}",
        page.text()
    );

    // The store refuses it too, for every other caller (the CLI).
    let error = desk
        .store
        .tickets(&store::TicketFilter {
            text: Some(long.clone()),
            ..store::TicketFilter::default()
        })
        .await
        .expect_err("refused");
    assert!(
        matches!(error, store::StoreError::SearchTooLong { .. }),
        "{error}"
    );
    let error = desk
        .store
        .count_tickets(&store::TicketFilter {
            requester: Some(long),
            ..store::TicketFilter::default()
        })
        .await
        .expect_err("refused");
    assert!(
        matches!(error, store::StoreError::SearchTooLong { .. }),
        "{error}"
    );
}
