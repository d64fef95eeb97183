//! Promises 1 (no message is lost) and 2 (none stored twice) when PostgreSQL itself
//! restarts in the middle of a fetch, as a package upgrade or an admin's `pg_ctl restart`
//! does it: `popdesk serve` with every byte in the database (`blob_store = postgres`)
//! is fetching a few hundred messages from a real Dovecot when the cluster restarts
//! (`pg_ctl restart -m fast`: every connection cut, transactions in flight rolled back).
//! The run in flight fails as a transient error, nothing is deleted from the server that
//! the database had not committed, the pool reconnects and the scheduler carries on by
//! itself (after its first 30 s backoff): at the end every message is stored exactly once
//! and the server mailbox is empty. `/healthz` is watched throughout and what it said is
//! printed: it waits up to 5 s for the database, so a restart quicker than that is
//! answered late rather than 503 (a longer outage's 503 is in several_nodes.rs).
//!
//! A restart that falls between two statements costs nothing (the pool drops the dead
//! connections and opens new ones), so the test makes sure one is in flight: it holds a
//! lock on the ledger from a session of its own, so that the fetch's commit of its next
//! batch waits (the ledger is the fetch's alone: no other part waits instead),
//! and restarts the cluster while it waits.
//!
//! The machine's shared PostgreSQL must never be restarted, so the test runs a private
//! cluster of its own ([`testkit::PrivatePostgres`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::nodes::{Node, get};
use common::{
    Inspection, PASSWORD_VAR, Rng, SourceMail, USER, assert_nothing_lost_nothing_twice,
    assert_stored_exactly_once, dovecot_with, sha256_hex, support_mailbox,
};
use testkit::{Dovecot, PrivatePostgres};

const MESSAGES: usize = 300;
/// Stored before the restart: the fetch is well under way, far from done.
const STORED_BEFORE_RESTART: usize = 40;
const DATABASE: &str = "popdesk";

/// What the database holds for `support`, raw bytes read back through the store's own
/// blob store (in PostgreSQL).
fn inspect_database(url: &str) -> Inspection {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let data = tempfile::tempdir().expect("temp dir");
        let store = store::Store::open_with(
            data.path(),
            Some(url),
            store::StoreOptions {
                blob_store: store::BlobBackend::Postgres,
            },
        )
        .await
        .expect("open the store");
        let mailbox = store
            .mailbox(USER)
            .await
            .expect("read the mailbox")
            .expect("the mailbox exists");
        let mut inspection = Inspection::default();
        for raw in store.raw_messages(mailbox.id).await.expect("raw messages") {
            let bytes = store
                .blobs()
                .read(&raw.sha256)
                .await
                .unwrap_or_else(|e| panic!("raw message {} has no readable blob: {e}", raw.id));
            inspection
                .raw
                .push((raw.message_id, sha256_hex(&bytes), raw.sha256));
        }
        store.close().await;
        inspection
    })
}

/// (outcome, error) of every fetch run, oldest first.
fn runs(pg: &PrivatePostgres) -> Vec<(String, String, i64)> {
    pg.sql_in(
        DATABASE,
        "SELECT outcome, COALESCE(error, ''), downloaded FROM fetch_runs ORDER BY id",
    )
    .lines()
    .map(|line| {
        let mut cols = line.splitn(3, '|');
        let outcome = cols.next().unwrap_or_default().to_string();
        let error = cols.next().unwrap_or_default().to_string();
        let downloaded = cols.next().unwrap_or_default().parse().unwrap_or(0);
        (outcome, error, downloaded)
    })
    .collect()
}

fn stored(pg: &PrivatePostgres) -> usize {
    pg.sql_in(DATABASE, "SELECT COUNT(*) FROM raw_messages")
        .parse()
        .unwrap()
}

/// popdesk's statements on the ledger waiting for a lock.
fn waiting_for_the_ledger(pg: &PrivatePostgres) -> usize {
    pg.sql(&format!(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = '{DATABASE}' \
         AND wait_event_type = 'Lock' AND query ILIKE '%ledger%'"
    ))
    .parse()
    .unwrap()
}

