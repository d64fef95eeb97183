//! Tickets and the processing queue: promise 2 (one message, at most one ticket entry;
//! the same mail in two mailboxes is a ticket in each) and promise 5 (every stored
//! message waits in the queue until processed, failures stay visible and can be
//! reprocessed, a failed batch leaves nothing half-done).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{T0, TestDb, add_mailbox, message, on_both_backends};
use sqlx::Connection;
use store::{
    Backend, EntryAttachment, EntryKind, NewTicketEntry, OpenedTicket, ProcessRecord,
    ProcessStatus, ProcessingTx, RawMessage, Store, StoreError, TicketFilter, TicketStatus,
};

on_both_backends!(
    stored_messages_wait_for_processing_oldest_first,
    messages_stored_before_tickets_existed_wait_for_processing,
    a_batch_dropped_without_commit_leaves_nothing,
    lookups_in_a_batch_see_what_it_wrote,
    ticket_numbers_are_unique_and_increasing,
    concurrent_processors_never_share_a_ticket_number,
    one_raw_message_is_at_most_one_ticket_entry,
    a_ticket_opened_with_its_first_mail_has_requester_entry_and_dates,
    opening_a_ticket_for_a_message_with_an_entry_writes_nothing,
    tickets_opened_in_a_batch_are_seen_by_its_next_statements,
    tickets_opened_in_a_batch_never_take_an_id_given_before,
    a_lookup_by_message_id_ranks_waiting_tickets_after_written_mail,
    a_fetch_commit_waiting_for_a_batch_goes_before_the_next_batch,
    same_message_id_in_two_mailboxes_is_an_entry_in_each,
    threading_by_message_id_takes_the_first_id_that_matches,
    a_ticket_number_threads_only_within_its_mailbox,
    a_person_is_one_per_address_and_takes_the_latest_name,
    the_requesters_name_is_the_one_in_the_mail_that_opened_the_ticket,
    attachments_round_trip_through_the_entry,
    processing_records_are_kept_with_reason_and_log,
    a_failed_message_can_be_reprocessed_into_its_ticket_once,
    ticket_list_filters_pages_and_counts,
    ticket_status_changes_count_as_activity,
    claimed_messages_are_the_pending_ones_oldest_first,
);

// ---- fixtures ----

