//! The router against its OpenAPI document, and authorization on every route: the
//! document lists exactly the routes that exist with exactly their methods, every
//! documented operation answers (no 404/405), nothing but the public routes answers
//! without credentials, and agents are kept out of the admin routes.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use store::MailboxSettings;

use crate::common::{Desk, NOW, mail_with_attachments};

/// (path, method) → the operation object, from the served document.
pub(crate) async fn documented(desk: &Desk) -> BTreeMap<(String, Method), Value> {
    let reply = desk.get("/api/v1/openapi.json").send().await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.json();
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    let mut operations = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            operations.insert((path.clone(), method), operation.clone());
        }
    }
    operations
}

pub(crate) fn is_public(operation: &Value) -> bool {
    operation["security"] == json!([{}])
}

/// Whether only admins may call it (the rule of issue #5).
pub(crate) fn admin_only(path: &str, method: &Method) -> bool {
    path.starts_with("/api/v1/mailboxes")
        || path.starts_with("/api/v1/users")
        || path.starts_with("/api/v1/tokens")
        || (path == "/api/v1/messages" && method == Method::GET)
        || path.ends_with("/reprocess")
}

/// What only a signed-in person can do, not a token: sign out, change their password,
/// read and change their preferences.
pub(crate) fn session_only(path: &str, method: &Method) -> bool {
    (path == "/api/v1/session" && method == Method::DELETE)
        || path == "/api/v1/session/password"
        || path == "/api/v1/session/preferences"
}

