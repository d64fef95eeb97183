//! Mailboxes and their secrets (promise 7: secrets stay secret).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{T0, TestDb, add_mailbox, message, on_both_backends, settings};
use secrecy::{ExposeSecret, SecretString};
use sqlx::Row;
use store::{Backend, MailboxSettings, Oversize, Policy, StartMode, Store, StoreError, TlsMode};

on_both_backends!(
    mailbox_settings_are_stored_as_given,
    mailbox_names_are_unique,
    mailboxes_are_listed_by_name,
    secrets_are_encrypted_at_rest,
    a_replaced_key_file_gives_a_clear_error,
    attention_and_first_run_are_recorded,
    removing_a_mailbox_keeps_its_mail,
);

async fn mailbox_settings_are_stored_as_given(db: &TestDb) {
    let store = &db.store;
    let given = MailboxSettings {
        name: "billing".into(),
        host: "mail.example.org".into(),
        port: 110,
        tls: TlsMode::StartTls,
        username: "billing@example.org".into(),
        auth_method: store::AuthMethod::CramMd5,
        policy: Policy::Keep {
            delete_after_days: Some(30),
        },
        start: StartMode::Now,
        batch_messages: 7,
        batch_bytes: 5_000_000_000,
        max_size: 10_000_000,
        oversize: Oversize::Download,
        ca_file: Some("/etc/popdesk/ca.pem".into()),
        trusted_certificate: Some(store::CertFingerprint::of(b"a self-signed certificate")),
        allow_insecure_auth: true,
        enabled: false,
        poll_interval_secs: 300,
        sending: Some(store::SendingSettings {
            address: "billing@example.org".into(),
            display_name: Some("Billing".into()),
            smtp_host: "smtp.example.org".into(),
            smtp_port: 465,
            smtp_tls: TlsMode::Implicit,
            smtp_auth: store::SmtpAuth::Login,
            smtp_username: Some("smtp-user".into()),
            smtp_allow_insecure_auth: false,
            acknowledge: true,
        }),
        oauth: None,
    };
    let added = store
        .add_mailbox(&given, &SecretString::from("s3cret"), T0)
        .await
        .unwrap();
    // SMTP signs in with the POP3 secret until it has its own, and again once that is
    // forgotten.
    use secrecy::ExposeSecret as _;
    let smtp = |store: &store::Store| {
        let store = store.clone();
        async move {
            store
                .smtp_secret(added.id)
                .await
                .unwrap()
                .expose_secret()
                .to_string()
        }
    };
    assert_eq!(smtp(store).await, "s3cret");
    store
        .set_smtp_secret(
            added.id,
            store::SmtpSecretChange::Set(&SecretString::from("smtp-pass")),
        )
        .await
        .unwrap();
    assert_eq!(smtp(store).await, "smtp-pass");
    assert!(store.has_own_smtp_secret(added.id).await.unwrap());
    store
        .set_smtp_secret(added.id, store::SmtpSecretChange::Clear)
        .await
        .unwrap();
    assert_eq!(smtp(store).await, "s3cret");
    assert!(added.id > 0);
    assert_eq!(added.settings, given);
    assert_eq!(
        (
            added.needs_attention.clone(),
            added.started,
            added.created_at,
            added.updated_at
        ),
        (None, false, T0, T0)
    );
    let by_name = store.mailbox("billing").await.unwrap().unwrap();
    assert_eq!(by_name, added);
    assert_eq!(
        store.mailbox_by_id(added.id).await.unwrap(),
        Some(added.clone())
    );
    assert_eq!(store.mailbox("nope").await.unwrap(), None);
    assert_eq!(store.mailbox_by_id(added.id + 1000).await.unwrap(), None);

    for policy in [
        Policy::Delete,
        Policy::Keep {
            delete_after_days: None,
        },
    ] {
        let name = format!("p-{}", policy.as_str());
        let s = MailboxSettings {
            policy,
            ..settings(&name)
        };
        store
            .add_mailbox(&s, &SecretString::from("x"), T0)
            .await
            .unwrap();
        assert_eq!(
            store.mailbox(&name).await.unwrap().unwrap().settings.policy,
            policy
        );
    }
}

async fn mailbox_names_are_unique(db: &TestDb) {
    let store = &db.store;
    add_mailbox(store, "support").await;
    let err = store
        .add_mailbox(&settings("support"), &SecretString::from("other"), T0)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::MailboxExists(name) if name == "support"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "a mailbox named \"support\" already exists; choose another name or remove the existing mailbox first"
    );
    // The first one's secret is untouched.
    let first = store.mailbox("support").await.unwrap().unwrap();
    assert_eq!(
        store
            .mailbox_secret(first.id)
            .await
            .unwrap()
            .expose_secret(),
        "password of support"
    );
}

async fn mailboxes_are_listed_by_name(db: &TestDb) {
    let store = &db.store;
    for name in ["sales", "billing", "support"] {
        add_mailbox(store, name).await;
    }
    let names: Vec<String> = store
        .mailboxes()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.settings.name)
        .collect();
    assert_eq!(names, ["billing", "sales", "support"]);
}

