//! Answering the customer through the API: a reply is queued (promise 8: committed
//! before any SMTP) with the exact To, Subject and Message-ID, shows on the ticket with
//! its state, and "Send again" requeues a failed one as the identical message. Every
//! refusal is one 4xx sentence and queues nothing. No SMTP server is needed: states are
//! set through the store as the sender would.

use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::{Value, json};
use store::{OutboxState, Store};

use crate::common::{AGENT, Desk, NOW, mail, outgoing};
use crate::postgres::on_both_backends;

on_both_backends!(
    a_reply_is_queued_with_its_exact_headers_and_shows_on_the_ticket,
    send_again_requeues_a_failed_reply_with_the_same_message_id,
);

/// A sending mailbox and one ticket from Alice (Message-ID <a1@example.com>).
async fn with_ticket(desk: &Desk) -> i64 {
    let support = desk.sending_mailbox("support", "support@example.com").await;
    desk.deliver(
        support,
        &mail(
            "a1@example.com",
            "Alice <alice@example.com>",
            "Printer jam",
            "It jams.\r\nAgain.",
        ),
    )
    .await;
    desk.process().await;
    desk.store.tickets(&Default::default()).await.expect("t")[0].number
}

/// Nothing in the outbox, and no reply event in the ticket's history.
async fn assert_nothing_queued(store: &Store, what: &str) {
    let outbox = store.outbox(None, 100).await.expect("outbox");
    assert!(outbox.is_empty(), "{what}: queued {outbox:?}");
    for ticket in store.tickets(&Default::default()).await.expect("tickets") {
        let events = store.ticket_events(ticket.id).await.expect("events");
        assert!(
            events
                .iter()
                .all(|e| e.kind != store::TicketEventKind::Reply),
            "{what}: a reply event on #{}",
            ticket.number
        );
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn a_reply_is_queued_with_its_exact_headers_and_shows_on_the_ticket(desk: Desk) {
    let number = with_ticket(&desk).await;
    let agent = desk.agent_session().await;
    let reply = desk
        .post(&format!("/api/v1/tickets/{number}/replies"))
        .cookie(&agent)
        .json(json!({
            "body": "Try turning it off and on again.",
            "cc": ["boss@example.net"],
            "attachments": [{"name": "steps.txt", "content_type": "text/plain", "data": b64(b"1. off\n2. on\n")}],
        }))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let queued = reply.json();
    assert_eq!(queued["state"], "queued");
    assert_eq!(queued["kind"], "reply");
    assert_eq!(queued["to"], json!(["alice@example.com"]));
    assert_eq!(queued["cc"], json!(["boss@example.net"]));
    assert_eq!(queued["subject"], format!("Re: Printer jam [#{number}]"));
    assert_eq!(queued["from"], "support@example.com");
    let message_id = queued["message_id"]
        .as_str()
        .expect("message id")
        .to_string();
    assert!(message_id.ends_with("@example.com"), "{message_id}");
    assert!(queued["queued_at"].is_i64());
    assert!(queued["next_attempt_at"].is_i64());
    assert_eq!(queued["attempts"], 0);
    let id = queued["id"].as_i64().expect("id");

    // Promise 8: the exact bytes are committed before any SMTP, and they thread.
    let message = desk
        .store
        .outbox_message(id)
        .await
        .expect("read")
        .expect("the outbox row");
    let bytes = desk
        .store
        .blobs()
        .read(&message.sha256)
        .await
        .expect("blob");
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains(&format!("Message-ID: <{message_id}>\r\n")),
        "{text}"
    );
    assert!(text.contains("In-Reply-To: <a1@example.com>\r\n"), "{text}");
    assert!(text.contains("To: Alice <alice@example.com>\r\n"), "{text}");
    assert!(
        text.contains(&format!("Subject: Re: Printer jam [#{number}]\r\n")),
        "{text}"
    );
    assert!(!text.contains("Auto-Submitted"), "a human reply: {text}");

    let ticket = desk
        .get(&format!("/api/v1/tickets/{number}"))
        .cookie(&agent)
        .send()
        .await;
    assert_eq!(ticket.status, StatusCode::OK, "{}", ticket.text());
    let ticket = ticket.json();
    assert_eq!(
        ticket["ticket"]["status"], "pending",
        "send and set Pending"
    );
    let replies = ticket["replies"].as_array().expect("replies");
    assert_eq!(replies.len(), 1);
    let shown = &replies[0];
    assert_eq!(shown["state"], "queued");
    assert_eq!(shown["message_id"], message_id);
    assert_eq!(shown["to"], json!(["alice@example.com"]));
    assert_eq!(shown["subject"], format!("Re: Printer jam [#{number}]"));
    assert_eq!(shown["body"], "Try turning it off and on again.");
    assert_eq!(shown["last_error"], Value::Null);
    assert_eq!(shown["sent_at"], Value::Null);
    assert!(
        shown["author"].as_str().expect("author").contains(AGENT),
        "{shown}"
    );
    let events = ticket["events"].as_array().expect("events");
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["reply", "status"], "{events:?}");
    assert_eq!(events[1]["to_status"], "pending");

    // The attachment comes back as it was sent, as a download.
    let url = shown["attachments"][0]["download_url"]
        .as_str()
        .expect("url");
    assert_eq!(url, format!("/api/v1/outbox/{id}/attachments/0"));
    let file = desk.get(url).cookie(&agent).send().await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.body, b"1. off\n2. on\n");
    assert!(
        file.header("content-disposition")
            .is_some_and(|d| d.starts_with("attachment;")),
        "{:?}",
        file.header("content-disposition")
    );
    desk.get(&format!("/api/v1/outbox/{id}/attachments/1"))
        .cookie(&agent)
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    // Sent, as the sender records it: the thread and the outbox list say so.
    desk.store.outbox_sent(id, NOW + 5000).await.expect("sent");
    let ticket = desk
        .get(&format!("/api/v1/tickets/{number}"))
        .cookie(&agent)
        .send()
        .await
        .json();
    assert_eq!(ticket["replies"][0]["state"], "sent");
    assert_eq!(ticket["replies"][0]["sent_at"], NOW + 5000);
    assert_eq!(ticket["replies"][0]["next_attempt_at"], Value::Null);
    let sent = desk
        .get("/api/v1/outbox?state=sent")
        .cookie(&agent)
        .send()
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text());
    assert_eq!(sent.json().as_array().expect("list").len(), 1);
    let queued = desk
        .get("/api/v1/outbox?state=queued")
        .cookie(&agent)
        .send()
        .await
        .json();
    assert_eq!(queued, json!([]));
    desk.get("/api/v1/outbox?state=lost")
        .cookie(&agent)
        .send()
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
}

