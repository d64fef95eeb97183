//! The content-addressed blob store, on both of its backends: files in the data folder
//! (beside SQLite) and chunks in PostgreSQL (promise 1: the bytes are durable before
//! anything else happens; promise 6: messages stream, never held whole).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::{TestDb, on_both_backends, sha256_hex};
use sqlx::Row as _;
use store::{Backend, BlobBackend, BlobStore, Store, StoreError, StoreOptions, migrate_blobs};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt};

fn temp_files(root: &Path) -> Vec<String> {
    std::fs::read_dir(root.join("blobs/tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Some octets that look like mail, `n` long.
fn octets(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| b"Received: from a.example\r\n"[i % 26])
        .collect()
}

/// Unfinished writes the store holds: temp files, or contents in the database that no
/// blob names.
async fn leftovers(db: &TestDb) -> usize {
    match db.backend {
        Backend::Sqlite => temp_files(db.data_dir()).len(),
        Backend::Postgres => {
            count(
                db,
                "SELECT COUNT(*) FROM blob_contents WHERE owner IS NOT NULL",
            )
            .await
        }
    }
}

async fn count(db: &TestDb, sql: &'static str) -> usize {
    let mut conn = db.raw_connection().await;
    let n: i64 = sqlx::query(sql).fetch_one(&mut conn).await.unwrap().get(0);
    usize::try_from(n).unwrap()
}

/// Dropped writers clean up in the background on PostgreSQL: wait for it.
async fn settles(db: &TestDb, expected: usize) {
    for _ in 0..100 {
        if leftovers(db).await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(leftovers(db).await, expected);
}

/// Reads a blob back through the streaming reader, in small reads.
async fn streamed(blobs: &BlobStore, sha: &str) -> Vec<u8> {
    let mut reader = blobs.open_blob(sha).await.unwrap();
    let size = reader.size;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 10_007];
    loop {
        let n = reader.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert_eq!(out.len() as u64, size);
    out
}

on_both_backends!(
    content_address_is_the_sha256_of_the_bytes,
    persist_is_idempotent,
    unfinished_writes_are_removed_and_a_dead_writers_are_collected,
    missing_blobs_and_bad_names_are_reported_clearly,
    blobs_move_between_stores_verified_resumable_and_readable_throughout,
);

async fn content_address_is_the_sha256_of_the_bytes(db: &TestDb) {
    let blobs = db.store.blobs();
    // Three PostgreSQL chunks and a bit: the boundaries fall inside writes.
    let message = octets(1_600_003);
    let mut writer = blobs.writer().await.unwrap();
    // Small writes and large ones, as a network stream delivers them.
    writer.write_all(&message[..1]).await.unwrap();
    for chunk in message[1..5000].chunks(7) {
        writer.write_all(chunk).await.unwrap();
    }
    writer.write_all(&message[5000..]).await.unwrap();
    assert_eq!(writer.size(), message.len() as u64);
    let finished = writer.finish().await.unwrap();
    assert_eq!(finished.sha256, sha256_hex(&message));
    assert_eq!(finished.size, message.len() as u64);
    let sha = finished.sha256.clone();

    blobs.persist(vec![finished]).await.unwrap();
    assert_eq!(blobs.read(&sha).await.unwrap(), message);
    assert_eq!(streamed(blobs, &sha).await, message);
    assert_eq!(leftovers(db).await, 0);
    match db.backend {
        Backend::Sqlite => {
            assert_eq!(blobs.backend(), BlobBackend::Files);
            let path = blobs.path(&sha).unwrap();
            assert_eq!(
                path,
                db.data_dir()
                    .join("blobs")
                    .join(&sha[0..2])
                    .join(&sha[2..4])
                    .join(&sha)
            );
            assert_eq!(std::fs::read(&path).unwrap(), message);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "customers' mail is private: {mode:o}");
        }
        Backend::Postgres => {
            assert_eq!(blobs.backend(), BlobBackend::Postgres);
            assert_eq!(blobs.path(&sha), None);
            assert_eq!(count(db, "SELECT COUNT(*) FROM blob_chunks").await, 4);
            assert!(
                !db.data_dir().join("blobs").exists(),
                "no blob folder when blobs live in the database"
            );
        }
    }

    // The empty message is a blob too.
    let empty = blobs.writer().await.unwrap().finish().await.unwrap();
    assert_eq!(empty.sha256, sha256_hex(b""));
    blobs.persist(vec![empty]).await.unwrap();
    assert_eq!(blobs.read(&sha256_hex(b"")).await.unwrap(), b"");
    assert_eq!(streamed(blobs, &sha256_hex(b"")).await, b"");
}

/// The same message persisted twice (in one batch, or again after a crash before the
/// commit) leaves one intact copy and nothing unfinished.
async fn persist_is_idempotent(db: &TestDb) {
    let blobs = db.store.blobs();
    let message = octets(700_000);
    let mut batch = Vec::new();
    for _ in 0..3 {
        let mut writer = blobs.writer().await.unwrap();
        writer.write_all(&message).await.unwrap();
        batch.push(writer.finish().await.unwrap());
    }
    let other = {
        let mut writer = blobs.writer().await.unwrap();
        writer.write_all(b"another message").await.unwrap();
        writer.finish().await.unwrap()
    };
    let sha = batch[0].sha256.clone();
    let first_two: Vec<_> = batch.drain(..2).collect();
    blobs.persist(first_two).await.unwrap();
    batch.push(other);
    blobs.persist(batch).await.unwrap();
    blobs.persist(Vec::new()).await.unwrap();

    assert_eq!(blobs.read(&sha).await.unwrap(), message);
    assert_eq!(
        blobs.read(&sha256_hex(b"another message")).await.unwrap(),
        b"another message"
    );
    assert_eq!(leftovers(db).await, 0);
    match db.backend {
        Backend::Sqlite => {
            let in_dir = std::fs::read_dir(blobs.path(&sha).unwrap().parent().unwrap())
                .unwrap()
                .count();
            assert_eq!(in_dir, 1);
        }
        Backend::Postgres => {
            assert_eq!(count(db, "SELECT COUNT(*) FROM blobs").await, 2);
            assert_eq!(count(db, "SELECT COUNT(*) FROM blob_contents").await, 2);
            // 700,000 octets: two chunks; "another message": one.
            assert_eq!(count(db, "SELECT COUNT(*) FROM blob_chunks").await, 3);
        }
    }
}

/// A message that is never persisted (the connection broke mid-RETR, the process
/// crashed) leaves nothing behind: dropped writers clean up at once, and `clean_temp`
/// removes what dead processes left — never what a live writer is writing, never a
/// stored blob.
async fn unfinished_writes_are_removed_and_a_dead_writers_are_collected(db: &TestDb) {
    let blobs = db.store.blobs();
    let mut writer = blobs.writer().await.unwrap();
    writer.write_all(&octets(1_300_000)).await.unwrap();
    writer.flush().await.unwrap();
    assert_eq!(leftovers(db).await, 1);
    drop(writer);
    settles(db, 0).await;

    let mut writer = blobs.writer().await.unwrap();
    writer
        .write_all(b"finished, never persisted")
        .await
        .unwrap();
    let finished = writer.finish().await.unwrap();
    if db.backend == Backend::Sqlite {
        assert!(finished.temp_path().unwrap().exists());
    }
    assert_eq!(leftovers(db).await, 1);
    drop(finished);
    settles(db, 0).await;

    let stored = {
        let mut writer = blobs.writer().await.unwrap();
        writer.write_all(b"stored long ago").await.unwrap();
        let finished = writer.finish().await.unwrap();
        let sha = finished.sha256.clone();
        blobs.persist(vec![finished]).await.unwrap();
        sha
    };

    // Left by processes that died mid-message.
    match db.backend {
        Backend::Sqlite => {
            let tmp = db.data_dir().join("blobs/tmp");
            std::fs::write(tmp.join("4000000001-0-00aa.tmp"), b"crashed mid-RETR").unwrap();
            std::fs::write(tmp.join("4000000002-7-00bb.tmp"), b"crashed").unwrap();
            std::fs::write(tmp.join("garbage"), b"?").unwrap();
        }
        Backend::Postgres => {
            // Another process: its own store, its own owner lock. It dies with two
            // messages half written (nothing of it runs its clean-up).
            let other = db.reopen().await;
            for _ in 0..2 {
                let mut writer = other.blobs().writer().await.unwrap();
                writer.write_all(&octets(600_000)).await.unwrap();
                writer.flush().await.unwrap();
                std::mem::forget(writer);
            }
            assert_eq!(leftovers(db).await, 2);
            // Still alive: nothing of it is collected.
            assert_eq!(blobs.clean_temp().await.unwrap(), 0);
            other.close().await;
            drop(other);
        }
    }
    let mut live = blobs.writer().await.unwrap();
    live.write_all(b"in progress").await.unwrap();
    live.flush().await.unwrap();
    let expected = match db.backend {
        Backend::Sqlite => 3,
        Backend::Postgres => 2,
    };
    // The server sees a dead process's connection go within moments.
    let mut removed = 0;
    for _ in 0..100 {
        removed += blobs.clean_temp().await.unwrap();
        if removed >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(removed, expected);
    assert_eq!(leftovers(db).await, 1, "the live writer's message stays");
    let finished = live.finish().await.unwrap();
    blobs.persist(vec![finished]).await.unwrap();
    assert_eq!(
        blobs.read(&sha256_hex(b"in progress")).await.unwrap(),
        b"in progress"
    );
    assert_eq!(blobs.read(&stored).await.unwrap(), b"stored long ago");
    assert_eq!(blobs.clean_temp().await.unwrap(), 0);
}

async fn missing_blobs_and_bad_names_are_reported_clearly(db: &TestDb) {
    let blobs = db.store.blobs();
    let sha = sha256_hex(b"never stored");
    for err in [
        blobs.read(&sha).await.unwrap_err(),
        blobs.open_blob(&sha).await.unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::BlobMissing { .. }), "{err:?}");
        assert!(
            err.to_string().contains("missing from the blob store"),
            "{err}"
        );
    }
    for bad in ["", "ab", "../../../../etc/passwd", &sha.to_uppercase()] {
        let err = blobs.read(bad).await.unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidDigest(_)),
            "{bad}: {err:?}"
        );
        if let Some(path) = blobs.path(bad) {
            assert!(path.starts_with(db.data_dir().join("blobs")));
        }
    }
}

