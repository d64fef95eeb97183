//! A real full disk: the data folder on a tiny tmpfs (needs root, as CI and the dev
//! machines run). Storage failing mid-batch must say "the disk is full", lose nothing that
//! was committed, leave nothing half-done, and work again once space is freed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{T0, add_mailbox, message};
use store::{BlobStore, Store};
use tokio::io::AsyncWriteExt;

/// A tmpfs of `size` mounted on a fresh temp folder, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// None when not root (mounting needs it): the test says so and passes.
    fn mount(size: &str) -> Option<Tmpfs> {
        if !is_root() {
            eprintln!("not root: cannot mount a tmpfs, full-disk test not run");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount -t tmpfs failed as root ({status}); the full-disk tests need it"
        );
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn is_root() -> bool {
    // /proc/self/status: "Uid:\treal\teffective\t..."
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Fills the file system with one file until ENOSPC; returns it (remove it to free space).
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 4096];
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling the tmpfs: {e}"),
        }
    }
    // Whatever fits in less than a block too.
    while file.write(&[0u8]).is_ok_and(|n| n == 1) {}
    path
}

#[tokio::test]
async fn a_full_disk_while_streaming_a_message_is_reported_as_disk_full() {
    let Some(tmpfs) = Tmpfs::mount("1m") else {
        return;
    };
    let blobs = BlobStore::open(&tmpfs.path().join("blobs")).await.unwrap();
    let mut writer = blobs.writer().await.unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut failure = None;
    for _ in 0..64 {
        if let Err(e) = writer.write_all(&chunk).await {
            failure = Some(store::StoreError::from(e));
            break;
        }
    }
    let error = match failure {
        Some(e) => {
            drop(writer); // the caller gives the message up
            e
        }
        None => writer
            .finish()
            .await
            .expect_err("4 MiB cannot fit in 1 MiB"),
    };
    eprintln!("reported: {error}");
    assert!(error.is_disk_full(), "{error:?}");
    assert!(error.to_string().starts_with("the disk is full"), "{error}");
    assert!(error.to_string().contains("free some space"), "{error}");
    // The aborted message's temp file is gone (dropped with the writer).
    let left: Vec<_> = std::fs::read_dir(tmpfs.path().join("blobs/tmp"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // With the space back, messages are stored again.
    let mut writer = blobs.writer().await.unwrap();
    writer.write_all(&chunk).await.unwrap();
    let finished = writer.finish().await.unwrap();
    let sha = finished.sha256.clone();
    blobs.persist(vec![finished]).await.unwrap();
    assert_eq!(blobs.read(&sha).await.unwrap(), chunk);
}

/// SQLite on a full disk: the batch commit fails with a disk-full error, nothing of it is
/// visible, what was committed before is intact, and after space is freed the same batch
/// commits.
#[tokio::test]
async fn a_full_disk_while_committing_is_reported_and_the_next_commit_succeeds() {
    let Some(tmpfs) = Tmpfs::mount("8m") else {
        return;
    };
    let data = tmpfs.path().join("data");
    let store = Store::open(&data, None).await.unwrap();
    let mailbox = add_mailbox(&store, "support").await;
    let before = vec![message(Some("before"), "committed before the disk filled")];
    store.commit_batch(mailbox.id, &before, T0).await.unwrap();

    let filler = fill(tmpfs.path());
    // Many rows with long Message-IDs: more pages than any slack in the WAL.
    let batch: Vec<_> = (0..400)
        .map(|i| {
            let mut m = message(Some(&format!("u{i}")), &format!("message {i}"));
            m.message_id = Some(format!("<{}-{i}@example.com>", "x".repeat(900)));
            m
        })
        .collect();
    let error = store
        .commit_batch(mailbox.id, &batch, T0 + 1)
        .await
        .expect_err("the disk is full");
    eprintln!("reported: {error}");
    assert!(error.is_disk_full(), "{error:?}");
    assert!(error.to_string().starts_with("the disk is full"), "{error}");

    std::fs::remove_file(filler).unwrap();
    assert_eq!(store.count_raw_messages(mailbox.id).await.unwrap(), 1);
    assert_eq!(store.ledger(mailbox.id).await.unwrap().len(), 1);
    let outcomes = store
        .commit_batch(mailbox.id, &batch, T0 + 2)
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 400);
    assert_eq!(store.count_raw_messages(mailbox.id).await.unwrap(), 401);
    store.close().await;
}
