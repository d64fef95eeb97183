//! One message the server cannot hand out never blocks its mailbox (promise 5 for mail
//! still on the server, promise 6 for bodies without end), through `popdesk mailbox
//! fetch` and through the scheduler of `popdesk serve`.
//!
//! The server is `testkit::FaultyPop3`, a hand-written fake: no real server breaks off
//! one chosen message on demand (a cut mid-body every time, a body longer than
//! announced, a stall).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{PASSWORD, Popdesk, RUN_TIMEOUT, Security, inspect};
use testkit::{FaultyPop3, MessageFault};

const MAILBOX: &str = "h";

/// A CRLF message of about `size` octets.
fn mail(n: u32, size: usize) -> Vec<u8> {
    let mut octets = format!(
        "From: customer{n}@example.org\r\nTo: support@example.com\r\nSubject: question {n}\r\n\
         Message-ID: <set-aside-{n}@example.org>\r\n\r\n"
    )
    .into_bytes();
    let mut line = 0;
    while octets.len() < size {
        line += 1;
        octets.extend(format!("line {line:06} of question {n}, please help\r\n").into_bytes());
    }
    octets
}

/// Three messages, the second with `fault`, and popdesk with the mailbox added.
fn setup(fault: MessageFault, size: usize) -> (FaultyPop3, Popdesk, tempfile::TempDir) {
    let server = FaultyPop3::start(PASSWORD);
    server.add("u1", &mail(1, size), MessageFault::None);
    server.add("u2", &mail(2, size), fault);
    server.add("u3", &mail(3, size), MessageFault::None);
    let data = tempfile::tempdir().expect("data dir");
    let popdesk = Popdesk::new(data.path().join("data"));
    popdesk.add_mailbox(
        MAILBOX,
        Security::Plaintext {
            addr: server.addr(),
        },
        &[],
    );
    (server, popdesk, data)
}

/// Reads the store after the binary exited.
fn with_store<T>(popdesk: &Popdesk, read: impl AsyncFnOnce(&store::Store, i64) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let store = store::Store::open(popdesk.data(), None)
            .await
            .expect("open the store");
        let mailbox = store.mailbox(MAILBOX).await.unwrap().expect("the mailbox");
        let value = read(&store, mailbox.id).await;
        store.close().await;
        value
    })
}

fn set_aside(popdesk: &Popdesk) -> Vec<store::FailingMessage> {
    with_store(popdesk, async |store, id| {
        store.set_aside_messages(id).await.unwrap()
    })
}

fn failing(popdesk: &Popdesk) -> Vec<store::FailingMessage> {
    with_store(popdesk, async |store, id| {
        store.failing_messages(id).await.unwrap()
    })
}

/// Message-IDs stored for the mailbox.
fn stored(popdesk: &Popdesk) -> Vec<String> {
    let mut ids: Vec<String> = inspect(popdesk.data(), MAILBOX)
        .raw
        .into_iter()
        .filter_map(|(message_id, _, _)| message_id)
        .collect();
    ids.sort();
    ids
}

fn ids(numbers: &[u32]) -> Vec<String> {
    numbers
        .iter()
        .map(|n| format!("set-aside-{n}@example.org"))
        .collect()
}

fn fetch(popdesk: &Popdesk, env: &[(&str, &str)]) -> common::Finished {
    popdesk
        .spawn_with(&["mailbox", "fetch", MAILBOX], env)
        .wait(RUN_TIMEOUT)
}

/// Three runs against a message that breaks off the same way every time: what arrived
/// whole is stored in the first, the message is set aside in the third, the rest flows.
fn three_runs_set_it_aside(
    server: &FaultyPop3,
    popdesk: &Popdesk,
    env: &[(&str, &str)],
    kind: store::FailureKind,
) {
    let first = fetch(popdesk, env);
    assert_eq!(stored(popdesk), ids(&[1]), "run 1: {}", first.stderr);
    assert!(first.stderr.contains("message 2"), "{}", first.stderr);
    fetch(popdesk, env);
    assert_eq!(stored(popdesk), ids(&[1]));
    assert!(set_aside(popdesk).is_empty(), "not after two runs");
    let third = fetch(popdesk, env);
    assert!(third.status.success(), "{}", third.stderr);
    assert_eq!(stored(popdesk), ids(&[1, 3]));
    assert_eq!(server.uids(), ["u2"], "the server keeps only message 2");
    let aside = set_aside(popdesk);
    assert_eq!(aside.len(), 1);
    let message = &aside[0];
    assert_eq!(message.uid, "u2");
    assert_eq!(message.attempts.len(), 3);
    assert!(message.attempts.iter().all(|a| a.kind == kind), "{aside:?}");
    assert!(message.size > 0);
    assert!(
        message
            .headers
            .as_deref()
            .is_some_and(|h| h.contains("Subject: question 2")),
        "{:?}",
        message.headers
    );
    // Nothing partial of message 2 anywhere; disk use is the two messages.
    let inspection = inspect(popdesk.data(), MAILBOX);
    assert!(
        inspection.temp_files.is_empty(),
        "{:?}",
        inspection.temp_files
    );
    assert_eq!(inspection.orphan_blobs(), 0);
    // Set aside means no longer retrieved.
    let retrieved = server.retrieved("u2");
    fetch(popdesk, env);
    assert_eq!(server.retrieved("u2"), retrieved);
    assert_eq!(stored(popdesk), ids(&[1, 3]));
}

