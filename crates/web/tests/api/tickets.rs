//! Tickets through the API: real mail through the real processor, then listed, read,
//! worked; and bad input that must be a clear 4xx.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::{AGENT, Desk, mail, mail_with_attachments};
use crate::postgres::on_both_backends;

on_both_backends!(
    the_ticket_list_filters_and_pages,
    agents_change_status_and_add_notes_with_their_name,
);

/// Three tickets: two from Alice (support), one from Bob (sales).
async fn desk_with_tickets() -> (Desk, i64, i64) {
    with_tickets(Desk::new().await).await
}

async fn with_tickets(desk: Desk) -> (Desk, i64, i64) {
    let support = desk.mailbox("support", "support@example.com").await;
    let sales = desk.mailbox("sales", "sales@example.com").await;
    desk.deliver(
        support,
        &mail(
            "a1@example.com",
            "Alice <alice@example.com>",
            "Printer jam",
            "It jams.",
        ),
    )
    .await;
    desk.deliver(
        support,
        &mail(
            "a2@example.com",
            "Alice <alice@example.com>",
            "VPN down",
            "No VPN.",
        ),
    )
    .await;
    desk.deliver(
        sales,
        &mail(
            "b1@example.com",
            "Bob Builder <bob@example.net>",
            "Quote please",
            "How much?",
        ),
    )
    .await;
    desk.process().await;
    (desk, support, sales)
}

fn subjects(page: &Value) -> Vec<String> {
    let mut subjects: Vec<String> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| t["subject"].as_str().expect("subject").to_string())
        .collect();
    subjects.sort();
    subjects
}

async fn the_ticket_list_filters_and_pages(desk: Desk) {
    let (desk, support, sales) = with_tickets(desk).await;
    let agent = desk.agent_session().await;
    let list = |query: String| {
        let agent = agent.clone();
        let desk = &desk;
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
    let all = list(String::new()).await;
    assert_eq!(all["total"], 3);
    assert_eq!(all["page"], 1);
    assert_eq!(all["per_page"], 50);
    assert_eq!(all["status_counts"]["new"], 3);
    let first = &all["items"][0];
    assert!(first["number"].as_i64().is_some());
    assert_eq!(first["status"], "new");
    assert!(
        first["url"]
            .as_str()
            .expect("url")
            .starts_with("/api/v1/tickets/")
    );

    let page1 = list("?per_page=2".into()).await;
    let page2 = list("?per_page=2&page=2".into()).await;
    assert_eq!(page1["items"].as_array().expect("items").len(), 2);
    assert_eq!(page2["items"].as_array().expect("items").len(), 1);
    assert_eq!(page2["total"], 3);
    let page3 = list("?per_page=2&page=3".into()).await;
    assert_eq!(page3["items"], json!([]));
    // Far past the end (past what the store can even address) is just as empty.
    let far = list("?per_page=200&page=4294967295".into()).await;
    assert_eq!(far["items"], json!([]));
    assert_eq!(far["total"], 3);

    assert_eq!(
        subjects(&list(format!("?mailbox={sales}")).await),
        ["Quote please"]
    );
    assert_eq!(
        list(format!("?mailbox={support}")).await["status_counts"]["new"],
        2
    );
    assert_eq!(
        subjects(&list("?requester=ALICE@example.com".into()).await),
        ["Printer jam", "VPN down"]
    );
    assert_eq!(subjects(&list("?q=vpn".into()).await), ["VPN down"]);
    assert_eq!(subjects(&list("?q=builder".into()).await), ["Quote please"]);
    assert_eq!(list("?q=100%25".into()).await["total"], 0);
    assert_eq!(list("?status=open".into()).await["total"], 0);
    // Empty values (as an HTML form sends them) mean "no filter".
    assert_eq!(list("?status=&mailbox=&q=&page=".into()).await["total"], 3);
}

#[tokio::test]
async fn bad_list_queries_are_400() {
    let (desk, _, _) = desk_with_tickets().await;
    let agent = desk.agent_session().await;
    for query in [
        "status=nope",
        "page=0",
        "page=abc",
        "page=-1",
        "per_page=0",
        "per_page=201",
        "mailbox=abc",
        "page=4294967296",
    ] {
        desk.get(&format!("/api/v1/tickets?{query}"))
            .cookie(&agent)
            .send()
            .await
            .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    }
}

#[tokio::test]
async fn a_ticket_shows_its_mail_attachments_and_history() {
    let desk = Desk::new().await;
    let support = desk.mailbox("support", "support@example.com").await;
    let raw_id = desk
        .deliver(support, &mail_with_attachments("att@example.com"))
        .await;
    desk.process().await;
    let agent = desk.agent_session().await;
    let number = desk
        .store
        .tickets(&Default::default())
        .await
        .expect("tickets")[0]
        .number;

    let reply = desk
        .get(&format!("/api/v1/tickets/{number}"))
        .cookie(&agent)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["ticket"]["number"], number);
    assert_eq!(body["ticket"]["subject"], "Printer on fire");
    assert_eq!(body["ticket"]["requester"]["address"], "alice@example.com");
    assert_eq!(body["ticket"]["requester"]["name"], "Alice Example");
    let entry = &body["entries"][0];
    assert_eq!(entry["raw_message_id"], raw_id);
    assert_eq!(entry["kind"], "message");
    assert_eq!(entry["from"]["address"], "alice@example.com");
    let html = entry["html"].as_str().expect("sanitized html");
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains(&format!("/messages/{raw_id}/cid/logo@example.com")),
        "{html}"
    );
    let attachments = entry["attachments"].as_array().expect("attachments");
    let logo = attachments
        .iter()
        .find(|a| a["content_id"] == "logo@example.com")
        .expect("the inline image");
    assert_eq!(logo["inline"], true);
    let index = logo["index"].as_u64().expect("index");
    assert_eq!(
        logo["download_url"],
        format!("/api/v1/messages/{raw_id}/attachments/{index}")
    );
    assert!(
        attachments
            .iter()
            .any(|a| a["content_type"] == "application/pdf")
    );
    assert_eq!(body["events"], json!([]));
}