/// `blobs migrate` moves every blob and checks each one's hash; a run that stopped
/// halfway is carried on by the next; a store serving meanwhile reads every blob from
/// wherever it is at that moment. On SQLite there is nowhere to move to: refused.
async fn blobs_move_between_stores_verified_resumable_and_readable_throughout(db: &TestDb) {
    if db.backend == Backend::Sqlite {
        let err = db
            .store
            .blob_place(BlobBackend::Postgres)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::BlobsNeedPostgres), "{err:?}");
        return;
    }
    let url = db.url.as_deref();
    let on_files = Store::open_with(
        db.data_dir(),
        url,
        StoreOptions {
            blob_store: BlobBackend::Files,
        },
    )
    .await
    .unwrap();
    let files = on_files.blob_place(BlobBackend::Files).await.unwrap();
    let database = db.store.blob_place(BlobBackend::Postgres).await.unwrap();
    let mut messages = Vec::new();
    for i in 0..7 {
        let message = octets(100_000 * i + 11);
        let mut writer = files.writer().await.unwrap();
        writer.write_all(&message).await.unwrap();
        files
            .persist(vec![writer.finish().await.unwrap()])
            .await
            .unwrap();
        messages.push((sha256_hex(&message), message));
    }
    // A run that stopped halfway: two blobs copied, one of them not yet removed.
    for (sha, message) in &messages[..2] {
        let mut writer = database.writer().await.unwrap();
        writer.write_all(message).await.unwrap();
        database
            .persist(vec![writer.finish().await.unwrap()])
            .await
            .unwrap();
        assert!(database.contains(sha).await.unwrap());
    }
    std::fs::remove_file(files.path(&messages[0].0).unwrap()).unwrap();

    // Both nodes' stores read every blob at every step.
    let readers = [db.store.blobs().clone(), on_files.blobs().clone()];
    let check_all = async |readers: &[BlobStore]| {
        for reader in readers {
            for (sha, message) in &messages {
                assert_eq!(&streamed(reader, sha).await, message);
            }
        }
    };
    check_all(&readers).await;
    let mut steps = 0;
    let report = migrate_blobs(&files, &database, |_| steps += 1)
        .await
        .unwrap();
    assert_eq!((report.moved, report.already_there), (5, 1));
    assert_eq!(steps, 6);
    assert_eq!(
        report.octets,
        messages[2..]
            .iter()
            .map(|(_, m)| m.len() as u64)
            .sum::<u64>()
    );
    check_all(&readers).await;
    for (sha, _) in &messages {
        assert!(!files.contains(sha).await.unwrap(), "moved, not copied");
        assert!(database.contains(sha).await.unwrap());
    }
    // Run again: nothing left to do.
    let again = migrate_blobs(&files, &database, |_| {}).await.unwrap();
    assert_eq!((again.moved, again.already_there), (0, 0));

    // And back, with one damaged file in the way: it is made again from the source.
    let damaged = files.path(&messages[3].0).unwrap();
    std::fs::create_dir_all(damaged.parent().unwrap()).unwrap();
    std::fs::write(&damaged, b"not what the name says").unwrap();
    let back = migrate_blobs(&database, &files, |_| {}).await.unwrap();
    assert_eq!((back.moved, back.already_there), (7, 0));
    check_all(&readers).await;
    assert_eq!(count(db, "SELECT COUNT(*) FROM blobs").await, 0);
    assert_eq!(count(db, "SELECT COUNT(*) FROM blob_chunks").await, 0);
    assert_eq!(std::fs::read(&damaged).unwrap(), messages[3].1);
}

