//! Users, sign-in sessions and API tokens (promise 7: secrets stay secret — the store
//! keeps only hashes; access ends when a session expires, a user is disabled or a token
//! is revoked).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{T0, TestDb, on_both_backends};
use store::{Role, StoreError};

on_both_backends!(
    users_are_one_per_address_whatever_its_case,
    the_first_admin_is_created_only_once,
    a_session_ends_at_expiry_sign_out_or_when_its_user_is_disabled,
    a_password_change_ends_the_users_sessions,
    a_session_unused_for_the_idle_timeout_ends,
    api_tokens_keep_only_their_hash_and_stop_when_revoked,
    api_tokens_expire_and_never_act_beyond_their_maker,
    removing_a_user_keeps_their_notes,
);

/// An idle timeout longer than any test here.
const IDLE: i64 = 3_600_000;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

async fn users_are_one_per_address_whatever_its_case(db: &TestDb) {
    let store = &db.store;
    let ann = store
        .create_user(" Ann@Example.org ", Some("Ann"), Role::Agent, HASH, T0)
        .await
        .unwrap();
    assert_eq!(ann.email, "ann@example.org");
    assert_eq!(ann.role, Role::Agent);
    assert!(!ann.disabled);
    assert!(matches!(
        store
            .create_user("ANN@example.org", None, Role::Admin, HASH, T0)
            .await,
        Err(StoreError::UserExists(ref email)) if email == "ann@example.org"
    ));
    let found = store.user_by_email("ann@EXAMPLE.org").await.unwrap();
    assert_eq!(found.as_ref(), Some(&ann));
    assert_eq!(store.user_by_id(ann.id).await.unwrap(), Some(ann.clone()));
    assert_eq!(
        store.user_password_hash(ann.id).await.unwrap().as_deref(),
        Some(HASH)
    );
    assert_eq!(store.count_users().await.unwrap(), 1);

    let updated = store
        .update_user(ann.id, Some("Ann B."), Role::Admin, false, T0 + 1)
        .await
        .unwrap();
    assert_eq!(updated.role, Role::Admin);
    assert_eq!(updated.name.as_deref(), Some("Ann B."));
    assert_eq!(updated.label(), "Ann B. <ann@example.org>");
    assert!(matches!(
        store.update_user(9999, None, Role::Agent, false, T0).await,
        Err(StoreError::UserNotFound(9999))
    ));
    store
        .create_user("bob@example.org", None, Role::Agent, HASH, T0)
        .await
        .unwrap();
    let emails: Vec<String> = store
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.email)
        .collect();
    assert_eq!(emails, ["ann@example.org", "bob@example.org"]);
    assert!(store.delete_user(ann.id, T0).await.unwrap());
    assert!(!store.delete_user(ann.id, T0).await.unwrap());
    assert_eq!(store.count_users().await.unwrap(), 1);
}

async fn the_first_admin_is_created_only_once(db: &TestDb) {
    let store = &db.store;
    // Two setup pages submitted at once: exactly one admin.
    let other = db.reopen().await;
    let (a, b) = tokio::join!(
        store.create_first_admin("first@example.org", None, HASH, T0),
        other.create_first_admin("second@example.org", None, HASH, T0),
    );
    let created: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0].role, Role::Admin);
    assert_eq!(store.count_users().await.unwrap(), 1);
    assert_eq!(
        store
            .create_first_admin("third@example.org", None, HASH, T0)
            .await
            .unwrap(),
        None
    );
}

