//! Notifications by mail to agents (issue 15): asked for in the transaction of the event
//! itself, to the right people only (enabled, preference on, working the mailbox), once
//! each however often the transaction is retried, and turned into exactly one outbox
//! message that never shows in the ticket's thread. Each user's preferences.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{T0, TestDb, add_mailbox, message, on_both_backends};
use sqlx::Executor as _;
use store::{
    EntryKind, NewOutboxMessage, NewTicketEntry, NotificationEvent, OutboxKind, Preferences, Role,
    Store, StoreError,
};

on_both_backends!(
    a_new_ticket_asks_once_for_everyone_who_wants_it_and_can_see_it,
    a_customer_reply_asks_only_the_assignee_who_wants_it,
    a_wanted_notification_becomes_one_outbox_message_outside_the_thread,
    preferences_start_with_the_defaults_and_keep_what_is_set,
);

/// A new stored message (before the processing transaction: on SQLite that holds the
/// one write lock); returns its id.
async fn stored(store: &Store, mailbox_id: i64, uid: &str) -> i64 {
    let outcomes = store
        .commit_batch(mailbox_id, &[message(Some(uid), uid)], T0)
        .await
        .unwrap();
    outcomes[0].raw_message_id()
}

/// Opens a ticket in `mailbox_id` from a stored message, in a processing transaction
/// left open for the caller; returns (ticket id, entry id).
async fn open_ticket(
    tx: &mut store::ProcessingTx,
    mailbox_id: i64,
    raw_id: i64,
    uid: &str,
) -> (i64, i64) {
    let person = tx.person("customer@example.org", None).await.unwrap();
    let ticket = tx
        .create_ticket(mailbox_id, "Printer on fire", &person, T0)
        .await
        .unwrap();
    let entry = add_mail(tx, ticket.id, mailbox_id, raw_id, uid).await;
    (ticket.id, entry)
}