/// Stores `bodies` as raw messages of `mailbox_id`, one batch, and returns them.
async fn store_messages(store: &Store, mailbox_id: i64, bodies: &[&str]) -> Vec<RawMessage> {
    let batch: Vec<_> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| message(Some(&format!("uid-{mailbox_id}-{i}-{body}")), body))
        .collect();
    let outcomes = store.commit_batch(mailbox_id, &batch, T0).await.unwrap();
    let mut raw = Vec::new();
    for outcome in outcomes {
        raw.push(
            store
                .raw_message(outcome.raw_message_id())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    raw
}

fn entry(raw_message_id: i64, message_id: &str) -> NewTicketEntry {
    NewTicketEntry {
        raw_message_id,
        message_id: message_id.to_string(),
        kind: EntryKind::Message,
        from_address: Some("customer@example.org".to_string()),
        from_name: Some("A Customer".to_string()),
        subject: Some("Printer on fire".to_string()),
        sent_at: Some(T0 - 60_000),
        reply_text: "It is on fire.".to_string(),
        text_body: "It is on fire.\n\n> earlier".to_string(),
        html_body: None,
        attachments: Vec::new(),
    }
}

fn processed(ticket_id: i64) -> ProcessRecord {
    ProcessRecord {
        status: ProcessStatus::Processed,
        reason: "new ticket".to_string(),
        ticket_id: Some(ticket_id),
        log: vec!["parsed".to_string(), "opened a ticket".to_string()],
        processed_at: None,
    }
}

fn failed(reason: &str) -> ProcessRecord {
    ProcessRecord {
        status: ProcessStatus::Failed,
        reason: reason.to_string(),
        ticket_id: None,
        log: vec!["parse failed".to_string()],
        processed_at: None,
    }
}

/// Opens a ticket for `raw` (one batch, committed) and returns its id and number.
async fn open_ticket(store: &Store, raw: &RawMessage, message_id: &str, now: i64) -> (i64, i64) {
    let mut tx = store.begin_processing().await.unwrap();
    let person = tx.person("customer@example.org", None).await.unwrap();
    let ticket = tx
        .create_ticket(raw.mailbox_id, "Printer on fire", &person, now)
        .await
        .unwrap();
    tx.add_entry(ticket.id, raw.mailbox_id, &entry(raw.id, message_id), now)
        .await
        .unwrap();
    tx.record_processing(raw.id, &processed(ticket.id), now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (ticket.id, ticket.number)
}

/// Opens a ticket for `raw` in the batch `tx` (see `ProcessingTx::open_ticket_in_batch`).
async fn open_in_batch(
    tx: &mut ProcessingTx,
    raw: &RawMessage,
    subject: &str,
    sender: (&str, Option<&str>),
    message_id: &str,
    now: i64,
) -> OpenedTicket {
    tx.open_ticket_in_batch(
        raw.mailbox_id,
        subject,
        sender,
        entry(raw.id, message_id),
        now,
    )
    .await
    .unwrap()
}

// ---- tests ----

/// Every stored message starts pending; the queue hands them out in arrival order, a
/// bounded number at a time, and a processed one leaves the queue.
async fn stored_messages_wait_for_processing_oldest_first(db: &TestDb) {
    let store = &db.store;
    let a = add_mailbox(store, "a").await;
    let b = add_mailbox(store, "b").await;
    let first = store_messages(store, a.id, &["one", "two"]).await;
    let second = store_messages(store, b.id, &["three"]).await;
    let third = store_messages(store, a.id, &["four"]).await;
    let all: Vec<i64> = first
        .iter()
        .chain(&second)
        .chain(&third)
        .map(|m| m.id)
        .collect();

    let pending = store.pending_raw_messages(10).await.unwrap();
    assert_eq!(pending.iter().map(|m| m.id).collect::<Vec<_>>(), all);
    assert_eq!(pending[0], first[0]);
    let limited = store.pending_raw_messages(2).await.unwrap();
    assert_eq!(limited.iter().map(|m| m.id).collect::<Vec<_>>(), all[..2]);
    assert!(store.pending_raw_messages(0).await.unwrap().is_empty());

    let record = store.processing_record(all[0]).await.unwrap().unwrap();
    assert_eq!(
        record,
        ProcessRecord {
            status: ProcessStatus::Pending,
            reason: String::new(),
            ticket_id: None,
            log: Vec::new(),
            processed_at: None,
        }
    );

    let mut tx = store.begin_processing().await.unwrap();
    tx.record_processing(all[0], &failed("unparseable"), T0 + 1)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let pending = store.pending_raw_messages(10).await.unwrap();
    assert_eq!(pending.iter().map(|m| m.id).collect::<Vec<_>>(), all[1..]);
}

/// The migration that added processing leaves every message already stored pending,
/// so mail fetched before the upgrade becomes tickets too.
async fn messages_stored_before_tickets_existed_wait_for_processing(db: &TestDb) {
    // A second database on the same backend, migrated only as far as the first
    // migration, with a message in it; then opened by the store.
    let (dir, url, _pg) = common::fresh(db.backend).await;
    let (folder, url) = match db.backend {
        Backend::Sqlite => (
            "sqlite",
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("popdesk.db").display()
            ),
        ),
        Backend::Postgres => ("postgres", url.clone().unwrap()),
    };
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(folder);
    let migrator = sqlx::migrate::Migrator::new(migrations).await.unwrap();
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    migrator.run_to(1, &mut conn).await.unwrap();
    sqlx::query(
        "INSERT INTO raw_messages (mailbox_id, uid, sha256, size, status, received_at) \
         VALUES (7, 'old', $1, 3, 'stored', $2)",
    )
    .bind(common::sha256_hex(b"old"))
    .bind(T0)
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    let store = Store::open(
        dir.path(),
        url.as_str().starts_with("postgres").then_some(&*url),
    )
    .await
    .unwrap();
    let pending = store.pending_raw_messages(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].uid.as_deref(), Some("old"));
    let record = store
        .processing_record(pending[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, ProcessStatus::Pending);
    store.close().await;
}

/// A batch that fails before its commit (the processor crashed, or returned an error)
/// leaves no ticket, no entry, no person and no decision behind: its messages are
/// still pending and the next run does them again, as if the batch never ran.
async fn a_batch_dropped_without_commit_leaves_nothing(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let raw = store_messages(store, mailbox.id, &["one", "two"]).await;

    {
        let mut tx = store.begin_processing().await.unwrap();
        let person = tx
            .person("someone@example.org", Some("Someone"))
            .await
            .unwrap();
        let ticket = tx
            .create_ticket(mailbox.id, "Hello", &person, T0)
            .await
            .unwrap();
        tx.add_entry(ticket.id, mailbox.id, &entry(raw[0].id, "<m1@x>"), T0)
            .await
            .unwrap();
        tx.record_processing(raw[0].id, &processed(ticket.id), T0)
            .await
            .unwrap();
        tx.record_processing(raw[1].id, &failed("boom"), T0)
            .await
            .unwrap();
        // dropped here, no commit
    }

    assert!(
        store
            .tickets(&TicketFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.pending_raw_messages(10).await.unwrap(), raw);
    let mut tx = store.begin_processing().await.unwrap();
    assert!(tx.entry_for_raw_message(raw[0].id).await.unwrap().is_none());
    assert!(
        tx.ticket_for_message_ids(mailbox.id, &["<m1@x>".to_string()])
            .await
            .unwrap()
            .is_none()
    );
    // The person is gone too: created anew, with the name given now.
    let person = tx.person("someone@example.org", None).await.unwrap();
    assert_eq!(person.name, None);
    drop(tx);
    let counts = store
        .count_tickets_by_status(&TicketFilter::default())
        .await
        .unwrap();
    assert!(counts.iter().all(|(_, n)| *n == 0), "{counts:?}");
}

/// A reply processed in the same batch as the mail it answers threads onto the ticket
/// that mail just opened: every lookup sees the batch's own uncommitted writes.
async fn lookups_in_a_batch_see_what_it_wrote(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let raw = store_messages(store, mailbox.id, &["question", "reply"]).await;

    let mut tx = store.begin_processing().await.unwrap();
    let person = tx
        .person("Customer@Example.org", Some("Cus"))
        .await
        .unwrap();
    let ticket = tx
        .create_ticket(mailbox.id, "Question", &person, T0)
        .await
        .unwrap();
    assert_eq!(ticket.status, TicketStatus::New);
    assert_eq!(ticket.entry_count, 0);
    assert_eq!(ticket.requester, person);
    tx.add_entry(ticket.id, mailbox.id, &entry(raw[0].id, "<q@x>"), T0)
        .await
        .unwrap();

    let by_number = tx
        .ticket_by_number(mailbox.id, ticket.number)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_number.id, ticket.id);
    assert_eq!(by_number.entry_count, 1);
    let (threaded, matched) = tx
        .ticket_for_message_ids(
            mailbox.id,
            &["<unknown@x>".to_string(), "<q@x>".to_string()],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((threaded.id, matched.as_str()), (ticket.id, "<q@x>"));
    let first = tx.entry_for_raw_message(raw[0].id).await.unwrap().unwrap();
    assert_eq!(first.ticket_id, ticket.id);
    assert_eq!(
        tx.entry_with_message_id(mailbox.id, "<q@x>")
            .await
            .unwrap()
            .unwrap()
            .id,
        first.id
    );
    assert_eq!(
        tx.person("customer@example.org", None).await.unwrap(),
        person
    );

    let reply = NewTicketEntry {
        subject: Some("Re: Question".to_string()),
        ..entry(raw[1].id, "<r@x>")
    };
    let reply_id = tx
        .add_entry(ticket.id, mailbox.id, &reply, T0 + 5)
        .await
        .unwrap();
    tx.record_processing(raw[0].id, &processed(ticket.id), T0 + 5)
        .await
        .unwrap();
    tx.record_processing(raw[1].id, &processed(ticket.id), T0 + 5)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let ticket = store
        .ticket_by_number(ticket.number)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ticket.entry_count, 2);
    assert_eq!(ticket.updated_at, T0 + 5);
    assert_eq!(ticket.created_at, T0);
    let entries = store.ticket_entries(ticket.id).await.unwrap();
    assert_eq!(
        entries.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![first.id, reply_id]
    );
    assert_eq!(entries[1].subject.as_deref(), Some("Re: Question"));
    assert_eq!(entries[1].raw_message_id, raw[1].id);
    assert_eq!(entries[1].mailbox_id, mailbox.id);
    assert_eq!(entries[1].created_at, T0 + 5);
    assert!(store.pending_raw_messages(10).await.unwrap().is_empty());
}

/// Numbers are what customers quote: unique, increasing, and never given to another
/// ticket, across batches and mailboxes.
async fn ticket_numbers_are_unique_and_increasing(db: &TestDb) {
    let store = &db.store;
    let a = add_mailbox(store, "a").await;
    let b = add_mailbox(store, "b").await;
    let mut numbers = Vec::new();
    for batch in 0..3 {
        let mut tx = store.begin_processing().await.unwrap();
        let person = tx.person("x@example.org", None).await.unwrap();
        for i in 0..4 {
            let mailbox = if i % 2 == 0 { a.id } else { b.id };
            let ticket = tx
                .create_ticket(mailbox, "t", &person, T0 + batch)
                .await
                .unwrap();
            numbers.push(ticket.number);
        }
        tx.commit().await.unwrap();
    }
    assert!(numbers[0] >= 1);
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");

    // A rolled-back batch's numbers were never seen; later numbers still go up.
    let mut tx = store.begin_processing().await.unwrap();
    let person = tx.person("x@example.org", None).await.unwrap();
    tx.create_ticket(a.id, "dropped", &person, T0)
        .await
        .unwrap();
    drop(tx);
    let mut tx = store.begin_processing().await.unwrap();
    let next = tx.create_ticket(a.id, "after", &person, T0).await.unwrap();
    tx.commit().await.unwrap();
    assert!(next.number > *numbers.last().unwrap());
    let all = store
        .tickets(&TicketFilter {
            limit: 100,
            ..TicketFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), numbers.len() + 1);
}

/// Several processors (tasks here; processes or machines in production) opening
/// tickets at the same time never hand out one number twice. On SQLite they take
/// turns; on PostgreSQL they run side by side.
async fn concurrent_processors_never_share_a_ticket_number(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let mailbox_id = mailbox.id;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let store = db.reopen().await;
        tasks.push(tokio::spawn(async move {
            let mut numbers = Vec::new();
            for batch in 0..5 {
                let mut tx = store.begin_processing().await.unwrap();
                let person = tx
                    .person(&format!("w{worker}@example.org"), None)
                    .await
                    .unwrap();
                for _ in 0..5 {
                    let ticket = tx
                        .create_ticket(mailbox_id, "t", &person, T0 + batch)
                        .await
                        .unwrap();
                    numbers.push(ticket.number);
                    tokio::task::yield_now().await;
                }
                tx.commit().await.unwrap();
            }
            store.close().await;
            numbers
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let numbers = task.await.unwrap();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
        all.extend(numbers);
    }
    let count = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), count, "a number was given out twice");
    let listed = store
        .tickets(&TicketFilter {
            limit: 1000,
            ..TicketFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), count);
    eprintln!(
        "{:?}: {count} tickets from 4 concurrent processors in {:?}",
        db.backend,
        started.elapsed()
    );
}

/// On PostgreSQL a processor's open batch never makes another wait for a ticket
/// number: B opens, numbers and commits a ticket while A's batch is still open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_an_open_batch_never_blocks_another_processors_ticket_numbers() {
    let db = TestDb::new(Backend::Postgres).await;
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let other = db.reopen().await;

    let mut a = store.begin_processing().await.unwrap();
    let pa = a.person("a@example.org", None).await.unwrap();
    let ta = a.create_ticket(mailbox.id, "a", &pa, T0).await.unwrap();

    let b_done = tokio::time::timeout(Duration::from_secs(10), async {
        let mut b = other.begin_processing().await.unwrap();
        let pb = b.person("b@example.org", None).await.unwrap();
        let tb = b.create_ticket(mailbox.id, "b", &pb, T0).await.unwrap();
        b.commit().await.unwrap();
        tb
    })
    .await
    .expect("B waited for A's open batch");
    assert_ne!(ta.number, b_done.number);
    assert!(b_done.number > ta.number);
    a.commit().await.unwrap();
    assert_eq!(
        store.tickets(&TicketFilter::default()).await.unwrap().len(),
        2
    );
    other.close().await;
}

