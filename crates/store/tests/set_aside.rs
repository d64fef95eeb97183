//! Messages the server cannot hand out: each failed try is recorded against the UIDL, a
//! message that fails the same way in several runs is set aside, "try again" gives it one
//! more chance, and a message stored after all is no longer failing. Promise 5 for mail
//! still on the server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{T0, TestDb, add_mailbox, message, on_both_backends};
use store::{FailedRetrieval, FailureKind};

on_both_backends!(
    a_message_failing_the_same_way_three_times_is_set_aside,
    a_different_failure_starts_the_count_again,
    try_again_gives_one_more_chance_and_a_new_failure_sets_aside_at_once,
    a_failing_message_stored_after_all_is_no_longer_failing,
    messages_gone_from_the_server_are_forgotten,
    headers_with_a_nul_are_kept_on_both_databases,
);

fn cut(uid: &str) -> FailedRetrieval<'_> {
    FailedRetrieval {
        uid,
        size: 4321,
        kind: FailureKind::Connection,
        error: "the server closed the connection",
        octets: 2000,
    }
}

async fn a_message_failing_the_same_way_three_times_is_set_aside(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    for (i, expect_set_aside) in [(0, false), (1, false), (2, true)] {
        let now = T0 + i * 1000;
        let message = store
            .record_failed_retrieval(mailbox.id, &cut("u2"), now, 3)
            .await
            .unwrap();
        assert_eq!(
            message.is_set_aside(),
            expect_set_aside,
            "attempt {}",
            i + 1
        );
        assert_eq!(message.attempts.len() as i64, i + 1);
        assert_eq!(message.attempts[i as usize].at, now);
    }
    let listed = store.set_aside_messages(mailbox.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    let aside = &listed[0];
    assert_eq!((aside.uid.as_str(), aside.size), ("u2", 4321));
    assert_eq!(aside.set_aside_at, Some(T0 + 2000));
    assert_eq!(aside.first_failed_at, T0);
    assert!(
        aside
            .attempts
            .iter()
            .all(|a| a.kind == FailureKind::Connection && a.error.contains("closed"))
    );
    assert_eq!(store.set_aside_count(mailbox.id).await.unwrap(), 1);
    assert_eq!(
        store.set_aside_counts().await.unwrap(),
        vec![(mailbox.id, 1)]
    );
    // Another mailbox's count is its own.
    let other = add_mailbox(store, "sales").await;
    assert_eq!(store.set_aside_count(other.id).await.unwrap(), 0);
}

async fn a_different_failure_starts_the_count_again(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    store
        .record_failed_retrieval(mailbox.id, &cut("u2"), T0, 3)
        .await
        .unwrap();
    store
        .record_failed_retrieval(mailbox.id, &cut("u2"), T0 + 1, 3)
        .await
        .unwrap();
    let stall = FailedRetrieval {
        kind: FailureKind::Timeout,
        error: "the server stopped answering (read timeout)",
        ..cut("u2")
    };
    let message = store
        .record_failed_retrieval(mailbox.id, &stall, T0 + 2, 3)
        .await
        .unwrap();
    assert!(
        !message.is_set_aside(),
        "a network failing in different ways"
    );
    assert_eq!(message.attempts.len(), 3);
    assert_eq!(store.failing_messages(mailbox.id).await.unwrap().len(), 1);
    assert!(
        store
            .set_aside_messages(mailbox.id)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn try_again_gives_one_more_chance_and_a_new_failure_sets_aside_at_once(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    assert!(!store.try_set_aside_again(mailbox.id, "u2").await.unwrap());
    for i in 0..3 {
        store
            .record_failed_retrieval(mailbox.id, &cut("u2"), T0 + i, 3)
            .await
            .unwrap();
    }
    assert!(store.try_set_aside_again(mailbox.id, "u2").await.unwrap());
    assert_eq!(store.set_aside_count(mailbox.id).await.unwrap(), 0);
    let failing = store.failing_messages(mailbox.id).await.unwrap();
    assert!(failing[0].retry_once && !failing[0].is_set_aside());
    assert_eq!(failing[0].attempts.len(), 3, "the history stays");
    let again = store
        .record_failed_retrieval(mailbox.id, &cut("u2"), T0 + 10, 3)
        .await
        .unwrap();
    assert!(again.is_set_aside() && !again.retry_once);
    assert_eq!(again.attempts.len(), 4);
}

async fn a_failing_message_stored_after_all_is_no_longer_failing(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    for i in 0..3 {
        store
            .record_failed_retrieval(mailbox.id, &cut("u2"), T0 + i, 3)
            .await
            .unwrap();
    }
    store
        .record_failed_retrieval(mailbox.id, &cut("u9"), T0, 3)
        .await
        .unwrap();
    store.try_set_aside_again(mailbox.id, "u2").await.unwrap();
    store
        .commit_batch(mailbox.id, &[message(Some("u2"), "fixed")], T0 + 100)
        .await
        .unwrap();
    let failing = store.failing_messages(mailbox.id).await.unwrap();
    assert_eq!(
        failing.iter().map(|m| m.uid.as_str()).collect::<Vec<_>>(),
        ["u9"]
    );
    assert_eq!(failing[0].attempts.len(), 1, "u2's attempts went with it");
    // Failing again later starts a fresh history.
    let fresh = store
        .record_failed_retrieval(mailbox.id, &cut("u2"), T0 + 200, 3)
        .await
        .unwrap();
    assert_eq!(fresh.attempts.len(), 1);
}

async fn messages_gone_from_the_server_are_forgotten(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    for uid in ["gone", "here"] {
        store
            .record_failed_retrieval(mailbox.id, &cut(uid), T0, 1)
            .await
            .unwrap();
    }
    let forgotten = store
        .forget_absent_failing(mailbox.id, &["here".to_string(), "other".to_string()])
        .await
        .unwrap();
    assert_eq!(forgotten, 1);
    let left = store.set_aside_messages(mailbox.id).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].uid, "here");
}

async fn headers_with_a_nul_are_kept_on_both_databases(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    store
        .record_failed_retrieval(mailbox.id, &cut("u2"), T0, 3)
        .await
        .unwrap();
    store
        .record_failing_headers(mailbox.id, "u2", Some("Subject: a\0b\r\n"))
        .await
        .unwrap();
    let failing = store.failing_messages(mailbox.id).await.unwrap();
    assert!(failing[0].headers_tried);
    assert_eq!(
        failing[0].headers.as_deref(),
        Some("Subject: a\u{FFFD}b\r\n")
    );
}
