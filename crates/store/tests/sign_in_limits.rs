//! Sign-in limits live in the database: two popdesk processes on one database (two
//! stores here) count the same failures, and parallel attempts on both cannot pass a
//! limit together.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestDb, on_both_backends};
use store::SignInKey;

const WINDOW: i64 = 15 * 60_000;

on_both_backends!(
    failures_counted_on_one_node_lock_the_address_on_another,
    parallel_attempts_on_two_nodes_pass_the_limit_only_as_often_as_it_allows,
);

async fn failures_counted_on_one_node_lock_the_address_on_another(db: &TestDb) {
    let (one, two) = (&db.store, db.reopen().await);
    let key = [SignInKey {
        key: "address:victim",
        max: 5,
    }];
    for i in 0..3 {
        assert_eq!(one.reserve_sign_in(&key, WINDOW, i).await.unwrap(), Ok(()));
    }
    for i in 3..5 {
        assert_eq!(two.reserve_sign_in(&key, WINDOW, i).await.unwrap(), Ok(()));
    }
    // Locked everywhere, until the window that began at t=0 ends.
    assert_eq!(
        one.reserve_sign_in(&key, WINDOW, 60_000).await.unwrap(),
        Err(WINDOW - 60_000)
    );
    assert!(
        two.reserve_sign_in(&key, WINDOW, 60_000)
            .await
            .unwrap()
            .is_err()
    );
    // A network at its limit refuses the attempt, and then nothing of it counts.
    let network = SignInKey {
        key: "network:192.0.2.7",
        max: 1,
    };
    let other = SignInKey {
        key: "address:other",
        max: 5,
    };
    assert_eq!(
        two.reserve_sign_in(&[other, network], WINDOW, 10)
            .await
            .unwrap(),
        Ok(())
    );
    assert!(
        one.reserve_sign_in(&[other, network], WINDOW, 11)
            .await
            .unwrap()
            .is_err()
    );
    // A success on one node clears the address for both, and takes its attempt back
    // from the network.
    one.sign_in_succeeded("address:other", Some(network), 10)
        .await
        .unwrap();
    assert_eq!(
        two.reserve_sign_in(&[other, network], WINDOW, 12)
            .await
            .unwrap(),
        Ok(())
    );
    // A new window once the old one ended.
    assert_eq!(
        two.reserve_sign_in(&key, WINDOW, WINDOW).await.unwrap(),
        Ok(())
    );
}

async fn parallel_attempts_on_two_nodes_pass_the_limit_only_as_often_as_it_allows(db: &TestDb) {
    let stores = [db.store.clone(), db.reopen().await];
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = stores[i % 2].clone();
            tokio::spawn(async move {
                let key = [SignInKey {
                    key: "address:guessed",
                    max: 5,
                }];
                loop {
                    match store.reserve_sign_in(&key, WINDOW, 1_000).await {
                        Ok(outcome) => return outcome.is_ok(),
                        // SQLite's one writer: a lock conflict is tried again.
                        Err(e) if e.is_retryable() => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    let mut passed = 0;
    for task in tasks {
        if task.await.unwrap() {
            passed += 1;
        }
    }
    assert_eq!(passed, 5);
}