/// Promise 2 at the bottom: a raw message makes at most one ticket entry. A second
/// add_entry for it is refused with EntryExists and writes nothing, and the batch
/// goes on (on PostgreSQL a failed statement would otherwise abort the transaction).
async fn one_raw_message_is_at_most_one_ticket_entry(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let raw = store_messages(store, mailbox.id, &["one", "two"]).await;
    let (ticket_id, _) = open_ticket(store, &raw[0], "<one@x>", T0).await;

    let mut tx = store.begin_processing().await.unwrap();
    let person = tx.person("other@example.org", None).await.unwrap();
    let other = tx
        .create_ticket(mailbox.id, "other", &person, T0 + 10)
        .await
        .unwrap();
    let err = tx
        .add_entry(other.id, mailbox.id, &entry(raw[0].id, "<one@x>"), T0 + 10)
        .await
        .expect_err("a second entry for the same raw message");
    assert!(
        matches!(err, StoreError::EntryExists { raw_message_id } if raw_message_id == raw[0].id),
        "{err:?}"
    );
    // Also within one batch.
    tx.add_entry(other.id, mailbox.id, &entry(raw[1].id, "<two@x>"), T0 + 10)
        .await
        .unwrap();
    let err = tx
        .add_entry(other.id, mailbox.id, &entry(raw[1].id, "<two@x>"), T0 + 11)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::EntryExists { .. }), "{err:?}");
    // A missing ticket is its own error, and also leaves the batch usable.
    let err = tx
        .add_entry(-5, mailbox.id, &entry(raw[1].id + 1000, "<x@x>"), T0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TicketNotFound(-5)), "{err:?}");
    tx.record_processing(raw[1].id, &processed(other.id), T0 + 10)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let first = store.ticket_entries(ticket_id).await.unwrap();
    assert_eq!(first.len(), 1);
    let second = store.ticket_entries(other.id).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].raw_message_id, raw[1].id);
    // The refused entry did not count as activity.
    let other = store.ticket_by_number(other.number).await.unwrap().unwrap();
    assert_eq!(other.updated_at, T0 + 10);
}

/// `open_ticket` writes the sender's person record, the ticket and its first entry
/// together (one statement on SQLite): the ticket carries the requester, the mail's
/// dates and one entry, and the entry is searchable before the batch commits.
async fn a_ticket_opened_with_its_first_mail_has_requester_entry_and_dates(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let raw = store_messages(store, mailbox.id, &["one", "two"]).await;

    let mut tx = store.begin_processing().await.unwrap();
    let (ticket, entry_id) = tx
        .open_ticket(
            mailbox.id,
            "Printer on fire",
            (" Customer@Example.org ", Some("A Customer")),
            &entry(raw[0].id, "<one@x>"),
            T0,
        )
        .await
        .unwrap();
    // The same sender again, under a new name, in the same batch: one person.
    let (second, _) = tx
        .open_ticket(
            mailbox.id,
            "Still on fire",
            ("customer@example.org", Some("A. Customer")),
            &entry(raw[1].id, "<two@x>"),
            T0 + 1,
        )
        .await
        .unwrap();
    tx.record_processing(raw[0].id, &processed(ticket.id), T0)
        .await
        .unwrap();
    tx.record_processing(raw[1].id, &processed(second.id), T0 + 1)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    assert_eq!(ticket.requester.address, "customer@example.org");
    assert_eq!(ticket.requester.name.as_deref(), Some("A Customer"));
    assert_eq!(second.requester.id, ticket.requester.id);
    assert_eq!(second.requester.name.as_deref(), Some("A. Customer"));
    assert_eq!(second.number, ticket.number + 1);
    assert_eq!(ticket.entry_count, 1);

    let stored = store
        .ticket_by_number(ticket.number)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.id, ticket.id);
    assert_eq!(stored.status, TicketStatus::New);
    assert_eq!(stored.requester.id, ticket.requester.id);
    assert_eq!(stored.first_mail_sent_at, Some(T0 - 60_000));
    assert_eq!(stored.last_mail_sent_at, Some(T0 - 60_000));
    let entries = store.ticket_entries(ticket.id).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].id, entry_id);
    assert_eq!(entries[0].raw_message_id, raw[0].id);
    assert_eq!(entries[0].message_id, "<one@x>");
    let found = store
        .tickets(&TicketFilter {
            text: Some("fire".to_string()),
            ..TicketFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 2, "both entries are searchable");
}

/// Promise 2 through `open_ticket`: a raw message that has its entry already opens no
/// second ticket. The call fails with EntryExists, leaves no ticket behind, gives its
/// number to the next ticket, and the batch goes on.
async fn opening_a_ticket_for_a_message_with_an_entry_writes_nothing(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let raw = store_messages(store, mailbox.id, &["one", "two"]).await;
    let (_, first_number) = open_ticket(store, &raw[0], "<one@x>", T0).await;

    let mut tx = store.begin_processing().await.unwrap();
    let err = tx
        .open_ticket(
            mailbox.id,
            "again",
            ("customer@example.org", None),
            &entry(raw[0].id, "<one@x>"),
            T0 + 10,
        )
        .await
        .expect_err("a second entry for the same raw message");
    assert!(
        matches!(err, StoreError::EntryExists { raw_message_id } if raw_message_id == raw[0].id),
        "{err:?}"
    );
    let (next, _) = tx
        .open_ticket(
            mailbox.id,
            "next",
            ("customer@example.org", None),
            &entry(raw[1].id, "<two@x>"),
            T0 + 10,
        )
        .await
        .unwrap();
    tx.record_processing(raw[1].id, &processed(next.id), T0 + 10)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let all = store.tickets(&TicketFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2, "no ticket without its entry: {all:?}");
    assert!(next.number > first_number);
    assert_eq!(store.ticket_entries(next.id).await.unwrap().len(), 1);
}

/// Promise 2 and threading through `open_ticket_in_batch`: on SQLite the rows of a
/// ticket opened in a batch wait for the batch's next statement, so every lookup of the
/// same batch must see them as if written at once: a reply threads onto the ticket its
/// mail just opened, its number and its requester are found, an entry added to it
/// counts, and what the batch commits is what the calls returned.
async fn tickets_opened_in_a_batch_are_seen_by_its_next_statements(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let raw = store_messages(store, mailbox.id, &["one", "two", "three"]).await;

    let mut tx = store.begin_processing().await.unwrap();
    let first = open_in_batch(
        &mut tx,
        &raw[0],
        "Printer on fire",
        (" Customer@Example.org ", Some("A Customer")),
        "<one@x>",
        T0,
    )
    .await;
    let second = open_in_batch(
        &mut tx,
        &raw[1],
        "Toner",
        ("other@example.org", None),
        "<two@x>",
        T0 + 1,
    )
    .await;
    assert_eq!(second.number, first.number + 1);
    assert_ne!(second.id, first.id);
    assert_ne!(second.entry_id, first.entry_id);

    let (threaded, matched) = tx
        .ticket_for_message_ids(mailbox.id, &["<one@x>".to_string()])
        .await
        .unwrap()
        .expect("the reply finds the ticket its mail opened in this batch");
    assert_eq!((threaded.id, matched.as_str()), (first.id, "<one@x>"));
    assert_eq!(threaded.number, first.number);
    assert_eq!(threaded.requester.address, "customer@example.org");
    let by_number = tx
        .ticket_by_number(mailbox.id, second.number)
        .await
        .unwrap()
        .expect("found by its number");
    assert_eq!(by_number.id, second.id);
    assert!(
        tx.is_participant(first.id, "customer@example.org")
            .await
            .unwrap()
    );
    // A reply added at once after them: its id is its own.
    let reply = tx
        .add_entry(first.id, mailbox.id, &entry(raw[2].id, "<three@x>"), T0 + 2)
        .await
        .unwrap();
    assert!(reply != first.entry_id && reply != second.entry_id);
    for (raw, ticket) in [
        (&raw[0], first.id),
        (&raw[1], second.id),
        (&raw[2], first.id),
    ] {
        tx.record_processing(raw.id, &processed(ticket), T0 + 2)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    let stored = store.ticket_by_number(first.number).await.unwrap().unwrap();
    assert_eq!(stored.id, first.id);
    assert_eq!(stored.status, TicketStatus::New);
    assert_eq!(stored.requester.name.as_deref(), Some("A Customer"));
    assert_eq!(stored.first_mail_sent_at, Some(T0 - 60_000));
    let entries = store.ticket_entries(first.id).await.unwrap();
    let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![first.entry_id, reply]);
    assert_eq!(entries[0].raw_message_id, raw[0].id);
    let other = store.ticket_entries(second.id).await.unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].id, second.entry_id);
    let found = store
        .tickets(&TicketFilter {
            text: Some("fire".to_string()),
            ..TicketFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        found.len(),
        2,
        "the waiting entries were indexed for search"
    );
}

