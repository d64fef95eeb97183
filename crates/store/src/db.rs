//! Opening the store: the data folder, the database pool and its migrations.
//!
//! One code path for both databases: every query goes through sqlx's `AnyPool`, written
//! in the SQL both understand (`$n` placeholders, `ON CONFLICT`, `RETURNING`). Only the
//! schema differs, so each backend has its own migrations folder.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, AssertSqlSafe, ConnectOptions, Executor};

use crate::StoreError;
use crate::blob::{BlobBackend, BlobStore, PgBlobs};
use crate::secret::SecretBox;

/// Which database the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// The store: database, blob store and secret box, cheap to clone (shared inside).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    /// SQLite: connections whose commits reach the disk later (see
    /// [`Store::deferred_sync_pool`]); on PostgreSQL every commit uses `pool`.
    deferred_sync: Option<AnyPool>,
    /// SQLite: the write-ahead log file, synced by [`Store::sync_commits`].
    wal: Option<PathBuf>,
    backend: Backend,
    /// SQLite: this process's writers in turn (see [`Store::sqlite_writer`]).
    writers: Arc<tokio::sync::Mutex<()>>,
    blobs: BlobStore,
    secrets: SecretBox,
    data_dir: PathBuf,
}

/// Choices made when opening the store, besides where it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreOptions {
    /// Where raw messages are kept.
    pub blob_store: BlobBackend,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.backend)
            .field("blobs", &self.inner.blobs)
            .finish_non_exhaustive()
    }
}

/// Name of the SQLite file inside the data folder.
pub const SQLITE_FILE: &str = "popdesk.db";

