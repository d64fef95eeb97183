//! Merge: ticket A merged into B moves A's mail, history, outgoing mail, pending
//! acknowledgement and processing records to B in one transaction; A stays as a closed
//! pointer to B, out of the list; later mail naming A (`[#A]`, or a reply to one of its
//! messages or of its replies) threads into B; merges that would lose a ticket or loop
//! are refused with nothing changed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::ticket_fixture::open_ticket;
use common::{T0, TestDb, add_mailbox, on_both_backends};
use store::{
    NewOutboxMessage, OutboxKind, StoreError, TicketEventKind, TicketFilter, TicketStatus,
};

on_both_backends!(
    a_merge_moves_everything_of_the_ticket_into_the_other,
    mail_naming_the_merged_ticket_threads_into_the_one_it_joined,
    merges_that_would_lose_or_loop_a_ticket_are_refused,
);

fn reply(mailbox_id: i64, ticket_id: i64, message_id: &str) -> NewOutboxMessage {
    NewOutboxMessage {
        ticket_id,
        mailbox_id,
        kind: OutboxKind::Reply,
        message_id: message_id.to_string(),
        sha256: format!("{:064}", 7),
        size: 100,
        envelope_from: "support@example.com".to_string(),
        to: vec!["c@example.org".to_string()],
        cc: Vec::new(),
        subject: "Re: Help".to_string(),
        body: "Try this.".to_string(),
        attachments: Vec::new(),
        author_id: None,
        author: "Agent".to_string(),
    }
}

async fn a_merge_moves_everything_of_the_ticket_into_the_other(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let b = open_ticket(store, mailbox.id, "c@example.org", "Printer", "<b1@x>", T0).await;
    let a = open_ticket(
        store,
        mailbox.id,
        "c@example.org",
        "Printer again",
        "<a1@x>",
        T0 + 100,
    )
    .await;
    store
        .add_ticket_note(a.id, None, "Agent", "note on A", T0 + 200)
        .await
        .unwrap();
    store
        .queue_reply(&reply(mailbox.id, a.id, "reply-a@popdesk"), None, T0 + 300)
        .await
        .unwrap();
    let mut tx = store.begin_processing().await.unwrap();
    tx.want_acknowledgement(a.id, mailbox.id, "c@example.org", T0 + 100)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let a_raw: Vec<i64> = store
        .ticket_entries(a.id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.raw_message_id)
        .collect();

    store
        .merge_tickets(a.id, b.id, None, "Agent <agent@example.org>", T0 + 1_000)
        .await
        .unwrap();

    let merged = store.ticket_by_id(a.id).await.unwrap().unwrap();
    assert_eq!(merged.merged_into, Some(b.number));
    assert_eq!(merged.status, TicketStatus::Closed);
    assert!(store.ticket_entries(a.id).await.unwrap().is_empty());
    assert!(store.ticket_outbox(a.id).await.unwrap().is_empty());
    let a_events = store.ticket_events(a.id).await.unwrap();
    assert_eq!(a_events.len(), 1, "A keeps only the merge itself");
    assert_eq!(a_events[0].kind, TicketEventKind::Merge);
    assert_eq!(a_events[0].other_ticket_number, Some(b.number));

    let joined = store.ticket_by_id(b.id).await.unwrap().unwrap();
    assert_eq!(joined.merged_into, None);
    assert_eq!(joined.entry_count, 2);
    assert_eq!(joined.updated_at, T0 + 1_000);
    assert_eq!(joined.first_mail_sent_at, Some(T0 - 60_000));
    assert_eq!(joined.last_mail_sent_at, Some(T0 + 100 - 60_000));
    let entries = store.ticket_entries(b.id).await.unwrap();
    assert_eq!(
        entries.iter().filter(|e| e.message_id == "<a1@x>").count(),
        1
    );
    let outbox = store.ticket_outbox(b.id).await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].ticket_number, b.number);
    let kinds: Vec<_> = store
        .ticket_events(b.id)
        .await
        .unwrap()
        .iter()
        .map(|e| (e.kind, e.other_ticket_number))
        .collect();
    assert!(kinds.contains(&(TicketEventKind::Note, None)));
    assert!(kinds.contains(&(TicketEventKind::Reply, None)));
    assert_eq!(
        kinds.last(),
        Some(&(TicketEventKind::Merge, Some(a.number)))
    );
    let wanted = store.wanted_acknowledgements(10).await.unwrap();
    assert_eq!(wanted.len(), 1);
    assert_eq!(wanted[0].ticket_id, b.id);
    for raw_message_id in a_raw {
        let record = store
            .processing_record(raw_message_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            record.ticket_id,
            Some(b.id),
            "the message's ticket is B now"
        );
    }

    // The list shows B only; the merged ticket lives on as a pointer.
    let listed: Vec<i64> = store
        .tickets(&TicketFilter::default())
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, [b.id]);
}

