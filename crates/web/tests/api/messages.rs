//! Stored messages: the record, the raw bytes, reprocessing, attachment downloads that
//! can never run as a page, inline images, the failed/ignored lists.

use axum::http::StatusCode;
use serde_json::Value;

use crate::common::{Desk, PNG, mail, mail_with_attachments};

/// A desk with one processed mail with attachments; returns it and the raw id.
async fn desk_with_attachments() -> (Desk, i64) {
    let desk = Desk::new().await;
    let support = desk.mailbox("support", "support@example.com").await;
    let raw_id = desk
        .deliver(support, &mail_with_attachments("att@example.com"))
        .await;
    desk.process().await;
    (desk, raw_id)
}

/// The attachment list of the message's ticket entry, as the API shows it.
async fn attachments(desk: &Desk, session: &str) -> Vec<Value> {
    let number = desk
        .store
        .tickets(&Default::default())
        .await
        .expect("tickets")[0]
        .number;
    let ticket = desk
        .get(&format!("/api/v1/tickets/{number}"))
        .cookie(session)
        .send()
        .await
        .json();
    ticket["entries"][0]["attachments"]
        .as_array()
        .expect("attachments")
        .clone()
}

fn find<'a>(attachments: &'a [Value], content_type: &str) -> &'a Value {
    attachments
        .iter()
        .find(|a| a["content_type"] == content_type)
        .unwrap_or_else(|| panic!("a {content_type} attachment in {attachments:?}"))
}

