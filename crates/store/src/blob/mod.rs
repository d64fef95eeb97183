//! The raw bytes of every message, content-addressed by sha256, behind one small
//! interface with two places to keep them:
//!
//! - [`BlobBackend::Files`] (the default): a folder in the data folder; see `files.rs`.
//! - [`BlobBackend::Postgres`]: the database itself, for several nodes without a shared
//!   disk; see `postgres.rs`.
//!
//! Either way a message streams in through a [`BlobWriter`] (hashed on the way, never
//! held whole in memory), is made durable by [`BlobStore::persist`] — before the ledger
//! row that names it commits (promise 1) — and streams out through a [`BlobReader`].
//!
//! While `popdesk blobs migrate` moves blobs from one place to the other, each blob is in
//! at least one of them at every moment (copied and committed before it is removed from
//! the first), and a store reads the other place when its own lacks a blob, so nodes
//! serving during a migration find every blob.

mod files;
mod migrate;
mod postgres;

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use migrate::{MigrationReport, migrate_blobs};
pub(crate) use postgres::PgBlobs;

use crate::StoreError;
use files::{FileBlobs, FileSink, TempPath};
use postgres::{PgContent, PgReader, PgSink};

/// Where raw messages are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum BlobBackend {
    /// A folder (`blobs`) in the data folder.
    #[default]
    Files,
    /// The PostgreSQL database: one database is then all the state there is.
    Postgres,
}

impl BlobBackend {
    /// The configuration's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            BlobBackend::Files => "files",
            BlobBackend::Postgres => "postgres",
        }
    }
}

impl std::fmt::Display for BlobBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for BlobBackend {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<BlobBackend, StoreError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "files" => Ok(BlobBackend::Files),
            "postgres" | "postgresql" => Ok(BlobBackend::Postgres),
            _ => Err(StoreError::Parse {
                what: "blob store",
                value: s.to_string(),
                expected: &["files", "postgres"],
            }),
        }
    }
}

/// One place blobs are kept.
#[derive(Clone, Debug)]
enum Place {
    Files(FileBlobs),
    Postgres(PgBlobs),
}

impl Place {
    fn backend(&self) -> BlobBackend {
        match self {
            Place::Files(_) => BlobBackend::Files,
            Place::Postgres(_) => BlobBackend::Postgres,
        }
    }

    async fn open_blob(&self, sha256: &str) -> Result<Option<BlobReader>, StoreError> {
        Ok(match self {
            Place::Files(files) => files
                .open_blob(sha256)
                .await?
                .map(|(file, size)| BlobReader {
                    size,
                    source: Source::File(file),
                }),
            Place::Postgres(pg) => pg.open_blob(sha256).await?.map(|reader| BlobReader {
                size: reader.size(),
                source: Source::Postgres(Box::new(reader)),
            }),
        })
    }

    async fn read(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Place::Files(files) => files.read(sha256).await,
            Place::Postgres(pg) => pg.read(sha256).await,
        }
    }

    fn missing(&self, sha256: &str) -> StoreError {
        match self {
            Place::Files(files) => StoreError::BlobMissing {
                what: format!("raw message file {}", files.path(sha256).display()),
                restore: "the blobs folder",
            },
            Place::Postgres(_) => StoreError::BlobMissing {
                what: format!("raw message {sha256} (blob_store = \"postgres\")"),
                restore: "the database",
            },
        }
    }
}

/// Content-addressed raw message store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BlobStore {
    /// Where new blobs go and are looked for first.
    primary: Place,
    /// Where blobs may still be during or after a migration: read when the primary lacks
    /// one, never written.
    fallback: Option<Place>,
}

impl BlobStore {
    /// A blob store in the folder `root` (created if missing), on its own.
    pub async fn open(root: &Path) -> Result<BlobStore, StoreError> {
        Ok(BlobStore {
            primary: Place::Files(FileBlobs::open(root).await?),
            fallback: None,
        })
    }

    pub(crate) async fn files(
        root: &Path,
        fallback: Option<PgBlobs>,
    ) -> Result<BlobStore, StoreError> {
        Ok(BlobStore {
            primary: Place::Files(FileBlobs::open(root).await?),
            fallback: fallback.map(Place::Postgres),
        })
    }

    pub(crate) fn postgres(blobs: PgBlobs, fallback_root: Option<&Path>) -> BlobStore {
        BlobStore {
            primary: Place::Postgres(blobs),
            fallback: fallback_root.map(|root| Place::Files(FileBlobs::existing(root))),
        }
    }

    /// This store without its fallback: one place only (for `blobs migrate`).
    pub(crate) fn alone(&self) -> BlobStore {
        BlobStore {
            primary: self.primary.clone(),
            fallback: None,
        }
    }

    /// Where new blobs go.
    pub fn backend(&self) -> BlobBackend {
        self.primary.backend()
    }

