//! A private PostgreSQL cluster for one test.
//!
//! The machine's own PostgreSQL (127.0.0.1:5432) is shared by every test and must never
//! be restarted, yet popdesk promises to survive a database restart mid-fetch. So a test
//! that restarts the database gets a cluster of its own: `initdb` into a temp dir under
//! /tmp, `pg_ctl start` on a free loopback port with trust authentication, its Unix
//! socket in the same dir. It can be restarted (`pg_ctl restart -m fast`, as an admin or
//! a package upgrade does it) and stopped; dropping it stops it and removes everything.
//!
//! PostgreSQL refuses to run as root, so when the test runs as root (as CI does) every
//! server command runs as the `postgres` account (`runuser -u postgres --`), which owns
//! the temp dir.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use tempfile::TempDir;

/// How long `pg_ctl` may wait for the server to start or stop.
const PG_CTL_TIMEOUT_SECS: &str = "60";
/// How often a start is retried when another process took the port between choosing it
/// and PostgreSQL binding it.
const START_ATTEMPTS: u32 = 4;
/// The account the server runs as when the test runs as root.
const ACCOUNT: &str = "postgres";

/// A running private PostgreSQL cluster on `127.0.0.1`, trust auth, superuser
/// `postgres`; stopped and deleted on drop.
pub struct PrivatePostgres {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    /// `initdb` and start a cluster on a free loopback port.
    ///
    /// # Panics
    /// If PostgreSQL's server binaries are not installed (`scripts/install-test-deps`),
    /// or `initdb` or the start fail; the message includes the server's log.
    pub fn start() -> PrivatePostgres {
        let bin = find_bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("popdesk-pg-")
            .tempdir_in("/tmp")
            .unwrap_or_else(|e| panic!("testkit: a temp dir for PostgreSQL: {e}"));
        if as_root() {
            let chown = Command::new("chown")
                .arg(format!("{ACCOUNT}:"))
                .arg(dir.path())
                .output()
                .unwrap_or_else(|e| panic!("testkit: run chown: {e}"));
            assert!(
                chown.status.success(),
                "testkit: chown the PostgreSQL dir to {ACCOUNT} (is there a `{ACCOUNT}` \
                 account? scripts/install-test-deps installs PostgreSQL): {}",
                String::from_utf8_lossy(&chown.stderr)
            );
        }
        let mut pg = PrivatePostgres { dir, bin, port: 0 };
        let initdb = pg.run_as_server(
            "initdb",
            &[
                "-D".as_ref(),
                pg.data_dir().as_os_str(),
                "--auth=trust".as_ref(),
                "--username=postgres".as_ref(),
                "--encoding=UTF8".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        assert!(
            initdb.status.success(),
            "testkit: initdb failed:\n{}{}",
            String::from_utf8_lossy(&initdb.stdout),
            String::from_utf8_lossy(&initdb.stderr)
        );
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            pg.port = free_port();
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1",
                pg.port,
                pg.dir.path().display()
            );
            let started = pg.pg_ctl(&["start", "-o", &options]);
            if started.status.success() {
                return pg;
            }
            last_failure = format!(
                "{}{}\n--- server log ---\n{}",
                String::from_utf8_lossy(&started.stdout),
                String::from_utf8_lossy(&started.stderr),
                pg.log()
            );
            if !last_failure.contains("could not bind") && !last_failure.contains("in use") {
                break;
            }
        }
        panic!("testkit: the private PostgreSQL did not start:\n{last_failure}");
    }

    /// The URL of the `postgres` database as the superuser, over TCP.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// The URL of the database `name` as the superuser, over TCP.
    pub fn url_of(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The server's loopback address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Creates the database `name` and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        self.sql(&format!("CREATE DATABASE {name}"));
        self.url_of(name)
    }

    /// Runs `statement` with `psql` on the `postgres` database; its unaligned output.
    ///
    /// # Panics
    /// If the statement fails (or the server is down).
    pub fn sql(&self, statement: &str) -> String {
        self.sql_in("postgres", statement)
    }

    /// `psql URL -v ON_ERROR_STOP=1 -qAt` on the database `name`, to add arguments to or
    /// to drive through its stdin (a session that holds a lock while the test acts).
    pub fn psql(&self, database: &str) -> Command {
        let mut command = Command::new(self.bin.join("psql"));
        command
            .arg(self.url_of(database))
            .args(["-v", "ON_ERROR_STOP=1", "-qAt"]);
        command
    }

