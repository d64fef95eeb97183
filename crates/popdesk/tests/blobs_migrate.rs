//! `popdesk blobs migrate`: raw messages move between the data folder and PostgreSQL,
//! each one checked, none lost (promise 1), and a second run finds nothing left to do.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Popdesk;
use common::pg::PgDatabase;
use store::{BlobBackend, Store, StoreOptions};
use tokio::io::AsyncWriteExt as _;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn message(i: usize) -> Vec<u8> {
    format!(
        "Subject: message {i}\r\n\r\n{}\r\n",
        "body line\r\n".repeat(i * 30_000)
    )
    .into_bytes()
}

async fn open(data: &std::path::Path, url: &str, blob_store: BlobBackend) -> Store {
    Store::open_with(data, Some(url), StoreOptions { blob_store })
        .await
        .expect("open the store")
}

#[test]
fn blobs_migrate_moves_every_raw_message_checked_and_resumes() {
    let pg = PgDatabase::create("migrate");
    let data = tempfile::tempdir().unwrap();
    let popdesk = Popdesk::new(data.path());
    let rt = runtime();
    let shas: Vec<String> = rt.block_on(async {
        let store = open(data.path(), &pg.url, BlobBackend::Files).await;
        let mut shas = Vec::new();
        for i in 0..5 {
            let mut writer = store.blobs().writer().await.unwrap();
            writer.write_all(&message(i)).await.unwrap();
            let finished = writer.finish().await.unwrap();
            shas.push(finished.sha256.clone());
            store.blobs().persist(vec![finished]).await.unwrap();
        }
        shas
    });

    let done = popdesk.run_ok(&[
        "--database-url",
        &pg.url,
        "blobs",
        "migrate",
        "--to",
        "postgres",
    ]);
    assert!(
        done.stdout.contains("moved 5 raw messages"),
        "{}",
        done.stdout
    );
    assert!(
        done.stdout.contains("blob_store = \"postgres\""),
        "{}",
        done.stdout
    );
    rt.block_on(async {
        let store = open(data.path(), &pg.url, BlobBackend::Postgres).await;
        let files = store.blob_place(BlobBackend::Files).await.unwrap();
        for (i, sha) in shas.iter().enumerate() {
            assert_eq!(store.blobs().read(sha).await.unwrap(), message(i));
            assert!(!files.contains(sha).await.unwrap());
        }
    });
    let again = popdesk.run_ok(&[
        "--database-url",
        &pg.url,
        "blobs",
        "migrate",
        "--to",
        "postgres",
    ]);
    assert!(
        again.stdout.contains("moved 0 raw messages"),
        "{}",
        again.stdout
    );

    let back = popdesk.run_ok(&[
        "--database-url",
        &pg.url,
        "--blob-store",
        "postgres",
        "blobs",
        "migrate",
        "--to",
        "files",
    ]);
    assert!(
        back.stdout.contains("moved 5 raw messages"),
        "{}",
        back.stdout
    );
    assert_eq!(pg.sql("SELECT COUNT(*) FROM blobs"), "0");
    rt.block_on(async {
        let store = open(data.path(), &pg.url, BlobBackend::Files).await;
        for (i, sha) in shas.iter().enumerate() {
            assert_eq!(store.blobs().read(sha).await.unwrap(), message(i));
        }
    });
}

#[test]
fn blobs_in_postgres_are_refused_on_sqlite_in_one_sentence() {
    let data = tempfile::tempdir().unwrap();
    let popdesk = Popdesk::new(data.path());
    for args in [
        &["blobs", "migrate", "--to", "postgres"][..],
        &["--blob-store", "postgres", "mailbox", "list"][..],
    ] {
        let done = popdesk.run(args);
        assert!(!done.status.success());
        assert!(
            done.stderr
                .contains("set database_url to a PostgreSQL database"),
            "{args:?}: {}",
            done.stderr
        );
    }
    let done = popdesk.run(&["--blob-store", "s3", "mailbox", "list"]);
    assert!(
        done.stderr.contains("blob_store must be"),
        "{}",
        done.stderr
    );
}