async fn a_session_ends_at_expiry_sign_out_or_when_its_user_is_disabled(db: &TestDb) {
    let store = &db.store;
    let user = store
        .create_user("agent@example.org", None, Role::Agent, HASH, T0)
        .await
        .unwrap();
    store
        .create_session("hash-1", user.id, T0, T0 + 1000)
        .await
        .unwrap();
    store
        .create_session("hash-2", user.id, T0, T0 + 5000)
        .await
        .unwrap();
    assert_eq!(
        store.session_user("hash-1", T0 + 999, IDLE).await.unwrap(),
        Some(user.clone())
    );
    assert_eq!(
        store.session_user("hash-1", T0 + 1000, IDLE).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(store.session_user("unknown", T0, IDLE).await.unwrap(), None);
    assert_eq!(
        store
            .delete_expired_sessions(T0 + 1000, IDLE)
            .await
            .unwrap(),
        1
    );

    store.delete_session("hash-2").await.unwrap();
    assert_eq!(
        store.session_user("hash-2", T0, IDLE).await.unwrap(),
        None,
        "signed out"
    );

    store
        .create_session("hash-3", user.id, T0, T0 + 5000)
        .await
        .unwrap();
    store
        .update_user(user.id, None, Role::Agent, true, T0 + 1)
        .await
        .unwrap();
    assert_eq!(
        store.session_user("hash-3", T0 + 2, IDLE).await.unwrap(),
        None,
        "disabled"
    );
    // Enabling the user again does not bring the ended session back.
    store
        .update_user(user.id, None, Role::Agent, false, T0 + 3)
        .await
        .unwrap();
    assert_eq!(
        store.session_user("hash-3", T0 + 4, IDLE).await.unwrap(),
        None
    );
}

async fn a_password_change_ends_the_users_sessions(db: &TestDb) {
    let store = &db.store;
    let user = store
        .create_user("agent@example.org", None, Role::Agent, HASH, T0)
        .await
        .unwrap();
    store
        .create_session("s", user.id, T0, T0 + 5000)
        .await
        .unwrap();
    store
        .set_user_password(user.id, "$argon2id$new", T0 + 1)
        .await
        .unwrap();
    assert_eq!(store.session_user("s", T0 + 2, IDLE).await.unwrap(), None);
    assert_eq!(
        store.user_password_hash(user.id).await.unwrap().as_deref(),
        Some("$argon2id$new")
    );
    assert!(matches!(
        store.set_user_password(424242, HASH, T0).await,
        Err(StoreError::UserNotFound(424242))
    ));
}

async fn api_tokens_keep_only_their_hash_and_stop_when_revoked(db: &TestDb) {
    let store = &db.store;
    let admin = store
        .create_user("admin@example.org", None, Role::Admin, HASH, T0)
        .await
        .unwrap();
    let token = store
        .create_api_token(
            "ci",
            Role::Agent,
            "sha256-of-token",
            "pd_abcd",
            Some(admin.id),
            T0,
            None,
        )
        .await
        .unwrap();
    assert_eq!(token.role, Role::Agent);
    assert_eq!(token.last_used_at, None);
    let used = store
        .api_token_by_hash("sha256-of-token", T0 + 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(used.last_used_at, Some(T0 + 5));
    // Within a minute the use is not written again (reads stay reads).
    let again = store
        .api_token_by_hash("sha256-of-token", T0 + 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.last_used_at, Some(T0 + 5));
    let later = store
        .api_token_by_hash("sha256-of-token", T0 + 70_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(later.last_used_at, Some(T0 + 70_000));
    assert_eq!(store.api_token_by_hash("other", T0).await.unwrap(), None);

    assert!(store.revoke_api_token(token.id, T0 + 80_000).await.unwrap());
    assert!(!store.revoke_api_token(token.id, T0 + 80_001).await.unwrap());
    assert_eq!(
        store
            .api_token_by_hash("sha256-of-token", T0)
            .await
            .unwrap(),
        None
    );
    let listed = store.api_tokens().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].revoked_at, Some(T0 + 80_000));
    assert_eq!(listed[0].prefix, "pd_abcd");
}

async fn removing_a_user_keeps_their_notes(db: &TestDb) {
    let store = &db.store;
    let mailbox = common::add_mailbox(store, "support").await;
    let user = store
        .create_user("agent@example.org", Some("Agent"), Role::Agent, HASH, T0)
        .await
        .unwrap();
    let mut tx = store.begin_processing().await.unwrap();
    let person = tx.person("c@example.org", None).await.unwrap();
    let ticket = tx
        .create_ticket(mailbox.id, "Help", &person, T0)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    store
        .add_ticket_note(
            ticket.id,
            Some(user.id),
            &user.label(),
            "called them",
            T0 + 1,
        )
        .await
        .unwrap();
    store.delete_user(user.id, T0 + 2).await.unwrap();
    let events = store.ticket_events(ticket.id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].author_id, None);
    assert_eq!(events[0].author, "Agent <agent@example.org>");
    assert_eq!(events[0].body.as_deref(), Some("called them"));
}

