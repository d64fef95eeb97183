//! Several `popdesk serve` nodes on one PostgreSQL, each with its own empty data folder
//! (no shared disk) and raw messages in the database, as the README's "Several nodes"
//! describes them; and a small HTTP client to talk to them.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::{Finished, Popdesk, Running};

/// The same key on every node: a mailbox password sealed by one is opened by another.
/// (base64 of "0123456789abcdef0123456789abcdef")
pub const SECRET_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// One node: its data folder, its address, and its `serve` process when running.
pub struct Node {
    pub popdesk: Popdesk,
    _data: tempfile::TempDir,
    pub addr: SocketAddr,
    url: String,
    extra: Vec<String>,
    pub serving: Option<Running>,
}

impl Node {
    /// A node on the database `url`, blobs in the database; `extra` goes to `serve`.
    pub fn new(url: &str, extra: &[&str]) -> Node {
        let data = tempfile::tempdir().expect("a data folder");
        let port = free_port();
        Node {
            popdesk: Popdesk::new(data.path().join("data")),
            _data: data,
            addr: format!("127.0.0.1:{port}").parse().expect("address"),
            url: url.to_string(),
            extra: extra.iter().map(|s| (*s).to_string()).collect(),
            serving: None,
        }
    }

    fn env() -> [(&'static str, &'static str); 2] {
        [
            ("POPDESK_SECRET_KEY", SECRET_KEY),
            ("POPDESK_LOG", "info,sqlx=off"),
        ]
    }

    /// `popdesk --database-url URL --blob-store postgres ARGS...` on this node's folder.
    pub fn cli(&self, args: &[&str]) -> Finished {
        let mut all = vec!["--database-url", &self.url, "--blob-store", "postgres"];
        all.extend(args);
        self.popdesk
            .spawn_with(&all, &Node::env())
            .wait(super::RUN_TIMEOUT)
    }

    /// Starts `popdesk --database-url URL --blob-store postgres ARGS...` and returns at once.
    pub fn spawn_cli(&self, args: &[&str]) -> Running {
        let mut all = vec!["--database-url", &self.url, "--blob-store", "postgres"];
        all.extend(args);
        self.popdesk.spawn_with(&all, &Node::env())
    }

    /// Starts `serve` (it must not be running).
    pub fn start(&mut self) -> u32 {
        assert!(self.serving.is_none(), "the node is running already");
        let listen = self.addr.to_string();
        let mut args = vec![
            "--database-url",
            &self.url,
            "--blob-store",
            "postgres",
            "serve",
            "--listen",
            &listen,
        ];
        args.extend(self.extra.iter().map(String::as_str));
        let running = self.popdesk.spawn_with(&args, &Node::env());
        let pid = running.pid();
        self.serving = Some(running);
        pid
    }

    /// SIGKILL; the pid it had, if it ran.
    pub fn kill(&mut self) -> Option<(u32, Finished)> {
        let running = self.serving.take()?;
        let pid = running.pid();
        Some((pid, running.kill()))
    }

    pub fn pid(&self) -> Option<u32> {
        self.serving.as_ref().map(Running::pid)
    }

    /// `/healthz`'s status code, or None when nothing answers.
    pub fn health(&self) -> Option<u16> {
        get(self.addr, "/healthz", None).map(|(status, _)| status)
    }

    /// Waits until `/healthz` answers 200.
    pub fn wait_healthy(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.health() != Some(200) {
            assert!(
                Instant::now() < deadline,
                "node {} never became healthy; its log:\n{}",
                self.addr,
                self.serving
                    .as_ref()
                    .map(Running::stderr_so_far)
                    .unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `GET path` (with a bearer token), answered with (status, body); None when the node
/// does not answer.
pub fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> Option<(u16, Vec<u8>)> {
    request(addr, "GET", path, token)
}

/// `POST path` with an empty body.
pub fn post(addr: SocketAddr, path: &str, token: Option<&str>) -> Option<(u16, Vec<u8>)> {
    request(addr, "POST", path, token)
}

fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> Option<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).ok()?;
    let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
    let mut chunked = false;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            if n == 0 {
                break;
            }
            let mut chunk = vec![0u8; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        reader.read_to_end(&mut body).ok()?;
    }
    Some((status, body))
}

/// An admin API token made straight in the database, as the API makes them.
pub fn admin_token(url: &str) -> String {
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
        let token = web::auth::token::new_token().expect("token");
        store
            .create_api_token(
                "nodes test",
                store::Role::Admin,
                &token.hash,
                &token.prefix,
                None,
                0,
                None,
            )
            .await
            .expect("token");
        store.close().await;
        token.secret
    })
}
