//! Every fetch run is recorded, also one whose process was killed: the admin always sees
//! why mail did or did not come in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{T0, TestDb, add_mailbox, on_both_backends};
use store::{RunCounts, RunOutcome, StoreError};

on_both_backends!(
    every_run_is_recorded_with_counts_and_outcome,
    a_killed_run_shows_its_progress_and_is_marked_interrupted,
    runs_are_listed_newest_first,
    a_run_of_a_missing_mailbox_is_refused_clearly,
);

async fn every_run_is_recorded_with_counts_and_outcome(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let run = store.start_run(mailbox.id, T0).await.unwrap();
    let fresh = &store.runs(mailbox.id, 10).await.unwrap()[0];
    assert_eq!(fresh.id, run);
    assert_eq!(fresh.outcome, RunOutcome::Running);
    assert_eq!(fresh.counts, RunCounts::default());
    assert_eq!((fresh.started_at, fresh.finished_at), (T0, None));

    let counts = RunCounts {
        listed: 300,
        downloaded: 120,
        deleted: 119,
        already_known: 180,
        too_large: 1,
        duplicates: 2,
        bytes: 9_876_543_210,
    };
    store
        .finish_run(
            run,
            T0 + 42,
            &counts,
            RunOutcome::Transient,
            Some("the disk is full"),
        )
        .await
        .unwrap();
    let done = &store.runs(mailbox.id, 10).await.unwrap()[0];
    assert_eq!(done.counts, counts);
    assert_eq!(done.outcome, RunOutcome::Transient);
    assert_eq!(done.finished_at, Some(T0 + 42));
    assert_eq!(done.error.as_deref(), Some("the disk is full"));
    assert_eq!(done.mailbox_id, mailbox.id);

    let err = store
        .finish_run(run + 1000, T0, &counts, RunOutcome::Success, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::RunNotFound(_)), "{err:?}");
    for outcome in [
        RunOutcome::Running,
        RunOutcome::Success,
        RunOutcome::Transient,
        RunOutcome::Permanent,
        RunOutcome::Interrupted,
    ] {
        assert_eq!(
            outcome.to_string().parse::<RunOutcome>().ok(),
            Some(outcome)
        );
    }
}

/// A run killed mid-way keeps the counts of its last batch; the next run marks it
/// interrupted (its process is gone: the new run holds the lease).
async fn a_killed_run_shows_its_progress_and_is_marked_interrupted(db: &TestDb) {
    let mailbox = add_mailbox(&db.store, "support").await;
    let killed = db.store.start_run(mailbox.id, T0).await.unwrap();
    let progress = RunCounts {
        listed: 300,
        downloaded: 50,
        deleted: 50,
        bytes: 5_000,
        ..RunCounts::default()
    };
    db.store.update_run_counts(killed, &progress).await.unwrap();
    db.store.close().await; // the process dies

    let store = db.reopen().await;
    let shown = &store.runs(mailbox.id, 1).await.unwrap()[0];
    assert_eq!(
        (shown.outcome, shown.counts),
        (RunOutcome::Running, progress)
    );

    let next = store.start_run(mailbox.id, T0 + 1000).await.unwrap();
    let runs = store.runs(mailbox.id, 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!((runs[0].id, runs[0].outcome), (next, RunOutcome::Running));
    assert_eq!(
        (runs[1].id, runs[1].outcome),
        (killed, RunOutcome::Interrupted)
    );
    assert_eq!(runs[1].counts, progress);
    assert!(
        runs[1]
            .error
            .as_deref()
            .unwrap()
            .contains("stopped before it finished")
    );
    assert!(
        store
            .update_run_counts(next + 1000, &progress)
            .await
            .is_err()
    );

    // Another mailbox's running run is not touched.
    let other = add_mailbox(&store, "other").await;
    let other_run = store.start_run(other.id, T0).await.unwrap();
    store.start_run(mailbox.id, T0 + 2000).await.unwrap();
    assert_eq!(store.runs(other.id, 1).await.unwrap()[0].id, other_run);
    assert_eq!(
        store.runs(other.id, 1).await.unwrap()[0].outcome,
        RunOutcome::Running
    );
}

async fn runs_are_listed_newest_first(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = store.start_run(mailbox.id, T0 + i).await.unwrap();
        store
            .finish_run(id, T0 + i, &RunCounts::default(), RunOutcome::Success, None)
            .await
            .unwrap();
        ids.push(id);
    }
    let listed: Vec<i64> = store
        .runs(mailbox.id, 3)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    ids.reverse();
    assert_eq!(listed, ids[..3]);
    assert!(store.runs(mailbox.id + 1, 3).await.unwrap().is_empty());
}

async fn a_run_of_a_missing_mailbox_is_refused_clearly(db: &TestDb) {
    let err = db.store.start_run(31337, T0).await.unwrap_err();
    assert!(matches!(err, StoreError::MailboxNotFound(31337)), "{err:?}");
}