async fn api_tokens_expire_and_never_act_beyond_their_maker(db: &TestDb) {
    let store = &db.store;
    let admin = store
        .create_user("boss@example.org", None, Role::Admin, HASH, T0)
        .await
        .unwrap();
    let live = |hash: &'static str, at: i64| async move {
        store.api_token_by_hash(hash, at).await.unwrap()
    };

    // Expiry: works until the moment, not at it.
    let expiring = store
        .create_api_token(
            "short",
            Role::Agent,
            "h-short",
            "pd_s",
            None,
            T0,
            Some(T0 + 1_000),
        )
        .await
        .unwrap();
    assert_eq!(expiring.expires_at, Some(T0 + 1_000));
    assert!(live("h-short", T0 + 999).await.is_some());
    assert_eq!(live("h-short", T0 + 1_000).await, None);

    // A demoted admin's admin token acts as an agent; promoted again, as an admin.
    store
        .create_api_token(
            "ops",
            Role::Admin,
            "h-ops",
            "pd_o",
            Some(admin.id),
            T0,
            None,
        )
        .await
        .unwrap();
    assert_eq!(live("h-ops", T0).await.unwrap().role, Role::Admin);
    store
        .update_user(admin.id, None, Role::Agent, false, T0 + 1)
        .await
        .unwrap();
    assert_eq!(live("h-ops", T0 + 2).await.unwrap().role, Role::Agent);
    store
        .update_user(admin.id, None, Role::Admin, false, T0 + 3)
        .await
        .unwrap();
    assert_eq!(live("h-ops", T0 + 4).await.unwrap().role, Role::Admin);

    // A disabled maker's tokens stop working (and work again when enabled).
    store
        .update_user(admin.id, None, Role::Admin, true, T0 + 5)
        .await
        .unwrap();
    assert_eq!(live("h-ops", T0 + 6).await, None);
    store
        .update_user(admin.id, None, Role::Admin, false, T0 + 7)
        .await
        .unwrap();
    assert!(live("h-ops", T0 + 8).await.is_some());

    // A removed maker's tokens are revoked with them, for good.
    assert!(store.delete_user(admin.id, T0 + 9).await.unwrap());
    assert_eq!(live("h-ops", T0 + 10).await, None);
    let listed = store.api_tokens().await.unwrap();
    let ops = listed.iter().find(|t| t.name == "ops").unwrap();
    assert_eq!(ops.revoked_at, Some(T0 + 9));
    // A token without a maker (made by the CLI) is untouched.
    assert!(live("h-short", T0 + 500).await.is_some());
}

async fn a_session_unused_for_the_idle_timeout_ends(db: &TestDb) {
    let store = &db.store;
    let user = store
        .create_user("idle@example.org", None, Role::Agent, HASH, T0)
        .await
        .unwrap();
    let day = 24 * IDLE;
    for hash in ["busy", "idle"] {
        store
            .create_session(hash, user.id, T0, T0 + day)
            .await
            .unwrap();
    }
    // Used every 50 minutes, a session outlives the hour of idle timeout many times.
    let mut at = T0;
    for _ in 0..5 {
        at += 50 * 60_000;
        assert!(
            store
                .session_user("busy", at, IDLE)
                .await
                .unwrap()
                .is_some()
        );
    }
    // Unused for the timeout, it ends; exactly at the edge too.
    assert_eq!(
        store.session_user("idle", T0 + IDLE, IDLE).await.unwrap(),
        None
    );
    assert!(
        store
            .session_user("idle", T0 + IDLE - 1, IDLE)
            .await
            .unwrap()
            .is_some()
    );
    // Cleanup forgets the idle one, keeps the busy one.
    assert_eq!(
        store
            .delete_expired_sessions(at + IDLE / 2, IDLE)
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .session_user("busy", at + IDLE / 2, IDLE)
            .await
            .unwrap()
            .is_some()
    );
}
