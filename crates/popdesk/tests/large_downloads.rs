//! Downloads stream: the real `popdesk serve` hands out a 200 MB raw message while its
//! peak resident memory (VmHWM) stays under 64 MB. Reading the message whole, as
//! downloads once did, would take at least the message's size.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::Popdesk;
use secrecy::SecretString;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

const MESSAGE_BYTES: u64 = 200 * 1024 * 1024;
const RSS_LIMIT_KB: u64 = 64 * 1024;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// A 200 MB message written straight into the store, as the fetcher would store it,
/// and an admin API token made as the API makes them (so the server never hashes a
/// password, whose 19 MiB would blur the measure). Returns (raw id, token, sha256).
async fn stored_message(popdesk: &Popdesk) -> (i64, String, String) {
    let store = store::Store::open(popdesk.data(), None)
        .await
        .expect("store");
    let settings = store::MailboxSettings {
        name: "support".into(),
        host: "pop.example.com".into(),
        username: "support@example.com".into(),
        enabled: false,
        ..store::MailboxSettings::default()
    };
    let mailbox = store
        .add_mailbox(&settings, &SecretString::from("secret".to_string()), 0)
        .await
        .expect("mailbox");
    let mut writer = store.blobs().writer().await.expect("writer");
    let mut hash = Sha256::new();
    let head = b"From: big@example.com\r\nTo: support@example.com\r\nSubject: a large log\r\n\
Message-ID: <large@example.com>\r\n\r\n";
    writer.write_all(head).await.expect("write");
    hash.update(head);
    let line = [b'x'; 1022];
    let mut chunk = Vec::with_capacity(1024 * 1024);
    for _ in 0..1024 {
        chunk.extend_from_slice(&line);
        chunk.extend_from_slice(b"\r\n");
    }
    let mut written = head.len() as u64;
    while written < MESSAGE_BYTES {
        let take =
            usize::try_from((MESSAGE_BYTES - written).min(chunk.len() as u64)).expect("a chunk");
        writer.write_all(&chunk[..take]).await.expect("write");
        hash.update(&chunk[..take]);
        written += take as u64;
    }
    let blob = writer.finish().await.expect("finish");
    let sha256 = blob.sha256.clone();
    let item = store::NewRawMessage {
        uid: Some("large-1".into()),
        sha256: blob.sha256.clone(),
        size: blob.size,
        server_size: Some(blob.size),
        message_id: Some("<large@example.com>".into()),
        status: store::RawStatus::Stored,
    };
    store.blobs().persist(vec![blob]).await.expect("persist");
    let raw_id = store
        .commit_batch(mailbox.id, &[item], 0)
        .await
        .expect("commit")[0]
        .raw_message_id();
    let token = web::auth::token::new_token().expect("token");
    store
        .create_api_token(
            "download",
            store::Role::Admin,
            &token.hash,
            &token.prefix,
            None,
            0,
            None,
        )
        .await
        .expect("token");
    assert_eq!(
        hex(&hash.finalize()),
        sha256,
        "the blob holds what was written"
    );
    (raw_id, token.secret, sha256)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The peak resident set of a process, in kB.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.1 200")
}

#[test]
fn downloading_a_200_mb_raw_message_keeps_the_server_under_64_mb() {
    let data = tempfile::tempdir().expect("temp dir");
    let popdesk = Popdesk::new(data.path().join("data"));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (raw_id, token, sha256) = runtime.block_on(stored_message(&popdesk));
    drop(runtime);

    let listen = format!("127.0.0.1:{}", free_port());
    let addr: SocketAddr = listen.parse().expect("address");
    let serving = popdesk.spawn(&["serve", "--listen", &listen]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !healthy(addr) {
        assert!(
            Instant::now() < deadline,
            "popdesk (pid {}) never answered",
            serving.pid()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = peak_rss_kb(serving.pid());

    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    write!(
        stream,
        "GET /api/v1/messages/{raw_id}/raw HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a header line");
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line);
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-length: {MESSAGE_BYTES}")),
        "the length is known before the bytes: {head}"
    );
    // Read slowly enough that a server reading the whole file first would show it, and
    // hash what arrives.
    let mut hash = Sha256::new();
    let mut received = 0u64;
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buffer).expect("the body");
        if n == 0 {
            break;
        }
        hash.update(&buffer[..n]);
        received += n as u64;
    }
    let peak = peak_rss_kb(serving.pid());
    println!(
        "popdesk serve peak RSS: {before} kB before, {peak} kB after downloading {} MB",
        MESSAGE_BYTES / (1024 * 1024)
    );
    assert_eq!(received, MESSAGE_BYTES, "every byte, once");
    assert_eq!(hex(&hash.finalize()), sha256, "the bytes as stored");
    assert!(
        peak < RSS_LIMIT_KB,
        "popdesk serve's peak RSS was {peak} kB (limit {RSS_LIMIT_KB} kB)"
    );
    drop(serving);
}
