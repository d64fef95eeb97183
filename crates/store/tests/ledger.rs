//! The batch commit and the UIDL ledger: promise 1 (a batch is durable all at once or
//! not at all) and promise 2 (nothing is stored twice; per mailbox, never across).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{T0, TestDb, add_mailbox, message, on_both_backends};
use store::{Backend, CommitOutcome, LedgerState, RawStatus, StoreError};

on_both_backends!(
    commit_batch_is_all_or_nothing,
    a_batch_that_cannot_be_stored_leaves_nothing_behind,
    commit_batch_stores_raw_messages_and_ledger_rows,
    same_content_twice_in_one_mailbox_is_one_raw_message,
    same_mail_in_two_mailboxes_is_kept_for_each,
    a_known_uidl_is_in_the_ledger_for_the_next_run,
    start_now_seeds_the_ledger_without_touching_known_uids,
    deleted_messages_stay_in_the_ledger_until_they_leave_the_server,
    commit_for_a_missing_mailbox_is_refused_clearly,
    messages_without_uidl_are_deduplicated_by_content,
    too_large_messages_are_recorded_as_such,
    a_part_committed_for_a_later_sync_is_seen_at_once,
);

/// A database-side failure in the middle of a batch (a trigger refusing the third
/// message) rolls back the first two as well.
async fn commit_batch_is_all_or_nothing(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let poison = message(Some("u3"), "poison");

    let mut conn = db.raw_connection().await;
    let trigger: &[&str] = match db.backend {
        Backend::Sqlite => &[
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON raw_messages \
             WHEN NEW.sha256 = 'POISON' BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        ],
        Backend::Postgres => &[
            "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN \
             IF NEW.sha256 = 'POISON' THEN RAISE EXCEPTION 'injected failure'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON raw_messages \
             FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
        ],
    };
    for sql in trigger {
        let sql = sql.replace("POISON", &poison.sha256);
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }

    let batch = vec![
        message(Some("u1"), "first"),
        message(Some("u2"), "second"),
        poison.clone(),
        message(Some("u4"), "fourth"),
    ];
    let err = store
        .commit_batch(mailbox.id, &batch, T0)
        .await
        .expect_err("the trigger refuses the third message");
    assert!(matches!(err, StoreError::Database { .. }), "{err:?}");
    assert!(!err.is_disk_full());
    assert_eq!(store.count_raw_messages(mailbox.id).await.unwrap(), 0);
    assert!(store.ledger(mailbox.id).await.unwrap().is_empty());

    // The same batch without the poison commits whole, as new messages (nothing of the
    // failed attempt lingers to make them look like duplicates).
    let batch: Vec<_> = batch.into_iter().filter(|m| m.uid != poison.uid).collect();
    let outcomes = store
        .commit_batch(mailbox.id, &batch, T0 + 1)
        .await
        .unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, CommitOutcome::Stored { .. }))
    );
    assert_eq!(store.count_raw_messages(mailbox.id).await.unwrap(), 3);
    assert_eq!(store.ledger(mailbox.id).await.unwrap().len(), 3);
}

/// A failure on our side half-way through (a size that does not fit the database) also
/// leaves nothing.
async fn a_batch_that_cannot_be_stored_leaves_nothing_behind(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let mut huge = message(Some("u2"), "second");
    huge.size = u64::MAX;
    let batch = vec![message(Some("u1"), "first"), huge];
    let err = store
        .commit_batch(mailbox.id, &batch, T0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err:?}");
    assert_eq!(store.count_raw_messages(mailbox.id).await.unwrap(), 0);
    assert!(store.ledger(mailbox.id).await.unwrap().is_empty());

    // Not a digest: refused before anything is written.
    let mut bad = message(Some("u1"), "first");
    bad.sha256 = "../../etc/passwd".to_string();
    let err = store
        .commit_batch(mailbox.id, &[bad], T0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidDigest(_)), "{err:?}");
}

