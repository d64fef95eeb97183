//! The content-addressed blob store (promise 1: bytes are on disk before anything else
//! happens; promise 6: messages stream to disk).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::sha256_hex;
use store::{BlobStore, StoreError};
use tokio::io::AsyncWriteExt;

async fn blob_store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let blobs = BlobStore::open(&dir.path().join("blobs")).await.unwrap();
    (dir, blobs)
}

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

#[tokio::test]
async fn content_address_is_the_sha256_of_the_bytes() {
    let (dir, blobs) = blob_store().await;
    let message = octets(1_000_003);
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
    let path = blobs.path(&sha);
    assert_eq!(
        path,
        dir.path()
            .join("blobs")
            .join(&sha[0..2])
            .join(&sha[2..4])
            .join(&sha)
    );
    assert_eq!(std::fs::read(&path).unwrap(), message);
    assert_eq!(blobs.read(&sha).await.unwrap(), message);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "customers' mail is private: {mode:o}");
    assert!(temp_files(dir.path()).is_empty());

    // The empty message is a blob too.
    let empty = blobs.writer().await.unwrap().finish().await.unwrap();
    assert_eq!(empty.sha256, sha256_hex(b""));
    blobs.persist(vec![empty]).await.unwrap();
    assert_eq!(blobs.read(&sha256_hex(b"")).await.unwrap(), b"");
}

/// The same message persisted twice (in one batch, or again after a crash before the
/// commit) leaves one intact file and no temp files.
#[tokio::test]
async fn persist_is_idempotent() {
    let (dir, blobs) = blob_store().await;
    let message = octets(70_000);
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
    assert!(temp_files(dir.path()).is_empty());
    let in_dir = std::fs::read_dir(blobs.path(&sha).parent().unwrap())
        .unwrap()
        .count();
    assert_eq!(in_dir, 1);
}

/// A message that is never persisted (the connection broke mid-RETR, the process
/// crashed) leaves no temp file behind: dropped writers clean up at once, and
/// `clean_temp` removes what crashed processes left.
#[tokio::test]
async fn temp_files_of_unfinished_messages_are_cleaned() {
    let (dir, blobs) = blob_store().await;
    let mut writer = blobs.writer().await.unwrap();
    writer.write_all(&octets(300_000)).await.unwrap();
    assert_eq!(temp_files(dir.path()).len(), 1);
    drop(writer);
    assert!(temp_files(dir.path()).is_empty());

    let mut writer = blobs.writer().await.unwrap();
    writer
        .write_all(b"finished, never persisted")
        .await
        .unwrap();
    let finished = writer.finish().await.unwrap();
    assert!(finished.temp_path().unwrap().exists());
    drop(finished);
    assert!(temp_files(dir.path()).is_empty());

    // Left by crashed processes (no such pid) and by an unknown writer; one of ours is in
    // progress and must survive.
    let tmp = dir.path().join("blobs/tmp");
    std::fs::write(tmp.join("4000000001-0-00aa.tmp"), b"crashed mid-RETR").unwrap();
    std::fs::write(tmp.join("4000000002-7-00bb.tmp"), b"crashed").unwrap();
    std::fs::write(tmp.join("garbage"), b"?").unwrap();
    let mut live = blobs.writer().await.unwrap();
    live.write_all(b"in progress").await.unwrap();
    live.flush().await.unwrap();
    assert_eq!(blobs.clean_temp().await.unwrap(), 3);
    assert_eq!(temp_files(dir.path()).len(), 1);
    let finished = live.finish().await.unwrap();
    blobs.persist(vec![finished]).await.unwrap();
    assert_eq!(
        blobs.read(&sha256_hex(b"in progress")).await.unwrap(),
        b"in progress"
    );
    assert_eq!(blobs.clean_temp().await.unwrap(), 0);
}

#[tokio::test]
async fn missing_blobs_and_bad_names_are_reported_clearly() {
    let (_dir, blobs) = blob_store().await;
    let sha = sha256_hex(b"never stored");
    let err = blobs.read(&sha).await.unwrap_err();
    assert!(matches!(err, StoreError::BlobMissing(_)), "{err:?}");
    assert!(
        err.to_string().contains("missing from the blob store"),
        "{err}"
    );
    for bad in ["", "ab", "../../../../etc/passwd", &sha.to_uppercase()] {
        let err = blobs.read(bad).await.unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidDigest(_)),
            "{bad}: {err:?}"
        );
        assert!(
            blobs
                .path(bad)
                .starts_with(blobs.path(&sha).ancestors().nth(3).unwrap())
        );
    }
}

/// ENOSPC (and EDQUOT) while writing a message surface as a StoreError that says the disk
/// is full, whether the caller holds the error from `AsyncWrite` or from `finish`.
#[tokio::test]
async fn a_write_error_from_a_full_disk_is_disk_full() {
    let (_dir, blobs) = blob_store().await;
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