/// How long a SQLite connection waits for another process's write lock before failing.
/// Writes are short (one batch commit), so a second popdesk process normally waits
/// milliseconds; the margin covers a slow disk under fsync load.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// SQLite allows one writer at a time anyway; a few connections let reads (the web UI,
/// the ledger join) go on beside a commit.
const SQLITE_POOL_SIZE: u32 = 4;
/// The writers whose commits may reach the disk later (the fetcher's parts and the
/// processor's batches) take turns anyway (see [`Store::sqlite_writer`]): two
/// connections are one for the writer whose turn it is and one for a turn that timed out.
const SQLITE_DEFERRED_SYNC_POOL_SIZE: u32 = 2;
const POSTGRES_POOL_SIZE: u32 = 8;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Opens (and creates, when missing) the store in `data_dir`: blobs in
    /// `data_dir/blobs`, the secret key in `data_dir/secret.key`, and with no
    /// `database_url` the SQLite database `data_dir/popdesk.db`. A `postgres://` URL
    /// selects PostgreSQL instead. Brings the schema up to date, settles a key rotation
    /// that a crash interrupted, re-seals secrets an earlier popdesk sealed without
    /// their slot, and makes the mail an earlier popdesk stored searchable.
    ///
    /// SQLite runs in WAL mode with `synchronous=FULL`: a commit is on disk (the WAL
    /// fsync'd) before it returns. The fetcher's parts and the processor's batches
    /// commit with `NORMAL` instead, on connections of their own, and the fetcher syncs
    /// the log once before it deletes anything from the server (see
    /// [`Store::sync_commits`]). Foreign keys are on,
    /// and a connection waits up to 30 s (`busy_timeout`) for another process's write
    /// instead of failing.
    pub async fn open(data_dir: &Path, database_url: Option<&str>) -> Result<Store, StoreError> {
        Store::open_with(data_dir, database_url, StoreOptions::default()).await
    }

    /// [`Store::open`] with raw messages where `options` say: `blob_store = "postgres"`
    /// keeps them in the database (refused on SQLite), and blobs left in the data folder's
    /// `blobs` folder are still read until `blobs migrate` has moved them. With the files
    /// backend on PostgreSQL, blobs in the database are read likewise.
    pub async fn open_with(
        data_dir: &Path,
        database_url: Option<&str>,
        store_options: StoreOptions,
    ) -> Result<Store, StoreError> {
        let on_postgres = database_url
            .is_some_and(|url| url.starts_with("postgres://") || url.starts_with("postgresql://"));
        if store_options.blob_store == BlobBackend::Postgres && !on_postgres {
            return Err(StoreError::BlobsNeedPostgres);
        }
        create_private_dir(data_dir).await?;
        let secrets = SecretBox::load(data_dir).await?;

        sqlx::any::install_default_drivers();
        let (backend, url) = match database_url {
            None => {
                let options = SqliteConnectOptions::new()
                    .filename(data_dir.join(SQLITE_FILE))
                    .create_if_missing(true);
                (Backend::Sqlite, options.to_url_lossy().to_string())
            }
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                (Backend::Postgres, url.to_string())
            }
            Some(url) if url.starts_with("sqlite:") => (Backend::Sqlite, url.to_string()),
            Some(_) => return Err(StoreError::UnsupportedDatabaseUrl),
        };
        let connect_error = |source| StoreError::Connect {
            backend: backend.name(),
            source,
        };
        let options: AnyConnectOptions = url.parse().map_err(connect_error)?;
        let options = options.disable_statement_logging();
        let mut sqlite_lock = None;
        let mut deferred_sync = None;
        let mut wal = None;
        let pool = match backend {
            Backend::Sqlite => {
                // Opening a new SQLite file switches it to WAL, which wants a lock that a
                // busy handler does not always wait for; opens by several processes at
                // once are serialised here, like the migrations below.
                sqlite_lock = Some(MigrationLock::take(data_dir).await?);
                // One connection first, by hand: a pool retries a failing connection until
                // its acquire timeout (30 s of silence) and then reports only "timed
                // out", hiding the cause — a full disk, typically, when SQLite cannot
                // create its -wal and -shm files.
                match sqlite_probe(&options).await {
                    Ok(()) => {}
                    Err(source) if disk_is_full(data_dir) => {
                        return Err(StoreError::io(
                            "open the database in",
                            data_dir,
                            io::Error::new(io::ErrorKind::StorageFull, source.to_string()),
                        ));
                    }
                    Err(source) => return Err(connect_error(source)),
                }
                // Opened when first used: a store that only reads never needs it.
                deferred_sync = Some(
                    AnyPoolOptions::new()
                        .max_connections(SQLITE_DEFERRED_SYNC_POOL_SIZE)
                        .after_connect(|conn, _meta| {
                            Box::pin(sqlite_settings(conn, Synchronous::Normal))
                        })
                        .connect_lazy_with(options.clone()),
                );
                wal = sqlite_wal_path(&url);
                AnyPoolOptions::new()
                    .max_connections(SQLITE_POOL_SIZE)
                    .after_connect(|conn, _meta| Box::pin(sqlite_settings(conn, Synchronous::Full)))
                    .connect_with(options)
                    .await
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(POSTGRES_POOL_SIZE)
                    .connect_with(options)
                    .await
            }
        }
        .map_err(connect_error)?;

        let migrated = match backend {
            Backend::Sqlite => {
                // sqlx serialises migrations with an advisory lock on PostgreSQL but not
                // on SQLite: two processes starting on a new data folder would both
                // create the tables, and one would fail. A file lock serialises them.
                let _lock = match sqlite_lock.take() {
                    Some(lock) => lock,
                    None => MigrationLock::take(data_dir).await?,
                };
                SQLITE_MIGRATIONS.run(&pool).await
            }
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await,
        };
        migrated.map_err(|source| StoreError::Migrate { source })?;
        let secrets = crate::sealed::settle_pending_key(&pool, backend, data_dir, secrets).await?;
        crate::sealed::upgrade_unbound(&pool, &secrets).await?;
        // Mail that arrived before search existed becomes searchable.
        crate::search::backfill(&pool, backend).await?;

        let blob_root = data_dir.join("blobs");
        let blobs = match (store_options.blob_store, backend) {
            (BlobBackend::Postgres, _) => {
                BlobStore::postgres(PgBlobs::new(pool.clone()), Some(&blob_root))
            }
            (BlobBackend::Files, Backend::Postgres) => {
                BlobStore::files(&blob_root, Some(PgBlobs::new(pool.clone()))).await?
            }
            (BlobBackend::Files, Backend::Sqlite) => BlobStore::files(&blob_root, None).await?,
        };

        Ok(Store {
            inner: Arc::new(Inner {
                pool,
                deferred_sync,
                wal,
                backend,
                writers: Arc::new(tokio::sync::Mutex::new(())),
                blobs,
                secrets,
                data_dir: data_dir.to_path_buf(),
            }),
        })
    }

    /// The blob store of one place alone, whichever this store writes to: what
    /// `blobs migrate` moves between.
    pub async fn blob_place(&self, place: BlobBackend) -> Result<BlobStore, StoreError> {
        match (place, self.inner.backend) {
            (BlobBackend::Files, _) => BlobStore::open(&self.inner.data_dir.join("blobs")).await,
            (BlobBackend::Postgres, Backend::Postgres) => Ok(BlobStore::postgres(
                PgBlobs::new(self.inner.pool.clone()),
                None,
            )),
            (BlobBackend::Postgres, Backend::Sqlite) => Err(StoreError::BlobsNeedPostgres),
        }
    }

    /// The raw message blob store.
    pub fn blobs(&self) -> &BlobStore {
        &self.inner.blobs
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The key that seals mailbox secrets.
    pub fn secret_box(&self) -> &SecretBox {
        &self.inner.secrets
    }

    /// The data folder the store was opened in.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// Closes the database connections (waits for those in use to come back). Later calls
    /// on this store or its clones fail.
    pub async fn close(&self) {
        if let Some(pool) = &self.inner.deferred_sync {
            pool.close().await;
        }
        self.inner.pool.close().await;
    }

    /// Asks the database a trivial question: is it there and answering?
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(self.pool())
            .await
            .map_err(StoreError::db("reach the database"))?;
        Ok(())
    }

    /// On SQLite, this process's turn to write, held for the whole write transaction
    /// by the fetcher's commits and the processor's batches. SQLite has one writer at a
    /// time, and a connection that finds the lock taken sleeps in its busy handler,
    /// 25 to 100 ms a try once it has waited a while: the processor, starting its next
    /// batch the moment it committed one, took the lock again before the sleeping
    /// fetcher woke, and the download stood still until processing ran out of work.
    /// Waiting here instead is first come, first served, and wakes at once. Other
    /// processes on the same file still meet the busy handler. `None` on PostgreSQL,
    /// whose row locks let writers go on side by side; `None` too after SQLite's own
    /// busy timeout, so a writer stuck in its turn makes the others fail as it did
    /// before (SQLite's busy error), not hang.
    pub(crate) async fn sqlite_writer(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.inner.backend {
            Backend::Sqlite => {
                let turn = self.inner.writers.clone().lock_owned();
                tokio::time::timeout(SQLITE_BUSY_TIMEOUT, turn).await.ok()
            }
            Backend::Postgres => None,
        }
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// Connections for writes whose loss on power failure costs only work done again:
    /// the fetcher's parts (the messages are still on the server until
    /// [`Store::sync_commits`] allows their deletion) and the processor's batches (their
    /// raw messages, committed before, are simply pending again). On SQLite their commits
    /// skip the fsync (`synchronous = NORMAL`): each part and each batch paid one while
    /// holding the write lock, which the other writers wait for. Nothing is reordered:
    /// a commit in the log is durable once any later part of the log is, so the next
    /// `FULL` commit (an agent's reply, an outbox claim before sending) or
    /// [`Store::sync_commits`] carries it to the disk, and a crash of the process alone
    /// loses nothing. On PostgreSQL the one pool.
    pub(crate) fn deferred_sync_pool(&self) -> &AnyPool {
        self.inner
            .deferred_sync
            .as_ref()
            .unwrap_or(&self.inner.pool)
    }

    /// Makes every commit so far durable, those of [`Store::deferred_sync_pool`]
    /// included: on SQLite one `fdatasync` of the write-ahead log (a checkpoint syncs
    /// the log before it copies from it and the database after, so whatever left the log
    /// is durable already). Call it before deleting from the server what the fetcher
    /// committed. On PostgreSQL every commit is durable when it returns.
    pub async fn sync_commits(&self) -> Result<(), StoreError> {
        let Some(wal) = self.inner.wal.clone() else {
            return Ok(());
        };
        let path = wal.clone();
        tokio::task::spawn_blocking(move || match std::fs::File::open(&path) {
            Ok(file) => file
                .sync_data()
                .map_err(|e| StoreError::io("sync the database log", &path, e)),
            // No log: the last connection checkpointed it into the database and removed it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("open the database log", &path, e)),
        })
        .await
        .map_err(|e| StoreError::io("sync the database log", &wal, e.into()))?
    }
}