async fn commit_batch_stores_raw_messages_and_ledger_rows(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let batch = vec![message(Some("u1"), "first"), message(Some("u2"), "second")];
    let outcomes = store.commit_batch(mailbox.id, &batch, T0).await.unwrap();
    assert_eq!(outcomes.len(), 2);

    let raws = store.raw_messages(mailbox.id).await.unwrap();
    assert_eq!(raws.len(), 2);
    for ((raw, item), outcome) in raws.iter().zip(&batch).zip(&outcomes) {
        assert_eq!(
            *outcome,
            CommitOutcome::Stored {
                raw_message_id: raw.id
            }
        );
        assert_eq!(raw.mailbox_id, mailbox.id);
        assert_eq!(raw.uid, item.uid);
        assert_eq!(raw.sha256, item.sha256);
        assert_eq!(raw.size, item.size);
        assert_eq!(raw.server_size, item.server_size);
        assert_eq!(raw.message_id, item.message_id);
        assert_eq!(raw.status, RawStatus::Stored);
        assert_eq!(raw.received_at, T0);
        assert_eq!(store.raw_message(raw.id).await.unwrap().as_ref(), Some(raw));
    }
    assert!(raws[0].id < raws[1].id, "arrival order");
    assert_eq!(store.raw_message(i64::MAX).await.unwrap(), None);

    let ledger = store.ledger(mailbox.id).await.unwrap();
    assert_eq!(ledger.len(), 2);
    for (entry, raw) in ledger.iter().zip(&raws) {
        assert_eq!(Some(&entry.uid), raw.uid.as_ref());
        assert_eq!(entry.state, LedgerState::Stored);
        assert_eq!(entry.raw_message_id, Some(raw.id));
        assert_eq!(entry.first_seen_at, T0);
        assert_eq!(entry.deleted_at, None);
    }
    assert!(
        store
            .commit_batch(mailbox.id, &[], T0)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The same octets under a new UIDL (Gmail recent mode, a provider's copy), in a later
/// batch or twice in the same one, are one raw message; the ledger records the UIDLs as
/// duplicates so they are deleted without being downloaded again.
async fn same_content_twice_in_one_mailbox_is_one_raw_message(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let first = store
        .commit_batch(mailbox.id, &[message(Some("u1"), "hello")], T0)
        .await
        .unwrap();
    let CommitOutcome::Stored { raw_message_id } = first[0] else {
        panic!("first copy must be stored: {first:?}");
    };

    let again = store
        .commit_batch(
            mailbox.id,
            &[
                message(Some("recent:u1"), "hello"),
                message(Some("u2"), "other"),
                message(Some("u3"), "other"),
            ],
            T0 + 1,
        )
        .await
        .unwrap();
    assert_eq!(again[0], CommitOutcome::Duplicate { raw_message_id });
    let CommitOutcome::Stored {
        raw_message_id: other,
    } = again[1]
    else {
        panic!("{again:?}");
    };
    assert_eq!(
        again[2],
        CommitOutcome::Duplicate {
            raw_message_id: other
        }
    );
    assert_eq!(store.count_raw_messages(mailbox.id).await.unwrap(), 2);

    let ledger = store.ledger(mailbox.id).await.unwrap();
    let state = |uid: &str| {
        ledger
            .iter()
            .find(|e| e.uid == uid)
            .map(|e| (e.state, e.raw_message_id))
    };
    assert_eq!(
        state("u1"),
        Some((LedgerState::Stored, Some(raw_message_id)))
    );
    assert_eq!(
        state("recent:u1"),
        Some((LedgerState::Duplicate, Some(raw_message_id)))
    );
    assert_eq!(state("u3"), Some((LedgerState::Duplicate, Some(other))));
}

/// Never dedupe across mailboxes: the same mail legitimately reaches two addresses.
async fn same_mail_in_two_mailboxes_is_kept_for_each(db: &TestDb) {
    let store = &db.store;
    let sales = add_mailbox(store, "sales").await;
    let support = add_mailbox(store, "support").await;
    let mail = message(Some("u1"), "to sales and support");
    let a = store
        .commit_batch(sales.id, std::slice::from_ref(&mail), T0)
        .await
        .unwrap();
    let b = store
        .commit_batch(support.id, std::slice::from_ref(&mail), T0)
        .await
        .unwrap();
    assert!(matches!(a[0], CommitOutcome::Stored { .. }), "{a:?}");
    assert!(matches!(b[0], CommitOutcome::Stored { .. }), "{b:?}");
    assert_ne!(a[0].raw_message_id(), b[0].raw_message_id());
    assert_eq!(store.count_raw_messages(sales.id).await.unwrap(), 1);
    assert_eq!(store.count_raw_messages(support.id).await.unwrap(), 1);
    assert_eq!(store.ledger(sales.id).await.unwrap()[0].uid, "u1");
    assert_eq!(store.ledger(support.id).await.unwrap()[0].uid, "u1");
}

/// What one process committed, another (the next run) sees: the ledger is the memory
/// that keeps a returning message from being downloaded again.
async fn a_known_uidl_is_in_the_ledger_for_the_next_run(db: &TestDb) {
    let mailbox = add_mailbox(&db.store, "support").await;
    db.store
        .commit_batch(mailbox.id, &[message(Some("u1"), "hello")], T0)
        .await
        .unwrap();
    db.store.close().await;
    let next_run = db.reopen().await;
    let ledger = next_run.ledger(mailbox.id).await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].uid, "u1");
    assert_eq!(ledger[0].state, LedgerState::Stored);
}

async fn start_now_seeds_the_ledger_without_touching_known_uids(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    store
        .commit_batch(mailbox.id, &[message(Some("u1"), "hello")], T0)
        .await
        .unwrap();
    let uids: Vec<String> = (0..1200).map(|i| format!("u{i}")).collect();
    store.seed_ledger(mailbox.id, &uids, T0 + 5).await.unwrap();
    // Seeding twice (a retried first run) changes nothing.
    store.seed_ledger(mailbox.id, &uids, T0 + 9).await.unwrap();
    store.seed_ledger(mailbox.id, &[], T0 + 9).await.unwrap();

    let ledger = store.ledger(mailbox.id).await.unwrap();
    assert_eq!(ledger.len(), 1200);
    let u1 = ledger.iter().find(|e| e.uid == "u1").unwrap();
    assert_eq!((u1.state, u1.first_seen_at), (LedgerState::Stored, T0));
    let u7 = ledger.iter().find(|e| e.uid == "u7").unwrap();
    assert_eq!(
        (u7.state, u7.raw_message_id, u7.first_seen_at),
        (LedgerState::Seeded, None, T0 + 5)
    );
    assert_eq!(store.count_raw_messages(mailbox.id).await.unwrap(), 1);
}

async fn deleted_messages_stay_in_the_ledger_until_they_leave_the_server(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let batch: Vec<_> = (1..=3)
        .map(|i| message(Some(&format!("u{i}")), &format!("body {i}")))
        .collect();
    store.commit_batch(mailbox.id, &batch, T0).await.unwrap();
    store
        .mark_deleted(
            mailbox.id,
            &["u1".into(), "u2".into(), "unknown".into()],
            T0 + 10,
        )
        .await
        .unwrap();
    store.mark_deleted(mailbox.id, &[], T0 + 10).await.unwrap();
    let deleted_at = |ledger: &[store::LedgerEntry], uid: &str| {
        ledger.iter().find(|e| e.uid == uid).map(|e| e.deleted_at)
    };
    let ledger = store.ledger(mailbox.id).await.unwrap();
    assert_eq!(ledger.len(), 3, "rows stay after deletion");
    assert_eq!(deleted_at(&ledger, "u1"), Some(Some(T0 + 10)));
    assert_eq!(deleted_at(&ledger, "u3"), Some(None));

    // The provider kept u2 (still listed); u1 is really gone.
    let forgotten = store
        .forget_deleted_absent(mailbox.id, &["u2".into(), "u3".into()])
        .await
        .unwrap();
    assert_eq!(forgotten, 1);
    let ledger = store.ledger(mailbox.id).await.unwrap();
    assert_eq!(deleted_at(&ledger, "u1"), None);
    assert_eq!(deleted_at(&ledger, "u2"), Some(Some(T0 + 10)));
    // u3 was never deleted: kept although absent.
    assert_eq!(
        store.forget_deleted_absent(mailbox.id, &[]).await.unwrap(),
        1
    );
    assert_eq!(store.ledger(mailbox.id).await.unwrap().len(), 1);
    // The raw messages are kept regardless.
    assert_eq!(store.count_raw_messages(mailbox.id).await.unwrap(), 3);
}

async fn commit_for_a_missing_mailbox_is_refused_clearly(db: &TestDb) {
    let err = db
        .store
        .commit_batch(4242, &[message(Some("u1"), "x"), message(None, "y")], T0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::MailboxNotFound(4242)), "{err:?}");
    assert_eq!(db.store.count_raw_messages(4242).await.unwrap(), 0);
    let err = db
        .store
        .seed_ledger(4242, &["u1".into()], T0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::MailboxNotFound(4242)), "{err:?}");
}