async fn send_again_requeues_a_failed_reply_with_the_same_message_id(desk: Desk) {
    let number = with_ticket(&desk).await;
    let (_, token) = desk.token("agent").await;
    let queued = desk
        .post(&format!("/api/v1/tickets/{number}/replies"))
        .bearer(&token)
        .json(json!({"body": "On its way.", "status": "resolved"}))
        .send()
        .await;
    assert_eq!(queued.status, StatusCode::CREATED, "{}", queued.text());
    let queued = queued.json();
    let id = queued["id"].as_i64().expect("id");
    let message_id = queued["message_id"].clone();

    // Still queued: nothing to send again.
    desk.post(&format!("/api/v1/outbox/{id}/retry"))
        .bearer(&token)
        .send()
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");

    desk.store
        .outbox_failed(
            id,
            "550 5.1.1 <alice@example.com>: user unknown",
            NOW + 1000,
        )
        .await
        .expect("failed");
    let ticket = desk
        .get(&format!("/api/v1/tickets/{number}"))
        .bearer(&token)
        .send()
        .await
        .json();
    assert_eq!(ticket["ticket"]["status"], "resolved");
    let failed = &ticket["replies"][0];
    assert_eq!(failed["state"], "failed");
    assert_eq!(
        failed["last_error"],
        "550 5.1.1 <alice@example.com>: user unknown"
    );
    assert_eq!(failed["failed_at"], NOW + 1000);
    let listed = desk
        .get("/api/v1/outbox?state=failed")
        .bearer(&token)
        .send()
        .await
        .json();
    assert_eq!(listed[0]["id"], id);

    let again = desk
        .post(&format!("/api/v1/outbox/{id}/retry"))
        .bearer(&token)
        .send()
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    let again = again.json();
    assert_eq!(again["state"], "queued");
    assert_eq!(again["message_id"], message_id, "the identical message");
    assert_eq!(again["failed_at"], Value::Null);
    let stored = desk
        .store
        .outbox_message(id)
        .await
        .expect("r")
        .expect("row");
    assert_eq!(stored.state, OutboxState::Queued);
    assert_eq!(desk.store.outbox(None, 10).await.expect("o").len(), 1);

    desk.store.outbox_sent(id, NOW + 2000).await.expect("sent");
    desk.post(&format!("/api/v1/outbox/{id}/retry"))
        .bearer(&token)
        .send()
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    desk.post("/api/v1/outbox/999/retry")
        .bearer(&token)
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

/// Posts a reply as the agent; checks status, code and field; checks nothing queued.
async fn refused(
    desk: &Desk,
    session: &str,
    number: i64,
    body: Value,
    status: StatusCode,
    code: &str,
    field: Option<&str>,
) {
    let reply = desk
        .post(&format!("/api/v1/tickets/{number}/replies"))
        .cookie(session)
        .json(body.clone())
        .send()
        .await;
    reply.assert_error(status, code);
    let error = &reply.json()["error"];
    assert_eq!(error["field"].as_str(), field, "{body}: {error}");
    let message = error["message"].as_str().expect("message");
    assert!(
        !message.contains('\n') && message.len() < 400,
        "one sentence: {message}"
    );
    assert_nothing_queued(&desk.store, &body.to_string()).await;
}

#[tokio::test]
async fn every_refused_reply_is_one_sentence_and_queues_nothing() {
    let desk = Desk::new().await;
    let number = with_ticket(&desk).await;
    let agent = desk.agent_session().await;
    let conflict = StatusCode::CONFLICT;
    let invalid = StatusCode::UNPROCESSABLE_ENTITY;

    refused(
        &desk,
        &agent,
        999,
        json!({"body": "hello"}),
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
    refused(
        &desk,
        &agent,
        number,
        json!({"body": "  \n "}),
        invalid,
        "validation",
        Some("body"),
    )
    .await;
    refused(
        &desk,
        &agent,
        number,
        json!({"body": "hi", "cc": ["not an address"]}),
        invalid,
        "validation",
        Some("cc"),
    )
    .await;
    refused(
        &desk,
        &agent,
        number,
        json!({"body": "hi", "cc": ["x@example.com\r\nBcc: spy@example.net"]}),
        invalid,
        "validation",
        Some("cc"),
    )
    .await;
    refused(
        &desk,
        &agent,
        number,
        json!({"body": "hi", "attachments": [{"name": "a.bin", "data": "not base64!"}]}),
        invalid,
        "validation",
        Some("attachments"),
    )
    .await;
    refused(
        &desk,
        &agent,
        number,
        json!({"body": "hi", "attachments": [{"name": "empty.txt", "data": ""}]}),
        invalid,
        "validation",
        Some("attachments"),
    )
    .await;
    refused(
        &desk,
        &agent,
        number,
        json!({"body": "hi", "status": "waiting"}),
        invalid,
        "validation",
        None,
    )
    .await;

    // A closed ticket: reopen first, or the customer's next mail starts a new one.
    let ticket = desk
        .store
        .ticket_by_number(number)
        .await
        .expect("r")
        .expect("t");
    desk.store
        .change_ticket_status(ticket.id, store::TicketStatus::Closed, None, "test", NOW)
        .await
        .expect("close");
    refused(
        &desk,
        &agent,
        number,
        json!({"body": "hi"}),
        conflict,
        "conflict",
        None,
    )
    .await;

    // A mailbox that does not send (the agent works it too).
    let quiet = desk.mailbox("quiet", "quiet@example.com").await;
    let agent = desk.agent_session().await;
    desk.deliver(
        quiet,
        &mail(
            "q1@example.com",
            "Quinn <quinn@example.com>",
            "Hello",
            "Hi.",
        ),
    )
    .await;
    desk.process().await;
    let quiet_ticket = desk
        .store
        .tickets(&store::TicketFilter {
            mailbox_id: Some(quiet),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("t")[0]
        .number;
    let reply = desk
        .post(&format!("/api/v1/tickets/{quiet_ticket}/replies"))
        .cookie(&agent)
        .json(json!({"body": "hi"}))
        .send()
        .await;
    reply.assert_error(conflict, "conflict");
    assert!(reply.text().contains("cannot send"), "{}", reply.text());
    assert_nothing_queued(&desk.store, "a mailbox that does not send").await;
}

#[tokio::test]
async fn attachments_over_the_limit_are_refused_with_413_and_queue_nothing() {
    let data = tempfile::TempDir::new().expect("temp dir");
    let store = Store::open(data.path(), None).await.expect("open store");
    // A small limit, so the test does not post 25 MB: the rules are the same.
    let small = outgoing(
        &store,
        outgoing::ReplyConfig {
            max_attachments_bytes: 1000,
            ..Default::default()
        },
    );
    let desk = Desk::on_store(store, data, crate::common::config(), |state| {
        state.with_outgoing(small)
    });
    let number = with_ticket(&desk).await;
    let agent = desk.agent_session().await;
    let two = json!([
        {"name": "a.bin", "data": b64(&[7u8; 600])},
        {"name": "b.bin", "data": b64(&[8u8; 600])},
    ]);
    refused(
        &desk,
        &agent,
        number,
        json!({"body": "files", "attachments": two}),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        Some("attachments"),
    )
    .await;
    // Within the limit it goes.
    let fits = desk
        .post(&format!("/api/v1/tickets/{number}/replies"))
        .cookie(&agent)
        .json(json!({"body": "", "attachments": [{"name": "a.bin", "data": b64(&[7u8; 600])}]}))
        .send()
        .await;
    assert_eq!(fits.status, StatusCode::CREATED, "{}", fits.text());
}

#[tokio::test]
async fn a_reply_larger_than_other_requests_fits_its_own_body_limit() {
    let desk = Desk::new().await;
    let number = with_ticket(&desk).await;
    let agent = desk.agent_session().await;
    // 3 MB of attachment: over the 1 MB every other route accepts, well within 25 MB.
    let big = vec![b'x'; 3_000_000];
    let reply = desk
        .post(&format!("/api/v1/tickets/{number}/replies"))
        .cookie(&agent)
        .json(json!({"body": "the log", "attachments": [{"name": "log.txt", "content_type": "text/plain", "data": b64(&big)}]}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(reply.json()["attachments"][0]["size"], 3_000_000);
    // A note is still held to the ordinary limit.
    desk.post(&format!("/api/v1/tickets/{number}/notes"))
        .cookie(&agent)
        .json(json!({"body": "x".repeat(2_000_000)}))
        .send()
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[tokio::test]
async fn without_a_sender_in_the_process_replies_are_refused_with_503() {
    let data = tempfile::TempDir::new().expect("temp dir");
    let store = Store::open(data.path(), None).await.expect("open store");
    let state = web::AppState::new(store.clone(), crate::common::config());
    let desk = Desk {
        setup_code: state.setup_code().display(),
        app: web::app(state),
        store,
        clock: intake::ManualClock::new(NOW),
        data,
        pg: None,
    };
    let number = with_ticket(&desk).await;
    let agent = desk.agent_session().await;
    refused(
        &desk,
        &agent,
        number,
        json!({"body": "hi"}),
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        None,
    )
    .await;
}

#[tokio::test]
async fn mailbox_sending_settings_round_trip_and_never_return_a_password() {
    let desk = Desk::new().await;
    let admin = desk.admin_session().await;
    let created = desk
        .post("/api/v1/mailboxes")
        .cookie(&admin)
        .json(json!({
            "name": "support",
            "host": "pop.example.com",
            "username": "support@example.com",
            "password": "pop3-secret-1",
            "address": "support@example.com",
            "display_name": "Example Support",
            "smtp_host": "smtp.example.com",
            "smtp_tls": "starttls",
            "smtp_username": "relay-user",
            "smtp_password": "smtp-secret-2",
            "acknowledge": true,
        }))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    for secret in ["pop3-secret-1", "smtp-secret-2"] {
        assert!(!created.text().contains(secret), "{}", created.text());
    }
    let view = created.json();
    assert!(view.get("smtp_password").is_none() && view.get("password").is_none());
    assert_eq!(view["sending"], true);
    assert_eq!(view["address"], "support@example.com");
    assert_eq!(view["display_name"], "Example Support");
    assert_eq!(view["smtp_host"], "smtp.example.com");
    assert_eq!(view["smtp_port"], 587, "STARTTLS's usual port");
    assert_eq!(view["smtp_tls"], "starttls");
    assert_eq!(view["smtp_auth"], "auto");
    assert_eq!(view["smtp_username"], "relay-user");
    assert_eq!(view["smtp_own_login"], true);
    assert_eq!(view["acknowledge"], true);
    let id = view["id"].as_i64().expect("id");
    let stored = desk.store.smtp_secret(id).await.expect("secret");
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&stored),
        "smtp-secret-2"
    );

    let shown = desk
        .get(&format!("/api/v1/mailboxes/{id}"))
        .cookie(&admin)
        .send()
        .await;
    assert!(!shown.text().contains("smtp-secret-2"));
    assert_eq!(shown.json()["smtp_username"], "relay-user");
    let listed = desk.get("/api/v1/mailboxes").cookie(&admin).send().await;
    assert!(!listed.text().contains("smtp-secret-2"));
    assert_eq!(listed.json()[0]["address"], "support@example.com");

    // Back to the POP3 login: the POP3 password now goes to the SMTP server, so it is
    // asked for again (the secret rule).
    let refused = desk
        .patch(&format!("/api/v1/mailboxes/{id}"))
        .cookie(&admin)
        .json(json!({"smtp_username": null}))
        .send()
        .await;
    refused.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(refused.json()["error"]["field"], "smtp_username");
    let changed = desk
        .patch(&format!("/api/v1/mailboxes/{id}"))
        .cookie(&admin)
        .json(json!({"smtp_username": null, "password": "pop3-secret-1"}))
        .send()
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    assert_eq!(changed.json()["smtp_own_login"], false);
    assert_eq!(changed.json()["smtp_username"], Value::Null);

    let bad_port = desk
        .patch(&format!("/api/v1/mailboxes/{id}"))
        .cookie(&admin)
        .json(json!({"smtp_port": 0}))
        .send()
        .await;
    bad_port.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(bad_port.json()["error"]["field"], "smtp_port");

    // "Test sending" against a port nothing listens on: a 200 that says why.
    let mut settings = desk
        .store
        .mailbox_by_id(id)
        .await
        .expect("r")
        .expect("m")
        .settings;
    if let Some(sending) = settings.sending.as_mut() {
        sending.smtp_host = "127.0.0.1".into();
        sending.smtp_port = 1;
    }
    desk.store
        .update_mailbox(id, &settings, None, NOW)
        .await
        .expect("point SMTP at a closed port");
    let test = desk
        .post(&format!("/api/v1/mailboxes/{id}/test-sending"))
        .cookie(&admin)
        .send()
        .await;
    assert_eq!(test.status, StatusCode::OK, "{}", test.text());
    let test = test.json();
    assert_eq!(test["ok"], false);
    assert!(
        test["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{test}"
    );
    assert_eq!(test["smtp_host"], "127.0.0.1");
    assert_eq!(test["smtp_username"], "support@example.com");

    // Sending off: the view says so, and there is nothing to test.
    let off = desk
        .patch(&format!("/api/v1/mailboxes/{id}"))
        .cookie(&admin)
        .json(json!({"address": null}))
        .send()
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text());
    assert_eq!(off.json()["sending"], false);
    assert_eq!(off.json()["smtp_host"], Value::Null);
    desk.post(&format!("/api/v1/mailboxes/{id}/test-sending"))
        .cookie(&admin)
        .send()
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");

    // Agents answer customers; they do not change how a mailbox sends.
    let agent = desk.agent_session().await;
    desk.post(&format!("/api/v1/mailboxes/{id}/test-sending"))
        .cookie(&agent)
        .send()
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn reply_to_all_keeps_the_customers_cc_but_never_our_own_addresses() {
    let desk = Desk::new().await;
    let support = desk.sending_mailbox("support", "support@example.com").await;
    desk.deliver(
        support,
        b"From: Alice <alice@example.com>\r\nTo: support@example.com, bob@example.com\r\n\
Cc: Carol <carol@example.com>, Support <SUPPORT@example.com>\r\nSubject: Printer jam\r\n\
Date: Thu, 26 Nov 2026 08:00:00 +0000\r\nMessage-ID: <cc1@example.com>\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nIt jams.\r\n",
    )
    .await;
    desk.process().await;
    let number = desk.store.tickets(&Default::default()).await.expect("t")[0].number;
    let agent = desk.agent_session().await;
    let to_all = desk
        .post(&format!("/api/v1/tickets/{number}/replies"))
        .cookie(&agent)
        .json(json!({"body": "Looking into it.", "reply_all": true, "cc": ["dave@example.com"]}))
        .send()
        .await;
    assert_eq!(to_all.status, StatusCode::CREATED, "{}", to_all.text());
    let to_all = to_all.json();
    assert_eq!(to_all["to"], json!(["alice@example.com"]));
    assert_eq!(
        to_all["cc"],
        json!(["dave@example.com", "bob@example.com", "carol@example.com"])
    );
    let only_alice = desk
        .post(&format!("/api/v1/tickets/{number}/replies"))
        .cookie(&agent)
        .json(json!({"body": "Just you."}))
        .send()
        .await
        .json();
    assert_eq!(only_alice["cc"], json!([]));
}