/// `PRAGMA synchronous` of a SQLite connection.
#[derive(Debug, Clone, Copy)]
enum Synchronous {
    /// The log is fsync'd at each commit.
    Full,
    /// The log is fsync'd only at checkpoints (and by [`Store::sync_commits`]).
    Normal,
}

/// Where SQLite keeps the write-ahead log of the database at `url` (`None` for an
/// in-memory database).
fn sqlite_wal_path(url: &str) -> Option<PathBuf> {
    use std::str::FromStr as _;
    if url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url).ok()?;
    let file = options.get_filename();
    if file.as_os_str().is_empty() {
        return None;
    }
    let mut wal = file.as_os_str().to_os_string();
    wal.push("-wal");
    Some(PathBuf::from(wal))
}

/// An exclusive lock on `data_dir/.migrate.lock`, held while SQLite migrations run.
/// Released when dropped (and by the kernel if the process dies).
struct MigrationLock {
    _file: std::fs::File,
}

impl MigrationLock {
    async fn take(data_dir: &Path) -> Result<MigrationLock, StoreError> {
        let path = data_dir.join(".migrate.lock");
        tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .and_then(|file| file.lock().map(|()| file))
                .map_err(|e| StoreError::io("lock", &path, e))?;
            Ok(MigrationLock { _file: file })
        })
        .await
        .map_err(|e| StoreError::io("lock", data_dir, e.into()))?
    }
}