/// Ids given out in memory for a batch's tickets follow every id the database ever
/// gave, a withdrawn ticket's included (SQLite's AUTOINCREMENT never reuses one, so a
/// ticket id must never come back as another ticket), and a batch that is dropped
/// leaves nothing of its waiting tickets.
async fn tickets_opened_in_a_batch_never_take_an_id_given_before(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let raw = store_messages(store, mailbox.id, &["one", "two", "three"]).await;
    let (first_id, _) = open_ticket(store, &raw[0], "<one@x>", T0).await;

    // A ticket opened and taken back (its raw message has an entry already).
    let mut tx = store.begin_processing().await.unwrap();
    tx.open_ticket(
        mailbox.id,
        "again",
        ("customer@example.org", None),
        &entry(raw[0].id, "<one@x>"),
        T0 + 1,
    )
    .await
    .expect_err("the raw message has its entry");
    let opened = open_in_batch(
        &mut tx,
        &raw[1],
        "next",
        ("customer@example.org", None),
        "<two@x>",
        T0 + 1,
    )
    .await;
    assert!(
        opened.id > first_id + 1,
        "the withdrawn ticket's id {} is not given again (got {})",
        first_id + 1,
        opened.id
    );
    tx.record_processing(raw[1].id, &processed(opened.id), T0 + 1)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.ticket_entries(opened.id).await.unwrap().len(), 1);

    // Dropped before its next statement: nothing of the waiting ticket is written.
    let mut tx = store.begin_processing().await.unwrap();
    open_in_batch(
        &mut tx,
        &raw[2],
        "never",
        ("stranger@example.org", None),
        "<three@x>",
        T0 + 2,
    )
    .await;
    drop(tx);
    let all = store.tickets(&TicketFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all.iter()
            .all(|t| t.requester.address != "stranger@example.org")
    );
}

/// Fetching with tickets made: the fetcher's commit that waits for a processing batch
/// goes as soon as that batch commits, before the processor's next one. On SQLite the
/// writers of one process take turns first come, first served; before, the waiting
/// commit slept in SQLite's busy handler while the processor, never idle, took the lock
/// again and again, and the download stood still until processing ran out of work. The
/// next batch sees the committed message: it began after the commit.
async fn a_fetch_commit_waiting_for_a_batch_goes_before_the_next_batch(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let batch = store.begin_processing().await.unwrap();
    let fetcher = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .commit_batch(mailbox.id, &[message(Some("uid-1"), "one")], T0)
                .await
        })
    };
    // The fetcher is waiting for the batch now (it needs nothing else).
    tokio::time::sleep(Duration::from_millis(300)).await;
    batch.commit().await.unwrap();
    let mut next = store.begin_processing().await.unwrap();
    let pending = next.claim_pending(10).await.unwrap();
    assert_eq!(
        pending.len(),
        1,
        "the next batch began only after the waiting commit: {pending:?}"
    );
    next.commit().await.unwrap();
    fetcher.await.unwrap().unwrap();
}

/// The same mail reaching two support addresses becomes an entry (and a ticket) in
/// each; Message-ID lookups never cross mailboxes. Within one mailbox the processor
/// finds the earlier entry by Message-ID and makes no second one.
async fn same_message_id_in_two_mailboxes_is_an_entry_in_each(db: &TestDb) {
    let store = &db.store;
    let a = add_mailbox(store, "sales").await;
    let b = add_mailbox(store, "support").await;
    let in_a = store_messages(store, a.id, &["the same mail"]).await;
    let in_b = store_messages(store, b.id, &["the same mail"]).await;
    assert_ne!(in_a[0].id, in_b[0].id);

    let (ticket_a, _) = open_ticket(store, &in_a[0], "<same@x>", T0).await;
    let mut tx = store.begin_processing().await.unwrap();
    assert!(
        tx.entry_with_message_id(b.id, "<same@x>")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        tx.ticket_for_message_ids(b.id, &["<same@x>".to_string()])
            .await
            .unwrap()
            .is_none()
    );
    drop(tx);
    let (ticket_b, _) = open_ticket(store, &in_b[0], "<same@x>", T0).await;
    assert_ne!(ticket_a, ticket_b);

    let mut tx = store.begin_processing().await.unwrap();
    let found_a = tx
        .entry_with_message_id(a.id, "<same@x>")
        .await
        .unwrap()
        .unwrap();
    let found_b = tx
        .entry_with_message_id(b.id, "<same@x>")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found_a.ticket_id, found_b.ticket_id), (ticket_a, ticket_b));
    let (t, _) = tx
        .ticket_for_message_ids(b.id, &["<same@x>".to_string()])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.id, ticket_b);
    assert_eq!(t.mailbox_id, b.id);
}

