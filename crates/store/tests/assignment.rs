//! Assignment: a ticket belongs to one agent or to nobody; each change is a history
//! event written with it; only users who can sign in can be given tickets; the list's
//! "Mine" and "Unassigned" views and their status counts follow the assignee.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::ticket_fixture::{open_ticket, user};
use common::{T0, TestDb, add_mailbox, on_both_backends};
use store::{AssigneeFilter, Role, StoreError, TicketEventKind, TicketFilter, TicketStatus};

on_both_backends!(
    assigning_records_who_gave_the_ticket_to_whom,
    assigning_the_same_assignee_again_changes_nothing,
    only_enabled_users_can_be_assigned,
    mine_and_unassigned_views_and_their_counts_follow_the_assignee,
);

async fn assigning_records_who_gave_the_ticket_to_whom(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let ann = user(store, "ann@example.org", Some("Ann"), Role::Agent).await;
    let boss = user(store, "boss@example.org", None, Role::Admin).await;
    let ticket = open_ticket(store, mailbox.id, "c@example.org", "Help", "<a@x>", T0).await;
    assert_eq!(ticket.assignee, None);

    let changed = store
        .assign_ticket(
            ticket.id,
            Some(ann.id),
            Some(boss.id),
            &boss.label(),
            T0 + 10,
        )
        .await
        .unwrap();
    assert!(changed);
    let ticket = store.ticket_by_id(ticket.id).await.unwrap().unwrap();
    let assignee = ticket.assignee.expect("assigned");
    assert_eq!(
        (assignee.id, assignee.email.as_str()),
        (ann.id, "ann@example.org")
    );
    assert_eq!(assignee.label(), "Ann");
    assert_eq!(ticket.updated_at, T0 + 10, "an assignment is activity");

    store
        .assign_ticket(ticket.id, None, Some(ann.id), &ann.label(), T0 + 20)
        .await
        .unwrap();
    let ticket = store.ticket_by_id(ticket.id).await.unwrap().unwrap();
    assert_eq!(ticket.assignee, None);

    let events = store.ticket_events(ticket.id).await.unwrap();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.kind == TicketEventKind::Assignment));
    assert_eq!(events[0].author, "boss@example.org");
    assert_eq!(events[0].assignee_id, Some(ann.id));
    assert_eq!(events[0].assignee.as_deref(), Some("Ann <ann@example.org>"));
    assert_eq!(events[1].author_id, Some(ann.id));
    assert_eq!(
        (events[1].assignee_id, events[1].assignee.as_deref()),
        (None, None)
    );
}

async fn assigning_the_same_assignee_again_changes_nothing(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let ann = user(store, "ann@example.org", None, Role::Agent).await;
    let ticket = open_ticket(store, mailbox.id, "c@example.org", "Help", "<a@x>", T0).await;
    assert!(
        !store
            .assign_ticket(ticket.id, None, None, "token", T0 + 5)
            .await
            .unwrap(),
        "unassigning an unassigned ticket is no change"
    );
    assert!(
        store
            .assign_ticket(ticket.id, Some(ann.id), None, "token", T0 + 10)
            .await
            .unwrap()
    );
    assert!(
        !store
            .assign_ticket(ticket.id, Some(ann.id), None, "token", T0 + 20)
            .await
            .unwrap()
    );
    assert_eq!(store.ticket_events(ticket.id).await.unwrap().len(), 1);
    let ticket = store.ticket_by_id(ticket.id).await.unwrap().unwrap();
    assert_eq!(ticket.updated_at, T0 + 10, "no change is no activity");
}

async fn only_enabled_users_can_be_assigned(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let gone = user(store, "gone@example.org", None, Role::Agent).await;
    store
        .update_user(gone.id, None, Role::Agent, true, T0)
        .await
        .unwrap();
    let ticket = open_ticket(store, mailbox.id, "c@example.org", "Help", "<a@x>", T0).await;

    let disabled = store
        .assign_ticket(ticket.id, Some(gone.id), None, "t", T0)
        .await;
    assert!(matches!(disabled, Err(StoreError::AssigneeUnavailable(id)) if id == gone.id));
    let missing = store
        .assign_ticket(ticket.id, Some(99_999), None, "t", T0)
        .await;
    assert!(matches!(
        missing,
        Err(StoreError::AssigneeUnavailable(99_999))
    ));
    let no_ticket = store.assign_ticket(88_888, None, None, "t", T0).await;
    assert!(matches!(no_ticket, Err(StoreError::TicketNotFound(88_888))));
    // Nothing was written by the refusals.
    assert!(store.ticket_events(ticket.id).await.unwrap().is_empty());
    assert_eq!(
        store
            .ticket_by_id(ticket.id)
            .await
            .unwrap()
            .unwrap()
            .assignee,
        None
    );
}

async fn mine_and_unassigned_views_and_their_counts_follow_the_assignee(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let ann = user(store, "ann@example.org", None, Role::Agent).await;
    let bob = user(store, "bob@example.org", None, Role::Agent).await;
    let mut numbers = Vec::new();
    for i in 0..5 {
        let id = format!("<t{i}@x>");
        let t = open_ticket(store, mailbox.id, "c@example.org", "Help", &id, T0 + i).await;
        numbers.push(t);
    }
    store
        .assign_ticket(numbers[0].id, Some(ann.id), None, "t", T0 + 10)
        .await
        .unwrap();
    store
        .assign_ticket(numbers[1].id, Some(ann.id), None, "t", T0 + 11)
        .await
        .unwrap();
    store
        .assign_ticket(numbers[2].id, Some(bob.id), None, "t", T0 + 12)
        .await
        .unwrap();
    store
        .change_ticket_status(numbers[1].id, TicketStatus::Pending, None, "t", T0 + 13)
        .await
        .unwrap();

    let mine = TicketFilter {
        assignee: AssigneeFilter::User(ann.id),
        ..TicketFilter::default()
    };
    let listed: Vec<i64> = store
        .tickets(&mine)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, [numbers[1].id, numbers[0].id]);
    assert_eq!(store.count_tickets(&mine).await.unwrap(), 2);
    let counts = store.count_tickets_by_status(&mine).await.unwrap();
    assert!(counts.contains(&(TicketStatus::New, 1)));
    assert!(counts.contains(&(TicketStatus::Pending, 1)));

    let unassigned = TicketFilter {
        assignee: AssigneeFilter::Nobody,
        ..TicketFilter::default()
    };
    let listed: Vec<i64> = store
        .tickets(&unassigned)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, [numbers[4].id, numbers[3].id]);
    let counts = store.count_tickets_by_status(&unassigned).await.unwrap();
    assert!(counts.contains(&(TicketStatus::New, 2)));
    assert!(counts.contains(&(TicketStatus::Pending, 0)));
}