/// Creates the data folder readable by its owner only: it holds the secret key and
/// customers' mail.
async fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder
        .create(dir)
        .await
        .map_err(|e| StoreError::io("create the data folder", dir, e))
}

/// Every SQLite connection's settings.
async fn sqlite_settings(
    conn: &mut sqlx::AnyConnection,
    synchronous: Synchronous,
) -> Result<(), sqlx::Error> {
    // busy_timeout first: switching to WAL needs a lock that another process opening the
    // same file may hold.
    let busy = format!("PRAGMA busy_timeout = {}", SQLITE_BUSY_TIMEOUT.as_millis());
    conn.execute(AssertSqlSafe(busy)).await?;
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.execute(match synchronous {
        Synchronous::Full => "PRAGMA synchronous = FULL",
        Synchronous::Normal => "PRAGMA synchronous = NORMAL",
    })
    .await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    // Reads of the ticket list go through the OS page cache by memory map instead of a
    // read() per page, and each connection keeps 16 MiB of pages (the default is 2 MiB,
    // smaller than the tickets table and its indexes at 10,000 tickets).
    conn.execute("PRAGMA cache_size = -16384").await?;
    conn.execute("PRAGMA mmap_size = 268435456").await?;
    Ok(())
}

/// Opens one connection with the settings and closes it again, to surface the real error.
async fn sqlite_probe(options: &AnyConnectOptions) -> Result<(), sqlx::Error> {
    use sqlx::Connection as _;
    let mut conn = options.connect().await?;
    let settings = sqlite_settings(&mut conn, Synchronous::Full).await;
    let _ = conn.close().await;
    settings
}

