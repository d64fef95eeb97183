//! Runs each repository test on both backends: SQLite in a temp folder, and PostgreSQL in
//! a fresh database created for the test and dropped afterwards (also when it panics).
//!
//! PostgreSQL is a real server (127.0.0.1:5432 with trust auth, as scripts/install-test-deps
//! leaves it); `POPDESK_TEST_PG` overrides the admin URL. If it cannot be reached, the
//! PostgreSQL half of each test FAILS, it is not skipped: a suite that quietly ran on one
//! backend would prove nothing about the other.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod ticket_fixture;

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use sqlx::{AnyConnection, Connection};
use store::{
    Backend, BlobBackend, Mailbox, MailboxSettings, NewRawMessage, RawStatus, Store, StoreOptions,
};
use tempfile::TempDir;

/// The admin URL used to create and drop test databases.
pub fn pg_admin_url() -> String {
    std::env::var("POPDESK_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A store on one backend, in its own data folder and (for PostgreSQL) its own database.
pub struct TestDb {
    pub backend: Backend,
    pub dir: TempDir,
    /// None for SQLite (the store's own file in `dir`).
    pub url: Option<String>,
    // Fields drop in order: the store's connections before its database.
    pub store: Store,
    _pg: Option<PgDatabase>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let (dir, url, pg) = fresh(backend).await;
        let store = Store::open_with(dir.path(), url.as_deref(), options(backend))
            .await
            .unwrap_or_else(|e| panic!("opening the {backend:?} store: {e}"));
        TestDb {
            backend,
            dir,
            url,
            store,
            _pg: pg,
        }
    }

    /// Another store on the same data folder and database, with its own connections: as
    /// a second popdesk process would open it.
    pub async fn reopen(&self) -> Store {
        Store::open_with(self.dir.path(), self.url.as_deref(), options(self.backend))
            .await
            .unwrap_or_else(|e| panic!("reopening the {:?} store: {e}", self.backend))
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn sqlite_file(&self) -> PathBuf {
        self.dir.path().join("popdesk.db")
    }

    /// A direct connection to the test's database, for looking behind the store's back.
    pub async fn raw_connection(&self) -> AnyConnection {
        let url = match &self.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.sqlite_file().display()),
        };
        AnyConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("raw connection to {url}: {e}"))
    }
}

/// On PostgreSQL the raw messages live in the database too: every store test runs on
/// both blob stores.
pub fn options(backend: Backend) -> StoreOptions {
    StoreOptions {
        blob_store: match backend {
            Backend::Sqlite => BlobBackend::Files,
            Backend::Postgres => BlobBackend::Postgres,
        },
    }
}

/// An empty data folder and, for PostgreSQL, an empty database (with the guard that drops
/// it): what a first start of popdesk finds.
pub async fn fresh(backend: Backend) -> (TempDir, Option<String>, Option<PgDatabase>) {
    let dir = tempfile::tempdir().expect("a temp folder");
    match backend {
        Backend::Sqlite => (dir, None, None),
        Backend::Postgres => {
            let pg = PgDatabase::create().await;
            (dir, Some(pg.url.clone()), Some(pg))
        }
    }
}

/// A PostgreSQL database created for one test, dropped (forcing out connections) when
/// this guard drops, also when the test panics.
pub struct PgDatabase {
    pub url: String,
    name: String,
}

impl PgDatabase {
    pub async fn create() -> PgDatabase {
        sqlx::any::install_default_drivers();
        let name = format!("popdesk_test_{}", random_hex(8));
        let admin = pg_admin_url();
        let mut conn = AnyConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {admin} ({e}). The store's tests run on \
                 PostgreSQL too: run scripts/install-test-deps (as root) to start it, \
                 or set POPDESK_TEST_PG to an admin URL of a server where the user \
                 may create databases."
            )
        });
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {admin}: {e}"));
        let _ = conn.close().await;
        PgDatabase {
            url: database_url(&admin, &name),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread with
        // its own runtime drops the database.
        let admin = pg_admin_url();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let mut conn = AnyConnection::connect(&admin).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await?;
                conn.close().await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

/// `admin` with its database name replaced.
fn database_url(admin: &str, database: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("random bytes");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Generates `NAME::sqlite` and `NAME::postgres` tests that run `async fn NAME(&TestDb)`.
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = crate::common::TestDb::new(store::Backend::Sqlite).await;
                    super::$name(&db).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let db = crate::common::TestDb::new(store::Backend::Postgres).await;
                    super::$name(&db).await;
                }
            }
        )+
    };
}
#[allow(unused_imports)]
pub(crate) use on_both_backends;

// ---- fixtures ----

pub const T0: i64 = 1_700_000_000_000;

pub fn settings(name: &str) -> MailboxSettings {
    MailboxSettings {
        name: name.to_string(),
        host: "pop.example.com".to_string(),
        username: format!("{name}@example.com"),
        ..MailboxSettings::default()
    }
}

pub async fn add_mailbox(store: &Store, name: &str) -> Mailbox {
    store
        .add_mailbox(
            &settings(name),
            &SecretString::from(format!("password of {name}")),
            T0,
        )
        .await
        .expect("add a mailbox")
}

/// The sha256 hex of some octets, as the blob store computes it.
pub fn sha256_hex(octets: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(octets)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A committed-message description for `body`, with a UIDL.
pub fn message(uid: Option<&str>, body: &str) -> NewRawMessage {
    NewRawMessage {
        uid: uid.map(str::to_string),
        sha256: sha256_hex(body.as_bytes()),
        size: body.len() as u64,
        server_size: Some(body.len() as u64 + 2),
        message_id: Some(format!("<{}@example.com>", sha256_hex(body.as_bytes()))),
        status: RawStatus::Stored,
    }
}
