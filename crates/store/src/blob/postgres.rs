//! Blobs in PostgreSQL: for several popdesk nodes without a shared disk, so that the
//! database is the whole state there is to back up and replicate.
//!
//! A message streams in as chunks of [`CHUNK`] octets, each its own small insert into
//! `blob_chunks` under a fresh `blob_contents` row, so a 200 MB message never sits in
//! memory and never makes one giant transaction. Only its hash, known at the end, names
//! it: persisting the batch is one transaction that adds a `blobs` row (sha256 → content)
//! per message, or drops the content when that sha256 is stored already. That commit
//! comes before the ledger's, so promise 1 holds as with files.
//!
//! Contents being written carry their writer's *owner key*, a PostgreSQL advisory lock
//! that the writing process holds on a connection of its own. A process that dies loses
//! its connection and so its lock; whoever cleans up next (`clean_temp`) takes the lock,
//! knows the owner is gone, and deletes its unfinished contents. Stored blobs have no
//! owner and are never collected; the foreign key from `blobs` makes sure of it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use sqlx::{AnyConnection, AnyPool, Connection as _, Row as _};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::StoreError;

/// Octets per stored chunk: few enough rows that a 200 MB message is 400 inserts, small
/// enough that a writer and a reader each hold about a megabyte.
pub(crate) const CHUNK: usize = 512 * 1024;

/// How often a writer makes sure its owner lock is still held (a restarted PostgreSQL
/// forgets every lock).
const OWNER_CHECK: Duration = Duration::from_secs(5);

type Pending<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;

/// Content-addressed blobs in the database.
#[derive(Clone)]
pub(crate) struct PgBlobs {
    pool: AnyPool,
    owner: Arc<tokio::sync::Mutex<Owner>>,
}

impl std::fmt::Debug for PgBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBlobs").finish_non_exhaustive()
    }
}

/// This process's owner key and the connection holding its lock.
#[derive(Default)]
struct Owner {
    key: i64,
    conn: Option<AnyConnection>,
    checked: Option<Instant>,
}

impl PgBlobs {
    pub(crate) fn new(pool: AnyPool) -> PgBlobs {
        PgBlobs {
            pool,
            owner: Arc::new(tokio::sync::Mutex::new(Owner::default())),
        }
    }

    /// This process's owner key, with its lock held (taken again under a new key when the
    /// database lost it).
    async fn owner_key(&self) -> Result<i64, StoreError> {
        let action = "hold the lock that marks raw messages being written";
        let mut owner = self.owner.lock().await;
        let fresh = owner.checked.is_some_and(|at| at.elapsed() < OWNER_CHECK);
        let key = owner.key;
        if let Some(conn) = owner.conn.as_mut() {
            if fresh {
                return Ok(key);
            }
            if conn.ping().await.is_ok() {
                owner.checked = Some(Instant::now());
                return Ok(key);
            }
            // The server restarted or the connection broke: the lock is gone, and what
            // was written under it may be collected. Carry on under a new key.
            owner.conn = None;
        }
        let key = random_key()?;
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(StoreError::db(action))?
            .detach();
        sqlx::query("SELECT 1 FROM (SELECT pg_advisory_lock($1)) AS locked")
            .bind(key)
            .execute(&mut conn)
            .await
            .map_err(StoreError::db(action))?;
        *owner = Owner {
            key,
            conn: Some(conn),
            checked: Some(Instant::now()),
        };
        Ok(key)
    }

