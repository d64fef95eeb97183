//! `popdesk serve` as an operator runs it: the real binary, a real Dovecot, signals.
//!
//! - Promise 1 and 3 (no loss, cheap recovery): SIGTERM in the middle of a large fetch
//!   stops it at a safe point; the process exits promptly; the next start fetches the
//!   rest, and every message is stored exactly once.
//! - Configuration: a flag beats its environment variable, which beats the file.
//! - The first admin made with `popdesk user add` can sign in over the API, and the
//!   password appears in no log line (promise 7).
//! - Supervision: a scheduler task that panics is restarted; `/healthz` says 503 naming
//!   it meanwhile, the web keeps answering, and mail is fetched again afterwards. The
//!   panic is the binary's documented test fault `POPDESK_TEST_PANIC_SCHEDULER`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{Popdesk, Running, Security, USER, dovecot_with, inspect, sized_message};
use testkit::{Fault, FaultProxy};

/// A free loopback port (closed again, so the binary can take it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("its address")
        .port()
}

fn sigterm(running: &Running) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &running.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM failed");
}

/// One HTTP/1.1 request; returns (status, headers, body). `None` if nothing listens.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, head.to_string(), body.to_string()))
}

/// Waits until `/healthz` answers on `addr`.
fn wait_healthy(addr: SocketAddr, running: &Running) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some((200, _, body)) = http(addr, "GET", "/healthz", &[], "") {
            assert!(body.contains("ok"), "{body}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("popdesk (pid {}) never answered on {addr}", running.pid());
}

#[test]
fn sigterm_during_a_large_fetch_loses_nothing_and_the_next_start_resumes() {
    const COUNT: usize = 240;
    let source: Vec<_> = (0..COUNT)
        .map(|n| sized_message("shutdown", n, 20_000))
        .collect();
    let dovecot = dovecot_with(&source);
    // A slow link (about 1.5 MB/s) makes the fetch last several seconds, so the signal
    // lands in the middle of it rather than before or after.
    let proxy = FaultProxy::start(dovecot.pop3_addr());
    proxy.set_fault(Fault::Slow {
        bytes_per_sec: 1_500_000,
    });
    let data = tempfile::tempdir().expect("data dir");
    let popdesk = Popdesk::new(data.path().join("data"));
    popdesk.add_mailbox(
        "support",
        Security::Plaintext { addr: proxy.addr() },
        &["--batch", "40"],
    );
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");

    let serving = popdesk.spawn(&["serve", "--listen", &listen]);
    // Wait for the first batch to be committed and deleted, then signal: the second
    // session is downloading at that moment.
    let deadline = Instant::now() + Duration::from_secs(60);
    while dovecot.message_count(USER) == COUNT {
        assert!(Instant::now() < deadline, "the scheduler never fetched");
        std::thread::sleep(Duration::from_millis(20));
    }
    let signalled = Instant::now();
    sigterm(&serving);
    let stopped = serving.wait(Duration::from_secs(40));
    let took = signalled.elapsed();
    assert!(
        stopped.status.success(),
        "exit {:?}\n{}",
        stopped.status,
        stopped.stderr
    );
    assert!(
        stopped.stderr.contains("shutting down"),
        "{}",
        stopped.stderr
    );
    // Prompt: the session in flight is abandoned, not finished at 1.5 MB/s.
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");

    let after_stop = inspect(popdesk.data(), "support");
    let left_on_server = dovecot.message_count(USER);
    assert!(
        left_on_server > 0,
        "the fetch finished before the signal; nothing was tested"
    );
    let (_, last_outcome) = after_stop.runs.last().expect("a run was recorded");
    assert_eq!(last_outcome, "cancelled", "runs: {:?}", after_stop.runs);
    // Nothing lost: what is not stored is still on the server; nothing stored twice.
    common::assert_nothing_lost_nothing_twice(&after_stop, &source, &dovecot, "after SIGTERM");

    // The next start carries on and finishes.
    proxy.set_fault(Fault::None);
    let serving = popdesk.spawn(&["serve", "--listen", &listen]);
    let deadline = Instant::now() + Duration::from_secs(90);
    while dovecot.message_count(USER) > 0 {
        assert!(
            Instant::now() < deadline,
            "the restarted service never finished"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let addr: SocketAddr = listen.parse().expect("address");
    wait_healthy(addr, &serving);
    sigterm(&serving);
    let stopped = serving.wait(Duration::from_secs(40));
    assert!(stopped.status.success(), "{}", stopped.stderr);
    let done = inspect(popdesk.data(), "support");
    common::assert_stored_exactly_once(&done, &source, &dovecot, 0, "after the restart");
    assert!(
        done.temp_files.is_empty(),
        "temp files left: {:?}",
        done.temp_files
    );
}

#[test]
fn a_flag_beats_the_environment_which_beats_the_config_file() {
    let data = tempfile::tempdir().expect("data dir");
    let popdesk = Popdesk::new(data.path().join("data"));
    let (file_port, env_port, flag_port) = (free_port(), free_port(), free_port());
    let config = data.path().join("popdesk.toml");
    std::fs::write(&config, format!("listen = \"127.0.0.1:{file_port}\"\n")).expect("write");
    let config = config.display().to_string();
    let env_listen = format!("127.0.0.1:{env_port}");
    let flag_listen = format!("127.0.0.1:{flag_port}");

    for (args, env, expected) in [
        (vec!["--config", &config, "serve"], vec![], file_port),
        (
            vec!["--config", &config, "serve"],
            vec![("POPDESK_LISTEN", env_listen.as_str())],
            env_port,
        ),
        (
            vec!["--config", &config, "serve", "--listen", &flag_listen],
            vec![("POPDESK_LISTEN", env_listen.as_str())],
            flag_port,
        ),
    ] {
        let serving = popdesk.spawn_with(&args, &env);
        let addr: SocketAddr = format!("127.0.0.1:{expected}").parse().expect("address");
        wait_healthy(addr, &serving);
        for other in [file_port, env_port, flag_port] {
            if other != expected {
                let addr: SocketAddr = format!("127.0.0.1:{other}").parse().expect("address");
                assert!(
                    http(addr, "GET", "/healthz", &[], "").is_none(),
                    "{other} answers too"
                );
            }
        }
        let signalled = Instant::now();
        sigterm(&serving);
        let stopped = serving.wait(Duration::from_secs(20));
        assert!(stopped.status.success(), "{}", stopped.stderr);
        assert!(
            signalled.elapsed() < Duration::from_secs(5),
            "an idle service stops at once"
        );
    }

    // A typo in the file is refused with the key named, not ignored.
    let bad = data.path().join("bad.toml");
    std::fs::write(&bad, "lisen = \"127.0.0.1:1\"\n").expect("write");
    let refused = popdesk.run(&["--config", &bad.display().to_string(), "serve"]);
    assert!(!refused.status.success());
    assert!(refused.stderr.contains("lisen"), "{}", refused.stderr);
}

#[test]
fn the_first_admin_from_the_command_line_signs_in_and_no_log_line_shows_a_secret() {
    let data = tempfile::tempdir().expect("data dir");
    let popdesk = Popdesk::new(data.path().join("data"));
    let password = "correct horse battery staple";
    let added = popdesk
        .spawn_with(
            &[
                "user",
                "add",
                "Admin@Example.org",
                "--role",
                "admin",
                "--password-env",
                "PW",
            ],
            &[("PW", password)],
        )
        .wait(Duration::from_secs(60));
    assert!(added.status.success(), "{}", added.stderr);
    assert!(
        added.stdout.contains("admin admin@example.org"),
        "{}",
        added.stdout
    );
    let short = popdesk
        .spawn_with(
            &["user", "add", "b@example.org", "--password-env", "PW"],
            &[("PW", "short")],
        )
        .wait(Duration::from_secs(60));
    assert!(!short.status.success(), "a short password is refused");

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let serving = popdesk.spawn(&["serve", "--listen", &listen, "--log-format", "json", "-v"]);
    let addr: SocketAddr = listen.parse().expect("address");
    wait_healthy(addr, &serving);
    let body = format!("{{\"email\":\"admin@example.org\",\"password\":\"{password}\"}}");
    let (status, head, _) = http(
        addr,
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        &body,
    )
    .expect("an answer");
    assert_eq!(status, 200, "{head}");
    let cookie = head
        .lines()
        .find_map(|line| line.strip_prefix("set-cookie: "))
        .expect("a session cookie")
        .split(';')
        .next()
        .expect("cookie pair")
        .to_string();
    let (status, _, me) =
        http(addr, "GET", "/api/v1/session", &[("Cookie", &cookie)], "").expect("an answer");
    assert_eq!(status, 200);
    assert!(me.contains("admin@example.org"), "{me}");
    let (status, _, _) = http(addr, "GET", "/api/v1/tickets", &[], "").expect("an answer");
    assert_eq!(status, 401, "nothing is readable without credentials");

    sigterm(&serving);
    let stopped = serving.wait(Duration::from_secs(20));
    assert!(stopped.status.success(), "{}", stopped.stderr);
    let mut lines = 0;
    for line in stopped.stderr.lines().filter(|l| !l.trim().is_empty()) {
        let parsed: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"));
        assert!(parsed.get("level").is_some(), "{line}");
        lines += 1;
    }
    assert!(
        lines >= 2,
        "the service logs what it does:\n{}",
        stopped.stderr
    );
    let session_token = cookie.split_once('=').expect("name=value").1;
    for secret in [password, session_token] {
        assert!(!stopped.stderr.contains(secret), "a secret in the log");
    }
}

/// Signs in over the API; returns the session cookie (`name=value`).
fn sign_in(addr: SocketAddr, email: &str, password: &str) -> String {
    let body = format!("{{\"email\":\"{email}\",\"password\":\"{password}\"}}");
    let (status, head, _) = http(
        addr,
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        &body,
    )
    .expect("an answer");
    assert_eq!(status, 200, "{head}");
    head.lines()
        .find_map(|line| line.strip_prefix("set-cookie: "))
        .expect("a session cookie")
        .split(';')
        .next()
        .expect("cookie pair")
        .to_string()
}

#[test]
fn a_scheduler_that_panics_is_restarted_and_healthz_names_it_meanwhile() {
    let first: Vec<_> = (0..3).map(|n| sized_message("before", n, 2_000)).collect();
    let later: Vec<_> = (0..2).map(|n| sized_message("after", n, 2_000)).collect();
    let dovecot = dovecot_with(&first);
    let data = tempfile::tempdir().expect("data dir");
    let popdesk = Popdesk::new(data.path().join("data"));
    popdesk.add_mailbox(
        "support",
        Security::Plaintext {
            addr: dovecot.pop3_addr(),
        },
        &[],
    );
    let password = "correct horse battery staple";
    let added = popdesk
        .spawn_with(
            &[
                "user",
                "add",
                "admin@example.org",
                "--role",
                "admin",
                "--password-env",
                "PW",
            ],
            &[("PW", password)],
        )
        .wait(Duration::from_secs(60));
    assert!(added.status.success(), "{}", added.stderr);

    let listen = format!("127.0.0.1:{}", free_port());
    let addr: SocketAddr = listen.parse().expect("address");
    let serving = popdesk.spawn_with(
        &["serve", "--listen", &listen],
        &[("POPDESK_TEST_PANIC_SCHEDULER", "after-first-run")],
    );

    // The first run fetches everything; the scheduler panics straight after it. Watch
    // /healthz the whole time: 200, then 503 naming the scheduler while it waits for its
    // restart (about a second), then 200 again.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut answers: Vec<(u16, serde_json::Value)> = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "no 503 then 200 within the deadline; /healthz said {answers:?}, messages on the server: {}",
            dovecot.message_count(USER)
        );
        let Some((status, _, body)) = http(addr, "GET", "/healthz", &[], "") else {
            // Not listening yet.
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let json: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("/healthz is not JSON ({e}): {body}"));
        if answers.last() != Some(&(status, json.clone())) {
            answers.push((status, json));
        }
        let degraded = answers.iter().any(|(status, _)| *status == 503);
        if degraded && status == 200 {
            break;
        }
        // Short: the 503 window is about a second, and it must not slip by under load.
        std::thread::sleep(Duration::from_millis(5));
    }
    let healthy = serde_json::json!({
        "status": "ok", "database": "ok", "scheduler": "ok", "processor": "ok", "sender": "ok"
    });
    let restarting = serde_json::json!({
        "status": "degraded", "database": "ok", "scheduler": "restarting", "processor": "ok", "sender": "ok"
    });
    assert!(
        answers.contains(&(503, restarting.clone())),
        "/healthz said {answers:?}"
    );
    assert_eq!(answers.last(), Some(&(200, healthy.clone())), "{answers:?}");
    for (status, json) in &answers {
        assert!(
            (*status, json) == (200, &healthy) || (*status, json) == (503, &restarting),
            "unexpected /healthz answer {status} {json} among {answers:?}"
        );
    }
    assert_eq!(dovecot.message_count(USER), 0, "the first run fetched all");

    // The restarted scheduler still takes "fetch now" from the web (the handle the web
    // holds survived the restart) and fetches new mail.
    dovecot.deliver_many(USER, later.iter().map(|m| &m.delivered));
    let cookie = sign_in(addr, "admin@example.org", password);
    let (status, _, list) =
        http(addr, "GET", "/api/v1/mailboxes", &[("Cookie", &cookie)], "").expect("an answer");
    assert_eq!(status, 200, "{list}");
    let list: serde_json::Value = serde_json::from_str(&list).expect("JSON");
    let id = list
        .as_array()
        .and_then(|all| all.iter().find(|m| m["name"] == "support"))
        .and_then(|m| m["id"].as_i64())
        .unwrap_or_else(|| panic!("no mailbox support in {list}"));
    let origin = format!("http://{addr}");
    let (status, _, queued) = http(
        addr,
        "POST",
        &format!("/api/v1/mailboxes/{id}/fetch"),
        &[("Cookie", &cookie), ("Origin", &origin)],
        "",
    )
    .expect("an answer");
    assert_eq!(status, 202, "{queued}");
    let deadline = Instant::now() + Duration::from_secs(90);
    while dovecot.message_count(USER) > 0 {
        assert!(
            Instant::now() < deadline,
            "the restarted scheduler never fetched the new mail"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    sigterm(&serving);
    let stopped = serving.wait(Duration::from_secs(40));
    assert!(stopped.status.success(), "{}", stopped.stderr);
    for expected in [
        // The cause, as the supervisor logs it.
        "scheduler ended unexpectedly; starting it again",
        "the scheduler panics once, as the test asked",
        // One summary line per run at the default level.
        "fetch run finished",
        "downloaded=3",
        "downloaded=2",
    ] {
        assert!(
            stopped.stderr.contains(expected),
            "no {expected:?} in the log:\n{}",
            stopped.stderr
        );
    }
    assert!(
        !stopped.stderr.contains("during shutdown"),
        "nothing failed while stopping:\n{}",
        stopped.stderr
    );
    let all: Vec<_> = first.into_iter().chain(later).collect();
    let done = inspect(popdesk.data(), "support");
    common::assert_stored_exactly_once(&done, &all, &dovecot, 0, "after the restart");
}
