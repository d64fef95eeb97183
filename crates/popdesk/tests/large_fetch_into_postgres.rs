//! Promise 6 with raw messages in PostgreSQL: `popdesk mailbox fetch` streams a 200 MB
//! message from a real Dovecot into the database in chunks, and its peak resident memory
//! (VmHWM) stays under 64 MB. Holding the message whole, or writing it as one value,
//! would take at least its size.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::nodes::Node;
use common::pg::PgDatabase;
use common::{PASSWORD, PASSWORD_VAR, sha256_hex};
use testkit::Dovecot;

const MESSAGE_BYTES: usize = 200 * 1024 * 1024;
const RSS_LIMIT_KB: u64 = 64 * 1024;

fn vm_hwm_kb(status: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_200_mb_message_streams_into_postgres_under_64_mb_of_memory() {
    let dovecot = Dovecot::start();
    dovecot.add_user("support", PASSWORD);
    let mut message = b"From: big@example.net\r\nSubject: one huge message\r\n\
Message-ID: <huge@example.net>\r\n\r\n"
        .to_vec();
    let line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n";
    while message.len() < MESSAGE_BYTES {
        message.extend_from_slice(line);
    }
    dovecot.deliver("support", &message);
    let (size, sha256) = (message.len(), sha256_hex(&message));
    drop(message);

    let pg = PgDatabase::create("large");
    let node = Node::new(&pg.url, &[]);
    let port = dovecot.pop3_addr().port().to_string();
    let max_size = (size * 2).to_string();
    let added = node.cli(&[
        "mailbox",
        "add",
        "support",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--tls",
        "none",
        "--allow-insecure-auth",
        "--user",
        "support",
        "--password-env",
        PASSWORD_VAR,
        "--max-size",
        &max_size,
    ]);
    assert!(added.status.success(), "mailbox add: {}", added.stderr);

    let started = Instant::now();
    // The fetch alone: turning it into a ticket is the processor's job.
    let fetching = node.spawn_cli(&["mailbox", "fetch", "support", "--no-process"]);
    // VmHWM only grows: the last reading before the process exits is its peak, give or
    // take the final few milliseconds.
    let status_path = format!("/proc/{}/status", fetching.pid());
    let mut peak_kb = 0;
    while std::fs::read_to_string(&status_path)
        .map(|status| {
            peak_kb = peak_kb.max(vm_hwm_kb(&status));
            !status.contains("State:\tZ")
        })
        .unwrap_or(false)
    {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the fetch never ended"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let done = fetching.wait(Duration::from_secs(10));
    let took = started.elapsed();
    println!(
        "popdesk mailbox fetch of a {} MB message into PostgreSQL: peak RSS {} kB ({:.1} MB), {:.1?}",
        size / (1024 * 1024),
        peak_kb,
        peak_kb as f64 / 1024.0,
        took
    );
    assert!(done.status.success(), "fetch failed: {}", done.stderr);
    assert_eq!(dovecot.message_count("support"), 0);
    assert_eq!(
        pg.sql(&format!("SELECT size FROM blobs WHERE sha256 = '{sha256}'")),
        size.to_string(),
        "the message is in the database under its hash"
    );
    assert_eq!(
        pg.sql("SELECT SUM(length(data)) FROM blob_chunks"),
        size.to_string()
    );
    assert!(
        peak_kb < RSS_LIMIT_KB,
        "peak RSS {peak_kb} kB, over the {RSS_LIMIT_KB} kB budget"
    );
}