    /// Runs `statement` with `psql` on the database `name`; its unaligned output.
    pub fn sql_in(&self, database: &str, statement: &str) -> String {
        let out = self
            .psql(database)
            .args(["-c", statement])
            .output()
            .unwrap_or_else(|e| panic!("testkit: run psql: {e}"));
        assert!(
            out.status.success(),
            "testkit: psql {statement}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `pg_ctl restart -m fast`: open connections are cut, transactions in flight roll
    /// back, the server is back when this returns. Also starts a stopped cluster.
    pub fn restart(&self) {
        let done = self.pg_ctl(&["restart", "-m", "fast"]);
        assert!(
            done.status.success(),
            "testkit: pg_ctl restart failed: {}{}\n--- server log ---\n{}",
            String::from_utf8_lossy(&done.stdout),
            String::from_utf8_lossy(&done.stderr),
            self.log()
        );
    }

    /// `pg_ctl stop -m fast`; [`restart`](Self::restart) starts it again.
    pub fn stop(&self) {
        let done = self.pg_ctl(&["stop", "-m", "fast"]);
        assert!(
            done.status.success(),
            "testkit: pg_ctl stop failed: {}{}",
            String::from_utf8_lossy(&done.stdout),
            String::from_utf8_lossy(&done.stderr)
        );
    }

    /// Whether the server accepts TCP connections right now.
    pub fn is_accepting(&self) -> bool {
        TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// `pg_ctl -D DATA -l LOG -w -t 60 ARGS...` as the server's account.
    fn pg_ctl(&self, args: &[&str]) -> Output {
        let data = self.data_dir();
        let log = self.log_path();
        let mut all: Vec<&std::ffi::OsStr> = vec![
            "-D".as_ref(),
            data.as_os_str(),
            "-l".as_ref(),
            log.as_os_str(),
            "-w".as_ref(),
            "-t".as_ref(),
            PG_CTL_TIMEOUT_SECS.as_ref(),
        ];
        all.extend(args.iter().map(|a| std::ffi::OsStr::new(*a)));
        self.run_as_server("pg_ctl", &all)
    }

    /// Runs one of the server binaries, as `postgres` when the test is root.
    fn run_as_server(&self, program: &str, args: &[&std::ffi::OsStr]) -> Output {
        let path = self.bin.join(program);
        let mut command = if as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", ACCOUNT, "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("PGDATA")
            .output()
            .unwrap_or_else(|e| panic!("testkit: run {}: {e}", path.display()))
    }
}

impl Drop for PrivatePostgres {
    /// `pg_ctl stop -m immediate`; the temp dir goes next.
    fn drop(&mut self) {
        if self.data_dir().join("postmaster.pid").exists() {
            let _ = self.pg_ctl(&["stop", "-m", "immediate"]);
        }
    }
}

fn as_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("testkit: bind a loopback port: {e}"))
}

/// The newest `/usr/lib/postgresql/VERSION/bin` with `initdb` (Debian's layout), else
/// the directory `pg_config --bindir` names.
fn find_bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        .filter(|bin| bin.join("initdb").is_file())
        .unwrap_or_else(|| {
            panic!(
                "testkit: PostgreSQL's server binaries are not installed (no \
                 /usr/lib/postgresql/*/bin/initdb); run scripts/install-test-deps"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_cluster_answers_survives_a_restart_and_is_gone_after_drop() {
        let pg = PrivatePostgres::start();
        let url = pg.create_database("kit");
        assert!(url.ends_with("/kit"));
        pg.sql_in("kit", "CREATE TABLE t (n int); INSERT INTO t VALUES (7)");
        pg.restart();
        assert_eq!(pg.sql_in("kit", "SELECT n FROM t"), "7");
        pg.stop();
        assert!(!pg.is_accepting());
        pg.restart();
        assert_eq!(pg.sql_in("kit", "SELECT n FROM t"), "7");
        let dir = pg.dir.path().to_path_buf();
        let addr = pg.addr();
        drop(pg);
        assert!(!dir.exists());
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err());
    }
}