/// A `psql` session holding `LOCK TABLE ledger IN SHARE MODE` in an open transaction:
/// reads go on, the fetch's next write to the ledger waits.
fn hold_ledger_lock(pg: &PrivatePostgres) -> Child {
    let mut session = pg
        .psql(DATABASE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start psql");
    let mut stdin = session.stdin.take().unwrap();
    stdin
        .write_all(b"BEGIN;\nLOCK TABLE ledger IN SHARE MODE;\nSELECT 'locked';\n")
        .unwrap();
    stdin.flush().unwrap();
    // Kept open: the session lasts until the restart cuts it.
    std::mem::forget(stdin);
    let mut line = String::new();
    BufReader::new(session.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked", "psql did not take the lock");
    session
}

fn add_mailbox(node: &Node, dovecot: &Dovecot) {
    let port = dovecot.pop3_addr().port().to_string();
    let done = node.cli(&[
        "mailbox",
        "add",
        USER,
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--tls",
        "none",
        "--allow-insecure-auth",
        "--user",
        USER,
        "--password-env",
        PASSWORD_VAR,
        "--poll-interval",
        "10",
    ]);
    assert!(done.status.success(), "mailbox add: {}", done.stderr);
}

/// What `/healthz` answered while it was watched.
struct HealthSeen {
    /// Each change of answer, with when it came (from the watch's start).
    changes: Vec<(Duration, Option<u16>)>,
    /// The slowest answer: how long it took, when it was asked.
    slowest: (Duration, Duration),
}

/// `/healthz` polled every 20 ms until stopped.
struct HealthWatch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<HealthSeen>,
}

impl HealthWatch {
    fn start(node: &Node, since: Instant) -> HealthWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let addr = node.addr;
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut seen = HealthSeen {
                changes: Vec::new(),
                slowest: (Duration::ZERO, Duration::ZERO),
            };
            while !stopping.load(Ordering::Relaxed) {
                let asked = since.elapsed();
                let status = get(addr, "/healthz", None).map(|(status, _)| status);
                let took = since.elapsed() - asked;
                if took > seen.slowest.0 {
                    seen.slowest = (took, asked);
                }
                if seen.changes.last().map(|c| c.1) != Some(status) {
                    seen.changes.push((asked, status));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            seen
        });
        HealthWatch { stop, thread }
    }

    fn finish(self) -> HealthSeen {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the health watcher")
    }
}

