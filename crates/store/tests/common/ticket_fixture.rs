//! Tickets made the way processing makes them (a stored raw message, a requester, a
//! ticket with one entry), for tests about what agents then do with tickets.

use store::{EntryKind, NewTicketEntry, ProcessRecord, ProcessStatus, Role, Store, Ticket, User};

use super::message;

/// Opens a ticket in `mailbox_id` from `requester`, with one mail entry whose Message-ID
/// is `message_id`, at `now`; committed.
pub async fn open_ticket(
    store: &Store,
    mailbox_id: i64,
    requester: &str,
    subject: &str,
    message_id: &str,
    now: i64,
) -> Ticket {
    let raw = message(Some(&format!("uid-{message_id}")), message_id);
    let outcome = store.commit_batch(mailbox_id, &[raw], now).await.unwrap();
    let raw_message_id = outcome[0].raw_message_id();
    let mut tx = store.begin_processing().await.unwrap();
    let person = tx.person(requester, None).await.unwrap();
    let ticket = tx
        .create_ticket(mailbox_id, subject, &person, now)
        .await
        .unwrap();
    let entry = NewTicketEntry {
        raw_message_id,
        message_id: message_id.to_string(),
        kind: EntryKind::Message,
        from_address: Some(requester.to_string()),
        from_name: None,
        subject: Some(subject.to_string()),
        sent_at: Some(now - 60_000),
        reply_text: "Hello".to_string(),
        text_body: "Hello".to_string(),
        html_body: None,
        attachments: Vec::new(),
    };
    tx.add_entry(ticket.id, mailbox_id, &entry, now)
        .await
        .unwrap();
    let record = ProcessRecord {
        status: ProcessStatus::Processed,
        reason: "new ticket".to_string(),
        ticket_id: Some(ticket.id),
        log: vec!["opened a ticket".to_string()],
        processed_at: None,
    };
    tx.record_processing(raw_message_id, &record, now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    store.ticket_by_id(ticket.id).await.unwrap().unwrap()
}

/// An enabled user with this address and role.
pub async fn user(store: &Store, email: &str, name: Option<&str>, role: Role) -> User {
    store
        .create_user(email, name, role, "not a real hash", super::T0)
        .await
        .unwrap()
}