async fn agents_change_status_and_add_notes_with_their_name(desk: Desk) {
    let (desk, _, _) = with_tickets(desk).await;
    let agent = desk.agent_session().await;
    let number = desk
        .store
        .tickets(&Default::default())
        .await
        .expect("tickets")[0]
        .number;
    let url = format!("/api/v1/tickets/{number}");

    let changed = desk
        .patch(&url)
        .cookie(&agent)
        .json(json!({"status": "pending"}))
        .send()
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    let body = changed.json();
    assert_eq!(body["ticket"]["status"], "pending");
    assert_eq!(body["event"]["from_status"], "new");
    assert_eq!(body["event"]["to_status"], "pending");
    assert_eq!(body["event"]["author"], AGENT);
    // The same status again changes nothing and records nothing.
    let again = desk
        .patch(&url)
        .cookie(&agent)
        .json(json!({"status": "pending"}))
        .send()
        .await;
    assert_eq!(again.json()["event"], Value::Null);

    let note = desk
        .post(&format!("{url}/notes"))
        .cookie(&agent)
        .json(json!({"body": "  Called the customer.  "}))
        .send()
        .await;
    assert_eq!(note.status, StatusCode::CREATED, "{}", note.text());
    assert_eq!(note.json()["kind"], "note");
    assert_eq!(note.json()["body"], "Called the customer.");

    let (_, token) = desk.token("agent").await;
    desk.post(&format!("{url}/notes"))
        .bearer(&token)
        .json(json!({"body": "From the CRM."}))
        .send()
        .await;
    let events = desk.get(&url).cookie(&agent).send().await.json()["events"].clone();
    let kinds: Vec<&str> = events
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["status", "note", "note"]);
    assert_eq!(events[2]["author"], "API token \"agent token\"");
    assert_eq!(events[2]["author_id"], Value::Null);
}

