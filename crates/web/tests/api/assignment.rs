//! Assignment, merge and keyset paging through the API: real mail through the real
//! processor, then assigned, listed by assignee, merged; and later mail that names the
//! merged ticket landing in the one it joined.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::{AGENT, Desk, mail};
use crate::postgres::on_both_backends;
use store::Role;

on_both_backends!(
    assignment_shows_in_tickets_lists_and_history_and_survives_a_customer_reply,
    a_merged_ticket_points_at_the_other_and_its_later_mail_lands_there,
);

/// A mail that answers `in_reply_to`.
fn reply_mail(id: &str, from: &str, subject: &str, in_reply_to: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\n\
Date: Thu, 26 Nov 2026 09:00:00 +0000\r\nMessage-ID: <{id}>\r\nIn-Reply-To: <{in_reply_to}>\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nMore.\r\n"
    )
    .into_bytes()
}

/// The tickets' numbers on a page, in its order.
fn numbers(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| t["number"].as_i64().expect("number"))
        .collect()
}

/// Two tickets in "support" from Alice; their numbers, oldest first.
async fn two_tickets(desk: &Desk) -> (i64, i64, i64) {
    let support = desk.mailbox("support", "support@example.com").await;
    for (id, subject) in [
        ("a1@example.com", "Printer jam"),
        ("a2@example.com", "Printer jam again"),
    ] {
        desk.deliver(
            support,
            &mail(id, "Alice <alice@example.com>", subject, "It jams."),
        )
        .await;
        desk.process().await;
    }
    let agent = desk.agent_session().await;
    let page = desk
        .get("/api/v1/tickets")
        .cookie(&agent)
        .send()
        .await
        .json();
    let mut found = numbers(&page);
    found.sort_unstable();
    (support, found[0], found[1])
}

async fn assignment_shows_in_tickets_lists_and_history_and_survives_a_customer_reply(desk: Desk) {
    let (support, first, second) = two_tickets(&desk).await;
    let agent = desk.agent_session().await;
    let admin = desk.admin_session().await;
    let disabled = desk.add_user("gone@example.com", Role::Agent).await;
    desk.store
        .update_user(disabled.id, None, Role::Agent, true, crate::common::NOW)
        .await
        .unwrap();

    let assigned = desk
        .patch(&format!("/api/v1/tickets/{first}"))
        .cookie(&admin)
        .json(json!({"assignee": AGENT}))
        .send()
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.text());
    let body = assigned.json();
    assert_eq!(body["ticket"]["assignee"]["email"], AGENT);
    assert_eq!(body["assignee_changed"], true);
    assert_eq!(body["event"], Value::Null, "no status change was asked for");

    // Refused assignees change nothing and say which field.
    for (assignee, why) in [
        ("nobody@example.com", "unknown"),
        ("gone@example.com", "disabled"),
    ] {
        let refused = desk
            .patch(&format!("/api/v1/tickets/{second}"))
            .cookie(&admin)
            .json(json!({"assignee": assignee, "status": "open"}))
            .send()
            .await;
        refused.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
        assert_eq!(refused.json()["error"]["field"], "assignee", "{why}");
    }
    let empty = desk
        .patch(&format!("/api/v1/tickets/{second}"))
        .cookie(&admin)
        .json(json!({}))
        .send()
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);

    let list = |query: &'static str| {
        let desk = &desk;
        let agent = agent.clone();
        async move {
            let reply = desk
                .get(&format!("/api/v1/tickets{query}"))
                .cookie(&agent)
                .send()
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text());
            reply.json()
        }
    };
    let mine = list("?assignee=me").await;
    assert_eq!(numbers(&mine), [first]);
    assert_eq!(
        mine["status_counts"]["new"], 1,
        "the counts follow the view"
    );
    assert_eq!(numbers(&list("?assignee=none").await), [second]);
    assert_eq!(numbers(&list("?assignee=AGENT@example.com").await), [first]);
    let unknown = desk
        .get("/api/v1/tickets?assignee=nobody@example.com")
        .cookie(&agent)
        .send()
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    let summary = &mine["items"][0];
    assert_eq!(summary["assignee"], json!({"email": AGENT, "name": null}));
    assert_eq!(
        list("?assignee=none").await["items"][0]["assignee"],
        Value::Null
    );

    // The customer writes again: the ticket stays with its assignee.
    desk.deliver(
        support,
        &reply_mail(
            "a3@example.com",
            "Alice <alice@example.com>",
            "Re: Printer jam",
            "a1@example.com",
        ),
    )
    .await;
    desk.process().await;
    let shown = desk
        .get(&format!("/api/v1/tickets/{first}"))
        .cookie(&agent)
        .send()
        .await
        .json();
    assert_eq!(
        shown["entries"].as_array().map(Vec::len),
        Some(2),
        "the reply threaded"
    );
    assert_eq!(shown["ticket"]["assignee"]["email"], AGENT);

    // Unassigning is null; both changes are in the history, by who made them.
    let unassigned = desk
        .patch(&format!("/api/v1/tickets/{first}"))
        .cookie(&agent)
        .json(json!({"assignee": null}))
        .send()
        .await;
    assert_eq!(unassigned.json()["ticket"]["assignee"], Value::Null);
    let shown = desk
        .get(&format!("/api/v1/tickets/{first}"))
        .cookie(&agent)
        .send()
        .await
        .json();
    let events: Vec<(String, Value, String)> = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["assignee"].clone(),
                e["author"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            (
                "assignment".to_string(),
                json!(AGENT),
                crate::common::ADMIN.to_string()
            ),
            ("assignment".to_string(), Value::Null, AGENT.to_string()),
        ]
    );
}