    /// A new blob to stream one message into.
    pub async fn writer(&self) -> Result<BlobWriter, StoreError> {
        let sink = match &self.primary {
            Place::Files(files) => Sink::File(files.sink().await?),
            Place::Postgres(pg) => Sink::Postgres(Box::new(pg.sink().await?)),
        };
        Ok(BlobWriter {
            sink,
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Makes finished blobs durable under their content address, once per call (one
    /// filesystem sync, or one transaction). A blob already stored keeps its copy and the
    /// new one is dropped. When this returns Ok, every blob survives a crash or power
    /// loss; only then may a ledger row name them.
    pub async fn persist(&self, blobs: Vec<FinishedBlob>) -> Result<(), StoreError> {
        match &self.primary {
            Place::Files(files) => {
                let mut batch = Vec::with_capacity(blobs.len());
                for blob in blobs {
                    match blob.held {
                        Held::File(temp) => batch.push((blob.sha256, temp)),
                        Held::Postgres(_) => return Err(StoreError::BlobElsewhere),
                    }
                }
                files.persist(batch).await
            }
            Place::Postgres(pg) => {
                let mut batch = Vec::with_capacity(blobs.len());
                for blob in blobs {
                    match blob.held {
                        Held::Postgres(content) => batch.push((blob.sha256, blob.size, content)),
                        Held::File(_) => return Err(StoreError::BlobElsewhere),
                    }
                }
                pg.persist(batch).await
            }
        }
    }

    /// Blob reads and writes for a caller already on a blocking thread (the processor
    /// parses there), without a hand-off to tokio's file threads for every file
    /// operation. `None` when new blobs do not go to files; use the async calls then.
    pub fn blocking(&self) -> Option<BlockingBlobs> {
        match &self.primary {
            Place::Files(files) => Some(BlockingBlobs {
                files: files.clone(),
            }),
            Place::Postgres(_) => None,
        }
    }

    /// The bytes of a stored blob, whole: for messages being processed or sent. Use
    /// [`BlobStore::open_blob`] to hand one out.
    pub async fn read(&self, sha256: &str) -> Result<Vec<u8>, StoreError> {
        check_digest(sha256)?;
        if let Some(bytes) = self.primary.read(sha256).await? {
            return Ok(bytes);
        }
        if let Some(fallback) = &self.fallback
            && let Some(bytes) = fallback.read(sha256).await?
        {
            return Ok(bytes);
        }
        Err(self.primary.missing(sha256))
    }

    /// A stored blob opened for streaming (a raw message may be hundreds of megabytes:
    /// [`BlobStore::read`] would hold it all in memory).
    pub async fn open_blob(&self, sha256: &str) -> Result<BlobReader, StoreError> {
        check_digest(sha256)?;
        if let Some(reader) = self.primary.open_blob(sha256).await? {
            return Ok(reader);
        }
        if let Some(fallback) = &self.fallback
            && let Some(reader) = fallback.open_blob(sha256).await?
        {
            return Ok(reader);
        }
        Err(self.primary.missing(sha256))
    }

    /// Whether a blob is stored here (in this store's own place, not its fallback).
    pub async fn contains(&self, sha256: &str) -> Result<bool, StoreError> {
        check_digest(sha256)?;
        Ok(self.primary.open_blob(sha256).await?.is_some())
    }

    /// Removes a stored blob from this store's own place; whether it was there. Only for
    /// moving blobs elsewhere: the database may refer to it.
    pub(crate) async fn remove(&self, sha256: &str) -> Result<bool, StoreError> {
        check_digest(sha256)?;
        match &self.primary {
            Place::Files(files) => files.remove(sha256).await,
            Place::Postgres(pg) => pg.remove(sha256).await,
        }
    }

    /// Every blob stored in this store's own place, in pages of digests after `after`.
    pub(crate) async fn list_after(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        match &self.primary {
            Place::Files(files) => {
                let mut all = files.list().await?;
                all.retain(|sha| sha.as_str() > after);
                all.sort_unstable();
                all.truncate(limit);
                Ok(all)
            }
            Place::Postgres(pg) => {
                pg.list_after(after, i64::try_from(limit).unwrap_or(i64::MAX))
                    .await
            }
        }
    }

    /// Where the file of this blob is, when blobs are kept as files (tests and tools look
    /// behind the store's back with it); None for blobs in PostgreSQL.
    pub fn path(&self, sha256: &str) -> Option<PathBuf> {
        match &self.primary {
            Place::Files(files) => Some(files.path(sha256)),
            Place::Postgres(_) => None,
        }
    }

    /// Removes what crashed runs left behind (temp files; unfinished contents in the
    /// database) and returns how many. A live writer's, in any process, is left alone.
    pub async fn clean_temp(&self) -> Result<u64, StoreError> {
        match &self.primary {
            Place::Files(files) => files.clean_temp().await,
            Place::Postgres(pg) => pg.clean_temp().await,
        }
    }
}

fn check_digest(sha256: &str) -> Result<(), StoreError> {
    if is_sha256_hex(sha256) {
        Ok(())
    } else {
        Err(StoreError::InvalidDigest(sha256.to_string()))
    }
}

/// The file half of a [`BlobStore`], for use on a blocking thread (see
/// [`BlobStore::blocking`]).
#[derive(Clone, Debug)]
pub struct BlockingBlobs {
    files: FileBlobs,
}

impl BlockingBlobs {
    /// The bytes of a stored blob, or `None` when it is not among the files (during a
    /// `blobs migrate` it may still be in the other place: ask [`BlobStore::read`]).
    pub fn read(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_digest(sha256)?;
        self.files.read_blocking(sha256)
    }

    /// Writes `data` as a new blob, not yet persisted, under the sha256 the caller has
    /// just computed from these same bytes (a parsed attachment carries its digest), as
    /// a [`BlobWriter`] given all of it at once would. Hashing megabytes of attachments
    /// a second time was a few percent of processing. A wrong digest would file the
    /// blob under another content's name, so debug builds check it.
    pub fn write_digested(&self, data: &[u8], sha256: String) -> Result<FinishedBlob, StoreError> {
        check_digest(&sha256)?;
        debug_assert_eq!(sha256, hex(&Sha256::digest(data)), "digest of other bytes");
        let temp = self.files.write_blocking(data)?;
        Ok(FinishedBlob {
            sha256,
            size: data.len() as u64,
            held: Held::File(temp),
        })
    }
}

/// Where a writer's octets go.
#[derive(Debug)]
enum Sink {
    File(FileSink),
    Postgres(Box<PgSink>),
}

/// Streams one message into the blob store, hashing and counting octets on the way.
///
/// Write errors come out of `AsyncWrite` as `io::Error`s that wrap a [`StoreError`], so
/// `io::Error::downcast::<StoreError>()` (or `StoreError::from`) recovers it and
/// `is_disk_full()` works on it. Dropped without [`finish`](Self::finish), what was
/// written is removed.
#[derive(Debug)]
pub struct BlobWriter {
    sink: Sink,
    hasher: Sha256,
    size: u64,
}

impl BlobWriter {
    /// Writes out what is buffered. The blob is made durable, together with the rest of
    /// its batch, by [`BlobStore::persist`].
    pub async fn finish(mut self) -> Result<FinishedBlob, StoreError> {
        let sha256 = hex(&std::mem::take(&mut self.hasher).finalize());
        let held = match self.sink {
            Sink::File(sink) => Held::File(sink.finish().await?),
            Sink::Postgres(sink) => Held::Postgres(sink.finish().await?),
        };
        Ok(FinishedBlob {
            sha256,
            size: self.size,
            held,
        })
    }

    /// Octets written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Wraps an I/O error met while writing to this blob (for callers that got a bare
    /// one) as a [`StoreError`] naming where it was going.
    pub fn wrap_error(&self, error: io::Error) -> StoreError {
        match &self.sink {
            Sink::File(sink) => sink.wrap_error(error),
            Sink::Postgres(_) => StoreError::from(error),
        }
    }
}

impl AsyncWrite for BlobWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = match &mut this.sink {
            Sink::File(sink) => Pin::new(sink).poll_write(cx, buf),
            Sink::Postgres(sink) => Pin::new(sink.as_mut()).poll_write(cx, buf),
        };
        if let Poll::Ready(Ok(n)) = written {
            // Hash exactly what the sink accepted.
            this.hasher.update(&buf[..n]);
            this.size += n as u64;
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.sink {
            Sink::File(sink) => Pin::new(sink).poll_flush(cx),
            Sink::Postgres(sink) => Pin::new(sink.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.sink {
            Sink::File(sink) => Pin::new(sink).poll_shutdown(cx),
            Sink::Postgres(sink) => Pin::new(sink.as_mut()).poll_shutdown(cx),
        }
    }
}

/// What holds a finished blob's octets until it is persisted.
#[derive(Debug)]
enum Held {
    File(TempPath),
    Postgres(PgContent),
}

/// A message written whole, with its content address, not yet persisted. Dropped
/// without being persisted, its octets are removed.
#[derive(Debug)]
pub struct FinishedBlob {
    /// sha256 of the octets, lowercase hex.
    pub sha256: String,
    /// Octets written.
    pub size: u64,
    held: Held,
}

impl FinishedBlob {
    /// The temp file holding the bytes until it is persisted (blobs kept as files).
    pub fn temp_path(&self) -> Option<&Path> {
        match &self.held {
            Held::File(temp) => temp.0.as_deref(),
            Held::Postgres(_) => None,
        }
    }
}

/// Where a reader's octets come from.
#[derive(Debug)]
enum Source {
    File(tokio::fs::File),
    Postgres(Box<PgReader>),
}

/// A stored blob, open for streaming.
#[derive(Debug)]
pub struct BlobReader {
    /// Its length in octets, for `Content-Length`.
    pub size: u64,
    source: Source,
}

impl AsyncRead for BlobReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.source {
            Source::File(file) => Pin::new(file).poll_read(cx, buf),
            Source::Postgres(reader) => Pin::new(reader.as_mut()).poll_read(cx, buf),
        }
    }
}

pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}