async fn add_mail(
    tx: &mut store::ProcessingTx,
    ticket_id: i64,
    mailbox_id: i64,
    raw_message_id: i64,
    uid: &str,
) -> i64 {
    tx.add_entry(
        ticket_id,
        mailbox_id,
        &NewTicketEntry {
            raw_message_id,
            message_id: format!("{uid}@example.org"),
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
    .unwrap()
}

/// A user with these mailboxes (agents) and the new-ticket preference as given.
async fn user(store: &Store, email: &str, role: Role, mailboxes: &[i64], new_ticket: bool) -> i64 {
    let user = store.create_user(email, None, role, "x", T0).await.unwrap();
    store.set_user_mailboxes(user.id, mailboxes).await.unwrap();
    store
        .set_preferences(
            user.id,
            &Preferences {
                notify_new_ticket: new_ticket,
                ..Preferences::default()
            },
            T0,
        )
        .await
        .unwrap();
    user.id
}

async fn a_new_ticket_asks_once_for_everyone_who_wants_it_and_can_see_it(db: &TestDb) {
    let store = &db.store;
    let support = add_mailbox(store, "support").await.id;
    let sales = add_mailbox(store, "sales").await.id;
    user(store, "ann@example.com", Role::Agent, &[support], true).await;
    user(store, "bob@example.com", Role::Agent, &[sales], true).await;
    user(store, "cid@example.com", Role::Agent, &[support], false).await;
    user(store, "boss@example.com", Role::Admin, &[], true).await;
    user(store, "quiet@example.com", Role::Admin, &[], false).await;
    let gone = user(store, "gone@example.com", Role::Agent, &[support], true).await;
    store
        .update_user(gone, None, Role::Agent, true, T0)
        .await
        .unwrap();

    let raw = stored(store, support, "u1").await;
    let mut tx = store.begin_processing().await.unwrap();
    let (ticket, entry) = open_ticket(&mut tx, support, raw, "u1").await;
    let asked = tx
        .want_new_ticket_notifications(ticket, entry, T0)
        .await
        .unwrap();
    assert_eq!(asked, 2, "ann (works support) and the admin who wants them");
    // The same event asked again (a retried batch) asks nobody twice.
    let again = tx
        .want_new_ticket_notifications(ticket, entry, T0)
        .await
        .unwrap();
    assert_eq!(again, 0);
    tx.commit().await.unwrap();

    // A batch that rolls back asks nobody.
    let raw = stored(store, support, "u2").await;
    let mut rolled_back = store.begin_processing().await.unwrap();
    let (other, other_entry) = open_ticket(&mut rolled_back, support, raw, "u2").await;
    rolled_back
        .want_new_ticket_notifications(other, other_entry, T0)
        .await
        .unwrap();
    drop(rolled_back);

    let wanted = store.wanted_notifications(100).await.unwrap();
    let mut to: Vec<&str> = wanted.iter().map(|w| w.email.as_str()).collect();
    to.sort_unstable();
    assert_eq!(to, ["ann@example.com", "boss@example.com"]);
    assert!(
        wanted
            .iter()
            .all(|w| w.event == NotificationEvent::NewTicket
                && w.ticket_id == ticket
                && w.source_id == entry)
    );
}

async fn a_customer_reply_asks_only_the_assignee_who_wants_it(db: &TestDb) {
    let store = &db.store;
    let support = add_mailbox(store, "support").await.id;
    let sales = add_mailbox(store, "sales").await.id;
    let ann = user(store, "ann@example.com", Role::Agent, &[support], false).await;
    let bob = user(store, "bob@example.com", Role::Agent, &[sales], false).await;

    let raw = stored(store, support, "u1").await;
    let mut tx = store.begin_processing().await.unwrap();
    let (ticket, _) = open_ticket(&mut tx, support, raw, "u1").await;
    tx.commit().await.unwrap();
    let reply = |uid: &'static str| async move {
        let raw = stored(store, support, uid).await;
        let mut tx = store.begin_processing().await.unwrap();
        let entry = add_mail(&mut tx, ticket, support, raw, uid).await;
        let asked = tx
            .want_customer_reply_notification(ticket, entry, T0)
            .await
            .unwrap();
        let again = tx
            .want_customer_reply_notification(ticket, entry, T0)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(again, 0, "once per entry");
        asked
    };
    assert_eq!(reply("r1").await, 0, "nobody is assigned");

    let assign = |user: i64| async move {
        let mut conn = db.raw_connection().await;
        conn.execute(sqlx::AssertSqlSafe(format!(
            "UPDATE tickets SET assignee_id = {user} WHERE id = {ticket}"
        )))
        .await
        .unwrap();
    };
    assign(ann).await;
    assert_eq!(reply("r2").await, 1, "the assignee wants it by default");
    store
        .set_preferences(
            ann,
            &Preferences {
                notify_customer_reply: false,
                ..Preferences::default()
            },
            T0,
        )
        .await
        .unwrap();
    assert_eq!(reply("r3").await, 0, "the preference is off");
    // An assignee who no longer works the mailbox hears nothing of it.
    assign(bob).await;
    assert_eq!(reply("r4").await, 0);

    let wanted = store.wanted_notifications(100).await.unwrap();
    assert_eq!(wanted.len(), 1);
    assert_eq!(wanted[0].event, NotificationEvent::CustomerReply);
    assert_eq!(wanted[0].email, "ann@example.com");
}

async fn a_wanted_notification_becomes_one_outbox_message_outside_the_thread(db: &TestDb) {
    let store = &db.store;
    let support = add_mailbox(store, "support").await.id;
    user(store, "ann@example.com", Role::Agent, &[support], true).await;
    let raw = stored(store, support, "u1").await;
    let mut tx = store.begin_processing().await.unwrap();
    let (ticket, entry) = open_ticket(&mut tx, support, raw, "u1").await;
    tx.want_new_ticket_notifications(ticket, entry, T0)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let wanted = store.wanted_notifications(100).await.unwrap();
    assert_eq!(wanted.len(), 1);
    let new = NewOutboxMessage {
        ticket_id: ticket,
        mailbox_id: support,
        kind: OutboxKind::Notification,
        message_id: "popdesk.n1@example.com".to_string(),
        sha256: format!("{:064}", 1),
        size: 100,
        envelope_from: "support@example.com".to_string(),
        to: vec!["ann@example.com".to_string()],
        cc: Vec::new(),
        subject: "[#1] New ticket: Printer on fire".to_string(),
        body: "A new ticket.".to_string(),
        attachments: Vec::new(),
        author_id: None,
        author: "popdesk (notification)".to_string(),
    };
    let queued = store
        .queue_notification(wanted[0].id, &new, T0)
        .await
        .unwrap()
        .expect("queued");
    assert_eq!(queued.kind, OutboxKind::Notification);
    // A second sender that read the same wish queues nothing.
    let second = NewOutboxMessage {
        message_id: "popdesk.n2@example.com".to_string(),
        ..new.clone()
    };
    assert_eq!(
        store
            .queue_notification(wanted[0].id, &second, T0)
            .await
            .unwrap(),
        None
    );
    assert!(store.wanted_notifications(100).await.unwrap().is_empty());
    assert_eq!(store.outbox(None, 10).await.unwrap(), vec![queued.clone()]);
    // Not part of the conversation: not in the thread, and the agent is no participant.
    assert!(store.ticket_outbox(ticket).await.unwrap().is_empty());
    let mut tx = store.begin_processing().await.unwrap();
    assert!(!tx.is_participant(ticket, "ann@example.com").await.unwrap());
    // Answering it does not thread as if it were a reply to the customer.
    assert_eq!(
        tx.ticket_for_message_ids(support, &["popdesk.n1@example.com".to_string()])
            .await
            .unwrap(),
        None
    );
    // Coming back, it is known as our own mail (promise 9).
    assert_eq!(
        tx.sent_by_us("popdesk.n1@example.com").await.unwrap(),
        Some((queued.id, ticket))
    );
}

async fn preferences_start_with_the_defaults_and_keep_what_is_set(db: &TestDb) {
    let store = &db.store;
    let ann = store
        .create_user("ann@example.com", None, Role::Agent, "x", T0)
        .await
        .unwrap();
    assert_eq!(
        store.preferences(ann.id).await.unwrap(),
        Preferences {
            time_zone: "UTC".to_string(),
            notify_new_ticket: false,
            notify_customer_reply: true,
            notify_assigned: true,
        }
    );
    let chosen = Preferences {
        time_zone: "Europe/Berlin".to_string(),
        notify_new_ticket: true,
        notify_customer_reply: false,
        notify_assigned: false,
    };
    store
        .set_preferences(ann.id, &chosen, T0 + 1)
        .await
        .unwrap();
    assert_eq!(store.preferences(ann.id).await.unwrap(), chosen);
    assert!(matches!(
        store.preferences(999_999).await,
        Err(StoreError::UserNotFound(999_999))
    ));
    assert!(matches!(
        store.set_preferences(999_999, &chosen, T0).await,
        Err(StoreError::UserNotFound(999_999))
    ));
}
