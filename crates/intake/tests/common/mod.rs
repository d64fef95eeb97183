//! A store on either backend for the processor's tests: SQLite in a temp folder, or
//! PostgreSQL in a fresh database created for the test and dropped afterwards (also when
//! it panics).
//!
//! PostgreSQL is the real server on 127.0.0.1:5432 with trust auth (as
//! scripts/install-test-deps leaves it); `POPDESK_TEST_PG` overrides the admin URL. If it
//! cannot be reached the PostgreSQL test FAILS rather than being skipped: what SQLite
//! takes and PostgreSQL refuses (a U+0000 in text) is exactly what a suite on one backend
//! never sees.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use sqlx::{AnyConnection, Connection as _};
use store::{Backend, Store};
use tempfile::TempDir;

/// A store on one backend, with what it lives in.
pub struct TestStore {
    // Fields drop in order: the store's connections before its database.
    pub store: Store,
    pub backend: Backend,
    pub dir: TempDir,
    url: Option<String>,
    _pg: Option<PgDatabase>,
}

impl TestStore {
    pub async fn new(backend: Backend) -> TestStore {
        let dir = TempDir::new().expect("a temp folder");
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create().await),
        };
        let url = pg.as_ref().map(|pg| pg.url.clone());
        let store = Store::open(dir.path(), url.as_deref())
            .await
            .unwrap_or_else(|e| panic!("opening the {backend:?} store: {e}"));
        TestStore {
            store,
            backend,
            dir,
            url,
            _pg: pg,
        }
    }

    /// A direct connection to the test's database, for faults made behind the store's
    /// back.
    pub async fn raw_connection(&self) -> AnyConnection {
        let url = match &self.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.dir.path().join("popdesk.db").display()),
        };
        AnyConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("raw connection to {url}: {e}"))
    }
}

pub fn pg_admin_url() -> String {
    std::env::var("POPDESK_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A PostgreSQL database created for one test; dropped (forcing out connections) with
/// the guard.
pub struct PgDatabase {
    pub url: String,
    name: String,
}

impl PgDatabase {
    pub async fn create() -> PgDatabase {
        sqlx::any::install_default_drivers();
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("random bytes");
        let name = format!(
            "popdesk_intake_test_{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let admin = pg_admin_url();
        let mut conn = AnyConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {admin} ({e}). The processor's tests run on \
                 PostgreSQL too: run scripts/install-test-deps (as root) to start it, or set \
                 POPDESK_TEST_PG to an admin URL of a server where the user may create \
                 databases."
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
        // The test's runtime cannot be blocked on from here: a thread with its own does it.
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