#[test]
fn a_message_cut_off_every_time_is_set_aside_and_the_rest_is_stored() {
    let (server, popdesk, _data) = setup(MessageFault::CloseMidBody, 20_000);
    three_runs_set_it_aside(&server, &popdesk, &[], store::FailureKind::Connection);
    let aside = set_aside(&popdesk);
    assert!(
        aside[0].attempts[0].error.contains("closed the connection"),
        "{aside:?}"
    );
    // The admin is told: `mailbox show` lists it with its error.
    let name = popdesk.run_ok(&["mailbox", "list", "--json"]).stdout;
    let name: serde_json::Value = serde_json::from_str(&name).expect("json");
    let name = name[0]["name"].as_str().expect("a mailbox").to_string();
    let shown = popdesk.show(&name);
    let listed = &shown["cannot_download"][0];
    assert_eq!(listed["uid"], "u2", "{shown}");
    assert_eq!(listed["set_aside"], true);
    assert!(
        listed["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("closed the connection"),
        "{shown}"
    );
    let text = popdesk.run_ok(&["mailbox", "show", &name]).stdout;
    assert!(text.contains("CANNOT DOWNLOAD: message u2"), "{text}");
}

#[test]
fn a_message_cut_off_once_is_stored_by_the_next_run_and_never_set_aside() {
    let (server, popdesk, _data) = setup(MessageFault::CloseMidBody, 20_000);
    server.fault_times("u2", Some(1));
    fetch(&popdesk, &[]);
    assert_eq!(stored(&popdesk), ids(&[1]));
    assert_eq!(failing(&popdesk).len(), 1, "charged once");
    let second = fetch(&popdesk, &[]);
    assert!(second.status.success(), "{}", second.stderr);
    assert_eq!(stored(&popdesk), ids(&[1, 2, 3]));
    assert!(server.uids().is_empty());
    assert!(failing(&popdesk).is_empty(), "no longer failing");
    assert_eq!(server.retrieved("u2"), 0, "deleted, so no longer listed");
}

#[test]
fn a_body_twice_its_announced_size_is_set_aside_with_nothing_of_it_kept() {
    let (server, popdesk, _data) = setup(MessageFault::TwiceAnnounced, 200_000);
    three_runs_set_it_aside(&server, &popdesk, &[], store::FailureKind::TooLong);
}

#[test]
fn a_body_that_stalls_mid_way_is_set_aside() {
    let (server, popdesk, _data) = setup(MessageFault::StallMidBody, 20_000);
    let env = [(intake::READ_TIMEOUT_VAR, "2")];
    three_runs_set_it_aside(&server, &popdesk, &env, store::FailureKind::Timeout);
}

#[test]
fn try_again_after_the_server_was_fixed_stores_the_message_once() {
    let (server, popdesk, _data) = setup(MessageFault::CloseMidBody, 20_000);
    for _ in 0..3 {
        fetch(&popdesk, &[]);
    }
    assert_eq!(set_aside(&popdesk).len(), 1);
    server.set_fault("u2", MessageFault::None);
    let name = popdesk.run_ok(&["mailbox", "list", "--json"]).stdout;
    let name: serde_json::Value = serde_json::from_str(&name).expect("json");
    let name = name[0]["name"].as_str().expect("a mailbox").to_string();
    // An unknown UIDL is refused in words; the set-aside one is queued.
    let unknown = popdesk.run(&["mailbox", "try-again", &name, "u9"]);
    assert_eq!(unknown.status.code(), Some(1), "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("no set-aside message"),
        "{}",
        unknown.stderr
    );
    popdesk.run_ok(&["mailbox", "try-again", &name, "u2"]);
    let retried = fetch(&popdesk, &[]);
    assert!(retried.status.success(), "{}", retried.stderr);
    assert_eq!(stored(&popdesk), ids(&[1, 2, 3]));
    assert!(server.uids().is_empty());
    assert!(failing(&popdesk).is_empty());
    fetch(&popdesk, &[]);
    assert_eq!(stored(&popdesk), ids(&[1, 2, 3]), "stored once");
}

/// The scheduler of `popdesk serve`: the runs that hit the bad message do not back the
/// mailbox off, and it is set aside within a few polls while the rest is stored.
#[test]
fn serve_sets_a_message_aside_and_keeps_polling_the_mailbox() {
    let (server, popdesk, _data) = setup(MessageFault::CloseMidBody, 20_000);
    let serving = serve_polling_every_second(&popdesk, &[]);
    wait_until(&server, &["u2"], "message 2 set aside");
    let stopped = serving.kill();
    assert!(stopped.killed() || stopped.status.success());
    assert_eq!(stored(&popdesk), ids(&[1, 3]));
    let aside = set_aside(&popdesk);
    assert_eq!(aside.len(), 1);
    assert_eq!(aside[0].uid, "u2");
    assert_eq!(aside[0].attempts.len(), 3);
}

/// `popdesk serve` on the mailbox, polling it every second (no backoff for a failing
/// message, so three runs come quickly).
fn serve_polling_every_second(popdesk: &Popdesk, env: &[(&str, &str)]) -> common::Running {
    with_store(popdesk, async |store, id| {
        let mut settings = store.mailbox_by_id(id).await.unwrap().unwrap().settings;
        settings.poll_interval_secs = 1;
        store.update_mailbox(id, &settings, None, 0).await.unwrap();
    });
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    popdesk.spawn_with(&["serve", "--listen", &listen], env)
}

/// Waits (with room for a loaded machine) until the server holds exactly these UIDLs.
fn wait_until(server: &FaultyPop3, uids: &[&str], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.uids() != uids {
        assert!(
            Instant::now() < deadline,
            "{what}: not in time; the server holds {:?}",
            server.uids()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_sets_aside_a_body_twice_its_announced_size_keeping_nothing_of_it() {
    let (server, popdesk, _data) = setup(MessageFault::TwiceAnnounced, 200_000);
    let serving = serve_polling_every_second(&popdesk, &[]);
    wait_until(&server, &["u2"], "the over-long message set aside");
    serving.kill();
    assert_eq!(
        stored(&popdesk),
        ids(&[1, 3]),
        "nothing of message 2 is stored"
    );
    let aside = set_aside(&popdesk);
    assert_eq!(aside[0].attempts[0].kind, store::FailureKind::TooLong);
}

#[test]
fn serve_sets_aside_a_body_that_stalls_mid_way() {
    let (server, popdesk, _data) = setup(MessageFault::StallMidBody, 20_000);
    let serving = serve_polling_every_second(&popdesk, &[(intake::READ_TIMEOUT_VAR, "2")]);
    wait_until(&server, &["u2"], "the stalling message set aside");
    serving.kill();
    assert_eq!(stored(&popdesk), ids(&[1, 3]));
    assert_eq!(
        set_aside(&popdesk)[0].attempts[0].kind,
        store::FailureKind::Timeout
    );
}

#[test]
fn serve_stores_a_message_cut_off_once_at_the_next_poll() {
    let (server, popdesk, _data) = setup(MessageFault::CloseMidBody, 20_000);
    server.fault_times("u2", Some(1));
    let serving = serve_polling_every_second(&popdesk, &[]);
    wait_until(&server, &[], "every message stored");
    serving.kill();
    assert_eq!(stored(&popdesk), ids(&[1, 2, 3]));
    assert!(set_aside(&popdesk).is_empty(), "never set aside");
}

#[test]
fn serve_stores_a_set_aside_message_once_after_try_again() {
    let (server, popdesk, _data) = setup(MessageFault::CloseMidBody, 20_000);
    let serving = serve_polling_every_second(&popdesk, &[]);
    wait_until(&server, &["u2"], "message 2 set aside");
    server.set_fault("u2", MessageFault::None);
    popdesk.run_ok(&["mailbox", "try-again", MAILBOX, "u2"]);
    wait_until(&server, &[], "message 2 stored after try again");
    serving.kill();
    assert_eq!(stored(&popdesk), ids(&[1, 2, 3]), "stored once");
    assert!(failing(&popdesk).is_empty());
}