/// A server without UIDL: no ledger rows, the content hash alone catches duplicates.
async fn messages_without_uidl_are_deduplicated_by_content(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "no-uidl").await;
    let out = store
        .commit_batch(mailbox.id, &[message(None, "a"), message(None, "b")], T0)
        .await
        .unwrap();
    assert!(
        out.iter()
            .all(|o| matches!(o, CommitOutcome::Stored { .. }))
    );
    let out = store
        .commit_batch(mailbox.id, &[message(None, "a")], T0 + 1)
        .await
        .unwrap();
    assert!(matches!(out[0], CommitOutcome::Duplicate { .. }));
    assert!(store.ledger(mailbox.id).await.unwrap().is_empty());
    let raws = store.raw_messages(mailbox.id).await.unwrap();
    assert_eq!(raws.len(), 2);
    assert_eq!(raws[0].uid, None);
}

async fn too_large_messages_are_recorded_as_such(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let mut headers = message(Some("big"), "Subject: huge\r\n\r\n");
    headers.status = RawStatus::TooLarge;
    headers.server_size = Some(30_000_000);
    store
        .commit_batch(mailbox.id, &[headers], T0)
        .await
        .unwrap();
    let ledger = store.ledger(mailbox.id).await.unwrap();
    assert_eq!(ledger[0].state, LedgerState::TooLarge);
    let raw = &store.raw_messages(mailbox.id).await.unwrap()[0];
    assert_eq!(raw.status, RawStatus::TooLarge);
    assert_eq!(raw.server_size, Some(30_000_000));

    // Later downloaded whole (limit raised): the same UIDL now points at the full message
    // and keeps its first sighting.
    let full = message(Some("big"), "Subject: huge\r\n\r\nthe whole thing");
    store
        .commit_batch(mailbox.id, &[full], T0 + 100)
        .await
        .unwrap();
    let ledger = store.ledger(mailbox.id).await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].state, LedgerState::Stored);
    assert_eq!(ledger[0].first_seen_at, T0);
    assert_eq!(store.count_raw_messages(mailbox.id).await.unwrap(), 2);
}