/// Whether the filesystem holding `dir` has no room left for an unprivileged writer.
/// SQLite reports a full disk while opening as an I/O error (e.g. SQLITE_IOERR_SHMSIZE),
/// not SQLITE_FULL; the free space says what it really is.
fn disk_is_full(dir: &Path) -> bool {
    rustix::fs::statvfs(dir).is_ok_and(|stats| stats.f_bavail == 0)
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::*;

    /// The settings the durability promise rests on, as every pooled connection sees them:
    /// the main pool syncs at each commit, the pool of the fetcher's parts and the
    /// processor's batches leaves that to [`Store::sync_commits`].
    #[tokio::test]
    async fn sqlite_runs_in_wal_with_full_sync_foreign_keys_and_a_busy_timeout()
    -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::io("create", Path::new("."), e))?;
        let store = Store::open(dir.path(), None).await?;
        assert_eq!(store.backend(), Backend::Sqlite);
        let pools = [
            (store.pool(), SQLITE_POOL_SIZE, "2"), // FULL
            (
                store.deferred_sync_pool(),
                SQLITE_DEFERRED_SYNC_POOL_SIZE,
                "1",
            ), // NORMAL
        ];
        for (pool, size, synchronous) in pools {
            // All of them at once: each is a connection of its own.
            let mut connections = Vec::new();
            for _ in 0..size {
                connections.push(pool.acquire().await.map_err(StoreError::db("test"))?);
            }
            for conn in &mut connections {
                let mut pragma = async |name: &str| -> Result<String, StoreError> {
                    let sql = format!("PRAGMA {name}");
                    let row = sqlx::query(AssertSqlSafe(sql))
                        .fetch_one(&mut **conn)
                        .await
                        .map_err(StoreError::db("test"))?;
                    Ok(match row.try_get::<String, _>(0) {
                        Ok(text) => text,
                        Err(_) => row
                            .try_get::<i64, _>(0)
                            .map_err(StoreError::db("test"))?
                            .to_string(),
                    })
                };
                assert_eq!(pragma("journal_mode").await?, "wal");
                assert_eq!(pragma("synchronous").await?, synchronous);
                assert_eq!(pragma("foreign_keys").await?, "1");
                assert_eq!(pragma("busy_timeout").await?, "30000");
            }
        }
        Ok(())
    }

    /// [`Store::sync_commits`] syncs the log SQLite really writes: were its path wrong,
    /// the sync would find no file and pass, and the fetcher's parts would never be
    /// synced before their deletion.
    #[tokio::test]
    async fn the_log_that_sync_commits_syncs_is_the_one_sqlite_writes() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::io("create", Path::new("."), e))?;
        let store = Store::open(dir.path(), None).await?;
        let wal = store.inner.wal.clone();
        assert_eq!(wal, Some(dir.path().join("popdesk.db-wal")));
        sqlx::query("CREATE TABLE written_later (x INTEGER)")
            .execute(store.deferred_sync_pool())
            .await
            .map_err(StoreError::db("test"))?;
        let wal = wal.unwrap_or_default();
        let logged = std::fs::metadata(&wal).map_err(|e| StoreError::io("stat", &wal, e))?;
        assert!(
            logged.len() > 0,
            "the commit is in the log at {}",
            wal.display()
        );
        store.sync_commits().await?;
        // A database in memory has no log to sync.
        assert_eq!(sqlite_wal_path("sqlite::memory:"), None);
        Ok(())
    }
}
