//! Slow clients cannot hold `popdesk serve`: the real binary, on loopback, with 500
//! connections that send their headers a byte at a time. `/healthz` and a signed-in
//! page still answer; the slow connections, and a keep-alive connection left idle, are
//! closed after the header timeout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::Popdesk;

const SLOW_CONNECTIONS: usize = 500;
const HEADER_TIMEOUT_SECS: u64 = 3;
const PASSWORD: &str = "correct horse battery staple";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// One request on its own connection; (status, head, body) and how long it took.
fn timed_request(addr: SocketAddr, request: &str) -> Option<(u16, String, String, Duration)> {
    let started = Instant::now();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let took = started.elapsed();
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, head.to_string(), body.to_string(), took))
}

fn get(addr: SocketAddr, path: &str, cookie: Option<&str>) -> String {
    let cookie = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{cookie}\r\n")
}

/// Whether the server has closed `stream` (EOF or reset); false while it is open.
fn closed_by_server(mut stream: &TcpStream) -> bool {
    let mut byte = [0u8; 512];
    match stream.read(&mut byte) {
        Ok(0) => true,
        // hyper may answer 408 before closing; reading it means it is ending.
        Ok(_) => true,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(_) => true,
    }
}

/// The fastest of three tries: one unlucky scheduling slice on a loaded machine says
/// nothing about the server.
fn fastest(addr: SocketAddr, request: &str, expect: u16) -> Duration {
    (0..3)
        .map(|_| {
            let (status, head, _, took) = timed_request(addr, request).expect("an answer");
            assert_eq!(status, expect, "{head}");
            took
        })
        .min()
        .expect("three tries")
}

#[test]
fn five_hundred_slow_clients_do_not_hold_the_service() {
    let data = tempfile::tempdir().expect("temp dir");
    let popdesk = Popdesk::new(data.path().join("data"));
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
            &[("PW", PASSWORD)],
        )
        .wait(Duration::from_secs(60));
    assert!(added.status.success(), "{}", added.stderr);
    let listen = format!("127.0.0.1:{}", free_port());
    let addr: SocketAddr = listen.parse().expect("address");
    let timeout = HEADER_TIMEOUT_SECS.to_string();
    let serving = popdesk.spawn(&[
        "serve",
        "--listen",
        &listen,
        "--header-timeout-secs",
        &timeout,
        "--max-connections",
        "600",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while timed_request(addr, &get(addr, "/healthz", None)).is_none_or(|r| r.0 != 200) {
        assert!(
            Instant::now() < deadline,
            "popdesk (pid {}) never answered",
            serving.pid()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let body = format!("{{\"email\":\"admin@example.org\",\"password\":\"{PASSWORD}\"}}");
    let sign_in = format!(
        "POST /api/v1/session HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, head, _, _) = timed_request(addr, &sign_in).expect("an answer");
    assert_eq!(status, 200, "{head}");
    let cookie = head
        .lines()
        .find_map(|line| line.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();

    // A keep-alive connection that answers one request and then sits idle.
    let mut idle = TcpStream::connect(addr).expect("connect");
    idle.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .expect("write");
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut first = [0u8; 4096];
    let n = idle.read(&mut first).expect("the first answer");
    assert!(
        first[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&first[..n])
    );

    // 500 connections that start a request and send a header byte every half second.
    let opened_at = Instant::now();
    let mut opened = Vec::with_capacity(SLOW_CONNECTIONS);
    let slow: Vec<TcpStream> = (0..SLOW_CONNECTIONS)
        .map(|n| {
            opened.push(Instant::now());
            let mut stream = TcpStream::connect(addr).expect("connect a slow client");
            stream
                .write_all(format!("GET /healthz?slow={n} HTTP/1.1\r\nX-Slow: ").as_bytes())
                .expect("start a request");
            stream
        })
        .collect();
    let dribbling = Arc::new(AtomicBool::new(true));
    let dribbler = {
        let streams: Vec<TcpStream> = slow.iter().map(|s| s.try_clone().expect("clone")).collect();
        let dribbling = dribbling.clone();
        std::thread::spawn(move || {
            let mut streams = streams;
            while dribbling.load(Ordering::Relaxed) {
                for stream in &mut streams {
                    // A closed connection refuses the byte; that is the point.
                    let _ = stream.write_all(b"a");
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));

    let health = fastest(addr, &get(addr, "/healthz", None), 200);
    let page = fastest(addr, &get(addr, "/tickets", Some(&cookie)), 200);
    eprintln!(
        "with {SLOW_CONNECTIONS} slow clients open: /healthz in {health:?}, /tickets (signed in) in {page:?}"
    );
    assert!(health < Duration::from_secs(1), "/healthz took {health:?}");
    assert!(page < Duration::from_secs(1), "/tickets took {page:?}");

    // Every slow connection (and the idle one) is closed after the header timeout, and
    // not long before it.
    for stream in slow.iter().chain(std::iter::once(&idle)) {
        stream
            .set_read_timeout(Some(Duration::from_millis(1)))
            .expect("timeout");
    }
    // Closed before the timeout, by each connection's own clock (opening 500 takes a
    // while on a loaded machine).
    let too_soon = Duration::from_millis(HEADER_TIMEOUT_SECS * 1000 - 500);
    let early = slow
        .iter()
        .zip(&opened)
        .filter(|(s, at)| {
            let age = at.elapsed();
            closed_by_server(s) && age < too_soon
        })
        .count();
    assert_eq!(
        early, 0,
        "{early} slow connections closed before the timeout"
    );
    let limit = Duration::from_secs(HEADER_TIMEOUT_SECS + 15);
    let mut open: Vec<&TcpStream> = slow.iter().chain(std::iter::once(&idle)).collect();
    while !open.is_empty() && opened_at.elapsed() < limit {
        open.retain(|stream| !closed_by_server(stream));
        std::thread::sleep(Duration::from_millis(100));
    }
    let closed_after = opened_at.elapsed();
    dribbling.store(false, Ordering::Relaxed);
    dribbler.join().expect("the dribbling thread");
    eprintln!(
        "{} of {} slow and idle connections closed by the server after {closed_after:?} (timeout {HEADER_TIMEOUT_SECS}s)",
        SLOW_CONNECTIONS + 1 - open.len(),
        SLOW_CONNECTIONS + 1
    );
    assert!(
        open.is_empty(),
        "{} connections still open after {limit:?}",
        open.len()
    );

    // And the service still serves.
    let (status, _, _, _) = timed_request(addr, &get(addr, "/healthz", None)).expect("an answer");
    assert_eq!(status, 200);
    drop(serving);
}