    /// A new content to stream one message into.
    pub(crate) async fn sink(&self) -> Result<PgSink, StoreError> {
        let owner = self.owner_key().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO blob_contents (owner, started_at) VALUES ($1, $2) RETURNING id",
        )
        .bind(owner)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(StoreError::db(
            "start storing a raw message in the database",
        ))?;
        Ok(PgSink {
            content: PgContent {
                pool: self.pool.clone(),
                id,
                kept: AtomicBool::new(false),
            },
            seq: 0,
            buffer: Vec::with_capacity(CHUNK),
            in_flight: None,
        })
    }

    /// Names each finished content by its digest, in one transaction; a digest stored
    /// already keeps its content and the new one is dropped. When this returns Ok every
    /// blob is committed.
    pub(crate) async fn persist(
        &self,
        blobs: Vec<(String, u64, PgContent)>,
    ) -> Result<(), StoreError> {
        if blobs.is_empty() {
            return Ok(());
        }
        let action = "store raw messages in the database";
        let mut tx = self.pool.begin().await.map_err(StoreError::db(action))?;
        let now = now_ms();
        for (sha256, size, content) in &blobs {
            let size = i64::try_from(*size).map_err(|_| StoreError::TooLarge {
                field: "message size",
                value: *size,
            })?;
            let added = sqlx::query(
                "INSERT INTO blobs (sha256, content_id, size, stored_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(sha256.as_str())
            .bind(content.id)
            .bind(size)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?
            .rows_affected();
            let finish = if added == 1 {
                "UPDATE blob_contents SET owner = NULL WHERE id = $1"
            } else {
                "DELETE FROM blob_contents WHERE id = $1"
            };
            sqlx::query(finish)
                .bind(content.id)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
        }
        tx.commit().await.map_err(StoreError::db(action))?;
        for (_, _, content) in &blobs {
            content.kept.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Where a stored blob's chunks are and its size, or None when it is not here.
    async fn find(&self, sha256: &str) -> Result<Option<(i64, u64)>, StoreError> {
        let row = sqlx::query("SELECT content_id, size FROM blobs WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("look up a raw message in the database"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id: i64 = row
            .try_get(0)
            .map_err(StoreError::db("look up a raw message in the database"))?;
        let size: i64 = row
            .try_get(1)
            .map_err(StoreError::db("look up a raw message in the database"))?;
        Ok(Some((id, u64::try_from(size).unwrap_or(0))))
    }

    /// A stored blob opened for streaming, or None when it is not here.
    pub(crate) async fn open_blob(&self, sha256: &str) -> Result<Option<PgReader>, StoreError> {
        Ok(self.find(sha256).await?.map(|(id, size)| PgReader {
            pool: self.pool.clone(),
            content_id: id,
            sha256: sha256.to_string(),
            next_seq: 0,
            remaining: size,
            chunk: Vec::new(),
            pos: 0,
            pending: None,
        }))
    }

    /// The bytes of a stored blob, or None when it is not here.
    pub(crate) async fn read(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        use tokio::io::AsyncReadExt as _;
        let Some(mut reader) = self.open_blob(sha256).await? else {
            return Ok(None);
        };
        let mut bytes = Vec::with_capacity(usize::try_from(reader.remaining).unwrap_or(0));
        reader
            .read_to_end(&mut bytes)
            .await
            .map_err(StoreError::from)?;
        Ok(Some(bytes))
    }

    /// Removes a stored blob (after `blobs migrate` copied it elsewhere). Whether it was
    /// here.
    pub(crate) async fn remove(&self, sha256: &str) -> Result<bool, StoreError> {
        let action = "remove a raw message from the database";
        let mut tx = self.pool.begin().await.map_err(StoreError::db(action))?;
        let row = sqlx::query("DELETE FROM blobs WHERE sha256 = $1 RETURNING content_id")
            .bind(sha256)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        let Some(row) = row else {
            return Ok(false);
        };
        let id: i64 = row.try_get(0).map_err(StoreError::db(action))?;
        sqlx::query("DELETE FROM blob_contents WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(true)
    }

    /// Stored digests after `after`, in order, at most `limit`: a listing in pages.
    pub(crate) async fn list_after(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let action = "list the raw messages in the database";
        sqlx::query("SELECT sha256 FROM blobs WHERE sha256 > $1 ORDER BY sha256 LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(action))?
            .iter()
            .map(|row| row.try_get::<String, _>(0).map_err(StoreError::db(action)))
            .collect()
    }

    /// Deletes the unfinished contents of writers that are gone (their owner lock is
    /// free) and returns how many. A live writer's, this process's included, stay.
    pub(crate) async fn clean_temp(&self) -> Result<u64, StoreError> {
        let action = "clean up raw messages that crashed runs left in the database";
        let own = {
            let owner = self.owner.lock().await;
            owner.conn.as_ref().map(|_| owner.key)
        };
        let owners: Vec<i64> =
            sqlx::query("SELECT DISTINCT owner FROM blob_contents WHERE owner IS NOT NULL")
                .fetch_all(&self.pool)
                .await
                .map_err(StoreError::db(action))?
                .iter()
                .map(|row| row.try_get::<i64, _>(0).map_err(StoreError::db(action)))
                .collect::<Result<_, _>>()?;
        let mut removed = 0;
        for key in owners.into_iter().filter(|key| Some(*key) != own) {
            let mut conn = self.pool.acquire().await.map_err(StoreError::db(action))?;
            let free: bool = sqlx::query("SELECT pg_try_advisory_lock($1)")
                .bind(key)
                .fetch_one(&mut *conn)
                .await
                .and_then(|row| row.try_get(0))
                .map_err(StoreError::db(action))?;
            if !free {
                continue;
            }
            // Held now, the owner cannot be alive: a new process takes a new key.
            let deleted = sqlx::query("DELETE FROM blob_contents WHERE owner = $1")
                .bind(key)
                .execute(&mut *conn)
                .await;
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(key)
                .execute(&mut *conn)
                .await;
            if unlocked.is_err() {
                // Do not hand a connection holding a lock back to the pool.
                let _ = conn.detach().close().await;
            }
            removed += deleted.map_err(StoreError::db(action))?.rows_affected();
        }
        Ok(removed)
    }
}

/// A content being written or finished but not yet named by a `blobs` row. Dropped
/// before that, it is deleted (in the background, when a runtime is there to do it;
/// otherwise by the next `clean_temp` once this process is gone).
pub(crate) struct PgContent {
    pool: AnyPool,
    id: i64,
    kept: AtomicBool,
}

impl std::fmt::Debug for PgContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgContent")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Drop for PgContent {
    fn drop(&mut self) {
        if self.kept.load(Ordering::Relaxed) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let pool = self.pool.clone();
            let id = self.id;
            runtime.spawn(async move {
                let _ =
                    sqlx::query("DELETE FROM blob_contents WHERE id = $1 AND owner IS NOT NULL")
                        .bind(id)
                        .execute(&pool)
                        .await;
            });
        }
    }
}

/// One message streaming into the database, a chunk at a time: at most one chunk being
/// filled and one being inserted.
pub(crate) struct PgSink {
    content: PgContent,
    seq: i32,
    buffer: Vec<u8>,
    in_flight: Option<Pending<()>>,
}

impl std::fmt::Debug for PgSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSink")
            .field("content", &self.content)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl PgSink {
    /// Inserts the chunk in the buffer (in the background: polled by the next write).
    fn send_buffer(&mut self) {
        let data = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        let pool = self.content.pool.clone();
        let id = self.content.id;
        let seq = self.seq;
        self.seq += 1;
        self.in_flight = Some(Box::pin(async move {
            sqlx::query("INSERT INTO blob_chunks (content_id, seq, data) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(seq)
                .bind(data)
                .execute(&pool)
                .await
                .map_err(StoreError::db("store a raw message in the database"))?;
            Ok(())
        }));
    }

    fn poll_in_flight(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(pending) = self.in_flight.as_mut() {
            let result = std::task::ready!(pending.as_mut().poll(cx));
            self.in_flight = None;
            result.map_err(io::Error::other)?;
        }
        Poll::Ready(Ok(()))
    }

    /// Writes what is still buffered; every chunk is committed when this returns.
    pub(crate) async fn finish(mut self) -> Result<PgContent, StoreError> {
        if let Some(pending) = self.in_flight.take() {
            pending.await?;
        }
        if !self.buffer.is_empty() {
            self.send_buffer();
            if let Some(pending) = self.in_flight.take() {
                pending.await?;
            }
        }
        Ok(self.content)
    }
}

impl AsyncWrite for PgSink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        std::task::ready!(this.poll_in_flight(cx))?;
        let n = buf.len().min(CHUNK - this.buffer.len());
        this.buffer.extend_from_slice(&buf[..n]);
        if this.buffer.len() == CHUNK {
            this.send_buffer();
        }
        Poll::Ready(Ok(n))
    }

    /// Waits for the chunk being inserted; a partly filled chunk waits for more (or for
    /// [`PgSink::finish`]), so chunks stay large.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_in_flight(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_in_flight(cx)
    }
}

/// A stored blob read chunk by chunk.
pub(crate) struct PgReader {
    pool: AnyPool,
    content_id: i64,
    sha256: String,
    next_seq: i32,
    /// Octets not yet fetched.
    remaining: u64,
    chunk: Vec<u8>,
    pos: usize,
    pending: Option<Pending<Option<Vec<u8>>>>,
}

impl std::fmt::Debug for PgReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgReader")
            .field("content_id", &self.content_id)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

impl PgReader {
    /// Octets still to come: at first, the blob's size.
    pub(crate) fn size(&self) -> u64 {
        self.remaining + (self.chunk.len() - self.pos) as u64
    }
}

impl AsyncRead for PgReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.pos < this.chunk.len() {
                let n = buf.remaining().min(this.chunk.len() - this.pos);
                buf.put_slice(&this.chunk[this.pos..this.pos + n]);
                this.pos += n;
                if this.pos == this.chunk.len() {
                    this.chunk = Vec::new();
                    this.pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.remaining == 0 {
                return Poll::Ready(Ok(()));
            }
            let pending = this.pending.get_or_insert_with(|| {
                let pool = this.pool.clone();
                let id = this.content_id;
                let seq = this.next_seq;
                Box::pin(async move {
                    let row = sqlx::query(
                        "SELECT data FROM blob_chunks WHERE content_id = $1 AND seq = $2",
                    )
                    .bind(id)
                    .bind(seq)
                    .fetch_optional(&pool)
                    .await
                    .map_err(StoreError::db("read a raw message from the database"))?;
                    row.map(|row| row.try_get::<Vec<u8>, _>(0))
                        .transpose()
                        .map_err(StoreError::db("read a raw message from the database"))
                })
            });
            let fetched = std::task::ready!(pending.as_mut().poll(cx));
            this.pending = None;
            match fetched {
                Ok(Some(data)) if (data.len() as u64) <= this.remaining => {
                    this.remaining -= data.len() as u64;
                    this.next_seq += 1;
                    this.chunk = data;
                    this.pos = 0;
                }
                Ok(_) => {
                    return Poll::Ready(Err(io::Error::other(StoreError::BlobMissing {
                        what: format!(
                            "raw message {} (piece {} in the database)",
                            this.sha256, this.next_seq
                        ),
                        restore: "the database",
                    })));
                }
                Err(error) => return Poll::Ready(Err(io::Error::other(error))),
            }
        }
    }
}

/// A fresh positive 63-bit key, unlikely ever to be used twice.
fn random_key() -> Result<i64, StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(i64::from_le_bytes(bytes) & i64::MAX)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
