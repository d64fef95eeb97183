//! The outbox (promise 8): a reply is committed with its ticket event and status in one
//! transaction; senders claim due messages without two of them taking the same one; a
//! temporary failure waits, a permanent one fails with the server's words, "send again"
//! queues the same message. Promise 9: our Message-IDs thread customers' answers.
//! Promise 10: one acknowledgement per sender and period.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{T0, TestDb, add_mailbox, message, on_both_backends};
use store::{
    AcknowledgementOutcome, EntryKind, NewOutboxMessage, NewTicketEntry, OutboxKind, OutboxState,
    Store, TicketEventKind, TicketStatus,
};

on_both_backends!(
    a_reply_is_committed_with_its_event_and_the_chosen_status,
    two_senders_never_claim_the_same_message,
    a_claim_that_runs_out_lets_another_sender_take_the_message,
    temporary_failures_wait_permanent_ones_fail_and_send_again_requeues,
    a_customer_answer_to_our_reply_finds_the_ticket_and_our_copy_is_known,
    one_acknowledgement_per_sender_and_period,
);

/// A mailbox with one ticket opened by one stored message; returns (mailbox, ticket id).
async fn ticket(store: &Store) -> (i64, i64) {
    let mailbox = add_mailbox(store, "support").await;
    let outcomes = store
        .commit_batch(mailbox.id, &[message(Some("u1"), "printer on fire")], T0)
        .await
        .unwrap();
    let raw = store
        .raw_message(outcomes[0].raw_message_id())
        .await
        .unwrap()
        .unwrap();
    let mut tx = store.begin_processing().await.unwrap();
    let person = tx.person("customer@example.org", None).await.unwrap();
    let ticket = tx
        .create_ticket(mailbox.id, "Printer on fire", &person, T0)
        .await
        .unwrap();
    tx.add_entry(
        ticket.id,
        mailbox.id,
        &NewTicketEntry {
            raw_message_id: raw.id,
            message_id: "customer-1@example.org".to_string(),
            kind: EntryKind::Message,
            from_address: Some("customer@example.org".to_string()),
            from_name: None,
            subject: Some("Printer on fire".to_string()),
            sent_at: Some(T0),
            reply_text: "It is on fire.".to_string(),
            text_body: "It is on fire.".to_string(),
            html_body: None,
            attachments: Vec::new(),
        },
        T0,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (mailbox.id, ticket.id)
}

fn reply(mailbox_id: i64, ticket_id: i64, n: u32) -> NewOutboxMessage {
    NewOutboxMessage {
        ticket_id,
        mailbox_id,
        kind: OutboxKind::Reply,
        message_id: format!("popdesk.{n}@example.com"),
        sha256: format!("{n:064}"),
        size: 1234,
        envelope_from: "support@example.com".to_string(),
        to: vec!["customer@example.org".to_string()],
        cc: vec!["boss@example.org".to_string()],
        subject: "Re: Printer on fire [#1]".to_string(),
        body: "Have you tried turning it off?".to_string(),
        attachments: Vec::new(),
        author_id: None,
        author: "Agent Smith".to_string(),
    }
}

async fn a_reply_is_committed_with_its_event_and_the_chosen_status(db: &TestDb) {
    let store = &db.store;
    let (mailbox, ticket) = ticket(store).await;
    let (queued, events) = store
        .queue_reply(
            &reply(mailbox, ticket, 1),
            Some(TicketStatus::Pending),
            T0 + 10,
        )
        .await
        .unwrap();
    assert_eq!(queued.state, OutboxState::Queued);
    assert_eq!(queued.to, ["customer@example.org"]);
    assert_eq!(queued.cc, ["boss@example.org"]);
    assert_eq!(queued.next_attempt_at, T0 + 10, "due at once");
    assert_eq!(queued.ticket_number, 1);
    let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [TicketEventKind::Reply, TicketEventKind::Status]);
    assert_eq!(events[0].outbox_id, Some(queued.id));
    assert_eq!(
        events[0].body.as_deref(),
        Some("Have you tried turning it off?")
    );
    let ticket_now = store.ticket_by_id(ticket).await.unwrap().unwrap();
    assert_eq!(ticket_now.status, TicketStatus::Pending);
    assert_eq!(store.ticket_events(ticket).await.unwrap().len(), 2);
    assert_eq!(store.ticket_outbox(ticket).await.unwrap(), vec![queued]);
    // A reply to a ticket that is gone is refused, and nothing is left behind.
    let error = store
        .queue_reply(&reply(mailbox, 999_999, 2), None, T0)
        .await
        .unwrap_err();
    assert!(matches!(error, store::StoreError::TicketNotFound(_)));
    assert_eq!(store.outbox(None, 10).await.unwrap().len(), 1);
}