/// The path with its parameters filled in.
pub(crate) fn concrete(path: &str, ids: &BTreeMap<&str, String>) -> String {
    let mut path = path.to_string();
    for (name, value) in ids {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    assert!(!path.contains('{'), "unfilled parameter in {path}");
    path
}

#[tokio::test]
async fn the_document_lists_exactly_the_routes_and_their_methods() {
    let desk = Desk::new().await;
    let (_, admin) = desk.token("admin").await;
    let operations = documented(&desk).await;
    let mut by_path: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, method) in operations.keys() {
        by_path
            .entry(path.clone())
            .or_default()
            .insert(method.to_string());
    }
    let routed: BTreeSet<String> = web::api::route_paths().into_iter().collect();
    let documented_paths: BTreeSet<String> = by_path.keys().cloned().collect();
    assert_eq!(
        routed, documented_paths,
        "routes and documented paths differ"
    );

    let ids: BTreeMap<&str, String> = [
        ("number", "1"),
        ("id", "1"),
        ("index", "0"),
        ("content_id", "x"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect();
    for (path, methods) in &by_path {
        // A method no route has: axum answers 405 and lists what the path takes.
        let reply = desk
            .call(Method::TRACE, &concrete(path, &ids))
            .bearer(&admin)
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        let allowed: BTreeSet<String> = reply
            .header("allow")
            .expect("Allow")
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| m != "HEAD")
            .collect();
        assert_eq!(&allowed, methods, "methods of {path}");
    }
}

/// A desk with one of everything, and the ids to fill paths with.
async fn seeded() -> (Desk, BTreeMap<&'static str, String>) {
    let desk = Desk::new().await;
    let support = desk.sending_mailbox("support", "support@example.com").await;
    let raw_id = desk
        .deliver(support, &mail_with_attachments("att@example.com"))
        .await;
    desk.process().await;
    let number = desk.store.tickets(&Default::default()).await.expect("t")[0].number;
    let agent = desk.agent_session().await;
    // A reply with an attachment, for the outbox routes.
    let reply = desk
        .post(&format!("/api/v1/tickets/{number}/replies"))
        .cookie(&agent)
        .json(json!({"body": "Here it is.", "attachments": [{"name": "a.txt", "data": "aGk="}]}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let outbox_id = reply.json()["id"].as_i64().expect("id");
    let agent_id = desk
        .store
        .user_by_email(crate::common::AGENT)
        .await
        .expect("r")
        .expect("agent")
        .id;
    let (spare_token, _) = desk.token("agent").await;
    let mut ids = BTreeMap::new();
    ids.insert("number", number.to_string());
    ids.insert("index", "0".to_string());
    ids.insert("content_id", "logo@example.com".to_string());
    ids.insert("message", raw_id.to_string());
    ids.insert("mailbox", support.to_string());
    ids.insert("user", agent_id.to_string());
    ids.insert("token", spare_token.to_string());
    ids.insert("outbox", outbox_id.to_string());
    (desk, ids)
}

/// The `{id}` of a path means a different thing per resource.
fn fill(path: &str, ids: &BTreeMap<&str, String>) -> String {
    let id_kind = if path.contains("/messages/") {
        "message"
    } else if path.starts_with("/api/v1/outbox/") {
        "outbox"
    } else if path.starts_with("/api/v1/mailboxes/") {
        "mailbox"
    } else if path.starts_with("/api/v1/users/") {
        "user"
    } else {
        "token"
    };
    let mut with_id: BTreeMap<&str, String> = ids.clone();
    with_id.insert("id", ids[id_kind].clone());
    concrete(path, &with_id)
}

/// Reprocessing (which takes the message off its ticket until the processor runs) and
/// deletions last, so every other call still finds its resource.
fn in_call_order(operations: &BTreeMap<(String, Method), Value>) -> Vec<(String, Method)> {
    let mut keys: Vec<(String, Method)> = operations.keys().cloned().collect();
    keys.sort_by_key(|(path, method)| {
        let rank = if *method == Method::DELETE {
            2
        } else {
            u8::from(path.ends_with("/reprocess"))
        };
        (rank, path.clone())
    });
    keys
}

#[tokio::test]
async fn every_documented_operation_answers() {
    let (desk, ids) = seeded().await;
    let (_, admin) = desk.token("admin").await;
    // "Test connection" on a port nothing listens on: a quick, honest failure.
    let unreachable = MailboxSettings {
        name: "unreachable".into(),
        host: "127.0.0.1".into(),
        port: 1,
        username: "x".into(),
        ..MailboxSettings::default()
    };
    desk.store
        .update_mailbox(
            ids["mailbox"].parse().expect("id"),
            &unreachable,
            Some(&SecretString::from("x".to_string())),
            NOW,
        )
        .await
        .expect("point the mailbox at a closed port");
    let operations = documented(&desk).await;
    for (path, method) in in_call_order(&operations) {
        let uri = fill(&path, &ids);
        let mut call = desk.call(method.clone(), &uri).bearer(&admin);
        if operations[&(path.clone(), method.clone())]
            .get("requestBody")
            .is_some()
        {
            call = call.json(json!({}));
        }
        let reply = call.send().await;
        assert!(
            reply.status != StatusCode::NOT_FOUND && reply.status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}: {} {}",
            reply.status,
            reply.text()
        );
        // What the document promises for this operation includes what it answered.
        let documented_statuses = &operations[&(path.clone(), method.clone())]["responses"];
        assert!(
            documented_statuses.get(reply.status.as_str()).is_some(),
            "{method} {uri} answered {} which its documentation does not list",
            reply.status
        );
    }
}

#[tokio::test]
async fn no_credentials_401_and_agents_are_kept_out_of_admin_routes() {
    let (desk, ids) = seeded().await;
    let (_, agent) = desk.token("agent").await;
    let operations = documented(&desk).await;
    let mut public = Vec::new();
    for (path, method) in in_call_order(&operations) {
        let operation = &operations[&(path.clone(), method.clone())];
        let uri = fill(&path, &ids);
        if is_public(operation) {
            public.push(format!("{method} {path}"));
            continue;
        }
        let mut anonymous = desk.call(method.clone(), &uri);
        if operation.get("requestBody").is_some() {
            anonymous = anonymous.json(json!({}));
        }
        anonymous
            .send()
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");

        let mut as_agent = desk.call(method.clone(), &uri).bearer(&agent);
        if operation.get("requestBody").is_some() {
            as_agent = as_agent.json(json!({}));
        }
        let reply = as_agent.send().await;
        if admin_only(&path, &method) || session_only(&path, &method) {
            reply.assert_error(StatusCode::FORBIDDEN, "forbidden");
        } else {
            assert!(
                reply.status != StatusCode::UNAUTHORIZED && reply.status != StatusCode::FORBIDDEN,
                "an agent may {method} {uri}: {} {}",
                reply.status,
                reply.text()
            );
        }
    }
    public.sort();
    assert_eq!(
        public,
        [
            "GET /api/v1/openapi.json",
            "GET /api/v1/setup",
            "GET /healthz",
            "POST /api/v1/session",
            "POST /api/v1/setup",
        ],
        "the only routes open without credentials"
    );
}
