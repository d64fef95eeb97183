//! Opening the store: first start, several processes at once, and SQLite's locking
//! between processes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{T0, TestDb, add_mailbox, fresh, message};
use sqlx::Connection;
use store::{Backend, Store, StoreError};

/// Two popdesk processes started at once on a new data folder (a `serve` and a
/// `mailbox add`) both come up: migrations are serialised, not raced.
async fn several_processes_can_open_a_new_store_at_once(backend: Backend) {
    let (dir, url, _pg) = fresh(backend).await;
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let path = dir.path().to_path_buf();
            let url = url.clone();
            tokio::spawn(async move { Store::open(&path, url.as_deref()).await })
        })
        .collect();
    let mut stores = Vec::new();
    for open in opens {
        stores.push(open.await.unwrap().unwrap_or_else(|e| panic!("{e}")));
    }
    let mailbox = add_mailbox(&stores[0], "support").await;
    for store in &stores {
        assert_eq!(store.backend(), backend);
        assert_eq!(
            store.mailbox_by_id(mailbox.id).await.unwrap().unwrap().id,
            mailbox.id
        );
        // Same key file for all of them.
        assert!(store.mailbox_secret(mailbox.id).await.is_ok());
    }
    for store in stores {
        store.close().await;
    }
}

mod several_processes_can_open_a_new_store_at_once {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::several_processes_can_open_a_new_store_at_once(store::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::several_processes_can_open_a_new_store_at_once(store::Backend::Postgres).await;
    }
}

/// Another process holding SQLite's write lock makes a commit wait (busy_timeout), not
/// fail: a web UI write must not break a fetch run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sqlite_process_waits_for_the_write_lock_instead_of_failing() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mailbox = add_mailbox(&db.store, "support").await;
    let mut other = db.raw_connection().await;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query("UPDATE mailboxes SET updated_at = 1")
        .execute(&mut other)
        .await
        .unwrap();
    let hold = Duration::from_millis(1500);
    let holder = tokio::spawn(async move {
        tokio::time::sleep(hold).await;
        sqlx::query("COMMIT").execute(&mut other).await.unwrap();
        other.close().await.unwrap();
    });
    let started = Instant::now();
    let outcome = db
        .store
        .commit_batch(mailbox.id, &[message(Some("u1"), "waited")], T0)
        .await;
    let waited = started.elapsed();
    holder.await.unwrap();
    assert!(outcome.is_ok(), "{outcome:?}");
    assert!(waited >= hold - Duration::from_millis(200), "{waited:?}");
    assert_eq!(db.store.count_raw_messages(mailbox.id).await.unwrap(), 1);
}

#[tokio::test]
async fn an_unsupported_database_url_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open(dir.path(), Some("mysql://localhost/popdesk"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedDatabaseUrl), "{err:?}");
    assert!(err.to_string().contains("postgres://"), "{err}");
}

/// The data folder is created when missing, private to popdesk's user.
#[tokio::test]
async fn a_missing_data_folder_is_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("deep/popdesk-data");
    let store = Store::open(&data, None).await.unwrap();
    let mode = std::fs::metadata(&data).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    assert!(data.join("popdesk.db").exists());
    assert!(data.join("blobs/tmp").is_dir());
    assert!(data.join("secret.key").exists());
    store.close().await;
}