#[tokio::test]
async fn a_message_shows_its_processing_and_raw_bytes() {
    let desk = Desk::new().await;
    let support = desk.mailbox("support", "support@example.com").await;
    let bytes = mail("m1@example.com", "alice@example.com", "Hello", "Hi there");
    let raw_id = desk.deliver(support, &bytes).await;
    let agent = desk.agent_session().await;
    let admin = desk.admin_session().await;

    // Waiting mail is on no ticket yet: the admins' to see, missing for agents.
    let pending = desk
        .get(&format!("/api/v1/messages/{raw_id}"))
        .cookie(&admin)
        .send()
        .await;
    assert_eq!(pending.status, StatusCode::OK, "{}", pending.text());
    assert_eq!(pending.json()["processing"]["status"], "pending");
    assert_eq!(pending.json()["processing"]["ticket_number"], Value::Null);
    desk.get(&format!("/api/v1/messages/{raw_id}"))
        .cookie(&agent)
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    desk.process().await;
    let body = desk
        .get(&format!("/api/v1/messages/{raw_id}"))
        .cookie(&agent)
        .send()
        .await
        .json();
    assert_eq!(body["id"], raw_id);
    assert_eq!(body["mailbox_id"], support);
    assert_eq!(body["message_id"], "m1@example.com");
    assert_eq!(body["size"], bytes.len());
    assert_eq!(body["complete"], true);
    assert_eq!(body["processing"]["status"], "processed");
    let number = desk.store.tickets(&Default::default()).await.expect("t")[0].number;
    assert_eq!(body["processing"]["ticket_number"], number);
    assert!(
        !body["processing"]["log"]
            .as_array()
            .expect("log")
            .is_empty()
    );

    let raw = desk
        .get(&format!("/api/v1/messages/{raw_id}/raw"))
        .cookie(&agent)
        .send()
        .await;
    assert_eq!(raw.status, StatusCode::OK);
    assert_eq!(raw.body, bytes);
    assert_eq!(raw.header("content-type"), Some("message/rfc822"));
    assert!(
        raw.header("content-disposition")
            .expect("disposition")
            .starts_with(&format!("attachment; filename=\"message-{raw_id}.eml\"")),
    );
    assert_eq!(raw.header("x-content-type-options"), Some("nosniff"));

    for path in ["/api/v1/messages/999", "/api/v1/messages/999/raw"] {
        desk.get(path)
            .cookie(&agent)
            .send()
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    desk.get("/api/v1/messages/x/raw")
        .cookie(&agent)
        .send()
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn admins_reprocess_a_message() {
    let desk = Desk::new().await;
    let support = desk.mailbox("support", "support@example.com").await;
    let raw_id = desk
        .deliver(
            support,
            &mail("m1@example.com", "alice@example.com", "Hello", "Hi"),
        )
        .await;
    desk.process().await;
    let admin = desk.admin_session().await;
    let agent = desk.agent_session().await;
    let url = format!("/api/v1/messages/{raw_id}/reprocess");
    desk.post(&url)
        .cookie(&agent)
        .send()
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let queued = desk.post(&url).cookie(&admin).send().await;
    assert_eq!(queued.status, StatusCode::ACCEPTED, "{}", queued.text());
    assert_eq!(queued.json()["status"], "pending");
    let record = desk
        .store
        .processing_record(raw_id)
        .await
        .expect("read")
        .expect("record");
    assert_eq!(record.status, store::ProcessStatus::Pending);
    // Processing again finds the same ticket entry: still one ticket.
    desk.process().await;
    assert_eq!(
        desk.store
            .count_tickets(&Default::default())
            .await
            .expect("n"),
        1
    );
    desk.post("/api/v1/messages/999/reprocess")
        .cookie(&admin)
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn attachments_download_and_never_render() {
    let (desk, raw_id) = desk_with_attachments().await;
    let agent = desk.agent_session().await;
    let list = attachments(&desk, &agent).await;

    let html = find(&list, "text/html");
    let reply = desk
        .get(html["download_url"].as_str().expect("url"))
        .cookie(&agent)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.text().contains("<script>"), "the bytes as sent");
    assert_eq!(
        reply.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    let disposition = reply.header("content-disposition").expect("disposition");
    assert!(
        disposition.starts_with("attachment; filename=\"evil.html\""),
        "no path in the name: {disposition}"
    );
    assert!(
        reply
            .header("content-security-policy")
            .expect("csp")
            .contains("sandbox")
    );

    let svg = find(&list, "image/svg+xml");
    let reply = desk
        .get(svg["download_url"].as_str().expect("url"))
        .cookie(&agent)
        .send()
        .await;
    assert_eq!(
        reply.header("content-type"),
        Some("application/octet-stream")
    );

    let pdf = find(&list, "application/pdf");
    let reply = desk
        .get(pdf["download_url"].as_str().expect("url"))
        .cookie(&agent)
        .send()
        .await;
    assert_eq!(reply.header("content-type"), Some("application/pdf"));
    assert!(reply.body.starts_with(b"%PDF"));
    assert_eq!(
        reply.header("content-disposition"),
        Some(
            "attachment; filename=\"Rechnung M_rz.pdf\"; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf"
        )
    );

    let base = format!("/api/v1/messages/{raw_id}/attachments");
    desk.get(&format!("{base}/99"))
        .cookie(&agent)
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    desk.get(&format!("{base}/-1"))
        .cookie(&agent)
        .send()
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    desk.get(&format!("{base}/0"))
        .send()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn inline_images_are_served_by_content_id_and_only_images() {
    let (desk, raw_id) = desk_with_attachments().await;
    let agent = desk.agent_session().await;
    let url = format!("/messages/{raw_id}/cid/logo@example.com");
    desk.get(&url)
        .send()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    let reply = desk.get(&url).cookie(&agent).send().await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.body, PNG);
    assert_eq!(reply.header("content-type"), Some("image/png"));
    assert!(
        reply
            .header("content-disposition")
            .expect("disposition")
            .starts_with("inline;")
    );
    // Percent-encoded angle brackets, as some mail writes the reference.
    let bracketed = desk
        .get(&format!("/messages/{raw_id}/cid/%3Clogo@example.com%3E"))
        .cookie(&agent)
        .send()
        .await;
    assert_eq!(bracketed.status, StatusCode::OK);
    // An SVG is a document that can run script: never inline.
    desk.get(&format!("/messages/{raw_id}/cid/vector@example.com"))
        .cookie(&agent)
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    desk.get(&format!("/messages/{raw_id}/cid/nothing@example.com"))
        .cookie(&agent)
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    desk.get("/messages/999/cid/logo@example.com")
        .cookie(&agent)
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn admins_list_ignored_and_failed_messages() {
    let desk = Desk::new().await;
    let support = desk.mailbox("support", "support@example.com").await;
    // Mail from popdesk's own address is ignored (loop guard), with a reason.
    let ignored = desk
        .deliver(
            support,
            &mail(
                "loop@example.com",
                "support@example.com",
                "Re: your ticket",
                "...",
            ),
        )
        .await;
    desk.deliver(
        support,
        &mail("ok@example.com", "alice@example.com", "Help", "Hi"),
    )
    .await;
    desk.process().await;
    let admin = desk.admin_session().await;
    let agent = desk.agent_session().await;

    let reply = desk
        .get("/api/v1/messages?status=ignored")
        .cookie(&admin)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let items = reply.json()["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], ignored);
    assert_eq!(items[0]["processing"]["status"], "ignored");
    assert!(
        !items[0]["processing"]["reason"]
            .as_str()
            .expect("reason")
            .is_empty()
    );

    let failed = desk.get("/api/v1/messages").cookie(&admin).send().await;
    assert_eq!(
        failed.json()["items"],
        serde_json::json!([]),
        "failed by default"
    );
    let by_mailbox = desk
        .get(&format!(
            "/api/v1/messages?status=processed&mailbox={support}&limit=1"
        ))
        .cookie(&admin)
        .send()
        .await;
    assert_eq!(
        by_mailbox.json()["items"].as_array().expect("items").len(),
        1
    );

    desk.get("/api/v1/messages?status=ignored")
        .cookie(&agent)
        .send()
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    for query in ["status=broken", "limit=0", "limit=501", "mailbox=x"] {
        desk.get(&format!("/api/v1/messages?{query}"))
            .cookie(&admin)
            .send()
            .await
            .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    }
}

/// `x\u{202e}fdp.exe` would show and save as `xexe.pdf`: the right-to-left override (and
/// every other format character) is gone from the download's name and from the page.
#[tokio::test]
async fn attachment_names_lose_bidirectional_overrides_in_downloads_and_on_the_page() {
    let desk = Desk::new().await;
    let support = desk.mailbox("support", "support@example.com").await;
    let bytes = "From: Mallory <mallory@example.com>\r\nTo: support@example.com\r\n\
Subject: Invoice\r\nDate: Thu, 26 Nov 2026 08:00:00 +0000\r\nMessage-ID: <rlo@example.com>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"MIX\"\r\n\r\n\
--MIX\r\nContent-Type: text/plain\r\n\r\nSee the invoice.\r\n\
--MIX\r\nContent-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename*=UTF-8''x%E2%80%AEfdp%E2%80%8B.exe\r\n\
Content-Transfer-Encoding: base64\r\n\r\nTVo=\r\n--MIX--\r\n";
    desk.deliver(support, bytes.as_bytes()).await;
    desk.process().await;
    let agent = desk.agent_session().await;
    let list = attachments(&desk, &agent).await;
    let exe = find(&list, "application/octet-stream");

    let reply = desk
        .get(exe["download_url"].as_str().expect("url"))
        .cookie(&agent)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let disposition = reply.header("content-disposition").expect("disposition");
    assert_eq!(
        disposition,
        "attachment; filename=\"xfdp.exe\"; filename*=UTF-8''xfdp.exe"
    );

    let number = desk
        .store
        .tickets(&Default::default())
        .await
        .expect("tickets")[0]
        .number;
    let page = desk
        .get(&format!("/tickets/{number}"))
        .cookie(&agent)
        .send()
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains(">xfdp.exe</a>"), "{html}");
    assert!(!html.contains('\u{202e}') && !html.contains('\u{200b}'));
}
