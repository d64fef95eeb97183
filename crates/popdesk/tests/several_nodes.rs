//! Several nodes on one PostgreSQL: what one node changes reaches the others within
//! seconds, and a database that goes away is reported (`/healthz` 503) and survived
//! (the pool reconnects, fetching goes on) — promises 1 and 4 with nothing shared but
//! the database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::nodes::Node;
use common::pg::PgDatabase;
use common::{PASSWORD, PASSWORD_VAR, Rng, support_mailbox};
use testkit::Dovecot;

/// A mailbox on `dovecot` for `user`, in plaintext on loopback, added through `node`'s
/// command line.
fn add_mailbox(node: &Node, dovecot: &Dovecot, user: &str) {
    let port = dovecot.pop3_addr().port().to_string();
    let done = node.cli(&[
        "mailbox",
        "add",
        user,
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--tls",
        "none",
        "--allow-insecure-auth",
        "--user",
        user,
        "--password-env",
        PASSWORD_VAR,
        "--poll-interval",
        "10",
    ]);
    assert!(done.status.success(), "mailbox add: {}", done.stderr);
}

#[test]
fn a_mailbox_added_on_one_node_is_fetched_by_another_within_seconds() {
    let pg = PgDatabase::create("reload");
    let dovecot = Dovecot::start();
    dovecot.add_user("late", PASSWORD);
    let mut rng = Rng::from_env("a_mailbox_added_on_one_node_is_fetched_by_another");
    let mail = support_mailbox(&mut rng, 5, "late");
    dovecot.deliver_many("late", mail.iter().map(|m| &m.delivered));

    let mut serving = Node::new(&pg.url, &[]);
    let admin = Node::new(&pg.url, &[]);
    serving.start();
    serving.wait_healthy(Duration::from_secs(60));
    // Let the serving node's scheduler start with no mailbox at all.
    std::thread::sleep(Duration::from_secs(1));

    let added = Instant::now();
    add_mailbox(&admin, &dovecot, "late");
    let deadline = added + Duration::from_secs(30);
    while dovecot.message_count("late") > 0 {
        assert!(
            Instant::now() < deadline,
            "the other node never fetched the new mailbox"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = added.elapsed();
    println!("a mailbox added on another node was fetched after {took:.1?}");
    // The reload (3 s), the first poll's spread (up to 5 s), the fetch itself.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(pg.sql("SELECT COUNT(*) FROM raw_messages"), "5");
    serving.kill();
}

#[test]
fn a_database_that_goes_away_answers_503_and_serving_resumes_when_it_returns() {
    let pg = PgDatabase::create("outage");
    let dovecot = Dovecot::start();
    dovecot.add_user("outage", PASSWORD);
    let mut rng = Rng::from_env("a_database_that_goes_away");
    let mail = support_mailbox(&mut rng, 6, "before");
    dovecot.deliver_many("outage", mail.iter().map(|m| &m.delivered));

    let mut node = Node::new(&pg.url, &[]);
    add_mailbox(&node, &dovecot, "outage");
    node.start();
    node.wait_healthy(Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(30);
    while dovecot.message_count("outage") > 0 {
        assert!(Instant::now() < deadline, "the first fetch never happened");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The database goes away: no new connections, and every open one is cut, as a
    // restart of the server would do (without restarting the server other tests use).
    pg.sql_admin(&format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS false",
        pg.name
    ));
    pg.terminate_connections();
    let away = Instant::now();
    let more = support_mailbox(&mut rng, 4, "during");
    dovecot.deliver_many("outage", more.iter().map(|m| &m.delivered));
    while node.health() != Some(503) {
        assert!(
            away.elapsed() < Duration::from_secs(20),
            "/healthz never said 503 while the database was away (it said {:?})",
            node.health()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "/healthz answered 503 {:.1?} after the database went away",
        away.elapsed()
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        dovecot.message_count("outage"),
        4,
        "nothing deleted that was not stored"
    );

    pg.sql_admin(&format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS true",
        pg.name
    ));
    let back = Instant::now();
    node.wait_healthy(Duration::from_secs(30));
    println!(
        "/healthz answered 200 {:.1?} after the database came back",
        back.elapsed()
    );
    // Fetching carries on by itself (the next poll; the mailbox backs off at most to
    // the interval after a transient failure).
    let deadline = Instant::now() + Duration::from_secs(60);
    while dovecot.message_count("outage") > 0 {
        assert!(
            Instant::now() < deadline,
            "fetching did not resume after the database came back:\n{}",
            node.serving
                .as_ref()
                .map(|r| r.stderr_so_far())
                .unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(pg.sql("SELECT COUNT(*) FROM raw_messages"), "10");
    assert_eq!(
        pg.sql("SELECT COUNT(*) FROM (SELECT message_id FROM raw_messages GROUP BY message_id HAVING COUNT(*) > 1) twice"),
        "0"
    );
    node.kill();
}
