//! `popdesk secret rotate` underneath (promise 7: secrets stay secret): a new key, every
//! sealed secret re-sealed with it in one transaction, the old key kept until that
//! commits; a crash at any point loses no secret.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{TestDb, add_mailbox, on_both_backends};
use secrecy::{ExposeSecret, SecretString};
use sqlx::Row;
use store::{SecretBox, SecretSlot, SmtpSecretChange, StoreError};

on_both_backends!(
    rotation_reseals_every_secret_with_a_new_key_only,
    a_secret_that_cannot_be_opened_stops_the_rotation_and_changes_nothing,
    a_crash_after_the_commit_before_the_rename_loses_nothing,
    a_crash_before_the_commit_keeps_the_old_key,
);

/// Every sealed value in the database, by (mailbox id, column).
async fn sealed_values(db: &TestDb) -> Vec<(i64, &'static str, Vec<u8>)> {
    let mut conn = db.raw_connection().await;
    let rows = sqlx::query("SELECT id, secret, smtp_secret FROM mailboxes ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let mut values = Vec::new();
    for row in rows {
        let id: i64 = row.try_get("id").unwrap();
        values.push((id, "secret", row.try_get::<Vec<u8>, _>("secret").unwrap()));
        if let Some(smtp) = row.try_get::<Option<Vec<u8>>, _>("smtp_secret").unwrap() {
            values.push((id, "smtp_secret", smtp));
        }
    }
    values
}

fn slot(id: i64, column: &str) -> SecretSlot {
    match column {
        "secret" => SecretSlot::new("mailboxes.secret", id),
        _ => SecretSlot::new("mailboxes.smtp_secret", id),
    }
}

fn key_file(db: &TestDb) -> Vec<u8> {
    std::fs::read(db.data_dir().join("secret.key")).unwrap()
}

fn key_box(bytes: &[u8]) -> SecretBox {
    SecretBox::from_key(&<[u8; 32]>::try_from(bytes).unwrap())
}

/// Two mailboxes, one with an SMTP password of its own: three sealed secrets.
async fn three_secrets(db: &TestDb) -> (i64, i64) {
    let a = add_mailbox(&db.store, "support").await;
    let b = add_mailbox(&db.store, "sales").await;
    db.store
        .set_smtp_secret(
            b.id,
            SmtpSecretChange::Set(&SecretString::from("smtp of sales")),
        )
        .await
        .unwrap();
    (a.id, b.id)
}

async fn assert_all_open(store: &store::Store, a: i64, b: i64) {
    let secret = async |id| store.mailbox_secret(id).await.unwrap();
    assert_eq!(secret(a).await.expose_secret(), "password of support");
    assert_eq!(secret(b).await.expose_secret(), "password of sales");
    assert_eq!(
        store.smtp_secret(b).await.unwrap().expose_secret(),
        "smtp of sales"
    );
}

async fn rotation_reseals_every_secret_with_a_new_key_only(db: &TestDb) {
    let (a, b) = three_secrets(db).await;
    let old_key = key_file(db);
    let before = sealed_values(db).await;

    assert_eq!(db.store.rotate_key().await.unwrap(), 3);

    let new_key = key_file(db);
    assert_ne!(new_key, old_key);
    assert_eq!(new_key.len(), 32);
    let mode = std::fs::metadata(db.data_dir().join("secret.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    assert!(!db.data_dir().join("secret.key.new").exists());

    let after = sealed_values(db).await;
    assert_eq!(after.len(), 3);
    let (old_box, new_box) = (key_box(&old_key), key_box(&new_key));
    for ((id, column, sealed), (_, _, was)) in after.iter().zip(&before) {
        assert_ne!(sealed, was, "mailbox {id}'s {column} is re-sealed");
        assert!(
            new_box.open(slot(*id, column), sealed).is_ok(),
            "{id} {column}"
        );
        assert!(
            old_box.open(slot(*id, column), sealed).is_err(),
            "the old key no longer opens mailbox {id}'s {column}"
        );
    }
    // A process that opens the store now reads every secret with the new key.
    assert_all_open(&db.reopen().await, a, b).await;
}

async fn a_secret_that_cannot_be_opened_stops_the_rotation_and_changes_nothing(db: &TestDb) {
    let (a, b) = three_secrets(db).await;
    let c = add_mailbox(&db.store, "zz-broken").await;
    // Mailbox c's secret is garbage (altered behind popdesk's back).
    let mut conn = db.raw_connection().await;
    sqlx::query("UPDATE mailboxes SET secret = $1 WHERE id = $2")
        .bind(vec![2u8; 60])
        .bind(c.id)
        .execute(&mut conn)
        .await
        .unwrap();
    let old_key = key_file(db);
    let before = sealed_values(db).await;

    let err = db.store.rotate_key().await.unwrap_err();
    assert!(
        matches!(err, StoreError::SecretUndecryptable { row_id, .. } if row_id == c.id),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("the password of mailbox #{}", c.id)),
        "{err}"
    );

    assert_eq!(key_file(db), old_key, "the old key stays");
    assert!(!db.data_dir().join("secret.key.new").exists());
    assert_eq!(sealed_values(db).await, before, "no secret was re-sealed");
    assert_all_open(&db.reopen().await, a, b).await;
}

/// The re-sealing committed, then popdesk died before `secret.key.new` replaced
/// `secret.key`: the next open finds the database sealed with the pending key and
/// finishes the rename.
async fn a_crash_after_the_commit_before_the_rename_loses_nothing(db: &TestDb) {
    let (a, b) = three_secrets(db).await;
    let old_key = key_file(db);
    let new_key = [0x5au8; 32];
    let pending = db.data_dir().join("secret.key.new");
    std::fs::write(&pending, new_key).unwrap();
    std::fs::set_permissions(&pending, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        db.store
            .reseal_secrets(&SecretBox::from_key(&new_key))
            .await
            .unwrap(),
        3
    );

    let reopened = db.reopen().await;
    assert_all_open(&reopened, a, b).await;
    assert_eq!(key_file(db), new_key, "the pending key became the key");
    assert!(!pending.exists());
    for (id, column, sealed) in sealed_values(db).await {
        assert!(key_box(&old_key).open(slot(id, column), &sealed).is_err());
    }
    // And what it seals from now on opens with the key on disk.
    reopened
        .set_mailbox_secret(a, &SecretString::from("new password"), 1)
        .await
        .unwrap();
    assert_eq!(
        db.reopen()
            .await
            .mailbox_secret(a)
            .await
            .unwrap()
            .expose_secret(),
        "new password"
    );
}

/// popdesk died after writing `secret.key.new` but before the re-sealing committed: the
/// database is still sealed with the old key, which stays; the pending key goes.
async fn a_crash_before_the_commit_keeps_the_old_key(db: &TestDb) {
    let (a, b) = three_secrets(db).await;
    let old_key = key_file(db);
    let pending = db.data_dir().join("secret.key.new");
    std::fs::write(&pending, [0x5au8; 32]).unwrap();

    let reopened = db.reopen().await;
    assert_all_open(&reopened, a, b).await;
    assert_eq!(key_file(db), old_key);
    assert!(!pending.exists());
}
