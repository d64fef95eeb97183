//! Promise 4: one fetcher per mailbox at a time, across processes and machines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{T0, TestDb, add_mailbox, on_both_backends};
use store::{LeaseHolder, LeaseOutcome, StoreError};

const TTL: i64 = 60_000;

on_both_backends!(
    only_one_lease_holder_at_a_time_even_across_connections,
    an_expired_lease_lets_a_new_fetcher_in,
    a_lease_is_stolen_only_with_the_stale_token,
    a_renewed_lease_stays_and_a_lost_one_says_so,
    a_released_lease_is_free_at_once,
    leases_of_different_mailboxes_are_independent,
    a_lease_on_a_missing_mailbox_is_refused_clearly,
);

fn holder(n: usize) -> LeaseHolder {
    LeaseHolder {
        host: format!("host-{}", n % 3),
        pid: 1000 + n as u32,
        token: format!("token-{n}"),
    }
}

/// Many fetchers in several "processes" (stores with their own connection pools on the
/// same database) race for one mailbox at the same instant: exactly one wins, and every
/// loser is told who.
async fn only_one_lease_holder_at_a_time_even_across_connections(db: &TestDb) {
    let mailbox = add_mailbox(&db.store, "support").await;
    let mut processes = vec![db.store.clone()];
    for _ in 0..3 {
        processes.push(db.reopen().await);
    }
    for round in 0..3i64 {
        let now = T0 + round * 10 * TTL; // every round starts after the last lease expired
        let mut tasks = Vec::new();
        for n in 0..24 {
            let store = processes[n % processes.len()].clone();
            let h = holder(n + 100 * round as usize);
            tasks.push(tokio::spawn(async move {
                let outcome = store.acquire_lease(mailbox.id, &h, now, TTL).await;
                (h, outcome)
            }));
        }
        let mut winners = Vec::new();
        let mut held_by = Vec::new();
        for task in tasks {
            let (h, outcome) = task.await.unwrap();
            match outcome.unwrap() {
                LeaseOutcome::Acquired => winners.push(h),
                LeaseOutcome::HeldBy {
                    host,
                    pid,
                    token,
                    expires_at,
                } => held_by.push((host, pid, token, expires_at)),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let w = &winners[0];
        assert_eq!(held_by.len(), 23);
        for (host, pid, token, expires_at) in held_by {
            assert_eq!((&host, pid, &token), (&w.host, w.pid, &w.token));
            assert_eq!(expires_at, now + TTL);
        }
    }
}

async fn an_expired_lease_lets_a_new_fetcher_in(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let (a, b) = (holder(1), holder(2));
    assert_eq!(
        store.acquire_lease(mailbox.id, &a, T0, TTL).await.unwrap(),
        LeaseOutcome::Acquired
    );
    // Just before expiry: still a's.
    let outcome = store
        .acquire_lease(mailbox.id, &b, T0 + TTL - 1, TTL)
        .await
        .unwrap();
    assert!(matches!(outcome, LeaseOutcome::HeldBy { ref token, .. } if *token == a.token));
    // a may take its own lease again (extends it).
    assert_eq!(
        store
            .acquire_lease(mailbox.id, &a, T0 + 10, TTL)
            .await
            .unwrap(),
        LeaseOutcome::Acquired
    );
    // At expiry (a's extended lease ends at T0 + 10 + TTL) b gets in.
    let outcome = store
        .acquire_lease(mailbox.id, &b, T0 + 10 + TTL - 1, TTL)
        .await
        .unwrap();
    assert!(matches!(outcome, LeaseOutcome::HeldBy { .. }));
    assert_eq!(
        store
            .acquire_lease(mailbox.id, &b, T0 + 10 + TTL, TTL)
            .await
            .unwrap(),
        LeaseOutcome::Acquired
    );
    // a has lost it: renewing says so.
    assert!(
        !store
            .renew_lease(mailbox.id, &a, T0 + 10 + TTL, TTL)
            .await
            .unwrap()
    );
}

/// A holder proven dead (same host, pid gone) may be replaced before expiry, but only
/// while its token is still the current one: two fetchers that both saw the dead holder
/// cannot both take over.
async fn a_lease_is_stolen_only_with_the_stale_token(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let (dead, c1, c2) = (holder(1), holder(2), holder(3));
    store
        .acquire_lease(mailbox.id, &dead, T0, TTL)
        .await
        .unwrap();

    assert!(
        !store
            .steal_lease(mailbox.id, "not-the-token", &c1, T0 + 1, TTL)
            .await
            .unwrap()
    );
    let (r1, r2) = tokio::join!(
        store.steal_lease(mailbox.id, &dead.token, &c1, T0 + 1, TTL),
        store.steal_lease(mailbox.id, &dead.token, &c2, T0 + 1, TTL),
    );
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    assert!(r1 ^ r2, "exactly one takes over: {r1} {r2}");
    let winner = if r1 { &c1 } else { &c2 };
    let loser = if r1 { &c2 } else { &c1 };
    match store
        .acquire_lease(mailbox.id, loser, T0 + 2, TTL)
        .await
        .unwrap()
    {
        LeaseOutcome::HeldBy {
            host,
            pid,
            token,
            expires_at,
        } => {
            assert_eq!(
                (host, pid, token),
                (winner.host.clone(), winner.pid, winner.token.clone())
            );
            assert_eq!(expires_at, T0 + 1 + TTL);
        }
        other => panic!("{other:?}"),
    }
    // The dead holder, should it wake up, has lost the lease.
    assert!(
        !store
            .renew_lease(mailbox.id, &dead, T0 + 3, TTL)
            .await
            .unwrap()
    );
    // Stealing with a token that is no longer current changes nothing.
    assert!(
        !store
            .steal_lease(mailbox.id, &dead.token, loser, T0 + 4, TTL)
            .await
            .unwrap()
    );
    // No lease at all: nothing to steal.
    let other = add_mailbox(store, "other").await;
    assert!(
        !store
            .steal_lease(other.id, &dead.token, &c1, T0, TTL)
            .await
            .unwrap()
    );
}

async fn a_renewed_lease_stays_and_a_lost_one_says_so(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let (a, b) = (holder(1), holder(2));
    store.acquire_lease(mailbox.id, &a, T0, TTL).await.unwrap();
    // Renewed every half TTL for a long run: nobody else gets in.
    for i in 1..=10 {
        let now = T0 + i * TTL / 2;
        assert!(store.renew_lease(mailbox.id, &a, now, TTL).await.unwrap());
        let outcome = store
            .acquire_lease(mailbox.id, &b, now + 1, TTL)
            .await
            .unwrap();
        assert!(
            matches!(outcome, LeaseOutcome::HeldBy { .. }),
            "{i}: {outcome:?}"
        );
    }
    assert!(!store.renew_lease(mailbox.id, &b, T0, TTL).await.unwrap());
}

async fn a_released_lease_is_free_at_once(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let (a, b) = (holder(1), holder(2));
    store.acquire_lease(mailbox.id, &a, T0, TTL).await.unwrap();
    // Only the holder can release it.
    store.release_lease(mailbox.id, &b).await.unwrap();
    assert!(matches!(
        store
            .acquire_lease(mailbox.id, &b, T0 + 1, TTL)
            .await
            .unwrap(),
        LeaseOutcome::HeldBy { .. }
    ));
    store.release_lease(mailbox.id, &a).await.unwrap();
    store.release_lease(mailbox.id, &a).await.unwrap(); // twice is fine
    assert_eq!(
        store
            .acquire_lease(mailbox.id, &b, T0 + 2, TTL)
            .await
            .unwrap(),
        LeaseOutcome::Acquired
    );
    assert!(
        !store
            .renew_lease(mailbox.id, &a, T0 + 3, TTL)
            .await
            .unwrap()
    );
}

async fn leases_of_different_mailboxes_are_independent(db: &TestDb) {
    let store = &db.store;
    let one = add_mailbox(store, "one").await;
    let two = add_mailbox(store, "two").await;
    let (a, b) = (holder(1), holder(2));
    assert_eq!(
        store.acquire_lease(one.id, &a, T0, TTL).await.unwrap(),
        LeaseOutcome::Acquired
    );
    assert_eq!(
        store.acquire_lease(two.id, &b, T0, TTL).await.unwrap(),
        LeaseOutcome::Acquired
    );
}

async fn a_lease_on_a_missing_mailbox_is_refused_clearly(db: &TestDb) {
    let err = db
        .store
        .acquire_lease(777, &holder(1), T0, TTL)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::MailboxNotFound(777)), "{err:?}");
}