/// `blob_store = "postgres"` on the built-in SQLite file is refused in one sentence.
#[tokio::test]
async fn blobs_in_the_database_need_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open_with(
        dir.path(),
        None,
        StoreOptions {
            blob_store: BlobBackend::Postgres,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::BlobsNeedPostgres), "{err:?}");
    assert!(
        err.to_string()
            .contains("set database_url to a PostgreSQL database"),
        "{err}"
    );
    assert_eq!(
        "postgres".parse::<BlobBackend>().unwrap(),
        BlobBackend::Postgres
    );
    assert_eq!(" Files".parse::<BlobBackend>().unwrap(), BlobBackend::Files);
    assert!("s3".parse::<BlobBackend>().is_err());
}

/// ENOSPC (and EDQUOT) while writing a message surface as a StoreError that says the disk
/// is full, whether the caller holds the error from `AsyncWrite` or from `finish`.
#[tokio::test]
async fn a_write_error_from_a_full_disk_is_disk_full() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = BlobStore::open(&dir.path().join("blobs")).await.unwrap();
    let writer = blobs.writer().await.unwrap();
    for code in [28, 122] {
        let e = writer.wrap_error(io::Error::from_raw_os_error(code));
        assert!(e.is_disk_full(), "{code}");
        assert!(
            e.to_string()
                .starts_with("the disk is full: could not write the raw message to "),
            "{e}"
        );
        // Carried through an io::Error (as AsyncWrite must) and back.
        let carried = io::Error::new(io::ErrorKind::StorageFull, e);
        assert!(StoreError::from(carried).is_disk_full());
        assert!(StoreError::from(io::Error::from_raw_os_error(code)).is_disk_full());
    }
    let other = writer.wrap_error(io::Error::from_raw_os_error(5));
    assert!(!other.is_disk_full());
}