async fn two_senders_never_claim_the_same_message(db: &TestDb) {
    let store = &db.store;
    let (mailbox, ticket) = ticket(store).await;
    for n in 0..20 {
        store
            .queue_reply(&reply(mailbox, ticket, n), None, T0)
            .await
            .unwrap();
    }
    let other = db.reopen().await;
    let (a, b) = tokio::join!(
        store.claim_due_outbox(T0 + 1, 15, 60_000),
        other.claim_due_outbox(T0 + 1, 15, 60_000)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut ids: Vec<i64> = a.iter().chain(b.iter()).map(|m| m.id).collect();
    let claimed = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), claimed, "a message was claimed twice");
    assert_eq!(claimed, 20, "every due message was claimed by one of them");
    // While claimed, nobody else gets them.
    assert!(
        store
            .claim_due_outbox(T0 + 2, 50, 60_000)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_claim_that_runs_out_lets_another_sender_take_the_message(db: &TestDb) {
    let store = &db.store;
    let (mailbox, ticket) = ticket(store).await;
    let (queued, _) = store
        .queue_reply(&reply(mailbox, ticket, 1), None, T0)
        .await
        .unwrap();
    let first = store.claim_due_outbox(T0, 10, 1_000).await.unwrap();
    assert_eq!(first.len(), 1);
    // The first sender died before recording anything.
    assert!(
        store
            .claim_due_outbox(T0 + 999, 10, 1_000)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim_due_outbox(T0 + 1_000, 10, 1_000).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (
            again[0].id,
            again[0].message_id.as_str(),
            again[0].sha256.as_str()
        ),
        (
            queued.id,
            queued.message_id.as_str(),
            queued.sha256.as_str()
        ),
        "the same bytes with the same Message-ID"
    );
}

async fn temporary_failures_wait_permanent_ones_fail_and_send_again_requeues(db: &TestDb) {
    let store = &db.store;
    let (mailbox, ticket) = ticket(store).await;
    let (queued, _) = store
        .queue_reply(&reply(mailbox, ticket, 1), None, T0)
        .await
        .unwrap();
    store.claim_due_outbox(T0, 10, 60_000).await.unwrap();
    store
        .outbox_retry_later(queued.id, "450 4.7.1 try later", T0 + 60_000, T0)
        .await
        .unwrap();
    let waiting = store.outbox_message(queued.id).await.unwrap().unwrap();
    assert_eq!(
        (waiting.state, waiting.attempts, waiting.next_attempt_at),
        (OutboxState::Queued, 1, T0 + 60_000)
    );
    assert_eq!(waiting.last_error.as_deref(), Some("450 4.7.1 try later"));
    assert!(
        store
            .claim_due_outbox(T0 + 59_999, 10, 60_000)
            .await
            .unwrap()
            .is_empty(),
        "not due before its time"
    );
    assert_eq!(
        store
            .claim_due_outbox(T0 + 60_000, 10, 60_000)
            .await
            .unwrap()
            .len(),
        1
    );
    store
        .outbox_failed(queued.id, "550 5.1.1 no such user", T0 + 60_001)
        .await
        .unwrap();
    let failed = store.outbox_message(queued.id).await.unwrap().unwrap();
    assert_eq!(failed.state, OutboxState::Failed);
    assert_eq!(failed.failed_at, Some(T0 + 60_001));
    assert_eq!(failed.last_error.as_deref(), Some("550 5.1.1 no such user"));
    assert!(
        store
            .claim_due_outbox(T0 + 999_999, 10, 60_000)
            .await
            .unwrap()
            .is_empty(),
        "a failed message is not sent on its own"
    );
    let again = store
        .outbox_send_again(queued.id, T0 + 100_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.state, OutboxState::Queued);
    assert_eq!(again.message_id, queued.message_id);
    assert_eq!(again.retry_from, T0 + 100_000, "a fresh retry time");
    store
        .claim_due_outbox(T0 + 100_000, 10, 60_000)
        .await
        .unwrap();
    store.outbox_sent(queued.id, T0 + 100_001).await.unwrap();
    let sent = store.outbox_message(queued.id).await.unwrap().unwrap();
    assert_eq!(
        (sent.state, sent.sent_at),
        (OutboxState::Sent, Some(T0 + 100_001))
    );
    assert_eq!(sent.last_error, None);
    assert_eq!(
        store.outbox_counts().await.unwrap(),
        vec![(OutboxState::Sent, 1)]
    );
    assert!(
        store
            .outbox_send_again(424_242, T0)
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_customer_answer_to_our_reply_finds_the_ticket_and_our_copy_is_known(db: &TestDb) {
    let store = &db.store;
    let (mailbox, ticket) = ticket(store).await;
    let (queued, _) = store
        .queue_reply(&reply(mailbox, ticket, 7), None, T0)
        .await
        .unwrap();
    let other = add_mailbox(store, "sales").await;
    let mut tx = store.begin_processing().await.unwrap();
    let found = tx
        .ticket_for_message_ids(
            mailbox,
            &["unknown@x".to_string(), queued.message_id.clone()],
        )
        .await
        .unwrap()
        .map(|(t, id)| (t.id, id));
    assert_eq!(found, Some((ticket, queued.message_id.clone())));
    assert_eq!(
        tx.sent_by_us(&queued.message_id).await.unwrap(),
        Some((queued.id, ticket))
    );
    assert_eq!(tx.sent_by_us("customer-1@example.org").await.unwrap(), None);
    // Threading stays per mailbox, as for customers' mail.
    assert!(
        tx.ticket_for_message_ids(other.id, std::slice::from_ref(&queued.message_id))
            .await
            .unwrap()
            .is_none()
    );
    tx.commit().await.unwrap();
}

async fn one_acknowledgement_per_sender_and_period(db: &TestDb) {
    let store = &db.store;
    let (mailbox, first) = ticket(store).await;
    let ack = |ticket_id: i64, n: u32| NewOutboxMessage {
        kind: OutboxKind::Acknowledgement,
        to: vec!["customer@example.org".to_string()],
        cc: Vec::new(),
        ..reply(mailbox, ticket_id, n)
    };
    let mut tx = store.begin_processing().await.unwrap();
    tx.want_acknowledgement(first, mailbox, "Customer@Example.org", T0)
        .await
        .unwrap();
    // Asked twice (a reprocessed message): still one.
    tx.want_acknowledgement(first, mailbox, "customer@example.org", T0)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let wanted = store.wanted_acknowledgements(10).await.unwrap();
    assert_eq!(wanted.len(), 1);
    assert_eq!(wanted[0].address, "customer@example.org");
    let outcome = store
        .queue_acknowledgement(&ack(first, 1), "customer@example.org", T0 - 86_400_000, T0)
        .await
        .unwrap();
    assert!(matches!(outcome, AcknowledgementOutcome::Queued(_)));
    assert!(store.wanted_acknowledgements(10).await.unwrap().is_empty());
    // The same ticket again: nobody wants it any more.
    let outcome = store
        .queue_acknowledgement(&ack(first, 2), "customer@example.org", T0 - 86_400_000, T0)
        .await
        .unwrap();
    assert_eq!(outcome, AcknowledgementOutcome::NotWanted);
    // A second ticket of the same sender within the period: not acknowledged.
    let mut tx = store.begin_processing().await.unwrap();
    let person = tx.person("customer@example.org", None).await.unwrap();
    let second = tx
        .create_ticket(mailbox, "Another thing", &person, T0 + 1000)
        .await
        .unwrap();
    tx.want_acknowledgement(second.id, mailbox, "customer@example.org", T0 + 1000)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let outcome = store
        .queue_acknowledgement(
            &ack(second.id, 3),
            "customer@example.org",
            T0 + 1000 - 86_400_000,
            T0 + 1000,
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        AcknowledgementOutcome::RecentlyAcknowledged { last_sent_at: T0 }
    );
    assert_eq!(store.outbox(None, 10).await.unwrap().len(), 1);
}