/// A fetch's part, committed without a sync of its own ([`Store::commit_part`]), is
/// there for every reader at once (the processor, the next part's duplicate check) —
/// only its way to the disk waits, for [`Store::sync_commits`].
async fn a_part_committed_for_a_later_sync_is_seen_at_once(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let part = vec![message(Some("u1"), "first"), message(Some("u2"), "second")];
    let outcomes = store.commit_part(mailbox.id, &part, T0).await.unwrap();
    let raws = store.raw_messages(mailbox.id).await.unwrap();
    assert_eq!(raws.len(), 2);
    for (raw, outcome) in raws.iter().zip(&outcomes) {
        assert_eq!(
            *outcome,
            CommitOutcome::Stored {
                raw_message_id: raw.id
            }
        );
    }
    // The next part offers the first message again under a new UIDL: a duplicate.
    let again = vec![message(Some("u3"), "first")];
    let outcomes = store.commit_part(mailbox.id, &again, T0).await.unwrap();
    assert_eq!(
        outcomes,
        vec![CommitOutcome::Duplicate {
            raw_message_id: raws[0].id
        }]
    );
    store.sync_commits().await.unwrap();
    let ledger = store.ledger(mailbox.id).await.unwrap();
    let uids: Vec<&str> = ledger.iter().map(|e| e.uid.as_str()).collect();
    assert_eq!(uids, ["u1", "u2", "u3"]);
}
