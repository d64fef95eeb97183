//! `popdesk blobs migrate`: moving every blob from one place to the other.
//!
//! Blob by blob: copy it to the target while hashing it, check the hash against its name,
//! make it durable there (a filesystem sync, or a commit), and only then remove it from
//! the source. So a crash at any point leaves each blob whole in at least one place, a
//! second run carries on where the first stopped (a blob already in the target is
//! checked, not copied again), and serving nodes, which read the other place when their
//! own lacks a blob, find every blob throughout.

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{BlobStore, hex};
use crate::StoreError;

/// How many digests are listed at a time.
const PAGE: usize = 1000;

/// What a migration did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Blobs copied to the target and removed from the source.
    pub moved: u64,
    /// Blobs the target had already (a run before this one stopped halfway): checked,
    /// then removed from the source.
    pub already_there: u64,
    /// Octets copied.
    pub octets: u64,
}

/// Moves every blob in `from` to `to` (each used alone, without its fallback), verifying
/// each one's sha256; `progress` hears after each blob.
pub async fn migrate_blobs(
    from: &BlobStore,
    to: &BlobStore,
    mut progress: impl FnMut(&MigrationReport),
) -> Result<MigrationReport, StoreError> {
    let (from, to) = (from.alone(), to.alone());
    let mut report = MigrationReport::default();
    let mut after = String::new();
    loop {
        let page = from.list_after(&after, PAGE).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.clone();
        for sha256 in page {
            if intact_in(&to, &sha256).await? {
                report.already_there += 1;
            } else {
                report.octets += copy(&from, &to, &sha256).await?;
                report.moved += 1;
            }
            from.remove(&sha256).await?;
            progress(&report);
        }
    }
    Ok(report)
}

/// Whether `store` holds the blob and its octets hash to its name.
async fn intact_in(store: &BlobStore, sha256: &str) -> Result<bool, StoreError> {
    if !store.contains(sha256).await? {
        return Ok(false);
    }
    let mut reader = store.open_blob(sha256).await?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = match reader.read(&mut buffer).await {
            Ok(read) => read,
            // A broken copy is made again from the source.
            Err(_) => return Ok(false),
        };
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex(&hasher.finalize()) == sha256)
}

/// Copies one blob and makes it durable in `to`; its size.
async fn copy(from: &BlobStore, to: &BlobStore, sha256: &str) -> Result<u64, StoreError> {
    let mut reader = from.open_blob(sha256).await?;
    let mut writer = to.writer().await?;
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = reader.read(&mut buffer).await.map_err(StoreError::from)?;
        if read == 0 {
            break;
        }
        writer
            .write_all(&buffer[..read])
            .await
            .map_err(StoreError::from)?;
    }
    let finished = writer.finish().await?;
    if finished.sha256 != sha256 {
        return Err(StoreError::BlobCorrupt {
            sha256: sha256.to_string(),
            actual: finished.sha256,
        });
    }
    let size = finished.size;
    to.persist(vec![finished]).await?;
    Ok(size)
}