async fn a_merged_ticket_points_at_the_other_and_its_later_mail_lands_there(desk: Desk) {
    let (support, first, second) = two_tickets(&desk).await;
    let agent = desk.agent_session().await;

    let itself = desk
        .post(&format!("/api/v1/tickets/{second}/merge"))
        .cookie(&agent)
        .json(json!({"into": second}))
        .send()
        .await;
    itself.assert_error(StatusCode::CONFLICT, "conflict");
    let missing = desk
        .post(&format!("/api/v1/tickets/{second}/merge"))
        .cookie(&agent)
        .json(json!({"into": 999_999}))
        .send()
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let merged = desk
        .post(&format!("/api/v1/tickets/{second}/merge"))
        .cookie(&agent)
        .json(json!({"into": first}))
        .send()
        .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.text());
    let body = merged.json();
    assert_eq!(body["merged"]["merged_into"], first);
    assert_eq!(body["merged"]["status"], "closed");
    assert_eq!(body["into"]["entry_count"], 2);

    let shown = desk
        .get(&format!("/api/v1/tickets/{second}"))
        .cookie(&agent)
        .send()
        .await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.json()["ticket"]["merged_into"], first);
    let back = desk
        .post(&format!("/api/v1/tickets/{first}/merge"))
        .cookie(&agent)
        .json(json!({"into": second}))
        .send()
        .await;
    back.assert_error(StatusCode::CONFLICT, "conflict");
    let list = desk
        .get("/api/v1/tickets")
        .cookie(&agent)
        .send()
        .await
        .json();
    assert_eq!(numbers(&list), [first], "a merged ticket leaves the list");

    // Mail quoting the merged ticket's number, and mail answering one of its messages.
    desk.deliver(
        support,
        &mail(
            "a4@example.com",
            "Alice <alice@example.com>",
            &format!("Re: [#{second}] Printer"),
            "Still.",
        ),
    )
    .await;
    desk.deliver(
        support,
        &reply_mail(
            "a5@example.com",
            "Alice <alice@example.com>",
            "Re: jam",
            "a2@example.com",
        ),
    )
    .await;
    desk.process().await;
    let joined = desk
        .get(&format!("/api/v1/tickets/{first}"))
        .cookie(&agent)
        .send()
        .await
        .json();
    let ids: Vec<&str> = joined["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.iter().any(|id| id.contains("a4@example.com")),
        "{ids:?}"
    );
    assert!(
        ids.iter().any(|id| id.contains("a5@example.com")),
        "{ids:?}"
    );
    let kinds: Vec<&str> = joined["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"merge"));
    let list = desk
        .get("/api/v1/tickets")
        .cookie(&agent)
        .send()
        .await
        .json();
    assert_eq!(numbers(&list), [first], "no new ticket was opened");
}

/// The list's `after` cursor walks the pages in order, each ticket once, while `page`
/// still works.
#[tokio::test]
async fn the_list_pages_by_cursor_and_by_number() {
    let desk = Desk::new().await;
    let support = desk.mailbox("support", "support@example.com").await;
    for i in 0..7 {
        desk.deliver(
            support,
            &mail(
                &format!("p{i}@example.com"),
                "Alice <alice@example.com>",
                &format!("Ticket {i}"),
                "Hi",
            ),
        )
        .await;
    }
    desk.process().await;
    let agent = desk.agent_session().await;
    let all = desk
        .get("/api/v1/tickets?per_page=100&sort=created")
        .cookie(&agent)
        .send()
        .await
        .json();
    let all = numbers(&all);
    assert_eq!(all.len(), 7);
    let mut walked = Vec::new();
    let mut query = "/api/v1/tickets?per_page=3&sort=created".to_string();
    loop {
        let page = desk.get(&query).cookie(&agent).send().await.json();
        walked.extend(numbers(&page));
        match page["next"].as_str() {
            Some(next) => query = format!("/api/v1/tickets?per_page=3&sort=created&after={next}"),
            None => break,
        }
    }
    assert_eq!(walked, all);
    let second = desk
        .get("/api/v1/tickets?per_page=3&sort=created&page=2")
        .cookie(&agent)
        .send()
        .await
        .json();
    assert_eq!(numbers(&second), all[3..6]);
    let bad = desk
        .get("/api/v1/tickets?after=nonsense")
        .cookie(&agent)
        .send()
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}
