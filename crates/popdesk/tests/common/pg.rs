//! A throwaway PostgreSQL database on the test server (127.0.0.1:5432, trust auth, as
//! scripts/install-test-deps leaves it; `POPDESK_TEST_PG` overrides the admin URL),
//! created with `psql` and dropped (forcing out connections) when the guard drops.

use std::process::Command;

/// The admin URL used to create and drop test databases.
pub fn admin_url() -> String {
    std::env::var("POPDESK_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

pub struct PgDatabase {
    pub url: String,
    pub name: String,
}

impl PgDatabase {
    pub fn create(tag: &str) -> PgDatabase {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let suffix = format!("{}_{nanos:x}_{seq}", std::process::id());
        let name = format!("popdesk_{tag}_{suffix}");
        sql(&format!("CREATE DATABASE {name}"));
        let admin = admin_url();
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(base, _)| base);
        PgDatabase {
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// Runs `statement` in this database.
    pub fn sql(&self, statement: &str) -> String {
        psql(&self.url, statement)
    }

    /// Runs `statement` on the admin database (ALTER DATABASE of this one, say).
    pub fn sql_admin(&self, statement: &str) -> String {
        sql(statement)
    }

    /// Ends every connection to this database, as a server restart would.
    pub fn terminate_connections(&self) {
        sql(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
            self.name
        ));
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([&admin_url(), "-qAtc"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// Runs `statement` on the admin database.
pub fn sql(statement: &str) -> String {
    psql(&admin_url(), statement)
}

fn psql(url: &str, statement: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAtc", statement])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql {statement}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