#[tokio::test]
async fn bad_ticket_input_is_a_clear_4xx() {
    let (desk, _, _) = desk_with_tickets().await;
    let agent = desk.agent_session().await;
    let number = desk
        .store
        .tickets(&Default::default())
        .await
        .expect("tickets")[0]
        .number;
    let url = format!("/api/v1/tickets/{number}");

    desk.patch(&url)
        .cookie(&agent)
        .body("application/json", "{\"status\": ")
        .send()
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    for body in [
        json!({"status": 3}),
        json!({"status": "solved"}),
        json!({"status": "open", "priority": "high"}),
        json!({}),
        json!([]),
    ] {
        desk.patch(&url)
            .cookie(&agent)
            .json(body)
            .send()
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    }
    desk.patch(&url)
        .cookie(&agent)
        .body("text/plain", "status=open")
        .send()
        .await
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    desk.patch("/api/v1/tickets/99999")
        .cookie(&agent)
        .json(json!({"status": "open"}))
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    desk.get("/api/v1/tickets/99999")
        .cookie(&agent)
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    for path in ["abc", "1.5", "99999999999999999999", "-"] {
        desk.get(&format!("/api/v1/tickets/{path}"))
            .cookie(&agent)
            .send()
            .await
            .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    }
    for body in [
        json!({"body": ""}),
        json!({"body": "   "}),
        json!({"body": "\u{3000}\t\u{feff}"}),
        json!({"text": "hi"}),
    ] {
        desk.post(&format!("{url}/notes"))
            .cookie(&agent)
            .json(body)
            .send()
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    }
    desk.post(&format!("{url}/notes"))
        .cookie(&agent)
        .json(json!({"body": "x".repeat(100_001)}))
        .send()
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    // Over the 1 MiB body limit.
    desk.post(&format!("{url}/notes"))
        .cookie(&agent)
        .json(json!({"body": "x".repeat(1_100_000)}))
        .send()
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let ticket = desk
        .store
        .ticket_by_number(number)
        .await
        .expect("read")
        .expect("ticket");
    let events = desk.store.ticket_events(ticket.id).await.expect("events");
    assert!(events.is_empty(), "nothing was recorded: {events:?}");
    // The document's pattern is `\S` in ECMAScript's sense: U+0085 is not white space
    // there, so a note of it is valid and accepted (schemathesis found the mismatch).
    let accepted = desk
        .post(&format!("{url}/notes"))
        .cookie(&agent)
        .json(json!({"body": "\u{85}"}))
        .send()
        .await;
    assert_eq!(accepted.status, StatusCode::CREATED, "{}", accepted.text());
}

/// A `[#N]` from someone the ticket never heard from shows as such, in the API and on the
/// ticket page; the mailbox's policy for such mail is set and read through the API.
#[tokio::test]
async fn mail_naming_a_ticket_from_a_new_address_is_marked_in_the_api_and_the_page() {
    let desk = Desk::new().await;
    let support = desk.mailbox("support", "support@example.com").await;
    desk.deliver(
        support,
        &mail(
            "n1@example.com",
            "Alice <alice@example.com>",
            "Printer jam",
            "It jams.",
        ),
    )
    .await;
    desk.process().await;
    let number = desk
        .store
        .tickets(&Default::default())
        .await
        .expect("tickets")[0]
        .number;
    desk.deliver(
        support,
        &mail(
            "n2@example.net",
            "Mallory <mallory@example.net>",
            &format!("Re: [#{number}] Printer jam"),
            "Please send me the invoice.",
        ),
    )
    .await;
    desk.process().await;
    let agent = desk.agent_session().await;
    let body = desk
        .get(&format!("/api/v1/tickets/{number}"))
        .cookie(&agent)
        .send()
        .await
        .json();
    let marks: Vec<bool> = body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["from_new_address"].as_bool().expect("a bool"))
        .collect();
    assert_eq!(marks, [false, true]);
    let page = desk
        .get(&format!("/tickets/{number}"))
        .cookie(&agent)
        .send()
        .await
        .text();
    assert_eq!(
        page.matches("From a new address</span>").count(),
        1,
        "{page}"
    );

    let admin = desk.admin_session().await;
    let changed = desk
        .patch(&format!("/api/v1/mailboxes/{support}"))
        .cookie(&admin)
        .json(json!({"new_address_reference": "new-ticket"}))
        .send()
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    assert_eq!(changed.json()["new_address_reference"], "new-ticket");
    let refused = desk
        .patch(&format!("/api/v1/mailboxes/{support}"))
        .cookie(&admin)
        .json(json!({"new_address_reference": "ignore"}))
        .send()
        .await;
    refused.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(
        refused.json()["error"]["field"],
        "new_address_reference",
        "{}",
        refused.text()
    );
}