#[test]
fn a_database_restart_mid_fetch_loses_nothing_and_fetching_resumes_by_itself() {
    let began = Instant::now();
    let mut rng = Rng::from_env("a_database_restart_mid_fetch");
    let mail: Vec<SourceMail> = support_mailbox(&mut rng, MESSAGES, "restart");
    let dovecot = dovecot_with(&mail);
    let pg = PrivatePostgres::start();
    let url = pg.create_database(DATABASE);

    // After the failure the scheduler waits its first backoff (30 s), then carries on.
    let mut node = Node::new(&url, &[]);
    add_mailbox(&node, &dovecot);
    node.start();
    node.wait_healthy(Duration::from_secs(60));

    // Until the fetch is well under way.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut before = stored(&pg);
    while before < STORED_BEFORE_RESTART {
        assert!(
            Instant::now() < deadline,
            "the fetch never got going ({before} stored):\n{}",
            node.serving.as_ref().unwrap().stderr_so_far()
        );
        std::thread::sleep(Duration::from_millis(10));
        before = stored(&pg);
    }
    // A statement in flight: the fetch's next write to the ledger waits for the test's lock.
    let mut lock = hold_ledger_lock(&pg);
    let deadline = Instant::now() + Duration::from_secs(30);
    while waiting_for_the_ledger(&pg) == 0 {
        assert!(
            Instant::now() < deadline,
            "popdesk never waited for the lock ({} stored, {} on the server)",
            stored(&pg),
            dovecot.message_count(USER)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = stored(&pg);
    let on_server_before = dovecot.message_count(USER);
    assert!(
        on_server_before > 0,
        "the fetch ended before the restart; make the mailbox bigger"
    );

    let restart_at = Instant::now();
    let watch = HealthWatch::start(&node, restart_at);
    pg.restart();
    let restart_took = restart_at.elapsed();
    let _ = lock.kill();
    let _ = lock.wait();

    // Nothing deleted that was not committed: every message is in the database or still
    // on the server, right after the database came back.
    assert_nothing_lost_nothing_twice(
        &inspect_database(&url),
        &mail,
        &dovecot,
        "right after the restart",
    );

    // The run in flight failed, as a transient error; fetching carries on by itself.
    let deadline = Instant::now() + Duration::from_secs(60);
    while dovecot.message_count(USER) > 0
        || !runs(&pg).iter().any(|(outcome, _, _)| outcome == "success")
    {
        assert!(
            Instant::now() < deadline,
            "fetching did not resume after the restart ({} on the server, runs {:?}):\n{}",
            dovecot.message_count(USER),
            runs(&pg),
            node.serving.as_ref().unwrap().stderr_so_far()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let emptied_after = restart_at.elapsed();
    node.wait_healthy(Duration::from_secs(10));
    let health = watch.finish();
    let log = node.serving.as_ref().unwrap().stderr_so_far();
    node.kill();

    let runs = runs(&pg);
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for (outcome, _, _) in &runs {
        *outcomes.entry(outcome.as_str()).or_default() += 1;
    }
    let failed: Vec<&(String, String, i64)> = runs
        .iter()
        .filter(|(outcome, _, _)| outcome != "success")
        .collect();
    let final_state = inspect_database(&url);
    println!(
        "{MESSAGES} messages; {before} stored and {on_server_before} on the server when \
         PostgreSQL restarted with a commit waiting; the restart took {restart_took:.1?}; server mailbox empty \
         {emptied_after:.1?} after it"
    );
    println!(
        "{} fetch runs: {outcomes:?}; downloads per run {:?}",
        runs.len(),
        runs.iter().map(|r| r.2).collect::<Vec<_>>()
    );
    for (outcome, error, _) in &failed {
        println!("  a {outcome} run: {error}");
    }
    println!(
        "/healthz from the restart on: {}; its slowest answer took {:.2?} (asked at +{:.2?})",
        health
            .changes
            .iter()
            .map(|(at, status)| format!(
                "{} at +{at:.2?}",
                status.map_or("no answer".to_string(), |s| s.to_string())
            ))
            .collect::<Vec<_>>()
            .join(", "),
        health.slowest.0,
        health.slowest.1
    );
    println!(
        "{} messages stored, whole test {:.1?}",
        final_state.raw.len(),
        began.elapsed()
    );

    // The run in flight failed as a transient error (or, if even its failure could not
    // be recorded, was found unfinished by the next run).
    assert!(
        runs.iter()
            .any(|(outcome, _, _)| outcome == "transient" || outcome == "interrupted"),
        "no run failed at the restart: {runs:?}\n{log}"
    );
    assert!(
        !runs.iter().any(|(outcome, _, _)| outcome == "permanent"),
        "a database restart is no reason for the admin to act: {runs:?}"
    );
    // Promises 1 and 2: every message stored once, with the bytes served, server empty.
    assert_stored_exactly_once(&final_state, &mail, &dovecot, 0, "after the restart");
    // A restart quicker than the health check's 5 s wait for the database is answered
    // late rather than 503; a longer outage answers 503 (several_nodes.rs).
    if health
        .changes
        .iter()
        .any(|(_, status)| *status == Some(503))
    {
        println!("/healthz said 503 while the database was away");
    } else {
        println!(
            "/healthz never said 503: the restart was shorter than its 5 s wait for the database"
        );
    }
}
