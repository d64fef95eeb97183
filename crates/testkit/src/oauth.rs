//! A tiny OAuth2 token introspection endpoint (RFC 7662) for Dovecot's `oauth2` passdb.
//!
//! XOAUTH2 and OAUTHBEARER tests need a server that says whether a bearer token is
//! valid. Dovecot asks an HTTP endpoint; this is that endpoint, with a fixed table of
//! tokens, so a test controls exactly which tokens work and can check what Dovecot
//! sent. It runs on its own thread with its own runtime so that it keeps answering
//! whatever the test's runtime is doing (a current-thread runtime blocked in a
//! synchronous call would otherwise deadlock against Dovecot waiting on us).

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Requests larger than this are refused: Dovecot's are a few hundred bytes.
const MAX_REQUEST: usize = 64 * 1024;
/// How long one HTTP exchange may take before the connection is dropped.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// One request the endpoint received, kept so tests can assert on it.
#[derive(Clone, Debug)]
pub struct IntrospectionRequest {
    /// `POST` in Dovecot's `introspection_mode = post`.
    pub method: String,
    /// Request target, e.g. `/introspect`.
    pub path: String,
    /// Header names (lower-cased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The raw body (`token=...` for a POST).
    pub body: Vec<u8>,
    /// The token found in the form body or an `Authorization: Bearer` header.
    pub token: Option<String>,
    /// Whether the endpoint answered that the token is active.
    pub active: bool,
}

#[derive(Default)]
struct State {
    tokens: HashMap<String, String>,
    requests: Vec<IntrospectionRequest>,
}

/// An HTTP/1.1 introspection endpoint on `127.0.0.1`, stopped on drop.
///
/// Answers `{"active":true,"username":"NAME"}` for a known token and
/// `{"active":false}` for anything else.
pub struct OAuthIntrospection {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl OAuthIntrospection {
    /// Starts the endpoint on a free loopback port.
    ///
    /// # Panics
    /// If no loopback port can be bound or the thread cannot start.
    pub fn start() -> OAuthIntrospection {
        let listener = StdTcpListener::bind("127.0.0.1:0")
            .expect("testkit: bind the OAuth introspection endpoint on 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("testkit: introspection endpoint address");
        listener
            .set_nonblocking(true)
            .expect("testkit: make the introspection listener non-blocking");
        let state = Arc::new(Mutex::new(State::default()));
        let (shutdown, stopped) = oneshot::channel();
        let thread_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("testkit-oauth".into())
            .spawn(move || serve(listener, thread_state, stopped))
            .expect("testkit: spawn the introspection thread");
        OAuthIntrospection {
            addr,
            state,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// Makes `token` valid for `username` from now on.
    pub fn add_token(&self, token: &str, username: &str) {
        lock(&self.state)
            .tokens
            .insert(token.to_owned(), username.to_owned());
    }

    /// Makes `token` invalid from now on (a revoked or expired token).
    pub fn revoke_token(&self, token: &str) {
        lock(&self.state).tokens.remove(token);
    }

    /// The URL to give Dovecot's `introspection_url`.
    pub fn url(&self) -> String {
        format!("http://{}/introspect", self.addr)
    }

    /// The address the endpoint listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<IntrospectionRequest> {
        lock(&self.state).requests.clone()
    }
}

impl Drop for OAuthIntrospection {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic in a test thread must not hide every later request.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn serve(listener: StdTcpListener, state: Arc<Mutex<State>>, stopped: oneshot::Receiver<()>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("testkit: build the introspection runtime");
    runtime.block_on(async move {
        let listener =
            TcpListener::from_std(listener).expect("testkit: register the introspection listener");
        let accept_loop = async {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&state);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange(stream, state)).await;
                });
            }
        };
        tokio::select! {
            _ = stopped => {}
            () = accept_loop => {}
        }
    });
}

/// Reads one request, answers it, closes the connection.
async fn exchange(mut stream: TcpStream, state: Arc<Mutex<State>>) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_REQUEST || read_more(&mut stream, &mut buf).await? == 0 {
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let path = request_line.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let content_length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_REQUEST);
    let body_start = head_end + 4;
    while buf.len() < body_start + content_length {
        if read_more(&mut stream, &mut buf).await? == 0 {
            return Ok(());
        }
    }
    let body = buf[body_start..body_start + content_length].to_vec();

    let token = form_value(&body, "token").or_else(|| {
        headers
            .iter()
            .find(|(name, _)| name == "authorization")
            .and_then(|(_, value)| value.strip_prefix("Bearer "))
            .map(str::to_owned)
    });
    let username = {
        let mut state = lock(&state);
        let username = token
            .as_ref()
            .and_then(|token| state.tokens.get(token).cloned());
        state.requests.push(IntrospectionRequest {
            method,
            path,
            headers,
            body,
            token,
            active: username.is_some(),
        });
        username
    };
    let json = match username {
        Some(name) => format!(r#"{{"active":true,"username":"{}"}}"#, json_escape(&name)),
        None => r#"{"active":false}"#.to_owned(),
    };
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The value of `key` in an `application/x-www-form-urlencoded` body.
fn form_value(body: &[u8], key: &str) -> Option<String> {
    String::from_utf8_lossy(body).split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

fn percent_decode(text: &str) -> String {
    fn hex(byte: u8) -> Option<u8> {
        (byte as char)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_token_is_percent_decoded() {
        assert_eq!(
            form_value(b"a=1&token=ab%2Bc%3D+d", "token").as_deref(),
            Some("ab+c= d")
        );
        assert_eq!(form_value(b"token=abc%", "token").as_deref(), Some("abc%"));
        assert_eq!(form_value(b"x=1", "token"), None);
    }
}