async fn mail_naming_the_merged_ticket_threads_into_the_one_it_joined(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let other = add_mailbox(store, "sales").await;
    let b = open_ticket(store, other.id, "c@example.org", "Printer", "<b1@x>", T0).await;
    let a = open_ticket(store, mailbox.id, "c@example.org", "Printer", "<a1@x>", T0).await;
    store
        .queue_reply(&reply(mailbox.id, a.id, "reply-a@popdesk"), None, T0 + 300)
        .await
        .unwrap();
    store
        .merge_tickets(a.id, b.id, None, "Agent", T0 + 1_000)
        .await
        .unwrap();

    let mut tx = store.begin_processing().await.unwrap();
    let by_number = tx
        .ticket_by_number(mailbox.id, a.number)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_number.id, b.id, "[#A] in A's mailbox leads to B");
    let (by_reply, matched) = tx
        .ticket_for_message_ids(mailbox.id, &["<a1@x>".to_string()])
        .await
        .unwrap()
        .unwrap();
    assert_eq!((by_reply.id, matched.as_str()), (b.id, "<a1@x>"));
    let (by_our_reply, _) = tx
        .ticket_for_message_ids(mailbox.id, &["reply-a@popdesk".to_string()])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_our_reply.id, b.id, "an answer to A's reply lands in B");
    tx.commit().await.unwrap();
}

async fn merges_that_would_lose_or_loop_a_ticket_are_refused(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let a = open_ticket(store, mailbox.id, "c@example.org", "One", "<a@x>", T0).await;
    let b = open_ticket(store, mailbox.id, "c@example.org", "Two", "<b@x>", T0).await;
    let c = open_ticket(store, mailbox.id, "c@example.org", "Three", "<c@x>", T0).await;

    let itself = store.merge_tickets(a.id, a.id, None, "Agent", T0).await;
    assert!(matches!(itself, Err(StoreError::MergeIntoItself(n)) if n == a.number));
    let missing = store.merge_tickets(a.id, 77_777, None, "Agent", T0).await;
    assert!(matches!(missing, Err(StoreError::TicketNotFound(77_777))));

    store
        .merge_tickets(a.id, b.id, None, "Agent", T0 + 1)
        .await
        .unwrap();
    // Into a merged ticket: the one it joined is the place.
    let into_merged = store.merge_tickets(c.id, a.id, None, "Agent", T0 + 2).await;
    assert!(matches!(
        into_merged,
        Err(StoreError::MergedAlready { ticket, merged_into }) if ticket == a.number && merged_into == b.number
    ));
    // B into A, which was merged into B: a loop.
    let back = store.merge_tickets(b.id, a.id, None, "Agent", T0 + 3).await;
    assert!(matches!(back, Err(StoreError::MergedAlready { .. })));
    // A merged ticket has nothing left to merge.
    let again = store.merge_tickets(a.id, c.id, None, "Agent", T0 + 4).await;
    assert!(matches!(again, Err(StoreError::MergedAlready { .. })));

    // The refusals changed nothing.
    assert_eq!(store.ticket_entries(b.id).await.unwrap().len(), 2);
    assert_eq!(store.ticket_entries(c.id).await.unwrap().len(), 1);
    let c_now = store.ticket_by_id(c.id).await.unwrap().unwrap();
    assert_eq!((c_now.status, c_now.merged_into), (TicketStatus::New, None));
    assert!(store.ticket_events(c.id).await.unwrap().is_empty());
}