/// The password is nowhere in the database (row or file), the key file is private, and
/// the password comes back only through `mailbox_secret`.
async fn secrets_are_encrypted_at_rest(db: &TestDb) {
    let password = "correct horse battery staple 4711";
    let store = &db.store;
    let mailbox = store
        .add_mailbox(&settings("support"), &SecretString::from(password), T0)
        .await
        .unwrap();
    store
        .set_mailbox_secret(mailbox.id, &SecretString::from(password), T0 + 1)
        .await
        .unwrap();

    // The row as the database holds it.
    let mut conn = db.raw_connection().await;
    let row = sqlx::query("SELECT secret FROM mailboxes WHERE id = $1")
        .bind(mailbox.id)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let sealed: Vec<u8> = row.try_get("secret").unwrap();
    assert!(
        sealed.len() >= 1 + 24 + password.len() + 16,
        "{}",
        sealed.len()
    );
    assert!(!contains(&sealed, password.as_bytes()));
    // Sealing the same password twice gives different bytes (random nonce).
    assert_ne!(
        store.secret_box().seal(password),
        store.secret_box().seal(password)
    );

    // The files on disk (SQLite: database and WAL; both: nothing else in the data folder).
    if db.backend == Backend::Sqlite {
        sqlx::query("PRAGMA wal_checkpoint(FULL)")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    for entry in walk(db.data_dir()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !contains(&bytes, password.as_bytes()),
            "{} holds the password in clear",
            entry.display()
        );
    }

    // Nothing that prints a mailbox shows it.
    let listed = format!("{:?}", store.mailboxes().await.unwrap());
    assert!(!listed.contains(password));
    assert!(!format!("{store:?}").contains(password));

    let key_file = db.data_dir().join("secret.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
    assert_eq!(std::fs::read(&key_file).unwrap().len(), 32);

    assert_eq!(
        store
            .mailbox_secret(mailbox.id)
            .await
            .unwrap()
            .expose_secret(),
        password
    );
    // Another process with the same data folder reads it too (same key file).
    let other = db.reopen().await;
    assert_eq!(
        other
            .mailbox_secret(mailbox.id)
            .await
            .unwrap()
            .expose_secret(),
        password
    );
    let err = store.mailbox_secret(mailbox.id + 1000).await.unwrap_err();
    assert!(matches!(err, StoreError::MailboxNotFound(_)), "{err:?}");
}

async fn a_replaced_key_file_gives_a_clear_error(db: &TestDb) {
    let mailbox = add_mailbox(&db.store, "support").await;
    db.store.close().await;
    std::fs::write(db.data_dir().join("secret.key"), [0x42u8; 32]).unwrap();
    let reopened = db.reopen().await;
    let err = reopened.mailbox_secret(mailbox.id).await.unwrap_err();
    assert!(matches!(err, StoreError::SecretUndecryptable), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the mailbox secret cannot be decrypted with this key: was secret.key replaced?"
    );
    reopened.close().await;

    // A truncated key file is refused when the store opens, not later.
    std::fs::write(db.data_dir().join("secret.key"), [0x42u8; 5]).unwrap();
    let err = Store::open(db.data_dir(), db.url.as_deref())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::BadKeyFile(_)), "{err:?}");
    assert!(
        err.to_string().contains("does not hold a 32-byte key"),
        "{err}"
    );
}

async fn attention_and_first_run_are_recorded(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    store
        .set_attention(mailbox.id, Some("the server refused the login"), T0 + 5)
        .await
        .unwrap();
    store.mark_started(mailbox.id, T0 + 6).await.unwrap();
    let m = store.mailbox_by_id(mailbox.id).await.unwrap().unwrap();
    assert_eq!(
        m.needs_attention.as_deref(),
        Some("the server refused the login")
    );
    assert!(m.started);
    assert_eq!((m.created_at, m.updated_at), (T0, T0 + 6));
    store.set_attention(mailbox.id, None, T0 + 7).await.unwrap();
    store.set_enabled(mailbox.id, false, T0 + 8).await.unwrap();
    let m = store.mailbox_by_id(mailbox.id).await.unwrap().unwrap();
    assert_eq!(m.needs_attention, None);
    assert!(!m.settings.enabled);

    for err in [
        store.set_attention(9999, Some("x"), T0).await.unwrap_err(),
        store.mark_started(9999, T0).await.unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::MailboxNotFound(9999)), "{err:?}");
    }
}

/// Removing a mailbox takes its settings, secret, ledger, runs and lease, never the mail
/// already fetched; a new mailbox never reuses its id.
async fn removing_a_mailbox_keeps_its_mail(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    store
        .commit_batch(mailbox.id, &[message(Some("u1"), "kept")], T0)
        .await
        .unwrap();
    store.start_run(mailbox.id, T0).await.unwrap();
    let holder = store::LeaseHolder {
        host: "h".into(),
        pid: 1,
        token: "t".into(),
    };
    store
        .acquire_lease(mailbox.id, &holder, T0, 60_000)
        .await
        .unwrap();

    assert!(store.remove_mailbox("support").await.unwrap());
    assert!(!store.remove_mailbox("support").await.unwrap());
    assert_eq!(store.mailbox("support").await.unwrap(), None);
    assert!(store.ledger(mailbox.id).await.unwrap().is_empty());
    assert!(store.runs(mailbox.id, 10).await.unwrap().is_empty());
    assert!(matches!(
        store.mailbox_secret(mailbox.id).await.unwrap_err(),
        StoreError::MailboxNotFound(_)
    ));
    let raws = store.raw_messages(mailbox.id).await.unwrap();
    assert_eq!(
        raws.len(),
        1,
        "customers' mail outlives the mailbox settings"
    );

    let again = add_mailbox(store, "support").await;
    assert_ne!(again.id, mailbox.id);
    assert!(store.ledger(again.id).await.unwrap().is_empty());
    assert_eq!(
        store
            .acquire_lease(again.id, &holder, T0, 60_000)
            .await
            .unwrap(),
        store::LeaseOutcome::Acquired
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