/// In-Reply-To first, then References newest first: the caller's order decides, not
/// which entry is older. A long References list (more than one statement's worth of
/// ids) still finds its match.
async fn threading_by_message_id_takes_the_first_id_that_matches(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let raw = store_messages(store, mailbox.id, &["one", "two"]).await;
    let (older, _) = open_ticket(store, &raw[0], "<older@x>", T0).await;
    let (newer, _) = open_ticket(store, &raw[1], "<newer@x>", T0 + 1).await;

    let mut tx = store.begin_processing().await.unwrap();
    let ids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (t, id) = tx
        .ticket_for_message_ids(mailbox.id, &ids(&["<newer@x>", "<older@x>"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((t.id, id.as_str()), (newer, "<newer@x>"));
    let (t, id) = tx
        .ticket_for_message_ids(mailbox.id, &ids(&["<nope@x>", "<older@x>", "<newer@x>"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((t.id, id.as_str()), (older, "<older@x>"));
    assert!(
        tx.ticket_for_message_ids(mailbox.id, &[])
            .await
            .unwrap()
            .is_none()
    );

    let mut long: Vec<String> = (0..1200).map(|i| format!("<unknown{i}@x>")).collect();
    long.push("<newer@x>".to_string());
    long.push("<older@x>".to_string());
    let (t, id) = tx
        .ticket_for_message_ids(mailbox.id, &long)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((t.id, id.as_str()), (newer, "<newer@x>"));
}

/// `[#1234]` in a subject only threads onto ticket 1234 of the same mailbox.
async fn a_ticket_number_threads_only_within_its_mailbox(db: &TestDb) {
    let store = &db.store;
    let a = add_mailbox(store, "a").await;
    let b = add_mailbox(store, "b").await;
    let raw = store_messages(store, a.id, &["one"]).await;
    let (ticket_id, number) = open_ticket(store, &raw[0], "<one@x>", T0).await;

    let mut tx = store.begin_processing().await.unwrap();
    let found = tx.ticket_by_number(a.id, number).await.unwrap().unwrap();
    assert_eq!(found.id, ticket_id);
    assert_eq!(found.subject, "Printer on fire");
    assert_eq!(found.requester.address, "customer@example.org");
    assert!(tx.ticket_by_number(b.id, number).await.unwrap().is_none());
    assert!(
        tx.ticket_by_number(a.id, number + 1)
            .await
            .unwrap()
            .is_none()
    );
    // The CLI's lookup is across mailboxes.
    drop(tx);
    assert_eq!(
        store.ticket_by_number(number).await.unwrap().unwrap().id,
        ticket_id
    );
    assert!(store.ticket_by_number(number + 1).await.unwrap().is_none());
    // And by id, as a processing record names it.
    let by_id = store.ticket_by_id(ticket_id).await.unwrap().unwrap();
    assert_eq!((by_id.number, by_id.entry_count), (number, 1));
    assert!(store.ticket_by_id(ticket_id + 100).await.unwrap().is_none());
}

/// One customer is one person whatever case or spaces their client uses; the latest
/// name they give becomes the person's name, and no name keeps the known one.
async fn a_person_is_one_per_address_and_takes_the_latest_name(db: &TestDb) {
    let store = &db.store;
    let mut tx = store.begin_processing().await.unwrap();
    let nameless = tx.person("  Jane.Doe@Example.ORG ", None).await.unwrap();
    assert_eq!(nameless.address, "jane.doe@example.org");
    assert_eq!(nameless.name, None);
    let blank = tx.person("jane.doe@example.org", Some("  ")).await.unwrap();
    assert_eq!(blank, nameless);
    let named = tx
        .person("JANE.DOE@example.org", Some("Jane Doe"))
        .await
        .unwrap();
    assert_eq!(named.id, nameless.id);
    assert_eq!(named.name.as_deref(), Some("Jane Doe"));
    let renamed = tx
        .person("jane.doe@example.org", Some("J. Doe (Mobile)"))
        .await
        .unwrap();
    assert_eq!(renamed.id, named.id);
    assert_eq!(renamed.name.as_deref(), Some("J. Doe (Mobile)"));
    let other = tx.person("john@example.org", Some("John")).await.unwrap();
    assert_ne!(other.id, named.id);
    tx.commit().await.unwrap();

    let mut tx = store.begin_processing().await.unwrap();
    assert_eq!(
        tx.person("jane.doe@example.org", None).await.unwrap(),
        renamed
    );
}

/// Each ticket shows its requester under the name in the mail that opened it, even
/// when the person wrote under another name before or since; the person record
/// keeps the latest, and every name stays findable.
async fn the_requesters_name_is_the_one_in_the_mail_that_opened_the_ticket(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let raw = store_messages(store, mailbox.id, &["first", "second", "follow-up"]).await;
    let mut tx = store.begin_processing().await.unwrap();
    let open = |name: &'static str| {
        let mut e = entry(0, "");
        e.from_name = Some(name.to_string());
        e
    };
    let person = tx
        .person("customer@example.org", Some("Sender"))
        .await
        .unwrap();
    let first = tx
        .create_ticket(mailbox.id, "First", &person, T0)
        .await
        .unwrap();
    let mut e = open("Sender");
    (e.raw_message_id, e.message_id) = (raw[0].id, "<1@x>".to_string());
    tx.add_entry(first.id, mailbox.id, &e, T0).await.unwrap();

    let person = tx
        .person("customer@example.org", Some("Sender Name 👻"))
        .await
        .unwrap();
    let second = tx
        .create_ticket(mailbox.id, "Second", &person, T0)
        .await
        .unwrap();
    let mut e = open("Sender Name 👻");
    (e.raw_message_id, e.message_id) = (raw[1].id, "<2@x>".to_string());
    tx.add_entry(second.id, mailbox.id, &e, T0).await.unwrap();
    // A follow-up on the first ticket under a third name changes neither ticket.
    let mut e = open("S. N.");
    (e.raw_message_id, e.message_id) = (raw[2].id, "<3@x>".to_string());
    tx.add_entry(first.id, mailbox.id, &e, T0).await.unwrap();
    tx.person("customer@example.org", Some("S. N."))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let name = |number| async move {
        store
            .ticket_by_number(number)
            .await
            .unwrap()
            .unwrap()
            .requester
            .name
    };
    assert_eq!(name(first.number).await.as_deref(), Some("Sender"));
    assert_eq!(name(second.number).await.as_deref(), Some("Sender Name 👻"));
    assert_eq!(
        store.names_of_person("Customer@example.org").await.unwrap(),
        vec!["S. N.", "Sender Name 👻", "Sender"]
    );
}

/// The attachment list survives storage exactly: names with non-ASCII text and JSON
/// metacharacters, no name, inline images with Content-ID, large sizes.
async fn attachments_round_trip_through_the_entry(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let raw = store_messages(store, mailbox.id, &["with attachments", "without"]).await;
    let attachments = vec![
        EntryAttachment {
            name: Some("Rechnung März \"final\"\\v2.pdf".to_string()),
            content_type: "application/pdf".to_string(),
            size: 123_456,
            sha256: common::sha256_hex(b"pdf"),
            content_id: None,
            inline: false,
            forwarded: None,
        },
        EntryAttachment {
            name: None,
            content_type: "image/png".to_string(),
            size: 0,
            sha256: common::sha256_hex(b"png"),
            content_id: Some("<logo@mail>".to_string()),
            inline: true,
            forwarded: None,
        },
        EntryAttachment {
            name: Some("日本語.txt\n".to_string()),
            content_type: "text/plain; charset=utf-8".to_string(),
            size: 5_000_000_000,
            sha256: common::sha256_hex(b"txt"),
            content_id: None,
            inline: false,
            forwarded: Some(store::ForwardedMessage {
                from: Some("dave@example.org".into()),
                subject: Some("the original".into()),
                date: Some(T0 - 3_600_000),
                message_id: Some("orig@x".into()),
            }),
        },
    ];
    let with = NewTicketEntry {
        kind: EntryKind::AutoReply,
        html_body: Some("<p>Hi <img src=\"cid:logo@mail\"></p>".to_string()),
        from_address: None,
        from_name: None,
        subject: None,
        sent_at: None,
        attachments: attachments.clone(),
        ..entry(raw[0].id, "<att@x>")
    };
    let without = NewTicketEntry {
        kind: EntryKind::Bounce,
        ..entry(raw[1].id, "<plain@x>")
    };
    let mut tx = store.begin_processing().await.unwrap();
    let person = tx.person("a@example.org", None).await.unwrap();
    let ticket = tx
        .create_ticket(mailbox.id, "att", &person, T0)
        .await
        .unwrap();
    tx.add_entry(ticket.id, mailbox.id, &with, T0)
        .await
        .unwrap();
    tx.add_entry(ticket.id, mailbox.id, &without, T0)
        .await
        .unwrap();
    let in_tx = tx.entry_for_raw_message(raw[0].id).await.unwrap().unwrap();
    assert_eq!(in_tx.attachments, attachments);
    tx.commit().await.unwrap();

    let entries = store.ticket_entries(ticket.id).await.unwrap();
    assert_eq!(entries.len(), 2);
    let got = &entries[0];
    assert_eq!(got.attachments, attachments);
    assert_eq!(got.kind, EntryKind::AutoReply);
    assert_eq!(got.html_body, with.html_body);
    assert_eq!(
        (&got.from_address, &got.from_name, &got.subject, got.sent_at),
        (&None, &None, &None, None)
    );
    assert_eq!(got.reply_text, with.reply_text);
    assert_eq!(got.text_body, with.text_body);
    assert_eq!(got.message_id, "<att@x>");
    assert!(entries[1].attachments.is_empty());
    assert_eq!(entries[1].kind, EntryKind::Bounce);
    assert_eq!(entries[1].sent_at, Some(T0 - 60_000));

    // A size that does not fit the database's integers is refused before writing.
    let too_big = NewTicketEntry {
        attachments: vec![EntryAttachment {
            size: u64::MAX,
            ..attachments[0].clone()
        }],
        ..entry(raw[1].id + 1, "<big@x>")
    };
    let mut tx = store.begin_processing().await.unwrap();
    let err = tx
        .add_entry(ticket.id, mailbox.id, &too_big, T0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err:?}");
}

/// Every decision is kept with its reason, ticket and log, and listed for the admin by
/// status and mailbox, newest first (promise 5: failures are visible).
async fn processing_records_are_kept_with_reason_and_log(db: &TestDb) {
    let store = &db.store;
    let a = add_mailbox(store, "a").await;
    let b = add_mailbox(store, "b").await;
    let raw_a = store_messages(store, a.id, &["good", "bad", "list mail"]).await;
    let raw_b = store_messages(store, b.id, &["bad too"]).await;
    let (ticket_id, _) = open_ticket(store, &raw_a[0], "<good@x>", T0 + 100).await;

    let ignored = ProcessRecord {
        status: ProcessStatus::Ignored,
        reason: "list mail (List-Id: <announce.example.org>)".to_string(),
        ticket_id: None,
        log: vec!["classified: list".to_string()],
        processed_at: None,
    };
    let mut tx = store.begin_processing().await.unwrap();
    tx.record_processing(raw_a[1].id, &failed("could not parse: truncated"), T0 + 200)
        .await
        .unwrap();
    tx.record_processing(raw_a[2].id, &ignored, T0 + 200)
        .await
        .unwrap();
    tx.record_processing(raw_b[0].id, &failed("panic in parser"), T0 + 200)
        .await
        .unwrap();
    let err = tx.record_processing(-1, &ignored, T0).await.unwrap_err();
    assert!(matches!(err, StoreError::RawMessageNotFound(-1)), "{err:?}");
    tx.commit().await.unwrap();

    let record = store.processing_record(raw_a[0].id).await.unwrap().unwrap();
    assert_eq!(
        record,
        ProcessRecord {
            processed_at: Some(T0 + 100),
            ..processed(ticket_id)
        }
    );
    let record = store.processing_record(raw_a[2].id).await.unwrap().unwrap();
    assert_eq!(
        record,
        ProcessRecord {
            processed_at: Some(T0 + 200),
            ..ignored.clone()
        }
    );
    assert!(store.processing_record(-1).await.unwrap().is_none());

    let ids =
        |list: Vec<(RawMessage, ProcessRecord)>| list.iter().map(|(m, _)| m.id).collect::<Vec<_>>();
    let everything = store
        .raw_messages_with_status(None, None, 10)
        .await
        .unwrap();
    assert_eq!(
        ids(everything.clone()),
        vec![raw_b[0].id, raw_a[2].id, raw_a[1].id, raw_a[0].id]
    );
    assert_eq!(everything[0].0, raw_b[0]);
    assert_eq!(everything[0].1.reason, "panic in parser");
    let failed_all = store
        .raw_messages_with_status(Some(ProcessStatus::Failed), None, 10)
        .await
        .unwrap();
    assert_eq!(ids(failed_all), vec![raw_b[0].id, raw_a[1].id]);
    let failed_a = store
        .raw_messages_with_status(Some(ProcessStatus::Failed), Some(a.id), 10)
        .await
        .unwrap();
    assert_eq!(ids(failed_a.clone()), vec![raw_a[1].id]);
    assert_eq!(failed_a[0].1.reason, "could not parse: truncated");
    assert_eq!(failed_a[0].1.log, vec!["parse failed"]);
    let in_b = store
        .raw_messages_with_status(None, Some(b.id), 10)
        .await
        .unwrap();
    assert_eq!(ids(in_b), vec![raw_b[0].id]);
    let limited = store.raw_messages_with_status(None, None, 2).await.unwrap();
    assert_eq!(ids(limited), vec![raw_b[0].id, raw_a[2].id]);
    assert!(
        store
            .raw_messages_with_status(Some(ProcessStatus::Pending), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// `message reprocess`: a message that failed, once set back to pending, is processed
/// into its ticket exactly once; one that already has its entry keeps it and is found
/// again instead of becoming a second entry.
async fn a_failed_message_can_be_reprocessed_into_its_ticket_once(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let raw = store_messages(store, mailbox.id, &["ok", "broken", "broken too"]).await;
    let (ticket_id, _) = open_ticket(store, &raw[0], "<ok@x>", T0).await;
    let mut tx = store.begin_processing().await.unwrap();
    tx.record_processing(raw[1].id, &failed("bug"), T0)
        .await
        .unwrap();
    tx.record_processing(raw[2].id, &failed("bug"), T0)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(store.pending_raw_messages(10).await.unwrap().is_empty());

    assert!(!store.reset_processing(-1).await.unwrap());
    assert!(store.reset_processing(raw[1].id).await.unwrap());
    let record = store.processing_record(raw[1].id).await.unwrap().unwrap();
    assert_eq!(record.status, ProcessStatus::Pending);
    assert_eq!((record.reason.as_str(), record.log.len()), ("", 0));
    assert_eq!(record.processed_at, None);
    assert_eq!(
        store.pending_raw_messages(10).await.unwrap(),
        vec![raw[1].clone()]
    );

    // Fixed processor: the message joins the ticket.
    let mut tx = store.begin_processing().await.unwrap();
    assert!(tx.entry_for_raw_message(raw[1].id).await.unwrap().is_none());
    tx.add_entry(
        ticket_id,
        mailbox.id,
        &entry(raw[1].id, "<broken@x>"),
        T0 + 1,
    )
    .await
    .unwrap();
    tx.record_processing(raw[1].id, &processed(ticket_id), T0 + 1)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Reprocessing a processed message finds its entry and keeps it.
    assert!(store.reset_processing(raw[1].id).await.unwrap());
    assert!(store.reset_processing(raw[0].id).await.unwrap());
    assert_eq!(store.ticket_entries(ticket_id).await.unwrap().len(), 2);
    let mut tx = store.begin_processing().await.unwrap();
    for m in store.pending_raw_messages(10).await.unwrap() {
        let existing = tx.entry_for_raw_message(m.id).await.unwrap().unwrap();
        assert_eq!(existing.ticket_id, ticket_id);
        tx.record_processing(m.id, &processed(existing.ticket_id), T0 + 2)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(store.ticket_entries(ticket_id).await.unwrap().len(), 2);

    // --failed sets back only the failed ones, and says how many.
    assert_eq!(store.reset_failed().await.unwrap(), 1);
    assert_eq!(
        store.pending_raw_messages(10).await.unwrap(),
        vec![raw[2].clone()]
    );
    assert_eq!(store.reset_failed().await.unwrap(), 0);
    assert_eq!(
        store
            .processing_record(raw[0].id)
            .await
            .unwrap()
            .unwrap()
            .status,
        ProcessStatus::Processed
    );
}

/// The ticket list: most recent activity first, filtered by status and mailbox,
/// paged; counts per status (zeros included) overall and per mailbox.
async fn ticket_list_filters_pages_and_counts(db: &TestDb) {
    let store = &db.store;
    let a = add_mailbox(store, "a").await;
    let b = add_mailbox(store, "b").await;
    let mut tx = store.begin_processing().await.unwrap();
    let person = tx.person("p@example.org", Some("P")).await.unwrap();
    let mut ids = Vec::new();
    // a: t0 new @T0+0, t1 open @+1, t2 new @+2 ; b: t3 resolved @+3, t4 new @+4
    for (i, (mailbox, status)) in [
        (a.id, TicketStatus::New),
        (a.id, TicketStatus::Open),
        (a.id, TicketStatus::New),
        (b.id, TicketStatus::Resolved),
        (b.id, TicketStatus::New),
    ]
    .into_iter()
    .enumerate()
    {
        let now = T0 + i as i64;
        let t = tx
            .create_ticket(mailbox, &format!("ticket {i}"), &person, now)
            .await
            .unwrap();
        if status != TicketStatus::New {
            tx.set_ticket_status(t.id, status, now).await.unwrap();
        }
        ids.push(t.id);
    }
    tx.commit().await.unwrap();

    let list = |filter: TicketFilter| async move {
        store
            .tickets(&filter)
            .await
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list(TicketFilter::default()).await,
        vec![ids[4], ids[3], ids[2], ids[1], ids[0]]
    );
    assert_eq!(TicketFilter::default().limit, 50);
    let new = TicketFilter {
        status: Some(TicketStatus::New),
        ..TicketFilter::default()
    };
    assert_eq!(list(new.clone()).await, vec![ids[4], ids[2], ids[0]]);
    assert_eq!(
        list(TicketFilter {
            mailbox_id: Some(a.id),
            ..new.clone()
        })
        .await,
        vec![ids[2], ids[0]]
    );
    assert_eq!(
        list(TicketFilter {
            mailbox_id: Some(b.id),
            ..TicketFilter::default()
        })
        .await,
        vec![ids[4], ids[3]]
    );
    assert_eq!(
        list(TicketFilter {
            limit: 2,
            offset: 1,
            ..TicketFilter::default()
        })
        .await,
        vec![ids[3], ids[2]]
    );
    assert!(
        list(TicketFilter {
            status: Some(TicketStatus::Closed),
            ..TicketFilter::default()
        })
        .await
        .is_empty()
    );
    // Same updated_at: the newer ticket first.
    store
        .set_ticket_status(ids[0], TicketStatus::Pending, T0 + 50)
        .await
        .unwrap();
    store
        .set_ticket_status(ids[1], TicketStatus::Pending, T0 + 50)
        .await
        .unwrap();
    assert_eq!(
        list(TicketFilter {
            limit: 2,
            ..TicketFilter::default()
        })
        .await,
        vec![ids[1], ids[0]]
    );

    use TicketStatus::*;
    assert_eq!(
        store
            .count_tickets_by_status(&TicketFilter::default())
            .await
            .unwrap(),
        vec![
            (New, 2),
            (Open, 0),
            (Pending, 2),
            (Resolved, 1),
            (Closed, 0)
        ]
    );
    assert_eq!(
        store
            .count_tickets_by_status(&TicketFilter {
                mailbox_id: Some(b.id),
                ..TicketFilter::default()
            })
            .await
            .unwrap(),
        vec![
            (New, 1),
            (Open, 0),
            (Pending, 0),
            (Resolved, 1),
            (Closed, 0)
        ]
    );
    assert_eq!(
        store
            .count_tickets_by_status(&TicketFilter {
                mailbox_id: Some(9999),
                ..TicketFilter::default()
            })
            .await
            .unwrap(),
        vec![
            (New, 0),
            (Open, 0),
            (Pending, 0),
            (Resolved, 0),
            (Closed, 0)
        ]
    );
}

/// An agent's status change (and a customer reply reopening a resolved ticket inside a
/// batch) is activity; a missing ticket is said so.
async fn ticket_status_changes_count_as_activity(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let raw = store_messages(store, mailbox.id, &["one", "reply"]).await;
    let (ticket_id, number) = open_ticket(store, &raw[0], "<one@x>", T0).await;
    store
        .set_ticket_status(ticket_id, TicketStatus::Resolved, T0 + 10)
        .await
        .unwrap();
    let t = store.ticket_by_number(number).await.unwrap().unwrap();
    assert_eq!((t.status, t.updated_at), (TicketStatus::Resolved, T0 + 10));

    let mut tx = store.begin_processing().await.unwrap();
    tx.add_entry(
        ticket_id,
        mailbox.id,
        &entry(raw[1].id, "<reply@x>"),
        T0 + 20,
    )
    .await
    .unwrap();
    tx.set_ticket_status(ticket_id, TicketStatus::Open, T0 + 20)
        .await
        .unwrap();
    let err = tx
        .set_ticket_status(-3, TicketStatus::Open, T0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TicketNotFound(-3)), "{err:?}");
    tx.commit().await.unwrap();
    let t = store.ticket_by_number(number).await.unwrap().unwrap();
    assert_eq!(
        (t.status, t.updated_at, t.entry_count),
        (TicketStatus::Open, T0 + 20, 2)
    );

    let err = store
        .set_ticket_status(-3, TicketStatus::Closed, T0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TicketNotFound(-3)), "{err:?}");
    assert!(
        err.to_string().contains("ticket #-3 does not exist"),
        "{err}"
    );
}

/// Several processors share the queue without deciding a message twice: a claim
/// inside the batch takes the oldest pending messages (or those of a list read
/// before the batch that are still pending), and on PostgreSQL another processor's
/// claim skips them, without waiting, until the first commits.
async fn claimed_messages_are_the_pending_ones_oldest_first(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let raw = store_messages(store, mailbox.id, &["1", "2", "3", "4", "5"]).await;
    let mut tx = store.begin_processing().await.unwrap();
    tx.record_processing(raw[0].id, &failed("x"), T0)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut first = store.begin_processing().await.unwrap();
    let claimed = first.claim_pending(2).await.unwrap();
    assert_eq!(claimed, raw[1..3].to_vec());
    if db.backend == Backend::Postgres {
        let other = db.reopen().await;
        let mut second = other.begin_processing().await.unwrap();
        let claimed = tokio::time::timeout(Duration::from_secs(10), second.claim_pending(10))
            .await
            .expect("a claim waited for another processor's batch")
            .unwrap();
        assert_eq!(claimed, raw[3..].to_vec());
        // Ended for certain before the next claim: a dropped transaction rolls back
        // only when its connection is next used, and its locks would linger.
        second.commit().await.unwrap();
        // A processor that read the queue before its batch began gets only what is
        // still its to decide: not the messages in the first processor's open batch.
        let mut third = other.begin_processing().await.unwrap();
        let all: Vec<i64> = raw.iter().map(|m| m.id).collect();
        let claimed = tokio::time::timeout(Duration::from_secs(10), third.claim_raw_messages(&all))
            .await
            .expect("a claim waited for another processor's batch")
            .unwrap();
        assert_eq!(claimed, vec![raw[3].id, raw[4].id]);
        drop(third);
        other.close().await;
    }
    for m in &raw[1..3] {
        first
            .record_processing(m.id, &failed("y"), T0)
            .await
            .unwrap();
    }
    first.commit().await.unwrap();
    let mut tx = store.begin_processing().await.unwrap();
    assert_eq!(tx.claim_pending(10).await.unwrap(), raw[3..].to_vec());
    // Of a stale read of the queue, only what is still pending is claimed (the first
    // processor decided 1 and 2 meanwhile; 0 failed before).
    let stale: Vec<i64> = raw.iter().rev().map(|m| m.id).collect();
    assert_eq!(
        tx.claim_raw_messages(&stale).await.unwrap(),
        vec![raw[3].id, raw[4].id]
    );
    assert!(tx.claim_raw_messages(&[]).await.unwrap().is_empty());
}

/// Two processors on PostgreSQL that each wait for a person the other just created
/// deadlock; PostgreSQL aborts one batch, which says it may be retried, and the retry
/// goes through once the other committed. Nothing of the aborted batch remains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_batch_that_lost_a_deadlock_can_be_retried() {
    let db = TestDb::new(Backend::Postgres).await;
    let store = &db.store;
    let other = db.reopen().await;

    let mut a = store.begin_processing().await.unwrap();
    let mut b = other.begin_processing().await.unwrap();
    a.person("x@example.org", Some("X")).await.unwrap();
    b.person("y@example.org", Some("Y")).await.unwrap();
    let a_side = tokio::spawn(async move {
        let result = a.person("y@example.org", None).await;
        (a, result)
    });
    // Let A start waiting for B's row before B waits for A's.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let b_result = b.person("x@example.org", None).await;
    let (a, a_result) = a_side.await.unwrap();
    // Each side's script: its own person with a name, then the other's.
    let (loser, winner, script) = match (a_result, b_result) {
        (Err(e), Ok(_)) => (
            e,
            b,
            [("x@example.org", Some("X")), ("y@example.org", None)],
        ),
        (Ok(_), Err(e)) => (
            e,
            a,
            [("y@example.org", Some("Y")), ("x@example.org", None)],
        ),
        other => panic!("exactly one side must lose the deadlock: {other:?}"),
    };
    assert!(loser.is_retryable(), "{loser:?}");
    assert!(loser.to_string().contains("retry"), "{loser}");
    winner.commit().await.unwrap();
    // The lost batch, run again.
    let mut retry = store.begin_processing().await.unwrap();
    for (address, name) in script {
        retry.person(address, name).await.unwrap();
    }
    retry.commit().await.unwrap();
    let mut check = store.begin_processing().await.unwrap();
    let x = check.person("x@example.org", None).await.unwrap();
    let y = check.person("y@example.org", None).await.unwrap();
    assert_eq!(x.name.as_deref(), Some("X"));
    assert_eq!(y.name.as_deref(), Some("Y"));
    drop(check);
    other.close().await;
}

// ---- what agents do on tickets (issue 5) ----

mod agent_work {
    use super::*;

    on_both_backends!(
        notes_and_status_changes_are_the_tickets_history,
        tickets_are_found_by_requester_and_text,
        mailbox_updates_keep_the_ledger_and_clear_the_problem,
        backlog_and_last_success_are_counted,
    );

    async fn notes_and_status_changes_are_the_tickets_history(db: &TestDb) {
        let store = &db.store;
        let mailbox = add_mailbox(store, "support").await;
        let mut tx = store.begin_processing().await.unwrap();
        let person = tx.person("c@example.org", None).await.unwrap();
        let ticket = tx
            .create_ticket(mailbox.id, "Help", &person, T0)
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let note = store
            .add_ticket_note(ticket.id, None, "token ci", "looked at it", T0 + 10)
            .await
            .unwrap();
        assert_eq!(note.kind, store::TicketEventKind::Note);
        let after_note = store.ticket_by_id(ticket.id).await.unwrap().unwrap();
        assert_eq!(after_note.updated_at, T0 + 10, "a note is activity");

        let change = store
            .change_ticket_status(ticket.id, TicketStatus::Pending, None, "agent", T0 + 20)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(change.from_status, Some(TicketStatus::New));
        assert_eq!(change.to_status, Some(TicketStatus::Pending));
        assert_eq!(
            store
                .change_ticket_status(ticket.id, TicketStatus::Pending, None, "agent", T0 + 30)
                .await
                .unwrap(),
            None,
            "no change, nothing recorded"
        );
        let after = store.ticket_by_id(ticket.id).await.unwrap().unwrap();
        assert_eq!(after.status, TicketStatus::Pending);
        assert_eq!(after.updated_at, T0 + 20);
        let history = store.ticket_events(ticket.id).await.unwrap();
        assert_eq!(history, vec![note, change]);
        assert!(matches!(
            store.add_ticket_note(424242, None, "a", "b", T0).await,
            Err(StoreError::TicketNotFound(424242))
        ));
        assert!(matches!(
            store
                .change_ticket_status(424242, TicketStatus::Open, None, "a", T0)
                .await,
            Err(StoreError::TicketNotFound(424242))
        ));
    }

    async fn tickets_are_found_by_requester_and_text(db: &TestDb) {
        let store = &db.store;
        let mailbox = add_mailbox(store, "support").await;
        let raw = store_messages(store, mailbox.id, &["first of t1", "first of t2"]).await;
        let mut tx = store.begin_processing().await.unwrap();
        let ann = tx
            .person("ann@example.org", Some("Ann Smith"))
            .await
            .unwrap();
        let bob = tx.person("bob@example.net", None).await.unwrap();
        let t1 = tx
            .create_ticket(mailbox.id, "Printer on FIRE", &ann, T0)
            .await
            .unwrap();
        let t2 = tx
            .create_ticket(mailbox.id, "100% refund_please", &bob, T0 + 1)
            .await
            .unwrap();
        // The text search looks at the tickets' mail: each has its first.
        for (raw, ticket, from, name) in [
            (&raw[0], &t1, "ann@example.org", Some("Ann Smith")),
            (&raw[1], &t2, "bob@example.net", None),
        ] {
            let mut first = entry(raw.id, &format!("first-{}", ticket.id));
            first.subject = Some(ticket.subject.clone());
            first.from_address = Some(from.to_string());
            first.from_name = name.map(str::to_string);
            first.reply_text = "Hello.".into();
            first.text_body = "Hello.".into();
            tx.add_entry(ticket.id, mailbox.id, &first, T0 + 1)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        let find = |requester: Option<&str>, text: Option<&str>| {
            let filter = TicketFilter {
                requester: requester.map(str::to_string),
                text: text.map(str::to_string),
                ..TicketFilter::default()
            };
            async move {
                let ids: Vec<i64> = store
                    .tickets(&filter)
                    .await
                    .unwrap()
                    .iter()
                    .map(|t| t.id)
                    .collect();
                assert_eq!(
                    store.count_tickets(&filter).await.unwrap(),
                    ids.len() as u64
                );
                ids
            }
        };
        assert_eq!(find(Some("ANN@example.org"), None).await, vec![t1.id]);
        assert_eq!(
            find(Some("ann"), None).await,
            Vec::<i64>::new(),
            "exact address"
        );
        assert_eq!(find(None, Some("fire")).await, vec![t1.id]);
        assert_eq!(
            find(None, Some("smith")).await,
            vec![t1.id],
            "requester's name"
        );
        assert_eq!(find(None, Some("example.net")).await, vec![t2.id]);
        // Words, not wildcards: punctuation only separates them.
        assert_eq!(find(None, Some("100 refund")).await, vec![t2.id]);
        assert_eq!(find(None, Some("refund_please")).await, vec![t2.id]);
        assert_eq!(find(None, Some("r_fund")).await, Vec::<i64>::new());
        assert_eq!(
            find(None, Some("  ")).await,
            vec![t2.id, t1.id],
            "blank is no filter"
        );
        assert_eq!(
            find(Some("bob@example.net"), Some("fire")).await,
            Vec::<i64>::new()
        );
    }

    async fn mailbox_updates_keep_the_ledger_and_clear_the_problem(db: &TestDb) {
        let store = &db.store;
        let mailbox = add_mailbox(store, "support").await;
        let other = add_mailbox(store, "sales").await;
        store
            .commit_batch(mailbox.id, &[common::message(Some("u1"), "one")], T0)
            .await
            .unwrap();
        store
            .set_attention(mailbox.id, Some("authentication failed"), T0)
            .await
            .unwrap();
        let mut settings = mailbox.settings.clone();
        settings.host = "pop.example.net".into();
        settings.poll_interval_secs = 300;
        let updated = store
            .update_mailbox(mailbox.id, &settings, None, T0 + 1)
            .await
            .unwrap();
        assert_eq!(updated.settings, settings);
        assert_eq!(updated.needs_attention, None);
        assert_eq!(store.ledger(mailbox.id).await.unwrap().len(), 1);
        let before = store.mailbox_secret(mailbox.id).await.unwrap();
        let new_secret = secrecy::SecretString::from("new password");
        store
            .update_mailbox(mailbox.id, &settings, Some(&new_secret), T0 + 2)
            .await
            .unwrap();
        use secrecy::ExposeSecret;
        let after = store.mailbox_secret(mailbox.id).await.unwrap();
        assert_ne!(before.expose_secret(), after.expose_secret());
        assert_eq!(after.expose_secret(), "new password");
        settings.name = "sales".into();
        assert!(matches!(
            store
                .update_mailbox(mailbox.id, &settings, None, T0 + 3)
                .await,
            Err(StoreError::MailboxExists(_))
        ));
        assert!(matches!(
            store
                .update_mailbox(424242, &other.settings, None, T0)
                .await,
            Err(StoreError::MailboxExists(_)) | Err(StoreError::MailboxNotFound(_))
        ));
        assert!(store.remove_mailbox_by_id(other.id).await.unwrap());
        assert!(!store.remove_mailbox_by_id(other.id).await.unwrap());
    }

    async fn backlog_and_last_success_are_counted(db: &TestDb) {
        let store = &db.store;
        store.ping().await.unwrap();
        let mailbox = add_mailbox(store, "support").await;
        assert_eq!(store.count_pending_raw_messages().await.unwrap(), 0);
        store_messages(store, mailbox.id, &["a", "b"]).await;
        assert_eq!(store.count_pending_raw_messages().await.unwrap(), 2);
        assert_eq!(store.last_success_by_mailbox().await.unwrap(), vec![]);
        let run = store.start_run(mailbox.id, T0).await.unwrap();
        store
            .finish_run(
                run,
                T0 + 5,
                &store::RunCounts::default(),
                store::RunOutcome::Success,
                None,
            )
            .await
            .unwrap();
        let failed = store.start_run(mailbox.id, T0 + 10).await.unwrap();
        store
            .finish_run(
                failed,
                T0 + 15,
                &store::RunCounts::default(),
                store::RunOutcome::Transient,
                Some("down"),
            )
            .await
            .unwrap();
        assert_eq!(
            store.last_success_by_mailbox().await.unwrap(),
            vec![(mailbox.id, T0 + 5)]
        );
    }
}

/// A reply is threaded by the first of its referenced Message-IDs (newest first) that
/// any ticket holds, and the oldest mail holding an id decides — also when one of them
/// is a ticket the batch opened and has not written yet (the lookup reads it from
/// memory instead of writing the batch's tickets first).
async fn a_lookup_by_message_id_ranks_waiting_tickets_after_written_mail(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let raw = store_messages(store, mailbox.id, &["old", "new", "copy"]).await;
    let mut tx = store.begin_processing().await.unwrap();
    let written = tx
        .open_ticket(
            mailbox.id,
            "Written",
            ("customer@example.org", None),
            &entry(raw[0].id, "<old@x>"),
            T0,
        )
        .await
        .unwrap()
        .0;
    let waiting = open_in_batch(
        &mut tx,
        &raw[1],
        "Waiting",
        ("customer@example.org", None),
        "<new@x>",
        T0 + 1,
    )
    .await;
    // The same Message-ID again, on a ticket the batch has not written yet.
    let copy = open_in_batch(
        &mut tx,
        &raw[2],
        "Copy",
        ("customer@example.org", None),
        "<old@x>",
        T0 + 2,
    )
    .await;
    assert_ne!(copy.id, written.id);
    let lookup = async |tx: &mut ProcessingTx, ids: &[&str]| {
        let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        let (ticket, matched) = tx
            .ticket_for_message_ids(mailbox.id, &ids)
            .await
            .unwrap()
            .expect("a ticket holds one of them");
        (ticket.id, matched)
    };
    // Before anything is written: for one id, the written (older) mail beats the waiting copy.
    assert_eq!(
        lookup(&mut tx, &["<gone@x>", "<old@x>"]).await,
        (written.id, "<old@x>".to_string())
    );
    // The caller's order comes first: the newest reference wins, wherever its ticket is.
    assert_eq!(
        lookup(&mut tx, &["<new@x>", "<old@x>"]).await,
        (waiting.id, "<new@x>".to_string())
    );
    let none = tx
        .ticket_for_message_ids(mailbox.id, &["<gone@x>".to_string()])
        .await
        .unwrap();
    assert!(none.is_none());
    tx.commit().await.unwrap();
}
